//! `kubernetes:Object`: one Kubernetes object of any kind, applied server-side.
//!
//! A program declares an object with a typed k8s-openapi value ([`Object::typed`] and the
//! helpers [`namespace`], [`service_account`], [`config_map`], [`secret`]) or a JSON manifest
//! for any other kind ([`Object::dynamic`]; custom resources included). The kind is resolved
//! through discovery of its group/version at each operation, so a custom resource declared
//! after its CRD (see [`Object::after`]) works in the same apply.
//!
//! Rules kept here:
//! - create and update are server-side apply with field manager `spar`; a conflict with another
//!   manager fails with the fields named and how to take them over ([`Object::force`]);
//! - the id is `<apiVersion>:<kind>:<namespace>/<name>` (`<apiVersion>:<kind>:<name>` for
//!   cluster-scoped kinds); changing apiVersion, kind, name or namespace replaces the object;
//! - `read` projects the live object onto the manifest as spar applied it (only the fields
//!   spar manages), so server defaults and other managers' fields are not drift, while a
//!   changed or removed field spar set is;
//! - after applying, spar waits for readiness (Deployment available, DaemonSet/StatefulSet
//!   rolled out, CRD established, Namespace active) within the user's timeout, reporting
//!   progress; `delete` returns once the object is gone (an object, or a kind, already gone
//!   is success);
//! - a namespaced object that names no namespace goes to the provider's default namespace.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine as _;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::{ApiCapabilities, ApiResource, Scope};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::connection::{Connection, client_for};
use super::provider::KubeProvider;
use crate::declaration::Expr;
use crate::model::secret::Secret;
use crate::model::{Handle, Input, Output, Resource};
use crate::provider::{
    Created, DiffResult, OpContext, ProviderError, ReadResult, ResourceProvider, Schema, schema_diff,
};

pub const KIND: &str = "kubernetes:Object";

/// The field manager spar applies with.
pub const FIELD_MANAGER: &str = "spar";

/// How long spar waits for readiness or deletion when the user set no timeout.
const DEFAULT_WAIT: Duration = Duration::from_secs(600);
const POLL: Duration = Duration::from_millis(200);

/// How dependents of a deleted object are deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Propagation {
    Background,
    Foreground,
    Orphan,
}

/// A Kubernetes object: a manifest `M` (a k8s-openapi type, JSON, or any serializable struct,
/// possibly holding outputs of other resources) and how spar applies it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Object<M = Value> {
    provider: Output<Connection>,
    manifest: M,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<Input<String>>,
    #[serde(skip_serializing_if = "is_false")]
    force: bool,
    wait: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    delete_propagation: Option<Propagation>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    after: Vec<Output<String>>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Object<Value> {
    /// Any kind, as a JSON manifest with `apiVersion`, `kind` and `metadata.name`.
    pub fn dynamic(provider: &Handle<KubeProvider>, manifest: Value) -> Self {
        Object::with_manifest(provider, manifest)
    }
}

impl<M: Serialize> Object<M> {
    /// Any kind, as a serializable document that may hold outputs of other resources
    /// (an EC2NodeClass selecting a security group by an id known only after apply).
    pub fn document(provider: &Handle<KubeProvider>, manifest: M) -> Self {
        Object::with_manifest(provider, manifest)
    }
}

impl<K: k8s_openapi::Resource + Serialize> Object<K> {
    /// A typed object (`Deployment`, `DaemonSet`, ...) from k8s-openapi.
    pub fn typed(provider: &Handle<KubeProvider>, object: K) -> Self {
        Object::with_manifest(provider, object)
    }
}

impl<M> Object<M> {
    fn with_manifest(provider: &Handle<KubeProvider>, manifest: M) -> Self {
        Object {
            provider: provider.connection(),
            manifest,
            namespace: None,
            force: false,
            wait: true,
            delete_propagation: None,
            after: Vec::new(),
        }
    }

    /// Places the object in `ns` (overrides `metadata.namespace`; may be another object's output).
    pub fn namespace(mut self, ns: impl Into<Input<String>>) -> Self {
        self.namespace = Some(ns.into());
        self
    }

    /// Takes over fields another field manager owns instead of failing with a conflict.
    pub fn force(mut self) -> Self {
        self.force = true;
        self
    }

    /// Does not wait for readiness after applying.
    pub fn no_wait(mut self) -> Self {
        self.wait = false;
        self
    }

    /// How dependents are deleted with it (default: background).
    pub fn delete_propagation(mut self, p: Propagation) -> Self {
        self.delete_propagation = Some(p);
        self
    }

