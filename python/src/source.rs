//! Python sources: how their bytes reach the cache's filler thread.
//!
//! A Python source (a file object, an iterable of chunks) is called on a Python daemon thread
//! (`streamcache._source`), never on the filler: a call into Python can block for ever (a
//! socket, a `time.sleep`), and at interpreter exit a thread that wakes up in Python is ended by
//! CPython itself, which is harmless for a thread that Python started and fatal for one that
//! has Rust frames under it. That thread hands each chunk to a [`Sink`]; the filler takes them
//! from the other end of the channel ([`ChunkIter`], given to `Builder::spawn_chunks`) without
//! the GIL. A `bytes` chunk is not copied on the way: the filler copies it straight from the
//! `bytes` object into the cache.
//!
//! When every handle of the cache is gone, the filler drops the [`ChunkIter`]; the next
//! [`Sink::push`] returns `False` and the daemon thread stops calling the source.

use crate::errors::PythonSourceError;
use crossbeam_channel::{Receiver, Sender};
use pyo3::exceptions::PyTypeError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes};
use std::io;
use std::sync::Mutex;

/// Chunks in flight between the source's thread and the filler.
const CHANNEL_CHUNKS: usize = 16;

/// Bytes of a Python source, readable without the GIL.
pub(crate) enum Chunk {
    /// A `bytes` object, kept alive by the reference; `ptr`/`len` are its contents.
    Bytes {
        _obj: Py<PyBytes>,
        ptr: *const u8,
        len: usize,
    },
    /// A copy (of a `bytearray`, a `memoryview`, any other bytes-like chunk).
    Owned(Vec<u8>),
}

// SAFETY: `Py<PyBytes>` is `Send`; `ptr` points into that `bytes` object, which is immutable
// and never moves while referenced, so reading it from any thread without the GIL is sound.
// (Dropping the `Py` off the GIL defers the decref to PyO3's pool.)
unsafe impl Send for Chunk {}

impl Chunk {
    /// The bytes of a Python bytes-like object: `bytes` by reference, others copied; any other
    /// type is a `TypeError` (a `str`, an `int`: chunks are bytes).
    pub(crate) fn from_py(obj: &Bound<'_, PyAny>) -> PyResult<Chunk> {
        if let Ok(bytes) = obj.cast::<PyBytes>() {
            return Ok(Chunk::of_bytes(bytes));
        }
        if let Ok(array) = obj.cast::<PyByteArray>() {
            return Ok(Chunk::Owned(array.to_vec()));
        }
        // Any other object with the buffer protocol: `bytes(memoryview(obj))`, one copy.
        // SAFETY: GIL held, `obj` valid; a new reference or null with an exception set.
        let view = unsafe {
            Bound::from_owned_ptr_or_err(obj.py(), ffi::PyMemoryView_FromObject(obj.as_ptr()))
        };
        let view = view.map_err(|_| {
            PyTypeError::new_err(format!(
                "a chunk must be a bytes-like object, not '{}'",
                obj.get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            ))
        })?;
        // SAFETY: as above.
        let bytes =
            unsafe { Bound::from_owned_ptr_or_err(obj.py(), ffi::PyObject_Bytes(view.as_ptr()))? };
        Ok(Chunk::of_bytes(bytes.cast::<PyBytes>()?))
    }

    fn of_bytes(bytes: &Bound<'_, PyBytes>) -> Chunk {
        let slice = bytes.as_bytes();
        Chunk::Bytes {
            ptr: slice.as_ptr(),
            len: slice.len(),
            _obj: bytes.clone().unbind(),
        }
    }
}

impl AsRef<[u8]> for Chunk {
    fn as_ref(&self) -> &[u8] {
        match self {
            // SAFETY: see `unsafe impl Send for Chunk`: `len` bytes at `ptr`, alive and
            // unchanged as long as `_obj` is held, that is as long as `self`.
            Chunk::Bytes { ptr, len, .. } => unsafe { std::slice::from_raw_parts(*ptr, *len) },
            Chunk::Owned(v) => v,
        }
    }
}

/// What the source's thread sends to the filler.
enum Message {
    Chunk(Chunk),
    End,
    Failed(io::Error),
}

/// The source thread's end of the channel (`streamcache._streamcache._Sink`).
#[pyclass(frozen, module = "streamcache._streamcache", name = "_Sink")]
pub(crate) struct Sink {
    tx: Mutex<Option<Sender<Message>>>,
}

impl Sink {
    fn sender(&self) -> Option<Sender<Message>> {
        self.tx.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn close(&self, last: Message) {
        if let Some(tx) = self.tx.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = tx.send(last);
        }
    }
}

#[pymethods]
impl Sink {
    /// Hands one chunk to the filler; `False` once the cache is gone (stop reading the source).
    /// Waits (without the GIL) while the filler is `CHANNEL_CHUNKS` chunks behind.
    fn push(&self, py: Python<'_>, chunk: &Bound<'_, PyAny>) -> PyResult<bool> {
        let chunk = Chunk::from_py(chunk)?;
        if chunk.as_ref().is_empty() {
            return Ok(true); // an empty chunk is not the end
        }
        let Some(tx) = self.sender() else {
            return Ok(false);
        };
        // Always without the GIL, even when there is room: this thread runs Python code
        // nearly all the time, and a reader woken by the filler would otherwise wait for the
        // interpreter's switch interval (5 ms) to get the GIL back.
        Ok(py.detach(|| tx.send(Message::Chunk(chunk))).is_ok())
    }

    /// The source ended: the stream is complete.
    fn finish(&self) {
        self.close(Message::End);
    }

    /// The source raised `exc`: the stream fails here, with `exc` as the cause readers see.
    fn fail(&self, exc: &Bound<'_, PyAny>) {
        self.close(Message::Failed(PythonSourceError::into_io_error(exc)));
    }
}

/// The filler's end: an iterator of chunks for `Builder::spawn_chunks`.
pub(crate) struct ChunkIter {
    rx: Receiver<Message>,
    done: bool,
}

impl Iterator for ChunkIter {
    type Item = io::Result<Chunk>;

    fn next(&mut self) -> Option<io::Result<Chunk>> {
        if self.done {
            return None;
        }
        match self.rx.recv() {
            Ok(Message::Chunk(chunk)) => Some(Ok(chunk)),
            Ok(Message::End) => {
                self.done = true;
                None
            }
            Ok(Message::Failed(e)) => {
                self.done = true;
                Some(Err(e))
            }
            Err(_) => {
                self.done = true;
                Some(Err(io::Error::other(
                    "the thread reading the Python source stopped before the end of the stream",
                )))
            }
        }
    }
}

/// A connected sink and chunk iterator.
pub(crate) fn channel() -> (Sink, ChunkIter) {
    let (tx, rx) = crossbeam_channel::bounded(CHANNEL_CHUNKS);
    (
        Sink {
            tx: Mutex::new(Some(tx)),
        },
        ChunkIter { rx, done: false },
    )
}
