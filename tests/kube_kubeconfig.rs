//! The `kubeconfig` command as a user runs it: a stack program's command line
//! (`spar::cli::run_with`) in a process of its own, against the in-process API simulator.
//! It refuses a stack with no `kubernetes:Provider` in state, writes a 0600 file (also over
//! an existing world-readable one, also into a directory it creates) that reaches the cluster,
//! asks which provider when there are several, writes an `aws eks get-token` exec user with
//! the cluster's endpoint and CA for an EKS provider, and the simulator's plain URL when
//! `SPAR_KUBE_SANDBOX_URL` sends the stack to the sandbox; never a token.
//!
//! The command runs in a child process (this test binary again, running only [`cli_process`])
//! so that its exit code, stdout and stderr are the real ones and the sandbox variable is
//! that process's alone.
#![cfg(feature = "kubernetes")]

#[path = "support/kube.rs"]
mod kube_support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::ExitCode;

use base64::Engine as _;
use clap::Parser as _;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use kube_support::KubeEnv;
use serde_json::{Value, json};
use spar::Stack;
use spar::kubernetes::connection::SANDBOX_ENV;
use spar::kubernetes::{self, KubeProvider};

/// The command line of the child process, its arguments separated by `\x1f`.
const ARGS_ENV: &str = "SPAR_TEST_KUBECONFIG_ARGS";
/// Which program the child runs (`sandbox`, `two-clusters` or `empty`).
const PROGRAM_ENV: &str = "SPAR_TEST_KUBECONFIG_PROGRAM";
/// The simulator's URL, for the programs' sandbox provider.
const SIM_ENV: &str = "SPAR_TEST_KUBECONFIG_SIM";

const PROGRAM: &str = "kube-cli";
const EKS_ENDPOINT: &str = "https://0123456789ABCDEF.gr7.us-east-1.eks.amazonaws.com";
const CA_PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ2Z3\n-----END CERTIFICATE-----\n";

fn ca_data() -> String {
    base64::engine::general_purpose::STANDARD.encode(CA_PEM)
}

fn sim_url() -> String {
    std::env::var(SIM_ENV).expect("the simulator URL")
}

/// One sandbox cluster (default namespace `apps`) and a ConfigMap in it.
fn sandbox_program(s: &mut Stack) -> spar::Result<()> {
    let p = s.add("cluster", KubeProvider::sandbox(sim_url()).namespace("apps"))?;
    s.add(
        "settings",
        kubernetes::config_map(
            &p,
            Some("default"),
            "settings",
            [("a".to_string(), "1".to_string())].into(),
        ),
    )?;
    Ok(())
}

/// A sandbox cluster and an EKS cluster (not checked: nothing answers at its endpoint).
fn two_clusters(s: &mut Stack) -> spar::Result<()> {
    s.add("local", KubeProvider::sandbox(sim_url()))?;
    s.add(
        "eks",
        KubeProvider::eks(EKS_ENDPOINT, ca_data(), "ci", "us-east-1")
            .namespace("runners")
            .no_verify(),
    )?;
    Ok(())
}

/// The child process: runs the stack program's command line when [`ARGS_ENV`] is set, and
/// exits with its code; does nothing in an ordinary test run.
#[test]
fn cli_process() {
    let Ok(args) = std::env::var(ARGS_ENV) else {
        return;
    };
    let define: fn(&mut Stack) -> spar::Result<()> = match std::env::var(PROGRAM_ENV).as_deref() {
        Ok("sandbox") => sandbox_program,
        Ok("two-clusters") => two_clusters,
        _ => |_| Ok(()),
    };
    let cli = spar::cli::Cli::try_parse_from(std::iter::once(PROGRAM).chain(args.split('\x1f')))
        .unwrap_or_else(|e| panic!("{e}"));
    let code = spar::cli::run_with(PROGRAM, define, cli);
    let n = [0u8, 1, 2, 130]
        .into_iter()
        .find(|n| ExitCode::from(*n) == code)
        .map_or(99, i32::from);
    std::process::exit(n);
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(&self) -> &str {
        assert_eq!(self.code, Some(0), "stdout: {}\nstderr: {}", self.stdout, self.stderr);
        &self.stdout
    }
    /// The `error: ...` line of a failed run.
    fn error(&self) -> &str {
        assert_eq!(self.code, Some(1), "stdout: {}\nstderr: {}", self.stdout, self.stderr);
        self.stderr
            .lines()
            .find(|l| l.starts_with("error: "))
            .unwrap_or_else(|| panic!("no error line in {}", self.stderr))
    }
}

