//! Resource options: how the engine treats one resource beyond its inputs.
//!
//! Rules kept here: options are plain data stored with the desired graph and (the ones
//! that matter for deletes) in state, so that a resource removed from the program is still
//! deleted the way it was declared.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::address::Address;
use crate::provider::Timeouts;
use crate::value::Path;

/// Options for one resource; build with the chained methods.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceOptions {
    /// Extra dependencies beyond those its inputs imply.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<Address>,
    /// Refuse to delete or replace it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub protect: bool,
    /// Forget it rather than delete it when it leaves the program or the stack is destroyed.
    #[serde(default, skip_serializing_if = "is_false")]
    pub retain_on_delete: bool,
    /// Input paths whose changes are ignored after creation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore_changes: Vec<Path>,
    /// Override the kind's replacement order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_before_replace: Option<bool>,
    #[serde(default, skip_serializing_if = "is_default_timeouts")]
    pub timeouts: Timeouts,
    /// Addresses this resource had before (a rename): state found at one of them is this
    /// resource's, moved rather than deleted and created again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_default_timeouts(t: &Timeouts) -> bool {
    *t == Timeouts::default()
}

impl ResourceOptions {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn depends_on(mut self, address: &Address) -> Self {
        self.depends_on.push(address.clone());
        self
    }

    pub fn protect(mut self) -> Self {
        self.protect = true;
        self
    }

    pub fn retain_on_delete(mut self) -> Self {
        self.retain_on_delete = true;
        self
    }

    /// Ignore changes under `path`: `tags.Name`, `*` for any key, `[0]` for an index,
    /// `labels["app.kubernetes.io/name"]` for a key with dots (see [`Path::try_parse`]).
    pub fn ignore_changes(mut self, path: &str) -> Self {
        self.ignore_changes.push(Path::parse(path));
        self
    }

    /// The address this resource had before it was renamed (`old-component/old-name`);
    /// repeatable. The plan shows `moved from` it, and apply records the move without any
    /// provider call (see the README's "Renames").
    pub fn alias(mut self, old_address: &str) -> Self {
        self.aliases.push(old_address.to_string());
        self
    }

    pub fn delete_before_replace(mut self, yes: bool) -> Self {
        self.delete_before_replace = Some(yes);
        self
    }

    pub fn create_timeout(mut self, d: Duration) -> Self {
        self.timeouts.create = Some(d);
        self
    }

    pub fn update_timeout(mut self, d: Duration) -> Self {
        self.timeouts.update = Some(d);
        self
    }

    pub fn delete_timeout(mut self, d: Duration) -> Self {
        self.timeouts.delete = Some(d);
        self
    }
}
