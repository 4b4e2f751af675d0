//! EC2 kinds (`aws:ec2:*`: networking and launch templates) and the helpers they share: tags in
//! TagSpecifications, tag sync on update, finding by the `spar:address` tag, IPv4 CIDR
//! validation and the inputs every kind reads back.
//!
//! Rules kept here: tags (with the ownership tags `spar:address` and `spar:stack`) are set
//! at creation in the create call itself (TagSpecifications), so no object exists untagged;
//! `find` lists by the `spar:address` tag and adopts only an object of this stack
//! ([`adoptable`]); a tag change is applied in place (CreateTags/DeleteTags of
//! the difference only, never touching the ownership tags); `read` answers `Ok(None)` for an
//! object that is gone or going (`deleted`, `deleting`), so a delete that races a refresh
//! is not drift; every CIDR is checked locally before any call, naming the field.

pub mod endpoint;
pub mod gateway;
pub mod launch_template;
pub mod network;
pub mod route;
pub mod security_group;
pub mod subnet;
pub mod vpc;

pub use endpoint::VpcEndpoint;
pub use gateway::{Eip, InternetGateway, NatGateway};
pub use launch_template::{BlockDevice, HttpTokens, LaunchTemplate, MetadataOptions};
pub use network::VpcNetwork;
pub use route::{Route, RouteTable, RouteTableAssociation};
pub use security_group::{SecurityGroup, SecurityGroupRule};
pub use subnet::Subnet;
pub use vpc::Vpc;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::address::Address;
use crate::aws::call::call0;
use crate::aws::context;
use crate::aws::tags::{ADDRESS_TAG, is_managed, owned_by, user_tags, with_owner};
use crate::provider::{OpContext, ProviderError, Registry};

/// Adds the EC2 kinds to `registry`.
pub fn register(registry: &mut Registry) {
    registry.register(Arc::new(vpc::VpcProvider::new()));
    registry.register(Arc::new(subnet::SubnetProvider::new()));
    registry.register(Arc::new(gateway::InternetGatewayProvider::new()));
    registry.register(Arc::new(gateway::EipProvider::new()));
    registry.register(Arc::new(gateway::NatGatewayProvider::new()));
    registry.register(Arc::new(route::RouteTableProvider::new()));
    registry.register(Arc::new(route::RouteProvider::new()));
    registry.register(Arc::new(route::RouteTableAssociationProvider::new()));
    registry.register(Arc::new(security_group::SecurityGroupProvider::new()));
    registry.register(Arc::new(security_group::SecurityGroupRuleProvider::new()));
    registry.register(Arc::new(endpoint::VpcEndpointProvider::new()));
    registry.register(Arc::new(launch_template::LaunchTemplateProvider::new()));
}

/// Parses a kind's inputs.
pub(crate) fn parse<T: DeserializeOwned>(inputs: &Value) -> Result<T, ProviderError> {
    serde_json::from_value(inputs.clone()).map_err(|e| ProviderError::InvalidInput(format!("invalid inputs: {e}")))
}

/// Checks that `value` is an IPv4 CIDR (`10.0.0.0/16`) whose host bits are zero.
pub fn validate_ipv4_cidr(field: &str, value: &str) -> Result<(), ProviderError> {
    let bad = || ProviderError::msg(format!("{field} \"{value}\" is not a valid IPv4 CIDR"));
    let (ip, len) = value.split_once('/').ok_or_else(bad)?;
    let ip: Ipv4Addr = ip.parse().map_err(|_| bad())?;
    if len.is_empty() || len.len() > 2 || !len.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let len: u32 = len.parse().map_err(|_| bad())?;
    if len > 32 {
        return Err(bad());
    }
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    if u32::from(ip) & !mask != 0 {
        return Err(ProviderError::msg(format!(
            "{field} \"{value}\" is not a valid IPv4 CIDR: host bits are set (did you mean {}/{len}?)",
            Ipv4Addr::from(u32::from(ip) & mask)
        )));
    }
    Ok(())
}

/// The TagSpecification for a new object of `rt` made by `ctx` with the user's `tags` (plus
/// the ownership tags).
pub(crate) fn tag_spec(rt: ResourceType, ctx: &OpContext, tags: &BTreeMap<String, String>) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(rt)
        .set_tags(Some(to_tags(&with_owner(tags, ctx))))
        .build()
}

pub(crate) fn to_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// The user's tags among an object's tags.
pub(crate) fn from_tags(tags: &[Tag]) -> BTreeMap<String, String> {
    user_tags(
        tags.iter()
            .map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default())),
    )
}

/// The value of the tag `key` among `tags`.
fn tag_value<'a>(tags: &'a [Tag], key: &str) -> Option<&'a str> {
    tags.iter().find(|t| t.key() == Some(key)).and_then(|t| t.value())
}

