//! The S3 state backend against the sandbox's AWS emulator (moto): a full save/load round
//! trip, the lock (concurrent attempts, one winner, the loser names the holder), the
//! compare-and-swap on the snapshot's ETag, history from object versions, the journal
//! surviving a crash, and clear errors for a missing bucket or a bad URL.
//!
//! "Two machines" are two `S3Backend`s on the same bucket and prefix, driven from separate
//! tokio tasks of this one process: each backend keeps its own ETag and journal run, and
//! S3 (the emulator) is the only thing they share, as with two processes.
#![cfg(feature = "aws")]

#[path = "support/aws.rs"]
mod support;

use std::sync::Arc;

use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
use serde_json::json;
use spar::Stack;
use spar::apply::ExecuteOptions;
use spar::model::config::StackConfig;
use spar::ops::Session;
use spar::plan::diff::PlanOptions;
use spar::secrets::SecretKey;
use spar::state::{
    JournalEntry, LockInfo, ResourceState, S3Backend, S3Error, Snapshot, StateBackend, StateError, StateStore,
    StepKind, parse_s3_url,
};
use support::run;

async fn s3() -> &'static aws_sdk_s3::Client {
    spar::aws::context::s3_client().await
}

/// Creates `name` with versioning on (tests never share a bucket, so they run in parallel).
async fn versioned_bucket(name: &str) -> String {
    s3().await.create_bucket().bucket(name).send().await.unwrap();
    s3().await
        .put_bucket_versioning()
        .bucket(name)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap();
    name.to_string()
}

async fn backend(bucket: &str, prefix: &str) -> Arc<S3Backend> {
    Arc::new(
        S3Backend::connect(s3().await.clone(), bucket, prefix)
            .await
            .expect("the backend connects"),
    )
}

fn store(b: Arc<S3Backend>) -> StateStore {
    let key = SecretKey::from_bytes(&[7; 32], "test key".into()).unwrap();
    StateStore::new(b, key)
}

fn resource(address: &str, id: &str, inputs: serde_json::Value) -> ResourceState {
    ResourceState {
        address: address.parse().unwrap(),
        kind: "test:Thing".into(),
        id: id.into(),
        inputs,
        outputs: json!({"arn": format!("arn:test:{id}")}),
        dependencies: vec![],
        provider: "test".into(),
        options: Default::default(),
        unfinished: None,
    }
}

/// Every key under `prefix` in `bucket`.
async fn keys(bucket: &str, prefix: &str) -> Vec<String> {
    let out = s3()
        .await
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .send()
        .await
        .unwrap();
    out.contents().iter().map(|o| o.key().unwrap().to_string()).collect()
}

fn stale(e: &StateError) -> Option<&S3Error> {
    match e {
        StateError::S3(e) if matches!(**e, S3Error::StaleSnapshot { .. }) => Some(e),
        _ => None,
    }
}

#[test]
fn snapshot_round_trips_through_s3_with_secrets_sealed() {
    run(async {
        let b = versioned_bucket("spar-state-roundtrip").await;
        let st = store(backend(&b, "teams/app/dev/").await);
        assert_eq!(st.backend().describe(), "s3://spar-state-roundtrip/teams/app/dev");
        let (mut snap, replayed) = st.load().await.unwrap();
        assert!(!replayed);
        assert_eq!(snap.serial, 0);
        snap.upsert(resource(
            "net/vpc",
            "vpc-1",
            json!({"cidr": "10.0.0.0/16", "token": spar::value::secret(json!("hunter2"))}),
        ));
        snap.outputs.insert("vpc_id".into(), json!("vpc-1"));
        st.save(&mut snap).await.unwrap();
        assert_eq!(snap.serial, 1);

        assert_eq!(keys(&b, "teams/app/dev/").await, vec!["teams/app/dev/snapshot.json"]);
        let raw = s3()
            .await
            .get_object()
            .bucket(&b)
            .key("teams/app/dev/snapshot.json")
            .send()
            .await
            .unwrap();
        assert_eq!(raw.metadata().unwrap()["spar-serial"], "1");
        let raw = raw.body.collect().await.unwrap().into_bytes();
        assert!(
            !String::from_utf8_lossy(&raw).contains("hunter2"),
            "a secret reached S3 in clear"
        );

        // Another machine (a backend of its own) reads exactly what was saved.
        let other = store(backend(&b, "teams/app/dev").await);
        let (loaded, replayed) = other.load().await.unwrap();
        assert!(!replayed);
        assert_eq!(loaded, snap);
        assert!(st.backend().bytes_written() > 0);
    })
}

