//! A realistic slice of AWS for the crash test (`tests/aws_crash.rs`): a VPC with a public
//! and a private subnet, an internet gateway, an EIP and a NAT gateway, a route table per
//! subnet with its default route and association, a security group with a rule, an IAM role
//! with a managed policy attachment and an inline policy, an SQS queue, an EventBridge
//! rule whose target is the queue, and EKS: a cluster role (with AmazonEKSClusterPolicy), a
//! cluster on both subnets (two AZs), a managed node group run by the instance role (with
//! the worker node and registry policies), the `eks-pod-identity-agent` add-on, an access
//! entry with a namespace-scoped access policy for an operators' role, and a pod identity
//! association for a pods' role. 31 resources.
//!
//! Its config (`<stack>.toml` in `SPAR_CONFIG_DIR`) gives `prefix`, which names the
//! component every resource is declared under (so each run's `spar:address` tags, and the
//! generated cluster and node group names, are its own) and the IAM, SQS and EventBridge
//! names, and optionally `cidr` (a /16, default `10.40.0.0/16`). Built with the `aws`
//! feature.

use serde::Deserialize;
use serde_json::json;
use spar::aws::ec2::{
    Eip, InternetGateway, NatGateway, Route, RouteTable, RouteTableAssociation, SecurityGroup, SecurityGroupRule,
    Subnet, Vpc,
};
use spar::aws::eks::{AccessEntry, Addon, Cluster, Nodegroup, PodIdentityAssociation};
use spar::aws::events::{Rule, Target};
use spar::aws::iam::{PolicyDocument, Role, RolePolicy, RolePolicyAttachment, Statement};
use spar::aws::sqs::Queue;
use spar::prelude::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    prefix: String,
    #[serde(default = "default_cidr")]
    cidr: String,
}

fn default_cidr() -> String {
    "10.40.0.0/16".into()
}

fn main() -> std::process::ExitCode {
    spar::cli::run("aws-crash", define)
}

