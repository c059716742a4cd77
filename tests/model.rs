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

use common::model::{
    check_bytes, check_read, check_read_exact_at, check_seek, check_slice, check_status,
    check_try_slice, check_wait, check_wait_complete, check_whole_stream, config, fill_buf_consume,
    is_terminal, read_len, reader_read, shape, Range, Shape, StreamSetup as Setup,
};
use common::spill_dir;
use proptest::prelude::*;
use std::io::{ErrorKind, SeekFrom};
use std::ops::Bound;
use streamcache::{Reader, StreamCache};

/// Error kinds a source may fail with; none of them is one the API produces by itself.
const SOURCE_ERRORS: [ErrorKind; 4] = [
    ErrorKind::ConnectionReset,
    ErrorKind::TimedOut,
    ErrorKind::BrokenPipe,
    ErrorKind::PermissionDenied,
];

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

/// Starts the cache that `setup` describes.
fn spawn(setup: &Setup, dir: &std::path::Path) -> StreamCache {
    let builder = setup.builder(dir);
    match &setup.shape {
        Shape::Reads(sizes) => builder.spawn(setup.reads(sizes)).unwrap(),
        Shape::Chunks(sizes) => builder.spawn_chunks(setup.chunk_items(sizes)).unwrap(),
    }
}

/// Runs `ops` against a cache built from `setup` and checks each against the model.
fn run(setup: &Setup, ops: &[Op]) {
    let dir = spill_dir();
    let m = setup.model();
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
                check_read(&m, &what, terminal, offset, len, result, &buf);
            }
            Op::ReadExactAt(offset, len) => {
                let mut buf = vec![0u8; len];
                let result = cache.read_exact_at(offset, &mut buf);
                check_read_exact_at(&m, &what, offset, len, result, &buf);
            }
            Op::Slice(range) => {
                check_slice(&m, &what, range, cache.slice(range));
            }
            Op::Bytes(range) => {
                check_bytes(&m, &what, terminal, &cache, range);
            }
            Op::TrySlice(range) => {
                check_try_slice(&m, &what, terminal, range, cache.try_slice(range));
            }
            Op::WaitFor(offset) => check_wait(&m, &what, terminal, offset, cache.wait_for(offset)),
            Op::WaitComplete => check_wait_complete(&m, &what, &cache),
            Op::Status => check_status(&m, &what, cache.status()),
            Op::Seek(r, to) => {
                let r = r % readers.len();
                check_seek(&m, &what, &mut readers[r], &mut positions[r], to);
            }
            Op::Read(r, len) => {
                let r = r % readers.len();
                reader_read(&m, &what, terminal, &mut readers[r], &mut positions[r], len);
            }
            Op::FillBuf(r, per_mille) => {
                let r = r % readers.len();
                let (reader, pos) = (&mut readers[r], &mut positions[r]);
                fill_buf_consume(&m, &what, terminal, &cache, reader, pos, per_mille);
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

    check_whole_stream(&m, &cache);
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
    let chunk_size = prop::option::of(prop_oneof![1..16usize, 1..100_000usize]);
    let max_len = prop::option::weighted(0.2, prop_oneof![0..300_000u64, 0..5_000u64]);
    let error = prop::option::weighted(0.3, prop::sample::select(SOURCE_ERRORS.to_vec()));
    (len, memory_limit, shape(), chunk_size, max_len, error).prop_map(
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

fn op(setup: &Setup) -> impl Strategy<Value = Op> {
    let at = setup.offsets();
    let reader = 0..8usize;
    prop_oneof![
        3 => (at.offset(), read_len()).prop_map(|(o, l)| Op::ReadAt(o, l)),
        3 => (at.offset(), read_len()).prop_map(|(o, l)| Op::ReadExactAt(o, l)),
        3 => at.range(0..5_000u64).prop_map(Op::Slice),
        3 => at.range(0..5_000u64).prop_map(Op::TrySlice),
        2 => at.range(0..5_000u64).prop_map(Op::Bytes),
        1 => at.offset().prop_map(Op::WaitFor),
        1 => Just(Op::WaitComplete),
        1 => Just(Op::Status),
        3 => (reader.clone(), at.seek()).prop_map(|(r, s)| Op::Seek(r, s)),
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

proptest! {
    // 64 cases (6 under miri) unless `PROPTEST_CASES` says otherwise.
    #![proptest_config(config(if cfg!(miri) { 6 } else { 64 }))]

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
