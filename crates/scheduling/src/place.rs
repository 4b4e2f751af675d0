//! Placement: for a pod template and a set of node shapes, which instance types of each
//! shape it fits on — after the DaemonSets that land on such a node take their share —
//! and, when none does, why; and how many such pods a NodePool's CPU limit holds.
//!
//! Rules kept here:
//! - A DaemonSet lands on a candidate node when its template passes the node's taint and
//!   node-affinity filters with the DaemonSet controller's tolerations (its `predicates`,
//!   `pkg/controller/daemon/daemon_controller.go`); resources do not decide where it lands.
//!   The landing DaemonSets' requests and pod count are what is used before the pod
//!   arrives. When they alone exceed the node, that is reported
//!   ([`ShapePlacement::daemonset_overflow`]) and the pod sees nothing left.
//! - A NodePool allowing several capacity types is tried with each
//!   (`karpenter.sh/capacity-type` swapped in), as Karpenter launches whichever one the pod
//!   selects; a type fits when any of them does. When none does, the reason reported is the
//!   first capacity type's, unless that is the node-affinity mismatch and another's is not.
//! - "allocatable" in the messages is what is left for the pod after the DaemonSets.
//! - Work is done once: [`Placer::new`] builds each shape's candidate nodes and DaemonSet
//!   overhead, [`Placer::place`] reads a pod spec once into [`PodRequirements`] and runs only
//!   the filters per candidate; [`place`] is the one-off convenience.
//!
//! - [`Placer::nodes_needed`] packs many pods onto nodes of one type first-fit decreasing
//!   (for cost estimates); placement itself judges each replica on an empty node.
//!
//! Not modelled: pods already running (other than DaemonSets), Karpenter's choice among
//! fitting types (price, weight), and zones.

use super::filter::{Resource, Shortfall, Unfit, WithLabel, check_resources, check_taints, matches_node_affinity};
use super::node::{CandidateNode, NodeShape};
use super::pod::{PodRequirements, PodTemplate, WorkloadKind, daemonset_tolerations};
use super::quantity::{QuantityError, Resources};
use crate::instance_types::InstanceType;

/// Where one pod template fits among the shapes.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    /// The pod template's owner (`Deployment ci/runner`).
    pub owner: String,
    /// Its effective request.
    pub requests: Resources,
    pub per_shape: Vec<ShapePlacement>,
}

