//! Executes a plan: the scheduler that walks the step graph; each step's provider call
//! goes through `call.rs` (the envelope: inputs in, journal, timeout, outputs and errors
//! out) and `step.rs` records what it returned.
//!
//! Rules kept here:
//! - a step starts the moment every step it waits for has finished, with at most
//!   `parallelism` steps in flight;
//! - every provider call is bracketed by journal entries: `begin` is durable before the
//!   call, `done` or `failed` follows it; the in-memory snapshot changes only after `done`;
//! - a failed step skips the steps that (transitively) wait for it and nothing else; every
//!   failure is reported;
//! - on cancellation no new step starts; steps in flight finish and are recorded; only
//!   `abort` (a second Ctrl-C) stops the waits of steps in flight;
//! - a user's timeout is enforced here too, not only by the kinds that read it;
//! - a create that timed out or was aborted may have made its object: it is recorded as
//!   unsettled, stays pending in state, and the next run's recovery adopts what it made
//!   (through `find`) instead of making a second one;
//! - inputs are resolved from the live snapshot when the step starts, so a value known
//!   only after apply is the real one; an update whose resolved inputs turn out equal to
//!   the stored ones makes no call.

mod call;
pub mod progress;
mod step;
pub mod steps;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::FutureExt as _;
use serde_json::Value;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::address::Address;
use crate::graph::DesiredGraph;
use crate::plan::diff::resolve_from_state;
use crate::plan::{Op, Plan};
use crate::provider::Registry;
use crate::secrets::SecretKey;
use crate::state::{JournalEntry, JournalWriter, ResourceState, Snapshot, StepKind, StoredOptions};
use crate::value::{self, Resolved};

pub use steps::{Step, StepGraph};

/// What the apply view is told.
pub trait ApplyEvents: Send + Sync {
    fn step_started(&self, step: &Step, kind: &str);
    fn step_progress(&self, address: &Address, message: &str);
    /// The id the resource has after a step that succeeded, just before `step_finished`.
    fn step_id(&self, _step: &Step, _id: &str) {}
    fn step_finished(&self, step: &Step, status: &StepStatus, elapsed: Duration);
}

/// Events that go nowhere.
pub struct NoEvents;
impl ApplyEvents for NoEvents {
    fn step_started(&self, _: &Step, _: &str) {}
    fn step_progress(&self, _: &Address, _: &str) {}
    fn step_finished(&self, _: &Step, _: &StepStatus, _: Duration) {}
}

/// How a step ended.
#[derive(Debug, Clone, PartialEq)]
pub enum StepStatus {
    Done,
    /// Nothing to do once the inputs were known.
    Unchanged,
    Failed(String),
    /// Not run because a step it waits for failed.
    Skipped {
        because: Address,
    },
    /// Not run because the apply was interrupted.
    NotStarted,
}

/// One step's outcome.
#[derive(Debug, Clone)]
pub struct StepOutcome {
    pub address: Address,
    pub kind: StepKind,
    pub status: StepStatus,
    pub elapsed: Duration,
}

/// What an apply did.
#[derive(Debug, Clone, Default)]
pub struct ApplyReport {
    pub outcomes: Vec<StepOutcome>,
    pub interrupted: bool,
    pub elapsed: Duration,
    /// Problems that did not fail a step (the journal could not be synced, say).
    pub warnings: Vec<String>,
    /// Calls the operations retried (a throttling cloud's answers, say), all together.
    pub retried_calls: u64,
}

impl ApplyReport {
    pub fn failures(&self) -> impl Iterator<Item = (&Address, &str)> {
        self.outcomes.iter().filter_map(|o| match &o.status {
            StepStatus::Failed(m) => Some((&o.address, m.as_str())),
            _ => None,
        })
    }

    pub fn succeeded(&self) -> bool {
        !self.interrupted
            && self
                .outcomes
                .iter()
                .all(|o| matches!(o.status, StepStatus::Done | StepStatus::Unchanged))
    }

