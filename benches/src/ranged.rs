//! Workload (r): random access on demand (issue 14, "Speed").
//!
//! 1. A zip of stored entries served over HTTP by [`HttpServer`] (on 127.0.0.1, honouring
//!    `Range` with `ETag`, `Content-Range` and `If-Range`, each connection throttled): the time
//!    for `zip::ZipArchive::new` plus reading the last entry, against the time the sequential
//!    fill needs to reach the end on the same cache ([`zip_streamcache`]); the bytes the server
//!    sent for the whole download; the peer stream-download given the same server
//!    ([`zip_stream_download`]).
//! 2. With no seek, `spawn_ranged` against `spawn_resumable` over the same in-process source,
//!    one reader reading the whole stream ([`fill_sequential`]).

use crate::contenders::{mem_limit, stream_download_settings};
use crate::{expected_sum, fold, fold_bufread, Generator, Setup, CHUNK};
use std::io::{self, BufRead, BufReader, Read, Seek, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};
use stream_download::http::reqwest;
use stream_download::storage::temp::TempStorageProvider;
use stream_download::StreamDownload;
use streamcache::StreamCache;

/// streamcache's default `fetch_span` (DESIGN.md, "Random access on demand"): the bytes
/// target of (r) is `len + 2 × FETCH_SPAN`.
pub const FETCH_SPAN: u64 = 4 << 20;

// --- the zip -------------------------------------------------------------------------------

/// A zip archive of stored (uncompressed) entries, in memory.
#[derive(Debug, Clone)]
pub struct StoredZip {
    /// The archive's bytes.
    pub bytes: Arc<Vec<u8>>,
    /// How many entries.
    pub entries: usize,
}

/// A zip of `total / entry` stored entries of `entry` pseudo-random bytes each (the
/// [`Generator`]'s stream, cut in pieces: no two entries alike), at least one entry.
pub fn stored_zip(total: u64, entry: u64) -> io::Result<StoredZip> {
    let entry = entry.max(1);
    let entries = (total / entry).max(1);
    let capacity = usize::try_from(entries * (entry + 256) + 4096)
        .map_err(|_| io::Error::other("the zip does not fit the address space"))?;
    let mut zip = zip::ZipWriter::new(io::Cursor::new(Vec::with_capacity(capacity)));
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let mut source = Generator::new(entries * entry);
    let mut buf = vec![0u8; CHUNK];
    for i in 0..entries {
        zip.start_file(format!("entry-{i:04}.bin"), stored)
            .map_err(io::Error::other)?;
        let mut left = entry;
        while left > 0 {
            let n = usize::try_from(left).map_or(CHUNK, |l| l.min(CHUNK));
            source.read_exact(&mut buf[..n])?;
            zip.write_all(&buf[..n])?;
            left -= n as u64;
        }
    }
    let bytes = zip.finish().map_err(io::Error::other)?.into_inner();
    Ok(StoredZip {
        bytes: Arc::new(bytes),
        entries: usize::try_from(entries).expect("entries fit the address space"),
    })
}

// --- the HTTP server -------------------------------------------------------------------------

/// What the server's threads share.
#[derive(Debug)]
struct Served {
    body: Arc<Vec<u8>>,
    etag: String,
    /// Bytes per second per connection; `f64::INFINITY`: no throttle.
    rate: f64,
    /// Body bytes written to the sockets (headers not counted).
    sent: AtomicU64,
    requests: AtomicU64,
    /// Each request's `Range` (or `-`) and how it was answered, since the last reset.
    log: Mutex<Vec<String>>,
    /// Connections being served.
    open: AtomicUsize,
    stop: AtomicBool,
}

/// An HTTP/1.1 server on 127.0.0.1 serving one body at every path: `Range` (`bytes=a-b`,
/// `bytes=a-`, `bytes=-n`) answered with `206` and `Content-Range`, a strong `ETag`, `If-Range`
/// honoured (a validator that differs gets the whole body, `200`), `416` past the end. One
/// request per connection (`Connection: close`), a thread per connection, each connection's
/// body throttled to `rate`. Counts the body bytes it sends.
#[derive(Debug)]
pub struct HttpServer {
    addr: SocketAddr,
    served: Arc<Served>,
    accept: Option<thread::JoinHandle<()>>,
}

