//! Runs the fixture stack program (`examples/fixture_stack.rs`) as a real process, with its
//! config and state in a temporary directory.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The fixture binary, built by `cargo test` next to the test binaries. `cargo test --test
/// NAME` does not build examples, so an example older than any source it was built from
/// (its dep-info file lists them, spar's own included) is refused: a stale build never
/// passes for the current code. (Comparing against the newest `libspar-*` instead would
/// fail whenever spar is also built with other features into the same target directory.)
pub fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let target = exe.parent().and_then(Path::parent).expect("target/<profile>");
    let bin = target.join("examples").join("fixture_stack");
    let hint = "run `cargo build -p spar --examples` first (plain `cargo test` does)";
    let built = std::fs::metadata(&bin)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| panic!("{} is missing: {hint}", bin.display()));
    let deps = std::fs::read_to_string(bin.with_extension("d"))
        .unwrap_or_else(|_| panic!("{} has no dep-info file: {hint}", bin.display()));
    let sources = deps.split_once(": ").map(|(_, s)| s).unwrap_or_default();
    // A target directory shared by several checkouts may hold another checkout's build.
    assert!(
        sources.contains(env!("CARGO_MANIFEST_DIR")),
        "{} was built from another checkout: {hint}",
        bin.display()
    );
    for src in sources.split_whitespace() {
        let newer = std::fs::metadata(src)
            .and_then(|m| m.modified())
            .is_ok_and(|m| m > built);
        assert!(!newer, "{} is older than {src}: {hint}", bin.display());
    }
    bin
}

/// A fixture stack in a temp dir: `cfg/dev.toml`, `state/`, `files/`.
pub struct Fixture {
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub fn new() -> Self {
        let f = Fixture {
            dir: tempfile::tempdir().expect("a temp dir"),
        };
        std::fs::create_dir_all(f.dir.path().join("cfg")).unwrap();
        f.use_config("config-valid.toml");
        f
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn snapshot_path(&self) -> PathBuf {
        self.path("state/snapshot.json")
    }

    /// Installs a corpus config file (with `DIR` replaced by the files directory).
    pub fn use_config(&self, corpus_name: &str) {
        let text = std::fs::read_to_string(corpus(corpus_name)).unwrap();
        let text = text.replace("DIR", &self.path("files").display().to_string());
        std::fs::write(self.path("cfg/dev.toml"), text).unwrap();
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(binary());
        c.args(args)
            .env("SPAR_CONFIG_DIR", self.path("cfg"))
            .env("SPAR_STATE_DIR", self.path("state"))
            .env_remove("SPAR_FIXTURE")
            .env_remove("SPAR_FIXTURE_EXTRA")
            .env_remove("SPAR_SECRET_KEY")
            .env("NO_COLOR", "1");
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("the fixture runs")
    }

    pub fn run_with(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = self.command(args);
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().expect("the fixture runs")
    }
}

pub fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus").join(name)
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
