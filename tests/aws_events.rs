//! `aws:events:Rule` and `aws:events:Target` against the sandbox emulator: the
//! interruption wiring (rules to an SQS queue). Create, read back, in-place update, replace,
//! delete (targets before their rule, asserted from the steps), drift and `find`.
#![cfg(feature = "aws")]

#[path = "support/aws.rs"]
mod support;

use std::sync::Arc;

use serde_json::json;
use spar::aws::events::{Rule, Target};
use spar::aws::sqs::Queue;
use spar::plan::Op;
use spar::provider::{OpContext, ResourceProvider};
use support::{Recorder, Stage, op, quiet, run};

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
            .find(&OpContext::detached("ev/spot".parse().unwrap()), &json!({"name": null}))
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
