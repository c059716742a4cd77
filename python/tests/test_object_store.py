"""`StreamCache("s3://bucket/key", options={...})` and the other object-store URLs, against a
real moto S3 server the tests start on 127.0.0.1 (installed by scripts/object-servers, or at
$STREAMCACHE_MOTO_SERVER; without it the S3 tests skip, or fail when $CI is set), with objects
uploaded by boto3 (one of them a multipart upload, whose ETag is not an MD5). A throttling TCP
proxy in front of moto makes the in-order fill slow, so that what is read from far ahead is
shown to arrive before the end: a multipart zip's entry list and last entry, an overwrite
mid-read never spliced in. Then NotFound, unknown option keys, `connections=4`, `file://` and
`memory://`, and option values that never show in a message."""

import hashlib
import io
import os
import pathlib
import random
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
import zipfile

import pytest

import streamcache
from conftest import finishes, pattern

MIB = 1 << 20
BUCKET = "streamcache-test"
KEY_ID = "test-key-id"
# moto takes any credentials: this only has to be there, and never be shown.
SECRET = "s3cr3t-never-shown-0123456789"
ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def clean_cloud_environment(monkeypatch):
    """No AWS_*, AZURE_* or GOOGLE_* variable of the machine reaches the stores (object_store
    reads them) or boto3: only the options the tests give."""
    for name in list(os.environ):
        if name.startswith(("AWS_", "AZURE_", "GOOGLE_")):
            monkeypatch.delenv(name)
    # boto3 must not read a config or credentials file of the machine either.
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)


def _unavailable(reason):
    if os.environ.get("CI"):
        pytest.fail(reason + ", and CI is set")
    pytest.skip(reason)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Moto:
    """moto's S3 server on 127.0.0.1, and a boto3 client of it."""

    def __init__(self, binary, log):
        self.port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "AZURE_", "GOOGLE_"))}
        self.proc = subprocess.Popen(
            [binary, "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        self.endpoint = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto_server exited with {self.proc.returncode}")
            try:
                urllib.request.urlopen(self.endpoint + "/", timeout=1).close()
                break
            except urllib.error.HTTPError:
                break  # it answers
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("moto_server did not answer within 60 s")
                time.sleep(0.1)
        import boto3

        self.client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=KEY_ID,
            aws_secret_access_key=SECRET,
            region_name="us-east-1",
        )
        self.client.create_bucket(Bucket=BUCKET)

    def options(self, port=None):
        """The store's options, for moto itself or for a proxy of it on `port`."""
        return {
            "aws_endpoint": f"http://127.0.0.1:{port or self.port}",
            "aws_allow_http": "true",
            "aws_access_key_id": KEY_ID,
            "aws_secret_access_key": SECRET,
            "aws_region": "us-east-1",
        }

    def put(self, key, data):
        self.client.put_object(Bucket=BUCKET, Key=key, Body=data)

    def put_multipart(self, key, data, part_size):
        upload = self.client.create_multipart_upload(Bucket=BUCKET, Key=key)
        parts = []
        for number, start in enumerate(range(0, len(data), part_size), 1):
            answer = self.client.upload_part(
                Bucket=BUCKET,
                Key=key,
                PartNumber=number,
                UploadId=upload["UploadId"],
                Body=data[start : start + part_size],
            )
            parts.append({"PartNumber": number, "ETag": answer["ETag"]})
        self.client.complete_multipart_upload(
            Bucket=BUCKET, Key=key, UploadId=upload["UploadId"], MultipartUpload={"Parts": parts}
        )
        return self.client.head_object(Bucket=BUCKET, Key=key)["ETag"]

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    binary = os.environ.get("STREAMCACHE_MOTO_SERVER") or str(
        ROOT / "target/object-servers/venv/bin/moto_server"
    )
    if not os.access(binary, os.X_OK):
        _unavailable(f"no moto_server at {binary} (install it with scripts/object-servers)")
    try:
        import boto3  # noqa: F401
    except ImportError:
        _unavailable("boto3 is not installed (python/run-tests installs it)")
    log_path = tmp_path_factory.mktemp("moto") / "moto.log"
    with open(log_path, "wb") as log:
        server = Moto(binary, log)
    try:
        yield server
    finally:
        server.stop()


