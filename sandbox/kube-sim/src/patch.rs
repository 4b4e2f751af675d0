//! Non-apply patches: JSON merge patch, JSON patch and strategic merge patch.
//!
//! Owns applying a patch document to an object value; nothing here knows about storage or
//! field ownership (a patch is an Update for managed fields).
//!
//! Rules kept here:
//! - JSON merge patch is RFC 7386 (`null` deletes, objects merge, everything else replaces).
//! - JSON patch is RFC 6902 (`add`, `remove`, `replace`, `move`, `copy`, `test`); a failed
//!   `test` or a missing path is a 422 in the apiserver's wording.
//! - Strategic merge patch (built-in kinds only) is a merge patch in which lists marked
//!   `x-kubernetes-patch-strategy: merge` merge item by item on their `patch-merge-key`, and
//!   `$patch: delete|replace` directives on maps and list items are honoured.

use crate::schema::{Shape, TypeNode};
use serde_json::Value;

/// RFC 7386.
pub fn merge_patch(target: &Value, patch: &Value) -> Value {
    match patch {
        Value::Object(p) => {
            let mut out = match target {
                Value::Object(t) => t.clone(),
                _ => serde_json::Map::new(),
            };
            for (k, v) in p {
                if v.is_null() {
                    out.remove(k);
                } else {
                    let merged = merge_patch(out.get(k).unwrap_or(&Value::Null), v);
                    out.insert(k.clone(), merged);
                }
            }
            Value::Object(out)
        }
        _ => patch.clone(),
    }
}

/// Strategic merge patch.
pub fn strategic_merge_patch(target: &Value, patch: &Value, t: TypeNode<'_>) -> Value {
    match patch {
        Value::Object(p) => {
            if p.get("$patch").and_then(Value::as_str) == Some("replace") {
                let mut r = p.clone();
                r.remove("$patch");
                return Value::Object(r);
            }
            let mut out = match target {
                Value::Object(t) => t.clone(),
                _ => serde_json::Map::new(),
            };
            for (k, v) in p {
                if k.starts_with('$') {
                    continue;
                }
                if v.is_null() {
                    out.remove(k);
                    continue;
                }
                let ct = t.field(k);
                let merged = match (out.get(k), v) {
                    (Some(Value::Array(cur)), Value::Array(items)) => merge_list(cur, items, ct),
                    (cur, v) => strategic_merge_patch(cur.unwrap_or(&Value::Null), v, ct),
                };
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        _ => patch.clone(),
    }
}

fn merge_list(cur: &[Value], items: &[Value], t: TypeNode<'_>) -> Value {
    let strategy_merge = t
        .raw()
        .and_then(|n| n.get("x-kubernetes-patch-strategy"))
        .and_then(Value::as_str)
        .is_some_and(|s| s.split(',').any(|x| x == "merge"));
    if !strategy_merge {
        return Value::Array(items.to_vec());
    }
    let mut out = cur.to_vec();
    match t.shape(&Value::Array(items.to_vec())) {
        Shape::ListMap(keys) => {
            let key = keys[0].clone();
            for item in items {
                let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
                let pos = item
                    .get(&key)
                    .and_then(|kv| out.iter().position(|x| x.get(&key) == Some(kv)));
                match (pos, delete) {
                    (Some(i), true) => {
                        out.remove(i);
                    }
                    (Some(i), false) => out[i] = strategic_merge_patch(&out[i], item, t.item()),
                    (None, false) => out.push(strategic_merge_patch(&Value::Null, item, t.item())),
                    (None, true) => {}
                }
            }
        }
        _ => {
            for item in items {
                if !out.contains(item) {
                    out.push(item.clone());
                }
            }
        }
    }
    Value::Array(out)
}

/// RFC 6902. Errors are messages for a 422.
pub fn json_patch(target: &Value, ops: &Value) -> Result<Value, String> {
    let ops = ops.as_array().ok_or("json patch must be a list of operations")?;
    let mut doc = target.clone();
    for op in ops {
        let kind = op.get("op").and_then(Value::as_str).ok_or("operation has no \"op\"")?;
        let path = op
            .get("path")
            .and_then(Value::as_str)
            .ok_or("operation has no \"path\"")?;
        match kind {
            "add" => add(
                &mut doc,
                path,
                op.get("value").cloned().ok_or("add operation has no \"value\"")?,
            )?,
            "remove" => {
                remove(&mut doc, path)?;
            }
            "replace" => {
                remove(&mut doc, path)?;
                add(
                    &mut doc,
                    path,
                    op.get("value").cloned().ok_or("replace operation has no \"value\"")?,
                )?;
            }
            "move" => {
                let from = op
                    .get("from")
                    .and_then(Value::as_str)
                    .ok_or("move operation has no \"from\"")?;
                let v = remove(&mut doc, from)?;
                add(&mut doc, path, v)?;
            }
            "copy" => {
                let from = op
                    .get("from")
                    .and_then(Value::as_str)
                    .ok_or("copy operation has no \"from\"")?;
                let v = doc
                    .pointer(from)
                    .cloned()
                    .ok_or_else(|| format!("copy operation does not apply: doc is missing from path: {from}"))?;
                add(&mut doc, path, v)?;
            }
            "test" => {
                let want = op.get("value").ok_or("test operation has no \"value\"")?;
                if doc.pointer(path) != Some(want) {
                    return Err(format!("testing value {path} failed: test failed"));
                }
            }
            other => return Err(format!("Unexpected kind: {other}")),
        }
    }
    Ok(doc)
}

fn split(path: &str) -> Result<(String, String), String> {
    let i = path.rfind('/').ok_or_else(|| format!("invalid path {path}"))?;
    let last = path[i + 1..].replace("~1", "/").replace("~0", "~");
    Ok((path[..i].to_string(), last))
}

fn add(doc: &mut Value, path: &str, v: Value) -> Result<(), String> {
    if path.is_empty() {
        *doc = v;
        return Ok(());
    }
    let (parent, last) = split(path)?;
    let missing = || format!("add operation does not apply: doc is missing path: \"{path}\"");
    match doc.pointer_mut(&parent).ok_or_else(missing)? {
        Value::Object(m) => {
            m.insert(last, v);
        }
        Value::Array(a) => {
            if last == "-" {
                a.push(v);
            } else {
                let i: usize = last.parse().map_err(|_| missing())?;
                if i > a.len() {
                    return Err(missing());
                }
                a.insert(i, v);
            }
        }
        _ => return Err(missing()),
    }
    Ok(())
}

fn remove(doc: &mut Value, path: &str) -> Result<Value, String> {
    let (parent, last) = split(path)?;
    let missing = || format!("remove operation does not apply: doc is missing path: \"{path}\"");
    match doc.pointer_mut(&parent).ok_or_else(missing)? {
        Value::Object(m) => m.remove(&last).ok_or_else(missing),
        Value::Array(a) => {
            let i: usize = last.parse().map_err(|_| missing())?;
            if i >= a.len() {
                return Err(missing());
            }
            Ok(a.remove(i))
        }
        _ => Err(missing()),
    }
}
