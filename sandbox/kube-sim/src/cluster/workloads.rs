//! The workload controllers: they make and remove Pods, and write each workload's status
//! from them ([`super::rollout`]).
//!
//! Rules kept here (after `k8s.io/kubernetes` `pkg/controller/{deployment,replicaset,
//! daemon,statefulset,job}`):
//! - Deployment: one ReplicaSet per pod template, named `<deployment>-<pod-template-hash>`,
//!   its pods and selector carrying `pod-template-hash`. The current one is scaled to
//!   `spec.replicas`; older ones go to 0 once it is fully available (a rollout that surges
//!   the whole new set at once: the steps of `maxSurge`/`maxUnavailable` are not modelled).
//! - ReplicaSet: pods `<replicaset>-<5 chars>` until `spec.replicas` exist; a surplus is
//!   deleted unbound first, then not ready, then newest.
//! - DaemonSet: one pod per node that should run it (`spar_scheduling::daemon_should_run`:
//!   taints and node affinity, not resources), with the DaemonSet controller's tolerations
//!   and a required node affinity on `metadata.name` naming its node, as
//!   `ReplaceDaemonSetPodNodeNameNodeAffinity` writes it; the scheduler still has to fit it.
//!   Pods of an old template, or on nodes that should not run it, are deleted.
//! - StatefulSet: pods `<name>-<ordinal>`; under `OrderedReady` ordinal n is created only
//!   when every lower one is Ready, under `Parallel` all at once; pods of an old revision
//!   are replaced; scaling down removes the highest ordinals.
//! - Job: up to `parallelism` pods at a time until `completions` succeeded (pods run for
//!   the ready delay, then succeed: see [`super::kubelet`]); then `Complete`.
//! - Every pod has its workload as controlling owner, so deleting the workload deletes its
//!   pods through garbage collection.

use super::rollout::{self, DaemonCounts, JobCounts, PodCounts, template_hash};
use super::{
    PodIndex, controller_ref, create_as, delete_key, deleting, log_once, pod_ready, snapshot, terminal, write_status,
};
use crate::managed::now;
use crate::ops::{State, meta_str};
use crate::store::ObjKey;
use serde_json::{Value, json};
use spar_scheduling::{CandidateNode, PodRequirements, daemon_should_run, daemonset_tolerations};

const MANAGER: &str = "kube-controller-manager";

/// Runs every workload controller once.
pub fn reconcile(st: &mut State) {
    let ix = PodIndex::build(st);
    deployments(st);
    replicasets(st, &ix);
    daemonsets(st, &ix);
    statefulsets(st, &ix);
    jobs(st, &ix);
}

