//! The shapes the flagship stack declares for each shipped config (`sandbox`, `dev`,
//! `prod`), read from the graph `define` builds, against the values the reference design
//! (`dagger-on-eks.md`) requires: the Karpenter NodePool and EC2NodeClass, the network
//! (subnets and their tags, NAT per mode, the S3 endpoint), the cluster's add-ons and
//! critical node group, ARC's scale sets and GitHub App secret, and the engine's
//! prod-only settings.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use spar::Stack;
use spar::model::config::StackConfig;

fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn shipped(stack: &str) -> String {
    std::fs::read_to_string(root().join(format!("config/{stack}.toml"))).unwrap()
}

fn edited(stack: &str, edits: &[(&str, &str)]) -> String {
    let mut text = shipped(stack);
    for (from, to) in edits {
        assert!(text.contains(from), "{stack}.toml has {from:?}");
        text = text.replacen(from, to, 1);
    }
    text
}

/// One declared resource: its kind, inputs and dependencies.
struct Declared {
    kind: String,
    inputs: Value,
    deps: Vec<String>,
}

/// Every resource the stack declares from `toml`, by address.
fn graph(toml: &str) -> BTreeMap<String, Declared> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t.toml"), toml).unwrap();
    let config = StackConfig::load(dir.path(), "t").unwrap();
    let mut stack = Stack::new("dagger-ci", "t", config);
    dagger_ci::define(&mut stack).unwrap();
    let program = stack.into_program().unwrap();
    program
        .graph
        .resources
        .into_iter()
        .map(|r| {
            let deps = r.dependencies.iter().map(|a| a.as_str().to_string()).collect();
            (
                r.address.as_str().to_string(),
                Declared {
                    kind: r.kind,
                    inputs: r.inputs,
                    deps,
                },
            )
        })
        .collect()
}

fn get<'a>(g: &'a BTreeMap<String, Declared>, address: &str) -> &'a Declared {
    g.get(address)
        .unwrap_or_else(|| panic!("{address} is declared; addresses: {:?}", g.keys().collect::<Vec<_>>()))
}

/// The addresses `v` refers to (outputs of other resources).
fn refs(v: &Value) -> Vec<String> {
    spar::model::stack::references(v)
        .iter()
        .map(|a| a.as_str().to_string())
        .collect()
}

/// The addresses of every resource of `kind`.
fn of_kind(g: &BTreeMap<String, Declared>, kind: &str) -> Vec<String> {
    g.iter()
        .filter(|(_, r)| r.kind == kind)
        .map(|(a, _)| a.clone())
        .collect()
}

