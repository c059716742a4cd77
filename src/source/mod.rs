//! Every kind of source behind one interface, [`Source`], and the one loop that drives it,
//! [`Feed`]: what happens on `Interrupted`, on a read that claims too much, on a break and on
//! cancellation is written here, once.
//!
//! One file per adapter: `read.rs` (any `Read`), `chunks.rs` (an iterator of chunks),
//! `stream.rs` (an async `Stream`, polled on the filler thread), `resumable.rs` (`open(offset)`,
//! and each part of a ranged source's `open(range)`), `http.rs` (a URL, feature `http`: its first answer
//! decides between a ranged and a plain source), `object.rs` (an object in an object store,
//! feature `object-store`: a ranged source), `shown.rs` (a URL as messages name it).

mod chunks;
#[cfg(feature = "http")]
pub(crate) mod http;
#[cfg(feature = "object-store")]
pub(crate) mod object;
#[cfg(feature = "object-store")]
mod object_url;
mod read;
mod resumable;
#[cfg(any(feature = "http", feature = "object-store"))]
mod shown;
mod stream;

pub(crate) use chunks::Chunks;
pub(crate) use read::Plain;
pub(crate) use resumable::Resumable;
pub(crate) use stream::BlockingStream;

use crate::cancel::Cancel;
use std::io::{self, ErrorKind};
use std::time::Duration;

/// The longest wait between two re-opens.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What the filler reads from. Used only on the filler thread.
pub(crate) trait Source {
    /// Reads the next bytes of the stream into `buf` (never empty); `Ok(0)` is the end. What
    /// it returns is checked by [`Feed`]: it may claim anything and fail with any kind.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize>;

    /// Whether the source can be opened again where it broke; then [`open`](Self::open) is
    /// called before the first read and after every break.
    fn resumable(&self) -> bool {
        false
    }

    /// Opens the source at `offset` (resumable sources only): the next `read` returns the
    /// stream's bytes from `offset` on.
    fn open(&mut self, offset: u64) -> io::Result<()> {
        let _ = offset;
        Ok(())
    }
}

/// When and how often a resumable source is opened again.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryPolicy {
    /// Re-opens allowed at one offset, since the last byte of progress.
    pub(crate) retries: u32,
    /// The wait before the first re-open; doubles per failure without progress.
    pub(crate) first_backoff: Duration,
}

/// A source as the filler sees it: every read checked, cancellation noticed before each one,
/// and a resumable source opened again after a transient break, within its retry policy.
pub(crate) struct Feed<'a, S> {
    source: S,
    cancel: &'a Cancel,
    policy: RetryPolicy,
    /// Where a resumable source must end: an earlier end is a break (`UnexpectedEof`).
    end: Option<u64>,
    /// Bytes delivered so far: where a re-open starts.
    offset: u64,
    /// False before the first `open` and after a break.
    open: bool,
    /// Re-opens since the last byte of progress.
    failures: u32,
    backoff: Duration,
}

impl<'a, S: Source> Feed<'a, S> {
    /// `end` is the expected length: honoured only by resumable sources (for the others it is
    /// a hint, and the stream ends where the source ends).
    pub(crate) fn new(
        source: S,
        cancel: &'a Cancel,
        policy: RetryPolicy,
        end: Option<u64>,
    ) -> Self {
        let resumable = source.resumable();
        Self {
            source,
            cancel,
            policy,
            end: end.filter(|_| resumable),
            offset: 0,
            open: !resumable,
            failures: 0,
            backoff: policy.first_backoff,
        }
    }

    /// One read of at most `buf.len()` bytes: `Ok(0)` only at the end (or for an empty `buf`).
    ///
    /// # Errors
    ///
    /// The source's error, unchanged, unless it is resumable and the break transient (then
    /// it is opened again, up to `retries` times); `InvalidData` for a read claiming more than
    /// `buf`; `Other` once every handle is dropped.
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            self.cancel.check()?;
            if !self.open {
                match self.source.open(self.offset) {
                    Ok(()) => self.open = true,
                    Err(error) => {
                        self.after_break(error)?;
                        continue;
                    }
                }
            }
            let error = match read_retrying(&mut self.source, buf) {
                Ok(n) if n > buf.len() => return Err(over_claim(n, buf.len())),
                Ok(0) if self.end.is_some_and(|end| self.offset < end) => io::Error::new(
                    ErrorKind::UnexpectedEof,
                    format!(
                        "the source ended at byte {} of the {} expected",
                        self.offset,
                        self.end.unwrap_or_default()
                    ),
                ),
                Ok(n) => {
                    if n > 0 {
                        self.offset += n as u64;
                        self.failures = 0;
                        self.backoff = self.policy.first_backoff;
                    }
                    return Ok(n);
                }
                Err(error) => error,
            };
            self.after_break(error)?;
        }
    }

    /// Moves on to `offset`, ahead of the bytes delivered so far, without reading the bytes in
    /// between: the next read opens the (resumable) source there.
    pub(crate) fn skip_to(&mut self, offset: u64) {
        debug_assert!(self.source.resumable() && offset >= self.offset);
        self.offset = offset;
        self.open = false;
    }

    /// The source broke with `error`: wait the backoff and allow a re-open, or give up with it.
    fn after_break(&mut self, error: io::Error) -> io::Result<()> {
        if !self.source.resumable() {
            return Err(error);
        }
        self.open = false;
        let transient = crate::TRANSIENT_ERROR_KINDS.contains(&error.kind());
        if !transient || self.failures >= self.policy.retries {
            // An `Interrupted` handed on would be retried at once: give up for real.
            if error.kind() == ErrorKind::Interrupted {
                return Err(io::Error::other(format!("retries exhausted: {error}")));
            }
            return Err(error);
        }
        self.failures += 1;
        self.cancel.sleep(self.backoff)?;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        Ok(())
    }
}

/// One read, with `Interrupted` retried at once (as `Read::read_exact` does).
fn read_retrying(source: &mut impl Source, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match source.read(buf) {
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            result => return result,
        }
    }
}

fn over_claim(n: usize, len: usize) -> io::Error {
    io::Error::new(
        ErrorKind::InvalidData,
        format!("the source claimed to read {n} bytes into a buffer of {len}"),
    )
}
