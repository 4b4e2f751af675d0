//! Helm charts against the in-process API simulator, rendered by `sandbox/helm/helm-template`
//! (the real Helm engine): every rendered object applied and tracked by spar (CRD before its
//! custom resource, release namespace created), no changes and no drift on a second look, drift
//! per object after an out-of-band deletion and its repair, values changed (the plan shows
//! each changed value with its old and new value, a secret one redacted; objects updated and
//! one pruned), Helm's own error for invalid values, and removal of everything. Remote charts
//! (an OCI reference, a repository URL plus a chart name, each with a version) rendered by a
//! recording stand-in for `helm`: the exact `helm template` arguments and the values on stdin;
//! a failing `helm` reported with its own message, however large the values.
#![cfg(feature = "kubernetes")]

#[path = "support/kube.rs"]
mod kube_support;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::discovery::ApiResource;
use kube_support::{KubeEnv, Recorder, failures};
use serde_json::{Value, json};
use spar::kubernetes::{Chart, KubeProvider};
use spar::plan::Op;
use std::sync::Arc;

fn root() -> String {
    env!("CARGO_MANIFEST_DIR").to_string()
}

type Program = Box<dyn FnOnce(&mut spar::Stack, &spar::Handle<KubeProvider>) -> spar::Result<()>>;

fn program(values: Value) -> Program {
    chart(values, false)
}

fn chart(values: Value, force: bool) -> Program {
    Box::new(move |s, p| {
        let mut c = Chart::new(p, &format!("{}/tests/charts/spar-demo", root()), "demo", "demo-ns")
            .helm(&format!("{}/sandbox/helm/helm-template", root()))
            .create_namespace();
        if force {
            c = c.force();
        }
        s.add("demo", c.values(values))?;
        Ok(())
    })
}

fn gadgets(env: &KubeEnv) -> Api<DynamicObject> {
    let ar = ApiResource {
        group: "example.com".into(),
        version: "v1".into(),
        api_version: "example.com/v1".into(),
        kind: "Gadget".into(),
        plural: "gadgets".into(),
    };
    Api::namespaced_with(env.client.clone(), "demo-ns", &ar)
}

