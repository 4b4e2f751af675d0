//! One step of an apply: what it sends its provider (through [`super::call::Envelope`])
//! and how it records what came back in the in-memory snapshot.
//!
//! Rules kept here: the snapshot changes only after the call's `done` is journaled; a
//! create cut short stays pending (unsettled) so the next run adopts what it made; an
//! update cut short is recorded as unfinished so the next apply sends it again; an update
//! whose resolved inputs equal the stored ones makes no call; a delete of an object
//! already gone is done.

use serde_json::Value;

use super::call::{Ended, Envelope, plain, resolved_inputs};
use super::{Shared, Step, StepStatus, provider_of, stored_options};
use crate::plan::Change;
use crate::provider::ProviderError;
use crate::state::{JournalEntry, PendingOperation, ResourceState, StepKind, StoredOptions};

/// Runs `step`: `Ok` with what happened, `Err` with why it failed.
pub(super) async fn run(shared: &Shared, step: &Step) -> Result<StepStatus, String> {
    match step.kind {
        StepKind::Create | StepKind::CreateReplacement => create(shared, step).await,
        StepKind::Update => update(shared, step).await,
        StepKind::Delete | StepKind::DeleteReplaced => delete(shared, step).await,
    }
}

async fn create(shared: &Shared, step: &Step) -> Result<StepStatus, String> {
    let change = &shared.plan.changes[step.change];
    let provider = shared.registry.get(&change.kind).map_err(|e| e.to_string())?.clone();
    let desired = shared.graph.get(&change.address).ok_or("not declared by the program")?;
    let inputs = resolved_inputs(shared, &change.address)?;
    let options = stored_options(&desired.options);
    let envelope = Envelope {
        shared,
        change,
        step: step.kind,
        id: None,
        inputs: &inputs,
        options: options.clone(),
        timeout: desired.options.timeouts.create,
        secrets: vec![&inputs],
        schema: provider.schema(),
    };
    let (callee, sent) = (provider.clone(), plain(&inputs));
    let ended = envelope
        .call(|ctx| async move {
            let c = callee.create(&ctx, &sent).await?;
            Ok((Some(c.id), Some(c.outputs)))
        })
        .await?;
    let (id, outputs) = match ended {
        Ended::Done(r) => r,
        Ended::Failed(e) => return Err(e),
        Ended::CutShort { seq, started, error } => {
            unsettled(shared, seq, change, step.kind, &inputs, options, started, &error)?;
            return Err(format!(
                "{error}; the object may have been made: it stays pending, and the next run finds and adopts it"
            ));
        }
    };
    let mut snap = shared.snapshot.lock().expect("snapshot mutex");
    if step.kind == StepKind::CreateReplacement {
        snap.depose(&change.address);
    }
    snap.upsert(ResourceState {
        address: change.address.clone(),
        kind: change.kind.clone(),
        id: id.unwrap_or_default(),
        inputs,
        outputs: outputs.unwrap_or(Value::Null),
        dependencies: change.dependencies.clone(),
        provider: provider_of(&change.kind),
        options,
        unfinished: None,
    });
    Ok(StepStatus::Done)
}

/// Records a create whose outcome is unknown: the journal says so (replay keeps it
/// pending) and the in-memory snapshot holds it as pending, so the saved state does too.
#[allow(clippy::too_many_arguments)]
fn unsettled(
    shared: &Shared,
    seq: u64,
    change: &Change,
    step: StepKind,
    inputs: &Value,
    options: StoredOptions,
    started: String,
    error: &str,
) -> Result<(), String> {
    shared
        .journal
        .append_queued(&JournalEntry::Unsettled {
            seq,
            error: error.to_string(),
        })
        .map_err(|e| format!("the call ended but the journal could not record it: {e}"))?;
    shared
        .snapshot
        .lock()
        .expect("snapshot mutex")
        .pending
        .push(PendingOperation {
            step,
            address: change.address.clone(),
            kind: change.kind.clone(),
            id: None,
            inputs: inputs.clone(),
            dependencies: change.dependencies.clone(),
            options,
            started,
        });
    Ok(())
}