fn define(stack: &mut Stack) -> spar::Result<()> {
    let cfg: Config = stack.config()?;
    // `10.40.0.0/16` -> `10.40`: the subnets are `<net>.0.0/24` and `<net>.1.0/24`.
    let net = cfg.cidr.split('.').take(2).collect::<Vec<_>>().join(".");
    let p = cfg.prefix.clone();
    stack.component(&cfg.prefix, |s| {
        let named = |what: &str| format!("{p}-{what}");

        // Network.
        let vpc = s.add(
            "vpc",
            Vpc::new(cfg.cidr.as_str())
                .dns_support(true)
                .dns_hostnames(true)
                .tag("Name", named("vpc")),
        )?;
        let public = s.add(
            "subnet-public",
            Subnet::new(vpc.vpc_id(), format!("{net}.0.0/24"))
                .az("us-east-1a")
                .map_public_ip(true)
                .tag("Name", named("public")),
        )?;
        let private = s.add(
            "subnet-private",
            Subnet::new(vpc.vpc_id(), format!("{net}.1.0/24"))
                .az("us-east-1b")
                .tag("Name", named("private")),
        )?;
        let igw = s.add("igw", InternetGateway::new(vpc.vpc_id()).tag("Name", named("igw")))?;
        let public_rt = s.add("public-rt", RouteTable::new(vpc.vpc_id()).tag("Name", named("public")))?;
        s.add(
            "public-default",
            Route::new(public_rt.route_table_id(), "0.0.0.0/0").via_gateway(igw.gateway_id()),
        )?;
        s.add(
            "public-assoc",
            RouteTableAssociation::new(public_rt.route_table_id(), public.subnet_id()),
        )?;
        let eip = s.add("nat-eip", Eip::new().tag("Name", named("nat")))?;
        let nat = s.add_with(
            "nat",
            NatGateway::public(public.subnet_id(), eip.allocation_id()).tag("Name", named("nat")),
            ResourceOptions::new().depends_on(igw.address()),
        )?;
        let private_rt = s.add(
            "private-rt",
            RouteTable::new(vpc.vpc_id()).tag("Name", named("private")),
        )?;
        s.add(
            "private-default",
            Route::new(private_rt.route_table_id(), "0.0.0.0/0").via_nat_gateway(nat.nat_gateway_id()),
        )?;
        s.add(
            "private-assoc",
            RouteTableAssociation::new(private_rt.route_table_id(), private.subnet_id()),
        )?;
        let sg = s.add(
            "sg",
            SecurityGroup::new(vpc.vpc_id())
                .name(named("web"))
                .description("HTTPS from inside the VPC")
                .tag("Name", named("web")),
        )?;
        s.add(
            "sg-https",
            SecurityGroupRule::ingress(sg.group_id())
                .tcp(443)
                .cidr(cfg.cidr.as_str())
                .description("HTTPS from the VPC"),
        )?;

        // Events to a queue.
        let queue_name = named("events");
        let queue_arn = format!("arn:aws:sqs:us-east-1:123456789012:{queue_name}");
        let queue = s.add(
            "queue",
            Queue::new()
                .name(queue_name.as_str())
                .message_retention_seconds(300)
                .policy(PolicyDocument::new(vec![
                    Statement::allow(&["sqs:SendMessage"])
                        .sid("EventBridge")
                        .principal("Service", "events.amazonaws.com")
                        .resources(&[&queue_arn]),
                ]))
                .tag("Name", queue_name.as_str()),
        )?;
        let rule = s.add(
            "rule",
            Rule::new(json!({"source": ["aws.ec2"], "detail-type": ["EC2 Instance State-change Notification"]}))
                .name(named("instance-state"))
                .description("Instance state changes to the queue")
                .tag("Name", named("instance-state")),
        )?;
        s.add("rule-target", Target::new(rule.name(), queue.arn()).id("queue"))?;

        // A role for instances (the cluster's nodes below), allowed to send to the queue.
        let role = s.add(
            "role",
            Role::assumed_by_service("ec2.amazonaws.com")
                .name(named("node"))
                .description("Instances of the crash-test stack")
                .tag("Name", named("node")),
        )?;
        s.add(
            "role-ssm",
            RolePolicyAttachment::aws_managed(role.name(), "AmazonSSMManagedInstanceCore"),
        )?;
        s.add(
            "role-send",
            RolePolicy::new(
                role.name(),
                queue.arn().map(|arn: String| {
                    PolicyDocument::new(vec![Statement::allow(&["sqs:SendMessage"]).resources(&[&arn])])
                }),
            )
            .name("send-events"),
        )?;

        // EKS: a cluster on both subnets (two AZs), run by its own role.
        let cluster_role = s.add(
            "cluster-role",
            Role::assumed_by_service("eks.amazonaws.com")
                .name(named("cluster"))
                .description("The EKS control plane of the crash-test stack"),
        )?;
        let cluster_policy = s.add(
            "cluster-policy",
            RolePolicyAttachment::aws_managed(cluster_role.name(), "AmazonEKSClusterPolicy"),
        )?;
        let cluster = s.add_with(
            "cluster",
            Cluster::new(
                cluster_role.arn(),
                vec![public.subnet_id().into(), private.subnet_id().into()],
            )
            .tag("Name", named("eks")),
            ResourceOptions::new().depends_on(cluster_policy.address()),
        )?;
        // Its nodes are instances: the instance role runs them, with the policies EKS checks.
        let worker = s.add(
            "role-worker",
            RolePolicyAttachment::aws_managed(role.name(), "AmazonEKSWorkerNodePolicy"),
        )?;
        let registry = s.add(
            "role-registry",
            RolePolicyAttachment::aws_managed(role.name(), "AmazonEC2ContainerRegistryReadOnly"),
        )?;
        s.add_with(
            "nodes",
            Nodegroup::new(cluster.name(), role.arn(), vec![private.subnet_id().into()])
                .instance_types(&["t3.medium"])
                .scaling(1, 1, 2)
                .label("role", "crash-test")
                .tag("Name", named("nodes")),
            ResourceOptions::new()
                .depends_on(worker.address())
                .depends_on(registry.address()),
        )?;
        let agent = s.add(
            "pod-identity-agent",
            Addon::new(cluster.name(), "eks-pod-identity-agent"),
        )?;
        // Operators (anyone in the account allowed to assume the role) may view `default`.
        let operators = s.add(
            "operators-role",
            Role::new(PolicyDocument::new(vec![
                Statement::allow(&["sts:AssumeRole"]).principal("AWS", "arn:aws:iam::123456789012:root"),
            ]))
            .name(named("operators"))
            .description("Operators of the crash-test cluster"),
        )?;
        s.add(
            "operators-access",
            AccessEntry::new(cluster.name(), operators.arn())
                .group("crash-viewers")
                .policy(
                    "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy",
                    &["default"],
                ),
        )?;
        // Pods of `default/events-reader` get the pods' role through EKS Pod Identity.
        let pods = s.add(
            "pods-role",
            Role::new(PolicyDocument::new(vec![
                Statement::allow(&["sts:AssumeRole", "sts:TagSession"]).principal("Service", "pods.eks.amazonaws.com"),
            ]))
            .name(named("pods"))
            .description("Pods of the crash-test cluster"),
        )?;
        s.add_with(
            "pods-identity",
            PodIdentityAssociation::new(cluster.name(), "default", "events-reader", pods.arn()),
            ResourceOptions::new().depends_on(agent.address()),
        )?;

        s.export("vpc_id", vpc.vpc_id())?;
        s.export("cluster_name", cluster.name())?;
        s.export("queue_url", queue.url())?;
        Ok(())
    })?;
    Ok(())
}
