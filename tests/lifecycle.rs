//! Lifecycle tests: the engine's specification, written against the fake provider.
//!
//! Each test declares a program as a closure, applies it, changes it, and checks the plan,
//! the calls the provider saw (and their order) and the state.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::Harness;
use serde_json::json;
use spar::apply::{ExecuteOptions, StepStatus};
use spar::plan::Op;
use spar::plan::diff::PlanOptions;
use spar::provider::{ProviderError, Schema};
use spar::state::StateError;
use spar::testing::{Call, FakeProvider, FakeResource, FakeWorld};
use spar::{Error, ResourceOptions};

fn ops(plan: &spar::plan::Plan) -> Vec<(String, Op)> {
    plan.changes.iter().map(|c| (c.address.to_string(), c.op)).collect()
}

fn call<'a>(calls: &'a [Call], op: &str, address: &str) -> &'a Call {
    calls
        .iter()
        .find(|c| c.op == op && c.address.as_str() == address)
        .unwrap_or_else(|| panic!("no {op} of {address} in {calls:#?}"))
}

fn count(calls: &[Call], op: &str) -> usize {
    calls.iter().filter(|c| c.op == op).count()
}

#[tokio::test]
async fn every_op_create_same_update_replace_delete() {
    let h = Harness::new();
    let (plan, report) = h
        .apply(|s, p| {
            s.add("a", FakeResource::new(p).set("name", "a").set("size", 1))?;
            s.add("b", FakeResource::new(p).set("name", "b"))?;
            s.add("c", FakeResource::new(p).set("name", "c"))?;
            Ok(())
        })
        .await;
    assert_eq!(plan.summary().create, 3);
    assert!(report.succeeded());
    assert_eq!(h.world.objects().len(), 3);

    // a: update (size), b: replace (name forces it), c: delete, d: create.
    let plan = h
        .plan(|s, p| {
            s.add("a", FakeResource::new(p).set("name", "a").set("size", 2))?;
            s.add("b", FakeResource::new(p).set("name", "b2"))?;
            s.add("d", FakeResource::new(p).set("name", "d"))?;
            Ok(())
        })
        .await;
    assert_eq!(
        ops(&plan),
        vec![
            ("a".into(), Op::Update),
            ("b".into(), Op::Replace),
            ("d".into(), Op::Create),
            ("c".into(), Op::Delete)
        ]
    );
    let b = plan.get(&"b".parse().unwrap()).unwrap();
    assert_eq!(b.replace_paths[0].to_string(), "name");
    let text = spar::plan::render::text(&plan, spar::plan::render::Style { color: false });
    assert!(
        text.contains("Plan: 1 to create, 1 to update, 1 to replace, 1 to delete."),
        "{text}"
    );
    assert!(text.contains("# forces replacement"), "{text}");

    h.world.clear_calls();
    let (_, report) = h
        .apply(|s, p| {
            s.add("a", FakeResource::new(p).set("name", "a").set("size", 2))?;
            s.add("b", FakeResource::new(p).set("name", "b2"))?;
            s.add("d", FakeResource::new(p).set("name", "d"))?;
            Ok(())
        })
        .await;
    assert!(report.succeeded(), "{report:?}");
    let calls = h.world.calls();
    assert_eq!(
        (
            count(&calls, "create"),
            count(&calls, "update"),
            count(&calls, "delete")
        ),
        (2, 1, 2)
    );
    let mut names: Vec<String> = h
        .world
        .objects()
        .iter()
        .map(|o| o.inputs["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["a", "b2", "d"]);

    let plan = h
        .plan(|s, p| {
            s.add("a", FakeResource::new(p).set("name", "a").set("size", 2))?;
            s.add("b", FakeResource::new(p).set("name", "b2"))?;
            s.add("d", FakeResource::new(p).set("name", "d"))?;
            Ok(())
        })
        .await;
    assert!(!plan.has_changes(), "{:?}", ops(&plan));
}

fn chain(s: &mut spar::Stack, p: &Arc<FakeProvider>) -> spar::Result<()> {
    let a = s.add("a", FakeResource::new(p).set("name", "a"))?;
    let b = s.add(
        "b",
        FakeResource::new(p).set("name", "b").set_output("parent", &a.arn()),
    )?;
    s.add(
        "c",
        FakeResource::new(p).set("name", "c").set_output("parent", &b.arn()),
    )?;
    s.add("x", FakeResource::new(p).set("name", "x"))?;
    Ok(())
}

#[tokio::test]
async fn nothing_starts_before_its_dependencies_and_deletes_run_in_reverse() {
    let world = FakeWorld::new();
    let h = Harness::with_provider(
        FakeProvider::new("fake:Thing", world.clone()).latency(Duration::from_millis(20)),
        world,
    );
    let (plan, report) = h.apply(chain).await;
    assert!(report.succeeded());
    // Unknown until apply: b's parent is a's ARN.
    let b = plan.get(&"b".parse().unwrap()).unwrap();
    assert_eq!(b.after.as_ref().unwrap()["parent"], spar::value::unknown());
    let text = spar::plan::render::text(&plan, spar::plan::render::Style { color: false });
    assert!(text.contains("parent: (known after apply)"), "{text}");
    let calls = h.world.calls();
    let (a, b, c, x) = (
        call(&calls, "create", "a"),
        call(&calls, "create", "b"),
        call(&calls, "create", "c"),
        call(&calls, "create", "x"),
    );
    assert!(a.end < b.start && b.end < c.start, "{calls:#?}");
    // x is independent: it ran alongside a.
    assert!(x.start < a.end && a.start < x.end, "x should overlap a: {calls:#?}");
    // The real ARN reached b.
    let b_obj = &h.world.object_at("b")[0];
    assert_eq!(
        b_obj.inputs["parent"],
        json!(format!("arn:fake:fake:Thing:{}", h.world.object_at("a")[0].id))
    );

    h.world.clear_calls();
    let (plan, report) = h.destroy().await;
    assert_eq!(plan.summary().delete, 4);
    assert!(report.succeeded());
    let calls = h.world.calls();
    let (a, b, c) = (
        call(&calls, "delete", "a"),
        call(&calls, "delete", "b"),
        call(&calls, "delete", "c"),
    );
    assert!(
        c.end < b.start && b.end < a.start,
        "deletes must run dependents first: {calls:#?}"
    );
    assert!(h.world.objects().is_empty());
    assert!(h.snapshot().await.resources.is_empty());
}

#[tokio::test]
async fn parallelism_bounds_the_calls_in_flight() {
    let world = FakeWorld::new();
    let h = Harness::with_provider(
        FakeProvider::new("fake:Thing", world.clone()).latency(Duration::from_millis(30)),
        world,
    );
    let program = |s: &mut spar::Stack, p: &Arc<FakeProvider>| {
        for i in 0..10 {
            s.add(&format!("r{i}"), FakeResource::new(p).set("name", format!("r{i}")))?;
        }
        Ok(())
    };
    let exec = ExecuteOptions {
        parallelism: 3,
        ..Default::default()
    };
    let (_, report) = h.apply_with(program, &PlanOptions::default(), &exec).await;
    assert!(report.succeeded());
    let calls = h.world.calls();
    let in_flight_at = |t: u64| calls.iter().filter(|c| c.start <= t && t < c.end).count();
    let most = calls.iter().map(|c| in_flight_at(c.start)).max().unwrap();
    assert_eq!(most, 3, "ten independent creates, at most three at a time: {calls:#?}");
}

#[tokio::test]
async fn create_before_delete_replacement_updates_dependents_in_between() {
    let h = Harness::new();
    let program = |name: &'static str| {
        move |s: &mut spar::Stack, p: &Arc<FakeProvider>| {
            let a = s.add("a", FakeResource::new(p).set("name", name))?;
            s.add(
                "b",
                FakeResource::new(p).set("name", "b").set_output("parent", &a.arn()),
            )?;
            Ok(())
        }
    };
    h.apply(program("one")).await;
    let old_a = h.world.object_at("a")[0].id.clone();
    h.world.clear_calls();
    let plan = h.plan(program("two")).await;
    assert_eq!(ops(&plan), vec![("a".into(), Op::Replace), ("b".into(), Op::Update)]);
    let (_, report) = h.apply(program("two")).await;
    assert!(report.succeeded(), "{report:?}");
    let calls = h.world.calls();
    let create_a = call(&calls, "create", "a");
    let update_b = call(&calls, "update", "b");
    let delete_a = call(&calls, "delete", "a");
    assert!(
        create_a.end < update_b.start && update_b.end < delete_a.start,
        "{calls:#?}"
    );
    assert_eq!(delete_a.id.as_deref(), Some(old_a.as_str()));
    let new_a = &h.world.object_at("a")[0];
    assert_eq!(
        h.world.object_at("b")[0].inputs["parent"],
        json!(format!("arn:fake:fake:Thing:{}", new_a.id))
    );
    assert!(h.snapshot().await.deposed.is_empty());
}

#[tokio::test]
async fn delete_before_replace_deletes_first_when_asked() {
    let h = Harness::new();
    let program = |name: &'static str| {
        move |s: &mut spar::Stack, p: &Arc<FakeProvider>| {
            s.add_with(
                "a",
                FakeResource::new(p).set("name", name),
                ResourceOptions::new().delete_before_replace(true),
            )?;
            Ok(())
        }
    };
    h.apply(program("one")).await;
    h.world.clear_calls();
    let (plan, report) = h.apply(program("two")).await;
    assert!(plan.changes[0].delete_before_replace);
    assert!(report.succeeded());
    let calls = h.world.calls();
    assert!(
        call(&calls, "delete", "a").end < call(&calls, "create", "a").start,
        "{calls:#?}"
    );
    assert_eq!(h.world.objects().len(), 1);
}

