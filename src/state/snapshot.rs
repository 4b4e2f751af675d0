//! The state snapshot: what spar knows exists, and its versioned, checksummed file format.
//!
//! File layout: `{"format":"spar-state","version":N,"checksum":"sha256:<hex>","state":{..}}`
//! where the checksum covers the exact bytes of the `state` member. Rules kept here:
//! - a file that is not JSON, of another format, of a newer version, or whose checksum
//!   does not match is refused with an error naming the file and the problem; nothing is
//!   ever written over it by this module;
//! - resources are kept sorted by address, so files diff cleanly;
//! - secrets are encrypted by the caller before encoding (see [`crate::secrets`]);
//! - a local file in the layout this module writes is decoded as it is read
//!   ([`Snapshot::decode_file`]), so a large state is never held twice (its bytes and its
//!   decoded form); any other file, and any file that fails, takes the in-memory path,
//!   whose answer (the value or the error) is the one returned.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

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
    /// Adopted by `import` and not declared by the program yet: protected until it is.
    #[serde(default, skip_serializing_if = "is_false")]
    pub imported: bool,
    /// Recorded by a lookup: read on every plan, forgotten (never deleted) when gone.
    #[serde(default, skip_serializing_if = "is_false")]
    pub lookup: bool,
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
    /// Why its last update may not have finished: the change was sent (its inputs are
    /// recorded here) but the kind stopped waiting for it (a timeout, an abort). The next
    /// plan updates it again even when no input changed, so the kind's wait runs again;
    /// a successful update clears it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unfinished: Option<String>,
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

    /// Moves the resource at `address`, if any, to the deposed objects: its replacement is
    /// being made, and it waits there to be deleted.
    pub fn depose(&mut self, address: &Address) {
        if let Some(old) = self.resources.remove(address) {
            self.deposed.push(DeposedObject {
                address: old.address,
                kind: old.kind,
                id: old.id,
                inputs: old.inputs,
                outputs: old.outputs,
                options: old.options,
            });
        }
    }

    /// Moves the resource at `from` to `to`, and every reference to `from` with it (the
    /// dependencies other resources record, deposed objects, pending operations). False,
    /// changing nothing, when there is none at `from` or one is already at `to`.
    pub fn move_resource(&mut self, from: &Address, to: &Address) -> bool {
        if self.resources.contains_key(to) {
            return false;
        }
        let Some(mut r) = self.resources.remove(from) else {
            return false;
        };
        r.address = to.clone();
        self.resources.insert(to.clone(), r);
        for other in self.resources.values_mut() {
            for d in &mut other.dependencies {
                if d == from {
                    *d = to.clone();
                }
            }
        }
        for d in &mut self.deposed {
            if &d.address == from {
                d.address = to.clone();
            }
        }
        for p in &mut self.pending {
            if &p.address == from {
                p.address = to.clone();
            }
        }
        true
    }

    /// Encodes the snapshot as file bytes with its checksum.
    pub fn encode(&self) -> Vec<u8> {
        let body = serde_json::to_vec(self).expect("a snapshot serializes");
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

    /// Reads and decodes the snapshot file at `path` (None when there is none). A file in
    /// the layout [`Snapshot::encode`] writes is parsed as it streams through the checksum,
    /// never held whole in memory; anything else, or any failure of that path, is read
    /// whole and decoded by [`Snapshot::decode`], so errors are the same either way.
    pub fn decode_file(path: &Path, source: &str) -> Result<Option<Snapshot>, StateError> {
        let io = |e: std::io::Error| StateError::io(source, e);
        let mut file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(e)),
        };
        if let Some(snap) = stream_decode(&mut file).map_err(io)? {
            return Ok(Some(snap));
        }
        let mut bytes = Vec::new();
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        file.read_to_end(&mut bytes).map_err(io)?;
        Snapshot::decode(&bytes, source).map(Some)
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

/// The streaming path of [`Snapshot::decode_file`]: Some only when the file has the
/// canonical envelope, a version this spar reads, parses, and matches its checksum.
fn stream_decode(file: &mut std::fs::File) -> std::io::Result<Option<Snapshot>> {
    let len = file.metadata()?.len();
    let mut head = [0u8; 192];
    let head_len = read_up_to(file, &mut head)?;
    let Some((body_start, expected)) = canonical_prefix(&head[..head_len]) else {
        return Ok(None);
    };
    // The body ends just before the envelope's closing brace (trailing whitespace aside).
    let tail_len = len.min(64);
    file.seek(SeekFrom::Start(len - tail_len))?;
    let mut tail = vec![0u8; tail_len as usize];
    file.read_exact(&mut tail)?;
    let trimmed = tail.trim_ascii_end();
    if trimmed.last() != Some(&b'}') {
        return Ok(None);
    }
    let body_end = len - tail_len + trimmed.len() as u64 - 1;
    if body_end <= body_start {
        return Ok(None);
    }
    file.seek(SeekFrom::Start(body_start))?;
    let hashing = HashingReader {
        inner: Read::by_ref(file).take(body_end - body_start),
        sha: Sha256::new(),
    };
    let mut hashing = hashing;
    let parsed = crate::state::stream::decode_body(&mut hashing);
    let actual = hashing.sha.finalize();
    match parsed {
        Some(snap) if hex::encode(actual) == expected => Ok(Some(snap)),
        _ => Ok(None),
    }
}

