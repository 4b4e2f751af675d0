//! Rust declarations of resources, written from their inputs: what `import` prints so that
//! an adopted object can be declared in the program
//! (`stack.add("vpc", ec2::Vpc::new("10.0.0.0/16").dns_hostnames(true))?;`).
//!
//! Each kind writes its own declaration next to its builder
//! ([`crate::provider::ResourceProvider::declaration`]); this module holds what they share:
//! Rust literals for strings, lists and JSON, and [`Expr`], a builder call chain.
//!
//! Rules kept here: the code names types the way [`PRELUDE`] brings them into scope
//! (`ec2::Vpc`, `iam::Role`, `kubernetes::Object`, `local::File`; Kubernetes kinds take the provider
//! handle as `&provider`); every literal reads back as exactly the value it was written from
//! (strings through Rust's own escaping, JSON through `serde_json::json!` with numbers as
//! serde_json prints them); a setter whose value is the builder's default is left out; a
//! kind answers `None` rather than print code that would declare other inputs than it was
//! given (an input its builder cannot express). A secret marker in the inputs is never
//! printed: it becomes a placeholder string (see [`json`]).

use serde_json::Value;

/// The `use` lines the declarations assume.
pub const PRELUDE: &str = "use serde_json::json;\nuse spar::aws::{ec2, eks, events, iam, sqs};\nuse spar::builtin::local;\nuse spar::kubernetes;";

/// What a secret value is printed as.
pub const SECRET_PLACEHOLDER: &str = "<secret: not printed>";

/// A Rust string literal of `s`.
pub fn string(s: &str) -> String {
    format!("{s:?}")
}

/// A Rust slice literal of strings: `&["a", "b"]`.
pub fn str_slice<S: AsRef<str>>(items: &[S]) -> String {
    let parts: Vec<String> = items.iter().map(|s| string(s.as_ref())).collect();
    format!("&[{}]", parts.join(", "))
}

/// A `Vec<Input<String>>` literal: `vec!["a".into(), "b".into()]`.
pub fn input_vec<S: AsRef<str>>(items: &[S]) -> String {
    let parts: Vec<String> = items.iter().map(|s| format!("{}.into()", string(s.as_ref()))).collect();
    format!("vec![{}]", parts.join(", "))
}

/// `serde_json::json!` source that builds `v` (multi-line for nested objects and lists).
pub fn json(v: &Value) -> String {
    let mut out = String::from("json!(");
    write_json(v, 0, &mut out);
    out.push(')');
    out
}

fn write_json(v: &Value, indent: usize, out: &mut String) {
    let pad = |n: usize| "    ".repeat(n);
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(&b.to_string()),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => out.push_str(&string(s)),
        Value::Array(a) if a.is_empty() => out.push_str("[]"),
        Value::Object(m) if m.is_empty() => out.push_str("{}"),
        Value::Object(_) if matches!(crate::value::marker(v), Some("secret" | "encrypted")) => {
            out.push_str(&string(SECRET_PLACEHOLDER))
        }
        Value::Array(a) if a.iter().all(|x| !x.is_object() && !x.is_array()) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_json(x, indent, out);
            }
            out.push(']');
        }
        Value::Array(a) => {
            out.push_str("[\n");
            for x in a {
                out.push_str(&pad(indent + 1));
                write_json(x, indent + 1, out);
                out.push_str(",\n");
            }
            out.push_str(&pad(indent));
            out.push(']');
        }
        Value::Object(m) => {
            out.push_str("{\n");
            for (k, x) in m {
                out.push_str(&pad(indent + 1));
                out.push_str(&string(k));
                out.push_str(": ");
                write_json(x, indent + 1, out);
                out.push_str(",\n");
            }
            out.push_str(&pad(indent));
            out.push('}');
        }
    }
}

/// A builder expression: a constructor call followed by setter calls.
#[derive(Debug, Clone)]
pub struct Expr(String, Option<String>);

impl Expr {
    /// `path(args...)`, such as `ec2::Vpc::new("10.0.0.0/16")`.
    pub fn new(path: &str, args: &[String]) -> Self {
        Expr(format!("{path}({})", args.join(", ")), None)
    }

    /// A `// comment` line printed before the statement (what the reader must fill in).
    pub fn with_comment(mut self, text: &str) -> Self {
        self.1 = Some(format!("// {text}"));
        self
    }