#[tokio::test]
async fn a_failure_skips_only_its_dependents_and_every_failure_is_reported() {
    let world = FakeWorld::new();
    let provider = FakeProvider::new("fake:Thing", world.clone()).on_create(|a, _| {
        if a.as_str() == "a" || a.as_str() == "y" {
            Err(ProviderError::msg(format!("quota exceeded for {a}")))
        } else {
            Ok(())
        }
    });
    let h = Harness::with_provider(provider, world);
    let (_, report) = h
        .apply(|s, p| {
            chain(s, p)?;
            s.add("y", FakeResource::new(p).set("name", "y"))?;
            Ok(())
        })
        .await;
    assert!(!report.succeeded());
    let failures: Vec<(String, String)> = report.failures().map(|(a, m)| (a.to_string(), m.to_string())).collect();
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert!(
        failures
            .iter()
            .any(|(a, m)| a == "a" && m.contains("quota exceeded for a"))
    );
    assert!(failures.iter().any(|(a, _)| a == "y"));
    let status = |addr: &str| {
        report
            .outcomes
            .iter()
            .find(|o| o.address.as_str() == addr)
            .unwrap()
            .status
            .clone()
    };
    assert_eq!(
        status("b"),
        StepStatus::Skipped {
            because: "a".parse().unwrap()
        }
    );
    assert_eq!(
        status("c"),
        StepStatus::Skipped {
            because: "a".parse().unwrap()
        }
    );
    assert_eq!(status("x"), StepStatus::Done);
    let snap = h.snapshot().await;
    assert_eq!(snap.resources.keys().map(|a| a.to_string()).collect::<Vec<_>>(), ["x"]);
    assert!(snap.pending.is_empty());
}

#[tokio::test]
async fn protect_refuses_delete_and_replace() {
    let h = Harness::new();
    h.apply(|s, p| {
        s.add_with(
            "db",
            FakeResource::new(p).set("name", "db"),
            ResourceOptions::new().protect(),
        )?;
        Ok(())
    })
    .await;
    let err = h
        .session(|_, _| Ok(()))
        .unwrap()
        .plan(&PlanOptions::default(), false)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("`db` is protected"), "{err}");
    let err = h
        .session(|s, p| {
            s.add_with(
                "db",
                FakeResource::new(p).set("name", "db2"),
                ResourceOptions::new().protect(),
            )?;
            Ok(())
        })
        .unwrap()
        .plan(&PlanOptions::default(), false)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("would replace it"), "{err}");
    let destroy = PlanOptions {
        destroy: true,
        ..Default::default()
    };
    assert!(h.session(|_, _| Ok(())).unwrap().plan(&destroy, false).await.is_err());
    assert_eq!(h.world.objects().len(), 1);
}

#[tokio::test]
async fn retain_on_delete_forgets_without_deleting() {
    let h = Harness::new();
    h.apply(|s, p| {
        s.add_with(
            "keep",
            FakeResource::new(p).set("name", "k"),
            ResourceOptions::new().retain_on_delete(),
        )?;
        Ok(())
    })
    .await;
    let (plan, report) = h.apply(|_, _| Ok(())).await;
    assert_eq!(plan.summary().delete, 1);
    assert!(report.succeeded());
    assert_eq!(count(&h.world.calls(), "delete"), 0);
    assert_eq!(h.world.objects().len(), 1);
    assert!(h.snapshot().await.resources.is_empty());
}

#[tokio::test]
async fn ignore_changes_keeps_the_stored_value() {
    let h = Harness::new();
    let program = |size: u32| {
        move |s: &mut spar::Stack, p: &Arc<FakeProvider>| {
            s.add_with(
                "a",
                FakeResource::new(p)
                    .set("name", "a")
                    .set("size", size)
                    .set("tags", json!({"team": "ci", "n": size})),
                ResourceOptions::new().ignore_changes("size").ignore_changes("tags.n"),
            )?;
            Ok(())
        }
    };
    h.apply(program(1)).await;
    let plan = h.plan(program(5)).await;
    assert!(!plan.has_changes(), "{:?}", plan.changes);
    let (_, report) = h.apply(program(5)).await;
    assert!(report.succeeded());
    assert_eq!(h.world.object_at("a")[0].inputs["size"], json!(1));
}

#[tokio::test]
async fn targets_take_dependencies_and_excludes_take_dependents() {
    let h = Harness::new();
    let opts = PlanOptions {
        targets: vec!["b".into()],
        ..Default::default()
    };
    let (plan, report) = h.apply_with(chain, &opts, &ExecuteOptions::default()).await;
    assert!(report.succeeded());
    let created: Vec<String> = plan
        .changes
        .iter()
        .filter(|c| c.op == Op::Create)
        .map(|c| c.address.to_string())
        .collect();
    assert_eq!(created, ["a", "b"]);
    assert_eq!(h.world.objects().len(), 2);

    let opts = PlanOptions {
        excludes: vec!["b".into()],
        ..Default::default()
    };
    let plan = h.session(chain).unwrap().plan(&opts, false).await.unwrap();
    let created: Vec<String> = plan
        .changes
        .iter()
        .filter(|c| c.op == Op::Create)
        .map(|c| c.address.to_string())
        .collect();
    assert_eq!(created, ["x"], "c depends on the excluded b, so it is excluded too");

    let opts = PlanOptions {
        targets: vec!["nope".into()],
        ..Default::default()
    };
    let err = h.session(chain).unwrap().plan(&opts, false).await.unwrap_err();
    assert!(err.to_string().contains("`nope` matches no resource"), "{err}");
}

#[tokio::test]
async fn a_change_to_stack_outputs_alone_is_a_change() {
    let h = Harness::new();
    let program = |which: &'static str| {
        move |s: &mut spar::Stack, p: &Arc<FakeProvider>| {
            let a = s.add("a", FakeResource::new(p).set("name", "a"))?;
            let x = s.add("x", FakeResource::new(p).set("name", "x"))?;
            s.export("arn", if which == "a" { a.arn() } else { x.arn() })?;
            Ok(())
        }
    };
    assert!(h.apply(program("a")).await.1.succeeded());
    assert!(!h.plan(program("a")).await.has_changes());
    let plan = h.plan(program("x")).await;
    assert!(plan.changes.iter().all(|c| c.op == Op::Same));
    assert_eq!(plan.outputs_changed, ["arn"]);
    assert!(plan.has_changes(), "--detailed-exitcode must say 2");
    let text = spar::plan::render::text(&plan, spar::plan::render::Style { color: false });
    assert!(text.contains("Stack outputs to change: arn."), "{text}");
    assert!(h.apply(program("x")).await.1.succeeded());
    assert!(!h.plan(program("x")).await.has_changes());
}

#[tokio::test]
async fn a_targeted_destroy_takes_dependents_and_an_excluded_one_keeps_what_it_uses() {
    // chain: a <- b <- c, and x alone.
    let h = Harness::new();
    assert!(h.apply(chain).await.1.succeeded());
    let deleted = |plan: &spar::plan::Plan| -> Vec<String> {
        let mut v: Vec<String> = plan
            .changes
            .iter()
            .filter(|c| c.op == Op::Delete)
            .map(|c| c.address.to_string())
            .collect();
        v.sort();
        v
    };
    let destroy = |targets: &[&str], excludes: &[&str]| PlanOptions {
        destroy: true,
        targets: targets.iter().map(|t| t.to_string()).collect(),
        excludes: excludes.iter().map(|t| t.to_string()).collect(),
        ..Default::default()
    };
    let session = h.session(chain).unwrap();
    let plan = session.plan(&destroy(&["b"], &[]), false).await.unwrap();
    assert_eq!(deleted(&plan), ["b", "c"], "c uses b, so it goes with it");
    let plan = session.plan(&destroy(&[], &["b"]), false).await.unwrap();
    assert_eq!(deleted(&plan), ["c", "x"], "b stays, and so does a, which b uses");
    let plan = session.plan(&destroy(&["a"], &["c"]), false).await.unwrap();
    assert!(
        deleted(&plan).is_empty(),
        "c is kept, so b and a are too: {:?}",
        deleted(&plan)
    );

    let (_, report) = h
        .apply_with(|_, _| Ok(()), &destroy(&["b"], &[]), &ExecuteOptions::default())
        .await;
    assert!(report.succeeded());
    let mut left: Vec<String> = h.world.objects().iter().map(|o| o.address.to_string()).collect();
    left.sort();
    assert_eq!(left, ["a", "x"]);
}

#[tokio::test]
async fn a_saved_plan_applies_exactly_or_is_refused_when_state_or_program_moved() {
    let h = Harness::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plan.json");
    let saving = PlanOptions {
        for_saving: true,
        ..Default::default()
    };
    let session = h.session(chain).unwrap();
    let plan = session.plan(&saving, false).await.unwrap();
    spar::plan::planfile::save(&file, &plan, session.store.key()).unwrap();
    let loaded = spar::plan::planfile::load(&file, session.store.key()).unwrap();
    assert_eq!(loaded, plan);

    // The state moves (someone applies a target first): the saved plan is refused.
    let opts = PlanOptions {
        targets: vec!["x".into()],
        ..Default::default()
    };
    h.apply_with(chain, &opts, &ExecuteOptions::default()).await;
    let before = std::fs::read(h.dir.path().join("state/snapshot.json")).unwrap();
    let err = h
        .session(chain)
        .unwrap()
        .apply_saved(&loaded, &file, &ExecuteOptions::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("is stale: the state changed"), "{err}");
    assert_eq!(std::fs::read(h.dir.path().join("state/snapshot.json")).unwrap(), before);

    // A fresh plan applies; a changed program refuses it.
    let session = h.session(chain).unwrap();
    let plan = session.plan(&saving, false).await.unwrap();
    let err = h
        .session(|s, p| {
            chain(s, p)?;
            s.add("extra", FakeResource::new(p).set("name", "e"))?;
            Ok(())
        })
        .unwrap()
        .apply_saved(&plan, &file, &ExecuteOptions::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("program's desired graph changed"), "{err}");
    let report = session
        .apply_saved(&plan, &file, &ExecuteOptions::default())
        .await
        .unwrap();
    assert!(report.succeeded());
    assert_eq!(h.world.objects().len(), 4);
}

