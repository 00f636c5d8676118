//! Replays a bundle and writes its `state.json`: the reduce step of
//! `bench/reduce_bench.py`, measured as a whole process (time and peak RSS)
//! when no `rollout-trace` CLI is installed.
//!
//! Usage: `cargo run --release --example reduce -- BUNDLE [STATE_JSON]`.
//! Prints the replay and serialization times in seconds on stderr.

use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(bundle) = args.first() else {
        eprintln!("usage: reduce BUNDLE [STATE_JSON]");
        std::process::exit(2);
    };
    let start = Instant::now();
    let trace = match rollout_trace::replay_bundle(bundle) {
        Ok(trace) => trace,
        Err(err) => {
            eprintln!("error: {err}");
            std::process::exit(1);
        }
    };
    let replayed = start.elapsed();
    let text = trace.to_json();
    if let Some(out) = args.get(1) {
        if let Err(err) = rollout_trace::output::write_atomic(std::path::Path::new(out), text.as_bytes()) {
            eprintln!("error: {err}");
            std::process::exit(1);
        }
    }
    eprintln!("replay {:.3} s, state.json {:.3} s", replayed.as_secs_f64(), (start.elapsed() - replayed).as_secs_f64());
}
