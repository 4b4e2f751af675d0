//! `kubeconfig`: write a kubeconfig for the stack's cluster, from the outputs of its
//! `kubernetes:Provider` in state (no token is written: EKS gets an `aws eks get-token` exec).

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::cli::Context;
use crate::kubernetes::Connection;
use crate::kubernetes::kubeconfig::render;
use crate::model::stack::Stack;

pub async fn run(
    ctx: &Context,
    define: fn(&mut Stack) -> crate::Result<()>,
    provider: Option<&str>,
    out: Option<&Path>,
) -> anyhow::Result<u8> {
    let session = ctx.session(define).await?;
    let providers: Vec<_> = session
        .state_list()
        .await?
        .into_iter()
        .filter(|r| r.kind == crate::kubernetes::provider::KIND)
        .collect();
    let chosen = match provider {
        Some(a) => providers
            .iter()
            .find(|r| r.address.as_str() == a)
            .ok_or_else(|| anyhow::anyhow!("no kubernetes:Provider at `{a}` in state"))?,
        None => match providers.as_slice() {
            [] => anyhow::bail!("the stack has no kubernetes:Provider in state; apply it first"),
            [one] => one,
            many => anyhow::bail!(
                "the stack has several Kubernetes providers ({}); choose one with --provider",
                many.iter().map(|r| r.address.as_str()).collect::<Vec<_>>().join(", ")
            ),
        },
    };
    let conn: Connection = serde_json::from_value(crate::value::strip_secrets(&chosen.outputs["connection"]))
        .map_err(|e| anyhow::anyhow!("`{}` has no usable connection in state: {e}", chosen.address))?;
    let name = conn
        .cluster_name
        .clone()
        .unwrap_or_else(|| format!("{}-{}", ctx.program, ctx.stack));
    let doc = render(&conn, &name)?;
    let path: PathBuf = out
        .map(Path::to_path_buf)
        .unwrap_or_else(|| ctx.state_dir.with_extension("kubeconfig"));
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)?;
    }
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)?;
        // `mode` applies only to a new file: an existing one (say 0644) is made 0600 too,
        // before anything is written to it.
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        f.write_all(serde_json::to_string_pretty(&doc)?.as_bytes())?;
        f.write_all(b"\n")
    };
    write().with_context(|| format!("writing {}", path.display()))?;
    println!(
        "Wrote {} (context {name}). Use it with: export KUBECONFIG={}",
        path.display(),
        path.display()
    );
    Ok(0)
}
