//! The plan: what an apply would do, as plain data.
//!
//! A [`Plan`] lists one [`Change`] per resource in the order the engine walks them
//! (dependencies first, deletes last), each with its [`Op`] and property-level diff. It is
//! computed by [`diff::plan`], rendered by [`render`], and saved with [`planfile`]. Rules
//! kept here: a plan holds no behaviour; every case of `Op` is listed and matched
//! exhaustively; secret values in a plan are shown only as `(sensitive value)`.

pub mod diff;
pub mod planfile;
pub mod render;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::address::Address;
use crate::state::PendingOperation;
use crate::value::{Path, PropertyChange};

/// What happens to one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Create,
    Same,
    Update,
    Replace,
    Delete,
    /// A lookup: read at plan time, never a change.
    Read,
}

impl Op {
    /// The symbol shown before the address.
    pub fn symbol(self, delete_before_replace: bool) -> &'static str {
        match self {
            Op::Create => "+",
            Op::Same => " ",
            Op::Update => "~",
            Op::Replace if delete_before_replace => "-/+",
            Op::Replace => "+/-",
            Op::Delete => "-",
            Op::Read => "<=",
        }
    }

    /// True for the ops that change something (not `Same`, not `Read`).
    pub fn is_change(self) -> bool {
        !matches!(self, Op::Same | Op::Read)
    }
}

/// The planned change to one resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub address: Address,
    #[serde(rename = "type")]
    pub kind: String,
    pub op: Op,
    /// The existing object's id, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Stored inputs (before), when the resource exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    /// Desired inputs (after), with `(known after apply)` markers where not known yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
    /// What a lookup read: the object's outputs (`Op::Read` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read: Option<Value>,
    /// Changed properties (updates and replaces).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub properties: Vec<PropertyChange>,
    /// What the kind says the change does beyond its properties (a chart's objects that a
    /// new rendering adds or removes), from [`crate::provider::ResourceProvider::preview`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The changed properties that force the replacement.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replace_paths: Vec<Path>,
    /// Why the resource is replaced, when it is not a property (a changed type).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace_reason: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub delete_before_replace: bool,
    /// True for the leftover old object of an interrupted replacement.
    #[serde(default, skip_serializing_if = "is_false")]
    pub deposed: bool,
    /// The address the resource is moved from (one of its aliases, where state holds it):
    /// apply records the move before anything else, and `op` says what else changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved_from: Option<Address>,
    /// The resource's dependencies (new ones for creates and updates, stored ones for
    /// deletes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<Address>,
    /// The dependencies stored in state, for resources that exist; an update that drops a
    /// reference must happen before the referenced object is deleted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub previous_dependencies: Vec<Address>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Counts of changes, by op.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub replace: usize,
    pub delete: usize,
    pub same: usize,
    /// Resources moved to a new address (counted with their op as well).
    #[serde(default)]
    pub moved: usize,
    /// Lookups read (never changes).
    #[serde(default)]
    pub read: usize,
}

/// A whole plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub program: String,
    pub stack: String,
    /// Every resource considered, dependencies first, deletes last.
    pub changes: Vec<Change>,
    /// Stack outputs after apply (`(known after apply)` where not known yet).
    pub outputs: BTreeMap<String, Value>,
    /// Operations an interrupted run left unfinished.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<PendingOperation>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The state this plan was made against (`lineage:serial`).
    pub base_state: String,
    /// The program's desired-graph fingerprint.
    pub program_fingerprint: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub destroy: bool,
    /// Stack outputs this apply adds, changes or removes, by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs_changed: Vec<String>,
    /// The input paths each kind with creates or updates in this plan declares as file
    /// modes ([`crate::provider::Schema::file_modes`]), by kind: the text rendering shows
    /// values there in octal. Once per kind, not per change.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub file_modes: BTreeMap<String, Vec<Path>>,
}

impl Plan {
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for c in &self.changes {
            match c.op {
                Op::Create => s.create += 1,
                Op::Update => s.update += 1,
                Op::Replace => s.replace += 1,
                Op::Delete => s.delete += 1,
                Op::Same => s.same += 1,
                Op::Read => s.read += 1,
            }
            if c.moved_from.is_some() {
                s.moved += 1;
            }
        }
        s
    }

    /// True when applying would change something (moves and outputs included).
    pub fn has_changes(&self) -> bool {
        self.changes.iter().any(|c| c.op.is_change() || c.moved_from.is_some()) || !self.outputs_changed.is_empty()
    }

    pub fn get(&self, address: &Address) -> Option<&Change> {
        self.changes.iter().find(|c| &c.address == address && !c.deposed)
    }
}
