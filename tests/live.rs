//! Following a growing bundle: after every update the snapshot equals, byte
//! for byte, a strict replay of exactly the lines consumed so far. Checked
//! for every prefix of every test bundle, with the log written line by line
//! and in pieces that cut lines in half.

mod common;

use std::io::Write;
use std::path::Path;

use rollout_trace::{replay_bundle_with, Follower, Profile, ReplayOptions};

fn options(profile: &'static Profile) -> ReplayOptions {
    ReplayOptions { profile, read_ahead: false, ..ReplayOptions::default() }
}

/// A copy of `bundle` with an empty log, and the log's bytes.
fn empty_copy(bundle: &Path, to: &Path) -> Vec<u8> {
    let _ = std::fs::remove_dir_all(to);
    common::copy_dir(bundle, to);
    let log = std::fs::read(bundle.join("trace.jsonl")).unwrap();
    std::fs::write(to.join("trace.jsonl"), b"").unwrap();
    log
}

/// The strict replay of the first `lines` lines of `log`, as JSON or error.
fn strict_prefix(
    bundle: &Path,
    scratch: &Path,
    log: &[u8],
    lines: usize,
    profile: &'static Profile,
) -> Result<String, String> {
    let _ = std::fs::remove_dir_all(scratch);
    common::copy_dir(bundle, scratch);
    let prefix: Vec<u8> = log.split_inclusive(|b| *b == b'\n').take(lines).flatten().copied().collect();
    std::fs::write(scratch.join("trace.jsonl"), prefix).unwrap();
    replay_bundle_with(scratch, &options(profile)).map(|r| r.trace.to_json()).map_err(|e| e.message)
}

fn append(path: &Path, bytes: &[u8]) {
    let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    file.write_all(bytes).unwrap();
}

/// Grows the log in `pieces` (byte ranges), updating after each, and checks
/// every snapshot against the strict replay of the lines consumed.
fn follow_in_pieces(bundle: &Path, profile: &'static Profile, pieces: &[std::ops::Range<usize>], base: &Path) -> usize {
    let (live, scratch) = (base.join("live"), base.join("scratch"));
    let log = empty_copy(bundle, &live);
    let mut follower = Follower::open(&live, options(profile)).unwrap();
    let mut checked = 0;
    for piece in pieces {
        append(&live.join("trace.jsonl"), &log[piece.clone()]);
        let complete = log[..piece.end].iter().filter(|b| **b == b'\n').count();
        let update = follower.update();
        let expected = strict_prefix(bundle, &scratch, &log, complete, profile);
        match (update, &expected) {
            (Ok(_), Ok(json)) => {
                assert_eq!(follower.lines() as usize, complete, "{}", bundle.display());
                let snapshot = follower.snapshot().unwrap().to_json();
                assert!(snapshot == *json, "{}: snapshot after {complete} lines differs", bundle.display());
                checked += 1;
            }
            // The bundle fails here: so does the strict replay of the prefix.
            (Err(error), Err(message)) => {
                assert_eq!(error.message, *message, "{}", bundle.display());
                return checked;
            }
            (Ok(_), Err(message)) => {
                panic!("{}: follower took {complete} lines that fail: {message}", bundle.display())
            }
            (Err(error), Ok(_)) => panic!("{}: follower failed after {complete} lines: {error}", bundle.display()),
        }
    }
    checked
}

#[test]
fn every_prefix_snapshot_equals_the_strict_replay_of_that_prefix() {
    let base = std::env::temp_dir().join(format!("rollout-trace-live-{}", std::process::id()));
    let mut prefixes = 0;
    for (bundle, profile) in common::every_test_bundle() {
        let log = std::fs::read(bundle.join("trace.jsonl")).unwrap();
        // Line by line.
        let mut pieces = Vec::new();
        let mut start = 0;
        for (at, byte) in log.iter().enumerate() {
            if *byte == b'\n' {
                pieces.push(start..at + 1);
                start = at + 1;
            }
        }
        if start < log.len() {
            pieces.push(start..log.len());
        }
        prefixes += follow_in_pieces(&bundle, profile, &pieces, &base);
        // In pieces of 1,000 bytes that cut lines anywhere.
        let cut: Vec<_> = (0..log.len()).step_by(1000).map(|at| at..(at + 1000).min(log.len())).collect();
        prefixes += follow_in_pieces(&bundle, profile, &cut, &base);
    }
    let _ = std::fs::remove_dir_all(&base);
    assert!(prefixes > 100);
    eprintln!("{prefixes} prefixes followed");
}

#[test]
fn a_truncated_or_replaced_log_is_a_clear_error() {
    let bundle = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/realistic-bundle");
    let base = std::env::temp_dir().join(format!("rollout-trace-live-replaced-{}", std::process::id()));
    let live = base.join("live");
    let log = empty_copy(&bundle, &live);
    let half = log.len() / 2;
    append(&live.join("trace.jsonl"), &log[..half]);
    let mut follower = Follower::open(&live, options(Profile::newest())).unwrap();
    assert!(follower.update().unwrap().events > 0);
    std::fs::write(live.join("trace.jsonl"), &log[..10]).unwrap();
    let error = follower.update().unwrap_err();
    assert!(error.message.contains("was truncated while it was followed"), "{error}");
    assert_eq!(error.location.file.as_deref(), Some(Path::new("trace.jsonl")));

    let mut follower = Follower::open(&live, options(Profile::newest())).unwrap();
    std::fs::write(live.join("trace.jsonl"), &log[..half]).unwrap();
    follower.update().unwrap();
    let replacement = live.join("trace.jsonl.new");
    std::fs::write(&replacement, &log).unwrap();
    std::fs::rename(&replacement, live.join("trace.jsonl")).unwrap();
    let error = follower.update().unwrap_err();
    assert!(error.message.contains("was replaced by another file"), "{error}");
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn updates_say_what_was_added_and_updated() {
    let bundle = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/realistic-bundle");
    let base = std::env::temp_dir().join(format!("rollout-trace-live-changes-{}", std::process::id()));
    let live = base.join("live");
    let log = empty_copy(&bundle, &live);
    let lines: Vec<&[u8]> = log.split_inclusive(|b| *b == b'\n').collect();
    let mut follower = Follower::open(&live, options(Profile::newest())).unwrap();
    let mut added_tools = Vec::new();
    let mut seen_update = false;
    for line in &lines {
        append(&live.join("trace.jsonl"), line);
        let update = follower.update().unwrap();
        assert_eq!((update.lines, update.events), (1, 1));
        added_tools.extend(update.added.get("tool_calls").cloned().unwrap_or_default());
        seen_update |= update.updated.contains_key("tool_calls");
    }
    let trace = follower.snapshot().unwrap();
    added_tools.sort();
    assert_eq!(added_tools, trace.tool_calls.keys().cloned().collect::<Vec<_>>(), "every tool call is added once");
    assert!(seen_update, "tool ends update their calls");
    assert!(follower.ended());
    assert!(follower.update().unwrap().is_empty());
    let _ = std::fs::remove_dir_all(&base);
}
