//! rollout-trace: write, replay and analyse Codex rollout trace bundles.
//!
//! * [`format`]: the on-disk bundle format (manifest, raw events, payload refs);
//! * [`bundle`]: reading a bundle;
//! * [`compat`]: the compatibility profiles of Codex releases;
//! * [`cli`]: the `rollout-trace` command line (reduce, summary, validate);
//! * [`writer`]: writing a bundle;
//! * [`model`]: the reduced graph, serialized as `state.json`;
//! * [`reducer`]: replaying a bundle into that graph;
//! * [`provenance`]: where things in that graph came from.

// `Error` carries its full location (bundle, file, line, seq, payload id) so
// that every failure is self-explanatory; errors are rare, so its size on the
// `Err` path costs nothing measurable.
#![allow(clippy::result_large_err)]

// A replay makes and frees millions of small strings and values on two
// threads; mimalloc does that in about half the time of glibc's malloc,
// which also returned memory with `madvise` calls that stalled both cores.
// mimalloc 2, the stable line: with 3.x, an extension first loaded on a
// thread that then exits crashed the next thread's first allocation
// (`tests/test_native_threads.py`). Built without transparent huge pages
// (they raised peak RSS by half, and first touches of 2 MB pages slowed
// writing state.json) and with the TLS model that a library loaded by
// Python's `dlopen` needs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod batch;
pub mod bundle;
pub mod cli;
pub mod compat;
pub mod error;
pub mod format;
pub mod json;
pub mod limits;
pub mod model;
pub mod output;
pub mod pretty;
pub mod provenance;
pub mod reducer;
pub mod state_json;
pub mod summary;
pub mod validate;
pub mod watch;
pub mod writer;

#[cfg(feature = "python")]
mod python;

pub use bundle::TraceBundle;
pub use compat::Profile;
pub use error::{Error, ErrorKind, Result};
pub use limits::Limits;
pub use model::RolloutTrace;
pub use reducer::{replay_bundle, replay_bundle_with, Follower, Replay, ReplayOptions};
pub use validate::{validate, Severity, ValidationReport};
pub use writer::TraceWriter;
