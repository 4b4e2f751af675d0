//! The pod side of scheduling: pod templates read out of workload manifests, and the
//! requirements the scheduler's filters read from a pod spec, extracted once
//! ([`PodRequirements`]) so a pod is checked against many nodes without re-reading JSON.
//!
//! Rules kept here:
//! - Where the pod template is: `spec.template.spec` for Deployment, StatefulSet,
//!   ReplicaSet, DaemonSet and Job; `spec.jobTemplate.spec.template.spec` for CronJob;
//!   `spec` for Pod; `items` of a `kind: List` are read one by one; other kinds hold none.
//! - The effective request (component-helpers `resource.PodRequests`, KEP-753's formula):
//!   `max(sum of containers + sidecars, max over init containers of (that init container +
//!   the sidecars started before it))`, then pod-level `spec.resources.requests` replaces
//!   the CPU/memory total where set (KEP-2837), then `spec.overhead` is added. A sidecar is
//!   an init container with `restartPolicy: Always`. A container with a limit and no
//!   request for a resource requests its limit (API defaulting, `SetDefaults_Container`
//!   via `defaultHintsToRequests`). The scheduler's filters use these requests as they are:
//!   a container requesting nothing counts zero (the non-zero defaults are for scoring).
//! - Node affinity as component-helpers `nodeaffinity` parses it: `nodeSelectorTerms` are
//!   ORed, a term's expressions ANDed; a term with no expressions and no fields, or with an
//!   expression that does not validate (unknown operator, `In` without values, `Gt` with
//!   anything but one integer, `matchFields` on anything but `metadata.name`), matches no
//!   node; a present `required...` with no usable term matches no node.
//! - Tolerations keep their fields as written; an unknown operator tolerates nothing (the
//!   alpha `Gt`/`Lt` toleration operators of Kubernetes 1.35 are off by default).
//! - DaemonSet pods get the tolerations the DaemonSet controller adds
//!   (`pkg/controller/daemon/util/daemonset_util.go`, `AddOrUpdateDaemonPodTolerations`):
//!   `node.kubernetes.io/{not-ready,unreachable}:NoExecute`,
//!   `node.kubernetes.io/{disk-pressure,memory-pressure,pid-pressure,unschedulable}:NoSchedule`,
//!   and `node.kubernetes.io/network-unavailable:NoSchedule` with `hostNetwork`.
//!
//! Not modelled: extended resources (`nvidia.com/gpu`, hugepages; listed in
//! [`PodRequirements::ignored_resources`]), ephemeral storage, host ports, volumes, pod
//! (anti-)affinity, topology spread, preferred terms, `nodeName`, scheduling gates,
//! in-place resize status, and pod-level limits used as requests.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

use super::quantity::{QuantityError, Resources, cpu_value, memory_value};

/// What kind of workload a pod template came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WorkloadKind {
    Deployment,
    StatefulSet,
    DaemonSet,
    Job,
    CronJob,
    ReplicaSet,
    Pod,
    /// Built by hand from something else that holds a pod template (a custom resource).
    Other,
}

impl WorkloadKind {
    fn from_kind(kind: &str) -> Option<Self> {
        Some(match kind {
            "Deployment" => WorkloadKind::Deployment,
            "StatefulSet" => WorkloadKind::StatefulSet,
            "DaemonSet" => WorkloadKind::DaemonSet,
            "Job" => WorkloadKind::Job,
            "CronJob" => WorkloadKind::CronJob,
            "ReplicaSet" => WorkloadKind::ReplicaSet,
            "Pod" => WorkloadKind::Pod,
            _ => return None,
        })
    }
}

/// A pod template and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct PodTemplate {
    /// `Deployment kube-system/karpenter` (`Kind namespace/name`, or `Kind name` without a
    /// namespace).
    pub owner: String,
    pub kind: WorkloadKind,
    /// Pods wanted at once: `spec.replicas` (default 1); for a Job or CronJob its
    /// `parallelism` (default 1); for a DaemonSet 0, meaning one per node it lands on.
    pub replicas: u32,
    /// The pod spec.
    pub spec: Value,
}

/// The pod templates in a manifest (or a `kind: List` of them); none for other kinds.
pub fn pod_templates(manifest: &Value) -> Vec<PodTemplate> {
    let mut out = Vec::new();
    collect_templates(manifest, &mut out);
    out
}

