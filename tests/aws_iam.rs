//! IAM kinds against the sandbox emulator: roles with typed trust policies, attachments,
//! inline and managed policies, instance profiles and OIDC providers. Create, read back,
//! in-place update, replace, delete (detach before delete, asserted from the steps spar
//! ran, since the emulator skips IAM's dependency checks), drift, import and `find`.
#![cfg(feature = "aws")]

#[path = "support/aws.rs"]
mod support;

use std::sync::Arc;

use serde_json::json;
use spar::aws::iam::{
    InstanceProfile, OpenIdConnectProvider, Policy, PolicyDocument, Role, RolePolicy, RolePolicyAttachment, Statement,
};
use spar::plan::Op;
use spar::provider::{OpContext, ResourceProvider};
use support::{Recorder, Stage, iam, op, quiet, run, staged};

fn eks_trust(extra_service: Option<&str>) -> PolicyDocument {
    let mut st = Statement::allow(&["sts:AssumeRole", "sts:TagSession"]).principal("Service", "eks.amazonaws.com");
    if let Some(s) = extra_service {
        st = st.principal("Service", s);
    }
    PolicyDocument::new(vec![st])
}

async fn role(name: &str) -> Option<aws_sdk_iam::types::Role> {
    iam()
        .await
        .get_role()
        .role_name(name)
        .send()
        .await
        .ok()
        .and_then(|o| o.role().cloned())
}

