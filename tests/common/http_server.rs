//! A scriptable HTTP/1.1 server on 127.0.0.1 for the `spawn_url` tests: every request is
//! logged (path and headers), and a handler decides the answer (status, headers, body), and
//! how its body is sent: whole, in paced pieces, cut short, stalled, or held at a gate.
//! [`resource`] answers as a server that honours `Range` and `If-Range` does.
#![allow(dead_code)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
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
    /// Pieces of `piece` bytes with `pause` after each.
    Paced { piece: usize, pause: Duration },
    /// The first `n` bytes, then the connection is closed (the body ends before its
    /// Content-Length).
    Cut(usize),
    /// The first `n` bytes, then nothing until the client hangs up.
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
        let (gate_tx, gate_rx) = mpsc::channel::<()>();
        let gate_rx = Arc::new(Mutex::new(gate_rx));
        let handler: Arc<Handler> = Arc::new(handler);
        {
            let (log, stop) = (Arc::clone(&log), Arc::clone(&stop));
            thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(conn) = conn else { continue };
                    let (log, handler, gate) =
                        (Arc::clone(&log), Arc::clone(&handler), Arc::clone(&gate_rx));
                    thread::spawn(move || {
                        if let Err(e) = serve(conn, &log, &*handler, &gate) {
                            eprintln!("server: {e}");
                        }
                    });
                }
            });
        }
        Server {
            addr,
            log,
            gate: Mutex::new(Some(gate_tx)),
            stop,
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
    match answer.send {
        Send::Whole => out.write_all(body)?,
        Send::Paced { piece, pause } => {
            for piece in body.chunks(piece) {
                out.write_all(piece)?;
                thread::sleep(pause);
            }
        }
        Send::Cut(n) => out.write_all(&body[..n])?,
        Send::Stall(n) => {
            out.write_all(&body[..n])?;
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
