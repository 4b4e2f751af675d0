//! `aws:eks:Nodegroup`'s update config and launch template against the sandbox emulator:
//! created with `maxUnavailable` 1 from version 1 of a spar-managed launch template; one
//! apply then changes the update config (UpdateNodegroupConfig, asserted from the update
//! EKS recorded) and rolls out the template's new version (UpdateNodegroupVersion), both in
//! place; drift of the update config; another template, or none, replaces the group.
#![cfg(feature = "aws")]

#[path = "support/aws.rs"]
mod support;

use std::sync::Arc;

use serde_json::json;
use spar::aws::ec2::{BlockDevice, LaunchTemplate, MetadataOptions, Subnet, Vpc};
use spar::aws::eks::{Cluster, Nodegroup};
use spar::aws::iam::{Role, RolePolicyAttachment};
use spar::plan::Op;
use support::{Recorder, Stage, op, quiet, run, sandbox_config};

const CLUSTER: &str = "spar-test-ngu";

#[derive(Clone, Copy)]
struct Want {
    max_unavailable: i32,
    hop_limit: i32,
    /// 0: no template; 1: `ngu/lt`; 2: `ngu/lt_other`.
    template: u8,
}

fn program(w: Want) -> impl FnOnce(&mut spar::Stack) -> spar::Result<()> {
    move |st: &mut spar::Stack| {
        let vpc = st.add("ngu/vpc", Vpc::new("10.62.0.0/16"))?;
        let a = st.add(
            "ngu/subnet_a",
            Subnet::new(vpc.vpc_id(), "10.62.0.0/20").az("us-east-1a"),
        )?;
        let b = st.add(
            "ngu/subnet_b",
            Subnet::new(vpc.vpc_id(), "10.62.16.0/20").az("us-east-1b"),
        )?;
        let subnets = || vec![a.subnet_id().into(), b.subnet_id().into()];
        let cluster_role = st.add("ngu/cluster_role", Role::assumed_by_service("eks.amazonaws.com"))?;
        st.add(
            "ngu/cluster_policy",
            RolePolicyAttachment::aws_managed(cluster_role.name(), "AmazonEKSClusterPolicy"),
        )?;
        let cluster = st.add(
            "ngu/cluster",
            Cluster::new(cluster_role.arn(), subnets())
                .name(CLUSTER)
                .version("1.35"),
        )?;
        let node_role = st.add("ngu/node_role", Role::assumed_by_service("ec2.amazonaws.com"))?;
        for p in ["AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryReadOnly"] {
            st.add(
                &format!("ngu/node_{p}"),
                RolePolicyAttachment::aws_managed(node_role.name(), p),
            )?;
        }
        let lt = st.add(
            "ngu/lt",
            LaunchTemplate::new()
                .metadata_options(MetadataOptions::imdsv2(w.hop_limit))
                .block_device(BlockDevice::ebs("/dev/xvda", 50).volume_type("gp3").encrypted(true))
                .instance_tag("pool", "critical"),
        )?;
        let other = st.add(
            "ngu/lt_other",
            LaunchTemplate::new().metadata_options(MetadataOptions::imdsv2(1)),
        )?;
        let mut ng = Nodegroup::new(cluster.name(), node_role.arn(), subnets())
            .name("critical")
            .instance_types(&["m7g.large"])
            .ami_type("AL2023_ARM_64_STANDARD")
            .scaling(1, 2, 3)
            .max_unavailable(w.max_unavailable);
        ng = match w.template {
            1 => ng.launch_template(lt.template_id(), lt.latest_version().map(|v| v.to_string())),
            2 => ng.launch_template(other.template_id(), other.latest_version().map(|v| v.to_string())),
            _ => ng,
        };
        st.add_with(
            "ngu/critical",
            ng,
            spar::ResourceOptions::new()
                .depends_on(&"ngu/node_AmazonEKSWorkerNodePolicy".parse().unwrap())
                .depends_on(&"ngu/node_AmazonEC2ContainerRegistryReadOnly".parse().unwrap()),
        )?;
        Ok(())
    }
}

async fn nodegroup() -> aws_sdk_eks::types::Nodegroup {
    spar::aws::context::clients()
        .await
        .eks
        .describe_nodegroup()
        .cluster_name(CLUSTER)
        .nodegroup_name("critical")
        .send()
        .await
        .unwrap()
        .nodegroup()
        .cloned()
        .unwrap()
}

/// Every update EKS recorded for the node group, oldest first.
async fn updates() -> Vec<aws_sdk_eks::types::Update> {
    let eks = &spar::aws::context::clients().await.eks;
    let ids = eks
        .list_updates()
        .name(CLUSTER)
        .nodegroup_name("critical")
        .send()
        .await
        .unwrap()
        .update_ids()
        .to_vec();
    let mut out = Vec::new();
    for id in ids {
        let u = eks
            .describe_update()
            .name(CLUSTER)
            .nodegroup_name("critical")
            .update_id(&id)
            .send()
            .await
            .unwrap();
        out.push(u.update().cloned().unwrap());
    }
    out
}

