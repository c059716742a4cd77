//! The buffer protocol, both ways, under the stable ABI of Python 3.9.
//!
//! PyO3 offers the buffer protocol (its `PyBuffer` and `__getbuffer__`) only when the limited
//! API is 3.11 or newer, because `Py_buffer` entered the stable ABI in 3.11. Its layout and the
//! two functions used here have not changed since Python 3.3, and `PyType_FromSpec` has accepted
//! the `bf_getbuffer` slot since 3.9, so this module declares them itself:
//!
//! * [`stored_bytes_view`] exports a [`Bytes`] of the cache as a read-only `memoryview`, with
//!   no copy: the memoryview holds a small `StoredBytes` object that owns the `Bytes`, so the
//!   storage lives as long as any view of it (invariant 1 of DESIGN.md: a `Bytes` keeps the
//!   storage alive by itself, and bytes below the mark never change).
//! * [`WritableBuffer`] borrows any writable, C-contiguous buffer (`bytearray`, a `memoryview`
//!   slice, `array('i')`, …) for `read_at` and `readinto`.
//!
//! On Linux and macOS the symbols are the interpreter's own (an extension module does not link
//! libpython). On Windows, Python 3.9 and 3.10's `python3.dll` does not export
//! `PyObject_GetBuffer`: there the package needs Python 3.11 or newer.

use bytes::Bytes;
use pyo3::exceptions::PyTypeError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;
use std::ffi::{c_int, c_void};
use std::mem::ManuallyDrop;
use std::ptr;

/// CPython's `Py_buffer` (Include/pybuffer.h), unchanged since Python 3.3.
#[repr(C)]
struct RawBuffer {
    buf: *mut c_void,
    obj: *mut ffi::PyObject,
    len: ffi::Py_ssize_t,
    itemsize: ffi::Py_ssize_t,
    readonly: c_int,
    ndim: c_int,
    format: *mut std::ffi::c_char,
    shape: *mut ffi::Py_ssize_t,
    strides: *mut ffi::Py_ssize_t,
    suboffsets: *mut ffi::Py_ssize_t,
    internal: *mut c_void,
}

const PYBUF_WRITABLE: c_int = 0x0001;
const PYBUF_FORMAT: c_int = 0x0004;
const PYBUF_ND: c_int = 0x0008;
const PYBUF_STRIDES: c_int = 0x0010 | PYBUF_ND;
const PYBUF_C_CONTIGUOUS: c_int = 0x0020 | PYBUF_STRIDES;

extern "C" {
    fn PyObject_GetBuffer(obj: *mut ffi::PyObject, view: *mut RawBuffer, flags: c_int) -> c_int;
    fn PyBuffer_Release(view: *mut RawBuffer);
}

/// The object a stored-bytes `memoryview` exports from: a Python object header and the bytes.
#[repr(C)]
struct StoredBytes {
    ob_base: ffi::PyObject,
    /// Written once right after allocation, dropped once in [`stored_bytes_dealloc`].
    bytes: ManuallyDrop<Bytes>,
}

/// The `StoredBytes` type, created on first use.
static STORED_BYTES_TYPE: PyOnceLock<Py<PyType>> = PyOnceLock::new();

fn stored_bytes_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    STORED_BYTES_TYPE
        .get_or_try_init(py, || {
            let mut slots = [
                ffi::PyType_Slot {
                    slot: ffi::Py_bf_getbuffer,
                    pfunc: stored_bytes_getbuffer as *mut c_void,
                },
                ffi::PyType_Slot {
                    slot: ffi::Py_tp_dealloc,
                    pfunc: stored_bytes_dealloc as *mut c_void,
                },
                ffi::PyType_Slot {
                    slot: ffi::Py_tp_new,
                    pfunc: stored_bytes_new as *mut c_void,
                },
                ffi::PyType_Slot {
                    slot: ffi::Py_tp_doc,
                    pfunc: c"Bytes of a stream cache, exported to memoryviews (internal).".as_ptr()
                        as *mut c_void,
                },
                ffi::PyType_Slot {
                    slot: 0,
                    pfunc: ptr::null_mut(),
                },
            ];
            let mut spec = ffi::PyType_Spec {
                // A 'static string: CPython keeps pointing at it as the type's `tp_name`.
                name: c"streamcache._streamcache.StoredBytes".as_ptr(),
                basicsize: std::mem::size_of::<StoredBytes>() as c_int,
                itemsize: 0,
                flags: ffi::Py_TPFLAGS_DEFAULT as _,
                slots: slots.as_mut_ptr(),
            };
            // SAFETY: `spec` and `slots` are valid for the call (CPython copies what it keeps,
            // and `name` is 'static); every slot function has the signature of its slot.
            let tp = unsafe { ffi::PyType_FromSpec(&mut spec) };
            // SAFETY: `tp` is a new reference or null with an exception set.
            let tp = unsafe { Bound::from_owned_ptr_or_err(py, tp)? };
            Ok(tp.cast_into::<PyType>()?.unbind())
        })
        .map(|tp| tp.bind(py))
}

