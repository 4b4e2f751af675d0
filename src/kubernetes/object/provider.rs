//! The provider of `kubernetes:Object`.

use std::sync::OnceLock;

use async_trait::async_trait;
use serde_json::{Value, json};

use crate::kubernetes::connection::Connection;
use crate::provider::{
    Created, DiffResult, OpContext, ProviderError, ReadResult, ResourceProvider, Schema, schema_diff,
};

use super::*;

/// The provider of `kubernetes:Object`.
pub struct ObjectProvider {
    pub(crate) schema: Schema,
}

impl ObjectProvider {
    pub fn new() -> Self {
        static SCHEMA: OnceLock<Schema> = OnceLock::new();
        ObjectProvider {
            schema: SCHEMA
                .get_or_init(|| {
                    Schema::new()
                        .replace_on(&[
                            "manifest.apiVersion",
                            "manifest.kind",
                            "manifest.metadata.name",
                            "manifest.metadata.namespace",
                            "namespace",
                        ])
                        .volatile_outputs(&["uid"])
                })
                .clone(),
        }
    }

    pub(crate) async fn apply(&self, ctx: &OpContext, inputs: &Value) -> Result<(String, Value), ProviderError> {
        let i = ObjectInputs::parse(inputs)?;
        let at = Placement {
            ns_override: i.namespace.as_deref(),
            ..Placement::default()
        };
        let applied = apply_manifest(&i.provider, &i.manifest, at, i.force).await?;
        if i.wait {
            wait_applied(ctx, &applied).await?;
        }
        Ok((applied.id, applied.outputs))
    }
}

impl Default for ObjectProvider {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl ResourceProvider for ObjectProvider {
    fn declaration(&self, name: &str, inputs: &Value) -> Option<String> {
        declare(inputs).map(|e| e.statement(name))
    }

    fn kind(&self) -> &str {
        KIND
    }

    fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The schema's diff, except that a new apiVersion of the same object (same kind, name and
    /// namespace: one object served at two versions) is deleted before it is applied again, as
    /// creating first would apply to the very object the delete then removes.
    fn diff(&self, old: &Value, new: &Value) -> DiffResult {
        let mut d = schema_diff(&self.schema, old, new);
        let only_version =
            !d.replace_paths.is_empty() && d.replace_paths.iter().all(|p| p.to_string() == "manifest.apiVersion");
        if only_version {
            d.delete_before_replace = true;
        }
        d
    }

    async fn create(&self, ctx: &OpContext, inputs: &Value) -> Result<Created, ProviderError> {
        let (id, outputs) = self.apply(ctx, inputs).await?;
        Ok(Created { id, outputs })
    }

    /// The object an [`ObjectLookup`] names, if it exists (one at most: it is named).
    async fn lookup(&self, _ctx: &OpContext, query: &Value) -> Result<Vec<ReadResult>, ProviderError> {
        let conn: Connection = serde_json::from_value(query["provider"].clone())
            .map_err(|e| ProviderError::msg(format!("kubernetes:Object lookup: its provider: {e}")))?;
        let mut manifest = json!({
            "apiVersion": query["apiVersion"],
            "kind": query["kind"],
            "metadata": {"name": query["name"]},
        });
        if let Some(ns) = query["namespace"].as_str() {
            manifest["metadata"]["namespace"] = json!(ns);
        }
        let mut t = target_of(&manifest, None)?;
        let Some((live, ns)) = fetch(&conn, &mut t, Placement::default()).await? else {
            return Ok(Vec::new());
        };
        let ns = ns.as_deref();
        let mut object = serde_json::to_value(&live).map_err(|e| ProviderError::msg(e.to_string()))?;
        if let Some(m) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("managedFields");
        }
        let mut outputs = outputs_of(&t, ns, &live);
        outputs["object"] = object;
        Ok(vec![ReadResult {
            id: id_of(&t, ns),
            inputs: query.clone(),
            outputs,
        }])
    }

