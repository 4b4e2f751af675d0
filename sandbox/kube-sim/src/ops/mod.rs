//! The API verbs over the simulator's state: get, list, create, update, patch (apply, merge,
//! JSON, strategic), delete and deletecollection, for main resources and `status`.
//!
//! Owns [`State`] (configuration, schemas, served kinds, the store, the cluster's clocks), the
//! reads (get, list with selectors and continue tokens) and the writes of the simulated
//! controllers; `write` holds the pipeline every write verb goes through: admission checks
//! (namespace exists and is not terminating, names, preconditions), validation (schema,
//! then a custom resource's CEL rules on its defaulted form, see `cel_rules`), defaulting,
//! managed fields, generation, and the final commit; `patching` turns each patch type into
//! a whole object for it; `delete` holds finalizers, propagation and garbage collection.
//!
//! Rules kept here:
//! - Namespaced writes into a missing namespace are 404 `namespaces "x" not found`; creates in a
//!   terminating namespace are 403 Forbidden.
//! - A write whose result equals the stored object stores nothing and keeps its
//!   resourceVersion (as the real server does for no-op updates and applies).
//! - `metadata.generation` starts at 1 and grows when the kind's spec fields change, never on
//!   metadata or status changes; kinds without generation never get one.
//! - `resourceVersion` in a PUT body or a patch is a precondition (409 when stale); a PUT
//!   without one is an unconditional update.
//! - Deleting an object with finalizers sets `deletionTimestamp` and keeps it until an update
//!   empties `metadata.finalizers`; no new finalizers may be added meanwhile.
//! - On the main resource of a kind with a status subresource, `status` in the request is
//!   ignored; on `/status` only `status` changes.
//! - `dryRun=All` runs everything but the commit.

mod delete;
mod patching;
mod write;

use crate::apply::{self, strip_nulls};
use crate::cel_rules;
use crate::crd;
use crate::defaults;
use crate::error::{ApiError, ApiResult, Target};
use crate::kinds::{GenerationRule, Kinds, ResourceType, SchemaSource};
use crate::managed::{self, now, skipper};
use crate::patch;
use crate::schema::{OBJECT_META, Schemas, TypeNode};
use crate::selectors::{FieldSelector, LabelSelector};
use crate::store::{ObjKey, Store};
use crate::validation::{self, Directive, Mode, NameRule, Validators};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Runtime settings the verbs need.
#[derive(Debug, Clone)]
pub struct Settings {
    pub ready_delay: Duration,
    pub nodes: u32,
    pub node_instance_type: String,
    pub k8s_version: String,
}

/// Parsed query parameters (and a few headers) of a request.
#[derive(Debug, Clone)]
pub struct Params {
    pub dry_run: bool,
    pub field_manager: Option<String>,
    pub field_validation: Directive,
    pub force: Option<bool>,
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
    pub propagation_policy: Option<String>,
    pub user_agent: String,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            dry_run: false,
            field_manager: None,
            field_validation: Directive::Warn,
            force: None,
            label_selector: None,
            field_selector: None,
            limit: None,
            continue_token: None,
            propagation_policy: None,
            user_agent: String::new(),
        }
    }
}

impl Params {
    /// The manager of a non-apply write: `fieldManager`, else the user agent's program name.
    fn update_manager(&self) -> String {
        match &self.field_manager {
            Some(m) if !m.is_empty() => m.clone(),
            _ => {
                let ua = self.user_agent.split('/').next().unwrap_or_default().trim();
                if ua.is_empty() {
                    "unknown".into()
                } else {
                    ua.to_string()
                }
            }
        }
    }
}

/// A successful answer.
#[derive(Debug)]
pub struct Resp {
    pub code: u16,
    pub body: Value,
    pub warnings: Vec<String>,
}

fn ok(body: Value) -> Resp {
    Resp {
        code: 200,
        body,
        warnings: vec![],
    }
}

