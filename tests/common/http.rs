//! A local HTTP server for the download tests: tiny_http on 127.0.0.1 sending a body in slow
//! pieces and counting requests, and a raw one that cuts its body short.

use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

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