#[tokio::test]
async fn chart_objects_are_applied_tracked_pruned_and_deleted() {
    let env = KubeEnv::start_with(std::time::Duration::from_millis(300)).await;
    let v1 = json!({"greeting": "hello", "replicas": 2, "gadgetSize": 3, "extra": true});
    let (_, report) = env.apply(program(v1.clone())).await;
    assert!(report.succeeded(), "{:?}", failures(&report));

    let cms: Api<ConfigMap> = Api::namespaced(env.client.clone(), "demo-ns");
    assert_eq!(
        cms.get("demo-settings").await.unwrap().data.unwrap()["greeting"],
        "hello"
    );
    assert!(cms.get_opt("demo-extra").await.unwrap().is_some());
    let deps: Api<Deployment> = Api::namespaced(env.client.clone(), "demo-ns");
    assert_eq!(
        deps.get("demo-web").await.unwrap().status.unwrap().available_replicas,
        Some(2),
        "the chart's workloads were awaited"
    );
    assert_eq!(
        gadgets(&env).get("demo-gadget").await.unwrap().data["spec"]["size"],
        json!(3)
    );
    let snap = env.snapshot().await;
    let release = snap.get(&"demo".parse().unwrap()).unwrap();
    assert_eq!(release.id, "demo-ns/demo");
    let ids: Vec<String> = release.outputs["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| format!("{}/{}", o["kind"].as_str().unwrap(), o["name"].as_str().unwrap()))
        .collect();
    assert_eq!(ids[0], "Namespace/demo-ns");
    assert_eq!(ids[1], "CustomResourceDefinition/gadgets.example.com");
    assert_eq!(ids.len(), 7, "{ids:?}");

    // A second look: no changes, no drift (server defaults are not drift).
    let plan = env.plan(program(v1.clone())).await;
    assert!(!plan.has_changes());
    let refreshed = env.refresh(program(v1.clone())).await;
    assert!(refreshed.drifted.is_empty(), "{:?}", refreshed.drifted);
    assert!(refreshed.errors.is_empty(), "{:?}", refreshed.errors);

    // Out-of-band: one object deleted. Drift names it; the next apply puts it back.
    cms.delete("demo-settings", &Default::default()).await.unwrap();
    let refreshed = env.refresh(program(v1.clone())).await;
    assert_eq!(refreshed.drifted.len(), 1, "{:?}", refreshed.drifted);
    let changes = &refreshed.drifted[0].1;
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0].path.to_string(), "drift");
    assert_eq!(
        changes[0].after,
        Some(json!({"v1:ConfigMap:demo-ns/demo-settings": "missing"})),
        "{changes:?}"
    );
    let (plan, report) = env.apply(program(v1.clone())).await;
    assert_eq!(plan.get(&"demo".parse().unwrap()).unwrap().op, Op::Update);
    assert!(report.succeeded(), "{:?}", failures(&report));
    assert!(cms.get_opt("demo-settings").await.unwrap().is_some());

    // New values: objects updated in place, the object that left the rendering pruned; the
    // plan says which object goes (and, the other way round, which one would come back).
    let v2 = json!({"greeting": "hi", "replicas": 1, "gadgetSize": 4, "extra": false});
    let preview = env.plan(program(v2.clone())).await;
    let change = preview.get(&"demo".parse().unwrap()).unwrap();
    assert_eq!(change.op, Op::Update);
    let notes = &change.notes;
    assert_eq!(
        notes,
        &vec!["- prunes v1 ConfigMap demo-ns/demo-extra".to_string()],
        "{notes:?}"
    );
    // The values that changed, property by property, each with its old and new value (and
    // nothing else: the provider connection, release and chart are the same).
    let props: Vec<(String, Option<Value>, Option<Value>)> = change
        .properties
        .iter()
        .map(|p| (p.path.to_string(), p.before.clone(), p.after.clone()))
        .collect();
    assert_eq!(
        props,
        vec![
            ("values.extra".to_string(), Some(json!(true)), Some(json!(false))),
            ("values.gadgetSize".to_string(), Some(json!(3)), Some(json!(4))),
            ("values.greeting".to_string(), Some(json!("hello")), Some(json!("hi"))),
            ("values.replicas".to_string(), Some(json!(2)), Some(json!(1))),
        ],
        "{props:?}"
    );
    assert!(change.replace_paths.is_empty(), "{:?}", change.replace_paths);
    let text = spar::plan::render::text(&preview, spar::plan::render::Style { color: false });
    assert!(text.contains("~ demo  kubernetes:Chart"), "{text}");
    assert!(text.contains("values.greeting: \"hello\" -> \"hi\""), "{text}");
    assert!(text.contains("values.replicas: 2 -> 1"), "{text}");
    assert!(text.contains("values.gadgetSize: 3 -> 4"), "{text}");
    assert!(text.contains("values.extra: true -> false"), "{text}");
    assert!(text.contains("# - prunes v1 ConfigMap demo-ns/demo-extra"), "{text}");
    assert!(
        text.contains("Plan: 0 to create, 1 to update, 0 to replace, 0 to delete."),
        "{text}"
    );
    let (plan, report) = env.apply(program(v2.clone())).await;
    assert_eq!(plan.get(&"demo".parse().unwrap()).unwrap().op, Op::Update);
    assert!(report.succeeded(), "{:?}", failures(&report));
    assert_eq!(cms.get("demo-settings").await.unwrap().data.unwrap()["greeting"], "hi");
    assert!(cms.get_opt("demo-extra").await.unwrap().is_none(), "pruned");
    let back = env.plan(program(v1.clone())).await;
    let notes = &back.get(&"demo".parse().unwrap()).unwrap().notes;
    assert_eq!(notes, &vec!["+ adds v1 ConfigMap demo-extra".to_string()], "{notes:?}");
    assert_eq!(
        gadgets(&env).get("demo-gadget").await.unwrap().data["spec"]["size"],
        json!(4)
    );

    // Another field manager changes a field spar set (and adds one): drift names that field;
    // re-applying conflicts (reported), forcing takes the field back.
    cms.patch(
        "demo-settings",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"greeting": "tampered"}, "metadata": {"labels": {"other": "x"}}})),
    )
    .await
    .unwrap();
    let refreshed = env.refresh(program(v2.clone())).await;
    assert_eq!(refreshed.drifted.len(), 1, "{:?}", refreshed.drifted);
    let drift = refreshed.drifted[0].1[0].after.clone().unwrap();
    assert_eq!(
        drift,
        json!({"v1:ConfigMap:demo-ns/demo-settings": ["data.greeting"]}),
        "only spar's fields"
    );
    let (_, report) = env.apply(program(v2.clone())).await;
    let msgs = failures(&report);
    assert!(
        msgs.len() == 1 && msgs[0].contains("conflict") && msgs[0].contains(".data.greeting"),
        "{msgs:?}"
    );
    let (_, report) = env.apply(chart(v2.clone(), true)).await;
    assert!(report.succeeded(), "{:?}", failures(&report));
    assert_eq!(cms.get("demo-settings").await.unwrap().data.unwrap()["greeting"], "hi");
    let refreshed = env.refresh(chart(v2.clone(), true)).await;
    assert!(refreshed.drifted.is_empty(), "{:?}", refreshed.drifted);

    // Invalid values: Helm's own message, nothing changed.
    let (_, report) = env.apply(program(json!({"replicas": -1}))).await;
    let msgs = failures(&report);
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert!(msgs[0].contains("helm-template template demo"), "{}", msgs[0]);
    assert!(msgs[0].contains("minimum: got -1, want 0"), "{}", msgs[0]);
    assert_eq!(cms.get("demo-settings").await.unwrap().data.unwrap()["greeting"], "hi");

    // Destroy: every object, the custom resource before the namespace; the CRD of the
    // chart's crds/ directory stays, as after `helm uninstall`.
    let rec = Arc::new(Recorder::default());
    let (_, report) = env.destroy(rec.clone()).await;
    assert!(report.succeeded(), "{:?}", failures(&report));
    let lines = rec.lines();
    let pos = |needle: &str| {
        lines
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle} in {lines:#?}"))
    };
    assert!(pos("deleting example.com/v1:Gadget:demo-ns/demo-gadget") < pos("deleting v1:Namespace:demo-ns"));
    assert!(pos("keeping apiextensions.k8s.io/v1:CustomResourceDefinition:gadgets.example.com") > 0);
    let nss: Api<Namespace> = Api::all(env.client.clone());
    assert!(nss.get_opt("demo-ns").await.unwrap().is_none());
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(env.client.clone());
    assert!(crds.get_opt("gadgets.example.com").await.unwrap().is_some());
    env.sim.shutdown().await;
}

