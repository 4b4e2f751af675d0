//! JSON values as the engine sees them, and the markers spar embeds in them.
//!
//! Resource inputs and outputs travel through the engine as `serde_json::Value`. A few
//! objects carry a `"$spar"` key and mean something special:
//! - `{"$spar":"output","expr":E}`: a reference to other resources' outputs, resolved at
//!   plan time when known and at apply time otherwise (`E` is an [`OutputExpr`]);
//! - `{"$spar":"secret","value":V}`: a secret value, redacted whenever shown;
//! - `{"$spar":"encrypted","ciphertext":C}`: the same secret as stored in state;
//! - `{"$spar":"unknown"}`: a value that exists only after apply (plans only).
//!
//! Rules kept here: markers are only built by the constructors below; providers never see
//! a marker (the engine strips secrets and refuses unknowns before a provider call); a
//! value computed from a secret is itself secret.

use std::fmt::Write as _;

use serde_json::{Map, Value};

use crate::address::Address;

pub(crate) const MARKER: &str = "$spar";

/// One step of a path into a JSON value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum PathSeg {
    Index(usize),
    Key(String),
}

/// A path into a JSON value, such as `spec.template.spec.containers[0].image`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Path(pub Vec<PathSeg>);

/// Text that is not a path, from [`Path::try_parse`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{text}` is not a value path ({message} at character {at}); write keys as `a.b`, indexes as `[0]`, and keys with other characters as `[\"kubernetes.io/name\"]`"
)]
pub struct PathError {
    pub text: String,
    pub at: usize,
    pub message: &'static str,
}

impl Path {
    /// Parses a path, as [`Path::try_parse`]; text that is not one (an unclosed bracket)
    /// is read the old way, split at every dot, so a literal in code never fails.
    pub fn parse(text: &str) -> Path {
        Path::try_parse(text).unwrap_or_else(|_| {
            Path(
                text.split('.')
                    .map(|s| match s.parse::<usize>() {
                        Ok(i) => PathSeg::Index(i),
                        Err(_) => PathSeg::Key(s.to_string()),
                    })
                    .collect(),
            )
        })
    }

    /// Parses the form [`Path`]'s `Display` writes, so that every path round-trips:
    /// - keys joined by dots (`tags.Name`, `spec.template`); a key is any text without `.`,
    ///   `[` or `]`, and one of digits only is an index (`containers.0` = `containers[0]`);
    /// - `[N]`, an index; `*`, any key or index (`spec.*.image`);
    /// - `["..."]`, a key written as a JSON string, for keys with dots, brackets, quotes or
    ///   nothing at all (`metadata.labels["app.kubernetes.io/name"]`,
    ///   `tags["kubernetes.io/role/elb"]`).
    ///
    /// The empty text is the empty path (the whole value).
    pub fn try_parse(text: &str) -> Result<Path, PathError> {
        let err = |at: usize, message: &'static str| PathError {
            text: text.to_string(),
            at,
            message,
        };
        let b = text.as_bytes();
        let mut segs = Vec::new();
        let mut i = 0;
        let mut expect_key = true; // at the start, or after a dot
        while i < b.len() {
            match b[i] {
                b'[' => {
                    if let Some(rest) = text.get(i + 1..)
                        && rest.starts_with('"')
                    {
                        // A JSON string: find its closing quote (skipping escapes).
                        let start = i + 1;
                        let mut j = start + 1;
                        while j < b.len() && b[j] != b'"' {
                            j += if b[j] == b'\\' { 2 } else { 1 };
                        }
                        if j >= b.len() {
                            return Err(err(start, "an unterminated string"));
                        }
                        let key: String =
                            serde_json::from_str(&text[start..=j]).map_err(|_| err(start, "a bad string"))?;
                        if b.get(j + 1) != Some(&b']') {
                            return Err(err(j + 1, "a string not followed by `]`"));
                        }
                        segs.push(PathSeg::Key(key));
                        i = j + 2;
                    } else {
                        let close = text[i..]
                            .find(']')
                            .map(|k| i + k)
                            .ok_or_else(|| err(i, "an unclosed `[`"))?;
                        let inner = &text[i + 1..close];
                        segs.push(match inner {
                            "*" => PathSeg::Key("*".into()),
                            _ => {
                                PathSeg::Index(inner.parse().map_err(|_| err(i + 1, "an index that is not a number"))?)
                            }
                        });
                        i = close + 1;
                    }
                    expect_key = false;
                }
                b'.' if !expect_key => {
                    i += 1;
                    expect_key = true;
                    if i == b.len() {
                        return Err(err(i, "nothing after a dot"));
                    }
                }
                b'.' | b']' => return Err(err(i, "an empty key")),
                _ if expect_key => {
                    let end = text[i..].find(['.', '[', ']']).map_or(b.len(), |k| i + k);
                    let key = &text[i..end];
                    segs.push(match key.parse::<usize>() {
                        Ok(n) if key.bytes().all(|c| c.is_ascii_digit()) => PathSeg::Index(n),
                        _ => PathSeg::Key(key.to_string()),
                    });
                    i = end;
                    expect_key = false;
                }
                _ => return Err(err(i, "a key not after a dot")),
            }
        }
        Ok(Path(segs))
    }

    pub fn child_key(&self, key: &str) -> Path {
        let mut p = self.clone();
        p.0.push(PathSeg::Key(key.to_string()));
        p
    }

    pub fn child_index(&self, i: usize) -> Path {
        let mut p = self.clone();
        p.0.push(PathSeg::Index(i));
        p
    }

    /// True when `self` (a pattern, `*` = any segment) is a prefix of `path`.
    pub fn is_prefix_of(&self, path: &Path) -> bool {
        self.0.len() <= path.0.len()
            && self.0.iter().zip(&path.0).all(|(pat, seg)| match (pat, seg) {
                (PathSeg::Key(k), _) if k == "*" => true,
                (PathSeg::Key(a), PathSeg::Key(b)) => a == b,
                (PathSeg::Index(a), PathSeg::Index(b)) => a == b,
                (PathSeg::Index(a), PathSeg::Key(b)) => b == &a.to_string(),
                (PathSeg::Key(_), PathSeg::Index(_)) => false,
            })
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Display for Path {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = String::new();
        for seg in &self.0 {
            match seg {
                PathSeg::Index(i) => {
                    let _ = write!(out, "[{i}]");
                }
                PathSeg::Key(k) if k == "*" || is_plain_key(k) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(k);
                }
                PathSeg::Key(k) => {
                    let _ = write!(out, "[{}]", Value::String(k.clone()));
                }
            }
        }
        f.write_str(&out)
    }
}