    async fn read(
        &self,
        _ctx: &OpContext,
        id: &str,
        inputs: &Value,
        _outputs: &Value,
    ) -> Result<Option<ReadResult>, ProviderError> {
        let (conn, mut t, stored) = if inputs.is_null() {
            (Connection::default(), parse_id(id)?, None)
        } else {
            let i = ObjectInputs::parse(inputs)?;
            let t = i.target()?;
            (i.provider.clone(), t, Some(i))
        };
        let Some((live, ns)) = fetch(&conn, &mut t, Placement::default()).await? else {
            return Ok(None);
        };
        let live_v = serde_json::to_value(&live).map_err(|e| ProviderError::msg(e.to_string()))?;
        let ns = ns.as_deref();
        let new_inputs = match stored {
            Some(i) => {
                let mut v = inputs.clone();
                v["manifest"] = project(&i.manifest, &live_v);
                v
            }
            None => json!({
                "provider": conn,
                "manifest": clean(&live_v),
                "wait": true,
            }),
        };
        Ok(Some(ReadResult {
            id: id_of(&t, ns),
            inputs: new_inputs,
            outputs: outputs_of(&t, ns, &live),
        }))
    }

    async fn update(
        &self,
        ctx: &OpContext,
        _id: &str,
        _old: &Value,
        new: &Value,
        _old_outputs: &Value,
    ) -> Result<Value, ProviderError> {
        Ok(self.apply(ctx, new).await?.1)
    }

    async fn delete(&self, ctx: &OpContext, _id: &str, inputs: &Value, outputs: &Value) -> Result<(), ProviderError> {
        let i = ObjectInputs::parse(inputs)?;
        let at = Placement {
            ns_override: i.namespace.as_deref(),
            ..Placement::default()
        };
        let uid = outputs.get("uid").and_then(Value::as_str).filter(|u| !u.is_empty());
        delete_manifest(ctx, &i.provider, &i.manifest, at, i.delete_propagation, uid).await
    }

    async fn find(&self, _ctx: &OpContext, inputs: &Value) -> Result<Option<Created>, ProviderError> {
        let i = ObjectInputs::parse(inputs)?;
        let mut t = i.target()?;
        let Ok(bound) = bind(&i.provider, &mut t, Placement::default()).await? else {
            return Ok(None);
        };
        let live = match bound.api.get_opt(&t.name).await {
            Ok(Some(o)) => o,
            Ok(None) => return Ok(None),
            Err(e) => return Err(api_error("reading", &t, e)),
        };
        let ours = live
            .metadata
            .managed_fields
            .iter()
            .flatten()
            .any(|m| m.manager.as_deref() == Some(FIELD_MANAGER));
        if !ours {
            return Ok(None);
        }
        let ns = bound.namespace.as_deref();
        Ok(Some(Created {
            id: id_of(&t, ns),
            outputs: outputs_of(&t, ns, &live),
        }))
    }
}