    pub fn count(&self, pred: impl Fn(&StepStatus) -> bool) -> usize {
        self.outcomes.iter().filter(|o| pred(&o.status)).count()
    }
}

/// How to execute.
#[derive(Clone)]
pub struct ExecuteOptions {
    pub parallelism: usize,
    /// Stops scheduling: no new step starts; steps in flight run to their end.
    pub cancel: CancellationToken,
    /// Stops the steps in flight too: their operations see `OpContext::cancel`.
    pub abort: CancellationToken,
    pub events: Arc<dyn ApplyEvents>,
}

impl Default for ExecuteOptions {
    fn default() -> Self {
        ExecuteOptions {
            parallelism: 16,
            cancel: CancellationToken::new(),
            abort: CancellationToken::new(),
            events: Arc::new(NoEvents),
        }
    }
}

struct Shared {
    plan: Plan,
    graph: DesiredGraph,
    registry: Registry,
    snapshot: Mutex<Snapshot>,
    journal: JournalWriter,
    key: SecretKey,
    cancel: CancellationToken,
    abort: CancellationToken,
    events: Arc<dyn ApplyEvents>,
    /// Calls the operations retried (throttling, eventual consistency), all steps together.
    retried: Arc<std::sync::atomic::AtomicU64>,
}

/// Runs `plan` against `snapshot`, journaling every call, and returns the resulting
/// snapshot (not yet saved) with the report.
pub async fn execute(
    plan: &Plan,
    graph: &DesiredGraph,
    registry: &Registry,
    snapshot: Snapshot,
    journal: JournalWriter,
    key: &SecretKey,
    opts: &ExecuteOptions,
) -> (Snapshot, ApplyReport) {
    let started = Instant::now();
    // Moves first, each journaled (durably) before the snapshot changes, so that every
    // step sees the resource at its new address and a crash loses no move.
    let mut snapshot = snapshot;
    for c in &plan.changes {
        let Some(from) = &c.moved_from else { continue };
        if snapshot.get(from).is_none() {
            continue;
        }
        let entry = JournalEntry::Moved {
            from: from.clone(),
            to: c.address.clone(),
        };
        if let Err(e) = journal.append(&entry).await {
            // Nothing runs: the steps would look for the resource where it is not yet.
            let report = ApplyReport {
                outcomes: vec![StepOutcome {
                    address: c.address.clone(),
                    kind: StepKind::Update,
                    status: StepStatus::Failed(format!("its move from `{from}` could not be journaled: {e}")),
                    elapsed: Duration::ZERO,
                }],
                elapsed: started.elapsed(),
                ..ApplyReport::default()
            };
            return (snapshot, report);
        }
        snapshot.move_resource(from, &c.address);
    }
    record_reads(plan, graph, &mut snapshot);
    let step_graph = StepGraph::build(plan);
    let dependents = step_graph.dependents();
    let shared = Arc::new(Shared {
        plan: plan.clone(),
        graph: graph.clone(),
        registry: registry.clone(),
        snapshot: Mutex::new(snapshot),
        journal,
        key: key.clone(),
        cancel: opts.cancel.clone(),
        abort: opts.abort.clone(),
        events: opts.events.clone(),
        retried: Arc::default(),
    });
    let steps = Arc::new(step_graph.steps);
    let n = steps.len();
    let mut waiting: Vec<usize> = steps.iter().map(|s| s.after.len()).collect();
    let mut status: Vec<Option<(StepStatus, Duration)>> = vec![None; n];
    // Ready steps start longest-remaining-chain first, so the critical path never waits
    // behind steps that have slack.
    let priority = critical_path_lengths(&steps, &dependents);
    let mut ready: BinaryHeap<(usize, Reverse<usize>)> = (0..n)
        .filter(|&i| waiting[i] == 0)
        .map(|i| (priority[i], Reverse(i)))
        .collect();
    let mut running: JoinSet<(usize, StepStatus, Duration)> = JoinSet::new();
    let parallelism = opts.parallelism.max(1);
    let mut interrupted = false;

    loop {
        // The token is read here too: when a step ends as the interrupt arrives, `select!`
        // may take the step first, and no step may start after an interrupt.
        interrupted |= shared.cancel.is_cancelled();
        while !interrupted && running.len() < parallelism {
            let Some((_, Reverse(i))) = ready.pop() else { break };
            let shared = shared.clone();
            let steps = steps.clone();
            running.spawn(async move {
                let t0 = Instant::now();
                let step = &steps[i];
                shared.events.step_started(step, &shared.plan.changes[step.change].kind);
                let st = match AssertUnwindSafe(step::run(&shared, step)).catch_unwind().await {
                    Ok(Ok(s)) => s,
                    Ok(Err(m)) => StepStatus::Failed(m),
                    Err(_) => StepStatus::Failed("the provider panicked; the object may be half made".into()),
                };
                (i, st, t0.elapsed())
            });
        }
        if running.is_empty() {
            break;
        }
        tokio::select! {
            joined = running.join_next() => {
                let Some(joined) = joined else { break };
                // Steps catch their own panics and are never aborted, so joining cannot fail.
                let (i, st, elapsed) = joined.expect("a step task neither panics nor is aborted");
                if st == StepStatus::Done {
                    let id = shared.snapshot.lock().expect("snapshot mutex").get(&steps[i].address).map(|r| r.id.clone());
                    if let Some(id) = id {
                        shared.events.step_id(&steps[i], &id);
                    }
                }
                shared.events.step_finished(&steps[i], &st, elapsed);
                let ok = matches!(st, StepStatus::Done | StepStatus::Unchanged);
                status[i] = Some((st, elapsed));
                if ok {
                    for &d in &dependents[i] {
                        waiting[d] -= 1;
                        if waiting[d] == 0 && status[d].is_none() {
                            ready.push((priority[d], Reverse(d)));
                        }
                    }
                } else {
                    skip_dependents(i, &steps, &dependents, &mut status, &shared);
                }
            }
            _ = shared.cancel.cancelled(), if !interrupted => {
                interrupted = true;
            }
        }
    }
    if shared.cancel.is_cancelled() {
        interrupted = true;
    }

    let outcomes = steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let (st, el) = status[i].clone().unwrap_or((StepStatus::NotStarted, Duration::ZERO));
            StepOutcome {
                address: s.address.clone(),
                kind: s.kind,
                status: st,
                elapsed: el,
            }
        })
        .collect();
    let mut warnings = Vec::new();
    if let Err(e) = shared.journal.flush().await {
        warnings.push(format!("the journal could not be synced at the end of the run: {e}"));
    }
    let shared = Arc::try_unwrap(shared).unwrap_or_else(|_| panic!("all steps have finished"));
    let mut snap = shared.snapshot.into_inner().expect("snapshot mutex");
    settle_unchanged(&shared.plan, &shared.graph, &mut snap);
    record_outputs(&shared.graph, &mut snap);
    (
        snap,
        ApplyReport {
            outcomes,
            interrupted,
            elapsed: started.elapsed(),
            warnings,
            retried_calls: shared.retried.load(std::sync::atomic::Ordering::Relaxed),
        },
    )
}

