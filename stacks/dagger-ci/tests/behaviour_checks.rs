//! The behaviour checks on the flagship stack: each defect that would stop a real CI job is
//! put back (in a config, or in the declared resources as a test stack would declare them)
//! and the check that sees it fails with the message a user needs; every shipped config,
//! in both ARC modes and both engine layouts, passes every check.

use serde_json::{Value, json};
use spar::Stack;
use spar::graph::DesiredResource;
use spar::model::checks::Check;
use spar::model::config::StackConfig;

fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn config(stack: &str, edits: &[(&str, &str)]) -> String {
    let mut text = std::fs::read_to_string(root().join(format!("config/{stack}.toml"))).unwrap();
    for (from, to) in edits {
        assert!(text.contains(from), "{stack}.toml has {from:?}");
        text = text.replacen(from, to, 1);
    }
    text
}

/// The components and resources `toml` declares.
fn declare(toml: &str) -> (dagger_ci::Components, Vec<DesiredResource>) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t.toml"), toml).unwrap();
    let cfg = StackConfig::load(dir.path(), "t").unwrap();
    let mut stack = Stack::new("dagger-ci", "t", cfg);
    let cfg: dagger_ci::config::Config = stack.config().unwrap();
    let c = dagger_ci::declare_components(&mut stack, &cfg).unwrap();
    let resources = stack.resources().to_vec();
    (c, resources)
}

fn run(c: &dagger_ci::Components, resources: &[DesiredResource]) -> Vec<Check> {
    dagger_ci::checks::evaluate(&c.declared(resources))
}

/// The failures of check `name`.
fn failures(checks: &[Check], name: &str) -> Vec<String> {
    checks.iter().find(|c| c.name == name).unwrap().failures.clone()
}

fn failing(checks: &[Check]) -> Vec<(String, Vec<String>)> {
    checks
        .iter()
        .filter(|c| !c.passed())
        .map(|c| (c.name.clone(), c.failures.clone()))
        .collect()
}

fn resource<'a>(resources: &'a mut [DesiredResource], address: &str) -> &'a mut Value {
    &mut resources
        .iter_mut()
        .find(|r| r.address.as_str() == address)
        .unwrap_or_else(|| panic!("{address} is declared"))
        .inputs
}

const LEGACY: (&str, &str) = ("[arc]", "[arc]\nmode = \"legacy\"\nlegacy_repositories = [\"app\"]");

#[test]
fn every_shipped_config_in_every_mode_and_layout_passes_every_check() {
    for stack in ["sandbox", "dev", "prod"] {
        for (mode, mode_edit) in [("scale sets", None), ("legacy ARC", Some(LEGACY))] {
            for layout in ["current", "legacy"] {
                let mut edits: Vec<(&str, &str)> = mode_edit.into_iter().collect();
                let layout_line = format!("[engine]\nlayout = \"{layout}\"");
                edits.push(("[engine]", &layout_line));
                let (c, r) = declare(&config(stack, &edits));
                let checks = run(&c, &r);
                assert_eq!(checks.len(), dagger_ci::checks::CHECKS.len());
                let failed = failing(&checks);
                assert!(failed.is_empty(), "{stack}, {mode}, {layout} engine: {failed:#?}");
                // The behaviour checks proved something, not nothing.
                for name in [
                    "network-paths",
                    "placement-controllers",
                    "placement-engine",
                    "placement-runners",
                ] {
                    let ev = &checks.iter().find(|x| x.name == name).unwrap().evidence;
                    assert!(!ev.is_empty(), "{stack}, {mode}, {layout}: {name} has no evidence");
                }
            }
        }
    }
}

/// Defect 1: runner nodes without the cluster security group reach neither CoreDNS (on the
/// critical nodes, which have only that group) nor are reached by the control plane.
#[test]
fn runner_nodes_without_the_cluster_security_group_have_no_dns() {
    let (c, r) = declare(&config(
        "dev",
        &[(
            "[engine]",
            "[karpenter.node_class]\ncluster_security_group = false\n\n[engine]",
        )],
    ));
    let checks = run(&c, &r);
    let f = failures(&checks, "network-paths");
    let dns = f
        .iter()
        .find(|m| m.starts_with("DNS udp/53 from NodePool runners nodes to CoreDNS on node group critical is blocked"))
        .unwrap_or_else(|| panic!("{f:#?}"));
    assert!(
        dns.contains("security group cluster/eks#cluster-security-group (on node group critical) allows no ingress on udp/53 from the groups of the NodePool runners nodes [network/node-sg]"),
        "{dns}"
    );
    assert!(
        f.iter()
            .any(|m| m.starts_with("DNS tcp/53 from NodePool runners nodes")),
        "{f:#?}"
    );
    // Only the runner nodes are cut off: the critical nodes still resolve names.
    assert!(
        !f.iter().any(|m| m.starts_with("DNS udp/53 from node group critical")),
        "{f:#?}"
    );
    assert_eq!(failing(&checks).len(), 1, "{:#?}", failing(&checks));
}

