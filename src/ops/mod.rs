//! The operations behind the commands: each takes a [`Session`] and does one job.
//!
//! Rules kept here: every operation that may change state takes the stack lock first and
//! releases it on every path; a journal left by an interrupted run is folded into the
//! snapshot before a new one starts; read-only operations (plan, list, show, output) take
//! no lock and never write.

pub mod import;
pub mod recover;
pub mod refresh;
pub mod state_cmds;

use serde_json::Value;

use crate::apply::{self, ApplyReport, ExecuteOptions};
use crate::graph::DesiredGraph;
use crate::plan::diff::{self, PlanOptions};
use crate::plan::{Op, Plan, planfile};
use crate::provider::Registry;
use crate::state::{Snapshot, StateLock, StateStore};
use crate::value;
use crate::{Error, Result};

/// A program's desired graph with its stack's state.
pub struct Session {
    pub program: String,
    pub stack: String,
    pub graph: DesiredGraph,
    pub registry: Registry,
    pub store: StateStore,
    /// Checks over what the lookups read, run by every plan but a destroy's.
    pub lookup_checks: Vec<crate::model::checks::LookupCheck>,
    /// The checks the user waived (`--waive`).
    pub waived: Vec<String>,
}

/// State loaded under the lock for a change.
pub struct Locked {
    pub snapshot: Snapshot,
    pub lock: StateLock,
    /// What recovery of an interrupted run found.
    pub recovered: Vec<String>,
}

/// The thread freeing the last large state a plan let go of ([`Session::plan`]). The next
/// plan waits for it before loading, so a process that plans again (a long-lived caller, a
/// benchmark) never holds two large states at once; a CLI run plans once and may exit
/// before the free ends.
static FREEING: std::sync::Mutex<Option<std::thread::JoinHandle<()>>> = std::sync::Mutex::new(None);

/// Waits for the free [`FREEING`] holds, if any: a fraction of a second at the most (about
/// 0.2 s for a state of 100,000 resources), on the caller's thread.
fn wait_for_last_free() {
    let freeing = FREEING.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(f) = freeing {
        let _ = f.join();
    }
}

impl Session {
    /// This session's stack as operations see it (`dagger-ci/dev`).
    pub fn stack_id(&self) -> String {
        crate::provider::stack_id(&self.program, &self.stack)
    }

    /// Plans without taking the lock (and, with `refresh`, after reading live objects into
    /// a copy of the state that is not saved).
    pub async fn plan(&self, opts: &PlanOptions, refresh: bool) -> Result<Plan> {
        wait_for_last_free();
        let (mut snap, _) = self.store.load().await?;
        let mut unreadable = Vec::new();
        if refresh {
            unreadable = refresh::refresh_snapshot(&self.registry, &mut snap, 16, &self.stack_id())
                .await
                .errors;
        }
        let reads = self.read_lookups(&snap, opts.destroy).await?;
        let mut plan = diff::plan_with_reads(
            &self.program,
            &self.stack,
            &self.graph,
            &snap,
            &self.registry,
            opts,
            &reads,
        )?;
        self.check_lookups(&reads, opts, &mut plan)?;
        self.preview(&mut plan, &snap).await?;
        if snap.resources.len() > 10_000 {
            // Freeing a large state (every resource's JSON) takes a noticeable fraction of a
            // plan, and nothing after this needs it: another thread frees it while the plan
            // is shown (the next plan waits for it: `FREEING`), and the process may exit
            // before it finishes. Not tokio's
            // blocking pool: dropping the runtime waits for those tasks, so the CLI would
            // wait for the free after all.
            let freeing = std::thread::spawn(move || drop(snap));
            *FREEING.lock().unwrap_or_else(|e| e.into_inner()) = Some(freeing);
        }
        for (a, e) in unreadable {
            plan.warnings
                .push(format!("could not refresh `{a}`: {e}; its stored state was used"));
        }
        Ok(plan)
    }

    /// Adds each kind's preview notes to the creates and updates of `plan` whose inputs are
    /// fully known (see [`crate::provider::ResourceProvider::preview`]); fails when a kind
    /// refuses its change.
    pub async fn preview(&self, plan: &mut Plan, snap: &Snapshot) -> Result<()> {
        let stack = self.stack_id();
        let mut jobs = Vec::new();
        for (i, c) in plan.changes.iter().enumerate() {
            if !matches!(c.op, Op::Create | Op::Update) {
                continue;
            }
            let Some(after) = c.after.as_ref().filter(|a| !value::contains_unknown(a)) else {
                continue;
            };
            let Ok(provider) = self.registry.get(&c.kind) else {
                continue;
            };
            let inputs = value::strip_secrets(after);
            let old = snap.get(&c.address).map(|r| value::strip_secrets(&r.outputs));
            let ctx = crate::provider::OpContext::detached(c.address.clone()).in_stack(&stack);
            jobs.push(async move { (i, provider.preview(&ctx, &inputs, old.as_ref()).await) });
        }
        let mut refused = None;
        for (i, r) in futures::future::join_all(jobs).await {
            let address = plan.changes[i].address.clone();
            match r {
                Ok(notes) => plan.changes[i].notes.extend(notes),
                Err(source @ crate::provider::ProviderError::Refused(_)) => {
                    refused.get_or_insert(Error::Provider { address, source });
                }
                Err(e) => plan.warnings.push(format!("could not preview `{address}`: {e}")),
            }
        }
        refused.map_or(Ok(()), Err)
    }

