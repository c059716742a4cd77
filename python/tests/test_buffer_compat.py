"""`streamcache.StreamBuffer` in place of the `buffer` package's (PyPI buffer 0.2.1)."""

import random
import textwrap

import pytest

import streamcache
from conftest import chunked, pattern

buffer = pytest.importorskip("buffer")


def test_readme_example_unchanged(http_server):
    # The `buffer` README's example, word for word but for its import and its URL.
    http_server.files["big.iso"] = pattern(24_000)
    code = textwrap.dedent(
        '''
        from typing import Iterable

        from streamcache import StreamBuffer
        from requests import get


        BIG_FILE: str = "URL"
        START: int = 0
        KB: int = 1024


        with get(BIG_FILE, stream=True) as response:
          stream: Iterable[bytes] = response.iter_content()
          length = int(response.headers['Content-Length'])

          buffer = StreamBuffer(stream, length)

          # read from start of stream
          first_kb: bytes = buffer.read(START, KB)

          # skip ahead to any arbitrary location in the stream
          arbitrary_kb = buffer.read(20 * KB, KB)

          # skip back to any arbitrary location in the stream
          first_again = buffer.read(START, KB)

          assert first_again == first_kb
        '''
    ).replace("URL", http_server.url("big.iso"))
    scope = {}
    exec(compile(code, "README.md", "exec"), scope)
    data = http_server.files["big.iso"]
    assert scope["first_kb"] == data[:1024]
    assert scope["arbitrary_kb"] == data[20 * 1024 : 21 * 1024]


def test_random_walk_against_buffer():
    data = pattern(1 << 20)
    rng = random.Random(15)
    old = buffer.StreamBuffer(iter(chunked(data, 4096)), len(data))
    new = streamcache.StreamBuffer(iter(chunked(data, 4096)), len(data))
    assert new.size == len(data)
    right = wrong = 0
    position = 0
    for _ in range(400):
        move = rng.random()
        if move < 0.4:
            offset = position  # sequential
        elif move < 0.7:
            offset = rng.randrange(0, position + 1)  # back
        else:
            offset = min(len(data) + 100, position + rng.randrange(1, 40_000))  # skip ahead
        size = rng.randrange(0, 20_000)
        truth = data[offset : offset + size]
        try:
            theirs = old.read(offset, size)
        except Exception:  # noqa: BLE001 - the old package may also raise
            theirs = None
        ours = new.read(offset, size)
        if theirs == truth:
            right += 1
            assert ours == theirs, (offset, size)
        else:
            wrong += 1
            assert ours == truth, (offset, size)
        position = max(position, offset + len(truth))
    # Both cases happened: the comparison means something, and the old package's skip-ahead
    # answers were wrong where ours were right.
    assert right > 100 and wrong > 0, (right, wrong)


def test_getitem_forms_and_is_exhausted():
    data = pattern(100_000)
    sb = streamcache.StreamBuffer(data)
    assert sb[10:20] == data[10:20] and isinstance(sb[10:20], bytes)
    assert sb[(30, 40)] == data[30:40]
    assert sb[[50, 60]] == data[50:60]
    with pytest.raises(NotImplementedError):
        sb[5]
    assert not sb.is_exhausted()  # reads went up to 60: there is more
    assert sb[99_990:100_100] == data[99_990:]
    assert sb.is_exhausted()
    with pytest.raises(ValueError):
        sb.read(-1, 5)


def test_is_exhausted_follows_reads_like_the_old_package():
    chunks = chunked(pattern(50_000), 10_000)
    old = buffer.StreamBuffer(iter(list(chunks)), 50_000)
    new = streamcache.StreamBuffer(iter(list(chunks)), 50_000)
    for offset in range(0, 50_000, 10_000):
        assert new.is_exhausted() == old.is_exhausted() == False  # noqa: E712
        assert new.read(offset, 10_000) == old.read(offset, 10_000)
    assert new.is_exhausted() and old.is_exhausted()
