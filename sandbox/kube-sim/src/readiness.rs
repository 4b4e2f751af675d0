//! Synthetic workload status: what the controllers of a real cluster would report.
//!
//! Owns the `status` the simulator writes for Deployments, DaemonSets, StatefulSets,
//! ReplicaSets and Jobs (no pods ever run; a Job "runs" for the ready delay and then
//! completes, as a successful Job's status reads in `batch/v1`): first a "rolling out" status that observes the new
//! generation but is not ready, then, once the configured `ready_delay` has passed, a ready
//! status — so clients' readiness waits are really exercised.
//!
//! Rules kept here:
//! - Every spec change (new generation) starts a new rollout with a fresh deadline.
//! - The rolling-out status has `observedGeneration` = generation but zero updated replicas
//!   (a client that waits for `updatedReplicas == replicas`, `availableReplicas`,
//!   `numberReady` or condition `Available=True` keeps waiting); the ready status satisfies all of
//!   them, including `kubectl rollout status`.
//! - A DaemonSet is scheduled on the configured number of nodes.

use serde_json::{Value, json};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::Instant;

/// A rollout in progress.
#[derive(Debug, Clone, Copy)]
pub struct Pending {
    /// Has the rolling-out status been written?
    pub observed: bool,
    pub ready_at: Instant,
}

/// Kinds whose status the simulator drives.
pub fn is_workload(group: &str, kind: &str) -> bool {
    (group == "apps" && matches!(kind, "Deployment" | "DaemonSet" | "StatefulSet" | "ReplicaSet"))
        || (group == "batch" && kind == "Job")
}

fn template_hash(obj: &Value) -> String {
    let mut h = DefaultHasher::new();
    obj.pointer("/spec/template")
        .map(|t| t.to_string())
        .unwrap_or_default()
        .hash(&mut h);
    let n = h.finish();
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..10)
        .map(|i| ALPHABET[((n >> (i * 6)) % ALPHABET.len() as u64) as usize] as char)
        .collect()
}

fn condition(t: &str, status: &str, reason: &str, message: &str, now: &str, with_update: bool) -> Value {
    let mut c = json!({"type": t, "status": status, "lastTransitionTime": now, "reason": reason, "message": message});
    if with_update {
        c["lastUpdateTime"] = json!(now);
    }
    c
}

/// Drop zero-valued counters the real types omit.
fn omit_zero(status: &mut Value, fields: &[&str]) {
    if let Some(m) = status.as_object_mut() {
        for f in fields {
            if m.get(*f) == Some(&json!(0)) {
                m.remove(*f);
            }
        }
    }
}

/// The status for `obj` (kind `kind`), ready or still rolling out.
pub fn status(kind: &str, obj: &Value, ready: bool, nodes: u32, now: &str) -> Value {
    let generation_n = obj.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(1);
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let replicas = obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
    let hash = template_hash(obj);
    let prev = obj.get("status").cloned().unwrap_or(json!({}));
    let prev_ready = |f: &str| prev.get(f).and_then(Value::as_i64).unwrap_or(0);
    let ready = ready || (kind != "DaemonSet" && replicas == 0);
    match kind {
        "Deployment" => {
            let rs = format!("{name}-{hash}");
            let (available, updated) = if ready {
                (replicas, replicas)
            } else {
                (prev_ready("availableReplicas").min(replicas), 0)
            };
            let avail_cond = if available >= replicas {
                condition(
                    "Available",
                    "True",
                    "MinimumReplicasAvailable",
                    "Deployment has minimum availability.",
                    now,
                    true,
                )
            } else {
                condition(
                    "Available",
                    "False",
                    "MinimumReplicasUnavailable",
                    "Deployment does not have minimum availability.",
                    now,
                    true,
                )
            };
            let prog_cond = if ready {
                condition(
                    "Progressing",
                    "True",
                    "NewReplicaSetAvailable",
                    &format!("ReplicaSet \"{rs}\" has successfully progressed."),
                    now,
                    true,
                )
            } else {
                condition(
                    "Progressing",
                    "True",
                    "ReplicaSetUpdated",
                    &format!("ReplicaSet \"{rs}\" is progressing."),
                    now,
                    true,
                )
            };
            let mut s = json!({
                "observedGeneration": generation_n,
                "replicas": replicas,
                "updatedReplicas": updated,
                "readyReplicas": available,
                "availableReplicas": available,
                "unavailableReplicas": replicas - available,
                "conditions": [avail_cond, prog_cond],
            });
            omit_zero(
                &mut s,
                &[
                    "replicas",
                    "updatedReplicas",
                    "readyReplicas",
                    "availableReplicas",
                    "unavailableReplicas",
                ],
            );
            s
        }
        "DaemonSet" => {
            let n = nodes as i64;
            let (ready_n, updated) = if ready {
                (n, n)
            } else {
                (prev_ready("numberReady").min(n), 0)
            };
            let mut s = json!({
                "observedGeneration": generation_n,
                "currentNumberScheduled": n,
                "desiredNumberScheduled": n,
                "numberMisscheduled": 0,
                "numberReady": ready_n,
                "updatedNumberScheduled": updated,
                "numberAvailable": ready_n,
                "numberUnavailable": n - ready_n,
            });
            omit_zero(
                &mut s,
                &["numberAvailable", "numberUnavailable", "updatedNumberScheduled"],
            );
            s
        }
        "StatefulSet" => {
            let rev = format!("{name}-{hash}");
            let (ready_n, updated) = if ready {
                (replicas, replicas)
            } else {
                (prev_ready("readyReplicas").min(replicas), 0)
            };
            let current_rev = if ready {
                rev.clone()
            } else {
                prev.get("currentRevision")
                    .and_then(Value::as_str)
                    .unwrap_or(&rev)
                    .to_string()
            };
            let mut s = json!({
                "observedGeneration": generation_n,
                "replicas": replicas,
                "readyReplicas": ready_n,
                "currentReplicas": if ready { replicas } else { ready_n },
                "updatedReplicas": updated,
                "availableReplicas": ready_n,
                "currentRevision": current_rev,
                "updateRevision": rev,
                "collisionCount": 0,
            });
            omit_zero(&mut s, &["readyReplicas", "currentReplicas", "updatedReplicas"]);
            s
        }
        "Job" => {
            let completions = obj.pointer("/spec/completions").and_then(Value::as_i64).unwrap_or(1);
            let started = prev.get("startTime").cloned().unwrap_or(json!(now));
            if ready {
                json!({
                    "startTime": started,
                    "completionTime": now,
                    "succeeded": completions,
                    "ready": 0,
                    "terminating": 0,
                    "conditions": [
                        condition("SuccessCriteriaMet", "True", "CompletionsReached", "Reached expected number of succeeded pods", now, false),
                        condition("Complete", "True", "CompletionsReached", "Reached expected number of succeeded pods", now, false),
                    ],
                })
            } else {
                json!({"startTime": started, "active": 1, "ready": 0, "terminating": 0})
            }
        }
        _ => {
            // ReplicaSet
            let ready_n = if ready { replicas } else { 0 };
            let mut s = json!({
                "observedGeneration": generation_n,
                "replicas": replicas,
                "fullyLabeledReplicas": replicas,
                "readyReplicas": ready_n,
                "availableReplicas": ready_n,
            });
            omit_zero(&mut s, &["fullyLabeledReplicas", "readyReplicas", "availableReplicas"]);
            s
        }
    }
}
