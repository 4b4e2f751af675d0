//! The cluster that runs: nodes, workload controllers, the scheduler, kubelets, Karpenter,
//! and nodes joining from node groups. Each test fails if the behaviour it names is turned
//! off (no pods made, no binding, no scheduler message, no launch, no consolidation).

mod common;

use common::{Ans, Sim, daemonset, deployment};
use serde_json::{Value, json};
use spar_kube_sim::SimConfig;
use spar_kube_sim::cluster::nodes::{NodeSpec, node_object};
use spar_scheduling::instance_types::instance_type;
use std::collections::BTreeMap;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

async fn start(nodes: u32) -> Sim {
    Sim::start_with(SimConfig {
        nodes,
        ready_delay: Duration::from_millis(100),
        ..SimConfig::default()
    })
    .await
}

/// Registers a node as a kubelet would: create, then its status.
async fn add_node(sim: &Sim, name: &str, instance: &str, labels: &[(&str, &str)], taints: Vec<Value>) {
    let (obj, status) = node_object(&NodeSpec {
        name: name.into(),
        instance_type: instance_type(instance).expect("type"),
        zone: "us-east-1a",
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        taints,
        source: "test".into(),
        k8s_version: "1.35",
        instance_id: format!("i-{name}"),
        internal_ip: "10.0.9.9".into(),
    });
    let a = sim.post("/api/v1/nodes", &obj).await;
    assert_eq!(a.code, 201, "{}", a.body);
    let mut full = a.body.clone();
    full["status"] = status;
    let a = sim.put(&format!("/api/v1/nodes/{name}/status"), &full).await;
    assert_eq!(a.code, 200, "{}", a.body);
}

async fn pods(sim: &Sim, ns: &str, selector: &str) -> Vec<Value> {
    let a = sim
        .get(&format!("/api/v1/namespaces/{ns}/pods?labelSelector={selector}"))
        .await;
    a.body["items"].as_array().cloned().unwrap_or_default()
}

