//! The flagship stack's configuration errors and invariant checks, in-process: every shipped
//! config passes every check; each broken invariant fails exactly its check, with a message
//! naming what disagrees (through the config where a config value can break it, else by
//! making the declarations the checks read disagree); what the checks read is what the graph
//! declares; bad values name the file and key;
//! legacy mode and IRSA declare what they need; the engine DaemonSet has each layout's shape.

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
        assert_eq!(
            checks.iter().filter(|c| !c.apply_only).count(),
            dagger_ci::checks::CHECKS.len(),
            "{stack}"
        );
        let failed: Vec<_> = checks.iter().filter(|c| !c.passed() && !c.apply_only).collect();
        assert!(failed.is_empty(), "{stack}: {failed:#?}");
        assert!(addresses.len() > 60, "{stack}: {}", addresses.len());
    }
}

/// Whether `name` is one of the shape checks (values that must agree), not a behaviour one.
fn is_shape_check(name: &str) -> bool {
    dagger_ci::checks::CHECKS
        .iter()
        .any(|c| c.name == name && matches!(c.run, dagger_ci::checks::Run::Shape(_)))
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
                "runner_host = \"unix:///run/dagger/buildkitd.sock\"\n\n[arc.github_app]",
            )],
            "set _EXPERIMENTAL_DAGGER_RUNNER_HOST=unix:///run/dagger/buildkitd.sock (node path /run/dagger-engine/buildkitd.sock) but the engine listens on",
        ),
        (
            "critical-tolerations",
            vec![(
                "[engine]",
                "[karpenter]\ntolerations = [{ key = \"dedicated\", effect = \"NoSchedule\" }]\n\n[engine]",
            )],
            "Deployment kube-system/karpenter (karpenter/chart) does not tolerate the critical nodes' taint CriticalAddonsOnly",
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
            vec![(
                "[arc]",
                "[cert_manager]\nenabled = false\n\n[arc]\nmode = \"legacy\"\nlegacy_repositories = [\"app\"]",
            )],
            "legacy ARC needs cert-manager",
        ),
        // 9. Karpenter below the minimum for the EKS version; ARC charts that differ.
        (
            "versions",
            vec![("[engine]", "[karpenter]\nversion = \"1.8.3\"\n\n[engine]")],
            "EKS 1.35 needs Karpenter >= 1.9.0, but karpenter.version is 1.8.3",
        ),
        (
            "versions",
            vec![(
                "[arc.github_app]",
                "controller_version = \"0.13.0\"\n\n[arc.github_app]",
            )],
            "the ARC controller chart is 0.13.0 but the scale-set chart is 0.14.2; they must match",
        ),
        (
            "versions",
            vec![("[arc.github_app]", "scale_set_version = \"0.14.3\"\n\n[arc.github_app]")],
            "the ARC controller chart is 0.14.2 but the scale-set chart is 0.14.3; they must match",
        ),
        (
            "versions",
            vec![("version = \"1.35\"", "version = \"1.99\"")],
            "spar's Karpenter compatibility table has no EKS 1.99",
        ),
        // Upstream's matrix lists 1.36 from Karpenter 1.13 on.
        (
            "versions",
            vec![
                ("version = \"1.35\"", "version = \"1.36\""),
                ("[engine]", "[karpenter]\nversion = \"1.12.0\"\n\n[engine]"),
            ],
            "EKS 1.36 needs Karpenter >= 1.13.0, but karpenter.version is 1.12.0",
        ),
        // 13. A NodePool grace period that is no duration.
        (
            "disruption",
            vec![(
                "[engine]",
                "[karpenter.node_pool]\ntermination_grace_period = \"2d\"\n\n[engine]",
            )],
            "NodePool terminationGracePeriod `2d` is not a duration such as 2h",
        ),
    ];
    let mut wrong = Vec::new();
    for (check, edits, says) in cases {
        let failed = failed(&sandbox_with(&edits));
        // Its check fails, with a message saying what disagrees; no other shape check
        // does (a behaviour check may: an engine that does not tolerate the runner taint
        // also lands on no runner node).
        let own = failed.iter().find(|(n, _)| n == check);
        let other_shape: Vec<&str> = failed
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| *n != check && is_shape_check(n))
            .collect();
        if !own.is_some_and(|(_, f)| f.iter().any(|m| m.contains(says))) || !other_shape.is_empty() {
            wrong.push(format!(
                "{check} should fail with {says:?} and no other shape check; failed: {failed:#?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // In legacy mode the scale-set charts are not installed: their version may differ.
    let legacy = sandbox_with(&[(
        "[arc]",
        "[arc]\nmode = \"legacy\"\nlegacy_repositories = [\"app\"]\nscale_set_version = \"0.13.0\"",
    )]);
    assert!(failed(&legacy).is_empty(), "{:#?}", failed(&legacy));
}

#[test]
fn eks_1_36_is_in_the_karpenter_table() {
    // Karpenter 1.14.1 (the default) supports 1.36: no `versions` failure.
    let failed = failed(&sandbox_with(&[("version = \"1.35\"", "version = \"1.36\"")]));
    assert!(!failed.iter().any(|(n, _)| n == "versions"), "{failed:?}");
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
        (
            vec![(
                "version = \"1.35\"",
                "version = \"1.35\"\nsecrets_encryption_key_arn = \"alias/eks\"",
            )],
            "key `cluster.secrets_encryption_key_arn`: `alias/eks` is not a KMS key ARN",
        ),
        (
            vec![(
                "version = \"1.35\"",
                "version = \"1.35\"\nsecrets_encryption_key_arn = \"arn:aws:kms:eu-west-1:111122223333:key/k1\"",
            )],
            "key `cluster.secrets_encryption_key_arn`: the key `arn:aws:kms:eu-west-1:111122223333:key/k1` is in eu-west-1, but the cluster is in us-east-1",
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
        ("[arc]", "[arc]\nmode = \"legacy\"\nlegacy_repositories = [\"app\"]"),
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

/// The AWS side of an EKS stack's components.
trait EksOf {
    fn eks(&self) -> &dagger_ci::EksParts;
    fn eks_mut(&mut self) -> &mut dagger_ci::EksParts;
    fn network(&self) -> &dagger_ci::network::Network {
        self.eks().network.as_ref().expect("a stack that creates its VPC")
    }
    fn network_mut(&mut self) -> &mut dagger_ci::network::Network {
        self.eks_mut().network.as_mut().expect("a stack that creates its VPC")
    }
}

impl EksOf for dagger_ci::Components {
    fn eks(&self) -> &dagger_ci::EksParts {
        self.eks.as_ref().expect("an EKS stack")
    }
    fn eks_mut(&mut self) -> &mut dagger_ci::EksParts {
        self.eks.as_mut().expect("an EKS stack")
    }
}

/// What `toml` declares: the components (what the shape checks read) and every resource
/// (what the behaviour checks read), without running the checks.
struct Fixture {
    c: dagger_ci::Components,
    resources: Vec<spar::graph::DesiredResource>,
}

impl std::ops::Deref for Fixture {
    type Target = dagger_ci::Components;
    fn deref(&self) -> &Self::Target {
        &self.c
    }
}

impl std::ops::DerefMut for Fixture {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.c
    }
}

fn components(toml: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t.toml"), toml).unwrap();
    let config = StackConfig::load(dir.path(), "t").unwrap();
    let mut stack = Stack::new("dagger-ci", "t", config);
    let cfg: dagger_ci::config::Config = stack.config().unwrap();
    let c = dagger_ci::declare_components(&mut stack, &cfg).unwrap();
    Fixture {
        c,
        resources: stack.resources().to_vec(),
    }
}

/// The checks that fail on `f`, with their failures.
fn failing(f: &Fixture) -> Vec<(String, Vec<String>)> {
    dagger_ci::checks::evaluate(&f.c.declared(&f.resources))
        .into_iter()
        .filter(|c| !c.passed())
        .map(|c| (c.name, c.failures))
        .collect()
}

/// The one recorded declaration at `address`.
fn decl<'a>(list: &'a mut [dagger_ci::values::Recorded], address: &str) -> &'a mut serde_json::Value {
    let n = list.iter().filter(|r| r.address == address).count();
    assert_eq!(n, 1, "{address} is recorded once");
    &mut list.iter_mut().find(|r| r.address == address).unwrap().inputs
}

/// A reference to `address`'s output `path`, as the stack records it in inputs.
fn output_ref(c: &dagger_ci::Components, address: &str) -> serde_json::Value {
    // Take an existing reference's shape from the recorded inputs and point it elsewhere.
    let mut r = c.eks().karpenter.access_entry_decls[0].inputs["principal_arn"].clone();
    let refs = spar::model::stack::references(&r);
    assert_eq!(refs.len(), 1, "{r}");
    let from = refs[0].as_str().to_string();
    let text = serde_json::to_string(&r).unwrap().replace(&from, address);
    r = serde_json::from_str(&text).unwrap();
    assert_eq!(spar::model::stack::references(&r)[0].as_str(), address);
    r
}

/// The inputs of the declared resource at `address` (what the behaviour checks and
/// `critical-tolerations` read).
fn input<'a>(f: &'a mut Fixture, address: &str) -> &'a mut serde_json::Value {
    &mut f
        .resources
        .iter_mut()
        .find(|r| r.address.as_str() == address)
        .unwrap_or_else(|| panic!("{address} is declared"))
        .inputs
}

