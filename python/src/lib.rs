//! `streamcache._streamcache`: the Rust core of the Python package `streamcache`.
//!
//! One class, `PyStreamCache` (`streamcache.StreamCache`'s base), over
//! [`streamcache::StreamCache`], plus the pieces it needs: the buffer protocol
//! (`buffer`), the Python sources (`source`) and the exceptions (`errors`). The Python
//! part of the package (`python/streamcache/`) adds the `io.RawIOBase` reader, the `buffer`
//! package's `StreamBuffer` and the thread that reads Python sources.
//!
//! Every wait and every copy runs with the GIL released. A wait is cut into slices of
//! `WAIT_SLICE`, with `PyErr_CheckSignals` between them, so that Ctrl-C interrupts a wait in
//! the main thread.
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

mod buffer;
mod errors;
mod source;

use pyo3::exceptions::{PyIndexError, PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PySlice, PyString, PyTuple};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use streamcache::{Builder, Status, StreamCache};

/// The longest a wait runs with the GIL released before it checks for signals.
const WAIT_SLICE: Duration = Duration::from_millis(50);

/// A non-negative integer argument as `u64`: `ValueError` when negative or too large (never
/// PyO3's `OverflowError`), `TypeError` when not an integer.
fn non_negative(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<u64> {
    match obj.extract::<u64>() {
        Ok(v) => Ok(v),
        Err(e) => {
            // `operator.index` semantics: anything else than an integer is a `TypeError`.
            let index = obj
                .py()
                .import("operator")?
                .getattr("index")?
                .call1((obj,))
                .map_err(|_| e)?;
            if index.lt(0)? {
                Err(PyValueError::new_err(format!(
                    "{what} must be >= 0, not {index}"
                )))
            } else {
                Err(PyValueError::new_err(format!(
                    "{what} is too large: {index}"
                )))
            }
        }
    }
}

/// Like [`non_negative`], for an option that also takes `None`.
fn option(obj: Option<&Bound<'_, PyAny>>, what: &str) -> PyResult<Option<u64>> {
    match obj {
        Some(o) if !o.is_none() => non_negative(o, what).map(Some),
        _ => Ok(None),
    }
}

/// `offset + len`, or `ValueError` when it does not fit in 64 bits.
fn end_of(offset: u64, len: u64) -> PyResult<u64> {
    offset
        .checked_add(len)
        .ok_or_else(|| PyValueError::new_err("offset + size does not fit in 64 bits"))
}

/// Waits until all of `[start, target)` has arrived or the stream has ended, as
/// [`StreamCache::wait_range_timeout`] (a range far ahead of a ranged source is fetched at
/// once): `Some(end)`, the end of the run of arrived bytes from `start`, or `None` once
/// `timeout` (`None`: no limit) has passed. Without the GIL, in slices, raising whatever a
/// signal handler raises (`KeyboardInterrupt`) between them. From `start` 0, `end` is what
/// `available` was when the wait ended.
fn wait(
    py: Python<'_>,
    cache: &StreamCache,
    start: u64,
    target: u64,
    timeout: Option<Duration>,
) -> PyResult<Option<u64>> {
    // Already there (or over): no GIL round trip.
    match cache.wait_range_timeout(start..target, Duration::ZERO) {
        Ok(Some(end)) => return Ok(Some(end)),
        Ok(None) => {}
        Err(e) => return Err(errors::to_py(py, cache, e)),
    }
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    loop {
        let slice = match (timeout, deadline) {
            (None, _) | (Some(_), None) => WAIT_SLICE,
            (Some(_), Some(deadline)) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(None);
                }
                left.min(WAIT_SLICE)
            }
        };
        match py.detach(|| cache.wait_range_timeout(start..target, slice)) {
            Ok(Some(end)) => return Ok(Some(end)),
            Ok(None) => py.check_signals()?,
            Err(e) => return Err(errors::to_py(py, cache, e)),
        }
    }
}

/// [`wait`] without a time limit.
fn wait_until(py: Python<'_>, cache: &StreamCache, start: u64, target: u64) -> PyResult<u64> {
    Ok(wait(py, cache, start, target, None)?.unwrap_or(target))
}

/// A read that returns once its first bytes are there still wants `size` of them: a ranged
/// source starts fetching them all now, in parallel spans (a zip entry read in one `read(n)`).
fn prefetch(cache: &StreamCache, offset: u64, size: u64) -> PyResult<()> {
    cache
        .prefetch(offset..end_of(offset, size)?)
        .map_err(|e| PyValueError::new_err(e.to_string()))
}

