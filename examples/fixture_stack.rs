//! A small stack program for the CLI tests (`tests/bad_input.rs`, `tests/cli.rs`).
//!
//! It manages a few `local:File`s under the directory its config names. `SPAR_FIXTURE`
//! selects a defect to declare: `cycle`, `duplicate` or `dangling`; unset, the program is
//! valid. `SPAR_FIXTURE_EXTRA=1` adds one more file, to change the program.
//! `SPAR_FIXTURE_SLOW=MILLIS` adds two resources, `slow/wait-0` and `slow/wait-1`, of a
//! kind `fixture:Wait` (the fake provider of `spar::testing`, its objects in this process's
//! memory only) whose every call takes that long: steps slow enough to be seen in flight.
//! Only for one `apply` on a new stack: a later run has no memory of those objects.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use spar::prelude::*;
use spar::testing::{FakeProvider, FakeResource, FakeWorld};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    dir: String,
    copies: u32,
}

fn main() -> std::process::ExitCode {
    spar::cli::run("fixture", define)
}

fn define(stack: &mut Stack) -> spar::Result<()> {
    let cfg: Config = stack.config()?;
    let fixture = std::env::var("SPAR_FIXTURE").unwrap_or_default();
    let file = |name: &str| local::File::new(format!("{}/{name}", cfg.dir), format!("{name}\n"));
    match fixture.as_str() {
        "cycle" => {
            stack.add_with("a", file("a"), ResourceOptions::new().depends_on(&"c".parse()?))?;
            stack.add_with("b", file("b"), ResourceOptions::new().depends_on(&"a".parse()?))?;
            stack.add_with("c", file("c"), ResourceOptions::new().depends_on(&"b".parse()?))?;
        }
        "duplicate" => {
            stack.add("a", file("a"))?;
            stack.add("a", file("a2"))?;
        }
        "dangling" => {
            stack.add_with("a", file("a"), ResourceOptions::new().depends_on(&"ghost".parse()?))?;
        }
        _ => {
            let pw = stack.add("token", random::Password::new(16))?;
            let a = stack.add("a", file("a"))?;
            stack.add(
                "secret",
                local::File::new(format!("{}/secret", cfg.dir), pw.result()).mode(0o600),
            )?;
            stack.component("copies", |s| {
                for i in 0..cfg.copies {
                    let content = a.sha256().map(move |h| format!("copy {i} of a ({h})\n"));
                    s.add(
                        &format!("copy-{i}"),
                        local::File::new(format!("{}/copy-{i}", cfg.dir), content),
                    )?;
                }
                Ok(())
            })?;
            if std::env::var("SPAR_FIXTURE_EXTRA").is_ok() {
                stack.add("extra", file("extra"))?;
            }
            if let Ok(millis) = std::env::var("SPAR_FIXTURE_SLOW") {
                let millis: u64 = millis.parse().expect("SPAR_FIXTURE_SLOW is a number of milliseconds");
                let wait = Arc::new(
                    FakeProvider::new("fixture:Wait", FakeWorld::new()).latency(Duration::from_millis(millis)),
                );
                stack.component("slow", |s| {
                    for i in 0..2 {
                        s.add(
                            &format!("wait-{i}"),
                            FakeResource::new(&wait).set("name", format!("wait-{i}")),
                        )?;
                    }
                    Ok(())
                })?;
            }
            stack.export("a_path", a.path())?;
            stack.export("token", pw.result())?;
        }
    }
    Ok(())
}
