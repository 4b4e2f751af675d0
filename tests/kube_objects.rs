//! Kubernetes objects against the in-process API simulator: every operation (create, read,
//! update, replace, delete), drift after an out-of-band change, a server-side apply conflict
//! reported then forced, a CRD and its custom resource in one apply, deletion order,
//! readiness waits (and their timeout), an invalid object rejected with the server's words,
//! and each delete propagation policy as the server carries it out.
#![cfg(feature = "kubernetes")]

#[path = "support/kube.rs"]
mod kube_support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetSpec, Deployment, DeploymentSpec, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Container, PodSpec, PodTemplateSpec, Secret as KSecret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::discovery::ApiResource;
use kube_support::{KubeEnv, Recorder, failures};
use serde_json::json;
use spar::kubernetes::{self, Object, Propagation};
use spar::plan::Op;
use spar::{ResourceOptions, Secret};

fn ops(plan: &spar::plan::Plan) -> Vec<(String, Op)> {
    plan.changes.iter().map(|c| (c.address.to_string(), c.op)).collect()
}

fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn widget_crd() -> serde_json::Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                 "versions": [{"name": "v1", "served": true, "storage": true,
                               "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                                   "spec": {"type": "object", "properties": {"size": {"type": "integer"}}}}}}}]}
    })
}

fn labels(app: &str) -> BTreeMap<String, String> {
    data(&[("app", app)])
}

fn pod_template(app: &str) -> PodTemplateSpec {
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(labels(app)),
            ..Default::default()
        }),
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "main".into(),
                image: Some("registry.dagger.io/engine:v0.21.8".into()),
                ..Default::default()
            }],
            ..Default::default()
        }),
    }
}

