//! spar-scheduling: kube-scheduler's filters and what they read, shared by two users that
//! must agree. `spar::analysis::scheduling` (which re-exports this crate) judges offline
//! whether the pods a stack declares can be placed on the nodes it declares, before
//! anything is applied; the sandbox's Kubernetes API simulator binds real Pods to real
//! Nodes with the same filters and writes the same messages.
//!
//! What it owns:
//! - The pods EKS's managed add-ons run ([`eks_addons`]: CoreDNS, the node agents), as pod
//!   templates.
//! - The EC2 instance-type table ([`instance_types`]: vCPU, memory, local NVMe, EKS max
//!   pods, us-east-1 on-demand price from Karpenter's static list), embedded at compile time.
//! - Kubernetes quantities and the [`Resources`] the scheduler counts ([`parse_cpu`],
//!   [`parse_memory`], [`format_cpu`], [`format_memory`]).
//! - Pod templates read from workload manifests ([`pod_templates`]), a pod's effective
//!   request ([`requests`]) and everything the filters read from it, extracted once
//!   ([`PodRequirements`]).
//! - Nodes: [`allocatable`] on the EKS AMI, concrete [`CandidateNode`]s, and
//!   [`NodeShape`]s read from a managed node group or a Karpenter NodePool.
//! - The filters ([`filter()`]: TaintToleration, NodeAffinity, NodeResourcesFit, in
//!   kube-scheduler's order and wording, reusable on concrete Nodes) and kube-scheduler's
//!   aggregate message ([`scheduler_message`]).
//! - Placement ([`Placer`], [`place()`]): per shape and instance type, whether a pod fits after
//!   the DaemonSets that land there, or why not ([`Placement::explain`]); and how many such
//!   pods a NodePool's CPU limit holds ([`how_many_fit`]).
//!
//! The rules it keeps are documented in the submodule that keeps them, each citing the
//! upstream source it follows: [`quantity`], [`pod`], [`node`], [`filter`](mod@filter),
//! [`place`](mod@place). Everything public is also re-exported here.
//!
//! Not modelled anywhere here: pod affinity and anti-affinity, topology spread constraints,
//! preferred (soft) node affinity and `PreferNoSchedule` (both only score), volumes and
//! their zones, host ports, extended resources and ephemeral storage, `spec.nodeName`,
//! node conditions and `unschedulable`, priorities and preemption, pods already running
//! other than DaemonSets, and zones and offerings (spot availability). A "fits" answer is
//! therefore necessary, not sufficient; a "does not fit" answer from these filters holds.
//!
//! Cost: [`Placer::new`] builds each shape's candidate nodes and DaemonSet overhead once;
//! placing a pod reads its spec once and runs three cheap filters per candidate (1,000 pod
//! templates on 50 shapes of 10 types place in well under a second in release builds; see
//! the `checks` benchmark of `stacks/dagger-ci` and `docs/BENCHMARKS.md`).

pub mod eks_addons;
pub mod filter;
pub mod instance_types;
pub mod node;
pub mod place;
pub mod pod;
pub mod quantity;

