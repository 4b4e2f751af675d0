//! The official Kubernetes JSON schemas and structural type information.
//!
//! Owns loading `_definitions.json` from a `kubernetes-validate` schema directory
//! (`.../kubernetes-json-schema/v1.35.0-local-strict/`), compiling `jsonschema` validators for
//! built-in kinds (cached per definition), and [`TypeNode`]: a walker over either the
//! built-in definitions or a CRD's `openAPIV3Schema` that answers what server-side apply needs
//! to know at a path: scalar, atomic, granular map, associative list with keys, or set.
//!
//! Rules kept here:
//! - Only the *strict* flavour of the schemas is used (unknown fields are errors), so the
//!   default directory is the `-local-strict` one of the configured Kubernetes version.
//! - List semantics follow structured-merge-diff: `x-kubernetes-list-type` wins; without it a
//!   `x-kubernetes-patch-strategy: merge` list is associative on its `patch-merge-key` (or a set
//!   of scalars); any other list is atomic. Maps and structs are granular unless
//!   `x-kubernetes-map-type: atomic`. Where no schema is known (preserve-unknown-fields) types
//!   are deduced from the value: objects granular, lists atomic.

use crate::error::SimError;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Base URI the definitions are registered under (their own `$id`).
pub const DEFS_URI: &str = "https://kubernetes.io/api/_definitions.json";
/// Definition name of ObjectMeta.
pub const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

/// Loaded built-in schemas.
pub struct Schemas {
    dir: PathBuf,
    defs: Value,
    registry: jsonschema::Registry<'static>,
    validators: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
}

impl std::fmt::Debug for Schemas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schemas")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Schemas {
    /// Load `_definitions.json` from `dir`.
    pub fn load(dir: &Path) -> Result<Self, SimError> {
        let path = dir.join("_definitions.json");
        let text = std::fs::read_to_string(&path).map_err(|source| SimError::SchemaRead {
            path: path.clone(),
            source,
        })?;
        let defs: Value = serde_json::from_str(&text).map_err(|e| SimError::SchemaParse {
            path: path.clone(),
            message: e.to_string(),
        })?;
        if !defs.get("$defs").is_some_and(Value::is_object) {
            return Err(SimError::SchemaParse {
                path,
                message: "no $defs object".into(),
            });
        }
        let registry = jsonschema::Registry::new()
            .add(DEFS_URI, defs.clone())
            .and_then(|b| b.prepare())
            .map_err(|e| SimError::SchemaParse {
                path: path.clone(),
                message: e.to_string(),
            })?;
        Ok(Schemas {
            dir: dir.to_path_buf(),
            defs,
            registry,
            validators: Mutex::new(HashMap::new()),
        })
    }

    /// The directory the schemas came from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A definition by name.
    pub fn def(&self, name: &str) -> Option<&Value> {
        self.defs.get("$defs").and_then(|d| d.get(name))
    }

    /// Every definition name.
    pub fn def_names(&self) -> impl Iterator<Item = &String> {
        self.defs
            .get("$defs")
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|d| d.keys())
    }

    /// The (cached) validator of a definition.
    pub fn validator(&self, name: &str) -> Result<Arc<jsonschema::Validator>, String> {
        if let Some(v) = self.validators.lock().expect("validator cache").get(name) {
            return Ok(v.clone());
        }
        if self.def(name).is_none() {
            return Err(format!("no schema definition {name}"));
        }
        let schema = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$ref": format!("{DEFS_URI}#/$defs/{name}"),
        });
        let v = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .with_registry(&self.registry)
            .should_validate_formats(false)
            .build(&schema)
            .map_err(|e| format!("cannot compile schema {name}: {e}"))?;
        let v = Arc::new(v);
        self.validators
            .lock()
            .expect("validator cache")
            .insert(name.to_string(), v.clone());
        Ok(v)
    }

    /// Type walker rooted at a built-in definition.
    pub fn root(&self, name: &str) -> TypeNode<'_> {
        TypeNode {
            schemas: Some(self),
            node: self.def(name),
            cr_root: false,
        }
    }
}

