//! The workloads EKS's managed add-ons run, as pod templates for the scheduling analysis:
//! an add-on is declared by name and configuration (`aws:eks:Addon`), and its pods exist
//! only after EKS installs them, so their scheduling facts are modelled here from the
//! add-ons' published manifests.
//!
//! Rules kept here (sources: eksctl-io/eksctl `pkg/addons/default/assets/coredns-1.33.json`
//! and `aws-node.yaml`, aws/amazon-vpc-cni-k8s `charts/aws-vpc-cni/values.yaml`,
//! aws/eks-pod-identity-agent `charts/eks-pod-identity-agent/values.yaml`, read 2026-12):
//! - `coredns`: a Deployment in kube-system, 2 replicas, requests cpu 100m and memory 70Mi,
//!   tolerating `CriticalAddonsOnly` (Exists) and `node-role.kubernetes.io/control-plane`
//!   (NoSchedule) unless the add-on configuration gives `tolerations` (which replace them);
//!   the configuration's `nodeSelector`, `affinity`, `replicaCount` and `resources` apply.
//! - `vpc-cni` (`aws-node`, 25m cpu), `kube-proxy` (100m cpu) and `eks-pod-identity-agent`
//!   (no requests): DaemonSets on the host network tolerating every taint
//!   (`operator: Exists`), so they run on every node.
//!
//! Other add-ons are not modelled (none returned).

use serde_json::{Value, json};

use crate::pod::{PodTemplate, WorkloadKind};

/// The pod templates add-on `name` runs with `configuration` (the add-on's configuration
/// values, `null` for none).
pub fn pod_templates(name: &str, configuration: &Value) -> Vec<PodTemplate> {
    let ds = |owner: &str, cpu: Option<&str>| {
        let mut container = json!({"name": owner});
        if let Some(c) = cpu {
            container["resources"] = json!({"requests": {"cpu": c}});
        }
        PodTemplate {
            owner: format!("DaemonSet kube-system/{owner}"),
            kind: WorkloadKind::DaemonSet,
            replicas: 0,
            spec: json!({
                "hostNetwork": true,
                "priorityClassName": "system-node-critical",
                "tolerations": [{"operator": "Exists"}],
                "containers": [container],
            }),
        }
    };
    match name {
        "coredns" => {
            let c = configuration;
            let tolerations = c.get("tolerations").cloned().unwrap_or_else(|| {
                json!([
                    {"key": "CriticalAddonsOnly", "operator": "Exists"},
                    {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"},
                ])
            });
            let resources = c.get("resources").cloned().unwrap_or_else(
                || json!({"requests": {"cpu": "100m", "memory": "70Mi"}, "limits": {"memory": "170Mi"}}),
            );
            let mut spec = json!({
                "priorityClassName": "system-cluster-critical",
                "tolerations": tolerations,
                "containers": [{"name": "coredns", "resources": resources,
                    "ports": [{"containerPort": 53, "protocol": "UDP"}, {"containerPort": 53, "protocol": "TCP"}]}],
            });
            for k in ["nodeSelector", "affinity"] {
                if let Some(v) = c.get(k) {
                    spec[k] = v.clone();
                }
            }
            let replicas = c
                .get("replicaCount")
                .and_then(Value::as_u64)
                .map_or(2, |n| u32::try_from(n).unwrap_or(u32::MAX));
            vec![PodTemplate {
                owner: "Deployment kube-system/coredns".into(),
                kind: WorkloadKind::Deployment,
                replicas,
                spec,
            }]
        }
        "vpc-cni" => vec![ds("aws-node", Some("25m"))],
        "kube-proxy" => vec![ds("kube-proxy", Some("100m"))],
        "eks-pod-identity-agent" => vec![ds("eks-pod-identity-agent", None)],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coredns_takes_its_configuration() {
        let d = pod_templates("coredns", &Value::Null);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].replicas, 2);
        assert_eq!(d[0].spec["tolerations"][0]["key"], "CriticalAddonsOnly");
        let custom = pod_templates(
            "coredns",
            &json!({"tolerations": [{"key": "dedicated", "operator": "Exists"}], "replicaCount": 3,
                    "nodeSelector": {"pool": "system"}}),
        );
        assert_eq!(custom[0].replicas, 3);
        assert_eq!(
            custom[0].spec["tolerations"],
            json!([{"key": "dedicated", "operator": "Exists"}])
        );
        assert_eq!(custom[0].spec["nodeSelector"], json!({"pool": "system"}));
    }

    #[test]
    fn node_agents_are_daemonsets_tolerating_everything() {
        for (name, owner) in [
            ("vpc-cni", "DaemonSet kube-system/aws-node"),
            ("kube-proxy", "DaemonSet kube-system/kube-proxy"),
            ("eks-pod-identity-agent", "DaemonSet kube-system/eks-pod-identity-agent"),
        ] {
            let t = pod_templates(name, &Value::Null);
            assert_eq!(t[0].owner, owner);
            assert_eq!(t[0].kind, WorkloadKind::DaemonSet);
            assert_eq!(t[0].spec["tolerations"], json!([{"operator": "Exists"}]));
        }
        assert!(pod_templates("aws-ebs-csi-driver", &Value::Null).is_empty());
    }
}
