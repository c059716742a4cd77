//! The oracle of the model tests (`model.rs`, one thread; `threads_model.rs`, several): what a
//! stream must turn out to be, what each operation may return while it fills and must return
//! once it has ended, and the strategies both draw their cases from.

use super::source::PatternSource;
use super::{chunks_of, pattern, spilling, Chunk};
use bytes::Bytes;
use proptest::prelude::*;
use std::io::{self, BufRead, ErrorKind, Read, SeekFrom};
use std::ops::Bound;
use std::path::Path;
use streamcache::{Builder, Reader, Status, StreamCache};

pub type Range = (Bound<u64>, Bound<u64>);

/// The end of a stream of `len` source bytes under the cap `max_len`.
pub fn end_of(len: usize, max_len: Option<u64>) -> u64 {
    let len = len as u64;
    max_len.map_or(len, |max| max.min(len))
}

/// What the stream must turn out to be.
pub struct Model {
    /// The bytes the cache ends up holding.
    pub data: Vec<u8>,
    /// `None`: completes at `data.len()`; `Some(kind)`: fails there with `kind`.
    pub failure: Option<ErrorKind>,
}

impl Model {
    /// The stream of a source with `len` bytes of the pattern that then ends (`error` `None`)
    /// or fails with `error`, capped at `max_len`.
    pub fn new(len: usize, max_len: Option<u64>, error: Option<ErrorKind>) -> Self {
        match max_len {
            Some(max) if len as u64 > max => Model {
                data: pattern(max as usize),
                failure: Some(ErrorKind::StorageFull),
            },
            _ => Model {
                data: pattern(len),
                failure: error,
            },
        }
    }

    pub fn end(&self) -> u64 {
        self.data.len() as u64
    }

    pub fn bytes(&self, start: u64, end: u64) -> &[u8] {
        &self.data[start as usize..end as usize]
    }

    /// The error for needing bytes past the end: the failure's kind, else `UnexpectedEof`.
    pub fn past_end(&self) -> ErrorKind {
        self.failure.unwrap_or(ErrorKind::UnexpectedEof)
    }

    /// What `wait_complete` returns.
    pub fn outcome(&self) -> Result<u64, ErrorKind> {
        self.failure.map_or(Ok(self.end()), Err)
    }

    /// Where a seek `to` from `pos` lands, or its error.
    pub fn seek(&self, pos: u64, to: SeekFrom) -> Result<u64, ErrorKind> {
        match to {
            SeekFrom::Start(o) => Ok(o),
            SeekFrom::Current(d) => pos.checked_add_signed(d).ok_or(ErrorKind::InvalidInput),
            SeekFrom::End(d) => match self.failure {
                Some(kind) => Err(kind),
                None => self
                    .end()
                    .checked_add_signed(d)
                    .ok_or(ErrorKind::InvalidInput),
            },
        }
    }
}

/// `range` as `start..end` (`None` = open), or `None` if it is inverted or overflows.
pub fn resolve(range: Range) -> Option<(u64, Option<u64>)> {
    let start = match range.0 {
        Bound::Included(s) => s,
        Bound::Excluded(s) => s.checked_add(1)?,
        Bound::Unbounded => 0,
    };
    let end = match range.1 {
        Bound::Included(e) => Some(e.checked_add(1)?),
        Bound::Excluded(e) => Some(e),
        Bound::Unbounded => None,
    };
    match end {
        Some(end) if start > end => None,
        _ => Some((start, end)),
    }
}

/// What `slice` and `bytes` must return for `range`.
pub fn expected_slice(m: &Model, range: Range) -> Result<&[u8], ErrorKind> {
    let Some((start, end)) = resolve(range) else {
        return Err(ErrorKind::InvalidInput);
    };
    match end {
        Some(end) if end <= m.end() => Ok(m.bytes(start, end)),
        Some(_) => Err(m.past_end()),
        None => match m.failure {
            Some(kind) => Err(kind),
            None if start <= m.end() => Ok(m.bytes(start, m.end())),
            None => Err(ErrorKind::UnexpectedEof),
        },
    }
}

