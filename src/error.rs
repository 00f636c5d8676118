//! The one error type of the crate. Every failure names what it can of where
//! it arose: the bundle, the file inside it, the line and event `seq`, the
//! payload id. The Python bindings map `ErrorKind` to exception classes.

use std::fmt;
use std::path::{Path, PathBuf};

/// What went wrong, coarsely; one Python exception class per kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The bundle is unusable: not a directory, manifest missing or malformed.
    Bundle,
    /// A line of `trace.jsonl` could not be read or parsed as an event.
    Event,
    /// A payload file could not be opened or parsed.
    Payload,
    /// The events parsed but break a reducer rule.
    Reduce,
    /// A configured size, count or depth limit was exceeded.
    Limit,
    /// A path in the bundle points outside it.
    UnsafePath,
    /// Writing a bundle or an output file failed.
    Write,
    /// A reduced state (`state.json`) could not be read.
    State,
    /// The caller passed something unusable (bad argument value).
    Usage,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bundle => "bundle",
            Self::Event => "event",
            Self::Payload => "payload",
            Self::Reduce => "reduce",
            Self::Limit => "limit",
            Self::UnsafePath => "unsafe_path",
            Self::Write => "write",
            Self::State => "state",
            Self::Usage => "usage",
        }
    }

    /// The kind named `name` by `as_str`.
    pub fn from_name(name: &str) -> Option<Self> {
        const ALL: [ErrorKind; 9] = [
            ErrorKind::Bundle,
            ErrorKind::Event,
            ErrorKind::Payload,
            ErrorKind::Reduce,
            ErrorKind::Limit,
            ErrorKind::UnsafePath,
            ErrorKind::Write,
            ErrorKind::State,
            ErrorKind::Usage,
        ];
        ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

/// Where an error arose. Every field is optional except the kind of failure.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Location {
    pub bundle: Option<PathBuf>,
    /// Path of the file, relative to the bundle when it lies inside it.
    pub file: Option<PathBuf>,
    /// 1-based line in `file`.
    pub line: Option<u64>,
    pub seq: Option<u64>,
    pub raw_payload_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Error {
    pub kind: ErrorKind,
    /// The bare message; for reducer rules this is the reference's text.
    pub message: String,
    pub location: Location,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error { kind, message: message.into(), location: Location::default() }
    }

    pub fn reduce(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Reduce, message)
    }

    pub fn with_kind(mut self, kind: ErrorKind) -> Self {
        self.kind = kind;
        self
    }

    pub fn with_bundle(mut self, bundle: &Path) -> Self {
        self.location.bundle.get_or_insert_with(|| bundle.to_path_buf());
        self
    }

    pub fn with_file(mut self, file: impl Into<PathBuf>) -> Self {
        self.location.file.get_or_insert_with(|| file.into());
        self
    }

    pub fn with_line(mut self, line: u64) -> Self {
        self.location.line.get_or_insert(line);
        self
    }

    pub fn with_seq(mut self, seq: u64) -> Self {
        self.location.seq.get_or_insert(seq);
        self
    }

    pub fn with_payload(mut self, raw_payload_id: &str) -> Self {
        self.location.raw_payload_id.get_or_insert_with(|| raw_payload_id.to_string());
        self
    }

    /// Wraps a message with a cause, the way the reference renders causes.
    pub fn caused_by(kind: ErrorKind, message: impl fmt::Display, cause: impl fmt::Display) -> Self {
        Self::new(kind, format!("{message}: {cause}"))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let loc = &self.location;
        let mut wrote = false;
        if let Some(bundle) = &loc.bundle {
            write!(f, "{}", bundle.display())?;
            wrote = true;
        }
        if let Some(file) = &loc.file {
            write!(f, "{}{}", if wrote { "/" } else { "" }, file.display())?;
            wrote = true;
        }
        let mut details = Vec::new();
        if let Some(line) = loc.line {
            details.push(format!("line {line}"));
        }
        if let Some(seq) = loc.seq {
            details.push(format!("seq {seq}"));
        }
        if let Some(id) = &loc.raw_payload_id {
            details.push(format!("payload {id}"));
        }
        if !details.is_empty() {
            write!(f, "{}({})", if wrote { " " } else { "" }, details.join(", "))?;
            wrote = true;
        }
        if wrote {
            write!(f, ": ")?;
        }
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for Error {}

/// Runs `f`, turning a panic (a bug in this crate) into a `Reduce` error so
/// that callers, Python included, always get an `Error` and never an abort.
pub fn catch_panics<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let detail = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(Error::new(
            ErrorKind::Reduce,
            format!("internal error (a bug in rollout-trace, please report it): {detail}"),
        ))
    })
}
