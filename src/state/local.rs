//! The local-file backend: a stack's state in a directory (`state/<program>/<stack>/`).
//!
//! Files: `snapshot.json`, `journal.jsonl`, `lock.json`, `history/<serial>.json`.
//! Rules kept here: every file is created with mode 0600; a snapshot is written to a temp
//! file, fsynced, and renamed over the old one (the directory is fsynced too), and the old
//! snapshot is hard-linked into the history first, which costs no copy; the lock is a file
//! created exclusively, so exactly one process can hold it; file work (reads, decoding a
//! snapshot, writes and fsyncs) runs on tokio's blocking pool, never on the async workers
//! (two on a 2-CPU machine), so a save or a journal fsync does not stall provider calls.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::state::StateError;
use crate::state::backend::{HistoryEntry, LockInfo, StateBackend};
use crate::state::snapshot::Snapshot;

/// How many old snapshots the history keeps.
const HISTORY_KEEP: usize = 50;

/// State in a local directory.
pub struct LocalBackend {
    dir: PathBuf,
    /// The open journal, shared with the blocking task that appends to it.
    journal: Arc<Mutex<Option<File>>>,
    written: AtomicU64,
}

impl LocalBackend {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        LocalBackend {
            dir: dir.into(),
            journal: Arc::new(Mutex::new(None)),
            written: AtomicU64::new(0),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn snapshot_path(&self) -> PathBuf {
        self.dir.join("snapshot.json")
    }

    pub fn journal_path(&self) -> PathBuf {
        self.dir.join("journal.jsonl")
    }

    fn lock_path(&self) -> PathBuf {
        self.dir.join("lock.json")
    }

    fn history_dir(&self) -> PathBuf {
        self.dir.join("history")
    }

    fn ensure_dir(&self) -> Result<(), StateError> {
        ensure_dir(&self.dir)
    }
}

/// Keeps the newest [`HISTORY_KEEP`] entries of `history`.
fn prune_history(history: &Path) {
    let Ok(entries) = fs::read_dir(history) else {
        return;
    };
    let mut serials: Vec<(u64, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let p = e.path();
            let serial = p.file_stem()?.to_str()?.parse().ok()?;
            Some((serial, p))
        })
        .collect();
    serials.sort();
    let excess = serials.len().saturating_sub(HISTORY_KEEP);
    for (_, p) in serials.into_iter().take(excess) {
        let _ = fs::remove_file(p);
    }
}

fn ensure_dir(dir: &Path) -> Result<(), StateError> {
    fs::create_dir_all(dir).map_err(|e| StateError::io(&dir.display().to_string(), e))
}

/// Runs file work on tokio's blocking pool; `what` names the file in the error when the
/// task itself fails (a panic).
async fn blocking<T: Send + 'static>(
    what: String,
    work: impl FnOnce() -> Result<T, StateError> + Send + 'static,
) -> Result<T, StateError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| Err(StateError::io(&what, format!("file task failed: {e}"))))
}

/// Creates `path` with mode 0600, failing if it exists, and writes `bytes` durably.
pub(crate) fn write_new_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

fn read_opt(path: &Path) -> Result<Option<Vec<u8>>, StateError> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StateError::io(&path.display().to_string(), e)),
    }
}

#[async_trait]
impl StateBackend for LocalBackend {
    fn describe(&self) -> String {
        self.dir.display().to_string()
    }

    async fn read_snapshot(&self) -> Result<Option<Vec<u8>>, StateError> {
        let path = self.snapshot_path();
        blocking(path.display().to_string(), move || read_opt(&path)).await
    }

    async fn load_snapshot(&self, source: &str) -> Result<Option<Snapshot>, StateError> {
        let path = self.snapshot_path();
        let source = source.to_string();
        // On the decoder thread, not the blocking pool: see `state::decoder`.
        super::decoder::decode(path.display().to_string(), move || {
            Snapshot::decode_file(&path, &source)
        })
        .await
    }

    async fn write_snapshot(&self, bytes: &[u8], serial: u64) -> Result<(), StateError> {
        let dir = self.dir.clone();
        let target = self.snapshot_path();
        let hist = self.history_dir();
        let name = target.display().to_string();
        let bytes_len = bytes.len() as u64;
        let bytes = bytes.to_vec();
        blocking(name.clone(), move || {
            ensure_dir(&dir)?;
            let tmp = dir.join(format!("snapshot.json.tmp-{}", std::process::id()));
            let _ = fs::remove_file(&tmp);
            write_new_private(&tmp, &bytes).map_err(|e| StateError::io(&name, e))?;
            if target.exists() {
                fs::create_dir_all(&hist).map_err(|e| StateError::io(&hist.display().to_string(), e))?;
                let entry = hist.join(format!("{}.json", serial.saturating_sub(1)));
                let _ = fs::remove_file(&entry);
                fs::hard_link(&target, &entry).map_err(|e| StateError::io(&entry.display().to_string(), e))?;
            }
            fs::rename(&tmp, &target).map_err(|e| StateError::io(&name, e))?;
            sync_dir(&dir).map_err(|e| StateError::io(&name, e))?;
            prune_history(&hist);
            Ok(())
        })
        .await?;
        self.written.fetch_add(bytes_len, Ordering::Relaxed);
        Ok(())
    }