#[tokio::test]
async fn a_held_lock_refuses_a_second_run_naming_its_holder() {
    let h = Harness::new();
    let lock = h.store().lock("apply").await.unwrap();
    let err = h
        .session(chain)
        .unwrap()
        .apply_program(&PlanOptions::default(), &ExecuteOptions::default())
        .await
        .err()
        .unwrap();
    let msg = err.to_string();
    assert!(matches!(err, Error::State(StateError::Locked { .. })), "{msg}");
    assert!(
        msg.contains(&format!("pid {}", std::process::id())) && msg.contains("`apply`"),
        "{msg}"
    );
    assert!(h.world.objects().is_empty());
    lock.release().await.unwrap();
    let (_, report) = h.apply(chain).await;
    assert!(report.succeeded());
    // `state unlock` breaks a stale lock.
    // A holder that still runs is not stale: it takes --force.
    let _held = h.store().lock("apply").await.unwrap();
    let err = h.session(chain).unwrap().state_unlock(false).await.unwrap_err();
    assert!(err.to_string().contains("not stale"), "{err}");
    let broken = h.session(chain).unwrap().state_unlock(true).await.unwrap().unwrap();
    assert_eq!(broken.pid, std::process::id());
    h.apply(chain).await;
}

#[tokio::test]
async fn a_crash_mid_apply_is_recovered_without_losing_or_duplicating() {
    let world = FakeWorld::new();
    let creates = Arc::new(AtomicUsize::new(0));
    let crashed = Arc::new(tokio::sync::Notify::new());
    let (counter, signal) = (creates.clone(), crashed.clone());
    // The second create makes its object, then the "process" dies before recording it.
    let crashing = FakeProvider::new("fake:Thing", world.clone()).stall_after(move |op, _| {
        let stall = op == "create" && counter.fetch_add(1, Ordering::SeqCst) == 1;
        if stall {
            signal.notify_one();
        }
        stall
    });
    let h = Harness::with_provider(crashing, world.clone());
    let session = h.session(chain).unwrap();
    let exec = ExecuteOptions {
        parallelism: 1,
        ..Default::default()
    };
    let task = tokio::spawn(async move { session.apply_program(&PlanOptions::default(), &exec).await });
    crashed.notified().await;
    task.abort();
    let _ = task.await;
    assert_eq!(world.objects().len(), 2, "two objects exist in the cloud");

    // The next run finds a lock from a dead run, and a journal with one pending create.
    let fresh = Harness {
        world: world.clone(),
        provider: Arc::new(FakeProvider::new("fake:Thing", world.clone())),
        dir: h.dir,
        stack: h.stack,
    };
    let session = fresh.session(chain).unwrap();
    let plan = session.plan(&PlanOptions::default(), false).await.unwrap();
    assert_eq!(plan.pending.len(), 1, "the interrupted create is surfaced");
    assert!(plan.warnings[0].contains("unfinished"), "{:?}", plan.warnings);
    session.state_unlock(true).await.unwrap();
    let (_, report) = fresh.apply(chain).await;
    assert!(report.succeeded(), "{report:?}");
    let snap = fresh.snapshot().await;
    assert!(snap.pending.is_empty());
    assert_eq!(
        world.objects().len(),
        4,
        "no object lost or duplicated: {:#?}",
        world.objects()
    );
    for a in ["a", "b", "c", "x"] {
        assert_eq!(world.object_at(a).len(), 1, "{a}");
        assert_eq!(snap.get(&a.parse().unwrap()).unwrap().id, world.object_at(a)[0].id);
    }
    assert!(!fresh.plan(chain).await.has_changes());
}

#[tokio::test]
async fn recovery_adopts_only_its_own_stacks_objects() {
    // Two stacks of one program in one account: `dev` is applied, then `prod` dies right
    // after its second create made an object. Both stacks have that address; recovery in
    // `prod` must adopt prod's object, never dev's.
    let world = FakeWorld::new();
    let dev = Harness::with_provider(FakeProvider::new("fake:Thing", world.clone()), world.clone());
    assert!(dev.apply(chain).await.1.succeeded());
    assert!(
        world.calls().iter().all(|c| c.stack == "test/dev"),
        "{:?}",
        world.calls()
    );

    let creates = Arc::new(AtomicUsize::new(0));
    let crashed = Arc::new(tokio::sync::Notify::new());
    let (counter, signal) = (creates.clone(), crashed.clone());
    let crashing = FakeProvider::new("fake:Thing", world.clone()).stall_after(move |op, _| {
        let stall = op == "create" && counter.fetch_add(1, Ordering::SeqCst) == 1;
        if stall {
            signal.notify_one();
        }
        stall
    });
    let mut prod = Harness::with_provider(crashing, world.clone());
    prod.stack = "prod".into();
    let session = prod.session(chain).unwrap();
    let exec = ExecuteOptions {
        parallelism: 1,
        ..Default::default()
    };
    let task = tokio::spawn(async move { session.apply_program(&PlanOptions::default(), &exec).await });
    crashed.notified().await;
    task.abort();
    let _ = task.await;
    assert_eq!(world.objects().len(), 6, "dev's four and prod's two");

    prod.provider = Arc::new(FakeProvider::new("fake:Thing", world.clone()));
    prod.session(chain).unwrap().state_unlock(true).await.unwrap();
    let (_, report) = prod.apply(chain).await;
    assert!(report.succeeded(), "{report:?}");
    assert_eq!(
        world.objects().len(),
        8,
        "nothing lost or duplicated: {:#?}",
        world.objects()
    );
    for (h, stack) in [(&dev, "test/dev"), (&prod, "test/prod")] {
        let snap = h.snapshot().await;
        assert!(snap.pending.is_empty());
        for a in ["a", "b", "c", "x"] {
            let id = &snap.get(&a.parse().unwrap()).unwrap().id;
            let owner = world.objects().into_iter().find(|o| &o.id == id).unwrap();
            assert_eq!(owner.stack, stack, "{a} in {stack} points at another stack's object");
        }
        assert!(!h.plan(chain).await.has_changes());
    }
}

#[tokio::test]
async fn cancellation_stops_scheduling_and_records_what_ran() {
    let world = FakeWorld::new();
    let h = Harness::with_provider(
        FakeProvider::new("fake:Thing", world.clone()).latency(Duration::from_millis(50)),
        world,
    );
    let exec = ExecuteOptions {
        parallelism: 1,
        ..Default::default()
    };
    let cancel = exec.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        cancel.cancel();
    });
    let (_, report) = h.apply_with(chain, &PlanOptions::default(), &exec).await;
    assert!(report.interrupted);
    let done = report.count(|s| *s == StepStatus::Done);
    assert_eq!(done, 1, "the step in flight finished: {report:?}");
    assert_eq!(report.count(|s| *s == StepStatus::NotStarted), 3);
    assert_eq!(h.snapshot().await.resources.len(), 1);
    assert_eq!(h.world.objects().len(), 1);
    let (_, report) = h.apply(chain).await;
    assert!(report.succeeded());
    assert_eq!(h.world.objects().len(), 4);
}

#[tokio::test]
async fn an_interrupt_lets_steps_in_flight_finish_even_when_they_wait() {
    // A waiting create is not stopped by the first interrupt: only scheduling stops.
    let world = FakeWorld::new();
    let h = Harness::with_provider(
        FakeProvider::new("fake:Thing", world.clone()).settle(Duration::from_millis(150)),
        world,
    );
    let exec = ExecuteOptions {
        parallelism: 1,
        ..Default::default()
    };
    let cancel = exec.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(40)).await;
        cancel.cancel();
    });
    let (_, report) = h.apply_with(chain, &PlanOptions::default(), &exec).await;
    assert!(report.interrupted);
    assert_eq!(report.count(|s| *s == StepStatus::Done), 1, "{report:?}");
    let snap = h.snapshot().await;
    assert_eq!(snap.resources.len(), 1);
    assert!(snap.pending.is_empty());
}

#[tokio::test]
async fn an_aborted_or_timed_out_create_stays_pending_and_is_adopted_not_made_twice() {
    let world = FakeWorld::new();
    let slow = || FakeProvider::new("fake:Thing", world.clone()).settle(Duration::from_secs(30));
    // Abort (a second Ctrl-C): the create in flight gives up its wait; its object exists.
    let mut h = Harness::with_provider(slow(), world.clone());
    let exec = ExecuteOptions {
        parallelism: 1,
        ..Default::default()
    };
    let (cancel, abort) = (exec.cancel.clone(), exec.abort.clone());
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        cancel.cancel();
        abort.cancel();
    });
    let (_, report) = h.apply_with(chain, &PlanOptions::default(), &exec).await;
    assert!(report.interrupted);
    let (addr, message) = report.failures().next().expect("the aborted create is reported");
    assert!(message.contains("next run finds and adopts it"), "{addr}: {message}");
    assert_eq!(world.objects().len(), 1, "{report:#?} {:#?}", world.objects());
    let snap = h.snapshot().await;
    assert!(snap.resources.is_empty());
    assert_eq!(snap.pending.len(), 1, "saved state remembers the unsettled create");
    let plan = h.plan(chain).await;
    assert_eq!(plan.pending.len(), 1, "and plans surface it");

    // The next run adopts it: four objects in all, none made twice.
    h.provider = Arc::new(FakeProvider::new("fake:Thing", world.clone()));
    let (_, report) = h.apply(chain).await;
    assert!(report.succeeded(), "{report:?}");
    assert_eq!(world.objects().len(), 4, "{:#?}", world.objects());
    assert!(h.snapshot().await.pending.is_empty());

    // A create timeout: the engine's bound stops a kind that ignores the option, and the
    // object it made is adopted the same way.
    let ignoring = FakeProvider::new("fake:Thing", world.clone()).settle(Duration::from_secs(30));
    let mut t = Harness::with_provider(ignoring, world.clone());
    t.stack = "timeouts".into();
    let program = |s: &mut spar::Stack, p: &Arc<FakeProvider>| {
        s.add_with(
            "slow",
            FakeResource::new(p).set("name", "slow"),
            ResourceOptions::new().create_timeout(Duration::from_millis(100)),
        )?;
        Ok(())
    };
    let (_, report) = t.apply(program).await;
    let (_, message) = report.failures().next().expect("the timed-out create is reported");
    assert!(message.contains("timed out"), "{message}");
    assert_eq!(t.snapshot().await.pending.len(), 1);
    t.provider = Arc::new(FakeProvider::new("fake:Thing", world.clone()));
    let (_, report) = t.apply(program).await;
    assert!(report.succeeded(), "{report:?}");
    assert_eq!(world.object_at("slow").len(), 1, "adopted, not made twice");
}

