//! Workload (s3): an object in S3, on moto's server (issue 21, "Speed").
//!
//! [`Moto`] starts `moto_server -H 127.0.0.1 -p PORT` (PyPI `moto[server]`, as
//! scripts/object-servers installs it under target/object-servers/venv) and a [`Proxy`] in front
//! of it: a small TCP relay on 127.0.0.1 that counts the bytes moto sends back, so that the bytes
//! a run cost the server are counted on the wire, whatever the reads asked for. Every client,
//! streamcache and s3fs alike, talks to moto through it.
//!
//! The object is uploaded once with boto3 in a multipart upload (python/bench/object_store.py,
//! run by the venv's Python, which also runs s3fs's reads). streamcache reads it with
//! `Builder::spawn_object_url("s3://…", options)`: an explicit endpoint, static credentials,
//! region us-east-1, `aws_allow_http`; every `AWS_*` variable is removed from the process
//! first ([`clear_aws_env`]), so nothing of the machine's own configuration is used.

use crate::{fold, StoredZip, CHUNK};
use sha2::{Digest, Sha256};
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};
use streamcache::StreamCache;

/// The static credentials moto is given (it accepts any).
pub const S3_KEY: &str = "streamcache-bench";
pub const S3_SECRET: &str = "streamcache-bench-secret";
pub const S3_BUCKET: &str = "streamcache-bench";
pub const S3_OBJECT: &str = "archive.zip";

/// python/bench/object_store.py.
pub fn object_store_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../python/bench/object_store.py")
}

/// `$STREAMCACHE_MOTO_SERVER`, else target/object-servers/venv/bin/moto_server.
pub fn moto_server_path() -> PathBuf {
    std::env::var_os("STREAMCACHE_MOTO_SERVER").map_or_else(
        || {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../target/object-servers/venv/bin/moto_server")
        },
        PathBuf::from,
    )
}

/// Removes every `AWS_*` variable from this process's environment (object_store's S3 builder
/// reads them under the options given): the bench uses only its own endpoint and credentials.
/// Returns how many were removed.
pub fn clear_aws_env() -> usize {
    let names: Vec<_> = std::env::vars_os()
        .filter_map(|(k, _)| {
            k.to_str()
                .filter(|k| k.starts_with("AWS_"))
                .map(str::to_owned)
        })
        .collect();
    for name in &names {
        std::env::remove_var(name);
    }
    names.len()
}

/// A port free on 127.0.0.1 just now.
fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

// --- the proxy -------------------------------------------------------------------------------

// The counting proxy the server tests use too.
#[path = "../../tests/common/proxy.rs"]
mod proxy;
pub use proxy::{Proxy, Shape};

// --- moto ------------------------------------------------------------------------------------

/// moto's S3 server, our child (killed on drop), and the counting proxy in front of it.
#[derive(Debug)]
pub struct Moto {
    child: Child,
    pub proxy: Proxy,
    /// The Python of moto's venv (with boto3 and s3fs).
    pub python: PathBuf,
}

