//! JSON spelled as Python's `json.dumps(value, indent=2)`: two-space
//! indent, `": "` after keys, and every character outside printable ASCII
//! escaped (`ensure_ascii`), so `--json` output stays what it always was.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::ser::{Formatter, PrettyFormatter};

struct AsciiPretty<'a>(PrettyFormatter<'a>);

impl Formatter for AsciiPretty<'_> {
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_value(w)
    }

    fn write_string_fragment<W: ?Sized + Write>(&mut self, w: &mut W, fragment: &str) -> io::Result<()> {
        let mut start = 0;
        for (at, c) in fragment.char_indices() {
            if (' '..='~').contains(&c) {
                continue;
            }
            w.write_all(&fragment.as_bytes()[start..at])?;
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                write!(w, "\\u{unit:04x}")?;
            }
            start = at + c.len_utf8();
        }
        w.write_all(&fragment.as_bytes()[start..])
    }
}

/// `json.dumps(value, indent=2)`.
pub fn dumps<T: Serialize + ?Sized>(value: &T) -> String {
    let mut out = Vec::new();
    let mut serializer =
        serde_json::Serializer::with_formatter(&mut out, AsciiPretty(PrettyFormatter::with_indent(b"  ")));
    // Writing plain data to memory cannot fail.
    value.serialize(&mut serializer).expect("serializing plain data");
    // Only ASCII was written.
    String::from_utf8(out).expect("ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spelled_as_python() {
        #[derive(Serialize)]
        struct S {
            b: Vec<u8>,
            a: Option<String>,
            e: Vec<u8>,
            m: std::collections::BTreeMap<String, i64>,
        }
        let s = S {
            b: vec![1, 2],
            a: Some("é\u{7f}\n\"\\/😀".into()),
            e: vec![],
            m: [("x".to_string(), -1)].into_iter().collect(),
        };
        assert_eq!(
            dumps(&s),
            "{\n  \"b\": [\n    1,\n    2\n  ],\n  \"a\": \"\\u00e9\\u007f\\n\\\"\\\\/\\ud83d\\ude00\",\n  \"e\": [],\n  \"m\": {\n    \"x\": -1\n  }\n}"
        );
        assert_eq!(dumps(&Vec::<u8>::new()), "[]");
    }
}
