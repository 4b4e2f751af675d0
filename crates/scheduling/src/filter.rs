//! kube-scheduler's node filters, on one pod and one node, with its reasons and its
//! aggregate `FailedScheduling` message. Usable on concrete Nodes (the API simulator's
//! scheduler) as well as on a shape's candidate nodes.
//!
//! Rules kept here, in the default profile's filter order (kube-scheduler
//! `pkg/scheduler/apis/config/v1/default_plugins.go`), stopping at the first plugin that
//! rejects, as the framework's `RunFilterPlugins` does:
//! 1. TaintToleration (`plugins/tainttoleration/taint_toleration.go`): the node's first
//!    `NoSchedule` or `NoExecute` taint no toleration tolerates rejects it, with
//!    `node(s) had untolerated taint {key: value}` (`{key: }` for a taint without a value).
//!    `PreferNoSchedule` only scores, so never filters.
//! 2. NodeAffinity (`plugins/nodeaffinity/node_affinity.go`): `spec.nodeSelector` (every
//!    label equal) and the required node affinity (terms ORed, expressions ANDed,
//!    `matchFields` on the node's name) must both hold; otherwise
//!    `node(s) didn't match Pod's node affinity/selector`.
//! 3. NodeResourcesFit (`plugins/noderesources/fit.go`, `fitsRequest`): `Too many pods` when
//!    the node's pods plus this one exceed its pod allocatable; then, unless the pod requests
//!    no CPU and no memory, `Insufficient cpu` / `Insufficient memory` for each resource
//!    requested (> 0) beyond what is left (allocatable − used). All shortfalls are reported,
//!    in that order.
//!
//! The aggregate ([`scheduler_message`]) is `FitError.Error()` of
//! `pkg/scheduler/framework/types.go`: `0/N nodes are available: ` and then, for each
//! distinct reason, `<count> <reason>`, the strings sorted (so by count, then text, as Go's
//! `sort.Strings` orders them) and joined with `, `, ending in `.`.
//!
//! Kubernetes 1.35 (kubernetes/kubernetes#134740) changed the TaintToleration reason to
//! `node(s) had untolerated taint(s)`, no longer naming the taint; spar keeps the named
//! form of 1.34 and earlier because it tells the reader which taint to tolerate.
//!
//! Not modelled: NodeUnschedulable (`spec.unschedulable`), NodeName, NodePorts, volume
//! plugins, PodTopologySpread, InterPodAffinity, extended resources and ephemeral storage,
//! PreFilter and PostFilter (preemption) messages.

use std::collections::BTreeMap;
use std::fmt;

use super::node::CandidateNode;
use super::pod::{Labels, PodRequirements, TaintEffect};
use super::quantity::{Resources, format_cpu, format_memory};

/// NodeAffinity's reason (`ErrReasonPod`).
pub const NODE_AFFINITY_REASON: &str = "node(s) didn't match Pod's node affinity/selector";

/// A resource the filters count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resource {
    Cpu,
    Memory,
    Pods,
}

impl Resource {
    /// The Kubernetes resource name.
    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Cpu => "cpu",
            Resource::Memory => "memory",
            Resource::Pods => "pods",
        }
    }

    /// An amount of this resource for messages (`7.91`, `14.40Gi`, `3`).
    pub fn format(self, amount: u64) -> String {
        match self {
            Resource::Cpu => format_cpu(amount),
            Resource::Memory => format_memory(amount),
            Resource::Pods => amount.to_string(),
        }
    }
}

/// One resource a node is short of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shortfall {
    pub resource: Resource,
    /// What the pod requests (millicores, bytes, pods).
    pub requested: u64,
    /// What the node has left: allocatable minus what is already used.
    pub allocatable_left: u64,
}

impl Shortfall {
    /// kube-scheduler's reason.
    pub fn reason(&self) -> &'static str {
        match self.resource {
            Resource::Pods => "Too many pods",
            Resource::Cpu => "Insufficient cpu",
            Resource::Memory => "Insufficient memory",
        }
    }

    /// The reason with the amounts: `Insufficient cpu (requested 10, allocatable 7.91)`.
    pub fn detail(&self) -> String {
        format!(
            "{} (requested {}, allocatable {})",
            self.reason(),
            self.resource.format(self.requested),
            self.resource.format(self.allocatable_left)
        )
    }
}

