//! The provider contract: what every resource kind implements, and the registry of kinds.
//!
//! A kind has a type name (`local:File`, `aws:ec2:Vpc`), a [`Schema`] and five operations:
//! `create`, `read`, `update`, `delete` and `diff` (derived from the schema unless the
//! kind overrides it), plus `find`, which looks for an object an interrupted create may
//! have made (by the `spar:address` and `spar:stack` ownership tags in the cloud) so it is adopted, not
//! leaked or duplicated.
//!
//! Rules kept here:
//! - providers receive plain values: no secret, unknown or output markers;
//! - outputs a provider returns are marked secret by the engine at the schema's
//!   `secret_outputs` paths; a provider need not mark them itself;
//! - a provider owns its retries (throttling, eventual consistency) and waiters, and
//!   reports progress and retries through [`OpContext::progress`];
//! - `delete` returns only once the object is really gone; deleting an object that is
//!   already gone succeeds.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::address::Address;
use crate::value::{self, Path, PropertyChange};

/// What a kind declares about its inputs and outputs.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    /// Input paths (patterns) whose change forces the object to be replaced.
    pub replace_on: Vec<Path>,
    /// Output paths (patterns) that hold secrets.
    pub secret_outputs: Vec<Path>,
    /// Output paths that may change on an in-place update; all others keep their value.
    pub volatile_outputs: Vec<Path>,
    /// Replace by deleting the old object first (names that must be unique, say).
    pub delete_before_replace: bool,
    /// Input paths (patterns) holding Unix permission bits: plans show them in octal
    /// (`0644`), as people write them; the stored and JSON values stay numbers.
    pub file_modes: Vec<Path>,
}

impl Schema {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn replace_on(mut self, paths: &[&str]) -> Self {
        self.replace_on.extend(paths.iter().map(|p| Path::parse(p)));
        self
    }
    pub fn secret_outputs(mut self, paths: &[&str]) -> Self {
        self.secret_outputs.extend(paths.iter().map(|p| Path::parse(p)));
        self
    }
    pub fn volatile_outputs(mut self, paths: &[&str]) -> Self {
        self.volatile_outputs.extend(paths.iter().map(|p| Path::parse(p)));
        self
    }
    pub fn delete_before_replace(mut self, yes: bool) -> Self {
        self.delete_before_replace = yes;
        self
    }
    pub fn file_modes(mut self, paths: &[&str]) -> Self {
        self.file_modes.extend(paths.iter().map(|p| Path::parse(p)));
        self
    }
}

/// The result of comparing stored inputs with desired inputs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DiffResult {
    pub changes: Vec<PropertyChange>,
    /// The changed paths that force a replacement.
    pub replace_paths: Vec<Path>,
    pub delete_before_replace: bool,
}

impl DiffResult {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

/// Diffs inputs by the schema: every changed leaf, and those under a `replace_on` path.
pub fn schema_diff(schema: &Schema, old: &Value, new: &Value) -> DiffResult {
    let changes = value::diff(old, new);
    let replace_paths = changes
        .iter()
        .filter(|c| schema.replace_on.iter().any(|p| p.is_prefix_of(&c.path)))
        .map(|c| c.path.clone())
        .collect();
    DiffResult {
        changes,
        replace_paths,
        delete_before_replace: schema.delete_before_replace,
    }
}

/// What `create` (or `find`) returns.
#[derive(Debug, Clone, PartialEq)]
pub struct Created {
    pub id: String,
    pub outputs: Value,
}

/// What `read` returns for a live object.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadResult {
    /// The object's id (it may differ from the one asked for when importing by name).
    pub id: String,
    /// The live inputs, shaped like the program's inputs, so drift is a plain diff.
    pub inputs: Value,
    pub outputs: Value,
}

impl ReadResult {
    /// The one read of a set lookup, made of every object it `found`: its id says how
    /// many; its inputs are `{"items": [each one's inputs]}`; its outputs `{"count": n,
    /// "ids": [...], "items": [each one's outputs]}`, in id order (a kind's listing order
    /// is not a promise, and a reordered list must not read as a change).
    pub fn set(mut found: Vec<ReadResult>) -> ReadResult {
        found.sort_by(|a, b| a.id.cmp(&b.id));
        let count = found.len();
        let mut ids = Vec::with_capacity(count);
        let mut inputs = Vec::with_capacity(count);
        let mut outputs = Vec::with_capacity(count);
        for r in found {
            ids.push(Value::String(r.id));
            inputs.push(r.inputs);
            outputs.push(r.outputs);
        }
        ReadResult {
            id: format!("{count} found"),
            inputs: serde_json::json!({ "items": inputs }),
            outputs: serde_json::json!({ "count": count, "ids": ids, "items": outputs }),
        }
    }

