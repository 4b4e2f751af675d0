//! Custom resource values as CEL sees them in `x-kubernetes-validations` rules.
//!
//! Owns [`to_cel`]: a JSON value plus the schema node it sits at, turned into a `cel` crate
//! value the way k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel/values.go and
//! model/schemas.go type it.
//!
//! Rules kept here:
//! - Objects with `properties` are structs: each property is a field under its escaped CEL
//!   name (k8s.io/apiserver/pkg/cel/escaping.go: a CEL keyword `k` becomes `__k__`; `__`,
//!   `.`, `-`, `/` become `__underscores__`, `__dot__`, `__dash__`, `__slash__`; a name with
//!   any other character outside `[A-Za-z0-9_]` is not visible to rules). Objects with
//!   `additionalProperties` are maps keyed by the raw keys.
//! - Strings of `format: date-time`/`date` are timestamps, of `format: duration` durations,
//!   of `format: byte` bytes (base64-decoded); a value that does not parse stays a string.
//! - `type: number` values are doubles even when written as integers; integers are ints.
//! - At a resource root (the object, or an `x-kubernetes-embedded-resource`) `metadata`
//!   shows only `name` and `generateName` (model.WithTypeAndObjectMeta).
//! - Where no schema is known (preserve-unknown-fields) values are converted as JSON.

use cel::Value as Cel;
use cel::objects::{Key, Map};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// CEL reserved words that cannot be field names (escaping.go).
const RESERVED: &[&str] = &[
    "true",
    "false",
    "null",
    "in",
    "as",
    "break",
    "const",
    "continue",
    "else",
    "for",
    "function",
    "if",
    "import",
    "let",
    "loop",
    "package",
    "namespace",
    "return",
    "var",
    "void",
    "while",
];

/// A property name as a CEL field name, or None when CEL cannot see it.
pub fn escape(name: &str) -> Option<String> {
    if RESERVED.contains(&name) {
        return Some(format!("__{name}__"));
    }
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(c) = rest.chars().next() {
        if rest.starts_with("__") {
            out.push_str("__underscores__");
            rest = &rest[2..];
            continue;
        }
        match c {
            '.' => out.push_str("__dot__"),
            '-' => out.push_str("__dash__"),
            '/' => out.push_str("__slash__"),
            c if c.is_ascii_alphanumeric() || c == '_' => out.push(c),
            _ => return None,
        }
        rest = &rest[c.len_utf8()..];
    }
    Some(out)
}

fn string(s: &str) -> Cel {
    Cel::String(Arc::new(s.to_string()))
}

fn map(entries: HashMap<Key, Cel>) -> Cel {
    Cel::Map(Map { map: Arc::new(entries) })
}

fn format_of(schema: Option<&Value>) -> &str {
    schema
        .and_then(|s| s.get("format"))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn is_type(schema: Option<&Value>, t: &str) -> bool {
    schema.and_then(|s| s.get("type")).and_then(Value::as_str) == Some(t)
}

fn typed_string(s: &str, schema: Option<&Value>) -> Cel {
    match format_of(schema) {
        "date-time" => chrono::DateTime::parse_from_rfc3339(s)
            .map(Cel::Timestamp)
            .unwrap_or_else(|_| string(s)),
        "date" => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|dt| Cel::Timestamp(dt.and_utc().fixed_offset()))
            .unwrap_or_else(|| string(s)),
        "duration" => parse_go_duration(s).map(Cel::Duration).unwrap_or_else(|| string(s)),
        "byte" => decode_base64(s)
            .map(|b| Cel::Bytes(Arc::new(b)))
            .unwrap_or_else(|| string(s)),
        _ => string(s),
    }
}

/// A Go `time.ParseDuration` string (`1h30m`, `-1.5s`, `300ms`).
fn parse_go_duration(s: &str) -> Option<chrono::Duration> {
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Some(chrono::Duration::zero());
    }
    if rest.is_empty() {
        return None;
    }
    let mut nanos: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        if num_len == 0 {
            return None;
        }
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        nanos += n * scale;
    }
    let d = chrono::Duration::nanoseconds(nanos as i64);
    Some(if neg { -d } else { d })
}

