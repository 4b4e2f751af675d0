//! The parts of an EKS cluster (`aws:eks:Nodegroup`, `aws:eks:Addon`, `aws:eks:AccessEntry`
//! with its access policies, `aws:eks:PodIdentityAssociation`) against the sandbox emulator:
//! import of objects made out of band with the SDK (through each provider's `read` with no
//! stored inputs, then a plan of the program declaring them shows no changes), and drift
//! after out-of-band changes made with the SDK, which the next apply puts back; then a
//! replace of each (a replace-forcing field changed). Also the import of an `aws:eks:Cluster`
//! made out of band, planned with no changes.
//! (Create, read back, in-place update and delete are in `aws_eks.rs` and
//! `aws_eks_nodegroup.rs`.)
#![cfg(feature = "aws")]

#[path = "support/aws.rs"]
mod support;

use serde_json::json;
use spar::aws::ec2::{Subnet, Vpc};
use spar::aws::eks::{AccessEntry, Addon, Cluster, Nodegroup, PodIdentityAssociation};
use spar::aws::iam::{Role, RolePolicyAttachment};
use spar::plan::Op;
use support::{Stage, op, quiet, run, sandbox_config};

const CLUSTER: &str = "spar-test-parts";
const VIEW: &str = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy";

/// The parts the program declares, matching what was made out of band.
#[derive(Clone)]
struct Parts {
    addon_version: String,
    /// Each part changed in a field that forces a replacement: the node group's instance
    /// type, the add-on (kube-proxy for coredns), the access entry's principal, the pod
    /// identity association's service account.
    replaced: bool,
}

fn program(parts: Option<Parts>) -> impl FnOnce(&mut spar::Stack) -> spar::Result<()> {
    move |st: &mut spar::Stack| {
        let vpc = st.add("parts/vpc", Vpc::new("10.63.0.0/16"))?;
        let a = st.add(
            "parts/subnet_a",
            Subnet::new(vpc.vpc_id(), "10.63.0.0/20").az("us-east-1a"),
        )?;
        let b = st.add(
            "parts/subnet_b",
            Subnet::new(vpc.vpc_id(), "10.63.16.0/20").az("us-east-1b"),
        )?;
        let subnets = || vec![a.subnet_id().into(), b.subnet_id().into()];
        let cluster_role = st.add("parts/cluster_role", Role::assumed_by_service("eks.amazonaws.com"))?;
        st.add(
            "parts/cluster_policy",
            RolePolicyAttachment::aws_managed(cluster_role.name(), "AmazonEKSClusterPolicy"),
        )?;
        let cluster = st.add(
            "parts/cluster",
            Cluster::new(cluster_role.arn(), subnets())
                .name(CLUSTER)
                .version("1.35"),
        )?;
        let node_role = st.add("parts/node_role", Role::assumed_by_service("ec2.amazonaws.com"))?;
        for p in ["AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryReadOnly"] {
            st.add(
                &format!("parts/node_{p}"),
                RolePolicyAttachment::aws_managed(node_role.name(), p),
            )?;
        }
        let viewer = st.add("parts/viewer", Role::assumed_by_service("ec2.amazonaws.com"))?;
        let pods_a = st.add("parts/pods_a", Role::assumed_by_service("pods.eks.amazonaws.com"))?;
        st.add("parts/pods_b", Role::assumed_by_service("pods.eks.amazonaws.com"))?;
        let viewer2 = st.add("parts/viewer2", Role::assumed_by_service("ec2.amazonaws.com"))?;
        let Some(parts) = parts else {
            return Ok(());
        };
        let r = parts.replaced;
        st.add(
            "parts/ng",
            Nodegroup::new(cluster.name(), node_role.arn(), subnets())
                .name("oob")
                .instance_types(&[if r { "m7g.xlarge" } else { "m7g.large" }])
                .ami_type("AL2023_ARM_64_STANDARD")
                .scaling(1, 1, 2)
                .label("pool", "oob")
                .taint("dedicated", Some("oob"), "NO_SCHEDULE")
                .version("1.35")
                .max_unavailable(1)
                .tag("team", "ops"),
        )?;
        let addon = if r {
            Addon::new(cluster.name(), "kube-proxy")
        } else {
            Addon::new(cluster.name(), "coredns")
                .version(&parts.addon_version)
                .configuration(json!({"replicaCount": 2}))
        };
        st.add("parts/coredns", addon.tag("team", "ops"))?;
        st.add(
            "parts/viewer_access",
            AccessEntry::new(cluster.name(), if r { viewer2.arn() } else { viewer.arn() })
                .username("viewer")
                .group("viewers")
                .policy(VIEW, &["default"])
                .tag("team", "ops"),
        )?;
        st.add(
            "parts/identity",
            PodIdentityAssociation::new(
                cluster.name(),
                "kube-system",
                if r { "oob2" } else { "oob" },
                pods_a.arn(),
            )
            .tag("team", "ops"),
        )?;
        Ok(())
    }
}

