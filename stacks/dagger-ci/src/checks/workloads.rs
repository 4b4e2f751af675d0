//! Every workload the stack will run, as pod templates, read from the declared resources:
//! EKS add-ons (modelled by `spar::analysis::eks_addons`), Kubernetes objects (the engine
//! DaemonSet), charts, ARC's listeners and runners; and the node shapes they can land on
//! (managed node groups and Karpenter NodePools).
//!
//! Charts: a chart in a local directory (the sandbox's stand-ins, or a vendored chart) is
//! rendered with its `helm template` command, and its workloads are what it renders. An
//! `oci://` or repository chart cannot be rendered offline, so its workloads are modelled
//! from the values the stack gives it, following the upstream templates' use of them
//! (read at the versions the stack pins): Karpenter 1.14 `charts/karpenter/templates/
//! deployment.yaml` (replicas, nodeSelector default `kubernetes.io/os: linux`, tolerations
//! default `CriticalAddonsOnly`, required node affinity `karpenter.sh/nodepool
//! DoesNotExist`, `controller.resources`); cert-manager's controller, webhook, cainjector
//! and startupapicheck (each `tolerations`, `nodeSelector`, `affinity`, `resources`, the
//! webhook serving on `webhook.securePort`, default 10250); ARC's controller charts
//! (`replicaCount`, `tolerations`, `nodeSelector`, `affinity`, `resources`; the summerwind
//! controller's admission webhook on `webhookPort`, default 9443). Each workload says
//! which way it was read.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use spar::analysis::eks_addons;
use spar::analysis::scheduling::{NodeShape, NodeTaint, PodTemplate, TaintEffect, WorkloadKind, pod_templates};
use spar::graph::DesiredResource;

use super::runners;

/// What a workload is for: what the placement checks ask of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// A controller or add-on: it must land somewhere, and never on a runner pool.
    Controller,
    /// A node agent every node runs (tolerates every taint).
    NodeAgent,
    /// A DaemonSet the stack declares itself (the Dagger engine).
    DaemonSet,
    /// Runner pods of one group, with the group's maximum.
    Runner { group: String, max: Option<u64> },
}

/// One workload.
#[derive(Debug, Clone)]
pub struct Workload {
    /// The declaring resource.
    pub address: String,
    pub role: Role,
    pub template: PodTemplate,
    /// `declared`, `rendered` (a local chart), `modelled from values` (a remote chart),
    /// `EKS add-on model`.
    pub read: &'static str,
    /// The port its admission webhook serves on, for a webhook server.
    pub webhook_port: Option<u16>,
}

/// Everything gathered, and what could not be read.
#[derive(Debug, Clone, Default)]
pub struct Gathered {
    pub workloads: Vec<Workload>,
    pub shapes: Vec<NodeShape>,
    pub problems: Vec<String>,
}

impl Gathered {
    /// Adds the pods of the EKS add-on `name` (its model, with `configuration`), as
    /// declared at `address`.
    pub(crate) fn add_eks_addon(&mut self, address: &str, name: &str, configuration: &Value) {
        for t in eks_addons::pod_templates(name, configuration) {
            self.add(address, role_of(&t, Role::NodeAgent), t, "EKS add-on model", None);
        }
    }

    fn add(&mut self, address: &str, role: Role, template: PodTemplate, read: &'static str, webhook_port: Option<u16>) {
        self.workloads.push(Workload {
            address: address.to_string(),
            role,
            template,
            read,
            webhook_port,
        });
    }
}

/// The role of a template a declared object or an add-on makes.
fn role_of(t: &PodTemplate, daemonset: Role) -> Role {
    if t.kind == WorkloadKind::DaemonSet {
        daemonset
    } else {
        Role::Controller
    }
}

fn deployment(owner: String, replicas: u32, spec: Value) -> PodTemplate {
    PodTemplate {
        owner,
        kind: WorkloadKind::Deployment,
        replicas,
        spec,
    }
}

