//! Ownership tags, user tags, tag changes in place and generated names.
//!
//! Rules kept here: every object spar creates carries the tag `spar:address` = its address
//! (set at creation, in the same call where the API allows), so `find` can adopt what an
//! interrupted create made; that tag and AWS's own `aws:*` tags are never shown as user
//! tags, so they never appear as drift; a name AWS needs unique is `<name>-<8 hex>` with
//! the hex taken from the sha256 of the address, so the same address always gets the same
//! name (retries and `find` see the same object) unless the user fixes the name; a change
//! of user tags is applied as two calls at most, removing the keys that went first, then
//! setting the tags that are new or changed, each only when it has something to do.

use std::collections::BTreeMap;
use std::future::Future;

use aws_sdk_ec2::config::http::HttpResponse;
use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use sha2::{Digest, Sha256};

use crate::address::Address;
use crate::aws::call::call0;
use crate::provider::{OpContext, ProviderError};

/// The ownership tag key.
pub const ADDRESS_TAG: &str = "spar:address";

/// The user's tags plus the ownership tag.
pub fn with_owner(user: &BTreeMap<String, String>, address: &Address) -> BTreeMap<String, String> {
    let mut all = user.clone();
    all.insert(ADDRESS_TAG.to_string(), address.as_str().to_string());
    all
}

/// True for tags spar or AWS manage (not the user's).
pub fn is_managed(key: &str) -> bool {
    key == ADDRESS_TAG || key.starts_with("aws:")
}

/// The user's tags among `all`.
pub fn user_tags<'a>(all: impl IntoIterator<Item = (&'a str, &'a str)>) -> BTreeMap<String, String> {
    all.into_iter()
        .filter(|(k, _)| !is_managed(k))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The tag keys removed and the tags set (new or changed) from `old` to `new`.
pub fn changes(
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
) -> (Vec<String>, BTreeMap<String, String>) {
    let removed = old.keys().filter(|k| !new.contains_key(*k)).cloned().collect();
    let set = new
        .iter()
        .filter(|(k, v)| old.get(*k) != Some(v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    (removed, set)
}

/// Applies the change of tags from `old` to `new` in place with two AWS calls named by
/// their API operation: `untag` gets the keys removed, then `tag` the tags set (see
/// [`changes`]); each is called (with the usual retries) only when it has something to do.
pub async fn apply_changes<U, UFut, UOut, UErr, T, TFut, TOut, TErr>(
    ctx: &OpContext,
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
    (untag_op, untag): (&'static str, U),
    (tag_op, tag): (&'static str, T),
) -> Result<(), ProviderError>
where
    U: Fn(Vec<String>) -> UFut,
    UFut: Future<Output = Result<UOut, SdkError<UErr, HttpResponse>>>,
    UErr: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    T: Fn(&BTreeMap<String, String>) -> TFut,
    TFut: Future<Output = Result<TOut, SdkError<TErr, HttpResponse>>>,
    TErr: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let (removed, set) = changes(old, new);
    if !removed.is_empty() {
        call0(ctx, untag_op, || untag(removed.clone())).await?;
    }
    if !set.is_empty() {
        call0(ctx, tag_op, || tag(&set)).await?;
    }
    Ok(())
}

/// The 8 hex digits derived from `address`.
pub fn address_hash(address: &Address) -> String {
    hex::encode(&Sha256::digest(address.as_str().as_bytes())[..4])
}

/// `<base>-<8 hex>` for `address`, with `base` (default: the address's own name) cut so the
/// whole fits `max_len` characters; characters outside `allowed` become `-`.
pub fn unique_name(address: &Address, base: Option<&str>, max_len: usize, allowed: impl Fn(char) -> bool) -> String {
    let base: String = base
        .unwrap_or(address.name())
        .chars()
        .map(|c| if allowed(c) { c } else { '-' })
        .collect();
    let keep = max_len.saturating_sub(9);
    let base: String = base.chars().take(keep).collect();
    format!("{base}-{}", address_hash(address))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stable_and_bounded() {
        let a: Address = "net/my_vpc".parse().unwrap();
        let n = unique_name(&a, None, 20, |c| c.is_ascii_alphanumeric() || c == '-');
        assert_eq!(n, unique_name(&a, None, 20, |c| c.is_ascii_alphanumeric() || c == '-'));
        assert!(n.starts_with("my-vpc-"), "{n}");
        assert_eq!(n.len(), 15);
        let long = unique_name(&a, Some(&"x".repeat(100)), 32, |_| true);
        assert_eq!(long.len(), 32);
    }

    #[test]
    fn managed_tags_are_hidden() {
        let t = user_tags([("spar:address", "a"), ("aws:cloudformation:x", "b"), ("Name", "n")]);
        assert_eq!(t.len(), 1);
    }
}
