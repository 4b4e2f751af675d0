//! The flagship stack end to end in the sandbox, through its real command line: the AWS
//! emulator (`sandbox/aws/serve`, moto + EKS front) and the Kubernetes API simulator
//! (in-process), the sandbox's stand-in charts rendered by the real Helm engine.
//!
//! apply; plan (and plan --refresh) show no changes; raising a runner group's maximum,
//! bumping the engine version and changing the NodePool's instance families each give
//! exactly the expected plan; they apply; a broken invariant is refused; destroy leaves the
//! emulator and the simulator with nothing of the stack (every kind listed).

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use aws_config::{BehaviorVersion, Region};
use kube::api::{Api, DynamicObject, ListParams};
use kube::discovery::{Discovery, Scope};
use serde_json::Value;
use spar_kube_sim::{SimConfig, Simulator};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// Starts the AWS emulator on a free port; it dies with this process.
fn start_emulator() -> String {
    let mut child = Command::new(root().join("sandbox/aws/serve"))
        .args(["--port", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("sandbox/aws/serve starts (run sandbox/setup first)");
    let pid = child.id();
    let watchdog = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "while kill -0 {} 2>/dev/null; do sleep 0.5; done; kill {pid} 2>/dev/null",
            std::process::id()
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::mem::forget(watchdog);
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    std::mem::forget(child);
    line.split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_string()
}

/// The sandbox as `sandbox/up` starts it: the AWS emulator, and the simulator with no
/// nodes of its own, taking them (and the add-ons' workloads) from the emulator's node
/// groups, pods becoming ready `ready_ms` after they are bound.
async fn start_sandbox(ready_ms: u64) -> (spar_kube_sim::SimHandle, Env) {
    let aws = tokio::task::spawn_blocking(start_emulator).await.unwrap();
    let sim = Simulator::start(SimConfig {
        port: 0,
        ready_delay: std::time::Duration::from_millis(ready_ms),
        nodes: 0,
        aws_endpoint: Some(aws.clone()),
        ..SimConfig::default()
    })
    .await
    .expect("the simulator starts (run sandbox/setup first: it needs the schemas)");
    let env = Env {
        aws,
        kube: sim.url(),
        dir: tempfile::tempdir().unwrap(),
    };
    (sim, env)
}

fn resource(group: &str, version: &str, kind: &str, plural: &str) -> kube::discovery::ApiResource {
    kube::discovery::ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: if group.is_empty() {
            version.into()
        } else {
            format!("{group}/{version}")
        },
        kind: kind.into(),
        plural: plural.into(),
    }
}

async fn list(client: &kube::Client, r: &kube::discovery::ApiResource, selector: &str) -> Vec<Value> {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), r);
    let list = api.list(&ListParams::default().labels(selector)).await.unwrap();
    list.items.iter().map(|o| serde_json::to_value(o).unwrap()).collect()
}

async fn pods(client: &kube::Client, selector: &str) -> Vec<Value> {
    list(client, &resource("", "v1", "Pod", "pods"), selector).await
}

/// Polls `f` every 100 ms for up to 30 s until it returns `Some`.
async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match f().await {
            Ok(v) => return v,
            Err(why) if std::time::Instant::now() > deadline => panic!("{what}: {why}"),
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
}

/// The nodes of the EKS managed node group (the critical nodes).
async fn critical_nodes(client: &kube::Client) -> Vec<String> {
    eventually("critical nodes joined", || async {
        let nodes = list(
            client,
            &resource("", "v1", "Node", "nodes"),
            "eks.amazonaws.com/nodegroup",
        )
        .await;
        let names: Vec<String> = nodes
            .iter()
            .map(|n| n["metadata"]["name"].as_str().unwrap().to_string())
            .collect();
        if names.is_empty() {
            Err("none".to_string())
        } else {
            Ok(names)
        }
    })
    .await
}

/// Every pod `selector` picks is Running on one of `nodes` (and there is at least one).
async fn running_on(client: &kube::Client, selector: &str, nodes: &[String]) {
    eventually(&format!("pods {selector} Running on {nodes:?}"), || async {
        let ps = pods(client, selector).await;
        let bad: Vec<String> = ps
            .iter()
            .filter(|p| p["status"]["phase"] != "Running" || !nodes.iter().any(|n| p["spec"]["nodeName"] == n.as_str()))
            .map(|p| {
                format!(
                    "{} {} on {}",
                    p["metadata"]["name"], p["status"]["phase"], p["spec"]["nodeName"]
                )
            })
            .collect();
        if ps.is_empty() || !bad.is_empty() {
            Err(format!("{} pods, not yet: {bad:?}", ps.len()))
        } else {
            Ok(())
        }
    })
    .await
}

/// Creates the runner pod ARC's controller makes from scale set `name`'s template.
async fn make_runner_pod(client: &kube::Client, name: &str) {
    let sets = list(
        client,
        &resource(
            "actions.github.com",
            "v1alpha1",
            "AutoscalingRunnerSet",
            "autoscalingrunnersets",
        ),
        "",
    )
    .await;
    let set = sets
        .iter()
        .find(|s| s["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("scale set {name}"));
    let ns = set["metadata"]["namespace"].as_str().unwrap();
    let mut labels = set["spec"]["template"]["metadata"]["labels"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    labels.insert("actions.github.com/scale-set-name".into(), name.into());
    labels.insert("actions.github.com/scale-set-namespace".into(), ns.into());
    labels.insert("app.kubernetes.io/component".into(), "runner".into());
    let pod: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("{name}-queued-runner"), "namespace": ns, "labels": labels},
        "spec": set["spec"]["template"]["spec"],
    }))
    .unwrap();
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &resource("", "v1", "Pod", "pods"));
    api.create(&Default::default(), &pod).await.unwrap();
}

/// A runner of scale set `group` runs on a Karpenter node next to a Running engine pod,
/// the two mounting the same host directory.
async fn runner_next_to_engine(client: &kube::Client, group: &str) {
    runner_next_to_engine_on(client, group, "karpenter.sh/nodepool").await
}

