//! Placement checks: where every declared workload can land, with kube-scheduler's filters
//! (`spar::analysis::scheduling`), on the node shapes the stack declares.
//!
//! - `placement-controllers`: every controller and add-on (CoreDNS, Karpenter, ARC's
//!   controller and listeners, cert-manager) has a node shape, and it is not a Karpenter
//!   NodePool (the runner pool: controllers there would be disrupted with the runners, and
//!   Karpenter must not run on nodes it manages).
//! - `placement-engine`: a DaemonSet the stack declares (the Dagger engine) lands on every
//!   instance type of every NodePool and on no managed node group.
//! - `placement-runners`: a runner of each group fits, together with the engine and the
//!   node agents, on instance types its NodePool admits (the types too small for it are
//!   listed: Karpenter never launches one of them for that group, since it simulates the
//!   scheduler before it chooses), and never on the critical nodes; the NodePool's CPU
//!   limit holds the group's maximum.

use spar::analysis::scheduling::{Placement, Placer, PodRequirements, PodTemplate, ShapeKind, WorkloadKind};

use super::workloads::{Gathered, Role, Workload, gather};
use super::{Ctx, Verdict};

/// The gathered workloads and each one's placement (same order).
pub struct Analysis {
    pub gathered: Gathered,
    pub placements: Vec<Result<Placement, String>>,
}

impl Analysis {
    pub fn new(resources: &[spar::graph::DesiredResource]) -> Self {
        let gathered = gather(resources);
        let daemonsets: Vec<PodTemplate> = gathered
            .workloads
            .iter()
            .filter(|w| w.template.kind == WorkloadKind::DaemonSet)
            .map(|w| w.template.clone())
            .collect();
        let placements = match Placer::new(&gathered.shapes, &daemonsets) {
            Ok(placer) => gathered
                .workloads
                .iter()
                .map(|w| {
                    if w.template.kind == WorkloadKind::DaemonSet {
                        // A DaemonSet's pod lands after the other DaemonSets, not after itself.
                        let others: Vec<PodTemplate> = daemonsets
                            .iter()
                            .filter(|d| d.owner != w.template.owner)
                            .cloned()
                            .collect();
                        Placer::new(&gathered.shapes, &others).and_then(|p| p.place(&w.template))
                    } else {
                        placer.place(&w.template)
                    }
                    .map_err(|e| e.to_string())
                })
                .collect(),
            Err(e) => gathered.workloads.iter().map(|_| Err(e.to_string())).collect(),
        };
        Analysis { gathered, placements }
    }

    fn is_pool(&self, shape: &str) -> bool {
        self.gathered
            .shapes
            .iter()
            .any(|s| s.name == shape && s.kind == ShapeKind::NodePool)
    }

    /// The workloads with their placements.
    pub fn each(&self) -> impl Iterator<Item = (&Workload, &Result<Placement, String>)> {
        self.gathered.workloads.iter().zip(&self.placements)
    }

    /// Shapes a workload can land on (some instance type fits).
    pub fn hosts(&self, w: &Workload) -> Vec<String> {
        self.each()
            .find(|(x, _)| std::ptr::eq(*x, w))
            .and_then(|(_, p)| p.as_ref().ok())
            .map(|p| p.shapes_that_fit().into_iter().map(str::to_string).collect())
            .unwrap_or_default()
    }
}

fn shown(w: &Workload) -> String {
    let n = match w.template.kind {
        WorkloadKind::DaemonSet => String::new(),
        _ if w.template.replicas > 1 => format!(" x{}", w.template.replicas),
        _ => String::new(),
    };
    format!("{}{n} ({}, {})", w.template.owner, w.address, w.read)
}

/// Lands where, as one line: `critical [m7g.large]`.
fn lands(p: &Placement) -> String {
    let shapes: Vec<String> = p
        .per_shape
        .iter()
        .filter(|s| !s.fits.is_empty())
        .map(|s| {
            let n = s.fits.len() + s.unfit.len();
            if s.fits.len() == n && n > 3 {
                format!("{} [all {n} types]", s.shape)
            } else {
                format!("{} [{}]", s.shape, s.fits.join(", "))
            }
        })
        .collect();
    shapes.join(", ")
}

fn why_nowhere(p: &Placement) -> String {
    p.per_shape
        .iter()
        .map(|s| p.explain(&s.shape))
        .collect::<Vec<_>>()
        .join("; ")
}

/// `placement-controllers`.
pub(super) fn controllers(c: &Ctx<'_>) -> Verdict {
    let a = c.analysis();
    let mut v = Verdict {
        failures: a.gathered.problems.clone(),
        evidence: Vec::new(),
    };
    for (w, p) in a.each().filter(|(w, _)| w.role == Role::Controller) {
        if w.template.kind == WorkloadKind::DaemonSet {
            continue;
        }
        let p = match p {
            Ok(p) => p,
            Err(e) => {
                v.failures.push(format!("{}: {e}", shown(w)));
                continue;
            }
        };
        let hosts = p.shapes_that_fit();
        if hosts.is_empty() {
            v.failures
                .push(format!("{} has no node to run on: {}", shown(w), why_nowhere(p)));
            continue;
        }
        let pools: Vec<&str> = hosts.iter().copied().filter(|h| a.is_pool(h)).collect();
        if !pools.is_empty() {
            v.failures.push(format!(
                "{} can land on the Karpenter NodePool {} (it tolerates its taints and matches its labels), where nodes come and go with the runners; keep it on the critical nodes with their nodeSelector",
                shown(w),
                pools.join(", ")
            ));
            continue;
        }
        v.evidence.push(format!("{} -> {}", shown(w), lands(p)));
    }
    v
}

