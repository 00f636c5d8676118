//! Hostile and broken bundles: every failure is a clear error naming where
//! it arose, never a panic, a hang or a read outside the bundle.
// The one error type carries its location; its size is not a concern here.
#![allow(clippy::result_large_err)]

mod common;

use std::path::{Path, PathBuf};

use rollout_trace::{replay_bundle, replay_bundle_with, ErrorKind, Limits, ReplayOptions, Severity};

struct TempBundle {
    root: PathBuf,
}

impl TempBundle {
    /// A small valid bundle: one thread, one turn, one inference call.
    fn new(name: &str) -> Self {
        let root = std::env::temp_dir().join(format!("rollout-trace-robust-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("payloads")).unwrap();
        let bundle = TempBundle { root };
        bundle.write(
            "manifest.json",
            r#"{"schema_version":1,"trace_id":"t1","rollout_id":"r1","root_thread_id":"th","started_at_unix_ms":999,"raw_event_log":"trace.jsonl","payloads_dir":"payloads"}"#,
        );
        bundle.write(
            "payloads/1.json",
            r#"{"input":[{"type":"message","role":"user","content":[{"type":"input_text","text":"hi"}]}]}"#,
        );
        bundle.write(
            "payloads/2.json",
            r#"{"output_items":[{"type":"message","role":"assistant","content":[{"type":"output_text","text":"hello"}]}]}"#,
        );
        bundle.write("trace.jsonl", &Self::lines(&Self::events()));
        bundle
    }

    fn events() -> Vec<String> {
        let envelope = |seq: u64, ctx: &str, payload: &str| {
            format!(
                r#"{{"schema_version":1,"seq":{seq},"wall_time_unix_ms":{},"rollout_id":"r1",{ctx},"payload":{payload}}}"#,
                1000 + seq
            )
        };
        let none = r#""thread_id":null,"codex_turn_id":null"#;
        let turn = r#""thread_id":"th","codex_turn_id":"u1""#;
        vec![
            envelope(
                1,
                none,
                r#"{"type":"thread_started","thread_id":"th","agent_path":"/root","metadata_payload":null}"#,
            ),
            envelope(2, turn, r#"{"type":"codex_turn_started","codex_turn_id":"u1","thread_id":"th"}"#),
            envelope(
                3,
                turn,
                r#"{"type":"inference_started","inference_call_id":"i1","thread_id":"th","codex_turn_id":"u1","model":"m","provider_name":"p","request_payload":{"raw_payload_id":"raw_payload:1","kind":{"type":"inference_request"},"path":"payloads/1.json"}}"#,
            ),
            envelope(
                4,
                turn,
                r#"{"type":"inference_completed","inference_call_id":"i1","response_id":"resp-1","upstream_request_id":null,"response_payload":{"raw_payload_id":"raw_payload:2","kind":{"type":"inference_response"},"path":"payloads/2.json"}}"#,
            ),
            envelope(5, turn, r#"{"type":"codex_turn_ended","codex_turn_id":"u1","status":"completed"}"#),
        ]
    }

    fn lines(events: &[String]) -> String {
        events.iter().map(|e| format!("{e}\n")).collect()
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.root.join(name), text).unwrap();
    }

    fn payload_path_event(path: &str) -> String {
        format!(
            r#"{{"schema_version":1,"seq":3,"wall_time_unix_ms":1003,"rollout_id":"r1","thread_id":"th","codex_turn_id":"u1","payload":{{"type":"inference_started","inference_call_id":"i1","thread_id":"th","codex_turn_id":"u1","model":"m","provider_name":"p","request_payload":{{"raw_payload_id":"raw_payload:1","kind":{{"type":"inference_request"}},"path":{}}}}}}}"#,
            serde_json::to_string(path).unwrap()
        )
    }

    fn with_request_path(&self, path: &str) {
        let mut events = Self::events();
        events[2] = Self::payload_path_event(path);
        events.truncate(3);
        self.write("trace.jsonl", &Self::lines(&events));
    }
}

impl Drop for TempBundle {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn strict_error(root: &Path) -> rollout_trace::Error {
    replay_bundle(root).expect_err("the bundle should be rejected")
}

#[test]
fn valid_bundle_reduces() {
    let bundle = TempBundle::new("valid");
    let trace = replay_bundle(&bundle.root).unwrap();
    assert_eq!(trace.conversation_items.len(), 2);
}

#[test]
fn payload_paths_outside_the_bundle_are_refused_before_opening() {
    let bundle = TempBundle::new("escape");
    let secret = std::env::temp_dir().join(format!("rollout-trace-secret-{}.json", std::process::id()));
    std::fs::write(&secret, r#"{"input":[]}"#).unwrap();
    for path in ["../secret.json", "payloads/../../secret.json", secret.to_str().unwrap()] {
        bundle.with_request_path(path);
        let error = strict_error(&bundle.root);
        assert_eq!(error.kind, ErrorKind::UnsafePath, "{path}: {error}");
        assert_eq!(error.location.seq, Some(3));
        assert_eq!(error.location.raw_payload_id.as_deref(), Some("raw_payload:1"));
    }
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(&secret, bundle.root.join("payloads/link.json")).unwrap();
        bundle.with_request_path("payloads/link.json");
        let error = strict_error(&bundle.root);
        assert_eq!(error.kind, ErrorKind::UnsafePath, "{error}");
    }
    std::fs::remove_file(&secret).unwrap();
}

/// Payloads open by name through the `payloads` directory; a symlink,
/// whether the directory or the file, still gets the full check: refused
/// when it leads out of the bundle, followed when it stays inside.
#[cfg(unix)]
#[test]
fn symlinked_payloads_are_checked_however_they_are_opened() {
    use std::os::unix::fs::symlink;
    let bundle = TempBundle::new("symlinked-dir");
    let outside = std::env::temp_dir().join(format!("rollout-trace-outside-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&outside);
    std::fs::rename(bundle.root.join("payloads"), &outside).unwrap();
    symlink(&outside, bundle.root.join("payloads")).unwrap();
    let error = strict_error(&bundle.root);
    assert_eq!(error.kind, ErrorKind::UnsafePath, "{error}");
    std::fs::remove_file(bundle.root.join("payloads")).unwrap();
    std::fs::rename(&outside, bundle.root.join("payloads")).unwrap();

    // A symlink to another payload of the bundle is read.
    std::fs::rename(bundle.root.join("payloads/1.json"), bundle.root.join("payloads/real.json")).unwrap();
    symlink("real.json", bundle.root.join("payloads/1.json")).unwrap();
    assert_eq!(replay_bundle(&bundle.root).unwrap().conversation_items.len(), 2);
    // A missing payload names its id and path, as before.
    std::fs::remove_file(bundle.root.join("payloads/2.json")).unwrap();
    let error = strict_error(&bundle.root);
    assert_eq!(error.kind, ErrorKind::Payload, "{error}");
    assert!(error.to_string().contains("open payload raw_payload:2 (payloads/2.json): No such file"), "{error}");
}

#[test]
fn manifest_layout_paths_must_stay_inside() {
    let bundle = TempBundle::new("manifest-escape");
    bundle.write(
        "manifest.json",
        r#"{"schema_version":1,"trace_id":"t1","rollout_id":"r1","root_thread_id":"th","started_at_unix_ms":999,"raw_event_log":"../../etc/passwd","payloads_dir":"payloads"}"#,
    );
    assert_eq!(strict_error(&bundle.root).kind, ErrorKind::UnsafePath);
}

#[test]
fn sparse_huge_payload_is_rejected_from_its_size() {
    let bundle = TempBundle::new("sparse");
    let file = std::fs::File::create(bundle.root.join("payloads/1.json")).unwrap();
    file.set_len(3 << 30).unwrap(); // 3 GiB, no blocks written
    let started = std::time::Instant::now();
    let error = strict_error(&bundle.root);
    assert_eq!(error.kind, ErrorKind::Limit, "{error}");
    assert!(started.elapsed().as_secs() < 5, "rejected without reading");
    // A configured lower limit applies as well.
    bundle.write("payloads/1.json", &format!(r#"{{"input":[],"pad":"{}"}}"#, "x".repeat(4096)));
    let options =
        ReplayOptions { limits: Limits { max_record_bytes: 1024, ..Limits::DEFAULT }, ..ReplayOptions::default() };
    assert_eq!(replay_bundle_with(&bundle.root, &options).unwrap_err().kind, ErrorKind::Limit);
}

#[test]
fn deeply_nested_json_is_rejected_without_a_crash() {
    let bundle = TempBundle::new("deep");
    bundle.write("payloads/1.json", &"[".repeat(100_000));
    let error = strict_error(&bundle.root);
    assert!(matches!(error.kind, ErrorKind::Limit | ErrorKind::Payload), "{error}");
    assert_eq!(error.location.raw_payload_id.as_deref(), Some("raw_payload:1"));
    // The same in an event line.
    bundle.write("payloads/1.json", r#"{"input":[]}"#);
    let mut events = TempBundle::events();
    events.push(format!("{{\"a\":{}", "[".repeat(100_000)));
    bundle.write("trace.jsonl", &TempBundle::lines(&events));
    let error = strict_error(&bundle.root);
    assert_eq!(error.location.line, Some(6), "{error}");
}

/// Runs `work` on another thread; a hang fails the test instead of
/// stalling the suite.
fn within_seconds<T: Send + 'static>(seconds: u64, work: impl FnOnce() -> T + Send + 'static) -> T {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(work());
    });
    receiver.recv_timeout(std::time::Duration::from_secs(seconds)).expect("hung or panicked")
}

#[cfg(unix)]
fn mkfifo(path: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let name = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0, "mkfifo {}", path.display());
}

/// Opening a FIFO waits for a writer: a FIFO planted in a bundle must be
/// refused, not waited on, whether the reducer needs it or only the
/// read-ahead thread opens it.
#[cfg(unix)]
#[test]
fn fifos_are_refused_without_waiting() {
    let bundle = TempBundle::new("fifo");
    mkfifo(&bundle.root.join("payloads/fifo.json"));
    bundle.with_request_path("payloads/fifo.json");
    let root = bundle.root.clone();
    let error = within_seconds(20, move || replay_bundle(&root)).expect_err("a FIFO payload is refused");
    assert_eq!((error.kind, error.location.seq), (ErrorKind::Payload, Some(3)), "{error}");
    assert!(error.message.contains("not a regular file"), "{error}");

    let bundle = TempBundle::new("fifo-log");
    std::fs::remove_file(bundle.root.join("trace.jsonl")).unwrap();
    mkfifo(&bundle.root.join("trace.jsonl"));
    let root = bundle.root.clone();
    let error = within_seconds(20, move || replay_bundle(&root)).expect_err("a FIFO event log is refused");
    assert_eq!(error.kind, ErrorKind::Bundle, "{error}");
    let root = bundle.root.clone();
    let report =
        within_seconds(20, move || rollout_trace::validate(&root, Limits::default(), rollout_trace::Profile::newest()));
    assert!(!report.is_valid(false));
}

/// When the replay fails early, the read-ahead thread stops even if it is
/// waiting for room (here 40 MB of payloads follow the failing event).
#[test]
fn an_early_failure_stops_reading_ahead() {
    let bundle = TempBundle::new("early-failure");
    bundle.write("payloads/1.json", &format!(r#"{{"input":[],"pad":"{}"}}"#, "x".repeat(1 << 20)));
    let mut events = TempBundle::events();
    // Turn start of an unknown thread: fails at line 2.
    events[1] = events[1].replace(r#""thread_id":"th"}"#, r#""thread_id":"nobody"}"#);
    let request = events[2].clone();
    events.truncate(2);
    for call in 0..40 {
        events.push(request.replace(r#""inference_call_id":"i1""#, &format!(r#""inference_call_id":"i{call}""#)));
    }
    bundle.write("trace.jsonl", &TempBundle::lines(&events));
    let root = bundle.root.clone();
    let error = within_seconds(20, move || replay_bundle(&root)).expect_err("line 2 fails");
    assert_eq!(error.location.line, Some(2), "{error}");
}

/// Reading ahead on a second thread changes nothing in the outcome,
/// including which error and where.
fn assert_read_ahead_agrees(root: &Path, what: &str) {
    for partial in [false, true] {
        let outcome = |read_ahead| {
            replay_bundle_with(root, &ReplayOptions { partial, read_ahead, ..ReplayOptions::default() })
                .map(|replay| (replay.trace.to_json(), replay.diagnostics))
        };
        assert_eq!(outcome(true), outcome(false), "{what} (partial: {partial})");
    }
}

#[test]
fn read_ahead_agrees_with_reading_in_turn() {
    let bundle = TempBundle::new("read-ahead");
    assert_read_ahead_agrees(&bundle.root, "valid bundle");
    // A missing payload fails at the same event either way.
    std::fs::remove_file(bundle.root.join("payloads/2.json")).unwrap();
    assert_read_ahead_agrees(&bundle.root, "missing response");
}

#[test]
fn truncated_final_line_fails_strictly_and_is_dropped_in_partial_mode() {
    let bundle = TempBundle::new("truncated");
    let mut text = TempBundle::lines(&TempBundle::events());
    text.push_str(r#"{"schema_version":1,"seq":6,"wall_time_unix_ms":1006,"rollout_id":"r1","thread_id":nu"#);
    bundle.write("trace.jsonl", &text);
    let error = strict_error(&bundle.root);
    assert_eq!(error.kind, ErrorKind::Event);
    assert_eq!(error.location.line, Some(6));
    assert!(error.to_string().contains("trace.jsonl"), "{error}");
    assert!(error.to_string().contains("parse trace event line 6"), "{error}");

    let options = ReplayOptions { partial: true, ..ReplayOptions::default() };
    let replay = replay_bundle_with(&bundle.root, &options).unwrap();
    assert!(replay.is_partial());
    assert_eq!(replay.diagnostics[0].error.location.line, Some(6));
    assert_eq!(replay.trace, replay_bundle(TempBundle::new("truncated-reference").root.as_path()).unwrap());
}

#[test]
fn partial_mode_keeps_the_prefix_before_an_unreducible_event() {
    let bundle = TempBundle::new("unreducible");
    std::fs::remove_file(bundle.root.join("payloads/2.json")).unwrap();
    let error = strict_error(&bundle.root);
    assert_eq!((error.kind, error.location.seq), (ErrorKind::Payload, Some(4)));
    assert!(error.message.contains("open payload raw_payload:2"), "{error}");
    let replay = replay_bundle_with(&bundle.root, &ReplayOptions { partial: true, ..Default::default() }).unwrap();
    assert_eq!(replay.trace.conversation_items.len(), 1);
    assert!(replay.trace.inference_calls["i1"].execution.is_running());
    assert_eq!(replay.diagnostics.len(), 1);
}

#[test]
fn invalid_utf8_names_the_line() {
    let bundle = TempBundle::new("utf8");
    let mut bytes = TempBundle::lines(&TempBundle::events()[..2]).into_bytes();
    bytes.extend_from_slice(b"{\"schema_version\":1,\xff}\n");
    std::fs::write(bundle.root.join("trace.jsonl"), bytes).unwrap();
    let error = strict_error(&bundle.root);
    assert_eq!((error.kind, error.location.line), (ErrorKind::Event, Some(3)));
    assert!(error.message.contains("read trace event line 3"), "{error}");
}

#[test]
fn validation_reports_every_problem() {
    let bundle = TempBundle::new("validate");
    let mut events = TempBundle::events();
    events[1] = events[1].replace("\"seq\":2", "\"seq\":7"); // gap
    events[3] =
        events[3].replace("\"seq\":4", "\"seq\":8").replace("\"rollout_id\":\"r1\"", "\"rollout_id\":\"other\"");
    events.push("{not json".to_string());
    bundle.write("trace.jsonl", &TempBundle::lines(&events));
    std::fs::remove_file(bundle.root.join("payloads/2.json")).unwrap();
    let report = rollout_trace::validate(&bundle.root, Limits::default(), rollout_trace::Profile::newest());
    let warnings: Vec<String> = report.warnings().map(|p| p.error.to_string()).collect();
    let errors: Vec<String> = report.errors().map(|p| p.error.to_string()).collect();
    assert!(warnings.iter().any(|w| w.contains("seq 7 where 2 was expected")), "{warnings:?}");
    assert!(warnings.iter().any(|w| w.contains("rollout_id \"other\"")), "{warnings:?}");
    assert!(errors.iter().any(|e| e.contains("line 6") && e.contains("parse trace event line 6")), "{errors:?}");
    assert!(errors.iter().any(|e| e.contains("open payload raw_payload:2")), "{errors:?}");
    assert!(!report.is_valid(false));
    assert!(report.problems.iter().all(|p| p.error.location.bundle.as_deref() == Some(bundle.root.as_path())));
    let clean = TempBundle::new("validate-clean");
    let report = rollout_trace::validate(&clean.root, Limits::default(), rollout_trace::Profile::newest());
    assert!(report.is_valid(true), "{:?}", report.problems);
    assert_eq!(report.problems.iter().filter(|p| p.severity == Severity::Error).count(), 0);
}

/// A deterministic mutation fuzzer over the conformance bundles: flipped,
/// dropped and duplicated bytes in event lines and payloads. Every replay
/// must end in `Ok` or a located error; a panic fails the test.
#[test]
fn mutated_conformance_bundles_never_panic() {
    let shared = std::env::var_os("ROLLOUT_TRACE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    let Ok(cases) = std::fs::read_dir(shared.join("conformance")) else {
        eprintln!("skipping: no ../shared/conformance");
        return;
    };
    let iterations: u64 =
        std::env::var("ROLLOUT_TRACE_FUZZ_ITERATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut cases: Vec<PathBuf> = cases.flatten().map(|e| e.path().join("bundle")).filter(|p| p.is_dir()).collect();
    cases.sort();
    let work = std::env::temp_dir().join(format!("rollout-trace-fuzz-{}", std::process::id()));
    let mut runs = 0;
    for case in &cases {
        for _ in 0..iterations {
            let _ = std::fs::remove_dir_all(&work);
            common::copy_dir(case, &work);
            let mut files = vec![work.join("trace.jsonl")];
            files.extend(std::fs::read_dir(work.join("payloads")).into_iter().flatten().flatten().map(|e| e.path()));
            let target = &files[(next() as usize) % files.len()];
            let mut bytes = std::fs::read(target).unwrap();
            for _ in 0..1 + next() % 4 {
                if bytes.is_empty() {
                    break;
                }
                let at = (next() as usize) % bytes.len();
                match next() % 4 {
                    0 => bytes[at] = (next() & 0xff) as u8,
                    1 => {
                        bytes.remove(at);
                    }
                    2 => bytes.truncate(at),
                    _ => {
                        let end = (at + 1 + (next() as usize) % 64).min(bytes.len());
                        let chunk = bytes[at..end].to_vec();
                        bytes.splice(at..at, chunk);
                    }
                }
            }
            std::fs::write(target, &bytes).unwrap();
            assert_read_ahead_agrees(&work, &format!("a mutation of {} ({})", case.display(), target.display()));
            for partial in [false, true] {
                let options = ReplayOptions { partial, ..ReplayOptions::default() };
                let outcome = std::panic::catch_unwind(|| replay_bundle_with(&work, &options));
                match outcome {
                    Err(_) => panic!("replay panicked on a mutation of {} ({})", case.display(), target.display()),
                    Ok(Err(error)) => assert!(error.location.bundle.is_some(), "error without bundle: {error}"),
                    Ok(Ok(_)) => {}
                }
            }
            let _ = std::panic::catch_unwind(|| {
                rollout_trace::validate(&work, Limits::default(), rollout_trace::Profile::newest())
            })
            .unwrap_or_else(|_| panic!("validate panicked on a mutation of {}", case.display()));
            runs += 1;
        }
    }
    let _ = std::fs::remove_dir_all(&work);
    eprintln!("{runs} mutated bundles replayed without a panic");
}
