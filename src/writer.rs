//! Writing a bundle (spec 01-format §3–§4): `manifest.json` once, payload
//! files on request, and one `trace.jsonl` line per event.
//!
//! One lock orders everything that must be ordered: `seq` numbers, payload
//! ordinals, and the lines of the log, so `seq` order is line order. A
//! payload file is complete under its final name before its reference is
//! returned, hence before any event can name it.
//!
//! A bundle is evidence, so the writer prefers stopping to lying: after an
//! event failed to reach the log, it refuses every later write instead of
//! leaving a silent gap, and it never leaves a half-written line or payload
//! file under a name a reader would trust.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};
use crate::format::{
    Manifest, RawPayloadKind, RawPayloadRef, RawTraceEvent, RawTraceEventPayload, EVENT_LOG_FILE, MANIFEST_FILE,
    PAYLOADS_DIR, SCHEMA_VERSION,
};
use crate::json;
use crate::output;

/// Source of wall-clock time for the manifest and event envelopes.
pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch.
    fn now_unix_ms(&self) -> i64;
}

/// The system clock: 0 before the epoch, saturating at `i64::MAX`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_unix_ms(&self) -> i64 {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(elapsed) => i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX),
            Err(_) => 0,
        }
    }
}

/// A clock that always reads the same time.
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub i64);

impl Clock for FixedClock {
    fn now_unix_ms(&self) -> i64 {
        self.0
    }
}

/// A clock that reads the given times in order, then keeps reading the last
/// one (0 if none was given). For reproducing a bundle's timestamps.
#[derive(Debug)]
pub struct ScriptedClock {
    script: Mutex<Script>,
}

#[derive(Debug)]
struct Script {
    upcoming: VecDeque<i64>,
    last: i64,
}

impl ScriptedClock {
    pub fn new(times: impl IntoIterator<Item = i64>) -> Self {
        ScriptedClock { script: Mutex::new(Script { upcoming: times.into_iter().collect(), last: 0 }) }
    }
}

impl Clock for ScriptedClock {
    fn now_unix_ms(&self) -> i64 {
        // The script holds plain numbers; a poisoned lock left them consistent.
        let mut script = self.script.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(time) = script.upcoming.pop_front() {
            script.last = time;
        }
        script.last
    }
}

/// Appends events and payloads to one bundle. Cheap to share between
/// threads (`Arc<TraceWriter>`); every method takes `&self`.
pub struct TraceWriter {
    root: PathBuf,
    manifest: Manifest,
    clock: Arc<dyn Clock>,
    /// Names temporary payload files, which are written outside the lock.
    next_temp: AtomicU64,
    state: Mutex<LogState>,
}

struct LogState {
    /// `None` once the writer is closed or failed.
    log: Option<File>,
    /// Why the writer stopped, when an append failed.
    failure: Option<String>,
    next_seq: u64,
    next_payload_ordinal: u64,
}

impl std::fmt::Debug for TraceWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceWriter")
            .field("root", &self.root)
            .field("manifest", &self.manifest)
            .finish_non_exhaustive()
    }
}

impl TraceWriter {
    /// Creates a bundle at `bundle_dir` (the directory may exist but must not
    /// hold a bundle yet), stamped with the system clock.
    pub fn create(
        bundle_dir: impl AsRef<Path>,
        trace_id: &str,
        rollout_id: &str,
        root_thread_id: &str,
    ) -> Result<TraceWriter> {
        Self::create_with_clock(bundle_dir, trace_id, rollout_id, root_thread_id, Arc::new(SystemClock))
    }