#[test]
fn concurrent_locks_have_exactly_one_winner_and_the_loser_names_the_holder() {
    run(async {
        let b = versioned_bucket("spar-state-lock").await;
        let one = backend(&b, "stack").await;
        let two = backend(&b, "stack").await;
        for round in 0..5 {
            let alice = LockInfo {
                holder: "alice@ci-runner-1".into(),
                operation: "apply".into(),
                ..LockInfo::for_this_process("apply")
            };
            let bob = LockInfo {
                holder: "bob@laptop".into(),
                operation: "destroy".into(),
                ..LockInfo::for_this_process("destroy")
            };
            let (b1, b2, a, c) = (one.clone(), two.clone(), alice.clone(), bob.clone());
            let t1 = tokio::spawn(async move { b1.lock(&a).await });
            let t2 = tokio::spawn(async move { b2.lock(&c).await });
            let (r1, r2) = (t1.await.unwrap(), t2.await.unwrap());
            let (winner, loser_err) = match (r1, r2) {
                (Ok(()), Err(e)) => (&alice, e),
                (Err(e), Ok(())) => (&bob, e),
                other => panic!("round {round}: expected exactly one winner, got {other:?}"),
            };
            match &loser_err {
                StateError::Locked {
                    holder: Some(h),
                    location,
                } => {
                    assert_eq!(**h, *winner);
                    assert_eq!(location, "s3://spar-state-lock/stack");
                }
                e => panic!("round {round}: the loser should be told who holds the lock: {e:?}"),
            }
            let msg = loser_err.to_string();
            assert!(msg.contains(&winner.holder), "{msg}");
            assert!(msg.contains("spar state unlock"), "{msg}");

            // Releasing with the loser's id leaves the winner's lock alone.
            let loser = if winner == &alice { &bob } else { &alice };
            one.unlock(&loser.id).await.unwrap();
            assert!(matches!(two.lock(loser).await, Err(StateError::Locked { .. })));
            // The winner releases it; the next round (a delete marker now on the key) can lock.
            two.unlock(&winner.id).await.unwrap();
            assert!(keys(&b, "stack/lock.json").await.is_empty());
        }

        // A holder that died: `state unlock` breaks its lock and says whose it was.
        let dead = LockInfo {
            holder: "carol@gone".into(),
            ..LockInfo::for_this_process("apply")
        };
        one.lock(&dead).await.unwrap();
        assert_eq!(two.force_unlock().await.unwrap(), Some(dead));
        assert_eq!(two.force_unlock().await.unwrap(), None);
        let st = store(two.clone());
        st.lock("apply").await.unwrap().release().await.unwrap();
    })
}

#[test]
fn a_second_apply_of_the_same_stack_is_refused_while_the_first_holds_the_lock() {
    run(async {
        let b = versioned_bucket("spar-state-apply").await;
        let dir = tempfile::tempdir().unwrap();
        let session = |st: StateStore| {
            let mut stack = Stack::new("s3-test", "dev", StackConfig::empty(dir.path().join("dev.toml")));
            stack.add("pw", spar::builtin::random::Password::new(16)).unwrap();
            let (graph, registry) = stack.into_graph().unwrap();
            Session {
                program: "s3-test".into(),
                stack: "dev".into(),
                graph,
                registry,
                store: st,
                lookup_checks: Vec::new(),
                waived: Vec::new(),
            }
        };
        let first = session(store(backend(&b, "s3-test/dev").await));
        let second = session(store(backend(&b, "s3-test/dev").await));
        let held = first.lock_for("apply").await.unwrap();
        let refused = second
            .apply_program(&PlanOptions::default(), &ExecuteOptions::default())
            .await;
        match refused {
            Err(spar::Error::State(StateError::Locked { holder: Some(h), .. })) => {
                assert_eq!(h.operation, "apply");
                assert_eq!(h.pid, std::process::id());
            }
            other => panic!(
                "the second apply should be refused naming the holder, got {:?}",
                other.err()
            ),
        }
        // The first applies and releases; then the second sees its state and has nothing to do.
        let plan = first.plan_locked(&held, &PlanOptions::default()).await.unwrap();
        let report = first.apply(&plan, held, &ExecuteOptions::default()).await.unwrap();
        assert!(report.succeeded());
        let (plan, _) = second
            .apply_program(&PlanOptions::default(), &ExecuteOptions::default())
            .await
            .unwrap();
        assert!(!plan.has_changes(), "{:#?}", plan.changes);
        assert!(keys(&b, "s3-test/dev/lock.json").await.is_empty());
        assert!(keys(&b, "s3-test/dev/journal/").await.is_empty());
    })
}

