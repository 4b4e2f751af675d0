//! `state list|show|rm|mv|unlock|history|unprotect|pull|push`: inspecting and editing
//! state by hand.
//!
//! Rules kept here: `rm` only forgets (the object is left alone) and `mv` only renames;
//! every change takes the lock and saves through the journaled store like any other
//! change; `show` never prints a secret and `pull` never opens one; `push` writes only a
//! snapshot that decodes (format, checksum) and opens with the stack's key, of the
//! stack's lineage and a newer serial unless forced, and saves it as the next serial.

use serde_json::Value;

use crate::address::Address;
use crate::ops::Session;
use crate::state::{HistoryEntry, LockInfo, ResourceState};
use crate::{Error, Result};

impl Session {
    pub async fn state_list(&self) -> Result<Vec<ResourceState>> {
        Ok(self.store.load().await?.0.resources.into_values().collect())
    }

    /// The stored resource, secrets redacted.
    pub async fn state_show(&self, address: &Address) -> Result<Value> {
        let (snap, _) = self.store.load().await?;
        let r = snap
            .get(address)
            .ok_or_else(|| Error::Usage(format!("`{address}` is not in state; `state list` shows what is")))?;
        Ok(crate::value::redact(
            &serde_json::to_value(r).expect("state serializes"),
        ))
    }

    /// Forgets the resources at (or under) `addresses` without deleting them.
    pub async fn state_rm(&self, addresses: &[String]) -> Result<Vec<Address>> {
        let mut locked = self.lock_for("state rm").await?;
        let removed: Vec<Address> = locked
            .snapshot
            .resources
            .keys()
            .filter(|a| addresses.iter().any(|p| a.is_within(p)))
            .cloned()
            .collect();
        let result = if removed.is_empty() {
            Err(Error::Usage(format!(
                "nothing in state matches {}",
                addresses.join(", ")
            )))
        } else {
            for a in &removed {
                locked.snapshot.remove(a);
            }
            self.store.save(&mut locked.snapshot).await.map_err(Error::from)
        };
        locked.lock.release().await?;
        result.map(|_| removed)
    }

    /// Renames a resource's address in state.
    pub async fn state_mv(&self, from: &Address, to: &Address) -> Result<()> {
        let mut locked = self.lock_for("state mv").await?;
        let result = async {
            if locked.snapshot.get(to).is_some() {
                return Err(Error::Usage(format!("`{to}` is already in state")));
            }
            if !locked.snapshot.move_resource(from, to) {
                return Err(Error::Usage(format!("`{from}` is not in state")));
            }
            self.store.save(&mut locked.snapshot).await?;
            Ok(())
        }
        .await;
        locked.lock.release().await?;
        result
    }

    /// Breaks the stack lock; returns who held it.
    /// Breaks the stack lock. A holder that is a running process on this host is not
    /// stale: breaking its lock would let two runs write at once, so that takes `force`.
    pub async fn state_unlock(&self, force: bool) -> Result<Option<LockInfo>> {
        if !force
            && let Some(holder) = self.store.backend().read_lock().await?
            && holder.is_alive_here()
        {
            return Err(Error::Usage(format!(
                "the lock is held by a running process, {} (pid {}, `{}` since {}); it is not stale. Wait for it to finish, or pass --force if you are sure",
                holder.holder, holder.pid, holder.operation, holder.created
            )));
        }
        Ok(self.store.backend().force_unlock().await?)
    }

    pub async fn state_history(&self) -> Result<Vec<HistoryEntry>> {
        Ok(self.store.backend().history().await?)
    }

    /// Clears the protect flag stored for `address`; false when it was not set.
    pub async fn state_unprotect(&self, address: &Address) -> Result<bool> {
        let mut locked = self.lock_for("state unprotect").await?;
        let result = async {
            let r = locked
                .snapshot
                .resources
                .get_mut(address)
                .ok_or_else(|| Error::Usage(format!("`{address}` is not in state; `state list` shows what is")))?;
            if !r.options.protect {
                return Ok(false);
            }
            r.options.protect = false;
            r.options.imported = false;
            self.store.save(&mut locked.snapshot).await?;
            Ok(true)
        }
        .await;
        locked.lock.release().await?;
        result
    }

    /// The stack's snapshot as stored, secrets sealed: the stored bytes when no journal
    /// waits to be folded in, else the replayed state sealed again (same serial). Takes
    /// no lock and writes nothing.
    pub async fn state_pull(&self) -> Result<Vec<u8>> {
        let backend = self.store.backend();
        if backend.read_journal().await?.is_none()
            && let Some(bytes) = backend.read_snapshot().await?
        {
            return Ok(bytes);
        }
        let (snap, _) = self.store.load().await?;
        Ok(self.store.sealed(&snap).encode())
    }

    /// Replaces the state with the snapshot in `file`; returns the serials before and after.
    pub async fn state_push(&self, file: &std::path::Path, force: bool) -> Result<(u64, u64)> {
        let name = file.display().to_string();
        let bytes = std::fs::read(file).map_err(|e| Error::Usage(format!("cannot read `{name}`: {e}")))?;
        let mut pushed = crate::state::Snapshot::decode(&bytes, &name)?;
        self.store.open(&mut pushed).map_err(|e| {
            Error::Usage(format!(
                "`{name}` does not open with this stack's secrets key ({e}); push a snapshot of this stack"
            ))
        })?;
        let locked = self.lock_for("state push").await?;
        let result = async {
            let current = &locked.snapshot;
            let (from, lineage) = (current.serial, current.lineage.clone());
            if !force {
                // A stack never saved has no lineage of its own yet: any may start it.
                if from > 0 && pushed.lineage != lineage {
                    return Err(Error::Usage(format!(
                        "`{name}` is of lineage {}, the stack's is {lineage}: it is another stack's state; pass --force to push it anyway",
                        pushed.lineage
                    )));
                }
                if pushed.serial <= from {
                    return Err(Error::Usage(format!(
                        "`{name}` is serial {}, not newer than the stack's serial {from}: it would undo later changes; pass --force to push it anyway",
                        pushed.serial
                    )));
                }
            }
            // Saved as the next serial after both, so history and readers see it move on.
            pushed.serial = pushed.serial.max(from);
            self.store.save(&mut pushed).await?;
            Ok((from, pushed.serial))
        }
        .await;
        locked.lock.release().await?;
        result
    }
}
