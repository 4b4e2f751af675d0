//! Shared support for the AWS kinds' tests: one sandbox emulator (`sandbox/aws/serve`) per
//! test binary on a free port of 127.0.0.1, one tokio runtime shared by every test (the
//! SDK's connection pool must outlive each test), the SDK configured explicitly for that
//! endpoint (no environment variables are touched), and a stack harness with state in a
//! temporary directory.
//!
//! Rules kept here: no traffic leaves 127.0.0.1; the emulator dies with the test process
//! (a watchdog kills it when this process is gone); tests never reset the emulator: each
//! uses its own addresses and names, so tests in one binary can run in parallel.
#![allow(dead_code)]

use std::io::BufRead as _;
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};

use aws_config::{BehaviorVersion, Region};
use spar::Stack;
use spar::apply::{ApplyReport, ExecuteOptions};
use spar::model::config::StackConfig;
use spar::ops::Session;
use spar::plan::Plan;
use spar::plan::diff::PlanOptions;
use spar::secrets::SecretKey;
use spar::state::{LocalBackend, Snapshot, StateStore};

/// The emulator's base URL (`http://127.0.0.1:PORT`).
pub fn endpoint() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(start_emulator)
}

fn start_emulator() -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new(root.join("sandbox/aws/serve"))
        .args(["--port", "0", "--host", "127.0.0.1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(if std::env::var_os("SPAR_TEST_AWS_LOG").is_some() {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .spawn()
        .expect("sandbox/aws/serve starts (run sandbox/setup first)");
    let pid = child.id();
    // The watchdog: the emulator goes when this test process goes. Neither child is waited
    // for: both outlive every test and end with the process.
    let watchdog = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "while kill -0 {me} 2>/dev/null; do sleep 0.5; done; kill {pid} 2>/dev/null",
            me = std::process::id()
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the watchdog starts");
    std::mem::forget(watchdog);
    let mut out = std::io::BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("the emulator's ready line");
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("no URL in the emulator's ready line {line:?}"))
        .to_string();
    // Drain stdout so the emulator never blocks on it.
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    std::mem::forget(child);
    url
}

/// The runtime every AWS test runs on.
pub fn rt() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let url = endpoint().to_string();
        rt.block_on(async move {
            let config = aws_config::defaults(BehaviorVersion::latest())
                .endpoint_url(url)
                .region(Region::new("us-east-1"))
                .credentials_provider(aws_sdk_ec2::config::Credentials::new(
                    "testing",
                    "testing",
                    None,
                    None,
                    "spar-tests",
                ))
                .load()
                .await;
            spar::aws::use_config(config).expect("the AWS config is installed once");
        });
        rt
    })
}

/// Runs a test body on the shared runtime.
pub fn run<F: std::future::Future>(f: F) -> F::Output {
    rt().block_on(f)
}

/// The EC2 client (for out-of-band changes).
pub async fn ec2() -> &'static aws_sdk_ec2::Client {
    spar::aws::context::ec2().await
}

/// The IAM client (for out-of-band changes).
pub async fn iam() -> &'static aws_sdk_iam::Client {
    spar::aws::context::iam().await
}

/// The stack every [`Stage`] applies in, as operations see it (`<program>/<stack>`): the
/// value of the `spar:stack` tag on what a stage makes.
pub const STACK: &str = "aws-test/dev";

/// A one-off context for `address` in the stages' stack ([`STACK`]): what `find` needs to
/// see objects a [`Stage`] made as its own (their names and `spar:stack` tag depend on it).
pub fn staged(address: &str) -> spar::provider::OpContext {
    spar::provider::OpContext::detached(address.parse().expect("a valid address")).in_stack(STACK)
}

/// A stack whose state lives in a temp dir.
pub struct Stage {
    pub dir: tempfile::TempDir,
}

impl Stage {
    pub fn new() -> Self {
        rt();
        Stage {
            dir: tempfile::tempdir().expect("a temp dir"),
        }
    }

    pub fn store(&self) -> StateStore {
        let key = SecretKey::from_bytes(&[7; 32], "test key".into()).unwrap();
        StateStore::new(Arc::new(LocalBackend::new(self.dir.path().join("state"))), key)
    }

