//! `aws:eks:Nodegroup`: a managed node group.
//!
//! Rules kept here: cluster, name, node role, subnets, instance types, AMI type, capacity
//! type and the launch template itself (adding, removing or switching it) force a
//! replacement (EKS cannot change them), deleting first (the name is unique in the cluster);
//! scaling, labels, taints and the update config (`maxUnavailable` or
//! `maxUnavailablePercentage`) change in place through one UpdateNodegroupConfig (labels
//! and taints as add-or-update plus remove lists), the Kubernetes version and the launch
//! template's version through one UpdateNodegroupVersion, each awaited through DescribeUpdate
//! and the group's return to ACTIVE; tags through TagResource/UntagResource. Taint effects
//! use the EKS spelling (`NO_SCHEDULE`). The id is `<cluster>:<node group>`. Create waits
//! for ACTIVE (CREATE_FAILED is deleted and reported with its health issues); delete waits
//! until the group is gone, so the cluster can go after it, and so does reading a DELETING
//! group (it is reported gone only once it is: recovery finishes a killed delete on that
//! answer, and the destroy then deletes the role and subnets under it; found by the crash
//! test, `tests/aws_crash.rs`). The `launch_template_ids` output lists the group's launch
//! template id (none without a template), so a program can look the template up.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_eks::types::{
    AmiTypes, CapacityTypes, LaunchTemplateSpecification, NodegroupScalingConfig, NodegroupStatus,
    NodegroupUpdateConfig, Taint, TaintEffect, UpdateLabelsPayload, UpdateTaintsPayload,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{from_tags, owned, sync_tags, tags, wait_update};
use crate::aws::call::{Poll, Retry, call, call_found, none_if_gone};
use crate::aws::context;
use crate::aws::ec2::{parse, unless_unset};
use crate::aws::lifecycle::{IfCancelled, created_or_undone, kind_basics, provider, split_id, wait_gone, wait_ready};
use crate::aws::tags::unique_name;
use crate::declaration::Expr;
use crate::model::{Handle, Input, Output};
use crate::provider::{
    Created, DiffResult, OpContext, ProviderError, ReadResult, ResourceProvider, Schema, schema_diff,
};

pub const KIND: &str = "aws:eks:Nodegroup";

const CREATE_WAIT: Duration = Duration::from_secs(30 * 60);
const UPDATE_WAIT: Duration = Duration::from_secs(60 * 60);
const DELETE_WAIT: Duration = Duration::from_secs(30 * 60);

/// A taint in EKS's spelling (`effect`: `NO_SCHEDULE`, `NO_EXECUTE`, `PREFER_NO_SCHEDULE`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NodeTaint {
    pub key: String,
    #[serde(default)]
    pub value: Option<String>,
    pub effect: String,
}

/// How many nodes an update may take down at once: a count or a percentage of the group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateConfig {
    #[serde(default)]
    pub max_unavailable: Option<i32>,
    #[serde(default)]
    pub max_unavailable_percentage: Option<i32>,
}

#[derive(Debug, Clone, Serialize)]
struct LaunchTemplateRef {
    id: Input<String>,
    version: Input<String>,
}

/// A managed node group.
#[derive(Debug, Clone, Serialize)]
pub struct Nodegroup {
    cluster_name: Input<String>,
    name: Option<Input<String>>,
    node_role_arn: Input<String>,
    subnet_ids: Vec<Input<String>>,
    instance_types: Vec<String>,
    ami_type: Option<String>,
    capacity_type: String,
    min_size: i32,
    max_size: i32,
    desired_size: i32,
    labels: BTreeMap<String, String>,
    taints: Vec<NodeTaint>,
    version: Option<Input<String>>,
    update_config: Option<UpdateConfig>,
    launch_template: Option<LaunchTemplateRef>,
    tags: BTreeMap<String, Input<String>>,
}

