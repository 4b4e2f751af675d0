//! Property tests: random dependency graphs and random sequences of edits to them, applied
//! against the fake provider.
//!
//! A case is a random DAG of `fake:Thing` resources (a resource references the `arn` of
//! lower-numbered ones, so the graph is acyclic by construction) and a few rounds of edits
//! (add, remove, change a plain input, change the replace-forcing `name`, add or drop a
//! reference, toggle `delete_before_replace`), applied serially or in parallel. After every
//! apply:
//! 1. a fresh plan has no changes (every change is `Op::Same`);
//! 2. the state equals the fake world: every stored resource is a world object with that
//!    id, kind, address tag and (marker-free) inputs, and the world holds nothing else; and
//!    the world is what the program declares: exactly one object per declared address,
//!    with the declared inputs, references pointing at the current object of the referenced
//!    address, and the declared dependencies stored;
//! 3. `destroy` leaves the world and the state empty.
//!
//! 4. In one round the apply is killed at a random kill point (before or after the cloud
//!    does a create, update or delete; the call then never returns and the apply task is
//!    aborted, leaving its lock and journal as a dead process would). After `state unlock`,
//!    an apply from a fresh session converges to the world an uninterrupted apply makes:
//!    the journal is replayed, the interrupted call is pending and then resolved (an object
//!    made by an interrupted create is adopted through `find`, not made again), and
//!    properties 1 and 2 hold. The kill must land: when the drawn round has no provider
//!    call to kill, the next round with one is killed instead; an apply that makes its calls
//!    and finishes without the switch firing fails the case (a broken kill mechanism would
//!    otherwise pass as a plain apply), and a case with no provider call in any round from
//!    the drawn one on is rejected, not counted. The disabled-switch tests at the end run
//!    the same cases with the switch left out and require each to fail.
//!
//! Failures shrink towards serial applies, where ids and kill points are deterministic.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use common::Harness;
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use spar::apply::{ExecuteOptions, StepGraph};
use spar::plan::diff::PlanOptions;
use spar::plan::{Op, Plan};
use spar::provider::ProviderError;
use spar::state::{Snapshot, StepKind};
use spar::testing::{FakeProvider, FakeResource, FakeWorld};
use spar::{Handle, ResourceOptions};

const KIND: &str = "fake:Thing";
const ARN_PREFIX: &str = "arn:fake:fake:Thing:";
/// Resource slots: the initial graph uses the first ones, additions take free ones (which
/// may be the address of a resource removed earlier).
const SLOTS: usize = 30;
const MAX_INITIAL: usize = 25;

// ---------------------------------------------------------------------------------------
// The model: what the program declares.

#[derive(Clone, Debug, PartialEq)]
struct Node {
    /// Generation of the replace-forcing `name` input.
    name: u32,
    /// A plain input.
    size: u32,
    /// Referenced lower-numbered slots (inputs `dep<j>` = `r<j>`'s `arn`).
    deps: BTreeSet<usize>,
    /// The `delete_before_replace` option (replace by deleting the old object first).
    delete_first: bool,
}

#[derive(Clone, Debug)]
struct Model {
    slots: Vec<Option<Node>>,
}

fn address(i: usize) -> String {
    format!("r{i}")
}

impl Model {
    fn initial(spec: &[(u32, Vec<Pick>)]) -> Model {
        let mut slots = vec![None; SLOTS];
        for (i, (size, deps)) in spec.iter().enumerate() {
            let deps = if i == 0 {
                BTreeSet::new()
            } else {
                deps.iter().map(|d| d % i).collect()
            };
            slots[i] = Some(Node {
                name: 0,
                size: *size,
                deps,
                delete_first: false,
            });
        }
        Model { slots }
    }

    fn present(&self) -> Vec<usize> {
        (0..SLOTS).filter(|&i| self.slots[i].is_some()).collect()
    }

    fn node(&mut self, i: usize) -> &mut Node {
        self.slots[i].as_mut().expect("a present slot")
    }

    /// The program: slots in increasing order, so every referenced handle exists.
    fn define(&self, s: &mut spar::Stack, p: &Arc<FakeProvider>) -> spar::Result<()> {
        let mut handles: Vec<Option<Handle<FakeResource>>> = vec![None; SLOTS];
        for (i, n) in self.slots.iter().enumerate() {
            let Some(n) = n else { continue };
            let mut r = FakeResource::new(p)
                .set("name", format!("{}-{}", address(i), n.name))
                .set("size", n.size);
            for &d in &n.deps {
                let h = handles[d].as_ref().expect("references point at lower, declared slots");
                r = r.set_output(&format!("dep{d}"), &h.arn());
            }
            let options = if n.delete_first {
                ResourceOptions::new().delete_before_replace(true)
            } else {
                ResourceOptions::new()
            };
            handles[i] = Some(s.add_with(&address(i), r, options)?);
        }
        Ok(())
    }