/// A key written bare: letters, digits, `_` and `-`, not all digits (that would read back
/// as an index).
fn is_plain_key(k: &str) -> bool {
    !k.is_empty()
        && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        && !k.bytes().all(|b| b.is_ascii_digit())
}

/// Returns the marker kind of a value (`"secret"`, `"output"`, ...), if it is one.
pub fn marker(v: &Value) -> Option<&str> {
    match v {
        Value::Object(m) => m.get(MARKER).and_then(Value::as_str),
        _ => None,
    }
}

/// Wraps a value as a secret (a no-op on a value that already is one).
pub fn secret(v: Value) -> Value {
    if marker(&v) == Some("secret") {
        return v;
    }
    let mut m = Map::new();
    m.insert(MARKER.into(), "secret".into());
    m.insert("value".into(), v);
    Value::Object(m)
}

/// The marker for a value known only after apply.
pub fn unknown() -> Value {
    let mut m = Map::new();
    m.insert(MARKER.into(), "unknown".into());
    Value::Object(m)
}

pub fn is_unknown(v: &Value) -> bool {
    marker(v) == Some("unknown")
}

/// True when any part of `v` is unknown.
pub fn contains_unknown(v: &Value) -> bool {
    any_marker(v, &|k| k == "unknown" || k == "output")
}

/// True when any part of `v` is secret.
pub fn contains_secret(v: &Value) -> bool {
    any_marker(v, &|k| k == "secret" || k == "encrypted")
}

fn any_marker(v: &Value, pred: &dyn Fn(&str) -> bool) -> bool {
    match v {
        Value::Object(m) => match m.get(MARKER).and_then(Value::as_str) {
            Some(k) => pred(k),
            None => m.values().any(|x| any_marker(x, pred)),
        },
        Value::Array(a) => a.iter().any(|x| any_marker(x, pred)),
        _ => false,
    }
}

/// Removes secret markers, leaving the plain values a provider needs.
pub fn strip_secrets(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            if marker(v) == Some("secret") {
                return strip_secrets(m.get("value").unwrap_or(&Value::Null));
            }
            Value::Object(m.iter().map(|(k, x)| (k.clone(), strip_secrets(x))).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(strip_secrets).collect()),
        other => other.clone(),
    }
}

/// Replaces every secret with a placeholder string, for display.
pub fn redact(v: &Value) -> Value {
    match v {
        Value::Object(m) => match marker(v) {
            Some("secret") | Some("encrypted") => Value::String("(sensitive value)".into()),
            Some("unknown") | Some("output") => Value::String("(known after apply)".into()),
            _ => Value::Object(m.iter().map(|(k, x)| (k.clone(), redact(x))).collect()),
        },
        Value::Array(a) => Value::Array(a.iter().map(redact).collect()),
        other => other.clone(),
    }
}

