//! Local HTTP servers for the download tests: tiny_http on 127.0.0.1 sending a body in slow
//! pieces and counting requests, a raw one that cuts its body short, and a raw one that breaks
//! its first answers and answers Range requests ([`range_server`]).

use super::HANG_GUARD;
use std::io::{self, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;
use streamcache::{Status, StreamCache};

/// The body as the server sends it: pieces of `PIECE` bytes with a short pause before each, so
/// that the readers catch up with the download and wait.
struct Slow {
    body: Arc<[u8]>,
    at: usize,
    next_pause: usize,
}

impl Slow {
    const PIECE: usize = 256 << 10;
    const PAUSE: Duration = Duration::from_millis(2);
}

impl Read for Slow {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.at == self.next_pause && self.at < self.body.len() {
            thread::sleep(Self::PAUSE);
            self.next_pause += Self::PIECE;
        }
        let end = self.body.len().min(self.next_pause);
        let n = buf.len().min(end - self.at);
        buf[..n].copy_from_slice(&self.body[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// A tiny_http server on 127.0.0.1:0 that answers every request with `body`, slowly; it counts
/// the requests. Stopped when dropped.
pub struct Server {
    pub url: String,
    pub requests: Arc<AtomicUsize>,
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// With `content_length`, the response has a Content-Length header; without, it is sent
    /// with chunked transfer encoding and the client learns the length only at the end.
    pub fn start(body: Arc<[u8]>, content_length: bool) -> Server {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind 127.0.0.1:0"));
        let port = server.server_addr().to_ip().expect("an IP listener").port();
        let requests = Arc::new(AtomicUsize::new(0));
        let thread = {
            let (server, requests) = (Arc::clone(&server), Arc::clone(&requests));
            thread::spawn(move || {
                // Ends when `unblock` is called on drop.
                for request in server.incoming_requests() {
                    requests.fetch_add(1, Ordering::SeqCst);
                    let slow = Slow {
                        body: Arc::clone(&body),
                        at: 0,
                        next_pause: 0,
                    };
                    let length = content_length.then_some(body.len());
                    let response = tiny_http::Response::new(
                        tiny_http::StatusCode(200),
                        vec![],
                        slow,
                        length,
                        None,
                    );
                    // tiny_http goes chunked above 32 KiB unless told otherwise.
                    let response = if content_length {
                        response.with_chunked_threshold(usize::MAX)
                    } else {
                        response.with_chunked_threshold(0)
                    };
                    // A client that hangs up early is not the server's problem.
                    let _ = request.respond(response);
                }
            })
        };
        Server {
            url: format!("http://127.0.0.1:{port}/body.bin"),
            requests,
            server,
            thread: Some(thread),
        }
    }

    /// How many requests the server has had.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A raw server for one request: it promises all of `body` (its Content-Length), sends the
/// first `cut` bytes in pieces of `piece` with `pause` after each, then closes the connection.
/// Its URL, and its thread.
pub fn cut_server(
    body: Arc<[u8]>,
    cut: usize,
    piece: usize,
    pause: Duration,
) -> (String, JoinHandle<io::Result<()>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let url = format!("http://{}/cut.bin", listener.local_addr().expect("address"));
    let server = thread::spawn(move || -> io::Result<()> {
        let (mut socket, _) = listener.accept()?;
        let mut request = [0u8; 4096];
        let mut got = Vec::new();
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = socket.read(&mut request)?;
            if n == 0 {
                return Ok(());
            }
            got.extend_from_slice(&request[..n]);
        }
        let len = body.len();
        write!(socket, "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n")?;
        for piece in body[..cut].chunks(piece) {
            socket.write_all(piece)?;
            thread::sleep(pause);
        }
        Ok(()) // dropping the socket closes the connection
    });
    (url, server)
}

/// Reads a request's head up to its blank line and returns the start `N` of its
/// `Range: bytes=N-` header, if it has one. The raw servers of the tests answer only open-ended
/// ranges (what a resuming client asks for): any other form of Range is an error.
pub fn read_range_request(head: &mut impl io::BufRead) -> io::Result<Option<u64>> {
    let mut range = None;
    loop {
        let mut line = String::new();
        head.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            return Ok(range);
        }
        let Some((name, value)) = line.split_once(':') else {
            continue; // the request line
        };
        if name.trim().eq_ignore_ascii_case("range") {
            let start = value
                .trim()
                .strip_prefix("bytes=")
                .and_then(|v| v.strip_suffix('-'))
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| io::Error::other(format!("bad range {value:?}")))?;
            range = Some(start);
        }
    }
}

/// How a [`range_server`]'s answer ends (answers past its plan are sent whole).
#[derive(Debug, Clone, Copy)]
pub enum Cut {
    /// After this many body bytes, close the connection cleanly (FIN): the client sees the body
    /// end before its length.
    Close(u64),
    /// After this many body bytes, reset the connection (RST).
    Reset(u64),
    /// After this many body bytes, send nothing more until the client gives up.
    Stall(u64),
}

/// How a [`range_server`] answers `Range: bytes=N-`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ranges {
    /// `206`, `Content-Range: bytes N-(len-1)/len`, the bytes from N.
    Honour,
    /// `200` and the whole body again.
    Ignore,
    /// `206`, but from N - 100 (and says so in its Content-Range).
    Early,
    /// `206` from N, but the total in Content-Range is not the length of the first answer.
    Resized,
}

/// A [`range_server`]: where it listens, and what it was asked.
pub struct RangeServer {
    pub addr: SocketAddr,
    /// `http://{addr}/data`.
    pub url: String,
    /// The `Range` start of every request (`None`: no Range header).
    pub requests: Arc<Mutex<Vec<Option<u64>>>>,
}

/// A raw HTTP/1.1 server on 127.0.0.1 serving `body` (any path), each connection on its own
/// thread: answer `i` ends as `cuts[i]` says, later answers are whole; Range requests are
/// answered as `ranges` says. It lives until the test process ends, blocked in `accept` once
/// the test is done.
pub fn range_server(body: Arc<[u8]>, cuts: Vec<Cut>, ranges: Ranges) -> RangeServer {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&requests);
    thread::spawn(move || {
        for (i, conn) in listener.incoming().enumerate() {
            let Ok(conn) = conn else { continue };
            let (body, log, cut) = (Arc::clone(&body), Arc::clone(&log), cuts.get(i).copied());
            thread::spawn(move || {
                if let Err(e) = serve_range(conn, &body, cut, ranges, &log) {
                    eprintln!("range server: answer {i}: {e}");
                }
            });
        }
    });
    RangeServer {
        addr,
        url: format!("http://{addr}/data"),
        requests,
    }
}

