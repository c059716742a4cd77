"""Every kind of source: bytes-like, file objects, iterables of chunks, HTTP chunks, URLs."""

import array
import io
import threading

import pytest
import requests

import streamcache
from conftest import chunked, gated, pattern

DATA = pattern(300_000)


@pytest.mark.parametrize(
    "make",
    [bytes, bytearray, memoryview, lambda d: array.array("B", d)],
    ids=["bytes", "bytearray", "memoryview", "array"],
)
def test_bytes_like(make):
    cache = streamcache.StreamCache(make(DATA), memory_limit=64 << 10)
    assert cache.wait_complete() == len(DATA)
    assert cache.read(0, len(DATA)) == DATA
    assert cache.len == len(DATA) and cache.is_complete


class ReadintoOnly(io.RawIOBase):
    """A file object that counts its calls; `read` must not be used when `readinto` exists."""

    def __init__(self, data):
        self.inner = io.BytesIO(data)
        self.readinto_calls = 0

    def readable(self):
        return True

    def readinto(self, b):
        self.readinto_calls += 1
        return self.inner.readinto(b)

    def read(self, size=-1):
        raise AssertionError("read() called although readinto() exists")


def test_file_object_readinto_preferred():
    source = ReadintoOnly(DATA)
    cache = streamcache.StreamCache(source, chunk_size=10_000)
    assert cache.wait_complete() == len(DATA)
    assert cache.read(0, len(DATA)) == DATA
    assert source.readinto_calls >= len(DATA) // 10_000


class ReadOnly:
    def __init__(self, data):
        self.inner = io.BytesIO(data)

    def read(self, size=-1):
        return self.inner.read(size)


def test_file_object_with_read_only():
    cache = streamcache.StreamCache(ReadOnly(DATA))
    assert cache.wait_complete() == len(DATA)
    assert bytes(cache[:]) == DATA


def test_real_file(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(DATA)
    with open(path, "rb") as f:
        cache = streamcache.StreamCache(f, memory_limit=0)
        assert cache.reader().read() == DATA


def test_generator_of_chunks_mixed_types():
    parts = chunked(DATA, 7_000)

    def gen():
        for i, part in enumerate(parts):
            yield [bytes, bytearray, memoryview][i % 3](part)
            if i == 3:
                yield b""  # an empty chunk is not the end

    cache = streamcache.StreamCache(gen())
    assert cache.wait_complete() == len(DATA)
    assert cache.read(0, len(DATA)) == DATA


def test_generator_read_while_arriving():
    gate = threading.Event()
    cache = streamcache.StreamCache(gated(DATA, 100_000, gate))
    assert cache.read(0, 100_000) == DATA[:100_000]
    assert not cache.is_complete
    assert cache.wait_for(200_000, timeout=0.05) is None
    gate.set()
    assert cache.read(100_000, 200_000) == DATA[100_000:]


def test_list_of_chunks():
    cache = streamcache.StreamCache(chunked(DATA, 4096))
    assert cache.reader().read() == DATA


def test_requests_iter_content(http_server):
    http_server.files["src.bin"] = DATA
    with requests.get(http_server.url("src.bin?slow"), stream=True) as response:
        length = int(response.headers["Content-Length"])
        cache = streamcache.StreamCache(response.iter_content(16 << 10), expected_len=length)
        assert cache.expected_len == length
        assert cache.read(250_000, 1000) == DATA[250_000:251_000]
        assert cache.wait_complete() == len(DATA)
        assert bytes(cache[:]) == DATA


def test_str_that_is_not_a_url_is_a_type_error():
    with pytest.raises(TypeError):
        streamcache.StreamCache("/etc/hostname")


@pytest.mark.parametrize("source", [42, 3.5, None, object()])
def test_wrong_source_type(source):
    with pytest.raises(TypeError):
        streamcache.StreamCache(source)


def test_url_source(http_server):
    # Fetched in Rust: a plain download from a server that ignores Range.
    http_server.files["url.bin"] = DATA
    cache = streamcache.StreamCache(http_server.url("url.bin"))
    assert cache.read(len(DATA) - 10, 10) == DATA[-10:]
    assert cache.wait_complete() == len(DATA)
    assert bytes(cache[:]) == DATA


def test_url_source_fetches_the_end_at_once(http_server):
    # A server that honours Range, sending slowly: the tail is fetched with its own request,
    # long before the in-order download gets there.
    data = pattern(16 << 20, seed=7)
    http_server.files["ranged-slow.bin"] = data
    del http_server.ranges[:]
    cache = streamcache.StreamCache(http_server.url("ranged-slow.bin"))
    assert cache.expected_len == len(data)
    assert cache.read(len(data) - 10, 10) == data[-10:]
    assert any(start > 0 for start, _ in http_server.ranges), http_server.ranges
    assert len(cache.present()) >= 1
    assert cache.wait_complete() == len(data)
    assert cache.present() == [(0, len(data))]
    assert bytes(cache[:]) == data


def test_url_not_found_is_an_os_error(http_server):
    with pytest.raises(FileNotFoundError):
        streamcache.StreamCache(http_server.url("missing.bin?token=secret"))
