"""`StreamCache(url, connections=n)`: the stream filled by `n` requests at once, a span
each, lowest first, over the held server (which sends the bytes below its first MiB, then
holds every response there until the test releases it): `n` requests held at once, the
prefix readable meanwhile, every byte right once released, and the file sent once."""

import hashlib

import pytest

import streamcache
from conftest import finishes, pattern

MIB = 1 << 20
SPAN = 256 << 10


def test_four_connections_fill_the_stream_lowest_spans_first(held_server):
    # The body is held at 1 MiB for every response: the first four spans arrive, and the
    # next four are asked for at once and wait there.
    held_server.files["data.bin"] = data = pattern(8 * MIB)
    held_server.hold_all = True
    cache = streamcache.StreamCache(
        held_server.url("data.bin"), connections=4, fetch_span=SPAN, max_fetches=0
    )
    assert finishes(lambda: cache.read(0, MIB)) == data[:MIB]

    def held_at_once():
        with held_server.lock:
            return sum(1 for r in held_server.requests if r["range"][0] >= MIB)

    assert finishes(lambda: _eventually(lambda: held_at_once() == 4))
    assert held_at_once() == 4, "never more than four"
    assert cache.available == MIB
    held_server.release.set()
    digest = hashlib.sha256(finishes(lambda: cache.reader().read())).hexdigest()
    assert digest == hashlib.sha256(data).hexdigest()
    # Four spans at once (a response whose last byte is written counts until its handler
    # returns, which may be after the client has asked for the next span: one more).
    assert 4 <= held_server.most_live <= 5, held_server.most_live
    # One request per span (the first asks for the first span alone), never a byte twice.
    starts = sorted(r["range"][0] for r in held_server.requests)
    assert starts == list(range(0, len(data), SPAN)), starts
    assert held_server.sent <= len(data) + 4 * SPAN, held_server.sent


def test_a_reader_hashes_in_order_while_connections_fill(held_server):
    held_server.files["data.bin"] = data = pattern(6 * MIB, seed=3)
    held_server.hold = len(data)  # nothing held
    cache = streamcache.StreamCache(held_server.url("data.bin"), connections=3, fetch_span=SPAN)
    h = hashlib.sha256()
    reader = cache.reader()
    while chunk := reader.read(MIB):
        h.update(chunk)
    assert h.hexdigest() == hashlib.sha256(data).hexdigest()
    # Over spans (how many at once depends on this server's speed: the test above counts).
    assert sorted(r["range"] for r in held_server.requests) == [
        (start, min(start + SPAN, len(data))) for start in range(0, len(data), SPAN)
    ]


@pytest.mark.parametrize("bad, error", [(0, ValueError), (-1, ValueError), (1.5, TypeError), ("4", TypeError)])
def test_bad_connections_are_refused(held_server, bad, error):
    held_server.files["data.bin"] = pattern(1000)
    with pytest.raises(error):
        streamcache.StreamCache(held_server.url("data.bin"), connections=bad)


def test_connections_on_a_source_that_is_not_a_url_are_refused():
    with pytest.raises(ValueError, match="URL source only"):
        streamcache.StreamCache(b"abc", connections=2)


def _eventually(cond, timeout=15.0, pause=0.01):
    import time

    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(pause)
    return True
