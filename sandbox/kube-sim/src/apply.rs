//! Server-side apply: merging an applied configuration into the live object.
//!
//! Owns [`apply`]: the merge of an apply configuration into the live object, the conflict
//! check against other managers, `force`, and the removal of fields a manager stopped applying.
//!
//! Rules kept here (those of the real apiserver's structured-merge-diff):
//! - Scalars and atomic values are replaced; granular maps merge key by key; associative lists
//!   merge item by item on their keys (new items appended); sets are unions.
//! - A conflict is a field owned by another manager (Apply or Update) whose value the apply
//!   would change. Without `force` any conflict fails the whole request (409 with one cause per
//!   field); with `force` the fields move to the applier.
//! - The applier then owns exactly the fields of its configuration. Fields it owned before and
//!   no longer applies are removed from the object unless another manager also owns them
//!   (key fields of a kept list item are never removed).

use crate::error::{ApiError, Cause, Target};
use crate::fieldset::{FieldSet, child_type, item_matches, path_string, to_field_set, value_at};
use crate::managed::{Entry, now};
use crate::schema::{Shape, TypeNode};
use serde_json::{Map, Value};

/// One field conflict.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    /// The manager as the apiserver prints it (`"kubectl"` or `"x" using apps/v1`).
    pub manager: String,
    pub path: Vec<String>,
}

/// The manager name as printed in conflict messages.
fn print_manager(e: &Entry) -> String {
    let mut s = format!("{:?}", e.manager);
    if !e.subresource.is_empty() {
        s.push_str(&format!(" with subresource {:?}", e.subresource));
    }
    if e.operation == "Update" {
        s.push_str(&format!(" using {}", e.api_version));
    }
    s
}

/// The 409 answer for a list of conflicts, worded as the apiserver words it.
pub fn conflict_error(conflicts: &[Conflict], target: Target) -> ApiError {
    let causes = conflicts
        .iter()
        .map(|c| Cause {
            reason: "FieldManagerConflict".into(),
            message: format!("conflict with {}", c.manager),
            field: path_string(&c.path),
        })
        .collect();
    let message = if conflicts.len() == 1 {
        format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            conflicts[0].manager,
            path_string(&conflicts[0].path)
        )
    } else {
        let mut managers: Vec<&String> = conflicts.iter().map(|c| &c.manager).collect();
        managers.sort();
        managers.dedup();
        let mut lines = vec![];
        for m in managers {
            lines.push(format!("conflicts with {m}:"));
            for c in conflicts.iter().filter(|c| &c.manager == m) {
                lines.push(format!("- {}", path_string(&c.path)));
            }
        }
        format!("Apply failed with {} conflicts: {}", conflicts.len(), lines.join("\n"))
    };
    ApiError::Conflict {
        message,
        target,
        causes,
    }
}

