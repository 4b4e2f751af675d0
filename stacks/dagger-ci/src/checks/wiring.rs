//! Wiring checks: each value reaches the process that reads it, read from the declared
//! resources with `spar::analysis::wiring`.
//!
//! - `socket-path`: the runners' `_EXPERIMENTAL_DAGGER_RUNNER_HOST` is, on the node, a socket
//!   the engine listens on. Where the engine listens comes from the engine's own container:
//!   its `--addr` arguments plus the two addresses every engine prepends to them
//!   (dagger/dagger `cmd/engine/config.go`: buildkit's `unix:///run/buildkit/buildkitd.sock`
//!   and `unix:///run/dagger/engine.sock`, `engine/distconsts/consts.go`), each followed
//!   through the engine's mounts to the host and back into the runner.
//! - `cloud-token`: the Dagger Cloud token reaches the Dagger client in every runner (engines
//!   since v0.18.17 read neither it nor `_EXPERIMENTAL_DAGGER_CACHESERVICE_*`; dagger commit
//!   9d4a4425b6), from a Secret declared in the runners' namespace with that key.
//! - `runner-registration`: a runner container starts something that registers with
//!   GitHub: summerwind's images under the legacy controller (their entrypoint runs
//!   `config.sh` with the token the controller injects; `ghcr.io/actions/actions-runner` has
//!   no entrypoint), `/home/runner/run.sh` under scale sets (the listener registers; the
//!   chart's own default command).
//! - `autoscale-from-zero`: a legacy HorizontalRunnerAutoscaler whose minimum is 0 uses a
//!   metric that scales up from zero (ARC `docs/automatically-scaling-runners.md`).

use serde_json::Value;
use spar::analysis::wiring::{DeclaredSecrets, EnvSource, env, host_path, secret_env_problem, unix_path};

use super::{Ctx, Verdict, list, runners};
use crate::engine::engine_reads_cloud_env;

/// The addresses every engine listens on besides its `--addr` ones.
pub const ENGINE_DEFAULT_ADDRESSES: [&str; 2] =
    ["unix:///run/buildkit/buildkitd.sock", "unix:///run/dagger/engine.sock"];

/// The addresses the engine container listens on.
pub fn engine_addresses(container: &Value) -> Vec<String> {
    let mut out: Vec<String> = ENGINE_DEFAULT_ADDRESSES.iter().map(|s| s.to_string()).collect();
    let args: Vec<String> = list(&container["args"])
        .iter()
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--addr" {
            if let Some(v) = it.next() {
                out.push(v.clone());
            }
        } else if let Some(v) = a.strip_prefix("--addr=") {
            out.push(v.to_string());
        }
    }
    out
}

fn engine_container(c: &Ctx<'_>) -> Value {
    let cs = list(&c.pod_spec["containers"]);
    cs.iter()
        .find(|x| x["name"] == "dagger-engine")
        .or(cs.first())
        .cloned()
        .unwrap_or_default()
}