/// Where a pod fits within one shape.
#[derive(Debug, Clone, PartialEq)]
pub struct ShapePlacement {
    pub shape: String,
    /// Instance types the pod fits on, in the shape's order.
    pub fits: Vec<&'static str>,
    /// Instance types it does not fit on, with the reason.
    pub unfit: Vec<(&'static str, Unfit)>,
    /// Owners of the DaemonSets that land on at least one of the shape's nodes.
    pub daemonsets: Vec<String>,
    /// Instance types on which the landing DaemonSets alone exceed allocatable.
    pub daemonset_overflow: Vec<(&'static str, Unfit)>,
}

impl Placement {
    /// Names of the shapes with at least one instance type the pod fits on.
    pub fn shapes_that_fit(&self) -> Vec<&str> {
        self.per_shape
            .iter()
            .filter(|s| !s.fits.is_empty())
            .map(|s| s.shape.as_str())
            .collect()
    }

    /// Whether the pod fits on some instance type of `shape`.
    pub fn fits_on(&self, shape: &str) -> bool {
        self.shape(shape).is_some_and(|s| !s.fits.is_empty())
    }

    /// The placement within `shape`.
    pub fn shape(&self, shape: &str) -> Option<&ShapePlacement> {
        self.per_shape.iter().find(|s| s.shape == shape)
    }

    /// One line for people, e.g. `Deployment ci/runner on dagger-large: 0/3 instance types
    /// fit: c6id.2xlarge: Insufficient cpu (requested 10, allocatable 7.91); …`. Types
    /// failing for the same reason share an entry.
    pub fn explain(&self, shape: &str) -> String {
        let owner = &self.owner;
        let Some(s) = self.shape(shape) else {
            return format!("{owner}: no shape `{shape}` was placed");
        };
        let n = s.fits.len() + s.unfit.len();
        if n == 0 {
            return format!("{owner} on {shape}: the shape admits no instance type in spar's table");
        }
        let mut msg = format!("{owner} on {shape}: {}/{n} instance types fit", s.fits.len());
        if !s.unfit.is_empty() {
            msg.push_str(": ");
            msg.push_str(&grouped(&s.unfit));
        }
        if !s.daemonset_overflow.is_empty() {
            msg.push_str("; the DaemonSets alone do not fit on ");
            msg.push_str(&grouped(&s.daemonset_overflow));
        }
        msg
    }
}

/// `a, b: reason; c: other reason`, in first-appearance order.
fn grouped(entries: &[(&'static str, Unfit)]) -> String {
    let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
    for (t, u) in entries {
        let d = u.detail();
        match groups.iter_mut().find(|(detail, _)| *detail == d) {
            Some((_, types)) => types.push(t),
            None => groups.push((d, vec![t])),
        }
    }
    groups
        .iter()
        .map(|(d, types)| format!("{}: {d}", types.join(", ")))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Shapes and DaemonSets prepared once, to place many pods.
#[derive(Debug, Clone)]
pub struct Placer<'a> {
    shapes: Vec<PreparedShape<'a>>,
    daemonset_owners: Vec<String>,
}

#[derive(Debug, Clone)]
struct PreparedShape<'a> {
    shape: &'a NodeShape,
    nodes: Vec<PreparedNode>,
    /// Indices (into the DaemonSets) landing on some node of the shape.
    daemonsets: Vec<usize>,
}

#[derive(Debug, Clone)]
struct PreparedNode {
    instance_type: &'static InstanceType,
    node: CandidateNode,
    /// One per allowed capacity type (one with `None` when the shape has no choice).
    variants: Vec<Variant>,
}

#[derive(Debug, Clone)]
struct Variant {
    capacity_type: Option<String>,
    daemonset_use: Resources,
    overflow: Option<Unfit>,
}

const CAPACITY_TYPE: &str = "karpenter.sh/capacity-type";

impl<'a> Placer<'a> {
    /// Prepares `shapes` with the overhead of `daemonsets` (templates of kind DaemonSet;
    /// others are treated as DaemonSets too). Fails on a DaemonSet quantity that does not
    /// parse, naming it.
    pub fn new(shapes: &'a [NodeShape], daemonsets: &[PodTemplate]) -> Result<Self, QuantityError> {
        let ds: Vec<PodRequirements> = daemonsets
            .iter()
            .map(|t| {
                let mut r = PodRequirements::from_template(t)?;
                if t.kind != WorkloadKind::DaemonSet {
                    let host_network = t.spec["hostNetwork"].as_bool() == Some(true);
                    r.tolerations.extend(daemonset_tolerations(host_network));
                }
                Ok(r)
            })
            .collect::<Result<_, QuantityError>>()?;
        let prepared = shapes.iter().map(|s| prepare_shape(s, &ds)).collect();
        Ok(Placer {
            shapes: prepared,
            daemonset_owners: daemonsets.iter().map(|t| t.owner.clone()).collect(),
        })
    }

    /// Places a pod template (its requirements read once). A DaemonSet placed this way
    /// that is also among the Placer's DaemonSets is counted twice: pass the others.
    pub fn place(&self, pod: &PodTemplate) -> Result<Placement, QuantityError> {
        Ok(self.place_requirements(&pod.owner, &PodRequirements::from_template(pod)?))
    }

    /// Places a pod whose requirements are already read.
    pub fn place_requirements(&self, owner: &str, pod: &PodRequirements) -> Placement {
        let per_shape = self.shapes.iter().map(|s| self.place_on_shape(s, pod)).collect();
        Placement {
            owner: owner.to_string(),
            requests: pod.requests,
            per_shape,
        }
    }

    fn place_on_shape(&self, s: &PreparedShape<'_>, pod: &PodRequirements) -> ShapePlacement {
        let mut fits = Vec::new();
        let mut unfit = Vec::new();
        let mut overflow = Vec::new();
        // Taints are the shape's, the same on every node: checked once.
        let tainted = check_taints(pod, &s.shape.taints).err();
        for n in &s.nodes {
            let name = n.instance_type.name;
            if let Some(o) = n.variants.first().and_then(|v| v.overflow.clone()) {
                overflow.push((name, o));
            }
            if let Some(t) = &tainted {
                unfit.push((name, t.clone()));
                continue;
            }
            match fit_node(n, pod) {
                Ok(_) => fits.push(name),
                Err(u) => unfit.push((name, u)),
            }
        }
        ShapePlacement {
            shape: s.shape.name.clone(),
            fits,
            unfit,
            daemonsets: s.daemonsets.iter().map(|&i| self.daemonset_owners[i].clone()).collect(),
            daemonset_overflow: overflow,
        }
    }

    /// How many pods with these requirements the shape `shape` can run; see
    /// [`how_many_fit`]. `None` when no shape has that name or the pod fits no type.
    pub fn how_many_fit(&self, pod: &PodRequirements, shape: &str) -> Option<HowMany> {
        let s = self.shapes.iter().find(|s| s.shape.name == shape)?;
        check_taints(pod, &s.shape.taints).ok()?;
        let limit_nodes = |t: &InstanceType| {
            let by_cpu = s.shape.cpu_limit_milli.map(|l| l / (u64::from(t.vcpu) * 1000));
            let by_count = s.shape.max_nodes.map(u64::from);
            match (by_cpu, by_count) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        };
        let mut best: Option<HowMany> = None;
        for n in &s.nodes {
            let Ok(v) = fit_node(n, pod) else { continue };
            let left = n.node.allocatable.minus(v.daemonset_use);
            // A resource the pod does not request does not bound it.
            let per_node = [
                Some(left.pods),
                left.milli_cpu.checked_div(pod.requests.milli_cpu),
                left.memory_bytes.checked_div(pod.requests.memory_bytes),
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(0);
            let nodes = limit_nodes(n.instance_type);
            let cand = HowMany {
                instance_type: n.instance_type.name,
                vcpu: n.instance_type.vcpu,
                pods_per_node: per_node,
                nodes,
                total: nodes.map(|k| k.saturating_mul(per_node)),
            };
            if best.as_ref().is_none_or(|b| cand.better_than(b)) {
                best = Some(cand);
            }
        }
        best
    }
}

/// What [`Placer::nodes_needed`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodesNeeded {
    /// Nodes of the type the pods were packed onto (0 for no pods).
    Nodes(u64),
    /// The shape has no such instance type.
    NoSuchType,
    /// A pod of this group does not fit an empty node of the type, and why.
    DoesNotFit { group: usize, reason: Unfit },
}

impl Placer<'_> {
    /// How many nodes of `instance_type` in shape `shape` run `pods` (each requirements and
    /// a count) together, packed first-fit in decreasing order of CPU then memory request
    /// onto nodes that start with the DaemonSets landing there (for each pod, the first
    /// capacity-type variant it fits, as [`Placer::place`] judges; a node's overhead is the
    /// largest among its pods' variants). First-fit decreasing uses at most 11/9 of the
    /// optimum plus one node, so this is an estimate a little on the high side, never low.
    pub fn nodes_needed(&self, shape: &str, instance_type: &str, pods: &[(&PodRequirements, u64)]) -> NodesNeeded {
        let Some(s) = self.shapes.iter().find(|s| s.shape.name == shape) else {
            return NodesNeeded::NoSuchType;
        };
        let Some(n) = s.nodes.iter().find(|n| n.instance_type.name == instance_type) else {
            return NodesNeeded::NoSuchType;
        };
        let mut overhead = Resources::ZERO;
        let mut order = Vec::new();
        for (group, (pod, count)) in pods.iter().enumerate() {
            if *count == 0 {
                continue;
            }
            let fitted = check_taints(pod, &s.shape.taints).and_then(|()| fit_node(n, pod));
            match fitted {
                Ok(v) => {
                    overhead.milli_cpu = overhead.milli_cpu.max(v.daemonset_use.milli_cpu);
                    overhead.memory_bytes = overhead.memory_bytes.max(v.daemonset_use.memory_bytes);
                    overhead.pods = overhead.pods.max(v.daemonset_use.pods);
                    order.push((pod.requests, *count));
                }
                Err(reason) => return NodesNeeded::DoesNotFit { group, reason },
            }
        }
        order.sort_by_key(|p| std::cmp::Reverse((p.0.milli_cpu, p.0.memory_bytes)));
        let capacity = n.node.allocatable.minus(overhead);
        let mut nodes: Vec<Resources> = Vec::new();
        for (req, count) in order {
            let one = Resources { pods: 1, ..req };
            for _ in 0..count {
                let fits = |used: &Resources| {
                    let after = used.plus(one);
                    after.milli_cpu <= capacity.milli_cpu
                        && after.memory_bytes <= capacity.memory_bytes
                        && after.pods <= capacity.pods
                };
                match nodes.iter_mut().find(|used| fits(used)) {
                    Some(used) => *used = used.plus(one),
                    None => nodes.push(one),
                }
            }
        }
        NodesNeeded::Nodes(nodes.len() as u64)
    }
}

/// The first variant the pod fits, or the reason to report.
fn fit_node<'n>(n: &'n PreparedNode, pod: &PodRequirements) -> Result<&'n Variant, Unfit> {
    let mut reason: Option<Unfit> = None;
    for v in &n.variants {
        let labels_ok = match &v.capacity_type {
            Some(ct) => matches_node_affinity(
                pod,
                &WithLabel {
                    base: &n.node.labels,
                    key: CAPACITY_TYPE,
                    value: ct,
                },
                &n.node.name,
            ),
            None => matches_node_affinity(pod, &n.node.labels, &n.node.name),
        };
        let r = if labels_ok {
            check_resources(&pod.requests, &n.node.allocatable, &v.daemonset_use)
        } else {
            Err(Unfit::NodeSelectorMismatch)
        };
        match r {
            Ok(()) => return Ok(v),
            Err(u) => {
                let replace = match &reason {
                    None => true,
                    Some(Unfit::NodeSelectorMismatch) => u != Unfit::NodeSelectorMismatch,
                    Some(_) => false,
                };
                if replace {
                    reason = Some(u);
                }
            }
        }
    }
    Err(reason.unwrap_or(Unfit::NodeSelectorMismatch))
}

