"""The Python benchmark of issues 15, 19, 20 and 21: streamcache against what runs beside it,
in one run.

Packages: pip install fsspec aiohttp requests hf-transfer wrapt==1.14.1 s3fs boto3 && pip install
--no-deps buffer==0.2.1 (python/bench/install-deps does both, into $PYTHON); the URL rows need
nginx (apt-get install nginx); without hf-transfer the connections row is skipped, saying why.
The S3 rows need moto's S3 server (scripts/object-servers installs it in
target/object-servers/venv; or $MOTO_SERVER, or moto_server on PATH) and s3fs: streamcache
against s3fs on a zip object on moto, on 127.0.0.1, behind a proxy that counts what moto sends.

    python python/bench/bench.py             # 256 MiB streams, the hash case on 1 GiB
    python python/bench/bench.py --mib 32 --hash-mib 64 --url-mib 64 --s3-mib 32   # quick
    python python/bench/bench.py --s3-only   # only the S3 rows (--url-only: the URL rows)

Prints one table: each row's result for streamcache and its baseline, the ratio (streamcache's
rate over the baseline's, or the baseline's time over streamcache's), and the target; then the
context of the run.
"""

import argparse
import gc
import hashlib
import io
import os
import random
import sys
import threading
import time
import zipfile

import streamcache

import nginx
import s3

KIB = 1 << 10
MIB = 1 << 20
CHUNK = 64 * KIB