fn collect_templates(manifest: &Value, out: &mut Vec<PodTemplate>) {
    let Some(kind_str) = manifest.get("kind").and_then(Value::as_str) else {
        return;
    };
    if kind_str == "List" {
        for item in manifest.get("items").and_then(Value::as_array).into_iter().flatten() {
            collect_templates(item, out);
        }
        return;
    }
    let Some(kind) = WorkloadKind::from_kind(kind_str) else {
        return;
    };
    let spec = &manifest["spec"];
    let count = |v: &Value| v.as_u64().map_or(1, |n| u32::try_from(n).unwrap_or(u32::MAX));
    let (pod_spec, replicas) = match kind {
        WorkloadKind::Pod => (spec, 1),
        WorkloadKind::DaemonSet => (&spec["template"]["spec"], 0),
        WorkloadKind::Job => (&spec["template"]["spec"], count(&spec["parallelism"])),
        WorkloadKind::CronJob => {
            let job = &spec["jobTemplate"]["spec"];
            (&job["template"]["spec"], count(&job["parallelism"]))
        }
        _ => (&spec["template"]["spec"], count(&spec["replicas"])),
    };
    if !pod_spec.is_object() {
        return;
    }
    let meta = &manifest["metadata"];
    let name = meta["name"].as_str().unwrap_or("");
    let owner = match meta["namespace"].as_str() {
        Some(ns) if !ns.is_empty() => format!("{kind_str} {ns}/{name}"),
        _ => format!("{kind_str} {name}"),
    };
    out.push(PodTemplate {
        owner,
        kind,
        replicas,
        spec: pod_spec.clone(),
    });
}

/// The pod's effective request (see the module doc for the formula); `pods` is 1.
pub fn requests(spec: &Value) -> Result<Resources, QuantityError> {
    let mut sum = Resources::ZERO;
    for (i, c) in list(&spec["containers"]).iter().enumerate() {
        sum = sum.plus(container_request(c, "containers", i)?);
    }
    let mut sidecars = Resources::ZERO;
    let mut init_max = Resources::ZERO;
    for (i, c) in list(&spec["initContainers"]).iter().enumerate() {
        let r = container_request(c, "initContainers", i)?;
        let during = if c["restartPolicy"].as_str() == Some("Always") {
            sum = sum.plus(r);
            sidecars = sidecars.plus(r);
            sidecars
        } else {
            r.plus(sidecars)
        };
        init_max = init_max.max(during);
    }
    let mut total = sum.max(init_max);
    let pod_level = &spec["resources"]["requests"];
    if let Some(cpu) = cpu_value(pod_level.get("cpu")).map_err(|e| e.at("resources.requests.cpu"))? {
        total.milli_cpu = cpu;
    }
    if let Some(mem) = memory_value(pod_level.get("memory")).map_err(|e| e.at("resources.requests.memory"))? {
        total.memory_bytes = mem;
    }
    let overhead = &spec["overhead"];
    total.milli_cpu = total.milli_cpu.saturating_add(
        cpu_value(overhead.get("cpu"))
            .map_err(|e| e.at("overhead.cpu"))?
            .unwrap_or(0),
    );
    total.memory_bytes = total.memory_bytes.saturating_add(
        memory_value(overhead.get("memory"))
            .map_err(|e| e.at("overhead.memory"))?
            .unwrap_or(0),
    );
    total.pods = 1;
    Ok(total)
}

/// One container's request: per resource, `requests` or else `limits`.
fn container_request(c: &Value, list_name: &str, i: usize) -> Result<Resources, QuantityError> {
    let res = &c["resources"];
    let at = |field: &str| {
        let name = c["name"].as_str().unwrap_or("");
        format!("{list_name}[{i}] ({name}) resources.{field}")
    };
    let pick = |resource: &str| -> (&str, Option<&Value>) {
        match res["requests"].get(resource).filter(|v| !v.is_null()) {
            Some(v) => ("requests", Some(v)),
            None => ("limits", res["limits"].get(resource)),
        }
    };
    let (from, v) = pick("cpu");
    let milli_cpu = cpu_value(v).map_err(|e| e.at(at(&format!("{from}.cpu"))))?.unwrap_or(0);
    let (from, v) = pick("memory");
    let memory_bytes = memory_value(v)
        .map_err(|e| e.at(at(&format!("{from}.memory"))))?
        .unwrap_or(0);
    Ok(Resources {
        milli_cpu,
        memory_bytes,
        pods: 0,
    })
}

