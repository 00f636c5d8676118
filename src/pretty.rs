//! Pretty JSON into a byte buffer: byte for byte what `serde_json` 1.0.149
//! writes with its two-space `PrettyFormatter`, with two differences that
//! only change speed:
//!
//! * serialization can start at any depth, so that pieces of one document
//!   (the entries of a big map) are serialized separately, on several
//!   threads, and concatenated;
//! * strings are scanned for characters to escape sixteen bytes at a time
//!   instead of one, and indentation is one copy, not one write per level.
//!
//! Everything else is delegated or mirrored exactly: numbers are formatted by
//! `serde_json`'s own `Formatter` methods, `serde_json::Number` (with
//! `arbitrary_precision`) and `RawValue` are written raw as `serde_json`
//! does, and the tests compare with `serde_json::to_writer_pretty` on every
//! shape `serde` can produce.

use serde::ser::{self, Impossible, Serialize};
use serde_json::ser::{CompactFormatter, Formatter};
use serde_json::Error;

/// The struct name through which `serde_json::Number` serializes its digits
/// under `arbitrary_precision`.
const NUMBER_TOKEN: &str = "$serde_json::private::Number";
/// The struct name through which `serde_json::value::RawValue` serializes
/// its text.
const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";

/// Appends `value` as pretty JSON to `out`, as `serde_json` would write it
/// at `depth` levels of nesting (0 for a whole document).
pub fn write_pretty<T: Serialize + ?Sized>(out: &mut Vec<u8>, depth: usize, value: &T) -> Result<(), Error> {
    value.serialize(&mut PrettySerializer { out, depth })
}

/// Appends `\n` and the indentation of `depth` levels.
pub fn write_newline_indent(out: &mut Vec<u8>, depth: usize) {
    const SPACES: &[u8; 64] = b"                                                                ";
    out.push(b'\n');
    let mut width = depth * 2;
    while width > 0 {
        let run = width.min(SPACES.len());
        out.extend_from_slice(&SPACES[..run]);
        width -= run;
    }
}

/// Appends `value` as a JSON string (quoted, escaped as `serde_json` does:
/// `\"`, `\\`, `\b \t \n \f \r`, other control characters as `\u00XX`;
/// everything else, `/` and DEL included, as is).
pub fn write_escaped_str(out: &mut Vec<u8>, value: &str) {
    let bytes = value.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    // `bytes[copied..]` is not in `out` yet.
    let mut copied = 0;
    while let Some(index) = find_escape(bytes, copied) {
        out.extend_from_slice(&bytes[copied..index]);
        write_escape(out, bytes[index]);
        copied = index + 1;
    }
    out.extend_from_slice(&bytes[copied..]);
    out.push(b'"');
}

