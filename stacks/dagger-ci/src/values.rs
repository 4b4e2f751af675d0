//! JSON documents (Helm values, manifests) with outputs of other resources placed at paths.
//!
//! Rule kept here: outputs are serialized only when the document is, that is while the
//! stack records the resource holding it, which is where output transforms must be
//! registered (see `spar::model::output`).

use serde::ser::Error as _;
use serde::{Serialize, Serializer};
use serde_json::Value;
use spar::prelude::*;

/// A JSON document with outputs spliced in at paths.
#[derive(Debug, Clone)]
pub struct Doc {
    base: Value,
    outputs: Vec<(Vec<String>, Output<String>)>,
}

impl Doc {
    pub fn new(base: Value) -> Self {
        Doc {
            base,
            outputs: Vec::new(),
        }
    }

    /// Places `output` at `path` (object keys, created as needed, or indices of existing
    /// array elements).
    pub fn with(mut self, path: &[&str], output: Output<String>) -> Self {
        self.outputs
            .push((path.iter().map(|k| k.to_string()).collect(), output));
        self
    }

    /// The document without its outputs (what the checks read).
    pub fn base(&self) -> &Value {
        &self.base
    }

    /// Each path an output is placed at, with the resources that output comes from.
    pub fn output_sources(&self) -> Vec<(Vec<String>, Vec<String>)> {
        self.outputs
            .iter()
            .map(|(path, o)| {
                (
                    path.clone(),
                    o.sources().iter().map(|a| a.as_str().to_string()).collect(),
                )
            })
            .collect()
    }
}

/// A resource as the stack declared it: its address and its inputs exactly as serialized
/// into the graph (outputs of other resources appear as references to their addresses).
/// The checks read these, not the config the inputs were built from.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    pub address: String,
    pub inputs: Value,
}

impl Recorded {
    /// The string input at `key` (none when absent or an output of another resource).
    pub fn str(&self, key: &str) -> Option<&str> {
        self.inputs
            .get(key)
            .filter(|v| spar::value::marker(v).is_none())
            .and_then(Value::as_str)
    }

    /// Whether the input at `key` is an output of the resource at `address`.
    pub fn refers(&self, key: &str, address: &str) -> bool {
        self.inputs.get(key).is_some_and(|v| refers_to(v, address))
    }
}

/// Whether `v` is (or holds) an output of the resource at `address`.
pub fn refers_to(v: &Value, address: &str) -> bool {
    spar::model::stack::references(v).iter().any(|a| a.as_str() == address)
}

/// Declares `resource` like [`Stack::add_with`] and records its inputs in `log`. The
/// resource's inputs may reference other resources' outputs but not transform them (a
/// transformed output is only serialized while the stack records the resource).
pub fn add_recorded<R: Resource>(
    s: &mut Stack,
    name: &str,
    resource: R,
    options: ResourceOptions,
    log: &mut Vec<Recorded>,
) -> spar::Result<Handle<R>> {
    let inputs = serde_json::to_value(&resource);
    let h = s.add_with(name, resource, options)?;
    let inputs = inputs.map_err(|e| spar::Error::Inputs {
        address: h.address().clone(),
        message: format!("recording the inputs for the checks: {e}"),
    })?;
    log.push(Recorded {
        address: h.address().as_str().to_string(),
        inputs,
    });
    Ok(h)
}

impl Serialize for Doc {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut v = self.base.clone();
        for (path, o) in &self.outputs {
            let ov = serde_json::to_value(o).map_err(S::Error::custom)?;
            place(&mut v, path, ov).map_err(S::Error::custom)?;
        }
        v.serialize(s)
    }
}

/// Puts `value` at `path` in `doc`: a key of an object (created as needed), or the index
/// of an element that exists in an array (`["spec", "terms", "1", "id"]`).
fn place(doc: &mut Value, path: &[String], value: Value) -> Result<(), String> {
    let mut cur = doc;
    for (i, key) in path.iter().enumerate() {
        let last = i + 1 == path.len();
        if cur.is_array() {
            let items = cur.as_array_mut().expect("an array");
            let slot = key
                .parse::<usize>()
                .ok()
                .and_then(|n| items.get_mut(n))
                .ok_or_else(|| format!("{}: no element `{key}` in an array", path.join(".")))?;
            if last {
                *slot = value;
                return Ok(());
            }
            cur = slot;
            continue;
        }
        if !cur.is_object() {
            *cur = Value::Object(Default::default());
        }
        let obj = cur.as_object_mut().expect("made an object above");
        if last {
            obj.insert(key.clone(), value);
            return Ok(());
        }
        cur = obj
            .entry(key.clone())
            .or_insert_with(|| Value::Object(Default::default()));
    }
    Ok(())
}