    pub fn session(&self, define: impl FnOnce(&mut Stack) -> spar::Result<()>) -> Session {
        let mut stack = Stack::new("aws-test", "dev", StackConfig::empty(self.dir.path().join("dev.toml")));
        define(&mut stack).expect("the program defines");
        let (graph, registry) = stack.into_graph().expect("a valid graph");
        Session {
            program: "aws-test".into(),
            stack: "dev".into(),
            graph,
            registry,
            store: self.store(),
            lookup_checks: Vec::new(),
            waived: Vec::new(),
        }
    }

    pub async fn plan(&self, define: impl FnOnce(&mut Stack) -> spar::Result<()>) -> Plan {
        self.session(define)
            .plan(&PlanOptions::default(), false)
            .await
            .expect("a plan")
    }

    /// Applies and returns the plan and report, successful or not.
    pub async fn try_apply(&self, define: impl FnOnce(&mut Stack) -> spar::Result<()>) -> (Plan, ApplyReport) {
        self.session(define)
            .apply_program(&PlanOptions::default(), &ExecuteOptions::default())
            .await
            .expect("apply runs")
    }

    /// Applies and asserts every step succeeded.
    pub async fn apply(&self, define: impl FnOnce(&mut Stack) -> spar::Result<()>) -> Plan {
        let (plan, report) = self.try_apply(define).await;
        let failures: Vec<_> = report.failures().collect();
        assert!(report.succeeded(), "apply failed: {failures:#?}");
        plan
    }

    pub async fn destroy(&self) -> Plan {
        let opts = PlanOptions {
            destroy: true,
            ..Default::default()
        };
        let (plan, report) = self
            .session(|_| Ok(()))
            .apply_program(&opts, &ExecuteOptions::default())
            .await
            .expect("destroy runs");
        let failures: Vec<_> = report.failures().collect();
        assert!(report.succeeded(), "destroy failed: {failures:#?}");
        plan
    }

    pub async fn snapshot(&self) -> Snapshot {
        self.store().load().await.unwrap().0
    }

    /// The id in state at `address`.
    pub async fn id(&self, address: &str) -> String {
        let a: spar::Address = address.parse().unwrap();
        self.snapshot()
            .await
            .get(&a)
            .unwrap_or_else(|| panic!("{address} is not in state"))
            .id
            .clone()
    }

    /// The outputs in state at `address`.
    pub async fn outputs(&self, address: &str) -> serde_json::Value {
        let a: spar::Address = address.parse().unwrap();
        self.snapshot().await.get(&a).expect("in state").outputs.clone()
    }
}

/// The op planned for `address`.
pub fn op(plan: &Plan, address: &str) -> spar::plan::Op {
    let a: spar::Address = address.parse().unwrap();
    plan.get(&a)
        .unwrap_or_else(|| panic!("{address} is not in the plan"))
        .op
}

/// True when the plan changes nothing.
pub fn quiet(plan: &Plan) -> bool {
    !plan.has_changes()
}

