//! `refresh`: read live objects into state and report drift.

use crate::cli::Context;
use crate::model::stack::Stack;
use crate::plan::render;

pub async fn run(ctx: &Context, define: fn(&mut Stack) -> crate::Result<()>, parallelism: usize) -> anyhow::Result<u8> {
    let session = ctx.session(define).await?;
    let report = session.refresh(parallelism).await?;
    for (a, changes) in &report.drifted {
        println!("~ {a} drifted:");
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
        println!("- {a} no longer exists; removed from state");
    }
    for (a, e) in &report.errors {
        println!("! {a} could not be read: {e}");
    }
    println!(
        "\nRefresh: {} read, {} drifted, {} gone, {} unreadable.",
        report.read,
        report.drifted.len(),
        report.gone.len(),
        report.errors.len()
    );
    Ok(if report.errors.is_empty() { 0 } else { 1 })
}
