//! Kubernetes JSON → protobuf message bytes, driven by the schema table.
//!
//! This file owns the encode direction below the envelope.  Fields are written in field-number
//! order, as Kubernetes does; a JSON key that is present is written even when its value is zero
//! (so `replicas: 0` survives), absent keys and `null` are not written, and JSON keys the schema
//! does not know are ignored, as Go's decoder ignores them.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::{Map, Value};

use super::schema::{msg, Field, Kind, Msg, Special};
use super::special::{parse_duration, parse_time};
use super::wire::{put_bytes, put_int, put_tag, put_varint, VARINT};
use super::{ProtobufError, MAX_DEPTH};

/// Appends the encoding of `value` as message `index` to `out` (without a tag or length).
pub(super) fn message(
    value: &Value,
    index: u16,
    depth: usize,
    out: &mut Vec<u8>,
) -> Result<(), ProtobufError> {
    if depth > MAX_DEPTH {
        return Err(ProtobufError::TooDeep(MAX_DEPTH));
    }
    let m = msg(index);
    match m.special {
        Special::None => match value {
            Value::Object(obj) => object(obj, m, depth, out),
            other => Err(invalid(
                m.name,
                &format!("expected an object, got {}", json_type(other)),
            )),
        },
        special => special_value(value, m, special, out),
    }
}

fn object(
    obj: &Map<String, Value>,
    m: &'static Msg,
    depth: usize,
    out: &mut Vec<u8>,
) -> Result<(), ProtobufError> {
    for field in m.fields {
        if field.inline() {
            if let Kind::Msg(sub) = field.kind {
                // Go always writes an embedded struct; its members come from this same object.
                let mut buf = Vec::new();
                object_of(obj, sub, depth + 1, &mut buf)?;
                put_bytes(out, field.num, &buf);
            }
            continue;
        }
        let Some(value) = obj.get(field.json) else {
            continue;
        };
        if value.is_null() {
            continue;
        }
        let name = || format!("{}.{}", m.name, field.json);
        match field.kind {
            Kind::MapStr | Kind::MapBytes | Kind::MapMsg(_) => {
                let Value::Object(map) = value else {
                    return Err(invalid(&name(), "expected an object"));
                };
                // serde_json's map is ordered by key, which is also the order Go writes maps.
                for (key, v) in map {
                    let mut entry = Vec::new();
                    put_bytes(&mut entry, 1, key.as_bytes());
                    match field.kind {
                        Kind::MapStr => put_bytes(&mut entry, 2, string(v, &name)?.as_bytes()),
                        Kind::MapBytes => put_bytes(&mut entry, 2, &base64(v, &name)?),
                        Kind::MapMsg(sub) => {
                            let mut buf = Vec::new();
                            message(v, sub, depth + 1, &mut buf)?;
                            put_bytes(&mut entry, 2, &buf);
                        }
                        _ => {}
                    }
                    put_bytes(out, field.num, &entry);
                }
            }
            _ if field.repeated() => {
                let Value::Array(items) = value else {
                    return Err(invalid(&name(), "expected a list"));
                };
                // Kubernetes' proto2 schema uses unpacked repeated scalars.
                for item in items {
                    single(item, field, &name, depth, out)?;
                }
            }
            _ => single(value, field, &name, depth, out)?,
        }
    }
    Ok(())
}

/// Encodes the members of an inline-embedded message from the parent's object.
fn object_of(
    obj: &Map<String, Value>,
    index: u16,
    depth: usize,
    out: &mut Vec<u8>,
) -> Result<(), ProtobufError> {
    if depth > MAX_DEPTH {
        return Err(ProtobufError::TooDeep(MAX_DEPTH));
    }
    object(obj, msg(index), depth, out)
}