#[tokio::test]
async fn an_update_whose_inputs_turn_out_equal_makes_no_call() {
    let world = FakeWorld::new();
    let schema = Schema::new().replace_on(&["name"]).volatile_outputs(&["arn"]);
    let h = Harness::with_provider(FakeProvider::new("fake:Thing", world.clone()).schema(schema), world);
    let program = |size: u32| {
        move |s: &mut spar::Stack, p: &Arc<FakeProvider>| {
            let a = s.add("a", FakeResource::new(p).set("name", "a").set("size", size))?;
            s.add(
                "b",
                FakeResource::new(p).set("name", "b").set_output("parent", &a.arn()),
            )?;
            Ok(())
        }
    };
    h.apply(program(1)).await;
    h.world.clear_calls();
    // a's ARN is volatile, so b must be planned as an update with an unknown...
    let plan = h.plan(program(2)).await;
    assert_eq!(ops(&plan), vec![("a".into(), Op::Update), ("b".into(), Op::Update)]);
    // ...but the ARN did not change, so b needs no call.
    let (_, report) = h.apply(program(2)).await;
    assert!(report.succeeded());
    let b = report.outcomes.iter().find(|o| o.address.as_str() == "b").unwrap();
    assert_eq!(b.status, StepStatus::Unchanged);
    assert_eq!(count(&h.world.calls(), "update"), 1);
}

#[tokio::test]
async fn drift_shows_after_refresh_and_import_adopts() {
    let h = Harness::new();
    h.apply(chain).await;
    let id = h.world.object_at("x")[0].id.clone();
    h.world.tamper(&id, |v| v["name"] = json!("changed-by-hand"));
    let plan = h
        .session(chain)
        .unwrap()
        .plan(&PlanOptions::default(), true)
        .await
        .unwrap();
    let x = plan.get(&"x".parse().unwrap()).unwrap();
    assert_eq!(x.op, Op::Replace, "name drifted and forces replacement");
    let report = h.session(chain).unwrap().refresh(4).await.unwrap();
    assert_eq!(report.drifted.len(), 1);
    assert_eq!(report.drifted[0].0.as_str(), "x");

    // An object deleted behind spar's back is dropped from state by refresh.
    let c = h.world.object_at("c")[0].id.clone();
    h.world.remove(&c);
    let report = h.session(chain).unwrap().refresh(4).await.unwrap();
    assert_eq!(report.gone.len(), 1);
    assert!(h.snapshot().await.get(&"c".parse().unwrap()).is_none());

    // Import an object made outside spar.
    let outside = h.world.insert("fake:Thing", "made-by-hand", json!({"name": "imp"}));
    let session = h
        .session(|s, p| {
            chain(s, p)?;
            s.add("imp", FakeResource::new(p).set("name", "imp"))?;
            Ok(())
        })
        .unwrap();
    let r = session
        .import("fake:Thing", &"imp".parse().unwrap(), &outside)
        .await
        .unwrap();
    assert_eq!(r.id, outside);
    let plan = session.plan(&PlanOptions::default(), false).await.unwrap();
    assert_eq!(plan.get(&"imp".parse().unwrap()).unwrap().op, Op::Same);
}

#[tokio::test]
async fn a_secret_quoted_by_a_failing_call_or_transform_is_never_shown_or_stored() {
    let world = FakeWorld::new();
    // A careless kind quotes its whole input in its error, as some APIs do.
    let careless = FakeProvider::new("fake:Thing", world.clone())
        .on_create(|_, inputs| Err(ProviderError::msg(format!("invalid request: {inputs}"))));
    let h = Harness::with_provider(careless, world);
    let program = |s: &mut spar::Stack, p: &Arc<FakeProvider>| {
        s.add(
            "token",
            FakeResource::new(p)
                .set("name", "t")
                .set("token", spar::Secret::new("tok-abc123")),
        )?;
        Ok(())
    };
    let (_, report) = h.apply(program).await;
    let (_, message) = report.failures().next().expect("the create fails");
    assert!(
        message.contains("invalid request") && message.contains("(sensitive value)"),
        "{message}"
    );
    assert!(!message.contains("tok-abc123"), "{message}");
    for entry in std::fs::read_dir(h.dir.path().join("state")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let raw = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(!raw.contains("tok-abc123"), "{} holds the secret", path.display());
        }
    }

    // A transform that fails on a secret: its error names the value it could not read.
    let h = Harness::new();
    let program = |s: &mut spar::Stack, p: &Arc<FakeProvider>| {
        let pw = s.add("pw", spar::builtin::random::Password::new(24))?;
        let number = pw
            .result()
            .try_map(|v: String| v.parse::<u64>().map_err(|e| format!("`{v}`: {e}")));
        s.add("user", FakeResource::new(p).set("name", "u").set_output("pin", &number))?;
        Ok(())
    };
    let (_, report) = h.apply(program).await;
    let snap = h.snapshot().await;
    let password = spar::value::strip_secrets(&snap.get(&"pw".parse().unwrap()).unwrap().outputs["result"]);
    let password = password.as_str().unwrap();
    let (_, message) = report.failures().next().expect("the transform fails");
    assert!(!message.contains(password), "{message}");
    assert!(message.contains("(sensitive value)"), "{message}");
}

