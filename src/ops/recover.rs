//! Resolving operations an interrupted run left pending.
//!
//! Rules kept here: a pending create is adopted when the kind's `find` locates the object
//! it made (so nothing is leaked or duplicated) and dropped otherwise (nothing was made);
//! an adopted object is recorded as read back, not as desired, so a create killed between
//! its API calls shows what it left undone in the next plan;
//! a pending delete is finished in state when the object is gone and kept otherwise; a
//! pending update re-reads the object, so the next plan diffs against what is live. An
//! operation whose check itself fails stays pending and is reported again.

use serde_json::Value;

use crate::apply::provider_of;
use crate::provider::{OpContext, Registry};
use crate::state::{PendingOperation, ResourceState, Snapshot, StepKind};
use crate::value;

/// Resolves `snap.pending`, returning one message per operation resolved or kept.
pub async fn resolve_pending(registry: &Registry, snap: &mut Snapshot, stack: &str) -> Vec<String> {
    let pending = std::mem::take(&mut snap.pending);
    let mut messages = Vec::new();
    for p in pending {
        match resolve_one(registry, snap, &p, stack).await {
            Ok(m) => messages.push(m),
            Err(m) => {
                messages.push(format!(
                    "{}: could not resolve the interrupted {}: {m}; it stays pending",
                    p.address, p.step
                ));
                snap.pending.push(p);
            }
        }
    }
    messages
}

async fn resolve_one(
    registry: &Registry,
    snap: &mut Snapshot,
    p: &PendingOperation,
    stack: &str,
) -> Result<String, String> {
    let provider = registry.get(&p.kind).map_err(|e| e.to_string())?;
    let mut ctx = OpContext::detached(p.address.clone()).in_stack(stack);
    // The objects spar already tracks at this address carry the same ownership tag.
    let tracked: Vec<String> = snap
        .get(&p.address)
        .map(|r| r.id.clone())
        .into_iter()
        .chain(
            snap.deposed
                .iter()
                .filter(|d| d.address == p.address)
                .map(|d| d.id.clone()),
        )
        .collect();
    ctx.tracked_ids = tracked.clone();
    match p.step {
        StepKind::Create | StepKind::CreateReplacement => {
            let found = provider
                .find(&ctx, &value::strip_secrets(&p.inputs))
                .await
                .map_err(|e| e.to_string())?;
            // Never adopt an object spar already tracks, whatever the kind's `find` says.
            let found = found.filter(|c| !tracked.contains(&c.id));
            let Some(created) = found else {
                return Ok(format!(
                    "{}: the interrupted {} made nothing; it will be planned again",
                    p.address, p.step
                ));
            };
            if p.step == StepKind::CreateReplacement {
                snap.depose(&p.address);
            }
            // What the object really is: a create killed between its API calls leaves an
            // object that is only partly set up, and recording the desired inputs would hide
            // the missing part from the next plan. Unreadable: the desired inputs stand.
            let plain_inputs = value::strip_secrets(&p.inputs);
            let (inputs, mut outputs) = match provider.read(&ctx, &created.id, &plain_inputs, &created.outputs).await {
                Ok(Some(live)) => (value::copy_secret_marks(&p.inputs, live.inputs), live.outputs),
                _ => (p.inputs.clone(), created.outputs),
            };
            value::mark_secret_paths(&mut outputs, &provider.schema().secret_outputs);
            value::mark_echoed_secrets(&p.inputs, &mut outputs);
            snap.upsert(ResourceState {
                address: p.address.clone(),
                kind: p.kind.clone(),
                id: created.id.clone(),
                inputs,
                outputs,
                dependencies: p.dependencies.clone(),
                provider: provider_of(&p.kind),
                options: p.options.clone(),
                unfinished: None,
            });
            Ok(format!(
                "{}: adopted {} made by the interrupted {}",
                p.address, created.id, p.step
            ))
        }
        StepKind::Update => {
            let Some(r) = snap.get(&p.address).cloned() else {
                return Ok(format!("{}: no longer in state; nothing to resolve", p.address));
            };
            let live = provider
                .read(
                    &ctx,
                    &r.id,
                    &value::strip_secrets(&r.inputs),
                    &value::strip_secrets(&r.outputs),
                )
                .await
                .map_err(|e| e.to_string())?;
            match live {
                Some(live) => {
                    let entry = snap.get_mut(&p.address).expect("checked above");
                    entry.inputs = value::copy_secret_marks(&r.inputs, live.inputs);
                    let mut outputs = live.outputs;
                    value::mark_secret_paths(&mut outputs, &provider.schema().secret_outputs);
                    value::mark_echoed_secrets(&entry.inputs, &mut outputs);
                    entry.outputs = outputs;
                    Ok(format!("{}: re-read after the interrupted update", p.address))
                }
                None => {
                    snap.remove(&p.address);
                    Ok(format!(
                        "{}: gone after the interrupted update; it will be created again",
                        p.address
                    ))
                }
            }
        }
        StepKind::Delete | StepKind::DeleteReplaced => {
            let id = p.id.clone().unwrap_or_default();
            let (inputs, outputs) = snap
                .deposed
                .iter()
                .find(|d| d.address == p.address && d.id == id)
                .map(|d| (d.inputs.clone(), d.outputs.clone()))
                .or_else(|| {
                    snap.get(&p.address)
                        .filter(|r| r.id == id)
                        .map(|r| (r.inputs.clone(), r.outputs.clone()))
                })
                .unwrap_or((Value::Null, Value::Null));
            let live = provider
                .read(
                    &ctx,
                    &id,
                    &value::strip_secrets(&inputs),
                    &value::strip_secrets(&outputs),
                )
                .await
                .map_err(|e| e.to_string())?;
            if live.is_some() {
                return Ok(format!(
                    "{}: still exists after the interrupted {}; it will be planned again",
                    p.address, p.step
                ));
            }
            snap.deposed.retain(|d| !(d.address == p.address && d.id == id));
            if snap.get(&p.address).is_some_and(|r| r.id == id) {
                snap.remove(&p.address);
            }
            Ok(format!(
                "{}: the interrupted {} had finished; removed from state",
                p.address, p.step
            ))
        }
    }
}
