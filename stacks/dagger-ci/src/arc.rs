//! The `Arc` component: GitHub Actions Runner Controller, in scale-set mode (the controller
//! chart and one `gha-runner-scale-set` release per runner group) or in legacy mode (the
//! summerwind chart with a RunnerDeployment and HorizontalRunnerAutoscaler per group).
//!
//! Rules kept here: the GitHub App credentials live in a Kubernetes Secret made from spar
//! secrets (never in chart values, never in plans); runner pods tolerate the runner taint,
//! select the runner label, carry `karpenter.sh/do-not-disrupt`, run as uid/gid 1001, mount
//! the engine's socket hostPath and point `_EXPERIMENTAL_DAGGER_RUNNER_HOST` at it; the
//! controller and listeners tolerate the critical taint.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};
use spar::kubernetes::{Chart, Object, namespace, secret};
use spar::prelude::*;

use crate::StackError;
use crate::config::{ChartsConfig, SecretSource};
use crate::engine::DaggerEngine;
use crate::karpenter::Taint;
use crate::secrets;
use crate::target::KubeTarget;

pub const CONTROLLER_CHART: &str =
    "oci://ghcr.io/actions/actions-runner-controller-charts/gha-runner-scale-set-controller";
pub const SCALE_SET_CHART: &str = "oci://ghcr.io/actions/actions-runner-controller-charts/gha-runner-scale-set";
pub const LEGACY_CHART: &str = "actions-runner-controller";
pub const LEGACY_REPO: &str = "https://actions-runner-controller.github.io/actions-runner-controller";

/// `[arc]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArcConfig {
    /// `scale_set` (current) or `legacy` (summerwind, needs cert-manager).
    #[serde(default = "default_mode")]
    pub mode: ArcMode,
    /// The controller chart's version.
    #[serde(default = "default_version")]
    pub controller_version: String,
    /// The scale-set chart's version (must equal the controller's).
    #[serde(default = "default_version")]
    pub scale_set_version: String,
    #[serde(default = "default_legacy_version")]
    pub legacy_version: String,
    #[serde(default = "default_controller_ns")]
    pub controller_namespace: String,
    #[serde(default = "default_runners_ns")]
    pub runners_namespace: String,
    /// The organization or repository runners register with (`https://github.com/ORG`).
    pub github_config_url: String,
    pub github_app: GithubApp,
    /// The runner image (default: `ghcr.io/actions/actions-runner` for scale sets, whose
    /// listener registers the runner; `summerwind/actions-runner` for legacy mode, whose
    /// entrypoint registers with the token the summerwind controller hands it).
    #[serde(default)]
    pub runner_image: Option<String>,
    /// Legacy mode with an organization URL: the repositories (the REPO of
    /// github.com/ORG/REPO) whose queued and running workflow runs scale the runners,
    /// needed to scale a group up from zero (`TotalNumberOfQueuedAndInProgressWorkflowRuns`).
    #[serde(default)]
    pub legacy_repositories: Vec<String>,
    /// Legacy mode: what scales the runner deployments.
    #[serde(default)]
    pub legacy_metric: LegacyMetric,
    /// The runners' uid and gid (the engine's group must match for the socket).
    #[serde(default = "default_uid")]
    pub runner_uid: i64,
    /// Taints runner pods tolerate (default: the runner taint).
    #[serde(default = "default_runner_tolerations")]
    pub runner_tolerations: Vec<Taint>,
    /// The runner pods' nodeSelector (default: the runner label).
    #[serde(default = "default_runner_selector")]
    pub runner_node_selector: BTreeMap<String, String>,
    /// Overrides of where runners find the engine's socket (default: from the engine).
    #[serde(default)]
    pub socket_host_path: Option<String>,
    #[serde(default)]
    pub socket_mount_path: Option<String>,
    #[serde(default)]
    pub runner_host: Option<String>,
    /// The Dagger version runners' CLIs use (default: the engine's).
    #[serde(default)]
    pub dagger_version: Option<String>,
    pub runner_groups: Vec<RunnerGroup>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArcMode {
    ScaleSet,
    Legacy,
}

