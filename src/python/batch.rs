//! Python bindings for admission limits, batch reduction and validation.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use super::errors::{diagnostic_to_py, py_err, to_py_err};
use super::trace::PyRolloutTrace;
use crate::batch::{BatchRun, Job};
use crate::compat::{Profile, Repairs};
use crate::error::Error;
use crate::limits::Limits;
use crate::reducer::ReplayOptions;
use crate::validate::{Problem, ValidationReport};

/// Admission limits for reading untrusted bundles. Every reading entry
/// point accepts one; the defaults suit real long sessions.
#[pyclass(frozen, eq, hash, from_py_object, module = "rollout_trace", name = "Limits")]
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PyLimits {
    pub limits: Limits,
}

#[pymethods]
impl PyLimits {
    #[new]
    #[pyo3(signature = (*, max_record_bytes=None, max_bundle_bytes=None, max_events=None, max_payloads=None, max_json_depth=None))]
    fn new(
        max_record_bytes: Option<u64>,
        max_bundle_bytes: Option<u64>,
        max_events: Option<u64>,
        max_payloads: Option<u64>,
        max_json_depth: Option<u32>,
    ) -> Self {
        let d = Limits::DEFAULT;
        PyLimits {
            limits: Limits {
                max_record_bytes: max_record_bytes.unwrap_or(d.max_record_bytes),
                max_bundle_bytes: max_bundle_bytes.unwrap_or(d.max_bundle_bytes),
                max_events: max_events.unwrap_or(d.max_events),
                max_payloads: max_payloads.unwrap_or(d.max_payloads),
                max_json_depth: max_json_depth.unwrap_or(d.max_json_depth),
            },
        }
    }

    #[getter]
    fn max_record_bytes(&self) -> u64 {
        self.limits.max_record_bytes
    }
    #[getter]
    fn max_bundle_bytes(&self) -> u64 {
        self.limits.max_bundle_bytes
    }
    #[getter]
    fn max_events(&self) -> u64 {
        self.limits.max_events
    }
    #[getter]
    fn max_payloads(&self) -> u64 {
        self.limits.max_payloads
    }
    #[getter]
    fn max_json_depth(&self) -> u32 {
        self.limits.max_json_depth
    }

    fn __repr__(&self) -> String {
        let l = &self.limits;
        format!(
            "Limits(max_record_bytes={}, max_bundle_bytes={}, max_events={}, max_payloads={}, max_json_depth={})",
            l.max_record_bytes, l.max_bundle_bytes, l.max_events, l.max_payloads, l.max_json_depth
        )
    }

    /// Pickles as the keyword arguments that rebuild it.
    fn __getnewargs_ex__<'py>(&self, py: Python<'py>) -> PyResult<(Bound<'py, PyTuple>, Bound<'py, PyDict>)> {
        let l = self.limits;
        let kwargs = PyDict::new(py);
        kwargs.set_item("max_record_bytes", l.max_record_bytes)?;
        kwargs.set_item("max_bundle_bytes", l.max_bundle_bytes)?;
        kwargs.set_item("max_events", l.max_events)?;
        kwargs.set_item("max_payloads", l.max_payloads)?;
        kwargs.set_item("max_json_depth", l.max_json_depth)?;
        Ok((PyTuple::empty(py), kwargs))
    }
}

/// `sync=` of the Python API: durable writes unless turned off.
pub fn durability(sync: bool) -> crate::output::Durability {
    if sync {
        crate::output::Durability::Durable
    } else {
        crate::output::Durability::NoSync
    }
}

pub fn limits_or_default(limits: Option<&PyLimits>) -> Limits {
    limits.map_or(Limits::DEFAULT, |l| l.limits)
}

/// The replay options of a Python call, converted in one place. `compat`
/// names a profile (default: the newest release's); an unknown name raises
/// `ValueError` listing the choices.
pub fn replay_options(
    py: Python<'_>,
    compat: Option<&str>,
    limits: Option<&PyLimits>,
    partial: bool,
    lenient: bool,
    repair: Option<&Bound<'_, PyAny>>,
) -> PyResult<ReplayOptions> {
    if partial && lenient {
        return Err(pyo3::exceptions::PyValueError::new_err("partial and lenient exclude each other"));
    }
    let profile = Profile::by_optional_name(compat).map_err(py_err(py))?;
    let repairs = match repair {
        None => Repairs::NONE,
        Some(names) => {
            // One name or several.
            let names: Vec<String> = match names.extract::<String>() {
                Ok(name) => vec![name],
                Err(_) => names.extract()?,
            };
            Repairs::by_names(&names).map_err(py_err(py))?
        }
    };
    let limits = limits_or_default(limits);
    Ok(ReplayOptions { profile, limits, partial, lenient, repairs, ..ReplayOptions::default() })
}

/// A reduction batch running on Rust worker threads; iterating yields
/// `(index, result, partial)` as bundles finish, where `result` is a
/// `RolloutTrace`, `None` (when traces are not kept), or the `TraceError`.
#[pyclass(module = "rollout_trace._native", name = "BatchRun")]
pub struct PyBatchRun {
    run: Arc<Mutex<BatchRun>>,
}

