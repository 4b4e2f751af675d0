//! The `DaggerEngine` component: the Dagger Engine DaemonSet as typed Rust, on every runner
//! node and nowhere else, with its namespace and an optional Dagger Cloud token.
//!
//! Rules kept here: the engine tolerates the runner taint and requires the runner label
//! (so exactly one engine runs per runner node); it runs privileged with ALL capabilities as
//! uid 0, gid 1001, fsGroup 1001 (the runners' uid/gid, for the socket's permissions);
//! the socket lives in a hostPath the runners mount; the cache lives on the NVMe array when
//! the node class builds one. Two layouts: `current` (Dagger's own chart today) and
//! `legacy` (the original design: buildkit socket path, `--oci-max-parallelism num-cpu`,
//! a buildctl readiness probe fetched by an init container).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetSpec};
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, Container, EmptyDirVolumeSource, EnvVar, EnvVarSource, ExecAction, HostPathVolumeSource,
    NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, PodSecurityContext, PodSpec,
    PodTemplateSpec, Probe, ResourceRequirements, SecretKeySelector, SecurityContext, Toleration, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde::Deserialize;
use spar::kubernetes::{Object, namespace, secret};
use spar::prelude::*;

use crate::StackError;
use crate::config::SecretSource;
use crate::karpenter::Taint;
use crate::secrets::{self, SecretValue};
use crate::target::KubeTarget;

/// `[engine]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// The Dagger version: engine image tag and what runners' CLIs must match.
    pub version: String,
    pub namespace: String,
    /// The DaemonSet's name; the current layout's hostPaths are `/var/lib/dagger-<name>`
    /// and `/run/dagger-<name>`.
    pub name: String,
    /// `current` or `legacy` (the original design).
    pub layout: Layout,
    /// Where the cache lives: `nvme` (the instance-store array), `host` (the root volume)
    /// or `empty_dir`; default: `nvme` when the node class builds a RAID0 array.
    pub cache: Option<Cache>,
    /// Taints the engine tolerates (must be the NodePool's).
    pub tolerations: Vec<Taint>,
    /// The node label the engine requires (must be the NodePool's).
    pub node_label: String,
    /// Labels the engine requires, with their values, instead of `node_label` (set from
    /// `[runners] node_selector` on a cluster from a kubeconfig).
    pub node_selector: BTreeMap<String, String>,
    pub run_as_group: i64,
    pub fs_group: i64,
    pub termination_grace_period_seconds: i64,
    pub cpu_request: Option<String>,
    pub memory_request: Option<String>,
    pub priority_class: Option<String>,
    /// A Dagger Cloud token (`DAGGER_CLOUD_TOKEN`). The Dagger client in the runners reads
    /// it (every version); engines up to v0.18.16 read it too, so only they get it as well.
    pub cloud_token: Option<SecretSource>,
    /// The original design's remote cache (`_EXPERIMENTAL_DAGGER_CACHESERVICE_URL` and
    /// `..._TOKEN` on the engine): read only by engines up to v0.18.16.
    pub cache_service_url: Option<String>,
    pub cache_service_token: Option<SecretSource>,
    /// Legacy layout only: the buildkit release the readiness probe's buildctl comes from.
    pub buildkit_version: String,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            version: "0.21.8".into(),
            namespace: "dagger".into(),
            name: "engine".into(),
            layout: Layout::Current,
            cache: None,
            tolerations: vec![Taint {
                key: "github-actions-runner".into(),
                value: None,
                effect: "NoSchedule".into(),
            }],
            node_label: "github-actions-runner".into(),
            node_selector: BTreeMap::new(),
            run_as_group: 1001,
            fs_group: 1001,
            termination_grace_period_seconds: 300,
            cpu_request: None,
            memory_request: None,
            priority_class: None,
            cloud_token: None,
            cache_service_url: None,
            cache_service_token: None,
            buildkit_version: "v0.11.6".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    Current,
    Legacy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cache {
    Nvme,
    Host,
    EmptyDir,
}

/// Where the engine's socket is, seen from the node and from a runner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketLayout {
    /// The hostPath directory holding the socket.
    pub host_dir: String,
    /// Where the engine mounts that directory.
    pub engine_dir: String,
    /// Where runners mount it.
    pub runner_dir: String,
    /// The socket's file name.
    pub file: String,
}

