//! `aws:eks:AccessEntry`: an access entry for an IAM principal, with its access policies.
//!
//! Rules kept here: cluster, principal and type force a replacement; Kubernetes groups and
//! username change in place (UpdateAccessEntry); access policies are reconciled in place
//! (AssociateAccessPolicy for new or re-scoped ones, DisassociateAccessPolicy for removed
//! ones); node types (`EC2_LINUX`, ...) take no groups, username or policies, which is
//! checked before any call; a username left unset is EKS's choice and never drift; the id
//! is `<cluster>#<principal ARN>`; deleting the entry removes its associations with it.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_eks::types::{AccessScope, AccessScopeType};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{from_tags, owned, sync_tags, tags};
use crate::aws::call::{Retry, all_pages, call, call_found, call0, none_if_gone};
use crate::aws::context;
use crate::aws::ec2::{parse, unless_unset};
use crate::aws::lifecycle::{IfCancelled, created_or_undone, kind_basics, provider, split_id};
use crate::declaration::Expr;
use crate::model::{Handle, Input, Output};
use crate::provider::{Created, OpContext, ProviderError, ReadResult, ResourceProvider, Schema};

pub const KIND: &str = "aws:eks:AccessEntry";

/// An access policy associated with an entry, scoped to the cluster or to namespaces.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AccessPolicy {
    pub policy_arn: String,
    /// Empty: the whole cluster.
    #[serde(default)]
    pub namespaces: Vec<String>,
}

/// An access entry.
#[derive(Debug, Clone, Serialize)]
pub struct AccessEntry {
    cluster_name: Input<String>,
    principal_arn: Input<String>,
    #[serde(rename = "type")]
    entry_type: String,
    kubernetes_groups: Vec<String>,
    username: Option<String>,
    access_policies: Vec<AccessPolicy>,
    tags: BTreeMap<String, Input<String>>,
}

impl AccessEntry {
    /// A `STANDARD` entry for `principal_arn`.
    pub fn new(cluster_name: impl Into<Input<String>>, principal_arn: impl Into<Input<String>>) -> Self {
        AccessEntry {
            cluster_name: cluster_name.into(),
            principal_arn: principal_arn.into(),
            entry_type: "STANDARD".into(),
            kubernetes_groups: Vec::new(),
            username: None,
            access_policies: Vec::new(),
            tags: BTreeMap::new(),
        }
    }
    /// An entry for nodes (`EC2_LINUX`) using the role `principal_arn`.
    pub fn ec2_linux_nodes(cluster_name: impl Into<Input<String>>, principal_arn: impl Into<Input<String>>) -> Self {
        AccessEntry {
            entry_type: "EC2_LINUX".into(),
            ..Self::new(cluster_name, principal_arn)
        }
    }
    pub fn group(mut self, g: &str) -> Self {
        self.kubernetes_groups.push(g.into());
        self.kubernetes_groups.sort();
        self
    }
    pub fn username(mut self, u: &str) -> Self {
        self.username = Some(u.into());
        self
    }
    /// Associates an access policy (`arn:aws:eks::aws:cluster-access-policy/...`); cluster
    /// scope when `namespaces` is empty.
    pub fn policy(mut self, policy_arn: &str, namespaces: &[&str]) -> Self {
        self.access_policies.push(AccessPolicy {
            policy_arn: policy_arn.into(),
            namespaces: namespaces.iter().map(|n| n.to_string()).collect(),
        });
        self.access_policies.sort();
        self
    }
    pub fn tag(mut self, key: &str, value: impl Into<Input<String>>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }
}

impl Handle<AccessEntry> {
    pub fn arn(&self) -> Output<String> {
        self.output("arn")
    }
}