impl HttpServer {
    /// Serves `body` at `rate` bytes per second per connection (`f64::INFINITY`: no throttle).
    pub fn start(body: Arc<Vec<u8>>, rate: f64) -> io::Result<HttpServer> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let etag = format!(
            "\"zip-{:x}-{:x}\"",
            body.len(),
            fold(0, &body[..body.len().min(1 << 20)])
        );
        let served = Arc::new(Served {
            body,
            etag,
            rate,
            sent: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            log: Mutex::new(Vec::new()),
            open: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        });
        let shared = Arc::clone(&served);
        let accept = thread::Builder::new()
            .name("bench-http".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if shared.stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(conn) = conn else { continue };
                    let served = Arc::clone(&shared);
                    served.open.fetch_add(1, Ordering::SeqCst);
                    let spawned =
                        thread::Builder::new()
                            .name("bench-http-conn".into())
                            .spawn(move || {
                                // A client that goes away mid-body is not an error here.
                                let _ = serve(&served, conn);
                                served.open.fetch_sub(1, Ordering::SeqCst);
                            });
                    if spawned.is_err() {
                        shared.open.fetch_sub(1, Ordering::SeqCst);
                    }
                }
            })?;
        Ok(HttpServer {
            addr,
            served,
            accept: Some(accept),
        })
    }

    /// The URL of the body.
    pub fn url(&self) -> String {
        format!("http://{}/archive.zip", self.addr)
    }

    /// Body bytes sent since the last [`reset`](Self::reset).
    pub fn sent(&self) -> u64 {
        self.served.sent.load(Ordering::SeqCst)
    }

    /// Requests since the last [`reset`](Self::reset).
    pub fn requests(&self) -> u64 {
        self.served.requests.load(Ordering::SeqCst)
    }

    /// Sets the counters to 0.
    pub fn reset(&self) {
        self.served.sent.store(0, Ordering::SeqCst);
        self.served.requests.store(0, Ordering::SeqCst);
        self.served.log.lock().unwrap().clear();
    }

    /// Each request since the last [`reset`](Self::reset): its `Range` header (`-`: none) and
    /// the status it got.
    pub fn log(&self) -> Vec<String> {
        self.served.log.lock().unwrap().clone()
    }

    /// Waits until no connection is being served (at most `timeout`); whether none is.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.served.open.load(Ordering::SeqCst) > 0 {
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(5));
        }
        true
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.served.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(self.addr);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

/// What a request's `Range` asks for, if one range of the body.
fn parse_range(value: &str, len: u64) -> Option<Result<Range<u64>, ()>> {
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None; // several ranges: answered with the whole body
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    let range = if a.is_empty() {
        let n: u64 = b.parse().ok()?;
        len.saturating_sub(n)..len
    } else {
        let start: u64 = a.parse().ok()?;
        let end = if b.is_empty() {
            len
        } else {
            b.parse::<u64>().ok()?.saturating_add(1).min(len)
        };
        start..end
    };
    Some(if range.start < range.end {
        Ok(range)
    } else {
        Err(())
    })
}

