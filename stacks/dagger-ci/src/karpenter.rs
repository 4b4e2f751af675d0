//! The `Karpenter` component: the node role and its access entry, the controller role
//! (EKS Pod Identity, or IRSA as an option) with its scoped policy, the interruption queue
//! and its EventBridge rules, the Helm chart, and the `runners` NodePool and EC2NodeClass.
//!
//! Rules kept here: the node role is `KarpenterNodeRole-<cluster>` and is the only role the
//! controller may pass (to EC2 only); the queue is named after the cluster and is what
//! `settings.interruptionQueue` says; every EC2 write of the controller is scoped by the
//! `kubernetes.io/cluster/<cluster>` and `karpenter.sh/nodepool` tags; the NodePool and
//! EC2NodeClass are applied after the chart that installs their CRDs.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};
use spar::aws::eks::{AccessEntry, PodIdentityAssociation};
use spar::aws::events::{Rule, Target};
use spar::aws::iam::{OpenIdConnectProvider, Policy, PolicyDocument, Role, RolePolicyAttachment, Statement};
use spar::aws::sqs::Queue;
use spar::kubernetes::{Chart, Object};
use spar::prelude::*;

use crate::StackError;
use crate::cluster::{Cluster, toleration_exists};
use crate::config::ChartsConfig;
use crate::values::{Doc, Recorded, add_recorded};

pub const CHART: &str = "oci://public.ecr.aws/karpenter/karpenter";

/// `[karpenter]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KarpenterConfig {
    pub version: String,
    /// `pod_identity` (default) or `irsa`.
    pub identity: Identity,
    pub replicas: u32,
    /// The controller's tolerations (default: the critical nodes' taint).
    pub tolerations: Option<Vec<Taint>>,
    pub node_pool: NodePoolConfig,
    pub node_class: NodeClassConfig,
}

impl Default for KarpenterConfig {
    fn default() -> Self {
        KarpenterConfig {
            version: "1.14.1".into(),
            identity: Identity::PodIdentity,
            replicas: 2,
            tolerations: None,
            node_pool: NodePoolConfig::default(),
            node_class: NodeClassConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Identity {
    PodIdentity,
    Irsa,
}

/// A taint in Kubernetes spelling.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Taint {
    pub key: String,
    #[serde(default)]
    pub value: Option<String>,
    pub effect: String,
}

impl Taint {
    /// The toleration of this taint (`Exists` when it has no value).
    pub fn toleration(&self) -> Value {
        match &self.value {
            Some(v) => json!({"key": self.key, "operator": "Equal", "value": v, "effect": self.effect}),
            None => json!({"key": self.key, "operator": "Exists", "effect": self.effect}),
        }
    }
}

/// `[karpenter.node_pool]`: the pool runner nodes come from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodePoolConfig {
    pub name: String,
    pub instance_families: Vec<String>,
    /// `karpenter.k8s.aws/instance-local-nvme` Gte this many GB (none: no requirement).
    pub min_local_nvme_gb: Option<u32>,
    pub architectures: Vec<String>,
    pub capacity_types: Vec<String>,
    pub taints: Vec<Taint>,
    pub labels: BTreeMap<String, String>,
    pub expire_after: String,
    pub termination_grace_period: String,
    pub consolidation_policy: String,
    pub consolidate_after: String,
    pub limit_cpu: u32,
    pub limit_memory: String,
}

impl Default for NodePoolConfig {
    fn default() -> Self {
        NodePoolConfig {
            name: "runners".into(),
            instance_families: ["c6id", "m6id", "r6id", "c7gd", "m7gd"].map(String::from).to_vec(),
            min_local_nvme_gb: Some(400),
            architectures: vec!["amd64".into(), "arm64".into()],
            capacity_types: vec!["on-demand".into()],
            taints: vec![Taint {
                key: "github-actions-runner".into(),
                value: Some("true".into()),
                effect: "NoSchedule".into(),
            }],
            labels: BTreeMap::from([("github-actions-runner".to_string(), "true".to_string())]),
            expire_after: "720h".into(),
            termination_grace_period: "2h".into(),
            consolidation_policy: "WhenEmpty".into(),
            consolidate_after: "10m".into(),
            limit_cpu: 256,
            limit_memory: "1024Gi".into(),
        }
    }
}

/// `[karpenter.node_class]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeClassConfig {
    pub name: String,
    /// `al2023@latest` (pin a version such as `al2023@v20260101` in production).
    pub ami_alias: String,
    /// `RAID0` puts the instance-store NVMe disks in one array at `/mnt/k8s-disks/0`.
    pub instance_store_policy: Option<String>,
    pub root_volume_gib: u32,
    pub http_put_response_hop_limit: u32,
    /// Also give runner nodes the cluster security group EKS creates (the one the critical
    /// nodes and the control plane have). Without it, or rules of your own between the
    /// groups, runner nodes reach neither CoreDNS nor the control plane (`check` says so).
    pub cluster_security_group: bool,
}

