//! The kubelets: what happens to a pod once it is bound to a node.
//!
//! Rules kept here:
//! - A bound pod is at first `Pending` (containers `ContainerCreating`), with its node's
//!   `hostIP` and a pod IP (the node's for `hostNetwork` pods); once the ready delay has
//!   passed since it was bound it is `Running`, every container running and ready, with
//!   conditions `PodReadyToStartContainers`, `Initialized`, `Ready`, `ContainersReady` and
//!   `PodScheduled` all True. Readiness probes are not run: a started container is ready.
//! - A pod owned by a Job instead `Succeeded` at that moment, its containers terminated
//!   with reason `Completed`, exit code 0: a Job's work takes the ready delay. Other pods
//!   run until deleted, whatever their `restartPolicy` (a runner's work has no known end).
//! - A pod bound to a node that no longer exists is deleted (the pod garbage collector's
//!   `gcOrphaned`; the real one waits for a 40 s quarantine first), so its controller makes a
//!   new one that the scheduler places again.
//! - The delay is counted from when this module first saw the pod bound (in memory, like
//!   the rest of the simulator).

use super::nodes::address_for;
use super::{Deadline, deleting, earliest, terminal};
use crate::managed::now;
use crate::ops::{State, meta_str};
use crate::store::ObjKey;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

fn node_ip(node: &Value) -> Option<String> {
    node.pointer("/status/addresses")?
        .as_array()?
        .iter()
        .find(|a| a["type"] == "InternalIP")
        .and_then(|a| a["address"].as_str())
        .map(String::from)
}

/// Does the pod's work end? Only a Job's pods are known to: any other pod (a runner's,
/// restartPolicy `Never` or not) runs until something stops it.
fn runs_to_completion(pod: &Value) -> bool {
    pod.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .and_then(|refs| refs.iter().find(|r| r["controller"] == json!(true)))
        .and_then(|r| r["kind"].as_str())
        == Some("Job")
}

fn cond(t: &str, status: &str, reason: Option<&str>, at: &str) -> Value {
    let mut c = json!({"type": t, "status": status, "lastProbeTime": null, "lastTransitionTime": at});
    if let Some(r) = reason {
        c["reason"] = json!(r);
    }
    c
}

fn container_statuses(pod: &Value, state: Value, ready: bool, started: bool) -> Value {
    let cs: Vec<Value> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    let image = c["image"].as_str().unwrap_or_default();
                    let mut s = json!({"name": c["name"], "image": image, "imageID": "", "ready": ready,
                                       "restartCount": 0, "started": started, "state": state});
                    if started {
                        s["imageID"] = json!(format!("{image}@sha256:{}", "0".repeat(64)));
                        s["containerID"] = json!(format!("containerd://{}", uuid::Uuid::new_v4().simple()));
                    }
                    s
                })
                .collect()
        })
        .unwrap_or_default();
    json!(cs)
}

