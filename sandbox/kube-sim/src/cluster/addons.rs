//! EKS add-ons: the workloads EKS installs in the cluster for an ACTIVE managed add-on.
//!
//! Owns [`sync_addons`]: for each add-on the AWS emulator reports (see [`crate::cloud`]),
//! the Deployment or DaemonSets that EKS would run in its namespace (`kube-system` unless
//! the add-on names another; a namespace that does not exist yet leaves it uninstalled), built from
//! `spar_scheduling::eks_addons` (the same pod templates, with the add-on's configuration
//! values, that `spar check` places), so CoreDNS lands on the nodes its tolerations and
//! node selector allow and the node agents take their share of every node.
//!
//! Rules kept here:
//! - An add-on has its workloads while ACTIVE, UPDATING or DEGRADED; none while CREATING,
//!   DELETING or once gone. A configuration change updates them in place.
//! - Each workload carries the label [`ADDON_LABEL`] (`<cluster>.<add-on>`), and only
//!   workloads with it are changed or removed here.
//! - Names, labels and images follow what EKS installs: `coredns` (label
//!   `k8s-app=kube-dns`), `aws-node`, `kube-proxy`, `eks-pod-identity-agent`, images from
//!   EKS's us-east-1 registry `602401143452.dkr.ecr.us-east-1.amazonaws.com/eks/...` at the
//!   add-on's version.
//! - Add-ons `spar_scheduling::eks_addons` does not model run nothing here.

use super::{create_as, delete_key, log_once, snapshot};
use crate::ops::State;
use crate::store::ObjKey;
use serde_json::{Value, json};
use spar_scheduling::{WorkloadKind, eks_addons};
use std::collections::BTreeSet;

/// The label marking a workload as an add-on's: `<cluster>.<add-on>`.
pub const ADDON_LABEL: &str = "sim.spar.dev/eks-addon";

/// An add-on as the AWS emulator reports it (`GET /sandbox-api/addons`).
#[derive(Debug, Clone, PartialEq, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AddonView {
    pub cluster: String,
    pub addon_name: String,
    pub addon_version: Option<String>,
    pub status: String,
    pub configuration_values: Value,
    /// Where EKS installs it (`namespaceConfig`; `kube-system` when not given).
    pub namespace: Option<String>,
}

impl AddonView {
    fn namespace(&self) -> &str {
        self.namespace
            .as_deref()
            .filter(|n| !n.is_empty())
            .unwrap_or("kube-system")
    }
}

fn selector_label(workload: &str) -> (&'static str, String) {
    match workload {
        "coredns" => ("k8s-app", "kube-dns".into()),
        "eks-pod-identity-agent" => ("app.kubernetes.io/name", workload.into()),
        _ => ("k8s-app", workload.into()),
    }
}

/// The workload objects add-on `a` runs.
pub fn workloads(a: &AddonView) -> Vec<Value> {
    let config = if a.configuration_values.is_object() {
        a.configuration_values.clone()
    } else {
        json!({})
    };
    let version = a.addon_version.clone().unwrap_or_else(|| "latest".into());
    let mark = format!("{}.{}", a.cluster, a.addon_name);
    eks_addons::pod_templates(&a.addon_name, &config)
        .into_iter()
        .map(|t| {
            let name = t.owner.rsplit('/').next().unwrap_or(&a.addon_name).to_string();
            let (k, v) = selector_label(&name);
            let mut spec = t.spec.clone();
            if let Some(cs) = spec["containers"].as_array_mut() {
                for c in cs {
                    let image_name = c["name"].as_str().unwrap_or(&name).to_string();
                    c["image"] = json!(format!(
                        "602401143452.dkr.ecr.us-east-1.amazonaws.com/eks/{image_name}:{version}"
                    ));
                }
            }
            let template = json!({"metadata": {"labels": {k: v, "eks.amazonaws.com/component": name}}, "spec": spec});
            let labels = json!({k: v, "eks.amazonaws.com/component": name, ADDON_LABEL: mark});
            match t.kind {
                WorkloadKind::DaemonSet => json!({
                    "apiVersion": "apps/v1", "kind": "DaemonSet",
                    "metadata": {"name": name, "namespace": a.namespace(), "labels": labels},
                    "spec": {"selector": {"matchLabels": {k: v}}, "template": template},
                }),
                _ => json!({
                    "apiVersion": "apps/v1", "kind": "Deployment",
                    "metadata": {"name": name, "namespace": a.namespace(), "labels": labels},
                    "spec": {"replicas": t.replicas, "selector": {"matchLabels": {k: v}}, "template": template},
                }),
            }
        })
        .collect()
}

