//! [`Builder`]: the settings of a cache, and starting its filler thread.

use crate::cache::StreamCache;
use crate::filler;
use crate::range::invalid_input;
use crate::ranged::OpenRange;
use crate::settings::Settings;
use crate::shared::Shared;
use crate::source::{BlockingStream, Chunks, Plain, Resumable, Source};
use std::io::{self, Read};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// Settings for a [`StreamCache`], then [`spawn`](Builder::spawn) to start reading.
///
/// # Examples
///
/// ```
/// use streamcache::StreamCache;
///
/// let cache = StreamCache::builder()
///     .memory_limit(64 << 10)           // spill to a temp file past 64 KiB
///     .temp_dir(std::env::temp_dir())
///     .expected_len(1 << 20)            // e.g. from Content-Length
///     .max_len(1 << 30)                 // refuse streams over 1 GiB
///     .chunk_size(16 << 10)             // read the source 16 KiB at a time
///     .thread_name("download")
///     .spawn(std::io::Read::take(std::io::repeat(1), 1 << 20))?;
/// assert_eq!(cache.wait_complete()?, 1 << 20);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Builder {
    pub(crate) settings: Settings,
    /// What `spawn_url` sends (feature `http`; its methods are in `http.rs`).
    #[cfg(feature = "http")]
    pub(crate) http: crate::source::http::HttpSettings,
    /// What `spawn_object` runs on (feature `object-store`; its methods are in `object.rs`).
    #[cfg(feature = "object-store")]
    pub(crate) object: crate::source::object::ObjectSettings,
}

