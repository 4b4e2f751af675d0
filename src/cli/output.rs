//! `output [NAME]`: print stack outputs (secrets only with `--show-secrets`).

use crate::cli::Context;
use crate::model::stack::Stack;
use crate::plan::render;
use crate::value;

pub async fn run(
    ctx: &Context,
    define: fn(&mut Stack) -> crate::Result<()>,
    name: Option<&str>,
    json: bool,
    show_secrets: bool,
) -> anyhow::Result<u8> {
    let session = ctx.session(define).await?;
    let outputs = session.outputs().await?;
    let shown = |v: &serde_json::Value| {
        if show_secrets {
            value::strip_secrets(v)
        } else {
            value::redact(v)
        }
    };
    match name {
        Some(n) => {
            let v = outputs
                .get(n)
                .ok_or_else(|| anyhow::anyhow!("the stack has no output `{n}` (yet); `output` lists them"))?;
            match shown(v) {
                serde_json::Value::String(s) if !json => println!("{s}"),
                other => println!("{}", serde_json::to_string_pretty(&other)?),
            }
        }
        None if json => {
            let m: serde_json::Map<String, serde_json::Value> =
                outputs.iter().map(|(k, v)| (k.clone(), shown(v))).collect();
            println!("{}", serde_json::to_string_pretty(&m)?);
        }
        None => {
            for (k, v) in &outputs {
                let text = if show_secrets {
                    value::strip_secrets(v).to_string()
                } else {
                    render::show_value(v)
                };
                println!("{k} = {text}");
            }
        }
    }
    Ok(0)
}
