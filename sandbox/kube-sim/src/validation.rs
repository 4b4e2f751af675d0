//! Validation of incoming objects against their schemas, and of names and labels.
//!
//! Owns running a kind's `jsonschema` validator (the official strict schema for built-ins, the
//! CRD's `openAPIV3Schema` for custom resources, the official ObjectMeta schema for every
//! `metadata`), sorting what it finds into unknown fields, wrongly typed fields and semantic
//! errors, and answering each the way the real apiserver does:
//!
//! - Unknown field, create/update/patch: with `fieldValidation=Strict` 400 BadRequest
//!   `strict decoding error: unknown field "spec.foo"`; with `Warn` (the server default) the
//!   field is dropped and a `Warning` header names it; with `Ignore` it is dropped silently.
//! - Unknown or wrongly typed field in a server-side apply configuration: 400 BadRequest
//!   `failed to create typed patch object (...): .spec.foo: field not declared in schema`
//!   (the real server answers 500 here, kubernetes#139253; 400 is what it means).
//! - Wrongly typed field of a built-in kind: 400 BadRequest, Go decoding wording
//!   (`json: cannot unmarshal string into Go struct field spec.replicas of type int32`).
//! - Wrongly typed field of a custom resource, missing required field, value not in an enum,
//!   pattern/range violations, bad names and labels: 422 Invalid with one cause per field.

use crate::error::{ApiError, Cause};
use crate::schema::TypeNode;
use jsonschema::error::ValidationErrorKind;
use serde_json::Value;
use std::sync::Arc;

/// `fieldValidation` query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Directive {
    Strict,
    Warn,
    Ignore,
}

impl Directive {
    pub fn parse(s: Option<&str>) -> Result<Self, ApiError> {
        match s {
            None | Some("") | Some("Warn") => Ok(Directive::Warn),
            Some("Strict") => Ok(Directive::Strict),
            Some("Ignore") => Ok(Directive::Ignore),
            Some(other) => Err(ApiError::bad_request(format!(
                "fieldValidation: Unsupported value: \"{other}\": supported values: \"Ignore\", \"Strict\", \"Warn\""
            ))),
        }
    }
}

/// What a kind validates with.
pub struct Validators<'a> {
    /// The whole object (metadata excluded for custom resources).
    pub main: Arc<jsonschema::Validator>,
    /// ObjectMeta, for custom resources.
    pub meta: Option<Arc<jsonschema::Validator>>,
    /// Type information (for Go type names in decode errors).
    pub types: TypeNode<'a>,
    pub custom: bool,
    pub group: String,
    pub version: String,
    pub kind: String,
}

/// One JSON pointer segment resolved against the instance.
#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Key(String),
    Index(usize),
}

#[derive(Debug, Default)]
struct Problems {
    unknown: Vec<Vec<Seg>>,
    /// (path, expected description, actual value)
    types: Vec<(Vec<Seg>, Value)>,
    invalid: Vec<Cause>,
}

fn segs(pointer: &str, instance: &Value) -> Vec<Seg> {
    let mut out = vec![];
    let mut cur = Some(instance);
    for raw in pointer.split('/').skip(1) {
        let s = raw.replace("~1", "/").replace("~0", "~");
        match cur {
            Some(Value::Array(a)) => {
                let i = s.parse::<usize>().unwrap_or(0);
                cur = a.get(i);
                out.push(Seg::Index(i));
            }
            _ => {
                cur = cur.and_then(|c| c.get(&s));
                out.push(Seg::Key(s));
            }
        }
    }
    out
}

/// `spec.template.spec.containers[0].image`
fn dotted(path: &[Seg]) -> String {
    let mut s = String::new();
    for p in path {
        match p {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// `.spec.template.spec.containers[0].image` (structured-merge-diff spelling).
fn smd_path(path: &[Seg]) -> String {
    let d = dotted(path);
    if d.starts_with('[') { d } else { format!(".{d}") }
}

fn value_at<'v>(v: &'v Value, path: &[Seg]) -> Option<&'v Value> {
    let mut cur = v;
    for p in path {
        cur = match p {
            Seg::Key(k) => cur.get(k)?,
            Seg::Index(i) => cur.get(*i)?,
        };
    }
    Some(cur)
}

fn type_at<'a>(t: TypeNode<'a>, path: &[Seg]) -> TypeNode<'a> {
    path.iter().fold(t, |t, p| match p {
        Seg::Key(k) => t.field(k),
        Seg::Index(_) => t.item(),
    })
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn go_value(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

fn collect(validator: &jsonschema::Validator, instance: &Value, prefix: &[Seg], out: &mut Problems) {
    for err in validator.iter_errors(instance) {
        let mut path = prefix.to_vec();
        path.extend(segs(err.instance_path().as_str(), instance));
        let here = value_at(instance, &path[prefix.len()..])
            .cloned()
            .unwrap_or(Value::Null);
        match err.kind() {
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                for u in unexpected {
                    let mut p = path.clone();
                    p.push(Seg::Key(u.clone()));
                    out.unknown.push(p);
                }
            }
            ValidationErrorKind::Type { .. }
            | ValidationErrorKind::OneOfNotValid { .. }
            | ValidationErrorKind::AnyOf { .. } => {
                out.types.push((path, here));
            }
            ValidationErrorKind::Required { property } => {
                let mut p = path.clone();
                p.push(Seg::Key(property.as_str().unwrap_or_default().to_string()));
                out.invalid.push(Cause {
                    reason: "FieldValueRequired".into(),
                    message: "Required value".into(),
                    field: dotted(&p),
                });
            }
            ValidationErrorKind::Enum { options } => {
                let supported: Vec<String> = options
                    .as_array()
                    .map(|a| a.iter().map(go_value).collect())
                    .unwrap_or_default();
                out.invalid.push(Cause {
                    reason: "FieldValueNotSupported".into(),
                    message: format!(
                        "Unsupported value: {}: supported values: {}",
                        go_value(&here),
                        supported.join(", ")
                    ),
                    field: dotted(&path),
                });
            }
            _ => {
                let field = dotted(&path);
                let what = err.to_string();
                out.invalid.push(Cause {
                    reason: "FieldValueInvalid".into(),
                    message: format!(
                        "Invalid value: {}: {} in body {}",
                        go_value(&here),
                        field,
                        strip_instance(&what, &here)
                    ),
                    field,
                });
            }
        }
    }
}

