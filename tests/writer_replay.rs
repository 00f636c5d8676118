//! Rebuilds every conformance bundle through `TraceWriter` and compares the
//! files with the reference writer's bytes.
//!
//! The events are appended in file order with the clock scripted to the
//! recorded times; each payload is written just before the first event that
//! names it, which is what the producers do. Payload files are written from
//! a parsed `serde_json::Value`, which sorts object keys: files the
//! reference wrote from a `Value` compare byte for byte, files it wrote from
//! a struct (fields in declaration order) can only compare as JSON values.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rollout_trace::bundle::TraceBundle;
use rollout_trace::format::{RawPayloadRef, EVENT_LOG_FILE, MANIFEST_FILE};
use rollout_trace::json::to_pretty_string;
use rollout_trace::writer::{ScriptedClock, TraceWriter};
use serde_json::Value;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rollout-trace-replay-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

fn lines_in_any_order(bytes: &[u8]) -> Vec<String> {
    let mut lines: Vec<String> =
        String::from_utf8_lossy(bytes).lines().map(|line| line.trim_end_matches(',').to_string()).collect();
    lines.sort();
    lines
}

/// What a rebuild found out about payload files written from structs.
#[derive(Default)]
struct Rebuild {
    payloads_in_struct_order: Vec<String>,
}

fn rebuild(source: &Path, target: &Path) -> Rebuild {
    let bundle = TraceBundle::open(source).unwrap();
    let events: Vec<_> = bundle.events().unwrap().map(|event| event.unwrap().event).collect();
    let times = std::iter::once(bundle.manifest().started_at_unix_ms).chain(events.iter().map(|e| e.wall_time_unix_ms));
    let manifest = bundle.manifest();
    let writer = TraceWriter::create_with_clock(
        target,
        &manifest.trace_id,
        &manifest.rollout_id,
        &manifest.root_thread_id,
        Arc::new(ScriptedClock::new(times.collect::<Vec<_>>())),
    )
    .unwrap();

    let mut written: BTreeMap<String, RawPayloadRef> = BTreeMap::new();
    let mut report = Rebuild::default();
    for event in &events {
        for payload in event.payload.payload_refs() {
            if written.contains_key(&payload.raw_payload_id) {
                continue;
            }
            let value: Value = bundle.read_payload(payload).unwrap();
            let ours = writer.write_json_payload(payload.kind, &value).unwrap();
            assert_eq!(&ours, payload, "payload ordinals follow the order events first name them");
            if to_pretty_string(&value).into_bytes() != bytes(&source.join(&payload.path)) {
                report.payloads_in_struct_order.push(payload.path.clone());
            }
            written.insert(ours.raw_payload_id.clone(), ours);
        }
        let appended =
            writer.append(event.payload.clone(), event.thread_id.as_deref(), event.codex_turn_id.as_deref()).unwrap();
        assert_eq!(&appended, event);
    }
    report
}

#[test]
fn every_conformance_bundle_is_rebuilt_byte_for_byte() {
    let Some(cases) = common::conformance_cases() else { return };
    let mut struct_order = Vec::new();
    for case in &cases {
        let source = case.bundle();
        let target = scratch(&case.name);
        let report = rebuild(&source, &target);

        for file in [MANIFEST_FILE, EVENT_LOG_FILE] {
            assert!(bytes(&source.join(file)) == bytes(&target.join(file)), "{}: {file} differs", case.name);
        }
        let mut names: Vec<_> =
            std::fs::read_dir(source.join("payloads")).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        let mut ours: Vec<_> =
            std::fs::read_dir(target.join("payloads")).unwrap().map(|e| e.unwrap().file_name()).collect();
        ours.sort();
        assert_eq!(names, ours, "{}: payload files", case.name);
        for name in &names {
            let path = Path::new("payloads").join(name);
            let (theirs, ours) = (bytes(&source.join(&path)), bytes(&target.join(&path)));
            if report.payloads_in_struct_order.iter().any(|p| Path::new(p) == path) {
                let parse = |bytes: &[u8]| serde_json::from_slice::<Value>(bytes).unwrap();
                assert_eq!(parse(&theirs), parse(&ours), "{}: {} differs as JSON", case.name, path.display());
                // Same indentation, spacing and escapes; only the order of
                // keys (and so which line lacks its comma) may differ.
                assert_eq!(lines_in_any_order(&theirs), lines_in_any_order(&ours), "{}: {}", case.name, path.display());
                struct_order.push(format!("{}/{}", case.name, path.display()));
            } else {
                assert!(theirs == ours, "{}: {} differs", case.name, path.display());
            }
        }
        std::fs::remove_dir_all(&target).unwrap();
    }
    // Written by the reference from structs; a `Value` cannot reproduce
    // their key order (the Python writer, which keeps dict order, can).
    eprintln!("payload files compared as JSON values only ({}):\n  {}", struct_order.len(), struct_order.join("\n  "));
}