fn list(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or(&[])
}

/// A taint effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TaintEffect {
    NoSchedule,
    PreferNoSchedule,
    NoExecute,
}

impl TaintEffect {
    /// Kubernetes spelling (`NoSchedule`) or the EKS API's (`NO_SCHEDULE`).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "NoSchedule" | "NO_SCHEDULE" => TaintEffect::NoSchedule,
            "PreferNoSchedule" | "PREFER_NO_SCHEDULE" => TaintEffect::PreferNoSchedule,
            "NoExecute" | "NO_EXECUTE" => TaintEffect::NoExecute,
            _ => return None,
        })
    }

    /// Kubernetes spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TaintEffect::NoSchedule => "NoSchedule",
            TaintEffect::PreferNoSchedule => "PreferNoSchedule",
            TaintEffect::NoExecute => "NoExecute",
        }
    }
}

impl fmt::Display for TaintEffect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A taint on a node.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NodeTaint {
    pub key: String,
    pub value: Option<String>,
    pub effect: TaintEffect,
}

impl NodeTaint {
    pub fn new(key: impl Into<String>, value: Option<&str>, effect: TaintEffect) -> Self {
        NodeTaint {
            key: key.into(),
            value: value.map(str::to_string),
            effect,
        }
    }
}

impl fmt::Display for NodeTaint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(v) => write!(f, "{}={}:{}", self.key, v, self.effect),
            None => write!(f, "{}:{}", self.key, self.effect),
        }
    }
}

/// A toleration's operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TolerationOperator {
    /// Also what an empty operator means.
    Equal,
    Exists,
    /// Anything else: tolerates nothing.
    Unsupported,
}

/// A pod's toleration, fields as written (empty strings where absent).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Toleration {
    /// Empty: every key (with `Exists`).
    pub key: String,
    pub operator: TolerationOperator,
    pub value: String,
    /// Empty: every effect.
    pub effect: String,
}

impl Toleration {
    /// Reads one entry of `spec.tolerations`.
    pub fn from_json(v: &Value) -> Self {
        let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
        let operator = match v["operator"].as_str().unwrap_or("") {
            "" | "Equal" => TolerationOperator::Equal,
            "Exists" => TolerationOperator::Exists,
            _ => TolerationOperator::Unsupported,
        };
        Toleration {
            key: s("key"),
            operator,
            value: s("value"),
            effect: s("effect"),
        }
    }

    /// The toleration as a `spec.tolerations` entry (empty fields left out).
    pub fn to_json(&self) -> Value {
        let mut m = serde_json::Map::new();
        if !self.key.is_empty() {
            m.insert("key".into(), Value::from(self.key.as_str()));
        }
        let op = match self.operator {
            TolerationOperator::Equal => "Equal",
            TolerationOperator::Exists => "Exists",
            TolerationOperator::Unsupported => "",
        };
        if !op.is_empty() {
            m.insert("operator".into(), Value::from(op));
        }
        if !self.value.is_empty() {
            m.insert("value".into(), Value::from(self.value.as_str()));
        }
        if !self.effect.is_empty() {
            m.insert("effect".into(), Value::from(self.effect.as_str()));
        }
        Value::Object(m)
    }

    /// `Exists` for `key` with `effect`.
    pub fn exists(key: &str, effect: TaintEffect) -> Self {
        Toleration {
            key: key.to_string(),
            operator: TolerationOperator::Exists,
            value: String::new(),
            effect: effect.as_str().to_string(),
        }
    }

    /// Whether this toleration tolerates `taint` (core/v1 `Toleration.ToleratesTaint`): the
    /// effect matches when empty or equal, the key when empty or equal, and then `Exists`
    /// tolerates any value while `Equal` compares values (a taint without one has `""`).
    pub fn tolerates(&self, taint: &NodeTaint) -> bool {
        if !self.effect.is_empty() && self.effect != taint.effect.as_str() {
            return false;
        }
        if !self.key.is_empty() && self.key != taint.key {
            return false;
        }
        match self.operator {
            TolerationOperator::Exists => true,
            TolerationOperator::Equal => self.value == taint.value.as_deref().unwrap_or(""),
            TolerationOperator::Unsupported => false,
        }
    }
}

