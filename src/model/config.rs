//! Typed stack configuration: `stacks/<crate>/config/<stack>.toml` read into a user's struct.
//!
//! Rules kept here: every error names the file, and the key when there is one, and says
//! what to do; a missing file lists the stacks that do have a file; the `[spar]` table holds
//! the engine's own settings for the stack and is never handed to the program.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// The table of a stack's config file that belongs to spar itself, not to the program.
pub const SPAR_TABLE: &str = "spar";

/// `[spar]`: settings of the engine for one stack.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SparSettings {
    /// Where state lives: `s3://bucket/prefix` (default: the local state directory).
    #[serde(default)]
    pub backend: Option<String>,
    /// Another AWS endpoint for every AWS call of this stack (`AWS_ENDPOINT_URL` wins).
    #[serde(default)]
    pub aws_endpoint_url: Option<String>,
    /// The AWS region for this stack (`AWS_REGION` wins).
    #[serde(default)]
    pub aws_region: Option<String>,
}

/// Why a stack's configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {} does not exist; create it or choose another --stack (stacks with a config file: {available})", file.display())]
    Missing { file: PathBuf, available: String },
    #[error("config file {}: {message}", file.display())]
    Unreadable { file: PathBuf, message: String },
    #[error("config file {}: key `{key}`: {message}", file.display())]
    Invalid {
        file: PathBuf,
        key: String,
        message: String,
    },
}

/// The parsed configuration file of one stack.
#[derive(Debug, Clone)]
pub struct StackConfig {
    file: PathBuf,
    /// `None` when the file does not exist: only an error once the program asks for it.
    table: Option<toml::Table>,
    available: String,
}

impl StackConfig {
    /// Reads `<dir>/<stack>.toml`. A missing file is an error only once the program asks
    /// for configuration.
    pub fn load(dir: &Path, stack: &str) -> Result<Self, ConfigError> {
        let file = dir.join(format!("{stack}.toml"));
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(StackConfig {
                    available: available_stacks(dir),
                    file,
                    table: None,
                });
            }
            Err(e) => {
                return Err(ConfigError::Unreadable {
                    file,
                    message: e.to_string(),
                });
            }
        };
        let table = text.parse::<toml::Table>().map_err(|e| ConfigError::Unreadable {
            file: file.clone(),
            message: e.message().to_string() + &line_of(&text, e.span()),
        })?;
        Ok(StackConfig {
            file,
            table: Some(table),
            available: String::new(),
        })
    }

    /// An empty configuration (for programs without a config file).
    pub fn empty(file: PathBuf) -> Self {
        StackConfig {
            file,
            table: Some(toml::Table::new()),
            available: String::new(),
        }
    }

    fn table(&self) -> Result<&toml::Table, ConfigError> {
        self.table.as_ref().ok_or_else(|| ConfigError::Missing {
            file: self.file.clone(),
            available: self.available.clone(),
        })
    }

    /// The file this configuration was read from.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The whole file as `T` (without the engine's own `[spar]` table).
    pub fn get<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        let mut t = self.table()?.clone();
        t.remove(SPAR_TABLE);
        self.parse(toml::Value::Table(t), "")
    }

    /// The engine's settings from the file's `[spar]` table (defaults when there is none,
    /// or no file at all).
    pub fn spar_settings(&self) -> Result<SparSettings, ConfigError> {
        match self.table.as_ref().and_then(|t| t.get(SPAR_TABLE)) {
            Some(v) => self.parse(v.clone(), SPAR_TABLE),
            None => Ok(SparSettings::default()),
        }
    }

    /// The table at `key` (dotted) as `T`.
    pub fn section<T: DeserializeOwned>(&self, key: &str) -> Result<T, ConfigError> {
        let mut cur = toml::Value::Table(self.table()?.clone());
        for part in key.split('.') {
            cur = match cur {
                toml::Value::Table(mut t) => t.remove(part).ok_or_else(|| ConfigError::Invalid {
                    file: self.file.clone(),
                    key: key.to_string(),
                    message: "missing; add it to the file".to_string(),
                })?,
                _ => {
                    return Err(ConfigError::Invalid {
                        file: self.file.clone(),
                        key: key.to_string(),
                        message: "expected a table".to_string(),
                    });
                }
            };
        }
        self.parse(cur, key)
    }

    fn parse<T: DeserializeOwned>(&self, v: toml::Value, prefix: &str) -> Result<T, ConfigError> {
        serde_path_to_error::deserialize(v).map_err(|e| {
            let inner = e.path().to_string();
            let mut message = e.inner().to_string();
            // A missing field is reported against its parent; name the field itself.
            let mut key = match (prefix, inner.as_str()) {
                ("", ".") => String::new(),
                ("", p) => p.to_string(),
                (pre, ".") => pre.to_string(),
                (pre, p) => format!("{pre}.{p}"),
            };
            if let Some(field) = message
                .strip_prefix("missing field `")
                .and_then(|r| r.split('`').next())
            {
                key = if key.is_empty() {
                    field.to_string()
                } else {
                    format!("{key}.{field}")
                };
                message = "missing; add it to the file".to_string();
            }
            if key.is_empty() {
                ConfigError::Unreadable {
                    file: self.file.clone(),
                    message,
                }
            } else {
                ConfigError::Invalid {
                    file: self.file.clone(),
                    key,
                    message,
                }
            }
        })
    }
}