/// `kubernetes::Object::dynamic(&provider, json!(manifest))` with its namespace, `force()`,
/// `no_wait()` and propagation; `provider` is the handle of the connection's
/// `kubernetes:Provider`. A Secret's values are never printed: a placeholder stands for
/// each, and a comment says so.
fn declare(i: &Value) -> Option<crate::declaration::Expr> {
    use crate::declaration::{Expr, SECRET_PLACEHOLDER, bool_at, json, only_keys, string};
    if !only_keys(
        i,
        &[
            "provider",
            "manifest",
            "namespace",
            "force",
            "wait",
            "deletePropagation",
        ],
    ) {
        return None;
    }
    let mut manifest = i.get("manifest")?.clone();
    let secret = manifest.get("kind") == Some(&json!("Secret")) && manifest.get("apiVersion") == Some(&json!("v1"));
    if secret {
        for key in ["data", "stringData"] {
            if let Some(Value::Object(m)) = manifest.get_mut(key) {
                for v in m.values_mut() {
                    *v = json!(SECRET_PLACEHOLDER);
                }
            }
        }
    }
    let mut e = Expr::new("kubernetes::Object::dynamic", &["&provider".into(), json(&manifest)])
        .str_setter(i, "namespace", "namespace")?
        .call_if(bool_at(i, "force", false)?, "force", &[])
        .call_if(!bool_at(i, "wait", true)?, "no_wait", &[]);
    match i.get("deletePropagation") {
        None | Some(Value::Null) => {}
        Some(p) => {
            let p: Propagation = serde_json::from_value(p.clone()).ok()?;
            e = e.call("delete_propagation", &[format!("kubernetes::Propagation::{p:?}")]);
        }
    }
    if secret {
        e = e.with_comment(&format!(
            "the values of this Secret are not printed: replace each {} with yours",
            string(SECRET_PLACEHOLDER)
        ));
    }
    Some(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projection_keeps_only_what_spar_applied() {
        let desired = json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"a": "1"}},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "main", "image": "nginx:1"}]}}}
        });
        let live = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "uid": "u", "labels": {"a": "2", "other": "x"}},
            "spec": {"replicas": 2, "strategy": {"type": "RollingUpdate"},
                     "template": {"spec": {"containers": [
                        {"name": "sidecar", "image": "x"},
                        {"name": "main", "image": "nginx:1", "imagePullPolicy": "IfNotPresent"}]}}},
            "status": {"replicas": 2}
        });
        let p = project(&desired, &live);
        assert_eq!(
            p,
            json!({
                "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"a": "2"}},
                "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "main", "image": "nginx:1"}]}}}
            })
        );
        // A removed field is missing from the projection: real drift.
        let gone = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}});
        assert_eq!(project(&desired, &gone)["metadata"], json!({"name": "web"}));
    }

    #[test]
    fn a_new_api_version_deletes_before_replacing_other_identity_changes_do_not() {
        let p = ObjectProvider::new();
        let obj = |v: &str, name: &str| json!({"provider": {}, "manifest": {"apiVersion": v, "kind": "Widget", "metadata": {"name": name}}, "wait": true});
        let d = p.diff(&obj("example.com/v1beta1", "w"), &obj("example.com/v1", "w"));
        assert_eq!(d.replace_paths.len(), 1);
        assert!(d.delete_before_replace);
        let d = p.diff(&obj("example.com/v1", "w"), &obj("example.com/v1", "w2"));
        assert_eq!(d.replace_paths.len(), 1);
        assert!(!d.delete_before_replace);
        let d = p.diff(&obj("example.com/v1", "w"), &obj("example.com/v1", "w"));
        assert!(d.is_empty());
    }

    #[test]
    fn ids_round_trip() {
        let t = parse_id("apps/v1:Deployment:ci/web").unwrap();
        assert_eq!(
            (
                t.api_version.as_str(),
                t.kind.as_str(),
                t.namespace.as_deref(),
                t.name.as_str()
            ),
            ("apps/v1", "Deployment", Some("ci"), "web")
        );
        assert_eq!(id_of(&t, t.namespace.as_deref()), "apps/v1:Deployment:ci/web");
        let t = parse_id("v1:Namespace:ci").unwrap();
        assert_eq!((t.namespace, t.name.as_str()), (None, "ci"));
        assert!(parse_id("nonsense").is_err());
    }

    #[test]
    fn readiness_rules() {
        let d = json!({"metadata": {"generation": 2}, "spec": {"replicas": 2},
                       "status": {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 1}});
        assert_eq!(
            not_ready("Deployment", &d).as_deref(),
            Some("1/2 replicas available, 2 updated")
        );
        let d = json!({"metadata": {"generation": 2}, "spec": {"replicas": 2},
                       "status": {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}});
        assert_eq!(not_ready("Deployment", &d), None);
        let ds = json!({"metadata": {"generation": 1}, "status": {"observedGeneration": 1,
                        "desiredNumberScheduled": 3, "updatedNumberScheduled": 3, "numberAvailable": 3}});
        assert_eq!(not_ready("DaemonSet", &ds), None);
        let crd = json!({"status": {"conditions": [{"type": "NamesAccepted", "status": "True"}]}});
        assert!(not_ready("CustomResourceDefinition", &crd).is_some());
        assert_eq!(not_ready("ConfigMap", &json!({})), None);
    }
}
