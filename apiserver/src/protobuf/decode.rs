//! Protobuf message bytes → Kubernetes JSON, driven by the schema table.
//!
//! This file owns the decode direction below the envelope: walking a message's fields,
//! turning each into the JSON Kubernetes would write for it (including the special forms of
//! Time, IntOrString, Quantity, RawExtension, ...), and deciding which wire fields become JSON
//! keys.  Unknown fields are skipped; nesting is bounded by `MAX_DEPTH`.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::{Map, Value};

use super::schema::{msg, Field, Kind, Msg, Special};
use super::special::{format_duration, format_micro_time, format_time, GO_ZERO_TIME_SECONDS};
use super::wire::{wire_name, Reader, LEN, VARINT};
use super::{ProtobufError, MAX_DEPTH};

/// Decodes the bytes of message `index` into its JSON value.
pub(super) fn message(bytes: &[u8], index: u16, depth: usize) -> Result<Value, ProtobufError> {
    if depth > MAX_DEPTH {
        return Err(ProtobufError::TooDeep(MAX_DEPTH));
    }
    let m = msg(index);
    match m.special {
        Special::None => object(bytes, m, depth).map(Value::Object),
        special => special_value(bytes, m, special, depth),
    }
}

fn object(
    bytes: &[u8],
    m: &'static Msg,
    depth: usize,
) -> Result<Map<String, Value>, ProtobufError> {
    let mut out = Map::new();
    let mut r = Reader::new(bytes);
    while !r.is_empty() {
        let (num, wire) = r.tag()?;
        let Some(field) = m.field(num) else {
            r.skip(wire)?;
            continue;
        };
        if field.inline() {
            let Kind::Msg(sub) = field.kind else {
                return Err(wrong_wire(m, field, wire));
            };
            let payload = expect_len(&mut r, m, field, wire)?;
            // The embedded struct's keys join the parent object, as Go's inline JSON does.
            if let Value::Object(inner) = message(payload, sub, depth + 1)? {
                out.extend(inner);
            }
            continue;
        }
        match field.kind {
            Kind::MapStr | Kind::MapBytes | Kind::MapMsg(_) => {
                let payload = expect_len(&mut r, m, field, wire)?;
                let (key, value) = map_entry(payload, m, field, depth)?;
                match out
                    .entry(field.json)
                    .or_insert_with(|| Value::Object(Map::new()))
                {
                    Value::Object(map) => {
                        map.insert(key, value);
                    }
                    other => *other = Value::Object(Map::from_iter([(key, value)])),
                }
            }
            _ if field.repeated() => {
                let mut values = Vec::new();
                if wire == LEN && is_varint_kind(field.kind) {
                    // Packed encoding: one length-delimited run of varints.
                    let mut packed = Reader::new(r.len_delimited()?);
                    while !packed.is_empty() {
                        values.push(scalar(&mut packed, m, field, VARINT, depth)?);
                    }
                } else {
                    values.push(scalar(&mut r, m, field, wire, depth)?);
                }
                match out
                    .entry(field.json)
                    .or_insert_with(|| Value::Array(Vec::new()))
                {
                    Value::Array(list) => list.extend(values),
                    other => *other = Value::Array(values),
                }
            }
            _ => {
                let value = scalar(&mut r, m, field, wire, depth)?;
                // Go writes non-pointer fields to protobuf even when empty; its JSON omits
                // those with `omitempty`.  Mirror the JSON, so a decoded body looks like the
                // one the same client would have sent as JSON.
                // Only scalars: a message such as IntOrString 0 is a Go struct, always emitted.
                if !field.keep_zero() && !matches!(field.kind, Kind::Msg(_)) && is_zero(&value) {
                    out.remove(field.json);
                } else {
                    out.insert(field.json.to_owned(), value);
                }
            }
        }
    }
    Ok(out)
}

fn is_varint_kind(kind: Kind) -> bool {
    matches!(kind, Kind::Bool | Kind::I32 | Kind::I64)
}

fn is_zero(value: &Value) -> bool {
    match value {
        Value::String(s) => s.is_empty(),
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        _ => false,
    }
}

fn wrong_wire(m: &Msg, field: &Field, wire: u8) -> ProtobufError {
    ProtobufError::WrongWireType {
        field: format!("{}.{}", m.name, field.json),
        found: wire_name(wire),
    }
}

fn expect_len<'a>(
    r: &mut Reader<'a>,
    m: &Msg,
    field: &Field,
    wire: u8,
) -> Result<&'a [u8], ProtobufError> {
    if wire != LEN {
        return Err(wrong_wire(m, field, wire));
    }
    r.len_delimited()
}

