//! Benchmarks of the behaviour checks, run with `cargo bench -p dagger-ci --bench checks`
//! (results in docs/BENCHMARKS.md):
//!
//! 1. `flagship`: every check of the flagship stack (shape, placement, network, wiring) on
//!    what the `dev` and `prod` configs declare (their charts are remote, so the chart
//!    workloads are modelled from values): `checks::evaluate` only, the stack declared once
//!    beforehand. Target: < 50 ms. The `sandbox` config is timed too, for information: its
//!    charts are local stand-ins rendered by `helm template` (a child process per chart).
//! 2. `scheduling`: 1,000 pod templates placed on 50 Karpenter NodePools (two instance
//!    families each, every size up to 64 vCPU, spot and on-demand) after 5 DaemonSets, with
//!    one `Placer`. Target: < 1 s.
//!
//! Each is the median of several runs; the targets are checked and printed, never asserted
//! (a benchmark reports, the tests verify behaviour).

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use spar::Stack;
use spar::analysis::scheduling::{NodeShape, PodTemplate, WorkloadKind, place_all};
use spar::model::config::StackConfig;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> Duration {
    median(
        (0..runs)
            .map(|_| {
                let start = Instant::now();
                std::hint::black_box(f());
                start.elapsed()
            })
            .collect(),
    )
}

fn flagship(stack: &str, runs: usize) -> (Duration, usize) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    // The sandbox's chart paths are relative to the project root.
    std::env::set_current_dir(root.join("../..")).expect("the project root");
    let cfg = StackConfig::load(&root.join("config"), stack).expect("a shipped config");
    let mut s = Stack::new("dagger-ci", stack, cfg);
    let config: dagger_ci::config::Config = s.config().expect("config");
    let c = dagger_ci::declare_components(&mut s, &config).expect("declared");
    let resources = s.resources().to_vec();
    let d = c.declared(&resources);
    let failed = dagger_ci::checks::evaluate(&d).iter().filter(|c| !c.passed()).count();
    (time(runs, || dagger_ci::checks::evaluate(&d)), failed)
}

fn template(owner: String, kind: WorkloadKind, spec: Value) -> PodTemplate {
    PodTemplate {
        owner,
        kind,
        replicas: if kind == WorkloadKind::DaemonSet { 0 } else { 1 },
        spec,
    }
}

fn requesting(cpu: &str, memory: &str) -> Value {
    json!({"containers": [{"name": "main", "resources": {"requests": {"cpu": cpu, "memory": memory}}}]})
}

fn scheduling(runs: usize) -> (Duration, usize) {
    let families = ["c6id", "m6id", "r6id", "c7gd", "m7gd", "r7gd", "i4i"];
    let shapes: Vec<NodeShape> = (0..50)
        .map(|i| {
            NodeShape::from_node_pool(&json!({
                "apiVersion": "karpenter.sh/v1",
                "kind": "NodePool",
                "metadata": {"name": format!("pool-{i}")},
                "spec": {
                    "template": {
                        "metadata": {"labels": {"github-actions-runner": "true"}},
                        "spec": {
                            "taints": [{"key": "github-actions-runner", "value": "true", "effect": "NoSchedule"}],
                            "requirements": [
                                {"key": "karpenter.k8s.aws/instance-family", "operator": "In",
                                 "values": [families[i % 7], families[(i + 1) % 7]]},
                                {"key": "karpenter.k8s.aws/instance-cpu", "operator": "Lte", "values": ["64"]},
                                {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot", "on-demand"]},
                            ],
                        }
                    },
                    "limits": {"cpu": "256"},
                }
            }))
            .expect("a NodePool")
        })
        .collect();
    let daemonsets: Vec<PodTemplate> = (0..5)
        .map(|i| {
            let mut s = requesting("100m", "128Mi");
            s["tolerations"] = json!([{"operator": "Exists"}]);
            template(format!("DaemonSet kube-system/ds-{i}"), WorkloadKind::DaemonSet, s)
        })
        .collect();
    let pods: Vec<PodTemplate> = (0..1000)
        .map(|i| {
            let spec = if i % 2 == 0 {
                let mut s = requesting(&format!("{}", 1 + i % 40), "4Gi");
                s["nodeSelector"] = json!({"github-actions-runner": "true"});
                s["tolerations"] = json!([{"key": "github-actions-runner", "operator": "Equal", "value": "true", "effect": "NoSchedule"}]);
                s
            } else {
                requesting("500m", "1Gi")
            };
            template(format!("Deployment ns/app-{i}"), WorkloadKind::Deployment, spec)
        })
        .collect();
    let candidates = shapes.iter().map(|s| s.instance_types.len()).sum();
    let t = time(runs, || place_all(&pods, &shapes, &daemonsets).expect("placed"));
    (t, candidates)
}

fn verdict(t: Duration, target: Duration) -> &'static str {
    if t < target { "PASS" } else { "FAIL" }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing and wants a
    // quick run.
    let quick = !std::env::args().any(|a| a == "--bench");
    let runs = if quick { 1 } else { 21 };
    println!("benchmark                                  target     median     result");
    for stack in ["dev", "prod"] {
        let (t, failed) = flagship(stack, runs);
        let target = Duration::from_millis(50);
        println!(
            "flagship checks, {stack:<7} ({failed} failing)       < 50 ms    {:>7.2} ms  {}",
            t.as_secs_f64() * 1e3,
            verdict(t, target)
        );
    }
    let (t, failed) = flagship("sandbox", if quick { 1 } else { 5 });
    println!(
        "flagship checks, sandbox ({failed} failing; renders 5 charts)  -   {:>7.2} ms  (info)",
        t.as_secs_f64() * 1e3
    );
    let (t, candidates) = scheduling(if quick { 1 } else { 11 });
    println!(
        "scheduling 1,000 pods on 50 shapes ({candidates} types) < 1 s  {:>7.2} ms  {}",
        t.as_secs_f64() * 1e3,
        verdict(t, Duration::from_secs(1))
    );
}