    /// Declared inputs by address, with each reference written as the referenced address.
    fn expected(&self) -> BTreeMap<String, Value> {
        let mut out = BTreeMap::new();
        for (i, n) in self.slots.iter().enumerate() {
            let Some(n) = n else { continue };
            let mut m = Map::new();
            m.insert("name".into(), json!(format!("{}-{}", address(i), n.name)));
            m.insert("size".into(), json!(n.size));
            for &d in &n.deps {
                m.insert(format!("dep{d}"), json!(address(d)));
            }
            out.insert(address(i), Value::Object(m));
        }
        out
    }

    /// Declared dependencies by address.
    fn dependencies(&self) -> BTreeMap<String, BTreeSet<String>> {
        (0..SLOTS)
            .filter_map(|i| {
                let n = self.slots[i].as_ref()?;
                Some((address(i), n.deps.iter().map(|&d| address(d)).collect()))
            })
            .collect()
    }

    fn apply_edit(&mut self, e: &Edit) {
        let present = self.present();
        match e {
            Edit::Add { slot, size, deps } => {
                let free: Vec<usize> = (0..SLOTS).filter(|&i| self.slots[i].is_none()).collect();
                if free.is_empty() {
                    return;
                }
                let i = free[slot % free.len()];
                let lower: Vec<usize> = present.iter().copied().filter(|&j| j < i).collect();
                let deps = if lower.is_empty() {
                    BTreeSet::new()
                } else {
                    deps.iter().map(|d| lower[d % lower.len()]).collect()
                };
                self.slots[i] = Some(Node {
                    name: 0,
                    size: *size,
                    deps,
                    delete_first: false,
                });
            }
            Edit::Remove(which) => {
                if present.is_empty() {
                    return;
                }
                let i = present[which % present.len()];
                self.slots[i] = None;
                // Its dependents stop referencing it (or the program would not compile).
                for n in self.slots.iter_mut().flatten() {
                    n.deps.remove(&i);
                }
            }
            Edit::SetSize(which, size) => {
                if present.is_empty() {
                    return;
                }
                let i = present[which % present.len()];
                self.node(i).size = *size;
            }
            Edit::Rename(which) => {
                if present.is_empty() {
                    return;
                }
                let i = present[which % present.len()];
                self.node(i).name += 1;
            }
            Edit::DeleteFirst(which) => {
                if present.is_empty() {
                    return;
                }
                let i = present[which % present.len()];
                self.node(i).delete_first ^= true;
            }
            Edit::AddEdge(which, to) => {
                // Only nodes with some lower node can gain a reference.
                let candidates: Vec<usize> = present.iter().copied().filter(|&i| i > present[0]).collect();
                if candidates.is_empty() {
                    return;
                }
                let i = candidates[which % candidates.len()];
                let lower: Vec<usize> = present.iter().copied().filter(|&j| j < i).collect();
                let j = lower[to % lower.len()];
                self.node(i).deps.insert(j);
            }
            Edit::RemoveEdge(which, edge) => {
                let candidates: Vec<usize> = present
                    .iter()
                    .copied()
                    .filter(|&i| self.slots[i].as_ref().is_some_and(|n| !n.deps.is_empty()))
                    .collect();
                if candidates.is_empty() {
                    return;
                }
                let i = candidates[which % candidates.len()];
                let deps: Vec<usize> = self.node(i).deps.iter().copied().collect();
                let j = deps[edge % deps.len()];
                self.node(i).deps.remove(&j);
            }
        }
    }
}

/// A choice among what exists when it is made (`pick % len`); small, so it shrinks well.
type Pick = usize;

fn pick() -> impl Strategy<Value = Pick> {
    0usize..64
}

/// One edit to the desired graph; indices pick among what exists when it is applied.
#[derive(Clone, Debug)]
enum Edit {
    Add {
        slot: Pick,
        size: u32,
        deps: Vec<Pick>,
    },
    Remove(Pick),
    SetSize(Pick, u32),
    Rename(Pick),
    /// Toggles `delete_before_replace`.
    DeleteFirst(Pick),
    AddEdge(Pick, Pick),
    RemoveEdge(Pick, Pick),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (pick(), 0u32..4, prop::collection::vec(pick(), 0..3)).prop_map(|(slot, size, deps)| Edit::Add {
            slot,
            size,
            deps
        }),
        pick().prop_map(Edit::Remove),
        (pick(), 0u32..4).prop_map(|(i, s)| Edit::SetSize(i, s)),
        pick().prop_map(Edit::Rename),
        pick().prop_map(Edit::DeleteFirst),
        (pick(), pick()).prop_map(|(i, j)| Edit::AddEdge(i, j)),
        (pick(), pick()).prop_map(|(i, j)| Edit::RemoveEdge(i, j)),
    ]
}