    /// The objects of a set lookup's read ([`ReadResult::set`]), each as it was found
    /// (none when this is not such a read).
    pub fn items(&self) -> Vec<ReadResult> {
        let list = |v: &Value, key: &str| v.get(key).and_then(Value::as_array).cloned().unwrap_or_default();
        let ids = list(&self.outputs, "ids");
        let inputs = list(&self.inputs, "items");
        let outputs = list(&self.outputs, "items");
        ids.into_iter()
            .zip(inputs)
            .zip(outputs)
            .map(|((id, inputs), outputs)| ReadResult {
                id: id.as_str().unwrap_or_default().to_string(),
                inputs,
                outputs,
            })
            .collect()
    }
}

/// A provider failure, with the message to show the user.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum ProviderError {
    /// Any other failure.
    #[error("{0}")]
    Failed(String),
    /// The object does not exist (any more): a delete that meets it is done.
    #[error("{0}")]
    NotFound(String),
    /// Another operation or owner holds the object (in use, a conflicting change).
    #[error("{0}")]
    Conflict(String),
    /// The cloud kept throttling after spar's own retries.
    #[error("{0}")]
    Throttled(String),
    /// The cloud refused the inputs as invalid: retrying the same call cannot help.
    #[error("{0}")]
    InvalidInput(String),
    /// An account limit or quota is reached.
    #[error("{0}")]
    Quota(String),
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout { what: String, after: Duration },
    #[error("cancelled")]
    Cancelled,
    #[error("no resource kind named `{0}` is known to this program")]
    UnknownKind(String),
    /// The kind refuses the change as planned, because the cloud would refuse it or it
    /// would break what runs (from [`ResourceProvider::preview`]): planning fails with this
    /// message, where any other preview error is only a warning.
    #[error("{0}")]
    Refused(String),
}

impl ProviderError {
    pub fn msg(m: impl std::fmt::Display) -> Self {
        ProviderError::Failed(m.to_string())
    }

    /// The kind of failure by its variant, for messages and JSON (`not_found`, ...).
    pub fn category(&self) -> &'static str {
        match self {
            ProviderError::Failed(_) => "failed",
            ProviderError::NotFound(_) => "not_found",
            ProviderError::Conflict(_) => "conflict",
            ProviderError::Throttled(_) => "throttled",
            ProviderError::InvalidInput(_) => "invalid_input",
            ProviderError::Quota(_) => "quota",
            ProviderError::Timeout { .. } => "timeout",
            ProviderError::Cancelled => "cancelled",
            ProviderError::UnknownKind(_) => "unknown_kind",
            ProviderError::Refused(_) => "refused",
        }
    }
}

/// Per-operation timeouts a user may set on a resource.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Timeouts {
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_secs")]
    pub create: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_secs")]
    pub update: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_secs")]
    pub delete: Option<Duration>,
}

mod opt_secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.map(Duration::from_secs_f64))
    }
}

/// A line of progress from inside an operation (waiting, retrying, ...).
pub type ProgressFn = Arc<dyn Fn(&Address, &str) + Send + Sync>;

/// What an operation knows about the run it is part of.
#[derive(Clone)]
pub struct OpContext {
    pub address: Address,
    /// The user's timeout for this operation, if any; providers use their own default
    /// when `None`.
    pub timeout: Option<Duration>,
    /// Cancelled when the run is interrupted; long waits should stop early.
    pub cancel: CancellationToken,
    /// For `find`: ids of objects spar already tracks at this address (the current object
    /// and old objects of a replacement). They carry the same ownership tag, so `find` must
    /// skip them: adopting one would make spar delete the only live object.
    pub tracked_ids: Vec<String>,
    /// The stack the operation belongs to, `<program>/<stack>` (`dagger-ci/dev`); empty
    /// outside a stack (one-off calls in tests). Kinds that tag or name objects for
    /// ownership include it, so that two stacks of one program in one account never
    /// take each other's objects for their own.
    pub stack: Arc<str>,
    progress: ProgressFn,
    /// Calls retried so far in the run (shared by every operation of it).
    retried: Arc<std::sync::atomic::AtomicU64>,
}

impl OpContext {
    pub fn new(address: Address, timeout: Option<Duration>, cancel: CancellationToken, progress: ProgressFn) -> Self {
        OpContext {
            address,
            timeout,
            cancel,
            tracked_ids: Vec::new(),
            stack: Arc::from(""),
            progress,
            retried: Arc::default(),
        }
    }

    /// The same context counting its retries into `counter` (the run's).
    pub fn counting_retries(mut self, counter: Arc<std::sync::atomic::AtomicU64>) -> Self {
        self.retried = counter;
        self
    }

    /// Reports that a call is retried (`retrying CreateVpc: Throttling`) and counts it, so a
    /// run can say how many calls it retried.
    pub fn retrying(&self, message: &str) {
        self.retried.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.progress(message);
    }