#[tokio::test]
async fn secrets_are_encrypted_in_state_and_redacted_in_plans() {
    let h = Harness::new();
    let program = |s: &mut spar::Stack, p: &Arc<FakeProvider>| {
        let pw = s.add("pw", spar::builtin::random::Password::new(24))?;
        s.add(
            "user",
            FakeResource::new(p)
                .set("name", "u")
                .set_output("password", &pw.result()),
        )?;
        s.add(
            "token",
            FakeResource::new(p)
                .set("name", "t")
                .set("token", spar::Secret::new("tok-abc123")),
        )?;
        s.export("password", pw.result())?;
        Ok(())
    };
    let (plan, _) = h.apply(program).await;
    let text = spar::plan::render::text(&plan, spar::plan::render::Style { color: false });
    assert!(
        !text.contains("tok-abc123") && text.contains("(sensitive value)"),
        "{text}"
    );
    let password = h.world.object_at("user")[0].inputs["password"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(password.len(), 24);
    let raw = std::fs::read_to_string(h.dir.path().join("state/snapshot.json")).unwrap();
    assert!(
        !raw.contains(&password) && !raw.contains("tok-abc123"),
        "secrets must be encrypted at rest"
    );
    // Stable across runs.
    let plan = h.plan(program).await;
    assert!(!plan.has_changes());
    let json = spar::plan::render::json(&plan).to_string();
    assert!(!json.contains(&password));
    let snap = h.snapshot().await;
    assert_eq!(spar::value::strip_secrets(&snap.outputs["password"]), json!(password));
}

#[tokio::test]
async fn a_plan_shows_each_component_once_even_when_the_order_interleaves_them() {
    let h = Harness::new();
    let program = |s: &mut spar::Stack, p: &Arc<FakeProvider>| {
        let x = s.component("net", |s| s.add("x", FakeResource::new(p).set("name", "x")))?;
        let y = s.component("app", |s| {
            s.add("y", FakeResource::new(p).set("name", "y").set_output("up", &x.arn()))
        })?;
        s.component("net", |s| {
            s.add("z", FakeResource::new(p).set("name", "z").set_output("up", &y.arn()))
        })?;
        Ok(())
    };
    let plan = h.plan(program).await;
    let text = spar::plan::render::text(&plan, spar::plan::render::Style { color: false });
    assert_eq!(text.matches("net/\n").count(), 1, "{text}");
    assert_eq!(text.matches("app/\n").count(), 1, "{text}");
}

fn sized(size: i64) -> impl Fn(&mut spar::Stack, &Arc<FakeProvider>) -> spar::Result<()> {
    move |s, p| {
        s.add("a", FakeResource::new(p).set("name", "a").set("size", size))?;
        Ok(())
    }
}

#[tokio::test]
async fn an_update_whose_wait_timed_out_is_recorded_unfinished_and_sent_again() {
    // A kind that sends the change and then gives up waiting for it (a chart whose pods
    // never become ready): the change happened, so state must not forget it.
    let world = FakeWorld::new();
    let mut h = Harness::with_provider(FakeProvider::new("fake:Thing", world.clone()), world.clone());
    let (_, report) = h.apply(sized(1)).await;
    assert!(report.succeeded());
    let timing_out = FakeProvider::new("fake:Thing", world.clone()).on_update(|_, _| {
        Err(ProviderError::Timeout {
            what: "Deployment app/web to be ready (0/1 replicas available; pod web-x is Unschedulable: ...)".into(),
            after: Duration::from_secs(15),
        })
    });
    h.provider = Arc::new(timing_out);
    let (_, report) = h.apply(sized(2)).await;
    let (_, message) = report.failures().next().expect("the update fails");
    assert!(message.contains("records it as unfinished"), "{message}");
    let snap = h.snapshot().await;
    let a = snap.resources.values().next().expect("a");
    assert_eq!(a.inputs["size"], 2, "the sent inputs are recorded");
    assert!(
        a.unfinished.as_deref().is_some_and(|u| u.contains("Unschedulable")),
        "{a:?}"
    );

    // Going back to the old inputs is a change (the live object has the new ones), and
    // keeping the new ones updates again (so the wait runs again), with a note saying why.
    for size in [1, 2] {
        let plan = h.plan(sized(size)).await;
        assert_eq!(ops(&plan), [("a".to_string(), Op::Update)], "size {size}");
        assert!(
            plan.changes[0]
                .notes
                .iter()
                .any(|n| n.contains("did not see it through")),
            "{:?}",
            plan.changes[0].notes
        );
    }
    h.provider = Arc::new(FakeProvider::new("fake:Thing", world.clone()));
    let (_, report) = h.apply(sized(2)).await;
    assert!(report.succeeded(), "{report:?}");
    assert_eq!(count(&world.calls(), "update"), 2, "sent again with the same inputs");
    assert!(h.snapshot().await.resources.values().all(|r| r.unfinished.is_none()));
    let plan = h.plan(sized(2)).await;
    assert_eq!(ops(&plan), [("a".to_string(), Op::Same)]);
}

fn replacing(addresses: &[&str]) -> PlanOptions {
    PlanOptions {
        replace: addresses.iter().map(|a| a.to_string()).collect(),
        ..Default::default()
    }
}

#[tokio::test]
async fn replace_requested_replaces_an_unchanged_resource_in_its_kinds_order() {
    let h = Harness::new();
    let program = |dbr: bool| {
        move |s: &mut spar::Stack, p: &Arc<FakeProvider>| {
            let a = s.add_with(
                "a",
                FakeResource::new(p).set("name", "a"),
                ResourceOptions::new().delete_before_replace(dbr),
            )?;
            s.add(
                "b",
                FakeResource::new(p).set("name", "b").set_output("parent", &a.arn()),
            )?;
            s.add("c", FakeResource::new(p).set("name", "c"))?;
            Ok(())
        }
    };
    h.apply(program(false)).await;
    let old_a = h.world.object_at("a")[0].id.clone();
    // Nothing changed: without --replace, no changes.
    assert!(!h.plan(program(false)).await.has_changes());
    let plan = h
        .session(program(false))
        .unwrap()
        .plan(&replacing(&["a"]), false)
        .await
        .unwrap();
    assert_eq!(
        ops(&plan),
        vec![
            ("a".into(), Op::Replace),
            ("b".into(), Op::Update),
            ("c".into(), Op::Same)
        ]
    );
    let a = plan.get(&"a".parse().unwrap()).unwrap();
    assert_eq!(
        a.replace_reason.as_deref(),
        Some("replacement requested with --replace")
    );
    let text = spar::plan::render::text(&plan, spar::plan::render::Style { color: false });
    assert!(text.contains("replacement requested with --replace"), "{text}");

    // Create-before-delete: the new object, then the dependent, then the old one goes.
    h.world.clear_calls();
    let (_, report) = h
        .apply_with(program(false), &replacing(&["a"]), &ExecuteOptions::default())
        .await;
    assert!(report.succeeded(), "{report:?}");
    let calls = h.world.calls();
    let (create_a, update_b, delete_a) = (
        call(&calls, "create", "a"),
        call(&calls, "update", "b"),
        call(&calls, "delete", "a"),
    );
    assert!(
        create_a.end < update_b.start && update_b.end < delete_a.start,
        "{calls:#?}"
    );
    assert_eq!(delete_a.id.as_deref(), Some(old_a.as_str()));
    assert_eq!(count(&calls, "create"), 1, "only `a` is made again: {calls:#?}");
    let new_a = h.world.object_at("a")[0].id.clone();
    assert_ne!(new_a, old_a);
    assert_eq!(
        h.world.object_at("b")[0].inputs["parent"],
        json!(format!("arn:fake:fake:Thing:{new_a}"))
    );
    // Done: the next plan is empty again.
    assert!(!h.plan(program(false)).await.has_changes());

    // Delete-before-replace when the resource says so.
    h.apply(program(true)).await;
    h.world.clear_calls();
    let (_, report) = h
        .apply_with(program(true), &replacing(&["a"]), &ExecuteOptions::default())
        .await;
    assert!(report.succeeded(), "{report:?}");
    let calls = h.world.calls();
    assert!(
        call(&calls, "delete", "a").end < call(&calls, "create", "a").start,
        "{calls:#?}"
    );
    assert_eq!(h.world.objects().len(), 3);
}

#[tokio::test]
async fn replace_refuses_what_it_cannot_replace_and_changes_nothing() {
    let h = Harness::new();
    let program = |s: &mut spar::Stack, p: &Arc<FakeProvider>| {
        s.add_with(
            "db",
            FakeResource::new(p).set("name", "db"),
            ResourceOptions::new().protect(),
        )?;
        s.add("web", FakeResource::new(p).set("name", "web"))?;
        Ok(())
    };
    h.apply(program).await;
    let with_new = |s: &mut spar::Stack, p: &Arc<FakeProvider>| {
        program(s, p)?;
        s.add("new", FakeResource::new(p).set("name", "new"))?;
        Ok(())
    };
    let before = h.snapshot().await;
    h.world.clear_calls();
    for (addresses, says) in [
        (
            vec!["nope"],
            "--replace `nope`: the program declares no resource at that address",
        ),
        (
            vec!["new"],
            "--replace `new`: it does not exist yet, so there is nothing to replace",
        ),
        (vec!["db"], "`db` is protected and this plan would replace it"),
    ] {
        let err = h
            .session(with_new)
            .unwrap()
            .apply_program(&replacing(&addresses), &ExecuteOptions::default())
            .await
            .unwrap_err();
        assert!(err.to_string().contains(says), "{err}");
    }
    let opts = PlanOptions {
        targets: vec!["web".into()],
        ..replacing(&["db"])
    };
    let err = h.session(program).unwrap().plan(&opts, false).await.unwrap_err();
    assert!(
        err.to_string().contains("outside the --target/--exclude scope"),
        "{err}"
    );
    assert!(h.world.calls().is_empty());
    assert_eq!(h.snapshot().await, before);
}

#[tokio::test]
async fn state_unprotect_lets_a_protected_resource_left_the_program_go() {
    let h = Harness::new();
    h.apply(|s, p| {
        s.add_with(
            "db",
            FakeResource::new(p).set("name", "db"),
            ResourceOptions::new().protect(),
        )?;
        Ok(())
    })
    .await;
    let gone = |_: &mut spar::Stack, _: &Arc<FakeProvider>| Ok(());
    let err = h
        .session(gone)
        .unwrap()
        .plan(&PlanOptions::default(), false)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("`db` is protected"), "{err}");
    let session = h.session(gone).unwrap();
    assert!(session.state_unprotect(&"db".parse().unwrap()).await.unwrap());
    assert!(
        !session.state_unprotect(&"db".parse().unwrap()).await.unwrap(),
        "already clear"
    );
    let (plan, report) = h.apply(gone).await;
    assert_eq!(ops(&plan), vec![("db".into(), Op::Delete)]);
    assert!(report.succeeded());
    assert!(h.world.objects().is_empty());
}

#[tokio::test]
async fn drift_is_shown_by_a_preview_and_written_only_when_accepted() {
    let h = Harness::new();
    let program = |s: &mut spar::Stack, p: &Arc<FakeProvider>| {
        s.add("a", FakeResource::new(p).set("name", "a").set("size", 1))?;
        s.add("b", FakeResource::new(p).set("name", "b"))?;
        s.add("c", FakeResource::new(p).set("name", "c"))?;
        Ok(())
    };
    h.apply(program).await;
    let id = |addr: &str| h.world.object_at(addr)[0].id.clone();
    h.world.tamper(&id("a"), |inputs| inputs["size"] = json!(7));
    h.world.remove(&id("b"));
    let before = h.snapshot().await;
    let session = h.session(program).unwrap();

    // The preview shows the property and the object gone, and writes nothing.
    let report = session.refresh_preview(&[], 4).await.unwrap();
    assert_eq!(report.drifted.len(), 1);
    let (addr, changes) = &report.drifted[0];
    assert_eq!(addr.as_str(), "a");
    assert_eq!(changes[0].path.to_string(), "size");
    assert_eq!(
        (changes[0].before.clone(), changes[0].after.clone()),
        (Some(json!(1)), Some(json!(7)))
    );
    assert_eq!(report.gone.iter().map(|a| a.to_string()).collect::<Vec<_>>(), ["b"]);
    assert_eq!(h.snapshot().await, before, "a preview writes nothing");

    // Targeted: only what is asked for is read.
    let report = session.refresh_preview(&["a".into()], 4).await.unwrap();
    assert_eq!((report.read, report.gone.len()), (1, 0));
    let err = session.refresh_preview(&["ghost".into()], 4).await.unwrap_err();
    assert!(
        err.to_string().contains("--target `ghost` matches nothing in state"),
        "{err}"
    );

    // Discarded: nothing written, the lock released.
    let run = session.refresh_begin(&[], 4).await.unwrap();
    assert!(run.report.has_drift());
    run.discard().await.unwrap();
    assert_eq!(h.snapshot().await, before);

    // Accepted: exactly what was read is written.
    let run = session.refresh_begin(&[], 4).await.unwrap();
    assert!(run.accept().await.unwrap());
    let after = h.snapshot().await;
    assert_eq!(after.get(&"a".parse().unwrap()).unwrap().inputs["size"], json!(7));
    assert!(after.get(&"b".parse().unwrap()).is_none());
    assert_eq!(after.serial, before.serial + 1);
    // Nothing left to accept: nothing is written.
    let run = session.refresh_begin(&[], 4).await.unwrap();
    assert!(!run.report.has_drift());
    assert!(!run.accept().await.unwrap());
    assert_eq!(h.snapshot().await.serial, after.serial);
    // The program still says size 1 and declares b: the next plan puts them back.
    let plan = h.plan(program).await;
    assert_eq!(
        ops(&plan),
        vec![
            ("a".into(), Op::Update),
            ("b".into(), Op::Create),
            ("c".into(), Op::Same)
        ]
    );
}

