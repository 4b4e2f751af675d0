//! EKS kinds (`aws:eks:*`) and the helpers they share: waiting for an EKS update
//! (DescribeUpdate) to succeed, tags on EKS ARNs (set at creation, changed in place through
//! UntagResource/TagResource), names.
//!
//! Rules kept here: EKS answers most changes with an `update`; a kind waits for it to be
//! `Successful` (a `Failed` or `Cancelled` one is an error naming its error codes) and
//! then for the object to be `ACTIVE` again, within the user's timeout or the kind's
//! default; EKS takes tags in the create call, so `spar:address` and `spar:stack` are set at
//! creation and a generated name is `<name>-<8 hex>` from the stack and address; `find`
//! describes that name and adopts the object only when it carries this address's and this
//! stack's tags ([`owned`]).

pub mod access;
pub mod addon;
pub mod cluster;
pub mod nodegroup;
pub mod pod_identity;

pub use access::{AccessEntry, AccessPolicy};
pub use addon::Addon;
pub use cluster::Cluster;
pub use nodegroup::{NodeTaint, Nodegroup, UpdateConfig};
pub use pod_identity::PodIdentityAssociation;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_eks::types::{Update, UpdateStatus};

use crate::aws::call::{Poll, call0, wait_for};
use crate::aws::context;
use crate::aws::tags::{apply_changes, owned_by, user_tags, with_owner};
use crate::provider::{OpContext, ProviderError, Registry};

/// Adds the EKS kinds to `registry`.
pub fn register(registry: &mut Registry) {
    registry.register(Arc::new(cluster::ClusterProvider::new()));
    registry.register(Arc::new(nodegroup::NodegroupProvider::new()));
    registry.register(Arc::new(addon::AddonProvider::new()));
    registry.register(Arc::new(access::AccessEntryProvider::new()));
    registry.register(Arc::new(pod_identity::PodIdentityAssociationProvider::new()));
}

/// EKS tags for an object made by `ctx`: the user's plus the ownership tags.
pub(crate) fn tags(user: &BTreeMap<String, String>, ctx: &OpContext) -> HashMap<String, String> {
    with_owner(user, ctx).into_iter().collect()
}

pub(crate) fn from_tags(tags: Option<&HashMap<String, String>>) -> BTreeMap<String, String> {
    user_tags(tags.into_iter().flatten().map(|(k, v)| (k.as_str(), v.as_str())))
}

/// True when an object with these EKS `tags` belongs to `ctx` (its address and stack).
pub(crate) fn owned(ctx: &OpContext, tags: Option<&HashMap<String, String>>) -> bool {
    owned_by(ctx, |k| tags.and_then(|t| t.get(k)).map(String::as_str))
}

/// Applies a change of user tags on the EKS object `arn` in place.
pub(crate) async fn sync_tags(
    ctx: &OpContext,
    arn: &str,
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
) -> Result<(), ProviderError> {
    let eks = &context::clients().await.eks;
    apply_changes(
        ctx,
        old,
        new,
        ("UntagResource", |keys| {
            eks.untag_resource().resource_arn(arn).set_tag_keys(Some(keys)).send()
        }),
        ("TagResource", |set| {
            eks.tag_resource()
                .resource_arn(arn)
                .set_tags(Some(set.clone().into_iter().collect()))
                .send()
        }),
    )
    .await
}

/// Waits for the update EKS answered a change with (`update`, from the change call's output)
/// on `cluster` (on a node group or add-on when given) to succeed; an answer without an
/// update has nothing to wait for.
pub(crate) async fn wait_update(
    ctx: &OpContext,
    cluster: &str,
    nodegroup: Option<&str>,
    addon: Option<&str>,
    update: Option<&Update>,
    default: Duration,
) -> Result<(), ProviderError> {
    let Some(id) = update.and_then(|u| u.id()) else {
        return Ok(());
    };
    let eks = context::clients().await.eks.clone();
    wait_for(ctx, &format!("update {id}"), default, || {
        let eks = eks.clone();
        async move {
            let out = call0(ctx, "DescribeUpdate", || {
                eks.describe_update()
                    .name(cluster)
                    .update_id(id)
                    .set_nodegroup_name(nodegroup.map(String::from))
                    .set_addon_name(addon.map(String::from))
                    .send()
            })
            .await?;
            let Some(u) = out.update() else {
                return Ok(Poll::Pending("not visible yet".into()));
            };
            match u.status() {
                Some(UpdateStatus::Successful) => Ok(Poll::Ready(())),
                Some(UpdateStatus::Failed | UpdateStatus::Cancelled) => {
                    let errors: Vec<String> = u
                        .errors()
                        .iter()
                        .map(|e| {
                            format!(
                                "{}: {}",
                                e.error_code().map(|c| c.as_str()).unwrap_or("unknown"),
                                e.error_message().unwrap_or("")
                            )
                        })
                        .collect();
                    Err(ProviderError::msg(format!(
                        "update {id} {}: {}",
                        u.status().map(|s| s.as_str()).unwrap_or(""),
                        errors.join("; ")
                    )))
                }
                other => Ok(Poll::Pending(other.map(|s| s.as_str().to_string()).unwrap_or_default())),
            }
        }
    })
    .await
}