def chunks(total, chunk=CHUNK):
    """A Python generator of `total` bytes in 64 KiB chunks (distinct, prebuilt blocks)."""
    blocks = [os.urandom(chunk) for _ in range(16)]
    for i in range(total // chunk):
        yield blocks[i % 16]


def timed(fn):
    """The seconds `fn()` takes, and what it returned."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def best(fn, repeat=3):
    """The best of `repeat` timings of `fn()`, in seconds."""
    return min(timed(fn)[0] for _ in range(repeat))


def alternating(fns, repeat=3, before=lambda: None, after=lambda i: None):
    """The best time of each of `fns`, run in turn `repeat` times (the machine is shared, its
    load varies within a run); `before()` runs, untimed, before each run, and `after(i)` after
    each run of `fns[i]`."""
    times = [float("inf")] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            before()
            times[i] = min(times[i], timed(fn)[0])
            after(i)
    return times


def at_second_start(offset=0.05):
    """Sleeps until `offset` s past the next whole second of the wall clock. nginx's limit_rate
    lets a response have `rate × (whole seconds of its clock since the request began + 1)`
    bytes, counted in whole seconds of the wall clock: a request begun late in a second gains
    up to a second's worth over one begun early in it (up to 25% of a 4 s download). Every URL
    run begins at the same point of a second, so that none is favoured by that."""
    now = time.time()
    time.sleep(1 - (now % 1) + offset)


def read_all(read):
    """Calls read(offset, 1 MiB) from 0 on until it returns nothing: the bytes read."""
    offset = 0
    while True:
        data = read(offset, MIB)
        if not data:
            return offset
        offset += len(data)


def drain(f, buf):
    """Reads file `f` to its end with f.readinto(buf): the bytes read."""
    readinto = f.readinto
    n = 0
    while True:
        k = readinto(buf)
        if not k:
            return n
        n += k


def sequential(total):
    """One reader over a generator of 64 KiB chunks, 1 MiB reads: read(offset, 1 MiB); against
    the Rust filler alone on the same bytes (a bytes source: no Python, no reader), and, for
    context, buffer 0.2.1's StreamBuffer over the same generator. Rates in bytes/s."""
    import buffer

    data = b"".join(chunks(total))

    def ours():
        cache = streamcache.StreamCache(chunks(total), expected_len=total)
        assert read_all(cache.read) == total

    def filler():
        assert streamcache.StreamCache(data).wait_complete() == total

    def theirs():
        assert read_all(buffer.StreamBuffer(chunks(total), total).read) == total

    return [total / t for t in alternating([ours, filler, theirs])]


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

    def ours():
        assert drain(cache.reader(), buf) == total

    def theirs():
        assert drain(io.BytesIO(data), buf) == total

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


def sha256_scaling(hash_total):
    """What the machine itself allows in this run, for reading the threads row: sha256 of
    plain in-memory bytes, 4 threads against 1 (on a busy machine even that does not scale)."""
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
    return (4 * len(plain) / four) / (len(plain) / one)


ENTRIES = 16


def make_zip(path, total, seed=14, entries=ENTRIES):
    """Writes a zip (to a path or a file object) of `entries` (16) stored entries of seeded
    pseudo-random bytes (incompressible), `total` bytes of them in all, as scripts/nginx-zip
    does: returns the last entry's name and sha256."""
    rng = random.Random(seed)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for i in range(entries):
            data = rng.randbytes(total // entries)
            name = f"part-{i:03}.bin"
            z.writestr(name, data)
    return name, hashlib.sha256(data).hexdigest()


def over_url(server, ours, theirs, cleanup=lambda: None):
    """`ours` and `theirs` in turn, best of 3, each run followed (untimed) by `cleanup()` and a
    wait until nginx writes no response any more, so that a download that outlives its reader
    neither overlaps the next run nor goes uncounted: their seconds, and the bytes nginx sent in
    each run of each."""
    sent = ([], [])

    def after(i):
        cleanup()
        gc.collect()
        n, idle = server.take_sent()
        if not idle:
            print(f"  warning: nginx still sending a minute after run of {(ours, theirs)[i].__qualname__}",
                  file=sys.stderr)
        sent[i].append(n)

    t_ours, t_theirs = alternating([ours, theirs], before=at_second_start, after=after)
    return t_ours, t_theirs, sent


def zip_last_entry(server, url, name, digest):
    """zipfile's entry list (the central directory, at the end of the file) and the last entry
    over the URL: a new StreamCache(url).reader() each run, dropped after it so that its
    background download stops, against fsspec's HTTP file. See over_url for what it returns."""
    import fsspec

    def last_entry(f):
        with zipfile.ZipFile(f) as z:
            names = z.namelist()
            assert names[-1] == name, names[-1]
            data = z.read(names[-1])
        assert hashlib.sha256(data).hexdigest() == digest

    def ours():
        cache = streamcache.StreamCache(url)
        last_entry(cache.reader())
        del cache  # the last handle: the download stops

    def theirs():
        with fsspec.open(url, "rb") as f:
            last_entry(f)

    return over_url(server, ours, theirs)


def whole_read(server, url, size):
    """The whole file over the URL: a new StreamCache(url).reader() read to its end with
    readinto a 1 MiB bytearray, against requests' streamed body in iter_content(1 MiB) chunks.
    See over_url for what it returns."""
    import requests

    buf = bytearray(MIB)

    def ours():
        cache = streamcache.StreamCache(url)
        assert drain(cache.reader(), buf) == size
        del cache

    def theirs():
        with requests.get(url, stream=True) as resp:
            resp.raise_for_status()
            assert sum(map(len, resp.iter_content(MIB))) == size

    return over_url(server, ours, theirs)


CONNECTIONS = 8
FETCH_SPAN = 4 * MIB  # StreamCache's default fetch_span


def connections_read(server, url, size, hf_transfer):
    """The whole file over the URL with 8 connections: a new StreamCache(url, connections=8)
    (its default fetch_span, 4 MiB) read through reader() to its end with readinto a 1 MiB
    bytearray, against hf_transfer.download(max_files=8) into a temporary file, its chunk_size
    that fetch_span (the same requests), the file removed after each run, untimed. Both timed
    here, around the call. See over_url for what it returns."""
    import tempfile

    buf = bytearray(MIB)
    with tempfile.TemporaryDirectory(prefix="streamcache-bench-hf-") as folder:
        path = os.path.join(folder, "file.bin")

        def ours():
            cache = streamcache.StreamCache(url, connections=CONNECTIONS)
            assert drain(cache.reader(), buf) == size
            del cache

        def theirs():
            hf_transfer.download(url, path, max_files=CONNECTIONS, chunk_size=FETCH_SPAN)
            assert os.path.getsize(path) == size

        def cleanup():
            if os.path.exists(path):
                os.remove(path)

        return over_url(server, ours, theirs, cleanup)


def connections_row(server, url, size, url_mib, row, sent):
    """The connections row, if hf_transfer is installed; its context sentence (or why it was
    skipped)."""
    try:
        import hf_transfer
    except ImportError as e:
        reason = f"Connections row skipped: {e} (pip install hf-transfer, or python/bench/install-deps)."
        print(f"  {reason}", file=sys.stderr)
        return reason
    at_second_start()
    alone = server.probe("big.zip", FETCH_SPAN)
    server.take_sent()
    o, t, conn_sent = connections_read(server, url, size, hf_transfer)
    row(f"StreamCache(url, connections={CONNECTIONS}) whole read through reader() (1 MiB readinto) "
        f"over the URL, {url_mib} MiB", "s", o, t,
        f"hf_transfer {_version('hf-transfer')} download(max_files={CONNECTIONS}, chunk_size=4 MiB)",
        1.0, lower_is_better=True)
    # nginx waits written / rate whole milliseconds after each write: where that rounds to 0, a
    # request of at most a second's worth goes at once.
    ratio = FETCH_SPAN / alone / server.rate_bytes()
    throttled = "hardly throttled" if ratio > 2 else "throttled near the rate"
    return (f"{CONNECTIONS} connections: nginx sent streamcache {sent(conn_sent[0])}, hf_transfer "
            f"{sent(conn_sent[1])}; both ask for spans of 4 MiB, and one such request alone took "
            f"{alone * 1e3:.0f} ms ({ratio:.2f}× limit_rate): {throttled}.")


def _version(package):
    from importlib import metadata

    return metadata.version(package)


def url_rows(binary, url_mib, rate, row):
    """The URL rows on a private nginx serving a generated zip of `url_mib` MiB at `rate` per
    response; returns their context line (what nginx sent)."""
    with nginx.Nginx(binary, rate) as server:
        path = os.path.join(server.www, "big.zip")
        name, digest = make_zip(path, url_mib * MIB)
        os.chmod(path, 0o644)
        size = os.path.getsize(path)
        url = server.url("big.zip")

        o, t, zip_sent = zip_last_entry(server, url, name, digest)
        row(f"zipfile entry list + last entry over the URL, {url_mib} MiB", "s", o, t,
            "fsspec HTTP file", 1.0, lower_is_better=True)
        o, t, whole_sent = whole_read(server, url, size)
        # Both at nginx's limit_rate (whoever reads, the time is what the rate allows): at it
        # means within 1% (50 ms of a 5 s run).
        row(f"whole read through reader() (1 MiB readinto) over the URL, {url_mib} MiB", "s", o, t,
            "requests iter_content 1 MiB", 1.0, lower_is_better=True, within=0.01)

        def sent(runs):
            return per_run(runs, size, "file")

        conn_context = connections_row(server, url, size, url_mib, row, sent)

    return (f"Over the URL: {nginx.version(binary)} on 127.0.0.1, limit_rate {rate} per response "
            f"(rate × (whole seconds since the request + 1): every run begins 50 ms into a "
            f"second of the wall clock), a {size / MIB:.1f} MiB zip of {ENTRIES} "
            f"stored entries. nginx sent, per run: "
            f"zipfile streamcache {sent(zip_sent[0])}, fsspec {sent(zip_sent[1])}; "
            f"whole read streamcache {sent(whole_sent[0])}, requests {sent(whole_sent[1])}. "
            + conn_context)


def per_run(runs, size, what):
    """Bytes sent in each run, in MiB, and the most of them as a fraction of `size`."""
    mib = "/".join(f"{n / MIB:.1f}" for n in runs)
    return f"{mib} MiB (≤{max(runs) / size:.3f}× the {what})"


S3_ENTRIES = 64  # of 4 MiB in 256 MiB: the last entry is 1.6% of the object, under the 2% target
S3_PART = 16 * MIB
S3_BUCKET = "streamcache-bench"
S3_OBJECT = "archive.zip"


def over_s3(moto, fns, check):
    """`fns` in turn, best of 3; after each run, untimed, `check(i, what fns[i] returned)`, then
    the bytes moto sent for it, counted once the proxy has been quiet for 0.3 s (a download
    that outlives its reader counts too): their seconds, and the bytes of each run of each."""
    result = [None]
    sent = [[] for _ in fns]

    def keeping(fn):
        def run():
            result[0] = fn()
        return run

    def after(i):
        check(i, result[0])
        result[0] = None  # the last handle: a cache's downloads stop
        gc.collect()
        sent[i].append(moto.proxy.take())

    # before: nothing of an earlier run (or the upload) is still arriving, nor counted.
    times = alternating([keeping(f) for f in fns], before=moto.proxy.take, after=after)
    return times, sent


def s3_zip_last_entry(moto, url, path, name, digest):
    """zipfile's entry list and last entry of the object: a new StreamCache(url,
    defer_fill=True).reader() each run (the in-order download waits for a read near the front,
    which never comes: only what zipfile reads is fetched), against zipfile over s3fs's
    fs.open (its defaults), a new S3FileSystem each run. See over_s3 for what it returns."""

    def last_entry(f):
        with zipfile.ZipFile(f) as z:
            names = z.namelist()
            return names[-1], z.read(names[-1])

    def ours():
        cache = streamcache.StreamCache(url, options=moto.options(), defer_fill=True)
        return last_entry(cache.reader())  # and the cache is dropped

    def theirs():
        with moto.filesystem().open(path, "rb") as f:
            return last_entry(f)

    def check(i, got):
        assert got[0] == name and hashlib.sha256(got[1]).hexdigest() == digest, got[0]

    return over_s3(moto, [ours, theirs], check)


def s3_whole(moto, url, path, size, digest):
    """The whole object: a new StreamCache(url, connections=8, fetch_span=size/8) read through
    reader() to its end with readinto a 1 MiB bytearray, against s3fs's fs.cat (a new
    S3FileSystem each run). One span per connection: moto reads the whole object for every
    range request, so that streamcache's default 4 MiB spans would cost moto 64 whole reads.
    See over_s3 for what it returns."""
    buf = bytearray(MIB)
    span = -(-size // CONNECTIONS)

    def ours():
        cache = streamcache.StreamCache(url, options=moto.options(), connections=CONNECTIONS,
                                        fetch_span=span)
        assert drain(cache.reader(), buf) == size
        return cache  # for check: its bytes hashed untimed

    def theirs():
        return moto.filesystem().cat(path)

    def check(i, got):
        h = hashlib.sha256()
        if i == 0:
            for offset in range(0, size, MIB):
                h.update(got[offset : min(offset + MIB, size)])
        else:
            h.update(got)
        assert h.hexdigest() == digest

    return over_s3(moto, [ours, theirs], check)


def s3_rows(row, s3_mib):
    """The S3 rows on a private moto_server holding a zip of `s3_mib` MiB in 64 stored entries,
    uploaded in 16 MiB parts; returns their context line (what moto sent), or why they were
    skipped."""
    binary = s3.find()
    reason = None
    try:
        import s3fs
    except ImportError as e:
        reason = f"{e} (pip install s3fs boto3, or python/bench/install-deps)"
    if binary is None:
        reason = "moto_server is not installed (scripts/object-servers, or $MOTO_SERVER)"
    if reason:
        print(f"  S3 rows skipped: {reason}.", file=sys.stderr)
        return f"S3 rows skipped: {reason}."

    cleared = s3.clear_aws_env()  # before any client: only our endpoint and credentials
    data = io.BytesIO()
    name, last_digest = make_zip(data, s3_mib * MIB, entries=S3_ENTRIES)
    data = data.getvalue()
    size = len(data)
    digest = hashlib.sha256(data).hexdigest()
    url, path = f"s3://{S3_BUCKET}/{S3_OBJECT}", f"{S3_BUCKET}/{S3_OBJECT}"
    with s3.Moto(binary) as moto:
        parts = moto.upload(S3_BUCKET, S3_OBJECT, data, S3_PART)
        del data

        (o, t), zip_sent = s3_zip_last_entry(moto, url, path, name, last_digest)
        row(f"zipfile entry list + last entry of an S3 object on moto, {s3_mib} MiB: "
            f"StreamCache(s3://, defer_fill=True).reader()", "s", o, t,
            "s3fs open + zipfile", 1.0, lower_is_better=True)
        (o, t), whole_sent = s3_whole(moto, url, path, size, digest)
        row(f"whole S3 object on moto, {s3_mib} MiB: StreamCache(s3://, connections={CONNECTIONS}, "
            f"fetch_span=len/{CONNECTIONS}) through reader() (1 MiB readinto)", "s", o, t,
            "s3fs cat", 1.0, lower_is_better=True)

    most = max(zip_sent[0])
    return (f"On S3: moto {s3.version(binary)} (moto_server on 127.0.0.1, behind a counting TCP "
            f"proxy every client uses; AWS_* cleared ({cleared} set before); static credentials), "
            f"s3fs {_version('s3fs')} (botocore {_version('botocore')}; its defaults: readahead "
            f"cache, {s3fs.S3FileSystem.default_block_size / MIB:.0f} MiB blocks); a "
            f"{size / MIB:.1f} MiB zip of {S3_ENTRIES} stored entries, uploaded with boto3 in "
            f"{parts} parts ({S3_PART // MIB} MiB, the last one shorter). Both timed from the client's construction to "
            f"the last byte; every run's bytes checked (sha256), untimed. moto sent, per run "
            f"(headers included): zipfile streamcache {per_run(zip_sent[0], size, 'object')}, "
            f"s3fs {per_run(zip_sent[1], size, 'object')}; streamcache's most, {most} bytes, is "
            f"{most / size:.2%} of the object: under the 2% target: {'yes' if most < 0.02 * size else 'NO'}; whole object streamcache "
            f"{per_run(whole_sent[0], size, 'object')}, s3fs {per_run(whole_sent[1], size, 'object')}.")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=256, help="stream size of rows 1-3 (MiB)")
    parser.add_argument("--hash-mib", type=int, default=1024, help="stream size of row 4 (MiB)")
    parser.add_argument("--reads", type=int, default=20_000, help="random reads in row 2")
    parser.add_argument("--url-mib", type=int, default=256, help="zip size of the URL rows (MiB)")
    parser.add_argument("--rate", default="50m", help="nginx's limit_rate per response (nginx units: 50m = 50 MiB/s)")
    parser.add_argument("--s3-mib", type=int, default=256, help="zip size of the S3 rows (MiB)")
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--url-only", action="store_true", help="only the URL rows")
    only.add_argument("--s3-only", action="store_true", help="only the S3 rows")
    args = parser.parse_args()
    total = args.mib * MIB
    hash_total = args.hash_mib * MIB

    rows = []

    def row(name, unit, ours, theirs, baseline, target, lower_is_better=False, within=0.0):
        """`within`: how far under `target` still counts as at it (for a row both sides of
        which run at the server's rate, where the ratio's last digits are noise)."""
        ratio = theirs / ours if lower_is_better else ours / theirs
        rows.append((name, unit, ours, theirs, baseline, ratio, target, within))
        print(f"  done: {name}", file=sys.stderr)

    gib = 1 << 30
    context = []
    if not (args.url_only or args.s3_only):
        seq, filler, buf021 = sequential(total)
        row(f"generator 64 KiB chunks, read(off, 1 MiB), {args.mib} MiB", "GiB/s", seq / gib, filler / gib,
            "Rust filler alone (bytes source)", 0.8)
        o, t = random_reads(total, args.reads)
        row(f"random read(off, 4096), completed, {args.mib} MiB", "kreads/s", o / 1e3, t / 1e3, "buffer 0.2.1", 20.0)
        o, t = readinto_vs_bytesio(total)
        row(f"reader().readinto 1 MiB pieces, completed, {args.mib} MiB", "GiB/s", o / gib, t / gib, "io.BytesIO", 0.8)
        o, t = hashing_threads(hash_total)
        row(f"sha256, 4 threads vs 1, {args.hash_mib} MiB each", "GiB/s", o / gib, t / gib, "1 thread", 1.6)

        scaling = sha256_scaling(hash_total)
        context.append(f"Context, same run: buffer 0.2.1's StreamBuffer over the same generator reads "
                       f"{buf021 / gib:.3f} GiB/s (streamcache {seq / buf021:.2f}×); sha256 of plain "
                       f"bytes scales {scaling:.2f}× from 1 to 4 threads; load average {_loadavg()}.")

    if not args.s3_only:
        binary = nginx.find()
        if binary is None:
            url_context = "URL rows skipped: nginx is not installed (apt-get install nginx)."
            print(f"  {url_context}", file=sys.stderr)
        else:
            url_context = url_rows(binary, args.url_mib, args.rate, row)
        context.append(url_context)
    if not args.url_only:
        context.append(s3_rows(row, args.s3_mib))

    print(f"streamcache Python benchmark — Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    print()
    print("| case | unit | streamcache | baseline | baseline's | ratio | target | ok |")
    print("|---|---|---:|---|---:|---:|---:|---|")
    for name, unit, ours, theirs, baseline, ratio, target, within in rows:
        ok = "yes" if ratio >= target * (1 - within) else "NO"
        goal = f"≥{target}×" + (f" (±{within:.0%})" if within else "")
        print(f"| {name} | {unit} | {ours:.3f} | {baseline} | {theirs:.3f} | {ratio:.3f}× | {goal} | {ok} |")
    print()
    print("Ratios: streamcache's rate over the baseline's; for a time in s, the baseline's time over "
          "streamcache's.")
    for line in context:
        print(line)


def _loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "unknown"


if __name__ == "__main__":
    main()