/// `StoredBytes()` from Python: refused, an instance is only ever made by [`stored_bytes_view`].
///
/// # Safety
///
/// Only CPython calls it, as the type's `tp_new`, with the GIL held.
unsafe extern "C" fn stored_bytes_new(
    _tp: *mut ffi::PyTypeObject,
    _args: *mut ffi::PyObject,
    _kwargs: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: called by CPython with the GIL held; the exception type is a valid object.
    unsafe {
        ffi::PyErr_SetString(
            ffi::PyExc_TypeError,
            c"StoredBytes cannot be created from Python; slice a StreamCache".as_ptr(),
        );
    }
    ptr::null_mut()
}

/// `bf_getbuffer`: a read-only, one-dimensional buffer of unsigned bytes over the stored bytes,
/// what `PyBuffer_FillInfo` gives.
///
/// # Safety
///
/// Only CPython calls it, as the type's `bf_getbuffer`, with the GIL held, `exporter` an
/// instance of the type and `view` null or a `Py_buffer` to fill.
unsafe extern "C" fn stored_bytes_getbuffer(
    exporter: *mut ffi::PyObject,
    view: *mut RawBuffer,
    flags: c_int,
) -> c_int {
    // SAFETY: CPython calls this with the GIL held and `exporter` an instance of the type
    // (so a `StoredBytes` whose `bytes` was written by `stored_bytes_view`).
    unsafe {
        if view.is_null() {
            ffi::PyErr_SetString(ffi::PyExc_BufferError, c"NULL view in getbuffer".as_ptr());
            return -1;
        }
        if flags & PYBUF_WRITABLE == PYBUF_WRITABLE {
            ffi::PyErr_SetString(
                ffi::PyExc_BufferError,
                c"the bytes of a stream cache are read-only".as_ptr(),
            );
            return -1;
        }
        let bytes: &Bytes = &(*exporter.cast::<StoredBytes>()).bytes;
        let view = &mut *view;
        // Never written through: the buffer is read-only (`readonly = 1`).
        view.buf = bytes.as_ptr() as *mut c_void;
        ffi::Py_INCREF(exporter);
        view.obj = exporter;
        view.len = bytes.len() as ffi::Py_ssize_t;
        view.itemsize = 1;
        view.readonly = 1;
        view.ndim = 1;
        view.format = if flags & PYBUF_FORMAT == PYBUF_FORMAT {
            c"B".as_ptr() as *mut _
        } else {
            ptr::null_mut()
        };
        // As `PyBuffer_FillInfo`: shape and strides point into the view itself.
        view.shape = if flags & PYBUF_ND == PYBUF_ND {
            &mut view.len
        } else {
            ptr::null_mut()
        };
        view.strides = if flags & PYBUF_STRIDES == PYBUF_STRIDES {
            &mut view.itemsize
        } else {
            ptr::null_mut()
        };
        view.suboffsets = ptr::null_mut();
        view.internal = ptr::null_mut();
    }
    0
}

/// `tp_dealloc`: drops the `Bytes` (the storage goes with the last one), frees the object and
/// releases the reference every instance of a heap type holds on its type.
///
/// # Safety
///
/// Only CPython calls it, as the type's `tp_dealloc`, once, with the GIL held, when the last
/// reference to `obj` (an instance of the type) went.
unsafe extern "C" fn stored_bytes_dealloc(obj: *mut ffi::PyObject) {
    // SAFETY: called once by CPython when the last reference went, GIL held; `obj` is a
    // `StoredBytes` made by `stored_bytes_view` (the only way to make one), so `bytes` is
    // initialised and dropped here only. `tp_free` is the type's deallocator for the memory
    // `PyType_GenericAlloc` gave.
    unsafe {
        let tp = ffi::Py_TYPE(obj);
        ManuallyDrop::drop(&mut (*obj.cast::<StoredBytes>()).bytes);
        let free = ffi::PyType_GetSlot(tp, ffi::Py_tp_free);
        let free: ffi::freefunc = std::mem::transmute(free);
        free(obj.cast());
        ffi::Py_DECREF(tp.cast());
    }
}

