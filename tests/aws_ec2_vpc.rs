//! `aws:ec2:Vpc` and `aws:ec2:Subnet` against the sandbox emulator: create, read back,
//! in-place update, replace, delete, drift, import and adoption by the ownership tag.
#![cfg(feature = "aws")]

#[path = "support/aws.rs"]
mod support;

use serde_json::json;
use spar::aws::ec2::{Subnet, Vpc};
use spar::plan::Op;
use spar::provider::{OpContext, ResourceProvider};
use support::{Stage, ec2, op, quiet, run, staged, tag_map};

async fn vpc_tags(id: &str) -> std::collections::BTreeMap<String, String> {
    let out = ec2().await.describe_vpcs().vpc_ids(id).send().await.unwrap();
    tag_map(out.vpcs()[0].tags())
}

async fn vpc_exists(id: &str) -> bool {
    ec2()
        .await
        .describe_vpcs()
        .vpc_ids(id)
        .send()
        .await
        .is_ok_and(|o| !o.vpcs().is_empty())
}

async fn dns_hostnames(id: &str) -> bool {
    let out = ec2()
        .await
        .describe_vpc_attribute()
        .vpc_id(id)
        .attribute(aws_sdk_ec2::types::VpcAttributeName::EnableDnsHostnames)
        .send()
        .await
        .unwrap();
    out.enable_dns_hostnames().and_then(|v| v.value()).unwrap()
}

