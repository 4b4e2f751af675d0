//! `aws:events:Rule` and `aws:events:Target` against the sandbox emulator: the
//! interruption wiring (rules to an SQS queue). Create, read back, in-place update, replace,
//! delete (targets before their rule, asserted from the steps), drift (of the rule, and of
//! the target: repointed or removed out of band), import of a rule and target made with the
//! SDK, replace (a new target id; a new rule name) and `find`.
#![cfg(feature = "aws")]

#[path = "support/aws.rs"]
mod support;

use std::sync::Arc;

use serde_json::json;
use spar::aws::events::{Rule, Target};
use spar::aws::sqs::Queue;
use spar::plan::Op;
use spar::provider::ResourceProvider;
use support::{Recorder, Stage, op, quiet, run, staged};

fn program(
    detail: &'static str,
    enabled: bool,
    second_queue: bool,
) -> impl FnOnce(&mut spar::Stack) -> spar::Result<()> {
    move |st: &mut spar::Stack| {
        let q = st.add(
            "ev/queue",
            Queue::new().name("spar-test-ev-a").message_retention_seconds(300),
        )?;
        let q2 = st.add("ev/queue2", Queue::new().name("spar-test-ev-b"))?;
        let rule = st.add(
            "ev/spot",
            Rule::new(json!({"source": ["aws.ec2"], "detail-type": [detail]}))
                .description("Karpenter interruption")
                .enabled(enabled)
                .tag("cluster", "c1"),
        )?;
        let arn = if second_queue { q2.arn() } else { q.arn() };
        st.add("ev/spot_to_queue", Target::new(rule.name(), arn))?;
        Ok(())
    }
}

#[test]
fn rule_and_target_lifecycle() {
    run(async {
        let s = Stage::new();
        let eb = &spar::aws::context::clients().await.events;
        s.apply(program("EC2 Spot Instance Interruption Warning", true, false))
            .await;
        let name = s.id("ev/spot").await;
        assert!(name.starts_with("spot-"), "{name}");
        let r = eb.describe_rule().name(&name).send().await.unwrap();
        assert_eq!(r.state(), Some(&aws_sdk_eventbridge::types::RuleState::Enabled));
        let targets = eb.list_targets_by_rule().rule(&name).send().await.unwrap();
        assert_eq!(targets.targets().len(), 1);
        assert_eq!(
            targets.targets()[0].arn(),
            s.outputs("ev/queue").await["arn"].as_str().unwrap()
        );
        let plan = s
            .plan(program("EC2 Spot Instance Interruption Warning", true, false))
            .await;
        assert!(
            quiet(&plan),
            "{:#?}",
            plan.changes.iter().filter(|c| c.op != Op::Same).collect::<Vec<_>>()
        );

        // In place: pattern, state, and the target's queue.
        let plan = s
            .apply(program("EC2 Instance Rebalance Recommendation", false, true))
            .await;
        assert_eq!(op(&plan, "ev/spot"), Op::Update);
        assert_eq!(op(&plan, "ev/spot_to_queue"), Op::Update);
        let r = eb.describe_rule().name(&name).send().await.unwrap();
        assert_eq!(r.state(), Some(&aws_sdk_eventbridge::types::RuleState::Disabled));
        assert!(r.event_pattern().unwrap().contains("Rebalance"));
        let targets = eb.list_targets_by_rule().rule(&name).send().await.unwrap();
        assert_eq!(
            targets.targets()[0].arn(),
            s.outputs("ev/queue2").await["arn"].as_str().unwrap()
        );

        // Drift: enabled out of band.
        eb.enable_rule().name(&name).send().await.unwrap();
        let r = s
            .session(program("EC2 Instance Rebalance Recommendation", false, true))
            .refresh(4)
            .await
            .unwrap();
        assert_eq!(
            r.drifted.iter().map(|(a, _)| a.to_string()).collect::<Vec<_>>(),
            vec!["ev/spot"],
            "{r:?}"
        );

        // Find.
        let p = spar::aws::events::RuleProvider::new();
        let found = p
            .find(&staged("ev/spot"), &json!({"name": null}))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.id, name);

        // Delete: the target before its rule (EventBridge refuses otherwise).
        let rec = Arc::new(Recorder::default());
        s.apply_recorded(|_| Ok(()), true, rec.clone()).await;
        rec.before(("ev/spot_to_queue", "delete"), ("ev/spot", "delete"));
        assert!(eb.describe_rule().name(&name).send().await.is_err());
    });
}

fn imported_program(with_rule: bool) -> impl FnOnce(&mut spar::Stack) -> spar::Result<()> {
    renamed_program(with_rule, "spar-test-evi-rule", "to-queue")
}

fn renamed_program(
    with_rule: bool,
    rule_name: &'static str,
    target_id: &'static str,
) -> impl FnOnce(&mut spar::Stack) -> spar::Result<()> {
    move |st: &mut spar::Stack| {
        let q = st.add("evi/queue", Queue::new().name("spar-test-evi-a"))?;
        st.add("evi/queue2", Queue::new().name("spar-test-evi-b"))?;
        if with_rule {
            let rule = st.add(
                "evi/rule",
                Rule::new(json!({"source": ["aws.health"], "detail-type": ["AWS Health Event"]}))
                    .name(rule_name)
                    .description("made out of band")
                    .tag("cluster", "c2"),
            )?;
            st.add("evi/target", Target::new(rule.name(), q.arn()).id(target_id))?;
        }
        Ok(())
    }
}