fn labels_of(template: &Value) -> serde_json::Map<String, Value> {
    template
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// A pod from `owner`'s pod template, with `extra` labels.
fn pod_from(owner: &Value, extra: &[(&str, &str)]) -> Value {
    let template = owner.pointer("/spec/template").cloned().unwrap_or(json!({}));
    let mut labels = labels_of(&template);
    for (k, v) in extra {
        labels.insert((*k).to_string(), json!(v));
    }
    let mut metadata = json!({"labels": labels, "ownerReferences": [controller_ref(owner)]});
    if let Some(a) = template.pointer("/metadata/annotations") {
        metadata["annotations"] = a.clone();
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": template.get("spec").cloned().unwrap_or(json!({}))})
}

fn create_pod(st: &mut State, ns: &str, pod: Value, owner: &str) {
    if let Err(e) = create_as(st, MANAGER, "", "pods", ns, pod) {
        log_once(
            st,
            format!(
                "{owner}: cannot create a pod: {}",
                e.to_status()["message"].as_str().unwrap_or("")
            ),
        );
    }
}

fn counts(pods: &[(ObjKey, Value)], current: impl Fn(&Value) -> bool) -> PodCounts {
    let mut c = PodCounts::default();
    for (_, p) in pods.iter().filter(|(_, p)| !deleting(p) && !terminal(p)) {
        c.replicas += 1;
        let ready = pod_ready(p);
        c.ready += i64::from(ready);
        if current(p) {
            c.updated += 1;
            c.updated_ready += i64::from(ready);
        }
    }
    c
}

fn replicas(o: &Value) -> i64 {
    o.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1)
}

fn set_replicas(st: &mut State, key: &ObjKey, want: i64) {
    let Some(mut o) = st.store.get(key).cloned() else {
        return;
    };
    if replicas(&o) == want {
        return;
    }
    o["spec"]["replicas"] = json!(want);
    if let Some(rt) = st.kinds.preferred(&key.group, &key.resource) {
        st.system_update(&rt, key, o);
    }
}

fn deployments(st: &mut State) {
    let rss = snapshot(st, "apps", "replicasets");
    for (key, d) in snapshot(st, "apps", "deployments") {
        if deleting(&d) {
            continue;
        }
        let uid = meta_str(&d, "uid").to_string();
        let name = meta_str(&d, "name").to_string();
        let hash = template_hash(&d);
        let new_name = format!("{name}-{hash}");
        let desired = replicas(&d);
        let owned: Vec<&(ObjKey, Value)> = rss
            .iter()
            .filter(|(k, rs)| k.namespace == key.namespace && super::controller_uid(rs) == Some(uid.as_str()))
            .collect();
        let new_key = ObjKey::new("apps", "replicasets", &key.namespace, &new_name);
        let new_rs = owned.iter().find(|(k, _)| *k == new_key).map(|(_, v)| v.clone());
        match &new_rs {
            None => {
                let mut template = d.pointer("/spec/template").cloned().unwrap_or(json!({}));
                template["metadata"]["labels"]["pod-template-hash"] = json!(hash);
                let mut selector = d.pointer("/spec/selector").cloned().unwrap_or(json!({}));
                selector["matchLabels"]["pod-template-hash"] = json!(hash);
                let mut labels = labels_of(&template);
                labels.insert("pod-template-hash".into(), json!(hash));
                let rs = json!({
                    "apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "metadata": {"name": new_name, "labels": labels, "ownerReferences": [controller_ref(&d)],
                                 "annotations": {"deployment.kubernetes.io/desired-replicas": desired.to_string(),
                                                 "deployment.kubernetes.io/revision": (owned.len() + 1).to_string()}},
                    "spec": {"replicas": desired, "selector": selector, "template": template},
                });
                if let Err(e) = create_as(st, MANAGER, "apps", "replicasets", &key.namespace, rs) {
                    log_once(
                        st,
                        format!(
                            "Deployment {}/{name}: cannot create its ReplicaSet: {}",
                            key.namespace,
                            e.to_status()["message"].as_str().unwrap_or("")
                        ),
                    );
                }
            }
            Some(_) => set_replicas(st, &new_key, desired),
        }
        let rs_counts = |o: Option<&Value>| -> PodCounts {
            let s = o.and_then(|o| o.get("status")).cloned().unwrap_or(json!({}));
            let n = |f: &str| s.get(f).and_then(Value::as_i64).unwrap_or(0);
            PodCounts {
                replicas: n("replicas"),
                ready: n("readyReplicas"),
                updated: n("replicas"),
                updated_ready: n("readyReplicas"),
            }
        };
        let new_counts = rs_counts(st.store.get(&new_key));
        let mut old = PodCounts::default();
        for (k, _) in owned.iter().filter(|(k, _)| *k != new_key) {
            // Old sets go once the new one is fully available.
            if new_counts.ready >= desired {
                set_replicas(st, k, 0);
            }
            let c = rs_counts(st.store.get(k));
            old.replicas += c.replicas;
            old.ready += c.ready;
        }
        let status = rollout::deployment_status(&d, (&new_name, new_counts), old, &now());
        write_status(st, &key, status);
    }
}

fn replicasets(st: &mut State, ix: &PodIndex) {
    for (key, rs) in snapshot(st, "apps", "replicasets") {
        if deleting(&rs) {
            continue;
        }
        let uid = meta_str(&rs, "uid");
        let pods: Vec<&(ObjKey, Value)> = ix
            .owned(uid)
            .iter()
            .filter(|(_, p)| !deleting(p) && !terminal(p))
            .collect();
        let want = replicas(&rs).max(0) as usize;
        let name = meta_str(&rs, "name").to_string();
        if pods.len() < want {
            for _ in pods.len()..want {
                let mut pod = pod_from(&rs, &[]);
                pod["metadata"]["generateName"] = json!(format!("{name}-"));
                create_pod(st, &key.namespace, pod, &format!("ReplicaSet {}/{name}", key.namespace));
            }
        } else if pods.len() > want {
            let mut victims: Vec<&(ObjKey, Value)> = pods.clone();
            // unbound first, then not ready, then newest
            victims.sort_by_key(|(_, p)| {
                let bound = p
                    .pointer("/spec/nodeName")
                    .and_then(Value::as_str)
                    .is_some_and(|n| !n.is_empty());
                (
                    bound,
                    pod_ready(p),
                    std::cmp::Reverse(meta_str(p, "creationTimestamp").to_string()),
                )
            });
            for (k, _) in victims.into_iter().take(pods.len() - want) {
                delete_key(st, k);
            }
        }
        let ix_now = st
            .store
            .list("", "pods", Some(&key.namespace))
            .filter(|(_, p)| super::controller_uid(p) == Some(uid))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<Vec<_>>();
        let status = rollout::replicaset_status(&rs, counts(&ix_now, |_| true));
        write_status(st, &key, status);
    }
}

