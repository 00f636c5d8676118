//! Every command and option of `rollout-trace`, defined once.
//!
//! The native parser ([`super::parse`]) reads this table, and so does the
//! Python side: `rollout_trace.cli` builds its argparse parser (help text,
//! error messages, the commands that run in Python) from [`to_plain`]. An
//! option is one [`Arg`] line here: its flags, help and the setter that puts
//! its value into [`CliOptions`]; options every reading command takes go in
//! [`SHARED`].

use super::options::{CliOptions, Value};
use crate::compat::Profile;

/// How an argument takes its value (argparse's `action`/`type`/`nargs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `--flag`, no value (`store_true`).
    Flag,
    /// `--opt N`, an integer (`type=int`).
    Int,
    /// `--opt TEXT`.
    Text,
    /// `--opt TEXT`, repeatable, values collected (`action="append"`).
    Append,
    /// `--opt S`, a number (`type=float`); only argparse parses it.
    Float,
    /// `--compat NAME`: a compatibility profile, resolved as it is parsed
    /// (`Profile::by_name`; argparse's `type=` does the same).
    Compat,
    /// `--repair NAME`, repeatable: a repair's name or `all` (argparse's
    /// `choices`).
    Repair,
    /// Positional, any number (`nargs="*"`).
    Many,
    /// Positional, exactly one.
    One,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Flag => "flag",
            Kind::Int => "int",
            Kind::Text => "text",
            Kind::Append => "append",
            Kind::Float => "float",
            Kind::Compat => "compat",
            Kind::Repair => "repair",
            Kind::Many => "many",
            Kind::One => "one",
        }
    }

    pub fn takes_value(self) -> bool {
        matches!(self, Kind::Int | Kind::Text | Kind::Append | Kind::Float | Kind::Compat | Kind::Repair)
    }
}

/// Puts a parsed value into the options; `Err` is a message for the user.
pub type Setter = fn(&mut CliOptions, Value) -> Result<(), String>;

/// One argument of one command.
pub struct Arg {
    /// Option strings (`-o`, `--output`); empty for a positional.
    pub flags: &'static [&'static str],
    /// argparse's `dest`: the name of the value.
    pub dest: &'static str,
    pub kind: Kind,
    pub metavar: Option<&'static str>,
    pub help: Option<&'static str>,
    pub required: bool,
    pub set: Setter,
}

/// Arguments shown under one heading of the help (`None`: the default
/// sections, "positional arguments" and "options").
pub struct Group {
    pub title: Option<&'static str>,
    pub args: &'static [Arg],
}

pub struct Command {
    pub name: &'static str,
    /// One line in the list of commands.
    pub help: &'static str,
    pub description: &'static str,
    /// Run by the native code; otherwise by `rollout_trace.cli` in Python.
    pub native: bool,
    pub groups: &'static [Group],
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Command({})", self.name)
    }
}

impl Command {
    pub fn args(&self) -> impl Iterator<Item = &'static Arg> {
        self.groups.iter().flat_map(|group| group.args.iter())
    }

    pub fn arg(&self, dest: &str) -> Option<&'static Arg> {
        self.args().find(|arg| arg.dest == dest)
    }
}

pub const PROG: &str = "rollout-trace";
pub const DESCRIPTION: &str = "Replay, summarize and check Codex rollout trace bundles.";
pub const EPILOG: &str = "Exit codes: 0 success, 1 a bundle failed (others still processed), 2 bad command line.";
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

const fn opt(
    flags: &'static [&'static str],
    dest: &'static str,
    kind: Kind,
    metavar: Option<&'static str>,
    help: &'static str,
    set: Setter,
) -> Arg {
    Arg { flags, dest, kind, metavar, help: Some(help), required: false, set }
}

const fn positional(dest: &'static str, kind: Kind, help: Option<&'static str>, set: Setter) -> Arg {
    Arg { flags: &[], dest, kind, metavar: Some("BUNDLE"), help, required: false, set }
}

const N: Option<&str> = Some("N");
const DIR: Option<&str> = Some("DIR");

/// The choices of `--repair`: every repair's name, and `all`.
pub fn repair_choices() -> Vec<&'static str> {
    crate::compat::REPAIRS.iter().map(|(_, name, _)| *name).chain(["all"]).collect()
}

fn set_compat(o: &mut CliOptions, v: Value) -> Result<(), String> {
    o.compat = match v.text()? {
        None => None,
        Some(name) => Some(Profile::by_name(&name).map_err(|error| error.message)?.name.to_string()),
    };
    Ok(())
}

const COMPAT: Arg = opt(
    &["--compat"],
    "compat",
    Kind::Compat,
    Some("NAME"),
    "match the reducer of this Codex release or family (codex-0.158.0, codex-0.147, crate; default: the newest \
     release's)",
    set_compat,
);

/// `--repair`'s help, spelled out: `repair_help()` makes it from
/// `compat::REPAIRS` (a test keeps the two equal).
const REPAIR_HELP: &str = "opt-in fix of a known reference defect (repeatable): image-mime: image parts match by \
    their decoded bytes; the reference compares the payload they came from, so a session whose agent views an image \
    fails once the image is sent again; all: every one. Without it the output is exactly the reference's";