fn read_up_to(file: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Parses the envelope [`Snapshot::encode`] writes up to the `state` member: returns the
/// offset of the member's first byte and the expected hex digest.
fn canonical_prefix(head: &[u8]) -> Option<(u64, String)> {
    let rest = head.strip_prefix(format!("{{\"format\":\"{FORMAT}\",\"version\":").as_bytes())?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    let version: u32 = std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()?;
    if version > STATE_VERSION {
        return None;
    }
    let rest = rest[digits..].strip_prefix(b",\"checksum\":\"sha256:")?;
    let hex = rest.get(..64)?;
    if !hex.iter().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
        return None;
    }
    let rest = rest[64..].strip_prefix(b"\",\"state\":")?;
    let start = head.len() - rest.len();
    Some((start as u64, String::from_utf8(hex.to_vec()).ok()?))
}

/// Hashes every byte read through it.
struct HashingReader<R> {
    inner: R,
    sha: Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sha.update(&buf[..n]);
        Ok(n)
    }
}

mod resources_as_list {
    use std::collections::BTreeMap;

    use serde::de::{SeqAccess, Visitor};
    use serde::{Deserializer, Serializer};

    use super::ResourceState;
    use crate::address::Address;

    pub fn serialize<S: Serializer>(m: &BTreeMap<Address, ResourceState>, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(m.values())
    }

    /// Inserts each resource as it is parsed: no intermediate list of the whole state.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<Address, ResourceState>, D::Error> {
        struct Resources;
        impl<'de> Visitor<'de> for Resources {
            type Value = BTreeMap<Address, ResourceState>;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of resources")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut m = BTreeMap::new();
                while let Some(r) = seq.next_element::<ResourceState>()? {
                    let a = r.address.clone();
                    if m.insert(a.clone(), r).is_some() {
                        return Err(serde::de::Error::custom(format!("resource `{a}` appears twice")));
                    }
                }
                Ok(m)
            }
        }
        d.deserialize_seq(Resources)
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
            unfinished: None,
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

    fn sample() -> Snapshot {
        let mut s = Snapshot::empty();
        s.serial = 3;
        for i in 0..50 {
            s.upsert(ResourceState {
                address: format!("c/r-{i:02}").parse().unwrap(),
                kind: "t:K".into(),
                id: format!("id-{i}"),
                inputs: serde_json::json!({"x": i, "s": "caf\u{e9} \"q\"", "tags": {"a": "b"}}),
                outputs: serde_json::json!({"arn": format!("arn:{i}")}),
                dependencies: vec![],
                provider: "t".into(),
                options: Default::default(),
                unfinished: None,
            });
        }
        s
    }

    #[test]
    fn a_file_decodes_the_same_streamed_or_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snapshot.json");
        let s = sample();
        let bytes = s.encode();
        std::fs::write(&path, &bytes).unwrap();
        assert!(
            stream_decode(&mut std::fs::File::open(&path).unwrap())
                .unwrap()
                .is_some()
        );
        assert_eq!(Snapshot::decode_file(&path, "f").unwrap().unwrap(), s);
        assert!(
            Snapshot::decode_file(&dir.path().join("none.json"), "f")
                .unwrap()
                .is_none()
        );

        // Not in the canonical layout (pretty-printed by hand): the in-memory path reads it.
        let text = String::from_utf8(bytes.clone()).unwrap();
        let spaced = text.replacen("{\"format\"", "{ \"format\"", 1);
        std::fs::write(&path, &spaced).unwrap();
        assert!(
            stream_decode(&mut std::fs::File::open(&path).unwrap())
                .unwrap()
                .is_none()
        );
        assert_eq!(Snapshot::decode_file(&path, "f").unwrap().unwrap(), s);

        // Failures give the in-memory path's errors.
        std::fs::write(&path, text.replace("arn:7", "arn:8")).unwrap();
        assert!(matches!(
            Snapshot::decode_file(&path, "f"),
            Err(StateError::Checksum { .. })
        ));
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        assert!(matches!(
            Snapshot::decode_file(&path, "f"),
            Err(StateError::Truncated { .. })
        ));
        std::fs::write(&path, text.replace("\"version\":1", "\"version\":99")).unwrap();
        assert!(matches!(
            Snapshot::decode_file(&path, "f"),
            Err(StateError::FutureVersion { found: 99, .. })
        ));
        // A body that parses but is followed by junk inside the envelope.
        std::fs::write(&path, text.replace("}}\n", "} ,}\n")).unwrap();
        assert!(Snapshot::decode_file(&path, "f").is_err());
    }
}
