//! One provider call and everything around it: the envelope every step's call goes
//! through ([`Envelope::call`]), so the executor (`mod.rs`) only decides what runs when and
//! each step (`step.rs`) only says what to send and how to record what came back.
//!
//! Rules kept here:
//! - inputs are resolved from the live snapshot when the step starts ([`resolved_inputs`]),
//!   and a provider sees values with their secrets unsealed only through [`plain`]: the one
//!   place `value` is called on the way in;
//! - the journal's `begin` is durable before the call; `done` (outputs sealed) or `failed`
//!   follows it, except for a call cut short while waiting, which the step records itself
//!   (a create as unsettled, an update as unfinished);
//! - outputs come back with the kind's secret paths and echoed secret inputs marked, and
//!   error messages with every secret value the call was given redacted: the one place
//!   `value` is called on the way out;
//! - the user's timeout bounds the call here too (plus a grace for the kind's own error).

use std::future::Future;
use std::time::Duration;

use serde_json::Value;

use super::{Shared, now, provider_of};
use crate::address::Address;
use crate::plan::Change;
use crate::plan::diff::resolve_from_state;
use crate::provider::{OpContext, ProgressFn, ProviderError, Schema};
use crate::state::{JournalEntry, StepKind, StoredOptions};
use crate::value::{self, ResolveError, Resolved};

/// What a provider call returns, as the journal records it: the object's id (a create's)
/// and its outputs (a create's or an update's).
pub(super) type Returned = (Option<String>, Option<Value>);

/// How an enveloped call ended.
pub(super) enum Ended {
    /// It returned; journaled `done`, outputs sealed.
    Done(Returned),
    /// It failed; journaled `failed`; the message is redacted.
    Failed(String),
    /// Stopped while waiting (timeout, abort): a create may have made its object, an update
    /// may have changed it. Not journaled: the step records it as its kind needs.
    CutShort { seq: u64, started: String, error: String },
}

/// One call of a step: what the journal's `begin` records, and the values whose secrets
/// the provider gets unsealed (so errors must not show them).
pub(super) struct Envelope<'a> {
    pub shared: &'a Shared,
    pub change: &'a Change,
    pub step: StepKind,
    /// The object's id (none for a create).
    pub id: Option<String>,
    /// The inputs journaled with `begin` (null for a delete).
    pub inputs: &'a Value,
    pub options: StoredOptions,
    pub timeout: Option<Duration>,
    /// Every value the call gets: inputs, and the stored inputs and outputs it is sent.
    pub secrets: Vec<&'a Value>,
    /// Marks the secrets among the outputs.
    pub schema: &'a Schema,
}

/// A value as a provider gets it: secrets unsealed.
pub(super) fn plain(v: &Value) -> Value {
    value::strip_secrets(v)
}

/// The inputs of the declared resource at `address`, resolved from the live snapshot; an
/// error when one is still unknown.
pub(super) fn resolved_inputs(shared: &Shared, address: &Address) -> Result<Value, String> {
    let desired = shared
        .graph
        .get(address)
        .ok_or_else(|| format!("`{address}` is not declared by the program"))?;
    let snap = shared.snapshot.lock().expect("snapshot mutex");
    let lookup = |a: &Address, path: &str| -> Result<Resolved, ResolveError> {
        match snap.get(a) {
            Some(r) => resolve_from_state(r, a, path),
            None => Ok(Resolved::Unknown),
        }
    };
    let v = value::resolve(&desired.inputs, &lookup, &shared.graph.transforms).map_err(|e| e.to_string())?;
    if value::contains_unknown(&v) {
        return Err(
            "an input is still unknown: a resource it references does not exist (was it excluded or targeted away?)"
                .into(),
        );
    }
    Ok(v)
}

