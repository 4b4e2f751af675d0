//! The flagship stack: a CI platform on EKS with a Dagger Engine co-located with GitHub
//! Actions runners.
//!
//! Until spar's AWS and Kubernetes providers land, this stack declares only the parts it
//! can build with built-in kinds: the per-runner-group settings files the runners are
//! configured from and the webhook secret shared with GitHub.

use serde::Deserialize;
use spar::prelude::*;

fn main() -> std::process::ExitCode {
    spar::cli::run("dagger-ci", define)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// The EKS cluster name, used in every name and discovery tag.
    cluster: String,
    /// Where generated files go, relative to the working directory.
    output_dir: String,
    /// The Dagger Engine version runners and engine share.
    dagger_version: String,
    #[serde(default)]
    runner_groups: Vec<RunnerGroup>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RunnerGroup {
    name: String,
    min_runners: u32,
    max_runners: u32,
}

fn define(stack: &mut Stack) -> spar::Result<()> {
    let cfg: Config = stack.config()?;
    let secret = stack.add("webhook-secret", random::Password::new(32).special(false))?;
    let secret_file = stack.add(
        "webhook-secret-file",
        local::File::new(format!("{}/webhook-secret", cfg.output_dir), secret.result()).mode(0o600),
    )?;
    stack.component("runners", |s| {
        for g in &cfg.runner_groups {
            let body = serde_json::json!({
                "cluster": cfg.cluster,
                "runsOn": g.name,
                "minRunners": g.min_runners,
                "maxRunners": g.max_runners,
                "daggerVersion": cfg.dagger_version,
                "runnerHost": "unix:///run/dagger/engine.sock",
            });
            s.add_with(
                &g.name,
                local::File::new(
                    format!("{}/runners/{}.json", cfg.output_dir, g.name),
                    serde_json::to_string_pretty(&body).expect("JSON serializes") + "\n",
                ),
                ResourceOptions::new().depends_on(secret_file.address()),
            )?;
        }
        Ok(())
    })?;
    stack.export("cluster", &cfg.cluster)?;
    stack.export("webhook_secret_file", secret_file.path())?;
    Ok(())
}
