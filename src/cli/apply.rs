//! `apply` and `destroy`: plan (or load a saved plan), confirm, execute, report.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::Path;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::apply::progress::{JsonView, LiveView, PlainView};
use crate::apply::{ApplyEvents, ApplyReport, ExecuteOptions, StepStatus};
use crate::cli::plan::plan_options;
use crate::cli::{Context, Exit, PlanArgs};
use crate::model::stack::Stack;
use crate::ops::{Locked, Session};
use crate::plan::diff::PlanOptions;
use crate::plan::{Plan, planfile, render};

/// How an apply or destroy runs and reports.
#[derive(Debug, Clone, Copy)]
pub struct How {
    pub yes: bool,
    pub parallelism: usize,
    /// JSON events on stdout instead of the plan text and the live view.
    pub json: bool,
    /// Refuse, changing nothing, when the plan is not empty.
    pub expect_no_changes: bool,
}

/// Shows the plan: its text, or a `plan` event with `--json` (secrets redacted either way).
fn show_plan(ctx: &Context, plan: &Plan, how: How) {
    if how.json {
        JsonView::new().emit(&serde_json::json!({"event": "plan", "plan": render::json(plan)}));
    } else {
        print!("{}", render::text(plan, render::Style { color: ctx.color }));
    }
}

/// The `--expect-no-changes` refusal for a plan that would change something.
fn expected_no_changes(plan: &Plan) -> crate::Error {
    let s = plan.summary();
    let first: Vec<String> = plan
        .changes
        .iter()
        .filter(|c| c.op.is_change())
        .take(5)
        .map(|c| c.address.to_string())
        .collect();
    let more = plan.changes.iter().filter(|c| c.op.is_change()).count() - first.len();
    let outputs = if plan.outputs_changed.is_empty() {
        String::new()
    } else {
        format!(", outputs {}", plan.outputs_changed.join(", "))
    };
    crate::Error::Usage(format!(
        "--expect-no-changes: the plan is not empty ({} to create, {} to update, {} to replace, {} to delete: {}{}{outputs}); nothing was changed",
        s.create,
        s.update,
        s.replace,
        s.delete,
        first.join(", "),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        },
    ))
}

pub async fn run(
    ctx: &Context,
    define: fn(&mut Stack) -> crate::Result<()>,
    planfile_path: Option<&Path>,
    args: &PlanArgs,
    how: How,
) -> anyhow::Result<u8> {
    if how.json && !how.yes && planfile_path.is_none() {
        return Err(crate::Error::Usage("apply --json has no prompt to confirm at: pass --yes too".into()).into());
    }
    // A saved plan passed the checks (or waived them) when it was made.
    let session = match planfile_path {
        Some(_) => ctx.session(define).await?,
        None => ctx.checked_session(define, &args.waive, true).await?,
    };
    match planfile_path {
        Some(path) => {
            let plan = planfile::load(path, session.store.key())?;
            show_plan(ctx, &plan, how);
            if how.expect_no_changes && plan.has_changes() {
                return Err(expected_no_changes(&plan).into());
            }
            // A saved plan was reviewed when it was made: apply it without asking again.
            execute(ctx, &session, &plan, Run::Saved(path), how).await
        }
        None => {
            let opts = plan_options(args, false);
            plan_confirm_execute(ctx, &session, &opts, args.refresh, how).await
        }
    }
}

pub async fn destroy(
    ctx: &Context,
    define: fn(&mut Stack) -> crate::Result<()>,
    targets: Vec<String>,
    how: How,
) -> anyhow::Result<u8> {
    if how.json && !how.yes {
        return Err(crate::Error::Usage("destroy --json has no prompt to confirm at: pass --yes too".into()).into());
    }
    let session = ctx.session(define).await?;
    let opts = PlanOptions {
        destroy: true,
        targets,
        excludes: Vec::new(),
        for_saving: false,
        replace: Vec::new(),
    };
    plan_confirm_execute(ctx, &session, &opts, false, how).await
}

