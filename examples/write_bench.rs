//! Times writing one bundle's state.json, fastest of N runs each:
//!
//! * `old`: `serde_json::to_writer_pretty` into memory (the writer before
//!   `state_json`);
//! * `seq`: `state_json` on the calling thread only, into memory;
//! * `par`: `state_json` with a helper per spare core, into memory;
//! * `file`: `write_json` through `output::write_atomic_with` (temporary
//!   file, sync, rename) as `rollout-trace reduce` writes it.
//!
//! Usage: `cargo run --release --example write_bench -- BUNDLE [old|seq|par|file|all] [RUNS] [OUT]`.
//! `none` replays only (the baseline for `perf stat` or callgrind).

use std::io::BufWriter;
use std::path::Path;
use std::time::Instant;

use rollout_trace::state_json::{write_state_with, Settings};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(bundle) = args.first() else {
        eprintln!("usage: write_bench BUNDLE [old|seq|par|file|all|none] [RUNS] [OUT]");
        std::process::exit(2);
    };
    let trace = match rollout_trace::replay_bundle(bundle) {
        Ok(trace) => trace,
        Err(err) => {
            eprintln!("error: {err}");
            std::process::exit(1);
        }
    };
    let mode = args.get(1).map_or("all", String::as_str);
    let runs: usize = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(5);
    let out = Path::new(args.get(3).map_or("/tmp/write_bench-state.json", String::as_str));
    let mut memory = Vec::new();
    let mut time = |name: &str, write: &mut dyn FnMut(&mut Vec<u8>)| {
        if mode != "all" && mode != name {
            return;
        }
        let mut fastest = f64::MAX;
        for _ in 0..runs {
            memory.clear();
            let start = Instant::now();
            write(&mut memory);
            fastest = fastest.min(start.elapsed().as_secs_f64());
        }
        eprintln!("{name} {fastest:.4} s");
    };
    let sequential = Settings { helpers: 0, ..Settings::for_entries(usize::MAX) };
    let parallel = Settings::for_entries(usize::MAX);
    time("old", &mut |memory| serde_json::to_writer_pretty(BufWriter::new(memory), &trace).unwrap());
    time("seq", &mut |memory| write_state_with(&trace, &mut BufWriter::new(memory), sequential).unwrap());
    time("par", &mut |memory| write_state_with(&trace, &mut BufWriter::new(memory), parallel).unwrap());
    time("file", &mut |_| rollout_trace::output::write_atomic_with(out, |file| trace.write_json(file)).unwrap());
}