/// Serves one request on `conn`.
fn serve(served: &Served, conn: TcpStream) -> io::Result<()> {
    conn.set_nodelay(true)?;
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut head = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    head.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_owned();
    let (mut range, mut if_range) = (None, None);
    loop {
        line.clear();
        if head.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            match name.trim().to_ascii_lowercase().as_str() {
                "range" => range = Some(value.trim().to_owned()),
                "if-range" => if_range = Some(value.trim().to_owned()),
                _ => {}
            }
        }
    }
    served.requests.fetch_add(1, Ordering::SeqCst);
    let asked = format!(
        "{method} {}{}",
        range.as_deref().unwrap_or("-"),
        if if_range.is_some() {
            " (If-Range)"
        } else {
            ""
        }
    );
    let mut conn = conn;
    let len = served.body.len() as u64;
    if method != "GET" && method != "HEAD" {
        conn.write_all(
            b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )?;
        return Ok(());
    }
    // If-Range with another validator: the whole body, as a 200.
    let range = range
        .filter(|_| if_range.as_deref().is_none_or(|v| v == served.etag))
        .and_then(|r| parse_range(&r, len));
    let common = format!(
        "ETag: {}\r\nAccept-Ranges: bytes\r\nContent-Type: application/zip\r\nConnection: close\r\n",
        served.etag
    );
    let status = match &range {
        Some(Err(())) => "416",
        Some(Ok(_)) => "206",
        None => "200",
    };
    served
        .log
        .lock()
        .unwrap()
        .push(format!("{asked}: {status}"));
    let body = match range {
        Some(Err(())) => {
            let head = format!(
                "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{len}\r\n\
                 Content-Length: 0\r\n{common}\r\n"
            );
            conn.write_all(head.as_bytes())?;
            return Ok(());
        }
        Some(Ok(r)) => {
            let head = format!(
                "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {}-{}/{len}\r\n\
                 Content-Length: {}\r\n{common}\r\n",
                r.start,
                r.end - 1,
                r.end - r.start
            );
            conn.write_all(head.as_bytes())?;
            r
        }
        None => {
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n{common}\r\n");
            conn.write_all(head.as_bytes())?;
            0..len
        }
    };
    if method == "GET" {
        write_paced(served, &mut conn, body)?;
    }
    conn.flush()?;
    let _ = conn.shutdown(Shutdown::Write);
    Ok(())
}

/// Writes `served.body[range]` in 64 KiB pieces, none before its time at `served.rate`.
fn write_paced(served: &Served, conn: &mut TcpStream, range: Range<u64>) -> io::Result<()> {
    let start = Instant::now();
    let (mut pos, end) = (range.start as usize, range.end as usize);
    let mut sent = 0u64;
    while pos < end {
        if served.stop.load(Ordering::Relaxed) {
            return Err(io::Error::other("the server stops"));
        }
        let n = CHUNK.min(end - pos);
        conn.write_all(&served.body[pos..pos + n])?;
        pos += n;
        sent += n as u64;
        served.sent.fetch_add(n as u64, Ordering::SeqCst);
        if served.rate.is_finite() {
            let due = start + Duration::from_secs_f64(sent as f64 / served.rate);
            let now = Instant::now();
            if due > now {
                thread::sleep(due - now);
            }
        }
    }
    Ok(())
}

// --- 1. the zip over HTTP --------------------------------------------------------------------

/// One run of (r)'s zip measurement.
#[derive(Debug, Clone)]
pub struct ZipRun {
    /// From the start of the download to `ZipArchive::new` returned and the last entry read.
    pub open_and_last: Duration,
    /// From the start of the download to every byte present (`wait_complete`); streamcache only.
    pub complete: Option<Duration>,
    /// Body bytes the server sent for the whole run (until every connection closed).
    pub sent: u64,
    /// Requests the server answered.
    pub requests: u64,
    /// Each request's `Range` and status ([`HttpServer::log`]).
    pub log: Vec<String>,
}

