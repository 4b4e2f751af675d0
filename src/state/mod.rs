//! Stored state: the snapshot format, the write-ahead journal, the lock, the history and
//! the backends that keep them.
//!
//! [`StateStore`] is the one door to a stack's state. Rules kept here:
//! - loading never writes: a journal left by an interrupted run is replayed in memory,
//!   and folded into the snapshot (then removed) by the next run that saves;
//! - secrets are sealed before any byte reaches a backend and opened after loading;
//! - a state that cannot be read is refused, never overwritten.

pub mod backend;
pub mod decoder;
pub mod journal;
pub mod local;
#[cfg(feature = "aws")]
pub mod s3;
pub mod snapshot;
mod stream;

use std::sync::Arc;

pub use backend::{HistoryEntry, LockInfo, StateBackend};
pub use journal::{JournalEntry, JournalWriter};
pub use local::LocalBackend;
#[cfg(feature = "aws")]
pub use s3::{S3Backend, S3Error, parse_s3_url};
pub use snapshot::{DeposedObject, PendingOperation, ResourceState, STATE_VERSION, Snapshot, StepKind, StoredOptions};

use crate::secrets::{SecretError, SecretKey};

/// Why state could not be read or written.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StateError {
    #[error(
        "state file {file} is truncated ({message}); nothing was changed. Restore it from the history (`spar state history`) or from a backup"
    )]
    Truncated { file: String, message: String },
    #[error(
        "state file {file} is not valid JSON ({message}); nothing was changed. Restore it from the history (`spar state history`) or from a backup"
    )]
    NotJson { file: String, message: String },
    #[error("state file {file} is not a valid spar state: {message}; nothing was changed")]
    Format { file: String, message: String },
    #[error(
        "state file {file} was written by a newer spar (state version {found}; this spar reads up to {supported}); upgrade spar, nothing was changed"
    )]
    FutureVersion { file: String, found: u32, supported: u32 },
    #[error(
        "state file {file} fails its checksum (recorded {expected}, content has {actual}): it was edited or corrupted; nothing was changed. Restore it from the history (`spar state history`)"
    )]
    Checksum {
        file: String,
        expected: String,
        actual: String,
    },
    #[error(
        "journal {file} is corrupt at {message}; nothing was changed. Move it aside to continue (the operations it records are then forgotten)"
    )]
    Journal { file: String, message: String },
    #[error("{}", locked_message(.location, .holder.as_deref()))]
    Locked {
        location: String,
        holder: Option<Box<LockInfo>>,
    },
    #[error("{file}: {message}")]
    Io { file: String, message: String },
    #[error(transparent)]
    Secret(#[from] Arc<SecretError>),
    /// The S3 backend's own refusals and failures: a stale snapshot write, a missing
    /// bucket, S3's answer to a call.
    #[cfg(feature = "aws")]
    #[error(transparent)]
    S3(Arc<s3::S3Error>),
}

fn locked_message(location: &str, holder: Option<&LockInfo>) -> String {
    match holder {
        Some(h) => {
            let stale = if h.is_stale_here() {
                " That process is no longer running:"
            } else {
                " If that process is gone,"
            };
            format!(
                "the state at {location} is locked by {} (pid {}, `{}` since {}).{stale} run `spar state unlock` to break the lock",
                h.holder, h.pid, h.operation, h.created
            )
        }
        None => format!(
            "the state at {location} is locked by an unknown holder; if no spar is running, run `spar state unlock`"
        ),
    }
}

impl StateError {
    pub(crate) fn io(file: &str, e: impl std::fmt::Display) -> Self {
        StateError::Io {
            file: file.to_string(),
            message: e.to_string(),
        }
    }

    pub(crate) fn not_json(file: &str, e: &serde_json::Error) -> Self {
        if e.is_eof() {
            StateError::Truncated {
                file: file.to_string(),
                message: format!("it ends at line {} column {}", e.line(), e.column()),
            }
        } else {
            StateError::NotJson {
                file: file.to_string(),
                message: e.to_string(),
            }
        }
    }
}

impl From<SecretError> for StateError {
    fn from(e: SecretError) -> Self {
        StateError::Secret(Arc::new(e))
    }
}

/// Decrypts the secrets in `v`, leaving values without any untouched (most of a state).
fn open_in_place(key: &SecretKey, v: &mut serde_json::Value) -> Result<(), StateError> {
    if crate::value::contains_secret(v) {
        *v = key.open(v)?;
    }
    Ok(())
}

/// A held stack lock; release it with [`StateLock::release`].
pub struct StateLock {
    backend: Arc<dyn StateBackend>,
    id: String,
    /// The lock of a dead run this one took over.
    pub took_over: Option<LockInfo>,
}

impl StateLock {
    pub async fn release(self) -> Result<(), StateError> {
        self.backend.unlock(&self.id).await
    }
}