/// What a schema node is, for merging and field ownership.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// A scalar leaf.
    Scalar,
    /// Replaced and owned as a whole (atomic list, atomic map/struct).
    Atomic,
    /// A granular map or struct: each key is its own field.
    Map,
    /// An associative list keyed by these fields.
    ListMap(Vec<String>),
    /// A set of scalars.
    ListSet,
}

/// A position in a schema (built-in definitions or a CRD schema), or "unknown".
#[derive(Clone, Copy)]
pub struct TypeNode<'a> {
    schemas: Option<&'a Schemas>,
    node: Option<&'a Value>,
    /// The root of a custom resource: `metadata` is ObjectMeta from the built-ins.
    cr_root: bool,
}

impl<'a> TypeNode<'a> {
    /// No schema known: everything deduced from values.
    pub fn unknown() -> Self {
        TypeNode {
            schemas: None,
            node: None,
            cr_root: false,
        }
    }

    /// Walker rooted at a CRD's openAPIV3Schema.
    pub fn custom(schemas: Option<&'a Schemas>, schema: &'a Value) -> Self {
        TypeNode {
            schemas,
            node: Some(schema),
            cr_root: true,
        }
    }

    fn with(self, node: Option<&'a Value>) -> Self {
        TypeNode {
            schemas: self.schemas,
            node,
            cr_root: false,
        }
    }