/// The initial graph: per node, its `size` and up to three references to lower nodes.
fn initial_graph() -> impl Strategy<Value = Vec<(u32, Vec<Pick>)>> {
    prop::collection::vec((0u32..4, prop::collection::vec(pick(), 0..4)), 0..=MAX_INITIAL)
}

/// Serial applies (deterministic ids and kill points, what failures shrink to) or parallel.
fn parallelism() -> impl Strategy<Value = usize> {
    prop::sample::select(vec![1usize, 16])
}

fn exec(parallelism: usize) -> ExecuteOptions {
    ExecuteOptions {
        parallelism,
        ..ExecuteOptions::default()
    }
}

fn rounds() -> impl Strategy<Value = Vec<Vec<Edit>>> {
    prop::collection::vec(prop::collection::vec(edit(), 1..6), 0..=4)
}

// ---------------------------------------------------------------------------------------
// Checks.

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn not_same(plan: &Plan) -> Vec<(String, Op)> {
    plan.changes
        .iter()
        .filter(|c| c.op != Op::Same)
        .map(|c| (c.address.to_string(), c.op))
        .collect()
}

/// Property 1: a fresh plan after apply has no changes.
fn check_no_changes(rt: &tokio::runtime::Runtime, h: &Harness, model: &Model) -> Result<(), TestCaseError> {
    let plan = rt.block_on(h.plan(|s, p| model.define(s, p)));
    let changed = not_same(&plan);
    prop_assert!(changed.is_empty(), "plan after apply is not empty: {changed:?}");
    prop_assert!(plan.pending.is_empty(), "pending after apply: {:?}", plan.pending);
    Ok(())
}

/// Property 2: state equals the world, and the world is what the program declares.
fn check_state_is_world(snap: &Snapshot, world: &FakeWorld, model: &Model) -> Result<(), TestCaseError> {
    let objects = world.objects();
    let by_id: BTreeMap<&str, _> = objects.iter().map(|o| (o.id.as_str(), o)).collect();
    prop_assert!(snap.pending.is_empty(), "pending left in state: {:?}", snap.pending);
    prop_assert!(snap.deposed.is_empty(), "deposed left in state: {:?}", snap.deposed);
    let dependencies = model.dependencies();
    for r in snap.resources.values() {
        let Some(o) = by_id.get(r.id.as_str()) else {
            return Err(TestCaseError::fail(format!(
                "`{}` is in state as {} but no such object exists; world: {objects:#?}",
                r.address, r.id
            )));
        };
        prop_assert_eq!(&o.kind, &r.kind, "kind of {}", r.address);
        prop_assert_eq!(&o.address, &r.address, "address tag of {}", r.id);
        prop_assert_eq!(
            &o.inputs,
            &spar::value::strip_secrets(&r.inputs),
            "inputs of {}",
            r.address
        );
        let stored: BTreeSet<String> = r.dependencies.iter().map(|a| a.to_string()).collect();
        prop_assert_eq!(
            Some(&stored),
            dependencies.get(r.address.as_str()),
            "stored dependencies of {}",
            r.address
        );
    }
    let known: BTreeSet<&str> = snap.resources.values().map(|r| r.id.as_str()).collect();
    let unknown: Vec<_> = objects.iter().filter(|o| !known.contains(o.id.as_str())).collect();
    prop_assert!(unknown.is_empty(), "world objects state does not know: {unknown:#?}");

    // The world is the program: one object per declared address, declared inputs,
    // references resolved to the referenced address's current object.
    let mut per_address: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for o in &objects {
        per_address.entry(o.address.to_string()).or_default().push(&o.id);
    }
    let dups: Vec<_> = per_address.iter().filter(|(_, ids)| ids.len() > 1).collect();
    prop_assert!(dups.is_empty(), "several objects at one address: {dups:?}");
    let normalized: BTreeMap<String, Value> = objects
        .iter()
        .map(|o| (o.address.to_string(), normalize(&o.inputs, &by_id)))
        .collect();
    prop_assert_eq!(
        normalized,
        model.expected(),
        "the world is not what the program declares"
    );
    Ok(())
}

