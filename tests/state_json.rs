//! The state.json writer (`RolloutTrace::write_json`, `to_json`; pieces
//! serialized on several threads by `rollout_trace::state_json`) against
//! the one it replaced, `serde_json::to_writer_pretty`, kept here as the
//! oracle: the bytes must be the same for every trace, however the work is
//! split.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};

use rollout_trace::format::Manifest;
use rollout_trace::model::{ConversationPart, RolloutTrace};
use rollout_trace::state_json::{write_state_with, Settings};
use rollout_trace::{replay_bundle, ErrorKind};

fn oracle(trace: &RolloutTrace) -> Vec<u8> {
    let mut text = Vec::new();
    serde_json::to_writer_pretty(&mut text, trace).unwrap();
    text
}

/// Splits from "everything on the calling thread" to "one entry per piece
/// on more threads than cores", with windows small enough to wait often.
const SPLITS: [Settings; 4] = [
    Settings { helpers: 0, piece_bytes: 128 * 1024, window: 2 },
    Settings { helpers: 0, piece_bytes: 1, window: 1 },
    Settings { helpers: 1, piece_bytes: 1, window: 1 },
    Settings { helpers: 3, piece_bytes: 2_000, window: 4 },
];

#[track_caller]
fn assert_same_text(what: &str, ours: &[u8], expected: &[u8]) {
    if ours != expected {
        let at = ours.iter().zip(expected).position(|(a, b)| a != b).unwrap_or(ours.len().min(expected.len()));
        let around =
            |text: &[u8]| String::from_utf8_lossy(&text[at.saturating_sub(60)..(at + 60).min(text.len())]).into_owned();
        panic!(
            "{what}: differs at byte {at} (lengths {} and {}): ours {:?}, serde_json {:?}",
            ours.len(),
            expected.len(),
            around(ours),
            around(expected)
        );
    }
}

/// `write_json`, `to_json` and every split write what serde_json writes.
#[track_caller]
fn check(what: &str, trace: &RolloutTrace) {
    let expected = oracle(trace);
    let mut ours = Vec::new();
    trace.write_json(&mut ours).unwrap();
    assert_same_text(&format!("{what}, write_json"), &ours, &expected);
    assert_same_text(&format!("{what}, to_json"), trace.to_json().as_bytes(), &expected);
    for settings in SPLITS {
        let mut ours = Vec::new();
        write_state_with(trace, &mut ours, settings).unwrap();
        assert_same_text(&format!("{what}, {settings:?}"), &ours, &expected);
    }
}