#[tokio::test]
async fn object_lifecycle_create_read_update_replace_delete() {
    let env = KubeEnv::start().await;
    let program = |cm_name: &'static str, cm_data: BTreeMap<String, String>, with_cm: bool| {
        move |s: &mut spar::Stack, p: &spar::Handle<kubernetes::KubeProvider>| {
            let ns = s.add("ns", kubernetes::namespace(p, "app"))?;
            s.add(
                "sa",
                kubernetes::service_account(p, None, "runner").namespace(ns.name()),
            )?;
            s.add(
                "token",
                kubernetes::secret(p, None, "token")
                    .namespace(ns.name())
                    .data("value", &Secret::new("hunter2-very-secret".to_string())),
            )?;
            if with_cm {
                s.add(
                    "settings",
                    kubernetes::config_map(p, None, cm_name, cm_data).namespace(ns.name()),
                )?;
            }
            Ok(())
        }
    };

    // Before anything exists the plan is creates only (the provider included).
    let plan = env
        .plan(program("settings", data(&[("a", "1"), ("b", "2")]), true))
        .await;
    assert!(plan.changes.iter().all(|c| c.op == Op::Create), "{:?}", ops(&plan));
    assert_eq!(plan.changes.len(), 5);

    let (_, report) = env
        .apply(program("settings", data(&[("a", "1"), ("b", "2")]), true))
        .await;
    assert!(report.succeeded(), "{:?}", failures(&report));
    let cms: Api<ConfigMap> = Api::namespaced(env.client.clone(), "app");
    let cm = cms.get("settings").await.unwrap();
    assert_eq!(cm.data.unwrap(), data(&[("a", "1"), ("b", "2")]));
    let secrets: Api<KSecret> = Api::namespaced(env.client.clone(), "app");
    let s = secrets.get("token").await.unwrap();
    assert_eq!(s.data.unwrap()["value"].0, b"hunter2-very-secret");
    let snap = env.snapshot().await;
    let id = &snap.get(&"settings".parse().unwrap()).unwrap().id;
    assert_eq!(id, "v1:ConfigMap:app/settings");
    // The secret's value is never in state in the clear.
    assert_no_plaintext(env.dir.path());

    // Unchanged program: nothing to do, and reading the live objects finds no drift.
    let plan = env
        .plan(program("settings", data(&[("a", "1"), ("b", "2")]), true))
        .await;
    assert!(!plan.has_changes(), "{:?}", ops(&plan));
    let refreshed = env
        .refresh(program("settings", data(&[("a", "1"), ("b", "2")]), true))
        .await;
    assert!(refreshed.drifted.is_empty(), "{:?}", refreshed.drifted);
    assert!(refreshed.errors.is_empty(), "{:?}", refreshed.errors);
    assert_eq!(refreshed.read, 5);
    assert_no_plaintext(env.dir.path());

    // Update in place: a changed value and a removed key (server-side apply removes it).
    let plan = env.plan(program("settings", data(&[("a", "10")]), true)).await;
    assert_eq!(plan.get(&"settings".parse().unwrap()).unwrap().op, Op::Update);
    let (_, report) = env.apply(program("settings", data(&[("a", "10")]), true)).await;
    assert!(report.succeeded(), "{:?}", failures(&report));
    let cm = cms.get("settings").await.unwrap();
    assert_eq!(cm.data.unwrap(), data(&[("a", "10")]));
    let uid = cm.metadata.uid.unwrap();

    // Rename: a replacement (new object, old one gone).
    let plan = env.plan(program("settings-v2", data(&[("a", "10")]), true)).await;
    let change = plan.get(&"settings".parse().unwrap()).unwrap();
    assert_eq!(change.op, Op::Replace);
    assert!(
        change
            .replace_paths
            .iter()
            .any(|p| p.to_string().contains("metadata.name"))
    );
    let (_, report) = env.apply(program("settings-v2", data(&[("a", "10")]), true)).await;
    assert!(report.succeeded(), "{:?}", failures(&report));
    assert!(cms.get_opt("settings").await.unwrap().is_none());
    let v2 = cms.get("settings-v2").await.unwrap();
    assert_ne!(v2.metadata.uid.unwrap(), uid);

    // Removed from the program: deleted.
    let (plan, report) = env.apply(program("settings-v2", data(&[]), false)).await;
    assert_eq!(plan.get(&"settings".parse().unwrap()).unwrap().op, Op::Delete);
    assert!(report.succeeded(), "{:?}", failures(&report));
    assert!(cms.get_opt("settings-v2").await.unwrap().is_none());

    // Out-of-band deletion: refresh finds it gone, the next apply makes it again.
    secrets.delete("token", &Default::default()).await.unwrap();
    let refreshed = env.refresh(program("settings-v2", data(&[]), false)).await;
    assert_eq!(refreshed.gone, vec!["token".parse().unwrap()]);
    let (plan, report) = env.apply(program("settings-v2", data(&[]), false)).await;
    assert_eq!(plan.get(&"token".parse().unwrap()).unwrap().op, Op::Create);
    assert!(report.succeeded(), "{:?}", failures(&report));
    assert!(secrets.get_opt("token").await.unwrap().is_some());

    // Destroy: everything goes, the namespace last.
    let rec = Arc::new(Recorder::default());
    let (_, report) = env.destroy(rec.clone()).await;
    assert!(report.succeeded(), "{:?}", failures(&report));
    assert!(rec.position(&["finish", "sa", "Done"]) < rec.position(&["start", "ns"]));
    assert!(rec.position(&["finish", "token", "Done"]) < rec.position(&["start", "ns"]));
    let nss: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(env.client.clone());
    assert!(nss.get_opt("app").await.unwrap().is_none());
    env.sim.shutdown().await;
}