/// Defect 2: the Dagger Cloud token on the engine only: the engine (v0.21.8) ignores it and
/// the Dagger client in the runner never gets it.
#[test]
fn a_cloud_token_on_the_engine_only_reaches_no_client() {
    let (mut c, mut r) = declare(&config("prod", &[]));
    assert!(failures(&run(&c, &r), "cloud-token").is_empty());
    // Put the defect back: the runners' env without the token, the engine's with it.
    for group in ["dagger-small", "dagger-large"] {
        let env = &mut resource(&mut r, &format!("arc/scale-set-{group}"))["values"]["template"]["spec"]["containers"]
            [0]["env"];
        env.as_array_mut()
            .unwrap()
            .retain(|e| e["name"] != "DAGGER_CLOUD_TOKEN");
    }
    let container = &mut c
        .engine
        .daemonset
        .spec
        .as_mut()
        .unwrap()
        .template
        .spec
        .as_mut()
        .unwrap()
        .containers[0];
    container.env.get_or_insert_with(Vec::new).push(
        serde_json::from_value(json!({"name": "DAGGER_CLOUD_TOKEN", "valueFrom": {"secretKeyRef": {"name": "dagger-cloud", "key": "token"}}}))
            .unwrap(),
    );
    let f = failures(&run(&c, &r), "cloud-token");
    assert!(
        f.iter()
            .any(|m| m.contains("sets DAGGER_CLOUD_TOKEN, which engine v0.21.8 ignores")),
        "{f:#?}"
    );
    assert!(
        f.iter()
            .any(|m| m.contains("the runner container of `dagger-small` sets no DAGGER_CLOUD_TOKEN")),
        "{f:#?}"
    );
    // A token read from a Secret the runners' namespace does not have fails too.
    let (c, mut r) = declare(&config("prod", &[]));
    resource(&mut r, "arc/cloud-token")["manifest"]["metadata"]["namespace"] = json!("dagger");
    let f = failures(&run(&c, &r), "cloud-token");
    assert!(
        f.iter().any(|m| m.contains("reads DAGGER_CLOUD_TOKEN from Secret arc-runners/dagger-cloud, which this stack does not declare in arc-runners")),
        "{f:#?}"
    );
}

/// Defect 3: legacy runners from the image with no registering entrypoint.
#[test]
fn legacy_runners_of_an_image_that_does_not_register_fail() {
    let (c, r) = declare(&config(
        "sandbox",
        &[
            LEGACY,
            (
                "[arc.github_app]",
                "runner_image = \"ghcr.io/actions/actions-runner:latest\"\n\n[arc.github_app]",
            ),
        ],
    ));
    let checks = run(&c, &r);
    let f = failures(&checks, "runner-registration");
    assert!(
        f.iter().any(|m| m.contains(
            "legacy runners of `dagger-small` use ghcr.io/actions/actions-runner:latest, which has no entrypoint"
        )),
        "{f:#?}"
    );
    // The default legacy image registers.
    let (c, r) = declare(&config("sandbox", &[LEGACY]));
    assert!(failures(&run(&c, &r), "runner-registration").is_empty());
    // A scale-set runner of that image without run.sh never starts either.
    let (c, mut r) = declare(&config("sandbox", &[]));
    resource(&mut r, "arc/scale-set-dagger-large")["values"]["template"]["spec"]["containers"][0]
        .as_object_mut()
        .unwrap()
        .remove("command");
    let f = failures(&run(&c, &r), "runner-registration");
    assert!(f.iter().any(|m| m.contains("without command")), "{f:#?}");
}

/// Defect 4: a legacy autoscaler with minimum 0 on PercentageRunnersBusy.
#[test]
fn a_legacy_autoscaler_that_cannot_leave_zero_fails() {
    let (c, r) = declare(&config(
        "sandbox",
        &[
            LEGACY,
            (
                "[arc.github_app]",
                "legacy_metric = \"percentage_runners_busy\"\n\n[arc.github_app]",
            ),
        ],
    ));
    let f = failures(&run(&c, &r), "autoscale-from-zero");
    assert_eq!(
        f.len(),
        1,
        "{f:#?}: dagger-large keeps one runner, only dagger-small is at 0"
    );
    assert!(
        f[0].contains("HorizontalRunnerAutoscaler `dagger-small` (arc/autoscaler-dagger-small) has minReplicas 0 but its metrics [\"PercentageRunnersBusy\"] cannot scale up from zero"),
        "{f:#?}"
    );
    // Organization runners scaled by queued runs need their repositories.
    let (c, r) = declare(&config("sandbox", &[("[arc]", "[arc]\nmode = \"legacy\"")]));
    let f = failures(&run(&c, &r), "autoscale-from-zero");
    assert!(
        f[0].contains("needs repositoryNames (arc.legacy_repositories)"),
        "{f:#?}"
    );
}