/// A new `bytes` of `len` bytes of `cache` from `offset`, all of them available: copied with
/// the GIL released, into the `bytes` object's own memory (no zero-fill, no second copy).
fn copy_out<'py>(
    py: Python<'py>,
    cache: &StreamCache,
    offset: u64,
    len: usize,
) -> PyResult<Bound<'py, PyBytes>> {
    let size = ffi::Py_ssize_t::try_from(len)
        .map_err(|_| PyValueError::new_err("size too large for a bytes object"))?;
    // SAFETY: with a null pointer, CPython allocates an uninitialised `bytes` of `size` bytes;
    // the result is a new reference or null with an exception set.
    let bytes = unsafe {
        Bound::from_owned_ptr_or_err(py, ffi::PyBytes_FromStringAndSize(std::ptr::null(), size))?
    };
    let bytes = bytes.cast_into::<PyBytes>()?;
    if len == 0 {
        return Ok(bytes);
    }
    // SAFETY: the object is ours alone (not yet returned to Python), `len` bytes long; its
    // memory stays in place while `bytes` holds the reference, GIL or not.
    let dst = unsafe {
        std::slice::from_raw_parts_mut(ffi::PyBytes_AsString(bytes.as_ptr()).cast::<u8>(), len)
    };
    py.detach(|| cache.read_exact_at(offset, dst))
        .map_err(|e| errors::to_py(py, cache, e))?;
    Ok(bytes)
}

/// The stream's bytes `[start, stop)`, clamped to its end as Python slices are.
fn clamp_range(py: Python<'_>, cache: &StreamCache, start: u64, stop: u64) -> PyResult<(u64, u64)> {
    let run_end = wait_until(py, cache, start.min(stop), stop)?;
    let stop = stop.min(run_end.max(start.min(stop)));
    Ok((start.min(stop), stop))
}

/// An http(s) URL as a source: fetched in Rust, without the GIL (a ranged source when the
/// server honours `Range`: random access on demand).
fn spawn_url(py: Python<'_>, builder: Builder, url: &str) -> PyResult<StreamCache> {
    py.detach(|| builder.spawn_url(url))
        .map_err(|e| spawn_error(py, e))
}

/// The schemes of the object-store URLs that go to `Builder::spawn_object_url` (every other
/// `str` source must be an http(s) URL).
const OBJECT_SCHEMES: &[&str] = &[
    "s3", "s3a", "gs", "az", "azure", "abfs", "abfss", "adl", "file", "memory",
];

/// The kind of URL a `str` source is, from its scheme (case-insensitive).
#[derive(Clone, Copy, PartialEq, Eq)]
enum UrlKind {
    /// `http://` or `https://`: `Builder::spawn_url`.
    Http,
    /// One of [`OBJECT_SCHEMES`]: `Builder::spawn_object_url`.
    Object,
}

fn url_kind(url: &str) -> Option<UrlKind> {
    let (scheme, _) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme == "http" || scheme == "https" {
        Some(UrlKind::Http)
    } else if OBJECT_SCHEMES.contains(&scheme.as_str()) {
        Some(UrlKind::Object)
    } else {
        None
    }
}

/// An object-store URL as a source (`s3://bucket/key`, `gs://`, `az://`, `file://`,
/// `memory://`): one `head` here, then ranges fetched in Rust, without the GIL.
fn spawn_object_url(
    py: Python<'_>,
    builder: Builder,
    url: &str,
    options: &[(String, String)],
) -> PyResult<StreamCache> {
    let options: Vec<(&str, &str)> = options
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    py.detach(|| builder.spawn_object_url(url, &options))
        .map_err(|e| spawn_error(py, e))
}

