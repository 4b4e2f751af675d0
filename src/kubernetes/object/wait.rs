//! Waiting: readiness of applied objects (with the scheduler's words for pods that
//! cannot run) and deletion.

use std::time::Instant;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DynamicObject, ListParams};
use serde_json::Value;

use crate::provider::{OpContext, ProviderError};

use super::*;

pub(crate) async fn sleep_or_cancel(ctx: &OpContext) -> Result<(), ProviderError> {
    tokio::select! {
        _ = ctx.cancel.cancelled() => Err(ProviderError::Cancelled),
        _ = tokio::time::sleep(POLL) => Ok(()),
    }
}

/// `None` when the object is ready; otherwise what it is waiting for.
pub fn not_ready(kind: &str, obj: &Value) -> Option<String> {
    let generation = i64_at(obj, &["metadata", "generation"]).unwrap_or(0);
    let observed = i64_at(obj, &["status", "observedGeneration"]).unwrap_or(-1);
    let st = |k: &str| i64_at(obj, &["status", k]).unwrap_or(0);
    match kind {
        "Deployment" | "StatefulSet" => {
            if observed < generation {
                return Some(format!("waiting for the controller to see generation {generation}"));
            }
            let want = i64_at(obj, &["spec", "replicas"]).unwrap_or(1);
            let (updated, ready) = if kind == "Deployment" {
                (st("updatedReplicas"), st("availableReplicas"))
            } else {
                (st("updatedReplicas"), st("readyReplicas"))
            };
            if updated < want || ready < want || st("replicas") > want {
                Some(format!(
                    "{ready}/{want} replicas {}, {updated} updated",
                    if kind == "Deployment" { "available" } else { "ready" }
                ))
            } else {
                None
            }
        }
        "DaemonSet" => {
            if observed < generation {
                return Some(format!("waiting for the controller to see generation {generation}"));
            }
            let want = st("desiredNumberScheduled");
            let (updated, available) = (st("updatedNumberScheduled"), st("numberAvailable"));
            if updated < want || available < want {
                Some(format!("{available}/{want} pods available, {updated} updated"))
            } else {
                None
            }
        }
        "CustomResourceDefinition" => {
            let established = obj
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Established" && c["status"] == "True"));
            (!established).then(|| "waiting for the CRD to be established".to_string())
        }
        // A Job is ready when it has completed (what `helm install --wait-for-jobs` and a
        // hook wait for); a failed one never is, and says why.
        "Job" => {
            let cond = |t: &str| {
                obj.pointer("/status/conditions")
                    .and_then(Value::as_array)
                    .and_then(|cs| cs.iter().find(|c| c["type"] == t && c["status"] == "True"))
            };
            if cond("Complete").is_some() {
                None
            } else if let Some(f) = cond("Failed") {
                Some(format!(
                    "the Job failed: {}",
                    f["message"]
                        .as_str()
                        .or(f["reason"].as_str())
                        .unwrap_or("no reason given")
                ))
            } else {
                let want = i64_at(obj, &["spec", "completions"]).unwrap_or(1);
                Some(format!("{}/{want} completions", st("succeeded")))
            }
        }
        // ARC's runner scale set: ready once its minimum runners run, as ARC's controller
        // counts them (`status.runningEphemeralRunners`, actions-runner-controller
        // `AutoscalingRunnerSetStatus`); a set with no minimum is ready at once. Runners that
        // cannot start (no node for them, no registration) fail the apply, not the first job.
        "AutoscalingRunnerSet" => {
            let want = i64_at(obj, &["spec", "minRunners"]).unwrap_or(0);
            let running = st("runningEphemeralRunners");
            (running < want).then(|| format!("{running}/{want} minimum runners running"))
        }
        "Namespace" => match str_at(obj, &["status", "phase"]) {
            Some("Active") | None => None,
            Some(p) => Some(format!("namespace is {p}")),
        },
        _ => None,
    }
}