/// Writes one tagged value of a non-map field.
fn single(
    value: &Value,
    field: &Field,
    name: &dyn Fn() -> String,
    depth: usize,
    out: &mut Vec<u8>,
) -> Result<(), ProtobufError> {
    match field.kind {
        Kind::Str => put_bytes(out, field.num, string(value, name)?.as_bytes()),
        Kind::Bytes => put_bytes(out, field.num, &base64(value, name)?),
        Kind::Bool => {
            let b = value
                .as_bool()
                .ok_or_else(|| invalid(&name(), "expected true or false"))?;
            put_tag(out, field.num, VARINT);
            put_varint(out, u64::from(b));
        }
        Kind::I32 => {
            let n = integer(value, name)?;
            let n = i32::try_from(n).map_err(|_| invalid(&name(), "out of range for int32"))?;
            put_int(out, field.num, i64::from(n));
        }
        Kind::I64 => put_int(out, field.num, integer(value, name)?),
        Kind::Msg(sub) => {
            let mut buf = Vec::new();
            message(value, sub, depth + 1, &mut buf)?;
            put_bytes(out, field.num, &buf);
        }
        // Maps are handled by `object` before this point.
        Kind::MapStr | Kind::MapBytes | Kind::MapMsg(_) => {}
    }
    Ok(())
}

fn string<'a>(value: &'a Value, name: &dyn Fn() -> String) -> Result<&'a str, ProtobufError> {
    value.as_str().ok_or_else(|| {
        invalid(
            &name(),
            &format!("expected a string, got {}", json_type(value)),
        )
    })
}

fn base64(value: &Value, name: &dyn Fn() -> String) -> Result<Vec<u8>, ProtobufError> {
    BASE64
        .decode(string(value, name)?)
        .map_err(|e| invalid(&name(), &format!("invalid base64: {e}")))
}

/// An integer JSON number.  Whole floats such as `3.0` are accepted, as Go accepts them.
fn integer(value: &Value, name: &dyn Fn() -> String) -> Result<i64, ProtobufError> {
    if let Some(n) = value.as_i64() {
        return Ok(n);
    }
    match value.as_f64() {
        Some(f) if f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64 => Ok(f as i64),
        _ => Err(invalid(
            &name(),
            &format!("expected an integer, got {}", json_type(value)),
        )),
    }
}

fn invalid(field: &str, reason: &str) -> ProtobufError {
    ProtobufError::InvalidValue {
        field: field.to_owned(),
        reason: reason.to_owned(),
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn special_value(
    value: &Value,
    m: &Msg,
    special: Special,
    out: &mut Vec<u8>,
) -> Result<(), ProtobufError> {
    let name = || m.name.to_owned();
    match special {
        Special::Time | Special::MicroTime => {
            if value.is_null() {
                return Ok(());
            }
            let (seconds, nanos) = parse_time(string(value, &name)?)
                .ok_or_else(|| invalid(m.name, "expected an RFC 3339 timestamp"))?;
            put_int(out, 1, seconds);
            // Go's Time carries whole seconds over protobuf; MicroTime keeps the fraction.
            put_int(
                out,
                2,
                if special == Special::Time {
                    0
                } else {
                    i64::from(nanos)
                },
            );
        }
        Special::Duration => {
            let nanos = parse_duration(string(value, &name)?)
                .ok_or_else(|| invalid(m.name, "expected a Go duration such as \"1m30s\""))?;
            put_int(out, 1, nanos);
        }
        Special::IntOrString => match value {
            // Go writes all three fields: type, intVal, strVal.
            Value::String(s) => {
                put_int(out, 1, 1);
                put_int(out, 2, 0);
                put_bytes(out, 3, s.as_bytes());
            }
            _ => {
                let n = integer(value, &name)?;
                let n = i32::try_from(n).map_err(|_| invalid(m.name, "out of range for int32"))?;
                put_int(out, 1, 0);
                put_int(out, 2, i64::from(n));
                put_bytes(out, 3, b"");
            }
        },
        Special::Quantity => {
            // Go's Quantity also accepts a bare JSON number.
            let text = match value {
                Value::Number(n) => n.to_string(),
                other => string(other, &name)?.to_owned(),
            };
            put_bytes(out, 1, text.as_bytes());
        }
        Special::RawExtension | Special::FieldsV1 => {
            if !value.is_null() {
                let raw = serde_json::to_vec(value)
                    .map_err(|e| invalid(m.name, &format!("cannot serialize: {e}")))?;
                put_bytes(out, 1, &raw);
            }
        }
        Special::StringList => {
            let Value::Array(items) = value else {
                return Err(invalid(m.name, "expected a list of strings"));
            };
            for item in items {
                put_bytes(out, 1, string(item, &name)?.as_bytes());
            }
        }
        Special::None => {}
    }
    Ok(())
}
