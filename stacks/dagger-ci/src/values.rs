//! JSON documents (Helm values, manifests) with outputs of other resources placed at paths.
//!
//! Rule kept here: outputs are serialized only when the document is, that is while the
//! stack records the resource holding it, which is where output transforms must be
//! registered (see `spar::model::output`).

use serde::ser::Error as _;
use serde::{Serialize, Serializer};
use serde_json::Value;
use spar::Output;

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

    /// Places `output` at `path` (object keys; created as needed).
    pub fn with(mut self, path: &[&str], output: Output<String>) -> Self {
        self.outputs
            .push((path.iter().map(|k| k.to_string()).collect(), output));
        self
    }

    /// The document without its outputs (what the checks read).
    pub fn base(&self) -> &Value {
        &self.base
    }
}

impl Serialize for Doc {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut v = self.base.clone();
        for (path, o) in &self.outputs {
            let ov = serde_json::to_value(o).map_err(S::Error::custom)?;
            let mut cur = &mut v;
            for (i, key) in path.iter().enumerate() {
                if !cur.is_object() {
                    *cur = Value::Object(Default::default());
                }
                let obj = cur.as_object_mut().expect("made an object above");
                if i + 1 == path.len() {
                    obj.insert(key.clone(), ov.clone());
                    break;
                }
                cur = obj
                    .entry(key.clone())
                    .or_insert_with(|| Value::Object(Default::default()));
            }
        }
        v.serialize(s)
    }
}