/// `message` with every secret text found in `values` replaced by `(sensitive value)`: for
/// error messages, which may quote what an operation or a transform was given. Each secret
/// leaf (a string, or a number or boolean's text) of three or more characters is replaced,
/// also in its JSON-escaped form.
pub fn redact_secrets_in(message: &str, values: &Value) -> String {
    let mut secrets = Vec::new();
    collect_secret_texts(values, false, &mut secrets);
    // Longest first, so a secret that contains another is replaced whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = message.to_string();
    for s in secrets {
        if s.len() < 3 {
            continue;
        }
        let escaped = serde_json::to_string(&s).unwrap_or_default();
        let escaped = escaped.trim_matches('"');
        for form in [s.as_str(), escaped] {
            if out.contains(form) {
                out = out.replace(form, "(sensitive value)");
            }
        }
    }
    out
}

fn collect_secret_texts(v: &Value, inside: bool, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            let inside = inside || marker(v) == Some("secret");
            for (_, x) in m.iter().filter(|(k, _)| k.as_str() != MARKER) {
                collect_secret_texts(x, inside, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_secret_texts(x, inside, out)),
        Value::String(s) if inside => out.push(s.clone()),
        Value::Number(n) if inside => out.push(n.to_string()),
        _ => {}
    }
}

/// Marks the values found at `paths` (patterns) in `v` as secret.
pub fn mark_secret_paths(v: &mut Value, paths: &[Path]) {
    for p in paths {
        mark_at(v, &p.0);
    }
}

fn mark_at(v: &mut Value, pat: &[PathSeg]) {
    let Some((first, rest)) = pat.split_first() else {
        let taken = std::mem::take(v);
        *v = secret(taken);
        return;
    };
    match (first, v) {
        (PathSeg::Key(k), Value::Object(m)) if k == "*" => m.values_mut().for_each(|x| mark_at(x, rest)),
        (PathSeg::Key(k), Value::Array(a)) if k == "*" => a.iter_mut().for_each(|x| mark_at(x, rest)),
        (PathSeg::Key(k), Value::Object(m)) => {
            if let Some(x) = m.get_mut(k) {
                mark_at(x, rest)
            }
        }
        (PathSeg::Index(i), Value::Array(a)) => {
            if let Some(x) = a.get_mut(*i) {
                mark_at(x, rest)
            }
        }
        _ => {}
    }
}

/// Wraps the parts of `new` that sit where `old` has a secret, so a value read back from a
/// live object stays secret.
pub fn copy_secret_marks(old: &Value, new: Value) -> Value {
    if marker(old) == Some("secret") {
        return secret(new);
    }
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => Value::Object(
            n.into_iter()
                .map(|(k, v)| {
                    let v = match o.get(&k) {
                        Some(ov) => copy_secret_marks(ov, v),
                        None => v,
                    };
                    (k, v)
                })
                .collect(),
        ),
        (Value::Array(o), Value::Array(n)) => Value::Array(
            n.into_iter()
                .enumerate()
                .map(|(i, v)| match o.get(i) {
                    Some(ov) => copy_secret_marks(ov, v),
                    None => v,
                })
                .collect(),
        ),
        (_, n) => n,
    }
}

/// Marks as secret every value in `outputs` equal to a secret found in `inputs`, so a
/// provider that echoes a secret input into its outputs cannot leak it.
pub fn mark_echoed_secrets(inputs: &Value, outputs: &mut Value) {
    let mut secrets: Vec<Value> = Vec::new();
    collect_secret_values(inputs, &mut secrets);
    if !secrets.is_empty() {
        wrap_equal(outputs, &secrets);
    }
}

