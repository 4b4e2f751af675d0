//! Engine benchmarks on synthetic graphs, run with `cargo bench --bench engine`
//! (add `-- --json` for machine-readable output). See docs/BENCHMARKS.md for results.
//!
//! 1. `plan` (no refresh) of 10,000 and 100,000 resources against a matching state (every
//!    change is `Same`): program define time, `Session::plan` time (load, checksum, decrypt
//!    and diff) with a split of where it goes, and the peak RSS of a process that does only
//!    that (each size runs in its own child process: this binary re-executed): `VmHWM`
//!    after the define and all the timed plans, with the live heap of each stage counted by
//!    a counting global allocator.
//! 2. `apply` of 1,000 resources in a seeded random DAG, 20 ms per provider call,
//!    parallelism 16: wall time over the lower bound max(longest path x 20 ms, total work /
//!    16), median of several runs, with the schedules an ideal executor would reach.
//! 3. Bytes written to state during an apply that creates n resources, over the size of the
//!    final snapshot, for n = 1,000 and 10,000.
//!
//! Only spar's public API is used. Every case runs in a child process (`--child CASE ..`)
//! that prints one `SPAR_BENCH_RESULT {json}` line; the parent prints the table.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use spar::apply::ExecuteOptions;
use spar::model::config::StackConfig;
use spar::ops::Session;
use spar::plan::Op;
use spar::plan::diff::{PlanOptions, resolve_from_state};
use spar::provider::{Registry, Schema};
use spar::secrets::SecretKey;
use spar::state::{
    HistoryEntry, LocalBackend, LockInfo, ResourceState, Snapshot, StateBackend, StateError, StateStore, StoredOptions,
};
use spar::testing::{FakeProvider, FakeResource, FakeWorld};
use spar::value::{self, Resolved};
use spar::{Handle, Secret, Stack};

const RESULT_PREFIX: &str = "SPAR_BENCH_RESULT ";
const KIND: &str = "fake:Thing";

/// Seed of the realistic graphs of benchmarks 1 and 3.
const GRAPH_SEED: u64 = 0x5EED_0001;
/// Resources per component in the realistic graphs.
const PER_COMPONENT: usize = 100;

/// Benchmark 2's DAG: 1,000 nodes, each depending on 0-3 distinct nodes among the 48 before
/// it; with this seed its longest path is 62 nodes (1.24 s at 20 ms), as long as the work
/// bound (1,000 x 20 ms / 16 = 1.25 s), so both terms of the lower bound matter.
const DAG_NODES: usize = 1000;
const DAG_WINDOW: usize = 48;
const DAG_SEED: u64 = 2;
const DAG_LATENCY: Duration = Duration::from_millis(20);
const DAG_PARALLELISM: usize = 16;

// ---------------------------------------------------------------------------------------
// Heap accounting: the system allocator, counting live bytes while a window is open (so the
// timed runs pay one relaxed load per allocation and nothing else).

struct CountingAlloc;

static COUNTING: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicI64 = AtomicI64::new(0);
static PEAK: AtomicI64 = AtomicI64::new(0);

fn count(delta: i64) {
    if COUNTING.load(Ordering::Relaxed) {
        let now = LIVE.fetch_add(delta, Ordering::Relaxed) + delta;
        PEAK.fetch_max(now, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is the system allocator's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            count(layout.size() as i64);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            count(layout.size() as i64);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) };
        count(-(layout.size() as i64));
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            count(new_size as i64 - layout.size() as i64);
        }
        p
    }
}

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// Runs `f` with heap accounting on: its result, the net change of live heap bytes (what
/// the result and anything else kept holds) and the peak above the start.
fn heap<T>(f: impl FnOnce() -> T) -> (T, i64, i64) {
    LIVE.store(0, Ordering::Relaxed);
    PEAK.store(0, Ordering::Relaxed);
    COUNTING.store(true, Ordering::Relaxed);
    let r = f();
    COUNTING.store(false, Ordering::Relaxed);
    (r, LIVE.load(Ordering::Relaxed), PEAK.load(Ordering::Relaxed))
}

// ---------------------------------------------------------------------------------------
// Small helpers.

/// SplitMix64: a tiny seeded generator whose sequence never changes with a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next()) * n as u128) >> 64) as usize
    }
}

fn key() -> SecretKey {
    SecretKey::from_bytes(&[42; 32], "bench key".into()).expect("a 32-byte key")
}

/// The fake kind every benchmark uses: `name` forces replacement, `echo.password` (the
/// fake echoes its inputs as outputs) is a secret output.
fn fake_provider(world: Arc<FakeWorld>, latency: Duration) -> Arc<FakeProvider> {
    Arc::new(
        FakeProvider::new(KIND, world)
            .schema(Schema::new().replace_on(&["name"]).secret_outputs(&["echo.password"]))
            .latency(latency),
    )
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn time<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let t = Instant::now();
    let r = f();
    (r, t.elapsed())
}

/// Seconds this process's threads have spent on a CPU and waiting for one (in a run queue,
/// behind other processes), summed over its threads (`/proc/self/task/*/schedstat`).
fn sched_s() -> (f64, f64) {
    let mut cpu = 0u64;
    let mut wait = 0u64;
    for task in std::fs::read_dir("/proc/self/task").into_iter().flatten().flatten() {
        let text = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
        let mut fields = text.split_whitespace().map(|x| x.parse::<u64>().unwrap_or(0));
        cpu += fields.next().unwrap_or(0);
        wait += fields.next().unwrap_or(0);
    }
    (cpu as f64 / 1e9, wait as f64 / 1e9)
}

/// Like [`time`], with the CPU time and run-queue wait of the process over the same span.
fn time_sched<T>(f: impl FnOnce() -> T) -> (T, Duration, f64, f64) {
    let (cpu0, wait0) = sched_s();
    let (r, t) = time(f);
    let (cpu1, wait1) = sched_s();
    (r, t, cpu1 - cpu0, wait1 - wait0)
}

/// `VmHWM` and `VmRSS` of this process, in KiB.
fn memory_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// Resets this process's peak RSS to its current RSS (Linux `clear_refs` 5); false if the
/// kernel refused.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn multi_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

// ---------------------------------------------------------------------------------------
// A backend that counts what goes to disk, over the local one.