impl Default for NodeClassConfig {
    fn default() -> Self {
        NodeClassConfig {
            name: "runners".into(),
            ami_alias: "al2023@latest".into(),
            instance_store_policy: Some("RAID0".into()),
            root_volume_gib: 50,
            http_put_response_hop_limit: 1,
            cluster_security_group: true,
        }
    }
}

/// What the component declared (facts the checks read).
pub struct Karpenter {
    pub node_role_name: String,
    pub queue_name: String,
    pub identity: Identity,
    pub chart_version: String,
    /// The chart's values without their outputs.
    pub values: Value,
    /// The chart's values as declared, outputs (the IRSA annotation) included.
    pub chart_values: Doc,
    /// The namespace the chart (and so the controller's service account) is installed in.
    pub chart_namespace: String,
    pub node_pool: Value,
    pub node_class: Value,
    /// The IAM roles declared with a plain trust policy (the node role; the Pod Identity
    /// controller role), as declared.
    pub roles: Vec<Recorded>,
    /// The EKS access entries, as declared.
    pub access_entry_decls: Vec<Recorded>,
    /// The Pod Identity associations, as declared.
    pub pod_identity_associations: Vec<Recorded>,
    /// The IAM OIDC providers (IRSA), as declared.
    pub oidc_providers: Vec<Recorded>,
    /// The controller policy's role attachments, as declared.
    pub policy_attachments: Vec<Recorded>,
    /// The controller policy as declared.
    pub controller_policy: DeclaredPolicy,
}

/// A policy whose document names ARNs known only after apply: the document declared with
/// slots ([`NODE_ROLE_SLOT`], [`ACCOUNT_SLOT`], [`QUEUE_SLOT`]) and the resources whose
/// outputs fill them ([`fill_controller_policy`] is the only way the slots are filled).
#[derive(Debug, Clone)]
pub struct DeclaredPolicy {
    pub address: String,
    pub template: PolicyDocument,
    /// The resources whose ARN fills [`NODE_ROLE_SLOT`].
    pub node_role_from: Vec<String>,
    /// The resources whose ARN fills [`QUEUE_SLOT`].
    pub queue_from: Vec<String>,
}

/// Where the node role's ARN goes in the declared controller policy.
pub const NODE_ROLE_SLOT: &str = "arn:aws:iam::${account}:role/${node-role}";
/// Where the account id (of the node role) goes.
pub const ACCOUNT_SLOT: &str = "${account}";
/// Where the interruption queue's ARN goes.
pub const QUEUE_SLOT: &str = "arn:aws:sqs:${queue}";

/// The controller policy with its slots: what the declared policy is made from.
pub fn controller_policy_template(cluster: &str, region: &str) -> PolicyDocument {
    controller_policy(cluster, region, NODE_ROLE_SLOT, QUEUE_SLOT)
}

/// `template` with its slots filled by the node role's and the queue's ARNs.
pub fn fill_controller_policy(template: &PolicyDocument, node_role_arn: &str, queue_arn: &str) -> PolicyDocument {
    let account = node_role_arn.split(':').nth(4).unwrap_or("*");
    let fill = |v: &str| {
        v.replace(NODE_ROLE_SLOT, node_role_arn)
            .replace(QUEUE_SLOT, queue_arn)
            .replace(ACCOUNT_SLOT, account)
    };
    let mut doc = template.clone();
    for st in &mut doc.statement {
        for r in &mut st.resource {
            *r = fill(r);
        }
        for values in st.condition.values_mut().flat_map(|c| c.values_mut()) {
            for v in values {
                *v = fill(v);
            }
        }
    }
    doc
}