    /// Applies this object only after `other` (say, a custom resource after its CRD), and
    /// deletes it before.
    pub fn after<T>(mut self, other: &Handle<T>) -> Self {
        self.after.push(other.id());
        self
    }
}

/// A lookup of an existing object (made by another tool, a controller, the cluster
/// itself), for [`crate::Stack::lookup`]: its handle's outputs are the identity outputs a
/// declared object has, plus `object`, the live object as the API server serves it
/// (without `metadata.managedFields`), such as `handle.output::<String>("object.data.key")`.
#[derive(Serialize)]
pub struct ObjectLookup {
    provider: Output<Connection>,
    #[serde(rename = "apiVersion")]
    api_version: String,
    kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<Input<String>>,
    name: Input<String>,
}

impl Object {
    /// The object `kind` (`apiVersion`, say `v1`) named `name`, in `namespace` for
    /// namespaced kinds, in the cluster `provider` connects to.
    pub fn lookup(
        provider: &Handle<KubeProvider>,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: impl Into<Input<String>>,
    ) -> ObjectLookup {
        ObjectLookup {
            provider: provider.connection(),
            api_version: api_version.to_string(),
            kind: kind.to_string(),
            namespace: namespace.map(|n| Input::from(n.to_string())),
            name: name.into(),
        }
    }
}

impl crate::model::Lookup for ObjectLookup {
    type Resource = Object;
    fn kind(&self) -> String {
        KIND.into()
    }
    fn provider(&self) -> Arc<dyn ResourceProvider> {
        Arc::new(ObjectProvider::new())
    }
}

impl<M: Serialize> Resource for Object<M> {
    fn kind(&self) -> String {
        KIND.into()
    }
    fn provider(&self) -> Arc<dyn ResourceProvider> {
        Arc::new(ObjectProvider::new())
    }
}

impl<M> Handle<Object<M>> {
    /// The object's name.
    pub fn name(&self) -> Output<String> {
        self.output("name")
    }
    /// The object's namespace (empty for cluster-scoped kinds).
    pub fn namespace(&self) -> Output<String> {
        self.output("namespace")
    }
    /// The object's uid.
    pub fn uid(&self) -> Output<String> {
        self.output("uid")
    }
}

fn meta(name: &str, namespace: Option<&str>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: namespace.map(str::to_string),
        ..Default::default()
    }
}

/// A Namespace.
pub fn namespace(provider: &Handle<KubeProvider>, name: &str) -> Object<Namespace> {
    Object::typed(
        provider,
        Namespace {
            metadata: meta(name, None),
            ..Default::default()
        },
    )
}

/// A ServiceAccount (use [`Object::namespace`] to place it from another object's output).
pub fn service_account(provider: &Handle<KubeProvider>, namespace: Option<&str>, name: &str) -> Object<ServiceAccount> {
    Object::typed(
        provider,
        ServiceAccount {
            metadata: meta(name, namespace),
            ..Default::default()
        },
    )
}

/// A ConfigMap with string data.
pub fn config_map(
    provider: &Handle<KubeProvider>,
    namespace: Option<&str>,
    name: &str,
    data: BTreeMap<String, String>,
) -> Object<ConfigMap> {
    Object::typed(
        provider,
        ConfigMap {
            metadata: meta(name, namespace),
            data: Some(data),
            ..Default::default()
        },
    )
}

/// The manifest of a Secret whose values are spar secrets (encrypted in state, never shown).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretManifest {
    api_version: &'static str,
    kind: &'static str,
    metadata: ObjectMeta,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    secret_type: Option<String>,
    data: BTreeMap<String, Input<Value>>,
}

/// A Secret; add its values with [`Object::data`] / [`Object::data_from`].
pub fn secret(provider: &Handle<KubeProvider>, namespace: Option<&str>, name: &str) -> Object<SecretManifest> {
    Object::with_manifest(
        provider,
        SecretManifest {
            api_version: "v1",
            kind: "Secret",
            metadata: meta(name, namespace),
            secret_type: None,
            data: BTreeMap::new(),
        },
    )
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
}

impl Object<SecretManifest> {
    /// A value (stored base64 in `data`, secret in state and plans).
    pub fn data(mut self, key: &str, value: &Secret<String>) -> Self {
        // Exposed only to encode it; it is wrapped as a secret again at once.
        let encoded = Secret::new(b64(value.expose()));
        let v = serde_json::to_value(&encoded).expect("a string serializes");
        self.manifest.data.insert(key.to_string(), Input::Value(v));
        self
    }

