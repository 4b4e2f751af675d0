//! `refresh`: read live objects into state and report drift.

use crate::cli::Context;
use crate::model::stack::Stack;
use crate::plan::render;

pub async fn run(ctx: &Context, define: fn(&mut Stack) -> crate::Result<()>, parallelism: usize) -> anyhow::Result<u8> {
    let session = ctx.session(define).await?;
    let report = session.refresh(parallelism).await?;
    for (a, changes) in &report.drifted {
        println!("~ {a} drifted:");
        for c in changes {
            let before = c
                .before
                .as_ref()
                .map(render::show_value)
                .unwrap_or_else(|| "(absent)".into());
            let after = c
                .after
                .as_ref()
                .map(render::show_value)
                .unwrap_or_else(|| "(absent)".into());
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
