//! Server-side defaulting of built-in kinds.
//!
//! Owns filling in the fields the real apiserver defaults on the kinds spar uses, so clients
//! see the objects they would see from a real cluster (and their diffs must cope with them):
//! Namespace finalizers/phase/name label, Secret type, Service type/clusterIP/ports, pod
//! template and container defaults, Deployment/DaemonSet/StatefulSet strategies and limits,
//! webhook defaults, PriorityClass preemption policy.
//!
//! Rules kept here:
//! - A default never overwrites a value the client set.
//! - Defaulted fields are owned by no manager (they are applied after field ownership is
//!   computed), exactly as on a real server.
//! - A Service keeps the clusterIP it was given on creation across updates.

use serde_json::{Map, Value, json};

fn obj(v: &mut Value) -> Option<&mut Map<String, Value>> {
    v.as_object_mut()
}

fn set_default(m: &mut Map<String, Value>, k: &str, v: Value) {
    if m.get(k).is_none_or(Value::is_null) {
        m.insert(k.into(), v);
    }
}

fn image_pull_policy(image: &str) -> &'static str {
    let last = image.rsplit('/').next().unwrap_or(image);
    if image.contains('@') {
        return "IfNotPresent";
    }
    match last.split_once(':') {
        None => "Always",
        Some((_, "latest")) => "Always",
        Some(_) => "IfNotPresent",
    }
}

fn default_container(c: &mut Value) {
    let Some(m) = obj(c) else { return };
    let image = m.get("image").and_then(Value::as_str).unwrap_or_default().to_string();
    if !image.is_empty() {
        set_default(m, "imagePullPolicy", json!(image_pull_policy(&image)));
    }
    set_default(m, "terminationMessagePath", json!("/dev/termination-log"));
    set_default(m, "terminationMessagePolicy", json!("File"));
    set_default(m, "resources", json!({}));
    if let Some(ports) = m.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports.iter_mut().filter_map(obj) {
            set_default(p, "protocol", json!("TCP"));
        }
    }
}

fn default_pod_spec(spec: &mut Value) {
    let Some(m) = obj(spec) else { return };
    set_default(m, "restartPolicy", json!("Always"));
    set_default(m, "dnsPolicy", json!("ClusterFirst"));
    set_default(m, "schedulerName", json!("default-scheduler"));
    set_default(m, "terminationGracePeriodSeconds", json!(30));
    set_default(m, "securityContext", json!({}));
    for list in ["containers", "initContainers"] {
        if let Some(cs) = m.get_mut(list).and_then(Value::as_array_mut) {
            cs.iter_mut().for_each(default_container);
        }
    }
}

fn default_template(spec: &mut Map<String, Value>) {
    if let Some(ps) = spec.get_mut("template").and_then(|t| t.get_mut("spec")) {
        default_pod_spec(ps);
    }
}

fn default_webhooks(o: &mut Value, mutating: bool) {
    let Some(hooks) = o.get_mut("webhooks").and_then(Value::as_array_mut) else {
        return;
    };
    for h in hooks.iter_mut().filter_map(obj) {
        set_default(h, "failurePolicy", json!("Fail"));
        set_default(h, "matchPolicy", json!("Equivalent"));
        set_default(h, "namespaceSelector", json!({}));
        set_default(h, "objectSelector", json!({}));
        set_default(h, "timeoutSeconds", json!(10));
        if mutating {
            set_default(h, "reinvocationPolicy", json!("Never"));
        }
        if let Some(svc) = h
            .get_mut("clientConfig")
            .and_then(|c| c.get_mut("service"))
            .and_then(obj)
        {
            set_default(svc, "port", json!(443));
        }
        if let Some(rules) = h.get_mut("rules").and_then(Value::as_array_mut) {
            for r in rules.iter_mut().filter_map(obj) {
                set_default(r, "scope", json!("*"));
            }
        }
    }
}