/// What `try_slice` returns once the stream has ended (before, it may also be `None`).
pub fn expected_try_slice(m: &Model, range: Range) -> Option<&[u8]> {
    match resolve(range)? {
        (start, Some(end)) if end <= m.end() => Some(m.bytes(start, end)),
        (_, Some(_)) => None,
        (start, None) if m.failure.is_none() && start <= m.end() => Some(m.bytes(start, m.end())),
        (_, None) => None,
    }
}

pub fn kind_of<T: std::fmt::Debug>(result: io::Result<T>) -> ErrorKind {
    result.expect_err("expected an error").kind()
}

/// Whether the stream has ended (complete or failed).
pub fn is_terminal(cache: &StreamCache) -> bool {
    !matches!(cache.status(), Status::Filling { .. })
}

// ---------------------------------------------------------------------------------------------
// Checks, one operation each. `terminal`: the stream had ended before the operation started,
// so its result must be exact.
// ---------------------------------------------------------------------------------------------

/// Checks a read of up to `len` bytes at `offset` that returned `result` into `buf`: a partial
/// read only while filling, never a wrong byte, `Ok(0)` only at the end or for `len` 0.
/// Returns how many bytes were read.
pub fn check_read(
    m: &Model,
    what: &str,
    terminal: bool,
    offset: u64,
    len: usize,
    result: io::Result<usize>,
    buf: &[u8],
) -> usize {
    if offset.checked_add(len as u64).is_none() {
        assert_eq!(kind_of(result), ErrorKind::InvalidInput, "{what}");
        return 0;
    }
    if len == 0 {
        assert_eq!(
            result.unwrap_or_else(|e| panic!("{what}: {e}")),
            0,
            "{what}"
        );
        return 0;
    }
    if offset < m.end() {
        let n = result.unwrap_or_else(|e| panic!("{what}: {e}"));
        let max = (m.end() - offset).min(len as u64) as usize;
        if terminal {
            assert_eq!(n, max, "{what}: a short read after the end was decided");
        } else {
            assert!((1..=max).contains(&n), "{what}: {n} bytes, at most {max}");
        }
        assert!(
            buf[..n] == *m.bytes(offset, offset + n as u64),
            "{what}: wrong bytes"
        );
        n
    } else {
        match m.failure {
            Some(kind) => assert_eq!(kind_of(result), kind, "{what}"),
            None => assert_eq!(
                result.unwrap_or_else(|e| panic!("{what}: {e}")),
                0,
                "{what}"
            ),
        }
        0
    }
}

/// Checks `read_exact_at(offset, buf)` of `len` bytes, which returned `result`.
pub fn check_read_exact_at(
    m: &Model,
    what: &str,
    offset: u64,
    len: usize,
    result: io::Result<()>,
    buf: &[u8],
) {
    match offset.checked_add(len as u64) {
        None => assert_eq!(kind_of(result), ErrorKind::InvalidInput, "{what}"),
        Some(end) if end <= m.end() => {
            result.unwrap_or_else(|e| panic!("{what}: {e}"));
            assert!(buf == m.bytes(offset, end), "{what}: wrong bytes");
        }
        Some(_) => assert_eq!(kind_of(result), m.past_end(), "{what}"),
    }
}

/// Checks what `slice(range)` returned; the slice, if any.
pub fn check_slice<'a>(
    m: &Model,
    what: &str,
    range: Range,
    got: io::Result<&'a [u8]>,
) -> Option<&'a [u8]> {
    let got = got.map_err(|e| e.kind());
    assert!(
        got == expected_slice(m, range),
        "{what}: {:?}",
        got.map(<[u8]>::len)
    );
    got.ok()
}

/// Checks what `try_slice(range)` returned: never wrong, and exact once the stream has ended.
pub fn check_try_slice(m: &Model, what: &str, terminal: bool, range: Range, got: Option<&[u8]>) {
    let expected = expected_try_slice(m, range);
    // Never waits, so it may be `None` while filling; but never wrong.
    if terminal || got.is_some() {
        assert!(
            got == expected,
            "{what}: got {:?}, expected {:?}",
            got.map(<[u8]>::len),
            expected.map(<[u8]>::len)
        );
    }
}

