//! The stack's checks (section 8 of the reference design), run on what the components
//! actually declared, before anything is planned or applied: one function per check, in
//! one table ([`CHECKS`]).
//!
//! Rules kept here: each check reads the declared manifests, values and resources (never
//! the config restated), so a check can fail only when the graph really disagrees with
//! itself or with how AWS and Kubernetes behave; each failure names the resources and
//! fields that disagree and the fix; the check names are stable (they are what `--waive`
//! takes). Module map: [`shape`] (values that must agree), and the behaviour checks
//! (reachability, placement, wiring) built on `spar::analysis`.

pub mod existing;
pub mod existing_network;
mod network;
mod placement;
mod runners;
mod shape;
mod wiring;
pub(crate) mod workloads;

use serde_json::Value;
use spar::Stack;
use spar::graph::DesiredResource;
use spar::model::checks::Check;

use crate::arc::Arc;
use crate::cert_manager::CertManager;
use crate::cluster::Cluster;
use crate::config::RunnersConfig;
use crate::engine::DaggerEngine;
use crate::karpenter::Karpenter;
use crate::network::Network;
use crate::values::Recorded;

/// Everything the checks read.
pub struct Declared<'a> {
    /// The AWS side; `None` on a cluster from a kubeconfig, where the checks about it do
    /// not apply.
    pub eks: Option<EksDeclared<'a>>,
    /// On a cluster from a kubeconfig: the runner nodes as `[runners]` describes them.
    pub runner_nodes: Option<&'a RunnersConfig>,
    pub cert_manager: Option<&'a CertManager>,
    pub arc: &'a Arc,
    pub engine: &'a DaggerEngine,
    /// Every resource the stack declared, with its inputs as the graph holds them.
    pub resources: &'a [DesiredResource],
}

/// What the stack declared on AWS.
pub struct EksDeclared<'a> {
    /// The VPC the stack creates; `None` on an existing cluster.
    pub network: Option<&'a Network>,
    pub cluster: &'a Cluster,
    pub karpenter: &'a Karpenter,
}

/// Whether `tol` (a Kubernetes toleration as JSON) tolerates the taint `(key, value, effect)`.
pub fn tolerates(tol: &Value, key: &str, value: Option<&str>, effect: &str) -> bool {
    let s = |k: &str| tol[k].as_str().unwrap_or_default();
    let key_ok = s("key") == key || (s("key").is_empty() && s("operator") == "Exists");
    let value_ok = s("operator") == "Exists" || Some(s("value")) == value || (value.is_none() && s("value").is_empty());
    let effect_ok = s("effect").is_empty() || s("effect") == effect;
    key_ok && value_ok && effect_ok
}

pub(crate) fn list(v: &Value) -> Vec<Value> {
    v.as_array().cloned().unwrap_or_default()
}

/// A Go duration (`2h`, `90m`, `1h30m`, `300s`) in seconds.
pub fn duration_seconds(d: &str) -> Option<u64> {
    let mut total = 0u64;
    let mut num = String::new();
    for c in d.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: u64 = num.parse().ok()?;
        num.clear();
        total += n * match c {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return None,
        };
    }
    num.is_empty().then_some(total)
}

/// Instance families with local NVMe (`c6id`, `m7gd`, `i4i`, ...).
pub fn is_nvme_family(f: &str) -> bool {
    f.starts_with('i') || f.ends_with('d')
}

/// The lowest Karpenter release supporting each EKS version (Karpenter's compatibility
/// matrix, `website/content/en/{docs,preview,v1.14}/upgrading/compatibility.md` of
/// aws/karpenter-provider-aws at commit 1d927085, which lists 1.36 from Karpenter 1.13).
pub(crate) const KARPENTER_MIN: [(&str, &str); 8] = [
    ("1.29", "0.34.0"),
    ("1.30", "0.37.0"),
    ("1.31", "1.0.5"),
    ("1.32", "1.2.0"),
    ("1.33", "1.5.0"),
    ("1.34", "1.6.0"),
    ("1.35", "1.9.0"),
    ("1.36", "1.13.0"),
];

pub(crate) fn version_tuple(v: &str) -> Vec<u64> {
    v.trim_start_matches('v')
        .split('.')
        .map(|p| p.parse().unwrap_or(0))
        .collect()
}

/// What a check found: what breaks it, and what it verified.
#[derive(Debug, Default)]
pub struct Verdict {
    pub failures: Vec<String>,
    pub evidence: Vec<String>,
}