/// One finished bundle: its index, its result and what it left out.
type Finished = (usize, Py<PyAny>, Py<PyAny>);

#[pymethods]
impl PyBatchRun {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Finished>> {
        let run = self.run.clone();
        // Waiting for the next bundle must not hold the GIL.
        let next = py.detach(move || run.lock().unwrap_or_else(|p| p.into_inner()).next());
        let Some((index, result)) = next else { return Ok(None) };
        let (object, report) = match result {
            Ok(outcome) => {
                // `None` when the whole bundle replayed, else what was left out.
                let report = if outcome.diagnostics.is_empty() {
                    py.None()
                } else {
                    let diagnostics = outcome.diagnostics.iter().map(|d| diagnostic_to_py(py, d).into_value(py));
                    (outcome.events, PyTuple::new(py, diagnostics)?).into_pyobject(py)?.into_any().unbind()
                };
                match outcome.replay {
                    Some(replay) => (Py::new(py, PyRolloutTrace::from_replay(replay))?.into_any(), report),
                    None => (py.None(), report),
                }
            }
            Err(error) => (to_py_err(py, error).into_value(py).into_any(), py.None()),
        };
        Ok(Some((index, object, report)))
    }

    fn __len__(&self) -> usize {
        self.run.lock().unwrap_or_else(|p| p.into_inner()).remaining()
    }
}

/// Starts reducing `jobs` (pairs of bundle path and optional output path).
/// With `sync=False` outputs are not synced to disk (still replaced
/// atomically).
#[pyfunction]
#[pyo3(signature = (jobs, *, workers=None, partial=false, limits=None, keep_traces=true, compat=None, lenient=false, repair=None, sync=true))]
#[allow(clippy::too_many_arguments)]
fn reduce_batch(
    py: Python<'_>,
    jobs: Vec<(PathBuf, Option<PathBuf>)>,
    workers: Option<usize>,
    partial: bool,
    limits: Option<PyLimits>,
    keep_traces: bool,
    compat: Option<&str>,
    lenient: bool,
    repair: Option<Bound<'_, PyAny>>,
    sync: bool,
) -> PyResult<PyBatchRun> {
    let jobs = jobs.into_iter().map(|(bundle, output)| Job { bundle, output }).collect();
    let options = replay_options(py, compat, limits.as_ref(), partial, lenient, repair.as_ref())?;
    let run = BatchRun::start_as(jobs, options, workers, keep_traces, durability(sync)).map_err(py_err(py))?;
    Ok(PyBatchRun { run: Arc::new(Mutex::new(run)) })
}

/// Every bundle directory at or below `root`, sorted.
#[pyfunction]
fn find_bundles(py: Python<'_>, root: PathBuf) -> PyResult<Vec<PathBuf>> {
    py.detach(|| crate::batch::find_bundles(&root)).map_err(py_err(py))
}

/// One problem found by `validate`.
#[pyclass(frozen, module = "rollout_trace", name = "Problem")]
pub struct PyProblem {
    problem: Problem,
}

fn path_text(path: &Option<PathBuf>) -> Option<String> {
    path.as_ref().map(|p| p.to_string_lossy().into_owned())
}

#[pymethods]
impl PyProblem {
    /// `"error"` or `"warning"`.
    #[getter]
    fn severity(&self) -> &'static str {
        self.problem.severity.as_str()
    }
    /// The error class name this problem would raise as (`"payload"`, ...).
    #[getter]
    fn kind(&self) -> &'static str {
        self.problem.error.kind.as_str()
    }
    #[getter]
    fn message(&self) -> &str {
        &self.problem.error.message
    }
    #[getter]
    fn bundle(&self) -> Option<String> {
        path_text(&self.problem.error.location.bundle)
    }
    #[getter]
    fn file(&self) -> Option<String> {
        path_text(&self.problem.error.location.file)
    }
    #[getter]
    fn line(&self) -> Option<u64> {
        self.problem.error.location.line
    }
    #[getter]
    fn seq(&self) -> Option<u64> {
        self.problem.error.location.seq
    }
    #[getter]
    fn raw_payload_id(&self) -> Option<&str> {
        self.problem.error.location.raw_payload_id.as_deref()
    }

    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        problem_dict(py, &self.problem.error, Some(self.severity()))
    }

    fn __str__(&self) -> String {
        self.problem.error.to_string()
    }

    fn __repr__(&self) -> String {
        format!(
            "<Problem {} {}: {}>",
            self.severity(),
            self.kind(),
            crate::bundle::excerpt(&self.problem.error.message)
        )
    }
}

/// A plain dict of an error's kind, message and location.
pub fn problem_dict<'py>(py: Python<'py>, error: &Error, severity: Option<&str>) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    if let Some(severity) = severity {
        dict.set_item("severity", severity)?;
    }
    dict.set_item("kind", error.kind.as_str())?;
    dict.set_item("message", &error.message)?;
    dict.set_item("bundle", path_text(&error.location.bundle))?;
    dict.set_item("file", path_text(&error.location.file))?;
    dict.set_item("line", error.location.line)?;
    dict.set_item("seq", error.location.seq)?;
    dict.set_item("raw_payload_id", error.location.raw_payload_id.as_deref())?;
    Ok(dict)
}