/// Why a workload's pods do not run, in the scheduler's words: the first of the pods its
/// `spec.selector.matchLabels` selects (an ARC scale set's: its runners, by ARC's labels), by name, that is unbound with `PodScheduled=False`,
/// e.g. `pod runner-7d9f-x2k4q is Unschedulable: 0/3 nodes are available: 3 node(s) had
/// untolerated taint {CriticalAddonsOnly: true}.` A timeout then says what to fix rather
/// than only that replicas were missing. `None` for other kinds, or when the pods cannot
/// be listed (the wait goes on without it).
pub(crate) async fn unschedulable_pods(api: &Api<DynamicObject>, kind: &str, live: &Value) -> Option<String> {
    let ns = live.pointer("/metadata/namespace")?.as_str()?;
    let selector = match kind {
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" => live
            .pointer("/spec/selector/matchLabels")?
            .as_object()?
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(","),
        // ARC labels every runner pod with its scale set's name and namespace.
        "AutoscalingRunnerSet" => format!(
            "actions.github.com/scale-set-name={},actions.github.com/scale-set-namespace={ns}",
            live.pointer("/metadata/name")?.as_str()?
        ),
        _ => return None,
    };
    let pods: Api<Pod> = Api::namespaced(api.clone().into_client(), ns);
    let list = pods.list(&ListParams::default().labels(&selector)).await.ok()?;
    let mut items = list.items;
    items.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    items.iter().find_map(|p| {
        if p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some() {
            return None;
        }
        let c = p
            .status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .find(|c| c.type_ == "PodScheduled" && c.status == "False")?;
        Some(format!(
            "pod {} is {}: {}",
            p.metadata.name.as_deref().unwrap_or_default(),
            c.reason.as_deref().unwrap_or("not scheduled"),
            c.message.as_deref().unwrap_or("no message")
        ))
    })
}

pub(crate) async fn wait_ready(ctx: &OpContext, api: &Api<DynamicObject>, t: &Target) -> Result<(), ProviderError> {
    let limit = ctx.timeout.unwrap_or(DEFAULT_WAIT);
    let start = Instant::now();
    let mut last = String::new();
    loop {
        let live = api
            .get_opt(&t.name)
            .await
            .map_err(|e| api_error("waiting for", t, e))?
            .ok_or_else(|| ProviderError::msg(format!("{} disappeared while spar waited for it", t.describe())))?;
        let v = serde_json::to_value(&live).map_err(|e| ProviderError::msg(e.to_string()))?;
        let Some(mut why) = not_ready(&t.kind, &v) else {
            return Ok(());
        };
        if let Some(pods) = unschedulable_pods(api, &t.kind, &v).await {
            why = format!("{why}; {pods}");
        }
        if start.elapsed() >= limit {
            return Err(ProviderError::Timeout {
                what: format!("{} to be ready ({why})", t.describe()),
                after: limit,
            });
        }
        if why != last {
            ctx.progress(&format!("waiting for {} to be ready: {why}", t.describe()));
            last = why;
        }
        sleep_or_cancel(ctx).await?;
    }
}

pub(crate) async fn wait_gone(
    ctx: &OpContext,
    api: &Api<DynamicObject>,
    t: &Target,
    uid: Option<&str>,
) -> Result<(), ProviderError> {
    let limit = ctx.timeout.unwrap_or(DEFAULT_WAIT);
    let start = Instant::now();
    let mut reported = false;
    loop {
        match api.get_opt(&t.name).await {
            Ok(None) => return Ok(()),
            Ok(Some(o)) if uid.is_some() && o.metadata.uid.as_deref() != uid => return Ok(()),
            Ok(Some(o)) => {
                if start.elapsed() >= limit {
                    let fin = o.metadata.finalizers.unwrap_or_default().join(", ");
                    return Err(ProviderError::Timeout {
                        what: format!("{} to be deleted (finalizers: [{fin}])", t.describe()),
                        after: limit,
                    });
                }
                if !reported {
                    ctx.progress(&format!("waiting for {} to be deleted", t.describe()));
                    reported = true;
                }
            }
            Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
            Err(e) => return Err(api_error("waiting for the deletion of", t, e)),
        }
        sleep_or_cancel(ctx).await?;
    }
}