/// A runner of scale set `group` runs on a node `runner_nodes` (a label selector) picks,
/// next to a Running engine pod, the two mounting the same host directory.
async fn runner_next_to_engine_on(client: &kube::Client, group: &str, runner_nodes: &str) {
    eventually(&format!("a {group} runner next to an engine"), || async {
        let runners = pods(client, &format!("actions.github.com/scale-set-name={group}")).await;
        let runner = runners
            .iter()
            .find(|p| p["status"]["phase"] == "Running")
            .ok_or_else(|| format!("no Running runner: {}", Value::from(runners.clone())))?;
        let node = runner["spec"]["nodeName"].as_str().unwrap_or_default();
        let nodes = list(client, &resource("", "v1", "Node", "nodes"), runner_nodes).await;
        if !nodes.iter().any(|n| n["metadata"]["name"] == node) {
            return Err(format!("runner on {node}, not a node {runner_nodes} picks"));
        }
        let engine = pods(client, "")
            .await
            .into_iter()
            .find(|p| {
                p["spec"]["nodeName"] == node
                    && p["status"]["phase"] == "Running"
                    && p["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet"
                    && p["metadata"]["ownerReferences"][0]["name"] == "dagger-engine"
            })
            .ok_or_else(|| format!("no Running engine on {node}"))?;
        let host_paths = |p: &Value| -> Vec<String> {
            let mounted: Vec<&str> = p["spec"]["containers"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|c| c["volumeMounts"].as_array().into_iter().flatten())
                .filter_map(|m| m["name"].as_str())
                .collect();
            p["spec"]["volumes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|v| mounted.contains(&v["name"].as_str().unwrap_or_default()))
                .filter_map(|v| v["hostPath"]["path"].as_str().map(String::from))
                .collect()
        };
        let (r, e) = (host_paths(runner), host_paths(&engine));
        if r.iter().any(|p| e.contains(p)) {
            Ok(())
        } else {
            Err(format!("no shared host path: runner {r:?}, engine {e:?}"))
        }
    })
    .await
}

struct Env {
    aws: String,
    kube: String,
    dir: tempfile::TempDir,
}

impl Env {
    /// Writes the sandbox config with `edits` (from, to) applied.
    fn config(&self, edits: &[(&str, &str)]) {
        let mut text = std::fs::read_to_string(root().join("stacks/dagger-ci/config/sandbox.toml")).unwrap();
        for (from, to) in edits {
            assert!(text.contains(from), "the sandbox config has {from:?}");
            text = text.replace(from, to);
        }
        std::fs::create_dir_all(self.dir.path().join("config")).unwrap();
        std::fs::write(self.dir.path().join("config/sandbox.toml"), text).unwrap();
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_stack("sandbox", args)
    }

    /// Runs the command line on the config `config/<stack>.toml` of this environment.
    fn run_stack(&self, stack: &str, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_dagger-ci"))
            .current_dir(root())
            .args(["--stack", stack, "--state-dir"])
            .arg(self.dir.path().join("state"))
            .args(args)
            .env("SPAR_CONFIG_DIR", self.dir.path().join("config"))
            .env("AWS_ENDPOINT_URL", &self.aws)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("SPAR_KUBE_SANDBOX_URL", &self.kube)
            .env("NO_COLOR", "1")
            .env_remove("CARGO_MANIFEST_DIR")
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "`{}` failed:\n{text}", args.join(" "));
        text
    }

    /// The plan as JSON: (address, op) of every change that is not `same`, sorted.
    fn plan(&self) -> (Vec<(String, String)>, Value) {
        let out = self.run(&["plan", "--json"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
        let mut changes: Vec<(String, String)> = plan["changes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["op"] != "same")
            .map(|c| {
                (
                    c["address"].as_str().unwrap().to_string(),
                    c["op"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        changes.sort();
        (changes, plan)
    }
}

fn updates(addresses: &[&str]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = addresses
        .iter()
        .map(|a| (a.to_string(), "update".to_string()))
        .collect();
    v.sort();
    v
}

/// Every object the simulator holds outside the namespaces a new cluster has.
/// What a destroy leaves in the simulator, besides the CRDs helm never deletes (and neither
/// does spar): those of the charts' `crds/` directories, and those annotated
/// `helm.sh/resource-policy: keep` (cert-manager's, with `crds.keep`); each is checked to be
/// one of them, and left out.
/// [`kube_leftovers_but_kept_crds`] once the simulator has caught up with the emulator: the
/// workloads of EKS add-ons go at its next poll of the emulator (every 250 ms) after the
/// cluster is deleted, as EKS removes them with the cluster.
async fn kube_leftovers_settled(client: kube::Client) -> Vec<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let left = kube_leftovers_but_kept_crds(client.clone()).await;
        if left.is_empty() || std::time::Instant::now() > deadline {
            return left;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

async fn kube_leftovers_but_kept_crds(client: kube::Client) -> Vec<String> {
    let charts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sandbox/charts");
    let mut crds_dirs = String::new();
    for chart in std::fs::read_dir(&charts).unwrap() {
        let dir = chart.unwrap().path().join("crds");
        for f in std::fs::read_dir(&dir).into_iter().flatten() {
            crds_dirs.push_str(&std::fs::read_to_string(f.unwrap().path()).unwrap());
        }
    }
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(client.clone());
    let left = kube_leftovers(client).await;
    let (kept, rest): (Vec<String>, Vec<String>) = left
        .into_iter()
        .partition(|o| o.starts_with("CustomResourceDefinition /"));
    for crd in &kept {
        let name = crd.trim_start_matches("CustomResourceDefinition /");
        let annotated = crds
            .get(name)
            .await
            .unwrap()
            .metadata
            .annotations
            .unwrap_or_default()
            .get("helm.sh/resource-policy")
            .is_some_and(|p| p == "keep");
        assert!(
            annotated || crds_dirs.contains(&format!("name: {name}")),
            "{crd} was left but is neither a CRD of a chart's crds/ directory nor kept"
        );
    }
    assert!(
        !kept.is_empty(),
        "the charts' crds/ CRDs stay after destroy, as after helm uninstall"
    );
    rest
}

async fn kube_leftovers(client: kube::Client) -> Vec<String> {
    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    let mut left = Vec::new();
    for group in discovery.groups() {
        for (ar, caps) in group.recommended_resources() {
            if !caps.supports_operation(kube::discovery::verbs::LIST) {
                continue;
            }
            let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
            let Ok(list) = api.list(&ListParams::default()).await else {
                continue;
            };
            for o in list {
                let ns = o.metadata.namespace.clone().unwrap_or_default();
                let name = o.metadata.name.clone().unwrap_or_default();
                let builtin_ns = ["default", "kube-system", "kube-public", "kube-node-lease"];
                let system = match (ar.kind.as_str(), caps.scope.clone()) {
                    ("Namespace", _) => builtin_ns.contains(&name.as_str()),
                    ("Node" | "Event" | "Endpoints" | "Lease", _) => true,
                    ("ServiceAccount", _) => name == "default",
                    ("ConfigMap", _) => name == "kube-root-ca.crt",
                    ("Service", _) => name == "kubernetes",
                    (_, Scope::Cluster) => name.starts_with("system:") || name.starts_with("cluster-admin"),
                    _ => false,
                };
                if !system {
                    left.push(format!("{} {ns}/{name}", ar.kind));
                }
            }
        }
    }
    left
}

async fn aws_leftovers(url: &str) -> Vec<String> {
    let config = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(url)
        .region(Region::new("us-east-1"))
        .credentials_provider(aws_sdk_ec2::config::Credentials::new(
            "testing", "testing", None, None, "e2e",
        ))
        .load()
        .await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let iam = aws_sdk_iam::Client::new(&config);
    let eks = aws_sdk_eks::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let events = aws_sdk_eventbridge::Client::new(&config);
    let mut left = Vec::new();
    for v in ec2.describe_vpcs().send().await.unwrap().vpcs() {
        if v.is_default() != Some(true) {
            left.push(format!("vpc {}", v.vpc_id().unwrap_or_default()));
        }
    }
    let default_vpcs: Vec<String> = ec2
        .describe_vpcs()
        .send()
        .await
        .unwrap()
        .vpcs()
        .iter()
        .filter(|v| v.is_default() == Some(true))
        .filter_map(|v| v.vpc_id().map(str::to_string))
        .collect();
    let outside_default = |vpc: Option<&str>| vpc.is_some_and(|v| !default_vpcs.iter().any(|d| d == v));
    for s in ec2.describe_subnets().send().await.unwrap().subnets() {
        if outside_default(s.vpc_id()) {
            left.push(format!("subnet {}", s.subnet_id().unwrap_or_default()));
        }
    }
    for g in ec2
        .describe_internet_gateways()
        .send()
        .await
        .unwrap()
        .internet_gateways()
    {
        if g.attachments().iter().all(|a| outside_default(a.vpc_id())) {
            left.push(format!("igw {}", g.internet_gateway_id().unwrap_or_default()));
        }
    }
    for n in ec2.describe_nat_gateways().send().await.unwrap().nat_gateways() {
        if n.state().map(|s| s.as_str()) != Some("deleted") {
            left.push(format!("nat {}", n.nat_gateway_id().unwrap_or_default()));
        }
    }
    for a in ec2.describe_addresses().send().await.unwrap().addresses() {
        left.push(format!("eip {}", a.allocation_id().unwrap_or_default()));
    }
    for r in ec2.describe_route_tables().send().await.unwrap().route_tables() {
        if outside_default(r.vpc_id()) {
            left.push(format!("route table {}", r.route_table_id().unwrap_or_default()));
        }
    }
    for g in ec2.describe_security_groups().send().await.unwrap().security_groups() {
        if outside_default(g.vpc_id()) {
            left.push(format!("security group {}", g.group_id().unwrap_or_default()));
        }
    }
    for e in ec2.describe_vpc_endpoints().send().await.unwrap().vpc_endpoints() {
        if e.state().map(|s| s.as_str().to_ascii_lowercase()) != Some("deleted".into()) {
            left.push(format!("vpc endpoint {}", e.vpc_endpoint_id().unwrap_or_default()));
        }
    }
    for r in iam.list_roles().send().await.unwrap().roles() {
        left.push(format!("role {}", r.role_name()));
    }
    for p in iam
        .list_policies()
        .scope(aws_sdk_iam::types::PolicyScopeType::Local)
        .send()
        .await
        .unwrap()
        .policies()
    {
        left.push(format!("policy {}", p.policy_name().unwrap_or_default()));
    }
    for p in iam.list_instance_profiles().send().await.unwrap().instance_profiles() {
        left.push(format!("instance profile {}", p.instance_profile_name()));
    }
    for p in iam
        .list_open_id_connect_providers()
        .send()
        .await
        .unwrap()
        .open_id_connect_provider_list()
    {
        left.push(format!("oidc {}", p.arn().unwrap_or_default()));
    }
    for c in eks.list_clusters().send().await.unwrap().clusters() {
        left.push(format!("eks cluster {c}"));
    }
    for q in sqs.list_queues().send().await.unwrap().queue_urls() {
        left.push(format!("queue {q}"));
    }
    for r in events.list_rules().send().await.unwrap().rules() {
        left.push(format!("rule {}", r.name().unwrap_or_default()));
    }
    left
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_flagship_stack_applies_changes_and_goes_away() {
    let (sim, env) = start_sandbox(200).await;
    let env = std::sync::Arc::new(env);
    let blocking = |f: Box<dyn FnOnce(&Env) -> String + Send>| {
        let env = env.clone();
        async move { tokio::task::spawn_blocking(move || f(&env)).await.unwrap() }
    };

    // Apply from nothing.
    env.config(&[]);
    let out = blocking(Box::new(|e| e.ok(&["apply", "--yes"]))).await;
    assert!(out.contains("Apply complete"), "{out}");
    let outputs: Value = serde_json::from_str(&blocking(Box::new(|e| e.ok(&["output", "--json"]))).await).unwrap();
    assert_eq!(
        outputs["runner_scale_sets"],
        serde_json::json!(["dagger-small", "dagger-large"])
    );
    assert!(
        outputs["cluster_endpoint"].as_str().unwrap().starts_with("https://"),
        "{outputs}"
    );

    // The cluster runs what was applied: the critical add-ons on the critical nodes; each
    // runner group's runner pod on a node the sandbox's Karpenter launched, next to a
    // running engine sharing its socket directory.
    let client = kube::Client::try_from(kube::Config::new(env.kube.parse().unwrap())).unwrap();
    let critical = critical_nodes(&client).await;
    assert_eq!(
        critical.len(),
        2,
        "the critical node group's nodes joined: {critical:?}"
    );
    for selector in [
        "k8s-app=kube-dns",
        "app.kubernetes.io/name=karpenter",
        "app.kubernetes.io/name=gha-rs-controller",
    ] {
        running_on(&client, selector, &critical).await;
    }
    // dagger-large keeps one runner (minRunners 1): the sandbox's ARC makes it. For
    // dagger-small (minimum 0) make the pod ARC makes for a queued job, from its scale set.
    make_runner_pod(&client, "dagger-small").await;
    for group in ["dagger-small", "dagger-large"] {
        runner_next_to_engine(&client, group).await;
    }

    // A runner toleration removed (checks waived, so the sandbox is what judges it): the
    // runner the sandbox's ARC remakes cannot schedule, and the apply fails with the
    // scheduler's message; nothing is lost, and putting the toleration back repairs it.
    let broken = vec![
        ("[arc]\n", "[arc]\nrunner_tolerations = []\n"),
        ("[charts]\n", "[charts]\nwait_timeout_seconds = 15\n"),
    ];
    let e = env.clone();
    let (failed, waived) = tokio::task::spawn_blocking(move || {
        e.config(&broken);
        let checks: Value = serde_json::from_slice(&e.run(&["check", "--json"]).stdout).unwrap();
        let waived: Vec<String> = checks["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["status"] == "failed")
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect();
        let mut args = vec!["apply", "--yes"];
        for w in &waived {
            args.extend(["--waive", w.as_str()]);
        }
        let out = e.run(&args);
        (out, waived)
    })
    .await
    .unwrap();
    assert!(
        !waived.is_empty(),
        "spar check catches the missing toleration before the sandbox does"
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&failed.stdout),
        String::from_utf8_lossy(&failed.stderr)
    );
    assert!(!failed.status.success(), "{text}");
    assert!(
        text.contains("is Unschedulable: 0/3 nodes are available:")
            && text.contains("node(s) had untolerated taint {github-actions-runner: true}"),
        "the apply fails with the scheduler's message: {text}"
    );
    let e = env.clone();
    let out = tokio::task::spawn_blocking(move || {
        e.config(&[]);
        e.ok(&["apply", "--yes"])
    })
    .await
    .unwrap();
    assert!(out.contains("Apply complete"), "{out}");
    runner_next_to_engine(&client, "dagger-large").await;

    // No changes, also after reading every live object.
    let (changes, _) = tokio::task::spawn_blocking({
        let env = env.clone();
        move || env.plan()
    })
    .await
    .unwrap();
    assert!(changes.is_empty(), "{changes:?}");
    let out = blocking(Box::new(|e| e.ok(&["plan", "--refresh"]))).await;
    assert!(out.contains("No changes"), "{out}");

    // Raise a runner group's maximum: only its scale set changes.
    let plan_with = |edits: Vec<(&'static str, &'static str)>| {
        let env = env.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                env.config(&edits);
                env.plan()
            })
            .await
            .unwrap()
        }
    };
    let max = ("min_runners = 0, max_runners = 10", "min_runners = 0, max_runners = 20");
    let (changes, plan) = plan_with(vec![max]).await;
    assert_eq!(changes, updates(&["arc/scale-set-dagger-small"]), "{plan}");

    // Bump the engine: the DaemonSet and the runners' DAGGER_VERSION.
    let version = ("version = \"0.21.8\"", "version = \"0.21.9\"");
    let (changes, plan) = plan_with(vec![version]).await;
    assert_eq!(
        changes,
        updates(&[
            "dagger/daemonset",
            "arc/scale-set-dagger-large",
            "arc/scale-set-dagger-small"
        ]),
        "{plan}"
    );

    // Change the NodePool's instance families: only the NodePool.
    let families = (
        "[engine]",
        "[karpenter.node_pool]\ninstance_families = [\"c6id\", \"c7gd\"]\n\n[engine]",
    );
    let (changes, plan) = plan_with(vec![families]).await;
    assert_eq!(changes, updates(&["karpenter/node-pool"]), "{plan}");

    // AWS: the critical node group's maximum changes in place (UpdateNodegroupConfig); its
    // instance types force a replacement of the node group alone.
    let (changes, plan) = plan_with(vec![("[network]", "[critical_nodes]\nmax = 4\n\n[network]")]).await;
    assert_eq!(changes, updates(&["cluster/critical-nodes"]), "{plan}");
    let (changes, plan) = plan_with(vec![(
        "[network]",
        "[critical_nodes]\ninstance_types = [\"m7g.xlarge\"]\n\n[network]",
    )])
    .await;
    assert_eq!(
        changes,
        vec![("cluster/critical-nodes".to_string(), "replace".to_string())],
        "{plan}"
    );

    // All three apply, and then nothing is left to do.
    env.config(&[max, version, families]);
    let out = blocking(Box::new(|e| e.ok(&["apply", "--yes"]))).await;
    assert!(out.contains("Apply complete"), "{out}");
    let (changes, _) = plan_with(vec![max, version, families]).await;
    assert!(changes.is_empty(), "{changes:?}");

    // A broken invariant is refused before anything is planned, and can be waived by name.
    env.config(&[(
        "[engine]",
        "[engine]\ntolerations = [{ key = \"dagger\", effect = \"NoSchedule\" }]",
    )]);
    let out = blocking(Box::new(|e| {
        let o = e.run(&["plan"]);
        assert_eq!(o.status.code(), Some(1));
        String::from_utf8_lossy(&o.stderr).to_string()
    }))
    .await;
    assert!(out.contains("check `taints-match` failed"), "{out}");
    assert!(out.contains("--waive taints-match"), "{out}");
    // The behaviour check says what it means: the engine lands on no runner node.
    assert!(
        out.contains("check `placement-engine` failed")
            && out.contains("untolerated taint {github-actions-runner: true}"),
        "{out}"
    );
    blocking(Box::new(|e| {
        e.ok(&["plan", "--waive", "taints-match", "--waive", "placement-engine"])
    }))
    .await;

    // The listings below see the stack while it exists (so an empty listing means gone).
    let client = kube::Client::try_from(kube::Config::new(env.kube.parse().unwrap())).unwrap();
    let live = kube_leftovers(client.clone()).await;
    for want in [
        "DaemonSet dagger/dagger-engine",
        "NodePool /runners",
        "EC2NodeClass /runners",
        "AutoscalingRunnerSet arc-runners/dagger-small",
        "Deployment kube-system/karpenter",
        "CustomResourceDefinition /nodepools.karpenter.sh",
    ] {
        assert!(live.iter().any(|o| o == want), "{want} not in {live:?}");
    }
    let live = aws_leftovers(&env.aws).await;
    for want in [
        "eks cluster dagger-ci-sandbox",
        "queue",
        "rule dagger-ci-sandbox-health",
        "role KarpenterNodeRole-dagger-ci-sandbox",
        "nat ",
    ] {
        assert!(live.iter().any(|o| o.starts_with(want)), "{want} not in {live:?}");
    }

    // Destroy: nothing of the stack is left anywhere.
    env.config(&[]);
    let out = blocking(Box::new(|e| e.ok(&["destroy", "--yes"]))).await;
    assert!(out.contains("Destroy complete"), "{out}");
    let left = aws_leftovers(&env.aws).await;
    assert!(left.is_empty(), "left in the AWS emulator: {left:?}");
    let left = kube_leftovers_settled(client).await;
    assert!(left.is_empty(), "left in the simulator: {left:?}");
    sim.shutdown().await;
}

/// The original design's shape: legacy ARC (summerwind, with cert-manager), the legacy
/// engine layout, and Karpenter through IRSA.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_original_design_applies_and_goes_away() {
    let (sim, env) = start_sandbox(100).await;
    let env = std::sync::Arc::new(env);
    let e = env.clone();
    tokio::task::spawn_blocking(move || {
        e.config(&[
            ("[arc]", "[arc]\nmode = \"legacy\"\nlegacy_repositories = [\"app\"]"),
            (
                "[engine]",
                "[karpenter]\nidentity = \"irsa\"\n\n[engine]\nlayout = \"legacy\"",
            ),
        ]);
        let out = e.ok(&["apply", "--yes"]);
        assert!(out.contains("Apply complete"), "{out}");
        let (changes, _) = e.plan();
        assert!(changes.is_empty(), "{changes:?}");
        // Every chart of legacy mode reads back as applied: no drift.
        let out = e.ok(&["plan", "--refresh"]);
        assert!(out.contains("No changes"), "{out}");
    })
    .await
    .unwrap();
    let client = kube::Client::try_from(kube::Config::new(env.kube.parse().unwrap())).unwrap();
    // cert-manager (its controller, webhook and cainjector) and the legacy ARC controller
    // run on the critical nodes.
    let critical = critical_nodes(&client).await;
    for selector in [
        "app.kubernetes.io/instance=cert-manager,app.kubernetes.io/component!=startupapicheck",
        "k8s-app=kube-dns",
    ] {
        running_on(&client, selector, &critical).await;
    }
    let live = kube_leftovers(client.clone()).await;
    for want in [
        "RunnerDeployment arc-runners/dagger-small",
        "HorizontalRunnerAutoscaler arc-runners/dagger-large",
        "Deployment cert-manager/cert-manager-webhook",
        "Certificate actions-runner-system/actions-runner-controller-serving-cert",
        "DaemonSet dagger/dagger-engine",
    ] {
        assert!(live.iter().any(|o| o == want), "{want} not in {live:?}");
    }
    let e = env.clone();
    tokio::task::spawn_blocking(move || e.ok(&["destroy", "--yes"]))
        .await
        .unwrap();
    let left = aws_leftovers(&env.aws).await;
    assert!(left.is_empty(), "left in the AWS emulator: {left:?}");
    let left = kube_leftovers_settled(client).await;
    assert!(left.is_empty(), "left in the simulator: {left:?}");
    sim.shutdown().await;
}

/// Sends `body` to the emulator's `path` (HTTP/1.1 over loopback); the answer's status line
/// and body.
fn post_json(url: &str, method: &str, path: &str, body: &str) -> String {
    use std::io::{Read, Write};
    let addr = url.trim_start_matches("http://").trim_end_matches('/');
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// EC2 objects carrying the same `spar:address` tag: what a create retried after it had
/// succeeded would leave.
async fn duplicated_ec2_objects(url: &str) -> Vec<String> {
    let config = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(url)
        .region(Region::new("us-east-1"))
        .credentials_provider(aws_sdk_ec2::config::Credentials::new(
            "testing", "testing", None, None, "e2e",
        ))
        .load()
        .await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let mut seen: std::collections::BTreeMap<String, usize> = Default::default();
    let resp = ec2.describe_tags().send().await.unwrap();
    for t in resp.tags() {
        if t.key() == Some("spar:address") {
            *seen
                .entry(format!(
                    "{} {}",
                    t.resource_type().map(|r| r.as_str()).unwrap_or("?"),
                    t.value().unwrap_or("?")
                ))
                .or_default() += 1;
        }
    }
    assert!(!seen.is_empty(), "the stack's EC2 objects carry spar:address");
    seen.into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(k, n)| format!("{k} x{n}"))
        .collect()
}

/// The whole flagship apply and destroy while 10% of every AWS call of every service is
/// answered with that service's throttling error: both succeed, each summary says how many
/// calls were retried, nothing is duplicated, nothing is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_flagship_stack_applies_and_goes_away_under_a_throttling_cloud() {
    let (sim, env) = start_sandbox(100).await;
    let env = std::sync::Arc::new(env);
    let answer = post_json(
        &env.aws,
        "POST",
        "/sandbox-api/faults",
        r#"[{"service": "*", "action": "*", "code": "throttling", "rate": 0.1, "seed": 12}]"#,
    );
    assert!(
        answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.0 200"),
        "{answer}"
    );
    let retried = |out: &str| -> u64 {
        let line = out
            .lines()
            .find(|l| l.contains("operations done"))
            .unwrap_or_else(|| panic!("{out}"));
        eprintln!("under 10% throttling: {line}");
        line.split(", ")
            .find_map(|p| p.strip_suffix(" calls retried.").or(p.strip_suffix(" call retried.")))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let e = env.clone();
    let out = tokio::task::spawn_blocking(move || {
        e.config(&[]);
        e.ok(&["apply", "--yes"])
    })
    .await
    .unwrap();
    assert!(out.contains("Apply complete"), "{out}");
    assert!(retried(&out) > 0, "the summary says how many calls were retried: {out}");
    let faults = post_json(&env.aws, "GET", "/sandbox-api/faults", "");
    assert!(!faults.contains("\"fired\": 0"), "the faults fired: {faults}");
    let dups = duplicated_ec2_objects(&env.aws).await;
    assert!(dups.is_empty(), "duplicated: {dups:?}");

    // With the cloud quiet again, what is there is exactly what the state says.
    post_json(&env.aws, "DELETE", "/sandbox-api/faults", "");
    let e = env.clone();
    let out = tokio::task::spawn_blocking(move || e.ok(&["plan", "--refresh"]))
        .await
        .unwrap();
    assert!(out.contains("No changes"), "{out}");

    // Destroy under the same throttling.
    post_json(
        &env.aws,
        "POST",
        "/sandbox-api/faults",
        r#"[{"service": "*", "action": "*", "code": "throttling", "rate": 0.1, "seed": 34}]"#,
    );
    let e = env.clone();
    let out = tokio::task::spawn_blocking(move || e.ok(&["destroy", "--yes"]))
        .await
        .unwrap();
    assert!(out.contains("Destroy complete"), "{out}");
    assert!(retried(&out) > 0, "{out}");
    post_json(&env.aws, "DELETE", "/sandbox-api/faults", "");
    let left = aws_leftovers(&env.aws).await;
    assert!(left.is_empty(), "left in the AWS emulator: {left:?}");
    let client = kube::Client::try_from(kube::Config::new(env.kube.parse().unwrap())).unwrap();
    let left = kube_leftovers_settled(client).await;
    assert!(left.is_empty(), "left in the simulator: {left:?}");
    sim.shutdown().await;
}

/// An EKS client for the emulator.
async fn eks_client(url: &str) -> aws_sdk_eks::Client {
    let config = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(url)
        .region(Region::new("us-east-1"))
        .credentials_provider(aws_sdk_eks::config::Credentials::new(
            "testing", "testing", None, None, "e2e",
        ))
        .load()
        .await;
    aws_sdk_eks::Client::new(&config)
}

/// (cluster version, critical node group version, each add-on's version and EKS's default
/// for the cluster's version).
async fn eks_versions(url: &str) -> (String, String, Vec<(String, String, String)>) {
    let eks = eks_client(url).await;
    let cluster = "dagger-ci-sandbox";
    let c = eks.describe_cluster().name(cluster).send().await.unwrap();
    let version = c.cluster().and_then(|c| c.version()).unwrap().to_string();
    let ng = eks
        .describe_nodegroup()
        .cluster_name(cluster)
        .nodegroup_name("critical")
        .send()
        .await
        .unwrap();
    let ng_version = ng.nodegroup().and_then(|n| n.version()).unwrap().to_string();
    let mut addons = Vec::new();
    for name in ["vpc-cni", "kube-proxy", "eks-pod-identity-agent", "coredns"] {
        let a = eks
            .describe_addon()
            .cluster_name(cluster)
            .addon_name(name)
            .send()
            .await
            .unwrap();
        let running = a.addon().and_then(|a| a.addon_version()).unwrap().to_string();
        let versions = eks
            .describe_addon_versions()
            .addon_name(name)
            .kubernetes_version(&version)
            .send()
            .await
            .unwrap();
        let default = versions
            .addons()
            .iter()
            .flat_map(|a| a.addon_versions())
            .find(|v| {
                v.compatibilities()
                    .iter()
                    .any(|c| c.cluster_version() == Some(version.as_str()) && c.default_version())
            })
            .and_then(|v| v.addon_version())
            .unwrap()
            .to_string();
        addons.push((name.to_string(), running, default));
    }
    (version, ng_version, addons)
}

/// `cluster.version` 1.34 -> 1.35: the plan shows the control plane's step, then the
/// add-ons (EKS's default for 1.35), then the critical node group (following the cluster's
/// version); an apply killed (SIGKILL) while the control plane is UPDATING is resumed by the
/// next apply, which brings every part to 1.35; a downgrade is refused at plan time.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_eks_upgrade_goes_in_order_and_a_killed_one_resumes() {
    use std::os::unix::process::ExitStatusExt as _;

    let (sim, env) = start_sandbox(100).await;
    let env = std::sync::Arc::new(env);
    let e = env.clone();
    tokio::task::spawn_blocking(move || {
        e.config(&[("version = \"1.35\"", "version = \"1.34\"")]);
        let out = e.ok(&["apply", "--yes"]);
        assert!(out.contains("Apply complete"), "{out}");
    })
    .await
    .unwrap();
    let (v, ng, addons) = eks_versions(&env.aws).await;
    assert_eq!((v.as_str(), ng.as_str()), ("1.34", "1.34"));
    for (name, running, default) in &addons {
        assert_eq!(running, default, "{name} runs EKS's default for 1.34");
    }
    let old_addons = addons;

    // The upgrade's plan, in the order it runs.
    let e = env.clone();
    let plan = tokio::task::spawn_blocking(move || {
        e.config(&[]);
        let (changes, plan) = e.plan();
        assert_eq!(
            changes,
            updates(&[
                "cluster/eks",
                "cluster/addon-vpc-cni",
                "cluster/addon-kube-proxy",
                "cluster/addon-eks-pod-identity-agent",
                "cluster/critical-nodes",
                "cluster/addon-coredns",
            ]),
            "{plan}"
        );
        let text = e.ok(&["plan"]);
        assert!(
            text.contains("control plane: Kubernetes 1.34 -> 1.35 (1 update, one minor version at a time)"),
            "{text}"
        );
        assert!(
            text.contains("node group `critical` runs 1.34: within 3 minor versions of every step"),
            "{text}"
        );
        plan
    })
    .await
    .unwrap();
    let at = |address: &str| {
        plan["changes"]
            .as_array()
            .unwrap()
            .iter()
            .position(|c| c["address"] == address)
            .unwrap_or_else(|| panic!("{address} not in the plan"))
    };
    assert!(at("cluster/eks") < at("cluster/addon-kube-proxy"));
    assert!(at("cluster/addon-kube-proxy") < at("cluster/critical-nodes"));
    assert!(at("cluster/addon-vpc-cni") < at("cluster/critical-nodes"));
    assert!(at("cluster/critical-nodes") < at("cluster/addon-coredns"));

    // Every update is held 3 s; the apply is killed while the control plane is UPDATING.
    post_json(&env.aws, "POST", "/sandbox-api/config", r#"{"update_seconds": 3}"#);
    let mut child = {
        let e = env.clone();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dagger-ci"));
        cmd.current_dir(root())
            .args(["--stack", "sandbox", "--state-dir"])
            .arg(e.dir.path().join("state"))
            .args(["apply", "--yes"])
            .env("SPAR_CONFIG_DIR", e.dir.path().join("config"))
            .env("AWS_ENDPOINT_URL", &e.aws)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("SPAR_KUBE_SANDBOX_URL", &e.kube)
            .env("NO_COLOR", "1")
            .env_remove("CARGO_MANIFEST_DIR")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd.spawn().unwrap()
    };
    let eks = eks_client(&env.aws).await;
    let started = std::time::Instant::now();
    loop {
        let c = eks.describe_cluster().name("dagger-ci-sandbox").send().await.unwrap();
        let status = c.cluster().and_then(|c| c.status()).map(|s| s.as_str().to_string());
        if status.as_deref() == Some("UPDATING") {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the apply ended before the control plane was seen UPDATING"
        );
        assert!(
            started.elapsed().as_secs() < 120,
            "the control plane never went UPDATING"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        status.signal(),
        Some(9),
        "the kill landed on a running apply: {status:?}"
    );
    let (v, ng, _) = eks_versions(&env.aws).await;
    assert_eq!(ng, "1.34", "killed before the node group moved (cluster at {v})");

    // The next apply resumes: it finishes what was left, in the same order.
    let e = env.clone();
    tokio::task::spawn_blocking(move || {
        let out = e.ok(&["apply", "--yes"]);
        assert!(out.contains("Apply complete"), "{out}");
        let (changes, _) = e.plan();
        assert!(changes.is_empty(), "{changes:?}");
    })
    .await
    .unwrap();
    let (v, ng, addons) = eks_versions(&env.aws).await;
    assert_eq!((v.as_str(), ng.as_str()), ("1.35", "1.35"));
    for ((name, running, default), (_, old, _)) in addons.iter().zip(&old_addons) {
        assert_eq!(running, default, "{name} runs EKS's default for 1.35");
        if name == "kube-proxy" {
            assert_ne!(running, old, "kube-proxy follows the Kubernetes minor version");
        }
    }

    // A downgrade is refused before anything changes.
    post_json(&env.aws, "POST", "/sandbox-api/config", r#"{"update_seconds": 0}"#);
    let e = env.clone();
    tokio::task::spawn_blocking(move || {
        e.config(&[("version = \"1.35\"", "version = \"1.34\"")]);
        let out = e.run(&["plan"]);
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains("EKS cannot move a cluster from Kubernetes 1.35 to 1.34"),
            "{err}"
        );
        e.config(&[]);
        e.ok(&["destroy", "--yes"]);
    })
    .await
    .unwrap();
    let left = aws_leftovers(&env.aws).await;
    assert!(left.is_empty(), "left in the AWS emulator: {left:?}");
    sim.shutdown().await;
}

/// Accepts TCP connections on a loopback port and counts them: an AWS endpoint that proves
/// no AWS call was made (every SDK call would connect here first).
fn connection_counter() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(conn);
        }
    });
    (url, count)
}

/// The stack on a cluster from a kubeconfig (the simulator alone, with nodes of its own,
/// two of them labelled and tainted as the user's runner nodes): apply declares only the
/// in-cluster parts, makes no AWS call and needs no AWS credentials; the engine runs on
/// the runner nodes only, the ARC controller on the ordinary node, a queued runner next to
/// an engine; a second plan shows no changes; destroy leaves nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cluster_from_a_kubeconfig_runs_the_in_cluster_parts_without_aws() {
    let sim = Simulator::start(SimConfig {
        port: 0,
        ready_delay: std::time::Duration::from_millis(200),
        nodes: 3,
        node_instance_type: "m6id.4xlarge".into(),
        ..SimConfig::default()
    })
    .await
    .expect("the simulator starts (run sandbox/setup first: it needs the schemas)");
    let client = kube::Client::try_from(kube::Config::new(sim.url().parse().unwrap())).unwrap();
    // What `kubectl label node` and `kubectl taint node` do to the user's runner nodes.
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
    let runner_nodes = ["sim-node-2", "sim-node-3"];
    for n in runner_nodes {
        let patch = serde_json::json!({
            "metadata": {"labels": {"ci.example.com/pool": "runners"}},
            "spec": {"taints": [{"key": "ci.example.com/runners", "value": "true", "effect": "NoSchedule"}]},
        });
        nodes
            .patch(n, &kube::api::PatchParams::default(), &kube::api::Patch::Merge(patch))
            .await
            .unwrap();
    }

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("kubeconfig"), sim.kubeconfig()).unwrap();
    let config_dir = dir.path().join("config");
    std::fs::create_dir_all(&config_dir).unwrap();
    let text = std::fs::read_to_string(root().join("stacks/dagger-ci/config/sandbox-kubeconfig.toml")).unwrap();
    let from = "path = \"sandbox/.run/kubeconfig\"";
    assert!(text.contains(from));
    let text = text.replace(from, &format!("path = {:?}", dir.path().join("kubeconfig")));
    std::fs::write(config_dir.join("sandbox-kubeconfig.toml"), text).unwrap();
    let (aws, aws_connections) = connection_counter();
    // The counter counts: one connection of its own, taken back off.
    drop(std::net::TcpStream::connect(aws.trim_start_matches("http://")).unwrap());
    eventually("the counter saw a connection", || async {
        match aws_connections.load(std::sync::atomic::Ordering::SeqCst) {
            1 => Ok(()),
            n => Err(format!("{n} connections")),
        }
    })
    .await;
    aws_connections.store(0, std::sync::atomic::Ordering::SeqCst);
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let run = move |args: &[&str]| -> String {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dagger-ci"));
        cmd.current_dir(root())
            .args(["--stack", "sandbox-kubeconfig", "--state-dir"])
            .arg(dir.path().join("state"))
            .args(args)
            .env("SPAR_CONFIG_DIR", &config_dir)
            // No credentials anywhere (environment, profile files, instance metadata), and
            // an endpoint that counts any AWS call that is tried anyway.
            .env("HOME", &home)
            .env("AWS_ENDPOINT_URL", &aws)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("NO_COLOR", "1")
            .env_remove("CARGO_MANIFEST_DIR");
        for var in [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_PROFILE",
            "AWS_REGION",
            "AWS_DEFAULT_REGION",
            "SPAR_KUBE_SANDBOX_URL",
        ] {
            cmd.env_remove(var);
        }
        let out = cmd.output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "`{}` failed:\n{text}", args.join(" "));
        text
    };
    let run = std::sync::Arc::new(run);
    let blocking = |args: &'static [&'static str]| {
        let run = run.clone();
        async move { tokio::task::spawn_blocking(move || run(args)).await.unwrap() }
    };

    let out = blocking(&["apply", "--yes"]).await;
    assert!(out.contains("Apply complete"), "{out}");
    let outputs: Value = serde_json::from_str(&blocking(&["output", "--json"]).await).unwrap();
    assert!(outputs.get("cluster_endpoint").is_none(), "{outputs}");
    assert_eq!(
        outputs["runner_scale_sets"],
        serde_json::json!(["dagger-small", "dagger-large"])
    );

    // The engine on both runner nodes and nowhere else; the controller on the ordinary one.
    let runner_nodes: Vec<String> = runner_nodes.iter().map(|n| n.to_string()).collect();
    running_on(&client, "name=dagger-engine", &runner_nodes).await;
    let engines = pods(&client, "name=dagger-engine").await;
    assert_eq!(
        engines.len(),
        2,
        "one engine per runner node: {}",
        Value::from(engines.clone())
    );
    running_on(
        &client,
        "app.kubernetes.io/name=gha-rs-controller",
        &["sim-node-1".to_string()],
    )
    .await;
    // dagger-large keeps one runner (minRunners 1): the sandbox's ARC makes it; for
    // dagger-small, the pod ARC makes for a queued job.
    make_runner_pod(&client, "dagger-small").await;
    for group in ["dagger-small", "dagger-large"] {
        runner_next_to_engine_on(&client, group, "ci.example.com/pool=runners").await;
    }

    let plan = blocking(&["plan"]).await;
    assert!(plan.contains("No changes"), "{plan}");
    let out = blocking(&["destroy", "--yes"]).await;
    assert!(out.contains("Destroy complete"), "{out}");
    assert_eq!(
        aws_connections.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "an AWS endpoint was called"
    );
    let left = kube_leftovers_but_kept_crds(client.clone()).await;
    assert!(left.is_empty(), "left in the simulator: {left:?}");
    sim.shutdown().await;
}

