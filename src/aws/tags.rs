//! Ownership tags, user tags, tag changes in place and generated names.
//!
//! Rules kept here: every object spar creates carries the tag `spar:address` = its address
//! and, in a stack, `spar:stack` = the stack (`<program>/<stack>`, [`OpContext::stack`]),
//! both set at creation, in the same call where the API allows ([`with_owner`]), so `find`
//! can adopt what an interrupted create made; `find` adopts an object only when both tags
//! are this operation's ([`owned_by`]; an object without `spar:stack` belongs only to a
//! context outside any stack), so two stacks of one program in one account never take each
//! other's objects; those tags and AWS's own `aws:*` tags are never shown as user tags, so
//! they never appear as drift; a name AWS needs unique is `<name>-<8 hex>` with the hex
//! taken from the sha256 of `<stack>/<address>` (of the address alone outside a stack), so
//! the same address of the same stack always gets the same name (retries and `find` see the
//! same object) and two stacks get different ones, unless the user fixes the name; a change
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

/// The ownership tag key: the object's address.
pub const ADDRESS_TAG: &str = "spar:address";

/// The ownership tag key: the object's stack (`<program>/<stack>`), absent outside a stack.
pub const STACK_TAG: &str = "spar:stack";

/// The ownership tags of an object made by `ctx`: `spar:address`, and `spar:stack` when
/// `ctx` is in a stack.
pub fn owner_tags(ctx: &OpContext) -> BTreeMap<String, String> {
    let mut tags = BTreeMap::from([(ADDRESS_TAG.to_string(), ctx.address.as_str().to_string())]);
    if !ctx.stack.is_empty() {
        tags.insert(STACK_TAG.to_string(), ctx.stack.to_string());
    }
    tags
}

/// The user's tags plus the ownership tags of `ctx` (see [`owner_tags`]).
pub fn with_owner(user: &BTreeMap<String, String>, ctx: &OpContext) -> BTreeMap<String, String> {
    let mut all = user.clone();
    all.extend(owner_tags(ctx));
    all
}

/// True when an object whose tags `tag` looks up (key -> value) belongs to `ctx`: its
/// `spar:address` is `ctx`'s address and its `spar:stack` is `ctx`'s stack (an object
/// without `spar:stack` belongs only to a context outside any stack).
pub fn owned_by<'a>(ctx: &OpContext, tag: impl Fn(&str) -> Option<&'a str>) -> bool {
    tag(ADDRESS_TAG) == Some(ctx.address.as_str()) && tag(STACK_TAG).unwrap_or("") == &*ctx.stack
}

/// True for tags spar or AWS manage (not the user's).
pub fn is_managed(key: &str) -> bool {
    key == ADDRESS_TAG || key == STACK_TAG || key.starts_with("aws:")
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

/// The 8 hex digits derived from `address` in `stack`: of the sha256 of `<stack>/<address>`,
/// or of the address alone when `stack` is empty (outside a stack).
pub fn address_hash(stack: &str, address: &Address) -> String {
    let digest = if stack.is_empty() {
        Sha256::digest(address.as_str().as_bytes())
    } else {
        Sha256::digest(format!("{stack}/{}", address.as_str()).as_bytes())
    };
    hex::encode(&digest[..4])
}

/// `<base>-<8 hex>` for `ctx`'s address in `ctx`'s stack (see [`address_hash`]), with `base`
/// (default: the address's own name) cut so the whole fits `max_len` characters; characters
/// outside `allowed` become `-`.
pub fn unique_name(ctx: &OpContext, base: Option<&str>, max_len: usize, allowed: impl Fn(char) -> bool) -> String {
    let address = &ctx.address;
    let base: String = base
        .unwrap_or(address.name())
        .chars()
        .map(|c| if allowed(c) { c } else { '-' })
        .collect();
    let keep = max_len.saturating_sub(9);
    let base: String = base.chars().take(keep).collect();
    format!("{base}-{}", address_hash(&ctx.stack, address))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(address: &str) -> OpContext {
        OpContext::detached(address.parse().unwrap())
    }

    #[test]
    fn names_are_stable_and_bounded() {
        let a = ctx("net/my_vpc");
        let n = unique_name(&a, None, 20, |c| c.is_ascii_alphanumeric() || c == '-');
        assert_eq!(n, unique_name(&a, None, 20, |c| c.is_ascii_alphanumeric() || c == '-'));
        assert!(n.starts_with("my-vpc-"), "{n}");
        assert_eq!(n.len(), 15);
        let long = unique_name(&a, Some(&"x".repeat(100)), 32, |_| true);
        assert_eq!(long.len(), 32);
    }

    #[test]
    fn names_differ_between_stacks() {
        let allowed = |c: char| c.is_ascii_alphanumeric() || c == '-';
        let detached = unique_name(&ctx("net/my_vpc"), None, 64, allowed);
        let dev = unique_name(&ctx("net/my_vpc").in_stack("p/dev"), None, 64, allowed);
        let prod = unique_name(&ctx("net/my_vpc").in_stack("p/prod"), None, 64, allowed);
        // Outside a stack the hash is the address's alone (names made before stacks counted).
        let a: Address = "net/my_vpc".parse().unwrap();
        assert_eq!(
            detached,
            format!("my-vpc-{}", hex::encode(&Sha256::digest(a.as_str().as_bytes())[..4]))
        );
        assert_eq!(dev, format!("my-vpc-{}", address_hash("p/dev", &a)));
        assert_ne!(dev, prod);
        assert_ne!(dev, detached);
        assert_ne!(prod, detached);
        // Stable within a stack.
        assert_eq!(
            dev,
            unique_name(&ctx("net/my_vpc").in_stack("p/dev"), None, 64, allowed)
        );
    }

    #[test]
    fn managed_tags_are_hidden() {
        let t = user_tags([
            ("spar:address", "a"),
            ("spar:stack", "p/dev"),
            ("aws:cloudformation:x", "b"),
            ("Name", "n"),
        ]);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn ownership_needs_address_and_stack() {
        let user = BTreeMap::from([("Name".to_string(), "n".to_string())]);
        let dev = ctx("net/vpc").in_stack("p/dev");
        let prod = ctx("net/vpc").in_stack("p/prod");
        let detached = ctx("net/vpc");
        let dev_tags = with_owner(&user, &dev);
        assert_eq!(dev_tags.get(STACK_TAG).map(String::as_str), Some("p/dev"));
        assert_eq!(dev_tags.get(ADDRESS_TAG).map(String::as_str), Some("net/vpc"));
        let detached_tags = with_owner(&user, &detached);
        assert!(!detached_tags.contains_key(STACK_TAG), "{detached_tags:?}");
        let owns = |c: &OpContext, t: &BTreeMap<String, String>| owned_by(c, |k| t.get(k).map(String::as_str));
        assert!(owns(&dev, &dev_tags));
        assert!(!owns(&prod, &dev_tags));
        assert!(!owns(&detached, &dev_tags));
        assert!(owns(&detached, &detached_tags));
        assert!(!owns(&dev, &detached_tags));
        assert!(!owns(&ctx("net/other").in_stack("p/dev"), &dev_tags));
    }
}