fn assert_no_plaintext(dir: &std::path::Path) {
    for entry in walk(dir) {
        let text = String::from_utf8_lossy(&std::fs::read(&entry).unwrap()).into_owned();
        assert!(
            !text.contains("aHVudGVyMi12ZXJ5LXNlY3JldA==") && !text.contains("hunter2"),
            "{} holds the secret",
            entry.display()
        );
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test]
async fn drift_then_conflict_reported_then_forced() {
    let env = KubeEnv::start().await;
    let program = |force: bool| {
        move |s: &mut spar::Stack, p: &spar::Handle<kubernetes::KubeProvider>| {
            let mut cm = kubernetes::config_map(p, Some("default"), "settings", data(&[("a", "1")]));
            if force {
                cm = cm.force();
            }
            s.add("settings", cm)?;
            Ok(())
        }
    };
    let (_, report) = env.apply(program(false)).await;
    assert!(report.succeeded(), "{:?}", failures(&report));

    // Another field manager takes `data.a` over and adds a label of its own.
    let cms: Api<ConfigMap> = Api::namespaced(env.client.clone(), "default");
    cms.patch(
        "settings",
        &PatchParams::apply("intruder").force(),
        &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "settings", "labels": {"owner": "intruder"}}, "data": {"a": "2"}})),
    )
    .await
    .unwrap();

    // Drift is the changed field only (not the other manager's label, not server fields).
    let refreshed = env.refresh(program(false)).await;
    assert_eq!(refreshed.drifted.len(), 1, "{:?}", refreshed.drifted);
    let (address, changes) = &refreshed.drifted[0];
    assert_eq!(address.to_string(), "settings");
    let paths: Vec<String> = changes.iter().map(|c| c.path.to_string()).collect();
    assert_eq!(paths, vec!["manifest.data.a".to_string()], "{changes:?}");

    // Re-applying conflicts with the intruder: reported with the field and the way out.
    let (plan, report) = env.apply(program(false)).await;
    assert_eq!(plan.get(&"settings".parse().unwrap()).unwrap().op, Op::Update);
    let msgs = failures(&report);
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert!(msgs[0].contains("conflict with \"intruder\""), "{}", msgs[0]);
    assert!(msgs[0].contains(".data.a"), "{}", msgs[0]);
    assert!(msgs[0].contains("force"), "{}", msgs[0]);
    assert_eq!(cms.get("settings").await.unwrap().data.unwrap()["a"], "2");

    // With force spar takes the field back.
    let (_, report) = env.apply(program(true)).await;
    assert!(report.succeeded(), "{:?}", failures(&report));
    let cm = cms.get("settings").await.unwrap();
    assert_eq!(cm.data.unwrap()["a"], "1");
    assert_eq!(cm.metadata.labels.unwrap()["owner"], "intruder");
    let refreshed = env.refresh(program(true)).await;
    assert!(refreshed.drifted.is_empty(), "{:?}", refreshed.drifted);
    env.sim.shutdown().await;
}

#[tokio::test]
async fn crd_and_custom_resource_in_one_apply_then_deleted_in_order() {
    let env = KubeEnv::start().await;
    let program = |size: i64| {
        move |s: &mut spar::Stack, p: &spar::Handle<kubernetes::KubeProvider>| {
            let ns = s.add("ns", kubernetes::namespace(p, "widgets"))?;
            let crd = s.add("crd", Object::dynamic(p, widget_crd()))?;
            s.add(
                "w1",
                Object::dynamic(
                    p,
                    json!({"apiVersion": "example.com/v1", "kind": "Widget",
                           "metadata": {"name": "w1"}, "spec": {"size": size}}),
                )
                .namespace(ns.name())
                .after(&crd),
            )?;
            Ok(())
        }
    };
    let rec = Arc::new(Recorder::default());
    let (_, report) = env.apply_with(program(3), &Default::default(), rec.clone()).await;
    assert!(report.succeeded(), "{:?}", failures(&report));
    assert!(rec.position(&["finish", "crd", "Done"]) < rec.position(&["start", "w1"]));
    let ar = ApiResource {
        group: "example.com".into(),
        version: "v1".into(),
        api_version: "example.com/v1".into(),
        kind: "Widget".into(),
        plural: "widgets".into(),
    };
    let widgets: Api<DynamicObject> = Api::namespaced_with(env.client.clone(), "widgets", &ar);
    assert_eq!(widgets.get("w1").await.unwrap().data["spec"]["size"], json!(3));
    let snap = env.snapshot().await;
    assert_eq!(
        snap.get(&"w1".parse().unwrap()).unwrap().id,
        "example.com/v1:Widget:widgets/w1"
    );

    // A custom resource's drift and update go through discovery the same way.
    widgets
        .patch(
            "w1",
            &PatchParams::apply("intruder").force(),
            &Patch::Apply(json!({"apiVersion": "example.com/v1", "kind": "Widget",
                                  "metadata": {"name": "w1"}, "spec": {"size": 9}})),
        )
        .await
        .unwrap();
    let refreshed = env.refresh(program(3)).await;
    assert_eq!(refreshed.drifted.len(), 1, "{:?}", refreshed.drifted);
    let (_, report) = env.apply(program(4)).await;
    // spar does not own the field any more: conflict (no force).
    assert!(failures(&report)[0].contains("conflict"), "{:?}", failures(&report));

    // Deletion: the custom resource before its CRD, everything before the namespace.
    let rec = Arc::new(Recorder::default());
    let (_, report) = env.destroy(rec.clone()).await;
    assert!(report.succeeded(), "{:?}", failures(&report));
    assert!(rec.position(&["finish", "w1", "Done"]) < rec.position(&["start", "crd"]));
    assert!(rec.position(&["finish", "w1", "Done"]) < rec.position(&["start", "ns"]));
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(env.client.clone());
    assert!(crds.get_opt("widgets.example.com").await.unwrap().is_none());
    env.sim.shutdown().await;
}

