//! `import KIND ADDRESS ID` and `import --file imports.toml`: adopt existing objects.

use std::path::PathBuf;

use crate::cli::Context;
use crate::model::stack::Stack;
use crate::ops::import::{ImportEntry, parse_imports};

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
    Ok(0)
}