    /// A value from another resource's output (secret when that output is).
    pub fn data_from(mut self, key: &str, value: &Output<String>) -> Self {
        let encoded = value.map(|s| Value::String(b64(&s)));
        self.manifest.data.insert(key.to_string(), Input::Output(encoded));
        self
    }

    /// The Secret's `type` (default `Opaque`).
    pub fn secret_type(mut self, t: &str) -> Self {
        self.manifest.secret_type = Some(t.to_string());
        self
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ObjectInputs {
    provider: Connection,
    manifest: Value,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    force: bool,
    #[serde(default = "yes")]
    wait: bool,
    #[serde(default)]
    delete_propagation: Option<Propagation>,
}

fn yes() -> bool {
    true
}

/// Which object an operation is about.
#[derive(Debug, Clone)]
struct Target {
    api_version: String,
    kind: String,
    name: String,
    /// As declared (`None`: the default namespace for namespaced kinds).
    namespace: Option<String>,
}

impl Target {
    fn describe(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {ns}/{}", self.kind, self.name),
            None => format!("{} {}", self.kind, self.name),
        }
    }
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

fn i64_at(v: &Value, path: &[&str]) -> Option<i64> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_i64()
}

impl ObjectInputs {
    fn parse(inputs: &Value) -> Result<Self, ProviderError> {
        let i: ObjectInputs = serde_json::from_value(inputs.clone())
            .map_err(|e| ProviderError::msg(format!("invalid kubernetes:Object inputs: {e}")))?;
        if !i.manifest.is_object() {
            return Err(ProviderError::msg("the manifest must be a JSON object"));
        }
        Ok(i)
    }