/// For each step, the number of steps on the longest chain from it to the end.
fn critical_path_lengths(steps: &[Step], dependents: &[Vec<usize>]) -> Vec<usize> {
    let n = steps.len();
    let mut length = vec![0usize; n];
    // Kahn's order from the sinks backwards: a step's length is known once all its
    // dependents' are.
    let mut pending: Vec<usize> = dependents.iter().map(Vec::len).collect();
    let mut stack: Vec<usize> = (0..n).filter(|&i| pending[i] == 0).collect();
    while let Some(i) = stack.pop() {
        length[i] = 1 + dependents[i].iter().map(|&d| length[d]).max().unwrap_or(0);
        for &a in &steps[i].after {
            pending[a] -= 1;
            if pending[a] == 0 {
                stack.push(a);
            }
        }
    }
    length
}

/// What an apply with no provider calls still records: new dependencies and options of
/// unchanged resources, and the stack outputs.
pub fn settle_without_steps(plan: &Plan, graph: &DesiredGraph, snap: &mut Snapshot) {
    record_reads(plan, graph, snap);
    settle_unchanged(plan, graph, snap);
    record_outputs(graph, snap);
}

fn skip_dependents(
    failed: usize,
    steps: &[Step],
    dependents: &[Vec<usize>],
    status: &mut [Option<(StepStatus, Duration)>],
    shared: &Shared,
) {
    let because = steps[failed].address.clone();
    let mut stack: Vec<usize> = dependents[failed].clone();
    while let Some(d) = stack.pop() {
        if status[d].is_some() {
            continue;
        }
        let st = StepStatus::Skipped {
            because: because.clone(),
        };
        shared.events.step_finished(&steps[d], &st, Duration::ZERO);
        status[d] = Some((st, Duration::ZERO));
        stack.extend(dependents[d].iter().copied());
    }
}

