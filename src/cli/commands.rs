//! reduce, summary and validate: the core's work, presented as the command
//! line always has (same lines, same streams, same exit codes).

use std::path::PathBuf;

use serde::Serialize;

use super::options::CliOptions;
use super::paths;
use super::{pyjson, Console, Outcome, Stop, EXIT_FAILED, EXIT_OK, EXIT_USAGE};
use crate::batch::{BatchRun, Job};
use crate::error::Error;
use crate::reducer::Diagnostic;

/// A command's early end: a usage error, or an exit with a message printed.
enum Early {
    Usage(String),
    Exit(i32),
    Stop,
}

impl From<Stop> for Early {
    fn from(_: Stop) -> Self {
        Early::Stop
    }
}

fn finish(result: Result<i32, Early>) -> Result<Outcome, Stop> {
    match result {
        Ok(code) => Ok(Outcome::Exit(code)),
        Err(Early::Exit(code)) => Ok(Outcome::Exit(code)),
        Err(Early::Usage(message)) => Ok(Outcome::Usage(message)),
        Err(Early::Stop) => Err(Stop),
    }
}

/// A value the command line cannot take (`-j -1`): `rollout-trace: ...`, 2.
fn bad_value<C: Console, T>(console: &mut C, value: Result<T, String>) -> Result<T, Early> {
    value.or_else(|message| {
        console.err(&format!("rollout-trace: {message}\n"))?;
        Err(Early::Exit(EXIT_USAGE))
    })
}

/// Bundles named, then those found below each `--recursive` root, as
/// pathlib spells them.
fn collect_bundles<C: Console>(options: &CliOptions, console: &mut C) -> Result<Vec<String>, Early> {
    let mut bundles: Vec<String> = options.bundles.iter().map(|b| paths::normalize(b)).collect();
    for root in &options.recursive {
        let found = match console.wait(|| crate::batch::find_bundles(&paths::path_buf(root)))? {
            Ok(found) => found,
            Err(error) => {
                console.err(&format!("error: {error}\n"))?;
                return Err(Early::Exit(EXIT_FAILED));
            }
        };
        if found.is_empty() {
            return Err(Early::Usage(format!("no bundle (a directory with manifest.json) below {root}")));
        }
        bundles.extend(found.iter().map(|p| paths::normalize(&p.to_string_lossy())));
    }
    if bundles.is_empty() {
        return Err(Early::Usage("no bundle given (name bundle directories or use --recursive DIR)".into()));
    }
    Ok(bundles)
}

/// Where each bundle's state.json goes.
fn outputs<C: Console>(bundles: &[String], out: Option<&str>, console: &mut C) -> Result<Vec<String>, Early> {
    if bundles.len() == 1 {
        return Ok(vec![match out {
            Some(out) => paths::normalize(out),
            None => paths::join(&bundles[0], "state.json"),
        }]);
    }
    let Some(out) = out else {
        return Ok(bundles.iter().map(|bundle| paths::join(bundle, "state.json")).collect());
    };
    let out_path = std::path::Path::new(out);
    if out_path.exists() && !out_path.is_dir() {
        return Err(Early::Usage(format!("-o {out} must be a directory when reducing several bundles")));
    }
    // Mirror the bundles' layout below their common parent, so outputs never
    // collide (many bundles are simply named "bundle").
    let resolved: Vec<String> = bundles.iter().map(|bundle| paths::resolve(bundle)).collect();
    let mut distinct = resolved.clone();
    distinct.sort();
    distinct.dedup();
    if distinct.len() != resolved.len() {
        return Err(Early::Usage("the same bundle is named twice".into()));
    }
    let common = paths::common_path(&resolved);
    let out_dir = paths::normalize(out);
    let outputs: Vec<String> = resolved
        .iter()
        .map(|bundle| paths::join(&paths::join(&out_dir, &paths::relative_to(bundle, &common)), "state.json"))
        .collect();
    for output in &outputs {
        if let Err(message) = paths::make_dirs(&paths::parent(output)) {
            console.err(&format!("rollout-trace: {message}\n"))?;
            return Err(Early::Exit(EXIT_USAGE));
        }
    }
    Ok(outputs)
}

/// A one-line progress bar for batch work, shown only on a terminal.
struct Progress {
    total: usize,
    done: usize,
    failed: usize,
    enabled: bool,
}

impl Progress {
    fn advance<C: Console>(&mut self, failed: bool, console: &mut C) -> Result<(), Stop> {
        self.done += 1;
        self.failed += usize::from(failed);
        if !self.enabled {
            return Ok(());
        }
        let width = (super::terminal_columns() as i64 - 40).clamp(10, 40) as usize;
        let filled = width * self.done / self.total;
        let bar = format!("{}{}", "#".repeat(filled), ".".repeat(width - filled));
        console.err(&format!("\r[{bar}] {}/{} reduced, {} failed", self.done, self.total, self.failed))?;
        console.flush_err()
    }