pub use filter::{NODE_AFFINITY_REASON, Resource, Shortfall, Unfit, daemon_should_run, filter, scheduler_message};
pub use node::{
    CandidateNode, EVICTION_HARD_MEMORY_MIB, NodeShape, ShapeError, ShapeKind, allocatable, kube_reserved_memory_mib,
    kube_reserved_milli_cpu, node_quantities,
};
pub use place::{HowMany, NodesNeeded, Placement, Placer, ShapePlacement, how_many_fit, place, place_all};
pub use pod::{
    LabelRequirement, NodeSelectorTerm, NodeTaint, Operator, PodRequirements, PodTemplate, TaintEffect, Toleration,
    TolerationOperator, WorkloadKind, daemonset_tolerations, pod_templates, requests,
};
pub use quantity::{QuantityError, Resources, format_cpu, format_memory, parse_cpu, parse_memory};

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;

    fn template(owner: &str, kind: WorkloadKind, spec: Value) -> PodTemplate {
        PodTemplate {
            owner: owner.into(),
            kind,
            replicas: if kind == WorkloadKind::DaemonSet { 0 } else { 1 },
            spec,
        }
    }

    fn requesting(cpu: &str, memory: &str) -> Value {
        json!({"containers": [{"name": "main", "resources": {"requests": {"cpu": cpu, "memory": memory}}}]})
    }

    fn runner_pool(families: &[&str], capacity: &[&str]) -> Value {
        json!({
            "apiVersion": "karpenter.sh/v1",
            "kind": "NodePool",
            "metadata": {"name": "dagger-large"},
            "spec": {
                "template": {
                    "metadata": {"labels": {"github-actions-runner": "true"}},
                    "spec": {
                        "taints": [{"key": "github-actions-runner", "value": "true", "effect": "NoSchedule"}],
                        "requirements": [
                            {"key": "karpenter.k8s.aws/instance-family", "operator": "In", "values": families},
                            {"key": "karpenter.k8s.aws/instance-size", "operator": "In", "values": ["2xlarge"]},
                            {"key": "karpenter.sh/capacity-type", "operator": "In", "values": capacity},
                        ],
                    }
                },
                "limits": {"cpu": "256"},
            }
        })
    }

    fn runner_spec(cpu: &str) -> Value {
        let mut spec = requesting(cpu, "4Gi");
        spec["nodeSelector"] = json!({"github-actions-runner": "true"});
        spec["tolerations"] =
            json!([{"key": "github-actions-runner", "operator": "Equal", "value": "true", "effect": "NoSchedule"}]);
        spec
    }

    #[test]
    fn placement_explains_the_shortfall_after_daemonsets() {
        let pool = NodeShape::from_node_pool(&runner_pool(&["c6id", "m6id", "r6id"], &["on-demand"])).expect("pool");
        let runner = template("runner", WorkloadKind::Deployment, runner_spec("10"));
        let p = place(&runner, std::slice::from_ref(&pool), &[]).expect("placed");
        assert!(!p.fits_on("dagger-large"));
        assert!(p.shapes_that_fit().is_empty());
        assert_eq!(
            p.explain("dagger-large"),
            "runner on dagger-large: 0/3 instance types fit: c6id.2xlarge, m6id.2xlarge, r6id.2xlarge: \
             Insufficient cpu (requested 10, allocatable 7.91)"
        );

        // A DaemonSet tolerating everything takes 500m first; one for arm64 only and one not
        // tolerating the runner taint do not land.
        let everywhere = {
            let mut s = requesting("500m", "256Mi");
            s["tolerations"] = json!([{"operator": "Exists"}]);
            template("DaemonSet kube-system/agent", WorkloadKind::DaemonSet, s)
        };
        let arm_only = {
            let mut s = requesting("1", "1Gi");
            s["tolerations"] = json!([{"operator": "Exists"}]);
            s["nodeSelector"] = json!({"kubernetes.io/arch": "arm64"});
            template("DaemonSet kube-system/arm", WorkloadKind::DaemonSet, s)
        };
        let untolerating = template(
            "DaemonSet kube-system/plain",
            WorkloadKind::DaemonSet,
            requesting("1", "1Gi"),
        );
        let ds = [everywhere, arm_only, untolerating];
        let runner = template("runner", WorkloadKind::Deployment, runner_spec("7500m"));
        let p = place(&runner, std::slice::from_ref(&pool), &ds).expect("placed");
        let s = p.shape("dagger-large").expect("shape");
        assert_eq!(s.daemonsets, ["DaemonSet kube-system/agent"]);
        assert!(s.fits.is_empty());
        assert_eq!(
            p.explain("dagger-large"),
            "runner on dagger-large: 0/3 instance types fit: c6id.2xlarge, m6id.2xlarge, r6id.2xlarge: \
             Insufficient cpu (requested 7.50, allocatable 7.41)"
        );
        let small = template("runner", WorkloadKind::Deployment, runner_spec("7"));
        let p = place(&small, std::slice::from_ref(&pool), &ds).expect("placed");
        assert_eq!(
            p.shape("dagger-large").expect("shape").fits,
            ["c6id.2xlarge", "m6id.2xlarge", "r6id.2xlarge"]
        );
        assert_eq!(p.shapes_that_fit(), ["dagger-large"]);
        assert_eq!(
            p.explain("dagger-large"),
            "runner on dagger-large: 3/3 instance types fit"
        );
        assert_eq!(p.explain("nope"), "runner: no shape `nope` was placed");
    }

    #[test]
    fn daemonsets_that_alone_overflow_are_reported() {
        let g = NodeShape::managed_node_group("tiny", &["t3.medium"], BTreeMap::new(), vec![]).expect("group");
        let hog = template(
            "DaemonSet kube-system/hog",
            WorkloadKind::DaemonSet,
            requesting("3", "1Gi"),
        );
        let pod = template("Deployment a/b", WorkloadKind::Deployment, requesting("100m", "64Mi"));
        let p = place(&pod, std::slice::from_ref(&g), &[hog]).expect("placed");
        let s = p.shape("tiny").expect("shape");
        assert_eq!(s.daemonset_overflow.len(), 1);
        assert_eq!(
            p.explain("tiny"),
            "Deployment a/b on tiny: 0/1 instance types fit: t3.medium: \
             Insufficient cpu (requested 0.10, allocatable 0); \
             the DaemonSets alone do not fit on t3.medium: Insufficient cpu (requested 3, allocatable 1.93)"
        );
    }

    #[test]
    fn every_allowed_capacity_type_is_tried() {
        let pool = NodeShape::from_node_pool(&runner_pool(&["c6id"], &["spot", "on-demand"])).expect("pool");
        assert_eq!(pool.candidates()[0].labels["karpenter.sh/capacity-type"], "spot");
        let mut spec = runner_spec("1");
        spec["nodeSelector"]["karpenter.sh/capacity-type"] = json!("on-demand");
        let pod = template("p", WorkloadKind::Deployment, spec.clone());
        assert!(
            place(&pod, std::slice::from_ref(&pool), &[])
                .expect("placed")
                .fits_on("dagger-large")
        );
        spec["nodeSelector"]["karpenter.sh/capacity-type"] = json!("reserved");
        let pod = template("p", WorkloadKind::Deployment, spec);
        let p = place(&pod, std::slice::from_ref(&pool), &[]).expect("placed");
        assert_eq!(
            p.explain("dagger-large"),
            "p on dagger-large: 0/1 instance types fit: c6id.2xlarge: node(s) didn't match Pod's node affinity/selector"
        );
    }

    #[test]
    fn candidates_give_the_kube_scheduler_message() {
        let g = NodeShape::managed_node_group(
            "system",
            &["m6i.large", "m6i.xlarge", "m7g.large"],
            BTreeMap::new(),
            vec![NodeTaint::new(
                "CriticalAddonsOnly",
                Some("true"),
                TaintEffect::NoSchedule,
            )],
        )
        .expect("group");
        let pod = PodRequirements::from_spec(&requesting("100m", "128Mi")).expect("pod");
        let results: Vec<_> = g
            .candidates()
            .iter()
            .map(|n| (n.name.clone(), filter(&pod, n, &Resources::ZERO)))
            .collect();
        assert_eq!(
            scheduler_message(&results),
            "0/3 nodes are available: 3 node(s) had untolerated taint {CriticalAddonsOnly: true}."
        );
    }

    #[test]
    fn how_many_fit_within_the_cpu_limit() {
        let pool = NodeShape::from_node_pool(&runner_pool(&["c6id", "m6id"], &["on-demand"])).expect("pool");
        // 2 CPU / 4 GiB runners: a c6id.2xlarge (7.91 CPU, 15.03 GiB left) holds 3 of them,
        // an m6id.2xlarge (7.91 CPU, 31.03 GiB) also 3; 256 CPU allows 32 nodes → 96.
        let pod = PodRequirements::from_spec(&runner_spec("2")).expect("pod");
        let h = how_many_fit(&pod, &pool, &[]).expect("parses").expect("fits");
        assert_eq!(
            (h.instance_type, h.pods_per_node, h.nodes, h.total),
            ("c6id.2xlarge", 3, Some(32), Some(96))
        );
        // Memory-bound: 8 GiB runners fit once on c6id.2xlarge, 3 times on m6id.2xlarge.
        let mut spec = runner_spec("2");
        spec["containers"][0]["resources"]["requests"]["memory"] = json!("8Gi");
        let pod = PodRequirements::from_spec(&spec).expect("pod");
        let h = how_many_fit(&pod, &pool, &[]).expect("parses").expect("fits");
        assert_eq!(
            (h.instance_type, h.pods_per_node, h.total),
            ("m6id.2xlarge", 3, Some(96))
        );
        // A pod that fits nowhere.
        let pod = PodRequirements::from_spec(&runner_spec("64")).expect("pod");
        assert_eq!(how_many_fit(&pod, &pool, &[]).expect("parses"), None);
        // Without a limit: no node count, the best pods per vCPU.
        let g =
            NodeShape::managed_node_group("g", &["m6i.large", "m6i.4xlarge"], BTreeMap::new(), vec![]).expect("group");
        let pod = PodRequirements::from_spec(&requesting("1", "1Gi")).expect("pod");
        let h = how_many_fit(&pod, &g, &[]).expect("parses").expect("fits");
        assert_eq!(
            (h.instance_type, h.pods_per_node, h.nodes, h.total),
            ("m6i.4xlarge", 15, None, None)
        );
    }

    #[test]
    fn nodes_needed_packs_pods_after_the_daemonsets() {
        let pool = NodeShape::from_node_pool(&runner_pool(&["c6id"], &["on-demand"])).expect("pool");
        let small = PodRequirements::from_spec(&runner_spec("2")).expect("pod");
        let large = PodRequirements::from_spec(&runner_spec("4")).expect("pod");
        let placer = Placer::new(std::slice::from_ref(&pool), &[]).expect("placer");
        // c6id.2xlarge leaves 7.91 CPU: 3 small runners a node, so 7 need 3 nodes.
        assert_eq!(
            placer.nodes_needed("dagger-large", "c6id.2xlarge", &[(&small, 7)]),
            NodesNeeded::Nodes(3)
        );
        // Largest first: 4+2 and 4+2 share two nodes, the third small runner needs a third.
        assert_eq!(
            placer.nodes_needed("dagger-large", "c6id.2xlarge", &[(&small, 3), (&large, 2)]),
            NodesNeeded::Nodes(3)
        );
        assert_eq!(
            placer.nodes_needed("dagger-large", "c6id.2xlarge", &[(&small, 0)]),
            NodesNeeded::Nodes(0)
        );
        // A DaemonSet taking 1 CPU and 4 GiB leaves 11.03 GiB: memory allows 2 runners a node.
        let mut agent = requesting("1", "4Gi");
        agent["tolerations"] = json!([{"operator": "Exists"}]);
        let agent = template("DaemonSet engine", WorkloadKind::DaemonSet, agent);
        let placer = Placer::new(std::slice::from_ref(&pool), &[agent]).expect("placer");
        assert_eq!(
            placer.nodes_needed("dagger-large", "c6id.2xlarge", &[(&small, 7)]),
            NodesNeeded::Nodes(4)
        );
        // A type the pool does not have, and a pod the pool's taint keeps out.
        assert_eq!(
            placer.nodes_needed("dagger-large", "m6i.large", &[(&small, 1)]),
            NodesNeeded::NoSuchType
        );
        let stranger = PodRequirements::from_spec(&requesting("1", "1Gi")).expect("pod");
        assert!(matches!(
            placer.nodes_needed("dagger-large", "c6id.2xlarge", &[(&small, 1), (&stranger, 1)]),
            NodesNeeded::DoesNotFit { group: 1, .. }
        ));
    }

    #[test]
    fn bad_quantities_fail_placement_naming_the_owner() {
        let g = NodeShape::managed_node_group("g", &["m6i.large"], BTreeMap::new(), vec![]).expect("group");
        let bad = template("DaemonSet x/y", WorkloadKind::DaemonSet, requesting("lots", "1Gi"));
        let e = Placer::new(std::slice::from_ref(&g), &[bad]).expect_err("bad DaemonSet");
        assert!(
            e.to_string()
                .starts_with("DaemonSet x/y containers[0] (main) resources.requests.cpu"),
            "{e}"
        );
        let placer = Placer::new(std::slice::from_ref(&g), &[]).expect("placer");
        let bad = template("Deployment a/b", WorkloadKind::Deployment, requesting("1", "1 GB"));
        assert!(
            placer
                .place(&bad)
                .expect_err("bad pod")
                .to_string()
                .contains("\"1 GB\"")
        );
    }

    // Property tests over generated pods and nodes.

    const KEYS: [&str; 3] = ["a", "b", "c"];
    const VALUES: [&str; 4] = ["x", "y", "1", "5"];
    const EFFECTS: [TaintEffect; 3] = [
        TaintEffect::NoSchedule,
        TaintEffect::PreferNoSchedule,
        TaintEffect::NoExecute,
    ];

    fn key() -> impl Strategy<Value = String> {
        prop::sample::select(&KEYS[..]).prop_map(str::to_string)
    }

    fn value() -> impl Strategy<Value = String> {
        prop::sample::select(&VALUES[..]).prop_map(str::to_string)
    }

    fn taint() -> impl Strategy<Value = NodeTaint> {
        (key(), prop::option::of(value()), prop::sample::select(&EFFECTS[..])).prop_map(|(k, v, e)| NodeTaint {
            key: k,
            value: v,
            effect: e,
        })
    }

    fn node() -> impl Strategy<Value = (CandidateNode, Resources)> {
        (
            prop::collection::btree_map(key(), value(), 0..3),
            prop::collection::vec(taint(), 0..3),
            (0u64..8000, 0u64..16384, 0u64..6),
            (0u64..8000, 0u64..16384, 0u64..6),
        )
            .prop_map(|(labels, taints, (cpu, mem, pods), (ucpu, umem, upods))| {
                let node = CandidateNode {
                    name: "n".into(),
                    labels,
                    taints,
                    allocatable: Resources {
                        milli_cpu: cpu,
                        memory_bytes: mem << 20,
                        pods,
                    },
                };
                (
                    node,
                    Resources {
                        milli_cpu: ucpu,
                        memory_bytes: umem << 20,
                        pods: upods,
                    },
                )
            })
    }

    fn toleration() -> impl Strategy<Value = Value> {
        (
            prop::option::of(key()),
            prop::sample::select(&["", "Equal", "Exists", "Gt"][..]),
            prop::option::of(value()),
            prop::sample::select(&["", "NoSchedule", "PreferNoSchedule", "NoExecute"][..]),
        )
            .prop_map(|(k, op, v, e)| json!({"key": k, "operator": op, "value": v, "effect": e}))
    }

    fn expression() -> impl Strategy<Value = Value> {
        (
            key(),
            prop::sample::select(&["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"][..]),
            prop::collection::vec(value(), 1..3),
            0i64..7,
        )
            .prop_map(|(k, op, vs, n)| match op {
                "Exists" | "DoesNotExist" => json!({"key": k, "operator": op}),
                "Gt" | "Lt" => json!({"key": k, "operator": op, "values": [n.to_string()]}),
                _ => json!({"key": k, "operator": op, "values": vs}),
            })
    }

    /// A pod spec without its resources, which the tests add.
    fn pod_spec() -> impl Strategy<Value = Value> {
        (
            prop::collection::btree_map(key(), value(), 0..2),
            prop::collection::vec(toleration(), 0..3),
            prop::option::of(prop::collection::vec(prop::collection::vec(expression(), 0..3), 0..3)),
        )
            .prop_map(|(selector, tolerations, terms)| {
                let mut spec = json!({"nodeSelector": selector, "tolerations": tolerations});
                if let Some(terms) = terms {
                    let terms: Vec<Value> = terms.into_iter().map(|e| json!({"matchExpressions": e})).collect();
                    let required = json!({"nodeSelectorTerms": terms});
                    spec["affinity"] =
                        json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": required}});
                }
                spec
            })
    }

    fn with_requests(mut spec: Value, milli_cpu: u64, mib: u64) -> PodRequirements {
        spec["containers"] =
            json!([{"resources": {"requests": {"cpu": format!("{milli_cpu}m"), "memory": format!("{mib}Mi")}}}]);
        PodRequirements::from_spec(&spec).expect("generated specs parse")
    }

    /// A pod spec (without resources), a node with what it already runs, and a request.
    fn case() -> impl Strategy<Value = (Value, CandidateNode, Resources, u64, u64)> {
        (pod_spec(), node(), 0u64..6000, 0u64..12000).prop_map(|(spec, (n, used), cpu, mib)| (spec, n, used, cpu, mib))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

        /// Adding a NoSchedule taint never makes an unschedulable pod schedulable.
        #[test]
        fn a_new_taint_never_admits((spec, n, used, cpu, mib) in case(), t in (key(), prop::option::of(value()))) {
            let pod = with_requests(spec, cpu, mib);
            if filter(&pod, &n, &used).is_err() {
                let mut tainted = n.clone();
                tainted.taints.push(NodeTaint { key: t.0, value: t.1, effect: TaintEffect::NoSchedule });
                prop_assert!(filter(&pod, &tainted, &used).is_err());
            }
        }

        /// Adding a toleration never makes a schedulable pod unschedulable.
        #[test]
        fn a_new_toleration_never_rejects((spec, n, used, cpu, mib) in case(), tol in toleration()) {
            let pod = with_requests(spec.clone(), cpu, mib);
            if filter(&pod, &n, &used).is_ok() {
                let mut more = spec;
                more["tolerations"].as_array_mut().expect("list").push(tol);
                prop_assert!(filter(&with_requests(more, cpu, mib), &n, &used).is_ok());
            }
        }

        /// Requesting more never turns unfit into fit.
        #[test]
        fn a_bigger_request_never_fits_better((spec, n, used, cpu, mib) in case(), more in (0u64..3000, 0u64..4000)) {
            if filter(&with_requests(spec.clone(), cpu, mib), &n, &used).is_err() {
                prop_assert!(filter(&with_requests(spec, cpu + more.0, mib + more.1), &n, &used).is_err());
            }
        }
    }
}
