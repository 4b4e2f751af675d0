//! Network reachability from declared AWS resources, offline: whether traffic can flow
//! between the parts of a declared VPC before anything is applied.
//!
//! What it owns: a [`VpcModel`] read from a stack's declared resources
//! ([`VpcModel::from_declared`], by kind string: `aws:ec2:Vpc`, `Subnet`, `SecurityGroup`,
//! `SecurityGroupRule`, `RouteTable`, `Route`, `RouteTableAssociation`,
//! `InternetGateway`, `NatGateway`, `VpcEndpoint`, `LaunchTemplate`, `aws:eks:Cluster`,
//! `aws:eks:Nodegroup`; other kinds are ignored), from the same kinds read by lookups
//! (an existing VPC: [`VpcModel::from_reads`]), or built by hand
//! ([`VpcModel::builder`]); the [`Endpoint`]s questions are asked about (an EKS control
//! plane, a managed node group, the nodes of a Karpenter EC2NodeClass); and three
//! questions, each answered [`Reach::Allowed`]/[`Reach::Routed`] with the rules and
//! routes that allow it, [`Reach::Blocked`] naming exactly what blocks it and how to fix
//! it, or [`Reach::Unknown`] naming the values only apply will tell:
//! [`VpcModel::reachable`], [`VpcModel::internet_egress`], [`VpcModel::aws_service`].
//!
//! Rules kept here:
//! - Security groups are stateful and allow-only: traffic from A to B is allowed iff some
//!   group of A has an egress rule covering (protocol, port) whose destination is a group
//!   B has or a CIDR holding every subnet B may be in, and some group of B has an ingress
//!   rule covering it whose source is a group A has or a CIDR holding every subnet of A.
//!   Protocol `-1` covers everything; tcp/udp port ranges are inclusive; icmp and other
//!   protocol numbers cover neither tcp nor udp.
//! - Every declared group has AWS's default egress rule (all traffic to `0.0.0.0/0`):
//!   `aws:ec2:SecurityGroup` keeps it and declares no inline rules, so declaring egress
//!   rules does not revoke it.
//! - Within one VPC the `local` route always applies. A subnet with no association uses
//!   its VPC's main route table, which holds only `local`. Only the `0.0.0.0/0` route is
//!   read for the internet; a NAT gateway must be public and sit in a subnet whose table
//!   routes `0.0.0.0/0` to an internet gateway attached to the VPC; a subnet routing
//!   straight to the internet gateway works only where it maps public IPs and the endpoint
//!   takes one. Every subnet of an endpoint must have a way out (a pod may land in any).
//! - EKS (user guide, "View Amazon EKS security group requirements for clusters",
//!   <https://docs.aws.amazon.com/eks/latest/userguide/sec-group-reqs.html>): each cluster
//!   gets a cluster security group, `<cluster address>#cluster-security-group`, tagged
//!   `kubernetes.io/cluster/<name>=owned` and `aws:eks:cluster-name=<name>`, admitting all
//!   traffic from itself and sending all traffic to `0.0.0.0/0` and to itself. The control
//!   plane's network interfaces have it plus the cluster's `security_group_ids`, in the
//!   cluster's subnets; a managed node group has it unless its launch template names
//!   security groups, then exactly those. The cluster's `cluster_security_group_id`
//!   output, wherever referenced, is that group.
//! - Karpenter (docs, "NodeClasses", <https://karpenter.sh/docs/concepts/nodeclasses/>):
//!   `securityGroupSelectorTerms` and `subnetSelectorTerms` are ORed, the fields of a term
//!   ANDed; `tags` (value `*`: any value), `id`, `name` (groups only). A selector matching
//!   nothing is an error. With the VPC CNI a pod is an endpoint of its node.
//! - A value known only after apply (a CIDR that is another resource's output, a group id
//!   passed through a transform, a group or subnet this stack does not declare) is kept as
//!   unknown and never treated as allowing anything: an answer it could change is
//!   `Unknown`, naming it.
//!
//! Not modelled: network ACLs (default NACLs allow all traffic both ways), prefix lists
//! (an egress rule to `0.0.0.0/0` stands for a gateway endpoint's prefix list), IPv6,
//! security-group rules referencing groups in other VPCs, peering and transit gateways
//! (endpoints in different VPCs are blocked), routes other than `local` and `0.0.0.0/0`
//! (more specific routes that could divert internet traffic), and the EKS control plane's
//! own AWS-side rules (what EKS does outside the VPC).
//!
//! Cost: one pass over the resources and a few map lookups per question; the flagship
//! stack (~70 resources) is read and questioned in well under a millisecond.

mod builder;
mod endpoints;
mod from_declared;
mod model;
mod reach;

pub use builder::ModelBuilder;
pub use from_declared::NetObject;
pub use model::{
    Cidr, Direction, EksCluster, Endpoint, EndpointKind, Fact, GroupId, InternetGateway, LaunchTemplate, NatGateway,
    NodeGroup, Peer, Protocol, Route, RouteTable, Rule, RuleProtocol, RuleRef, SecurityGroup, Subnet, SubnetId, Target,
    Vpc, VpcEndpoint, VpcModel, cluster_security_group, main_route_table,
};
pub use reach::{Block, Reach, Way};

/// Why a model cannot be built or an endpoint resolved.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum NetworkModelError {
    #[error("`{address}` ({kind}): `{field}`: {problem}")]
    BadInput {
        address: String,
        kind: String,
        field: String,
        problem: String,
    },
    #[error(
        "subnet `{subnet}` is associated with route tables `{first}` and `{second}`; a subnet has one route table, \
         so remove one association"
    )]
    DuplicateAssociation {
        subnet: String,
        first: String,
        second: String,
    },
    #[error("`{0}` is not an EKS cluster (aws:eks:Cluster) of this model")]
    NoSuchCluster(String),
    #[error("`{0}` is not an EKS managed node group (aws:eks:Nodegroup) of this model")]
    NoSuchNodeGroup(String),
    #[error("node group `{node_group}`: {why}, so its security groups cannot be known offline")]
    UnresolvedNodeGroup { node_group: String, why: String },
    #[error(
        "EC2NodeClass `{name}`: spec.{field} {terms} selects no {what} declared in this stack; make one term match \
         (terms are ORed, the fields of a term ANDed)"
    )]
    SelectorMatchesNothing {
        name: String,
        field: String,
        terms: String,
        what: String,
    },
    #[error(
        "EC2NodeClass `{name}`: spec.{field}[{index}] filters on `{key}`, which this analysis does not read (it reads {supported})"
    )]
    UnsupportedSelector {
        name: String,
        field: String,
        index: usize,
        key: String,
        supported: String,
    },
    #[error("EC2NodeClass `{name}`: {problem}")]
    BadManifest { name: String, problem: String },
}

#[cfg(test)]
mod tests;