#[derive(Default)]
struct Counts {
    snapshot_writes: AtomicU64,
    snapshot_bytes: AtomicU64,
    journal_resets: AtomicU64,
    journal_appends: AtomicU64,
    journal_bytes: AtomicU64,
    /// Nanoseconds spent in `load_snapshot` and `read_journal`: the parts of
    /// `StateStore::load` that are the backend's, timed inside the load itself.
    load_snapshot_ns: AtomicU64,
    read_journal_ns: AtomicU64,
}

struct CountingBackend {
    inner: Arc<LocalBackend>,
    counts: Arc<Counts>,
}

impl CountingBackend {
    fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }
}

#[async_trait::async_trait]
impl StateBackend for CountingBackend {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    async fn read_snapshot(&self) -> Result<Option<Vec<u8>>, StateError> {
        self.inner.read_snapshot().await
    }
    async fn load_snapshot(&self, source: &str) -> Result<Option<Snapshot>, StateError> {
        let t = Instant::now();
        let r = self.inner.load_snapshot(source).await;
        Self::add(&self.counts.load_snapshot_ns, t.elapsed().as_nanos() as usize);
        r
    }
    async fn write_snapshot(&self, bytes: &[u8], serial: u64) -> Result<(), StateError> {
        Self::add(&self.counts.snapshot_writes, 1);
        Self::add(&self.counts.snapshot_bytes, bytes.len());
        self.inner.write_snapshot(bytes, serial).await
    }
    async fn read_journal(&self) -> Result<Option<Vec<u8>>, StateError> {
        let t = Instant::now();
        let r = self.inner.read_journal().await;
        Self::add(&self.counts.read_journal_ns, t.elapsed().as_nanos() as usize);
        r
    }
    async fn reset_journal(&self, header: &[u8]) -> Result<(), StateError> {
        Self::add(&self.counts.journal_resets, 1);
        Self::add(&self.counts.journal_bytes, header.len());
        self.inner.reset_journal(header).await
    }
    async fn append_journal(&self, bytes: &[u8]) -> Result<(), StateError> {
        Self::add(&self.counts.journal_appends, 1);
        Self::add(&self.counts.journal_bytes, bytes.len());
        self.inner.append_journal(bytes).await
    }
    async fn clear_journal(&self) -> Result<(), StateError> {
        self.inner.clear_journal().await
    }
    async fn lock(&self, info: &LockInfo) -> Result<(), StateError> {
        self.inner.lock(info).await
    }
    async fn unlock(&self, id: &str) -> Result<(), StateError> {
        self.inner.unlock(id).await
    }
    async fn read_lock(&self) -> Result<Option<LockInfo>, StateError> {
        self.inner.read_lock().await
    }
    async fn force_unlock(&self) -> Result<Option<LockInfo>, StateError> {
        self.inner.force_unlock().await
    }
    async fn history(&self) -> Result<Vec<HistoryEntry>, StateError> {
        self.inner.history().await
    }
    async fn read_history(&self, name: &str) -> Result<Vec<u8>, StateError> {
        self.inner.read_history(name).await
    }
    fn bytes_written(&self) -> u64 {
        self.inner.bytes_written()
    }
}

/// State under `dir/state`: the local backend, and a store over a counting wrapper of it.
fn state_at(dir: &Path) -> (Arc<LocalBackend>, Arc<Counts>, StateStore) {
    let local = Arc::new(LocalBackend::new(dir.join("state")));
    let counts = Arc::new(Counts::default());
    let backend = CountingBackend {
        inner: local.clone(),
        counts: counts.clone(),
    };
    (local, counts, StateStore::new(Arc::new(backend), key()))
}

// ---------------------------------------------------------------------------------------
// Synthetic programs.

/// Runs a program's define step: returns the validated graph and registry.
fn define(
    dir: &Path,
    provider: &Arc<FakeProvider>,
    body: impl FnOnce(&mut Stack) -> spar::Result<()>,
) -> (spar::graph::DesiredGraph, Registry) {
    let mut stack = Stack::new("bench", "dev", StackConfig::empty(dir.join("dev.toml")));
    stack.register_kind(provider.clone());
    body(&mut stack).expect("the synthetic program defines");
    stack.into_graph().expect("the synthetic graph is valid")
}

/// `n` resources in components of 100, each with a few strings, a number, a flag, a tags
/// map, a secret on every tenth, and 1-3 output references to earlier resources (half to
/// one of the 64 before it, half to any earlier one): an arn, an id, a nested output.
fn realistic(stack: &mut Stack, p: &Arc<FakeProvider>, n: usize) -> spar::Result<()> {
    const REGIONS: [&str; 3] = ["eu-west-1", "us-east-1", "ap-southeast-2"];
    let mut rng = Rng(GRAPH_SEED);
    let mut handles: Vec<Handle<FakeResource>> = Vec::with_capacity(n);
    let mut start = 0;
    while start < n {
        let end = (start + PER_COMPONENT).min(n);
        stack.component(&format!("svc-{:04}", start / PER_COMPONENT), |s| {
            for j in start..end {
                let tags = BTreeMap::from([
                    ("env", "bench".to_string()),
                    ("team", format!("team-{}", j % 13)),
                    ("cost-center", format!("cc-{}", j % 101)),
                    ("spar:index", j.to_string()),
                ]);
                let mut r = FakeResource::new(p)
                    .set("name", format!("res-{j}"))
                    .set("region", REGIONS[j % REGIONS.len()])
                    .set(
                        "description",
                        format!("synthetic resource {j} of the spar benchmark graph"),
                    )
                    .set("size", j % 7 + 1)
                    .set("enabled", j % 5 != 0)
                    .set("tags", tags);
                if j % 10 == 0 {
                    r = r.set("password", Secret::new(format!("pw-{j}")));
                }
                let refs = if j == 0 { 0 } else { 1 + rng.below(3) };
                for slot in 0..refs {
                    let t = if rng.below(2) == 0 {
                        j - 1 - rng.below(j.min(64))
                    } else {
                        rng.below(j)
                    };
                    let h = &handles[t];
                    r = match slot {
                        0 => r.set_output("subnet_arn", &h.arn()),
                        1 => r.set_output("parent_id", &h.id()),
                        _ => r.set_output("peer_region", &h.output::<String>("echo.region")),
                    };
                }
                handles.push(s.add(&format!("res-{j}"), r)?);
            }
            Ok(())
        })?;
        start = end;
    }
    Ok(())
}

