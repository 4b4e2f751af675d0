//! `aws:eks:Cluster`: an EKS control plane.
//!
//! Rules kept here: name, role and the bootstrap-admin flag force a replacement (EKS cannot
//! change them), deleting first (the name is unique); so does changing or removing the
//! secrets encryption key (EKS can neither), while adding one to a cluster that has none is
//! an in-place AssociateEncryptionConfig ([`ClusterProvider`]'s `diff`); everything else
//! changes in place, one EKS update per kind of change as the API demands (version one
//! minor at a time, endpoint access, subnets and security groups, authentication mode,
//! upgrade policy, secrets encryption),
//! each awaited through DescribeUpdate and the cluster's return to ACTIVE; tags change
//! through TagResource/UntagResource. Create retries CreateCluster while EKS cannot yet
//! assume a role made a moment ago (an InvalidParameterException saying so; any other
//! InvalidParameterException fails at once), then waits for ACTIVE (a FAILED cluster is
//! deleted and reported). Delete retries while EKS says the cluster is in use (node groups or an
//! update still finishing) and returns once DescribeCluster no longer finds it; reading a
//! DELETING cluster waits as long, so it is reported gone only once it is (recovery
//! finishes a killed delete on that answer, and the destroy then deletes the role and
//! subnets under it; found by the crash test, `tests/aws_crash.rs`). Lists of
//! subnets and groups read back in the program's order when they hold the same items.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_eks::types::{
    AuthenticationMode, ClusterStatus, CreateAccessConfigRequest, EncryptionConfig, Provider, SupportType,
    UpdateAccessConfigRequest, UpgradePolicyRequest, VpcConfigRequest,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{from_tags, owned, sync_tags, tags, wait_update};
use crate::aws::call::{AwsError, Poll, Retry, all_pages, call, call_found, call0, none_if_gone};
use crate::aws::context;
use crate::aws::ec2::{parse, unless_unset};
use crate::aws::lifecycle::{IfCancelled, created_or_undone, kind_basics, provider, wait_gone, wait_ready};
use crate::aws::tags::unique_name;
use crate::declaration::Expr;
use crate::model::{Handle, Input, Output};
use crate::provider::{
    Created, DiffResult, OpContext, ProviderError, ReadResult, ResourceProvider, Schema, schema_diff,
};
use crate::value::Path;

pub const KIND: &str = "aws:eks:Cluster";

const CREATE_WAIT: Duration = Duration::from_secs(30 * 60);
const UPDATE_WAIT: Duration = Duration::from_secs(60 * 60);
const DELETE_WAIT: Duration = Duration::from_secs(20 * 60);

/// An EKS cluster.
#[derive(Debug, Clone, Serialize)]
pub struct Cluster {
    name: Option<Input<String>>,
    version: Option<String>,
    role_arn: Input<String>,
    subnet_ids: Vec<Input<String>>,
    security_group_ids: Vec<Input<String>>,
    endpoint_public_access: bool,
    endpoint_private_access: bool,
    public_access_cidrs: Vec<String>,
    authentication_mode: String,
    bootstrap_cluster_creator_admin_permissions: bool,
    support_type: String,
    secrets_encryption_key_arn: Option<Input<String>>,
    tags: BTreeMap<String, Input<String>>,
}

