"""The methods and properties of StreamCache and Reader, and their argument checks."""

import array
import ctypes
import io
import threading

import pytest

import streamcache
from conftest import gated, pattern

DATA = pattern(200_000)


@pytest.fixture
def cache():
    c = streamcache.StreamCache(DATA, memory_limit=50_000)
    c.wait_complete()
    return c


def test_read(cache):
    assert cache.read(10, 20) == DATA[10:30]
    assert cache.read(len(DATA) - 5, 100) == DATA[-5:]  # fewer only at the end
    assert cache.read(len(DATA) + 10, 5) == b""
    assert cache.read(0, 0) == b""


def test_slices_are_zero_copy_memoryviews(cache):
    view = cache[100:200]
    assert isinstance(view, memoryview)
    assert view.readonly and view.format == "B" and view.nbytes == 100
    assert bytes(view) == DATA[100:200]
    with pytest.raises(TypeError):
        view[0] = 1
    assert bytes(cache[:]) == DATA
    assert bytes(cache[150_000:]) == DATA[150_000:]
    assert bytes(cache[:10]) == DATA[:10]
    assert bytes(cache[199_990:300_000]) == DATA[199_990:]  # clamped, like a slice
    assert bytes(cache[500:400]) == b""
    assert cache[5] == DATA[5]
    with pytest.raises(IndexError):
        cache[len(DATA)]
    with pytest.raises(ValueError):
        cache[::2]


class _PyBuffer(ctypes.Structure):
    _fields_ = [
        ("buf", ctypes.c_void_p),
        ("obj", ctypes.c_void_p),
        ("len", ctypes.c_ssize_t),
        ("itemsize", ctypes.c_ssize_t),
        ("readonly", ctypes.c_int),
        ("ndim", ctypes.c_int),
        ("format", ctypes.c_char_p),
        ("shape", ctypes.c_void_p),
        ("strides", ctypes.c_void_p),
        ("suboffsets", ctypes.c_void_p),
        ("internal", ctypes.c_void_p),
    ]


def address(obj):
    """The address of `obj`'s buffer (read-only buffers too, unlike ctypes.from_buffer)."""
    view = _PyBuffer()
    get = ctypes.pythonapi.PyObject_GetBuffer
    get.argtypes = [ctypes.py_object, ctypes.POINTER(_PyBuffer), ctypes.c_int]
    assert get(obj, ctypes.byref(view), 0) == 0
    try:
        return view.buf
    finally:
        ctypes.pythonapi.PyBuffer_Release.argtypes = [ctypes.POINTER(_PyBuffer)]
        ctypes.pythonapi.PyBuffer_Release(ctypes.byref(view))


@pytest.mark.parametrize("memory_limit", [8 << 20, 0], ids=["memory", "spilled"])
def test_slices_are_the_stored_bytes_themselves(memory_limit):
    c = streamcache.StreamCache(DATA, memory_limit=memory_limit)
    c.wait_complete()
    a, b, c2 = c[0:100], c[0:100], c[70_000:70_100]
    assert address(a) == address(b)  # the same memory, not two copies
    assert address(c2) - address(a) == 70_000
    assert address(a[10:]) == address(a) + 10


def test_read_at_any_writable_buffer(cache):
    buf = bytearray(1000)
    assert cache.read_at(5000, buf) == 1000
    assert buf == DATA[5000:6000]

    big = bytearray(5000)
    view = memoryview(big)[1000:3000]
    assert cache.read_at(0, view) == 2000
    assert big[1000:3000] == DATA[:2000] and big[:1000] == bytes(1000)

    ints = array.array("i", [0] * 100)
    assert cache.read_at(0, ints) == 100 * ints.itemsize
    assert ints.tobytes() == DATA[: 100 * ints.itemsize]

    assert cache.read_at(len(DATA) - 10, bytearray(100)) == 10
    assert cache.read_at(len(DATA), bytearray(100)) == 0
    assert cache.read_at(0, bytearray()) == 0

    with pytest.raises(TypeError):
        cache.read_at(0, b"read-only")
    with pytest.raises(TypeError):
        cache.read_at(0, memoryview(bytearray(10))[::2])  # not contiguous
    with pytest.raises(TypeError):
        cache.read_at(0, "text")