/// jsonschema messages start with the instance; keep the rest.
fn strip_instance(msg: &str, instance: &Value) -> String {
    let rendered = instance.to_string();
    msg.strip_prefix(&rendered)
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| msg.to_string())
}

fn run(v: &Validators<'_>, obj: &Value) -> Problems {
    let mut p = Problems::default();
    collect(&v.main, obj, &[], &mut p);
    if let (Some(meta), Some(m)) = (&v.meta, obj.get("metadata")) {
        collect(meta, m, &[Seg::Key("metadata".into())], &mut p);
    }
    p
}

fn remove_at(obj: &mut Value, path: &[Seg]) {
    let Some((last, parent)) = path.split_last() else {
        return;
    };
    let mut cur = obj;
    for p in parent {
        let next = match p {
            Seg::Key(k) => cur.get_mut(k),
            Seg::Index(i) => cur.get_mut(*i),
        };
        match next {
            Some(n) => cur = n,
            None => return,
        }
    }
    if let (Seg::Key(k), Some(m)) = (last, cur.as_object_mut()) {
        m.remove(k);
    }
}

/// What a write is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A whole object (create, update, result of a patch or apply).
    Object,
    /// A server-side apply configuration (partial: required fields are not checked).
    ApplyConfig,
}

/// Validate `obj` (possibly dropping unknown fields per `directive`); returns warnings.
pub fn check(
    v: &Validators<'_>,
    obj: &mut Value,
    directive: Directive,
    mode: Mode,
    name: &str,
    namespace: &str,
) -> Result<Vec<String>, ApiError> {
    let mut warnings = vec![];
    let mut problems = run(v, obj);
    let gvk = format!(
        "{}, Kind={}",
        if v.group.is_empty() {
            format!("/{}", v.version)
        } else {
            format!("{}/{}", v.group, v.version)
        },
        v.kind
    );
    let nn = if namespace.is_empty() {
        name.to_string()
    } else {
        format!("{namespace}/{name}")
    };
    if !problems.unknown.is_empty() {
        problems.unknown.sort_by_key(|p| dotted(p));
        problems.unknown.dedup();
        if mode == Mode::ApplyConfig {
            return Err(ApiError::bad_request(format!(
                "failed to create typed patch object ({gvk} {nn}): {}: field not declared in schema",
                smd_path(&problems.unknown[0])
            )));
        }
        let named: Vec<String> = problems
            .unknown
            .iter()
            .map(|p| format!("unknown field \"{}\"", dotted(p)))
            .collect();
        match directive {
            Directive::Strict => {
                let msg = format!("strict decoding error: {}", named.join(", "));
                return Err(ApiError::bad_request(if v.custom {
                    msg
                } else {
                    format!(
                        "{} in version \"{}\" cannot be handled as a {}: {}",
                        v.kind, v.version, v.kind, msg
                    )
                }));
            }
            Directive::Warn => warnings.extend(named),
            Directive::Ignore => {}
        }
        for p in &problems.unknown {
            remove_at(obj, p);
        }
        problems = run(v, obj);
    }
    if let Some((path, actual)) = problems.types.first() {
        let t = type_at(v.types, path);
        if mode == Mode::ApplyConfig {
            let expected = match t.go_type().as_str() {
                "int32" | "int64" | "float64" => "numeric (int or float)".to_string(),
                "bool" => "boolean".to_string(),
                "[]" => "list".to_string(),
                other => other.to_string(),
            };
            return Err(ApiError::bad_request(format!(
                "failed to create typed patch object ({gvk} {nn}): {}: expected {expected}, got {}",
                smd_path(path),
                json_type(actual)
            )));
        }
        if !v.custom {
            let go = match json_type(actual) {
                "integer" | "number" => "number",
                "boolean" => "bool",
                other => other,
            };
            return Err(ApiError::bad_request(format!(
                "{} in version \"{}\" cannot be handled as a {}: json: cannot unmarshal {go} into Go struct field {} of type {}",
                v.kind,
                v.version,
                v.kind,
                dotted(path),
                t.go_type()
            )));
        }
        let causes = problems
            .types
            .iter()
            .map(|(path, actual)| {
                let want = type_at(v.types, path)
                    .raw()
                    .and_then(|n| n.get("type"))
                    .map(|t| match t {
                        Value::String(s) => s.clone(),
                        Value::Array(a) => a
                            .iter()
                            .filter_map(Value::as_str)
                            .filter(|s| *s != "null")
                            .collect::<Vec<_>>()
                            .join("/"),
                        _ => "unknown".into(),
                    })
                    .unwrap_or_else(|| "integer/string".into());
                Cause {
                    reason: "FieldValueTypeInvalid".into(),
                    message: format!(
                        "Invalid value: {}: {} in body must be of type {want}: \"{}\"",
                        go_value(actual),
                        dotted(path),
                        json_type(actual)
                    ),
                    field: dotted(path),
                }
            })
            .collect();
        return Err(ApiError::invalid(&v.group, &v.kind, name, causes));
    }
    if mode == Mode::Object && !problems.invalid.is_empty() {
        return Err(ApiError::invalid(&v.group, &v.kind, name, problems.invalid));
    }
    Ok(warnings)
}