impl Cluster {
    /// A cluster run by the role `role_arn` in `subnet_ids` (at least two AZs). Defaults:
    /// public and private endpoint, public access from anywhere, authentication mode `API`,
    /// the creator bootstrapped as admin, STANDARD support.
    pub fn new(role_arn: impl Into<Input<String>>, subnet_ids: Vec<Input<String>>) -> Self {
        Cluster {
            name: None,
            version: None,
            role_arn: role_arn.into(),
            subnet_ids,
            security_group_ids: Vec::new(),
            endpoint_public_access: true,
            endpoint_private_access: true,
            public_access_cidrs: vec!["0.0.0.0/0".into()],
            authentication_mode: "API".into(),
            bootstrap_cluster_creator_admin_permissions: true,
            support_type: "STANDARD".into(),
            secrets_encryption_key_arn: None,
            tags: BTreeMap::new(),
        }
    }
    /// Fixes the cluster name (default: `<resource name>-<8 hex>`).
    pub fn name(mut self, name: impl Into<Input<String>>) -> Self {
        self.name = Some(name.into());
        self
    }
    /// The Kubernetes version (`1.35`); EKS's default when unset.
    pub fn version(mut self, v: &str) -> Self {
        self.version = Some(v.into());
        self
    }
    pub fn security_groups(mut self, ids: Vec<Input<String>>) -> Self {
        self.security_group_ids = ids;
        self
    }
    /// Endpoint access: public (restricted to `cidrs`) and private.
    pub fn endpoint(mut self, public: bool, private: bool, cidrs: &[&str]) -> Self {
        self.endpoint_public_access = public;
        self.endpoint_private_access = private;
        self.public_access_cidrs = cidrs.iter().map(|c| c.to_string()).collect();
        self
    }
    /// `API`, `API_AND_CONFIG_MAP` or `CONFIG_MAP`.
    pub fn authentication_mode(mut self, mode: &str) -> Self {
        self.authentication_mode = mode.into();
        self
    }
    pub fn bootstrap_creator_admin(mut self, yes: bool) -> Self {
        self.bootstrap_cluster_creator_admin_permissions = yes;
        self
    }
    /// `STANDARD` or `EXTENDED`.
    pub fn support_type(mut self, t: &str) -> Self {
        self.support_type = t.into();
        self
    }
    /// Envelope encryption of Kubernetes secrets with the KMS key `key_arn`. Adding it to a
    /// cluster that has none is an in-place update; changing or removing it replaces the
    /// cluster (EKS can do neither).
    pub fn secrets_encryption(mut self, key_arn: impl Into<Input<String>>) -> Self {
        self.secrets_encryption_key_arn = Some(key_arn.into());
        self
    }
    pub fn tag(mut self, key: &str, value: impl Into<Input<String>>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }
}

impl Handle<Cluster> {
    /// The cluster's subnets (a looked-up cluster's, say).
    pub fn subnet_ids(&self) -> Output<Vec<String>> {
        self.output("subnet_ids")
    }
    /// The security groups given to the cluster (besides the one EKS made).
    pub fn security_group_ids(&self) -> Output<Vec<String>> {
        self.output("security_group_ids")
    }
}

impl Cluster {
    /// An existing EKS cluster by name (made with eksctl, Terraform or the console); its
    /// handle gives the outputs a created one has (endpoint, CA, version, VPC, cluster
    /// security group, OIDC issuer).
    pub fn lookup(name: impl Into<Input<String>>) -> crate::aws::lookup::NamedLookup<Cluster> {
        crate::aws::lookup::NamedLookup::for_kind(KIND, std::sync::Arc::new(ClusterProvider::new()), name.into())
    }
}

impl Handle<Cluster> {
    pub fn name(&self) -> Output<String> {
        self.output("name")
    }
    pub fn arn(&self) -> Output<String> {
        self.output("arn")
    }
    pub fn endpoint(&self) -> Output<String> {
        self.output("endpoint")
    }
    /// The base64 PEM of the cluster's CA.
    pub fn certificate_authority(&self) -> Output<String> {
        self.output("certificate_authority")
    }
    /// The OIDC issuer URL (`https://oidc.eks...`).
    pub fn oidc_issuer(&self) -> Output<String> {
        self.output("oidc_issuer")
    }
    /// The security group EKS made for the cluster.
    /// The cluster's VPC.
    pub fn vpc_id(&self) -> Output<String> {
        self.output("vpc_id")
    }
    pub fn cluster_security_group_id(&self) -> Output<String> {
        self.output("cluster_security_group_id")
    }
    pub fn version(&self) -> Output<String> {
        self.output("version")
    }
}

