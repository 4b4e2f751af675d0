//! The flagship stack on an EKS cluster that exists already (`[cluster] existing`),
//! in-process: the cluster, its node group and its Pod Identity add-on are lookups (never
//! created, changed or deleted), nothing of a VPC is declared, Karpenter and what goes on
//! top are; the `existing-cluster` and `existing-network-paths` lookup checks judge what
//! the lookups read (here given as the AWS kinds' reads would answer) and fail for each way
//! the cluster or its VPC cannot hold the stack;
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

fn at(a: &str) -> Address {
    a.parse().unwrap()
}

fn read(id: &str, inputs: Value, outputs: Value) -> ReadResult {
    ReadResult {
        id: id.into(),
        inputs,
        outputs,
    }
}

/// What the lookups read of a healthy existing cluster, with `edit` applied.
fn reads(edit: impl FnOnce(&mut Value, &mut Value)) -> BTreeMap<Address, ReadResult> {
    let mut cluster = json!({
        "name": "ci", "authentication_mode": "API_AND_CONFIG_MAP",
        "subnet_ids": ["subnet-a", "subnet-b"], "security_group_ids": [],
    });
    let mut group = json!({
        "cluster_name": "ci", "name": "system", "instance_types": ["m6i.xlarge"],
        "desired_size": 2, "min_size": 2, "max_size": 3, "labels": {}, "taints": [],
        "subnet_ids": ["subnet-a", "subnet-b"], "launch_template": null,
    });
    edit(&mut cluster, &mut group);
    let mut reads = network_reads(|_| {});
    reads.extend(cluster_reads(cluster, group));
    reads
}

fn cluster_reads(cluster: Value, group: Value) -> BTreeMap<Address, ReadResult> {
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
                outputs: json!({"name": "system", "launch_template_ids": []}),
            },
        ),
    ])
}

/// The existing VPC as its lookups read it (the AWS kinds' `read` shapes), eksctl's
/// layout: private subnets `subnet-a`/`subnet-b` (tagged for Karpenter) routing to a NAT
/// gateway in the public `subnet-p`, which routes to the attached internet gateway; the
/// cluster security group (tagged for Karpenter too) with EKS's rules; every object of
/// kind `kind` passed through `edit` as a list of (kind, read).
fn network_reads(edit: impl FnOnce(&mut Vec<(&'static str, ReadResult)>)) -> BTreeMap<Address, ReadResult> {
    let discovery = json!({"karpenter.sh/discovery": "ci"});
    let subnet = |id: &str, cidr: &str, public: bool, tags: &Value| {
        let inputs = json!({"vpc_id": "vpc-1", "cidr_block": cidr, "map_public_ip_on_launch": public, "tags": tags});
        ("aws:ec2:Subnet", read(id, inputs, json!({"id": id})))
    };
    let route = |table: &str, dest: &str, target: (&str, &str)| {
        let mut inputs = json!({"route_table_id": table, "destination_cidr_block": dest});
        inputs[target.0] = json!(target.1);
        (
            "aws:ec2:Route",
            read(&format!("{table}_{dest}"), inputs, json!({"state": "active"})),
        )
    };
    let rule = |id: &str, direction: &str, peer: (&str, &str)| {
        let mut inputs =
            json!({"security_group_id": "sg-1", "type": direction, "protocol": "-1", "from_port": -1, "to_port": -1});
        inputs[peer.0] = json!(peer.1);
        ("aws:ec2:SecurityGroupRule", read(id, inputs, json!({"id": id})))
    };
    let table = |id: &str| {
        (
            "aws:ec2:RouteTable",
            read(id, json!({"vpc_id": "vpc-1"}), json!({"id": id})),
        )
    };
    let association = |id: &str, table: &str, subnet: &str| {
        let inputs = json!({"route_table_id": table, "subnet_id": subnet});
        ("aws:ec2:RouteTableAssociation", read(id, inputs, json!({"id": id})))
    };
    let mut objects = vec![
        subnet("subnet-a", "10.0.0.0/20", false, &discovery),
        subnet("subnet-b", "10.0.16.0/20", false, &discovery),
        subnet("subnet-p", "10.0.64.0/20", true, &json!({})),
        table("rtb-main"),
        table("rtb-private"),
        table("rtb-public"),
        route("rtb-main", "10.0.0.0/16", ("gateway_id", "local")),
        route("rtb-private", "10.0.0.0/16", ("gateway_id", "local")),
        route("rtb-private", "0.0.0.0/0", ("nat_gateway_id", "nat-1")),
        route("rtb-public", "10.0.0.0/16", ("gateway_id", "local")),
        route("rtb-public", "0.0.0.0/0", ("gateway_id", "igw-1")),
        association("rtbassoc-a", "rtb-private", "subnet-a"),
        association("rtbassoc-b", "rtb-private", "subnet-b"),
        association("rtbassoc-p", "rtb-public", "subnet-p"),
        (
            "aws:ec2:InternetGateway",
            read("igw-1", json!({"vpc_id": "vpc-1"}), json!({})),
        ),
        (
            "aws:ec2:NatGateway",
            read(
                "nat-1",
                json!({"subnet_id": "subnet-p", "connectivity_type": "public"}),
                json!({}),
            ),
        ),
        (
            "aws:ec2:SecurityGroup",
            read(
                "sg-1",
                json!({"vpc_id": "vpc-1", "name": "eks-cluster-sg-ci", "tags": discovery}),
                json!({}),
            ),
        ),
        rule("sgr-self", "ingress", ("source_security_group_id", "sg-1")),
        rule("sgr-out", "egress", ("cidr_ipv4", "0.0.0.0/0")),
    ];
    edit(&mut objects);
    let sets = [
        ("subnets", "aws:ec2:Subnet"),
        ("route-tables", "aws:ec2:RouteTable"),
        ("routes", "aws:ec2:Route"),
        ("route-table-associations", "aws:ec2:RouteTableAssociation"),
        ("internet-gateways", "aws:ec2:InternetGateway"),
        ("nat-gateways", "aws:ec2:NatGateway"),
        ("vpc-endpoints", "aws:ec2:VpcEndpoint"),
        ("security-groups", "aws:ec2:SecurityGroup"),
        ("security-group-rules", "aws:ec2:SecurityGroupRule"),
    ];
    let mut reads = BTreeMap::from([
        (
            at("cluster/network/vpc"),
            read(
                "vpc-1",
                json!({"cidr_block": "10.0.0.0/16"}),
                json!({"main_route_table_id": "rtb-main"}),
            ),
        ),
        (
            at("cluster/critical-nodes-launch-template"),
            ReadResult::set(Vec::new()),
        ),
    ]);
    for (name, kind) in sets {
        let found: Vec<ReadResult> = objects
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, r)| r.clone())
            .collect();
        reads.insert(at(&format!("cluster/network/{name}")), ReadResult::set(found));
    }
    reads
}

