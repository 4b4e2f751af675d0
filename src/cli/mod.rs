//! The command line: `spar::cli::run("my-stack", define)` is a stack program's `main`.
//!
//! One file per command, each a thin wrapper over [`crate::ops`]. Rules kept here: only
//! this module prints, decides exit codes or uses `anyhow`; errors are printed as one line
//! (`error: ...`); exit codes are 0 (success, or no changes with `--detailed-exitcode`),
//! 1 (error), 2 (changes present with `--detailed-exitcode`), 130 (interrupted).

mod apply;
mod check;
mod context;
mod graph;
mod import;
#[cfg(feature = "kubernetes")]
mod kubeconfig;
mod output;
mod plan;
mod refresh;
mod state;

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::model::stack::Stack;

pub use context::Context;

/// A stack program's command line.
#[derive(Debug, Parser)]
#[command(about = "spar: infrastructure as Rust code", version)]
pub struct Cli {
    /// The stack (configuration file `config/<stack>.toml` and its own state).
    #[arg(long, global = true, env = "SPAR_STACK", default_value = "dev")]
    pub stack: String,
    /// Where state lives (default: `state/<program>/<stack>` at the project root).
    #[arg(long, global = true, env = "SPAR_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// Where state lives instead: `s3://bucket/prefix` (overrides `[spar] backend`).
    #[arg(long, global = true, env = "SPAR_BACKEND")]
    pub backend: Option<String>,
    /// Never use colour.
    #[arg(long, global = true, env = "NO_COLOR", value_parser = clap::builder::FalseyValueParser::new())]
    pub no_color: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// Options shared by the commands that plan.
#[derive(Debug, Clone, clap::Args)]
pub struct PlanArgs {
    /// Only this address or component (and what it depends on); repeatable.
    #[arg(long = "target", value_name = "ADDRESS")]
    pub targets: Vec<String>,
    /// Leave this address or component (and what depends on it) alone; repeatable.
    #[arg(long = "exclude", value_name = "ADDRESS")]
    pub excludes: Vec<String>,
    /// Replace this resource although its inputs did not change (a wedged node group, a
    /// password to rotate); repeatable.
    #[arg(long = "replace", value_name = "ADDRESS")]
    pub replace: Vec<String>,
    /// Read live objects first, so drift shows in the plan.
    #[arg(long)]
    pub refresh: bool,
    /// Only read live objects and show what changed outside spar (`plan`), or accept that
    /// into state after confirmation (`apply`); no resource is changed.
    #[arg(long, conflicts_with_all = ["refresh", "replace", "excludes"])]
    pub refresh_only: bool,
    /// Go ahead although this check of the program fails; repeatable (`check` lists them).
    #[arg(long = "waive", value_name = "CHECK")]
    pub waive: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show what apply would change.
    Plan {
        #[command(flatten)]
        plan: PlanArgs,
        /// Plan the destruction of the whole stack.
        #[arg(long)]
        destroy: bool,
        /// Print the plan as JSON.
        #[arg(long)]
        json: bool,
        /// Save the plan for `apply PLANFILE`.
        #[arg(long, value_name = "PLANFILE")]
        out: Option<PathBuf>,
        /// Exit 0 when there are no changes, 2 when there are, 1 on error.
        #[arg(long)]
        detailed_exitcode: bool,
    },
    /// Apply the program (or a saved plan).
    Apply {
        /// A plan saved with `plan --out`; applied exactly, or refused if stale.
        planfile: Option<PathBuf>,
        #[command(flatten)]
        plan: PlanArgs,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
        /// How many provider calls may run at once.
        #[arg(long, default_value_t = 16)]
        parallelism: usize,
        /// Fail, changing nothing, if the plan is not empty (CI: "prod matches main").
        #[arg(long)]
        expect_no_changes: bool,
        /// One JSON object per line per event on stdout instead of the live view (needs --yes).
        #[arg(long)]
        json: bool,
    },
    /// Delete everything the stack manages.
    Destroy {
        #[arg(long = "target", value_name = "ADDRESS")]
        targets: Vec<String>,
        #[arg(long, short = 'y')]
        yes: bool,
        #[arg(long, default_value_t = 16)]
        parallelism: usize,
        /// One JSON object per line per event on stdout instead of the live view (needs --yes).
        #[arg(long)]
        json: bool,
    },
    /// Read live objects, show what changed outside spar, and accept it into state after
    /// confirmation (as `apply --refresh-only`).
    Refresh {
        /// Only this address or component; repeatable.
        #[arg(long = "target", value_name = "ADDRESS")]
        targets: Vec<String>,
        #[arg(long, short = 'y')]
        yes: bool,
        /// One JSON object per line per event on stdout (needs --yes).
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 16)]
        parallelism: usize,
    },
    /// Adopt existing objects into state: one (`KIND ADDRESS ID`) or many (`--file`).
    Import {
        /// The resource kind, such as `local:File`.
        #[arg(required_unless_present = "file", requires_all = ["address", "id"])]
        kind: Option<String>,
        /// The address to record it at.
        address: Option<String>,
        /// The object's id.
        id: Option<String>,
        /// A TOML file of `[[import]]` tables (kind, address, id), adopted in one locked run,
        /// all or none.
        #[arg(long, value_name = "FILE", conflicts_with = "kind")]
        file: Option<PathBuf>,
        #[arg(long, default_value_t = 16)]
        parallelism: usize,
    },
    /// Inspect or edit state.
    #[command(subcommand)]
    State(StateCommand),
    /// Print stack outputs.
    Output {
        /// One output's name.
        name: Option<String>,
        #[arg(long)]
        json: bool,
        /// Print secret values in clear.
        #[arg(long)]
        show_secrets: bool,
    },
    /// Print the program's resource graph.
    Graph {
        #[arg(long, value_enum, default_value = "dot")]
        format: graph::Format,
    },
    /// Verify the program's own invariants (also run before every plan and apply).
    Check {
        /// Report this failed check without failing; repeatable.
        #[arg(long = "waive", value_name = "CHECK")]
        waive: Vec<String>,
        /// Print the checks, their failures and evidence as JSON.
        #[arg(long)]
        json: bool,
    },
    /// A command of the stack program itself (such as `cost`).
    #[command(external_subcommand)]
    Program(Vec<String>),
    /// Write a kubeconfig for the stack's cluster (from its kubernetes:Provider in state).
    #[cfg(feature = "kubernetes")]
    Kubeconfig {
        /// The provider resource's address, when the stack has several.
        #[arg(long)]
        provider: Option<String>,
        /// Where to write it (default: `<state-dir>.kubeconfig`).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// List the resources in state.
    List,
    /// Show one resource (secrets redacted).
    Show { address: String },
    /// Forget resources (or components) without deleting them.
    Rm {
        #[arg(required = true)]
        addresses: Vec<String>,
    },
    /// Rename a resource in state.
    Mv { from: String, to: String },
    /// Break the stack lock held by a process that is gone.
    Unlock {
        /// Break it even when its holder is a process on this host that still runs.
        #[arg(long)]
        force: bool,
    },
    /// List the snapshots kept in the history.
    History,
    /// Clear the protect flag recorded in state (the program's option applies again at the
    /// next apply).
    Unprotect { address: String },
    /// Print the stack's state snapshot to stdout, as stored (secrets stay sealed).
    Pull,
    /// Replace the stack's state with a snapshot file (one `state pull` wrote, edited or
    /// not): refused unless its lineage is the stack's and its serial is newer.
    Push {
        file: PathBuf,
        /// Push although the lineage differs or the serial is not newer.
        #[arg(long)]
        force: bool,
    },
}