/// The first byte at or after `at` that must be escaped, sixteen then
/// eight bytes at a time.
#[inline]
fn find_escape(bytes: &[u8], mut at: usize) -> Option<usize> {
    let word_at = |at: usize| {
        let word = &bytes[at..at + 8];
        u64::from_le_bytes([word[0], word[1], word[2], word[3], word[4], word[5], word[6], word[7]])
    };
    while at + 16 <= bytes.len() {
        let (low, high) = (escape_lanes(word_at(at)), escape_lanes(word_at(at + 8)));
        if low | high != 0 {
            let (lanes, base) = if low != 0 { (low, at) } else { (high, at + 8) };
            return Some(base + (lanes.trailing_zeros() / 8) as usize);
        }
        at += 16;
    }
    while at < bytes.len() {
        let word = if at + 8 <= bytes.len() {
            word_at(at)
        } else {
            // The tail, padded with spaces (never escaped).
            let mut word = [b' '; 8];
            word[..bytes.len() - at].copy_from_slice(&bytes[at..]);
            u64::from_le_bytes(word)
        };
        let lanes = escape_lanes(word);
        if lanes != 0 {
            return Some(at + (lanes.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    None
}

/// The high bit of each byte of `word` (little-endian lanes) that is below
/// 0x20, `"` or `\\`, from the classic "has a byte less than n" and "has a
/// zero byte" word tricks. Lanes above the first match may be set wrongly
/// (a borrow runs into them), so only the lowest set lane is to be used: it
/// is exactly the first byte to escape, and the result is 0 exactly when no
/// byte is.
#[inline]
fn escape_lanes(word: u64) -> u64 {
    const LOW_BITS: u64 = 0x0101_0101_0101_0101;
    const HIGH_BITS: u64 = 0x8080_8080_8080_8080;
    let below_space = word.wrapping_sub(LOW_BITS * 0x20) & !word;
    let quote = word ^ (LOW_BITS * u64::from(b'"'));
    let backslash = word ^ (LOW_BITS * u64::from(b'\\'));
    let is_quote = quote.wrapping_sub(LOW_BITS) & !quote;
    let is_backslash = backslash.wrapping_sub(LOW_BITS) & !backslash;
    (below_space | is_quote | is_backslash) & HIGH_BITS
}

/// The escape sequence of a byte that needs one.
#[inline]
fn write_escape(out: &mut Vec<u8>, byte: u8) {
    let short = match byte {
        b'"' => b'"',
        b'\\' => b'\\',
        0x08 => b'b',
        b'\t' => b't',
        b'\n' => b'n',
        0x0c => b'f',
        b'\r' => b'r',
        _ => {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 0xf)],
            ]);
            return;
        }
    };
    out.extend_from_slice(&[b'\\', short]);
}

/// `serde_json::Serializer` with `PrettyFormatter`, writing into a `Vec`.
struct PrettySerializer<'a> {
    out: &'a mut Vec<u8>,
    /// `PrettyFormatter::current_indent`: open containers around the value.
    depth: usize,
}

impl PrettySerializer<'_> {
    /// `serde_json` writes numbers through its `Formatter`'s defaults
    /// (itoa, its float formatter); we call the same methods.
    fn formatted(&mut self, write: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> Result<(), Error> {
        write(self.out).map_err(Error::io)
    }

    fn open(&mut self, bracket: u8, len: Option<usize>) -> State {
        self.out.push(bracket);
        if len == Some(0) {
            self.out.push(if bracket == b'{' { b'}' } else { b']' });
            State::Empty
        } else {
            self.depth += 1;
            State::First
        }
    }

    /// `{"variant": ` of an externally tagged variant.
    fn open_variant(&mut self, variant: &str) {
        self.out.push(b'{');
        self.depth += 1;
        write_newline_indent(self.out, self.depth);
        write_escaped_str(self.out, variant);
        self.out.extend_from_slice(b": ");
    }

    /// The closing `}` of `open_variant`.
    fn close_variant(&mut self) {
        self.depth -= 1;
        write_newline_indent(self.out, self.depth);
        self.out.push(b'}');
    }
}

/// Where a container is: closed at once (length 0), before its first
/// element, after one; or the struct through which a `Number` or
/// `RawValue` passes its text.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Empty,
    First,
    Rest,
    Number,
    RawValue,
}

struct Compound<'s, 'a> {
    ser: &'s mut PrettySerializer<'a>,
    state: State,
}

impl<'s, 'a> Compound<'s, 'a> {
    /// Separator and indentation before an element or a key.
    fn begin_element(&mut self) {
        let separator: &[u8] = if self.state == State::First { b"" } else { b"," };
        self.ser.out.extend_from_slice(separator);
        write_newline_indent(self.ser.out, self.ser.depth);
        self.state = State::Rest;
    }

    /// Writes the closing bracket; returns the serializer for the `}` of a
    /// variant around the container.
    fn close(self, bracket: u8) -> &'s mut PrettySerializer<'a> {
        // `Empty` was closed when opened.
        if self.state != State::Empty {
            self.ser.depth -= 1;
            if self.state == State::Rest {
                write_newline_indent(self.ser.out, self.ser.depth);
            }
            self.ser.out.push(bracket);
        }
        self.ser
    }