/// Runs `kube-cli ARGS` on `program` in `dir` (with `SPAR_KUBE_SANDBOX_URL` set to the
/// simulator when `sandbox_env`).
async fn spar(env: &KubeEnv, dir: &Path, program: &str, sandbox_env: bool, args: &[&str]) -> Run {
    let mut cmd = tokio::process::Command::new(std::env::current_exe().unwrap());
    cmd.args(["cli_process", "--exact", "--nocapture", "--test-threads=1"])
        .current_dir(dir)
        .env(ARGS_ENV, args.join("\x1f"))
        .env(PROGRAM_ENV, program)
        .env(SIM_ENV, env.url())
        .env("NO_COLOR", "1")
        .env_remove(SANDBOX_ENV)
        .env_remove("SPAR_STACK")
        .env_remove("SPAR_STATE_DIR")
        .env_remove("SPAR_BACKEND")
        .env_remove("SPAR_CONFIG_DIR")
        .env_remove("SPAR_SECRET_KEY")
        .env_remove("KUBECONFIG");
    if sandbox_env {
        cmd.env(SANDBOX_ENV, env.url());
    }
    let out = cmd.output().await.expect("the test binary runs");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn read(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).expect("the kubeconfig is JSON")
}

/// No credential of any kind: no token, no client key or certificate, no password.
fn assert_no_credentials(k: &Value) {
    fn keys(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    out.push(k.clone());
                    keys(x, out);
                }
            }
            Value::Array(a) => a.iter().for_each(|x| keys(x, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    keys(k, &mut all);
    for bad in [
        "token",
        "tokenFile",
        "client-key-data",
        "client-certificate-data",
        "password",
        "auth-provider",
    ] {
        assert!(!all.iter().any(|k| k == bad), "`{bad}` in {k:#}");
    }
    assert!(!k.to_string().contains("k8s-aws-v1"), "an EKS token in {k:#}");
}

/// A client made from the written file, as kubectl would use it.
async fn client_from(path: &Path) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(path).unwrap();
    let config = kube::config::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    kube::Client::try_from(config).unwrap()
}

