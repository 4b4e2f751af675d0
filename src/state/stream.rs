//! Decodes a snapshot body (the `state` member of the file) from a reader, chunk by chunk.
//!
//! A structural scan (strings and escapes respected) splits the top-level `resources`
//! array into its elements; each element is parsed from its own bytes as soon as it is
//! complete, and the other members (small) are parsed together at the end. So a large
//! state is never held as text and as values at once, and parsing runs at `from_slice`
//! speed. Rules kept here: the answer is all or nothing (`None` on anything unexpected:
//! malformed JSON, a repeated address, a read error), because the caller then takes the
//! in-memory path, whose answer and errors are the reference.

use std::collections::BTreeMap;
use std::io::Read;

use crate::address::Address;
use crate::state::snapshot::{ResourceState, Snapshot};

/// Where the scan is in the body.
#[derive(PartialEq)]
enum Place {
    /// Any member but the resources array, or between members.
    Members,
    /// Inside the resources array.
    Resources,
}

/// Reads the whole of `reader` (a snapshot body) and decodes it; `None` when it cannot.
pub(crate) fn decode_body(mut reader: impl Read) -> Option<Snapshot> {
    let mut chunk = vec![0u8; 1 << 20];
    let mut members: Vec<u8> = Vec::with_capacity(4096);
    let mut element: Vec<u8> = Vec::with_capacity(4096);
    let mut resources: BTreeMap<Address, ResourceState> = BTreeMap::new();
    let (mut depth, mut in_string, mut escaped) = (0u32, false, false);
    let mut place = Place::Members;
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return None,
        };
        for &b in &chunk[..n] {
            // Bytes of the resources array's elements go to `element`, the rest to `members`.
            macro_rules! keep {
                () => {
                    if place == Place::Resources {
                        element.push(b)
                    } else {
                        members.push(b)
                    }
                };
            }
            if in_string {
                if escaped {
                    escaped = false;
                } else if b == b'\\' {
                    escaped = true;
                } else if b == b'"' {
                    in_string = false;
                }
                keep!();
                continue;
            }
            match b {
                b'"' => {
                    in_string = true;
                    keep!();
                }
                b'{' | b'[' => {
                    depth += 1;
                    if place == Place::Members
                        && depth == 2
                        && b == b'['
                        && members.trim_ascii_end().ends_with(b"\"resources\":")
                    {
                        place = Place::Resources;
                        members.push(b);
                    } else {
                        keep!();
                    }
                }
                b'}' | b']' => {
                    depth = depth.checked_sub(1)?;
                    if place == Place::Resources && depth == 1 {
                        take_element(&mut element, &mut resources)?;
                        place = Place::Members;
                        members.push(b);
                    } else {
                        keep!();
                    }
                }
                b',' if place == Place::Resources && depth == 2 => take_element(&mut element, &mut resources)?,
                _ => keep!(),
            }
        }
    }
    if depth != 0 || in_string || place != Place::Members {
        return None;
    }
    let mut snap: Snapshot = serde_json::from_slice(&members).ok()?;
    if !snap.resources.is_empty() {
        return None;
    }
    snap.resources = resources;
    Some(snap)
}

/// Parses one complete array element and adds it; an empty one is the end of `[]`.
fn take_element(element: &mut Vec<u8>, resources: &mut BTreeMap<Address, ResourceState>) -> Option<()> {
    if element.trim_ascii().is_empty() {
        element.clear();
        return resources.is_empty().then_some(());
    }
    let r: ResourceState = serde_json::from_slice(element).ok()?;
    element.clear();
    let address = r.address.clone();
    resources.insert(address, r).is_none().then_some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::snapshot::{DeposedObject, StoredOptions};
    use serde_json::json;

    fn resource(address: &str, inputs: serde_json::Value) -> ResourceState {
        ResourceState {
            address: address.parse().unwrap(),
            kind: "t:K".into(),
            id: format!("id-{address}"),
            inputs,
            outputs: json!({"arn": "x"}),
            dependencies: vec![],
            provider: "t".into(),
            options: StoredOptions::default(),
            unfinished: None,
        }
    }

    #[test]
    fn decodes_what_serde_decodes() {
        let mut s = Snapshot::empty();
        assert_eq!(decode_body(serde_json::to_vec(&s).unwrap().as_slice()).unwrap(), s);
        // Strings that look like structure, nested arrays, every member present.
        s.upsert(resource(
            "a",
            json!({"s": "a]\"},{\"x\":[1,", "t": "\\\\", "l": [[1], {"k": []}]}),
        ));
        s.upsert(resource("c/b", json!({"resources": [1, 2], "u": "\u{e9}"})));
        s.deposed.push(DeposedObject {
            address: "a".parse().unwrap(),
            kind: "t:K".into(),
            id: "old".into(),
            inputs: json!({"resources": "[x]"}),
            outputs: json!(null),
            options: StoredOptions::default(),
        });
        s.outputs.insert("o".into(), json!({"resources": []}));
        let body = serde_json::to_vec(&s).unwrap();
        assert_eq!(decode_body(body.as_slice()).unwrap(), s);
        let pretty = serde_json::to_vec_pretty(&s).unwrap();
        assert_eq!(decode_body(pretty.as_slice()).unwrap(), s);
    }

    #[test]
    fn refuses_what_it_cannot_be_sure_of() {
        let mut s = Snapshot::empty();
        s.upsert(resource("a", json!({})));
        let text = String::from_utf8(serde_json::to_vec(&s).unwrap()).unwrap();
        let element = text[text.find("[{").unwrap() + 1..text.find("}]").unwrap() + 1].to_string();
        let twice = text.replace(&element, &format!("{element},{element}"));
        assert!(decode_body(twice.as_bytes()).is_none(), "a repeated address");
        assert!(decode_body(&text.as_bytes()[..text.len() - 3]).is_none(), "truncated");
        assert!(
            decode_body(text.replace("}]", "},]").as_bytes()).is_none(),
            "a trailing comma"
        );
        assert!(
            decode_body(text.replace("[{", "[7,{").as_bytes()).is_none(),
            "not a resource"
        );
    }
}
