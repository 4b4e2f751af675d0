//! Shared harness for the Kubernetes tests: a simulator started in-process, spar state in a
//! temporary directory, a program as a closure given the sandbox `kubernetes:Provider` handle,
//! and a plain kube client (another field manager) for out-of-band changes.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use spar::apply::steps::Step;
use spar::apply::{ApplyEvents, ApplyReport, ExecuteOptions, StepStatus};
use spar::kubernetes::KubeProvider;
use spar::model::config::StackConfig;
use spar::ops::Session;
use spar::ops::refresh::RefreshReport;
use spar::plan::Plan;
use spar::plan::diff::PlanOptions;
use spar::secrets::SecretKey;
use spar::state::{LocalBackend, Snapshot, StateStore};
use spar::{Handle, Stack};
use spar_kube_sim::{SimConfig, SimHandle, Simulator};

/// A running simulator and a stack's state.
pub struct KubeEnv {
    pub sim: SimHandle,
    pub dir: tempfile::TempDir,
    /// A client that is not spar, for out-of-band changes and checks.
    pub client: kube::Client,
}

/// Records what the executor did, in order.
#[derive(Default)]
pub struct Recorder {
    pub events: Mutex<Vec<String>>,
}

impl ApplyEvents for Recorder {
    fn step_started(&self, step: &Step, _kind: &str) {
        self.events
            .lock()
            .unwrap()
            .push(format!("start {:?} {}", step.kind, step.address));
    }
    fn step_progress(&self, address: &spar::Address, message: &str) {
        self.events
            .lock()
            .unwrap()
            .push(format!("progress {address}: {message}"));
    }
    fn step_finished(&self, step: &Step, status: &StepStatus, _elapsed: Duration) {
        self.events
            .lock()
            .unwrap()
            .push(format!("finish {:?} {} {status:?}", step.kind, step.address));
    }
}

impl Recorder {
    pub fn lines(&self) -> Vec<String> {
        self.events.lock().unwrap().clone()
    }
    /// The index of the first line containing all of `parts`.
    pub fn position(&self, parts: &[&str]) -> usize {
        let lines = self.lines();
        lines
            .iter()
            .position(|l| parts.iter().all(|p| l.contains(p)))
            .unwrap_or_else(|| panic!("no event with {parts:?} in {lines:#?}"))
    }
}

impl KubeEnv {
    pub async fn start() -> Self {
        Self::start_with(Duration::ZERO).await
    }

    pub async fn start_with(ready_delay: Duration) -> Self {
        let sim = Simulator::start(SimConfig {
            ready_delay,
            ..SimConfig::default()
        })
        .await
        .expect("simulator starts (are the kubernetes-validate schemas in the repo's .venv?)");
        let config = kube::Config::new(sim.url().parse().expect("url"));
        let client = kube::Client::try_from(config).expect("client");
        KubeEnv {
            sim,
            dir: tempfile::tempdir().expect("a temp dir"),
            client,
        }
    }

    pub fn url(&self) -> String {
        self.sim.url()
    }

    pub fn store(&self) -> StateStore {
        let key = SecretKey::from_bytes(&[7; 32], "test key".into()).unwrap();
        StateStore::new(Arc::new(LocalBackend::new(self.dir.path().join("state"))), key)
    }

    /// A session for `define`, which gets the handle of a sandbox provider named `cluster`.
    pub fn session(
        &self,
        define: impl FnOnce(&mut Stack, &Handle<KubeProvider>) -> spar::Result<()>,
    ) -> spar::Result<Session> {
        let mut stack = Stack::new("kube-test", "dev", StackConfig::empty(self.dir.path().join("dev.toml")));
        let provider = stack.add("cluster", KubeProvider::sandbox(self.url()))?;
        define(&mut stack, &provider)?;
        let (graph, registry) = stack.into_graph()?;
        Ok(Session {
            program: "kube-test".into(),
            stack: "dev".into(),
            graph,
            registry,
            store: self.store(),
            lookup_checks: Vec::new(),
            waived: Vec::new(),
        })
    }

    pub async fn plan(&self, define: impl FnOnce(&mut Stack, &Handle<KubeProvider>) -> spar::Result<()>) -> Plan {
        self.session(define)
            .unwrap()
            .plan(&PlanOptions::default(), false)
            .await
            .unwrap()
    }

    pub async fn apply(
        &self,
        define: impl FnOnce(&mut Stack, &Handle<KubeProvider>) -> spar::Result<()>,
    ) -> (Plan, ApplyReport) {
        self.apply_with(define, &PlanOptions::default(), Arc::new(Recorder::default()))
            .await
    }

    pub async fn apply_with(
        &self,
        define: impl FnOnce(&mut Stack, &Handle<KubeProvider>) -> spar::Result<()>,
        plan_opts: &PlanOptions,
        events: Arc<Recorder>,
    ) -> (Plan, ApplyReport) {
        let exec = ExecuteOptions {
            events,
            ..Default::default()
        };
        self.session(define)
            .unwrap()
            .apply_program(plan_opts, &exec)
            .await
            .unwrap()
    }

    pub async fn destroy(&self, events: Arc<Recorder>) -> (Plan, ApplyReport) {
        let opts = PlanOptions {
            destroy: true,
            ..Default::default()
        };
        self.apply_with(|_, _| Ok(()), &opts, events).await
    }

    pub async fn refresh(
        &self,
        define: impl FnOnce(&mut Stack, &Handle<KubeProvider>) -> spar::Result<()>,
    ) -> RefreshReport {
        self.session(define).unwrap().refresh(4).await.unwrap()
    }

    pub async fn snapshot(&self) -> Snapshot {
        self.store().load().await.unwrap().0
    }
}

/// The failure messages of a report, one per failed step.
pub fn failures(report: &ApplyReport) -> Vec<String> {
    report.failures().map(|(a, m)| format!("{a}: {m}")).collect()
}
