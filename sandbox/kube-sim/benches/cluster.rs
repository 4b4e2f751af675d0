//! Benchmarks of the simulated cluster, run with `cargo bench -p spar-kube-sim --bench
//! cluster` (results in docs/BENCHMARKS.md):
//!
//! 1. `bind`: the scheduler binding 1,000 pending pods onto 50 nodes (m6i.2xlarge, each
//!    pod requesting 100m CPU and 128 MiB) in one pass of `cluster::scheduler::reconcile`,
//!    kube-scheduler's filters and LeastAllocated score run per pod and node. Target: < 1 s.
//! 2. `api`: list and watch latency over HTTP against a running simulator with 50 nodes and
//!    no pods, then with 2,000 Running pods (20 Deployments of 100 replicas): the median of
//!    `GET` of 100 ConfigMaps, `GET` of the 50 Nodes, and the time from a ConfigMap write to
//!    its watch event. Target: with the pods, each within 1.25x of without (a busy cluster
//!    answers as fast as an idle one).
//!
//! 3. `store list`: the list of 100 ConfigMaps in-process (no HTTP), without and with the
//!    pods, to tell the store's share of the `api` list figure from the HTTP path's.
//!
//! Each figure is a median; the targets are checked and printed, never asserted.

use serde_json::{Value, json};
use spar_kube_sim::cluster::{create_as, scheduler};
use spar_kube_sim::ops::{Settings, State};
use spar_kube_sim::{SimConfig, Simulator, locate_schemas, schema::Schemas};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn pod(i: usize) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": format!("p-{i}")},
           "spec": {"containers": [{"name": "c", "image": "busybox:1.36",
                    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]}})
}

fn bind_bench(schemas: Arc<Schemas>) -> (Duration, usize) {
    let mut runs = Vec::new();
    let mut bound = 0;
    for _ in 0..5 {
        let settings = Settings {
            ready_delay: Duration::ZERO,
            nodes: 50,
            node_instance_type: "m6i.2xlarge".into(),
            k8s_version: "1.35".into(),
        };
        let mut st = State::new(settings, schemas.clone());
        for i in 0..1000 {
            create_as(&mut st, "bench", "", "pods", "default", pod(i)).expect("pod");
        }
        let start = Instant::now();
        bound = scheduler::reconcile(&mut st);
        runs.push(start.elapsed());
    }
    (median(runs), bound)
}

/// `State::list` and JSON serialization of 100 ConfigMaps, with no pods and with 2,000
/// bound pods.
fn store_list_bench(schemas: Arc<Schemas>) {
    let settings = Settings {
        ready_delay: Duration::ZERO,
        nodes: 50,
        node_instance_type: "m6i.2xlarge".into(),
        k8s_version: "1.35".into(),
    };
    let mut st = State::new(settings, schemas);
    for i in 0..100 {
        create_as(&mut st, "bench", "", "configmaps", "default",
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("cm-{i}")}, "data": {"k": "v"}})).expect("cm");
    }
    let rt = st.kinds().by_resource("", "v1", "configmaps").unwrap();
    let p = spar_kube_sim::ops::Params::default();
    let time = |st: &State| {
        let mut v = Vec::new();
        for _ in 0..300 {
            let t = Instant::now();
            let out = st.list(&rt, Some("default"), &p).unwrap();
            let text = serde_json::to_vec(&out).unwrap();
            std::hint::black_box(text);
            v.push(t.elapsed());
        }
        median(v)
    };
    let before = time(&st);
    for i in 0..2000 {
        create_as(&mut st, "bench", "", "pods", "default", pod(i)).expect("pod");
    }
    scheduler::reconcile(&mut st);
    let after = time(&st);
    println!(
        "store list: 100 ConfigMaps listed and serialized in-process: {:.3} ms with no pods, {:.3} ms with 2,000 pods: {:.2}x",
        before.as_secs_f64() * 1e3,
        after.as_secs_f64() * 1e3,
        after.as_secs_f64() / before.as_secs_f64()
    );
}

struct Api {
    base: String,
    client: reqwest::Client,
}

impl Api {
    async fn get(&self, path: &str) -> Value {
        let r = self.client.get(format!("{}{path}", self.base)).send().await.unwrap();
        r.json().await.unwrap()
    }

