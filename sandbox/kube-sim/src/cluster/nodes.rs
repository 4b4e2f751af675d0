//! Nodes: what kubelets register, as the objects a real EKS cluster shows.
//!
//! Owns [`node_object`] (a Node for an instance type, with labels, taints, capacity,
//! allocatable, addresses and Ready conditions), the static nodes of `--nodes`, and
//! [`sync_node_groups`]: the Nodes of the EKS managed node groups the AWS emulator reports
//! (see [`crate::cloud`]).
//!
//! Rules kept here:
//! - Capacity and allocatable come from the `spar-scheduling` instance-type table and its
//!   EKS AMI arithmetic (`node_quantities`), the same figures spar's offline checks use.
//! - A managed node group's node carries its labels and taints (taints in Kubernetes
//!   spelling) and EKS's well-known labels: `kubernetes.io/{arch,os,hostname}`,
//!   `node.kubernetes.io/instance-type`, `topology.kubernetes.io/{region,zone}`,
//!   `eks.amazonaws.com/{nodegroup,capacityType,nodegroup-image}`. Zones go round the
//!   group's subnets in order; the node's name is its private DNS name, as on EKS
//!   (`ip-10-x-y-z.ec2.internal`), stable for a group, index and zone.
//! - A node group has `desiredSize` nodes while ACTIVE, UPDATING or DEGRADED; none while
//!   CREATING (its instances have not joined yet), DELETING (drained), or once it is gone.
//!   Scaling down removes the highest indexes first. A label or taint update of the group
//!   reaches its existing nodes (EKS applies them in place).
//! - Which source made a node is recorded in the annotation [`SOURCE_ANNOTATION`]; nodes
//!   of other sources (static, Karpenter, made by a client) are never touched here.

use super::{create_as, delete_key, log_once, snapshot, write_status};
use crate::managed::now;
use crate::ops::State;
use serde_json::{Map, Value, json};
use spar_scheduling::instance_types::{InstanceType, instance_type};
use spar_scheduling::node_quantities;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{DefaultHasher, Hash, Hasher};

/// The annotation naming what made a Node: `static`, `nodegroup/<cluster>/<group>/<index>`
/// or `karpenter/<nodeclaim>`.
pub const SOURCE_ANNOTATION: &str = "sim.spar.dev/source";

/// The manager name Nodes are written under (a kubelet registers its own Node).
const KUBELET: &str = "kubelet";

/// A managed node group as the AWS emulator reports it (`GET /sandbox-api/nodegroups`).
#[derive(Debug, Clone, PartialEq, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NodeGroupView {
    pub cluster: String,
    pub nodegroup: String,
    pub status: String,
    pub desired_size: u32,
    pub instance_types: Vec<String>,
    pub capacity_type: Option<String>,
    pub ami_type: Option<String>,
    pub version: Option<String>,
    pub release_version: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<Value>,
    pub subnets: Vec<SubnetView>,
}

/// A node group's subnet and its zone.
#[derive(Debug, Clone, PartialEq, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SubnetView {
    pub subnet_id: String,
    /// `null` when the subnet is gone from EC2.
    pub availability_zone: Option<String>,
}

/// What one Node is made from.
#[derive(Debug, Clone)]
pub struct NodeSpec<'a> {
    pub name: String,
    pub instance_type: &'static InstanceType,
    pub zone: &'a str,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<Value>,
    pub source: String,
    pub k8s_version: &'a str,
    /// The EC2 instance id (`i-...`) behind `spec.providerID`.
    pub instance_id: String,
    pub internal_ip: String,
}

/// A private IPv4 address and instance id derived from `seed`: stable for the same seed.
pub fn address_for(seed: &str) -> (String, String) {
    let mut h = DefaultHasher::new();
    seed.hash(&mut h);
    let n = h.finish();
    let ip = format!("10.0.{}.{}", (n >> 8) % 254 + 1, n % 253 + 2);
    let id = format!("i-{:017x}", (n >> 4) & 0x0fff_ffff_ffff_ffff);
    (ip, id)
}