/// `bytes(range)` on `cache`, checked: the right bytes or error and, once the stream has ended,
/// the same memory as `slice` (zero-copy). The `Bytes`, if any.
pub fn check_bytes(
    m: &Model,
    what: &str,
    terminal: bool,
    cache: &StreamCache,
    range: Range,
) -> Option<Bytes> {
    let got = cache.bytes(range).map_err(|e| e.kind());
    let view = got.as_ref().map(|b| &b[..]).map_err(|&k| k);
    assert!(
        view == expected_slice(m, range),
        "{what}: {:?}",
        view.map(<[u8]>::len)
    );
    let bytes = got.ok()?;
    if terminal && !bytes.is_empty() {
        let slice = cache.slice(range).unwrap();
        assert_eq!(bytes.as_ptr(), slice.as_ptr(), "{what}: a copy");
    }
    Some(bytes)
}

/// Checks what `wait_for(offset)` returned.
pub fn check_wait(m: &Model, what: &str, terminal: bool, offset: u64, got: io::Result<u64>) {
    if offset <= m.end() {
        let available = got.unwrap_or_else(|e| panic!("{what}: {e}"));
        if terminal {
            assert_eq!(available, m.end(), "{what}");
        } else {
            assert!(
                (offset..=m.end()).contains(&available),
                "{what}: {available}"
            );
        }
    } else {
        match m.failure {
            Some(kind) => assert_eq!(kind_of(got), kind, "{what}"),
            None => assert_eq!(
                got.unwrap_or_else(|e| panic!("{what}: {e}")),
                m.end(),
                "{what}"
            ),
        }
    }
}

/// `wait_complete` on `cache`, checked, and everything the end decides: the status, the
/// length, `is_complete` and what is available.
pub fn check_wait_complete(m: &Model, what: &str, cache: &StreamCache) {
    let got = cache.wait_complete().map_err(|e| e.kind());
    assert_eq!(got, m.outcome(), "{what}");
    let status = cache.status();
    match m.failure {
        Some(error) => {
            let available = m.end();
            assert_eq!(status, Status::Failed { available, error }, "{what}");
            assert_eq!(cache.len(), None, "{what}");
            assert!(!cache.is_complete(), "{what}");
        }
        None => {
            assert_eq!(status, Status::Complete { len: m.end() }, "{what}");
            assert_eq!(cache.len(), Some(m.end()), "{what}");
            assert!(cache.is_complete(), "{what}");
        }
    }
    assert_eq!(cache.available(), m.end(), "{what}");
}

/// Checks a `status()`: filling below the end, or the end the model decides.
pub fn check_status(m: &Model, what: &str, status: Status) {
    match status {
        Status::Filling { available } => assert!(available <= m.end(), "{what}"),
        Status::Complete { len } => {
            assert_eq!(m.failure, None, "{what}");
            assert_eq!(len, m.end(), "{what}");
        }
        Status::Failed { available, error } => {
            assert_eq!(Some(error), m.failure, "{what}");
            assert_eq!(available, m.end(), "{what}");
        }
    }
}

/// Seeks `reader`, whose cursor the model has at `pos`, `to`, checked; moves `pos`.
pub fn check_seek(m: &Model, what: &str, reader: &mut Reader, pos: &mut u64, to: SeekFrom) {
    use std::io::Seek;
    let expected = m.seek(*pos, to);
    let got = reader.seek(to).map_err(|e| e.kind());
    assert_eq!(got, expected, "{what}");
    if let Ok(new) = expected {
        *pos = new;
    }
}

/// `Read::read` of `len` bytes through `reader`, whose cursor the model has at `pos`, checked;
/// moves `pos`.
pub fn reader_read(
    m: &Model,
    what: &str,
    terminal: bool,
    reader: &mut Reader,
    pos: &mut u64,
    len: usize,
) {
    let mut buf = vec![0u8; len];
    let result = reader.read(&mut buf);
    // A cursor near u64::MAX reads at most up to u64::MAX.
    let len = len.min(usize::try_from(u64::MAX - *pos).unwrap_or(usize::MAX));
    *pos += check_read(m, what, terminal, *pos, len, result, &buf) as u64;
}

