//! `import KIND ADDRESS ID` and `import --file imports.toml`: adopt existing objects.

use std::path::PathBuf;

use crate::cli::Context;
use crate::model::stack::Stack;
use crate::ops::import::{Declaration, ImportEntry, declarations, parse_imports};

/// What to import.
pub enum What {
    One { kind: String, address: String, id: String },
    File(PathBuf),
}

pub async fn run(
    ctx: &Context,
    define: fn(&mut Stack) -> crate::Result<()>,
    what: What,
    parallelism: usize,
) -> anyhow::Result<u8> {
    let entries = match what {
        What::One { kind, address, id } => vec![ImportEntry { kind, address, id }],
        What::File(path) => {
            let name = path.display().to_string();
            let text = std::fs::read_to_string(&path)
                .map_err(|e| crate::Error::Usage(format!("cannot read imports file `{name}`: {e}")))?;
            parse_imports(&text, &name)?
        }
    };
    let session = ctx.session(define).await?;
    let adopted = session.import_many(&entries, parallelism).await?;
    for r in &adopted {
        let guard = if r.options.imported {
            "; protected until the program declares it"
        } else {
            ""
        };
        println!("Imported {} ({}, id {}){guard}.", r.address, r.kind, r.id);
    }
    println!(
        "\n{} object(s) imported. Run `plan` to see how they differ from the program.",
        adopted.len()
    );
    print!("{}", declarations_text(&declarations(&session.registry, &adopted)));
    Ok(0)
}

/// The declarations to paste into the program, with the `use` lines they need.
fn declarations_text(decls: &[Declaration]) -> String {
    let mut out = String::from("\nTo declare them in the program (from their live inputs):\n\n");
    for line in crate::declaration::PRELUDE.lines() {
        out.push_str(&format!("    {line}\n"));
    }
    out.push('\n');
    if decls
        .iter()
        .any(|d| d.code.as_deref().is_some_and(|c| c.contains("&provider")))
    {
        out.push_str("    // `provider`: the handle of the kubernetes:Provider of the cluster these objects are in\n");
    }
    for d in decls {
        if !d.component.is_empty() {
            out.push_str(&format!(
                "    // inside stack.component({:?}, |stack| {{ ... }}):\n",
                d.component
            ));
        }
        match &d.code {
            Some(code) => {
                for line in code.lines() {
                    out.push_str(&format!("    {line}\n"));
                }
            }
            None => out.push_str(&format!(
                "    // `{}`: its kind cannot write a declaration for these inputs; see `state show {}`\n",
                d.address, d.address
            )),
        }
    }
    out
}
