//! `RawPayloadRef`: a reference to one payload file, read lazily.

use std::path::PathBuf;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyTuple};

use super::bundle::PyTraceBundle;
use super::convert::{json_to_py, to_plain, value_hash};
use super::errors::py_err;
use crate::bundle::TraceBundle;
use crate::error::{Error, ErrorKind};
use crate::format::{RawPayloadKind, RawPayloadRef};

/// A reference to one raw payload file of a bundle.
///
/// Nothing is read until `load()`, `read_bytes()`, `exists()` or
/// `absolute_path` is used. `load()` parses the file once and then returns
/// the same object on every call.
#[pyclass(frozen, module = "rollout_trace", name = "RawPayloadRef")]
pub struct PyRawPayloadRef {
    reference: RawPayloadRef,
    /// Where the payload files are; `None` for a trace read from `state.json`
    /// without its bundle.
    bundle: Option<Arc<TraceBundle>>,
    loaded: PyOnceLock<Py<PyAny>>,
}

impl PyRawPayloadRef {
    pub fn new(reference: RawPayloadRef, bundle: Option<Arc<TraceBundle>>) -> Self {
        PyRawPayloadRef { reference, bundle, loaded: PyOnceLock::new() }
    }

    /// The bundle to read from, or the error that says there is none.
    fn require_bundle(&self, py: Python<'_>) -> PyResult<&TraceBundle> {
        self.bundle.as_deref().ok_or_else(|| {
            let id = &self.reference.raw_payload_id;
            let error = Error::new(
                ErrorKind::Payload,
                format!(
                    "raw payload {id} ({}) cannot be read: this trace was loaded without its bundle; \
                     pass bundle= to RolloutTrace.load() or RolloutTrace.from_json()",
                    self.reference.path
                ),
            )
            .with_payload(id);
            py_err(py)(error)
        })
    }
}

#[pymethods]
impl PyRawPayloadRef {
    #[getter]
    fn raw_payload_id(&self) -> &str {
        &self.reference.raw_payload_id
    }

    /// The payload kind as its snake_case name, e.g. ``"inference_request"``.
    #[getter]
    fn kind(&self) -> &'static str {
        self.reference.kind.as_str()
    }

    /// The path relative to the bundle root, as written in the event.
    #[getter]
    fn path(&self) -> &str {
        &self.reference.path
    }

    /// The bundle the payload belongs to, if known.
    #[getter]
    fn bundle(&self) -> Option<PyTraceBundle> {
        self.bundle.clone().map(PyTraceBundle::from_arc)
    }

    /// The absolute path of the payload file. Raises `UnsafePathError` if
    /// the path leads outside the bundle, `PayloadError` without a bundle.
    #[getter]
    fn absolute_path(&self, py: Python<'_>) -> PyResult<PathBuf> {
        let bundle = self.require_bundle(py)?;
        let path = py.detach(|| bundle.payload_path(&self.reference)).map_err(py_err(py))?;
        std::path::absolute(&path).map_err(|err| {
            py_err(py)(
                Error::new(ErrorKind::Payload, format!("resolve {}: {err}", path.display()))
                    .with_bundle(bundle.root())
                    .with_payload(&self.reference.raw_payload_id),
            )
        })
    }

    /// Whether the payload file exists (without reading it).
    fn exists(&self, py: Python<'_>) -> PyResult<bool> {
        let bundle = self.require_bundle(py)?;
        let path = py.detach(|| bundle.payload_path(&self.reference)).map_err(py_err(py))?;
        Ok(py.detach(|| path.is_file()))
    }

    /// Whether `load()` has already parsed the file.
    #[getter]
    fn is_loaded(&self, py: Python<'_>) -> bool {
        self.loaded.get(py).is_some()
    }

    /// The raw bytes of the payload file (not cached).
    fn read_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let bundle = self.require_bundle(py)?;
        let bytes = py.detach(|| bundle.read_payload_bytes(&self.reference)).map_err(py_err(py))?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// The parsed payload as plain Python data: read and parsed on the first
    /// call, then cached (later calls return the same object).
    ///
    /// Integers of any size become `int`, other numbers `float`; object keys
    /// come out sorted.
    fn load(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        if let Some(value) = self.loaded.get(py) {
            return Ok(value.clone_ref(py));
        }
        let bundle = self.require_bundle(py)?;
        let value = py.detach(|| bundle.read_payload(&self.reference)).map_err(py_err(py))?;
        let object = json_to_py(py, &value)?.unbind();
        // Another thread may have loaded it meanwhile; all callers get the first.
        Ok(self.loaded.get_or_init(py, || object).clone_ref(py))
    }

    /// The reference as plain data: ``{"raw_payload_id", "kind": {"type"}, "path"}``.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_plain(py, &self.reference)
    }

    fn __eq__(&self, other: &Self) -> bool {
        self.reference == other.reference
    }

    fn __hash__(&self) -> u64 {
        value_hash(&self.reference)
    }

    fn __repr__(&self) -> String {
        format!(
            "<RawPayloadRef {} {} {}>",
            self.reference.raw_payload_id,
            self.reference.kind.as_str(),
            self.reference.path
        )
    }

    /// Pickles the reference and its bundle location, not the loaded value.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let py = slf.py();
        let this = slf.get();
        let restore = py.get_type::<Self>().getattr("_restore")?;
        let bundle = this.bundle();
        let args = (
            this.reference.raw_payload_id.as_str(),
            this.reference.kind.as_str(),
            this.reference.path.as_str(),
            bundle,
        )
            .into_pyobject(py)?;
        Ok((restore, args))
    }

    #[staticmethod]
    #[pyo3(signature = (raw_payload_id, kind, path, bundle))]
    fn _restore(
        raw_payload_id: String,
        kind: &str,
        path: String,
        bundle: Option<PyRef<'_, PyTraceBundle>>,
    ) -> PyResult<Self> {
        let kind = RawPayloadKind::parse(kind)
            .ok_or_else(|| pyo3::exceptions::PyValueError::new_err(format!("unknown raw payload kind {kind:?}")))?;
        let reference = RawPayloadRef { raw_payload_id, kind, path };
        Ok(Self::new(reference, bundle.map(|bundle| bundle.arc())))
    }
}