#[test]
fn rule_and_target_import_drift_replace() {
    run(async {
        let s = Stage::new();
        let eb = &spar::aws::context::clients().await.events;
        s.apply(imported_program(false)).await;
        let queue_a = s.outputs("evi/queue").await["arn"].as_str().unwrap().to_string();
        let queue_b = s.outputs("evi/queue2").await["arn"].as_str().unwrap().to_string();

        // A rule and its target made out of band with the SDK.
        eb.put_rule()
            .name("spar-test-evi-rule")
            .event_pattern(r#"{"source":["aws.health"],"detail-type":["AWS Health Event"]}"#)
            .description("made out of band")
            .state(aws_sdk_eventbridge::types::RuleState::Enabled)
            .tags(
                aws_sdk_eventbridge::types::Tag::builder()
                    .key("cluster")
                    .value("c2")
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        let target = |arn: &str| {
            aws_sdk_eventbridge::types::Target::builder()
                .id("to-queue")
                .arn(arn)
                .build()
                .unwrap()
        };
        eb.put_targets()
            .rule("spar-test-evi-rule")
            .targets(target(&queue_a))
            .send()
            .await
            .unwrap();

        // Import both through the providers' read; the program declaring them plans nothing.
        let session = s.session(imported_program(true));
        let rule = session
            .import("aws:events:Rule", &"evi/rule".parse().unwrap(), "spar-test-evi-rule")
            .await
            .unwrap();
        support::assert_declarable(&rule);
        assert_eq!(rule.inputs["name"], "spar-test-evi-rule");
        assert_eq!(rule.inputs["enabled"], true);
        assert_eq!(rule.inputs["tags"], json!({"cluster": "c2"}));
        assert_eq!(rule.inputs["event_pattern"]["source"], json!(["aws.health"]));
        let t = s
            .session(imported_program(true))
            .import(
                "aws:events:Target",
                &"evi/target".parse().unwrap(),
                "spar-test-evi-rule/to-queue",
            )
            .await
            .unwrap();
        support::assert_declarable(&t);
        assert_eq!(
            t.inputs,
            json!({"rule": "spar-test-evi-rule", "target_id": "to-queue", "arn": queue_a})
        );
        let plan = s.plan(imported_program(true)).await;
        assert!(
            quiet(&plan),
            "{:#?}",
            plan.changes.iter().filter(|c| c.op != Op::Same).collect::<Vec<_>>()
        );

        // Drift: the target pointed at the other queue out of band, then put back by apply.
        eb.put_targets()
            .rule("spar-test-evi-rule")
            .targets(target(&queue_b))
            .send()
            .await
            .unwrap();
        let r = s.session(imported_program(true)).refresh(4).await.unwrap();
        assert_eq!(
            r.drifted.iter().map(|(a, _)| a.to_string()).collect::<Vec<_>>(),
            vec!["evi/target"],
            "{r:?}"
        );
        assert_eq!(r.drifted[0].1[0].path.to_string(), "arn", "{r:?}");
        let plan = s.apply(imported_program(true)).await;
        assert_eq!(op(&plan, "evi/target"), Op::Update);
        let targets = eb
            .list_targets_by_rule()
            .rule("spar-test-evi-rule")
            .send()
            .await
            .unwrap();
        assert_eq!(targets.targets()[0].arn(), queue_a.as_str());

        // Drift: the target removed out of band reads as gone and is made again.
        eb.remove_targets()
            .rule("spar-test-evi-rule")
            .ids("to-queue")
            .send()
            .await
            .unwrap();
        let r = s.session(imported_program(true)).refresh(4).await.unwrap();
        assert_eq!(
            r.gone.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            vec!["evi/target"],
            "{r:?}"
        );
        let plan = s.apply(imported_program(true)).await;
        assert_eq!(op(&plan, "evi/target"), Op::Create);
        let targets = eb
            .list_targets_by_rule()
            .rule("spar-test-evi-rule")
            .send()
            .await
            .unwrap();
        assert_eq!(targets.targets().len(), 1);

        // Replace: a new target id is a new target (the old one removed).
        let plan = s.apply(renamed_program(true, "spar-test-evi-rule", "to-queue-2")).await;
        assert_eq!(op(&plan, "evi/rule"), Op::Same);
        assert_eq!(op(&plan, "evi/target"), Op::Replace);
        let ids = |t: aws_sdk_eventbridge::operation::list_targets_by_rule::ListTargetsByRuleOutput| {
            t.targets().iter().map(|t| t.id().to_string()).collect::<Vec<_>>()
        };
        let targets = eb
            .list_targets_by_rule()
            .rule("spar-test-evi-rule")
            .send()
            .await
            .unwrap();
        assert_eq!(ids(targets), ["to-queue-2"]);
        assert_eq!(s.id("evi/target").await, "spar-test-evi-rule/to-queue-2");

        // Replace: a new rule name is a new rule (the old one deleted first), and its
        // target follows it.
        let plan = s
            .apply(renamed_program(true, "spar-test-evi-rule-b", "to-queue-2"))
            .await;
        assert_eq!(op(&plan, "evi/rule"), Op::Replace);
        assert_eq!(op(&plan, "evi/target"), Op::Replace);
        assert!(eb.describe_rule().name("spar-test-evi-rule").send().await.is_err());
        let targets = eb
            .list_targets_by_rule()
            .rule("spar-test-evi-rule-b")
            .send()
            .await
            .unwrap();
        assert_eq!(ids(targets), ["to-queue-2"]);
        assert!(quiet(
            &s.plan(renamed_program(true, "spar-test-evi-rule-b", "to-queue-2"))
                .await
        ));

        s.destroy().await;
        assert!(eb.describe_rule().name("spar-test-evi-rule-b").send().await.is_err());
    });
}