async fn attached(name: &str) -> Vec<String> {
    iam()
        .await
        .list_attached_role_policies()
        .role_name(name)
        .send()
        .await
        .map(|o| {
            o.attached_policies()
                .iter()
                .filter_map(|p| p.policy_arn().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn role_with_attachments_lifecycle() {
    run(async {
        let s = Stage::new();
        let program = |extra: Option<&'static str>, desc: &'static str, team: &'static str| {
            move |st: &mut spar::Stack| {
                let r = st.add(
                    "iam1/cluster-role",
                    Role::new(eks_trust(extra)).description(desc).tag("team", team),
                )?;
                st.add(
                    "iam1/cluster-policy",
                    RolePolicyAttachment::aws_managed(r.name(), "AmazonEKSClusterPolicy"),
                )?;
                st.add(
                    "iam1/inline",
                    RolePolicy::new(
                        r.name(),
                        PolicyDocument::new(vec![Statement::allow(&["eks:DescribeCluster"]).resources(&["*"])]),
                    ),
                )?;
                Ok(())
            }
        };
        s.apply(program(None, "cluster", "a")).await;
        let name = s.id("iam1/cluster-role").await;
        assert!(
            name.starts_with("cluster-role-") && name.len() == "cluster-role-".len() + 8,
            "{name}"
        );
        let r = role(&name).await.unwrap();
        let tags: std::collections::BTreeMap<_, _> = r.tags().iter().map(|t| (t.key(), t.value())).collect();
        assert_eq!(tags.get("spar:address"), Some(&"iam1/cluster-role"));
        assert_eq!(tags.get("spar:stack"), Some(&support::STACK));
        assert_eq!(tags.get("team"), Some(&"a"));
        assert_eq!(
            attached(&name).await,
            vec!["arn:aws:iam::aws:policy/AmazonEKSClusterPolicy".to_string()]
        );
        let out = s.outputs("iam1/cluster-role").await;
        assert_eq!(out["arn"], format!("arn:aws:iam::123456789012:role/{name}"));
        // Read back: the trust policy IAM returns (encoded, shorthand) equals ours.
        let plan = s.plan(program(None, "cluster", "a")).await;
        assert!(
            quiet(&plan),
            "{:#?}",
            plan.changes.iter().filter(|c| c.op != Op::Same).collect::<Vec<_>>()
        );
        let r = s.session(program(None, "cluster", "a")).refresh(4).await.unwrap();
        assert!(r.drifted.is_empty() && r.errors.is_empty(), "{r:?}");

        // In place: trust policy, description, tags, inline policy.
        let plan = s
            .apply(program(Some("pods.eks.amazonaws.com"), "the cluster", "b"))
            .await;
        assert_eq!(op(&plan, "iam1/cluster-role"), Op::Update);
        assert_eq!(op(&plan, "iam1/cluster-policy"), Op::Same);
        let r = role(&name).await.unwrap();
        assert_eq!(r.description(), Some("the cluster"));
        let trust = PolicyDocument::parse(r.assume_role_policy_document().unwrap()).unwrap();
        assert_eq!(trust, eks_trust(Some("pods.eks.amazonaws.com")));

        // Drift: the trust policy changed out of band.
        iam()
            .await
            .update_assume_role_policy()
            .role_name(&name)
            .policy_document(eks_trust(None).to_json())
            .send()
            .await
            .unwrap();
        let r = s
            .session(program(Some("pods.eks.amazonaws.com"), "the cluster", "b"))
            .refresh(4)
            .await
            .unwrap();
        assert_eq!(r.drifted.len(), 1, "{r:?}");
        assert!(
            r.drifted[0]
                .1
                .iter()
                .all(|c| c.path.to_string().starts_with("assume_role_policy")),
            "{r:?}"
        );
        let plan = s
            .apply(program(Some("pods.eks.amazonaws.com"), "the cluster", "b"))
            .await;
        assert_eq!(op(&plan, "iam1/cluster-role"), Op::Update);
        let trust = PolicyDocument::parse(role(&name).await.unwrap().assume_role_policy_document().unwrap()).unwrap();
        assert_eq!(trust, eks_trust(Some("pods.eks.amazonaws.com")));

        // Drift: the attachment detached out of band is gone and comes back.
        iam()
            .await
            .detach_role_policy()
            .role_name(&name)
            .policy_arn("arn:aws:iam::aws:policy/AmazonEKSClusterPolicy")
            .send()
            .await
            .unwrap();
        let plan = s
            .apply(program(Some("pods.eks.amazonaws.com"), "the cluster", "b"))
            .await;
        // Apply does not refresh by itself: the plan is against state, so nothing changes...
        assert_eq!(op(&plan, "iam1/cluster-policy"), Op::Same);
        // ...until a refresh finds it gone.
        let r = s
            .session(program(Some("pods.eks.amazonaws.com"), "the cluster", "b"))
            .refresh(4)
            .await
            .unwrap();
        assert_eq!(
            r.gone.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            vec!["iam1/cluster-policy"]
        );
        s.apply(program(Some("pods.eks.amazonaws.com"), "the cluster", "b"))
            .await;
        assert_eq!(attached(&name).await.len(), 1);

        // Find adopts the role by its generated name and ownership tag.
        let p = spar::aws::iam::role::RoleProvider::new();
        let found = p
            .find(&staged("iam1/cluster-role"), &json!({"name": null}))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.id, name);
        assert!(
            p.find(&staged("iam1/other"), &json!({"name": name}))
                .await
                .unwrap()
                .is_none(),
            "a role of another address is not adopted"
        );

        // Delete: the attachment and the inline policy go before the role.
        let rec = Arc::new(Recorder::default());
        s.apply_recorded(|_| Ok(()), true, rec.clone()).await;
        rec.before(("iam1/cluster-policy", "delete"), ("iam1/cluster-role", "delete"));
        rec.before(("iam1/inline", "delete"), ("iam1/cluster-role", "delete"));
        assert!(role(&name).await.is_none());
    });
}

#[test]
fn two_stacks_get_their_own_roles() {
    run(async {
        // IAM names are account-wide: dev and prod of one program, at one address, must
        // neither share a generated name nor adopt each other's role.
        let p = spar::aws::iam::role::RoleProvider::new();
        let dev = OpContext::detached("iam6/role".parse().unwrap()).in_stack("p/dev");
        let prod = OpContext::detached("iam6/role".parse().unwrap()).in_stack("p/prod");
        let inputs = json!({"assume_role_policy": serde_json::to_value(eks_trust(None)).unwrap()});
        let d = p.create(&dev, &inputs).await.unwrap();
        assert!(
            p.find(&prod, &inputs).await.unwrap().is_none(),
            "prod adopted dev's role"
        );
        let q = p.create(&prod, &inputs).await.unwrap();
        assert_ne!(d.id, q.id, "both stacks generated the same role name");
        assert!(
            d.id.starts_with("role-") && q.id.starts_with("role-"),
            "{} {}",
            d.id,
            q.id
        );
        assert_eq!(p.find(&dev, &inputs).await.unwrap().unwrap().id, d.id);
        assert_eq!(p.find(&prod, &inputs).await.unwrap().unwrap().id, q.id);
        // A role named explicitly, made by dev, is not prod's either.
        let named = json!({"name": d.id, "assume_role_policy": inputs["assume_role_policy"]});
        assert!(p.find(&prod, &named).await.unwrap().is_none());
        let tags = |r: aws_sdk_iam::types::Role| {
            r.tags()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string()))
                .collect::<std::collections::BTreeMap<_, _>>()
        };
        assert_eq!(
            tags(role(&q.id).await.unwrap()).get("spar:stack").map(String::as_str),
            Some("p/prod")
        );
        p.delete(&dev, &d.id, &inputs, &d.outputs).await.unwrap();
        p.delete(&prod, &q.id, &inputs, &q.outputs).await.unwrap();
        assert!(role(&d.id).await.is_none() && role(&q.id).await.is_none());
    });
}

