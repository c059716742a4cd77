"""moto's S3 server for the bench's S3 rows, as benches/src/object_store.rs runs it for the Rust
report: `moto_server -H 127.0.0.1 -p PORT` (scripts/object-servers installs it), our child,
behind a counting TCP proxy on 127.0.0.1 that every client is sent to, so that the bytes a run
cost the server are counted on the wire, whatever the client asked for. Nothing here talks to
anything but 127.0.0.1.
"""

import os
import pathlib
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[2]
# moto accepts any credentials: static ones, so that nothing of the machine's is looked up.
KEY = "testing"
SECRET = "testing"
REGION = "us-east-1"


def find():
    """moto_server: $MOTO_SERVER (or $STREAMCACHE_MOTO_SERVER, as the Rust report and the tests
    read it), else target/object-servers/venv/bin/moto_server, else on PATH; None if none."""
    for name in ("MOTO_SERVER", "STREAMCACHE_MOTO_SERVER"):
        if os.environ.get(name):
            return os.environ[name]
    path = ROOT / "target/object-servers/venv/bin/moto_server"
    return str(path) if os.access(path, os.X_OK) else shutil.which("moto_server")


def version(binary):
    """moto's version, from the interpreter of moto_server's own script (its venv), or
    "unknown"."""
    try:
        with open(binary) as f:
            shebang = f.readline()
        if not shebang.startswith("#!"):
            return "unknown"
        out = subprocess.run([*shebang[2:].split(), "-c", "import moto; print(moto.__version__)"],
                             capture_output=True, text=True, timeout=60)
        return out.stdout.strip() or "unknown"
    except (OSError, UnicodeDecodeError, subprocess.SubprocessError):
        return "unknown"


def clear_aws_env():
    """Removes every AWS_* variable from this process (object_store and botocore read them
    under the options given), and points botocore's config and credentials files at
    /dev/null: only the bench's own endpoint and credentials are used. Returns how many
    variables were set."""
    names = [k for k in os.environ if k.startswith("AWS_")]
    for k in names:
        del os.environ[k]
    os.environ["AWS_CONFIG_FILE"] = os.devnull
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    return len(names)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proxy:
    """A TCP relay on 127.0.0.1 to `127.0.0.1:upstream`: two threads per connection copying
    64 KiB at a time, counting the bytes the server sends back."""

    def __init__(self, upstream):
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._lock = threading.Lock()
        self._sent = 0
        self._mark = 0
        self._last = time.monotonic()  # when a byte last came back
        self._sockets = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            try:
                server = socket.create_connection(("127.0.0.1", self.upstream))
            except OSError:
                client.close()  # moto is gone: the client sees the connection end
                continue
            for s in (client, server):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._sockets += [client, server]
            threading.Thread(target=self._copy, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._copy, args=(server, client, True), daemon=True).start()

    def _copy(self, src, dst, counted):
        try:
            while data := src.recv(64 << 10):
                if counted:
                    with self._lock:
                        self._sent += len(data)
                        self._last = time.monotonic()
                dst.sendall(data)
        except OSError:
            pass
        finally:
            # Pass the end on (a half-close), so that the other side's recv returns too.
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def take(self, quiet=0.3, timeout=60):
        """The bytes the server sent since the last call, once nothing has come back for
        `quiet` s (a download that goes on after its reader is done counts too), or after
        `timeout` s."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                idle = time.monotonic() - self._last
                sent = self._sent
            if idle >= quiet or time.monotonic() > deadline:
                break
            time.sleep(quiet - idle if idle < quiet else 0.05)
        n, self._mark = sent - self._mark, sent
        return n

    def close(self):
        self.listener.close()
        with self._lock:
            for s in self._sockets:
                s.close()


class Moto:
    """moto_server on a free port of 127.0.0.1 and a Proxy in front of it (`endpoint`, what
    every client is given); a context manager that stops both."""

    def __init__(self, binary):
        self.binary = binary
        self.port = _free_port()
        self.proc = None
        self.proxy = None

    def __enter__(self):
        try:
            self._start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        self.proxy = Proxy(self.port)
        self.endpoint = f"http://127.0.0.1:{self.proxy.port}"
        return self

    def _start(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        self.proc = subprocess.Popen([self.binary, "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto_server exited with {self.proc.returncode}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=1).close()
                return
            except urllib.error.HTTPError:
                return  # an error page: it answers
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"moto_server does not answer on {self.port} within 60 s")
                time.sleep(0.1)

    def __exit__(self, *exc):
        if self.proxy is not None:
            self.proxy.close()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def options(self):
        """StreamCache's object_store options for this server (through the proxy)."""
        return {
            "aws_endpoint": self.endpoint,
            "aws_allow_http": "true",
            "aws_region": REGION,
            "aws_access_key_id": KEY,
            "aws_secret_access_key": SECRET,
        }

    def filesystem(self):
        """A new s3fs.S3FileSystem of this server (through the proxy; not s3fs's cached
        instance, so that every run builds its own, as a StreamCache does)."""
        import s3fs

        return s3fs.S3FileSystem(key=KEY, secret=SECRET, skip_instance_cache=True,
                                 client_kwargs={"endpoint_url": self.endpoint, "region_name": REGION})

    def upload(self, bucket, key, data, part_size):
        """Creates `bucket` and puts `data` as `key` with boto3 in a multipart upload of
        `part_size` parts, straight to moto (not counted); returns the parts' count."""
        import boto3

        s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{self.port}", region_name=REGION,
                          aws_access_key_id=KEY, aws_secret_access_key=SECRET)
        s3.create_bucket(Bucket=bucket)
        upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        view = memoryview(data)
        parts = []
        for number, start in enumerate(range(0, len(data), part_size), 1):
            answer = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number,
                                    Body=view[start : start + part_size].tobytes())
            parts.append({"ETag": answer["ETag"], "PartNumber": number})
        s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id,
                                     MultipartUpload={"Parts": parts})
        return len(parts)
