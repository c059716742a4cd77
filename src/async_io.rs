//! `Reader` as an async reader: tokio's and futures-io's `AsyncRead`, `AsyncBufRead` and
//! `AsyncSeek`, each behind its feature. Waiting registers the task's waker with the watermark;
//! no runtime thread is ever blocked. `Reader` is `Unpin`, and a read that is cancelled (its
//! future dropped) moves no cursor.

#[cfg(feature = "tokio")]
mod tokio_impl {
    use crate::reader::Reader;
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
    use crate::reader::Reader;
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