fn realistic() -> RolloutTrace {
    replay_bundle(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/realistic-bundle")).unwrap()
}

fn manifest() -> Manifest {
    Manifest {
        schema_version: 1,
        trace_id: "trace".into(),
        rollout_id: "rollout".into(),
        root_thread_id: "root".into(),
        started_at_unix_ms: 0,
        raw_event_log: "trace.jsonl".into(),
        payloads_dir: "payloads".into(),
    }
}

/// Every escape class: control characters (short escapes and `\u00XX`),
/// quote, backslash, slash and DEL (not escaped), multi-byte characters.
const ESCAPES: &str = "\u{0}\u{1}\u{8}\t\n\u{b}\u{c}\r\u{1f} \"quote\" back\\slash /slash/ \u{7f} é € \u{2028} 😀 end";

/// The realistic trace copied `copies` times under new keys (more entries
/// than the threshold for helper threads), with every escape class in
/// keys, ids and texts.
fn big_trace(copies: usize) -> RolloutTrace {
    let base = realistic();
    let mut trace = base.clone();
    for copy in 0..copies {
        let key = |id: &String| format!("{id}#{copy}");
        trace.conversation_items.extend(base.conversation_items.iter().map(|(id, item)| {
            let mut item = item.clone();
            if copy % 3 == 0 {
                item.body.parts.push(ConversationPart::Text { text: format!("{ESCAPES} {copy}") });
            }
            (key(id), item)
        }));
        trace.inference_calls.extend(base.inference_calls.iter().map(|(id, call)| (key(id), call.clone())));
        trace.tool_calls.extend(base.tool_calls.iter().map(|(id, call)| (key(id), call.clone())));
        trace.terminal_operations.extend(base.terminal_operations.iter().map(|(id, op)| (key(id), op.clone())));
        trace
            .raw_payloads
            .extend(base.raw_payloads.iter().map(|(id, payload)| (format!("{ESCAPES}{id}#{copy}"), payload.clone())));
    }
    trace
}

#[test]
fn conformance_states_are_written_like_serde_json() {
    let Some(cases) = common::conformance_cases() else { return };
    let mut checked = 0;
    for case in &cases {
        if case.expected_state().is_none() {
            continue;
        }
        let trace = common::replay_crate(&case.bundle()).unwrap_or_else(|err| panic!("{}: {err}", case.name));
        check(&case.name, &trace);
        checked += 1;
    }
    assert!(checked > 0, "no conformance case reduces");
}

#[test]
fn the_realistic_trace_is_written_like_serde_json() {
    check("realistic", &realistic());
}

#[test]
fn empty_and_minimal_traces_are_written_like_serde_json() {
    let empty = RolloutTrace::new(&manifest());
    check("empty", &empty);
    assert!(empty.to_json().contains("\"threads\": {},"));
    // One entry in one map; the others empty.
    let mut one = empty.clone();
    let realistic = realistic();
    let (id, payload) = realistic.raw_payloads.iter().next().unwrap();
    one.raw_payloads.insert(id.clone(), payload.clone());
    check("one payload", &one);
    let mut first_map_only = empty;
    let (id, thread) = realistic.threads.iter().next().unwrap();
    first_map_only.threads.insert(id.clone(), thread.clone());
    first_map_only.ended_at_unix_ms = Some(-1);
    check("one thread", &first_map_only);
}

#[test]
fn strings_with_every_escape_class_are_written_like_serde_json() {
    let mut trace =
        RolloutTrace::new(&Manifest { trace_id: ESCAPES.into(), root_thread_id: "\"".into(), ..manifest() });
    let realistic = realistic();
    for (index, (id, item)) in realistic.conversation_items.iter().enumerate() {
        let mut item = item.clone();
        let text: String = ESCAPES.chars().cycle().skip(index).take(index % 40).collect();
        item.body.parts = vec![
            ConversationPart::Text { text: text.clone() },
            ConversationPart::Code { language: "\\".into(), source: format!("{text}{ESCAPES}") },
        ];
        trace.conversation_items.insert(format!("{text}{id}"), item);
    }
    check("escapes", &trace);
}

#[test]
fn a_trace_big_enough_for_threads_is_written_like_serde_json() {
    let trace = big_trace(12);
    let entries = trace.conversation_items.len() + trace.raw_payloads.len();
    assert!(entries > 2_000, "only {entries} entries");
    check("big", &trace);
}

/// A writer that fails after `left` bytes, as a full disk would.
struct FailsAfter<'a> {
    inner: &'a mut dyn Write,
    left: usize,
}

impl Write for FailsAfter<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Err(std::io::Error::other("no space left"));
        }
        let written = self.inner.write(&bytes[..bytes.len().min(self.left)])?;
        self.left -= written;
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rollout-trace-state-json-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_write_error_midway_leaves_no_file_and_no_temporary_file() {
    let trace = big_trace(12);
    let size = oracle(&trace).len();
    let dir = scratch_dir("error");
    let path = dir.join("state.json");
    let fail_midway = |out: &mut dyn Write| trace.write_json(&mut FailsAfter { inner: out, left: size / 2 });
    let err = rollout_trace::output::write_atomic_with(&path, fail_midway).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Write);
    assert!(err.to_string().contains("no space left"), "{err}");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "something was left in {}", dir.display());
    // Over an existing state.json, the old text stays whole.
    std::fs::write(&path, b"old").unwrap();
    rollout_trace::output::write_atomic_with(&path, fail_midway).unwrap_err();
    assert_eq!(std::fs::read(&path).unwrap(), b"old");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
    // And a write that succeeds replaces it with the whole text.
    rollout_trace::output::write_atomic_with(&path, |out| trace.write_json(out)).unwrap();
    assert_same_text("saved", &std::fs::read(&path).unwrap(), &oracle(&trace));
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}
