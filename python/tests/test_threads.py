"""Threads, the GIL, Ctrl-C, lifetimes and interpreter exit."""

import gc
import hashlib
import sys
import textwrap
import threading
import time

import streamcache
from conftest import gated, pattern, run_python, slow

DATA = pattern(8 << 20)


def test_eight_threads_hash_while_arriving():
    cache = streamcache.StreamCache(slow(DATA, chunk=64 << 10, pause=0.0005), memory_limit=1 << 20)
    expected = hashlib.sha256(DATA).hexdigest()
    results = [None] * 8
    errors = []

    def work(i):
        try:
            h = hashlib.sha256()
            if i % 2:
                r = cache.reader()
                buf = bytearray(1 << 20 if i % 4 == 1 else 4096 * (i + 1))
                view = memoryview(buf)
                while n := r.readinto(buf):
                    h.update(view[:n])
            else:
                offset = 0
                while True:
                    piece = cache[offset : offset + (256 << 10)]  # zero-copy
                    if not piece.nbytes:
                        break
                    h.update(piece)
                    offset += piece.nbytes
            results[i] = h.hexdigest()
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert results == [expected] * 8


def test_gil_is_released_while_waiting():
    gate = threading.Event()
    cache = streamcache.StreamCache(gated(DATA, 1000, gate))
    cache.wait_for(1000)
    started = threading.Event()
    outcome = []

    def waiter():
        started.set()
        # A wait of up to 1.5 s inside Rust (no Python code runs in this thread meanwhile).
        outcome.append(cache.wait_for(len(DATA), timeout=1.5))

    t = threading.Thread(target=waiter)
    t.start()
    started.wait()
    time.sleep(0.05)  # let it enter the wait
    # Pure Python work in this thread: were the GIL held by the waiter, this loop would stall
    # for the whole wait.
    longest = 0.0
    last = time.perf_counter()
    end = last + 0.5
    iterations = 0
    while last < end:
        now = time.perf_counter()
        longest = max(longest, now - last)
        last = now
        iterations += 1
    assert t.is_alive(), "the wait ended early: the test measured nothing"
    assert longest < 0.25, f"this thread stalled for {longest:.3f} s while the other waited"
    assert iterations > 1000
    gate.set()
    t.join()
    assert outcome == [len(DATA)]


def test_gil_is_released_while_copying():
    # Two threads copying 64 MiB each through read_at and one counting in Python: the counter
    # keeps running (no long stall) while the copies go on.
    big = streamcache.StreamCache(bytes(64 << 20), memory_limit=0)
    big.wait_complete()
    stop = threading.Event()
    gaps = []

    def counter():
        last = time.perf_counter()
        worst = 0.0
        while not stop.is_set():
            now = time.perf_counter()
            worst = max(worst, now - last)
            last = now
        gaps.append(worst)

    buf = bytearray(64 << 20)
    big.read_at(0, buf)  # touch the pages
    c = threading.Thread(target=counter)
    c.start()
    for _ in range(3):
        big.read_at(0, buf)
    stop.set()
    c.join()
    assert gaps[0] < 0.1, gaps


def test_keyboard_interrupt_interrupts_a_wait_in_the_main_thread():
    code = textwrap.dedent(
        """
        import os, signal, threading, time
        import streamcache

        def never():
            yield b"x"
            threading.Event().wait()

        # Python turns SIGINT into KeyboardInterrupt only if it was not ignored when the
        # interpreter started; a background job of a non-interactive shell (a CI runner)
        # starts with it ignored. This test is about the waits, not that inheritance.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        cache = streamcache.StreamCache(never())
        delay = 0.3
        for call in (lambda: cache.wait_for(10), lambda: cache.read(0, 10),
                     lambda: cache.reader().read(), lambda: cache[0:10]):
            # One signal per call, sent and handled before the next call and before the exit.
            timer = threading.Timer(delay, os.kill, (os.getpid(), signal.SIGINT))
            timer.start()
            start = time.monotonic()
            try:
                call()
                print("not interrupted")
            except KeyboardInterrupt:
                print("interrupted after", round(time.monotonic() - start, 2))
            timer.join()
            delay = 0.1
        """
    )
    proc, _ = run_python(code)
    lines = proc.stdout.splitlines()
    assert len(lines) == 4 and all(l.startswith("interrupted") for l in lines), proc
    assert all(float(l.split()[-1]) < 1.0 for l in lines), lines


def test_memoryview_outlives_every_handle():
    data = pattern(3 << 20)
    cache = streamcache.StreamCache(iter([data[i : i + 65536] for i in range(0, len(data), 65536)]), memory_limit=1 << 20)
    view = cache[1000 : 3 << 20]
    reader = cache.reader()
    part = view[10:20]
    del cache, reader
    gc.collect()
    time.sleep(0.05)
    assert bytes(view) == data[1000:]
    del view
    gc.collect()
    assert bytes(part) == data[1010:1020]  # a slice of a slice keeps the storage too


def test_dropping_the_last_handle_stops_the_source():
    state = {"chunks": 0, "closed": False}

    def endless():
        try:
            while True:
                state["chunks"] += 1
                time.sleep(0.001)
                yield b"y" * 1024
        finally:
            state["closed"] = True

    cache = streamcache.StreamCache(endless())
    reader = cache.reader()
    assert reader.read(5000)
    del cache, reader
    gc.collect()
    deadline = time.monotonic() + 5
    while not state["closed"] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert state["closed"], "the source is still being read"
    count = state["chunks"]
    time.sleep(0.1)
    assert state["chunks"] == count


def test_interpreter_exits_promptly_with_a_cache_still_filling():
    code = textwrap.dedent(
        """
        import threading, time
        import streamcache

        def trickle():              # never ends, yields now and then
            while True:
                time.sleep(0.01)
                yield b"z" * 1000

        def stuck():                # never ends, blocked in Python
            yield b"s"
            threading.Event().wait()

        class File:                 # a file object that blocks
            def readinto(self, b):
                time.sleep(3600)

        caches = [streamcache.StreamCache(trickle()), streamcache.StreamCache(stuck()),
                  streamcache.StreamCache(File())]
        # Daemon threads blocked in waits, inside Rust with the GIL released.
        for c in caches:
            threading.Thread(target=c.wait_complete, daemon=True).start()
        threading.Thread(target=caches[0].read, args=(0, 1 << 40), daemon=True).start()
        caches[0].wait_for(5000)
        time.sleep(0.1)
        print("exiting", flush=True)
        """
    )
    proc, seconds = run_python(code, timeout=20)
    assert proc.returncode == 0, proc
    assert proc.stdout.strip() == "exiting", proc
    assert seconds < 2.0  # interpreter start-up and import included
    # The exit itself: from "exiting" to the end, measured in the child.
    timed = code + "\nimport atexit, sys\n"
    proc, seconds = run_python(
        "import time, subprocess, sys\n"
        f"start = time.monotonic()\n"
        f"p = subprocess.Popen([sys.executable, '-c', {code!r}], stdout=subprocess.PIPE, text=True)\n"
        "line = p.stdout.readline()\n"
        "t = time.monotonic()\n"
        "rc = p.wait(10)\n"
        "print(rc, round(time.monotonic() - t, 3))\n"
    )
    rc, exit_seconds = proc.stdout.split()
    assert rc == "0" and float(exit_seconds) < 1.0, proc.stdout
