//! The stack through its real command line (the built `dagger-ci` binary), with an empty
//! environment: no AWS credentials or settings, no SPAR_* variables, no sandbox, HOME and
//! the state directory in a temporary directory. `plan` of `dev` shows every resource of
//! the graph; `check` passes a valid config and names the check a broken one fails; `cost`
//! counts runner nodes by packing the declared runner pods; `graph --format mermaid` draws each component as
//! a subgraph holding its resources.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use spar::Stack;
use spar::model::config::StackConfig;

fn manifest_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// A temporary HOME and state directory for one test.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("home")).unwrap();
        Sandbox { dir }
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Runs the binary with only PATH, HOME and NO_COLOR set (plus `env`), from the stack's
    /// directory, its state under the temporary directory.
    fn run(&self, stack: &str, args: &[&str], env: &[(&str, &Path)]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dagger-ci"));
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path().join("home"))
            .env("NO_COLOR", "1")
            .current_dir(manifest_dir())
            .args(["--stack", stack, "--state-dir"])
            .arg(self.state())
            .args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        // Nothing but the stack's key is written, and only under the temporary directory.
        assert!(
            !self.dir.path().join("home").read_dir().unwrap().any(|_| true),
            "HOME stays empty"
        );
        out
    }
}

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

/// The graph `config/<stack>.toml` declares: (component, name, kind) of every resource.
fn graph(config_dir: &Path, stack: &str) -> Vec<(String, String, String)> {
    let config = StackConfig::load(config_dir, stack).unwrap();
    let mut s = Stack::new("dagger-ci", stack, config);
    dagger_ci::define(&mut s).unwrap();
    s.into_program()
        .unwrap()
        .graph
        .resources
        .iter()
        .map(|r| {
            (
                r.address.component_path().to_string(),
                r.address.name().to_string(),
                r.kind.clone(),
            )
        })
        .collect()
}

#[test]
fn plan_of_dev_works_without_credentials_and_shows_every_resource() {
    let sb = Sandbox::new();
    let out = sb.run("dev", &["plan"], &[]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.starts_with("spar plan: dagger-ci (stack dev)"), "{stdout}");
    // The GitHub App key is needed by apply only: a warning, not an error.
    assert!(
        stderr.contains("check `secret-arc-github-app-private-key` will stop apply")
            && stderr.contains("GITHUB_APP_PRIVATE_KEY"),
        "{stderr}"
    );
    let resources = graph(&manifest_dir().join("config"), "dev");
    assert!(resources.len() > 60, "{}", resources.len());
    // Every resource is a create, listed under its component, in the graph's order.
    let mut at = 0;
    let mut component = String::new();
    for (comp, name, kind) in &resources {
        if *comp != component {
            let header = format!("\n  {comp}/\n");
            at = stdout[at..]
                .find(&header)
                .map(|i| at + i)
                .unwrap_or_else(|| panic!("{header:?} after byte {at} in\n{stdout}"));
            component = comp.clone();
        }
        let line = format!("\n      + {name}  {kind}\n");
        at = stdout[at..]
            .find(&line)
            .map(|i| at + i)
            .unwrap_or_else(|| panic!("{line:?} after byte {at} in\n{stdout}"));
    }
    for comp in ["network", "cluster", "karpenter", "dagger", "arc"] {
        assert!(stdout.contains(&format!("\n  {comp}/\n")), "{comp}");
    }
    assert!(
        !stdout.contains("cert-manager/"),
        "dev runs scale-set ARC without cert-manager"
    );
    assert!(
        stdout.contains(&format!(
            "Plan: {} to create, 0 to update, 0 to replace, 0 to delete.",
            resources.len()
        )),
        "{stdout}"
    );
    assert!(stdout.contains("cluster_name = \"dagger-ci-dev\""), "{stdout}");
    assert!(
        stdout.contains("runner_host = \"unix:///run/dagger/engine.sock\""),
        "{stdout}"
    );
    // The state directory is the temporary one: its key is there.
    assert!(sb.state().with_extension("key").exists());
}