#[tokio::test]
async fn kubeconfig_command_writes_a_usable_0600_file_without_tokens() {
    let env = KubeEnv::start().await;
    let dir = env.dir.path();
    let state = dir.join("state");
    let state_arg = state.to_str().unwrap();
    let default_out = dir.join("state.kubeconfig");

    // Nothing applied yet: no provider in state, nothing written.
    let run = spar(&env, dir, "sandbox", false, &["--state-dir", state_arg, "kubeconfig"]).await;
    assert!(
        run.error()
            .contains("the stack has no kubernetes:Provider in state; apply it first"),
        "{}",
        run.stderr
    );
    assert!(!default_out.exists());

    spar(
        &env,
        dir,
        "sandbox",
        false,
        &["--state-dir", state_arg, "apply", "--yes"],
    )
    .await
    .ok();

    // Default place: next to the state directory; 0600; the simulator's URL, the provider's
    // namespace, a context named after the program and stack.
    let run = spar(&env, dir, "sandbox", false, &["--state-dir", state_arg, "kubeconfig"]).await;
    let p = default_out.display().to_string();
    assert!(
        run.ok().contains(&format!(
            "Wrote {p} (context kube-cli-dev). Use it with: export KUBECONFIG={p}"
        )),
        "{}",
        run.stdout
    );
    assert_eq!(mode(&default_out), 0o600);
    let k = read(&default_out);
    assert_eq!(k["current-context"], "kube-cli-dev");
    assert_eq!(
        k["clusters"],
        json!([{"name": "kube-cli-dev", "cluster": {"server": env.url()}}])
    );
    assert_eq!(k["users"], json!([{"name": "kube-cli-dev", "user": {}}]));
    assert_eq!(
        k["contexts"],
        json!([{"name": "kube-cli-dev", "context": {"cluster": "kube-cli-dev", "user": "kube-cli-dev", "namespace": "apps"}}])
    );
    assert_no_credentials(&k);
    // The file reaches the cluster: the object the stack made is there.
    let client = client_from(&default_out).await;
    assert_eq!(client.default_namespace(), "apps");
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    assert_eq!(cms.get("settings").await.unwrap().data.unwrap()["a"], "1");

    // An existing world-readable file is replaced by a 0600 one; a missing directory is made.
    let existing = dir.join("existing.kubeconfig");
    std::fs::write(&existing, "old contents that are much longer than nothing at all").unwrap();
    std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o644)).unwrap();
    let args = [
        "--state-dir",
        state_arg,
        "kubeconfig",
        "--out",
        existing.to_str().unwrap(),
    ];
    spar(&env, dir, "sandbox", false, &args).await.ok();
    assert_eq!(mode(&existing), 0o600, "a kubeconfig left readable by others");
    assert_eq!(read(&existing), k);
    let nested = dir.join("new/dir/kubeconfig");
    let args = [
        "--state-dir",
        state_arg,
        "kubeconfig",
        "--out",
        nested.to_str().unwrap(),
    ];
    spar(&env, dir, "sandbox", false, &args).await.ok();
    assert_eq!(mode(&nested), 0o600);
    assert_eq!(read(&nested), k);

    // Two providers: the command asks which; an unknown address is refused.
    let state2 = dir.join("state2");
    let state2_arg = state2.to_str().unwrap();
    spar(
        &env,
        dir,
        "two-clusters",
        false,
        &["--state-dir", state2_arg, "apply", "--yes"],
    )
    .await
    .ok();
    let run = spar(
        &env,
        dir,
        "two-clusters",
        false,
        &["--state-dir", state2_arg, "kubeconfig"],
    )
    .await;
    assert!(
        run.error()
            .contains("the stack has several Kubernetes providers (eks, local); choose one with --provider"),
        "{}",
        run.stderr
    );
    let run = spar(
        &env,
        dir,
        "two-clusters",
        false,
        &["--state-dir", state2_arg, "kubeconfig", "--provider", "nope"],
    )
    .await;
    assert!(
        run.error().contains("no kubernetes:Provider at `nope` in state"),
        "{}",
        run.stderr
    );

    // EKS: the endpoint and CA from state, an exec user running `aws eks get-token` (as
    // `aws eks update-kubeconfig` writes it), named after the cluster.
    let eks_out = dir.join("eks.kubeconfig");
    let args = [
        "--state-dir",
        state2_arg,
        "kubeconfig",
        "--provider",
        "eks",
        "--out",
        eks_out.to_str().unwrap(),
    ];
    let run = spar(&env, dir, "two-clusters", false, &args).await;
    assert!(run.ok().contains("(context ci)"), "{}", run.stdout);
    assert_eq!(mode(&eks_out), 0o600);
    let k = read(&eks_out);
    assert_eq!(
        k["clusters"],
        json!([{"name": "ci", "cluster": {"server": EKS_ENDPOINT, "certificate-authority-data": ca_data()}}])
    );
    assert_eq!(
        k["users"],
        json!([{"name": "ci", "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": "aws",
            "args": ["eks", "get-token", "--cluster-name", "ci", "--region", "us-east-1"],
            "interactiveMode": "Never",
        }}}])
    );
    assert_eq!(
        k["contexts"],
        json!([{"name": "ci", "context": {"cluster": "ci", "user": "ci", "namespace": "runners"}}])
    );
    assert_eq!(k["current-context"], "ci");
    assert_no_credentials(&k);
    // kube reads it as an exec-authenticated cluster (it would run `aws` for each token).
    let kc = kube::config::Kubeconfig::read_from(&eks_out).unwrap();
    assert_eq!(
        kc.auth_infos[0]
            .auth_info
            .as_ref()
            .unwrap()
            .exec
            .as_ref()
            .unwrap()
            .command
            .as_deref(),
        Some("aws")
    );

    // The sandbox: SPAR_KUBE_SANDBOX_URL sends the EKS provider to the simulator, so the file
    // names the simulator, with no exec user (the simulator needs no credentials) and no CA.
    let sandboxed = dir.join("sandboxed.kubeconfig");
    let args = [
        "--state-dir",
        state2_arg,
        "kubeconfig",
        "--provider",
        "eks",
        "--out",
        sandboxed.to_str().unwrap(),
    ];
    spar(&env, dir, "two-clusters", true, &args).await.ok();
    assert_eq!(mode(&sandboxed), 0o600);
    let k = read(&sandboxed);
    assert_eq!(k["clusters"], json!([{"name": "ci", "cluster": {"server": env.url()}}]));
    assert_eq!(k["users"], json!([{"name": "ci", "user": {}}]));
    assert_no_credentials(&k);
    let nss: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client_from(&sandboxed).await);
    assert!(nss.get_opt("default").await.unwrap().is_some());
    env.sim.shutdown().await;
}