fn prepare_shape<'a>(shape: &'a NodeShape, ds: &[PodRequirements]) -> PreparedShape<'a> {
    let capacity: Vec<Option<String>> = if shape.capacity_types.len() > 1 {
        shape.capacity_types.iter().cloned().map(Some).collect()
    } else {
        vec![None]
    };
    let mut landing_any = vec![false; ds.len()];
    let nodes = shape
        .instance_types
        .iter()
        .map(|&t| {
            let node = shape.candidate(t);
            let variants = capacity
                .iter()
                .map(|ct| {
                    let mut used = Resources::ZERO;
                    for (i, d) in ds.iter().enumerate() {
                        let lands = check_taints(d, &node.taints).is_ok()
                            && match ct {
                                Some(ct) => matches_node_affinity(
                                    d,
                                    &WithLabel {
                                        base: &node.labels,
                                        key: CAPACITY_TYPE,
                                        value: ct,
                                    },
                                    &node.name,
                                ),
                                None => matches_node_affinity(d, &node.labels, &node.name),
                            };
                        if lands {
                            landing_any[i] = true;
                            used = used.plus(Resources { pods: 1, ..d.requests });
                        }
                    }
                    let overflow = overflow(&used, &node.allocatable);
                    Variant {
                        capacity_type: ct.clone(),
                        daemonset_use: used,
                        overflow,
                    }
                })
                .collect();
            PreparedNode {
                instance_type: t,
                node,
                variants,
            }
        })
        .collect();
    let daemonsets = (0..ds.len()).filter(|&i| landing_any[i]).collect();
    PreparedShape {
        shape,
        nodes,
        daemonsets,
    }
}

