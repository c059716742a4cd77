//! One HTTP download, shared by many threads: the body is fetched once, and every thread reads
//! all of it through its own `Reader`, each part as soon as it has arrived.
//!
//! ```text
//! cargo run --release --features http --example http_share -- [--resume] URL [THREADS]
//! cargo run --release --features http --example http_share -- https://example.com/big.iso 8
//! ```
//!
//! The URL goes to `Builder::spawn_url` (feature `http`), which asks for `Range: bytes=0-`: if
//! the server answers with the range, a download that breaks (the connection drops, stalls for
//! 30 s, or the body ends before its length) goes on where it broke, with a Range request that
//! carries `If-Range`, so that a resource that changed meanwhile fails the download rather than
//! splice in other bytes; 5 breaks in a row without a byte of progress end it with the last
//! error. A server that ignores Range is read once, as it comes, and not resumed. Each of
//! THREADS threads (4 by default) computes the SHA-256 of the whole body from the cache's own
//! memory. One progress bar follows the download; the digests are printed at the end, and must
//! all agree.
//!
//! `--resume` does the same by hand instead of `spawn_url`: a plain GET whose body goes to
//! `Builder::spawn_resumable`, whose `open(offset)` (`resume.rs`, shared with
//! `tests/http_resume.rs`) asks for the rest with `Range: bytes=offset-` and accepts only a
//! `206 Partial Content` from that offset: the recipe for a client other than ureq.

mod resume;

use indicatif::{ProgressBar, ProgressStyle};
use resume::RangeGet;
use sha2::{Digest, Sha256};
use std::error::Error;
use std::io::{self, BufRead};
use std::time::{Duration, Instant};
use streamcache::{Reader, StreamCache};

fn main() {
    if let Err(e) = run() {
        eprintln!("http_share: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn Error>> {
    let Args {
        url,
        threads,
        resume,
    } = args()?;
    let start = Instant::now();
    let (cache, bar) = if resume {
        download_resumable(&url)?
    } else {
        download(&url)?
    };

    // Every thread gets its own cursor over the same bytes.
    let workers = (0..threads)
        .map(|i| {
            let reader = cache.reader();
            std::thread::Builder::new()
                .name(format!("sha256-{i}"))
                .spawn(move || sha256(reader))
        })
        .collect::<io::Result<Vec<_>>>()?;

    let len = follow_download(&cache, &bar)?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "downloaded {url}: {len} bytes, once, in {secs:.2} s ({:.1} MB/s)",
        len as f64 / 1e6 / secs.max(1e-9)
    );

    let mut digests = Vec::new();
    for (i, worker) in workers.into_iter().enumerate() {
        let (digest, bytes) = worker.join().expect("a hashing thread panicked")?;
        println!("thread {i}: sha256 {digest}  ({bytes} bytes)");
        digests.push(digest);
    }
    if digests.windows(2).any(|w| w[0] != w[1]) {
        return Err("the threads disagree".into());
    }
    println!("{threads} threads, one download, one digest");
    Ok(())
}

/// `spawn_url`: ranged and resumed if the server honours Range, read as it comes otherwise.
fn download(url: &str) -> Result<(StreamCache, ProgressBar), Box<dyn Error>> {
    let cache = StreamCache::builder()
        .thread_name("download")
        .retries(5)
        .retry_backoff(Duration::from_millis(500))
        .spawn_url(url)?;
    let bar = ProgressBar::no_length();
    style(&bar, cache.expected_len());
    Ok((cache, bar))
}

/// `--resume`: a GET, then a Range request from where it broke, each time it breaks.
fn download_resumable(url: &str) -> Result<(StreamCache, ProgressBar), Box<dyn Error>> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        // A connection that stalls fails with `TimedOut`, and is resumed.
        .timeout_per_read(Some(Duration::from_secs(30)))
        .build()
        .into();
    let builder = StreamCache::builder()
        .thread_name("download")
        .retries(5)
        .retry_backoff(Duration::from_millis(500));
    let bar = ProgressBar::no_length();
    let log = bar.clone();
    let cache = RangeGet::new(agent, url).spawn(builder, move |offset| {
        log.suspend(|| eprintln!("http_share: the download broke at byte {offset}: resuming"));
    })?;
    style(&bar, cache.expected_len());
    Ok((cache, bar))
}

/// Styles `bar`: a bar to `len` bytes, or a spinner when the length is not known.
fn style(bar: &ProgressBar, len: Option<u64>) {
    match len {
        Some(len) => {
            bar.set_length(len);
            bar.set_style(
                ProgressStyle::with_template(
                    "download [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .expect("a valid template")
                .progress_chars("=> "),
            );
        }
        None => bar.set_style(
            ProgressStyle::with_template("download {spinner} {bytes} {bytes_per_sec}")
                .expect("a valid template"),
        ),
    }
}

/// Draws the download's progress until the stream ends; returns its length.
fn follow_download(cache: &StreamCache, bar: &ProgressBar) -> io::Result<u64> {
    let outcome = loop {
        bar.set_position(cache.available());
        // Parks until the end of the stream, or 100 ms, whichever comes first.
        match cache.wait_for_timeout(u64::MAX, Duration::from_millis(100)) {
            Ok(Some(len)) => break Ok(len),
            Ok(None) => continue,
            Err(e) => break Err(e),
        }
    };
    bar.set_position(cache.available());
    match outcome {
        Ok(_) => bar.finish(),
        Err(_) => bar.abandon(),
    }
    outcome
}

/// The SHA-256 of everything `reader` reads, fed straight from the cache's memory
/// (`fill_buf` hands out the stored bytes themselves); with the number of bytes hashed.
fn sha256(mut reader: Reader) -> io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut total = 0u64;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        hasher.update(buf);
        let n = buf.len();
        total += n as u64;
        reader.consume(n);
    }
    let hex = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok((hex, total))
}

struct Args {
    url: String,
    threads: usize,
    resume: bool,
}

fn args() -> Result<Args, Box<dyn Error>> {
    let usage = "usage: http_share [--resume] URL [THREADS]";
    let mut resume = false;
    let mut positional = Vec::new();
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "-h" | "--help" => {
                println!("{usage}");
                std::process::exit(0);
            }
            "--resume" => resume = true,
            flag if flag.starts_with('-') => {
                return Err(format!("unknown option {flag:?}; {usage}").into());
            }
            _ => positional.push(arg),
        }
    }
    let mut positional = positional.into_iter();
    let url = positional.next().ok_or(usage)?;
    let threads = match positional.next() {
        Some(n) => n
            .parse::<usize>()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| format!("THREADS must be a positive number, not {n:?}"))?,
        None => 4,
    };
    if let Some(extra) = positional.next() {
        return Err(format!("unexpected argument {extra:?}; {usage}").into());
    }
    Ok(Args {
        url,
        threads,
        resume,
    })
}