/// A label requirement's operator, with its values parsed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Operator {
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    DoesNotExist,
    Gt(i64),
    Lt(i64),
    /// Karpenter NodePool requirements only.
    Gte(i64),
    /// Karpenter NodePool requirements only.
    Lte(i64),
}

/// `key operator values`, as in `matchExpressions` and NodePool `requirements`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LabelRequirement {
    pub key: String,
    pub operator: Operator,
}

impl LabelRequirement {
    /// Parses `{key, operator, values}`, validating as the API does; `Gte`/`Lte` only when
    /// `karpenter` (NodePool requirements). The error says what is wrong.
    pub fn from_json(v: &Value, karpenter: bool) -> Result<Self, String> {
        let key = v["key"].as_str().filter(|k| !k.is_empty()).ok_or("no key")?.to_string();
        let op = v["operator"].as_str().unwrap_or("");
        let values: Vec<String> = match &v["values"] {
            Value::Null => Vec::new(),
            Value::Array(a) => a
                .iter()
                .map(scalar_text)
                .collect::<Option<_>>()
                .ok_or("values are not strings")?,
            _ => return Err(format!("{key}: values is not a list")),
        };
        let one_int = |values: &[String]| -> Result<i64, String> {
            match values {
                [one] => one
                    .parse::<i64>()
                    .map_err(|_| format!("{key} {op}: `{one}` is not an integer")),
                _ => Err(format!("{key} {op}: needs exactly one value")),
            }
        };
        let operator = match op {
            "In" | "NotIn" if values.is_empty() => return Err(format!("{key} {op}: needs values")),
            "In" => Operator::In(values),
            "NotIn" => Operator::NotIn(values),
            "Exists" | "DoesNotExist" if !values.is_empty() => return Err(format!("{key} {op}: takes no values")),
            "Exists" => Operator::Exists,
            "DoesNotExist" => Operator::DoesNotExist,
            "Gt" => Operator::Gt(one_int(&values)?),
            "Lt" => Operator::Lt(one_int(&values)?),
            "Gte" if karpenter => Operator::Gte(one_int(&values)?),
            "Lte" if karpenter => Operator::Lte(one_int(&values)?),
            other => return Err(format!("{key}: unsupported operator `{other}`")),
        };
        Ok(LabelRequirement { key, operator })
    }

    /// Whether a label value (`None`: no such label) satisfies this requirement
    /// (apimachinery `labels.Requirement.Matches`): `NotIn` and `DoesNotExist` hold for an
    /// absent label; the comparisons need the label present and an integer.
    pub fn matches(&self, value: Option<&str>) -> bool {
        let number = || value.and_then(|v| v.parse::<i64>().ok());
        match &self.operator {
            Operator::In(vs) => value.is_some_and(|v| vs.iter().any(|x| x == v)),
            Operator::NotIn(vs) => value.is_none_or(|v| !vs.iter().any(|x| x == v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::Gt(b) => number().is_some_and(|n| n > *b),
            Operator::Lt(b) => number().is_some_and(|n| n < *b),
            Operator::Gte(b) => number().is_some_and(|n| n >= *b),
            Operator::Lte(b) => number().is_some_and(|n| n <= *b),
        }
    }
}

impl fmt::Display for LabelRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let k = &self.key;
        match &self.operator {
            Operator::In(vs) => write!(f, "{k} In [{}]", vs.join(", ")),
            Operator::NotIn(vs) => write!(f, "{k} NotIn [{}]", vs.join(", ")),
            Operator::Exists => write!(f, "{k} Exists"),
            Operator::DoesNotExist => write!(f, "{k} DoesNotExist"),
            Operator::Gt(b) => write!(f, "{k} Gt {b}"),
            Operator::Lt(b) => write!(f, "{k} Lt {b}"),
            Operator::Gte(b) => write!(f, "{k} Gte {b}"),
            Operator::Lte(b) => write!(f, "{k} Lte {b}"),
        }
    }
}