async fn plan_confirm_execute(
    ctx: &Context,
    session: &Session,
    opts: &PlanOptions,
    refresh: bool,
    how: How,
) -> anyhow::Result<u8> {
    let (yes, parallelism) = (how.yes, how.parallelism);
    let mut locked = session.lock_for(if opts.destroy { "destroy" } else { "apply" }).await?;
    for m in &locked.recovered {
        eprintln!("recovered: {m}");
    }
    let verb = if opts.destroy { "Destroy" } else { "Apply" };
    // From here until execution starts, Ctrl-C releases the lock and changes nothing.
    let prepared = {
        let locked = &mut locked;
        async move {
            if refresh {
                let report = crate::ops::refresh::refresh_snapshot(
                    &session.registry,
                    &mut locked.snapshot,
                    parallelism,
                    &session.stack_id(),
                )
                .await;
                // Planning changes on state that could not be read back would act on what
                // may no longer be true (a missing object, an endpoint that moved): refuse.
                if !report.errors.is_empty() {
                    for (a, e) in &report.errors {
                        eprintln!("error: could not refresh {a}: {e}");
                    }
                    return Err(crate::Error::Usage(format!(
                        "{} resource(s) could not be read back, so nothing was planned or changed; fix the cause above (credentials, endpoint, network) or {} without --refresh",
                        report.errors.len(),
                        verb.to_lowercase()
                    )));
                }
            }
            let mut plan = session.plan_locked(locked, opts).await?;
            session.preview(&mut plan, &locked.snapshot).await?;
            show_plan(ctx, &plan, how);
            if how.expect_no_changes && plan.has_changes() {
                return Err(expected_no_changes(&plan));
            }
            let go = !plan.has_changes()
                || yes
                || tokio::task::spawn_blocking(move || confirm(verb))
                    .await
                    .unwrap_or(false);
            Ok::<_, crate::Error>((plan, go))
        }
    };
    // `biased`: the Ctrl-C listener is polled, and so installed, before planning starts; in
    // random order the prompt could show before it, and a Ctrl-C typed at once would kill
    // the process with the lock held.
    let prepared = tokio::select! {
        biased;
        _ = tokio::signal::ctrl_c() => None,
        r = prepared => Some(r),
    };
    let plan = match prepared {
        None => {
            locked.lock.release().await?;
            eprintln!("\ninterrupted: nothing was changed.");
            // A prompt may still be reading stdin on a blocking thread; do not wait for it.
            std::process::exit(130);
        }
        Some(Err(e)) => {
            locked.lock.release().await?;
            return Err(e.into());
        }
        Some(Ok((_, false))) => {
            locked.lock.release().await?;
            eprintln!("Nothing was changed.");
            return Err(Exit(1).into());
        }
        Some(Ok((plan, true))) => plan,
    };
    // Even without changes, an apply records outputs and options.
    execute(ctx, session, &plan, Run::Locked(Box::new(locked)), how).await
}

pub(crate) fn confirm(verb: &str) -> bool {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        eprintln!("error: {verb} needs confirmation and stdin is not a terminal; pass --yes to proceed without asking");
        return false;
    }
    eprint!("\n{verb} these changes? Only 'yes' will be accepted: ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    let _ = stdin.lock().read_line(&mut line);
    line.trim() == "yes"
}

/// What to execute: a plan made under a lock we hold, or a saved plan file.
enum Run<'a> {
    Locked(Box<Locked>),
    Saved(&'a Path),
}

