//! The `KubeTarget`: the Kubernetes cluster the in-cluster parts (cert-manager, ARC, the
//! engine) are installed on, and where its controllers run. Two ways to get one: from the
//! EKS cluster the stack creates ([`crate::cluster::Cluster::target`]), or from a kubeconfig
//! ([`KubeTarget::from_kubeconfig`], any Kubernetes, no AWS).
//!
//! Rules kept here: controllers (ARC's controller and listeners, cert-manager) go to the
//! critical nodes when the target has them (their label selected, their taint tolerated),
//! and otherwise stay free of any selector, so the cluster's scheduler puts them on its
//! ordinary nodes; every workload waits for what the target says nodes and DNS need.

use serde::Deserialize;
use serde_json::{Value, json};
use spar::Address;
use spar::kubernetes::KubeProvider;
use spar::prelude::*;

use crate::cluster::toleration_exists;

/// `[cluster] kubeconfig = { path = "...", context = "..." }`: a cluster spar does not
/// create (GKE, AKS, on-premises, kind), reached through a kubeconfig file.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct KubeconfigConfig {
    /// The kubeconfig file (`~` is the home directory).
    pub path: String,
    /// One of its contexts (default: its current context).
    #[serde(default)]
    pub context: Option<String>,
}

/// Nodes reserved for controllers and add-ons: their taint (Kubernetes spelling) and label.
#[derive(Debug, Clone)]
pub struct CriticalNodes {
    /// `(key, value, effect)`.
    pub taint: (String, String, String),
    /// `(key, value)`.
    pub label: (String, String),
}

/// Where the in-cluster parts go.
pub struct KubeTarget {
    pub provider: Handle<KubeProvider>,
    /// The critical nodes, when the cluster has them (the EKS cluster spar creates).
    pub critical: Option<CriticalNodes>,
    /// What workloads must wait for: nodes to run on and DNS (nothing on a cluster that
    /// already runs).
    pub workloads_ready: Vec<Address>,
}

impl KubeTarget {
    /// The cluster of a kubeconfig file: declares the provider at `kubernetes` in the
    /// current component. `~/` in the path is the home directory.
    pub fn from_kubeconfig(s: &mut Stack, cfg: &KubeconfigConfig) -> spar::Result<KubeTarget> {
        let path = match cfg.path.strip_prefix("~/") {
            Some(rest) => std::env::var("HOME")
                .map(|home| format!("{home}/{rest}"))
                .unwrap_or_else(|_| cfg.path.clone()),
            None => cfg.path.clone(),
        };
        let provider = s.add("kubernetes", KubeProvider::kubeconfig(path, cfg.context.as_deref()))?;
        Ok(KubeTarget {
            provider,
            critical: None,
            workloads_ready: Vec::new(),
        })
    }

    /// Options making a Kubernetes workload wait for nodes and DNS.
    pub fn after_nodes(&self) -> ResourceOptions {
        let mut o = ResourceOptions::new();
        for a in &self.workloads_ready {
            o = o.depends_on(a);
        }
        o
    }

    /// Tolerations of a controller: the critical nodes' taint, or none.
    pub fn controller_tolerations(&self) -> Vec<Value> {
        match &self.critical {
            Some(c) => vec![toleration_exists(&c.taint.0)],
            None => Vec::new(),
        }
    }

    /// Adds a controller's placement to chart `values`: the critical nodes' label as
    /// `nodeSelector` and their taint in `tolerations`, or nothing on a cluster without them.
    pub fn place_controller(&self, values: &mut Value) {
        if let Some(c) = &self.critical {
            values["nodeSelector"] = json!({c.label.0.as_str(): c.label.1});
            values["tolerations"] = Value::from(self.controller_tolerations());
        }
    }
}