/// One `nodeSelectorTerms` entry that parsed: all of it must hold.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NodeSelectorTerm {
    pub match_expressions: Vec<LabelRequirement>,
    /// Only `metadata.name` with `In`/`NotIn` of one value (the API allows nothing else).
    pub match_fields: Vec<LabelRequirement>,
}

/// What the filters read from a pod spec, extracted once.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PodRequirements {
    /// The effective request ([`requests`]).
    pub requests: Resources,
    /// `spec.nodeSelector`: every label must equal.
    pub node_selector: Vec<(String, String)>,
    /// `requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms` that can match
    /// (ORed); `None` when the pod has no required node affinity, `Some(empty)` when it has
    /// one no node can satisfy.
    pub required_terms: Option<Vec<NodeSelectorTerm>>,
    pub tolerations: Vec<Toleration>,
    /// Requested resources other than CPU and memory, which the filters do not check
    /// (`nvidia.com/gpu`, `ephemeral-storage`, `hugepages-2Mi`).
    pub ignored_resources: Vec<String>,
}

impl PodRequirements {
    /// Reads a pod spec. Only quantities can fail; anything else malformed is read the way
    /// the scheduler reads it (a term that does not validate matches nothing).
    pub fn from_spec(spec: &Value) -> Result<Self, QuantityError> {
        let requests = requests(spec)?;
        let node_selector = spec["nodeSelector"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), scalar_text(v).unwrap_or_default()))
                    .collect()
            })
            .unwrap_or_default();
        let required = &spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"];
        let required_terms = (!required.is_null()).then(|| {
            list(&required["nodeSelectorTerms"])
                .iter()
                .filter_map(parse_term)
                .collect()
        });
        let tolerations = list(&spec["tolerations"]).iter().map(Toleration::from_json).collect();
        let mut ignored_resources = Vec::new();
        let all = list(&spec["containers"]).iter().chain(list(&spec["initContainers"]));
        for c in all {
            for section in ["requests", "limits"] {
                for name in c["resources"][section].as_object().into_iter().flat_map(|m| m.keys()) {
                    if name != "cpu" && name != "memory" && !ignored_resources.contains(name) {
                        ignored_resources.push(name.clone());
                    }
                }
            }
        }
        Ok(PodRequirements {
            requests,
            node_selector,
            required_terms,
            tolerations,
            ignored_resources,
        })
    }

    /// [`Self::from_spec`] of a template, plus the tolerations the DaemonSet controller
    /// gives its pods when the template is a DaemonSet's.
    pub fn from_template(t: &PodTemplate) -> Result<Self, QuantityError> {
        let mut r = Self::from_spec(&t.spec).map_err(|e| {
            let at = match &e.at {
                Some(at) => format!("{} {at}", t.owner),
                None => t.owner.clone(),
            };
            QuantityError { at: Some(at), ..e }
        })?;
        if t.kind == WorkloadKind::DaemonSet {
            r.tolerations
                .extend(daemonset_tolerations(t.spec["hostNetwork"].as_bool() == Some(true)));
        }
        Ok(r)
    }
}

/// The tolerations the DaemonSet controller adds to every pod it creates.
pub fn daemonset_tolerations(host_network: bool) -> Vec<Toleration> {
    let mut t = vec![
        Toleration::exists("node.kubernetes.io/not-ready", TaintEffect::NoExecute),
        Toleration::exists("node.kubernetes.io/unreachable", TaintEffect::NoExecute),
        Toleration::exists("node.kubernetes.io/disk-pressure", TaintEffect::NoSchedule),
        Toleration::exists("node.kubernetes.io/memory-pressure", TaintEffect::NoSchedule),
        Toleration::exists("node.kubernetes.io/pid-pressure", TaintEffect::NoSchedule),
        Toleration::exists("node.kubernetes.io/unschedulable", TaintEffect::NoSchedule),
    ];
    if host_network {
        t.push(Toleration::exists(
            "node.kubernetes.io/network-unavailable",
            TaintEffect::NoSchedule,
        ));
    }
    t
}

