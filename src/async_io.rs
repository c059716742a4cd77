//! `Reader` as an async reader: tokio's and futures-io's `AsyncRead`, `AsyncBufRead` and
//! `AsyncSeek`, each behind its feature. Waiting registers the task's waker with the watermark;
//! no runtime thread is ever blocked. `Reader` is `Unpin`, and a read that is cancelled (its
//! future dropped) moves no cursor.

use crate::shared::Shared;
use crate::wait_async::WaitFor;
use crate::Reader;
use std::future::Future;
use std::io::{self, SeekFrom};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// What an async read or seek of a [`Reader`] left pending.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    /// The wait this reader's task is registered for. Dropped (deregistered) as soon as it
    /// resolves or the reader drops; the cursor moves only when bytes are handed out.
    wait: Option<WaitFor<Arc<Shared>>>,
    /// A seek submitted by tokio's `start_seek`, completed by `poll_complete`. A read drops it
    /// (its future was abandoned); a later seek first completes it, as tokio's `AsyncSeek`
    /// contract has it.
    #[cfg(feature = "tokio")]
    seek: Option<SeekFrom>,
}

/// The async core, shared by the tokio and futures-io trait impls. The names differ from the
/// trait methods' on purpose: an inherent method of the same name would shadow the trait's.
impl Reader {
    /// Resolves once `[start, target)` is present or the stream has ended, registering the
    /// task's waker with the watermark in between; on a ranged stream, a missing byte far
    /// ahead is fetched at once. The result is the end of the present run from `start`.
    fn poll_wait(
        &mut self,
        cx: &mut Context<'_>,
        start: u64,
        target: u64,
    ) -> Poll<io::Result<u64>> {
        let available = self.cache.available();
        if available >= target {
            self.pending.wait = None;
            return Poll::Ready(Ok(available));
        }
        let shared = self.cache.shared();
        // On a ranged stream: fetch the first missing byte now, if it is far ahead.
        let _ = shared.next_missing(start, target);
        let wait = match &mut self.pending.wait {
            Some(wait) if wait.range_waited() == (start, target) => wait,
            pending => pending.insert(WaitFor::range(Arc::clone(shared), start, target)),
        };
        let result = Pin::new(wait).poll(cx);
        if result.is_ready() {
            self.pending.wait = None;
        }
        result
    }

    /// `fill_buf` without blocking: the cache's bytes from the cursor on, empty at the end.
    ///
    /// A seek submitted with [`submit_seek`](Self::submit_seek) and not completed is dropped
    /// here: its future was abandoned, and a read never waits for a seek nobody awaits.
    fn poll_bytes_at_cursor(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        #[cfg(feature = "tokio")]
        {
            self.pending.seek = None;
        }
        let Some(next) = self.pos.checked_add(1) else {
            return Poll::Ready(Ok(&[]));
        };
        match self.poll_wait(cx, self.pos, next) {
            Poll::Ready(Ok(run_end)) => Poll::Ready(Ok(self.bytes_at_cursor(run_end))),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Hands what [`poll_bytes_at_cursor`](Self::poll_bytes_at_cursor) offers, at most `room`
    /// bytes, to `put`, and moves the cursor past them: the one copy of an async `read`.
    fn poll_copy_out(
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
    fn poll_seek_to(&mut self, cx: &mut Context<'_>, to: SeekFrom) -> Poll<io::Result<u64>> {
        let len = match (to, self.cache.known_len()) {
            (SeekFrom::End(_), Some(len)) => len,
            (SeekFrom::End(_), None) => match self.poll_wait(cx, 0, u64::MAX) {
                Poll::Ready(Ok(len)) => len,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            },
            _ => 0,
        };
        Poll::Ready(self.seek_with_len(to, len))
    }

    /// tokio's two-step seek, first step: remembers `to` for
    /// [`poll_submitted_seek`](Self::poll_submitted_seek); a later submission replaces it.
    #[cfg(feature = "tokio")]
    fn submit_seek(&mut self, to: SeekFrom) {
        self.pending.seek = Some(to);
    }

    /// tokio's two-step seek, second step: completes the submitted seek (waiting for the end of
    /// the stream if it is from the end), or returns the cursor when none is submitted.
    #[cfg(feature = "tokio")]
    fn poll_submitted_seek(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        let Some(to) = self.pending.seek else {
            return Poll::Ready(Ok(self.pos));
        };
        let result = self.poll_seek_to(cx, to);
        if result.is_ready() {
            self.pending.seek = None;
        }
        result
    }
}

#[cfg(feature = "tokio")]
mod tokio_impl {
    use crate::Reader;
    use std::io::{self, SeekFrom};
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use tokio::io::{AsyncBufRead, AsyncRead, AsyncSeek, ReadBuf};

    impl AsyncRead for Reader {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let room = buf.remaining();
            self.get_mut()
                .poll_copy_out(cx, room, |bytes| buf.put_slice(bytes))
                .map_ok(drop)
        }
    }

    impl AsyncBufRead for Reader {
        fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
            self.get_mut().poll_bytes_at_cursor(cx)
        }

        fn consume(self: Pin<&mut Self>, amt: usize) {
            std::io::BufRead::consume(self.get_mut(), amt);
        }
    }

    impl AsyncSeek for Reader {
        fn start_seek(self: Pin<&mut Self>, position: SeekFrom) -> io::Result<()> {
            self.get_mut().submit_seek(position);
            Ok(())
        }

        fn poll_complete(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
            self.get_mut().poll_submitted_seek(cx)
        }
    }
}

#[cfg(feature = "futures-io")]
mod futures_impl {
    use crate::Reader;
    use futures_io::{AsyncBufRead, AsyncRead, AsyncSeek};
    use std::io::{self, SeekFrom};
    use std::pin::Pin;
    use std::task::{Context, Poll};

    impl AsyncRead for Reader {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            let room = buf.len();
            self.get_mut()
                .poll_copy_out(cx, room, |bytes| buf[..bytes.len()].copy_from_slice(bytes))
        }
    }

    impl AsyncBufRead for Reader {
        fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
            self.get_mut().poll_bytes_at_cursor(cx)
        }

        fn consume(self: Pin<&mut Self>, amt: usize) {
            std::io::BufRead::consume(self.get_mut(), amt);
        }
    }

    impl AsyncSeek for Reader {
        fn poll_seek(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            position: SeekFrom,
        ) -> Poll<io::Result<u64>> {
            self.get_mut().poll_seek_to(cx, position)
        }
    }
}