    /// Calls retried so far by the operations sharing this context's counter.
    pub fn retried(&self) -> u64 {
        self.retried.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The same context in stack `stack` (see [`stack_id`]).
    pub fn in_stack(mut self, stack: &str) -> Self {
        self.stack = Arc::from(stack);
        self
    }

    /// A context for one-off operations outside a run (tests, import, refresh).
    pub fn detached(address: Address) -> Self {
        OpContext::new(address, None, CancellationToken::new(), Arc::new(|_, _| {}))
    }

    /// Reports progress ("waiting for ACTIVE", "retrying: Throttling") to the apply view.
    pub fn progress(&self, message: &str) {
        (self.progress)(&self.address, message)
    }
}

/// A stack's identity as operations see it: `<program>/<stack>`.
pub fn stack_id(program: &str, stack: &str) -> String {
    format!("{program}/{stack}")
}

/// The operations of one resource kind.
#[async_trait]
pub trait ResourceProvider: Send + Sync + 'static {
    /// The type name, such as `local:File`.
    fn kind(&self) -> &str;

    fn schema(&self) -> &Schema;

    /// Compares stored and desired inputs. The default follows the schema.
    fn diff(&self, old: &Value, new: &Value) -> DiffResult {
        schema_diff(self.schema(), old, new)
    }

    /// Lines a plan shows under a create or an update of this kind, beyond its property
    /// diff: a chart lists the objects a new rendering adds and removes; an EKS cluster
    /// the steps of a version upgrade. `old_outputs` is `None` for a create. Called only
    /// with fully known inputs (secrets in the clear, as `create` gets them); may read,
    /// must not change anything. [`ProviderError::Refused`] fails the plan (a change the
    /// cloud would refuse halfway); any other error becomes a plan warning.
    async fn preview(
        &self,
        _ctx: &OpContext,
        _inputs: &Value,
        _old_outputs: Option<&Value>,
    ) -> Result<Vec<String>, ProviderError> {
        Ok(Vec::new())
    }

    async fn create(&self, ctx: &OpContext, inputs: &Value) -> Result<Created, ProviderError>;

    /// Reads the live object; `Ok(None)` when it no longer exists. `inputs` and `outputs`
    /// are what state holds (`Value::Null` when importing).
    async fn read(
        &self,
        ctx: &OpContext,
        id: &str,
        inputs: &Value,
        outputs: &Value,
    ) -> Result<Option<ReadResult>, ProviderError>;

    /// Changes the object in place; returns its new outputs.
    async fn update(
        &self,
        ctx: &OpContext,
        id: &str,
        old_inputs: &Value,
        new_inputs: &Value,
        old_outputs: &Value,
    ) -> Result<Value, ProviderError>;

    async fn delete(&self, ctx: &OpContext, id: &str, inputs: &Value, outputs: &Value) -> Result<(), ProviderError>;

    /// The outputs a create would return when they follow from `inputs` alone, with no
    /// call (a connection described by its inputs); `None` for kinds whose outputs the
    /// cloud decides. Lets a lookup use a resource declared in the same program before
    /// it exists.
    fn planned_outputs(&self, _inputs: &Value) -> Option<Value> {
        None
    }

    /// The Rust statement that declares an object with `inputs` (as `read` returns them)
    /// at `name` with this kind's builder, such as
    /// `stack.add("vpc", ec2::Vpc::new("10.0.0.0/16").dns_hostnames(true))?;`, written with
    /// the names [`crate::declaration::PRELUDE`] brings into scope; a setter whose value is
    /// the builder's default is left out. `None` when the kind has no builder for these
    /// inputs. `import` prints it for each object it adopts.
    fn declaration(&self, _name: &str, _inputs: &Value) -> Option<String> {
        None
    }

    /// The existing objects matching `query` (a lookup, or data source: the kind's own
    /// query shape, such as `{"tags": {...}}`), each read as `read` reads it, so a
    /// looked-up object has the outputs a created one has; the engine requires exactly
    /// one. Must not change anything.
    async fn lookup(&self, _ctx: &OpContext, _query: &Value) -> Result<Vec<ReadResult>, ProviderError> {
        Err(ProviderError::Failed(format!("{} has no lookup", self.kind())))
    }

    /// Finds an object that an interrupted create of `ctx.address` may have made, other
    /// than those in `ctx.tracked_ids`.
    async fn find(&self, _ctx: &OpContext, _inputs: &Value) -> Result<Option<Created>, ProviderError> {
        Ok(None)
    }
}

/// Every resource kind a program can use, by type name.
#[derive(Clone, Default)]
pub struct Registry {
    kinds: BTreeMap<String, Arc<dyn ResourceProvider>>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn register(&mut self, provider: Arc<dyn ResourceProvider>) {
        self.kinds.insert(provider.kind().to_string(), provider);
    }

    pub fn get(&self, kind: &str) -> Result<&Arc<dyn ResourceProvider>, ProviderError> {
        self.kinds
            .get(kind)
            .ok_or_else(|| ProviderError::UnknownKind(kind.to_string()))
    }

    pub fn kinds(&self) -> impl Iterator<Item = &str> {
        self.kinds.keys().map(String::as_str)
    }
}
