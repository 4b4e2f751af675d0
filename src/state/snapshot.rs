//! The state snapshot: what spar knows exists, and its versioned, checksummed file format.
//!
//! File layout: `{"format":"spar-state","version":N,"checksum":"sha256:<hex>","state":{..}}`
//! where the checksum covers the exact bytes of the `state` member. Rules kept here:
//! - a file that is not JSON, of another format, of a newer version, or whose checksum
//!   does not match is refused with an error naming the file and the problem; nothing is
//!   ever written over it by this module;
//! - resources are kept sorted by address, so files diff cleanly;
//! - secrets are encrypted by the caller before encoding (see [`crate::secrets`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::address::Address;
use crate::provider::Timeouts;
use crate::state::StateError;

/// The state format version this spar reads and writes.
pub const STATE_VERSION: u32 = 1;
const FORMAT: &str = "spar-state";

/// Options that still matter once a resource has left the program.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoredOptions {
    #[serde(default, skip_serializing_if = "is_false")]
    pub protect: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub retain_on_delete: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_before_replace: Option<bool>,
    #[serde(default, skip_serializing_if = "is_default_timeouts")]
    pub timeouts: Timeouts,
}

fn is_false(b: &bool) -> bool {
    !*b
}
fn is_default_timeouts(t: &Timeouts) -> bool {
    *t == Timeouts::default()
}

/// One managed object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceState {
    pub address: Address,
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    pub inputs: Value,
    pub outputs: Value,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<Address>,
    /// The provider namespace that manages it (`aws`, `kubernetes`, ...).
    pub provider: String,
    #[serde(default, skip_serializing_if = "is_default_options")]
    pub options: StoredOptions,
}

fn is_default_options(o: &StoredOptions) -> bool {
    *o == StoredOptions::default()
}

/// The old object of a create-before-delete replacement, awaiting deletion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeposedObject {
    pub address: Address,
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    pub inputs: Value,
    pub outputs: Value,
    #[serde(default, skip_serializing_if = "is_default_options")]
    pub options: StoredOptions,
}

/// The kinds of operation the engine performs on one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    Create,
    Update,
    Delete,
    /// The new object of a create-before-delete replacement.
    CreateReplacement,
    /// Deleting the old object of a replacement.
    DeleteReplaced,
}

impl std::fmt::Display for StepKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StepKind::Create => "create",
            StepKind::Update => "update",
            StepKind::Delete => "delete",
            StepKind::CreateReplacement => "create replacement",
            StepKind::DeleteReplaced => "delete replaced",
        })
    }
}

/// An operation that began but whose end was never recorded (the process died).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingOperation {
    pub step: StepKind,
    pub address: Address,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub inputs: Value,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<Address>,
    #[serde(default, skip_serializing_if = "is_default_options")]
    pub options: StoredOptions,
    pub started: String,
}

/// Everything stored for one stack.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Identifies this stack's history; a state from another lineage is another stack.
    pub lineage: String,
    /// Incremented on every write.
    pub serial: u64,
    /// Keyed by address; stored as a list sorted by address.
    #[serde(with = "resources_as_list")]
    pub resources: BTreeMap<Address, ResourceState>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deposed: Vec<DeposedObject>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<PendingOperation>,
    #[serde(default)]
    pub outputs: BTreeMap<String, Value>,
}

impl Snapshot {
    /// The state of a stack that has never been applied.
    pub fn empty() -> Self {
        Snapshot {
            lineage: uuid::Uuid::new_v4().to_string(),
            serial: 0,
            resources: BTreeMap::new(),
            deposed: Vec::new(),
            pending: Vec::new(),
            outputs: BTreeMap::new(),
        }
    }

    pub fn get(&self, address: &Address) -> Option<&ResourceState> {
        self.resources.get(address)
    }

    pub fn get_mut(&mut self, address: &Address) -> Option<&mut ResourceState> {
        self.resources.get_mut(address)
    }

    /// Inserts or replaces the resource at its address.
    pub fn upsert(&mut self, r: ResourceState) {
        self.resources.insert(r.address.clone(), r);
    }

    pub fn remove(&mut self, address: &Address) -> Option<ResourceState> {
        self.resources.remove(address)
    }

