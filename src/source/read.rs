//! Any `Read` as a [`Source`].

use super::Source;
use std::io::{self, Read};

/// A plain reader: read to its end, never re-opened.
pub(crate) struct Plain<R>(pub(crate) R);

impl<R: Read> Source for Plain<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}
