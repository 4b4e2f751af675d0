//! `aws:eks:Cluster` against the sandbox emulator (its EKS front holds clusters in
//! CREATING/UPDATING/DELETING for a while, so the waiters really wait): create, read back,
//! in-place updates (version one minor at a time, endpoint access, tags), replace, delete
//! (before its subnets and role, asserted from the steps), drift, import and `find`.
#![cfg(feature = "aws")]

#[path = "support/aws.rs"]
mod support;

use std::sync::Arc;

use serde_json::json;
use spar::aws::ec2::{Subnet, Vpc};
use spar::aws::eks::Cluster;
use spar::aws::iam::{PolicyDocument, Role, RolePolicyAttachment, Statement};
use spar::plan::Op;
use spar::provider::ResourceProvider;
use support::{Recorder, Stage, op, quiet, run, sandbox_config, staged};

async fn describe(name: &str) -> Option<aws_sdk_eks::types::Cluster> {
    spar::aws::context::clients()
        .await
        .eks
        .describe_cluster()
        .name(name)
        .send()
        .await
        .ok()
        .and_then(|o| o.cluster().cloned())
}

#[derive(Clone, Copy)]
struct Want {
    name: Option<&'static str>,
    version: &'static str,
    cidr: &'static str,
    team: &'static str,
}

fn program(w: Want) -> impl FnOnce(&mut spar::Stack) -> spar::Result<()> {
    move |st: &mut spar::Stack| {
        let vpc = st.add("eks/vpc", Vpc::new("10.60.0.0/16"))?;
        let a = st.add(
            "eks/subnet_a",
            Subnet::new(vpc.vpc_id(), "10.60.0.0/20").az("us-east-1a"),
        )?;
        let b = st.add(
            "eks/subnet_b",
            Subnet::new(vpc.vpc_id(), "10.60.16.0/20").az("us-east-1b"),
        )?;
        let role = st.add(
            "eks/cluster_role",
            Role::new(PolicyDocument::new(vec![
                Statement::allow(&["sts:AssumeRole", "sts:TagSession"]).principal("Service", "eks.amazonaws.com"),
            ])),
        )?;
        st.add(
            "eks/cluster_policy",
            RolePolicyAttachment::aws_managed(role.name(), "AmazonEKSClusterPolicy"),
        )?;
        let mut c = Cluster::new(role.arn(), vec![a.subnet_id().into(), b.subnet_id().into()])
            .version(w.version)
            .endpoint(true, true, &[w.cidr])
            .tag("team", w.team);
        if let Some(n) = w.name {
            c = c.name(n);
        }
        st.add("eks/cluster", c)?;
        Ok(())
    }
}