/// Opens the archive over `source`, reads its last entry fully and checks it against the
/// served bytes.
fn open_and_read_last<R: Read + Seek>(source: R, zip: &StoredZip) -> io::Result<()> {
    let mut archive = zip::ZipArchive::new(source).map_err(io::Error::other)?;
    if archive.len() != zip.entries {
        return Err(io::Error::other(format!(
            "{} entries listed, {} written",
            archive.len(),
            zip.entries
        )));
    }
    let mut entry = archive
        .by_index(archive.len() - 1)
        .map_err(io::Error::other)?;
    let size = entry.size();
    let data_start = entry
        .data_start()
        .ok_or_else(|| io::Error::other("the last entry's data start is unknown"))?;
    // The zip reader checks the entry's CRC at its end; the fold checks the bytes again.
    let mut buf = vec![0u8; CHUNK];
    let (mut got, mut sum) = (0u64, 0u64);
    loop {
        match entry.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                got += n as u64;
                sum = fold(sum, &buf[..n]);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let start = usize::try_from(data_start).map_err(io::Error::other)?;
    let end = usize::try_from(data_start + size).map_err(io::Error::other)?;
    if got != size || zip.bytes.get(start..end).map(|b| fold(0, b)) != Some(sum) {
        return Err(io::Error::other(format!(
            "the last entry read back wrong ({got} of {size} bytes)"
        )));
    }
    Ok(())
}

/// The rest of a run once the reads are done: every connection closed, the counters read.
fn finish(server: &HttpServer, open_and_last: Duration, complete: Option<Duration>) -> ZipRun {
    server.wait_idle(Duration::from_secs(30));
    ZipRun {
        open_and_last,
        complete,
        sent: server.sent(),
        requests: server.requests(),
        log: server.log(),
    }
}

/// streamcache over the served zip: `spawn(url)` makes the cache (e.g.
/// `|url| StreamCache::builder().spawn_url(url)`); `ZipArchive::new(cache.reader())` and the
/// last entry read fully, then `wait_complete` on the same cache.
pub fn zip_streamcache(
    server: &HttpServer,
    zip: &StoredZip,
    spawn: impl FnOnce(&str) -> io::Result<StreamCache>,
) -> io::Result<ZipRun> {
    server.wait_idle(Duration::from_secs(30));
    server.reset();
    let url = server.url();
    let start = Instant::now();
    let cache = spawn(&url)?;
    open_and_read_last(cache.reader(), zip)?;
    let open_and_last = start.elapsed();
    let len = cache.wait_complete()?;
    let complete = start.elapsed();
    if len != zip.bytes.len() as u64 {
        return Err(io::Error::other(format!("complete at {len} bytes")));
    }
    drop(cache);
    Ok(finish(server, open_and_last, Some(complete)))
}

/// streamcache's URL source as the library builds it: `Builder::spawn_url`, defaults.
pub fn spawn_url(url: &str) -> io::Result<StreamCache> {
    StreamCache::builder().spawn_url(url)
}

/// stream-download over the served zip (its reqwest HTTP source, temp-file storage, the
/// settings of workload (a)): `ZipArchive::new` over the download and the last entry read
/// fully. `complete` is `None`: the download is dropped then.
pub fn zip_stream_download(
    server: &HttpServer,
    zip: &StoredZip,
    setup: &Setup,
) -> io::Result<ZipRun> {
    server.wait_idle(Duration::from_secs(30));
    server.reset();
    let url = reqwest::Url::parse(&server.url()).map_err(io::Error::other)?;
    // Built with streamcache's `object-store` (as `--all-features` does), reqwest has rustls
    // without a provider: its client needs one installed first.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let start = Instant::now();
    let download = rt
        .block_on(StreamDownload::new_http(
            url,
            TempStorageProvider::new_in(&setup.temp_dir),
            stream_download_settings(),
        ))
        .map_err(|e| io::Error::other(format!("stream-download: {e}")))?;
    open_and_read_last(download, zip)?;
    let open_and_last = start.elapsed();
    drop(rt); // the download (dropped by open_and_read_last) and its task
    Ok(finish(server, open_and_last, None))
}

// --- 2. no seek: spawn_ranged against spawn_resumable -----------------------------------------

/// Which way the source goes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fill {
    /// `Builder::spawn_ranged(len, open(range))`.
    Ranged,
    /// `Builder::spawn_resumable(open(offset))` with `expected_len(len)`.
    Resumable,
}

impl Fill {
    pub const ALL: [Fill; 2] = [Fill::Ranged, Fill::Resumable];

    pub fn name(self) -> &'static str {
        match self {
            Fill::Ranged => "spawn_ranged",
            Fill::Resumable => "spawn_resumable",
        }
    }
}

/// The generated stream of `len` bytes from `offset` on.
fn generator_from(len: u64, offset: u64) -> io::Result<Generator> {
    let mut source = Generator::new(len);
    // Only a break or a fetch asks for an offset: none does in the runs here.
    io::copy(&mut (&mut source).take(offset), &mut io::sink())?;
    Ok(source)
}

