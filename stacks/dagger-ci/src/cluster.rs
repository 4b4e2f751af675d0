//! The `Cluster` component: the cluster IAM role, the EKS cluster, the critical-add-ons
//! managed node group and its role, the EKS add-ons, and the Kubernetes provider bound to
//! the cluster.
//!
//! Rules kept here: `vpc-cni`, `kube-proxy` and `eks-pod-identity-agent` are installed
//! before the node group (nodes need the CNI to become Ready, and Pod Identity must work
//! the moment Karpenter starts); `coredns` after it, tolerating the critical taint (it has
//! nowhere else to run); the node group's taint is spelled the EKS way
//! (`NO_SCHEDULE`) in the API and the Kubernetes way (`NoSchedule`) in every toleration.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};
use spar::Address;
use spar::aws::ec2::{LaunchTemplate, VpcNetwork};
use spar::aws::eks::{Addon, Cluster as EksCluster, Nodegroup};
use spar::aws::iam::{PolicyDocument, Role, RolePolicyAttachment, Statement};
use spar::kubernetes::KubeProvider;
use spar::prelude::*;

use crate::StackError;
use crate::config::ClusterConfig;
use crate::network::Network;
use crate::target::{CriticalNodes, KubeTarget};

/// `[critical_nodes]`: the managed node group for cluster add-ons and controllers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CriticalNodesConfig {
    pub instance_types: Vec<String>,
    /// `AL2023_ARM_64_STANDARD` or `AL2023_x86_64_STANDARD` (default: by instance type).
    pub ami_type: Option<String>,
    pub min: i32,
    pub desired: i32,
    pub max: i32,
    /// The taint that keeps everything but add-ons and controllers off these nodes.
    pub taint_key: String,
    /// With `[cluster] existing`: the cluster's managed node group the controllers run on
    /// (selected by EKS's `eks.amazonaws.com/nodegroup` label); the other keys but
    /// `taint_key` describe a node group spar creates and are not read.
    pub node_group: Option<String>,
}

impl Default for CriticalNodesConfig {
    fn default() -> Self {
        CriticalNodesConfig {
            instance_types: vec!["m7g.large".into()],
            ami_type: None,
            min: 2,
            desired: 2,
            max: 3,
            taint_key: "CriticalAddonsOnly".into(),
            node_group: None,
        }
    }
}

/// A Kubernetes toleration as JSON (`{key, operator, effect?}`).
pub fn toleration_exists(key: &str) -> Value {
    json!({"key": key, "operator": "Exists"})
}

/// Graviton families (`m7g`, `c7gd`, `t4g`, ...) need the ARM AMI.
pub fn is_arm(instance_type: &str) -> bool {
    let family = instance_type.split('.').next().unwrap_or_default();
    family.len() >= 3 && family[1..].contains('g')
}

/// Why `arn` cannot be the KMS key of a cluster in `region`, if it cannot: it must be a key
/// ARN (`arn:aws:kms:<region>:<account>:key/<id>`) or an alias ARN (`...:alias/<name>`)
/// in the cluster's own region, as EKS requires.
pub fn kms_key_arn_problem(arn: &str, region: &str) -> Option<String> {
    let expected =
        "expected arn:aws:kms:<region>:<account>:key/<key-id> or arn:aws:kms:<region>:<account>:alias/<name>";
    let word = |s: &str, extra: &[char]| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || extra.contains(&c))
    };
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let why = match parts[..] {
        [prefix, partition, service, key_region, account, resource] => {
            let partition_ok = partition == "aws"
                || partition
                    .strip_prefix("aws-")
                    .is_some_and(|p| word(p, &[]) && p.chars().all(|c| !c.is_ascii_uppercase()));
            if prefix != "arn" || !partition_ok {
                Some("it does not start with arn:aws (or another AWS partition)".to_string())
            } else if service != "kms" {
                Some(format!("it names the service `{service}`, not kms"))
            } else if !word(key_region, &[]) || key_region.chars().any(|c| c.is_ascii_uppercase()) {
                Some("it names no region".to_string())
            } else if account.len() != 12 || !account.chars().all(|c| c.is_ascii_digit()) {
                Some(format!("the account `{account}` is not 12 digits"))
            } else if !(resource.strip_prefix("key/").is_some_and(|id| word(id, &[]))
                || resource.strip_prefix("alias/").is_some_and(|n| word(n, &['/', '_'])))
            {
                Some(format!("`{resource}` is neither key/<key-id> nor alias/<name>"))
            } else if key_region != region {
                return Some(format!(
                    "the key `{arn}` is in {key_region}, but the cluster is in {region}: EKS needs a key in the cluster's region"
                ));
            } else {
                None
            }
        }
        _ => Some("it is not an ARN".to_string()),
    };
    why.map(|why| format!("`{arn}` is not a KMS key ARN ({why}); {expected}"))
}

