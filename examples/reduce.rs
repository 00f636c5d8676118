//! Replays a bundle and writes its `state.json` as `rollout-trace reduce`
//! does, without the Python start-up: the driver for profiling the reducer
//! (`perf record`, `valgrind --tool=callgrind`).
//!
//! Usage: `cargo run --release --example reduce -- [--no-read-ahead] BUNDLE [STATE_JSON]`.
//! Prints the replay, write and free times on stderr.

use std::path::Path;
use std::time::Instant;

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let read_ahead = !args.iter().any(|arg| arg == "--no-read-ahead");
    args.retain(|arg| arg != "--no-read-ahead");
    let Some(bundle) = args.first() else {
        eprintln!("usage: reduce [--no-read-ahead] BUNDLE [STATE_JSON]");
        std::process::exit(2);
    };
    let options = rollout_trace::ReplayOptions { read_ahead, ..Default::default() };
    let start = Instant::now();
    let trace = match rollout_trace::replay_bundle_with(bundle, &options) {
        Ok(replay) => replay.trace,
        Err(err) => {
            eprintln!("error: {err}");
            std::process::exit(1);
        }
    };
    let replayed = start.elapsed();
    if let Some(out) = args.get(1) {
        if let Err(err) = rollout_trace::output::write_atomic_with(Path::new(out), |out| trace.write_json(out)) {
            eprintln!("error: {err}");
            std::process::exit(1);
        }
    }
    let written = start.elapsed();
    drop(trace);
    eprintln!(
        "replay {:.3} s, write {:.3} s, free {:.3} s",
        replayed.as_secs_f64(),
        (written - replayed).as_secs_f64(),
        (start.elapsed() - written).as_secs_f64()
    );
}
