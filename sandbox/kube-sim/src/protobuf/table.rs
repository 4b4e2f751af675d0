//! The Kubernetes protobuf message table: which fields each message has, their tags, types and
//! JSON names, and which message a group/version/kind is.
//!
//! Owns [`Table`], built once from the static table `build.rs` derives from the `k8s-pb` crate
//! (tags and types; the crate's Rust field names) and the official JSON schema definitions the
//! simulator already loads (the JSON names).
//!
//! Rules kept here:
//! - A field's JSON name is the schema property whose name equals the Rust field name once both
//!   are lower-cased with `_`, `-` and `$` removed (`pod_cidr` = `podCIDR`,
//!   `x_kubernetes_list_type` = `x-kubernetes-list-type`); without a schema, lowerCamelCase.
//! - The message of `apiVersion`/`kind` is the `k8s-pb` type that implements `Resource` for it;
//!   other kinds (`Scale`, `...List`, `Status`, `DeleteOptions`) are found by name in the module
//!   of the group/version, then in `meta/v1` (where k8s keeps the shared kinds).

use crate::schema::Schemas;
use std::collections::HashMap;

/// A scalar or message type of a field.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    String,
    Int32,
    Int64,
    Bool,
    Double,
    Bytes,
    /// A message, by dotted name (`apimachinery.pkg.apis.meta.v1.ObjectMeta`).
    Message(&'static str),
    /// `map<string, V>`.
    Map(MapValue),
}

/// The value type of a map field.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MapValue {
    String,
    Bytes,
    Message(&'static str),
}

/// One field as generated.
#[derive(Debug)]
pub struct Field {
    pub tag: u32,
    pub rust: &'static str,
    pub kind: Kind,
    pub repeated: bool,
}

/// One message as generated.
#[derive(Debug)]
pub struct Message {
    pub name: &'static str,
    pub fields: &'static [Field],
}

mod generated {
    use super::{Field, Kind, MapValue, Message};
    include!(concat!(env!("OUT_DIR"), "/k8s_pb_table.rs"));
}

/// The meta/v1 module, home of Status, WatchEvent, DeleteOptions, ObjectMeta, Time.
pub const META_V1: &str = "apimachinery.pkg.apis.meta.v1";

/// A field with its resolved JSON name.
#[derive(Debug)]
pub struct FieldInfo {
    pub field: &'static Field,
    pub json: String,
}

/// A message with lookups by tag and by JSON name.
#[derive(Debug)]
pub struct MessageInfo {
    pub fields: Vec<FieldInfo>,
    by_tag: HashMap<u32, usize>,
    by_json: HashMap<String, usize>,
}

impl MessageInfo {
    pub fn by_tag(&self, tag: u32) -> Option<&FieldInfo> {
        self.by_tag.get(&tag).map(|i| &self.fields[*i])
    }

    pub fn by_json(&self, name: &str) -> Option<&FieldInfo> {
        self.by_json.get(name).map(|i| &self.fields[*i])
    }
}

/// Every message of the crate, ready for the codec.
#[derive(Debug)]
pub struct Table {
    messages: HashMap<&'static str, MessageInfo>,
    /// apiVersion -> module (`apps/v1` -> `api.apps.v1`).
    modules: HashMap<&'static str, String>,
    /// (apiVersion, kind) -> message.
    resources: HashMap<(&'static str, &'static str), &'static str>,
}

fn norm(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, '_' | '-' | '$'))
        .flat_map(char::to_lowercase)
        .collect()
}

fn lower_camel(s: &str) -> String {
    let mut out = String::new();
    let mut up = false;
    for c in s.chars() {
        if c == '_' {
            up = true;
        } else if up {
            out.extend(c.to_uppercase());
            up = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// `api.core.v1.Pod` -> `io.k8s.api.core.v1.Pod`;
/// `apiextensions_apiserver.pkg...` -> `io.k8s.apiextensions-apiserver.pkg...`.
fn definition_name(message: &str) -> String {
    let (first, rest) = message.split_once('.').unwrap_or((message, ""));
    format!("io.k8s.{}.{rest}", first.replace('_', "-"))
}

impl Table {
    /// Resolve JSON names against `schemas` (lowerCamelCase where a definition is missing).
    pub fn new(schemas: Option<&Schemas>) -> Self {
        // k8s-pb spells some type names in Rust case (`JsonSchemaProps` for `JSONSchemaProps`)
        let defs: HashMap<String, &String> = schemas
            .map(|s| s.def_names().map(|d| (d.to_lowercase(), d)).collect())
            .unwrap_or_default();
        let mut messages = HashMap::new();
        for m in generated::MESSAGES {
            let def = defs.get(&definition_name(m.name).to_lowercase());
            let props: Vec<String> = schemas
                .zip(def)
                .and_then(|(s, d)| s.def(d))
                .and_then(|d| d.get("properties"))
                .and_then(|p| p.as_object())
                .map(|p| p.keys().cloned().collect())
                .unwrap_or_default();
            let fields: Vec<FieldInfo> = m
                .fields
                .iter()
                .map(|f| {
                    let n = norm(f.rust);
                    let json = props
                        .iter()
                        .find(|p| norm(p) == n)
                        .cloned()
                        .unwrap_or_else(|| lower_camel(f.rust));
                    FieldInfo { field: f, json }
                })
                .collect();
            let by_tag = fields.iter().enumerate().map(|(i, f)| (f.field.tag, i)).collect();
            let by_json = fields.iter().enumerate().map(|(i, f)| (f.json.clone(), i)).collect();
            messages.insert(
                m.name,
                MessageInfo {
                    fields,
                    by_tag,
                    by_json,
                },
            );
        }
        let mut modules = HashMap::new();
        let mut resources = HashMap::new();
        for (av, kind, msg) in generated::RESOURCES {
            resources.insert((*av, *kind), *msg);
            let module = msg.rsplit_once('.').map(|(m, _)| m.to_string()).unwrap_or_default();
            modules.insert(*av, module);
        }
        Table {
            messages,
            modules,
            resources,
        }
    }

    /// A message by dotted name.
    pub fn message(&self, name: &str) -> Option<&MessageInfo> {
        self.messages.get(name)
    }

    /// The message name of `apiVersion`/`kind`, if the crate has one.
    pub fn message_for(&self, api_version: &str, kind: &str) -> Option<&'static str> {
        if let Some(m) = self.resources.get(&(api_version, kind)) {
            return Some(*m);
        }
        let candidates = [
            self.modules.get(api_version).map(|m| format!("{m}.{kind}")),
            Some(format!("{META_V1}.{kind}")),
        ];
        candidates
            .into_iter()
            .flatten()
            .find_map(|c| self.messages.get_key_value(c.as_str()).map(|(k, _)| *k))
    }

    /// Does the crate define `apiVersion`/`kind` as a resource (a built-in kind)?
    pub fn is_builtin(&self, api_version: &str, kind: &str) -> bool {
        self.resources.contains_key(&(api_version, kind))
    }
}
