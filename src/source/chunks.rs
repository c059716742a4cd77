//! An iterator of chunks as a [`Source`]: the shape of an HTTP client's body chunks.

use super::Source;
use std::io;

/// Copies each chunk out in order. Empty chunks are skipped; the iterator's end is the
/// stream's end. Lives only on the filler thread, so the chunks need not be `Send`.
pub(crate) struct Chunks<I, B> {
    chunks: I,
    current: Option<B>,
    offset: usize,
}

impl<I, B> Chunks<I, B> {
    pub(crate) fn new(chunks: I) -> Self {
        Self {
            chunks,
            current: None,
            offset: 0,
        }
    }
}

impl<I, B> Source for Chunks<I, B>
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