#[test]
fn role_replace_and_import() {
    run(async {
        let s = Stage::new();
        let program = |name: &'static str| {
            move |st: &mut spar::Stack| {
                st.add(
                    "iam2/node-role",
                    Role::assumed_by_service("ec2.amazonaws.com").name(name),
                )?;
                Ok(())
            }
        };
        s.apply(program("spar-test-node-a")).await;
        assert!(role("spar-test-node-a").await.is_some());
        let plan = s.apply(program("spar-test-node-b")).await;
        let change = plan.get(&"iam2/node-role".parse().unwrap()).unwrap();
        assert_eq!(change.op, Op::Replace);
        assert!(change.delete_before_replace);
        assert!(role("spar-test-node-a").await.is_none());
        assert!(role("spar-test-node-b").await.is_some());
        s.destroy().await;
        assert!(role("spar-test-node-b").await.is_none());

        // Import a role made out of band (AWS shorthand in its trust policy).
        iam()
            .await
            .create_role()
            .role_name("spar-test-imported")
            .assume_role_policy_document(
                r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}}"#,
            )
            .send()
            .await
            .unwrap();
        let program = |st: &mut spar::Stack| {
            st.add(
                "iam2/imported",
                Role::assumed_by_service("ec2.amazonaws.com").name("spar-test-imported"),
            )?;
            Ok(())
        };
        let imported = s
            .session(program)
            .import("aws:iam:Role", &"iam2/imported".parse().unwrap(), "spar-test-imported")
            .await
            .unwrap();
        support::assert_declarable(&imported);
        assert_eq!(
            imported.inputs["assume_role_policy"],
            PolicyDocument::assumed_by_service("ec2.amazonaws.com").canonical()
        );
        let plan = s.plan(program).await;
        assert!(quiet(&plan), "{:#?}", plan.changes);
        s.destroy().await;
        assert!(role("spar-test-imported").await.is_none());
    });
}

async fn versions(arn: &str) -> Vec<(String, bool)> {
    iam()
        .await
        .list_policy_versions()
        .policy_arn(arn)
        .send()
        .await
        .unwrap()
        .versions()
        .iter()
        .map(|v| (v.version_id().unwrap().to_string(), v.is_default_version()))
        .collect()
}