#[tokio::test]
async fn chart_values_may_hold_secrets() {
    let env = KubeEnv::start().await;
    let secret = serde_json::to_value(spar::Secret::new("s3cr3t-greeting".to_string())).unwrap();
    let values = json!({"greeting": secret, "extra": false});
    let (_, report) = env.apply(program(values.clone())).await;
    assert!(report.succeeded(), "{:?}", failures(&report));
    let cms: Api<ConfigMap> = Api::namespaced(env.client.clone(), "demo-ns");
    assert_eq!(
        cms.get("demo-settings").await.unwrap().data.unwrap()["greeting"],
        "s3cr3t-greeting"
    );
    let plan = env.plan(program(values.clone())).await;
    assert!(!plan.has_changes());
    let refreshed = env.refresh(program(values)).await;
    assert!(refreshed.drifted.is_empty(), "{:?}", refreshed.drifted);
    // A changed secret value is a property change shown redacted on both sides.
    let other = serde_json::to_value(spar::Secret::new("other-s3cr3t".to_string())).unwrap();
    let plan = env.plan(program(json!({"greeting": other, "extra": false}))).await;
    let change = plan.get(&"demo".parse().unwrap()).unwrap();
    assert_eq!(change.op, Op::Update);
    let paths: Vec<String> = change.properties.iter().map(|p| p.path.to_string()).collect();
    assert_eq!(paths, vec!["values.greeting".to_string()]);
    let text = spar::plan::render::text(&plan, spar::plan::render::Style { color: false });
    assert!(
        text.contains("values.greeting: (sensitive value) -> (sensitive value)"),
        "{text}"
    );
    assert!(!text.contains("s3cr3t"), "{text}");
    let json = spar::plan::render::json(&plan).to_string();
    assert!(!json.contains("s3cr3t"), "{json}");
    let mut stack = vec![env.dir.path().to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                let text = String::from_utf8_lossy(&std::fs::read(e.path()).unwrap()).into_owned();
                assert!(
                    !text.contains("s3cr3t-greeting"),
                    "{} holds the secret",
                    e.path().display()
                );
            }
        }
    }
    env.sim.shutdown().await;
}