    /// Like [`TraceWriter::create`], reading every timestamp from `clock`:
    /// first the manifest's `started_at_unix_ms`, then one per event.
    pub fn create_with_clock(
        bundle_dir: impl AsRef<Path>,
        trace_id: &str,
        rollout_id: &str,
        root_thread_id: &str,
        clock: Arc<dyn Clock>,
    ) -> Result<TraceWriter> {
        let root = bundle_dir.as_ref().to_path_buf();
        let fail =
            |file: &str, message: String| Error::new(ErrorKind::Write, message).with_bundle(&root).with_file(file);
        fs::create_dir_all(root.join(PAYLOADS_DIR)).map_err(|err| {
            Error::new(ErrorKind::Write, format!("create bundle directory: {err}")).with_bundle(&root)
        })?;
        // Another writer's bundle would get its payload files overwritten
        // (ordinals restart at 1) and its log interleaved.
        if root.join(MANIFEST_FILE).exists() {
            return Err(fail(MANIFEST_FILE, "a bundle already exists here; refusing to overwrite it".into()));
        }
        let manifest = Manifest {
            schema_version: SCHEMA_VERSION,
            trace_id: trace_id.to_string(),
            rollout_id: rollout_id.to_string(),
            root_thread_id: root_thread_id.to_string(),
            started_at_unix_ms: clock.now_unix_ms(),
            raw_event_log: EVENT_LOG_FILE.to_string(),
            payloads_dir: PAYLOADS_DIR.to_string(),
        };
        let log = OpenOptions::new().append(true).create_new(true).open(root.join(EVENT_LOG_FILE)).map_err(|err| {
            if err.kind() == std::io::ErrorKind::AlreadyExists {
                fail(EVENT_LOG_FILE, "a bundle already exists here; refusing to append to its event log".into())
            } else {
                fail(EVENT_LOG_FILE, format!("create trace event log: {err}"))
            }
        })?;
        if let Err(err) = output::write_atomic(&root.join(MANIFEST_FILE), json::to_pretty_string(&manifest).as_bytes())
        {
            // The empty log is ours; leave the directory as it was for a retry.
            drop(log);
            let _ = fs::remove_file(root.join(EVENT_LOG_FILE));
            return Err(err.with_bundle(&root).with_file(MANIFEST_FILE));
        }
        Ok(Self::from_parts(root, manifest, clock, log))
    }

    fn from_parts(root: PathBuf, manifest: Manifest, clock: Arc<dyn Clock>, log: File) -> TraceWriter {
        TraceWriter {
            root,
            manifest,
            clock,
            next_temp: AtomicU64::new(1),
            state: Mutex::new(LogState { log: Some(log), failure: None, next_seq: 1, next_payload_ordinal: 1 }),
        }
    }

    /// The bundle directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Writes `value` as a pretty JSON payload file and returns the reference
    /// for an event to carry. Object keys keep the order `value` serializes
    /// them in (a `serde_json::Value` sorts them).
    pub fn write_json_payload<T: Serialize + ?Sized>(&self, kind: RawPayloadKind, value: &T) -> Result<RawPayloadRef> {
        let text = serde_json::to_vec_pretty(value)
            .map_err(|err| self.error(PAYLOADS_DIR, format!("serialize {} payload: {err}", kind.as_str())))?;
        self.write_payload_text(kind, &text)
    }

    /// Stores already rendered payload text under the next ordinal. The file
    /// is written under a temporary name outside the lock, then renamed into
    /// place under it: ordinals are handed out in order, big payloads do not
    /// hold up other threads, and a crash never leaves a partial file under a
    /// final name.
    pub(crate) fn write_payload_text(&self, kind: RawPayloadKind, text: &[u8]) -> Result<RawPayloadRef> {
        drop(self.writable_state()?);
        let temp_name = format!(".partial-{}.json", self.next_temp.fetch_add(1, Ordering::Relaxed));
        let temp = self.root.join(PAYLOADS_DIR).join(temp_name);
        if let Err(err) = write_file(&temp, text) {
            let _ = fs::remove_file(&temp);
            return Err(self.error(PAYLOADS_DIR, format!("write {} payload: {err}", kind.as_str())));
        }
        let mut state = match self.writable_state() {
            Ok(state) => state,
            Err(err) => {
                let _ = fs::remove_file(&temp);
                return Err(err);
            }
        };
        // The ordinal is spent even if the rename fails, as in the reference.
        let ordinal = state.next_payload_ordinal;
        state.next_payload_ordinal += 1;
        let payload = RawPayloadRef {
            raw_payload_id: format!("raw_payload:{ordinal}"),
            kind,
            path: format!("{PAYLOADS_DIR}/{ordinal}.json"),
        };
        if let Err(err) = fs::rename(&temp, self.root.join(&payload.path)) {
            drop(state);
            let _ = fs::remove_file(&temp);
            return Err(self
                .error(&payload.path, format!("write payload {}: {err}", payload.raw_payload_id))
                .with_payload(&payload.raw_payload_id));
        }
        Ok(payload)
    }

