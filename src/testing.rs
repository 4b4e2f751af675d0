//! A fake provider made of closures, with an in-memory world, for lifecycle tests and
//! benchmarks (the engine's specification is written against it).
//!
//! The world holds objects by id, each tagged with the address and stack that created it
//! (as cloud objects carry `spar:address` and `spar:stack`), and records every call with a global sequence number at
//! its start and end, so tests can assert ordering and overlap. Hooks can fail, slow down
//! or reshape any operation. Rules kept here: the fake behaves like a well-behaved cloud
//! (delete of a missing object succeeds, `find` adopts by tag), unless a hook says
//! otherwise.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};

use crate::address::Address;
use crate::model::{Handle, Output, Resource};
use crate::provider::{Created, OpContext, ProviderError, ReadResult, ResourceProvider, Schema};

/// One object in the fake world.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeObject {
    pub id: String,
    pub kind: String,
    /// The `spar:address` tag.
    pub address: Address,
    /// The `spar:stack` tag: the stack that made it (empty for objects made outside spar).
    pub stack: String,
    pub inputs: Value,
}

/// One recorded call.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub op: &'static str,
    pub address: Address,
    pub id: Option<String>,
    /// The stack the call was made for ([`OpContext::stack`]).
    pub stack: String,
    /// Global sequence numbers when the call started and ended.
    pub start: u64,
    pub end: u64,
    pub ok: bool,
}

/// The fake cloud shared by fake providers.
#[derive(Debug, Default)]
pub struct FakeWorld {
    objects: Mutex<BTreeMap<String, FakeObject>>,
    calls: Mutex<Vec<Call>>,
    clock: AtomicU64,
    next_id: AtomicU64,
}

impl FakeWorld {
    pub fn new() -> Arc<Self> {
        Arc::new(FakeWorld::default())
    }

    pub fn objects(&self) -> Vec<FakeObject> {
        self.objects.lock().expect("world mutex").values().cloned().collect()
    }

    pub fn object_at(&self, address: &str) -> Vec<FakeObject> {
        self.objects()
            .into_iter()
            .filter(|o| o.address.as_str() == address)
            .collect()
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().expect("world mutex").clone()
    }

    pub fn clear_calls(&self) {
        self.calls.lock().expect("world mutex").clear();
    }

    /// Changes an object behind spar's back (drift).
    pub fn tamper(&self, id: &str, f: impl FnOnce(&mut Value)) {
        if let Some(o) = self.objects.lock().expect("world mutex").get_mut(id) {
            f(&mut o.inputs);
        }
    }

    /// Removes an object behind spar's back.
    pub fn remove(&self, id: &str) {
        self.objects.lock().expect("world mutex").remove(id);
    }

    /// Adds an object made outside spar (for import).
    pub fn insert(&self, kind: &str, address: &str, inputs: Value) -> String {
        let id = format!("fake-{}", self.next_id.fetch_add(1, Ordering::SeqCst));
        self.objects.lock().expect("world mutex").insert(
            id.clone(),
            FakeObject {
                id: id.clone(),
                kind: kind.into(),
                address: address.parse().expect("a valid address"),
                stack: String::new(),
                inputs,
            },
        );
        id
    }

    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::SeqCst)
    }
}

/// A hook run before an operation; an `Err` fails it.
pub type Hook = Arc<dyn Fn(&Address, &Value) -> Result<(), ProviderError> + Send + Sync>;

/// A fake resource kind.
#[derive(Clone)]
pub struct FakeProvider {
    kind: String,
    schema: Schema,
    world: Arc<FakeWorld>,
    latency: Duration,
    settle: Duration,
    pub create_f: Option<Hook>,
    pub update_f: Option<Hook>,
    pub delete_f: Option<Hook>,
    /// Runs after the object exists but before create returns (to simulate a failure
    /// after the cloud made the object).
    pub after_create_f: Option<Hook>,
    /// When it answers true for an operation (`create`, `update`, `delete`) and address,
    /// that operation does its work in the world and then never returns: the process
    /// "dies" there once the test aborts the apply.
    pub stall_f: Option<StallFn>,
}