/// The node role's name.
pub fn node_role_name(cluster: &str) -> String {
    format!("KarpenterNodeRole-{cluster}")
}

/// The controller's policy, scoped as in Karpenter's own CloudFormation template.
pub fn controller_policy(cluster: &str, region: &str, node_role_arn: &str, queue_arn: &str) -> PolicyDocument {
    let owned_res = format!("aws:ResourceTag/kubernetes.io/cluster/{cluster}");
    let owned_req = format!("aws:RequestTag/kubernetes.io/cluster/{cluster}");
    let ec2 = |what: &str| format!("arn:aws:ec2:{region}:*:{what}");
    let account = node_role_arn.split(':').nth(4).unwrap_or("*").to_string();
    let profile = format!("arn:aws:iam::{account}:instance-profile/*");
    let tagged_create = [
        ec2("fleet/*"),
        ec2("instance/*"),
        ec2("volume/*"),
        ec2("network-interface/*"),
        ec2("launch-template/*"),
        ec2("spot-instances-request/*"),
    ];
    fn strs(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }
    let shared_run = [
        "arn:aws:ec2:*::image/*".to_string(),
        "arn:aws:ec2:*::snapshot/*".to_string(),
        ec2("security-group/*"),
        ec2("subnet/*"),
        ec2("capacity-reservation/*"),
    ];
    let cluster_arn = format!("arn:aws:eks:{region}:{account}:cluster/{cluster}");
    PolicyDocument::new(vec![
        Statement::allow(&["ec2:RunInstances", "ec2:CreateFleet"])
            .sid("AllowScopedEC2InstanceAccessActions")
            .resources(&strs(&shared_run)),
        Statement::allow(&["ec2:RunInstances", "ec2:CreateFleet"])
            .sid("AllowScopedEC2LaunchTemplateAccessActions")
            .resources(&[&ec2("launch-template/*")])
            .condition("StringEquals", &owned_res, &["owned"])
            .condition("StringLike", "aws:ResourceTag/karpenter.sh/nodepool", &["*"]),
        Statement::allow(&["ec2:RunInstances", "ec2:CreateFleet", "ec2:CreateLaunchTemplate"])
            .sid("AllowScopedEC2InstanceActionsWithTags")
            .resources(&strs(&tagged_create))
            .condition("StringEquals", &owned_req, &["owned"])
            .condition("StringEquals", "aws:RequestTag/eks:eks-cluster-name", &[cluster])
            .condition("StringLike", "aws:RequestTag/karpenter.sh/nodepool", &["*"]),
        Statement::allow(&["ec2:CreateTags"])
            .sid("AllowScopedResourceCreationTagging")
            .resources(&strs(&tagged_create))
            .condition("StringEquals", &owned_req, &["owned"])
            .condition("StringEquals", "aws:RequestTag/eks:eks-cluster-name", &[cluster])
            .condition(
                "StringEquals",
                "ec2:CreateAction",
                &["RunInstances", "CreateFleet", "CreateLaunchTemplate"],
            )
            .condition("StringLike", "aws:RequestTag/karpenter.sh/nodepool", &["*"]),
        Statement::allow(&["ec2:CreateTags"])
            .sid("AllowScopedResourceTagging")
            .resources(&[&ec2("instance/*")])
            .condition("StringEquals", &owned_res, &["owned"])
            .condition("StringLike", "aws:ResourceTag/karpenter.sh/nodepool", &["*"]),
        Statement::allow(&["ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"])
            .sid("AllowScopedDeletion")
            .resources(&[&ec2("instance/*"), &ec2("launch-template/*")])
            .condition("StringEquals", &owned_res, &["owned"])
            .condition("StringLike", "aws:ResourceTag/karpenter.sh/nodepool", &["*"]),
        Statement::allow(&[
            "ec2:DescribeCapacityReservations",
            "ec2:DescribeImages",
            "ec2:DescribeInstances",
            "ec2:DescribeInstanceStatus",
            "ec2:DescribeInstanceTypeOfferings",
            "ec2:DescribeInstanceTypes",
            "ec2:DescribeLaunchTemplates",
            "ec2:DescribePlacementGroups",
            "ec2:DescribeSecurityGroups",
            "ec2:DescribeSpotPriceHistory",
            "ec2:DescribeSubnets",
        ])
        .sid("AllowRegionalReadActions")
        .resources(&["*"])
        .condition("StringEquals", "aws:RequestedRegion", &[region]),
        Statement::allow(&["ssm:GetParameter"])
            .sid("AllowSSMReadActions")
            .resources(&[&format!("arn:aws:ssm:{region}::parameter/aws/service/*")]),
        Statement::allow(&["pricing:GetProducts"])
            .sid("AllowPricingReadActions")
            .resources(&["*"]),
        Statement::allow(&["sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage"])
            .sid("AllowInterruptionQueueActions")
            .resources(&[queue_arn]),
        Statement::allow(&["iam:PassRole"])
            .sid("AllowPassingInstanceRole")
            .resources(&[node_role_arn])
            .condition("StringEquals", "iam:PassedToService", &["ec2.amazonaws.com"]),
        Statement::allow(&["iam:CreateInstanceProfile", "iam:TagInstanceProfile"])
            .sid("AllowScopedInstanceProfileCreationActions")
            .resources(&[&profile])
            .condition("StringEquals", &owned_req, &["owned"])
            .condition(
                "StringEquals",
                "aws:RequestTag/topology.kubernetes.io/region",
                &[region],
            )
            .condition("StringLike", "aws:RequestTag/karpenter.k8s.aws/ec2nodeclass", &["*"]),
        Statement::allow(&[
            "iam:AddRoleToInstanceProfile",
            "iam:RemoveRoleFromInstanceProfile",
            "iam:DeleteInstanceProfile",
        ])
        .sid("AllowScopedInstanceProfileActions")
        .resources(&[&profile])
        .condition("StringEquals", &owned_res, &["owned"])
        .condition(
            "StringEquals",
            "aws:ResourceTag/topology.kubernetes.io/region",
            &[region],
        )
        .condition("StringLike", "aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass", &["*"]),
        Statement::allow(&["iam:GetInstanceProfile", "iam:ListInstanceProfiles"])
            .sid("AllowInstanceProfileReadActions")
            .resources(&[&profile]),
        Statement::allow(&["eks:DescribeCluster"])
            .sid("AllowAPIServerEndpointDiscovery")
            .resources(&[&cluster_arn]),
    ])
}

