//! Output expressions embedded in inputs: what they reference and how they resolve.

use super::*;

/// An expression over other resources' outputs, as embedded in desired inputs.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputExpr {
    /// The value at `path` of `address`'s outputs; path `$id` is the resource's id.
    Ref { address: Address, path: String },
    /// `transform` (an index into the stack's transform table) applied to `of`.
    Map { transform: usize, of: Box<OutputExpr> },
    /// An array of the values of several expressions.
    All(Vec<OutputExpr>),
    /// A value already known when the program ran.
    Known(Value),
}

impl OutputExpr {
    /// Embeds the expression in a value. A plain reference, by far the most common, takes
    /// the one-string form `"\u{0}spar:ref:ADDRESS#PATH"` (one allocation of about 50 bytes,
    /// where an object took a tree leaf and six strings, about 850); `#` cannot occur in an
    /// address, so the first one ends it. Any other expression is `{"$spar":"output","expr":E}`.
    pub fn to_value(&self) -> Value {
        match self {
            OutputExpr::Ref { address, path } => Value::String(format!("{REF_PREFIX}{address}#{path}")),
            other => {
                let mut m = Map::new();
                m.insert(MARKER.into(), "output".into());
                m.insert(
                    "expr".into(),
                    serde_json::to_value(other).expect("an output expression serializes"),
                );
                Value::Object(m)
            }
        }
    }

    /// Reads an embedded expression back.
    pub fn from_marker(v: &Value) -> Option<OutputExpr> {
        if let Value::String(s) = v {
            let (address, path) = s.strip_prefix(REF_PREFIX)?.split_once('#')?;
            return Some(OutputExpr::Ref {
                address: address.parse().ok()?,
                path: path.to_string(),
            });
        }
        if marker(v) != Some("output") {
            return None;
        }
        serde::Deserialize::deserialize(v.get("expr")?).ok()
    }

    pub fn collect_refs(&self, out: &mut Vec<Address>) {
        match self {
            OutputExpr::Ref { address, .. } => out.push(address.clone()),
            OutputExpr::Map { of, .. } => of.collect_refs(out),
            OutputExpr::All(items) => items.iter().for_each(|e| e.collect_refs(out)),
            OutputExpr::Known(_) => {}
        }
    }
}

/// Collects every resource that `v`'s output references point at.
pub fn collect_refs(v: &Value, out: &mut Vec<Address>) {
    // Markers first: a plain reference is a string.
    if let Some(e) = OutputExpr::from_marker(v) {
        return e.collect_refs(out);
    }
    match v {
        Value::Object(m) => m.values().for_each(|x| collect_refs(x, out)),
        Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
        _ => {}
    }
}

/// What an output reference resolves to.
pub enum Resolved {
    Known(Value),
    Unknown,
}

/// Why an output expression could not be evaluated.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("output `{path}` of `{address}` does not exist")]
    MissingOutput { address: Address, path: String },
    #[error("transform #{0} of an output failed: {1}")]
    Transform(usize, String),
    #[error("transform #{0} is not defined by this program")]
    NoSuchTransform(usize),
}

/// A transform applied to output values at apply time (`Output::map`).
pub type Transform = std::sync::Arc<dyn Fn(Value) -> Result<Value, String> + Send + Sync>;

/// Replaces every output reference in `v` by its value, or by an unknown marker when the
/// value is not known yet. `lookup` answers single references.
pub fn resolve(
    v: &Value,
    lookup: &dyn Fn(&Address, &str) -> Result<Resolved, ResolveError>,
    transforms: &[Transform],
) -> Result<Value, ResolveError> {
    // Markers first: a plain reference is a string.
    if let Some(e) = OutputExpr::from_marker(v) {
        return Ok(match eval(&e, lookup, transforms)? {
            Resolved::Known(x) => x,
            Resolved::Unknown => unknown(),
        });
    }
    match v {
        Value::Object(m) => {
            let mut out = Map::with_capacity(m.len());
            for (k, x) in m {
                out.insert(k.clone(), resolve(x, lookup, transforms)?);
            }
            Ok(Value::Object(out))
        }
        Value::Array(a) => a
            .iter()
            .map(|x| resolve(x, lookup, transforms))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        other => Ok(other.clone()),
    }
}

fn eval(
    e: &OutputExpr,
    lookup: &dyn Fn(&Address, &str) -> Result<Resolved, ResolveError>,
    transforms: &[Transform],
) -> Result<Resolved, ResolveError> {
    match e {
        OutputExpr::Known(v) => Ok(Resolved::Known(v.clone())),
        OutputExpr::Ref { address, path } => lookup(address, path),
        OutputExpr::All(items) => {
            let mut vals = Vec::with_capacity(items.len());
            for item in items {
                match eval(item, lookup, transforms)? {
                    Resolved::Known(v) => vals.push(v),
                    Resolved::Unknown => return Ok(Resolved::Unknown),
                }
            }
            Ok(Resolved::Known(Value::Array(vals)))
        }
        OutputExpr::Map { transform, of } => {
            let f = transforms
                .get(*transform)
                .ok_or(ResolveError::NoSuchTransform(*transform))?;
            match eval(of, lookup, transforms)? {
                Resolved::Unknown => Ok(Resolved::Unknown),
                Resolved::Known(v) => {
                    let was_secret = contains_secret(&v);
                    // A transform's error may quote its input.
                    let out = f(strip_secrets(&v))
                        .map_err(|m| ResolveError::Transform(*transform, redact_secrets_in(&m, &v)))?;
                    Ok(Resolved::Known(if was_secret { secret(out) } else { out }))
                }
            }
        }
    }
}