def test_properties_and_present():
    gate = threading.Event()
    c = streamcache.StreamCache(gated(DATA, 50_000, gate), expected_len=len(DATA))
    assert c.wait_for(50_000) == 50_000
    assert c.available == 50_000
    assert c.len is None and not c.is_complete
    assert c.expected_len == len(DATA)
    assert c.present() == [(0, 50_000)]
    assert c.wait_for(60_000, timeout=0.05) is None
    assert c.wait_for(10, timeout=0) == 50_000
    gate.set()
    assert c.wait_complete() == len(DATA)
    assert c.len == len(DATA) and c.is_complete
    assert c.present() == [(0, len(DATA))]
    assert c.wait_for(10 * len(DATA)) == len(DATA)
    assert streamcache.StreamCache(b"").present() == []


def test_reader_is_a_raw_io(cache):
    r = cache.reader()
    assert isinstance(r, io.RawIOBase)
    assert r.readable() and r.seekable() and not r.writable()
    assert r.read(10) == DATA[:10]
    assert r.tell() == 10
    b = bytearray(20)
    assert r.readinto(b) == 20 and b == DATA[10:30]
    assert r.seek(-10, io.SEEK_END) == len(DATA) - 10
    assert r.read() == DATA[-10:]
    assert r.read(5) == b""
    assert r.seek(100) == 100
    assert r.seek(50, io.SEEK_CUR) == 150
    assert r.readall() == DATA[150:]
    assert r.seek(len(DATA) + 100) == len(DATA) + 100  # past the end: allowed, reads empty
    assert r.read(10) == b""
    with pytest.raises(ValueError):
        r.seek(-1)
    with pytest.raises(ValueError):
        r.seek(0, 7)
    assert cache.reader(1000).read(3) == DATA[1000:1003]
    r.close()
    assert r.closed
    with pytest.raises(ValueError):
        r.read(1)
    with pytest.raises(ValueError):
        cache.reader(-1)


def test_reader_readinto_returns_what_arrived_and_read_all_it_asked_for():
    gate = threading.Event()
    c = streamcache.StreamCache(gated(DATA, 30_000, gate))
    r = c.reader()
    c.wait_for(30_000)
    buf = bytearray(100_000)
    assert r.readinto(buf) == 30_000  # raw I/O: what is there, without waiting
    assert buf[:30_000] == DATA[:30_000]
    r.seek(0)
    # `read(n)` is n bytes, as from a file on disk: it waits for the rest.
    read = threading.Thread(target=lambda: got.append(r.read(100_000)), daemon=True)
    got = []
    read.start()
    read.join(0.2)
    assert read.is_alive(), "read(100_000) returned with 30,000 bytes there"
    gate.set()
    read.join(20)
    assert got == [DATA[:100_000]]
    assert r.read() == DATA[100_000:]


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.read(-1, 10),
        lambda c: c.read(0, -10),
        lambda c: c.read(2**64 - 1, 10),
        lambda c: c.read(2**70, 1),
        lambda c: c.read_at(-5, bytearray(4)),
        lambda c: c.wait_for(-1),
        lambda c: c.wait_for(0, timeout=-1),
        lambda c: c[-5:],
        lambda c: c[:-5],
        lambda c: c[-1],
        lambda c: streamcache.StreamCache(b"x", memory_limit=-1),
        lambda c: streamcache.StreamCache(b"x", expected_len=-1),
        lambda c: streamcache.StreamCache(b"x", max_len=-1),
        lambda c: streamcache.StreamCache(b"x", chunk_size=-1),
        lambda c: streamcache.StreamCache(b"x", chunk_size=0),
        lambda c: c.reader().seek(-1),
    ],
)
def test_bad_values_are_value_errors(cache, call):
    with pytest.raises(ValueError):
        call(cache)


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.read("0", 10),
        lambda c: c.read(0, 1.5),
        lambda c: c.read_at(0, 5),
        lambda c: c["a"],
        lambda c: c[(1, 2)],
        lambda c: streamcache.StreamCache(b"x", memory_limit="big"),
        lambda c: streamcache.StreamCache(b"x", temp_dir=5),
        lambda c: streamcache.StreamCache(),
    ],
)
def test_bad_types_are_type_errors(cache, call):
    with pytest.raises(TypeError):
        call(cache)


def test_max_len_is_enospc():
    import errno

    c = streamcache.StreamCache(DATA, max_len=1000)
    with pytest.raises(OSError) as info:
        c.wait_complete()
    assert info.value.errno == errno.ENOSPC
    assert c.read(0, 1000) == DATA[:1000]


def test_temp_dir_that_does_not_exist(tmp_path):
    c = None
    with pytest.raises(OSError):
        c = streamcache.StreamCache(DATA, memory_limit=0, temp_dir=tmp_path / "nope")
        c.wait_complete()


def test_repr(cache):
    assert "complete" in repr(cache) and str(len(DATA)) in repr(cache)
    assert "Reader" in repr(cache.reader())