/// A pod spec from a chart's values at `at` (`tolerations`, `nodeSelector`, `affinity`,
/// `resources`), with `defaults` for what the chart sets when the values do not.
fn spec_from_values(at: &Value, resources: &Value, defaults: Value) -> Value {
    let mut spec = defaults;
    for k in ["tolerations", "nodeSelector", "affinity"] {
        if let Some(v) = at.get(k).filter(|v| !v.is_null()) {
            spec[k] = v.clone();
        }
    }
    let mut container = json!({"name": "controller"});
    if resources.is_object() {
        container["resources"] = resources.clone();
    }
    spec["containers"] = json!([container]);
    spec
}

fn count(v: &Value, default: u32) -> u32 {
    v.as_u64().map_or(default, |n| u32::try_from(n).unwrap_or(u32::MAX))
}

/// The workloads of a remote chart, from its values (see the module doc).
fn modelled(chart: &str, release: &str, ns: &str, values: &Value) -> Vec<(PodTemplate, Option<u16>)> {
    let name = chart.rsplit('/').next().unwrap_or(chart);
    let owner = |n: &str| format!("Deployment {ns}/{n}");
    match name {
        "karpenter" => vec![(
            deployment(
                owner(release),
                count(&values["replicas"], 2),
                spec_from_values(
                    values,
                    &values["controller"]["resources"],
                    json!({
                        "nodeSelector": {"kubernetes.io/os": "linux"},
                        "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"}],
                        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms":
                            [{"matchExpressions": [{"key": "karpenter.sh/nodepool", "operator": "DoesNotExist"}]}]}}},
                    }),
                ),
            ),
            None,
        )],
        "cert-manager" => {
            let mut out = Vec::new();
            for (part, at, port) in [
                ("cert-manager", values, None),
                (
                    "cert-manager-webhook",
                    &values["webhook"],
                    Some(values["webhook"]["securePort"].as_u64().unwrap_or(10250) as u16),
                ),
                ("cert-manager-cainjector", &values["cainjector"], None),
            ] {
                out.push((
                    deployment(
                        owner(part),
                        count(&at["replicaCount"], 1),
                        spec_from_values(
                            at,
                            &at["resources"],
                            json!({"nodeSelector": {"kubernetes.io/os": "linux"}}),
                        ),
                    ),
                    port,
                ));
            }
            let at = &values["startupapicheck"];
            out.push((
                PodTemplate {
                    owner: format!("Job {ns}/cert-manager-startupapicheck"),
                    kind: WorkloadKind::Job,
                    replicas: 1,
                    spec: spec_from_values(
                        at,
                        &at["resources"],
                        json!({"nodeSelector": {"kubernetes.io/os": "linux"}}),
                    ),
                },
                None,
            ));
            out
        }
        "gha-runner-scale-set-controller" => vec![(
            deployment(
                owner(&format!("{release}-gha-rs-controller")),
                count(&values["replicaCount"], 1),
                spec_from_values(values, &values["resources"], json!({})),
            ),
            None,
        )],
        "actions-runner-controller" => vec![(
            deployment(
                owner(release),
                count(&values["replicaCount"], 1),
                spec_from_values(values, &values["resources"], json!({})),
            ),
            Some(values["webhookPort"].as_u64().unwrap_or(9443) as u16),
        )],
        _ => Vec::new(),
    }
}

/// The ports of rendered webhook servers: the cert-manager webhook's `https` container
/// port, the summerwind controller's `webhook-server` port.
fn rendered_webhook_port(t: &PodTemplate) -> Option<u16> {
    let named = |want: &str| {
        t.spec["containers"].as_array()?.iter().find_map(|c| {
            c["ports"]
                .as_array()?
                .iter()
                .find(|p| p["name"] == want)
                .and_then(|p| p["containerPort"].as_u64())
        })
    };
    let port = if t.owner.ends_with("-webhook") {
        named("https")
    } else {
        named("webhook-server")
    };
    port.map(|p| p as u16)
}

/// The listener of a scale set (made by ARC's controller from `listenerTemplate`).
fn listener(ns: &str, release: &str, values: &Value) -> PodTemplate {
    let mut spec = values["listenerTemplate"]["spec"].clone();
    if !spec.is_object() {
        spec = json!({});
    }
    if spec.get("containers").is_none() {
        spec["containers"] = json!([{"name": "listener"}]);
    }
    PodTemplate {
        owner: format!("Pod {ns}/{release}-listener"),
        kind: WorkloadKind::Pod,
        replicas: 1,
        spec,
    }
}

