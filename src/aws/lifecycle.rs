//! The steps every AWS kind's lifecycle shares: the provider struct holding the kind's
//! schema (and the program-side type naming it) and the trait methods every kind writes
//! alike, ids made of two parts, undoing a create that failed half-way, deleting and
//! waiting for the object to be gone, and updates that only change tags.
//!
//! Rules kept here: a create that fails after the object exists deletes it again (best
//! effort) and returns the create's own error, never the cleanup's (the engine records a
//! failed create as nothing made, except one that ended in `Timeout` or `Cancelled`: that
//! stays pending, and the next run's `find` adopts whatever is left); a kind that leaves a
//! cancelled create in place for `find` to adopt says so ([`IfCancelled::Keep`]); a delete returns only once describing the
//! object finds nothing (or a state the kind calls gone), reporting what it still sees
//! while it waits; a malformed id is an error naming the id and the shape it should have.
//! What differs between kinds (the API calls, their retries and error codes, the states)
//! stays in the kind: these helpers take it as arguments.

use std::future::Future;
use std::time::Duration;

use serde_json::Value;

use crate::aws::call::{AwsError, Poll, ok_if_gone, wait_for};
use crate::provider::{Created, OpContext, ProviderError, ResourceProvider};

/// Declares the provider of a kind: a struct `$name` holding the kind's
/// [`Schema`](crate::provider::Schema) (built once per process by `$schema`), with `new()`
/// and `Default`, and the program-side type `$resource` as a
/// [`Resource`](crate::model::Resource) of kind `$kind` served by that provider.
macro_rules! provider {
    ($(#[$meta:meta])* $name:ident for $resource:ident ($kind:ident), $schema:expr) => {
        impl $crate::model::Resource for $resource {
            fn kind(&self) -> String {
                $kind.into()
            }
            fn provider(&self) -> ::std::sync::Arc<dyn $crate::provider::ResourceProvider> {
                ::std::sync::Arc::new($name::new())
            }
        }

        $(#[$meta])*
        pub struct $name {
            schema: $crate::provider::Schema,
        }

        impl $name {
            pub fn new() -> Self {
                static SCHEMA: ::std::sync::OnceLock<$crate::provider::Schema> = ::std::sync::OnceLock::new();
                $name {
                    schema: SCHEMA.get_or_init(|| $schema).clone(),
                }
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }
    };
}
pub(crate) use provider;

/// The three `ResourceProvider` methods every AWS kind writes alike, inside its `impl`:
/// `kind` is `$kind`, `schema` the provider's (from [`provider!`]), and `declaration` the
/// statement `$declare` (the kind's builder expression for `import --file`) gives.
macro_rules! kind_basics {
    ($kind:expr, $declare:path) => {
        fn declaration(&self, name: &str, inputs: &::serde_json::Value) -> Option<String> {
            $declare(inputs).map(|e| e.statement(name))
        }

        fn kind(&self) -> &str {
            $kind
        }

        fn schema(&self) -> &$crate::provider::Schema {
            &self.schema
        }
    };
}
pub(crate) use kind_basics;

/// Splits an id of two parts joined by `sep`; the error names the id and its `shape`
/// (`what` is "a route id", `shape` "<route table id>_<destination CIDR>").
pub(crate) fn split_id<'a>(
    id: &'a str,
    sep: char,
    what: &str,
    shape: &str,
) -> Result<(&'a str, &'a str), ProviderError> {
    id.split_once(sep)
        .ok_or_else(|| ProviderError::msg(format!("`{id}` is not {what} (`{shape}`)")))
}

/// Whether a create the user cancelled is undone like a failed one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IfCancelled {
    /// Delete the object made so far.
    Undo,
    /// Leave it: `find` adopts it on the next run (objects slow to make and to delete).
    Keep,
}

/// The end of a create that made the object `id`: `outputs` when the steps after the create
/// call succeeded; otherwise the object is deleted again through `provider` (unless the user
/// cancelled and `if_cancelled` keeps it) and the steps' error is returned.
pub(crate) async fn created_or_undone<P: ResourceProvider + ?Sized>(
    provider: &P,
    ctx: &OpContext,
    inputs: &Value,
    id: String,
    outputs: Result<Value, ProviderError>,
    if_cancelled: IfCancelled,
) -> Result<Created, ProviderError> {
    match outputs {
        Ok(outputs) => Ok(Created { id, outputs }),
        Err(e) => {
            if !(matches!(e, ProviderError::Cancelled) && if_cancelled == IfCancelled::Keep) {
                let _ = provider.delete(ctx, &id, inputs, &Value::Null).await;
            }
            Err(e)
        }
    }
}

/// What a deletion waiter reports for an object it still finds: "still listed".
pub(crate) fn still_listed<T>(_: &T) -> Poll<()> {
    Poll::Pending("still listed".into())
}

/// Waits (as [`wait_for`]: the user's timeout or `default`, cancellable) until `describe`
/// finds nothing; `seen` tells, for an object still found, whether that state counts as
/// gone (`Poll::Ready`) or what to report while waiting.
pub(crate) async fn wait_gone<T, F, Fut>(
    ctx: &OpContext,
    what: &str,
    default: Duration,
    mut describe: F,
    seen: impl Fn(&T) -> Poll<()>,
) -> Result<(), ProviderError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, ProviderError>>,
{
    let seen = &seen;
    wait_for(ctx, what, default, || {
        let found = describe();
        async move {
            Ok(match found.await? {
                None => Poll::Ready(()),
                Some(t) => seen(&t),
            })
        }
    })
    .await
}

/// The end of a delete: `deleted` is the delete call's answer (an object already gone
/// counts as deleted), then [`wait_gone`] until `describe` finds nothing ("`what` to be
/// deleted", reporting "still listed" while it waits).
pub(crate) async fn deleted_then_gone<D, T, F, Fut>(
    ctx: &OpContext,
    what: &str,
    default: Duration,
    deleted: Result<D, AwsError>,
    describe: F,
) -> Result<(), ProviderError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, ProviderError>>,
{
    ok_if_gone(deleted)?;
    wait_gone(ctx, &format!("{what} to be deleted"), default, describe, still_listed).await
}

/// Waits (as [`wait_for`]) until `describe` finds the object in a state `judge` calls ready
/// (`Poll::Ready`), and returns it; `judge`'s error (a failed state, with AWS's reasons)
/// ends the wait; an object not found yet is "not visible yet" (a new one may take a
/// moment to show).
pub(crate) async fn wait_ready<T, F, Fut>(
    ctx: &OpContext,
    what: &str,
    default: Duration,
    mut describe: F,
    judge: impl Fn(&T) -> Result<Poll<()>, ProviderError>,
) -> Result<T, ProviderError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, ProviderError>>,
{
    let judge = &judge;
    wait_for(ctx, what, default, || {
        let found = describe();
        async move {
            Ok(match found.await? {
                None => Poll::Pending("not visible yet".into()),
                Some(t) => match judge(&t)? {
                    Poll::Ready(()) => Poll::Ready(t),
                    Poll::Pending(state) => Poll::Pending(state),
                },
            })
        }
    })
    .await
}

/// The judge of [`wait_ready`] for objects usable once they exist: any found is ready.
pub(crate) fn found<T>(_: &T) -> Result<Poll<()>, ProviderError> {
    Ok(Poll::Ready(()))
}