/// The invariants no config value can break (one name, the node role, the controller's
/// identity, subnet egress, the runners' do-not-disrupt annotation, the critical
/// tolerations of CoreDNS, ARC and cert-manager) are checked on the declarations
/// themselves: each declaration made to disagree fails exactly its check, naming what
/// disagrees.
#[test]
fn each_disagreeing_declaration_fails_its_check() {
    let base = sandbox_with(&[]);
    let irsa = sandbox_with(&[("[engine]", "[karpenter]\nidentity = \"irsa\"\n\n[engine]")]);
    let with_cert_manager = sandbox_with(&[("[arc]", "[cert_manager]\nenabled = true\n\n[arc]")]);
    assert!(components(&with_cert_manager).cert_manager.is_some());
    // The dev config's charts are remote: cert-manager's startupapicheck Job is modelled
    // from its values (the sandbox's stand-in chart renders none).
    let dev_with_cert_manager = std::fs::read_to_string(root().join("config/dev.toml"))
        .unwrap()
        .replacen("[arc]", "[cert_manager]\nenabled = true\n\n[arc]", 1);
    for toml in [&base, &irsa, &with_cert_manager] {
        assert!(
            failing(&components(toml)).is_empty(),
            "{:#?}",
            failing(&components(toml))
        );
    }
    type Edit = Box<dyn Fn(&mut Fixture)>;
    let cases: Vec<(&str, &str, &str, Edit)> = vec![
        // 5. The declared controller policy scoped to another cluster.
        (
            "one-cluster-name",
            &base,
            "is scoped to cluster `other` (condition aws:ResourceTag/kubernetes.io/cluster/other)",
            Box::new(|c| {
                c.eks_mut().karpenter.controller_policy.template =
                    dagger_ci::karpenter::controller_policy_template("other", "us-east-1")
            }),
        ),
        (
            "one-cluster-name",
            &base,
            "requires aws:RequestTag/eks:eks-cluster-name = [\"other\"]",
            Box::new(|c| {
                for st in &mut c.eks_mut().karpenter.controller_policy.template.statement {
                    for values in st.condition.values_mut() {
                        if let Some(v) = values.get_mut("aws:RequestTag/eks:eks-cluster-name") {
                            *v = vec!["other".into()];
                        }
                    }
                }
            }),
        ),
        (
            "one-cluster-name",
            &base,
            "has no condition on the kubernetes.io/cluster/dagger-ci-sandbox tag",
            Box::new(|c| {
                for st in &mut c.eks_mut().karpenter.controller_policy.template.statement {
                    for cond in st.condition.values_mut() {
                        cond.retain(|k, _| !k.contains("kubernetes.io/cluster/"));
                    }
                }
            }),
        ),
        // 6. The node role: its access entry, its name, what the policy may pass.
        (
            "node-role",
            &base,
            "has no EC2_LINUX access entry (entries: karpenter/node-access-entry type STANDARD)",
            Box::new(|c| {
                decl(
                    &mut c.eks_mut().karpenter.access_entry_decls,
                    "karpenter/node-access-entry",
                )["type"] = "STANDARD".into()
            }),
        ),
        (
            "node-role",
            &base,
            "has no EC2_LINUX access entry",
            Box::new(|c| {
                let controller = output_ref(c, "karpenter/controller-role");
                decl(
                    &mut c.eks_mut().karpenter.access_entry_decls,
                    "karpenter/node-access-entry",
                )["principal_arn"] = controller;
            }),
        ),
        (
            "node-role",
            &base,
            "EC2NodeClass role `KarpenterNodeRole-dagger-ci-sandbox` is no role this stack declares",
            Box::new(|c| {
                decl(&mut c.eks_mut().karpenter.roles, "karpenter/node-role")["name"] = "SomeOtherRole".into()
            }),
        ),
        (
            "node-role",
            &base,
            "statement AllowPassingInstanceRole lets Karpenter pass [\"*\"], not only the node role",
            Box::new(|c| {
                for st in &mut c.eks_mut().karpenter.controller_policy.template.statement {
                    if st.action.iter().any(|a| a == "iam:PassRole") {
                        st.resource = vec!["*".into()];
                    }
                }
            }),
        ),
        (
            "node-role",
            &base,
            "passes the role of [\"karpenter/controller-role\"], not the EC2NodeClass role",
            Box::new(|c| {
                c.eks_mut().karpenter.controller_policy.node_role_from = vec!["karpenter/controller-role".into()]
            }),
        ),
        // 11. The controller's identity.
        (
            "controller-identity",
            &base,
            "gets no AWS identity",
            Box::new(|c| c.eks_mut().karpenter.pod_identity_associations.clear()),
        ),
        (
            "controller-identity",
            &base,
            "is for service account kube-system/default, but the Karpenter chart runs as kube-system/karpenter",
            Box::new(|c| {
                decl(
                    &mut c.eks_mut().karpenter.pod_identity_associations,
                    "karpenter/pod-identity",
                )["service_account"] = "default".into()
            }),
        ),
        (
            "controller-identity",
            &base,
            "gives kube-system/karpenter a role without the controller policy",
            Box::new(|c| {
                let node = output_ref(c, "karpenter/node-role");
                decl(
                    &mut c.eks_mut().karpenter.pod_identity_associations,
                    "karpenter/pod-identity",
                )["role_arn"] = node;
            }),
        ),
        (
            "controller-identity",
            &base,
            "the eks-pod-identity-agent add-on is not",
            Box::new(|c| c.eks_mut().cluster.addons.retain(|a| a != "eks-pod-identity-agent")),
        ),
        (
            "controller-identity",
            &irsa,
            "uses IRSA (eks.amazonaws.com/role-arn) but no OIDC provider",
            Box::new(|c| c.eks_mut().karpenter.oidc_providers.clear()),
        ),
        (
            "controller-identity",
            &irsa,
            "no role has the controller policy `karpenter/controller-policy` attached",
            Box::new(|c| c.eks_mut().karpenter.policy_attachments.clear()),
        ),
        // 5. Karpenter's settings, the discovery tags and selectors, the describable cluster.
        (
            "one-cluster-name",
            &base,
            "Karpenter settings.interruptionQueue is \"other-queue\" but the queue is `dagger-ci-sandbox`",
            Box::new(|c| c.eks_mut().karpenter.values["settings"]["interruptionQueue"] = "other-queue".into()),
        ),
        (
            "one-cluster-name",
            &base,
            "Karpenter settings.clusterName is \"other\" but the EKS cluster is `dagger-ci-sandbox`",
            Box::new(|c| c.eks_mut().karpenter.values["settings"]["clusterName"] = "other".into()),
        ),
        (
            "one-cluster-name",
            &base,
            "private subnet 1 has karpenter.sh/discovery=Some(\"other\"), not `dagger-ci-sandbox`",
            Box::new(|c| {
                c.network_mut().private_subnet_tags[1].insert("karpenter.sh/discovery".into(), "other".into());
            }),
        ),
        (
            "one-cluster-name",
            &base,
            "EC2NodeClass securityGroupSelectorTerms select karpenter.sh/discovery=other, not `dagger-ci-sandbox`",
            Box::new(|c| {
                c.eks_mut().karpenter.node_class["spec"]["securityGroupSelectorTerms"] =
                    serde_json::json!([{"tags": {"karpenter.sh/discovery": "other"}}])
            }),
        ),
        (
            "one-cluster-name",
            &base,
            "statement AllowAPIServerEndpointDiscovery lets Karpenter describe arn:aws:eks:us-east-1:${account}:cluster/other, not cluster `dagger-ci-sandbox`",
            Box::new(|c| {
                for st in &mut c.eks_mut().karpenter.controller_policy.template.statement {
                    if st.action.iter().any(|a| a == "eks:DescribeCluster") {
                        st.resource = vec!["arn:aws:eks:us-east-1:${account}:cluster/other".into()];
                    }
                }
            }),
        ),
        // 4. What runs on the critical nodes without tolerating their taint, as declared.
        (
            "critical-tolerations",
            &base,
            "Deployment kube-system/coredns (cluster/addon-coredns) does not tolerate the critical nodes' taint CriticalAddonsOnly=true:NoSchedule",
            Box::new(|f| {
                input(f, "cluster/addon-coredns")["configuration_values"]["tolerations"] = serde_json::json!([])
            }),
        ),
        (
            "critical-tolerations",
            &base,
            "Deployment arc-systems/arc-gha-rs-controller (arc/controller) does not tolerate the critical nodes' taint CriticalAddonsOnly=true:NoSchedule",
            Box::new(|f| input(f, "arc/controller")["values"]["tolerations"] = serde_json::json!([])),
        ),
        (
            "critical-tolerations",
            &base,
            "Pod arc-runners/dagger-large-listener (arc/scale-set-dagger-large) does not tolerate the critical nodes' taint CriticalAddonsOnly=true:NoSchedule",
            Box::new(|f| {
                // Tolerating the key with another effect is not tolerating the taint.
                input(f, "arc/scale-set-dagger-large")["values"]["listenerTemplate"]["spec"]["tolerations"] = serde_json::json!(
                    [{"key": "CriticalAddonsOnly", "operator": "Exists", "effect": "NoExecute"}]
                );
            }),
        ),
        (
            "critical-tolerations",
            &with_cert_manager,
            "Deployment cert-manager/cert-manager (cert-manager/chart) does not tolerate the critical nodes' taint CriticalAddonsOnly=true:NoSchedule",
            Box::new(|f| input(f, "cert-manager/chart")["values"]["tolerations"] = serde_json::json!([])),
        ),
        (
            "critical-tolerations",
            &with_cert_manager,
            "Deployment cert-manager/cert-manager-webhook (cert-manager/chart) does not tolerate the critical nodes' taint CriticalAddonsOnly=true:NoSchedule",
            Box::new(|f| {
                input(f, "cert-manager/chart")["values"]["webhook"]["tolerations"] =
                    serde_json::json!([{"key": "dedicated", "operator": "Exists"}])
            }),
        ),
        (
            "critical-tolerations",
            &with_cert_manager,
            "Deployment cert-manager/cert-manager-cainjector (cert-manager/chart) does not tolerate the critical nodes' taint CriticalAddonsOnly=true:NoSchedule",
            Box::new(|f| {
                input(f, "cert-manager/chart")["values"]["cainjector"]
                    .as_object_mut()
                    .unwrap()
                    .remove("tolerations");
            }),
        ),
        (
            "critical-tolerations",
            &dev_with_cert_manager,
            "Job cert-manager/cert-manager-startupapicheck (cert-manager/chart) does not tolerate the critical nodes' taint CriticalAddonsOnly=true:NoSchedule",
            Box::new(|f| {
                input(f, "cert-manager/chart")["values"]["startupapicheck"]["tolerations"] = serde_json::json!(
                    [{"key": "CriticalAddonsOnly", "operator": "Equal", "value": "false", "effect": "NoSchedule"}]
                )
            }),
        ),
        // 13. Runner pods Karpenter may disrupt.
        (
            "disruption",
            &base,
            "runner pods of `dagger-small` lack karpenter.sh/do-not-disrupt: \"true\"",
            Box::new(|c| {
                c.arc.runners[0].template["metadata"]["annotations"]
                    .as_object_mut()
                    .unwrap()
                    .remove("karpenter.sh/do-not-disrupt");
            }),
        ),
        (
            "disruption",
            &base,
            "runner pods of `dagger-large` lack karpenter.sh/do-not-disrupt: \"true\"",
            Box::new(|c| {
                c.arc.runners[1].template["metadata"]["annotations"]["karpenter.sh/do-not-disrupt"] = "false".into()
            }),
        ),
        // 16. Egress of the subnets Karpenter selects.
        (
            "subnet-egress",
            &base,
            "subnet `network/private-us-east-1b` (dagger-ci-sandbox-private-us-east-1b) is selected by Karpenter but associated with no route table",
            Box::new(|c| {
                c.network_mut()
                    .route_table_associations
                    .retain(|a| a.address != "network/private-rt-us-east-1b-assoc")
            }),
        ),
        (
            "subnet-egress",
            &base,
            "(dagger-ci-sandbox-private-us-east-1c) is selected by Karpenter but its route table [[\"network/private-rt-us-east-1a\"]] has no 0.0.0.0/0 route to a NAT gateway",
            Box::new(|c| {
                let igw = output_ref(c, "network/igw");
                let r = decl(&mut c.network_mut().routes, "network/private-default-us-east-1a");
                r["nat_gateway_id"] = serde_json::Value::Null;
                r["gateway_id"] = igw;
            }),
        ),
        (
            "subnet-egress",
            &base,
            "has no 0.0.0.0/0 route to a NAT gateway",
            Box::new(|c| {
                decl(&mut c.network_mut().routes, "network/private-default-us-east-1a")["destination_cidr_block"] =
                    "10.0.0.0/8".into()
            }),
        ),
        (
            "subnet-egress",
            &base,
            "select no subnet of the stack",
            Box::new(|c| {
                for sn in &mut c.network_mut().subnets {
                    sn.inputs["tags"]
                        .as_object_mut()
                        .unwrap()
                        .remove("karpenter.sh/discovery");
                }
            }),
        ),
    ];
    let mut wrong = Vec::new();
    for (check, toml, says, edit) in cases {
        let mut c = components(toml);
        edit(&mut c);
        let failed = failing(&c);
        // Its check fails saying so; no other shape check does (a behaviour check may:
        // CoreDNS tolerating nothing also has no node to run on).
        let own = failed.iter().find(|(n, _)| n == check);
        let other_shape: Vec<&str> = failed
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| *n != check && is_shape_check(n))
            .collect();
        if !own.is_some_and(|(_, f)| f.iter().any(|m| m.contains(says))) || !other_shape.is_empty() {
            wrong.push(format!("{check} should fail with {says:?}; failed: {failed:#?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The declarations the checks read are the shipped configs' own (every check passes on
/// them) and sit at addresses of the graph the stack builds.
#[test]
fn the_checks_run_on_the_shipped_declarations() {
    for stack in ["sandbox", "dev", "prod"] {
        let text = std::fs::read_to_string(root().join(format!("config/{stack}.toml"))).unwrap();
        let c = components(&text);
        assert!(failing(&c).is_empty(), "{stack}: {:#?}", failing(&c));
        // What the checks read is what the graph holds.
        let (_, addresses) = define(&text).unwrap();
        for r in c
            .network()
            .subnets
            .iter()
            .chain(&c.network().routes)
            .chain(&c.network().route_table_associations)
            .chain(&c.eks().karpenter.access_entry_decls)
            .chain(&c.eks().karpenter.pod_identity_associations)
        {
            assert!(addresses.contains(&r.address), "{stack}: {}", r.address);
        }
    }
}

/// What the checks read is, value for value, what the graph declares: the recorded
/// network and Karpenter declarations, the NodePool, EC2NodeClass and Karpenter values, the
/// engine DaemonSet, the runner pod templates, and every toleration `critical-tolerations`
/// reads (CoreDNS's configuration, ARC's controller and listeners, cert-manager's values),
/// for each shipped config and for legacy ARC with cert-manager.
#[test]
fn what_the_checks_read_is_what_the_graph_holds() {
    let legacy = sandbox_with(&[("[arc]", "[arc]\nmode = \"legacy\"\nlegacy_repositories = [\"app\"]")]);
    let with_cert_manager = sandbox_with(&[("[arc]", "[cert_manager]\nenabled = true\n\n[arc]")]);
    let mut texts: Vec<(&str, String)> = ["sandbox", "dev", "prod"]
        .into_iter()
        .map(|s| {
            (
                s,
                std::fs::read_to_string(root().join(format!("config/{s}.toml"))).unwrap(),
            )
        })
        .collect();
    texts.push(("legacy", legacy));
    texts.push(("cert-manager", with_cert_manager));
    for (stack, text) in &texts {
        let c = components(text);
        let g = declared_graph(text);
        let at = |a: &str| g.get(a).unwrap_or_else(|| panic!("{stack}: {a} is declared"));
        for r in c
            .network()
            .subnets
            .iter()
            .chain(&c.network().routes)
            .chain(&c.network().route_table_associations)
            .chain(&c.network().nat_gateway_decls)
            .chain(&c.network().internet_gateways)
            .chain(&c.eks().karpenter.roles)
            .chain(&c.eks().karpenter.access_entry_decls)
            .chain(&c.eks().karpenter.pod_identity_associations)
            .chain(&c.eks().karpenter.policy_attachments)
        {
            assert_eq!(at(&r.address), &r.inputs, "{stack}: {}", r.address);
        }
        assert_eq!(
            at("karpenter/node-pool")["manifest"],
            c.eks().karpenter.node_pool,
            "{stack}"
        );
        // The node class as declared, with the cluster security group's id (an output)
        // where the checks' copy holds its placeholder.
        let mut node_class = c.eks().karpenter.node_class.clone();
        node_class["spec"]["securityGroupSelectorTerms"][1]["id"] = spar::value::OutputExpr::Ref {
            address: "cluster/eks".parse().unwrap(),
            path: "cluster_security_group_id".into(),
        }
        .to_value();
        assert_eq!(at("karpenter/node-class")["manifest"], node_class, "{stack}");
        assert_eq!(at("karpenter/chart")["values"], c.eks().karpenter.values, "{stack}");
        assert_eq!(
            at("dagger/daemonset")["manifest"],
            serde_json::to_value(&c.engine.daemonset).unwrap(),
            "{stack}"
        );
        for r in &c.arc.runners {
            let g_name = &r.group;
            if *stack == "legacy" {
                let rd = &at(&format!("arc/runners-{g_name}"))["manifest"]["spec"]["template"];
                assert_eq!(rd["metadata"], r.template["metadata"], "{stack}: {g_name}");
                assert_eq!(rd["spec"]["tolerations"], r.template["spec"]["tolerations"], "{stack}");
                assert_eq!(
                    rd["spec"]["nodeSelector"], r.template["spec"]["nodeSelector"],
                    "{stack}"
                );
                assert_eq!(rd["spec"]["volumes"], r.template["spec"]["volumes"], "{stack}");
                assert_eq!(rd["spec"]["env"], r.template["spec"]["containers"][0]["env"], "{stack}");
            } else {
                let values = &at(&format!("arc/scale-set-{g_name}"))["values"];
                assert_eq!(values["template"], r.template, "{stack}: {g_name}");
            }
        }
        match &c.cert_manager {
            Some(cm) => assert_eq!(at("cert-manager/chart")["values"], cm.values, "{stack}"),
            None => assert!(!g.contains_key("cert-manager/chart"), "{stack}"),
        }
    }
}

/// Every resource's inputs in the graph `toml` declares, by address.
fn declared_graph(toml: &str) -> std::collections::BTreeMap<String, serde_json::Value> {
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
        .map(|r| (r.address.as_str().to_string(), r.inputs))
        .collect()
}

/// The inputs of the resource at `address` in the graph `toml` declares.
fn declared_inputs(toml: &str, address: &str) -> serde_json::Value {
    declared_graph(toml)
        .remove(address)
        .unwrap_or_else(|| panic!("{address} is declared"))
}

/// `cluster.secrets_encryption_key_arn` turns on envelope encryption of Kubernetes secrets:
/// the declared EKS cluster carries the key when it is set (a key or an alias ARN) and none
/// when it is not; the prod example sets one.
#[test]
fn the_cluster_encrypts_secrets_only_with_a_configured_key() {
    let unset = declared_inputs(&sandbox_with(&[]), "cluster/eks");
    assert!(unset["secrets_encryption_key_arn"].is_null(), "{unset}");
    for arn in [
        "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "arn:aws:kms:us-east-1:111122223333:alias/dagger-ci-secrets",
    ] {
        let line = format!("version = \"1.35\"\nsecrets_encryption_key_arn = \"{arn}\"");
        let set = declared_inputs(&sandbox_with(&[("version = \"1.35\"", &line)]), "cluster/eks");
        assert_eq!(set["secrets_encryption_key_arn"], arn, "{set}");
    }
    let prod = std::fs::read_to_string(root().join("config/prod.toml")).unwrap();
    let eks = declared_inputs(&prod, "cluster/eks");
    assert!(
        eks["secrets_encryption_key_arn"]
            .as_str()
            .is_some_and(|k| k.starts_with("arn:aws:kms:us-east-1:")),
        "{eks}"
    );
}

/// The engine DaemonSet the stack declares, in both layouts: what both share (privileged,
/// ALL capabilities, uid 0 / gid 1001 / fsGroup 1001 with OnRootMismatch, a 300 s grace
/// period, the runner toleration and required node affinity), the current layout's socket
/// and probes, and the legacy layout's buildkit socket, `--oci-max-parallelism num-cpu`,
/// buildctl init container and readiness probe.
#[test]
fn the_engine_daemonset_has_each_layouts_shape() {
    use serde_json::json;
    let current = sandbox_with(&[]);
    let legacy = sandbox_with(&[("[engine]", "[engine]\nlayout = \"legacy\"")]);
    for (layout, toml) in [("current", &current), ("legacy", &legacy)] {
        let ds = &declared_inputs(toml, "dagger/daemonset")["manifest"];
        assert_eq!(ds["kind"], "DaemonSet", "{layout}");
        assert_eq!(ds["metadata"]["name"], "dagger-engine", "{layout}");
        assert_eq!(ds["metadata"]["namespace"], "dagger", "{layout}");
        let pod = &ds["spec"]["template"]["spec"];
        let c = &pod["containers"][0];
        assert_eq!(pod["containers"].as_array().unwrap().len(), 1, "{layout}");
        assert_eq!(c["image"], "registry.dagger.io/engine:v0.21.8", "{layout}");
        assert_eq!(
            c["securityContext"],
            json!({"privileged": true, "capabilities": {"add": ["ALL"]}}),
            "{layout}"
        );
        assert_eq!(
            pod["securityContext"],
            json!({"runAsUser": 0, "runAsGroup": 1001, "fsGroup": 1001, "fsGroupChangePolicy": "OnRootMismatch"}),
            "{layout}"
        );
        assert_eq!(pod["terminationGracePeriodSeconds"], 300, "{layout}");
        assert_eq!(
            pod["tolerations"],
            json!([{"key": "github-actions-runner", "operator": "Exists", "effect": "NoSchedule"}]),
            "{layout}"
        );
        assert_eq!(
            pod["affinity"],
            json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "github-actions-runner", "operator": "Exists"}]}
            ]}}}),
            "{layout}"
        );
        assert!(pod["affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"].is_null());
        let cache =
            json!({"name": "cache", "hostPath": {"path": "/mnt/k8s-disks/0/dagger", "type": "DirectoryOrCreate"}});
        match layout {
            "current" => {
                assert!(c["args"].is_null(), "{c}");
                assert!(pod["initContainers"].is_null(), "{pod}");
                assert_eq!(c["imagePullPolicy"], "IfNotPresent");
                assert_eq!(
                    c["env"],
                    json!([{"name": "_EXPERIMENTAL_DAGGER_RUNNER_HOST", "value": "unix:///run/dagger/engine.sock"}])
                );
                assert_eq!(
                    c["readinessProbe"],
                    json!({"exec": {"command": ["dagger", "core", "version"]}, "initialDelaySeconds": 5,
                           "timeoutSeconds": 14, "periodSeconds": 15, "failureThreshold": 10})
                );
                assert_eq!(
                    c["livenessProbe"],
                    json!({"exec": {"command": ["dagger", "core", "version"]}, "initialDelaySeconds": 5,
                           "timeoutSeconds": 29, "periodSeconds": 30, "failureThreshold": 20})
                );
                assert_eq!(
                    c["volumeMounts"],
                    json!([{"name": "run", "mountPath": "/run/dagger"}, {"name": "cache", "mountPath": "/var/lib/dagger"}])
                );
                assert_eq!(
                    pod["volumes"],
                    json!([{"name": "run", "hostPath": {"path": "/run/dagger-engine", "type": "DirectoryOrCreate"}}, cache])
                );
            }
            _ => {
                assert_eq!(c["args"], json!(["--oci-max-parallelism", "num-cpu"]));
                assert_eq!(c["imagePullPolicy"], "Always");
                assert_eq!(
                    c["env"],
                    json!([{"name": "BUILDKIT_HOST", "value": "unix:///var/run/buildkit/buildkitd.sock"}])
                );
                assert_eq!(
                    pod["initContainers"],
                    json!([{
                        "name": "fetch-buildctl",
                        "image": "moby/buildkit:v0.11.6",
                        "command": ["cp", "/usr/bin/buildctl", "/opt/buildctl/buildctl"],
                        "volumeMounts": [{"name": "buildctl", "mountPath": "/opt/buildctl"}],
                    }])
                );
                assert_eq!(
                    c["readinessProbe"],
                    json!({"exec": {"command": ["/opt/buildctl/buildctl", "debug", "workers"]},
                           "initialDelaySeconds": 5, "periodSeconds": 5})
                );
                assert!(c["livenessProbe"].is_null(), "{c}");
                assert_eq!(
                    c["volumeMounts"],
                    json!([
                        {"name": "run", "mountPath": "/var/run/buildkit"},
                        {"name": "cache", "mountPath": "/var/lib/dagger"},
                        {"name": "buildctl", "mountPath": "/opt/buildctl"},
                    ])
                );
                assert_eq!(
                    pod["volumes"],
                    json!([
                        {"name": "run", "hostPath": {"path": "/var/run/dagger", "type": "DirectoryOrCreate"}},
                        cache,
                        {"name": "buildctl", "emptyDir": {}},
                    ])
                );
                // The legacy layout passes every check (runners mount the same hostPath).
                let ok = failed(toml);
                assert!(ok.is_empty(), "{ok:#?}");
            }
        }
    }
}
