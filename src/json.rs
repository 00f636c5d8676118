//! JSON text exactly as the reference writes it: pretty (2-space, no
//! trailing newline) for files, compact for event lines and summaries, keys
//! of re-serialized payload fragments in the profile's order.

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::compat::KeyOrder;

/// Longest JSON summary kept in a conversation part, in bytes.
pub const SUMMARY_LIMIT_BYTES: usize = 240;

/// Pretty JSON as in `manifest.json`, payload files and `state.json`.
pub fn to_pretty_string<T: Serialize + ?Sized>(value: &T) -> String {
    // Serializing our own types and `Value` cannot fail (string keys only).
    serde_json::to_string_pretty(value).expect("serializing a JSON model cannot fail")
}

/// Compact JSON as in `trace.jsonl` lines and summaries.
pub fn to_compact_string<T: Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).expect("serializing a JSON model cannot fail")
}

/// Compact JSON of a payload fragment with its keys in `order`.
pub fn to_compact_string_in(value: &Value, order: KeyOrder) -> String {
    match order {
        // Maps keep source order (serde_json's `preserve_order`).
        KeyOrder::Source => to_compact_string(value),
        KeyOrder::Sorted => to_compact_string(&SortedKeys(value)),
    }
}

/// A summary cut at a byte that is not a character boundary. The reference
/// panics here; we fail the replay instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryCutInsideCharacter;

/// `summarize(v)` of reducer §6.10: compact, keys in `order`, cut to 240
/// bytes plus `...`.
pub fn summarize(value: &Value, order: KeyOrder) -> Result<String, SummaryCutInsideCharacter> {
    let mut text = to_compact_string_in(value, order);
    if text.len() > SUMMARY_LIMIT_BYTES {
        if !text.is_char_boundary(SUMMARY_LIMIT_BYTES) {
            return Err(SummaryCutInsideCharacter);
        }
        text.truncate(SUMMARY_LIMIT_BYTES);
        text.push_str("...");
    }
    Ok(text)
}

/// A value serialized with the keys of every object sorted byte-wise.
struct SortedKeys<'a>(&'a Value);

impl Serialize for SortedKeys<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Object(map) => {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
                let mut out = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    out.serialize_entry(key, &SortedKeys(value))?;
                }
                out.end()
            }
            Value::Array(values) => {
                let mut out = serializer.serialize_seq(Some(values.len()))?;
                for value in values {
                    out.serialize_element(&SortedKeys(value))?;
                }
                out.end()
            }
            scalar => scalar.serialize(serializer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary_of(text: &str) -> String {
        summarize(&serde_json::from_str(text).unwrap(), KeyOrder::Sorted).unwrap()
    }

    #[test]
    fn source_order_keeps_first_position_and_last_value() {
        let value: Value = serde_json::from_str(r#"{"z":1,"a":{"y":2,"b":3},"z":4}"#).unwrap();
        assert_eq!(summarize(&value, KeyOrder::Source).unwrap(), r#"{"z":4,"a":{"y":2,"b":3}}"#);
        assert_eq!(summarize(&value, KeyOrder::Sorted).unwrap(), r#"{"a":{"b":3,"y":2},"z":4}"#);
    }

    #[test]
    fn numbers_keys_and_escapes_follow_the_reference() {
        assert_eq!(
            summary_of(
                r#"{"z":1.0,"a":1e5,"big":123456789012345678901234567890,"cmd":"cargo test","u":"\u00e9\u2028\/"}"#
            ),
            "{\"a\":1e+5,\"big\":123456789012345678901234567890,\"cmd\":\"cargo test\",\"u\":\"é\u{2028}/\",\"z\":1.0}"
        );
        for (source, emitted) in [
            ("1.0", "1.0"),
            ("1.50", "1.50"),
            ("1e20", "1e+20"),
            ("1E5", "1e+5"),
            ("1E+05", "1e+05"),
            ("-1E-07", "-1e-07"),
            ("0e0", "0e+0"),
            ("-0", "0"),
            ("-0.0", "-0.0"),
            ("18446744073709551616", "18446744073709551616"),
            ("3.14159265358979323846", "3.14159265358979323846"),
            ("1e400", "1e+400"),
        ] {
            assert_eq!(summary_of(source), emitted, "{source}");
        }
        assert_eq!(summary_of(r#"{"b":"\u0001é/","a":1,"a":2}"#), "{\"a\":2,\"b\":\"\\u0001é/\"}");
    }

    #[test]
    fn long_summaries_are_cut_at_240_bytes() {
        let long = Value::String("x".repeat(300));
        let summary = summarize(&long, KeyOrder::Sorted).unwrap();
        assert_eq!(summary.len(), 243);
        assert!(summary.ends_with("x..."));
        // The cut falls inside the two-byte `é`.
        let text = format!("{}é", "x".repeat(238));
        assert_eq!(summarize(&Value::String(text), KeyOrder::Source), Err(SummaryCutInsideCharacter));
    }

    #[test]
    fn pretty_output_has_no_trailing_newline_and_compact_empties() {
        let value: Value = serde_json::from_str(r#"{"a":[],"b":{},"c":[1]}"#).unwrap();
        assert_eq!(to_pretty_string(&value), "{\n  \"a\": [],\n  \"b\": {},\n  \"c\": [\n    1\n  ]\n}");
    }
}