/// `options`: a mapping of `str` keys to `str` values (object_store's configuration keys).
/// Never a value in a message: it may be a secret key.
fn object_options(options: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Vec<(String, String)>>> {
    let Some(options) = options.filter(|o| !o.is_none()) else {
        return Ok(None);
    };
    if options.is_instance_of::<PyString>() || !options.hasattr("items")? {
        return Err(PyTypeError::new_err(format!(
            "options must be a mapping of str to str, not '{}'",
            options
                .get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        )));
    }
    let mut out = Vec::new();
    for item in options.call_method0("items")?.try_iter()? {
        let (key, value): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item?.extract()?;
        let Ok(key) = key.extract::<String>() else {
            return Err(PyTypeError::new_err(
                "options must be a mapping of str to str",
            ));
        };
        let Ok(value) = value.extract::<String>() else {
            return Err(PyTypeError::new_err(format!(
                "options must be a mapping of str to str: the value of {key:?} is not a str"
            )));
        };
        out.push((key, value));
    }
    Ok(Some(out))
}

/// The settings that apply to a URL source only: `headers` (a mapping of header names to
/// values, both `str`), random access on demand (`fetch_ahead`, `fetch_span`, `max_fetches`,
/// `defer_fill`) and `connections`, which a server that answers `Range` makes use of.
#[derive(Default)]
struct UrlSettings {
    headers: Vec<(String, String)>,
    fetch_ahead: Option<u64>,
    fetch_span: Option<u64>,
    max_fetches: Option<usize>,
    connections: Option<usize>,
    defer_fill: Option<bool>,
}

impl UrlSettings {
    fn new(
        headers: Option<&Bound<'_, PyAny>>,
        fetch_ahead: Option<&Bound<'_, PyAny>>,
        fetch_span: Option<&Bound<'_, PyAny>>,
        max_fetches: Option<&Bound<'_, PyAny>>,
        connections: Option<&Bound<'_, PyAny>>,
        defer_fill: Option<bool>,
    ) -> PyResult<UrlSettings> {
        let mut settings = UrlSettings {
            fetch_ahead: option(fetch_ahead, "fetch_ahead")?,
            fetch_span: option(fetch_span, "fetch_span")?,
            defer_fill,
            ..UrlSettings::default()
        };
        if settings.fetch_span == Some(0) {
            return Err(PyValueError::new_err("fetch_span must be > 0"));
        }
        if let Some(n) = option(max_fetches, "max_fetches")? {
            settings.max_fetches = Some(
                usize::try_from(n).map_err(|_| PyValueError::new_err("max_fetches too large"))?,
            );
        }
        match option(connections, "connections")? {
            Some(0) => return Err(PyValueError::new_err("connections must be > 0")),
            Some(n) => {
                settings.connections = Some(
                    usize::try_from(n)
                        .map_err(|_| PyValueError::new_err("connections too large"))?,
                );
            }
            None => {}
        }
        if let Some(headers) = headers.filter(|h| !h.is_none()) {
            // Any mapping (`dict`, `requests`' `CaseInsensitiveDict`, ...): its `items()`.
            let not_a_mapping = || {
                PyTypeError::new_err(format!(
                    "headers must be a mapping of str to str, not '{}'",
                    headers
                        .get_type()
                        .name()
                        .map(|n| n.to_string())
                        .unwrap_or_default()
                ))
            };
            if headers.is_instance_of::<PyString>() || !headers.hasattr("items")? {
                return Err(not_a_mapping());
            }
            for item in headers.call_method0("items")?.try_iter()? {
                let (name, value): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item?.extract()?;
                let (Ok(name), Ok(value)) = (name.extract::<String>(), value.extract::<String>())
                else {
                    // Never the value itself in the message: it may be a token.
                    return Err(PyTypeError::new_err(
                        "headers must be a mapping of str to str",
                    ));
                };
                settings.headers.push((name, value));
            }
        }
        Ok(settings)
    }

    /// Whether any of them was given (an error for a source that is not a URL).
    fn any(&self) -> bool {
        !self.headers.is_empty()
            || self.fetch_ahead.is_some()
            || self.fetch_span.is_some()
            || self.max_fetches.is_some()
            || self.connections.is_some()
            || self.defer_fill.is_some()
    }

    fn apply(self, mut builder: Builder) -> Builder {
        for (name, value) in &self.headers {
            builder = builder.http_header(name, value);
        }
        if let Some(gap) = self.fetch_ahead {
            builder = builder.fetch_ahead(gap);
        }
        if let Some(span) = self.fetch_span {
            builder = builder.fetch_span(span);
        }
        if let Some(n) = self.max_fetches {
            builder = builder.max_fetches(n);
        }
        if let Some(n) = self.connections {
            builder = builder.connections(n);
        }
        if let Some(defer) = self.defer_fill {
            builder = builder.defer_fill(defer);
        }
        builder
    }
}

/// An error from `Builder::spawn*` (a bad option, a `temp_dir` that does not work).
fn spawn_error(py: Python<'_>, e: std::io::Error) -> PyErr {
    errors::to_py_at(py, 0, e)
}

/// One byte stream, read once by a background thread; any number of threads read any part of
/// it as soon as it has arrived.
///
/// `StreamCache(source, *, memory_limit=8 << 20, expected_len=None, max_len=None,
/// temp_dir=None, chunk_size=None, headers=None, fetch_ahead=None, fetch_span=None,
/// max_fetches=None, connections=None, defer_fill=None, options=None)`; `source` is an http(s)
/// URL, an
/// object-store URL (`s3://`, `gs://`, `az://`, `file://`, `memory://`, ...), a binary file
/// object (`readinto` or `read`), a bytes-like object, or an iterable of bytes-like chunks.
/// `headers` applies to an http(s) URL only, `options` to an object-store URL only, and
/// `fetch_ahead`, `fetch_span`, `max_fetches`, `connections` and `defer_fill` to either.
/// `defer_fill=True` holds the in-order download back until a read needs the front: a zip's
/// entry list and one entry, or a parquet footer, then cost little more than what is read.
#[pyclass(
    frozen,
    subclass,
    module = "streamcache._streamcache",
    name = "StreamCache"
)]
struct PyStreamCache {
    inner: StreamCache,
}

