//! Reading a bundle: the manifest, the event log line by line, and payload
//! files on demand.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Component, Path, PathBuf};

use serde_json::Value;

use crate::error::{Error, ErrorKind, Result};
use crate::format::{Manifest, RawPayloadRef, RawTraceEvent, EVENT_LOG_FILE, MANIFEST_FILE, SCHEMA_VERSION};

/// An opened bundle directory with its parsed manifest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TraceBundle {
    root: PathBuf,
    manifest: Manifest,
}

/// One parsed event with the 1-based line it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct LocatedEvent {
    pub line: u64,
    pub event: RawTraceEvent,
}

impl TraceBundle {
    /// Opens a bundle and checks its manifest, including the schema version.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let bundle = Self::open_unchecked_version(path)?;
        if bundle.manifest.schema_version != SCHEMA_VERSION {
            return Err(Error::new(
                ErrorKind::Bundle,
                format!(
                    "unsupported manifest schema_version {} (this library reads version {SCHEMA_VERSION})",
                    bundle.manifest.schema_version
                ),
            )
            .with_bundle(&bundle.root)
            .with_file(MANIFEST_FILE));
        }
        Ok(bundle)
    }

    /// Opens a bundle the way the reference reducer does: the manifest must
    /// parse, but its `schema_version` value is not checked.
    pub fn open_unchecked_version(path: impl AsRef<Path>) -> Result<Self> {
        let root = path.as_ref().to_path_buf();
        let bundle_error = |message: String| Error::new(ErrorKind::Bundle, message).with_bundle(&root);
        if !root.is_dir() {
            let why = if root.exists() { "is not a directory" } else { "does not exist" };
            return Err(bundle_error(format!("bundle path {why}")));
        }
        let manifest_path = root.join(MANIFEST_FILE);
        let bytes = std::fs::read(&manifest_path)
            .map_err(|err| bundle_error(format!("{err}")).with_file(MANIFEST_FILE))?;
        let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|err| {
            bundle_error(format!("read {}: {err}", manifest_path.display())).with_file(MANIFEST_FILE)
        })?;
        Ok(TraceBundle { root, manifest })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn event_log_path(&self) -> PathBuf {
        self.root.join(EVENT_LOG_FILE)
    }

    /// The raw events in file order. Blank lines are skipped; each item is
    /// one event or the error that stops reading.
    pub fn events(&self) -> Result<EventReader> {
        let path = self.event_log_path();
        let file = File::open(&path).map_err(|err| {
            Error::new(ErrorKind::Bundle, format!("open trace event log {}: {err}", path.display()))
                .with_bundle(&self.root)
                .with_file(EVENT_LOG_FILE)
        })?;
        Ok(EventReader { root: self.root.clone(), reader: BufReader::new(file), line: 0, buf: Vec::new(), done: false })
    }

    /// Where a payload reference points, refusing anything outside the bundle.
    pub fn payload_path(&self, payload: &RawPayloadRef) -> Result<PathBuf> {
        let relative = Path::new(&payload.path);
        let escapes = relative.is_absolute()
            || relative.components().any(|c| !matches!(c, Component::Normal(_) | Component::CurDir));
        if escapes {
            return Err(Error::new(
                ErrorKind::UnsafePath,
                format!("payload {} has path {:?} outside the bundle", payload.raw_payload_id, payload.path),
            )
            .with_bundle(&self.root)
            .with_payload(&payload.raw_payload_id));
        }
        let full = self.root.join(relative);
        // A symlink inside the bundle may still lead out of it.
        if let (Ok(real), Ok(real_root)) = (full.canonicalize(), self.root.canonicalize()) {
            if !real.starts_with(&real_root) {
                return Err(Error::new(
                    ErrorKind::UnsafePath,
                    format!(
                        "payload {} path {:?} resolves outside the bundle",
                        payload.raw_payload_id, payload.path
                    ),
                )
                .with_bundle(&self.root)
                .with_payload(&payload.raw_payload_id));
            }
        }
        Ok(full)
    }

    /// The payload file's bytes (`open payload <id>` on failure).
    pub fn read_payload_bytes(&self, payload: &RawPayloadRef) -> Result<Vec<u8>> {
        let path = self.payload_path(payload)?;
        std::fs::read(&path).map_err(|err| {
            Error::new(ErrorKind::Payload, format!("open payload {} ({}): {err}", payload.raw_payload_id, payload.path))
                .with_bundle(&self.root)
                .with_payload(&payload.raw_payload_id)
        })
    }

    /// The payload parsed as one JSON value (`parse payload <id>` on failure).
    pub fn read_payload(&self, payload: &RawPayloadRef) -> Result<Value> {
        let bytes = self.read_payload_bytes(payload)?;
        serde_json::from_slice(&bytes).map_err(|err| {
            Error::new(ErrorKind::Payload, format!("parse payload {} ({}): {err}", payload.raw_payload_id, payload.path))
                .with_bundle(&self.root)
                .with_payload(&payload.raw_payload_id)
        })
    }
}

/// Streams `trace.jsonl` one line at a time.
pub struct EventReader {
    root: PathBuf,
    reader: BufReader<File>,
    line: u64,
    buf: Vec<u8>,
    done: bool,
}

impl EventReader {
    fn error(&self, message: String) -> Error {
        Error::new(ErrorKind::Event, message).with_bundle(&self.root).with_file(EVENT_LOG_FILE).with_line(self.line)
    }
}

impl Iterator for EventReader {
    type Item = Result<LocatedEvent>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            self.buf.clear();
            self.line += 1;
            match self.reader.read_until(b'\n', &mut self.buf) {
                Ok(0) => {
                    self.done = true;
                    return None;
                }
                Ok(_) => {}
                Err(err) => {
                    self.done = true;
                    return Some(Err(self.error(format!("read trace event line {}: {err}", self.line))));
                }
            }
            let mut bytes = self.buf.as_slice();
            if let Some(rest) = bytes.strip_suffix(b"\n") {
                bytes = rest.strip_suffix(b"\r").unwrap_or(rest);
            }
            let text = match std::str::from_utf8(bytes) {
                Ok(text) => text,
                Err(_) => {
                    self.done = true;
                    return Some(Err(self.error(format!(
                        "read trace event line {}: stream did not contain valid UTF-8",
                        self.line
                    ))));
                }
            };
            if text.trim().is_empty() {
                continue;
            }
            return Some(match serde_json::from_str::<RawTraceEvent>(text) {
                Ok(event) => Ok(LocatedEvent { line: self.line, event }),
                Err(err) => {
                    self.done = true;
                    Err(self.error(format!("parse trace event line {}: {err}", self.line)))
                }
            });
        }
        None
    }
}
