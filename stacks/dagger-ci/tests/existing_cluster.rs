//! The flagship stack on an EKS cluster that exists already (`[cluster] existing`),
//! in-process: the cluster, its node group and its Pod Identity add-on are lookups (never
//! created, changed or deleted), nothing of a VPC is declared, Karpenter and what goes on
//! top are; the `existing-cluster` lookup check judges what the lookups read (here given
//! as an emulator would answer) and fails for each way the cluster cannot hold the stack;
//! configs that would change the existing cluster are refused naming their key. The
//! sandbox run is in `sandbox_e2e.rs`.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use spar::Stack;
use spar::address::Address;
use spar::model::checks::{Check, LookedUp, run_lookup_checks};
use spar::model::config::StackConfig;
use spar::provider::ReadResult;

mod common;
use common::{shipped, with};

fn program(toml: &str) -> Result<spar::model::stack::Program, String> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t.toml"), toml).unwrap();
    let config = StackConfig::load(dir.path(), "t").map_err(|e| e.to_string())?;
    let mut s = Stack::new("dagger-ci", "t", config);
    dagger_ci::define(&mut s).map_err(|e| e.to_string())?;
    s.into_program().map_err(|e| e.to_string())
}

/// What the lookups read of a healthy existing cluster, with `edit` applied.
fn reads(edit: impl FnOnce(&mut Value, &mut Value)) -> BTreeMap<Address, ReadResult> {
    let mut cluster = json!({"name": "ci", "authentication_mode": "API_AND_CONFIG_MAP"});
    let mut group = json!({
        "cluster_name": "ci", "name": "system", "instance_types": ["m6i.xlarge"],
        "desired_size": 2, "min_size": 2, "max_size": 3, "labels": {}, "taints": [],
    });
    edit(&mut cluster, &mut group);
    let at = |a: &str| a.parse::<Address>().unwrap();
    BTreeMap::from([
        (
            at("cluster/eks"),
            ReadResult {
                id: "ci".into(),
                inputs: cluster,
                outputs: json!({"name": "ci", "version": "1.35", "cluster_security_group_id": "sg-1", "vpc_id": "vpc-1"}),
            },
        ),
        (
            at("cluster/critical-nodes"),
            ReadResult {
                id: "ci:system".into(),
                inputs: group,
                outputs: json!({"name": "system"}),
            },
        ),
    ])
}