/// Apply the defaults of `group`/`kind` to `o`. `old` is the stored object on updates;
/// `alloc_ip` hands out a fresh Service clusterIP.
pub fn apply(group: &str, kind: &str, o: &mut Value, old: Option<&Value>, alloc_ip: &mut dyn FnMut() -> String) {
    match (group, kind) {
        ("", "Namespace") => {
            let name = o
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            if let Some(meta) = o.get_mut("metadata").and_then(obj) {
                let labels = meta.entry("labels").or_insert_with(|| json!({}));
                if let Some(l) = obj(labels) {
                    l.insert("kubernetes.io/metadata.name".into(), json!(name));
                }
            }
            if let Some(m) = obj(o) {
                let spec = m.entry("spec").or_insert_with(|| json!({}));
                if let Some(s) = obj(spec) {
                    set_default(s, "finalizers", json!(["kubernetes"]));
                }
                let status = m.entry("status").or_insert_with(|| json!({}));
                if let Some(s) = obj(status) {
                    set_default(s, "phase", json!("Active"));
                }
            }
        }
        ("", "Secret") => {
            if let Some(m) = obj(o) {
                set_default(m, "type", json!("Opaque"));
            }
        }
        ("", "Service") => {
            let old_ip = old.and_then(|v| v.pointer("/spec/clusterIP")).cloned();
            let Some(m) = obj(o) else { return };
            let spec = m.entry("spec").or_insert_with(|| json!({}));
            if let Some(s) = obj(spec) {
                set_default(s, "type", json!("ClusterIP"));
                set_default(s, "sessionAffinity", json!("None"));
                let external = s.get("type").and_then(Value::as_str) == Some("ExternalName");
                if !external {
                    if let Some(ip) = old_ip {
                        set_default(s, "clusterIP", ip);
                    }
                    if s.get("clusterIP").is_none_or(Value::is_null) {
                        s.insert("clusterIP".into(), json!(alloc_ip()));
                    }
                    let ip = s.get("clusterIP").cloned().unwrap_or(Value::Null);
                    set_default(s, "clusterIPs", json!([ip]));
                    set_default(s, "ipFamilies", json!(["IPv4"]));
                    set_default(s, "ipFamilyPolicy", json!("SingleStack"));
                    set_default(s, "internalTrafficPolicy", json!("Cluster"));
                }
                if let Some(ports) = s.get_mut("ports").and_then(Value::as_array_mut) {
                    for p in ports.iter_mut().filter_map(obj) {
                        set_default(p, "protocol", json!("TCP"));
                        if let Some(port) = p.get("port").cloned() {
                            set_default(p, "targetPort", port);
                        }
                    }
                }
            }
            let status = m.entry("status").or_insert_with(|| json!({}));
            if let Some(st) = obj(status) {
                set_default(st, "loadBalancer", json!({}));
            }
        }
        ("", "Pod") => {
            if let Some(spec) = o.get_mut("spec") {
                default_pod_spec(spec);
            }
        }
        ("apps", "Deployment") => {
            if let Some(s) = o.get_mut("spec").and_then(obj) {
                set_default(s, "replicas", json!(1));
                set_default(s, "revisionHistoryLimit", json!(10));
                set_default(s, "progressDeadlineSeconds", json!(600));
                // `strategy: {}` (what kubectl create deployment sends) is defaulted field by field
                let strategy = s.entry("strategy").or_insert_with(|| json!({}));
                if let Some(st) = obj(strategy) {
                    set_default(st, "type", json!("RollingUpdate"));
                    if st.get("type") == Some(&json!("RollingUpdate")) {
                        let ru = st.entry("rollingUpdate").or_insert_with(|| json!({}));
                        if let Some(ru) = obj(ru) {
                            set_default(ru, "maxSurge", json!("25%"));
                            set_default(ru, "maxUnavailable", json!("25%"));
                        }
                    }
                }
                default_template(s);
            }
        }
        ("apps", "DaemonSet") => {
            if let Some(s) = o.get_mut("spec").and_then(obj) {
                set_default(s, "revisionHistoryLimit", json!(10));
                set_default(
                    s,
                    "updateStrategy",
                    json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}),
                );
                default_template(s);
            }
        }
        ("apps", "StatefulSet") => {
            if let Some(s) = o.get_mut("spec").and_then(obj) {
                set_default(s, "replicas", json!(1));
                set_default(s, "revisionHistoryLimit", json!(10));
                set_default(s, "podManagementPolicy", json!("OrderedReady"));
                set_default(
                    s,
                    "updateStrategy",
                    json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
                );
                set_default(
                    s,
                    "persistentVolumeClaimRetentionPolicy",
                    json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
                );
                default_template(s);
            }
        }
        ("apps", "ReplicaSet") | ("batch", "Job") => {
            if let Some(s) = o.get_mut("spec").and_then(obj) {
                default_template(s);
            }
        }
        ("scheduling.k8s.io", "PriorityClass") => {
            if let Some(m) = obj(o) {
                set_default(m, "preemptionPolicy", json!("PreemptLowerPriority"));
            }
        }
        ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration") => default_webhooks(o, false),
        ("admissionregistration.k8s.io", "MutatingWebhookConfiguration") => default_webhooks(o, true),
        _ => {}
    }
}
