//! `import --file` against the Kubernetes simulator: an object made directly (as kubectl
//! would) is adopted from an imports file, recorded protected, and given the declaration of
//! its live manifest; the next apply of a program without it refuses to delete it, and the
//! program holding the printed declaration adopts the same object (same uid). Its own test
//! binary: the connection an import reads with comes from `SPAR_KUBE_SANDBOX_URL`, which is
//! process-wide.
#![cfg(feature = "kubernetes")]

#[path = "support/kube.rs"]
mod kube_support;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use kube_support::{KubeEnv, failures};
use serde_json::json;
use spar::Stack;
use spar::apply::ExecuteOptions;
use spar::kubernetes::{self, KubeProvider};
use spar::model::config::StackConfig;
use spar::ops::Session;
use spar::plan::Op;
use spar::plan::diff::PlanOptions;

fn session(env: &KubeEnv, define: impl FnOnce(&mut Stack) -> spar::Result<()>) -> Session {
    let mut stack = Stack::new("kube-test", "dev", StackConfig::empty(env.dir.path().join("dev.toml")));
    define(&mut stack).unwrap();
    let (graph, registry) = stack.into_graph().unwrap();
    Session {
        program: "kube-test".into(),
        stack: "dev".into(),
        graph,
        registry,
        store: env.store(),
        lookup_checks: Vec::new(),
        waived: Vec::new(),
    }
}

#[tokio::test]
async fn an_object_made_outside_is_imported_from_a_file_declared_and_guarded() {
    let env = KubeEnv::start().await;
    // SAFETY: this binary's only test; nothing else reads the environment concurrently.
    unsafe { std::env::set_var(kubernetes::connection::SANDBOX_ENV, env.url()) };
    let cms: Api<ConfigMap> = Api::namespaced(env.client.clone(), "default");
    let made = cms
        .create(
            &Default::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "outside", "labels": {"app": "web"}},
                "data": {"mode": "fast"},
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    let uid = made.metadata.uid.clone().unwrap();

    let file = env.dir.path().join("imports.toml");
    std::fs::write(
        &file,
        "[[import]]\nkind = \"kubernetes:Object\"\naddress = \"app/settings\"\nid = \"v1:ConfigMap:default/outside\"\n",
    )
    .unwrap();
    let entries = spar::ops::import::parse_imports(&std::fs::read_to_string(&file).unwrap(), "imports.toml").unwrap();
    let empty = |_: &mut Stack| Ok(());
    let importer = session(&env, empty);
    let adopted = importer.import_many(&entries, 4).await.unwrap();

    // State: the live manifest without server fields, protected until declared.
    let snap = env.snapshot().await;
    let r = snap.get(&"app/settings".parse().unwrap()).unwrap();
    assert_eq!(r.id, "v1:ConfigMap:default/outside");
    assert_eq!(r.inputs["manifest"]["data"], json!({"mode": "fast"}));
    assert!(r.inputs["manifest"]["metadata"].get("uid").is_none());
    assert!(r.options.protect && r.options.imported);

    // The declaration printed for it.
    let decls = spar::ops::import::declarations(&importer.registry, &adopted);
    assert_eq!(decls.len(), 1);
    assert_eq!(decls[0].component, "app");
    assert_eq!(
        decls[0].code.as_deref().unwrap(),
        r#"stack.add("settings", kubernetes::Object::dynamic(&provider, json!({
    "apiVersion": "v1",
    "data": {
        "mode": "fast",
    },
    "kind": "ConfigMap",
    "metadata": {
        "labels": {
            "app": "web",
        },
        "name": "outside",
        "namespace": "default",
    },
})))?;"#
    );

    // The next apply of a program without it refuses and deletes nothing.
    let err = session(&env, empty)
        .apply_program(&PlanOptions::default(), &ExecuteOptions::default())
        .await
        .expect_err("refused");
    assert!(
        err.to_string()
            .contains("`app/settings` was imported and is protected until the program declares it"),
        "{err}"
    );
    assert_eq!(cms.get("outside").await.unwrap().metadata.uid.unwrap(), uid);
    assert_eq!(env.snapshot().await, snap, "state unchanged");

    // The program holding the printed declaration (with its provider) adopts the same object.
    let declared = |stack: &mut Stack| {
        let provider = stack.add("k8s", KubeProvider::default_kubeconfig())?;
        stack.component("app", |stack| {
            stack.add(
                "settings",
                kubernetes::Object::dynamic(
                    &provider,
                    json!({
                        "apiVersion": "v1",
                        "data": {
                            "mode": "fast",
                        },
                        "kind": "ConfigMap",
                        "metadata": {
                            "labels": {
                                "app": "web",
                            },
                            "name": "outside",
                            "namespace": "default",
                        },
                    }),
                ),
            )?;
            Ok(())
        })
    };
    let (plan, report) = session(&env, declared)
        .apply_program(&PlanOptions::default(), &ExecuteOptions::default())
        .await
        .unwrap();
    assert!(report.succeeded(), "{:?}", failures(&report));
    let ops: Vec<(String, Op)> = plan.changes.iter().map(|c| (c.address.to_string(), c.op)).collect();
    assert!(
        ops.contains(&("k8s".into(), Op::Create))
            && ops
                .iter()
                .any(|(a, op)| a == "app/settings" && matches!(op, Op::Same | Op::Update)),
        "{ops:?}"
    );
    let live = cms.get("outside").await.unwrap();
    assert_eq!(live.metadata.uid.unwrap(), uid, "the same object, not a new one");
    assert_eq!(live.data.unwrap()["mode"], "fast");
    let r = env
        .snapshot()
        .await
        .get(&"app/settings".parse().unwrap())
        .unwrap()
        .clone();
    assert!(!r.options.protect && !r.options.imported);
    // Once the provider exists, the declaration plans no change at all.
    let plan = session(&env, declared)
        .plan(&PlanOptions::default(), false)
        .await
        .unwrap();
    assert!(plan.changes.iter().all(|c| c.op == Op::Same), "{:?}", plan.changes);
    env.sim.shutdown().await;
}
