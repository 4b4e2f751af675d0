//! Sandbox mode by environment: a `kubernetes:Provider` declared for an EKS cluster (whose
//! endpoint, CA data and name are outputs of another resource, here a fake cluster) sends every
//! request to the simulator named by `SPAR_KUBE_SANDBOX_URL` instead; the plan before the cluster
//! exists shows creates only; state records the EKS connection (never the sandbox URL, never a
//! token). Its own test binary: the variable is process-wide.
#![cfg(feature = "kubernetes")]

#[path = "support/kube.rs"]
mod kube_support;

use std::sync::Arc;

use base64::Engine as _;
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
use spar::testing::{FakeProvider, FakeResource, FakeWorld};

const CA_PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ2Z3\n-----END CERTIFICATE-----\n";

fn session(env: &KubeEnv, fake: &Arc<FakeProvider>, data: &str) -> Session {
    let mut stack = Stack::new("kube-test", "dev", StackConfig::empty(env.dir.path().join("dev.toml")));
    stack.register_kind(fake.clone());
    let ca = base64::engine::general_purpose::STANDARD.encode(CA_PEM);
    let cluster = stack
        .add(
            "eks",
            FakeResource::new(fake)
                .set("name", "ci")
                .set("endpoint", "https://0123456789ABCDEF.gr7.us-east-1.eks.amazonaws.com")
                .set("caData", ca),
        )
        .unwrap();
    let provider = stack
        .add(
            "cluster",
            KubeProvider::eks(
                cluster.output::<String>("echo.endpoint"),
                cluster.output::<String>("echo.caData"),
                cluster.output::<String>("echo.name"),
                "us-east-1",
            ),
        )
        .unwrap();
    let cm = kubernetes::config_map(
        &provider,
        Some("default"),
        "settings",
        [("a".to_string(), data.to_string())].into(),
    );
    stack.add("settings", cm).unwrap();
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
async fn eks_provider_goes_to_the_sandbox_named_by_the_environment() {
    let env = KubeEnv::start().await;
    // SAFETY: this binary's only test; nothing else reads the environment concurrently.
    unsafe { std::env::set_var(kubernetes::connection::SANDBOX_ENV, env.url()) };
    let fake = Arc::new(FakeProvider::new("fake:EksCluster", FakeWorld::new()));

    // The cluster does not exist yet: creates only, the connection known after apply.
    let plan = session(&env, &fake, "1")
        .plan(&PlanOptions::default(), false)
        .await
        .unwrap();
    let ops: Vec<(String, Op)> = plan.changes.iter().map(|c| (c.address.to_string(), c.op)).collect();
    assert!(ops.iter().all(|(_, op)| *op == Op::Create), "{ops:?}");
    let cm = plan.get(&"settings".parse().unwrap()).unwrap();
    assert!(
        cm.dependencies.iter().any(|d| d.to_string() == "cluster"),
        "{:?}",
        cm.dependencies
    );

    let (_, report) = session(&env, &fake, "1")
        .apply_program(&PlanOptions::default(), &ExecuteOptions::default())
        .await
        .unwrap();
    assert!(report.succeeded(), "{:?}", failures(&report));
    let cms: Api<ConfigMap> = Api::namespaced(env.client.clone(), "default");
    assert_eq!(cms.get("settings").await.unwrap().data.unwrap()["a"], "1");

    // State holds the EKS connection, not the sandbox URL, and no token.
    let snap = env.snapshot().await;
    let conn = &snap.get(&"cluster".parse().unwrap()).unwrap().outputs["connection"];
    assert_eq!(conn["clusterName"], json!("ci"));
    assert_eq!(conn["region"], json!("us-east-1"));
    let text = serde_json::to_string(&snap).unwrap();
    assert!(!text.contains(&env.url()), "the sandbox URL leaked into state");
    assert!(!text.contains("k8s-aws-v1."), "a token leaked into state");

    // Updates flow the same way.
    let (_, report) = session(&env, &fake, "2")
        .apply_program(&PlanOptions::default(), &ExecuteOptions::default())
        .await
        .unwrap();
    assert!(report.succeeded(), "{:?}", failures(&report));
    assert_eq!(cms.get("settings").await.unwrap().data.unwrap()["a"], "2");
    // Import: an object made outside spar, adopted by its id (the connection from the
    // environment, the manifest as it is live, without server fields).
    cms.create(
        &Default::default(),
        &serde_json::from_value(json!({"metadata": {"name": "outside"}, "data": {"k": "v"}})).unwrap(),
    )
    .await
    .unwrap();
    let imported = session(&env, &fake, "2")
        .import(
            "kubernetes:Object",
            &"outside".parse().unwrap(),
            "v1:ConfigMap:default/outside",
        )
        .await
        .unwrap();
    assert_eq!(imported.id, "v1:ConfigMap:default/outside");
    assert_eq!(imported.inputs["manifest"]["data"], json!({"k": "v"}));
    assert!(imported.inputs["manifest"]["metadata"].get("uid").is_none());
    assert!(imported.outputs["uid"].as_str().is_some_and(|u| !u.is_empty()));
    let err = session(&env, &fake, "2")
        .import(
            "kubernetes:Object",
            &"nothing".parse().unwrap(),
            "v1:ConfigMap:default/nothing",
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no kubernetes:Object with id"), "{err}");
    env.sim.shutdown().await;
}
