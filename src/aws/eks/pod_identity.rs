//! `aws:eks:PodIdentityAssociation`: an IAM role for a Kubernetes service account through
//! EKS Pod Identity (needs the `eks-pod-identity-agent` add-on on the cluster).
//!
//! Rules kept here: cluster, namespace and service account force a replacement (EKS
//! allows one association per service account, so the old one is deleted first); the role
//! and tags change in place; the id is `<cluster>:<association id>`; `find` lists the
//! service account's associations and adopts the one with this address's tag.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{from_tags, owned, sync_tags, tags};
use crate::aws::call::{Retry, call, call_found, call0, none_if_gone};
use crate::aws::context;
use crate::aws::ec2::parse;
use crate::aws::lifecycle::{kind_basics, provider, split_id};
use crate::declaration::Expr;
use crate::model::{Handle, Input, Output};
use crate::provider::{Created, OpContext, ProviderError, ReadResult, ResourceProvider, Schema};

pub const KIND: &str = "aws:eks:PodIdentityAssociation";

/// The association of `namespace/service_account` with the role `role_arn`.
#[derive(Debug, Clone, Serialize)]
pub struct PodIdentityAssociation {
    cluster_name: Input<String>,
    namespace: String,
    service_account: String,
    role_arn: Input<String>,
    tags: BTreeMap<String, Input<String>>,
}

impl PodIdentityAssociation {
    pub fn new(
        cluster_name: impl Into<Input<String>>,
        namespace: &str,
        service_account: &str,
        role_arn: impl Into<Input<String>>,
    ) -> Self {
        PodIdentityAssociation {
            cluster_name: cluster_name.into(),
            namespace: namespace.into(),
            service_account: service_account.into(),
            role_arn: role_arn.into(),
            tags: BTreeMap::new(),
        }
    }
    pub fn tag(mut self, key: &str, value: impl Into<Input<String>>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }
}

impl Handle<PodIdentityAssociation> {
    pub fn arn(&self) -> Output<String> {
        self.output("arn")
    }
    pub fn association_id(&self) -> Output<String> {
        self.output("association_id")
    }
}

#[derive(Deserialize)]
struct PiaInputs {
    cluster_name: String,
    namespace: String,
    service_account: String,
    role_arn: String,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

provider!(
    /// The provider of `aws:eks:PodIdentityAssociation`.
    PodIdentityAssociationProvider for PodIdentityAssociation (KIND),
    Schema::new()
        .replace_on(&["cluster_name", "namespace", "service_account"])
        .delete_before_replace(true)
);

fn split_association_id(id: &str) -> Result<(&str, &str), ProviderError> {
    split_id(id, ':', "an association id", "<cluster>:<association id>")
}

fn outputs(a: &aws_sdk_eks::types::PodIdentityAssociation) -> Value {
    json!({"arn": a.association_arn(), "association_id": a.association_id()})
}

async fn describe(
    ctx: &OpContext,
    cluster: &str,
    id: &str,
) -> Result<Option<aws_sdk_eks::types::PodIdentityAssociation>, ProviderError> {
    let eks = &context::clients().await.eks;
    let out = call_found(ctx, "DescribePodIdentityAssociation", || {
        eks.describe_pod_identity_association()
            .cluster_name(cluster)
            .association_id(id)
            .send()
    })
    .await?;
    Ok(out.and_then(|o| o.association().cloned()))
}

#[async_trait]
impl ResourceProvider for PodIdentityAssociationProvider {
    kind_basics!(KIND, declare);