/// The tags of an EC2 object, as a map.
pub fn tag_map(tags: &[aws_sdk_ec2::types::Tag]) -> std::collections::BTreeMap<String, String> {
    tags.iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Records when each step started and finished (a global sequence), and every progress
/// line, so tests can assert the order of the calls spar made where the emulator would not
/// refuse a wrong one.
#[derive(Default)]
pub struct Recorder {
    events: std::sync::Mutex<Vec<(String, String, &'static str)>>,
    pub progress: std::sync::Mutex<Vec<(String, String)>>,
}

impl Recorder {
    /// The sequence number of `what` (`start`/`end`) of `kind` (`delete`, `create`, ...) at `address`.
    pub fn at(&self, address: &str, kind: &str, what: &str) -> usize {
        let ev = self.events.lock().unwrap();
        ev.iter()
            .position(|(a, k, w)| a == address && k == kind && *w == what)
            .unwrap_or_else(|| panic!("no {what} of {kind} {address} in {ev:#?}"))
    }

    /// Asserts the step `first` finished before `then` started.
    pub fn before(&self, first: (&str, &str), then: (&str, &str)) {
        let a = self.at(first.0, first.1, "end");
        let b = self.at(then.0, then.1, "start");
        assert!(
            a < b,
            "{} {} should finish before {} {} starts",
            first.1,
            first.0,
            then.1,
            then.0
        );
    }
}

impl spar::apply::ApplyEvents for Recorder {
    fn step_started(&self, step: &spar::apply::Step, _kind: &str) {
        self.events
            .lock()
            .unwrap()
            .push((step.address.to_string(), step.kind.to_string(), "start"));
    }
    fn step_progress(&self, address: &spar::Address, message: &str) {
        self.progress
            .lock()
            .unwrap()
            .push((address.to_string(), message.to_string()));
    }
    fn step_finished(
        &self,
        step: &spar::apply::Step,
        _status: &spar::apply::StepStatus,
        _elapsed: std::time::Duration,
    ) {
        self.events
            .lock()
            .unwrap()
            .push((step.address.to_string(), step.kind.to_string(), "end"));
    }
}

impl Stage {
    /// Applies (or destroys, with `destroy`) with `recorder` watching the steps.
    pub async fn apply_recorded(
        &self,
        define: impl FnOnce(&mut Stack) -> spar::Result<()>,
        destroy: bool,
        recorder: Arc<Recorder>,
    ) -> (Plan, ApplyReport) {
        let opts = PlanOptions {
            destroy,
            ..Default::default()
        };
        let exec = ExecuteOptions {
            events: recorder,
            ..Default::default()
        };
        let (plan, report) = self
            .session(define)
            .apply_program(&opts, &exec)
            .await
            .expect("apply runs");
        let failures: Vec<_> = report.failures().collect();
        assert!(report.succeeded(), "apply failed: {failures:#?}");
        (plan, report)
    }
}

/// Merges `config` into the emulator's lifecycle holds (`POST /sandbox-api/config`).
pub fn sandbox_config(config: serde_json::Value) {
    let out = Command::new("curl")
        .args([
            "-sS",
            "-f",
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
            "--data",
        ])
        .arg(config.to_string())
        .arg(format!("{}/sandbox-api/config", endpoint()))
        .output()
        .expect("curl runs");
    assert!(
        out.status.success(),
        "sandbox config: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Sends `method` to the emulator's `path` (with `body` as JSON, if any) and returns the
/// JSON answer; panics unless it is a 2xx.
fn sandbox_api(method: &str, path: &str, body: Option<&serde_json::Value>) -> serde_json::Value {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-f", "-X", method, "-H", "content-type: application/json"]);
    if let Some(b) = body {
        cmd.arg("--data").arg(b.to_string());
    }
    let out = cmd.arg(format!("{}{path}", endpoint())).output().expect("curl runs");
    assert!(
        out.status.success(),
        "{method} {path}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

/// Adds injected faults (`POST /sandbox-api/faults`): `rules` is a JSON list of
/// `{"service", "action", "code", "message", "status", "count"}`, or of rate rules
/// `{"service" or "*", "action" or "*", "code" (or "throttling": each service's own), "rate",
/// "seed"}` (see sandbox/aws/README.md).
/// Returns every rule, as [`faults`] does.
pub fn inject_faults(rules: serde_json::Value) -> Vec<serde_json::Value> {
    let all = sandbox_api("POST", "/sandbox-api/faults", Some(&rules));
    all.as_array().expect("a list of rules").clone()
}

/// The injected faults in the order added, each with `fired` and `remaining`.
pub fn faults() -> Vec<serde_json::Value> {
    let all = sandbox_api("GET", "/sandbox-api/faults", None);
    all.as_array().expect("a list of rules").clone()
}

/// Removes every injected fault.
pub fn clear_faults() {
    sandbox_api("DELETE", "/sandbox-api/faults", None);
}

/// Checks an object imported from the emulator against the declarations' fixtures: its kind
/// writes a declaration for the inputs `read` really returned, and those inputs have the same
/// keys as the kind's fixtures in `tests/declarations/live_inputs.json` (so the golden test's
/// live inputs are shaped as real reads are).
pub fn assert_declarable(imported: &spar::state::ResourceState) {
    let registry = spar::provider::Registry::builtin();
    let provider = registry.get(&imported.kind).unwrap();
    assert!(
        provider
            .declaration(imported.address.name(), &imported.inputs)
            .is_some(),
        "{} writes no declaration for the inputs read from the emulator: {}",
        imported.kind,
        imported.inputs
    );
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/declarations/live_inputs.json"
    ))
    .unwrap();
    let fixtures: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    let keys = |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    let read = keys(&imported.inputs);
    let mine: Vec<_> = fixtures
        .iter()
        .filter(|f| f["kind"] == imported.kind.as_str())
        .collect();
    assert!(!mine.is_empty(), "no fixture of {}", imported.kind);
    for f in mine {
        assert_eq!(
            keys(&f["inputs"]),
            read,
            "the fixture `{}` of {} is not shaped as a real read",
            f["name"],
            imported.kind
        );
    }
}
