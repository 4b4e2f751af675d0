//! spar's own client library (`kube` v5) against the simulator over plain http: typed and
//! dynamic server-side apply, conflicts as `kube::Error::Api`, list with selectors, watch-based
//! waits from `kube::runtime` (deployment completed, CRD established, deleted), discovery of
//! custom resources.

mod common;

use common::Sim;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::discovery::Discovery;
use kube::runtime::wait::{await_condition, conditions};
use kube::{Client, Config};
use serde_json::json;
use spar_kube_sim::SimConfig;
use std::time::Duration;

async fn client(sim: &Sim) -> Client {
    let config = Config::new(sim.handle.url().parse().expect("url"));
    Client::try_from(config).expect("client")
}

#[tokio::test]
async fn kube_client_round_trip() {
    let sim = Sim::start_with(SimConfig {
        ready_delay: Duration::from_millis(300),
        ..SimConfig::default()
    })
    .await;
    let client = client(&sim).await;
    let ssa = PatchParams::apply("spar");

    let nss: Api<Namespace> = Api::all(client.clone());
    nss.patch(
        "spar-test",
        &ssa,
        &Patch::Apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "spar-test"}})),
    )
    .await
    .expect("namespace applied");

    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "spar-test");
    let cm = cms
        .patch("settings", &ssa, &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "labels": {"app": "spar"}}, "data": {"a": "1"}})))
        .await
        .expect("configmap applied");
    assert_eq!(cm.data.unwrap()["a"], "1");
    let mf = cm.metadata.managed_fields.unwrap();
    assert_eq!(mf[0].manager.as_deref(), Some("spar"));
    assert_eq!(mf[0].operation.as_deref(), Some("Apply"));

    let listed = cms.list(&ListParams::default().labels("app=spar")).await.unwrap();
    assert_eq!(listed.items.len(), 1);
    assert!(
        cms.list(&ListParams::default().labels("app!=spar"))
            .await
            .unwrap()
            .items
            .is_empty()
    );

    // a conflict surfaces as kube::Error::Api with the Status fields
    let err = cms
        .patch(
            "settings",
            &PatchParams::apply("intruder"),
            &Patch::Apply(
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"a": "2"}}),
            ),
        )
        .await
        .expect_err("conflict");
    match err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 409);
            assert_eq!(s.reason, "Conflict");
            assert!(s.message.contains("conflict with \"spar\": .data.a"), "{}", s.message);
        }
        other => panic!("unexpected {other:?}"),
    }
    match cms.get("missing").await.expect_err("404") {
        kube::Error::Api(s) => assert_eq!((s.code, s.reason.as_str()), (404, "NotFound")),
        other => panic!("unexpected {other:?}"),
    }

    // readiness wait through kube-runtime's watch machinery
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "spar-test");
    let d = json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "main", "image": "nginx:1.27"}]}}}
    });
    deps.patch("web", &ssa, &Patch::Apply(d))
        .await
        .expect("deployment applied");
    let done = tokio::time::timeout(
        Duration::from_secs(10),
        await_condition(deps.clone(), "web", conditions::is_deployment_completed()),
    )
    .await
    .expect("deployment completes in time")
    .expect("watch ok")
    .expect("exists");
    assert_eq!(done.status.unwrap().available_replicas, Some(2));

    // a CRD, established, discovered, and a custom resource through the dynamic API
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                 "versions": [{"name": "v1", "served": true, "storage": true,
                               "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object", "properties": {"size": {"type": "integer"}}}}}}}]}
    });
    crds.patch("widgets.example.com", &ssa, &Patch::Apply(crd))
        .await
        .expect("crd applied");
    tokio::time::timeout(
        Duration::from_secs(10),
        await_condition(crds.clone(), "widgets.example.com", conditions::is_crd_established()),
    )
    .await
    .expect("established in time")
    .expect("watch ok");
    let discovery = Discovery::new(client.clone()).run().await.expect("discovery");
    let (ar, caps) = discovery
        .groups()
        .flat_map(|g| g.recommended_resources())
        .find(|(ar, _)| ar.kind == "Widget")
        .expect("Widget discovered");
    assert_eq!(caps.scope, kube::discovery::Scope::Namespaced);
    let widgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), "spar-test", &ar);
    let w = widgets
        .patch("w1", &ssa, &Patch::Apply(json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": {"size": 3}})))
        .await
        .expect("widget applied");
    assert_eq!(w.data["spec"]["size"], json!(3));
    let bad = widgets
        .patch("w2", &ssa, &Patch::Apply(json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w2"}, "spec": {"size": 3, "colour": "red"}})))
        .await
        .expect_err("unknown field rejected");
    assert!(
        matches!(bad, kube::Error::Api(ref s) if s.code == 400 && s.message.contains(".spec.colour")),
        "{bad:?}"
    );

    // deleting the namespace takes its contents with it; wait for it to be gone
    let ns = nss.get("spar-test").await.unwrap();
    let uid = ns.metadata.uid.clone().unwrap();
    nss.delete("spar-test", &DeleteParams::default())
        .await
        .expect("delete accepted");
    tokio::time::timeout(
        Duration::from_secs(10),
        await_condition(nss.clone(), "spar-test", conditions::is_deleted(&uid)),
    )
    .await
    .expect("namespace gone in time")
    .expect("watch ok");
    assert!(widgets.get_opt("w1").await.unwrap().is_none());
    sim.handle.shutdown().await;
}