/// What eksctl would have made before the stack (boto3 against the sandbox's AWS emulator):
/// a VPC with two subnets tagged for Karpenter's discovery, the cluster (1.35,
/// `API_AND_CONFIG_MAP`), its `system` node group of two m6i.xlarge and the Pod Identity
/// agent add-on, each waited for until ACTIVE. `check` instead prints what exists of them.
const EKSCTL_LIKE: &str = r#"
import json, os, sys, time
import boto3
name, mode = sys.argv[1], sys.argv[2]
kw = dict(region_name="us-east-1", endpoint_url=os.environ["AWS_ENDPOINT_URL"],
          aws_access_key_id="testing", aws_secret_access_key="testing")
ec2, iam, eks = (boto3.client(s, **kw) for s in ("ec2", "iam", "eks"))
def until_active(describe, what):
    deadline = time.time() + 120
    while describe()["status"] != "ACTIVE":
        if time.time() > deadline:
            sys.exit(f"{what} never became ACTIVE")
        time.sleep(0.2)
def private_table():
    return ec2.describe_route_tables(Filters=[{"Name": "tag:Name", "Values": [f"{name}-private"]}])["RouteTables"][0]
if mode == "create":
    # eksctl's layout: public subnets routing to an internet gateway, a NAT gateway in one,
    # private subnets (the nodes', tagged for Karpenter's discovery) routing to it.
    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    def table(label, route):
        t = ec2.create_route_table(VpcId=vpc, TagSpecifications=[{"ResourceType": "route-table", "Tags": [{"Key": "Name", "Value": f"{name}-{label}"}]}])["RouteTable"]["RouteTableId"]
        ec2.create_route(RouteTableId=t, DestinationCidrBlock="0.0.0.0/0", **route)
        return t
    public_rt = table("public", {"GatewayId": igw})
    public = []
    for i, az in enumerate(["us-east-1a", "us-east-1b"]):
        sn = ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.42.{64 + i}.0/24", AvailabilityZone=az)["Subnet"]["SubnetId"]
        ec2.modify_subnet_attribute(SubnetId=sn, MapPublicIpOnLaunch={"Value": True})
        ec2.associate_route_table(RouteTableId=public_rt, SubnetId=sn)
        public.append(sn)
    eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=public[0], AllocationId=eip)["NatGateway"]["NatGatewayId"]
    private_rt = table("private", {"NatGatewayId": nat})
    subnets = []
    for i, az in enumerate(["us-east-1a", "us-east-1b"]):
        sn = ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.42.{i}.0/24", AvailabilityZone=az)["Subnet"]["SubnetId"]
        ec2.create_tags(Resources=[sn], Tags=[{"Key": "karpenter.sh/discovery", "Value": name}])
        ec2.associate_route_table(RouteTableId=private_rt, SubnetId=sn)
        subnets.append(sn)
    def role(n, service, policies):
        doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]}
        arn = iam.create_role(RoleName=n, AssumeRolePolicyDocument=json.dumps(doc))["Role"]["Arn"]
        for p in policies:
            iam.attach_role_policy(RoleName=n, PolicyArn=f"arn:aws:iam::aws:policy/{p}")
        return arn
    node_policies = ["AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryReadOnly", "AmazonEKS_CNI_Policy"]
    eks.create_cluster(name=name, version="1.35", roleArn=role(f"eksctl-{name}-cluster", "eks.amazonaws.com", ["AmazonEKSClusterPolicy"]),
                       resourcesVpcConfig={"subnetIds": subnets},
                       accessConfig={"authenticationMode": "API_AND_CONFIG_MAP"})
    until_active(lambda: eks.describe_cluster(name=name)["cluster"], "the cluster")
    # Karpenter's guide for an existing cluster: tag the cluster security group (the nodes'
    # group) for discovery, as its subnets are.
    cluster_sg = eks.describe_cluster(name=name)["cluster"]["resourcesVpcConfig"]["clusterSecurityGroupId"]
    ec2.create_tags(Resources=[cluster_sg], Tags=[{"Key": "karpenter.sh/discovery", "Value": name}])
    eks.create_nodegroup(clusterName=name, nodegroupName="system", nodeRole=role(f"eksctl-{name}-nodes", "ec2.amazonaws.com", node_policies),
                         subnets=subnets, instanceTypes=["m6i.xlarge"], amiType="AL2023_x86_64_STANDARD",
                         scalingConfig={"minSize": 2, "maxSize": 3, "desiredSize": 2})
    until_active(lambda: eks.describe_nodegroup(clusterName=name, nodegroupName="system")["nodegroup"], "the node group")
    eks.create_addon(clusterName=name, addonName="eks-pod-identity-agent")
    until_active(lambda: eks.describe_addon(clusterName=name, addonName="eks-pod-identity-agent")["addon"], "the add-on")
    print(json.dumps({"vpc": vpc, "subnets": subnets}))
