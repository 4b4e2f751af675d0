//! Refresh: reading live objects into state.
//!
//! Rules kept here: a read that fails leaves that resource's state as it was and is
//! reported; an object found gone is removed from state and reported; secrets read back
//! stay secret (marked where the stored inputs had them, and at the kind's secret output
//! paths); reads run in parallel, bounded. Drift is reviewed before it is written:
//! [`Session::refresh_preview`] reads into a copy and writes nothing;
//! [`Session::refresh_begin`] reads under the lock and [`RefreshRun::accept`] writes
//! exactly what was read and shown (never a second read), or [`RefreshRun::discard`]
//! writes nothing; a run with unreadable objects cannot be accepted.

use std::collections::BTreeMap;

use futures::StreamExt as _;

use crate::address::Address;
use crate::ops::{Locked, Session};
use crate::provider::{OpContext, Registry};
use crate::state::{ResourceState, Snapshot};
use crate::value::{self, Path, PropertyChange};
use crate::{Error, Result};

/// What a refresh found.
#[derive(Debug, Default, Clone)]
pub struct RefreshReport {
    /// Resources whose live inputs differ from state, with the differences.
    pub drifted: Vec<(Address, Vec<PropertyChange>)>,
    /// Resources no longer found.
    pub gone: Vec<Address>,
    /// Resources that could not be read.
    pub errors: Vec<(Address, String)>,
    pub read: usize,
    /// The file-mode input paths of drifted resources whose kind declares some
    /// ([`crate::provider::Schema::file_modes`]), to show those values in octal.
    pub file_modes: BTreeMap<Address, Vec<Path>>,
    /// Resources whose inputs did not drift but whose outputs or id did (a status, an
    /// address the cloud assigned again).
    pub outputs_changed: Vec<Address>,
}

impl RefreshReport {
    /// True when the live objects differ from state in any way this report shows.
    pub fn has_drift(&self) -> bool {
        !self.drifted.is_empty() || !self.gone.is_empty() || !self.outputs_changed.is_empty()
    }
}

/// Reads every resource in `snap` and records what is live.
pub async fn refresh_snapshot(
    registry: &Registry,
    snap: &mut Snapshot,
    parallelism: usize,
    stack: &str,
) -> RefreshReport {
    refresh_some(registry, snap, parallelism, stack, &[]).await
}

/// Reads the resources of `snap` at or under `targets` (every one when empty) and records
/// what is live.
pub async fn refresh_some(
    registry: &Registry,
    snap: &mut Snapshot,
    parallelism: usize,
    stack: &str,
    targets: &[String],
) -> RefreshReport {
    let items: Vec<ResourceState> = snap
        .resources
        .values()
        .filter(|r| targets.is_empty() || targets.iter().any(|t| r.address.is_within(t)))
        .cloned()
        .collect();
    let results: Vec<_> = futures::stream::iter(items.into_iter().map(|r| async move {
        let out = match registry.get(&r.kind) {
            Err(e) => Err(e.to_string()),
            Ok(p) => {
                let ctx = OpContext::detached(r.address.clone()).in_stack(stack);
                p.read(
                    &ctx,
                    &r.id,
                    &value::strip_secrets(&r.inputs),
                    &value::strip_secrets(&r.outputs),
                )
                .await
                .map(|live| {
                    live.map(|l| {
                        let schema = p.schema();
                        (l, schema.secret_outputs.clone(), schema.file_modes.clone())
                    })
                })
                .map_err(|e| e.to_string())
            }
        };
        (r, out)
    }))
    .buffer_unordered(parallelism.max(1))
    .collect()
    .await;

    let mut report = RefreshReport::default();
    for (r, out) in results {
        report.read += 1;
        match out {
            Err(e) => report.errors.push((r.address.clone(), e)),
            Ok(None) => {
                snap.remove(&r.address);
                report.gone.push(r.address.clone());
            }
            Ok(Some((live, secret_paths, file_modes))) => {
                let inputs = value::copy_secret_marks(&r.inputs, live.inputs);
                let mut outputs = live.outputs;
                value::mark_secret_paths(&mut outputs, &secret_paths);
                value::mark_echoed_secrets(&inputs, &mut outputs);
                let changes = value::diff(&r.inputs, &inputs);
                if !changes.is_empty() {
                    if !file_modes.is_empty() {
                        report.file_modes.insert(r.address.clone(), file_modes);
                    }
                    report.drifted.push((r.address.clone(), changes));
                } else if outputs != r.outputs || live.id != r.id {
                    report.outputs_changed.push(r.address.clone());
                }
                if let Some(entry) = snap.get_mut(&r.address) {
                    entry.inputs = inputs;
                    entry.outputs = outputs;
                    entry.id = live.id;
                }
            }
        }
    }
    report.drifted.sort_by(|a, b| a.0.cmp(&b.0));
    report.gone.sort();
    report.outputs_changed.sort();
    report
}