/// What the cluster component declared.
pub struct Cluster {
    pub name: String,
    pub region: String,
    pub version: String,
    pub authentication_mode: String,
    pub eks: Handle<EksCluster>,
    pub provider: Handle<KubeProvider>,
    /// The critical node group's taint in Kubernetes spelling.
    pub critical_taint: (String, String, String),
    /// The critical node group's label.
    pub critical_label: (String, String),
    pub critical_nodes: CriticalNodesConfig,
    /// Add-on names declared.
    pub addons: Vec<String>,
    /// What workloads must wait for: nodes to run on and DNS.
    pub workloads_ready: Vec<Address>,
    /// For a cluster that exists already: the lookups of the cluster and of the node group
    /// the controllers run on (what the lookup checks read).
    pub existing: Option<ExistingLookups>,
}

/// The lookups of an existing cluster.
#[derive(Debug, Clone)]
pub struct ExistingLookups {
    pub cluster: Address,
    pub node_group: Address,
    pub node_group_name: String,
    /// The node group's launch template, a set lookup (a group may have none).
    pub launch_templates: Address,
    /// The network of the cluster's VPC.
    pub network: VpcNetwork,
}

/// The Kubernetes provider bound to `eks` (created or looked up), authenticated with EKS
/// tokens for `region`.
fn kube_provider(s: &mut Stack, eks: &Handle<EksCluster>, region: &str) -> spar::Result<Handle<KubeProvider>> {
    s.add(
        "kubernetes",
        KubeProvider::eks(eks.endpoint(), eks.certificate_authority(), eks.name(), region),
    )
}

fn managed(role: &Handle<Role>, s: &mut Stack, name: &str, policy: &str) -> spar::Result<Address> {
    Ok(s.add(name, RolePolicyAttachment::aws_managed(role.name(), policy))?
        .address()
        .clone())
}