fn serve_range(
    conn: TcpStream,
    body: &[u8],
    cut: Option<Cut>,
    ranges: Ranges,
    log: &Mutex<Vec<Option<u64>>>,
) -> io::Result<()> {
    conn.set_read_timeout(Some(HANG_GUARD))?;
    conn.set_write_timeout(Some(HANG_GUARD))?;
    let mut head = BufReader::new(conn.try_clone()?);
    let range = read_range_request(&mut head)?;
    log.lock().unwrap().push(range);
    let len = body.len() as u64;
    let (status, start, total) = match (range, ranges) {
        (None, _) | (Some(_), Ranges::Ignore) => ("200 OK", 0, None),
        (Some(n), Ranges::Honour) => ("206 Partial Content", n, Some(len)),
        (Some(n), Ranges::Early) => ("206 Partial Content", n.saturating_sub(100), Some(len)),
        (Some(n), Ranges::Resized) => ("206 Partial Content", n, Some(len + 1)),
    };
    let start = start.min(len);
    let mut answer = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n", len - start);
    if let Some(total) = total {
        answer.push_str(&format!(
            "Content-Range: bytes {start}-{}/{total}\r\n",
            len.saturating_sub(1)
        ));
    }
    answer.push_str("Connection: close\r\n\r\n");
    let mut out = &conn;
    out.write_all(answer.as_bytes())?;
    let rest = &body[start as usize..];
    let upto = |n: u64| &rest[..rest.len().min(usize::try_from(n).unwrap_or(usize::MAX))];
    match cut {
        None => out.write_all(rest)?,
        Some(Cut::Close(n)) => out.write_all(upto(n))?,
        Some(Cut::Reset(n)) => {
            out.write_all(upto(n))?;
            reset_on_close(&conn);
            return Ok(());
        }
        Some(Cut::Stall(n)) => {
            out.write_all(upto(n))?;
            // Until the client hangs up (its read timeout).
            let _ = head.read_to_end(&mut Vec::new());
        }
    }
    conn.shutdown(Shutdown::Write)
}

/// Makes closing `stream` send a RST instead of a FIN (`SO_LINGER` with a zero timeout).
#[cfg(unix)]
fn reset_on_close(stream: &TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: `setsockopt` on a socket we own, with a valid `linger` that outlives the call.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            std::ptr::from_ref(&linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "SO_LINGER: {}", io::Error::last_os_error());
}

#[cfg(not(unix))]
fn reset_on_close(stream: &TcpStream) {
    let _ = stream.shutdown(Shutdown::Both);
}

/// Reads the whole stream through a `Reader`, under the hang guard: the bytes before the error
/// (if any) and it.
pub fn read_all(cache: &StreamCache) -> (Vec<u8>, io::Result<()>) {
    let mut reader = cache.reader();
    super::finishes(move || {
        let mut data = Vec::new();
        let mut buf = vec![0u8; 40_000];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => return (data, Ok(())),
                Ok(n) => data.extend_from_slice(&buf[..n]),
                Err(e) => return (data, Err(e)),
            }
        }
    })
}

/// The readers' bytes are the body's (the test pattern), at the offsets they claim.
#[track_caller]
pub fn assert_intact(data: &[u8], what: &str) {
    let want = super::pattern(data.len());
    if let Some(i) = (0..data.len()).find(|&i| data[i] != want[i]) {
        panic!("{what}: wrong byte at offset {i} of {}", data.len());
    }
}

/// `readers` threads each read all of `cache`: every one gets the `len` bytes of the pattern,
/// and the stream is complete.
#[track_caller]
pub fn readers_read_it_all(cache: &StreamCache, readers: usize, len: usize, what: &str) {
    let readers: Vec<_> = (0..readers)
        .map(|_| {
            let cache = cache.clone();
            thread::spawn(move || read_all(&cache))
        })
        .collect();
    for reader in readers {
        let (data, result) = reader.join().unwrap();
        result.unwrap_or_else(|e| panic!("{what}: a reader: {e}"));
        assert_eq!(data.len(), len, "{what}");
        assert_intact(&data, what);
    }
    assert_eq!(
        cache.status(),
        Status::Complete { len: len as u64 },
        "{what}"
    );
}