#[derive(Deserialize)]
struct EntryInputs {
    cluster_name: String,
    principal_arn: String,
    #[serde(rename = "type")]
    entry_type: String,
    #[serde(default)]
    kubernetes_groups: Vec<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    access_policies: Vec<AccessPolicy>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

impl EntryInputs {
    fn check(&self) -> Result<(), ProviderError> {
        if self.entry_type != "STANDARD"
            && (!self.kubernetes_groups.is_empty() || self.username.is_some() || !self.access_policies.is_empty())
        {
            return Err(ProviderError::msg(format!(
                "an access entry of type {} takes no kubernetes_groups, username or access_policies",
                self.entry_type
            )));
        }
        Ok(())
    }
}

provider!(
    /// The provider of `aws:eks:AccessEntry`.
    AccessEntryProvider for AccessEntry (KIND),
    Schema::new().replace_on(&["cluster_name", "principal_arn", "type"])
);

fn split_entry_id(id: &str) -> Result<(&str, &str), ProviderError> {
    split_id(id, '#', "an access entry id", "<cluster>#<principal ARN>")
}

fn scope(p: &AccessPolicy) -> AccessScope {
    if p.namespaces.is_empty() {
        AccessScope::builder().r#type(AccessScopeType::Cluster).build()
    } else {
        AccessScope::builder()
            .r#type(AccessScopeType::Namespace)
            .set_namespaces(Some(p.namespaces.clone()))
            .build()
    }
}

async fn policies(ctx: &OpContext, cluster: &str, principal: &str) -> Result<Vec<AccessPolicy>, ProviderError> {
    let eks = &context::clients().await.eks;
    let mut out = all_pages(
        ctx,
        "ListAssociatedAccessPolicies",
        |token| {
            eks.list_associated_access_policies()
                .cluster_name(cluster)
                .principal_arn(principal)
                .set_next_token(token)
                .send()
        },
        |page| {
            let policies = page.associated_access_policies().iter().map(|p| {
                let mut namespaces: Vec<String> = p.access_scope().map(|s| s.namespaces().to_vec()).unwrap_or_default();
                namespaces.sort();
                AccessPolicy {
                    policy_arn: p.policy_arn().unwrap_or_default().to_string(),
                    namespaces,
                }
            });
            (policies.collect(), page.next_token().map(String::from))
        },
    )
    .await?;
    out.sort();
    Ok(out)
}

async fn associate(ctx: &OpContext, cluster: &str, principal: &str, p: &AccessPolicy) -> Result<(), ProviderError> {
    let eks = &context::clients().await.eks;
    call0(ctx, "AssociateAccessPolicy", || {
        eks.associate_access_policy()
            .cluster_name(cluster)
            .principal_arn(principal)
            .policy_arn(&p.policy_arn)
            .access_scope(scope(p))
            .send()
    })
    .await?;
    Ok(())
}

async fn describe(
    ctx: &OpContext,
    cluster: &str,
    principal: &str,
) -> Result<Option<aws_sdk_eks::types::AccessEntry>, ProviderError> {
    let eks = &context::clients().await.eks;
    let out = call_found(ctx, "DescribeAccessEntry", || {
        eks.describe_access_entry()
            .cluster_name(cluster)
            .principal_arn(principal)
            .send()
    })
    .await?;
    Ok(out.and_then(|o| o.access_entry().cloned()))
}

#[async_trait]
impl ResourceProvider for AccessEntryProvider {
    kind_basics!(KIND, declare);

    async fn create(&self, ctx: &OpContext, inputs: &Value) -> Result<Created, ProviderError> {
        let i: EntryInputs = parse(inputs)?;
        i.check()?;
        let eks = &context::clients().await.eks;
        let t: HashMap<String, String> = tags(&i.tags, ctx);
        let out = call(
            ctx,
            "CreateAccessEntry",
            // A role made a moment ago may not be visible to EKS yet.
            Retry::on(&["ResourceInUseException"], Duration::from_secs(300)),
            || {
                eks.create_access_entry()
                    .cluster_name(&i.cluster_name)
                    .principal_arn(&i.principal_arn)
                    .r#type(&i.entry_type)
                    .set_kubernetes_groups((!i.kubernetes_groups.is_empty()).then(|| i.kubernetes_groups.clone()))
                    .set_username(i.username.clone())
                    .set_tags(Some(t.clone()))
                    .send()
            },
        )
        .await?;
        let id = format!("{}#{}", i.cluster_name, i.principal_arn);
        let finish = async {
            for p in &i.access_policies {
                associate(ctx, &i.cluster_name, &i.principal_arn, p).await?;
            }
            Ok(json!({"arn": out.access_entry().and_then(|e| e.access_entry_arn())}))
        };
        let outputs = finish.await;
        created_or_undone(self, ctx, inputs, id, outputs, IfCancelled::Undo).await
    }