/// `socket-path`.
pub(super) fn socket_path(c: &Ctx<'_>) -> Verdict {
    let mut v = Verdict::default();
    let engine = engine_container(c);
    let mut engine_sockets = Vec::new();
    for addr in engine_addresses(&engine) {
        if let Some(p) = unix_path(&addr)
            && let Ok(host) = host_path(&c.pod_spec, &engine, p)
        {
            engine_sockets.push((addr.clone(), host));
        }
    }
    if engine_sockets.is_empty() {
        v.failures.push(format!(
            "the engine DaemonSet `{}` mounts none of its sockets ({}) from a hostPath, so no runner can reach it",
            c.engine_name,
            engine_addresses(&engine).join(", ")
        ));
    }
    for r in runners::declared(c.d.resources) {
        let container = r.container();
        let host_env = match env(container, "_EXPERIMENTAL_DAGGER_RUNNER_HOST") {
            Some(EnvSource::Value(s)) => s,
            _ => {
                v.failures.push(format!(
                    "runner pods of `{}` set no _EXPERIMENTAL_DAGGER_RUNNER_HOST, so Dagger starts an engine of its own",
                    r.group
                ));
                continue;
            }
        };
        let Some(path) = unix_path(&host_env) else {
            v.failures.push(format!(
                "runner pods of `{}`: _EXPERIMENTAL_DAGGER_RUNNER_HOST={host_env} must be unix:// and an absolute path",
                r.group
            ));
            continue;
        };
        match host_path(&r.spec, container, path) {
            Err(why) => v.failures.push(format!(
                "runner pods of `{}` set _EXPERIMENTAL_DAGGER_RUNNER_HOST={host_env}, but {why}",
                r.group
            )),
            Ok(host) => match engine_sockets.iter().find(|(_, h)| *h == host) {
                Some((addr, _)) => v.evidence.push(format!(
                    "runner `{}` {host_env} = node {host} = engine {addr}",
                    r.group
                )),
                None => v.failures.push(format!(
                    "runner pods of `{}` set _EXPERIMENTAL_DAGGER_RUNNER_HOST={host_env} (node path {host}) but the engine listens on {}",
                    r.group,
                    if engine_sockets.is_empty() {
                        "no socket on the node".to_string()
                    } else {
                        engine_sockets
                            .iter()
                            .map(|(a, h)| format!("{a} (node path {h})"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                )),
            },
        }
    }
    v
}

/// `cloud-token`.
pub(super) fn cloud_token(c: &Ctx<'_>) -> Verdict {
    let mut v = Verdict::default();
    let secrets = DeclaredSecrets::from_declared(c.d.resources);
    let engine = engine_container(c);
    let image = engine["image"].as_str().unwrap_or_default();
    let version = image.rsplit(':').next().unwrap_or_default();
    if !engine_reads_cloud_env(version) {
        for var in [
            "DAGGER_CLOUD_TOKEN",
            "_EXPERIMENTAL_DAGGER_CACHESERVICE_URL",
            "_EXPERIMENTAL_DAGGER_CACHESERVICE_TOKEN",
        ] {
            if env(&engine, var).is_some() {
                v.failures.push(format!(
                    "the engine DaemonSet `{}` sets {var}, which engine {version} ignores (engines after v0.18.16 do); the Dagger client in the runners reads DAGGER_CLOUD_TOKEN: set engine.cloud_token",
                    c.engine_name
                ));
            }
        }
    }
    if c.d.engine.cloud_token.is_none() {
        return v;
    }
    for r in runners::declared(c.d.resources) {
        match secret_env_problem(r.container(), "DAGGER_CLOUD_TOKEN", &r.namespace, &secrets) {
            None => v
                .evidence
                .push(format!("runner `{}` gets DAGGER_CLOUD_TOKEN in {}", r.group, r.namespace)),
            Some(why) => v.failures.push(format!(
                "a Dagger Cloud token is configured (engine.cloud_token) but the runner container of `{}` {why}; the Dagger client in the runner is what reads it",
                r.group
            )),
        }
    }
    v
}

/// Images whose entrypoint registers a runner with the token the summerwind controller
/// injects (`RUNNER_NAME`, `RUNNER_TOKEN`, `RUNNER_ORG`/`RUNNER_REPO`).
const SUMMERWIND_IMAGES: [&str; 3] = [
    "summerwind/actions-runner",
    "summerwind/actions-runner-dind",
    "summerwind/actions-runner-dind-rootless",
];

fn repository(image: &str) -> &str {
    let no_digest = image.split('@').next().unwrap_or(image);
    match no_digest.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => no_digest,
    }
}

/// `runner-registration`.
pub(super) fn runner_registration(c: &Ctx<'_>) -> Verdict {
    let mut v = Verdict::default();
    for r in runners::declared(c.d.resources) {
        let container = r.container();
        let image = container["image"].as_str().unwrap_or_default();
        let repo = repository(image);
        if r.legacy {
            if SUMMERWIND_IMAGES.contains(&repo) {
                v.evidence.push(format!(
                    "runner `{}` ({image}) registers through its entrypoint",
                    r.group
                ));
            } else if repo == "ghcr.io/actions/actions-runner" {
                v.failures.push(format!(
                    "legacy runners of `{}` use {image}, which has no entrypoint: nothing registers them with GitHub under the summerwind controller; use summerwind/actions-runner (arc.runner_image)",
                    r.group
                ));
            } else {
                v.failures.push(format!(
                    "legacy runners of `{}` use {image}; spar knows only summerwind's images to register under the summerwind controller (if yours is built on summerwind/actions-runner's entrypoint, waive runner-registration)",
                    r.group
                ));
            }
        } else {
            let command: Vec<String> = list(&container["command"])
                .iter()
                .filter_map(|a| a.as_str().map(str::to_string))
                .collect();
            if command.iter().any(|c| c.ends_with("/run.sh")) {
                v.evidence
                    .push(format!("runner `{}` ({image}) starts {}", r.group, command.join(" ")));
            } else if repo == "ghcr.io/actions/actions-runner" {
                v.failures.push(format!(
                    "scale-set runners of `{}` use {image} without command [\"/home/runner/run.sh\"]; the image has no entrypoint, so the runner never starts",
                    r.group
                ));
            } else {
                v.evidence
                    .push(format!("runner `{}` ({image}) starts its image's entrypoint", r.group));
            }
        }
    }
    v
}

/// Whether a HorizontalRunnerAutoscaler spec scales a deployment up from zero, and if not why.
fn from_zero_problem(spec: &Value, organization: bool) -> Option<String> {
    let triggers = list(&spec["scaleUpTriggers"]);
    if triggers.iter().any(|t| t.get("githubEvent").is_some()) {
        return None;
    }
    let metrics = list(&spec["metrics"]);
    let types: Vec<&str> = metrics.iter().filter_map(|m| m["type"].as_str()).collect();
    let queued = "TotalNumberOfQueuedAndInProgressWorkflowRuns";
    let order_ok = types == [queued] || types == ["PercentageRunnersBusy", queued];
    if !order_ok {
        return Some(format!(
            "its metrics {types:?} cannot scale up from zero (PercentageRunnersBusy needs a busy runner); use {queued} (or PercentageRunnersBusy followed by it), or webhook scaleUpTriggers"
        ));
    }
    let q = metrics.iter().find(|m| m["type"] == queued).expect("checked above");
    if organization && list(&q["repositoryNames"]).is_empty() {
        return Some(format!(
            "{queued} for organization runners needs repositoryNames (arc.legacy_repositories); the controller refuses it without them"
        ));
    }
    None
}

/// `autoscale-from-zero`.
pub(super) fn autoscale_from_zero(c: &Ctx<'_>) -> Verdict {
    let mut v = Verdict::default();
    let deployments: Vec<&Value> =
        c.d.resources
            .iter()
            .filter(|r| r.kind == "kubernetes:Object" && r.inputs["manifest"]["kind"] == "RunnerDeployment")
            .map(|r| &r.inputs["manifest"])
            .collect();
    for r in
        c.d.resources
            .iter()
            .filter(|r| r.kind == "kubernetes:Object" && r.inputs["manifest"]["kind"] == "HorizontalRunnerAutoscaler")
    {
        let m = &r.inputs["manifest"];
        let name = m["metadata"]["name"].as_str().unwrap_or_default();
        let spec = &m["spec"];
        // ARC defaults minReplicas to 1.
        let min = spec["minReplicas"].as_u64().unwrap_or(1);
        let target = spec["scaleTargetRef"]["name"].as_str().unwrap_or_default();
        let organization = deployments
            .iter()
            .find(|d| d["metadata"]["name"] == target)
            .is_some_and(|d| d["spec"]["template"]["spec"].get("organization").is_some());
        if min > 0 {
            v.evidence
                .push(format!("autoscaler `{name}` keeps at least {min} runner(s)"));
            continue;
        }
        match from_zero_problem(spec, organization) {
            None => v.evidence.push(format!("autoscaler `{name}` scales up from zero")),
            Some(why) => v.failures.push(format!(
                "HorizontalRunnerAutoscaler `{name}` ({}) has minReplicas 0 but {why}",
                r.address
            )),
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn engine_addresses_are_the_defaults_and_its_addr_arguments() {
        assert_eq!(engine_addresses(&json!({})), ENGINE_DEFAULT_ADDRESSES);
        let c = json!({"args": ["--addr", "tcp://0.0.0.0:1234", "--addr=unix:///run/x.sock", "--debug"]});
        assert_eq!(
            engine_addresses(&c)[2..],
            ["tcp://0.0.0.0:1234".to_string(), "unix:///run/x.sock".to_string()]
        );
    }

    #[test]
    fn image_repositories() {
        assert_eq!(
            repository("summerwind/actions-runner:latest"),
            "summerwind/actions-runner"
        );
        assert_eq!(
            repository("ghcr.io/actions/actions-runner"),
            "ghcr.io/actions/actions-runner"
        );
        assert_eq!(repository("localhost:5000/runner:v1"), "localhost:5000/runner");
        assert_eq!(repository("localhost:5000/runner"), "localhost:5000/runner");
        assert_eq!(repository("r/x@sha256:abc"), "r/x");
    }

    #[test]
    fn scaling_from_zero() {
        let busy = json!({"metrics": [{"type": "PercentageRunnersBusy"}]});
        assert!(
            from_zero_problem(&busy, false)
                .unwrap()
                .contains("cannot scale up from zero")
        );
        let queued = json!({"metrics": [{"type": "TotalNumberOfQueuedAndInProgressWorkflowRuns"}]});
        assert_eq!(from_zero_problem(&queued, false), None);
        assert!(from_zero_problem(&queued, true).unwrap().contains("repositoryNames"));
        let with_repos = json!({"metrics": [{"type": "PercentageRunnersBusy"},
            {"type": "TotalNumberOfQueuedAndInProgressWorkflowRuns", "repositoryNames": ["app"]}]});
        assert_eq!(from_zero_problem(&with_repos, true), None);
        let reversed = json!({"metrics": [{"type": "TotalNumberOfQueuedAndInProgressWorkflowRuns"},
            {"type": "PercentageRunnersBusy"}]});
        assert!(from_zero_problem(&reversed, false).is_some());
        let webhook = json!({"scaleUpTriggers": [{"githubEvent": {"workflowJob": {}}, "duration": "30m"}]});
        assert_eq!(from_zero_problem(&webhook, true), None);
    }
}