/// Writes `body` as the executable script `name` in `dir` and returns its path. The file is
/// written by a `cp` child, so no write descriptor of it is ever open in this (multi-threaded)
/// process, where a concurrent fork could inherit one and make running it fail with ETXTBSY.
fn script(dir: &std::path::Path, name: &str, body: &str) -> String {
    use std::os::unix::fs::PermissionsExt as _;
    let text = dir.join(format!("{name}.txt"));
    let path = dir.join(name);
    std::fs::write(&text, body).unwrap();
    let status = std::process::Command::new("cp").arg(&text).arg(&path).status().unwrap();
    assert!(status.success());
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.to_str().unwrap().to_string()
}

/// A stand-in for `helm`: appends its arguments (one a line, then `::end`) to
/// `DIR/RELEASE.calls`, saves its stdin as `DIR/RELEASE.values-N.json` (N counting the calls)
/// and prints one ConfigMap, `RELEASE-cm`, holding the chart reference it was given.
fn recording_helm(dir: &std::path::Path) -> String {
    let d = dir.display();
    let body = format!(
        r#"#!/bin/sh
set -eu
log="{d}/$2.calls"
for a in "$@"; do printf '%s\n' "$a"; done >> "$log"
echo '::end' >> "$log"
n=$(grep -c '^::end$' "$log")
cat > "{d}/$2.values-$n.json"
cat <<DOC
---
# Source: recorded/templates/cm.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: $2-cm
data:
  chart: "$3"
DOC
"#
    );
    script(dir, "helm", &body)
}

