//! A scriptable HTTP/1.1 server on 127.0.0.1 for the `spawn_url` tests: every request is
//! logged (path and headers), and a handler decides the answer (status, headers, body), and
//! how its body is sent: whole, in paced pieces, cut short, stalled, or held at a gate.
//! [`resource`] answers as a server that honours `Range` and `If-Range` does.
#![allow(dead_code)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::Duration;

/// What the server was asked.
#[derive(Debug, Clone)]
pub struct Request {
    /// The request's number, from 0.
    pub index: usize,
    /// The request target, with its query string.
    pub target: String,
    pub headers: Vec<(String, String)>,
}

impl Request {
    /// The value of header `name` (the first, any case), if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The path, without the query string.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// `Range: bytes=A-` → `(A, None)`, `Range: bytes=A-B` → `(A, Some(B))`; `None` without a
    /// Range header. Any other form of Range fails the test.
    pub fn range(&self) -> Option<(u64, Option<u64>)> {
        let value = self.header("range")?;
        let spec = value.strip_prefix("bytes=");
        let (first, last) = spec
            .and_then(|s| s.split_once('-'))
            .unwrap_or_else(|| panic!("server: a Range it cannot parse: {value:?}"));
        let first = first.parse().expect("a Range start");
        let last = (!last.is_empty()).then(|| last.parse().expect("a Range end"));
        Some((first, last))
    }
}

/// How the body of an answer is sent.
#[derive(Debug, Clone, Copy, Default)]
pub enum Send {
    /// All of it, at once.
    #[default]
    Whole,
    /// Pieces of `piece` bytes with `pause` between them (none after the last: a connection
    /// counts as served until its body is sent, not a pause longer).
    Paced { piece: usize, pause: Duration },
    /// The first `n` bytes, then the connection is closed (the body ends before its
    /// Content-Length).
    Cut(usize),
    /// The first `n` bytes (or the whole body if shorter), then nothing until the client
    /// hangs up.
    Stall(usize),
    /// The first `n` bytes, throttled (pieces of 64 KiB, 2 ms apart), then the rest at once
    /// when the test opens the server's gate.
    Gated(usize),
}

/// An answer: the status line's code and reason, headers, and the body, sent as `send` says.
/// A Content-Length for the whole body and `Connection: close` are always added.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub send: Send,
}

impl Answer {
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            body: body.into(),
            send: Send::Whole,
        }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Answer {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    pub fn send(mut self, send: Send) -> Answer {
        self.send = send;
        self
    }
}

/// The reason phrase of the statuses the tests use.
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        410 => "Gone",
        416 => "Range Not Satisfiable",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Whatever",
    }
}

/// How a server that honours `Range` answers `request` for a resource of `body` with the
/// validator `etag` (sent as ETag; `None`: no ETag) and `last_modified`: `If-Range` that does
/// not match either → `200` with the whole body; `bytes=A-` or `bytes=A-B` → `206` with the
/// Content-Range; a start at or past the end → `416` with `bytes */LEN`; no Range → `200`.
pub fn resource(
    request: &Request,
    body: &[u8],
    etag: Option<&str>,
    last_modified: Option<&str>,
) -> Answer {
    let len = body.len() as u64;
    let with_validators = |mut answer: Answer| {
        if let Some(etag) = etag {
            answer = answer.header("ETag", etag);
        }
        if let Some(date) = last_modified {
            answer = answer.header("Last-Modified", date);
        }
        answer
    };
    let current = match request.header("if-range") {
        None => true,
        Some(v) => Some(v) == etag.filter(|e| !e.starts_with("W/")) || Some(v) == last_modified,
    };
    match request.range() {
        Some((first, last)) if current => {
            if first >= len {
                return with_validators(
                    Answer::new(416, Vec::new()).header("Content-Range", format!("bytes */{len}")),
                );
            }
            let last = last.unwrap_or(len - 1).min(len - 1);
            let part = body[first as usize..=last as usize].to_vec();
            with_validators(
                Answer::new(206, part)
                    .header("Content-Range", format!("bytes {first}-{last}/{len}")),
            )
        }
        _ => with_validators(Answer::new(200, body.to_vec())),
    }
}

type Handler = dyn Fn(&Request) -> Answer + std::marker::Send + Sync;

/// A server on 127.0.0.1:0; one thread per connection, one request per connection. Stopped
/// (no new connection accepted) when dropped.
pub struct Server {
    addr: String,
    /// Every request, in the order they arrived.
    log: Arc<Mutex<Vec<Request>>>,
    gate: Mutex<Option<mpsc::Sender<()>>>,
    stop: Arc<AtomicBool>,
    /// Connections being served now.
    live: Arc<AtomicUsize>,
    /// The most connections served at once so far.
    most_live: Arc<AtomicUsize>,
    /// Body bytes written to connections so far.
    sent: Arc<AtomicU64>,
}

