//! Where a stack program finds its configuration, its state and its key, and how a
//! command gets a [`Session`].
//!
//! Rules kept here: the stack crate is found from `CARGO_MANIFEST_DIR` (set by `cargo
//! run`), else by looking for `stacks/<program>` from the working directory upward;
//! the project root is the directory holding `stacks/`; state defaults to
//! `<root>/state/<program>/<stack>` and its key to `<root>/state/<program>/<stack>.key`;
//! `--backend s3://...` (or `[spar] backend` in the stack's config) puts state in S3, and
//! then the key must come from `SPAR_SECRET_KEY` or an existing key file (never made here).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;

use crate::cli::Cli;
use crate::model::checks;
use crate::model::config::{SparSettings, StackConfig};
use crate::model::stack::{Program, Stack};
use crate::ops::Session;
use crate::secrets::SecretKey;
use crate::state::{LocalBackend, StateBackend, StateStore};

/// Paths and settings of one invocation.
pub struct Context {
    pub program: String,
    pub stack: String,
    pub config_dir: PathBuf,
    pub state_dir: PathBuf,
    pub key_file: PathBuf,
    pub color: bool,
    /// `--backend`: where state lives instead of `state_dir` (`s3://bucket/prefix`).
    pub backend: Option<String>,
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
            backend: cli.backend.clone(),
        })
    }

    /// Runs the program's `define`: its graph, kinds, checks and commands.
    pub fn program(&self, define: fn(&mut Stack) -> crate::Result<()>) -> crate::Result<Program> {
        Ok(self.load(define)?.0)
    }

    fn load(&self, define: fn(&mut Stack) -> crate::Result<()>) -> crate::Result<(Program, SparSettings)> {
        let config = StackConfig::load(&self.config_dir, &self.stack)?;
        let settings = config.spar_settings()?;
        let mut stack = Stack::new(&self.program, &self.stack, config);
        define(&mut stack)?;
        Ok((stack.into_program()?, settings))
    }

    /// Runs the program's `define` and opens the stack's state (checks not enforced: for
    /// commands that must work on a program whose checks fail, such as destroy).
    pub async fn session(&self, define: fn(&mut Stack) -> crate::Result<()>) -> anyhow::Result<Session> {
        let (p, settings) = self.load(define)?;
        self.open(p, &settings, &[]).await
    }

    /// As [`Context::session`], refusing a program with a failed check not in `waived`
    /// (with `for_apply`, also the checks only apply needs).
    pub async fn checked_session(
        &self,
        define: fn(&mut Stack) -> crate::Result<()>,
        waived: &[String],
        for_apply: bool,
    ) -> anyhow::Result<Session> {
        let (p, settings) = self.load(define)?;
        // Waivers of lookup checks are judged when those run (at plan).
        let static_waived: Vec<String> = waived
            .iter()
            .filter(|w| !p.lookup_checks.iter().any(|c| &c.name == *w))
            .cloned()
            .collect();
        checks::enforce(&p.checks, &static_waived, for_apply)?;
        for c in p.checks.iter().filter(|c| !c.passed()) {
            let why = if waived.contains(&c.name) {
                "is waived"
            } else {
                "will stop apply"
            };
            eprintln!("warning: check `{}` {why}: {}", c.name, c.failures.join("; "));
        }
        self.open(p, &settings, waived).await
    }

    /// Where this stack's state lives: `--backend`, else the config's `[spar] backend`,
    /// else the local state directory.
    pub fn backend_url(&self, settings: &SparSettings) -> Option<String> {
        self.backend.clone().or_else(|| settings.backend.clone())
    }

    /// Opens the stack's state for `p`; its lookup checks run at every plan, with `waived`.
    async fn open(&self, p: Program, settings: &SparSettings, waived: &[String]) -> anyhow::Result<Session> {
        configure_aws(settings).await;
        let backend: Arc<dyn StateBackend> = match self.backend_url(settings) {
            None => Arc::new(LocalBackend::new(&self.state_dir)),
            Some(url) => remote_backend(&url).await?,
        };
        let key = if self.backend_url(settings).is_some()
            && std::env::var_os(crate::secrets::KEY_ENV).is_none()
            && !self.key_file.exists()
        {
            // A key made here would be one no other machine sharing the state has.
            anyhow::bail!(
                "state in {} is shared between machines, so its secrets key must be too: set {} to the stack's key (base64 of 32 bytes; `openssl rand -base64 32` makes one for a new stack) or put it in {}",
                self.backend_url(settings).unwrap_or_default(),
                crate::secrets::KEY_ENV,
                self.key_file.display()
            );
        } else {
            SecretKey::load_or_create(&self.key_file)?
        };
        let store = StateStore::new(backend, key).on_takeover(|h| {
            eprintln!(
                "note: took over the lock of {} (pid {}, `{}` since {}), which no longer runs; recovering what it left",
                h.holder, h.pid, h.operation, h.created
            )
        });
        Ok(Session {
            program: self.program.clone(),
            stack: self.stack.clone(),
            graph: p.graph,
            registry: p.registry,
            store,
            lookup_checks: p.lookup_checks,
            waived: waived.to_vec(),
        })
    }
}

/// Applies the stack's `[spar] aws_endpoint_url` / `aws_region` to the process's AWS
/// configuration; the standard environment variables still win.
#[cfg(feature = "aws")]
async fn configure_aws(settings: &SparSettings) {
    if settings.aws_endpoint_url.is_none() && settings.aws_region.is_none() {
        return;
    }
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if std::env::var_os("AWS_ENDPOINT_URL").is_none()
        && let Some(url) = &settings.aws_endpoint_url
    {
        loader = loader.endpoint_url(url);
    }
    if std::env::var_os("AWS_REGION").is_none()
        && let Some(region) = &settings.aws_region
    {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    // Already configured (a second session in one process): the first one stands.
    let _ = crate::aws::use_config(loader.load().await);
}

#[cfg(not(feature = "aws"))]
async fn configure_aws(_settings: &SparSettings) {}

#[cfg(feature = "aws")]
async fn remote_backend(url: &str) -> anyhow::Result<Arc<dyn StateBackend>> {
    let client = crate::aws::context::s3_client().await.clone();
    Ok(Arc::new(crate::state::S3Backend::from_url(client, url).await?))
}

#[cfg(not(feature = "aws"))]
async fn remote_backend(url: &str) -> anyhow::Result<Arc<dyn StateBackend>> {
    anyhow::bail!("backend `{url}`: this program is built without the `aws` feature, which the s3:// backend needs")
}
