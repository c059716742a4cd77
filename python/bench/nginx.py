"""A private nginx for the bench's URL rows, as scripts/nginx-zip runs it: Debian's nginx on
127.0.0.1 on a free port, one worker, its own prefix, config and logs in a temporary folder,
every response throttled with `limit_rate`. Its access log gives the bytes it sent.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request

STATUS = "/nginx-status"  # stub_status, not logged: how many responses are being written


def find():
    """The nginx binary, or None when it is not installed."""
    path = shutil.which("nginx")
    if path:
        return path
    return "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None


def version(binary):
    """`nginx -v`'s version, e.g. "nginx/1.22.1"."""
    out = subprocess.run([binary, "-v"], capture_output=True, text=True).stderr
    return out.strip().rsplit(" ", 1)[-1]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Nginx:
    """nginx serving the folder `www` of a fresh temporary folder (`self.www`: put the files
    there) at `rate` per connection; a context manager that stops it and removes the folder.
    """

    def __init__(self, binary, rate):
        self.binary = binary
        self.rate = rate
        self.work = tempfile.mkdtemp(prefix="streamcache-bench-")
        self.www = os.path.join(self.work, "www")
        self.log = os.path.join(self.work, "access.log")
        self.port = _free_port()
        self.proc = None
        self._mark = 0
        os.mkdir(self.www)
        # nginx's worker runs as an unprivileged user: let it read the files.
        os.chmod(self.work, 0o755)
        os.chmod(self.www, 0o755)

    def url(self, name):
        return f"http://127.0.0.1:{self.port}/{name}"

    def __enter__(self):
        try:
            self._start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _start(self):
        conf = os.path.join(self.work, "nginx.conf")
        error_log = os.path.join(self.work, "error.log")
        with open(conf, "w") as f:
            f.write(f"""daemon off;
worker_processes 1;
pid {self.work}/nginx.pid;
error_log {error_log};
events {{}}
http {{
    log_format ranges '$request_time $status "$http_range" $body_bytes_sent';
    access_log {self.log} ranges;
    server {{
        listen 127.0.0.1:{self.port};
        root {self.www};
        location / {{ limit_rate {self.rate}; }}
        location = {STATUS} {{ stub_status; access_log off; }}
    }}
}}
""")
        # In the foreground (daemon off): our child, stopped by its pid in __exit__.
        self.proc = subprocess.Popen([self.binary, "-p", self.work, "-c", conf, "-e", error_log])
        deadline = time.monotonic() + 10
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited with {self.proc.returncode}: {_tail(error_log)}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"nginx does not listen on {self.port}: {_tail(error_log)}")
                time.sleep(0.05)

    def __exit__(self, *exc):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.work, ignore_errors=True)

    def rate_bytes(self):
        """limit_rate in bytes per second (nginx's units: k and m are 1024 and 1024²)."""
        text = str(self.rate).lower()
        scale = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}.get(text[-1:], 1)
        return int(text.rstrip("kmg")) * scale

    def probe(self, name, length):
        """The seconds one request alone for the first `length` bytes of `name` takes, from the
        request to its last byte: what one connection gets at this rate."""
        request = urllib.request.Request(self.url(name), headers={"Range": f"bytes=0-{length - 1}"})
        start = time.perf_counter()
        with urllib.request.urlopen(request, timeout=60) as r:
            got = len(r.read())
        elapsed = time.perf_counter() - start
        assert got == length, (got, length)
        return elapsed

    def writing(self):
        """How many responses nginx is writing now, besides the status page's own."""
        with urllib.request.urlopen(self.url(STATUS.lstrip("/")), timeout=5) as r:
            text = r.read().decode()
        # "Reading: 0 Writing: 1 Waiting: 0": an idle keep-alive connection is only Waiting.
        fields = text.split()
        reading = int(fields[fields.index("Reading:") + 1])
        writing = int(fields[fields.index("Writing:") + 1])
        return reading + writing - 1

    def take_sent(self, timeout=60):
        """The body bytes nginx sent since the last call, once it writes no response any
        more: a download that goes on after its reader is done counts too (nginx logs a
        request when it ends). Returns (bytes, idle); idle is False when a response was still
        being written after `timeout` seconds (its bytes are not counted).
        """
        deadline = time.monotonic() + timeout
        while not (idle := self.writing() == 0) and time.monotonic() < deadline:
            time.sleep(0.05)
        with open(self.log, "rb") as f:
            f.seek(self._mark)
            lines = f.read().splitlines()
            self._mark = f.tell()
        return sum(int(line.rsplit(None, 1)[-1]) for line in lines if line.strip()), idle


def _tail(path):
    try:
        with open(path) as f:
            return f.read()[-2000:]
    except OSError:
        return "(no error log)"