    fn close<C: Console>(&self, console: &mut C) -> Result<(), Stop> {
        if self.enabled {
            console.err("\n")?;
            console.flush_err()?;
        }
        Ok(())
    }
}

pub fn reduce<C: Console>(options: &CliOptions, console: &mut C) -> Result<Outcome, Stop> {
    finish(reduce_inner(options, console))
}

fn reduce_inner<C: Console>(options: &CliOptions, console: &mut C) -> Result<i32, Early> {
    let replay = bad_value(console, options.replay_options())?;
    let workers = bad_value(console, options.workers())?;
    let bundles = collect_bundles(options, console)?;
    let outputs = outputs(&bundles, options.output.as_deref(), console)?;
    let jobs: Vec<Job> = bundles
        .iter()
        .zip(&outputs)
        .map(|(bundle, output)| Job { bundle: PathBuf::from(bundle), output: Some(PathBuf::from(output)) })
        .collect();
    let total = jobs.len();
    let mut progress =
        Progress { total, done: 0, failed: 0, enabled: console.err_is_terminal() && !options.quiet && total > 1 };
    let mut run = match BatchRun::start_as(jobs, replay, workers, false, options.durability()) {
        Ok(run) => run,
        Err(error) => {
            console.err(&format!("rollout-trace: {error}\n"))?;
            return Err(Early::Exit(EXIT_USAGE));
        }
    };
    let mut failures: Vec<Error> = Vec::new();
    let mut skipped: Vec<(usize, u64, Vec<Diagnostic>)> = Vec::new();
    loop {
        let next = console.wait(|| {
            let next = run.next();
            (run, next)
        });
        let (returned, next) = next?;
        run = returned;
        let Some((index, result)) = next else { break };
        progress.advance(result.is_err(), console)?;
        match result {
            Err(error) => failures.push(error),
            Ok(outcome) => {
                if !outcome.diagnostics.is_empty() {
                    skipped.push((index, outcome.events, outcome.diagnostics));
                }
                if total == 1 || !progress.enabled {
                    console.out(&format!("{}\n", outputs[index]))?;
                }
            }
        }
    }
    progress.close(console)?;
    skipped.sort_by_key(|(index, _, _)| *index);
    let skipped: Vec<Skipped<'_>> = skipped
        .iter()
        .map(|(index, events, diagnostics)| Skipped { bundle: &bundles[*index], events: *events, diagnostics })
        .collect();
    report_skipped(options, &skipped, console)?;
    for error in &failures {
        console.err(&format!("error: {error}\n"))?;
    }
    if total > 1 {
        let failed = failures.len();
        console.err(&format!("{} of {total} bundles reduced, {failed} failed\n", total - failed))?;
    }
    Ok(if failures.is_empty() { EXIT_OK } else { EXIT_FAILED })
}

pub fn summary<C: Console>(options: &CliOptions, console: &mut C) -> Result<Outcome, Stop> {
    finish(summary_inner(options, console))
}

fn summary_inner<C: Console>(options: &CliOptions, console: &mut C) -> Result<i32, Early> {
    let replay_options = bad_value(console, options.replay_options())?;
    let width = match options.width {
        Some(width) if width < 0 => {
            console.err(&format!("rollout-trace: --width must be positive, not {width}\n"))?;
            return Err(Early::Exit(EXIT_USAGE));
        }
        Some(width) if width > 0 => width as usize,
        _ => super::terminal_columns(),
    };
    let bundle = paths::path_buf(options.bundles.first().map_or(".", String::as_str));
    let json = options.json;
    let replay = console.wait(|| {
        crate::reducer::replay_bundle_with(&bundle, &replay_options).map(|replay| {
            let summary = crate::summary::Summary::of(&replay.trace);
            let text = if json { pyjson::dumps(&summary) + "\n" } else { summary.render(width.min(120)) };
            let (diagnostics, events) = (replay.diagnostics.clone(), replay.events);
            // Freeing a large trace takes milliseconds; the answer need not
            // wait for it.
            std::thread::spawn(move || drop(replay));
            (text, events, diagnostics)
        })
    })?;
    match replay {
        Err(error) => {
            console.err(&format!("error: {error}\n"))?;
            Ok(EXIT_FAILED)
        }
        Ok((text, events, diagnostics)) => {
            console.out(&text)?;
            if !diagnostics.is_empty() {
                let bundle = paths::normalize(options.bundles.first().map_or(".", String::as_str));
                report_skipped(options, &[Skipped { bundle: &bundle, events, diagnostics: &diagnostics }], console)?;
            }
            Ok(EXIT_OK)
        }
    }
}

#[derive(Serialize)]
struct ProblemJson<'a> {
    severity: &'static str,
    kind: &'static str,
    message: &'a str,
    bundle: Option<String>,
    file: Option<String>,
    line: Option<u64>,
    seq: Option<u64>,
    raw_payload_id: Option<&'a str>,
}

#[derive(Serialize)]
struct ReportJson<'a> {
    bundle: String,
    events: u64,
    payloads: u64,
    problems: Vec<ProblemJson<'a>>,
    valid: bool,
}

