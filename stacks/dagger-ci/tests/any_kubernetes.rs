//! The flagship stack on any Kubernetes cluster, from a kubeconfig (`[cluster] kubeconfig`),
//! in-process: only in-cluster parts are declared (no AWS kind at all), runner placement
//! comes from `[runners]`, the checks about AWS say they do not apply, the placement checks
//! run the scheduler's filters on the user's labelled nodes (and fail when a runner, the
//! engine or a controller would land in the wrong place), and every config that mixes
//! the modes is refused naming its key. The sandbox run is in `sandbox_e2e.rs`.

use serde_json::Value;
use spar::Stack;
use spar::graph::DesiredResource;
use spar::model::checks::Check;
use spar::model::config::StackConfig;

mod common;
use common::{root, shipped, with};

fn stack(toml: &str) -> Result<Stack, String> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t.toml"), toml).unwrap();
    let config = StackConfig::load(dir.path(), "t").map_err(|e| e.to_string())?;
    Ok(Stack::new("dagger-ci", "t", config))
}

/// The checks and every resource `toml` declares, or the error.
fn define(toml: &str) -> Result<(Vec<Check>, Vec<DesiredResource>), String> {
    let mut s = stack(toml)?;
    dagger_ci::define(&mut s).map_err(|e| e.to_string())?;
    Ok((s.checks().to_vec(), s.resources().to_vec()))
}

/// The checks run on the declarations of `toml`, after `edit` changed a declared resource.
fn checks_after(toml: &str, edit: impl FnOnce(&mut Vec<DesiredResource>)) -> Vec<Check> {
    let mut s = stack(toml).unwrap();
    let cfg: dagger_ci::config::Config = s.config().unwrap();
    let c = dagger_ci::declare_components(&mut s, &cfg).unwrap();
    let mut resources = s.resources().to_vec();
    edit(&mut resources);
    dagger_ci::checks::evaluate(&c.declared(&resources))
}

fn failures<'a>(checks: &'a [Check], name: &str) -> &'a [String] {
    &checks.iter().find(|c| c.name == name).unwrap().failures
}

fn inputs<'a>(resources: &'a mut [DesiredResource], address: &str) -> &'a mut Value {
    &mut resources
        .iter_mut()
        .find(|r| r.address.to_string() == address)
        .unwrap_or_else(|| panic!("{address} is declared"))
        .inputs
}

#[test]
fn a_cluster_from_a_kubeconfig_gets_only_the_in_cluster_parts() {
    for name in ["kind", "sandbox-kubeconfig"] {
        let (checks, resources) = define(&shipped(name)).unwrap();
        let aws: Vec<String> = resources
            .iter()
            .filter(|r| r.kind.starts_with("aws:"))
            .map(|r| r.address.to_string())
            .collect();
        assert!(aws.is_empty(), "{name}: AWS resources {aws:?}");
        let addresses: Vec<String> = resources.iter().map(|r| r.address.to_string()).collect();
        for wanted in [
            "cluster/kubernetes",
            "dagger/daemonset",
            "arc/controller",
            "arc/scale-set-dagger-small",
        ] {
            assert!(
                addresses.contains(&wanted.to_string()),
                "{name}: {wanted} in {addresses:?}"
            );
        }
        let provider = resources.iter().find(|r| r.kind == "kubernetes:Provider").unwrap();
        assert!(
            provider.inputs["kubeconfig"]
                .as_str()
                .is_some_and(|p| p.ends_with("config") || p.ends_with("kubeconfig")),
            "{name}: {}",
            provider.inputs
        );
        let failed: Vec<&Check> = checks.iter().filter(|c| !c.passed() && !c.apply_only).collect();
        assert!(failed.is_empty(), "{name}: {failed:#?}");
        let evidence = |n: &str| checks.iter().find(|c| c.name == n).unwrap().evidence.join("\n");
        for aws_check in [
            "network-paths",
            "subnet-egress",
            "node-role",
            "one-cluster-name",
            "disruption",
        ] {
            assert!(evidence(aws_check).starts_with("not applicable"), "{name}: {aws_check}");
        }
        assert!(evidence("placement-engine").contains("runs on every one of the [runners] nodes (ci.example.com/pool=runners, taint ci.example.com/runners=true:NoSchedule) and on no other node"), "{name}: {}", evidence("placement-engine"));
        assert!(
            evidence("placement-runners").contains("runner dagger-small lands only on the [runners] nodes"),
            "{name}"
        );
        assert!(
            evidence("placement-controllers").contains("-> ordinary nodes"),
            "{name}"
        );
        // Controllers get no critical-node placement on a cluster without critical nodes.
        let controller = inputs(&mut resources.clone(), "arc/controller").clone();
        assert!(
            controller["values"].get("nodeSelector").is_none(),
            "{name}: {controller}"
        );
    }
}

