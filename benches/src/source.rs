//! The source every contender reads, and the checksum every reader computes.

use bytes::Bytes;
use futures_core::Stream;
use std::convert::Infallible;
use std::io::{self, BufRead, Read};
use std::pin::Pin;
use std::sync::{Mutex, OnceLock};
use std::task::{Context, Poll};
use stream_download::source::SourceStream;

/// The size of one read from the source, for every contender (streamcache's default).
pub const CHUNK: usize = 64 << 10;

const TABLE: usize = 1 << 20;
/// Odd, so that block starts walk the whole table.
const STRIDE: u64 = 4099 * 61;

/// 1 MiB of xorshift output, shared by every generator.
fn table() -> &'static Bytes {
    static TABLE_BYTES: OnceLock<Bytes> = OnceLock::new();
    TABLE_BYTES.get_or_init(|| {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut table = Vec::with_capacity(TABLE);
        while table.len() < TABLE {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            table.extend_from_slice(&state.to_le_bytes());
        }
        Bytes::from(table)
    })
}

/// Where byte `offset` of the stream lies in the table, and how many bytes from there are
/// contiguous in the table (at most to the end of the offset's 64 KiB block).
#[inline]
fn locate(offset: u64) -> (usize, usize) {
    let block = offset / CHUNK as u64;
    let within = (offset % CHUNK as u64) as usize;
    let at = ((block.wrapping_mul(STRIDE) % TABLE as u64) as usize + within) % TABLE;
    (at, (CHUNK - within).min(TABLE - at))
}

/// An in-memory source of `len` pseudo-random bytes at memcpy speed. Byte `i` depends only on
/// `i`, so every contender sees the same stream whatever its read sizes.
#[derive(Debug)]
pub struct Generator {
    pos: u64,
    len: u64,
    table: &'static [u8],
}

impl Generator {
    pub fn new(len: u64) -> Self {
        Self {
            pos: 0,
            len,
            table: table(),
        }
    }
}

impl Read for Generator {
    // Inlined into the filler (another crate), as when this code lived in the report's crate.
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = usize::try_from(self.len - self.pos).unwrap_or(usize::MAX);
        let n = left.min(buf.len());
        let mut done = 0;
        while done < n {
            let (at, run) = locate(self.pos + done as u64);
            let run = run.min(n - done);
            buf[done..done + run].copy_from_slice(&self.table[at..at + run]);
            done += run;
        }
        self.pos += n as u64;
        Ok(n)
    }
}

/// The same bytes as [`Generator`], as the `Stream` of `Bytes` that stream-download consumes.
/// Each item is a zero-copy slice of the table (the cheapest source a peer can have).
#[derive(Debug)]
pub struct GenStream {
    pos: u64,
    len: u64,
}

impl Stream for GenStream {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.pos >= self.len {
            return Poll::Ready(None);
        }
        let (at, run) = locate(self.pos);
        let run = run.min(usize::try_from(self.len - self.pos).unwrap_or(usize::MAX));
        self.pos += run as u64;
        Poll::Ready(Some(Ok(table().slice(at..at + run))))
    }
}

impl SourceStream for GenStream {
    type Params = u64;
    type StreamCreationError = Infallible;

    async fn create(len: u64) -> Result<Self, Infallible> {
        Ok(Self { pos: 0, len })
    }

    fn content_length(&self) -> Option<u64> {
        Some(self.len)
    }

    async fn seek_range(&mut self, start: u64, _end: Option<u64>) -> io::Result<()> {
        self.pos = start;
        Ok(())
    }

    async fn reconnect(&mut self, _current_position: u64) -> io::Result<()> {
        Ok(())
    }

    fn supports_seek(&self) -> bool {
        false
    }
}

/// The checksum every reader computes: the sum of all bytes. It does not depend on where reads
/// split the stream, so every contender's readers must agree with [`expected_sum`].
#[inline]
pub fn fold(mut sum: u64, bytes: &[u8]) -> u64 {
    // 65536 * 255 fits a u32 lane: the inner sum vectorises.
    for block in bytes.chunks(1 << 16) {
        let s: u32 = block.iter().map(|&b| u32::from(b)).sum();
        sum = sum.wrapping_add(u64::from(s));
    }
    sum
}

/// The checksum of the generated stream of `len` bytes (computed once per length).
pub fn expected_sum(len: u64) -> u64 {
    static CACHE: Mutex<Vec<(u64, u64)>> = Mutex::new(Vec::new());
    if let Some(&(_, sum)) = CACHE.lock().unwrap().iter().find(|(l, _)| *l == len) {
        return sum;
    }
    let sum = fold_read(Generator::new(len)).expect("the generator does not fail");
    CACHE.lock().unwrap().push((len, sum));
    sum
}

/// Folds everything a `BufRead` hands out, without copying it.
pub fn fold_bufread(mut reader: impl BufRead) -> io::Result<u64> {
    let mut sum = 0u64;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(sum);
        }
        sum = fold(sum, buf);
        let n = buf.len();
        reader.consume(n);
    }
}

/// Folds everything a `Read` copies into a 64 KiB buffer.
pub fn fold_read(mut reader: impl Read) -> io::Result<u64> {
    let mut buf = vec![0u8; CHUNK];
    let mut sum = 0u64;
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return Ok(sum),
            Ok(n) => sum = fold(sum, &buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}
