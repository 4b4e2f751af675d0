//! Plain-HTTP tests of the core API: discovery, CRUD, selectors, preconditions, generation,
//! finalizers, namespace cascade, dry-run, validation answers, watch and readiness.

mod common;

use common::{Sim, cm, daemonset, deployment};
use serde_json::{Value, json};
use spar_kube_sim::SimConfig;
use std::time::{Duration, Instant};

const CMS: &str = "/api/v1/namespaces/default/configmaps";

#[tokio::test]
async fn discovery_and_health() {
    let sim = Sim::start().await;
    assert_eq!(sim.get("/healthz").await.body, json!("ok"));
    assert_eq!(sim.get("/readyz").await.body, json!("ok"));
    assert_eq!(sim.get("/livez").await.body, json!("ok"));
    let v = sim.get("/version").await.body;
    assert_eq!((v["major"].as_str(), v["minor"].as_str()), (Some("1"), Some("35")));
    let core = sim.get("/api/v1").await.body;
    let res = |name: &str| {
        core["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(res("namespaces")["namespaced"], json!(false));
    assert_eq!(res("configmaps")["namespaced"], json!(true));
    assert_eq!(res("configmaps")["shortNames"], json!(["cm"]));
    let groups = sim.get("/apis").await.body;
    let names: Vec<&str> = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    for g in [
        "apps",
        "rbac.authorization.k8s.io",
        "apiextensions.k8s.io",
        "admissionregistration.k8s.io",
        "scheduling.k8s.io",
        "policy",
    ] {
        assert!(names.contains(&g), "{g} missing from {names:?}");
    }
    let rbac = sim.get("/apis/rbac.authorization.k8s.io/v1").await.body;
    let cr = rbac["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "clusterroles")
        .unwrap();
    assert_eq!(
        (cr["kind"].as_str(), cr["namespaced"].as_bool()),
        (Some("ClusterRole"), Some(false))
    );
    // the apps group lists the status subresources
    let apps = sim.get("/apis/apps/v1").await.body;
    assert!(
        apps["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "deployments/status")
    );
    assert_eq!(sim.get("/apis/nope.example.com/v1").await.code, 404);
    // openapi v3 advertises fieldValidation on PATCH, which is what kubectl checks
    let idx = sim.get("/openapi/v3").await.body;
    let url = idx["paths"]["apis/apps/v1"]["serverRelativeURL"]
        .as_str()
        .unwrap()
        .to_string();
    let doc = sim.get(&url).await.body;
    let patch = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/daemonsets/{name}"]["patch"];
    assert_eq!(patch["x-kubernetes-group-version-kind"]["kind"], json!("DaemonSet"));
    assert!(
        patch["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "fieldValidation")
    );
    assert_eq!(sim.get("/openapi/v2").await.code, 404);
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn create_get_list_replace_delete() {
    let sim = Sim::start().await;
    let a = sim.post(CMS, &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "one", "labels": {"app": "web", "tier": "front"}}, "data": {"k": "v"}})).await;
    assert_eq!(a.code, 201, "{}", a.body);
    let created = a.body;
    assert!(!created["metadata"]["uid"].as_str().unwrap().is_empty());
    assert!(created["metadata"]["creationTimestamp"].is_string());
    let rv1: u64 = created["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        created["metadata"].get("generation").is_none(),
        "ConfigMaps keep no generation"
    );
    assert_eq!(created["metadata"]["managedFields"][0]["operation"], json!("Update"));

    sim.post(CMS, &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "two", "labels": {"app": "api", "tier": "back"}}})).await;
    sim.post(
        CMS,
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "three", "labels": {"app": "web"}}}),
    )
    .await;

    // duplicate
    let dup = sim.post(CMS, &cm("one", json!({}))).await;
    assert_eq!(dup.code, 409);
    assert_eq!(dup.body["reason"], json!("AlreadyExists"));
    assert_eq!(dup.msg(), "configmaps \"one\" already exists");
    assert_eq!(dup.body["details"], json!({"name": "one", "kind": "configmaps"}));

    // get
    let got = sim.get(&format!("{CMS}/one")).await;
    assert_eq!(got.body["data"], json!({"k": "v"}));
    let missing = sim.get(&format!("{CMS}/nope")).await;
    assert_eq!(missing.code, 404);
    assert_eq!(missing.body["kind"], json!("Status"));
    assert_eq!(missing.body["status"], json!("Failure"));
    assert_eq!(missing.msg(), "configmaps \"nope\" not found");

    // selectors
    let names = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
            .collect()
    };
    let sel = |s: &str| {
        format!(
            "{CMS}?labelSelector={}",
            s.replace(' ', "%20")
                .replace('!', "%21")
                .replace('=', "%3D")
                .replace(',', "%2C")
        )
    };
    assert_eq!(names(&sim.get(&sel("app=web")).await.body), vec!["one", "three"]);
    assert_eq!(names(&sim.get(&sel("app!=web")).await.body), vec!["two"]);
    assert_eq!(
        names(&sim.get(&sel("app in (api,web),tier")).await.body),
        vec!["one", "two"]
    );
    assert_eq!(
        names(&sim.get(&sel("tier notin (front)")).await.body),
        vec!["three", "two"]
    );
    assert_eq!(names(&sim.get(&sel("!tier")).await.body), vec!["three"]);
    assert_eq!(
        names(&sim.get(&format!("{CMS}?fieldSelector=metadata.name%3Dtwo")).await.body),
        vec!["two"]
    );
    assert_eq!(
        names(&sim.get(&format!("{CMS}?fieldSelector=metadata.name!%3Dtwo")).await.body),
        vec!["one", "three"]
    );
    assert_eq!(sim.get(&format!("{CMS}?fieldSelector=data.k%3Dv")).await.code, 400);
    let all = sim
        .get("/api/v1/configmaps?fieldSelector=metadata.namespace%3Ddefault")
        .await
        .body;
    assert_eq!(all["kind"], json!("ConfigMapList"));
    assert_eq!(names(&all).len(), 3);
    assert!(
        all["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= rv1
    );

    // pagination
    let page1 = sim.get(&format!("{CMS}?limit=2")).await.body;
    assert_eq!(names(&page1), vec!["one", "three"]);
    let tok = page1["metadata"]["continue"].as_str().unwrap();
    let page2 = sim.get(&format!("{CMS}?limit=2&continue={tok}")).await.body;
    assert_eq!(names(&page2), vec!["two"]);
    assert!(page2["metadata"].get("continue").is_none());

    // replace with the current resourceVersion, then with a stale one
    let mut body = created.clone();
    body["data"] = json!({"k": "v2"});
    let put = sim.put(&format!("{CMS}/one"), &body).await;
    assert_eq!(put.code, 200, "{}", put.body);
    let rv2: u64 = put.body["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(rv2 > rv1);
    let stale = sim.put(&format!("{CMS}/one"), &body).await;
    assert_eq!(stale.code, 409);
    assert_eq!(stale.body["reason"], json!("Conflict"));
    assert_eq!(
        stale.msg(),
        "Operation cannot be fulfilled on configmaps \"one\": the object has been modified; please apply your changes to the latest version and try again"
    );
    // a no-op replace keeps the resourceVersion
    let same = sim.put(&format!("{CMS}/one"), &put.body).await;
    assert_eq!(
        same.body["metadata"]["resourceVersion"],
        put.body["metadata"]["resourceVersion"]
    );
    // name mismatch
    assert_eq!(sim.put(&format!("{CMS}/two"), &put.body).await.code, 400);

    // delete
    let del = sim.delete(&format!("{CMS}/one")).await;
    assert_eq!(del.code, 200);
    assert_eq!(del.body["status"], json!("Success"));
    assert_eq!(sim.get(&format!("{CMS}/one")).await.code, 404);
    assert_eq!(sim.delete(&format!("{CMS}/one")).await.code, 404);
    // delete collection by selector
    let dc = sim
        .req(
            reqwest::Method::DELETE,
            &format!("{CMS}?labelSelector=app%3Dweb"),
            "",
            None,
        )
        .await;
    assert_eq!(dc.code, 200);
    assert_eq!(names(&sim.get(CMS).await.body), vec!["two"]);
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn missing_namespace_and_scopes() {
    let sim = Sim::start().await;
    let a = sim
        .post("/api/v1/namespaces/ghost/configmaps", &cm("x", json!({})))
        .await;
    assert_eq!(a.code, 404);
    assert_eq!(a.msg(), "namespaces \"ghost\" not found");
    assert_eq!(a.body["details"]["kind"], json!("namespaces"));
    let b = sim
        .apply("/api/v1/namespaces/ghost/configmaps/x", "t", false, &cm("x", json!({})))
        .await;
    assert_eq!(b.code, 404);
    // a namespaced kind has no cluster-level object path; a cluster kind no namespaced one
    assert_eq!(sim.get("/api/v1/configmaps/x").await.code, 404);
    assert_eq!(
        sim.get("/apis/rbac.authorization.k8s.io/v1/namespaces/default/clusterroles")
            .await
            .code,
        404
    );
    let cr = sim.post("/apis/rbac.authorization.k8s.io/v1/clusterroles", &json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "system:spar:reader"}, "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]})).await;
    assert_eq!(cr.code, 201, "{}", cr.body);
    assert!(cr.body["metadata"].get("namespace").is_none());
    // a body namespace that disagrees with the URL
    let mut other = cm("y", json!({}));
    other["metadata"]["namespace"] = json!("kube-system");
    assert_eq!(sim.post(CMS, &other).await.code, 400);
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn generation_semantics() {
    let sim = Sim::start().await;
    let path = "/apis/apps/v1/namespaces/default/deployments";
    let d = sim.post(path, &deployment("web", 2, "nginx:1.27")).await;
    assert_eq!(d.code, 201, "{}", d.body);
    assert_eq!(d.body["metadata"]["generation"], json!(1));
    // defaults a real server fills in
    assert_eq!(d.body["spec"]["strategy"]["type"], json!("RollingUpdate"));
    assert_eq!(
        d.body["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"],
        json!("IfNotPresent")
    );
    // metadata change: no new generation
    let m = sim
        .merge_patch(&format!("{path}/web"), &json!({"metadata": {"labels": {"team": "a"}}}))
        .await;
    assert_eq!(m.code, 200, "{}", m.body);
    assert_eq!(m.body["metadata"]["generation"], json!(1));
    // status change through /status: no new generation, and spec untouched
    let s = sim
        .merge_patch(
            &format!("{path}/web/status"),
            &json!({"status": {"replicas": 7}, "spec": {"replicas": 9}}),
        )
        .await;
    assert_eq!(s.code, 200, "{}", s.body);
    assert_eq!(s.body["metadata"]["generation"], json!(1));
    assert_eq!(s.body["spec"]["replicas"], json!(2));
    // status through the main resource is ignored
    let ignored = sim
        .merge_patch(&format!("{path}/web"), &json!({"status": {"replicas": 42}}))
        .await;
    assert_ne!(ignored.body["status"]["replicas"], json!(42));
    // spec change: generation 2
    let g = sim
        .merge_patch(&format!("{path}/web"), &json!({"spec": {"replicas": 3}}))
        .await;
    assert_eq!(g.body["metadata"]["generation"], json!(2));
    let g2 = sim
        .merge_patch(
            &format!("{path}/web"),
            &json!({"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "nginx:1.28"}]}}}}),
        )
        .await;
    assert_eq!(g2.body["metadata"]["generation"], json!(3));
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn finalizers_hold_deletion() {
    let sim = Sim::start().await;
    let mut obj = cm("held", json!({"a": "b"}));
    obj["metadata"]["finalizers"] = json!(["example.com/hold"]);
    assert_eq!(sim.post(CMS, &obj).await.code, 201);
    let del = sim.delete(&format!("{CMS}/held")).await;
    assert_eq!(del.code, 200);
    assert!(del.body["metadata"]["deletionTimestamp"].is_string(), "{}", del.body);
    let still = sim.get(&format!("{CMS}/held")).await;
    assert_eq!(still.code, 200);
    assert!(still.body["metadata"]["deletionTimestamp"].is_string());
    // no new finalizers while deleting
    let add = sim
        .merge_patch(
            &format!("{CMS}/held"),
            &json!({"metadata": {"finalizers": ["example.com/hold", "example.com/more"]}}),
        )
        .await;
    assert_eq!(add.code, 422, "{}", add.body);
    // removing the last finalizer completes the deletion
    let rm = sim
        .merge_patch(&format!("{CMS}/held"), &json!({"metadata": {"finalizers": null}}))
        .await;
    assert_eq!(rm.code, 200, "{}", rm.body);
    assert_eq!(sim.get(&format!("{CMS}/held")).await.code, 404);
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn namespace_cascade() {
    let sim = Sim::start().await;
    sim.namespace("team").await;
    let ns_cms = "/api/v1/namespaces/team/configmaps";
    assert_eq!(sim.post(ns_cms, &cm("a", json!({}))).await.code, 201);
    let mut held = cm("held", json!({}));
    held["metadata"]["finalizers"] = json!(["example.com/hold"]);
    assert_eq!(sim.post(ns_cms, &held).await.code, 201);
    assert_eq!(
        sim.post(
            "/apis/apps/v1/namespaces/team/deployments",
            &deployment("d", 1, "nginx")
        )
        .await
        .code,
        201
    );
    let del = sim.delete("/api/v1/namespaces/team").await;
    assert_eq!(del.code, 200);
    assert_eq!(del.body["status"]["phase"], json!("Terminating"));
    // creating in a terminating namespace is forbidden
    let forbidden = sim.post(ns_cms, &cm("late", json!({}))).await;
    assert_eq!(forbidden.code, 403, "{}", forbidden.body);
    assert_eq!(
        forbidden.msg(),
        "configmaps \"late\" is forbidden: unable to create new content in namespace team because it is being terminated"
    );
    // contents go; the finalized one waits, and holds the namespace
    sim.wait_for(
        "/apis/apps/v1/namespaces/team/deployments/d",
        Duration::from_secs(5),
        |a| a.code == 404,
    )
    .await;
    sim.wait_for(&format!("{ns_cms}/a"), Duration::from_secs(5), |a| a.code == 404)
        .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(sim.get("/api/v1/namespaces/team").await.code, 200);
    let h = sim.get(&format!("{ns_cms}/held")).await;
    assert!(h.body["metadata"]["deletionTimestamp"].is_string());
    sim.merge_patch(&format!("{ns_cms}/held"), &json!({"metadata": {"finalizers": []}}))
        .await;
    sim.wait_for("/api/v1/namespaces/team", Duration::from_secs(5), |a| a.code == 404)
        .await;
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn dry_run_stores_nothing() {
    let sim = Sim::start().await;
    let a = sim
        .post(&format!("{CMS}?dryRun=All"), &cm("dry", json!({"a": "b"})))
        .await;
    assert_eq!(a.code, 201);
    assert_eq!(a.body["data"], json!({"a": "b"}));
    assert_eq!(sim.get(&format!("{CMS}/dry")).await.code, 404);
    let ap = sim
        .apply(
            &format!("{CMS}/dry?dryRun=All"),
            "t",
            false,
            &cm("dry", json!({"a": "b"})),
        )
        .await;
    assert_eq!(ap.code, 201, "{}", ap.body);
    assert_eq!(sim.get(&format!("{CMS}/dry")).await.code, 404);
    // dry-run still validates
    let bad = sim
        .post(
            &format!("{CMS}?dryRun=All&fieldValidation=Strict"),
            &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dry"}, "nope": 1}),
        )
        .await;
    assert_eq!(bad.code, 400);
    // dry-run update and delete change nothing
    assert_eq!(sim.post(CMS, &cm("real", json!({"a": "1"}))).await.code, 201);
    let up = sim
        .merge_patch(&format!("{CMS}/real?dryRun=All"), &json!({"data": {"a": "2"}}))
        .await;
    assert_eq!(up.body["data"]["a"], json!("2"));
    assert_eq!(sim.get(&format!("{CMS}/real")).await.body["data"]["a"], json!("1"));
    assert_eq!(
        sim.req(reqwest::Method::DELETE, &format!("{CMS}/real?dryRun=All"), "", None)
            .await
            .code,
        200
    );
    assert_eq!(sim.get(&format!("{CMS}/real")).await.code, 200);
    assert_eq!(
        sim.post(&format!("{CMS}?dryRun=Some"), &cm("x", json!({}))).await.code,
        400
    );
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn strict_validation_of_builtins() {
    let sim = Sim::start().await;
    let deps = "/apis/apps/v1/namespaces/default/deployments";
    // unknown field, Strict: 400 with the path
    let mut d = deployment("v", 1, "nginx");
    d["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = json!("Always");
    let a = sim.post(&format!("{deps}?fieldValidation=Strict"), &d).await;
    assert_eq!(a.code, 400, "{}", a.body);
    assert_eq!(a.body["reason"], json!("BadRequest"));
    assert!(
        a.msg()
            .contains("strict decoding error: unknown field \"spec.template.spec.containers[0].imagePullPolicyy\""),
        "{}",
        a.msg()
    );
    // same object, default (Warn): stored without the field, with a warning header
    let w = sim.post(deps, &d).await;
    assert_eq!(w.code, 201, "{}", w.body);
    assert!(
        w.warnings
            .iter()
            .any(|x| x.contains("unknown field \\\"spec.template.spec.containers[0].imagePullPolicyy\\\"")),
        "{:?}",
        w.warnings
    );
    assert!(
        w.body["spec"]["template"]["spec"]["containers"][0]
            .get("imagePullPolicyy")
            .is_none()
    );
    // server-side apply never accepts unknown fields
    let ap = sim.apply(&format!("{deps}/v"), "t", false, &d).await;
    assert_eq!(ap.code, 400);
    assert!(
        ap.msg()
            .contains(".spec.template.spec.containers[0].imagePullPolicyy: field not declared in schema"),
        "{}",
        ap.msg()
    );
    // wrongly typed field of a built-in: a decode error (400) naming the path
    let mut t = deployment("t", 1, "nginx");
    t["spec"]["replicas"] = json!("three");
    let te = sim.post(deps, &t).await;
    assert_eq!(te.code, 400, "{}", te.body);
    assert!(
        te.msg()
            .contains("cannot unmarshal string into Go struct field spec.replicas of type int32"),
        "{}",
        te.msg()
    );
    let tap = sim.apply(&format!("{deps}/t"), "t", false, &t).await;
    assert_eq!(tap.code, 400);
    assert!(tap.msg().contains(".spec.replicas: expected numeric"), "{}", tap.msg());
    // missing required fields: 422 Invalid with one cause each
    let mut r = deployment("r", 1, "nginx");
    r["spec"].as_object_mut().unwrap().remove("selector");
    r["spec"]["template"]["spec"]["containers"][0]
        .as_object_mut()
        .unwrap()
        .remove("name");
    let inv = sim.post(deps, &r).await;
    assert_eq!(inv.code, 422, "{}", inv.body);
    assert_eq!(inv.body["reason"], json!("Invalid"));
    assert_eq!(inv.body["details"]["kind"], json!("Deployment"));
    assert_eq!(inv.body["details"]["group"], json!("apps"));
    let fields: Vec<&str> = inv.body["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert!(fields.contains(&"spec.selector"), "{fields:?}");
    assert!(fields.contains(&"spec.template.spec.containers[0].name"), "{fields:?}");
    assert!(
        inv.msg().starts_with("Deployment.apps \"r\" is invalid: ["),
        "{}",
        inv.msg()
    );
    // bad names
    let bad = sim.post(CMS, &cm("Bad_Name", json!({}))).await;
    assert_eq!(bad.code, 422);
    assert_eq!(bad.body["details"]["causes"][0]["field"], json!("metadata.name"));
    let nons = sim
        .post(
            "/api/v1/namespaces",
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a.b"}}),
        )
        .await;
    assert_eq!(nons.code, 422);
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn watch_streams_events() {
    let sim = Sim::start().await;
    let list = sim.get(CMS).await.body;
    let rv = list["metadata"]["resourceVersion"].as_str().unwrap().to_string();
    let url = format!("{}{CMS}?watch=true&resourceVersion={rv}&timeoutSeconds=5", sim.base);
    let mut resp = sim.client.get(url).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    sim.post(CMS, &cm("w", json!({"a": "1"}))).await;
    sim.merge_patch(&format!("{CMS}/w"), &json!({"data": {"a": "2"}})).await;
    sim.delete(&format!("{CMS}/w")).await;
    let mut buf = String::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while buf.lines().count() < 3 && Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(5), resp.chunk()).await {
            Ok(Ok(Some(c))) => buf.push_str(&String::from_utf8_lossy(&c)),
            _ => break,
        }
    }
    let events: Vec<Value> = buf.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, vec!["ADDED", "MODIFIED", "DELETED"]);
    assert_eq!(events[1]["object"]["data"]["a"], json!("2"));
    assert_eq!(events[1]["object"]["kind"], json!("ConfigMap"));
    let rvs: Vec<u64> = events
        .iter()
        .map(|e| {
            e["object"]["metadata"]["resourceVersion"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert!(rvs.windows(2).all(|w| w[0] < w[1]), "{rvs:?}");
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn readiness_after_delay() {
    let delay = Duration::from_millis(1200);
    let sim = Sim::start_with(SimConfig {
        ready_delay: delay,
        nodes: 3,
        ..SimConfig::default()
    })
    .await;
    let start = Instant::now();
    let d = sim
        .post(
            "/apis/apps/v1/namespaces/default/deployments",
            &deployment("web", 2, "nginx:1.27"),
        )
        .await;
    assert_eq!(d.code, 201);
    let ds = sim
        .post(
            "/apis/apps/v1/namespaces/default/daemonsets",
            &daemonset("agent", "busybox:1.36"),
        )
        .await;
    assert_eq!(ds.code, 201);
    // rolling out: generation observed, not available yet
    let rolling = sim
        .wait_for(
            "/apis/apps/v1/namespaces/default/deployments/web",
            Duration::from_secs(2),
            |a| a.body["status"]["observedGeneration"] == json!(1),
        )
        .await;
    assert!(start.elapsed() < delay, "rolling-out status must come before the delay");
    assert!(
        rolling.body["status"].get("availableReplicas").is_none(),
        "{}",
        rolling.body["status"]
    );
    assert_eq!(rolling.body["status"]["conditions"][0]["status"], json!("False"));
    let ready = sim
        .wait_for(
            "/apis/apps/v1/namespaces/default/deployments/web",
            Duration::from_secs(5),
            |a| a.body["status"]["availableReplicas"] == json!(2),
        )
        .await;
    assert!(
        start.elapsed() >= delay,
        "ready after {:?}, before the delay",
        start.elapsed()
    );
    let st = &ready.body["status"];
    assert_eq!(
        (
            st["replicas"].clone(),
            st["readyReplicas"].clone(),
            st["updatedReplicas"].clone()
        ),
        (json!(2), json!(2), json!(2))
    );
    assert_eq!(
        st["conditions"][0],
        json!({"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable", "message": "Deployment has minimum availability.", "lastTransitionTime": st["conditions"][0]["lastTransitionTime"], "lastUpdateTime": st["conditions"][0]["lastUpdateTime"]})
    );
    let ds = sim
        .wait_for(
            "/apis/apps/v1/namespaces/default/daemonsets/agent",
            Duration::from_secs(5),
            |a| a.body["status"]["numberReady"] == json!(3),
        )
        .await;
    let s = &ds.body["status"];
    assert_eq!(
        (
            s["desiredNumberScheduled"].clone(),
            s["updatedNumberScheduled"].clone(),
            s["numberAvailable"].clone(),
            s["observedGeneration"].clone()
        ),
        (json!(3), json!(3), json!(3), json!(1))
    );
    // a spec change starts a new rollout
    let t0 = Instant::now();
    let p = sim
        .merge_patch(
            "/apis/apps/v1/namespaces/default/daemonsets/agent",
            &json!({"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "busybox:1.37"}]}}}}),
        )
        .await;
    assert_eq!(p.body["metadata"]["generation"], json!(2));
    sim.wait_for(
        "/apis/apps/v1/namespaces/default/daemonsets/agent",
        Duration::from_secs(5),
        |a| {
            // the new pods are made at once (updated), and available only once started
            a.body["status"]["observedGeneration"] == json!(2)
                && a.body["status"]["updatedNumberScheduled"] == json!(3)
                && a.body["status"]["numberAvailable"] == json!(3)
        },
    )
    .await;
    assert!(t0.elapsed() >= delay);
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn reset_clears_everything() {
    let sim = Sim::start().await;
    sim.namespace("gone").await;
    sim.post(CMS, &cm("x", json!({}))).await;
    let r = sim.post("/sim/reset", &json!({})).await;
    assert_eq!(r.code, 200);
    assert_eq!(sim.get("/api/v1/namespaces/gone").await.code, 404);
    assert_eq!(sim.get(&format!("{CMS}/x")).await.code, 404);
    assert_eq!(sim.get("/api/v1/namespaces/default").await.code, 200);
    sim.handle.shutdown().await;
}

/// A ConfigMap write runs no reconcile pass (no controller reads ConfigMaps), except when it
/// can concern the garbage collector: one created with an owner that does not exist is
/// collected, as a real cluster's garbage collector does.
#[tokio::test]
async fn a_dependent_of_a_missing_owner_is_collected() {
    let sim = Sim::start().await;
    let mut d = cm("ownerless", json!({}));
    d["metadata"]["ownerReferences"] =
        json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "gone", "uid": "no-such-uid"}]);
    assert_eq!(sim.post(CMS, &d).await.code, 201);
    sim.wait_for(&format!("{CMS}/ownerless"), Duration::from_secs(5), |a| a.code == 404)
        .await;
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn owner_references_and_propagation() {
    let sim = Sim::start().await;
    let owner = sim.post(CMS, &cm("owner", json!({}))).await.body;
    let uid = owner["metadata"]["uid"].as_str().unwrap().to_string();
    let dependent = |name: &str| {
        let mut d = cm(name, json!({}));
        d["metadata"]["ownerReferences"] =
            json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid}]);
        d
    };
    // Orphan: the dependent stays, without its owner reference
    assert_eq!(sim.post(CMS, &dependent("orphan")).await.code, 201);
    let del = sim
        .delete_with(
            &format!("{CMS}/owner"),
            &json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Orphan"}),
        )
        .await;
    assert_eq!(del.code, 200);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let o = sim.get(&format!("{CMS}/orphan")).await;
    assert_eq!(o.code, 200);
    assert!(o.body["metadata"].get("ownerReferences").is_none(), "{}", o.body);

    // Background (default): the dependent is collected after the owner goes
    let owner = sim.post(CMS, &cm("owner", json!({}))).await.body;
    let uid = owner["metadata"]["uid"].as_str().unwrap().to_string();
    let mut bg = cm("bg", json!({}));
    bg["metadata"]["ownerReferences"] = json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid}]);
    assert_eq!(sim.post(CMS, &bg).await.code, 201);
    assert_eq!(sim.delete(&format!("{CMS}/owner")).await.code, 200);
    sim.wait_for(&format!("{CMS}/bg"), Duration::from_secs(5), |a| a.code == 404)
        .await;

    // Foreground: the owner waits (foregroundDeletion finalizer) for a held dependent
    let owner = sim.post(CMS, &cm("owner", json!({}))).await.body;
    let uid = owner["metadata"]["uid"].as_str().unwrap().to_string();
    let mut fg = cm("fg", json!({}));
    fg["metadata"]["ownerReferences"] = json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid}]);
    fg["metadata"]["finalizers"] = json!(["example.com/hold"]);
    assert_eq!(sim.post(CMS, &fg).await.code, 201);
    let del = sim
        .req(
            reqwest::Method::DELETE,
            &format!("{CMS}/owner?propagationPolicy=Foreground"),
            "",
            None,
        )
        .await;
    assert_eq!(del.code, 200);
    assert_eq!(del.body["metadata"]["finalizers"], json!(["foregroundDeletion"]));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(sim.get(&format!("{CMS}/owner")).await.code, 200);
    assert!(sim.get(&format!("{CMS}/fg")).await.body["metadata"]["deletionTimestamp"].is_string());
    sim.merge_patch(&format!("{CMS}/fg"), &json!({"metadata": {"finalizers": null}}))
        .await;
    sim.wait_for(&format!("{CMS}/owner"), Duration::from_secs(5), |a| a.code == 404)
        .await;
    assert_eq!(
        sim.delete_with(&format!("{CMS}/orphan"), &json!({"propagationPolicy": "Sideways"}))
            .await
            .code,
        422
    );
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn json_patch_and_preconditions() {
    let sim = Sim::start().await;
    let created = sim.post(CMS, &cm("jp", json!({"a": "1"}))).await.body;
    let ops = json!([{"op": "test", "path": "/data/a", "value": "1"}, {"op": "add", "path": "/data/b", "value": "2"}, {"op": "remove", "path": "/data/a"}]);
    let p = sim
        .req(
            reqwest::Method::PATCH,
            &format!("{CMS}/jp"),
            "application/json-patch+json",
            Some(&ops),
        )
        .await;
    assert_eq!(p.code, 200, "{}", p.body);
    assert_eq!(p.body["data"], json!({"b": "2"}));
    let failed = sim
        .req(
            reqwest::Method::PATCH,
            &format!("{CMS}/jp"),
            "application/json-patch+json",
            Some(&json!([{"op": "test", "path": "/data/b", "value": "9"}])),
        )
        .await;
    assert_eq!(failed.code, 422, "{}", failed.body);
    // a merge patch carrying a stale resourceVersion is a precondition
    let stale = sim
        .merge_patch(
            &format!("{CMS}/jp"),
            &json!({"metadata": {"resourceVersion": created["metadata"]["resourceVersion"]}, "data": {"c": "3"}}),
        )
        .await;
    assert_eq!(stale.code, 409);
    // delete preconditions
    let bad_uid = sim
        .delete_with(&format!("{CMS}/jp"), &json!({"preconditions": {"uid": "not-it"}}))
        .await;
    assert_eq!(bad_uid.code, 409);
    assert_eq!(sim.get(&format!("{CMS}/jp")).await.code, 200);
    // unsupported patch type
    let odd = sim
        .req(
            reqwest::Method::PATCH,
            &format!("{CMS}/jp"),
            "text/plain",
            Some(&json!({})),
        )
        .await;
    assert_eq!(odd.code, 415);
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn hundreds_of_objects() {
    let sim = Sim::start().await;
    let started = Instant::now();
    for i in 0..300 {
        let a = sim.apply(&format!("{CMS}/bulk-{i:03}"), "spar", false, &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("bulk-{i:03}"), "labels": {"batch": if i % 2 == 0 { "even" } else { "odd" }}}, "data": {"i": i.to_string()}})).await;
        assert_eq!(a.code, 201);
    }
    for i in 0..50 {
        let a = sim
            .apply(
                &format!("/apis/apps/v1/namespaces/default/deployments/d{i}"),
                "spar",
                false,
                &deployment(&format!("d{i}"), 1, "nginx:1.27"),
            )
            .await;
        assert_eq!(a.code, 201, "{}", a.body);
    }
    let even = sim.get(&format!("{CMS}?labelSelector=batch%3Deven")).await.body;
    assert_eq!(even["items"].as_array().unwrap().len(), 150);
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(30), "350 applies took {elapsed:?}");
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn binary_prints_its_url_and_serves() {
    use std::io::BufRead;
    let schemas = spar_kube_sim::locate_schemas(spar_kube_sim::DEFAULT_K8S_VERSION).expect("schemas");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_spar-kube-sim"))
        .args([
            "--port",
            "0",
            "--ready-delay-ms",
            "10",
            "--k8s-version",
            "1.35",
            "--schemas",
        ])
        .arg(&schemas)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("binary starts");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("spar-kube-sim listening on ")
        .expect("url line")
        .to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let body = reqwest::get(format!("{url}/healthz"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "ok");
    let v: Value = reqwest::get(format!("{url}/version"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["gitVersion"], json!("v1.35.0"));
    child.kill().unwrap();
    child.wait().unwrap();
}
