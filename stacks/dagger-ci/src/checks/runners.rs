//! The runner pods as ARC will make them, read from the declared resources: the pod
//! template of each `gha-runner-scale-set` release (what the controller copies into every
//! EphemeralRunner pod), and each summerwind RunnerDeployment (whose runner container the
//! legacy controller builds from `spec.image`, `spec.env`, `spec.resources` and
//! `spec.volumeMounts`, defaulting the image to its `--runner-image`).
//!
//! Rule kept here: only what the graph declares is read, so a check on these pods sees
//! exactly what ARC would be given.

use serde_json::{Value, json};
use spar::graph::DesiredResource;

use crate::arc::LEGACY_RUNNER_IMAGE;

/// One runner group's pods.
#[derive(Debug, Clone)]
pub struct RunnerPods {
    /// The scale-set name or RunnerDeployment name (`runs-on`).
    pub group: String,
    /// The declaring resource.
    pub address: String,
    pub namespace: String,
    /// The pod spec, as ARC makes the pod.
    pub spec: Value,
    /// Made by the legacy (summerwind) controller.
    pub legacy: bool,
    /// The most runners the group may have at once (`maxRunners`, or its autoscaler's
    /// `maxReplicas`).
    pub max: Option<u64>,
}

impl RunnerPods {
    /// The runner container (named `runner`, else the first).
    pub fn container(&self) -> &Value {
        let cs = &self.spec["containers"];
        cs.as_array()
            .and_then(|cs| cs.iter().find(|c| c["name"] == "runner"))
            .unwrap_or(&cs[0])
    }
}

/// Every runner group the resources declare.
pub fn declared(resources: &[DesiredResource]) -> Vec<RunnerPods> {
    let mut out = Vec::new();
    for r in resources {
        let i = &r.inputs;
        match r.kind.as_str() {
            "kubernetes:Chart"
                if i["values"]["template"]["spec"].is_object() && i["values"].get("runnerScaleSetName").is_some() =>
            {
                let v = &i["values"];
                out.push(RunnerPods {
                    group: v["runnerScaleSetName"].as_str().unwrap_or_default().to_string(),
                    address: r.address.to_string(),
                    namespace: i["namespace"].as_str().unwrap_or_default().to_string(),
                    spec: v["template"]["spec"].clone(),
                    legacy: false,
                    max: v["maxRunners"].as_u64(),
                })
            }
            "kubernetes:Object" if i["manifest"]["kind"] == "RunnerDeployment" => {
                let m = &i["manifest"];
                let t = &m["spec"]["template"];
                let rs = &t["spec"];
                let mut container = json!({
                    "name": "runner",
                    "image": rs["image"].as_str().filter(|s| !s.is_empty()).unwrap_or(LEGACY_RUNNER_IMAGE),
                });
                for k in ["env", "resources", "volumeMounts"] {
                    if let Some(v) = rs.get(k) {
                        container[k] = v.clone();
                    }
                }
                let mut spec = json!({"containers": [container]});
                for k in [
                    "tolerations",
                    "nodeSelector",
                    "affinity",
                    "volumes",
                    "securityContext",
                    "priorityClassName",
                ] {
                    if let Some(v) = rs.get(k) {
                        spec[k] = v.clone();
                    }
                }
                let group = m["metadata"]["name"].as_str().unwrap_or_default().to_string();
                let max = resources
                    .iter()
                    .map(|a| &a.inputs["manifest"])
                    .find(|a| {
                        a["kind"] == "HorizontalRunnerAutoscaler"
                            && a["spec"]["scaleTargetRef"]["name"] == group.as_str()
                    })
                    .map_or(m["spec"]["replicas"].as_u64(), |a| a["spec"]["maxReplicas"].as_u64());
                out.push(RunnerPods {
                    group,
                    address: r.address.to_string(),
                    namespace: i["namespace"]
                        .as_str()
                        .or(m["metadata"]["namespace"].as_str())
                        .unwrap_or("default")
                        .to_string(),
                    spec,
                    legacy: true,
                    max,
                })
            }
            _ => {}
        }
    }
    out
}
