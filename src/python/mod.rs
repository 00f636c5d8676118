//! The `rollout_trace._native` extension module. Bindings only convert
//! between Python and the Rust core; no format or reducer logic lives here.
//!
//! * [`trace`]: `RolloutTrace`, `replay_bundle`, the `TraceMapping` views;
//! * [`entities`]: one view class per keyed object of the graph;
//! * [`values`]: the small value types and tagged unions inside them;
//! * [`bundle`]: `TraceBundle` and its `RawEvent`s;
//! * [`payload`]: `RawPayloadRef`, read lazily;
//! * [`live`]: `Follower`, the live replay of a growing bundle;
//! * [`cli`]: the native half of the command line.

use pyo3::prelude::*;

mod batch;
mod bundle;
mod cli;
mod convert;
mod entities;
mod errors;
mod live;
mod payload;
mod trace;
mod values;
mod writer;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::register(m)?;
    trace::register(m)?;
    entities::register(m)?;
    values::register(m)?;
    m.add_class::<bundle::PyTraceBundle>()?;
    m.add_class::<bundle::RawEventIterator>()?;
    m.add_class::<bundle::PyRawEvent>()?;
    m.add_class::<payload::PyRawPayloadRef>()?;
    writer::register(m)?;
    batch::register(m)?;
    live::register(m)?;
    cli::register(m)?;
    Ok(())
}