/// What the plan's lookups read goes into state (so references, `output` and later
/// runs see it), marked `lookup`; a lookup in state the plan did not read (gone from the
/// program, or a destroy) is forgotten, never deleted. No provider call, no journal: a
/// lookup is read again by every plan, so a crash loses nothing.
pub fn record_reads(plan: &Plan, graph: &DesiredGraph, snap: &mut Snapshot) {
    let read: std::collections::HashSet<&Address> = plan
        .changes
        .iter()
        .filter(|c| c.op == Op::Read)
        .map(|c| &c.address)
        .collect();
    snap.resources.retain(|a, r| !r.options.lookup || read.contains(a));
    for c in plan.changes.iter().filter(|c| c.op == Op::Read) {
        let Some(d) = graph.get(&c.address) else { continue };
        snap.upsert(ResourceState {
            address: c.address.clone(),
            kind: c.kind.clone(),
            id: c.id.clone().unwrap_or_default(),
            inputs: c.after.clone().unwrap_or(Value::Null),
            outputs: c.read.clone().unwrap_or(Value::Null),
            dependencies: d.dependencies.clone(),
            provider: provider_of(&c.kind),
            options: StoredOptions {
                lookup: true,
                ..StoredOptions::default()
            },
            unfinished: None,
        });
    }
}

/// Resources whose provider call was not needed still take their new dependencies and
/// options.
fn settle_unchanged(plan: &Plan, graph: &DesiredGraph, snap: &mut Snapshot) {
    for c in plan.changes.iter().filter(|c| c.op == Op::Same) {
        if let (Some(d), Some(r)) = (graph.get(&c.address), snap.resources.get_mut(&c.address)) {
            r.dependencies = d.dependencies.clone();
            r.options = stored_options(&d.options);
        }
    }
}

fn record_outputs(graph: &DesiredGraph, snap: &mut Snapshot) {
    let mut outputs = std::collections::BTreeMap::new();
    for (name, v) in &graph.outputs {
        let lookup = |a: &Address, path: &str| match snap.get(a) {
            Some(r) => resolve_from_state(r, a, path),
            None => Ok(Resolved::Unknown),
        };
        if let Ok(resolved) = value::resolve(v, &lookup, &graph.transforms)
            && !value::contains_unknown(&resolved)
        {
            outputs.insert(name.clone(), resolved);
        }
    }
    snap.outputs = outputs;
}

pub(crate) fn stored_options(o: &crate::model::options::ResourceOptions) -> StoredOptions {
    StoredOptions {
        protect: o.protect,
        retain_on_delete: o.retain_on_delete,
        delete_before_replace: o.delete_before_replace,
        timeouts: o.timeouts.clone(),
        imported: false,
        lookup: false,
    }
}

/// The provider namespace of a kind (`aws` for `aws:ec2:Vpc`).
pub(crate) fn provider_of(kind: &str) -> String {
    kind.split(':').next().unwrap_or(kind).to_string()
}

fn now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}