/// Replaces each ARN in `v` with the address of the object it names.
fn normalize(v: &Value, by_id: &BTreeMap<&str, &spar::testing::FakeObject>) -> Value {
    match v {
        Value::String(s) => match s.strip_prefix(ARN_PREFIX) {
            Some(id) => match by_id.get(id) {
                Some(o) => json!(o.address.to_string()),
                None => json!(format!("(dangling {s})")),
            },
            None => v.clone(),
        },
        Value::Object(m) => Value::Object(m.iter().map(|(k, x)| (k.clone(), normalize(x, by_id))).collect()),
        Value::Array(a) => Value::Array(a.iter().map(|x| normalize(x, by_id)).collect()),
        other => other.clone(),
    }
}

/// Applies `model`, then checks properties 1 and 2.
fn apply_and_check(
    rt: &tokio::runtime::Runtime,
    h: &Harness,
    model: &Model,
    exec: &ExecuteOptions,
) -> Result<(), TestCaseError> {
    let (_, report) = rt.block_on(h.apply_with(|s, p| model.define(s, p), &PlanOptions::default(), exec));
    prop_assert!(report.succeeded(), "apply failed: {report:?}");
    check_applied(rt, h, model)
}

/// Properties 1 and 2 after an apply of `model`.
fn check_applied(rt: &tokio::runtime::Runtime, h: &Harness, model: &Model) -> Result<(), TestCaseError> {
    check_no_changes(rt, h, model)?;
    let snap = rt.block_on(h.snapshot());
    check_state_is_world(&snap, &h.world, model)
}

/// Property 3: destroy empties the world and the state.
fn destroy_and_check(rt: &tokio::runtime::Runtime, h: &Harness) -> Result<(), TestCaseError> {
    let (_, report) = rt.block_on(h.destroy());
    prop_assert!(report.succeeded(), "destroy failed: {report:?}");
    let objects = h.world.objects();
    prop_assert!(objects.is_empty(), "destroy left objects: {objects:#?}");
    let snap = rt.block_on(h.snapshot());
    prop_assert!(
        snap.resources.is_empty(),
        "destroy left state: {:?}",
        snap.resources.keys()
    );
    prop_assert!(
        snap.deposed.is_empty() && snap.pending.is_empty(),
        "destroy left {snap:?}"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Simulated kills.

/// Where in a provider operation the process dies.
#[derive(Clone, Debug, PartialEq)]
struct Kill {
    /// `create`, `update` or `delete`.
    op: &'static str,
    /// Whether the cloud had done the operation (made, changed or deleted the object)
    /// when the process died, or not yet.
    after: bool,
    address: String,
    /// For a kill after a create: the object it made (the newest at its address).
    made: Option<String>,
}

/// Armed for one apply: the `k`-th kill point reached kills the "process". Kill points are
/// the provider's hooks before each operation and its stall check after it. Once dead,
/// every later "after" point stalls forever (an async wait the abort drops) and every later
/// "before" hook blocks (off the runtime's workers) until the test has torn the apply down,
/// then panics; either way the call never returns and its end is never journaled.
struct KillSwitch {
    k: usize,
    seen: AtomicUsize,
    dead: AtomicBool,
    world: Arc<FakeWorld>,
    tx: Mutex<Option<tokio::sync::oneshot::Sender<Kill>>>,
    released: Mutex<bool>,
    cv: Condvar,
}

impl KillSwitch {
    /// Counts a kill point; true when the process is dead from here on.
    fn reach(&self, op: &'static str, after: bool, a: &spar::Address) -> bool {
        let n = self.seen.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.k {
            self.dead.store(true, Ordering::SeqCst);
            let made = (after && op == "create")
                .then(|| {
                    self.world
                        .object_at(a.as_str())
                        .into_iter()
                        .map(|o| o.id)
                        .max_by_key(|id| id.trim_start_matches("fake-").parse::<u64>().unwrap_or(0))
                })
                .flatten();
            let kill = Kill {
                op,
                after,
                address: a.to_string(),
                made,
            };
            if let Some(tx) = self.tx.lock().expect("kill mutex").take() {
                let _ = tx.send(kill);
            }
        }
        self.dead.load(Ordering::SeqCst)
    }

    /// A hook before an operation: a dead process goes no further.
    fn before(&self, op: &'static str, a: &spar::Address) {
        if !self.reach(op, false, a) {
            return;
        }
        tokio::task::block_in_place(|| {
            let mut released = self.released.lock().expect("kill mutex");
            while !*released {
                released = self.cv.wait(released).expect("kill mutex");
            }
        });
        panic!("simulated process death (this call never returns)");
    }

    fn release(&self) {
        *self.released.lock().expect("kill mutex") = true;
        self.cv.notify_all();
    }
}

type Armed = Arc<Mutex<Option<Arc<KillSwitch>>>>;

/// A harness whose provider's kill points consult `armed` (no-ops while it is empty).
fn killable_harness() -> (Harness, Armed) {
    let world = FakeWorld::new();
    let armed: Armed = Arc::new(Mutex::new(None));
    let switch = |armed: &Armed| armed.lock().expect("armed mutex").clone();
    let before = |op: &'static str| {
        let armed = armed.clone();
        move |a: &spar::Address, _: &Value| -> Result<(), ProviderError> {
            if let Some(s) = switch(&armed) {
                s.before(op, a);
            }
            Ok(())
        }
    };
    let after = {
        let armed = armed.clone();
        move |op: &'static str, a: &spar::Address| switch(&armed).is_some_and(|s| s.reach(op, true, a))
    };
    let provider = FakeProvider::new(KIND, world.clone())
        .on_create(before("create"))
        .on_update(before("update"))
        .on_delete(before("delete"))
        .stall_after(after);
    (Harness::with_provider(provider, world), armed)
}

/// Kill points the plan for `model` would pass: two per provider call.
fn kill_points(rt: &tokio::runtime::Runtime, h: &Harness, model: &Model) -> usize {
    let plan = rt.block_on(h.plan(|s, p| model.define(s, p)));
    2 * StepGraph::build(&plan).steps.len()
}

/// Whether the kill switch is installed on the provider's kill points (the mechanism under
/// test) or left out: the defect the disabled-switch tests put back, a kill that never fires.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Switch {
    Installed,
    LeftOut,
}

