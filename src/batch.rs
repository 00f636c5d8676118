//! Reducing many bundles at once on a pool of worker threads.
//!
//! Results can be collected in input order (`reduce_many`) or streamed in
//! completion order (`BatchRun`), so a pipeline sees each bundle as soon as
//! it is done and one failure never stops the others.

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use rayon::prelude::*;

use crate::error::{Error, ErrorKind, Result};
use crate::output::Durability;
use crate::reducer::{replay_bundle_with, Diagnostic, Replay, ReplayOptions};

/// One bundle to reduce, and where to write its `state.json` if anywhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub bundle: PathBuf,
    pub output: Option<PathBuf>,
}

/// What one successful job produced.
#[derive(Debug)]
pub struct JobOutcome {
    /// What a partial or lenient replay left out.
    pub diagnostics: Vec<Diagnostic>,
    /// Lines of the event log read as events.
    pub events: u64,
    /// The replay itself, when the caller asked to keep traces.
    pub replay: Option<Replay>,
}

/// A job's outcome, or the error that stopped it.
pub type JobResult = Result<JobOutcome>;

/// A thread count: `None` means one per core.
pub fn worker_count(workers: Option<usize>) -> usize {
    workers.filter(|n| *n > 0).unwrap_or_else(cores)
}

/// The cores this process may use. Asked once: on Linux the answer reads
/// cgroup files.
pub fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

fn pool(workers: usize) -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(workers)
        .thread_name(|i| format!("rollout-trace-{i}"))
        .build()
        .map_err(|err| Error::new(ErrorKind::Usage, format!("cannot start {workers} worker threads: {err}")))
}

/// Reduces one job: replay, then write `state.json` atomically (and
/// durably) if asked. With `spare_cores`, writing shares the work with
/// helper threads.
pub fn run_job(job: &Job, options: &ReplayOptions, spare_cores: bool) -> Result<Replay> {
    run_job_as(job, options, spare_cores, Durability::Durable)
}

/// `run_job`, writing `state.json` synced to disk or not.
pub fn run_job_as(job: &Job, options: &ReplayOptions, spare_cores: bool, durability: Durability) -> Result<Replay> {
    let replay = replay_bundle_with(&job.bundle, options)?;
    if let Some(output) = &job.output {
        crate::output::write_atomic_as(output, durability, |out| {
            if spare_cores {
                replay.trace.write_json(out)
            } else {
                crate::state_json::write_state_with(&replay.trace, out, crate::state_json::Settings::one_thread())
            }
        })?;
    }
    Ok(replay)
}

/// Whether `jobs` replays on `workers` threads leave cores idle: only then
/// do a replay's extra threads (reading ahead, serializing) pay.
fn spare_cores(jobs: usize, workers: usize) -> bool {
    jobs.min(workers) < cores()
}

/// The options for each of `jobs` replays on `workers` threads: reading
/// ahead only while cores would be idle otherwise.
fn per_job(options: &ReplayOptions, jobs: usize, workers: usize) -> ReplayOptions {
    ReplayOptions { read_ahead: options.read_ahead && spare_cores(jobs, workers), ..*options }
}

/// Reduces every bundle; results come back in input order.
pub fn reduce_many(paths: &[PathBuf], options: &ReplayOptions, workers: Option<usize>) -> Result<Vec<Result<Replay>>> {
    let workers = worker_count(workers);
    let options = per_job(options, paths.len(), workers);
    let pool = pool(workers)?;
    Ok(pool.install(|| paths.par_iter().map(|path| replay_bundle_with(path, &options)).collect()))
}

/// A batch running in the background; `next` yields `(index, result)` as
/// jobs finish.
pub struct BatchRun {
    receiver: mpsc::Receiver<(usize, JobResult)>,
    remaining: usize,
}

impl BatchRun {
    /// Starts the batch; outputs are written durably.
    pub fn start(jobs: Vec<Job>, options: ReplayOptions, workers: Option<usize>, keep_traces: bool) -> Result<Self> {
        Self::start_as(jobs, options, workers, keep_traces, Durability::Durable)
    }

    /// `start`, writing outputs synced to disk or not.
    pub fn start_as(
        jobs: Vec<Job>,
        options: ReplayOptions,
        workers: Option<usize>,
        keep_traces: bool,
        durability: Durability,
    ) -> Result<Self> {
        let workers = worker_count(workers);
        let options = per_job(&options, jobs.len(), workers);
        let spare = spare_cores(jobs.len(), workers);
        let pool = pool(workers)?;
        let (sender, receiver) = mpsc::channel();
        let remaining = jobs.len();
        // The pool lives as long as its last job: rayon keeps it alive
        // while spawned work runs.
        pool.spawn(move || {
            jobs.into_par_iter().enumerate().for_each_with(sender, |sender, (index, job)| {
                // `replay_with` already turns a panic into an error.
                let (result, spent) = match run_job_as(&job, &options, spare, durability) {
                    Ok(replay) => {
                        let (diagnostics, events) = (replay.diagnostics.clone(), replay.events);
                        let (kept, spent) = if keep_traces { (Some(replay), None) } else { (None, Some(replay)) };
                        (Ok(JobOutcome { diagnostics, events, replay: kept }), spent)
                    }
                    Err(error) => (Err(error), None),
                };
                // The receiver may be gone if the caller stopped listening.
                let _ = sender.send((index, result));
                // Freeing a large trace takes milliseconds; the caller has
                // its result first.
                drop(spent);
            });
        });
        Ok(BatchRun { receiver, remaining })
    }

    /// Jobs not yet reported.
    pub fn remaining(&self) -> usize {
        self.remaining
    }
}

impl Iterator for BatchRun {
    type Item = (usize, JobResult);

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        let item = self.receiver.recv().ok()?;
        self.remaining -= 1;
        Some(item)
    }
}

/// Every bundle directory (one holding `manifest.json`) at or below `root`,
/// sorted; symlinked directories are not followed.
pub fn find_bundles(root: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        if dir.join(crate::format::MANIFEST_FILE).is_file() {
            found.push(dir);
            continue;
        }
        let entries = std::fs::read_dir(&dir)
            .map_err(|err| Error::new(ErrorKind::Bundle, format!("read directory {}: {err}", dir.display())))?;
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(entry.path());
            }
        }
    }
    found.sort();
    Ok(found)
}
