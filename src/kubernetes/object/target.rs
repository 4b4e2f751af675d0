//! Which object an operation is about: inputs parsed, the manifest's identity
//! ([`Target`]), the kind resolved by discovery and bound to its API, ids, outputs and
//! API errors (typed by status).

use kube::api::{Api, DynamicObject};
use kube::core::GroupVersionKind;
use kube::discovery::{ApiCapabilities, ApiResource, Scope};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::kubernetes::connection::{Connection, client_for};
use crate::provider::ProviderError;

use super::*;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ObjectInputs {
    pub(crate) provider: Connection,
    pub(crate) manifest: Value,
    #[serde(default)]
    pub(crate) namespace: Option<String>,
    #[serde(default)]
    pub(crate) force: bool,
    #[serde(default = "yes")]
    pub(crate) wait: bool,
    #[serde(default)]
    pub(crate) delete_propagation: Option<Propagation>,
}

pub(crate) fn yes() -> bool {
    true
}

/// Which object an operation is about.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) api_version: String,
    pub(crate) kind: String,
    pub(crate) name: String,
    /// As declared (`None`: the default namespace for namespaced kinds).
    pub(crate) namespace: Option<String>,
}

impl Target {
    pub(crate) fn describe(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {ns}/{}", self.kind, self.name),
            None => format!("{} {}", self.kind, self.name),
        }
    }
}

pub(crate) fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

pub(crate) fn i64_at(v: &Value, path: &[&str]) -> Option<i64> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_i64()
}

impl ObjectInputs {
    pub(crate) fn parse(inputs: &Value) -> Result<Self, ProviderError> {
        let i: ObjectInputs = serde_json::from_value(inputs.clone())
            .map_err(|e| ProviderError::InvalidInput(format!("invalid kubernetes:Object inputs: {e}")))?;
        if !i.manifest.is_object() {
            return Err(ProviderError::msg("the manifest must be a JSON object"));
        }
        Ok(i)
    }

    pub(crate) fn target(&self) -> Result<Target, ProviderError> {
        target_of(&self.manifest, self.namespace.as_deref())
    }
}

/// The identity of `manifest`; `ns_override` replaces its namespace.
pub(crate) fn target_of(m: &Value, ns_override: Option<&str>) -> Result<Target, ProviderError> {
    let need = |path: &[&str]| {
        str_at(m, path)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .ok_or_else(|| ProviderError::msg(format!("a manifest has no `{}`", path.join("."))))
    };
    Ok(Target {
        api_version: need(&["apiVersion"])?,
        kind: need(&["kind"])?,
        name: need(&["metadata", "name"])?,
        namespace: ns_override
            .map(str::to_string)
            .or_else(|| str_at(m, &["metadata", "namespace"]).map(str::to_string))
            .filter(|s| !s.is_empty()),
    })
}

pub(crate) fn parse_id(id: &str) -> Result<Target, ProviderError> {
    let bad = || {
        ProviderError::msg(format!(
            "`{id}` is not a Kubernetes object id: expected <apiVersion>:<kind>:<namespace>/<name> or <apiVersion>:<kind>:<name>"
        ))
    };
    let mut parts = id.splitn(3, ':');
    let (api_version, kind, rest) = (
        parts.next().ok_or_else(bad)?,
        parts.next().ok_or_else(bad)?,
        parts.next().ok_or_else(bad)?,
    );
    let (namespace, name) = match rest.split_once('/') {
        Some((ns, name)) => (Some(ns.to_string()), name.to_string()),
        None => (None, rest.to_string()),
    };
    if api_version.is_empty() || kind.is_empty() || name.is_empty() {
        return Err(bad());
    }
    Ok(Target {
        api_version: api_version.to_string(),
        kind: kind.to_string(),
        name,
        namespace,
    })
}

/// Why a kind could not be resolved.
pub(crate) enum Resolve {
    /// The cluster does not serve it (no such group/version/kind, or its CRD is gone).
    NotServed(String),
    Failed(ProviderError),
}