/// Why a pod does not fit a node: the first filter that rejected it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Unfit {
    /// TaintToleration: the first taint that filters and no toleration tolerates.
    UntoleratedTaint {
        key: String,
        value: Option<String>,
        effect: TaintEffect,
    },
    /// NodeAffinity: `nodeSelector` or the required node affinity does not match.
    NodeSelectorMismatch,
    /// NodeResourcesFit: every resource short, in kube-scheduler's order (pods, cpu,
    /// memory); never empty.
    Insufficient(Vec<Shortfall>),
}

impl Unfit {
    /// The reasons kube-scheduler records for the node (its `Status.Reasons()`).
    pub fn reasons(&self) -> Vec<String> {
        match self {
            Unfit::UntoleratedTaint { key, value, .. } => {
                vec![format!(
                    "node(s) had untolerated taint {{{key}: {}}}",
                    value.as_deref().unwrap_or("")
                )]
            }
            Unfit::NodeSelectorMismatch => vec![NODE_AFFINITY_REASON.to_string()],
            Unfit::Insufficient(s) => s.iter().map(|s| s.reason().to_string()).collect(),
        }
    }

    /// The reasons with amounts, for people: `Insufficient cpu (requested 10, allocatable
    /// 7.91)`.
    pub fn detail(&self) -> String {
        match self {
            Unfit::Insufficient(s) => s.iter().map(Shortfall::detail).collect::<Vec<_>>().join(", "),
            other => other.reasons().join(", "),
        }
    }
}

impl fmt::Display for Unfit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reasons().join(", "))
    }
}

/// Runs the filters for `pod` on `node`, where `used` is what the node's pods already
/// request (with `pods` their count). `Ok` when the pod fits.
pub fn filter(pod: &PodRequirements, node: &CandidateNode, used: &Resources) -> Result<(), Unfit> {
    check_taints(pod, &node.taints)?;
    if !matches_node_affinity(pod, &node.labels, &node.name) {
        return Err(Unfit::NodeSelectorMismatch);
    }
    check_resources(&pod.requests, &node.allocatable, used)
}

/// The DaemonSet controller's predicate (`pkg/controller/daemon`, `NodeShouldRunDaemonPod`):
/// taints the pod does not tolerate (`NoSchedule` and `NoExecute`) and node affinity or
/// `nodeSelector`, but not resources (the scheduler judges those once the pod exists). Pass
/// the requirements of a pod made from the DaemonSet's template, with
/// [`super::pod::daemonset_tolerations`] added.
pub fn daemon_should_run(pod: &PodRequirements, node: &CandidateNode) -> Result<(), Unfit> {
    check_taints(pod, &node.taints)?;
    if matches_node_affinity(pod, &node.labels, &node.name) {
        Ok(())
    } else {
        Err(Unfit::NodeSelectorMismatch)
    }
}

/// TaintToleration.
pub(crate) fn check_taints(pod: &PodRequirements, taints: &[super::pod::NodeTaint]) -> Result<(), Unfit> {
    let untolerated = taints.iter().find(|t| {
        matches!(t.effect, TaintEffect::NoSchedule | TaintEffect::NoExecute)
            && !pod.tolerations.iter().any(|tol| tol.tolerates(t))
    });
    match untolerated {
        None => Ok(()),
        Some(t) => Err(Unfit::UntoleratedTaint {
            key: t.key.clone(),
            value: t.value.clone(),
            effect: t.effect,
        }),
    }
}

/// NodeAffinity: `nodeSelector` and the required terms.
pub(crate) fn matches_node_affinity<L: Labels + ?Sized>(pod: &PodRequirements, labels: &L, name: &str) -> bool {
    if !pod
        .node_selector
        .iter()
        .all(|(k, v)| labels.label(k) == Some(v.as_str()))
    {
        return false;
    }
    match &pod.required_terms {
        None => true,
        Some(terms) => terms.iter().any(|term| {
            term.match_expressions.iter().all(|r| r.matches(labels.label(&r.key)))
                && term.match_fields.iter().all(|r| r.matches(Some(name)))
        }),
    }
}