/// The legacy HorizontalRunnerAutoscaler metric.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LegacyMetric {
    /// `TotalNumberOfQueuedAndInProgressWorkflowRuns`: scales from zero.
    #[default]
    QueuedAndInProgressWorkflowRuns,
    /// `PercentageRunnersBusy`: only for groups that never go below one runner.
    PercentageRunnersBusy,
}

/// The GitHub App runners register through.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GithubApp {
    pub app_id: String,
    pub installation_id: String,
    pub private_key: SecretSource,
}

/// One group of runners (`runs-on: <name>`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunnerGroup {
    pub name: String,
    pub min_runners: u32,
    pub max_runners: u32,
    #[serde(default)]
    pub cpu: Option<String>,
    #[serde(default)]
    pub memory: Option<String>,
}

fn default_mode() -> ArcMode {
    ArcMode::ScaleSet
}
fn default_version() -> String {
    "0.14.2".into()
}
fn default_legacy_version() -> String {
    "0.23.7".into()
}
fn default_controller_ns() -> String {
    "arc-systems".into()
}
fn default_runners_ns() -> String {
    "arc-runners".into()
}
/// The scale-set runner image (`actions/runner`'s own image; ARC's listener registers it).
pub const SCALE_SET_RUNNER_IMAGE: &str = "ghcr.io/actions/actions-runner:latest";
/// The summerwind runner image (its entrypoint registers with the controller's token).
pub const LEGACY_RUNNER_IMAGE: &str = "summerwind/actions-runner:latest";

impl ArcConfig {
    /// The runner image for this mode.
    pub fn runner_image(&self) -> String {
        self.runner_image.clone().unwrap_or_else(|| {
            match self.mode {
                ArcMode::ScaleSet => SCALE_SET_RUNNER_IMAGE,
                ArcMode::Legacy => LEGACY_RUNNER_IMAGE,
            }
            .to_string()
        })
    }
}
fn default_uid() -> i64 {
    1001
}
impl ArcConfig {
    /// The runner tolerations and nodeSelector a config gets when it names none.
    pub fn runner_placement_default() -> (Vec<Taint>, BTreeMap<String, String>) {
        (default_runner_tolerations(), default_runner_selector())
    }
}

fn default_runner_tolerations() -> Vec<Taint> {
    vec![Taint {
        key: "github-actions-runner".into(),
        value: None,
        effect: "NoSchedule".into(),
    }]
}
fn default_runner_selector() -> BTreeMap<String, String> {
    BTreeMap::from([("github-actions-runner".to_string(), "true".to_string())])
}

/// The Secret in the runners' namespace holding the Dagger Cloud token.
pub const RUNNER_CLOUD_SECRET: &str = "dagger-cloud";

/// A runner pod as declared, for the checks.
#[derive(Debug, Clone)]
pub struct RunnerPod {
    pub group: String,
    /// The pod template (metadata and spec) as JSON.
    pub template: Value,
}

/// What the component declared.
pub struct Arc {
    pub mode: ArcMode,
    pub runners: Vec<RunnerPod>,
    pub controller_version: String,
    pub scale_set_version: String,
    pub dagger_version: String,
    pub scale_set_names: Vec<String>,
}

fn tolerations(taints: &[Taint]) -> Vec<Value> {
    taints.iter().map(Taint::toleration).collect()
}

