//! spar's AWS retries against the sandbox emulator, with faults injected into it
//! (`/sandbox-api/faults`), so every error below goes through the real SDK's wire parsing:
//! throttled creates succeed on a later attempt without making duplicates, and each retry
//! is reported naming the call, AWS's code and message; EKS's "role cannot be assumed yet"
//! is waited out but any other InvalidParameterException is not; a refusal fails at once
//! with the call, code and message; a call throttled every time gives up within its budget
//! (the user's timeout) with AWS's last error. (`call` itself, with constructed errors: the
//! unit tests in `src/aws/call.rs`.)
//!
//! Fault rules are global to the emulator, so these tests take turns ([`exclusive`]).
#![cfg(feature = "aws")]

#[path = "support/aws.rs"]
mod support;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::json;
use spar::ResourceOptions;
use spar::apply::{ApplyReport, ExecuteOptions};
use spar::aws::ec2::{Subnet, Vpc};
use spar::aws::eks::Cluster;
use spar::aws::events::Rule;
use spar::aws::iam::{PolicyDocument, Role, RolePolicyAttachment, Statement};
use spar::aws::sqs::Queue;
use spar::plan::diff::PlanOptions;
use support::{Recorder, Stage, clear_faults, ec2, faults, iam, inject_faults, run};

