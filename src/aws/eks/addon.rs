//! `aws:eks:Addon`: an EKS add-on (vpc-cni, coredns, kube-proxy, eks-pod-identity-agent).
//!
//! Rules kept here: cluster and add-on name force a replacement; version, configuration
//! values (JSON text, compared as JSON so formatting is not drift), the service-account role
//! and tags change in place (UpdateAddon, awaited through DescribeUpdate and the add-on's
//! return to ACTIVE); conflicts with fields EKS manages are resolved by OVERWRITE unless
//! the user says otherwise; a version left unset is EKS's default and never drift; with
//! `default_version_for(k8s)` the version is the one DescribeAddonVersions marks default
//! for that Kubernetes version, resolved at create and update (a new `k8s`, such as the
//! cluster's version output after an upgrade, updates the add-on); the
//! id is `<cluster>:<add-on>`; create waits for ACTIVE; delete waits until it is gone, and
//! so does reading a DELETING add-on (reported gone only once it is, as a node group).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_eks::types::{AddonStatus, ResolveConflicts};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{from_tags, owned, sync_tags, tags, wait_update};
use crate::aws::call::{Poll, Retry, call, call_found, none_if_gone};
use crate::aws::context;
use crate::aws::ec2::{parse, unless_unset};
use crate::aws::lifecycle::{IfCancelled, created_or_undone, kind_basics, provider, split_id, wait_gone, wait_ready};
use crate::declaration::Expr;
use crate::model::{Handle, Input, Output};
use crate::provider::{Created, OpContext, ProviderError, ReadResult, ResourceProvider, Schema};

pub const KIND: &str = "aws:eks:Addon";

const WAIT: Duration = Duration::from_secs(20 * 60);

/// An add-on of a cluster.
#[derive(Debug, Clone, Serialize)]
pub struct Addon {
    cluster_name: Input<String>,
    addon_name: String,
    addon_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kubernetes_version: Option<Input<String>>,
    configuration_values: Option<Value>,
    service_account_role_arn: Option<Input<String>>,
    resolve_conflicts: String,
    tags: BTreeMap<String, Input<String>>,
}

impl Addon {
    pub fn new(cluster_name: impl Into<Input<String>>, addon_name: &str) -> Self {
        Addon {
            cluster_name: cluster_name.into(),
            addon_name: addon_name.into(),
            addon_version: None,
            kubernetes_version: None,
            configuration_values: None,
            service_account_role_arn: None,
            resolve_conflicts: "OVERWRITE".into(),
            tags: BTreeMap::new(),
        }
    }
    pub fn version(mut self, v: &str) -> Self {
        self.addon_version = Some(v.into());
        self
    }
    /// Runs EKS's default version of the add-on for this Kubernetes version (the one
    /// DescribeAddonVersions marks `defaultVersion` for it), resolved at create and update;
    /// given the cluster's version output (`cluster.version()`), a control-plane upgrade
    /// moves the add-on after it. An explicit [`Addon::version`] wins.
    pub fn default_version_for(mut self, kubernetes_version: impl Into<Input<String>>) -> Self {
        self.kubernetes_version = Some(kubernetes_version.into());
        self
    }
    /// The add-on's configuration (its JSON schema is DescribeAddonConfiguration's).
    pub fn configuration(mut self, values: Value) -> Self {
        self.configuration_values = Some(values);
        self
    }
    pub fn service_account_role(mut self, arn: impl Into<Input<String>>) -> Self {
        self.service_account_role_arn = Some(arn.into());
        self
    }
    /// `OVERWRITE` (default), `PRESERVE` or `NONE`.
    pub fn resolve_conflicts(mut self, how: &str) -> Self {
        self.resolve_conflicts = how.into();
        self
    }
    pub fn tag(mut self, key: &str, value: impl Into<Input<String>>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }
}

/// A query for an add-on already installed on a cluster: [`Addon::lookup`].
#[derive(Serialize)]
pub struct AddonLookup {
    cluster_name: Input<String>,
    addon_name: String,
}

impl Addon {
    /// The add-on `addon_name` installed on cluster `cluster_name` (by eksctl, Terraform or
    /// the console), read on every plan: a plan fails naming the lookup when it is absent.
    pub fn lookup(cluster_name: impl Into<Input<String>>, addon_name: &str) -> AddonLookup {
        AddonLookup {
            cluster_name: cluster_name.into(),
            addon_name: addon_name.to_string(),
        }
    }
}

