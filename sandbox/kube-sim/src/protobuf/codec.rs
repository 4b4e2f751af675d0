//! The one generic protobuf <-> JSON codec for every Kubernetes message in the [`Table`].
//!
//! Owns walking the protobuf wire format (proto2, as k8s's `generated.proto` are) of a message
//! named in the table and producing the JSON object the apiserver's JSON serializer would, and
//! the reverse.
//!
//! Rules kept here (the places where k8s protobuf and JSON differ; facts from upstream
//! `k8s.io/apimachinery`: `pkg/util/intstr`, `pkg/api/resource`, `pkg/apis/meta/v1/time_proto.go`,
//! `micro_time_proto.go`, `pkg/runtime/types_proto.go`):
//! - `IntOrString` {type, intVal, strVal} is a JSON number or string; `Quantity` {string} and
//!   `Duration` {duration ns} are strings; `Time` {seconds, nanos} is RFC 3339 in seconds,
//!   `MicroTime` in microseconds; an empty `Time` (how Go marshals the zero time) is absent.
//! - `RawExtension`, `FieldsV1` and apiextensions `JSON` carry raw JSON bytes (or a
//!   protobuf-enveloped object, decoded in turn); `bytes` fields and map values are base64.
//! - `JSONSchemaPropsOrBool`/`OrArray`/`OrStringArray` are the bool/array/schema unions of JSON.
//! - Presence: Go's non-pointer fields are always on the wire, so a decoded empty string is
//!   dropped (every such field is `omitempty` or meaningless empty); `0` and `false` are kept,
//!   because a pointer field's explicit zero (`replicas: 0`, `automountServiceAccountToken:
//!   false`) must survive. Empty lists and maps are absent (the wire cannot tell them apart).
//! - Unknown tags on decode are skipped (a newer client); JSON keys with no field on encode are
//!   left out (they have no protobuf form).

use super::table::{Kind, MapValue, MessageInfo, Table};
use super::{PbError, decode_envelope};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use prost::bytes::Buf;
use prost::encoding::{WireType, decode_key, decode_varint, encode_key, encode_varint};
use serde_json::{Map, Value, json};

const INT_OR_STRING: &str = "apimachinery.pkg.util.intstr.IntOrString";
const QUANTITY: &str = "apimachinery.pkg.api.resource.Quantity";
const TIME: &str = "apimachinery.pkg.apis.meta.v1.Time";
const MICRO_TIME: &str = "apimachinery.pkg.apis.meta.v1.MicroTime";
const DURATION: &str = "apimachinery.pkg.apis.meta.v1.Duration";
const FIELDS_V1: &str = "apimachinery.pkg.apis.meta.v1.FieldsV1";
const RAW_EXTENSION: &str = "apimachinery.pkg.runtime.RawExtension";
const CRD_V1: &str = "apiextensions_apiserver.pkg.apis.apiextensions.v1";

/// Messages whose JSON form is not an object of their fields.
fn special(name: &str) -> bool {
    matches!(
        name,
        INT_OR_STRING | QUANTITY | TIME | MICRO_TIME | DURATION | FIELDS_V1 | RAW_EXTENSION
    ) || name.strip_prefix(CRD_V1).is_some_and(|n| {
        matches!(
            n,
            ".Json" | ".JsonSchemaPropsOrBool" | ".JsonSchemaPropsOrArray" | ".JsonSchemaPropsOrStringArray"
        )
    })
}

fn truncated() -> PbError {
    PbError::Wire("unexpected end of message".into())
}

fn take_len<'a>(buf: &mut &'a [u8]) -> Result<&'a [u8], PbError> {
    let len = decode_varint(buf).map_err(|e| PbError::Wire(e.to_string()))? as usize;
    if buf.len() < len {
        return Err(truncated());
    }
    let (head, tail) = buf.split_at(len);
    *buf = tail;
    Ok(head)
}

fn skip(buf: &mut &[u8], wt: WireType) -> Result<(), PbError> {
    let n = match wt {
        WireType::Varint => {
            decode_varint(buf).map_err(|e| PbError::Wire(e.to_string()))?;
            0
        }
        WireType::SixtyFourBit => 8,
        WireType::ThirtyTwoBit => 4,
        WireType::LengthDelimited => {
            take_len(buf)?;
            0
        }
        WireType::StartGroup | WireType::EndGroup => {
            return Err(PbError::Wire("groups are not used by Kubernetes".into()));
        }
    };
    if buf.len() < n {
        return Err(truncated());
    }
    buf.advance(n);
    Ok(())
}

