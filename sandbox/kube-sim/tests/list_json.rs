//! `State::list_json` (what a plain JSON list answers, written from the stored objects) is
//! the same document as `State::list` (the one protobuf and tables are made from): for a
//! typed kind and a custom resource, whole and in pages with continue tokens, with
//! selectors.

use serde_json::{Value, json};
use spar_kube_sim::cluster::create_as;
use spar_kube_sim::ops::{Params, Settings, State};
use spar_kube_sim::{locate_schemas, schema::Schemas};
use std::sync::Arc;
use std::time::Duration;

#[test]
fn a_json_list_written_from_the_store_is_the_list_document() {
    let schemas = Arc::new(Schemas::load(&locate_schemas("1.35").expect("schemas (run sandbox/setup)")).unwrap());
    let settings = Settings {
        ready_delay: Duration::ZERO,
        nodes: 2,
        node_instance_type: "m6i.2xlarge".into(),
        k8s_version: "1.35".into(),
    };
    let mut st = State::new(settings, schemas);
    for i in 0..7 {
        create_as(&mut st, "t", "", "configmaps", "default",
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("cm-{i}"), "labels": {"n": (i % 2).to_string()}}, "data": {"k": "v"}}))
        .unwrap();
    }
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
                 "versions": [{"name": "v1", "served": true, "storage": true,
                               "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}});
    create_as(
        &mut st,
        "t",
        "apiextensions.k8s.io",
        "customresourcedefinitions",
        "",
        crd,
    )
    .unwrap();
    spar_kube_sim::controller::reconcile(&mut st);
    for i in 0..3 {
        create_as(&mut st, "t", "example.com", "widgets", "default",
            json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": format!("w-{i}")}, "spec": {"size": i}}))
        .unwrap();
    }
    let mut compared = 0;
    for (group, version, plural, ns) in [
        ("", "v1", "configmaps", Some("default")),
        ("", "v1", "configmaps", None),
        ("", "v1", "nodes", None),
        ("example.com", "v1", "widgets", Some("default")),
    ] {
        let rt = st
            .kinds()
            .by_resource(group, version, plural)
            .unwrap_or_else(|| panic!("{plural}"));
        for (limit, label) in [
            (None, None),
            (Some(2), None),
            (None, Some("n=1")),
            (Some(1), Some("n=0")),
        ] {
            let mut p = Params {
                limit,
                label_selector: label.map(String::from),
                ..Params::default()
            };
            loop {
                let list = st.list(&rt, ns, &p).unwrap();
                let json: Value = serde_json::from_slice(&st.list_json(&rt, ns, &p).unwrap()).unwrap();
                assert_eq!(json, list, "{plural} {limit:?} {label:?}");
                assert!(
                    !list["items"].as_array().unwrap().is_empty() || label.is_some(),
                    "{plural}"
                );
                compared += 1;
                match list["metadata"]["continue"].as_str() {
                    Some(c) => p.continue_token = Some(c.to_string()),
                    None => break,
                }
            }
        }
    }
    assert!(compared > 16, "{compared} pages compared");
}
