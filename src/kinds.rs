//! The kinds spar ships, assembled into a [`Registry`]: the one module that names every
//! provider implementation, so that the contract (`provider`) names none of them.
//!
//! Rule kept here: a kind behind a cargo feature is registered only with that feature.

use crate::provider::Registry;

impl Registry {
    /// The kinds spar ships: `local:File` and `random:Password`, the AWS kinds (feature
    /// `aws`) and the Kubernetes kinds (feature `kubernetes`).
    pub fn builtin() -> Self {
        let mut r = Registry::new();
        crate::builtin::register(&mut r);
        #[cfg(feature = "aws")]
        crate::aws::register(&mut r);
        #[cfg(feature = "kubernetes")]
        crate::kubernetes::register(&mut r);
        r
    }
}