/// The simulator's whole mutable state.
pub struct State {
    pub settings: Settings,
    pub schemas: Arc<Schemas>,
    pub kinds: Kinds,
    pub store: Store,
    /// Bound pods -> when their containers will have started (the kubelets' clock).
    pub pod_started: BTreeMap<ObjKey, Instant>,
    /// Karpenter nodes -> since when they have run no pod but DaemonSets'.
    pub empty_since: BTreeMap<String, Instant>,
    /// Component log lines already printed (each is printed once).
    pub logged: HashSet<String>,
    /// CRD name -> generation its types were registered at.
    pub crd_registered: HashMap<String, i64>,
    ip_next: u32,
}

pub fn meta_str<'v>(obj: &'v Value, field: &str) -> &'v str {
    obj.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn finalizers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|f| f.as_str().map(String::from)).collect())
        .unwrap_or_default()
}

fn is_deleting(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp").is_some_and(|v| !v.is_null())
}

fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    uuid::Uuid::new_v4().as_bytes()[..5]
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// Does the generation-relevant part differ?
fn spec_changed(rt: &ResourceType, old: &Value, new: &Value) -> bool {
    match &rt.generation {
        GenerationRule::None => false,
        GenerationRule::Fields(fs) => fs.iter().any(|f| old.get(f) != new.get(f)),
        GenerationRule::AllButMetadataAndStatus => {
            let strip = |v: &Value| {
                let mut m = v.as_object().cloned().unwrap_or_default();
                for k in ["metadata", "apiVersion", "kind"] {
                    m.remove(k);
                }
                if rt.status_subresource {
                    m.remove("status");
                }
                m
            };
            strip(old) != strip(new)
        }
    }
}

impl State {
    pub fn new(settings: Settings, schemas: Arc<Schemas>) -> Self {
        let mut st = State {
            settings,
            schemas,
            kinds: Kinds::builtin(),
            store: Store::new(),
            pod_started: BTreeMap::new(),
            empty_since: BTreeMap::new(),
            logged: HashSet::new(),
            crd_registered: HashMap::new(),
            ip_next: 10,
        };
        st.seed();
        crate::cluster::nodes::seed_static(&mut st);
        st
    }

