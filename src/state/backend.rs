//! The storage contract for a stack's state: snapshot, journal, lock and history.
//!
//! Rules every backend keeps: `write_snapshot` is atomic (a reader sees the old bytes or
//! the new, never a mix) and keeps the replaced snapshot in the history;
//! `append_journal` returns only once the bytes are durable; `lock` fails with
//! [`StateError::Locked`] naming the holder when another holds the lock.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::state::StateError;
use crate::state::snapshot::Snapshot;

/// Who holds a stack's lock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockInfo {
    pub id: String,
    /// `user@host`.
    pub holder: String,
    pub pid: u32,
    /// The command that took it (`apply`, `destroy`, ...).
    pub operation: String,
    pub created: String,
    /// The holder's boot (`/proc/sys/kernel/random/boot_id`): a pid names a process only
    /// within one boot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_id: Option<String>,
    /// The holder's start time (clock ticks since boot, `/proc/<pid>/stat` field 22): a pid
    /// reused by another process within the boot is not the holder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_start: Option<u64>,
}

/// This machine's boot id, where the OS tells it (Linux).
fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// When process `pid` started (clock ticks since boot), if it runs (Linux).
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

impl LockInfo {
    /// A lock for this process.
    pub fn for_this_process(operation: &str) -> Self {
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("USERNAME"))
            .unwrap_or_else(|_| "unknown".into());
        let host = gethostname::gethostname().to_string_lossy().into_owned();
        LockInfo {
            id: uuid::Uuid::new_v4().to_string(),
            holder: format!("{user}@{host}"),
            pid: std::process::id(),
            operation: operation.to_string(),
            created: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            boot_id: boot_id(),
            process_start: process_start(std::process::id()),
        }
    }

    fn on_this_host(&self) -> bool {
        let host = gethostname::gethostname().to_string_lossy().into_owned();
        self.holder.ends_with(&format!("@{host}"))
    }

    /// Whether the holder's process still runs, as far as this host can tell (a lock of
    /// another boot, or whose pid now names a later process, is not held by a running one).
    fn holder_runs(&self) -> bool {
        if self.boot_id.is_some() && self.boot_id != boot_id() {
            return false;
        }
        match (process_start(self.pid), self.process_start) {
            (None, _) => false,
            (Some(now), Some(then)) => now == then,
            (Some(_), None) => true,
        }
    }

    /// True when the holder is a process on this host that still runs.
    pub fn is_alive_here(&self) -> bool {
        self.on_this_host() && self.holder_runs()
    }

    /// True when the holder is a process on this host that no longer runs.
    pub fn is_stale_here(&self) -> bool {
        self.on_this_host() && !self.holder_runs()
    }

    /// True when the holder certainly no longer runs: a process of this host and this boot
    /// (same boot id) that is gone, so its lock may be taken over without asking. A lock
    /// without a boot id (an older spar's) or of another host is never taken over.
    pub fn is_dead_here(&self) -> bool {
        self.on_this_host() && self.boot_id.is_some() && self.boot_id == boot_id() && !self.holder_runs()
    }
}

/// A snapshot kept in the history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub name: String,
    pub serial: u64,
    pub bytes: u64,
}

/// Where one stack's state lives.
#[async_trait]
pub trait StateBackend: Send + Sync + 'static {
    /// A human-readable location, used in messages (`state/dagger-ci/dev`).
    fn describe(&self) -> String;

    async fn read_snapshot(&self) -> Result<Option<Vec<u8>>, StateError>;

    /// Reads and decodes the snapshot (on the [`super::decoder`] thread); `source` names
    /// it in errors. A backend that can stream its snapshot overrides this so that a large
    /// state is not held twice.
    async fn load_snapshot(&self, source: &str) -> Result<Option<Snapshot>, StateError> {
        let Some(bytes) = self.read_snapshot().await? else {
            return Ok(None);
        };
        let source = source.to_string();
        super::decoder::decode(source.clone(), move || Snapshot::decode(&bytes, &source).map(Some)).await
    }

    /// Atomically replaces the snapshot; `serial` names the history entry of the old one.
    async fn write_snapshot(&self, bytes: &[u8], serial: u64) -> Result<(), StateError>;

    async fn read_journal(&self) -> Result<Option<Vec<u8>>, StateError>;

    /// Starts a new journal whose only content is `header` (durably).
    async fn reset_journal(&self, header: &[u8]) -> Result<(), StateError>;

    /// Appends to the journal; durable when it returns.
    async fn append_journal(&self, bytes: &[u8]) -> Result<(), StateError>;

    /// Removes the journal once it has been folded into a snapshot.
    async fn clear_journal(&self) -> Result<(), StateError>;

    async fn lock(&self, info: &LockInfo) -> Result<(), StateError>;

    /// Releases the lock if `id` still holds it.
    async fn unlock(&self, id: &str) -> Result<(), StateError>;

    /// Who holds the lock, if anyone (without taking or breaking it).
    async fn read_lock(&self) -> Result<Option<LockInfo>, StateError>;

    /// Breaks the lock whoever holds it; returns the holder it broke.
    async fn force_unlock(&self) -> Result<Option<LockInfo>, StateError>;

    async fn history(&self) -> Result<Vec<HistoryEntry>, StateError>;

    async fn read_history(&self, name: &str) -> Result<Vec<u8>, StateError>;

    /// Bytes written so far by this backend (for measuring state write amplification).
    fn bytes_written(&self) -> u64;
}
