//! Server-side printing: `meta.k8s.io/v1` `Table` answers for `kubectl get`.
//!
//! Owns turning objects into a Table when a client's `Accept` asks for `as=Table`: column
//! definitions and one row per object, with the row's object as `PartialObjectMetadata`
//! (default `includeObject=Metadata`), the full object (`Object`) or none (`None`).
//!
//! Rules kept here:
//! - Every table starts with `Name` and ends with `Age`; custom resources add their
//!   `additionalPrinterColumns` (simple `.a.b` JSON paths); a few built-ins add the columns
//!   kubectl users know (Deployment READY/UP-TO-DATE/AVAILABLE, DaemonSet DESIRED/CURRENT/
//!   READY/UP-TO-DATE/AVAILABLE, Namespace STATUS, ConfigMap/Secret DATA, Service TYPE/CLUSTER-IP).

use crate::kinds::ResourceType;
use serde_json::{Value, json};

/// Human age, as kubectl prints it (`5s`, `3m20s`, `4h`, `2d`).
pub fn human_age(created: &str) -> String {
    let Ok(t) = chrono::DateTime::parse_from_rfc3339(created) else {
        return "<unknown>".into();
    };
    let secs = (chrono::Utc::now() - t.with_timezone(&chrono::Utc))
        .num_seconds()
        .max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 600 => format!("{}m{}s", s / 60, s % 60),
        s if s < 3 * 3600 => format!("{}m", s / 60),
        s if s < 8 * 3600 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        s if s < 2 * 86400 => format!("{}h", s / 3600),
        s if s < 8 * 86400 => format!("{}d{}h", s / 86400, (s % 86400) / 3600),
        s => format!("{}d", s / 86400),
    }
}

fn path(obj: &Value, json_path: &str) -> Value {
    let mut cur = Some(obj);
    for seg in json_path.trim_start_matches('.').split('.').filter(|s| !s.is_empty()) {
        cur = cur.and_then(|c| c.get(seg));
    }
    cur.cloned().unwrap_or(Value::Null)
}

fn int(obj: &Value, p: &str) -> i64 {
    obj.pointer(p).and_then(Value::as_i64).unwrap_or(0)
}

fn count(obj: &Value, p: &str) -> usize {
    obj.pointer(p).and_then(Value::as_object).map(|m| m.len()).unwrap_or(0)
}

/// A pod's STATUS column, as kubectl's printer (`printPod`) derives it: the phase, or the
/// reason of a container still waiting or terminated, `Completed` for a finished one.
fn pod_status(o: &Value) -> String {
    let phase = o.pointer("/status/phase").and_then(Value::as_str).unwrap_or("Pending");
    let mut reason = phase.to_string();
    for c in o
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(r) = c.pointer("/state/waiting/reason").and_then(Value::as_str) {
            reason = r.to_string();
        } else if let Some(r) = c.pointer("/state/terminated/reason").and_then(Value::as_str) {
            reason = r.to_string();
        }
    }
    if o.pointer("/metadata/deletionTimestamp").is_some() {
        reason = "Terminating".into();
    }
    reason
}

fn pod_cells(o: &Value) -> Vec<Value> {
    let statuses = o
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let total = o
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let ready = statuses.iter().filter(|c| c["ready"] == json!(true)).count();
    let restarts: i64 = statuses.iter().map(|c| c["restartCount"].as_i64().unwrap_or(0)).sum();
    let or_none = |v: Value| if v.is_null() { json!("<none>") } else { v };
    vec![
        json!(format!("{ready}/{total}")),
        json!(pod_status(o)),
        json!(restarts.to_string()),
        or_none(path(o, ".status.podIP")),
        or_none(path(o, ".spec.nodeName")),
        json!("<none>"),
        json!("<none>"),
    ]
}

fn node_cells(o: &Value) -> Vec<Value> {
    let ready = o
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
        .map_or("Unknown", |c| if c["status"] == "True" { "Ready" } else { "NotReady" });
    let mut status = ready.to_string();
    if o.pointer("/spec/unschedulable") == Some(&json!(true)) {
        status.push_str(",SchedulingDisabled");
    }
    let address = |t: &str| {
        o.pointer("/status/addresses")
            .and_then(Value::as_array)
            .and_then(|a| a.iter().find(|x| x["type"] == t))
            .map_or(json!("<none>"), |x| x["address"].clone())
    };
    vec![
        json!(status),
        json!("<none>"),
        path(o, ".status.nodeInfo.kubeletVersion"),
        address("InternalIP"),
        address("ExternalIP"),
        path(o, ".status.nodeInfo.osImage"),
        path(o, ".status.nodeInfo.kernelVersion"),
        path(o, ".status.nodeInfo.containerRuntimeVersion"),
    ]
}

/// Columns after Name: (name, type, priority) with the cells of one object, and how many
/// of them come before Age (the rest follow it, as Pods' and Nodes' `-o wide` columns do).
type Columns = (Vec<(String, String, u8)>, Vec<Value>, usize);