/// Benchmark 2's DAG as dependency lists: node `i` depends on 0-3 distinct nodes among the
/// `window` before it.
fn random_dag(n: usize, window: usize, seed: u64) -> Vec<Vec<usize>> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|i| {
            let k = rng.below(4);
            let mut deps = BTreeSet::new();
            for _ in 0..k {
                if i == 0 {
                    break;
                }
                deps.insert(i - 1 - rng.below(i.min(window)));
            }
            deps.into_iter().collect()
        })
        .collect()
}

fn dag_program(stack: &mut Stack, p: &Arc<FakeProvider>, deps: &[Vec<usize>]) -> spar::Result<()> {
    let mut handles: Vec<Handle<FakeResource>> = Vec::with_capacity(deps.len());
    for (i, ds) in deps.iter().enumerate() {
        let mut r = FakeResource::new(p)
            .set("name", format!("node-{i}"))
            .set("tags", BTreeMap::from([("env", "bench")]));
        for (k, &d) in ds.iter().enumerate() {
            r = r.set_output(&format!("dep_{k}"), &handles[d].arn());
        }
        handles.push(stack.add(&format!("node-{i:04}"), r)?);
    }
    Ok(())
}

/// Nodes on the longest path.
fn longest_path(deps: &[Vec<usize>]) -> usize {
    let mut depth = vec![0usize; deps.len()];
    for (i, ds) in deps.iter().enumerate() {
        depth[i] = 1 + ds.iter().map(|&d| depth[d]).max().unwrap_or(0);
    }
    depth.into_iter().max().unwrap_or(0)
}

/// The makespan, in operations, of an executor with zero overhead and `p` slots where every
/// operation takes one unit: with `critical_first`, ready nodes start longest remaining
/// path first; otherwise in the order they became ready (what spar's executor does).
fn simulate(deps: &[Vec<usize>], p: usize, critical_first: bool) -> u64 {
    let n = deps.len();
    let mut dependents = vec![Vec::new(); n];
    for (i, ds) in deps.iter().enumerate() {
        for &d in ds {
            dependents[d].push(i);
        }
    }
    let mut level = vec![1u64; n];
    for i in (0..n).rev() {
        level[i] = 1 + dependents[i].iter().map(|&d| level[d]).max().unwrap_or(0);
    }
    let mut waiting: Vec<usize> = deps.iter().map(Vec::len).collect();
    // Ready queue: FIFO, or by (longest remaining path, then index).
    let mut fifo: VecDeque<usize> = VecDeque::new();
    let mut heap: std::collections::BinaryHeap<(u64, std::cmp::Reverse<usize>)> = Default::default();
    let push = |i: usize, fifo: &mut VecDeque<usize>, heap: &mut std::collections::BinaryHeap<_>| {
        if critical_first {
            heap.push((level[i], std::cmp::Reverse(i)));
        } else {
            fifo.push_back(i);
        }
    };
    for i in (0..n).filter(|&i| waiting[i] == 0) {
        push(i, &mut fifo, &mut heap);
    }
    // Running: (finish time, index), earliest first.
    let mut running: std::collections::BinaryHeap<std::cmp::Reverse<(u64, usize)>> = Default::default();
    let (mut now, mut done) = (0u64, 0usize);
    while done < n {
        while running.len() < p {
            let next = if critical_first {
                heap.pop().map(|(_, std::cmp::Reverse(i))| i)
            } else {
                fifo.pop_front()
            };
            let Some(i) = next else { break };
            running.push(std::cmp::Reverse((now + 1, i)));
        }
        let std::cmp::Reverse((t, i)) = running.pop().expect("a DAG always has a runnable node");
        now = t;
        done += 1;
        for &d in &dependents[i] {
            waiting[d] -= 1;
            if waiting[d] == 0 {
                push(d, &mut fifo, &mut heap);
            }
        }
    }
    now
}

/// The snapshot a zero-latency apply of `graph` would leave: inputs resolved in
/// topological order, the fake's outputs (`arn`, and its inputs echoed), ids `fake-<i>`.
fn matching_snapshot(graph: &spar::graph::DesiredGraph) -> Snapshot {
    let mut snap = Snapshot::empty();
    let secret_outputs = [value::Path::parse("echo.password")];
    for (i, r) in graph.resources.iter().enumerate() {
        let inputs = {
            let lookup = |a: &spar::Address, path: &str| match snap.get(a) {
                Some(s) => resolve_from_state(s, a, path),
                None => Ok(Resolved::Unknown),
            };
            value::resolve(&r.inputs, &lookup, &graph.transforms).expect("inputs resolve")
        };
        assert!(!value::contains_unknown(&inputs), "{} has unknown inputs", r.address);
        let id = format!("fake-{i}");
        let mut outputs = json!({"arn": format!("arn:fake:{}:{id}", r.kind), "echo": value::strip_secrets(&inputs)});
        value::mark_secret_paths(&mut outputs, &secret_outputs);
        snap.upsert(ResourceState {
            address: r.address.clone(),
            kind: r.kind.clone(),
            id,
            inputs,
            outputs,
            dependencies: r.dependencies.clone(),
            provider: r.kind.split(':').next().unwrap_or_default().to_string(),
            options: StoredOptions::default(),
            unfinished: None,
        });
    }
    snap
}

// ---------------------------------------------------------------------------------------
// Child cases.

/// Writes the state matching the `n`-resource program under `dir`.
fn child_plan_prep(n: usize, dir: &Path) -> Value {
    let rt = current_thread_runtime();
    let provider = fake_provider(FakeWorld::new(), Duration::ZERO);
    let t = Instant::now();
    let (graph, _) = define(dir, &provider, |s| realistic(s, &provider, n));
    let mut snap = matching_snapshot(&graph);
    let (local, _, store) = state_at(dir);
    rt.block_on(store.save(&mut snap)).expect("the state saves");
    let bytes = std::fs::metadata(local.snapshot_path()).map(|m| m.len()).unwrap_or(0);
    json!({"prep_s": secs(t.elapsed()), "state_bytes": bytes})
}