fn collect_secret_values(v: &Value, out: &mut Vec<Value>) {
    match v {
        Value::Object(m) => {
            if marker(v) == Some("secret") {
                let plain = strip_secrets(v);
                if !matches!(plain, Value::Null | Value::Bool(_)) && plain != Value::String(String::new()) {
                    out.push(plain);
                }
            } else {
                m.values().for_each(|x| collect_secret_values(x, out));
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_secret_values(x, out)),
        _ => {}
    }
}

fn wrap_equal(v: &mut Value, secrets: &[Value]) {
    if marker(v).is_some() {
        return;
    }
    if secrets.contains(v) {
        let taken = std::mem::take(v);
        *v = secret(taken);
        return;
    }
    match v {
        Value::Object(m) => m.values_mut().for_each(|x| wrap_equal(x, secrets)),
        Value::Array(a) => a.iter_mut().for_each(|x| wrap_equal(x, secrets)),
        _ => {}
    }
}

/// The value at `path` (exact segments), if any.
pub fn get_path<'v>(v: &'v Value, path: &Path) -> Option<&'v Value> {
    let mut cur = v;
    for seg in &path.0 {
        if marker(cur) == Some("secret") {
            cur = cur.get("value")?;
        }
        cur = match (seg, cur) {
            (PathSeg::Key(k), Value::Object(m)) => m.get(k)?,
            (PathSeg::Index(i), Value::Array(a)) => a.get(*i)?,
            (PathSeg::Index(i), Value::Object(m)) => m.get(&i.to_string())?,
            _ => return None,
        };
    }
    Some(cur)
}

/// Copies the values at the `patterns` from `old` into `new` (or removes them from `new`
/// when `old` has none): how `ignore_changes` keeps a field as it is.
pub fn keep_paths(new: &mut Value, old: &Value, patterns: &[Path]) {
    for p in patterns {
        keep_at(new, Some(old), &p.0);
    }
}

