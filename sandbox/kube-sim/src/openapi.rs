//! OpenAPI documents: the `/openapi/v3` index and one document per group-version.
//!
//! Owns what kubectl reads from OpenAPI before writing: since kubectl 1.27 `kubectl apply` /
//! `create` / `replace` ask `/openapi/v3/<gv>` whether the server supports the
//! `fieldValidation` parameter for a kind (a PATCH operation tagged with the kind's
//! `x-kubernetes-group-version-kind` that lists `fieldValidation`). When it does, kubectl
//! leaves validation to the server (which this simulator does strictly against the official
//! schemas) and needs no flags.
//!
//! Rules kept here:
//! - Every served kind (custom resources included) gets collection and item paths with its
//!   operations and the `x-kubernetes-group-version-kind` / `x-kubernetes-action` extensions;
//!   write operations list `dryRun`, `fieldManager` and `fieldValidation`, PATCH also `force`.
//! - Component schemas are not published (so `kubectl explain` has nothing to show), and
//!   `/openapi/v2` answers 404 as on servers that have turned it off.
//! - Each index entry carries a content hash, so clients' caches see CRD changes.

use crate::kinds::{Kinds, ResourceType};
use serde_json::{Value, json};
use std::hash::{DefaultHasher, Hash, Hasher};

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn param(name: &str, location: &str, ty: &str) -> Value {
    let mut p = json!({"name": name, "in": location, "schema": {"type": ty, "uniqueItems": true}});
    if location == "path" {
        p["required"] = json!(true);
    }
    p
}

fn op(action: &str, t: &ResourceType, write: bool, is_patch: bool) -> Value {
    let mut params = vec![param("pretty", "query", "string")];
    if write {
        params.push(param("dryRun", "query", "string"));
        params.push(param("fieldManager", "query", "string"));
        params.push(param("fieldValidation", "query", "string"));
    }
    if is_patch {
        params.push(param("force", "query", "boolean"));
    }
    let mut o = json!({
        "operationId": format!("{action}{}", t.kind),
        "parameters": params,
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": t.group, "version": t.version, "kind": t.kind},
    });
    if write {
        let types: &[&str] = if is_patch {
            &[
                "application/apply-patch+yaml",
                "application/json-patch+json",
                "application/merge-patch+json",
                "application/strategic-merge-patch+json",
            ]
        } else {
            &["application/json"]
        };
        let content: serde_json::Map<String, Value> = types
            .iter()
            .map(|c| (c.to_string(), json!({"schema": {"type": "object"}})))
            .collect();
        o["requestBody"] = json!({"content": content, "required": true});
    }
    o
}

/// The document of one group-version, or None when not served.
pub fn document(kinds: &Kinds, group: &str, version: &str, k8s_version: &str) -> Option<Value> {
    let mut paths = serde_json::Map::new();
    for t in kinds.all().filter(|t| t.group == group && t.version == version) {
        let base = format!("/{}", gv_path(group, version));
        let (collection, item) = if t.namespaced {
            (
                format!("{base}/namespaces/{{namespace}}/{}", t.plural),
                format!("{base}/namespaces/{{namespace}}/{}/{{name}}", t.plural),
            )
        } else {
            (format!("{base}/{}", t.plural), format!("{base}/{}/{{name}}", t.plural))
        };
        let mut path_params = vec![];
        if t.namespaced {
            path_params.push(param("namespace", "path", "string"));
        }
        paths.insert(
            collection,
            json!({
                "parameters": path_params.clone(),
                "get": op("list", t, false, false),
                "post": op("post", t, true, false),
                "delete": op("deletecollection", t, false, false),
            }),
        );
        let mut item_params = path_params.clone();
        item_params.push(param("name", "path", "string"));
        paths.insert(
            item.clone(),
            json!({
                "parameters": item_params.clone(),
                "get": op("get", t, false, false),
                "put": op("put", t, true, false),
                "patch": op("patch", t, true, true),
                "delete": op("delete", t, false, false),
            }),
        );
        if t.status_subresource {
            paths.insert(
                format!("{item}/status"),
                json!({
                    "parameters": item_params,
                    "get": op("get", t, false, false),
                    "put": op("put", t, true, false),
                    "patch": op("patch", t, true, true),
                }),
            );
        }
    }
    if paths.is_empty() {
        return None;
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": format!("v{}", k8s_version.trim_start_matches('v'))},
        "paths": paths,
        "components": {"schemas": {}},
    }))
}

/// `/openapi/v3`.
pub fn index(kinds: &Kinds, k8s_version: &str) -> Value {
    let mut paths = serde_json::Map::new();
    let mut gvs: Vec<(String, String)> = kinds.all().map(|t| (t.group.clone(), t.version.clone())).collect();
    gvs.sort();
    gvs.dedup();
    for (g, v) in gvs {
        let doc = document(kinds, &g, &v, k8s_version).unwrap_or(Value::Null);
        let mut h = DefaultHasher::new();
        doc.to_string().hash(&mut h);
        let p = gv_path(&g, &v);
        paths.insert(
            p.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={:016X}", h.finish())}),
        );
    }
    json!({"paths": paths})
}
