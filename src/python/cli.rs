//! The native half of `rollout_trace.cli`: `cli_main` runs the usual
//! command lines of reduce, summary and validate (and `--version`) before
//! Python imports anything else; `cli_run` runs what argparse parsed;
//! `cli_spec` is the table argparse is built from. Output goes to
//! `sys.stdout` and `sys.stderr`.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString};

use crate::cli::{self, spec, Console, Outcome, Parsed, Stop, Value};

struct PyConsole<'py> {
    py: Python<'py>,
    stdout: Bound<'py, PyAny>,
    stderr: Bound<'py, PyAny>,
    /// Why the command stopped, raised once it has.
    error: Option<PyErr>,
}

impl<'py> PyConsole<'py> {
    fn new(py: Python<'py>) -> PyResult<Self> {
        let sys = py.import("sys")?;
        Ok(PyConsole { py, stdout: sys.getattr("stdout")?, stderr: sys.getattr("stderr")?, error: None })
    }

    fn check(&mut self, result: PyResult<Bound<'py, PyAny>>) -> Result<(), Stop> {
        match result {
            Ok(_) => Ok(()),
            Err(error) => {
                self.error = Some(error);
                Err(Stop)
            }
        }
    }

    fn finish(self, result: Result<Outcome, Stop>) -> PyResult<Py<PyAny>> {
        let py = self.py;
        match result {
            Ok(Outcome::Exit(code)) => Ok(code.into_pyobject(py)?.into_any().unbind()),
            Ok(Outcome::Usage(message)) => Ok(PyString::new(py, &message).into_any().unbind()),
            Err(Stop) => Err(self.error.unwrap_or_else(|| PyValueError::new_err("the command stopped"))),
        }
    }
}

impl Console for PyConsole<'_> {
    fn out(&mut self, text: &str) -> Result<(), Stop> {
        let result = self.stdout.call_method1("write", (text,));
        self.check(result)
    }

    fn err(&mut self, text: &str) -> Result<(), Stop> {
        let result = self.stderr.call_method1("write", (text,));
        self.check(result)
    }

    fn flush_err(&mut self) -> Result<(), Stop> {
        let result = self.stderr.call_method0("flush");
        self.check(result)
    }

    fn err_is_terminal(&mut self) -> bool {
        self.stderr.call_method0("isatty").and_then(|t| t.is_truthy()).unwrap_or(false)
    }

    fn wait<T: Send>(&mut self, work: impl FnOnce() -> T + Send) -> Result<T, Stop> {
        let result = self.py.detach(work);
        match self.py.check_signals() {
            Ok(()) => Ok(result),
            Err(error) => {
                self.error = Some(error);
                Err(Stop)
            }
        }
    }
}

/// Runs `argv` (without the program name) if the native parser takes it:
/// returns the exit code, or a usage error's message (str) for argparse to
/// print; `None` when argparse should parse this command line.
#[pyfunction]
fn cli_main(py: Python<'_>, argv: Vec<Bound<'_, PyAny>>) -> PyResult<Option<Py<PyAny>>> {
    // Arguments that are not plain text (undecodable bytes): argparse's.
    let Ok(argv) = argv.iter().map(|arg| arg.extract::<String>()).collect::<PyResult<Vec<String>>>() else {
        return Ok(None);
    };
    match cli::parse(&argv) {
        Parsed::Delegate => Ok(None),
        Parsed::Version => {
            let mut console = PyConsole::new(py)?;
            let result = console.out(&format!("{} {}\n", spec::PROG, spec::VERSION)).map(|()| Outcome::Exit(0));
            console.finish(result).map(Some)
        }
        Parsed::Help(command) => {
            let mut console = PyConsole::new(py)?;
            let text = cli::help::format_help(command, cli::help::width_for(cli::terminal_columns()));
            let result = console.out(&text).map(|()| Outcome::Exit(0));
            console.finish(result).map(Some)
        }
        Parsed::Run(command, options) => {
            let mut console = PyConsole::new(py)?;
            let result = cli::run(command, &options, &mut console);
            console.finish(result).map(Some)
        }
    }
}

/// For tests: a native command's `--help` for a terminal of `columns`.
#[pyfunction]
fn cli_help(command: &str, columns: usize) -> PyResult<String> {
    let command = spec::command(command)
        .filter(|c| c.native)
        .ok_or_else(|| PyValueError::new_err(format!("{command} is not a native command")))?;
    Ok(cli::help::format_help(command, cli::help::width_for(columns)))
}