/// Plans the `n`-resource program against the state under `dir`: define time, plan time
/// (median of `runs`), peak RSS, and (`split_reps` times) the split of one plan into its
/// parts and where its memory goes.
fn child_plan(n: usize, dir: &Path, runs: usize, split_reps: usize) -> Value {
    let rt = current_thread_runtime();
    let (hwm_start, _) = memory_kib();

    // The program's define step: what a stack binary does before `plan`.
    let provider = fake_provider(FakeWorld::new(), Duration::ZERO);
    let ((graph, registry), define_t) = time(|| define(dir, &provider, |s| realistic(s, &provider, n)));
    let (hwm_define, rss_define) = memory_kib();
    let reset = reset_peak_rss();

    let (local, counts, store) = state_at(dir);
    let session = Session {
        program: "bench".into(),
        stack: "dev".into(),
        graph,
        registry,
        store,
        lookup_checks: Vec::new(),
        waived: Vec::new(),
    };
    let opts = PlanOptions::default();
    let mut plan_times = Vec::new();
    let mut plan_cpu = Vec::new();
    let mut plan_wait = Vec::new();
    let mut hwm_first_plan = 0;
    for run in 0..runs.max(1) {
        let (plan, t, cpu, wait) = time_sched(|| rt.block_on(session.plan(&opts, false)).expect("the plan succeeds"));
        plan_times.push(secs(t));
        plan_cpu.push(cpu);
        plan_wait.push(wait);
        assert_eq!(plan.changes.len(), n, "one change per resource");
        let not_same = plan.changes.iter().filter(|c| c.op != Op::Same).count();
        assert_eq!(not_same, 0, "the state matches the program, so every change is Same");
        if run == 0 {
            hwm_first_plan = memory_kib().0;
        }
    }
    // The peak over every timed plan (a later plan can overlap the freeing of the one
    // before it, which `Session::plan` hands to another thread), read before the split and
    // the heap accounting below allocate more.
    let hwm_plan = memory_kib().0;

    // Where one plan's time goes (each part timed on its own, median of 3); `split` 0 skips
    // this and the memory accounting below (for profiling the plan alone).
    if split_reps == 0 {
        return json!({"n": n, "define_s": secs(define_t), "plan_s": plan_times, "plan_median_s": median(&plan_times),
            "plan_cpu_s": plan_cpu, "plan_runqueue_wait_s": plan_wait});
    }
    let reps = split_reps;
    let mut split: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let snapshot_path = local.snapshot_path();
    let decode_file = || {
        Snapshot::decode_file(&snapshot_path, "snapshot.json")
            .expect("the snapshot decodes")
            .expect("a snapshot exists")
    };
    let ns = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64 / 1e9;
    for _ in 0..reps {
        // The other backends' path (S3: the whole file read, then decoded), for comparison;
        // `load` on this local backend does not take it.
        let (bytes, t) = time(|| std::fs::read(&snapshot_path).expect("the snapshot reads"));
        split.entry("read_s").or_default().push(secs(t));
        let (decoded, t) = time(|| Snapshot::decode(&bytes, "snapshot.json").expect("the snapshot decodes"));
        split.entry("in_memory_decode_s").or_default().push(secs(t));
        drop((decoded, bytes));
        // `load`, and inside it the backend's part, timed within the same call: the decode
        // (`LocalBackend::load_snapshot`: the file streamed through the checksum and decoded
        // as it is read) and the look for a journal; the rest is the decrypt walk.
        let (decode0, journal0) = (ns(&counts.load_snapshot_ns), ns(&counts.read_journal_ns));
        let ((snap, _), t) = time(|| rt.block_on(session.store.load()).expect("the state loads"));
        let decode = ns(&counts.load_snapshot_ns) - decode0;
        let journal = ns(&counts.read_journal_ns) - journal0;
        split.entry("load_s").or_default().push(secs(t));
        split.entry("load_decode_s").or_default().push(decode);
        split.entry("load_journal_s").or_default().push(journal);
        split.entry("load_open_s").or_default().push(secs(t) - decode - journal);
        let (plan, t) = time(|| {
            spar::plan::diff::plan("bench", "dev", &session.graph, &snap, &session.registry, &opts)
                .expect("the diff succeeds")
        });
        split.entry("diff_s").or_default().push(secs(t));
        let (_, t) = time(|| session.graph.fingerprint());
        split.entry("graph_fingerprint_s").or_default().push(secs(t));
        let (_, t) = time(|| drop(plan));
        split.entry("drop_plan_s").or_default().push(secs(t));
        let (_, t) = time(|| drop(snap));
        split.entry("drop_snapshot_s").or_default().push(secs(t));
    }
    let split: BTreeMap<&str, f64> = split.into_iter().map(|(k, v)| (k, median(&v))).collect();

    // Where the memory goes: live heap bytes kept (net) and the peak above the start of each
    // stage, counted by the allocator (independent of what malloc keeps from the OS).
    let mib_of = |b: i64| b as f64 / 1048576.0;
    let mut heap_mib: BTreeMap<&str, f64> = BTreeMap::new();
    let (graph2, net, peak) = heap(|| define(dir, &provider, |s| realistic(s, &provider, n)));
    drop(graph2);
    heap_mib.insert("graph_net", mib_of(net));
    heap_mib.insert("graph_peak", mib_of(peak));
    let (decoded, net, peak) = heap(decode_file);
    drop(decoded);
    heap_mib.insert("decoded_net", mib_of(net));
    heap_mib.insert("decode_peak", mib_of(peak));
    // The other backends' in-memory path, for comparison.
    let (bytes, net, _) = heap(|| std::fs::read(&snapshot_path).expect("the snapshot reads"));
    heap_mib.insert("file_bytes", mib_of(net));
    let (decoded, net, peak) = heap(|| Snapshot::decode(&bytes, "snapshot.json").expect("the snapshot decodes"));
    drop((decoded, bytes));
    heap_mib.insert("in_memory_decoded_net", mib_of(net));
    heap_mib.insert("in_memory_decode_peak", mib_of(peak));
    let ((snap, _), net, peak) = heap(|| rt.block_on(session.store.load()).expect("the state loads"));
    heap_mib.insert("loaded_net", mib_of(net));
    heap_mib.insert("load_peak", mib_of(peak));
    let (plan, net, peak) = heap(|| {
        spar::plan::diff::plan("bench", "dev", &session.graph, &snap, &session.registry, &opts).expect("the diff")
    });
    heap_mib.insert("plan_net", mib_of(net));
    heap_mib.insert("diff_peak", mib_of(peak));
    drop((plan, snap));
    let (plan, net, peak) = heap(|| rt.block_on(session.plan(&opts, false)).expect("the plan succeeds"));
    drop(plan);
    heap_mib.insert("session_plan_net", mib_of(net));
    heap_mib.insert("session_plan_peak", mib_of(peak));

    let state_bytes = std::fs::metadata(local.snapshot_path()).map(|m| m.len()).unwrap_or(0);

    json!({
        "n": n,
        "define_s": secs(define_t),
        "plan_s": plan_times,
        "plan_median_s": median(&plan_times),
        "plan_cpu_s": plan_cpu,
        "plan_runqueue_wait_s": plan_wait,
        "split": split,
        "heap_mib": heap_mib,
        "state_bytes": state_bytes,
        "hwm_start_kib": hwm_start,
        "hwm_define_kib": hwm_define,
        "rss_after_define_kib": rss_define,
        "hwm_first_plan_kib": if reset { json!(hwm_first_plan) } else { Value::Null },
        "hwm_plan_kib": if reset { json!(hwm_plan) } else { Value::Null },
        "peak_rss_kib": hwm_define.max(hwm_plan),
    })
}

