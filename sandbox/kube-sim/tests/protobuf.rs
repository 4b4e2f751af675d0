//! Kubernetes protobuf: envelope round trips against the `k8s-pb` crate's own typed messages
//! (what client-go would put on the wire), and protobuf over HTTP (bodies, answers, errors,
//! watch frames, custom resources refused).

mod common;

use common::Sim;
use k8s_pb::api::apps::v1 as apps;
use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::api::resource::Quantity;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use prost::Message;
use serde_json::{Value, json};
use spar_kube_sim::protobuf::{self, MAGIC, MEDIA_TYPE, Table};
use std::collections::BTreeMap;
use std::sync::OnceLock;

fn table() -> &'static Table {
    static T: OnceLock<Table> = OnceLock::new();
    T.get_or_init(|| {
        let dir = spar_kube_sim::locate_schemas(spar_kube_sim::DEFAULT_K8S_VERSION).expect("schemas");
        let schemas = spar_kube_sim::schema::Schemas::load(&dir).expect("schemas load");
        Table::new(Some(&schemas))
    })
}

/// Envelope a typed message as client-go does.
fn envelope<M: Message>(api_version: &str, kind: &str, m: &M) -> Vec<u8> {
    let unk = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some(api_version.into()),
            kind: Some(kind.into()),
        }),
        raw: Some(m.encode_to_vec()),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut out = MAGIC.to_vec();
    out.extend(unk.encode_to_vec());
    out
}

/// The typed message inside an envelope the simulator wrote.
fn open<M: Message + Default>(bytes: &[u8]) -> (String, String, M) {
    assert_eq!(&bytes[..4], &MAGIC, "envelope magic");
    let unk = Unknown::decode(&bytes[4..]).expect("Unknown");
    let tm = unk.type_meta.unwrap();
    let m = M::decode(unk.raw.unwrap_or_default().as_slice()).expect("typed message");
    (tm.api_version.unwrap(), tm.kind.unwrap(), m)
}

fn meta(name: &str) -> meta::ObjectMeta {
    meta::ObjectMeta {
        name: Some(name.into()),
        namespace: Some("default".into()),
        // Go writes non-pointer fields even when empty: the codec must drop them
        generate_name: Some(String::new()),
        labels: BTreeMap::from([("app".to_string(), name.to_string())]),
        creation_timestamp: Some(meta::Time {
            seconds: Some(1_700_000_000),
            nanos: Some(0),
        }),
        ..Default::default()
    }
}

#[test]
fn configmap_round_trip() {
    let cm = core::ConfigMap {
        metadata: Some(meta("cfg")),
        data: BTreeMap::from([
            ("mode".to_string(), "fast".to_string()),
            ("empty".to_string(), String::new()),
        ]),
        binary_data: BTreeMap::from([("blob".to_string(), vec![0u8, 159, 146, 150])]),
        immutable: Some(false),
    };
    let d = protobuf::decode_envelope(table(), &envelope("v1", "ConfigMap", &cm)).unwrap();
    assert_eq!(
        d.object,
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cfg", "namespace": "default", "labels": {"app": "cfg"}, "creationTimestamp": "2023-11-14T22:13:20Z"},
            "data": {"mode": "fast", "empty": ""},
            "binaryData": {"blob": "AJ+Slg=="},
            // an explicit false of a pointer field survives
            "immutable": false,
        })
    );
    let back = protobuf::encode_envelope(table(), &d.object).unwrap();
    let (av, kind, cm2): (_, _, core::ConfigMap) = open(&back);
    assert_eq!((av.as_str(), kind.as_str()), ("v1", "ConfigMap"));
    let mut want = cm.clone();
    want.metadata.as_mut().unwrap().generate_name = None;
    assert_eq!(cm2, want);
}