impl Table {
    /// Decode the bytes of message `name` into its JSON value.
    pub fn decode(&self, name: &str, bytes: &[u8]) -> Result<Value, PbError> {
        let info = self
            .message(name)
            .ok_or_else(|| PbError::UnknownMessage(name.to_string()))?;
        let fields = self.decode_fields(name, info, bytes)?;
        if special(name) {
            return Ok(self.special_to_json(name, fields));
        }
        Ok(Value::Object(fields))
    }

    /// The fields on the wire as a JSON object keyed by JSON name (by Rust field name for the
    /// [`special`] messages, which are reshaped next).
    fn decode_fields(&self, name: &str, info: &MessageInfo, bytes: &[u8]) -> Result<Map<String, Value>, PbError> {
        let by_rust = special(name);
        let mut out = Map::new();
        let mut buf = bytes;
        while !buf.is_empty() {
            let (tag, wt) = decode_key(&mut buf).map_err(|e| PbError::Wire(e.to_string()))?;
            let Some(f) = info.by_tag(tag) else {
                skip(&mut buf, wt)?;
                continue;
            };
            let key = if by_rust {
                f.field.rust.to_string()
            } else {
                f.json.clone()
            };
            let kind = f.field.kind;
            match kind {
                Kind::Map(mv) => {
                    let entry = take_len(&mut buf)?;
                    let (k, v) = self.decode_map_entry(mv, entry)?;
                    let m = out.entry(key).or_insert_with(|| json!({}));
                    if let Some(m) = m.as_object_mut() {
                        m.insert(k, v);
                    }
                }
                _ if f.field.repeated => {
                    let list = out.entry(key).or_insert_with(|| json!([]));
                    let Some(list) = list.as_array_mut() else { continue };
                    let packed = wt == WireType::LengthDelimited
                        && !matches!(kind, Kind::String | Kind::Bytes | Kind::Message(_));
                    if packed {
                        let mut inner = take_len(&mut buf)?;
                        while !inner.is_empty() {
                            list.push(self.decode_scalar(kind, WireType::Varint, &mut inner)?);
                        }
                    } else {
                        list.push(self.decode_value(kind, wt, &mut buf)?);
                    }
                }
                _ => {
                    let v = self.decode_value(kind, wt, &mut buf)?;
                    out.insert(key, v);
                }
            }
        }
        if !by_rust {
            // Go non-pointer strings are always on the wire: empty means unset
            out.retain(|_, v| !(v.as_str() == Some("") || v.is_null()));
        }
        Ok(out)
    }

    fn decode_map_entry(&self, mv: MapValue, mut entry: &[u8]) -> Result<(String, Value), PbError> {
        let mut key = String::new();
        let mut value = match mv {
            MapValue::String | MapValue::Bytes => json!(""),
            MapValue::Message(_) => json!({}),
        };
        while !entry.is_empty() {
            let (tag, wt) = decode_key(&mut entry).map_err(|e| PbError::Wire(e.to_string()))?;
            match tag {
                1 => key = utf8(take_len(&mut entry)?)?,
                2 => {
                    value = match mv {
                        MapValue::String => json!(utf8(take_len(&mut entry)?)?),
                        MapValue::Bytes => json!(B64.encode(take_len(&mut entry)?)),
                        MapValue::Message(m) => self.decode(m, take_len(&mut entry)?)?,
                    }
                }
                _ => skip(&mut entry, wt)?,
            }
        }
        Ok((key, value))
    }

    fn decode_value(&self, kind: Kind, wt: WireType, buf: &mut &[u8]) -> Result<Value, PbError> {
        match kind {
            Kind::String => Ok(json!(utf8(take_len(buf)?)?)),
            Kind::Bytes => Ok(json!(B64.encode(take_len(buf)?))),
            Kind::Message(m) => self.decode(m, take_len(buf)?),
            _ => self.decode_scalar(kind, wt, buf),
        }
    }

    fn decode_scalar(&self, kind: Kind, wt: WireType, buf: &mut &[u8]) -> Result<Value, PbError> {
        if kind == Kind::Double {
            if wt != WireType::SixtyFourBit || buf.len() < 8 {
                return Err(PbError::Wire("double field is not 64-bit".into()));
            }
            return Ok(json!(buf.get_f64_le()));
        }
        let v = decode_varint(buf).map_err(|e| PbError::Wire(e.to_string()))?;
        Ok(match kind {
            Kind::Int32 => json!(v as i64 as i32),
            Kind::Int64 => json!(v as i64),
            Kind::Bool => json!(v != 0),
            _ => return Err(PbError::Wire(format!("unexpected varint for {kind:?}"))),
        })
    }