/// True when `id` is not an object spar already tracks at this address (`find` must not
/// adopt those: they carry the same ownership tag).
fn untracked(ctx: &OpContext, id: Option<&str>) -> bool {
    id.is_some_and(|id| !ctx.tracked_ids.iter().any(|t| t == id))
}

/// True when `find` may adopt an object with `tags` and `id`: it carries this address's and
/// this stack's ownership tags ([`owned_by`]) and is not an object spar already tracks (see
/// [`untracked`]).
pub(crate) fn adoptable(ctx: &OpContext, tags: &[Tag], id: Option<&str>) -> bool {
    owned_by(ctx, |k| tag_value(tags, k)) && untracked(ctx, id)
}

/// The filter selecting objects tagged with `address` (of any stack: [`adoptable`] picks
/// this stack's among them).
pub(crate) fn owner_filter(address: &Address) -> Filter {
    Filter::builder()
        .name(format!("tag:{ADDRESS_TAG}"))
        .values(address.as_str())
        .build()
}

pub(crate) fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

/// The `update` of a kind whose only in-place change is its tags (every other input
/// forces a replacement): the difference of the `tags` inputs is applied, the outputs stay.
pub(crate) async fn update_tags(
    ctx: &OpContext,
    id: &str,
    old: &Value,
    new: &Value,
    old_outputs: &Value,
) -> Result<Value, ProviderError> {
    let tags = |inputs: &Value| -> Result<BTreeMap<String, String>, ProviderError> {
        match inputs.get("tags") {
            None | Some(Value::Null) => Ok(BTreeMap::new()),
            Some(t) => parse(t),
        }
    };
    sync_tags(ctx, id, &tags(old)?, &tags(new)?).await?;
    Ok(old_outputs.clone())
}

/// Applies a change of user tags on `id` in place.
pub(crate) async fn sync_tags(
    ctx: &OpContext,
    id: &str,
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
) -> Result<(), ProviderError> {
    let ec2 = context::ec2().await;
    let removed: Vec<Tag> = old
        .keys()
        .filter(|k| !new.contains_key(*k) && !is_managed(k))
        .map(|k| Tag::builder().key(k).build())
        .collect();
    let set: BTreeMap<String, String> = new
        .iter()
        .filter(|(k, v)| old.get(*k) != Some(v) && !is_managed(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !removed.is_empty() {
        call0(ctx, "DeleteTags", || {
            ec2.delete_tags().resources(id).set_tags(Some(removed.clone())).send()
        })
        .await?;
    }
    if !set.is_empty() {
        call0(ctx, "CreateTags", || {
            ec2.create_tags().resources(id).set_tags(Some(to_tags(&set))).send()
        })
        .await?;
    }
    Ok(())
}

/// Keeps `live` unless the stored input was `null` and this is not an import: a field the
/// user left to AWS (an AZ, say) reads back as `null`, so it is never drift.
pub(crate) fn unless_unset(stored: &Value, field: &str, live: Value) -> Value {
    match stored.get(field) {
        Some(Value::Null) if !stored.is_null() => Value::Null,
        _ => live,
    }
}

/// The ARN of an EC2 object.
pub(crate) async fn arn(owner: &str, kind: &str, id: &str) -> String {
    let region = context::sdk_config()
        .await
        .region()
        .map(|r| r.to_string())
        .unwrap_or_default();
    format!("arn:aws:ec2:{region}:{owner}:{kind}/{id}")
}

/// Default waits.
pub(crate) const WAIT: std::time::Duration = std::time::Duration::from_secs(600);

#[cfg(test)]
mod tests {
    use super::validate_ipv4_cidr;

    #[test]
    fn cidrs() {
        assert!(validate_ipv4_cidr("cidr_block", "10.0.0.0/16").is_ok());
        assert!(validate_ipv4_cidr("cidr_block", "0.0.0.0/0").is_ok());
        let e = validate_ipv4_cidr("cidr_block", "10.0.0.0/33").unwrap_err();
        assert_eq!(e.to_string(), "cidr_block \"10.0.0.0/33\" is not a valid IPv4 CIDR");
        for bad in [
            "10.0.0/16",
            "10.0.0.0",
            "10.0.0.0/",
            "10.0.0.0/+1",
            "x/8",
            "10.0.0.0/016",
        ] {
            assert!(validate_ipv4_cidr("c", bad).is_err(), "{bad}");
        }
        assert!(
            validate_ipv4_cidr("c", "10.0.0.1/16")
                .unwrap_err()
                .to_string()
                .contains("10.0.0.0/16")
        );
    }
}