/// NodeResourcesFit.
pub(crate) fn check_resources(req: &Resources, allocatable: &Resources, used: &Resources) -> Result<(), Unfit> {
    let mut short = Vec::new();
    let left = allocatable.minus(*used);
    if used.pods.saturating_add(1) > allocatable.pods {
        short.push(Shortfall {
            resource: Resource::Pods,
            requested: 1,
            allocatable_left: left.pods,
        });
    }
    if req.milli_cpu != 0 || req.memory_bytes != 0 {
        if req.milli_cpu > 0 && req.milli_cpu > left.milli_cpu {
            short.push(Shortfall {
                resource: Resource::Cpu,
                requested: req.milli_cpu,
                allocatable_left: left.milli_cpu,
            });
        }
        if req.memory_bytes > 0 && req.memory_bytes > left.memory_bytes {
            short.push(Shortfall {
                resource: Resource::Memory,
                requested: req.memory_bytes,
                allocatable_left: left.memory_bytes,
            });
        }
    }
    if short.is_empty() {
        Ok(())
    } else {
        Err(Unfit::Insufficient(short))
    }
}

/// kube-scheduler's aggregate message over every node's result, e.g.
/// `0/3 nodes are available: 3 node(s) had untolerated taint {CriticalAddonsOnly: true}.`
///
/// Upstream only writes it when no node fits; when some do, this returns
/// `<fit>/<N> nodes are available` followed by the same histogram of the others (spar's
/// form). With no nodes at all it is upstream's `no nodes available to schedule pods`.
pub fn scheduler_message<S: AsRef<str>>(results: &[(S, Result<(), Unfit>)]) -> String {
    if results.is_empty() {
        return "no nodes available to schedule pods".to_string();
    }
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut fit = 0;
    for (_, r) in results {
        match r {
            Ok(()) => fit += 1,
            Err(u) => {
                for reason in u.reasons() {
                    *counts.entry(reason).or_default() += 1;
                }
            }
        }
    }
    // FitError.Error(): fmt.Sprintf("%v %v", count, reason), sort.Strings, ", ".
    let mut histogram: Vec<String> = counts.into_iter().map(|(reason, n)| format!("{n} {reason}")).collect();
    histogram.sort();
    let mut msg = format!("{fit}/{} nodes are available", results.len());
    if !histogram.is_empty() {
        msg.push_str(": ");
        msg.push_str(&histogram.join(", "));
    }
    msg.push('.');
    msg
}

/// A node's labels with one value swapped in (or added), without copying the map.
pub(crate) struct WithLabel<'a> {
    pub base: &'a BTreeMap<String, String>,
    pub key: &'a str,
    pub value: &'a str,
}