    fn target(&self) -> Result<Target, ProviderError> {
        target_of(&self.manifest, self.namespace.as_deref())
    }
}

/// The identity of `manifest`; `ns_override` replaces its namespace.
fn target_of(m: &Value, ns_override: Option<&str>) -> Result<Target, ProviderError> {
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

fn parse_id(id: &str) -> Result<Target, ProviderError> {
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
enum Resolve {
    /// The cluster does not serve it (no such group/version/kind, or its CRD is gone).
    NotServed(String),
    Failed(ProviderError),
}

async fn resolve(client: &kube::Client, t: &Target) -> Result<(ApiResource, ApiCapabilities), Resolve> {
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
struct Bound {
    api: Api<DynamicObject>,
    namespace: Option<String>,
}

async fn bind(conn: &Connection, t: &mut Target, at: Placement<'_>) -> Result<Result<Bound, String>, ProviderError> {
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

fn id_of(t: &Target, namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) => format!("{}:{}:{ns}/{}", t.api_version, t.kind, t.name),
        None => format!("{}:{}:{}", t.api_version, t.kind, t.name),
    }
}

fn outputs_of(t: &Target, namespace: Option<&str>, live: &DynamicObject) -> Value {
    json!({
        "apiVersion": t.api_version,
        "kind": t.kind,
        "name": t.name,
        "namespace": namespace.unwrap_or(""),
        "uid": live.metadata.uid.clone().unwrap_or_default(),
    })
}

/// Turns an API error into the message a user sees (the server's own words kept).
fn api_error(action: &str, t: &Target, e: kube::Error) -> ProviderError {
    match e {
        kube::Error::Api(s) if s.code == 409 && s.reason == "Conflict" && action == "applying" => {
            ProviderError::msg(format!(
                "applying {}: {} (another field manager owns these fields; change them back there, or set `force` on this object to take them over)",
                t.describe(),
                s.message
            ))
        }
        kube::Error::Api(s) => ProviderError::msg(format!(
            "{action} {}: {} ({} {})",
            t.describe(),
            s.message,
            s.code,
            s.reason
        )),
        other => ProviderError::msg(format!("{action} {}: {other}", t.describe())),
    }
}

async fn sleep_or_cancel(ctx: &OpContext) -> Result<(), ProviderError> {
    tokio::select! {
        _ = ctx.cancel.cancelled() => Err(ProviderError::Cancelled),
        _ = tokio::time::sleep(POLL) => Ok(()),
    }
}

/// `None` when the object is ready; otherwise what it is waiting for.
pub fn not_ready(kind: &str, obj: &Value) -> Option<String> {
    let generation = i64_at(obj, &["metadata", "generation"]).unwrap_or(0);
    let observed = i64_at(obj, &["status", "observedGeneration"]).unwrap_or(-1);
    let st = |k: &str| i64_at(obj, &["status", k]).unwrap_or(0);
    match kind {
        "Deployment" | "StatefulSet" => {
            if observed < generation {
                return Some(format!("waiting for the controller to see generation {generation}"));
            }
            let want = i64_at(obj, &["spec", "replicas"]).unwrap_or(1);
            let (updated, ready) = if kind == "Deployment" {
                (st("updatedReplicas"), st("availableReplicas"))
            } else {
                (st("updatedReplicas"), st("readyReplicas"))
            };
            if updated < want || ready < want || st("replicas") > want {
                Some(format!(
                    "{ready}/{want} replicas {}, {updated} updated",
                    if kind == "Deployment" { "available" } else { "ready" }
                ))
            } else {
                None
            }
        }
        "DaemonSet" => {
            if observed < generation {
                return Some(format!("waiting for the controller to see generation {generation}"));
            }
            let want = st("desiredNumberScheduled");
            let (updated, available) = (st("updatedNumberScheduled"), st("numberAvailable"));
            if updated < want || available < want {
                Some(format!("{available}/{want} pods available, {updated} updated"))
            } else {
                None
            }
        }
        "CustomResourceDefinition" => {
            let established = obj
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Established" && c["status"] == "True"));
            (!established).then(|| "waiting for the CRD to be established".to_string())
        }
        // A Job is ready when it has completed (what `helm install --wait-for-jobs` and a
        // hook wait for); a failed one never is, and says why.
        "Job" => {
            let cond = |t: &str| {
                obj.pointer("/status/conditions")
                    .and_then(Value::as_array)
                    .and_then(|cs| cs.iter().find(|c| c["type"] == t && c["status"] == "True"))
            };
            if cond("Complete").is_some() {
                None
            } else if let Some(f) = cond("Failed") {
                Some(format!(
                    "the Job failed: {}",
                    f["message"]
                        .as_str()
                        .or(f["reason"].as_str())
                        .unwrap_or("no reason given")
                ))
            } else {
                let want = i64_at(obj, &["spec", "completions"]).unwrap_or(1);
                Some(format!("{}/{want} completions", st("succeeded")))
            }
        }
        // ARC's runner scale set: ready once its minimum runners run, as ARC's controller
        // counts them (`status.runningEphemeralRunners`, actions-runner-controller
        // `AutoscalingRunnerSetStatus`); a set with no minimum is ready at once. Runners that
        // cannot start (no node for them, no registration) fail the apply, not the first job.
        "AutoscalingRunnerSet" => {
            let want = i64_at(obj, &["spec", "minRunners"]).unwrap_or(0);
            let running = st("runningEphemeralRunners");
            (running < want).then(|| format!("{running}/{want} minimum runners running"))
        }
        "Namespace" => match str_at(obj, &["status", "phase"]) {
            Some("Active") | None => None,
            Some(p) => Some(format!("namespace is {p}")),
        },
        _ => None,
    }
}

/// Why a workload's pods do not run, in the scheduler's words: the first of the pods its
/// `spec.selector.matchLabels` selects (an ARC scale set's: its runners, by ARC's labels), by name, that is unbound with `PodScheduled=False`,
/// e.g. `pod runner-7d9f-x2k4q is Unschedulable: 0/3 nodes are available: 3 node(s) had
/// untolerated taint {CriticalAddonsOnly: true}.` A timeout then says what to fix rather
/// than only that replicas were missing. `None` for other kinds, or when the pods cannot
/// be listed (the wait goes on without it).
async fn unschedulable_pods(api: &Api<DynamicObject>, kind: &str, live: &Value) -> Option<String> {
    let ns = live.pointer("/metadata/namespace")?.as_str()?;
    let selector = match kind {
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" => live
            .pointer("/spec/selector/matchLabels")?
            .as_object()?
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(","),
        // ARC labels every runner pod with its scale set's name and namespace.
        "AutoscalingRunnerSet" => format!(
            "actions.github.com/scale-set-name={},actions.github.com/scale-set-namespace={ns}",
            live.pointer("/metadata/name")?.as_str()?
        ),
        _ => return None,
    };
    let pods: Api<Pod> = Api::namespaced(api.clone().into_client(), ns);
    let list = pods.list(&ListParams::default().labels(&selector)).await.ok()?;
    let mut items = list.items;
    items.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    items.iter().find_map(|p| {
        if p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some() {
            return None;
        }
        let c = p
            .status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .find(|c| c.type_ == "PodScheduled" && c.status == "False")?;
        Some(format!(
            "pod {} is {}: {}",
            p.metadata.name.as_deref().unwrap_or_default(),
            c.reason.as_deref().unwrap_or("not scheduled"),
            c.message.as_deref().unwrap_or("no message")
        ))
    })
}

async fn wait_ready(ctx: &OpContext, api: &Api<DynamicObject>, t: &Target) -> Result<(), ProviderError> {
    let limit = ctx.timeout.unwrap_or(DEFAULT_WAIT);
    let start = Instant::now();
    let mut last = String::new();
    loop {
        let live = api
            .get_opt(&t.name)
            .await
            .map_err(|e| api_error("waiting for", t, e))?
            .ok_or_else(|| ProviderError::msg(format!("{} disappeared while spar waited for it", t.describe())))?;
        let v = serde_json::to_value(&live).map_err(|e| ProviderError::msg(e.to_string()))?;
        let Some(mut why) = not_ready(&t.kind, &v) else {
            return Ok(());
        };
        if let Some(pods) = unschedulable_pods(api, &t.kind, &v).await {
            why = format!("{why}; {pods}");
        }
        if start.elapsed() >= limit {
            return Err(ProviderError::Timeout {
                what: format!("{} to be ready ({why})", t.describe()),
                after: limit,
            });
        }
        if why != last {
            ctx.progress(&format!("waiting for {} to be ready: {why}", t.describe()));
            last = why;
        }
        sleep_or_cancel(ctx).await?;
    }
}

async fn wait_gone(
    ctx: &OpContext,
    api: &Api<DynamicObject>,
    t: &Target,
    uid: Option<&str>,
) -> Result<(), ProviderError> {
    let limit = ctx.timeout.unwrap_or(DEFAULT_WAIT);
    let start = Instant::now();
    let mut reported = false;
    loop {
        match api.get_opt(&t.name).await {
            Ok(None) => return Ok(()),
            Ok(Some(o)) if uid.is_some() && o.metadata.uid.as_deref() != uid => return Ok(()),
            Ok(Some(o)) => {
                if start.elapsed() >= limit {
                    let fin = o.metadata.finalizers.unwrap_or_default().join(", ");
                    return Err(ProviderError::Timeout {
                        what: format!("{} to be deleted (finalizers: [{fin}])", t.describe()),
                        after: limit,
                    });
                }
                if !reported {
                    ctx.progress(&format!("waiting for {} to be deleted", t.describe()));
                    reported = true;
                }
            }
            Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
            Err(e) => return Err(api_error("waiting for the deletion of", t, e)),
        }
        sleep_or_cancel(ctx).await?;
    }
}

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
fn clean(live: &Value) -> Value {
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
fn body_of(manifest: &Value, namespace: Option<&str>) -> Value {
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
    target: Target,
    api: Api<DynamicObject>,
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
    let Ok(bound) = bind(conn, &mut t, at).await? else {
        return Ok(None);
    };
    let live = match bound.api.get_opt(&t.name).await {
        Ok(Some(o)) => o,
        Ok(None) => return Ok(None),
        Err(e) => return Err(api_error("reading", &t, e)),
    };
    let live_v = serde_json::to_value(&live).map_err(|e| ProviderError::msg(e.to_string()))?;
    let ns = bound.namespace.as_deref();
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

/// The provider of `kubernetes:Object`.
pub struct ObjectProvider {
    schema: Schema,
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

    async fn apply(&self, ctx: &OpContext, inputs: &Value) -> Result<(String, Value), ProviderError> {
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
        let Ok(bound) = bind(&conn, &mut t, Placement::default()).await? else {
            return Ok(Vec::new());
        };
        let live = match bound.api.get_opt(&t.name).await {
            Ok(Some(o)) => o,
            Ok(None) => return Ok(Vec::new()),
            Err(e) => return Err(api_error("reading", &t, e)),
        };
        let ns = bound.namespace.as_deref();
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
        let bound = match bind(&conn, &mut t, Placement::default()).await? {
            Ok(b) => b,
            Err(_) => return Ok(None),
        };
        let live = match bound.api.get_opt(&t.name).await {
            Ok(Some(o)) => o,
            Ok(None) => return Ok(None),
            Err(e) => return Err(api_error("reading", &t, e)),
        };
        let live_v = serde_json::to_value(&live).map_err(|e| ProviderError::msg(e.to_string()))?;
        let ns = bound.namespace.as_deref();
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
fn declare(i: &Value) -> Option<Expr> {
    use crate::declaration::{SECRET_PLACEHOLDER, bool_at, json, only_keys, string};
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