#[test]
fn vpc_lifecycle_create_read_update_replace_drift_delete() {
    run(async {
        let s = Stage::new();
        let program = |cidr: &'static str, hostnames: bool, team: &'static str| {
            move |st: &mut spar::Stack| {
                st.add("vpc_life", Vpc::new(cidr).dns_hostnames(hostnames).tag("team", team))?;
                Ok(())
            }
        };

        // Create: tagged at creation with the user's tags and the ownership tag.
        let plan = s.apply(program("10.10.0.0/16", false, "a")).await;
        assert_eq!(op(&plan, "vpc_life"), Op::Create);
        let id = s.id("vpc_life").await;
        assert!(id.starts_with("vpc-"), "{id}");
        let tags = vpc_tags(&id).await;
        assert_eq!(tags.get("team").map(String::as_str), Some("a"));
        assert_eq!(tags.get("spar:address").map(String::as_str), Some("vpc_life"));
        assert_eq!(tags.get("spar:stack").map(String::as_str), Some(support::STACK));
        let out = s.outputs("vpc_life").await;
        assert_eq!(out["cidr_block"], "10.10.0.0/16");
        assert!(out["arn"].as_str().unwrap().ends_with(&format!(":vpc/{id}")), "{out}");
        assert!(
            out["main_route_table_id"].as_str().unwrap().starts_with("rtb-"),
            "{out}"
        );
        assert!(
            out["default_security_group_id"].as_str().unwrap().starts_with("sg-"),
            "{out}"
        );

        // Read back: the same program plans nothing, a refresh finds no drift.
        assert!(quiet(&s.plan(program("10.10.0.0/16", false, "a")).await));
        let report = s.session(program("10.10.0.0/16", false, "a")).refresh(4).await.unwrap();
        assert!(report.drifted.is_empty() && report.errors.is_empty(), "{report:?}");

        // In place: DNS hostnames and a tag.
        let plan = s.apply(program("10.10.0.0/16", true, "b")).await;
        assert_eq!(op(&plan, "vpc_life"), Op::Update);
        assert_eq!(s.id("vpc_life").await, id);
        assert!(dns_hostnames(&id).await);
        assert_eq!(vpc_tags(&id).await.get("team").map(String::as_str), Some("b"));

        // Drift: a tag changed and DNS hostnames turned off behind spar's back.
        let client = ec2().await;
        client
            .create_tags()
            .resources(&id)
            .tags(aws_sdk_ec2::types::Tag::builder().key("team").value("rogue").build())
            .send()
            .await
            .unwrap();
        client
            .modify_vpc_attribute()
            .vpc_id(&id)
            .enable_dns_hostnames(
                aws_sdk_ec2::types::AttributeBooleanValue::builder()
                    .value(false)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let report = s.session(program("10.10.0.0/16", true, "b")).refresh(4).await.unwrap();
        let paths: Vec<String> = report
            .drifted
            .iter()
            .flat_map(|(_, c)| c.iter().map(|c| c.path.to_string()))
            .collect();
        assert!(paths.iter().any(|p| p.contains("team")), "{paths:?}");
        assert!(paths.iter().any(|p| p.contains("enable_dns_hostnames")), "{paths:?}");
        let plan = s.apply(program("10.10.0.0/16", true, "b")).await;
        assert_eq!(op(&plan, "vpc_life"), Op::Update);
        assert!(dns_hostnames(&id).await);
        assert_eq!(vpc_tags(&id).await.get("team").map(String::as_str), Some("b"));

        // Replace: a new CIDR makes a new VPC and deletes the old one.
        let plan = s.apply(program("10.11.0.0/16", true, "b")).await;
        assert_eq!(op(&plan, "vpc_life"), Op::Replace);
        let new_id = s.id("vpc_life").await;
        assert_ne!(new_id, id);
        assert!(!vpc_exists(&id).await, "the old VPC is gone");

        // Delete.
        s.destroy().await;
        assert!(!vpc_exists(&new_id).await);
        assert!(s.snapshot().await.resources.is_empty());
    });
}

#[test]
fn vpc_gone_behind_our_back_reads_as_none_and_is_recreated() {
    run(async {
        let s = Stage::new();
        let program = |st: &mut spar::Stack| {
            st.add("vpc_gone", Vpc::new("10.12.0.0/16"))?;
            Ok(())
        };
        s.apply(program).await;
        let id = s.id("vpc_gone").await;
        ec2().await.delete_vpc().vpc_id(&id).send().await.unwrap();
        let report = s.session(program).refresh(4).await.unwrap();
        assert_eq!(report.gone.len(), 1, "{report:?}");
        let plan = s.apply(program).await;
        assert_eq!(op(&plan, "vpc_gone"), Op::Create);
        s.destroy().await;
    });
}

#[test]
fn invalid_cidr_is_refused_before_any_call() {
    run(async {
        let s = Stage::new();
        let (_, report) = s
            .try_apply(|st| {
                st.add("vpc_bad", Vpc::new("10.0.0.0/33"))?;
                Ok(())
            })
            .await;
        let failures: Vec<_> = report.failures().map(|(a, m)| (a.to_string(), m.to_string())).collect();
        assert_eq!(failures.len(), 1);
        assert!(
            failures[0]
                .1
                .contains("cidr_block \"10.0.0.0/33\" is not a valid IPv4 CIDR"),
            "{failures:?}"
        );
        let found = ec2()
            .await
            .describe_vpcs()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("cidr")
                    .values("10.0.0.0/33")
                    .build(),
            )
            .send()
            .await
            .unwrap();
        assert!(found.vpcs().is_empty());
    });
}