/// Applies benchmark 2's DAG `runs` times, each into fresh state under `root`.
fn child_apply(root: &Path, runs: usize, latency: Duration) -> Value {
    let rt = multi_thread_runtime();
    let deps = random_dag(DAG_NODES, DAG_WINDOW, DAG_SEED);
    let edges: usize = deps.iter().map(Vec::len).sum();

    // How long the fake's 20 ms delay really takes, 16 at a time.
    let sleep_actual = rt.block_on(async {
        let mut samples = Vec::new();
        for _ in 0..20 {
            let t = Instant::now();
            let sleeps: Vec<_> = (0..DAG_PARALLELISM)
                .map(|_| spar::testing::fixed_delay(latency))
                .collect();
            futures::future::join_all(sleeps).await;
            samples.push(secs(t.elapsed()));
        }
        median(&samples)
    });

    let mut samples = Vec::new();
    for _ in 0..runs.max(1) {
        let dir = tempfile::Builder::new()
            .prefix("spar-bench-apply-")
            .tempdir_in(root)
            .expect("a temp dir");
        let provider = fake_provider(FakeWorld::new(), latency);
        let (graph, registry) = define(dir.path(), &provider, |s| dag_program(s, &provider, &deps));
        let (_, counts, store) = state_at(dir.path());
        let session = Session {
            program: "bench".into(),
            stack: "dev".into(),
            graph,
            registry,
            store,
            lookup_checks: Vec::new(),
            waived: Vec::new(),
        };
        let exec = ExecuteOptions {
            parallelism: DAG_PARALLELISM,
            ..Default::default()
        };
        let ((plan, report), wall, cpu, wait) = time_sched(|| {
            rt.block_on(session.apply_program(&PlanOptions::default(), &exec))
                .expect("the apply runs")
        });
        assert!(report.succeeded(), "every step succeeds");
        assert_eq!(plan.changes.iter().filter(|c| c.op == Op::Create).count(), DAG_NODES);
        let steps: Vec<f64> = report.outcomes.iter().map(|o| secs(o.elapsed)).collect();
        samples.push(json!({
            "wall_s": secs(wall),
            "cpu_s": cpu,
            "runqueue_wait_s": wait,
            "executor_s": secs(report.elapsed),
            "step_mean_s": steps.iter().sum::<f64>() / steps.len() as f64,
            "step_median_s": median(&steps),
            "journal_fsyncs": counts.journal_appends.load(Ordering::Relaxed),
        }));
    }
    json!({
        "nodes": DAG_NODES,
        "edges": edges,
        "window": DAG_WINDOW,
        "seed": DAG_SEED,
        "parallelism": DAG_PARALLELISM,
        "latency_s": secs(latency),
        "longest_path_nodes": longest_path(&deps),
        "sim_fifo_ops": simulate(&deps, DAG_PARALLELISM, false),
        "sim_critical_first_ops": simulate(&deps, DAG_PARALLELISM, true),
        "sleep_actual_s": sleep_actual,
        "root": root.display().to_string(),
        "runs": samples,
    })
}

/// Applies the realistic `n`-resource program into empty state under `dir` and measures
/// the bytes written against the final snapshot.
fn child_bytes(n: usize, dir: &Path) -> Value {
    let rt = multi_thread_runtime();
    let provider = fake_provider(FakeWorld::new(), Duration::ZERO);
    let (graph, registry) = define(dir, &provider, |s| realistic(s, &provider, n));
    let (local, counts, store) = state_at(dir);
    let session = Session {
        program: "bench".into(),
        stack: "dev".into(),
        graph,
        registry,
        store,
        lookup_checks: Vec::new(),
        waived: Vec::new(),
    };
    let ((plan, report), wall) = time(|| {
        rt.block_on(session.apply_program(&PlanOptions::default(), &ExecuteOptions::default()))
            .expect("the apply runs")
    });
    assert!(report.succeeded(), "every step succeeds");
    assert_eq!(plan.changes.iter().filter(|c| c.op == Op::Create).count(), n);
    // The state the apply left matches the program: planning again changes nothing.
    let again = rt
        .block_on(session.plan(&PlanOptions::default(), false))
        .expect("the plan succeeds");
    assert!(
        again.changes.iter().all(|c| c.op == Op::Same),
        "a second plan is all Same"
    );
    let written = local.bytes_written();
    let snapshot = std::fs::metadata(local.snapshot_path()).map(|m| m.len()).unwrap_or(0);
    let c = |a: &AtomicU64| a.load(Ordering::Relaxed);
    json!({
        "n": n,
        "apply_s": secs(wall),
        "bytes_written": written,
        "snapshot_bytes": snapshot,
        "ratio": written as f64 / snapshot as f64,
        "snapshot_writes": c(&counts.snapshot_writes),
        "snapshot_bytes_written": c(&counts.snapshot_bytes),
        "journal_bytes_written": c(&counts.journal_bytes),
        "journal_fsyncs": c(&counts.journal_appends),
        "journal_resets": c(&counts.journal_resets),
    })
}