#[tokio::test]
async fn readiness_is_awaited_with_progress() {
    let delay = Duration::from_millis(800);
    let env = KubeEnv::start_with(delay).await;
    let program = |s: &mut spar::Stack, p: &spar::Handle<kubernetes::KubeProvider>| {
        s.add(
            "engine",
            Object::typed(
                p,
                DaemonSet {
                    metadata: ObjectMeta {
                        name: Some("dagger-engine".into()),
                        namespace: Some("default".into()),
                        ..Default::default()
                    },
                    spec: Some(DaemonSetSpec {
                        selector: LabelSelector {
                            match_labels: Some(labels("dagger")),
                            ..Default::default()
                        },
                        template: pod_template("dagger"),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            ),
        )?;
        s.add(
            "web",
            Object::typed(
                p,
                Deployment {
                    metadata: ObjectMeta {
                        name: Some("web".into()),
                        ..Default::default()
                    },
                    spec: Some(DeploymentSpec {
                        replicas: Some(2),
                        selector: LabelSelector {
                            match_labels: Some(labels("web")),
                            ..Default::default()
                        },
                        template: pod_template("web"),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            ),
        )?;
        Ok(())
    };
    let rec = Arc::new(Recorder::default());
    let start = Instant::now();
    let (_, report) = env.apply_with(program, &Default::default(), rec.clone()).await;
    assert!(report.succeeded(), "{:?}", failures(&report));
    assert!(start.elapsed() >= delay, "returned before the workloads were ready");
    rec.position(&[
        "progress engine",
        "waiting for DaemonSet default/dagger-engine to be ready",
    ]);
    rec.position(&["progress web", "waiting for Deployment default/web to be ready"]);
    let deps: Api<Deployment> = Api::namespaced(env.client.clone(), "default");
    assert_eq!(
        deps.get("web").await.unwrap().status.unwrap().available_replicas,
        Some(2)
    );
    let dss: Api<DaemonSet> = Api::namespaced(env.client.clone(), "default");
    let st = dss.get("dagger-engine").await.unwrap().status.unwrap();
    assert_eq!(st.number_available, Some(st.desired_number_scheduled));
    // Defaults the server added (strategy, pull policy, ...) are not drift.
    let refreshed = env.refresh(program).await;
    assert!(refreshed.drifted.is_empty(), "{:?}", refreshed.drifted);
    env.sim.shutdown().await;
}

#[tokio::test]
async fn readiness_timeout_is_reported() {
    let env = KubeEnv::start_with(Duration::from_secs(30)).await;
    let (_, report) = env
        .apply(|s, p| {
            s.add_with(
                "web",
                Object::dynamic(
                    p,
                    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "slow"},
                           "spec": {"selector": {"matchLabels": {"app": "slow"}},
                                    "template": {"metadata": {"labels": {"app": "slow"}},
                                                 "spec": {"containers": [{"name": "main", "image": "nginx:1.27"}]}}}}),
                ),
                ResourceOptions::new().create_timeout(Duration::from_millis(600)),
            )?;
            Ok(())
        })
        .await;
    let msgs = failures(&report);
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert!(msgs[0].contains("timed out after"), "{}", msgs[0]);
    assert!(msgs[0].contains("Deployment default/slow to be ready"), "{}", msgs[0]);
    env.sim.shutdown().await;
}

#[tokio::test]
async fn invalid_objects_are_rejected_with_the_servers_message() {
    let env = KubeEnv::start().await;
    let (_, report) = env
        .apply(|s, p| {
            s.add(
                "bad-name",
                kubernetes::config_map(p, Some("default"), "Bad_Name", data(&[("a", "1")])),
            )?;
            s.add(
                "unknown-field",
                Object::dynamic(
                    p,
                    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ok"},
                           "data": {"a": "1"}, "bogus": true}),
                ),
            )?;
            s.add(
                "no-such-kind",
                Object::dynamic(
                    p,
                    json!({"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g"}}),
                ),
            )?;
            Ok(())
        })
        .await;
    let msgs = failures(&report);
    assert_eq!(msgs.len(), 3, "{msgs:?}");
    let find = |addr: &str| msgs.iter().find(|m| m.starts_with(addr)).unwrap().clone();
    let bad = find("bad-name");
    assert!(
        bad.contains("Bad_Name") && bad.contains("Invalid value") && bad.contains("422"),
        "{bad}"
    );
    let unknown = find("unknown-field");
    assert!(unknown.contains("bogus"), "{unknown}");
    let nokind = find("no-such-kind");
    assert!(
        nokind.contains("serves no") && nokind.contains(".after(&crd)"),
        "{nokind}"
    );
    // Nothing was created, nothing is in state but the provider.
    let cms: Api<ConfigMap> = Api::namespaced(env.client.clone(), "default");
    assert!(cms.get_opt("ok").await.unwrap().is_none());
    assert_eq!(env.snapshot().await.resources.len(), 1);
    env.sim.shutdown().await;
}

