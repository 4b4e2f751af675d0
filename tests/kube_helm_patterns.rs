//! Charts install as `helm install` installs them: the patterns of upstream charts
//! (`tests/charts/helm-patterns`, rendered by the real Helm engine) against the in-process
//! API simulator, each with helm's behaviour as the expected result:
//!
//! - cluster-scoped objects whose template sets a namespace are installed without it (helm
//!   and the API server drop it), and read back without drift;
//! - a `kind: List` installs its items; a template that renders nothing, or only a comment,
//!   installs nothing;
//! - a CRD of `templates/` is installed before the objects of its kind and deleted with the
//!   release;
//! - a `crds/` CRD is installed before the objects of its kind and, like an object
//!   annotated `helm.sh/resource-policy: keep`, never deleted: not when it leaves the
//!   rendering, not when the release goes;
//! - hooks are not part of the release: a pre-install Job runs before the objects, is
//!   awaited until it completes and is deleted (`hook-succeeded`); a post-install hook with
//!   helm's default policy stays and is made anew by the next upgrade's post-upgrade run; a
//!   test hook is never created;
//! - `lookup` finds nothing (spar renders with `helm template`: a deliberate difference);
//! - empty maps, lists and nulls a server round trip drops, and a 100 KiB annotation, are
//!   not drift: a `plan --refresh` right after apply shows no change.
#![cfg(feature = "kubernetes")]

#[path = "support/kube.rs"]
mod kube_support;

use std::sync::Arc;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject};
use kube::discovery::ApiResource;
use kube_support::{KubeEnv, Recorder, failures};
use serde_json::{Value, json};
use spar::kubernetes::{Chart, KubeProvider};
use spar::plan::Op;
use spar::plan::diff::PlanOptions;

type Program = Box<dyn FnOnce(&mut spar::Stack, &spar::Handle<KubeProvider>) -> spar::Result<()>>;

fn root() -> String {
    env!("CARGO_MANIFEST_DIR").to_string()
}

fn patterns(values: Value) -> Program {
    Box::new(move |s, p| {
        let c = Chart::new(p, &format!("{}/tests/charts/helm-patterns", root()), "pat", "pat-ns")
            .helm(&format!("{}/sandbox/helm/helm-template", root()))
            .create_namespace();
        s.add("patterns", c.values(values))?;
        Ok(())
    })
}

fn widgets(env: &KubeEnv) -> Api<DynamicObject> {
    let ar = ApiResource {
        group: "patterns.example.com".into(),
        version: "v1".into(),
        api_version: "patterns.example.com/v1".into(),
        kind: "Widget".into(),
        plural: "widgets".into(),
    };
    Api::namespaced_with(env.client.clone(), "pat-ns", &ar)
}

fn tracked(objects: &Value) -> Vec<String> {
    objects
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            let keep = if o["keep"] == true { " (keep)" } else { "" };
            format!("{} {}{keep}", o["kind"].as_str().unwrap(), o["name"].as_str().unwrap())
        })
        .collect()
}

