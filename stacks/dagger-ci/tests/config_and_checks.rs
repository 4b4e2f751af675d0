//! The flagship stack's configuration errors and invariant checks, in-process: every shipped
//! config passes every check; each broken invariant fails exactly its check, with a message
//! naming what disagrees; bad values name the file and key; legacy mode and IRSA declare
//! what they need.

use spar::Stack;
use spar::model::checks::Check;
use spar::model::config::StackConfig;

fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn sandbox_with(edits: &[(&str, &str)]) -> String {
    let mut text = std::fs::read_to_string(root().join("config/sandbox.toml")).unwrap();
    for (from, to) in edits {
        assert!(text.contains(from), "sandbox.toml has {from:?}");
        text = text.replacen(from, to, 1);
    }
    text
}

/// Defines the stack from `toml`: the checks, or the error.
fn define(toml: &str) -> Result<(Vec<Check>, Vec<String>), String> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t.toml"), toml).unwrap();
    let config = StackConfig::load(dir.path(), "t").map_err(|e| e.to_string())?;
    let mut stack = Stack::new("dagger-ci", "t", config);
    dagger_ci::define(&mut stack).map_err(|e| e.to_string())?;
    let checks = stack.checks().to_vec();
    let program = stack.into_program().map_err(|e| e.to_string())?;
    let addresses = program.graph.resources.iter().map(|r| r.address.to_string()).collect();
    Ok((checks, addresses))
}

fn failed(toml: &str) -> Vec<(String, Vec<String>)> {
    define(toml)
        .unwrap()
        .0
        .into_iter()
        .filter(|c| !c.passed())
        .map(|c| (c.name, c.failures))
        .collect()
}

#[test]
fn every_shipped_config_passes_every_check() {
    for stack in ["sandbox", "dev", "prod"] {
        let text = std::fs::read_to_string(root().join(format!("config/{stack}.toml"))).unwrap();
        let (checks, addresses) = define(&text).unwrap();
        assert_eq!(checks.iter().filter(|c| !c.apply_only).count(), 16, "{stack}");
        let failed: Vec<_> = checks.iter().filter(|c| !c.passed() && !c.apply_only).collect();
        assert!(failed.is_empty(), "{stack}: {failed:#?}");
        assert!(addresses.len() > 60, "{stack}: {}", addresses.len());
    }
}

/// (check, config edits, what its failure says).
type Case = (&'static str, Vec<(&'static str, &'static str)>, &'static str);

#[test]
fn each_broken_invariant_fails_its_check() {
    let cases: Vec<Case> = vec![
        (
            "taints-match",
            vec![(
                "[engine]",
                "[engine]\ntolerations = [{ key = \"runner\", effect = \"NoSchedule\" }]",
            )],
            "engine DaemonSet",
        ),
        (
            "labels-match",
            vec![(
                "[arc.github_app]",
                "runner_node_selector = { pool = \"runners\" }\n\n[arc.github_app]",
            )],
            "select pool=runners",
        ),
        (
            "socket-path",
            vec![(
                "[arc.github_app]",
                "runner_host = \"unix:///var/run/dagger/engine.sock\"\n\n[arc.github_app]",
            )],
            "_EXPERIMENTAL_DAGGER_RUNNER_HOST=unix:///var/run/dagger/engine.sock",
        ),
        (
            "critical-tolerations",
            vec![(
                "[engine]",
                "[karpenter]\ntolerations = [{ key = \"dedicated\", effect = \"NoSchedule\" }]\n\n[engine]",
            )],
            "karpenter chart does not tolerate the critical nodes' taint CriticalAddonsOnly",
        ),
        ("raid0-cache", vec![("[engine]", "[engine]\ncache = \"host\"")], "RAID0"),
        (
            "raid0-nvme",
            vec![(
                "[engine]",
                "[karpenter.node_pool]\ninstance_families = [\"c6i\", \"c6id\"]\nmin_local_nvme_gb = 0\n\n[engine]",
            )],
            "c6i",
        ),
        (
            "versions",
            vec![("[arc.github_app]", "dagger_version = \"0.20.0\"\n\n[arc.github_app]")],
            "runners use Dagger 0.20.0",
        ),
        (
            "authentication-mode",
            vec![(
                "version = \"1.35\"",
                "version = \"1.35\"\nauthentication_mode = \"CONFIG_MAP\"",
            )],
            "CONFIG_MAP",
        ),
        (
            "critical-nodes",
            vec![("[network]", "[critical_nodes]\nmin = 1\ndesired = 1\n\n[network]")],
            "min 1 / desired 1",
        ),
        (
            "disruption",
            vec![(
                "[engine]",
                "[karpenter.node_pool]\ntermination_grace_period = \"2m\"\n\n[engine]",
            )],
            "shorter than the engine's terminationGracePeriodSeconds 300",
        ),
        (
            "socket-permissions",
            vec![("[arc.github_app]", "runner_uid = 1000\n\n[arc.github_app]")],
            "engine's group Some(1001)",
        ),
        (
            "arc-dependencies",
            vec![("[arc]", "[cert_manager]\nenabled = false\n\n[arc]\nmode = \"legacy\"")],
            "legacy ARC needs cert-manager",
        ),
    ];
    for (check, edits, says) in cases {
        let failed = failed(&sandbox_with(&edits));
        let names: Vec<&str> = failed.iter().map(|(n, _)| n.as_str()).collect();
        assert!(names.contains(&check), "{check}: failed {failed:#?}");
        let messages = &failed.iter().find(|(n, _)| n == check).unwrap().1;
        assert!(messages.iter().any(|m| m.contains(says)), "{check}: {messages:#?}");
    }
}

