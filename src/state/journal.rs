//! The write-ahead journal: one entry before and one after every provider call.
//!
//! Each entry is one JSON line. The first line of a journal is a header naming the
//! snapshot (lineage and serial) it applies to. Rules kept here:
//! - a `begin` entry is durable (fsynced, by group commit) before the provider is called;
//! - replay is a pure function: it applies `done` entries to the snapshot in order, drops
//!   `failed` ones, and turns a `begin` without an end (or with an `unsettled` one) into a
//!   [`PendingOperation`];
//! - a journal whose header does not match the snapshot was already folded into it (the
//!   process died between writing the snapshot and clearing the journal) and is ignored;
//! - a torn last line (the process died mid-write) is ignored; a bad line before the last
//!   one is corruption and is refused.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use crate::address::Address;
use crate::state::StateError;
use crate::state::backend::StateBackend;
use crate::state::snapshot::{PendingOperation, ResourceState, Snapshot, StepKind, StoredOptions};

/// One journal line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "entry", rename_all = "snake_case")]
pub enum JournalEntry {
    Header {
        lineage: String,
        base_serial: u64,
    },
    Begin {
        seq: u64,
        step: StepKind,
        address: Address,
        #[serde(rename = "type")]
        kind: String,
        /// The object operated on (update, delete); absent for creates.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// The inputs being applied (encrypted secrets); null for deletes.
        #[serde(default)]
        inputs: Value,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        dependencies: Vec<Address>,
        #[serde(default)]
        provider: String,
        #[serde(default)]
        options: StoredOptions,
        started: String,
    },
    Done {
        seq: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        outputs: Option<Value>,
    },
    Failed {
        seq: u64,
        error: String,
    },
    /// The call ended without knowing whether it made its object (a create stopped by a
    /// timeout or an abort): replay keeps the operation pending, for recovery to resolve.
    Unsettled {
        seq: u64,
        error: String,
    },
    /// An update that was sent but not seen through (the kind stopped waiting for it: a
    /// timeout or an abort): replay records its inputs, marked unfinished, so the next
    /// plan updates the resource again.
    Unfinished {
        seq: u64,
        error: String,
    },
    /// A resource moved to a new address (a rename by alias), recorded before any step of
    /// the run; replay moves it the same way.
    Moved {
        from: Address,
        to: Address,
    },
}

/// Parses journal bytes into entries.
pub fn parse(bytes: &[u8], source: &str) -> Result<Vec<JournalEntry>, StateError> {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.split('\n').collect();
    let mut out = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<JournalEntry>(line) {
            Ok(e) => out.push(e),
            // A torn final line: the write that was cut never completed, so it never counted.
            Err(_) if i + 1 >= lines.len() || lines[i + 1..].iter().all(|l| l.trim().is_empty()) => break,
            Err(e) => {
                return Err(StateError::Journal {
                    file: source.to_string(),
                    message: format!("line {}: {e}", i + 1),
                });
            }
        }
    }
    Ok(out)
}

