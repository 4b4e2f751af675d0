//! The apply view: what a person sees while an apply runs.
//!
//! On a terminal, a live view lists each step in flight with its elapsed time and latest
//! progress message, above the lines of finished steps; elsewhere (CI logs, pipes), one
//! plain line per event; with `--json`, one JSON object per event on stdout
//! ([`JsonView`]). Rules kept here: nothing here prints a value, only addresses, kinds,
//! ids, timings, provider progress messages and (already redacted) errors; the two views
//! for people write to stderr so stdout stays clean.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::address::Address;
use crate::apply::{ApplyEvents, Step, StepStatus};
use crate::state::StepKind;

fn verb(kind: StepKind) -> (&'static str, &'static str) {
    let (going, _, done) = verbs(kind);
    (going, done)
}

/// (in progress, infinitive, done) for a step kind.
fn verbs(kind: StepKind) -> (&'static str, &'static str, &'static str) {
    match kind {
        StepKind::Create => ("creating", "create", "created"),
        StepKind::Update => ("updating", "update", "updated"),
        StepKind::Delete => ("deleting", "delete", "deleted"),
        StepKind::CreateReplacement => ("creating replacement", "create the replacement", "created replacement"),
        StepKind::DeleteReplaced => ("deleting old object", "delete the old object", "deleted old object"),
    }
}

fn finished_line(step: &Step, status: &StepStatus, elapsed: Duration) -> String {
    let (_, done) = verb(step.kind);
    match status {
        StepStatus::Done => format!("{} {done} ({:.1}s)", step.address, elapsed.as_secs_f64()),
        StepStatus::Unchanged => format!("{} unchanged once its inputs were known", step.address),
        StepStatus::Failed(m) => format!("{} FAILED to {}: {m}", step.address, verbs(step.kind).1),
        StepStatus::Skipped { because } => format!("{} skipped: {because} failed", step.address),
        StepStatus::NotStarted => format!("{} not started (interrupted)", step.address),
    }
}

/// One line per event, for logs.
pub struct PlainView {
    started: Mutex<HashMap<(Address, StepKind), Instant>>,
}

impl PlainView {
    pub fn new() -> Self {
        PlainView {
            started: Mutex::new(HashMap::new()),
        }
    }
}

impl Default for PlainView {
    fn default() -> Self {
        Self::new()
    }
}

impl ApplyEvents for PlainView {
    fn step_started(&self, step: &Step, kind: &str) {
        self.started
            .lock()
            .expect("view mutex")
            .insert((step.address.clone(), step.kind), Instant::now());
        eprintln!("{} {} ({kind})", step.address, verb(step.kind).0);
    }
    fn step_progress(&self, address: &Address, message: &str) {
        eprintln!("{address}: {message}");
    }
    fn step_finished(&self, step: &Step, status: &StepStatus, elapsed: Duration) {
        eprintln!("{}", finished_line(step, status, elapsed));
    }
}

/// A live view for terminals.
pub struct LiveView {
    multi: MultiProgress,
    bars: Mutex<HashMap<(Address, StepKind), ProgressBar>>,
    style: ProgressStyle,
}

impl LiveView {
    pub fn new() -> Self {
        let style = ProgressStyle::with_template("{spinner:.cyan} {prefix:.bold} {msg} {elapsed:.dim}")
            .expect("a valid template")
            .tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ ");
        LiveView {
            multi: MultiProgress::new(),
            bars: Mutex::new(HashMap::new()),
            style,
        }
    }

    /// The live view where it can be drawn: stderr is a terminal and `TERM` says it can
    /// move its cursor (indicatif draws nothing at all on a `dumb` or unnamed terminal, not
    /// even the lines of finished steps). `None` elsewhere: use a [`PlainView`].
    pub fn if_drawable() -> Option<Self> {
        let view = Self::new();
        (!view.multi.is_hidden()).then_some(view)
    }
}

impl Default for LiveView {
    fn default() -> Self {
        Self::new()
    }
}

impl ApplyEvents for LiveView {
    fn step_started(&self, step: &Step, kind: &str) {
        let bar = self.multi.add(ProgressBar::new_spinner());
        bar.set_style(self.style.clone());
        bar.set_prefix(step.address.to_string());
        bar.set_message(format!("{} ({kind})", verb(step.kind).0));
        bar.enable_steady_tick(Duration::from_millis(120));
        self.bars
            .lock()
            .expect("view mutex")
            .insert((step.address.clone(), step.kind), bar);
    }
    fn step_progress(&self, address: &Address, message: &str) {
        let bars = self.bars.lock().expect("view mutex");
        for ((a, kind), bar) in bars.iter() {
            if a == address {
                bar.set_message(format!("{}: {message}", verb(*kind).0));
            }
        }
    }
    fn step_finished(&self, step: &Step, status: &StepStatus, elapsed: Duration) {
        let line = finished_line(step, status, elapsed);
        if let Some(bar) = self
            .bars
            .lock()
            .expect("view mutex")
            .remove(&(step.address.clone(), step.kind))
        {
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
        let _ = self.multi.println(line);
        let _ = std::io::stderr().flush();
    }
}

/// One JSON object per line on stdout for each event, for CI: `started` (address, type,
/// op), `progress` (address, message), `done` (address, op, id, elapsed_seconds), `failed`
/// (address, op, error), `skipped` (address, op, because), `not_started`. The CLI adds the
/// `summary` at the end. Lines are written whole, one at a time.
pub struct JsonView {
    out: Mutex<()>,
    ids: Mutex<HashMap<(Address, StepKind), String>>,
}

impl JsonView {
    pub fn new() -> Self {
        JsonView {
            out: Mutex::new(()),
            ids: Mutex::new(HashMap::new()),
        }
    }

    /// Writes one event line.
    pub fn emit(&self, event: &serde_json::Value) {
        let _guard = self.out.lock().expect("view mutex");
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{event}");
        let _ = stdout.flush();
    }
}

impl Default for JsonView {
    fn default() -> Self {
        Self::new()
    }
}

impl ApplyEvents for JsonView {
    fn step_started(&self, step: &Step, kind: &str) {
        self.emit(&serde_json::json!({
            "event": "started", "address": step.address, "type": kind, "op": step.kind,
        }));
    }
    fn step_progress(&self, address: &Address, message: &str) {
        self.emit(&serde_json::json!({"event": "progress", "address": address, "message": message}));
    }
    fn step_id(&self, step: &Step, id: &str) {
        self.ids
            .lock()
            .expect("view mutex")
            .insert((step.address.clone(), step.kind), id.to_string());
    }
    fn step_finished(&self, step: &Step, status: &StepStatus, elapsed: Duration) {
        let (address, op) = (&step.address, step.kind);
        let event = match status {
            StepStatus::Done | StepStatus::Unchanged => {
                let id = self.ids.lock().expect("view mutex").remove(&(address.clone(), op));
                serde_json::json!({
                    "event": "done", "address": address, "op": op, "id": id,
                    "unchanged": *status == StepStatus::Unchanged,
                    "elapsed_seconds": (elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
                })
            }
            StepStatus::Failed(m) => serde_json::json!({"event": "failed", "address": address, "op": op, "error": m}),
            StepStatus::Skipped { because } => {
                serde_json::json!({"event": "skipped", "address": address, "op": op, "because": because})
            }
            StepStatus::NotStarted => serde_json::json!({"event": "not_started", "address": address, "op": op}),
        };
        self.emit(&event);
    }
}