fn decode_base64(s: &str) -> Option<Vec<u8>> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = vec![];
    let mut buf = 0u32;
    let mut bits = 0;
    for c in s.trim_end_matches('=').bytes() {
        let v = ALPHABET.iter().position(|a| *a == c)? as u32;
        buf = (buf << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
            buf &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// `value` at schema node `schema` (None: unknown) as a CEL value; `root` marks a resource root.
pub fn to_cel(value: &Value, schema: Option<&Value>, root: bool) -> Cel {
    match value {
        Value::Null => Cel::Null,
        Value::Bool(b) => Cel::Bool(*b),
        Value::Number(n) => {
            if is_type(schema, "number") {
                Cel::Float(n.as_f64().unwrap_or_default())
            } else if let Some(i) = n.as_i64() {
                Cel::Int(i)
            } else if let Some(u) = n.as_u64() {
                Cel::UInt(u)
            } else {
                Cel::Float(n.as_f64().unwrap_or_default())
            }
        }
        Value::String(s) => typed_string(s, schema),
        Value::Array(items) => {
            let item_schema = schema.and_then(|s| s.get("items"));
            Cel::List(Arc::new(items.iter().map(|v| to_cel(v, item_schema, false)).collect()))
        }
        Value::Object(m) => {
            let props = schema.and_then(|s| s.get("properties")).and_then(Value::as_object);
            let additional = schema
                .and_then(|s| s.get("additionalProperties"))
                .filter(|a| a.is_object());
            let mut out = HashMap::with_capacity(m.len());
            for (k, v) in m {
                if root && k == "metadata" {
                    let mut meta = HashMap::new();
                    for f in ["name", "generateName"] {
                        if let Some(Value::String(s)) = v.get(f) {
                            meta.insert(Key::String(Arc::new(f.to_string())), string(s));
                        }
                    }
                    out.insert(Key::String(Arc::new(k.clone())), map(meta));
                    continue;
                }
                match (props.and_then(|p| p.get(k)), additional) {
                    (Some(ps), _) => {
                        let Some(name) = escape(k) else { continue };
                        let embedded = ps.get("x-kubernetes-embedded-resource") == Some(&Value::Bool(true));
                        out.insert(Key::String(Arc::new(name)), to_cel(v, Some(ps), embedded));
                    }
                    (None, Some(ap)) => {
                        out.insert(Key::String(Arc::new(k.clone())), to_cel(v, Some(ap), false));
                    }
                    (None, None) => {
                        // root apiVersion/kind, or fields of a preserve-unknown-fields object
                        out.insert(Key::String(Arc::new(k.clone())), to_cel(v, None, false));
                    }
                }
            }
            map(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_kubernetes() {
        assert_eq!(escape("foo").as_deref(), Some("foo"));
        assert_eq!(escape("namespace").as_deref(), Some("__namespace__"));
        assert_eq!(escape("a.b-c/d").as_deref(), Some("a__dot__b__dash__c__slash__d"));
        assert_eq!(escape("a__b").as_deref(), Some("a__underscores__b"));
        assert_eq!(escape("a b"), None);
    }

    #[test]
    fn formats_type_strings() {
        let ts = to_cel(
            &Value::from("2024-05-01T10:00:00Z"),
            Some(&serde_json::json!({"type": "string", "format": "date-time"})),
            false,
        );
        assert!(matches!(ts, Cel::Timestamp(_)), "{ts:?}");
        let d = to_cel(
            &Value::from("90s"),
            Some(&serde_json::json!({"type": "string", "format": "duration"})),
            false,
        );
        assert_eq!(d, Cel::Duration(chrono::Duration::seconds(90)));
        let n = to_cel(&Value::from(3), Some(&serde_json::json!({"type": "number"})), false);
        assert_eq!(n, Cel::Float(3.0));
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("1h30m"), Some(chrono::Duration::minutes(90)));
        assert_eq!(parse_go_duration("-1.5s"), Some(chrono::Duration::milliseconds(-1500)));
        assert_eq!(parse_go_duration("10"), None);
    }
}
