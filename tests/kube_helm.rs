//! Helm charts against the in-process API simulator, rendered by `sandbox/helm/helm-template`
//! (the real Helm engine): every rendered object applied and tracked by spar (CRD before its
//! custom resource, release namespace created), no changes and no drift on a second look, drift
//! per object after an out-of-band deletion and its repair, values changed (the plan shows
//! each changed value with its old and new value, a secret one redacted; objects updated and
//! one pruned), Helm's own error for invalid values, and removal of everything.
#![cfg(feature = "kubernetes")]

#[path = "support/kube.rs"]
mod kube_support;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::discovery::ApiResource;
use kube_support::{KubeEnv, Recorder, failures};
use serde_json::{Value, json};
use spar::kubernetes::{Chart, KubeProvider};
use spar::plan::Op;
use std::sync::Arc;

fn root() -> String {
    env!("CARGO_MANIFEST_DIR").to_string()
}

type Program = Box<dyn FnOnce(&mut spar::Stack, &spar::Handle<KubeProvider>) -> spar::Result<()>>;

fn program(values: Value) -> Program {
    chart(values, false)
}

fn chart(values: Value, force: bool) -> Program {
    Box::new(move |s, p| {
        let mut c = Chart::new(p, &format!("{}/tests/charts/spar-demo", root()), "demo", "demo-ns")
            .helm(&format!("{}/sandbox/helm/helm-template", root()))
            .create_namespace();
        if force {
            c = c.force();
        }
        s.add("demo", c.values(values))?;
        Ok(())
    })
}

fn gadgets(env: &KubeEnv) -> Api<DynamicObject> {
    let ar = ApiResource {
        group: "example.com".into(),
        version: "v1".into(),
        api_version: "example.com/v1".into(),
        kind: "Gadget".into(),
        plural: "gadgets".into(),
    };
    Api::namespaced_with(env.client.clone(), "demo-ns", &ar)
}

