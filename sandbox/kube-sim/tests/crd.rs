//! CustomResourceDefinitions over plain HTTP: establishment, discovery, real scopes, CR
//! validation against the CRD schema, defaults, status subresource, deletion cascade.

mod common;

use common::{Sim, managed};
use serde_json::{Value, json};
use std::time::Duration;

fn widget_crd(scope: &str, plural: &str, kind: &str) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.example.com")},
        "spec": {
            "group": "example.com",
            "scope": scope,
            "names": {"plural": plural, "singular": kind.to_lowercase(), "kind": kind, "shortNames": [format!("{}x", &plural[..2])]},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [{"name": "Size", "type": "integer", "jsonPath": ".spec.size"}],
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": {
                            "type": "object",
                            "required": ["size"],
                            "properties": {
                                "size": {"type": "integer", "minimum": 1},
                                "color": {"type": "string", "enum": ["red", "blue"], "default": "red"},
                                "port": {"x-kubernetes-int-or-string": true},
                                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                                "items": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                                          "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}, "value": {"type": "string"}}}}
                            }
                        },
                        "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}}
                    }
                }}
            }]
        }
    })
}

async fn establish(sim: &Sim, crd: &Value) -> Value {
    let name = crd["metadata"]["name"].as_str().unwrap().to_string();
    let c = sim
        .post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
        .await;
    assert_eq!(c.code, 201, "{}", c.body);
    sim.wait_for(
        &format!("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"),
        Duration::from_secs(5),
        |a| {
            a.body["status"]["conditions"]
                .as_array()
                .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Established" && c["status"] == "True"))
        },
    )
    .await
    .body
}

