//! [`Reader`]: a cursor over a [`StreamCache`], with `Read`, `BufRead` and `Seek`.

use crate::cache::StreamCache;
use crate::range::invalid_input;
use std::io::{self, BufRead, Read, Seek, SeekFrom};

/// A cursor over a [`StreamCache`]: `Read + BufRead + Seek`, blocking only for bytes that have
/// not arrived yet.
///
/// [`fill_buf`](BufRead::fill_buf) hands out the cache's own memory (no copy): everything
/// available from the cursor on. Seeking past the end is allowed (reads then return 0);
/// [`SeekFrom::End`] seeks at once when the length is known
/// ([`StreamCache::known_len`]: a ranged source), and otherwise waits for the end of the
/// stream. Clones have their own cursor.
///
/// With the `tokio` or `futures-io` feature, `Reader` also implements that crate's
/// `AsyncRead`, `AsyncBufRead` and `AsyncSeek`: waiting registers the task's waker instead of
/// blocking a thread. `Reader` is `Unpin`, and a cancelled read moves no cursor. Only a seek
/// from the end can wait (for the end of a stream whose length is not known); if its future
/// is dropped first, the cursor stays where it was and a later read simply reads from there.
/// With tokio, a seek whose future was dropped stays submitted until the next read, as tokio's
/// `AsyncSeek` contract has it: a `seek` or `stream_position` in between completes it first.
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
    pub(crate) cache: StreamCache,
    pub(crate) pos: u64,
    /// What an async read or seek left pending (`async_io.rs`).
    #[cfg(any(feature = "tokio", feature = "futures-io"))]
    pub(crate) pending: crate::async_io::Pending,
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
            #[cfg(any(feature = "tokio", feature = "futures-io"))]
            pending: Default::default(),
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

impl Reader {
    /// Moves the cursor; `len` is the stream's length, needed only for `SeekFrom::End`.
    pub(crate) fn seek_with_len(&mut self, to: SeekFrom, len: u64) -> io::Result<u64> {
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

    /// The cache's bytes from the cursor up to `run_end`, the end of the present run that
    /// holds it (empty at or past it): the slice both `fill_buf`s hand out.
    pub(crate) fn bytes_at_cursor(&self, run_end: u64) -> &[u8] {
        if run_end <= self.pos {
            return &[];
        }
        self.cache
            .try_slice(self.pos..run_end)
            .expect("the bytes of a present run are published")
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
        let mut run_end = self.cache.available();
        if run_end <= self.pos {
            let Some(next) = self.pos.checked_add(1) else {
                return Ok(&[]);
            };
            run_end = self.cache.wait_run(self.pos, next)?;
        }
        Ok(self.bytes_at_cursor(run_end))
    }

    fn consume(&mut self, amt: usize) {
        self.pos = self.pos.saturating_add(amt as u64);
    }
}

impl Seek for Reader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let len = match to {
            SeekFrom::End(_) => self.cache.final_len()?,
            _ => 0,
        };
        self.seek_with_len(to, len)
    }

    fn stream_position(&mut self) -> io::Result<u64> {
        Ok(self.pos)
    }
}
