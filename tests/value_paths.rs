//! Value paths reach keys that contain dots (`app.kubernetes.io/name`,
//! `kubernetes.io/role/elb`, every well-known label and annotation), written
//! `labels["app.kubernetes.io/name"]`: in `ignore_changes` and in output references.

mod common;

use std::sync::Arc;

use common::Harness;
use serde_json::json;
use spar::ResourceOptions;
use spar::testing::{FakeProvider, FakeResource};

fn labelled(
    name: &'static str,
    team: &'static str,
) -> impl Fn(&mut spar::Stack, &Arc<FakeProvider>) -> spar::Result<()> {
    move |s, p| {
        s.add_with(
            "a",
            FakeResource::new(p)
                .set("name", "a")
                .set("labels", json!({"app.kubernetes.io/name": name, "team": team})),
            ResourceOptions::new().ignore_changes(r#"labels["app.kubernetes.io/name"]"#),
        )?;
        Ok(())
    }
}

#[tokio::test]
async fn ignore_changes_reaches_a_key_with_dots() {
    let h = Harness::new();
    h.apply(labelled("web", "ci")).await;
    // Only the ignored label changed: nothing to do.
    let plan = h.plan(labelled("api", "ci")).await;
    assert!(!plan.has_changes(), "{:?}", plan.changes);
    // Another label changed: an update that keeps the ignored one as stored.
    let (plan, report) = h.apply(labelled("api", "platform")).await;
    assert!(report.succeeded());
    let a = plan.get(&"a".parse().unwrap()).unwrap();
    let changed: Vec<String> = a.properties.iter().map(|c| c.path.to_string()).collect();
    assert_eq!(changed, ["labels.team"]);
    assert_eq!(
        h.world.object_at("a")[0].inputs["labels"],
        json!({"app.kubernetes.io/name": "web", "team": "platform"})
    );
}

#[tokio::test]
async fn an_output_reference_reaches_a_key_with_dots() {
    let h = Harness::new();
    let (_, report) = h
        .apply(|s, p| {
            let a = s.add(
                "a",
                FakeResource::new(p).set("tags", json!({"kubernetes.io/role/elb": "1", "Name": "pub"})),
            )?;
            let elb = a.output::<String>(r#"echo.tags["kubernetes.io/role/elb"]"#);
            s.add("b", FakeResource::new(p).set_output("elb", &elb))?;
            Ok(())
        })
        .await;
    assert!(report.succeeded(), "{report:?}");
    assert_eq!(h.world.object_at("b")[0].inputs["elb"], json!("1"));
}
