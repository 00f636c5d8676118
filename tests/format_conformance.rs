//! The format types against the reference's own files: every event line,
//! manifest and expected `state.json` of the conformance cases parses and
//! re-serializes to the identical bytes.
//!
//! The cases live in the shared directory beside the repository
//! (`../shared`), or wherever `ROLLOUT_TRACE_SHARED` points. A clone without
//! them skips these tests with a note.

mod common;

use rollout_trace::format::{Manifest, RawTraceEvent, EVENT_LOG_FILE, MANIFEST_FILE};
use rollout_trace::json::{to_compact_string, to_pretty_string};
use rollout_trace::RolloutTrace;

/// Collects every mismatch before failing, so one run shows them all.
#[derive(Default)]
struct Mismatches(Vec<String>);

impl Mismatches {
    fn check(&mut self, what: String, expected: &str, actual: Result<String, String>) {
        match actual {
            Ok(actual) if actual == expected => {}
            Ok(actual) => {
                self.0.push(format!("{what}: re-serialized differently\n  expected {expected}\n  actual   {actual}"))
            }
            Err(err) => self.0.push(format!("{what}: {err}")),
        }
    }

    fn assert_none(self) {
        assert!(self.0.is_empty(), "{} mismatches:\n{}", self.0.len(), self.0.join("\n"));
    }
}

#[test]
fn every_event_line_round_trips_byte_for_byte() {
    let Some(cases) = common::conformance_cases() else { return };
    let mut mismatches = Mismatches::default();
    let mut lines_checked = 0;
    for case in &cases {
        let log = std::fs::read_to_string(case.bundle().join(EVENT_LOG_FILE)).unwrap();
        for (index, line) in log.split('\n').enumerate() {
            // The reader strips one `\r` before `\n` and skips blank lines.
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.trim().is_empty() {
                continue;
            }
            lines_checked += 1;
            let parsed = serde_json::from_str::<RawTraceEvent>(line).map_err(|err| err.to_string());
            mismatches.check(
                format!("{} line {}", case.name, index + 1),
                line,
                parsed.map(|event| to_compact_string(&event)),
            );
        }
    }
    mismatches.assert_none();
    assert!(lines_checked > 0);
}

#[test]
fn every_manifest_round_trips_byte_for_byte() {
    let Some(cases) = common::conformance_cases() else { return };
    let mut mismatches = Mismatches::default();
    for case in &cases {
        let text = std::fs::read_to_string(case.bundle().join(MANIFEST_FILE)).unwrap();
        let parsed = serde_json::from_str::<Manifest>(&text).map_err(|err| err.to_string());
        mismatches.check(format!("{} manifest", case.name), &text, parsed.map(|manifest| to_pretty_string(&manifest)));
    }
    mismatches.assert_none();
}

#[test]
fn every_expected_state_round_trips_byte_for_byte() {
    let Some(cases) = common::conformance_cases() else { return };
    let mut mismatches = Mismatches::default();
    let mut states_checked = 0;
    for case in &cases {
        let Some(text) = case.expected_state() else { continue };
        states_checked += 1;
        let parsed = RolloutTrace::from_json(text.as_bytes()).map_err(|err| err.to_string());
        mismatches.check(format!("{} expected.json", case.name), &text, parsed.map(|state| state.to_json()));
    }
    mismatches.assert_none();
    assert!(states_checked > 0);
}
