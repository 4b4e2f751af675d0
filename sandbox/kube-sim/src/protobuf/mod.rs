//! Kubernetes protobuf: the `application/vnd.kubernetes.protobuf` media type for built-in kinds.
//!
//! Owns the envelope (decode a request body, encode an answer), the media-type decisions of the
//! HTTP front ([`request_is_protobuf`], [`Accept`]) and watch framing. The message definitions
//! come from the `k8s-pb` crate ([`table`]) and one generic codec turns any of them into the
//! JSON object the rest of the simulator works on and back ([`codec`]).
//!
//! Why this shape: `k8s-pb` (kube-rs's prost bindings of upstream `generated.proto`) is the
//! maintained source of the definitions, but it has neither serde impls nor a descriptor set,
//! so there is no crate-provided path from a decoded message to JSON. `build.rs` therefore
//! reads the crate's generated source into a field table (tags, types), the JSON names come
//! from the official schemas, and a single codec walks that table: no kind is converted by
//! hand. The envelope itself is decoded with the crate's typed `runtime::Unknown`.
//!
//! Rules kept here (facts from upstream `k8s.io/apimachinery`
//! `pkg/runtime/serializer/protobuf/protobuf.go` and `pkg/util/framer`):
//! - A body is the 4-byte magic `k8s\0` then a `runtime.Unknown` {typeMeta {apiVersion, kind},
//!   raw (the object's own message), contentEncoding, contentType}; only an empty
//!   contentEncoding exists.
//! - Built-in kinds only: a real server has no protobuf for custom resources, so their bodies
//!   are 415 and their answers JSON (406 if the client accepts protobuf only).
//! - Answers are protobuf when the first media type of `Accept` the simulator serves is
//!   protobuf and the object is built-in; `Table` answers (`;as=Table`) stay JSON.
//! - Watch in protobuf: each event is a `WatchEvent` {type, object: RawExtension holding the
//!   enveloped object} written raw (no envelope) behind a 4-byte big-endian length
//!   (`LengthDelimitedFramer`); content type `application/vnd.kubernetes.protobuf;stream=watch`.

pub mod codec;
pub mod table;

use k8s_pb::apimachinery::pkg::apis::meta::v1::WatchEvent;
use k8s_pb::apimachinery::pkg::runtime::{RawExtension, TypeMeta, Unknown};
use prost::Message as _;
use serde_json::{Value, json};
pub use table::Table;

/// The media type.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";
/// The media type of a protobuf watch stream.
pub const WATCH_MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf;stream=watch";
/// `k8s` and encoding style 0: the rest is a `runtime.Unknown`.
pub const MAGIC: [u8; 4] = [0x6b, 0x38, 0x73, 0x00];

/// A protobuf body that cannot be turned into an object.
#[derive(Debug, thiserror::Error)]
pub enum PbError {
    /// The body does not start with the envelope magic (upstream's wording).
    #[error("provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]")]
    NoMagic,
    /// Only the magic, or nothing.
    #[error("empty body")]
    Empty,
    /// The envelope names no kind or version.
    #[error("Object 'Kind' is missing in protobuf envelope (apiVersion {api_version:?}, kind {kind:?})")]
    MissingKind { api_version: String, kind: String },
    /// `contentEncoding` other than empty (none is defined upstream).
    #[error("unsupported protobuf content encoding {0:?}")]
    ContentEncoding(String),
    /// A kind the `k8s-pb` crate has no message for.
    #[error("no protobuf message for {0}")]
    UnknownMessage(String),
    /// Malformed wire data.
    #[error("malformed protobuf: {0}")]
    Wire(String),
}

/// A decoded envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub api_version: String,
    pub kind: String,
    /// The object as JSON, `apiVersion` and `kind` included.
    pub object: Value,
}