    /// Encodes the snapshot as file bytes with its checksum.
    pub fn encode(&self) -> Vec<u8> {
        let body = serde_json::to_vec_pretty(self).expect("a snapshot serializes");
        let checksum = hex::encode(Sha256::digest(&body));
        let mut out = Vec::with_capacity(body.len() + 128);
        out.extend_from_slice(
            format!(
                "{{\"format\":\"{FORMAT}\",\"version\":{STATE_VERSION},\"checksum\":\"sha256:{checksum}\",\"state\":"
            )
            .as_bytes(),
        );
        out.extend_from_slice(&body);
        out.extend_from_slice(b"}\n");
        out
    }

    /// Decodes file bytes, checking format, version and checksum. `source` names the file.
    pub fn decode(bytes: &[u8], source: &str) -> Result<Snapshot, StateError> {
        // One pass reads the envelope and borrows the `state` member's exact bytes.
        #[derive(Deserialize)]
        struct Envelope<'a> {
            format: Option<String>,
            version: Option<u32>,
            checksum: Option<String>,
            #[serde(borrow)]
            state: Option<&'a RawValue>,
        }
        let file = || source.to_string();
        let env: Envelope = serde_json::from_slice(bytes).map_err(|e| StateError::not_json(source, &e))?;
        if env.format.as_deref() != Some(FORMAT) {
            return Err(StateError::Format {
                file: file(),
                message: "it is JSON but not a spar state file (no \"format\":\"spar-state\")".into(),
            });
        }
        match env.version {
            Some(v) if v > STATE_VERSION => {
                return Err(StateError::FutureVersion {
                    file: file(),
                    found: v,
                    supported: STATE_VERSION,
                });
            }
            Some(_) => {}
            None => {
                return Err(StateError::Format {
                    file: file(),
                    message: "it has no \"version\"".into(),
                });
            }
        }
        let (Some(expected), Some(state)) = (env.checksum, env.state) else {
            return Err(StateError::Format {
                file: file(),
                message: "it has no \"checksum\" or no \"state\"".into(),
            });
        };
        let actual = format!("sha256:{}", hex::encode(Sha256::digest(state.get().as_bytes())));
        if actual != expected {
            return Err(StateError::Checksum {
                file: file(),
                expected,
                actual,
            });
        }
        serde_json::from_str(state.get()).map_err(|e| StateError::Format {
            file: file(),
            message: e.to_string(),
        })
    }

    /// A short digest of the snapshot's identity, for saved plans.
    pub fn fingerprint(&self) -> String {
        if self.serial == 0 {
            // Never saved: its lineage is not chosen yet, and every new stack is alike.
            return "new stack".to_string();
        }
        format!("{}:{}", self.lineage, self.serial)
    }
}

mod resources_as_list {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serializer};

    use super::ResourceState;
    use crate::address::Address;

    pub fn serialize<S: Serializer>(m: &BTreeMap<Address, ResourceState>, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(m.values())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<Address, ResourceState>, D::Error> {
        let list = Vec::<ResourceState>::deserialize(d)?;
        let mut m = BTreeMap::new();
        for r in list {
            let a = r.address.clone();
            if m.insert(a.clone(), r).is_some() {
                return Err(serde::de::Error::custom(format!("resource `{a}` appears twice")));
            }
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_detects_tampering() {
        let mut s = Snapshot::empty();
        s.upsert(ResourceState {
            address: "a".parse().unwrap(),
            kind: "t:K".into(),
            id: "1".into(),
            inputs: serde_json::json!({"x": 1.5}),
            outputs: serde_json::json!({}),
            dependencies: vec![],
            provider: "t".into(),
            options: Default::default(),
        });
        let bytes = s.encode();
        assert_eq!(Snapshot::decode(&bytes, "f").unwrap(), s);
        let tampered = String::from_utf8(bytes.clone()).unwrap().replace("1.5", "2.5");
        assert!(matches!(
            Snapshot::decode(tampered.as_bytes(), "f"),
            Err(StateError::Checksum { .. })
        ));
        assert!(matches!(
            Snapshot::decode(&bytes[..bytes.len() / 2], "f"),
            Err(StateError::Truncated { .. })
        ));
        let future = String::from_utf8(bytes)
            .unwrap()
            .replace("\"version\":1", "\"version\":99");
        assert!(matches!(
            Snapshot::decode(future.as_bytes(), "f"),
            Err(StateError::FutureVersion { found: 99, .. })
        ));
    }
}
