//! A model test: random streams (length, memory limit, read or chunk shapes, chunk size, cap,
//! and a source error at a random offset) read through random sequences of every kind of read,
//! checked against a plain `Vec<u8>` and the outcome the contract decides.
//!
//! The operations run while the filler may still be filling, so the checks accept exactly what
//! the contract allows at any moment (e.g. a partial `read_at`, or `None` from `try_slice`
//! before the bytes are there) and are exact once the stream has ended.
//!
//! 64 cases by default; set `PROPTEST_CASES` for more. Under miri (which cannot map the spill
//! file): 6 cases of short streams that fit in `memory_limit`.

mod common;

use common::{chunks_of, pattern, spill_dir, OddReads};
use proptest::prelude::*;
use std::io::{self, BufRead, ErrorKind, Read, Seek, SeekFrom};
use std::ops::Bound;
use streamcache::{Reader, Status, StreamCache};

/// Error kinds a source may fail with; none of them is one the API produces by itself.
const SOURCE_ERRORS: [ErrorKind; 4] = [
    ErrorKind::ConnectionReset,
    ErrorKind::TimedOut,
    ErrorKind::BrokenPipe,
    ErrorKind::PermissionDenied,
];

#[derive(Debug, Clone)]
enum Shape {
    /// A `Read` source whose reads return these sizes, cycled.
    Reads(Vec<usize>),
    /// A chunk source whose chunks have these lengths, cycled (0 = an empty chunk).
    Chunks(Vec<usize>),
}

#[derive(Debug, Clone)]
struct Setup {
    /// Bytes the source has before it ends or fails.
    len: usize,
    memory_limit: usize,
    shape: Shape,
    chunk_size: Option<usize>,
    max_len: Option<u64>,
    /// The source fails after `len` bytes with this kind instead of ending.
    error: Option<ErrorKind>,
}

type Range = (Bound<u64>, Bound<u64>);

#[derive(Debug, Clone)]
enum Op {
    ReadAt(u64, usize),
    ReadExactAt(u64, usize),
    Slice(Range),
    TrySlice(Range),
    Bytes(Range),
    WaitFor(u64),
    WaitComplete,
    Status,
    Seek(usize, SeekFrom),
    Read(usize, usize),
    /// `fill_buf`, then `consume` this many thousandths of what it returned.
    FillBuf(usize, u16),
    CloneReader(usize),
}

/// What the stream must turn out to be.
struct Model {
    /// The bytes the cache ends up holding.
    data: Vec<u8>,
    /// `None`: completes at `data.len()`; `Some(kind)`: fails there with `kind`.
    failure: Option<ErrorKind>,
}

impl Model {
    fn new(setup: &Setup) -> Self {
        match setup.max_len {
            Some(max) if setup.len as u64 > max => Model {
                data: pattern(max as usize),
                failure: Some(ErrorKind::StorageFull),
            },
            _ => Model {
                data: pattern(setup.len),
                failure: setup.error,
            },
        }
    }

    fn end(&self) -> u64 {
        self.data.len() as u64
    }

    fn bytes(&self, start: u64, end: u64) -> &[u8] {
        &self.data[start as usize..end as usize]
    }

    /// The error for needing bytes past the end: the failure's kind, else `UnexpectedEof`.
    fn past_end(&self) -> ErrorKind {
        self.failure.unwrap_or(ErrorKind::UnexpectedEof)
    }
}

/// `range` as `start..end` (`None` = open), or `None` if it is inverted or overflows.
fn resolve(range: Range) -> Option<(u64, Option<u64>)> {
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

/// Checks a read of up to `len` bytes at `offset` that returned `result` into `buf`: partial
/// reads are allowed while filling, never wrong bytes, `Ok(0)` only at the end or for `len` 0.
fn check_partial_read(
    m: &Model,
    what: &str,
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
        assert_eq!(result.unwrap(), 0, "{what}");
        return 0;
    }
    if offset < m.end() {
        let n = result.unwrap_or_else(|e| panic!("{what}: {e}"));
        let max = (m.end() - offset).min(len as u64) as usize;
        assert!((1..=max).contains(&n), "{what}: {n} bytes, at most {max}");
        assert_eq!(&buf[..n], m.bytes(offset, offset + n as u64), "{what}");
        n
    } else {
        match m.failure {
            Some(kind) => assert_eq!(kind_of(result), kind, "{what}"),
            None => assert_eq!(result.unwrap(), 0, "{what}"),
        }
        0
    }
}

