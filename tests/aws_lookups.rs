//! Lookups of AWS objects made elsewhere (with the SDK, as eksctl or the console would):
//! a VPC by tags, its subnets by VPC and tag, a security group by name and VPC, an EKS
//! cluster and an IAM role by name. Each is read at plan time (`<= read`), its outputs
//! feed a managed resource, nothing is changed; none or two matches fail the plan naming
//! the lookup.
#![cfg(feature = "aws")]

#[path = "support/aws.rs"]
mod support;

use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
use serde_json::json;
use spar::aws::ec2::{SecurityGroup, Subnet, Vpc};
use spar::aws::eks::Cluster;
use spar::aws::iam::Role;
use spar::aws::sqs::Queue;
use spar::plan::Op;
use support::{Stage, ec2, iam, op, run};

fn tagged(kind: ResourceType, pairs: &[(&str, &str)]) -> TagSpecification {
    let mut t = TagSpecification::builder().resource_type(kind);
    for (k, v) in pairs {
        t = t.tags(Tag::builder().key(*k).value(*v).build());
    }
    t.build()
}

#[test]
fn existing_objects_are_looked_up_read_and_never_changed() {
    run(async {
        // As eksctl would make them.
        let vpc = ec2()
            .await
            .create_vpc()
            .cidr_block("10.70.0.0/16")
            .tag_specifications(tagged(ResourceType::Vpc, &[("Name", "existing-vpc")]))
            .send()
            .await
            .unwrap();
        let vpc_id = vpc.vpc().unwrap().vpc_id().unwrap().to_string();
        let mut subnets = Vec::new();
        for (cidr, az) in [("10.70.0.0/20", "us-east-1a"), ("10.70.16.0/20", "us-east-1b")] {
            let s = ec2()
                .await
                .create_subnet()
                .vpc_id(&vpc_id)
                .cidr_block(cidr)
                .availability_zone(az)
                .tag_specifications(tagged(ResourceType::Subnet, &[("tier", "private")]))
                .send()
                .await
                .unwrap();
            subnets.push(s.subnet().unwrap().subnet_id().unwrap().to_string());
        }
        let sg = ec2()
            .await
            .create_security_group()
            .group_name("existing-nodes")
            .description("nodes")
            .vpc_id(&vpc_id)
            .send()
            .await
            .unwrap();
        let sg_id = sg.group_id().unwrap().to_string();
        let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"eks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
        let role = iam()
            .await
            .create_role()
            .role_name("existing-cluster-role")
            .assume_role_policy_document(trust)
            .send()
            .await
            .unwrap();
        let role_arn = role.role().unwrap().arn().to_string();
        let eks = &spar::aws::context::clients().await.eks;
        eks.create_cluster()
            .name("existing-cluster")
            .role_arn(&role_arn)
            .resources_vpc_config(
                aws_sdk_eks::types::VpcConfigRequest::builder()
                    .set_subnet_ids(Some(subnets.clone()))
                    .security_group_ids(&sg_id)
                    .build(),
            )
            .send()
            .await
            .unwrap();

        let s = Stage::new();
        let program = |st: &mut spar::Stack| {
            let vpc = st.lookup("found/vpc", Vpc::lookup().tag("Name", "existing-vpc"))?;
            let subnet = st.lookup(
                "found/subnet-a",
                Subnet::lookup()
                    .vpc_id(vpc.vpc_id())
                    .tag("tier", "private")
                    .id(subnets[0].as_str()),
            )?;
            let sg = st.lookup(
                "found/sg",
                SecurityGroup::lookup().vpc_id(vpc.vpc_id()).name("existing-nodes"),
            )?;
            let cluster = st.lookup("found/cluster", Cluster::lookup("existing-cluster"))?;
            let role = st.lookup("found/role", Role::lookup("existing-cluster-role"))?;
            // A managed resource fed by every lookup's outputs.
            st.add(
                "managed/queue",
                Queue::new()
                    .name("spar-lookup-queue")
                    .tag("vpc", vpc.vpc_id())
                    .tag("subnet", subnet.subnet_id())
                    .tag("sg", sg.group_id())
                    .tag("endpoint", cluster.endpoint())
                    .tag("cluster-sg", cluster.cluster_security_group_id())
                    .tag("role", role.arn()),
            )?;
            Ok(())
        };
        let plan = s.plan(program).await;
        for a in ["found/vpc", "found/subnet-a", "found/sg", "found/cluster", "found/role"] {
            assert_eq!(op(&plan, a), Op::Read, "{a}");
        }
        assert_eq!(op(&plan, "managed/queue"), Op::Create);
        let queue = plan
            .get(&"managed/queue".parse().unwrap())
            .unwrap()
            .after
            .clone()
            .unwrap();
        assert_eq!(queue["tags"]["vpc"], json!(vpc_id));
        assert_eq!(queue["tags"]["subnet"], json!(subnets[0]));
        assert_eq!(queue["tags"]["sg"], json!(sg_id));
        assert_eq!(queue["tags"]["role"], json!(role_arn));
        assert!(
            queue["tags"]["endpoint"].as_str().unwrap().starts_with("https://"),
            "{queue}"
        );
        assert!(
            queue["tags"]["cluster-sg"].as_str().unwrap().starts_with("sg-"),
            "{queue}"
        );
        let cluster = plan
            .get(&"found/cluster".parse().unwrap())
            .unwrap()
            .read
            .clone()
            .unwrap();
        assert_eq!(cluster["vpc_id"], json!(vpc_id));
        assert_eq!(cluster["subnet_ids"], json!(subnets));
        s.apply(program).await;
        assert!(!s.plan(program).await.has_changes());
        s.destroy().await;
        // Destroy deleted the queue and forgot the lookups; the objects stay.
        let c = eks.describe_cluster().name("existing-cluster").send().await.unwrap();
        assert!(c.cluster().is_some());
        assert!(
            iam()
                .await
                .get_role()
                .role_name("existing-cluster-role")
                .send()
                .await
                .is_ok()
        );
        assert!(s.snapshot().await.resources.is_empty());

        // Nothing, or two, match: the plan fails naming the lookup.
        let none = |st: &mut spar::Stack| {
            st.lookup("found/vpc", Vpc::lookup().tag("Name", "no-such-vpc"))?;
            Ok(())
        };
        let err = s
            .session(none)
            .plan(&spar::plan::diff::PlanOptions::default(), false)
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("lookup `found/vpc` (aws:ec2:Vpc) found nothing matching"),
            "{err}"
        );
        let two = |st: &mut spar::Stack| {
            st.lookup(
                "found/subnets",
                Subnet::lookup().vpc_id(vpc_id.as_str()).tag("tier", "private"),
            )?;
            Ok(())
        };
        let err = s
            .session(two)
            .plan(&spar::plan::diff::PlanOptions::default(), false)
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("lookup `found/subnets` (aws:ec2:Subnet) found 2 objects"),
            "{err}"
        );
        let err = s
            .session(|st: &mut spar::Stack| {
                st.lookup("found/cluster", Cluster::lookup("no-such-cluster"))?;
                Ok(())
            })
            .plan(&spar::plan::diff::PlanOptions::default(), false)
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("lookup `found/cluster` (aws:eks:Cluster) found nothing"),
            "{err}"
        );
    });
}
