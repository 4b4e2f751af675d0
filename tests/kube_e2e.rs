//! End to end in the sandbox: an EKS cluster in the AWS emulator (`sandbox/aws/serve`, its
//! network and role too), a `kubernetes:Provider` built from the cluster's outputs that
//! `SPAR_KUBE_SANDBOX_URL` sends to the in-process API simulator, and on it a namespace, a
//! DaemonSet, a CRD with a custom resource and a Helm chart (rendered by the real Helm
//! engine). Before the cluster exists the plan is creates only; apply makes everything (the
//! cluster before anything Kubernetes); a second plan and a refresh find nothing to do;
//! destroy deletes the Kubernetes objects before the cluster and leaves the simulator as it
//! started and the emulator without the cluster or its network. Its own test binary: the
//! sandbox variable is process-wide.
#![cfg(all(feature = "aws", feature = "kubernetes"))]

#[path = "support/aws.rs"]
mod support;

#[path = "support/kube.rs"]
mod kube_support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Container, Namespace, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::api::{Api, DynamicObject, ListParams};
use kube::discovery::{ApiResource, Discovery};
use kube_support::KubeEnv;
use serde_json::json;
use spar::aws::ec2::{Subnet, Vpc};
use spar::aws::eks::Cluster;
use spar::aws::iam::{PolicyDocument, Role, RolePolicyAttachment, Statement};
use spar::kubernetes::{self, Chart, KubeProvider, Object};
use spar::plan::Op;
use support::{Recorder, Stage, op, quiet, run, sandbox_config};

fn root() -> String {
    env!("CARGO_MANIFEST_DIR").to_string()
}

fn labels() -> BTreeMap<String, String> {
    [("app".to_string(), "agent".to_string())].into()
}

fn daemon_set() -> DaemonSet {
    DaemonSet {
        metadata: ObjectMeta {
            name: Some("agent".into()),
            ..Default::default()
        },
        spec: Some(DaemonSetSpec {
            selector: LabelSelector {
                match_labels: Some(labels()),
                ..Default::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels()),
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
            },
            ..Default::default()
        }),
        ..Default::default()
    }
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

fn widgets_api() -> ApiResource {
    ApiResource {
        group: "example.com".into(),
        version: "v1".into(),
        api_version: "example.com/v1".into(),
        kind: "Widget".into(),
        plural: "widgets".into(),
    }
}

/// The program: the cluster (network, role, cluster) and what runs on it.
fn program(st: &mut spar::Stack) -> spar::Result<()> {
    let vpc = st.add("eks/vpc", Vpc::new("10.61.0.0/16"))?;
    let a = st.add(
        "eks/subnet_a",
        Subnet::new(vpc.vpc_id(), "10.61.0.0/20").az("us-east-1a"),
    )?;
    let b = st.add(
        "eks/subnet_b",
        Subnet::new(vpc.vpc_id(), "10.61.16.0/20").az("us-east-1b"),
    )?;
    let role = st.add(
        "eks/cluster_role",
        Role::new(PolicyDocument::new(vec![
            Statement::allow(&["sts:AssumeRole", "sts:TagSession"]).principal("Service", "eks.amazonaws.com"),
        ])),
    )?;
    st.add(
        "eks/cluster_policy",
        RolePolicyAttachment::aws_managed(role.name(), "AmazonEKSClusterPolicy"),
    )?;
    let cluster = st.add(
        "eks/cluster",
        Cluster::new(role.arn(), vec![a.subnet_id().into(), b.subnet_id().into()]).version("1.35"),
    )?;
    let p = st.add(
        "apps/kubernetes",
        KubeProvider::eks(
            cluster.endpoint(),
            cluster.certificate_authority(),
            cluster.name(),
            "us-east-1",
        ),
    )?;
    let ns = st.add("apps/ns", kubernetes::namespace(&p, "e2e"))?;
    st.add("apps/agent", Object::typed(&p, daemon_set()).namespace(ns.name()))?;
    let crd = st.add("apps/widgets-crd", Object::dynamic(&p, widget_crd()))?;
    st.add(
        "apps/widget",
        Object::dynamic(
            &p,
            json!({"apiVersion": "example.com/v1", "kind": "Widget",
                   "metadata": {"name": "w1"}, "spec": {"size": 3}}),
        )
        .namespace(ns.name())
        .after(&crd),
    )?;
    st.add(
        "apps/demo",
        Chart::new(&p, &format!("{}/tests/charts/spar-demo", root()), "demo", "demo-ns")
            .helm(&format!("{}/sandbox/helm/helm-template", root()))
            .create_namespace()
            .values(json!({"greeting": "hello", "replicas": 2, "gadgetSize": 3, "extra": true})),
    )?;
    Ok(())
}

const ADDRESSES: [&str; 12] = [
    "eks/vpc",
    "eks/subnet_a",
    "eks/subnet_b",
    "eks/cluster_role",
    "eks/cluster_policy",
    "eks/cluster",
    "apps/kubernetes",
    "apps/ns",
    "apps/agent",
    "apps/widgets-crd",
    "apps/widget",
    "apps/demo",
];

/// Every object the simulator holds, as `Kind namespace/name` (every listable kind).
async fn kube_objects(client: &kube::Client) -> BTreeSet<String> {
    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    let mut all = BTreeSet::new();
    for group in discovery.groups() {
        for (ar, caps) in group.recommended_resources() {
            if !caps.supports_operation(kube::discovery::verbs::LIST) {
                continue;
            }
            let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
            for o in api.list(&ListParams::default()).await.unwrap() {
                all.insert(format!(
                    "{} {}/{}",
                    ar.kind,
                    o.metadata.namespace.unwrap_or_default(),
                    o.metadata.name.unwrap_or_default()
                ));
            }
        }
    }
    all
}