class Proxy:
    """A TCP proxy of `upstream` on 127.0.0.1 that sends the server's bytes to the client at
    `rate` bytes per second on each connection (`None`: as fast as they come); `connections`
    counts the connections, `sent` the server's bytes sent on."""

    def __init__(self, upstream, rate):
        self.upstream, self.rate = upstream, rate
        self.connections = 0
        self.sent = 0
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client):
        try:
            server = socket.create_connection(("127.0.0.1", self.upstream))
        except OSError:
            client.close()
            return

        def requests():
            try:
                while data := client.recv(64 << 10):
                    server.sendall(data)
                server.shutdown(socket.SHUT_WR)
            except OSError:
                pass

        threading.Thread(target=requests, daemon=True).start()
        step = 64 << 10 if self.rate is None else max(1, self.rate // 50)  # 50 steps a second
        try:
            while data := server.recv(step):
                started = time.monotonic()
                client.sendall(data)
                with self.lock:
                    self.sent += len(data)
                if self.rate is None:
                    continue
                left = len(data) / self.rate - (time.monotonic() - started)
                if left > 0:
                    time.sleep(left)
        except OSError:
            pass
        finally:
            client.close()
            server.close()

    def close(self):
        self.listener.close()


@pytest.fixture
def proxy_of(moto):
    proxies = []

    def start(rate):
        proxy = Proxy(moto.port, rate)
        proxies.append(proxy)
        return proxy

    yield start
    for proxy in proxies:
        proxy.close()


def url(key):
    return f"s3://{BUCKET}/{key}"


def make_zip(files):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return out.getvalue()


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def test_a_multipart_zip_lists_and_reads_its_last_entry_before_the_object_has_arrived(
    moto, proxy_of
):
    rng = random.Random(21)
    files = {f"entry-{i:02}.bin": rng.randbytes(2 * MIB) for i in range(8)}
    raw = make_zip(files)
    etag = moto.put_multipart("archive.zip", raw, part_size=6 * MIB)
    assert etag.strip('"').endswith("-3"), f"a multipart upload's ETag, not an MD5: {etag}"
    # The in-order fill comes at 4 MiB/s: 16 MiB take 4 s. The central directory and the
    # last entry are fetched at once, past `fetch_ahead`, in 1 MiB spans.
    proxy = proxy_of(4 * MIB)
    cache = streamcache.StreamCache(
        url("archive.zip"),
        options=moto.options(proxy.port),
        fetch_ahead=MIB,
        fetch_span=MIB,
    )
    assert cache.known_len == len(raw), "the size comes from the head"

    def open_and_read():
        z = zipfile.ZipFile(cache.reader())
        names = z.namelist()
        return names, z.read(names[-1])

    names, last = finishes(open_and_read)
    arrived = sum(end - start for start, end in cache.present())
    assert not cache.is_complete
    assert cache.available < len(raw) - 2 * MIB, (cache.available, len(raw))
    assert arrived < len(raw), cache.present()
    assert names == list(files)
    assert sha256(last) == sha256(files[names[-1]])
    # Then every entry, once the fill gets there.
    with zipfile.ZipFile(cache.reader()) as z:
        for name, data in files.items():
            assert sha256(z.read(name)) == sha256(data), name
    assert finishes(cache.wait_complete) == len(raw)
    assert SECRET not in repr(cache)


def test_a_deferred_fill_sends_little_more_than_the_entry_list_and_the_last_entry(
    moto, proxy_of
):
    rng = random.Random(22)
    files = {f"entry-{i:02}.bin": rng.randbytes(MIB) for i in range(24)}
    raw = make_zip(files)
    moto.put_multipart("deferred.zip", raw, part_size=8 * MIB)
    # Unthrottled: without `defer_fill`, the in-order fill brings most of the object while
    # zipfile looks for its entry.
    proxy = proxy_of(None)
    cache = streamcache.StreamCache(
        url("deferred.zip"),
        options=moto.options(proxy.port),
        fetch_span=MIB,
        defer_fill=True,
    )

    def open_and_read():
        with zipfile.ZipFile(cache.reader()) as z:
            names = z.namelist()
            return names, z.read(names[-1])

    names, last = finishes(open_and_read)
    assert names == list(files)
    assert sha256(last) == sha256(files[names[-1]])
    assert cache.available == 0, "the fill has not started"
    # The last entry (1 MiB), the fetches' spans around it and the directory, the headers.
    assert proxy.sent < 3 * MIB, (proxy.sent, cache.present())
    # A read at the front starts the fill; then every entry.
    with zipfile.ZipFile(cache.reader()) as z:
        for name, data in files.items():
            assert sha256(z.read(name)) == sha256(data), name
    assert finishes(cache.wait_complete) == len(raw)
    assert proxy.sent < len(raw) + 3 * MIB, "no span sent twice"


def test_an_overwrite_mid_read_is_never_spliced_in(moto, proxy_of):
    first = pattern(4 * MIB, seed=3)
    moto.put("versioned.bin", first)
    proxy = proxy_of(MIB)  # 1 MiB/s: the fill is far from the end when the object changes
    cache = streamcache.StreamCache(
        url("versioned.bin"),
        options=moto.options(proxy.port),
        fetch_ahead=64 << 10,
        fetch_span=64 << 10,
        memory_limit=MIB,
    )
    tail = len(first) - 1000
    assert finishes(lambda: cache.read(tail, 1000)) == first[tail:]

    moto.put("versioned.bin", b"\xee" * len(first))
    far = len(first) - MIB
    assert not any(start <= far < end for start, end in cache.present()), cache.present()
    with pytest.raises(OSError) as info:
        finishes(lambda: cache.read(far, 10))
    assert not isinstance(info.value, (FileNotFoundError, PermissionError)), info.value
    assert url("versioned.bin") in str(info.value)
    assert SECRET not in str(info.value)
    # What was there stays the first version's.
    assert cache.read(tail, 1000) == first[tail:]
    # Whatever the fill got before it stopped is the first version's, never the new bytes.
    try:
        finishes(cache.wait_complete, timeout=30)
    except OSError as exc:
        assert SECRET not in str(exc)
    for start, end in cache.present():
        assert cache.read(start, end - start) == first[start:end], (start, end)
    try:
        whole = finishes(lambda: cache.read(0, len(first)), timeout=30)
    except OSError:
        pass
    else:
        assert whole == first
    assert SECRET not in repr(cache)


@pytest.mark.parametrize("where", [f"{BUCKET}/no/such/key", "no-such-bucket/key"])
def test_a_missing_bucket_or_key_is_file_not_found(moto, where):
    with pytest.raises(FileNotFoundError) as info:
        streamcache.StreamCache(f"s3://{where}", options=moto.options())
    assert f"s3://{where}" in str(info.value)
    assert SECRET not in str(info.value)


def test_an_unknown_option_key_is_refused_by_name_without_values(moto):
    moto.put("small.bin", b"small")
    options = dict(moto.options(), aws_endpont="http://typo-value.invalid")
    with pytest.raises((ValueError, OSError)) as info:
        streamcache.StreamCache(url("small.bin"), options=options)
    message = str(info.value)
    assert "aws_endpont" in message
    for value in options.values():
        if value != "true":
            assert value not in message, value


def test_four_connections_read_the_whole_object(moto, proxy_of):
    data = pattern(12 * MIB, seed=4)
    moto.put_multipart("whole.bin", data, part_size=5 * MIB)
    proxy = proxy_of(16 * MIB)
    cache = streamcache.StreamCache(
        url("whole.bin"), options=moto.options(proxy.port), connections=4, fetch_span=MIB
    )
    digest = sha256(finishes(lambda: cache.reader().read(), timeout=60))
    assert digest == sha256(data)
    assert cache.len == len(data)
    assert proxy.connections >= 4, proxy.connections


def test_file_url(tmp_path):
    path = tmp_path / "object.bin"
    path.write_bytes(data := pattern(300_000, seed=5))
    cache = streamcache.StreamCache(path.as_uri(), fetch_ahead=1000)
    assert cache.known_len == len(data)
    assert cache.read(len(data) - 10, 10) == data[-10:]
    assert cache.reader().read() == data
    with pytest.raises(FileNotFoundError):
        streamcache.StreamCache((tmp_path / "missing.bin").as_uri())
    with pytest.raises(ValueError, match="aws_region"):
        streamcache.StreamCache(path.as_uri(), options={"aws_region": "us-east-1"})


def test_memory_url_is_an_empty_store():
    with pytest.raises(FileNotFoundError) as info:
        streamcache.StreamCache("memory:///some/key")
    assert "some/key" in str(info.value)


def test_object_schemes_are_case_insensitive(tmp_path):
    path = tmp_path / "x.bin"
    path.write_bytes(b"hello")
    assert streamcache.StreamCache("FILE://" + path.as_uri()[len("file://"):]).read(0, 5) == b"hello"


def test_options_apply_to_an_object_url_only(http_server):
    http_server.files["plain.bin"] = b"plain"
    with pytest.raises(ValueError, match="object-store URL only"):
        streamcache.StreamCache(http_server.url("plain.bin"), options={"aws_region": SECRET})
    with pytest.raises(ValueError, match="URL source only"):
        streamcache.StreamCache(b"bytes", options={"aws_region": SECRET})
    with pytest.raises(ValueError, match="headers apply to an http"):
        streamcache.StreamCache("memory:///key", headers={"Authorization": SECRET})


@pytest.mark.parametrize(
    "options",
    [
        "aws_region=us-east-1",
        [("aws_region", "us-east-1")],
        {"aws_secret_access_key": SECRET.encode()},
        {"aws_secret_access_key": 42},
        {b"aws_region": "us-east-1"},
    ],
)
def test_options_of_the_wrong_type_are_type_errors(options):
    with pytest.raises(TypeError) as info:
        streamcache.StreamCache("memory:///key", options=options)
    assert SECRET not in str(info.value)
    assert "42" not in str(info.value)


def test_an_unknown_scheme_is_still_a_type_error():
    with pytest.raises(TypeError, match="object-store URL"):
        streamcache.StreamCache("ftp://example.invalid/file")
