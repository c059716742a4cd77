"""Shared helpers: byte patterns, gated and slow sources, a local HTTP server."""

import http.server
import os
import subprocess
import sys
import threading
import time

import pytest


def pattern(n, seed=0):
    """`n` bytes that differ from any shifted copy of themselves (a wrong offset shows)."""
    block = bytes((i * 131 + seed * 7 + (i >> 8)) & 0xFF for i in range(65536 + 256))
    out = bytearray()
    i = 0
    while len(out) < n:
        out += block[(i * 17) % 256 : (i * 17) % 256 + 65536]
        i += 1
    return bytes(out[:n])


def chunked(data, size):
    return [data[i : i + size] for i in range(0, len(data), size)]


def gated(data, split, gate, chunk=16 << 10, timeout=20):
    """Yields `data[:split]`, then waits for `gate` (an Event) before the rest."""
    for i in range(0, split, chunk):
        yield data[i : min(i + chunk, split)]
    gate.wait(timeout)
    for i in range(split, len(data), chunk):
        yield data[i : i + chunk]


def slow(data, chunk=16 << 10, pause=0.002):
    for i in range(0, len(data), chunk):
        time.sleep(pause)
        yield data[i : i + chunk]


def run_python(code, timeout=30):
    """Runs `code` in a fresh interpreter; returns (CompletedProcess, seconds)."""
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return proc, time.monotonic() - start


class _Handler(http.server.BaseHTTPRequestHandler):
    files = {}
    ranges = []

    def do_GET(self):
        name = self.path.split("?")[0].lstrip("/")
        data = self.files.get(name)
        if data is None:
            self.send_error(404)
            return
        # `Range: bytes=a-b` or `bytes=a-` on paths with "ranged" in them, as a static file
        # server does; a plain 200 elsewhere (as a server that ignores Range).
        start, end = 0, len(data)
        wanted = self.headers.get("Range", "")
        if "ranged" in self.path and wanted.startswith("bytes="):
            first, _, last = wanted[len("bytes="):].partition("-")
            start, end = int(first), (int(last) + 1 if last else len(data))
            self.ranges.append((start, end))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
            self.send_header("ETag", '"v1"')
        else:
            self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(end - start))
        self.end_headers()
        slow = "slow" in self.path
        try:
            for i in range(start, end, 64 << 10):
                if slow:
                    time.sleep(0.005)
                self.wfile.write(data[i : min(end, i + (64 << 10))])
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def http_server():
    """A local server: put bytes in `server.files[name]`, fetch `server.url(name)`."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.files = _Handler.files
    server.ranges = _Handler.ranges
    server.url = lambda name: f"http://127.0.0.1:{server.server_address[1]}/{name}"
    yield server
    server.shutdown()


@pytest.fixture
def tmpfs(tmp_path):
    """A 4 MiB tmpfs (root only): the full-disk tests need a disk that fills."""
    if os.name != "posix" or os.geteuid() != 0:
        reason = "needs root to mount a 4 MiB tmpfs (mount -t tmpfs -o size=4m tmpfs DIR)"
        if os.environ.get("STREAMCACHE_REQUIRE_TMPFS"):
            pytest.fail(reason + ", and STREAMCACHE_REQUIRE_TMPFS is set")
        pytest.skip(reason)
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        reason = f"cannot mount a tmpfs: {proc.stderr.strip()}"
        if os.environ.get("STREAMCACHE_REQUIRE_TMPFS"):
            pytest.fail(reason + ", and STREAMCACHE_REQUIRE_TMPFS is set")
        pytest.skip(reason)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


class _HeldHandler(http.server.BaseHTTPRequestHandler):
    """A static file server that honours `Range` (206, `Content-Range`, a strong `ETag`) and
    holds back the in-order body: a response that starts below `server.hold` sends the bytes
    below it, then waits for `server.release` (an Event) before any byte at or past it. A
    response that starts at or past `hold` (a fetch far ahead) is sent at once, unless
    `server.hold_all`: then it waits for `release` too."""

    protocol_version = "HTTP/1.1"

    def do_GET(self):
        server = self.server
        data = server.files.get(self.path.split("?")[0].lstrip("/"))
        if data is None:
            self.send_error(404)
            return
        start, end = 0, len(data)
        wanted = self.headers.get("Range", "")
        if wanted.startswith("bytes="):
            first, _, last = wanted[len("bytes="):].partition("-")
            start, end = int(first), min(len(data), int(last) + 1 if last else len(data))
        with server.lock:
            server.requests.append(
                {"range": (start, end), "headers": {k.lower(): v for k, v in self.headers.items()}}
            )
        self.send_response(206 if wanted else 200)
        if wanted:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
        self.send_header("ETag", '"held-v1"')
        self.send_header("Content-Length", str(end - start))
        self.end_headers()
        held = start < server.hold or server.hold_all
        with server.lock:
            server.live += 1
            server.most_live = max(server.most_live, server.live)
        try:
            pos = start
            while pos < end:
                stop = min(end, pos + (64 << 10))
                if held and pos < server.hold <= stop:
                    stop = server.hold
                if held and pos >= server.hold:
                    if not server.release.wait(30):
                        return  # The test is over: never released.
                    held = False
                self.wfile.write(data[pos:stop])
                with server.lock:
                    server.sent += stop - pos
                pos = stop
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            with server.lock:
                server.live -= 1

    def log_message(self, *args):
        pass


@pytest.fixture
def held_server():
    """A ranged server whose in-order body stops at `server.hold` (default 1 MiB) until
    `server.release.set()`: put bytes in `server.files[name]`, fetch `server.url(name)`;
    `server.requests` lists each request's range and headers, `server.sent` counts bytes,
    `server.live` the responses being sent now and `server.most_live` the most at once."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HeldHandler)
    server.daemon_threads = True
    server.files, server.requests, server.sent = {}, [], 0
    server.live = server.most_live = 0
    server.hold_all = False  # True: every response waits at `hold`, wherever it starts
    server.hold, server.release, server.lock = 1 << 20, threading.Event(), threading.Lock()
    server.url = lambda name: f"http://127.0.0.1:{server.server_address[1]}/{name}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.release.set()  # Lets every held response end.
    server.shutdown()
    server.server_close()


def finishes(fn, timeout=20):
    """`fn()`'s result, run on a thread: fails the test if it has not returned in `timeout`
    seconds (a read that waits for a body the server holds back would hang)."""
    result = {}

    def run():
        try:
            result["value"] = fn()
        except BaseException as exc:  # re-raised on the test's thread
            result["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        pytest.fail(f"did not finish within {timeout} s: it waits for the held-back body")
    if "error" in result:
        raise result["error"]
    return result["value"]
