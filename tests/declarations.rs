//! The Rust declarations `import` prints, for every AWS and Kubernetes kind: each registered
//! kind declares its fixtures, the golden file `tests/declarations_generated.rs` is exactly
//! what the kinds write today (that file is compiled and run as its own test, which checks
//! that the code declares exactly the live inputs), secrets are never printed, and inputs a
//! builder cannot express get no declaration rather than a wrong one.
#![cfg(all(feature = "aws", feature = "kubernetes"))]

#[path = "declarations/fixtures.rs"]
mod fixtures;

use serde_json::json;
use spar::provider::Registry;

#[test]
fn every_registered_aws_and_kubernetes_kind_writes_a_declaration() {
    let registry = Registry::builtin();
    let fixtures = fixtures::load();
    let mut kinds = 0;
    for kind in registry
        .kinds()
        .filter(|k| k.starts_with("aws:") || k.starts_with("kubernetes:"))
    {
        kinds += 1;
        let mine: Vec<_> = fixtures.iter().filter(|f| f.kind == kind).collect();
        assert!(
            !mine.is_empty(),
            "{kind} has no fixture in tests/declarations/live_inputs.json: add its live inputs (as read returns them) and a declaration"
        );
        for f in mine {
            assert!(
                registry.get(kind).unwrap().declaration(&f.name, &f.inputs).is_some(),
                "{kind} writes no declaration for `{}`: implement ResourceProvider::declaration",
                f.name
            );
        }
    }
    assert_eq!(kinds, 26 + 3, "26 AWS kinds and 3 Kubernetes kinds are registered");
}

#[test]
fn the_golden_file_is_what_the_kinds_write() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(fixtures::GOLDEN);
    let generated = fixtures::generate();
    if std::env::var_os("SPAR_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let golden = std::fs::read_to_string(&path).unwrap_or_default();
    if golden != generated {
        let first = golden
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .map_or("at the end".to_string(), |n| format!("at line {}", n + 1));
        panic!(
            "{} differs from what the kinds write ({first}); if the change is intended, run with SPAR_BLESS=1 and review the diff",
            fixtures::GOLDEN
        );
    }
}

#[test]
fn a_secrets_values_are_never_printed() {
    let registry = Registry::builtin();
    let object = registry.get("kubernetes:Object").unwrap();
    let inputs = json!({
        "provider": {},
        "manifest": {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "token"},
                     "type": "Opaque", "data": {"token": "aHVudGVyMg=="}, "stringData": {"pw": "hunter2"}},
        "wait": true,
    });
    let code = object.declaration("token", &inputs).unwrap();
    assert!(!code.contains("aHVudGVyMg==") && !code.contains("hunter2"), "{code}");
    assert!(
        code.starts_with("// the values of this Secret are not printed"),
        "{code}"
    );
    assert!(code.contains("\"token\": \"<secret: not printed>\""), "{code}");
    // A value marked secret (as state holds one) is never printed either.
    let chart = registry.get("kubernetes:Chart").unwrap();
    let code = chart
        .declaration(
            "app",
            &json!({"provider": {}, "chart": "app", "release": "app", "namespace": "default",
                    "values": {"password": {"$spar": "secret", "value": "hunter2"}}, "includeCrds": true, "wait": true}),
        )
        .unwrap();
    assert!(!code.contains("hunter2"), "{code}");
}