/// Scheduling defects read like the scheduler's own messages.
#[test]
fn pods_that_cannot_schedule_fail_with_the_schedulers_reason() {
    // Runners without the runner toleration: the NodePool's taint keeps them off.
    let (c, r) = declare(&config(
        "dev",
        &[("[arc.github_app]", "runner_tolerations = []\n\n[arc.github_app]")],
    ));
    let f = failures(&run(&c, &r), "placement-runners");
    assert!(
        f.iter()
            .any(|m| m.starts_with("runner dagger-small: no node shape admits it")
                && m.contains("node(s) had untolerated taint {github-actions-runner: true}")),
        "{f:#?}"
    );
    // A runner bigger than any admitted type.
    let (c, r) = declare(&config(
        "dev",
        &[("cpu = \"8\", memory = \"16Gi\"", "cpu = \"200\", memory = \"16Gi\"")],
    ));
    let f = failures(&run(&c, &r), "placement-runners");
    assert!(
        f.iter().any(
            |m| m.starts_with("runner dagger-large: NodePool runners: 0/31 instance types fit:")
                && m.contains("Insufficient cpu (requested 200, allocatable")
        ),
        "{f:#?}"
    );
    // A pool whose CPU limit cannot hold the group's maximum.
    let (c, r) = declare(&config("prod", &[("limit_cpu = 512", "limit_cpu = 64")]));
    let f = failures(&run(&c, &r), "placement-runners");
    assert!(
        f.iter()
            .any(|m| m.contains("NodePool runners's limits hold") && m.contains("not max_runners 40")),
        "{f:#?}"
    );
    // An engine too big for the smallest runner nodes.
    let (c, r) = declare(&config(
        "prod",
        &[("memory_request = \"8Gi\"", "memory_request = \"20Gi\"")],
    ));
    let f = failures(&run(&c, &r), "placement-engine");
    assert!(
        f.iter().any(|m| m.contains("does not land on every node of NodePool runners") && m.contains("Insufficient memory")),
        "{f:#?}"
    );
    // ARC's controller allowed onto the runner pool: it tolerates the runner taint and
    // selects no node. (Karpenter's own chart keeps it off any NodePool's nodes with a
    // required `karpenter.sh/nodepool DoesNotExist` affinity, so the same edit there is
    // harmless.)
    let (c, mut r) = declare(&config("dev", &[]));
    let values = &mut resource(&mut r, "arc/controller")["values"];
    values["tolerations"]
        .as_array_mut()
        .unwrap()
        .push(json!({"key": "github-actions-runner", "operator": "Exists"}));
    values.as_object_mut().unwrap().remove("nodeSelector");
    let f = failures(&run(&c, &r), "placement-controllers");
    assert!(
        f.iter().any(|m| m.starts_with("Deployment arc-systems/arc-gha-rs-controller (arc/controller, modelled from values) can land on the Karpenter NodePool runners")),
        "{f:#?}"
    );
    let (c, mut r) = declare(&config("dev", &[]));
    let values = &mut resource(&mut r, "karpenter/chart")["values"];
    values["tolerations"]
        .as_array_mut()
        .unwrap()
        .push(json!({"key": "github-actions-runner", "operator": "Exists"}));
    values.as_object_mut().unwrap().remove("nodeSelector");
    assert!(failures(&run(&c, &r), "placement-controllers").is_empty());
    // CoreDNS tolerating nothing: no node for it, in the scheduler's words.
    let (c, mut r) = declare(&config("dev", &[]));
    resource(&mut r, "cluster/addon-coredns")["configuration_values"]["tolerations"] = json!([]);
    let checks = run(&c, &r);
    let f = failures(&checks, "placement-controllers");
    assert!(
        f.iter().any(|m| m.starts_with(
            "Deployment kube-system/coredns x2 (cluster/addon-coredns, EKS add-on model) has no node to run on"
        ) && m.contains("node(s) had untolerated taint {CriticalAddonsOnly: true}")),
        "{f:#?}"
    );
    assert!(
        failures(&checks, "network-paths")
            .iter()
            .any(|m| m.contains("CoreDNS runs on no node shape")),
        "without CoreDNS nothing resolves"
    );
}

/// Egress: private subnets without their default route to NAT reach neither the internet
/// nor the AWS APIs.
#[test]
fn nodes_without_a_way_out_fail_the_internet_and_aws_paths() {
    let (c, mut r) = declare(&config("dev", &[]));
    r.retain(|x| !x.address.as_str().starts_with("network/private-default-"));
    let f = failures(&run(&c, &r), "network-paths");
    assert!(
        f.iter().any(
            |m| m.starts_with("internet tcp/443 from NodePool runners nodes to the internet")
                && m.contains("has no 0.0.0.0/0 route")
        ),
        "{f:#?}"
    );
    assert!(
        f.iter()
            .any(|m| m.starts_with("Karpenter to AWS ec2 from node group critical")),
        "{f:#?}"
    );
    // S3 still goes through the gateway endpoint; the endpoint is not the internet.
    assert!(!f.iter().any(|m| m.starts_with("Karpenter to AWS s3")), "{f:#?}");
}
