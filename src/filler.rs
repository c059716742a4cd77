//! The filler thread: reads the source straight into storage, publishes the mark after every
//! read, and stops on end, error, panic, the `max_len` cap, or cancellation.

use crate::shared::Shared;
use crate::storage::Writer;
use std::any::Any;
use std::io::{self, Read};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;

/// Everything the filler thread owns.
pub(crate) struct Filler {
    pub(crate) shared: Arc<Shared>,
    pub(crate) writer: Writer,
    pub(crate) chunk_size: usize,
    pub(crate) max_len: Option<u64>,
}

impl Filler {
    /// Runs on the filler thread until the stream is over, then records how it ended. The
    /// source is opened here (by `open`) so that it is only ever touched by this thread.
    pub(crate) fn run<R: Read>(mut self, open: impl FnOnce() -> R) {
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
            let mut source = open();
            self.fill(&mut source)
            // `source` drops here, on this thread, before the outcome is published: once a
            // reader sees the end, the source is gone.
        }));
        match outcome {
            Ok(Ok(())) => self.shared.mark.complete(),
            Ok(Err(error)) => self.shared.mark.fail(error),
            Err(payload) => self.shared.mark.fail(io::Error::other(format!(
                "the source panicked: {}",
                panic_message(&*payload)
            ))),
        }
    }

    fn fill(&mut self, source: &mut impl Read) -> io::Result<()> {
        loop {
            if self.shared.is_cancelled() {
                return Err(io::Error::other("every handle was dropped"));
            }
            let pos = self.writer.pos();
            let room = match self.max_len {
                Some(max) => (max - pos).min(self.chunk_size as u64) as usize,
                None => self.chunk_size,
            };
            if room == 0 {
                return self.check_ends_at_cap(source);
            }
            let n = if self.writer.at_spill_point() {
                self.read_first_spilled(source, room)?
            } else {
                let region = self.writer.next_region(&self.shared.storage, room)?;
                checked_read(source, region)?
            };
            if n == 0 {
                return Ok(());
            }
            self.writer.commit(n);
            self.shared.mark.publish(self.writer.pos());
        }
    }

    /// The first read past the memory limit goes to a buffer: only if it brings bytes is the
    /// spill file created and the bytes copied there (one copy, once per stream).
    fn read_first_spilled(&mut self, source: &mut impl Read, room: usize) -> io::Result<usize> {
        let mut first = vec![0u8; room];
        let n = checked_read(source, &mut first)?;
        if n > 0 {
            self.writer.next_region(&self.shared.storage, n)?[..n].copy_from_slice(&first[..n]);
        }
        Ok(n)
    }

    /// At `max_len`: a stream of exactly `max_len` bytes completes; one byte more is too long.
    fn check_ends_at_cap(&mut self, source: &mut impl Read) -> io::Result<()> {
        let mut probe = [0u8; 1];
        match read_retrying(source, &mut probe)? {
            0 => Ok(()),
            _ => Err(io::Error::new(
                io::ErrorKind::StorageFull,
                format!(
                    "the stream is longer than max_len ({} bytes)",
                    self.writer.pos()
                ),
            )),
        }
    }
}

/// One read into `buf`; a source claiming more bytes than `buf` holds is an error, not trusted.
pub(crate) fn checked_read(source: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let n = read_retrying(source, buf)?;
    if n > buf.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "the source claimed to read {n} bytes into a buffer of {}",
                buf.len()
            ),
        ));
    }
    Ok(n)
}

/// One read, with `Interrupted` retried at once (as `Read::read_exact` does).
fn read_retrying(source: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match source.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            result => return result,
        }
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "(no message)"
    }
}

/// A chunk iterator as a `Read`: the shape of an HTTP client's body chunks. Empty chunks are
/// skipped; the iterator's end is the stream's end. Lives only on the filler thread, so the
/// chunks themselves need not be `Send`.
pub(crate) struct ChunkReader<I, B> {
    chunks: I,
    current: Option<B>,
    offset: usize,
}

impl<I, B> ChunkReader<I, B> {
    pub(crate) fn new(chunks: I) -> Self {
        Self {
            chunks,
            current: None,
            offset: 0,
        }
    }
}

impl<I, B> Read for ChunkReader<I, B>
where
    I: Iterator<Item = io::Result<B>>,
    B: AsRef<[u8]>,
{
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(chunk) = &self.current {
                let rest = &chunk.as_ref()[self.offset..];
                if !rest.is_empty() {
                    let n = rest.len().min(buf.len());
                    buf[..n].copy_from_slice(&rest[..n]);
                    self.offset += n;
                    return Ok(n);
                }
            }
            match self.chunks.next() {
                None => {
                    self.current = None;
                    return Ok(0);
                }
                Some(Err(e)) => return Err(e),
                Some(Ok(chunk)) => {
                    self.current = Some(chunk);
                    self.offset = 0;
                }
            }
        }
    }
}