/// `fill_buf` through `reader` (of `cache`), whose cursor the model has at `pos`, checked
/// (once the stream has ended: all of the rest, in the same memory as `slice`), then `consume`
/// of `per_mille` thousandths of it; moves `pos`.
pub fn fill_buf_consume(
    m: &Model,
    what: &str,
    terminal: bool,
    cache: &StreamCache,
    reader: &mut Reader,
    pos: &mut u64,
    per_mille: u16,
) {
    let got = reader.fill_buf().map(|buf| (buf.as_ptr(), buf.to_vec()));
    if *pos == u64::MAX {
        // No byte can be at u64::MAX: nothing to wait for.
        assert_eq!(got.unwrap().1, b"", "{what}");
    } else if *pos < m.end() {
        let (ptr, buf) = got.unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(!buf.is_empty(), "{what}: empty before the end");
        let full = m.bytes(*pos, m.end());
        if terminal {
            assert!(buf == full, "{what}: {} bytes, wrong", buf.len());
            // Zero-copy: the same memory as `slice`.
            let slice = cache.slice(*pos..m.end()).unwrap();
            assert_eq!(ptr, slice.as_ptr(), "{what}: a copy");
        } else {
            assert!(full.starts_with(&buf), "{what}: {} bytes, wrong", buf.len());
        }
        let amt = buf.len() * usize::from(per_mille) / 1000;
        reader.consume(amt);
        *pos += amt as u64;
    } else {
        match m.failure {
            Some(kind) => assert_eq!(kind_of(got), kind, "{what}"),
            None => assert_eq!(got.unwrap().1, b"", "{what}"),
        }
    }
}

/// Whatever the operations did, the whole stream is right in the end.
pub fn check_whole_stream(m: &Model, cache: &StreamCache) {
    assert!(
        cache.slice(..m.end()).unwrap() == &m.data[..],
        "the whole stream"
    );
    assert_eq!(cache.wait_complete().map_err(|e| e.kind()), m.outcome());
}

// ---------------------------------------------------------------------------------------------
// Sources and strategies
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub enum Shape {
    /// A `Read` source whose reads return at most these sizes, cycled.
    Reads(Vec<usize>),
    /// A chunk source whose chunks have these lengths, cycled (0 = an empty chunk).
    Chunks(Vec<usize>),
}

/// A case's stream: its source and how the cache is built.
#[derive(Debug, Clone)]
pub struct StreamSetup {
    /// Bytes the source has before it ends or fails.
    pub len: usize,
    pub memory_limit: usize,
    pub shape: Shape,
    pub chunk_size: Option<usize>,
    pub max_len: Option<u64>,
    /// The source fails after `len` bytes with this kind instead of ending.
    pub error: Option<ErrorKind>,
}

impl StreamSetup {
    /// What the stream must turn out to be.
    pub fn model(&self) -> Model {
        Model::new(self.len, self.max_len, self.error)
    }

    /// The offsets that matter for this stream.
    pub fn offsets(&self) -> Offsets {
        Offsets::new(self.len, self.max_len, self.memory_limit)
    }

    /// The end of the stream (the cap cuts it short).
    pub fn end(&self) -> u64 {
        end_of(self.len, self.max_len)
    }

    /// A builder with the stream's memory limit, chunk size and cap, spilling into `dir`.
    pub fn builder(&self, dir: &Path) -> Builder {
        let mut builder = spilling(self.memory_limit, dir);
        if let Some(n) = self.chunk_size {
            builder = builder.chunk_size(n);
        }
        if let Some(max) = self.max_len {
            builder = builder.max_len(max);
        }
        builder
    }

    /// The source of a [`Shape::Reads`] stream, reads sized by `sizes`: the pattern, then the
    /// error, if any.
    pub fn reads(&self, sizes: &[usize]) -> PatternSource {
        let reads = PatternSource::new(self.len as u64).sizes(sizes);
        match self.error {
            Some(kind) => reads.failing(kind, "model source error"),
            None => reads,
        }
    }

    /// The items of a [`Shape::Chunks`] stream, chunks sized by `sizes`: the pattern, then the
    /// error, if any, and an empty chunk at the end too (skipped, not the end).
    pub fn chunk_items(&self, sizes: &[usize]) -> Vec<Chunk> {
        let mut items = chunks_of(&pattern(self.len), sizes);
        if let Some(kind) = self.error {
            items.push(Err(io::Error::new(kind, "model source error")));
        }
        items.push(Ok(Vec::new()));
        items
    }
}

