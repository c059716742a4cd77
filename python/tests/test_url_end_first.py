"""Readers that look at the end first, over a URL, while the server holds back the in-order
body past its first MiB: `zipfile`, `tarfile` (seekable mode) and `seek(0, SEEK_END)` get what
they need from fetches at once. A reader that waited for the end of the download would hang
here until `finishes` fails it. Also the URL settings: `headers`, `fetch_ahead`,
`fetch_span`, `max_fetches`, and their bad values."""

import hashlib
import io
import random
import tarfile
import threading
import zipfile

import pytest

import streamcache
from conftest import finishes, gated, pattern

MIB = 1 << 20


def entries(count, size, seed=19):
    rng = random.Random(seed)
    return {f"entry-{i:02}.bin": rng.randbytes(size) for i in range(count)}


def make_zip(files):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return out.getvalue()


def make_tar(files):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as t:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return out.getvalue()


def assert_still_held(server, cache):
    """The in-order download is stopped at the hold: what was read came from fetches."""
    assert not server.release.is_set()
    assert cache.available <= server.hold, cache.available
    assert cache.len is None


def test_zipfile_lists_and_reads_the_last_entry_while_the_body_is_held(held_server):
    # 24 MiB: the central directory and the last entry lie well past `fetch_ahead` (4 MiB by
    # default) beyond the held first MiB, so the defaults fetch them at once.
    files = entries(12, 2 * MIB)
    held_server.files["big.zip"] = raw = make_zip(files)
    cache = streamcache.StreamCache(held_server.url("big.zip"))
    assert cache.known_len == len(raw), "known from the first answer"

    def open_and_read():
        z = zipfile.ZipFile(cache.reader())
        names = z.namelist()
        return names, z.read(names[-1])

    names, last = finishes(open_and_read)
    assert names == list(files)
    assert hashlib.sha256(last).digest() == hashlib.sha256(files[names[-1]]).digest()
    assert_still_held(held_server, cache)
    # Every entry right once the body is let through.
    held_server.release.set()
    with zipfile.ZipFile(cache.reader()) as z:
        for name, data in files.items():
            assert hashlib.sha256(z.read(name)).digest() == hashlib.sha256(data).digest(), name
    assert cache.wait_complete() == len(raw)


def test_tarfile_lists_members_while_the_body_is_held(held_server):
    files = entries(6, 3 * MIB, seed=7)
    held_server.files["big.tar"] = raw = make_tar(files)
    # Member headers lie every 3 MiB: fetch those past 256 KiB ahead of the held prefix.
    cache = streamcache.StreamCache(
        held_server.url("big.tar"), fetch_ahead=256 << 10, fetch_span=256 << 10
    )

    def list_members():
        with tarfile.open(fileobj=cache.reader()) as t:  # "r:*": seeks between headers
            members = t.getmembers()
            last = t.extractfile(members[-1]).read()
        return [(m.name, m.size) for m in members], last

    members, last = finishes(list_members)
    assert members == [(name, len(data)) for name, data in files.items()]
    assert last == files[members[-1][0]]
    assert_still_held(held_server, cache)
    # Only headers and the last member were fetched: far from the whole archive.
    assert held_server.sent < len(raw) // 2, (held_server.sent, len(raw))
    held_server.release.set()
    assert cache.wait_complete() == len(raw)


def test_seek_end_returns_the_length_while_the_body_is_held(held_server):
    held_server.files["data.bin"] = data = pattern(8 * MIB)
    cache = streamcache.StreamCache(held_server.url("data.bin"))
    reader = cache.reader()
    assert finishes(lambda: reader.seek(0, io.SEEK_END)) == len(data)
    assert reader.tell() == len(data)
    assert finishes(lambda: reader.seek(-100, io.SEEK_END)) == len(data) - 100
    assert finishes(reader.read) == data[-100:]  # readall: up to the known end, no wait
    assert reader.read() == b""
    # A buffered reader over it, as `open()`-style consumers wrap raw files.
    buffered = io.BufferedReader(cache.reader())
    assert finishes(lambda: buffered.seek(-10, io.SEEK_END)) == len(data) - 10
    assert finishes(buffered.read) == data[-10:]
    assert_still_held(held_server, cache)
    assert cache.known_len == len(data)


