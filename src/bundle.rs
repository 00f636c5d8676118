//! Reading a bundle: the manifest, the event log line by line, and payload
//! files on demand.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::error::{Error, ErrorKind, Result};
use crate::format::{
    Manifest, RawPayloadRef, RawTraceEvent, EVENT_LOG_FILE, MANIFEST_FILE, PAYLOADS_DIR, SCHEMA_VERSION,
};
use crate::limits::{json_depth_exceeds, Limits};

/// An opened bundle directory with its parsed manifest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TraceBundle {
    root: PathBuf,
    manifest: Manifest,
    limits: Limits,
    payload_dir: PayloadDir,
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
        Self::open_with_limits(path, Limits::default())
    }

    /// `open` with explicit admission limits.
    pub fn open_with_limits(path: impl AsRef<Path>, limits: Limits) -> Result<Self> {
        let bundle = Self::open_unchecked_version(path, limits)?;
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
    /// Layout paths in the manifest must stay inside the bundle, although
    /// the reader itself always uses the fixed names.
    pub fn open_unchecked_version(path: impl AsRef<Path>, limits: Limits) -> Result<Self> {
        let root = path.as_ref().to_path_buf();
        let bundle_error = |message: String| Error::new(ErrorKind::Bundle, message).with_bundle(&root);
        if !root.is_dir() {
            let why = if root.exists() { "is not a directory" } else { "does not exist" };
            return Err(bundle_error(format!("bundle path {why}")));
        }
        let manifest_path = root.join(MANIFEST_FILE);
        let bytes = read_bounded(&manifest_path, limits.max_record_bytes)
            .map_err(|err| err.into_error(&root, MANIFEST_FILE, true, ErrorKind::Bundle, String::new()))?;
        let manifest: Manifest = parse_within_depth(&bytes, limits.max_json_depth, || serde_json::from_slice(&bytes))
            .map_err(|failure| match failure {
                JsonFailure::TooDeep => {
                    Error::new(ErrorKind::Limit, format!("manifest nests deeper than {} levels", limits.max_json_depth))
                        .with_bundle(&root)
                }
                JsonFailure::Syntax(err) => bundle_error(format!("read {}: {err}", manifest_path.display())),
            })
            .map_err(|err| err.with_file(MANIFEST_FILE))?;
        for (key, value) in [("raw_event_log", &manifest.raw_event_log), ("payloads_dir", &manifest.payloads_dir)] {
            if !is_inside(Path::new(value)) {
                return Err(Error::new(
                    ErrorKind::UnsafePath,
                    format!("manifest {key} {:?} points outside the bundle", excerpt(value)),
                )
                .with_bundle(&root)
                .with_file(MANIFEST_FILE));
            }
        }
        Ok(TraceBundle { root, manifest, limits, payload_dir: PayloadDir::default() })
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// A bundle from a root and manifest known already, without reading
    /// anything (e.g. when unpickling one in another process).
    pub fn from_parts(root: PathBuf, manifest: Manifest, limits: Limits) -> Self {
        TraceBundle { root, manifest, limits, payload_dir: PayloadDir::default() }
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
        self.events_from(0, 0)
    }

    /// The events after byte `offset` of the log (the start of the line
    /// after line `lines_before`), for following a log as it grows.
    pub fn events_from(&self, offset: u64, lines_before: u64) -> Result<EventReader> {
        let path = self.event_log_path();
        let (file, size) = open_regular(&path).map_err(|err| {
            Error::new(ErrorKind::Bundle, format!("open trace event log {}: {err}", path.display()))
                .with_bundle(&self.root)
                .with_file(EVENT_LOG_FILE)
        })?;
        if size > self.limits.max_bundle_bytes {
            return Err(Error::new(
                ErrorKind::Limit,
                format!("trace event log is {size} bytes, over the bundle limit of {}", self.limits.max_bundle_bytes),
            )
            .with_bundle(&self.root)
            .with_file(EVENT_LOG_FILE));
        }
        let mut file = file;
        if offset > 0 {
            use std::io::{Seek, SeekFrom};
            file.seek(SeekFrom::Start(offset)).map_err(|err| {
                Error::new(ErrorKind::Bundle, format!("seek in trace event log {}: {err}", path.display()))
                    .with_bundle(&self.root)
                    .with_file(EVENT_LOG_FILE)
            })?;
        }
        Ok(EventReader {
            root: self.root.clone(),
            reader: BufReader::new(file),
            limits: self.limits,
            line: lines_before,
            position: offset,
            complete_lines_only: false,
            events: 0,
            buf: Vec::new(),
            done: false,
            event_types: crate::compat::EVENTS_ALL,
            keep_going: false,
        })
    }

    /// Where a payload reference points, refusing anything outside the bundle.
    pub fn payload_path(&self, payload: &RawPayloadRef) -> Result<PathBuf> {
        let relative = Path::new(&payload.path);
        if !is_inside(relative) {
            return Err(Error::new(
                ErrorKind::UnsafePath,
                format!("payload {} has path {:?} outside the bundle", payload.raw_payload_id, excerpt(&payload.path)),
            )
            .with_bundle(&self.root)
            .with_payload(&payload.raw_payload_id));
        }
        let full = self.root.join(relative);
        // A symlink inside the bundle may still lead out of it. Only then is
        // the (costly) full resolution needed.
        let mut prefix = self.root.clone();
        let has_symlink = relative.components().any(|component| {
            prefix.push(component);
            std::fs::symlink_metadata(&prefix).is_ok_and(|m| m.file_type().is_symlink())
        });
        if !has_symlink {
            return Ok(full);
        }
        if let (Ok(real), Ok(real_root)) = (full.canonicalize(), self.root.canonicalize()) {
            if !real.starts_with(&real_root) {
                return Err(Error::new(
                    ErrorKind::UnsafePath,
                    format!(
                        "payload {} path {:?} resolves outside the bundle",
                        payload.raw_payload_id,
                        excerpt(&payload.path)
                    ),
                )
                .with_bundle(&self.root)
                .with_payload(&payload.raw_payload_id));
            }
        }
        Ok(full)
    }

    /// The payload file's bytes (`open payload <id>` on failure). The size
    /// limit is checked before anything is read.
    pub fn read_payload_bytes(&self, payload: &RawPayloadRef) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        self.read_payload_into(payload, &mut bytes)?;
        Ok(bytes)
    }

    /// `read_payload_bytes` into `bytes` (cleared first), whose memory can
    /// then serve many payloads in turn.
    pub fn read_payload_into(&self, payload: &RawPayloadRef, bytes: &mut Vec<u8>) -> Result<()> {
        let opened = match self.payload_dir.open(&self.root, &payload.path) {
            Some(opened) => opened,
            None => open_regular(&self.payload_path(payload)?),
        };
        let id = &payload.raw_payload_id;
        read_bounded_from(opened, self.limits.max_record_bytes, bytes)
            .map_err(|err| {
                err.into_error(
                    &self.root,
                    &payload.path,
                    false,
                    ErrorKind::Payload,
                    format!("open payload {id} ({}): ", excerpt(&payload.path)),
                )
            })
            .map_err(|err| err.with_payload(id))
    }

    /// The payload parsed as one JSON value (`parse payload <id>` on failure).
    pub fn read_payload(&self, payload: &RawPayloadRef) -> Result<Value> {
        Ok(self.read_payload_sized(payload)?.0)
    }

    /// The parsed payload and its size in bytes.
    pub fn read_payload_sized(&self, payload: &RawPayloadRef) -> Result<(Value, u64)> {
        let bytes = self.read_payload_bytes(payload)?;
        Ok((self.parse_payload(payload, &bytes)?, bytes.len() as u64))
    }

    /// Parses the bytes of `payload` as one JSON value (`parse payload <id>`
    /// on failure; a limit error if it nests deeper than allowed).
    pub fn parse_payload(&self, payload: &RawPayloadRef, bytes: &[u8]) -> Result<Value> {
        let parse_error = |message: String| {
            Error::new(ErrorKind::Payload, message).with_bundle(&self.root).with_payload(&payload.raw_payload_id)
        };
        let too_deep = || {
            parse_error(format!(
                "parse payload {} ({}): JSON nests deeper than {} levels",
                payload.raw_payload_id,
                excerpt(&payload.path),
                self.limits.max_json_depth
            ))
            .with_kind(ErrorKind::Limit)
        };
        parse_within_depth(bytes, self.limits.max_json_depth, || serde_json::from_slice(bytes)).map_err(|failure| {
            match failure {
                JsonFailure::TooDeep => too_deep(),
                JsonFailure::Syntax(err) => {
                    parse_error(format!("parse payload {} ({}): {err}", payload.raw_payload_id, excerpt(&payload.path)))
                }
            }
        })
    }
}