/// Folds journal entries into `snap`. Returns true when the journal applied to it.
pub fn replay(snap: &mut Snapshot, entries: &[JournalEntry]) -> bool {
    match entries.first() {
        Some(JournalEntry::Header { lineage, base_serial })
            if *lineage == snap.lineage && *base_serial == snap.serial => {}
        // A stack's first run journals before any snapshot exists: the journal names the
        // lineage the stack was born with.
        Some(JournalEntry::Header {
            lineage,
            base_serial: 0,
        }) if snap.serial == 0 && snap.resources.is_empty() => {
            snap.lineage = lineage.clone();
        }
        _ => return false,
    }
    let mut begun: BTreeMap<u64, &JournalEntry> = BTreeMap::new();
    for e in &entries[1..] {
        match e {
            JournalEntry::Header { .. } | JournalEntry::Unsettled { .. } => {}
            JournalEntry::Moved { from, to } => {
                snap.move_resource(from, to);
            }
            JournalEntry::Begin { seq, .. } => {
                begun.insert(*seq, e);
            }
            JournalEntry::Failed { seq, .. } => {
                begun.remove(seq);
            }
            JournalEntry::Done { seq, id, outputs } => {
                if let Some(b) = begun.remove(seq) {
                    apply_done(snap, b, id.clone(), outputs.clone());
                }
            }
            JournalEntry::Unfinished { seq, error } => {
                if let Some(b) = begun.remove(seq) {
                    apply_done(snap, b, None, None);
                    if let JournalEntry::Begin { address, .. } = b
                        && let Some(r) = snap.get_mut(address)
                    {
                        r.unfinished = Some(error.clone());
                    }
                }
            }
        }
    }
    for b in begun.into_values() {
        if let JournalEntry::Begin {
            step,
            address,
            kind,
            id,
            inputs,
            dependencies,
            options,
            started,
            ..
        } = b
        {
            snap.pending.push(PendingOperation {
                step: *step,
                address: address.clone(),
                kind: kind.clone(),
                id: id.clone(),
                inputs: inputs.clone(),
                dependencies: dependencies.clone(),
                options: options.clone(),
                started: started.clone(),
            });
        }
    }
    true
}

fn apply_done(snap: &mut Snapshot, begin: &JournalEntry, id: Option<String>, outputs: Option<Value>) {
    let JournalEntry::Begin {
        step,
        address,
        kind,
        id: old_id,
        inputs,
        dependencies,
        provider,
        options,
        ..
    } = begin
    else {
        return;
    };
    let new_state = || ResourceState {
        address: address.clone(),
        kind: kind.clone(),
        id: id.clone().or_else(|| old_id.clone()).unwrap_or_default(),
        inputs: inputs.clone(),
        outputs: outputs.clone().unwrap_or(Value::Null),
        dependencies: dependencies.clone(),
        provider: provider.clone(),
        options: options.clone(),
        unfinished: None,
    };
    match step {
        StepKind::Create => snap.upsert(new_state()),
        StepKind::Update => {
            if let Some(r) = snap.get_mut(address) {
                r.inputs = inputs.clone();
                r.dependencies = dependencies.clone();
                r.options = options.clone();
                r.unfinished = None;
                if let Some(o) = outputs {
                    r.outputs = o;
                }
            } else {
                snap.upsert(new_state());
            }
        }
        StepKind::Delete => {
            if snap.get(address).is_some_and(|r| Some(&r.id) == old_id.as_ref()) {
                snap.remove(address);
            }
        }
        StepKind::CreateReplacement => {
            snap.depose(address);
            snap.upsert(new_state());
        }
        StepKind::DeleteReplaced => {
            let before = snap.deposed.len();
            snap.deposed
                .retain(|d| !(d.address == *address && Some(&d.id) == old_id.as_ref()));
            if snap.deposed.len() == before && snap.get(address).is_some_and(|r| Some(&r.id) == old_id.as_ref()) {
                // Delete-before-replace removes the current object.
                snap.remove(address);
            }
        }
    }
}

type Batch = (Vec<u8>, oneshot::Sender<Result<(), StateError>>);

/// Appends entries to a backend's journal with group commit: entries queued while a write
/// is in flight are written and synced together, and each caller is answered once its
/// entry is durable.
#[derive(Clone)]
pub struct JournalWriter {
    tx: mpsc::UnboundedSender<Batch>,
    seq: Arc<std::sync::atomic::AtomicU64>,
}

