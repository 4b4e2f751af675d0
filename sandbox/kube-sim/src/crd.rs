//! CustomResourceDefinitions: checking them, turning them into served types, and the
//! validation and defaulting of their custom resources.
//!
//! Owns [`CrSchema`] (a CRD version's `openAPIV3Schema` plus its compiled validator),
//! [`check_crd`] (the apiserver's CRD rules that matter to clients), [`types_for`] (the
//! [`ResourceType`]s an established CRD serves), the `status` written on establishment, and
//! structural defaulting of custom resources.
//!
//! Rules kept here:
//! - `metadata.name` must be `<plural>.<group>`, the group must contain a dot, the scope is
//!   `Namespaced` or `Cluster`, exactly one version is the storage version and every version has
//!   a structural schema whose root is `type: object`.
//! - Custom resources are validated against their version's schema as draft-4 JSON schema:
//!   `nullable` allows null, `x-kubernetes-int-or-string` allows integer or string, and an object
//!   with `properties` rejects other fields unless it has `x-kubernetes-preserve-unknown-fields`
//!   (those are the fields a real server prunes; the validation module drops or rejects them per
//!   `fieldValidation`). `metadata` is checked against the built-in ObjectMeta schema.
//! - CEL rules (`x-kubernetes-validations`) are compiled by [`check_crd`] (a rule the
//!   simulator cannot compile or evaluate refuses the CRD) and again, once per CRD
//!   generation, by [`types_for`], which keeps them in the served type's [`CrSchema`]; the
//!   `cel_rules` module evaluates them on writes.
//! - `default`s of the schema are applied to custom resources on every write.

use crate::cel_rules::Rules;
use crate::error::Cause;
use crate::kinds::{GenerationRule, ResourceType, SchemaSource};
use crate::schema::TypeNode;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// One CRD version's schema.
pub struct CrSchema {
    /// The raw `openAPIV3Schema`.
    pub schema: Value,
    /// Draft-4 validator for the whole object except `metadata`.
    pub validator: Arc<jsonschema::Validator>,
    /// The compiled `x-kubernetes-validations` rules (None: the schema has none).
    pub rules: Option<Arc<Rules>>,
}

impl std::fmt::Debug for CrSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrSchema").finish_non_exhaustive()
    }
}

fn s<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or_default()
}

/// Fill the CRD fields the apiserver defaults.
pub fn default_crd(crd: &mut Value) {
    let kind = s(crd, "/spec/names/kind").to_string();
    if let Some(names) = crd.pointer_mut("/spec/names").and_then(Value::as_object_mut) {
        names.entry("singular").or_insert_with(|| json!(kind.to_lowercase()));
        names.entry("listKind").or_insert_with(|| json!(format!("{kind}List")));
    }
    if let Some(spec) = crd.get_mut("spec").and_then(Value::as_object_mut) {
        spec.entry("conversion").or_insert_with(|| json!({"strategy": "None"}));
    }
}

/// The apiserver's CRD rules; causes for a 422.
pub fn check_crd(crd: &Value) -> Vec<Cause> {
    let mut causes = vec![];
    let invalid = |field: &str, msg: String| Cause {
        reason: "FieldValueInvalid".into(),
        message: msg,
        field: field.into(),
    };
    let required = |field: &str, msg: &str| Cause {
        reason: "FieldValueRequired".into(),
        message: format!("Required value{msg}"),
        field: field.into(),
    };
    let name = s(crd, "/metadata/name");
    let group = s(crd, "/spec/group");
    let plural = s(crd, "/spec/names/plural");
    let kind = s(crd, "/spec/names/kind");
    if group.is_empty() {
        causes.push(required("spec.group", ""));
    } else if !group.contains('.') {
        causes.push(invalid(
            "spec.group",
            format!("Invalid value: {group:?}: should be a domain with at least one dot"),
        ));
    }
    if plural.is_empty() {
        causes.push(required("spec.names.plural", ""));
    } else if plural != plural.to_lowercase() {
        causes.push(invalid("spec.names.plural", format!("Invalid value: {plural:?}: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-'")));
    }
    if kind.is_empty() {
        causes.push(required("spec.names.kind", ""));
    }
    if !plural.is_empty() && !group.is_empty() && name != format!("{plural}.{group}") {
        causes.push(invalid(
            "metadata.name",
            format!("Invalid value: {name:?}: must be spec.names.plural+\".\"+spec.group"),
        ));
    }
    match s(crd, "/spec/scope") {
        "Namespaced" | "Cluster" => {}
        "" => causes.push(required("spec.scope", "")),
        other => causes.push(Cause {
            reason: "FieldValueNotSupported".into(),
            message: format!("Unsupported value: {other:?}: supported values: \"Cluster\", \"Namespaced\""),
            field: "spec.scope".into(),
        }),
    }
    let versions = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if versions.is_empty() {
        causes.push(required(
            "spec.versions",
            ": must have exactly one version marked as storage version",
        ));
    } else if versions
        .iter()
        .filter(|v| v.get("storage") == Some(&Value::Bool(true)))
        .count()
        != 1
    {
        causes.push(invalid("spec.versions", "Invalid value: []apiextensions.CustomResourceDefinitionVersion(...): must have exactly one version marked as storage version".into()));
    }
    for (i, v) in versions.iter().enumerate() {
        let base = format!("spec.versions[{i}].schema.openAPIV3Schema");
        match v.pointer("/schema/openAPIV3Schema") {
            None => causes.push(required(&base, ": schemas are required")),
            Some(schema) => {
                if schema.get("type").and_then(Value::as_str) != Some("object") {
                    causes.push(required(&format!("{base}.type"), ": must not be empty at the root"));
                } else if let Err(e) = compile(schema) {
                    causes.push(invalid(&base, format!("Invalid value: ...: {e}")));
                } else if let Err(rule_causes) = Rules::compile(schema, &base) {
                    causes.extend(rule_causes);
                }
            }
        }
    }
    causes
}

