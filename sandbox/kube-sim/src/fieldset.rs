//! Field sets: which fields of an object a manager owns.
//!
//! Owns [`FieldSet`], a trie of path elements in the FieldsV1 spelling (`f:name`,
//! `k:{"name":"c"}`, `v:"value"`, `i:0`), its FieldsV1 JSON form (`{}` for a leaf, `"."` for a
//! node that is itself a member and has children), set algebra, the path text used in conflict
//! messages (`.spec.containers[name="c"].image`), locating a value by path, and computing the
//! set of fields a value sets given its schema ([`to_field_set`]).
//!
//! Rules kept here (those of structured-merge-diff):
//! - Scalars and atomic values are members; granular maps and structs are not members
//!   themselves, only their children; items of associative lists and sets are members.
//! - Key objects in `k:` elements have their fields sorted by name and compact JSON values.

use crate::schema::{Shape, TypeNode};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A set of field paths, as a trie.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSet {
    /// Is the path ending here a member?
    pub member: bool,
    /// Children by path element (FieldsV1 spelling).
    pub children: BTreeMap<String, FieldSet>,
}

impl FieldSet {
    pub fn is_empty(&self) -> bool {
        !self.member && self.children.is_empty()
    }

    /// Insert the path `path`.
    pub fn insert(&mut self, path: &[String]) {
        let mut node = self;
        for pe in path {
            node = node.children.entry(pe.clone()).or_default();
        }
        node.member = true;
    }

    /// Is `path` a member?
    pub fn contains(&self, path: &[String]) -> bool {
        let mut node = self;
        for pe in path {
            match node.children.get(pe) {
                Some(c) => node = c,
                None => return false,
            }
        }
        node.member
    }

    /// The subtree at one child element.
    pub fn child(&self, pe: &str) -> Option<&FieldSet> {
        self.children.get(pe)
    }

    pub fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        out.member |= other.member;
        for (k, v) in &other.children {
            let merged = match out.children.get(k) {
                Some(mine) => mine.union(v),
                None => v.clone(),
            };
            out.children.insert(k.clone(), merged);
        }
        out
    }

    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            member: self.member && !other.member,
            children: BTreeMap::new(),
        };
        for (k, v) in &self.children {
            let d = match other.children.get(k) {
                Some(o) => v.difference(o),
                None => v.clone(),
            };
            if !d.is_empty() {
                out.children.insert(k.clone(), d);
            }
        }
        out
    }

    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            member: self.member && other.member,
            children: BTreeMap::new(),
        };
        for (k, v) in &self.children {
            if let Some(o) = other.children.get(k) {
                let i = v.intersection(o);
                if !i.is_empty() {
                    out.children.insert(k.clone(), i);
                }
            }
        }
        out
    }

    /// Every member path.
    pub fn members(&self) -> Vec<Vec<String>> {
        let mut out = vec![];
        let mut prefix = vec![];
        self.collect(&mut prefix, &mut out, false);
        out
    }

    /// Member paths that have no children (leaves).
    pub fn leaves(&self) -> Vec<Vec<String>> {
        let mut out = vec![];
        let mut prefix = vec![];
        self.collect(&mut prefix, &mut out, true);
        out
    }

    fn collect(&self, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>, leaves_only: bool) {
        if self.member && (!leaves_only || self.children.is_empty()) {
            out.push(prefix.clone());
        }
        for (k, v) in &self.children {
            prefix.push(k.clone());
            v.collect(prefix, out, leaves_only);
            prefix.pop();
        }
    }

    /// FieldsV1 JSON.
    pub fn to_fields_v1(&self) -> Value {
        let mut m = Map::new();
        if self.member && !self.children.is_empty() {
            m.insert(".".into(), Value::Object(Map::new()));
        }
        for (k, v) in &self.children {
            m.insert(k.clone(), v.to_fields_v1());
        }
        Value::Object(m)
    }

    /// Parse FieldsV1 JSON (the root itself is never a member).
    pub fn from_fields_v1(v: &Value) -> FieldSet {
        fn parse(v: &Value, is_root: bool) -> FieldSet {
            let mut fs = FieldSet::default();
            if let Value::Object(m) = v {
                if m.is_empty() && !is_root {
                    fs.member = true;
                }
                for (k, c) in m {
                    if k == "." {
                        fs.member = true;
                    } else {
                        fs.children.insert(k.clone(), parse(c, false));
                    }
                }
            }
            fs
        }
        parse(v, true)
    }
}

/// `f:` element.
pub fn pe_field(name: &str) -> String {
    format!("f:{name}")
}

