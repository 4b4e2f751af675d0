//! The scheduler: binds Pending pods to nodes, or says why it cannot.
//!
//! Rules kept here:
//! - A pod is considered when it has no `spec.nodeName`, is not being deleted, and asks for
//!   `default-scheduler` (or names no scheduler). Pods are taken oldest first.
//! - Feasibility is `spar_scheduling::filter` (TaintToleration, NodeAffinity,
//!   NodeResourcesFit, in kube-scheduler's order and wording) against each live Node's
//!   labels, taints and `status.allocatable`, with what the pods already bound there
//!   request (terminated pods hold nothing). It is the code spar's offline checks run, so
//!   the sandbox and `spar check` cannot disagree about a pod.
//! - Among feasible nodes the one with the most CPU and memory left after the pod (the
//!   default profile's `NodeResourcesFit` `LeastAllocated` score, equal weights) wins;
//!   ties go to the node name, so placement is deterministic.
//! - Binding sets `spec.nodeName` and `PodScheduled=True`. A pod no node fits gets
//!   `PodScheduled=False`, reason `Unschedulable`, and kube-scheduler's aggregate message
//!   (`0/3 nodes are available: 3 node(s) had untolerated taint {CriticalAddonsOnly: true}.`),
//!   rewritten only when the message changes; it is retried on every pass, so a node that
//!   joins later takes it.
//! - Not modelled: scoring beyond LeastAllocated, pod (anti-)affinity, topology spread,
//!   preemption, volumes, `spec.unschedulable` nodes are skipped without a reason of their own.

use super::{PodIndex, deleting, log_once};
use crate::managed::now;
use crate::ops::{State, meta_str};
use crate::store::ObjKey;
use serde_json::{Value, json};
use spar_scheduling::{CandidateNode, PodRequirements, Resources, Unfit, filter, requests, scheduler_message};
use std::collections::BTreeMap;

/// The reason and message of an unschedulable pod.
pub const UNSCHEDULABLE: &str = "Unschedulable";

/// What each live node has and what its pods already use: as requested (what the
/// filters count) and with kube-scheduler's non-zero defaults (what scoring counts).
struct NodeRoom {
    node: CandidateNode,
    used: Resources,
    scored: Resources,
}

/// kube-scheduler scores a container that requests no CPU or memory as asking for 100m and
/// 200 MiB (`pkg/scheduler/util` `GetNonzeroRequests`, `DefaultMilliCPURequest`,
/// `DefaultMemoryRequest`), so pods without requests still spread.
fn nonzero(r: Resources) -> Resources {
    Resources {
        milli_cpu: if r.milli_cpu == 0 { 100 } else { r.milli_cpu },
        memory_bytes: if r.memory_bytes == 0 { 200 << 20 } else { r.memory_bytes },
        pods: r.pods,
    }
}

fn schedulable(node: &Value) -> bool {
    node.pointer("/spec/unschedulable") != Some(&json!(true))
}

/// Binds every pending pod it can; returns how many it bound.
pub fn reconcile(st: &mut State) -> usize {
    let ix = PodIndex::build(st);
    if ix.unbound.is_empty() {
        return 0;
    }
    let mut rooms: Vec<NodeRoom> = Vec::new();
    let nodes: Vec<Value> = st.store.list("", "nodes", None).map(|(_, n)| n.clone()).collect();
    for n in nodes.iter().filter(|n| !deleting(n) && schedulable(n)) {
        match CandidateNode::from_node(n) {
            Ok(node) => {
                let mut used = Resources::default();
                let mut scored = Resources::default();
                for (_, p) in ix.by_node.get(&node.name).map(Vec::as_slice).unwrap_or(&[]) {
                    let r = p.get("spec").map(requests).and_then(Result::ok).unwrap_or_default();
                    used = used.plus(Resources { pods: 1, ..r });
                    scored = scored.plus(nonzero(r));
                }
                rooms.push(NodeRoom { node, used, scored });
            }
            Err(e) => log_once(st, format!("scheduler: node skipped: {e}")),
        }
    }
    let mut bound = 0;
    for (key, pod) in &ix.unbound {
        let scheduler = pod
            .pointer("/spec/schedulerName")
            .and_then(Value::as_str)
            .unwrap_or("default-scheduler");
        if scheduler != "default-scheduler" {
            continue;
        }
        let spec = pod.get("spec").cloned().unwrap_or(json!({}));
        let req = match PodRequirements::from_spec(&spec) {
            Ok(r) => r,
            Err(e) => {
                mark_unschedulable(st, key, pod, &format!("{e}"));
                continue;
            }
        };
        let results: Vec<(String, Result<(), Unfit>)> = rooms
            .iter()
            .map(|r| (r.node.name.clone(), filter(&req, &r.node, &r.used)))
            .collect();
        let best = rooms
            .iter()
            .enumerate()
            .filter(|(i, _)| results[*i].1.is_ok())
            .max_by(|(_, a), (_, b)| {
                score(a, &req.requests)
                    .partial_cmp(&score(b, &req.requests))
                    .unwrap_or(std::cmp::Ordering::Equal)
                    .then_with(|| b.node.name.cmp(&a.node.name))
            })
            .map(|(i, _)| i);
        match best {
            Some(i) => {
                let node_name = rooms[i].node.name.clone();
                rooms[i].used = rooms[i].used.plus(Resources {
                    pods: 1,
                    ..req.requests
                });
                rooms[i].scored = rooms[i].scored.plus(nonzero(req.requests));
                bind(st, key, pod, &node_name);
                bound += 1;
            }
            None => mark_unschedulable(st, key, pod, &scheduler_message(&results)),
        }
    }
    bound
}

