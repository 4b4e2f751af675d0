//! The sandbox's GitHub Actions Runner Controller (scale-set mode): the runner pods an
//! AutoscalingRunnerSet keeps when no job is queued (`spec.minRunners`).
//!
//! Real ARC (actions/actions-runner-controller, `controllers/actions.github.com`) makes an
//! EphemeralRunnerSet per AutoscalingRunnerSet and one EphemeralRunner, and so one pod, per
//! runner; its listener asks GitHub how many jobs wait and never goes below `minRunners`.
//! The sandbox has no GitHub, so no job ever waits: it keeps exactly `minRunners` runners.
//!
//! Rules kept here:
//! - It acts only while the controller would: a pod of the scale-set controller (label
//!   `app.kubernetes.io/name=gha-rs-controller`, the chart's selector label) is Running.
//! - A runner pod is made from the AutoscalingRunnerSet's `spec.template` (its labels and
//!   spec), named `<set>-<5 chars>-runner-<5 chars>` as ARC names EphemeralRunners, and
//!   carries ARC's labels `actions.github.com/scale-set-name`,
//!   `actions.github.com/scale-set-namespace`, `app.kubernetes.io/component=runner`. The
//!   pod is owned by the AutoscalingRunnerSet directly (the EphemeralRunnerSet and
//!   EphemeralRunner objects in between are not modelled).
//! - Status as ARC reports it: `currentRunners`, `pendingEphemeralRunners` (not yet
//!   Running), `runningEphemeralRunners`.
//! - A template change replaces the runners (new pods, the old ones deleted), as ARC
//!   recreates its EphemeralRunnerSet on a new spec hash.

use super::rollout::template_hash;
use super::{PodIndex, controller_ref, create_as, delete_key, deleting, log_once, snapshot, write_status};
use crate::ops::{State, meta_str};
use serde_json::{Value, json};

const GROUP: &str = "actions.github.com";
const SCALE_SET_NAME: &str = "actions.github.com/scale-set-name";
const SCALE_SET_NAMESPACE: &str = "actions.github.com/scale-set-namespace";
const SPEC_HASH: &str = "sim.spar.dev/runner-spec-hash";

fn suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..5].to_string()
}

/// Keeps every AutoscalingRunnerSet's minimum runners.
pub fn reconcile(st: &mut State) {
    if st.kinds.preferred(GROUP, "autoscalingrunnersets").is_none()
        || !super::component_running(st, "gha-rs-controller")
    {
        return;
    }
    let ix = PodIndex::build(st);
    for (key, set) in snapshot(st, GROUP, "autoscalingrunnersets") {
        if deleting(&set) {
            continue;
        }
        let name = meta_str(&set, "name").to_string();
        let uid = meta_str(&set, "uid").to_string();
        let hash = template_hash(&set);
        let want = set
            .pointer("/spec/minRunners")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            .max(0) as usize;
        let pods: Vec<&(crate::store::ObjKey, Value)> = ix.owned(&uid).iter().filter(|(_, p)| !deleting(p)).collect();
        let current = |p: &Value| {
            p.pointer(&format!("/metadata/labels/{}", SPEC_HASH.replace('/', "~1")))
                .and_then(Value::as_str)
                == Some(hash.as_str())
        };
        let mut kept = 0;
        for (k, p) in &pods {
            if current(p) && kept < want {
                kept += 1;
            } else {
                delete_key(st, k);
            }
        }
        let set_id = suffix();
        for _ in kept..want {
            let template = set.pointer("/spec/template").cloned().unwrap_or(json!({}));
            let mut labels = template
                .pointer("/metadata/labels")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            labels.insert(SCALE_SET_NAME.into(), json!(name));
            labels.insert(SCALE_SET_NAMESPACE.into(), json!(key.namespace));
            labels.insert("app.kubernetes.io/component".into(), json!("runner"));
            labels.insert("actions-ephemeral-runner".into(), json!("True"));
            labels.insert(SPEC_HASH.into(), json!(hash));
            let pod = json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": format!("{name}-{set_id}-runner-{}", suffix()), "labels": labels,
                             "ownerReferences": [controller_ref(&set)]},
                "spec": template.get("spec").cloned().unwrap_or(json!({})),
            });
            if let Err(e) = create_as(st, "actions-runner-controller", "", "pods", &key.namespace, pod) {
                log_once(
                    st,
                    format!(
                        "AutoscalingRunnerSet {}/{name}: cannot create a runner pod: {}",
                        key.namespace,
                        e.to_status()["message"].as_str().unwrap_or("")
                    ),
                );
            }
        }
        let now_pods: Vec<Value> = st
            .store
            .list("", "pods", Some(&key.namespace))
            .filter(|(_, p)| super::controller_uid(p) == Some(uid.as_str()) && !deleting(p))
            .map(|(_, p)| p.clone())
            .collect();
        let running = now_pods
            .iter()
            .filter(|p| p.pointer("/status/phase").and_then(Value::as_str) == Some("Running"))
            .count();
        let mut status = set.get("status").cloned().unwrap_or(json!({}));
        status["currentRunners"] = json!(now_pods.len());
        status["pendingEphemeralRunners"] = json!(now_pods.len() - running);
        status["runningEphemeralRunners"] = json!(running);
        write_status(st, &key, status);
    }
}