/// `k:` element for an associative list item, or None if a key field is missing entirely.
pub fn pe_key(item: &Value, keys: &[String]) -> Option<String> {
    let obj = item.as_object()?;
    let mut m = Map::new();
    for k in keys {
        if let Some(v) = obj.get(k) {
            m.insert(k.clone(), v.clone());
        }
    }
    if m.is_empty() {
        return None;
    }
    // serde_json's Map without preserve_order is sorted by key.
    Some(format!("k:{}", Value::Object(m)))
}

/// `v:` element for a set item.
pub fn pe_value(item: &Value) -> String {
    format!("v:{item}")
}

/// Path text as structured-merge-diff prints it: `.spec.containers[name="c"].image`.
pub fn path_string(path: &[String]) -> String {
    let mut s = String::new();
    for pe in path {
        if let Some(f) = pe.strip_prefix("f:") {
            s.push('.');
            s.push_str(f);
        } else if let Some(k) = pe.strip_prefix("k:") {
            let parsed: Value = serde_json::from_str(k).unwrap_or(Value::Null);
            let parts: Vec<String> = parsed
                .as_object()
                .map(|m| m.iter().map(|(k, v)| format!("{k}={v}")).collect())
                .unwrap_or_default();
            s.push_str(&format!("[{}]", parts.join(",")));
        } else if let Some(v) = pe.strip_prefix("v:") {
            s.push_str(&format!("[={v}]"));
        } else if let Some(i) = pe.strip_prefix("i:") {
            s.push_str(&format!("[{i}]"));
        }
    }
    s
}

/// Does list item `item` match path element `pe` (`k:`/`v:`)?
pub fn item_matches(item: &Value, pe: &str) -> bool {
    if let Some(k) = pe.strip_prefix("k:") {
        let Ok(Value::Object(key)) = serde_json::from_str::<Value>(k) else {
            return false;
        };
        let Some(obj) = item.as_object() else { return false };
        key.iter().all(|(k, v)| obj.get(k) == Some(v))
    } else if let Some(v) = pe.strip_prefix("v:") {
        serde_json::from_str::<Value>(v).is_ok_and(|v| &v == item)
    } else {
        false
    }
}

/// The value at one path element below `v`.
pub fn child_value<'v>(v: &'v Value, pe: &str) -> Option<&'v Value> {
    if let Some(f) = pe.strip_prefix("f:") {
        return v.as_object()?.get(f);
    }
    if let Some(i) = pe.strip_prefix("i:") {
        return v.as_array()?.get(i.parse::<usize>().ok()?);
    }
    v.as_array()?.iter().find(|item| item_matches(item, pe))
}

/// The value at a path.
pub fn value_at<'v>(v: &'v Value, path: &[String]) -> Option<&'v Value> {
    let mut cur = v;
    for pe in path {
        cur = child_value(cur, pe)?;
    }
    Some(cur)
}

/// The type node at one path element.
pub fn child_type<'a>(t: TypeNode<'a>, pe: &str) -> TypeNode<'a> {
    match pe.strip_prefix("f:") {
        Some(f) => t.field(f),
        None => t.item(),
    }
}

/// The set of fields `value` sets, per its schema. `skip` decides which top-level paths
/// (as `f:` elements, e.g. `metadata.name`) are never tracked.
pub fn to_field_set(value: &Value, t: TypeNode<'_>, skip: &dyn Fn(&[String]) -> bool) -> FieldSet {
    let mut set = FieldSet::default();
    let mut path = vec![];
    walk(value, t, &mut path, &mut set, skip);
    set
}

fn walk(value: &Value, t: TypeNode<'_>, path: &mut Vec<String>, set: &mut FieldSet, skip: &dyn Fn(&[String]) -> bool) {
    match t.shape(value) {
        Shape::Scalar | Shape::Atomic => {
            if !path.is_empty() {
                set.insert(path);
            }
        }
        Shape::Map => {
            let Some(obj) = value.as_object() else {
                set.insert(path);
                return;
            };
            for (k, v) in obj {
                path.push(pe_field(k));
                if !skip(path) {
                    if v.is_null() {
                        set.insert(path);
                    } else {
                        walk(v, t.field(k), path, set, skip);
                    }
                }
                path.pop();
            }
        }
        Shape::ListMap(keys) => {
            let Some(items) = value.as_array() else {
                set.insert(path);
                return;
            };
            for item in items {
                let Some(pe) = pe_key(item, &keys) else { continue };
                path.push(pe);
                set.insert(path);
                walk(item, t.item(), path, set, skip);
                path.pop();
            }
        }
        Shape::ListSet => {
            let Some(items) = value.as_array() else {
                set.insert(path);
                return;
            };
            for item in items {
                path.push(pe_value(item));
                set.insert(path);
                path.pop();
            }
        }
    }
}