/// How a kind's names are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    Subdomain,
    Label,
    Dns1035,
    PathSegment,
}

impl NameRule {
    pub fn for_kind(group: &str, kind: &str) -> Self {
        match (group, kind) {
            ("", "Namespace") => NameRule::Label,
            ("", "Service") => NameRule::Dns1035,
            ("rbac.authorization.k8s.io", _) => NameRule::PathSegment,
            _ => NameRule::Subdomain,
        }
    }
}

fn is_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

fn is_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_label)
}

/// Message for a bad name, or None.
pub fn check_name(rule: NameRule, name: &str) -> Option<String> {
    let ok = match rule {
        NameRule::Subdomain => is_subdomain(name),
        NameRule::Label => is_label(name),
        NameRule::Dns1035 => is_label(name) && name.as_bytes()[0].is_ascii_lowercase(),
        NameRule::PathSegment => !(name == "." || name == ".." || name.contains('/') || name.contains('%')),
    };
    if ok {
        return None;
    }
    Some(match rule {
        NameRule::Subdomain => format!(
            "Invalid value: {name:?}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        ),
        NameRule::Label => format!(
            "Invalid value: {name:?}: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
        ),
        NameRule::Dns1035 => format!(
            "Invalid value: {name:?}: a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
        ),
        NameRule::PathSegment => {
            format!("Invalid value: {name:?}: may not contain '/' or '%' and may not be '.' or '..'")
        }
    })
}

fn is_label_value(v: &str) -> bool {
    let b = v.as_bytes();
    b.is_empty()
        || (b.len() <= 63
            && b.iter().all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(c))
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric())
}

fn is_qualified_name(k: &str) -> bool {
    let (prefix, name) = match k.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    prefix.is_none_or(|p| !p.is_empty() && is_subdomain(p)) && !name.is_empty() && is_label_value(name)
}

/// Semantic checks of metadata: name, labels, annotation keys. Returns causes.
pub fn check_metadata(obj: &Value, rule: NameRule) -> Vec<Cause> {
    let mut causes = vec![];
    let meta = obj.get("metadata");
    let name = meta
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    if name.is_empty() {
        causes.push(Cause {
            reason: "FieldValueRequired".into(),
            message: "Required value: name or generateName is required".into(),
            field: "metadata.name".into(),
        });
    } else if let Some(msg) = check_name(rule, name) {
        causes.push(Cause {
            reason: "FieldValueInvalid".into(),
            message: msg,
            field: "metadata.name".into(),
        });
    }
    if let Some(labels) = meta.and_then(|m| m.get("labels")).and_then(Value::as_object) {
        for (k, v) in labels {
            if !is_qualified_name(k) {
                causes.push(Cause { reason: "FieldValueInvalid".into(), message: format!("Invalid value: {k:?}: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"), field: "metadata.labels".into() });
            }
            if let Some(s) = v.as_str()
                && !is_label_value(s)
            {
                causes.push(Cause { reason: "FieldValueInvalid".into(), message: format!("Invalid value: {s:?}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"), field: "metadata.labels".into() });
            }
        }
    }
    if let Some(ann) = meta.and_then(|m| m.get("annotations")).and_then(Value::as_object) {
        for k in ann.keys() {
            if !is_qualified_name(k) {
                causes.push(Cause { reason: "FieldValueInvalid".into(), message: format!("Invalid value: {k:?}: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"), field: "metadata.annotations".into() });
            }
        }
    }
    causes
}
