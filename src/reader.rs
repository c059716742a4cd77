//! [`Reader`]: a cursor over a [`StreamCache`], with `Read`, `BufRead` and `Seek`.

use crate::cache::StreamCache;
use crate::range::invalid_input;
use crate::shared::Shared;
use crate::wait_async::WaitFor;
use std::future::Future;
use std::io::{self, BufRead, Read, Seek, SeekFrom};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// A cursor over a [`StreamCache`]: `Read + BufRead + Seek`, blocking only for bytes that have
/// not arrived yet.
///
/// [`fill_buf`](BufRead::fill_buf) hands out the cache's own memory (no copy): everything
/// available from the cursor on. Seeking past the end is allowed (reads then return 0);
/// [`SeekFrom::End`] waits for the end of the stream. Clones have their own cursor.
///
/// With the `tokio` or `futures-io` feature, `Reader` also implements that crate's
/// `AsyncRead`, `AsyncBufRead` and `AsyncSeek`: waiting registers the task's waker instead of
/// blocking a thread. `Reader` is `Unpin`, and a cancelled read moves no cursor. Only a seek
/// from the end can wait (for the end of the stream); if its future is dropped first, the
/// cursor stays where it was and a later read simply reads from there. With tokio, a seek
/// whose future was dropped stays submitted until the next read, as tokio's `AsyncSeek`
/// contract has it: a `seek` or `stream_position` in between completes it first.
///
/// # Examples
///
/// ```
/// use std::io::{BufRead, Read, Seek, SeekFrom};
/// use streamcache::StreamCache;
///
/// let cache = StreamCache::new(&b"first line\nsecond line\n"[..])?;
/// let mut reader = cache.reader();
/// let mut line = String::new();
/// reader.read_line(&mut line)?;
/// assert_eq!(line, "first line\n");
///
/// reader.seek(SeekFrom::End(-5))?;
/// let mut tail = String::new();
/// reader.read_to_string(&mut tail)?;
/// assert_eq!(tail, "line\n");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Reader {
    cache: StreamCache,
    pos: u64,
    /// Async only: the wait this reader's task is registered for. Dropped (deregistered) as
    /// soon as it resolves or the reader drops; the cursor moves only when bytes are handed out.
    pending: Option<WaitFor<Arc<Shared>>>,
    /// Async only: a seek submitted by tokio's `start_seek`, completed by `poll_complete`.
    /// A read drops it (its future was abandoned); a later seek first completes it, as tokio's
    /// `AsyncSeek` contract has it.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    seek: Option<SeekFrom>,
}

impl Clone for Reader {
    /// A reader at the same position, with no async wait of its own.
    fn clone(&self) -> Self {
        Self::new(self.cache.clone(), self.pos)
    }
}

impl Reader {
    pub(crate) fn new(cache: StreamCache, pos: u64) -> Self {
        Self {
            cache,
            pos,
            pending: None,
            seek: None,
        }
    }

    /// The cursor's offset in the stream.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Read;
    /// use streamcache::StreamCache;
    ///
    /// let cache = StreamCache::new(&b"hello"[..])?;
    /// let mut reader = cache.reader();
    /// reader.read_exact(&mut [0u8; 2])?;
    /// assert_eq!(reader.position(), 2);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// The cache this reader reads from.
    ///
    /// # Examples
    ///
    /// ```
    /// use streamcache::StreamCache;
    ///
    /// let cache = StreamCache::new(&b"hello"[..])?;
    /// let reader = cache.reader();
    /// assert_eq!(reader.cache().wait_complete()?, 5);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn cache(&self) -> &StreamCache {
        &self.cache
    }
}

/// The async core, shared by the tokio and futures-io trait impls. The names differ from the
/// trait methods' on purpose: an inherent method of the same name would shadow the trait's.
impl Reader {
    /// Resolves once `target` bytes are available or the stream has ended, registering the
    /// task's waker with the watermark in between.
    fn poll_wait(&mut self, cx: &mut Context<'_>, target: u64) -> Poll<io::Result<u64>> {
        let available = self.cache.available();
        if available >= target {
            self.pending = None;
            return Poll::Ready(Ok(available));
        }
        let wait = match &mut self.pending {
            Some(wait) if wait.target() == target => wait,
            pending => pending.insert(self.cache.wait_future(target)),
        };
        let result = Pin::new(wait).poll(cx);
        if result.is_ready() {
            self.pending = None;
        }
        result
    }