impl Nodegroup {
    /// A node group of `cluster_name` run by `node_role_arn` in `subnet_ids`, of one node.
    pub fn new(
        cluster_name: impl Into<Input<String>>,
        node_role_arn: impl Into<Input<String>>,
        subnet_ids: Vec<Input<String>>,
    ) -> Self {
        Nodegroup {
            cluster_name: cluster_name.into(),
            name: None,
            node_role_arn: node_role_arn.into(),
            subnet_ids,
            instance_types: Vec::new(),
            ami_type: None,
            capacity_type: "ON_DEMAND".into(),
            min_size: 1,
            max_size: 1,
            desired_size: 1,
            labels: BTreeMap::new(),
            taints: Vec::new(),
            version: None,
            update_config: None,
            launch_template: None,
            tags: BTreeMap::new(),
        }
    }
    /// Fixes the node group name (default: `<resource name>-<8 hex>`).
    pub fn name(mut self, name: impl Into<Input<String>>) -> Self {
        self.name = Some(name.into());
        self
    }
    pub fn instance_types(mut self, types: &[&str]) -> Self {
        self.instance_types = types.iter().map(|t| t.to_string()).collect();
        self
    }
    /// `AL2023_ARM_64_STANDARD`, `AL2023_x86_64_STANDARD`, ...
    pub fn ami_type(mut self, t: &str) -> Self {
        self.ami_type = Some(t.into());
        self
    }
    /// `ON_DEMAND` or `SPOT`.
    pub fn capacity_type(mut self, t: &str) -> Self {
        self.capacity_type = t.into();
        self
    }
    pub fn scaling(mut self, min: i32, desired: i32, max: i32) -> Self {
        (self.min_size, self.desired_size, self.max_size) = (min, desired, max);
        self
    }
    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }
    /// A taint; `effect` in EKS's spelling (`NO_SCHEDULE`).
    pub fn taint(mut self, key: &str, value: Option<&str>, effect: &str) -> Self {
        self.taints.push(NodeTaint {
            key: key.into(),
            value: value.map(String::from),
            effect: effect.into(),
        });
        self.taints.sort();
        self
    }
    /// The Kubernetes version (`1.35`), or the cluster's (`cluster.version()`), so that a
    /// control-plane upgrade is followed by the nodes (UpdateNodegroupVersion, after the
    /// cluster's update, since the reference orders them); EKS's default when unset.
    pub fn version(mut self, v: impl Into<Input<String>>) -> Self {
        self.version = Some(v.into());
        self
    }
    /// At most `n` nodes unavailable during an update (EKS's default is 1).
    pub fn max_unavailable(mut self, n: i32) -> Self {
        self.update_config = Some(UpdateConfig {
            max_unavailable: Some(n),
            max_unavailable_percentage: None,
        });
        self
    }
    /// At most `percent` % of the nodes unavailable during an update.
    pub fn max_unavailable_percentage(mut self, percent: i32) -> Self {
        self.update_config = Some(UpdateConfig {
            max_unavailable: None,
            max_unavailable_percentage: Some(percent),
        });
        self
    }
    /// Launches the nodes from version `version` of the launch template `id` (`lt-...`),
    /// for example `lt.template_id()` and `lt.latest_version().map(|v| v.to_string())`.
    /// A new version is rolled out in place (UpdateNodegroupVersion); another template, or
    /// adding or removing one, replaces the node group.
    pub fn launch_template(mut self, id: impl Into<Input<String>>, version: impl Into<Input<String>>) -> Self {
        self.launch_template = Some(LaunchTemplateRef {
            id: id.into(),
            version: version.into(),
        });
        self
    }
    pub fn tag(mut self, key: &str, value: impl Into<Input<String>>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }
}

/// A query for an existing managed node group (made by eksctl, Terraform or the console),
/// by cluster and name: [`Nodegroup::lookup`].
#[derive(Serialize)]
pub struct NodegroupLookup {
    cluster_name: Input<String>,
    name: Input<String>,
}

