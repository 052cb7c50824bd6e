//! Protobuf wire primitives: varints, tags, length-delimited payloads.
//!
//! This file owns the byte level only.  The reader never indexes out of bounds: every read is
//! checked against the remaining input and reports `Truncated`, so arbitrary bytes can be fed
//! to the decoder without panicking.

use super::ProtobufError;

pub(super) const VARINT: u8 = 0;
pub(super) const FIXED64: u8 = 1;
pub(super) const LEN: u8 = 2;
pub(super) const FIXED32: u8 = 5;

/// Human name of a wire type, for error messages.
pub(super) fn wire_name(wire: u8) -> &'static str {
    match wire {
        VARINT => "varint",
        FIXED64 => "64-bit",
        LEN => "length-delimited",
        3 => "start-group",
        4 => "end-group",
        FIXED32 => "32-bit",
        _ => "invalid",
    }
}

/// A forward-only cursor over a message's bytes.
pub(super) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn varint(&mut self) -> Result<u64, ProtobufError> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let (&byte, rest) = self.buf.split_first().ok_or(ProtobufError::Truncated)?;
            self.buf = rest;
            // The tenth byte may only contribute the top bit of a u64.
            if i == 9 && byte > 1 {
                return Err(ProtobufError::BadVarint);
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ProtobufError::BadVarint)
    }

    /// Reads a tag and returns (field number, wire type).
    pub fn tag(&mut self) -> Result<(u32, u8), ProtobufError> {
        let key = self.varint()?;
        let num = u32::try_from(key >> 3).map_err(|_| ProtobufError::BadFieldNumber)?;
        if num == 0 {
            return Err(ProtobufError::BadFieldNumber);
        }
        // The mask keeps the value below 8, so the cast cannot truncate.
        Ok((num, (key & 7) as u8))
    }

    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], ProtobufError> {
        if n > self.buf.len() {
            return Err(ProtobufError::Truncated);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    pub fn len_delimited(&mut self) -> Result<&'a [u8], ProtobufError> {
        let len = self.varint()?;
        let len = usize::try_from(len).map_err(|_| ProtobufError::Truncated)?;
        self.bytes(len)
    }

    /// Skips the value of an unknown field.  Groups (wire types 3 and 4) are a proto2 feature
    /// Kubernetes never uses, so they are rejected rather than parsed.
    pub fn skip(&mut self, wire: u8) -> Result<(), ProtobufError> {
        match wire {
            VARINT => self.varint().map(drop),
            FIXED64 => self.bytes(8).map(drop),
            LEN => self.len_delimited().map(drop),
            FIXED32 => self.bytes(4).map(drop),
            other => Err(ProtobufError::UnsupportedWireType(other)),
        }
    }
}

pub(super) fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        // Low seven bits plus the continuation flag; the mask makes the cast lossless.
        out.push((value & 0x7f) as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

pub(super) fn put_tag(out: &mut Vec<u8>, num: u32, wire: u8) {
    put_varint(out, (u64::from(num) << 3) | u64::from(wire));
}

pub(super) fn put_bytes(out: &mut Vec<u8>, num: u32, data: &[u8]) {
    put_tag(out, num, LEN);
    put_varint(out, data.len() as u64);
    out.extend_from_slice(data);
}

/// Writes a signed integer the way protobuf `int32`/`int64` do: two's complement as u64, so a
/// negative value takes ten bytes.
pub(super) fn put_int(out: &mut Vec<u8>, num: u32, value: i64) {
    put_tag(out, num, VARINT);
    put_varint(out, value as u64);
}