impl EventReader {
    fn known(&self, event: &RawTraceEvent) -> bool {
        // The full list knows every type the parser produces.
        self.event_types.len() == crate::compat::EVENTS_ALL.len()
            || self.event_types.contains(&event.payload.type_name())
    }
}

/// serde's message for an internally tagged payload whose type is not among
/// `known`, positioned (as serde_json does) just after the type's value.
fn unknown_event_type(text: &str, type_name: &str, known: &[&str]) -> String {
    #[derive(Deserialize)]
    struct Envelope<'a> {
        #[serde(borrow)]
        payload: &'a RawValue,
    }
    let column = serde_json::from_str::<Envelope<'_>>(text)
        .ok()
        .and_then(|envelope| {
            let fields = serde_json::from_str::<PayloadFields<'_>>(envelope.payload.get()).ok()?.0;
            let (_, tag) = fields.into_iter().find(|(key, _)| key == "type")?;
            Some(tag.get().as_ptr() as usize + tag.get().len() - text.as_ptr() as usize)
        })
        .unwrap_or(0);
    let expected: Vec<String> = known.iter().map(|name| format!("`{name}`")).collect();
    format!("unknown variant `{type_name}`, expected one of {} at line 1 column {column}", expected.join(", "))
}

/// An object's fields in source order, values unparsed.
struct PayloadFields<'a>(Vec<(std::borrow::Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for PayloadFields<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct Fields;
        impl<'de> serde::de::Visitor<'de> for Fields {
            type Value = PayloadFields<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(self, mut map: M) -> std::result::Result<Self::Value, M::Error> {
                let mut fields = Vec::new();
                while let Some(entry) = map.next_entry::<std::borrow::Cow<'de, str>, &'de RawValue>()? {
                    fields.push(entry);
                }
                Ok(PayloadFields(fields))
            }
        }
        deserializer.deserialize_map(Fields)
    }
}

