//! The node side of scheduling: what a node offers a pod ([`allocatable`]), concrete
//! [`CandidateNode`]s, and [`NodeShape`]s — an EKS managed node group or a Karpenter
//! NodePool, read as the set of instance types its nodes may be — with the labels and
//! taints those nodes carry.
//!
//! Rules kept here:
//! - Allocatable follows the EKS AMI (awslabs/amazon-eks-ami: `files/bootstrap.sh` for AL2,
//!   `nodeadm/internal/kubelet/config.go` for AL2023, `getCPUMillicoresToReserve` and
//!   `getMemoryMebibytesToReserve`), which Karpenter reproduces for its own arithmetic:
//!   kube-reserved CPU is 6% of the first core, 1% of the second, 0.5% of the third and
//!   fourth and 0.25% of every core above four, each range computed in millicores with
//!   integer division; kube-reserved memory is `11 MiB * max_pods + 255 MiB`; the hard
//!   eviction threshold `memory.available<100Mi` comes off memory too; pods are `max_pods`.
//! - A managed node group's nodes carry `kubernetes.io/arch`, `kubernetes.io/os=linux`,
//!   `node.kubernetes.io/instance-type` and `eks.amazonaws.com/nodegroup=<name>` plus the
//!   group's labels; the zone is unknown and left off. A group declaring no instance types
//!   gets EKS's default, `t3.medium`.
//! - A Karpenter v1 NodePool is narrowed to the table's instance types that satisfy every
//!   requirement on `node.kubernetes.io/instance-type`, `kubernetes.io/arch`,
//!   `kubernetes.io/os` (always `linux` here), and `karpenter.k8s.aws/instance-{family,
//!   size,category,generation,cpu,memory,local-nvme}` (memory in MiB, local NVMe in GB,
//!   absent on types without it, so `Gt`/`Gte`/`Exists` exclude those). Operators: `In`,
//!   `NotIn`, `Exists`, `DoesNotExist`, `Gt`, `Lt`, `Gte`, `Lte`.
//!   `karpenter.sh/capacity-type` is not a type filter: it keeps the allowed capacity types
//!   (`on-demand` when unconstrained, Karpenter's default), and nodes carry the first one —
//!   placement tries each allowed value, as Karpenter would launch whichever the pod asks
//!   for. Any other key constrained to `In` of one value becomes a node label; other keys
//!   (a list of zones, `instance-hypervisor NotIn`, …) are ignored and listed in
//!   [`NodeShape::unmodelled`], as are `In` values naming types or families the table
//!   lacks. `spec.template.spec.taints` are the nodes' taints; `startupTaints` are not:
//!   Karpenter does not require pods to tolerate them (something removes them once the node
//!   is initialised). `spec.limits.cpu` becomes [`NodeShape::cpu_limit_milli`].
//!
//! Not modelled: capacity the kubelet reports below the nominal memory (see
//! [`crate::instance_types`]), custom `kubeReserved`/`systemReserved`/`maxPods`
//! in an EC2NodeClass or launch template, prefix delegation, `spec.limits.memory` and
//! other limits, `minValues`, NodePool weights, zones and offerings.

use std::collections::BTreeMap;

use serde_json::Value;

use super::pod::{LabelRequirement, NodeTaint, Operator, TaintEffect};
use super::quantity::{QuantityError, Resources, cpu_value, memory_value};
use crate::instance_types::{InstanceType, SOURCE, instance_type, instance_types};

/// A node the filters can run against: a concrete Node, or one instance type of a shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CandidateNode {
    /// The node's name (`metadata.name`, what `matchFields` reads); a shape's candidates
    /// are named after their instance type.
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<NodeTaint>,
    pub allocatable: Resources,
}

