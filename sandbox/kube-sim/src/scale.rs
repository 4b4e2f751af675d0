//! The `scale` subresource of Deployments, ReplicaSets and StatefulSets (what `kubectl scale`
//! and HPA-style clients use).
//!
//! Owns presenting a workload as an `autoscaling/v1` `Scale` and writing a `Scale` (PUT or
//! merge/JSON patch) back as a change of the workload's `spec.replicas`.
//!
//! Rules kept here (as the apiserver's `ScaleREST` of `pkg/registry/apps/*/storage`):
//! - `Scale.metadata` is the workload's (name, namespace, uid, resourceVersion,
//!   creationTimestamp); `spec.replicas` is the workload's, `status.replicas` its status's,
//!   `status.selector` the workload's label selector as a selector string.
//! - A `resourceVersion` in the written Scale is a precondition on the workload; a missing
//!   `spec.replicas` is 0; the write is recorded as an Update of subresource `scale`.

use crate::error::ApiError;
use crate::kinds::ResourceType;
use crate::ops::{Params, Resp, State, meta_str};
use crate::patch;
use serde_json::{Value, json};

/// Does this kind have a scale subresource?
pub fn has_scale(rt: &ResourceType) -> bool {
    rt.group == "apps" && matches!(rt.kind.as_str(), "Deployment" | "ReplicaSet" | "StatefulSet")
}

/// `matchLabels` and `matchExpressions` as a selector string (`a=b,c in (d,e)`).
fn selector_string(sel: &Value) -> String {
    let mut parts = vec![];
    if let Some(m) = sel.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in m {
            parts.push(format!("{k}={}", v.as_str().unwrap_or_default()));
        }
    }
    for e in sel
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = e["key"].as_str().unwrap_or_default();
        let values: Vec<&str> = e["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        parts.push(match e["operator"].as_str().unwrap_or_default() {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_string(),
            _ => format!("!{key}"),
        });
    }
    parts.join(",")
}

/// The workload as a Scale.
pub fn to_scale(obj: &Value) -> Value {
    let meta = &obj["metadata"];
    let mut m = serde_json::Map::new();
    for k in ["name", "namespace", "uid", "resourceVersion", "creationTimestamp"] {
        if let Some(v) = meta.get(k) {
            m.insert(k.into(), v.clone());
        }
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": m,
        "spec": {"replicas": obj.pointer("/spec/replicas").cloned().unwrap_or(json!(1))},
        "status": {
            "replicas": obj.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
            "selector": selector_string(obj.pointer("/spec/selector").unwrap_or(&Value::Null)),
        },
    })
}

/// GET .../scale.
pub fn get(st: &State, rt: &ResourceType, ns: &str, name: &str) -> Result<Resp, ApiError> {
    Ok(Resp {
        code: 200,
        body: to_scale(&st.get(rt, ns, name)?),
        warnings: vec![],
    })
}

/// PUT .../scale with a Scale body.
pub fn put(
    st: &mut State,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    scale: &Value,
    p: &Params,
) -> Result<Resp, ApiError> {
    let kind = scale.get("kind").and_then(Value::as_str).unwrap_or("Scale");
    if kind != "Scale" {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({kind}) does not match the expected kind (Scale)"
        )));
    }
    let body_name = meta_str(scale, "name");
    if !body_name.is_empty() && body_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    let mut obj = st.get(rt, ns, name)?;
    let rv = meta_str(scale, "resourceVersion");
    if !rv.is_empty() && rv != meta_str(&obj, "resourceVersion") {
        return Err(ApiError::stale(&rt.group, &rt.plural, name));
    }
    let replicas = scale.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(0);
    if replicas < 0 {
        return Err(ApiError::invalid(
            "autoscaling",
            "Scale",
            name,
            vec![crate::error::Cause {
                reason: "FieldValueInvalid".into(),
                message: format!("Invalid value: {replicas}: must be greater than or equal to 0"),
                field: "spec.replicas".into(),
            }],
        ));
    }
    obj["spec"]["replicas"] = json!(replicas);
    let resp = st.update(rt, ns, name, "scale", obj, p)?;
    Ok(Resp {
        code: 200,
        body: to_scale(&resp.body),
        warnings: resp.warnings,
    })
}

/// PATCH .../scale: the patch applies to the Scale, which is then written as by PUT.
#[allow(clippy::too_many_arguments)]
pub fn patch(
    st: &mut State,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    content_type: &str,
    body: &[u8],
    p: &Params,
) -> Result<Resp, ApiError> {
    let doc: Value =
        serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
    let current = to_scale(&st.get(rt, ns, name)?);
    let patched = match content_type {
        // a Scale has no lists, so a strategic merge patch is a merge patch
        "application/merge-patch+json" | "application/strategic-merge-patch+json" => patch::merge_patch(&current, &doc),
        "application/json-patch+json" => patch::json_patch(&current, &doc).map_err(ApiError::bad_request)?,
        other => {
            return Err(ApiError::UnsupportedMediaType {
                message: format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got {other})"
                ),
            });
        }
    };
    let mut patched = patched;
    if doc.pointer("/metadata/resourceVersion").is_none() {
        // only a resourceVersion the patch itself sets is a precondition
        if let Some(m) = patched.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
        }
    }
    put(st, rt, ns, name, &patched, p)
}
