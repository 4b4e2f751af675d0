//! `kubernetes:Provider`: a cluster connection declared as a resource.
//!
//! Its inputs say how to reach a cluster (an EKS cluster's outputs, a kubeconfig and context,
//! or a sandbox simulator URL); its outputs are that [`Connection`] under `connection`, which
//! every object takes as an input, so objects depend on their provider through an ordinary
//! edge and a plan for a cluster that does not exist yet shows only creates.
//!
//! Rules kept here: nothing secret is an input or an output (EKS tokens are made per client,
//! see [`super::connection`]); create checks that the cluster answers (`/version`, retried while
//! a new cluster's endpoint comes up) unless `verify` is off; the id names the cluster, not a
//! token; every input changes in place (the connection objects use changes with it); read and
//! delete touch nothing remote.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::connection::{Connection, check_sandbox_url, client_for};
use crate::declaration::Expr;
use crate::model::{Handle, Input, Output, Resource};
use crate::provider::{Created, OpContext, ProviderError, ReadResult, ResourceProvider, Schema};

pub const KIND: &str = "kubernetes:Provider";

/// How long create waits for a cluster to answer by default.
const DEFAULT_VERIFY_TIMEOUT: Duration = Duration::from_secs(300);

/// A connection to one cluster, declared as a resource.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KubeProvider {
    #[serde(skip_serializing_if = "Option::is_none")]
    sandbox_url: Option<Input<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    endpoint: Option<Input<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ca_data: Option<Input<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster_name: Option<Input<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    region: Option<Input<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kubeconfig: Option<Input<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    context: Option<Input<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<String>,
    verify: bool,
}

impl KubeProvider {
    fn empty() -> Self {
        KubeProvider {
            sandbox_url: None,
            endpoint: None,
            ca_data: None,
            cluster_name: None,
            region: None,
            kubeconfig: None,
            context: None,
            namespace: None,
            verify: true,
        }
    }

    /// An EKS cluster, from its outputs (endpoint, base64 CA data, name) and region;
    /// authenticates with an EKS token signed with credentials from the standard AWS chain
    /// (environment, profiles, SSO; the environment only without the `aws` feature).
    pub fn eks(
        endpoint: impl Into<Input<String>>,
        ca_data: impl Into<Input<String>>,
        cluster_name: impl Into<Input<String>>,
        region: impl Into<Input<String>>,
    ) -> Self {
        KubeProvider {
            endpoint: Some(endpoint.into()),
            ca_data: Some(ca_data.into()),
            cluster_name: Some(cluster_name.into()),
            region: Some(region.into()),
            ..Self::empty()
        }
    }

    /// A kubeconfig file and (optionally) one of its contexts.
    pub fn kubeconfig(path: impl Into<Input<String>>, context: Option<&str>) -> Self {
        KubeProvider {
            kubeconfig: Some(path.into()),
            context: context.map(|c| Input::Value(c.to_string())),
            ..Self::empty()
        }
    }

    /// The default kubeconfig (`KUBECONFIG` or `~/.kube/config`), its current context.
    pub fn default_kubeconfig() -> Self {
        Self::empty()
    }

    /// A Kubernetes API simulator at a loopback URL (sandbox mode).
    pub fn sandbox(url: impl Into<Input<String>>) -> Self {
        KubeProvider {
            sandbox_url: Some(url.into()),
            ..Self::empty()
        }
    }

    /// The namespace of namespaced objects that name none (default `default`).
    pub fn namespace(mut self, ns: &str) -> Self {
        self.namespace = Some(ns.to_string());
        self
    }

    /// Skips the check that the cluster answers when the provider is created.
    pub fn no_verify(mut self) -> Self {
        self.verify = false;
        self
    }
}

impl Resource for KubeProvider {
    fn kind(&self) -> String {
        KIND.into()
    }
    fn provider(&self) -> Arc<dyn ResourceProvider> {
        Arc::new(KubeProviderProvider::new())
    }
}