/// JSON-schema keywords that carry subschemas in a map.
fn transform(schema: &Value, root: bool, in_junctor: bool) -> Value {
    let Value::Object(src) = schema else {
        return schema.clone();
    };
    let mut out = Map::new();
    let preserve = src.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    let embedded = src.get("x-kubernetes-embedded-resource") == Some(&Value::Bool(true));
    for (k, v) in src {
        match k.as_str() {
            "properties" => {
                let props: Map<String, Value> = v
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(pk, pv)| (pk.clone(), transform(pv, false, false)))
                            .collect()
                    })
                    .unwrap_or_default();
                out.insert(k.clone(), Value::Object(props));
            }
            "items" | "not" => {
                out.insert(k.clone(), transform(v, false, k == "not" || in_junctor));
            }
            "additionalProperties" if v.is_object() => {
                out.insert(k.clone(), transform(v, false, false));
            }
            "allOf" | "anyOf" | "oneOf" => {
                let list: Vec<Value> = v
                    .as_array()
                    .map(|a| a.iter().map(|x| transform(x, false, true)).collect())
                    .unwrap_or_default();
                out.insert(k.clone(), Value::Array(list));
            }
            "nullable" | "default" | "example" | "externalDocs" | "description" | "x-kubernetes-int-or-string" => {}
            other if other.starts_with("x-kubernetes-") => {}
            "type" => {
                let mut t = v.clone();
                if src.get("nullable") == Some(&Value::Bool(true)) {
                    t = json!([v, "null"]);
                }
                out.insert(k.clone(), t);
            }
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    if src.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
        out.remove("type");
        let mut any = vec![json!({"type": "integer"}), json!({"type": "string"})];
        if src.get("nullable") == Some(&Value::Bool(true)) {
            any.push(json!({"type": "null"}));
        }
        out.insert("anyOf".into(), Value::Array(any));
    }
    if root || embedded {
        let props = out.entry("properties").or_insert_with(|| json!({}));
        if let Some(p) = props.as_object_mut() {
            p.insert("apiVersion".into(), json!({"type": "string"}));
            p.insert("kind".into(), json!({"type": "string"}));
            // metadata is validated separately against the built-in ObjectMeta schema
            p.insert("metadata".into(), json!({"type": "object"}));
        }
    }
    let has_props = out
        .get("properties")
        .is_some_and(|p| p.as_object().is_some_and(|m| !m.is_empty()));
    if has_props && !preserve && !in_junctor && !out.contains_key("additionalProperties") {
        out.insert("additionalProperties".into(), Value::Bool(false));
    }
    out.into_iter().collect::<Map<String, Value>>().into()
}

fn compile(schema: &Value) -> Result<jsonschema::Validator, String> {
    let mut t = transform(schema, true, false);
    t["$schema"] = json!("http://json-schema.org/draft-04/schema#");
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft4)
        .should_validate_formats(false)
        .build(&t)
        .map_err(|e| e.to_string())
}

