"""The standard library's file consumers take `cache.reader()` unchanged, while the stream is
still arriving (a gated source: half of it, then the rest once the consumer has started)."""

import hashlib
import io
import random
import shutil
import tarfile
import threading
import zipfile

import pytest

import streamcache
from conftest import gated, pattern

DATA = pattern(3_000_000)


def open_later(gate, delay=0.2):
    timer = threading.Timer(delay, gate.set)
    timer.start()
    return timer


def make_zip():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for i in range(5):
            z.writestr(f"file{i}.bin", pattern(200_000, seed=i))
    return out.getvalue()


def test_zipfile_while_arriving():
    raw = make_zip()
    gate = threading.Event()
    cache = streamcache.StreamCache(gated(raw, len(raw) // 2, gate, chunk=8192))
    cache.wait_for(len(raw) // 2)
    assert not cache.is_complete
    timer = open_later(gate)
    with zipfile.ZipFile(cache.reader()) as z:  # seeks to the end: waits for it
        assert z.namelist() == [f"file{i}.bin" for i in range(5)]
        for i in range(5):
            assert z.read(f"file{i}.bin") == pattern(200_000, seed=i)
        assert z.testzip() is None
    timer.join()


def member_data(i):
    """Incompressible: the gzip'd archive is as long as its members, so its first half holds
    the first member (a 300 KB pattern would compress to a few KB)."""
    return random.Random(i).randbytes(300_000)


def make_tar():
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as t:
        for i in range(4):
            data = member_data(i)
            info = tarfile.TarInfo(f"member{i}")
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return out.getvalue()


def test_tarfile_stream_mode_reads_members_before_the_end():
    raw = make_tar()
    gate = threading.Event()
    cache = streamcache.StreamCache(gated(raw, len(raw) // 2, gate, chunk=8192))
    seen = []
    with tarfile.open(fileobj=cache.reader(), mode="r|*") as t:
        for member in t:
            data = t.extractfile(member).read()
            assert data == member_data(len(seen))
            if not seen:
                # The first member came out of the first half: the stream has not ended.
                assert not cache.is_complete
                gate.set()
            seen.append(member.name)
    assert seen == [f"member{i}" for i in range(4)]


@pytest.mark.skipif(not hasattr(hashlib, "file_digest"), reason="hashlib.file_digest: 3.11+")
def test_hashlib_file_digest_while_arriving():
    gate = threading.Event()
    cache = streamcache.StreamCache(gated(DATA, 1_000_000, gate))
    cache.wait_for(1_000_000)
    timer = open_later(gate)
    digest = hashlib.file_digest(cache.reader(), "sha256").hexdigest()
    assert digest == hashlib.sha256(DATA).hexdigest()
    timer.join()


def test_shutil_copyfileobj_while_arriving():
    gate = threading.Event()
    cache = streamcache.StreamCache(gated(DATA, 1_000_000, gate))
    out = io.BytesIO()
    timer = open_later(gate)
    assert not cache.is_complete
    shutil.copyfileobj(cache.reader(), out, 100_000)
    assert out.getvalue() == DATA
    timer.join()


def test_buffered_reader_before_the_end():
    gate = threading.Event()
    cache = streamcache.StreamCache(gated(DATA, 1_000_000, gate))
    reader = io.BufferedReader(cache.reader(), buffer_size=64 << 10)
    assert reader.read(500_000) == DATA[:500_000]
    assert reader.peek(1)[:1] == DATA[500_000:500_001]
    assert not cache.is_complete
    gate.set()
    reader.seek(2_000_000)
    assert reader.read(10) == DATA[2_000_000:2_000_010]
    reader.seek(0)
    assert reader.read() == DATA


def test_text_io_wrapper_reads_lines_before_the_end():
    lines = [f"line {i}: {'x' * (i % 50)}\n" for i in range(50_000)]
    text = "".join(lines).encode()
    gate = threading.Event()
    cache = streamcache.StreamCache(gated(text, len(text) // 3, gate))
    wrapper = io.TextIOWrapper(io.BufferedReader(cache.reader()), encoding="utf-8")
    assert wrapper.readline() == lines[0]
    assert wrapper.readline() == lines[1]
    assert not cache.is_complete
    gate.set()
    assert wrapper.readlines() == lines[2:]
    # Directly over the raw reader too.
    assert io.TextIOWrapper(cache.reader(), encoding="utf-8").read() == text.decode()