/// Where the DaemonSets' total exceeds the node.
fn overflow(used: &Resources, allocatable: &Resources) -> Option<Unfit> {
    let mut short = Vec::new();
    for (resource, u, a) in [
        (Resource::Pods, used.pods, allocatable.pods),
        (Resource::Cpu, used.milli_cpu, allocatable.milli_cpu),
        (Resource::Memory, used.memory_bytes, allocatable.memory_bytes),
    ] {
        if u > a {
            short.push(Shortfall {
                resource,
                requested: u,
                allocatable_left: a,
            });
        }
    }
    (!short.is_empty()).then_some(Unfit::Insufficient(short))
}

/// Places one pod template on `shapes`, after `daemonsets` (see the module doc). For many
/// pods, build a [`Placer`] once.
pub fn place(pod: &PodTemplate, shapes: &[NodeShape], daemonsets: &[PodTemplate]) -> Result<Placement, QuantityError> {
    Placer::new(shapes, daemonsets)?.place(pod)
}

/// How many pods of one kind a shape can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HowMany {
    /// The instance type chosen.
    pub instance_type: &'static str,
    /// Its vCPUs.
    pub vcpu: u32,
    /// Pods per node: the least, over CPU, memory and pods, of what is left after the
    /// DaemonSets divided by the pod's request (rounded down).
    pub pods_per_node: u64,
    /// Nodes of that type the shape may run: `floor(cpu limit / vCPU)` and/or
    /// [`NodeShape::max_nodes`], the smaller; `None` when the shape has neither.
    pub nodes: Option<u64>,
    /// `nodes * pods_per_node`; `None` when unbounded.
    pub total: Option<u64>,
}