#[test]
fn managed_policy_versions_and_delete_order() {
    run(async {
        let s = Stage::new();
        let doc =
            |actions: &'static [&'static str]| PolicyDocument::new(vec![Statement::allow(actions).resources(&["*"])]);
        let program = |actions: &'static [&'static str]| {
            move |st: &mut spar::Stack| {
                let r = st.add("iam3/controller", Role::assumed_by_service("pods.eks.amazonaws.com"))?;
                let p = st.add("iam3/policy", Policy::new(doc(actions)).description("karpenter"))?;
                st.add("iam3/attach", RolePolicyAttachment::new(r.name(), p.arn()))?;
                Ok(())
            }
        };
        s.apply(program(&["ec2:DescribeInstances"])).await;
        let arn = s.id("iam3/policy").await;
        assert!(arn.starts_with("arn:aws:iam::123456789012:policy/policy-"), "{arn}");
        assert!(quiet(&s.plan(program(&["ec2:DescribeInstances"])).await));

        // In place: each document change makes a new default version and prunes the rest.
        for (i, actions) in [
            &["ec2:RunInstances"][..],
            &["ec2:CreateFleet"][..],
            &["sqs:ReceiveMessage"][..],
        ]
        .into_iter()
        .enumerate()
        {
            let plan = s.apply(program(actions)).await;
            assert_eq!(op(&plan, "iam3/policy"), Op::Update);
            let v = versions(&arn).await;
            assert_eq!(v, vec![(format!("v{}", i + 2), true)], "{v:?}");
        }
        assert_eq!(s.outputs("iam3/policy").await["default_version_id"], "v4");

        // Drift: a new default version made out of band.
        iam()
            .await
            .create_policy_version()
            .policy_arn(&arn)
            .policy_document(doc(&["s3:*"]).to_json())
            .set_as_default(true)
            .send()
            .await
            .unwrap();
        let r = s.session(program(&["sqs:ReceiveMessage"])).refresh(4).await.unwrap();
        assert_eq!(
            r.drifted.iter().map(|(a, _)| a.to_string()).collect::<Vec<_>>(),
            vec!["iam3/policy"]
        );

        // The delete refuses while the policy is attached (the emulator would not).
        let p = spar::aws::iam::policy::PolicyProvider::new();
        let ctx = staged("iam3/policy");
        let err = p.delete(&ctx, &arn, &json!({}), &json!({})).await.unwrap_err();
        assert!(err.to_string().contains("DeleteConflict"), "{err}");
        // Find adopts it by name and tag.
        let found = p
            .find(&ctx, &json!({"name": null, "path": "/"}))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.id, arn);

        let rec = Arc::new(Recorder::default());
        s.apply_recorded(|_| Ok(()), true, rec.clone()).await;
        rec.before(("iam3/attach", "delete"), ("iam3/policy", "delete"));
        rec.before(("iam3/attach", "delete"), ("iam3/controller", "delete"));
        assert!(iam().await.get_policy().policy_arn(&arn).send().await.is_err());
    });
}

#[test]
fn instance_profile_moves_role_in_place() {
    run(async {
        let s = Stage::new();
        let program = |second: bool| {
            move |st: &mut spar::Stack| {
                let a = st.add("iam4/role_a", Role::assumed_by_service("ec2.amazonaws.com"))?;
                let b = st.add("iam4/role_b", Role::assumed_by_service("ec2.amazonaws.com"))?;
                let role = if second { b.name() } else { a.name() };
                st.add("iam4/profile", InstanceProfile::new(role).tag("k", "v"))?;
                Ok(())
            }
        };
        s.apply(program(false)).await;
        let name = s.id("iam4/profile").await;
        let get = |n: String| async move {
            iam()
                .await
                .get_instance_profile()
                .instance_profile_name(n)
                .send()
                .await
                .ok()
                .and_then(|o| o.instance_profile().cloned())
        };
        let p = get(name.clone()).await.unwrap();
        assert_eq!(p.roles()[0].role_name(), s.id("iam4/role_a").await);
        assert!(quiet(&s.plan(program(false)).await));
        let plan = s.apply(program(true)).await;
        assert_eq!(op(&plan, "iam4/profile"), Op::Update);
        let p = get(name.clone()).await.unwrap();
        assert_eq!(p.roles().len(), 1);
        assert_eq!(p.roles()[0].role_name(), s.id("iam4/role_b").await);

        // Drift: the role removed out of band.
        iam()
            .await
            .remove_role_from_instance_profile()
            .instance_profile_name(&name)
            .role_name(s.id("iam4/role_b").await)
            .send()
            .await
            .unwrap();
        let r = s.session(program(true)).refresh(4).await.unwrap();
        assert_eq!(r.drifted.len(), 1, "{r:?}");
        s.apply(program(true)).await;
        assert_eq!(get(name.clone()).await.unwrap().roles().len(), 1);

        let rec = Arc::new(Recorder::default());
        s.apply_recorded(|_| Ok(()), true, rec.clone()).await;
        rec.before(("iam4/profile", "delete"), ("iam4/role_b", "delete"));
        assert!(get(name).await.is_none());
    });
}

