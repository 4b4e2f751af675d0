//! Kubernetes: the provider resource, objects applied server-side, and Helm charts.
//!
//! - [`provider`]: `kubernetes:Provider`, a cluster connection declared as a resource (EKS,
//!   kubeconfig or sandbox simulator); its `connection` output is every object's input.
//! - [`connection`]: the connection facts, cached clients, EKS tokens, sandbox mode.
//! - [`object`]: `kubernetes:Object`, any object (typed or dynamic) applied with server-side
//!   apply, drift read from the fields spar manages, readiness and deletion waits.
//! - [`helm`]: `kubernetes:Chart`, a chart rendered by `helm template` whose objects spar
//!   applies, tracks, prunes and deletes itself.
//!
//! Rules kept here: every kind is registered in [`register`] so objects left in state can be
//! deleted even when the program no longer declares them; nothing here stores a token.

pub mod chart_objects;
pub mod connection;
pub mod helm;
pub mod kubeconfig;
pub mod object;
pub mod provider;

use std::sync::Arc;

use crate::provider::Registry;

pub use connection::Connection;
pub use helm::Chart;
pub use object::{Object, Propagation, config_map, namespace, secret, service_account};
pub use provider::KubeProvider;

/// Adds the Kubernetes kinds to `registry`.
pub fn register(registry: &mut Registry) {
    registry.register(Arc::new(provider::KubeProviderProvider::new()));
    registry.register(Arc::new(object::ObjectProvider::new()));
    registry.register(Arc::new(helm::ChartProvider::new()));
}