impl JournalWriter {
    /// Starts a journal for `snap` on `backend`, writing its header first.
    pub async fn start(backend: Arc<dyn StateBackend>, snap: &Snapshot) -> Result<Self, StateError> {
        let header = JournalEntry::Header {
            lineage: snap.lineage.clone(),
            base_serial: snap.serial,
        };
        backend.reset_journal(&line(&header)).await?;
        let (tx, mut rx) = mpsc::unbounded_channel::<Batch>();
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut bytes = first.0;
                let mut waiters = vec![first.1];
                while let Ok((b, w)) = rx.try_recv() {
                    bytes.extend_from_slice(&b);
                    waiters.push(w);
                }
                let r = backend.append_journal(&bytes).await;
                for w in waiters {
                    let _ = w.send(r.clone());
                }
            }
        });
        Ok(JournalWriter {
            tx,
            seq: Arc::new(std::sync::atomic::AtomicU64::new(1)),
        })
    }

    /// A fresh sequence number for a `begin` entry.
    pub fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    /// Queues `entry` without waiting. It becomes durable with the next sync (any later
    /// `append`, or `flush`), and entries are written in the order they were queued, so an
    /// entry queued before a later `begin` is on disk before that `begin` returns.
    pub fn append_queued(&self, entry: &JournalEntry) -> Result<(), StateError> {
        let (tx, _rx) = oneshot::channel();
        self.tx
            .send((line(entry), tx))
            .map_err(|_| StateError::io("journal", "the journal writer stopped"))
    }

    /// Waits until every entry queued so far is durable.
    pub async fn flush(&self) -> Result<(), StateError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send((Vec::new(), tx))
            .map_err(|_| StateError::io("journal", "the journal writer stopped"))?;
        rx.await
            .map_err(|_| StateError::io("journal", "the journal writer stopped"))?
    }

    /// Appends `entry` and waits until it is durable.
    pub async fn append(&self, entry: &JournalEntry) -> Result<(), StateError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send((line(entry), tx))
            .map_err(|_| StateError::io("journal", "the journal writer stopped"))?;
        rx.await
            .map_err(|_| StateError::io("journal", "the journal writer stopped"))?
    }
}

fn line(e: &JournalEntry) -> Vec<u8> {
    let mut v = serde_json::to_vec(e).expect("journal entries serialize");
    v.push(b'\n');
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn begin(seq: u64, step: StepKind, addr: &str, id: Option<&str>) -> JournalEntry {
        JournalEntry::Begin {
            seq,
            step,
            address: addr.parse().unwrap(),
            kind: "t:K".into(),
            id: id.map(String::from),
            inputs: json!({"v": seq}),
            dependencies: vec![],
            provider: "t".into(),
            options: Default::default(),
            started: "now".into(),
        }
    }

    #[test]
    fn replays_done_and_surfaces_pending() {
        let mut s = Snapshot::empty();
        let entries = vec![
            JournalEntry::Header {
                lineage: s.lineage.clone(),
                base_serial: 0,
            },
            begin(1, StepKind::Create, "a", None),
            begin(2, StepKind::Create, "b", None),
            JournalEntry::Done {
                seq: 1,
                id: Some("id-a".into()),
                outputs: Some(json!({"o": 1})),
            },
            begin(3, StepKind::Create, "c", None),
            JournalEntry::Failed {
                seq: 3,
                error: "boom".into(),
            },
        ];
        assert!(replay(&mut s, &entries));
        assert_eq!(s.resources.len(), 1);
        assert_eq!(s.get(&"a".parse().unwrap()).unwrap().id, "id-a");
        assert_eq!(s.pending.len(), 1);
        assert_eq!(s.pending[0].address.as_str(), "b");
    }

    #[test]
    fn ignores_a_journal_for_another_serial_and_torn_lines() {
        let mut s = Snapshot::empty();
        let entries = vec![
            JournalEntry::Header {
                lineage: s.lineage.clone(),
                base_serial: 7,
            },
            begin(1, StepKind::Create, "a", None),
        ];
        assert!(!replay(&mut s, &entries));
        let mut bytes = line(&entries[0]);
        bytes.extend_from_slice(b"{\"entry\":\"begin\",\"se");
        assert_eq!(parse(&bytes, "j").unwrap().len(), 1);
        let mut bad = b"garbage\n".to_vec();
        bad.extend_from_slice(&line(&entries[0]));
        assert!(parse(&bad, "j").is_err());
    }
}
