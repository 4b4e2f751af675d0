//! `state list|show|rm|mv|unlock|history|unprotect|pull|push`.

use crate::cli::{Context, StateCommand};
use crate::model::stack::Stack;

pub async fn run(ctx: &Context, define: fn(&mut Stack) -> crate::Result<()>, cmd: StateCommand) -> anyhow::Result<u8> {
    let session = ctx.session(define).await?;
    match cmd {
        StateCommand::List => {
            for r in session.state_list().await? {
                println!("{}\t{}\t{}", r.address, r.kind, r.id);
            }
        }
        StateCommand::Show { address } => {
            let v = session.state_show(&address.parse()?).await?;
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        StateCommand::Rm { addresses } => {
            for a in session.state_rm(&addresses).await? {
                println!("Forgot {a} (the object itself was left alone).");
            }
        }
        StateCommand::Mv { from, to } => {
            session.state_mv(&from.parse()?, &to.parse()?).await?;
            println!("Moved {from} to {to}.");
        }
        StateCommand::Unlock { force } => match session.state_unlock(force).await? {
            Some(l) => println!(
                "Broke the lock held by {} (pid {}, `{}` since {}).",
                l.holder, l.pid, l.operation, l.created
            ),
            None => println!("The stack was not locked."),
        },
        StateCommand::History => {
            for h in session.state_history().await? {
                println!("{}\tserial {}\t{} bytes", h.name, h.serial, h.bytes);
            }
        }
        StateCommand::Unprotect { address } => {
            if session.state_unprotect(&address.parse()?).await? {
                println!(
                    "{address} is no longer protected in state (its program's `protect` option applies again at the next apply)."
                );
            } else {
                println!("{address} was not protected; nothing changed.");
            }
        }
        StateCommand::Pull => {
            use std::io::Write as _;
            let bytes = session.state_pull().await?;
            let mut out = std::io::stdout().lock();
            out.write_all(&bytes)?;
            out.flush()?;
        }
        StateCommand::Push { file, force } => {
            let (from, to) = session.state_push(&file, force).await?;
            println!("Pushed {}: the state is now serial {to} (was {from}).", file.display());
        }
    }
    Ok(0)
}