/// A cache over the generated stream of `setup.len` bytes, in memory (`memory: true`, the
/// whole stream fits `memory_limit`) or spilling past `setup.spill_limit`.
pub fn ranged_cache(fill: Fill, setup: &Setup, memory: bool) -> io::Result<StreamCache> {
    let len = setup.len;
    let builder = StreamCache::builder()
        .memory_limit(if memory {
            mem_limit(setup)
        } else {
            setup.spill_limit
        })
        .temp_dir(&setup.temp_dir);
    match fill {
        Fill::Ranged => builder.spawn_ranged(len, move |range: Range<u64>| {
            generator_from(range.end, range.start)
        }),
        Fill::Resumable => builder
            .expected_len(len)
            .spawn_resumable(move |offset| generator_from(len, offset)),
    }
}

/// One reader reads the whole stream (zero-copy, `fill_buf`) and folds every byte: the time
/// from spawn to the last byte folded; the checksum checked.
pub fn fill_sequential(fill: Fill, setup: &Setup, memory: bool) -> io::Result<Duration> {
    let start = Instant::now();
    let cache = ranged_cache(fill, setup, memory)?;
    let sum = fold_bufread(cache.reader())?;
    let elapsed = start.elapsed();
    if sum != expected_sum(setup.len) {
        return Err(io::Error::other(format!(
            "{}: the reader's checksum differs from the stream's",
            fill.name()
        )));
    }
    Ok(elapsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse() {
        assert_eq!(parse_range("bytes=0-", 10), Some(Ok(0..10)));
        assert_eq!(parse_range("bytes=2-4", 10), Some(Ok(2..5)));
        assert_eq!(parse_range("bytes=2-40", 10), Some(Ok(2..10)));
        assert_eq!(parse_range("bytes=-3", 10), Some(Ok(7..10)));
        assert_eq!(parse_range("bytes=10-", 10), Some(Err(())));
        assert_eq!(parse_range("bytes=0-1,4-5", 10), None);
        assert_eq!(parse_range("items=0-1", 10), None);
    }

    /// The whole measurement on a small zip, unthrottled: every read checked, every byte of
    /// the download sent at least once (no timing checked).
    #[test]
    fn zip_runs_read_right() {
        let zip = stored_zip(6 << 20, 1 << 20).unwrap();
        assert_eq!(zip.entries, 6);
        let len = zip.bytes.len() as u64;
        let server = HttpServer::start(Arc::clone(&zip.bytes), f64::INFINITY).unwrap();
        let run = zip_streamcache(&server, &zip, spawn_url).unwrap();
        assert!(run.complete.is_some());
        assert!(run.sent >= len, "{} of {len} bytes sent", run.sent);
        assert!(run.log[0].starts_with("GET bytes=0-: 206"), "{:?}", run.log);
        let run = zip_stream_download(&server, &zip, &Setup::new(len)).unwrap();
        assert!(run.requests >= 1);
    }

    #[test]
    fn if_range_with_another_validator_gets_the_whole_body() {
        let body = Arc::new((0..=255u8).cycle().take(1000).collect::<Vec<u8>>());
        let server = HttpServer::start(Arc::clone(&body), f64::INFINITY).unwrap();
        let get = |headers: &str| {
            let mut conn = TcpStream::connect(server.addr).unwrap();
            write!(conn, "GET / HTTP/1.1\r\nHost: x\r\n{headers}\r\n").unwrap();
            let mut answer = Vec::new();
            conn.read_to_end(&mut answer).unwrap();
            String::from_utf8_lossy(&answer).into_owned()
        };
        let partial = get("Range: bytes=10-19\r\n");
        assert!(partial.starts_with("HTTP/1.1 206"), "{partial}");
        assert!(
            partial.contains("Content-Range: bytes 10-19/1000\r\n"),
            "{partial}"
        );
        let etag = &server.served.etag;
        let same = get(&format!("Range: bytes=10-19\r\nIf-Range: {etag}\r\n"));
        assert!(same.starts_with("HTTP/1.1 206"), "{same}");
        let other = get("Range: bytes=10-19\r\nIf-Range: \"other\"\r\n");
        assert!(other.starts_with("HTTP/1.1 200"), "{other}");
        assert!(other.contains("Content-Length: 1000\r\n"), "{other}");
        let past = get("Range: bytes=1000-\r\n");
        assert!(past.starts_with("HTTP/1.1 416"), "{past}");
        assert!(past.contains("Content-Range: bytes */1000\r\n"), "{past}");
    }
}