/// Decode an enveloped body into the JSON object it carries.
pub fn decode_envelope(table: &Table, bytes: &[u8]) -> Result<Decoded, PbError> {
    if bytes.is_empty() {
        return Err(PbError::Empty);
    }
    let rest = bytes.strip_prefix(&MAGIC[..]).ok_or(PbError::NoMagic)?;
    if rest.is_empty() {
        return Err(PbError::Empty);
    }
    let unk = Unknown::decode(rest).map_err(|e| PbError::Wire(e.to_string()))?;
    if let Some(enc) = unk.content_encoding.as_deref().filter(|e| !e.is_empty()) {
        return Err(PbError::ContentEncoding(enc.to_string()));
    }
    let tm = unk.type_meta.unwrap_or_default();
    let api_version = tm.api_version.unwrap_or_default();
    let kind = tm.kind.unwrap_or_default();
    if api_version.is_empty() || kind.is_empty() {
        return Err(PbError::MissingKind { api_version, kind });
    }
    let message = table
        .message_for(&api_version, &kind)
        .ok_or_else(|| PbError::UnknownMessage(format!("{api_version}, Kind={kind}")))?;
    let mut object = table.decode(message, unk.raw.as_deref().unwrap_or_default())?;
    if let Some(m) = object.as_object_mut() {
        m.insert("apiVersion".into(), json!(api_version));
        m.insert("kind".into(), json!(kind));
    }
    Ok(Decoded {
        api_version,
        kind,
        object,
    })
}

/// Encode a JSON object (its `apiVersion` and `kind` name the message) with the envelope.
pub fn encode_envelope(table: &Table, object: &Value) -> Result<Vec<u8>, PbError> {
    let api_version = object.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or_default();
    let message = table
        .message_for(api_version, kind)
        .ok_or_else(|| PbError::UnknownMessage(format!("{api_version}, Kind={kind}")))?;
    let raw = table.encode(message, object)?;
    let unk = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some(api_version.to_string()),
            kind: Some(kind.to_string()),
        }),
        raw: Some(raw),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut out = MAGIC.to_vec();
    unk.encode(&mut out).map_err(|e| PbError::Wire(e.to_string()))?;
    Ok(out)
}

/// One protobuf watch frame: length, then a raw `WatchEvent` whose object is enveloped.
pub fn watch_frame(table: &Table, event_type: &str, object: &Value) -> Result<Vec<u8>, PbError> {
    let inner = encode_envelope(table, object)?;
    let ev = WatchEvent {
        r#type: Some(event_type.to_string()),
        object: Some(RawExtension { raw: Some(inner) }),
    }
    .encode_to_vec();
    let mut out = (ev.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(&ev);
    Ok(out)
}

/// Is the request body protobuf (by its `Content-Type` media type, parameters dropped)?
pub fn request_is_protobuf(media_type: &str) -> bool {
    media_type.eq_ignore_ascii_case(MEDIA_TYPE)
}

/// What an `Accept` header asks for, among what the simulator serves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Accept {
    Json,
    Protobuf,
    /// Protobuf and nothing else the simulator serves (406 for kinds without protobuf).
    ProtobufOnly,
}

impl Accept {
    /// The first served media type wins (clients list their preference first; client-go sends
    /// `application/vnd.kubernetes.protobuf,application/json` or `..., */*`).
    pub fn parse(header: Option<&str>) -> Accept {
        let Some(h) = header else { return Accept::Json };
        let mut first: Option<Accept> = None;
        let mut json_too = false;
        for range in h.split(',') {
            let mut parts = range.split(';').map(str::trim);
            let ty = parts.next().unwrap_or_default().to_ascii_lowercase();
            let params: Vec<&str> = parts.collect();
            // Table and other transformed answers exist in JSON only
            if params.iter().any(|p| p.starts_with("as=")) {
                json_too = true;
                first.get_or_insert(Accept::Json);
                continue;
            }
            match ty.as_str() {
                MEDIA_TYPE => {
                    first.get_or_insert(Accept::Protobuf);
                }
                "application/json" | "application/*" | "*/*" | "application/yaml" => {
                    json_too = true;
                    first.get_or_insert(Accept::Json);
                }
                _ => {}
            }
        }
        match first {
            Some(Accept::Protobuf) if !json_too => Accept::ProtobufOnly,
            Some(a) => a,
            None => Accept::Json,
        }
    }

    /// Protobuf preferred?
    pub fn protobuf(self) -> bool {
        self != Accept::Json
    }
}