/// The private DNS name EC2 gives an instance at `ip` in us-east-1 (`ec2.internal`) or
/// elsewhere (`<region>.compute.internal`).
pub fn private_dns_name(ip: &str, region: &str) -> String {
    let dashed = ip.replace('.', "-");
    if region == "us-east-1" || region.is_empty() {
        format!("ip-{dashed}.ec2.internal")
    } else {
        format!("ip-{dashed}.{region}.compute.internal")
    }
}

/// The region of a zone (`us-east-1a` -> `us-east-1`).
pub fn region_of(zone: &str) -> &str {
    zone.trim_end_matches(|c: char| c.is_ascii_lowercase())
}

/// A Node object as the kubelet registers it, with the status it then reports (`Ready`).
/// Returns `(object without status, status)`: the API's create path drops `status`.
pub fn node_object(n: &NodeSpec<'_>) -> (Value, Value) {
    let t = n.instance_type;
    let region = region_of(n.zone);
    let mut labels = n.labels.clone();
    let mut put = |k: &str, v: &str| {
        labels.entry(k.to_string()).or_insert_with(|| v.to_string());
    };
    put("kubernetes.io/arch", t.arch.as_str());
    put("kubernetes.io/os", "linux");
    put("kubernetes.io/hostname", &n.name);
    put("node.kubernetes.io/instance-type", t.name);
    put("topology.kubernetes.io/zone", n.zone);
    put("topology.kubernetes.io/region", region);
    let obj = json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": n.name,
            "labels": labels,
            "annotations": {
                SOURCE_ANNOTATION: n.source,
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
        },
        "spec": {
            "providerID": format!("aws:///{}/{}", n.zone, n.instance_id),
            "taints": n.taints,
        },
    });
    let (capacity, allocatable) = node_quantities(t);
    let at = now();
    let cond = |type_: &str, status: &str, reason: &str, message: &str| {
        json!({"type": type_, "status": status, "reason": reason, "message": message,
               "lastHeartbeatTime": at, "lastTransitionTime": at})
    };
    let status = json!({
        "capacity": capacity,
        "allocatable": allocatable,
        "conditions": [
            cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
        ],
        "addresses": [
            {"type": "InternalIP", "address": n.internal_ip},
            {"type": "InternalDNS", "address": n.name},
            {"type": "Hostname", "address": n.name},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "nodeInfo": {
            "architecture": t.arch.as_str(),
            "bootID": uuid::Uuid::new_v4().to_string(),
            "containerRuntimeVersion": "containerd://1.7.27",
            "kernelVersion": "6.1.141-155.222.amzn2023.x86_64",
            "kubeProxyVersion": "",
            "kubeletVersion": format!("v{}.0-eks-sim", n.k8s_version.trim_start_matches('v')),
            "machineID": uuid::Uuid::new_v4().simple().to_string(),
            "operatingSystem": "linux",
            "osImage": "Amazon Linux 2023.7.20250609",
            "systemUUID": uuid::Uuid::new_v4().to_string(),
        },
    });
    (obj, status)
}

/// Registers a Node (create, then its status). Errors are logged, not returned: a node
/// that cannot register simply does not join.
pub fn register(st: &mut State, n: &NodeSpec<'_>) -> bool {
    let (obj, status) = node_object(n);
    match create_as(st, KUBELET, "", "nodes", "", obj) {
        Ok(_) => {
            let key = crate::store::ObjKey::new("", "nodes", "", &n.name);
            write_status(st, &key, status);
            true
        }
        Err(e) => {
            log_once(
                st,
                format!("node {} cannot register: {}", n.name, e.to_status()["message"]),
            );
            false
        }
    }
}