/// What `--repair`'s help says, made from the table of repairs.
pub fn repair_help() -> String {
    let repairs: Vec<String> = crate::compat::REPAIRS.iter().map(|(_, name, why)| format!("{name}: {why}")).collect();
    format!(
        "opt-in fix of a known reference defect (repeatable): {}; all: every one. Without it the output is exactly \
         the reference's",
        repairs.join("; ")
    )
}

/// Options every reading command (reduce, summary, export) takes, in the
/// "options" section of each (validate takes `--compat` only).
const SHARED: &[Arg] = &[
    COMPAT,
    opt(
        &["--lenient"],
        "lenient",
        Kind::Flag,
        None,
        "skip events that cannot be read or reduced (and those that depend on them) and reduce the rest: the \
         result is the strict replay without the skipped events",
        |o, v| {
            o.lenient = v.flag()?;
            Ok(())
        },
    ),
    opt(
        &["--diagnostics"],
        "diagnostics",
        Kind::Text,
        Some("FILE"),
        "write the skipped events as a JSON array to FILE (with --lenient or --partial)",
        |o, v| {
            o.diagnostics = v.text()?;
            Ok(())
        },
    ),
    opt(&["--repair"], "repair", Kind::Repair, Some("NAME"), REPAIR_HELP, |o, v| {
        o.repair = v.list()?;
        Ok(())
    }),
];

const LIMITS: Group = Group {
    title: Some("admission limits (defaults suit real long sessions)"),
    args: &[
        opt(&["--max-record-bytes"], "max_record_bytes", Kind::Int, N, "largest event line or payload file", |o, v| {
            o.max_record_bytes = v.int()?;
            Ok(())
        }),
        opt(&["--max-bundle-bytes"], "max_bundle_bytes", Kind::Int, N, "largest total read from one bundle", |o, v| {
            o.max_bundle_bytes = v.int()?;
            Ok(())
        }),
        opt(&["--max-events"], "max_events", Kind::Int, N, "most events in one trace.jsonl", |o, v| {
            o.max_events = v.int()?;
            Ok(())
        }),
        opt(&["--max-payloads"], "max_payloads", Kind::Int, N, "most payloads one bundle references", |o, v| {
            o.max_payloads = v.int()?;
            Ok(())
        }),
        opt(&["--max-json-depth"], "max_json_depth", Kind::Int, N, "deepest JSON nesting", |o, v| {
            o.max_json_depth = v.int()?;
            Ok(())
        }),
    ],
};

const SHARED_GROUP: Group = Group { title: None, args: SHARED };
const COMPAT_GROUP: Group = Group { title: None, args: &[COMPAT] };

fn set_bundles(o: &mut CliOptions, v: Value) -> Result<(), String> {
    o.bundles = v.list()?;
    Ok(())
}

fn set_bundle(o: &mut CliOptions, v: Value) -> Result<(), String> {
    o.bundles = v.text()?.into_iter().collect();
    Ok(())
}

fn set_recursive(o: &mut CliOptions, v: Value) -> Result<(), String> {
    o.recursive = v.list()?;
    Ok(())
}

fn set_jobs(o: &mut CliOptions, v: Value) -> Result<(), String> {
    o.jobs = v.int()?;
    Ok(())
}

fn set_partial(o: &mut CliOptions, v: Value) -> Result<(), String> {
    o.partial = v.flag()?;
    Ok(())
}

fn set_quiet(o: &mut CliOptions, v: Value) -> Result<(), String> {
    o.quiet = v.flag()?;
    Ok(())
}

fn set_json(o: &mut CliOptions, v: Value) -> Result<(), String> {
    o.json = v.flag()?;
    Ok(())
}

const JOBS: Arg = opt(&["-j", "--jobs"], "jobs", Kind::Int, N, "worker threads (default: one per core)", set_jobs);
const QUIET: Arg = opt(&["-q", "--quiet"], "quiet", Kind::Flag, None, "no progress bar", set_quiet);
const JSON: Arg = opt(&["--json"], "json", Kind::Flag, None, "machine-readable output", set_json);

