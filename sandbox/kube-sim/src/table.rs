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
    let (cols, _) = extra(rt, None);
    let mut defs = vec![
        json!({"name": "Name", "type": "string", "format": "name", "description": "Name must be unique within a namespace.", "priority": 0}),
    ];
    for (n, t) in &cols {
        defs.push(json!({"name": n, "type": t, "format": "", "description": "", "priority": 0}));
    }
    defs.push(json!({"name": "Age", "type": "string", "format": "", "description": "CreationTimestamp is a timestamp representing the server time when this object was created.", "priority": 0}));
    let rows: Vec<Value> = items
        .iter()
        .map(|o| {
            let mut cells = vec![o.pointer("/metadata/name").cloned().unwrap_or(Value::Null)];
            cells.extend(extra(rt, Some(o)).1);
            cells.push(json!(human_age(o.pointer("/metadata/creationTimestamp").and_then(Value::as_str).unwrap_or_default())));
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