/// The node a DaemonSet pod is for: its `nodeName`, else the `metadata.name` its required
/// node affinity names (`GetTargetNodeName`).
fn target_node(pod: &Value) -> Option<String> {
    if let Some(n) = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
    {
        return Some(n.to_string());
    }
    let terms =
        pod.pointer("/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms")?;
    terms.as_array()?.iter().find_map(|t| {
        t["matchFields"].as_array()?.iter().find_map(|f| {
            (f["key"] == "metadata.name" && f["operator"] == "In")
                .then(|| f["values"][0].as_str().map(String::from))
                .flatten()
        })
    })
}

/// The nodes that exist and are not going away, as the filters see them.
pub fn live_nodes(st: &State) -> Vec<CandidateNode> {
    st.store
        .list("", "nodes", None)
        .filter(|(_, n)| !deleting(n))
        .filter_map(|(_, n)| CandidateNode::from_node(n).ok())
        .collect()
}

fn daemonsets(st: &mut State, ix: &PodIndex) {
    let nodes = live_nodes(st);
    for (key, ds) in snapshot(st, "apps", "daemonsets") {
        if deleting(&ds) {
            continue;
        }
        let uid = meta_str(&ds, "uid").to_string();
        let name = meta_str(&ds, "name").to_string();
        let hash = template_hash(&ds);
        let spec = ds.pointer("/spec/template/spec").cloned().unwrap_or(json!({}));
        let mut req = match PodRequirements::from_spec(&spec) {
            Ok(r) => r,
            Err(e) => {
                log_once(st, format!("DaemonSet {}/{name}: {e}", key.namespace));
                continue;
            }
        };
        let host_network = spec["hostNetwork"] == json!(true);
        req.tolerations.extend(daemonset_tolerations(host_network));
        let eligible: Vec<&CandidateNode> = nodes.iter().filter(|n| daemon_should_run(&req, n).is_ok()).collect();
        let pods: Vec<&(ObjKey, Value)> = ix.owned(&uid).iter().filter(|(_, p)| !deleting(p)).collect();
        let mut c = DaemonCounts {
            desired: eligible.len() as i64,
            ..DaemonCounts::default()
        };
        for (k, p) in &pods {
            let target = target_node(p);
            let should = target.as_deref().is_some_and(|t| eligible.iter().any(|n| n.name == t));
            let current = p
                .pointer("/metadata/labels/controller-revision-hash")
                .and_then(Value::as_str)
                == Some(hash.as_str());
            if !should || !current {
                if !should && target.as_deref().is_some_and(|t| nodes.iter().any(|n| n.name == t)) {
                    c.misscheduled += 1;
                }
                delete_key(st, k);
            }
        }
        for n in &eligible {
            let on_node: Vec<&&(ObjKey, Value)> = pods
                .iter()
                .filter(|(_, p)| target_node(p).as_deref() == Some(n.name.as_str()))
                .collect();
            let current = on_node.iter().find(|(_, p)| {
                p.pointer("/metadata/labels/controller-revision-hash")
                    .and_then(Value::as_str)
                    == Some(hash.as_str())
            });
            match current {
                Some((_, p)) => {
                    c.current += 1;
                    c.updated += 1;
                    if pod_ready(p) {
                        c.ready += 1;
                        c.available += 1;
                    }
                }
                None => {
                    if !on_node.is_empty() {
                        // an old pod is on its way out: counted as scheduled, not updated
                        c.current += 1;
                    }
                    let mut pod = pod_from(
                        &ds,
                        &[
                            ("controller-revision-hash", &hash),
                            ("pod-template-generation", &meta_generation(&ds)),
                        ],
                    );
                    pod["metadata"]["generateName"] = json!(format!("{name}-"));
                    let mut tolerations = pod["spec"]["tolerations"].as_array().cloned().unwrap_or_default();
                    for t in daemonset_tolerations(host_network) {
                        let t = t.to_json();
                        if !tolerations.contains(&t) {
                            tolerations.push(t);
                        }
                    }
                    pod["spec"]["tolerations"] = json!(tolerations);
                    pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] = json!({
                        "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [n.name]}]}]
                    });
                    create_pod(st, &key.namespace, pod, &format!("DaemonSet {}/{name}", key.namespace));
                }
            }
        }
        write_status(st, &key, rollout::daemonset_status(&ds, c));
    }
}

fn meta_generation(o: &Value) -> String {
    o.pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(1)
        .to_string()
}

