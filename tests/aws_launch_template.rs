//! `aws:ec2:LaunchTemplate` against the sandbox emulator: create (every data field, tags at
//! creation), read back with the SDK, in-place update (a new version made the default, the
//! version numbers asserted), a tag change that makes no version, drift after an
//! out-of-band new default version, replace (a new name), delete, import of a template
//! made out of band and adoption by the ownership tag.
#![cfg(feature = "aws")]

#[path = "support/aws.rs"]
mod support;

use base64::Engine as _;
use serde_json::json;
use spar::aws::ec2::{BlockDevice, LaunchTemplate, MetadataOptions, SecurityGroup, Vpc};
use spar::plan::Op;
use spar::provider::{OpContext, ResourceProvider};
use support::{Stage, ec2, op, quiet, run, tag_map};

const USER_DATA: &str = "#!/bin/bash\necho hello from spar\n";

async fn template(id: &str) -> Option<aws_sdk_ec2::types::LaunchTemplate> {
    ec2()
        .await
        .describe_launch_templates()
        .launch_template_ids(id)
        .send()
        .await
        .ok()
        .and_then(|o| o.launch_templates().first().cloned())
}

/// A template's live tags. (The emulator's DescribeLaunchTemplates answers the tags a
/// template was created with, never later changes; DescribeTags answers the live ones.)
async fn live_tags(id: &str) -> std::collections::BTreeMap<String, String> {
    let out = ec2()
        .await
        .describe_tags()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("resource-id")
                .values(id)
                .build(),
        )
        .send()
        .await
        .unwrap();
    out.tags()
        .iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

async fn version(id: &str, v: &str) -> aws_sdk_ec2::types::LaunchTemplateVersion {
    ec2()
        .await
        .describe_launch_template_versions()
        .launch_template_id(id)
        .versions(v)
        .send()
        .await
        .unwrap()
        .launch_template_versions()
        .first()
        .cloned()
        .unwrap()
}

#[derive(Clone, Copy)]
struct Want {
    name: Option<&'static str>,
    instance_type: &'static str,
    team: &'static str,
}

fn program(w: Want) -> impl FnOnce(&mut spar::Stack) -> spar::Result<()> {
    move |st: &mut spar::Stack| {
        let vpc = st.add("lt/vpc", Vpc::new("10.70.0.0/16"))?;
        let sg = st.add("lt/nodes", SecurityGroup::new(vpc.vpc_id()))?;
        let mut t = LaunchTemplate::new()
            .image_id("ami-12c6146b")
            .instance_type(w.instance_type)
            .key_name("spar-test-key")
            .security_group_id(sg.group_id())
            .user_data(USER_DATA)
            .block_device(BlockDevice::ebs("/dev/xvda", 40).volume_type("gp3").encrypted(true))
            .metadata_options(MetadataOptions::imdsv2(2))
            .iam_instance_profile_name("spar-test-profile")
            .instance_tag("team", "nodes")
            .volume_tag("backup", "no")
            .tag("team", w.team);
        if let Some(n) = w.name {
            t = t.name(n);
        }
        st.add("lt/template", t)?;
        Ok(())
    }
}