/// A refresh read under the lock, waiting to be accepted or discarded.
pub struct RefreshRun<'s> {
    session: &'s Session,
    locked: Locked,
    refreshed: Snapshot,
    pub report: RefreshReport,
}

impl RefreshRun<'_> {
    /// Writes exactly what was read (when it differs from state) and releases the lock;
    /// true when something was written. Refused when some object could not be read.
    pub async fn accept(self) -> Result<bool> {
        let RefreshRun {
            session,
            locked,
            mut refreshed,
            report,
        } = self;
        let result = async {
            if !report.errors.is_empty() {
                return Err(Error::Usage(format!(
                    "{} resource(s) could not be read back, so nothing was written; fix the cause (credentials, endpoint, network) and refresh again",
                    report.errors.len()
                )));
            }
            if refreshed == locked.snapshot {
                return Ok(false);
            }
            session.store.save(&mut refreshed).await?;
            Ok(true)
        }
        .await;
        locked.lock.release().await?;
        result
    }

    /// Writes nothing and releases the lock.
    pub async fn discard(self) -> Result<()> {
        Ok(self.locked.lock.release().await?)
    }
}

impl Session {
    /// Reads the live objects (those at or under `targets`, or all) into a copy of the
    /// state and reports how they differ; takes no lock and writes nothing.
    pub async fn refresh_preview(&self, targets: &[String], parallelism: usize) -> Result<RefreshReport> {
        let (mut snap, _) = self.store.load().await?;
        check_targets(&snap, targets)?;
        Ok(refresh_some(&self.registry, &mut snap, parallelism, &self.stack_id(), targets).await)
    }

    /// Takes the lock and reads the live objects into a copy of the state, for the caller
    /// to show and then [`RefreshRun::accept`] or [`RefreshRun::discard`].
    pub async fn refresh_begin(&self, targets: &[String], parallelism: usize) -> Result<RefreshRun<'_>> {
        let locked = self.lock_for("refresh").await?;
        if let Err(e) = check_targets(&locked.snapshot, targets) {
            locked.lock.release().await?;
            return Err(e);
        }
        let mut refreshed = locked.snapshot.clone();
        let report = refresh_some(&self.registry, &mut refreshed, parallelism, &self.stack_id(), targets).await;
        Ok(RefreshRun {
            session: self,
            locked,
            refreshed,
            report,
        })
    }

    /// Reads every live object into state and saves it, without review (for tests and
    /// programs; the CLI reviews first).
    pub async fn refresh(&self, parallelism: usize) -> Result<RefreshReport> {
        let run = self.refresh_begin(&[], parallelism).await?;
        let report = run.report.clone();
        if report.errors.is_empty() {
            run.accept().await?;
        } else {
            // What could be read is still recorded, as before review existed.
            let RefreshRun {
                session,
                locked,
                mut refreshed,
                ..
            } = run;
            let saved = session.store.save(&mut refreshed).await;
            locked.lock.release().await?;
            saved?;
        }
        Ok(report)
    }
}

/// Each target names something in `snap`, or the error says which does not.
fn check_targets(snap: &Snapshot, targets: &[String]) -> Result<()> {
    for t in targets {
        if !snap.resources.keys().any(|a| a.is_within(t)) {
            return Err(Error::Usage(format!(
                "--target `{t}` matches nothing in state; `state list` shows what is there"
            )));
        }
    }
    Ok(())
}