#[test]
fn a_write_with_a_stale_etag_is_refused() {
    run(async {
        let b = versioned_bucket("spar-state-cas").await;
        let a = store(backend(&b, "p").await);
        let c = store(backend(&b, "p").await);

        // Both saw no snapshot; the first to write wins, the other's create is refused.
        let (mut sa, _) = a.load().await.unwrap();
        let (mut sc, _) = c.load().await.unwrap();
        sa.upsert(resource("a", "id-a", json!({})));
        a.save(&mut sa).await.unwrap();
        sc.upsert(resource("c", "id-c", json!({})));
        let err = c.save(&mut sc).await.unwrap_err();
        match stale(&err) {
            Some(S3Error::StaleSnapshot {
                bucket,
                key,
                expected: None,
                found: Some(_),
            }) => {
                assert_eq!((bucket.as_str(), key.as_str()), ("spar-state-cas", "p/snapshot.json"));
            }
            _ => panic!("expected a stale-snapshot refusal, got {err:?}"),
        }
        assert!(err.to_string().contains("s3://spar-state-cas/p/snapshot.json"), "{err}");

        // Both read serial 1; the first writes serial 2; the other's If-Match is now stale.
        let (mut sa, _) = a.load().await.unwrap();
        let (mut sc, _) = c.load().await.unwrap();
        sa.upsert(resource("a2", "id-a2", json!({})));
        a.save(&mut sa).await.unwrap();
        sc.upsert(resource("c2", "id-c2", json!({})));
        let err = c.save(&mut sc).await.unwrap_err();
        assert!(
            matches!(
                stale(&err),
                Some(S3Error::StaleSnapshot {
                    expected: Some(_),
                    found: Some(_),
                    ..
                })
            ),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("another machine wrote") && msg.contains("nothing was overwritten"),
            "{msg}"
        );

        // Nothing of the refused writes reached the bucket.
        let (now, _) = store(backend(&b, "p").await).load().await.unwrap();
        assert_eq!(now.serial, 2);
        assert!(now.get(&"a2".parse().unwrap()).is_some());
        assert!(now.get(&"c".parse().unwrap()).is_none() && now.get(&"c2".parse().unwrap()).is_none());

        // Re-reading makes the loser's next write legal again.
        let (mut sc, _) = c.load().await.unwrap();
        sc.upsert(resource("c3", "id-c3", json!({})));
        c.save(&mut sc).await.unwrap();
        assert_eq!(sc.serial, 3);

        // A backend that never read the snapshot does not write it blind.
        let blind = backend(&b, "p").await;
        let err = blind.write_snapshot(b"{}", 9).await.unwrap_err();
        assert!(
            matches!(&err, StateError::S3(e) if matches!(**e, S3Error::SnapshotNotRead { .. })),
            "{err:?}"
        );
    })
}

#[test]
fn history_is_the_snapshot_versions_and_each_is_readable() {
    run(async {
        let b = versioned_bucket("spar-state-history").await;
        let st = store(backend(&b, "h").await);
        let (mut snap, _) = st.load().await.unwrap();
        assert!(st.backend().history().await.unwrap().is_empty());
        for i in 1..=3 {
            snap.upsert(resource(&format!("r{i}"), &format!("id-{i}"), json!({"n": i})));
            st.save(&mut snap).await.unwrap();
        }
        let history = st.backend().history().await.unwrap();
        let serials: Vec<u64> = history.iter().map(|h| h.serial).collect();
        assert_eq!(
            serials,
            vec![1, 2],
            "the current snapshot (3) is not history: {history:?}"
        );
        for h in &history {
            let bytes = st.backend().read_history(&h.name).await.unwrap();
            assert_eq!(bytes.len() as u64, h.bytes);
            let old = Snapshot::decode(&bytes, &h.name).unwrap();
            assert_eq!(old.serial, h.serial);
            assert_eq!(old.resources.len() as u64, h.serial);
        }
        let err = st.backend().read_history("no-such-version").await.unwrap_err();
        assert!(
            err.to_string().contains("s3://spar-state-history/h/snapshot.json"),
            "{err}"
        );
    })
}

fn begin(seq: u64, address: &str) -> JournalEntry {
    JournalEntry::Begin {
        seq,
        step: StepKind::Create,
        address: address.parse().unwrap(),
        kind: "test:Thing".into(),
        id: None,
        inputs: json!({"n": seq}),
        dependencies: vec![],
        provider: "test".into(),
        options: Default::default(),
        started: "now".into(),
    }
}