/// How an apply armed to be killed ended.
#[derive(Debug)]
enum Killed {
    /// The plan has no provider call, so there is nothing to kill (and nothing was applied).
    NoWork,
    /// The switch fired: the "process" died here.
    At(Kill),
    /// The apply made its calls and finished without the switch firing at the `k`-th of
    /// its `points` kill points.
    Missed { k: usize, points: usize },
}

/// Applies `model` and kills the run at the `seed`-th kill point (modulo their number).
/// Returns where it died, or how it did not. On return nothing of the killed run is still
/// running.
fn apply_and_kill(
    h: &Harness,
    armed: &Armed,
    model: &Model,
    seed: usize,
    exec: &ExecuteOptions,
    installed: Switch,
) -> Result<Killed, TestCaseError> {
    let points = kill_points(&runtime(), h, model);
    if points == 0 {
        return Ok(Killed::NoWork);
    }
    let k = 1 + seed % points;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let switch = Arc::new(KillSwitch {
        k,
        seen: AtomicUsize::new(0),
        dead: AtomicBool::new(false),
        world: h.world.clone(),
        tx: Mutex::new(Some(tx)),
        released: Mutex::new(false),
        cv: Condvar::new(),
    });
    if installed == Switch::Installed {
        *armed.lock().expect("armed mutex") = Some(switch.clone());
    }
    let session = h.session(|s, p| model.define(s, p)).expect("a valid program");
    let rt = runtime();
    let exec = exec.clone();
    let outcome = rt.block_on(async move {
        let mut task = tokio::spawn(async move { session.apply_program(&PlanOptions::default(), &exec).await });
        tokio::select! {
            kill = rx => {
                // The process is dead: the apply never gets further than where it is, and
                // nothing more reaches the journal. Leaving `block_on` at once and dropping
                // the runtime drops the journal writer with whatever it had queued but not
                // yet written, as a real kill would.
                task.abort();
                Ok(Killed::At(kill.expect("the kill switch sends where it fired")))
            }
            finished = &mut task => match finished {
                Ok(Ok((_, report))) if report.succeeded() => Ok(Killed::Missed { k, points }),
                other => Err(format!("the apply to be killed ended on its own: {other:?}")),
            }
        }
    });
    // Let the blocked hooks die, then wait for every task of the dead run to end.
    switch.release();
    drop(rt);
    *armed.lock().expect("armed mutex") = None;
    outcome.map_err(TestCaseError::fail)
}