fn param(u: &aws_sdk_eks::types::Update, kind: &str) -> Option<String> {
    u.params()
        .iter()
        .find(|p| p.r#type().map(|t| t.as_str()) == Some(kind))
        .and_then(|p| p.value().map(String::from))
}

#[test]
fn nodegroup_update_config_and_launch_template() {
    run(async {
        sandbox_config(json!({"nodegroup_create_seconds": 1, "update_seconds": 1}));
        let s = Stage::new();
        let w = Want {
            max_unavailable: 1,
            hop_limit: 2,
            template: 1,
        };
        let rec = Arc::new(Recorder::default());
        s.apply_recorded(program(w), false, rec.clone()).await;
        rec.before(("ngu/lt", "create"), ("ngu/critical", "create"));
        let lt_id = s.id("ngu/lt").await;
        let ng = nodegroup().await;
        assert_eq!(ng.update_config().and_then(|u| u.max_unavailable()), Some(1));
        let t = ng.launch_template().unwrap();
        assert_eq!(t.id(), Some(lt_id.as_str()));
        // The group's template as a list, for `LaunchTemplate::lookup().ids(..)`.
        assert_eq!(s.outputs("ngu/critical").await["launch_template_ids"], json!([lt_id]));
        assert_eq!(t.version(), Some("1"));
        let plan = s.plan(program(w)).await;
        assert!(
            quiet(&plan),
            "{:#?}",
            plan.changes.iter().filter(|c| c.op != Op::Same).collect::<Vec<_>>()
        );
        let before = updates().await.len();

        // In place: max unavailable 2, and the template's new version 2 rolled out.
        let w2 = Want {
            max_unavailable: 2,
            hop_limit: 1,
            ..w
        };
        let rec = Arc::new(Recorder::default());
        let (plan, _) = s.apply_recorded(program(w2), false, rec.clone()).await;
        assert_eq!(op(&plan, "ngu/lt"), Op::Update);
        assert_eq!(op(&plan, "ngu/critical"), Op::Update);
        rec.before(("ngu/lt", "update"), ("ngu/critical", "update"));
        assert_eq!(s.outputs("ngu/lt").await["latest_version"], 2);
        let ng = nodegroup().await;
        assert_eq!(ng.update_config().and_then(|u| u.max_unavailable()), Some(2));
        assert_eq!(ng.launch_template().and_then(|t| t.version()), Some("2"));
        let made = updates().await;
        assert_eq!(made.len(), before + 2, "{made:#?}");
        let config = made
            .iter()
            .find(|u| u.r#type().map(|t| t.as_str()) == Some("ConfigUpdate"))
            .unwrap_or_else(|| panic!("an UpdateNodegroupConfig call: {made:#?}"));
        assert_eq!(param(config, "MaxUnavailable").as_deref(), Some("2"), "{config:#?}");
        assert_eq!(param(config, "MinSize"), None, "only what changed is sent: {config:#?}");
        let version = made
            .iter()
            .find(|u| u.r#type().map(|t| t.as_str()) == Some("VersionUpdate"))
            .unwrap_or_else(|| panic!("an UpdateNodegroupVersion call: {made:#?}"));
        assert_eq!(
            param(version, "LaunchTemplateVersion").as_deref(),
            Some("2"),
            "{version:#?}"
        );
        let plan = s.plan(program(w2)).await;
        assert!(
            quiet(&plan),
            "{:#?}",
            plan.changes.iter().filter(|c| c.op != Op::Same).collect::<Vec<_>>()
        );

        // Drift: the update config changed out of band (a percentage instead of a count).
        let eks = &spar::aws::context::clients().await.eks;
        eks.update_nodegroup_config()
            .cluster_name(CLUSTER)
            .nodegroup_name("critical")
            .update_config(
                aws_sdk_eks::types::NodegroupUpdateConfig::builder()
                    .max_unavailable_percentage(50)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let r = s.session(program(w2)).refresh(4).await.unwrap();
        assert_eq!(
            r.drifted.iter().map(|(a, _)| a.to_string()).collect::<Vec<_>>(),
            vec!["ngu/critical"],
            "{r:?}"
        );
        let paths: Vec<String> = r.drifted[0].1.iter().map(|c| c.path.to_string()).collect();
        assert!(paths.iter().all(|p| p.starts_with("update_config")), "{paths:?}");
        let plan = s.apply(program(w2)).await;
        assert_eq!(op(&plan, "ngu/critical"), Op::Update);
        let ng = nodegroup().await;
        assert_eq!(ng.update_config().and_then(|u| u.max_unavailable()), Some(2));

        // Another template, or none, replaces the group (EKS cannot switch templates).
        for template in [2, 0] {
            let plan = s.plan(program(Want { template, ..w2 })).await;
            let change = plan.get(&"ngu/critical".parse().unwrap()).unwrap();
            assert_eq!(change.op, Op::Replace, "template {template}");
            assert!(change.delete_before_replace);
        }

        // Delete: the node group before the template it launches from.
        let rec = Arc::new(Recorder::default());
        s.apply_recorded(|_| Ok(()), true, rec.clone()).await;
        rec.before(("ngu/critical", "delete"), ("ngu/lt", "delete"));
        rec.before(("ngu/critical", "delete"), ("ngu/cluster", "delete"));
    });
}
