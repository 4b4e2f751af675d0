//! The builders a program declares objects with: [`Object`] (typed, dynamic or a
//! document), its options, the helpers for common kinds, and [`ObjectLookup`].

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::kubernetes::connection::Connection;
use crate::kubernetes::provider::KubeProvider;
use crate::model::secret::Secret;
use crate::model::{Handle, Input, Output, Resource};
use crate::provider::ResourceProvider;

use super::*;

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
    pub(crate) provider: Output<Connection>,
    pub(crate) manifest: M,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) namespace: Option<Input<String>>,
    #[serde(skip_serializing_if = "is_false")]
    pub(crate) force: bool,
    pub(crate) wait: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) delete_propagation: Option<Propagation>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) after: Vec<Output<String>>,
}

pub(crate) fn is_false(b: &bool) -> bool {
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
    pub(crate) fn with_manifest(provider: &Handle<KubeProvider>, manifest: M) -> Self {
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
    pub(crate) provider: Output<Connection>,
    #[serde(rename = "apiVersion")]
    pub(crate) api_version: String,
    pub(crate) kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) namespace: Option<Input<String>>,
    pub(crate) name: Input<String>,
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

pub(crate) fn meta(name: &str, namespace: Option<&str>) -> ObjectMeta {
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
    pub(crate) api_version: &'static str,
    pub(crate) kind: &'static str,
    pub(crate) metadata: ObjectMeta,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub(crate) secret_type: Option<String>,
    pub(crate) data: BTreeMap<String, Input<Value>>,
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

pub(crate) fn b64(s: &str) -> String {
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