/// Property 4: recovery after a kill, then properties 1 and 2.
fn recover_and_check(h: &Harness, model: &Model, kill: &Kill, exec: &ExecuteOptions) -> Result<(), TestCaseError> {
    let rt = runtime();
    // The journal of the dead run replays over the snapshot and surfaces the call it was
    // in the middle of.
    let (snap, replayed) = rt.block_on(h.store().load()).expect("state loads");
    prop_assert!(replayed, "the journal of the killed run was not replayed");
    let steps = match kill.op {
        "update" => vec![StepKind::Update],
        "delete" => vec![StepKind::Delete, StepKind::DeleteReplaced],
        _ => vec![StepKind::Create, StepKind::CreateReplacement],
    };
    prop_assert!(
        snap.pending
            .iter()
            .any(|p| p.address.as_str() == kill.address && steps.contains(&p.step)),
        "the interrupted call ({kill:?}) is not pending: {:?}",
        snap.pending
    );
    let plan = rt.block_on(h.plan(|s, p| model.define(s, p)));
    prop_assert!(
        !plan.pending.is_empty() && !plan.warnings.is_empty(),
        "plan does not surface it"
    );

    // As a user would: break the dead run's lock, then apply from a fresh session.
    let session = h.session(|s, p| model.define(s, p)).expect("a valid program");
    let holder = rt.block_on(session.state_unlock(true)).expect("unlock");
    prop_assert!(holder.is_some(), "the killed run left no lock");
    let session = h.session(|s, p| model.define(s, p)).expect("a valid program");
    let (recovered, report) = rt.block_on(async {
        let locked = session.lock_for("apply").await.expect("lock and recover");
        let recovered = locked.recovered.clone();
        let plan = session
            .plan_locked(&locked, &PlanOptions::default())
            .await
            .expect("plan");
        let report = session.apply(&plan, locked, exec).await.expect("apply");
        (recovered, report)
    });
    prop_assert!(report.succeeded(), "apply after the kill failed: {report:?}");
    prop_assert!(
        recovered.iter().any(|m| m.starts_with(&format!("{}:", kill.address))),
        "nothing was resolved for {}: {recovered:?}",
        kill.address
    );
    let snap = rt.block_on(h.snapshot());
    if let Some(made) = &kill.made {
        // The object the dead create made is the one kept: adopted, not made again.
        let kept = snap
            .resources
            .get(&kill.address.parse().expect("an address"))
            .map(|r| r.id.clone());
        prop_assert!(
            kept.as_ref() == Some(made),
            "`{}`: the object the killed create made ({made}) was not adopted; state has {kept:?}; recovery said {recovered:?}; world: {:#?}",
            kill.address,
            h.world.objects()
        );
    }
    let context =
        |e: TestCaseError| TestCaseError::fail(format!("after the kill {kill:?} and recovery {recovered:?}: {e}"));
    check_no_changes(&rt, h, model).map_err(context)?;
    check_state_is_world(&snap, &h.world, model).map_err(context)
}

// ---------------------------------------------------------------------------------------
// The properties.

/// One case of property 4: rounds before `kill_round` apply normally, the apply of round
/// `kill_round` (or, when it has no provider call, of the first later round that has one)
/// dies at its `kill_seed`-th kill point and is recovered, later rounds apply normally, and
/// everything is destroyed at the end. Returns where the kill landed; `None` only when no
/// round from `kill_round` on had a provider call to kill. An apply that makes its calls
/// without the switch firing fails the case.
fn killed_case(
    initial: &[(u32, Vec<Pick>)],
    rounds: &[Vec<Edit>],
    kill_round: usize,
    kill_seed: usize,
    parallelism: usize,
) -> Result<Option<Kill>, TestCaseError> {
    killed_case_with(initial, rounds, kill_round, kill_seed, parallelism, Switch::Installed)
}

fn killed_case_with(
    initial: &[(u32, Vec<Pick>)],
    rounds: &[Vec<Edit>],
    kill_round: usize,
    kill_seed: usize,
    parallelism: usize,
    installed: Switch,
) -> Result<Option<Kill>, TestCaseError> {
    let rt = runtime();
    let exec = exec(parallelism);
    let (h, armed) = killable_harness();
    let mut model = Model::initial(initial);
    let kill_round = kill_round % (rounds.len() + 1);
    let mut landed = None;
    for round in 0..=rounds.len() {
        if round > 0 {
            for e in &rounds[round - 1] {
                model.apply_edit(e);
            }
        }
        if round < kill_round || landed.is_some() {
            apply_and_check(&rt, &h, &model, &exec)?;
            continue;
        }
        match apply_and_kill(&h, &armed, &model, kill_seed, &exec, installed)? {
            Killed::At(kill) => {
                recover_and_check(&h, &model, &kill, &exec)?;
                landed = Some(kill);
            }
            // Nothing to kill in this round (nothing was applied): the next round is killed.
            Killed::NoWork => check_applied(&rt, &h, &model)?,
            Killed::Missed { k, points } => {
                return Err(TestCaseError::fail(format!(
                    "round {round}: the kill switch never fired: the apply passed its kill points \
                     (armed at {k} of {points}) and finished, so this case proves only that a \
                     plain apply converges"
                )));
            }
        }
    }
    destroy_and_check(&rt, &h)?;
    Ok(landed)
}