/// What differs between the shipped configs, as the reference design and each file say.
struct Expect {
    stack: &'static str,
    cluster: &'static str,
    /// The VPC's first two octets.
    net: &'static str,
    per_az_nat: bool,
    capacity_types: &'static [&'static str],
    limits: (u32, &'static str),
    ami: &'static str,
    critical: (i64, i64, i64),
    public_access_cidrs: &'static [&'static str],
    /// (group, min, max, cpu, memory).
    groups: [(&'static str, u32, u32, &'static str, &'static str); 2],
    /// Local stand-in charts (the sandbox) or the upstream references with versions.
    local_charts: bool,
}

const AZS: [&str; 3] = ["us-east-1a", "us-east-1b", "us-east-1c"];

fn expectations() -> [Expect; 3] {
    [
        Expect {
            stack: "sandbox",
            cluster: "dagger-ci-sandbox",
            net: "10.0",
            per_az_nat: false,
            capacity_types: &["on-demand"],
            limits: (256, "1024Gi"),
            ami: "al2023@latest",
            critical: (2, 2, 3),
            public_access_cidrs: &["203.0.113.0/24"],
            groups: [("dagger-small", 0, 10, "2", "4Gi"), ("dagger-large", 1, 4, "8", "16Gi")],
            local_charts: true,
        },
        Expect {
            stack: "dev",
            cluster: "dagger-ci-dev",
            net: "10.0",
            per_az_nat: false,
            capacity_types: &["on-demand"],
            limits: (256, "1024Gi"),
            ami: "al2023@latest",
            critical: (2, 2, 3),
            public_access_cidrs: &["198.51.100.0/24"],
            groups: [("dagger-small", 0, 10, "2", "4Gi"), ("dagger-large", 1, 4, "8", "16Gi")],
            local_charts: false,
        },
        Expect {
            stack: "prod",
            cluster: "dagger-ci-prod",
            net: "10.20",
            per_az_nat: true,
            capacity_types: &["on-demand", "spot"],
            limits: (512, "2048Gi"),
            ami: "al2023@v20260715",
            critical: (2, 3, 3),
            public_access_cidrs: &["198.51.100.0/24", "192.0.2.0/24"],
            groups: [
                ("dagger-small", 2, 40, "2", "4Gi"),
                ("dagger-large", 1, 16, "8", "16Gi"),
            ],
            local_charts: false,
        },
    ]
}

/// The `runners` NodePool: the NVMe families and the local-NVMe floor, both architectures,
/// the capacity types (spot only in prod), the runner taint and label, the limits, the
/// `WhenEmpty` disruption after 10m, 720h expiry and a 2h termination grace period, its
/// node class, applied after the chart and the node class.
#[test]
fn the_node_pool_has_the_reference_shape() {
    for e in expectations() {
        let g = graph(&shipped(e.stack));
        let np = get(&g, "karpenter/node-pool");
        assert_eq!(np.kind, "kubernetes:Object");
        let m = &np.inputs["manifest"];
        let s = e.stack;
        assert_eq!(m["apiVersion"], "karpenter.sh/v1", "{s}");
        assert_eq!(m["kind"], "NodePool", "{s}");
        assert_eq!(m["metadata"], json!({"name": "runners"}), "{s}");
        let t = &m["spec"]["template"];
        assert_eq!(t["metadata"]["labels"], json!({"github-actions-runner": "true"}), "{s}");
        assert_eq!(
            t["spec"]["taints"],
            json!([{"key": "github-actions-runner", "value": "true", "effect": "NoSchedule"}]),
            "{s}"
        );
        assert_eq!(
            t["spec"]["requirements"],
            json!([
                {"key": "karpenter.k8s.aws/instance-family", "operator": "In",
                 "values": ["c6id", "m6id", "r6id", "c7gd", "m7gd"]},
                {"key": "karpenter.k8s.aws/instance-local-nvme", "operator": "Gte", "values": ["400"]},
                {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64", "arm64"]},
                {"key": "karpenter.sh/capacity-type", "operator": "In", "values": e.capacity_types},
            ]),
            "{s}"
        );
        assert_eq!(
            t["spec"]["nodeClassRef"],
            json!({"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "runners"}),
            "{s}"
        );
        assert_eq!(t["spec"]["expireAfter"], "720h", "{s}");
        assert_eq!(t["spec"]["terminationGracePeriod"], "2h", "{s}");
        assert_eq!(
            m["spec"]["limits"],
            json!({"cpu": e.limits.0, "memory": e.limits.1}),
            "{s}"
        );
        assert_eq!(
            m["spec"]["disruption"],
            json!({"consolidationPolicy": "WhenEmpty", "consolidateAfter": "10m"}),
            "{s}"
        );
        for d in ["karpenter/chart", "karpenter/node-class"] {
            assert!(
                np.deps.iter().any(|x| x == d),
                "{s}: node-pool after {d}: {:?}",
                np.deps
            );
        }
    }
    // The families, the NVMe floor, spot and the disruption settings come from the config.
    let g = graph(&edited(
        "sandbox",
        &[(
            "[engine]",
            "[karpenter.node_pool]\ninstance_families = [\"i4i\", \"c6id\"]\nmin_local_nvme_gb = 900\n\
             capacity_types = [\"spot\"]\nconsolidate_after = \"30m\"\n\n[engine]",
        )],
    ));
    let spec = &get(&g, "karpenter/node-pool").inputs["manifest"]["spec"];
    let reqs = &spec["template"]["spec"]["requirements"];
    assert_eq!(reqs[0]["values"], json!(["i4i", "c6id"]), "{reqs}");
    assert_eq!(reqs[1]["values"], json!(["900"]), "{reqs}");
    assert_eq!(reqs[3]["values"], json!(["spot"]), "{reqs}");
    assert_eq!(spec["disruption"]["consolidateAfter"], "30m", "{spec}");
}

/// The `runners` EC2NodeClass: the node role (the declared `KarpenterNodeRole-<cluster>`),
/// the AL2023 alias (pinned in prod), subnet and security-group selectors by the discovery
/// tag that select exactly the three private subnets and the one node security group,
/// RAID0, IMDSv2 with hop limit 1, the encrypted 50Gi gp3 root volume.
#[test]
fn the_node_class_has_the_reference_shape() {
    for e in expectations() {
        let g = graph(&shipped(e.stack));
        let s = e.stack;
        let nc = get(&g, "karpenter/node-class");
        let m = &nc.inputs["manifest"];
        assert_eq!(m["apiVersion"], "karpenter.k8s.aws/v1", "{s}");
        assert_eq!(m["kind"], "EC2NodeClass", "{s}");
        assert_eq!(m["metadata"], json!({"name": "runners"}), "{s}");
        let spec = &m["spec"];
        let role = format!("KarpenterNodeRole-{}", e.cluster);
        assert_eq!(spec["role"], role.as_str(), "{s}");
        assert_eq!(get(&g, "karpenter/node-role").inputs["name"], role.as_str(), "{s}");
        assert_eq!(spec["amiSelectorTerms"], json!([{"alias": e.ami}]), "{s}");
        assert!(e.ami.starts_with("al2023@"), "{s}");
        let discovery = json!([{"tags": {"karpenter.sh/discovery": e.cluster}}]);
        assert_eq!(spec["subnetSelectorTerms"], discovery, "{s}");
        // The discovery-tagged group, and the cluster security group EKS creates (the
        // critical nodes' and the control plane's), by its id known after apply.
        assert_eq!(
            spec["securityGroupSelectorTerms"],
            json!([{"tags": {"karpenter.sh/discovery": e.cluster}},
                   {"id": cluster_security_group_id_ref()}]),
            "{s}"
        );
        assert_eq!(spec["instanceStorePolicy"], "RAID0", "{s}");
        assert_eq!(
            spec["metadataOptions"],
            json!({"httpEndpoint": "enabled", "httpProtocolIPv6": "disabled",
                   "httpPutResponseHopLimit": 1, "httpTokens": "required"}),
            "{s}"
        );
        assert_eq!(
            spec["blockDeviceMappings"],
            json!([{"deviceName": "/dev/xvda", "ebs": {"volumeSize": "50Gi", "volumeType": "gp3",
                     "encrypted": true, "deleteOnTermination": true}}]),
            "{s}"
        );
        // What the selectors match among the declared subnets and security groups.
        let tagged = |kind: &str| -> Vec<String> {
            of_kind(&g, kind)
                .into_iter()
                .filter(|a| g[a].inputs["tags"]["karpenter.sh/discovery"] == e.cluster)
                .collect()
        };
        let private: Vec<String> = AZS.iter().map(|az| format!("network/private-{az}")).collect();
        assert_eq!(tagged("aws:ec2:Subnet"), sorted(private), "{s}");
        assert_eq!(tagged("aws:ec2:SecurityGroup"), ["network/node-sg"], "{s}");
        for d in ["karpenter/chart", "karpenter/node-access-entry"] {
            assert!(nc.deps.iter().any(|x| x == d), "{s}: node-class after {d}");
        }
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// The network: the VPC; three private /20 subnets (internal-elb, discovery and cluster
/// tags, no public IPs) and three public /24 ones (elb tag, public IPs) over three AZs;
/// public subnets routed to the internet gateway; one NAT gateway with `single` (every
/// private subnet on its route table), one per AZ with `per_az` (each private subnet on its
/// own AZ's NAT); the S3 gateway endpoint on exactly the private route tables.
#[test]
fn the_network_has_the_reference_shape() {
    for e in expectations() {
        let g = graph(&shipped(e.stack));
        let s = e.stack;
        let net = e.net;
        assert_eq!(
            get(&g, "network/vpc").inputs["cidr_block"],
            format!("{net}.0.0/16"),
            "{s}"
        );
        assert_eq!(of_kind(&g, "aws:ec2:Subnet").len(), 6, "{s}");
        for (i, az) in AZS.iter().enumerate() {
            let private = &get(&g, &format!("network/private-{az}")).inputs;
            assert_eq!(private["availability_zone"], *az, "{s}");
            assert_eq!(private["cidr_block"], format!("{net}.{}.0/20", i * 16), "{s}");
            assert_eq!(private["map_public_ip_on_launch"], false, "{s}");
            let tags = &private["tags"];
            assert_eq!(tags["kubernetes.io/role/internal-elb"], "1", "{s}: {tags}");
            assert_eq!(tags["karpenter.sh/discovery"], e.cluster, "{s}: {tags}");
            assert_eq!(tags[format!("kubernetes.io/cluster/{}", e.cluster)], "shared", "{s}");
            assert!(tags.get("kubernetes.io/role/elb").is_none(), "{s}: {tags}");
            let public = &get(&g, &format!("network/public-{az}")).inputs;
            assert_eq!(public["availability_zone"], *az, "{s}");
            assert_eq!(public["cidr_block"], format!("{net}.{}.0/24", 48 + i), "{s}");
            assert_eq!(public["map_public_ip_on_launch"], true, "{s}");
            let tags = &public["tags"];
            assert_eq!(tags["kubernetes.io/role/elb"], "1", "{s}: {tags}");
            assert!(tags.get("kubernetes.io/role/internal-elb").is_none(), "{s}: {tags}");
            assert!(tags.get("karpenter.sh/discovery").is_none(), "{s}: {tags}");
            let assoc = &get(&g, &format!("network/public-rt-{az}")).inputs;
            assert_eq!(refs(&assoc["route_table_id"]), ["network/public-rt"], "{s}");
            assert_eq!(refs(&assoc["subnet_id"]), [format!("network/public-{az}")], "{s}");
        }
        let public_default = &get(&g, "network/public-default").inputs;
        assert_eq!(public_default["destination_cidr_block"], "0.0.0.0/0", "{s}");
        assert_eq!(refs(&public_default["gateway_id"]), ["network/igw"], "{s}");
        assert_eq!(refs(&public_default["route_table_id"]), ["network/public-rt"], "{s}");

        // NAT: which AZs get one, and which route table each private subnet uses.
        let nat_azs: Vec<&str> = if e.per_az_nat { AZS.to_vec() } else { vec![AZS[0]] };
        let nats = of_kind(&g, "aws:ec2:NatGateway");
        assert_eq!(
            nats,
            sorted(nat_azs.iter().map(|az| format!("network/nat-{az}")).collect()),
            "{s}"
        );
        let mut private_rts = Vec::new();
        for az in &nat_azs {
            let nat = &get(&g, &format!("network/nat-{az}")).inputs;
            assert_eq!(nat["connectivity_type"], "public", "{s}");
            assert_eq!(refs(&nat["subnet_id"]), [format!("network/public-{az}")], "{s}");
            assert_eq!(refs(&nat["allocation_id"]), [format!("network/nat-eip-{az}")], "{s}");
            let route = &get(&g, &format!("network/private-default-{az}")).inputs;
            assert_eq!(route["destination_cidr_block"], "0.0.0.0/0", "{s}");
            assert_eq!(refs(&route["nat_gateway_id"]), [format!("network/nat-{az}")], "{s}");
            assert!(route["gateway_id"].is_null(), "{s}: {route}");
            private_rts.push(format!("network/private-rt-{az}"));
            assert_eq!(
                refs(&route["route_table_id"]),
                [format!("network/private-rt-{az}")],
                "{s}"
            );
        }
        assert_eq!(
            of_kind(&g, "aws:ec2:RouteTable").len(),
            1 + nat_azs.len(),
            "{s}: the public table and one per NAT gateway"
        );
        for (i, az) in AZS.iter().enumerate() {
            let assoc = &get(&g, &format!("network/private-rt-{az}-assoc")).inputs;
            let table = if e.per_az_nat { &private_rts[i] } else { &private_rts[0] };
            assert_eq!(
                &refs(&assoc["route_table_id"]),
                std::slice::from_ref(table),
                "{s}: {az}"
            );
            assert_eq!(refs(&assoc["subnet_id"]), [format!("network/private-{az}")], "{s}");
        }
        let s3 = &get(&g, "network/s3-endpoint").inputs;
        assert_eq!(s3["service_name"], "com.amazonaws.us-east-1.s3", "{s}");
        assert_eq!(refs(&s3["route_table_ids"]), private_rts, "{s}");
    }
}

/// The cluster: EKS with `API` authentication, the endpoint settings and the private
/// subnets; exactly the add-ons vpc-cni, kube-proxy, eks-pod-identity-agent (before the
/// node group) and coredns (after it, tolerating CriticalAddonsOnly); the `critical` node
/// group on the private subnets with the EKS-spelt critical taint, the controller label and
/// the configured scaling.
#[test]
fn the_cluster_has_its_add_ons_and_critical_nodes() {
    for e in expectations() {
        let g = graph(&shipped(e.stack));
        let s = e.stack;
        let private: Vec<String> = AZS.iter().map(|az| format!("network/private-{az}")).collect();
        let eks = &get(&g, "cluster/eks").inputs;
        assert_eq!(eks["name"], e.cluster, "{s}");
        assert_eq!(eks["version"], "1.35", "{s}");
        assert_eq!(eks["authentication_mode"], "API", "{s}");
        assert_eq!(eks["bootstrap_cluster_creator_admin_permissions"], true, "{s}");
        assert_eq!(eks["endpoint_private_access"], true, "{s}");
        assert_eq!(eks["endpoint_public_access"], true, "{s}");
        assert_eq!(eks["public_access_cidrs"], json!(e.public_access_cidrs), "{s}");
        assert_eq!(eks["support_type"], "STANDARD", "{s}");
        assert_eq!(refs(&eks["subnet_ids"]), private, "{s}");

        let addons: BTreeMap<String, &Value> = of_kind(&g, "aws:eks:Addon")
            .iter()
            .map(|a| {
                let inputs = &g[a].inputs;
                assert_eq!(refs(&inputs["cluster_name"]), ["cluster/eks"], "{s}: {a}");
                (inputs["addon_name"].as_str().unwrap().to_string(), inputs)
            })
            .collect();
        assert_eq!(
            addons.keys().collect::<Vec<_>>(),
            ["coredns", "eks-pod-identity-agent", "kube-proxy", "vpc-cni"],
            "{s}"
        );
        assert_eq!(
            addons["coredns"]["configuration_values"],
            json!({"tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"}]}),
            "{s}"
        );
        for early in ["vpc-cni", "kube-proxy", "eks-pod-identity-agent"] {
            assert!(addons[early]["configuration_values"].is_null(), "{s}: {early}");
        }

        let ng = get(&g, "cluster/critical-nodes");
        let n = &ng.inputs;
        assert_eq!(n["name"], "critical", "{s}");
        assert_eq!(
            n["taints"],
            json!([{"key": "CriticalAddonsOnly", "value": "true", "effect": "NO_SCHEDULE"}]),
            "{s}"
        );
        assert_eq!(n["labels"], json!({"karpenter.sh/controller": "true"}), "{s}");
        assert_eq!(
            (&n["min_size"], &n["desired_size"], &n["max_size"]),
            (&json!(e.critical.0), &json!(e.critical.1), &json!(e.critical.2)),
            "{s}"
        );
        assert_eq!(n["instance_types"], json!(["m7g.large"]), "{s}");
        assert_eq!(n["ami_type"], "AL2023_ARM_64_STANDARD", "{s}");
        assert_eq!(refs(&n["subnet_ids"]), private, "{s}");
        for early in ["vpc-cni", "kube-proxy", "eks-pod-identity-agent"] {
            let a = format!("cluster/addon-{early}");
            assert!(ng.deps.contains(&a), "{s}: the node group waits for {a}");
        }
        let coredns = get(&g, "cluster/addon-coredns");
        assert!(coredns.deps.iter().any(|d| d == "cluster/critical-nodes"), "{s}");
    }
}

/// ARC in scale-set mode: the controller chart on the critical nodes; one
/// `gha-runner-scale-set` per runner group named after it, with the GitHub config URL and
/// secret, its min/max runners and a listener tolerating the critical taint; each runner
/// pod template with `karpenter.sh/do-not-disrupt`, the runner toleration and nodeSelector,
/// the `runner` container as uid/gid 1001 with its requests, the engine's socket hostPath
/// mounted at /run/dagger and `_EXPERIMENTAL_DAGGER_RUNNER_HOST` pointing into it, no dind.
#[test]
fn the_arc_scale_sets_have_the_reference_shape() {
    for e in expectations() {
        let g = graph(&shipped(e.stack));
        let s = e.stack;
        let critical = json!([{"key": "CriticalAddonsOnly", "operator": "Exists"}]);
        let controller = &get(&g, "arc/controller").inputs;
        assert_eq!(controller["release"], "arc", "{s}");
        assert_eq!(controller["namespace"], "arc-systems", "{s}");
        assert_eq!(controller["values"]["tolerations"], critical, "{s}");
        assert_eq!(
            controller["values"]["nodeSelector"],
            json!({"karpenter.sh/controller": "true"}),
            "{s}"
        );
        let (controller_chart, scale_set_chart) = if e.local_charts {
            (
                "sandbox/charts/gha-runner-scale-set-controller",
                "sandbox/charts/gha-runner-scale-set",
            )
        } else {
            (dagger_ci::arc::CONTROLLER_CHART, dagger_ci::arc::SCALE_SET_CHART)
        };
        assert_eq!(controller["chart"], controller_chart, "{s}");

        // The engine's socket hostPath, which every runner must mount.
        let ds = &get(&g, "dagger/daemonset").inputs["manifest"]["spec"]["template"]["spec"];
        let engine_socket = ds["volumes"][0]["hostPath"]["path"].clone();
        assert_eq!(ds["volumes"][0]["name"], "run", "{s}");
        assert_eq!(engine_socket, "/run/dagger-engine", "{s}");

        let scale_sets: Vec<String> = of_kind(&g, "kubernetes:Chart")
            .into_iter()
            .filter(|a| a.starts_with("arc/scale-set-"))
            .collect();
        assert_eq!(
            scale_sets,
            sorted(e.groups.iter().map(|g| format!("arc/scale-set-{}", g.0)).collect()),
            "{s}"
        );
        for (group, min, max, cpu, memory) in e.groups {
            let r = get(&g, &format!("arc/scale-set-{group}"));
            let c = &r.inputs;
            assert_eq!(c["chart"], scale_set_chart, "{s}");
            if e.local_charts {
                assert!(c["version"].is_null(), "{s}: {c}");
                assert!(controller["version"].is_null(), "{s}");
            } else {
                assert_eq!(c["version"], "0.14.2", "{s}");
                assert_eq!(controller["version"], "0.14.2", "{s}");
            }
            assert_eq!(c["release"], group, "{s}");
            assert_eq!(c["namespace"], "arc-runners", "{s}");
            let v = &c["values"];
            assert_eq!(v["githubConfigUrl"], "https://github.com/example-org", "{s}");
            assert_eq!(v["githubConfigSecret"], "github-app", "{s}");
            assert_eq!(v["runnerScaleSetName"], group, "{s}");
            assert_eq!(
                (&v["minRunners"], &v["maxRunners"]),
                (&json!(min), &json!(max)),
                "{s}: {group}"
            );
            assert_eq!(
                v["controllerServiceAccount"],
                json!({"namespace": "arc-systems", "name": "arc-gha-rs-controller"}),
                "{s}"
            );
            assert_eq!(v["listenerTemplate"]["spec"]["tolerations"], critical, "{s}");
            let t = &v["template"];
            assert_eq!(
                t["metadata"]["annotations"],
                json!({"karpenter.sh/do-not-disrupt": "true"}),
                "{s}: {group}"
            );
            let spec = &t["spec"];
            assert_eq!(
                spec["tolerations"],
                json!([{"key": "github-actions-runner", "operator": "Exists", "effect": "NoSchedule"}]),
                "{s}: {group}"
            );
            assert_eq!(spec["nodeSelector"], json!({"github-actions-runner": "true"}), "{s}");
            assert_eq!(
                spec["volumes"],
                json!([{"name": "dagger-socket", "hostPath": {"path": engine_socket, "type": "DirectoryOrCreate"}}]),
                "{s}: {group}"
            );
            assert_eq!(spec["containers"].as_array().unwrap().len(), 1, "{s}: no dind");
            assert_eq!(
                spec["containers"][0],
                json!({
                    "name": "runner",
                    "image": "ghcr.io/actions/actions-runner:latest",
                    "command": ["/home/runner/run.sh"],
                    "securityContext": {"runAsUser": 1001, "runAsGroup": 1001},
                    "env": runner_env(s),
                    "volumeMounts": [{"name": "dagger-socket", "mountPath": "/run/dagger"}],
                    "resources": {"requests": {"cpu": cpu, "memory": memory}},
                }),
                "{s}: {group}"
            );
            for d in ["arc/controller", "arc/github-app-secret", "arc/runners-namespace"] {
                assert!(r.deps.iter().any(|x| x == d), "{s}: {group} after {d}");
            }
        }
    }
}

/// The GitHub App credentials: a Secret `github-app` in the runners' namespace (what the
/// scale sets name) with exactly the three keys ARC reads, each a spar secret (or, for a
/// generated key, an output of the secret-producing password); a key read from a file
/// appears nowhere in the declared inputs once secrets are redacted, neither as text nor
/// base64, and no chart values carry any credential.
#[test]
fn the_github_app_secret_carries_no_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let key_text = "-----BEGIN TEST KEY----- spar-test-github-app-key-7f3a9c";
    let key_path = dir.path().join("app.pem");
    std::fs::write(&key_path, key_text).unwrap();
    let from_file = edited(
        "sandbox",
        &[(
            "private_key = { random = 64 }",
            &format!("private_key = {{ file = {:?} }}", key_path.to_str().unwrap()),
        )],
    );
    let b64 = base64_of(key_text);
    for (what, toml) in [("random key", shipped("sandbox")), ("file key", from_file)] {
        let g = graph(&toml);
        let secret = &get(&g, "arc/github-app-secret").inputs["manifest"];
        assert_eq!(secret["kind"], "Secret", "{what}");
        assert_eq!(
            secret["metadata"],
            json!({"name": "github-app", "namespace": "arc-runners"}),
            "{what}"
        );
        let data = secret["data"].as_object().unwrap();
        assert_eq!(
            data.keys().collect::<Vec<_>>(),
            ["github_app_id", "github_app_installation_id", "github_app_private_key"],
            "{what}"
        );
        for k in ["github_app_id", "github_app_installation_id"] {
            assert_eq!(spar::value::marker(&data[k]), Some("secret"), "{what}: {k}");
        }
        let key = &data["github_app_private_key"];
        match what {
            "random key" => {
                assert_eq!(refs(key), ["arc/github-app-key"], "{what}: {key}");
                assert_eq!(get(&g, "arc/github-app-key").kind, "random:Password", "{what}");
            }
            _ => {
                assert_eq!(spar::value::marker(key), Some("secret"), "{what}: {key}");
                // The key is there, but only inside the secret marker.
                assert!(serde_json::to_string(key).unwrap().contains(&b64), "{what}");
            }
        }
        // Redacted as plans and logs show them, no input of any resource holds the key,
        // the App id or the installation id.
        for (address, r) in &g {
            let shown = serde_json::to_string(&spar::value::redact(&r.inputs)).unwrap();
            for plain in [key_text, b64.as_str(), "123456", "7890123"] {
                assert!(!shown.contains(plain), "{what}: {address} shows {plain:?}: {shown}");
            }
        }
        for address in [
            "arc/scale-set-dagger-small",
            "arc/scale-set-dagger-large",
            "arc/controller",
        ] {
            let values = serde_json::to_string(&get(&g, address).inputs["values"]).unwrap();
            assert!(!values.contains("github_app"), "{what}: {address}: {values}");
        }
    }
}

/// Standard base64 with padding (what Kubernetes Secret data holds).
fn base64_of(text: &str) -> String {
    const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in text.as_bytes().chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The runner container's environment: the engine's socket, the Dagger version, and in
/// prod (which has a Dagger Cloud token) the token from the runners' Secret.
fn runner_env(stack: &str) -> Value {
    let mut env = vec![
        json!({"name": "_EXPERIMENTAL_DAGGER_RUNNER_HOST", "value": "unix:///run/dagger/engine.sock"}),
        json!({"name": "DAGGER_VERSION", "value": "0.21.8"}),
    ];
    if stack == "prod" {
        env.push(json!({"name": "DAGGER_CLOUD_TOKEN", "valueFrom":
            {"secretKeyRef": {"name": "dagger-cloud", "key": "token", "optional": false}}}));
    }
    Value::Array(env)
}

#[test]
fn base64_matches_known_values() {
    // The App id as the declared Secret holds it (MTIzNDU2), and RFC 4648's examples.
    assert_eq!(base64_of("123456"), "MTIzNDU2");
    assert_eq!(base64_of("f"), "Zg==");
    assert_eq!(base64_of("fo"), "Zm8=");
    assert_eq!(base64_of("foobar"), "Zm9vYmFy");
}

/// The engine's prod-only settings: the priority class and the requests; and the Dagger
/// Cloud token, which goes to the runners (a Secret `dagger-cloud` with the key `token` in
/// their namespace, a spar secret, read through `DAGGER_CLOUD_TOKEN` by the Dagger client,
/// applied before the scale sets), not to the engine (v0.21.8 ignores it); none of them in
/// sandbox or dev.
#[test]
fn the_engine_has_prod_settings_only_in_prod() {
    for e in expectations() {
        let g = graph(&shipped(e.stack));
        let s = e.stack;
        let ds = get(&g, "dagger/daemonset");
        let pod = &ds.inputs["manifest"]["spec"]["template"]["spec"];
        let c = &pod["containers"][0];
        let runner_host =
            json!({"name": "_EXPERIMENTAL_DAGGER_RUNNER_HOST", "value": "unix:///run/dagger/engine.sock"});
        if s == "prod" {
            assert_eq!(pod["priorityClassName"], "system-node-critical", "{s}");
            assert_eq!(
                c["resources"],
                json!({"requests": {"cpu": "2", "memory": "8Gi"}}),
                "{s}"
            );
            assert_eq!(c["env"], json!([runner_host]), "{s}: the engine reads no token");
            assert!(!g.contains_key("dagger/cloud-token"), "{s}");
            let token = get(&g, "arc/cloud-token");
            let m = &token.inputs["manifest"];
            assert_eq!(m["kind"], "Secret", "{s}");
            assert_eq!(
                m["metadata"],
                json!({"name": "dagger-cloud", "namespace": "arc-runners"}),
                "{s}"
            );
            let data = m["data"].as_object().unwrap();
            assert_eq!(data.keys().collect::<Vec<_>>(), ["token"], "{s}");
            assert_eq!(spar::value::marker(&data["token"]), Some("secret"), "{s}");
            for group in ["dagger-small", "dagger-large"] {
                let set = get(&g, &format!("arc/scale-set-{group}"));
                assert!(set.deps.iter().any(|d| d == "arc/cloud-token"), "{s}: {group}");
                let env = &set.inputs["values"]["template"]["spec"]["containers"][0]["env"];
                assert!(
                    env.as_array()
                        .unwrap()
                        .contains(&json!({"name": "DAGGER_CLOUD_TOKEN", "valueFrom":
                        {"secretKeyRef": {"name": "dagger-cloud", "key": "token", "optional": false}}})),
                    "{s}: {group}: {env}"
                );
            }
        } else {
            assert!(pod.get("priorityClassName").is_none(), "{s}: {pod}");
            assert!(c.get("resources").is_none(), "{s}: {c}");
            assert_eq!(c["env"], json!([runner_host]), "{s}");
            assert!(!g.keys().any(|a| a.contains("cloud-token")), "{s}");
            assert!(
                !serde_json::to_string(&ds.inputs)
                    .unwrap()
                    .contains("DAGGER_CLOUD_TOKEN"),
                "{s}"
            );
        }
    }
}

/// The reference to the EKS cluster's security group id, as a declared input holds it.
fn cluster_security_group_id_ref() -> serde_json::Value {
    spar::value::OutputExpr::Ref {
        address: "cluster/eks".parse().unwrap(),
        path: "cluster_security_group_id".into(),
    }
    .to_value()
}
