//! Typed IAM policy documents: [`PolicyDocument`] and [`Statement`], serialized to the JSON
//! IAM expects, and read back into the same canonical shape.
//!
//! Rules kept here: the canonical form always uses lists (`Action`, `Resource`, principal
//! and condition values), so a document AWS hands back with single strings (or URL-encoded,
//! as GetRole does) compares equal to the one the program wrote; a statement's fields keep
//! IAM's names (`Effect`, `Principal`, ...), so the JSON is exactly what IAM gets.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use crate::provider::ProviderError;

/// An IAM policy document (version `2012-10-17`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyDocument {
    #[serde(rename = "Version", default = "version")]
    pub version: String,
    #[serde(rename = "Statement", deserialize_with = "one_or_many")]
    pub statement: Vec<Statement>,
}

fn version() -> String {
    "2012-10-17".into()
}

/// One statement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    #[serde(rename = "Sid", default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    #[serde(rename = "Effect")]
    pub effect: String,
    /// Principal type (`Service`, `AWS`, `Federated`) to principals.
    #[serde(
        rename = "Principal",
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "principal"
    )]
    pub principal: Option<BTreeMap<String, Vec<String>>>,
    #[serde(
        rename = "Action",
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub action: Vec<String>,
    #[serde(
        rename = "Resource",
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub resource: Vec<String>,
    /// Operator (`StringEquals`) to key to values.
    #[serde(
        rename = "Condition",
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "condition"
    )]
    pub condition: BTreeMap<String, BTreeMap<String, Vec<String>>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> From<OneOrMany<T>> for Vec<T> {
    fn from(v: OneOrMany<T>) -> Self {
        match v {
            OneOrMany::One(t) => vec![t],
            OneOrMany::Many(v) => v,
        }
    }
}

fn one_or_many<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    Ok(OneOrMany::<T>::deserialize(d)?.into())
}

fn principal<'de, D: Deserializer<'de>>(d: D) -> Result<Option<BTreeMap<String, Vec<String>>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum P {
        Star(String),
        Map(BTreeMap<String, OneOrMany<String>>),
    }
    Ok(match Option::<P>::deserialize(d)? {
        None => None,
        Some(P::Star(s)) => Some(BTreeMap::from([("AWS".to_string(), vec![s])])),
        Some(P::Map(m)) => Some(m.into_iter().map(|(k, v)| (k, v.into())).collect()),
    })
}

type Conditions = BTreeMap<String, BTreeMap<String, Vec<String>>>;

fn condition<'de, D: Deserializer<'de>>(d: D) -> Result<Conditions, D::Error> {
    // Values are strings, booleans or numbers, alone or in a list (a Value matches a list
    // too, so lists are told apart here rather than by an untagged enum).
    let raw = BTreeMap::<String, BTreeMap<String, serde_json::Value>>::deserialize(d)?;
    Ok(raw
        .into_iter()
        .map(|(op, m)| {
            let m = m
                .into_iter()
                .map(|(k, v)| {
                    let vals: Vec<serde_json::Value> = match v {
                        serde_json::Value::Array(a) => a,
                        one => vec![one],
                    };
                    let vals = vals
                        .into_iter()
                        .map(|v| match v {
                            serde_json::Value::String(s) => s,
                            other => other.to_string(),
                        })
                        .collect();
                    (k, vals)
                })
                .collect();
            (op, m)
        })
        .collect())
}

impl PolicyDocument {
    /// A document of `statements`.
    pub fn new(statements: Vec<Statement>) -> Self {
        PolicyDocument {
            version: version(),
            statement: statements,
        }
    }

    /// The trust policy letting an AWS service assume a role (`sts:AssumeRole`).
    pub fn assumed_by_service(service: &str) -> Self {
        Self::new(vec![
            Statement::allow(&["sts:AssumeRole"]).principal("Service", service),
        ])
    }

    /// The JSON IAM takes.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a policy document serializes")
    }

    /// Parses a document as IAM returns it (plain or URL-encoded JSON).
    pub fn parse(text: &str) -> Result<Self, ProviderError> {
        let decoded = if text.trim_start().starts_with('{') {
            text.to_string()
        } else {
            percent_decode(text)
        };
        serde_json::from_str(&decoded)
            .map_err(|e| ProviderError::msg(format!("unreadable policy document from IAM: {e}")))
    }

    /// The canonical JSON value of this document (lists everywhere).
    pub fn canonical(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a policy document serializes")
    }
}

