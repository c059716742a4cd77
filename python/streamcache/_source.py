"""The thread that reads a Python source (a file object, an iterable of chunks).

It runs on a Python daemon thread, not on the cache's Rust filler thread: a source may block
for ever (a socket, a sleep), and at interpreter exit a thread that wakes up in Python is ended
by CPython; that is harmless for a thread Python started, not for one with Rust frames under
it. The thread hands each chunk to the Rust ``_Sink`` (a ``bytes`` chunk is not copied); once
the cache is gone, ``push`` returns ``False`` and the thread stops reading the source.
"""

import threading
import time

# How long a non-blocking file (readinto/read returning None) is left alone before a retry.
_NOT_READY_PAUSE = 0.001


def start(source, sink, chunk_size, is_file):
    """Starts the daemon thread that feeds ``sink`` from ``source``."""
    target = _pump_file if is_file else _pump_chunks
    thread = threading.Thread(
        target=target,
        args=(source, sink, chunk_size),
        name="streamcache-source",
        daemon=True,
    )
    thread.start()


def _pump_chunks(chunks, sink, _chunk_size):
    try:
        iterator = iter(chunks)
        for chunk in iterator:
            if not sink.push(chunk):
                _close(iterator)  # the cache is gone: run the generator's cleanup
                return
        sink.finish()
    except BaseException as exc:  # the source's own error, handed to every reader
        sink.fail(exc)


def _pump_file(file, sink, chunk_size):
    try:
        readinto = getattr(file, "readinto", None)
        if readinto is not None:
            while True:
                buf = bytearray(chunk_size)
                n = readinto(buf)
                if n is None:
                    time.sleep(_NOT_READY_PAUSE)
                    continue
                if n == 0:
                    break
                if n < chunk_size:
                    del buf[n:]
                if not sink.push(buf):
                    return
        else:
            read = file.read
            while True:
                data = read(chunk_size)
                if data is None:
                    time.sleep(_NOT_READY_PAUSE)
                    continue
                if not data:
                    break
                if not sink.push(data):
                    return
        sink.finish()
    except BaseException as exc:
        sink.fail(exc)


def _close(iterator):
    close = getattr(iterator, "close", None)
    if close is not None:
        try:
            close()
        except Exception:
            pass
