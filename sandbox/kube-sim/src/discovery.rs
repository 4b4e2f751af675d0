//! Discovery documents: `/version`, `/api`, `/api/v1`, `/apis`, `/apis/<group>`,
//! `/apis/<group>/<version>`.
//!
//! Owns rendering the legacy (non-aggregated) discovery documents from the served kinds, so
//! `kubectl api-resources`, kubectl's REST mapper and kube-rs `Discovery` work.
//!
//! Rules kept here:
//! - Only legacy discovery is served; a client asking for aggregated discovery
//!   (`apidiscovery.k8s.io/v2`) gets the legacy document with `Content-Type: application/json`,
//!   which clients treat as "not supported" and fall back from, as with an older server.
//! - Custom resource groups appear once their CRD is established and vanish with it.
//! - Each resource lists its real scope, kind, singular name, short names, categories, verbs,
//!   and its `status` subresource when it has one (`scale` too, as `autoscaling/v1` `Scale`).

use crate::kinds::{Kinds, ResourceType};
use serde_json::{Value, json};

/// `/version`.
pub fn version(k8s_version: &str) -> Value {
    let v = k8s_version.trim_start_matches('v');
    let mut parts = v.split('.');
    let major = parts.next().unwrap_or("1");
    let minor = parts.next().unwrap_or("35");
    let patch = parts.next().unwrap_or("0");
    json!({
        "major": major,
        "minor": minor,
        "emulationMajor": major,
        "emulationMinor": minor,
        "minCompatibilityMajor": major,
        "minCompatibilityMinor": minor,
        "gitVersion": format!("v{major}.{minor}.{patch}"),
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.25.0",
        "compiler": "gc",
        "platform": "linux/amd64"
    })
}

/// `/api`.
pub fn core_versions(server_addr: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_addr}]
    })
}

fn group_doc(group: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    json!({
        "name": group,
        "versions": vs,
        "preferredVersion": vs.first().cloned().unwrap_or(Value::Null),
    })
}

/// `/apis`.
pub fn groups(kinds: &Kinds) -> Value {
    let groups: Vec<Value> = kinds
        .groups()
        .into_iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(g, vs)| group_doc(&g, &vs))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/<group>`, or None when the group is not served.
pub fn group(kinds: &Kinds, name: &str) -> Option<Value> {
    let (_, versions) = kinds.groups().into_iter().find(|(g, _)| g == name && !g.is_empty())?;
    let mut doc = group_doc(name, &versions);
    doc["kind"] = json!("APIGroup");
    doc["apiVersion"] = json!("v1");
    Some(doc)
}

fn resource_entry(t: &ResourceType) -> Value {
    let mut r = json!({
        "name": t.plural,
        "singularName": t.singular,
        "namespaced": t.namespaced,
        "kind": t.kind,
        "verbs": t.verbs(),
    });
    if !t.short_names.is_empty() {
        r["shortNames"] = json!(t.short_names);
    }
    if !t.categories.is_empty() {
        r["categories"] = json!(t.categories);
    }
    r
}

/// `/api/v1` or `/apis/<group>/<version>`, or None when not served.
pub fn resources(kinds: &Kinds, group: &str, version: &str) -> Option<Value> {
    let mut list = vec![];
    for t in kinds.all().filter(|t| t.group == group && t.version == version) {
        list.push(resource_entry(t));
        if t.status_subresource {
            list.push(json!({
                "name": format!("{}/status", t.plural),
                "singularName": "",
                "namespaced": t.namespaced,
                "kind": t.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
        if crate::scale::has_scale(t) {
            // the scale client finds the Scale's group/version here
            list.push(json!({
                "name": format!("{}/scale", t.plural),
                "singularName": "",
                "namespaced": t.namespaced,
                "group": "autoscaling",
                "version": "v1",
                "kind": "Scale",
                "verbs": ["get", "patch", "update"],
            }));
        }
    }
    if list.is_empty() {
        return None;
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": list}))
}