    /// The JSON form of the messages listed in [`special`].
    fn special_to_json(&self, name: &str, f: Map<String, Value>) -> Value {
        let int = |k: &str| f.get(k).and_then(Value::as_i64).unwrap_or(0);
        let string = |k: &str| f.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        let raw = |k: &str| -> Value {
            let bytes = f
                .get(k)
                .and_then(Value::as_str)
                .and_then(|b| B64.decode(b).ok())
                .unwrap_or_default();
            self.raw_json(&bytes)
        };
        match name {
            INT_OR_STRING => {
                if int("type") == 1 {
                    json!(string("str_val"))
                } else {
                    json!(int("int_val"))
                }
            }
            QUANTITY => json!(string("string")),
            DURATION => json!(go_duration(int("duration"))),
            TIME | MICRO_TIME => {
                let (secs, nanos) = (int("seconds"), int("nanos"));
                if secs == 0 && nanos == 0 {
                    return Value::Null;
                }
                let Some(t) = chrono::DateTime::from_timestamp(secs, nanos as u32) else {
                    return Value::Null;
                };
                if name == TIME {
                    json!(t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
                } else {
                    json!(t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
                }
            }
            FIELDS_V1 => raw("raw"),
            RAW_EXTENSION => raw("raw"),
            _ => match name.rsplit('.').next().unwrap_or_default() {
                "Json" => raw("raw"),
                "JsonSchemaPropsOrBool" => match f.get("schema") {
                    Some(s) => s.clone(),
                    None => f.get("allows").cloned().unwrap_or(json!(false)),
                },
                "JsonSchemaPropsOrArray" => match f.get("schema") {
                    Some(s) => s.clone(),
                    None => f.get("j_son_schemas").cloned().unwrap_or(json!([])),
                },
                _ => match f.get("schema") {
                    Some(s) => s.clone(),
                    None => f.get("property").cloned().unwrap_or(json!([])),
                },
            },
        }
    }

    /// Raw bytes of a RawExtension-like field: JSON, or a protobuf-enveloped object.
    fn raw_json(&self, bytes: &[u8]) -> Value {
        if bytes.is_empty() {
            return Value::Null;
        }
        if let Ok(v) = serde_json::from_slice(bytes) {
            return v;
        }
        decode_envelope(self, bytes).map(|d| d.object).unwrap_or(Value::Null)
    }

    // ------------------------------------------------------------------ encode

    /// Encode the JSON value of message `name`.
    pub fn encode(&self, name: &str, value: &Value) -> Result<Vec<u8>, PbError> {
        let info = self
            .message(name)
            .ok_or_else(|| PbError::UnknownMessage(name.to_string()))?;
        let value = if special(name) {
            self.special_from_json(name, value)
        } else {
            value.clone()
        };
        let by_rust = special(name);
        let mut out = vec![];
        let Some(obj) = value.as_object() else {
            return Ok(out);
        };
        // tag order, as Go's marshallers write
        let mut fields: Vec<_> = info.fields.iter().collect();
        fields.sort_by_key(|f| f.field.tag);
        for f in fields {
            let key = if by_rust { f.field.rust } else { f.json.as_str() };
            let Some(v) = obj.get(key).filter(|v| !v.is_null()) else {
                continue;
            };
            let tag = f.field.tag;
            match f.field.kind {
                Kind::Map(mv) => {
                    for (k, item) in v.as_object().into_iter().flatten() {
                        let mut entry = vec![];
                        encode_key(1, WireType::LengthDelimited, &mut entry);
                        put_bytes(k.as_bytes(), &mut entry);
                        let val = match mv {
                            MapValue::String => item.as_str().unwrap_or_default().as_bytes().to_vec(),
                            MapValue::Bytes => B64.decode(item.as_str().unwrap_or_default()).unwrap_or_default(),
                            MapValue::Message(m) => self.encode(m, item)?,
                        };
                        encode_key(2, WireType::LengthDelimited, &mut entry);
                        put_bytes(&val, &mut entry);
                        encode_key(tag, WireType::LengthDelimited, &mut out);
                        put_bytes(&entry, &mut out);
                    }
                }
                kind if f.field.repeated => {
                    for item in v.as_array().into_iter().flatten() {
                        self.encode_value(tag, kind, item, &mut out)?;
                    }
                }
                kind => self.encode_value(tag, kind, v, &mut out)?,
            }
        }
        Ok(out)
    }

    fn encode_value(&self, tag: u32, kind: Kind, v: &Value, out: &mut Vec<u8>) -> Result<(), PbError> {
        match kind {
            Kind::String => {
                let s = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                encode_key(tag, WireType::LengthDelimited, out);
                put_bytes(s.as_bytes(), out);
            }
            Kind::Bytes => {
                let b = B64.decode(v.as_str().unwrap_or_default()).unwrap_or_default();
                encode_key(tag, WireType::LengthDelimited, out);
                put_bytes(&b, out);
            }
            Kind::Int32 | Kind::Int64 => {
                encode_key(tag, WireType::Varint, out);
                encode_varint(v.as_i64().unwrap_or(0) as u64, out);
            }
            Kind::Bool => {
                encode_key(tag, WireType::Varint, out);
                encode_varint(u64::from(v.as_bool().unwrap_or(false)), out);
            }
            Kind::Double => {
                encode_key(tag, WireType::SixtyFourBit, out);
                out.extend_from_slice(&v.as_f64().unwrap_or(0.0).to_le_bytes());
            }
            Kind::Message(m) => {
                let b = self.encode(m, v)?;
                encode_key(tag, WireType::LengthDelimited, out);
                put_bytes(&b, out);
            }
            Kind::Map(_) => return Err(PbError::Wire("map inside a repeated field".into())),
        }
        Ok(())
    }

    /// The field object of a special message from its JSON form.
    fn special_from_json(&self, name: &str, v: &Value) -> Value {
        let raw = |v: &Value| json!(B64.encode(v.to_string()));
        match name {
            INT_OR_STRING => match v {
                Value::String(s) => json!({"type": 1, "str_val": s}),
                other => json!({"type": 0, "int_val": other.as_i64().unwrap_or(0)}),
            },
            QUANTITY => json!({"string": v.as_str().map(String::from).unwrap_or_else(|| v.to_string())}),
            DURATION => json!({"duration": parse_go_duration(v.as_str().unwrap_or_default())}),
            TIME | MICRO_TIME => match v.as_str().and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok()) {
                Some(t) => json!({"seconds": t.timestamp(), "nanos": t.timestamp_subsec_nanos()}),
                None => json!({}),
            },
            FIELDS_V1 => json!({"raw": raw(v)}),
            RAW_EXTENSION => json!({"raw": raw(v)}),
            _ => match (name.rsplit('.').next().unwrap_or_default(), v) {
                ("Json", v) => json!({"raw": raw(v)}),
                ("JsonSchemaPropsOrBool", Value::Bool(b)) => json!({"allows": b}),
                ("JsonSchemaPropsOrBool", s) => json!({"allows": true, "schema": s}),
                ("JsonSchemaPropsOrArray", Value::Array(a)) => json!({"j_son_schemas": a}),
                ("JsonSchemaPropsOrArray", s) => json!({"schema": s}),
                (_, Value::Array(a)) => json!({"property": a}),
                (_, s) => json!({"schema": s}),
            },
        }
    }
}

fn put_bytes(b: &[u8], out: &mut Vec<u8>) {
    encode_varint(b.len() as u64, out);
    out.extend_from_slice(b);
}

fn utf8(b: &[u8]) -> Result<String, PbError> {
    String::from_utf8(b.to_vec()).map_err(|_| PbError::Wire("string field is not UTF-8".into()))
}

/// Go's `time.Duration.String()` for whole and fractional seconds (`1h2m3s`, `1.5s`, `0s`).
fn go_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let n = nanos.unsigned_abs();
    let (h, m) = (n / 3_600_000_000_000, (n / 60_000_000_000) % 60);
    let s = (n % 60_000_000_000) as f64 / 1e9;
    let mut out = sign.to_string();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&format!("{s}s"));
    out
}

/// The inverse of [`go_duration`] for `h`, `m`, `s`, `ms` units.
fn parse_go_duration(s: &str) -> i64 {
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let n: f64 = rest[..num_len].parse().unwrap_or(0.0);
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "h" => 3.6e12,
            "m" => 6e10,
            "s" => 1e9,
            "ms" => 1e6,
            "us" | "µs" => 1e3,
            _ => 1.0,
        };
        rest = &rest[unit_len..];
        total += n * scale;
    }
    let v = total as i64;
    if neg { -v } else { v }
}