impl CandidateNode {
    /// A concrete `v1` Node object as the filters see it: `metadata.name`, its labels,
    /// `spec.taints` and `status.allocatable` (cpu, memory, pods; a missing quantity is 0,
    /// so such a node fits nothing that requests it).
    pub fn from_node(node: &Value) -> Result<Self, QuantityError> {
        let name = node["metadata"]["name"].as_str().unwrap_or_default().to_string();
        let labels = node["metadata"]["labels"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        // A taint the API server would not have accepted is skipped, not fatal: the node
        // exists and the others still filter.
        let taints = node["spec"]["taints"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| parse_taint(t).ok())
            .collect();
        let a = &node["status"]["allocatable"];
        let at = |e: QuantityError, what: &str| e.at(format!("Node {name} status.allocatable.{what}"));
        let allocatable = Resources {
            milli_cpu: cpu_value(a.get("cpu")).map_err(|e| at(e, "cpu"))?.unwrap_or(0),
            memory_bytes: memory_value(a.get("memory")).map_err(|e| at(e, "memory"))?.unwrap_or(0),
            pods: memory_value(a.get("pods")).map_err(|e| at(e, "pods"))?.unwrap_or(0),
        };
        Ok(CandidateNode {
            name,
            labels,
            taints,
            allocatable,
        })
    }
}

/// What a kubelet on an EKS node of type `t` reports, as Node `status` quantities:
/// `(capacity, allocatable)`, each `{"cpu", "memory", "pods"}` in the kubelet's units
/// (whole cores or millicores, `Ki`, a count). Allocatable is [`allocatable`].
pub fn node_quantities(t: &InstanceType) -> (Value, Value) {
    let a = allocatable(t);
    let capacity = serde_json::json!({
        "cpu": t.vcpu.to_string(),
        "memory": format!("{}Ki", t.memory_mib * 1024),
        "pods": t.max_pods.to_string(),
    });
    let cpu = if a.milli_cpu.is_multiple_of(1000) {
        (a.milli_cpu / 1000).to_string()
    } else {
        format!("{}m", a.milli_cpu)
    };
    let allocatable = serde_json::json!({
        "cpu": cpu,
        "memory": format!("{}Ki", a.memory_bytes / 1024),
        "pods": a.pods.to_string(),
    });
    (capacity, allocatable)
}

/// CPU the EKS AMI reserves for the kubelet and runtime on `vcpu` cores, in millicores.
pub fn kube_reserved_milli_cpu(vcpu: u32) -> u64 {
    let total = u64::from(vcpu) * 1000;
    // (range start, range end, ten-thousandths reserved), as nodeadm writes it.
    let ranges = [
        (0, 1000, 600),
        (1000, 2000, 100),
        (2000, 4000, 50),
        (4000, u64::MAX, 25),
    ];
    ranges
        .iter()
        .filter(|(start, _, _)| total > *start)
        .map(|&(start, end, per_10k)| (total.min(end) - start) * per_10k / 10_000)
        .sum()
}

/// Memory the EKS AMI reserves for the kubelet and runtime, in MiB.
pub fn kube_reserved_memory_mib(max_pods: u32) -> u64 {
    11 * u64::from(max_pods) + 255
}

/// The kubelet's default hard eviction threshold on the EKS AMI (`memory.available<100Mi`).
pub const EVICTION_HARD_MEMORY_MIB: u64 = 100;

/// What a node of this type offers pods: capacity minus kube-reserved minus the hard
/// eviction threshold (see the module doc for the formula and its source).
///
/// `c6id.2xlarge`: 8 vCPU → 60 + 10 + 10 + 10 = 90m reserved → 7910m; 16 GiB − (11 × 58 +
/// 255) MiB − 100 MiB = 15391 MiB; 58 pods.
pub fn allocatable(t: &InstanceType) -> Resources {
    let mib = 1u64 << 20;
    let reserved_mib = kube_reserved_memory_mib(t.max_pods) + EVICTION_HARD_MEMORY_MIB;
    Resources {
        milli_cpu: (u64::from(t.vcpu) * 1000).saturating_sub(kube_reserved_milli_cpu(t.vcpu)),
        memory_bytes: t.memory_mib.saturating_sub(reserved_mib) * mib,
        pods: u64::from(t.max_pods),
    }
}

/// Why a shape could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    #[error("unknown instance type `{0}` (not in spar's instance-type table: {SOURCE})")]
    UnknownInstanceType(String),
    #[error("not a Karpenter NodePool: {0}")]
    NotANodePool(String),
    #[error("NodePool `{pool}`: {message}")]
    Invalid { pool: String, message: String },
    #[error("NodePool `{pool}` spec.limits.cpu: {source}")]
    Limit { pool: String, source: QuantityError },
}

