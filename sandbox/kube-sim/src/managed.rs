//! `metadata.managedFields`: reading, writing and the ownership rules of non-apply writes.
//!
//! Owns [`Entry`] (one managedFields entry: manager, operation, apiVersion, time, subresource,
//! FieldsV1 set), the paths that are never tracked, and [`record_update`], which gives a
//! manager doing an Update (create, PUT, merge/JSON/strategic patch, status writes) the fields
//! it changed and takes them away from everyone else.
//!
//! Rules kept here:
//! - `apiVersion`, `kind` and the server-owned metadata (`name`, `namespace`, `uid`,
//!   `resourceVersion`, `generation`, `creationTimestamp`, `managedFields`, `selfLink`,
//!   deletion fields) are never owned.
//! - On the main resource of a type with a status subresource `status` is never owned; on the
//!   `status` subresource only `status` is.
//! - Entries whose set becomes empty are dropped; entries are keyed by
//!   (manager, operation, subresource).

use crate::fieldset::{FieldSet, to_field_set, value_at};
use crate::schema::TypeNode;
use serde_json::{Value, json};

/// One managedFields entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub manager: String,
    pub operation: String,
    pub api_version: String,
    pub time: String,
    pub subresource: String,
    pub set: FieldSet,
}

impl Entry {
    fn to_json(&self) -> Value {
        let mut v = json!({
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
            "time": self.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": self.set.to_fields_v1(),
        });
        if !self.subresource.is_empty() {
            v["subresource"] = json!(self.subresource);
        }
        v
    }

    /// Is this the entry of (manager, operation, subresource)?
    pub fn is(&self, manager: &str, operation: &str, subresource: &str) -> bool {
        self.manager == manager && self.operation == operation && self.subresource == subresource
    }
}

/// Now, as the apiserver writes timestamps.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The entries of an object.
pub fn read(obj: &Value) -> Vec<Entry> {
    let Some(list) = obj.pointer("/metadata/managedFields").and_then(Value::as_array) else {
        return vec![];
    };
    list.iter()
        .map(|e| Entry {
            manager: e.get("manager").and_then(Value::as_str).unwrap_or_default().to_string(),
            operation: e
                .get("operation")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            api_version: e
                .get("apiVersion")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            time: e.get("time").and_then(Value::as_str).unwrap_or_default().to_string(),
            subresource: e
                .get("subresource")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            set: e.get("fieldsV1").map(FieldSet::from_fields_v1).unwrap_or_default(),
        })
        .collect()
}

/// Store entries on an object (removing the field when there are none).
pub fn write(obj: &mut Value, entries: &[Entry]) {
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let list: Vec<Value> = entries
        .iter()
        .filter(|e| !e.set.is_empty())
        .map(Entry::to_json)
        .collect();
    if list.is_empty() {
        meta.remove("managedFields");
    } else {
        meta.insert("managedFields".into(), Value::Array(list));
    }
}

const SERVER_META: &[&str] = &[
    "f:name",
    "f:namespace",
    "f:uid",
    "f:resourceVersion",
    "f:generation",
    "f:creationTimestamp",
    "f:managedFields",
    "f:selfLink",
    "f:deletionTimestamp",
    "f:deletionGracePeriodSeconds",
];

/// Which paths are not tracked for a write to `subresource` ("" or "status") of a type.
pub fn skipper(subresource: &str, has_status_subresource: bool) -> impl Fn(&[String]) -> bool + use<> {
    let sub = subresource.to_string();
    move |path: &[String]| {
        let first = path[0].as_str();
        if path.len() == 1 && (first == "f:apiVersion" || first == "f:kind") {
            return true;
        }
        if first == "f:metadata" && path.len() == 2 && SERVER_META.contains(&path[1].as_str()) {
            return true;
        }
        if sub == "status" {
            return first != "f:status";
        }
        has_status_subresource && path.len() == 1 && first == "f:status"
    }
}

/// Compare two values: (added, modified, removed) field sets.
pub fn compare(
    old: &Value,
    new: &Value,
    t: TypeNode<'_>,
    skip: &dyn Fn(&[String]) -> bool,
) -> (FieldSet, FieldSet, FieldSet) {
    let old_set = to_field_set(old, t, skip);
    let new_set = to_field_set(new, t, skip);
    let added = new_set.difference(&old_set);
    let removed = old_set.difference(&new_set);
    let mut modified = FieldSet::default();
    for p in new_set.intersection(&old_set).leaves() {
        if value_at(old, &p) != value_at(new, &p) {
            modified.insert(&p);
        }
    }
    (added, modified, removed)
}

/// Record an Update by `manager` that turned `old` (None on create) into `new`.
#[allow(clippy::too_many_arguments)]
pub fn record_update(
    entries: &mut Vec<Entry>,
    manager: &str,
    api_version: &str,
    subresource: &str,
    old: Option<&Value>,
    new: &Value,
    t: TypeNode<'_>,
    skip: &dyn Fn(&[String]) -> bool,
) {
    let empty = json!({});
    let (added, modified, removed) = compare(old.unwrap_or(&empty), new, t, skip);
    let changed = added.union(&modified);
    if changed.is_empty() && removed.is_empty() {
        return;
    }
    let taken = changed.union(&removed);
    for e in entries.iter_mut() {
        if !e.is(manager, "Update", subresource) {
            e.set = e.set.difference(&taken);
        }
    }
    let now = now();
    match entries.iter_mut().find(|e| e.is(manager, "Update", subresource)) {
        Some(e) => {
            e.set = e.set.union(&changed).difference(&removed);
            e.time = now;
            e.api_version = api_version.to_string();
        }
        None => {
            if !changed.is_empty() {
                entries.push(Entry {
                    manager: manager.to_string(),
                    operation: "Update".into(),
                    api_version: api_version.to_string(),
                    time: now,
                    subresource: subresource.to_string(),
                    set: changed,
                });
            }
        }
    }
    entries.retain(|e| !e.set.is_empty());
}
