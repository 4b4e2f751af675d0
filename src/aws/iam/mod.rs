//! IAM kinds (`aws:iam:*`): roles with typed trust policies, managed-policy attachments,
//! inline policies, managed policies, instance profiles and OIDC providers, plus the
//! helpers they share (tags, names).
//!
//! Rules kept here: IAM has no TagSpecifications, so tags (with `spar:address` and
//! `spar:stack`) go in the create call's own `Tags`; names are the user's or
//! `<name>-<8 hex>` from the stack and address (IAM names are account-wide, so two stacks
//! get different ones), so `find` looks the object up by its name and adopts it only when
//! it carries this address's and this stack's tags ([`owned`]); objects with such names are replaced by deleting first; policy
//! documents are stored and compared in their canonical form ([`document`]); deletes never
//! rely on IAM refusing: what must go first (attachments, versions, profile roles) is
//! ordered by the engine through references or removed by the kind itself.

pub mod document;
pub mod oidc;
pub mod policy;
pub mod profile;
pub mod role;

pub use document::{PolicyDocument, Statement};
pub use oidc::OpenIdConnectProvider;
pub use policy::Policy;
pub use profile::InstanceProfile;
pub use role::{Role, RolePolicy, RolePolicyAttachment};

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::aws::tags::{owned_by, unique_name, user_tags, with_owner};
use crate::provider::{OpContext, Registry};

/// Adds the IAM kinds to `registry`.
pub fn register(registry: &mut Registry) {
    registry.register(Arc::new(role::RoleProvider::new()));
    registry.register(Arc::new(role::RolePolicyAttachmentProvider::new()));
    registry.register(Arc::new(role::RolePolicyProvider::new()));
    registry.register(Arc::new(policy::PolicyProvider::new()));
    registry.register(Arc::new(profile::InstanceProfileProvider::new()));
    registry.register(Arc::new(oidc::OpenIdConnectProviderProvider::new()));
}

/// IAM tags for an object made by `ctx`: the user's plus the ownership tags.
pub(crate) fn tags(user: &BTreeMap<String, String>, ctx: &OpContext) -> Vec<aws_sdk_iam::types::Tag> {
    with_owner(user, ctx)
        .into_iter()
        .filter_map(|(k, v)| aws_sdk_iam::types::Tag::builder().key(k).value(v).build().ok())
        .collect()
}

/// The user's tags among IAM tags.
pub(crate) fn from_tags(tags: &[aws_sdk_iam::types::Tag]) -> BTreeMap<String, String> {
    user_tags(tags.iter().map(|t| (t.key(), t.value())))
}

/// True when an object with these IAM `tags` belongs to `ctx` (its address and stack).
pub(crate) fn owned(ctx: &OpContext, tags: &[aws_sdk_iam::types::Tag]) -> bool {
    owned_by(ctx, |k| tags.iter().find(|t| t.key() == k).map(|t| t.value()))
}

/// The name for `ctx.address`: the user's, or `<name>-<8 hex>` within `max_len`.
pub(crate) fn name_for(ctx: &OpContext, user: Option<&str>, max_len: usize) -> String {
    match user {
        Some(n) => n.to_string(),
        None => unique_name(ctx, None, max_len, |c| {
            c.is_ascii_alphanumeric() || "+=,.@-_".contains(c)
        }),
    }
}

/// Plain IAM tags (no ownership tag) for TagX calls.
pub(crate) fn plain_tags(tags: &BTreeMap<String, String>) -> Vec<aws_sdk_iam::types::Tag> {
    tags.iter()
        .filter_map(|(k, v)| aws_sdk_iam::types::Tag::builder().key(k).value(v).build().ok())
        .collect()
}