#[tokio::test]
async fn a_refresh_with_an_unreadable_object_cannot_be_accepted() {
    let world = FakeWorld::new();
    let provider = FakeProvider::new("fake:Thing", world.clone());
    let h = Harness::with_provider(provider, world);
    h.apply(|s, p| {
        s.add("a", FakeResource::new(p).set("name", "a"))?;
        Ok(())
    })
    .await;
    let id = h.world.object_at("a")[0].id.clone();
    h.world.tamper(&id, |inputs| inputs["name"] = json!("z"));
    // A kind the program no longer registers cannot read its object.
    let mut snap = h.snapshot().await;
    snap.get_mut(&"a".parse().unwrap()).unwrap().kind = "fake:Gone".into();
    let store = h.store();
    store.save(&mut snap).await.unwrap();
    let before = h.snapshot().await;
    let session = h.session(|_, _| Ok(())).unwrap();
    let run = session.refresh_begin(&[], 4).await.unwrap();
    assert_eq!(run.report.errors.len(), 1);
    let err = run.accept().await.unwrap_err();
    assert!(
        err.to_string()
            .contains("could not be read back, so nothing was written"),
        "{err}"
    );
    assert_eq!(h.snapshot().await, before);
}

#[tokio::test]
async fn an_alias_moves_a_resource_without_a_call_and_updates_when_inputs_changed() {
    let h = Harness::new();
    h.apply(|s, p| {
        let a = s.add("a", FakeResource::new(p).set("name", "a").set("size", 1))?;
        s.add(
            "b",
            FakeResource::new(p).set("name", "b").set_output("parent", &a.arn()),
        )?;
        Ok(())
    })
    .await;
    let id = h.world.object_at("a")[0].id.clone();
    let renamed = |size: u32| {
        move |s: &mut spar::Stack, p: &Arc<FakeProvider>| {
            let a = s.add_with(
                "db/main",
                FakeResource::new(p).set("name", "a").set("size", size),
                ResourceOptions::new().alias("a"),
            )?;
            s.add(
                "b",
                FakeResource::new(p).set("name", "b").set_output("parent", &a.arn()),
            )?;
            Ok(())
        }
    };
    let plan = h.plan(renamed(1)).await;
    assert_eq!(ops(&plan), vec![("db/main".into(), Op::Same), ("b".into(), Op::Same)]);
    let moved = plan.get(&"db/main".parse().unwrap()).unwrap();
    assert_eq!(moved.moved_from.as_ref().map(|a| a.as_str()), Some("a"));
    assert!(plan.has_changes());
    let text = spar::plan::render::text(&plan, spar::plan::render::Style { color: false });
    assert!(text.contains("~ moved from a"), "{text}");
    assert!(
        text.contains("Plan: 0 to create, 0 to update, 0 to replace, 0 to delete. 1 moved."),
        "{text}"
    );

    h.world.clear_calls();
    let (_, report) = h.apply(renamed(1)).await;
    assert!(report.succeeded());
    assert!(h.world.calls().is_empty(), "{:#?}", h.world.calls());
    let snap = h.snapshot().await;
    assert_eq!(snap.get(&"db/main".parse().unwrap()).unwrap().id, id);
    assert!(snap.get(&"a".parse().unwrap()).is_none());
    assert_eq!(
        snap.get(&"b".parse().unwrap()).unwrap().dependencies,
        vec!["db/main".parse::<spar::Address>().unwrap()]
    );
    assert!(!h.plan(renamed(1)).await.has_changes());

    // Renamed back with a changed input: moved and updated in one, by one update call.
    let back = |s: &mut spar::Stack, p: &Arc<FakeProvider>| {
        let a = s.add_with(
            "a",
            FakeResource::new(p).set("name", "a").set("size", 2),
            ResourceOptions::new().alias("db/main"),
        )?;
        s.add(
            "b",
            FakeResource::new(p).set("name", "b").set_output("parent", &a.arn()),
        )?;
        Ok(())
    };
    h.world.clear_calls();
    let (plan, report) = h.apply(back).await;
    assert_eq!(ops(&plan)[0], ("a".into(), Op::Update));
    assert!(report.succeeded());
    let calls = h.world.calls();
    assert_eq!(calls.len(), 1, "{calls:#?}");
    assert_eq!((calls[0].op, calls[0].address.as_str()), ("update", "a"));
    assert_eq!(h.world.object_at("a")[0].id, id);
}

#[tokio::test]
async fn a_component_alias_moves_everything_under_it() {
    let h = Harness::new();
    let program = |name: &'static str, old: Option<&'static str>| {
        move |s: &mut spar::Stack, p: &Arc<FakeProvider>| {
            let body = |s: &mut spar::Stack| {
                s.add("vpc", FakeResource::new(p).set("name", "vpc"))?;
                s.component("subnets", |s| {
                    s.add("a", FakeResource::new(p).set("name", "sa"))?;
                    s.add("b", FakeResource::new(p).set("name", "sb"))?;
                    Ok(())
                })
            };
            match old {
                Some(old) => s.component_with_alias(name, old, body),
                None => s.component(name, body),
            }
        }
    };
    h.apply(program("net", None)).await;
    h.world.clear_calls();
    let (plan, report) = h.apply(program("network", Some("net"))).await;
    assert!(report.succeeded());
    let moves: Vec<(String, String)> = plan
        .changes
        .iter()
        .filter_map(|c| c.moved_from.as_ref().map(|f| (f.to_string(), c.address.to_string())))
        .collect();
    assert_eq!(
        moves,
        [
            ("net/vpc".to_string(), "network/vpc".to_string()),
            ("net/subnets/a".to_string(), "network/subnets/a".to_string()),
            ("net/subnets/b".to_string(), "network/subnets/b".to_string()),
        ]
    );
    assert!(h.world.calls().is_empty());
    let addrs: Vec<String> = h.snapshot().await.resources.keys().map(|a| a.to_string()).collect();
    assert_eq!(addrs, ["network/subnets/a", "network/subnets/b", "network/vpc"]);
}

#[tokio::test]
async fn bad_aliases_are_refused_naming_both_addresses() {
    let h = Harness::new();
    h.apply(|s, p| {
        s.add("a", FakeResource::new(p).set("name", "a"))?;
        s.add("b", FakeResource::new(p).set("name", "b"))?;
        Ok(())
    })
    .await;
    let before = h.snapshot().await;
    // An alias naming an address still declared.
    let err = h
        .session(|s, p| {
            s.add("a", FakeResource::new(p).set("name", "a"))?;
            s.add_with(
                "c",
                FakeResource::new(p).set("name", "b"),
                ResourceOptions::new().alias("a"),
            )?;
            Ok(())
        })
        .err()
        .expect("refused");
    assert!(
        err.to_string()
            .contains("`c` has the alias `a`, but the program still declares `a`"),
        "{err}"
    );
    // Two resources claiming one alias.
    let err = h
        .session(|s, p| {
            s.add_with(
                "x",
                FakeResource::new(p).set("name", "a"),
                ResourceOptions::new().alias("a"),
            )?;
            s.add_with(
                "y",
                FakeResource::new(p).set("name", "b"),
                ResourceOptions::new().alias("a"),
            )?;
            Ok(())
        })
        .err()
        .expect("refused");
    assert!(err.to_string().contains("`x` and `y` both have the alias `a`"), "{err}");
    // Not an address.
    let err = h
        .session(|s, p| {
            s.add_with(
                "x",
                FakeResource::new(p).set("name", "a"),
                ResourceOptions::new().alias("no good"),
            )?;
            Ok(())
        })
        .err()
        .expect("refused");
    assert!(
        err.to_string()
            .contains("has the alias `no good`, which is not an address"),
        "{err}"
    );
    // Both the new address and its alias in state.
    let err = h
        .session(|s, p| {
            s.add_with(
                "b",
                FakeResource::new(p).set("name", "b"),
                ResourceOptions::new().alias("a"),
            )?;
            Ok(())
        })
        .unwrap()
        .plan(&PlanOptions::default(), false)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("`b` and its alias `a` are both in state"),
        "{err}"
    );
    // Two aliases of one resource in state.
    let err = h
        .session(|s, p| {
            s.add_with(
                "z",
                FakeResource::new(p).set("name", "a"),
                ResourceOptions::new().alias("a").alias("b"),
            )?;
            Ok(())
        })
        .unwrap()
        .plan(&PlanOptions::default(), false)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("`z` has two aliases in state, `a` and `b`"),
        "{err}"
    );
    assert_eq!(h.snapshot().await, before);
}

#[tokio::test]
async fn a_move_survives_a_run_that_dies_after_it() {
    let world = FakeWorld::new();
    let h = Harness::with_provider(FakeProvider::new("fake:Thing", world.clone()), world.clone());
    h.apply(|s, p| {
        s.add("a", FakeResource::new(p).set("name", "a"))?;
        s.add("b", FakeResource::new(p).set("name", "b").set("size", 1))?;
        Ok(())
    })
    .await;
    let id = world.object_at("a")[0].id.clone();
    let renamed = |s: &mut spar::Stack, p: &Arc<FakeProvider>| {
        s.add_with(
            "moved/a",
            FakeResource::new(p).set("name", "a"),
            ResourceOptions::new().alias("a"),
        )?;
        s.add("b", FakeResource::new(p).set("name", "b").set("size", 2))?;
        Ok(())
    };
    // The update of b makes its change, then the "process" dies before recording it.
    let crashed = Arc::new(tokio::sync::Notify::new());
    let signal = crashed.clone();
    let crashing = FakeProvider::new("fake:Thing", world.clone()).stall_after(move |op, _| {
        let stall = op == "update";
        if stall {
            signal.notify_one();
        }
        stall
    });
    let dying = Harness {
        world: world.clone(),
        provider: Arc::new(crashing),
        dir: h.dir,
        stack: h.stack,
    };
    let session = dying.session(renamed).unwrap();
    let task = tokio::spawn(async move {
        session
            .apply_program(&PlanOptions::default(), &ExecuteOptions::default())
            .await
    });
    crashed.notified().await;
    task.abort();
    let _ = task.await;

    // The next run replays the journal: the move is there, once; b's update is resolved.
    let fresh = Harness {
        world: world.clone(),
        provider: Arc::new(FakeProvider::new("fake:Thing", world.clone())),
        dir: dying.dir,
        stack: dying.stack,
    };
    fresh.session(renamed).unwrap().state_unlock(true).await.unwrap();
    let (snap, replayed) = fresh.store().load().await.unwrap();
    assert!(replayed);
    assert_eq!(snap.get(&"moved/a".parse().unwrap()).unwrap().id, id);
    assert!(snap.get(&"a".parse().unwrap()).is_none());
    let (_, report) = fresh.apply(renamed).await;
    assert!(report.succeeded());
    assert!(!fresh.plan(renamed).await.has_changes());
    assert_eq!(world.objects().len(), 2, "nothing made twice, nothing lost");
    assert_eq!(world.object_at("moved/a").len() + world.object_at("a").len(), 1);
}

