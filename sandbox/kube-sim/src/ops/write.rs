//! The write pipeline of create and update: admission (the namespace exists and is not
//! terminating, names, the body's kind), validation (schema, then a custom resource's CEL
//! rules), defaulting, managed fields, generation, and the commit to the store.

use super::*;

impl State {
    pub(super) fn validators<'a>(&self, rt: &'a ResourceType, schemas: &'a Schemas) -> ApiResult<Validators<'a>> {
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
    pub(super) fn check_namespace(&self, rt: &ResourceType, ns: &str, name: &str, creating: bool) -> ApiResult<()> {
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
    pub(super) fn check_crd_alive(&self, rt: &ResourceType) -> ApiResult<()> {
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

    pub(super) fn check_body_type(rt: &ResourceType, body: &Value) -> ApiResult<()> {
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

    /// Validate, check metadata and kind rules of a whole object about to be stored; `old` is
    /// the stored object on update (for CEL transition rules and ratcheting).
    pub(super) fn admit(
        &self,
        rt: &ResourceType,
        obj: &mut Value,
        p: &Params,
        old: Option<&Value>,
    ) -> ApiResult<Vec<String>> {
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
    pub(super) fn default(&mut self, rt: &ResourceType, obj: &mut Value, old: Option<&Value>) {
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
    pub(super) fn commit(
        &mut self,
        rt: &ResourceType,
        key: ObjKey,
        old: Option<&Value>,
        mut new: Value,
        dry_run: bool,
    ) -> Value {
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
    pub(super) fn update_with(
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
}