    async fn read_journal(&self) -> Result<Option<Vec<u8>>, StateError> {
        let path = self.journal_path();
        blocking(path.display().to_string(), move || read_opt(&path)).await
    }

    async fn reset_journal(&self, header: &[u8]) -> Result<(), StateError> {
        let dir = self.dir.clone();
        let path = self.journal_path();
        let name = path.display().to_string();
        let header = header.to_vec();
        let journal = self.journal.clone();
        let len = header.len() as u64;
        blocking(name.clone(), move || {
            ensure_dir(&dir)?;
            let tmp = dir.join("journal.jsonl.tmp");
            let _ = fs::remove_file(&tmp);
            write_new_private(&tmp, &header).map_err(|e| StateError::io(&name, e))?;
            fs::rename(&tmp, &path).map_err(|e| StateError::io(&name, e))?;
            sync_dir(&dir).map_err(|e| StateError::io(&name, e))?;
            let f = OpenOptions::new()
                .append(true)
                .open(&path)
                .map_err(|e| StateError::io(&name, e))?;
            *journal.lock().expect("journal mutex") = Some(f);
            Ok(())
        })
        .await?;
        self.written.fetch_add(len, Ordering::Relaxed);
        Ok(())
    }

    async fn append_journal(&self, bytes: &[u8]) -> Result<(), StateError> {
        let name = self.journal_path().display().to_string();
        let journal = self.journal.clone();
        let len = bytes.len() as u64;
        let bytes = bytes.to_vec();
        blocking(name.clone(), move || {
            let mut guard = journal.lock().expect("journal mutex");
            let f = guard
                .as_mut()
                .ok_or_else(|| StateError::io(&name, "journal not started"))?;
            f.write_all(&bytes).map_err(|e| StateError::io(&name, e))?;
            f.sync_data().map_err(|e| StateError::io(&name, e))
        })
        .await?;
        self.written.fetch_add(len, Ordering::Relaxed);
        Ok(())
    }

    async fn clear_journal(&self) -> Result<(), StateError> {
        *self.journal.lock().expect("journal mutex") = None;
        match fs::remove_file(self.journal_path()) {
            Ok(()) => sync_dir(&self.dir).map_err(|e| StateError::io(&self.describe(), e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StateError::io(&self.journal_path().display().to_string(), e)),
        }
    }

    async fn lock(&self, info: &LockInfo) -> Result<(), StateError> {
        self.ensure_dir()?;
        let path = self.lock_path();
        let body = serde_json::to_vec_pretty(info).expect("lock info serializes");
        match write_new_private(&path, &body) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let holder = fs::read(&path)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<LockInfo>(&b).ok());
                Err(StateError::Locked {
                    location: self.describe(),
                    holder: holder.map(Box::new),
                })
            }
            Err(e) => Err(StateError::io(&path.display().to_string(), e)),
        }
    }

    async fn unlock(&self, id: &str) -> Result<(), StateError> {
        let path = self.lock_path();
        if let Some(b) = read_opt(&path)?
            && serde_json::from_slice::<LockInfo>(&b).is_ok_and(|l| l.id == id)
        {
            fs::remove_file(&path).map_err(|e| StateError::io(&path.display().to_string(), e))?;
        }
        Ok(())
    }

    async fn read_lock(&self) -> Result<Option<LockInfo>, StateError> {
        Ok(read_opt(&self.lock_path())?.and_then(|b| serde_json::from_slice(&b).ok()))
    }

    async fn force_unlock(&self) -> Result<Option<LockInfo>, StateError> {
        let path = self.lock_path();
        let Some(b) = read_opt(&path)? else { return Ok(None) };
        fs::remove_file(&path).map_err(|e| StateError::io(&path.display().to_string(), e))?;
        Ok(serde_json::from_slice(&b).ok())
    }

    async fn history(&self) -> Result<Vec<HistoryEntry>, StateError> {
        let Ok(entries) = fs::read_dir(self.history_dir()) else {
            return Ok(Vec::new());
        };
        let mut out: Vec<HistoryEntry> = entries
            .flatten()
            .filter_map(|e| {
                let p = e.path();
                let name = p.file_name()?.to_str()?.to_string();
                let serial = p.file_stem()?.to_str()?.parse().ok()?;
                Some(HistoryEntry {
                    name,
                    serial,
                    bytes: e.metadata().ok()?.len(),
                })
            })
            .collect();
        out.sort_by_key(|h| h.serial);
        Ok(out)
    }

    async fn read_history(&self, name: &str) -> Result<Vec<u8>, StateError> {
        if name.contains('/') || name.contains("..") {
            return Err(StateError::io(name, "not a history entry name"));
        }
        let p = self.history_dir().join(name);
        fs::read(&p).map_err(|e| StateError::io(&p.display().to_string(), e))
    }

    fn bytes_written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }
}