impl Envelope<'_> {
    /// Journals `begin`, runs `call` (given the operation's context) bounded by the
    /// timeout, seals what it returned or redacts its error, and journals the end. The
    /// error is a journal failure: the call was not made, or its end is not recorded.
    pub async fn call<F, Fut>(self, call: F) -> Result<Ended, String>
    where
        F: FnOnce(OpContext) -> Fut,
        Fut: Future<Output = Result<Returned, ProviderError>>,
    {
        let ctx = self.op_context();
        let started = now();
        let seq = self.begin().await?;
        let result = bounded(ctx.timeout, call(ctx)).await;
        let result = match result {
            Err(e) if may_have_made(&e) => {
                return Ok(Ended::CutShort {
                    seq,
                    started,
                    error: self.redact(&e.to_string()),
                });
            }
            Ok((id, outputs)) => Ok((id, outputs.map(|o| self.seal(o)))),
            Err(e) => Err(self.redact(&e.to_string())),
        };
        self.end(seq, &result).await?;
        Ok(match result {
            Ok(r) => Ended::Done(r),
            Err(e) => Ended::Failed(e),
        })
    }

    fn op_context(&self) -> OpContext {
        let events = self.shared.events.clone();
        let progress: ProgressFn = std::sync::Arc::new(move |a: &Address, m: &str| events.step_progress(a, m));
        OpContext::new(
            self.change.address.clone(),
            self.timeout,
            self.shared.abort.child_token(),
            progress,
        )
        .in_stack(&crate::provider::stack_id(
            &self.shared.plan.program,
            &self.shared.plan.stack,
        ))
        .counting_retries(self.shared.retried.clone())
    }

    /// Outputs with the kind's secret paths and the secret inputs they echo marked.
    fn seal(&self, mut outputs: Value) -> Value {
        value::mark_secret_paths(&mut outputs, &self.schema.secret_outputs);
        value::mark_echoed_secrets(self.inputs, &mut outputs);
        outputs
    }

    /// `message` with every secret value the call was given replaced: a kind's error may
    /// quote what it was given.
    fn redact(&self, message: &str) -> String {
        self.secrets
            .iter()
            .fold(message.to_string(), |m, v| value::redact_secrets_in(&m, v))
    }

    async fn begin(&self) -> Result<u64, String> {
        let shared = self.shared;
        let seq = shared.journal.next_seq();
        let dependencies = match self.step {
            StepKind::Delete | StepKind::DeleteReplaced => Vec::new(),
            _ => self.change.dependencies.clone(),
        };
        shared
            .journal
            .append(&JournalEntry::Begin {
                seq,
                step: self.step,
                address: self.change.address.clone(),
                kind: self.change.kind.clone(),
                id: self.id.clone(),
                inputs: shared.key.seal(self.inputs),
                dependencies,
                provider: provider_of(&self.change.kind),
                options: self.options.clone(),
                started: now(),
            })
            .await
            .map_err(|e| format!("could not write the journal, so the call was not made: {e}"))?;
        Ok(seq)
    }

    async fn end(&self, seq: u64, result: &Result<Returned, String>) -> Result<(), String> {
        let entry = match result {
            Ok((id, outputs)) => JournalEntry::Done {
                seq,
                id: id.clone(),
                outputs: outputs.as_ref().map(|o| self.shared.key.seal(o)),
            },
            Err(e) => JournalEntry::Failed { seq, error: e.clone() },
        };
        // Dependents may start before this entry is synced: their own `begin` syncs the
        // journal (in order) before their provider call, and a crash before any sync leaves
        // a pending `begin` that recovery resolves through `find`.
        self.shared
            .journal
            .append_queued(&entry)
            .map_err(|e| format!("the call finished but the journal could not record it: {e}"))
    }
}

/// Extra time a kind gets past the user's timeout to report its own (better) error before
/// the engine stops waiting for it.
const TIMEOUT_GRACE: Duration = Duration::from_secs(2);

/// Runs a provider call, bounded by the user's timeout (plus [`TIMEOUT_GRACE`]) when set.
async fn bounded<T>(
    timeout: Option<Duration>,
    call: impl Future<Output = Result<T, ProviderError>>,
) -> Result<T, ProviderError> {
    match timeout {
        None => call.await,
        Some(t) => tokio::time::timeout(t + TIMEOUT_GRACE, call).await.unwrap_or_else(|_| {
            Err(ProviderError::Timeout {
                what: "the operation (the resource's timeout option)".into(),
                after: t,
            })
        }),
    }
}

/// True when a failed create may still have made its object, or a failed update may
/// have changed it: it was stopped while waiting, not refused.
fn may_have_made(e: &ProviderError) -> bool {
    matches!(e, ProviderError::Timeout { .. } | ProviderError::Cancelled)
}
