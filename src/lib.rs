//! spar: infrastructure as Rust code.
//!
//! A stack is an ordinary Rust program whose `define` function declares a typed graph of
//! resources on a [`Stack`]. The engine diffs that graph against stored state, shows a
//! plan, and applies it in dependency order, in parallel where the graph allows.
//!
//! Module map (data flows top to bottom):
//! - [`address`]: stable resource addresses (`component/name`).
//! - [`value`]: JSON values and the markers for outputs, secrets and unknowns.
//! - [`model`]: the DSL: [`Resource`], [`Handle`], [`Output`], [`Input`], [`Secret`],
//!   options, components, configuration and the [`Stack`] builder.
//! - [`graph`]: the validated desired graph (cycles, duplicates, dangling references).
//! - [`provider`]: the contract every resource kind implements, and the registry.
//! - [`declaration`]: Rust literals and builder chains the kinds write their declarations with.
//! - [`builtin`]: `local:File` and `random:Password`.
//! - `aws` (feature `aws`): AWS resource kinds (ec2, iam, eks, sqs, events).
//! - `kubernetes` (feature `kubernetes`): the Kubernetes provider resource, objects and Helm
//!   charts.
//! - [`secrets`]: per-stack encryption of secret values.
//! - [`state`]: snapshot format, journal, lock, history, backends ([`state::StateStore`]).
//! - [`plan`]: diff into a [`plan::Plan`], text/JSON rendering, plan files.
//! - [`apply`]: the step graph and the parallel executor, and the apply view.
//! - [`ops`]: the operations commands run (plan, apply, destroy, refresh, import, state).
//! - [`cli`]: one file per command; thin wrappers over [`ops`].
//! - [`testing`]: a fake provider made of closures, for lifecycle tests and benchmarks.
//! - [`analysis`]: offline analyses of declared resources for stack checks: network
//!   reachability, scheduling feasibility (kube-scheduler's filters on node shapes) and the
//!   EC2 instance-type table it reads.

pub mod address;
pub mod analysis;
pub mod apply;
#[cfg(feature = "aws")]
pub mod aws;
pub mod builtin;
pub mod cli;
pub mod declaration;
pub mod error;
pub mod graph;
mod kinds;
#[cfg(feature = "kubernetes")]
pub mod kubernetes;
pub mod model;
pub mod ops;
pub mod plan;
pub mod provider;
pub mod secrets;
pub mod state;
pub mod testing;
pub mod value;

pub use address::Address;
pub use error::{Error, Result};
pub use model::options::ResourceOptions;
pub use model::secret::Secret;
pub use model::stack::Stack;
pub use model::{Component, Handle, Input, Lookup, Output, Resource};

/// What a stack program needs in scope.
pub mod prelude {
    pub use crate::Address;
    pub use crate::builtin::{local, random};
    pub use crate::model::options::ResourceOptions;
    pub use crate::model::secret::Secret;
    pub use crate::model::stack::Stack;
    pub use crate::model::{Component, Handle, Input, Output, Resource};
}