/// The runner pod template of `group`.
pub fn runner_template(cfg: &ArcConfig, engine: &DaggerEngine, group: &RunnerGroup) -> Value {
    let host_dir = cfg
        .socket_host_path
        .clone()
        .unwrap_or_else(|| engine.socket.host_dir.clone());
    let mount = cfg
        .socket_mount_path
        .clone()
        .unwrap_or_else(|| engine.socket.runner_dir.clone());
    let runner_host = cfg.runner_host.clone().unwrap_or_else(|| engine.socket.runner_host());
    let mut resources = serde_json::Map::new();
    if let Some(c) = &group.cpu {
        resources.insert("cpu".into(), json!(c));
    }
    if let Some(m) = &group.memory {
        resources.insert("memory".into(), json!(m));
    }
    let mut container = json!({
        "name": "runner",
        "image": cfg.runner_image(),
        "command": ["/home/runner/run.sh"],
        "securityContext": {"runAsUser": cfg.runner_uid, "runAsGroup": cfg.runner_uid},
        "env": [
            {"name": "_EXPERIMENTAL_DAGGER_RUNNER_HOST", "value": runner_host},
            {"name": "DAGGER_VERSION", "value": cfg.dagger_version.clone().unwrap_or_else(|| engine.version.clone())},
        ],
        "volumeMounts": [{"name": "dagger-socket", "mountPath": mount}],
    });
    if !resources.is_empty() {
        container["resources"] = json!({"requests": resources});
    }
    if engine.cloud_token.is_some() {
        // The Dagger client in the runner reads the token (engines since v0.18.17 do not).
        container["env"]
            .as_array_mut()
            .expect("env is a list")
            .push(json!({"name": "DAGGER_CLOUD_TOKEN", "valueFrom": {"secretKeyRef": {"name": RUNNER_CLOUD_SECRET, "key": "token", "optional": false}}}));
    }
    json!({
        "metadata": {"annotations": {"karpenter.sh/do-not-disrupt": "true"}},
        "spec": {
            "tolerations": tolerations(&cfg.runner_tolerations),
            "nodeSelector": cfg.runner_node_selector,
            "containers": [container],
            "volumes": [{"name": "dagger-socket", "hostPath": {"path": host_dir, "type": "DirectoryOrCreate"}}],
        }
    })
}

/// The HorizontalRunnerAutoscaler metric of the legacy runner groups.
/// `PercentageRunnersBusy` needs a busy runner to scale, so it never leaves zero;
/// `TotalNumberOfQueuedAndInProgressWorkflowRuns` counts queued runs and does (ARC
/// `docs/automatically-scaling-runners.md`). For an organization's runners that metric
/// reads the runs of `repositoryNames`; a repository's runners use their own repository.
fn legacy_metric(cfg: &ArcConfig, target_key: &str) -> Value {
    match cfg.legacy_metric {
        LegacyMetric::QueuedAndInProgressWorkflowRuns => {
            let mut m = json!({"type": "TotalNumberOfQueuedAndInProgressWorkflowRuns"});
            if target_key == "organization" && !cfg.legacy_repositories.is_empty() {
                m["repositoryNames"] = json!(cfg.legacy_repositories);
            }
            m
        }
        LegacyMetric::PercentageRunnersBusy => json!({
            "type": "PercentageRunnersBusy",
            "scaleUpThreshold": "0.75",
            "scaleDownThreshold": "0.25",
            "scaleUpFactor": "2",
            "scaleDownFactor": "0.5",
        }),
    }
}

/// `https://github.com/ORG[/REPO]` as the summerwind runner's `organization` / `repository`.
fn legacy_target(url: &str) -> Result<(&'static str, String), StackError> {
    let path = url
        .trim_end_matches('/')
        .split_once("://")
        .and_then(|(_, rest)| rest.split_once('/'))
        .map(|(_, p)| p.to_string())
        .unwrap_or_default();
    match path.split('/').filter(|p| !p.is_empty()).count() {
        1 => Ok(("organization", path)),
        2 => Ok(("repository", path)),
        _ => Err(StackError::Config {
            key: "arc.github_config_url".into(),
            message: format!("`{url}` is not https://github.com/ORG or https://github.com/ORG/REPO"),
        }),
    }
}

fn chart(
    target: &KubeTarget,
    charts: &ChartsConfig,
    name: &str,
    upstream: &str,
    version: &str,
    release: &str,
    ns: &str,
) -> Chart {
    let mut c = Chart::new(&target.provider, &charts.reference(name, upstream), release, ns);
    if let Some(v) = charts.version(version) {
        c = c.version(&v);
    }
    if let Some(h) = &charts.helm {
        c = c.helm(h);
    }
    c
}