/// Why JSON text was not read under a nesting limit.
pub(crate) enum JsonFailure {
    TooDeep,
    Syntax(serde_json::Error),
}

/// `parse` of `text` under a nesting limit of `max_depth`, judged as if
/// before parsing. serde_json itself refuses to nest deeper than
/// `PARSER_MAX_DEPTH`, so under a limit at least that high a text that
/// parses is within it, and the byte scan (as costly as the parse) only has
/// to name the error of one that fails.
pub(crate) fn parse_within_depth<T>(
    text: &[u8],
    max_depth: u32,
    parse: impl FnOnce() -> serde_json::Result<T>,
) -> std::result::Result<T, JsonFailure> {
    let scan_first = max_depth < PARSER_MAX_DEPTH;
    if scan_first && json_depth_exceeds(text, max_depth) {
        return Err(JsonFailure::TooDeep);
    }
    parse().map_err(|err| {
        if !scan_first && json_depth_exceeds(text, max_depth) {
            JsonFailure::TooDeep
        } else {
            JsonFailure::Syntax(err)
        }
    })
}

/// The deepest nesting of arrays and objects serde_json parses into a
/// `Value`; one level more is its recursion-limit error.
pub(crate) const PARSER_MAX_DEPTH: u32 = 127;

/// Relative, and without `..` or root components.
fn is_inside(path: &Path) -> bool {
    !path.is_absolute() && path.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

/// At most 120 characters of untrusted text for an error message.
pub(crate) fn excerpt(text: &str) -> String {
    const MAX: usize = 120;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}

/// Why `read_bounded` failed.
enum ReadFailure {
    Io(std::io::Error),
    TooLarge { size: u64, limit: u64 },
}

impl ReadFailure {
    /// `file` is the file read, relative to the bundle; it is recorded as
    /// the error's file only when `locate` (payload errors are located by
    /// the event that names them instead).
    fn into_error(self, root: &Path, file: &str, locate: bool, io_kind: ErrorKind, io_prefix: String) -> Error {
        let error = match self {
            ReadFailure::Io(err) => Error::new(io_kind, format!("{io_prefix}{err}")),
            ReadFailure::TooLarge { size, limit } => Error::new(
                ErrorKind::Limit,
                format!("{} is {size} bytes, over the record limit of {limit}", excerpt(file)),
            ),
        }
        .with_bundle(root);
        if locate {
            error.with_file(file)
        } else {
            error
        }
    }
}

/// The bundle's `payloads` directory, through which a replay opens payload
/// files by name: one short lookup per file instead of the components of a
/// full path, each checked for a symlink (`payload_path`). Only plain
/// `payloads/<name>` paths go this way, and never through a symlink:
/// neither the directory nor the file may be one (`O_NOFOLLOW`); anything
/// else gets the full check.
///
/// The directory is open only while a replay holds it
/// (`TraceBundle::hold_payload_dir`): traces kept for later keep their
/// bundle, and thousands of them must not keep a descriptor each. It is not
/// part of the bundle's identity: clones start without it.
#[derive(Debug, Default)]
struct PayloadDir(Mutex<PayloadDirState>);

#[derive(Debug, Default)]
struct PayloadDirState {
    holders: usize,
    dir: Option<Arc<File>>,
}

/// While alive, the bundle's replays may open payloads through its
/// `payloads` directory; the last hold dropped closes it.
pub(crate) struct PayloadDirHold(Arc<TraceBundle>);

impl TraceBundle {
    pub(crate) fn hold_payload_dir(self: &Arc<Self>) -> PayloadDirHold {
        self.payload_dir.state().holders += 1;
        PayloadDirHold(self.clone())
    }
}

impl Drop for PayloadDirHold {
    fn drop(&mut self) {
        let mut state = self.0.payload_dir.state();
        state.holders -= 1;
        if state.holders == 0 {
            state.dir = None;
        }
    }
}

impl PayloadDir {
    fn state(&self) -> std::sync::MutexGuard<'_, PayloadDirState> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `open_regular` of the payload at `path`, or `None` when the full
    /// check must decide (or no replay holds the directory).
    #[cfg(unix)]
    fn open(&self, root: &Path, path: &str) -> Option<std::io::Result<(File, u64)>> {
        use std::ffi::CString;
        use std::os::fd::AsRawFd;
        let name = path.strip_prefix(PAYLOADS_DIR)?.strip_prefix('/')?;
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return None;
        }
        let name = CString::new(name).ok()?;
        let dir = {
            let mut state = self.state();
            if state.holders == 0 {
                return None;
            }
            if state.dir.is_none() {
                // Not kept when it fails: a live bundle may create it later.
                let dir = CString::new(root.join(PAYLOADS_DIR).into_os_string().into_encoded_bytes()).ok()?;
                state.dir = Some(Arc::new(open_no_follow(libc::AT_FDCWD, &dir, libc::O_DIRECTORY).ok()?));
            }
            state.dir.clone()?
        };
        match open_no_follow(dir.as_raw_fd(), &name, libc::O_NONBLOCK) {
            Ok(file) => Some(regular_size(file)),
            // A symlink: the full check decides where it leads.
            Err(err) if err.raw_os_error() == Some(libc::ELOOP) => None,
            Err(err) => Some(Err(err)),
        }
    }

    #[cfg(not(unix))]
    fn open(&self, _root: &Path, _path: &str) -> Option<std::io::Result<(File, u64)>> {
        None
    }
}

