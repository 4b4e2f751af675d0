//! AWS resource kinds (ec2, iam, eks, sqs, events) on the official SDK crates.
//!
//! What lives here: [`context`] (one SDK configuration and client set per process, from the
//! standard chain), [`call`] (errors naming the API call, bounded retries reported as
//! progress, waiters honouring the user's timeout and cancellation), [`tags`] (the
//! `spar:address` and `spar:stack` ownership tags, deterministic names, tag changes in place),
//! [`lifecycle`] (the steps every kind shares: its provider struct, two-part ids, undoing a
//! half-made create, waiting for a deleted object to go) and one module per service.
//!
//! Rules every AWS kind keeps: objects are tagged `spar:address` (and `spar:stack` in a
//! stack) at creation so `find` adopts what an interrupted create of this address in this
//! stack made, never another stack's object; `read` returns live inputs shaped like the
//! program's inputs (so drift is a plain diff) and `Ok(None)` when the object is gone;
//! `delete` returns only once the object is really gone and succeeds when it already is;
//! a create that fails after the object exists removes it again (the engine records a
//! failed create as nothing made); errors are [`ProviderError`](crate::provider::ProviderError)s.

pub mod call;
pub mod context;
pub mod ec2;
pub mod eks;
pub mod events;
pub mod iam;
pub mod lifecycle;
pub mod lookup;
pub mod sqs;
pub mod tags;

pub use context::use_config;

use crate::provider::Registry;

/// Adds the AWS kinds to `registry`.
pub fn register(registry: &mut Registry) {
    ec2::register(registry);
    iam::register(registry);
    eks::register(registry);
    sqs::register(registry);
    events::register(registry);
}
