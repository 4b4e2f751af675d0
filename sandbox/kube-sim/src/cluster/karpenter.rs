//! The sandbox's Karpenter: nodes for pods that no node fits but a NodePool admits, and
//! empty nodes taken away again.
//!
//! It acts only while Karpenter itself would: the `karpenter.sh` NodePool kind is served
//! (its CRD is installed) and a pod of the Karpenter controller (label
//! `app.kubernetes.io/name=karpenter`) is Running. So a stack whose Karpenter cannot
//! schedule gets no runner nodes here either.
//!
//! Rules kept here (after kubernetes-sigs/karpenter v1: `pkg/controllers/provisioning`,
//! `pkg/controllers/disruption` emptiness, and the AWS provider's launch, which asks
//! CreateFleet for the `lowest-price` on-demand allocation):
//! - A pod is provisioned for when the scheduler marked it `Unschedulable`. NodePools are
//!   tried by `spec.weight` (highest first), then name. A NodePool admits the pod on an
//!   instance type when the pod passes kube-scheduler's filters (`spar_scheduling::filter`,
//!   what `spar check` runs) on a node of that type (its labels, taints, allocatable) after
//!   the DaemonSets that would land there; of those types the cheapest on-demand price
//!   (from the shared instance-type table) wins, then fewer vCPUs, then the name.
//! - `spec.limits.cpu` holds: a launch whose vCPUs would take the pool's nodes past it does
//!   not happen.
//! - Pods pending in the same pass are packed as Karpenter's scheduler packs them: a pod
//!   first joins a node already planned in the pass, narrowing its instance types to those
//!   that hold every pod on it (so two 1-cpu runners get one 4-vCPU node, not two 2-vCPU
//!   ones); only when none can take it is a new node planned. Each planned node launches
//!   as the cheapest type left.
//! - A launch is a NodeClaim (when the NodeClaim kind is served; owned by its NodePool,
//!   conditions `Launched`, `Registered`, `Initialized`, `Ready`) and a Node (owned by the
//!   NodeClaim) with the NodePool's template labels and taints, `karpenter.sh/nodepool`,
//!   `karpenter.sh/capacity-type`, the `karpenter.k8s.aws/instance-*` labels,
//!   `karpenter.sh/registered` and `karpenter.sh/initialized`. `startupTaints` are not put
//!   on (something would remove them at once).
//! - Under `consolidationPolicy` `WhenEmpty` or `WhenEmptyOrUnderutilized`, a node running
//!   no pod other than DaemonSet pods for `consolidateAfter` (a Go duration; `Never`
//!   disables it) is removed with its NodeClaim. Underutilised nodes are not consolidated.
//! - Not modelled: EC2NodeClass readiness and AMI/subnet resolution, zones and offerings,
//!   spot, `minValues`, budgets, drift and expiry, `karpenter.sh/do-not-disrupt`.

use super::nodes::{NodeSpec, SOURCE_ANNOTATION, address_for, private_dns_name, register};
use super::scheduler::unschedulable;
use super::{
    Deadline, controller_ref, create_as, delete_key, deleting, earliest, log_once, snapshot, terminal, write_status,
};
use crate::managed::now;
use crate::ops::{State, meta_str};
use crate::store::ObjKey;
use serde_json::{Value, json};
use spar_scheduling::instance_types::InstanceType;
use spar_scheduling::{CandidateNode, NodeShape, PodRequirements, PodTemplate, Resources, WorkloadKind, filter};
use std::time::{Duration, Instant};

const MANAGER: &str = "karpenter";

/// A Go duration (`30s`, `1m`, `1h30m`, `0s`); `None` for anything else (`Never`).
pub fn go_duration(s: &str) -> Option<Duration> {
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let mut total = 0f64;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let mut unit = c.to_string();
        if (c == 'm' || c == 'u' || c == 'µ' || c == 'n') && chars.peek() == Some(&'s') {
            unit.push(chars.next()?);
        }
        let n: f64 = num.parse().ok()?;
        num.clear();
        total += n * match unit.as_str() {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        any = true;
    }
    (any && num.is_empty()).then(|| Duration::from_secs_f64(total))
}

/// The order launch candidates are tried in: cheapest on-demand price, then fewer vCPUs,
/// then name.
fn launch_order(a: &InstanceType, b: &InstanceType) -> std::cmp::Ordering {
    let price = |t: &InstanceType| t.on_demand_usd_hour().unwrap_or(f64::MAX);
    price(a)
        .partial_cmp(&price(b))
        .unwrap_or(std::cmp::Ordering::Equal)
        .then(a.vcpu.cmp(&b.vcpu))
        .then(a.name.cmp(b.name))
}