impl Handle<KubeProvider> {
    /// The connection objects take as their `provider` input.
    pub fn connection(&self) -> Output<Connection> {
        self.output("connection")
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProviderInputs {
    #[serde(flatten)]
    connection: Connection,
    #[serde(default = "yes")]
    verify: bool,
}

fn yes() -> bool {
    true
}

/// The provider of `kubernetes:Provider`.
pub struct KubeProviderProvider {
    schema: Schema,
}

impl KubeProviderProvider {
    pub fn new() -> Self {
        static SCHEMA: OnceLock<Schema> = OnceLock::new();
        KubeProviderProvider {
            schema: SCHEMA
                .get_or_init(|| Schema::new().volatile_outputs(&["connection", "serverVersion"]))
                .clone(),
        }
    }
}

impl Default for KubeProviderProvider {
    fn default() -> Self {
        Self::new()
    }
}

fn parse(inputs: &Value) -> Result<ProviderInputs, ProviderError> {
    let i: ProviderInputs = serde_json::from_value(inputs.clone())
        .map_err(|e| ProviderError::InvalidInput(format!("invalid kubernetes:Provider inputs: {e}")))?;
    if let Some(url) = &i.connection.sandbox_url {
        check_sandbox_url(url)?;
    }
    if i.connection.endpoint.is_some() != i.connection.cluster_name.is_some() {
        return Err(ProviderError::msg(
            "an EKS connection needs both the cluster endpoint and the cluster name",
        ));
    }
    Ok(i)
}

fn id_of(c: &Connection) -> String {
    if let Some(url) = &c.sandbox_url {
        return format!("sandbox:{url}");
    }
    if let Some(name) = &c.cluster_name {
        return format!("eks:{}:{name}", c.region.as_deref().unwrap_or(""));
    }
    format!(
        "kubeconfig:{}:{}",
        c.kubeconfig.as_deref().unwrap_or("default"),
        c.context.as_deref().unwrap_or("current")
    )
}

fn outputs(c: &Connection, version: Option<String>) -> Value {
    let mut out = json!({ "connection": c });
    if let Some(v) = version {
        out["serverVersion"] = json!(v);
    }
    out
}

async fn verify(ctx: &OpContext, c: &Connection) -> Result<String, ProviderError> {
    let limit = ctx.timeout.unwrap_or(DEFAULT_VERIFY_TIMEOUT);
    let start = Instant::now();
    loop {
        let attempt = async {
            let client = client_for(c).await?;
            client
                .apiserver_version()
                .await
                .map_err(|e| ProviderError::msg(e.to_string()))
        };
        let last = match attempt.await {
            Ok(info) => return Ok(info.git_version),
            Err(e) => e.to_string(),
        };
        if start.elapsed() >= limit {
            return Err(ProviderError::msg(format!(
                "{} did not answer within {limit:?}: {last}",
                c.describe()
            )));
        }
        ctx.progress(&format!("waiting for {} to answer: {last}", c.describe()));
        tokio::select! {
            _ = ctx.cancel.cancelled() => return Err(ProviderError::Cancelled),
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }
}

#[async_trait]
impl ResourceProvider for KubeProviderProvider {
    /// Bound to `provider`, the handle the Kubernetes kinds' declarations take.
    fn declaration(&self, name: &str, inputs: &Value) -> Option<String> {
        declare(inputs).map(|e| format!("let provider = {}", e.statement(name)))
    }

    fn kind(&self) -> &str {
        KIND
    }

    fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The connection follows from the inputs (only the server version needs a call).
    fn planned_outputs(&self, inputs: &Value) -> Option<Value> {
        parse(inputs).ok().map(|i| outputs(&i.connection, None))
    }

    async fn create(&self, ctx: &OpContext, inputs: &Value) -> Result<Created, ProviderError> {
        let i = parse(inputs)?;
        let version = if i.verify {
            Some(verify(ctx, &i.connection).await?)
        } else {
            None
        };
        Ok(Created {
            id: id_of(&i.connection),
            outputs: outputs(&i.connection, version),
        })
    }

    async fn read(
        &self,
        _ctx: &OpContext,
        id: &str,
        inputs: &Value,
        outputs: &Value,
    ) -> Result<Option<ReadResult>, ProviderError> {
        if inputs.is_null() {
            return Err(ProviderError::msg(
                "a kubernetes:Provider cannot be imported; declare it in the program",
            ));
        }
        Ok(Some(ReadResult {
            id: id.to_string(),
            inputs: inputs.clone(),
            outputs: outputs.clone(),
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
        let i = parse(new)?;
        let version = if i.verify {
            Some(verify(ctx, &i.connection).await?)
        } else {
            None
        };
        Ok(outputs(&i.connection, version))
    }

    async fn delete(
        &self,
        _ctx: &OpContext,
        _id: &str,
        _inputs: &Value,
        _outputs: &Value,
    ) -> Result<(), ProviderError> {
        Ok(())
    }
}

/// `kubernetes::KubeProvider::sandbox(url)`, `eks(...)`, `kubeconfig(path, context)` or
/// `default_kubeconfig()`, with its namespace and `no_verify()`.
fn declare(i: &Value) -> Option<Expr> {
    use crate::declaration::{bool_at, only_keys, string};
    if !only_keys(
        i,
        &[
            "sandboxUrl",
            "endpoint",
            "caData",
            "clusterName",
            "region",
            "kubeconfig",
            "context",
            "namespace",
            "verify",
        ],
    ) {
        return None;
    }
    let c: Connection = serde_json::from_value(i.clone()).ok()?;
    let e = match &c {
        Connection {
            sandbox_url: Some(url),
            endpoint: None,
            ca_data: None,
            cluster_name: None,
            region: None,
            kubeconfig: None,
            context: None,
            ..
        } => Expr::new("kubernetes::KubeProvider::sandbox", &[string(url)]),
        Connection {
            sandbox_url: None,
            endpoint: Some(endpoint),
            ca_data: Some(ca),
            cluster_name: Some(cluster),
            region: Some(region),
            kubeconfig: None,
            context: None,
            ..
        } => Expr::new(
            "kubernetes::KubeProvider::eks",
            &[string(endpoint), string(ca), string(cluster), string(region)],
        ),
        Connection {
            sandbox_url: None,
            endpoint: None,
            ca_data: None,
            cluster_name: None,
            region: None,
            kubeconfig: Some(path),
            context,
            ..
        } => Expr::new(
            "kubernetes::KubeProvider::kubeconfig",
            &[
                string(path),
                context
                    .as_deref()
                    .map_or("None".into(), |c| format!("Some({})", string(c))),
            ],
        ),
        Connection {
            sandbox_url: None,
            endpoint: None,
            ca_data: None,
            cluster_name: None,
            region: None,
            kubeconfig: None,
            context: None,
            ..
        } => Expr::new("kubernetes::KubeProvider::default_kubeconfig", &[]),
        _ => return None,
    };
    let e = match &c.namespace {
        Some(ns) => e.call("namespace", &[string(ns)]),
        None => e,
    };
    Some(e.call_if(!bool_at(i, "verify", true)?, "no_verify", &[]))
}
