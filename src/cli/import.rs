//! `import KIND ADDRESS ID`: adopt an existing object.

use crate::cli::Context;
use crate::model::stack::Stack;

pub async fn run(
    ctx: &Context,
    define: fn(&mut Stack) -> crate::Result<()>,
    kind: &str,
    address: &str,
    id: &str,
) -> anyhow::Result<u8> {
    let session = ctx.session(define).await?;
    let address = address.parse()?;
    let r = session.import(kind, &address, id).await?;
    println!(
        "Imported {} ({kind}, id {}). Run `plan` to see how it differs from the program.",
        r.address, r.id
    );
    Ok(0)
}
