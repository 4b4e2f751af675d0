//! JSON values as the engine sees them, and the markers spar embeds in them.
//!
//! Resource inputs and outputs travel through the engine as `serde_json::Value`. A few
//! values mean something special; [`marker`] names them:
//! - a string `"\u{0}spar:ref:ADDRESS#PATH"` ([`REF_PREFIX`]): a reference to the output at
//!   `PATH` of `ADDRESS`, resolved at plan time when known and at apply time otherwise. It
//!   is the most common marker by far (every handle output set as an input), so it is one
//!   string rather than an object: a `serde_json` object costs a 628-byte tree leaf however
//!   few keys it has, which made references half of a declared graph's memory;
//! - `{"$spar":"output","expr":E}`: any other expression over outputs (`E` is an
//!   [`OutputExpr`]: transforms, lists, known values);
//! - `{"$spar":"secret","value":V}`: a secret value, redacted whenever shown;
//! - `{"$spar":"encrypted","ciphertext":C}`: the same secret as stored in state;
//! - `{"$spar":"unknown"}`: a value that exists only after apply (plans only).
//!
//! Rules kept here: markers are only built by the constructors below; providers never see
//! a marker (the engine strips secrets and refuses unknowns before a provider call); a
//! value computed from a secret is itself secret.
//!
//! Module map: [`path`] (value paths), [`secret`] (unsealing, redaction, marking),
//! [`diff`] (changed properties), [`output`] (output expressions and their resolution).

use std::fmt::Write as _;

use serde_json::{Map, Value};

use crate::address::Address;

pub(crate) const MARKER: &str = "$spar";

/// The start of a plain output reference's string form (see the module doc). U+0000 opens
/// it because names, ids and documents that programs and cloud APIs produce do not start
/// with a NUL character followed by these words, so such text is not taken for one.
pub const REF_PREFIX: &str = "\u{0}spar:ref:";

mod diff;
mod output;
mod path;
mod secret;
#[cfg(test)]
mod tests;

pub use diff::*;
pub use output::*;
pub use path::*;
pub use secret::*;

/// Returns the marker kind of a value (`"secret"`, `"output"`, ...), if it is one.
pub fn marker(v: &Value) -> Option<&str> {
    match v {
        Value::Object(m) => m.get(MARKER).and_then(Value::as_str),
        Value::String(s) if s.starts_with(REF_PREFIX) => Some("output"),
        _ => None,
    }
}

/// Wraps a value as a secret (a no-op on a value that already is one).
pub fn secret(v: Value) -> Value {
    if marker(&v) == Some("secret") {
        return v;
    }
    let mut m = Map::new();
    m.insert(MARKER.into(), "secret".into());
    m.insert("value".into(), v);
    Value::Object(m)
}

/// The marker for a value known only after apply.
pub fn unknown() -> Value {
    let mut m = Map::new();
    m.insert(MARKER.into(), "unknown".into());
    Value::Object(m)
}

pub fn is_unknown(v: &Value) -> bool {
    marker(v) == Some("unknown")
}

/// True when any part of `v` is unknown.
pub fn contains_unknown(v: &Value) -> bool {
    any_marker(v, &|k| k == "unknown" || k == "output")
}

/// True when any part of `v` is secret.
pub fn contains_secret(v: &Value) -> bool {
    any_marker(v, &|k| k == "secret" || k == "encrypted")
}

fn any_marker(v: &Value, pred: &dyn Fn(&str) -> bool) -> bool {
    match v {
        Value::Object(m) => match m.get(MARKER).and_then(Value::as_str) {
            Some(k) => pred(k),
            None => m.values().any(|x| any_marker(x, pred)),
        },
        Value::Array(a) => a.iter().any(|x| any_marker(x, pred)),
        Value::String(s) => s.starts_with(REF_PREFIX) && pred("output"),
        _ => false,
    }
}