#[tokio::test]
async fn namespaced_crd_is_served_and_validated() {
    let sim = Sim::start().await;
    let crd = establish(&sim, &widget_crd("Namespaced", "widgets", "Widget")).await;
    let conds = crd["status"]["conditions"].as_array().unwrap();
    assert!(
        conds
            .iter()
            .any(|c| c["type"] == "NamesAccepted" && c["status"] == "True")
    );
    assert_eq!(crd["status"]["acceptedNames"]["kind"], json!("Widget"));
    assert_eq!(crd["status"]["acceptedNames"]["listKind"], json!("WidgetList"));
    assert_eq!(crd["status"]["storedVersions"], json!(["v1"]));
    assert_eq!(
        crd["metadata"]["finalizers"],
        json!(["customresourcecleanup.apiextensions.k8s.io"])
    );

    // discovery
    let groups = sim.get("/apis").await.body;
    assert!(
        groups["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["name"] == "example.com")
    );
    let res = sim.get("/apis/example.com/v1").await.body;
    let w = res["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "widgets")
        .unwrap();
    assert_eq!(
        (w["kind"].as_str(), w["namespaced"].as_bool(), w["shortNames"].clone()),
        (Some("Widget"), Some(true), json!(["wix"]))
    );

    // CRUD in a namespace, defaults applied
    let base = "/apis/example.com/v1/namespaces/default/widgets";
    let ok = sim.post(base, &json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": {"size": 3, "port": "http", "extra": {"anything": {"goes": 1}}}})).await;
    assert_eq!(ok.code, 201, "{}", ok.body);
    assert_eq!(ok.body["spec"]["color"], json!("red"));
    assert_eq!(ok.body["spec"]["extra"], json!({"anything": {"goes": 1}}));
    assert_eq!(ok.body["metadata"]["generation"], json!(1));
    assert_eq!(sim.get(&format!("{base}/w1")).await.body["spec"]["size"], json!(3));
    // a namespaced kind has no cluster-scoped object path
    assert_eq!(sim.get("/apis/example.com/v1/widgets/w1").await.code, 404);
    let all = sim.get("/apis/example.com/v1/widgets").await.body;
    assert_eq!(all["kind"], json!("WidgetList"));
    assert_eq!(all["items"][0]["kind"], json!("Widget"));

    // wrong type: 422 naming the path
    let bad = sim.post(base, &json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w2"}, "spec": {"size": "big"}})).await;
    assert_eq!(bad.code, 422, "{}", bad.body);
    assert_eq!(bad.body["reason"], json!("Invalid"));
    assert_eq!(
        bad.msg(),
        "Widget.example.com \"w2\" is invalid: spec.size: Invalid value: \"big\": spec.size in body must be of type integer: \"string\""
    );
    assert_eq!(bad.body["details"]["causes"][0]["field"], json!("spec.size"));
    // required, enum and minimum
    let inv = sim.post(base, &json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w3"}, "spec": {"color": "green"}})).await;
    assert_eq!(inv.code, 422);
    let fields: Vec<&str> = inv.body["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert!(
        fields.contains(&"spec.size") && fields.contains(&"spec.color"),
        "{fields:?}"
    );
    let small = sim
        .post(
            base,
            &json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w4"}, "spec": {"size": 0}}),
        )
        .await;
    assert_eq!(small.code, 422);
    // unknown fields: Strict rejects, Warn (default) prunes with a warning
    let unk = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w5"}, "spec": {"size": 1, "shape": "round"}});
    let strict = sim.post(&format!("{base}?fieldValidation=Strict"), &unk).await;
    assert_eq!(strict.code, 400);
    assert_eq!(strict.msg(), "strict decoding error: unknown field \"spec.shape\"");
    let warn = sim.post(base, &unk).await;
    assert_eq!(warn.code, 201);
    assert!(warn.body["spec"].get("shape").is_none());
    assert_eq!(warn.warnings.len(), 1, "{:?}", warn.warnings);
    // server-side apply against the CRD schema, list-map merge on "name"
    let ap = sim.apply(&format!("{base}/w6"), "spar", false, &json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w6"}, "spec": {"size": 2, "items": [{"name": "a", "value": "1"}]}})).await;
    assert_eq!(ap.code, 201, "{}", ap.body);
    let ap2 = sim.apply(&format!("{base}/w6"), "other", false, &json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w6"}, "spec": {"items": [{"name": "b", "value": "2"}]}})).await;
    assert_eq!(ap2.body["spec"]["items"].as_array().unwrap().len(), 2);
    let apbad = sim.apply(&format!("{base}/w6"), "spar", false, &json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w6"}, "spec": {"size": 2, "nope": 1}})).await;
    assert_eq!(apbad.code, 400);
    assert!(
        apbad.msg().contains(".spec.nope: field not declared in schema"),
        "{}",
        apbad.msg()
    );
    // status subresource: status ignored on the main resource, generation untouched by status
    let st = sim
        .merge_patch(&format!("{base}/w1/status"), &json!({"status": {"ready": true}}))
        .await;
    assert_eq!(st.code, 200, "{}", st.body);
    assert_eq!(st.body["status"]["ready"], json!(true));
    assert_eq!(st.body["metadata"]["generation"], json!(1));
    let main = sim
        .merge_patch(
            &format!("{base}/w1"),
            &json!({"status": {"ready": false}, "spec": {"size": 4}}),
        )
        .await;
    assert_eq!(main.body["status"]["ready"], json!(true));
    assert_eq!(main.body["metadata"]["generation"], json!(2));
    // strategic merge patch is not for custom resources
    let smp = sim
        .req(
            reqwest::Method::PATCH,
            &format!("{base}/w1"),
            "application/strategic-merge-patch+json",
            Some(&json!({})),
        )
        .await;
    assert_eq!(smp.code, 415);
    // Table output uses the printer columns
    let tbl = sim
        .client
        .get(format!("{}{base}", sim.base))
        .header("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(tbl["kind"], json!("Table"));
    let cols: Vec<&str> = tbl["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(cols, vec!["Name", "Size", "Age"]);
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn cluster_scoped_crd_and_deletion_cascade() {
    let sim = Sim::start().await;
    establish(&sim, &widget_crd("Cluster", "gadgets", "Gadget")).await;
    let res = sim.get("/apis/example.com/v1").await.body;
    assert_eq!(
        res["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "gadgets")
            .unwrap()["namespaced"],
        json!(false)
    );
    let base = "/apis/example.com/v1/gadgets";
    let g = sim
        .post(
            base,
            &json!({"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g1"}, "spec": {"size": 1}}),
        )
        .await;
    assert_eq!(g.code, 201, "{}", g.body);
    assert!(g.body["metadata"].get("namespace").is_none());
    assert_eq!(
        sim.get("/apis/example.com/v1/namespaces/default/gadgets").await.code,
        404
    );
    let held = json!({"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g2", "finalizers": ["example.com/hold"]}, "spec": {"size": 1}});
    assert_eq!(sim.post(base, &held).await.code, 201);
    let ap = sim
        .apply(
            &format!("{base}/g3"),
            "spar",
            false,
            &json!({"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g3"}, "spec": {"size": 5}}),
        )
        .await;
    assert_eq!(ap.code, 201, "{}", ap.body);
    assert!(managed(&ap.body, "spar", "Apply").is_some());

    // deleting the CRD deletes its objects; the finalized one holds the CRD
    let d = sim
        .delete("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gadgets.example.com")
        .await;
    assert_eq!(d.code, 200);
    sim.wait_for(&format!("{base}/g1"), Duration::from_secs(5), |a| a.code == 404)
        .await;
    sim.wait_for(&format!("{base}/g3"), Duration::from_secs(5), |a| a.code == 404)
        .await;
    let crd = sim
        .get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gadgets.example.com")
        .await;
    assert_eq!(crd.code, 200);
    assert!(
        crd.body["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "Terminating")
    );
    // no new objects while terminating
    let late = sim
        .post(
            base,
            &json!({"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g9"}, "spec": {"size": 1}}),
        )
        .await;
    assert_eq!(late.code, 405, "{}", late.body);
    let rel = sim
        .merge_patch(&format!("{base}/g2"), &json!({"metadata": {"finalizers": null}}))
        .await;
    assert_eq!(rel.code, 200, "{}", rel.body);
    sim.wait_for(
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gadgets.example.com",
        Duration::from_secs(5),
        |a| a.code == 404,
    )
    .await;
    sim.wait_for("/apis/example.com/v1", Duration::from_secs(5), |a| a.code == 404)
        .await;
    assert!(
        !sim.get("/apis").await.body["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["name"] == "example.com")
    );
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn invalid_crds_are_rejected() {
    let sim = Sim::start().await;
    let mut crd = widget_crd("Namespaced", "widgets", "Widget");
    crd["metadata"]["name"] = json!("wrong.example.com");
    let a = sim
        .post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", &crd)
        .await;
    assert_eq!(a.code, 422, "{}", a.body);
    assert_eq!(a.body["details"]["causes"][0]["field"], json!("metadata.name"));
    let mut crd = widget_crd("Galaxy", "widgets", "Widget");
    crd["spec"]["versions"][0].as_object_mut().unwrap().remove("schema");
    let b = sim
        .post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", &crd)
        .await;
    assert_eq!(b.code, 422);
    let fields: Vec<&str> = b.body["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert!(
        fields.contains(&"spec.scope") && fields.contains(&"spec.versions[0].schema.openAPIV3Schema"),
        "{fields:?}"
    );
    // an unknown field in a CRD is caught by the official CRD schema
    let mut crd = widget_crd("Namespaced", "widgets", "Widget");
    crd["spec"]["scopee"] = json!("x");
    let c = sim
        .post(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions?fieldValidation=Strict",
            &crd,
        )
        .await;
    assert_eq!(c.code, 400);
    assert!(c.msg().contains("unknown field \"spec.scopee\""), "{}", c.msg());
    sim.handle.shutdown().await;
}