/// Every problem found in one bundle.
#[pyclass(frozen, module = "rollout_trace", name = "ValidationReport")]
pub struct PyValidationReport {
    report: ValidationReport,
}

#[pymethods]
impl PyValidationReport {
    #[getter]
    fn bundle(&self) -> String {
        self.report.bundle.to_string_lossy().into_owned()
    }
    /// Events that parsed.
    #[getter]
    fn events(&self) -> u64 {
        self.report.events
    }
    /// Distinct payloads referenced.
    #[getter]
    fn payloads(&self) -> u64 {
        self.report.payloads
    }
    #[getter]
    fn problems<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        self.problem_tuple(py, |_| true)
    }
    #[getter]
    fn errors<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        self.problem_tuple(py, |p| p.severity == crate::validate::Severity::Error)
    }
    #[getter]
    fn warnings<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        self.problem_tuple(py, |p| p.severity == crate::validate::Severity::Warning)
    }

    /// No errors, and with `strict` no warnings either.
    #[pyo3(signature = (strict=false))]
    fn is_valid(&self, strict: bool) -> bool {
        self.report.is_valid(strict)
    }

    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let dict = PyDict::new(py);
        dict.set_item("bundle", self.bundle())?;
        dict.set_item("events", self.report.events)?;
        dict.set_item("payloads", self.report.payloads)?;
        let problems = self
            .report
            .problems
            .iter()
            .map(|p| problem_dict(py, &p.error, Some(p.severity.as_str())))
            .collect::<PyResult<Vec<_>>>()?;
        dict.set_item("problems", problems)?;
        Ok(dict)
    }

    fn __bool__(&self) -> bool {
        self.report.is_valid(false)
    }

    fn __repr__(&self) -> String {
        format!(
            "<ValidationReport {} events={} errors={} warnings={}>",
            self.bundle(),
            self.report.events,
            self.report.errors().count(),
            self.report.warnings().count()
        )
    }
}

impl PyValidationReport {
    fn problem_tuple<'py>(&self, py: Python<'py>, keep: impl Fn(&Problem) -> bool) -> PyResult<Bound<'py, PyTuple>> {
        let items = self
            .report
            .problems
            .iter()
            .filter(|p| keep(p))
            .map(|p| Py::new(py, PyProblem { problem: p.clone() }))
            .collect::<PyResult<Vec<_>>>()?;
        PyTuple::new(py, items)
    }
}

/// Checks a bundle and reports every problem found (nothing is written).
#[pyfunction]
#[pyo3(signature = (path, *, limits=None, compat=None))]
fn validate(
    py: Python<'_>,
    path: PathBuf,
    limits: Option<PyLimits>,
    compat: Option<&str>,
) -> PyResult<PyValidationReport> {
    let options = replay_options(py, compat, limits.as_ref(), false, false, None)?;
    let report = py.detach(|| crate::validate::validate(&path, options.limits, options.profile));
    Ok(PyValidationReport { report })
}

/// The compatibility profiles: `(name, releases)` pairs, oldest family
/// first, `crate` last.
#[pyfunction]
fn compat_profiles() -> Vec<(&'static str, Vec<&'static str>)> {
    crate::compat::PROFILES.iter().map(|p| (p.name, p.releases.to_vec())).collect()
}

/// The names of the opt-in repairs (`repair=`), in order.
#[pyfunction]
fn repair_names() -> Vec<&'static str> {
    crate::compat::REPAIRS.iter().map(|(_, name, _)| *name).collect()
}

/// Each repair's name with the reference behaviour it departs from.
#[pyfunction]
fn repairs_explained() -> Vec<(&'static str, &'static str)> {
    crate::compat::REPAIRS.iter().map(|(_, name, why)| (*name, *why)).collect()
}

/// The profile a name stands for (`codex-0.158.0` → `codex-0.147`; `None`:
/// the default, the newest release's).
#[pyfunction]
#[pyo3(signature = (name=None))]
fn resolve_compat(py: Python<'_>, name: Option<&str>) -> PyResult<&'static str> {
    Ok(Profile::by_optional_name(name).map_err(py_err(py))?.name)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyLimits>()?;
    m.add_class::<PyBatchRun>()?;
    m.add_class::<PyProblem>()?;
    m.add_class::<PyValidationReport>()?;
    m.add_function(wrap_pyfunction!(reduce_batch, m)?)?;
    m.add_function(wrap_pyfunction!(find_bundles, m)?)?;
    m.add_function(wrap_pyfunction!(validate, m)?)?;
    m.add_function(wrap_pyfunction!(compat_profiles, m)?)?;
    m.add_function(wrap_pyfunction!(repair_names, m)?)?;
    m.add_function(wrap_pyfunction!(repairs_explained, m)?)?;
    m.add_function(wrap_pyfunction!(resolve_compat, m)?)?;
    Ok(())
}
