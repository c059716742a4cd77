//! `open(offset)` as a [`Source`]: `Builder::spawn_resumable`. The retrying itself is
//! [`Feed`](super::Feed)'s.

use super::Source;
use std::io::{self, Read};

/// Opens `open(offset)` when asked, and reads the reader it returned.
pub(crate) struct Resumable<F, R> {
    open: F,
    current: Option<R>,
}

impl<F, R> Resumable<F, R> {
    pub(crate) fn new(open: F) -> Self {
        Self {
            open,
            current: None,
        }
    }
}

impl<F, R> Source for Resumable<F, R>
where
    F: FnMut(u64) -> io::Result<R>,
    R: Read,
{
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.current {
            Some(reader) => reader.read(buf),
            None => Err(io::Error::other("read before open")),
        }
    }

    fn resumable(&self) -> bool {
        true
    }

    fn open(&mut self, offset: u64) -> io::Result<()> {
        // The broken reader (a connection) is closed before the new one is opened.
        self.current = None;
        self.current = Some((self.open)(offset)?);
        Ok(())
    }
}
