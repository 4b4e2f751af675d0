//! `apply` and `destroy`: plan (or load a saved plan), confirm, execute, report.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::Path;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::apply::progress::{LiveView, PlainView};
use crate::apply::{ApplyEvents, ApplyReport, ExecuteOptions, StepStatus};
use crate::cli::plan::plan_options;
use crate::cli::{Context, Exit, PlanArgs};
use crate::model::stack::Stack;
use crate::ops::{Locked, Session};
use crate::plan::diff::PlanOptions;
use crate::plan::{Plan, planfile, render};

pub async fn run(
    ctx: &Context,
    define: fn(&mut Stack) -> crate::Result<()>,
    planfile_path: Option<&Path>,
    args: &PlanArgs,
    yes: bool,
    parallelism: usize,
) -> anyhow::Result<u8> {
    // A saved plan passed the checks (or waived them) when it was made.
    let session = match planfile_path {
        Some(_) => ctx.session(define).await?,
        None => ctx.checked_session(define, &args.waive, true).await?,
    };
    match planfile_path {
        Some(path) => {
            let plan = planfile::load(path, session.store.key())?;
            print!("{}", render::text(&plan, render::Style { color: ctx.color }));
            // A saved plan was reviewed when it was made: apply it without asking again.
            execute(ctx, &session, &plan, Run::Saved(path), parallelism).await
        }
        None => {
            let opts = plan_options(args, false);
            plan_confirm_execute(ctx, &session, &opts, args.refresh, yes, parallelism).await
        }
    }
}

pub async fn destroy(
    ctx: &Context,
    define: fn(&mut Stack) -> crate::Result<()>,
    targets: Vec<String>,
    yes: bool,
    parallelism: usize,
) -> anyhow::Result<u8> {
    let session = ctx.session(define).await?;
    let opts = PlanOptions {
        destroy: true,
        targets,
        excludes: Vec::new(),
        for_saving: false,
        replace: Vec::new(),
    };
    plan_confirm_execute(ctx, &session, &opts, false, yes, parallelism).await
}

async fn plan_confirm_execute(
    ctx: &Context,
    session: &Session,
    opts: &PlanOptions,
    refresh: bool,
    yes: bool,
    parallelism: usize,
) -> anyhow::Result<u8> {
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
            let mut plan = session.plan_locked(locked, opts)?;
            session.preview(&mut plan, &locked.snapshot).await?;
            print!("{}", render::text(&plan, render::Style { color: ctx.color }));
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
    execute(ctx, session, &plan, Run::Locked(Box::new(locked)), parallelism).await
}

fn confirm(verb: &str) -> bool {
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

async fn execute(
    ctx: &Context,
    session: &Session,
    plan: &Plan,
    run: Run<'_>,
    parallelism: usize,
) -> anyhow::Result<u8> {
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
    let events: Arc<dyn ApplyEvents> = match LiveView::if_drawable() {
        Some(live) => Arc::new(live),
        None => Arc::new(PlainView::new()),
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