    /// Appends one event stamped with the writer's clock and returns it as
    /// written.
    pub fn append(
        &self,
        payload: RawTraceEventPayload,
        thread_id: Option<&str>,
        codex_turn_id: Option<&str>,
    ) -> Result<RawTraceEvent> {
        self.append_with_time(|| self.clock.now_unix_ms(), payload, thread_id, codex_turn_id)
    }

    /// Appends one event with a wall time read by the caller (the Python
    /// binding reads a Python clock while it still holds the GIL).
    #[cfg(feature = "python")]
    pub(crate) fn append_at(
        &self,
        wall_time_unix_ms: i64,
        payload: RawTraceEventPayload,
        thread_id: Option<&str>,
        codex_turn_id: Option<&str>,
    ) -> Result<RawTraceEvent> {
        self.append_with_time(|| wall_time_unix_ms, payload, thread_id, codex_turn_id)
    }

    fn append_with_time(
        &self,
        wall_time: impl FnOnce() -> i64,
        payload: RawTraceEventPayload,
        thread_id: Option<&str>,
        codex_turn_id: Option<&str>,
    ) -> Result<RawTraceEvent> {
        let mut guard = self.lock()?;
        let state = &mut *guard;
        let Some(log) = state.log.as_mut() else {
            return Err(state.refusal(self));
        };
        // The number is spent before the write: a failed append still uses it.
        let seq = state.next_seq;
        state.next_seq += 1;
        let event = RawTraceEvent {
            schema_version: SCHEMA_VERSION,
            seq,
            wall_time_unix_ms: wall_time(),
            rollout_id: self.manifest.rollout_id.clone(),
            thread_id: thread_id.map(str::to_string),
            codex_turn_id: codex_turn_id.map(str::to_string),
            payload,
        };
        let mut line = json::to_compact_string(&event);
        line.push('\n');
        if let Err(reason) = append_line(log, line.as_bytes()) {
            let reason = format!("append event seq {seq}: {reason}");
            state.log = None;
            state.failure = Some(reason.clone());
            return Err(self.error(EVENT_LOG_FILE, reason).with_seq(seq));
        }
        Ok(event)
    }

    /// Stops the writer: later writes fail. Closing twice is harmless.
    pub fn close(&self) {
        // Dropping the file is all closing does, whatever a panic left behind.
        self.state.lock().unwrap_or_else(PoisonError::into_inner).log = None;
    }

    /// Whether the writer still accepts writes (not closed, not failed).
    pub fn is_open(&self) -> bool {
        self.state.lock().map(|state| state.log.is_some()).unwrap_or(false)
    }

    /// The state, if the writer still accepts writes.
    fn writable_state(&self) -> Result<MutexGuard<'_, LogState>> {
        let state = self.lock()?;
        match state.log {
            Some(_) => Ok(state),
            None => Err(state.refusal(self)),
        }
    }

    fn lock(&self) -> Result<MutexGuard<'_, LogState>> {
        self.state
            .lock()
            .map_err(|_| self.error(EVENT_LOG_FILE, "writer lock poisoned by a panic in another thread".into()))
    }

    fn error(&self, file: &str, message: String) -> Error {
        Error::new(ErrorKind::Write, message).with_bundle(&self.root).with_file(file)
    }
}

impl LogState {
    /// Why a closed or failed writer refuses to write.
    fn refusal(&self, writer: &TraceWriter) -> Error {
        match &self.failure {
            Some(reason) => writer.error(EVENT_LOG_FILE, format!("writer stopped after an earlier failure ({reason})")),
            None => writer.error(EVENT_LOG_FILE, "writer is closed".into()),
        }
    }
}