#[derive(Deserialize, Clone)]
struct ClusterInputs {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    version: Option<String>,
    role_arn: String,
    subnet_ids: Vec<String>,
    #[serde(default)]
    security_group_ids: Vec<String>,
    endpoint_public_access: bool,
    endpoint_private_access: bool,
    #[serde(default)]
    public_access_cidrs: Vec<String>,
    authentication_mode: String,
    bootstrap_cluster_creator_admin_permissions: bool,
    support_type: String,
    #[serde(default)]
    secrets_encryption_key_arn: Option<String>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

provider!(
    /// The provider of `aws:eks:Cluster`.
    ClusterProvider for Cluster (KIND),
    Schema::new()
        .replace_on(&["name", "role_arn", "bootstrap_cluster_creator_admin_permissions"])
        .volatile_outputs(&["version", "platform_version"])
        .delete_before_replace(true)
);

/// The input holding the secrets encryption key: set once, never changed in place.
const ENCRYPTION_KEY: &str = "secrets_encryption_key_arn";

/// The `encryptionConfig` encrypting secrets with `key_arn`. (The SDK marks `resources`
/// deprecated, as EKS now encrypts all API data by default; the API still takes it and the
/// console and CLI still send `["secrets"]`.)
#[allow(deprecated)]
fn encryption_config(key_arn: &str) -> EncryptionConfig {
    EncryptionConfig::builder()
        .resources("secrets")
        .provider(Provider::builder().key_arn(key_arn).build())
        .build()
}

/// The KMS key encrypting the cluster's secrets, if any (an entry that lists no resources
/// counts: EKS may stop echoing the deprecated member).
#[allow(deprecated)]
fn encryption_key(c: &aws_sdk_eks::types::Cluster) -> Option<&str> {
    c.encryption_config()
        .iter()
        .find(|e| e.resources().is_empty() || e.resources().iter().any(|r| r == "secrets"))
        .and_then(|e| e.provider())
        .and_then(|p| p.key_arn())
}

fn cluster_name(ctx: &OpContext, user: Option<&str>) -> String {
    match user {
        Some(n) => n.to_string(),
        None => unique_name(ctx, None, 100, |c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
    }
}

async fn describe(ctx: &OpContext, name: &str) -> Result<Option<aws_sdk_eks::types::Cluster>, ProviderError> {
    let eks = &context::clients().await.eks;
    let out = call_found(ctx, "DescribeCluster", || eks.describe_cluster().name(name).send()).await?;
    Ok(out.and_then(|o| o.cluster().cloned()))
}

fn outputs(c: &aws_sdk_eks::types::Cluster) -> Value {
    let vpc = c.resources_vpc_config();
    json!({
        "name": c.name(),
        "arn": c.arn(),
        "endpoint": c.endpoint(),
        "certificate_authority": c.certificate_authority().and_then(|a| a.data()),
        "oidc_issuer": c.identity().and_then(|i| i.oidc()).and_then(|o| o.issuer()),
        "cluster_security_group_id": vpc.and_then(|v| v.cluster_security_group_id()),
        "vpc_id": vpc.and_then(|v| v.vpc_id()),
        "version": c.version(),
        "platform_version": c.platform_version(),
        "subnet_ids": vpc.map(|v| v.subnet_ids()).unwrap_or_default(),
        "security_group_ids": vpc.map(|v| v.security_group_ids()).unwrap_or_default(),
        "status": c.status().map(|s| s.as_str()),
    })
}

/// `live` in the order of `stored` when both hold the same items.
fn keep_order(stored: &Value, field: &str, live: &[String]) -> Value {
    if let Some(s) = stored.get(field).and_then(Value::as_array) {
        let mut a: Vec<&str> = s.iter().filter_map(Value::as_str).collect();
        let mut b: Vec<&str> = live.iter().map(String::as_str).collect();
        a.sort_unstable();
        b.sort_unstable();
        if a == b {
            return stored[field].clone();
        }
    }
    json!(live)
}

async fn wait_active(
    ctx: &OpContext,
    name: &str,
    default: Duration,
) -> Result<aws_sdk_eks::types::Cluster, ProviderError> {
    wait_ready(
        ctx,
        "the cluster to be ACTIVE",
        default,
        || describe(ctx, name),
        |c| match c.status() {
            Some(ClusterStatus::Active) => Ok(Poll::Ready(())),
            Some(ClusterStatus::Failed) => Err(ProviderError::msg(format!("cluster {name} is FAILED"))),
            state => Ok(Poll::state(state)),
        },
    )
    .await
}

/// Waits until the cluster is gone (DescribeCluster finds nothing).
async fn wait_deleted(ctx: &OpContext, name: &str) -> Result<(), ProviderError> {
    wait_gone(
        ctx,
        "the cluster to be deleted",
        DELETE_WAIT,
        || describe(ctx, name),
        |c| Poll::state(c.status()),
    )
    .await
}

/// The next minor version on the way from `from` to `to` (`1.33` -> `1.34`).
fn next_minor(from: &str, to: &str) -> Option<String> {
    let parse = |v: &str| -> Option<(u32, u32)> {
        let (a, b) = v.split_once('.')?;
        Some((a.parse().ok()?, b.parse().ok()?))
    };
    let (fa, fb) = parse(from)?;
    let (ta, tb) = parse(to)?;
    (fa == ta && tb > fb + 1).then(|| format!("{fa}.{}", fb + 1))
}

/// How far kubelets may lag the API server: three minor versions since Kubernetes 1.28
/// (kubernetes.io/releases/version-skew-policy), which EKS enforces on UpdateClusterVersion
/// for managed node groups.
const KUBELET_SKEW: u32 = 3;

fn minor_of(v: &str) -> Option<(u32, u32)> {
    let (a, b) = v.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// What a version change from `live` to `target` does, given the cluster's node groups
/// (name, Kubernetes version): the plan's notes, or why EKS would refuse it (a downgrade;
/// a step that would leave a node group more than [`KUBELET_SKEW`] minors behind, which
/// EKS refuses halfway through the upgrade). Versions that do not parse are left to EKS.
fn version_upgrade(live: &str, target: &str, node_groups: &[(String, String)]) -> Result<Vec<String>, String> {
    let (Some(from), Some(to)) = (minor_of(live), minor_of(target)) else {
        return Ok(Vec::new());
    };
    if from == to {
        return Ok(Vec::new());
    }
    if to < from || to.0 != from.0 {
        return Err(format!(
            "EKS cannot move a cluster from Kubernetes {live} to {target} (a cluster is never downgraded); set `version` back to {live} or newer"
        ));
    }
    let steps: Vec<String> = (from.1..=to.1).map(|m| format!("{}.{m}", from.0)).collect();
    let mut notes = vec![format!(
        "control plane: Kubernetes {} ({} update{}, one minor version at a time)",
        steps.join(" -> "),
        steps.len() - 1,
        if steps.len() == 2 { "" } else { "s" }
    )];
    for (name, version) in node_groups {
        let Some(ng) = minor_of(version) else { continue };
        if ng.0 == to.0 && ng.1 + KUBELET_SKEW < to.1 {
            let furthest = format!("{}.{}", to.0, ng.1 + KUBELET_SKEW);
            return Err(format!(
                "node group `{name}` runs Kubernetes {version}, more than {KUBELET_SKEW} minor versions behind {target}: EKS refuses to move the control plane past {furthest} until the node group is updated; upgrade to {furthest} first, let the node group follow, then go on"
            ));
        }
        notes.push(format!(
            "node group `{name}` runs {version}: within {KUBELET_SKEW} minor versions of every step"
        ));
    }
    Ok(notes)
}

/// The cluster's managed node groups with their Kubernetes versions.
async fn node_group_versions(ctx: &OpContext, cluster: &str) -> Result<Vec<(String, String)>, ProviderError> {
    let eks = &context::clients().await.eks;
    let names = all_pages(
        ctx,
        "ListNodegroups",
        |token| eks.list_nodegroups().cluster_name(cluster).set_next_token(token).send(),
        |out| (out.nodegroups().to_vec(), out.next_token().map(String::from)),
    )
    .await?;
    let mut versions = Vec::new();
    for name in names {
        let out = call_found(ctx, "DescribeNodegroup", || {
            eks.describe_nodegroup()
                .cluster_name(cluster)
                .nodegroup_name(&name)
                .send()
        })
        .await?;
        if let Some(v) = out.and_then(|o| o.nodegroup().and_then(|n| n.version().map(String::from))) {
            versions.push((name, v));
        }
    }
    Ok(versions)
}

/// EKS's answer to a CreateCluster whose role IAM has not yet propagated: an
/// InvalidParameterException "Role with arn: ... could not be assumed because it does not
/// exist or the trusted entities is not correct" (bug found by `tests/aws_retries.rs`: every
/// InvalidParameterException was retried, so a real mistake took 20 s to be reported).
fn role_not_assumable_yet(e: &AwsError) -> bool {
    e.message.contains("Role with arn") && e.message.contains("could not be assumed")
}

#[async_trait]
impl ResourceProvider for ClusterProvider {
    kind_basics!(KIND, declare);

    /// The schema's diff, plus: a secrets encryption key that was set and changes (or goes)
    /// forces a replacement; one added where there was none does not.
    fn diff(&self, old: &Value, new: &Value) -> DiffResult {
        let mut d = schema_diff(&self.schema, old, new);
        let key = Path::parse(ENCRYPTION_KEY);
        let had_key = old.get(ENCRYPTION_KEY).is_some_and(|k| !k.is_null());
        if had_key && d.changes.iter().any(|c| c.path == key) && !d.replace_paths.contains(&key) {
            d.replace_paths.push(key);
        }
        d
    }

    /// A version change: the control-plane steps and the node groups' skew, read from
    /// the live cluster; refused when EKS would refuse it (see [`version_upgrade`]).
    async fn preview(
        &self,
        ctx: &OpContext,
        inputs: &Value,
        old_outputs: Option<&Value>,
    ) -> Result<Vec<String>, ProviderError> {
        let Some(name) = old_outputs.and_then(|o| o["name"].as_str()) else {
            return Ok(Vec::new());
        };
        let i: ClusterInputs = parse(inputs)?;
        let Some(target) = i.version.as_deref() else {
            return Ok(Vec::new());
        };
        let Some(live) = describe(ctx, name).await?.and_then(|c| c.version().map(String::from)) else {
            return Ok(Vec::new());
        };
        if live == target {
            return Ok(Vec::new());
        }
        let groups = node_group_versions(ctx, name).await?;
        version_upgrade(&live, target, &groups).map_err(ProviderError::Refused)
    }

    async fn create(&self, ctx: &OpContext, inputs: &Value) -> Result<Created, ProviderError> {
        let i: ClusterInputs = parse(inputs)?;
        let name = cluster_name(ctx, i.name.as_deref());
        let eks = &context::clients().await.eks;
        let vpc = VpcConfigRequest::builder()
            .set_subnet_ids(Some(i.subnet_ids.clone()))
            .set_security_group_ids(Some(i.security_group_ids.clone()))
            .endpoint_public_access(i.endpoint_public_access)
            .endpoint_private_access(i.endpoint_private_access)
            .set_public_access_cidrs(i.endpoint_public_access.then(|| i.public_access_cidrs.clone()))
            .build();
        let access = CreateAccessConfigRequest::builder()
            .authentication_mode(AuthenticationMode::from(i.authentication_mode.as_str()))
            .bootstrap_cluster_creator_admin_permissions(i.bootstrap_cluster_creator_admin_permissions)
            .build();
        call(
            ctx,
            "CreateCluster",
            // A role made a moment ago may not be assumable by EKS yet; every other
            // InvalidParameterException is a real mistake in the inputs and fails at once.
            Retry::on(&["InvalidParameterException"], Duration::from_secs(20)).only_if(role_not_assumable_yet),
            || {
                eks.create_cluster()
                    .name(&name)
                    .set_version(i.version.clone())
                    .role_arn(&i.role_arn)
                    .resources_vpc_config(vpc.clone())
                    .access_config(access.clone())
                    .upgrade_policy(
                        UpgradePolicyRequest::builder()
                            .support_type(SupportType::from(i.support_type.as_str()))
                            .build(),
                    )
                    .set_encryption_config(
                        i.secrets_encryption_key_arn
                            .as_deref()
                            .map(|k| vec![encryption_config(k)]),
                    )
                    .set_tags(Some(tags(&i.tags, ctx)))
                    .send()
            },
        )
        .await?;
        let made = wait_active(ctx, &name, CREATE_WAIT).await.map(|c| outputs(&c));
        created_or_undone(self, ctx, inputs, name, made, IfCancelled::Keep).await
    }

    async fn lookup(&self, ctx: &OpContext, query: &Value) -> Result<Vec<ReadResult>, ProviderError> {
        let name = crate::aws::lookup::query_name(query, KIND)?;
        let ids: Vec<String> = describe(ctx, &name).await?.map(|_| name).into_iter().collect();
        crate::aws::lookup::read_each(self, ctx, ids).await
    }

    async fn read(
        &self,
        ctx: &OpContext,
        id: &str,
        inputs: &Value,
        _outputs: &Value,
    ) -> Result<Option<ReadResult>, ProviderError> {
        let Some(c) = describe(ctx, id).await? else {
            return Ok(None);
        };
        if c.status() == Some(&ClusterStatus::Deleting) {
            // Going, and nothing stops it: gone once it has gone, not before (recovery
            // finishes a killed delete on this answer, and the destroy then deletes what
            // the cluster stands on: its role, its subnets).
            wait_deleted(ctx, id).await?;
            return Ok(None);
        }
        let vpc = c.resources_vpc_config();
        let access = c.access_config();
        let public = vpc.is_some_and(|v| v.endpoint_public_access());
        Ok(Some(ReadResult {
            id: id.to_string(),
            inputs: json!({
                "name": unless_unset(inputs, "name", json!(c.name())),
                "version": unless_unset(inputs, "version", json!(c.version())),
                "role_arn": c.role_arn(),
                "subnet_ids": keep_order(inputs, "subnet_ids", vpc.map(|v| v.subnet_ids()).unwrap_or_default()),
                "security_group_ids": keep_order(inputs, "security_group_ids", vpc.map(|v| v.security_group_ids()).unwrap_or_default()),
                "endpoint_public_access": public,
                "endpoint_private_access": vpc.is_some_and(|v| v.endpoint_private_access()),
                "public_access_cidrs": if public {
                    keep_order(inputs, "public_access_cidrs", vpc.map(|v| v.public_access_cidrs()).unwrap_or_default())
                } else {
                    inputs.get("public_access_cidrs").cloned().unwrap_or(json!([]))
                },
                "authentication_mode": access.and_then(|a| a.authentication_mode()).map(|m| m.as_str()).unwrap_or("CONFIG_MAP"),
                "bootstrap_cluster_creator_admin_permissions": access
                    .and_then(|a| a.bootstrap_cluster_creator_admin_permissions())
                    .unwrap_or(true),
                "support_type": c.upgrade_policy().and_then(|u| u.support_type()).map(|s| s.as_str()).unwrap_or("EXTENDED"),
                "secrets_encryption_key_arn": encryption_key(&c),
                "tags": from_tags(c.tags()),
            }),
            outputs: outputs(&c),
        }))
    }

    async fn update(
        &self,
        ctx: &OpContext,
        id: &str,
        old: &Value,
        new: &Value,
        _old_outputs: &Value,
    ) -> Result<Value, ProviderError> {
        let o: ClusterInputs = parse(old)?;
        let n: ClusterInputs = parse(new)?;
        let eks = &context::clients().await.eks;
        // Version: one minor at a time.
        if let Some(target) = &n.version
            && o.version.as_ref() != Some(target)
        {
            loop {
                let live = describe(ctx, id).await?.and_then(|c| c.version().map(String::from));
                let Some(live) = live else { break };
                if &live == target {
                    break;
                }
                let step = next_minor(&live, target).unwrap_or_else(|| target.clone());
                ctx.progress(&format!("upgrading Kubernetes {live} -> {step}"));
                let out = call0(ctx, "UpdateClusterVersion", || {
                    eks.update_cluster_version().name(id).version(&step).send()
                })
                .await?;
                wait_update(ctx, id, None, None, out.update(), UPDATE_WAIT).await?;
                wait_active(ctx, id, UPDATE_WAIT).await?;
            }
        }
        let endpoint_changed = o.endpoint_public_access != n.endpoint_public_access
            || o.endpoint_private_access != n.endpoint_private_access
            || (n.endpoint_public_access && o.public_access_cidrs != n.public_access_cidrs);
        let mut config_updates: Vec<(
            &'static str,
            aws_sdk_eks::operation::update_cluster_config::builders::UpdateClusterConfigFluentBuilder,
        )> = Vec::new();
        if endpoint_changed {
            config_updates.push((
                "endpoint access",
                eks.update_cluster_config().name(id).resources_vpc_config(
                    VpcConfigRequest::builder()
                        .endpoint_public_access(n.endpoint_public_access)
                        .endpoint_private_access(n.endpoint_private_access)
                        .set_public_access_cidrs(n.endpoint_public_access.then(|| n.public_access_cidrs.clone()))
                        .build(),
                ),
            ));
        }
        if o.subnet_ids != n.subnet_ids || o.security_group_ids != n.security_group_ids {
            config_updates.push((
                "subnets and security groups",
                eks.update_cluster_config().name(id).resources_vpc_config(
                    VpcConfigRequest::builder()
                        .set_subnet_ids(Some(n.subnet_ids.clone()))
                        .set_security_group_ids(Some(n.security_group_ids.clone()))
                        .build(),
                ),
            ));
        }
        if o.authentication_mode != n.authentication_mode {
            config_updates.push((
                "authentication mode",
                eks.update_cluster_config().name(id).access_config(
                    UpdateAccessConfigRequest::builder()
                        .authentication_mode(AuthenticationMode::from(n.authentication_mode.as_str()))
                        .build(),
                ),
            ));
        }
        if o.support_type != n.support_type {
            config_updates.push((
                "upgrade policy",
                eks.update_cluster_config().name(id).upgrade_policy(
                    UpgradePolicyRequest::builder()
                        .support_type(SupportType::from(n.support_type.as_str()))
                        .build(),
                ),
            ));
        }
        for (what, request) in config_updates {
            ctx.progress(&format!("updating {what}"));
            let out = call(
                ctx,
                "UpdateClusterConfig",
                // Another update still in progress.
                Retry::on(&["ResourceInUseException"], UPDATE_WAIT),
                || request.clone().send(),
            )
            .await?;
            wait_update(ctx, id, None, None, out.update(), UPDATE_WAIT).await?;
            wait_active(ctx, id, UPDATE_WAIT).await?;
        }
        // Secrets encryption: added only (a change or removal is a replacement, see `diff`).
        if let Some(key) = &n.secrets_encryption_key_arn
            && o.secrets_encryption_key_arn.is_none()
        {
            ctx.progress("associating the secrets encryption key");
            let out = call(
                ctx,
                "AssociateEncryptionConfig",
                // Another update still in progress.
                Retry::on(&["ResourceInUseException"], UPDATE_WAIT),
                || {
                    eks.associate_encryption_config()
                        .cluster_name(id)
                        .encryption_config(encryption_config(key))
                        .send()
                },
            )
            .await?;
            wait_update(ctx, id, None, None, out.update(), UPDATE_WAIT).await?;
            wait_active(ctx, id, UPDATE_WAIT).await?;
        }
        if o.tags != n.tags {
            let arn = describe(ctx, id)
                .await?
                .and_then(|c| c.arn().map(String::from))
                .ok_or_else(|| ProviderError::msg(format!("DescribeCluster: cluster {id} is gone")))?;
            sync_tags(ctx, &arn, &o.tags, &n.tags).await?;
        }
        let c = wait_active(ctx, id, UPDATE_WAIT).await?;
        Ok(outputs(&c))
    }

    async fn delete(&self, ctx: &OpContext, id: &str, _inputs: &Value, _outputs: &Value) -> Result<(), ProviderError> {
        let Some(c) = describe(ctx, id).await? else {
            return Ok(());
        };
        let eks = &context::clients().await.eks;
        if c.status() != Some(&ClusterStatus::Deleting) {
            let r = call(
                ctx,
                "DeleteCluster",
                Retry::within(ctx, &["ResourceInUseException"], DELETE_WAIT),
                || eks.delete_cluster().name(id).send(),
            )
            .await;
            if none_if_gone(r)?.is_none() {
                return Ok(());
            }
        }
        wait_deleted(ctx, id).await
    }

    async fn find(&self, ctx: &OpContext, inputs: &Value) -> Result<Option<Created>, ProviderError> {
        let name = cluster_name(ctx, inputs.get("name").and_then(Value::as_str));
        let Some(c) = describe(ctx, &name).await? else {
            return Ok(None);
        };
        if !owned(ctx, c.tags()) || c.status() == Some(&ClusterStatus::Deleting) {
            return Ok(None);
        }
        let c = wait_active(ctx, &name, CREATE_WAIT).await?;
        Ok(Some(Created {
            id: name,
            outputs: outputs(&c),
        }))
    }
}

/// `eks::Cluster::new(role, subnets)` with each setting that differs from the builder's
/// defaults (endpoint access, authentication mode, creator admin, support type).
fn declare(i: &Value) -> Option<Expr> {
    use crate::declaration::{bool_at, input_vec, only_keys, str_at, str_slice, string, strs_at};
    if !only_keys(
        i,
        &[
            "name",
            "version",
            "role_arn",
            "subnet_ids",
            "security_group_ids",
            "endpoint_public_access",
            "endpoint_private_access",
            "public_access_cidrs",
            "authentication_mode",
            "bootstrap_cluster_creator_admin_permissions",
            "support_type",
            "secrets_encryption_key_arn",
            "tags",
        ],
    ) {
        return None;
    }
    let groups = strs_at(i, "security_group_ids")?;
    let (public, private) = (
        bool_at(i, "endpoint_public_access", true)?,
        bool_at(i, "endpoint_private_access", true)?,
    );
    let cidrs = strs_at(i, "public_access_cidrs")?;
    let mode = str_at(i, "authentication_mode").unwrap_or("API");
    let admin = bool_at(i, "bootstrap_cluster_creator_admin_permissions", true)?;
    let support = str_at(i, "support_type").unwrap_or("STANDARD");
    Expr::new(
        "eks::Cluster::new",
        &[string(str_at(i, "role_arn")?), input_vec(&strs_at(i, "subnet_ids")?)],
    )
    .str_setter(i, "name", "name")?
    .str_setter(i, "version", "version")?
    .call_if(!groups.is_empty(), "security_groups", &[input_vec(&groups)])
    .call_if(
        !(public && private && cidrs == ["0.0.0.0/0"]),
        "endpoint",
        &[public.to_string(), private.to_string(), str_slice(&cidrs)],
    )
    .call_if(mode != "API", "authentication_mode", &[string(mode)])
    .call_if(!admin, "bootstrap_creator_admin", &["false".into()])
    .call_if(support != "STANDARD", "support_type", &[string(support)])
    .str_setter(i, "secrets_encryption_key_arn", "secrets_encryption")?
    .tags(i)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::ClusterProvider;
    use crate::provider::ResourceProvider as _;

    #[test]
    fn only_a_role_not_yet_assumable_is_waited_for() {
        use aws_sdk_eks::config::http::HttpResponse;
        use aws_sdk_eks::error::{ErrorMetadata, SdkError};
        use aws_sdk_eks::operation::create_cluster::CreateClusterError;

        let answer = |message: &str| {
            let meta = ErrorMetadata::builder()
                .code("InvalidParameterException")
                .message(message)
                .build();
            let raw = HttpResponse::new(400.try_into().unwrap(), "".into());
            crate::aws::call::AwsError::from_sdk(
                "CreateCluster",
                SdkError::service_error(CreateClusterError::generic(meta), raw),
            )
        };
        // EKS's words, and the sandbox's.
        assert!(super::role_not_assumable_yet(&answer(
            "Role with arn: arn:aws:iam::1:role/r could not be assumed because it does not exist or the \
             trusted entities is not correct"
        )));
        assert!(super::role_not_assumable_yet(&answer(
            "Role with arn: arn:aws:iam::1:role/r, could not be assumed because it does not exist or the \
             trusted entity is not correct"
        )));
        assert!(!super::role_not_assumable_yet(&answer(
            "Subnets specified must be in at least two different AZs"
        )));
        assert!(!super::role_not_assumable_yet(&answer("Invalid cluster name: 'x y'")));
    }

    #[test]
    fn version_upgrades_step_and_refuse_what_eks_refuses() {
        let groups = |v: &str| vec![("critical".to_string(), v.to_string())];
        assert_eq!(
            super::version_upgrade("1.34", "1.35", &groups("1.34")).unwrap(),
            [
                "control plane: Kubernetes 1.34 -> 1.35 (1 update, one minor version at a time)",
                "node group `critical` runs 1.34: within 3 minor versions of every step",
            ]
        );
        assert_eq!(
            super::version_upgrade("1.32", "1.35", &groups("1.32")).unwrap()[0],
            "control plane: Kubernetes 1.32 -> 1.33 -> 1.34 -> 1.35 (3 updates, one minor version at a time)"
        );
        assert!(
            super::version_upgrade("1.35", "1.35", &groups("1.31"))
                .unwrap()
                .is_empty()
        );
        // Four minors: the step to 1.35 would leave 1.31 nodes four behind.
        let e = super::version_upgrade("1.31", "1.35", &groups("1.31")).unwrap_err();
        assert!(
            e.starts_with("node group `critical` runs Kubernetes 1.31, more than 3 minor versions behind 1.35"),
            "{e}"
        );
        assert!(e.contains("past 1.34"), "{e}");
        let e = super::version_upgrade("1.35", "1.34", &[]).unwrap_err();
        assert!(
            e.starts_with("EKS cannot move a cluster from Kubernetes 1.35 to 1.34"),
            "{e}"
        );
    }

    #[test]
    fn minor_steps() {
        assert_eq!(super::next_minor("1.33", "1.35").as_deref(), Some("1.34"));
        assert_eq!(super::next_minor("1.34", "1.35"), None);
    }

    #[test]
    fn encryption_key_added_in_place_changed_or_removed_by_replacement() {
        let p = ClusterProvider::new();
        let with = |key: Option<&str>| json!({"name": "c", "secrets_encryption_key_arn": key, "tags": {}});
        let replaced = |old, new| {
            let d = p.diff(&with(old), &with(new));
            assert!(!d.is_empty(), "{old:?} -> {new:?} is a change");
            d.replace_paths.iter().map(|p| p.to_string()).collect::<Vec<_>>()
        };
        assert!(replaced(None, Some("arn:k1")).is_empty(), "adding a key is in place");
        assert_eq!(replaced(Some("arn:k1"), Some("arn:k2")), ["secrets_encryption_key_arn"]);
        assert_eq!(replaced(Some("arn:k1"), None), ["secrets_encryption_key_arn"]);
        assert!(p.diff(&with(Some("arn:k1")), &with(Some("arn:k1"))).is_empty());
        // A state from before the field existed has no key: adding one is still in place.
        let d = p.diff(&json!({"name": "c", "tags": {}}), &with(Some("arn:k1")));
        assert!(!d.is_empty() && d.replace_paths.is_empty(), "{d:?}");
    }
}
