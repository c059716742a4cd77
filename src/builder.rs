//! [`Builder`]: the settings of a cache, and starting its filler thread.

use crate::cache::StreamCache;
use crate::filler::{ChunkReader, Filler};
use crate::range::invalid_input;
use crate::resume::{Resumable, RetryPolicy};
use crate::shared::Shared;
use crate::storage::{Layout, Writer};
use crate::stream_source::BlockingStream;
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

const DEFAULT_MEMORY_LIMIT: usize = 8 << 20;
const DEFAULT_CHUNK_SIZE: usize = 64 << 10;
const DEFAULT_THREAD_NAME: &str = "streamcache-filler";
const DEFAULT_RETRIES: u32 = 3;
const DEFAULT_BACKOFF: Duration = Duration::from_millis(100);

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
#[derive(Debug, Clone)]
pub struct Builder {
    memory_limit: usize,
    temp_dir: Option<PathBuf>,
    expected_len: Option<u64>,
    max_len: Option<u64>,
    chunk_size: usize,
    thread_name: Option<String>,
    retry: RetryPolicy,
    /// What `spawn_url` sends (feature `http`; its methods are in `http.rs`).
    #[cfg(feature = "http")]
    pub(crate) http: crate::http::HttpSettings,
}

impl Default for Builder {
    fn default() -> Self {
        Self {
            memory_limit: DEFAULT_MEMORY_LIMIT,
            temp_dir: None,
            expected_len: None,
            max_len: None,
            chunk_size: DEFAULT_CHUNK_SIZE,
            thread_name: None,
            retry: RetryPolicy {
                retries: DEFAULT_RETRIES,
                first_backoff: DEFAULT_BACKOFF,
            },
            #[cfg(feature = "http")]
            http: crate::http::HttpSettings::default(),
        }
    }
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
        self.memory_limit = bytes;
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
    ///     .spawn(&b"x"[..])?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn temp_dir(mut self, dir: impl Into<PathBuf>) -> Builder {
        self.temp_dir = Some(dir.into());
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
        self.expected_len = Some(len);
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
        self.max_len = Some(len);
        self
    }

    /// The largest single read from the source (default 64 KiB). Every read asks for at most
    /// this many bytes, never 0. [`spawn`](Self::spawn) refuses 0.
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = streamcache::StreamCache::builder().chunk_size(1).spawn(&b"abc"[..])?;
    /// assert_eq!(cache.wait_complete()?, 3);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn chunk_size(mut self, bytes: usize) -> Builder {
        self.chunk_size = bytes;
        self
    }

    /// The filler thread's name (default `streamcache-filler`).
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = streamcache::StreamCache::builder().thread_name("fetch").spawn(&b""[..])?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn thread_name(mut self, name: impl Into<String>) -> Builder {
        self.thread_name = Some(name.into());
        self
    }

    /// For [`spawn_resumable`](Self::spawn_resumable): how many times the source may be
    /// re-opened at the same offset without any progress in between (default 3). An `open`
    /// that itself fails with a transient error counts as one.
    ///
    /// # Examples
    ///
    /// ```
    /// let builder = streamcache::StreamCache::builder().retries(5);
    /// ```
    pub fn retries(mut self, n: u32) -> Builder {
        self.retry.retries = n;
        self
    }

    /// For [`spawn_resumable`](Self::spawn_resumable): the wait before the first re-open
    /// (default 100 ms). It doubles with every failure without progress, up to 30 s, and
    /// starts again from `first` once bytes arrive.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let builder = streamcache::StreamCache::builder().retry_backoff(Duration::from_millis(10));
    /// ```
    pub fn retry_backoff(mut self, first: Duration) -> Builder {
        self.retry.first_backoff = first;
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
        self.start(move || source)
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
        self.start(move || ChunkReader::new(chunks))
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
        self.start_with(move |shared| ChunkReader::new(BlockingStream::new(stream, shared)))
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
        let policy = self.retry;
        self.start_with(move |shared| Resumable::new(open, policy, shared))
    }

    /// Spawns the filler over the source that `open` makes on the filler thread.
    fn start<R: Read>(self, open: impl FnOnce() -> R + Send + 'static) -> io::Result<StreamCache> {
        self.start_with(move |_| open())
    }

    /// As `start`, for sources that need the shared state (to notice cancellation).
    fn start_with<R: Read>(
        self,
        open: impl FnOnce(Arc<Shared>) -> R + Send + 'static,
    ) -> io::Result<StreamCache> {
        if self.chunk_size == 0 {
            return Err(invalid_input("chunk_size must be at least 1".to_owned()));
        }
        let shared = Arc::new(Shared::new(self.expected_len));
        let filler = Filler {
            shared: Arc::clone(&shared),
            writer: Writer::new(Layout {
                memory_limit: self.memory_limit,
                temp_dir: self.temp_dir.unwrap_or_else(std::env::temp_dir),
                expected_len: self.expected_len,
                max_len: self.max_len,
            }),
            chunk_size: self.chunk_size,
            max_len: self.max_len,
        };
        let cache = StreamCache::from_shared(shared);
        thread::Builder::new()
            .name(
                self.thread_name
                    .unwrap_or_else(|| DEFAULT_THREAD_NAME.to_owned()),
            )
            .spawn(move || {
                let shared = Arc::clone(&filler.shared);
                filler.run(move || open(shared))
            })?;
        Ok(cache)
    }
}