impl Builder {
    /// Keeps up to `bytes` of the stream in anonymous memory (default 8 MiB); the rest goes to a
    /// memory-mapped temp file. `0` spills at once.
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = streamcache::StreamCache::builder().memory_limit(0).spawn(&b"x"[..])?;
    /// assert_eq!(cache.slice(..)?, b"x");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn memory_limit(mut self, bytes: usize) -> Builder {
        self.settings.memory_limit = bytes;
        self
    }

    /// Where the spill file is created (default [`std::env::temp_dir`]). The file is unnamed:
    /// nothing is left there, even if the process dies.
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = streamcache::StreamCache::builder()
    ///     .temp_dir(std::env::temp_dir())
    ///     .memory_limit(0) // straight to the spill file
    ///     .spawn(&b"x"[..])?;
    /// assert_eq!(cache.slice(..)?, b"x");
    ///
    /// // A directory that cannot hold the file fails the stream, and the error names it.
    /// let cache = streamcache::StreamCache::builder()
    ///     .temp_dir("/no/such/dir")
    ///     .memory_limit(0)
    ///     .spawn(&b"x"[..])?;
    /// let error = cache.wait_complete().unwrap_err();
    /// assert!(error.to_string().contains("/no/such/dir"), "{error}");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn temp_dir(mut self, dir: impl Into<PathBuf>) -> Builder {
        self.settings.temp_dir = Some(dir.into());
        self
    }

    /// A size hint (such as a Content-Length): sizes the first reservation of the spill file.
    /// Only a hint: a stream longer or shorter completes with its true length.
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = streamcache::StreamCache::builder().expected_len(10).spawn(&b"abc"[..])?;
    /// assert_eq!(cache.wait_complete()?, 3);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn expected_len(mut self, len: u64) -> Builder {
        self.settings.expected_len = Some(len);
        self
    }

    /// A cap: a stream of up to `len` bytes completes normally; past it the cache fails with
    /// `ErrorKind::StorageFull` at offset `len`, every byte before it readable.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::ErrorKind;
    ///
    /// let cache = streamcache::StreamCache::builder().max_len(2).spawn(&b"abc"[..])?;
    /// assert_eq!(cache.wait_complete().unwrap_err().kind(), ErrorKind::StorageFull);
    /// assert_eq!(cache.slice(..2)?, b"ab");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn max_len(mut self, len: u64) -> Builder {
        self.settings.max_len = Some(len);
        self
    }

    /// The largest single read from the source (default 64 KiB). Every read asks for at most
    /// this many bytes, never 0. [`spawn`](Self::spawn) refuses 0. Past `memory_limit`, a read
    /// asks for at most 1 MiB whatever this says: the filler reads those bytes into a buffer of
    /// its own before it writes them to the spill file, and that buffer stays small.
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = streamcache::StreamCache::builder().chunk_size(1).spawn(&b"abc"[..])?;
    /// assert_eq!(cache.wait_complete()?, 3);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn chunk_size(mut self, bytes: usize) -> Builder {
        self.settings.chunk_size = bytes;
        self
    }

    /// The filler thread's name (default `streamcache-filler`). A ranged source's fetch threads
    /// ([`spawn_ranged`](Self::spawn_ranged)) are named after it, with `:fetch` added.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Read;
    ///
    /// // A source that reports the name of the thread it is read on.
    /// struct WhoReads;
    /// impl Read for WhoReads {
    ///     fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
    ///         std::thread::current().name().unwrap_or("?").as_bytes().read(buf)
    ///     }
    /// }
    /// let cache = streamcache::StreamCache::builder()
    ///     .thread_name("fetch")
    ///     .spawn(WhoReads.take(5))?;
    /// assert_eq!(cache.slice(..)?, b"fetch");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn thread_name(mut self, name: impl Into<String>) -> Builder {
        self.settings.thread_name = Some(name.into());
        self
    }

    /// For [`spawn_resumable`](Self::spawn_resumable): how many times the source may be
    /// re-opened at the same offset without any progress in between (default 3). An `open`
    /// that itself fails with a transient error counts as one.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::{Cursor, Error, ErrorKind};
    /// use std::time::Duration;
    ///
    /// // `open` is refused four times before it succeeds: three retries are too few, five do.
    /// let flaky = |retries| {
    ///     let mut refusals = 4;
    ///     streamcache::StreamCache::builder()
    ///         .retries(retries)
    ///         .retry_backoff(Duration::from_millis(1))
    ///         .spawn_resumable(move |_offset| {
    ///             if refusals > 0 {
    ///                 refusals -= 1;
    ///                 return Err(Error::new(ErrorKind::ConnectionReset, "refused"));
    ///             }
    ///             Ok(Cursor::new(b"data"))
    ///         })
    /// };
    /// assert_eq!(flaky(3)?.wait_complete().unwrap_err().kind(), ErrorKind::ConnectionReset);
    /// assert_eq!(flaky(5)?.slice(..)?, b"data");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn retries(mut self, n: u32) -> Builder {
        self.settings.retry.retries = n;
        self
    }

    /// For [`spawn_resumable`](Self::spawn_resumable): the wait before the first re-open
    /// (default 100 ms). It doubles with every failure without progress, up to 30 s, and
    /// starts again from `first` once bytes arrive.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::{Cursor, Error, ErrorKind};
    /// use std::time::{Duration, Instant};
    ///
    /// // Refused twice: the re-opens wait 10 ms, then 20 ms.
    /// let mut refusals = 2;
    /// let start = Instant::now();
    /// let cache = streamcache::StreamCache::builder()
    ///     .retry_backoff(Duration::from_millis(10))
    ///     .spawn_resumable(move |_offset| {
    ///         if refusals > 0 {
    ///             refusals -= 1;
    ///             return Err(Error::new(ErrorKind::TimedOut, "busy"));
    ///         }
    ///         Ok(Cursor::new(b"data"))
    ///     })?;
    /// assert_eq!(cache.slice(..)?, b"data");
    /// assert!(start.elapsed() >= Duration::from_millis(30));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn retry_backoff(mut self, first: Duration) -> Builder {
        self.settings.retry.first_backoff = first;
        self
    }

    /// Starts a filler thread that reads `source` into the cache.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if `chunk_size` is 0; the OS error if the thread cannot be spawned.
    /// Errors of the source and of the storage come later, to the readers that need the bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = streamcache::StreamCache::builder().spawn(&b"abc"[..])?;
    /// assert_eq!(cache.slice(..)?, b"abc");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn spawn(self, source: impl Read + Send + 'static) -> io::Result<StreamCache> {
        self.start(move |_| Plain(source))
    }

    /// Starts a filler thread that copies the chunks of `chunks` into the cache, in order (the
    /// shape of an HTTP client's body chunks). An empty chunk is skipped; an `Err` chunk fails
    /// the stream at that point (except `ErrorKind::Interrupted`, which is retried at once, as
    /// from a `Read` source); the iterator's end is the stream's end. The chunks are made
    /// and dropped on the filler thread, so `B` need not be `Send`.
    ///
    /// # Errors
    ///
    /// As [`spawn`](Self::spawn).
    ///
    /// # Examples
    ///
    /// ```
    /// let chunks = vec![Ok::<_, std::io::Error>("ab"), Ok(""), Ok("c")];
    /// let cache = streamcache::StreamCache::builder().spawn_chunks(chunks)?;
    /// assert_eq!(cache.slice(..)?, b"abc");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn spawn_chunks<I, B>(self, chunks: I) -> io::Result<StreamCache>
    where
        I: IntoIterator<Item = io::Result<B>>,
        I::IntoIter: Send + 'static,
        B: AsRef<[u8]>,
    {
        let chunks = chunks.into_iter();
        self.start(move |_| Chunks::new(chunks))
    }

    /// Starts a filler thread that drives an async `Stream` of chunks (the shape of
    /// `reqwest::Response::bytes_stream()`, with its error mapped into `io::Error`), without
    /// needing the caller's runtime: the filler polls the stream itself and parks while it is
    /// pending. Chunks are handled as by [`spawn_chunks`](Self::spawn_chunks): an empty chunk is
    /// skipped, an `Err` fails the stream there, the stream's end is the end.
    ///
    /// A stream that needs a runtime's reactor (most network streams) still needs that runtime
    /// running somewhere, on other threads; the filler only polls.
    ///
    /// # Errors
    ///
    /// As [`spawn`](Self::spawn).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::pin::Pin;
    /// use std::task::{Context, Poll};
    ///
    /// // A tiny stream of three chunks (any `futures_core::Stream` works).
    /// struct Three(u8);
    /// impl futures_core::Stream for Three {
    ///     type Item = std::io::Result<Vec<u8>>;
    ///     fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
    ///         self.0 += 1;
    ///         Poll::Ready((self.0 <= 3).then(|| Ok(vec![b'0' + self.0])))
    ///     }
    /// }
    /// let cache = streamcache::StreamCache::builder().spawn_stream(Three(0))?;
    /// assert_eq!(cache.slice(..)?, b"123");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn spawn_stream<S, B>(self, stream: S) -> io::Result<StreamCache>
    where
        S: futures_core::Stream<Item = io::Result<B>> + Send + 'static,
        B: AsRef<[u8]>,
    {
        self.start(move |shared| Chunks::new(BlockingStream::new(stream, Arc::clone(shared))))
    }

    /// Starts a filler thread over a source that can be opened again where it broke, such as
    /// an HTTP download with Range requests.
    ///
    /// The filler calls `open(0)`; after a transient error at offset N (`ConnectionReset`,
    /// `ConnectionAborted`, `BrokenPipe`, `TimedOut`, `Interrupted`, or `UnexpectedEof`: the
    /// source ended before [`expected_len`](Self::expected_len)) it waits the
    /// [backoff](Self::retry_backoff) and calls `open(N)`, which must return the stream from byte
    /// N on. Readers see one intact stream. Other errors (`NotFound`, `PermissionDenied`, …) are
    /// never retried; when [`retries`](Self::retries) run out, the cache fails with the last
    /// error, every byte before it readable. Dropping every handle stops retrying too.
    ///
    /// # Errors
    ///
    /// As [`spawn`](Self::spawn). Errors of `open` come later, to the readers.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::{self, Read};
    /// use std::time::Duration;
    ///
    /// // A source that breaks after 3 bytes the first time it is opened.
    /// let data = b"hello world";
    /// let mut opens = 0;
    /// let cache = streamcache::StreamCache::builder()
    ///     .expected_len(data.len() as u64)
    ///     .retry_backoff(Duration::from_millis(1))
    ///     .spawn_resumable(move |offset| {
    ///         opens += 1;
    ///         let rest = &data[offset as usize..];
    ///         let rest = if opens == 1 { &rest[..3] } else { rest }; // then ends early
    ///         Ok::<_, io::Error>(io::Cursor::new(rest.to_vec()))
    ///     })?;
    /// assert_eq!(cache.slice(..)?, data);
    /// # Ok::<(), io::Error>(())
    /// ```
    pub fn spawn_resumable<F, R>(self, open: F) -> io::Result<StreamCache>
    where
        F: FnMut(u64) -> io::Result<R> + Send + 'static,
        R: Read + Send + 'static,
    {
        self.start(move |_| Resumable::new(open))
    }

    /// For [`spawn_ranged`](Self::spawn_ranged): a read at least `gap` bytes ahead of the
    /// contiguous prefix ([`available`](StreamCache::available)) fetches its range at once
    /// (default 4 MiB). The sequential fill, arriving at bytes already fetched, re-opens past
    /// them when there are at least `gap` of them, and otherwise reads through them and checks
    /// that they are the same.
    ///
    /// # Examples
    ///
    /// ```
    /// let data: Vec<u8> = (0..=255).cycle().take(1 << 20).collect();
    /// let source = data.clone();
    /// let cache = streamcache::StreamCache::builder()
    ///     .fetch_ahead(64 << 10)
    ///     .spawn_ranged(data.len() as u64, move |range| {
    ///         let bytes = source[range.start as usize..range.end as usize].to_vec();
    ///         Ok(std::io::Cursor::new(bytes))
    ///     })?;
    /// assert_eq!(cache.slice((1 << 20) - 4..)?, &data[(1 << 20) - 4..]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn fetch_ahead(mut self, gap: u64) -> Builder {
        self.settings.fetch.fetch_ahead = gap;
        self
    }

    /// For [`spawn_ranged`](Self::spawn_ranged): how much one on-demand fetch asks for
    /// (default 4 MiB); less where bytes already present (or being fetched) begin, or at the
    /// end. [`spawn_ranged`](Self::spawn_ranged) refuses 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    ///
    /// let data = vec![7u8; 1 << 20];
    /// let asked = Arc::new(Mutex::new(Vec::new()));
    /// let log = Arc::clone(&asked);
    /// let cache = streamcache::StreamCache::builder()
    ///     .fetch_ahead(0)
    ///     .fetch_span(64 << 10)
    ///     .spawn_ranged(data.len() as u64, move |range| {
    ///         log.lock().unwrap().push(range.clone());
    ///         Ok(std::io::Cursor::new(data[range.start as usize..range.end as usize].to_vec()))
    ///     })?;
    /// cache.wait_complete()?;
    /// // Every request asked for at most one span (the sequential fill asks for the rest).
    /// assert!(asked.lock().unwrap().iter().skip(1).all(|r| r.end - r.start <= 64 << 10));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn fetch_span(mut self, bytes: u64) -> Builder {
        self.settings.fetch.fetch_span = bytes;
        self
    }

    /// For [`spawn_ranged`](Self::spawn_ranged): how many on-demand fetches may run at once,
    /// besides the sequential fill (default 2); more wait their turn. `0`: sequential only.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    ///
    /// let opens = Arc::new(AtomicUsize::new(0));
    /// let counted = Arc::clone(&opens);
    /// let cache = streamcache::StreamCache::builder()
    ///     .max_fetches(0)
    ///     .spawn_ranged(1 << 20, move |range| {
    ///         counted.fetch_add(1, Ordering::SeqCst);
    ///         Ok(std::io::repeat(1).take(range.end - range.start))
    ///     })?;
    /// # use std::io::Read;
    /// assert_eq!(cache.slice((1 << 20) - 1..)?, [1]);
    /// assert_eq!(opens.load(Ordering::SeqCst), 1, "only the sequential fill opened it");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn max_fetches(mut self, n: usize) -> Builder {
        self.settings.fetch.max_fetches = n;
        self
    }

    /// For [`spawn_ranged`](Self::spawn_ranged) (and so [`spawn_url`](Self::spawn_url) on a
    /// `206`): how many transfers fill the stream at once (default 1). With `n` > 1 the fill
    /// asks for [`fetch_span`](Self::fetch_span) bytes at a time, the lowest missing span
    /// first, over up to `n` connections: [`available`](StreamCache::available) still grows
    /// from 0 in order, at up to `n` times one connection's rate, and readers read as it
    /// grows. On-demand fetches keep their own [`max_fetches`](Self::max_fetches) beside
    /// them: at most `n + max_fetches` connections at once. Each span is validated as every
    /// range is, and a break resumes that span where it broke. A plain source ignores it.
    ///
    /// Raise it when one connection is slower than the reader and the server limits each
    /// connection rather than the client (CDNs, object stores: S3 serves roughly 100 MB/s
    /// per connection); the cost to the server is `n` requests in flight and one request per
    /// span instead of one in all.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    ///
    /// let data: Vec<u8> = (0..=255).cycle().take(1 << 20).collect();
    /// let source = data.clone();
    /// let opens = Arc::new(AtomicUsize::new(0));
    /// let counted = Arc::clone(&opens);
    /// let cache = streamcache::StreamCache::builder()
    ///     .connections(4)
    ///     .fetch_span(64 << 10)
    ///     .spawn_ranged(data.len() as u64, move |range| {
    ///         counted.fetch_add(1, Ordering::SeqCst);
    ///         Ok(std::io::Cursor::new(source[range.start as usize..range.end as usize].to_vec()))
    ///     })?;
    /// assert_eq!(cache.slice(..)?, &data[..]);
    /// assert_eq!(opens.load(Ordering::SeqCst), 16, "one request per 64 KiB span");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn connections(mut self, n: usize) -> Builder {
        self.settings.fetch.connections = n;
        self
    }

    /// For [`spawn_ranged`](Self::spawn_ranged) (and so URLs answered with `206` and
    /// objects): `true` holds the sequential fill back until a reader needs a byte that only
    /// it would bring: one within [`fetch_ahead`](Self::fetch_ahead) of
    /// [`available`](StreamCache::available), or any byte with `max_fetches(0)` (default
    /// `false`: the fill starts at spawn). Until then nothing is transferred but the on-demand
    /// fetches of far reads. Once started,
    /// the fill runs to the end as usual, over [`connections`](Self::connections), skipping
    /// or checking what was fetched.
    ///
    /// For readers that look at the end of a large file first and read a small part of it:
    /// a zip's entry list and one entry, a parquet footer and a few columns. The server then
    /// sends little more than what is read. A reader that starts at the front (a tar, a
    /// hash of the whole) starts the fill at its first read, and pays nothing for this.
    /// Without this setting, the fill runs from spawn: on a fast link, a whole object has
    /// usually arrived by the time a zip reader has found its entry.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    ///
    /// let data: Vec<u8> = (0..=255).cycle().take(64 << 20).collect();
    /// let len = data.len() as u64;
    /// let asked = Arc::new(Mutex::new(Vec::new()));
    /// let log = Arc::clone(&asked);
    /// let cache = streamcache::StreamCache::builder()
    ///     .defer_fill(true)
    ///     .spawn_ranged(len, move |range| {
    ///         log.lock().unwrap().push(range.clone());
    ///         Ok(std::io::Cursor::new(data[range.start as usize..range.end as usize].to_vec()))
    ///     })?;
    /// // The last KiB is far from the (empty) prefix: one fetch brings it, and nothing else
    /// // was asked for.
    /// assert_eq!(cache.slice(len - 1024..)?.len(), 1024);
    /// assert!(asked.lock().unwrap().iter().all(|range| range.start >= len - (4 << 20)));
    /// // A read at the front starts the fill.
    /// assert_eq!(cache.slice(..16)?, (0..16).collect::<Vec<u8>>());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn defer_fill(mut self, defer: bool) -> Builder {
        self.settings.fetch.defer_fill = defer;
        self
    }

    /// One cache for every process: a ranged stream with a key ([`cache_key`](Self::cache_key)
    /// for [`spawn_ranged`](Self::spawn_ranged)) lives in a named entry of `dir`, kept after
    /// the cache drops. Every cache, in this process or any other, that opens the same key
    /// (and length) attaches to the same entry: the first becomes its one writer (decided by
    /// a lock the kernel releases when a process ends, however it ends), every other reads it
    /// zero-copy through its own shared mapping as the bytes land, and asks the writer to
    /// fetch what its far reads need. A wait in one process is woken by a publish in another
    /// (Linux: a futex in the entry's header). When the writer stops or dies with bytes
    /// missing, another process that still reads takes over within 100 ms and fetches only
    /// what is missing. A later cache finds a complete entry and transfers nothing.
    ///
    /// The entry's file is reserved on disk for the whole stream when it is made: a disk that
    /// cannot hold it is `StorageFull` from the `spawn`, never a SIGBUS later. A plain source
    /// (`spawn`, `spawn_chunks`, ...) with `cache_dir` is `InvalidInput`: it cannot be read
    /// again by another process. Unix only: elsewhere the cache is a private one, as without
    /// `cache_dir`; so is it on NFS and SMB (Linux tells them apart), where `flock`
    /// cannot be trusted.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(unix)] {
    /// use std::io::Cursor;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let data: Vec<u8> = (0..=255).cycle().take(300_000).collect();
    /// let source = data.clone();
    /// let first = streamcache::StreamCache::builder()
    ///     .cache_dir(dir.path())
    ///     .cache_key("example/data-v1")
    ///     .spawn_ranged(data.len() as u64, move |r| {
    ///         Ok(Cursor::new(source[r.start as usize..r.end as usize].to_vec()))
    ///     })?;
    /// first.wait_complete()?;
    /// // Another cache (or process) of the same key: the entry is there, nothing is opened.
    /// let second = streamcache::StreamCache::builder()
    ///     .cache_dir(dir.path())
    ///     .cache_key("example/data-v1")
    ///     .spawn_ranged(data.len() as u64, |_| -> std::io::Result<Cursor<Vec<u8>>> {
    ///         panic!("never opened: the entry is complete")
    ///     })?;
    /// assert_eq!(second.slice(..)?, &data[..]);
    /// # }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Builder {
        self.settings.cache_dir = Some(dir.into());
        self
    }

    /// The key of a [`spawn_ranged`](Self::spawn_ranged) stream's entry in
    /// [`cache_dir`](Self::cache_dir): caches with the same key and length share one entry.
    /// Name the source and its version (a new version is a new key). A key and validator of
    /// more than 3072 bytes in all are `InvalidInput`. Without `cache_dir` it does nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// let builder = streamcache::StreamCache::builder().cache_key("s3://bucket/model@v3");
    /// # drop(builder);
    /// ```
    pub fn cache_key(mut self, key: impl Into<String>) -> Builder {
        self.settings.cache_key = Some(key.into());
        self
    }

    /// With [`cache_dir`](Self::cache_dir): after a cache opens its entry, entries that no
    /// process has open are removed, least recently used first, until the directory's
    /// entries take at most `bytes` (the open ones never go, so it can stay above).
    ///
    /// # Examples
    ///
    /// ```
    /// let builder = streamcache::StreamCache::builder()
    ///     .cache_dir(std::env::temp_dir().join("my-app-cache"))
    ///     .cache_limit(10 << 30);
    /// # drop(builder);
    /// ```
    pub fn cache_limit(mut self, bytes: u64) -> Builder {
        self.settings.cache_limit = Some(bytes);
        self
    }

    /// Starts a filler thread over a source of `len` bytes that can be opened at any range,
    /// such as an HTTP resource with `Range` requests, an object store, or a file.
    ///
    /// The filler reads `open(0..len)` in order. A read that needs a byte at least
    /// [`fetch_ahead`](Self::fetch_ahead) beyond the contiguous prefix does not wait for the
    /// fill: it fetches its range at once (`open(a..b)`, about
    /// [`fetch_span`](Self::fetch_span) bytes, at most [`max_fetches`](Self::max_fetches) at a
    /// time) on a thread of its own, and is served as soon as its own bytes are there: a zip's
    /// central directory at the end of a download, a seek in a video. The length is known, so
    /// [`Reader`](crate::Reader)'s `SeekFrom::End` does not wait;
    /// [`len`](StreamCache::len) stays `None` until every byte is present.
    ///
    /// `open(a..b)` must return exactly the bytes `[a, b)` of the source: fewer is a break,
    /// re-opened after the rest as for [`spawn_resumable`](Self::spawn_resumable) (with
    /// [`retries`](Self::retries) and [`retry_backoff`](Self::retry_backoff)); more is never
    /// read. No byte is written twice: bytes read again by the fill over a fetched range are
    /// compared, and a source whose bytes changed fails the stream with `InvalidData` (never a
    /// splice of two versions). When a fetch's retries run out, or on an error that is not
    /// transient, the stream fails with that error: every present byte stays readable
    /// ([`present`](StreamCache::present)), and every read that needs a missing byte gets it.
    ///
    /// The stream's storage is laid out here for all of `len`: in memory when it fits
    /// [`memory_limit`](Self::memory_limit), else in the spill file, reserved for `len` at once.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if `chunk_size`, `fetch_span` or `connections` is 0; `StorageFull` if
    /// `len` is above [`max_len`](Self::max_len) or the spill file cannot be reserved for
    /// `len`; the OS error if the thread cannot be spawned. Errors of `open` come later, to the
    /// readers.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Cursor;
    ///
    /// let file: Vec<u8> = (0..100_000u32).flat_map(|i| i.to_le_bytes()).collect();
    /// let len = file.len() as u64;
    /// let cache = streamcache::StreamCache::builder()
    ///     .fetch_ahead(4096)
    ///     .spawn_ranged(len, move |range| {
    ///         Ok(Cursor::new(file[range.start as usize..range.end as usize].to_vec()))
    ///     })?;
    /// // The last record, fetched at once, whatever the fill has reached.
    /// assert_eq!(cache.slice(len - 4..len)?, 99_999u32.to_le_bytes());
    /// assert_eq!(cache.wait_complete()?, len);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn spawn_ranged<F, R>(self, len: u64, open: F) -> io::Result<StreamCache>
    where
        F: Fn(Range<u64>) -> io::Result<R> + Send + Sync + 'static,
        R: Read + Send + 'static,
    {
        self.check()?;
        if self.settings.cache_dir.is_some() && self.settings.cache_key.is_none() {
            return Err(invalid_input(
                "cache_dir needs a cache_key for spawn_ranged: the entry's name".to_owned(),
            ));
        }
        if self.settings.fetch.fetch_span == 0 {
            return Err(invalid_input("fetch_span must be at least 1".to_owned()));
        }
        if self.settings.fetch.connections == 0 {
            return Err(invalid_input("connections must be at least 1".to_owned()));
        }
        if let Some(max) = self.settings.max_len.filter(|&max| len > max) {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                format!("the source's length, {len} bytes, is above max_len ({max} bytes)"),
            ));
        }
        let mut settings = self.settings;
        settings.expected_len = Some(len);
        let open: Arc<OpenRange> = Arc::new(move |range| {
            open(range).map(|reader| Box::new(reader) as Box<dyn Read + Send>)
        });
        let shared = Arc::new(Shared::ranged(settings, len, open)?);
        spawn_filler(shared, filler::run_ranged)
    }

    /// Refuses settings no source can work with.
    /// These settings without `cache_dir`: a source that cannot be shared (a URL answered with
    /// `200`, or without a validator) gets a private cache, the documented fallback.
    #[cfg(any(feature = "http", feature = "object-store"))]
    pub(crate) fn private(mut self) -> Builder {
        self.settings.cache_dir = None;
        self
    }

    fn check(&self) -> io::Result<()> {
        if self.settings.chunk_size == 0 {
            return Err(invalid_input("chunk_size must be at least 1".to_owned()));
        }
        Ok(())
    }

    /// Spawns the filler thread over the source that `open` makes there (given the shared
    /// state, for sources that must notice cancellation while they wait).
    fn start<S: Source>(
        self,
        open: impl FnOnce(&Arc<Shared>) -> S + Send + 'static,
    ) -> io::Result<StreamCache> {
        self.check()?;
        if self.settings.cache_dir.is_some() {
            return Err(invalid_input(
                "cache_dir is for sources that can be opened at any range (spawn_ranged, a \
                 URL, an object): another process cannot read this one again"
                    .to_owned(),
            ));
        }
        let shared = Arc::new(Shared::new(self.settings));
        spawn_filler(shared, move |shared| filler::run(shared, open))
    }
}

/// Starts the filler thread running `run` over `shared`.
fn spawn_filler(
    shared: Arc<Shared>,
    run: impl FnOnce(Arc<Shared>) + Send + 'static,
) -> io::Result<StreamCache> {
    let cache = StreamCache::from_shared(Arc::clone(&shared));
    thread::Builder::new()
        .name(shared.settings.thread_name().to_owned())
        .spawn(move || run(shared))?;
    Ok(cache)
}