fn columns(rt: &ResourceType, obj: Option<&Value>) -> Columns {
    let o = obj.cloned().unwrap_or(Value::Null);
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Pod") => {
            let cols = [
                ("Ready", "string", 0),
                ("Status", "string", 0),
                ("Restarts", "string", 0),
                ("IP", "string", 1),
                ("Node", "string", 1),
                ("Nominated Node", "string", 1),
                ("Readiness Gates", "string", 1),
            ];
            let cells = if obj.is_some() { pod_cells(&o) } else { vec![] };
            (
                cols.iter()
                    .map(|(a, b, p)| (a.to_string(), b.to_string(), *p))
                    .collect(),
                cells,
                3,
            )
        }
        ("", "Node") => {
            let cols = [
                ("Status", "string", 0),
                ("Roles", "string", 0),
                ("Version", "string", 0),
                ("Internal-IP", "string", 1),
                ("External-IP", "string", 1),
                ("OS-Image", "string", 1),
                ("Kernel-Version", "string", 1),
                ("Container-Runtime", "string", 1),
            ];
            let cells = if obj.is_some() { node_cells(&o) } else { vec![] };
            // kubectl shows Age before Version for nodes
            (
                cols.iter()
                    .map(|(a, b, p)| (a.to_string(), b.to_string(), *p))
                    .collect(),
                cells,
                2,
            )
        }
        _ => {
            let (cols, cells) = extra(rt, obj);
            let n = cols.len();
            (cols.into_iter().map(|(a, b)| (a, b, 0)).collect(), cells, n)
        }
    }
}

/// (name, type) of the extra columns, and the cells of one object.
fn extra(rt: &ResourceType, obj: Option<&Value>) -> (Vec<(String, String)>, Vec<Value>) {
    let o = obj.cloned().unwrap_or(Value::Null);
    let o = &o;
    let (cols, cells): (Vec<(&str, &str)>, Vec<Value>) = match (rt.group.as_str(), rt.kind.as_str()) {
        ("apps", "Deployment") => (
            vec![("Ready", "string"), ("Up-to-date", "integer"), ("Available", "integer")],
            vec![
                json!(format!(
                    "{}/{}",
                    int(o, "/status/readyReplicas"),
                    int(o, "/spec/replicas")
                )),
                json!(int(o, "/status/updatedReplicas")),
                json!(int(o, "/status/availableReplicas")),
            ],
        ),
        ("apps", "DaemonSet") => (
            vec![
                ("Desired", "integer"),
                ("Current", "integer"),
                ("Ready", "integer"),
                ("Up-to-date", "integer"),
                ("Available", "integer"),
            ],
            vec![
                json!(int(o, "/status/desiredNumberScheduled")),
                json!(int(o, "/status/currentNumberScheduled")),
                json!(int(o, "/status/numberReady")),
                json!(int(o, "/status/updatedNumberScheduled")),
                json!(int(o, "/status/numberAvailable")),
            ],
        ),
        ("", "Namespace") => (vec![("Status", "string")], vec![path(o, ".status.phase")]),
        ("", "ConfigMap") => (
            vec![("Data", "integer")],
            vec![json!(count(o, "/data") + count(o, "/binaryData"))],
        ),
        ("", "Secret") => (
            vec![("Type", "string"), ("Data", "integer")],
            vec![path(o, ".type"), json!(count(o, "/data"))],
        ),
        ("", "Service") => (
            vec![("Type", "string"), ("Cluster-IP", "string")],
            vec![path(o, ".spec.type"), path(o, ".spec.clusterIP")],
        ),
        _ => {
            let cols: Vec<(&str, &str)> = rt
                .printer_columns
                .iter()
                .map(|(n, t, _)| (n.as_str(), t.as_str()))
                .collect();
            let cells = rt.printer_columns.iter().map(|(_, _, p)| path(o, p)).collect();
            (cols, cells)
        }
    };
    (
        cols.into_iter().map(|(a, b)| (a.to_string(), b.to_string())).collect(),
        cells,
    )
}

/// A Table of `items` (served objects).
pub fn table(rt: &ResourceType, items: &[Value], resource_version: &str, include_object: &str) -> Value {
    let (cols, _, before_age) = columns(rt, None);
    let mut defs = vec![
        json!({"name": "Name", "type": "string", "format": "name", "description": "Name must be unique within a namespace.", "priority": 0}),
    ];
    let age = json!({"name": "Age", "type": "string", "format": "", "description": "CreationTimestamp is a timestamp representing the server time when this object was created.", "priority": 0});
    for (i, (n, t, p)) in cols.iter().enumerate() {
        if i == before_age {
            defs.push(age.clone());
        }
        defs.push(json!({"name": n, "type": t, "format": "", "description": "", "priority": p}));
    }
    if before_age >= cols.len() {
        defs.push(age);
    }
    let rows: Vec<Value> = items
        .iter()
        .map(|o| {
            let mut cells = vec![o.pointer("/metadata/name").cloned().unwrap_or(Value::Null)];
            let (_, extra_cells, _) = columns(rt, Some(o));
            let age = json!(human_age(o.pointer("/metadata/creationTimestamp").and_then(Value::as_str).unwrap_or_default()));
            for (i, c) in extra_cells.into_iter().enumerate() {
                if i == before_age {
                    cells.push(age.clone());
                }
                cells.push(c);
            }
            if cells.len() < defs.len() {
                cells.push(age);
            }
            let mut row = json!({"cells": cells});
            match include_object {
                "None" => {}
                "Object" => row["object"] = o.clone(),
                _ => {
                    row["object"] = json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o.get("metadata").cloned().unwrap_or(json!({}))})
                }
            }
            row
        })
        .collect();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": resource_version}, "columnDefinitions": defs, "rows": rows})
}
