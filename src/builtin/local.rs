//! `local:File`: a file on this machine with given content and mode.
//!
//! Rules kept here: the id is the file's path; changing the path replaces the file; a
//! content or mode change rewrites it in place; `read` reports the file as it is on disk,
//! so an edit made outside spar shows as drift; the file is written atomically (temp file
//! and rename), so a crash never leaves half a file.

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt};
use std::path::Path;
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::model::{Handle, Input, Output, Resource};
use crate::provider::{Created, OpContext, ProviderError, ReadResult, ResourceProvider, Schema};

pub const KIND: &str = "local:File";

/// A file with the given content (text) and mode (default 0644).
#[derive(Debug, Clone, Serialize)]
pub struct File {
    path: Input<String>,
    content: Input<String>,
    mode: u32,
}

impl File {
    pub fn new(path: impl Into<Input<String>>, content: impl Into<Input<String>>) -> Self {
        File {
            path: path.into(),
            content: content.into(),
            mode: 0o644,
        }
    }

    /// Sets the permission bits (such as `0o600`).
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode & 0o7777;
        self
    }
}

impl Resource for File {
    fn kind(&self) -> String {
        KIND.into()
    }
    fn provider(&self) -> Arc<dyn ResourceProvider> {
        Arc::new(FileProvider::new())
    }
}

impl Handle<File> {
    /// The file's absolute path.
    pub fn path(&self) -> Output<String> {
        self.output("path")
    }
    /// The hex SHA-256 of the content.
    pub fn sha256(&self) -> Output<String> {
        self.output("sha256")
    }
}

#[derive(Deserialize)]
struct FileInputs {
    path: String,
    content: String,
    #[serde(default = "default_mode")]
    mode: u32,
}

fn default_mode() -> u32 {
    0o644
}

/// The provider of `local:File`.
pub struct FileProvider {
    schema: Schema,
}

impl FileProvider {
    pub fn new() -> Self {
        static SCHEMA: OnceLock<Schema> = OnceLock::new();
        FileProvider {
            schema: SCHEMA
                .get_or_init(|| Schema::new().replace_on(&["path"]).file_modes(&["mode"]))
                .clone(),
        }
    }
}

impl Default for FileProvider {
    fn default() -> Self {
        Self::new()
    }
}

fn parse(inputs: &Value) -> Result<FileInputs, ProviderError> {
    serde_json::from_value(inputs.clone()).map_err(|e| ProviderError::InvalidInput(format!("invalid inputs: {e}")))
}

fn outputs(path: &str, content: &str) -> Value {
    json!({
        "path": path,
        "sha256": hex::encode(Sha256::digest(content.as_bytes())),
        "size": content.len(),
    })
}

/// The temp file a write goes through: one fixed name per target, so a write cut short by
/// a crash is replaced (or removed by a delete) next time rather than left behind.
fn temp_path(path: &Path) -> std::path::PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.spar-tmp"))
}

fn write_atomically(path: &Path, content: &str, mode: u32) -> Result<(), ProviderError> {
    let err = |e: std::io::Error| ProviderError::msg(format!("writing {}: {e}", path.display()));
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let tmp = temp_path(path);
    // Created with its final mode (0600 stays 0600 throughout), set again past the umask.
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(err)?;
    f.write_all(content.as_bytes()).map_err(err)?;
    f.sync_all().map_err(err)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode)).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

#[async_trait]
impl ResourceProvider for FileProvider {
    fn declaration(&self, name: &str, inputs: &Value) -> Option<String> {
        declare(inputs).map(|e| e.statement(name))
    }

    fn kind(&self) -> &str {
        KIND
    }

    fn schema(&self) -> &Schema {
        &self.schema
    }

    async fn create(&self, _ctx: &OpContext, inputs: &Value) -> Result<Created, ProviderError> {
        let i = parse(inputs)?;
        write_atomically(Path::new(&i.path), &i.content, i.mode)?;
        Ok(Created {
            id: i.path.clone(),
            outputs: outputs(&i.path, &i.content),
        })
    }

    async fn read(
        &self,
        _ctx: &OpContext,
        id: &str,
        _inputs: &Value,
        _outputs: &Value,
    ) -> Result<Option<ReadResult>, ProviderError> {
        let path = Path::new(id);
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(ProviderError::msg(format!("reading {id}: {e}"))),
        };
        let mode = std::fs::metadata(path)
            .map_err(|e| ProviderError::msg(format!("reading {id}: {e}")))?
            .permissions()
            .mode()
            & 0o7777;
        let content = String::from_utf8_lossy(&bytes).into_owned();
        Ok(Some(ReadResult {
            id: id.to_string(),
            outputs: outputs(id, &content),
            inputs: json!({"path": id, "content": content, "mode": mode}),
        }))
    }

    async fn update(
        &self,
        _ctx: &OpContext,
        _id: &str,
        _old: &Value,
        new: &Value,
        _old_outputs: &Value,
    ) -> Result<Value, ProviderError> {
        let i = parse(new)?;
        write_atomically(Path::new(&i.path), &i.content, i.mode)?;
        Ok(outputs(&i.path, &i.content))
    }

    async fn delete(&self, _ctx: &OpContext, id: &str, _inputs: &Value, _outputs: &Value) -> Result<(), ProviderError> {
        let _ = std::fs::remove_file(temp_path(Path::new(id)));
        match std::fs::remove_file(id) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(ProviderError::msg(format!("deleting {id}: {e}"))),
        }
    }

    async fn find(&self, ctx: &OpContext, inputs: &Value) -> Result<Option<Created>, ProviderError> {
        let i = parse(inputs)?;
        match std::fs::read(&i.path) {
            Ok(b) if b == i.content.as_bytes() && !ctx.tracked_ids.contains(&i.path) => Ok(Some(Created {
                id: i.path.clone(),
                outputs: outputs(&i.path, &i.content),
            })),
            _ => Ok(None),
        }
    }
}

/// `local::File::new(path, content)` with its mode when not `0o644`.
fn declare(i: &Value) -> Option<crate::declaration::Expr> {
    use crate::declaration::{Expr, int_at, only_keys, str_at, string};
    if !only_keys(i, &["path", "content", "mode"]) {
        return None;
    }
    let mode = int_at(i, "mode").unwrap_or(0o644);
    Some(
        Expr::new(
            "local::File::new",
            &[string(str_at(i, "path")?), string(str_at(i, "content")?)],
        )
        .call_if(mode != 0o644, "mode", &[format!("0o{mode:o}")]),
    )
}