elif mode == "drop-nat-route":
    ec2.delete_route(RouteTableId=private_table()["RouteTableId"], DestinationCidrBlock="0.0.0.0/0")
    print(json.dumps({"dropped": True}))
elif mode == "restore-nat-route":
    nat = ec2.describe_nat_gateways(Filters=[{"Name": "state", "Values": ["available"]}])["NatGateways"][0]["NatGatewayId"]
    ec2.create_route(RouteTableId=private_table()["RouteTableId"], DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
    print(json.dumps({"restored": nat}))
elif mode.startswith("scale="):
    n = int(mode.split("=")[1])
    eks.update_nodegroup_config(clusterName=name, nodegroupName="system",
                                scalingConfig={"minSize": n, "maxSize": 3, "desiredSize": n})
    until_active(lambda: eks.describe_nodegroup(clusterName=name, nodegroupName="system")["nodegroup"], "the node group")
    print(json.dumps({"desired": n}))
else:
    print(json.dumps({
        "cluster": eks.describe_cluster(name=name)["cluster"]["status"],
        "nodegroup": eks.describe_nodegroup(clusterName=name, nodegroupName="system")["nodegroup"]["status"],
        "addon": eks.describe_addon(clusterName=name, addonName="eks-pod-identity-agent")["addon"]["status"],
        "vpcs": [v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]],
        "subnets": [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]],
        "roles": sorted(r["RoleName"] for r in iam.list_roles()["Roles"]),
    }))