#[test]
fn inputs_a_builder_cannot_express_get_no_declaration() {
    let registry = Registry::builtin();
    let none = |kind: &str, inputs: serde_json::Value| {
        assert_eq!(
            registry.get(kind).unwrap().declaration("x", &inputs),
            None,
            "{kind} {inputs}"
        );
    };
    // An input the builder has no setter for.
    none(
        "aws:ec2:Vpc",
        json!({"cidr_block": "10.0.0.0/16", "ipv6": true, "tags": {}}),
    );
    // A required input missing.
    none("aws:ec2:Subnet", json!({"vpc_id": "vpc-1", "tags": {}}));
    // A profile without a role, a route with two targets, a context without a kubeconfig.
    none(
        "aws:iam:InstanceProfile",
        json!({"name": "p", "path": "/", "role": null, "tags": {}}),
    );
    none(
        "aws:ec2:Route",
        json!({"route_table_id": "rtb-1", "destination_cidr_block": "0.0.0.0/0", "gateway_id": "igw-1", "nat_gateway_id": "nat-1"}),
    );
    none("kubernetes:Provider", json!({"context": "staging", "verify": true}));
    // A policy document with an effect the builders do not know.
    none(
        "aws:iam:Policy",
        json!({"name": "p", "path": "/", "description": null, "tags": {},
               "policy": {"Version": "2012-10-17", "Statement": [{"Effect": "Maybe", "Action": ["s3:*"]}]}}),
    );
}

#[test]
fn defaults_are_left_out() {
    let registry = Registry::builtin();
    let code = |kind: &str, inputs: serde_json::Value| registry.get(kind).unwrap().declaration("x", &inputs).unwrap();
    assert_eq!(
        code(
            "aws:ec2:Vpc",
            json!({"cidr_block": "10.0.0.0/16", "enable_dns_support": true, "enable_dns_hostnames": true, "tags": {}})
        ),
        r#"stack.add("x", ec2::Vpc::new("10.0.0.0/16").dns_hostnames(true))?;"#
    );
    assert_eq!(
        code(
            "aws:iam:Role",
            json!({"name": "r", "path": "/", "description": null, "max_session_duration": 3600, "tags": {},
                   "assume_role_policy": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                       "Principal": {"Service": ["ec2.amazonaws.com"]}, "Action": ["sts:AssumeRole"]}]}})
        ),
        r#"stack.add("x", iam::Role::assumed_by_service("ec2.amazonaws.com").name("r"))?;"#
    );
}

/// Whether `pattern` (keys, indexes, `*` for any key or element) reaches a value in `v`.
fn reaches(v: &serde_json::Value, pattern: &[spar::value::PathSeg]) -> bool {
    use spar::value::PathSeg;
    let Some((first, rest)) = pattern.split_first() else {
        return true;
    };
    match (first, v) {
        (PathSeg::Key(k), serde_json::Value::Object(m)) if k == "*" => m.values().any(|x| reaches(x, rest)),
        (PathSeg::Key(k), serde_json::Value::Array(a)) if k == "*" => a.iter().any(|x| reaches(x, rest)),
        (PathSeg::Key(k), serde_json::Value::Object(m)) => m.get(k).is_some_and(|x| reaches(x, rest)),
        (PathSeg::Index(i), serde_json::Value::Array(a)) => a.get(*i).is_some_and(|x| reaches(x, rest)),
        _ => false,
    }
}

/// Every path a kind's schema replaces on names an input the kind really has (it reaches a
/// value in the live inputs of one of the kind's fixtures): a misspelt path would silently
/// turn a replacement into an in-place update that the cloud then refuses.
#[test]
fn every_replace_path_names_an_input_of_its_kind() {
    let registry = Registry::builtin();
    let fixtures = fixtures::load();
    let mut checked = 0;
    let mut wrong = Vec::new();
    // Every kind with fixtures: all AWS and Kubernetes kinds (the test above requires
    // theirs) and local:File.
    for kind in registry.kinds().filter(|k| fixtures.iter().any(|f| f.kind == *k)) {
        let schema = registry.get(kind).unwrap().schema().clone();
        for path in &schema.replace_on {
            checked += 1;
            let reached = fixtures
                .iter()
                .filter(|f| f.kind == kind)
                .any(|f| reaches(&f.inputs, &path.0));
            if !reached {
                wrong.push(format!("{kind}: `{path}`"));
            }
        }
    }
    assert!(wrong.is_empty(), "replace paths that name no input: {wrong:#?}");
    assert!(checked > 40, "{checked} replace paths checked");
}
