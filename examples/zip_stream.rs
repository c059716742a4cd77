//! A zip archive parsed and extracted while it is still arriving.
//!
//! ```text
//! cargo run --release --example zip_stream                    # builds a ~300 MiB zip, streams it
//! cargo run --release --example zip_stream -- --rate 50       # ... at 50 MB/s
//! cargo run --release --example zip_stream -- some.zip        # a zip file, throttled the same way
//! cargo run --release --example zip_stream -- https://example.com/some.zip   # a download (ureq)
//! cargo run --release --example zip_stream -- --threads 8
//! ```
//!
//! With no path, it writes a zip of a few hundred MiB (stored and deflated entries) to a temp file
//! and streams that through a source throttled to `--rate` MB/s (200 by default), standing in for
//! a download. Two readers work on the one stream while it arrives:
//!
//! * one walks the local file headers in arrival order (`zip::read::read_zipfile_from_stream`)
//!   and extracts each entry as soon as its last byte is there, long before the archive is
//!   complete;
//! * `zip::ZipArchive::new(cache.reader())` seeks to the end for the central directory. That
//!   seek waits for the end of the stream and nothing else: the directory is the last thing to
//!   arrive in a zip. Then several threads, each with its own clone of the archive (and so its own
//!   `Reader`), extract entries by random access, straight from the cache's memory.
//!
//! Each line is stamped with the seconds since the stream started and how much had arrived.
//! zip checks every entry's CRC-32 as it is read.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::time::{Duration, Instant};
use streamcache::StreamCache;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

/// The built-in archive: this many entries of this many bytes each.
const ENTRIES: usize = 8;
const ENTRY_LEN: usize = 40 << 20;

fn main() {
    if let Err(e) = run() {
        eprintln!("zip_stream: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse()?;
    let (source, len, label): (Box<dyn Read + Send>, Option<u64>, String) = match &args.input {
        Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
            let response = ureq::get(url.as_str()).call()?;
            let len = response.body().content_length();
            (
                Box::new(response.into_body().into_reader()),
                len,
                url.clone(),
            )
        }
        Some(path) => {
            let file = File::open(path)?;
            let len = file.metadata()?.len();
            (
                Box::new(Throttled::new(file, args.rate)),
                Some(len),
                path.clone(),
            )
        }
        None => {
            let built = Instant::now();
            let file = build_zip()?;
            let len = file.metadata()?.len();
            println!(
                "built a {} MiB zip of {ENTRIES} entries ({} MiB unpacked) in {:.1} s",
                len >> 20,
                (ENTRIES * ENTRY_LEN) >> 20,
                built.elapsed().as_secs_f64()
            );
            let label = format!("the built zip at {} MB/s", args.rate);
            (Box::new(Throttled::new(file, args.rate)), Some(len), label)
        }
    };

    let mut builder = StreamCache::builder().thread_name("zip-source");
    if let Some(len) = len {
        builder = builder.expected_len(len);
    }
    let cache = builder.spawn(source)?;
    let log = Log {
        start: Instant::now(),
        cache: cache.clone(),
    };
    log.line(format!("streaming {label}"));

    // In arrival order, through the local file headers: no need for the directory.
    let local = {
        let (log, mut reader) = (log.clone(), cache.reader());
        std::thread::Builder::new()
            .name("local-headers".to_owned())
            .spawn(move || -> zip::result::ZipResult<usize> {
                let mut count = 0;
                while let Some(mut entry) = zip::read::read_zipfile_from_stream(&mut reader)? {
                    let n = io::copy(&mut entry, &mut io::sink())?;
                    log.line(format!(
                        "local headers: {} streamed out ({})",
                        entry.name()?,
                        human(n)
                    ));
                    count += 1;
                }
                Ok(count)
            })?
    };

    // By the central directory: waits for the end of the stream, then random access.
    let archive = ZipArchive::new(cache.reader())?;
    log.line(format!(
        "central directory readable: {} entries",
        archive.len()
    ));
    let workers = (0..args.threads)
        .map(|t| {
            let (log, mut archive) = (log.clone(), archive.clone());
            let threads = args.threads;
            std::thread::Builder::new()
                .name(format!("extract-{t}"))
                .spawn(move || -> zip::result::ZipResult<u64> {
                    let mut total = 0;
                    for i in (t..archive.len()).step_by(threads) {
                        let mut entry = archive.by_index(i)?;
                        let n = io::copy(&mut entry, &mut io::sink())?;
                        log.line(format!(
                            "thread {t}: {} extracted ({})",
                            entry.name()?,
                            human(n)
                        ));
                        total += n;
                    }
                    Ok(total)
                })
        })
        .collect::<io::Result<Vec<_>>>()?;

    let mut unpacked = 0;
    for worker in workers {
        unpacked += worker.join().expect("an extracting thread panicked")?;
    }
    let streamed = local.join().expect("the local-header thread panicked")?;
    let len = cache.wait_complete()?;
    log.line(format!(
        "done: {len} bytes read once; {} entries ({}) extracted by {} threads from the \
         directory, {streamed} streamed out in arrival order; every CRC-32 checked",
        archive.len(),
        human(unpacked),
        args.threads
    ));
    if streamed != archive.len() {
        return Err(format!(
            "{streamed} entries by their local headers, {} in the directory",
            archive.len()
        )
        .into());
    }
    Ok(())
}

fn human(bytes: u64) -> String {
    match bytes {
        n if n >= 10 << 20 => format!("{} MiB", n >> 20),
        n if n >= 10 << 10 => format!("{} KiB", n >> 10),
        n => format!("{n} bytes"),
    }
}

/// Prints lines stamped with the time since the stream started and how much of it had arrived.
#[derive(Clone)]
struct Log {
    start: Instant,
    cache: StreamCache,
}

impl Log {
    fn line(&self, text: String) {
        let arrived = match self.cache.expected_len() {
            Some(len) if len > 0 => format!("{:3}%", self.cache.available() * 100 / len),
            _ => format!("{} MiB", self.cache.available() >> 20),
        };
        println!(
            "[{:6.2} s, {arrived} arrived] {text}",
            self.start.elapsed().as_secs_f64()
        );
    }
}

/// Writes the built-in archive to an unnamed temp file: stored entries of incompressible bytes
/// and deflated entries of text, alternating.
fn build_zip() -> io::Result<File> {
    let mut zip = ZipWriter::new(tempfile::tempfile()?);
    let mut buf = vec![0u8; 1 << 20];
    for i in 0..ENTRIES {
        let (name, method, level) = if i % 2 == 0 {
            (
                format!("data/random-{i}.bin"),
                CompressionMethod::Stored,
                None,
            )
        } else {
            (
                format!("logs/day-{i}.log"),
                CompressionMethod::Deflated,
                Some(1),
            )
        };
        let options = SimpleFileOptions::default()
            .compression_method(method)
            .compression_level(level);
        zip.start_file(name, options).map_err(io::Error::other)?;
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15 ^ i as u64);
        let mut written = 0;
        while written < ENTRY_LEN {
            let n = buf.len().min(ENTRY_LEN - written);
            if method == CompressionMethod::Stored {
                rng.fill(&mut buf[..n]);
            } else {
                rng.fill_text(&mut buf[..n]);
            }
            zip.write_all(&buf[..n])?;
            written += n;
        }
    }
    let mut file = zip.finish().map_err(io::Error::other)?;
    file.seek(SeekFrom::Start(0))?;
    Ok(file)
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let word = self.next().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }

    /// Log-like lines from a small vocabulary: compressible, but not trivially.
    fn fill_text(&mut self, buf: &mut [u8]) {
        const WORDS: [&[u8]; 16] = [
            b"GET",
            b"PUT",
            b"/index.html",
            b"/api/v1/items",
            b"200",
            b"404",
            b"OK",
            b"cache",
            b"miss",
            b"hit",
            b"user",
            b"session",
            b"took",
            b"ms",
            b"bytes",
            b"retry",
        ];
        let mut at = 0;
        while at < buf.len() {
            let r = self.next();
            let (word, gap): (&[u8], &[u8]) = if r.is_multiple_of(12) {
                (b"\n", b"")
            } else {
                (WORDS[(r >> 8) as usize % WORDS.len()], b" ")
            };
            for &b in word.iter().chain(gap) {
                if at == buf.len() {
                    return;
                }
                buf[at] = b;
                at += 1;
            }
        }
    }
}