impl SocketLayout {
    pub fn of(cfg: &EngineConfig) -> Self {
        match cfg.layout {
            Layout::Current => SocketLayout {
                host_dir: format!("/run/dagger-{}", cfg.name),
                engine_dir: "/run/dagger".into(),
                runner_dir: "/run/dagger".into(),
                file: "engine.sock".into(),
            },
            Layout::Legacy => SocketLayout {
                host_dir: "/var/run/dagger".into(),
                engine_dir: "/var/run/buildkit".into(),
                runner_dir: "/var/run/dagger".into(),
                file: "buildkitd.sock".into(),
            },
        }
    }

    /// `_EXPERIMENTAL_DAGGER_RUNNER_HOST` for runners.
    pub fn runner_host(&self) -> String {
        format!("unix://{}/{}", self.runner_dir, self.file)
    }
}

/// The engine cache's hostPath (none for an emptyDir).
pub fn cache_host_path(cfg: &EngineConfig, raid0: bool) -> Option<String> {
    match effective_cache(cfg, raid0) {
        Cache::Nvme => Some("/mnt/k8s-disks/0/dagger".into()),
        Cache::EmptyDir => None,
        Cache::Host => Some(match cfg.layout {
            Layout::Current => format!("/var/lib/dagger-{}", cfg.name),
            Layout::Legacy => "/var/lib/dagger".into(),
        }),
    }
}

pub fn effective_cache(cfg: &EngineConfig, raid0: bool) -> Cache {
    cfg.cache.unwrap_or(if raid0 { Cache::Nvme } else { Cache::Host })
}

fn labels(cfg: &EngineConfig) -> BTreeMap<String, String> {
    BTreeMap::from([("name".to_string(), format!("dagger-{}", cfg.name))])
}

fn host_volume(name: &str, path: &str) -> Volume {
    Volume {
        name: name.into(),
        host_path: Some(HostPathVolumeSource {
            path: path.into(),
            type_: Some("DirectoryOrCreate".into()),
        }),
        ..Default::default()
    }
}

fn exec_probe(command: &[&str], delay: i32, timeout: i32, period: i32, failures: i32) -> Probe {
    Probe {
        exec: Some(ExecAction {
            command: Some(command.iter().map(|s| s.to_string()).collect()),
        }),
        initial_delay_seconds: Some(delay),
        timeout_seconds: Some(timeout),
        period_seconds: Some(period),
        failure_threshold: Some(failures),
        ..Default::default()
    }
}

/// The last engine release that read `DAGGER_CLOUD_TOKEN` and `_EXPERIMENTAL_DAGGER_CACHESERVICE_*`
/// itself: v0.18.17 moved Dagger Cloud to the client (dagger/dagger commit 9d4a4425b6).
pub const LAST_ENGINE_READING_CLOUD_ENV: (u64, u64, u64) = (0, 18, 16);

/// Whether an engine of `version` (`0.21.8`, `v0.18.16`) reads the Dagger Cloud variables.
pub fn engine_reads_cloud_env(version: &str) -> bool {
    let v: Vec<u64> = version
        .trim_start_matches('v')
        .split('.')
        .map(|p| p.parse().unwrap_or(0))
        .collect();
    let (a, b, c) = LAST_ENGINE_READING_CLOUD_ENV;
    v.as_slice() <= [a, b, c].as_slice()
}

