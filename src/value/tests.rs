//! Markers, paths, secrets, diffs and output expressions.

use super::*;
use proptest::prelude::*;

fn key(k: &str) -> PathSeg {
    PathSeg::Key(k.into())
}

#[test]
fn paths_name_keys_with_dots_and_read_their_own_display() {
    let p = Path::try_parse(r#"metadata.labels["app.kubernetes.io/name"]"#).unwrap();
    assert_eq!(p.0, [key("metadata"), key("labels"), key("app.kubernetes.io/name")]);
    assert_eq!(p.to_string(), r#"metadata.labels["app.kubernetes.io/name"]"#);
    let p = Path::parse(r#"tags["kubernetes.io/role/elb"]"#);
    assert_eq!(p.0, [key("tags"), key("kubernetes.io/role/elb")]);
    // Indexes both ways; `*` both ways.
    assert_eq!(
        Path::parse("spec.containers.0.image"),
        Path::parse("spec.containers[0].image")
    );
    assert_eq!(
        Path::parse("spec.containers[0].image").to_string(),
        "spec.containers[0].image"
    );
    assert_eq!(Path::parse("spec.*.image").0[1], key("*"));
    assert_eq!(Path::parse("spec[*].image").0[1], key("*"));
    // A key of digits is written as a string, so it does not come back as an index.
    let p = Path(vec![key("data"), key("0")]);
    assert_eq!(p.to_string(), r#"data["0"]"#);
    assert_eq!(Path::parse(&p.to_string()), p);
    // Keys other than [A-Za-z0-9_-] still read bare, as before (`tags.spar:address`).
    assert_eq!(Path::parse("tags.spar:address").0[1], key("spar:address"));
    assert_eq!(Path::parse("").0, []);
    for bad in ["a.", ".a", "a..b", "a[", "a[x]", r#"a["b"#, r#"a["b"c"#, "a]b", "a[0]b"] {
        let e = Path::try_parse(bad).unwrap_err();
        assert!(
            e.to_string().starts_with(&format!("`{bad}` is not a value path")),
            "{e}"
        );
    }
}

/// Any key at all, or an index.
fn seg() -> impl Strategy<Value = PathSeg> {
    prop_oneof![
        any::<usize>().prop_map(PathSeg::Index),
        ".*".prop_map(PathSeg::Key),
        "[a-z0-9./\\[\\]\"*-]{0,12}".prop_map(PathSeg::Key),
    ]
}

proptest! {
    #[test]
    fn every_path_reads_back_its_display(segs in proptest::collection::vec(seg(), 0..6)) {
        let p = Path(segs);
        let text = p.to_string();
        prop_assert_eq!(Path::try_parse(&text), Ok(p.clone()), "display: {}", text);
    }
}

#[test]
fn secrets_are_cut_out_of_messages() {
    let v = serde_json::json!({"name": "web", "password": secret("hunter2\"x".into()), "n": secret(serde_json::json!({"pin": 48213}))});
    let m = redact_secrets_in(
        "invalid value: string \"hunter2\\\"x\" for web; pin 48213; hunter2\"x",
        &v,
    );
    assert!(!m.contains("hunter2") && !m.contains("48213"), "{m}");
    assert!(m.contains("web"), "{m}");
    assert_eq!(redact_secrets_in("nothing secret", &v), "nothing secret");
}
use serde_json::json;

#[test]
fn diff_lists_leaves() {
    let d = diff(
        &json!({"a": 1, "b": {"c": 2, "d": 3}, "e": [1, 2]}),
        &json!({"a": 1, "b": {"c": 5}, "e": [1, 2, 3], "f": true}),
    );
    let paths: Vec<String> = d.iter().map(|c| c.path.to_string()).collect();
    assert_eq!(paths, vec!["b.c", "b.d", "e", "f"]);
}

#[test]
fn keep_paths_restores_old_values() {
    let mut new = json!({"tags": {"a": "2", "b": "x"}, "n": 1});
    keep_paths(&mut new, &json!({"tags": {"a": "1"}, "n": 1}), &[Path::parse("tags.a")]);
    assert_eq!(new, json!({"tags": {"a": "1", "b": "x"}, "n": 1}));
    let mut new = json!({"tags": {"a": "2"}});
    keep_paths(&mut new, &json!({}), &[Path::parse("tags")]);
    assert_eq!(new, json!({}));
}

#[test]
fn secrets_survive_transforms_and_redact() {
    let t: Vec<Transform> = vec![std::sync::Arc::new(|v| Ok(json!(format!("x{}", v.as_str().unwrap()))))];
    let a: Address = "pw".parse().unwrap();
    let expr = OutputExpr::Map {
        transform: 0,
        of: Box::new(OutputExpr::Ref {
            address: a,
            path: "result".into(),
        }),
    };
    let got = resolve(
        &json!({"k": expr.to_value()}),
        &|_, _| Ok(Resolved::Known(secret(json!("s3cret")))),
        &t,
    )
    .unwrap();
    assert_eq!(strip_secrets(&got), json!({"k": "xs3cret"}));
    assert_eq!(redact(&got), json!({"k": "(sensitive value)"}));
}

#[test]
fn path_display_quotes_odd_keys() {
    let p = Path::default()
        .child_key("tags")
        .child_key("karpenter.sh/discovery")
        .child_index(0);
    assert_eq!(p.to_string(), "tags[\"karpenter.sh/discovery\"][0]");
}

/// Any address: one to three segments of the characters an address may use.
fn address() -> impl Strategy<Value = Address> {
    proptest::collection::vec("[a-zA-Z0-9._:@-]{1,8}", 1..4).prop_map(|segs| segs.join("/").parse().unwrap())
}

proptest! {
    /// A plain reference reads back from its compact form whatever its path holds (`#`,
    /// dots, quotes, NUL), is seen as a marker by every walker, and names its address.
    #[test]
    fn every_reference_reads_back_from_its_compact_form(address in address(), path in ".*") {
        let e = OutputExpr::Ref { address: address.clone(), path };
        let v = e.to_value();
        prop_assert_eq!(OutputExpr::from_marker(&v), Some(e));
        prop_assert_eq!(marker(&v), Some("output"));
        let inside = json!({"a": [1, {"b": v.clone()}]});
        prop_assert!(contains_unknown(&inside));
        prop_assert!(!contains_secret(&inside));
        let mut refs = Vec::new();
        collect_refs(&inside, &mut refs);
        prop_assert_eq!(refs, vec![address]);
        prop_assert_eq!(redact(&v), json!("(known after apply)"));
    }

    /// Text that only looks like a reference is plain text: no marker, nothing unknown.
    #[test]
    fn text_without_the_prefix_is_never_a_reference(s in "[^\u{0}].*") {
        let v = json!(s);
        prop_assert_eq!(marker(&v), None);
        prop_assert_eq!(OutputExpr::from_marker(&v), None);
        prop_assert!(!contains_unknown(&v));
        prop_assert_eq!(redact(&v), v);
    }
}

#[test]
fn a_reference_resolves_to_the_output_or_to_unknown() {
    let e = OutputExpr::Ref {
        address: "net/vpc".parse().unwrap(),
        path: "tags[\"a#b\"]".into(),
    };
    let v = json!({"vpc_id": e.to_value(), "plain": "spar:ref:net/vpc#id"});
    let known = |a: &Address, p: &str| -> Result<Resolved, ResolveError> {
        assert_eq!((a.as_str(), p), ("net/vpc", "tags[\"a#b\"]"));
        Ok(Resolved::Known(json!("vpc-1")))
    };
    assert_eq!(
        resolve(&v, &known, &[]).unwrap(),
        json!({"vpc_id": "vpc-1", "plain": "spar:ref:net/vpc#id"})
    );
    let later = |_: &Address, _: &str| -> Result<Resolved, ResolveError> { Ok(Resolved::Unknown) };
    assert_eq!(
        resolve(&v, &later, &[]).unwrap(),
        json!({"vpc_id": unknown(), "plain": "spar:ref:net/vpc#id"})
    );
}