/// Makes the add-on workloads match `addons` (see the module doc).
pub fn sync_addons(st: &mut State, addons: &[AddonView]) {
    let mut wanted: BTreeSet<ObjKey> = BTreeSet::new();
    for a in addons
        .iter()
        .filter(|a| matches!(a.status.as_str(), "ACTIVE" | "UPDATING" | "DEGRADED"))
    {
        for w in workloads(a) {
            let plural = if w["kind"] == "DaemonSet" {
                "daemonsets"
            } else {
                "deployments"
            };
            let name = w["metadata"]["name"].as_str().unwrap_or_default().to_string();
            let key = ObjKey::new("apps", plural, a.namespace(), &name);
            wanted.insert(key.clone());
            match st.store.get(&key).cloned() {
                None => {
                    if let Err(e) = create_as(st, "eks", "apps", plural, a.namespace(), w) {
                        log_once(
                            st,
                            format!(
                                "add-on {}: cannot create {name}: {}",
                                a.addon_name,
                                e.to_status()["message"].as_str().unwrap_or("")
                            ),
                        );
                    }
                }
                Some(existing) => {
                    let ours = existing
                        .pointer(&format!("/metadata/labels/{}", ADDON_LABEL.replace('/', "~1")))
                        .is_some();
                    let changed = existing["spec"]["template"]["spec"]["containers"]
                        != w["spec"]["template"]["spec"]["containers"]
                        || existing["spec"]["template"]["spec"]["tolerations"]
                            != w["spec"]["template"]["spec"]["tolerations"]
                        || existing["spec"]["template"]["spec"].get("nodeSelector")
                            != w["spec"]["template"]["spec"].get("nodeSelector")
                        || existing["spec"].get("replicas") != w["spec"].get("replicas");
                    if ours
                        && changed
                        && let Some(rt) = st.kinds.preferred("apps", plural)
                    {
                        let mut new = existing.clone();
                        new["spec"]["template"]["spec"] = w["spec"]["template"]["spec"].clone();
                        if let Some(r) = w["spec"].get("replicas") {
                            new["spec"]["replicas"] = r.clone();
                        }
                        st.system_update(&rt, &key, new);
                    }
                }
            }
        }
    }
    for plural in ["deployments", "daemonsets"] {
        for (key, w) in snapshot(st, "apps", plural) {
            let ours = w
                .pointer(&format!("/metadata/labels/{}", ADDON_LABEL.replace('/', "~1")))
                .is_some();
            if ours && !wanted.contains(&key) {
                delete_key(st, &key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coredns_is_a_deployment_tolerating_critical_addons_only() {
        let a = AddonView {
            cluster: "c".into(),
            addon_name: "coredns".into(),
            addon_version: Some("v1.11.4-eksbuild.2".into()),
            status: "ACTIVE".into(),
            configuration_values: Value::Null,
            namespace: None,
        };
        let ws = workloads(&a);
        assert_eq!(ws.len(), 1);
        let d = &ws[0];
        assert_eq!(d["kind"], "Deployment");
        assert_eq!(d["metadata"]["name"], "coredns");
        assert_eq!(d["spec"]["replicas"], 2);
        assert_eq!(d["spec"]["selector"]["matchLabels"]["k8s-app"], "kube-dns");
        let tolerations = d["spec"]["template"]["spec"]["tolerations"].to_string();
        assert!(tolerations.contains("CriticalAddonsOnly"), "{tolerations}");
        assert!(
            d["spec"]["template"]["spec"]["containers"][0]["image"]
                .as_str()
                .unwrap()
                .ends_with("coredns:v1.11.4-eksbuild.2")
        );
    }
}