#[test]
fn oidc_provider_lifecycle() {
    run(async {
        let s = Stage::new();
        let url = "https://oidc.eks.us-east-1.amazonaws.com/id/SPARTEST0001";
        let program = |thumb: &'static str, extra_client: bool| {
            // extra_client exercises AddClientID, which the emulator lacks; kept for real AWS runs.
            move |st: &mut spar::Stack| {
                let mut p = OpenIdConnectProvider::new(url).thumbprint(thumb).tag("cluster", "c1");
                if extra_client {
                    p = p.client_ids(&["sts.amazonaws.com", "spar-test"]);
                }
                st.add("iam5/oidc", p)?;
                Ok(())
            }
        };
        let thumb_a = "9e99a48a9960b14926bb7f3b02e22da2b0ab7280";
        let thumb_b = "06b25927c42a721631c1efd9431e648fa62e1e39";
        s.apply(program(thumb_a, false)).await;
        let arn = s.id("iam5/oidc").await;
        assert!(
            arn.ends_with("oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/SPARTEST0001"),
            "{arn}"
        );
        assert_eq!(
            s.outputs("iam5/oidc").await["issuer"],
            "oidc.eks.us-east-1.amazonaws.com/id/SPARTEST0001"
        );
        let plan = s.plan(program(thumb_a, false)).await;
        assert!(quiet(&plan), "{:#?}", plan.changes);
        // In place: the thumbprint. (The emulator does not implement Add/RemoveClientID, so
        // a change of client ids is not exercised here.)
        let plan = s.apply(program(thumb_b, false)).await;
        assert_eq!(op(&plan, "iam5/oidc"), Op::Update);
        let live = iam()
            .await
            .get_open_id_connect_provider()
            .open_id_connect_provider_arn(&arn)
            .send()
            .await
            .unwrap();
        assert_eq!(live.thumbprint_list(), [thumb_b.to_string()]);
        assert_eq!(live.client_id_list(), ["sts.amazonaws.com".to_string()]);
        // Drift: the thumbprint changed out of band.
        iam()
            .await
            .update_open_id_connect_provider_thumbprint()
            .open_id_connect_provider_arn(&arn)
            .thumbprint_list(thumb_a)
            .send()
            .await
            .unwrap();
        let r = s.session(program(thumb_b, false)).refresh(4).await.unwrap();
        assert_eq!(r.drifted.len(), 1, "{r:?}");
        assert!(r.drifted[0].1[0].path.to_string().starts_with("thumbprints"), "{r:?}");
        // Import reads the inputs the program declares.
        let p = spar::aws::iam::oidc::OpenIdConnectProviderProvider::new();
        let live = p
            .read(
                &staged("iam5/oidc"),
                &arn,
                &serde_json::Value::Null,
                &serde_json::Value::Null,
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(live.inputs["url"], url);
        assert_eq!(live.inputs["tags"], json!({"cluster": "c1"}));
        let found = p.find(&staged("iam5/oidc"), &json!({})).await.unwrap().unwrap();
        assert_eq!(found.id, arn);
        s.destroy().await;
        assert!(
            iam()
                .await
                .get_open_id_connect_provider()
                .open_id_connect_provider_arn(&arn)
                .send()
                .await
                .is_err()
        );
    });
}