/// The verdict of the lookup check `name` on `reads`.
fn lookup_check(p: &spar::model::stack::Program, reads: &BTreeMap<Address, ReadResult>, name: &str) -> Check {
    let names: Vec<&str> = p.lookup_checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["existing-cluster", "existing-network-paths"]);
    let verdicts = match run_lookup_checks(&p.lookup_checks, &LookedUp::new(reads), &[]) {
        Ok(v) => v,
        Err(spar::model::checks::CheckError::Failed(v)) => v,
        Err(e) => panic!("{e}"),
    };
    match verdicts.into_iter().find(|c| c.name == name) {
        Some(v) => v,
        // A refusal carries the failed checks only: this one passed.
        None => {
            let c = p.lookup_checks.iter().find(|c| c.name == name).unwrap();
            (c.run)(&LookedUp::new(reads))
        }
    }
}

fn existing_cluster(p: &spar::model::stack::Program, reads: &BTreeMap<Address, ReadResult>) -> Check {
    lookup_check(p, reads, "existing-cluster")
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
    let expected: Vec<(String, String)> = [
        ("cluster/eks", "aws:eks:Cluster"),
        ("cluster/critical-nodes", "aws:eks:Nodegroup"),
        ("cluster/critical-nodes-launch-template", "aws:ec2:LaunchTemplate"),
        ("cluster/network/vpc", "aws:ec2:Vpc"),
        ("cluster/network/subnets", "aws:ec2:Subnet"),
        ("cluster/network/route-tables", "aws:ec2:RouteTable"),
        ("cluster/network/routes", "aws:ec2:Route"),
        (
            "cluster/network/route-table-associations",
            "aws:ec2:RouteTableAssociation",
        ),
        ("cluster/network/internet-gateways", "aws:ec2:InternetGateway"),
        ("cluster/network/nat-gateways", "aws:ec2:NatGateway"),
        ("cluster/network/vpc-endpoints", "aws:ec2:VpcEndpoint"),
        ("cluster/network/security-groups", "aws:ec2:SecurityGroup"),
        ("cluster/network/security-group-rules", "aws:ec2:SecurityGroupRule"),
        ("cluster/addon-eks-pod-identity-agent", "aws:eks:Addon"),
    ]
    .iter()
    .map(|(a, k)| (a.to_string(), k.to_string()))
    .collect();
    assert_eq!(lookups, expected);
    // Only the cluster, its node group, the VPC and the add-on must exist; the rest are sets.
    let singles: Vec<String> = p
        .graph
        .resources
        .iter()
        .filter(|r| r.lookup && !r.lookup_all)
        .map(|r| r.address.to_string())
        .collect();
    assert_eq!(
        singles,
        [
            "cluster/eks",
            "cluster/critical-nodes",
            "cluster/network/vpc",
            "cluster/addon-eks-pod-identity-agent"
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
    assert!(evidence("network-paths").contains("`existing-network-paths` judges it as read when planning"));
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

/// `existing-network-paths` on the existing VPC as read: a healthy eksctl-shaped VPC
/// passes, with the ways it found; each thing changed outside spar that would stop the CI
/// fails it, naming the path and what blocks it.
#[test]
fn the_existing_network_check_judges_the_vpc_as_read() {
    let p = program(&shipped("existing")).unwrap();
    let group = |edit: &dyn Fn(&mut Value)| {
        let mut g = json!({
            "cluster_name": "ci", "name": "system", "instance_types": ["m6i.xlarge"],
            "desired_size": 2, "min_size": 2, "max_size": 3, "labels": {}, "taints": [],
            "subnet_ids": ["subnet-a", "subnet-b"], "launch_template": null,
        });
        edit(&mut g);
        g
    };
    let cluster = json!({
        "name": "ci", "authentication_mode": "API_AND_CONFIG_MAP",
        "subnet_ids": ["subnet-a", "subnet-b"], "security_group_ids": [],
    });
    let check = |network: BTreeMap<Address, ReadResult>, group: Value| {
        let mut reads = network;
        reads.extend(cluster_reads(cluster.clone(), group));
        lookup_check(&p, &reads, "existing-network-paths")
    };

    let healthy = check(network_reads(|_| {}), group(&|_| {}));
    assert!(healthy.passed(), "{:#?}", healthy.failures);
    let ev = healthy.evidence.join("\n");
    for says in [
        "DNS udp/53: NodePool runners nodes -> CoreDNS on node group system: egress sgr-out, ingress sgr-self",
        "internet tcp/443: NodePool runners nodes -> the internet (GitHub, registries, Dagger Cloud): via NAT nat-1",
        "API server tcp/443: node group system -> control plane of ci",
        "Karpenter to AWS sts: node group system -> sts.us-east-1.amazonaws.com: via NAT nat-1",
    ] {
        assert!(ev.contains(says), "{says}\n{ev}");
    }

    type Edit = Box<dyn FnOnce(&mut Vec<(&'static str, ReadResult)>)>;
    let cases: Vec<(Edit, &str)> = vec![
        // The NAT route deleted: runner nodes and Karpenter lose the internet and the APIs.
        (
            Box::new(|o| o.retain(|(_, r)| r.id != "rtb-private_0.0.0.0/0")),
            "internet tcp/443 from NodePool runners nodes to the internet (GitHub, registries, Dagger Cloud) is blocked",
        ),
        // The cluster group's self rule revoked: no DNS between nodes (EKS's default rules
        // must not stand in for the ones read).
        (
            Box::new(|o| o.retain(|(_, r)| r.id != "sgr-self")),
            "DNS udp/53 from NodePool runners nodes to CoreDNS on node group system is blocked",
        ),
        // The discovery tag missing from every subnet: Karpenter has nowhere to launch.
        (
            Box::new(|o| {
                for (k, r) in o.iter_mut() {
                    if *k == "aws:ec2:Subnet" {
                        r.inputs["tags"] = json!({});
                    }
                }
            }),
            "spec.subnetSelectorTerms",
        ),
    ];
    for (edit, says) in cases {
        let c = check(network_reads(edit), group(&|_| {}));
        assert!(c.failures.iter().any(|f| f.contains(says)), "{says}: {:#?}", c.failures);
    }

    // Untagged groups: Karpenter's nodes still get the cluster security group, which the
    // EC2NodeClass names by the id the cluster's lookup read.
    let untagged = check(
        network_reads(|o| {
            for (k, r) in o.iter_mut() {
                if *k == "aws:ec2:SecurityGroup" {
                    r.inputs["tags"] = json!({});
                }
            }
        }),
        group(&|_| {}),
    );
    assert!(untagged.passed(), "{:#?}", untagged.failures);

    // A node group with a launch template: its nodes get the template's groups, not the
    // cluster's; a template group with no rules to the rest leaves the nodes cut off.
    let mut network = network_reads(|o| {
        o.push((
            "aws:ec2:SecurityGroup",
            read("sg-lt", json!({"vpc_id": "vpc-1", "name": "nodes"}), json!({})),
        ));
    });
    network.insert(
        at("cluster/critical-nodes-launch-template"),
        ReadResult::set(vec![read(
            "lt-1",
            json!({"security_group_ids": ["sg-lt"]}),
            json!({"id": "lt-1", "default_version": 1, "latest_version": 2}),
        )]),
    );
    let c = check(
        network.clone(),
        group(&|g| g["launch_template"] = json!({"id": "lt-1", "version": "1"})),
    );
    assert!(
        c.failures
            .iter()
            .any(|f| f.contains("API server tcp/443 from node group system to control plane of ci is blocked")),
        "{:#?}",
        c.failures
    );
    // The group pins a version other than the default spar reads: not judged as if it
    // were the same, but named.
    for pinned in ["2", "$Latest"] {
        let c = check(
            network.clone(),
            group(&|g| g["launch_template"] = json!({"id": "lt-1", "version": pinned})),
        );
        assert!(
            c.failures.iter().any(|f| f.contains(&format!(
                "the node group `system` runs version {pinned} of launch template lt-1, but its default version (1) is what spar reads"
            ))),
            "{:#?}",
            c.failures
        );
    }
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