"#;

fn eksctl_like(aws: &str, mode: &str) -> Value {
    let out = Command::new(root().join(".venv/bin/python"))
        .args(["-c", EKSCTL_LIKE, "dagger-ci-existing", mode])
        .env("AWS_ENDPOINT_URL", aws)
        .output()
        .expect("the sandbox's Python (run sandbox/setup first)");
    assert!(
        out.status.success(),
        "boto3 {mode}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The stack on an EKS cluster that exists already, made first with boto3 as eksctl
/// would: apply declares Karpenter and what goes on top; the controllers run on the
/// cluster's own node group and a runner next to an engine on a node the sandbox's
/// Karpenter launched in the tagged subnets; a second plan shows no changes; destroy
/// removes only the stack's objects: the cluster, its node group, add-on, VPC, subnets and
/// roles are all still there, untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_existing_cluster_gets_karpenter_and_the_ci_on_top_and_keeps_itself() {
    let (sim, env) = start_sandbox(200).await;
    let aws = env.aws.clone();
    let made = tokio::task::spawn_blocking(move || eksctl_like(&aws, "create"))
        .await
        .unwrap();
    let aws = env.aws.clone();
    let before = tokio::task::spawn_blocking(move || eksctl_like(&aws, "check"))
        .await
        .unwrap();
    assert_eq!(before["cluster"], "ACTIVE", "{before}");

    let text = std::fs::read_to_string(root().join("stacks/dagger-ci/config/sandbox-existing.toml")).unwrap();
    std::fs::create_dir_all(env.dir.path().join("config")).unwrap();
    std::fs::write(env.dir.path().join("config/sandbox-existing.toml"), text).unwrap();
    let env = std::sync::Arc::new(env);
    let run = |args: &'static [&'static str]| {
        let env = env.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let out = env.run_stack("sandbox-existing", args);
                let text = format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                assert!(out.status.success(), "`{}` failed:\n{text}", args.join(" "));
                text
            })
            .await
            .unwrap()
        }
    };

    let plan = run(&["plan"]).await;
    assert!(plan.contains("<= eks") && plan.contains("<= critical-nodes"), "{plan}");
    assert!(
        plan.contains("cluster/network/") && plan.contains("<= routes") && plan.contains("<= security-group-rules"),
        "the existing VPC's network is looked up: {plan}"
    );
    let out = run(&["apply", "--yes"]).await;
    assert!(out.contains("Apply complete"), "{out}");

    let client = kube::Client::try_from(kube::Config::new(env.kube.parse().unwrap())).unwrap();
    let system = eventually("the system node group's nodes joined", || async {
        let nodes = list(
            &client,
            &resource("", "v1", "Node", "nodes"),
            "eks.amazonaws.com/nodegroup=system",
        )
        .await;
        match nodes.len() {
            2 => Ok(nodes
                .iter()
                .map(|n| n["metadata"]["name"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()),
            n => Err(format!("{n} nodes")),
        }
    })
    .await;
    for selector in [
        "app.kubernetes.io/name=karpenter",
        "app.kubernetes.io/name=gha-rs-controller",
    ] {
        running_on(&client, selector, &system).await;
    }
    make_runner_pod(&client, "dagger-small").await;
    for group in ["dagger-small", "dagger-large"] {
        runner_next_to_engine(&client, group).await;
    }
    let plan = run(&["plan"]).await;
    assert!(plan.contains("No changes"), "{plan}");

    // The node group shrinks to one node outside spar: the next plan reads it and the
    // lookup check refuses to go on; grown back, the plan passes again.
    let aws = env.aws.clone();
    tokio::task::spawn_blocking(move || eksctl_like(&aws, "scale=1"))
        .await
        .unwrap();
    let e = env.clone();
    let refused = tokio::task::spawn_blocking(move || e.run_stack("sandbox-existing", &["plan"]))
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success()
            && stderr.contains("check `existing-cluster` failed: the node group `system` has 1 node(s)"),
        "{stderr}"
    );
    let aws = env.aws.clone();
    tokio::task::spawn_blocking(move || eksctl_like(&aws, "scale=2"))
        .await
        .unwrap();
    let plan = run(&["plan"]).await;
    assert!(plan.contains("No changes"), "{plan}");

    // The private subnets' NAT route is deleted outside spar: the runner nodes Karpenter
    // launches there lose the internet, and the next plan, reading the VPC, says so.
    let aws = env.aws.clone();
    tokio::task::spawn_blocking(move || eksctl_like(&aws, "drop-nat-route"))
        .await
        .unwrap();
    let e = env.clone();
    let refused = tokio::task::spawn_blocking(move || e.run_stack("sandbox-existing", &["plan"]))
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success()
            && stderr.contains("check `existing-network-paths` failed")
            && stderr.contains("internet tcp/443 from NodePool"),
        "{stderr}"
    );
    let aws = env.aws.clone();
    tokio::task::spawn_blocking(move || eksctl_like(&aws, "restore-nat-route"))
        .await
        .unwrap();
    let plan = run(&["plan"]).await;
    assert!(plan.contains("No changes"), "{plan}");

    let out = run(&["destroy", "--yes"]).await;
    assert!(out.contains("Destroy complete"), "{out}");
    let aws = env.aws.clone();
    let after = tokio::task::spawn_blocking(move || eksctl_like(&aws, "check"))
        .await
        .unwrap();
    for (what, status) in [("cluster", "ACTIVE"), ("nodegroup", "ACTIVE"), ("addon", "ACTIVE")] {
        assert_eq!(after[what], status, "the existing {what} is untouched: {after}");
    }
    assert!(
        after["vpcs"].as_array().unwrap().contains(&made["vpc"]),
        "the existing VPC stays: {after}"
    );
    for sn in made["subnets"].as_array().unwrap() {
        assert!(
            after["subnets"].as_array().unwrap().contains(sn),
            "subnet {sn} stays: {after}"
        );
    }
    let roles: Vec<&str> = after["roles"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        roles,
        ["eksctl-dagger-ci-existing-cluster", "eksctl-dagger-ci-existing-nodes"],
        "the stack's roles went, the existing ones stayed"
    );
    let left: Vec<String> = kube_leftovers(client.clone())
        .await
        .into_iter()
        .filter(|o| o.contains("karpenter") || o.contains("dagger") || o.contains("arc-"))
        .filter(|o| !o.starts_with("CustomResourceDefinition /"))
        .collect();
    assert!(left.is_empty(), "the stack's objects left in the simulator: {left:?}");
    sim.shutdown().await;
}