/// Decides whether an operation stalls forever after doing its work.
pub type StallFn = Arc<dyn Fn(&'static str, &Address) -> bool + Send + Sync>;

impl FakeProvider {
    pub fn new(kind: &str, world: Arc<FakeWorld>) -> Self {
        FakeProvider {
            kind: kind.into(),
            schema: Schema::new().replace_on(&["name"]),
            world,
            latency: Duration::ZERO,
            settle: Duration::ZERO,
            create_f: None,
            update_f: None,
            delete_f: None,
            after_create_f: None,
            stall_f: None,
        }
    }

    /// Stalls (never returns) after the operations for which `f` answers true.
    pub fn stall_after(mut self, f: impl Fn(&'static str, &Address) -> bool + Send + Sync + 'static) -> Self {
        self.stall_f = Some(Arc::new(f));
        self
    }

    async fn maybe_stall(&self, op: &'static str, address: &Address) {
        if self.stall_f.as_ref().is_some_and(|f| f(op, address)) {
            std::future::pending::<()>().await;
        }
    }

    pub fn schema(mut self, schema: Schema) -> Self {
        self.schema = schema;
        self
    }

    /// Every operation takes this long (to within about 0.1 ms; see [`fixed_delay`]).
    pub fn latency(mut self, d: Duration) -> Self {
        self.latency = d;
        self
    }

    /// After a create has made its object, it waits this long for the object to become
    /// ready (as a cloud waiter does), giving up with `Cancelled` when the operation is
    /// cancelled (the object exists all the same). It ignores the timeout option, as a
    /// careless kind would, so the engine's own bound is what stops it.
    pub fn settle(mut self, d: Duration) -> Self {
        self.settle = d;
        self
    }

    pub fn on_create(
        mut self,
        f: impl Fn(&Address, &Value) -> Result<(), ProviderError> + Send + Sync + 'static,
    ) -> Self {
        self.create_f = Some(Arc::new(f));
        self
    }

    pub fn on_update(
        mut self,
        f: impl Fn(&Address, &Value) -> Result<(), ProviderError> + Send + Sync + 'static,
    ) -> Self {
        self.update_f = Some(Arc::new(f));
        self
    }

    pub fn on_delete(
        mut self,
        f: impl Fn(&Address, &Value) -> Result<(), ProviderError> + Send + Sync + 'static,
    ) -> Self {
        self.delete_f = Some(Arc::new(f));
        self
    }

    pub fn after_create(
        mut self,
        f: impl Fn(&Address, &Value) -> Result<(), ProviderError> + Send + Sync + 'static,
    ) -> Self {
        self.after_create_f = Some(Arc::new(f));
        self
    }

    fn outputs(&self, id: &str, inputs: &Value) -> Value {
        json!({"arn": format!("arn:fake:{}:{id}", self.kind), "echo": inputs})
    }

    async fn call<T>(
        &self,
        op: &'static str,
        ctx: &OpContext,
        id: Option<&str>,
        f: impl FnOnce() -> Result<T, ProviderError>,
    ) -> Result<T, ProviderError> {
        let address = &ctx.address;
        let start = self.world.tick();
        if !self.latency.is_zero() {
            fixed_delay(self.latency).await;
        }
        let r = f();
        let end = self.world.tick();
        self.world.calls.lock().expect("world mutex").push(Call {
            op,
            address: address.clone(),
            id: id.map(String::from),
            stack: ctx.stack.to_string(),
            start,
            end,
            ok: r.is_ok(),
        });
        r
    }
}

/// Waits `d` precisely. The runtime's timer ticks in whole milliseconds and rounds a
/// deadline up to the next tick, so its 20 ms sleep takes about 21 ms; a fake whose latency
/// drifts like that would charge the timer's error to the engine in benchmarks. The bulk
/// of the wait is the runtime's timer; the last 2 ms are a thread sleep on the blocking
/// pool, which the OS keeps to within tens of microseconds.
pub async fn fixed_delay(d: Duration) {
    let deadline = std::time::Instant::now() + d;
    let coarse = d.saturating_sub(Duration::from_millis(2));
    if !coarse.is_zero() {
        tokio::time::sleep(coarse).await;
    }
    let rest = deadline.saturating_duration_since(std::time::Instant::now());
    if !rest.is_zero() {
        let _ = tokio::task::spawn_blocking(move || std::thread::sleep(rest)).await;
    }
}

fn run_hook(h: &Option<Hook>, a: &Address, v: &Value) -> Result<(), ProviderError> {
    match h {
        Some(f) => f(a, v),
        None => Ok(()),
    }
}

#[async_trait]
impl ResourceProvider for FakeProvider {
    fn kind(&self) -> &str {
        &self.kind
    }

    fn schema(&self) -> &Schema {
        &self.schema
    }

    async fn create(&self, ctx: &OpContext, inputs: &Value) -> Result<Created, ProviderError> {
        let created = self
            .call("create", ctx, None, || {
                run_hook(&self.create_f, &ctx.address, inputs)?;
                let id = format!("fake-{}", self.world.next_id.fetch_add(1, Ordering::SeqCst));
                self.world.objects.lock().expect("world mutex").insert(
                    id.clone(),
                    FakeObject {
                        id: id.clone(),
                        kind: self.kind.clone(),
                        address: ctx.address.clone(),
                        stack: ctx.stack.to_string(),
                        inputs: inputs.clone(),
                    },
                );
                Ok(Created {
                    outputs: self.outputs(&id, inputs),
                    id,
                })
            })
            .await?;
        self.maybe_stall("create", &ctx.address).await;
        if !self.settle.is_zero() {
            tokio::select! {
                _ = fixed_delay(self.settle) => {}
                _ = ctx.cancel.cancelled() => return Err(ProviderError::Cancelled),
            }
        }
        run_hook(&self.after_create_f, &ctx.address, inputs)?;
        Ok(created)
    }

    /// Every object of this kind whose inputs hold each field of `query` with its value.
    async fn lookup(&self, ctx: &OpContext, query: &Value) -> Result<Vec<ReadResult>, ProviderError> {
        self.call("lookup", ctx, None, || {
            let wanted = query.as_object().cloned().unwrap_or_default();
            Ok(self
                .world
                .objects
                .lock()
                .expect("world mutex")
                .values()
                .filter(|o| o.kind == self.kind && wanted.iter().all(|(k, v)| o.inputs.get(k) == Some(v)))
                .map(|o| ReadResult {
                    id: o.id.clone(),
                    inputs: o.inputs.clone(),
                    outputs: self.outputs(&o.id, &o.inputs),
                })
                .collect())
        })
        .await
    }

    async fn read(
        &self,
        ctx: &OpContext,
        id: &str,
        _inputs: &Value,
        _outputs: &Value,
    ) -> Result<Option<ReadResult>, ProviderError> {
        self.call("read", ctx, Some(id), || {
            Ok(self
                .world
                .objects
                .lock()
                .expect("world mutex")
                .get(id)
                .map(|o| ReadResult {
                    id: o.id.clone(),
                    inputs: o.inputs.clone(),
                    outputs: self.outputs(&o.id, &o.inputs),
                }))
        })
        .await
    }

    async fn update(
        &self,
        ctx: &OpContext,
        id: &str,
        _old: &Value,
        new: &Value,
        _old_outputs: &Value,
    ) -> Result<Value, ProviderError> {
        let r = self
            .call("update", ctx, Some(id), || {
                run_hook(&self.update_f, &ctx.address, new)?;
                let mut objects = self.world.objects.lock().expect("world mutex");
                let o = objects
                    .get_mut(id)
                    .ok_or_else(|| ProviderError::msg(format!("object {id} does not exist")))?;
                o.inputs = new.clone();
                Ok(self.outputs(id, new))
            })
            .await;
        self.maybe_stall("update", &ctx.address).await;
        r
    }

    async fn delete(&self, ctx: &OpContext, id: &str, inputs: &Value, _outputs: &Value) -> Result<(), ProviderError> {
        let r = self
            .call("delete", ctx, Some(id), || {
                run_hook(&self.delete_f, &ctx.address, inputs)?;
                self.world.objects.lock().expect("world mutex").remove(id);
                Ok(())
            })
            .await;
        self.maybe_stall("delete", &ctx.address).await;
        r
    }

    async fn find(&self, ctx: &OpContext, _inputs: &Value) -> Result<Option<Created>, ProviderError> {
        let found = self
            .world
            .objects
            .lock()
            .expect("world mutex")
            .values()
            .find(|o| {
                o.address == ctx.address
                    && o.kind == self.kind
                    && *o.stack == *ctx.stack
                    && !ctx.tracked_ids.contains(&o.id)
            })
            .cloned();
        Ok(found.map(|o| Created {
            outputs: self.outputs(&o.id, &o.inputs),
            id: o.id,
        }))
    }
}

/// A resource declared against a fake provider: its inputs are a JSON object whose
/// fields are plain values or outputs of other resources.
#[derive(Clone)]
pub struct FakeResource {
    provider: Arc<FakeProvider>,
    inputs: BTreeMap<String, FakeInput>,
}

#[derive(Clone)]
enum FakeInput {
    Value(Value),
    Output(Output<Value>),
}

impl FakeResource {
    pub fn new(provider: &Arc<FakeProvider>) -> Self {
        FakeResource {
            provider: provider.clone(),
            inputs: BTreeMap::new(),
        }
    }

    /// Sets an input to a plain value.
    pub fn set(mut self, key: &str, v: impl serde::Serialize) -> Self {
        self.inputs.insert(
            key.into(),
            FakeInput::Value(serde_json::to_value(v).expect("value serializes")),
        );
        self
    }

    /// Sets an input to an output of another resource (a dependency).
    pub fn set_output<T>(mut self, key: &str, o: &Output<T>) -> Self {
        self.inputs.insert(key.into(), FakeInput::Output(o.untyped()));
        self
    }
}

impl serde::Serialize for FakeResource {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut m = s.serialize_map(Some(self.inputs.len()))?;
        for (k, v) in &self.inputs {
            match v {
                FakeInput::Value(v) => m.serialize_entry(k, v)?,
                FakeInput::Output(o) => m.serialize_entry(k, o)?,
            }
        }
        m.end()
    }
}

impl Resource for FakeResource {
    fn kind(&self) -> String {
        self.provider.kind.clone()
    }
    fn provider(&self) -> Arc<dyn ResourceProvider> {
        self.provider.clone()
    }
}

/// A lookup of fake objects: those whose inputs hold every field set here.
#[derive(Clone)]
pub struct FakeLookup(FakeResource);

impl FakeLookup {
    pub fn new(provider: &Arc<FakeProvider>) -> Self {
        FakeLookup(FakeResource::new(provider))
    }

    /// Matches objects whose input `key` is `v`.
    pub fn matching(self, key: &str, v: impl serde::Serialize) -> Self {
        FakeLookup(self.0.set(key, v))
    }

    /// Matches objects whose input `key` is an output of another resource.
    pub fn matching_output<T>(self, key: &str, o: &Output<T>) -> Self {
        FakeLookup(self.0.set_output(key, o))
    }
}

impl serde::Serialize for FakeLookup {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl crate::model::Lookup for FakeLookup {
    type Resource = FakeResource;
    fn kind(&self) -> String {
        self.0.provider.kind.clone()
    }
    fn provider(&self) -> Arc<dyn ResourceProvider> {
        self.0.provider.clone()
    }
}

impl Handle<FakeResource> {
    /// The fake object's ARN-like output.
    pub fn arn(&self) -> Output<String> {
        self.output("arn")
    }
}
