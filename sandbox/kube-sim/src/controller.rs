//! The simulated control plane: the background work a real cluster's controllers do.
//!
//! Owns [`reconcile`] (one pass over the state) and [`run`] (the task that runs a pass after
//! every change and at the next readiness deadline):
//! - CRD establishment: registers the CRD's types, adds the `customresourcecleanup` finalizer,
//!   writes `status.acceptedNames`, `storedVersions` and the `NamesAccepted`/`Established`
//!   conditions; re-registers when the CRD's generation changes.
//! - CRD deletion: condition `Terminating`, deletes every custom resource of the CRD (their own
//!   finalizers are honoured), then drops the finalizer and unregisters the types.
//! - Namespace deletion: deletes everything in the namespace, then drops the `kubernetes`
//!   finalizer so the namespace goes away.
//! - Garbage collection by `ownerReferences` (Background: dependents whose owners are all gone
//!   are deleted; Foreground: owners with `foregroundDeletion` wait for their dependents).
//! - A `default` ServiceAccount in every active namespace.
//! - What runs (the `cluster` module): workload controllers, ARC's runners, the scheduler,
//!   Karpenter, the kubelets, in that order in every pass.
//!
//! Rules kept here: passes are repeated until nothing changes, so one client request sees a
//! consistent outcome shortly after it returns, never inside it; a change that concerns no
//! controller (a ConfigMap or Secret written, with no owners) runs no pass, so writes of
//! such objects cost the same with 2,000 pods as with none.

use crate::cluster;
use crate::crd;
use crate::managed::now;
use crate::ops::{State, meta_str, owned_by};
use crate::store::ObjKey;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::{Notify, watch};

const CRD_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

fn deleting(o: &Value) -> bool {
    o.pointer("/metadata/deletionTimestamp").is_some_and(|v| !v.is_null())
}

fn crd_pass(st: &mut State) {
    let Some(crd_rt) = st
        .kinds
        .by_resource("apiextensions.k8s.io", "v1", "customresourcedefinitions")
    else {
        return;
    };
    let crds: Vec<(ObjKey, Value)> = st
        .store
        .list("apiextensions.k8s.io", "customresourcedefinitions", None)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let alive: HashSet<String> = crds.iter().map(|(k, _)| k.name.clone()).collect();
    let stale: Vec<String> = st
        .crd_registered
        .keys()
        .filter(|n| !alive.contains(*n))
        .cloned()
        .collect();
    for name in stale {
        st.kinds.remove_custom(&name);
        st.crd_registered.remove(&name);
    }
    for (key, crd_obj) in crds {
        let name = key.name.clone();
        let group = crd_obj
            .pointer("/spec/group")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let plural = crd_obj
            .pointer("/spec/names/plural")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if deleting(&crd_obj) {
            let terminating = crd_obj
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Terminating"));
            if !terminating {
                let mut status = crd_obj.get("status").cloned().unwrap_or(json!({}));
                let mut conds = status
                    .get("conditions")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                conds.push(json!({"type": "Terminating", "status": "True", "lastTransitionTime": now(), "reason": "InstanceDeletionInProgress", "message": "CustomResource deletion is in progress"}));
                status["conditions"] = json!(conds);
                st.controller_status(&crd_rt, &key, status);
            }
            let instances: Vec<ObjKey> = st.store.list(&group, &plural, None).map(|(k, _)| k.clone()).collect();
            if let Some(rt) = st.kinds.preferred(&group, &plural) {
                for k in &instances {
                    if let Some(o) = st.store.get(k).cloned()
                        && !deleting(&o)
                    {
                        st.delete_object(&rt, k.clone(), o, "Background", false);
                    }
                }
            } else {
                for k in &instances {
                    st.store.remove(k);
                }
            }
            if st.store.list(&group, &plural, None).next().is_none() {
                if let Some(mut o) = st.store.get(&key).cloned() {
                    if let Some(f) = o.pointer_mut("/metadata/finalizers").and_then(Value::as_array_mut) {
                        f.retain(|x| x != CRD_FINALIZER);
                    }
                    st.system_update(&crd_rt, &key, o);
                }
                if st.store.get(&key).is_none() {
                    st.kinds.remove_custom(&name);
                    st.crd_registered.remove(&name);
                }
            }
            continue;
        }
        let generation = crd_obj
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let has_finalizer = crd_obj
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| f.iter().any(|x| x == CRD_FINALIZER));
        if !has_finalizer {
            let mut o = crd_obj.clone();
            let mut f = o
                .pointer("/metadata/finalizers")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            f.push(json!(CRD_FINALIZER));
            o["metadata"]["finalizers"] = json!(f);
            st.system_update(&crd_rt, &key, o);
        }
        if st.crd_registered.get(&name) != Some(&generation) || !crd::is_established(&crd_obj) {
            // names already served by another CRD are not accepted
            let taken = st
                .kinds
                .custom_owner(&group, &plural)
                .is_some_and(|owner| owner != name);
            if taken {
                continue;
            }
            match crd::types_for(&crd_obj) {
                Ok(types) => {
                    st.register_crd_types(&name, types);
                    st.crd_registered.insert(name.clone(), generation);
                    if !crd::is_established(&crd_obj) {
                        let status = crd::established_status(&crd_obj, &now());
                        st.controller_status(&crd_rt, &key, status);
                    }
                }
                Err(e) => {
                    tracing_warn(&format!("CRD {name} cannot be served: {e}"));
                }
            }
        }
    }
}

fn tracing_warn(msg: &str) {
    eprintln!("spar-kube-sim: {msg}");
}

