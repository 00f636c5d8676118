//! The native command-line parser: the usual command lines, parsed in
//! microseconds, exactly as argparse would.
//!
//! It takes only what it can parse without doubt: exact option names,
//! `--opt VALUE`, `--opt=VALUE`, `-oVALUE`, positionals in one run. Anything
//! else (abbreviated or unknown options, values that look like options,
//! `-h`, mistakes) is [`Parsed::Delegate`]: argparse, built from the same
//! table, parses it, prints help or the error, and the values come back
//! through the same setters.

use super::options::{CliOptions, Value};
use super::spec::{self, Arg, Command, Kind};

// Made once per process; boxing the options would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Parsed {
    /// A native command and its options.
    Run(&'static Command, CliOptions),
    /// `--version`.
    Version,
    /// `COMMAND --help` of a native command.
    Help(&'static Command),
    /// Let argparse parse it.
    Delegate,
}

pub fn parse(argv: &[String]) -> Parsed {
    match argv {
        [only] if only == "--version" => Parsed::Version,
        [name, help] if help == "--help" || help == "-h" => match spec::command(name) {
            Some(command) if command.native => Parsed::Help(command),
            _ => Parsed::Delegate,
        },
        [name, rest @ ..] => match spec::command(name) {
            Some(command) if command.native => match parse_command(command, rest) {
                Some(options) => Parsed::Run(command, options),
                None => Parsed::Delegate,
            },
            _ => Parsed::Delegate,
        },
        [] => Parsed::Delegate,
    }
}

fn find_flag(command: &'static Command, flag: &str) -> Option<&'static Arg> {
    command.args().find(|arg| arg.flags.contains(&flag))
}

/// The options of one command line, or `None` when argparse should decide.
fn parse_command(command: &'static Command, args: &[String]) -> Option<CliOptions> {
    let mut options = CliOptions::default();
    let mut appended: Vec<(&'static Arg, Vec<String>)> = Vec::new();
    let mut positionals: Vec<String> = Vec::new();
    // Positionals must come in one run: argparse rejects `a -q b`.
    let mut positional_runs = 0;
    let mut in_run = false;
    let mut index = 0;
    while index < args.len() {
        let token = &args[index];
        index += 1;
        if token.is_empty() || token == "-" || token == "--" {
            return None;
        }
        if !token.starts_with('-') {
            if !in_run {
                positional_runs += 1;
                in_run = true;
            }
            positionals.push(token.clone());
            continue;
        }
        in_run = false;
        let (arg, inline) = if token.starts_with("--") {
            match token.split_once('=') {
                Some((name, value)) => (find_flag(command, name)?, Some(value.to_string())),
                None => (find_flag(command, token)?, None),
            }
        } else {
            // A short option: `-q`, `-j 2` or `-j2`.
            let name = token.get(..2)?;
            let arg = find_flag(command, name)?;
            let rest = &token[2..];
            (arg, if rest.is_empty() { None } else { Some(rest.to_string()) })
        };
        if !arg.kind.takes_value() {
            if inline.is_some() {
                return None;
            }
            (arg.set)(&mut options, Value::Flag(true)).ok()?;
            continue;
        }
        let value = match inline {
            Some(value) => value,
            None => {
                let value = args.get(index)?;
                index += 1;
                value.clone()
            }
        };
        // Values argparse might read differently: empty, option-like, `=`.
        if value.is_empty() || value.starts_with('-') || value.contains('=') && !token.starts_with("--") {
            return None;
        }
        match arg.kind {
            Kind::Int => {
                let n: i64 = value.parse().ok()?;
                (arg.set)(&mut options, Value::Int(n)).ok()?;
            }
            // An unknown profile: argparse reports it (its `type=` resolves
            // names with the same `Profile::by_name`).
            Kind::Text | Kind::Compat => (arg.set)(&mut options, Value::Text(value)).ok()?,
            // An unknown repair: argparse's "invalid choice".
            Kind::Repair if !spec::repair_choices().contains(&value.as_str()) => return None,
            Kind::Append | Kind::Repair => match appended.iter_mut().find(|(a, _)| std::ptr::eq(*a, arg)) {
                Some((_, values)) => values.push(value),
                None => appended.push((arg, vec![value])),
            },
            // Python's `float()` is argparse's to apply.
            Kind::Float | Kind::Flag | Kind::Many | Kind::One => return None,
        }
    }
    // `reduce --follow` runs in Python.
    if options.follow {
        return None;
    }
    for (arg, values) in appended {
        (arg.set)(&mut options, Value::List(values)).ok()?;
    }
    if positional_runs > 1 {
        return None;
    }
    let mut positional_args = command.args().filter(|arg| arg.flags.is_empty());
    let positional = positional_args.next()?;
    if positional_args.next().is_some() {
        return None;
    }
    match positional.kind {
        Kind::Many => (positional.set)(&mut options, Value::List(positionals)).ok()?,
        Kind::One if positionals.len() == 1 => {
            (positional.set)(&mut options, Value::Text(positionals.remove(0))).ok()?
        }
        _ => return None,
    }
    // Required options missing: argparse says so.
    if command.args().any(|arg| arg.required) {
        return None;
    }
    Some(options)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_string).collect()
    }

    fn run(line: &str) -> Option<CliOptions> {
        match parse(&argv(line)) {
            Parsed::Run(_, options) => Some(options),
            _ => None,
        }
    }

    #[test]
    fn usual_command_lines_parse() {
        let o = run("reduce a b -o out -j 2 -r x --recursive=y --partial -q --no-sync --max-events 5").unwrap();
        assert_eq!(o.bundles, ["a", "b"]);
        assert_eq!(o.output.as_deref(), Some("out"));
        assert_eq!(o.jobs, Some(2));
        assert_eq!(o.recursive, ["x", "y"]);
        assert!(o.partial && o.quiet && o.no_sync);
        assert_eq!(o.max_events, Some(5));
        assert_eq!(run("reduce -j3 -oout a").unwrap().output.as_deref(), Some("out"));
        let s = run("summary b --json --width 80").unwrap();
        assert_eq!((s.bundles, s.json, s.width), (vec!["b".to_string()], true, Some(80)));
        assert!(run("validate --strict --json a").unwrap().strict);
        let r = run("reduce a --compat codex-0.158.0 --lenient --diagnostics d.json --repair all --repair image-mime")
            .unwrap();
        assert_eq!(r.compat.as_deref(), Some("codex-0.147"));
        assert!(r.lenient);
        assert_eq!(r.diagnostics.as_deref(), Some("d.json"));
        assert_eq!(r.repair, ["all", "image-mime"]);
        assert_eq!(run("validate a --compat crate").unwrap().compat.as_deref(), Some("crate"));
        assert!(matches!(parse(&argv("--version")), Parsed::Version));
    }

    #[test]
    fn anything_unusual_goes_to_argparse() {
        for line in [
            "",
            "--help",
            "reduce a --help",
            "reduce a -q b",
            "reduce --part a",
            "reduce -qj2 a",
            "reduce -o -x a",
            "reduce -j x a",
            "reduce -j",
            "reduce --quiet=1 a",
            "reduce -- a",
            "summary",
            "summary a b",
            "export --parquet o a",
            "frobnicate",
            "--version reduce",
            "reduce a --compat nope",
            "reduce a --repair nope",
            "reduce a --follow",
            "reduce a --idle-timeout 3",
            "validate a --lenient",
        ] {
            assert!(matches!(parse(&argv(line)), Parsed::Delegate), "{line:?}");
        }
    }
}
