//! Lenient replay is exact: it equals the strict replay of the same bundle
//! with exactly the reported events removed, whenever that smaller bundle
//! replays. Checked on every test bundle (shared cases, the realistic
//! example, recorded real-Codex sessions) and on random mutations of them,
//! and with faults injected into recorded sessions.

// The crate's one error type carries its location; its size is no concern here.
#![allow(clippy::result_large_err)]

mod common;

use std::path::{Path, PathBuf};

use rollout_trace::{replay_bundle_with, Profile, Replay, ReplayOptions};

fn lenient(profile: &'static Profile) -> ReplayOptions {
    ReplayOptions { profile, lenient: true, ..ReplayOptions::default() }
}

fn strict(profile: &'static Profile) -> ReplayOptions {
    ReplayOptions { profile, ..ReplayOptions::default() }
}

/// The bundle at `from` copied to `to` without the given lines of its log.
fn without_lines(from: &Path, to: &Path, lines: &[u64]) {
    let _ = std::fs::remove_dir_all(to);
    common::copy_dir(from, to);
    let log = std::fs::read(from.join("trace.jsonl")).unwrap();
    let mut kept = Vec::with_capacity(log.len());
    for (index, line) in log.split_inclusive(|b| *b == b'\n').enumerate() {
        if !lines.contains(&(index as u64 + 1)) {
            kept.extend_from_slice(line);
        }
    }
    std::fs::write(to.join("trace.jsonl"), kept).unwrap();
}

/// What checking one bundle found.
#[derive(Debug, PartialEq, Eq)]
enum Checked {
    /// The property held: the smaller bundle replays to the same trace.
    Held,
    /// The smaller bundle does not replay strictly either (the property
    /// says nothing), or the bundle itself is unusable.
    NotApplicable,
}

/// Checks the property on `bundle`; panics with a description if it fails.
fn check(bundle: &Path, profile: &'static Profile, scratch: &Path, what: &str) -> (Checked, Option<Replay>) {
    let replayed = std::panic::catch_unwind(|| replay_bundle_with(bundle, &lenient(profile)))
        .unwrap_or_else(|_| panic!("lenient replay panicked on {what}"));
    let replay = match replayed {
        Ok(replay) => replay,
        // Nothing to keep: the manifest or the log file itself is unusable,
        // or a limit was hit.
        Err(error) => {
            assert!(error.location.line.is_none() || error.kind == rollout_trace::ErrorKind::Limit, "{what}: {error}");
            return (Checked::NotApplicable, None);
        }
    };
    let lines: Vec<u64> = replay.diagnostics.iter().map(|d| d.line().expect("a diagnostic names its line")).collect();
    assert!(lines.windows(2).all(|w| w[0] < w[1]), "{what}: diagnostics out of line order: {lines:?}");
    if lines.is_empty() {
        let strict = replay_bundle_with(bundle, &strict(profile)).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(strict.trace, replay.trace, "{what}: a clean lenient replay differs from the strict one");
        return (Checked::Held, Some(replay));
    }
    without_lines(bundle, scratch, &lines);
    let checked = match replay_bundle_with(scratch, &strict(profile)) {
        Ok(smaller) => {
            assert!(
                smaller.trace.to_json() == replay.trace.to_json(),
                "{what}: lenient replay (skipping lines {lines:?}) differs from the strict replay without them"
            );
            Checked::Held
        }
        Err(_) => Checked::NotApplicable,
    };
    (checked, Some(replay))
}

#[test]
fn lenient_equals_strict_on_every_test_bundle() {
    let scratch = std::env::temp_dir().join(format!("rollout-trace-lenient-{}", std::process::id()));
    let mut held = 0;
    for (bundle, profile) in common::every_test_bundle() {
        let (checked, _) = check(&bundle, profile, &scratch, &bundle.display().to_string());
        held += (checked == Checked::Held) as usize;
    }
    let _ = std::fs::remove_dir_all(&scratch);
    assert!(held > 0);
    eprintln!("lenient = strict without the skipped events on {held} bundles");
}