struct Pool {
    key: ObjKey,
    obj: Value,
    shape: NodeShape,
    weight: i64,
}

/// A node this pass will launch: its pool, the instance types that still hold every pod
/// packed onto it (cheapest first), and what those pods request.
struct Planned {
    pool: usize,
    types: Vec<&'static InstanceType>,
    pods: Resources,
}

fn daemonset_templates(st: &State) -> Vec<PodTemplate> {
    st.store
        .list("apps", "daemonsets", None)
        .filter(|(_, d)| !deleting(d))
        .map(|(k, d)| PodTemplate {
            owner: format!("DaemonSet {}/{}", k.namespace, k.name),
            kind: WorkloadKind::DaemonSet,
            replicas: 0,
            spec: d.pointer("/spec/template/spec").cloned().unwrap_or(json!({})),
        })
        .collect()
}

fn pool_cpu_in_use(st: &State, pool: &str) -> u64 {
    st.store
        .list("", "nodes", None)
        .filter(|(_, n)| {
            n.pointer("/metadata/labels/karpenter.sh~1nodepool")
                .and_then(Value::as_str)
                == Some(pool)
        })
        .filter_map(|(_, n)| {
            n.pointer("/status/capacity/cpu")
                .and_then(Value::as_str)?
                .parse::<u64>()
                .ok()
        })
        .map(|c| c * 1000)
        .sum()
}

/// Provisions for unschedulable pods and removes empty nodes; returns the next moment a
/// node becomes removable.
pub fn reconcile(st: &mut State) -> Deadline {
    if st.kinds.preferred("karpenter.sh", "nodepools").is_none() || !super::component_running(st, "karpenter") {
        return None;
    }
    let mut pools: Vec<Pool> = Vec::new();
    for (key, obj) in snapshot(st, "karpenter.sh", "nodepools") {
        if deleting(&obj) {
            continue;
        }
        match NodeShape::from_node_pool(&obj) {
            Ok(shape) => {
                let weight = obj.pointer("/spec/weight").and_then(Value::as_i64).unwrap_or(0);
                pools.push(Pool {
                    key,
                    obj,
                    shape,
                    weight,
                });
            }
            Err(e) => log_once(st, format!("karpenter: {e}")),
        }
    }
    pools.sort_by(|a, b| b.weight.cmp(&a.weight).then_with(|| a.key.name.cmp(&b.key.name)));
    provision(st, &pools);
    consolidate(st, &pools)
}

/// What the DaemonSets that would land on `node` request (their pods counted).
fn daemonset_use(daemonsets: &[PodRequirements], node: &CandidateNode) -> Resources {
    daemonsets
        .iter()
        .filter(|d| spar_scheduling::daemon_should_run(d, node).is_ok())
        .fold(Resources::default(), |acc, d| {
            acc.plus(Resources { pods: 1, ..d.requests })
        })
}