impl Arc {
    pub fn declare(
        s: &mut Stack,
        cfg: &ArcConfig,
        target: &KubeTarget,
        engine: &DaggerEngine,
        charts: &ChartsConfig,
        cert_manager: Option<&Address>,
    ) -> Result<Arc, StackError> {
        if !cfg.github_config_url.starts_with("https://") {
            return Err(StackError::Config {
                key: "arc.github_config_url".into(),
                message: format!(
                    "`{}` must be an https:// URL such as https://github.com/my-org",
                    cfg.github_config_url
                ),
            });
        }
        let mut seen = std::collections::HashSet::new();
        for g in &cfg.runner_groups {
            if !seen.insert(g.name.as_str()) {
                return Err(StackError::Config {
                    key: "arc.runner_groups".into(),
                    message: format!("the group `{}` is listed twice", g.name),
                });
            }
            if g.min_runners > g.max_runners {
                return Err(StackError::Config {
                    key: format!("arc.runner_groups.{}", g.name),
                    message: format!("min_runners {} is above max_runners {}", g.min_runners, g.max_runners),
                });
            }
        }
        let critical = target.controller_tolerations();
        let key = secrets::resolve(
            s,
            "arc.github_app.private_key",
            &cfg.github_app.private_key,
            "github-app-key",
        )?;
        let app_id = Secret::new(cfg.github_app.app_id.clone());
        let installation = Secret::new(cfg.github_app.installation_id.clone());
        let runners_ns = s.add_with(
            "runners-namespace",
            namespace(&target.provider, &cfg.runners_namespace),
            target.after_nodes(),
        )?;
        // What the runner pods read from Secrets of their namespace (the Cloud token).
        let mut runner_secrets = Vec::new();
        if let Some(token) = &engine.cloud_token {
            let obj = secrets::put(
                secret(&target.provider, Some(&cfg.runners_namespace), RUNNER_CLOUD_SECRET),
                "token",
                token,
            );
            runner_secrets.push(s.add("cloud-token", obj.after(&runners_ns))?.address().clone());
        }
        let mut runners = Vec::new();
        let mut scale_set_names = Vec::new();
        let dagger_version = cfg.dagger_version.clone().unwrap_or_else(|| engine.version.clone());

        match cfg.mode {
            ArcMode::ScaleSet => {
                let controller_sa = "arc-gha-rs-controller";
                let mut values = json!({"serviceAccount": {"create": true, "name": controller_sa}});
                target.place_controller(&mut values);
                let controller = s.add_with(
                    "controller",
                    chart(
                        target,
                        charts,
                        "gha-runner-scale-set-controller",
                        CONTROLLER_CHART,
                        &cfg.controller_version,
                        "arc",
                        &cfg.controller_namespace,
                    )
                    .create_namespace()
                    .values(values),
                    charts.wait(target.after_nodes()),
                )?;
                let gh = secret(&target.provider, Some(&cfg.runners_namespace), "github-app")
                    .data("github_app_id", &app_id)
                    .data("github_app_installation_id", &installation);
                let gh = s.add(
                    "github-app-secret",
                    secrets::put(gh, "github_app_private_key", &key).after(&runners_ns),
                )?;
                for g in &cfg.runner_groups {
                    let template = runner_template(cfg, engine, g);
                    let listener = json!({"spec": {"containers": [{"name": "listener"}], "tolerations": critical}});
                    let values = json!({
                        "githubConfigUrl": cfg.github_config_url,
                        "githubConfigSecret": "github-app",
                        "runnerScaleSetName": g.name,
                        "minRunners": g.min_runners,
                        "maxRunners": g.max_runners,
                        "controllerServiceAccount": {"namespace": cfg.controller_namespace, "name": controller_sa},
                        "listenerTemplate": listener,
                        "template": template,
                    });
                    let mut opts = ResourceOptions::new()
                        .depends_on(controller.address())
                        .depends_on(gh.address());
                    opts = opts.depends_on(runners_ns.address());
                    for a in &runner_secrets {
                        opts = opts.depends_on(a);
                    }
                    s.add_with(
                        &format!("scale-set-{}", g.name),
                        chart(
                            target,
                            charts,
                            "gha-runner-scale-set",
                            SCALE_SET_CHART,
                            &cfg.scale_set_version,
                            &g.name,
                            &cfg.runners_namespace,
                        )
                        .values(values),
                        charts.wait(opts),
                    )?;
                    runners.push(RunnerPod {
                        group: g.name.clone(),
                        template,
                    });
                    scale_set_names.push(g.name.clone());
                }
            }
            ArcMode::Legacy => {
                let ns = "actions-runner-system";
                let gh = secret(&target.provider, Some(ns), "controller-manager")
                    .data("github_app_id", &app_id)
                    .data("github_app_installation_id", &installation);
                let controller_ns = s.add_with(
                    "controller-namespace",
                    namespace(&target.provider, ns),
                    target.after_nodes(),
                )?;
                let gh = s.add(
                    "github-app-secret",
                    secrets::put(gh, "github_app_private_key", &key).after(&controller_ns),
                )?;
                let values = json!({
                    "authSecret": {"create": false, "name": "controller-manager"},
                    "tolerations": critical,
                    "certManagerEnabled": true,
                });
                let mut c = chart(
                    target,
                    charts,
                    "actions-runner-controller",
                    LEGACY_CHART,
                    &cfg.legacy_version,
                    "actions-runner-controller",
                    ns,
                );
                if charts.local_dir.is_none() {
                    c = Chart::new(&target.provider, LEGACY_CHART, "actions-runner-controller", ns)
                        .version(&cfg.legacy_version);
                    if let Some(h) = &charts.helm {
                        c = c.helm(h);
                    }
                    c = c.repository(LEGACY_REPO);
                }
                let mut opts = target.after_nodes().depends_on(gh.address());
                if let Some(cm) = cert_manager {
                    opts = opts.depends_on(cm);
                }
                let controller = s.add_with("controller", c.values(values), charts.wait(opts))?;
                let (target_key, github_target) = legacy_target(&cfg.github_config_url)?;
                for g in &cfg.runner_groups {
                    let template = runner_template(cfg, engine, g);
                    let mut spec = template["spec"].clone();
                    let container = spec["containers"][0].clone();
                    spec[target_key] = json!(github_target);
                    spec["labels"] = json!([g.name]);
                    spec["dockerEnabled"] = json!(false);
                    spec["image"] = container["image"].clone();
                    spec["env"] = container["env"].clone();
                    spec["volumeMounts"] = container["volumeMounts"].clone();
                    spec["securityContext"] = json!({"runAsUser": cfg.runner_uid, "fsGroup": cfg.runner_uid});
                    if let Some(r) = container.get("resources") {
                        spec["resources"] = r.clone();
                    }
                    spec.as_object_mut().expect("an object").remove("containers");
                    let rd = json!({
                        "apiVersion": "actions.summerwind.dev/v1alpha1",
                        "kind": "RunnerDeployment",
                        "metadata": {"name": g.name, "namespace": cfg.runners_namespace},
                        "spec": {"template": {"metadata": template["metadata"], "spec": spec}},
                    });
                    let mut rd_opts = ResourceOptions::new();
                    for a in &runner_secrets {
                        rd_opts = rd_opts.depends_on(a);
                    }
                    let rd_h = s.add_with(
                        &format!("runners-{}", g.name),
                        Object::dynamic(&target.provider, rd)
                            .after(&controller)
                            .after(&runners_ns),
                        rd_opts,
                    )?;
                    let hra = json!({
                        "apiVersion": "actions.summerwind.dev/v1alpha1",
                        "kind": "HorizontalRunnerAutoscaler",
                        "metadata": {"name": g.name, "namespace": cfg.runners_namespace},
                        "spec": {
                            "scaleTargetRef": {"kind": "RunnerDeployment", "name": g.name},
                            "minReplicas": g.min_runners,
                            "maxReplicas": g.max_runners,
                            "metrics": [legacy_metric(cfg, target_key)],
                        },
                    });
                    s.add(
                        &format!("autoscaler-{}", g.name),
                        Object::dynamic(&target.provider, hra).after(&rd_h),
                    )?;
                    runners.push(RunnerPod {
                        group: g.name.clone(),
                        template,
                    });
                    scale_set_names.push(g.name.clone());
                }
            }
        }
        Ok(Arc {
            mode: cfg.mode,
            runners,
            controller_version: cfg.controller_version.clone(),
            scale_set_version: cfg.scale_set_version.clone(),
            dagger_version,
            scale_set_names,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::legacy_target;

    #[test]
    fn legacy_targets() {
        assert_eq!(
            legacy_target("https://github.com/acme").unwrap(),
            ("organization", "acme".to_string())
        );
        assert_eq!(
            legacy_target("https://github.com/acme/app/").unwrap(),
            ("repository", "acme/app".to_string())
        );
        assert!(legacy_target("https://github.com/").is_err());
    }
}
