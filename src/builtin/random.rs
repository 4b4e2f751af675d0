//! `random:Password`: a random password, generated once and kept in state as a secret.
//!
//! Rules kept here: the value is generated from the OS's CSPRNG at create and never again
//! unless an input changes (every input forces a new password, `keepers` included);
//! the `result` output is secret, so it is encrypted in state and redacted everywhere.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use rand::Rng as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::model::{Handle, Output, Resource};
use crate::provider::{Created, OpContext, ProviderError, ReadResult, ResourceProvider, Schema};

pub const KIND: &str = "random:Password";

const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const SPECIAL: &[u8] = b"!#%&*()-_=+[]{}<>:?";

/// A random password of `length` characters.
#[derive(Debug, Clone, Serialize)]
pub struct Password {
    length: u32,
    special: bool,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    keepers: BTreeMap<String, String>,
}

impl Password {
    pub fn new(length: u32) -> Self {
        Password {
            length,
            special: true,
            keepers: BTreeMap::new(),
        }
    }

    /// Whether to use punctuation as well as letters and digits (default true).
    pub fn special(mut self, yes: bool) -> Self {
        self.special = yes;
        self
    }

    /// A value whose change regenerates the password.
    pub fn keeper(mut self, key: &str, value: &str) -> Self {
        self.keepers.insert(key.into(), value.into());
        self
    }
}

impl Resource for Password {
    fn kind(&self) -> String {
        KIND.into()
    }
    fn provider(&self) -> Arc<dyn ResourceProvider> {
        Arc::new(PasswordProvider::new())
    }
}

impl Handle<Password> {
    /// The password (secret: encrypted in state, redacted when shown).
    pub fn result(&self) -> Output<String> {
        self.output("result")
    }
}

#[derive(Deserialize)]
struct PasswordInputs {
    length: u32,
    #[serde(default = "yes")]
    special: bool,
}

fn yes() -> bool {
    true
}

/// The provider of `random:Password`.
pub struct PasswordProvider {
    schema: Schema,
}

impl PasswordProvider {
    pub fn new() -> Self {
        static SCHEMA: OnceLock<Schema> = OnceLock::new();
        PasswordProvider {
            schema: SCHEMA
                .get_or_init(|| {
                    Schema::new()
                        .replace_on(&["length", "special", "keepers"])
                        .secret_outputs(&["result"])
                })
                .clone(),
        }
    }
}

impl Default for PasswordProvider {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl ResourceProvider for PasswordProvider {
    fn kind(&self) -> &str {
        KIND
    }

    fn schema(&self) -> &Schema {
        &self.schema
    }

    async fn create(&self, _ctx: &OpContext, inputs: &Value) -> Result<Created, ProviderError> {
        let i: PasswordInputs = serde_json::from_value(inputs.clone())
            .map_err(|e| ProviderError::InvalidInput(format!("invalid inputs: {e}")))?;
        if !(4..=4096).contains(&i.length) {
            return Err(ProviderError::msg(format!(
                "length {} is out of range; use 4 to 4096",
                i.length
            )));
        }
        let alphabet: Vec<u8> = if i.special {
            [LETTERS, SPECIAL].concat()
        } else {
            LETTERS.to_vec()
        };
        let mut rng = rand::rng();
        let result: String = (0..i.length)
            .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
            .collect();
        Ok(Created {
            id: uuid::Uuid::new_v4().to_string(),
            outputs: json!({"result": result, "length": i.length}),
        })
    }

    async fn read(
        &self,
        _ctx: &OpContext,
        id: &str,
        inputs: &Value,
        outputs: &Value,
    ) -> Result<Option<ReadResult>, ProviderError> {
        // A password lives only in state: what state holds is what exists.
        Ok(Some(ReadResult {
            id: id.to_string(),
            inputs: inputs.clone(),
            outputs: outputs.clone(),
        }))
    }

    async fn update(
        &self,
        _ctx: &OpContext,
        _id: &str,
        _old: &Value,
        _new: &Value,
        old_outputs: &Value,
    ) -> Result<Value, ProviderError> {
        Ok(old_outputs.clone())
    }

    async fn delete(
        &self,
        _ctx: &OpContext,
        _id: &str,
        _inputs: &Value,
        _outputs: &Value,
    ) -> Result<(), ProviderError> {
        Ok(())
    }
}
