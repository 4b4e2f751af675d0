//! Where a stack program finds its configuration, its state and its key, and how a
//! command gets a [`Session`].
//!
//! Rules kept here: the stack crate is found from `CARGO_MANIFEST_DIR` (set by `cargo
//! run`), else by looking for `stacks/<program>` from the working directory upward;
//! the project root is the directory holding `stacks/`; state defaults to
//! `<root>/state/<program>/<stack>` and its key to `<root>/state/<program>/<stack>.key`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;

use crate::cli::Cli;
use crate::model::checks;
use crate::model::config::StackConfig;
use crate::model::stack::{Program, Stack};
use crate::ops::Session;
use crate::secrets::SecretKey;
use crate::state::{LocalBackend, StateStore};

/// Paths and settings of one invocation.
pub struct Context {
    pub program: String,
    pub stack: String,
    pub config_dir: PathBuf,
    pub state_dir: PathBuf,
    pub key_file: PathBuf,
    pub color: bool,
}

fn find_manifest_dir(program: &str) -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from)
        && dir.join("Cargo.toml").exists()
        && dir.file_name().is_some_and(|n| n == program)
    {
        return Some(dir);
    }
    let cwd = std::env::current_dir().ok()?;
    for dir in cwd.ancestors() {
        let candidate = dir.join("stacks").join(program);
        if candidate.join("Cargo.toml").exists() {
            return Some(candidate);
        }
        if dir.file_name().is_some_and(|n| n == program)
            && dir.parent().and_then(Path::file_name).is_some_and(|n| n == "stacks")
        {
            return Some(dir.to_path_buf());
        }
    }
    None
}

impl Context {
    pub fn new(program: &str, cli: &Cli, color: bool) -> anyhow::Result<Self> {
        if cli.stack.is_empty()
            || !cli
                .stack
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            anyhow::bail!(
                "--stack `{}` is not a valid stack name: use letters, digits, `-` and `_`",
                cli.stack
            );
        }
        let cwd = std::env::current_dir().context("the working directory is not readable")?;
        let manifest = find_manifest_dir(program).unwrap_or_else(|| cwd.clone());
        let root = match manifest.parent() {
            Some(p) if p.file_name().is_some_and(|n| n == "stacks") => p.parent().unwrap_or(p).to_path_buf(),
            _ => manifest.clone(),
        };
        let config_dir = std::env::var_os("SPAR_CONFIG_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| manifest.join("config"));
        let state_dir = cli
            .state_dir
            .clone()
            .unwrap_or_else(|| root.join("state").join(program).join(&cli.stack));
        let key_file = state_dir.with_extension("key");
        Ok(Context {
            program: program.to_string(),
            stack: cli.stack.clone(),
            config_dir,
            state_dir,
            key_file,
            color,
        })
    }

    /// Runs the program's `define`: its graph, kinds, checks and commands.
    pub fn program(&self, define: fn(&mut Stack) -> crate::Result<()>) -> crate::Result<Program> {
        let config = StackConfig::load(&self.config_dir, &self.stack)?;
        let mut stack = Stack::new(&self.program, &self.stack, config);
        define(&mut stack)?;
        Ok(stack.into_program()?)
    }

    /// Runs the program's `define` and opens the stack's state (checks not enforced: for
    /// commands that must work on a program whose checks fail, such as destroy).
    pub fn session(&self, define: fn(&mut Stack) -> crate::Result<()>) -> crate::Result<Session> {
        let p = self.program(define)?;
        self.open(p)
    }

    /// As [`Context::session`], refusing a program with a failed check not in `waived`
    /// (with `for_apply`, also the checks only apply needs).
    pub fn checked_session(
        &self,
        define: fn(&mut Stack) -> crate::Result<()>,
        waived: &[String],
        for_apply: bool,
    ) -> anyhow::Result<Session> {
        let p = self.program(define)?;
        checks::enforce(&p.checks, waived, for_apply)?;
        for c in p.checks.iter().filter(|c| !c.passed()) {
            let why = if waived.contains(&c.name) {
                "is waived"
            } else {
                "will stop apply"
            };
            eprintln!("warning: check `{}` {why}: {}", c.name, c.failures.join("; "));
        }
        Ok(self.open(p)?)
    }

    fn open(&self, p: Program) -> crate::Result<Session> {
        let key = SecretKey::load_or_create(&self.key_file)?;
        let store = StateStore::new(Arc::new(LocalBackend::new(&self.state_dir)), key);
        Ok(Session {
            program: self.program.clone(),
            stack: self.stack.clone(),
            graph: p.graph,
            registry: p.registry,
            store,
        })
    }
}