/// A source that delivers at most `rate` MB/s: a file standing in for a download.
struct Throttled<R> {
    inner: R,
    bytes_per_s: f64,
    start: Option<Instant>,
    sent: u64,
}

impl<R> Throttled<R> {
    fn new(inner: R, mb_per_s: f64) -> Self {
        Self {
            inner,
            bytes_per_s: mb_per_s * 1e6,
            start: None,
            sent: 0,
        }
    }
}

impl<R: Read> Read for Throttled<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let start = *self.start.get_or_insert_with(Instant::now);
        // Pieces of at most 1 MiB, each delivered no earlier than the rate allows.
        let want = buf.len().min(1 << 20);
        let n = self.inner.read(&mut buf[..want])?;
        self.sent += n as u64;
        let due = Duration::from_secs_f64(self.sent as f64 / self.bytes_per_s);
        if let Some(wait) = due.checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
        Ok(n)
    }
}

struct Args {
    input: Option<String>,
    threads: usize,
    rate: f64,
}

impl Args {
    fn parse() -> Result<Self, String> {
        let usage = "usage: zip_stream [--threads N] [--rate MB_PER_S] [PATH | URL]";
        let mut args = Args {
            input: None,
            threads: 4,
            rate: 200.0,
        };
        let mut it = std::env::args().skip(1);
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "--threads" => {
                    args.threads = it
                        .next()
                        .and_then(|n| n.parse().ok())
                        .filter(|&n| n > 0)
                        .ok_or("--threads takes a positive number")?;
                }
                "--rate" => {
                    args.rate = it
                        .next()
                        .and_then(|n| n.parse().ok())
                        .filter(|&r: &f64| r > 0.0)
                        .ok_or("--rate takes a positive number of MB/s")?;
                }
                "-h" | "--help" => {
                    println!("{usage}");
                    std::process::exit(0);
                }
                _ if args.input.is_none() && !arg.starts_with("--") => args.input = Some(arg),
                _ => return Err(format!("unexpected argument {arg:?}; {usage}")),
            }
        }
        Ok(args)
    }
}