#[tokio::test]
async fn chart_objects_are_applied_tracked_pruned_and_deleted() {
    let env = KubeEnv::start_with(std::time::Duration::from_millis(300)).await;
    let v1 = json!({"greeting": "hello", "replicas": 2, "gadgetSize": 3, "extra": true});
    let (_, report) = env.apply(program(v1.clone())).await;
    assert!(report.succeeded(), "{:?}", failures(&report));

    let cms: Api<ConfigMap> = Api::namespaced(env.client.clone(), "demo-ns");
    assert_eq!(
        cms.get("demo-settings").await.unwrap().data.unwrap()["greeting"],
        "hello"
    );
    assert!(cms.get_opt("demo-extra").await.unwrap().is_some());
    let deps: Api<Deployment> = Api::namespaced(env.client.clone(), "demo-ns");
    assert_eq!(
        deps.get("demo-web").await.unwrap().status.unwrap().available_replicas,
        Some(2),
        "the chart's workloads were awaited"
    );
    assert_eq!(
        gadgets(&env).get("demo-gadget").await.unwrap().data["spec"]["size"],
        json!(3)
    );
    let snap = env.snapshot().await;
    let release = snap.get(&"demo".parse().unwrap()).unwrap();
    assert_eq!(release.id, "demo-ns/demo");
    let ids: Vec<String> = release.outputs["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| format!("{}/{}", o["kind"].as_str().unwrap(), o["name"].as_str().unwrap()))
        .collect();
    assert_eq!(ids[0], "Namespace/demo-ns");
    assert_eq!(ids[1], "CustomResourceDefinition/gadgets.example.com");
    assert_eq!(ids.len(), 7, "{ids:?}");

    // A second look: no changes, no drift (server defaults are not drift).
    let plan = env.plan(program(v1.clone())).await;
    assert!(!plan.has_changes());
    let refreshed = env.refresh(program(v1.clone())).await;
    assert!(refreshed.drifted.is_empty(), "{:?}", refreshed.drifted);
    assert!(refreshed.errors.is_empty(), "{:?}", refreshed.errors);

    // Out-of-band: one object deleted. Drift names it; the next apply puts it back.
    cms.delete("demo-settings", &Default::default()).await.unwrap();
    let refreshed = env.refresh(program(v1.clone())).await;
    assert_eq!(refreshed.drifted.len(), 1, "{:?}", refreshed.drifted);
    let changes = &refreshed.drifted[0].1;
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0].path.to_string(), "drift");
    assert_eq!(
        changes[0].after,
        Some(json!({"v1:ConfigMap:demo-ns/demo-settings": "missing"})),
        "{changes:?}"
    );
    let (plan, report) = env.apply(program(v1.clone())).await;
    assert_eq!(plan.get(&"demo".parse().unwrap()).unwrap().op, Op::Update);
    assert!(report.succeeded(), "{:?}", failures(&report));
    assert!(cms.get_opt("demo-settings").await.unwrap().is_some());

    // New values: objects updated in place, the object that left the rendering pruned; the
    // plan says which object goes (and, the other way round, which one would come back).
    let v2 = json!({"greeting": "hi", "replicas": 1, "gadgetSize": 4, "extra": false});
    let preview = env.plan(program(v2.clone())).await;
    let change = preview.get(&"demo".parse().unwrap()).unwrap();
    assert_eq!(change.op, Op::Update);
    let notes = &change.notes;
    assert_eq!(
        notes,
        &vec!["- prunes v1 ConfigMap demo-ns/demo-extra".to_string()],
        "{notes:?}"
    );
    // The values that changed, property by property, each with its old and new value (and
    // nothing else: the provider connection, release and chart are the same).
    let props: Vec<(String, Option<Value>, Option<Value>)> = change
        .properties
        .iter()
        .map(|p| (p.path.to_string(), p.before.clone(), p.after.clone()))
        .collect();
    assert_eq!(
        props,
        vec![
            ("values.extra".to_string(), Some(json!(true)), Some(json!(false))),
            ("values.gadgetSize".to_string(), Some(json!(3)), Some(json!(4))),
            ("values.greeting".to_string(), Some(json!("hello")), Some(json!("hi"))),
            ("values.replicas".to_string(), Some(json!(2)), Some(json!(1))),
        ],
        "{props:?}"
    );
    assert!(change.replace_paths.is_empty(), "{:?}", change.replace_paths);
    let text = spar::plan::render::text(&preview, spar::plan::render::Style { color: false });
    assert!(text.contains("~ demo  kubernetes:Chart"), "{text}");
    assert!(text.contains("values.greeting: \"hello\" -> \"hi\""), "{text}");
    assert!(text.contains("values.replicas: 2 -> 1"), "{text}");
    assert!(text.contains("values.gadgetSize: 3 -> 4"), "{text}");
    assert!(text.contains("values.extra: true -> false"), "{text}");
    assert!(text.contains("# - prunes v1 ConfigMap demo-ns/demo-extra"), "{text}");
    assert!(
        text.contains("Plan: 0 to create, 1 to update, 0 to replace, 0 to delete."),
        "{text}"
    );
    let (plan, report) = env.apply(program(v2.clone())).await;
    assert_eq!(plan.get(&"demo".parse().unwrap()).unwrap().op, Op::Update);
    assert!(report.succeeded(), "{:?}", failures(&report));
    assert_eq!(cms.get("demo-settings").await.unwrap().data.unwrap()["greeting"], "hi");
    assert!(cms.get_opt("demo-extra").await.unwrap().is_none(), "pruned");
    let back = env.plan(program(v1.clone())).await;
    let notes = &back.get(&"demo".parse().unwrap()).unwrap().notes;
    assert_eq!(notes, &vec!["+ adds v1 ConfigMap demo-extra".to_string()], "{notes:?}");
    assert_eq!(
        gadgets(&env).get("demo-gadget").await.unwrap().data["spec"]["size"],
        json!(4)
    );

    // Another field manager changes a field spar set (and adds one): drift names that field;
    // re-applying conflicts (reported), forcing takes the field back.
    cms.patch(
        "demo-settings",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"greeting": "tampered"}, "metadata": {"labels": {"other": "x"}}})),
    )
    .await
    .unwrap();
    let refreshed = env.refresh(program(v2.clone())).await;
    assert_eq!(refreshed.drifted.len(), 1, "{:?}", refreshed.drifted);
    let drift = refreshed.drifted[0].1[0].after.clone().unwrap();
    assert_eq!(
        drift,
        json!({"v1:ConfigMap:demo-ns/demo-settings": ["data.greeting"]}),
        "only spar's fields"
    );
    let (_, report) = env.apply(program(v2.clone())).await;
    let msgs = failures(&report);
    assert!(
        msgs.len() == 1 && msgs[0].contains("conflict") && msgs[0].contains(".data.greeting"),
        "{msgs:?}"
    );
    let (_, report) = env.apply(chart(v2.clone(), true)).await;
    assert!(report.succeeded(), "{:?}", failures(&report));
    assert_eq!(cms.get("demo-settings").await.unwrap().data.unwrap()["greeting"], "hi");
    let refreshed = env.refresh(chart(v2.clone(), true)).await;
    assert!(refreshed.drifted.is_empty(), "{:?}", refreshed.drifted);

    // Invalid values: Helm's own message, nothing changed.
    let (_, report) = env.apply(program(json!({"replicas": -1}))).await;
    let msgs = failures(&report);
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert!(msgs[0].contains("helm-template template demo"), "{}", msgs[0]);
    assert!(msgs[0].contains("minimum: got -1, want 0"), "{}", msgs[0]);
    assert_eq!(cms.get("demo-settings").await.unwrap().data.unwrap()["greeting"], "hi");

    // Destroy: every object, the custom resource before its CRD, the namespace last.
    let rec = Arc::new(Recorder::default());
    let (_, report) = env.destroy(rec.clone()).await;
    assert!(report.succeeded(), "{:?}", failures(&report));
    let lines = rec.lines();
    let pos = |needle: &str| {
        lines
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle} in {lines:#?}"))
    };
    assert!(
        pos("deleting example.com/v1:Gadget:demo-ns/demo-gadget")
            < pos("deleting apiextensions.k8s.io/v1:CustomResourceDefinition")
    );
    assert!(pos("deleting apiextensions.k8s.io/v1:CustomResourceDefinition") < pos("deleting v1:Namespace:demo-ns"));
    let nss: Api<Namespace> = Api::all(env.client.clone());
    assert!(nss.get_opt("demo-ns").await.unwrap().is_none());
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(env.client.clone());
    assert!(crds.get_opt("gadgets.example.com").await.unwrap().is_none());
    env.sim.shutdown().await;
}