#[test]
fn launch_template_lifecycle() {
    run(async {
        let s = Stage::new();
        let w = Want {
            name: None,
            instance_type: "t3.micro",
            team: "a",
        };

        // Create: one version, the default, tagged at creation.
        let plan = s.apply(program(w)).await;
        assert_eq!(op(&plan, "lt/template"), Op::Create);
        let id = s.id("lt/template").await;
        assert!(id.starts_with("lt-"), "{id}");
        let out = s.outputs("lt/template").await;
        assert_eq!(out["latest_version"], 1, "{out}");
        assert_eq!(out["default_version"], 1, "{out}");
        assert!(
            out["arn"]
                .as_str()
                .unwrap()
                .ends_with(&format!(":launch-template/{id}")),
            "{out}"
        );
        let name = out["name"].as_str().unwrap().to_string();
        assert!(name.starts_with("template-"), "{name}");

        // Read back with the SDK.
        let t = template(&id).await.unwrap();
        assert_eq!(t.launch_template_name(), Some(name.as_str()));
        assert_eq!(tag_map(t.tags()), live_tags(&id).await);
        let tags = live_tags(&id).await;
        assert_eq!(tags.get("spar:address").map(String::as_str), Some("lt/template"));
        assert_eq!(tags.get("team").map(String::as_str), Some("a"));
        let v1 = version(&id, "$Default").await;
        assert_eq!(v1.version_number(), Some(1));
        let d = v1.launch_template_data().unwrap();
        assert_eq!(d.image_id(), Some("ami-12c6146b"));
        assert_eq!(d.instance_type().map(|t| t.as_str()), Some("t3.micro"));
        assert_eq!(d.key_name(), Some("spar-test-key"));
        assert_eq!(d.security_group_ids(), [s.id("lt/nodes").await]);
        let ud = base64::engine::general_purpose::STANDARD
            .decode(d.user_data().unwrap())
            .unwrap();
        assert_eq!(String::from_utf8(ud).unwrap(), USER_DATA, "user data is sent base64");
        let ebs = d.block_device_mappings()[0].ebs().unwrap();
        assert_eq!(d.block_device_mappings()[0].device_name(), Some("/dev/xvda"));
        assert_eq!(ebs.volume_size(), Some(40));
        assert_eq!(ebs.volume_type().map(|v| v.as_str()), Some("gp3"));
        assert_eq!(ebs.encrypted(), Some(true));
        let m = d.metadata_options().unwrap();
        assert_eq!(m.http_tokens().map(|t| t.as_str()), Some("required"));
        assert_eq!(m.http_put_response_hop_limit(), Some(2));
        assert_eq!(m.http_endpoint().map(|e| e.as_str()), Some("enabled"));
        assert_eq!(d.iam_instance_profile().unwrap().name(), Some("spar-test-profile"));
        let instance_tags = d
            .tag_specifications()
            .iter()
            .find(|t| t.resource_type().map(|r| r.as_str()) == Some("instance"))
            .map(|t| tag_map(t.tags()))
            .unwrap();
        assert_eq!(instance_tags.get("team").map(String::as_str), Some("nodes"));
        assert!(!instance_tags.contains_key("spar:address"), "{instance_tags:?}");

        // The same program plans nothing; a refresh finds no drift.
        assert!(quiet(&s.plan(program(w)).await));
        let r = s.session(program(w)).refresh(4).await.unwrap();
        assert!(r.drifted.is_empty() && r.errors.is_empty(), "{r:?}");

        // In place: new data makes version 2, the default, under the same id.
        let w2 = Want {
            instance_type: "t3.large",
            ..w
        };
        let plan = s.apply(program(w2)).await;
        assert_eq!(op(&plan, "lt/template"), Op::Update);
        assert_eq!(s.id("lt/template").await, id);
        let out = s.outputs("lt/template").await;
        assert_eq!(
            (out["latest_version"].clone(), out["default_version"].clone()),
            (json!(2), json!(2))
        );
        let t = template(&id).await.unwrap();
        assert_eq!(
            (t.latest_version_number(), t.default_version_number()),
            (Some(2), Some(2))
        );
        let v2 = version(&id, "$Default").await;
        assert_eq!(v2.version_number(), Some(2));
        let d2 = v2.launch_template_data().unwrap();
        assert_eq!(d2.instance_type().map(|t| t.as_str()), Some("t3.large"));
        // The whole data is in the new version, not only what changed.
        assert_eq!(
            d2.metadata_options().and_then(|m| m.http_put_response_hop_limit()),
            Some(2)
        );
        assert_eq!(d2.security_group_ids().len(), 1);
        assert_eq!(
            version(&id, "1")
                .await
                .launch_template_data()
                .unwrap()
                .instance_type()
                .map(|t| t.as_str()),
            Some("t3.micro"),
            "version 1 is kept"
        );
        assert!(quiet(&s.plan(program(w2)).await));

        // A tag of the template changes in place and makes no version.
        let w3 = Want { team: "b", ..w2 };
        let plan = s.apply(program(w3)).await;
        assert_eq!(op(&plan, "lt/template"), Op::Update);
        let t = template(&id).await.unwrap();
        assert_eq!(live_tags(&id).await.get("team").map(String::as_str), Some("b"));
        assert_eq!(
            live_tags(&id).await.get("spar:address").map(String::as_str),
            Some("lt/template")
        );
        assert_eq!(t.latest_version_number(), Some(2));
        assert!(quiet(&s.plan(program(w3)).await));

        // Drift: a new version made the default out of band.
        let client = ec2().await;
        let made = client
            .create_launch_template_version()
            .launch_template_id(&id)
            .launch_template_data(
                aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
                    .image_id("ami-12c6146b")
                    .instance_type(aws_sdk_ec2::types::InstanceType::M5Large)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let rogue = made.launch_template_version().unwrap().version_number().unwrap();
        assert_eq!(rogue, 3);
        client
            .modify_launch_template()
            .launch_template_id(&id)
            .default_version("3")
            .send()
            .await
            .unwrap();
        let r = s.session(program(w3)).refresh(4).await.unwrap();
        assert_eq!(
            r.drifted.iter().map(|(a, _)| a.to_string()).collect::<Vec<_>>(),
            vec!["lt/template"],
            "{r:?}"
        );
        let paths: Vec<String> = r.drifted[0].1.iter().map(|c| c.path.to_string()).collect();
        assert!(paths.contains(&"instance_type".to_string()), "{paths:?}");
        assert!(paths.iter().any(|p| p.starts_with("metadata_options")), "{paths:?}");
        assert_eq!(
            s.outputs("lt/template").await["default_version"],
            3,
            "refresh reads the outputs"
        );
        // The next apply puts the program's data back as version 4, the default.
        let plan = s.apply(program(w3)).await;
        assert_eq!(op(&plan, "lt/template"), Op::Update);
        let t = template(&id).await.unwrap();
        assert_eq!(
            (t.latest_version_number(), t.default_version_number()),
            (Some(4), Some(4))
        );
        let d4 = version(&id, "$Default").await;
        assert_eq!(
            d4.launch_template_data().unwrap().instance_type().map(|t| t.as_str()),
            Some("t3.large")
        );
        let out = s.outputs("lt/template").await;
        assert_eq!(
            (out["latest_version"].clone(), out["default_version"].clone()),
            (json!(4), json!(4))
        );
        assert!(quiet(&s.plan(program(w3)).await));

        // Replace: a fixed name deletes the old template first, then makes the new one.
        let w4 = Want {
            name: Some("spar-test-lt-fixed"),
            ..w3
        };
        let plan = s.apply(program(w4)).await;
        let change = plan.get(&"lt/template".parse().unwrap()).unwrap();
        assert_eq!(change.op, Op::Replace);
        assert!(change.delete_before_replace);
        let new_id = s.id("lt/template").await;
        assert_ne!(new_id, id);
        assert!(template(&id).await.is_none(), "the old template is gone");
        let t = template(&new_id).await.unwrap();
        assert_eq!(t.launch_template_name(), Some("spar-test-lt-fixed"));
        assert_eq!(t.latest_version_number(), Some(1));
        assert_eq!(s.outputs("lt/template").await["latest_version"], 1);

        // Delete.
        s.destroy().await;
        assert!(template(&new_id).await.is_none());
        assert!(s.snapshot().await.resources.is_empty());
    });
}

#[test]
fn launch_template_import_find_delete() {
    run(async {
        let client = ec2().await;
        // A template made out of band, then changed once (its default is version 2).
        let data = |hop: i32| {
            aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
                .instance_type(aws_sdk_ec2::types::InstanceType::T3Small)
                .user_data(base64::engine::general_purpose::STANDARD.encode(USER_DATA))
                .metadata_options(
                    aws_sdk_ec2::types::LaunchTemplateInstanceMetadataOptionsRequest::builder()
                        .http_tokens(aws_sdk_ec2::types::LaunchTemplateHttpTokensState::Required)
                        .http_put_response_hop_limit(hop)
                        .build(),
                )
                .build()
        };
        let made = client
            .create_launch_template()
            .launch_template_name("spar-test-lt-imported")
            .launch_template_data(data(1))
            .tag_specifications(
                aws_sdk_ec2::types::TagSpecification::builder()
                    .resource_type(aws_sdk_ec2::types::ResourceType::LaunchTemplate)
                    .tags(aws_sdk_ec2::types::Tag::builder().key("team").value("ops").build())
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let id = made
            .launch_template()
            .unwrap()
            .launch_template_id()
            .unwrap()
            .to_string();
        client
            .create_launch_template_version()
            .launch_template_id(&id)
            .launch_template_data(data(2))
            .send()
            .await
            .unwrap();
        client
            .modify_launch_template()
            .launch_template_id(&id)
            .default_version("2")
            .send()
            .await
            .unwrap();

        let s = Stage::new();
        let program = |st: &mut spar::Stack| {
            st.add(
                "lt_imported",
                LaunchTemplate::new()
                    .name("spar-test-lt-imported")
                    .instance_type("t3.small")
                    .user_data(USER_DATA)
                    .metadata_options(
                        MetadataOptions::new()
                            .http_tokens(spar::aws::ec2::HttpTokens::Required)
                            .hop_limit(2),
                    )
                    .tag("team", "ops"),
            )?;
            Ok(())
        };
        // Import by name: the default version's data, in the program's shape.
        let imported = s
            .session(program)
            .import(
                "aws:ec2:LaunchTemplate",
                &"lt_imported".parse().unwrap(),
                "spar-test-lt-imported",
            )
            .await
            .unwrap();
        support::assert_declarable(&imported);
        assert_eq!(imported.id, id, "the id, though imported by name");
        assert_eq!(
            imported.inputs,
            json!({
                "name": "spar-test-lt-imported",
                "image_id": null,
                "instance_type": "t3.small",
                "key_name": null,
                "security_group_ids": [],
                "user_data": USER_DATA,
                "block_device_mappings": [],
                "metadata_options": {"http_tokens": "required", "http_put_response_hop_limit": 2, "http_endpoint_enabled": null},
                "iam_instance_profile": null,
                "tag_specifications": {},
                "tags": {"team": "ops"},
            })
        );
        assert_eq!(imported.outputs["default_version"], 2);
        assert_eq!(imported.outputs["latest_version"], 2);
        let plan = s.plan(program).await;
        assert!(
            quiet(&plan),
            "the imported template matches the program: {:#?}",
            plan.changes.iter().filter(|c| c.op != Op::Same).collect::<Vec<_>>()
        );
        s.destroy().await;
        assert!(template(&id).await.is_none());

        // Find adopts a template carrying the ownership tag, but never one already tracked.
        let tagged = client
            .create_launch_template()
            .launch_template_name("spar-test-lt-found")
            .launch_template_data(data(1))
            .tag_specifications(
                aws_sdk_ec2::types::TagSpecification::builder()
                    .resource_type(aws_sdk_ec2::types::ResourceType::LaunchTemplate)
                    .tags(
                        aws_sdk_ec2::types::Tag::builder()
                            .key("spar:address")
                            .value("nodes/lt_found")
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let tagged_id = tagged
            .launch_template()
            .unwrap()
            .launch_template_id()
            .unwrap()
            .to_string();
        let p = spar::aws::ec2::launch_template::LaunchTemplateProvider::new();
        let mut ctx = OpContext::detached("nodes/lt_found".parse().unwrap());
        let found = p.find(&ctx, &json!({})).await.unwrap().unwrap();
        assert_eq!(found.id, tagged_id);
        assert_eq!(found.outputs["name"], "spar-test-lt-found");
        assert_eq!(found.outputs["latest_version"], 1);
        ctx.tracked_ids = vec![tagged_id.clone()];
        assert!(
            p.find(&ctx, &json!({})).await.unwrap().is_none(),
            "a tracked id is never adopted"
        );
        let nobody = OpContext::detached("nodes/lt_nobody".parse().unwrap());
        assert!(p.find(&nobody, &json!({})).await.unwrap().is_none());

        // Delete waits until it is gone; a gone template reads as None; deleting it again succeeds.
        p.delete(&ctx, &tagged_id, &json!({}), &json!({})).await.unwrap();
        assert!(template(&tagged_id).await.is_none());
        assert!(
            p.read(&ctx, &tagged_id, &json!({}), &json!({}))
                .await
                .unwrap()
                .is_none()
        );
        p.delete(&ctx, &tagged_id, &json!({}), &json!({})).await.unwrap();
    });
}

#[test]
fn launch_template_bad_inputs_are_refused_before_any_call() {
    run(async {
        let s = Stage::new();
        let (_, report) = s
            .try_apply(|st| {
                st.add(
                    "lt_bad",
                    LaunchTemplate::new()
                        .name("spar-test-lt-bad")
                        .metadata_options(MetadataOptions::new().hop_limit(0)),
                )?;
                Ok(())
            })
            .await;
        let failures: Vec<String> = report.failures().map(|(_, m)| m.to_string()).collect();
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert!(failures[0].contains("http_put_response_hop_limit 0"), "{failures:?}");
        let r = ec2()
            .await
            .describe_launch_templates()
            .launch_template_names("spar-test-lt-bad")
            .send()
            .await;
        assert!(r.is_err() || r.unwrap().launch_templates().is_empty());
    });
}
