//! Wiring: whether a value a process needs reaches that process, read from declared pod
//! templates and objects. Two questions: where does a container's environment variable
//! come from (and does the Secret it names exist with that key), and which host path is a
//! path inside a container (so two pods sharing a Unix socket through a hostPath can be
//! compared).
//!
//! Rules kept here: a `secretKeyRef` resolves only to a Secret the stack declares in the
//! pod's namespace holding that key (`data` or `stringData`), since the pod would fail to
//! start otherwise (unless the ref is `optional`, in which case the variable is simply
//! absent); paths are compared after resolving `/var/run` to `/run` (a symlink on every
//! Linux image the kubelet runs) and through the longest volume mount that holds them.
//! Not modelled: `envFrom`, projected volumes, subPath mounts, ConfigMap keys.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::graph::DesiredResource;

/// Where an environment variable's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvSource {
    /// A literal value.
    Value(String),
    /// A key of a Secret in the pod's namespace.
    Secret { name: String, key: String, optional: bool },
    /// Anything else (`configMapKeyRef`, `fieldRef`, `resourceFieldRef`).
    Other(String),
}

/// The source of variable `name` in `container` (a container spec as JSON), if it sets one.
pub fn env(container: &Value, name: &str) -> Option<EnvSource> {
    let e = container["env"].as_array()?.iter().rev().find(|e| e["name"] == name)?;
    if let Some(v) = e["value"].as_str() {
        return Some(EnvSource::Value(v.to_string()));
    }
    let from = &e["valueFrom"];
    if let Some(r) = from.get("secretKeyRef") {
        return Some(EnvSource::Secret {
            name: r["name"].as_str().unwrap_or_default().to_string(),
            key: r["key"].as_str().unwrap_or_default().to_string(),
            optional: r["optional"] == true,
        });
    }
    match from.as_object().and_then(|o| o.keys().next()) {
        Some(k) => Some(EnvSource::Other(k.clone())),
        // `- name: X` with neither: an empty value.
        None => Some(EnvSource::Value(String::new())),
    }
}

/// The Secrets a stack declares (as `kubernetes:Object`s): (namespace, name) -> keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeclaredSecrets(BTreeMap<(String, String), BTreeSet<String>>);

impl DeclaredSecrets {
    pub fn from_declared(resources: &[DesiredResource]) -> Self {
        let mut out = BTreeMap::new();
        for r in resources.iter().filter(|r| r.kind == "kubernetes:Object") {
            let m = &r.inputs["manifest"];
            if m["kind"] != "Secret" || m["apiVersion"] != "v1" {
                continue;
            }
            let ns = r.inputs["namespace"]
                .as_str()
                .or(m["metadata"]["namespace"].as_str())
                .unwrap_or("default");
            let name = m["metadata"]["name"].as_str().unwrap_or_default();
            let keys: &mut BTreeSet<String> = out.entry((ns.to_string(), name.to_string())).or_default();
            for field in ["data", "stringData"] {
                if let Some(o) = m[field].as_object() {
                    keys.extend(o.keys().cloned());
                }
            }
        }
        DeclaredSecrets(out)
    }

    /// Whether Secret `namespace/name` is declared with `key`.
    pub fn has(&self, namespace: &str, name: &str, key: &str) -> bool {
        self.0
            .get(&(namespace.to_string(), name.to_string()))
            .is_some_and(|keys| keys.contains(key))
    }

    /// Whether Secret `namespace/name` is declared at all.
    pub fn declares(&self, namespace: &str, name: &str) -> bool {
        self.0.contains_key(&(namespace.to_string(), name.to_string()))
    }
}

/// Why a variable does not reach a container.
pub fn secret_env_problem(container: &Value, name: &str, namespace: &str, secrets: &DeclaredSecrets) -> Option<String> {
    match env(container, name) {
        None => Some(format!("sets no {name}")),
        Some(EnvSource::Value(v)) if v.is_empty() => Some(format!("sets {name} to an empty value")),
        Some(EnvSource::Value(_)) => None,
        Some(EnvSource::Secret { name: s, key, optional }) => {
            if secrets.has(namespace, &s, &key) {
                None
            } else if secrets.declares(namespace, &s) {
                Some(format!(
                    "reads {name} from key `{key}` of Secret {namespace}/{s}, which has no such key"
                ))
            } else {
                Some(format!(
                    "reads {name} from Secret {namespace}/{s}, which this stack does not declare in {namespace}{}",
                    if optional {
                        " (optional: the variable is then unset)"
                    } else {
                        " (the pod cannot start)"
                    }
                ))
            }
        }
        Some(EnvSource::Other(k)) => Some(format!("reads {name} from a {k}, not a value or a Secret")),
    }
}

/// `path` with `/var/run/` spelled `/run/` and no trailing slash.
pub fn normalize_path(path: &str) -> String {
    let p = path.trim_end_matches('/');
    match p.strip_prefix("/var/run") {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => format!("/run{rest}"),
        _ => p.to_string(),
    }
}

