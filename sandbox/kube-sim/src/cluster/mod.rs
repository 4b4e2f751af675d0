//! What runs in the simulated cluster: Nodes that join, controllers that make Pods, a
//! scheduler that binds them, kubelets that start them, and a Karpenter that adds nodes, as
//! kwok does around a real API server (no container ever runs).
//!
//! Submodules, each one job, each driven by [`crate::controller::reconcile`] in this order:
//! - [`nodes`]: Node objects (static ones from `--nodes`, EKS managed node groups read from
//!   the AWS emulator), with capacity and allocatable from the shared instance-type table.
//! - [`addons`]: the workloads EKS installs for an ACTIVE add-on (CoreDNS, the node agents).
//! - [`workloads`]: Deployment -> ReplicaSet -> Pods, DaemonSet -> one Pod per eligible
//!   node, StatefulSet, Job; and each workload's status, computed from its pods.
//! - [`scheduler`]: binds Pending pods with kube-scheduler's filters (the `spar-scheduling`
//!   crate, which spar's offline checks use too), or marks them Unschedulable with
//!   kube-scheduler's message.
//! - [`kubelet`]: a bound pod runs (Running and Ready, or Succeeded for a Job's) once the
//!   ready delay has passed; pods bound to a node that is gone are deleted (pod GC).
//! - [`karpenter`]: NodeClaims and Nodes for pods no node fits but a NodePool admits;
//!   empty nodes removed after `consolidateAfter`.
//! - [`arc`]: the runner pods an AutoscalingRunnerSet keeps with no job queued
//!   (`minRunners`), as ARC's scale-set controller makes them.
//!
//! Rules kept by all of them:
//! - Every object they create goes through the API's own create path (defaulting, schema
//!   validation, managed fields under the component's manager name), so a template a real
//!   API server would refuse is refused here too (and reported on stderr).
//! - They change only what differs from what they want, so a pass over a settled cluster
//!   writes nothing and `reconcile` terminates.

pub mod addons;
pub mod arc;
pub mod karpenter;
pub mod kubelet;
pub mod nodes;
pub mod rollout;
pub mod scheduler;
pub mod workloads;

use crate::error::ApiError;
use crate::ops::{Params, State, meta_str};
use crate::store::ObjKey;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Instant;

/// A deadline a component wants the reconcile loop to wake up for.
pub type Deadline = Option<Instant>;