pub(crate) async fn resolve(client: &kube::Client, t: &Target) -> Result<(ApiResource, ApiCapabilities), Resolve> {
    let (group, version) = t.api_version.split_once('/').unwrap_or(("", &t.api_version));
    let gvk = GroupVersionKind::gvk(group, version, &t.kind);
    match kube::discovery::pinned_kind(client, &gvk).await {
        Ok(r) => Ok(r),
        Err(kube::Error::Api(s)) if s.code == 404 => Err(Resolve::NotServed(format!(
            "the cluster serves no {} {}: {}",
            t.api_version, t.kind, s.message
        ))),
        Err(kube::Error::Discovery(e)) => Err(Resolve::NotServed(format!(
            "the cluster serves no kind {} in {}: {e}",
            t.kind, t.api_version
        ))),
        Err(e) => Err(Resolve::Failed(ProviderError::msg(format!(
            "discovering {} {}: {e}",
            t.api_version, t.kind
        )))),
    }
}

/// The API of the target's kind and its namespace (resolved for namespaced kinds, and set
/// on the target).
pub(crate) struct Bound {
    pub(crate) api: Api<DynamicObject>,
    pub(crate) namespace: Option<String>,
}

pub(crate) async fn bind(
    conn: &Connection,
    t: &mut Target,
    at: Placement<'_>,
) -> Result<Result<Bound, String>, ProviderError> {
    let default_ns = at.default_ns;
    let client = client_for(conn).await?;
    let (ar, caps) = match resolve(&client, t).await {
        Ok(r) => r,
        Err(Resolve::NotServed(m)) => return Ok(Err(m)),
        Err(Resolve::Failed(e)) => return Err(e),
    };
    Ok(Ok(match caps.scope {
        Scope::Namespaced => {
            let ns = t
                .namespace
                .clone()
                .or_else(|| default_ns.map(str::to_string))
                .unwrap_or_else(|| conn.default_namespace().to_string());
            t.namespace = Some(ns.clone());
            Bound {
                api: Api::namespaced_with(client, &ns, &ar),
                namespace: Some(ns),
            }
        }
        Scope::Cluster => {
            if let Some(ns) = &t.namespace {
                if !at.drop_cluster_namespace {
                    return Err(ProviderError::msg(format!(
                        "{} is cluster-scoped: remove its namespace `{ns}`",
                        t.describe()
                    )));
                }
                // As helm and the API server do: a cluster-scoped object has no namespace.
                t.namespace = None;
            }
            Bound {
                api: Api::all_with(client, &ar),
                namespace: None,
            }
        }
    }))
}

pub(crate) fn id_of(t: &Target, namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) => format!("{}:{}:{ns}/{}", t.api_version, t.kind, t.name),
        None => format!("{}:{}:{}", t.api_version, t.kind, t.name),
    }
}

pub(crate) fn outputs_of(t: &Target, namespace: Option<&str>, live: &DynamicObject) -> Value {
    json!({
        "apiVersion": t.api_version,
        "kind": t.kind,
        "name": t.name,
        "namespace": namespace.unwrap_or(""),
        "uid": live.metadata.uid.clone().unwrap_or_default(),
    })
}

/// Turns an API error into the message a user sees (the server's own words kept).
pub(crate) fn api_error(action: &str, t: &Target, e: kube::Error) -> ProviderError {
    match e {
        kube::Error::Api(s) if s.code == 409 && s.reason == "Conflict" && action == "applying" => {
            ProviderError::msg(format!(
                "applying {}: {} (another field manager owns these fields; change them back there, or set `force` on this object to take them over)",
                t.describe(),
                s.message
            ))
        }
        kube::Error::Api(s) => {
            let text = format!("{action} {}: {} ({} {})", t.describe(), s.message, s.code, s.reason);
            // By the status the API server answered with, never by its message.
            match s.code {
                404 => ProviderError::NotFound(text),
                409 => ProviderError::Conflict(text),
                429 => ProviderError::Throttled(text),
                400 | 422 => ProviderError::InvalidInput(text),
                _ => ProviderError::Failed(text),
            }
        }
        other => ProviderError::msg(format!("{action} {}: {other}", t.describe())),
    }
}

/// The live object `t` names (its namespace resolved, for namespaced kinds), or `None` when
/// it, or its kind, does not exist.
pub(crate) async fn fetch(
    conn: &Connection,
    t: &mut Target,
    at: Placement<'_>,
) -> Result<Option<(DynamicObject, Option<String>)>, ProviderError> {
    let Ok(bound) = bind(conn, t, at).await? else {
        return Ok(None);
    };
    match bound.api.get_opt(&t.name).await {
        Ok(Some(o)) => Ok(Some((o, bound.namespace))),
        Ok(None) => Ok(None),
        Err(e) => Err(api_error("reading", t, e)),
    }
}