impl crate::model::Lookup for AddonLookup {
    type Resource = Addon;
    fn kind(&self) -> String {
        KIND.into()
    }
    fn provider(&self) -> std::sync::Arc<dyn ResourceProvider> {
        std::sync::Arc::new(AddonProvider::new())
    }
}

impl Handle<Addon> {
    pub fn arn(&self) -> Output<String> {
        self.output("arn")
    }
    pub fn version(&self) -> Output<String> {
        self.output("version")
    }
}

#[derive(Deserialize)]
struct AddonInputs {
    cluster_name: String,
    addon_name: String,
    #[serde(default)]
    addon_version: Option<String>,
    #[serde(default)]
    kubernetes_version: Option<String>,
    #[serde(default)]
    configuration_values: Option<Value>,
    #[serde(default)]
    service_account_role_arn: Option<String>,
    #[serde(default = "overwrite")]
    resolve_conflicts: String,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

fn overwrite() -> String {
    "OVERWRITE".into()
}

provider!(
    /// The provider of `aws:eks:Addon`.
    AddonProvider for Addon (KIND),
    Schema::new()
        .replace_on(&["cluster_name", "addon_name"])
        .volatile_outputs(&["version"])
);

fn split_addon_id(id: &str) -> Result<(&str, &str), ProviderError> {
    split_id(id, ':', "an add-on id", "<cluster>:<add-on>")
}

async fn describe(
    ctx: &OpContext,
    cluster: &str,
    name: &str,
) -> Result<Option<aws_sdk_eks::types::Addon>, ProviderError> {
    let eks = &context::clients().await.eks;
    let out = call_found(ctx, "DescribeAddon", || {
        eks.describe_addon().cluster_name(cluster).addon_name(name).send()
    })
    .await?;
    Ok(out.and_then(|o| o.addon().cloned()))
}

fn outputs(a: &aws_sdk_eks::types::Addon) -> Value {
    json!({"arn": a.addon_arn(), "version": a.addon_version()})
}

impl AddonInputs {
    /// The version to ask EKS for: the explicit one, else the default for
    /// `kubernetes_version` (DescribeAddonVersions), else none (EKS's default for the
    /// cluster's current version).
    async fn wanted_version(&self, ctx: &OpContext) -> Result<Option<String>, ProviderError> {
        if self.addon_version.is_some() {
            return Ok(self.addon_version.clone());
        }
        let Some(k8s) = &self.kubernetes_version else {
            return Ok(None);
        };
        let eks = &context::clients().await.eks;
        let out = call(ctx, "DescribeAddonVersions", Retry::TRANSIENT, || {
            eks.describe_addon_versions()
                .addon_name(&self.addon_name)
                .kubernetes_version(k8s)
                .send()
        })
        .await?;
        let default = out
            .addons()
            .iter()
            .flat_map(|a| a.addon_versions())
            .find(|v| {
                v.compatibilities()
                    .iter()
                    .any(|c| c.cluster_version() == Some(k8s.as_str()) && c.default_version())
            })
            .and_then(|v| v.addon_version().map(String::from));
        default.map(Some).ok_or_else(|| {
            ProviderError::msg(format!(
                "DescribeAddonVersions: EKS names no default version of {} for Kubernetes {k8s}",
                self.addon_name
            ))
        })
    }
}

fn config_text(v: &Option<Value>) -> Option<String> {
    v.as_ref().map(|v| v.to_string())
}

async fn wait_active(ctx: &OpContext, cluster: &str, name: &str) -> Result<aws_sdk_eks::types::Addon, ProviderError> {
    wait_ready(
        ctx,
        "the add-on to be ACTIVE",
        WAIT,
        || describe(ctx, cluster, name),
        |a| match a.status() {
            Some(AddonStatus::Active | AddonStatus::Degraded) => Ok(Poll::Ready(())),
            Some(s @ (AddonStatus::CreateFailed | AddonStatus::UpdateFailed)) => {
                let issues = a.health().map(|h| h.issues()).unwrap_or_default();
                let issues: Vec<&str> = issues.iter().map(|i| i.message().unwrap_or("")).collect();
                Err(ProviderError::msg(format!(
                    "add-on {name} is {}: {}",
                    s.as_str(),
                    issues.join("; ")
                )))
            }
            state => Ok(Poll::state(state)),
        },
    )
    .await
}

/// Waits until the add-on is gone (DescribeAddon finds nothing).
async fn wait_deleted(ctx: &OpContext, cluster: &str, name: &str) -> Result<(), ProviderError> {
    wait_gone(
        ctx,
        "the add-on to be deleted",
        WAIT,
        || describe(ctx, cluster, name),
        |a| Poll::state(a.status()),
    )
    .await
}

#[async_trait]
impl ResourceProvider for AddonProvider {
    kind_basics!(KIND, declare);