/// The static nodes of `--nodes N`: `sim-node-1` .. `sim-node-N`, untainted, of the
/// configured instance type, spread over three zones of us-east-1.
pub fn seed_static(st: &mut State) {
    let Some(t) = instance_type(&st.settings.node_instance_type) else {
        let msg = format!(
            "--node-instance-type {}: not in the instance-type table; no static nodes",
            st.settings.node_instance_type
        );
        log_once(st, msg);
        return;
    };
    let version = st.settings.k8s_version.clone();
    for i in 1..=st.settings.nodes {
        let name = format!("sim-node-{i}");
        let zone = ["us-east-1a", "us-east-1b", "us-east-1c"][(i as usize - 1) % 3];
        let (internal_ip, instance_id) = address_for(&name);
        register(
            st,
            &NodeSpec {
                name,
                instance_type: t,
                zone,
                labels: BTreeMap::new(),
                taints: vec![],
                source: "static".into(),
                k8s_version: &version,
                instance_id,
                internal_ip,
            },
        );
    }
}

fn k8s_taints(group: &NodeGroupView) -> Vec<Value> {
    group
        .taints
        .iter()
        .map(|t| {
            let mut m = Map::new();
            m.insert("key".into(), t["key"].clone());
            if let Some(v) = t["value"].as_str().filter(|v| !v.is_empty()) {
                m.insert("value".into(), json!(v));
            }
            let effect = t["effect"].as_str().unwrap_or("");
            let effect = spar_scheduling::TaintEffect::parse(effect).map_or(effect, |e| e.as_str());
            m.insert("effect".into(), json!(effect));
            Value::Object(m)
        })
        .collect()
}

fn group_labels(group: &NodeGroupView) -> BTreeMap<String, String> {
    let mut labels = group.labels.clone();
    labels.insert("eks.amazonaws.com/nodegroup".into(), group.nodegroup.clone());
    let capacity = group.capacity_type.clone().unwrap_or_else(|| "ON_DEMAND".into());
    labels.insert("eks.amazonaws.com/capacityType".into(), capacity);
    if let Some(release) = &group.release_version {
        labels.insert("eks.amazonaws.com/nodegroup-image".into(), format!("ami-{release}"));
    }
    labels
}