    fn entry<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<(), Error> {
        self.begin_element();
        write_escaped_str(self.ser.out, key);
        self.ser.out.extend_from_slice(b": ");
        value.serialize(&mut *self.ser)
    }
}

impl<'s, 'a> ser::Serializer for &'s mut PrettySerializer<'a> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Compound<'s, 'a>;
    type SerializeTuple = Compound<'s, 'a>;
    type SerializeTupleStruct = Compound<'s, 'a>;
    type SerializeTupleVariant = Compound<'s, 'a>;
    type SerializeMap = Compound<'s, 'a>;
    type SerializeStruct = Compound<'s, 'a>;
    type SerializeStructVariant = Compound<'s, 'a>;

    fn serialize_bool(self, value: bool) -> Result<(), Error> {
        self.formatted(|out| CompactFormatter.write_bool(out, value))
    }
    fn serialize_i8(self, value: i8) -> Result<(), Error> {
        self.formatted(|out| CompactFormatter.write_i8(out, value))
    }
    fn serialize_i16(self, value: i16) -> Result<(), Error> {
        self.formatted(|out| CompactFormatter.write_i16(out, value))
    }
    fn serialize_i32(self, value: i32) -> Result<(), Error> {
        self.formatted(|out| CompactFormatter.write_i32(out, value))
    }
    fn serialize_i64(self, value: i64) -> Result<(), Error> {
        self.formatted(|out| CompactFormatter.write_i64(out, value))
    }
    fn serialize_i128(self, value: i128) -> Result<(), Error> {
        self.formatted(|out| CompactFormatter.write_i128(out, value))
    }
    fn serialize_u8(self, value: u8) -> Result<(), Error> {
        self.formatted(|out| CompactFormatter.write_u8(out, value))
    }
    fn serialize_u16(self, value: u16) -> Result<(), Error> {
        self.formatted(|out| CompactFormatter.write_u16(out, value))
    }
    fn serialize_u32(self, value: u32) -> Result<(), Error> {
        self.formatted(|out| CompactFormatter.write_u32(out, value))
    }
    fn serialize_u64(self, value: u64) -> Result<(), Error> {
        self.formatted(|out| CompactFormatter.write_u64(out, value))
    }
    fn serialize_u128(self, value: u128) -> Result<(), Error> {
        self.formatted(|out| CompactFormatter.write_u128(out, value))
    }
    fn serialize_f32(self, value: f32) -> Result<(), Error> {
        if value.is_finite() {
            self.formatted(|out| CompactFormatter.write_f32(out, value))
        } else {
            self.serialize_unit()
        }
    }
    fn serialize_f64(self, value: f64) -> Result<(), Error> {
        if value.is_finite() {
            self.formatted(|out| CompactFormatter.write_f64(out, value))
        } else {
            self.serialize_unit()
        }
    }
    fn serialize_char(self, value: char) -> Result<(), Error> {
        self.serialize_str(value.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, value: &str) -> Result<(), Error> {
        write_escaped_str(self.out, value);
        Ok(())
    }
    fn serialize_bytes(self, value: &[u8]) -> Result<(), Error> {
        use ser::SerializeSeq;
        let mut seq = self.serialize_seq(Some(value.len()))?;
        for byte in value {
            seq.serialize_element(byte)?;
        }
        seq.end()
    }
    fn serialize_none(self) -> Result<(), Error> {
        self.serialize_unit()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Error> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(self, _name: &'static str, _index: u32, variant: &'static str) -> Result<(), Error> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _name: &'static str, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.open_variant(variant);
        value.serialize(&mut *self)?;
        self.close_variant();
        Ok(())
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Self::SerializeSeq, Error> {
        let state = self.open(b'[', len);
        Ok(Compound { ser: self, state })
    }
    fn serialize_tuple(self, len: usize) -> Result<Self::SerializeTuple, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<Self::SerializeTupleStruct, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        self.open_variant(variant);
        self.serialize_seq(Some(len))
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Self::SerializeMap, Error> {
        let state = self.open(b'{', len);
        Ok(Compound { ser: self, state })
    }
    fn serialize_struct(self, name: &'static str, len: usize) -> Result<Self::SerializeStruct, Error> {
        match name {
            NUMBER_TOKEN => Ok(Compound { ser: self, state: State::Number }),
            RAW_VALUE_TOKEN => Ok(Compound { ser: self, state: State::RawValue }),
            _ => self.serialize_map(Some(len)),
        }
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        self.open_variant(variant);
        self.serialize_map(Some(len))
    }
}

impl ser::SerializeSeq for Compound<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.begin_element();
        value.serialize(&mut *self.ser)
    }
    fn end(self) -> Result<(), Error> {
        self.close(b']');
        Ok(())
    }
}

