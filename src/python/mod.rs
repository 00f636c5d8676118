//! The `rollout_trace._native` extension module. Bindings only convert
//! between Python and the Rust core; no format or reducer logic lives here.

use pyo3::prelude::*;

mod errors;
mod writer;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::register(m)?;
    writer::register(m)?;
    Ok(())
}