def test_known_len_of_a_plain_source_comes_with_its_end():
    data = pattern(300_000)
    gate = threading.Event()
    cache = streamcache.StreamCache(gated(data, 100_000, gate), expected_len=len(data))
    cache.wait_for(100_000)
    assert cache.known_len is None, "a hint is not a known length"
    # So `seek(0, SEEK_END)` waits for the end of a plain source: it cannot be told sooner.
    reader = cache.reader()
    seeked = threading.Thread(target=reader.seek, args=(0, io.SEEK_END), daemon=True)
    seeked.start()
    seeked.join(0.2)
    assert seeked.is_alive(), "seek(0, SEEK_END) returned before the length was known"
    gate.set()
    seeked.join(20)
    assert not seeked.is_alive()
    assert reader.tell() == len(data)
    assert cache.known_len == cache.len == len(data)


def test_a_server_that_ignores_range_is_plain(http_server):
    http_server.files["plain.bin"] = data = pattern(200_000)
    cache = streamcache.StreamCache(http_server.url("plain.bin"))
    assert cache.known_len in (None, len(data))  # None until the stream has ended
    assert cache.reader().seek(0, io.SEEK_END) == len(data)
    assert cache.known_len == len(data)


def test_headers_are_sent_with_every_request(held_server):
    held_server.files["private.bin"] = data = pattern(8 * MIB)
    token = "Bearer s3cr3t-token"
    cache = streamcache.StreamCache(
        held_server.url("private.bin"), headers={"Authorization": token, "X-Trace": "19"}
    )
    assert finishes(lambda: cache.read(len(data) - 10, 10)) == data[-10:]  # a fetch
    held_server.release.set()
    assert cache.wait_complete() == len(data)
    assert len(held_server.requests) >= 2
    for request in held_server.requests:
        assert request["headers"].get("authorization") == token, request
        assert request["headers"].get("x-trace") == "19", request


def test_fetch_span_and_max_fetches_shape_the_requests(held_server):
    held_server.files["data.bin"] = data = pattern(8 * MIB)
    cache = streamcache.StreamCache(
        held_server.url("data.bin"), fetch_ahead=0, fetch_span=128 << 10, max_fetches=3
    )
    at = 4 * MIB
    assert finishes(lambda: cache.read(at, MIB)) == data[at : at + MIB]
    fetches = [r["range"] for r in held_server.requests if r["range"][0] > 0]
    assert fetches, held_server.requests
    assert all(end - start <= 128 << 10 for start, end in fetches), fetches
    held_server.release.set()
    assert cache.wait_complete() == len(data)


def test_max_fetches_zero_waits_for_the_in_order_body(held_server):
    held_server.files["data.bin"] = data = pattern(8 * MIB)
    cache = streamcache.StreamCache(held_server.url("data.bin"), max_fetches=0)
    assert cache.known_len == len(data)
    # Nothing fetches the end: it comes only once the body is let through.
    assert cache.wait_for(len(data), timeout=0.2) is None
    held_server.release.set()
    assert cache.read(len(data) - 10, 10) == data[-10:]
    assert [r["range"][0] for r in held_server.requests] == [0]


@pytest.mark.parametrize(
    "settings",
    [
        {"fetch_ahead": -1},
        {"fetch_span": -1},
        {"fetch_span": 0},
        {"max_fetches": -2},
        {"headers": {"Bad Name": "x"}},
        {"headers": {"Range": "bytes=5-"}},
    ],
)
def test_bad_url_settings_are_value_errors(held_server, settings):
    held_server.files["data.bin"] = pattern(1000)
    with pytest.raises(ValueError):
        streamcache.StreamCache(held_server.url("data.bin"), **settings)


@pytest.mark.parametrize(
    "settings",
    [
        {"fetch_ahead": "4"},
        {"max_fetches": 1.5},
        {"headers": "Authorization: x"},
        {"headers": [("Authorization", "x")]},
        {"headers": {"Authorization": 42}},
        {"headers": {b"Authorization": "x"}},
    ],
)
def test_bad_url_setting_types_are_type_errors(held_server, settings):
    held_server.files["data.bin"] = pattern(1000)
    with pytest.raises(TypeError):
        streamcache.StreamCache(held_server.url("data.bin"), **settings)


def test_a_secret_header_value_never_shows_in_an_error(held_server):
    with pytest.raises(TypeError) as info:
        streamcache.StreamCache(held_server.url("x"), headers={"Authorization": b"secret"})
    assert "secret" not in str(info.value)
    with pytest.raises(ValueError) as info:
        streamcache.StreamCache(held_server.url("x"), headers={"Authorization": "s\necret"})
    assert "ecret" not in str(info.value)


@pytest.mark.parametrize(
    "settings",
    [{"headers": {"A": "b"}}, {"fetch_ahead": 0}, {"fetch_span": 1}, {"max_fetches": 1}],
)
def test_url_settings_on_a_source_that_is_not_a_url_are_refused(settings):
    with pytest.raises(ValueError, match="URL source only"):
        streamcache.StreamCache(b"abc", **settings)