/// Each recorded call of `release`: its arguments and the values it read on stdin.
fn helm_calls(dir: &std::path::Path, release: &str) -> Vec<(Vec<String>, Value)> {
    let log = std::fs::read_to_string(dir.join(format!("{release}.calls"))).unwrap_or_default();
    let mut calls = Vec::new();
    let mut args = Vec::new();
    for line in log.lines() {
        if line == "::end" {
            let n = calls.len() + 1;
            let stdin = std::fs::read_to_string(dir.join(format!("{release}.values-{n}.json"))).unwrap();
            let values = serde_json::from_str(&stdin).unwrap_or_else(|e| panic!("{e}: {stdin:?}"));
            calls.push((std::mem::take(&mut args), values));
        } else {
            args.push(line.to_string());
        }
    }
    calls
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Two remote charts (neither fetched: the helm command is a recording script): `foo` from
/// the OCI registry `oci://registry.example/charts/foo` at 1.2.3, `bar` by name from the
/// chart repository `https://charts.example.com` at 4.5.6, CRDs left out.
fn remote_charts(helm: String, foo_values: Value) -> Program {
    Box::new(move |s, p| {
        s.add(
            "foo",
            Chart::new(p, "oci://registry.example/charts/foo", "foo", "oci-ns")
                .version("1.2.3")
                .helm(&helm)
                .create_namespace()
                .values(foo_values),
        )?;
        s.add(
            "bar",
            Chart::new(p, "bar", "bar", "repo-ns")
                .repository("https://charts.example.com")
                .version("4.5.6")
                .helm(&helm)
                .create_namespace()
                .skip_crds(),
        )?;
        Ok(())
    })
}

#[tokio::test]
async fn oci_and_repository_charts_reach_helm_as_helm_template_expects() {
    let env = KubeEnv::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let helm = recording_helm(tmp.path());
    let values = json!({"image": {"tag": "v1"}, "replicas": 3, "labels": ["a", "b"]});
    // `helm template RELEASE CHART`, the namespace, the values as a file read from stdin
    // (`--values -`, JSON being YAML), no test hooks, CRDs unless left out, then the version
    // and, for a chart found by name, the repository.
    let foo_args = strings(&[
        "template",
        "foo",
        "oci://registry.example/charts/foo",
        "--namespace",
        "oci-ns",
        "--values",
        "-",
        "--skip-tests",
        "--include-crds",
        "--version",
        "1.2.3",
    ]);
    let bar_args = strings(&[
        "template",
        "bar",
        "bar",
        "--namespace",
        "repo-ns",
        "--values",
        "-",
        "--skip-tests",
        "--version",
        "4.5.6",
        "--repo",
        "https://charts.example.com",
    ]);

    // The plan renders each chart once to preview what it creates (once the cluster's
    // connection is known: the provider is applied first).
    let (_, report) = env.apply(|_, _| Ok(())).await;
    assert!(report.succeeded(), "{:?}", failures(&report));
    let plan = env.plan(remote_charts(helm.clone(), values.clone())).await;
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
    assert_eq!(helm_calls(tmp.path(), "foo"), vec![(foo_args.clone(), values.clone())]);
    assert_eq!(helm_calls(tmp.path(), "bar"), vec![(bar_args.clone(), json!({}))]);
    let foo = plan.get(&"foo".parse().unwrap()).unwrap();
    assert_eq!(foo.op, Op::Create);
    assert_eq!(
        foo.notes,
        strings(&["+ creates v1 Namespace oci-ns", "+ creates v1 ConfigMap foo-cm"])
    );
    let bar = plan.get(&"bar".parse().unwrap()).unwrap();
    assert_eq!(
        bar.notes,
        strings(&["+ creates v1 Namespace repo-ns", "+ creates v1 ConfigMap bar-cm"])
    );

    // Apply: every rendering is called the same way; what it printed is applied.
    let (_, report) = env.apply(remote_charts(helm.clone(), values.clone())).await;
    assert!(report.succeeded(), "{:?}", failures(&report));
    let foo_calls = helm_calls(tmp.path(), "foo");
    let bar_calls = helm_calls(tmp.path(), "bar");
    assert!(
        foo_calls.len() >= 2 && bar_calls.len() >= 2,
        "{foo_calls:?} {bar_calls:?}"
    );
    assert!(
        foo_calls.iter().all(|c| *c == (foo_args.clone(), values.clone())),
        "{foo_calls:?}"
    );
    assert!(
        bar_calls.iter().all(|c| *c == (bar_args.clone(), json!({}))),
        "{bar_calls:?}"
    );
    for (ns, name, chart) in [
        ("oci-ns", "foo-cm", "oci://registry.example/charts/foo"),
        ("repo-ns", "bar-cm", "bar"),
    ] {
        let cms: Api<ConfigMap> = Api::namespaced(env.client.clone(), ns);
        assert_eq!(cms.get(name).await.unwrap().data.unwrap()["chart"], chart);
    }
    let snap = env.snapshot().await;
    let foo = snap.get(&"foo".parse().unwrap()).unwrap();
    assert_eq!(foo.id, "oci-ns/foo");
    assert_eq!(foo.inputs["version"], "1.2.3");
    let bar = snap.get(&"bar".parse().unwrap()).unwrap();
    assert_eq!(bar.id, "repo-ns/bar");
    assert_eq!(bar.inputs["repo"], "https://charts.example.com");
    assert_eq!(bar.inputs["chart"], "bar");

    // Nothing changed: no changes. A new version is an update rendered with the new `--version`.
    let plan = env.plan(remote_charts(helm.clone(), values.clone())).await;
    assert!(!plan.has_changes());
    let before = helm_calls(tmp.path(), "foo").len();
    let bumped: Program = {
        let helm = helm.clone();
        Box::new(move |s, p| {
            s.add(
                "foo",
                Chart::new(p, "oci://registry.example/charts/foo", "foo", "oci-ns")
                    .version("1.2.4")
                    .helm(&helm)
                    .create_namespace(),
            )?;
            Ok(())
        })
    };
    let plan = env.plan(bumped).await;
    let change = plan.get(&"foo".parse().unwrap()).unwrap();
    assert_eq!(change.op, Op::Update);
    let calls = helm_calls(tmp.path(), "foo");
    assert_eq!(calls.len(), before + 1);
    let mut bumped_args = foo_args.clone();
    *bumped_args.last_mut().unwrap() = "1.2.4".into();
    assert_eq!(calls[before], (bumped_args, json!({})));

    // Destroy removes what the charts made without rendering them again.
    let before = (helm_calls(tmp.path(), "foo").len(), helm_calls(tmp.path(), "bar").len());
    let (_, report) = env.destroy(Arc::new(Recorder::default())).await;
    assert!(report.succeeded(), "{:?}", failures(&report));
    assert_eq!(
        (helm_calls(tmp.path(), "foo").len(), helm_calls(tmp.path(), "bar").len()),
        before
    );
    let nss: Api<Namespace> = Api::all(env.client.clone());
    assert!(nss.get_opt("oci-ns").await.unwrap().is_none());
    assert!(nss.get_opt("repo-ns").await.unwrap().is_none());
    env.sim.shutdown().await;
}

/// A chart whose helm command fails as `helm` does when a registry cannot be reached (before
/// reading its values), with `values`.
fn unreachable_chart(helm: String, values: Value) -> Program {
    Box::new(move |s, p| {
        s.add(
            "broken",
            Chart::new(p, "oci://registry.example/charts/broken", "broken", "default")
                .version("0.1.0")
                .helm(&helm)
                .values(values),
        )?;
        Ok(())
    })
}

#[tokio::test]
async fn a_failing_helm_fails_the_chart_with_helms_message() {
    let env = KubeEnv::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let message = "Error: failed to do request: Head \"https://registry.example/v2/charts/broken/manifests/0.1.0\": dial tcp: lookup registry.example: no such host";
    let helm = script(
        tmp.path(),
        "helm",
        &format!("#!/bin/sh\necho '{message}' >&2\nexit 1\n"),
    );
    // Small values, and values larger than a pipe's buffer (helm exits without reading them):
    // either way Helm's own message, not a broken pipe.
    let big = "x".repeat(1 << 20);
    let (_, report) = env.apply(|_, _| Ok(())).await;
    assert!(report.succeeded(), "{:?}", failures(&report));
    for values in [json!({"a": 1}), json!({"big": big})] {
        let plan = env.plan(unreachable_chart(helm.clone(), values.clone())).await;
        assert_eq!(plan.warnings.len(), 1, "{:?}", plan.warnings);
        let w = &plan.warnings[0];
        assert!(w.starts_with("could not preview `broken`: "), "{w}");
        assert!(
            w.contains("helm template broken oci://registry.example/charts/broken` failed: "),
            "{w}"
        );
        assert!(w.contains(message), "{w}");

        let (_, report) = env.apply(unreachable_chart(helm.clone(), values)).await;
        let msgs = failures(&report);
        assert_eq!(msgs.len(), 1, "{msgs:?}");
        assert!(msgs[0].starts_with("broken: "), "{}", msgs[0]);
        assert!(
            msgs[0].contains("helm template broken oci://registry.example/charts/broken` failed: "),
            "{}",
            msgs[0]
        );
        assert!(msgs[0].contains(message), "{}", msgs[0]);
        assert!(env.snapshot().await.get(&"broken".parse().unwrap()).is_none());
    }
    env.sim.shutdown().await;
}
