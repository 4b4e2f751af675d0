//! `existing-cluster`: the lookup check of a cluster the stack does not create
//! (`[cluster] existing`). What it judges is read when planning (the cluster and the node
//! group the controllers run on are lookups), so it runs then, not in `check`:
//!
//! - the cluster's Kubernetes version is one the declared Karpenter supports (Karpenter's
//!   compatibility matrix, [`super::KARPENTER_MIN`]);
//! - its authentication mode takes the access entries the stack declares (`API` or
//!   `API_AND_CONFIG_MAP`);
//! - the node group has at least two nodes (controllers survive one node's loss), and every
//!   controller the stack declares (Karpenter, ARC, cert-manager) lands on it: the
//!   scheduler's filters (its taints, its labels, requests against allocatable after the
//!   DaemonSets that run there) on the instance types it was read with.

use spar::Stack;
use spar::analysis::scheduling::{Placer, PodTemplate, WorkloadKind};
use spar::model::checks::Check;

use super::workloads::{Gathered, Role, node_group_shape};
use super::{KARPENTER_MIN, version_tuple};
use crate::Components;

pub const NAME: &str = "existing-cluster";

/// What `existing-cluster` judges the lookups' reads against, taken from the declarations.
pub struct ExistingCheck {
    existing: crate::cluster::ExistingLookups,
    controllers: Vec<(String, PodTemplate)>,
    daemonsets: Vec<PodTemplate>,
    karpenter_version: String,
    needs_access_entries: bool,
}

/// The check's inputs when the components stand on an existing cluster (`gathered`: the
/// workloads the other checks gathered).
pub fn prepare(c: &Components, gathered: &Gathered) -> Option<ExistingCheck> {
    let eks = c.eks.as_ref()?;
    let existing = eks.cluster.existing.clone()?;
    Some(ExistingCheck {
        existing,
        controllers: gathered
            .workloads
            .iter()
            .filter(|w| w.role == Role::Controller && w.template.kind != WorkloadKind::DaemonSet)
            .map(|w| (w.address.clone(), w.template.clone()))
            .collect(),
        daemonsets: gathered
            .workloads
            .iter()
            .filter(|w| w.template.kind == WorkloadKind::DaemonSet)
            .map(|w| w.template.clone())
            .collect(),
        karpenter_version: eks.karpenter.chart_version.clone(),
        needs_access_entries: !eks.karpenter.access_entry_decls.is_empty(),
    })
}

impl ExistingCheck {
    /// Declares `existing-cluster` on `s`.
    pub fn declare(self, s: &mut Stack) {
        let ExistingCheck {
            existing,
            controllers,
            daemonsets,
            karpenter_version,
            needs_access_entries,
        } = self;
        s.check_lookups(
        NAME,
        "the existing cluster runs a version Karpenter supports, takes access entries, and its node group holds every controller",
        move |read| {
            let mut failures = Vec::new();
            let mut evidence = Vec::new();
            let cluster = read.inputs(&existing.cluster);
            let version = read.outputs(&existing.cluster)["version"].as_str().unwrap_or_default();
            match KARPENTER_MIN.iter().find(|(eks, _)| *eks == version) {
                Some((_, min)) if version_tuple(&karpenter_version) < version_tuple(min) => failures.push(format!(
                    "the existing cluster runs EKS {version}, which needs Karpenter >= {min}, but karpenter.version is {karpenter_version}"
                )),
                Some((_, min)) => evidence.push(format!(
                    "EKS {version}: Karpenter {karpenter_version} >= {min}"
                )),
                None => failures.push(format!(
                    "spar's Karpenter compatibility table has no EKS {version:?} (the existing cluster's version); check it by hand and waive `{NAME}`"
                )),
            }
            let mode = cluster["authentication_mode"].as_str().unwrap_or("CONFIG_MAP");
            if needs_access_entries && !matches!(mode, "API" | "API_AND_CONFIG_MAP") {
                failures.push(format!(
                    "the existing cluster's authentication mode is {mode}, which takes no access entries (Karpenter's node role needs one); switch it to API_AND_CONFIG_MAP"
                ));
            }
            let group = read.inputs(&existing.node_group);
            let desired = group["desired_size"].as_i64().unwrap_or(0);
            if desired < 2 {
                failures.push(format!(
                    "the node group `{}` has {desired} node(s): the controllers need 2, so that losing one node does not stop Karpenter",
                    existing.node_group_name
                ));
            }
            match node_group_shape(&existing.node_group_name, group) {
                Err(e) => failures.push(format!("the node group `{}`: {e}", existing.node_group_name)),
                Ok(shape) => {
                    let shapes = [shape];
                    match Placer::new(&shapes, &daemonsets) {
                        Err(e) => failures.push(e.to_string()),
                        Ok(placer) => {
                            for (address, t) in &controllers {
                                match placer.place(t) {
                                    Err(e) => failures.push(format!("{} ({address}): {e}", t.owner)),
                                    Ok(p) if p.fits_on(&existing.node_group_name) => evidence.push(format!(
                                        "{} ({address}) -> node group {} [{}]",
                                        t.owner,
                                        existing.node_group_name,
                                        p.shape(&existing.node_group_name)
                                            .map(|s| s.fits.join(", "))
                                            .unwrap_or_default()
                                    )),
                                    Ok(p) => failures.push(format!(
                                        "{} ({address}) cannot run on the existing node group: {}",
                                        t.owner,
                                        p.explain(&existing.node_group_name)
                                    )),
                                }
                            }
                        }
                    }
                }
            }
            Check::new(NAME, "").failures(failures).evidence(evidence)
        },
    );
    }
}
