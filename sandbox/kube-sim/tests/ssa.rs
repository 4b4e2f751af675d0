//! Server-side apply over plain HTTP: field ownership per manager, removal of fields a manager
//! stops applying, conflicts (409 with a real Status), force, and the interplay with Updates.

mod common;

use common::{Sim, cm, deployment, managed};
use serde_json::json;

const CMS: &str = "/api/v1/namespaces/default/configmaps";

#[tokio::test]
async fn two_managers_own_their_fields() {
    let sim = Sim::start().await;
    let path = format!("{CMS}/shared");
    let a = sim
        .apply(&path, "alpha", false, &cm("shared", json!({"a": "1", "b": "1"})))
        .await;
    assert_eq!(a.code, 201, "{}", a.body);
    let b = sim.apply(&path, "beta", false, &cm("shared", json!({"c": "1"}))).await;
    assert_eq!(b.code, 200, "{}", b.body);
    let obj = b.body;
    assert_eq!(obj["data"], json!({"a": "1", "b": "1", "c": "1"}));
    let alpha = managed(&obj, "alpha", "Apply").expect("alpha entry");
    assert_eq!(alpha["fieldsType"], json!("FieldsV1"));
    assert_eq!(alpha["apiVersion"], json!("v1"));
    assert_eq!(alpha["fieldsV1"], json!({"f:data": {"f:a": {}, "f:b": {}}}));
    let beta = managed(&obj, "beta", "Apply").expect("beta entry");
    assert_eq!(beta["fieldsV1"], json!({"f:data": {"f:c": {}}}));
    // applying the same configuration again is a no-op: same resourceVersion
    let again = sim.apply(&path, "beta", false, &cm("shared", json!({"c": "1"}))).await;
    assert_eq!(again.code, 200);
    assert_eq!(
        again.body["metadata"]["resourceVersion"],
        obj["metadata"]["resourceVersion"]
    );
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn fields_no_longer_applied_are_removed_unless_shared() {
    let sim = Sim::start().await;
    let path = format!("{CMS}/prune");
    sim.apply(
        &path,
        "alpha",
        false,
        &cm("prune", json!({"a": "1", "b": "1", "s": "x"})),
    )
    .await;
    // beta co-owns s with the same value: no conflict
    let co = sim.apply(&path, "beta", false, &cm("prune", json!({"s": "x"}))).await;
    assert_eq!(co.code, 200, "{}", co.body);
    // alpha stops applying b and s: b goes, s stays (beta still owns it)
    let r = sim.apply(&path, "alpha", false, &cm("prune", json!({"a": "1"}))).await;
    assert_eq!(r.code, 200, "{}", r.body);
    assert_eq!(r.body["data"], json!({"a": "1", "s": "x"}));
    assert_eq!(
        managed(&r.body, "alpha", "Apply").unwrap()["fieldsV1"],
        json!({"f:data": {"f:a": {}}})
    );
    // beta stops too: s goes
    let r2 = sim
        .apply(
            &path,
            "beta",
            false,
            &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "prune"}}),
        )
        .await;
    assert_eq!(r2.body["data"], json!({"a": "1"}));
    assert!(
        managed(&r2.body, "beta", "Apply").is_none(),
        "an empty field set drops the entry"
    );
    // labels are granular too
    let l = sim.apply(&path, "alpha", false, &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "prune", "labels": {"x": "1", "y": "2"}}, "data": {"a": "1"}})).await;
    assert_eq!(l.body["metadata"]["labels"], json!({"x": "1", "y": "2"}));
    let l2 = sim.apply(&path, "alpha", false, &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "prune", "labels": {"x": "1"}}, "data": {"a": "1"}})).await;
    assert_eq!(l2.body["metadata"]["labels"], json!({"x": "1"}));
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn conflicts_and_force() {
    let sim = Sim::start().await;
    let path = format!("{CMS}/contested");
    sim.apply(&path, "alpha", false, &cm("contested", json!({"a": "1", "b": "1"})))
        .await;
    let c = sim
        .apply(&path, "beta", false, &cm("contested", json!({"a": "2"})))
        .await;
    assert_eq!(c.code, 409, "{}", c.body);
    assert_eq!(c.body["kind"], json!("Status"));
    assert_eq!(c.body["status"], json!("Failure"));
    assert_eq!(c.body["reason"], json!("Conflict"));
    assert_eq!(c.body["code"], json!(409));
    assert_eq!(
        c.msg(),
        "Apply failed with 1 conflict: conflict with \"alpha\": .data.a"
    );
    assert_eq!(
        c.body["details"]["causes"],
        json!([{"reason": "FieldManagerConflict", "message": "conflict with \"alpha\"", "field": ".data.a"}])
    );
    assert_eq!(
        sim.get(&path).await.body["data"]["a"],
        json!("1"),
        "a failed apply changes nothing"
    );
    // two conflicting fields
    let c2 = sim
        .apply(&path, "beta", false, &cm("contested", json!({"a": "2", "b": "2"})))
        .await;
    assert_eq!(c2.code, 409);
    assert_eq!(
        c2.msg(),
        "Apply failed with 2 conflicts: conflicts with \"alpha\":\n- .data.a\n- .data.b"
    );
    // force moves ownership
    let f = sim
        .apply(&path, "beta", true, &cm("contested", json!({"a": "2"})))
        .await;
    assert_eq!(f.code, 200, "{}", f.body);
    assert_eq!(f.body["data"], json!({"a": "2", "b": "1"}));
    assert_eq!(
        managed(&f.body, "alpha", "Apply").unwrap()["fieldsV1"],
        json!({"f:data": {"f:b": {}}})
    );
    assert_eq!(
        managed(&f.body, "beta", "Apply").unwrap()["fieldsV1"],
        json!({"f:data": {"f:a": {}}})
    );
    // alpha re-applying its old config now conflicts with beta
    let back = sim
        .apply(&path, "alpha", false, &cm("contested", json!({"a": "1", "b": "1"})))
        .await;
    assert_eq!(back.code, 409);
    assert_eq!(
        back.msg(),
        "Apply failed with 1 conflict: conflict with \"beta\": .data.a"
    );
    // alpha dropping a it does not own leaves it alone
    let keep = sim
        .apply(&path, "alpha", false, &cm("contested", json!({"b": "1"})))
        .await;
    assert_eq!(keep.body["data"], json!({"a": "2", "b": "1"}));
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn updates_take_ownership_and_conflict_with_apply() {
    let sim = Sim::start().await;
    let path = format!("{CMS}/mixed");
    sim.apply(&path, "spar", false, &cm("mixed", json!({"a": "1"}))).await;
    // a merge patch by another manager never conflicts; it takes the field
    let p = sim
        .merge_patch(
            &format!("{path}?fieldManager=editor"),
            &json!({"data": {"a": "hand-edited"}}),
        )
        .await;
    assert_eq!(p.code, 200, "{}", p.body);
    let editor = managed(&p.body, "editor", "Update").expect("editor entry");
    assert_eq!(editor["fieldsV1"], json!({"f:data": {"f:a": {}}}));
    assert!(managed(&p.body, "spar", "Apply").is_none(), "spar lost its only field");
    // spar re-applying its value conflicts with the Update manager
    let c = sim.apply(&path, "spar", false, &cm("mixed", json!({"a": "1"}))).await;
    assert_eq!(c.code, 409);
    assert_eq!(
        c.msg(),
        "Apply failed with 1 conflict: conflict with \"editor\" using v1: .data.a"
    );
    let f = sim.apply(&path, "spar", true, &cm("mixed", json!({"a": "1"}))).await;
    assert_eq!(f.body["data"]["a"], json!("1"));
    assert!(managed(&f.body, "editor", "Update").is_none());
    // objects created by POST belong to their creator (default manager from the user agent)
    let created = sim
        .post(&format!("{CMS}?fieldManager=creator"), &cm("made", json!({"x": "1"})))
        .await;
    assert_eq!(
        managed(&created.body, "creator", "Update").unwrap()["fieldsV1"],
        json!({"f:data": {"f:x": {}}})
    );
    let c2 = sim
        .apply(&format!("{CMS}/made"), "spar", false, &cm("made", json!({"x": "2"})))
        .await;
    assert_eq!(c2.code, 409);
    assert_eq!(
        c2.body["details"]["causes"][0]["message"],
        json!("conflict with \"creator\" using v1")
    );
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn associative_lists_merge_by_key() {
    let sim = Sim::start().await;
    let path = "/apis/apps/v1/namespaces/default/deployments/web";
    let a = sim
        .apply(path, "spar", false, &deployment("web", 1, "nginx:1.27"))
        .await;
    assert_eq!(a.code, 201, "{}", a.body);
    let sidecar = json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"template": {"spec": {"containers": [{"name": "proxy", "image": "envoy:1.30"}]}}}
    });
    let b = sim.apply(path, "mesh", false, &sidecar).await;
    assert_eq!(b.code, 200, "{}", b.body);
    let names: Vec<&str> = b.body["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["main", "proxy"]);
    let mesh = managed(&b.body, "mesh", "Apply").unwrap();
    assert_eq!(
        mesh["fieldsV1"],
        json!({"f:spec": {"f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"proxy\"}": {".": {}, "f:image": {}, "f:name": {}}}}}}})
    );
    // changing spar's image: no conflict, generation moves
    let up = sim
        .apply(path, "spar", false, &deployment("web", 1, "nginx:1.28"))
        .await;
    assert_eq!(up.code, 200, "{}", up.body);
    assert_eq!(up.body["metadata"]["generation"], json!(3));
    // mesh changing spar's container conflicts on that container's image only
    let bad = json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"template": {"spec": {"containers": [{"name": "main", "image": "evil:1"}, {"name": "proxy", "image": "envoy:1.30"}]}}}
    });
    let c = sim.apply(path, "mesh", false, &bad).await;
    assert_eq!(c.code, 409);
    assert_eq!(
        c.msg(),
        "Apply failed with 1 conflict: conflict with \"spar\": .spec.template.spec.containers[name=\"main\"].image"
    );
    // mesh removing its sidecar removes only it
    let gone = sim
        .apply(
            path,
            "mesh",
            false,
            &json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}}),
        )
        .await;
    let names: Vec<&str> = gone.body["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["main"]);
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn apply_request_rules() {
    let sim = Sim::start().await;
    // fieldManager is required
    let r = sim
        .req(
            reqwest::Method::PATCH,
            &format!("{CMS}/x"),
            "application/apply-patch+yaml",
            Some(&cm("x", json!({}))),
        )
        .await;
    assert_eq!(r.code, 422, "{}", r.body);
    assert_eq!(
        r.msg(),
        "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"
    );
    // force is only for apply
    let f = sim.merge_patch(&format!("{CMS}/x?force=true"), &json!({})).await;
    assert_eq!(f.code, 422);
    // a stale resourceVersion in the configuration is a precondition failure
    let a = sim
        .apply(&format!("{CMS}/x"), "t", false, &cm("x", json!({"a": "1"})))
        .await;
    assert_eq!(a.code, 201);
    let mut stale = cm("x", json!({"a": "2"}));
    stale["metadata"]["resourceVersion"] = json!("1");
    assert_eq!(sim.apply(&format!("{CMS}/x"), "t", false, &stale).await.code, 409);
    // kind must match the URL, name must match
    let wrong = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}});
    assert_eq!(sim.apply(&format!("{CMS}/x"), "t", false, &wrong).await.code, 400);
    assert_eq!(
        sim.apply(&format!("{CMS}/y"), "t", false, &cm("x", json!({})))
            .await
            .code,
        400
    );
    // managedFields may not be applied
    let mut mf = cm("x", json!({}));
    mf["metadata"]["managedFields"] = json!([{"manager": "me"}]);
    assert_eq!(sim.apply(&format!("{CMS}/x"), "t", false, &mf).await.code, 400);
    // status of apps kinds is owned through /status only
    let d = sim
        .apply(
            "/apis/apps/v1/namespaces/default/deployments/s",
            "t",
            false,
            &deployment("s", 0, "nginx"),
        )
        .await;
    assert_eq!(d.code, 201);
    let st = sim
        .apply("/apis/apps/v1/namespaces/default/deployments/s/status", "probe", true, &json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "s"}, "status": {"collisionCount": 4}}))
        .await;
    assert_eq!(st.code, 200, "{}", st.body);
    assert_eq!(st.body["status"]["collisionCount"], json!(4));
    let e = managed(&st.body, "probe", "Apply").unwrap();
    assert_eq!(e["subresource"], json!("status"));
    sim.handle.shutdown().await;
}