/// An error the CLI prints and maps to an exit code.
pub(crate) struct Exit(pub u8);

/// Runs a stack program: parses the command line, runs `define`, runs the command.
pub fn run(program: &str, define: fn(&mut Stack) -> crate::Result<()>) -> ExitCode {
    let cli = Cli::parse();
    run_with(program, define, cli)
}

/// Runs a stack program with already-parsed arguments.
pub fn run_with(program: &str, define: fn(&mut Stack) -> crate::Result<()>, cli: Cli) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let color = !cli.no_color && std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    match rt.block_on(dispatch(program, define, cli, color)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            if let Some(Exit(code)) = e.downcast_ref::<Exit>() {
                return ExitCode::from(*code);
            }
            let msg = format!("{e:#}").replace('\n', " ");
            if color {
                eprintln!("\x1b[31;1merror:\x1b[0m {msg}");
            } else {
                eprintln!("error: {msg}");
            }
            ExitCode::from(1)
        }
    }
}

impl std::fmt::Debug for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {}", self.0)
    }
}
impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {}", self.0)
    }
}
impl std::error::Error for Exit {}

async fn dispatch(
    program: &str,
    define: fn(&mut Stack) -> crate::Result<()>,
    cli: Cli,
    color: bool,
) -> anyhow::Result<u8> {
    let ctx = Context::new(program, &cli, color)?;
    match cli.command {
        Command::Plan {
            plan,
            destroy,
            json,
            out,
            detailed_exitcode,
        } if plan.refresh_only => {
            if destroy || out.is_some() {
                return Err(crate::Error::Usage(
                    "plan --refresh-only changes no resource, so it takes neither --destroy nor --out".into(),
                )
                .into());
            }
            let args = refresh::RefreshArgs {
                targets: plan.targets.clone(),
                yes: false,
                json,
                parallelism: 16,
            };
            refresh::preview(&ctx, define, &args, detailed_exitcode).await
        }
        Command::Plan {
            plan,
            destroy,
            json,
            out,
            detailed_exitcode,
        } => plan::run(&ctx, define, &plan, destroy, json, out.as_deref(), detailed_exitcode).await,
        Command::Apply {
            planfile,
            plan,
            yes,
            parallelism,
            expect_no_changes,
            json,
        } if plan.refresh_only => {
            if planfile.is_some() || expect_no_changes {
                return Err(crate::Error::Usage(
                    "apply --refresh-only reads live objects into state; it takes neither a plan file nor --expect-no-changes".into(),
                )
                .into());
            }
            let args = refresh::RefreshArgs {
                targets: plan.targets.clone(),
                yes,
                json,
                parallelism,
            };
            refresh::run(&ctx, define, &args).await
        }
        Command::Apply {
            planfile,
            plan,
            yes,
            parallelism,
            expect_no_changes,
            json,
        } => {
            let how = apply::How {
                yes,
                parallelism,
                json,
                expect_no_changes,
            };
            apply::run(&ctx, define, planfile.as_deref(), &plan, how).await
        }
        Command::Destroy {
            targets,
            yes,
            parallelism,
            json,
        } => {
            let how = apply::How {
                yes,
                parallelism,
                json,
                expect_no_changes: false,
            };
            apply::destroy(&ctx, define, targets, how).await
        }
        Command::Refresh {
            targets,
            yes,
            json,
            parallelism,
        } => {
            let args = refresh::RefreshArgs {
                targets,
                yes,
                json,
                parallelism,
            };
            refresh::run(&ctx, define, &args).await
        }
        Command::Import {
            kind,
            address,
            id,
            file,
            parallelism,
        } => {
            let what = match (file, kind, address, id) {
                (Some(f), ..) => import::What::File(f),
                (None, Some(kind), Some(address), Some(id)) => import::What::One { kind, address, id },
                _ => unreachable!("clap requires KIND ADDRESS ID or --file"),
            };
            import::run(&ctx, define, what, parallelism).await
        }
        Command::State(cmd) => state::run(&ctx, define, cmd).await,
        Command::Output {
            name,
            json,
            show_secrets,
        } => output::run(&ctx, define, name.as_deref(), json, show_secrets).await,
        Command::Graph { format } => graph::run(&ctx, define, format).await,
        Command::Check { waive, json } => check::run(&ctx, define, &waive, json),
        Command::Program(args) => check::program_command(&ctx, define, &args),
        #[cfg(feature = "kubernetes")]
        Command::Kubeconfig { provider, out } => {
            kubeconfig::run(&ctx, define, provider.as_deref(), out.as_deref()).await
        }
    }
}