impl Server {
    /// Starts a server that answers every request with `handler(request)`.
    pub fn start(
        handler: impl Fn(&Request) -> Answer + std::marker::Send + Sync + 'static,
    ) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("an address").to_string();
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let live = Arc::new(AtomicUsize::new(0));
        let most_live = Arc::new(AtomicUsize::new(0));
        let sent = Arc::new(AtomicU64::new(0));
        let (gate_tx, gate_rx) = mpsc::channel::<()>();
        let gate_rx = Arc::new(Mutex::new(gate_rx));
        let handler: Arc<Handler> = Arc::new(handler);
        {
            let (log, stop, live) = (Arc::clone(&log), Arc::clone(&stop), Arc::clone(&live));
            let (most_live, sent) = (Arc::clone(&most_live), Arc::clone(&sent));
            thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(conn) = conn else { continue };
                    let (log, handler, gate) =
                        (Arc::clone(&log), Arc::clone(&handler), Arc::clone(&gate_rx));
                    let (live, sent) = (Arc::clone(&live), Arc::clone(&sent));
                    let now = live.fetch_add(1, Ordering::SeqCst) + 1;
                    most_live.fetch_max(now, Ordering::SeqCst);
                    thread::spawn(move || {
                        if let Err(e) = serve(conn, &log, &*handler, &gate, &sent) {
                            eprintln!("server: {e}");
                        }
                        live.fetch_sub(1, Ordering::SeqCst);
                    });
                }
            });
        }
        Server {
            addr,
            log,
            gate: Mutex::new(Some(gate_tx)),
            stop,
            live,
            most_live,
            sent,
        }
    }

    /// `http://127.0.0.1:PORT` followed by `path_and_query`.
    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{path_and_query}", self.addr)
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Request> {
        self.log.lock().unwrap().clone()
    }

    /// How many connections are being served now (a client that hangs up ends its own).
    pub fn live_connections(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }

    /// The most connections served at once so far (the wake-up connection of `drop` aside).
    pub fn most_live_connections(&self) -> usize {
        self.most_live.load(Ordering::SeqCst)
    }

    /// Body bytes written to connections so far (a client may not have read them all).
    pub fn body_bytes_sent(&self) -> u64 {
        self.sent.load(Ordering::SeqCst)
    }

    /// Lets every [`Send::Gated`] body (now and later) send the rest.
    pub fn open_gate(&self) {
        self.gate.lock().unwrap().take();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.open_gate();
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop, which then sees `stop`.
        let _ = TcpStream::connect(&self.addr);
    }
}

fn serve(
    conn: TcpStream,
    log: &Mutex<Vec<Request>>,
    handler: &Handler,
    gate: &Mutex<mpsc::Receiver<()>>,
    sent: &AtomicU64,
) -> io::Result<()> {
    // Never blocks a test for long: a client that stops reading or writing is dropped.
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    conn.set_write_timeout(Some(Duration::from_secs(30)))?;
    let mut head = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    if head.read_line(&mut line)? == 0 {
        return Ok(()); // the wake-up connection of `drop`, or a client that gave up
    }
    let target = line.split_whitespace().nth(1).unwrap_or("").to_owned();
    let mut headers = Vec::new();
    loop {
        line.clear();
        head.read_line(&mut line)?;
        let text = line.trim_end();
        if text.is_empty() {
            break;
        }
        if let Some((name, value)) = text.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    let request = {
        let mut log = log.lock().unwrap();
        let request = Request {
            index: log.len(),
            target,
            headers,
        };
        log.push(request.clone());
        request
    };
    let answer = handler(&request);
    let mut out = &conn;
    let mut text = format!(
        "HTTP/1.1 {} {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        answer.status,
        reason(answer.status),
        answer.body.len()
    );
    for (name, value) in &answer.headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    out.write_all(text.as_bytes())?;
    let body = &answer.body[..];
    let mut out = Counted { out, sent };
    match answer.send {
        Send::Whole => out.write_all(body)?,
        Send::Paced { piece, pause } => {
            for (i, piece) in body.chunks(piece).enumerate() {
                if i > 0 {
                    thread::sleep(pause);
                }
                out.write_all(piece)?;
            }
        }
        Send::Cut(n) => out.write_all(&body[..n])?,
        Send::Stall(n) => {
            out.write_all(&body[..n.min(body.len())])?;
            // Until the client hangs up (or the read timeout above).
            let _ = head.read_to_end(&mut Vec::new());
        }
        Send::Gated(n) => {
            for piece in body[..n].chunks(64 << 10) {
                out.write_all(piece)?;
                thread::sleep(Duration::from_millis(2));
            }
            // Returns when the gate's sender is dropped.
            let _ = gate.lock().unwrap().recv();
            out.write_all(&body[n..])?;
        }
    }
    conn.shutdown(Shutdown::Write)
}

/// A connection's writer that counts the body bytes it wrote.
struct Counted<'a> {
    out: &'a TcpStream,
    sent: &'a AtomicU64,
}

impl Write for Counted<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        self.sent.fetch_add(n as u64, Ordering::SeqCst);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
