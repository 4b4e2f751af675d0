//! Encryption of secret values in state, with one key per stack.
//!
//! The key comes from `SPAR_SECRET_KEY` (32 bytes, base64) or from a key file that is
//! created on first use with mode 0600 (and lives under the git-ignored `state/`).
//! Values are sealed with XChaCha20-Poly1305 (RustCrypto `chacha20poly1305`) under a
//! random 192-bit nonce, so sealing the same value twice gives different ciphertexts.
//!
//! Rules kept here: only [`SecretKey::seal`] and [`SecretKey::open`] see the key; a wrong
//! key is reported as such, never as corrupt state.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde_json::{Map, Value};

use crate::value::{self, MARKER};

/// Where the key of a stack comes from.
pub const KEY_ENV: &str = "SPAR_SECRET_KEY";

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("{KEY_ENV} is set but is not 32 bytes of base64; generate one with `head -c32 /dev/urandom | base64`")]
    BadEnvKey,
    #[error("secret key file {}: {message}", path.display())]
    KeyFile { path: PathBuf, message: String },
    #[error(
        "cannot decrypt a secret in state with this stack's key ({origin}); use the key the state was written with"
    )]
    WrongKey { origin: String },
    #[error("a secret in state is malformed: {0}")]
    Malformed(String),
}

/// A stack's secret key.
#[derive(Clone)]
pub struct SecretKey {
    cipher: XChaCha20Poly1305,
    origin: String,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey({})", self.origin)
    }
}

impl SecretKey {
    /// The key from `SPAR_SECRET_KEY`, else from `file` (created on first use).
    pub fn load_or_create(file: &Path) -> Result<Self, SecretError> {
        if let Ok(text) = std::env::var(KEY_ENV) {
            let bytes = B64.decode(text.trim()).map_err(|_| SecretError::BadEnvKey)?;
            return Self::from_bytes(&bytes, KEY_ENV.into()).ok_or(SecretError::BadEnvKey);
        }
        let origin = file.display().to_string();
        let kf = |message: String| SecretError::KeyFile {
            path: file.to_path_buf(),
            message,
        };
        match std::fs::read_to_string(file) {
            Ok(text) => {
                let bytes = B64
                    .decode(text.trim())
                    .map_err(|_| kf("not base64; restore the stack's key".into()))?;
                Self::from_bytes(&bytes, origin).ok_or_else(|| kf("not a 32-byte key".into()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = XChaCha20Poly1305::generate_key(&mut OsRng);
                if let Some(dir) = file.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| kf(e.to_string()))?;
                }
                crate::state::local::write_new_private(file, format!("{}\n", B64.encode(key)).as_bytes())
                    .map_err(|e| kf(e.to_string()))?;
                Ok(SecretKey {
                    cipher: XChaCha20Poly1305::new(&key),
                    origin,
                })
            }
            Err(e) => Err(kf(e.to_string())),
        }
    }

    /// A key from raw bytes (tests, benchmarks).
    pub fn from_bytes(bytes: &[u8], origin: String) -> Option<Self> {
        (bytes.len() == 32).then(|| SecretKey {
            cipher: XChaCha20Poly1305::new_from_slice(bytes).expect("32-byte key"),
            origin,
        })
    }

    /// Replaces every secret marker in `v` by its encrypted form.
    pub fn seal(&self, v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                if value::marker(v) == Some("secret") {
                    let plain = serde_json::to_vec(m.get("value").unwrap_or(&Value::Null)).expect("JSON serializes");
                    let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
                    let ct = self
                        .cipher
                        .encrypt(&nonce, plain.as_slice())
                        .expect("encryption cannot fail");
                    let mut sealed = nonce.to_vec();
                    sealed.extend_from_slice(&ct);
                    let mut out = Map::new();
                    out.insert(MARKER.into(), "encrypted".into());
                    out.insert("ciphertext".into(), B64.encode(sealed).into());
                    return Value::Object(out);
                }
                Value::Object(m.iter().map(|(k, x)| (k.clone(), self.seal(x))).collect())
            }
            Value::Array(a) => Value::Array(a.iter().map(|x| self.seal(x)).collect()),
            other => other.clone(),
        }
    }

    /// Replaces every encrypted marker in `v` by the secret it holds.
    pub fn open(&self, v: &Value) -> Result<Value, SecretError> {
        match v {
            Value::Object(m) => {
                if value::marker(v) == Some("encrypted") {
                    let text = m
                        .get("ciphertext")
                        .and_then(Value::as_str)
                        .ok_or_else(|| SecretError::Malformed("no ciphertext".into()))?;
                    let sealed = B64.decode(text).map_err(|e| SecretError::Malformed(e.to_string()))?;
                    if sealed.len() < 24 {
                        return Err(SecretError::Malformed("ciphertext too short".into()));
                    }
                    let (nonce, ct) = sealed.split_at(24);
                    let plain =
                        self.cipher
                            .decrypt(XNonce::from_slice(nonce), ct)
                            .map_err(|_| SecretError::WrongKey {
                                origin: self.origin.clone(),
                            })?;
                    let inner: Value =
                        serde_json::from_slice(&plain).map_err(|e| SecretError::Malformed(e.to_string()))?;
                    return Ok(value::secret(inner));
                }
                if !value::contains_secret(v) {
                    return Ok(v.clone());
                }
                let mut out = Map::with_capacity(m.len());
                for (k, x) in m {
                    out.insert(k.clone(), self.open(x)?);
                }
                Ok(Value::Object(out))
            }
            Value::Array(a) => a
                .iter()
                .map(|x| self.open(x))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            other => Ok(other.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn seals_and_opens() {
        let k = SecretKey::from_bytes(&[7; 32], "test".into()).unwrap();
        let v = json!({"a": value::secret(json!("hunter2")), "b": 1});
        let sealed = k.seal(&v);
        assert!(!sealed.to_string().contains("hunter2"));
        assert_eq!(k.open(&sealed).unwrap(), v);
        let other = SecretKey::from_bytes(&[8; 32], "other".into()).unwrap();
        assert!(matches!(other.open(&sealed), Err(SecretError::WrongKey { .. })));
    }
}