/// A read-only `memoryview` of `bytes`, with no copy; it keeps the storage alive (so do its
/// slices and anything made from it, through the `StoredBytes` object they hold).
pub(crate) fn stored_bytes_view(py: Python<'_>, bytes: Bytes) -> PyResult<Bound<'_, PyAny>> {
    let tp = stored_bytes_type(py)?;
    // SAFETY: `tp` is our heap type; `PyType_GenericAlloc` returns a zeroed instance (with a
    // reference to the type) or null with an exception set.
    let obj = unsafe { ffi::PyType_GenericAlloc(tp.as_ptr().cast(), 0) };
    if obj.is_null() {
        return Err(PyErr::fetch(py));
    }
    // SAFETY: `obj` is a fresh `StoredBytes` nobody else has seen; its `bytes` field is
    // uninitialised (zeroed) memory, written once here without dropping the zeroes.
    unsafe {
        ptr::write(
            ptr::addr_of_mut!((*obj.cast::<StoredBytes>()).bytes),
            ManuallyDrop::new(bytes),
        );
    }
    // SAFETY: `obj` is an owned reference.
    let owner = unsafe { Bound::from_owned_ptr(py, obj) };
    // SAFETY: `owner` is a valid object; the result is a new reference or null with an
    // exception set.
    unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyMemoryView_FromObject(owner.as_ptr())) }
}

/// A writable, C-contiguous buffer borrowed from a Python object (released on drop).
///
/// While it is held, the exporter keeps the memory where it is (a `bytearray` refuses to
/// resize), so [`as_mut_slice`](Self::as_mut_slice) may be written with the GIL released.
pub(crate) struct WritableBuffer {
    view: RawBuffer,
}

// SAFETY: the view is a pointer and a length into memory its exporter keeps in place until
// `PyBuffer_Release`, which `Drop` calls with the GIL held; nothing in it is tied to a thread.
unsafe impl Send for WritableBuffer {}

impl WritableBuffer {
    /// Borrows `obj`'s buffer: `TypeError` unless it is a writable, C-contiguous buffer.
    pub(crate) fn get(obj: &Bound<'_, PyAny>) -> PyResult<WritableBuffer> {
        let mut view = RawBuffer {
            buf: ptr::null_mut(),
            obj: ptr::null_mut(),
            len: 0,
            itemsize: 0,
            readonly: 0,
            ndim: 0,
            format: ptr::null_mut(),
            shape: ptr::null_mut(),
            strides: ptr::null_mut(),
            suboffsets: ptr::null_mut(),
            internal: ptr::null_mut(),
        };
        // SAFETY: the GIL is held (`obj` is bound); `view` is a valid `Py_buffer` to fill.
        let rc = unsafe {
            PyObject_GetBuffer(obj.as_ptr(), &mut view, PYBUF_WRITABLE | PYBUF_C_CONTIGUOUS)
        };
        if rc != 0 {
            let cause = PyErr::fetch(obj.py());
            let err = PyTypeError::new_err(format!(
                "a writable, C-contiguous bytes-like object is required, not '{}'",
                obj.get_type().name()?
            ));
            err.set_cause(obj.py(), Some(cause));
            return Err(err);
        }
        Ok(WritableBuffer { view })
    }

    /// The buffer's raw bytes (all of them, whatever its item type).
    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        if self.view.len <= 0 {
            return &mut [];
        }
        // SAFETY: a successful `PyObject_GetBuffer` with `PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS`
        // gives `len` contiguous writable bytes at `buf`, kept in place until the release.
        unsafe { std::slice::from_raw_parts_mut(self.view.buf.cast(), self.view.len as usize) }
    }
}

impl Drop for WritableBuffer {
    fn drop(&mut self) {
        // The view holds a reference to its exporter: released with the GIL held.
        Python::attach(|_py| {
            // SAFETY: `view` was filled by a successful `PyObject_GetBuffer` and is released once.
            unsafe { PyBuffer_Release(&mut self.view) }
        });
    }
}
