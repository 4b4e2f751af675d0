//! Runs the fixture stack program (`examples/fixture_stack.rs`) as a real process, with its
//! config and state in a temporary directory.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The fixture binary, built by `cargo test` next to the test binaries.
pub fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let target = exe.parent().and_then(Path::parent).expect("target/<profile>");
    let bin = target.join("examples").join("fixture_stack");
    let built = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    // `cargo test` builds examples; `cargo test --test NAME` does not, so refuse an example
    // older than the spar library it should link.
    let newest_lib = std::fs::read_dir(target.join("deps"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("libspar-"))
        .filter_map(|e| built(&e.path()))
        .max();
    let fresh = match (built(&bin), newest_lib) {
        (Some(b), Some(lib)) => b >= lib,
        (Some(_), None) => true,
        _ => false,
    };
    assert!(
        fresh,
        "{} is missing or older than this test: run `cargo build -p spar --examples` first (plain `cargo test` does)",
        bin.display()
    );
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