async fn vpc_ids() -> BTreeSet<String> {
    support::ec2()
        .await
        .describe_vpcs()
        .send()
        .await
        .unwrap()
        .vpcs()
        .iter()
        .filter_map(|v| v.vpc_id().map(str::to_string))
        .collect()
}

async fn cluster_names() -> Vec<String> {
    spar::aws::context::clients()
        .await
        .eks
        .list_clusters()
        .send()
        .await
        .unwrap()
        .clusters()
        .to_vec()
}

#[test]
fn eks_cluster_in_the_emulator_objects_and_chart_in_the_simulator() {
    run(async {
        sandbox_config(json!({"cluster_create_seconds": 2, "update_seconds": 1, "cluster_delete_seconds": 1}));
        let kube = KubeEnv::start().await;
        // SAFETY: this binary's only test, set before any Kubernetes client is made.
        unsafe { std::env::set_var(kubernetes::connection::SANDBOX_ENV, kube.url()) };
        let sim_before = kube_objects(&kube.client).await;
        let vpcs_before = vpc_ids().await;
        let s = Stage::new();

        // The cluster does not exist yet: every resource is a create, the Kubernetes ones
        // waiting on the cluster's outputs through the provider.
        let plan = s.plan(program).await;
        for a in ADDRESSES {
            assert_eq!(op(&plan, a), Op::Create, "{a}");
        }
        assert_eq!(plan.changes.len(), ADDRESSES.len());
        let provider = plan.get(&"apps/kubernetes".parse().unwrap()).unwrap();
        assert!(
            provider.dependencies.iter().any(|d| d.to_string() == "eks/cluster"),
            "{:?}",
            provider.dependencies
        );

        let rec = Arc::new(Recorder::default());
        s.apply_recorded(program, false, rec.clone()).await;
        for a in ["apps/ns", "apps/widgets-crd", "apps/demo"] {
            rec.before(("eks/cluster", "create"), (a, "create"));
        }
        rec.before(("apps/widgets-crd", "create"), ("apps/widget", "create"));

        // The cluster is in the emulator; the provider's connection in state is the cluster's
        // (its endpoint and name), never the simulator's URL, never a token.
        let name = s.id("eks/cluster").await;
        assert_eq!(cluster_names().await, vec![name.clone()]);
        let conn = s.outputs("apps/kubernetes").await["connection"].clone();
        assert_eq!(conn["clusterName"], json!(name));
        assert_eq!(conn["endpoint"], s.outputs("eks/cluster").await["endpoint"]);
        assert!(conn.get("sandboxUrl").is_none(), "{conn}");
        let state = serde_json::to_string(&s.snapshot().await).unwrap();
        assert!(!state.contains(&kube.url()), "the sandbox URL leaked into state");
        assert!(!state.contains("k8s-aws-v1."), "a token leaked into state");

        // Everything is in the simulator, ready.
        let nss: Api<Namespace> = Api::all(kube.client.clone());
        assert!(nss.get_opt("e2e").await.unwrap().is_some());
        let dss: Api<DaemonSet> = Api::namespaced(kube.client.clone(), "e2e");
        let st = dss.get("agent").await.unwrap().status.unwrap();
        assert!(st.desired_number_scheduled > 0);
        assert_eq!(st.number_available, Some(st.desired_number_scheduled));
        let widgets: Api<DynamicObject> = Api::namespaced_with(kube.client.clone(), "e2e", &widgets_api());
        assert_eq!(widgets.get("w1").await.unwrap().data["spec"]["size"], json!(3));
        let cms: Api<ConfigMap> = Api::namespaced(kube.client.clone(), "demo-ns");
        assert_eq!(
            cms.get("demo-settings").await.unwrap().data.unwrap()["greeting"],
            "hello"
        );
        assert_eq!(
            s.outputs("apps/demo").await["objects"].as_array().map(Vec::len),
            Some(7)
        );

        // A second look: no changes, and reading every live object finds no drift.
        let plan = s.plan(program).await;
        assert!(
            quiet(&plan),
            "{:#?}",
            plan.changes.iter().filter(|c| c.op != Op::Same).collect::<Vec<_>>()
        );
        let refreshed = s.session(program).refresh(4).await.unwrap();
        assert!(refreshed.drifted.is_empty(), "{:?}", refreshed.drifted);
        assert!(refreshed.errors.is_empty(), "{:?}", refreshed.errors);
        assert!(refreshed.gone.is_empty(), "{:?}", refreshed.gone);

        // Destroy: the Kubernetes objects before the cluster, then the cluster and its network.
        let rec = Arc::new(Recorder::default());
        s.apply_recorded(|_| Ok(()), true, rec.clone()).await;
        for a in ["apps/agent", "apps/widget", "apps/widgets-crd", "apps/ns", "apps/demo"] {
            rec.before((a, "delete"), ("eks/cluster", "delete"));
        }
        rec.before(("apps/widget", "delete"), ("apps/widgets-crd", "delete"));
        rec.before(("apps/agent", "delete"), ("apps/ns", "delete"));
        assert!(s.snapshot().await.resources.is_empty());
        // As it started, but for the CRD of the demo chart's crds/ directory, which helm
        // never deletes (and neither does spar).
        let mut expected = sim_before.clone();
        expected.insert("CustomResourceDefinition /gadgets.example.com".to_string());
        assert_eq!(
            kube_objects(&kube.client).await,
            expected,
            "the simulator as it started, and the chart's crds/ CRD"
        );
        assert!(cluster_names().await.is_empty());
        assert_eq!(vpc_ids().await, vpcs_before);
        kube.sim.shutdown().await;
    });
}
