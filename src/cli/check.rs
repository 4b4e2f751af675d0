//! `check`, and the commands a stack program adds of its own (`cost`, ...).

use crate::cli::{Context, Exit};
use crate::model::checks;
use crate::model::stack::Stack;

/// A check's verdict as `check` reports it.
fn status(c: &checks::Check, waived: &[String]) -> &'static str {
    if c.passed() {
        "passed"
    } else if waived.contains(&c.name) {
        "waived"
    } else if c.apply_only {
        "needed"
    } else {
        "failed"
    }
}

pub fn run(
    ctx: &Context,
    define: fn(&mut Stack) -> crate::Result<()>,
    waived: &[String],
    json: bool,
) -> anyhow::Result<u8> {
    let program = ctx.program(define)?;
    if json {
        let mut items: Vec<serde_json::Value> = program
            .checks
            .iter()
            .map(|c| {
                let mut v = serde_json::to_value(c).expect("a check serializes");
                v["status"] = status(c, waived).into();
                v
            })
            .collect();
        // Checks over looked-up objects run when planning (they need the cloud).
        items.extend(
            program
                .lookup_checks
                .iter()
                .map(|c| serde_json::json!({"name": c.name, "description": c.description, "status": "at-plan"})),
        );
        println!("{}", serde_json::json!({ "checks": items }));
        return match checks::enforce(&program.checks, waived, true) {
            Ok(()) => Ok(0),
            Err(checks::CheckError::Failed(_)) => Err(Exit(1).into()),
            Err(e) => Err(e.into()),
        };
    }
    if program.checks.is_empty() && program.lookup_checks.is_empty() {
        println!("This stack declares no checks.");
        return Ok(0);
    }
    let (mut passed, mut waived_n, mut failed) = (0, 0, 0);
    for c in &program.checks {
        let mark = if c.passed() {
            passed += 1;
            "ok    "
        } else if waived.contains(&c.name) {
            waived_n += 1;
            "WAIVED"
        } else {
            failed += 1;
            if c.apply_only { "NEEDED" } else { "FAILED" }
        };
        println!("{mark} {:<28} {}", c.name, c.description);
        for f in &c.failures {
            println!("         - {f}");
        }
        for e in &c.evidence {
            println!("           {e}");
        }
    }
    for c in &program.lookup_checks {
        println!("plan   {:<28} {}", c.name, c.description);
        println!("           runs when planning, on the objects the lookups read");
    }
    println!("\n{passed} passed, {failed} failed, {waived_n} waived.");
    match checks::enforce(&program.checks, waived, true) {
        Ok(()) => Ok(0),
        Err(checks::CheckError::Failed(_)) => Err(Exit(1).into()),
        Err(e) => Err(e.into()),
    }
}

pub fn program_command(
    ctx: &Context,
    define: fn(&mut Stack) -> crate::Result<()>,
    args: &[String],
) -> anyhow::Result<u8> {
    let name = args.first().map(String::as_str).unwrap_or_default();
    let program = ctx.program(define)?;
    let known: Vec<String> = program
        .commands
        .iter()
        .map(|c| format!("`{}` ({})", c.name, c.about))
        .collect();
    let Some(cmd) = program.commands.into_iter().find(|c| c.name == name) else {
        let own = if known.is_empty() {
            "this stack adds none".to_string()
        } else {
            format!("this stack adds {}", known.join(", "))
        };
        anyhow::bail!("unknown command `{name}`: see `--help` for spar's commands; {own}");
    };
    if args.len() > 1 {
        anyhow::bail!("`{name}` takes no arguments (got `{}`)", args[1..].join(" "));
    }
    match (cmd.run)() {
        Ok(text) => {
            print!("{text}");
            if !text.ends_with('\n') {
                println!();
            }
            Ok(0)
        }
        Err(e) => anyhow::bail!("{name}: {e}"),
    }
}
