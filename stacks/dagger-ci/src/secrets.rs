//! Secret values named in the configuration: read from the environment or a file, or
//! generated once and kept in state (sandboxes).
//!
//! Rules kept here: a secret is never read from the config file itself; a secret that is
//! missing does not stop a plan (which shows it as a sensitive value) but stops apply
//! before anything changes, through a check that names the config key and what to set.

use spar::kubernetes::Object;
use spar::kubernetes::object::SecretManifest;
use spar::prelude::*;

use crate::config::SecretSource;

/// A secret ready to be placed in a Kubernetes Secret.
#[derive(Clone)]
pub enum SecretValue {
    Known(Secret<String>),
    Generated(Output<String>),
}

/// Resolves the secret at config `key` (for messages); `name` is the resource name a
/// generated value gets.
pub fn resolve(s: &mut Stack, key: &str, source: &SecretSource, name: &str) -> spar::Result<SecretValue> {
    let check = format!("secret-{}", key.replace(['.', '_'], "-"));
    let description = format!("the secret `{key}` is available");
    let file = s.name().to_string();
    let (value, failure) = match source {
        SecretSource::Env(var) => match std::env::var(var) {
            Ok(v) if !v.is_empty() => (Some(v), None),
            _ => (
                None,
                Some(format!(
                    "`{key}` in config/{file}.toml reads the environment variable {var}, which is not set; export it before apply"
                )),
            ),
        },
        SecretSource::File(path) => match std::fs::read_to_string(path) {
            Ok(v) => (Some(v), None),
            Err(e) => (
                None,
                Some(format!(
                    "`{key}` in config/{file}.toml reads the file {path}: {e}; create it before apply"
                )),
            ),
        },
        SecretSource::Random(len) => {
            let pw = s.add(name, random::Password::new(*len).special(false))?;
            return Ok(SecretValue::Generated(pw.result()));
        }
    };
    s.require_for_apply(&check, &description, failure.into_iter().collect());
    Ok(SecretValue::Known(Secret::new(value.unwrap_or_default())))
}

/// Adds `value` to a Secret object under `key`.
pub fn put(obj: Object<SecretManifest>, key: &str, value: &SecretValue) -> Object<SecretManifest> {
    match value {
        SecretValue::Known(v) => obj.data(key, v),
        SecretValue::Generated(o) => obj.data_from(key, o),
    }
}
