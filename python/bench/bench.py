"""The Python benchmark of issue 15: streamcache against what runs beside it, in one run.

    python python/bench/bench.py             # 256 MiB streams, the hash case on 1 GiB
    python python/bench/bench.py --mib 32 --hash-mib 64    # quick

Needs `buffer==0.2.1` (installed with --no-deps, plus wrapt==1.14.1) for the first two rows.
Prints one table: each row's rate for streamcache and its baseline, the ratio, and the target.
"""

import argparse
import hashlib
import io
import os
import random
import sys
import threading
import time

import streamcache

KIB = 1 << 10
MIB = 1 << 20
CHUNK = 64 * KIB


def chunks(total, chunk=CHUNK):
    """A Python generator of `total` bytes in 64 KiB chunks (distinct, prebuilt blocks)."""
    blocks = [os.urandom(chunk) for _ in range(16)]
    for i in range(total // chunk):
        yield blocks[i % 16]


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def best(fn, repeat=3):
    return min(timed(fn)[0] for _ in range(repeat))


def sequential(total):
    """One reader over a generator of 64 KiB chunks, 1 MiB reads: read(offset, 1 MiB)."""

    def ours():
        cache = streamcache.StreamCache(chunks(total), expected_len=total)
        offset = 0
        while True:
            data = cache.read(offset, MIB)
            if not data:
                return offset
            offset += len(data)

    def theirs():
        import buffer

        sb = buffer.StreamBuffer(chunks(total), total)
        offset = 0
        while True:
            data = sb.read(offset, MIB)
            if not data:
                return offset
            offset += len(data)

    # Alternating, best of three each: the machine is shared, its load varies within a run.
    t_ours = t_theirs = float("inf")
    for _ in range(3):
        t, n = timed(ours)
        assert n == total, n
        t_ours = min(t_ours, t)
        t, n = timed(theirs)
        assert n == total, n
        t_theirs = min(t_theirs, t)
    return total / t_ours, total / t_theirs


def random_reads(total, count):
    """Random 4 KiB read(offset, 4096) on a completed stream."""
    import buffer

    rng = random.Random(1)
    offsets = [rng.randrange(0, total - 4096) for _ in range(count)]

    cache = streamcache.StreamCache(chunks(total))
    cache.wait_complete()
    sb = buffer.StreamBuffer(chunks(total), total)
    sb.read(0, total)  # all of it arrived

    def ours():
        read = cache.read
        for o in offsets:
            read(o, 4096)

    def theirs():
        read = sb.read
        for o in offsets:
            read(o, 4096)

    return count / best(ours), count / best(theirs)


def readinto_vs_bytesio(total):
    """A completed stream read through reader().readinto in 1 MiB pieces, against io.BytesIO."""
    data = b"".join(chunks(total))
    cache = streamcache.StreamCache(data)
    cache.wait_complete()
    buf = bytearray(MIB)

    def drain(f):
        readinto = f.readinto
        n = 0
        while True:
            k = readinto(buf)
            if not k:
                return n
            n += k

    def ours():
        assert drain(cache.reader()) == total

    def theirs():
        assert drain(io.BytesIO(data)) == total

    return total / best(ours), total / best(theirs)


def hashing_threads(total, threads=4):
    """Four threads each hashing the whole stream with hashlib.sha256 (zero-copy slices of
    1 MiB), against one thread: the aggregate rate of each."""
    cache = streamcache.StreamCache(chunks(total), expected_len=total)
    cache.wait_complete()

    def digest():
        h = hashlib.sha256()
        for offset in range(0, total, MIB):
            h.update(cache[offset : offset + MIB])
        return h.hexdigest()

    one = best(digest, repeat=2)

    def many():
        results = []
        workers = [threading.Thread(target=lambda: results.append(digest())) for _ in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        assert len(set(results)) == 1 and len(results) == threads

    four = best(many, repeat=2)
    return threads * total / four, total / one


def machine_context(total, hash_total):
    """What the machine itself allows in this run, for reading the ratios: the Rust filler
    alone (a bytes source, nothing in Python) and sha256 of plain in-memory bytes, 4 threads
    against 1 (on a busy machine even that does not scale)."""
    data = b"".join(chunks(total))
    filler = best(lambda: streamcache.StreamCache(data).wait_complete(), repeat=2)
    del data
    plain = b"".join(chunks(hash_total // 4))
    view = memoryview(plain)

    def digest():
        h = hashlib.sha256()
        for offset in range(0, len(plain), MIB):
            h.update(view[offset : offset + MIB])

    one = best(digest, repeat=2)

    def many():
        workers = [threading.Thread(target=digest) for _ in range(4)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()

    four = best(many, repeat=2)
    return total / filler, (4 * len(plain) / four) / (len(plain) / one)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=256, help="stream size of rows 1-3 (MiB)")
    parser.add_argument("--hash-mib", type=int, default=1024, help="stream size of row 4 (MiB)")
    parser.add_argument("--reads", type=int, default=20_000, help="random reads in row 2")
    args = parser.parse_args()
    total = args.mib * MIB
    hash_total = args.hash_mib * MIB

    rows = []

    def row(name, unit, ours, theirs, baseline, target):
        rows.append((name, unit, ours, theirs, baseline, ours / theirs, target))
        print(f"  done: {name}", file=sys.stderr)

    gib = 1 << 30
    o, t = sequential(total)
    row(f"generator 64 KiB chunks, read(off, 1 MiB), {args.mib} MiB", "GiB/s", o / gib, t / gib, "buffer 0.2.1", 5.0)
    o, t = random_reads(total, args.reads)
    row(f"random read(off, 4096), completed, {args.mib} MiB", "kreads/s", o / 1e3, t / 1e3, "buffer 0.2.1", 20.0)
    o, t = readinto_vs_bytesio(total)
    row(f"reader().readinto 1 MiB pieces, completed, {args.mib} MiB", "GiB/s", o / gib, t / gib, "io.BytesIO", 0.8)
    o, t = hashing_threads(hash_total)
    row(f"sha256, 4 threads vs 1, {args.hash_mib} MiB each", "GiB/s", o / gib, t / gib, "1 thread", 1.6)

    filler, scaling = machine_context(total, hash_total)

    print(f"streamcache Python benchmark — Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    print()
    print("| case | unit | streamcache | baseline | baseline rate | ratio | target | ok |")
    print("|---|---|---:|---|---:|---:|---:|---|")
    for name, unit, ours, theirs, baseline, ratio, target in rows:
        ok = "yes" if ratio >= target else "NO"
        print(f"| {name} | {unit} | {ours:.3f} | {baseline} | {theirs:.3f} | {ratio:.1f}× | ≥{target}× | {ok} |")
    print()
    print(f"Context, same run: the Rust filler alone (a bytes source, {args.mib} MiB, default "
          f"memory_limit) stores {filler / gib:.2f} GiB/s; sha256 of plain bytes scales "
          f"{scaling:.2f}× from 1 to 4 threads; load average {_loadavg()}.")


def _loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "unknown"


if __name__ == "__main__":
    main()
