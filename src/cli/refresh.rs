//! `refresh`, `apply --refresh-only` and `plan --refresh-only`: what changed outside spar,
//! property by property, reviewed before it is written.
//!
//! `plan --refresh-only` reads and shows, writing nothing; `refresh` and
//! `apply --refresh-only` read under the lock, show the same, ask (unless `--yes`), and
//! write exactly what was shown. With `--json`, one JSON object per line: `drift`, `gone`,
//! `unreadable`, then `summary`.

use crate::apply::progress::JsonView;
use crate::cli::Context;
use crate::model::stack::Stack;
use crate::ops::refresh::RefreshReport;
use crate::plan::render;

/// How a refresh runs and reports.
#[derive(Debug, Clone, Default)]
pub struct RefreshArgs {
    pub targets: Vec<String>,
    pub yes: bool,
    pub json: bool,
    pub parallelism: usize,
}

fn print_text(report: &RefreshReport) {
    for (a, changes) in &report.drifted {
        println!("~ {a} changed outside spar:");
        let file_modes = report.file_modes.get(a).map_or(&[][..], Vec::as_slice);
        for c in changes {
            let show = |v: &Option<serde_json::Value>| {
                v.as_ref()
                    .map(|v| render::show_input(v, &c.path, file_modes))
                    .unwrap_or_else(|| "(absent)".into())
            };
            let (before, after) = (show(&c.before), show(&c.after));
            println!("    {}: {before} -> {after}", c.path);
        }
    }
    for a in &report.gone {
        println!("- {a} no longer exists");
    }
    for a in &report.outputs_changed {
        println!("~ {a}: its outputs changed (its inputs did not)");
    }
    for (a, e) in &report.errors {
        println!("! {a} could not be read: {e}");
    }
    println!(
        "\nRefresh: {} read, {} drifted, {} gone, {} with new outputs, {} unreadable.",
        report.read,
        report.drifted.len(),
        report.gone.len(),
        report.outputs_changed.len(),
        report.errors.len()
    );
}

fn emit_events(view: &JsonView, report: &RefreshReport) {
    for (a, changes) in &report.drifted {
        let changes: Vec<serde_json::Value> = changes
            .iter()
            .map(|c| {
                serde_json::json!({
                    "path": c.path.to_string(),
                    "before": c.before.as_ref().map(crate::value::redact),
                    "after": c.after.as_ref().map(crate::value::redact),
                })
            })
            .collect();
        view.emit(&serde_json::json!({"event": "drift", "address": a, "changes": changes}));
    }
    for a in &report.gone {
        view.emit(&serde_json::json!({"event": "gone", "address": a}));
    }
    for a in &report.outputs_changed {
        view.emit(&serde_json::json!({"event": "outputs_changed", "address": a}));
    }
    for (a, e) in &report.errors {
        view.emit(&serde_json::json!({"event": "unreadable", "address": a, "error": e}));
    }
}

fn summary(command: &str, report: &RefreshReport, written: bool) -> serde_json::Value {
    serde_json::json!({
        "event": "summary", "command": command, "read": report.read,
        "drifted": report.drifted.len(), "gone": report.gone.len(),
        "outputs_changed": report.outputs_changed.len(), "unreadable": report.errors.len(),
        "written": written,
    })
}

/// `plan --refresh-only`: shows what changed outside spar and writes nothing.
pub async fn preview(
    ctx: &Context,
    define: fn(&mut Stack) -> crate::Result<()>,
    args: &RefreshArgs,
    detailed_exitcode: bool,
) -> anyhow::Result<u8> {
    let session = ctx.session(define).await?;
    let report = session.refresh_preview(&args.targets, args.parallelism).await?;
    if args.json {
        let view = JsonView::new();
        emit_events(&view, &report);
        view.emit(&summary("plan --refresh-only", &report, false));
    } else {
        print_text(&report);
        if !report.has_drift() && report.errors.is_empty() {
            println!("No changes outside spar: state matches what is live.");
        } else if report.has_drift() {
            println!("Run `apply --refresh-only` (or `refresh`) to accept this into state.");
        }
    }
    if !report.errors.is_empty() {
        return Ok(1);
    }
    Ok(if detailed_exitcode && report.has_drift() { 2 } else { 0 })
}

/// `refresh` and `apply --refresh-only`: read, show, confirm, write exactly what was shown.
pub async fn run(ctx: &Context, define: fn(&mut Stack) -> crate::Result<()>, args: &RefreshArgs) -> anyhow::Result<u8> {
    if args.json && !args.yes {
        return Err(crate::Error::Usage("refresh --json has no prompt to confirm at: pass --yes too".into()).into());
    }
    let session = ctx.session(define).await?;
    let run = session.refresh_begin(&args.targets, args.parallelism).await?;
    let report = run.report.clone();
    let view = args.json.then(JsonView::new);
    match &view {
        Some(v) => emit_events(v, &report),
        None => print_text(&report),
    }
    if !report.errors.is_empty() {
        run.discard().await?;
        let e = crate::Error::Usage(format!(
            "{} resource(s) could not be read back, so nothing was written; fix the cause above and refresh again",
            report.errors.len()
        ));
        if let Some(v) = &view {
            v.emit(&summary("refresh", &report, false));
        }
        return Err(e.into());
    }
    if !report.has_drift() {
        run.discard().await?;
        match &view {
            Some(v) => v.emit(&summary("refresh", &report, false)),
            None => println!("No changes outside spar: state matches what is live; nothing was written."),
        }
        return Ok(0);
    }
    let go = args.yes || {
        let asked = tokio::task::spawn_blocking(|| super::apply::confirm("Accept"));
        tokio::select! {
            biased;
            _ = tokio::signal::ctrl_c() => {
                run.discard().await?;
                eprintln!("\ninterrupted: nothing was written.");
                std::process::exit(130);
            }
            r = asked => r.unwrap_or(false),
        }
    };
    if !go {
        run.discard().await?;
        eprintln!("Nothing was written.");
        return Err(super::Exit(1).into());
    }
    let written = run.accept().await?;
    match &view {
        Some(v) => v.emit(&summary("refresh", &report, written)),
        None => println!("State updated with what is live."),
    }
    Ok(0)
}
