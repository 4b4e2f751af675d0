//! `existing-network-paths`: `network-paths` on an existing cluster (`[cluster]
//! existing`), whose VPC the stack does not declare. Its network (subnets, route tables
//! and routes, gateways, endpoints, security groups and their rules), the cluster, the
//! node group and its launch template are lookups, so the check runs when planning, on
//! what they read (`spar::aws::ec2::VpcNetwork`, `VpcModel::from_reads`), and asks the
//! same questions as `network-paths` ([`super::network::Questions`]).
//!
//! Where the workloads land: the declared ones (Karpenter, ARC, cert-manager, the
//! engine, the runners) and the existing cluster's own CoreDNS, kube-proxy and VPC CNI
//! (modelled as the EKS add-ons of those names: an existing cluster runs them, as an
//! add-on or self-managed), on the NodePools the stack declares and on the node group as
//! read (instance types, labels, taints).

use serde_json::Value;
use spar::Stack;
use spar::address::Address;
use spar::analysis::network::VpcModel;
use spar::aws::ec2::VpcNetwork;
use spar::model::checks::Check;
use spar::provider::ReadResult;

use super::network::{Questions, node_classes};
use super::placement::Analysis;
use super::workloads::{Gathered, node_group_shape};
use crate::Components;

pub const NAME: &str = "existing-network-paths";

/// The add-ons every EKS cluster runs, whose pods the existing cluster has already.
const CLUSTER_ADDONS: [&str; 3] = ["coredns", "kube-proxy", "vpc-cni"];

/// What `existing-network-paths` judges the reads against, taken from the declarations.
pub struct ExistingNetworkCheck {
    cluster: Address,
    node_group: Address,
    node_group_name: String,
    launch_templates: Address,
    network: VpcNetwork,
    gathered: Gathered,
    classes: Vec<(String, Result<Value, String>)>,
    region: String,
}

/// The check's inputs when the components stand on an existing cluster (`gathered`: the
/// workloads the other checks gathered; `resources`: every declared resource).
pub fn prepare(
    c: &Components,
    gathered: &Gathered,
    resources: &[spar::graph::DesiredResource],
) -> Option<ExistingNetworkCheck> {
    let eks = c.eks.as_ref()?;
    let existing = eks.cluster.existing.as_ref()?;
    Some(ExistingNetworkCheck {
        cluster: existing.cluster.clone(),
        node_group: existing.node_group.clone(),
        node_group_name: existing.node_group_name.clone(),
        launch_templates: existing.launch_templates.clone(),
        network: existing.network.clone(),
        gathered: gathered.clone(),
        classes: node_classes(resources),
        region: eks.cluster.region.clone(),
    })
}

impl ExistingNetworkCheck {
    /// Declares `existing-network-paths` on `s`.
    pub fn declare(self, s: &mut Stack) {
        s.check_lookups(
            NAME,
            "in the existing cluster's VPC as read: DNS from every node shape to CoreDNS, control plane and nodes both ways, webhooks, runner nodes to the internet, Karpenter to the AWS APIs",
            move |read| {
                let failed = |why: String| Check::new(NAME, "").failures(vec![why]);
                let (Some(cluster), Some(group)) = (read.read(&self.cluster), read.read(&self.node_group)) else {
                    return failed("the existing cluster or its node group was not read".into());
                };
                let mut gathered = self.gathered.clone();
                match node_group_shape(&self.node_group_name, &group.inputs) {
                    Ok(shape) => gathered.shapes.push(shape),
                    Err(e) => return failed(format!("the node group `{}`: {e}", self.node_group_name)),
                }
                for addon in CLUSTER_ADDONS {
                    gathered.add_eks_addon(self.cluster.as_str(), addon, &Value::Null);
                }
                let analysis = Analysis::of(gathered, None);
                // The EC2NodeClasses name the cluster security group by the id its lookup read.
                let classes: Vec<(String, Result<Value, String>)> = self
                    .classes
                    .iter()
                    .map(|(pool, m)| (pool.clone(), m.as_ref().map(|m| read.resolve(m)).map_err(Clone::clone)))
                    .collect();
                let questions = Questions::new(&analysis, &classes, &self.region, |name| {
                    if name == self.node_group_name {
                        Ok(group.id.clone())
                    } else {
                        Err(format!("node group {name} is not the existing cluster's"))
                    }
                });
                let templates = read.items(&self.launch_templates);
                if let Some(why) = template_version_differs(&self.node_group_name, &group.inputs, &templates) {
                    return failed(why);
                }
                let mut reads: Vec<(&str, ReadResult)> = self.network.reads(read);
                reads.push(("aws:eks:Cluster", cluster.clone()));
                reads.push(("aws:eks:Nodegroup", group.clone()));
                reads.extend(templates.into_iter().map(|t| ("aws:ec2:LaunchTemplate", t)));
                let refs: Vec<(&str, &ReadResult)> = reads.iter().map(|(k, r)| (*k, r)).collect();
                let model = match VpcModel::from_reads(&refs) {
                    Ok(m) => m,
                    Err(e) => return failed(format!("the existing VPC as read cannot be modelled: {e}")),
                };
                let v = questions.judge(&model, std::slice::from_ref(&cluster.id));
                Check::new(NAME, "").failures(v.failures).evidence(v.evidence)
            },
        );
    }
}

/// Why the launch template read (its default version, as the kind reads it) may not be the
/// one the node group's nodes run: the group pins another version, whose security groups
/// may differ. `None` when it is the same version, or the group has no template.
fn template_version_differs(group_name: &str, group: &Value, templates: &[ReadResult]) -> Option<String> {
    let pinned = group.get("launch_template").filter(|t| !t.is_null())?;
    let id = pinned["id"].as_str().unwrap_or_default();
    let Some(t) = templates.iter().find(|t| t.id == id) else {
        return Some(format!(
            "the node group `{group_name}` uses launch template {id}, which was not read"
        ));
    };
    let default = t.outputs["default_version"].as_i64();
    let latest = t.outputs["latest_version"].as_i64();
    let version = pinned["version"].as_str().unwrap_or("$Default");
    let same = match version {
        "$Default" => true,
        "$Latest" => latest.is_some() && latest == default,
        v => v.parse::<i64>().ok().is_some_and(|v| Some(v) == default),
    };
    (!same).then(|| {
        format!(
            "the node group `{group_name}` runs version {version} of launch template {id}, but its default version ({}) is what spar reads; their security groups may differ: make {version} the default version, or waive `{NAME}`",
            default.map_or("unknown".to_string(), |d| d.to_string())
        )
    })
}
