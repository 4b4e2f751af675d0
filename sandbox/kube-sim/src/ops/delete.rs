//! DELETE and deletecollection: finalizers, propagation policies (foreground, background,
//! orphan) and the garbage collection of dependents.

use super::*;

impl State {
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

    pub(super) fn has_dependents(&self, uid: &str) -> bool {
        !uid.is_empty()
            && self
                .store
                .keys()
                .iter()
                .any(|k| self.store.get(k).is_some_and(|o| owned_by(o, uid)))
    }

    pub(super) fn orphan_dependents(&mut self, uid: &str) {
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
}
