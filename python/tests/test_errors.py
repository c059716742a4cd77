"""Source errors reach every reader; a full disk is ENOSPC."""

import errno
import threading

import pytest

import streamcache
from conftest import pattern

DATA = pattern(500_000)


class SourceBroke(Exception):
    pass


def failing(at):
    def gen():
        for i in range(0, at, 10_000):
            yield DATA[i : min(i + 10_000, at)]
        raise SourceBroke("connection lost")

    return gen()


def test_source_error_reaches_every_reader():
    cache = streamcache.StreamCache(failing(300_000))
    errors = []

    def reader(call):
        try:
            call()
        except streamcache.SourceError as e:
            errors.append(e)

    calls = [
        cache.wait_complete,
        lambda: cache.read(250_000, 100_000),
        lambda: cache.reader().read(),
        lambda: cache[0:400_000],
        lambda: cache.wait_for(300_001),
        lambda: cache.read_at(300_000, bytearray(10)),
        lambda: cache.reader(350_000).read(1),
        lambda: streamcache.StreamBuffer(cache),
    ]
    threads = [threading.Thread(target=reader, args=(c,)) for c in calls[:-1]]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(errors) == len(calls) - 1
    for e in errors:
        assert isinstance(e, OSError)
        assert e.offset == 300_000
        assert isinstance(e.__cause__, SourceBroke)
        assert "connection lost" in str(e)
    # Everything before the failure stays readable.
    assert cache.read(0, 300_000) == DATA[:300_000]
    assert bytes(cache[100:300_000]) == DATA[100:300_000]
    assert cache.wait_for(300_000) == 300_000
    assert cache.available == 300_000 and cache.len is None and not cache.is_complete
    r = cache.reader()
    assert r.read(300_000) == DATA[:300_000]
    with pytest.raises(streamcache.SourceError):
        r.read(1)


def test_source_oserror_keeps_its_errno():
    def gen():
        yield b"abc"
        raise ConnectionResetError(errno.ECONNRESET, "reset by peer")

    cache = streamcache.StreamCache(gen())
    with pytest.raises(streamcache.SourceError) as info:
        cache.wait_complete()
    assert info.value.errno == errno.ECONNRESET
    assert info.value.offset == 3
    assert isinstance(info.value.__cause__, ConnectionResetError)


def test_file_object_error():
    class Broken:
        def __init__(self):
            self.calls = 0

        def readinto(self, b):
            self.calls += 1
            if self.calls > 3:
                raise ValueError("bad file")
            b[:100] = DATA[:100]
            return 100

    cache = streamcache.StreamCache(Broken())
    with pytest.raises(streamcache.SourceError) as info:
        cache.read(0, 1000)
    assert info.value.offset == 300
    assert isinstance(info.value.__cause__, ValueError)


def test_a_chunk_of_the_wrong_type_fails_the_stream():
    cache = streamcache.StreamCache(iter([b"ok", "text"]))
    with pytest.raises(streamcache.SourceError) as info:
        cache.wait_complete()
    assert info.value.offset == 2
    assert isinstance(info.value.__cause__, TypeError)
    assert cache.read(0, 2) == b"ok"


def test_full_disk_is_enospc(tmpfs):
    def big():
        for _ in range((16 << 20) // (64 << 10)):
            yield DATA[: 64 << 10]

    cache = streamcache.StreamCache(big(), memory_limit=0, temp_dir=tmpfs)
    with pytest.raises(OSError) as info:
        cache.wait_complete()
    assert info.value.errno == errno.ENOSPC, info.value
    assert not isinstance(info.value, streamcache.SourceError)
    available = cache.available
    assert 0 < available <= 4 << 20
    assert cache.read(0, 1000) == DATA[:1000]
    with pytest.raises(OSError) as info:
        cache.read(0, available + 1)
    assert info.value.errno == errno.ENOSPC
