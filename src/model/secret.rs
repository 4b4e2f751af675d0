//! `Secret<T>`: a value that is encrypted in state and never printed.
//!
//! Rules kept here: `Debug` and `Display` never show the value; serializing wraps it in
//! the secret marker (see [`crate::value`]), which plans redact and state encrypts;
//! deserializing accepts the marker or a plain value, so a secret can come from a config
//! file or an environment variable.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::value;

/// A secret value of type `T`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    /// The plain value. Name the call site's reason in a comment: this is the one way out.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> std::fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl<T> std::fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl<T: Serialize> Serialize for Secret<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let inner = serde_json::to_value(&self.0).map_err(serde::ser::Error::custom)?;
        value::secret(inner).serialize(s)
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Secret<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        let plain = value::strip_secrets(&v);
        serde_json::from_value(plain)
            .map(Secret)
            .map_err(serde::de::Error::custom)
    }
}