type Define = Box<dyn FnOnce(&mut spar::Stack) -> spar::Result<()>>;

#[tokio::test]
async fn kubeconfig_provider_and_unreachable_or_unsafe_clusters() {
    let env = KubeEnv::start().await;
    let kubeconfig = env.dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, env.sim.kubeconfig()).unwrap();
    let path = kubeconfig.display().to_string();

    // A kubeconfig file and context: the provider checks the cluster answers, objects follow.
    let session = |stack_define: Define| {
        let mut stack = spar::Stack::new(
            "kube-test",
            "dev",
            spar::model::config::StackConfig::empty(env.dir.path().join("dev.toml")),
        );
        stack_define(&mut stack).unwrap();
        let (graph, registry) = stack.into_graph().unwrap();
        spar::ops::Session {
            program: "kube-test".into(),
            stack: "dev".into(),
            graph,
            registry,
            store: env.store(),
            lookup_checks: Vec::new(),
            waived: Vec::new(),
        }
    };
    let p2 = path.clone();
    let (_, report) = session(Box::new(move |s| {
        let p = s.add(
            "cluster",
            kubernetes::KubeProvider::kubeconfig(p2.as_str(), Some("spar-kube-sim")).namespace("kube-public"),
        )?;
        s.add(
            "settings",
            kubernetes::config_map(&p, None, "from-kubeconfig", data(&[("a", "1")])),
        )?;
        Ok(())
    }))
    .apply_program(&Default::default(), &Default::default())
    .await
    .unwrap();
    assert!(report.succeeded(), "{:?}", failures(&report));
    let cms: Api<ConfigMap> = Api::namespaced(env.client.clone(), "kube-public");
    assert!(
        cms.get_opt("from-kubeconfig").await.unwrap().is_some(),
        "the provider's default namespace"
    );
    let snap = env.snapshot().await;
    assert!(
        snap.get(&"cluster".parse().unwrap()).unwrap().outputs["serverVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("v1.35"))
    );

    // A cluster that does not answer: the provider fails within its timeout, saying which.
    let (_, report) = session(Box::new(|s| {
        s.add_with(
            "dead",
            kubernetes::KubeProvider::sandbox("http://127.0.0.1:1"),
            ResourceOptions::new().create_timeout(Duration::from_millis(500)),
        )?;
        Ok(())
    }))
    .apply_program(&Default::default(), &Default::default())
    .await
    .unwrap();
    let msgs = failures(&report);
    assert!(
        msgs.iter()
            .any(|m| m.contains("sandbox http://127.0.0.1:1 did not answer")),
        "{msgs:?}"
    );

    // A sandbox URL that is not loopback is refused before any request.
    let (_, report) = session(Box::new(|s| {
        s.add("remote", kubernetes::KubeProvider::sandbox("http://10.1.2.3:6443"))?;
        Ok(())
    }))
    .apply_program(&Default::default(), &Default::default())
    .await
    .unwrap();
    let msgs = failures(&report);
    assert!(
        msgs.iter().any(|m| m.contains("must be http:// on a loopback address")),
        "{msgs:?}"
    );
    env.sim.shutdown().await;
}