fn run_child(args: &[String]) -> Value {
    let arg = |i: usize| {
        args.get(i)
            .unwrap_or_else(|| panic!("missing argument {i} for {args:?}"))
    };
    let num = |i: usize| arg(i).parse::<usize>().expect("a number");
    match arg(0).as_str() {
        "plan-prep" => child_plan_prep(num(1), Path::new(arg(2))),
        "plan" => child_plan(num(1), Path::new(arg(2)), num(3), num(4)),
        "apply" => child_apply(
            Path::new(arg(1)),
            num(2),
            Duration::from_millis(arg(3).parse().expect("milliseconds")),
        ),
        "bytes" => child_bytes(num(1), Path::new(arg(2))),
        other => panic!("unknown case {other}"),
    }
}

// ---------------------------------------------------------------------------------------
// The parent: runs each case in a child and prints the table.

fn spawn(args: &[&str]) -> Value {
    let exe = std::env::current_exe().expect("the bench binary's path");
    let out = Command::new(exe)
        .arg("--child")
        .args(args)
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("the child starts");
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        panic!("case {args:?} failed ({}):\n{stdout}", out.status);
    }
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix(RESULT_PREFIX))
        .unwrap_or_else(|| panic!("case {args:?} printed no result:\n{stdout}"));
    serde_json::from_str(line).expect("the child's result is JSON")
}

/// The 1, 5 and 15 minute load averages (other processes compete for the CPUs).
fn loadavg() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|s| s.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|s| s.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    let os = std::fs::read_to_string("/etc/os-release")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME=").map(|s| s.trim_matches('"').to_string()))
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    json!({
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu_model": model,
        "mem_gib": mem_kib as f64 / 1024.0 / 1024.0,
        "os": os,
        "kernel": kernel.trim(),
        "tmpdir": std::env::temp_dir().display().to_string(),
        "loadavg_at_start": loadavg(),
    })
}

struct Options {
    json: bool,
    json_out: Option<String>,
    only: Option<String>,
    apply_runs: usize,
}

fn parse_options(args: &[String]) -> Options {
    let mut o = Options {
        json: false,
        json_out: None,
        only: None,
        apply_runs: 5,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--json" => o.json = true,
            "--json-out" => o.json_out = Some(it.next().cloned().expect("--json-out FILE")),
            "--only" => o.only = it.next().cloned(),
            "--apply-runs" => o.apply_runs = it.next().and_then(|s| s.parse().ok()).expect("--apply-runs N"),
            // cargo bench passes --bench to harness = false targets.
            "--bench" => {}
            "-h" | "--help" => {
                println!(
                    "usage: cargo bench --bench engine [-- [--json] [--json-out FILE] [--only plan|apply|bytes] [--apply-runs N]]"
                );
                std::process::exit(0);
            }
            other => panic!("unknown argument {other} (try --help)"),
        }
    }
    o
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

fn verdict(pass: bool) -> &'static str {
    if pass { "PASS" } else { "FAIL" }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().map(|a| a.iter().map(f).collect()).unwrap_or_default()
}