const OOB_URL: &str = "https://oidc.eks.us-east-1.amazonaws.com/id/SPARTESTOOB1";
const OOB_URL_B: &str = "https://oidc.eks.us-east-1.amazonaws.com/id/SPARTESTOOB2";
const OOB_THUMB: &str = "9e99a48a9960b14926bb7f3b02e22da2b0ab7280";

fn oob_doc(action: &str) -> PolicyDocument {
    PolicyDocument::new(vec![Statement::allow(&[action]).resources(&["*"])])
}

/// Two roles made by spar; with `imported`, an attachment, an inline policy, a managed
/// policy, an instance profile and an OIDC provider in the shape of the objects the test
/// makes out of band; `changed` changes a replace-forcing field of each.
fn iam_out_of_band(imported: bool, changed: bool) -> impl FnOnce(&mut spar::Stack) -> spar::Result<()> {
    move |st: &mut spar::Stack| {
        let r = st.add(
            "iam6/role",
            Role::assumed_by_service("ec2.amazonaws.com").name("spar-test-iam6"),
        )?;
        if !imported {
            return Ok(());
        }
        let pick = |a: &'static str, b: &'static str| if changed { b } else { a };
        st.add(
            "iam6/attach",
            RolePolicyAttachment::aws_managed(r.name(), pick("AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy")),
        )?;
        st.add(
            "iam6/inline",
            RolePolicy::new(r.name(), oob_doc("s3:GetObject")).name(pick("inline-a", "inline-b")),
        )?;
        st.add(
            "iam6/policy",
            Policy::new(oob_doc("sqs:SendMessage"))
                .name("spar-test-iam6-policy")
                .description(pick("oob", "oob, changed"))
                .tag("team", "iam"),
        )?;
        st.add(
            "iam6/profile",
            InstanceProfile::new(r.name()).name(pick("spar-test-iam6-profile", "spar-test-iam6-profile-b")),
        )?;
        st.add(
            "iam6/oidc",
            OpenIdConnectProvider::new(pick(OOB_URL, OOB_URL_B))
                .thumbprint(OOB_THUMB)
                .tag("team", "iam"),
        )?;
        Ok(())
    }
}