fn deployment(name: &str) -> Deployment {
    Deployment {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            ..Default::default()
        },
        spec: Some(DeploymentSpec {
            replicas: Some(1),
            selector: LabelSelector {
                match_labels: Some(labels(name)),
                ..Default::default()
            },
            template: pod_template(name),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A finalizer of the test's own that keeps a dependent from going until the test removes it.
const HOLD: &str = "example.com/hold";

/// What the Deployment controller would make: a ReplicaSet owned by the Deployment `owner`
/// (optionally held by [`HOLD`]).
fn replica_set(owner: &Deployment, hold: bool) -> ReplicaSet {
    let name = owner.metadata.name.clone().unwrap();
    ReplicaSet {
        metadata: ObjectMeta {
            name: Some(format!("{name}-rs")),
            namespace: Some("default".into()),
            owner_references: Some(vec![OwnerReference {
                api_version: "apps/v1".into(),
                kind: "Deployment".into(),
                name: name.clone(),
                uid: owner.metadata.uid.clone().unwrap(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            finalizers: hold.then(|| vec![HOLD.to_string()]),
            ..Default::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(1),
            selector: LabelSelector {
                match_labels: Some(labels(&name)),
                ..Default::default()
            },
            template: Some(pod_template(&name)),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Polls `check` every 20 ms until it is true; fails after 10 s with `what`.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn delete_propagation_background_foreground_orphan_reach_the_server() {
    let env = KubeEnv::start().await;
    let program = |s: &mut spar::Stack, p: &spar::Handle<kubernetes::KubeProvider>| {
        s.add(
            "bg",
            Object::typed(p, deployment("bg")).delete_propagation(Propagation::Background),
        )?;
        s.add(
            "fg",
            Object::typed(p, deployment("fg")).delete_propagation(Propagation::Foreground),
        )?;
        s.add(
            "orphan",
            Object::typed(p, deployment("orphan")).delete_propagation(Propagation::Orphan),
        )?;
        // No policy: background, the API server's default.
        s.add("plain", Object::typed(p, deployment("plain")))?;
        Ok(())
    };
    let (_, report) = env.apply(program).await;
    assert!(report.succeeded(), "{:?}", failures(&report));
    let snap = env.snapshot().await;
    let policy = |a: &str| snap.get(&a.parse().unwrap()).unwrap().inputs["deletePropagation"].clone();
    assert_eq!(
        [policy("bg"), policy("fg"), policy("orphan"), policy("plain")],
        [json!("Background"), json!("Foreground"), json!("Orphan"), json!(null)]
    );

    // Each Deployment gets a dependent ReplicaSet; all but the orphan's are held by a
    // finalizer, so the test sees the order in which the server deletes owner and dependent.
    let deps: Api<Deployment> = Api::namespaced(env.client.clone(), "default");
    let rss: Api<ReplicaSet> = Api::namespaced(env.client.clone(), "default");
    for (name, hold) in [("bg", true), ("fg", true), ("orphan", false), ("plain", true)] {
        let owner = deps.get(name).await.unwrap();
        rss.create(&Default::default(), &replica_set(&owner, hold))
            .await
            .unwrap();
    }
    let release = |name: &'static str| {
        let rss = rss.clone();
        async move {
            rss.patch(
                &format!("{name}-rs"),
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"finalizers": null}})),
            )
            .await
            .unwrap();
        }
    };

    let rec = Arc::new(Recorder::default());
    let observe = async {
        // Foreground: the Deployment is marked for deletion and waits for its dependents.
        eventually("the foreground owner to be marked deleted", || async {
            deps.get_opt("fg")
                .await
                .unwrap()
                .is_some_and(|d| d.metadata.deletion_timestamp.is_some())
        })
        .await;
        let fg = deps.get("fg").await.unwrap();
        assert!(
            fg.metadata
                .finalizers
                .unwrap_or_default()
                .contains(&"foregroundDeletion".to_string()),
            "a foreground delete adds foregroundDeletion"
        );
        // Background (explicit and by default): the owners are gone at once, their held
        // dependents are being deleted by the garbage collector.
        for name in ["bg", "plain"] {
            eventually(&format!("{name} to be gone and its ReplicaSet deleting"), || async {
                deps.get_opt(name).await.unwrap().is_none()
                    && rss
                        .get_opt(&format!("{name}-rs"))
                        .await
                        .unwrap()
                        .is_some_and(|rs| rs.metadata.deletion_timestamp.is_some())
            })
            .await;
        }
        // Orphan: the owner is gone, its dependent stays, no longer owned.
        eventually("the orphaning owner to be gone", || async {
            deps.get_opt("orphan").await.unwrap().is_none()
        })
        .await;
        let orphan = rss.get("orphan-rs").await.unwrap();
        assert!(orphan.metadata.deletion_timestamp.is_none());
        assert!(orphan.metadata.owner_references.unwrap_or_default().is_empty());
        // While its dependent is held, the foreground owner stays and spar keeps waiting.
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(deps.get_opt("fg").await.unwrap().is_some());
        let fg_rs = rss.get("fg-rs").await.unwrap();
        assert!(
            fg_rs.metadata.deletion_timestamp.is_some(),
            "the dependent is deleted first"
        );
        release("fg").await;
    };
    let ((_, report), ()) = tokio::time::timeout(Duration::from_secs(30), async {
        tokio::join!(env.destroy(rec.clone()), observe)
    })
    .await
    .expect("destroy finishes once the foreground dependent is released");
    assert!(report.succeeded(), "{:?}", failures(&report));
    rec.position(&["progress fg", "waiting for Deployment default/fg to be deleted"]);
    // Foreground: when the owner's delete returned, its dependent was already gone.
    assert!(deps.get_opt("fg").await.unwrap().is_none());
    assert!(rss.get_opt("fg-rs").await.unwrap().is_none());

    // The background dependents go once released; the orphan stays.
    release("bg").await;
    release("plain").await;
    for name in ["bg-rs", "plain-rs"] {
        eventually(name, || async { rss.get_opt(name).await.unwrap().is_none() }).await;
    }
    let orphan = rss.get("orphan-rs").await.unwrap();
    assert!(orphan.metadata.deletion_timestamp.is_none());
    assert!(env.snapshot().await.resources.is_empty());
    env.sim.shutdown().await;
}

/// A renamed object (by alias) is moved in state: no request changes it in the cluster
/// (its uid and resourceVersion stay), no step runs, and state has the new address.
#[tokio::test]
async fn an_object_renamed_by_alias_is_moved_not_recreated() {
    let env = KubeEnv::start().await;
    let program = |address: &'static str, alias: Option<&'static str>| {
        move |s: &mut spar::Stack, p: &spar::Handle<kubernetes::KubeProvider>| {
            let options = alias.map_or_else(ResourceOptions::new, |a| ResourceOptions::new().alias(a));
            s.add_with(
                address,
                kubernetes::config_map(p, Some("default"), "settings", data(&[("a", "1")])),
                options,
            )?;
            Ok(())
        }
    };
    let (_, report) = env.apply(program("app/settings", None)).await;
    assert!(report.succeeded(), "{:?}", failures(&report));
    let cms: Api<ConfigMap> = Api::namespaced(env.client.clone(), "default");
    let before = cms.get("settings").await.unwrap().metadata;
    let id = env
        .snapshot()
        .await
        .get(&"app/settings".parse().unwrap())
        .unwrap()
        .id
        .clone();

    let plan = env.plan(program("config/settings", Some("app/settings"))).await;
    let c = plan.get(&"config/settings".parse().unwrap()).unwrap();
    assert_eq!(
        (c.op, c.moved_from.as_ref().map(|a| a.to_string())),
        (Op::Same, Some("app/settings".into()))
    );
    assert!(plan.changes.iter().all(|c| c.op == Op::Same), "{:?}", ops(&plan));
    let recorder = Arc::new(Recorder::default());
    let (_, report) = env
        .apply_with(
            program("config/settings", Some("app/settings")),
            &spar::plan::diff::PlanOptions::default(),
            recorder.clone(),
        )
        .await;
    assert!(report.succeeded(), "{:?}", failures(&report));
    assert!(report.outcomes.is_empty(), "no step ran: {:?}", report.outcomes);
    let after = cms.get("settings").await.unwrap().metadata;
    assert_eq!(
        (after.uid, after.resource_version),
        (before.uid, before.resource_version)
    );
    let snap = env.snapshot().await;
    assert_eq!(snap.get(&"config/settings".parse().unwrap()).unwrap().id, id);
    assert!(snap.get(&"app/settings".parse().unwrap()).is_none());
    assert!(
        !env.plan(program("config/settings", Some("app/settings")))
            .await
            .has_changes()
    );
}

/// A ConfigMap made outside spar is looked up through the declared provider: its live
/// data feeds a managed object, it is never changed, and a missing one fails the plan.
#[tokio::test]
async fn an_object_made_elsewhere_is_looked_up_and_feeds_another() {
    let env = KubeEnv::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(env.client.clone(), "default");
    let made = ConfigMap {
        metadata: ObjectMeta {
            name: Some("cluster-info-by-hand".into()),
            ..Default::default()
        },
        data: Some(data(&[("region", "eu-west-1")])),
        ..Default::default()
    };
    cms.create(&Default::default(), &made).await.unwrap();
    let before = cms.get("cluster-info-by-hand").await.unwrap().metadata.resource_version;
    let program = |name: &'static str| {
        move |s: &mut spar::Stack, p: &spar::Handle<kubernetes::KubeProvider>| {
            let info = s.lookup(
                "found/info",
                Object::lookup(p, "v1", "ConfigMap", Some("default"), name),
            )?;
            let region: spar::Output<String> = info.output("object.data.region");
            s.add(
                "copied",
                Object::dynamic(
                    p,
                    json!({"apiVersion": "v1", "kind": "ConfigMap",
                           "metadata": {"name": "copied", "namespace": "default"},
                           "data": {"region": region}}),
                ),
            )?;
            Ok(())
        }
    };
    let plan = env.plan(program("cluster-info-by-hand")).await;
    assert_eq!(plan.get(&"found/info".parse().unwrap()).unwrap().op, Op::Read);
    let (_, report) = env.apply(program("cluster-info-by-hand")).await;
    assert!(report.succeeded(), "{:?}", failures(&report));
    let copied = cms.get("copied").await.unwrap();
    assert_eq!(copied.data.unwrap()["region"], "eu-west-1");
    let after = cms.get("cluster-info-by-hand").await.unwrap().metadata.resource_version;
    assert_eq!(after, before, "the looked-up object is not changed");
    let err = env
        .session(program("no-such-map"))
        .unwrap()
        .plan(&spar::plan::diff::PlanOptions::default(), false)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("lookup `found/info` (kubernetes:Object) found nothing"),
        "{err}"
    );
}
