//! The parse floor of a bundle: read every file once and parse it as JSON
//! without building anything (`serde::de::IgnoredAny`). No reducer can be
//! faster than this, so `bench/reduce_bench.py` reports reduce time as a
//! multiple of it.
//!
//! Usage: `cargo run --release --example parse_floor -- BUNDLE`.
//! Prints `<bytes> <seconds>` on stdout.

use std::io::BufRead;
use std::path::Path;
use std::time::Instant;

use serde::de::IgnoredAny;

fn main() {
    let Some(bundle) = std::env::args().nth(1) else {
        eprintln!("usage: parse_floor BUNDLE");
        std::process::exit(2);
    };
    let root = Path::new(&bundle);
    let start = Instant::now();
    match parse_all(root) {
        Ok(bytes) => println!("{bytes} {:.6}", start.elapsed().as_secs_f64()),
        Err(err) => {
            eprintln!("error: {err}");
            std::process::exit(1);
        }
    }
}

/// Parses the manifest, every line of `trace.jsonl` and every payload file;
/// returns the number of bytes read.
fn parse_all(root: &Path) -> Result<u64, Box<dyn std::error::Error>> {
    let mut bytes = 0;
    let manifest = std::fs::read(root.join("manifest.json"))?;
    serde_json::from_slice::<IgnoredAny>(&manifest)?;
    bytes += manifest.len() as u64;
    let log = std::io::BufReader::new(std::fs::File::open(root.join("trace.jsonl"))?);
    for line in log.split(b'\n') {
        let line = line?;
        bytes += line.len() as u64 + 1;
        if !line.iter().all(u8::is_ascii_whitespace) {
            serde_json::from_slice::<IgnoredAny>(&line)?;
        }
    }
    for entry in std::fs::read_dir(root.join("payloads"))? {
        let payload = std::fs::read(entry?.path())?;
        serde_json::from_slice::<IgnoredAny>(&payload)?;
        bytes += payload.len() as u64;
    }
    Ok(bytes)
}