#[test]
fn check_passes_a_valid_config_and_names_the_failed_check() {
    let sb = Sandbox::new();
    let key = sb.dir.path().join("key.pem");
    std::fs::write(&key, "not a real key").unwrap();

    // Valid: every check passes (the GitHub App key read from the environment is set).
    let out = sb.run("dev", &["check"], &[("GITHUB_APP_PRIVATE_KEY", &key)]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", text(&out.stderr));
    let names: Vec<&str> = dagger_ci::checks::CHECKS.iter().map(|c| c.name).collect();
    for name in &names {
        assert!(stdout.contains(&format!("ok     {name:<28} ")), "{name}: {stdout}");
    }
    let n = names.len();
    assert!(
        stdout.contains(&format!("{} passed, 0 failed, 0 waived.", n + 1)),
        "{stdout}"
    );
    // What the behaviour checks proved is printed under them: a path, a placement.
    assert!(
        stdout.contains("DNS udp/53: NodePool runners nodes -> CoreDNS on node group critical"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "Deployment kube-system/karpenter x2 (karpenter/chart, modelled from values) -> critical [m7g.large]"
        ),
        "{stdout}"
    );

    // `check --json`: the same as data.
    let out = sb.run("dev", &["check", "--json"], &[("GITHUB_APP_PRIVATE_KEY", &key)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let checks = v["checks"].as_array().unwrap();
    assert_eq!(checks.len(), n + 1);
    let net = checks.iter().find(|c| c["name"] == "network-paths").unwrap();
    assert_eq!(net["status"], "passed");
    assert!(net["failures"].as_array().unwrap().is_empty());
    assert!(
        net["evidence"].as_array().unwrap().iter().any(|e| e
            .as_str()
            .unwrap()
            .starts_with("kubelet tcp/10250: control plane of cluster/eks -> NodePool runners nodes")),
        "{net}"
    );

    // `check` also verifies what apply needs: without the key it fails, naming it.
    let out = sb.run("dev", &["check"], &[]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("NEEDED secret-arc-github-app-private-key"), "{stdout}");
    assert!(stdout.contains(&format!("{n} passed, 1 failed, 0 waived.")), "{stdout}");

    // Broken: the runners' uid is not the engine's group.
    let config = sb.dir.path().join("config");
    std::fs::create_dir(&config).unwrap();
    let dev = std::fs::read_to_string(manifest_dir().join("config/dev.toml")).unwrap();
    assert!(dev.contains("[arc.github_app]"));
    std::fs::write(
        config.join("dev.toml"),
        dev.replacen("[arc.github_app]", "runner_uid = 1000\n\n[arc.github_app]", 1),
    )
    .unwrap();
    let env = [("GITHUB_APP_PRIVATE_KEY", key.as_path()), ("SPAR_CONFIG_DIR", &config)];
    let out = sb.run("dev", &["check"], &env);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("FAILED socket-permissions"), "{stdout}");
    assert!(
        stdout.contains("do not run with the engine's group Some(1001)"),
        "{stdout}"
    );
    assert!(stdout.contains(&format!("{n} passed, 1 failed, 0 waived.")), "{stdout}");
    // ... which plan refuses too, unless waived.
    let out = sb.run("dev", &["plan"], &env);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("check `socket-permissions` failed"),
        "{}",
        text(&out.stderr)
    );
    let out = sb.run("dev", &["check", "--waive", "socket-permissions"], &env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("WAIVED socket-permissions"));
}

#[test]
fn cost_counts_runner_nodes_by_packing_the_pods_the_stack_declares() {
    let sb = Sandbox::new();
    let out = sb.run("prod", &["cost"], &[]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(
        stdout.starts_with("Monthly cost estimate for `dagger-ci-prod`"),
        "{stdout}"
    );
    let row = |start: &str| {
        stdout
            .lines()
            .find(|l| l.trim_start().starts_with(start))
            .unwrap_or_else(|| panic!("no row `{start}`: {stdout}"))
            .to_string()
    };
    // 3 x (0.0816 USD/h x 730 h + 20 GiB x 0.08 USD) = 183.50: root volumes are costed.
    assert!(
        row("critical nodes: 3 x m7g.large (+20 GiB gp3 each)").contains(" 183.50 USD"),
        "{stdout}"
    );
    // 3 gateways x 0.045 x 730 + 100 GB x 0.045 once = 103.05 (not 3 x the GB charge).
    assert!(row("NAT gateways: 3").contains(" 103.05 USD"), "{stdout}");
    // A c6id.4xlarge leaves about 13.8 CPU and 21 GiB after the engine (2 CPU, 8 GiB) and
    // the node agents. Minimum: the 8 CPU / 16 GiB large runner and two 2 CPU / 4 GiB small
    // ones need 24 GiB: 2 nodes (counting vCPU alone said 1).
    assert!(
        row("at minimum (2 dagger-small, 1 dagger-large): 2 nodes").contains(" 1185.34 USD"),
        "{stdout}"
    );
    // Typical (20 busy, shared 15/5 by the maxima): one large runner a node (memory) with
    // one small beside it, 5 nodes; the other 10 small ones 5 a node: 7 (vCPU alone said 5).
    row("typical load (15 dagger-small, 5 dagger-large): 7 nodes");
    row("at the NodePool limit (512 vCPU): 32 nodes");
    assert!(stdout.contains("DaemonSet dagger/dagger-engine"), "{stdout}");
    assert!(
        stdout.contains(spar::analysis::instance_types::PRICE_SOURCE),
        "{stdout}"
    );
    assert!(row("c6id.4xlarge").contains("0.8064 USD/h"), "{stdout}");
}

#[test]
fn graph_mermaid_draws_components_as_subgraphs() {
    let sb = Sandbox::new();
    let out = sb.run("dev", &["graph", "--format", "mermaid"], &[]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.starts_with("flowchart LR\n"), "{stdout}");
    // Each subgraph's members: (component -> names).
    let mut members: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in stdout.lines() {
        let l = line.trim();
        if let Some(rest) = l.strip_prefix("subgraph ") {
            let comp = rest.split_once("[\"").unwrap().1.trim_end_matches("\"]");
            assert!(current.is_none(), "nested: {line}");
            current = Some(comp.to_string());
            members.entry(comp.to_string()).or_default();
        } else if l == "end" {
            assert!(current.take().is_some(), "stray end");
        } else if let (Some(c), Some((_, label))) = (&current, l.split_once("[\"")) {
            let name = label.split("<br/>").next().unwrap();
            members.get_mut(c).unwrap().push(name.to_string());
        }
    }
    assert!(current.is_none(), "unclosed subgraph");
    let resources = graph(&manifest_dir().join("config"), "dev");
    let comps: Vec<&str> = members.keys().map(String::as_str).collect();
    assert_eq!(comps, ["arc", "cluster", "dagger", "karpenter", "network"]);
    for (comp, name, kind) in &resources {
        assert!(members[comp].contains(name), "{comp}/{name} in {members:?}");
        assert!(
            stdout.contains(&format!("[\"{name}<br/><small>{kind}</small>\"]")),
            "{name}"
        );
    }
    let total: usize = members.values().map(Vec::len).sum();
    assert_eq!(total, resources.len());
    assert!(stdout.contains(" --> "), "edges: {stdout}");
}