#[test]
fn iam_objects_made_out_of_band_import_drift_replace() {
    run(async {
        let s = Stage::new();
        s.apply(iam_out_of_band(false, false)).await;
        let iam = iam().await;
        let tag = |k: &str, v: &str| aws_sdk_iam::types::Tag::builder().key(k).value(v).build().unwrap();

        // Made out of band with the SDK.
        iam.attach_role_policy()
            .role_name("spar-test-iam6")
            .policy_arn("arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy")
            .send()
            .await
            .unwrap();
        iam.put_role_policy()
            .role_name("spar-test-iam6")
            .policy_name("inline-a")
            .policy_document(oob_doc("s3:GetObject").to_json())
            .send()
            .await
            .unwrap();
        let policy_arn = iam
            .create_policy()
            .policy_name("spar-test-iam6-policy")
            .description("oob")
            .policy_document(oob_doc("sqs:SendMessage").to_json())
            .tags(tag("team", "iam"))
            .send()
            .await
            .unwrap()
            .policy()
            .and_then(|p| p.arn())
            .unwrap()
            .to_string();
        iam.create_instance_profile()
            .instance_profile_name("spar-test-iam6-profile")
            .send()
            .await
            .unwrap();
        iam.add_role_to_instance_profile()
            .instance_profile_name("spar-test-iam6-profile")
            .role_name("spar-test-iam6")
            .send()
            .await
            .unwrap();
        let oidc_arn = iam
            .create_open_id_connect_provider()
            .url(OOB_URL)
            .client_id_list("sts.amazonaws.com")
            .thumbprint_list(OOB_THUMB)
            .tags(tag("team", "iam"))
            .send()
            .await
            .unwrap()
            .open_id_connect_provider_arn()
            .unwrap()
            .to_string();

        // Import each through its provider's read; the program declaring them plans nothing.
        for (kind, address, id) in [
            (
                "aws:iam:RolePolicyAttachment",
                "iam6/attach",
                "spar-test-iam6/arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy".to_string(),
            ),
            (
                "aws:iam:RolePolicy",
                "iam6/inline",
                "spar-test-iam6:inline-a".to_string(),
            ),
            ("aws:iam:Policy", "iam6/policy", policy_arn.clone()),
            (
                "aws:iam:InstanceProfile",
                "iam6/profile",
                "spar-test-iam6-profile".to_string(),
            ),
            ("aws:iam:OpenIdConnectProvider", "iam6/oidc", oidc_arn.clone()),
        ] {
            let imported = s
                .session(iam_out_of_band(true, false))
                .import(kind, &address.parse().unwrap(), &id)
                .await
                .unwrap_or_else(|e| panic!("import {address}: {e}"));
            assert_eq!(imported.id, id, "{address}");
            support::assert_declarable(&imported);
        }
        let plan = s.plan(iam_out_of_band(true, false)).await;
        assert!(
            quiet(&plan),
            "{:#?}",
            plan.changes.iter().filter(|c| c.op != Op::Same).collect::<Vec<_>>()
        );

        // Drift: the inline policy's document changed out of band, then put back.
        iam.put_role_policy()
            .role_name("spar-test-iam6")
            .policy_name("inline-a")
            .policy_document(oob_doc("s3:*").to_json())
            .send()
            .await
            .unwrap();
        let r = s.session(iam_out_of_band(true, false)).refresh(4).await.unwrap();
        assert_eq!(
            r.drifted.iter().map(|(a, _)| a.to_string()).collect::<Vec<_>>(),
            vec!["iam6/inline"],
            "{r:?}"
        );
        assert!(
            r.drifted[0].1.iter().all(|c| c.path.to_string().starts_with("policy")),
            "{r:?}"
        );
        let plan = s.apply(iam_out_of_band(true, false)).await;
        assert_eq!(op(&plan, "iam6/inline"), Op::Update);
        let doc = iam
            .get_role_policy()
            .role_name("spar-test-iam6")
            .policy_name("inline-a")
            .send()
            .await
            .unwrap();
        assert_eq!(
            PolicyDocument::parse(doc.policy_document()).unwrap(),
            oob_doc("s3:GetObject")
        );

        // Replace: each changed in a replace-forcing field.
        let plan = s.apply(iam_out_of_band(true, true)).await;
        for a in ["iam6/attach", "iam6/inline", "iam6/policy", "iam6/profile", "iam6/oidc"] {
            assert_eq!(op(&plan, a), Op::Replace, "{a}");
        }
        assert_eq!(
            attached("spar-test-iam6").await,
            vec!["arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy".to_string()]
        );
        let inline = iam
            .list_role_policies()
            .role_name("spar-test-iam6")
            .send()
            .await
            .unwrap();
        assert_eq!(inline.policy_names(), ["inline-b".to_string()]);
        let p = iam.get_policy().policy_arn(&policy_arn).send().await.unwrap();
        assert_eq!(p.policy().and_then(|p| p.description()), Some("oob, changed"));
        assert!(
            iam.get_instance_profile()
                .instance_profile_name("spar-test-iam6-profile")
                .send()
                .await
                .is_err()
        );
        let profile = iam
            .get_instance_profile()
            .instance_profile_name("spar-test-iam6-profile-b")
            .send()
            .await
            .unwrap();
        assert_eq!(
            profile.instance_profile().unwrap().roles()[0].role_name(),
            "spar-test-iam6"
        );
        assert!(
            iam.get_open_id_connect_provider()
                .open_id_connect_provider_arn(&oidc_arn)
                .send()
                .await
                .is_err()
        );
        assert!(quiet(&s.plan(iam_out_of_band(true, true)).await));

        s.destroy().await;
        assert!(role("spar-test-iam6").await.is_none());
        assert!(iam.get_policy().policy_arn(&policy_arn).send().await.is_err());
    });
}