async fn wait_pods(sim: &Sim, ns: &str, selector: &str, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let p = pods(sim, ns, selector).await;
        if pred(&p) {
            return p;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "pods {selector} never got there: {}",
            json!(p)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn phase(p: &Value) -> &str {
    p["status"]["phase"].as_str().unwrap_or("")
}

fn scheduled(p: &Value) -> Option<&Value> {
    p["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "PodScheduled")
}

fn critical_taint() -> Value {
    json!({"key": "CriticalAddonsOnly", "value": "true", "effect": "NoSchedule"})
}

#[tokio::test]
async fn static_nodes_report_capacity_allocatable_and_ready() {
    let sim = start(2).await;
    let a = sim.get("/api/v1/nodes").await;
    let items = a.body["items"].as_array().expect("items");
    assert_eq!(items.len(), 2, "{}", a.body);
    let n = &items[0];
    assert_eq!(
        n["metadata"]["labels"]["node.kubernetes.io/instance-type"],
        "m6i.2xlarge"
    );
    assert_eq!(n["status"]["capacity"]["cpu"], "8");
    assert_eq!(n["status"]["allocatable"]["cpu"], "7910m");
    let ready = n["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap();
    assert_eq!(ready["status"], "True");
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn a_deployment_makes_a_replicaset_whose_pods_are_bound_and_run() {
    let sim = start(2).await;
    let a = sim
        .post(
            "/apis/apps/v1/namespaces/default/deployments",
            &deployment("web", 3, "nginx:1.27"),
        )
        .await;
    assert_eq!(a.code, 201, "{}", a.body);
    let ps = wait_pods(&sim, "default", "app=web", |ps| {
        ps.len() == 3 && ps.iter().all(|p| phase(p) == "Running")
    })
    .await;
    for p in &ps {
        let node = p["spec"]["nodeName"].as_str().expect("bound");
        assert!(node.starts_with("sim-node-"), "{node}");
        assert_eq!(p["metadata"]["ownerReferences"][0]["kind"], "ReplicaSet");
        assert!(p["metadata"]["labels"]["pod-template-hash"].is_string());
        assert!(p["status"]["podIP"].is_string());
    }
    // spread: LeastAllocated puts them on both nodes
    let nodes: std::collections::BTreeSet<&str> = ps.iter().map(|p| p["spec"]["nodeName"].as_str().unwrap()).collect();
    assert_eq!(nodes.len(), 2, "{nodes:?}");
    let d = sim
        .wait_for("/apis/apps/v1/namespaces/default/deployments/web", WAIT, |a| {
            a.body["status"]["availableReplicas"] == 3
        })
        .await;
    assert_eq!(d.body["status"]["updatedReplicas"], 3);
    // deleting the deployment takes the replica set and the pods with it
    let a = sim.delete("/apis/apps/v1/namespaces/default/deployments/web").await;
    assert_eq!(a.code, 200);
    wait_pods(&sim, "default", "app=web", |ps| ps.is_empty()).await;
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn pods_no_node_tolerates_stay_pending_with_the_scheduler_message_and_run_once_tolerated() {
    let sim = start(0).await;
    for i in 1..=3 {
        add_node(&sim, &format!("critical-{i}"), "m6i.large", &[], vec![critical_taint()]).await;
    }
    let a = sim
        .post(
            "/apis/apps/v1/namespaces/default/deployments",
            &deployment("app", 2, "nginx:1.27"),
        )
        .await;
    assert_eq!(a.code, 201);
    let ps = wait_pods(&sim, "default", "app=app", |ps| {
        ps.len() == 2 && ps.iter().all(|p| scheduled(p).is_some())
    })
    .await;
    for p in &ps {
        let c = scheduled(p).unwrap();
        assert_eq!(c["status"], "False");
        assert_eq!(c["reason"], "Unschedulable");
        assert_eq!(
            c["message"],
            "0/3 nodes are available: 3 node(s) had untolerated taint {CriticalAddonsOnly: true}."
        );
        assert_eq!(phase(p), "Pending");
        assert!(p["spec"]["nodeName"].is_null());
    }
    // never available while they cannot schedule
    tokio::time::sleep(Duration::from_millis(400)).await;
    let d = sim.get("/apis/apps/v1/namespaces/default/deployments/app").await;
    assert!(
        d.body["status"].get("availableReplicas").is_none(),
        "{}",
        d.body["status"]
    );
    assert_eq!(d.body["status"]["conditions"][0]["status"], "False");

    // tolerate the taint: a new replica set whose pods run; the old one goes to 0
    let mut fixed = deployment("app", 2, "nginx:1.27");
    fixed["spec"]["template"]["spec"]["tolerations"] = json!([{"key": "CriticalAddonsOnly", "operator": "Exists"}]);
    let a = sim
        .apply("/apis/apps/v1/namespaces/default/deployments/app", "test", true, &fixed)
        .await;
    assert_eq!(a.code, 200, "{}", a.body);
    sim.wait_for("/apis/apps/v1/namespaces/default/deployments/app", WAIT, |a| {
        a.body["status"]["availableReplicas"] == 2 && a.body["status"]["replicas"] == 2
    })
    .await;
    let ps = wait_pods(&sim, "default", "app=app", |ps| {
        ps.len() == 2 && ps.iter().all(|p| phase(p) == "Running")
    })
    .await;
    assert!(
        ps.iter()
            .all(|p| p["spec"]["nodeName"].as_str().unwrap().starts_with("critical-"))
    );
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn requests_beyond_what_is_left_are_insufficient() {
    let sim = start(1).await;
    let mut big = deployment("big", 1, "busybox:1.36");
    big["spec"]["template"]["spec"]["containers"][0]["resources"] = json!({"requests": {"cpu": "100"}});
    sim.post("/apis/apps/v1/namespaces/default/deployments", &big).await;
    let ps = wait_pods(&sim, "default", "app=big", |ps| {
        ps.len() == 1 && scheduled(&ps[0]).is_some()
    })
    .await;
    assert_eq!(
        scheduled(&ps[0]).unwrap()["message"],
        "0/1 nodes are available: 1 Insufficient cpu."
    );
    // 7910m allocatable: three 3-core pods do not all fit on one node
    let mut three = deployment("three", 3, "busybox:1.36");
    three["spec"]["template"]["spec"]["containers"][0]["resources"] = json!({"requests": {"cpu": "3"}});
    sim.post("/apis/apps/v1/namespaces/default/deployments", &three).await;
    let ps = wait_pods(&sim, "default", "app=three", |ps| {
        ps.len() == 3
            && ps
                .iter()
                .all(|p| p["spec"]["nodeName"].is_string() || scheduled(p).is_some())
    })
    .await;
    let bound = ps.iter().filter(|p| p["spec"]["nodeName"].is_string()).count();
    assert_eq!(bound, 2, "{}", json!(ps));
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn a_daemonset_runs_one_pod_on_each_node_it_tolerates() {
    let sim = start(2).await;
    add_node(&sim, "tainted", "m6i.large", &[], vec![critical_taint()]).await;
    sim.post(
        "/apis/apps/v1/namespaces/default/daemonsets",
        &daemonset("agent", "busybox:1.36"),
    )
    .await;
    let ds = sim
        .wait_for("/apis/apps/v1/namespaces/default/daemonsets/agent", WAIT, |a| {
            a.body["status"]["numberReady"] == 2
        })
        .await;
    assert_eq!(ds.body["status"]["desiredNumberScheduled"], 2);
    let ps = pods(&sim, "default", "app=agent").await;
    let mut nodes: Vec<&str> = ps.iter().map(|p| p["spec"]["nodeName"].as_str().unwrap()).collect();
    nodes.sort();
    assert_eq!(nodes, ["sim-node-1", "sim-node-2"]);
    // the DaemonSet controller's tolerations are on its pods
    let tolerations = ps[0]["spec"]["tolerations"].to_string();
    assert!(
        tolerations.contains("node.kubernetes.io/unschedulable"),
        "{tolerations}"
    );
    // tolerate everything: the tainted node gets one too
    let mut all = daemonset("agent", "busybox:1.36");
    all["spec"]["template"]["spec"]["tolerations"] = json!([{"operator": "Exists"}]);
    sim.apply("/apis/apps/v1/namespaces/default/daemonsets/agent", "test", true, &all)
        .await;
    sim.wait_for("/apis/apps/v1/namespaces/default/daemonsets/agent", WAIT, |a| {
        a.body["status"]["numberReady"] == 3
            && a.body["status"]["desiredNumberScheduled"] == 3
            && a.body["status"]["updatedNumberScheduled"] == 3
    })
    .await;
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn statefulset_pods_come_in_order_and_a_job_completes() {
    let sim = start(1).await;
    let sts = json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
        "spec": {"replicas": 3, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                 "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "db", "image": "postgres:17"}]}}}
    });
    assert_eq!(
        sim.post("/apis/apps/v1/namespaces/default/statefulsets", &sts)
            .await
            .code,
        201
    );
    // OrderedReady: db-1 never exists before db-0 is ready
    let mut seen_early = false;
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let ps = pods(&sim, "default", "app=db").await;
        let ready = |n: &str| ps.iter().any(|p| p["metadata"]["name"] == n && phase(p) == "Running");
        if ps.iter().any(|p| p["metadata"]["name"] == "db-1") && !ready("db-0") {
            seen_early = true;
        }
        if ps.len() == 3 && ps.iter().all(|p| phase(p) == "Running") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{}", json!(ps));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!seen_early, "db-1 was created before db-0 was ready");
    sim.wait_for("/apis/apps/v1/namespaces/default/statefulsets/db", WAIT, |a| {
        a.body["status"]["readyReplicas"] == 3
    })
    .await;

    let job = json!({
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate"},
        "spec": {"completions": 2, "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "m", "image": "busybox:1.36"}]}}}
    });
    assert_eq!(sim.post("/apis/batch/v1/namespaces/default/jobs", &job).await.code, 201);
    let j = sim
        .wait_for("/apis/batch/v1/namespaces/default/jobs/migrate", WAIT, |a| {
            a.body["status"]["succeeded"] == 2
        })
        .await;
    let complete = j.body["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["type"] == "Complete" && c["status"] == "True");
    assert!(complete, "{}", j.body["status"]);
    let ps = pods(&sim, "default", "job-name=migrate").await;
    assert_eq!(ps.len(), 2);
    assert!(ps.iter().all(|p| phase(p) == "Succeeded"));
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn pods_on_a_node_that_goes_away_are_replaced_elsewhere() {
    let sim = start(0).await;
    add_node(&sim, "a", "m6i.large", &[], vec![]).await;
    sim.post(
        "/apis/apps/v1/namespaces/default/deployments",
        &deployment("w", 1, "nginx:1.27"),
    )
    .await;
    wait_pods(&sim, "default", "app=w", |ps| {
        ps.len() == 1 && ps[0]["spec"]["nodeName"] == "a"
    })
    .await;
    add_node(&sim, "b", "m6i.large", &[], vec![]).await;
    assert_eq!(sim.delete("/api/v1/nodes/a").await.code, 200);
    wait_pods(&sim, "default", "app=w", |ps| {
        ps.len() == 1 && ps[0]["spec"]["nodeName"] == "b" && phase(&ps[0]) == "Running"
    })
    .await;
    sim.handle.shutdown().await;
}

// ---- Karpenter ----

async fn install_crd(sim: &Sim, file: &str) {
    let path = format!("{}/../charts/karpenter/crds/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("crd file");
    let crd: Value = serde_saphyr::from_str(&text).expect("yaml");
    let a = sim
        .post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", &crd)
        .await;
    assert_eq!(a.code, 201, "{}", a.body);
    let name = crd["metadata"]["name"].as_str().unwrap().to_string();
    sim.wait_for(
        &format!("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"),
        WAIT,
        |a| a.body["status"]["conditions"].to_string().contains("Established"),
    )
    .await;
}

fn runner_pool(limit_cpu: &str, consolidate_after: &str) -> Value {
    json!({
        "apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": "runners"},
        "spec": {
            "template": {
                "metadata": {"labels": {"github-actions-runner": "true"}},
                "spec": {
                    "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "runners"},
                    "taints": [{"key": "github-actions-runner", "value": "true", "effect": "NoSchedule"}],
                    "requirements": [
                        {"key": "karpenter.k8s.aws/instance-family", "operator": "In", "values": ["c6id", "m6id", "r6id"]},
                        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]},
                    ],
                }
            },
            "limits": {"cpu": limit_cpu},
            "disruption": {"consolidationPolicy": "WhenEmpty", "consolidateAfter": consolidate_after},
        }
    })
}

fn runner(name: &str, replicas: i64, cpu: &str) -> Value {
    let mut d = deployment(name, replicas, "ghcr.io/actions/actions-runner:2.321.0");
    let spec = &mut d["spec"]["template"]["spec"];
    spec["nodeSelector"] = json!({"github-actions-runner": "true"});
    spec["tolerations"] =
        json!([{"key": "github-actions-runner", "operator": "Equal", "value": "true", "effect": "NoSchedule"}]);
    spec["containers"][0]["resources"] = json!({"requests": {"cpu": cpu, "memory": "2Gi"}});
    d
}

/// A Karpenter controller pod running on the static node (the sandbox's Karpenter acts
/// only while one runs).
async fn karpenter_controller(sim: &Sim) {
    sim.namespace("karpenter").await;
    let mut k = deployment("karpenter", 1, "public.ecr.aws/karpenter/controller:1.6.0");
    k["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"] = json!("karpenter");
    sim.post("/apis/apps/v1/namespaces/karpenter/deployments", &k).await;
    sim.wait_for("/apis/apps/v1/namespaces/karpenter/deployments/karpenter", WAIT, |a| {
        a.body["status"]["availableReplicas"] == 1
    })
    .await;
}

async fn karpenter_nodes(sim: &Sim) -> Vec<Value> {
    let a = sim.get("/api/v1/nodes?labelSelector=karpenter.sh/nodepool").await;
    a.body["items"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn karpenter_launches_the_cheapest_fitting_type_packs_pods_and_removes_empty_nodes() {
    let sim = start(1).await;
    install_crd(&sim, "karpenter.sh_nodepools.yaml").await;
    install_crd(&sim, "karpenter.sh_nodeclaims.yaml").await;
    let a = sim
        .post("/apis/karpenter.sh/v1/nodepools", &runner_pool("1000", "1s"))
        .await;
    assert_eq!(a.code, 201, "{}", a.body);
    // an engine-like DaemonSet for runner nodes only
    let mut engine = daemonset("engine", "registry.dagger.io/engine:v0.19.0");
    engine["spec"]["template"]["spec"]["nodeSelector"] = json!({"github-actions-runner": "true"});
    engine["spec"]["template"]["spec"]["tolerations"] = json!([{"key": "github-actions-runner", "operator": "Exists"}]);
    engine["spec"]["template"]["spec"]["containers"][0]["resources"] =
        json!({"requests": {"cpu": "500m", "memory": "1Gi"}});
    sim.post("/apis/apps/v1/namespaces/default/daemonsets", &engine).await;

    // No Karpenter controller running: the pod stays Pending, nothing launches.
    sim.post(
        "/apis/apps/v1/namespaces/default/deployments",
        &runner("runner", 2, "1"),
    )
    .await;
    wait_pods(&sim, "default", "app=runner", |ps| {
        ps.len() == 2 && ps.iter().all(|p| scheduled(p).is_some())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(karpenter_nodes(&sim).await.is_empty());

    karpenter_controller(&sim).await;
    let ps = wait_pods(&sim, "default", "app=runner", |ps| {
        ps.len() == 2 && ps.iter().all(|p| phase(p) == "Running")
    })
    .await;
    let nodes = karpenter_nodes(&sim).await;
    assert_eq!(nodes.len(), 1, "two 1-cpu runners share one node: {}", json!(nodes));
    let n = &nodes[0];
    let name = n["metadata"]["name"].as_str().unwrap();
    assert!(ps.iter().all(|p| p["spec"]["nodeName"] == name));
    // 2 runners x 1 cpu + the engine's 500m: c6id.large (1.93 cpu) is too small, the
    // cheapest that fits of the three families is c6id.xlarge
    assert_eq!(
        n["metadata"]["labels"]["node.kubernetes.io/instance-type"], "c6id.xlarge",
        "{}",
        n["metadata"]["labels"]
    );
    assert_eq!(n["metadata"]["labels"]["karpenter.sh/nodepool"], "runners");
    assert_eq!(n["metadata"]["labels"]["karpenter.sh/capacity-type"], "on-demand");
    assert_eq!(n["spec"]["taints"][0]["key"], "github-actions-runner");
    let claim_name = n["metadata"]["ownerReferences"][0]["name"]
        .as_str()
        .expect("owned by its NodeClaim");
    let claim = sim.get(&format!("/apis/karpenter.sh/v1/nodeclaims/{claim_name}")).await;
    assert_eq!(claim.code, 200, "{}", claim.body);
    assert_eq!(claim.body["status"]["nodeName"], name);
    // the engine DaemonSet runs on the new node, next to the runners
    let engines = wait_pods(&sim, "default", "app=engine", |ps| {
        ps.len() == 1 && phase(&ps[0]) == "Running"
    })
    .await;
    assert_eq!(engines[0]["spec"]["nodeName"], name);

    // scale the runners to 0: the node is empty but for the DaemonSet and goes after 1s
    sim.merge_patch(
        "/apis/apps/v1/namespaces/default/deployments/runner",
        &json!({"spec": {"replicas": 0}}),
    )
    .await;
    let deadline = std::time::Instant::now() + WAIT;
    while !karpenter_nodes(&sim).await.is_empty() {
        assert!(std::time::Instant::now() < deadline, "empty node never removed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        sim.get(&format!("/apis/karpenter.sh/v1/nodeclaims/{claim_name}"))
            .await
            .code,
        404
    );
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn karpenter_respects_the_pool_cpu_limit() {
    let sim = start(1).await;
    install_crd(&sim, "karpenter.sh_nodepools.yaml").await;
    install_crd(&sim, "karpenter.sh_nodeclaims.yaml").await;
    // room for one 4-vCPU node only
    sim.post("/apis/karpenter.sh/v1/nodepools", &runner_pool("4", "Never"))
        .await;
    karpenter_controller(&sim).await;
    sim.post(
        "/apis/apps/v1/namespaces/default/deployments",
        &runner("runner", 3, "3"),
    )
    .await;
    let ps = wait_pods(&sim, "default", "app=runner", |ps| {
        ps.len() == 3 && ps.iter().filter(|p| phase(p) == "Running").count() == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let nodes = karpenter_nodes(&sim).await;
    assert_eq!(nodes.len(), 1, "{}", json!(nodes));
    assert_eq!(nodes[0]["status"]["capacity"]["cpu"], "4");
    let pending = pods(&sim, "default", "app=runner")
        .await
        .into_iter()
        .filter(|p| phase(p) == "Pending")
        .count();
    assert_eq!(pending, 2, "{}", json!(ps));
    sim.handle.shutdown().await;
}

// ---- Nodes from the AWS emulator's node groups ----

/// A stand-in for the emulator's `/sandbox-api/*` endpoints, serving what the test sets.
async fn fake_emulator(groups: std::sync::Arc<std::sync::Mutex<Value>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let groups = groups.clone();
        async move {
            let body = match req.uri().path() {
                "/sandbox-api/nodegroups" => json!({"nodegroups": groups.lock().unwrap().clone()}),
                "/sandbox-api/addons" => json!({"addons": [
                    {"cluster": "ci", "addonName": "coredns", "addonVersion": "v1.11.4-eksbuild.2", "status": "ACTIVE", "configurationValues": null}
                ]}),
                _ => json!({}),
            };
            axum::response::Response::builder()
                .header("content-type", "application/json")
                .body(axum::body::Body::from(body.to_string()))
                .unwrap()
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn group(status: &str, desired: u32) -> Value {
    json!({"cluster": "ci", "nodegroup": "critical", "status": status, "desiredSize": desired,
           "instanceTypes": ["m6i.large"], "capacityType": "ON_DEMAND", "labels": {"role": "critical"},
           "taints": [{"key": "CriticalAddonsOnly", "value": "true", "effect": "NoSchedule"}],
           "subnets": [{"subnetId": "subnet-a", "availabilityZone": "us-east-1a"}, {"subnetId": "subnet-b", "availabilityZone": "us-east-1b"}],
           "releaseVersion": "1.35.1-20261118", "account": "123456789012", "region": "us-east-1"})
}

async fn wait_nodes(sim: &Sim, selector: &str, n: usize) -> Ans {
    sim.wait_for(&format!("/api/v1/nodes?labelSelector={selector}"), WAIT, |a| {
        a.body["items"].as_array().is_some_and(|i| i.len() == n)
    })
    .await
}

#[tokio::test]
async fn node_group_nodes_join_scale_and_leave_and_coredns_runs_on_them() {
    let groups = std::sync::Arc::new(std::sync::Mutex::new(json!([group("CREATING", 2)])));
    let url = fake_emulator(groups.clone()).await;
    let sim = Sim::start_with(SimConfig {
        nodes: 0,
        aws_endpoint: Some(url),
        ready_delay: Duration::from_millis(50),
        ..SimConfig::default()
    })
    .await;
    // CoreDNS is installed at once (the add-on is ACTIVE) but has no node yet
    let ps = wait_pods(&sim, "kube-system", "k8s-app=kube-dns", |ps| {
        ps.len() == 2 && ps.iter().all(|p| scheduled(p).is_some())
    })
    .await;
    assert_eq!(
        scheduled(&ps[0]).unwrap()["message"],
        "no nodes available to schedule pods"
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        sim.get("/api/v1/nodes").await.body["items"].as_array().unwrap().len(),
        0,
        "CREATING: no nodes yet"
    );

    *groups.lock().unwrap() = json!([group("ACTIVE", 2)]);
    let a = wait_nodes(&sim, "eks.amazonaws.com/nodegroup=critical", 2).await;
    let items = a.body["items"].as_array().unwrap();
    let zones: Vec<&str> = items
        .iter()
        .map(|n| n["metadata"]["labels"]["topology.kubernetes.io/zone"].as_str().unwrap())
        .collect();
    assert!(
        zones.contains(&"us-east-1a") && zones.contains(&"us-east-1b"),
        "{zones:?}"
    );
    for n in items {
        let l = &n["metadata"]["labels"];
        assert_eq!(l["role"], "critical");
        assert_eq!(l["node.kubernetes.io/instance-type"], "m6i.large");
        assert_eq!(l["kubernetes.io/arch"], "amd64");
        assert_eq!(l["kubernetes.io/os"], "linux");
        assert_eq!(l["eks.amazonaws.com/capacityType"], "ON_DEMAND");
        assert_eq!(n["spec"]["taints"][0], critical_taint());
        assert!(n["metadata"]["name"].as_str().unwrap().ends_with(".ec2.internal"));
    }
    // CoreDNS tolerates CriticalAddonsOnly: it runs there now
    let ps = wait_pods(&sim, "kube-system", "k8s-app=kube-dns", |ps| {
        ps.len() == 2 && ps.iter().all(|p| phase(p) == "Running")
    })
    .await;
    assert!(
        ps.iter()
            .all(|p| p["spec"]["nodeName"].as_str().unwrap().ends_with(".ec2.internal"))
    );

    *groups.lock().unwrap() = json!([group("ACTIVE", 3)]);
    wait_nodes(&sim, "eks.amazonaws.com/nodegroup=critical", 3).await;
    *groups.lock().unwrap() = json!([group("DELETING", 3)]);
    wait_nodes(&sim, "eks.amazonaws.com/nodegroup=critical", 0).await;
    sim.handle.shutdown().await;
}
