//! Workload status, computed from the pods that exist, as the real controllers write it.
//!
//! Owns the `status` of Deployments, ReplicaSets, DaemonSets, StatefulSets and Jobs. Each
//! function takes counts the [`super::workloads`] controllers read off real Pod objects, so
//! a workload whose pods are Pending (unschedulable, or not started yet) never reads ready:
//! `kubectl rollout status` and spar's readiness wait keep waiting, and say why.
//!
//! Rules kept here (field names and condition wording from `k8s.io/kubernetes`
//! `pkg/controller/deployment/sync.go`, `util/deployment_util.go`, `daemon/daemon_controller.go`,
//! `statefulset/stateful_set_status_updater.go`, `job/job_controller.go`):
//! - `observedGeneration` is the generation the controller acted on (always the current one:
//!   the controllers here act within one pass).
//! - Deployment `Available` is True when `availableReplicas >= replicas - maxUnavailable`
//!   (maxUnavailable rounded down from a percentage); `Progressing` reads
//!   `NewReplicaSetAvailable` once every replica is updated and available and no old one is
//!   left, `ReplicaSetUpdated` before. `ProgressDeadlineExceeded` is not modelled.
//! - Pods are available as soon as they are Ready (`minReadySeconds` is not modelled).
//! - Zero counters are omitted, as the real types' `omitempty` does.
//! - A condition keeps its `lastTransitionTime` while its status does not change, and its
//!   `lastUpdateTime` while nothing of it changes, so a settled workload's status is stable.

use serde_json::{Value, json};
use std::hash::{DefaultHasher, Hash, Hasher};

/// Kinds whose status the simulator drives.
pub fn is_workload(group: &str, kind: &str) -> bool {
    (group == "apps" && matches!(kind, "Deployment" | "DaemonSet" | "StatefulSet" | "ReplicaSet"))
        || (group == "batch" && kind == "Job")
}

/// A stable 10-character hash of the pod template (the `pod-template-hash` /
/// `controller-revision-hash` the real controllers put on pods), in their alphabet.
pub fn template_hash(obj: &Value) -> String {
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

/// `new` conditions with the timestamps of `old`'s where nothing changed (see module doc).
pub fn keep_times(old: &Value, mut new: Vec<Value>) -> Vec<Value> {
    let old = old
        .get("conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for c in &mut new {
        let Some(o) = old.iter().find(|o| o["type"] == c["type"]) else {
            continue;
        };
        if o["status"] == c["status"] {
            c["lastTransitionTime"] = o["lastTransitionTime"].clone();
            if c.get("lastUpdateTime").is_some() && o["reason"] == c["reason"] && o["message"] == c["message"] {
                c["lastUpdateTime"] = o["lastUpdateTime"].clone();
            }
        }
    }
    new
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

fn generation(obj: &Value) -> i64 {
    obj.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(1)
}

/// An int-or-percent of `total`, rounded down (`maxUnavailable`) or up (`maxSurge`).
pub fn int_or_percent(v: Option<&Value>, total: i64, default: i64, round_up: bool) -> i64 {
    match v {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(default),
        Some(Value::String(s)) => match s.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()) {
            Some(p) if round_up => (p * total + 99) / 100,
            Some(p) => p * total / 100,
            None => s.parse().unwrap_or(default),
        },
        _ => default,
    }
}

/// What a ReplicaSet's pods are doing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PodCounts {
    /// Pods that exist and are not being deleted.
    pub replicas: i64,
    pub ready: i64,
    /// Of them, made from the current template.
    pub updated: i64,
    pub updated_ready: i64,
}

/// A ReplicaSet's status.
pub fn replicaset_status(rs: &Value, c: PodCounts) -> Value {
    let mut s = json!({
        "observedGeneration": generation(rs),
        "replicas": c.replicas,
        "fullyLabeledReplicas": c.replicas,
        "readyReplicas": c.ready,
        "availableReplicas": c.ready,
    });
    omit_zero(&mut s, &["fullyLabeledReplicas", "readyReplicas", "availableReplicas"]);
    s
}

