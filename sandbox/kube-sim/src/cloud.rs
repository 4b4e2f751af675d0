//! The link to the sandbox's AWS emulator: what EKS does to a cluster from the outside.
//!
//! Owns [`run`], a task that polls the emulator's read-only endpoints
//! `GET /sandbox-api/nodegroups` and `GET /sandbox-api/addons` (see `sandbox/aws/README.md`)
//! and makes the cluster match: the managed node groups' Nodes ([`crate::cluster::nodes`])
//! and the add-ons' workloads ([`crate::cluster::addons`]).
//!
//! Rules kept here:
//! - Pull, not push: the emulator knows nothing of the simulator; `sandbox/up` tells the
//!   simulator the emulator's URL (`--aws-endpoint`). Polling every [`POLL`] keeps a node
//!   group's nodes within a fraction of a second of its ACTIVE status.
//! - Every poll syncs (the syncs write only differences), so a `/sim/reset` or a node
//!   deleted by a client is repaired at the next poll, as a kubelet would re-register.
//! - An endpoint that does not answer, or answers something unreadable, changes nothing
//!   (its last view stays) and is reported once per distinct error.
//! - With `--eks-cluster NAME` only that cluster's node groups and add-ons count.

use crate::cluster::addons::{AddonView, sync_addons};
use crate::cluster::nodes::{NodeGroupView, sync_node_groups};
use crate::ops::State;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// How often the emulator is asked.
pub const POLL: Duration = Duration::from_millis(250);

#[derive(serde::Deserialize)]
struct NodeGroups {
    nodegroups: Vec<NodeGroupView>,
}

#[derive(serde::Deserialize)]
struct Addons {
    addons: Vec<AddonView>,
}

async fn get<T: serde::de::DeserializeOwned>(client: &reqwest::Client, url: &str) -> Result<T, String> {
    let resp = client.get(url).send().await.map_err(|e| format!("GET {url}: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("GET {url}: HTTP {}", resp.status()));
    }
    resp.json::<T>()
        .await
        .map_err(|e| format!("GET {url}: unreadable answer: {e}"))
}

/// Polls the emulator at `endpoint` until `shutdown` flips to true.
pub async fn run(
    endpoint: String,
    cluster: Option<String>,
    state: Arc<Mutex<State>>,
    notify: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
) {
    let base = endpoint.trim_end_matches('/').to_string();
    let client = match reqwest::Client::builder().timeout(Duration::from_secs(5)).build() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("spar-kube-sim: no HTTP client for the AWS emulator: {e}");
            return;
        }
    };
    let mut last_error = String::new();
    loop {
        let groups = get::<NodeGroups>(&client, &format!("{base}/sandbox-api/nodegroups")).await;
        let addons = get::<Addons>(&client, &format!("{base}/sandbox-api/addons")).await;
        let ours = |c: &str| cluster.as_deref().is_none_or(|want| want == c);
        {
            let mut st = state.lock().expect("state lock");
            let before = st.store.rv();
            let mut errors = Vec::new();
            match groups {
                Ok(g) => {
                    let g: Vec<NodeGroupView> = g.nodegroups.into_iter().filter(|g| ours(&g.cluster)).collect();
                    sync_node_groups(&mut st, &g);
                }
                Err(e) => errors.push(e),
            }
            match addons {
                Ok(a) => {
                    let a: Vec<AddonView> = a.addons.into_iter().filter(|a| ours(&a.cluster)).collect();
                    sync_addons(&mut st, &a);
                }
                Err(e) => errors.push(e),
            }
            let error = errors.join("; ");
            if !error.is_empty() && error != last_error {
                eprintln!("spar-kube-sim: AWS emulator: {error}");
            }
            last_error = error;
            if st.store.rv() != before {
                notify.notify_one();
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
    }
}