impl Nodegroup {
    /// The existing node group `name` of cluster `cluster_name`, read on every plan: its
    /// handle's outputs are a created group's, and what it read (instance types, labels,
    /// taints, sizes) is what lookup checks see as its inputs.
    pub fn lookup(cluster_name: impl Into<Input<String>>, name: impl Into<Input<String>>) -> NodegroupLookup {
        NodegroupLookup {
            cluster_name: cluster_name.into(),
            name: name.into(),
        }
    }
}

impl crate::model::Lookup for NodegroupLookup {
    type Resource = Nodegroup;
    fn kind(&self) -> String {
        KIND.into()
    }
    fn provider(&self) -> std::sync::Arc<dyn ResourceProvider> {
        std::sync::Arc::new(NodegroupProvider::new())
    }
}

impl Handle<Nodegroup> {
    pub fn name(&self) -> Output<String> {
        self.output("name")
    }
    pub fn arn(&self) -> Output<String> {
        self.output("arn")
    }
    /// The id of the group's launch template as a list: empty when it has none
    /// (for `LaunchTemplate::lookup().ids(..)`).
    pub fn launch_template_ids(&self) -> Output<Vec<String>> {
        self.output("launch_template_ids")
    }
}

#[derive(Deserialize)]
struct NodegroupInputs {
    cluster_name: String,
    #[serde(default)]
    name: Option<String>,
    node_role_arn: String,
    subnet_ids: Vec<String>,
    #[serde(default)]
    instance_types: Vec<String>,
    #[serde(default)]
    ami_type: Option<String>,
    capacity_type: String,
    min_size: i32,
    max_size: i32,
    desired_size: i32,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    taints: Vec<NodeTaint>,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    update_config: Option<UpdateConfig>,
    #[serde(default)]
    launch_template: Option<LaunchTemplateInputs>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
struct LaunchTemplateInputs {
    id: String,
    version: String,
}

impl NodegroupInputs {
    fn check(&self) -> Result<(), ProviderError> {
        if let Some(u) = &self.update_config {
            match (u.max_unavailable, u.max_unavailable_percentage) {
                (Some(n), None) if n >= 1 => {}
                (None, Some(p)) if (1..=100).contains(&p) => {}
                _ => {
                    return Err(ProviderError::msg(
                        "update_config needs exactly one of max_unavailable (>= 1) and \
                         max_unavailable_percentage (1-100)",
                    ));
                }
            }
        }
        if !(self.min_size <= self.desired_size && self.desired_size <= self.max_size) {
            return Err(ProviderError::msg(format!(
                "scaling must have min_size <= desired_size <= max_size (got {} <= {} <= {})",
                self.min_size, self.desired_size, self.max_size
            )));
        }
        for t in &self.taints {
            if !matches!(t.effect.as_str(), "NO_SCHEDULE" | "NO_EXECUTE" | "PREFER_NO_SCHEDULE") {
                return Err(ProviderError::msg(format!(
                    "taint {} effect \"{}\" must be NO_SCHEDULE, NO_EXECUTE or PREFER_NO_SCHEDULE (EKS spelling)",
                    t.key, t.effect
                )));
            }
        }
        Ok(())
    }
}

fn eks_taint(t: &NodeTaint) -> Taint {
    Taint::builder()
        .key(&t.key)
        .set_value(t.value.clone())
        .effect(TaintEffect::from(t.effect.as_str()))
        .build()
}

fn eks_update_config(u: &UpdateConfig) -> NodegroupUpdateConfig {
    NodegroupUpdateConfig::builder()
        .set_max_unavailable(u.max_unavailable)
        .set_max_unavailable_percentage(u.max_unavailable_percentage)
        .build()
}

fn scaling(i: &NodegroupInputs) -> NodegroupScalingConfig {
    NodegroupScalingConfig::builder()
        .min_size(i.min_size)
        .max_size(i.max_size)
        .desired_size(i.desired_size)
        .build()
}

provider!(
    /// The provider of `aws:eks:Nodegroup`.
    NodegroupProvider for Nodegroup (KIND),
    Schema::new()
        .replace_on(&[
            "cluster_name",
            "name",
            "node_role_arn",
            "subnet_ids",
            "instance_types",
            "ami_type",
            "capacity_type",
            "launch_template.id",
        ])
        .volatile_outputs(&["version", "release_version"])
        .delete_before_replace(true)
);

/// The launch template in `inputs`, if any (`None` for `null` or absent).
fn template_of(inputs: &Value) -> Option<&Value> {
    inputs.get("launch_template").filter(|v| !v.is_null())
}

fn split_group_id(id: &str) -> Result<(&str, &str), ProviderError> {
    split_id(id, ':', "a node group id", "<cluster>:<node group>")
}

fn group_name(ctx: &OpContext, user: Option<&str>) -> String {
    match user {
        Some(n) => n.to_string(),
        None => unique_name(ctx, None, 63, |c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
    }
}

async fn describe(
    ctx: &OpContext,
    cluster: &str,
    name: &str,
) -> Result<Option<aws_sdk_eks::types::Nodegroup>, ProviderError> {
    let eks = &context::clients().await.eks;
    let out = call_found(ctx, "DescribeNodegroup", || {
        eks.describe_nodegroup()
            .cluster_name(cluster)
            .nodegroup_name(name)
            .send()
    })
    .await?;
    Ok(out.and_then(|o| o.nodegroup().cloned()))
}

fn outputs(n: &aws_sdk_eks::types::Nodegroup) -> Value {
    json!({
        "name": n.nodegroup_name(),
        "arn": n.nodegroup_arn(),
        "version": n.version(),
        "release_version": n.release_version(),
        "ami_type": n.ami_type().map(|a| a.as_str()),
        // A list, so that a group with no template chains into a lookup matching nothing.
        "launch_template_ids": n.launch_template().and_then(|t| t.id()).into_iter().collect::<Vec<_>>(),
    })
}

async fn wait_active(
    ctx: &OpContext,
    cluster: &str,
    name: &str,
    default: Duration,
) -> Result<aws_sdk_eks::types::Nodegroup, ProviderError> {
    wait_ready(
        ctx,
        "the node group to be ACTIVE",
        default,
        || describe(ctx, cluster, name),
        |n| match n.status() {
            Some(NodegroupStatus::Active) => Ok(Poll::Ready(())),
            Some(NodegroupStatus::CreateFailed) => {
                let issues = n.health().map(|h| h.issues()).unwrap_or_default();
                let issues: Vec<String> = issues
                    .iter()
                    .map(|i| {
                        format!(
                            "{}: {}",
                            i.code().map(|c| c.as_str()).unwrap_or(""),
                            i.message().unwrap_or("")
                        )
                    })
                    .collect();
                Err(ProviderError::msg(format!(
                    "node group {name} is CREATE_FAILED: {}",
                    issues.join("; ")
                )))
            }
            state => Ok(Poll::state(state)),
        },
    )
    .await
}

/// Waits until the node group is gone (DescribeNodegroup finds nothing).
async fn wait_deleted(ctx: &OpContext, cluster: &str, name: &str) -> Result<(), ProviderError> {
    wait_gone(
        ctx,
        "the node group to be deleted",
        DELETE_WAIT,
        || describe(ctx, cluster, name),
        |g| Poll::state(g.status()),
    )
    .await
}

#[async_trait]
impl ResourceProvider for NodegroupProvider {
    kind_basics!(KIND, declare);

    async fn lookup(&self, ctx: &OpContext, query: &Value) -> Result<Vec<ReadResult>, ProviderError> {
        let (cluster, name) = crate::aws::lookup::cluster_member(query, KIND, "name", "node group")?;
        // `read` answers nothing for a missing one: no match.
        crate::aws::lookup::read_each(self, ctx, vec![format!("{cluster}:{name}")]).await
    }

    /// The schema's diff, plus: adding or removing the launch template replaces the group
    /// (its id is in `replace_on`; its version changes in place).
    fn diff(&self, old: &Value, new: &Value) -> DiffResult {
        let mut d = schema_diff(&self.schema, old, new);
        if template_of(old).is_some() != template_of(new).is_some() {
            for c in &d.changes {
                if c.path.to_string() == "launch_template" && !d.replace_paths.contains(&c.path) {
                    d.replace_paths.push(c.path.clone());
                }
            }
        }
        d
    }

    async fn create(&self, ctx: &OpContext, inputs: &Value) -> Result<Created, ProviderError> {
        let i: NodegroupInputs = parse(inputs)?;
        i.check()?;
        let name = group_name(ctx, i.name.as_deref());
        let eks = &context::clients().await.eks;
        let labels: HashMap<String, String> = i.labels.clone().into_iter().collect();
        call(
            ctx,
            "CreateNodegroup",
            // The cluster may still be finishing an update.
            Retry::on(&["ResourceInUseException"], Duration::from_secs(600)),
            || {
                eks.create_nodegroup()
                    .cluster_name(&i.cluster_name)
                    .nodegroup_name(&name)
                    .node_role(&i.node_role_arn)
                    .set_subnets(Some(i.subnet_ids.clone()))
                    .set_instance_types((!i.instance_types.is_empty()).then(|| i.instance_types.clone()))
                    .set_ami_type(i.ami_type.as_deref().map(AmiTypes::from))
                    .capacity_type(CapacityTypes::from(i.capacity_type.as_str()))
                    .scaling_config(scaling(&i))
                    .set_labels((!labels.is_empty()).then(|| labels.clone()))
                    .set_taints((!i.taints.is_empty()).then(|| i.taints.iter().map(eks_taint).collect()))
                    .set_version(i.version.clone())
                    .set_update_config(i.update_config.as_ref().map(eks_update_config))
                    .set_launch_template(i.launch_template.as_ref().map(|t| {
                        LaunchTemplateSpecification::builder()
                            .id(&t.id)
                            .version(&t.version)
                            .build()
                    }))
                    .set_tags(Some(tags(&i.tags, ctx)))
                    .send()
            },
        )
        .await?;
        let id = format!("{}:{name}", i.cluster_name);
        let made = wait_active(ctx, &i.cluster_name, &name, CREATE_WAIT)
            .await
            .map(|n| outputs(&n));
        created_or_undone(self, ctx, inputs, id, made, IfCancelled::Keep).await
    }

    async fn read(
        &self,
        ctx: &OpContext,
        id: &str,
        inputs: &Value,
        _outputs: &Value,
    ) -> Result<Option<ReadResult>, ProviderError> {
        let (cluster, name) = split_group_id(id)?;
        let Some(n) = describe(ctx, cluster, name).await? else {
            return Ok(None);
        };
        if n.status() == Some(&NodegroupStatus::Deleting) {
            // Going, and nothing stops it: gone once it has gone, not before (recovery
            // finishes a killed delete on this answer, and then deletes what the group
            // stands on: its role, its subnets).
            wait_deleted(ctx, cluster, name).await?;
            return Ok(None);
        }
        let sc = n.scaling_config();
        let mut taints: Vec<NodeTaint> = n
            .taints()
            .iter()
            .map(|t| NodeTaint {
                key: t.key().unwrap_or_default().to_string(),
                value: t.value().filter(|v| !v.is_empty()).map(String::from),
                effect: t.effect().map(|e| e.as_str().to_string()).unwrap_or_default(),
            })
            .collect();
        taints.sort();
        let labels: BTreeMap<String, String> = n.labels().cloned().unwrap_or_default().into_iter().collect();
        let subnets: Vec<String> = n.subnets().to_vec();
        let stored_subnets: Option<Vec<String>> = inputs
            .get("subnet_ids")
            .and_then(|v| serde_json::from_value(v.clone()).ok());
        let subnets = match stored_subnets {
            Some(mut s) => {
                let mut live = subnets.clone();
                let order = s.clone();
                s.sort();
                live.sort();
                if s == live { order } else { subnets }
            }
            None => subnets,
        };
        // EKS always has an update config (maxUnavailable 1 by default): one the program
        // leaves unset (null or absent, as in state written before the field existed) is
        // never drift; an import takes the live one.
        let update_config = match inputs.get("update_config") {
            Some(Value::Null) | None if !inputs.is_null() => Value::Null,
            _ => json!(n.update_config().map(|u| UpdateConfig {
                max_unavailable: u.max_unavailable(),
                max_unavailable_percentage: u.max_unavailable_percentage(),
            })),
        };
        // EKS may answer a `$Latest`/`$Default` version with the number it resolved.
        let launch_template = n.launch_template().map(|t| {
            let stored = template_of(inputs)
                .and_then(|s| s.get("version"))
                .and_then(Value::as_str);
            let version = match stored {
                Some(v @ ("$Latest" | "$Default")) => v.to_string(),
                _ => t.version().unwrap_or_default().to_string(),
            };
            json!({"id": t.id(), "version": version})
        });
        Ok(Some(ReadResult {
            id: id.to_string(),
            inputs: json!({
                "cluster_name": cluster,
                "name": unless_unset(inputs, "name", json!(name)),
                "node_role_arn": n.node_role(),
                "subnet_ids": subnets,
                "instance_types": unless_unset(inputs, "instance_types", json!(n.instance_types())),
                "ami_type": unless_unset(inputs, "ami_type", json!(n.ami_type().map(|a| a.as_str()))),
                "capacity_type": n.capacity_type().map(|c| c.as_str()).unwrap_or("ON_DEMAND"),
                "min_size": sc.and_then(|s| s.min_size()),
                "max_size": sc.and_then(|s| s.max_size()),
                "desired_size": sc.and_then(|s| s.desired_size()),
                "labels": labels,
                "taints": taints,
                "version": unless_unset(inputs, "version", json!(n.version())),
                "update_config": update_config,
                "launch_template": launch_template,
                "tags": from_tags(n.tags()),
            }),
            outputs: outputs(&n),
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
        let o: NodegroupInputs = parse(old)?;
        let n: NodegroupInputs = parse(new)?;
        n.check()?;
        let (cluster, name) = split_group_id(id)?;
        let eks = &context::clients().await.eks;
        // A version the nodes already run (one the program now names for the first time)
        // is no update: EKS refuses an UpdateNodegroupVersion that changes nothing.
        let running = old_outputs.get("version").and_then(Value::as_str);
        let new_version = n
            .version
            .as_ref()
            .filter(|v| o.version.as_ref() != Some(*v) && running != Some(v.as_str()));
        // Only a new version of the same template is an update (the diff replaces otherwise).
        let new_template = match (&o.launch_template, &n.launch_template) {
            (Some(a), Some(b)) if a.id == b.id && a.version != b.version => Some(b),
            _ => None,
        };
        if new_version.is_some() || new_template.is_some() {
            let out = call(
                ctx,
                "UpdateNodegroupVersion",
                Retry::on(&["ResourceInUseException"], UPDATE_WAIT),
                || {
                    eks.update_nodegroup_version()
                        .cluster_name(cluster)
                        .nodegroup_name(name)
                        .set_version(new_version.cloned())
                        .set_launch_template(new_template.map(|t| {
                            LaunchTemplateSpecification::builder()
                                .id(&t.id)
                                .version(&t.version)
                                .build()
                        }))
                        .send()
                },
            )
            .await?;
            wait_update(ctx, cluster, Some(name), None, out.update(), UPDATE_WAIT).await?;
            wait_active(ctx, cluster, name, UPDATE_WAIT).await?;
        }
        let scaling_changed = (o.min_size, o.max_size, o.desired_size) != (n.min_size, n.max_size, n.desired_size);
        // An update config dropped from the program stays as it is (EKS has no "unset").
        let update_config = n.update_config.filter(|u| o.update_config.as_ref() != Some(u));
        if scaling_changed || o.labels != n.labels || o.taints != n.taints || update_config.is_some() {
            let mut req = eks.update_nodegroup_config().cluster_name(cluster).nodegroup_name(name);
            if scaling_changed {
                req = req.scaling_config(scaling(&n));
            }
            if let Some(u) = &update_config {
                req = req.update_config(eks_update_config(u));
            }
            if o.labels != n.labels {
                let set: HashMap<String, String> = n
                    .labels
                    .iter()
                    .filter(|(k, v)| o.labels.get(*k) != Some(v))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let removed: Vec<String> = o
                    .labels
                    .keys()
                    .filter(|k| !n.labels.contains_key(*k))
                    .cloned()
                    .collect();
                req = req.labels(
                    UpdateLabelsPayload::builder()
                        .set_add_or_update_labels((!set.is_empty()).then_some(set))
                        .set_remove_labels((!removed.is_empty()).then_some(removed))
                        .build(),
                );
            }
            if o.taints != n.taints {
                let add: Vec<Taint> = n
                    .taints
                    .iter()
                    .filter(|t| !o.taints.contains(t))
                    .map(eks_taint)
                    .collect();
                let remove: Vec<Taint> = o
                    .taints
                    .iter()
                    .filter(|t| !n.taints.iter().any(|x| x.key == t.key && x.effect == t.effect))
                    .map(eks_taint)
                    .collect();
                req = req.taints(
                    UpdateTaintsPayload::builder()
                        .set_add_or_update_taints((!add.is_empty()).then_some(add))
                        .set_remove_taints((!remove.is_empty()).then_some(remove))
                        .build(),
                );
            }
            let out = call(
                ctx,
                "UpdateNodegroupConfig",
                Retry::on(&["ResourceInUseException"], UPDATE_WAIT),
                || req.clone().send(),
            )
            .await?;
            wait_update(ctx, cluster, Some(name), None, out.update(), UPDATE_WAIT).await?;
        }
        if o.tags != n.tags {
            let arn = describe(ctx, cluster, name)
                .await?
                .and_then(|g| g.nodegroup_arn().map(String::from))
                .ok_or_else(|| ProviderError::msg(format!("DescribeNodegroup: node group {id} is gone")))?;
            sync_tags(ctx, &arn, &o.tags, &n.tags).await?;
        }
        let g = wait_active(ctx, cluster, name, UPDATE_WAIT).await?;
        Ok(outputs(&g))
    }

    async fn delete(&self, ctx: &OpContext, id: &str, _inputs: &Value, _outputs: &Value) -> Result<(), ProviderError> {
        let (cluster, name) = split_group_id(id)?;
        let Some(g) = describe(ctx, cluster, name).await? else {
            return Ok(());
        };
        let eks = &context::clients().await.eks;
        if g.status() != Some(&NodegroupStatus::Deleting) {
            let r = call(
                ctx,
                "DeleteNodegroup",
                Retry::within(ctx, &["ResourceInUseException"], DELETE_WAIT),
                || eks.delete_nodegroup().cluster_name(cluster).nodegroup_name(name).send(),
            )
            .await;
            if none_if_gone(r)?.is_none() {
                return Ok(());
            }
        }
        wait_deleted(ctx, cluster, name).await
    }

    async fn find(&self, ctx: &OpContext, inputs: &Value) -> Result<Option<Created>, ProviderError> {
        let Some(cluster) = inputs.get("cluster_name").and_then(Value::as_str) else {
            return Ok(None);
        };
        let name = group_name(ctx, inputs.get("name").and_then(Value::as_str));
        let Some(g) = describe(ctx, cluster, &name).await? else {
            return Ok(None);
        };
        if !owned(ctx, g.tags()) || g.status() == Some(&NodegroupStatus::Deleting) {
            return Ok(None);
        }
        let g = wait_active(ctx, cluster, &name, CREATE_WAIT).await?;
        Ok(Some(Created {
            id: format!("{cluster}:{name}"),
            outputs: outputs(&g),
        }))
    }
}

/// `eks::Nodegroup::new(cluster, role, subnets)` with each setting that differs from the
/// builder's defaults.
fn declare(i: &Value) -> Option<Expr> {
    use crate::declaration::{input_vec, int_at, only_keys, str_at, str_slice, string, strs_at};
    if !only_keys(
        i,
        &[
            "cluster_name",
            "name",
            "node_role_arn",
            "subnet_ids",
            "instance_types",
            "ami_type",
            "capacity_type",
            "min_size",
            "max_size",
            "desired_size",
            "labels",
            "taints",
            "version",
            "update_config",
            "launch_template",
            "tags",
        ],
    ) {
        return None;
    }
    let types = strs_at(i, "instance_types")?;
    let capacity = str_at(i, "capacity_type").unwrap_or("ON_DEMAND");
    let (min, desired, max) = (
        int_at(i, "min_size")?,
        int_at(i, "desired_size")?,
        int_at(i, "max_size")?,
    );
    let mut e = Expr::new(
        "eks::Nodegroup::new",
        &[
            string(str_at(i, "cluster_name")?),
            string(str_at(i, "node_role_arn")?),
            input_vec(&strs_at(i, "subnet_ids")?),
        ],
    )
    .str_setter(i, "name", "name")?
    .call_if(!types.is_empty(), "instance_types", &[str_slice(&types)])
    .str_setter(i, "ami_type", "ami_type")?
    .call_if(capacity != "ON_DEMAND", "capacity_type", &[string(capacity)])
    .call_if(
        (min, desired, max) != (1, 1, 1),
        "scaling",
        &[min.to_string(), desired.to_string(), max.to_string()],
    );
    for (k, v) in i.get("labels").and_then(Value::as_object).into_iter().flatten() {
        e = e.call("label", &[string(k), string(v.as_str()?)]);
    }
    let taints: Vec<NodeTaint> = match i.get("taints") {
        None | Some(Value::Null) => Vec::new(),
        Some(t) => serde_json::from_value(t.clone()).ok()?,
    };
    for t in taints {
        let value = t
            .value
            .as_deref()
            .map_or("None".to_string(), |v| format!("Some({})", string(v)));
        e = e.call("taint", &[string(&t.key), value, string(&t.effect)]);
    }
    e = e.str_setter(i, "version", "version")?;
    if let Some(u) = i.get("update_config").filter(|u| !u.is_null()) {
        let u: UpdateConfig = serde_json::from_value(u.clone()).ok()?;
        e = match (u.max_unavailable, u.max_unavailable_percentage) {
            (Some(n), None) => e.call("max_unavailable", &[n.to_string()]),
            (None, Some(p)) => e.call("max_unavailable_percentage", &[p.to_string()]),
            _ => return None,
        };
    }
    if let Some(t) = i.get("launch_template").filter(|t| !t.is_null()) {
        e = e.call(
            "launch_template",
            &[string(str_at(t, "id")?), string(str_at(t, "version")?)],
        );
    }
    e.tags(i)
}

#[cfg(test)]
mod tests {
    use super::outputs;
    use aws_sdk_eks::types::{LaunchTemplateSpecification, Nodegroup};
    use serde_json::json;

    #[test]
    fn launch_template_ids_lists_the_template_or_nothing() {
        let without = Nodegroup::builder().nodegroup_name("ng").build();
        assert_eq!(outputs(&without)["launch_template_ids"], json!([]));
        let with = Nodegroup::builder()
            .nodegroup_name("ng")
            .launch_template(LaunchTemplateSpecification::builder().id("lt-1").version("2").build())
            .build();
        assert_eq!(outputs(&with)["launch_template_ids"], json!(["lt-1"]));
    }
}