    async fn read(
        &self,
        ctx: &OpContext,
        id: &str,
        inputs: &Value,
        _outputs: &Value,
    ) -> Result<Option<ReadResult>, ProviderError> {
        let (cluster, principal) = split_entry_id(id)?;
        let Some(e) = describe(ctx, cluster, principal).await? else {
            return Ok(None);
        };
        let mut groups = e.kubernetes_groups().to_vec();
        groups.sort();
        let standard = e.r#type() == Some("STANDARD");
        if !standard {
            // Node entries carry EKS's own groups and username: not the user's inputs.
            groups.clear();
        }
        let username = if standard {
            unless_unset(inputs, "username", json!(e.username()))
        } else {
            Value::Null
        };
        Ok(Some(ReadResult {
            id: id.to_string(),
            inputs: json!({
                "cluster_name": cluster,
                "principal_arn": principal,
                "type": e.r#type(),
                "kubernetes_groups": groups,
                "username": username,
                "access_policies": policies(ctx, cluster, principal).await?,
                "tags": from_tags(e.tags()),
            }),
            outputs: json!({"arn": e.access_entry_arn()}),
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
        let o: EntryInputs = parse(old)?;
        let n: EntryInputs = parse(new)?;
        n.check()?;
        let (cluster, principal) = split_entry_id(id)?;
        let eks = &context::clients().await.eks;
        if o.kubernetes_groups != n.kubernetes_groups || o.username != n.username {
            call0(ctx, "UpdateAccessEntry", || {
                eks.update_access_entry()
                    .cluster_name(cluster)
                    .principal_arn(principal)
                    .set_kubernetes_groups(Some(n.kubernetes_groups.clone()))
                    .set_username(n.username.clone())
                    .send()
            })
            .await?;
        }
        for p in n.access_policies.iter().filter(|p| !o.access_policies.contains(p)) {
            associate(ctx, cluster, principal, p).await?;
        }
        for p in o
            .access_policies
            .iter()
            .filter(|p| !n.access_policies.iter().any(|x| x.policy_arn == p.policy_arn))
        {
            let r = call0(ctx, "DisassociateAccessPolicy", || {
                eks.disassociate_access_policy()
                    .cluster_name(cluster)
                    .principal_arn(principal)
                    .policy_arn(&p.policy_arn)
                    .send()
            })
            .await;
            none_if_gone(r)?;
        }
        if o.tags != n.tags
            && let Some(arn) = old_outputs.get("arn").and_then(Value::as_str)
        {
            sync_tags(ctx, arn, &o.tags, &n.tags).await?;
        }
        Ok(old_outputs.clone())
    }

    async fn delete(&self, ctx: &OpContext, id: &str, _inputs: &Value, _outputs: &Value) -> Result<(), ProviderError> {
        let (cluster, principal) = split_entry_id(id)?;
        let eks = &context::clients().await.eks;
        let r = call0(ctx, "DeleteAccessEntry", || {
            eks.delete_access_entry()
                .cluster_name(cluster)
                .principal_arn(principal)
                .send()
        })
        .await;
        none_if_gone(r).map(|_| ())
    }

    async fn find(&self, ctx: &OpContext, inputs: &Value) -> Result<Option<Created>, ProviderError> {
        let (Some(cluster), Some(principal)) = (
            inputs.get("cluster_name").and_then(Value::as_str),
            inputs.get("principal_arn").and_then(Value::as_str),
        ) else {
            return Ok(None);
        };
        Ok(describe(ctx, cluster, principal)
            .await?
            .filter(|e| owned(ctx, e.tags()))
            .map(|e| Created {
                id: format!("{cluster}#{principal}"),
                outputs: json!({"arn": e.access_entry_arn()}),
            }))
    }
}

/// `eks::AccessEntry::new(cluster, principal)` (or `ec2_linux_nodes`) with its groups,
/// username, access policies and tags.
fn declare(i: &Value) -> Option<Expr> {
    use crate::declaration::{only_keys, str_at, str_slice, string, strs_at};
    if !only_keys(
        i,
        &[
            "cluster_name",
            "principal_arn",
            "type",
            "kubernetes_groups",
            "username",
            "access_policies",
            "tags",
        ],
    ) {
        return None;
    }
    let head = match str_at(i, "type").unwrap_or("STANDARD") {
        "STANDARD" => "eks::AccessEntry::new",
        "EC2_LINUX" => "eks::AccessEntry::ec2_linux_nodes",
        _ => return None,
    };
    let mut e = Expr::new(
        head,
        &[string(str_at(i, "cluster_name")?), string(str_at(i, "principal_arn")?)],
    );
    for g in strs_at(i, "kubernetes_groups")? {
        e = e.call("group", &[string(g)]);
    }
    e = e.str_setter(i, "username", "username")?;
    let policies: Vec<AccessPolicy> = match i.get("access_policies") {
        None | Some(Value::Null) => Vec::new(),
        Some(p) => serde_json::from_value(p.clone()).ok()?,
    };
    for p in policies {
        e = e.call("policy", &[string(&p.policy_arn), str_slice(&p.namespaces)]);
    }
    e.tags(i)
}