impl Labels for WithLabel<'_> {
    fn label(&self, key: &str) -> Option<&str> {
        if key == self.key {
            Some(self.value)
        } else {
            self.base.label(key)
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::super::pod::NodeTaint;
    use super::*;

    fn node(labels: &[(&str, &str)], taints: Vec<NodeTaint>) -> CandidateNode {
        CandidateNode {
            name: "node-1".into(),
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            taints,
            allocatable: Resources {
                milli_cpu: 4000,
                memory_bytes: 8 << 30,
                pods: 10,
            },
        }
    }

    fn pod(spec: Value) -> PodRequirements {
        PodRequirements::from_spec(&spec).expect("valid spec")
    }

    fn fits(spec: Value, n: &CandidateNode) -> Result<(), Unfit> {
        filter(&pod(spec), n, &Resources::ZERO)
    }

    fn taint(key: &str, value: Option<&str>, effect: TaintEffect) -> NodeTaint {
        NodeTaint::new(key, value, effect)
    }

    #[test]
    fn untolerated_taints_reject() {
        let n = node(&[], vec![taint("dedicated", Some("ci"), TaintEffect::NoSchedule)]);
        assert_eq!(
            fits(json!({}), &n),
            Err(Unfit::UntoleratedTaint {
                key: "dedicated".into(),
                value: Some("ci".into()),
                effect: TaintEffect::NoSchedule
            })
        );
        assert_eq!(
            fits(json!({}), &n).unwrap_err().to_string(),
            "node(s) had untolerated taint {dedicated: ci}"
        );
        let n = node(&[], vec![taint("gone", None, TaintEffect::NoExecute)]);
        assert_eq!(
            fits(json!({}), &n).unwrap_err().to_string(),
            "node(s) had untolerated taint {gone: }"
        );
        // PreferNoSchedule never filters.
        let n = node(&[], vec![taint("soft", None, TaintEffect::PreferNoSchedule)]);
        assert_eq!(fits(json!({}), &n), Ok(()));
    }

    #[test]
    fn each_toleration_form() {
        let n = node(&[], vec![taint("dedicated", Some("ci"), TaintEffect::NoSchedule)]);
        let with = |tol: Value| fits(json!({"tolerations": [tol]}), &n);
        // Equal with the value (explicit operator, and the default operator).
        assert_eq!(
            with(json!({"key": "dedicated", "operator": "Equal", "value": "ci", "effect": "NoSchedule"})),
            Ok(())
        );
        assert_eq!(
            with(json!({"key": "dedicated", "value": "ci", "effect": "NoSchedule"})),
            Ok(())
        );
        assert!(with(json!({"key": "dedicated", "value": "other", "effect": "NoSchedule"})).is_err());
        assert!(
            with(json!({"key": "dedicated", "effect": "NoSchedule"})).is_err(),
            "Equal compares to \"\""
        );
        // Exists ignores the value.
        assert_eq!(
            with(json!({"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"})),
            Ok(())
        );
        assert_eq!(
            with(json!({"key": "dedicated", "operator": "Exists", "value": "ignored"})),
            Ok(())
        );
        assert!(with(json!({"key": "other", "operator": "Exists"})).is_err());
        // Empty effect matches every effect; a different effect does not.
        assert_eq!(
            with(json!({"key": "dedicated", "operator": "Equal", "value": "ci"})),
            Ok(())
        );
        assert!(with(json!({"key": "dedicated", "operator": "Equal", "value": "ci", "effect": "NoExecute"})).is_err());
        // Empty key with Exists tolerates everything.
        assert_eq!(with(json!({"operator": "Exists"})), Ok(()));
        assert!(with(json!({"operator": "Exists", "effect": "NoExecute"})).is_err());
        // An unknown operator tolerates nothing.
        assert!(with(json!({"key": "dedicated", "operator": "Lt", "value": "ci"})).is_err());
        // A taint without a value is tolerated by Equal with an empty value.
        let bare = node(&[], vec![taint("bare", None, TaintEffect::NoSchedule)]);
        assert_eq!(
            fits(
                json!({"tolerations": [{"key": "bare", "operator": "Equal", "value": ""}]}),
                &bare
            ),
            Ok(())
        );
        assert!(
            fits(
                json!({"tolerations": [{"key": "bare", "operator": "Equal", "value": "x"}]}),
                &bare
            )
            .is_err()
        );
    }

    #[test]
    fn the_first_untolerated_taint_is_named() {
        let n = node(
            &[],
            vec![
                taint("a", Some("1"), TaintEffect::NoSchedule),
                taint("b", Some("2"), TaintEffect::NoExecute),
            ],
        );
        let r = fits(json!({"tolerations": [{"key": "a", "operator": "Exists"}]}), &n);
        assert_eq!(r.unwrap_err().to_string(), "node(s) had untolerated taint {b: 2}");
    }

    #[test]
    fn node_selector() {
        let n = node(&[("disk", "nvme"), ("arch", "arm64")], vec![]);
        assert_eq!(fits(json!({"nodeSelector": {"disk": "nvme"}}), &n), Ok(()));
        assert_eq!(
            fits(json!({"nodeSelector": {"disk": "nvme", "arch": "arm64"}}), &n),
            Ok(())
        );
        assert_eq!(
            fits(json!({"nodeSelector": {"disk": "ebs"}}), &n),
            Err(Unfit::NodeSelectorMismatch)
        );
        assert_eq!(
            fits(json!({"nodeSelector": {"zone": "a"}}), &n),
            Err(Unfit::NodeSelectorMismatch)
        );
        assert_eq!(
            fits(json!({"nodeSelector": {"zone": "a"}}), &n)
                .unwrap_err()
                .to_string(),
            "node(s) didn't match Pod's node affinity/selector"
        );
    }

    fn affinity(terms: Value) -> Value {
        let required = json!({"nodeSelectorTerms": terms});
        json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": required}}})
    }

    fn expr(key: &str, op: &str, values: &[&str]) -> Value {
        json!({"key": key, "operator": op, "values": values})
    }

    #[test]
    fn each_affinity_operator() {
        let n = node(&[("tier", "ci"), ("cpus", "8")], vec![]);
        let one = |e: Value| fits(affinity(json!([{"matchExpressions": [e]}])), &n);
        let ok = Ok(());
        let no = Err(Unfit::NodeSelectorMismatch);
        assert_eq!(one(expr("tier", "In", &["ci", "web"])), ok);
        assert_eq!(one(expr("tier", "In", &["web"])), no);
        assert_eq!(one(expr("tier", "NotIn", &["web"])), ok);
        assert_eq!(one(expr("tier", "NotIn", &["ci"])), no);
        assert_eq!(one(expr("absent", "NotIn", &["ci"])), ok);
        assert_eq!(one(expr("tier", "Exists", &[])), ok);
        assert_eq!(one(expr("absent", "Exists", &[])), no);
        assert_eq!(one(expr("absent", "DoesNotExist", &[])), ok);
        assert_eq!(one(expr("tier", "DoesNotExist", &[])), no);
        assert_eq!(one(expr("cpus", "Gt", &["4"])), ok);
        assert_eq!(one(expr("cpus", "Gt", &["8"])), no);
        assert_eq!(
            one(expr("tier", "Gt", &["1"])),
            no,
            "a non-integer label never compares"
        );
        assert_eq!(one(expr("cpus", "Lt", &["16"])), ok);
        assert_eq!(one(expr("cpus", "Lt", &["8"])), no);
        assert_eq!(one(expr("cpus", "Lt", &["x"])), no, "an invalid term matches nothing");
        assert_eq!(one(expr("cpus", "Gte", &["8"])), no, "Gte is not a pod operator");
    }

    #[test]
    fn terms_are_ored_and_expressions_anded() {
        let n = node(&[("tier", "ci"), ("disk", "nvme")], vec![]);
        let both = json!([{"matchExpressions": [expr("tier", "In", &["ci"]), expr("disk", "In", &["ebs"])]}]);
        assert_eq!(fits(affinity(both), &n), Err(Unfit::NodeSelectorMismatch));
        let either = json!([
            {"matchExpressions": [expr("tier", "In", &["web"])]},
            {"matchExpressions": [expr("disk", "In", &["nvme"])]},
        ]);
        assert_eq!(fits(affinity(either), &n), Ok(()));
        assert_eq!(fits(affinity(json!([])), &n), Err(Unfit::NodeSelectorMismatch));
        assert_eq!(
            fits(affinity(json!([{}])), &n),
            Err(Unfit::NodeSelectorMismatch),
            "an empty term matches nothing"
        );
        // nodeSelector and affinity must both hold.
        let mut spec = affinity(json!([{"matchExpressions": [expr("tier", "In", &["ci"])]}]));
        spec["nodeSelector"] = json!({"disk": "ebs"});
        assert_eq!(fits(spec, &n), Err(Unfit::NodeSelectorMismatch));
    }

    #[test]
    fn match_fields_on_the_node_name() {
        let n = node(&[], vec![]);
        let f = |op: &str, v: &str| {
            fits(
                affinity(json!([{"matchFields": [expr("metadata.name", op, &[v])]}])),
                &n,
            )
        };
        assert_eq!(f("In", "node-1"), Ok(()));
        assert_eq!(f("In", "node-2"), Err(Unfit::NodeSelectorMismatch));
        assert_eq!(f("NotIn", "node-2"), Ok(()));
        assert_eq!(f("NotIn", "node-1"), Err(Unfit::NodeSelectorMismatch));
    }

    #[test]
    fn each_insufficient_resource() {
        let n = node(&[], vec![]);
        let req =
            |cpu: &str, mem: &str| json!({"containers": [{"resources": {"requests": {"cpu": cpu, "memory": mem}}}]});
        assert_eq!(fits(req("4", "8Gi"), &n), Ok(()), "exactly the allocatable fits");
        assert_eq!(
            fits(req("4001m", "1Gi"), &n),
            Err(Unfit::Insufficient(vec![Shortfall {
                resource: Resource::Cpu,
                requested: 4001,
                allocatable_left: 4000
            }]))
        );
        let e = fits(req("100m", "9Gi"), &n).unwrap_err();
        assert_eq!(e.to_string(), "Insufficient memory");
        assert_eq!(e.detail(), "Insufficient memory (requested 9.00Gi, allocatable 8.00Gi)");
        let used = Resources {
            milli_cpu: 3500,
            memory_bytes: 1 << 30,
            pods: 9,
        };
        assert_eq!(filter(&pod(req("500m", "1Gi")), &n, &used), Ok(()));
        let used = Resources { pods: 10, ..used };
        let e = filter(&pod(req("1", "8Gi")), &n, &used).unwrap_err();
        assert_eq!(e.to_string(), "Too many pods, Insufficient cpu, Insufficient memory");
        assert_eq!(
            e.detail(),
            "Too many pods (requested 1, allocatable 0), Insufficient cpu (requested 1, allocatable 0.50), \
             Insufficient memory (requested 8.00Gi, allocatable 7.00Gi)"
        );
        // A pod requesting nothing only needs a pod slot, even on an overcommitted node.
        let over = Resources {
            milli_cpu: 9000,
            memory_bytes: 99 << 30,
            pods: 0,
        };
        assert_eq!(filter(&pod(json!({"containers": [{}]})), &n, &over), Ok(()));
    }

    #[test]
    fn filters_run_in_kube_scheduler_order() {
        // Tainted, mismatched and too small: the taint is reported.
        let n = node(&[], vec![taint("t", None, TaintEffect::NoSchedule)]);
        let spec = json!({"nodeSelector": {"x": "y"}, "containers": [{"resources": {"requests": {"cpu": "64"}}}]});
        assert!(matches!(fits(spec.clone(), &n), Err(Unfit::UntoleratedTaint { .. })));
        let n = node(&[], vec![]);
        assert_eq!(fits(spec, &n), Err(Unfit::NodeSelectorMismatch));
    }

    #[test]
    fn scheduler_message_matches_kube_scheduler() {
        let t = || {
            Err(Unfit::UntoleratedTaint {
                key: "CriticalAddonsOnly".into(),
                value: Some("true".into()),
                effect: TaintEffect::NoSchedule,
            })
        };
        let results = vec![("a", t()), ("b", t()), ("c", t())];
        assert_eq!(
            scheduler_message(&results),
            "0/3 nodes are available: 3 node(s) had untolerated taint {CriticalAddonsOnly: true}."
        );
        let cpu = Shortfall {
            resource: Resource::Cpu,
            requested: 1,
            allocatable_left: 0,
        };
        let mem = Shortfall {
            resource: Resource::Memory,
            requested: 1,
            allocatable_left: 0,
        };
        let results = vec![
            ("a".to_string(), Err(Unfit::Insufficient(vec![cpu, mem]))),
            ("b".to_string(), Err(Unfit::Insufficient(vec![cpu]))),
            ("c".to_string(), Err(Unfit::NodeSelectorMismatch)),
            (
                "d".to_string(),
                Err(Unfit::UntoleratedTaint {
                    key: "node-role.kubernetes.io/control-plane".into(),
                    value: None,
                    effect: TaintEffect::NoSchedule,
                }),
            ),
        ];
        assert_eq!(
            scheduler_message(&results),
            "0/4 nodes are available: 1 Insufficient memory, 1 node(s) didn't match Pod's node affinity/selector, \
             1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 2 Insufficient cpu."
        );
        assert_eq!(
            scheduler_message(&[("a", Ok(())), ("b", Err(Unfit::NodeSelectorMismatch))]),
            "1/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."
        );
        assert_eq!(scheduler_message::<&str>(&[]), "no nodes available to schedule pods");
    }
}
