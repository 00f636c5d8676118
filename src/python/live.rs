//! `Follower`: the live replay of a growing bundle, for Python. The
//! `rollout_trace.live` module wraps it (`follow`, `LiveTrace`).

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::errors::{diagnostic_to_py, py_err};
use super::trace::PyRolloutTrace;
use crate::reducer::{Follower, Replay, ReplayOptions, Update};

#[pyclass(frozen, module = "rollout_trace._native", name = "Follower")]
pub struct PyFollower {
    path: PathBuf,
    options: ReplayOptions,
    /// Start over when the log is truncated or replaced, instead of failing.
    restart: bool,
    state: Arc<Mutex<State>>,
}

struct State {
    follower: Follower,
    /// The snapshot of the current state, made when first asked for.
    snapshot: Option<Py<PyRolloutTrace>>,
}

impl PyFollower {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// An update as a dict: `lines`, `events`, `reset`, and `added` / `updated`
/// mapping a map name to a tuple of ids.
fn update_to_py<'py>(py: Python<'py>, update: &Update) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("lines", update.lines)?;
    dict.set_item("events", update.events)?;
    dict.set_item("reset", update.reset)?;
    for (key, ids) in [("added", &update.added), ("updated", &update.updated)] {
        let by_map = PyDict::new(py);
        for (map, ids) in ids {
            by_map.set_item(*map, pyo3::types::PyTuple::new(py, ids)?)?;
        }
        dict.set_item(key, by_map)?;
    }
    Ok(dict)
}

/// Runs one step of the follower; a truncated or replaced log starts over
/// when `restart` is set (the update then says `reset`).
fn step(
    state: &mut State,
    path: &PathBuf,
    options: &ReplayOptions,
    restart: bool,
    wait: Option<Option<Duration>>,
) -> crate::Result<Option<Update>> {
    let result = match wait {
        None => state.follower.update().map(Some),
        Some(timeout) => state.follower.wait(timeout),
    };
    let result = match result {
        Err(error) if restart && error.message.contains("while it was followed") => {
            state.follower = Follower::open(path, *options)?;
            state.follower.update().map(|update| Some(Update { reset: true, ..update }))
        }
        other => other,
    };
    if matches!(&result, Ok(Some(update)) if !update.is_empty()) {
        state.snapshot = None;
    }
    result
}

#[pymethods]
impl PyFollower {
    #[new]
    #[pyo3(signature = (path, *, compat=None, lenient=false, repair=None, limits=None, restart=false))]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        compat: Option<&str>,
        lenient: bool,
        repair: Option<Bound<'_, PyAny>>,
        limits: Option<super::batch::PyLimits>,
        restart: bool,
    ) -> PyResult<Self> {
        let options = ReplayOptions {
            read_ahead: false,
            ..super::batch::replay_options(py, compat, limits.as_ref(), false, lenient, repair.as_ref())?
        };
        let follower = py.detach(|| Follower::open(&path, options)).map_err(py_err(py))?;
        Ok(PyFollower { path, options, restart, state: Arc::new(Mutex::new(State { follower, snapshot: None })) })
    }

    /// Reads the complete lines appended since the last call (GIL released).
    fn update<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let (state, path, options, restart) = (self.state.clone(), self.path.clone(), self.options, self.restart);
        let update = py
            .detach(move || {
                step(&mut state.lock().unwrap_or_else(PoisonError::into_inner), &path, &options, restart, None)
            })
            .map_err(py_err(py))?;
        update_to_py(py, &update.unwrap_or_default())
    }

    /// Waits for the log to grow and updates (GIL released); `None` when
    /// `timeout` seconds pass first.
    #[pyo3(signature = (timeout=None))]
    fn wait<'py>(&self, py: Python<'py>, timeout: Option<f64>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let timeout = timeout.map(|seconds| Duration::from_secs_f64(seconds.max(0.0)));
        let (state, path, options, restart) = (self.state.clone(), self.path.clone(), self.options, self.restart);
        let update = py
            .detach(move || {
                step(&mut state.lock().unwrap_or_else(PoisonError::into_inner), &path, &options, restart, Some(timeout))
            })
            .map_err(py_err(py))?;
        update.map(|update| update_to_py(py, &update)).transpose()
    }

    /// The trace of the lines consumed so far: equal to a strict (or
    /// lenient) replay of exactly those lines. Made once per change.
    fn snapshot(&self, py: Python<'_>) -> PyResult<Py<PyRolloutTrace>> {
        let mut state = self.lock();
        if let Some(snapshot) = &state.snapshot {
            return Ok(snapshot.clone_ref(py));
        }
        let follower = &state.follower;
        let replay = py
            .detach(|| {
                Ok::<_, crate::Error>(Replay {
                    trace: follower.snapshot()?,
                    diagnostics: follower.diagnostics(),
                    events: follower.events(),
                    repairs: follower.repairs(),
                    bundle: follower.bundle().clone(),
                })
            })
            .map_err(py_err(py))?;
        let snapshot = Py::new(py, PyRolloutTrace::from_replay(replay))?;
        state.snapshot = Some(snapshot.clone_ref(py));
        Ok(snapshot)
    }

    /// Whether the rollout has ended (its `rollout_ended` line consumed).
    #[getter]
    fn ended(&self) -> bool {
        self.lock().follower.ended()
    }

    /// Lines of `trace.jsonl` consumed so far.
    #[getter]
    fn lines(&self) -> u64 {
        self.lock().follower.lines()
    }

    /// What a lenient follower left out so far, as `TraceError`s.
    #[getter]
    fn diagnostics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyTuple>> {
        let diagnostics = self.lock().follower.diagnostics();
        pyo3::types::PyTuple::new(py, diagnostics.iter().map(|d| diagnostic_to_py(py, d).into_value(py)))
    }

    #[getter]
    fn path(&self) -> &PathBuf {
        &self.path
    }

    fn __repr__(&self) -> String {
        let state = self.lock();
        format!(
            "<Follower {} lines={} ended={}>",
            self.path.display(),
            state.follower.lines(),
            if state.follower.ended() { "True" } else { "False" }
        )
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyFollower>()
}