/// A term that can match, or `None` (empty, or an expression that does not validate).
fn parse_term(term: &Value) -> Option<NodeSelectorTerm> {
    let match_expressions = list(&term["matchExpressions"])
        .iter()
        .map(|e| LabelRequirement::from_json(e, false).ok())
        .collect::<Option<Vec<_>>>()?;
    let match_fields = list(&term["matchFields"])
        .iter()
        .map(|e| {
            let r = LabelRequirement::from_json(e, false).ok()?;
            let one_value = matches!(&r.operator, Operator::In(v) | Operator::NotIn(v) if v.len() == 1);
            (r.key == "metadata.name" && one_value).then_some(r)
        })
        .collect::<Option<Vec<_>>>()?;
    if match_expressions.is_empty() && match_fields.is_empty() {
        return None;
    }
    Some(NodeSelectorTerm {
        match_expressions,
        match_fields,
    })
}

/// A JSON scalar as label text (`"a"`, `true` → `"true"`, `3` → `"3"`).
fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Labels as a map lookup, so the filters run on a node's map or on one with a value
/// swapped in (a Karpenter capacity type) without copying it.
pub(crate) trait Labels {
    fn label(&self, key: &str) -> Option<&str>;
}

impl Labels for BTreeMap<String, String> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn templates_from_each_kind() {
        let spec = json!({"containers": [{"name": "a"}]});
        let cases = [
            (
                json!({"kind": "Deployment", "metadata": {"name": "d", "namespace": "ns"},
                       "spec": {"replicas": 3, "template": {"spec": spec}}}),
                WorkloadKind::Deployment,
                3,
                "Deployment ns/d",
            ),
            (
                json!({"kind": "StatefulSet", "metadata": {"name": "s"}, "spec": {"template": {"spec": spec}}}),
                WorkloadKind::StatefulSet,
                1,
                "StatefulSet s",
            ),
            (
                json!({"kind": "ReplicaSet", "metadata": {"name": "r"},
                       "spec": {"replicas": 0, "template": {"spec": spec}}}),
                WorkloadKind::ReplicaSet,
                0,
                "ReplicaSet r",
            ),
            (
                json!({"kind": "DaemonSet", "metadata": {"name": "ds"}, "spec": {"template": {"spec": spec}}}),
                WorkloadKind::DaemonSet,
                0,
                "DaemonSet ds",
            ),
            (
                json!({"kind": "Job", "metadata": {"name": "j"},
                       "spec": {"parallelism": 4, "template": {"spec": spec}}}),
                WorkloadKind::Job,
                4,
                "Job j",
            ),
            (
                json!({"kind": "CronJob", "metadata": {"name": "c"},
                       "spec": {"jobTemplate": {"spec": {"template": {"spec": spec}}}}}),
                WorkloadKind::CronJob,
                1,
                "CronJob c",
            ),
            (
                json!({"kind": "Pod", "metadata": {"name": "p", "namespace": "x"}, "spec": spec}),
                WorkloadKind::Pod,
                1,
                "Pod x/p",
            ),
        ];
        for (manifest, kind, replicas, owner) in cases {
            let t = pod_templates(&manifest);
            assert_eq!(t.len(), 1, "{manifest}");
            assert_eq!((t[0].kind, t[0].replicas, t[0].owner.as_str()), (kind, replicas, owner));
            assert_eq!(t[0].spec, spec);
        }
        let list = json!({"kind": "List", "items": [
            {"kind": "Pod", "metadata": {"name": "a"}, "spec": spec},
            {"kind": "Service", "metadata": {"name": "svc"}, "spec": {}},
            {"kind": "Deployment", "metadata": {"name": "b"}, "spec": {"template": {"spec": spec}}},
        ]});
        let owners: Vec<_> = pod_templates(&list).into_iter().map(|t| t.owner).collect();
        assert_eq!(owners, ["Pod a", "Deployment b"]);
        assert!(pod_templates(&json!({"kind": "ConfigMap", "data": {}})).is_empty());
        assert!(pod_templates(&json!({"kind": "Deployment", "spec": {}})).is_empty());
        assert!(pod_templates(&json!("text")).is_empty());
    }

    fn c(requests: Value, limits: Value) -> Value {
        json!({"name": "c", "resources": {"requests": requests, "limits": limits}})
    }

    #[test]
    fn requests_sum_containers() {
        let spec = json!({"containers": [
            c(json!({"cpu": "250m", "memory": "1Gi"}), json!(null)),
            c(json!({"cpu": 1}), json!(null)),
        ]});
        assert_eq!(
            requests(&spec),
            Ok(Resources {
                milli_cpu: 1250,
                memory_bytes: 1 << 30,
                pods: 1
            })
        );
        assert_eq!(
            requests(&json!({})),
            Ok(Resources {
                milli_cpu: 0,
                memory_bytes: 0,
                pods: 1
            })
        );
    }

    #[test]
    fn init_containers_count_by_their_maximum() {
        // The biggest init container (3 CPU) exceeds the containers' sum (2 CPU); memory is
        // the other way round.
        let spec = json!({
            "containers": [
                c(json!({"cpu": "1", "memory": "2Gi"}), json!(null)),
                c(json!({"cpu": "1", "memory": "2Gi"}), json!(null)),
            ],
            "initContainers": [
                c(json!({"cpu": "3", "memory": "1Gi"}), json!(null)),
                c(json!({"cpu": "500m", "memory": "3Gi"}), json!(null)),
            ],
        });
        assert_eq!(
            requests(&spec),
            Ok(Resources {
                milli_cpu: 3000,
                memory_bytes: 4 << 30,
                pods: 1
            })
        );
        // Failing case for the rule: summing init containers would give 3.5 CPU.
        assert_ne!(requests(&spec).map(|r| r.milli_cpu), Ok(5500));
    }

    #[test]
    fn sidecars_add_to_the_containers_and_the_later_init_containers() {
        let mut sidecar = c(json!({"cpu": "1"}), json!(null));
        sidecar["restartPolicy"] = json!("Always");
        let spec = json!({
            "containers": [c(json!({"cpu": "1"}), json!(null))],
            "initContainers": [sidecar, c(json!({"cpu": "2500m"}), json!(null))],
        });
        // max(containers 1 + sidecar 1, init 2.5 + sidecar 1) = 3.5
        assert_eq!(requests(&spec).map(|r| r.milli_cpu), Ok(3500));
    }

    #[test]
    fn limits_stand_in_for_missing_requests() {
        let spec = json!({"containers": [c(json!(null), json!({"cpu": "2", "memory": "1Gi"}))]});
        assert_eq!(
            requests(&spec),
            Ok(Resources {
                milli_cpu: 2000,
                memory_bytes: 1 << 30,
                pods: 1
            })
        );
        // Per resource: a request wins over its limit, a limit fills only the missing one.
        let spec = json!({"containers": [c(json!({"cpu": "500m"}), json!({"cpu": "2", "memory": "1Gi"}))]});
        assert_eq!(
            requests(&spec),
            Ok(Resources {
                milli_cpu: 500,
                memory_bytes: 1 << 30,
                pods: 1
            })
        );
    }

    #[test]
    fn pod_level_requests_and_overhead() {
        let spec = json!({
            "containers": [c(json!({"cpu": "1", "memory": "1Gi"}), json!(null))],
            "resources": {"requests": {"cpu": "2"}},
            "overhead": {"cpu": "250m", "memory": "120Mi"},
        });
        assert_eq!(
            requests(&spec),
            Ok(Resources {
                milli_cpu: 2250,
                memory_bytes: (1 << 30) + (120 << 20),
                pods: 1
            })
        );
    }

    #[test]
    fn bad_request_names_the_container_and_field() {
        let spec = json!({"containers": [{"name": "app", "resources": {"requests": {"memory": "lots"}}}]});
        let e = requests(&spec).expect_err("bad memory");
        assert_eq!(e.quantity, "lots");
        assert_eq!(e.at.as_deref(), Some("containers[0] (app) resources.requests.memory"));
        let t = PodTemplate {
            owner: "Deployment a/b".into(),
            kind: WorkloadKind::Deployment,
            replicas: 1,
            spec,
        };
        let e = PodRequirements::from_template(&t).expect_err("bad memory");
        assert_eq!(
            e.at.as_deref(),
            Some("Deployment a/b containers[0] (app) resources.requests.memory")
        );
    }

    #[test]
    fn requirements_extraction() {
        let spec = json!({
            "nodeSelector": {"a": "1", "b": true},
            "tolerations": [{"key": "k", "operator": "Exists"}, {"operator": "Gt", "key": "n", "value": "3"}],
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "x", "operator": "In", "values": ["1"]}]},
                {"matchExpressions": [{"key": "x", "operator": "Bogus", "values": ["1"]}]},
                {"matchExpressions": [{"key": "x", "operator": "Gt", "values": ["a"]}]},
                {"matchExpressions": []},
                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]},
                {"matchFields": [{"key": "metadata.uid", "operator": "In", "values": ["n1"]}]},
            ]}}},
            "containers": [{"resources": {"limits": {"nvidia.com/gpu": 1}}}],
        });
        let r = PodRequirements::from_spec(&spec).expect("parses");
        assert_eq!(
            r.node_selector,
            [
                ("a".to_string(), "1".to_string()),
                ("b".to_string(), "true".to_string())
            ]
        );
        assert_eq!(r.tolerations[0].operator, TolerationOperator::Exists);
        assert_eq!(r.tolerations[1].operator, TolerationOperator::Unsupported);
        let terms = r.required_terms.expect("terms");
        assert_eq!(terms.len(), 2, "only the valid, non-empty terms remain: {terms:?}");
        assert_eq!(r.ignored_resources, ["nvidia.com/gpu"]);
        let required = json!({"nodeSelectorTerms": []});
        let spec = json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": required}}});
        let none = PodRequirements::from_spec(&spec).expect("parses");
        assert_eq!(none.required_terms, Some(vec![]));
        assert_eq!(
            PodRequirements::from_spec(&json!({})).expect("parses").required_terms,
            None
        );
    }

    #[test]
    fn daemonset_pods_get_the_controller_tolerations() {
        let t = PodTemplate {
            owner: "DaemonSet ds".into(),
            kind: WorkloadKind::DaemonSet,
            replicas: 0,
            spec: json!({"hostNetwork": true}),
        };
        let r = PodRequirements::from_template(&t).expect("parses");
        let taint = NodeTaint::new("node.kubernetes.io/network-unavailable", None, TaintEffect::NoSchedule);
        assert!(r.tolerations.iter().any(|t| t.tolerates(&taint)));
        let d = PodTemplate {
            kind: WorkloadKind::Deployment,
            ..t
        };
        assert!(
            PodRequirements::from_template(&d)
                .expect("parses")
                .tolerations
                .is_empty()
        );
    }

    #[test]
    fn label_requirement_operators() {
        let r = |v: Value| LabelRequirement::from_json(&v, false);
        let req = r(json!({"key": "k", "operator": "In", "values": ["a", "b"]})).expect("In");
        assert!(req.matches(Some("a")) && !req.matches(Some("c")) && !req.matches(None));
        let req = r(json!({"key": "k", "operator": "NotIn", "values": ["a"]})).expect("NotIn");
        assert!(req.matches(Some("b")) && req.matches(None) && !req.matches(Some("a")));
        let req = r(json!({"key": "k", "operator": "Exists"})).expect("Exists");
        assert!(req.matches(Some("")) && !req.matches(None));
        let req = r(json!({"key": "k", "operator": "DoesNotExist"})).expect("DoesNotExist");
        assert!(req.matches(None) && !req.matches(Some("x")));
        let req = r(json!({"key": "k", "operator": "Gt", "values": ["4"]})).expect("Gt");
        assert!(req.matches(Some("5")) && !req.matches(Some("4")) && !req.matches(Some("x")) && !req.matches(None));
        let req = r(json!({"key": "k", "operator": "Lt", "values": ["4"]})).expect("Lt");
        assert!(req.matches(Some("3")) && !req.matches(Some("4")) && !req.matches(None));
        assert!(
            r(json!({"key": "k", "operator": "Gte", "values": ["4"]})).is_err(),
            "pods have no Gte"
        );
        let k = |v: Value| LabelRequirement::from_json(&v, true);
        let req = k(json!({"key": "k", "operator": "Gte", "values": ["4"]})).expect("Gte");
        assert!(req.matches(Some("4")) && !req.matches(Some("3")));
        let req = k(json!({"key": "k", "operator": "Lte", "values": ["4"]})).expect("Lte");
        assert!(req.matches(Some("4")) && !req.matches(Some("5")));
        assert!(r(json!({"key": "k", "operator": "In", "values": []})).is_err());
        assert!(r(json!({"key": "k", "operator": "Exists", "values": ["a"]})).is_err());
        assert!(r(json!({"key": "k", "operator": "Gt", "values": ["1", "2"]})).is_err());
        assert!(r(json!({"operator": "Exists"})).is_err());
    }
}
