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
//!
//! On a cluster from a kubeconfig the nodes are the user's, not declared: the same three
//! checks run the scheduler's taint and affinity filters (`daemon_should_run`: no
//! resources) on two model nodes, a runner node with `[runners]`'s labels and taint and an
//! ordinary node with neither ([`LabelledNodes`]). Whether requests fit is the cluster's
//! to say; spar's readiness wait reports its scheduler's message.

use serde_json::json;
use spar::analysis::scheduling::{
    CandidateNode, Placement, Placer, PodRequirements, PodTemplate, ShapeKind, Unfit, WorkloadKind, daemon_should_run,
};

use super::workloads::{Gathered, Role, Workload, gather};
use super::{Ctx, Verdict};
use crate::config::RunnersConfig;

/// The gathered workloads and each one's placement (same order).
pub struct Analysis {
    pub gathered: Gathered,
    pub placements: Vec<Result<Placement, String>>,
    /// On a cluster from a kubeconfig: the model nodes the filters run on.
    pub labelled: Option<LabelledNodes>,
}

/// Whether a pod may land on the runner node and on the ordinary node.
type OnEach = (Result<(), Unfit>, Result<(), Unfit>);

/// A cluster's own nodes as `[runners]` describes them.
pub struct LabelledNodes {
    /// A node with the runner labels and taint.
    pub runner: CandidateNode,
    /// A node with neither.
    pub ordinary: CandidateNode,
    /// The runner labels and taint, as failures name them.
    pub shown: String,
}

impl LabelledNodes {
    fn new(r: &RunnersConfig) -> Self {
        let node = |name: &str, extra: &std::collections::BTreeMap<String, String>, taints: Vec<serde_json::Value>| {
            let mut labels = json!({"kubernetes.io/os": "linux", "kubernetes.io/hostname": name});
            for (k, v) in extra {
                labels[k] = v.as_str().into();
            }
            let n = json!({"metadata": {"name": name, "labels": labels}, "spec": {"taints": taints}});
            CandidateNode::from_node(&n).expect("a node with no quantities parses")
        };
        let taints: Vec<serde_json::Value> = r
            .taint
            .iter()
            .map(|t| json!({"key": t.key, "value": t.value, "effect": t.effect}))
            .collect();
        let selector: Vec<String> = r.node_selector.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let taint = r
            .taint
            .as_ref()
            .map(|t| format!(", taint {}={}:{}", t.key, t.value.as_deref().unwrap_or(""), t.effect))
            .unwrap_or_default();
        LabelledNodes {
            runner: node("runner-node", &r.node_selector, taints),
            ordinary: node("ordinary-node", &Default::default(), Vec::new()),
            shown: format!("[runners] nodes ({}{taint})", selector.join(", ")),
        }
    }

    /// The filters' verdict for `w` on the runner node and on the ordinary node.
    fn filter(&self, w: &Workload) -> Result<OnEach, String> {
        let req = PodRequirements::from_template(&w.template).map_err(|e| e.to_string())?;
        Ok((
            daemon_should_run(&req, &self.runner),
            daemon_should_run(&req, &self.ordinary),
        ))
    }
}

impl Analysis {
    pub fn new(resources: &[spar::graph::DesiredResource], runner_nodes: Option<&RunnersConfig>) -> Self {
        Self::of(gather(resources), runner_nodes)
    }

    /// Places what `gathered` holds (the declared workloads and shapes, plus, on an
    /// existing cluster, what the lookups read).
    pub fn of(gathered: Gathered, runner_nodes: Option<&RunnersConfig>) -> Self {
        let labelled = runner_nodes.map(LabelledNodes::new);
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
        Analysis {
            gathered,
            placements,
            labelled,
        }
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
    if let Some(group) = c.d.eks.as_ref().and_then(|e| e.cluster.existing.as_ref()) {
        v.evidence.push(format!(
            "the controllers run on the existing node group `{}`, judged when planning by `existing-cluster` (it is looked up)",
            group.node_group_name
        ));
        return v;
    }
    if let Some(nodes) = &a.labelled {
        for w in a.gathered.workloads.iter().filter(|w| w.role == Role::Controller) {
            match nodes.filter(w) {
                Err(e) => v.failures.push(format!("{}: {e}", shown(w))),
                Ok((_, Err(why))) => v.failures.push(format!(
                    "{} cannot land on an ordinary node (no runner labels or taint): {why}",
                    shown(w)
                )),
                Ok((Ok(()), Ok(()))) if nodes.runner.taints.iter().any(|t| t.effect != spar::analysis::scheduling::TaintEffect::PreferNoSchedule) => v.failures.push(format!(
                    "{} tolerates the taint of the {} and can land there, where runner jobs take the node; keep it off them",
                    shown(w),
                    nodes.shown
                )),
                Ok((on_runner, Ok(()))) => v.evidence.push(format!(
                    "{} -> ordinary nodes{}",
                    shown(w),
                    if on_runner.is_ok() { " (and runner nodes: [runners] has no taint)" } else { "" }
                )),
            }
        }
        return v;
    }
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
    if let Some(nodes) = &a.labelled {
        for w in a.gathered.workloads.iter().filter(|w| w.role == Role::DaemonSet) {
            match nodes.filter(w) {
                Err(e) => v.failures.push(format!("{}: {e}", shown(w))),
                Ok((Err(why), _)) => {
                    v.failures
                        .push(format!("{} does not run on the {}: {why}", shown(w), nodes.shown))
                }
                Ok((Ok(()), Ok(()))) => v.failures.push(format!(
                    "{} also runs on ordinary nodes (no runner labels); it belongs on runner nodes only",
                    shown(w)
                )),
                Ok((Ok(()), Err(_))) => v.evidence.push(format!(
                    "{} runs on every one of the {} and on no other node",
                    shown(w),
                    nodes.shown
                )),
            }
        }
        return v;
    }
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
    if let Some(nodes) = &a.labelled {
        for w in &a.gathered.workloads {
            let Role::Runner { group, .. } = &w.role else { continue };
            match nodes.filter(w) {
                Err(e) => v.failures.push(format!("runner {group}: {e}")),
                Ok((Err(why), _)) => v.failures.push(format!(
                    "runner {group} cannot land on the {}: {why}",
                    nodes.shown
                )),
                Ok((Ok(()), Ok(()))) => v.failures.push(format!(
                    "runner {group} can land on ordinary nodes, away from the engine; give it the [runners] nodeSelector"
                )),
                Ok((Ok(()), Err(_))) => v.evidence.push(format!(
                    "runner {group} lands only on the {}, where the engine runs; whether its requests fit is the cluster scheduler's to say at apply",
                    nodes.shown
                )),
            }
        }
        return v;
    }
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
