//! PATCH: server-side apply, merge, JSON and strategic merge patches, each turned into a
//! whole object that goes through the write pipeline.

use super::*;

impl State {
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
    pub(super) fn apply(
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
}
