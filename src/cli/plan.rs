//! `plan`: show what apply would change; save it with `--out`.

use std::path::Path;

use crate::cli::{Context, PlanArgs};
use crate::model::stack::Stack;
use crate::plan::diff::PlanOptions;
use crate::plan::{planfile, render};

pub(crate) fn plan_options(args: &PlanArgs, destroy: bool) -> PlanOptions {
    PlanOptions {
        destroy,
        targets: args.targets.clone(),
        excludes: args.excludes.clone(),
        for_saving: false,
        replace: args.replace.clone(),
    }
}

pub async fn run(
    ctx: &Context,
    define: fn(&mut Stack) -> crate::Result<()>,
    args: &PlanArgs,
    destroy: bool,
    json: bool,
    out: Option<&Path>,
    detailed_exitcode: bool,
) -> anyhow::Result<u8> {
    let session = if destroy {
        ctx.session(define).await?
    } else {
        ctx.checked_session(define, &args.waive, false).await?
    };
    let mut opts = plan_options(args, destroy);
    opts.for_saving = out.is_some();
    let plan = session.plan(&opts, args.refresh).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&render::json(&plan))?);
    } else {
        print!("{}", render::text(&plan, render::Style { color: ctx.color }));
    }
    if let Some(path) = out {
        planfile::save(path, &plan, session.store.key())?;
        if !json {
            println!(
                "\nSaved the plan to {}; run `apply {}` to apply exactly it.",
                path.display(),
                path.display()
            );
        }
    }
    Ok(if detailed_exitcode && plan.has_changes() { 2 } else { 0 })
}