    async fn lookup(&self, ctx: &OpContext, query: &Value) -> Result<Vec<ReadResult>, ProviderError> {
        let (cluster, name) = crate::aws::lookup::cluster_member(query, KIND, "addon_name", "add-on")?;
        // `read` answers nothing for a missing one: no match.
        crate::aws::lookup::read_each(self, ctx, vec![format!("{cluster}:{name}")]).await
    }

    async fn create(&self, ctx: &OpContext, inputs: &Value) -> Result<Created, ProviderError> {
        let i: AddonInputs = parse(inputs)?;
        let version = i.wanted_version(ctx).await?;
        let eks = &context::clients().await.eks;
        let t: HashMap<String, String> = tags(&i.tags, ctx);
        call(
            ctx,
            "CreateAddon",
            Retry::on(&["ResourceInUseException"], Duration::from_secs(600)),
            || {
                eks.create_addon()
                    .cluster_name(&i.cluster_name)
                    .addon_name(&i.addon_name)
                    .set_addon_version(version.clone())
                    .set_configuration_values(config_text(&i.configuration_values))
                    .set_service_account_role_arn(i.service_account_role_arn.clone())
                    .resolve_conflicts(ResolveConflicts::from(i.resolve_conflicts.as_str()))
                    .set_tags(Some(t.clone()))
                    .send()
            },
        )
        .await?;
        let id = format!("{}:{}", i.cluster_name, i.addon_name);
        let made = wait_active(ctx, &i.cluster_name, &i.addon_name)
            .await
            .map(|a| outputs(&a));
        created_or_undone(self, ctx, inputs, id, made, IfCancelled::Keep).await
    }

    async fn read(
        &self,
        ctx: &OpContext,
        id: &str,
        inputs: &Value,
        _outputs: &Value,
    ) -> Result<Option<ReadResult>, ProviderError> {
        let (cluster, name) = split_addon_id(id)?;
        let Some(a) = describe(ctx, cluster, name).await? else {
            return Ok(None);
        };
        if a.status() == Some(&AddonStatus::Deleting) {
            // Gone once it has gone, not before (see the module's rules).
            wait_deleted(ctx, cluster, name).await?;
            return Ok(None);
        }
        let config = a
            .configuration_values()
            .filter(|c| !c.trim().is_empty())
            .map(|c| serde_json::from_str::<Value>(c).unwrap_or_else(|_| Value::String(c.to_string())));
        let mut live = json!({
                "cluster_name": cluster,
                "addon_name": name,
                "addon_version": unless_unset(inputs, "addon_version", json!(a.addon_version())),
                "configuration_values": config,
                "service_account_role_arn": a.service_account_role_arn(),
                "resolve_conflicts": inputs.get("resolve_conflicts").cloned().unwrap_or(json!("OVERWRITE")),
                "tags": from_tags(a.tags()),
        });
        // What the program asked for, kept: the add-on itself knows only its version.
        if let Some(k8s) = inputs.get("kubernetes_version") {
            live["kubernetes_version"] = k8s.clone();
        }
        Ok(Some(ReadResult {
            id: id.to_string(),
            inputs: live,
            outputs: outputs(&a),
        }))
    }