/// A Deployment's status from its ReplicaSets: `new_rs` (name, its counts) and the old
/// ones' counts summed.
pub fn deployment_status(d: &Value, new_rs: (&str, PodCounts), old: PodCounts, now: &str) -> Value {
    let desired = d.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
    let (rs_name, new) = new_rs;
    let replicas = new.replicas + old.replicas;
    let ready = new.ready + old.ready;
    let available = ready;
    let max_unavailable = int_or_percent(
        d.pointer("/spec/strategy/rollingUpdate/maxUnavailable"),
        desired,
        desired / 4,
        false,
    );
    let available_cond = if available >= desired - max_unavailable {
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
    let complete = new.replicas == desired && new.ready == desired && old.replicas == 0;
    let progressing = if complete {
        condition(
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            &format!("ReplicaSet \"{rs_name}\" has successfully progressed."),
            now,
            true,
        )
    } else {
        condition(
            "Progressing",
            "True",
            "ReplicaSetUpdated",
            &format!("ReplicaSet \"{rs_name}\" is progressing."),
            now,
            true,
        )
    };
    let prev = d.get("status").cloned().unwrap_or(json!({}));
    let mut s = json!({
        "observedGeneration": generation(d),
        "replicas": replicas,
        "updatedReplicas": new.replicas,
        "readyReplicas": ready,
        "availableReplicas": available,
        "unavailableReplicas": (desired.max(replicas) - available).max(0),
        "conditions": keep_times(&prev, vec![available_cond, progressing]),
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

/// What a DaemonSet's controller counted over the nodes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DaemonCounts {
    /// Nodes that should run the pod.
    pub desired: i64,
    /// Of them, nodes that have a pod.
    pub current: i64,
    /// Nodes that run one but should not.
    pub misscheduled: i64,
    pub ready: i64,
    /// Nodes whose pod is of the current template.
    pub updated: i64,
    /// Nodes whose pod is ready (and so available).
    pub available: i64,
}

/// A DaemonSet's status.
pub fn daemonset_status(ds: &Value, c: DaemonCounts) -> Value {
    let mut s = json!({
        "observedGeneration": generation(ds),
        "currentNumberScheduled": c.current,
        "desiredNumberScheduled": c.desired,
        "numberMisscheduled": c.misscheduled,
        "numberReady": c.ready,
        "updatedNumberScheduled": c.updated,
        "numberAvailable": c.available,
        "numberUnavailable": (c.desired - c.available).max(0),
    });
    omit_zero(
        &mut s,
        &["numberAvailable", "numberUnavailable", "updatedNumberScheduled"],
    );
    s
}

/// A StatefulSet's status (`revision` is the current template's revision name).
pub fn statefulset_status(sts: &Value, c: PodCounts, revision: &str) -> Value {
    let prev = sts.get("status").cloned().unwrap_or(json!({}));
    let desired = sts.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
    let done = c.updated == desired && c.replicas == desired;
    let current_rev = if done {
        revision.to_string()
    } else {
        prev.get("currentRevision")
            .and_then(Value::as_str)
            .unwrap_or(revision)
            .to_string()
    };
    let mut s = json!({
        "observedGeneration": generation(sts),
        "replicas": c.replicas,
        "readyReplicas": c.ready,
        "currentReplicas": if done { c.replicas } else { c.replicas - c.updated },
        "updatedReplicas": c.updated,
        "availableReplicas": c.ready,
        "currentRevision": current_rev,
        "updateRevision": revision,
        "collisionCount": 0,
    });
    omit_zero(&mut s, &["readyReplicas", "currentReplicas", "updatedReplicas"]);
    s
}

/// What a Job's pods did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JobCounts {
    pub active: i64,
    pub ready: i64,
    pub succeeded: i64,
    pub failed: i64,
}

/// A Job's status; `complete` when its completions are reached.
pub fn job_status(job: &Value, c: JobCounts, complete: bool, now: &str) -> Value {
    let prev = job.get("status").cloned().unwrap_or(json!({}));
    let started = prev.get("startTime").cloned().unwrap_or(json!(now));
    let mut s = json!({"startTime": started, "active": c.active, "ready": c.ready, "terminating": 0,
                       "succeeded": c.succeeded, "failed": c.failed});
    if complete {
        s["completionTime"] = prev.get("completionTime").cloned().unwrap_or(json!(now));
        let msg = "Reached expected number of succeeded pods";
        s["conditions"] = json!(keep_times(
            &prev,
            vec![
                condition("SuccessCriteriaMet", "True", "CompletionsReached", msg, now, false),
                condition("Complete", "True", "CompletionsReached", msg, now, false),
            ]
        ));
    }
    omit_zero(&mut s, &["active", "succeeded", "failed"]);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_round_as_the_deployment_controller_does() {
        let v = json!("25%");
        assert_eq!(int_or_percent(Some(&v), 2, 0, false), 0);
        assert_eq!(int_or_percent(Some(&v), 4, 0, false), 1);
        assert_eq!(int_or_percent(Some(&v), 2, 0, true), 1);
        assert_eq!(int_or_percent(Some(&json!(3)), 2, 0, false), 3);
        assert_eq!(int_or_percent(None, 2, 7, false), 7);
    }

    #[test]
    fn a_deployment_with_pending_pods_is_not_available() {
        let d = json!({"metadata": {"generation": 2}, "spec": {"replicas": 2}});
        let pending = PodCounts {
            replicas: 2,
            ready: 0,
            updated: 2,
            updated_ready: 0,
        };
        let s = deployment_status(&d, ("web-abc", pending), PodCounts::default(), "t");
        assert_eq!(s["observedGeneration"], 2);
        assert!(s.get("availableReplicas").is_none(), "{s}");
        assert_eq!(s["conditions"][0]["status"], "False");
        assert_eq!(s["conditions"][1]["reason"], "ReplicaSetUpdated");
        let ready = PodCounts {
            replicas: 2,
            ready: 2,
            updated: 2,
            updated_ready: 2,
        };
        let s2 = deployment_status(
            &json!({"spec": {"replicas": 2}, "status": s}),
            ("web-abc", ready),
            PodCounts::default(),
            "t2",
        );
        assert_eq!(s2["availableReplicas"], 2);
        assert_eq!(s2["conditions"][0]["status"], "True");
        assert_eq!(s2["conditions"][0]["lastTransitionTime"], "t2");
        assert_eq!(s2["conditions"][1]["reason"], "NewReplicaSetAvailable");
        // Progressing stayed True: its transition time is kept.
        assert_eq!(s2["conditions"][1]["lastTransitionTime"], "t");
    }
}
