//! The kinds spar ships without any cloud: `local:File` and `random:Password`, so that a
//! stack runs end to end before (and without) any cloud provider.

pub mod local;
pub mod random;

use std::sync::Arc;

use crate::provider::Registry;

/// Adds the built-in kinds to `registry`.
pub fn register(registry: &mut Registry) {
    registry.register(Arc::new(local::FileProvider::new()));
    registry.register(Arc::new(random::PasswordProvider::new()));
}