/// The queue's policy: EventBridge and SQS may send; nothing over plain HTTP.
pub fn queue_policy(queue_arn: &str) -> PolicyDocument {
    PolicyDocument::new(vec![
        Statement::allow(&["sqs:SendMessage"])
            .sid("EC2InterruptionPolicy")
            .principal("Service", "events.amazonaws.com")
            .principal("Service", "sqs.amazonaws.com")
            .resources(&[queue_arn]),
        Statement::deny(&["sqs:*"])
            .sid("DenyHTTP")
            .principal("AWS", "*")
            .resources(&[queue_arn])
            .condition("Bool", "aws:SecureTransport", &["false"]),
    ])
}

/// The interruption events Karpenter handles: (rule suffix, source, detail-type).
pub const INTERRUPTION_EVENTS: [(&str, &str, &str); 5] = [
    ("health", "aws.health", "AWS Health Event"),
    ("spot-interruption", "aws.ec2", "EC2 Spot Instance Interruption Warning"),
    ("rebalance", "aws.ec2", "EC2 Instance Rebalance Recommendation"),
    (
        "instance-state-change",
        "aws.ec2",
        "EC2 Instance State-change Notification",
    ),
    (
        "capacity-reservation-interruption",
        "aws.ec2",
        "EC2 Capacity Reservation Instance Interruption Warning",
    ),
];