    async fn create(&self, ctx: &OpContext, inputs: &Value) -> Result<Created, ProviderError> {
        let i: PiaInputs = parse(inputs)?;
        let eks = &context::clients().await.eks;
        let t: HashMap<String, String> = tags(&i.tags, ctx);
        let out = call(
            ctx,
            "CreatePodIdentityAssociation",
            Retry::on(&["ResourceInUseException"], Duration::from_secs(300)),
            || {
                eks.create_pod_identity_association()
                    .cluster_name(&i.cluster_name)
                    .namespace(&i.namespace)
                    .service_account(&i.service_account)
                    .role_arn(&i.role_arn)
                    .set_tags(Some(t.clone()))
                    .send()
            },
        )
        .await?;
        let a = out
            .association()
            .ok_or_else(|| ProviderError::msg("CreatePodIdentityAssociation: EKS returned no association"))?;
        Ok(Created {
            id: format!("{}:{}", i.cluster_name, a.association_id().unwrap_or_default()),
            outputs: outputs(a),
        })
    }

    async fn read(
        &self,
        ctx: &OpContext,
        id: &str,
        _inputs: &Value,
        _outputs: &Value,
    ) -> Result<Option<ReadResult>, ProviderError> {
        let (cluster, assoc) = split_association_id(id)?;
        Ok(describe(ctx, cluster, assoc).await?.map(|a| ReadResult {
            id: id.to_string(),
            inputs: json!({
                "cluster_name": cluster,
                "namespace": a.namespace(),
                "service_account": a.service_account(),
                "role_arn": a.role_arn(),
                "tags": from_tags(a.tags()),
            }),
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
        let o: PiaInputs = parse(old)?;
        let n: PiaInputs = parse(new)?;
        let (cluster, assoc) = split_association_id(id)?;
        let eks = &context::clients().await.eks;
        if o.role_arn != n.role_arn {
            call0(ctx, "UpdatePodIdentityAssociation", || {
                eks.update_pod_identity_association()
                    .cluster_name(cluster)
                    .association_id(assoc)
                    .role_arn(&n.role_arn)
                    .send()
            })
            .await?;
        }
        if o.tags != n.tags
            && let Some(arn) = old_outputs.get("arn").and_then(Value::as_str)
        {
            sync_tags(ctx, arn, &o.tags, &n.tags).await?;
        }
        Ok(old_outputs.clone())
    }

    async fn delete(&self, ctx: &OpContext, id: &str, _inputs: &Value, _outputs: &Value) -> Result<(), ProviderError> {
        let (cluster, assoc) = split_association_id(id)?;
        let eks = &context::clients().await.eks;
        let r = call0(ctx, "DeletePodIdentityAssociation", || {
            eks.delete_pod_identity_association()
                .cluster_name(cluster)
                .association_id(assoc)
                .send()
        })
        .await;
        none_if_gone(r).map(|_| ())
    }

    async fn find(&self, ctx: &OpContext, inputs: &Value) -> Result<Option<Created>, ProviderError> {
        let Ok(i) = parse::<PiaInputs>(inputs) else {
            return Ok(None);
        };
        let eks = &context::clients().await.eks;
        let list = call_found(ctx, "ListPodIdentityAssociations", || {
            eks.list_pod_identity_associations()
                .cluster_name(&i.cluster_name)
                .namespace(&i.namespace)
                .service_account(&i.service_account)
                .send()
        })
        .await?;
        for s in list.iter().flat_map(|l| l.associations()) {
            let Some(assoc) = s.association_id() else { continue };
            if let Some(a) = describe(ctx, &i.cluster_name, assoc).await?
                && owned(ctx, a.tags())
            {
                return Ok(Some(Created {
                    id: format!("{}:{assoc}", i.cluster_name),
                    outputs: outputs(&a),
                }));
            }
        }
        Ok(None)
    }
}

/// `eks::PodIdentityAssociation::new(cluster, namespace, service account, role)` with its
/// tags.
fn declare(i: &Value) -> Option<Expr> {
    use crate::declaration::{only_keys, str_at, string};
    if !only_keys(i, &["cluster_name", "namespace", "service_account", "role_arn", "tags"]) {
        return None;
    }
    Expr::new(
        "eks::PodIdentityAssociation::new",
        &[
            string(str_at(i, "cluster_name")?),
            string(str_at(i, "namespace")?),
            string(str_at(i, "service_account")?),
            string(str_at(i, "role_arn")?),
        ],
    )
    .tags(i)
}