/// Merge `patch` into `live` per the schema.
pub fn merge(live: Option<&Value>, patch: &Value, t: TypeNode<'_>) -> Value {
    match t.shape(patch) {
        Shape::Scalar | Shape::Atomic => patch.clone(),
        Shape::Map => {
            let (Some(Value::Object(l)), Value::Object(p)) = (live, patch) else {
                return patch.clone();
            };
            let mut out = l.clone();
            for (k, v) in p {
                let merged = merge(l.get(k), v, t.field(k));
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        Shape::ListMap(keys) => {
            let (Some(Value::Array(l)), Value::Array(p)) = (live, patch) else {
                return patch.clone();
            };
            let mut out = l.clone();
            for item in p {
                let found =
                    crate::fieldset::pe_key(item, &keys).and_then(|pe| out.iter().position(|x| item_matches(x, &pe)));
                match found {
                    Some(i) => {
                        let merged = merge(Some(&out[i]), item, t.item());
                        out[i] = merged;
                    }
                    None => out.push(item.clone()),
                }
            }
            Value::Array(out)
        }
        Shape::ListSet => {
            let (Some(Value::Array(l)), Value::Array(p)) = (live, patch) else {
                return patch.clone();
            };
            let mut out = l.clone();
            for item in p {
                if !out.contains(item) {
                    out.push(item.clone());
                }
            }
            Value::Array(out)
        }
    }
}

/// Remove from `v` the members of `rm`, except where `keep` (other managers) owns something
/// at or below them; `key_fields` are the key fields when `v` is an associative list item.
fn prune(v: &mut Value, rm: &FieldSet, keep: Option<&FieldSet>, t: TypeNode<'_>, key_fields: &[String]) {
    let list_keys = match t.shape(v) {
        Shape::ListMap(keys) => keys,
        _ => vec![],
    };
    for (pe, sub) in &rm.children {
        let keep_sub = keep.and_then(|k| k.child(pe));
        let kept_below = keep_sub.is_some_and(|k| !k.is_empty());
        if sub.member && !kept_below {
            if let Some(f) = pe.strip_prefix("f:") {
                if key_fields.iter().any(|k| k == f) {
                    continue;
                }
                if let Some(o) = v.as_object_mut() {
                    o.remove(f);
                }
            } else if let Some(a) = v.as_array_mut() {
                a.retain(|item| !item_matches(item, pe));
            }
            continue;
        }
        let ct = child_type(t, pe);
        let child: Option<&mut Value> = if let Some(f) = pe.strip_prefix("f:") {
            v.as_object_mut().and_then(|o| o.get_mut(f))
        } else {
            v.as_array_mut()
                .and_then(|a| a.iter_mut().find(|item| item_matches(item, pe)))
        };
        let Some(child) = child else { continue };
        let item_keys: &[String] = if pe.starts_with("k:") { &list_keys } else { &[] };
        prune(child, sub, keep_sub, ct, item_keys);
        // a granular map emptied by the pruning goes away with its last field
        let emptied = child.as_object().is_some_and(Map::is_empty) && !keep_sub.is_some_and(|k| k.member);
        if emptied
            && let Some(f) = pe.strip_prefix("f:")
            && let Some(o) = v.as_object_mut()
        {
            o.remove(f);
        }
    }
}

/// Remove `null` values from maps (the stored form of "unset").
pub fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, x| !x.is_null());
            for x in m.values_mut() {
                strip_nulls(x);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// The outcome of an apply.
pub struct Applied {
    pub object: Value,
    pub entries: Vec<Entry>,
}

/// Apply `patch` as `manager` onto `live` (an empty object when creating).
#[allow(clippy::too_many_arguments)]
pub fn apply(
    live: &Value,
    patch: &Value,
    mut entries: Vec<Entry>,
    manager: &str,
    subresource: &str,
    api_version: &str,
    force: bool,
    t: TypeNode<'_>,
    skip: &dyn Fn(&[String]) -> bool,
    target: Target,
) -> Result<Applied, ApiError> {
    let new_set = to_field_set(patch, t, skip);
    let mut merged = merge(Some(live), patch, t);

    // conflicts with every other manager
    let mut conflicts = vec![];
    for e in &entries {
        if e.is(manager, "Apply", subresource) {
            continue;
        }
        for p in e.set.leaves() {
            if new_set.contains(&p) && value_at(live, &p) != value_at(&merged, &p) {
                conflicts.push((
                    print_manager(e),
                    e.manager.clone(),
                    e.operation.clone(),
                    e.subresource.clone(),
                    p,
                ));
            }
        }
    }
    if !conflicts.is_empty() {
        if !force {
            let list: Vec<Conflict> = conflicts
                .into_iter()
                .map(|(m, _, _, _, p)| Conflict { manager: m, path: p })
                .collect();
            return Err(conflict_error(&list, target));
        }
        for (_, m, op, sub, p) in &conflicts {
            if let Some(e) = entries.iter_mut().find(|e| e.is(m, op, sub)) {
                let mut single = FieldSet::default();
                single.insert(p);
                e.set = e.set.difference(&single);
            }
        }
    }

    // remove what this manager stopped applying and nobody else owns
    let prev = entries
        .iter()
        .find(|e| e.is(manager, "Apply", subresource))
        .map(|e| e.set.clone())
        .unwrap_or_default();
    let others = entries
        .iter()
        .filter(|e| !e.is(manager, "Apply", subresource))
        .fold(FieldSet::default(), |acc, e| acc.union(&e.set));
    let to_remove = prev.difference(&new_set).difference(&others);
    if !to_remove.is_empty() {
        prune(&mut merged, &to_remove, Some(&others), t, &[]);
    }
    strip_nulls(&mut merged);

    let changed = &merged != live;
    match entries.iter_mut().find(|e| e.is(manager, "Apply", subresource)) {
        Some(e) => {
            if e.set != new_set || changed {
                e.time = now();
            }
            e.set = new_set;
            e.api_version = api_version.to_string();
        }
        None => entries.push(Entry {
            manager: manager.to_string(),
            operation: "Apply".into(),
            api_version: api_version.to_string(),
            time: now(),
            subresource: subresource.to_string(),
            set: new_set,
        }),
    }
    entries.retain(|e| !e.set.is_empty());
    Ok(Applied {
        object: merged,
        entries,
    })
}
