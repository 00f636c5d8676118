//! The `rollout-trace` command line for the commands that only reduce,
//! summarize or validate, run natively so that a process starts and ends
//! in milliseconds. It parses ([`parse`]) and presents; the work is the
//! core's (`batch`, `summary`, `validate`).
//!
//! Output goes through a [`Console`] (the Python binding writes to
//! `sys.stdout` and `sys.stderr`), so the same code serves any host.

mod commands;
pub mod help;
pub mod options;
pub mod parse;
pub mod paths;
pub mod pyjson;
pub mod spec;

pub use options::{CliOptions, Value};
pub use parse::{parse, Parsed};

/// The host stopped the command (a write failed, or an interrupt); the
/// host knows why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stop;

/// Where a command's output goes.
pub trait Console {
    fn out(&mut self, text: &str) -> Result<(), Stop>;
    fn err(&mut self, text: &str) -> Result<(), Stop>;
    fn flush_err(&mut self) -> Result<(), Stop>;
    /// Whether standard error is a terminal (progress bar).
    fn err_is_terminal(&mut self) -> bool;
    /// Runs `work` (waiting for workers); the host may do other things
    /// meanwhile, and stop the command after it (an interrupt).
    fn wait<T: Send>(&mut self, work: impl FnOnce() -> T + Send) -> Result<T, Stop>;
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Exit with this code (0 ok, 1 a bundle failed, 2 bad command line).
    Exit(i32),
    /// The command line cannot be carried out as given: the host prints the
    /// usage and this message, and exits with 2.
    Usage(String),
}

pub const EXIT_OK: i32 = 0;
pub const EXIT_FAILED: i32 = 1;
pub const EXIT_USAGE: i32 = 2;

/// Runs a native command with its options.
pub fn run<C: Console>(command: &spec::Command, options: &CliOptions, console: &mut C) -> Result<Outcome, Stop> {
    if options.partial && options.lenient {
        return Ok(Outcome::Usage("--partial and --lenient exclude each other".into()));
    }
    match command.name {
        "reduce" => commands::reduce(options, console),
        "summary" => commands::summary(options, console),
        "validate" => commands::validate(options, console),
        other => Ok(Outcome::Usage(format!("{other} is not a native command"))),
    }
}

/// The columns of the terminal, as `shutil.get_terminal_size((80, 20))`.
pub fn terminal_columns() -> usize {
    if let Some(columns) = std::env::var("COLUMNS").ok().and_then(|c| c.trim().parse::<i64>().ok()) {
        if columns > 0 {
            return columns as usize;
        }
    }
    terminal_size().filter(|c| *c > 0).unwrap_or(80)
}

#[cfg(unix)]
fn terminal_size() -> Option<usize> {
    // SAFETY: TIOCGWINSZ fills the winsize we pass; a failure leaves it
    // untouched and is reported.
    unsafe {
        let mut size: libc::winsize = std::mem::zeroed();
        (libc::ioctl(1, libc::TIOCGWINSZ, &mut size) == 0).then_some(size.ws_col as usize)
    }
}

#[cfg(not(unix))]
fn terminal_size() -> Option<usize> {
    None
}