/// The earlier of two deadlines.
pub fn earliest(a: Deadline, b: Deadline) -> Deadline {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

/// Is the object being deleted?
pub fn deleting(o: &Value) -> bool {
    o.pointer("/metadata/deletionTimestamp").is_some_and(|v| !v.is_null())
}

/// Creates an object through the API's create path as `manager` (defaulting, validation,
/// managed fields). Returns the stored object.
pub fn create_as(
    st: &mut State,
    manager: &str,
    group: &str,
    plural: &str,
    ns: &str,
    body: Value,
) -> Result<Value, ApiError> {
    let Some(rt) = st.kinds.preferred(group, plural) else {
        return Err(ApiError::internal(format!("{plural}.{group} is not served")));
    };
    let p = Params {
        field_manager: Some(manager.to_string()),
        ..Params::default()
    };
    st.create(&rt, ns, body, &p).map(|r| r.body)
}

/// Deletes a stored object in the background (its dependents follow by garbage collection).
pub fn delete_key(st: &mut State, key: &ObjKey) {
    let (Some(obj), Some(rt)) = (
        st.store.get(key).cloned(),
        st.kinds.preferred(&key.group, &key.resource),
    ) else {
        return;
    };
    if !deleting(&obj) {
        st.delete_object(&rt, key.clone(), obj, "Background", false);
    }
}

/// Writes `status` of a stored object as `manager`, unless it already reads so.
pub fn write_status(st: &mut State, key: &ObjKey, status: Value) {
    let Some(old) = st.store.get(key) else { return };
    if old.get("status") == Some(&status) {
        return;
    }
    if let Some(rt) = st.kinds.preferred(&key.group, &key.resource) {
        st.controller_status(&rt, key, status);
    }
}

/// An owner reference to `owner` as its controller.
pub fn controller_ref(owner: &Value) -> Value {
    json!({
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": meta_str(owner, "name"),
        "uid": meta_str(owner, "uid"),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// The uid of the object's controller (the owner reference with `controller: true`).
pub fn controller_uid(o: &Value) -> Option<&str> {
    o.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)?
        .iter()
        .find(|r| r["controller"] == json!(true))
        .and_then(|r| r["uid"].as_str())
}

/// Every stored object of one resource, with its key (a snapshot: the store may change
/// while the caller works through it).
pub fn snapshot(st: &State, group: &str, plural: &str) -> Vec<(ObjKey, Value)> {
    st.store
        .list(group, plural, None)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Pods indexed the two ways the components look them up.
#[derive(Debug, Default)]
pub struct PodIndex {
    /// Controller uid -> its pods (deleting ones included).
    pub by_owner: BTreeMap<String, Vec<(ObjKey, Value)>>,
    /// Node name -> pods bound to it that still hold resources (not Succeeded or Failed).
    pub by_node: BTreeMap<String, Vec<(ObjKey, Value)>>,
    /// Pods bound to no node yet, in creation order.
    pub unbound: Vec<(ObjKey, Value)>,
}

impl PodIndex {
    pub fn build(st: &State) -> Self {
        let mut ix = PodIndex::default();
        let mut unbound = Vec::new();
        for (k, p) in st.store.list("", "pods", None) {
            if let Some(uid) = controller_uid(p) {
                ix.by_owner
                    .entry(uid.to_string())
                    .or_default()
                    .push((k.clone(), p.clone()));
            }
            match p.pointer("/spec/nodeName").and_then(Value::as_str) {
                Some(n) if !n.is_empty() => {
                    if !terminal(p) {
                        ix.by_node
                            .entry(n.to_string())
                            .or_default()
                            .push((k.clone(), p.clone()));
                    }
                }
                _ => {
                    if !deleting(p) {
                        unbound.push((k.clone(), p.clone()));
                    }
                }
            }
        }
        unbound.sort_by(|a, b| {
            meta_str(&a.1, "creationTimestamp")
                .cmp(meta_str(&b.1, "creationTimestamp"))
                .then_with(|| a.0.cmp(&b.0))
        });
        ix.unbound = unbound;
        ix
    }

    /// The pods `owner_uid` controls.
    pub fn owned(&self, owner_uid: &str) -> &[(ObjKey, Value)] {
        self.by_owner.get(owner_uid).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// Has the pod finished (phase Succeeded or Failed)? It no longer holds node resources.
pub fn terminal(pod: &Value) -> bool {
    matches!(
        pod.pointer("/status/phase").and_then(Value::as_str),
        Some("Succeeded" | "Failed")
    )
}

/// Does a Running pod labelled `app.kubernetes.io/name=<name>` exist (a controller that is
/// up, for the components that stand in for one)?
pub fn component_running(st: &State, name: &str) -> bool {
    st.store.list("", "pods", None).any(|(_, p)| {
        p.pointer("/metadata/labels/app.kubernetes.io~1name")
            .and_then(Value::as_str)
            == Some(name)
            && p.pointer("/status/phase").and_then(Value::as_str) == Some("Running")
            && !deleting(p)
    })
}

/// Is the pod Ready (condition `Ready=True`)?
pub fn pod_ready(pod: &Value) -> bool {
    condition_true(pod, "Ready")
}

/// Does the object have condition `type` with status `True`?
pub fn condition_true(o: &Value, type_: &str) -> bool {
    o.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == type_ && c["status"] == "True"))
}

/// Reports a component's failure to act (an object the API refused) on stderr, once per
/// distinct message, as a controller's log line would.
pub fn log_once(st: &mut State, message: String) {
    if st.logged.insert(message.clone()) {
        eprintln!("spar-kube-sim: {message}");
    }
}