impl Moto {
    /// Starts `binary -H 127.0.0.1 -p PORT`; returns once it answers.
    pub fn start(binary: &Path) -> io::Result<Moto> {
        let python = binary.with_file_name("python");
        let port = free_port()?;
        let mut command = Command::new(binary);
        command
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (k, _) in std::env::vars_os() {
            if k.to_str().is_some_and(|k| k.starts_with("AWS_")) {
                command.env_remove(k);
            }
        }
        let mut child = command.spawn()?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait()? {
                return Err(io::Error::other(format!(
                    "moto_server exited with {status}"
                )));
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(io::Error::other(format!(
                    "moto_server does not listen on {port}"
                )));
            }
            thread::sleep(Duration::from_millis(100));
        }
        let proxy = Proxy::start(port, Shape::default())?;
        Ok(Moto {
            child,
            proxy,
            python,
        })
    }

    /// The endpoint every client is given: the proxy's.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.proxy.port())
    }

    /// `s3://BUCKET/OBJECT`.
    pub fn url(&self) -> String {
        format!("s3://{S3_BUCKET}/{S3_OBJECT}")
    }

    /// streamcache's options for this server: the endpoint, static credentials, us-east-1,
    /// plain HTTP.
    pub fn options(&self) -> Vec<(&'static str, String)> {
        vec![
            ("aws_endpoint", self.endpoint()),
            ("aws_allow_http", "true".to_owned()),
            ("aws_access_key_id", S3_KEY.to_owned()),
            ("aws_secret_access_key", S3_SECRET.to_owned()),
            ("aws_region", "us-east-1".to_owned()),
        ]
    }

    /// Runs python/bench/object_store.py `command` with the endpoint, the credentials and the
    /// object, then `extra`; its stdout's words.
    pub fn script(&self, command: &str, extra: &[&str]) -> io::Result<Vec<String>> {
        let mut cmd = Command::new(&self.python);
        cmd.arg(object_store_script())
            .arg(command)
            .args([&self.endpoint(), S3_KEY, S3_SECRET, S3_BUCKET, S3_OBJECT])
            .args(extra)
            .stdin(Stdio::null());
        for (k, _) in std::env::vars_os() {
            if k.to_str().is_some_and(|k| k.starts_with("AWS_")) {
                cmd.env_remove(k);
            }
        }
        let out = cmd.output()?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            return Err(io::Error::other(format!(
                "object_store.py {command}: {}",
                err.lines().last().unwrap_or("").trim()
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_owned)
            .collect())
    }

    /// Writes `zip` to a file in `dir` and uploads it with boto3 in parts of `part` bytes;
    /// returns (ETag, parts) as moto gave them.
    pub fn upload(&self, zip: &StoredZip, dir: &Path, part: u64) -> io::Result<(String, usize)> {
        let mut file = tempfile::Builder::new()
            .prefix("streamcache-bench-s3-")
            .tempfile_in(dir)?;
        file.write_all(&zip.bytes)?;
        file.flush()?;
        let path = file.path().to_string_lossy().into_owned();
        let words = self.script("upload", &[&path, &part.to_string()])?;
        match words.as_slice() {
            [etag, parts] => Ok((etag.clone(), parts.parse().map_err(io::Error::other)?)),
            _ => Err(io::Error::other(format!("upload printed {words:?}"))),
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// --- the runs --------------------------------------------------------------------------------

/// One timed run and what the server sent for it (through the proxy).
#[derive(Debug, Clone, Copy)]
pub struct S3Run {
    pub time: Duration,
    /// What moto sent for the run, until the proxy was quiet after it.
    pub sent: u64,
    /// What moto had sent when the clock stopped.
    pub sent_by_end: u64,
}

/// How long the proxy must see no byte before a run's count is taken.
const QUIET: Duration = Duration::from_millis(300);
const DRAIN: Duration = Duration::from_secs(60);

/// The SHA-256 of the zip's last entry (to check every contender's read).
pub fn last_entry_sha256(zip: &StoredZip) -> io::Result<String> {
    let mut archive =
        zip::ZipArchive::new(io::Cursor::new(zip.bytes.as_slice())).map_err(io::Error::other)?;
    let last = archive
        .len()
        .checked_sub(1)
        .ok_or_else(|| io::Error::other("empty zip"))?;
    let mut entry = archive.by_index(last).map_err(io::Error::other)?;
    let mut bytes = Vec::new();
    entry.read_to_end(&mut bytes)?;
    Ok(sha256_hex(&bytes))
}

/// The SHA-256 of the whole zip.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Waits for the proxy to be quiet and returns its count, for the start of a run.
fn quiet_mark(moto: &Moto) -> u64 {
    moto.proxy.settled(QUIET, DRAIN)
}

/// streamcache: `fetch_ahead(gap).spawn_object_url`, `ZipArchive::new(cache.reader())` (the
/// entry list) and the last entry read whole (its SHA-256 checked against `last_sha256`,
/// untimed); the cache dropped at once. `sent`: what moto sent from the spawn until the
/// proxy has been quiet after the drop.
pub fn streamcache_zip(
    moto: &Moto,
    gap: u64,
    temp_dir: &Path,
    entries: usize,
    last_sha256: &str,
) -> io::Result<S3Run> {
    let before = quiet_mark(moto);
    let owned = moto.options();
    let options: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let start = Instant::now();
    let cache = StreamCache::builder()
        .fetch_ahead(gap)
        .defer_fill(true) // as s3fs: only what is read, until a read needs the front
        .temp_dir(temp_dir)
        .spawn_object_url(&moto.url(), &options)?;
    let mut archive = zip::ZipArchive::new(cache.reader()).map_err(io::Error::other)?;
    let listed = archive.len();
    let mut last = Vec::new();
    if let Some(i) = listed.checked_sub(1) {
        archive
            .by_index(i)
            .map_err(io::Error::other)?
            .read_to_end(&mut last)?;
    }
    let time = start.elapsed();
    let sent_by_end = moto.proxy.sent() - before;
    drop(archive);
    drop(cache);
    let sent = quiet_mark(moto) - before;
    if listed != entries {
        return Err(io::Error::other(format!(
            "{listed} entries listed, {entries} written"
        )));
    }
    let got = sha256_hex(&last);
    if got != last_sha256 {
        return Err(io::Error::other(format!(
            "the last entry's SHA-256 is {got}, not {last_sha256}"
        )));
    }
    Ok(S3Run {
        time,
        sent,
        sent_by_end,
    })
}

/// streamcache: `connections(n).fetch_span(span).spawn_object_url` to `wait_complete`; then,
/// untimed, the whole stream's SHA-256 checked against `sha256`.
pub fn streamcache_whole(
    moto: &Moto,
    n: usize,
    span: u64,
    temp_dir: &Path,
    sha256: &str,
) -> io::Result<S3Run> {
    let before = quiet_mark(moto);
    let owned = moto.options();
    let options: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let start = Instant::now();
    let cache = StreamCache::builder()
        .connections(n)
        .fetch_span(span)
        .temp_dir(temp_dir)
        .spawn_object_url(&moto.url(), &options)?;
    let len = cache.wait_complete()?;
    let time = start.elapsed();
    let sent_by_end = moto.proxy.sent() - before;
    let mut reader = cache.reader();
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut sum = 0u64;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        sum = fold(sum, &buf[..n]);
        hasher.update(&buf[..n]);
    }
    std::hint::black_box(sum);
    drop(reader);
    drop(cache);
    let sent = quiet_mark(moto) - before;
    let got = hex(&hasher.finalize());
    if got != sha256 {
        return Err(io::Error::other(format!(
            "the stream ({len} bytes) has SHA-256 {got}, not {sha256}"
        )));
    }
    Ok(S3Run {
        time,
        sent,
        sent_by_end,
    })
}

/// s3fs: `zipfile.ZipFile(fs.open(path))`, `namelist()` and the last entry read (timed in
/// Python, from `S3FileSystem(...)` on); its SHA-256 checked against `last_sha256`.
pub fn s3fs_zip(moto: &Moto, entries: usize, last_sha256: &str) -> io::Result<S3Run> {
    let before = quiet_mark(moto);
    let words = moto.script("zip", &[])?;
    let sent = quiet_mark(moto) - before;
    let [seconds, listed, sha] = words.as_slice() else {
        return Err(io::Error::other(format!("s3fs zip printed {words:?}")));
    };
    if listed.parse::<usize>().ok() != Some(entries) {
        return Err(io::Error::other(format!(
            "s3fs: {listed} entries listed, {entries} written"
        )));
    }
    if sha != last_sha256 {
        return Err(io::Error::other(format!(
            "s3fs: the last entry's SHA-256 is {sha}, not {last_sha256}"
        )));
    }
    Ok(S3Run {
        time: seconds_of(seconds)?,
        sent,
        sent_by_end: sent,
    })
}

/// s3fs: `fs.cat(path)` (timed in Python, from `S3FileSystem(...)` on); its SHA-256 checked.
pub fn s3fs_cat(moto: &Moto, len: u64, sha256: &str) -> io::Result<S3Run> {
    let before = quiet_mark(moto);
    let words = moto.script("cat", &[])?;
    let sent = quiet_mark(moto) - before;
    let [seconds, got_len, sha] = words.as_slice() else {
        return Err(io::Error::other(format!("s3fs cat printed {words:?}")));
    };
    if got_len.parse::<u64>().ok() != Some(len) || sha != sha256 {
        return Err(io::Error::other(format!(
            "s3fs cat: {got_len} bytes with SHA-256 {sha}, not {len} with {sha256}"
        )));
    }
    Ok(S3Run {
        time: seconds_of(seconds)?,
        sent,
        sent_by_end: sent,
    })
}

fn seconds_of(text: &str) -> io::Result<Duration> {
    let s: f64 = text
        .parse()
        .map_err(|e| io::Error::other(format!("{text:?} is not seconds: {e}")))?;
    Ok(Duration::from_secs_f64(s))
}

/// The version of `python -c "import s3fs"`, or why not.
pub fn s3fs_version(python: &Path) -> Result<String, String> {
    let out = Command::new(python)
        .args([
            "-c",
            "import s3fs, botocore; print(s3fs.__version__, botocore.__version__)",
        ])
        .output()
        .map_err(|e| format!("{}: {e}", python.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} cannot import s3fs ({}/bin/pip install s3fs)",
            python.display(),
            python
                .parent()
                .and_then(Path::parent)
                .map_or_else(String::new, |p| p.display().to_string())
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}
