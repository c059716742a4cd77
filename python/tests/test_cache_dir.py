"""`cache_dir`: one download shared by every process, as users run them: `multiprocessing`
pools (spawn and fork) hashing one URL, then a later process that finds the entry complete.
The server counts the body bytes it sends."""

import hashlib
import multiprocessing

import pytest

import streamcache
from conftest import pattern, run_python

MIB = 1 << 20


def _sha256_through_cache(job):
    """A worker: the URL's SHA-256, read through a cache in `cache_dir`."""
    url, cache_dir = job
    cache = streamcache.StreamCache(url, cache_dir=cache_dir)
    return hashlib.sha256(cache[0 : cache.wait_complete()]).hexdigest()


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_eight_workers_share_one_download_and_a_later_process_sends_no_body(
    held_server, tmp_path, method
):
    data = pattern(8 * MIB + 1234)
    held_server.files["model.bin"] = data
    held_server.hold = 0  # Nothing held back.
    url = held_server.url("model.bin")
    context = multiprocessing.get_context(method)
    with context.Pool(8) as pool:
        digests = pool.map(_sha256_through_cache, [(url, str(tmp_path))] * 8)
    assert digests == [hashlib.sha256(data).hexdigest()] * 8
    # Once, plus each worker's first answer (one byte); no worker reads far ahead.
    assert held_server.sent <= len(data) + 8, held_server.sent
    assert held_server.sent >= len(data)

    before = held_server.sent
    code = (
        "import hashlib, streamcache\n"
        f"cache = streamcache.StreamCache({url!r}, cache_dir={str(tmp_path)!r})\n"
        "print(hashlib.sha256(cache[0:cache.wait_complete()]).hexdigest())\n"
    )
    proc, _ = run_python(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == hashlib.sha256(data).hexdigest()
    assert held_server.sent - before <= 1, "a complete entry: a one-byte validation only"


def test_cache_dir_applies_to_urls_only(tmp_path):
    with pytest.raises(ValueError, match="cache_dir"):
        streamcache.StreamCache(b"bytes", cache_dir=str(tmp_path))