fn namespace_pass(st: &mut State) {
    let Some(ns_rt) = st.kinds.by_resource("", "v1", "namespaces") else {
        return;
    };
    let namespaces: Vec<(ObjKey, Value)> = st
        .store
        .list("", "namespaces", None)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (key, ns) in namespaces {
        let name = key.name.clone();
        if !deleting(&ns) {
            let sa_key = ObjKey::new("", "serviceaccounts", &name, "default");
            if st.store.get(&sa_key).is_none() {
                let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": name, "uid": uuid::Uuid::new_v4().to_string(), "creationTimestamp": now()}});
                st.store.put(sa_key, sa);
            }
            continue;
        }
        for k in st.store.keys_in_namespace(&name) {
            let Some(o) = st.store.get(&k).cloned() else { continue };
            if deleting(&o) {
                continue;
            }
            match st.kinds.preferred(&k.group, &k.resource) {
                Some(rt) => {
                    st.delete_object(&rt, k, o, "Background", false);
                }
                None => {
                    st.store.remove(&k);
                }
            }
        }
        if st.store.keys_in_namespace(&name).is_empty() {
            let mut o = ns.clone();
            if let Some(f) = o.pointer_mut("/spec/finalizers").and_then(Value::as_array_mut) {
                f.retain(|x| x != "kubernetes");
            }
            st.system_update(&ns_rt, &key, o);
        }
    }
}

fn gc_pass(st: &mut State) {
    let keys = st.store.keys();
    let uids: HashSet<String> = keys
        .iter()
        .filter_map(|k| st.store.get(k))
        .map(|o| meta_str(o, "uid").to_string())
        .collect();
    for k in &keys {
        let Some(o) = st.store.get(k).cloned() else { continue };
        // foreground owners wait for their dependents
        let fins: Vec<String> = o
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|x| x.as_str().map(String::from)).collect())
            .unwrap_or_default();
        if deleting(&o) && fins.iter().any(|f| f == "foregroundDeletion") {
            let uid = meta_str(&o, "uid").to_string();
            let deps: Vec<ObjKey> = keys
                .iter()
                .filter(|d| st.store.get(d).is_some_and(|x| owned_by(x, &uid)))
                .cloned()
                .collect();
            for d in &deps {
                if let (Some(dobj), Some(rt)) = (st.store.get(d).cloned(), st.kinds.preferred(&d.group, &d.resource))
                    && !deleting(&dobj)
                {
                    st.delete_object(&rt, d.clone(), dobj, "Background", false);
                }
            }
            if deps.iter().all(|d| st.store.get(d).is_none())
                && let Some(rt) = st.kinds.preferred(&k.group, &k.resource)
            {
                let mut n = o.clone();
                n["metadata"]["finalizers"] =
                    json!(fins.iter().filter(|f| *f != "foregroundDeletion").collect::<Vec<_>>());
                if n["metadata"]["finalizers"].as_array().is_some_and(Vec::is_empty) {
                    n["metadata"].as_object_mut().expect("metadata").remove("finalizers");
                }
                st.system_update(&rt, k, n);
            }
            continue;
        }
        let refs: Vec<String> = o
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|r| r.get("uid").and_then(Value::as_str).map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        if !refs.is_empty()
            && refs.iter().all(|u| !uids.contains(u))
            && !deleting(&o)
            && let Some(rt) = st.kinds.preferred(&k.group, &k.resource)
        {
            st.delete_object(&rt, k.clone(), o, "Background", false);
        }
    }
}

/// One reconcile pass (repeated until nothing changes). Returns the next deadline.
pub fn reconcile(st: &mut State) -> Option<Instant> {
    let mut next = None;
    for _ in 0..16 {
        let before = st.store.rv();
        crd_pass(st);
        namespace_pass(st);
        gc_pass(st);
        cluster::workloads::reconcile(st);
        cluster::arc::reconcile(st);
        cluster::scheduler::reconcile(st);
        let karpenter = cluster::karpenter::reconcile(st);
        let kubelet = cluster::kubelet::reconcile(st);
        next = cluster::earliest(karpenter, kubelet);
        if st.store.rv() == before {
            break;
        }
    }
    next
}

/// Kinds no pass of [`reconcile`] reads: a create or update of one (without owners, not
/// being deleted) changes nothing any controller would do, so it does not cost a pass over
/// every workload and pod.
const INERT: [(&str, &str); 2] = [("", "configmaps"), ("", "secrets")];

/// Whether every change since `seen` is a create or update of an [`INERT`] kind with no
/// owner references and no deletion under way (a deletion, or an object with owners, can
/// always concern the garbage collector).
fn only_inert_changes(st: &State, seen: u64) -> bool {
    let Some(events) = st.store.events_since(seen) else {
        return false;
    };
    events.iter().all(|e| {
        e.kind != crate::store::EventType::Deleted
            && INERT.contains(&(e.key.group.as_str(), e.key.resource.as_str()))
            && e.object.pointer("/metadata/ownerReferences").is_none()
            && e.object.pointer("/metadata/deletionTimestamp").is_none()
    })
}

/// Run the controllers until `shutdown` flips to true.
pub async fn run(state: Arc<Mutex<State>>, notify: Arc<Notify>, mut shutdown: watch::Receiver<bool>) {
    let mut seen = 0;
    let mut next: Option<Instant> = None;
    loop {
        {
            let mut st = state.lock().expect("state lock");
            let due = next.is_some_and(|t| t <= Instant::now());
            if due || seen == 0 || !only_inert_changes(&st, seen) {
                next = reconcile(&mut st);
            }
            seen = st.store.rv();
        }
        let sleep = async {
            match next {
                Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = notify.notified() => {}
            _ = sleep => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
    }
}