impl Cluster {
    pub fn declare(
        s: &mut Stack,
        cfg: &ClusterConfig,
        nodes: &CriticalNodesConfig,
        network: &Network,
    ) -> Result<Cluster, StackError> {
        let name = cfg.name.clone();
        if nodes.instance_types.is_empty() {
            return Err(StackError::Config {
                key: "critical_nodes.instance_types".into(),
                message: "list at least one instance type".into(),
            });
        }
        if !(nodes.min <= nodes.desired && nodes.desired <= nodes.max) {
            return Err(StackError::Config {
                key: "critical_nodes".into(),
                message: format!(
                    "min {} <= desired {} <= max {} does not hold",
                    nodes.min, nodes.desired, nodes.max
                ),
            });
        }
        if let Some(arn) = &cfg.secrets_encryption_key_arn
            && let Some(message) = kms_key_arn_problem(arn, &cfg.region)
        {
            return Err(StackError::Config {
                key: "cluster.secrets_encryption_key_arn".into(),
                message,
            });
        }
        let tags = |mut r: Role| {
            for (k, v) in &cfg.tags {
                r = r.tag(k, v.as_str());
            }
            r
        };

        let cluster_role = s.add(
            "cluster-role",
            tags(
                Role::new(PolicyDocument::new(vec![
                    Statement::allow(&["sts:AssumeRole", "sts:TagSession"]).principal("Service", "eks.amazonaws.com"),
                ]))
                .name(format!("{name}-cluster"))
                .description("EKS control plane"),
            ),
        )?;
        let cluster_policy = managed(&cluster_role, s, "cluster-policy", "AmazonEKSClusterPolicy")?;

        let cidrs: Vec<&str> = cfg.public_access_cidrs.iter().map(String::as_str).collect();
        let mut eks = EksCluster::new(cluster_role.arn(), network.private_subnet_ids())
            .name(name.as_str())
            .version(&cfg.version)
            .endpoint(cfg.public_endpoint, true, &cidrs)
            .authentication_mode(&cfg.authentication_mode)
            .bootstrap_creator_admin(true)
            .support_type(&cfg.support_type)
            .security_groups(vec![network.node_security_group.group_id().into()]);
        if let Some(arn) = &cfg.secrets_encryption_key_arn {
            eks = eks.secrets_encryption(arn.as_str());
        }
        for (k, v) in &cfg.tags {
            eks = eks.tag(k, v.as_str());
        }
        // The role's policy must be attached before EKS assumes it, and detached after.
        let eks = s.add_with("eks", eks, ResourceOptions::new().depends_on(&cluster_policy))?;

        // Add-ons the nodes need from their first boot.
        let mut addons = Vec::new();
        let mut early = Vec::new();
        for addon in ["vpc-cni", "kube-proxy", "eks-pod-identity-agent"] {
            // EKS's default version for the cluster's Kubernetes version: an upgrade of the
            // control plane is followed by the add-ons, then by the node group.
            let h = s.add(
                &format!("addon-{addon}"),
                Addon::new(eks.name(), addon).default_version_for(eks.version()),
            )?;
            early.push(h.address().clone());
            addons.push(addon.to_string());
        }

        let node_role = s.add(
            "critical-node-role",
            tags(Role::assumed_by_service("ec2.amazonaws.com").name(format!("{name}-critical-nodes"))),
        )?;
        let mut node_deps = early.clone();
        for (n, p) in [
            ("critical-worker", "AmazonEKSWorkerNodePolicy"),
            ("critical-cni", "AmazonEKS_CNI_Policy"),
            ("critical-ecr", "AmazonEC2ContainerRegistryReadOnly"),
            ("critical-ssm", "AmazonSSMManagedInstanceCore"),
        ] {
            node_deps.push(managed(&node_role, s, n, p)?);
        }
        let types: Vec<&str> = nodes.instance_types.iter().map(String::as_str).collect();
        let ami = nodes.ami_type.clone().unwrap_or_else(|| {
            if is_arm(types[0]) {
                "AL2023_ARM_64_STANDARD".into()
            } else {
                "AL2023_x86_64_STANDARD".into()
            }
        });
        let critical_label = ("karpenter.sh/controller".to_string(), "true".to_string());
        let mut ng = Nodegroup::new(eks.name(), node_role.arn(), network.private_subnet_ids())
            .name("critical")
            .instance_types(&types)
            .ami_type(&ami)
            .version(eks.version())
            .scaling(nodes.min, nodes.desired, nodes.max)
            .label(&critical_label.0, &critical_label.1)
            .taint(&nodes.taint_key, Some("true"), "NO_SCHEDULE");
        for (k, v) in &cfg.tags {
            ng = ng.tag(k, v.as_str());
        }
        let mut opts = ResourceOptions::new();
        for d in &node_deps {
            opts = opts.depends_on(d);
        }
        let nodegroup = s.add_with("critical-nodes", ng, opts)?;

        let coredns_tolerations = vec![toleration_exists(&nodes.taint_key)];
        let coredns = s.add_with(
            "addon-coredns",
            Addon::new(eks.name(), "coredns")
                .default_version_for(eks.version())
                .configuration(json!({ "tolerations": coredns_tolerations })),
            ResourceOptions::new().depends_on(nodegroup.address()),
        )?;
        addons.push("coredns".into());

        let provider = kube_provider(s, &eks, &cfg.region)?;

        Ok(Cluster {
            name,
            region: cfg.region.clone(),
            version: cfg.version.clone(),
            authentication_mode: cfg.authentication_mode.clone(),
            eks,
            provider,
            critical_taint: (nodes.taint_key.clone(), "true".into(), "NoSchedule".into()),
            critical_label,
            critical_nodes: nodes.clone(),
            addons,
            workloads_ready: vec![nodegroup.address().clone(), coredns.address().clone()],
            existing: None,
        })
    }

