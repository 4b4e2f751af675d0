//! One manifest applied, read back (projected onto what spar applied) or deleted: the
//! operations `kubernetes:Object` and `kubernetes:Chart` share.

use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use serde_json::{Map, Value, json};

use crate::kubernetes::connection::Connection;
use crate::provider::{OpContext, ProviderError};

use super::*;

/// Projects `live` onto the shape of `desired`: only the keys (and list items) `desired` has,
/// with the live values. Lists whose items all have a `name` are matched by name, others by
/// position.
pub fn project(desired: &Value, live: &Value) -> Value {
    match (desired, live) {
        (Value::Object(d), Value::Object(l)) => Value::Object(
            d.iter()
                .filter_map(|(k, dv)| l.get(k).map(|lv| (k.clone(), project(dv, lv))))
                .collect::<Map<_, _>>(),
        ),
        (Value::Array(d), Value::Array(l)) => {
            let named = !d.is_empty() && d.iter().all(|x| x.get("name").is_some_and(Value::is_string));
            if named {
                Value::Array(
                    d.iter()
                        .filter_map(|dv| {
                            l.iter()
                                .find(|lv| lv.get("name") == dv.get("name"))
                                .map(|lv| project(dv, lv))
                        })
                        .collect(),
                )
            } else {
                Value::Array(
                    l.iter()
                        .enumerate()
                        .map(|(i, lv)| d.get(i).map_or_else(|| lv.clone(), |dv| project(dv, lv)))
                        .collect(),
                )
            }
        }
        (_, l) => l.clone(),
    }
}

/// A live object as a manifest: without status and server-set metadata (for import).
pub(crate) fn clean(live: &Value) -> Value {
    let mut v = live.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("status");
    }
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in [
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "managedFields",
            "selfLink",
        ] {
            m.remove(k);
        }
    }
    v
}

/// The manifest as sent: with the resolved namespace for namespaced kinds.
pub(crate) fn body_of(manifest: &Value, namespace: Option<&str>) -> Value {
    let mut body = manifest.clone();
    if let Some(m) = body.get_mut("metadata").and_then(Value::as_object_mut) {
        match namespace {
            Some(ns) => {
                m.insert("namespace".into(), json!(ns));
            }
            None => {
                m.remove("namespace");
            }
        }
    }
    body
}

/// Where a manifest goes: `ns_override` replaces its namespace; `default_ns` is used for a
/// namespaced kind that names none (then the connection's default namespace).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Placement<'a> {
    pub ns_override: Option<&'a str>,
    pub default_ns: Option<&'a str>,
    /// Drop the namespace a manifest gives a cluster-scoped kind (what `helm install` and
    /// the API server do with a chart's templates) instead of refusing it (what a
    /// declared object gets: the error names the fix).
    pub drop_cluster_namespace: bool,
}

/// One object applied: its id, outputs, and how to reach it again.
pub(crate) struct Applied {
    pub id: String,
    pub outputs: Value,
    pub(crate) target: Target,
    pub(crate) api: Api<DynamicObject>,
}

/// Applies one manifest server-side as `spar` (taking fields over when `force`).
pub(crate) async fn apply_manifest(
    conn: &Connection,
    manifest: &Value,
    at: Placement<'_>,
    force: bool,
) -> Result<Applied, ProviderError> {
    let mut t = target_of(manifest, at.ns_override)?;
    let bound = bind(conn, &mut t, at).await?.map_err(|m| {
        ProviderError::msg(format!(
            "applying {}: {m} (if a CRD defines it, declare this object `.after(&crd)`)",
            t.describe()
        ))
    })?;
    let body = body_of(manifest, bound.namespace.as_deref());
    let mut params = PatchParams::apply(FIELD_MANAGER);
    if force {
        params = params.force();
    }
    let live = bound
        .api
        .patch(&t.name, &params, &Patch::Apply(&body))
        .await
        .map_err(|e| api_error("applying", &t, e))?;
    let ns = bound.namespace.as_deref();
    Ok(Applied {
        id: id_of(&t, ns),
        outputs: outputs_of(&t, ns, &live),
        target: t,
        api: bound.api,
    })
}

/// Waits until an applied object is ready (see [`not_ready`]).
pub(crate) async fn wait_applied(ctx: &OpContext, applied: &Applied) -> Result<(), ProviderError> {
    wait_ready(ctx, &applied.api, &applied.target).await
}

/// Deletes one object and waits until it is gone (gone already, or its kind gone: success).
pub(crate) async fn delete_manifest(
    ctx: &OpContext,
    conn: &Connection,
    manifest: &Value,
    at: Placement<'_>,
    propagation: Option<Propagation>,
    uid: Option<&str>,
) -> Result<(), ProviderError> {
    let mut t = target_of(manifest, at.ns_override)?;
    let bound = match bind(conn, &mut t, at).await? {
        Ok(b) => b,
        // The kind is gone (its CRD deleted): so are its objects.
        Err(_) => return Ok(()),
    };
    let params = match propagation {
        Some(Propagation::Foreground) => DeleteParams::foreground(),
        Some(Propagation::Orphan) => DeleteParams::orphan(),
        _ => DeleteParams::background(),
    };
    match bound.api.delete(&t.name, &params).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
        Err(e) => return Err(api_error("deleting", &t, e)),
    }
    wait_gone(ctx, &bound.api, &t, uid).await
}

/// The live object of a manifest projected onto it (see [`project`]), with its id, its
/// outputs, and the manifest as it was applied (its namespace resolved, or dropped for a
/// cluster-scoped kind), which is what the projection compares with; `None` when it (or its
/// kind) does not exist.
pub(crate) async fn read_manifest(
    conn: &Connection,
    manifest: &Value,
    at: Placement<'_>,
) -> Result<Option<ReadBack>, ProviderError> {
    let mut t = target_of(manifest, at.ns_override)?;
    let Some((live, ns)) = fetch(conn, &mut t, at).await? else {
        return Ok(None);
    };
    let live_v = serde_json::to_value(&live).map_err(|e| ProviderError::msg(e.to_string()))?;
    let ns = ns.as_deref();
    let desired = body_of(manifest, ns);
    Ok(Some(ReadBack {
        id: id_of(&t, ns),
        projected: project(&desired, &live_v),
        outputs: outputs_of(&t, ns, &live),
        desired,
    }))
}

/// An object read back by [`read_manifest`].
pub(crate) struct ReadBack {
    pub id: String,
    pub projected: Value,
    pub outputs: Value,
    pub desired: Value,
}

/// A minimal manifest naming an object by its outputs (`apiVersion`, `kind`, `name`,
/// `namespace`), enough to read or delete it.
pub(crate) fn identity_manifest(outputs: &Value) -> Value {
    let mut m = json!({
        "apiVersion": outputs["apiVersion"],
        "kind": outputs["kind"],
        "metadata": {"name": outputs["name"]},
    });
    if let Some(ns) = outputs["namespace"].as_str().filter(|s| !s.is_empty()) {
        m["metadata"]["namespace"] = json!(ns);
    }
    m
}