/// Secrets the engine container reads from the environment: (variable, Secret name, key).
pub type EngineEnvSecrets<'a> = &'a [(&'a str, &'a str, &'a str)];

fn secret_env(name: &str, secret: &str, key: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.into(),
                key: key.into(),
                optional: Some(false),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The DaemonSet; `secret_env` lists the variables set from Secrets of the engine's namespace.
pub fn daemonset(cfg: &EngineConfig, raid0: bool, secret_vars: EngineEnvSecrets<'_>) -> DaemonSet {
    let sock = SocketLayout::of(cfg);
    let labels = labels(cfg);
    let mut env = Vec::new();
    let mut init_containers = None;
    let mut volumes = vec![host_volume("run", &sock.host_dir)];
    let mut mounts = vec![VolumeMount {
        name: "run".into(),
        mount_path: sock.engine_dir.clone(),
        ..Default::default()
    }];
    match cache_host_path(cfg, raid0) {
        Some(p) => volumes.push(host_volume("cache", &p)),
        None => volumes.push(Volume {
            name: "cache".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Default::default()
        }),
    }
    mounts.push(VolumeMount {
        name: "cache".into(),
        mount_path: "/var/lib/dagger".into(),
        ..Default::default()
    });
    let (args, readiness, liveness, pull) = match cfg.layout {
        Layout::Current => {
            env.push(EnvVar {
                name: "_EXPERIMENTAL_DAGGER_RUNNER_HOST".into(),
                value: Some(format!("unix://{}/{}", sock.engine_dir, sock.file)),
                ..Default::default()
            });
            (
                None,
                exec_probe(&["dagger", "core", "version"], 5, 14, 15, 10),
                Some(exec_probe(&["dagger", "core", "version"], 5, 29, 30, 20)),
                "IfNotPresent",
            )
        }
        Layout::Legacy => {
            volumes.push(Volume {
                name: "buildctl".into(),
                empty_dir: Some(EmptyDirVolumeSource::default()),
                ..Default::default()
            });
            mounts.push(VolumeMount {
                name: "buildctl".into(),
                mount_path: "/opt/buildctl".into(),
                ..Default::default()
            });
            init_containers = Some(vec![Container {
                name: "fetch-buildctl".into(),
                image: Some(format!("moby/buildkit:{}", cfg.buildkit_version)),
                command: Some(vec![
                    "cp".into(),
                    "/usr/bin/buildctl".into(),
                    "/opt/buildctl/buildctl".into(),
                ]),
                volume_mounts: Some(vec![VolumeMount {
                    name: "buildctl".into(),
                    mount_path: "/opt/buildctl".into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }]);
            env.push(EnvVar {
                name: "BUILDKIT_HOST".into(),
                value: Some(format!("unix://{}/{}", sock.engine_dir, sock.file)),
                ..Default::default()
            });
            let mut ready = exec_probe(&["/opt/buildctl/buildctl", "debug", "workers"], 5, 1, 5, 3);
            ready.timeout_seconds = None;
            ready.failure_threshold = None;
            (
                Some(vec!["--oci-max-parallelism".to_string(), "num-cpu".to_string()]),
                ready,
                None,
                "Always",
            )
        }
    };
    if let Some(url) = &cfg.cache_service_url {
        env.push(EnvVar {
            name: "_EXPERIMENTAL_DAGGER_CACHESERVICE_URL".into(),
            value: Some(url.clone()),
            ..Default::default()
        });
    }
    for (var, secret, key) in secret_vars {
        env.push(secret_env(var, secret, key));
    }
    let mut requests = BTreeMap::new();
    if let Some(c) = &cfg.cpu_request {
        requests.insert("cpu".to_string(), Quantity(c.clone()));
    }
    if let Some(m) = &cfg.memory_request {
        requests.insert("memory".to_string(), Quantity(m.clone()));
    }
    let container = Container {
        name: "dagger-engine".into(),
        image: Some(format!("registry.dagger.io/engine:v{}", cfg.version)),
        image_pull_policy: Some(pull.into()),
        args,
        env: (!env.is_empty()).then_some(env),
        security_context: Some(SecurityContext {
            privileged: Some(true),
            capabilities: Some(Capabilities {
                add: Some(vec!["ALL".into()]),
                ..Default::default()
            }),
            ..Default::default()
        }),
        readiness_probe: Some(readiness),
        liveness_probe: liveness,
        resources: (!requests.is_empty()).then(|| ResourceRequirements {
            requests: Some(requests),
            ..Default::default()
        }),
        volume_mounts: Some(mounts),
        ..Default::default()
    };
    DaemonSet {
        metadata: ObjectMeta {
            name: Some(format!("dagger-{}", cfg.name)),
            namespace: Some(cfg.namespace.clone()),
            labels: Some(labels.clone()),
            ..Default::default()
        },
        spec: Some(DaemonSetSpec {
            selector: LabelSelector {
                match_labels: Some(labels.clone()),
                ..Default::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    tolerations: Some(
                        cfg.tolerations
                            .iter()
                            .map(|t| Toleration {
                                key: Some(t.key.clone()),
                                operator: Some(if t.value.is_some() { "Equal" } else { "Exists" }.into()),
                                value: t.value.clone(),
                                effect: Some(t.effect.clone()),
                                ..Default::default()
                            })
                            .collect(),
                    ),
                    affinity: Some(Affinity {
                        node_affinity: Some(NodeAffinity {
                            required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                                node_selector_terms: vec![NodeSelectorTerm {
                                    match_expressions: Some(required_labels(cfg)),
                                    ..Default::default()
                                }],
                            }),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    security_context: Some(PodSecurityContext {
                        run_as_user: Some(0),
                        run_as_group: Some(cfg.run_as_group),
                        fs_group: Some(cfg.fs_group),
                        fs_group_change_policy: Some("OnRootMismatch".into()),
                        ..Default::default()
                    }),
                    termination_grace_period_seconds: Some(cfg.termination_grace_period_seconds),
                    priority_class_name: cfg.priority_class.clone(),
                    init_containers,
                    containers: vec![container],
                    volumes: Some(volumes),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// What the component declared.
pub struct DaggerEngine {
    pub daemonset: DaemonSet,
    pub socket: SocketLayout,
    pub version: String,
    /// The Dagger Cloud token, for the runners' Dagger client.
    pub cloud_token: Option<SecretValue>,
}

/// The node labels the engine requires: each of `node_selector` with its value, or else
/// `node_label` present.
fn required_labels(cfg: &EngineConfig) -> Vec<NodeSelectorRequirement> {
    if cfg.node_selector.is_empty() {
        return vec![NodeSelectorRequirement {
            key: cfg.node_label.clone(),
            operator: "Exists".into(),
            values: None,
        }];
    }
    cfg.node_selector
        .iter()
        .map(|(k, v)| NodeSelectorRequirement {
            key: k.clone(),
            operator: "In".into(),
            values: Some(vec![v.clone()]),
        })
        .collect()
}

/// The Secret (in the engine's namespace) holding what the engine itself reads.
pub const ENGINE_SECRET: &str = "dagger-cloud";

impl DaggerEngine {
    pub fn declare(
        s: &mut Stack,
        cfg: &EngineConfig,
        target: &KubeTarget,
        raid0: bool,
    ) -> Result<DaggerEngine, StackError> {
        if cfg.version.trim_start_matches('v').split('.').count() != 3 {
            return Err(StackError::Config {
                key: "engine.version".into(),
                message: format!("`{}` is not a release version such as 0.21.8", cfg.version),
            });
        }
        let ns = s.add_with(
            "namespace",
            namespace(&target.provider, &cfg.namespace),
            target.after_nodes(),
        )?;
        let reads_cloud_env = engine_reads_cloud_env(&cfg.version);
        if !reads_cloud_env && (cfg.cache_service_url.is_some() || cfg.cache_service_token.is_some()) {
            return Err(StackError::Config {
                key: "engine.cache_service_url".into(),
                message: format!(
                    "engine v{} ignores _EXPERIMENTAL_DAGGER_CACHESERVICE_* (engines after v0.18.16 do); use engine.cloud_token, which the Dagger client in the runners reads",
                    cfg.version.trim_start_matches('v')
                ),
            });
        }
        // The token is resolved once; the engine gets it only if it reads it, the runners
        // (ARC declares a Secret in their namespace) always.
        let cloud_token = match &cfg.cloud_token {
            Some(src) => Some(secrets::resolve(s, "engine.cloud_token", src, "cloud-token-value")?),
            None => None,
        };
        let cache_token = match &cfg.cache_service_token {
            Some(src) => Some(secrets::resolve(
                s,
                "engine.cache_service_token",
                src,
                "cache-token-value",
            )?),
            None => None,
        };
        let mut after = vec![ns.address().clone()];
        let mut secret_vars: Vec<(&str, &str, &str)> = Vec::new();
        let mut engine_secret = secret(&target.provider, Some(&cfg.namespace), ENGINE_SECRET);
        let mut engine_secret_keys = 0;
        if let (Some(token), true) = (&cloud_token, reads_cloud_env) {
            engine_secret = secrets::put(engine_secret, "token", token);
            secret_vars.push(("DAGGER_CLOUD_TOKEN", ENGINE_SECRET, "token"));
            engine_secret_keys += 1;
        }
        if let Some(token) = &cache_token {
            engine_secret = secrets::put(engine_secret, "cache-service-token", token);
            secret_vars.push((
                "_EXPERIMENTAL_DAGGER_CACHESERVICE_TOKEN",
                ENGINE_SECRET,
                "cache-service-token",
            ));
            engine_secret_keys += 1;
        }
        if engine_secret_keys > 0 {
            let h = s.add("cloud-token", engine_secret.after(&ns))?;
            after.push(h.address().clone());
        }
        let ds = daemonset(cfg, raid0, &secret_vars);
        let mut opts = ResourceOptions::new();
        for a in &after {
            opts = opts.depends_on(a);
        }
        s.add_with("daemonset", Object::typed(&target.provider, ds.clone()), opts)?;
        Ok(DaggerEngine {
            daemonset: ds,
            socket: SocketLayout::of(cfg),
            version: cfg.version.trim_start_matches('v').to_string(),
            cloud_token,
        })
    }
}