impl ser::SerializeTuple for Compound<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Result<(), Error> {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeTupleStruct for Compound<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Result<(), Error> {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeTupleVariant for Compound<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Result<(), Error> {
        self.close(b']').close_variant();
        Ok(())
    }
}

impl ser::SerializeMap for Compound<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.begin_element();
        key.serialize(MapKeySerializer { out: self.ser.out })
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.ser.out.extend_from_slice(b": ");
        value.serialize(&mut *self.ser)
    }
    fn end(self) -> Result<(), Error> {
        self.close(b'}');
        Ok(())
    }
}

impl ser::SerializeStruct for Compound<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), Error> {
        match self.state {
            State::Number if key == NUMBER_TOKEN => value.serialize(RawTextEmitter { out: self.ser.out }),
            State::RawValue if key == RAW_VALUE_TOKEN => value.serialize(RawTextEmitter { out: self.ser.out }),
            State::Number | State::RawValue => Err(ser::Error::custom("invalid number or raw value")),
            _ => self.entry(key, value),
        }
    }
    fn end(self) -> Result<(), Error> {
        if matches!(self.state, State::Number | State::RawValue) {
            return Ok(());
        }
        self.close(b'}');
        Ok(())
    }
}

impl ser::SerializeStructVariant for Compound<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), Error> {
        self.entry(key, value)
    }
    fn end(self) -> Result<(), Error> {
        self.close(b'}').close_variant();
        Ok(())
    }
}

fn key_must_be_a_string() -> Error {
    ser::Error::custom("key must be a string")
}

/// `serde_json`'s map key serializer: strings as strings, numbers and
/// booleans quoted, anything else an error.
struct MapKeySerializer<'a> {
    out: &'a mut Vec<u8>,
}

impl MapKeySerializer<'_> {
    fn quoted(self, write: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> Result<(), Error> {
        self.out.push(b'"');
        write(self.out).map_err(Error::io)?;
        self.out.push(b'"');
        Ok(())
    }
}

