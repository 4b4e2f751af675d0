//! The bad-input corpus: every kind of bad input gets a one-line error naming the problem,
//! a non-zero exit, and leaves the state file byte-for-byte unchanged.

#[path = "support/fixture.rs"]
mod fixture;

use fixture::{Fixture, corpus, text};

/// Runs each command that reads state, and checks the refusal.
fn assert_refused(f: &Fixture, env: &[(&str, &str)], expect: &[&str]) {
    let before = std::fs::read(f.snapshot_path()).ok();
    for args in [
        &["plan"][..],
        &["apply", "--yes"],
        &["destroy", "--yes"],
        &["refresh"],
        &["state", "list"],
    ] {
        let out = f.run_with(args, env);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?} must exit 1; stderr: {stderr}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{args:?} must print exactly one line, got: {stderr}");
        assert!(lines[0].starts_with("error: "), "{stderr}");
        for e in expect {
            assert!(lines[0].contains(e), "{args:?}: expected `{e}` in: {}", lines[0]);
        }
        assert_eq!(
            std::fs::read(f.snapshot_path()).ok(),
            before,
            "{args:?} changed the state file"
        );
        assert!(!f.path("state/lock.json").exists(), "{args:?} left the lock behind");
        assert!(!f.path("state/journal.jsonl").exists(), "{args:?} left a journal");
    }
}

fn applied() -> Fixture {
    let f = Fixture::new();
    let out = f.run(&["apply", "--yes"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    f
}

fn with_state(name: &str) -> Fixture {
    let f = applied();
    std::fs::copy(corpus(name), f.snapshot_path()).unwrap();
    f
}

#[test]
fn a_truncated_state_is_refused() {
    assert_refused(
        &with_state("state-truncated.json"),
        &[],
        &["is truncated", "snapshot.json"],
    );
}

#[test]
fn a_state_with_a_wrong_checksum_is_refused() {
    assert_refused(
        &with_state("state-bad-checksum.json"),
        &[],
        &["fails its checksum", "snapshot.json"],
    );
}

#[test]
fn a_state_from_a_future_version_is_refused() {
    assert_refused(
        &with_state("state-future-version.json"),
        &[],
        &["newer spar", "state version 99"],
    );
}

#[test]
fn a_state_that_is_not_json_is_refused() {
    assert_refused(&with_state("state-not-json.json"), &[], &["is not valid JSON"]);
}

#[test]
fn json_that_is_not_a_spar_state_is_refused() {
    assert_refused(&with_state("state-not-spar.json"), &[], &["not a spar state file"]);
}

#[test]
fn a_cycle_is_named() {
    assert_refused(
        &applied(),
        &[("SPAR_FIXTURE", "cycle")],
        &["dependency cycle: a -> b -> c -> a"],
    );
}

#[test]
fn a_duplicate_address_is_named() {
    assert_refused(
        &applied(),
        &[("SPAR_FIXTURE", "duplicate")],
        &["two resources are declared at address `a`"],
    );
}

#[test]
fn a_dangling_reference_is_named() {
    assert_refused(&applied(), &[("SPAR_FIXTURE", "dangling")], &["`a` references `ghost`"]);
}

#[test]
fn a_missing_config_value_names_file_and_key() {
    let f = applied();
    f.use_config("config-missing-key.toml");
    assert_refused(&f, &[], &["dev.toml", "key `copies`", "missing"]);
}

#[test]
fn a_mistyped_config_value_names_file_and_key() {
    let f = applied();
    f.use_config("config-mistyped.toml");
    assert_refused(&f, &[], &["dev.toml", "key `copies`", "invalid type"]);
}

#[test]
fn an_unknown_config_key_is_named() {
    let f = applied();
    f.use_config("config-unknown-key.toml");
    assert_refused(&f, &[], &["dev.toml", "copise"]);
}

#[test]
fn a_config_file_that_is_not_toml_is_refused() {
    let f = applied();
    f.use_config("config-not-toml.toml");
    assert_refused(&f, &[], &["dev.toml", "line"]);
}

#[test]
fn a_missing_config_file_lists_the_stacks_that_exist() {
    let f = applied();
    let out = f.run(&["--stack", "prod", "plan"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("prod.toml does not exist") && stderr.contains("dev"),
        "{stderr}"
    );
}

#[test]
fn a_bad_target_is_named() {
    let f = applied();
    let before = std::fs::read(f.snapshot_path()).unwrap();
    let out = f.run(&["apply", "--yes", "--target", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("`nope` matches no resource"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(std::fs::read(f.snapshot_path()).unwrap(), before);
}

#[test]
fn a_bad_imports_file_is_refused_naming_the_entry_and_imports_nothing() {
    let f = applied();
    for (file, expect) in [
        ("imports-not-toml.toml", "imports-not-toml.toml: "),
        ("imports-empty.toml", "no [[import]] tables"),
        ("imports-missing-id.toml", "import #1 (`extra`): missing field `id`"),
        ("imports-unknown-key.toml", "import #1 (`extra`): unknown field `name`"),
        ("imports-mistyped.toml", "import #1 (`extra`): invalid type"),
        (
            "imports-unknown-kind.toml",
            "import #1 (`extra`): no resource kind named `local:Fiel`",
        ),
        ("imports-bad-address.toml", "import #1 (`no good`): "),
        (
            "imports-listed-twice.toml",
            "import #2 (`extra`): `extra` is listed twice",
        ),
        (
            "imports-in-state.toml",
            "import #2 (`copies/copy-0`): `copies/copy-0` is already in state; `state rm` it first",
        ),
        (
            "imports-kind-mismatch.toml",
            "import #1 (`copies/copy-1`): the program declares `copies/copy-1` as local:File",
        ),
    ] {
        let before = std::fs::read(f.snapshot_path()).unwrap();
        let out = f.run(&["import", "--file", corpus(file).to_str().unwrap()]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{file}: {stderr}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{file}: one line, got: {stderr}");
        assert!(
            lines[0].starts_with("error: ") && lines[0].contains(expect),
            "{file}: {stderr}"
        );
        assert!(
            text(&out.stdout).is_empty(),
            "{file}: nothing imported, nothing printed"
        );
        assert_eq!(
            std::fs::read(f.snapshot_path()).unwrap(),
            before,
            "{file} changed the state"
        );
        assert!(!f.path("state/lock.json").exists(), "{file} left the lock behind");
    }
}