/// A seeded xorshift: the same mutations on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One random fault in the bundle at `dir`: a corrupted or torn log line,
/// a dropped, duplicated or swapped event, a payload file corrupted or gone.
fn mutate(dir: &Path, rng: &mut Rng) -> String {
    let log_path = dir.join("trace.jsonl");
    let log = std::fs::read(&log_path).unwrap();
    let mut lines: Vec<Vec<u8>> = log.split_inclusive(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
    let payloads: Vec<PathBuf> =
        std::fs::read_dir(dir.join("payloads")).into_iter().flatten().flatten().map(|e| e.path()).collect();
    let n = lines.len();
    let what = match rng.below(8) {
        0 if n > 0 => {
            let at = rng.below(n);
            lines.remove(at);
            format!("dropped line {}", at + 1)
        }
        1 if n > 0 => {
            let at = rng.below(n);
            let copy = lines[at].clone();
            let to = rng.below(n + 1);
            lines.insert(to, copy);
            format!("line {} repeated at {}", at + 1, to + 1)
        }
        2 if n > 1 => {
            let (a, b) = (rng.below(n), rng.below(n));
            lines.swap(a, b);
            format!("lines {} and {} swapped", a + 1, b + 1)
        }
        3 if n > 0 => {
            let last = lines.last_mut().unwrap();
            let keep = rng.below(last.len());
            last.truncate(keep);
            format!("torn tail ({keep} bytes kept)")
        }
        4 if n > 0 => {
            let at = rng.below(n);
            let line = &mut lines[at];
            if !line.is_empty() {
                let byte = rng.below(line.len());
                line[byte] = b"{}\",:x0\\"[rng.below(8)];
            }
            format!("line {} corrupted", at + 1)
        }
        5 if !payloads.is_empty() => {
            let target = &payloads[rng.below(payloads.len())];
            std::fs::remove_file(target).unwrap();
            format!("{} missing", target.display())
        }
        6 if !payloads.is_empty() => {
            let target = &payloads[rng.below(payloads.len())];
            let mut bytes = std::fs::read(target).unwrap();
            let keep = rng.below(bytes.len());
            bytes.truncate(keep);
            std::fs::write(target, bytes).unwrap();
            format!("{} truncated to {keep} bytes", target.display())
        }
        _ if n > 0 => {
            let at = rng.below(n);
            lines[at] = b"not an event\n".to_vec();
            format!("line {} replaced by garbage", at + 1)
        }
        _ => "nothing".to_string(),
    };
    std::fs::write(&log_path, lines.concat()).unwrap();
    what
}

#[test]
fn lenient_equals_strict_on_random_mutations() {
    // 10,000 in CI (scripts/test sets it); fewer by default for a quick run.
    let iterations: usize =
        std::env::var("ROLLOUT_TRACE_LENIENT_MUTATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(500);
    let bundles = common::every_test_bundle();
    let base = std::env::temp_dir().join(format!("rollout-trace-lenient-mut-{}", std::process::id()));
    let (work, scratch) = (base.join("work"), base.join("scratch"));
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let (mut held, mut skipped_events) = (0, 0);
    for i in 0..iterations {
        let (bundle, profile) = &bundles[i % bundles.len()];
        let _ = std::fs::remove_dir_all(&work);
        common::copy_dir(bundle, &work);
        let mut faults = vec![mutate(&work, &mut rng)];
        if rng.below(4) == 0 {
            faults.push(mutate(&work, &mut rng));
        }
        let what = format!("mutation {i} of {} ({})", bundle.display(), faults.join("; "));
        let (checked, replay) = check(&work, profile, &scratch, &what);
        held += (checked == Checked::Held) as usize;
        skipped_events += replay.map_or(0, |r| r.diagnostics.len());
    }
    let _ = std::fs::remove_dir_all(&base);
    eprintln!("{iterations} mutations: the property held on {held} ({skipped_events} events skipped in all)");
    assert!(held * 2 > iterations, "the property applied to too few mutations: {held} of {iterations}");
}

/// Faults injected into recorded sessions: lenient replay keeps every event
/// but the faulty one and those that fail for want of it.
#[test]
fn faults_in_recorded_sessions_cost_only_the_faulty_event_and_its_dependents() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut sessions = common::recorded_codex_bundles();
    sessions.push(root.join("examples/realistic-bundle"));
    let base = std::env::temp_dir().join(format!("rollout-trace-lenient-faults-{}", std::process::id()));
    let work = base.join("work");
    let mut checked = 0;
    for session in &sessions {
        let strict_trace = match replay_bundle_with(session, &strict(Profile::newest())) {
            Ok(replay) => replay,
            Err(_) => continue, // sessions the reference rejects (an image view)
        };
        let log = std::fs::read_to_string(session.join("trace.jsonl")).unwrap();
        let lines: Vec<&str> = log.split_inclusive('\n').collect();
        let total = strict_trace.events;

        // A torn tail: the last line cut in half is the only loss.
        let _ = std::fs::remove_dir_all(&work);
        common::copy_dir(session, &work);
        let mut torn = lines[..lines.len() - 1].concat();
        torn.push_str(&lines[lines.len() - 1][..lines[lines.len() - 1].len() / 2]);
        std::fs::write(work.join("trace.jsonl"), &torn).unwrap();
        let replay = replay_bundle_with(&work, &lenient(Profile::newest())).unwrap();
        assert_eq!(replay.diagnostics.len(), 1, "{}: torn tail", session.display());
        assert_eq!(replay.diagnostics[0].line(), Some(lines.len() as u64));
        assert_eq!(replay.events, total);

        // A duplicated event: only the copy is lost.
        let at = lines.iter().position(|l| l.contains("\"codex_turn_started\"")).unwrap();
        let mut duplicated: Vec<&str> = lines.clone();
        duplicated.insert(at + 1, lines[at]);
        std::fs::write(work.join("trace.jsonl"), duplicated.concat()).unwrap();
        let replay = replay_bundle_with(&work, &lenient(Profile::newest())).unwrap();
        let skipped: Vec<Option<u64>> = replay.diagnostics.iter().map(|d| d.line()).collect();
        assert_eq!(skipped, vec![Some(at as u64 + 2)], "{}: duplicated event", session.display());
        assert_eq!(replay.trace.to_json(), strict_trace.trace.to_json());

        // A request payload missing or corrupted: its inference start is
        // lost, and every later loss depends on it.
        std::fs::write(work.join("trace.jsonl"), &log).unwrap();
        let started = lines.iter().position(|l| l.contains("\"inference_started\"")).unwrap();
        let path = payload_path(lines[started], "request_payload");
        for fault in ["missing", "corrupted"] {
            common::copy_dir(&session.join("payloads"), &work.join("payloads"));
            if fault == "missing" {
                std::fs::remove_file(work.join(&path)).unwrap();
            } else {
                std::fs::write(work.join(&path), b"{\"input\": [").unwrap();
            }
            let replay = replay_bundle_with(&work, &lenient(Profile::newest())).unwrap();
            let first = &replay.diagnostics[0];
            assert_eq!(first.line(), Some(started as u64 + 1), "{}: {fault} payload", session.display());
            assert_eq!(first.event_type, Some("inference_started"));
            for later in &replay.diagnostics[1..] {
                assert!(later.depends_on_line.is_some(), "{}: {fault} payload: {:?}", session.display(), later);
            }
            assert!(replay.diagnostics.len() < (total as usize) / 2, "{}: lost most of the session", session.display());
        }
        checked += 1;
    }
    let _ = std::fs::remove_dir_all(&base);
    assert!(checked > 0);
    eprintln!("faults injected into {checked} recorded sessions");
}

/// The `path` of the payload ref named `field` in an event line.
fn payload_path(line: &str, field: &str) -> String {
    let event: serde_json::Value = serde_json::from_str(line).unwrap();
    event["payload"][field]["path"].as_str().unwrap().to_string()
}