/// Opens `name` below the directory `dir` for reading, never following a
/// symlink in its last component.
#[cfg(unix)]
fn open_no_follow(dir: std::os::fd::RawFd, name: &std::ffi::CStr, flags: i32) -> std::io::Result<File> {
    use std::os::fd::FromRawFd;
    // SAFETY: `name` is NUL-terminated; a returned descriptor is ours alone.
    let fd = unsafe { libc::openat(dir, name.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW | flags) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened and is owned by nothing else.
    Ok(unsafe { File::from_raw_fd(fd) })
}

impl Clone for PayloadDir {
    fn clone(&self) -> Self {
        PayloadDir::default()
    }
}

impl PartialEq for PayloadDir {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for PayloadDir {}

impl std::hash::Hash for PayloadDir {
    fn hash<H: std::hash::Hasher>(&self, _: &mut H) {}
}

/// Opens a file for reading only if it is a regular file, and gives its
/// size. Anything else (a FIFO, a device) is refused: opening a FIFO would
/// wait for a writer forever, and a device can be endless.
pub(crate) fn open_regular(path: &Path) -> std::io::Result<(File, u64)> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    regular_size(options.open(path)?)
}

/// The file with its size, if it is a regular file.
fn regular_size(file: File) -> std::io::Result<(File, u64)> {
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file"));
    }
    Ok((file, metadata.len()))
}

