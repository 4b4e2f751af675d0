//! The API verbs over the simulator's state: get, list, create, update, patch (apply, merge,
//! JSON, strategic), delete and deletecollection, for main resources and `status`.
//!
//! Owns [`State`] (configuration, schemas, served kinds, the store, the cluster's clocks) and the
//! write pipeline every verb goes through: admission checks (namespace exists and is not
//! terminating, names, preconditions), validation (schema, then a custom resource's CEL
//! rules on its defaulted form, see `cel_rules`), defaulting, managed fields, generation,
//! and the final commit.
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

    fn validators<'a>(&self, rt: &'a ResourceType, schemas: &'a Schemas) -> ApiResult<Validators<'a>> {
        match &rt.schema {
            SchemaSource::Builtin(def) => Ok(Validators {
                main: schemas.validator(def).map_err(ApiError::internal)?,
                meta: None,
                types: schemas.root(def),
                custom: false,
                group: rt.group.clone(),
                version: rt.version.clone(),
                kind: rt.kind.clone(),
            }),
            SchemaSource::Custom(cr) => Ok(Validators {
                main: cr.validator.clone(),
                meta: Some(schemas.validator(OBJECT_META).map_err(ApiError::internal)?),
                types: TypeNode::custom(Some(schemas), &cr.schema),
                custom: true,
                group: rt.group.clone(),
                version: rt.version.clone(),
                kind: rt.kind.clone(),
            }),
        }
    }

    /// 404 for a missing namespace, 403 for creating in a terminating one.
    fn check_namespace(&self, rt: &ResourceType, ns: &str, name: &str, creating: bool) -> ApiResult<()> {
        if !rt.namespaced {
            return Ok(());
        }
        match self.store.get(&ObjKey::new("", "namespaces", "", ns)) {
            None => Err(ApiError::not_found("", "namespaces", ns)),
            Some(n) if creating && is_deleting(n) => Err(ApiError::forbidden(
                &rt.group,
                &rt.plural,
                name,
                &format!("unable to create new content in namespace {ns} because it is being terminated"),
            )),
            _ => Ok(()),
        }
    }

    /// 405 while the CRD of a custom resource is terminating.
    fn check_crd_alive(&self, rt: &ResourceType) -> ApiResult<()> {
        if let Some(crd) = &rt.crd
            && let Some(c) = self.store.get(&ObjKey::new(
                "apiextensions.k8s.io",
                "customresourcedefinitions",
                "",
                crd,
            ))
            && is_deleting(c)
        {
            return Err(ApiError::method_not_allowed(
                "create not allowed while custom resource definition is terminating",
            ));
        }
        Ok(())
    }

    fn check_body_type(rt: &ResourceType, body: &Value) -> ApiResult<()> {
        let av = body.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
        let kind = body.get("kind").and_then(Value::as_str).unwrap_or_default();
        if (!kind.is_empty() && kind != rt.kind) || (!av.is_empty() && av != rt.api_version()) {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({av}) does not match the expected API version ({})",
                rt.api_version()
            ))
            .with_kind_hint(kind, &rt.kind));
        }
        Ok(())
    }

    // ---------------------------------------------------------------- reads

    pub fn get(&self, rt: &ResourceType, ns: &str, name: &str) -> ApiResult<Value> {
        self.store
            .get(&Self::key(rt, ns, name))
            .map(|o| Self::present(rt, o))
            .ok_or_else(|| ApiError::not_found(&rt.group, &rt.plural, name))
    }

    /// Matching objects (as served) and the list resourceVersion.
    pub fn select(&self, rt: &ResourceType, ns: Option<&str>, p: &Params) -> ApiResult<Vec<(ObjKey, Value)>> {
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
            .map(|(k, o)| (k.clone(), Self::present(rt, o)))
            .collect())
    }

    pub fn list(&self, rt: &ResourceType, ns: Option<&str>, p: &Params) -> ApiResult<Value> {
        let mut items = self.select(rt, ns, p)?;
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
            let last = &items[limit - 1].0;
            meta["continue"] = json!(encode_continue(&last.namespace, &last.name));
            meta["remainingItemCount"] = json!(remaining);
        }
        let items: Vec<Value> = items
            .into_iter()
            .map(|(_, mut o)| {
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

    // ---------------------------------------------------------------- writes

    /// Validate, check metadata and kind rules of a whole object about to be stored; `old` is
    /// the stored object on update (for CEL transition rules and ratcheting).
    fn admit(&self, rt: &ResourceType, obj: &mut Value, p: &Params, old: Option<&Value>) -> ApiResult<Vec<String>> {
        let schemas = self.schemas.clone();
        let v = self.validators(rt, &schemas)?;
        let name = meta_str(obj, "name").to_string();
        let ns = meta_str(obj, "namespace").to_string();
        let custom = match &rt.schema {
            SchemaSource::Custom(cr) => cr.rules.as_ref().map(|r| (cr, r)),
            SchemaSource::Builtin(_) => None,
        };
        // with CEL rules, schema errors and rule errors are answered together, as upstream
        let (mut warnings, mut causes) = match validation::check(&v, obj, p.field_validation, Mode::Object, &name, &ns)
        {
            Ok(w) => (w, vec![]),
            Err(ApiError::Invalid { causes, .. }) if custom.is_some() => (vec![], causes),
            Err(e) => return Err(e),
        };
        causes.extend(validation::check_metadata(obj, NameRule::for_kind(&rt.group, &rt.kind)));
        if rt.group == "apiextensions.k8s.io" && rt.kind == "CustomResourceDefinition" {
            causes.extend(crd::check_crd(obj));
        }
        if let Some((cr, rules)) = custom {
            // rules see the object as stored: after structural defaulting
            let mut defaulted = obj.clone();
            crd::apply_defaults(&mut defaulted, TypeNode::custom(Some(&schemas), &cr.schema));
            warnings.extend(cel_rules::admit(rules, &defaulted, old, &mut causes));
        }
        if !causes.is_empty() {
            return Err(ApiError::invalid(&rt.group, &rt.kind, &name, causes));
        }
        Ok(warnings)
    }

    /// Kind defaults, after validation.
    fn default(&mut self, rt: &ResourceType, obj: &mut Value, old: Option<&Value>) {
        match &rt.schema {
            SchemaSource::Builtin(_) => {
                if rt.group == "apiextensions.k8s.io" {
                    crd::default_crd(obj);
                }
                let mut alloc = || self.alloc_ip();
                defaults::apply(&rt.group, &rt.kind, obj, old, &mut alloc);
            }
            SchemaSource::Custom(cr) => {
                let schemas = self.schemas.clone();
                crd::apply_defaults(obj, TypeNode::custom(Some(&schemas), &cr.schema));
            }
        }
    }

    /// Set generation, compare with the stored object and store (or not).
    /// Returns (object as served, created?).
    fn commit(&mut self, rt: &ResourceType, key: ObjKey, old: Option<&Value>, mut new: Value, dry_run: bool) -> Value {
        strip_nulls(&mut new);
        if rt.generation != GenerationRule::None {
            let generation_n = match old {
                None => 1,
                Some(o) => {
                    let g = o.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(1);
                    if spec_changed(rt, o, &new) { g + 1 } else { g }
                }
            };
            new["metadata"]["generation"] = json!(generation_n);
        }
        if let Some(o) = old {
            new["metadata"]["resourceVersion"] = o.pointer("/metadata/resourceVersion").cloned().unwrap_or(Value::Null);
            if *o == new {
                return Self::present(rt, o);
            }
        } else if let Some(m) = new.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
        }
        if dry_run {
            return Self::present(rt, &new);
        }
        if is_deleting(&new)
            && finalizers(&new).is_empty()
            && !(rt.kind == "Namespace" && rt.group.is_empty() && has_ns_finalizer(&new))
        {
            let gone = self.store.remove(&key).unwrap_or(new);
            return Self::present(rt, &gone);
        }
        let stored = self.store.put(key, new);
        Self::present(rt, &stored)
    }

    /// POST.
    pub fn create(&mut self, rt: &ResourceType, ns: &str, mut body: Value, p: &Params) -> ApiResult<Resp> {
        if !body.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml",
            ));
        }
        Self::check_body_type(rt, &body)?;
        body["apiVersion"] = json!(rt.api_version());
        body["kind"] = json!(rt.kind);
        if !body.get("metadata").is_some_and(Value::is_object) {
            body["metadata"] = json!({});
        }
        let body_ns = meta_str(&body, "namespace").to_string();
        if rt.namespaced {
            if !body_ns.is_empty() && body_ns != ns {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            body["metadata"]["namespace"] = json!(ns);
        } else if let Some(m) = body["metadata"].as_object_mut() {
            m.remove("namespace");
        }
        if !meta_str(&body, "resourceVersion").is_empty() {
            return Err(ApiError::bad_request(
                "resourceVersion should not be set on objects to be created",
            ));
        }
        let mut name = meta_str(&body, "name").to_string();
        if name.is_empty() {
            let gen_name = meta_str(&body, "generateName").to_string();
            if !gen_name.is_empty() {
                name = format!("{gen_name}{}", random_suffix());
                body["metadata"]["name"] = json!(name);
            }
        }
        self.check_namespace(rt, ns, &name, true)?;
        self.check_crd_alive(rt)?;
        if let Some(m) = body["metadata"].as_object_mut() {
            for k in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
                "managedFields",
                "selfLink",
            ] {
                m.remove(k);
            }
        }
        if rt.status_subresource
            && let Some(m) = body.as_object_mut()
        {
            m.remove("status");
        }
        let warnings = self.admit(rt, &mut body, p, None)?;
        let key = Self::key(rt, ns, &name);
        if self.store.get(&key).is_some() {
            return Err(ApiError::already_exists(&rt.group, &rt.plural, &name));
        }
        body["metadata"]["uid"] = json!(uuid::Uuid::new_v4().to_string());
        body["metadata"]["creationTimestamp"] = json!(now());
        self.default(rt, &mut body, None);
        let schemas = self.schemas.clone();
        let v = self.validators(rt, &schemas)?;
        let mut entries = vec![];
        let skip = skipper("", rt.status_subresource);
        managed::record_update(
            &mut entries,
            &p.update_manager(),
            &rt.api_version(),
            "",
            None,
            &body,
            v.types,
            &skip,
        );
        managed::write(&mut body, &entries);
        let out = self.commit(rt, key, None, body, p.dry_run);
        Ok(Resp {
            code: 201,
            body: out,
            warnings,
        })
    }

    /// The common tail of PUT and non-apply PATCH: `new` is the full desired object.
    #[allow(clippy::too_many_arguments)]
    fn update_with(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        sub: &str,
        old: Value,
        mut new: Value,
        p: &Params,
    ) -> ApiResult<Resp> {
        if !new.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml",
            ));
        }
        Self::check_body_type(rt, &new)?;
        new["apiVersion"] = json!(rt.api_version());
        new["kind"] = json!(rt.kind);
        if !new.get("metadata").is_some_and(Value::is_object) {
            new["metadata"] = json!({});
        }
        let body_name = meta_str(&new, "name").to_string();
        if !body_name.is_empty() && body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let body_ns = meta_str(&new, "namespace").to_string();
        if rt.namespaced && !body_ns.is_empty() && body_ns != ns {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        let rv = meta_str(&new, "resourceVersion").to_string();
        if !rv.is_empty() && rv != meta_str(&old, "resourceVersion") {
            return Err(ApiError::stale(&rt.group, &rt.plural, name));
        }
        // status subresource split
        if sub == "status" {
            let mut merged = old.clone();
            merged["status"] = new.get("status").cloned().unwrap_or(Value::Null);
            // metadata labels/annotations are not changed through /status
            new = merged;
        } else if rt.status_subresource {
            match old.get("status") {
                Some(s) => new["status"] = s.clone(),
                None => {
                    if let Some(m) = new.as_object_mut() {
                        m.remove("status");
                    }
                }
            }
        }
        // server-owned metadata comes from the stored object
        {
            let old_meta = old["metadata"].clone();
            let m = new["metadata"].as_object_mut().expect("metadata object");
            m.insert("name".into(), json!(name));
            if rt.namespaced {
                m.insert("namespace".into(), json!(ns));
            } else {
                m.remove("namespace");
            }
            for k in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
                "managedFields",
                "resourceVersion",
            ] {
                match old_meta.get(k) {
                    Some(v) => {
                        m.insert(k.into(), v.clone());
                    }
                    None => {
                        m.remove(k);
                    }
                }
            }
        }
        if is_deleting(&old) {
            let before = finalizers(&old);
            let added: Vec<String> = finalizers(&new).into_iter().filter(|f| !before.contains(f)).collect();
            if !added.is_empty() {
                return Err(ApiError::invalid(
                    &rt.group,
                    &rt.kind,
                    name,
                    vec![crate::error::Cause {
                        reason: "FieldValueForbidden".into(),
                        message: format!(
                            "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers {added:?}"
                        ),
                        field: "metadata.finalizers".into(),
                    }],
                ));
            }
        }
        let warnings = self.admit(rt, &mut new, p, Some(&old))?;
        self.default(rt, &mut new, Some(&old));
        let schemas = self.schemas.clone();
        let v = self.validators(rt, &schemas)?;
        let mut entries = managed::read(&old);
        let skip = skipper(sub, rt.status_subresource);
        strip_nulls(&mut new);
        managed::record_update(
            &mut entries,
            &p.update_manager(),
            &rt.api_version(),
            sub,
            Some(&old),
            &new,
            v.types,
            &skip,
        );
        managed::write(&mut new, &entries);
        let key = Self::key(rt, ns, name);
        let out = self.commit(rt, key, Some(&old), new, p.dry_run);
        Ok(Resp {
            code: 200,
            body: out,
            warnings,
        })
    }

    /// PUT.
    pub fn update(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        sub: &str,
        body: Value,
        p: &Params,
    ) -> ApiResult<Resp> {
        let old = self
            .store
            .get(&Self::key(rt, ns, name))
            .cloned()
            .ok_or_else(|| ApiError::not_found(&rt.group, &rt.plural, name))?;
        self.update_with(rt, ns, name, sub, old, body, p)
    }

    /// PATCH of any type. `content_type` is the media type without parameters.
    #[allow(clippy::too_many_arguments)]
    pub fn patch(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        sub: &str,
        content_type: &str,
        body: &[u8],
        p: &Params,
    ) -> ApiResult<Resp> {
        let is_apply = content_type == "application/apply-patch+yaml" || content_type == "application/apply-patch+cbor";
        if !is_apply && p.force.is_some() {
            return Err(ApiError::invalid(
                "meta.k8s.io",
                "PatchOptions",
                "",
                vec![crate::error::Cause {
                    reason: "FieldValueForbidden".into(),
                    message: "Forbidden: may not be specified for non-apply patch".into(),
                    field: "force".into(),
                }],
            ));
        }
        if is_apply {
            return self.apply(rt, ns, name, sub, body, p);
        }
        let doc: Value =
            serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
        let old = self
            .store
            .get(&Self::key(rt, ns, name))
            .cloned()
            .ok_or_else(|| ApiError::not_found(&rt.group, &rt.plural, name))?;
        let base = Self::present(rt, &old);
        let new = match content_type {
            "application/merge-patch+json" => patch::merge_patch(&base, &doc),
            "application/json-patch+json" => patch::json_patch(&base, &doc).map_err(|m| {
                ApiError::invalid(
                    &rt.group,
                    &rt.kind,
                    name,
                    vec![crate::error::Cause {
                        reason: "FieldValueInvalid".into(),
                        message: m,
                        field: String::new(),
                    }],
                )
            })?,
            "application/strategic-merge-patch+json" => {
                if rt.is_custom() {
                    return Err(ApiError::UnsupportedMediaType {
                        message: "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml".into(),
                    });
                }
                let schemas = self.schemas.clone();
                let t = match &rt.schema {
                    SchemaSource::Builtin(def) => schemas.root(def),
                    SchemaSource::Custom(_) => TypeNode::unknown(),
                };
                patch::strategic_merge_patch(&base, &doc, t)
            }
            other => {
                return Err(ApiError::UnsupportedMediaType {
                    message: format!(
                        "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {other})"
                    ),
                });
            }
        };
        // a resourceVersion only counts as a precondition when the patch itself sets it
        let mut new = new;
        if doc.pointer("/metadata/resourceVersion").is_none() {
            new["metadata"]["resourceVersion"] =
                old.pointer("/metadata/resourceVersion").cloned().unwrap_or(Value::Null);
        }
        self.update_with(rt, ns, name, sub, old, new, p)
    }

    /// Server-side apply.
    fn apply(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        sub: &str,
        body: &[u8],
        p: &Params,
    ) -> ApiResult<Resp> {
        let manager = p.field_manager.clone().unwrap_or_default();
        if manager.is_empty() {
            return Err(ApiError::invalid(
                "meta.k8s.io",
                "PatchOptions",
                "",
                vec![crate::error::Cause {
                    reason: "FieldValueRequired".into(),
                    message: "Required value: is required for apply patch".into(),
                    field: "fieldManager".into(),
                }],
            ));
        }
        let mut cfg: Value = serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_request(format!("error decoding YAML: {e} (the simulator accepts the JSON form of apply configurations, as kubectl and client libraries send)"))
        })?;
        if !cfg.is_object() {
            return Err(ApiError::bad_request(
                "error decoding YAML: apply configuration must be an object",
            ));
        }
        let av = cfg
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let kind = cfg.get("kind").and_then(Value::as_str).unwrap_or_default().to_string();
        if av.is_empty() || kind.is_empty() {
            return Err(ApiError::bad_request(format!(
                "error decoding YAML: Object 'Kind' is missing in '{}'",
                String::from_utf8_lossy(body)
            )));
        }
        Self::check_body_type(rt, &cfg)?;
        if !cfg.get("metadata").is_some_and(Value::is_object) {
            cfg["metadata"] = json!({});
        }
        let cfg_name = meta_str(&cfg, "name").to_string();
        if !cfg_name.is_empty() && cfg_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({cfg_name}) does not match the name on the URL ({name})"
            )));
        }
        let cfg_ns = meta_str(&cfg, "namespace").to_string();
        if rt.namespaced && !cfg_ns.is_empty() && cfg_ns != ns {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        if cfg.pointer("/metadata/managedFields").is_some_and(|m| !m.is_null()) {
            return Err(ApiError::bad_request("metadata.managedFields must be nil"));
        }
        let schemas = self.schemas.clone();
        let v = self.validators(rt, &schemas)?;
        validation::check(&v, &mut cfg, Directive::Strict, Mode::ApplyConfig, name, ns)?;
        // what this endpoint may change
        if sub == "status" {
            let status = cfg.get("status").cloned();
            let mut only = json!({"apiVersion": av, "kind": kind, "metadata": {"name": name}});
            if let Some(s) = status {
                only["status"] = s;
            }
            cfg = only;
        } else if rt.status_subresource
            && let Some(m) = cfg.as_object_mut()
        {
            m.remove("status");
        }
        let key = Self::key(rt, ns, name);
        let existing = self.store.get(&key).cloned();
        let creating = existing.is_none();
        if creating && sub == "status" {
            return Err(ApiError::not_found(&rt.group, &rt.plural, name));
        }
        self.check_namespace(rt, ns, name, creating)?;
        if creating {
            self.check_crd_alive(rt)?;
        }
        let rv = meta_str(&cfg, "resourceVersion").to_string();
        if !rv.is_empty() {
            match &existing {
                Some(o) if meta_str(o, "resourceVersion") == rv => {}
                _ => return Err(ApiError::stale(&rt.group, &rt.plural, name)),
            }
            cfg["metadata"]
                .as_object_mut()
                .expect("metadata")
                .remove("resourceVersion");
        }
        let live = match &existing {
            Some(o) => Self::present(rt, o),
            None => {
                let mut meta = json!({"name": name});
                if rt.namespaced {
                    meta["namespace"] = json!(ns);
                }
                json!({"apiVersion": rt.api_version(), "kind": rt.kind, "metadata": meta})
            }
        };
        let entries = managed::read(&live);
        let skip = skipper(sub, rt.status_subresource);
        let target = Target {
            group: rt.group.clone(),
            kind: rt.plural.clone(),
            name: name.to_string(),
        };
        let applied = apply::apply(
            &live,
            &cfg,
            entries,
            &manager,
            sub,
            &rt.api_version(),
            p.force.unwrap_or(false),
            v.types,
            &skip,
            target,
        )?;
        let mut new = applied.object;
        new["apiVersion"] = json!(rt.api_version());
        new["kind"] = json!(rt.kind);
        {
            let m = new["metadata"].as_object_mut().expect("metadata object");
            m.insert("name".into(), json!(name));
            if rt.namespaced {
                m.insert("namespace".into(), json!(ns));
            }
        }
        if creating {
            new["metadata"]["uid"] = json!(uuid::Uuid::new_v4().to_string());
            new["metadata"]["creationTimestamp"] = json!(now());
        }
        if let Some(o) = &existing
            && is_deleting(o)
        {
            let before = finalizers(o);
            let added: Vec<String> = finalizers(&new).into_iter().filter(|f| !before.contains(f)).collect();
            if !added.is_empty() {
                return Err(ApiError::invalid(
                    &rt.group,
                    &rt.kind,
                    name,
                    vec![crate::error::Cause {
                        reason: "FieldValueForbidden".into(),
                        message: format!(
                            "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers {added:?}"
                        ),
                        field: "metadata.finalizers".into(),
                    }],
                ));
            }
        }
        let strict = Params {
            field_validation: Directive::Strict,
            ..p.clone()
        };
        let warnings = self.admit(rt, &mut new, &strict, existing.as_ref())?;
        self.default(rt, &mut new, existing.as_ref());
        managed::write(&mut new, &applied.entries);
        let out = self.commit(rt, key, existing.as_ref(), new, p.dry_run);
        Ok(Resp {
            code: if creating { 201 } else { 200 },
            body: out,
            warnings,
        })
    }

    /// DELETE of one object.
    pub fn delete(&mut self, rt: &ResourceType, ns: &str, name: &str, opts: &Value, p: &Params) -> ApiResult<Resp> {
        let key = Self::key(rt, ns, name);
        let obj = self
            .store
            .get(&key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&rt.group, &rt.plural, name))?;
        if let Some(uid) = opts.pointer("/preconditions/uid").and_then(Value::as_str)
            && uid != meta_str(&obj, "uid")
        {
            return Err(ApiError::conflict_msg(
                &rt.group,
                &rt.plural,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    meta_str(&obj, "uid")
                ),
            ));
        }
        if let Some(rv) = opts.pointer("/preconditions/resourceVersion").and_then(Value::as_str)
            && rv != meta_str(&obj, "resourceVersion")
        {
            return Err(ApiError::conflict_msg(
                &rt.group,
                &rt.plural,
                name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    meta_str(&obj, "resourceVersion")
                ),
            ));
        }
        let dry_run = p.dry_run
            || opts
                .get("dryRun")
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|x| x == "All"));
        let policy = opts
            .get("propagationPolicy")
            .and_then(Value::as_str)
            .map(String::from)
            .or_else(|| p.propagation_policy.clone())
            .or_else(|| match opts.get("orphanDependents") {
                Some(Value::Bool(true)) => Some("Orphan".into()),
                _ => None,
            })
            .unwrap_or_else(|| "Background".into());
        if !["Orphan", "Background", "Foreground"].contains(&policy.as_str()) {
            return Err(ApiError::invalid(
                "meta.k8s.io",
                "DeleteOptions",
                "",
                vec![crate::error::Cause {
                    reason: "FieldValueNotSupported".into(),
                    message: format!(
                        "Unsupported value: {policy:?}: supported values: \"Foreground\", \"Background\", \"Orphan\""
                    ),
                    field: "propagationPolicy".into(),
                }],
            ));
        }
        Ok(ok(self.delete_object(rt, key, obj, &policy, dry_run)))
    }

    /// Delete (or start deleting) a stored object; returns the answer body.
    pub fn delete_object(&mut self, rt: &ResourceType, key: ObjKey, obj: Value, policy: &str, dry_run: bool) -> Value {
        let uid = meta_str(&obj, "uid").to_string();
        let is_ns = rt.group.is_empty() && rt.kind == "Namespace";
        let mut fins = finalizers(&obj);
        if policy == "Foreground" && !fins.iter().any(|f| f == "foregroundDeletion") && self.has_dependents(&uid) {
            fins.push("foregroundDeletion".into());
        }
        if is_ns || !fins.is_empty() {
            if dry_run {
                return Self::present(rt, &obj);
            }
            if policy == "Orphan" {
                self.orphan_dependents(&uid);
            }
            let mut new = obj.clone();
            if !is_deleting(&new) {
                new["metadata"]["deletionTimestamp"] = json!(now());
                new["metadata"]["deletionGracePeriodSeconds"] = json!(0);
            }
            if !fins.is_empty() {
                new["metadata"]["finalizers"] = json!(fins);
            }
            if is_ns {
                new["status"]["phase"] = json!("Terminating");
            }
            if new == obj {
                return Self::present(rt, &obj);
            }
            let stored = self.store.put(key, new);
            return Self::present(rt, &stored);
        }
        if dry_run {
            return status_success(rt, &obj);
        }
        if policy == "Orphan" {
            self.orphan_dependents(&uid);
        }
        self.store.remove(&key);
        status_success(rt, &obj)
    }

    /// DELETE on a collection.
    pub fn delete_collection(
        &mut self,
        rt: &ResourceType,
        ns: Option<&str>,
        opts: &Value,
        p: &Params,
    ) -> ApiResult<Resp> {
        let items = self.select(rt, ns, p)?;
        let dry_run = p.dry_run
            || opts
                .get("dryRun")
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|x| x == "All"));
        let policy = opts
            .get("propagationPolicy")
            .and_then(Value::as_str)
            .map(String::from)
            .or_else(|| p.propagation_policy.clone())
            .unwrap_or_else(|| "Background".into());
        let mut out = vec![];
        for (key, _) in items {
            if let Some(obj) = self.store.get(&key).cloned() {
                let body = self.delete_object(rt, key, obj, &policy, dry_run);
                if body.get("kind").and_then(Value::as_str) != Some("Status") {
                    out.push(body);
                }
            }
        }
        Ok(ok(
            json!({"kind": rt.list_kind, "apiVersion": rt.api_version(), "metadata": {"resourceVersion": self.store.rv().to_string()}, "items": out}),
        ))
    }

    fn has_dependents(&self, uid: &str) -> bool {
        !uid.is_empty()
            && self
                .store
                .keys()
                .iter()
                .any(|k| self.store.get(k).is_some_and(|o| owned_by(o, uid)))
    }

    fn orphan_dependents(&mut self, uid: &str) {
        for k in self.store.keys() {
            let Some(o) = self.store.get(&k) else { continue };
            if owned_by(o, uid) {
                let mut n = o.clone();
                if let Some(refs) = n.pointer_mut("/metadata/ownerReferences").and_then(Value::as_array_mut) {
                    refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(uid));
                    if refs.is_empty() {
                        n["metadata"]
                            .as_object_mut()
                            .expect("metadata")
                            .remove("ownerReferences");
                    }
                }
                self.store.put(k, n);
            }
        }
    }

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