    async fn post(&self, path: &str, body: &Value) -> Value {
        let r = self
            .client
            .post(format!("{}{path}", self.base))
            .json(body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().await.unwrap()
    }

    async fn timed_get(&self, path: &str, runs: usize) -> Duration {
        let mut v = Vec::new();
        for _ in 0..runs {
            let start = Instant::now();
            std::hint::black_box(self.get(path).await);
            v.push(start.elapsed());
        }
        median(v)
    }

    /// From a ConfigMap write to its event on a watch opened before it.
    async fn watch_latency(&self, tag: &str, runs: usize) -> Duration {
        let mut v = Vec::new();
        for i in 0..runs {
            let rv = self.get("/api/v1/namespaces/watch-bench/configmaps?limit=1").await["metadata"]["resourceVersion"]
                .as_str()
                .unwrap()
                .to_string();
            let mut watch = self
                .client
                .get(format!(
                    "{}/api/v1/namespaces/watch-bench/configmaps?watch=true&resourceVersion={rv}&fieldSelector=metadata.name%3Dw-{tag}-{i}",
                    self.base
                ))
                .send()
                .await
                .unwrap();
            let start = Instant::now();
            self.post(
                "/api/v1/namespaces/watch-bench/configmaps",
                &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("w-{tag}-{i}")}}),
            )
            .await;
            let chunk = watch.chunk().await.unwrap().expect("an event");
            assert!(String::from_utf8_lossy(&chunk).contains("ADDED"));
            v.push(start.elapsed());
        }
        median(v)
    }

    async fn figures(&self, tag: &str) -> [Duration; 3] {
        [
            self.timed_get("/api/v1/namespaces/default/configmaps", 200).await,
            self.timed_get("/api/v1/nodes", 200).await,
            self.watch_latency(tag, 50).await,
        ]
    }
}

async fn api_bench() -> ([Duration; 3], [Duration; 3], Duration) {
    let sim = Simulator::start(SimConfig {
        nodes: 50,
        ..SimConfig::default()
    })
    .await
    .expect("simulator");
    let api = Api {
        base: sim.url(),
        client: reqwest::Client::new(),
    };
    // The watch figure's ConfigMaps go to a namespace of their own, so the list figure
    // lists the same 100 ConfigMaps with and without the pods.
    api.post(
        "/api/v1/namespaces",
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "watch-bench"}}),
    )
    .await;
    for i in 0..100 {
        api.post(
            "/api/v1/namespaces/default/configmaps",
            &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("cm-{i}")}, "data": {"k": "v"}}),
        )
        .await;
    }
    let idle = api.figures("idle").await;
    let start = Instant::now();
    for d in 0..20 {
        api.post(
            "/apis/apps/v1/namespaces/default/deployments",
            &json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": format!("d{d}")},
                    "spec": {"replicas": 100, "selector": {"matchLabels": {"app": format!("d{d}")}},
                             "template": {"metadata": {"labels": {"app": format!("d{d}")}},
                                          "spec": {"containers": [{"name": "c", "image": "busybox:1.36",
                                                   "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}}}]}}}}),
        )
        .await;
    }
    loop {
        let pods = api.get("/api/v1/pods?fieldSelector=status.phase%3DRunning").await;
        let running = pods["items"].as_array().map_or(0, Vec::len);
        if running >= 2000 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "only {running} pods Running"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let settle = start.elapsed();
    let cpu = |()| -> f64 {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
        let f: Vec<&str> = stat.rsplit(')').next().unwrap().split_whitespace().collect();
        (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / 100.0
    };
    let c0 = cpu(());
    tokio::time::sleep(Duration::from_secs(2)).await;
    // a settled cluster does no work: the controllers only run on a change or a deadline
    println!("api: CPU used in the 2 s after settling: {:.2} s", cpu(()) - c0);
    let busy = api.figures("busy").await;
    sim.shutdown().await;
    (idle, busy, settle)
}

fn main() {
    store_list_bench(Arc::new(
        Schemas::load(&locate_schemas("1.35").expect("schemas")).expect("load"),
    ));

    let schemas = Arc::new(Schemas::load(&locate_schemas("1.35").expect("schemas")).expect("load"));
    let (bind, bound) = bind_bench(schemas);
    println!(
        "bind: {bound} pods onto 50 nodes in {:.1} ms (target < 1000 ms: {})",
        bind.as_secs_f64() * 1e3,
        if bind < Duration::from_secs(1) && bound == 1000 {
            "PASS"
        } else {
            "FAIL"
        }
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (idle, busy, settle) = rt.block_on(api_bench());
    println!(
        "api: 2,000 pods created, bound and Running in {:.2} s",
        settle.as_secs_f64()
    );
    for (i, name) in ["list 100 ConfigMaps", "list 50 Nodes", "write -> watch event"]
        .iter()
        .enumerate()
    {
        let ratio = busy[i].as_secs_f64() / idle[i].as_secs_f64();
        println!(
            "api: {name}: {:.3} ms with no pods, {:.3} ms with 2,000 pods: {ratio:.2}x (target <= 1.25x: {})",
            idle[i].as_secs_f64() * 1e3,
            busy[i].as_secs_f64() * 1e3,
            if ratio <= 1.25 { "PASS" } else { "FAIL" }
        );
    }
}