#[test]
fn journal_objects_survive_a_crash_and_replay_on_the_next_load() {
    run(async {
        let b = versioned_bucket("spar-state-journal").await;
        let st = store(backend(&b, "j").await);
        let (mut snap, _) = st.load().await.unwrap();
        snap.upsert(resource("base", "id-base", json!({})));
        st.save(&mut snap).await.unwrap();

        // A run that dies after two creates began and one finished: no save, no clear.
        {
            let journal = st.journal(&snap).await.unwrap();
            journal.append(&begin(1, "made")).await.unwrap();
            journal.append(&begin(2, "interrupted")).await.unwrap();
            journal
                .append_queued(&JournalEntry::Done {
                    seq: 1,
                    id: Some("id-made".into()),
                    outputs: Some(json!({"arn": "arn:made"})),
                })
                .unwrap();
            journal.flush().await.unwrap();
        }
        let objects = keys(&b, "j/journal/").await;
        assert!(objects.len() >= 3, "header plus one object per batch: {objects:?}");
        let run_id = objects[0].split('/').nth(2).unwrap().to_string();
        assert!(
            objects.iter().all(|k| k.split('/').nth(2) == Some(run_id.as_str())),
            "{objects:?}"
        );
        assert!(objects[0].ends_with("/0000000000.jsonl"), "{objects:?}");
        // The remains of an older run whose delete was interrupted (no header): ignored.
        s3().await
            .put_object()
            .bucket(&b)
            .key("j/journal/0000000000001-deadbeef/0000000007.jsonl")
            .body(b"not json\n{\"entry\":\"begin\"}\n".to_vec().into())
            .send()
            .await
            .unwrap();

        // The next process loads: the journal is replayed in memory; nothing is written.
        let next = store(backend(&b, "j").await);
        let (mut loaded, replayed) = next.load().await.unwrap();
        assert!(replayed);
        assert_eq!(loaded.serial, 1);
        assert_eq!(loaded.get(&"made".parse().unwrap()).unwrap().id, "id-made");
        assert!(loaded.get(&"base".parse().unwrap()).is_some());
        assert_eq!(loaded.pending.len(), 1);
        assert_eq!(loaded.pending[0].address.as_str(), "interrupted");
        assert_eq!(keys(&b, "j/journal/").await.len(), objects.len() + 1);

        // Folding it into a snapshot (compaction) deletes every journal object.
        next.save(&mut loaded).await.unwrap();
        assert!(keys(&b, "j/journal/").await.is_empty());
        let (after, replayed) = store(backend(&b, "j").await).load().await.unwrap();
        assert!(!replayed);
        assert_eq!(after.serial, 2);
        assert_eq!(after.pending.len(), 1);

        // A new journal replaces an old one: only the newest run remains.
        let j1 = next.journal(&after).await.unwrap();
        j1.append(&begin(1, "x")).await.unwrap();
        drop(j1);
        let j2 = next.journal(&after).await.unwrap();
        j2.append(&begin(1, "y")).await.unwrap();
        let objects = keys(&b, "j/journal/").await;
        assert_eq!(objects.len(), 2, "{objects:?}");
        let (again, replayed) = store(backend(&b, "j").await).load().await.unwrap();
        assert!(replayed);
        let pending: Vec<&str> = again.pending.iter().map(|p| p.address.as_str()).collect();
        assert!(pending.contains(&"y") && !pending.contains(&"x"), "{pending:?}");
    })
}

#[test]
fn a_missing_or_unversioned_bucket_is_a_clear_error() {
    run(async {
        let err = S3Backend::connect(s3().await.clone(), "spar-no-such-bucket", "x")
            .await
            .err()
            .unwrap();
        assert!(
            matches!(&err, S3Error::NoSuchBucket { bucket, .. } if bucket == "spar-no-such-bucket"),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains("`spar-no-such-bucket` does not exist"), "{msg}");
        let err = S3Backend::from_url(s3().await.clone(), "s3://spar-no-such-bucket/a/b")
            .await
            .err()
            .unwrap();
        assert!(matches!(err, S3Error::NoSuchBucket { .. }), "{err:?}");

        // A bucket deleted under a running backend: the call names it too.
        let b = versioned_bucket("spar-state-vanishing").await;
        let st = store(backend(&b, "v").await);
        s3().await.delete_bucket().bucket(&b).send().await.unwrap();
        let err = st.load().await.unwrap_err();
        assert!(
            err.to_string().contains("`spar-state-vanishing` does not exist"),
            "{err}"
        );

        s3().await
            .create_bucket()
            .bucket("spar-state-unversioned")
            .send()
            .await
            .unwrap();
        let err = S3Backend::connect(s3().await.clone(), "spar-state-unversioned", "x")
            .await
            .err()
            .unwrap();
        assert!(matches!(err, S3Error::NotVersioned { .. }), "{err:?}");
        assert!(err.to_string().contains("put-bucket-versioning"), "{err}");
    })
}