fn to_value(value: &Bound<'_, PyAny>) -> PyResult<Value> {
    if value.is_none() {
        Ok(Value::Absent)
    } else if value.is_instance_of::<PyBool>() {
        Ok(Value::Flag(value.extract()?))
    } else if value.is_instance_of::<PyInt>() {
        Ok(Value::Int(value.extract()?))
    } else if value.is_instance_of::<PyFloat>() {
        Ok(Value::Float(value.extract()?))
    } else if value.is_instance_of::<PyString>() {
        Ok(Value::Text(value.extract()?))
    } else if value.is_instance_of::<PyList>() {
        Ok(Value::List(value.extract()?))
    } else {
        Err(PyValueError::new_err(format!("unexpected option value {value}")))
    }
}

/// The options argparse parsed (its namespace's `vars()`, each key an
/// option's `dest`), through the same setters as the native parser's.
fn convert(command: &str, values: &Bound<'_, PyDict>) -> PyResult<(&'static spec::Command, cli::CliOptions)> {
    let Some(command) = spec::command(command).filter(|c| c.native) else {
        return Err(PyValueError::new_err(format!("{command} is not a native command")));
    };
    let mut options = cli::CliOptions::default();
    for (key, value) in values.iter() {
        let dest: String = key.extract()?;
        let Some(arg) = command.arg(&dest) else {
            return Err(PyValueError::new_err(format!("{} has no option {dest}", command.name)));
        };
        (arg.set)(&mut options, to_value(&value)?).map_err(PyValueError::new_err)?;
    }
    Ok((command, options))
}

/// For tests: what the native parser makes of `argv` (`None`: argparse
/// decides), and what argparse's values become; equal strings, equal
/// options.
#[pyfunction]
fn cli_parse(argv: Vec<String>) -> Option<String> {
    match cli::parse(&argv) {
        Parsed::Run(command, options) => Some(format!("{} {options:?}", command.name)),
        Parsed::Version | Parsed::Help(_) | Parsed::Delegate => None,
    }
}

#[pyfunction]
fn cli_convert(command: &str, values: &Bound<'_, PyDict>) -> PyResult<String> {
    let (command, options) = convert(command, values)?;
    Ok(format!("{} {options:?}", command.name))
}

/// Runs a native command with the values argparse parsed (its namespace's
/// `vars()`, each key an option's `dest`); returns as `cli_main`.
#[pyfunction]
fn cli_run(py: Python<'_>, command: &str, values: &Bound<'_, PyDict>) -> PyResult<Py<PyAny>> {
    let (command, options) = convert(command, values)?;
    let mut console = PyConsole::new(py)?;
    let result = cli::run(command, &options, &mut console);
    console.finish(result)
}

/// Every command and option, for building the argparse parser.
#[pyfunction]
fn cli_spec(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let top = PyDict::new(py);
    top.set_item("prog", spec::PROG)?;
    top.set_item("description", spec::DESCRIPTION)?;
    top.set_item("epilog", spec::EPILOG)?;
    top.set_item("version", spec::VERSION)?;
    let commands = PyList::empty(py);
    for command in spec::COMMANDS {
        let entry = PyDict::new(py);
        entry.set_item("name", command.name)?;
        entry.set_item("help", command.help)?;
        entry.set_item("description", command.description)?;
        entry.set_item("native", command.native)?;
        let groups = PyList::empty(py);
        for group in command.groups {
            let args = PyList::empty(py);
            for arg in group.args {
                let item = PyDict::new(py);
                item.set_item("flags", arg.flags.to_vec())?;
                item.set_item("dest", arg.dest)?;
                item.set_item("kind", arg.kind.name())?;
                item.set_item("metavar", arg.metavar)?;
                item.set_item("help", arg.help)?;
                item.set_item("required", arg.required)?;
                if arg.kind == spec::Kind::Repair {
                    item.set_item("choices", spec::repair_choices())?;
                }
                args.append(item)?;
            }
            groups.append((group.title, args))?;
        }
        entry.set_item("groups", groups)?;
        commands.append(entry)?;
    }
    top.set_item("commands", commands)?;
    Ok(top)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(cli_main, m)?)?;
    m.add_function(wrap_pyfunction!(cli_run, m)?)?;
    m.add_function(wrap_pyfunction!(cli_spec, m)?)?;
    m.add_function(wrap_pyfunction!(cli_parse, m)?)?;
    m.add_function(wrap_pyfunction!(cli_convert, m)?)?;
    m.add_function(wrap_pyfunction!(cli_help, m)?)?;
    Ok(())
}