    /// Takes the lock, loads state, folds any journal into it and resolves operations an
    /// interrupted run left pending.
    pub async fn lock_for(&self, operation: &str) -> Result<Locked> {
        let lock = self.store.lock(operation).await?;
        match self.load_locked().await {
            Ok((snapshot, recovered)) => Ok(Locked {
                snapshot,
                lock,
                recovered,
            }),
            Err(e) => {
                let _ = lock.release().await;
                Err(e)
            }
        }
    }

    async fn load_locked(&self) -> Result<(Snapshot, Vec<String>)> {
        let (mut snap, replayed) = self.store.load().await?;
        let recovered = recover::resolve_pending(&self.registry, &mut snap, &self.stack_id()).await;
        if replayed || !recovered.is_empty() {
            self.store.save(&mut snap).await?;
        }
        Ok((snap, recovered))
    }

    /// Plans against the locked state (reading the program's lookups first).
    pub async fn plan_locked(&self, locked: &Locked, opts: &PlanOptions) -> Result<Plan> {
        let reads = self.read_lookups(&locked.snapshot, opts.destroy).await?;
        let mut plan = diff::plan_with_reads(
            &self.program,
            &self.stack,
            &self.graph,
            &locked.snapshot,
            &self.registry,
            opts,
            &reads,
        )?;
        self.check_lookups(&reads, opts, &mut plan)?;
        Ok(plan)
    }

    /// Runs the program's lookup checks on what its lookups read (not for a destroy, which
    /// reads none): a failed check not waived fails the plan; a waived one is a warning.
    fn check_lookups(&self, reads: &diff::Reads, opts: &PlanOptions, plan: &mut Plan) -> Result<()> {
        if opts.destroy || self.lookup_checks.is_empty() {
            return Ok(());
        }
        let looked_up = crate::model::checks::LookedUp::new(reads);
        let verdicts = crate::model::checks::run_lookup_checks(&self.lookup_checks, &looked_up, &self.waived)?;
        for c in verdicts.iter().filter(|c| !c.passed()) {
            plan.warnings
                .push(format!("check `{}` is waived: {}", c.name, c.failures.join("; ")));
        }
        Ok(())
    }

    /// The outputs the declared resource at `a` will have, when its kind knows them from
    /// its inputs (resolved from state) before it exists ([`crate::provider::ResourceProvider::planned_outputs`]).
    fn planned_outputs(&self, a: &crate::address::Address, snap: &Snapshot) -> Option<serde_json::Value> {
        let d = self.graph.get(a).filter(|d| !d.lookup)?;
        let provider = self.registry.get(&d.kind).ok()?;
        let from_state = |b: &crate::address::Address, path: &str| match snap.get(b) {
            Some(st) => diff::resolve_from_state(st, b, path),
            None => Ok(value::Resolved::Unknown),
        };
        let inputs = value::resolve(&d.inputs, &from_state, &self.graph.transforms).ok()?;
        if value::contains_unknown(&inputs) {
            return None;
        }
        provider.planned_outputs(&value::strip_secrets(&inputs))
    }