fn team_ops() -> std::collections::HashMap<String, String> {
    [("team".to_string(), "ops".to_string())].into()
}

#[test]
fn parts_made_out_of_band_import_drift_replace() {
    run(async {
        sandbox_config(json!({"nodegroup_create_seconds": 1, "addon_create_seconds": 1, "update_seconds": 1}));
        let s = Stage::new();
        s.apply(program(None)).await;
        let arn = |o: serde_json::Value| o["arn"].as_str().unwrap().to_string();
        let node_role = arn(s.outputs("parts/node_role").await);
        let viewer = arn(s.outputs("parts/viewer").await);
        let pods_a = arn(s.outputs("parts/pods_a").await);
        let pods_b = arn(s.outputs("parts/pods_b").await);
        let subnets = vec![s.id("parts/subnet_a").await, s.id("parts/subnet_b").await];
        let eks = &spar::aws::context::clients().await.eks;

        // Made out of band with the SDK: a node group, an add-on, an access entry with an
        // access policy, a pod identity association.
        eks.create_nodegroup()
            .cluster_name(CLUSTER)
            .nodegroup_name("oob")
            .node_role(&node_role)
            .set_subnets(Some(subnets.clone()))
            .instance_types("m7g.large")
            .ami_type(aws_sdk_eks::types::AmiTypes::Al2023Arm64Standard)
            .scaling_config(
                aws_sdk_eks::types::NodegroupScalingConfig::builder()
                    .min_size(1)
                    .desired_size(1)
                    .max_size(2)
                    .build(),
            )
            .labels("pool", "oob")
            .taints(
                aws_sdk_eks::types::Taint::builder()
                    .key("dedicated")
                    .value("oob")
                    .effect(aws_sdk_eks::types::TaintEffect::NoSchedule)
                    .build(),
            )
            .set_tags(Some(team_ops()))
            .send()
            .await
            .unwrap();
        eks.create_addon()
            .cluster_name(CLUSTER)
            .addon_name("coredns")
            .configuration_values(r#"{"replicaCount": 2}"#)
            .set_tags(Some(team_ops()))
            .send()
            .await
            .unwrap();
        eks.create_access_entry()
            .cluster_name(CLUSTER)
            .principal_arn(&viewer)
            .username("viewer")
            .kubernetes_groups("viewers")
            .set_tags(Some(team_ops()))
            .send()
            .await
            .unwrap();
        let scope = |ns: &str| {
            aws_sdk_eks::types::AccessScope::builder()
                .r#type(aws_sdk_eks::types::AccessScopeType::Namespace)
                .namespaces(ns)
                .build()
        };
        eks.associate_access_policy()
            .cluster_name(CLUSTER)
            .principal_arn(&viewer)
            .policy_arn(VIEW)
            .access_scope(scope("default"))
            .send()
            .await
            .unwrap();
        let assoc = eks
            .create_pod_identity_association()
            .cluster_name(CLUSTER)
            .namespace("kube-system")
            .service_account("oob")
            .role_arn(&pods_a)
            .set_tags(Some(team_ops()))
            .send()
            .await
            .unwrap()
            .association()
            .and_then(|a| a.association_id())
            .unwrap()
            .to_string();
        // Wait out the node group's and add-on's CREATING hold.
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        let version = eks
            .describe_addon()
            .cluster_name(CLUSTER)
            .addon_name("coredns")
            .send()
            .await
            .unwrap()
            .addon()
            .and_then(|a| a.addon_version())
            .unwrap()
            .to_string();
        let parts = Parts {
            addon_version: version.clone(),
            replaced: false,
        };

        // Import each through its provider's read (no stored inputs).
        let import = |kind: &'static str, address: &'static str, id: String| {
            let session = s.session(program(Some(parts.clone())));
            async move {
                let imported = session.import(kind, &address.parse().unwrap(), &id).await.unwrap();
                support::assert_declarable(&imported);
                imported
            }
        };
        let ng = import("aws:eks:Nodegroup", "parts/ng", format!("{CLUSTER}:oob")).await;
        assert_eq!(ng.inputs["name"], "oob");
        assert_eq!(ng.inputs["node_role_arn"], json!(node_role));
        assert_eq!(ng.inputs["subnet_ids"], json!(subnets));
        assert_eq!(ng.inputs["labels"], json!({"pool": "oob"}));
        assert_eq!(ng.inputs["tags"], json!({"team": "ops"}));
        let addon = import("aws:eks:Addon", "parts/coredns", format!("{CLUSTER}:coredns")).await;
        assert_eq!(addon.inputs["configuration_values"], json!({"replicaCount": 2}));
        assert_eq!(addon.inputs["addon_version"], json!(version));
        let entry = import(
            "aws:eks:AccessEntry",
            "parts/viewer_access",
            format!("{CLUSTER}#{viewer}"),
        )
        .await;
        assert_eq!(
            entry.inputs["access_policies"],
            json!([{"policy_arn": VIEW, "namespaces": ["default"]}])
        );
        assert_eq!(entry.inputs["username"], "viewer");
        assert_eq!(entry.inputs["kubernetes_groups"], json!(["viewers"]));
        let pia = import(
            "aws:eks:PodIdentityAssociation",
            "parts/identity",
            format!("{CLUSTER}:{assoc}"),
        )
        .await;
        assert_eq!(pia.inputs["role_arn"], json!(pods_a));
        assert_eq!(pia.inputs["service_account"], "oob");
        let plan = s.plan(program(Some(parts.clone()))).await;
        assert!(
            quiet(&plan),
            "{:#?}",
            plan.changes.iter().filter(|c| c.op != Op::Same).collect::<Vec<_>>()
        );

        // Drift, one out-of-band change per kind, made with the SDK.
        eks.update_nodegroup_config()
            .cluster_name(CLUSTER)
            .nodegroup_name("oob")
            .labels(
                aws_sdk_eks::types::UpdateLabelsPayload::builder()
                    .add_or_update_labels("pool", "changed")
                    .build(),
            )
            .send()
            .await
            .unwrap();
        eks.update_addon()
            .cluster_name(CLUSTER)
            .addon_name("coredns")
            .configuration_values(r#"{"replicaCount": 3}"#)
            .send()
            .await
            .unwrap();
        eks.update_access_entry()
            .cluster_name(CLUSTER)
            .principal_arn(&viewer)
            .kubernetes_groups("others")
            .send()
            .await
            .unwrap();
        eks.associate_access_policy()
            .cluster_name(CLUSTER)
            .principal_arn(&viewer)
            .policy_arn(VIEW)
            .access_scope(scope("kube-system"))
            .send()
            .await
            .unwrap();
        eks.update_pod_identity_association()
            .cluster_name(CLUSTER)
            .association_id(&assoc)
            .role_arn(&pods_b)
            .send()
            .await
            .unwrap();
        // Wait out the update holds.
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        let r = s.session(program(Some(parts.clone()))).refresh(4).await.unwrap();
        assert!(r.gone.is_empty() && r.errors.is_empty(), "{r:?}");
        let mut drifted: Vec<String> = r.drifted.iter().map(|(a, _)| a.to_string()).collect();
        drifted.sort();
        assert_eq!(
            drifted,
            ["parts/coredns", "parts/identity", "parts/ng", "parts/viewer_access"],
            "{r:?}"
        );
        let paths = |address: &str| -> Vec<String> {
            r.drifted
                .iter()
                .find(|(a, _)| a.to_string() == address)
                .map(|(_, c)| c.iter().map(|c| c.path.to_string()).collect())
                .unwrap_or_default()
        };
        assert!(paths("parts/ng").iter().all(|p| p.starts_with("labels")), "{r:?}");
        assert!(
            paths("parts/coredns")
                .iter()
                .all(|p| p.starts_with("configuration_values")),
            "{r:?}"
        );
        assert!(
            paths("parts/viewer_access")
                .iter()
                .all(|p| p.starts_with("kubernetes_groups") || p.starts_with("access_policies")),
            "{r:?}"
        );
        assert!(
            paths("parts/viewer_access")
                .iter()
                .any(|p| p.starts_with("access_policies")),
            "{r:?}"
        );
        assert_eq!(paths("parts/identity"), ["role_arn"], "{r:?}");

        // The next apply puts each back.
        let plan = s.apply(program(Some(parts.clone()))).await;
        for a in ["parts/ng", "parts/coredns", "parts/viewer_access", "parts/identity"] {
            assert_eq!(op(&plan, a), Op::Update, "{a}");
        }
        let ng = eks
            .describe_nodegroup()
            .cluster_name(CLUSTER)
            .nodegroup_name("oob")
            .send()
            .await
            .unwrap();
        assert_eq!(
            ng.nodegroup()
                .and_then(|n| n.labels())
                .and_then(|l| l.get("pool"))
                .map(String::as_str),
            Some("oob")
        );
        let addon = eks
            .describe_addon()
            .cluster_name(CLUSTER)
            .addon_name("coredns")
            .send()
            .await
            .unwrap();
        let config: serde_json::Value =
            serde_json::from_str(addon.addon().and_then(|a| a.configuration_values()).unwrap()).unwrap();
        assert_eq!(config, json!({"replicaCount": 2}));
        let e = eks
            .describe_access_entry()
            .cluster_name(CLUSTER)
            .principal_arn(&viewer)
            .send()
            .await
            .unwrap();
        assert_eq!(e.access_entry().unwrap().kubernetes_groups(), ["viewers".to_string()]);
        let pols = eks
            .list_associated_access_policies()
            .cluster_name(CLUSTER)
            .principal_arn(&viewer)
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
        let a = eks
            .describe_pod_identity_association()
            .cluster_name(CLUSTER)
            .association_id(&assoc)
            .send()
            .await
            .unwrap();
        assert_eq!(a.association().and_then(|a| a.role_arn()), Some(pods_a.as_str()));
        let r = s.session(program(Some(parts.clone()))).refresh(4).await.unwrap();
        assert!(r.drifted.is_empty() && r.gone.is_empty(), "{r:?}");

        // Replace: every part changed in a replace-forcing field. The node group keeps its
        // name and the association its id's place, so those two go first.
        let replaced = Parts {
            replaced: true,
            ..parts.clone()
        };
        let plan = s.apply(program(Some(replaced.clone()))).await;
        for a in ["parts/ng", "parts/coredns", "parts/viewer_access", "parts/identity"] {
            assert_eq!(op(&plan, a), Op::Replace, "{a}");
        }
        let dbr = |a: &str| plan.get(&a.parse().unwrap()).unwrap().delete_before_replace;
        assert!(dbr("parts/ng") && dbr("parts/identity"));
        let ng = eks
            .describe_nodegroup()
            .cluster_name(CLUSTER)
            .nodegroup_name("oob")
            .send()
            .await
            .unwrap();
        assert_eq!(ng.nodegroup().unwrap().instance_types(), ["m7g.xlarge".to_string()]);
        let addons = eks.list_addons().cluster_name(CLUSTER).send().await.unwrap();
        assert_eq!(addons.addons(), ["kube-proxy".to_string()]);
        assert_eq!(s.id("parts/coredns").await, format!("{CLUSTER}:kube-proxy"));
        let viewer2 = arn(s.outputs("parts/viewer2").await);
        assert_eq!(s.id("parts/viewer_access").await, format!("{CLUSTER}#{viewer2}"));
        assert!(
            eks.describe_access_entry()
                .cluster_name(CLUSTER)
                .principal_arn(&viewer)
                .send()
                .await
                .is_err(),
            "the old entry is deleted"
        );
        let assocs = eks
            .list_pod_identity_associations()
            .cluster_name(CLUSTER)
            .send()
            .await
            .unwrap();
        let accounts: Vec<_> = assocs
            .associations()
            .iter()
            .map(|a| a.service_account().unwrap_or_default())
            .collect();
        assert_eq!(accounts, ["oob2"]);
        assert!(quiet(&s.plan(program(Some(replaced.clone()))).await));

        s.destroy().await;
        assert!(eks.describe_cluster().name(CLUSTER).send().await.is_err());
    });
}

fn oob_cluster_program(imported: bool) -> impl FnOnce(&mut spar::Stack) -> spar::Result<()> {
    move |st: &mut spar::Stack| {
        let vpc = st.add("oobc/vpc", Vpc::new("10.64.0.0/16"))?;
        let a = st.add(
            "oobc/subnet_a",
            Subnet::new(vpc.vpc_id(), "10.64.0.0/20").az("us-east-1a"),
        )?;
        let b = st.add(
            "oobc/subnet_b",
            Subnet::new(vpc.vpc_id(), "10.64.16.0/20").az("us-east-1b"),
        )?;
        let role = st.add("oobc/role", Role::assumed_by_service("eks.amazonaws.com"))?;
        st.add(
            "oobc/policy",
            RolePolicyAttachment::aws_managed(role.name(), "AmazonEKSClusterPolicy"),
        )?;
        if imported {
            st.add(
                "oobc/cluster",
                Cluster::new(role.arn(), vec![a.subnet_id().into(), b.subnet_id().into()])
                    .name("spar-test-oob-cluster")
                    .version("1.34")
                    .endpoint(true, false, &["0.0.0.0/0"])
                    .authentication_mode("API")
                    .support_type("STANDARD")
                    .tag("team", "ops"),
            )?;
        }
        Ok(())
    }
}

#[test]
fn cluster_made_out_of_band_imports_and_plans_nothing() {
    run(async {
        let s = Stage::new();
        s.apply(oob_cluster_program(false)).await;
        let role = s.outputs("oobc/role").await["arn"].as_str().unwrap().to_string();
        let subnets = vec![s.id("oobc/subnet_a").await, s.id("oobc/subnet_b").await];
        let eks = &spar::aws::context::clients().await.eks;
        eks.create_cluster()
            .name("spar-test-oob-cluster")
            .version("1.34")
            .role_arn(&role)
            .resources_vpc_config(
                aws_sdk_eks::types::VpcConfigRequest::builder()
                    .set_subnet_ids(Some(subnets.clone()))
                    .build(),
            )
            .access_config(
                aws_sdk_eks::types::CreateAccessConfigRequest::builder()
                    .authentication_mode(aws_sdk_eks::types::AuthenticationMode::Api)
                    .build(),
            )
            .upgrade_policy(
                aws_sdk_eks::types::UpgradePolicyRequest::builder()
                    .support_type(aws_sdk_eks::types::SupportType::Standard)
                    .build(),
            )
            .set_tags(Some(team_ops()))
            .send()
            .await
            .unwrap();
        let imported = s
            .session(oob_cluster_program(true))
            .import(
                "aws:eks:Cluster",
                &"oobc/cluster".parse().unwrap(),
                "spar-test-oob-cluster",
            )
            .await
            .unwrap();
        support::assert_declarable(&imported);
        assert_eq!(imported.inputs["subnet_ids"], json!(subnets));
        assert_eq!(imported.inputs["tags"], json!({"team": "ops"}));
        let plan = s.plan(oob_cluster_program(true)).await;
        assert!(
            quiet(&plan),
            "{:#?}",
            plan.changes.iter().filter(|c| c.op != Op::Same).collect::<Vec<_>>()
        );
        s.destroy().await;
        assert!(
            eks.describe_cluster()
                .name("spar-test-oob-cluster")
                .send()
                .await
                .is_err()
        );
    });
}