fn statefulsets(st: &mut State, ix: &PodIndex) {
    for (key, sts) in snapshot(st, "apps", "statefulsets") {
        if deleting(&sts) {
            continue;
        }
        let uid = meta_str(&sts, "uid").to_string();
        let name = meta_str(&sts, "name").to_string();
        let revision = format!("{name}-{}", template_hash(&sts));
        let want = replicas(&sts).max(0);
        let ordered = sts.pointer("/spec/podManagementPolicy").and_then(Value::as_str) != Some("Parallel");
        let pods: Vec<&(ObjKey, Value)> = ix.owned(&uid).iter().filter(|(_, p)| !deleting(p)).collect();
        let rev_of = |p: &Value| {
            p.pointer("/metadata/labels/controller-revision-hash")
                .and_then(Value::as_str)
                .map(String::from)
        };
        let ordinal = |p: &Value| {
            meta_str(p, "name")
                .strip_prefix(&format!("{name}-"))
                .and_then(|o| o.parse::<i64>().ok())
        };
        for (k, p) in &pods {
            let o = ordinal(p).unwrap_or(i64::MAX);
            if o >= want || rev_of(p).as_deref() != Some(revision.as_str()) {
                delete_key(st, k);
            }
        }
        for i in 0..want {
            let pod_name = format!("{name}-{i}");
            let exists = st
                .store
                .get(&ObjKey::new("", "pods", &key.namespace, &pod_name))
                .is_some();
            if exists {
                if ordered
                    && !st
                        .store
                        .get(&ObjKey::new("", "pods", &key.namespace, &pod_name))
                        .is_some_and(pod_ready)
                {
                    break;
                }
                continue;
            }
            let mut pod = pod_from(
                &sts,
                &[
                    ("controller-revision-hash", &revision),
                    ("statefulset.kubernetes.io/pod-name", &pod_name),
                    ("apps.kubernetes.io/pod-index", &i.to_string()),
                ],
            );
            pod["metadata"]["name"] = json!(pod_name);
            if let Some(svc) = sts
                .pointer("/spec/serviceName")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
            {
                pod["spec"]["hostname"] = json!(pod_name);
                pod["spec"]["subdomain"] = json!(svc);
            }
            create_pod(
                st,
                &key.namespace,
                pod,
                &format!("StatefulSet {}/{name}", key.namespace),
            );
            if ordered {
                break;
            }
        }
        let now_pods: Vec<(ObjKey, Value)> = st
            .store
            .list("", "pods", Some(&key.namespace))
            .filter(|(_, p)| super::controller_uid(p) == Some(uid.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let c = counts(&now_pods, |p| rev_of(p).as_deref() == Some(revision.as_str()));
        write_status(st, &key, rollout::statefulset_status(&sts, c, &revision));
    }
}

fn jobs(st: &mut State, ix: &PodIndex) {
    for (key, job) in snapshot(st, "batch", "jobs") {
        if deleting(&job) {
            continue;
        }
        let uid = meta_str(&job, "uid").to_string();
        let name = meta_str(&job, "name").to_string();
        let completions = job.pointer("/spec/completions").and_then(Value::as_i64).unwrap_or(1);
        let parallelism = job.pointer("/spec/parallelism").and_then(Value::as_i64).unwrap_or(1);
        let pods: Vec<&(ObjKey, Value)> = ix.owned(&uid).iter().filter(|(_, p)| !deleting(p)).collect();
        let phase = |p: &Value| {
            p.pointer("/status/phase")
                .and_then(Value::as_str)
                .unwrap_or("Pending")
                .to_string()
        };
        let mut c = JobCounts::default();
        for (_, p) in &pods {
            match phase(p).as_str() {
                "Succeeded" => c.succeeded += 1,
                "Failed" => c.failed += 1,
                _ => {
                    c.active += 1;
                    c.ready += i64::from(pod_ready(p));
                }
            }
        }
        let complete = c.succeeded >= completions;
        if !complete && job.pointer("/spec/suspend") != Some(&json!(true)) {
            let want = parallelism.min(completions - c.succeeded);
            for _ in c.active..want {
                let mut pod = pod_from(
                    &job,
                    &[
                        ("batch.kubernetes.io/controller-uid", &uid),
                        ("controller-uid", &uid),
                        ("batch.kubernetes.io/job-name", &name),
                        ("job-name", &name),
                    ],
                );
                pod["metadata"]["generateName"] = json!(format!("{name}-"));
                create_pod(st, &key.namespace, pod, &format!("Job {}/{name}", key.namespace));
                c.active += 1;
            }
        }
        write_status(st, &key, rollout::job_status(&job, c, complete, &now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_daemonset_pod_targets_the_node_its_affinity_names() {
        let pod = json!({"spec": {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]}}}}});
        assert_eq!(target_node(&pod).as_deref(), Some("n1"));
        let bound = json!({"spec": {"nodeName": "n2"}});
        assert_eq!(target_node(&bound).as_deref(), Some("n2"));
        assert_eq!(target_node(&json!({"spec": {}})), None);
    }
}
