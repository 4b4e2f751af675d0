//! `aws:sqs:Queue` against the sandbox emulator: create, read back, in-place update of
//! attributes, policy and tags, replace, delete, drift, import and `find`.
#![cfg(feature = "aws")]

#[path = "support/aws.rs"]
mod support;

use serde_json::json;
use spar::aws::iam::{PolicyDocument, Statement};
use spar::aws::sqs::Queue;
use spar::plan::Op;
use spar::provider::ResourceProvider;
use support::{Stage, op, quiet, run, staged};

fn policy() -> PolicyDocument {
    PolicyDocument::new(vec![
        Statement::allow(&["sqs:SendMessage"])
            .principal("Service", "events.amazonaws.com")
            .principal("Service", "sqs.amazonaws.com")
            .resources(&["*"]),
        Statement::deny(&["sqs:*"])
            .sid("DenyHTTP")
            .principal("AWS", "*")
            .resources(&["*"])
            .condition("Bool", "aws:SecureTransport", &["false"]),
    ])
}

async fn attrs(url: &str) -> std::collections::HashMap<aws_sdk_sqs::types::QueueAttributeName, String> {
    spar::aws::context::clients()
        .await
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .unwrap()
        .attributes()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn queue_lifecycle() {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    run(async {
        let s = Stage::new();
        let program = |retention: i32, with_policy: bool, name: &'static str| {
            move |st: &mut spar::Stack| {
                let mut q = Queue::new()
                    .name(name)
                    .message_retention_seconds(retention)
                    .tag("cluster", "c1");
                if with_policy {
                    q = q.policy(policy());
                }
                st.add("sqs/interruption", q)?;
                Ok(())
            }
        };
        s.apply(program(300, true, "spar-test-c1")).await;
        let url = s.id("sqs/interruption").await;
        assert!(url.ends_with("/spar-test-c1"), "{url}");
        let a = attrs(&url).await;
        assert_eq!(a.get(&A::MessageRetentionPeriod).map(String::as_str), Some("300"));
        assert_eq!(a.get(&A::SqsManagedSseEnabled).map(String::as_str), Some("true"));
        assert_eq!(PolicyDocument::parse(a.get(&A::Policy).unwrap()).unwrap(), policy());
        assert!(
            s.outputs("sqs/interruption").await["arn"]
                .as_str()
                .unwrap()
                .ends_with(":spar-test-c1")
        );
        let plan = s.plan(program(300, true, "spar-test-c1")).await;
        assert!(quiet(&plan), "{:#?}", plan.changes);

        let plan = s.apply(program(600, false, "spar-test-c1")).await;
        assert_eq!(op(&plan, "sqs/interruption"), Op::Update);
        let a = attrs(&url).await;
        assert_eq!(a.get(&A::MessageRetentionPeriod).map(String::as_str), Some("600"));
        assert!(a.get(&A::Policy).is_none_or(|p| p.is_empty()), "{a:?}");

        // Drift.
        spar::aws::context::clients()
            .await
            .sqs
            .set_queue_attributes()
            .queue_url(&url)
            .attributes(A::MessageRetentionPeriod, "900")
            .send()
            .await
            .unwrap();
        let r = s.session(program(600, false, "spar-test-c1")).refresh(4).await.unwrap();
        assert_eq!(r.drifted.len(), 1, "{r:?}");
        assert_eq!(r.drifted[0].1[0].path.to_string(), "message_retention_seconds");
        s.apply(program(600, false, "spar-test-c1")).await;
        assert_eq!(
            attrs(&url).await.get(&A::MessageRetentionPeriod).map(String::as_str),
            Some("600")
        );

        // Find.
        let p = spar::aws::sqs::QueueProvider::new();
        let found = p
            .find(&staged("sqs/interruption"), &json!({"name": "spar-test-c1"}))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.id, url);
        assert!(
            p.find(&staged("sqs/other"), &json!({"name": "spar-test-c1"}))
                .await
                .unwrap()
                .is_none()
        );

        // Replace by name.
        let plan = s.apply(program(600, false, "spar-test-c2")).await;
        assert_eq!(op(&plan, "sqs/interruption"), Op::Replace);
        let url2 = s.id("sqs/interruption").await;
        assert!(url2.ends_with("/spar-test-c2"));

        // Import.
        let made = spar::aws::context::clients()
            .await
            .sqs
            .create_queue()
            .queue_name("spar-test-imported")
            .attributes(A::SqsManagedSseEnabled, "true")
            .tags("team", "ops")
            .send()
            .await
            .unwrap();
        let iurl = made.queue_url().unwrap().to_string();
        let imported = s
            .session(program(600, false, "spar-test-c2"))
            .import("aws:sqs:Queue", &"sqs/imported".parse().unwrap(), &iurl)
            .await
            .unwrap();
        support::assert_declarable(&imported);
        assert_eq!(imported.inputs["name"], "spar-test-imported");
        assert_eq!(imported.inputs["policy"], serde_json::Value::Null);
        assert_eq!(imported.inputs["tags"], json!({"team": "ops"}));
        // The program declaring it (AWS's defaults spelled out) plans nothing.
        let with_imported = move |st: &mut spar::Stack| {
            program(600, false, "spar-test-c2")(st)?;
            st.add(
                "sqs/imported",
                Queue::new()
                    .name("spar-test-imported")
                    .message_retention_seconds(345_600)
                    .visibility_timeout_seconds(30)
                    .tag("team", "ops"),
            )?;
            Ok(())
        };
        let plan = s.plan(with_imported).await;
        assert!(quiet(&plan), "{:#?}", plan.changes);

        s.destroy().await;
        let gone = spar::aws::context::clients()
            .await
            .sqs
            .get_queue_url()
            .queue_name("spar-test-c2")
            .send()
            .await;
        assert!(gone.is_err());
    });
}