fn lossy(path: &Option<PathBuf>) -> Option<String> {
    path.as_ref().map(|p| p.to_string_lossy().into_owned())
}

pub fn validate<C: Console>(options: &CliOptions, console: &mut C) -> Result<Outcome, Stop> {
    finish(validate_inner(options, console))
}

fn validate_inner<C: Console>(options: &CliOptions, console: &mut C) -> Result<i32, Early> {
    let limits = bad_value(console, options.limits())?;
    let profile = bad_value(console, options.profile())?;
    let bundles = collect_bundles(options, console)?;
    let mut all_valid = true;
    let mut reports = Vec::new();
    for bundle in &bundles {
        let report = console.wait(|| crate::validate::validate(paths::path_buf(bundle), limits, profile))?;
        let valid = report.is_valid(options.strict);
        all_valid &= valid;
        if options.json {
            reports.push((report, valid));
            continue;
        }
        let verdict = if valid { "valid" } else { "INVALID" };
        console.out(&format!(
            "{bundle}: {verdict} ({} events, {} payloads, {} errors, {} warnings)\n",
            report.events,
            report.payloads,
            report.errors().count(),
            report.warnings().count()
        ))?;
        for problem in &report.problems {
            console.out(&format!("  {}: {}\n", problem.severity.as_str(), problem.error))?;
        }
    }
    if options.json {
        let json: Vec<ReportJson<'_>> = reports
            .iter()
            .map(|(report, valid)| ReportJson {
                bundle: report.bundle.to_string_lossy().into_owned(),
                events: report.events,
                payloads: report.payloads,
                problems: report
                    .problems
                    .iter()
                    .map(|p| ProblemJson {
                        severity: p.severity.as_str(),
                        kind: p.error.kind.as_str(),
                        message: &p.error.message,
                        bundle: lossy(&p.error.location.bundle),
                        file: lossy(&p.error.location.file),
                        line: p.error.location.line,
                        seq: p.error.location.seq,
                        raw_payload_id: p.error.location.raw_payload_id.as_deref(),
                    })
                    .collect(),
                valid: *valid,
            })
            .collect();
        console.out(&(pyjson::dumps(&json) + "\n"))?;
    }
    Ok(if all_valid { EXIT_OK } else { EXIT_FAILED })
}

/// What a partial or lenient replay of one bundle left out.
struct Skipped<'a> {
    /// As pathlib spells it.
    bundle: &'a str,
    /// Lines of the event log read as events.
    events: u64,
    diagnostics: &'a [Diagnostic],
}

/// One skipped event as `--diagnostics FILE` lists it (the keys of
/// `rollout_trace.cli.diagnostic_record`, in its order).
#[derive(Serialize)]
struct DiagnosticJson<'a> {
    bundle: &'a str,
    line: Option<u64>,
    seq: Option<u64>,
    event_type: Option<&'static str>,
    kind: &'static str,
    message: &'a str,
    depends_on: Option<u64>,
    file: Option<String>,
    raw_payload_id: Option<&'a str>,
}

/// What partial and lenient replays left out, as the Python path reports
/// it: one line per bundle on stderr, and every skipped event in
/// `--diagnostics FILE` (written atomically, even when nothing was skipped).
fn report_skipped<C: Console>(options: &CliOptions, skipped: &[Skipped<'_>], console: &mut C) -> Result<(), Early> {
    let target = options.diagnostics.as_deref().filter(|target| !target.is_empty());
    let mode = if options.partial { "partial replay" } else { "lenient replay" };
    for entry in skipped {
        let (events, count) = (entry.events, entry.diagnostics.len() as u64);
        let at = match target {
            Some(target) => format!("see {target}"),
            None => "see --diagnostics FILE".to_string(),
        };
        console.err(&format!(
            "warning: {}: {mode}: kept {} of {events} events; skipped {count}, {at}\n",
            entry.bundle,
            events.saturating_sub(count)
        ))?;
    }
    let Some(target) = target else { return Ok(()) };
    let records: Vec<DiagnosticJson<'_>> = skipped
        .iter()
        .flat_map(|entry| {
            entry.diagnostics.iter().map(|d| {
                let loc = &d.error.location;
                DiagnosticJson {
                    bundle: entry.bundle,
                    line: loc.line,
                    seq: loc.seq,
                    event_type: d.event_type,
                    kind: d.error.kind.as_str(),
                    message: &d.error.message,
                    depends_on: d.depends_on_line,
                    file: lossy(&loc.file),
                    raw_payload_id: loc.raw_payload_id.as_deref(),
                }
            })
        })
        .collect();
    let text = pyjson::dumps(&records) + "\n";
    let path = paths::path_buf(target);
    if let Err(error) = crate::output::write_atomic(&path, text.as_bytes()) {
        console.err(&format!("rollout-trace: {error}\n"))?;
        return Err(Early::Exit(EXIT_USAGE));
    }
    Ok(())
}
