//! Read one byte stream once; let many threads read any part of it as soon as it has arrived,
//! without copying it.
//!
//! A [`StreamCache`] starts one filler thread that drains a source (any [`Read`](std::io::Read),
//! or an iterator of chunks) into memory, then into a growing memory-mapped temp file, and
//! publishes how far it got. Any number of threads read from it at the same time, through
//! cloneable handles: [`slice`](StreamCache::slice) and [`bytes`](StreamCache::bytes) hand out the
//! stored bytes themselves, [`read_at`](StreamCache::read_at) copies, and a [`Reader`] is a
//! `Read + BufRead + Seek` cursor. A read of bytes that have not arrived yet waits for exactly
//! those bytes, parked, and is woken as soon as they are there (a reader that keeps pace with
//! a fast source first yields for a few microseconds, at most 50, when the next bytes are due
//! sooner than a park and a wake-up would take).
//!
//! ```
//! use std::io::Read;
//! use streamcache::StreamCache;
//!
//! // Any `Read + Send + 'static`: a file, a pipe, an HTTP body.
//! let source = std::io::repeat(b'x').take(10 << 20);
//! let cache = StreamCache::builder().memory_limit(1 << 20).spawn(source)?;
//!
//! // The end of the stream, while the beginning may still be arriving.
//! let tail = cache.clone();
//! let t = std::thread::spawn(move || tail.slice((10 << 20) - 4..).map(|s| s.to_vec()));
//!
//! // A cursor, as for any reader.
//! let mut all = Vec::new();
//! cache.reader().read_to_end(&mut all)?;
//! assert_eq!(all.len(), 10 << 20);
//! assert_eq!(t.join().unwrap()?, b"xxxx");
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! The rest of this page is a short book: [recipes](#recipes) for the three jobs the crate exists
//! for, [how it compares](#how-it-compares) with the alternatives, [the safety
//! model](#the-safety-model), [errors](#errors), [limits](#limits) and
//! [performance](#performance).
//!
//! # Recipes
//!
//! Each recipe has a runnable example in the repository's `examples/` folder and an integration
//! test in `tests/` that uses the same third-party crates against a real (local) source.
//!
//! ## Share one HTTP download among many threads
//!
//! A blocking HTTP client's body is a plain `Read`: hand it to the cache as it is, with the
//! Content-Length as [`Builder::expected_len`] so that the spill file is reserved in one step.
//! Every thread then gets its own [`Reader`]; the body is fetched once, and each thread reads
//! each part as soon as it has arrived. With [`ureq`](https://docs.rs/ureq) (3.x):
//!
//! ```no_run
//! use sha2::{Digest, Sha256};
//! use std::io::BufRead;
//! use streamcache::StreamCache;
//!
//! let response = ureq::get("https://example.com/big.iso").call()?;
//! let mut builder = StreamCache::builder().max_len(64 << 30); // refuse absurd bodies
//! if let Some(len) = response.body().content_length() {
//!     builder = builder.expected_len(len);
//! }
//! let cache = builder.spawn(response.into_body().into_reader())?;
//!
//! let threads: Vec<_> = (0..8)
//!     .map(|_| {
//!         let mut reader = cache.reader();
//!         std::thread::spawn(move || -> std::io::Result<_> {
//!             let mut hasher = Sha256::new();
//!             loop {
//!                 // The cache's own memory, no copy; waits only when nothing is there yet.
//!                 let buf = reader.fill_buf()?;
//!                 if buf.is_empty() {
//!                     return Ok(hasher.finalize());
//!                 }
//!                 hasher.update(buf);
//!                 let n = buf.len();
//!                 reader.consume(n);
//!             }
//!         })
//!     })
//!     .collect();
//! let digests = threads
//!     .into_iter()
//!     .map(|t| t.join().unwrap())
//!     .collect::<std::io::Result<Vec<_>>>()?;
//! assert!(digests.windows(2).all(|w| w[0] == w[1]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A client that hands out its body in chunks (an iterator of `io::Result<impl AsRef<[u8]>>`)
//! goes in through [`Builder::spawn_chunks`] instead. If the connection breaks, every reader that
//! needs a byte past the break gets the client's error; what arrived before stays readable.
//! To pick a broken download up where it broke instead, open it through
//! [`Builder::spawn_resumable`], which calls your `open(offset)` again after a transient error
//! (for HTTP: a `Range: bytes=offset-` request; check for `206` and the `Content-Range`, since
//! a server that ignores `Range` answers `200` from byte 0).
//! Example: `cargo run --release --features http --example http_share -- [--resume] URL [THREADS]`. Tests:
//! `tests/http.rs`, `tests/http_resume.rs`.
//!
//! ## Parse an archive while it is still arriving
//!
//! A [`Reader`] is `Read + Seek + BufRead`, so archive crates take it as they take a file. A
//! seek costs nothing, and a read waits only for the bytes it needs. A zip's central directory
//! is the last thing in the archive: `zip::ZipArchive::new` seeks to the end for it, which waits
//! for the end of the stream. Its entries can come out earlier, in arrival order, by their local
//! headers; and once the directory is there, clones of the archive (each with its own cursor) read
//! entries on several threads straight from the cache.
//!
//! ```
//! use std::io::{Cursor, Read, Write};
//! use streamcache::StreamCache;
//!
//! # let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
//! # for name in ["a.txt", "b.txt"] {
//! #     zip.start_file(name, zip::write::SimpleFileOptions::default())?;
//! #     zip.write_all(name.repeat(1000).as_bytes())?;
//! # }
//! # let download = Cursor::new(zip.finish()?.into_inner());
//! // `download` is any `Read + Send + 'static` source of a zip file.
//! let cache = StreamCache::new(download)?;
//!
//! // In arrival order: each entry as soon as its last byte is there.
//! let mut reader = cache.reader();
//! while let Some(mut entry) = zip::read::read_zipfile_from_stream(&mut reader)? {
//!     let mut text = String::new();
//!     entry.read_to_string(&mut text)?;
//!     println!("{}: {} bytes", entry.name()?, text.len());
//! }
//!
//! // Random access by the central directory: waits for the end of the stream.
//! let archive = zip::ZipArchive::new(cache.reader())?;
//! let mut other = archive.clone(); // e.g. for another thread: its own cursor
//! assert_eq!(other.by_name("b.txt")?.size(), 5000);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Formats read front to back need no seek at all: a `.tar.gz` unpacks through
//! `tar::Archive::new(flate2::bufread::GzDecoder::new(cache.reader()))`, entry by entry as the
//! stream arrives (the gzip decoder reads the cache's memory through
//! [`BufRead::fill_buf`](std::io::BufRead::fill_buf)).
//! Example: `cargo run --release --example zip_stream`. Tests: `tests/archives.rs`.
//!
//! ## Read the end of a download first: random access on demand
//!
//! A source that can be opened at any range (HTTP with `Range`, an object store, a file) goes
//! in through [`Builder::spawn_ranged`]: the filler reads it front to back as before, and a
//! read that needs a byte far ahead of it ([`Builder::fetch_ahead`]) fetches that range at
//! once, on a thread of its own, while the fill goes on. `zip::ZipArchive::new` then returns
//! as soon as the central directory at the end has arrived, and an entry can be read before
//! the bytes in front of it have: nothing waits for the whole download.
//!
//! ```
//! use std::io::{Cursor, Read, Write};
//! use streamcache::StreamCache;
//!
//! # let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
//! # let stored = zip::write::SimpleFileOptions::default()
//! #     .compression_method(zip::CompressionMethod::Stored);
//! # for (name, size) in [("big.bin", 3 << 20), ("last.txt", 5)] {
//! #     zip.start_file(name, stored)?;
//! #     zip.write_all(&vec![b'z'; size])?;
//! # }
//! # let file = zip.finish()?.into_inner();
//! // `file` stands for a remote zip: `open(a..b)` returns exactly its bytes `[a, b)`, e.g. the
//! // body of an HTTP request with `Range: bytes=a-(b-1)`.
//! let len = file.len() as u64;
//! let cache = StreamCache::builder()
//!     .fetch_ahead(1 << 20) // reads this far ahead of the fill fetch their range now
//!     .spawn_ranged(len, move |range| {
//!         Ok(Cursor::new(file[range.start as usize..range.end as usize].to_vec()))
//!     })?;
//!
//! let mut archive = zip::ZipArchive::new(cache.reader())?; // the central directory, fetched
//! let mut last = String::new();
//! archive.by_name("last.txt")?.read_to_string(&mut last)?;
//! assert_eq!(last, "zzzzz");
//! println!("present so far: {:?}", cache.present()); // the start, and ranges near the end
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Every byte handed out is the source's: the fill re-opens past what a fetch brought (or
//! reads through a short range and compares it: a source that changed fails the stream with
//! `InvalidData`, never a splice of two versions), breaks are resumed as for
//! [`Builder::spawn_resumable`], and dropping every handle stops the fill and every fetch.
//! Tests: `tests/ranged.rs`, `tests/ranged_model.rs`.
//!
//! A ranged stream's length is known from the start: [`StreamCache::known_len`] returns it at
//! once (a plain source's only once it is complete), and a [`Reader`]'s
//! `seek(SeekFrom::End(n))` uses it without waiting, which is what zip and footer readers do
//! first. A long read far ahead is fetched by up to [`Builder::max_fetches`] spans at once;
//! [`StreamCache::prefetch`] asks for a range you will need soon without waiting for it (a
//! parquet footer's column chunks, say), so that its fetches run while you do something else.
//!
//! ## Many connections fill one stream
//!
//! Servers and object stores often limit each connection (a CDN's per-connection rate, S3's
//! roughly 100 MB/s): download tools open several and make you wait for the end.
//! [`Builder::connections`] gives a ranged stream both: `n` transfers fill it at once, each a
//! [`fetch_span`](Builder::fetch_span), the lowest missing span first, so
//! [`available`](StreamCache::available) still grows from 0 in order at up to `n` times one
//! connection's rate, and every reader reads as it grows. Far reads keep their own
//! [`max_fetches`](Builder::max_fetches), so they never queue behind the fill.
//!
//! ```
//! use std::io::{Cursor, Read};
//! use streamcache::StreamCache;
//!
//! # let file: Vec<u8> = (0..=255u8).cycle().take(8 << 20).collect();
//! # let expected = file.clone();
//! // `file` stands for a remote object: `open(a..b)` returns exactly its bytes `[a, b)`.
//! let len = file.len() as u64;
//! let cache = StreamCache::builder()
//!     .connections(8) // eight spans in flight at once, lowest first
//!     .fetch_span(1 << 20) // one request per MiB
//!     .spawn_ranged(len, move |range| {
//!         Ok(Cursor::new(file[range.start as usize..range.end as usize].to_vec()))
//!     })?;
//! // A reader in order, from the first byte, while the spans arrive.
//! let mut all = Vec::new();
//! cache.reader().read_to_end(&mut all)?;
//! assert_eq!(all, expected);
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! For a URL it is the same builder: `StreamCache::builder().connections(8).spawn_url(url)`
//! (used when the server answers `Range` with a `206`; a plain answer is read as it comes).
//!
//! When to raise it: when one connection is slower than your readers and the limit is per
//! connection, not your link. What it costs: up to `n + max_fetches` requests in flight at
//! once, and one request per span instead of one in all (pick a `fetch_span` that keeps
//! requests to a few per second per connection: 4 MiB at 16 MiB/s is four). Bytes sent stay
//! within `len + n × fetch_span` (a span is sent again only from where a break cut it).
//! Tests: `tests/connections.rs`; in Python, `StreamCache(url, connections=8)`.
//!
//! ## Hash and scan in parallel, in one pass
//!
//! Give each consumer its own [`Reader`] and let it consume
//! [`BufRead::fill_buf`](std::io::BufRead::fill_buf): every thread reads the cache's memory
//! directly, at its own pace, and the source is read once. A slow consumer does not hold back a
//! fast one, and nothing waits for the slowest reader to free a buffer: the bytes stay until the
//! last handle drops.
//!
//! ```
//! use sha2::{Digest, Sha256};
//! use std::io::{BufRead, Read};
//! use streamcache::StreamCache;
//!
//! let source = std::io::repeat(b'a').take(3 << 20); // a file, a pipe, a download
//! let cache = StreamCache::new(source)?;
//!
//! let mut for_hash = cache.reader();
//! let hash = std::thread::spawn(move || -> std::io::Result<_> {
//!     let mut hasher = Sha256::new();
//!     loop {
//!         let buf = for_hash.fill_buf()?;
//!         if buf.is_empty() {
//!             return Ok(hasher.finalize());
//!         }
//!         hasher.update(buf);
//!         let n = buf.len();
//!         for_hash.consume(n);
//!     }
//! });
//! let mut for_scan = cache.reader();
//! let scan = std::thread::spawn(move || -> std::io::Result<usize> {
//!     let mut count = 0;
//!     loop {
//!         let buf = for_scan.fill_buf()?;
//!         if buf.is_empty() {
//!             return Ok(count);
//!         }
//!         count += buf.iter().filter(|&&b| b == b'a').count();
//!         let n = buf.len();
//!         for_scan.consume(n);
//!     }
//! });
//! assert_eq!(scan.join().unwrap()?, 3 << 20);
//! let digest = hash.join().unwrap()?;
//! assert_eq!(digest, Sha256::digest(vec![b'a'; 3 << 20]));
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Example: `cargo run --release --example fanout` (2 GiB of generated input, 4 readers; or a
//! file, `-` for standard input, or an `http(s)://` URL; `--readers N`, `--memory-limit 64M`).
//!
//! ## Download a URL, resumed where it breaks (feature `http`)
//!
//! With the feature `http`, `Builder::spawn_url` is the first recipe written once, with ureq
//! (rustls): its first request asks for `Range: bytes=0-`. A server that answers with the range
//! gives the length at once (the cache's `expected_len`), and a download that breaks goes on
//! where it broke, with `Range` and `If-Range` (the first answer's `ETag`): a resource that
//! changed meanwhile fails the stream with `InvalidData`, never splices other bytes in. A server
//! that ignores `Range` is read once, as it comes. Statuses become error kinds (`404` is
//! `NotFound`, `403` `PermissionDenied`), returned by `spawn_url` itself for the first
//! request; no message shows the URL's query string. `http_header` adds a header to every
//! request, `http_agent` sets the `ureq::Agent` (proxies, TLS, timeouts).
//!
//! ```
//! # #[cfg(feature = "http")]
//! # {
//! # use std::io::{BufRead, BufReader, Write};
//! # let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
//! # let url = format!("http://{}/data.bin?token=secret", listener.local_addr()?);
//! # std::thread::spawn(move || -> std::io::Result<()> {
//! #     let (conn, _) = listener.accept()?;
//! #     let mut head = BufReader::new(&conn);
//! #     let mut line = String::new();
//! #     while head.read_line(&mut line)? > 2 {
//! #         line.clear();
//! #     }
//! #     (&conn).write_all(b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-9999/10000\r\n")?;
//! #     (&conn).write_all(b"Content-Length: 10000\r\nETag: \"v1\"\r\n\r\n")?;
//! #     (&conn).write_all(&[7; 10000])
//! # });
//! use std::time::Duration;
//! use streamcache::StreamCache;
//!
//! // `url`: any http(s) URL (here a local server's, which answers with the range).
//! let cache = StreamCache::builder()
//!     .http_header("Authorization", "Bearer TOKEN")
//!     .retries(5) // breaks in a row without progress, before giving up
//!     .retry_backoff(Duration::from_millis(500))
//!     .spawn_url(&url)?;
//! assert_eq!(cache.expected_len(), Some(10_000));
//! let threads: Vec<_> = (0..4)
//!     .map(|_| {
//!         let cache = cache.clone();
//!         std::thread::spawn(move || cache.slice(..).map(|all| all.len()))
//!     })
//!     .collect();
//! for t in threads {
//!     assert_eq!(t.join().unwrap()?, 10_000);
//! }
//! # }
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Example: `cargo run --release --features http --example http_share -- URL [THREADS]` (the
//! `http_share` example needs the feature). Tests: `tests/http_url.rs`.
//!
//! ## An object in S3, GCS or Azure, read on demand (feature `object-store`)
//!
//! With the feature `object-store`, `Builder::spawn_object_url` (or `spawn_object`, for a store
//! of your own: any `object_store::ObjectStore`) makes an object a ranged source: one `head`
//! gives its size, then every range is a `get_opts` with `if_match` set to its `e_tag`, so an
//! object overwritten while it is read fails the reads that need missing bytes with
//! `InvalidData` and is never spliced. A zip's central directory, a parquet footer, the last
//! entry: each is fetched when it is read, while the fill goes on (over `connections` requests
//! at once, if asked). With `defer_fill(true)` the fill waits until a read needs the front, so
//! a reader that takes a few entries of a large zip costs little more than those entries
//! (on moto, 1.6 % of a 256 MiB zip for its directory and last entry; by default the whole
//! object arrives meanwhile on a fast link). Options are object_store's keys; an unknown key is `InvalidInput`, so a
//! typo cannot send the requests elsewhere. Here, S3 with explicit credentials and endpoint
//! (such as MinIO's or moto's, on this machine):
//!
//! ```no_run
//! # #[cfg(feature = "object-store")]
//! # {
//! use std::io::Read;
//! use streamcache::StreamCache;
//!
//! let options = [
//!     ("aws_endpoint", "http://127.0.0.1:9000"),
//!     ("aws_allow_http", "true"),
//!     ("aws_region", "us-east-1"),
//!     ("aws_access_key_id", "AKIA..."),
//!     ("aws_secret_access_key", "..."), // never in a message or a `Debug`
//! ];
//! let cache = StreamCache::builder()
//!     .defer_fill(true) // nothing in order until a read needs the front
//!     .connections(8) // then the fill over 8 ranged GETs at once
//!     .spawn_object_url("s3://bucket/archives/data.zip", &options)?;
//! let mut zip = zip::ZipArchive::new(cache.reader())?; // the central directory, fetched
//! let mut last = Vec::new();
//! zip.by_index(zip.len() - 1)?.read_to_end(&mut last)?; // the last entry, fetched
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The cloud stores use reqwest with rustls on ring (no C toolchain beyond ring's, no cmake):
//! `spawn_object_url` makes ring the process's TLS provider if none is; a program that builds
//! its own store for `spawn_object` installs one first
//! (`rustls::crypto::ring::default_provider().install_default()`), and so does one that builds a
//! reqwest client of its own without a TLS feature of its own (Cargo unifies reqwest's
//! features; with reqwest's `rustls`, aws-lc is its provider). Tests:
//! `tests/object_store.rs` (object_store's `InMemory` and `LocalFileSystem`),
//! `tests/object_servers.rs` (moto's S3 and Azurite, run by CI).
//!
//! ## One download for every process on the machine (`cache_dir`)
//!
//! With `Builder::cache_dir`, a ranged stream (a URL answered with `206` and a validator, an
//! object, or `spawn_ranged` with a `cache_key`) lives in a named entry of that directory.
//! Every process that opens the same key attaches to it: one becomes its writer (a lock the
//! kernel drops when the process ends), the others read it zero-copy as it arrives, their
//! waits woken by the writer's publishes (Linux: a futex in the entry's header), their far
//! reads fetched by the writer. A writer that dies is taken over by a reader within 100 ms,
//! fetching only what is missing; a later run finds the entry complete. `cache_limit`
//! removes unused entries, least recently used first. Here, the same program run by many
//! processes at once (workers of a pool, one per GPU, a later run) downloads the file once:
//!
//! ```
//! # #[cfg(unix)] {
//! use std::io::Cursor;
//! use streamcache::StreamCache;
//!
//! # let dir = tempfile::tempdir()?;
//! # let cache_dir = dir.path().join("downloads");
//! # let file: Vec<u8> = (0..=255u8).cycle().take(1 << 20).collect();
//! # let expected = file.clone();
//! // `cache_dir` is e.g. `~/.cache/my-app`; `open(a..b)` returns exactly the file's `[a, b)`
//! // (or use `spawn_url`, which keys the entry by URL and ETag by itself).
//! let cache = StreamCache::builder()
//!     .cache_dir(&cache_dir)
//!     .cache_limit(20 << 30)
//!     .cache_key("https://example.com/model.bin@v3")
//!     .spawn_ranged(file.len() as u64, move |r| {
//!         Ok(Cursor::new(file[r.start as usize..r.end as usize].to_vec()))
//!     })?;
//! let weights = cache.bytes(..)?; // zero-copy, shared with the other processes
//! # assert_eq!(weights, expected);
//! # }
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Unix only (elsewhere `cache_dir` gives a private cache); keep the directory on a local
//! filesystem, where `flock` holds. Tests: `tests/cache_dir.rs` (child processes: eight on
//! one key, a writer killed mid-write, one stopped, torn entries, eviction, a full disk).
//!
//! # How it compares
//!
//! | | streamcache | [streamcatcher] | [stream-download] | [`tempfile::SpooledTempFile`] | Python's [`buffer`] |
//! |---|---|---|---|---|---|
//! | Who reads the source | one filler thread, always ahead | whichever reader needs new bytes, under a lock (or a loader thread) | a tokio task | you write into it | whichever read needs new bytes, under a lock |
//! | Readers at once | any number of handles, each with its own cursor | any number of handles | one `Read + Seek` handle per download | one handle | one object, reads serialized |
//! | A read past what has arrived | waits for exactly those bytes | reads the source itself | waits; a seek ahead restarts the download from there | returns 0 (end of file) | pulls from the iterable |
//! | Zero-copy access | `slice`, `bytes`, `fill_buf` hand out the stored bytes | no: copies into your buffer | no | no | no |
//! | Where the bytes live | memory up to `memory_limit`, then one unnamed mmap'd temp file | memory only; copied into one buffer when the stream ends | memory, a named temp file, or a bounded ring | memory up to `max_size`, then an unnamed temp file | memory up to a limit, then a temp file |
//! | Stream larger than RAM | yes, anonymous memory stays flat | no | yes (temp file, or bounded) | yes | yes |
//! | A source error | kept, and returned to every reader that needs a byte past it | returned to the read that hit it | reconnects when a stream stalls | not applicable | raised to the read that hit it |
//! | Async | `wait_for_async`, `bytes_async` | yes (feature `async`) | async first (tokio) | no | no |
//!
//! In short: streamcatcher shares a stream among readers but keeps it all in memory and copies
//! out of it; stream-download is made for one media player reading a download with seeks (and
//! can restart it with range requests, which a plain `Read` source cannot); `SpooledTempFile`
//! spills like streamcache but has one owner and no notion of bytes still to come; Python's
//! `buffer` wraps an iterable in a spooled file with a lock. None of them hands several threads
//! the stored bytes themselves while the stream is still arriving, which is what streamcache is
//! for. The peers are measured side by side in `benches/`.
//!
//! [streamcatcher]: https://docs.rs/streamcatcher
//! [stream-download]: https://docs.rs/stream-download
//! [`tempfile::SpooledTempFile`]: https://docs.rs/tempfile/latest/tempfile/struct.SpooledTempFile.html
//! [`buffer`]: https://pypi.org/project/buffer/
//!
//! # The safety model
//!
//! Readers get `&[u8]` into memory that another thread is still filling; this is sound because
//! of four facts, each checked by a test:
//!
//! * **Published bytes never change and never move.** The filler is the only writer (a ranged
//!   source's fetches each write only bytes they claimed) and writes only at or above the
//!   published mark: through a raw pointer into the memory arena, and past it with `pwrite`
//!   into the spill file, whose mapping readers read (the mapping and `pwrite` share the page
//!   cache); readers only ever build slices below the mark. The mark is stored with `Release`
//!   after the bytes are written and loaded with `Acquire` before a slice is made, so a reader
//!   sees the bytes the mark promises.
//! * **Slices stay valid.** The whole stream `[0, len)` is one contiguous range of the newest
//!   mapping. When the spill file outgrows its mapping, a larger mapping is added and the older
//!   ones stay mapped until the storage itself drops, so a slice borrowed from a handle stays
//!   valid for as long as that handle, and a [`bytes::Bytes`] keeps the storage alive on its own.
//! * **No SIGBUS.** Writing through a mapping of a sparse file on a full disk kills the process
//!   with SIGBUS. Here the spill file's blocks are reserved (`posix_fallocate`: the expected
//!   length at once, then steps of 256 MiB to 1 GiB) before the filler writes there, so a full
//!   disk is an `io::Error`
//!   (`StorageFull`) for the readers that need the bytes that did not fit. The file is created
//!   unnamed (`tempfile::tempfile_in`): no other process can open and truncate it under the
//!   mapping, and nothing is left on disk, even if the process is killed.
//! * **Drop.** When every [`StreamCache`] and [`Reader`] of a stream is dropped, the filler stops
//!   before its next read from the source and drops the source; the memory and the file go with
//!   the last handle (or [`bytes::Bytes`]).
//!   Dropping never blocks; a filler stuck inside a source's `read` (a stalled socket) leaves
//!   when that read returns, so give network sources a timeout. A live `Bytes` keeps only the
//!   storage, not the filler.
//!
//! # Errors
//!
//! A source error at offset N reaches every reader that needs a byte at or past N, with the
//! source's [`ErrorKind`](std::io::ErrorKind) and message; everything before N stays readable.
//! A panicking source fails the stream the same way. Running out of disk, or past
//! [`Builder::max_len`], is `StorageFull`. Bad arguments (inverted ranges, offsets that overflow,
//! seeking before 0) are `InvalidInput` errors, never panics.
//!
//! # Limits
//!
//! * The source is read on its own thread, one per cache: many small caches cost one thread each.
//! * A stream lives in one contiguous mapping per growth step: on 64-bit targets the spill file
//!   is mapped 64 GiB ahead and grows past that by adding mappings; on 32-bit targets a stream
//!   must fit the address space (see Platforms).
//! * What each platform does, and what is tested where, is under Platforms below.
//!
//! # Platforms
//!
//! | Platform | Checked on every CI run (`.ci/run`) |
//! |---|---|
//! | Linux x86-64 | every test, the doc tests and the loom models, run |
//! | Linux i686 (32-bit) | every test, run (`scripts/cross`) |
//! | macOS x86-64, Windows x86-64 (MSVC) | library, tests and examples compiled and linted (`cargo check`, `cargo clippy`), not run (`scripts/cross`) |
//! | Rust 1.83, the MSRV | library built; the tests that need no dev-dependency but proptest, run (`scripts/msrv`) |
//!
//! Each platform's rules live in one file, `src/os/`:
//!
//! * **Linux, other Unix:** the spill file is mapped far ahead of its end and grows under the
//!   mapping; its blocks are reserved with `posix_fallocate` before a byte is written there
//!   (`posix_fallocate64` on 32-bit glibc, whose `off_t` has 32 bits).
//! * **macOS:** there is no `posix_fallocate`: blocks are reserved with `fcntl(F_PREALLOCATE)`
//!   (contiguous if it can, else any), then the file is extended over them; otherwise as Linux.
//! * **Windows:** a view may not reach past the end of the file, so each growth step extends the
//!   file with `set_len` (NTFS allocates the clusters: a full disk fails there, not in a write)
//!   and maps a new view of the whole stream, keeping the older views mapped until the storage
//!   drops. Published bytes never move: the file only grows, which Windows allows under mapped
//!   views (only shrinking is refused), so every old view keeps its bytes.
//! * **32-bit:** address space is scarce: the first file mapping takes 256 MiB (64 GiB on 64-bit
//!   targets), each growth doubles it, and no mapping exceeds `isize::MAX` (2 GiB). Where the
//!   address space has no room for the mapping wanted, the largest that fits is taken; a stream
//!   that no longer fits one contiguous mapping fails with `OutOfMemory`, and every byte before
//!   stays readable. That is about 1 GiB; give [`Builder::expected_len`] to get up to 2 GiB in
//!   one mapping.
//! * **MSRV:** Rust 1.83 (`rust-version`), set by `io::ErrorKind::StorageFull`, stable since
//!   1.83. It needs dependency versions that still build there: Cargo's MSRV-aware resolver
//!   picks them (`resolver = "3"`, or `CARGO_RESOLVER_INCOMPATIBLE_RUST_VERSIONS=fallback`). The
//!   dev-dependencies need the latest stable Rust.
//!
//! # Performance
//!
//! Page faults, not copies, are what limits a stream's speed: writing into fresh anonymous memory
//! or a freshly reserved file page costs far more than the copy itself. The filler reads straight
//! into the storage (one copy, from the source's buffer), the arena asks for huge pages, and the
//! spill file is reserved far ahead of the writer; readers read the stored bytes in place.
//! `cargo run -p streamcache-benches --release --bin report` measures streamcache next to its peers
//! (a hand-written `Mutex<Vec<u8>>`, streamcatcher, stream-download, `SpooledTempFile`) and next to
//! the machine's own limits, in one run, and prints the ratios. It also runs the same dataflow with
//! no library at all (one writer, readers spinning on an atomic), so that a ratio below target
//! shows whether the machine, its memory bandwidth shared by the writer and every reader, allows
//! more. The criterion benches in `benches/` measure the same workloads one by one.
//! `cargo run --release --example fanout` prints the stream's MB/s and each reader's for your
//! machine.

#![deny(missing_docs, unsafe_op_in_unsafe_fn)]
// Cargo.toml allows this lint for the tests, which only the latest stable builds; the library
// itself must build with `rust-version`.
#![warn(clippy::incompatible_msrv)]
#![warn(missing_debug_implementations, unreachable_pub, rust_2018_idioms)]

#[cfg(any(feature = "tokio", feature = "futures-io"))]
mod async_io;
mod builder;
mod cache;
mod cancel;
#[cfg(unix)]
mod dir;
#[cfg(not(unix))]
#[path = "dir/fallback.rs"]
mod dir;
mod filler;
mod pace;
mod range;
mod ranged;
mod ranges;
mod reader;
mod settings;
mod shared;
mod source;
mod status;
mod storage;
mod sync;
mod wait_async;
mod watermark;
mod zero_copy;

pub use builder::Builder;
pub use cache::StreamCache;
pub use reader::Reader;
pub use status::Status;

/// The error kinds after which a resumable source ([`Builder::spawn_resumable`]) is opened
/// again at the offset it reached, within [`Builder::retries`]. Every other kind (`NotFound`,
/// `PermissionDenied`, `InvalidData`, …) fails the stream at once.
///
/// `UnexpectedEof` stands for a source that ended before [`Builder::expected_len`];
/// `Interrupted` from a read is retried at once on the same reader, and counts here only when
/// `open` itself returns it.
///
/// # Examples
///
/// ```
/// use std::io::ErrorKind;
///
/// assert!(streamcache::TRANSIENT_ERROR_KINDS.contains(&ErrorKind::ConnectionReset));
/// assert!(!streamcache::TRANSIENT_ERROR_KINDS.contains(&ErrorKind::NotFound));
/// ```
pub const TRANSIENT_ERROR_KINDS: &[std::io::ErrorKind] = &[
    std::io::ErrorKind::ConnectionReset,
    std::io::ErrorKind::ConnectionAborted,
    std::io::ErrorKind::BrokenPipe,
    std::io::ErrorKind::TimedOut,
    std::io::ErrorKind::Interrupted,
    std::io::ErrorKind::UnexpectedEof,
];

/// The README's example, compiled and run as a doc test so that it cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
