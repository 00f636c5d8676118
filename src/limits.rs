//! Admission limits for reading untrusted bundles.
//!
//! Every limit is checked from sizes and counts before the bytes are read or
//! parsed, so a hostile bundle cannot make the reader allocate memory in
//! proportion to what it claims. The defaults are far above what real long
//! sessions produce.

/// Sizes, counts and depths a reader accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limits {
    /// Largest single record: one `trace.jsonl` line or one payload file.
    pub max_record_bytes: u64,
    /// Largest total of bytes read from one bundle.
    pub max_bundle_bytes: u64,
    /// Most events in one `trace.jsonl`.
    pub max_events: u64,
    /// Most distinct payloads one bundle may reference.
    pub max_payloads: u64,
    /// Deepest nesting of arrays and objects in any JSON document.
    /// serde_json itself stops at 128 levels, so values above that have no
    /// further effect.
    pub max_json_depth: u32,
}

impl Limits {
    pub const DEFAULT: Limits = Limits {
        max_record_bytes: 1 << 30,  // 1 GiB
        max_bundle_bytes: 64 << 30, // 64 GiB
        max_events: 50_000_000,
        max_payloads: 50_000_000,
        max_json_depth: 128,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// True when the JSON text nests arrays/objects deeper than `max_depth`.
/// A byte scan that skips strings; it never builds anything.
pub fn json_depth_exceeds(bytes: &[u8], max_depth: u32) -> bool {
    let mut depth: u32 = 0;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max_depth {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::json_depth_exceeds;

    #[test]
    fn depth_scan_ignores_brackets_in_strings() {
        assert!(!json_depth_exceeds(br#"{"a":[[1]]}"#, 3));
        assert!(json_depth_exceeds(br#"{"a":[[1]]}"#, 2));
        assert!(!json_depth_exceeds(br#"{"a":"[[[[[\"[["}"#, 1));
        let deep = "[".repeat(100_000);
        assert!(json_depth_exceeds(deep.as_bytes(), 128));
    }
}