    /// An EKS cluster that exists already (`[cluster] existing`): looks up the cluster, the
    /// managed node group the controllers run on (and its launch template, if any), the
    /// network of the cluster's VPC (for `existing-network-paths`) and, with Pod Identity,
    /// the cluster's `eks-pod-identity-agent` add-on (a plan fails naming the lookup when
    /// one of the single lookups finds nothing);
    /// declares the Kubernetes provider bound to the cluster. Nothing here is ever changed
    /// or deleted: lookups are read, not managed.
    pub fn existing(
        s: &mut Stack,
        cfg: &ClusterConfig,
        nodes: &CriticalNodesConfig,
        needs_pod_identity: bool,
    ) -> Result<Cluster, StackError> {
        let name = cfg.name.clone();
        let group = nodes.node_group.clone().ok_or_else(|| StackError::Config {
            key: "critical_nodes.node_group".into(),
            message:
                "name the existing cluster's managed node group the controllers (Karpenter, ARC, cert-manager) run on"
                    .into(),
        })?;
        let eks = s.lookup("eks", EksCluster::lookup(name.as_str()))?;
        let nodegroup = s.lookup("critical-nodes", Nodegroup::lookup(name.as_str(), group.as_str()))?;
        // What the network check reads: the node group's launch template (its security
        // groups) and the VPC's whole network.
        let launch_templates = s.lookup_all(
            "critical-nodes-launch-template",
            LaunchTemplate::lookup().ids(nodegroup.launch_template_ids()),
        )?;
        let network = s.component("network", |s| VpcNetwork::lookup(s, eks.vpc_id()))?;
        let mut addons = Vec::new();
        if needs_pod_identity {
            s.lookup(
                "addon-eks-pod-identity-agent",
                Addon::lookup(name.as_str(), "eks-pod-identity-agent"),
            )?;
            addons.push("eks-pod-identity-agent".to_string());
        }
        let provider = kube_provider(s, &eks, &cfg.region)?;
        Ok(Cluster {
            name,
            region: cfg.region.clone(),
            // The existing cluster's version is read when planning (the lookup check
            // `existing-cluster` judges it), not configured.
            version: String::new(),
            authentication_mode: cfg.authentication_mode.clone(),
            existing: Some(ExistingLookups {
                cluster: eks.address().clone(),
                node_group: nodegroup.address().clone(),
                node_group_name: group.clone(),
                launch_templates: launch_templates.address().clone(),
                network,
            }),
            eks,
            provider,
            critical_taint: (nodes.taint_key.clone(), "true".into(), "NoSchedule".into()),
            critical_label: ("eks.amazonaws.com/nodegroup".into(), group),
            critical_nodes: nodes.clone(),
            addons,
            workloads_ready: Vec::new(),
        })
    }

    /// The cluster as the in-cluster parts see it: its provider, the critical nodes, and
    /// the node group and CoreDNS to wait for.
    pub fn target(&self) -> KubeTarget {
        KubeTarget {
            provider: self.provider.clone(),
            critical: Some(CriticalNodes {
                taint: self.critical_taint.clone(),
                label: self.critical_label.clone(),
            }),
            workloads_ready: self.workloads_ready.clone(),
        }
    }

    /// Options making a Kubernetes workload wait for nodes and DNS.
    pub fn after_nodes(&self) -> ResourceOptions {
        let mut o = ResourceOptions::new();
        for a in &self.workloads_ready {
            o = o.depends_on(a);
        }
        o
    }

    /// Tags for AWS objects of the stack.
    pub fn tags(cfg: &ClusterConfig) -> BTreeMap<String, String> {
        cfg.tags.clone()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn kms_key_arns_are_checked() {
        use super::kms_key_arn_problem as problem;
        for ok in [
            "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "arn:aws:kms:us-east-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab",
            "arn:aws:kms:us-east-1:111122223333:alias/eks/dagger-ci",
        ] {
            assert_eq!(problem(ok, "us-east-1"), None, "{ok}");
        }
        assert_eq!(
            problem("arn:aws-us-gov:kms:us-gov-west-1:111122223333:key/k-1", "us-gov-west-1"),
            None
        );
        for (bad, says) in [
            ("1234abcd-12ab-34cd-56ef-1234567890ab", "it is not an ARN"),
            ("alias/eks", "it is not an ARN"),
            ("arn:aws:iam::111122223333:role/k", "the service `iam`"),
            ("arn:aws:kms::111122223333:key/k", "no region"),
            ("arn:aws:kms:us-east-1:1111:key/k", "`1111` is not 12 digits"),
            ("arn:aws:kms:us-east-1:111122223333:key/", "neither key/<key-id>"),
            ("arn:aws:kms:us-east-1:111122223333:secret/k", "neither key/<key-id>"),
            ("ARN:aws:kms:us-east-1:111122223333:key/k", "start with arn:aws"),
            (
                "arn:aws:kms:eu-west-1:111122223333:key/k",
                "is in eu-west-1, but the cluster is in us-east-1",
            ),
        ] {
            let p = problem(bad, "us-east-1").unwrap_or_else(|| panic!("{bad} is refused"));
            assert!(p.contains(says) && p.contains(bad), "{bad}: {p}");
        }
    }

    #[test]
    fn graviton_types_are_arm() {
        assert!(super::is_arm("m7g.large"));
        assert!(super::is_arm("c7gd.4xlarge"));
        assert!(super::is_arm("t4g.large"));
        assert!(!super::is_arm("c6id.2xlarge"));
        assert!(!super::is_arm("m6id.4xlarge"));
    }
}