/// Reads a whole file whose size is at most `limit`, judged before reading
/// (and enforced while reading, in case the file grows).
fn read_bounded(path: &Path, limit: u64) -> std::result::Result<Vec<u8>, ReadFailure> {
    let mut bytes = Vec::new();
    read_bounded_into(path, limit, &mut bytes)?;
    Ok(bytes)
}

/// `read_bounded` into `bytes`, replacing its content.
fn read_bounded_into(path: &Path, limit: u64, bytes: &mut Vec<u8>) -> std::result::Result<(), ReadFailure> {
    read_bounded_from(open_regular(path), limit, bytes)
}

/// `read_bounded_into` of a file `open_regular` opened.
fn read_bounded_from(
    opened: std::io::Result<(File, u64)>,
    limit: u64,
    bytes: &mut Vec<u8>,
) -> std::result::Result<(), ReadFailure> {
    bytes.clear();
    let (file, size) = opened.map_err(ReadFailure::Io)?;
    if size > limit {
        return Err(ReadFailure::TooLarge { size, limit });
    }
    bytes.reserve(size as usize);
    file.take(limit + 1).read_to_end(bytes).map_err(ReadFailure::Io)?;
    if bytes.len() as u64 > limit {
        return Err(ReadFailure::TooLarge { size: bytes.len() as u64, limit });
    }
    Ok(())
}

/// Streams `trace.jsonl` one line at a time.
pub struct EventReader {
    root: PathBuf,
    reader: BufReader<File>,
    limits: Limits,
    line: u64,
    events: u64,
    buf: Vec<u8>,
    done: bool,
    /// The event types accepted: an older release's parser knows fewer.
    event_types: &'static [&'static str],
    /// After a line that cannot be read as an event, go on with the next
    /// one (lenient replay) instead of stopping.
    keep_going: bool,
    /// Bytes of the log read as whole lines so far.
    position: u64,
    /// Leave a last line without its newline unread (it may still be
    /// being written) instead of reading it as a line.
    complete_lines_only: bool,
}

impl EventReader {
    /// Stops before a last line that has no newline yet, leaving it for a
    /// later reader (see `position`).
    pub fn complete_lines_only(mut self) -> Self {
        self.complete_lines_only = true;
        self
    }

    /// The byte offset just after the last line read (where a later
    /// reader of the same log goes on), and that line's number.
    pub fn position(&self) -> (u64, u64) {
        (self.position, self.line)
    }

    /// Yields the error of a line that cannot be read as an event and goes
    /// on with the next line; errors of the file itself still stop it.
    pub fn keep_going(mut self) -> Self {
        self.keep_going = true;
        self
    }