pub const COMMANDS: &[Command] = &[
    Command {
        name: "reduce",
        help: "replay bundles into state.json",
        description: "Replay each bundle into its reduced state.json, byte for byte what \
            `codex debug trace-reduce` writes. Several bundles reduce in parallel; a failure \
            never stops the others. Outputs are replaced atomically; a failed bundle leaves \
            any previous output untouched.",
        native: true,
        groups: &[
            Group {
                title: None,
                args: &[
                    positional("bundles", Kind::Many, Some("bundle directories"), set_bundles),
                    opt(
                        &["-o", "--output"],
                        "output",
                        Kind::Text,
                        Some("OUT"),
                        "output file (one bundle; default BUNDLE/state.json) or directory (several bundles: \
                         OUT/<path below their common parent>/state.json)",
                        |o, v| {
                            o.output = v.text()?;
                            Ok(())
                        },
                    ),
                    JOBS,
                    opt(
                        &["-r", "--recursive"],
                        "recursive",
                        Kind::Append,
                        DIR,
                        "reduce every bundle below DIR",
                        set_recursive,
                    ),
                    opt(
                        &["--partial"],
                        "partial",
                        Kind::Flag,
                        None,
                        "keep what a crashed or live session's bundle allows instead of failing",
                        set_partial,
                    ),
                    QUIET,
                    opt(
                        &["--no-sync"],
                        "no_sync",
                        Kind::Flag,
                        None,
                        "do not wait for state.json to reach the disk (still replaced atomically; \
                         for outputs you can make again)",
                        |o, v| {
                            o.no_sync = v.flag()?;
                            Ok(())
                        },
                    ),
                    opt(
                        &["--follow"],
                        "follow",
                        Kind::Flag,
                        None,
                        "keep state.json current while the session runs (rewritten atomically after each settled \
                         change) until the rollout ends",
                        |o, v| {
                            o.follow = v.flag()?;
                            Ok(())
                        },
                    ),
                    opt(
                        &["--idle-timeout"],
                        "idle_timeout",
                        Kind::Float,
                        Some("S"),
                        "with --follow: stop after S seconds without a change (default: wait for the end)",
                        |o, v| {
                            o.idle_timeout = v.float()?;
                            Ok(())
                        },
                    ),
                ],
            },
            SHARED_GROUP,
            LIMITS,
        ],
    },
    Command {
        name: "summary",
        help: "what happened in one rollout",
        description: "Status, threads, turns, models and tokens, tools, terminal commands, \
            compactions and agent edges of one bundle.",
        native: true,
        groups: &[
            Group {
                title: None,
                args: &[
                    positional("bundle", Kind::One, None, set_bundle),
                    JSON,
                    Arg {
                        flags: &["--width"],
                        dest: "width",
                        kind: Kind::Int,
                        metavar: None,
                        help: Some("line width (default: the terminal's, at most 120)"),
                        required: false,
                        set: |o, v| {
                            o.width = v.int()?;
                            Ok(())
                        },
                    },
                    opt(
                        &["--partial"],
                        "partial",
                        Kind::Flag,
                        None,
                        "summarize what a broken bundle allows",
                        set_partial,
                    ),
                ],
            },
            SHARED_GROUP,
            LIMITS,
        ],
    },
    Command {
        name: "validate",
        help: "check bundles without writing anything",
        description: "Report every problem of each bundle: manifest, event schema, seq \
            order, rollout identity, payload references and files, limits, and whether \
            it replays. Warnings are what the reference tolerates; --strict fails on them.",
        native: true,
        groups: &[
            Group {
                title: None,
                args: &[
                    positional("bundles", Kind::Many, None, set_bundles),
                    opt(
                        &["-r", "--recursive"],
                        "recursive",
                        Kind::Append,
                        DIR,
                        "validate every bundle below DIR",
                        set_recursive,
                    ),
                    opt(&["--strict"], "strict", Kind::Flag, None, "warnings make a bundle invalid too", |o, v| {
                        o.strict = v.flag()?;
                        Ok(())
                    }),
                    JSON,
                ],
            },
            COMPAT_GROUP,
            LIMITS,
        ],
    },
    Command {
        name: "export",
        help: "write the tables of bundles as Parquet",
        description: "Reduce bundles (in parallel) and write their tables (threads, turns, conversation_items, \
            inference_calls, tool_calls, terminal_operations, code_cells, interaction_edges) to \
            OUT_DIR/<table>.parquet, every row keyed by trace_id, for DuckDB or Spark. Failed bundles are left \
            out and reported. Needs pyarrow.",
        native: false,
        groups: &[
            Group {
                title: None,
                args: &[
                    positional("bundles", Kind::Many, Some("bundle directories"), set_bundles),
                    Arg {
                        flags: &["--parquet"],
                        dest: "parquet",
                        kind: Kind::Text,
                        metavar: Some("OUT_DIR"),
                        help: Some("directory for the .parquet files"),
                        required: true,
                        set: |o, v| {
                            o.parquet = v.text()?;
                            Ok(())
                        },
                    },
                    opt(
                        &["-r", "--recursive"],
                        "recursive",
                        Kind::Append,
                        DIR,
                        "export every bundle below DIR",
                        set_recursive,
                    ),
                    JOBS,
                    opt(
                        &["--partial"],
                        "partial",
                        Kind::Flag,
                        None,
                        "keep what broken bundles allow instead of failing them",
                        set_partial,
                    ),
                    QUIET,
                ],
            },
            SHARED_GROUP,
            LIMITS,
        ],
    },
];

pub fn command(name: &str) -> Option<&'static Command> {
    COMMANDS.iter().find(|command| command.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repair_help_lists_every_repair() {
        assert_eq!(REPAIR_HELP, repair_help());
    }
}