#[test]
fn a_runner_engine_or_controller_in_the_wrong_place_fails_its_placement_check() {
    let kind = shipped("kind");
    let healthy = checks_after(&kind, |_| {});
    for name in [
        "placement-runners",
        "placement-engine",
        "placement-controllers",
        "taints-match",
        "labels-match",
    ] {
        assert!(
            failures(&healthy, name).is_empty(),
            "{name}: {:?}",
            failures(&healthy, name)
        );
    }

    // A runner template without the [runners] nodeSelector can run away from the engine.
    let checks = checks_after(&kind, |rs| {
        let v = inputs(rs, "arc/scale-set-dagger-small");
        v["values"]["template"]["spec"]
            .as_object_mut()
            .unwrap()
            .remove("nodeSelector");
    });
    assert_eq!(
        failures(&checks, "placement-runners"),
        ["runner dagger-small can land on ordinary nodes, away from the engine; give it the [runners] nodeSelector"]
    );

    // A runner that does not tolerate the runner taint never lands on a runner node.
    let checks = checks_after(&kind, |rs| {
        let v = inputs(rs, "arc/scale-set-dagger-small");
        v["values"]["template"]["spec"]["tolerations"] = Value::Array(Vec::new());
    });
    let f = failures(&checks, "placement-runners");
    assert!(
        f.len() == 1
            && f[0].starts_with("runner dagger-small cannot land on the [runners] nodes")
            && f[0].contains("untolerated taint"),
        "{f:?}"
    );

    // An engine without the runner nodes' affinity also runs on ordinary nodes.
    let checks = checks_after(&kind, |rs| {
        let v = inputs(rs, "dagger/daemonset");
        v["manifest"]["spec"]["template"]["spec"]
            .as_object_mut()
            .unwrap()
            .remove("affinity");
    });
    let f = failures(&checks, "placement-engine");
    assert!(f.len() == 1 && f[0].contains("also runs on ordinary nodes"), "{f:?}");

    // A controller that tolerates the runner taint can take a runner's node.
    let checks = checks_after(&kind, |rs| {
        let v = inputs(rs, "arc/controller");
        v["values"]["tolerations"] = serde_json::json!([{"key": "ci.example.com/runners", "operator": "Exists"}]);
    });
    let f = failures(&checks, "placement-controllers");
    assert!(
        f.len() == 1 && f[0].contains("tolerates the taint of the [runners] nodes"),
        "{f:?}"
    );
}

#[test]
fn a_config_mixing_the_modes_is_refused_naming_its_key() {
    let kind = shipped("kind");
    let eks = std::fs::read_to_string(root().join("config/sandbox.toml")).unwrap();
    for (text, key, says) in [
        (
            with(&kind, &[("[runners]", "[network]\nnat = \"per_az\"\n\n[runners]")]),
            "network",
            "a cluster from a kubeconfig",
        ),
        (
            with(
                &kind,
                &[("[runners]", "[karpenter.node_pool]\nlimit_cpu = 10\n\n[runners]")],
            ),
            "karpenter",
            "remove the section",
        ),
        (
            with(
                &kind,
                &[(
                    "context = \"kind-ci\" }",
                    "context = \"kind-ci\" }\ntags = { a = \"b\" }",
                )],
            ),
            "cluster.tags",
            "remove it",
        ),
        (
            with(
                &kind,
                &[(
                    "[runners]\nnode_selector = { \"ci.example.com/pool\" = \"runners\" }\ntaint = { key = \"ci.example.com/runners\", value = \"true\", effect = \"NoSchedule\" }\n",
                    "",
                )],
            ),
            "runners",
            "needs [runners] node_selector",
        ),
        (
            with(
                &kind,
                &[(
                    "node_selector = { \"ci.example.com/pool\" = \"runners\" }",
                    "node_selector = {}",
                )],
            ),
            "runners.node_selector",
            "at least one label",
        ),
        (
            with(&kind, &[("effect = \"NoSchedule\" }", "effect = \"NO_SCHEDULE\" }")]),
            "runners.taint.effect",
            "not NoSchedule",
        ),
        (
            with(
                &kind,
                &[(
                    "[arc.github_app]",
                    "runner_node_selector = { pool = \"x\" }\n\n[arc.github_app]",
                )],
            ),
            "arc.runner_tolerations",
            "set once, in [runners]",
        ),
        (
            with(
                &kind,
                &[("version = \"0.21.8\"", "version = \"0.21.8\"\nnode_label = \"pool\"")],
            ),
            "engine.tolerations",
            "comes from [runners]",
        ),
        (
            with(
                &eks,
                &[(
                    "[charts]",
                    "[runners]\nnode_selector = { pool = \"runners\" }\n\n[charts]",
                )],
            ),
            "runners",
            "Karpenter's NodePool",
        ),
    ] {
        let err = define(&text).err().unwrap_or_else(|| panic!("{key} is refused"));
        assert!(
            err.contains(&format!("`{key}`")) && err.contains(says) && !err.contains('\n'),
            "{key}: {err}"
        );
    }
}