/// Writes one complete line with a single `write_all` on the unbuffered log,
/// so nothing stays behind in a buffer (the reference flushes per event; it
/// does not fsync either). On failure, cuts off whatever part of the line got
/// through, so the log still ends with a complete event.
fn append_line(log: &mut File, line: &[u8]) -> std::result::Result<(), String> {
    let len_before = log.metadata().map(|meta| meta.len());
    let Err(err) = log.write_all(line) else {
        return Ok(());
    };
    let cleanup = match len_before {
        Ok(len) => log.set_len(len).err().map(|e| format!("; removing the partial line also failed: {e}")),
        Err(e) => Some(format!("; a partial line may remain, the log length was unknown: {e}")),
    };
    Err(format!("{err}{}", cleanup.unwrap_or_default()))
}

/// Creates a new file (never reusing a leftover one) holding `bytes`. No
/// fsync on this hot path, as in the reference; the rename that follows
/// makes the file visible only once complete.
fn write_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = OpenOptions::new().write(true).create_new(true).open(path)?;
    file.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{ExecutionStatus, RolloutStatus};
    use serde_json::json;

    /// A fresh, empty directory for one test.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rollout-trace-writer-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn turn_started(turn: &str) -> RawTraceEventPayload {
        RawTraceEventPayload::CodexTurnStarted { codex_turn_id: turn.into(), thread_id: "th".into() }
    }

    fn read(path: &Path) -> String {
        fs::read_to_string(path).unwrap()
    }

    #[test]
    fn seq_and_payload_ordinals_count_independently_from_one() {
        let dir = scratch("numbering");
        let clock = Arc::new(ScriptedClock::new([999, 1000, 1001, 1002]));
        let writer = TraceWriter::create_with_clock(&dir, "t1", "r1", "th", clock).unwrap();
        assert_eq!(
            read(&dir.join(MANIFEST_FILE)),
            "{\n  \"schema_version\": 1,\n  \"trace_id\": \"t1\",\n  \"rollout_id\": \"r1\",\n  \"root_thread_id\": \"th\",\n  \"started_at_unix_ms\": 999,\n  \"raw_event_log\": \"trace.jsonl\",\n  \"payloads_dir\": \"payloads\"\n}"
        );

        let first = writer
            .append(
                RawTraceEventPayload::RolloutStarted { trace_id: "t1".into(), root_thread_id: "th".into() },
                None,
                None,
            )
            .unwrap();
        let metadata = writer.write_json_payload(RawPayloadKind::SessionMetadata, &json!({"model": "m"})).unwrap();
        let request = writer.write_json_payload(RawPayloadKind::InferenceRequest, &json!({"input": []})).unwrap();
        let second = writer
            .append(
                RawTraceEventPayload::ThreadStarted {
                    thread_id: "th".into(),
                    agent_path: "/root".into(),
                    metadata_payload: Some(metadata.clone()),
                },
                None,
                None,
            )
            .unwrap();
        let third = writer.append(turn_started("u1"), Some("th"), Some("u1")).unwrap();

        assert_eq!((first.seq, second.seq, third.seq), (1, 2, 3));
        assert_eq!((first.wall_time_unix_ms, third.wall_time_unix_ms), (1000, 1002));
        assert_eq!((metadata.raw_payload_id.as_str(), metadata.path.as_str()), ("raw_payload:1", "payloads/1.json"));
        assert_eq!((request.raw_payload_id.as_str(), request.path.as_str()), ("raw_payload:2", "payloads/2.json"));
        assert_eq!(read(&dir.join("payloads/1.json")), "{\n  \"model\": \"m\"\n}");
        assert_eq!(read(&dir.join("payloads/2.json")), "{\n  \"input\": []\n}");
        assert_eq!(
            read(&dir.join(EVENT_LOG_FILE)),
            concat!(
                r#"{"schema_version":1,"seq":1,"wall_time_unix_ms":1000,"rollout_id":"r1","thread_id":null,"codex_turn_id":null,"payload":{"type":"rollout_started","trace_id":"t1","root_thread_id":"th"}}"#,
                "\n",
                r#"{"schema_version":1,"seq":2,"wall_time_unix_ms":1001,"rollout_id":"r1","thread_id":null,"codex_turn_id":null,"payload":{"type":"thread_started","thread_id":"th","agent_path":"/root","metadata_payload":{"raw_payload_id":"raw_payload:1","kind":{"type":"session_metadata"},"path":"payloads/1.json"}}}"#,
                "\n",
                r#"{"schema_version":1,"seq":3,"wall_time_unix_ms":1002,"rollout_id":"r1","thread_id":"th","codex_turn_id":"u1","payload":{"type":"codex_turn_started","codex_turn_id":"u1","thread_id":"th"}}"#,
                "\n",
            )
        );
        // Temporary payload files are all renamed into place.
        let mut names: Vec<_> = fs::read_dir(dir.join(PAYLOADS_DIR)).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        assert_eq!(names, ["1.json", "2.json"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn payload_keys_keep_serialization_order() {
        #[derive(Serialize)]
        struct Response {
            response_id: &'static str,
            output_items: Vec<u8>,
        }
        let dir = scratch("key-order");
        let writer = TraceWriter::create(&dir, "t", "r", "th").unwrap();
        let payload = writer
            .write_json_payload(
                RawPayloadKind::InferenceResponse,
                &Response { response_id: "resp", output_items: vec![] },
            )
            .unwrap();
        assert_eq!(read(&dir.join(payload.path)), "{\n  \"response_id\": \"resp\",\n  \"output_items\": []\n}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn refuses_to_write_over_an_existing_bundle() {
        let dir = scratch("existing");
        let writer = TraceWriter::create(&dir, "t", "r", "th").unwrap();
        writer.append(turn_started("u1"), None, None).unwrap();
        let err = TraceWriter::create(&dir, "t2", "r", "th").unwrap_err();
        assert_eq!(err.kind, ErrorKind::Write);
        assert!(err.message.contains("already exists"), "{err}");
        // Without a manifest, the event log still marks the bundle.
        fs::remove_file(dir.join(MANIFEST_FILE)).unwrap();
        let err = TraceWriter::create(&dir, "t2", "r", "th").unwrap_err();
        assert!(err.to_string().contains("trace.jsonl: a bundle already exists"), "{err}");
        assert_eq!(read(&dir.join(EVENT_LOG_FILE)).lines().count(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }

    /// `/dev/full` fails every write with "no space left on device": a real
    /// I/O error on an open log.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_failed_append_stops_the_writer() {
        let dir = scratch("failed-append");
        let healthy = TraceWriter::create(&dir, "t", "r", "th").unwrap();
        let full = OpenOptions::new().append(true).open("/dev/full").unwrap();
        let writer = TraceWriter::from_parts(dir.clone(), healthy.manifest().clone(), Arc::new(FixedClock(5)), full);
        assert!(writer.is_open());

        let err = writer.append(turn_started("u1"), None, None).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Write);
        assert_eq!(err.location.seq, Some(1));
        assert_eq!(err.location.file.as_deref(), Some(Path::new(EVENT_LOG_FILE)));
        assert!(err.message.starts_with("append event seq 1: "), "{err}");
        assert!(!writer.is_open());

        // Later events would follow a gap: refused, naming the first failure.
        let err = writer.append(turn_started("u2"), None, None).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Write);
        assert!(err.message.contains("stopped after an earlier failure (append event seq 1: "), "{err}");
        let err = writer.write_json_payload(RawPayloadKind::ToolResult, &json!(1)).unwrap_err();
        assert!(err.message.contains("stopped after an earlier failure"), "{err}");
        assert_eq!(fs::read_dir(dir.join(PAYLOADS_DIR)).unwrap().count(), 0);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_payload_write_leaves_no_file_and_keeps_the_log_going() {
        let dir = scratch("failed-payload");
        let writer = TraceWriter::create_with_clock(&dir, "t", "r", "th", Arc::new(FixedClock(7))).unwrap();
        fs::remove_dir(dir.join(PAYLOADS_DIR)).unwrap();
        let err = writer.write_json_payload(RawPayloadKind::ToolResult, &json!({"ok": true})).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Write);
        assert_eq!(err.location.file.as_deref(), Some(Path::new(PAYLOADS_DIR)));
        assert!(err.message.starts_with("write tool_result payload: "), "{err}");
        // No event names the payload, so the log has no gap: it stays usable.
        assert!(writer.is_open());
        let event = writer
            .append(
                RawTraceEventPayload::ToolCallEnded {
                    tool_call_id: "tool-1".into(),
                    status: ExecutionStatus::Failed,
                    result_payload: None,
                },
                Some("th"),
                Some("u1"),
            )
            .unwrap();
        assert_eq!(event.seq, 1);
        fs::create_dir(dir.join(PAYLOADS_DIR)).unwrap();
        let payload = writer.write_json_payload(RawPayloadKind::ToolResult, &json!(null)).unwrap();
        // Nothing was renamed into place before, so no ordinal was spent.
        assert_eq!(payload.raw_payload_id, "raw_payload:1");
        assert_eq!(read(&dir.join("payloads/1.json")), "null");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_closed_writer_refuses_writes() {
        let dir = scratch("closed");
        let writer = TraceWriter::create(&dir, "t", "r", "th").unwrap();
        writer.append(RawTraceEventPayload::RolloutEnded { status: RolloutStatus::Completed }, None, None).unwrap();
        writer.close();
        writer.close();
        assert!(!writer.is_open());
        let err = writer.append(turn_started("u1"), None, None).unwrap_err();
        assert_eq!((err.kind, err.message.as_str()), (ErrorKind::Write, "writer is closed"));
        assert!(writer.write_json_payload(RawPayloadKind::ToolResult, &json!(1)).is_err());
        assert_eq!(read(&dir.join(EVENT_LOG_FILE)).lines().count(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn concurrent_appends_keep_seq_in_line_order() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<TraceWriter>();

        let dir = scratch("concurrent");
        let writer = Arc::new(TraceWriter::create(&dir, "t", "r", "th").unwrap());
        let threads: Vec<_> = (0..8)
            .map(|thread| {
                let writer = Arc::clone(&writer);
                std::thread::spawn(move || {
                    for n in 0..25 {
                        let body = json!({"thread": thread, "n": n});
                        let payload = writer.write_json_payload(RawPayloadKind::ToolResult, &body).unwrap();
                        writer
                            .append(
                                RawTraceEventPayload::ToolCallEnded {
                                    tool_call_id: format!("tool-{thread}-{n}"),
                                    status: ExecutionStatus::Completed,
                                    result_payload: Some(payload),
                                },
                                None,
                                None,
                            )
                            .unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }

        let log = read(&dir.join(EVENT_LOG_FILE));
        let events: Vec<RawTraceEvent> = log.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
        assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), (1..=200).collect::<Vec<u64>>());
        let mut ordinals = Vec::new();
        for event in &events {
            let RawTraceEventPayload::ToolCallEnded { tool_call_id, result_payload: Some(payload), .. } =
                &event.payload
            else {
                panic!("unexpected event {event:?}");
            };
            let body: serde_json::Value = serde_json::from_str(&read(&dir.join(&payload.path))).unwrap();
            assert_eq!(format!("tool-{}-{}", body["thread"], body["n"]), *tool_call_id);
            ordinals.push(payload.raw_payload_id.trim_start_matches("raw_payload:").parse::<u64>().unwrap());
        }
        ordinals.sort_unstable();
        assert_eq!(ordinals, (1..=200).collect::<Vec<u64>>());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn clocks() {
        let scripted = ScriptedClock::new([5, -3]);
        assert_eq!([scripted.now_unix_ms(), scripted.now_unix_ms(), scripted.now_unix_ms()], [5, -3, -3]);
        assert_eq!(ScriptedClock::new([]).now_unix_ms(), 0);
        assert_eq!(FixedClock(42).now_unix_ms(), 42);
        // Any time after this code was written.
        assert!(SystemClock.now_unix_ms() > 1_700_000_000_000);
    }
}
