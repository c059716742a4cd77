//! From `io::Error` to Python exceptions, and back for the errors a Python source raises.
//!
//! * An exception raised by a Python source travels through the cache inside an `io::Error`
//!   ([`PythonSourceError`]); every reader that needs a byte past it gets
//!   `streamcache.SourceError`, whose `__cause__` is that very exception and `offset` the byte
//!   the stream failed at.
//! * Any other error becomes the `OSError` subclass of its errno (`OSError(errno, message)`
//!   picks it: `ENOSPC` stays an `OSError` with `errno == ENOSPC`, `ENOENT` a
//!   `FileNotFoundError`), from the OS error itself when the cache kept it, else from the
//!   error's kind. Bad arguments (`InvalidInput`) are `ValueError`.

use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use std::error::Error;
use std::fmt;
use std::io::{self, ErrorKind};
use streamcache::{Status, StreamCache};

pyo3::create_exception!(
    streamcache,
    SourceError,
    PyOSError,
    "What readers get when the source raised: `offset` is the byte the stream failed at, and \
     `__cause__` the source's own exception. Every byte before `offset` stays readable."
);

/// An exception raised by a Python source, carried through the cache as an `io::Error` payload.
pub(crate) struct PythonSourceError {
    /// The source's exception, re-raised as the `__cause__` of `SourceError`.
    pub(crate) err: PyErr,
    /// `repr` of the exception, taken when it was raised (formatting needs no GIL then).
    message: String,
}

impl PythonSourceError {
    /// Wraps `exc` into an `io::Error` of the right kind (an `OSError`'s errno gives it).
    pub(crate) fn into_io_error(exc: &Bound<'_, PyAny>) -> io::Error {
        let message = exc
            .repr()
            .map(|r| r.to_string())
            .unwrap_or_else(|_| "<exception>".to_owned());
        let kind = exc
            .getattr("errno")
            .ok()
            .and_then(|e| e.extract::<i32>().ok())
            .map(|errno| io::Error::from_raw_os_error(errno).kind())
            .unwrap_or(ErrorKind::Other);
        let err = PyErr::from_value(exc.clone());
        io::Error::new(kind, PythonSourceError { err, message })
    }
}

impl fmt::Debug for PythonSourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PythonSourceError")
            .field("message", &self.message)
            .finish()
    }
}

impl fmt::Display for PythonSourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the source raised {}", self.message)
    }
}

impl Error for PythonSourceError {}

/// The errors in `e`'s chain, outermost first (through `io::Error` payloads and `source()`).
fn chain<'a>(e: &'a io::Error) -> impl Iterator<Item = &'a (dyn Error + 'static)> {
    let mut next: Option<&'a (dyn Error + 'static)> = e.get_ref().map(|r| r as _);
    std::iter::from_fn(move || {
        let cur = next?;
        next = match cur.downcast_ref::<io::Error>() {
            Some(io) => io.get_ref().map(|r| r as _),
            None => cur.source(),
        };
        Some(cur)
    })
}

/// The Python exception in `e`'s chain, if a Python source raised it.
fn python_cause(e: &io::Error) -> Option<&PythonSourceError> {
    chain(e).find_map(|err| err.downcast_ref::<PythonSourceError>())
}

/// The OS error number behind `e`: its own, one in its chain, else the usual one for its kind.
fn errno_of(py: Python<'_>, e: &io::Error) -> Option<i32> {
    if let Some(n) = e.raw_os_error() {
        return Some(n);
    }
    if let Some(n) = chain(e).find_map(|err| err.downcast_ref::<io::Error>()?.raw_os_error()) {
        return Some(n);
    }
    let name = match e.kind() {
        ErrorKind::NotFound => "ENOENT",
        ErrorKind::PermissionDenied => "EACCES",
        ErrorKind::ConnectionRefused => "ECONNREFUSED",
        ErrorKind::ConnectionReset => "ECONNRESET",
        ErrorKind::ConnectionAborted => "ECONNABORTED",
        ErrorKind::NotConnected => "ENOTCONN",
        ErrorKind::AddrInUse => "EADDRINUSE",
        ErrorKind::AddrNotAvailable => "EADDRNOTAVAIL",
        ErrorKind::BrokenPipe => "EPIPE",
        ErrorKind::AlreadyExists => "EEXIST",
        ErrorKind::WouldBlock => "EAGAIN",
        ErrorKind::TimedOut => "ETIMEDOUT",
        ErrorKind::Interrupted => "EINTR",
        ErrorKind::StorageFull => "ENOSPC",
        ErrorKind::OutOfMemory => "ENOMEM",
        ErrorKind::Unsupported => "EOPNOTSUPP",
        _ => return None,
    };
    // Python's `errno` module has the platform's numbers.
    py.import("errno").ok()?.getattr(name).ok()?.extract().ok()
}

/// The byte a failed stream failed at (what it had published).
fn failure_offset(cache: &StreamCache) -> u64 {
    match cache.status() {
        Status::Failed { available, .. } => available,
        _ => cache.available(),
    }
}

/// The Python exception for an error of `cache`.
pub(crate) fn to_py(py: Python<'_>, cache: &StreamCache, e: io::Error) -> PyErr {
    to_py_at(py, failure_offset(cache), e)
}

/// The Python exception for `e`, a source failure being at `offset`.
pub(crate) fn to_py_at(py: Python<'_>, offset: u64, e: io::Error) -> PyErr {
    if let Some(source) = python_cause(&e) {
        return source_error(py, offset, source);
    }
    if e.kind() == ErrorKind::InvalidInput {
        return PyValueError::new_err(e.to_string());
    }
    let message = e.to_string();
    match errno_of(py, &e) {
        Some(errno) => PyOSError::new_err((errno, message)),
        None => PyOSError::new_err(message),
    }
}

/// `SourceError(errno, message)` with `.offset` and `__cause__` the source's exception.
fn source_error(py: Python<'_>, offset: u64, source: &PythonSourceError) -> PyErr {
    let cause = source.err.clone_ref(py);
    let message = format!("the source raised at byte {offset}: {}", source.message);
    let errno = cause
        .value(py)
        .getattr("errno")
        .ok()
        .filter(|e| !e.is_none());
    let ty = py.get_type::<SourceError>();
    let value = match errno {
        Some(errno) => ty.call1((errno, message)),
        None => ty.call1((message,)),
    };
    let err = match value {
        Ok(value) => {
            if let Err(e) = value.setattr("offset", offset) {
                return e;
            }
            PyErr::from_value(value)
        }
        Err(e) => return e,
    };
    err.set_cause(py, Some(cause));
    err
}