fn existing_cluster(p: &spar::model::stack::Program, reads: &BTreeMap<Address, ReadResult>) -> Check {
    let mut verdicts = match run_lookup_checks(&p.lookup_checks, &LookedUp::new(reads), &[]) {
        Ok(v) => v,
        Err(spar::model::checks::CheckError::Failed(v)) => v,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(verdicts.len(), 1);
    verdicts.remove(0)
}

#[test]
fn an_existing_cluster_is_looked_up_and_only_what_goes_on_top_is_declared() {
    let p = program(&shipped("existing")).unwrap();
    let lookups: Vec<(String, String)> = p
        .graph
        .resources
        .iter()
        .filter(|r| r.lookup)
        .map(|r| (r.address.to_string(), r.kind.clone()))
        .collect();
    assert_eq!(
        lookups,
        [
            ("cluster/eks".to_string(), "aws:eks:Cluster".to_string()),
            ("cluster/critical-nodes".into(), "aws:eks:Nodegroup".into()),
            ("cluster/addon-eks-pod-identity-agent".into(), "aws:eks:Addon".into()),
        ]
    );
    let managed_aws: Vec<String> = p
        .graph
        .resources
        .iter()
        .filter(|r| !r.lookup && r.kind.starts_with("aws:"))
        .map(|r| r.address.to_string())
        .collect();
    assert!(
        managed_aws.iter().all(|a| a.starts_with("karpenter/")),
        "only Karpenter's AWS objects are the stack's: {managed_aws:?}"
    );
    assert!(
        managed_aws.iter().any(|a| a == "karpenter/node-role"),
        "{managed_aws:?}"
    );
    // Karpenter is set up for the existing cluster, from what its lookup reads.
    let chart = p
        .graph
        .resources
        .iter()
        .find(|r| r.address.to_string() == "karpenter/chart")
        .unwrap();
    assert_eq!(chart.inputs["values"]["settings"]["clusterName"], "ci");
    assert_eq!(
        chart.inputs["values"]["nodeSelector"],
        json!({"eks.amazonaws.com/nodegroup": "system"}),
        "the controllers run on the named node group"
    );
    let failed: Vec<&Check> = p.checks.iter().filter(|c| !c.passed() && !c.apply_only).collect();
    assert!(failed.is_empty(), "{failed:#?}");
    let evidence = |n: &str| p.checks.iter().find(|c| c.name == n).unwrap().evidence.join("\n");
    assert!(evidence("network-paths").contains("existing cluster's VPC is not the stack's"));
    assert!(evidence("placement-controllers").contains("judged when planning by `existing-cluster`"));

    let healthy = existing_cluster(&p, &reads(|_, _| {}));
    assert!(healthy.passed(), "{healthy:#?}");
    let ev = healthy.evidence.join("\n");
    assert!(ev.contains("EKS 1.35: Karpenter 1.14.1 >= 1.9.0"), "{ev}");
    assert!(
        ev.contains("karpenter (karpenter/chart) -> node group system [m6i.xlarge]"),
        "{ev}"
    );
}

#[test]
fn the_existing_cluster_check_fails_for_each_way_the_cluster_cannot_hold_the_stack() {
    let p = program(&shipped("existing")).unwrap();
    type Edit = Box<dyn FnOnce(&mut Value, &mut Value)>;
    let cases: Vec<(Edit, &str)> = vec![
        (
            Box::new(|_, g| g["taints"] = json!([{"key": "dedicated", "value": "gpu", "effect": "NO_SCHEDULE"}])),
            "cannot run on the existing node group",
        ),
        (
            Box::new(|_, g| g["desired_size"] = json!(1)),
            "the node group `system` has 1 node(s): the controllers need 2",
        ),
        (
            Box::new(|c, _| c["authentication_mode"] = json!("CONFIG_MAP")),
            "authentication mode is CONFIG_MAP, which takes no access entries",
        ),
        // A type spar's table lacks cannot be judged: a failure, never a silent pass.
        (
            Box::new(|_, g| g["instance_types"] = json!(["x9z.large"])),
            "the node group `system`: unknown instance type `x9z.large`",
        ),
    ];
    for (edit, says) in cases {
        let c = existing_cluster(&p, &reads(edit));
        assert!(
            c.failures.iter().any(|f| f.contains(says)),
            "{says}: {:#?} {:#?}",
            c.failures,
            c.evidence
        );
    }
    // A version Karpenter's table lacks, or one the configured Karpenter does not support.
    let old_karpenter = program(&with(
        &shipped("existing"),
        &[("[arc]", "[karpenter]\nversion = \"1.5.0\"\n\n[arc]")],
    ))
    .unwrap();
    let c = existing_cluster(&old_karpenter, &reads(|_, _| {}));
    assert!(
        c.failures
            .iter()
            .any(|f| f.contains("EKS 1.35, which needs Karpenter >= 1.9.0, but karpenter.version is 1.5.0")),
        "{:#?}",
        c.failures
    );
}

#[test]
fn a_config_that_would_change_the_existing_cluster_is_refused_naming_its_key() {
    let existing = shipped("existing");
    for (text, key, says) in [
        (
            with(
                &existing,
                &[("[critical_nodes]", "[network]\nnat = \"per_az\"\n\n[critical_nodes]")],
            ),
            "network",
            "keeps its own",
        ),
        (
            with(
                &existing,
                &[("existing = \"ci\"", "existing = \"ci\"\nname = \"other\"")],
            ),
            "cluster.name",
            "is not the existing cluster `ci`",
        ),
        (
            with(&existing, &[("node_group = \"system\"", "")]),
            "critical_nodes.node_group",
            "name the existing cluster's managed node group",
        ),
        (
            with(
                &existing,
                &[(
                    "region = \"us-east-1\"",
                    "region = \"us-east-1\"\npublic_access_cidrs = [\"10.0.0.0/8\"]",
                )],
            ),
            "cluster.public_access_cidrs",
            "keeps as it is",
        ),
        (
            with(
                &shipped("dev"),
                &[("[network]", "[critical_nodes]\nnode_group = \"system\"\n\n[network]")],
            ),
            "critical_nodes.node_group",
            "this stack creates its own",
        ),
    ] {
        let err = program(&text).err().unwrap_or_else(|| panic!("{key} is refused"));
        assert!(
            err.contains(&format!("`{key}`")) && err.contains(says) && !err.contains('\n'),
            "{key}: {err}"
        );
    }
}