fn keep_at(new: &mut Value, old: Option<&Value>, pat: &[PathSeg]) {
    let Some((first, rest)) = pat.split_first() else {
        if let Some(o) = old {
            *new = o.clone();
        }
        return;
    };
    match first {
        PathSeg::Key(k) if k == "*" => match new {
            Value::Object(m) => {
                for (key, x) in m.iter_mut() {
                    keep_at(x, old.and_then(|o| o.get(key)), rest);
                }
            }
            Value::Array(a) => {
                for (i, x) in a.iter_mut().enumerate() {
                    keep_at(x, old.and_then(|o| o.get(i)), rest);
                }
            }
            _ => {}
        },
        PathSeg::Key(k) => {
            let old_child = old.and_then(|o| o.get(k));
            if let Value::Object(m) = new {
                if rest.is_empty() {
                    match old_child {
                        Some(o) => {
                            m.insert(k.clone(), o.clone());
                        }
                        None => {
                            m.remove(k);
                        }
                    }
                } else if let Some(x) = m.get_mut(k) {
                    keep_at(x, old_child, rest);
                }
            }
        }
        PathSeg::Index(i) => {
            if let Value::Array(a) = new
                && let Some(x) = a.get_mut(*i)
            {
                keep_at(x, old.and_then(|o| o.get(*i)), rest);
            }
        }
    }
}

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
    /// the compact form `{"$spar":"output","ref":ADDRESS,"path":PATH}` (one map, not three).
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert(MARKER.into(), "output".into());
        match self {
            OutputExpr::Ref { address, path } => {
                m.insert("ref".into(), Value::String(address.as_str().to_string()));
                m.insert("path".into(), Value::String(path.clone()));
            }
            other => {
                m.insert(
                    "expr".into(),
                    serde_json::to_value(other).expect("an output expression serializes"),
                );
            }
        }
        Value::Object(m)
    }

    /// Reads an embedded expression back.
    pub fn from_marker(v: &Value) -> Option<OutputExpr> {
        if marker(v) != Some("output") {
            return None;
        }
        if let Some(address) = v.get("ref").and_then(Value::as_str) {
            return Some(OutputExpr::Ref {
                address: address.parse().ok()?,
                path: v.get("path").and_then(Value::as_str).unwrap_or_default().to_string(),
            });
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
    match v {
        Value::Object(m) => {
            if let Some(e) = OutputExpr::from_marker(v) {
                e.collect_refs(out);
            } else {
                m.values().for_each(|x| collect_refs(x, out));
            }
        }
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
    match v {
        Value::Object(m) => {
            if let Some(e) = OutputExpr::from_marker(v) {
                return Ok(match eval(&e, lookup, transforms)? {
                    Resolved::Known(x) => x,
                    Resolved::Unknown => unknown(),
                });
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(k: &str) -> PathSeg {
        PathSeg::Key(k.into())
    }

    #[test]
    fn paths_name_keys_with_dots_and_read_their_own_display() {
        let p = Path::try_parse(r#"metadata.labels["app.kubernetes.io/name"]"#).unwrap();
        assert_eq!(p.0, [key("metadata"), key("labels"), key("app.kubernetes.io/name")]);
        assert_eq!(p.to_string(), r#"metadata.labels["app.kubernetes.io/name"]"#);
        let p = Path::parse(r#"tags["kubernetes.io/role/elb"]"#);
        assert_eq!(p.0, [key("tags"), key("kubernetes.io/role/elb")]);
        // Indexes both ways; `*` both ways.
        assert_eq!(
            Path::parse("spec.containers.0.image"),
            Path::parse("spec.containers[0].image")
        );
        assert_eq!(
            Path::parse("spec.containers[0].image").to_string(),
            "spec.containers[0].image"
        );
        assert_eq!(Path::parse("spec.*.image").0[1], key("*"));
        assert_eq!(Path::parse("spec[*].image").0[1], key("*"));
        // A key of digits is written as a string, so it does not come back as an index.
        let p = Path(vec![key("data"), key("0")]);
        assert_eq!(p.to_string(), r#"data["0"]"#);
        assert_eq!(Path::parse(&p.to_string()), p);
        // Keys other than [A-Za-z0-9_-] still read bare, as before (`tags.spar:address`).
        assert_eq!(Path::parse("tags.spar:address").0[1], key("spar:address"));
        assert_eq!(Path::parse("").0, []);
        for bad in ["a.", ".a", "a..b", "a[", "a[x]", r#"a["b"#, r#"a["b"c"#, "a]b", "a[0]b"] {
            let e = Path::try_parse(bad).unwrap_err();
            assert!(
                e.to_string().starts_with(&format!("`{bad}` is not a value path")),
                "{e}"
            );
        }
    }

    /// Any key at all, or an index.
    fn seg() -> impl Strategy<Value = PathSeg> {
        prop_oneof![
            any::<usize>().prop_map(PathSeg::Index),
            ".*".prop_map(PathSeg::Key),
            "[a-z0-9./\\[\\]\"*-]{0,12}".prop_map(PathSeg::Key),
        ]
    }

    proptest! {
        #[test]
        fn every_path_reads_back_its_display(segs in proptest::collection::vec(seg(), 0..6)) {
            let p = Path(segs);
            let text = p.to_string();
            prop_assert_eq!(Path::try_parse(&text), Ok(p.clone()), "display: {}", text);
        }
    }

    #[test]
    fn secrets_are_cut_out_of_messages() {
        let v = serde_json::json!({"name": "web", "password": secret("hunter2\"x".into()), "n": secret(serde_json::json!({"pin": 48213}))});
        let m = redact_secrets_in(
            "invalid value: string \"hunter2\\\"x\" for web; pin 48213; hunter2\"x",
            &v,
        );
        assert!(!m.contains("hunter2") && !m.contains("48213"), "{m}");
        assert!(m.contains("web"), "{m}");
        assert_eq!(redact_secrets_in("nothing secret", &v), "nothing secret");
    }
    use serde_json::json;

    #[test]
    fn diff_lists_leaves() {
        let d = diff(
            &json!({"a": 1, "b": {"c": 2, "d": 3}, "e": [1, 2]}),
            &json!({"a": 1, "b": {"c": 5}, "e": [1, 2, 3], "f": true}),
        );
        let paths: Vec<String> = d.iter().map(|c| c.path.to_string()).collect();
        assert_eq!(paths, vec!["b.c", "b.d", "e", "f"]);
    }

    #[test]
    fn keep_paths_restores_old_values() {
        let mut new = json!({"tags": {"a": "2", "b": "x"}, "n": 1});
        keep_paths(&mut new, &json!({"tags": {"a": "1"}, "n": 1}), &[Path::parse("tags.a")]);
        assert_eq!(new, json!({"tags": {"a": "1", "b": "x"}, "n": 1}));
        let mut new = json!({"tags": {"a": "2"}});
        keep_paths(&mut new, &json!({}), &[Path::parse("tags")]);
        assert_eq!(new, json!({}));
    }

    #[test]
    fn secrets_survive_transforms_and_redact() {
        let t: Vec<Transform> = vec![std::sync::Arc::new(|v| Ok(json!(format!("x{}", v.as_str().unwrap()))))];
        let a: Address = "pw".parse().unwrap();
        let expr = OutputExpr::Map {
            transform: 0,
            of: Box::new(OutputExpr::Ref {
                address: a,
                path: "result".into(),
            }),
        };
        let got = resolve(
            &json!({"k": expr.to_value()}),
            &|_, _| Ok(Resolved::Known(secret(json!("s3cret")))),
            &t,
        )
        .unwrap();
        assert_eq!(strip_secrets(&got), json!({"k": "xs3cret"}));
        assert_eq!(redact(&got), json!({"k": "(sensitive value)"}));
    }

    #[test]
    fn path_display_quotes_odd_keys() {
        let p = Path::default()
            .child_key("tags")
            .child_key("karpenter.sh/discovery")
            .child_index(0);
        assert_eq!(p.to_string(), "tags[\"karpenter.sh/discovery\"][0]");
    }
}