proptest! {
    // No failure persistence: a regressions file would be written next to this one.
    #![proptest_config(ProptestConfig { cases: 32, failure_persistence: None, ..ProptestConfig::default() })]

    /// Properties 1 to 3 over a random graph and random rounds of edits.
    #[test]
    fn apply_converges_and_state_matches_the_world(
        initial in initial_graph(),
        rounds in rounds(),
        parallelism in parallelism(),
    ) {
        let rt = runtime();
        let exec = exec(parallelism);
        let h = Harness::new();
        let mut model = Model::initial(&initial);
        apply_and_check(&rt, &h, &model, &exec)?;
        for edits in &rounds {
            for e in edits {
                model.apply_edit(e);
            }
            apply_and_check(&rt, &h, &model, &exec)?;
        }
        destroy_and_check(&rt, &h)?;
    }

    /// Property 4: in one random round, the apply is killed at a random provider
    /// operation; an apply from a fresh session then converges.
    #[test]
    fn a_killed_apply_converges_on_the_next_apply(
        initial in initial_graph(),
        rounds in rounds(),
        kill_round in 0usize..5,
        kill_seed in 0usize..64,
        parallelism in parallelism(),
    ) {
        let kill = killed_case(&initial, &rounds, kill_round, kill_seed, parallelism)?;
        // A case with no provider call to kill proves nothing about kills: not counted.
        prop_assume!(kill.is_some(), "no round from the kill round on has a provider call");
    }

    /// The kill checks above cannot pass without kills: with the kill switch left out,
    /// every case that has a provider call to kill fails.
    #[test]
    fn without_the_kill_switch_a_killed_case_fails(
        initial in initial_graph(),
        rounds in rounds(),
        kill_round in 0usize..5,
        kill_seed in 0usize..64,
        parallelism in parallelism(),
    ) {
        match killed_case_with(&initial, &rounds, kill_round, kill_seed, parallelism, Switch::LeftOut) {
            Err(e) => prop_assert!(e.to_string().contains("the kill switch never fired"), "{e}"),
            Ok(None) => prop_assume!(false, "no provider call to kill"),
            Ok(Some(kill)) => prop_assert!(false, "a kill landed with the switch left out: {kill:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// The minimal cases property 4 shrinks to, kept as plain tests (serial, so deterministic).

/// The kill of a case that must have landed: `op` of `r0`, before or after the cloud did it.
fn landed(r: Result<Option<Kill>, TestCaseError>, op: &str, after: bool) {
    let kill = r.unwrap_or_else(|e| panic!("{e}"));
    let kill = kill.expect("the kill landed");
    assert_eq!(
        (kill.op, kill.after, kill.address.as_str()),
        (op, after, "r0"),
        "where the kill landed: {kill:?}"
    );
}

/// The first apply of a new stack dies right after the cloud made its only object.
#[test]
fn a_first_apply_killed_after_a_create_is_recovered() {
    landed(killed_case(&[(0, vec![])], &[], 0, 1, 1), "create", true);
}

/// A create-before-delete replacement (its `name` changed) dies before the cloud made
/// the new object (`kill_seed` 0) or right after (`kill_seed` 1).
#[test]
fn a_replacement_killed_before_its_create_is_recovered() {
    landed(
        killed_case(&[(0, vec![])], &[vec![Edit::Rename(0)]], 1, 0, 1),
        "create",
        false,
    );
}

#[test]
fn a_replacement_killed_after_its_create_is_recovered() {
    landed(
        killed_case(&[(0, vec![])], &[vec![Edit::Rename(0)]], 1, 1, 1),
        "create",
        true,
    );
}

/// The three cases above with the kill switch left out (the defect put back): each fails,
/// saying the switch never fired, instead of passing as a plain apply.
#[test]
fn without_the_kill_switch_the_regression_cases_fail() {
    let cases: [(&[Vec<Edit>], usize, usize); 3] = [
        (&[], 0, 1),
        (&[vec![Edit::Rename(0)]], 1, 0),
        (&[vec![Edit::Rename(0)]], 1, 1),
    ];
    for (rounds, kill_round, kill_seed) in cases {
        let r = killed_case_with(&[(0, vec![])], rounds, kill_round, kill_seed, 1, Switch::LeftOut);
        match r {
            Err(e) => assert!(e.to_string().contains("the kill switch never fired"), "{e}"),
            Ok(kill) => panic!("passed without the kill switch (kill {kill:?})"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Renames by alias.

/// `model`'s program with each slot in `renamed` at `n<i>` (alias `r<i>`'s address), and
/// everything under the component `outer` (renamed from `old_outer` when given).
fn define_renamed(
    model: &Model,
    s: &mut spar::Stack,
    p: &Arc<FakeProvider>,
    renamed: &BTreeSet<usize>,
    outer: &str,
    old_outer: Option<&str>,
) -> spar::Result<()> {
    let body = |s: &mut spar::Stack| -> spar::Result<()> {
        let mut handles: Vec<Option<Handle<FakeResource>>> = vec![None; SLOTS];
        for (i, n) in model.slots.iter().enumerate() {
            let Some(n) = n else { continue };
            let mut r = FakeResource::new(p)
                .set("name", format!("{}-{}", address(i), n.name))
                .set("size", n.size);
            for &d in &n.deps {
                let h = handles[d].as_ref().expect("lower slots are declared first");
                r = r.set_output(&format!("dep{d}"), &h.arn());
            }
            let mut options = if n.delete_first {
                ResourceOptions::new().delete_before_replace(true)
            } else {
                ResourceOptions::new()
            };
            let name = if renamed.contains(&i) {
                // The old address, under the old component name.
                options = options.alias(&format!("{}/{}", old_outer.unwrap_or(outer), address(i)));
                format!("n{i}")
            } else {
                address(i)
            };
            handles[i] = Some(s.add_with(&name, r, options)?);
        }
        Ok(())
    };
    match old_outer {
        Some(old) => s.component_with_alias(outer, old, body),
        None => s.component(outer, body),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, failure_persistence: None, ..ProptestConfig::default() })]

    /// Renames expressed as aliases (of resources, of their component, or both) move
    /// state: the plan moves each renamed resource and changes nothing else, the apply
    /// makes no provider call at all, and state then holds the same ids at the new
    /// addresses, with a fresh plan empty.
    #[test]
    fn renames_by_alias_make_no_provider_call(
        initial in initial_graph(),
        renamed in prop::collection::btree_set(0usize..MAX_INITIAL, 0..10),
        rename_component in any::<bool>(),
        parallelism in parallelism(),
    ) {
        let rt = runtime();
        let h = Harness::new();
        let model = Model::initial(&initial);
        let none = BTreeSet::new();
        let (_, report) = rt.block_on(h.apply_with(
            |s, p| define_renamed(&model, s, p, &none, "c0", None),
            &PlanOptions::default(),
            &exec(parallelism),
        ));
        prop_assert!(report.succeeded());
        let before: BTreeMap<String, String> = rt
            .block_on(h.snapshot())
            .resources
            .values()
            .map(|r| (r.address.to_string(), r.id.clone()))
            .collect();
        let renamed: BTreeSet<usize> = renamed.into_iter().filter(|i| model.slots[*i].is_some()).collect();
        let outer = if rename_component { "c1" } else { "c0" };
        let old_outer = rename_component.then_some("c0");
        let program = |s: &mut spar::Stack, p: &Arc<FakeProvider>| define_renamed(&model, s, p, &renamed, outer, old_outer);
        let new_address = |old: &str| {
            let name = old.trim_start_matches("c0/");
            let i: usize = name.trim_start_matches('r').parse().unwrap();
            let name = if renamed.contains(&i) { format!("n{i}") } else { name.to_string() };
            format!("{outer}/{name}")
        };

        let plan = rt.block_on(h.plan(program));
        prop_assert!(not_same(&plan).is_empty(), "a rename changes nothing: {:?}", not_same(&plan));
        let moved = plan.changes.iter().filter(|c| c.moved_from.is_some()).count();
        let expected_moves = if rename_component { before.len() } else { renamed.len() };
        prop_assert_eq!(moved, expected_moves);

        h.world.clear_calls();
        let (_, report) = rt.block_on(h.apply_with(program, &PlanOptions::default(), &exec(parallelism)));
        prop_assert!(report.succeeded());
        let calls = h.world.calls();
        prop_assert!(calls.is_empty(), "no provider call for a rename: {:?}", calls);
        let after: BTreeMap<String, String> = rt
            .block_on(h.snapshot())
            .resources
            .values()
            .map(|r| (r.address.to_string(), r.id.clone()))
            .collect();
        let expected: BTreeMap<String, String> = before.iter().map(|(a, id)| (new_address(a), id.clone())).collect();
        prop_assert_eq!(after, expected);
        let plan = rt.block_on(h.plan(program));
        prop_assert!(!plan.has_changes(), "a fresh plan is empty: {:?}", plan.changes);
    }
}
