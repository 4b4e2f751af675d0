//! `kubernetes:Object`: one Kubernetes object of any kind, applied server-side.
//!
//! A program declares an object with a typed k8s-openapi value ([`Object::typed`] and the
//! helpers [`namespace`], [`service_account`], [`config_map`], [`secret`]) or a JSON manifest
//! for any other kind ([`Object::dynamic`]; custom resources included). The kind is resolved
//! through discovery of its group/version at each operation, so a custom resource declared
//! after its CRD (see [`Object::after`]) works in the same apply.
//!
//! Rules kept here:
//! - create and update are server-side apply with field manager `spar`; a conflict with another
//!   manager fails with the fields named and how to take them over ([`Object::force`]);
//! - the id is `<apiVersion>:<kind>:<namespace>/<name>` (`<apiVersion>:<kind>:<name>` for
//!   cluster-scoped kinds); changing apiVersion, kind, name or namespace replaces the object;
//! - `read` projects the live object onto the manifest as spar applied it (only the fields
//!   spar manages), so server defaults and other managers' fields are not drift, while a
//!   changed or removed field spar set is;
//! - after applying, spar waits for readiness (Deployment available, DaemonSet/StatefulSet
//!   rolled out, CRD established, Namespace active) within the user's timeout, reporting
//!   progress; `delete` returns once the object is gone (an object, or a kind, already gone
//!   is success);
//! - a namespaced object that names no namespace goes to the provider's default namespace.
//!
//! Module map: [`builders`] (what a program writes), [`target`] (identity, discovery,
//! errors), [`wait`] (readiness and deletion), [`manifest`] (apply, read, delete one
//! manifest; shared with charts), [`provider`] (the `ResourceProvider`).

mod builders;
mod manifest;
mod provider;
mod target;
mod wait;

use std::time::Duration;

pub use builders::*;
pub(crate) use manifest::*;
pub use provider::*;
pub(crate) use target::*;
pub(crate) use wait::*;

pub const KIND: &str = "kubernetes:Object";

/// The field manager spar applies with.
pub const FIELD_MANAGER: &str = "spar";

/// How long spar waits for readiness or deletion when the user set no timeout.
const DEFAULT_WAIT: Duration = Duration::from_secs(600);
const POLL: Duration = Duration::from_millis(200);