/// Makes the Nodes of every node group in `groups` match it (see the module doc).
pub fn sync_node_groups(st: &mut State, groups: &[NodeGroupView]) {
    let version = st.settings.k8s_version.clone();
    let mut wanted: BTreeSet<String> = BTreeSet::new();
    for g in groups {
        if !matches!(g.status.as_str(), "ACTIVE" | "UPDATING" | "DEGRADED") {
            continue;
        }
        // EKS's default when a group names no instance type is t3.medium.
        let type_name = g.instance_types.first().map(String::as_str).unwrap_or("t3.medium");
        let Some(t) = instance_type(type_name) else {
            log_once(
                st,
                format!(
                    "node group {}/{}: instance type {type_name} is not in the instance-type table; its nodes do not join",
                    g.cluster, g.nodegroup
                ),
            );
            continue;
        };
        let labels = group_labels(g);
        let taints = k8s_taints(g);
        for i in 0..g.desired_size {
            let zone = g
                .subnets
                .get(i as usize % g.subnets.len().max(1))
                .and_then(|s| s.availability_zone.as_deref())
                .filter(|z| !z.is_empty())
                .unwrap_or("us-east-1a");
            let source = format!("nodegroup/{}/{}/{i}", g.cluster, g.nodegroup);
            let (internal_ip, instance_id) = address_for(&format!("{source}/{zone}"));
            let name = private_dns_name(&internal_ip, region_of(zone));
            wanted.insert(source.clone());
            let key = crate::store::ObjKey::new("", "nodes", "", &name);
            match st.store.get(&key).cloned() {
                None => {
                    register(
                        st,
                        &NodeSpec {
                            name,
                            instance_type: t,
                            zone,
                            labels: labels.clone(),
                            taints: taints.clone(),
                            source,
                            k8s_version: &version,
                            instance_id,
                            internal_ip,
                        },
                    );
                }
                Some(existing) => {
                    // Label and taint updates of the group reach the node in place.
                    let mut node = existing.clone();
                    let mut changed = false;
                    for (k, v) in &labels {
                        if node["metadata"]["labels"][k] != json!(v) {
                            node["metadata"]["labels"][k] = json!(v);
                            changed = true;
                        }
                    }
                    if node["spec"]["taints"] != json!(taints) {
                        node["spec"]["taints"] = json!(taints);
                        changed = true;
                    }
                    if changed && let Some(rt) = st.kinds.preferred("", "nodes") {
                        st.system_update(&rt, &key, node);
                    }
                }
            }
        }
    }
    for (key, node) in snapshot(st, "", "nodes") {
        let source = node["metadata"]["annotations"][SOURCE_ANNOTATION]
            .as_str()
            .unwrap_or("");
        if source.starts_with("nodegroup/") && !wanted.contains(source) {
            delete_key(st, &key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_private_dns_names_and_stable() {
        let (ip, id) = address_for("nodegroup/c/critical/0/us-east-1a");
        assert_eq!(
            address_for("nodegroup/c/critical/0/us-east-1a"),
            (ip.clone(), id.clone())
        );
        assert!(ip.starts_with("10.0."), "{ip}");
        assert!(id.starts_with("i-") && id.len() == 19, "{id}");
        assert_eq!(private_dns_name("10.0.1.5", "us-east-1"), "ip-10-0-1-5.ec2.internal");
        assert_eq!(
            private_dns_name("10.0.1.5", "eu-west-1"),
            "ip-10-0-1-5.eu-west-1.compute.internal"
        );
        assert_eq!(region_of("us-east-1a"), "us-east-1");
    }

    #[test]
    fn a_node_reports_the_table_figures_and_well_known_labels() {
        let t = instance_type("m6i.large").expect("type");
        let (obj, status) = node_object(&NodeSpec {
            name: "ip-10-0-1-5.ec2.internal".into(),
            instance_type: t,
            zone: "us-east-1b",
            labels: BTreeMap::from([("role".into(), "critical".into())]),
            taints: vec![json!({"key": "CriticalAddonsOnly", "value": "true", "effect": "NoSchedule"})],
            source: "static".into(),
            k8s_version: "1.35",
            instance_id: "i-0123".into(),
            internal_ip: "10.0.1.5".into(),
        });
        let labels = &obj["metadata"]["labels"];
        assert_eq!(labels["topology.kubernetes.io/zone"], "us-east-1b");
        assert_eq!(labels["topology.kubernetes.io/region"], "us-east-1");
        assert_eq!(labels["node.kubernetes.io/instance-type"], "m6i.large");
        assert_eq!(labels["kubernetes.io/arch"], "amd64");
        assert_eq!(labels["role"], "critical");
        assert_eq!(obj["spec"]["providerID"], "aws:///us-east-1b/i-0123");
        assert_eq!(
            status["capacity"],
            json!({"cpu": "2", "memory": "8388608Ki", "pods": "29"})
        );
        // 2 vCPU: 60m + 10m reserved; 8 GiB - (11 * 29 + 255) MiB - 100 MiB
        assert_eq!(status["allocatable"]["cpu"], "1930m");
        assert_eq!(
            status["allocatable"]["memory"],
            json!(format!("{}Ki", (8192 - 574 - 100) * 1024))
        );
        assert_eq!(status["conditions"][3]["type"], "Ready");
    }

    #[test]
    fn eks_taint_spelling_becomes_kubernetes_spelling() {
        let g = NodeGroupView {
            taints: vec![
                json!({"key": "a", "value": "b", "effect": "NO_SCHEDULE"}),
                json!({"key": "c", "effect": "NO_EXECUTE"}),
            ],
            ..NodeGroupView::default()
        };
        assert_eq!(
            k8s_taints(&g),
            vec![
                json!({"key": "a", "value": "b", "effect": "NoSchedule"}),
                json!({"key": "c", "effect": "NoExecute"})
            ]
        );
    }
}
