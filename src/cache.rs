//! [`StreamCache`]: the shared handle over one stream.

use crate::builder::Builder;
use crate::range::{invalid_input, Span};
use crate::reader::Reader;
use crate::shared::Shared;
use crate::status::Status;
use crate::wait_async::WaitFor;
use bytes::Bytes;
use std::fmt;
use std::io::{self, Read};
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One byte stream, read once by a background filler thread, readable by many threads at once.
///
/// Cloning is cheap (an `Arc` clone) and every clone sees the same stream. Bytes become readable
/// as soon as the filler has stored them; methods that need bytes not yet there wait for them
/// (without spinning), and return the source's error if the source failed before them.
///
/// When every `StreamCache` and [`Reader`] of a stream is dropped, the filler stops at its next
/// read and the storage is released (a [`Bytes`] from [`bytes`](Self::bytes) keeps only the
/// storage alive, not the filler).
///
/// # Examples
///
/// ```
/// use std::io::Read;
/// use streamcache::StreamCache;
///
/// let cache = StreamCache::new(std::io::repeat(7).take(1 << 20))?;
/// let threads: Vec<_> = (0..4)
///     .map(|_| {
///         let mut reader = cache.reader();
///         std::thread::spawn(move || {
///             let mut sum = 0u64;
///             let mut buf = [0u8; 4096];
///             loop {
///                 let n = reader.read(&mut buf)?;
///                 if n == 0 {
///                     return Ok::<_, std::io::Error>(sum);
///                 }
///                 sum += buf[..n].iter().map(|&b| u64::from(b)).sum::<u64>();
///             }
///         })
///     })
///     .collect();
/// for t in threads {
///     assert_eq!(t.join().unwrap()?, 7 << 20);
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct StreamCache {
    handle: Arc<Handle>,
}

/// The part only `StreamCache`s (and the `Reader`s that hold one) own: when the last one drops,
/// the filler is told to stop (invariant 6).
struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.cancel.cancel();
        if let Some(entry) = &self.shared.entry {
            entry.kick(); // A quiet mirror thread sees the cancellation now.
        }
    }
}