/// Holds the emulator's fault rules for one test, cleared at its start and end.
struct Exclusive(#[allow(dead_code)] MutexGuard<'static, ()>);

impl Drop for Exclusive {
    fn drop(&mut self) {
        clear_faults();
    }
}

fn exclusive() -> Exclusive {
    static TURN: Mutex<()> = Mutex::new(());
    let guard = TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    clear_faults();
    Exclusive(guard)
}

/// Applies (or destroys) `define`, successful or not, recording steps and progress.
async fn try_apply_recorded(
    s: &Stage,
    define: impl FnOnce(&mut spar::Stack) -> spar::Result<()>,
    destroy: bool,
) -> (ApplyReport, Arc<Recorder>) {
    let rec = Arc::new(Recorder::default());
    let opts = PlanOptions {
        destroy,
        ..Default::default()
    };
    let exec = ExecuteOptions {
        events: rec.clone(),
        ..Default::default()
    };
    let (_, report) = s.session(define).apply_program(&opts, &exec).await.expect("apply runs");
    (report, rec)
}

/// The "retrying ..." progress lines reported for `address`.
fn retries(rec: &Recorder, address: &str) -> Vec<String> {
    rec.progress
        .lock()
        .unwrap()
        .iter()
        .filter(|(a, m)| a == address && m.starts_with("retrying"))
        .map(|(_, m)| m.clone())
        .collect()
}

/// The failure message of the step at `address`.
fn failure(report: &ApplyReport, address: &str) -> String {
    report
        .failures()
        .find(|(a, _)| a.to_string() == address)
        .map(|(_, m)| m.to_string())
        .unwrap_or_else(|| panic!("{address} did not fail: {:#?}", report.outcomes))
}

/// (fired, remaining) of the only injected rule.
fn spent() -> (u64, u64) {
    let rules = faults();
    assert_eq!(rules.len(), 1, "{rules:#?}");
    (
        rules[0]["fired"].as_u64().unwrap(),
        rules[0]["remaining"].as_u64().unwrap(),
    )
}

/// The ids of the VPCs spar's stages made at `address`.
async fn vpcs_at(address: &str) -> Vec<String> {
    let filter = |k: &str, v: &str| {
        aws_sdk_ec2::types::Filter::builder()
            .name(format!("tag:{k}"))
            .values(v)
            .build()
    };
    let out = ec2()
        .await
        .describe_vpcs()
        .filters(filter("spar:address", address))
        .filters(filter("spar:stack", support::STACK))
        .send()
        .await
        .unwrap();
    out.vpcs()
        .iter()
        .map(|v| v.vpc_id().unwrap_or_default().to_string())
        .collect()
}

const THROTTLED: &str = "Request limit exceeded.";

#[test]
fn throttled_create_vpc_succeeds_on_the_third_attempt_without_a_duplicate() {
    let _turn = exclusive();
    run(async {
        let s = Stage::new();
        let program = |st: &mut spar::Stack| {
            st.add("retry/vpc_throttled", Vpc::new("10.70.0.0/16"))?;
            Ok(())
        };
        inject_faults(
            json!([{"service": "ec2", "action": "CreateVpc", "code": "RequestLimitExceeded",
            "message": THROTTLED, "status": 503, "count": 2}]),
        );
        let (report, rec) = try_apply_recorded(&s, program, false).await;
        assert!(report.succeeded(), "{:#?}", report.outcomes);
        assert_eq!(
            retries(&rec, "retry/vpc_throttled"),
            vec![format!("retrying CreateVpc: RequestLimitExceeded: {THROTTLED}"); 2]
        );
        assert_eq!(spent(), (2, 0));
        let id = s.id("retry/vpc_throttled").await;
        assert_eq!(vpcs_at("retry/vpc_throttled").await, [id]);
        s.destroy().await;
        assert!(vpcs_at("retry/vpc_throttled").await.is_empty());
    });
}

#[test]
fn iam_throttling_on_create_role_is_retried() {
    let _turn = exclusive();
    run(async {
        let s = Stage::new();
        let program = |st: &mut spar::Stack| {
            st.add(
                "retry/role",
                Role::new(PolicyDocument::new(vec![
                    Statement::allow(&["sts:AssumeRole"]).principal("Service", "ec2.amazonaws.com"),
                ])),
            )?;
            Ok(())
        };
        inject_faults(json!([{"service": "iam", "action": "CreateRole", "code": "Throttling",
            "message": "Rate exceeded", "status": 400, "count": 2}]));
        let (report, rec) = try_apply_recorded(&s, program, false).await;
        assert!(report.succeeded(), "{:#?}", report.outcomes);
        assert_eq!(
            retries(&rec, "retry/role"),
            ["retrying CreateRole: Throttling: Rate exceeded"; 2]
        );
        assert_eq!(spent(), (2, 0));
        let name = s.id("retry/role").await;
        let role = iam().await.get_role().role_name(&name).send().await.unwrap();
        assert_eq!(role.role().map(|r| r.role_name()), Some(name.as_str()));
        s.destroy().await;
    });
}

/// A VPC with two subnets, a cluster role and a cluster, all under `prefix/`.
fn eks_program(prefix: &'static str, cidr: u8) -> impl FnOnce(&mut spar::Stack) -> spar::Result<()> {
    move |st: &mut spar::Stack| {
        let at = |name: &str| format!("{prefix}/{name}");
        let vpc = st.add(&at("vpc"), Vpc::new(format!("10.{cidr}.0.0/16")))?;
        let a = st.add(
            &at("subnet_a"),
            Subnet::new(vpc.vpc_id(), format!("10.{cidr}.0.0/20")).az("us-east-1a"),
        )?;
        let b = st.add(
            &at("subnet_b"),
            Subnet::new(vpc.vpc_id(), format!("10.{cidr}.16.0/20")).az("us-east-1b"),
        )?;
        let role = st.add(
            &at("role"),
            Role::new(PolicyDocument::new(vec![
                Statement::allow(&["sts:AssumeRole", "sts:TagSession"]).principal("Service", "eks.amazonaws.com"),
            ])),
        )?;
        st.add(
            &at("policy"),
            RolePolicyAttachment::aws_managed(role.name(), "AmazonEKSClusterPolicy"),
        )?;
        st.add(
            &at("cluster"),
            Cluster::new(role.arn(), vec![a.subnet_id().into(), b.subnet_id().into()]),
        )?;
        Ok(())
    }
}

const NOT_ASSUMABLE: &str = "Role with arn: arn:aws:iam::123456789012:role/just-made could not be assumed \
    because it does not exist or the trusted entities is not correct";

#[test]
fn eks_create_cluster_waits_for_a_role_eks_cannot_assume_yet() {
    let _turn = exclusive();
    run(async {
        let s = Stage::new();
        inject_faults(json!([{"service": "eks", "action": "CreateCluster",
            "code": "InvalidParameterException", "message": NOT_ASSUMABLE, "count": 2}]));
        let (report, rec) = try_apply_recorded(&s, eks_program("retry_eks", 71), false).await;
        assert!(report.succeeded(), "{:#?}", report.outcomes);
        assert_eq!(
            retries(&rec, "retry_eks/cluster"),
            vec![format!("retrying CreateCluster: InvalidParameterException: {NOT_ASSUMABLE}"); 2]
        );
        assert_eq!(spent(), (2, 0));
        let name = s.id("retry_eks/cluster").await;
        let eks = &spar::aws::context::clients().await.eks;
        let c = eks.describe_cluster().name(&name).send().await.unwrap();
        assert_eq!(c.cluster().and_then(|c| c.name()), Some(name.as_str()));
        s.destroy().await;
    });
}

#[test]
fn eks_create_cluster_with_bad_input_fails_at_once() {
    let _turn = exclusive();
    run(async {
        let s = Stage::new();
        let bad = "Subnets specified must be in at least two different AZs";
        // One failing call: a retry would succeed, so only failing proves there was none.
        inject_faults(json!([{"service": "eks", "action": "CreateCluster",
            "code": "InvalidParameterException", "message": bad, "count": 1}]));
        let eks = &spar::aws::context::clients().await.eks;
        let clusters = || async { eks.list_clusters().send().await.unwrap().clusters().to_vec() };
        let before = clusters().await;
        let started = Instant::now();
        let (report, rec) = try_apply_recorded(&s, eks_program("retry_eks_bad", 72), false).await;
        let msg = failure(&report, "retry_eks_bad/cluster");
        assert!(
            msg.contains(&format!("CreateCluster: InvalidParameterException: {bad}")),
            "{msg}"
        );
        assert_eq!(report.failures().count(), 1, "{:#?}", report.outcomes);
        assert!(retries(&rec, "retry_eks_bad/cluster").is_empty(), "{:?}", rec.progress);
        assert_eq!(spent(), (1, 0));
        assert!(started.elapsed() < Duration::from_secs(15), "{:?}", started.elapsed());
        assert_eq!(clusters().await, before, "no cluster was made");
        s.destroy().await;
    });
}

#[test]
fn a_refused_create_fails_at_once_naming_call_code_and_message() {
    let _turn = exclusive();
    run(async {
        let s = Stage::new();
        let refused = "You are not authorized to perform this operation.";
        inject_faults(
            json!([{"service": "ec2", "action": "CreateVpc", "code": "UnauthorizedOperation",
            "message": refused, "status": 403, "count": 1}]),
        );
        let program = |st: &mut spar::Stack| {
            st.add("retry/vpc_refused", Vpc::new("10.73.0.0/16"))?;
            Ok(())
        };
        let (report, rec) = try_apply_recorded(&s, program, false).await;
        let msg = failure(&report, "retry/vpc_refused");
        assert!(
            msg.contains(&format!("CreateVpc: UnauthorizedOperation: {refused}")),
            "{msg}"
        );
        assert!(retries(&rec, "retry/vpc_refused").is_empty(), "{:?}", rec.progress);
        assert_eq!(spent(), (1, 0));
        assert!(vpcs_at("retry/vpc_refused").await.is_empty());
        // Nothing was made, nothing is in state: the next apply creates it.
        let (report, _) = try_apply_recorded(&s, program, false).await;
        assert!(report.succeeded(), "{:#?}", report.outcomes);
        assert_eq!(vpcs_at("retry/vpc_refused").await.len(), 1);
        s.destroy().await;
    });
}

#[test]
fn a_call_throttled_every_time_gives_up_within_the_users_timeout() {
    let _turn = exclusive();
    run(async {
        let s = Stage::new();
        let timeout = Duration::from_secs(3);
        let program = move |st: &mut spar::Stack| {
            st.add_with(
                "retry/vpc_budget",
                Vpc::new("10.74.0.0/16"),
                ResourceOptions::new().delete_timeout(timeout),
            )?;
            Ok(())
        };
        s.apply(program).await;
        let id = s.id("retry/vpc_budget").await;
        // DeleteVpc retries DependencyViolation for the user's delete timeout (else 300 s);
        // throttling is retried within the same budget.
        inject_faults(
            json!([{"service": "ec2", "action": "DeleteVpc", "code": "RequestLimitExceeded",
            "message": THROTTLED, "status": 503, "count": 1000}]),
        );
        let started = Instant::now();
        let (report, rec) = try_apply_recorded(&s, |_| Ok(()), true).await;
        let elapsed = started.elapsed();
        // The kind's own error (AWS's last answer), not the engine's timeout.
        let msg = failure(&report, "retry/vpc_budget");
        assert!(
            msg.contains(&format!("DeleteVpc: RequestLimitExceeded: {THROTTLED}")),
            "{msg}"
        );
        assert!(!msg.contains("timed out"), "{msg}");
        assert!(elapsed < timeout + Duration::from_secs(1), "gave up after {elapsed:?}");
        // Waits of 0.2, 0.4, 0.8, 1.6 s (jittered down to half at most): it kept trying for
        // more than a second before the next wait would overrun the 3 s.
        assert!(elapsed > Duration::from_secs(1), "gave up after {elapsed:?}");
        let lines = retries(&rec, "retry/vpc_budget");
        let (fired, _) = spent();
        assert!(lines.len() >= 3, "{lines:?}");
        assert_eq!(
            lines.len() as u64,
            fired - 1,
            "one retry reported per attempt after the first"
        );
        assert!(
            lines
                .iter()
                .all(|l| *l == format!("retrying DeleteVpc: RequestLimitExceeded: {THROTTLED}")),
            "{lines:?}"
        );
        assert_eq!(vpcs_at("retry/vpc_budget").await, [id]);
        clear_faults();
        s.destroy().await;
        assert!(vpcs_at("retry/vpc_budget").await.is_empty());
    });
}

#[test]
fn sqs_and_eventbridge_throttling_is_retried() {
    let _turn = exclusive();
    run(async {
        let s = Stage::new();
        let program = |st: &mut spar::Stack| {
            st.add("retry/queue", Queue::new().name("spar-test-retry-q"))?;
            st.add("retry/rule", Rule::new(json!({"source": ["aws.ec2"]})))?;
            Ok(())
        };
        // SQS speaks awsJson1_0 here: the code travels in x-amzn-query-error.
        inject_faults(json!([
            {"service": "sqs", "action": "CreateQueue", "code": "RequestThrottled",
             "message": "Request is throttled.", "count": 1},
            {"service": "events", "action": "PutRule", "code": "ThrottlingException",
             "message": "Rate exceeded", "count": 1},
        ]));
        let (report, rec) = try_apply_recorded(&s, program, false).await;
        assert!(report.succeeded(), "{:#?}", report.outcomes);
        assert_eq!(
            retries(&rec, "retry/queue"),
            ["retrying CreateQueue: RequestThrottled: Request is throttled."]
        );
        assert_eq!(
            retries(&rec, "retry/rule"),
            ["retrying PutRule: ThrottlingException: Rate exceeded"]
        );
        let fired: Vec<u64> = faults().iter().map(|r| r["fired"].as_u64().unwrap()).collect();
        assert_eq!(fired, [1, 1]);
        assert!(s.id("retry/queue").await.ends_with("/spar-test-retry-q"));
        s.destroy().await;
    });
}