    /// Follow `$ref`s.
    fn resolved(self) -> Option<&'a Value> {
        let mut node = self.node?;
        for _ in 0..16 {
            match node.get("$ref").and_then(Value::as_str) {
                Some(r) => {
                    let name = r.rsplit("$defs/").next()?;
                    node = self.schemas?.def(name)?;
                }
                None => return Some(node),
            }
        }
        None
    }

    /// Is any schema known here?
    pub fn is_known(self) -> bool {
        self.resolved().is_some()
    }

    fn has_type(node: &Value, t: &str) -> bool {
        match node.get("type") {
            Some(Value::String(s)) => s == t,
            Some(Value::Array(a)) => a.iter().any(|x| x.as_str() == Some(t)),
            _ => false,
        }
    }

    fn ext(node: &'a Value, name: &str) -> Option<&'a Value> {
        node.get(name)
    }

    /// The schema of field `name` of this object.
    pub fn field(self, name: &str) -> TypeNode<'a> {
        if self.cr_root
            && name == "metadata"
            && let Some(s) = self.schemas
        {
            return s.root(OBJECT_META);
        }
        let Some(node) = self.resolved() else {
            return self.with(None);
        };
        if let Some(p) = node.get("properties").and_then(|p| p.get(name)) {
            return self.with(Some(p));
        }
        match node.get("additionalProperties") {
            Some(ap @ Value::Object(_)) => self.with(Some(ap)),
            _ => self.with(None),
        }
    }

    /// Does this object schema declare field `name` (or accept any key)?
    pub fn declares(self, name: &str) -> bool {
        match self.resolved() {
            None => true,
            Some(node) => {
                node.get("properties").is_some_and(|p| p.get(name).is_some())
                    || node
                        .get("additionalProperties")
                        .is_some_and(|a| a.is_object() || a == &Value::Bool(true))
                    || node.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true))
            }
        }
    }

    /// The schema of the items of this list.
    pub fn item(self) -> TypeNode<'a> {
        let node = self.resolved().and_then(|n| n.get("items"));
        self.with(node)
    }

    /// The shape of this node for `value` (deduced from the value where the schema is silent).
    pub fn shape(self, value: &Value) -> Shape {
        let deduced = || match value {
            Value::Object(_) => Shape::Map,
            Value::Array(_) => Shape::Atomic,
            _ => Shape::Scalar,
        };
        let Some(node) = self.resolved() else { return deduced() };
        if node.get("oneOf").is_some()
            || node.get("anyOf").is_some()
            || Self::ext(node, "x-kubernetes-int-or-string").is_some()
        {
            return match value {
                Value::Object(_) | Value::Array(_) => Shape::Atomic,
                _ => Shape::Scalar,
            };
        }
        let is_array = Self::has_type(node, "array") || node.get("items").is_some();
        let is_object = Self::has_type(node, "object")
            || node.get("properties").is_some()
            || node.get("additionalProperties").is_some();
        if is_array {
            let list_type = Self::ext(node, "x-kubernetes-list-type").and_then(Value::as_str);
            let keys: Vec<String> = Self::ext(node, "x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|k| k.as_str().map(String::from)).collect())
                .unwrap_or_default();
            return match list_type {
                Some("map") if !keys.is_empty() => Shape::ListMap(keys),
                Some("set") => Shape::ListSet,
                Some(_) => Shape::Atomic,
                None => {
                    let strategy = Self::ext(node, "x-kubernetes-patch-strategy")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    if strategy.split(',').any(|s| s == "merge") {
                        match Self::ext(node, "x-kubernetes-patch-merge-key").and_then(Value::as_str) {
                            Some(k) => Shape::ListMap(vec![k.to_string()]),
                            None => Shape::ListSet,
                        }
                    } else {
                        Shape::Atomic
                    }
                }
            };
        }
        if is_object {
            if Self::ext(node, "x-kubernetes-map-type").and_then(Value::as_str) == Some("atomic") {
                return Shape::Atomic;
            }
            if node.get("properties").is_none() && node.get("additionalProperties").is_none() {
                // free-form object (RawExtension, JSON, preserve-unknown-fields)
                return deduced();
            }
            return Shape::Map;
        }
        if node.get("type").is_none() && node.get("properties").is_none() {
            return deduced();
        }
        Shape::Scalar
    }

    /// `int32`, `string`, `bool`, ... as Go would name the expected type (for decode errors).
    pub fn go_type(self) -> String {
        let Some(node) = self.resolved() else {
            return "interface {}".into();
        };
        if let Some(f) = node.get("format").and_then(Value::as_str) {
            match f {
                "int32" | "int64" => return f.into(),
                "double" => return "float64".into(),
                _ => {}
            }
        }
        if node.get("oneOf").is_some() {
            return "IntOrString".into();
        }
        for (t, go) in [
            ("string", "string"),
            ("integer", "int64"),
            ("number", "float64"),
            ("boolean", "bool"),
            ("array", "[]"),
            ("object", "map"),
        ] {
            if Self::has_type(node, t) {
                return go.into();
            }
        }
        "interface {}".into()
    }

    /// The raw (resolved) schema value.
    pub fn raw(self) -> Option<&'a Value> {
        self.resolved()
    }

    /// The properties with defaults (CRD structural defaulting).
    pub fn properties(self) -> Vec<(&'a String, TypeNode<'a>)> {
        match self
            .resolved()
            .and_then(|n| n.get("properties"))
            .and_then(Value::as_object)
        {
            Some(p) => p.iter().map(|(k, v)| (k, self.with(Some(v)))).collect(),
            None => vec![],
        }
    }
}

/// Find the schema directory of a Kubernetes version under a repo's `.venv`.
pub fn find_schema_dir(repo: &Path, k8s_version: &str) -> Option<PathBuf> {
    let minor = k8s_version.trim_start_matches('v');
    let mm: Vec<&str> = minor.split('.').collect();
    let wanted = if mm.len() >= 2 {
        format!("v{}.{}.0-local-strict", mm[0], mm[1])
    } else {
        format!("v{minor}.0-local-strict")
    };
    let lib = repo.join(".venv").join("lib");
    let mut candidates: Vec<PathBuf> = vec![];
    if let Ok(rd) = std::fs::read_dir(&lib) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with("python3") {
                candidates.push(
                    e.path()
                        .join("site-packages/kubernetes_validate/kubernetes-json-schema")
                        .join(&wanted),
                );
            }
        }
    }
    candidates.sort();
    candidates
        .into_iter()
        .rev()
        .find(|p| p.join("_definitions.json").is_file())
}