/// One value of a non-map field (a whole field, or one element of a list).
fn scalar(
    r: &mut Reader<'_>,
    m: &Msg,
    field: &Field,
    wire: u8,
    depth: usize,
) -> Result<Value, ProtobufError> {
    let want = match field.kind {
        Kind::Bool | Kind::I32 | Kind::I64 => VARINT,
        _ => LEN,
    };
    if wire != want {
        return Err(wrong_wire(m, field, wire));
    }
    Ok(match field.kind {
        Kind::Str => Value::String(text(r.len_delimited()?)),
        Kind::Bytes => Value::String(BASE64.encode(r.len_delimited()?)),
        Kind::Bool => Value::Bool(r.varint()? != 0),
        // int32 travels as a sign-extended varint; its low 32 bits are the value.
        Kind::I32 => Value::from(r.varint()? as u32 as i32),
        Kind::I64 => Value::from(r.varint()? as i64),
        Kind::Msg(sub) => message(r.len_delimited()?, sub, depth + 1)?,
        // Maps never reach here: `object` handles them before calling `scalar`.
        Kind::MapStr | Kind::MapBytes | Kind::MapMsg(_) => Value::Null,
    })
}

/// Decodes one map entry message {key = 1, value = 2}.  Missing parts take their zero value.
fn map_entry(
    bytes: &[u8],
    m: &Msg,
    field: &Field,
    depth: usize,
) -> Result<(String, Value), ProtobufError> {
    let mut key = String::new();
    let mut value = None;
    let mut r = Reader::new(bytes);
    while !r.is_empty() {
        let (num, wire) = r.tag()?;
        match num {
            1 => key = text(expect_len(&mut r, m, field, wire)?),
            2 => {
                let payload = expect_len(&mut r, m, field, wire)?;
                value = Some(match field.kind {
                    Kind::MapBytes => Value::String(BASE64.encode(payload)),
                    Kind::MapMsg(sub) => message(payload, sub, depth + 1)?,
                    _ => Value::String(text(payload)),
                });
            }
            _ => r.skip(wire)?,
        }
    }
    let value = match value {
        Some(v) => v,
        None => match field.kind {
            Kind::MapMsg(sub) => message(&[], sub, depth + 1)?,
            _ => Value::String(String::new()),
        },
    };
    Ok((key, value))
}

/// Go decodes protobuf strings without validating UTF-8 and its JSON encoder then replaces
/// invalid sequences with U+FFFD; lossy conversion gives the same result.
fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The scalar fields of a special message, read leniently by number.
#[derive(Default)]
struct Parts<'a> {
    any: bool,
    ints: [Option<i64>; 4],
    bytes: [Option<&'a [u8]>; 4],
    strings: Vec<&'a [u8]>,
}

fn parts<'a>(bytes: &'a [u8], m: &Msg) -> Result<Parts<'a>, ProtobufError> {
    let mut p = Parts::default();
    let mut r = Reader::new(bytes);
    while !r.is_empty() {
        let (num, wire) = r.tag()?;
        p.any = true;
        let slot = usize::try_from(num).ok().filter(|n| *n < 4);
        match (slot, wire) {
            (Some(i), VARINT) => p.ints[i] = Some(r.varint()? as i64),
            (Some(i), LEN) => {
                let b = r.len_delimited()?;
                p.bytes[i] = Some(b);
                if i == 1 {
                    p.strings.push(b);
                }
            }
            (Some(_), other) => {
                return Err(ProtobufError::WrongWireType {
                    field: format!("{}.{num}", m.name),
                    found: wire_name(other),
                })
            }
            (None, other) => r.skip(other)?,
        }
    }
    Ok(p)
}

fn special_value(
    bytes: &[u8],
    m: &Msg,
    special: Special,
    depth: usize,
) -> Result<Value, ProtobufError> {
    let p = parts(bytes, m)?;
    let invalid = |reason: &str| ProtobufError::InvalidValue {
        field: m.name.to_owned(),
        reason: reason.to_owned(),
    };
    Ok(match special {
        Special::Time | Special::MicroTime => {
            let seconds = p.ints[1].unwrap_or(0);
            // int32 nanos: keep the low 32 bits of the varint, as for any int32.
            let nanos = p.ints[2].unwrap_or(0) as i32;
            if !p.any || (seconds == GO_ZERO_TIME_SECONDS && nanos == 0) {
                // Go's zero time: Kubernetes writes it as JSON null.
                Value::Null
            } else if special == Special::Time {
                Value::String(format_time(seconds).ok_or_else(|| invalid("time out of range"))?)
            } else {
                Value::String(
                    format_micro_time(seconds, nanos)
                        .ok_or_else(|| invalid("time out of range"))?,
                )
            }
        }
        Special::Duration => Value::String(format_duration(p.ints[1].unwrap_or(0))),
        Special::IntOrString => {
            if p.ints[1] == Some(1) {
                Value::String(text(p.bytes[3].unwrap_or_default()))
            } else {
                Value::from(p.ints[2].unwrap_or(0) as i32)
            }
        }
        // Go's zero Quantity is "0".
        Special::Quantity => match p.bytes[1] {
            Some(s) if !s.is_empty() => Value::String(text(s)),
            _ => Value::String("0".to_owned()),
        },
        Special::RawExtension | Special::FieldsV1 => match p.bytes[1] {
            None | Some([]) => Value::Null,
            Some(raw) if raw.starts_with(super::MAGIC) => super::decode_envelope(raw, depth + 1)?,
            Some(raw) => serde_json::from_slice(raw)
                .map_err(|e| invalid(&format!("embedded JSON is invalid: {e}")))?,
        },
        Special::StringList => {
            Value::Array(p.strings.iter().map(|s| Value::String(text(s))).collect())
        }
        Special::None => Value::Null,
    })
}