    async fn update(
        &self,
        ctx: &OpContext,
        id: &str,
        old: &Value,
        new: &Value,
        old_outputs: &Value,
    ) -> Result<Value, ProviderError> {
        let o: AddonInputs = parse(old)?;
        let n: AddonInputs = parse(new)?;
        let (cluster, name) = split_addon_id(id)?;
        let eks = &context::clients().await.eks;
        let version = if o.addon_version != n.addon_version || o.kubernetes_version != n.kubernetes_version {
            n.wanted_version(ctx).await?
        } else {
            None
        };
        // The default for a new Kubernetes version may be the version already running.
        let running = old_outputs.get("version").and_then(Value::as_str);
        let version_changes = version.as_deref().is_some_and(|v| running != Some(v));
        if version_changes
            || o.configuration_values != n.configuration_values
            || o.service_account_role_arn != n.service_account_role_arn
        {
            let out = call(ctx, "UpdateAddon", Retry::on(&["ResourceInUseException"], WAIT), || {
                eks.update_addon()
                    .cluster_name(cluster)
                    .addon_name(name)
                    .set_addon_version(version.clone())
                    .configuration_values(config_text(&n.configuration_values).unwrap_or_default())
                    .service_account_role_arn(n.service_account_role_arn.clone().unwrap_or_default())
                    .resolve_conflicts(ResolveConflicts::from(n.resolve_conflicts.as_str()))
                    .send()
            })
            .await?;
            wait_update(ctx, cluster, None, Some(name), out.update(), WAIT).await?;
        }
        if o.tags != n.tags {
            let arn = describe(ctx, cluster, name)
                .await?
                .and_then(|a| a.addon_arn().map(String::from))
                .ok_or_else(|| ProviderError::msg(format!("DescribeAddon: add-on {id} is gone")))?;
            sync_tags(ctx, &arn, &o.tags, &n.tags).await?;
        }
        let a = wait_active(ctx, cluster, name).await?;
        Ok(outputs(&a))
    }

    async fn delete(&self, ctx: &OpContext, id: &str, _inputs: &Value, _outputs: &Value) -> Result<(), ProviderError> {
        let (cluster, name) = split_addon_id(id)?;
        let Some(a) = describe(ctx, cluster, name).await? else {
            return Ok(());
        };
        let eks = &context::clients().await.eks;
        if a.status() != Some(&AddonStatus::Deleting) {
            let r = call(ctx, "DeleteAddon", Retry::on(&["ResourceInUseException"], WAIT), || {
                eks.delete_addon().cluster_name(cluster).addon_name(name).send()
            })
            .await;
            if none_if_gone(r)?.is_none() {
                return Ok(());
            }
        }
        wait_deleted(ctx, cluster, name).await
    }

    async fn find(&self, ctx: &OpContext, inputs: &Value) -> Result<Option<Created>, ProviderError> {
        let (Some(cluster), Some(name)) = (
            inputs.get("cluster_name").and_then(Value::as_str),
            inputs.get("addon_name").and_then(Value::as_str),
        ) else {
            return Ok(None);
        };
        let Some(a) = describe(ctx, cluster, name).await? else {
            return Ok(None);
        };
        if !owned(ctx, a.tags()) || a.status() == Some(&AddonStatus::Deleting) {
            return Ok(None);
        }
        let a = wait_active(ctx, cluster, name).await?;
        Ok(Some(Created {
            id: format!("{cluster}:{name}"),
            outputs: outputs(&a),
        }))
    }
}

/// `eks::Addon::new(cluster, name)` with its version, configuration, role, conflict
/// resolution (when not `OVERWRITE`) and tags.
fn declare(i: &Value) -> Option<Expr> {
    use crate::declaration::{json, only_keys, str_at, string};
    if !only_keys(
        i,
        &[
            "cluster_name",
            "addon_name",
            "addon_version",
            "kubernetes_version",
            "configuration_values",
            "service_account_role_arn",
            "resolve_conflicts",
            "tags",
        ],
    ) {
        return None;
    }
    let resolve = str_at(i, "resolve_conflicts").unwrap_or("OVERWRITE");
    let mut e = Expr::new(
        "eks::Addon::new",
        &[string(str_at(i, "cluster_name")?), string(str_at(i, "addon_name")?)],
    )
    .str_setter(i, "addon_version", "version")?
    .str_setter(i, "kubernetes_version", "default_version_for")?;
    if let Some(c) = i.get("configuration_values").filter(|c| !c.is_null()) {
        e = e.call("configuration", &[json(c)]);
    }
    e.str_setter(i, "service_account_role_arn", "service_account_role")?
        .call_if(resolve != "OVERWRITE", "resolve_conflicts", &[string(resolve)])
        .tags(i)
}