/// What `slice` and `bytes` must return for `range`.
fn expected_slice(m: &Model, range: Range) -> Result<&[u8], ErrorKind> {
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

fn kind_of<T: std::fmt::Debug>(result: io::Result<T>) -> ErrorKind {
    result.expect_err("expected an error").kind()
}

fn is_terminal(cache: &StreamCache) -> bool {
    !matches!(cache.status(), Status::Filling { .. })
}

/// Starts the cache that `setup` describes.
fn spawn(setup: &Setup, dir: &std::path::Path) -> StreamCache {
    let source = pattern(setup.len);
    let mut builder = StreamCache::builder()
        .memory_limit(setup.memory_limit)
        .temp_dir(dir);
    if let Some(n) = setup.chunk_size {
        builder = builder.chunk_size(n);
    }
    if let Some(max) = setup.max_len {
        builder = builder.max_len(max);
    }
    match &setup.shape {
        Shape::Reads(sizes) => {
            let mut reads = OddReads::new(source, sizes);
            if let Some(kind) = setup.error {
                reads = reads.failing(kind, "model source error");
            }
            builder.spawn(reads).unwrap()
        }
        Shape::Chunks(sizes) => {
            let mut chunks = chunks_of(&source, sizes);
            if let Some(kind) = setup.error {
                chunks.push(Err(io::Error::new(kind, "model source error")));
            }
            // Empty chunks at the end too: skipped, not the end.
            chunks.push(Ok(Vec::new()));
            builder.spawn_chunks(chunks).unwrap()
        }
    }
}

/// Runs `ops` against a cache built from `setup` and checks each against the model.
fn run(setup: &Setup, ops: &[Op]) {
    let dir = spill_dir();
    let m = Model::new(setup);
    let cache = spawn(setup, dir.path());
    let mut readers: Vec<Reader> = vec![cache.reader()];
    let mut positions: Vec<u64> = vec![0];
    let mut last_available = 0;

    for (i, op) in ops.iter().enumerate() {
        let what = format!("op {i} {op:?}");
        let terminal = is_terminal(&cache);
        match *op {
            Op::ReadAt(offset, len) => {
                let mut buf = vec![0u8; len];
                let result = cache.read_at(offset, &mut buf);
                check_partial_read(&m, &what, offset, len, result, &buf);
            }
            Op::ReadExactAt(offset, len) => {
                let mut buf = vec![0u8; len];
                let result = cache.read_exact_at(offset, &mut buf);
                match offset.checked_add(len as u64) {
                    None => assert_eq!(kind_of(result), ErrorKind::InvalidInput, "{what}"),
                    Some(end) if end <= m.end() => {
                        result.unwrap_or_else(|e| panic!("{what}: {e}"));
                        assert_eq!(&buf[..], m.bytes(offset, end), "{what}");
                    }
                    Some(_) => assert_eq!(kind_of(result), m.past_end(), "{what}"),
                }
            }
            Op::Slice(range) => {
                let got = cache.slice(range).map_err(|e| e.kind());
                assert_eq!(got, expected_slice(&m, range), "{what}");
            }
            Op::Bytes(range) => {
                let got = cache.bytes(range).map_err(|e| e.kind());
                let view = got.as_ref().map(|b| &b[..]).map_err(|&k| k);
                assert_eq!(view, expected_slice(&m, range), "{what}");
                // Zero-copy: once the stream has ended, the same memory as `slice`.
                if let (true, Ok(bytes)) = (terminal, &got) {
                    if !bytes.is_empty() {
                        let slice = cache.slice(range).unwrap();
                        assert_eq!(bytes.as_ptr(), slice.as_ptr(), "{what}: a copy");
                    }
                }
            }
            Op::TrySlice(range) => {
                let got = cache.try_slice(range);
                let expected = match resolve(range) {
                    None => None,
                    Some((start, Some(end))) if end <= m.end() => Some(m.bytes(start, end)),
                    Some((_, Some(_))) => None,
                    Some((start, None)) if m.failure.is_none() && start <= m.end() => {
                        Some(m.bytes(start, m.end()))
                    }
                    Some((_, None)) => None,
                };
                if terminal {
                    assert_eq!(got, expected, "{what}");
                } else if got.is_some() {
                    // Never waits, so it may be `None` while filling; but never wrong.
                    assert_eq!(got, expected, "{what}");
                }
            }
            Op::WaitFor(offset) => {
                let got = cache.wait_for(offset);
                if offset <= m.end() {
                    let available = got.unwrap_or_else(|e| panic!("{what}: {e}"));
                    assert!(
                        (offset..=m.end()).contains(&available),
                        "{what}: {available}"
                    );
                } else {
                    match m.failure {
                        Some(kind) => assert_eq!(kind_of(got), kind, "{what}"),
                        None => assert_eq!(got.unwrap(), m.end(), "{what}"),
                    }
                }
            }
            Op::WaitComplete => {
                let got = cache.wait_complete().map_err(|e| e.kind());
                match m.failure {
                    Some(kind) => assert_eq!(got, Err(kind), "{what}"),
                    None => assert_eq!(got, Ok(m.end()), "{what}"),
                }
                let status = cache.status();
                match m.failure {
                    Some(error) => {
                        let available = m.end();
                        assert_eq!(status, Status::Failed { available, error }, "{what}");
                        assert_eq!(cache.len(), None);
                        assert!(!cache.is_complete());
                    }
                    None => {
                        assert_eq!(status, Status::Complete { len: m.end() }, "{what}");
                        assert_eq!(cache.len(), Some(m.end()));
                        assert!(cache.is_complete());
                    }
                }
            }
            Op::Status => match cache.status() {
                Status::Filling { available } => assert!(available <= m.end(), "{what}"),
                Status::Complete { len } => {
                    assert_eq!(m.failure, None, "{what}");
                    assert_eq!(len, m.end(), "{what}");
                }
                Status::Failed { available, error } => {
                    assert_eq!(Some(error), m.failure, "{what}");
                    assert_eq!(available, m.end(), "{what}");
                }
            },
            Op::Seek(r, to) => {
                let r = r % readers.len();
                let pos = positions[r];
                let expected = match to {
                    SeekFrom::Start(o) => Ok(o),
                    SeekFrom::Current(d) => {
                        pos.checked_add_signed(d).ok_or(ErrorKind::InvalidInput)
                    }
                    SeekFrom::End(d) => match m.failure {
                        Some(kind) => Err(kind),
                        None => m.end().checked_add_signed(d).ok_or(ErrorKind::InvalidInput),
                    },
                };
                let got = readers[r].seek(to).map_err(|e| e.kind());
                assert_eq!(got, expected, "{what}");
                if let Ok(new) = expected {
                    positions[r] = new;
                }
            }
            Op::Read(r, len) => {
                let r = r % readers.len();
                let pos = positions[r];
                let mut buf = vec![0u8; len];
                let result = readers[r].read(&mut buf);
                // A cursor near u64::MAX reads at most up to u64::MAX.
                let len = len.min(usize::try_from(u64::MAX - pos).unwrap_or(usize::MAX));
                positions[r] += check_partial_read(&m, &what, pos, len, result, &buf) as u64;
            }
            Op::FillBuf(r, per_mille) => {
                let r = r % readers.len();
                let pos = positions[r];
                let got = readers[r].fill_buf().map(<[u8]>::to_vec);
                if pos == u64::MAX {
                    // No byte can be at u64::MAX: nothing to wait for.
                    assert_eq!(got.unwrap(), b"", "{what}");
                } else if pos < m.end() {
                    let buf = got.unwrap_or_else(|e| panic!("{what}: {e}"));
                    assert!(!buf.is_empty(), "{what}: empty before the end");
                    let full = m.bytes(pos, m.end());
                    if terminal {
                        assert_eq!(buf, full, "{what}");
                    } else {
                        assert!(full.starts_with(&buf), "{what}");
                    }
                    let amt = buf.len() * usize::from(per_mille) / 1000;
                    readers[r].consume(amt);
                    positions[r] += amt as u64;
                } else {
                    match m.failure {
                        Some(kind) => assert_eq!(kind_of(got), kind, "{what}"),
                        None => assert_eq!(got.unwrap(), b"", "{what}"),
                    }
                }
            }
            Op::CloneReader(r) => {
                let r = r % readers.len();
                readers.push(readers[r].clone());
                positions.push(positions[r]);
            }
        }
        for (reader, &pos) in readers.iter().zip(&positions) {
            assert_eq!(reader.position(), pos, "after {what}");
        }
        let available = cache.available();
        assert!(available >= last_available, "the mark went down");
        assert!(available <= m.end(), "published past the end");
        last_available = available;
    }

    // Whatever the ops did, the whole stream is right in the end.
    assert_eq!(
        cache.slice(..m.end()).unwrap(),
        &m.data[..],
        "the whole stream"
    );
    assert_eq!(
        cache.wait_complete().map_err(|e| e.kind()),
        m.failure.map_or(Ok(m.end()), Err)
    );
}

// ---------------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------------

fn setup() -> impl Strategy<Value = Setup> {
    // Miri is slow: shorter streams there.
    let (long, short): (usize, usize) = if cfg!(miri) {
        (400, 100)
    } else {
        (300_000, 5_000)
    };
    let len = prop_oneof![0..long, 0..short, 0..4usize];
    let memory_limit = prop_oneof![0..200_000usize, 0..5_000usize, Just(0)];
    let size = || prop_oneof![1..10usize, 1..5_000usize, 1..100_000usize];
    let shape = prop_oneof![
        prop::collection::vec(size(), 1..6).prop_map(Shape::Reads),
        prop::collection::vec(prop_oneof![Just(0usize), size()], 1..6).prop_map(|mut sizes| {
            if sizes.iter().all(|&s| s == 0) {
                sizes.push(1);
            }
            Shape::Chunks(sizes)
        }),
    ];
    let chunk_size = prop::option::of(prop_oneof![1..16usize, 1..100_000usize]);
    let max_len = prop::option::weighted(0.2, prop_oneof![0..300_000u64, 0..5_000u64]);
    let error = prop::option::weighted(0.3, prop::sample::select(SOURCE_ERRORS.to_vec()));
    (len, memory_limit, shape, chunk_size, max_len, error).prop_map(
        |(len, memory_limit, shape, chunk_size, max_len, error)| Setup {
            len,
            // Miri cannot map the spill file: the whole stream fits in memory there (a stream
            // that ends exactly at the limit needs no file either).
            memory_limit: if cfg!(miri) {
                memory_limit.max(len)
            } else {
                memory_limit
            },
            shape,
            chunk_size,
            max_len,
            error,
        },
    )
}

/// Offsets that matter for `setup`: anywhere in or just past the stream, around the memory
/// limit and the end, and near `u64::MAX`.
fn offset(setup: &Setup) -> impl Strategy<Value = u64> {
    let len = setup.len as u64;
    let end = setup.max_len.map_or(len, |max| max.min(len));
    let limit = setup.memory_limit as u64;
    prop_oneof![
        6 => 0..=len + 10,
        2 => limit.saturating_sub(3)..=limit + 3,
        2 => end.saturating_sub(3)..=end + 3,
        1 => u64::MAX - 20..=u64::MAX,
    ]
}

fn read_len() -> impl Strategy<Value = usize> {
    prop_oneof![4 => 0..20usize, 3 => 0..5_000usize, 1 => 0..120_000usize]
}

fn bound(setup: &Setup) -> impl Strategy<Value = Bound<u64>> {
    prop_oneof![
        3 => offset(setup).prop_map(Bound::Included),
        3 => offset(setup).prop_map(Bound::Excluded),
        1 => Just(Bound::Unbounded),
    ]
}

fn range(setup: &Setup) -> impl Strategy<Value = Range> {
    // Mostly well-formed (start before end), sometimes any pair (possibly inverted).
    let any = (bound(setup), bound(setup));
    let ordered = (offset(setup), 0..5_000u64, any_bounds()).prop_map(|(s, width, kinds)| {
        let e = s.saturating_add(width);
        let start = if kinds.0 {
            Bound::Included(s)
        } else {
            Bound::Unbounded
        };
        let end = match kinds.1 {
            0 => Bound::Excluded(e),
            1 => Bound::Included(e),
            _ => Bound::Unbounded,
        };
        (start, end)
    });
    prop_oneof![3 => ordered, 1 => any]
}

fn any_bounds() -> impl Strategy<Value = (bool, u8)> {
    (prop::bool::weighted(0.8), 0..3u8)
}

fn seek(setup: &Setup) -> impl Strategy<Value = SeekFrom> {
    let len = setup.len as i64;
    prop_oneof![
        3 => offset(setup).prop_map(SeekFrom::Start),
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

fn op(setup: &Setup) -> impl Strategy<Value = Op> {
    let reader = 0..8usize;
    prop_oneof![
        3 => (offset(setup), read_len()).prop_map(|(o, l)| Op::ReadAt(o, l)),
        3 => (offset(setup), read_len()).prop_map(|(o, l)| Op::ReadExactAt(o, l)),
        3 => range(setup).prop_map(Op::Slice),
        3 => range(setup).prop_map(Op::TrySlice),
        2 => range(setup).prop_map(Op::Bytes),
        1 => offset(setup).prop_map(Op::WaitFor),
        1 => Just(Op::WaitComplete),
        1 => Just(Op::Status),
        3 => (reader.clone(), seek(setup)).prop_map(|(r, s)| Op::Seek(r, s)),
        3 => (reader.clone(), read_len()).prop_map(|(r, l)| Op::Read(r, l)),
        3 => (reader.clone(), 0..=1000u16).prop_map(|(r, p)| Op::FillBuf(r, p)),
        1 => reader.prop_map(Op::CloneReader),
    ]
}

fn case() -> impl Strategy<Value = (Setup, Vec<Op>)> {
    setup().prop_flat_map(|setup| {
        let ops = prop::collection::vec(op(&setup), 1..40);
        (Just(setup), ops)
    })
}

/// 64 cases unless `PROPTEST_CASES` says otherwise; no regression files written into the tree.
fn config() -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = if cfg!(miri) { 6 } else { 64 };
    }
    config.failure_persistence = None;
    if cfg!(miri) {
        // Generating a case costs miri far more than running it, ChaCha's rounds most of all.
        config.rng_algorithm = proptest::test_runner::RngAlgorithm::XorShift;
    }
    config
}

proptest! {
    #![proptest_config(config())]

    /// Every operation agrees with the model, whatever the stream's shape.
    #[test]
    fn operations_agree_with_a_vec((setup, ops) in case()) {
        run(&setup, &ops);
    }
}

/// A few fixed cases the strategies reach only rarely: every shape of the end of the stream.
#[test]
fn fixed_cases() {
    let all_ops = |setup: &Setup| {
        let end = setup.len as u64;
        vec![
            Op::ReadAt(end.saturating_sub(1), 10),
            Op::ReadAt(end, 10),
            Op::ReadExactAt(end.saturating_sub(2), 2),
            Op::Slice((Bound::Unbounded, Bound::Unbounded)),
            Op::TrySlice((Bound::Included(end), Bound::Unbounded)),
            Op::Bytes((Bound::Included(0), Bound::Excluded(end))),
            Op::Seek(0, SeekFrom::End(-1)),
            Op::FillBuf(0, 1000),
            Op::Read(0, 5),
            Op::WaitComplete,
            Op::FillBuf(0, 0),
        ]
    };
    // Under miri (which cannot map the spill file, and takes ~250 µs per generated byte): a
    // smaller arena, and only the lengths that fit in it.
    let (lens, memory_limit): (&[usize], usize) = if cfg!(miri) {
        (&[0, 1, 2, 256], 256)
    } else {
        (&[0, 1, 2, 4096, 65_536], 4096)
    };
    for &len in lens {
        for error in [None, Some(ErrorKind::ConnectionReset)] {
            for max_len in [None, Some(len as u64), Some((len as u64).saturating_sub(1))] {
                for shape in [
                    Shape::Reads(vec![1, 4093]),
                    Shape::Chunks(vec![0, 7, 65537]),
                ] {
                    let setup = Setup {
                        len,
                        memory_limit,
                        shape,
                        chunk_size: None,
                        max_len,
                        error,
                    };
                    run(&setup, &all_ops(&setup));
                }
            }
        }
    }
}