/// The host path that `path` inside `container` of the pod `pod_spec` is, through the
/// container's longest volume mount holding it and that volume's hostPath; an error saying
/// why it is not on the host (no mount, or a volume that is no hostPath).
pub fn host_path(pod_spec: &Value, container: &Value, path: &str) -> Result<String, String> {
    let path = normalize_path(path);
    let mounts = container["volumeMounts"].as_array().cloned().unwrap_or_default();
    let best = mounts
        .iter()
        .filter_map(|m| {
            let at = normalize_path(m["mountPath"].as_str()?);
            let inside = path == at || path.starts_with(&format!("{at}/"));
            inside.then_some((at, m))
        })
        .max_by_key(|(at, _)| at.len());
    let Some((at, m)) = best else {
        return Err(format!("{path} is in no volume the container mounts"));
    };
    let vol_name = m["name"].as_str().unwrap_or_default();
    let vol = pod_spec["volumes"]
        .as_array()
        .and_then(|vs| vs.iter().find(|v| v["name"] == vol_name))
        .ok_or_else(|| format!("{path} is in the mount of volume `{vol_name}`, which the pod does not declare"))?;
    let host = vol["hostPath"]["path"]
        .as_str()
        .ok_or_else(|| format!("{path} is in volume `{vol_name}`, which is not a hostPath"))?;
    Ok(format!("{}{}", normalize_path(host), &path[at.len()..]))
}

/// The path of a `unix://` address (`unix:///run/x.sock` -> `/run/x.sock`).
pub fn unix_path(address: &str) -> Option<&str> {
    address.strip_prefix("unix://").filter(|p| p.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Address;
    use crate::model::options::ResourceOptions;
    use serde_json::json;

    fn secret(ns: &str, name: &str, keys: &[&str]) -> DesiredResource {
        let data: serde_json::Map<String, Value> = keys.iter().map(|k| (k.to_string(), json!("x"))).collect();
        DesiredResource::new(
            format!("s/{name}").parse::<Address>().unwrap(),
            "kubernetes:Object".into(),
            json!({"manifest": {"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": name, "namespace": ns}, "data": data}}),
            ResourceOptions::new(),
        )
    }

    #[test]
    fn env_sources() {
        let c = json!({"env": [
            {"name": "A", "value": "1"},
            {"name": "T", "valueFrom": {"secretKeyRef": {"name": "cloud", "key": "token"}}},
            {"name": "F", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        ]});
        assert_eq!(env(&c, "A"), Some(EnvSource::Value("1".into())));
        assert_eq!(
            env(&c, "T"),
            Some(EnvSource::Secret {
                name: "cloud".into(),
                key: "token".into(),
                optional: false
            })
        );
        assert_eq!(env(&c, "F"), Some(EnvSource::Other("fieldRef".into())));
        assert_eq!(env(&c, "B"), None);
    }

    #[test]
    fn a_secret_ref_resolves_only_to_a_declared_secret_and_key_in_the_namespace() {
        let secrets = DeclaredSecrets::from_declared(&[secret("runners", "cloud", &["token"])]);
        let c = json!({"env": [{"name": "T", "valueFrom": {"secretKeyRef": {"name": "cloud", "key": "token"}}}]});
        assert_eq!(secret_env_problem(&c, "T", "runners", &secrets), None);
        let other_ns = secret_env_problem(&c, "T", "dagger", &secrets).unwrap();
        assert!(other_ns.contains("does not declare in dagger"), "{other_ns}");
        let c2 = json!({"env": [{"name": "T", "valueFrom": {"secretKeyRef": {"name": "cloud", "key": "tok"}}}]});
        assert!(
            secret_env_problem(&c2, "T", "runners", &secrets)
                .unwrap()
                .contains("no such key")
        );
        assert_eq!(
            secret_env_problem(&json!({}), "T", "runners", &secrets).unwrap(),
            "sets no T"
        );
    }

    #[test]
    fn host_paths_go_through_the_longest_mount() {
        let pod = json!({"volumes": [
            {"name": "run", "hostPath": {"path": "/var/run/dagger"}},
            {"name": "tmp", "emptyDir": {}},
        ]});
        let engine = json!({"volumeMounts": [{"name": "run", "mountPath": "/var/run/buildkit"}, {"name": "tmp", "mountPath": "/tmp"}]});
        assert_eq!(
            host_path(&pod, &engine, "/run/buildkit/buildkitd.sock").unwrap(),
            "/run/dagger/buildkitd.sock"
        );
        assert!(
            host_path(&pod, &engine, "/run/dagger/engine.sock")
                .unwrap_err()
                .contains("no volume")
        );
        assert!(
            host_path(&pod, &engine, "/tmp/x.sock")
                .unwrap_err()
                .contains("not a hostPath")
        );
        assert_eq!(normalize_path("/var/run/"), "/run");
        assert_eq!(normalize_path("/var/running"), "/var/running");
        assert_eq!(unix_path("unix:///run/x.sock"), Some("/run/x.sock"));
        assert_eq!(unix_path("tcp://h:1"), None);
    }
}