    /// Reads every lookup the program declares (none for a destroy), in graph order:
    /// its query is resolved (from state, and from lookups read before it), the kind
    /// finds and reads the matching objects, and exactly one must match (any number, for a
    /// set lookup: [`crate::provider::ReadResult::set`]). A query not known before apply,
    /// no match or several: an error naming the lookup.
    pub async fn read_lookups(&self, snap: &Snapshot, destroy: bool) -> Result<diff::Reads> {
        let mut reads = diff::Reads::new();
        if destroy {
            return Ok(reads);
        }
        for r in self.graph.resources.iter().filter(|r| r.lookup) {
            let provider = self.registry.get(&r.kind).map_err(|source| Error::Provider {
                address: r.address.clone(),
                source,
            })?;
            let resolve = |a: &crate::address::Address, path: &str| {
                if let Some(found) = reads.get(a) {
                    return match path {
                        "$id" => Ok(value::Resolved::Known(serde_json::Value::String(found.id.clone()))),
                        _ => Ok(value::get_path(&found.outputs, &value::Path::parse(path))
                            .cloned()
                            .map_or(value::Resolved::Unknown, value::Resolved::Known)),
                    };
                }
                if let Some(out) = self.planned_outputs(a, snap) {
                    return Ok(match path {
                        "$id" => value::Resolved::Unknown,
                        _ => value::get_path(&out, &value::Path::parse(path))
                            .cloned()
                            .map_or(value::Resolved::Unknown, value::Resolved::Known),
                    });
                }
                match snap.get(a) {
                    Some(st) => diff::resolve_from_state(st, a, path),
                    None => Ok(value::Resolved::Unknown),
                }
            };
            let query = value::resolve(&r.inputs, &resolve, &self.graph.transforms)
                .map_err(|e| Error::Usage(format!("lookup `{}`: its query cannot be resolved: {e}", r.address)))?;
            if value::contains_unknown(&query) {
                return Err(Error::Usage(format!(
                    "lookup `{}` uses values known only after apply (of {}); a lookup is read when planning, so its query may use only what exists already",
                    r.address,
                    r.dependencies
                        .iter()
                        .map(|d| format!("`{d}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            let query = value::strip_secrets(&query);
            let ctx = crate::provider::OpContext::detached(r.address.clone()).in_stack(&self.stack_id());
            let failed = |source| Error::Provider {
                address: r.address.clone(),
                source,
            };
            let mut found = provider.lookup(&ctx, &query).await.map_err(failed)?;
            if r.lookup_all {
                reads.insert(r.address.clone(), crate::provider::ReadResult::set(found));
                continue;
            }
            let found = match found.len() {
                1 => found.remove(0),
                0 => {
                    return Err(Error::Usage(format!(
                        "lookup `{}` ({}) found nothing matching {query}; check the query, the account and the region",
                        r.address, r.kind
                    )));
                }
                n => {
                    let ids: Vec<&str> = found.iter().map(|f| f.id.as_str()).collect();
                    return Err(Error::Usage(format!(
                        "lookup `{}` ({}) found {n} objects matching {query} ({}); narrow the query to one",
                        r.address,
                        r.kind,
                        ids.join(", ")
                    )));
                }
            };
            reads.insert(r.address.clone(), found);
        }
        Ok(reads)
    }

    /// Applies `plan` to the locked state, saves the result and releases the lock.
    pub async fn apply(&self, plan: &Plan, locked: Locked, opts: &ExecuteOptions) -> Result<ApplyReport> {
        let Locked { snapshot, lock, .. } = locked;
        let result = self.apply_inner(plan, snapshot, opts).await;
        let released = lock.release().await;
        let report = result?;
        released?;
        Ok(report)
    }

    async fn apply_inner(&self, plan: &Plan, snapshot: Snapshot, opts: &ExecuteOptions) -> Result<ApplyReport> {
        if !plan.has_changes() {
            // Nothing to call: record new outputs and options only if they changed, so a
            // no-op apply leaves the state (and its history) alone.
            let mut snap = snapshot.clone();
            apply::settle_without_steps(plan, &self.graph, &mut snap);
            if snap != snapshot {
                self.store.save(&mut snap).await?;
            }
            return Ok(ApplyReport::default());
        }
        let journal = self.store.journal(&snapshot).await?;
        let (mut snap, report) = apply::execute(
            plan,
            &self.graph,
            &self.registry,
            snapshot,
            journal,
            self.store.key(),
            opts,
        )
        .await;
        if plan.destroy && snap.resources.is_empty() {
            snap.outputs.clear();
        }
        self.store.save(&mut snap).await?;
        Ok(report)
    }

    /// Plans and applies in one go under one lock, as `apply --yes` does.
    pub async fn apply_program(&self, plan_opts: &PlanOptions, exec: &ExecuteOptions) -> Result<(Plan, ApplyReport)> {
        let locked = self
            .lock_for(if plan_opts.destroy { "destroy" } else { "apply" })
            .await?;
        let plan = match self.plan_locked(&locked, plan_opts).await {
            Ok(p) => p,
            Err(e) => {
                locked.lock.release().await?;
                return Err(e);
            }
        };
        let report = self.apply(&plan, locked, exec).await?;
        Ok((plan, report))
    }

    /// Applies a saved plan exactly, or refuses (changing nothing) when the stack, its state
    /// or the program moved since it was made. `source` names the plan file in messages.
    pub async fn apply_saved(
        &self,
        plan: &Plan,
        source: &std::path::Path,
        exec: &ExecuteOptions,
    ) -> Result<ApplyReport> {
        let locked = self.lock_for("apply").await?;
        if let Err(e) = planfile::check_current(
            source,
            plan,
            &self.stack,
            &locked.snapshot.fingerprint(),
            &self.graph.fingerprint(),
        ) {
            locked.lock.release().await?;
            return Err(e.into());
        }
        self.apply(plan, locked, exec).await
    }

    /// Stack outputs as stored.
    pub async fn outputs(&self) -> Result<std::collections::BTreeMap<String, Value>> {
        Ok(self.store.load().await?.0.outputs)
    }
}