/// Where a shape came from; decides the per-type labels its nodes carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShapeKind {
    ManagedNodeGroup,
    NodePool,
}

/// A set of nodes that could exist: a node group or NodePool and the instance types it may
/// launch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeShape {
    pub name: String,
    pub kind: ShapeKind,
    /// Labels every node of the shape carries (the per-type ones are added by
    /// [`Self::candidates`]).
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<NodeTaint>,
    /// The instance types the shape may launch (each one a candidate node).
    pub instance_types: Vec<&'static InstanceType>,
    /// A managed node group's maximum size, when known.
    pub max_nodes: Option<u32>,
    /// A NodePool's `spec.limits.cpu`, in millicores.
    pub cpu_limit_milli: Option<u64>,
    /// `karpenter.sh/capacity-type` values the NodePool allows, in its order (empty for a
    /// managed node group).
    pub capacity_types: Vec<String>,
    /// Requirements read but not modelled (see the module doc).
    pub unmodelled: Vec<String>,
}

const CAPACITY_TYPE: &str = "karpenter.sh/capacity-type";
const CAPACITY_TYPES: [&str; 3] = ["on-demand", "spot", "reserved"];

impl NodeShape {
    /// An EKS managed node group of these instance types (none: EKS's default
    /// `t3.medium`), labels and taints.
    pub fn managed_node_group(
        name: &str,
        instance_types: &[&str],
        labels: BTreeMap<String, String>,
        taints: Vec<NodeTaint>,
    ) -> Result<Self, ShapeError> {
        let names: &[&str] = if instance_types.is_empty() {
            &["t3.medium"]
        } else {
            instance_types
        };
        let types = names
            .iter()
            .map(|n| instance_type(n).ok_or_else(|| ShapeError::UnknownInstanceType(n.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        let mut all = labels;
        all.insert("kubernetes.io/os".into(), "linux".into());
        all.insert("eks.amazonaws.com/nodegroup".into(), name.to_string());
        Ok(NodeShape {
            name: name.to_string(),
            kind: ShapeKind::ManagedNodeGroup,
            labels: all,
            taints,
            instance_types: types,
            max_nodes: None,
            cpu_limit_milli: None,
            capacity_types: Vec::new(),
            unmodelled: Vec::new(),
        })
    }

    /// A Karpenter v1 NodePool manifest, narrowed to the table's instance types it admits.
    pub fn from_node_pool(manifest: &Value) -> Result<Self, ShapeError> {
        let kind = manifest["kind"].as_str().unwrap_or("");
        let api = manifest["apiVersion"].as_str().unwrap_or("");
        if kind != "NodePool" || !api.starts_with("karpenter.sh/") {
            return Err(ShapeError::NotANodePool(format!("apiVersion `{api}`, kind `{kind}`")));
        }
        let pool = manifest["metadata"]["name"].as_str().unwrap_or("").to_string();
        if pool.is_empty() {
            return Err(ShapeError::NotANodePool("no metadata.name".into()));
        }
        let invalid = |message: String| ShapeError::Invalid {
            pool: pool.clone(),
            message,
        };
        let template = &manifest["spec"]["template"];

        let mut taints = Vec::new();
        for (i, t) in template["spec"]["taints"].as_array().into_iter().flatten().enumerate() {
            taints.push(parse_taint(t).map_err(|m| invalid(format!("spec.template.spec.taints[{i}]: {m}")))?);
        }

        let mut types: Vec<&'static InstanceType> = instance_types().iter().collect();
        let mut capacity: Vec<String> = CAPACITY_TYPES.iter().map(|s| s.to_string()).collect();
        let mut capacity_constrained = false;
        let mut labels = BTreeMap::new();
        let mut unmodelled = Vec::new();
        let requirements = template["spec"]["requirements"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        for (i, r) in requirements.iter().enumerate() {
            let req = LabelRequirement::from_json(r, true)
                .map_err(|m| invalid(format!("spec.template.spec.requirements[{i}]: {m}")))?;
            if req.key == CAPACITY_TYPE {
                capacity_constrained = true;
                capacity = match &req.operator {
                    // Keep the NodePool's order for `In`: the first is what nodes carry.
                    Operator::In(vs) => vs
                        .iter()
                        .filter(|v| req.matches(Some(v)) && capacity.contains(v))
                        .cloned()
                        .collect(),
                    _ => capacity.into_iter().filter(|v| req.matches(Some(v))).collect(),
                };
            } else if is_type_attribute(&req.key) {
                if let Operator::In(values) = &req.operator {
                    for v in values {
                        if !instance_types()
                            .iter()
                            .any(|t| type_attribute(t, &req.key).as_deref() == Some(v.as_str()))
                        {
                            unmodelled.push(format!("{}: `{v}` is not in spar's instance-type table", req.key));
                        }
                    }
                }
                types.retain(|t| req.matches(type_attribute(t, &req.key).as_deref()));
            } else {
                match &req.operator {
                    Operator::In(vs) if vs.len() == 1 => {
                        labels.insert(req.key.clone(), vs[0].clone());
                    }
                    _ => unmodelled.push(req.to_string()),
                }
            }
        }
        if !capacity_constrained {
            capacity = vec!["on-demand".to_string()];
        }

        for (k, v) in template["metadata"]["labels"].as_object().into_iter().flatten() {
            let v = v
                .as_str()
                .ok_or_else(|| invalid(format!("label `{k}` is not a string")))?;
            labels.insert(k.clone(), v.to_string());
        }
        labels.insert("karpenter.sh/nodepool".into(), pool.clone());
        labels.insert("kubernetes.io/os".into(), "linux".into());
        if let Some(first) = capacity.first() {
            labels.insert(CAPACITY_TYPE.into(), first.clone());
        }

        let cpu_limit_milli = cpu_value(manifest["spec"]["limits"].get("cpu")).map_err(|source| ShapeError::Limit {
            pool: pool.clone(),
            source,
        })?;
        if capacity.is_empty() {
            // No capacity type can be launched: the pool launches nothing.
            types.clear();
            unmodelled.push(format!("{CAPACITY_TYPE}: no capacity type is allowed"));
        }
        Ok(NodeShape {
            name: pool,
            kind: ShapeKind::NodePool,
            labels,
            taints,
            instance_types: types,
            max_nodes: None,
            cpu_limit_milli,
            capacity_types: capacity,
            unmodelled,
        })
    }

    /// One candidate node per instance type, with the shape's labels and taints, the
    /// type's well-known labels, and its [`allocatable`].
    pub fn candidates(&self) -> Vec<CandidateNode> {
        self.instance_types.iter().map(|t| self.candidate(t)).collect()
    }

    /// The candidate node of instance type `t`.
    pub fn candidate(&self, t: &'static InstanceType) -> CandidateNode {
        let mut labels = self.labels.clone();
        labels.insert("node.kubernetes.io/instance-type".into(), t.name.into());
        labels.insert("kubernetes.io/arch".into(), t.arch.as_str().into());
        if self.kind == ShapeKind::NodePool {
            for key in KARPENTER_TYPE_LABELS {
                if let Some(v) = type_attribute(t, key) {
                    labels.insert(key.to_string(), v);
                }
            }
        }
        CandidateNode {
            name: t.name.to_string(),
            labels,
            taints: self.taints.clone(),
            allocatable: allocatable(t),
        }
    }
}

/// The `karpenter.k8s.aws/*` labels Karpenter puts on a node from its instance type.
const KARPENTER_TYPE_LABELS: [&str; 7] = [
    "karpenter.k8s.aws/instance-family",
    "karpenter.k8s.aws/instance-size",
    "karpenter.k8s.aws/instance-category",
    "karpenter.k8s.aws/instance-generation",
    "karpenter.k8s.aws/instance-cpu",
    "karpenter.k8s.aws/instance-memory",
    "karpenter.k8s.aws/instance-local-nvme",
];

fn is_type_attribute(key: &str) -> bool {
    matches!(
        key,
        "node.kubernetes.io/instance-type" | "kubernetes.io/arch" | "kubernetes.io/os"
    ) || KARPENTER_TYPE_LABELS.contains(&key)
}

/// The value an instance type gives a well-known label (`None`: the label is absent).
fn type_attribute(t: &InstanceType, key: &str) -> Option<String> {
    Some(match key {
        "node.kubernetes.io/instance-type" => t.name.to_string(),
        "kubernetes.io/arch" => t.arch.as_str().to_string(),
        "kubernetes.io/os" => "linux".to_string(),
        "karpenter.k8s.aws/instance-family" => t.family.to_string(),
        "karpenter.k8s.aws/instance-size" => t.size.to_string(),
        "karpenter.k8s.aws/instance-category" => t.category().to_string(),
        "karpenter.k8s.aws/instance-generation" => t.generation()?.to_string(),
        "karpenter.k8s.aws/instance-cpu" => t.vcpu.to_string(),
        "karpenter.k8s.aws/instance-memory" => t.memory_mib.to_string(),
        "karpenter.k8s.aws/instance-local-nvme" if t.local_nvme_gb > 0 => t.local_nvme_gb.to_string(),
        _ => return None,
    })
}

/// `{key, value?, effect}` in Kubernetes spelling.
pub(crate) fn parse_taint(v: &Value) -> Result<NodeTaint, String> {
    let key = v["key"].as_str().filter(|k| !k.is_empty()).ok_or("no key")?;
    let value = match &v["value"] {
        Value::Null => None,
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => Some(s.as_str()),
        other => return Err(format!("value {other} is not a string")),
    };
    let effect = v["effect"].as_str().unwrap_or("");
    let effect = TaintEffect::parse(effect).ok_or_else(|| format!("unknown effect `{effect}`"))?;
    Ok(NodeTaint::new(key, value, effect))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_node_reported_from_the_table_reads_back_as_its_allocatable() {
        let t = instance_type("m6i.large").expect("in table");
        let (capacity, allocatable_q) = node_quantities(t);
        assert_eq!(capacity, json!({"cpu": "2", "memory": "8388608Ki", "pods": "29"}));
        let node = json!({
            "metadata": {"name": "ip-10-0-1-5.ec2.internal", "labels": {"a": "b"}},
            "spec": {"taints": [{"key": "CriticalAddonsOnly", "value": "true", "effect": "NoSchedule"}, {"key": "bad"}]},
            "status": {"allocatable": allocatable_q},
        });
        let c = CandidateNode::from_node(&node).expect("node");
        assert_eq!(c.allocatable, allocatable(t));
        assert_eq!(
            c.taints,
            [NodeTaint::new(
                "CriticalAddonsOnly",
                Some("true"),
                TaintEffect::NoSchedule
            )]
        );
        assert_eq!(c.labels["a"], "b");
        let bad = json!({"metadata": {"name": "n"}, "status": {"allocatable": {"cpu": "lots"}}});
        assert!(
            CandidateNode::from_node(&bad)
                .unwrap_err()
                .to_string()
                .contains("Node n status.allocatable.cpu")
        );
    }

    #[test]
    fn allocatable_on_c6id_2xlarge() {
        let t = instance_type("c6id.2xlarge").expect("in table");
        assert_eq!(kube_reserved_milli_cpu(8), 90);
        let a = allocatable(t);
        assert_eq!(a.milli_cpu, 7910);
        assert_eq!(super::super::quantity::format_cpu(a.milli_cpu), "7.91");
        assert_eq!(a.memory_bytes, (16384 - (11 * 58 + 255) - 100) << 20);
        assert_eq!(a.pods, 58);
    }

    #[test]
    fn cpu_reservation_by_core_count() {
        assert_eq!(kube_reserved_milli_cpu(1), 60);
        assert_eq!(kube_reserved_milli_cpu(2), 70);
        assert_eq!(kube_reserved_milli_cpu(4), 80);
        assert_eq!(kube_reserved_milli_cpu(16), 110);
        assert_eq!(kube_reserved_milli_cpu(96), 310);
        assert_eq!(kube_reserved_memory_mib(29), 574);
    }

    #[test]
    fn managed_node_group_labels_and_unknown_types() {
        let g = NodeShape::managed_node_group(
            "system",
            &["m6i.large", "m7g.large"],
            BTreeMap::from([("role".to_string(), "system".to_string())]),
            vec![NodeTaint::new(
                "CriticalAddonsOnly",
                Some("true"),
                TaintEffect::NoSchedule,
            )],
        )
        .expect("known types");
        let c = g.candidates();
        assert_eq!(c.len(), 2);
        assert_eq!(c[1].labels["kubernetes.io/arch"], "arm64");
        assert_eq!(c[0].labels["node.kubernetes.io/instance-type"], "m6i.large");
        assert_eq!(c[0].labels["eks.amazonaws.com/nodegroup"], "system");
        assert_eq!(c[0].labels["kubernetes.io/os"], "linux");
        assert_eq!(c[0].labels["role"], "system");
        assert!(!c[0].labels.contains_key("topology.kubernetes.io/zone"));
        assert_eq!(c[0].taints.len(), 1);
        let e = NodeShape::managed_node_group("g", &["m6i.large", "c5.huge"], BTreeMap::new(), vec![])
            .expect_err("unknown");
        assert_eq!(e, ShapeError::UnknownInstanceType("c5.huge".into()));
        assert!(e.to_string().contains("c5.huge"));
        let d = NodeShape::managed_node_group("d", &[], BTreeMap::new(), vec![]).expect("default");
        assert_eq!(d.instance_types[0].name, "t3.medium");
    }

    fn pool(requirements: Value) -> Value {
        json!({
            "apiVersion": "karpenter.sh/v1",
            "kind": "NodePool",
            "metadata": {"name": "runners"},
            "spec": {
                "template": {
                    "metadata": {"labels": {"github-actions-runner": "true"}},
                    "spec": {
                        "taints": [{"key": "github-actions-runner", "value": "true", "effect": "NoSchedule"}],
                        "startupTaints": [{"key": "ebs.csi.aws.com/agent-not-ready", "effect": "NoExecute"}],
                        "requirements": requirements,
                    }
                },
                "limits": {"cpu": 256, "memory": "1024Gi"},
            }
        })
    }

    fn names(s: &NodeShape) -> Vec<&'static str> {
        s.instance_types.iter().map(|t| t.name).collect()
    }

    #[test]
    fn node_pool_narrows_by_family_nvme_and_arch() {
        let p = NodeShape::from_node_pool(&pool(json!([
            {"key": "karpenter.k8s.aws/instance-family", "operator": "In", "values": ["c6id", "m6id", "c7gd", "i4i"]},
            {"key": "karpenter.k8s.aws/instance-local-nvme", "operator": "Gte", "values": ["474"]},
            {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
            {"key": "karpenter.k8s.aws/instance-cpu", "operator": "Lte", "values": ["16"]},
            {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot", "on-demand"]},
        ])))
        .expect("valid pool");
        assert_eq!(
            names(&p),
            [
                "c6id.2xlarge",
                "c6id.4xlarge",
                "m6id.2xlarge",
                "m6id.4xlarge",
                "i4i.xlarge",
                "i4i.2xlarge",
                "i4i.4xlarge"
            ]
        );
        assert_eq!(p.cpu_limit_milli, Some(256_000));
        assert_eq!(p.capacity_types, ["spot", "on-demand"]);
        assert_eq!(
            p.taints,
            [NodeTaint::new(
                "github-actions-runner",
                Some("true"),
                TaintEffect::NoSchedule
            )]
        );
        assert!(p.unmodelled.is_empty(), "{:?}", p.unmodelled);
        let c = &p.candidates()[0];
        assert_eq!(c.labels["karpenter.sh/nodepool"], "runners");
        assert_eq!(c.labels["karpenter.sh/capacity-type"], "spot");
        assert_eq!(c.labels["karpenter.k8s.aws/instance-family"], "c6id");
        assert_eq!(c.labels["karpenter.k8s.aws/instance-size"], "2xlarge");
        assert_eq!(c.labels["karpenter.k8s.aws/instance-cpu"], "8");
        assert_eq!(c.labels["karpenter.k8s.aws/instance-memory"], "16384");
        assert_eq!(c.labels["karpenter.k8s.aws/instance-local-nvme"], "474");
        assert_eq!(c.labels["github-actions-runner"], "true");
        assert_eq!(c.labels["kubernetes.io/os"], "linux");
    }

    #[test]
    fn node_pool_arch_and_nvme_exclude_the_other_side() {
        // arm64 only, no NVMe requirement: the Graviton families plus m7g/c7g/t4g.
        let p = NodeShape::from_node_pool(&pool(json!([
            {"key": "kubernetes.io/arch", "operator": "In", "values": ["arm64"]},
            {"key": "karpenter.k8s.aws/instance-family", "operator": "NotIn", "values": ["r7gd", "m7gd", "c7gd"]},
        ])))
        .expect("valid pool");
        assert!(p.instance_types.iter().all(|t| t.arch.as_str() == "arm64"));
        assert!(names(&p).contains(&"t4g.medium") && names(&p).contains(&"m7g.medium"));
        // An NVMe requirement excludes the types with none (the label is absent on them).
        let p = NodeShape::from_node_pool(&pool(json!([
            {"key": "karpenter.k8s.aws/instance-local-nvme", "operator": "Exists"},
            {"key": "karpenter.k8s.aws/instance-memory", "operator": "Gt", "values": ["500000"]},
        ])))
        .expect("valid pool");
        assert_eq!(
            names(&p),
            [
                "m6id.32xlarge",
                "r6id.16xlarge",
                "r6id.24xlarge",
                "r6id.32xlarge",
                "r7gd.16xlarge",
                "i4i.16xlarge",
                "i4i.24xlarge",
                "i4i.32xlarge"
            ]
        );
        assert_eq!(p.capacity_types, ["on-demand"], "Karpenter's default");
    }

    #[test]
    fn node_pool_other_keys_become_labels_or_are_recorded() {
        let p = NodeShape::from_node_pool(&pool(json!([
            {"key": "karpenter.k8s.aws/instance-hypervisor", "operator": "In", "values": ["nitro"]},
            {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["eu-west-1a", "eu-west-1b"]},
            {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["c6id.large", "c5.large"]},
            {"key": "karpenter.sh/capacity-type", "operator": "NotIn", "values": ["spot"]},
        ])))
        .expect("valid pool");
        assert_eq!(names(&p), ["c6id.large"]);
        assert_eq!(p.labels["karpenter.k8s.aws/instance-hypervisor"], "nitro");
        assert_eq!(
            p.unmodelled,
            [
                "topology.kubernetes.io/zone In [eu-west-1a, eu-west-1b]",
                "node.kubernetes.io/instance-type: `c5.large` is not in spar's instance-type table"
            ]
        );
        assert_eq!(p.capacity_types, ["on-demand", "reserved"]);
    }

    #[test]
    fn node_pool_errors() {
        assert!(matches!(
            NodeShape::from_node_pool(&json!({"kind": "Deployment"})),
            Err(ShapeError::NotANodePool(_))
        ));
        let e = NodeShape::from_node_pool(&pool(json!([{"key": "k", "operator": "Near", "values": ["1"]}])))
            .expect_err("bad op");
        assert!(
            e.to_string().contains("requirements[0]") && e.to_string().contains("Near"),
            "{e}"
        );
        let mut bad = pool(json!([]));
        bad["spec"]["limits"]["cpu"] = json!("lots");
        let e = NodeShape::from_node_pool(&bad).expect_err("bad limit");
        assert!(e.to_string().contains("\"lots\""), "{e}");
        let mut bad = pool(json!([]));
        bad["spec"]["template"]["spec"]["taints"] = json!([{"key": "k", "effect": "Sometimes"}]);
        assert!(
            NodeShape::from_node_pool(&bad)
                .expect_err("bad taint")
                .to_string()
                .contains("Sometimes")
        );
    }
}