    /// `fill_buf` without blocking: the cache's bytes from the cursor on, empty at the end.
    ///
    /// A seek submitted with [`submit_seek`](Self::submit_seek) and not completed is dropped
    /// here: its future was abandoned, and a read never waits for a seek nobody awaits.
    #[cfg_attr(not(any(feature = "tokio", feature = "futures-io")), allow(dead_code))]
    pub(crate) fn poll_bytes_at_cursor(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        self.seek = None;
        let Some(next) = self.pos.checked_add(1) else {
            return Poll::Ready(Ok(&[]));
        };
        match self.poll_wait(cx, next) {
            Poll::Ready(Ok(available)) => Poll::Ready(Ok(self.bytes_at_cursor(available))),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Hands what [`poll_bytes_at_cursor`](Self::poll_bytes_at_cursor) offers, at most `room`
    /// bytes, to `put`, and moves the cursor past them: the one copy of an async `read`.
    #[cfg_attr(not(any(feature = "tokio", feature = "futures-io")), allow(dead_code))]
    pub(crate) fn poll_copy_out(
        &mut self,
        cx: &mut Context<'_>,
        room: usize,
        put: impl FnOnce(&[u8]),
    ) -> Poll<io::Result<usize>> {
        if room == 0 {
            return Poll::Ready(Ok(0));
        }
        let n = match self.poll_bytes_at_cursor(cx) {
            Poll::Ready(Ok(bytes)) => {
                let n = bytes.len().min(room);
                put(&bytes[..n]);
                n
            }
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        };
        self.pos += n as u64;
        Poll::Ready(Ok(n))
    }

    /// `seek` without blocking: only `SeekFrom::End` can wait (for the end of the stream).
    #[cfg_attr(not(any(feature = "tokio", feature = "futures-io")), allow(dead_code))]
    pub(crate) fn poll_seek_to(
        &mut self,
        cx: &mut Context<'_>,
        to: SeekFrom,
    ) -> Poll<io::Result<u64>> {
        let len = match to {
            SeekFrom::End(_) => match self.poll_wait(cx, u64::MAX) {
                Poll::Ready(Ok(len)) => len,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            },
            _ => 0,
        };
        Poll::Ready(self.seek_with_len(to, len))
    }

    /// Moves the cursor; `len` is the stream's length, needed only for `SeekFrom::End`.
    fn seek_with_len(&mut self, to: SeekFrom, len: u64) -> io::Result<u64> {
        let (base, delta) = match to {
            SeekFrom::Start(offset) => (offset, 0),
            SeekFrom::Current(delta) => (self.pos, delta),
            SeekFrom::End(delta) => (len, delta),
        };
        match base.checked_add_signed(delta) {
            Some(new) => {
                self.pos = new;
                Ok(new)
            }
            None => Err(invalid_input(format!(
                "seek to {base} {delta:+} is before byte 0 or past u64::MAX"
            ))),
        }
    }

    /// tokio's two-step seek, first step: remembers `to` for
    /// [`poll_submitted_seek`](Self::poll_submitted_seek); a later submission replaces it.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn submit_seek(&mut self, to: SeekFrom) {
        self.seek = Some(to);
    }

    /// tokio's two-step seek, second step: completes the submitted seek (waiting for the end of
    /// the stream if it is from the end), or returns the cursor when none is submitted.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn poll_submitted_seek(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        let Some(to) = self.seek else {
            return Poll::Ready(Ok(self.pos));
        };
        let result = self.poll_seek_to(cx, to);
        if result.is_ready() {
            self.seek = None;
        }
        result
    }

    /// The cache's bytes from the cursor up to `available` (empty at or past it): the slice
    /// both `fill_buf`s hand out.
    fn bytes_at_cursor(&self, available: u64) -> &[u8] {
        if available <= self.pos {
            return &[];
        }
        self.cache
            .try_slice(self.pos..available)
            .expect("bytes below the mark are published")
    }
}

impl Read for Reader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // A cursor seeked close to u64::MAX can read nothing more; never overflow.
        let room = usize::try_from(u64::MAX - self.pos).unwrap_or(usize::MAX);
        let len = buf.len().min(room);
        let n = self.cache.read_at(self.pos, &mut buf[..len])?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl BufRead for Reader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        let mut available = self.cache.available();
        if available <= self.pos {
            let Some(next) = self.pos.checked_add(1) else {
                return Ok(&[]);
            };
            available = self.cache.wait_for(next)?;
        }
        Ok(self.bytes_at_cursor(available))
    }

    fn consume(&mut self, amt: usize) {
        self.pos = self.pos.saturating_add(amt as u64);
    }
}

impl Seek for Reader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let len = match to {
            SeekFrom::End(_) => self.cache.wait_complete()?,
            _ => 0,
        };
        self.seek_with_len(to, len)
    }

    fn stream_position(&mut self) -> io::Result<u64> {
        Ok(self.pos)
    }
}