#[test]
fn s3_urls_parse_into_bucket_and_prefix_or_say_what_is_wrong() {
    let ok = |u: &str| parse_s3_url(u).unwrap();
    assert_eq!(ok("s3://my-bucket/teams/app"), ("my-bucket".into(), "teams/app".into()));
    assert_eq!(
        ok("s3://my-bucket/teams/app/"),
        ("my-bucket".into(), "teams/app".into())
    );
    assert_eq!(ok("s3://my.bucket.1"), ("my.bucket.1".into(), String::new()));
    assert_eq!(ok("s3://my-bucket/"), ("my-bucket".into(), String::new()));
    let bad = |u: &str, why: &str| {
        let e = parse_s3_url(u).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, S3Error::BadUrl { .. }), "{e:?}");
        assert!(msg.contains(why) && msg.contains(u), "{u}: {msg}");
    };
    bad("my-bucket/prefix", "does not start with s3://");
    bad("https://my-bucket/prefix", "does not start with s3://");
    bad("s3://", "bucket name is missing");
    bad("s3:///prefix", "bucket name is missing");
    bad("s3://My_Bucket/p", "lowercase letters, digits");
    bad("s3://ab/p", "3 to 63 characters");
    bad("s3://-bucket/p", "begin and end with a letter or digit");
    bad("s3://bucket/a//b", "empty segment");
    bad("s3://bucket/a/../b", "`..` segment");
    bad("s3://bucket/a?versionId=1", "query or fragment");
}

#[test]
fn state_pull_and_push_through_s3() {
    run(async {
        let b = versioned_bucket("spar-state-push").await;
        let dir = tempfile::tempdir().unwrap();
        let session = |st: StateStore, length: u32| {
            let mut stack = Stack::new("s3-test", "dev", StackConfig::empty(dir.path().join("dev.toml")));
            stack.add("pw", spar::builtin::random::Password::new(length)).unwrap();
            let (graph, registry) = stack.into_graph().unwrap();
            Session {
                program: "s3-test".into(),
                stack: "dev".into(),
                graph,
                registry,
                store: st,
                lookup_checks: Vec::new(),
                waived: Vec::new(),
            }
        };
        let s = session(store(backend(&b, "push/dev").await), 16);
        s.apply_program(&PlanOptions::default(), &ExecuteOptions::default())
            .await
            .unwrap();
        // pull: the object's bytes, secrets sealed.
        let pulled = s.state_pull().await.unwrap();
        let raw = s3()
            .await
            .get_object()
            .bucket(&b)
            .key("push/dev/snapshot.json")
            .send()
            .await
            .unwrap()
            .body
            .collect()
            .await
            .unwrap()
            .into_bytes();
        assert_eq!(pulled, raw.to_vec());
        let password = s.state_show(&"pw".parse().unwrap()).await.unwrap();
        assert_eq!(password["outputs"]["result"], "(sensitive value)");
        let at_1 = dir.path().join("at-1.json");
        std::fs::write(&at_1, &pulled).unwrap();

        // The state moves on (a longer password: a replacement), then the old copy is refused.
        let s2 = session(store(backend(&b, "push/dev").await), 20);
        s2.apply_program(&PlanOptions::default(), &ExecuteOptions::default())
            .await
            .unwrap();
        let err = s2.state_push(&at_1, false).await.unwrap_err().to_string();
        assert!(
            err.contains("is serial 1, not newer than the stack's serial 2"),
            "{err}"
        );
        // Forced, it becomes serial 3 with the old content, and is a new object version.
        assert_eq!(s2.state_push(&at_1, true).await.unwrap(), (2, 3));
        let (snap, _) = s2.store.load().await.unwrap();
        assert_eq!(snap.serial, 3);
        assert_eq!(snap.get(&"pw".parse().unwrap()).unwrap().inputs["length"], json!(16));
        assert!(keys(&b, "push/dev/lock.json").await.is_empty(), "the lock is released");
        // The versions it replaced stay in the bucket's history.
        let history: Vec<u64> = s2.state_history().await.unwrap().iter().map(|h| h.serial).collect();
        assert_eq!(history, [1, 2]);
    })
}