#[test]
fn secret_binary_data_round_trip() {
    let bytes: Vec<u8> = (0u8..=255).collect();
    let s = core::Secret {
        metadata: Some(meta("creds")),
        data: BTreeMap::from([
            ("key".to_string(), bytes.clone()),
            ("pw".to_string(), b"s3cr3t".to_vec()),
        ]),
        r#type: Some("Opaque".into()),
        ..Default::default()
    };
    let d = protobuf::decode_envelope(table(), &envelope("v1", "Secret", &s)).unwrap();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    assert_eq!(d.object["data"]["pw"], json!("czNjcjN0"));
    assert_eq!(b64.decode(d.object["data"]["key"].as_str().unwrap()).unwrap(), bytes);
    assert_eq!(d.object["type"], json!("Opaque"));
    let (_, _, s2): (_, _, core::Secret) = open(&protobuf::encode_envelope(table(), &d.object).unwrap());
    assert_eq!(s2.data, s.data);
}

fn deployment() -> apps::Deployment {
    let container = core::Container {
        name: Some("web".into()),
        image: Some("nginx:1.27".into()),
        ports: vec![core::ContainerPort {
            container_port: Some(80),
            protocol: Some("TCP".into()),
            ..Default::default()
        }],
        resources: Some(core::ResourceRequirements {
            limits: BTreeMap::from([(
                "cpu".to_string(),
                Quantity {
                    string: Some("500m".into()),
                },
            )]),
            requests: BTreeMap::from([(
                "memory".to_string(),
                Quantity {
                    string: Some("64Mi".into()),
                },
            )]),
            ..Default::default()
        }),
        // a Go non-pointer bool: on the wire as false
        tty: Some(false),
        ..Default::default()
    };
    apps::Deployment {
        metadata: Some(meta("web")),
        spec: Some(apps::DeploymentSpec {
            replicas: Some(0),
            selector: Some(meta::LabelSelector {
                match_labels: BTreeMap::from([("app".to_string(), "web".to_string())]),
                ..Default::default()
            }),
            template: Some(core::PodTemplateSpec {
                metadata: Some(meta::ObjectMeta {
                    labels: BTreeMap::from([("app".to_string(), "web".to_string())]),
                    ..Default::default()
                }),
                spec: Some(core::PodSpec {
                    containers: vec![container],
                    ..Default::default()
                }),
            }),
            strategy: Some(apps::DeploymentStrategy {
                r#type: Some("RollingUpdate".into()),
                rolling_update: Some(apps::RollingUpdateDeployment {
                    max_unavailable: Some(IntOrString {
                        r#type: Some(0),
                        int_val: Some(1),
                        str_val: Some(String::new()),
                    }),
                    max_surge: Some(IntOrString {
                        r#type: Some(1),
                        int_val: Some(0),
                        str_val: Some("25%".into()),
                    }),
                }),
            }),
            ..Default::default()
        }),
        status: None,
    }
}

