//! The leaf properties that differ between two values.

use super::*;

/// One changed property between two values.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PropertyChange {
    pub path: Path,
    /// Absent when the property is added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    /// Absent when the property is removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
}

/// Lists the leaf properties that differ between `old` and `new`. Markers (secrets,
/// unknowns) are compared as whole values; arrays of different lengths as a whole.
pub fn diff(old: &Value, new: &Value) -> Vec<PropertyChange> {
    let mut out = Vec::new();
    diff_into(&Path::default(), Some(old), Some(new), &mut out);
    out
}

fn diff_into(path: &Path, old: Option<&Value>, new: Option<&Value>, out: &mut Vec<PropertyChange>) {
    match (old, new) {
        (Some(o), Some(n)) if o == n => {}
        (Some(Value::Object(a)), Some(Value::Object(b))) if !a.contains_key(MARKER) && !b.contains_key(MARKER) => {
            for (k, av) in a {
                diff_into(&path.child_key(k), Some(av), b.get(k), out);
            }
            for (k, bv) in b {
                if !a.contains_key(k) {
                    diff_into(&path.child_key(k), None, Some(bv), out);
                }
            }
        }
        (Some(Value::Array(a)), Some(Value::Array(b))) if a.len() == b.len() => {
            for (i, (av, bv)) in a.iter().zip(b).enumerate() {
                diff_into(&path.child_index(i), Some(av), Some(bv), out);
            }
        }
        (Some(Value::Null), None) | (None, Some(Value::Null)) => {}
        (o, n) => out.push(PropertyChange {
            path: path.clone(),
            before: o.cloned(),
            after: n.cloned(),
        }),
    }
}