#[tokio::test]
async fn chart_values_may_hold_secrets() {
    let env = KubeEnv::start().await;
    let secret = serde_json::to_value(spar::Secret::new("s3cr3t-greeting".to_string())).unwrap();
    let values = json!({"greeting": secret, "extra": false});
    let (_, report) = env.apply(program(values.clone())).await;
    assert!(report.succeeded(), "{:?}", failures(&report));
    let cms: Api<ConfigMap> = Api::namespaced(env.client.clone(), "demo-ns");
    assert_eq!(
        cms.get("demo-settings").await.unwrap().data.unwrap()["greeting"],
        "s3cr3t-greeting"
    );
    let plan = env.plan(program(values.clone())).await;
    assert!(!plan.has_changes());
    let refreshed = env.refresh(program(values)).await;
    assert!(refreshed.drifted.is_empty(), "{:?}", refreshed.drifted);
    // A changed secret value is a property change shown redacted on both sides.
    let other = serde_json::to_value(spar::Secret::new("other-s3cr3t".to_string())).unwrap();
    let plan = env.plan(program(json!({"greeting": other, "extra": false}))).await;
    let change = plan.get(&"demo".parse().unwrap()).unwrap();
    assert_eq!(change.op, Op::Update);
    let paths: Vec<String> = change.properties.iter().map(|p| p.path.to_string()).collect();
    assert_eq!(paths, vec!["values.greeting".to_string()]);
    let text = spar::plan::render::text(&plan, spar::plan::render::Style { color: false });
    assert!(
        text.contains("values.greeting: (sensitive value) -> (sensitive value)"),
        "{text}"
    );
    assert!(!text.contains("s3cr3t"), "{text}");
    let json = spar::plan::render::json(&plan).to_string();
    assert!(!json.contains("s3cr3t"), "{json}");
    let mut stack = vec![env.dir.path().to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                let text = String::from_utf8_lossy(&std::fs::read(e.path()).unwrap()).into_owned();
                assert!(
                    !text.contains("s3cr3t-greeting"),
                    "{} holds the secret",
                    e.path().display()
                );
            }
        }
    }
    env.sim.shutdown().await;
}