/// How a check runs.
#[derive(Clone, Copy)]
pub enum Run {
    /// Failures only.
    Shape(fn(&Ctx<'_>) -> Vec<String>),
    /// Failures and the evidence of what was verified.
    Behaviour(fn(&Ctx<'_>) -> Verdict),
    /// A shape check of what the stack declares on AWS (not applicable without it).
    ShapeEks(fn(&Ctx<'_>, &EksDeclared<'_>) -> Vec<String>),
    /// A behaviour check of what the stack declares on AWS (not applicable without it).
    BehaviourEks(fn(&Ctx<'_>, &EksDeclared<'_>) -> Verdict),
    /// A shape check of the VPC the stack creates (not applicable on an existing cluster).
    ShapeNetwork(fn(&Ctx<'_>, &EksDeclared<'_>, &Network) -> Vec<String>),
    /// A behaviour check of the VPC the stack creates (not applicable on an existing cluster).
    BehaviourNetwork(fn(&Ctx<'_>, &EksDeclared<'_>, &Network) -> Verdict),
}

/// One row of [`CHECKS`].
pub struct CheckDef {
    pub name: &'static str,
    pub description: &'static str,
    pub run: Run,
}

const fn shape_check(name: &'static str, description: &'static str, f: fn(&Ctx<'_>) -> Vec<String>) -> CheckDef {
    CheckDef {
        name,
        description,
        run: Run::Shape(f),
    }
}

const fn eks_shape_check(
    name: &'static str,
    description: &'static str,
    f: fn(&Ctx<'_>, &EksDeclared<'_>) -> Vec<String>,
) -> CheckDef {
    CheckDef {
        name,
        description,
        run: Run::ShapeEks(f),
    }
}

const fn behaviour_check(name: &'static str, description: &'static str, f: fn(&Ctx<'_>) -> Verdict) -> CheckDef {
    CheckDef {
        name,
        description,
        run: Run::Behaviour(f),
    }
}

/// Every check, in the reference design's order.
pub const CHECKS: &[CheckDef] = &[
    shape_check(
        "taints-match",
        "the runner nodes' taints (the NodePool's, or [runners]) are tolerated by the engine and every runner",
        shape::taints_match,
    ),
    shape_check(
        "labels-match",
        "the runner nodes' labels (the NodePool's, or [runners]) satisfy the runner nodeSelector and the engine's node affinity",
        shape::labels_match,
    ),
    behaviour_check(
        "socket-path",
        "each runner's _EXPERIMENTAL_DAGGER_RUNNER_HOST is, on the node, a socket the engine listens on",
        wiring::socket_path,
    ),
    shape_check(
        "critical-tolerations",
        "everything meant for the critical nodes tolerates their taint",
        shape::critical_tolerations,
    ),
    eks_shape_check(
        "one-cluster-name",
        "one cluster name in EKS, Karpenter, tags, selectors and policy",
        shape::one_cluster_name,
    ),
    eks_shape_check(
        "node-role",
        "the node class role has an EC2_LINUX access entry and is the only passable role",
        shape::node_role,
    ),
    eks_shape_check(
        "raid0-cache",
        "with RAID0, the engine cache lives on the NVMe array or an emptyDir",
        shape::raid0_cache,
    ),
    eks_shape_check(
        "raid0-nvme",
        "with RAID0, the NodePool selects only types with local NVMe",
        shape::raid0_nvme,
    ),
    shape_check(
        "versions",
        "engine = runners' Dagger, Karpenter supports the EKS version, ARC charts match",
        shape::versions,
    ),
    eks_shape_check(
        "authentication-mode",
        "access entries need authenticationMode API or API_AND_CONFIG_MAP",
        shape::authentication_mode,
    ),
    eks_shape_check(
        "controller-identity",
        "Pod Identity has its agent; IRSA has an OIDC provider and annotation",
        shape::controller_identity,
    ),
    eks_shape_check(
        "critical-nodes",
        "the critical node group has at least 2 nodes",
        shape::critical_nodes,
    ),
    eks_shape_check(
        "disruption",
        "nodes outlive the engine's grace period; runners are never disrupted",
        shape::disruption,
    ),
    shape_check(
        "socket-permissions",
        "the engine's runAsGroup is the runners' uid/gid",
        shape::socket_permissions,
    ),
    shape_check(
        "arc-dependencies",
        "legacy ARC has cert-manager; runners need no dind",
        shape::arc_dependencies,
    ),
    CheckDef {
        name: "subnet-egress",
        description: "every subnet Karpenter selects has egress",
        run: Run::ShapeNetwork(shape::subnet_egress),
    },
    behaviour_check(
        "placement-controllers",
        "every controller and add-on has a node to run on, and it is not a runner NodePool",
        placement::controllers,
    ),
    behaviour_check(
        "placement-engine",
        "the engine DaemonSet lands on every runner node and on no critical node",
        placement::engine,
    ),
    behaviour_check(
        "placement-runners",
        "a runner of each group fits with the engine and node agents on a type its NodePool admits, never on critical nodes; the pool holds max_runners",
        placement::runners,
    ),
    CheckDef {
        name: "network-paths",
        description: "DNS, kubelet, API server, webhooks, internet egress and Karpenter's AWS APIs are reachable in the declared VPC",
        run: Run::BehaviourNetwork(network::paths),
    },
    behaviour_check(
        "cloud-token",
        "the Dagger Cloud token reaches the Dagger client in every runner, and nothing relies on what the engine ignores",
        wiring::cloud_token,
    ),
    behaviour_check(
        "runner-registration",
        "every runner container starts something that registers it with GitHub",
        wiring::runner_registration,
    ),
    behaviour_check(
        "autoscale-from-zero",
        "a legacy autoscaler with minimum 0 uses a metric that scales up from zero",
        wiring::autoscale_from_zero,
    ),
];

/// The nodes runners run on, as the checks compare them with the runner pods and the
/// engine: the Karpenter NodePool's template, or `[runners]` on a cluster from a kubeconfig.
pub struct RunnerNodes {
    /// How failures name them: ``NodePool `github-actions-runner` `` or `[runners]`.
    pub what: String,
    /// Their taints, as Kubernetes JSON (`key`, `value`, `effect`).
    pub taints: Vec<Value>,
    /// Their labels, as a JSON object.
    pub labels: Value,
}

static NO_VALUE: Value = Value::Null;

/// What the checks share: the declarations and the views of them most checks read.
pub struct Ctx<'a> {
    pub d: &'a Declared<'a>,
    /// The NodePool manifest and its `spec.template.spec` (null without Karpenter).
    pub pool: &'a Value,
    pub pool_spec: &'a Value,
    /// The runner nodes the runner pods and the engine must match.
    pub runner_nodes: RunnerNodes,
    /// The engine DaemonSet's pod spec, as JSON.
    pub pod_spec: Value,
    pub engine_name: String,
    /// The EC2NodeClass's spec (null without Karpenter).
    pub class_spec: &'a Value,
    pub raid0: bool,
    /// The workloads and where they land, computed once for the checks that need them.
    analysis: std::cell::OnceCell<placement::Analysis>,
}

impl<'a> Ctx<'a> {
    pub fn new(d: &'a Declared<'a>) -> Self {
        let (pool, class) = match &d.eks {
            Some(e) => (&e.karpenter.node_pool, &e.karpenter.node_class),
            None => (&NO_VALUE, &NO_VALUE),
        };
        let runner_nodes = match d.runner_nodes {
            Some(r) => RunnerNodes {
                what: "the runner nodes ([runners])".into(),
                taints: r
                    .taint
                    .iter()
                    .map(|t| serde_json::json!({"key": t.key, "value": t.value, "effect": t.effect}))
                    .collect(),
                labels: serde_json::to_value(&r.node_selector).unwrap_or_default(),
            },
            None => RunnerNodes {
                what: format!("NodePool `{}`", pool["metadata"]["name"].as_str().unwrap_or_default()),
                taints: list(&pool["spec"]["template"]["spec"]["taints"]),
                labels: pool["spec"]["template"]["metadata"]["labels"].clone(),
            },
        };
        let pod_spec = d
            .engine
            .daemonset
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .map(|s| serde_json::to_value(s).unwrap_or_default())
            .unwrap_or_default();
        let class_spec = &class["spec"];
        Ctx {
            d,
            pool,
            pool_spec: &pool["spec"]["template"]["spec"],
            runner_nodes,
            pod_spec,
            engine_name: d.engine.daemonset.metadata.name.clone().unwrap_or_default(),
            class_spec,
            raid0: class_spec["instanceStorePolicy"] == "RAID0",
            analysis: std::cell::OnceCell::new(),
        }
    }

    /// The placement analysis of every declared workload.
    pub fn analysis(&self) -> &placement::Analysis {
        self.analysis
            .get_or_init(|| placement::Analysis::new(self.d.resources, self.d.runner_nodes))
    }
}

/// Declares every check on `s`, run on `components` and every resource `s` holds.
pub fn declare(s: &mut Stack, components: &crate::Components) {
    // One gathering of the workloads (local charts rendered once) for every check.
    let (checks, existing, existing_network) = {
        let d = components.declared(s.resources());
        let ctx = Ctx::new(&d);
        let gathered = &ctx.analysis().gathered;
        (
            run(&ctx),
            existing::prepare(components, gathered),
            existing_network::prepare(components, gathered, d.resources),
        )
    };
    for c in checks {
        s.add_check(c);
    }
    if let Some(check) = existing {
        check.declare(s);
    }
    if let Some(check) = existing_network {
        check.declare(s);
    }
}

/// Runs every check on what the components declared.
pub fn evaluate(d: &Declared<'_>) -> Vec<Check> {
    run(&Ctx::new(d))
}

fn run(ctx: &Ctx<'_>) -> Vec<Check> {
    let d = ctx.d;
    CHECKS
        .iter()
        .map(|def| {
            let not_applicable = || Verdict {
                failures: Vec::new(),
                evidence: vec!["not applicable: the stack declares nothing on AWS (cluster.kubeconfig)".into()],
            };
            let existing_vpc = || Verdict {
                failures: Vec::new(),
                evidence: vec![format!(
                    "not applicable: the existing cluster's VPC is not the stack's; `{}` judges it as read when planning",
                    existing_network::NAME
                )],
            };
            let v = match (def.run, &d.eks) {
                (Run::Shape(f), _) => Verdict {
                    failures: f(ctx),
                    evidence: Vec::new(),
                },
                (Run::Behaviour(f), _) => f(ctx),
                (Run::ShapeEks(f), Some(e)) => Verdict {
                    failures: f(ctx, e),
                    evidence: Vec::new(),
                },
                (Run::BehaviourEks(f), Some(e)) => f(ctx, e),
                (Run::ShapeNetwork(f), Some(e)) => match e.network {
                    Some(net) => Verdict {
                        failures: f(ctx, e, net),
                        evidence: Vec::new(),
                    },
                    None => existing_vpc(),
                },
                (Run::BehaviourNetwork(f), Some(e)) => match e.network {
                    Some(net) => f(ctx, e, net),
                    None => existing_vpc(),
                },
                (Run::ShapeEks(_) | Run::BehaviourEks(_) | Run::ShapeNetwork(_) | Run::BehaviourNetwork(_), None) => {
                    not_applicable()
                }
            };
            Check::new(def.name, def.description)
                .failures(v.failures)
                .evidence(v.evidence)
        })
        .collect()
}

/// Whether the subnet's tags match a Karpenter `subnetSelectorTerms` term (every tag of
/// the term present, with its value unless the term says `*`).
pub(crate) fn selects(term: &Value, tags: &Value) -> bool {
    term["tags"].as_object().is_some_and(|want| {
        !want.is_empty()
            && want.iter().all(|(k, v)| match (v.as_str(), tags[k].as_str()) {
                (Some("*"), Some(_)) => true,
                (Some(w), Some(t)) => w == t,
                _ => false,
            })
    })
}

pub(crate) fn addresses_with(decls: &[Recorded], pred: impl Fn(&Recorded) -> bool) -> Vec<&str> {
    decls.iter().filter(|r| pred(r)).map(|r| r.address.as_str()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tolerations_match_taints() {
        let t = json!({"key": "github-actions-runner", "operator": "Exists", "effect": "NoSchedule"});
        assert!(tolerates(&t, "github-actions-runner", Some("true"), "NoSchedule"));
        assert!(!tolerates(&t, "github-actions-runner", Some("true"), "NoExecute"));
        assert!(!tolerates(&t, "runner", Some("true"), "NoSchedule"));
        let eq = json!({"key": "k", "operator": "Equal", "value": "a"});
        assert!(tolerates(&eq, "k", Some("a"), "NoSchedule"));
        assert!(!tolerates(&eq, "k", Some("b"), "NoSchedule"));
    }

    #[test]
    fn durations() {
        assert_eq!(duration_seconds("2h"), Some(7200));
        assert_eq!(duration_seconds("1h30m"), Some(5400));
        assert_eq!(duration_seconds("300s"), Some(300));
        assert_eq!(duration_seconds("2d"), None);
        assert_eq!(duration_seconds("15"), None);
    }

    #[test]
    fn nvme_families() {
        for f in ["c6id", "m6id", "r6id", "c7gd", "m7gd", "i4i"] {
            assert!(is_nvme_family(f), "{f}");
        }
        for f in ["c6i", "m7g", "t4g"] {
            assert!(!is_nvme_family(f), "{f}");
        }
    }
}