fn line_of(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    match span {
        Some(r) => format!(" (line {})", text[..r.start.min(text.len())].lines().count().max(1)),
        None => String::new(),
    }
}

fn available_stacks(dir: &Path) -> String {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let p = e.path();
            if p.extension()? != "toml" {
                return None;
            }
            Some(p.file_stem()?.to_string_lossy().into_owned())
        })
        .collect();
    names.sort();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Cfg {
        cluster: String,
        nodes: Nodes,
    }
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Nodes {
        min: u32,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Strict {
        cluster: String,
    }

    #[test]
    fn the_spar_table_is_the_engines_and_never_the_programs() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("dev.toml"),
            "cluster = 'x'\n[spar]\nbackend = 's3://b/p'\naws_region = 'eu-west-1'\n",
        )
        .unwrap();
        let c = StackConfig::load(dir.path(), "dev").unwrap();
        assert!(c.get::<Strict>().is_ok(), "a strict program never sees [spar]");
        let s = c.spar_settings().unwrap();
        assert_eq!(s.backend.as_deref(), Some("s3://b/p"));
        assert_eq!(s.aws_region.as_deref(), Some("eu-west-1"));
        std::fs::write(
            dir.path().join("dev.toml"),
            "cluster = 'x'\n[spar]\nbakend = 's3://b'\n",
        )
        .unwrap();
        let err = StackConfig::load(dir.path(), "dev")
            .unwrap()
            .spar_settings()
            .unwrap_err()
            .to_string();
        assert!(err.contains("dev.toml") && err.contains("bakend"), "{err}");
    }

    #[test]
    fn errors_name_file_and_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("dev.toml"), "cluster = 'x'\n[nodes]\nmin = 'two'\n").unwrap();
        let err = StackConfig::load(dir.path(), "dev")
            .unwrap()
            .get::<Cfg>()
            .unwrap_err()
            .to_string();
        assert!(err.contains("dev.toml") && err.contains("key `nodes.min`"), "{err}");
        std::fs::write(dir.path().join("dev.toml"), "[nodes]\nmin = 2\n").unwrap();
        let err = StackConfig::load(dir.path(), "dev")
            .unwrap()
            .get::<Cfg>()
            .unwrap_err()
            .to_string();
        assert!(err.contains("key `cluster`: missing"), "{err}");
        let err = StackConfig::load(dir.path(), "prod")
            .unwrap()
            .get::<Cfg>()
            .unwrap_err()
            .to_string();
        assert!(err.contains("prod.toml does not exist") && err.contains("dev"), "{err}");
    }
}