#[test]
fn deployment_int_or_string_and_quantity_round_trip() {
    let dep = deployment();
    let d = protobuf::decode_envelope(table(), &envelope("apps/v1", "Deployment", &dep)).unwrap();
    let o = &d.object;
    assert_eq!(o["spec"]["replicas"], json!(0), "explicit replicas 0 kept");
    assert_eq!(
        o["spec"]["strategy"]["rollingUpdate"],
        json!({"maxUnavailable": 1, "maxSurge": "25%"})
    );
    let c = &o["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        c["resources"],
        json!({"limits": {"cpu": "500m"}, "requests": {"memory": "64Mi"}})
    );
    assert_eq!(c["ports"], json!([{"containerPort": 80, "protocol": "TCP"}]));
    assert_eq!(c["tty"], json!(false));
    let (_, _, dep2): (_, _, apps::Deployment) = open(&protobuf::encode_envelope(table(), o).unwrap());
    let rolling = dep2
        .spec
        .as_ref()
        .unwrap()
        .strategy
        .as_ref()
        .unwrap()
        .rolling_update
        .as_ref()
        .unwrap();
    assert_eq!(rolling.max_surge.as_ref().unwrap().str_val.as_deref(), Some("25%"));
    assert_eq!(rolling.max_surge.as_ref().unwrap().r#type, Some(1));
    assert_eq!(rolling.max_unavailable.as_ref().unwrap().int_val, Some(1));
    assert_eq!(dep2.spec.as_ref().unwrap().replicas, Some(0));
    let c2 = &dep2
        .spec
        .as_ref()
        .unwrap()
        .template
        .as_ref()
        .unwrap()
        .spec
        .as_ref()
        .unwrap()
        .containers[0];
    assert_eq!(
        c2.resources.as_ref().unwrap().limits["cpu"].string.as_deref(),
        Some("500m")
    );
    assert_eq!(
        dep2.metadata
            .as_ref()
            .unwrap()
            .creation_timestamp
            .as_ref()
            .unwrap()
            .seconds,
        Some(1_700_000_000)
    );
}

#[test]
fn service_round_trip_with_irregular_names() {
    let svc = core::Service {
        metadata: Some(meta("svc")),
        spec: Some(core::ServiceSpec {
            r#type: Some("ClusterIP".into()),
            cluster_ip: Some("10.96.0.20".into()),
            cluster_ips: vec!["10.96.0.20".into()],
            selector: BTreeMap::from([("app".to_string(), "web".to_string())]),
            ports: vec![
                core::ServicePort {
                    name: Some("http".into()),
                    port: Some(80),
                    target_port: Some(IntOrString {
                        r#type: Some(1),
                        int_val: Some(0),
                        str_val: Some("web".into()),
                    }),
                    ..Default::default()
                },
                core::ServicePort {
                    name: Some("metrics".into()),
                    port: Some(9090),
                    target_port: Some(IntOrString {
                        r#type: Some(0),
                        int_val: Some(9091),
                        str_val: None,
                    }),
                    ..Default::default()
                },
            ],
            ..Default::default()
        }),
        status: None,
    };
    let d = protobuf::decode_envelope(table(), &envelope("v1", "Service", &svc)).unwrap();
    let spec = &d.object["spec"];
    // JSON names come from the official schema: clusterIP / clusterIPs, not clusterIp
    assert_eq!(spec["clusterIP"], json!("10.96.0.20"));
    assert_eq!(spec["clusterIPs"], json!(["10.96.0.20"]));
    assert_eq!(spec["ports"][0]["targetPort"], json!("web"));
    assert_eq!(spec["ports"][1]["targetPort"], json!(9091));
    let (_, _, svc2): (_, _, core::Service) = open(&protobuf::encode_envelope(table(), &d.object).unwrap());
    assert_eq!(svc2.spec.as_ref().unwrap().cluster_ips, vec!["10.96.0.20".to_string()]);
    assert_eq!(
        svc2.spec.as_ref().unwrap().ports[1]
            .target_port
            .as_ref()
            .unwrap()
            .int_val,
        Some(9091)
    );
}

#[test]
fn envelope_errors() {
    assert!(matches!(
        protobuf::decode_envelope(table(), b"{}"),
        Err(protobuf::PbError::NoMagic)
    ));
    assert!(matches!(
        protobuf::decode_envelope(table(), &MAGIC),
        Err(protobuf::PbError::Empty)
    ));
    let cm = core::ConfigMap::default();
    assert!(matches!(
        protobuf::decode_envelope(table(), &envelope("example.com/v1", "Widget", &cm)),
        Err(protobuf::PbError::UnknownMessage(_))
    ));
}

// ---------------------------------------------------------------- over HTTP

async fn raw(
    sim: &Sim,
    method: reqwest::Method,
    path: &str,
    ct: &str,
    accept: &str,
    body: Vec<u8>,
) -> (u16, String, Vec<u8>) {
    let mut r = sim
        .client
        .request(method, format!("{}{}", sim.base, path))
        .header("Accept", accept);
    if !ct.is_empty() {
        r = r.header("Content-Type", ct).body(body);
    }
    let resp = r.send().await.unwrap();
    let code = resp.status().as_u16();
    let ctype = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (code, ctype, resp.bytes().await.unwrap().to_vec())
}

const PB_ACCEPT: &str = "application/vnd.kubernetes.protobuf, */*";

#[tokio::test]
async fn http_protobuf_create_get_list_error_and_watch() {
    let sim = Sim::start().await;
    let dep = deployment();
    let (code, ct, body) = raw(
        &sim,
        reqwest::Method::POST,
        "/apis/apps/v1/namespaces/default/deployments",
        MEDIA_TYPE,
        PB_ACCEPT,
        envelope("apps/v1", "Deployment", &dep),
    )
    .await;
    assert_eq!(code, 201, "{}", String::from_utf8_lossy(&body));
    assert_eq!(ct, MEDIA_TYPE);
    let (_, kind, created): (_, _, apps::Deployment) = open(&body);
    assert_eq!(kind, "Deployment");
    let m = created.metadata.unwrap();
    assert!(m.uid.is_some_and(|u| !u.is_empty()) && m.resource_version.is_some());
    // defaulting ran on the decoded object
    assert_eq!(created.spec.unwrap().revision_history_limit, Some(10));

    // JSON clients see the same object
    let j = sim.get("/apis/apps/v1/namespaces/default/deployments/web").await;
    assert_eq!(j.body["spec"]["strategy"]["rollingUpdate"]["maxSurge"], json!("25%"));

    // list in protobuf
    let (code, ct, body) = raw(&sim, reqwest::Method::GET, "/api/v1/namespaces", "", PB_ACCEPT, vec![]).await;
    assert_eq!((code, ct.as_str()), (200, MEDIA_TYPE));
    let (_, kind, list): (_, _, core::NamespaceList) = open(&body);
    assert_eq!(kind, "NamespaceList");
    assert!(
        list.items
            .iter()
            .any(|n| n.metadata.as_ref().unwrap().name.as_deref() == Some("kube-system"))
    );

    // a Status error in protobuf
    let (code, ct, body) = raw(
        &sim,
        reqwest::Method::GET,
        "/api/v1/namespaces/default/configmaps/nope",
        "",
        PB_ACCEPT,
        vec![],
    )
    .await;
    assert_eq!((code, ct.as_str()), (404, MEDIA_TYPE));
    let (_, kind, status): (_, _, meta::Status) = open(&body);
    assert_eq!(kind, "Status");
    assert_eq!(status.reason.as_deref(), Some("NotFound"));
    assert_eq!(status.message.as_deref(), Some("configmaps \"nope\" not found"));

    // Table answers stay JSON
    let (code, ct, _) = raw(
        &sim,
        reqwest::Method::GET,
        "/api/v1/namespaces",
        "",
        "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
        vec![],
    )
    .await;
    assert_eq!((code, ct.as_str()), (200, "application/json"));

    // watch: length-prefixed WatchEvent frames
    let resp = sim
        .client
        .get(format!("{}/api/v1/namespaces?watch=true&timeoutSeconds=1", sim.base))
        .header("Accept", "application/vnd.kubernetes.protobuf;stream=watch")
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "application/vnd.kubernetes.protobuf;stream=watch"
    );
    let bytes = resp.bytes().await.unwrap();
    let mut rest = &bytes[..];
    let mut names = vec![];
    while !rest.is_empty() {
        let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        let ev = meta::WatchEvent::decode(&rest[4..4 + len]).unwrap();
        assert_eq!(ev.r#type.as_deref(), Some("ADDED"));
        let (_, kind, ns): (_, _, core::Namespace) = open(&ev.object.unwrap().raw.unwrap());
        assert_eq!(kind, "Namespace");
        names.push(ns.metadata.unwrap().name.unwrap());
        rest = &rest[4 + len..];
    }
    assert!(names.contains(&"default".to_string()), "{names:?}");
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn http_protobuf_scale_subresource() {
    let sim = Sim::start().await;
    let a = sim
        .post(
            "/apis/apps/v1/namespaces/default/deployments",
            &common::deployment("web", 2, "nginx:1.27"),
        )
        .await;
    assert_eq!(a.code, 201, "{}", a.body);
    let s = sim.get("/apis/apps/v1/namespaces/default/deployments/web/scale").await;
    assert_eq!(s.code, 200, "{}", s.body);
    assert_eq!(s.body["kind"], json!("Scale"));
    assert_eq!(s.body["spec"]["replicas"], json!(2));
    assert_eq!(s.body["status"]["selector"], json!("app=web"));
    // PUT a protobuf autoscaling/v1 Scale
    let scale = k8s_pb::api::autoscaling::v1::Scale {
        metadata: Some(meta::ObjectMeta {
            name: Some("web".into()),
            namespace: Some("default".into()),
            ..Default::default()
        }),
        spec: Some(k8s_pb::api::autoscaling::v1::ScaleSpec { replicas: Some(5) }),
        status: None,
    };
    let (code, ct, body) = raw(
        &sim,
        reqwest::Method::PUT,
        "/apis/apps/v1/namespaces/default/deployments/web/scale",
        MEDIA_TYPE,
        PB_ACCEPT,
        envelope("autoscaling/v1", "Scale", &scale),
    )
    .await;
    assert_eq!(
        (code, ct.as_str()),
        (200, MEDIA_TYPE),
        "{}",
        String::from_utf8_lossy(&body)
    );
    let (_, kind, got): (_, _, k8s_pb::api::autoscaling::v1::Scale) = open(&body);
    assert_eq!(kind, "Scale");
    assert_eq!(got.spec.unwrap().replicas, Some(5));
    let d = sim.get("/apis/apps/v1/namespaces/default/deployments/web").await;
    assert_eq!(d.body["spec"]["replicas"], json!(5));
    assert_eq!(d.body["metadata"]["generation"], json!(2));
    // merge patch of the Scale
    let p = sim
        .merge_patch(
            "/apis/apps/v1/namespaces/default/deployments/web/scale",
            &json!({"spec": {"replicas": 1}}),
        )
        .await;
    assert_eq!(p.code, 200, "{}", p.body);
    assert_eq!(p.body["spec"]["replicas"], json!(1));
    // no scale on kinds without one
    let n = sim.get("/apis/apps/v1/namespaces/default/daemonsets/x/scale").await;
    assert_eq!(n.code, 404);
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn custom_resources_have_no_protobuf() {
    let sim = Sim::start().await;
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}
    });
    assert_eq!(
        sim.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", &crd)
            .await
            .code,
        201
    );
    sim.wait_for(
        "/apis/example.com/v1/namespaces/default/widgets",
        std::time::Duration::from_secs(10),
        |a| a.code == 200,
    )
    .await;
    let cm = core::ConfigMap::default();
    let (code, _, body) = raw(
        &sim,
        reqwest::Method::POST,
        "/apis/example.com/v1/namespaces/default/widgets",
        MEDIA_TYPE,
        "application/json",
        envelope("example.com/v1", "Widget", &cm),
    )
    .await;
    assert_eq!(code, 415);
    let status: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status["reason"], json!("UnsupportedMediaType"));
    assert_eq!(
        status["message"],
        json!(
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml"
        )
    );
    // protobuf preferred but JSON accepted: JSON; protobuf only: 406
    let (code, ct, _) = raw(
        &sim,
        reqwest::Method::GET,
        "/apis/example.com/v1/namespaces/default/widgets",
        "",
        PB_ACCEPT,
        vec![],
    )
    .await;
    assert_eq!((code, ct.as_str()), (200, "application/json"));
    let (code, _, _) = raw(
        &sim,
        reqwest::Method::GET,
        "/apis/example.com/v1/namespaces/default/widgets",
        "",
        MEDIA_TYPE,
        vec![],
    )
    .await;
    assert_eq!(code, 406);
    sim.handle.shutdown().await;
}