#[test]
fn vpc_import_and_find_by_ownership_tag() {
    run(async {
        let client = ec2().await;
        // Import an object made out of band, with its live inputs.
        let made = client
            .create_vpc()
            .cidr_block("10.13.0.0/16")
            .tag_specifications(
                aws_sdk_ec2::types::TagSpecification::builder()
                    .resource_type(aws_sdk_ec2::types::ResourceType::Vpc)
                    .tags(aws_sdk_ec2::types::Tag::builder().key("team").value("ops").build())
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let id = made.vpc().unwrap().vpc_id().unwrap().to_string();
        let s = Stage::new();
        let program = |st: &mut spar::Stack| {
            st.add("vpc_imported", Vpc::new("10.13.0.0/16").tag("team", "ops"))?;
            Ok(())
        };
        let imported = s
            .session(program)
            .import("aws:ec2:Vpc", &"vpc_imported".parse().unwrap(), &id)
            .await
            .unwrap();
        support::assert_declarable(&imported);
        assert_eq!(imported.id, id);
        assert_eq!(
            imported.inputs,
            json!({"cidr_block": "10.13.0.0/16", "enable_dns_support": true, "enable_dns_hostnames": false, "tags": {"team": "ops"}})
        );
        assert!(quiet(&s.plan(program).await), "the imported VPC matches the program");
        s.destroy().await;
        assert!(!vpc_exists(&id).await);

        // Find adopts an object carrying the ownership tag (what an interrupted create left).
        let tagged = client
            .create_vpc()
            .cidr_block("10.14.0.0/16")
            .tag_specifications(
                aws_sdk_ec2::types::TagSpecification::builder()
                    .resource_type(aws_sdk_ec2::types::ResourceType::Vpc)
                    .tags(
                        aws_sdk_ec2::types::Tag::builder()
                            .key("spar:address")
                            .value("net/vpc_found")
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let tagged_id = tagged.vpc().unwrap().vpc_id().unwrap().to_string();
        let p = spar::aws::ec2::vpc::VpcProvider::new();
        let ctx = OpContext::detached("net/vpc_found".parse().unwrap());
        let found = p
            .find(&ctx, &json!({"cidr_block": "10.14.0.0/16"}))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.id, tagged_id);
        assert_eq!(found.outputs["cidr_block"], "10.14.0.0/16");
        let nobody = OpContext::detached("net/vpc_nobody".parse().unwrap());
        assert!(p.find(&nobody, &json!({})).await.unwrap().is_none());
        p.delete(&ctx, &tagged_id, &json!({}), &json!({})).await.unwrap();
        assert!(!vpc_exists(&tagged_id).await);
        // Deleting what is already gone succeeds.
        p.delete(&ctx, &tagged_id, &json!({}), &json!({})).await.unwrap();
    });
}

#[test]
fn find_never_adopts_another_stacks_object() {
    run(async {
        // Two stacks of one program (dev and prod) in one account, one address.
        let p = spar::aws::ec2::vpc::VpcProvider::new();
        let address = "net/vpc_two_stacks";
        let dev = OpContext::detached(address.parse().unwrap()).in_stack("p/dev");
        let prod = OpContext::detached(address.parse().unwrap()).in_stack("p/prod");
        let detached = OpContext::detached(address.parse().unwrap());
        let inputs = json!({"cidr_block": "10.15.0.0/16", "enable_dns_support": true, "enable_dns_hostnames": false, "tags": {}});

        // Dev's interrupted create left a VPC: tagged with its address and its stack.
        let made = p.create(&dev, &inputs).await.unwrap();
        let tags = vpc_tags(&made.id).await;
        assert_eq!(tags.get("spar:address").map(String::as_str), Some(address));
        assert_eq!(tags.get("spar:stack").map(String::as_str), Some("p/dev"));
        // The ownership tags are not the user's: reading back shows none, so no drift.
        let read = p.read(&dev, &made.id, &inputs, &made.outputs).await.unwrap().unwrap();
        assert_eq!(read.inputs["tags"], json!({}));

        // Prod (and a context outside any stack) do not take dev's VPC for their own.
        assert!(
            p.find(&prod, &inputs).await.unwrap().is_none(),
            "prod adopted dev's VPC"
        );
        assert!(
            p.find(&detached, &inputs).await.unwrap().is_none(),
            "no stack adopted dev's VPC"
        );
        assert_eq!(p.find(&dev, &inputs).await.unwrap().unwrap().id, made.id);

        // Once prod has its own, each stack finds only its own.
        let prod_made = p.create(&prod, &inputs).await.unwrap();
        assert_ne!(prod_made.id, made.id);
        assert_eq!(p.find(&prod, &inputs).await.unwrap().unwrap().id, prod_made.id);
        assert_eq!(p.find(&dev, &inputs).await.unwrap().unwrap().id, made.id);
        assert!(p.find(&detached, &inputs).await.unwrap().is_none());

        p.delete(&dev, &made.id, &inputs, &made.outputs).await.unwrap();
        p.delete(&prod, &prod_made.id, &inputs, &prod_made.outputs)
            .await
            .unwrap();
        assert!(!vpc_exists(&made.id).await && !vpc_exists(&prod_made.id).await);
    });
}

async fn subnet(id: &str) -> Option<aws_sdk_ec2::types::Subnet> {
    ec2()
        .await
        .describe_subnets()
        .subnet_ids(id)
        .send()
        .await
        .ok()
        .and_then(|o| o.subnets().first().cloned())
}

#[test]
fn subnet_lifecycle_update_replace_drift_import_find() {
    run(async {
        let s = Stage::new();
        let program = |cidr: &'static str, az: Option<&'static str>, public: bool, role: &'static str| {
            move |st: &mut spar::Stack| {
                let vpc = st.add("sn_vpc", Vpc::new("10.20.0.0/16"))?;
                let mut sn = Subnet::new(vpc.vpc_id(), cidr)
                    .map_public_ip(public)
                    .tag("kubernetes.io/role/elb", role);
                if let Some(az) = az {
                    sn = sn.az(az);
                }
                st.add("sn", sn)?;
                Ok(())
            }
        };
        let plan = s.apply(program("10.20.1.0/24", None, false, "1")).await;
        assert_eq!(op(&plan, "sn"), Op::Create);
        let id = s.id("sn").await;
        let live = subnet(&id).await.unwrap();
        assert_eq!(live.vpc_id(), Some(s.id("sn_vpc").await.as_str()));
        assert_eq!(tag_map(live.tags()).get("spar:address").map(String::as_str), Some("sn"));
        let out = s.outputs("sn").await;
        assert!(
            out["availability_zone"].as_str().unwrap().starts_with("us-east-1"),
            "{out}"
        );
        // An AZ left to AWS is not drift.
        assert!(quiet(&s.plan(program("10.20.1.0/24", None, false, "1")).await));
        let r = s
            .session(program("10.20.1.0/24", None, false, "1"))
            .refresh(4)
            .await
            .unwrap();
        assert!(r.drifted.is_empty(), "{r:?}");

        // In place.
        let plan = s.apply(program("10.20.1.0/24", None, true, "2")).await;
        assert_eq!(op(&plan, "sn"), Op::Update);
        let live = subnet(&id).await.unwrap();
        assert_eq!(live.map_public_ip_on_launch(), Some(true));
        assert_eq!(
            tag_map(live.tags()).get("kubernetes.io/role/elb").map(String::as_str),
            Some("2")
        );

        // Drift: map_public_ip turned off out of band.
        ec2()
            .await
            .modify_subnet_attribute()
            .subnet_id(&id)
            .map_public_ip_on_launch(
                aws_sdk_ec2::types::AttributeBooleanValue::builder()
                    .value(false)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let r = s
            .session(program("10.20.1.0/24", None, true, "2"))
            .refresh(4)
            .await
            .unwrap();
        assert_eq!(r.drifted.len(), 1, "{r:?}");
        assert_eq!(r.drifted[0].1[0].path.to_string(), "map_public_ip_on_launch");
        s.apply(program("10.20.1.0/24", None, true, "2")).await;
        assert_eq!(subnet(&id).await.unwrap().map_public_ip_on_launch(), Some(true));

        // Replace by AZ, then by CIDR.
        let plan = s.apply(program("10.20.1.0/24", Some("us-east-1b"), true, "2")).await;
        assert_eq!(op(&plan, "sn"), Op::Replace);
        let id2 = s.id("sn").await;
        assert_ne!(id2, id);
        assert!(subnet(&id).await.is_none());
        assert_eq!(subnet(&id2).await.unwrap().availability_zone(), Some("us-east-1b"));
        let plan = s.apply(program("10.20.2.0/24", Some("us-east-1b"), true, "2")).await;
        assert_eq!(op(&plan, "sn"), Op::Replace);
        let id3 = s.id("sn").await;
        assert!(subnet(&id2).await.is_none());

        // Import of an out-of-band subnet: its AZ is read, since nothing was stored.
        let vpc_id = s.id("sn_vpc").await;
        let made = ec2()
            .await
            .create_subnet()
            .vpc_id(&vpc_id)
            .cidr_block("10.20.9.0/24")
            .availability_zone("us-east-1c")
            .send()
            .await
            .unwrap();
        let oob = made.subnet().unwrap().subnet_id().unwrap().to_string();
        let p = spar::aws::ec2::subnet::SubnetProvider::new();
        let ctx = OpContext::detached("sn_oob".parse().unwrap());
        let live = p
            .read(&ctx, &oob, &serde_json::Value::Null, &serde_json::Value::Null)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            live.inputs,
            json!({"vpc_id": vpc_id, "cidr_block": "10.20.9.0/24", "availability_zone": "us-east-1c",
                   "map_public_ip_on_launch": false, "tags": {}})
        );
        // Find adopts by the ownership tag only.
        assert!(p.find(&ctx, &json!({})).await.unwrap().is_none());
        let found = p.find(&staged("sn"), &json!({})).await.unwrap().unwrap();
        assert_eq!(found.id, id3);
        p.delete(&ctx, &oob, &json!({}), &json!({})).await.unwrap();

        s.destroy().await;
        assert!(subnet(&id3).await.is_none());
        assert!(!vpc_exists(&vpc_id).await);
    });
}

/// `--replace` on an unchanged VPC and its subnet: the subnet (delete-before-replace, since
/// its CIDR is taken) goes first, a new VPC is made before the old one is deleted, and the
/// new subnet lands in the new VPC; the emulator holds only the new objects.
#[test]
fn replace_on_request_makes_new_objects_and_deletes_the_old() {
    run(async {
        let s = Stage::new();
        let program = |st: &mut spar::Stack| {
            let vpc = st.add("net/vpc", Vpc::new("10.41.0.0/16"))?;
            st.add("net/subnet", Subnet::new(vpc.vpc_id(), "10.41.1.0/24").az("us-east-1a"))?;
            Ok(())
        };
        s.apply(program).await;
        let (old_vpc, old_subnet) = (s.id("net/vpc").await, s.id("net/subnet").await);
        assert!(quiet(&s.plan(program).await));
        let opts = spar::plan::diff::PlanOptions {
            replace: vec!["net/vpc".into()],
            ..Default::default()
        };
        let (plan, report) = s
            .session(program)
            .apply_program(&opts, &spar::apply::ExecuteOptions::default())
            .await
            .expect("apply runs");
        assert!(report.succeeded(), "{:?}", report.failures().collect::<Vec<_>>());
        assert_eq!(op(&plan, "net/vpc"), Op::Replace);
        assert_eq!(
            op(&plan, "net/subnet"),
            Op::Replace,
            "its vpc_id is known only after apply"
        );
        let (new_vpc, new_subnet) = (s.id("net/vpc").await, s.id("net/subnet").await);
        assert_ne!(new_vpc, old_vpc);
        assert_ne!(new_subnet, old_subnet);
        assert!(!vpc_exists(&old_vpc).await, "the old VPC is deleted");
        assert!(vpc_exists(&new_vpc).await);
        let sn = ec2()
            .await
            .describe_subnets()
            .subnet_ids(&new_subnet)
            .send()
            .await
            .unwrap();
        assert_eq!(sn.subnets()[0].vpc_id(), Some(new_vpc.as_str()));
        assert!(quiet(&s.plan(program).await));
        s.destroy().await;
    });
}

/// Drift made with the SDK (as the console or another tool would): the refresh-only
/// preview shows the property and writes nothing; accepted, exactly that is written.
#[test]
fn refresh_only_shows_drift_made_outside_and_writes_it_when_accepted() {
    run(async {
        let s = Stage::new();
        let program = |st: &mut spar::Stack| {
            st.add("net/vpc", Vpc::new("10.42.0.0/16"))?;
            Ok(())
        };
        s.apply(program).await;
        let id = s.id("net/vpc").await;
        ec2()
            .await
            .modify_vpc_attribute()
            .vpc_id(&id)
            .enable_dns_hostnames(aws_sdk_ec2::types::AttributeBooleanValue::builder().value(true).build())
            .send()
            .await
            .unwrap();
        let before = s.snapshot().await;
        let session = s.session(program);
        let report = session.refresh_preview(&[], 4).await.unwrap();
        assert_eq!(report.drifted.len(), 1, "{report:?}");
        let (addr, changes) = &report.drifted[0];
        assert_eq!(addr.as_str(), "net/vpc");
        let c = changes
            .iter()
            .find(|c| c.path.to_string() == "enable_dns_hostnames")
            .expect("the attribute");
        assert_eq!(
            (c.before.clone(), c.after.clone()),
            (Some(json!(false)), Some(json!(true)))
        );
        assert_eq!(s.snapshot().await, before, "the preview wrote nothing");
        let run = session.refresh_begin(&[], 4).await.unwrap();
        assert!(run.accept().await.unwrap());
        let after = s.snapshot().await;
        assert_eq!(
            after.get(&"net/vpc".parse().unwrap()).unwrap().inputs["enable_dns_hostnames"],
            json!(true)
        );
        // The program still says false: the next plan puts it back.
        assert_eq!(op(&s.plan(program).await, "net/vpc"), Op::Update);
        s.apply(program).await;
        assert!(!dns_hostnames(&id).await);
        s.destroy().await;
    });
}

/// `import --file` against the emulator: a VPC, a subnet, a security group and an IAM
/// role made with the SDK, as another tool would, listed in an imports file, are adopted in
/// one run (or none, when one id does not exist); each gets its declaration from its live
/// inputs; a program that does not declare them cannot delete them, and the program made of
/// the printed declarations adopts them with no change at all.
#[test]
fn many_objects_made_elsewhere_are_imported_in_one_run_and_guarded() {
    use spar::aws::{ec2, iam};
    run(async {
        let vpc = ec2()
            .await
            .create_vpc()
            .cidr_block("10.43.0.0/16")
            .send()
            .await
            .unwrap();
        let vpc_id = vpc.vpc().unwrap().vpc_id().unwrap().to_string();
        let subnet = ec2()
            .await
            .create_subnet()
            .vpc_id(&vpc_id)
            .cidr_block("10.43.1.0/24")
            .availability_zone("us-east-1b")
            .send()
            .await
            .unwrap();
        let subnet_id = subnet.subnet().unwrap().subnet_id().unwrap().to_string();
        let sg = ec2()
            .await
            .create_security_group()
            .group_name("spar-import-sg")
            .description("made by hand")
            .vpc_id(&vpc_id)
            .send()
            .await
            .unwrap();
        let sg_id = sg.group_id().unwrap().to_string();
        support::iam()
            .await
            .create_role()
            .role_name("spar-import-role")
            .assume_role_policy_document(
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
            )
            .send()
            .await
            .unwrap();
        let s = Stage::new();
        let file = |role: &str| {
            let text = format!(
                r#"
[[import]]
kind = "aws:ec2:Vpc"
address = "net/vpc"
id = "{vpc_id}"

[[import]]
kind = "aws:ec2:Subnet"
address = "net/subnet"
id = "{subnet_id}"

[[import]]
kind = "aws:ec2:SecurityGroup"
address = "net/sg"
id = "{sg_id}"

[[import]]
kind = "aws:iam:Role"
address = "ci-role"
id = "{role}"
"#
            );
            spar::ops::import::parse_imports(&text, "imports.toml").unwrap()
        };
        let empty = |_: &mut spar::Stack| Ok(());
        let err = s
            .session(empty)
            .import_many(&file("spar-no-such-role"), 4)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("`ci-role`"), "{err}");
        assert!(err.to_string().contains("nothing was imported"), "{err}");
        assert!(s.snapshot().await.resources.is_empty(), "none imported");

        let session = s.session(empty);
        let adopted = session.import_many(&file("spar-import-role"), 4).await.unwrap();
        adopted.iter().for_each(support::assert_declarable);
        assert_eq!(adopted.len(), 4);
        let snap = s.snapshot().await;
        let at = |a: &str| snap.get(&a.parse().unwrap()).unwrap().clone();
        assert_eq!(at("net/vpc").inputs["cidr_block"], json!("10.43.0.0/16"));
        assert_eq!(at("net/subnet").id, subnet_id);
        assert_eq!(at("net/subnet").inputs["availability_zone"], json!("us-east-1b"));
        assert_eq!(at("net/sg").id, sg_id);
        assert_eq!(at("ci-role").id, "spar-import-role");
        assert!(snap.resources.values().all(|r| r.options.protect && r.options.imported));

        // The declaration of each, from its live inputs (defaults left out).
        let printed: Vec<(String, String)> = spar::ops::import::declarations(&session.registry, &adopted)
            .into_iter()
            .map(|d| (d.component, d.code.expect("every kind writes one")))
            .collect();
        assert_eq!(
            printed,
            vec![
                ("net".to_string(), r#"stack.add("vpc", ec2::Vpc::new("10.43.0.0/16"))?;"#.to_string()),
                (
                    "net".to_string(),
                    format!(r#"stack.add("subnet", ec2::Subnet::new("{vpc_id}", "10.43.1.0/24").az("us-east-1b"))?;"#)
                ),
                (
                    "net".to_string(),
                    format!(
                        r#"stack.add("sg", ec2::SecurityGroup::new("{vpc_id}").name("spar-import-sg").description("made by hand"))?;"#
                    )
                ),
                (
                    String::new(),
                    r#"stack.add("ci-role", iam::Role::assumed_by_service("ec2.amazonaws.com").name("spar-import-role"))?;"#
                        .to_string()
                ),
            ]
        );

        // The next apply of a program without them refuses, and deletes nothing.
        let err = s
            .session(empty)
            .apply_program(&Default::default(), &Default::default())
            .await
            .expect_err("refused");
        assert!(
            err.to_string()
                .contains("was imported and is protected until the program declares it"),
            "{err}"
        );
        assert!(vpc_exists(&vpc_id).await);
        assert_eq!(s.snapshot().await, snap, "state unchanged");

        // The program made of the printed declarations adopts them as they are.
        let v = vpc_id.clone();
        let declared = move |stack: &mut spar::Stack| {
            stack.component("net", |stack| {
                stack.add("vpc", ec2::Vpc::new("10.43.0.0/16"))?;
                stack.add("subnet", ec2::Subnet::new(v.as_str(), "10.43.1.0/24").az("us-east-1b"))?;
                stack.add(
                    "sg",
                    ec2::SecurityGroup::new(v.as_str())
                        .name("spar-import-sg")
                        .description("made by hand"),
                )?;
                Ok(())
            })?;
            stack.add(
                "ci-role",
                iam::Role::assumed_by_service("ec2.amazonaws.com").name("spar-import-role"),
            )?;
            Ok(())
        };
        let plan = s.apply(declared).await;
        assert!(
            plan.changes.iter().all(|c| c.op == Op::Same),
            "{:?}",
            plan.changes.iter().map(|c| (&c.address, c.op)).collect::<Vec<_>>()
        );
        let snap = s.snapshot().await;
        assert!(
            snap.resources
                .values()
                .all(|r| !r.options.protect && !r.options.imported)
        );

        // Clean up by hand.
        ec2()
            .await
            .delete_security_group()
            .group_id(&sg_id)
            .send()
            .await
            .unwrap();
        ec2().await.delete_subnet().subnet_id(&subnet_id).send().await.unwrap();
        ec2().await.delete_vpc().vpc_id(&vpc_id).send().await.unwrap();
        support::iam()
            .await
            .delete_role()
            .role_name("spar-import-role")
            .send()
            .await
            .unwrap();
    });
}