async fn execute(ctx: &Context, session: &Session, plan: &Plan, run: Run<'_>, how: How) -> anyhow::Result<u8> {
    let parallelism = how.parallelism;
    let cancel = CancellationToken::new();
    let abort = CancellationToken::new();
    let watcher = {
        let (cancel, abort) = (cancel.clone(), abort.clone());
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_err() {
                return;
            }
            eprintln!(
                "\ninterrupt: no new operations will start; waiting for those in flight to finish and be recorded (Ctrl-C again to stop their waits)"
            );
            cancel.cancel();
            if tokio::signal::ctrl_c().await.is_err() {
                return;
            }
            eprintln!(
                "\ninterrupt: stopping the waits of operations in flight; what they made is recorded, and a create left unsettled is found and adopted by the next run (Ctrl-C again to exit at once)"
            );
            abort.cancel();
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        })
    };
    let json = how.json.then(|| Arc::new(JsonView::new()));
    let events: Arc<dyn ApplyEvents> = match (&json, LiveView::if_drawable()) {
        (Some(j), _) => j.clone(),
        (None, Some(live)) => Arc::new(live),
        (None, None) => Arc::new(PlainView::new()),
    };
    let opts = ExecuteOptions {
        parallelism,
        cancel: cancel.clone(),
        abort,
        events,
    };
    let report = match run {
        Run::Locked(locked) => session.apply(plan, *locked, &opts).await,
        Run::Saved(path) => session.apply_saved(plan, path, &opts).await,
    };
    watcher.abort();
    let report = report?;
    if let Some(j) = &json {
        let outputs = if report.succeeded() && !report.interrupted {
            crate::value::redact(&serde_json::to_value(session.outputs().await?)?)
        } else {
            serde_json::Value::Null
        };
        j.emit(&summary_event(plan, &report, outputs));
        return Ok(if report.interrupted {
            130
        } else if report.succeeded() {
            0
        } else {
            1
        });
    }
    print_summary(ctx, plan, &report);
    if report.interrupted {
        return Ok(130);
    }
    if !report.succeeded() {
        return Ok(1);
    }
    let outputs = session.outputs().await?;
    if !outputs.is_empty() {
        println!("\nOutputs:");
        for (k, v) in outputs {
            println!("  {k} = {}", render::show_value(&v));
        }
    }
    Ok(0)
}

/// The `summary` event: the counts of the text summary, as data, with the stack's outputs
/// (secrets redacted) after a successful run.
fn summary_event(plan: &Plan, report: &ApplyReport, outputs: serde_json::Value) -> serde_json::Value {
    let failed: Vec<serde_json::Value> = report
        .failures()
        .map(|(a, m)| serde_json::json!({"address": a, "error": m}))
        .collect();
    serde_json::json!({
        "event": "summary",
        "command": if plan.destroy { "destroy" } else { "apply" },
        "succeeded": report.succeeded() && !report.interrupted,
        "interrupted": report.interrupted,
        "done": report.count(|s| matches!(s, StepStatus::Done)),
        "unchanged": report.count(|s| matches!(s, StepStatus::Unchanged)),
        "failed": failed,
        "skipped": report.count(|s| matches!(s, StepStatus::Skipped { .. })),
        "not_started": report.count(|s| matches!(s, StepStatus::NotStarted)),
        "retried_calls": report.retried_calls,
        "elapsed_seconds": (report.elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
        "outputs": outputs,
    })
}

fn print_summary(ctx: &Context, plan: &Plan, report: &ApplyReport) {
    let style = render::Style { color: ctx.color };
    let done = report.count(|s| matches!(s, StepStatus::Done));
    let failed: Vec<_> = report.failures().collect();
    let skipped = report.count(|s| matches!(s, StepStatus::Skipped { .. }));
    let not_started = report.count(|s| matches!(s, StepStatus::NotStarted));
    let verb = if plan.destroy { "Destroy" } else { "Apply" };
    let headline = if report.interrupted {
        format!("{verb} interrupted")
    } else if failed.is_empty() {
        format!("{verb} complete")
    } else {
        format!("{verb} failed")
    };
    let retried = match report.retried_calls {
        0 => String::new(),
        1 => ", 1 call retried".to_string(),
        n => format!(", {n} calls retried"),
    };
    println!(
        "\n{}: {done} operations done, {} failed, {skipped} skipped, {not_started} not started, in {:.1}s{retried}.",
        style.bold(&headline),
        failed.len(),
        report.elapsed.as_secs_f64()
    );
    for (a, m) in failed {
        println!("  {a}: {m}");
    }
}