async fn update(shared: &Shared, step: &Step) -> Result<StepStatus, String> {
    let change = &shared.plan.changes[step.change];
    let provider = shared.registry.get(&change.kind).map_err(|e| e.to_string())?.clone();
    let desired = shared.graph.get(&change.address).ok_or("not declared by the program")?;
    let mut inputs = resolved_inputs(shared, &change.address)?;
    let old = shared
        .snapshot
        .lock()
        .expect("snapshot mutex")
        .get(&change.address)
        .cloned()
        .ok_or("it is no longer in state")?;
    crate::value::keep_paths(&mut inputs, &old.inputs, &desired.options.ignore_changes);
    let options = stored_options(&desired.options);
    let d = provider.diff(&old.inputs, &inputs);
    // An unfinished update is sent again even with nothing changed: its wait reruns.
    if d.is_empty() && old.unfinished.is_none() {
        let mut snap = shared.snapshot.lock().expect("snapshot mutex");
        if let Some(r) = snap.get_mut(&change.address) {
            r.dependencies = change.dependencies.clone();
            r.options = options;
        }
        return Ok(StepStatus::Unchanged);
    }
    if !d.replace_paths.is_empty() {
        let paths: Vec<String> = d.replace_paths.iter().map(|p| p.to_string()).collect();
        return Err(format!(
            "once its inputs were known, {} would force a replacement the plan did not show; run `plan` again",
            paths.join(", ")
        ));
    }
    let envelope = Envelope {
        shared,
        change,
        step: StepKind::Update,
        id: Some(old.id.clone()),
        inputs: &inputs,
        options: options.clone(),
        timeout: desired.options.timeouts.update,
        secrets: vec![&inputs, &old.inputs, &old.outputs],
        schema: provider.schema(),
    };
    let (callee, id) = (provider.clone(), old.id.clone());
    let (old_inputs, new_inputs, old_outputs) = (plain(&old.inputs), plain(&inputs), plain(&old.outputs));
    let ended = envelope
        .call(|ctx| async move {
            let outputs = callee.update(&ctx, &id, &old_inputs, &new_inputs, &old_outputs).await?;
            Ok((None, Some(outputs)))
        })
        .await?;
    let outputs = match ended {
        Ended::Done((_, outputs)) => outputs,
        Ended::Failed(e) => return Err(e),
        Ended::CutShort { seq, error, .. } => {
            // The change was sent; only its wait was cut short. State must say so, or the
            // next plan, finding the same inputs, would never send it again.
            shared
                .journal
                .append_queued(&JournalEntry::Unfinished {
                    seq,
                    error: error.clone(),
                })
                .map_err(|je| format!("{error}; and the journal could not record it: {je}"))?;
            let mut snap = shared.snapshot.lock().expect("snapshot mutex");
            if let Some(r) = snap.get_mut(&change.address) {
                r.inputs = inputs;
                r.dependencies = change.dependencies.clone();
                r.options = options;
                r.unfinished = Some(error.clone());
            }
            return Err(format!(
                "{error}; the change was sent, so state records it as unfinished and the next apply updates it again"
            ));
        }
    };
    let mut snap = shared.snapshot.lock().expect("snapshot mutex");
    if let Some(r) = snap.get_mut(&change.address) {
        r.inputs = inputs;
        r.outputs = outputs.unwrap_or(Value::Null);
        r.dependencies = change.dependencies.clone();
        r.options = options;
        r.unfinished = None;
    }
    Ok(StepStatus::Done)
}

async fn delete(shared: &Shared, step: &Step) -> Result<StepStatus, String> {
    let change = &shared.plan.changes[step.change];
    let provider = shared.registry.get(&change.kind).map_err(|e| e.to_string())?.clone();
    let id = change.id.clone().ok_or("no id to delete")?;
    // The object to delete: a deposed one, or the current one.
    let target = {
        let snap = shared.snapshot.lock().expect("snapshot mutex");
        let deposed = snap
            .deposed
            .iter()
            .find(|d| d.address == change.address && d.id == id)
            .cloned();
        match deposed {
            Some(d) => Some((d.inputs, d.outputs, d.options)),
            None => snap
                .get(&change.address)
                .filter(|r| r.id == id)
                .map(|r| (r.inputs.clone(), r.outputs.clone(), r.options.clone())),
        }
    };
    let Some((inputs, outputs, options)) = target else {
        return Ok(StepStatus::Unchanged);
    };
    let retain = options.retain_on_delete;
    let envelope = Envelope {
        shared,
        change,
        step: step.kind,
        id: Some(id.clone()),
        inputs: &Value::Null,
        options: options.clone(),
        timeout: options.timeouts.delete,
        secrets: vec![&inputs, &outputs],
        schema: provider.schema(),
    };
    let (callee, target_id) = (provider.clone(), id.clone());
    let (sent_inputs, sent_outputs) = (plain(&inputs), plain(&outputs));
    let ended = envelope
        .call(|ctx| async move {
            if retain {
                ctx.progress("retained (retain_on_delete): forgotten, not deleted");
                return Ok((None, None));
            }
            match callee.delete(&ctx, &target_id, &sent_inputs, &sent_outputs).await {
                Ok(()) => Ok((None, None)),
                // Already gone (deleted outside spar, or by a run that died before
                // recording it): the delete is done.
                Err(ProviderError::NotFound(_)) => {
                    ctx.progress("already gone");
                    Ok((None, None))
                }
                Err(e) => Err(e),
            }
        })
        .await?;
    match ended {
        Ended::Done(_) => {}
        Ended::Failed(e) => return Err(e),
        // A delete cut short is a failure like any other: the object is still in state,
        // and the next run deletes it (or finds it gone).
        Ended::CutShort { seq, error, .. } => {
            shared
                .journal
                .append_queued(&JournalEntry::Failed {
                    seq,
                    error: error.clone(),
                })
                .map_err(|je| format!("{error}; and the journal could not record it: {je}"))?;
            return Err(error);
        }
    }
    let mut snap = shared.snapshot.lock().expect("snapshot mutex");
    let before = snap.deposed.len();
    snap.deposed.retain(|d| !(d.address == change.address && d.id == id));
    if snap.deposed.len() == before && snap.get(&change.address).is_some_and(|r| r.id == id) {
        snap.remove(&change.address);
    }
    Ok(StepStatus::Done)
}
