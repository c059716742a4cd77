//! One HTTP download, shared by many threads: the body is fetched once, and every thread reads
//! all of it through its own `Reader`, each part as soon as it has arrived.
//!
//! ```text
//! cargo run --release --example http_share -- URL [THREADS]
//! cargo run --release --example http_share -- https://example.com/big.iso 8
//! ```
//!
//! ureq's body reader goes straight into the cache (sized by the Content-Length, when there is
//! one); each of THREADS threads (4 by default) computes the SHA-256 of the whole body from the
//! cache's own memory. One progress bar follows the download; the digests are printed at the end,
//! and must all agree.

use indicatif::{ProgressBar, ProgressStyle};
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
    let (url, threads) = args()?;
    let start = Instant::now();

    // One request. The body is a plain `Read`: hand it to the cache as it is.
    let response = ureq::get(url.as_str()).call()?;
    let content_length = response.body().content_length();
    let body = response.into_body().into_reader();
    let mut builder = StreamCache::builder().thread_name("download");
    if let Some(len) = content_length {
        builder = builder.expected_len(len);
    }
    let cache = builder.spawn(body)?;

    // Every thread gets its own cursor over the same bytes.
    let workers = (0..threads)
        .map(|i| {
            let reader = cache.reader();
            std::thread::Builder::new()
                .name(format!("sha256-{i}"))
                .spawn(move || sha256(reader))
        })
        .collect::<io::Result<Vec<_>>>()?;

    let len = follow_download(&cache, content_length)?;
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

/// Draws the download's progress until the stream ends; returns its length.
fn follow_download(cache: &StreamCache, content_length: Option<u64>) -> io::Result<u64> {
    let bar = match content_length {
        Some(len) => ProgressBar::new(len).with_style(
            ProgressStyle::with_template(
                "download [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("download {spinner} {bytes} {bytes_per_sec}")
                .expect("a valid template"),
        ),
    };
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

fn args() -> Result<(String, usize), Box<dyn Error>> {
    let usage = "usage: http_share URL [THREADS]";
    let mut args = std::env::args().skip(1);
    let url = match args.next() {
        Some(arg) if arg == "-h" || arg == "--help" => {
            println!("{usage}");
            std::process::exit(0);
        }
        Some(url) => url,
        None => return Err(usage.into()),
    };
    let threads = match args.next() {
        Some(n) => n
            .parse::<usize>()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| format!("THREADS must be a positive number, not {n:?}"))?,
        None => 4,
    };
    if let Some(extra) = args.next() {
        return Err(format!("unexpected argument {extra:?}; {usage}").into());
    }
    Ok((url, threads))
}