/// `placement-engine`.
pub(super) fn engine(c: &Ctx<'_>) -> Verdict {
    let a = c.analysis();
    let mut v = Verdict::default();
    for (w, p) in a.each().filter(|(w, _)| w.role == Role::DaemonSet) {
        let Ok(p) = p else { continue };
        for s in &p.per_shape {
            let pool = a.is_pool(&s.shape);
            match (pool, s.unfit.is_empty(), s.fits.is_empty()) {
                (true, true, _) => v.evidence.push(format!(
                    "{} lands on every instance type of NodePool {} ({})",
                    shown(w),
                    s.shape,
                    s.fits.len()
                )),
                (true, false, _) => v.failures.push(format!(
                    "{} does not land on every node of NodePool {}: {}",
                    shown(w),
                    s.shape,
                    p.explain(&s.shape)
                )),
                (false, _, true) => v
                    .evidence
                    .push(format!("{} stays off node group {}", shown(w), s.shape)),
                (false, _, false) => v.failures.push(format!(
                    "{} lands on the managed node group {} ({}); it belongs on runner nodes only",
                    shown(w),
                    s.shape,
                    s.fits.join(", ")
                )),
            }
        }
        if !a.gathered.shapes.iter().any(|s| s.kind == ShapeKind::NodePool) {
            v.failures.push(format!(
                "{} has no NodePool to run on: the stack declares none",
                shown(w)
            ));
        }
    }
    v
}

/// `placement-runners`.
pub(super) fn runners(c: &Ctx<'_>) -> Verdict {
    let a = c.analysis();
    let mut v = Verdict::default();
    let daemonsets: Vec<PodTemplate> = a
        .gathered
        .workloads
        .iter()
        .filter(|w| w.template.kind == WorkloadKind::DaemonSet)
        .map(|w| w.template.clone())
        .collect();
    let placer = Placer::new(&a.gathered.shapes, &daemonsets).ok();
    for (w, p) in a.each() {
        let Role::Runner { group, max } = &w.role else { continue };
        let p = match p {
            Ok(p) => p,
            Err(e) => {
                v.failures.push(format!("runner {group}: {e}"));
                continue;
            }
        };
        // The shapes whose taints and labels admit the runner (whatever its size).
        let admitted: Vec<&str> = p
            .per_shape
            .iter()
            .filter(|s| {
                !s.fits.is_empty()
                    || s.unfit
                        .iter()
                        .any(|(_, u)| matches!(u, spar::analysis::scheduling::Unfit::Insufficient(_)))
            })
            .map(|s| s.shape.as_str())
            .collect();
        if admitted.is_empty() {
            v.failures
                .push(format!("runner {group}: no node shape admits it: {}", why_nowhere(p)));
            continue;
        }
        for shape in admitted {
            if !a.is_pool(shape) {
                v.failures.push(format!(
                    "runner {group} can land on the managed node group {shape}, away from the engine; give it the runner toleration and nodeSelector only"
                ));
                continue;
            }
            let s = p.shape(shape).expect("placed on every shape");
            // Karpenter launches only a type the pending pod fits on (it simulates the
            // scheduler), so a type too small for this group is never chosen for it: a
            // failure only when no admitted type fits.
            if s.fits.is_empty() {
                v.failures.push(format!(
                    "runner {group}: {}",
                    p.explain(shape)
                        .replacen(&format!("runner {group} on "), "NodePool ", 1)
                ));
                continue;
            }
            let never = if s.unfit.is_empty() {
                String::new()
            } else {
                let names: Vec<&str> = s.unfit.iter().map(|(t, _)| *t).collect();
                format!("; never on {} (too small)", names.join(", "))
            };
            v.evidence.push(format!(
                "runner {group} fits with {} on {}/{} instance types of NodePool {shape}{never}",
                s.daemonsets.join(", "),
                s.fits.len(),
                s.fits.len() + s.unfit.len()
            ));
            let (Some(max), Some(placer)) = (max, &placer) else {
                continue;
            };
            let Ok(req) = PodRequirements::from_template(&w.template) else {
                continue;
            };
            if let Some(h) = placer.how_many_fit(&req, shape) {
                match h.total {
                    Some(total) if total < *max => v.failures.push(format!(
                        "runner {group}: NodePool {shape}'s limits hold {total} runners ({} per {}, {} nodes), not max_runners {max}; raise karpenter.node_pool.limit_cpu or lower max_runners",
                        h.pods_per_node,
                        h.instance_type,
                        h.nodes.unwrap_or_default()
                    )),
                    Some(total) => v.evidence.push(format!(
                        "NodePool {shape} holds {total} runners of {group} (>= max {max}; {} per {})",
                        h.pods_per_node, h.instance_type
                    )),
                    None => v
                        .evidence
                        .push(format!("NodePool {shape} has no CPU limit: max {max} runners of {group} fit")),
                }
            }
        }
    }
    v
}