    /// Accepts only `event_types` (a profile's), failing on any other type
    /// with the message that release's parser gives.
    pub fn with_event_types(mut self, event_types: &'static [&'static str]) -> Self {
        self.event_types = event_types;
        self
    }

    fn error(&self, message: String) -> Error {
        Error::new(ErrorKind::Event, message).with_bundle(&self.root).with_file(EVENT_LOG_FILE).with_line(self.line)
    }

    fn fail(&mut self, error: Error) -> Option<Result<LocatedEvent>> {
        self.done = true;
        Some(Err(error))
    }

    /// A line that is not an event; reading goes on after it if asked to.
    fn bad_line(&mut self, error: Error) -> Option<Result<LocatedEvent>> {
        self.done = !self.keep_going;
        Some(Err(error))
    }

    /// Reads past the rest of an overlong line, in bounded pieces.
    fn skip_rest_of_line(&mut self) -> std::io::Result<()> {
        while !self.buf.ends_with(b"\n") {
            self.buf.clear();
            let read = (&mut self.reader).take(64 * 1024).read_until(b'\n', &mut self.buf)?;
            if read == 0 {
                break;
            }
            self.position += read as u64;
        }
        Ok(())
    }
}

impl Iterator for EventReader {
    type Item = Result<LocatedEvent>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            self.buf.clear();
            self.line += 1;
            let limit = self.limits.max_record_bytes;
            match (&mut self.reader).take(limit + 1).read_until(b'\n', &mut self.buf) {
                Ok(0) => {
                    self.line -= 1;
                    self.done = true;
                    return None;
                }
                Ok(_) if self.complete_lines_only && !self.buf.ends_with(b"\n") => {
                    // A line still being written: leave it for later.
                    self.line -= 1;
                    self.done = true;
                    return None;
                }
                Ok(read) => self.position += read as u64,
                Err(err) => {
                    let error = self.error(format!("read trace event line {}: {err}", self.line));
                    return self.fail(error);
                }
            }
            if self.buf.len() as u64 > limit {
                let error = self
                    .error(format!("trace event line {} is longer than the record limit of {limit} bytes", self.line))
                    .with_kind(ErrorKind::Limit);
                if self.keep_going {
                    if let Err(err) = self.skip_rest_of_line() {
                        let error = self.error(format!("read trace event line {}: {err}", self.line));
                        return self.fail(error);
                    }
                }
                return self.bad_line(error);
            }
            let mut bytes = self.buf.as_slice();
            if let Some(rest) = bytes.strip_suffix(b"\n") {
                bytes = rest.strip_suffix(b"\r").unwrap_or(rest);
            }
            let text = match std::str::from_utf8(bytes) {
                Ok(text) => text,
                Err(_) => {
                    let error =
                        self.error(format!("read trace event line {}: stream did not contain valid UTF-8", self.line));
                    return self.bad_line(error);
                }
            };
            if text.trim().is_empty() {
                continue;
            }
            self.events += 1;
            if self.events > self.limits.max_events {
                let error = self
                    .error(format!("trace event log has more than {} events", self.limits.max_events))
                    .with_kind(ErrorKind::Limit);
                return self.fail(error);
            }
            let max_depth = self.limits.max_json_depth;
            let error = match parse_within_depth(text.as_bytes(), max_depth, || serde_json::from_str(text)) {
                Ok(event) if self.known(&event) => return Some(Ok(LocatedEvent { line: self.line, event })),
                Ok(event) => self.error(format!(
                    "parse trace event line {}: {}",
                    self.line,
                    unknown_event_type(text, event.payload.type_name(), self.event_types)
                )),
                Err(JsonFailure::TooDeep) => self
                    .error(format!("parse trace event line {}: JSON nests deeper than {max_depth} levels", self.line))
                    .with_kind(ErrorKind::Limit),
                Err(JsonFailure::Syntax(err)) => self.error(format!("parse trace event line {}: {err}", self.line)),
            };
            return self.bad_line(error);
        }
        None
    }
}