impl Statement {
    /// An `Allow` statement of `actions`.
    pub fn allow(actions: &[&str]) -> Self {
        Statement {
            sid: None,
            effect: "Allow".into(),
            principal: None,
            action: actions.iter().map(|a| a.to_string()).collect(),
            resource: Vec::new(),
            condition: BTreeMap::new(),
        }
    }
    /// A `Deny` statement of `actions`.
    pub fn deny(actions: &[&str]) -> Self {
        Statement {
            effect: "Deny".into(),
            ..Self::allow(actions)
        }
    }
    pub fn sid(mut self, sid: &str) -> Self {
        self.sid = Some(sid.into());
        self
    }
    /// Adds a principal (`Service`, `AWS`, `Federated`).
    pub fn principal(mut self, kind: &str, who: &str) -> Self {
        self.principal
            .get_or_insert_with(BTreeMap::new)
            .entry(kind.into())
            .or_default()
            .push(who.into());
        self
    }
    /// Adds resources.
    pub fn resources(mut self, resources: &[&str]) -> Self {
        self.resource.extend(resources.iter().map(|r| r.to_string()));
        self
    }
    /// Adds a condition (`StringEquals`, key, values).
    pub fn condition(mut self, operator: &str, key: &str, values: &[&str]) -> Self {
        self.condition
            .entry(operator.into())
            .or_default()
            .insert(key.into(), values.iter().map(|v| v.to_string()).collect());
        self
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match u8::from_str_radix(&s[i + 1..i + 3], 16) {
                Ok(b) => {
                    out.push(b);
                    i += 3;
                }
                Err(_) => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Rust source building the document `doc` (in its canonical form) with
/// [`PolicyDocument::new`] and the [`Statement`] builders, for a kind's declaration; `None`
/// when the builders cannot say it.
pub(crate) fn source(doc: &serde_json::Value) -> Option<String> {
    use crate::declaration::string;
    let d: PolicyDocument = serde_json::from_value(doc.clone()).ok()?;
    if d.canonical() != *doc {
        return None;
    }
    let statements: Vec<String> = d.statement.iter().map(statement_source).collect::<Option<_>>()?;
    let src = format!("iam::PolicyDocument::new(vec![{}])", statements.join(", "));
    Some(if d.version == version() {
        src
    } else {
        format!("{{ let mut d = {src}; d.version = {}.into(); d }}", string(&d.version))
    })
}

/// The service a trust policy lets assume a role, when it is exactly
/// [`PolicyDocument::assumed_by_service`]'s.
pub(crate) fn assumed_by(doc: &serde_json::Value) -> Option<String> {
    let d: PolicyDocument = serde_json::from_value(doc.clone()).ok()?;
    let [s] = d.statement.as_slice() else {
        return None;
    };
    let services = s.principal.as_ref()?.get("Service")?;
    let [service] = services.as_slice() else {
        return None;
    };
    (PolicyDocument::assumed_by_service(service).canonical() == *doc).then(|| service.clone())
}

fn statement_source(s: &Statement) -> Option<String> {
    use crate::declaration::{Expr, str_slice, string};
    let head = match s.effect.as_str() {
        "Allow" => "iam::Statement::allow",
        "Deny" => "iam::Statement::deny",
        _ => return None,
    };
    let mut e = Expr::new(head, &[str_slice(&s.action)]);
    if let Some(sid) = &s.sid {
        e = e.call("sid", &[string(sid)]);
    }
    if let Some(p) = &s.principal {
        if p.is_empty() {
            return None;
        }
        for (kind, who) in p {
            for w in who {
                e = e.call("principal", &[string(kind), string(w)]);
            }
        }
    }
    e = e.call_if(!s.resource.is_empty(), "resources", &[str_slice(&s.resource)]);
    for (op, m) in &s.condition {
        for (key, values) in m {
            e = e.call("condition", &[string(op), string(key), str_slice(values)]);
        }
    }
    Some(e.source().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_shorthand_reads_as_the_canonical_form() {
        let ours = PolicyDocument::assumed_by_service("eks.amazonaws.com");
        let theirs = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"Service":"eks.amazonaws.com"},"Action":"sts:AssumeRole"}}"#;
        assert_eq!(PolicyDocument::parse(theirs).unwrap(), ours);
        let encoded = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Principal%22%3A%7B%22Service%22%3A%5B%22eks.amazonaws.com%22%5D%7D%2C%22Action%22%3A%5B%22sts%3AAssumeRole%22%5D%7D%5D%7D";
        assert_eq!(PolicyDocument::parse(encoded).unwrap(), ours);
        assert_eq!(PolicyDocument::parse(&ours.to_json()).unwrap(), ours);
    }

    #[test]
    fn conditions_and_resources() {
        let d = PolicyDocument::new(vec![
            Statement::allow(&["sqs:SendMessage"])
                .resources(&["arn:aws:sqs:*:*:q"])
                .condition("Bool", "aws:SecureTransport", &["false"]),
        ]);
        let j = d.to_json();
        assert!(
            j.contains(r#""Condition":{"Bool":{"aws:SecureTransport":["false"]}}"#),
            "{j}"
        );
        let back = PolicyDocument::parse(r#"{"Statement":[{"Effect":"Allow","Action":"sqs:SendMessage","Resource":"arn:aws:sqs:*:*:q","Condition":{"Bool":{"aws:SecureTransport":false}}}]}"#).unwrap();
        assert_eq!(back, d);
    }
}