/// What `StateStore::lock` calls when it takes over a dead run's lock.
type TakeoverNotice = Arc<dyn Fn(&LockInfo) + Send + Sync>;

/// A stack's state: its backend and its secret key.
#[derive(Clone)]
pub struct StateStore {
    backend: Arc<dyn StateBackend>,
    key: SecretKey,
    /// Told when a dead run's lock is taken over (the CLI prints it).
    takeover_notice: Option<TakeoverNotice>,
}

impl StateStore {
    pub fn new(backend: Arc<dyn StateBackend>, key: SecretKey) -> Self {
        StateStore {
            backend,
            key,
            takeover_notice: None,
        }
    }

    /// Calls `notice` whenever [`Self::lock`] takes over the lock of a dead run.
    pub fn on_takeover(mut self, notice: impl Fn(&LockInfo) + Send + Sync + 'static) -> Self {
        self.takeover_notice = Some(Arc::new(notice));
        self
    }

    pub fn backend(&self) -> &Arc<dyn StateBackend> {
        &self.backend
    }

    pub fn key(&self) -> &SecretKey {
        &self.key
    }

    /// Reads the snapshot (an empty one if none exists) and replays any journal over it.
    /// Returns the snapshot and whether a journal was replayed.
    pub async fn load(&self) -> Result<(Snapshot, bool), StateError> {
        let location = self.backend.describe();
        let mut snap = self
            .backend
            .load_snapshot(&format!("{location}/snapshot.json"))
            .await?
            .unwrap_or_else(Snapshot::empty);
        let mut replayed = false;
        if let Some(bytes) = self.backend.read_journal().await? {
            let entries = journal::parse(&bytes, &format!("{location}/journal.jsonl"))?;
            replayed = journal::replay(&mut snap, &entries);
        }
        self.open(&mut snap)?;
        Ok((snap, replayed))
    }

    /// Opens every sealed value of `snap` with this store's key.
    pub fn open(&self, snap: &mut Snapshot) -> Result<(), StateError> {
        for r in snap.resources.values_mut() {
            open_in_place(&self.key, &mut r.inputs)?;
            open_in_place(&self.key, &mut r.outputs)?;
        }
        for d in &mut snap.deposed {
            open_in_place(&self.key, &mut d.inputs)?;
            open_in_place(&self.key, &mut d.outputs)?;
        }
        for p in &mut snap.pending {
            open_in_place(&self.key, &mut p.inputs)?;
        }
        for v in snap.outputs.values_mut() {
            open_in_place(&self.key, v)?;
        }
        Ok(())
    }

    /// Writes `snap` as the next serial (atomically, old one to history) and clears the
    /// journal it supersedes.
    pub async fn save(&self, snap: &mut Snapshot) -> Result<(), StateError> {
        snap.serial += 1;
        let sealed = self.sealed(snap);
        self.backend.write_snapshot(&sealed.encode(), snap.serial).await?;
        self.backend.clear_journal().await
    }

    /// `snap` with every secret sealed, as it is written.
    pub fn sealed(&self, snap: &Snapshot) -> Snapshot {
        let mut sealed = snap.clone();
        for r in sealed.resources.values_mut() {
            r.inputs = self.key.seal(&r.inputs);
            r.outputs = self.key.seal(&r.outputs);
        }
        for d in &mut sealed.deposed {
            d.inputs = self.key.seal(&d.inputs);
            d.outputs = self.key.seal(&d.outputs);
        }
        for p in &mut sealed.pending {
            p.inputs = self.key.seal(&p.inputs);
        }
        for v in sealed.outputs.values_mut() {
            *v = self.key.seal(v);
        }
        sealed
    }

    /// Takes the stack lock for `operation`.
    /// Takes the lock for `operation`. A lock whose holder is a process of this host and
    /// boot that no longer runs (a killed run) is taken over, once, and returned in
    /// `StateLock::took_over` (the caller says so); its journal is recovered as usual.
    pub async fn lock(&self, operation: &str) -> Result<StateLock, StateError> {
        let info = LockInfo::for_this_process(operation);
        let took_over = match self.backend.lock(&info).await {
            Ok(()) => None,
            Err(StateError::Locked { holder: Some(h), .. }) if h.is_dead_here() => {
                // Released only if that dead holder still holds it: two runs taking over
                // at once cannot both win, the loser gets `Locked` below.
                self.backend.unlock(&h.id).await?;
                self.backend.lock(&info).await?;
                if let Some(n) = &self.takeover_notice {
                    n(&h);
                }
                Some(*h)
            }
            Err(e) => return Err(e),
        };
        Ok(StateLock {
            backend: self.backend.clone(),
            id: info.id,
            took_over,
        })
    }

    /// Starts a journal for changes made on top of `snap`.
    pub async fn journal(&self, snap: &Snapshot) -> Result<JournalWriter, StateError> {
        JournalWriter::start(self.backend.clone(), snap).await
    }
}