    /// The namespaces every cluster starts with.
    fn seed(&mut self) {
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let mut obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "uid": uuid::Uuid::new_v4().to_string(), "creationTimestamp": now()}});
            defaults::apply("", "Namespace", &mut obj, None, &mut || String::new());
            self.store.put(ObjKey::new("", "namespaces", "", ns), obj);
        }
    }

    /// Forget everything (POST /sim/reset).
    pub fn reset(&mut self) {
        self.store.clear();
        self.kinds = Kinds::builtin();
        self.pod_started.clear();
        self.empty_since.clear();
        self.crd_registered.clear();
        self.seed();
        crate::cluster::nodes::seed_static(self);
    }

    fn alloc_ip(&mut self) -> String {
        let n = self.ip_next;
        self.ip_next += 1;
        format!("10.96.{}.{}", n / 250, n % 250 + 1)
    }

    fn key(rt: &ResourceType, ns: &str, name: &str) -> ObjKey {
        ObjKey::new(&rt.group, &rt.plural, if rt.namespaced { ns } else { "" }, name)
    }

    /// The object as served at `rt`'s version.
    pub fn present(rt: &ResourceType, obj: &Value) -> Value {
        let mut o = obj.clone();
        o["apiVersion"] = json!(rt.api_version());
        o["kind"] = json!(rt.kind);
        o
    }

    pub fn get(&self, rt: &ResourceType, ns: &str, name: &str) -> ApiResult<Value> {
        self.store
            .get(&Self::key(rt, ns, name))
            .map(|o| Self::present(rt, o))
            .ok_or_else(|| ApiError::not_found(&rt.group, &rt.plural, name))
    }

    /// Matching objects (as served) and the list resourceVersion.
    pub fn select(&self, rt: &ResourceType, ns: Option<&str>, p: &Params) -> ApiResult<Vec<(ObjKey, Value)>> {
        Ok(self
            .matching(rt, ns, p)?
            .into_iter()
            .map(|(k, o)| (k.clone(), Self::present(rt, o)))
            .collect())
    }

    /// The stored objects a list selects (label and field selectors), in key order.
    fn matching<'a>(
        &'a self,
        rt: &'a ResourceType,
        ns: Option<&'a str>,
        p: &Params,
    ) -> ApiResult<Vec<(&'a ObjKey, &'a Value)>> {
        let ls = match &p.label_selector {
            Some(s) => LabelSelector::parse(s).map_err(ApiError::bad_request)?,
            None => LabelSelector::default(),
        };
        let fs = match &p.field_selector {
            Some(s) => FieldSelector::parse(s, &rt.kind).map_err(ApiError::bad_request)?,
            None => FieldSelector::default(),
        };
        let ns = if rt.namespaced { ns } else { None };
        Ok(self
            .store
            .list(&rt.group, &rt.plural, ns)
            .filter(|(_, o)| ls.matches(o) && fs.matches(o))
            .collect())
    }

    /// One page of a list: the objects after the continue token, at most `limit`, and the
    /// list's metadata (resourceVersion, and continue with remainingItemCount when cut).
    fn page<'a>(&'a self, rt: &'a ResourceType, ns: Option<&'a str>, p: &Params) -> ApiResult<(Vec<&'a Value>, Value)> {
        let mut items = self.matching(rt, ns, p)?;
        if let Some(tok) = &p.continue_token {
            let after = decode_continue(tok)
                .ok_or_else(|| ApiError::bad_request("continue key is not valid: invalid token"))?;
            items.retain(|(k, _)| (k.namespace.as_str(), k.name.as_str()) > (after.0.as_str(), after.1.as_str()));
        }
        let mut meta = json!({"resourceVersion": self.store.rv().to_string()});
        if let Some(limit) = p.limit.filter(|l| *l > 0)
            && items.len() > limit
        {
            let remaining = items.len() - limit;
            items.truncate(limit);
            let last = items[limit - 1].0;
            meta["continue"] = json!(encode_continue(&last.namespace, &last.name));
            meta["remainingItemCount"] = json!(remaining);
        }
        Ok((items.into_iter().map(|(_, o)| o).collect(), meta))
    }

    pub fn list(&self, rt: &ResourceType, ns: Option<&str>, p: &Params) -> ApiResult<Value> {
        let (items, meta) = self.page(rt, ns, p)?;
        let items: Vec<Value> = items
            .into_iter()
            .map(|o| {
                let mut o = Self::present(rt, o);
                if !rt.is_custom() {
                    // typed lists of the real server carry no per-item apiVersion/kind
                    if let Some(m) = o.as_object_mut() {
                        m.remove("apiVersion");
                        m.remove("kind");
                    }
                }
                o
            })
            .collect();
        Ok(json!({"kind": rt.list_kind, "apiVersion": rt.api_version(), "metadata": meta, "items": items}))
    }

    /// [`State::list`] as JSON text, written from the stored objects without copying them
    /// (the same document: what a plain JSON list answers).
    pub fn list_json(&self, rt: &ResourceType, ns: Option<&str>, p: &Params) -> ApiResult<Vec<u8>> {
        let (items, meta) = self.page(rt, ns, p)?;
        let api_version = rt.api_version();
        // Typed lists of the real server carry no per-item apiVersion/kind.
        let type_meta = rt.is_custom().then_some((api_version.as_str(), rt.kind.as_str()));
        let doc = ListDocument {
            api_version: &api_version,
            items: items.into_iter().map(|obj| ListItem { obj, type_meta }).collect(),
            kind: &rt.list_kind,
            metadata: meta,
        };
        serde_json::to_vec(&doc).map_err(|e| ApiError::internal(e.to_string()))
    }

    // ---------------------------------------------------------------- writes

    /// Status writes by the simulated controllers (manager `kube-controller-manager`).
    pub fn controller_status(&mut self, rt: &ResourceType, key: &ObjKey, status: Value) {
        let Some(old) = self.store.get(key).cloned() else {
            return;
        };
        let mut new = old.clone();
        new["status"] = status;
        let schemas = self.schemas.clone();
        let Ok(v) = self.validators(rt, &schemas) else { return };
        let mut entries = managed::read(&old);
        let skip = skipper("status", rt.status_subresource);
        managed::record_update(
            &mut entries,
            "kube-controller-manager",
            &rt.api_version(),
            "status",
            Some(&old),
            &new,
            v.types,
            &skip,
        );
        managed::write(&mut new, &entries);
        self.commit(rt, key.clone(), Some(&old), new, false);
    }

    /// Set a stored object to `new` as a system write (finalizer removal by controllers).
    pub fn system_update(&mut self, rt: &ResourceType, key: &ObjKey, new: Value) {
        let Some(old) = self.store.get(key).cloned() else {
            return;
        };
        self.commit(rt, key.clone(), Some(&old), new, false);
    }

    /// Register a served type set for a CRD.
    pub fn register_crd_types(&mut self, crd_name: &str, types: Vec<ResourceType>) {
        self.kinds.register_custom(crd_name, types);
    }

    /// Collection-level settings.
    pub fn kinds(&self) -> &Kinds {
        &self.kinds
    }
}