#[test]
fn a_missing_secret_stops_apply_only() {
    let text = sandbox_with(&[(
        "private_key = { random = 64 }",
        "private_key = { env = \"SPAR_TEST_UNSET_KEY\" }",
    )]);
    let (checks, _) = define(&text).unwrap();
    let c = checks
        .iter()
        .find(|c| c.name == "secret-arc-github-app-private-key")
        .unwrap();
    assert!(c.apply_only && !c.passed(), "{c:?}");
    assert!(c.failures[0].contains("SPAR_TEST_UNSET_KEY"), "{c:?}");
    assert!(spar::model::checks::enforce(&checks, &[], false).is_ok());
    assert!(spar::model::checks::enforce(&checks, &[], true).is_err());
}

#[test]
fn bad_values_name_the_file_and_key() {
    for (edits, want) in [
        (
            vec![("cidr = \"10.0.0.0/16\"", "cidr = \"10.0.0.0/33\"")],
            "key `network.cidr`",
        ),
        (
            vec![("nat = \"single\"", "nat = \"sometimes\"")],
            "key `network.nat`: unknown variant `sometimes`",
        ),
        (
            vec![("max_runners = 10", "max_runners = \"ten\"")],
            "key `arc.runner_groups[0].max_runners`",
        ),
        (
            vec![("[engine]", "[engine]\nversoin = \"1\"")],
            "unknown field `versoin`",
        ),
        (
            vec![("min_runners = 1, max_runners = 4", "min_runners = 5, max_runners = 4")],
            "key `arc.runner_groups.dagger-large`: min_runners 5 is above max_runners 4",
        ),
        (
            vec![("https://github.com/example-org", "github.com/example-org")],
            "key `arc.github_config_url`",
        ),
    ] {
        let err = define(&sandbox_with(&edits))
            .err()
            .unwrap_or_else(|| panic!("{edits:?} is refused"));
        assert!(err.contains("t.toml") && err.contains(want), "{edits:?}: {err}");
    }
    let err = define("[cluster]\nname = \"x\"\n").err().unwrap();
    assert!(err.contains("key `arc`") && err.contains("missing"), "{err}");
}

#[test]
fn legacy_mode_and_irsa_declare_what_they_need() {
    let text = sandbox_with(&[
        ("[arc]", "[arc]\nmode = \"legacy\""),
        (
            "[engine]",
            "[karpenter]\nidentity = \"irsa\"\n\n[engine]\nlayout = \"legacy\"",
        ),
    ]);
    let (checks, addresses) = define(&text).unwrap();
    let failed: Vec<_> = checks.iter().filter(|c| !c.passed()).collect();
    assert!(failed.is_empty(), "{failed:#?}");
    for want in [
        "cert-manager/chart",
        "arc/runners-dagger-small",
        "arc/autoscaler-dagger-large",
        "karpenter/oidc-provider",
    ] {
        assert!(addresses.iter().any(|a| a == want), "{want} in {addresses:?}");
    }
    assert!(!addresses.iter().any(|a| a == "karpenter/pod-identity"));
}
