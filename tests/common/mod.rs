//! Shared harness for the engine's lifecycle tests: a stack program as a closure over a
//! fake world, state in a temporary directory, and one-line helpers for plan and apply.
#![allow(dead_code)]

use std::sync::Arc;

use spar::Stack;
use spar::apply::{ApplyReport, ExecuteOptions};
use spar::model::config::StackConfig;
use spar::ops::Session;
use spar::plan::Plan;
use spar::plan::diff::PlanOptions;
use spar::secrets::SecretKey;
use spar::state::{LocalBackend, Snapshot, StateStore};
use spar::testing::{FakeProvider, FakeWorld};

/// A test stack: a fake world, one fake kind `fake:Thing`, state in a temp dir.
pub struct Harness {
    pub world: Arc<FakeWorld>,
    pub provider: Arc<FakeProvider>,
    pub dir: tempfile::TempDir,
    /// The stack's name (program `test`); state lives under `dir/state/<stack>`.
    pub stack: String,
}

impl Harness {
    pub fn new() -> Self {
        let world = FakeWorld::new();
        Self::with_provider(FakeProvider::new("fake:Thing", world.clone()), world)
    }

    pub fn with_provider(provider: FakeProvider, world: Arc<FakeWorld>) -> Self {
        Harness {
            world,
            provider: Arc::new(provider),
            dir: tempfile::tempdir().expect("a temp dir"),
            stack: "dev".into(),
        }
    }

    pub fn store(&self) -> StateStore {
        let key = SecretKey::from_bytes(&[42; 32], "test key".into()).unwrap();
        let dir = match self.stack.as_str() {
            "dev" => self.dir.path().join("state"),
            other => self.dir.path().join("state").join(other),
        };
        StateStore::new(Arc::new(LocalBackend::new(dir)), key)
    }

    /// A session for the program `define`.
    pub fn session(
        &self,
        define: impl FnOnce(&mut Stack, &Arc<FakeProvider>) -> spar::Result<()>,
    ) -> spar::Result<Session> {
        let config = self.dir.path().join(format!("{}.toml", self.stack));
        let mut stack = Stack::new("test", &self.stack, StackConfig::empty(config));
        stack.register_kind(self.provider.clone());
        define(&mut stack, &self.provider)?;
        let program = stack.into_program()?;
        Ok(Session {
            program: "test".into(),
            stack: self.stack.clone(),
            graph: program.graph,
            registry: program.registry,
            store: self.store(),
            lookup_checks: program.lookup_checks,
            waived: Vec::new(),
        })
    }

    pub async fn plan(&self, define: impl FnOnce(&mut Stack, &Arc<FakeProvider>) -> spar::Result<()>) -> Plan {
        self.session(define)
            .unwrap()
            .plan(&PlanOptions::default(), false)
            .await
            .unwrap()
    }

    pub async fn apply(
        &self,
        define: impl FnOnce(&mut Stack, &Arc<FakeProvider>) -> spar::Result<()>,
    ) -> (Plan, ApplyReport) {
        self.apply_with(define, &PlanOptions::default(), &ExecuteOptions::default())
            .await
    }

    pub async fn apply_with(
        &self,
        define: impl FnOnce(&mut Stack, &Arc<FakeProvider>) -> spar::Result<()>,
        plan_opts: &PlanOptions,
        exec: &ExecuteOptions,
    ) -> (Plan, ApplyReport) {
        self.session(define)
            .unwrap()
            .apply_program(plan_opts, exec)
            .await
            .unwrap()
    }

    pub async fn destroy(&self) -> (Plan, ApplyReport) {
        let opts = PlanOptions {
            destroy: true,
            ..Default::default()
        };
        self.apply_with(|_, _| Ok(()), &opts, &ExecuteOptions::default()).await
    }

    pub async fn snapshot(&self) -> Snapshot {
        self.store().load().await.unwrap().0
    }
}