#[test]
fn cluster_lifecycle() {
    run(async {
        sandbox_config(json!({"cluster_create_seconds": 2, "update_seconds": 1, "cluster_delete_seconds": 1}));
        let s = Stage::new();
        let w = Want {
            name: None,
            version: "1.33",
            cidr: "203.0.113.0/24",
            team: "a",
        };
        let rec = Arc::new(Recorder::default());
        s.apply_recorded(program(w), false, rec.clone()).await;
        rec.before(("eks/cluster_role", "create"), ("eks/cluster", "create"));
        rec.before(("eks/subnet_b", "create"), ("eks/cluster", "create"));
        let waited = rec
            .progress
            .lock()
            .unwrap()
            .iter()
            .any(|(a, m)| a == "eks/cluster" && m.contains("CREATING"));
        assert!(
            waited,
            "the create waited through CREATING: {:?}",
            rec.progress.lock().unwrap()
        );
        let name = s.id("eks/cluster").await;
        assert!(name.starts_with("cluster-"), "{name}");
        let c = describe(&name).await.unwrap();
        assert_eq!(c.status(), Some(&aws_sdk_eks::types::ClusterStatus::Active));
        assert_eq!(c.version(), Some("1.33"));
        assert_eq!(
            c.tags().unwrap().get("spar:address").map(String::as_str),
            Some("eks/cluster")
        );
        assert_eq!(
            c.access_config()
                .and_then(|a| a.authentication_mode())
                .map(|m| m.as_str()),
            Some("API")
        );
        let out = s.outputs("eks/cluster").await;
        assert!(out["oidc_issuer"].as_str().unwrap().starts_with("https://"), "{out}");
        assert!(
            out["cluster_security_group_id"].as_str().unwrap().starts_with("sg-"),
            "{out}"
        );
        let plan = s.plan(program(w)).await;
        assert!(
            quiet(&plan),
            "{:#?}",
            plan.changes.iter().filter(|c| c.op != Op::Same).collect::<Vec<_>>()
        );

        // In place: two minors up (one UpdateClusterVersion each), endpoint CIDRs, tags.
        let w2 = Want {
            version: "1.35",
            cidr: "198.51.100.0/24",
            team: "b",
            ..w
        };
        let rec = Arc::new(Recorder::default());
        let (plan, _) = s.apply_recorded(program(w2), false, rec.clone()).await;
        assert_eq!(op(&plan, "eks/cluster"), Op::Update);
        let progress: Vec<String> = rec.progress.lock().unwrap().iter().map(|(_, m)| m.clone()).collect();
        assert!(progress.iter().any(|m| m.contains("1.33 -> 1.34")), "{progress:?}");
        assert!(progress.iter().any(|m| m.contains("1.34 -> 1.35")), "{progress:?}");
        let c = describe(&name).await.unwrap();
        assert_eq!(c.version(), Some("1.35"));
        assert_eq!(
            c.resources_vpc_config().unwrap().public_access_cidrs(),
            ["198.51.100.0/24".to_string()]
        );
        assert_eq!(c.tags().unwrap().get("team").map(String::as_str), Some("b"));
        assert_eq!(s.outputs("eks/cluster").await["version"], "1.35");

        // Drift: endpoint CIDRs changed out of band.
        let eks = &spar::aws::context::clients().await.eks;
        eks.update_cluster_config()
            .name(&name)
            .resources_vpc_config(
                aws_sdk_eks::types::VpcConfigRequest::builder()
                    .public_access_cidrs("0.0.0.0/0")
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let r = s.session(program(w2)).refresh(4).await.unwrap();
        assert_eq!(r.drifted.len(), 1, "{r:?}");
        assert!(
            r.drifted[0]
                .1
                .iter()
                .any(|c| c.path.to_string().starts_with("public_access_cidrs")),
            "{r:?}"
        );
        s.apply(program(w2)).await;
        let c = describe(&name).await.unwrap();
        assert_eq!(
            c.resources_vpc_config().unwrap().public_access_cidrs(),
            ["198.51.100.0/24".to_string()]
        );

        // Find adopts it by name and tag.
        let p = spar::aws::eks::cluster::ClusterProvider::new();
        let found = p
            .find(&staged("eks/cluster"), &json!({"name": null}))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.id, name);
        // Import reads the same inputs the program declares.
        let live = p
            .read(
                &staged("eks/cluster"),
                &name,
                &serde_json::Value::Null,
                &serde_json::Value::Null,
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(live.inputs["version"], "1.35");
        assert_eq!(live.inputs["authentication_mode"], "API");
        assert_eq!(live.inputs["support_type"], "STANDARD");

        // Replace: a fixed name; the old cluster goes first.
        let w3 = Want {
            name: Some("spar-test-eks-fixed"),
            ..w2
        };
        let plan = s.apply(program(w3)).await;
        let change = plan.get(&"eks/cluster".parse().unwrap()).unwrap();
        assert_eq!(change.op, Op::Replace);
        assert!(change.delete_before_replace);
        assert!(describe(&name).await.is_none());
        assert!(describe("spar-test-eks-fixed").await.is_some());

        // Delete: the cluster (waited until gone) before its subnets and role.
        let rec = Arc::new(Recorder::default());
        s.apply_recorded(|_| Ok(()), true, rec.clone()).await;
        rec.before(("eks/cluster", "delete"), ("eks/subnet_a", "delete"));
        rec.before(("eks/cluster", "delete"), ("eks/cluster_role", "delete"));
        rec.before(("eks/cluster_policy", "delete"), ("eks/cluster_role", "delete"));
        assert!(describe("spar-test-eks-fixed").await.is_none());
    });
}

const KEY_1: &str = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555";
const KEY_2: &str = "arn:aws:kms:us-east-1:123456789012:key/66666666-7777-8888-9999-000000000000";

/// A cluster with secrets encrypted by `key`, or not encrypted.
fn encrypted(key: Option<&'static str>) -> impl FnOnce(&mut spar::Stack) -> spar::Result<()> {
    move |st: &mut spar::Stack| {
        let vpc = st.add("enc/vpc", Vpc::new("10.62.0.0/16"))?;
        let a = st.add(
            "enc/subnet_a",
            Subnet::new(vpc.vpc_id(), "10.62.0.0/20").az("us-east-1a"),
        )?;
        let b = st.add(
            "enc/subnet_b",
            Subnet::new(vpc.vpc_id(), "10.62.16.0/20").az("us-east-1b"),
        )?;
        let role = st.add("enc/cluster_role", Role::assumed_by_service("eks.amazonaws.com"))?;
        let mut c = Cluster::new(role.arn(), vec![a.subnet_id().into(), b.subnet_id().into()]).version("1.35");
        if let Some(k) = key {
            c = c.secrets_encryption(k);
        }
        st.add("enc/cluster", c)?;
        Ok(())
    }
}

/// The KMS key EKS reports for the cluster's secrets.
#[allow(deprecated)]
fn live_key(c: &aws_sdk_eks::types::Cluster) -> Option<String> {
    c.encryption_config()
        .iter()
        .find(|e| e.resources().iter().any(|r| r == "secrets"))
        .and_then(|e| e.provider())
        .and_then(|p| p.key_arn())
        .map(String::from)
}

/// The types of the updates EKS recorded on `cluster`.
async fn update_types(cluster: &str) -> Vec<String> {
    let eks = &spar::aws::context::clients().await.eks;
    let ids = eks.list_updates().name(cluster).send().await.unwrap();
    let mut types = Vec::new();
    for id in ids.update_ids() {
        let u = eks.describe_update().name(cluster).update_id(id).send().await.unwrap();
        types.push(
            u.update()
                .and_then(|u| u.r#type())
                .map(|t| t.as_str().to_string())
                .unwrap_or_default(),
        );
    }
    types
}

#[test]
fn cluster_secrets_encryption_added_in_place_changed_by_replacement() {
    run(async {
        sandbox_config(json!({"cluster_create_seconds": 1, "update_seconds": 1, "cluster_delete_seconds": 1}));
        let s = Stage::new();
        let p = spar::aws::eks::cluster::ClusterProvider::new();

        // Created without a key: EKS reports none, and none reads back.
        s.apply(encrypted(None)).await;
        let name = s.id("enc/cluster").await;
        assert_eq!(live_key(&describe(&name).await.unwrap()), None);

        // Adding a key is an in-place update through AssociateEncryptionConfig, awaited.
        let rec = Arc::new(Recorder::default());
        let (plan, _) = s.apply_recorded(encrypted(Some(KEY_1)), false, rec.clone()).await;
        let change = plan.get(&"enc/cluster".parse().unwrap()).unwrap();
        assert_eq!(change.op, Op::Update);
        assert!(change.replace_paths.is_empty(), "{:?}", change.replace_paths);
        assert_eq!(s.id("enc/cluster").await, name, "the same cluster");
        assert_eq!(update_types(&name).await, ["AssociateEncryptionConfig"]);
        let progress = rec.progress.lock().unwrap().clone();
        assert!(
            progress
                .iter()
                .any(|(a, m)| a == "enc/cluster" && m.starts_with("waiting for update")),
            "the update was awaited: {progress:?}"
        );
        let c = describe(&name).await.unwrap();
        assert_eq!(live_key(&c).as_deref(), Some(KEY_1));
        assert_eq!(c.status(), Some(&aws_sdk_eks::types::ClusterStatus::Active));
        // Reading back reports the key, so the program and the cluster agree.
        let live = p
            .read(
                &staged("enc/cluster"),
                &name,
                &serde_json::Value::Null,
                &serde_json::Value::Null,
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(live.inputs["secrets_encryption_key_arn"], KEY_1);
        assert!(quiet(&s.plan(encrypted(Some(KEY_1))).await));

        // Changing the key (or removing it) replaces the cluster, naming the field.
        for other in [Some(KEY_2), None] {
            let plan = s.plan(encrypted(other)).await;
            let change = plan.get(&"enc/cluster".parse().unwrap()).unwrap();
            assert_eq!(change.op, Op::Replace, "{other:?}");
            assert_eq!(
                change.replace_paths.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
                ["secrets_encryption_key_arn"]
            );
        }
        // Applied: the old cluster goes first (its name is reused), the new one is created
        // with the new key in CreateCluster and reads it back.
        let plan = s.apply(encrypted(Some(KEY_2))).await;
        assert_eq!(op(&plan, "enc/cluster"), Op::Replace);
        let name2 = s.id("enc/cluster").await;
        let c = describe(&name2).await.unwrap();
        assert_eq!(live_key(&c).as_deref(), Some(KEY_2));
        assert!(update_types(&name2).await.is_empty(), "the key came with the create");
        let live = p
            .read(
                &staged("enc/cluster"),
                &name2,
                &serde_json::Value::Null,
                &serde_json::Value::Null,
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(live.inputs["secrets_encryption_key_arn"], KEY_2);
        assert!(quiet(&s.plan(encrypted(Some(KEY_2))).await));

        s.destroy().await;
        assert!(describe(&name2).await.is_none());
    });
}

#[derive(Clone, Copy)]
struct Work {
    desired: i32,
    tainted: bool,
    coredns_replicas: i32,
    view_namespace: &'static str,
    second_role: bool,
}

fn workloads(w: Work) -> impl FnOnce(&mut spar::Stack) -> spar::Result<()> {
    use spar::aws::eks::{AccessEntry, Addon, Nodegroup, PodIdentityAssociation};
    move |st: &mut spar::Stack| {
        let vpc = st.add("wl/vpc", Vpc::new("10.61.0.0/16"))?;
        let a = st.add(
            "wl/subnet_a",
            Subnet::new(vpc.vpc_id(), "10.61.0.0/20").az("us-east-1a"),
        )?;
        let b = st.add(
            "wl/subnet_b",
            Subnet::new(vpc.vpc_id(), "10.61.16.0/20").az("us-east-1b"),
        )?;
        let subnets = || vec![a.subnet_id().into(), b.subnet_id().into()];
        let cluster_role = st.add("wl/cluster_role", Role::assumed_by_service("eks.amazonaws.com"))?;
        st.add(
            "wl/cluster_policy",
            RolePolicyAttachment::aws_managed(cluster_role.name(), "AmazonEKSClusterPolicy"),
        )?;
        let cluster = st.add(
            "wl/cluster",
            Cluster::new(cluster_role.arn(), subnets())
                .name("spar-test-wl")
                .version("1.35"),
        )?;
        let node_role = st.add("wl/node_role", Role::assumed_by_service("ec2.amazonaws.com"))?;
        for p in [
            "AmazonEKSWorkerNodePolicy",
            "AmazonEKS_CNI_Policy",
            "AmazonEC2ContainerRegistryReadOnly",
        ] {
            st.add(
                &format!("wl/node_{p}"),
                RolePolicyAttachment::aws_managed(node_role.name(), p),
            )?;
        }
        let agent = st.add(
            "wl/pod_identity_agent",
            Addon::new(cluster.name(), "eks-pod-identity-agent"),
        )?;
        let mut ng = Nodegroup::new(cluster.name(), node_role.arn(), subnets())
            .name("critical")
            .instance_types(&["m7g.large"])
            .ami_type("AL2023_ARM_64_STANDARD")
            .scaling(2, w.desired, 4)
            .label("karpenter.sh/controller", "true");
        if w.tainted {
            ng = ng.taint("CriticalAddonsOnly", Some("true"), "NO_SCHEDULE");
        }
        st.add_with(
            "wl/critical",
            ng,
            spar::ResourceOptions::new()
                .depends_on(agent.address())
                .depends_on(&"wl/node_AmazonEKSWorkerNodePolicy".parse().unwrap())
                .depends_on(&"wl/node_AmazonEC2ContainerRegistryReadOnly".parse().unwrap()),
        )?;
        st.add(
            "wl/coredns",
            Addon::new(cluster.name(), "coredns").configuration(json!({
                "replicaCount": w.coredns_replicas,
                "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"}],
            })),
        )?;
        let karpenter_node = st.add("wl/karpenter_node_role", Role::assumed_by_service("ec2.amazonaws.com"))?;
        st.add(
            "wl/karpenter_node_access",
            AccessEntry::ec2_linux_nodes(cluster.name(), karpenter_node.arn()),
        )?;
        let viewer = st.add("wl/viewer", Role::assumed_by_service("ec2.amazonaws.com"))?;
        st.add(
            "wl/viewer_access",
            AccessEntry::new(cluster.name(), viewer.arn()).policy(
                "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy",
                &[w.view_namespace],
            ),
        )?;
        let controller = st.add("wl/controller_a", Role::assumed_by_service("pods.eks.amazonaws.com"))?;
        let controller_b = st.add("wl/controller_b", Role::assumed_by_service("pods.eks.amazonaws.com"))?;
        let role = if w.second_role {
            controller_b.arn()
        } else {
            controller.arn()
        };
        st.add_with(
            "wl/karpenter_identity",
            PodIdentityAssociation::new(cluster.name(), "kube-system", "karpenter", role),
            spar::ResourceOptions::new().depends_on(agent.address()),
        )?;
        Ok(())
    }
}

#[test]
fn nodegroup_addons_access_entries_pod_identity() {
    run(async {
        sandbox_config(json!({"nodegroup_create_seconds": 1, "addon_create_seconds": 1, "update_seconds": 1}));
        let s = Stage::new();
        let w = Work {
            desired: 2,
            tainted: true,
            coredns_replicas: 2,
            view_namespace: "default",
            second_role: false,
        };
        let rec = Arc::new(Recorder::default());
        s.apply_recorded(workloads(w), false, rec.clone()).await;
        rec.before(("wl/cluster", "create"), ("wl/critical", "create"));
        rec.before(("wl/pod_identity_agent", "create"), ("wl/critical", "create"));
        let eks = &spar::aws::context::clients().await.eks;
        let ng = eks
            .describe_nodegroup()
            .cluster_name("spar-test-wl")
            .nodegroup_name("critical")
            .send()
            .await
            .unwrap()
            .nodegroup()
            .cloned()
            .unwrap();
        assert_eq!(ng.status(), Some(&aws_sdk_eks::types::NodegroupStatus::Active));
        assert_eq!(ng.scaling_config().and_then(|c| c.desired_size()), Some(2));
        assert_eq!(
            ng.taints()[0].effect(),
            Some(&aws_sdk_eks::types::TaintEffect::NoSchedule)
        );
        assert_eq!(
            ng.tags().unwrap().get("spar:address").map(String::as_str),
            Some("wl/critical")
        );
        assert_eq!(s.id("wl/critical").await, "spar-test-wl:critical");
        let coredns = eks
            .describe_addon()
            .cluster_name("spar-test-wl")
            .addon_name("coredns")
            .send()
            .await
            .unwrap();
        assert!(
            coredns
                .addon()
                .unwrap()
                .configuration_values()
                .unwrap()
                .contains("CriticalAddonsOnly")
        );
        let viewer_arn = s.outputs("wl/viewer").await["arn"].as_str().unwrap().to_string();
        let pols = eks
            .list_associated_access_policies()
            .cluster_name("spar-test-wl")
            .principal_arn(&viewer_arn)
            .send()
            .await
            .unwrap();
        assert_eq!(
            pols.associated_access_policies()[0]
                .access_scope()
                .unwrap()
                .namespaces(),
            ["default".to_string()]
        );
        let plan = s.plan(workloads(w)).await;
        assert!(
            quiet(&plan),
            "{:#?}",
            plan.changes.iter().filter(|c| c.op != Op::Same).collect::<Vec<_>>()
        );

        // In place: scaling, taint removed, add-on configuration, access scope, pod identity role.
        let w2 = Work {
            desired: 3,
            tainted: false,
            coredns_replicas: 3,
            view_namespace: "karpenter",
            second_role: true,
        };
        let plan = s.apply(workloads(w2)).await;
        for a in ["wl/critical", "wl/coredns", "wl/viewer_access", "wl/karpenter_identity"] {
            assert_eq!(op(&plan, a), Op::Update, "{a}");
        }
        let ng = eks
            .describe_nodegroup()
            .cluster_name("spar-test-wl")
            .nodegroup_name("critical")
            .send()
            .await
            .unwrap()
            .nodegroup()
            .cloned()
            .unwrap();
        assert_eq!(ng.scaling_config().and_then(|c| c.desired_size()), Some(3));
        assert!(ng.taints().is_empty(), "{:?}", ng.taints());
        let pols = eks
            .list_associated_access_policies()
            .cluster_name("spar-test-wl")
            .principal_arn(&viewer_arn)
            .send()
            .await
            .unwrap();
        assert_eq!(
            pols.associated_access_policies()[0]
                .access_scope()
                .unwrap()
                .namespaces(),
            ["karpenter".to_string()]
        );
        let plan = s.plan(workloads(w2)).await;
        assert!(
            quiet(&plan),
            "{:#?}",
            plan.changes.iter().filter(|c| c.op != Op::Same).collect::<Vec<_>>()
        );

        // Drift: the node group scaled out of band.
        eks.update_nodegroup_config()
            .cluster_name("spar-test-wl")
            .nodegroup_name("critical")
            .scaling_config(
                aws_sdk_eks::types::NodegroupScalingConfig::builder()
                    .min_size(2)
                    .desired_size(4)
                    .max_size(4)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let r = s.session(workloads(w2)).refresh(4).await.unwrap();
        assert_eq!(
            r.drifted.iter().map(|(a, _)| a.to_string()).collect::<Vec<_>>(),
            vec!["wl/critical"],
            "{r:?}"
        );

        // Find adopts each by its ownership tag.
        let found = spar::aws::eks::nodegroup::NodegroupProvider::new()
            .find(
                &staged("wl/critical"),
                &json!({"cluster_name": "spar-test-wl", "name": "critical"}),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.id, "spar-test-wl:critical");
        let found = spar::aws::eks::addon::AddonProvider::new()
            .find(
                &staged("wl/coredns"),
                &json!({"cluster_name": "spar-test-wl", "addon_name": "coredns"}),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.id, "spar-test-wl:coredns");

        // Delete: everything in the cluster before the cluster, the cluster before its
        // subnets and role.
        let rec = Arc::new(Recorder::default());
        s.apply_recorded(|_| Ok(()), true, rec.clone()).await;
        for a in [
            "wl/critical",
            "wl/coredns",
            "wl/pod_identity_agent",
            "wl/viewer_access",
            "wl/karpenter_identity",
        ] {
            rec.before((a, "delete"), ("wl/cluster", "delete"));
        }
        rec.before(("wl/critical", "delete"), ("wl/node_role", "delete"));
        rec.before(("wl/cluster", "delete"), ("wl/subnet_a", "delete"));
        assert!(describe("spar-test-wl").await.is_none());
    });
}
