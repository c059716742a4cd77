//! One HTTP download shared by many threads, with the client a user would use (ureq, blocking)
//! against a real server (tiny_http) on 127.0.0.1 that sends the body in slow pieces. The server
//! counts requests: the body must be fetched exactly once, whatever the number of readers.
#![cfg(not(miri))]

mod common;

use common::http::{cut_server, Server};
use common::noise;
use sha2::{Digest, Sha256};
use std::io::{self, BufRead, Read};
use std::sync::Arc;
use std::thread;
use std::time::Duration;
use streamcache::{Reader, Status, StreamCache};

/// A body of `len` pseudo-random bytes (no short period, so misplaced bytes change the digest).
fn body(len: usize) -> Arc<[u8]> {
    noise(0x2545_F491_4F6C_DD1D, len).into()
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Hashes everything `reader` reads, from the cache's own memory; with the byte count.
fn sha256_reader(mut reader: Reader) -> io::Result<([u8; 32], u64)> {
    let mut hasher = Sha256::new();
    let mut total = 0u64;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok((hasher.finalize().into(), total));
        }
        hasher.update(buf);
        let n = buf.len();
        total += n as u64;
        reader.consume(n);
    }
}

/// A ureq agent whose requests cannot hang a test: a stuck transfer fails after a minute.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// Downloads `url` into a cache the way the `http_share` example does.
fn download(url: &str) -> Result<StreamCache, ureq::Error> {
    let response = agent().get(url).call()?;
    let mut builder = StreamCache::builder().thread_name("http-body");
    if let Some(len) = response.body().content_length() {
        builder = builder.expected_len(len);
    }
    Ok(builder.spawn(response.into_body().into_reader())?)
}

/// Starts `threads` readers at offset 0 and returns their digests and byte counts.
fn hash_on_threads(cache: &StreamCache, threads: usize) -> Vec<([u8; 32], u64)> {
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let reader = cache.reader();
            thread::spawn(move || sha256_reader(reader))
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("a hashing thread panicked").expect("read"))
        .collect()
}

#[test]
fn eight_threads_hash_one_slow_download_fetched_once() {
    const LEN: usize = 16 << 20;
    let body = body(LEN);
    let expected = sha256(&body);
    let server = Server::start(Arc::clone(&body), true);

    let cache = download(&server.url).expect("GET");
    assert_eq!(cache.expected_len(), Some(LEN as u64), "Content-Length");
    for (i, (digest, len)) in hash_on_threads(&cache, 8).into_iter().enumerate() {
        assert_eq!(len, LEN as u64, "thread {i} read the whole body");
        assert_eq!(digest, expected, "thread {i}'s digest");
    }
    assert_eq!(cache.wait_complete().expect("complete"), LEN as u64);
    assert_eq!(cache.slice(..).expect("slice"), &body[..]);
    assert_eq!(server.requests(), 1, "the body was fetched once");
}

#[test]
fn chunked_body_of_unknown_length_is_shared_the_same_way() {
    const LEN: usize = 4 << 20;
    let body = body(LEN);
    let expected = sha256(&body);
    let server = Server::start(Arc::clone(&body), false);

    let cache = download(&server.url).expect("GET");
    assert_eq!(cache.expected_len(), None, "no Content-Length");
    for (i, (digest, len)) in hash_on_threads(&cache, 4).into_iter().enumerate() {
        assert_eq!(len, LEN as u64, "thread {i} read the whole body");
        assert_eq!(digest, expected, "thread {i}'s digest");
    }
    assert_eq!(cache.len(), Some(LEN as u64));
    assert_eq!(server.requests(), 1, "the body was fetched once");
}

#[test]
fn a_connection_cut_mid_body_fails_every_reader_and_keeps_what_arrived() {
    const LEN: usize = 4 << 20;
    const CUT: usize = (1 << 20) + 12_345;
    let body = body(LEN);
    // A raw server: promises LEN bytes, sends CUT of them, then closes the connection.
    let (url, server) = cut_server(Arc::clone(&body), CUT, 256 << 10, Duration::from_millis(2));

    let cache = download(&url).expect("GET");
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let mut reader = cache.reader();
            thread::spawn(move || {
                let mut all = Vec::new();
                reader.read_to_end(&mut all).map(|_| all.len())
            })
        })
        .collect();
    let errors: Vec<io::Error> = readers
        .into_iter()
        .map(|h| {
            h.join()
                .expect("a reader panicked")
                .expect_err("the body was cut short")
        })
        .collect();
    server.join().expect("the server panicked").expect("serve");

    let Status::Failed { available, error } = cache.status() else {
        panic!("the stream must have failed: {:?}", cache.status());
    };
    assert_eq!(available, CUT as u64, "every byte that arrived is kept");
    for e in &errors {
        assert_eq!(e.kind(), error, "each reader sees the source's error: {e}");
    }
    assert_eq!(cache.slice(..CUT as u64).expect("slice"), &body[..CUT]);
    assert!(cache.slice(..CUT as u64 + 1).is_err());
}