#[tokio::test]
async fn charts_install_upgrade_and_uninstall_as_helm_does() {
    let env = KubeEnv::start_with(std::time::Duration::from_millis(200)).await;
    let v1 = json!({"keepIt": true, "hookCounter": 1});

    let rec = Arc::new(Recorder::default());
    let (_, report) = env
        .apply_with(patterns(v1.clone()), &PlanOptions::default(), rec.clone())
        .await;
    assert!(report.succeeded(), "{:?}", failures(&report));

    // Cluster-scoped objects: installed, without the namespace the template gave them.
    let crbs: Api<ClusterRoleBinding> = Api::all(env.client.clone());
    let crb = crbs.get("pat-reader").await.unwrap();
    assert_eq!(crb.metadata.namespace, None);
    assert!(
        Api::<ClusterRole>::all(env.client.clone())
            .get_opt("pat-reader")
            .await
            .unwrap()
            .is_some()
    );

    // The List's items; nothing from the empty template.
    let cms: Api<ConfigMap> = Api::namespaced(env.client.clone(), "pat-ns");
    for name in [
        "pat-list-a",
        "pat-list-b",
        "pat-kept",
        "pat-lookup",
        "pat-long",
        "pat-post",
    ] {
        assert!(cms.get_opt(name).await.unwrap().is_some(), "{name}");
    }
    assert!(cms.get_opt("pat-never").await.unwrap().is_none());
    assert_eq!(cms.get("pat-lookup").await.unwrap().data.unwrap()["found"], "no");

    // Hooks: the pre-install Job ran first, was awaited and deleted; the test hook never ran.
    let lines = rec.lines();
    let pos = |needle: &str| {
        lines
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle} in {lines:#?}"))
    };
    assert!(
        pos("applying 2 namespaces and crds/ CRDs") < pos("running pre-install hook Job pat-pre"),
        "{lines:#?}"
    );
    assert!(
        pos("running pre-install hook Job pat-pre") < pos("applying 12 objects"),
        "{lines:#?}"
    );
    assert!(
        pos("applying 12 objects") < pos("running post-install hook ConfigMap pat-post"),
        "{lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("pat-pre") && l.contains("completions")),
        "the Job was awaited until it completed: {lines:#?}"
    );
    let jobs: Api<Job> = Api::namespaced(env.client.clone(), "pat-ns");
    assert!(
        jobs.get_opt("pat-pre").await.unwrap().is_none(),
        "hook-succeeded deleted it"
    );
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), "pat-ns");
    assert!(pods.get_opt("pat-test").await.unwrap().is_none());

    // What the release tracks: no hooks; the crds/ CRD and the kept object marked keep.
    let snap = env.snapshot().await;
    let listed = tracked(&snap.get(&"patterns".parse().unwrap()).unwrap().outputs["objects"]);
    assert!(
        listed.contains(&"CustomResourceDefinition widgets.patterns.example.com (keep)".to_string()),
        "{listed:?}"
    );
    assert!(listed.contains(&"ConfigMap pat-kept (keep)".to_string()), "{listed:?}");
    assert!(
        listed.contains(&"ClusterRoleBinding pat-reader".to_string()),
        "{listed:?}"
    );
    assert!(listed.contains(&"Widget pat-widget".to_string()), "{listed:?}");
    assert!(
        listed.contains(&"CustomResourceDefinition gizmos.patterns.example.com".to_string()),
        "{listed:?}"
    );
    assert!(listed.contains(&"Gizmo pat-gizmo".to_string()), "{listed:?}");
    assert!(
        !listed.iter().any(|o| o.contains("pat-pre") || o.contains("pat-post")),
        "{listed:?}"
    );
    assert_eq!(listed.len(), 14, "{listed:?}");

    // A second look right after apply: no change, no drift (sparse fields, the long
    // annotation and the dropped namespaces included).
    let refreshed = env.refresh(patterns(v1.clone())).await;
    assert!(refreshed.drifted.is_empty(), "{:?}", refreshed.drifted);
    assert!(refreshed.errors.is_empty(), "{:?}", refreshed.errors);
    assert!(!env.plan(patterns(v1.clone())).await.has_changes());

    // Upgrade: the kept object leaves the rendering and stays; the post-upgrade hook is made
    // anew (its before-hook-creation policy); the pre-install hook does not run again.
    let v2 = json!({"keepIt": false, "hookCounter": 2});
    let plan = env.plan(patterns(v2.clone())).await;
    let change = plan.get(&"patterns".parse().unwrap()).unwrap();
    assert_eq!(change.op, Op::Update);
    assert!(
        change
            .notes
            .contains(&"- stops tracking (kept) v1 ConfigMap pat-ns/pat-kept".to_string()),
        "{:#?}",
        change.notes
    );
    assert!(
        change
            .notes
            .contains(&"~ runs post-upgrade hook ConfigMap pat-post".to_string()),
        "{:#?}",
        change.notes
    );
    assert!(
        !change.notes.iter().any(|n| n.contains("pre-install")),
        "{:#?}",
        change.notes
    );
    let (_, report) = env.apply(patterns(v2.clone())).await;
    assert!(report.succeeded(), "{:?}", failures(&report));
    assert!(cms.get_opt("pat-kept").await.unwrap().is_some(), "kept, not pruned");
    assert_eq!(cms.get("pat-post").await.unwrap().data.unwrap()["run"], "2");
    let listed = tracked(&env.snapshot().await.get(&"patterns".parse().unwrap()).unwrap().outputs["objects"]);
    assert!(!listed.iter().any(|o| o.contains("pat-kept")), "{listed:?}");
    let refreshed = env.refresh(patterns(v2.clone())).await;
    assert!(refreshed.drifted.is_empty(), "{:?}", refreshed.drifted);

    // Uninstall: the release's objects go; the crds/ CRD, the kept object and the hook
    // object stay, as after `helm uninstall`.
    let rec = Arc::new(Recorder::default());
    let (_, report) = env.destroy(rec.clone()).await;
    assert!(report.succeeded(), "{:?}", failures(&report));
    assert!(
        rec.lines().iter().any(
            |l| l.contains("keeping apiextensions.k8s.io/v1:CustomResourceDefinition:widgets.patterns.example.com")
        ),
        "{:#?}",
        rec.lines()
    );
    assert!(crbs.get_opt("pat-reader").await.unwrap().is_none());
    assert!(widgets(&env).get_opt("pat-widget").await.unwrap().is_none());
    let crds: Api<CustomResourceDefinition> = Api::all(env.client.clone());
    assert!(crds.get_opt("widgets.patterns.example.com").await.unwrap().is_some());
    assert!(
        crds.get_opt("gizmos.patterns.example.com").await.unwrap().is_none(),
        "a CRD of templates/ goes with the release"
    );
    env.sim.shutdown().await;
}
