//! A TCP proxy on 127.0.0.1 in front of a server (moto, Azurite), shared by
//! tests/object_servers.rs and the benches (`benches/src/object_store.rs` includes this file):
//! it counts the bytes the server sent (the HTTP responses, headers included) and can slow or
//! stall them ([`Shape`]), to hold a fill back or to make a client time out.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// How the proxy passes the server's bytes on. The default: as they come.
#[derive(Debug, Clone, Copy, Default)]
pub struct Shape {
    /// Bytes per second on each connection; 0: unlimited.
    pub rate: u64,
    /// The first this many connections send nothing back for `stall`.
    pub stalled: usize,
    pub stall: Duration,
}

/// Two threads per connection, copying each way; stopped on drop.
#[derive(Debug)]
pub struct Proxy {
    port: u16,
    sent: Arc<AtomicU64>,
    connections: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    /// A proxy to `127.0.0.1:upstream`, listening on a free port.
    ///
    /// # Errors
    ///
    /// No port, or no thread.
    pub fn start(upstream: u16, shape: Shape) -> io::Result<Proxy> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let port = listener.local_addr()?.port();
        let proxy = Proxy {
            port,
            sent: Arc::default(),
            connections: Arc::default(),
            stop: Arc::default(),
        };
        let (sent, connections, stop) = (
            Arc::clone(&proxy.sent),
            Arc::clone(&proxy.connections),
            Arc::clone(&proxy.stop),
        );
        thread::Builder::new()
            .name("proxy".to_owned())
            .spawn(move || {
                for client in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(client) = client else { continue };
                    let n = connections.fetch_add(1, Ordering::SeqCst);
                    let stall = if n < shape.stalled {
                        shape.stall
                    } else {
                        Duration::ZERO
                    };
                    let sent = Arc::clone(&sent);
                    let _ = thread::Builder::new()
                        .name("proxy-conn".to_owned())
                        .spawn(move || relay(client, upstream, &sent, stall, shape.rate));
                }
            })?;
        Ok(proxy)
    }

    /// The port to send clients to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The bytes the server sent so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::SeqCst)
    }

    /// The connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// [`sent`](Self::sent) once it has not changed for `quiet` (at most `wait`): what the
    /// server sent for a run that has just ended, its last bytes included.
    pub fn settled(&self, quiet: Duration, wait: Duration) -> u64 {
        let deadline = Instant::now() + wait;
        let mut last = self.sent();
        loop {
            thread::sleep(quiet);
            let now = self.sent();
            if now == last || Instant::now() > deadline {
                return now;
            }
            last = now;
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// One connection: the client's bytes to the server on a thread of its own; the server's to
/// the client here, counted, after `stall`, at `rate` bytes a second (0: unlimited).
fn relay(client: TcpStream, upstream: u16, sent: &AtomicU64, stall: Duration, rate: u64) {
    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (Ok(mut client_rx), Ok(mut server_tx)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let up = thread::spawn(move || {
        let _ = io::copy(&mut client_rx, &mut server_tx);
        let _ = server_tx.shutdown(Shutdown::Write);
    });
    thread::sleep(stall);
    let (mut from, mut to) = (server, &client);
    // Small pieces when throttled, so that the rate holds within each second.
    let mut buf = vec![0u8; if rate > 0 { 16 << 10 } else { 256 << 10 }];
    let started = Instant::now();
    let mut total = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        sent.fetch_add(n as u64, Ordering::SeqCst); // Sent by the server, if not passed on.
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
        total += n as u64;
        if rate > 0 {
            let due = Duration::from_secs_f64(total as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                thread::sleep(wait);
            }
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = client.shutdown(Shutdown::Both);
    let _ = up.join();
}