fn has_ns_finalizer(ns: &Value) -> bool {
    ns.pointer("/spec/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty())
}

/// Does `obj` list `uid` among its owners?
pub fn owned_by(obj: &Value, uid: &str) -> bool {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|refs| refs.iter().any(|r| r.get("uid").and_then(Value::as_str) == Some(uid)))
}

fn status_success(rt: &ResourceType, obj: &Value) -> Value {
    let mut details = json!({"name": meta_str(obj, "name"), "kind": rt.plural, "uid": meta_str(obj, "uid")});
    if !rt.group.is_empty() {
        details["group"] = json!(rt.group);
    }
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
}

/// A list as [`State::list_json`] writes it (keys in the order `json!` gives them).
#[derive(serde::Serialize)]
struct ListDocument<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'a str,
    items: Vec<ListItem<'a>>,
    kind: &'a str,
    metadata: Value,
}

/// A stored object as a list item: its own fields, with the kind's apiVersion and kind on
/// a custom resource's and neither on a typed one's.
struct ListItem<'a> {
    obj: &'a Value,
    type_meta: Option<(&'a str, &'a str)>,
}

impl serde::Serialize for ListItem<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let Some(fields) = self.obj.as_object() else {
            return self.obj.serialize(s);
        };
        let mut map = s.serialize_map(None)?;
        for (k, v) in fields {
            match (k.as_str(), self.type_meta) {
                ("apiVersion" | "kind", None) => {}
                ("apiVersion", Some((api_version, _))) => map.serialize_entry(k, api_version)?,
                ("kind", Some((_, kind))) => map.serialize_entry(k, kind)?,
                _ => map.serialize_entry(k, v)?,
            }
        }
        if let Some((api_version, kind)) = self.type_meta {
            if !fields.contains_key("apiVersion") {
                map.serialize_entry("apiVersion", api_version)?;
            }
            if !fields.contains_key("kind") {
                map.serialize_entry("kind", kind)?;
            }
        }
        map.end()
    }
}

fn encode_continue(ns: &str, name: &str) -> String {
    format!("{ns}/{name}").bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode_continue(tok: &str) -> Option<(String, String)> {
    if !tok.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..tok.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&tok[i..i + 2], 16).ok())
        .collect();
    let s = String::from_utf8(bytes?).ok()?;
    let (ns, name) = s.split_once('/')?;
    Some((ns.to_string(), name.to_string()))
}

impl ApiError {
    /// A kind mismatch in a body reads better with the kinds named.
    fn with_kind_hint(self, body_kind: &str, want: &str) -> Self {
        match self {
            ApiError::BadRequest { message } if !body_kind.is_empty() && body_kind != want => ApiError::BadRequest {
                message: format!(
                    "{message}: the kind in the data ({body_kind}) does not match the expected kind ({want})"
                ),
            },
            other => other,
        }
    }
}