fn provision(st: &mut State, pools: &[Pool]) {
    let pending = unschedulable(st);
    if pending.is_empty() || pools.is_empty() {
        return;
    }
    let daemonsets: Vec<PodRequirements> = daemonset_templates(st)
        .iter()
        .filter_map(|t| PodRequirements::from_template(t).ok())
        .collect();
    // Each pool's candidate nodes, cheapest first, with their DaemonSet overhead.
    let candidates: Vec<Vec<(&'static InstanceType, CandidateNode, Resources)>> = pools
        .iter()
        .map(|p| {
            let mut types = p.shape.instance_types.clone();
            types.sort_by(|a, b| launch_order(a, b));
            types
                .into_iter()
                .map(|t| {
                    let node = p.shape.candidate(t);
                    let ds = daemonset_use(&daemonsets, &node);
                    (t, node, ds)
                })
                .collect()
        })
        .collect();
    let fits = |pool: usize, t: &InstanceType, req: &PodRequirements, packed: Resources| -> bool {
        candidates[pool]
            .iter()
            .find(|(c, _, _)| c.name == t.name)
            .is_some_and(|(_, node, ds)| filter(req, node, &ds.plus(packed)).is_ok())
    };
    let mut planned: Vec<Planned> = Vec::new();
    for (_, pod, _) in &pending {
        let spec = pod.get("spec").cloned().unwrap_or(json!({}));
        let Ok(req) = PodRequirements::from_spec(&spec) else {
            continue;
        };
        // Karpenter's scheduler first tries the NodeClaims it is already making: a pod
        // joins one when some of its instance types still hold everything packed on it.
        let joined = planned.iter_mut().any(|p| {
            let keep: Vec<&'static InstanceType> = p
                .types
                .iter()
                .copied()
                .filter(|t| fits(p.pool, t, &req, p.pods))
                .collect();
            if keep.is_empty() {
                return false;
            }
            p.types = keep;
            p.pods = p.pods.plus(Resources {
                pods: 1,
                ..req.requests
            });
            true
        });
        if joined {
            continue;
        }
        for (i, pool) in pools.iter().enumerate() {
            let in_use = pool_cpu_in_use(st, &pool.key.name)
                + planned
                    .iter()
                    .filter(|p| p.pool == i)
                    .filter_map(|p| p.types.first())
                    .map(|t| u64::from(t.vcpu) * 1000)
                    .sum::<u64>();
            let types: Vec<&'static InstanceType> = candidates[i]
                .iter()
                .filter(|(t, node, ds)| {
                    filter(&req, node, ds).is_ok()
                        && pool
                            .shape
                            .cpu_limit_milli
                            .is_none_or(|l| in_use + u64::from(t.vcpu) * 1000 <= l)
                })
                .map(|(t, _, _)| *t)
                .collect();
            if !types.is_empty() {
                planned.push(Planned {
                    pool: i,
                    types,
                    pods: Resources {
                        pods: 1,
                        ..req.requests
                    },
                });
                break;
            }
        }
    }
    for p in planned {
        let pool = &pools[p.pool];
        let in_use = pool_cpu_in_use(st, &pool.key.name);
        // the cheapest type that holds them all and stays within the pool's limit
        let Some(t) = p.types.into_iter().find(|t| {
            pool.shape
                .cpu_limit_milli
                .is_none_or(|l| in_use + u64::from(t.vcpu) * 1000 <= l)
        }) else {
            continue;
        };
        launch(st, pool, t);
    }
}

/// Launches one node of type `t` for `pool`: a NodeClaim (if served) and its Node.
fn launch(st: &mut State, pool: &Pool, t: &'static InstanceType) -> Option<CandidateNode> {
    let pool_name = pool.key.name.clone();
    let claim_name = format!("{pool_name}-{}", &uuid::Uuid::new_v4().simple().to_string()[..5]);
    let zone = "us-east-1a";
    let (ip, instance_id) = address_for(&format!("karpenter/{claim_name}"));
    let node_name = private_dns_name(&ip, "us-east-1");
    let candidate = pool.shape.candidate(t);
    let template_spec = pool.obj.pointer("/spec/template/spec").cloned().unwrap_or(json!({}));
    let mut owner: Option<Value> = None;
    if st.kinds.preferred("karpenter.sh", "nodeclaims").is_some() {
        let mut requirements = template_spec["requirements"].as_array().cloned().unwrap_or_default();
        requirements.push(json!({"key": "node.kubernetes.io/instance-type", "operator": "In", "values": [t.name]}));
        let mut labels = pool
            .obj
            .pointer("/spec/template/metadata/labels")
            .cloned()
            .unwrap_or(json!({}));
        labels["karpenter.sh/nodepool"] = json!(pool_name);
        let mut spec = json!({"nodeClassRef": template_spec["nodeClassRef"], "requirements": requirements});
        for f in ["taints", "startupTaints", "expireAfter", "terminationGracePeriod"] {
            if let Some(v) = template_spec.get(f) {
                spec[f] = v.clone();
            }
        }
        let claim = json!({
            "apiVersion": "karpenter.sh/v1", "kind": "NodeClaim",
            "metadata": {"name": claim_name, "labels": labels, "ownerReferences": [controller_ref(&pool.obj)]},
            "spec": spec,
        });
        match create_as(st, MANAGER, "karpenter.sh", "nodeclaims", "", claim) {
            Ok(c) => owner = Some(c),
            Err(e) => {
                log_once(
                    st,
                    format!(
                        "karpenter: NodePool {pool_name}: cannot create a NodeClaim: {}",
                        e.to_status()["message"].as_str().unwrap_or("")
                    ),
                );
                return None;
            }
        }
    }
    let mut labels = candidate.labels.clone();
    labels.insert("karpenter.sh/registered".into(), "true".into());
    labels.insert("karpenter.sh/initialized".into(), "true".into());
    let source = format!("karpenter/{claim_name}");
    let taints = template_spec["taints"].as_array().cloned().unwrap_or_default();
    let version = st.settings.k8s_version.clone();
    let ok = register(
        st,
        &NodeSpec {
            name: node_name.clone(),
            instance_type: t,
            zone,
            labels,
            taints,
            source,
            k8s_version: &version,
            instance_id: instance_id.clone(),
            internal_ip: ip,
        },
    );
    if !ok {
        return None;
    }
    let node_key = ObjKey::new("", "nodes", "", &node_name);
    if let Some(claim) = &owner {
        if let (Some(mut node), Some(rt)) = (st.store.get(&node_key).cloned(), st.kinds.preferred("", "nodes")) {
            node["metadata"]["ownerReferences"] = json!([{"apiVersion": "karpenter.sh/v1", "kind": "NodeClaim",
                "name": claim_name, "uid": meta_str(claim, "uid"), "blockOwnerDeletion": true}]);
            st.system_update(&rt, &node_key, node);
        }
        let (capacity, allocatable) = spar_scheduling::node_quantities(t);
        let at = now();
        let cond =
            |ty: &str| json!({"type": ty, "status": "True", "reason": ty, "message": "", "lastTransitionTime": at});
        let status = json!({
            "providerID": format!("aws:///{zone}/{instance_id}"),
            "nodeName": node_name,
            "imageID": "ami-0sandbox",
            "capacity": capacity,
            "allocatable": allocatable,
            "conditions": [cond("Launched"), cond("Registered"), cond("Initialized"), cond("Ready")],
        });
        write_status(st, &ObjKey::new("karpenter.sh", "nodeclaims", "", &claim_name), status);
    }
    st.store.get(&node_key).and_then(|n| CandidateNode::from_node(n).ok())
}

fn consolidate(st: &mut State, pools: &[Pool]) -> Deadline {
    let mut next: Deadline = None;
    let at = Instant::now();
    let nodes = snapshot(st, "", "nodes");
    let mut seen = std::collections::BTreeSet::new();
    for (key, node) in nodes {
        let Some(source) = node
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(SOURCE_ANNOTATION))
            .and_then(Value::as_str)
        else {
            continue;
        };
        let Some(claim) = source.strip_prefix("karpenter/").map(String::from) else {
            continue;
        };
        if deleting(&node) {
            continue;
        }
        let pool_name = node
            .pointer("/metadata/labels/karpenter.sh~1nodepool")
            .and_then(Value::as_str)
            .unwrap_or("");
        let Some(pool) = pools.iter().find(|p| p.key.name == pool_name) else {
            continue;
        };
        let policy = pool
            .obj
            .pointer("/spec/disruption/consolidationPolicy")
            .and_then(Value::as_str)
            .unwrap_or("WhenEmptyOrUnderutilized");
        let after = pool
            .obj
            .pointer("/spec/disruption/consolidateAfter")
            .and_then(Value::as_str)
            .unwrap_or("0s");
        let Some(after) = go_duration(after) else { continue };
        if !matches!(policy, "WhenEmpty" | "WhenEmptyOrUnderutilized") {
            continue;
        }
        let busy = st.store.list("", "pods", None).any(|(_, p)| {
            p.pointer("/spec/nodeName").and_then(Value::as_str) == Some(key.name.as_str())
                && !terminal(p)
                && !deleting(p)
                && p.pointer("/metadata/ownerReferences")
                    .and_then(Value::as_array)
                    .is_none_or(|refs| {
                        !refs
                            .iter()
                            .any(|r| r["kind"] == "DaemonSet" && r["controller"] == json!(true))
                    })
        });
        if busy {
            st.empty_since.remove(&key.name);
            continue;
        }
        seen.insert(key.name.clone());
        let since = *st.empty_since.entry(key.name.clone()).or_insert(at);
        if at >= since + after {
            st.empty_since.remove(&key.name);
            let claim_key = ObjKey::new("karpenter.sh", "nodeclaims", "", &claim);
            if st.store.get(&claim_key).is_some() {
                delete_key(st, &claim_key);
            }
            delete_key(st, &key);
        } else {
            next = earliest(next, Some(since + after));
        }
    }
    st.empty_since.retain(|n, _| seen.contains(n));
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(go_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(go_duration("1m"), Some(Duration::from_secs(60)));
        assert_eq!(go_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(go_duration("0s"), Some(Duration::ZERO));
        assert_eq!(go_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(go_duration("Never"), None);
        assert_eq!(go_duration("5"), None);
    }
}