/// Moves bound pods along; returns the next moment one is due.
pub fn reconcile(st: &mut State) -> Deadline {
    let nodes: BTreeMap<String, Value> = st
        .store
        .list("", "nodes", None)
        .map(|(k, n)| (k.name.clone(), n.clone()))
        .collect();
    let pods: Vec<(ObjKey, Value)> = st
        .store
        .list("", "pods", None)
        .filter(|(_, p)| {
            p.pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .is_some_and(|n| !n.is_empty())
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let alive: BTreeSet<&ObjKey> = pods.iter().map(|(k, _)| k).collect();
    st.pod_started.retain(|k, _| alive.contains(k));
    let mut next: Deadline = None;
    let at = Instant::now();
    for (key, pod) in &pods {
        if deleting(pod) || terminal(pod) {
            continue;
        }
        let node_name = pod["spec"]["nodeName"].as_str().unwrap_or_default();
        let Some(node) = nodes.get(node_name) else {
            super::delete_key(st, key);
            continue;
        };
        let host_ip = node_ip(node).unwrap_or_default();
        let pod_ip = if pod.pointer("/spec/hostNetwork") == Some(&json!(true)) {
            host_ip.clone()
        } else {
            address_for(meta_str(pod, "uid")).0.replacen("10.0.", "10.1.", 1)
        };
        let due = *st
            .pod_started
            .entry(key.clone())
            .or_insert(at + st.settings.ready_delay);
        let phase = pod
            .pointer("/status/phase")
            .and_then(Value::as_str)
            .unwrap_or("Pending");
        let t = now();
        let scheduled = cond("PodScheduled", "True", None, &t);
        let mut status = pod.get("status").cloned().unwrap_or(json!({}));
        let keep = |status: &Value, c: Value| -> Value {
            // a condition already in this state keeps its transition time
            match status["conditions"]
                .as_array()
                .and_then(|cs| cs.iter().find(|o| o["type"] == c["type"] && o["status"] == c["status"]))
            {
                Some(o) => {
                    let mut c = c;
                    c["lastTransitionTime"] = o["lastTransitionTime"].clone();
                    c
                }
                None => c,
            }
        };
        if at < due {
            if phase == "Pending" && status.get("hostIP").is_none() {
                status["hostIP"] = json!(host_ip);
                status["hostIPs"] = json!([{"ip": host_ip}]);
                status["startTime"] = json!(t);
                status["qosClass"] = json!(qos_class(pod));
                let conds = vec![
                    cond("PodReadyToStartContainers", "False", None, &t),
                    cond("Initialized", "True", None, &t),
                    cond("Ready", "False", Some("ContainersNotReady"), &t),
                    cond("ContainersReady", "False", Some("ContainersNotReady"), &t),
                    keep(&status, scheduled),
                ];
                status["conditions"] = json!(conds);
                status["containerStatuses"] =
                    container_statuses(pod, json!({"waiting": {"reason": "ContainerCreating"}}), false, false);
                super::write_status(st, key, status);
            }
            next = earliest(next, Some(due));
            continue;
        }
        if phase == "Running" {
            continue;
        }
        let started_at = status.get("startTime").cloned().unwrap_or(json!(t));
        status["hostIP"] = json!(host_ip);
        status["hostIPs"] = json!([{"ip": host_ip}]);
        status["podIP"] = json!(pod_ip);
        status["podIPs"] = json!([{"ip": pod_ip}]);
        status["startTime"] = started_at.clone();
        status["qosClass"] = json!(qos_class(pod));
        if runs_to_completion(pod) {
            status["phase"] = json!("Succeeded");
            status["conditions"] = json!([
                cond("PodReadyToStartContainers", "False", None, &t),
                cond("Initialized", "True", Some("PodCompleted"), &t),
                cond("Ready", "False", Some("PodCompleted"), &t),
                cond("ContainersReady", "False", Some("PodCompleted"), &t),
                keep(&status, scheduled),
            ]);
            status["containerStatuses"] = container_statuses(
                pod,
                json!({"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": started_at, "finishedAt": t}}),
                false,
                false,
            );
        } else {
            status["phase"] = json!("Running");
            status["conditions"] = json!([
                cond("PodReadyToStartContainers", "True", None, &t),
                cond("Initialized", "True", None, &t),
                cond("Ready", "True", None, &t),
                cond("ContainersReady", "True", None, &t),
                keep(&status, scheduled),
            ]);
            status["containerStatuses"] = container_statuses(pod, json!({"running": {"startedAt": t}}), true, true);
        }
        super::write_status(st, key, status);
    }
    next
}

/// The pod's QoS class (`pkg/apis/core/v1/helper/qos`): Guaranteed when every container
/// limits and requests cpu and memory equally, BestEffort when none asks for anything,
/// Burstable otherwise.
fn qos_class(pod: &Value) -> &'static str {
    let cs: Vec<&Value> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|v| v.iter().collect())
        .unwrap_or_default();
    let empty = |c: &Value, s: &str| c["resources"][s].as_object().is_none_or(|m| m.is_empty());
    if cs.iter().all(|c| empty(c, "requests") && empty(c, "limits")) {
        return "BestEffort";
    }
    let guaranteed = cs.iter().all(|c| {
        ["cpu", "memory"].iter().all(|r| {
            let l = &c["resources"]["limits"][r];
            let q = &c["resources"]["requests"][r];
            !l.is_null() && (q.is_null() || q == l)
        })
    });
    if guaranteed { "Guaranteed" } else { "Burstable" }
}