fn taint_effect(eks: &str) -> Option<TaintEffect> {
    TaintEffect::parse(match eks {
        "NO_SCHEDULE" => "NoSchedule",
        "NO_EXECUTE" => "NoExecute",
        "PREFER_NO_SCHEDULE" => "PreferNoSchedule",
        other => other,
    })
}

/// The node shape of a managed node group from its inputs (as declared, or as a lookup
/// read them): instance types, labels, taints in EKS spelling, maximum size.
pub fn node_group_shape(name: &str, inputs: &Value) -> Result<NodeShape, String> {
    let types: Vec<&str> = inputs["instance_types"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let labels: BTreeMap<String, String> = inputs["labels"]
        .as_object()
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    let taints: Vec<NodeTaint> = inputs["taints"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| {
            Some(NodeTaint::new(
                t["key"].as_str()?,
                t["value"].as_str(),
                taint_effect(t["effect"].as_str()?)?,
            ))
        })
        .collect();
    let mut shape = NodeShape::managed_node_group(name, &types, labels, taints).map_err(|e| e.to_string())?;
    shape.max_nodes = inputs["max_size"].as_u64().map(|n| n as u32);
    Ok(shape)
}

/// Gathers the workloads and node shapes of `resources`.
pub fn gather(resources: &[DesiredResource]) -> Gathered {
    let mut g = Gathered::default();
    let runners = runners::declared(resources);
    // A lookup's inputs are its query, not an object's shape: what it read is judged by
    // the lookup checks when planning.
    for r in resources.iter().filter(|r| !r.lookup) {
        let i = &r.inputs;
        let address = r.address.to_string();
        match r.kind.as_str() {
            "aws:eks:Addon" => {
                let name = i["addon_name"].as_str().unwrap_or_default();
                g.add_eks_addon(&address, name, &i["configuration_values"]);
            }
            "aws:eks:Nodegroup" => {
                let name = i["name"].as_str().unwrap_or(r.address.name());
                match node_group_shape(name, i) {
                    Ok(shape) => g.shapes.push(shape),
                    Err(e) => g.problems.push(format!("node group `{address}`: {e}")),
                }
            }
            "kubernetes:Object" => {
                let m = &i["manifest"];
                if m["kind"] == "NodePool" {
                    match NodeShape::from_node_pool(m) {
                        Ok(shape) => g.shapes.push(shape),
                        Err(e) => g.problems.push(format!("NodePool `{address}`: {e}")),
                    }
                }
                for t in pod_templates(m) {
                    g.add(&address, role_of(&t, Role::DaemonSet), t, "declared", None);
                }
            }
            "kubernetes:Chart" => {
                let chart = i["chart"].as_str().unwrap_or_default();
                let release = i["release"].as_str().unwrap_or_default();
                let ns = i["namespace"].as_str().unwrap_or("default");
                let values = &i["values"];
                let scale_set = values.get("runnerScaleSetName").is_some();
                match spar::kubernetes::helm::render_offline(i) {
                    Ok(Some(objects)) => {
                        for t in objects.iter().flat_map(pod_templates) {
                            let port = rendered_webhook_port(&t);
                            g.add(&address, Role::Controller, t, "rendered", port);
                        }
                    }
                    Ok(None) => {
                        for (t, port) in modelled(chart, release, ns, values) {
                            g.add(&address, Role::Controller, t, "modelled from values", port);
                        }
                    }
                    Err(e) => g.problems.push(format!(
                        "chart `{address}` does not render offline ({e}); its workloads are not placed"
                    )),
                }
                if scale_set {
                    let t = listener(ns, release, values);
                    g.add(&address, Role::Controller, t, "declared (listenerTemplate)", None);
                }
            }
            _ => {}
        }
    }
    for r in runners {
        let max = r.max;
        g.workloads.push(Workload {
            address: r.address.clone(),
            role: Role::Runner {
                group: r.group.clone(),
                max,
            },
            template: PodTemplate {
                owner: format!("runner {}", r.group),
                kind: WorkloadKind::Pod,
                replicas: 1,
                spec: r.spec.clone(),
            },
            read: if r.legacy {
                "declared (RunnerDeployment)"
            } else {
                "declared (scale-set template)"
            },
            webhook_port: None,
        });
    }
    g
}