/// LeastAllocated: the mean share of CPU and memory left free after placing `req` (both
/// with the non-zero defaults).
fn score(room: &NodeRoom, req: &Resources) -> f64 {
    let req = nonzero(*req);
    let free = |alloc: u64, used: u64, asked: u64| {
        if alloc == 0 {
            0.0
        } else {
            alloc.saturating_sub(used + asked) as f64 / alloc as f64
        }
    };
    let a = &room.node.allocatable;
    (free(a.milli_cpu, room.scored.milli_cpu, req.milli_cpu)
        + free(a.memory_bytes, room.scored.memory_bytes, req.memory_bytes))
        / 2.0
}

fn scheduled_condition(status: &str, reason: Option<&str>, message: Option<&str>) -> Value {
    let mut c = json!({"type": "PodScheduled", "status": status, "lastProbeTime": null, "lastTransitionTime": now()});
    if let Some(r) = reason {
        c["reason"] = json!(r);
    }
    if let Some(m) = message {
        c["message"] = json!(m);
    }
    c
}

fn with_condition(pod: &Value, cond: Value) -> Value {
    let mut status = pod.get("status").cloned().unwrap_or(json!({}));
    let mut conds: Vec<Value> = status["conditions"].as_array().cloned().unwrap_or_default();
    conds.retain(|c| c["type"] != cond["type"]);
    conds.push(cond);
    status["conditions"] = json!(conds);
    if status.get("phase").is_none() {
        status["phase"] = json!("Pending");
    }
    status
}

fn bind(st: &mut State, key: &ObjKey, pod: &Value, node: &str) {
    let Some(rt) = st.kinds.preferred("", "pods") else {
        return;
    };
    let mut new = pod.clone();
    new["spec"]["nodeName"] = json!(node);
    new["status"] = with_condition(pod, scheduled_condition("True", None, None));
    st.system_update(&rt, key, new);
}

fn mark_unschedulable(st: &mut State, key: &ObjKey, pod: &Value, message: &str) {
    let already = pod
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == "PodScheduled"))
        .is_some_and(|c| c["reason"] == UNSCHEDULABLE && c["message"] == message);
    if already {
        return;
    }
    let status = with_condition(pod, scheduled_condition("False", Some(UNSCHEDULABLE), Some(message)));
    super::write_status(st, key, status);
}

/// The unschedulable pods, with their scheduler message (oldest first).
pub fn unschedulable(st: &State) -> Vec<(ObjKey, Value, String)> {
    let mut out: BTreeMap<(String, ObjKey), (Value, String)> = BTreeMap::new();
    for (k, p) in st.store.list("", "pods", None) {
        if deleting(p)
            || p.pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .is_some_and(|n| !n.is_empty())
        {
            continue;
        }
        let cond = p
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .and_then(|cs| {
                cs.iter()
                    .find(|c| c["type"] == "PodScheduled" && c["reason"] == UNSCHEDULABLE)
            });
        if let Some(c) = cond {
            let msg = c["message"].as_str().unwrap_or_default().to_string();
            out.insert(
                (meta_str(p, "creationTimestamp").to_string(), k.clone()),
                (p.clone(), msg),
            );
        }
    }
    out.into_iter().map(|((_, k), (p, m))| (k, p, m)).collect()
}