    /// Appends `.method(args...)`.
    pub fn call(mut self, method: &str, args: &[String]) -> Self {
        self.0.push_str(&format!(".{method}({})", args.join(", ")));
        self
    }

    /// Appends `.method(args...)` when `yes`.
    pub fn call_if(self, yes: bool, method: &str, args: &[String]) -> Self {
        if yes { self.call(method, args) } else { self }
    }

    /// Appends `.method("value")` when the string input `key` is set (not null).
    pub fn str_setter(self, inputs: &Value, key: &str, method: &str) -> Option<Self> {
        Some(match inputs.get(key) {
            None | Some(Value::Null) => self,
            Some(Value::String(s)) => self.call(method, &[string(s)]),
            Some(_) => return None,
        })
    }

    /// Appends `.tag("k", "v")` for each of the `tags` input's entries (in key order, as
    /// the builders store them).
    pub fn tags(self, inputs: &Value) -> Option<Self> {
        self.tags_with(inputs, "tags", "tag")
    }

    /// Appends `.method("k", "v")` for each entry of the map input `key`.
    pub fn tags_with(mut self, inputs: &Value, key: &str, method: &str) -> Option<Self> {
        match inputs.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) => {
                for (k, v) in m {
                    self = self.call(method, &[string(k), string(v.as_str()?)]);
                }
            }
            Some(_) => return None,
        }
        Some(self)
    }

    /// The expression's source.
    pub fn source(&self) -> &str {
        &self.0
    }

    /// The statement declaring it at `name`: `stack.add("name", EXPR)?;`.
    pub fn statement(self, name: &str) -> String {
        let statement = format!("stack.add({}, {})?;", string(name), self.0);
        match self.1 {
            Some(comment) => format!("{comment}\n{statement}"),
            None => statement,
        }
    }
}

/// The string input `key` (`None` when absent, null or not a string).
pub fn str_at<'a>(inputs: &'a Value, key: &str) -> Option<&'a str> {
    inputs.get(key).and_then(Value::as_str)
}

/// The list-of-strings input `key` (an absent or null one is empty; `None` when it holds
/// anything but strings).
pub fn strs_at<'a>(inputs: &'a Value, key: &str) -> Option<Vec<&'a str>> {
    match inputs.get(key) {
        None | Some(Value::Null) => Some(Vec::new()),
        Some(Value::Array(a)) => a.iter().map(Value::as_str).collect(),
        Some(_) => None,
    }
}

/// The boolean input `key`, or `default` when absent.
pub fn bool_at(inputs: &Value, key: &str, default: bool) -> Option<bool> {
    match inputs.get(key) {
        None | Some(Value::Null) => Some(default),
        Some(v) => v.as_bool(),
    }
}

/// The integer input `key` (`None` when absent, null or not an integer).
pub fn int_at(inputs: &Value, key: &str) -> Option<i64> {
    inputs.get(key).and_then(Value::as_i64)
}

/// True when `inputs` is an object whose keys are all among `known`: a kind refuses to
/// declare inputs its builder has no setter for.
pub fn only_keys(inputs: &Value, known: &[&str]) -> bool {
    inputs
        .as_object()
        .is_some_and(|m| m.keys().all(|k| known.contains(&k.as_str())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn literals_escape_what_rust_needs() {
        assert_eq!(string("a\"b\\c\n\u{1}"), r#""a\"b\\c\n\u{1}""#);
        assert_eq!(str_slice(&["x", "y"]), r#"&["x", "y"]"#);
        assert_eq!(input_vec(&["x"]), r#"vec!["x".into()]"#);
        assert_eq!(
            json(&json!({"a": [1, 2.5, "s"], "b": {}, "c": [{"d": null}]})),
            "json!({\n    \"a\": [1, 2.5, \"s\"],\n    \"b\": {},\n    \"c\": [\n        {\n            \"d\": null,\n        },\n    ],\n})"
        );
    }

    #[test]
    fn secrets_are_never_printed() {
        let v = json!({"k": {"$spar": "secret", "value": "hunter2"}});
        let out = json(&v);
        assert!(!out.contains("hunter2"), "{out}");
        assert!(out.contains(SECRET_PLACEHOLDER), "{out}");
    }
}