#[pymethods]
impl PyStreamCache {
    #[new]
    #[pyo3(
        signature = (source, *, memory_limit=None, expected_len=None, max_len=None, temp_dir=None, chunk_size=None, headers=None, fetch_ahead=None, fetch_span=None, max_fetches=None, connections=None, defer_fill=None, options=None, cache_dir=None, cache_limit=None),
        text_signature = "(source, *, memory_limit=8388608, expected_len=None, max_len=None, temp_dir=None, chunk_size=None, headers=None, fetch_ahead=4194304, fetch_span=4194304, max_fetches=2, connections=1, defer_fill=False, options=None, cache_dir=None, cache_limit=None)"
    )]
    #[allow(clippy::too_many_arguments)] // Python's keyword arguments, one each.
    fn new(
        py: Python<'_>,
        source: &Bound<'_, PyAny>,
        memory_limit: Option<&Bound<'_, PyAny>>,
        expected_len: Option<&Bound<'_, PyAny>>,
        max_len: Option<&Bound<'_, PyAny>>,
        temp_dir: Option<PathBuf>,
        chunk_size: Option<&Bound<'_, PyAny>>,
        headers: Option<&Bound<'_, PyAny>>,
        fetch_ahead: Option<&Bound<'_, PyAny>>,
        fetch_span: Option<&Bound<'_, PyAny>>,
        max_fetches: Option<&Bound<'_, PyAny>>,
        connections: Option<&Bound<'_, PyAny>>,
        defer_fill: Option<bool>,
        options: Option<&Bound<'_, PyAny>>,
        cache_dir: Option<PathBuf>,
        cache_limit: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyStreamCache> {
        let url_settings = UrlSettings::new(
            headers,
            fetch_ahead,
            fetch_span,
            max_fetches,
            connections,
            defer_fill,
        )?;
        let options = object_options(options)?;
        let mut builder = StreamCache::builder().thread_name("streamcache-filler");
        if let Some(n) = option(memory_limit, "memory_limit")? {
            let n =
                usize::try_from(n).map_err(|_| PyValueError::new_err("memory_limit too large"))?;
            builder = builder.memory_limit(n);
        }
        if let Some(n) = option(expected_len, "expected_len")? {
            builder = builder.expected_len(n);
        }
        if let Some(n) = option(max_len, "max_len")? {
            builder = builder.max_len(n);
        }
        let chunk = match option(chunk_size, "chunk_size")? {
            Some(0) => return Err(PyValueError::new_err("chunk_size must be > 0")),
            Some(n) => {
                let n = usize::try_from(n)
                    .map_err(|_| PyValueError::new_err("chunk_size too large"))?;
                builder = builder.chunk_size(n);
                n
            }
            None => 64 << 10,
        };
        if let Some(dir) = temp_dir {
            builder = builder.temp_dir(dir);
        }

        let is_url = source.is_instance_of::<PyString>();
        let cache_limit = option(cache_limit, "cache_limit")?;
        if !is_url
            && (url_settings.any()
                || options.is_some()
                || cache_dir.is_some()
                || cache_limit.is_some())
        {
            return Err(PyValueError::new_err(
                "headers, fetch_ahead, fetch_span, max_fetches, connections, defer_fill, \
                 options, cache_dir and cache_limit apply to a URL source only",
            ));
        }
        if let Some(dir) = cache_dir {
            builder = builder.cache_dir(dir);
        }
        if let Some(limit) = cache_limit {
            builder = builder.cache_limit(limit);
        }
        let inner = if let Ok(text) = source.cast::<PyString>() {
            let url = text.to_cow()?;
            match url_kind(&url) {
                Some(UrlKind::Http) => {
                    if options.is_some() {
                        return Err(PyValueError::new_err(
                            "options apply to an object-store URL only (s3://, gs://, az://, \
                             file://, memory://, ...); an http(s) URL takes headers",
                        ));
                    }
                    spawn_url(py, url_settings.apply(builder), &url)?
                }
                Some(UrlKind::Object) => {
                    if !url_settings.headers.is_empty() {
                        return Err(PyValueError::new_err(
                            "headers apply to an http(s) URL only; an object-store URL takes \
                             options",
                        ));
                    }
                    let options = options.unwrap_or_default();
                    spawn_object_url(py, url_settings.apply(builder), &url, &options)?
                }
                None => {
                    return Err(PyTypeError::new_err(
                        "a str source must be an http(s) URL or an object-store URL (s3://, \
                         s3a://, gs://, az://, azure://, abfs://, abfss://, adl://, file://, \
                         memory://); open a file and pass the file object",
                    ));
                }
            }
        } else if let Ok(chunk) = source::Chunk::from_py(source) {
            // Bytes-like: the filler reads it with no GIL (a `bytes` object by reference).
            py.detach(|| builder.spawn(std::io::Cursor::new(chunk)))
                .map_err(|e| spawn_error(py, e))?
        } else {
            let is_file = source.hasattr("readinto")? || source.hasattr("read")?;
            if !is_file && source.try_iter().is_err() {
                return Err(PyTypeError::new_err(format!(
                    "a StreamCache source is an http(s) URL, a binary file object, a bytes-like \
                     object or an iterable of bytes-like chunks, not '{}'",
                    source.get_type().name()?
                )));
            }
            let (sink, chunks) = source::channel();
            let inner = py
                .detach(|| builder.spawn_chunks(chunks))
                .map_err(|e| spawn_error(py, e))?;
            py.import("streamcache._source")?.getattr("start")?.call1((
                source,
                Py::new(py, sink)?,
                chunk,
                is_file,
            ))?;
            inner
        };
        Ok(PyStreamCache { inner })
    }

    /// `size` bytes from `offset` (fewer only at the end of the stream); waits for them.
    /// Raises `SourceError` when the range needs a byte past a failure of the source.
    fn read<'py>(
        &self,
        py: Python<'py>,
        offset: &Bound<'py, PyAny>,
        size: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let offset = non_negative(offset, "offset")?;
        let size = non_negative(size, "size")?;
        let (start, stop) = clamp_range(py, &self.inner, offset, end_of(offset, size)?)?;
        copy_out(py, &self.inner, start, (stop - start) as usize)
    }

    /// Copies bytes from `offset` into `buffer` (any writable, C-contiguous buffer: its raw
    /// bytes are filled) and returns how many: waits for at least one, 0 only at the end.
    fn read_at(
        &self,
        py: Python<'_>,
        offset: &Bound<'_, PyAny>,
        buffer: &Bound<'_, PyAny>,
    ) -> PyResult<usize> {
        let offset = non_negative(offset, "offset")?;
        let mut buffer = buffer::WritableBuffer::get(buffer)?;
        let len = buffer.as_mut_slice().len() as u64;
        if len == 0 {
            return Ok(0);
        }
        prefetch(&self.inner, offset, len)?;
        wait_until(py, &self.inner, offset, end_of(offset, 1)?)?;
        let cache = &self.inner;
        py.detach(|| cache.read_at(offset, buffer.as_mut_slice()))
            .map_err(|e| errors::to_py(py, cache, e))
    }

    /// `cache[a:b]`: a read-only `memoryview` of the bytes themselves (no copy), waiting for
    /// them; clamped to the end of the stream like any slice. It keeps the storage alive after
    /// every other handle is gone. `cache[i]` is the byte at `i`, as an `int`.
    fn __getitem__<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let cache = &self.inner;
        if let Ok(slice) = key.cast::<PySlice>() {
            let step = slice.getattr("step")?;
            if !step.is_none() && step.extract::<i64>().ok() != Some(1) {
                return Err(PyValueError::new_err("a StreamCache slice has no step"));
            }
            let start = option(Some(&slice.getattr("start")?), "slice start")?.unwrap_or(0);
            let stop = option(Some(&slice.getattr("stop")?), "slice stop")?.unwrap_or(u64::MAX);
            let (start, stop) = clamp_range(py, cache, start, stop)?;
            let bytes = cache
                .bytes(start..stop)
                .map_err(|e| errors::to_py(py, cache, e))?;
            return buffer::stored_bytes_view(py, bytes);
        }
        if key.is_instance_of::<PyTuple>() {
            return Err(PyTypeError::new_err(
                "StreamCache indices are integers or slices",
            ));
        }
        let index = non_negative(key, "index")?;
        let run_end = wait_until(py, cache, index, end_of(index, 1)?)?;
        if run_end <= index {
            return Err(PyIndexError::new_err(
                "StreamCache index past the end of the stream",
            ));
        }
        let mut byte = [0u8];
        cache
            .read_exact_at(index, &mut byte)
            .map_err(|e| errors::to_py(py, cache, e))?;
        Ok(byte[0].into_pyobject(py)?.into_any())
    }

    /// Waits until `offset` bytes are available or the stream ended; returns how many are
    /// available, or `None` when `timeout` (seconds) passed first. Raises `SourceError` if the
    /// source failed before `offset`.
    #[pyo3(signature = (offset, timeout=None))]
    fn wait_for(
        &self,
        py: Python<'_>,
        offset: &Bound<'_, PyAny>,
        timeout: Option<f64>,
    ) -> PyResult<Option<u64>> {
        let offset = non_negative(offset, "offset")?;
        let timeout = match timeout {
            None => None,
            Some(t) if t.is_nan() || t < 0.0 => {
                return Err(PyValueError::new_err("timeout must be >= 0"))
            }
            Some(t) => Some(Duration::try_from_secs_f64(t).unwrap_or(Duration::MAX)),
        };
        wait(py, &self.inner, 0, offset, timeout)
    }

    /// Waits for the end of the stream and returns its length (`SourceError` if it failed).
    fn wait_complete(&self, py: Python<'_>) -> PyResult<u64> {
        wait_until(py, &self.inner, 0, u64::MAX)
    }

    /// Bytes readable now, from 0 (never waits).
    #[getter]
    fn available(&self) -> u64 {
        self.inner.available()
    }

    /// The stream's length once it ended, else `None`.
    #[getter]
    fn len(&self) -> Option<u64> {
        self.inner.len()
    }

    /// The stream's length as soon as it is known, without waiting: at once for a URL whose
    /// server answers `Range` (a ranged source), once it is complete for any other source;
    /// else `None`. `Reader.seek(0, SEEK_END)` waits for the end only when this is `None`.
    #[getter]
    fn known_len(&self) -> Option<u64> {
        self.inner.known_len()
    }

    /// The `expected_len` hint, if one was given.
    #[getter]
    fn expected_len(&self) -> Option<u64> {
        self.inner.expected_len()
    }

    /// Whether the source ended (all of the stream is readable).
    #[getter]
    fn is_complete(&self) -> bool {
        self.inner.is_complete()
    }

    /// The ranges readable now, as a sorted list of `(start, end)` tuples (never waits).
    fn present<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let ranges: Vec<(u64, u64)> = self
            .inner
            .present()
            .into_iter()
            .map(|range| (range.start, range.end))
            .collect();
        PyList::new(py, ranges)
    }

    fn __repr__(&self) -> String {
        match self.inner.status() {
            Status::Filling { available } => format!("<StreamCache filling, {available} bytes>"),
            Status::Complete { len } => format!("<StreamCache complete, {len} bytes>"),
            Status::Failed { available, error } => {
                format!("<StreamCache failed ({error}) after {available} bytes>")
            }
        }
    }
}

/// The extension module.
#[pymodule]
fn _streamcache(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyStreamCache>()?;
    m.add_class::<source::Sink>()?;
    m.add("SourceError", m.py().get_type::<errors::SourceError>())?;
    Ok(())
}