/// The NodePool manifest.
pub fn node_pool_manifest(cfg: &NodePoolConfig, node_class: &str) -> Value {
    let mut requirements = vec![
        json!({"key": "karpenter.k8s.aws/instance-family", "operator": "In", "values": cfg.instance_families}),
        json!({"key": "kubernetes.io/arch", "operator": "In", "values": cfg.architectures}),
        json!({"key": "karpenter.sh/capacity-type", "operator": "In", "values": cfg.capacity_types}),
    ];
    if let Some(gb) = cfg.min_local_nvme_gb {
        requirements.insert(
            1,
            json!({"key": "karpenter.k8s.aws/instance-local-nvme", "operator": "Gte", "values": [gb.to_string()]}),
        );
    }
    json!({
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": cfg.name},
        "spec": {
            "template": {
                "metadata": {"labels": cfg.labels},
                "spec": {
                    "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": node_class},
                    "taints": cfg.taints,
                    "requirements": requirements,
                    "expireAfter": cfg.expire_after,
                    "terminationGracePeriod": cfg.termination_grace_period,
                }
            },
            "limits": {"cpu": cfg.limit_cpu, "memory": cfg.limit_memory},
            "disruption": {
                "consolidationPolicy": cfg.consolidation_policy,
                "consolidateAfter": cfg.consolidate_after,
            },
        }
    })
}

/// What the base EC2NodeClass manifest holds where the cluster security group's id goes.
pub const CLUSTER_SECURITY_GROUP_PLACEHOLDER: &str = "(the EKS cluster security group, known after apply)";

/// The EC2NodeClass manifest (its cluster-security-group term is a placeholder until
/// [`node_class_document`] places the output).
pub fn node_class_manifest(cfg: &NodeClassConfig, cluster: &str) -> Value {
    let mut spec = json!({
        "role": node_role_name(cluster),
        "amiSelectorTerms": [{"alias": cfg.ami_alias}],
        "subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": cluster}}],
        // The discovery-tagged node group; with `cluster_security_group`, also (its id known
        // after apply, placed by `node_class_document`) the cluster security group EKS
        // creates: the critical nodes and the control plane have that group, and it admits
        // only its own members, so runner nodes without it reach neither CoreDNS nor
        // kubelet's callers (EKS user guide, security group requirements; Karpenter's
        // guides tag this group for discovery).
        "securityGroupSelectorTerms": [{"tags": {"karpenter.sh/discovery": cluster}}],
        "blockDeviceMappings": [{
            "deviceName": "/dev/xvda",
            "ebs": {"volumeSize": format!("{}Gi", cfg.root_volume_gib), "volumeType": "gp3", "encrypted": true, "deleteOnTermination": true},
        }],
        "metadataOptions": {
            "httpEndpoint": "enabled",
            "httpProtocolIPv6": "disabled",
            "httpPutResponseHopLimit": cfg.http_put_response_hop_limit,
            "httpTokens": "required",
        },
        "tags": {"karpenter.sh/discovery": cluster},
    });
    if cfg.cluster_security_group {
        spec["securityGroupSelectorTerms"]
            .as_array_mut()
            .expect("a list")
            .push(json!({"id": CLUSTER_SECURITY_GROUP_PLACEHOLDER}));
    }
    if let Some(p) = &cfg.instance_store_policy {
        spec["instanceStorePolicy"] = json!(p);
    }
    json!({
        "apiVersion": "karpenter.k8s.aws/v1",
        "kind": "EC2NodeClass",
        "metadata": {"name": cfg.name},
        "spec": spec,
    })
}

/// The EC2NodeClass with the cluster security group's id in place of its placeholder.
pub fn node_class_document(manifest: &Value, cluster: &Cluster) -> Doc {
    let mut doc = Doc::new(manifest.clone());
    let terms = manifest["spec"]["securityGroupSelectorTerms"].as_array();
    for (i, t) in terms.into_iter().flatten().enumerate() {
        if t["id"] == CLUSTER_SECURITY_GROUP_PLACEHOLDER {
            let at = i.to_string();
            doc = doc.with(
                &["spec", "securityGroupSelectorTerms", &at, "id"],
                cluster.eks.cluster_security_group_id(),
            );
        }
    }
    doc
}