impl StreamCache {
    /// Starts reading `source` on a new filler thread with the default settings (8 MiB in
    /// memory, then a temp file in [`std::env::temp_dir`]).
    ///
    /// # Errors
    ///
    /// If the filler thread cannot be spawned. Errors of the source come later, from the reads
    /// that need the bytes it failed to deliver.
    ///
    /// # Examples
    ///
    /// ```
    /// use streamcache::StreamCache;
    ///
    /// let cache = StreamCache::new(&b"abc"[..])?;
    /// assert_eq!(cache.slice(..)?, b"abc");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new(source: impl Read + Send + 'static) -> io::Result<StreamCache> {
        Builder::default().spawn(source)
    }

    /// A [`Builder`] for the settings: memory limit, temp dir, hints, caps, chunk size.
    ///
    /// # Examples
    ///
    /// ```
    /// use streamcache::StreamCache;
    ///
    /// let cache = StreamCache::builder()
    ///     .memory_limit(1 << 20)
    ///     .spawn(&b"abc"[..])?;
    /// assert_eq!(cache.wait_complete()?, 3);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn builder() -> Builder {
        Builder::default()
    }

    pub(crate) fn from_shared(shared: Arc<Shared>) -> StreamCache {
        StreamCache {
            handle: Arc::new(Handle { shared }),
        }
    }

    #[inline]
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.handle.shared
    }

    /// A [`Reader`] with its cursor at the start of the stream.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Read;
    /// use streamcache::StreamCache;
    ///
    /// let cache = StreamCache::new(&b"hello"[..])?;
    /// let mut text = String::new();
    /// cache.reader().read_to_string(&mut text)?;
    /// assert_eq!(text, "hello");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn reader(&self) -> Reader {
        self.reader_at(0)
    }

    /// A [`Reader`] with its cursor at `offset` (which may be past the end: reads then return 0).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Read;
    /// use streamcache::StreamCache;
    ///
    /// let cache = StreamCache::new(&b"hello"[..])?;
    /// let mut text = String::new();
    /// cache.reader_at(3).read_to_string(&mut text)?;
    /// assert_eq!(text, "lo");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn reader_at(&self, offset: u64) -> Reader {
        Reader::new(self.clone(), offset)
    }

    /// Copies bytes at `offset` into `buf`, waiting until at least one byte there has arrived.
    /// Returns how many were copied: fewer than `buf.len()` when fewer are available yet, and
    /// `Ok(0)` at or past the end of the stream (or for an empty `buf`).
    ///
    /// # Errors
    ///
    /// `InvalidInput` if `offset + buf.len()` overflows `u64`; the source's error if the source
    /// failed at or before `offset`.
    ///
    /// # Examples
    ///
    /// ```
    /// use streamcache::StreamCache;
    ///
    /// let cache = StreamCache::new(&b"hello world"[..])?;
    /// let mut buf = [0u8; 5];
    /// let n = cache.read_at(6, &mut buf)?;
    /// assert_eq!(&buf[..n], &b"world"[..n]);
    /// cache.wait_complete()?;
    /// assert_eq!(cache.read_at(11, &mut buf)?, 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        check_len(offset, buf.len())?;
        if buf.is_empty() {
            return Ok(0);
        }
        // The caller wants all of `buf`: a ranged source fetches it in parallel spans now when
        // it is far ahead, though this call returns once its first bytes are there.
        crate::ranged::prefetch_far(self.shared(), offset, offset + buf.len() as u64);
        let run_end = self.wait_run(offset, offset + 1)?;
        if run_end <= offset {
            return Ok(0);
        }
        let n = (run_end - offset).min(buf.len() as u64) as usize;
        let bytes = self
            .shared()
            .published(offset, offset + n as u64)
            .expect("waited for these bytes");
        buf[..n].copy_from_slice(bytes);
        Ok(n)
    }

    /// Waits until all of `[start, end)` is present, or the stream ends before `end`; returns
    /// the end of the present run from `start` (below `end` only if the stream ends there).
    pub(crate) fn wait_run(&self, start: u64, end: u64) -> io::Result<u64> {
        if self
            .shared()
            .mark
            .known_len()
            .is_some_and(|len| start >= len)
        {
            return Ok(start); // At or past a known end: nothing to wait for, whatever fails.
        }
        self.spin_for(end);
        Ok(self
            .shared()
            .wait_range(start, end, None)?
            .expect("an untimed wait ends decided"))
    }

    /// The stream's length: known at once for a ranged source, else at the end of the stream.
    pub(crate) fn final_len(&self) -> io::Result<u64> {
        match self.known_len() {
            Some(len) => Ok(len),
            None => self.wait_complete(),
        }
    }

    /// Fills all of `buf` with the bytes at `offset`, waiting for them.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if `offset + buf.len()` overflows; `UnexpectedEof` if the stream ends
    /// before `buf` is full; the source's error if it failed before then.
    ///
    /// # Examples
    ///
    /// ```
    /// use streamcache::StreamCache;
    ///
    /// let cache = StreamCache::new(&b"hello world"[..])?;
    /// let mut buf = [0u8; 5];
    /// cache.read_exact_at(6, &mut buf)?;
    /// assert_eq!(&buf, b"world");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        check_len(offset, buf.len())?;
        let end = offset + buf.len() as u64;
        self.wait_whole(offset, end)?;
        buf.copy_from_slice(self.waited_for(offset, end));
        Ok(())
    }

    /// The bytes in `range`, without copying, once all of them have arrived. `..` and `a..`
    /// wait for the end of the stream.
    ///
    /// The slice points into the cache's storage and stays valid, unchanged, as long as this
    /// handle is borrowed.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for an inverted or overflowing range; `UnexpectedEof` if the range ends past
    /// the end of the stream; the source's error if it failed before the range's end.
    ///
    /// # Examples
    ///
    /// ```
    /// use streamcache::StreamCache;
    ///
    /// let cache = StreamCache::new(&b"hello world"[..])?;
    /// assert_eq!(cache.slice(6..11)?, b"world");
    /// assert_eq!(cache.slice(..5)?, b"hello");
    /// assert_eq!(cache.slice(..)?.len(), 11);
    /// assert_eq!(cache.slice(6..20).unwrap_err().kind(), std::io::ErrorKind::UnexpectedEof);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn slice(&self, range: impl RangeBounds<u64>) -> io::Result<&[u8]> {
        let span = Span::new(&range)?;
        let end = match span.end {
            Some(end) => end,
            None => {
                let len = self.final_len()?;
                if span.start > len {
                    return Err(past_end(span.start, span.start, len));
                }
                len
            }
        };
        self.wait_whole(span.start, end)?;
        Ok(self.waited_for(span.start, end))
    }

    /// Waits until all of `[start, end)` is present. `UnexpectedEof` if the stream ends before
    /// `end`: at once when its length is known (a ranged source), so that a range past the end
    /// neither waits nor fetches, and is past the end whatever happens to the bytes before it.
    fn wait_whole(&self, start: u64, end: u64) -> io::Result<()> {
        within_known_len(self.shared(), start, end)?;
        let run_end = self.wait_run(start, end)?;
        if run_end < end {
            return Err(past_end(start, end, run_end));
        }
        Ok(())
    }

    /// `[start, end)` after a wait that returned a present run reaching `end`.
    fn waited_for(&self, start: u64, end: u64) -> &[u8] {
        if start == end {
            return &[]; // A ranged stream does not wait for an empty range.
        }
        self.shared()
            .published(start, end)
            .expect("waited for these bytes")
    }

    /// The bytes in `range` if they have all arrived, without waiting. `None` for an inverted
    /// range, and for an open-ended range before the stream is complete.
    ///
    /// # Examples
    ///
    /// ```
    /// use streamcache::StreamCache;
    ///
    /// let cache = StreamCache::new(&b"hello"[..])?;
    /// cache.wait_complete()?;
    /// assert_eq!(cache.try_slice(1..3), Some(&b"el"[..]));
    /// assert_eq!(cache.try_slice(3..9), None);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_slice(&self, range: impl RangeBounds<u64>) -> Option<&[u8]> {
        let span = Span::new(&range).ok()?;
        let end = match span.end {
            Some(end) => end,
            None => self.known_len()?,
        };
        self.shared().published(span.start, end)
    }

    /// The bytes in `range` as a [`Bytes`] that shares the cache's storage (no copy), waiting
    /// like [`slice`](Self::slice). The `Bytes` keeps the storage alive after every handle is
    /// dropped (but not the filler: with only `Bytes` left, reading the source stops).
    ///
    /// # Errors
    ///
    /// As [`slice`](Self::slice).
    ///
    /// # Examples
    ///
    /// ```
    /// use streamcache::StreamCache;
    ///
    /// let cache = StreamCache::new(&b"hello world"[..])?;
    /// let world = cache.bytes(6..)?;
    /// drop(cache);
    /// assert_eq!(world, "world");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bytes(&self, range: impl RangeBounds<u64>) -> io::Result<Bytes> {
        let slice = self.slice(range)?;
        Ok(crate::zero_copy::share(&self.handle.shared, slice))
    }

    /// Asks for the missing bytes of `range` to be fetched now, without waiting for them: on a
    /// ranged source ([`Builder::spawn_ranged`], a URL answered with `206`), the parts of it
    /// at least `fetch_ahead` past [`available`](Self::available) start as on-demand fetches,
    /// up to `max_fetches` spans at once (a later call, or a read there, asks for the rest).
    /// On any other source, and for bytes present or being fetched, it does nothing.
    ///
    /// Reads do this themselves for the range they are asked for (`read_at`'s whole buffer,
    /// `slice`, `bytes`); call it to have a range on its way before reading it, such as the
    /// next entry of an archive while this one is parsed.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for an inverted range (`5..2`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Cursor;
    /// use streamcache::StreamCache;
    ///
    /// let data: Vec<u8> = (0..=255).cycle().take(1 << 20).collect();
    /// let source = data.clone();
    /// let cache = StreamCache::builder()
    ///     .fetch_ahead(4096)
    ///     .spawn_ranged(data.len() as u64, move |r: std::ops::Range<u64>| {
    ///         Ok(Cursor::new(source[r.start as usize..r.end as usize].to_vec()))
    ///     })?;
    /// cache.prefetch(900_000..)?; // on its way; returns at once
    /// assert_eq!(cache.slice(900_000..900_010)?, &data[900_000..900_010]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// [`Builder::spawn_ranged`]: crate::Builder::spawn_ranged
    pub fn prefetch(&self, range: impl RangeBounds<u64>) -> io::Result<()> {
        let span = Span::new(&range)?;
        let end = span.end.or(self.known_len()).unwrap_or(u64::MAX);
        crate::ranged::prefetch(self.shared(), span.start, end);
        Ok(())
    }

    /// Waits until `offset` bytes are available or the stream has ended, and returns how many
    /// bytes are available (below `offset` only if the stream ended there).
    ///
    /// # Errors
    ///
    /// The source's error if it failed before `offset`.
    ///
    /// # Examples
    ///
    /// ```
    /// use streamcache::StreamCache;
    ///
    /// let cache = StreamCache::new(&b"hello"[..])?;
    /// assert!(cache.wait_for(2)? >= 2);
    /// assert_eq!(cache.wait_for(100)?, 5);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn wait_for(&self, offset: u64) -> io::Result<u64> {
        crate::ranged::wait_on_prefix(self.shared(), offset);
        self.spin_for(offset);
        Ok(self
            .shared()
            .wait_marked(0, offset, None)?
            .expect("an untimed wait ends decided"))
    }

    /// Spins (then yields) for a few microseconds while the target is close to arriving: a
    /// reader that keeps pace with the filler would otherwise park and be woken on every chunk.
    /// Bounded: after crossbeam's backoff completes, it goes on yielding only while the filler
    /// publishes often enough for the next bytes to be due within the pace's budget (at most
    /// `pace::MAX_SPIN`); then the caller parks.
    #[inline]
    fn spin_for(&self, target: u64) {
        let shared = self.shared();
        let backoff = crossbeam::utils::Backoff::new();
        while self.available() < target && !backoff.is_completed() {
            if !shared.mark.is_filling() {
                return;
            }
            backoff.snooze();
        }
        if self.available() >= target {
            return;
        }
        let Some(budget) = shared.pace.spin_budget() else {
            return;
        };
        let deadline = Instant::now() + budget;
        while self.available() < target && shared.mark.is_filling() && Instant::now() < deadline {
            std::thread::yield_now();
        }
    }

    /// As [`wait_for`](Self::wait_for), without blocking a thread: the returned future registers
    /// its waker and is woken when `offset` is reached or the stream ends. It works with any
    /// executor; dropping it deregisters the waker.
    ///
    /// # Errors
    ///
    /// The source's error if it failed before `offset`.
    ///
    /// # Examples
    ///
    /// ```
    /// use streamcache::StreamCache;
    ///
    /// let cache = StreamCache::new(&b"hello"[..])?;
    /// let available = block_on(cache.wait_for_async(5))?;
    /// assert_eq!(available, 5);
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     // The smallest executor: park the thread until the waker unparks it.
    /// #     use std::future::Future;
    /// #     use std::task::{Context, Poll, Wake, Waker};
    /// #     struct Unpark(std::thread::Thread);
    /// #     impl Wake for Unpark { fn wake(self: std::sync::Arc<Self>) { self.0.unpark() } }
    /// #     let waker = Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
    /// #     let mut f = std::pin::pin!(f);
    /// #     loop {
    /// #         if let Poll::Ready(v) = f.as_mut().poll(&mut Context::from_waker(&waker)) { return v; }
    /// #         std::thread::park();
    /// #     }
    /// # }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn wait_for_async(
        &self,
        offset: u64,
    ) -> impl std::future::Future<Output = io::Result<u64>> + Send + 'static {
        crate::ranged::wait_on_prefix(self.shared(), offset);
        WaitFor::new(Arc::clone(self.shared()), offset)
    }

    /// As [`bytes`](Self::bytes), without blocking a thread while the range arrives.
    ///
    /// # Errors
    ///
    /// As [`slice`](Self::slice).
    ///
    /// # Examples
    ///
    /// ```
    /// use streamcache::StreamCache;
    ///
    /// let cache = StreamCache::new(&b"hello"[..])?;
    /// let bytes = block_on(cache.bytes_async(1..3))?;
    /// assert_eq!(bytes, "el");
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     use std::future::Future;
    /// #     use std::task::{Context, Poll, Wake, Waker};
    /// #     struct Unpark(std::thread::Thread);
    /// #     impl Wake for Unpark { fn wake(self: std::sync::Arc<Self>) { self.0.unpark() } }
    /// #     let waker = Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
    /// #     let mut f = std::pin::pin!(f);
    /// #     loop {
    /// #         if let Poll::Ready(v) = f.as_mut().poll(&mut Context::from_waker(&waker)) { return v; }
    /// #         std::thread::park();
    /// #     }
    /// # }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bytes_async(
        &self,
        range: impl RangeBounds<u64>,
    ) -> impl std::future::Future<Output = io::Result<Bytes>> + Send + 'static {
        let cache = self.clone();
        let span = Span::new(&range);
        async move {
            let span = span?;
            let shared = cache.shared();
            let known_len = shared.mark.known_len();
            if let Some(end) = span.end {
                within_known_len(shared, span.start, end)?; // As `slice`: at once.
            }
            let target = span.end.or(known_len).unwrap_or(u64::MAX);
            // On a ranged stream, fetch what is missing, part by part, as the blocking waits do.
            while let Some((missing, until)) = shared.next_missing(span.start, target) {
                let run = WaitFor::range(Arc::clone(shared), missing, until).await?;
                if run <= missing {
                    break; // The stream ends before.
                }
            }
            WaitFor::range(Arc::clone(shared), span.start, target).await?;
            let end = span.end.map_or(Bound::Unbounded, Bound::Excluded);
            cache.bytes((Bound::Included(span.start), end))
        }
    }

    /// As [`wait_for`](Self::wait_for), but gives up after `timeout` and returns `Ok(None)`.
    ///
    /// # Errors
    ///
    /// The source's error if it failed before `offset`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use streamcache::StreamCache;
    ///
    /// // A source that never ends while its sender lives.
    /// let (tx, rx) = std::sync::mpsc::channel::<std::io::Result<Vec<u8>>>();
    /// let cache = StreamCache::builder().spawn_chunks(rx.into_iter())?;
    /// assert_eq!(cache.wait_for_timeout(1, Duration::from_millis(10))?, None);
    /// tx.send(Ok(b"hi".to_vec())).unwrap();
    /// drop(tx);
    /// assert_eq!(cache.wait_for_timeout(1, Duration::from_secs(60))?, Some(2));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn wait_for_timeout(&self, offset: u64, timeout: Duration) -> io::Result<Option<u64>> {
        crate::ranged::wait_on_prefix(self.shared(), offset);
        // A timeout too long to represent as an `Instant` means waiting as long as it takes.
        let deadline = Instant::now().checked_add(timeout);
        self.shared().wait_marked(0, offset, deadline)
    }

    /// Waits until every byte of `range` has arrived, or the stream has ended, or `timeout`
    /// has passed. On a ranged source ([`Builder::spawn_ranged`]) a range far ahead of the
    /// fill is fetched at once, as for [`slice`](Self::slice).
    ///
    /// Returns `Ok(Some(end))`, where `end` is the end of the run of arrived bytes that starts
    /// at the range's start: at or past the range's end, or the stream's length if the stream
    /// ends before (at or below the start for a range past the end); `Ok(None)` on timeout. A
    /// range with no end waits for the end of the stream.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for an inverted or overflowing range; the source's error if the stream
    /// failed with a byte of the range missing.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use streamcache::StreamCache;
    ///
    /// let cache = StreamCache::new(&b"hello world"[..])?;
    /// assert_eq!(cache.wait_range_timeout(6..8, Duration::from_secs(60))?, Some(11));
    /// assert_eq!(cache.wait_range_timeout(6..20, Duration::from_secs(60))?, Some(11));
    ///
    /// // A source that sends two bytes, then nothing yet: the wait for byte 5 times out.
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// let cache = StreamCache::builder().spawn_chunks(rx)?;
    /// tx.send(Ok(b"ab".to_vec())).unwrap();
    /// assert_eq!(cache.wait_range_timeout(0..1, Duration::from_secs(60))?, Some(2));
    /// assert_eq!(cache.wait_range_timeout(4..6, Duration::from_millis(1))?, None);
    /// # drop(tx);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn wait_range_timeout(
        &self,
        range: impl RangeBounds<u64>,
        timeout: Duration,
    ) -> io::Result<Option<u64>> {
        let span = Span::new(&range)?;
        let end = span
            .end
            .or(self.shared().mark.known_len())
            .unwrap_or(u64::MAX);
        // A timeout too long to represent as an `Instant` means waiting as long as it takes.
        let deadline = Instant::now().checked_add(timeout);
        self.shared().wait_range(span.start, end, deadline)
    }

    /// Waits for the end of the stream and returns its length.
    ///
    /// # Errors
    ///
    /// The source's error if it failed.
    ///
    /// # Examples
    ///
    /// ```
    /// use streamcache::StreamCache;
    ///
    /// let cache = StreamCache::new(&b"hello"[..])?;
    /// assert_eq!(cache.wait_complete()?, 5);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn wait_complete(&self) -> io::Result<u64> {
        self.wait_for(u64::MAX)
    }

    /// How many bytes are readable now. Never waits.
    ///
    /// # Examples
    ///
    /// ```
    /// use streamcache::StreamCache;
    ///
    /// let cache = StreamCache::new(&b"hello"[..])?;
    /// cache.wait_complete()?;
    /// assert_eq!(cache.available(), 5);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[inline]
    pub fn available(&self) -> u64 {
        self.shared().catch_up();
        self.shared().mark.available()
    }

    /// Every byte present now, as sorted, disjoint, merged ranges. Never waits.
    ///
    /// For most sources this is `[0, available)`; a ranged source
    /// ([`Builder::spawn_ranged`]) may also have fetched ranges further on.
    ///
    /// # Examples
    ///
    /// ```
    /// use streamcache::StreamCache;
    ///
    /// let cache = StreamCache::new(&b"hello"[..])?;
    /// cache.wait_complete()?;
    /// assert_eq!(cache.present(), vec![0..5]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn present(&self) -> Vec<std::ops::Range<u64>> {
        self.shared().catch_up();
        self.shared().mark.present()
    }

    /// The stream's length once the source has ended; `None` while filling or after a failure.
    ///
    /// # Examples
    ///
    /// ```
    /// use streamcache::StreamCache;
    ///
    /// let cache = StreamCache::new(&b"hello"[..])?;
    /// cache.wait_complete()?;
    /// assert_eq!(cache.len(), Some(5));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    // `len` is `None` until the stream ends, so an `is_empty` would be ambiguous.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> Option<u64> {
        match self.status() {
            Status::Complete { len } => Some(len),
            _ => None,
        }
    }

    /// The stream's length as soon as it is known, without waiting: from the start for a
    /// ranged source ([`Builder::spawn_ranged`], a URL answered with `206`), once it is
    /// complete for any other source; `None` before then.
    ///
    /// This is what [`Reader`]'s `SeekFrom::End` uses: a reader that looks at the end first
    /// (a zip's central directory, a footer) seeks there at once over a ranged source. Unlike
    /// [`len`](Self::len), it stays `Some` for a ranged source after a failure: the length
    /// was given, and reads past it are the end whatever failed before.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Cursor;
    /// use streamcache::StreamCache;
    ///
    /// let data = b"0123456789".to_vec();
    /// let ranged = StreamCache::builder().spawn_ranged(10, move |r: std::ops::Range<u64>| {
    ///     Ok(Cursor::new(data[r.start as usize..r.end as usize].to_vec()))
    /// })?;
    /// assert_eq!(ranged.known_len(), Some(10)); // at once: given to spawn_ranged
    ///
    /// let plain = StreamCache::new(&b"hello"[..])?;
    /// plain.wait_complete()?;
    /// assert_eq!(plain.known_len(), Some(5)); // a plain source's, once it ended
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// [`Builder::spawn_ranged`]: crate::Builder::spawn_ranged
    /// [`Reader`]: crate::Reader
    pub fn known_len(&self) -> Option<u64> {
        self.shared().mark.known_len().or_else(|| self.len())
    }

    /// True once the stream has ended and its length is known (not after a failure).
    ///
    /// # Examples
    ///
    /// ```
    /// use streamcache::StreamCache;
    ///
    /// let cache = StreamCache::new(std::io::empty())?;
    /// cache.wait_complete()?;
    /// assert!(cache.is_complete());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_complete(&self) -> bool {
        self.len().is_some()
    }

    /// The length hint given to [`Builder::expected_len`], if any.
    ///
    /// # Examples
    ///
    /// ```
    /// use streamcache::StreamCache;
    ///
    /// let cache = StreamCache::builder().expected_len(5).spawn(&b"hello"[..])?;
    /// assert_eq!(cache.expected_len(), Some(5));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn expected_len(&self) -> Option<u64> {
        self.shared().settings.expected_len
    }

    /// Where the stream stands now. Never waits.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::{Error, ErrorKind};
    /// use streamcache::{Status, StreamCache};
    ///
    /// let chunks = vec![Ok(b"abc".to_vec()), Err(Error::new(ErrorKind::ConnectionReset, "gone"))];
    /// let cache = StreamCache::builder().spawn_chunks(chunks)?;
    /// assert!(cache.wait_complete().is_err());
    /// assert_eq!(
    ///     cache.status(),
    ///     Status::Failed { available: 3, error: ErrorKind::ConnectionReset }
    /// );
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn status(&self) -> Status {
        self.shared().catch_up();
        self.shared().mark.status()
    }
}

impl fmt::Debug for StreamCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamCache")
            .field("status", &self.status())
            .field("expected_len", &self.expected_len())
            .finish()
    }
}

/// `offset + len` must fit in `u64`.
fn check_len(offset: u64, len: usize) -> io::Result<()> {
    match offset.checked_add(len as u64) {
        Some(_) => Ok(()),
        None => Err(invalid_input(format!(
            "offset {offset} + length {len} overflows u64"
        ))),
    }
}

/// `UnexpectedEof` for a range that ends past a known length (a ranged source): it will never
/// be present, whatever happens to the bytes before it, so there is nothing to wait for.
fn within_known_len(shared: &Shared, start: u64, end: u64) -> io::Result<()> {
    match shared.mark.known_len() {
        Some(len) if end > len => Err(past_end(start, end, len)),
        _ => Ok(()),
    }
}

fn past_end(start: u64, end: u64, len: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("range {start}..{end} ends past the end of the stream ({len} bytes)"),
    )
}