impl HowMany {
    /// More pods in total, then more pods per vCPU, then (ties) the earlier type.
    fn better_than(&self, other: &HowMany) -> bool {
        if let (Some(a), Some(b)) = (self.total, other.total)
            && a != b
        {
            return a > b;
        }
        // pods/vcpu compared without division.
        u128::from(self.pods_per_node) * u128::from(other.vcpu)
            > u128::from(other.pods_per_node) * u128::from(self.vcpu)
    }
}

/// How many pods with requirements `pod` the shape can run within its CPU limit (a
/// NodePool's `spec.limits.cpu`, which Karpenter counts in vCPUs of capacity) and/or its
/// node count: greedy over single instance types — for each type the pod fits on, pods
/// per node (after `daemonsets`) times the nodes the limit allows; the type giving the
/// most pods wins (without a limit, the most pods per vCPU). `Ok(None)` when the pod fits
/// no type. Mixing types, and Karpenter's own choice (price), are not modelled.
pub fn how_many_fit(
    pod: &PodRequirements,
    shape: &NodeShape,
    daemonsets: &[PodTemplate],
) -> Result<Option<HowMany>, QuantityError> {
    let shapes = std::slice::from_ref(shape);
    Ok(Placer::new(shapes, daemonsets)?.how_many_fit(pod, &shape.name))
}

/// Placements of many templates, in their order (one [`Placer`] for all).
pub fn place_all(
    pods: &[PodTemplate],
    shapes: &[NodeShape],
    daemonsets: &[PodTemplate],
) -> Result<Vec<Placement>, QuantityError> {
    let placer = Placer::new(shapes, daemonsets)?;
    pods.iter().map(|p| placer.place(p)).collect()
}