impl Karpenter {
    pub fn declare(
        s: &mut Stack,
        cfg: &KarpenterConfig,
        cluster: &Cluster,
        charts: &ChartsConfig,
        tags: &BTreeMap<String, String>,
    ) -> Result<Karpenter, StackError> {
        let name = cluster.name.clone();
        let region = cluster.region.clone();
        let role_tags = |mut r: Role| {
            for (k, v) in tags {
                r = r.tag(k, v.as_str());
            }
            r
        };

        // Node role: what runner nodes run as; EKS lets them join through an access entry.
        let mut roles = Vec::new();
        let mut access_entry_decls = Vec::new();
        let mut pod_identity_associations = Vec::new();
        let mut oidc_providers = Vec::new();
        let mut policy_attachments = Vec::new();
        let node_role_name = node_role_name(&name);
        let node_role = add_recorded(
            s,
            "node-role",
            role_tags(
                Role::assumed_by_service("ec2.amazonaws.com")
                    .name(node_role_name.as_str())
                    .description("Karpenter runner nodes"),
            ),
            ResourceOptions::new(),
            &mut roles,
        )?;
        for (n, p) in [
            ("node-worker", "AmazonEKSWorkerNodePolicy"),
            ("node-cni", "AmazonEKS_CNI_Policy"),
            ("node-ecr", "AmazonEC2ContainerRegistryPullOnly"),
            ("node-ssm", "AmazonSSMManagedInstanceCore"),
        ] {
            s.add(n, RolePolicyAttachment::aws_managed(node_role.name(), p))?;
        }
        let entry = add_recorded(
            s,
            "node-access-entry",
            AccessEntry::ec2_linux_nodes(cluster.eks.name(), node_role.arn()),
            ResourceOptions::new(),
            &mut access_entry_decls,
        )?;

        // Interruption queue, named after the cluster; its policy names its own ARN, built
        // from the account the node role lives in.
        let queue_name = name.clone();
        let q_region = region.clone();
        let q_name = queue_name.clone();
        let mut queue = Queue::new()
            .name(queue_name.as_str())
            .message_retention_seconds(300)
            .sqs_managed_sse(true)
            .policy(node_role.arn().map(move |role_arn: String| {
                let account = role_arn.split(':').nth(4).unwrap_or_default().to_string();
                queue_policy(&format!("arn:aws:sqs:{q_region}:{account}:{q_name}"))
            }));
        for (k, v) in tags {
            queue = queue.tag(k, v.as_str());
        }
        let queue = s.add("interruption-queue", queue)?;
        for (suffix, source, detail) in INTERRUPTION_EVENTS {
            let rule = s.add(
                &format!("rule-{suffix}"),
                Rule::new(json!({"source": [source], "detail-type": [detail]}))
                    .name(format!("{name}-{suffix}"))
                    .description(&format!("Karpenter interruption: {detail}")),
            )?;
            s.add(
                &format!("rule-{suffix}-target"),
                Target::new(rule.name(), queue.arn()).id("KarpenterInterruptionQueueTarget"),
            )?;
        }

        // Controller role: Pod Identity, or IRSA through the cluster's OIDC provider.
        let controller_name = format!("KarpenterController-{name}");
        let controller_role = match cfg.identity {
            Identity::PodIdentity => add_recorded(
                s,
                "controller-role",
                role_tags(
                    Role::new(PolicyDocument::new(vec![
                        Statement::allow(&["sts:AssumeRole", "sts:TagSession"])
                            .principal("Service", "pods.eks.amazonaws.com"),
                    ]))
                    .name(controller_name.as_str()),
                ),
                ResourceOptions::new(),
                &mut roles,
            )?,
            Identity::Irsa => {
                let oidc = add_recorded(
                    s,
                    "oidc-provider",
                    OpenIdConnectProvider::new(cluster.eks.oidc_issuer()).client_ids(&["sts.amazonaws.com"]),
                    ResourceOptions::new(),
                    &mut oidc_providers,
                )?;
                let trust = oidc.arn().zip(&oidc.issuer_host_path()).map(|(arn, host)| {
                    PolicyDocument::new(vec![
                        Statement::allow(&["sts:AssumeRoleWithWebIdentity"])
                            .principal("Federated", &arn)
                            .condition(
                                "StringEquals",
                                &format!("{host}:sub"),
                                &["system:serviceaccount:kube-system:karpenter"],
                            )
                            .condition("StringEquals", &format!("{host}:aud"), &["sts.amazonaws.com"]),
                    ])
                });
                s.add(
                    "controller-role",
                    role_tags(Role::new(trust).name(controller_name.as_str())),
                )?
            }
        };
        // The policy document is declared with slots for the ARNs known after apply; the
        // checks read the same document the policy is filled from.
        let template = controller_policy_template(&name, &region);
        let (node_role_arn, queue_arn) = (node_role.arn(), queue.arn());
        let filled = template.clone();
        let policy = s.add(
            "controller-policy",
            Policy::new(
                node_role_arn
                    .zip(&queue_arn)
                    .map(move |(role, q)| fill_controller_policy(&filled, &role, &q)),
            )
            .name(format!("KarpenterControllerPolicy-{name}"))
            .description("Karpenter controller, scoped to this cluster's tags"),
        )?;
        let controller_policy = DeclaredPolicy {
            address: policy.address().as_str().to_string(),
            template,
            node_role_from: node_role_arn.sources().iter().map(|a| a.as_str().to_string()).collect(),
            queue_from: queue_arn.sources().iter().map(|a| a.as_str().to_string()).collect(),
        };
        let attach = add_recorded(
            s,
            "controller-policy-attachment",
            RolePolicyAttachment::new(controller_role.name(), policy.arn()),
            ResourceOptions::new(),
            &mut policy_attachments,
        )?;
        let chart_namespace = "kube-system".to_string();
        let mut chart_opts = cluster.after_nodes().depends_on(attach.address());
        if cfg.identity == Identity::PodIdentity {
            let assoc = add_recorded(
                s,
                "pod-identity",
                PodIdentityAssociation::new(cluster.eks.name(), &chart_namespace, "karpenter", controller_role.arn()),
                ResourceOptions::new(),
                &mut pod_identity_associations,
            )?;
            chart_opts = chart_opts.depends_on(assoc.address());
        }

        let values = json!({
            "settings": {"clusterName": name, "interruptionQueue": queue_name},
            "replicas": cfg.replicas,
            "serviceAccount": {"create": true, "name": "karpenter"},
            "nodeSelector": {cluster.critical_label.0.as_str(): cluster.critical_label.1},
            "tolerations": match &cfg.tolerations {
                Some(ts) => ts.iter().map(Taint::toleration).collect::<Vec<_>>(),
                None => vec![toleration_exists(&cluster.critical_taint.0)],
            },
        });
        let mut doc = Doc::new(values.clone());
        if cfg.identity == Identity::Irsa {
            doc = doc.with(
                &["serviceAccount", "annotations", "eks.amazonaws.com/role-arn"],
                controller_role.arn(),
            );
        }
        let mut chart = Chart::new(
            &cluster.provider,
            &charts.reference("karpenter", CHART),
            "karpenter",
            &chart_namespace,
        );
        if let Some(v) = charts.version(&cfg.version) {
            chart = chart.version(&v);
        }
        if let Some(h) = &charts.helm {
            chart = chart.helm(h);
        }
        let chart = s.add_with("chart", chart.values(doc.clone()), charts.wait(chart_opts))?;

        let node_class = node_class_manifest(&cfg.node_class, &name);
        let node_pool = node_pool_manifest(&cfg.node_pool, &cfg.node_class.name);
        let nc = s.add(
            "node-class",
            Object::document(&cluster.provider, node_class_document(&node_class, cluster))
                .after(&chart)
                .after(&entry),
        )?;
        s.add(
            "node-pool",
            Object::dynamic(&cluster.provider, node_pool.clone())
                .after(&chart)
                .after(&nc),
        )?;

        Ok(Karpenter {
            node_role_name: node_role_name.clone(),
            queue_name,
            identity: cfg.identity,
            chart_version: cfg.version.clone(),
            values,
            chart_values: doc,
            chart_namespace,
            node_pool,
            node_class,
            roles,
            access_entry_decls,
            pod_identity_associations,
            oidc_providers,
            policy_attachments,
            controller_policy,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filled_template_is_the_controller_policy() {
        let role = "arn:aws:iam::123456789012:role/KarpenterNodeRole-c";
        let queue = "arn:aws:sqs:eu-west-1:123456789012:c";
        let filled = fill_controller_policy(&controller_policy_template("c", "eu-west-1"), role, queue);
        assert_eq!(filled, controller_policy("c", "eu-west-1", role, queue));
        let text = serde_json::to_string(&filled).unwrap();
        assert!(!text.contains("${"), "{text}");
    }
}