fn run_plan(results: &mut serde_json::Map<String, Value>, quiet: bool) {
    let mut rows = Vec::new();
    for (n, runs, limit_s, limit_mib) in [(10_000usize, 7usize, 0.3f64, None), (100_000, 3, 3.0, Some(1024.0))] {
        let dir = tempfile::Builder::new()
            .prefix("spar-bench-plan-")
            .tempdir()
            .expect("a temp dir");
        let d = dir.path().display().to_string();
        let prep = spawn(&["plan-prep", &n.to_string(), &d]);
        let mut r = spawn(&["plan", &n.to_string(), &d, &runs.to_string(), "3"]);
        let plan_s = f(&r["plan_median_s"]);
        let peak_mib = mib(u(&r["peak_rss_kib"]));
        let time_ok = plan_s < limit_s;
        let mem_ok = limit_mib.is_none_or(|l| peak_mib < l);
        r["prep"] = prep;
        r["target"] = json!({"plan_s_below": limit_s, "peak_rss_mib_below": limit_mib});
        r["pass"] = json!(time_ok && mem_ok);
        rows.push(r);
    }
    if !quiet {
        println!("\n1. plan (no refresh) against a matching state: every change Same");
        println!(
            "   {:>7} {:>8} {:>10} {:>13} {:>8} {:>8} {:>9} {:>10} {:>10} {:>8}   {:<20} result",
            "size",
            "define",
            "plan",
            "(min..max)",
            "plan",
            "waited",
            "state",
            "RSS after",
            "peak RSS",
            "define",
            "target"
        );
        println!(
            "   {:>7} {:>8} {:>10} {:>13} {:>8} {:>8} {:>9} {:>10} {:>10} {:>8}",
            "", "", "median", "", "CPU", "for CPU", "file", "define", "", "+plan"
        );
        for r in &rows {
            let times = floats(&r["plan_s"]);
            let min = times.iter().copied().fold(f64::INFINITY, f64::min);
            let max = times.iter().copied().fold(0.0, f64::max);
            let plan_s = f(&r["plan_median_s"]);
            let target = match r["target"]["peak_rss_mib_below"].as_f64() {
                Some(m) => format!("< {} s, < {:.0} MiB", f(&r["target"]["plan_s_below"]), m),
                None => format!("< {} s", f(&r["target"]["plan_s_below"])),
            };
            println!(
                "   {:>7} {:>7.3}s {:>9.3}s {:>13} {:>7.3}s {:>7.3}s {:>6.1}MiB {:>7.1}MiB {:>7.1}MiB {:>7.2}s   {:<20} {}",
                u(&r["n"]),
                f(&r["define_s"]),
                plan_s,
                format!("{min:.3}..{max:.3}"),
                median(&floats(&r["plan_cpu_s"])),
                median(&floats(&r["plan_runqueue_wait_s"])),
                u(&r["state_bytes"]) as f64 / 1048576.0,
                mib(u(&r["rss_after_define_kib"])),
                mib(u(&r["peak_rss_kib"])),
                f(&r["define_s"]) + plan_s,
                target,
                verdict(r["pass"].as_bool().unwrap_or(false)),
            );
        }
        println!(
            "   plan = Session::plan: load (read, checksum, decode, decrypt) + diff, timed alone; define (the program\n   building its graph) is not in it. CPU and waited-for-CPU are medians over the same runs. peak RSS =\n   VmHWM after the define and all the timed plans (reset after define where the kernel allows)."
        );
        for r in &rows {
            println!(
                "   {:>7}: peak RSS after the first plan {:.1} MiB, after all {} plans {:.1} MiB",
                u(&r["n"]),
                mib(u(&r["hwm_first_plan_kib"])),
                floats(&r["plan_s"]).len(),
                mib(u(&r["hwm_plan_kib"])),
            );
        }
        println!(
            "   where one plan's time goes (median of 3; decode and open are parts of one load, the rest timed alone):"
        );
        println!(
            "   {:>7} {:>8} {:>8} {:>8} {:>8} {:>13} {:>10} {:>10} {:>9} {:>9}",
            "size", "decode", "open", "load", "diff", "(fingerprint)", "drop snap", "drop plan", "(read", "decode)"
        );
        println!(
            "   {:>7} {:>8} {:>8} {:>8} {:>8} {:>13} {:>10} {:>10} {:>9} {:>9}",
            "", "(stream)", "", "", "", "", "", "", "in memory", ""
        );
        for r in &rows {
            let s = &r["split"];
            println!(
                "   {:>7} {:>7.3}s {:>7.3}s {:>7.3}s {:>7.3}s {:>12.3}s {:>9.3}s {:>9.3}s {:>8.3}s {:>8.3}s",
                u(&r["n"]),
                f(&s["load_decode_s"]),
                f(&s["load_open_s"]),
                f(&s["load_s"]),
                f(&s["diff_s"]),
                f(&s["graph_fingerprint_s"]),
                f(&s["drop_snapshot_s"]),
                f(&s["drop_plan_s"]),
                f(&s["read_s"]),
                f(&s["in_memory_decode_s"]),
            );
        }
        println!(
            "   decode and open are timed inside the same load: decode = the backend's load_snapshot (on this local backend\n   Snapshot::decode_file: the file read in chunks through SHA-256 and decoded as it streams), open = the rest\n   of load but the look for a journal (the decrypt walk); each column is its own median, so decode + open is\n   near load, not equal to it. (read, decode in memory) = the path of backends that hand over the whole file\n   (S3), timed alone for comparison, not part of load here; (fingerprint) is timed alone: plans compute it\n   only when saved (--out); Session::plan frees a large state on another thread."
        );
        println!(
            "   where the memory goes (live heap MiB counted by the allocator; peak = highest above the stage's start):"
        );
        println!(
            "   {:>7} {:>8} {:>8} {:>8} {:>9} {:>9} {:>9} {:>9} {:>11}",
            "size", "graph", "decoded", "decode", "loaded", "load", "plan", "diff", "Session::"
        );
        println!(
            "   {:>7} {:>8} {:>8} {:>8} {:>9} {:>9} {:>9} {:>9} {:>11}",
            "", "(kept)", "(kept)", "peak", "(kept)", "peak", "(kept)", "peak", "plan peak"
        );
        for r in &rows {
            let h = &r["heap_mib"];
            println!(
                "   {:>7} {:>8.1} {:>8.1} {:>8.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>11.1}",
                u(&r["n"]),
                f(&h["graph_net"]),
                f(&h["decoded_net"]),
                f(&h["decode_peak"]),
                f(&h["loaded_net"]),
                f(&h["load_peak"]),
                f(&h["plan_net"]),
                f(&h["diff_peak"]),
                f(&h["session_plan_peak"]),
            );
        }
        println!(
            "   decoded and decode peak: the stream decode load does. The in-memory path (S3) would hold the file bytes\n   ({} MiB) and, above them, peak at ({} MiB) while decoding.",
            rows.iter()
                .map(|r| format!("{:.1}", f(&r["heap_mib"]["file_bytes"])))
                .collect::<Vec<_>>()
                .join(", "),
            rows.iter()
                .map(|r| format!("{:.1}", f(&r["heap_mib"]["in_memory_decode_peak"])))
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    results.insert("plan".into(), Value::Array(rows));
}

fn run_apply(results: &mut serde_json::Map<String, Value>, runs: usize, quiet: bool) {
    let tmp = std::env::temp_dir();
    let ms = DAG_LATENCY.as_millis().to_string();
    let main = spawn(&["apply", &tmp.display().to_string(), &runs.to_string(), &ms]);
    // Diagnostics (not the target): the same on tmpfs, where fsync costs nothing, and with
    // no provider latency at all.
    let shm = Path::new("/dev/shm");
    let tmpfs = shm
        .is_dir()
        .then(|| spawn(&["apply", &shm.display().to_string(), &runs.to_string(), &ms]));
    let zero = spawn(&["apply", &tmp.display().to_string(), "3", "0"]);

    let latency = f(&main["latency_s"]);
    let n = u(&main["nodes"]) as f64;
    let p = u(&main["parallelism"]) as f64;
    let crit = u(&main["longest_path_nodes"]) as f64 * latency;
    let work = n * latency / p;
    let bound = crit.max(work);
    let walls = |v: &Value| -> Vec<f64> {
        v["runs"]
            .as_array()
            .map(|a| a.iter().map(|r| f(&r["wall_s"])).collect())
            .unwrap_or_default()
    };
    let med = |v: &Value, k: &str| -> f64 {
        median(
            &v["runs"]
                .as_array()
                .map(|a| a.iter().map(|r| f(&r[k])).collect::<Vec<_>>())
                .unwrap_or_default(),
        )
    };
    let wall = median(&walls(&main));
    let ratio = wall / bound;
    let summary = json!({
        "critical_path_s": crit,
        "work_over_parallelism_s": work,
        "lower_bound_s": bound,
        "ideal_fifo_s": u(&main["sim_fifo_ops"]) as f64 * latency,
        "ideal_critical_first_s": u(&main["sim_critical_first_ops"]) as f64 * latency,
        "wall_median_s": wall,
        "ratio": ratio,
        "target_ratio_at_most": 1.10,
        "pass": ratio <= 1.10,
    });
    if !quiet {
        println!(
            "\n2. apply of a random DAG: {} nodes, {} edges (0-3 deps among the previous {}, seed {}), {} ms per call, parallelism {}",
            u(&main["nodes"]),
            u(&main["edges"]),
            u(&main["window"]),
            u(&main["seed"]),
            latency * 1e3,
            p
        );
        println!(
            "   longest path {} nodes x {:.0} ms = {:.3} s; total work / parallelism = {:.0} x {:.0} ms / {} = {:.3} s; lower bound {:.3} s",
            u(&main["longest_path_nodes"]),
            latency * 1e3,
            crit,
            n,
            latency * 1e3,
            p,
            work,
            bound
        );
        println!(
            "   zero-overhead executor, FIFO ready queue (spar's first policy): {:.3} s ({:.3}x); critical-path-first (spar's policy now): {:.3} s ({:.3}x)",
            f(&summary["ideal_fifo_s"]),
            f(&summary["ideal_fifo_s"]) / bound,
            f(&summary["ideal_critical_first_s"]),
            f(&summary["ideal_critical_first_s"]) / bound
        );
        println!(
            "   {:<34} {:>6} {:>32} {:>10} {:>10} {:>10} {:>9} {:>9} {:>8}",
            "run set", "runs", "wall (s)", "median", "executor", "step mean", "fsyncs", "waited", "ratio"
        );
        let row = |name: &str, v: &Value| {
            let ws = walls(v);
            let list = ws.iter().map(|w| format!("{w:.3}")).collect::<Vec<_>>().join(" ");
            let m = median(&ws);
            println!(
                "   {:<34} {:>6} {:>32} {:>9.3}s {:>9.3}s {:>8.1}ms {:>9.0} {:>8.3}s {:>7.3}x",
                name,
                ws.len(),
                list,
                m,
                med(v, "executor_s"),
                med(v, "step_mean_s") * 1e3,
                med(v, "journal_fsyncs"),
                med(v, "runqueue_wait_s"),
                m / bound
            );
        };
        row(&format!("target: state in {}", tmp.display()), &main);
        if let Some(t) = &tmpfs {
            row("diagnostic: state on tmpfs", t);
        }
        row("diagnostic: 0 ms latency", &zero);
        println!(
            "   the fake's 20 ms delay takes {:.2} ms (16 at once); ratio = median wall (lock, load, plan, execute, save) / lower bound",
            f(&main["sleep_actual_s"]) * 1e3
        );
        println!(
            "   target ratio <= 1.10: {:.3}x  {}",
            ratio,
            verdict(summary["pass"].as_bool().unwrap_or(false))
        );
    }
    results.insert(
        "apply".into(),
        json!({"summary": summary, "target": main, "diagnostic_tmpfs": tmpfs, "diagnostic_zero_latency": zero}),
    );
}

fn run_bytes(results: &mut serde_json::Map<String, Value>, quiet: bool) {
    let mut rows = Vec::new();
    for n in [1_000usize, 10_000] {
        let dir = tempfile::Builder::new()
            .prefix("spar-bench-bytes-")
            .tempdir()
            .expect("a temp dir");
        rows.push(spawn(&["bytes", &n.to_string(), &dir.path().display().to_string()]));
    }
    let ratios: Vec<f64> = rows.iter().map(|r| f(&r["ratio"])).collect();
    let max = ratios.iter().copied().fold(0.0, f64::max);
    let min = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    // "The same for both n": within 5% of each other.
    let same = (max - min) / min <= 0.05;
    let pass = max <= 3.0 && same;
    if !quiet {
        println!(
            "\n3. state bytes written by an apply that creates n resources (from empty state), over the final snapshot"
        );
        println!(
            "   {:>7} {:>9} {:>14} {:>14} {:>7} {:>14} {:>12} {:>8} {:>10}",
            "n",
            "apply",
            "bytes written",
            "snapshot.json",
            "ratio",
            "journal bytes",
            "journal",
            "snapshot",
            "bytes/res"
        );
        println!(
            "   {:>7} {:>9} {:>14} {:>14} {:>7} {:>14} {:>12} {:>8} {:>10}",
            "", "", "", "", "", "", "fsyncs", "writes", "written"
        );
        for r in &rows {
            println!(
                "   {:>7} {:>8.2}s {:>14} {:>14} {:>7.3} {:>14} {:>12} {:>8} {:>10.0}",
                u(&r["n"]),
                f(&r["apply_s"]),
                u(&r["bytes_written"]),
                u(&r["snapshot_bytes"]),
                f(&r["ratio"]),
                u(&r["journal_bytes_written"]),
                u(&r["journal_fsyncs"]),
                u(&r["snapshot_writes"]),
                u(&r["bytes_written"]) as f64 / u(&r["n"]) as f64,
            );
        }
        println!(
            "   target: ratio <= 3 and the same for both n (within 5%): max {:.3}, spread {:.1}%  {}",
            max,
            (max - min) / min * 100.0,
            verdict(pass)
        );
    }
    results.insert(
        "bytes".into(),
        json!({"rows": rows, "max_ratio": max, "spread": (max - min) / min, "target_ratio_at_most": 3.0, "pass": pass}),
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        let result = run_child(&args[1..]);
        println!("{RESULT_PREFIX}{result}");
        return;
    }
    let o = parse_options(&args);
    let machine = machine();
    let date = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    if !o.json {
        println!(
            "spar engine benchmarks, {date}: {} CPUs ({}), {:.1} GiB, {}, kernel {}; load average {}",
            u(&machine["cpus"]),
            machine["cpu_model"].as_str().unwrap_or(""),
            f(&machine["mem_gib"]),
            machine["os"].as_str().unwrap_or(""),
            machine["kernel"].as_str().unwrap_or(""),
            machine["loadavg_at_start"].as_str().unwrap_or("")
        );
    }
    let mut results = serde_json::Map::new();
    results.insert("date".into(), json!(date));
    results.insert("machine".into(), machine);
    let wants = |name: &str| o.only.as_deref().is_none_or(|w| w.split(',').any(|x| x == name));
    if wants("plan") {
        run_plan(&mut results, o.json);
    }
    if wants("apply") {
        run_apply(&mut results, o.apply_runs, o.json);
    }
    if wants("bytes") {
        run_bytes(&mut results, o.json);
    }
    results.insert("loadavg_at_end".into(), json!(loadavg()));
    if !o.json {
        println!(
            "\nload average at the end: {} (other processes share these CPUs)",
            loadavg()
        );
    }
    if let Some(path) = &o.json_out {
        let text = serde_json::to_string_pretty(&Value::Object(results.clone())).expect("JSON");
        std::fs::write(path, text + "\n").expect("the JSON file writes");
    }
    if o.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&Value::Object(results)).expect("JSON")
        );
    }
}
