//! The values of one command line, and the one place they become the
//! core's options.

use crate::compat::{Profile, Repairs};
use crate::limits::Limits;
use crate::output::Durability;
use crate::reducer::ReplayOptions;

/// A value as a parser found it (native parser, or argparse's namespace).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Not given (argparse's default `None`).
    Absent,
    Flag(bool),
    Int(i64),
    Float(f64),
    Text(String),
    List(Vec<String>),
}

impl Value {
    pub fn flag(self) -> Result<bool, String> {
        match self {
            Value::Absent => Ok(false),
            Value::Flag(flag) => Ok(flag),
            other => Err(format!("expected a flag, got {other:?}")),
        }
    }

    pub fn int(self) -> Result<Option<i64>, String> {
        match self {
            Value::Absent => Ok(None),
            Value::Int(n) => Ok(Some(n)),
            other => Err(format!("expected an integer, got {other:?}")),
        }
    }

    pub fn float(self) -> Result<Option<f64>, String> {
        match self {
            Value::Absent => Ok(None),
            Value::Float(x) => Ok(Some(x)),
            Value::Int(n) => Ok(Some(n as f64)),
            other => Err(format!("expected a number, got {other:?}")),
        }
    }

    pub fn text(self) -> Result<Option<String>, String> {
        match self {
            Value::Absent => Ok(None),
            Value::Text(text) => Ok(Some(text)),
            other => Err(format!("expected text, got {other:?}")),
        }
    }

    pub fn list(self) -> Result<Vec<String>, String> {
        match self {
            Value::Absent => Ok(Vec::new()),
            Value::List(items) => Ok(items),
            other => Err(format!("expected a list, got {other:?}")),
        }
    }
}

/// Everything a command line of reduce, summary or validate can say.
/// Filled only through the setters of [`super::spec`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CliOptions {
    /// Bundle directories as given (summary: the one bundle).
    pub bundles: Vec<String>,
    pub recursive: Vec<String>,
    pub output: Option<String>,
    pub jobs: Option<i64>,
    pub partial: bool,
    pub quiet: bool,
    pub no_sync: bool,
    pub json: bool,
    pub width: Option<i64>,
    pub strict: bool,
    pub parquet: Option<String>,
    /// The profile `--compat` names, resolved (`codex-0.147`).
    pub compat: Option<String>,
    pub lenient: bool,
    pub diagnostics: Option<String>,
    pub repair: Vec<String>,
    /// `reduce --follow` (run by Python).
    pub follow: bool,
    pub idle_timeout: Option<f64>,
    pub max_record_bytes: Option<i64>,
    pub max_bundle_bytes: Option<i64>,
    pub max_events: Option<i64>,
    pub max_payloads: Option<i64>,
    pub max_json_depth: Option<i64>,
}

/// A value no command can use (a negative count, ...): a usage error.
fn non_negative<T: TryFrom<i64>>(option: &str, value: Option<i64>) -> Result<Option<T>, String> {
    value.map(|n| T::try_from(n).map_err(|_| format!("{option} must be a non-negative integer, not {n}"))).transpose()
}

impl CliOptions {
    pub fn limits(&self) -> Result<Limits, String> {
        let d = Limits::DEFAULT;
        Ok(Limits {
            max_record_bytes: non_negative("--max-record-bytes", self.max_record_bytes)?.unwrap_or(d.max_record_bytes),
            max_bundle_bytes: non_negative("--max-bundle-bytes", self.max_bundle_bytes)?.unwrap_or(d.max_bundle_bytes),
            max_events: non_negative("--max-events", self.max_events)?.unwrap_or(d.max_events),
            max_payloads: non_negative("--max-payloads", self.max_payloads)?.unwrap_or(d.max_payloads),
            max_json_depth: non_negative("--max-json-depth", self.max_json_depth)?.unwrap_or(d.max_json_depth),
        })
    }

    /// The compatibility profile (default: the newest release's).
    pub fn profile(&self) -> Result<&'static Profile, String> {
        Profile::by_optional_name(self.compat.as_deref()).map_err(|error| error.message)
    }

    /// The replay these options ask for.
    pub fn replay_options(&self) -> Result<ReplayOptions, String> {
        Ok(ReplayOptions {
            profile: self.profile()?,
            limits: self.limits()?,
            partial: self.partial,
            lenient: self.lenient,
            repairs: Repairs::by_names(&self.repair).map_err(|error| error.message)?,
            ..ReplayOptions::default()
        })
    }

    /// Worker threads (`None`: one per core).
    pub fn workers(&self) -> Result<Option<usize>, String> {
        non_negative("-j/--jobs", self.jobs)
    }

    pub fn durability(&self) -> Durability {
        if self.no_sync {
            Durability::NoSync
        } else {
            Durability::Durable
        }
    }
}