fn entry(kind: &str, address: &str, id: &str) -> spar::ops::import::ImportEntry {
    spar::ops::import::ImportEntry {
        kind: kind.into(),
        address: address.into(),
        id: id.into(),
    }
}

#[tokio::test]
async fn import_many_adopts_all_or_none_and_protects_what_is_not_declared() {
    let h = Harness::new();
    let declared = |s: &mut spar::Stack, p: &Arc<FakeProvider>| {
        s.add("web", FakeResource::new(p).set("name", "web"))?;
        Ok(())
    };
    h.apply(declared).await;
    let db = h.world.insert("fake:Thing", "by-hand-1", json!({"name": "db"}));
    let cache = h.world.insert("fake:Thing", "by-hand-2", json!({"name": "cache"}));
    let session = h.session(declared).unwrap();

    // Refused before anything is read: each names its entry.
    for (entries, says) in [
        (
            vec![entry("fake:Thing", "db", &db), entry("fake:Thing", "db", &cache)],
            "import #2 (`db`): `db` is listed twice",
        ),
        (
            vec![entry("fake:Nope", "db", &db)],
            "import #1 (`db`): no resource kind named `fake:Nope`",
        ),
        (vec![entry("fake:Thing", "no good", &db)], "import #1 (`no good`)"),
    ] {
        let err = session.import_many(&entries, 4).await.unwrap_err();
        assert!(err.to_string().contains(says), "{err}");
    }
    let err = session
        .import_many(&[entry("fake:Thing", "web", &db)], 4)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("import #1 (`web`): `web` is already in state; `state rm` it first"),
        "{err}"
    );
    // One object missing: none is imported.
    let before = h.snapshot().await;
    let err = session
        .import_many(
            &[
                entry("fake:Thing", "db", &db),
                entry("fake:Thing", "cache", "fake-999"),
                entry("fake:Thing", "queue", "fake-998"),
            ],
            4,
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "`cache`: no fake:Thing with id `fake-999` exists; `queue`: no fake:Thing with id `fake-998` exists; so nothing was imported (fix or drop those entries and import again)"
    );
    assert_eq!(h.snapshot().await, before);
    assert!(h.world.calls().iter().all(|c| c.op == "read" || c.op == "create"));

    // Both, in one save.
    let adopted = session
        .import_many(
            &[entry("fake:Thing", "db", &db), entry("fake:Thing", "cache", &cache)],
            4,
        )
        .await
        .unwrap();
    assert_eq!(adopted.len(), 2);
    assert_eq!(h.snapshot().await.serial, before.serial + 1);
    assert!(adopted.iter().all(|r| r.options.protect && r.options.imported));

    // The program does not declare them: no plan deletes them.
    let err = h
        .session(declared)
        .unwrap()
        .plan(&PlanOptions::default(), false)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("`cache` was imported and is protected until the program declares it"),
        "{err}"
    );
    // Nothing was deleted by the refused plan, and nothing was called.
    assert!(h.world.objects().iter().any(|o| o.id == db) && h.world.objects().iter().any(|o| o.id == cache));
    assert!(h.world.calls().iter().all(|c| c.op == "read" || c.op == "create"));
    // Declared: adopted with the program's options (here in an apply that also creates
    // something, so through the executor); then removing it deletes it as usual.
    let with_db = |s: &mut spar::Stack, p: &Arc<FakeProvider>| {
        declared(s, p)?;
        s.add_with(
            "db",
            FakeResource::new(p).set("name", "db"),
            ResourceOptions::new().retain_on_delete(),
        )?;
        s.add("cache", FakeResource::new(p).set("name", "cache"))?;
        s.add("new", FakeResource::new(p).set("name", "new"))?;
        Ok(())
    };
    h.world.clear_calls();
    let (plan, report) = h.apply(with_db).await;
    assert!(report.succeeded());
    assert_eq!(
        ops(&plan)
            .into_iter()
            .filter(|(_, op)| *op != Op::Same)
            .collect::<Vec<_>>(),
        vec![("new".to_string(), Op::Create)]
    );
    assert!(
        h.world.calls().iter().all(|c| c.op == "create"),
        "adopting what matches makes no call"
    );
    let snap = h.snapshot().await;
    let (db_state, cache_state) = (
        snap.get(&"db".parse().unwrap()).unwrap(),
        snap.get(&"cache".parse().unwrap()).unwrap(),
    );
    for r in [db_state, cache_state] {
        assert!(!r.options.imported && !r.options.protect, "{:?}", r.options);
    }
    assert!(db_state.options.retain_on_delete && !cache_state.options.retain_on_delete);
    let (plan, report) = h
        .apply(|s, p| {
            declared(s, p)?;
            s.add("db", FakeResource::new(p).set("name", "db"))?;
            s.add("new", FakeResource::new(p).set("name", "new"))?;
            Ok(())
        })
        .await;
    assert!(report.succeeded());
    assert_eq!(ops(&plan).last().unwrap(), &("cache".into(), Op::Delete));
    assert!(h.world.objects().iter().all(|o| o.id != cache));
}

#[tokio::test]
async fn a_lookup_is_read_on_every_plan_never_changed_and_feeds_its_outputs() {
    use spar::testing::FakeLookup;
    let h = Harness::new();
    let outside = h.world.insert(
        "fake:Thing",
        "made-elsewhere",
        json!({"name": "shared-vpc", "cidr": "10.0.0.0/16"}),
    );
    let program = |s: &mut spar::Stack, p: &Arc<FakeProvider>| {
        let vpc = s.lookup("net/vpc", FakeLookup::new(p).matching("name", "shared-vpc"))?;
        s.add(
            "subnet",
            FakeResource::new(p).set("name", "subnet").set_output("vpc", &vpc.arn()),
        )?;
        Ok(())
    };
    let plan = h.plan(program).await;
    assert_eq!(
        ops(&plan),
        vec![("net/vpc".into(), Op::Read), ("subnet".into(), Op::Create)]
    );
    let vpc = plan.get(&"net/vpc".parse().unwrap()).unwrap();
    assert_eq!(vpc.id.as_deref(), Some(outside.as_str()));
    assert_eq!(plan.summary().read, 1);
    let text = spar::plan::render::text(&plan, spar::plan::render::Style { color: false });
    assert!(
        text.contains("<= vpc") && text.contains("(read, not managed)"),
        "{text}"
    );
    assert!(
        text.contains("Plan: 1 to create, 0 to update, 0 to replace, 0 to delete. 1 read."),
        "{text}"
    );
    // The dependent gets the looked-up object's output, known at plan time.
    let subnet = plan.get(&"subnet".parse().unwrap()).unwrap();
    assert_eq!(
        subnet.after.as_ref().unwrap()["vpc"],
        json!(format!("arn:fake:fake:Thing:{outside}"))
    );

    h.world.clear_calls();
    let (_, report) = h.apply(program).await;
    assert!(report.succeeded());
    let calls = h.world.calls();
    assert!(
        !calls
            .iter()
            .any(|c| c.address.as_str() == "net/vpc" && !matches!(c.op, "lookup" | "read")),
        "a lookup is never created, updated or deleted: {calls:#?}"
    );
    assert_eq!(
        h.world.object_at("subnet")[0].inputs["vpc"],
        json!(format!("arn:fake:fake:Thing:{outside}"))
    );
    let stored = h.snapshot().await;
    assert!(stored.get(&"net/vpc".parse().unwrap()).unwrap().options.lookup);

    // Read again on every plan: a change outside shows at once, as an update of the user.
    h.world.tamper(&outside, |i| i["cidr"] = json!("10.9.0.0/16"));
    let plan = h.plan(program).await;
    assert!(!plan.has_changes(), "reading is not a change");
    // Not a change for --detailed-exitcode or has_changes, and an empty apply leaves the
    // object alone; destroy forgets the lookup without deleting the object.
    h.world.clear_calls();
    let (plan, report) = h.destroy().await;
    assert!(report.succeeded());
    assert_eq!(ops(&plan), vec![("subnet".into(), Op::Delete)]);
    assert!(h.world.calls().iter().all(|c| c.address.as_str() != "net/vpc"));
    assert!(
        h.world.objects().iter().any(|o| o.id == outside),
        "the looked-up object stays"
    );
    assert!(h.snapshot().await.resources.is_empty(), "and is forgotten");
}

