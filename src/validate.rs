//! Checking a bundle without reducing it to a file: every problem found,
//! not just the first.
//!
//! Problems the reference reducer tolerates (seq gaps, a foreign
//! `rollout_id`, non-canonical payload ids) are warnings; what makes the
//! bundle unreadable or the replay fail is an error. `strict` validation
//! fails on warnings too.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::bundle::{parse_within_depth, JsonFailure, TraceBundle};
use crate::compat::Profile;
use crate::error::{Error, ErrorKind};
use crate::format::{RawPayloadRef, RawTraceEvent, EVENT_LOG_FILE, MANIFEST_FILE, PAYLOADS_DIR, SCHEMA_VERSION};
use crate::limits::Limits;
use crate::reducer::ReplayOptions;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Severity {
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub severity: Severity,
    pub error: Error,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationReport {
    pub bundle: PathBuf,
    pub problems: Vec<Problem>,
    /// Events that parsed.
    pub events: u64,
    /// Distinct payload ids referenced.
    pub payloads: u64,
}

impl ValidationReport {
    /// No errors, and with `strict` no warnings either.
    pub fn is_valid(&self, strict: bool) -> bool {
        self.problems.iter().all(|p| !strict && p.severity == Severity::Warning)
    }

    pub fn errors(&self) -> impl Iterator<Item = &Problem> {
        self.problems.iter().filter(|p| p.severity == Severity::Error)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Problem> {
        self.problems.iter().filter(|p| p.severity == Severity::Warning)
    }
}

struct Validator {
    root: PathBuf,
    problems: Vec<Problem>,
}

impl Validator {
    fn report(&mut self, severity: Severity, error: Error) {
        self.problems.push(Problem { severity, error: error.with_bundle(&self.root) });
    }

    fn warn_line(&mut self, line: u64, seq: Option<u64>, message: String) {
        let mut error = Error::new(ErrorKind::Event, message).with_file(EVENT_LOG_FILE).with_line(line);
        if let Some(seq) = seq {
            error = error.with_seq(seq);
        }
        self.report(Severity::Warning, error);
    }
}

/// Validates the bundle at `path` for the reducer of `profile`; the report
/// lists every problem found.
pub fn validate(path: impl AsRef<Path>, limits: Limits, profile: &'static Profile) -> ValidationReport {
    let root = path.as_ref().to_path_buf();
    let mut v = Validator { root: root.clone(), problems: Vec::new() };
    let bundle = match TraceBundle::open_unchecked_version(&root, limits) {
        Ok(bundle) => bundle,
        Err(error) => {
            v.report(Severity::Error, error);
            return ValidationReport { bundle: root, problems: v.problems, events: 0, payloads: 0 };
        }
    };
    check_manifest(&mut v, &bundle);
    let (events, refs) = check_events(&mut v, &bundle);
    let payloads = refs.len() as u64;
    check_payloads(&mut v, &bundle, &refs);
    // The replay finds what only the reducer rules can: broken references
    // between events, malformed payload shapes. Lenient, it finds every
    // event that cannot be reduced, not just the first.
    if v.errors_so_far() == 0 {
        let options = ReplayOptions { profile, limits, lenient: true, ..ReplayOptions::default() };
        match crate::reducer::replay_with(bundle, &options) {
            Ok(replay) => replay.diagnostics.into_iter().for_each(|d| v.report(Severity::Error, d.error)),
            Err(error) => v.report(Severity::Error, error),
        }
    }
    ValidationReport { bundle: root, problems: v.problems, events, payloads }
}

impl Validator {
    fn errors_so_far(&self) -> usize {
        self.problems.iter().filter(|p| p.severity == Severity::Error).count()
    }
}

fn check_manifest(v: &mut Validator, bundle: &TraceBundle) {
    let manifest = bundle.manifest();
    let manifest_problem = |message: String| Error::new(ErrorKind::Bundle, message).with_file(MANIFEST_FILE);
    if manifest.schema_version != SCHEMA_VERSION {
        v.report(
            Severity::Error,
            manifest_problem(format!("unsupported manifest schema_version {}", manifest.schema_version)),
        );
    }
    for (key, value) in [
        ("trace_id", &manifest.trace_id),
        ("rollout_id", &manifest.rollout_id),
        ("root_thread_id", &manifest.root_thread_id),
    ] {
        if value.is_empty() {
            v.report(Severity::Error, manifest_problem(format!("manifest {key} is empty")));
        }
    }
    if manifest.raw_event_log != EVENT_LOG_FILE {
        v.report(
            Severity::Warning,
            manifest_problem(format!(
                "manifest raw_event_log is {:?}; readers always use {EVENT_LOG_FILE:?}",
                crate::bundle::excerpt(&manifest.raw_event_log)
            )),
        );
    }
    if manifest.payloads_dir != PAYLOADS_DIR {
        v.report(
            Severity::Warning,
            manifest_problem(format!(
                "manifest payloads_dir is {:?}, not {PAYLOADS_DIR:?}",
                crate::bundle::excerpt(&manifest.payloads_dir)
            )),
        );
    }
}

/// Every line of the event log, continuing past bad ones. Returns the
/// number of events that parsed and each payload ref with its first line.
fn check_events(v: &mut Validator, bundle: &TraceBundle) -> (u64, Vec<(RawPayloadRef, u64)>) {
    let path = bundle.event_log_path();
    let limits = bundle.limits();
    let size = std::fs::metadata(&path).map(|m| m.len());
    let bytes = match size {
        Err(err) => {
            v.report(
                Severity::Error,
                Error::new(ErrorKind::Bundle, format!("open trace event log: {err}")).with_file(EVENT_LOG_FILE),
            );
            return (0, Vec::new());
        }
        Ok(size) if size > limits.max_bundle_bytes => {
            v.report(
                Severity::Error,
                Error::new(ErrorKind::Limit, format!("trace event log is {size} bytes, over the bundle limit"))
                    .with_file(EVENT_LOG_FILE),
            );
            return (0, Vec::new());
        }
        Ok(_) => match crate::bundle::open_regular(&path).and_then(|(mut file, _)| {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut file, &mut bytes).map(|_| bytes)
        }) {
            Ok(bytes) => bytes,
            Err(err) => {
                v.report(
                    Severity::Error,
                    Error::new(ErrorKind::Bundle, format!("read trace event log: {err}")).with_file(EVENT_LOG_FILE),
                );
                return (0, Vec::new());
            }
        },
    };
    let manifest = bundle.manifest();
    let mut events = 0u64;
    let mut expected_seq = 1u64;
    let mut refs: Vec<(RawPayloadRef, u64)> = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let ends_with_newline = bytes.last().is_none_or(|b| *b == b'\n');
    let lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    let last = lines.len();
    for (index, raw) in lines.into_iter().enumerate() {
        let line = index as u64 + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let event_error =
            |message: String| Error::new(ErrorKind::Event, message).with_file(EVENT_LOG_FILE).with_line(line);
        if raw.len() as u64 > limits.max_record_bytes {
            v.report(
                Severity::Error,
                event_error(format!("line is {} bytes, over the record limit", raw.len())).with_kind(ErrorKind::Limit),
            );
            continue;
        }
        let Ok(text) = std::str::from_utf8(raw) else {
            v.report(Severity::Error, event_error(format!("read trace event line {line}: invalid UTF-8")));
            continue;
        };
        if text.trim().is_empty() {
            continue;
        }
        let event: RawTraceEvent = match parse_within_depth(raw, limits.max_json_depth, || serde_json::from_str(text)) {
            Ok(event) => event,
            Err(JsonFailure::TooDeep) => {
                v.report(Severity::Error, event_error("JSON nests too deeply".to_string()).with_kind(ErrorKind::Limit));
                continue;
            }
            Err(JsonFailure::Syntax(err)) => {
                let truncated = index + 1 == last && !ends_with_newline;
                let hint = if truncated { " (the log ends in an incomplete line)" } else { "" };
                v.report(Severity::Error, event_error(format!("parse trace event line {line}: {err}{hint}")));
                continue;
            }
        };
        events += 1;
        let seq = Some(event.seq);
        if event.schema_version != SCHEMA_VERSION {
            v.warn_line(
                line,
                seq,
                format!("event schema_version {} (expected {SCHEMA_VERSION})", event.schema_version),
            );
        }
        if event.seq != expected_seq {
            v.warn_line(
                line,
                seq,
                format!("seq {} where {expected_seq} was expected (seq must count from 1 without gaps)", event.seq),
            );
        }
        expected_seq = event.seq.saturating_add(1);
        if event.rollout_id != manifest.rollout_id {
            v.warn_line(
                line,
                seq,
                format!(
                    "event rollout_id {:?} differs from the manifest's {:?}",
                    crate::bundle::excerpt(&event.rollout_id),
                    crate::bundle::excerpt(&manifest.rollout_id)
                ),
            );
        }
        for payload in event.payload.payload_refs() {
            match seen.get(&payload.raw_payload_id) {
                Some(&first) if refs[first].0 != *payload => v.warn_line(
                    line,
                    seq,
                    format!(
                        "payload {} is referenced with a different kind or path than on line {}",
                        payload.raw_payload_id, refs[first].1
                    ),
                ),
                Some(_) => {}
                None => {
                    if !is_canonical(payload) {
                        v.warn_line(
                            line,
                            seq,
                            format!(
                                "payload ref {} -> {:?} is not canonical (raw_payload:N -> payloads/N.json)",
                                crate::bundle::excerpt(&payload.raw_payload_id),
                                crate::bundle::excerpt(&payload.path)
                            ),
                        );
                    }
                    seen.insert(payload.raw_payload_id.clone(), refs.len());
                    refs.push((payload.clone(), line));
                }
            }
        }
        if events > limits.max_events {
            v.report(
                Severity::Error,
                event_error(format!("more than {} events", limits.max_events)).with_kind(ErrorKind::Limit),
            );
            break;
        }
    }
    if refs.len() as u64 > limits.max_payloads {
        v.report(
            Severity::Error,
            Error::new(ErrorKind::Limit, format!("more than {} payloads", limits.max_payloads))
                .with_file(EVENT_LOG_FILE),
        );
    }
    (events, refs)
}

fn is_canonical(payload: &RawPayloadRef) -> bool {
    let Some(n) = payload.raw_payload_id.strip_prefix("raw_payload:") else {
        return false;
    };
    !n.is_empty()
        && n.bytes().all(|b| b.is_ascii_digit())
        && !n.starts_with('0')
        && payload.path == format!("payloads/{n}.json")
}

/// Every referenced payload: inside the bundle, present, within limits,
/// and valid UTF-8 JSON.
fn check_payloads(v: &mut Validator, bundle: &TraceBundle, refs: &[(RawPayloadRef, u64)]) {
    for (payload, line) in refs {
        // Parsing also rejects invalid UTF-8 inside strings.
        if let Err(error) = bundle.read_payload_sized(payload) {
            v.report(
                Severity::Error,
                error.with_payload(&payload.raw_payload_id).with_file(EVENT_LOG_FILE).with_line(*line),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::RawPayloadKind;

    #[test]
    fn canonical_payload_refs() {
        let r = |id: &str, path: &str| RawPayloadRef {
            raw_payload_id: id.into(),
            kind: RawPayloadKind::ToolResult,
            path: path.into(),
        };
        assert!(is_canonical(&r("raw_payload:12", "payloads/12.json")));
        assert!(!is_canonical(&r("raw_payload:12", "payloads/13.json")));
        assert!(!is_canonical(&r("raw_payload:012", "payloads/012.json")));
        assert!(!is_canonical(&r("payload:1", "payloads/1.json")));
    }
}