/// Read sizes from tiny to large, and a shape of reads or of chunks (some empty) of them.
pub fn shape() -> impl Strategy<Value = Shape> {
    let size = || prop_oneof![1..10usize, 1..5_000usize, 1..100_000usize];
    prop_oneof![
        prop::collection::vec(size(), 1..6).prop_map(Shape::Reads),
        prop::collection::vec(prop_oneof![Just(0usize), size()], 1..6).prop_map(|mut sizes| {
            if sizes.iter().all(|&s| s == 0) {
                sizes.push(1);
            }
            Shape::Chunks(sizes)
        }),
    ]
}

/// The offsets that matter for a case: anywhere in or just past the stream of `len` source
/// bytes, around the memory limit and the end, and near `u64::MAX`.
#[derive(Debug, Clone, Copy)]
pub struct Offsets {
    /// The source's length.
    pub len: u64,
    /// The stream's end (the cap cuts it short).
    pub end: u64,
    pub memory_limit: u64,
}

impl Offsets {
    pub fn new(len: usize, max_len: Option<u64>, memory_limit: usize) -> Self {
        Self {
            len: len as u64,
            end: end_of(len, max_len),
            memory_limit: u64::try_from(memory_limit).unwrap_or(u64::MAX),
        }
    }

    pub fn offset(self) -> impl Strategy<Value = u64> {
        let limit = self.memory_limit;
        prop_oneof![
            6 => 0..=self.len + 10,
            2 => limit.saturating_sub(3)..=limit.saturating_add(3),
            2 => self.end.saturating_sub(3)..=self.end + 3,
            1 => u64::MAX - 20..=u64::MAX,
        ]
    }

    pub fn bound(self) -> impl Strategy<Value = Bound<u64>> {
        prop_oneof![
            3 => self.offset().prop_map(Bound::Included),
            3 => self.offset().prop_map(Bound::Excluded),
            1 => Just(Bound::Unbounded),
        ]
    }

    /// Mostly well-formed (start before end, `width` apart), sometimes any pair (possibly
    /// inverted).
    pub fn range(self, width: impl Strategy<Value = u64>) -> impl Strategy<Value = Range> {
        let any = (self.bound(), self.bound());
        let ordered = (self.offset(), width, prop::bool::weighted(0.8), 0..3u8).prop_map(
            |(s, width, has_start, end_kind)| {
                let e = s.saturating_add(width);
                let start = if has_start {
                    Bound::Included(s)
                } else {
                    Bound::Unbounded
                };
                let end = match end_kind {
                    0 => Bound::Excluded(e),
                    1 => Bound::Included(e),
                    _ => Bound::Unbounded,
                };
                (start, end)
            },
        );
        prop_oneof![3 => ordered, 1 => any]
    }

    pub fn seek(self) -> impl Strategy<Value = SeekFrom> {
        let len = self.len as i64;
        prop_oneof![
            3 => self.offset().prop_map(SeekFrom::Start),
            3 => (-len - 5..=len + 5).prop_map(SeekFrom::Current),
            3 => (-len - 5..=5i64).prop_map(SeekFrom::End),
            1 => prop::sample::select(vec![
                SeekFrom::Current(i64::MIN),
                SeekFrom::Current(i64::MAX),
                SeekFrom::End(i64::MIN),
                SeekFrom::End(i64::MAX),
            ]),
        ]
    }
}

pub fn read_len() -> impl Strategy<Value = usize> {
    prop_oneof![4 => 0..20usize, 3 => 0..5_000usize, 1 => 0..120_000usize]
}

/// `cases` cases unless `PROPTEST_CASES` says otherwise; no regression files written into the
/// tree.
pub fn config(cases: u32) -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = cases;
    }
    config.failure_persistence = None;
    if cfg!(miri) {
        // Generating a case costs miri far more than running it, ChaCha's rounds most of all.
        config.rng_algorithm = proptest::test_runner::RngAlgorithm::XorShift;
    }
    config
}