/// The types a CRD serves (one per served version). Assumes [`check_crd`] passed.
pub fn types_for(crd: &Value) -> Result<Vec<ResourceType>, String> {
    let name = s(crd, "/metadata/name").to_string();
    let names = crd.pointer("/spec/names").cloned().unwrap_or(json!({}));
    let kind = s(&names, "/kind").to_string();
    let strs = |p: &str| -> Vec<String> {
        names
            .get(p)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|x| x.as_str().map(String::from)).collect())
            .unwrap_or_default()
    };
    let mut out = vec![];
    for v in crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if v.get("served") != Some(&Value::Bool(true)) {
            continue;
        }
        let schema = v
            .pointer("/schema/openAPIV3Schema")
            .cloned()
            .unwrap_or(json!({"type": "object"}));
        let validator = Arc::new(compile(&schema)?);
        let base = format!("spec.versions[{}].schema.openAPIV3Schema", s(v, "/name"));
        let rules = Rules::compile(&schema, &base)
            .map_err(|causes| {
                causes
                    .iter()
                    .map(|c| format!("{}: {}", c.field, c.message))
                    .collect::<Vec<_>>()
                    .join(", ")
            })?
            .map(Arc::new);
        let status = v.pointer("/subresources/status").is_some();
        let printer_columns = v
            .get("additionalPrinterColumns")
            .and_then(Value::as_array)
            .map(|cols| {
                cols.iter()
                    .map(|c| {
                        (
                            s(c, "/name").to_string(),
                            s(c, "/type").to_string(),
                            s(c, "/jsonPath").to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.push(ResourceType {
            group: s(crd, "/spec/group").to_string(),
            version: s(v, "/name").to_string(),
            kind: kind.clone(),
            list_kind: names
                .get("listKind")
                .and_then(Value::as_str)
                .map(String::from)
                .unwrap_or_else(|| format!("{kind}List")),
            plural: s(&names, "/plural").to_string(),
            singular: names
                .get("singular")
                .and_then(Value::as_str)
                .map(String::from)
                .unwrap_or_else(|| kind.to_lowercase()),
            namespaced: s(crd, "/spec/scope") == "Namespaced",
            short_names: strs("shortNames"),
            categories: strs("categories"),
            status_subresource: status,
            generation: GenerationRule::AllButMetadataAndStatus,
            schema: SchemaSource::Custom(Arc::new(CrSchema {
                schema,
                validator,
                rules,
            })),
            crd: Some(name.clone()),
            printer_columns,
            preferred: v.get("storage") == Some(&Value::Bool(true)),
        });
    }
    Ok(out)
}

/// The storage version name.
pub fn storage_version(crd: &Value) -> String {
    crd.pointer("/spec/versions")
        .and_then(Value::as_array)
        .and_then(|vs| vs.iter().find(|v| v.get("storage") == Some(&Value::Bool(true))))
        .map(|v| s(v, "/name").to_string())
        .unwrap_or_default()
}

/// `status` of an established CRD.
pub fn established_status(crd: &Value, now: &str) -> Value {
    let names = crd.pointer("/spec/names").cloned().unwrap_or(json!({}));
    let mut stored: Vec<Value> = crd
        .pointer("/status/storedVersions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let sv = json!(storage_version(crd));
    if !stored.contains(&sv) {
        stored.push(sv);
    }
    json!({
        "acceptedNames": names,
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "lastTransitionTime": now, "reason": "NoConflicts", "message": "no conflicts found"},
            {"type": "Established", "status": "True", "lastTransitionTime": now, "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"}
        ],
        "storedVersions": stored,
    })
}

/// Has this CRD been established for its current names?
pub fn is_established(crd: &Value) -> bool {
    let established = crd
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| s(c, "/type") == "Established" && s(c, "/status") == "True")
        });
    established && crd.pointer("/status/acceptedNames") == crd.pointer("/spec/names")
}

/// Apply schema `default`s to a custom resource (structural defaulting).
pub fn apply_defaults(v: &mut Value, t: TypeNode<'_>) {
    match v {
        Value::Object(m) => {
            for (name, pt) in t.properties() {
                if !m.contains_key(name.as_str())
                    && let Some(d) = pt.raw().and_then(|r| r.get("default"))
                {
                    m.insert(name.clone(), d.clone());
                }
            }
            for (k, child) in m.iter_mut() {
                if k == "metadata" {
                    continue;
                }
                apply_defaults(child, t.field(k));
            }
        }
        Value::Array(items) => {
            for item in items {
                apply_defaults(item, t.item());
            }
        }
        _ => {}
    }
}
