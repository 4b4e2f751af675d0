//! Resource addresses: the stable names by which spar knows every resource.
//!
//! An address is the path of component names leading to a resource followed by the
//! resource's own name, written with `/` (`karpenter/controller-role`). Rules kept here:
//! - a segment is non-empty and uses only ASCII letters, digits and `-_.:@`, so an
//!   address round-trips through its text form, a shell and a file name unchanged;
//! - addresses are unique within a stack regardless of kind, so a user can name any
//!   resource on the command line without also naming its type;
//! - ordering is lexicographic by segment, which gives stable output everywhere.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A resource's address within its stack. Cheap to clone: graphs, states and plans hold
/// many copies of the same address.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address {
    text: Arc<str>,
}

/// Why a string is not a valid address or address segment.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AddressError {
    #[error("`{0}` is not a valid address: it is empty")]
    Empty(String),
    #[error("`{text}` is not a valid address: segment `{segment}` may only use letters, digits and `-_.:@`")]
    BadSegment { text: String, segment: String },
}

impl Address {
    /// Builds an address from its component path and the resource's own name.
    pub fn new<S: AsRef<str>>(path: &[S], name: &str) -> Result<Self, AddressError> {
        let mut text = String::new();
        for seg in path.iter().map(|s| s.as_ref()).chain(std::iter::once(name)) {
            if !text.is_empty() {
                text.push('/');
            }
            text.push_str(seg);
        }
        text.parse()
    }

    /// The address as text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The resource's own name (the last segment).
    pub fn name(&self) -> &str {
        self.text.rsplit('/').next().unwrap_or(&self.text)
    }

    /// The component path (every segment but the last), empty at the stack's top level.
    pub fn component_path(&self) -> &str {
        match self.text.rfind('/') {
            Some(i) => &self.text[..i],
            None => "",
        }
    }

    /// True when `self` equals `prefix` or lies inside the component `prefix`.
    pub fn is_within(&self, prefix: &str) -> bool {
        self.as_str() == prefix
            || (self.text.len() > prefix.len()
                && self.text.starts_with(prefix)
                && self.text.as_bytes()[prefix.len()] == b'/')
    }
}

fn valid_segment(seg: &str) -> bool {
    !seg.is_empty()
        && seg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'@'))
}

impl FromStr for Address {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(AddressError::Empty(s.to_string()));
        }
        if let Some(bad) = s.split('/').find(|seg| !valid_segment(seg)) {
            return Err(AddressError::BadSegment {
                text: s.to_string(),
                segment: bad.to_string(),
            });
        }
        Ok(Address { text: Arc::from(s) })
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({})", self.text)
    }
}

impl Serialize for Address {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_and_splits() {
        let a = Address::new(&["karpenter", "iam"], "node-role").unwrap();
        assert_eq!(a.as_str(), "karpenter/iam/node-role");
        assert_eq!(a.name(), "node-role");
        assert_eq!(a.component_path(), "karpenter/iam");
        assert!(a.is_within("karpenter"));
        assert!(!a.is_within("karp"));
    }

    #[test]
    fn rejects_bad_segments() {
        assert!("a//b".parse::<Address>().is_err());
        assert!("a b".parse::<Address>().is_err());
        assert!("".parse::<Address>().is_err());
    }
}