impl ser::Serializer for MapKeySerializer<'_> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Impossible<(), Error>;
    type SerializeTuple = Impossible<(), Error>;
    type SerializeTupleStruct = Impossible<(), Error>;
    type SerializeTupleVariant = Impossible<(), Error>;
    type SerializeMap = Impossible<(), Error>;
    type SerializeStruct = Impossible<(), Error>;
    type SerializeStructVariant = Impossible<(), Error>;

    fn serialize_str(self, value: &str) -> Result<(), Error> {
        write_escaped_str(self.out, value);
        Ok(())
    }
    fn serialize_char(self, value: char) -> Result<(), Error> {
        self.serialize_str(value.encode_utf8(&mut [0; 4]))
    }
    fn serialize_unit_variant(self, _name: &'static str, _index: u32, variant: &'static str) -> Result<(), Error> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _name: &'static str, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_bool(self, value: bool) -> Result<(), Error> {
        self.quoted(|out| CompactFormatter.write_bool(out, value))
    }
    fn serialize_i8(self, value: i8) -> Result<(), Error> {
        self.quoted(|out| CompactFormatter.write_i8(out, value))
    }
    fn serialize_i16(self, value: i16) -> Result<(), Error> {
        self.quoted(|out| CompactFormatter.write_i16(out, value))
    }
    fn serialize_i32(self, value: i32) -> Result<(), Error> {
        self.quoted(|out| CompactFormatter.write_i32(out, value))
    }
    fn serialize_i64(self, value: i64) -> Result<(), Error> {
        self.quoted(|out| CompactFormatter.write_i64(out, value))
    }
    fn serialize_i128(self, value: i128) -> Result<(), Error> {
        self.quoted(|out| CompactFormatter.write_i128(out, value))
    }
    fn serialize_u8(self, value: u8) -> Result<(), Error> {
        self.quoted(|out| CompactFormatter.write_u8(out, value))
    }
    fn serialize_u16(self, value: u16) -> Result<(), Error> {
        self.quoted(|out| CompactFormatter.write_u16(out, value))
    }
    fn serialize_u32(self, value: u32) -> Result<(), Error> {
        self.quoted(|out| CompactFormatter.write_u32(out, value))
    }
    fn serialize_u64(self, value: u64) -> Result<(), Error> {
        self.quoted(|out| CompactFormatter.write_u64(out, value))
    }
    fn serialize_u128(self, value: u128) -> Result<(), Error> {
        self.quoted(|out| CompactFormatter.write_u128(out, value))
    }
    fn serialize_f32(self, value: f32) -> Result<(), Error> {
        if !value.is_finite() {
            return Err(ser::Error::custom("float key must be finite"));
        }
        self.quoted(|out| CompactFormatter.write_f32(out, value))
    }
    fn serialize_f64(self, value: f64) -> Result<(), Error> {
        if !value.is_finite() {
            return Err(ser::Error::custom("float key must be finite"));
        }
        self.quoted(|out| CompactFormatter.write_f64(out, value))
    }
    fn serialize_bytes(self, _value: &[u8]) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_none(self) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_unit(self) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_tuple_struct(self, _name: &'static str, _len: usize) -> Result<Self::SerializeTupleStruct, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Self::SerializeStruct, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Err(key_must_be_a_string())
    }
}

/// Writes the text inside a `Number` or `RawValue` as is, like
/// `serde_json`'s `write_number_str` and `write_raw_fragment`; they pass it
/// as a string, so anything else is an error.
struct RawTextEmitter<'a> {
    out: &'a mut Vec<u8>,
}

fn expected_raw_text() -> Error {
    ser::Error::custom("expected the text of a number or raw value")
}