/// A check over what a lookup read (an object outside the program, which `define` cannot
/// see) runs when planning: it passes while the object holds, stops the plan and the apply
/// (nothing changed) once the object outside changes, is a warning when waived, and does
/// not run for a destroy.
#[tokio::test]
async fn a_lookup_check_judges_what_was_read_and_stops_the_plan_unless_waived() {
    use spar::model::checks::Check;
    use spar::testing::FakeLookup;
    let h = Harness::new();
    let outside = h.world.insert(
        "fake:Thing",
        "made-elsewhere",
        json!({"name": "shared-vpc", "cidr": "10.0.0.0/16"}),
    );
    let program = |s: &mut spar::Stack, p: &Arc<FakeProvider>| {
        let vpc = s.lookup("vpc", FakeLookup::new(p).matching("name", "shared-vpc"))?;
        let at = vpc.address().clone();
        s.add("subnet", FakeResource::new(p).set("name", "subnet"))?;
        s.check_lookups("vpc-size", "the shared VPC is a /16", move |read| {
            let cidr = read.inputs(&at)["cidr"].as_str().unwrap_or("none").to_string();
            let failures = if cidr.ends_with("/16") {
                Vec::new()
            } else {
                vec![format!("the VPC `vpc` is {cidr}, not a /16")]
            };
            Check::new("", "")
                .failures(failures)
                .evidence(vec![format!("vpc is {cidr}")])
        });
        Ok(())
    };
    let plan = h.plan(program).await;
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);

    h.world.tamper(&outside, |i| i["cidr"] = json!("10.0.0.0/24"));
    let err = h
        .session(program)
        .unwrap()
        .plan(&PlanOptions::default(), false)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("check `vpc-size` failed: the VPC `vpc` is 10.0.0.0/24, not a /16")
            && err.contains("--waive vpc-size"),
        "{err}"
    );
    let applied = h
        .session(program)
        .unwrap()
        .apply_program(&PlanOptions::default(), &ExecuteOptions::default())
        .await;
    assert!(applied.is_err(), "the apply is refused");
    assert!(h.world.object_at("subnet").is_empty(), "and changed nothing");

    let mut waived = h.session(program).unwrap();
    waived.waived = vec!["vpc-size".into()];
    let plan = waived.plan(&PlanOptions::default(), false).await.unwrap();
    assert_eq!(
        plan.warnings,
        ["check `vpc-size` is waived: the VPC `vpc` is 10.0.0.0/24, not a /16"]
    );
    let (_, report) = waived
        .apply_program(&PlanOptions::default(), &ExecuteOptions::default())
        .await
        .unwrap();
    assert!(report.succeeded());
    // A destroy reads no lookups, so the (unwaived) check does not stand in its way.
    let destroy = PlanOptions {
        destroy: true,
        ..Default::default()
    };
    let (plan, report) = h.apply_with(program, &destroy, &ExecuteOptions::default()).await;
    assert!(report.succeeded(), "{plan:?}");
    assert!(h.world.object_at("subnet").is_empty());
}

#[tokio::test]
async fn a_lookup_matching_nothing_or_several_fails_the_plan_naming_it() {
    use spar::testing::FakeLookup;
    let h = Harness::new();
    h.world.insert("fake:Thing", "x1", json!({"name": "dup"}));
    h.world.insert("fake:Thing", "x2", json!({"name": "dup"}));
    for (name, says) in [
        (
            "none-such",
            "lookup `vpc` (fake:Thing) found nothing matching {\"name\":\"none-such\"}",
        ),
        (
            "dup",
            "lookup `vpc` (fake:Thing) found 2 objects matching {\"name\":\"dup\"}",
        ),
    ] {
        let err = h
            .session(move |s, p| {
                s.lookup("vpc", FakeLookup::new(p).matching("name", name))?;
                Ok(())
            })
            .unwrap()
            .plan(&PlanOptions::default(), false)
            .await
            .unwrap_err();
        assert!(err.to_string().contains(says), "{err}");
    }
    // A query using what exists only after apply cannot be read at plan time.
    let err = h
        .session(|s, p| {
            let a = s.add("a", FakeResource::new(p).set("name", "a"))?;
            s.lookup("vpc", FakeLookup::new(p).matching_output("name", &a.arn()))?;
            Ok(())
        })
        .unwrap()
        .plan(&PlanOptions::default(), false)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("lookup `vpc` uses values known only after apply (of `a`)"),
        "{err}"
    );
    assert!(h.snapshot().await.resources.is_empty());
}

#[tokio::test]
async fn a_set_lookup_reads_every_match_none_or_many_and_its_ids_feed_resources() {
    use spar::model::checks::Check;
    use spar::testing::FakeLookup;
    let h = Harness::new();
    let a = h.world.insert(
        "fake:Thing",
        "made-elsewhere/a",
        json!({"tier": "private", "cidr": "10.0.0.0/20"}),
    );
    let b = h.world.insert(
        "fake:Thing",
        "made-elsewhere/b",
        json!({"tier": "private", "cidr": "10.0.16.0/20"}),
    );
    h.world.insert(
        "fake:Thing",
        "made-elsewhere/c",
        json!({"tier": "public", "cidr": "10.0.32.0/20"}),
    );
    let program = |s: &mut spar::Stack, p: &Arc<FakeProvider>| {
        let private = s.lookup_all("private", FakeLookup::new(p).matching("tier", "private"))?;
        s.lookup_all("none", FakeLookup::new(p).matching("tier", "isolated"))?;
        s.add(
            "peer",
            FakeResource::new(p)
                .set("name", "peer")
                .set_output("members", &private.ids()),
        )?;
        let at = private.address().clone();
        s.check_lookups("private-cidrs", "every private subnet is a /20", move |read| {
            let items = read.items(&at);
            let failures = items
                .iter()
                .filter(|i| !i.inputs["cidr"].as_str().unwrap_or("").ends_with("/20"))
                .map(|i| format!("{} is {}", i.id, i.inputs["cidr"]))
                .collect();
            Check::new("", "")
                .failures(failures)
                .evidence(vec![format!("{} private subnets", items.len())])
        });
        Ok(())
    };
    let (plan, report) = h.apply(program).await;
    assert!(report.succeeded(), "{plan:?}");
    let read = plan.changes.iter().find(|c| c.address.as_str() == "private").unwrap();
    assert_eq!(read.op, Op::Read);
    assert_eq!(read.id.as_deref(), Some("2 found"));
    let none = plan.changes.iter().find(|c| c.address.as_str() == "none").unwrap();
    assert_eq!((none.op, none.id.as_deref()), (Op::Read, Some("0 found")));
    assert_eq!(none.read.as_ref().unwrap()["ids"], json!([]));
    // Only what matched, in id order, reached the resource that uses the ids.
    let mut both = vec![a.clone(), b.clone()];
    both.sort();
    assert_eq!(h.world.object_at("peer")[0].inputs["members"], json!(both));
    let snap = h.snapshot().await;
    let recorded = snap.get(&"private".parse().unwrap()).unwrap();
    assert!(recorded.options.lookup);
    assert_eq!(recorded.outputs["count"], json!(2));
    assert!(
        h.world.object_at("made-elsewhere/a")[0].inputs["tier"] == "private",
        "never changed"
    );

    // A third match appears outside spar: the next plan reads it and updates the user.
    let c = h.world.insert(
        "fake:Thing",
        "made-elsewhere/d",
        json!({"tier": "private", "cidr": "10.0.48.0/20"}),
    );
    let plan = h.plan(program).await;
    let peer = plan.changes.iter().find(|c| c.address.as_str() == "peer").unwrap();
    assert_eq!(peer.op, Op::Update, "{plan:?}");
    // What the check sees is each object read: a bad one fails the plan naming it.
    h.world.tamper(&c, |i| i["cidr"] = json!("10.0.48.0/24"));
    let err = h
        .session(program)
        .unwrap()
        .plan(&PlanOptions::default(), false)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("check `private-cidrs` failed: {c} is \"10.0.48.0/24\"")),
        "{err}"
    );
    // A destroy reads nothing and removes only what spar made.
    let (plan, report) = h.destroy().await;
    assert!(report.succeeded(), "{plan:?}");
    assert!(h.world.object_at("peer").is_empty());
    assert_eq!(h.world.objects().len(), 4, "the looked-up objects stay");
    assert!(h.snapshot().await.resources.is_empty());
}

#[test]
fn a_set_read_is_the_same_whatever_order_the_kind_lists_its_matches_in() {
    use spar::provider::ReadResult;
    let one = |id: &str| ReadResult {
        id: id.into(),
        inputs: json!({"n": id}),
        outputs: json!({"arn": format!("arn:{id}")}),
    };
    let forward = ReadResult::set(vec![one("a"), one("b"), one("c")]);
    let backward = ReadResult::set(vec![one("c"), one("b"), one("a")]);
    assert_eq!(forward, backward);
    assert_eq!(forward.outputs["ids"], json!(["a", "b", "c"]));
    let items = forward.items();
    assert_eq!(items.len(), 3);
    assert_eq!(
        (items[1].id.as_str(), &items[1].inputs, &items[1].outputs),
        ("b", &json!({"n": "b"}), &json!({"arn": "arn:b"}))
    );
}

#[tokio::test]
async fn every_mistake_of_a_program_is_named_in_one_run() {
    let h = Harness::new();
    let err = h
        .session(|s, p| {
            let a = s.add("a", FakeResource::new(p).set("name", "a"))?;
            s.add("a", FakeResource::new(p).set("name", "again"))?;
            s.add_with(
                "b",
                FakeResource::new(p).set("name", "b"),
                ResourceOptions::new().depends_on(&"ghost".parse().unwrap()),
            )?;
            s.add_with(
                "c",
                FakeResource::new(p).set_output("x", &a.arn()),
                ResourceOptions::new().alias("a"),
            )?;
            s.add_with(
                "d",
                FakeResource::new(p).set("name", "d"),
                ResourceOptions::new().depends_on(&"phantom".parse().unwrap()),
            )?;
            Ok(())
        })
        .err()
        .expect("refused");
    let text = err.to_string();
    assert!(
        text.starts_with("4 problems in the program: (1) two resources are declared at address `a`"),
        "{text}"
    );
    for part in [
        "`b` references `ghost`",
        "`c` has the alias `a`, but the program still declares `a`",
        "`d` references `phantom`",
    ] {
        assert!(text.contains(part), "{part} in {text}");
    }
}

#[tokio::test]
async fn a_delete_that_finds_the_object_gone_is_done() {
    let world = FakeWorld::new();
    let provider = FakeProvider::new("fake:Thing", world.clone()).on_delete(|a, _| {
        if a.as_str() == "b" {
            Err(ProviderError::NotFound(format!("{a}: no such thing")))
        } else {
            Ok(())
        }
    });
    let h = Harness::with_provider(provider, world);
    h.apply(|s, p| {
        s.add("a", FakeResource::new(p).set("name", "a"))?;
        s.add("b", FakeResource::new(p).set("name", "b"))?;
        Ok(())
    })
    .await;
    let (_, report) = h
        .apply(|s, p| {
            s.add("a", FakeResource::new(p).set("name", "a"))?;
            Ok(())
        })
        .await;
    assert!(report.succeeded(), "{report:?}");
    assert!(h.snapshot().await.get(&"b".parse().unwrap()).is_none());
}