impl ser::Serializer for RawTextEmitter<'_> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Impossible<(), Error>;
    type SerializeTuple = Impossible<(), Error>;
    type SerializeTupleStruct = Impossible<(), Error>;
    type SerializeTupleVariant = Impossible<(), Error>;
    type SerializeMap = Impossible<(), Error>;
    type SerializeStruct = Impossible<(), Error>;
    type SerializeStructVariant = Impossible<(), Error>;

    fn serialize_str(self, value: &str) -> Result<(), Error> {
        self.out.extend_from_slice(value.as_bytes());
        Ok(())
    }
    fn serialize_bool(self, _value: bool) -> Result<(), Error> {
        Err(expected_raw_text())
    }
    fn serialize_i8(self, _value: i8) -> Result<(), Error> {
        Err(expected_raw_text())
    }
    fn serialize_i16(self, _value: i16) -> Result<(), Error> {
        Err(expected_raw_text())
    }
    fn serialize_i32(self, _value: i32) -> Result<(), Error> {
        Err(expected_raw_text())
    }
    fn serialize_i64(self, _value: i64) -> Result<(), Error> {
        Err(expected_raw_text())
    }
    fn serialize_i128(self, _value: i128) -> Result<(), Error> {
        Err(expected_raw_text())
    }
    fn serialize_u8(self, _value: u8) -> Result<(), Error> {
        Err(expected_raw_text())
    }
    fn serialize_u16(self, _value: u16) -> Result<(), Error> {
        Err(expected_raw_text())
    }
    fn serialize_u32(self, _value: u32) -> Result<(), Error> {
        Err(expected_raw_text())
    }
    fn serialize_u64(self, _value: u64) -> Result<(), Error> {
        Err(expected_raw_text())
    }
    fn serialize_u128(self, _value: u128) -> Result<(), Error> {
        Err(expected_raw_text())
    }
    fn serialize_f32(self, _value: f32) -> Result<(), Error> {
        Err(expected_raw_text())
    }
    fn serialize_f64(self, _value: f64) -> Result<(), Error> {
        Err(expected_raw_text())
    }
    fn serialize_char(self, _value: char) -> Result<(), Error> {
        Err(expected_raw_text())
    }
    fn serialize_bytes(self, _value: &[u8]) -> Result<(), Error> {
        Err(expected_raw_text())
    }
    fn serialize_none(self) -> Result<(), Error> {
        Err(expected_raw_text())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _value: &T) -> Result<(), Error> {
        Err(expected_raw_text())
    }
    fn serialize_unit(self) -> Result<(), Error> {
        Err(expected_raw_text())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
        Err(expected_raw_text())
    }
    fn serialize_unit_variant(self, _name: &'static str, _index: u32, _variant: &'static str) -> Result<(), Error> {
        Err(expected_raw_text())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _name: &'static str, _value: &T) -> Result<(), Error> {
        Err(expected_raw_text())
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<(), Error> {
        Err(expected_raw_text())
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, Error> {
        Err(expected_raw_text())
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, Error> {
        Err(expected_raw_text())
    }
    fn serialize_tuple_struct(self, _name: &'static str, _len: usize) -> Result<Self::SerializeTupleStruct, Error> {
        Err(expected_raw_text())
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        Err(expected_raw_text())
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, Error> {
        Err(expected_raw_text())
    }
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Self::SerializeStruct, Error> {
        Err(expected_raw_text())
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Err(expected_raw_text())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Serialize;
    use serde_json::value::RawValue;
    use serde_json::{Number, Value};

    use super::*;

    /// The oracle: what `serde_json::to_writer_pretty` writes.
    fn oracle<T: Serialize + ?Sized>(value: &T) -> String {
        let mut out = Vec::new();
        serde_json::to_writer_pretty(&mut out, value).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn ours<T: Serialize + ?Sized>(value: &T) -> String {
        let mut out = Vec::new();
        write_pretty(&mut out, 0, value).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[track_caller]
    fn check<T: Serialize + ?Sized>(value: &T) {
        assert_eq!(ours(value), oracle(value));
        // Started two levels down, the text is what `serde_json` writes for
        // the same value inside two arrays.
        let mut nested = b"[\n  [\n    ".to_vec();
        write_pretty(&mut nested, 2, value).unwrap();
        nested.extend_from_slice(b"\n  ]\n]");
        assert_eq!(String::from_utf8(nested).unwrap(), oracle(&[[value]]));
    }

    /// A small deterministic generator (xorshift64*), enough for fuzzing.
    struct Random(u64);

    impl Random {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Characters around every escaping boundary, one to four UTF-8 bytes.
    const INTERESTING: [char; 24] = [
        '\0', '\u{1}', '\u{8}', '\t', '\n', '\u{b}', '\u{c}', '\r', '\u{1f}', ' ', '!', '"', '#', '/', '[', '\\', ']',
        'a', '\u{7f}', '\u{80}', 'é', '\u{2028}', '\u{ffff}', '😀',
    ];

    #[test]
    fn every_ascii_byte_is_escaped_like_serde_json_at_every_lane() {
        // Length 40: two 16-byte blocks and a full word; 45: and a padded
        // tail. Every position of every block, word and tail.
        for len in [40, 45] {
            for byte in 0..=0x7fu8 {
                for before in 0..len {
                    let byte = char::from(byte);
                    check(&format!("{}{byte}{}", "a".repeat(before), "b".repeat(len - 1 - before)));
                }
            }
        }
        for byte in 0..=0x7fu8 {
            // Two in a row, across block and word boundaries too.
            for before in [6, 7, 14, 15, 22, 23] {
                check(&format!("{}{}{}", "x".repeat(before), char::from(byte), char::from(byte)));
            }
        }
        for text in ["", "\"", "\\", "\u{7f}", "/", "😀😀😀", "\u{0}\u{1f}\u{20}", "ab\"cd\\ef\ngh\u{1}ijklmnop\r\t"]
        {
            check(text);
        }
    }

    #[test]
    fn random_strings_match_serde_json() {
        let mut random = Random(0x9e37_79b9_7f4a_7c15);
        for _ in 0..20_000 {
            let len = random.below(80);
            let text: String = (0..len)
                .map(|_| if random.below(3) == 0 { INTERESTING[random.below(INTERESTING.len())] } else { 'q' })
                .collect();
            check(&text);
        }
    }

    #[test]
    fn the_word_test_finds_the_first_byte_to_escape() {
        let first = |word: u64| word.to_le_bytes().iter().position(|&b| b < 0x20 || b == b'"' || b == b'\\');
        let lanes = [0x00, 0x01, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x5b, 0x5c, 0x5d, 0x7f, 0x80, 0x9f, 0xa2, 0xdc, 0xff];
        let mut random = Random(7);
        for _ in 0..500_000 {
            let word = if random.below(2) == 0 {
                random.next()
            } else {
                u64::from_le_bytes(std::array::from_fn(|_| lanes[random.below(lanes.len())]))
            };
            let lanes = escape_lanes(word);
            let found = (lanes != 0).then(|| (lanes.trailing_zeros() / 8) as usize);
            assert_eq!(found, first(word), "{word:#018x}");
        }
    }

    fn random_value(random: &mut Random, depth: usize) -> Value {
        let choice = random.below(if depth > 3 { 5 } else { 8 });
        match choice {
            0 => Value::Null,
            1 => Value::Bool(random.below(2) == 0),
            2 => {
                let texts = ["0", "-0", "1.0", "1e+5", "-1e-07", "123456789012345678901234567890", "3.14159265358979"];
                Value::Number(texts[random.below(texts.len())].parse::<Number>().unwrap())
            }
            3 => Value::Number(Number::from(random.next() as i64)),
            4 => Value::String((0..random.below(12)).map(|_| INTERESTING[random.below(INTERESTING.len())]).collect()),
            5 | 6 => Value::Array((0..random.below(4)).map(|_| random_value(random, depth + 1)).collect()),
            _ => Value::Object(
                (0..random.below(4))
                    .map(|i| {
                        (
                            format!("k{i}{}", INTERESTING[random.below(INTERESTING.len())]),
                            random_value(random, depth + 1),
                        )
                    })
                    .collect(),
            ),
        }
    }

    #[test]
    fn random_values_match_serde_json() {
        let mut random = Random(42);
        for _ in 0..3_000 {
            check(&random_value(&mut random, 0));
        }
    }

    #[derive(Serialize)]
    struct Unit;

    #[derive(Serialize)]
    struct Newtype(u8);

    #[derive(Serialize)]
    struct Tuple(i32, &'static str);

    #[derive(Serialize)]
    struct Empty {}

    #[derive(Serialize)]
    enum External {
        Unit,
        Newtype(Vec<u8>),
        Tuple(u8, u8),
        EmptyTuple(),
        Struct { a: Option<i8>, b: Empty },
        EmptyStruct {},
    }

    #[derive(Serialize)]
    #[serde(tag = "type")]
    enum Internal {
        Unit,
        Struct { a: u64 },
    }

    #[derive(Serialize)]
    #[serde(tag = "type", content = "value")]
    enum Adjacent {
        Unit,
        Newtype(String),
    }

    #[derive(Serialize)]
    #[serde(untagged)]
    enum Untagged {
        Text(String),
        Pair(u8, u8),
    }

    #[derive(Serialize)]
    struct Skips {
        #[serde(skip_serializing_if = "Option::is_none")]
        only: Option<u8>,
    }

    /// `serialize_bytes`, which `Vec<u8>` does not use.
    struct Bytes(&'static [u8]);

    impl Serialize for Bytes {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.serialize_bytes(self.0)
        }
    }

    #[derive(Serialize)]
    struct Everything {
        unit: (),
        unit_struct: Unit,
        newtype: Newtype,
        tuple: Tuple,
        empty: Empty,
        externals: Vec<External>,
        internals: Vec<Internal>,
        adjacents: Vec<Adjacent>,
        untagged: Vec<Untagged>,
        skips: Vec<Skips>,
        bytes: Vec<Bytes>,
        floats: Vec<f64>,
        small_floats: Vec<f32>,
        wide: (i128, u128, i8, i16, u16, char),
        int_keys: BTreeMap<i64, bool>,
        bool_keys: BTreeMap<bool, ()>,
        char_keys: BTreeMap<char, u8>,
        unknown_length: Value,
        number: Number,
        raw: Box<RawValue>,
        empty_raw_array: Box<RawValue>,
    }

    #[test]
    fn every_serde_shape_matches_serde_json() {
        let everything = Everything {
            unit: (),
            unit_struct: Unit,
            newtype: Newtype(7),
            tuple: Tuple(-3, "t"),
            empty: Empty {},
            externals: vec![
                External::Unit,
                External::Newtype(vec![1, 2]),
                External::Newtype(vec![]),
                External::Tuple(1, 2),
                External::EmptyTuple(),
                External::Struct { a: None, b: Empty {} },
                External::EmptyStruct {},
            ],
            internals: vec![Internal::Unit, Internal::Struct { a: u64::MAX }],
            adjacents: vec![Adjacent::Unit, Adjacent::Newtype("n".into())],
            untagged: vec![Untagged::Text("u".into()), Untagged::Pair(1, 2)],
            skips: vec![Skips { only: None }, Skips { only: Some(1) }],
            bytes: vec![Bytes(b""), Bytes(b"\x00\xff")],
            floats: vec![0.0, -0.0, 1.5, 1e300, f64::NAN, f64::INFINITY, 1.0 / 3.0],
            small_floats: vec![0.1, f32::NEG_INFINITY],
            wide: (i128::MIN, u128::MAX, -8, -16, 16, '\n'),
            int_keys: [(-1, true), (2, false)].into(),
            bool_keys: [(false, ()), (true, ())].into(),
            char_keys: [('"', 1), ('é', 2)].into(),
            unknown_length: serde_json::json!({"a": [], "b": {}, "c": [[], {}], "d": [null]}),
            number: "1.10".parse().unwrap(),
            raw: RawValue::from_string("{\"raw\" : [1,\n2]}".into()).unwrap(),
            empty_raw_array: RawValue::from_string("[]".into()).unwrap(),
        };
        check(&everything);
        check(&External::Struct { a: Some(1), b: Empty {} });
        // Lengths unknown up front (an iterator without an exact size).
        struct UnsizedSeq(Vec<u8>);
        impl Serialize for UnsizedSeq {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_seq(self.0.iter().filter(|b| **b > 0))
            }
        }
        struct UnsizedMap(Vec<u8>);
        impl Serialize for UnsizedMap {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_map(self.0.iter().filter(|b| **b > 0).map(|b| (b.to_string(), b)))
            }
        }
        for items in [vec![], vec![0], vec![1, 0, 2]] {
            check(&UnsizedSeq(items.clone()));
            check(&UnsizedMap(items));
        }
    }

    #[test]
    fn keys_that_are_not_strings_fail_like_serde_json() {
        let map: BTreeMap<(u8, u8), u8> = [((1, 2), 3)].into();
        assert!(serde_json::to_vec_pretty(&map).is_err());
        assert!(write_pretty(&mut Vec::new(), 0, &map).is_err());
    }

    #[test]
    fn indentation_of_any_depth() {
        for depth in [0, 1, 31, 32, 33, 100] {
            let mut out = Vec::new();
            write_newline_indent(&mut out, depth);
            assert_eq!(out, format!("\n{}", "  ".repeat(depth)).into_bytes());
        }
    }
}
