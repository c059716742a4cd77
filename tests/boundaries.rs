//! Reads at and around every boundary the storage has: the end of the memory arena (where the
//! stream spills to a file), the chunks the source delivered, and the end of the stream; with
//! lengths on either side of `memory_limit`, `memory_limit` 0, and tens of MiB.

mod common;

use common::{channel, chunks_of, finishes, pattern, spill_dir, OddReads};
use std::io::{self, BufRead, ErrorKind, Read};
use std::thread;
use streamcache::{Status, StreamCache};

/// A small memory limit, so that streams cross it cheaply.
const LIMIT: usize = 64 << 10;

/// Odd read and chunk sizes: single bytes, primes around a page, just over the default chunk.
const ODD: [usize; 4] = [1, 7, 4093, 65537];

/// The offsets where a source cut `len` bytes into pieces of `sizes` (cycled; zeros skipped).
fn cuts(len: usize, sizes: &[usize]) -> Vec<u64> {
    let mut out = Vec::new();
    let mut pos = 0;
    for &size in sizes.iter().filter(|&&s| s > 0).cycle() {
        pos += size;
        if pos >= len || out.len() > 64 {
            break;
        }
        out.push(pos as u64);
    }
    out
}

/// Checks `cache` (whose source delivers `data`, then ends) against `data`: the whole stream,
/// and every read of 1..=5 bytes at offsets `b - 2 ..= b + 2` for each boundary `b`, through
/// `read_at`, `read_exact_at`, `slice`, `bytes` and `try_slice`; and ranges of several widths
/// that straddle each boundary.
fn check_around(cache: &StreamCache, data: &[u8], boundaries: &[u64]) {
    let len = data.len() as u64;
    assert_eq!(cache.wait_complete().unwrap(), len);
    assert_eq!(cache.slice(..).unwrap(), data, "whole stream");
    let mut points: Vec<u64> = boundaries.to_vec();
    points.extend([0, len]);
    for &b in &points {
        for offset in b.saturating_sub(2)..=b + 2 {
            for n in 1..=5u64 {
                check_read(cache, data, offset, n);
            }
        }
        for width in [1u64, 2, 100, 4096, LIMIT as u64] {
            let start = b.saturating_sub(width);
            let end = (b + width).min(len);
            if start <= end {
                let expected = &data[start as usize..end as usize];
                assert_eq!(cache.slice(start..end).unwrap(), expected, "{start}..{end}");
                assert_eq!(&cache.bytes(start..end).unwrap()[..], expected);
            }
        }
    }
    // A reader from just before each boundary sees the rest of the stream.
    for &b in boundaries.iter().take(8) {
        let from = b.saturating_sub(3).min(len);
        let mut rest = Vec::new();
        cache.reader_at(from).read_to_end(&mut rest).unwrap();
        assert_eq!(rest, &data[from as usize..], "reader from {from}");
    }
}

/// One read of `n` bytes at `offset`, by every method, against `data` (a completed stream).
fn check_read(cache: &StreamCache, data: &[u8], offset: u64, n: u64) {
    let len = data.len() as u64;
    let end = offset + n;
    let mut buf = vec![0u8; n as usize];
    let got = cache.read_at(offset, &mut buf).unwrap();
    let want = len.saturating_sub(offset).min(n) as usize;
    assert_eq!(got, want, "read_at({offset}, {n}) of {len}");
    if want > 0 {
        let o = offset as usize;
        assert_eq!(&buf[..want], &data[o..o + want], "read_at({offset}, {n})");
    }
    let mut exact = vec![0u8; n as usize];
    let result = cache.read_exact_at(offset, &mut exact);
    if end <= len {
        let expected = &data[offset as usize..end as usize];
        result.unwrap();
        assert_eq!(&exact[..], expected, "read_exact_at({offset}, {n})");
        assert_eq!(cache.slice(offset..end).unwrap(), expected);
        assert_eq!(cache.slice(offset..=end - 1).unwrap(), expected);
        assert_eq!(&cache.bytes(offset..end).unwrap()[..], expected);
        assert_eq!(cache.try_slice(offset..end), Some(expected));
    } else {
        assert_eq!(result.unwrap_err().kind(), ErrorKind::UnexpectedEof);
        let err = cache.slice(offset..end).unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::UnexpectedEof,
            "slice({offset}..{end})"
        );
        assert_eq!(cache.try_slice(offset..end), None);
    }
}

/// Streams of `LIMIT - 1`, `LIMIT` and `LIMIT + 1` bytes from `Read` sources with odd read
/// sizes: every read around the spill point and the source's cuts gives the right bytes.
#[test]
fn read_sources_around_the_memory_limit() {
    let dir = spill_dir();
    for len in [LIMIT - 1, LIMIT, LIMIT + 1, 3 * LIMIT + 5] {
        let data = pattern(len);
        for sizes in [&ODD[..], &[LIMIT], &[LIMIT - 1], &[usize::MAX], &[3, LIMIT]] {
            let cache = StreamCache::builder()
                .memory_limit(LIMIT)
                .temp_dir(dir.path())
                .spawn(OddReads::new(data.clone(), sizes))
                .unwrap();
            let mut boundaries = cuts(len, sizes);
            boundaries.push(LIMIT as u64);
            check_around(&cache, &data, &boundaries);
        }
    }
}

/// The same with chunk sources, including empty chunks and chunks that straddle the limit.
#[test]
fn chunk_sources_around_the_memory_limit() {
    let dir = spill_dir();
    for len in [LIMIT - 1, LIMIT, LIMIT + 1, 2 * LIMIT + 3] {
        let data = pattern(len);
        let shapes: [&[usize]; 5] = [
            &ODD,
            &[0, 4093, 0, 0, 1],
            &[LIMIT - 3, 7],
            &[LIMIT, 1],
            &[len],
        ];
        for sizes in shapes {
            let cache = StreamCache::builder()
                .memory_limit(LIMIT)
                .temp_dir(dir.path())
                .spawn_chunks(chunks_of(&data, sizes))
                .unwrap();
            let mut boundaries = cuts(len, sizes);
            boundaries.push(LIMIT as u64);
            check_around(&cache, &data, &boundaries);
        }
    }
}

/// `memory_limit(0)`: every byte goes to the file, from the first; short streams included.
#[test]
fn memory_limit_zero() {
    let dir = spill_dir();
    for len in [1, 2, 5, 4095, 4096, 4097, 100_000] {
        let data = pattern(len);
        for sizes in [&ODD[..], &[1], &[usize::MAX]] {
            let cache = StreamCache::builder()
                .memory_limit(0)
                .temp_dir(dir.path())
                .spawn(OddReads::new(data.clone(), sizes))
                .unwrap();
            check_around(&cache, &data, &cuts(len, sizes));
        }
        let cache = StreamCache::builder()
            .memory_limit(0)
            .temp_dir(dir.path())
            .spawn_chunks(chunks_of(&data, &[0, 3, 4093]))
            .unwrap();
        check_around(&cache, &data, &cuts(len, &[3, 4093]));
    }
}

/// A memory limit of a single byte: the arena holds one byte, then the stream spills.
#[test]
fn memory_limit_one() {
    let dir = spill_dir();
    for len in [1, 2, 3, 10_000] {
        let data = pattern(len);
        let cache = StreamCache::builder()
            .memory_limit(1)
            .temp_dir(dir.path())
            .spawn(OddReads::new(data.clone(), &ODD))
            .unwrap();
        check_around(&cache, &data, &[1]);
    }
}

/// 40 MiB through a 1 MiB memory limit, read in odd sizes: every byte lands in place.
#[test]
fn tens_of_mib_through_a_small_memory_limit() {
    const MIB: usize = 1 << 20;
    let dir = spill_dir();
    let data = pattern(40 * MIB);
    let sizes = [1, 7, 4093, 65537, MIB + 3];
    let cache = StreamCache::builder()
        .memory_limit(MIB)
        .temp_dir(dir.path())
        .spawn(OddReads::new(data.clone(), &sizes))
        .unwrap();

    // A reader consumes the stream through fill_buf while it arrives.
    let mut reader = cache.reader();
    let expected = data.clone();
    let consumer = thread::spawn(move || {
        let mut pos = 0usize;
        loop {
            let buf = reader.fill_buf()?;
            if buf.is_empty() {
                return Ok::<_, io::Error>(pos);
            }
            assert_eq!(buf, &expected[pos..pos + buf.len()], "at {pos}");
            let n = buf.len();
            pos += n;
            reader.consume(n);
        }
    });

    let mut boundaries = cuts(data.len(), &sizes);
    boundaries.extend([MIB as u64, 16 * MIB as u64, 40 * MIB as u64 - 1]);
    check_around(&cache, &data, &boundaries);
    assert_eq!(consumer.join().unwrap().unwrap(), data.len());
    assert_eq!(
        cache.status(),
        Status::Complete {
            len: data.len() as u64
        }
    );
}

/// A chunked 24 MiB stream through a 1 MiB limit, chunks of odd sizes and a few large ones.
#[test]
fn tens_of_mib_chunked_through_a_small_memory_limit() {
    const MIB: usize = 1 << 20;
    let dir = spill_dir();
    let data = pattern(24 * MIB);
    let sizes = [65537, 1, 0, 4093, 3 * MIB + 1, 7];
    let cache = StreamCache::builder()
        .memory_limit(MIB)
        .temp_dir(dir.path())
        .spawn_chunks(chunks_of(&data, &sizes))
        .unwrap();
    let mut boundaries = cuts(data.len(), &sizes);
    boundaries.push(MIB as u64);
    check_around(&cache, &data, &boundaries);
}

/// Slices and `Bytes` taken from memory before the stream spilled keep their content after it
/// moved to the file (invariant 1: bytes below the mark never change), and ranges that straddle
/// the spill point read right.
#[test]
fn slices_taken_before_the_spill_stay_valid() {
    let dir = spill_dir();
    let data = pattern(LIMIT * 4 + 17);
    let (tx, rx) = channel();
    let cache = StreamCache::builder()
        .memory_limit(LIMIT)
        .temp_dir(dir.path())
        .spawn_chunks(rx)
        .unwrap();
    for chunk in chunks_of(&data[..LIMIT], &ODD) {
        tx.send(chunk).unwrap();
    }
    assert!(cache.wait_for(LIMIT as u64).unwrap() >= LIMIT as u64);
    let early = cache.slice(..LIMIT as u64).unwrap();
    let early_bytes = cache.bytes(100..LIMIT as u64).unwrap();
    let mut reader = cache.reader_at(10);
    let early_buf = reader.fill_buf().unwrap();
    assert_eq!(early, &data[..LIMIT]);

    // Now the rest, which must spill to the file.
    for chunk in chunks_of(&data[LIMIT..], &[3, 4093, 65537]) {
        tx.send(chunk).unwrap();
    }
    drop(tx);
    let c = cache.clone();
    assert_eq!(
        finishes(move || c.wait_complete()).unwrap(),
        data.len() as u64
    );
    assert_eq!(early, &data[..LIMIT], "a slice changed after the spill");
    assert_eq!(&early_bytes[..], &data[100..LIMIT]);
    assert_eq!(early_buf, &data[10..10 + early_buf.len()]);
    check_around(&cache, &data, &[LIMIT as u64]);
}

/// A reader that follows the stream as it arrives, chunk by chunk across the spill point,
/// reads every byte right (what it saw in memory is what the file holds).
#[test]
fn follow_the_stream_across_the_spill() {
    let dir = spill_dir();
    let data = pattern(LIMIT * 3 + 1);
    let (tx, rx) = channel();
    let cache = StreamCache::builder()
        .memory_limit(LIMIT)
        .temp_dir(dir.path())
        .spawn_chunks(rx)
        .unwrap();
    let mut reader = cache.reader();
    for chunk in chunks_of(&data, &[4093, 1, LIMIT - 4095, 7]) {
        let chunk = chunk.unwrap();
        let n = chunk.len();
        tx.send(Ok(chunk)).unwrap();
        // Read exactly what was sent, the moment it is there.
        let start = reader.position() as usize;
        let mut got = vec![0u8; n];
        reader.read_exact(&mut got).unwrap();
        assert_eq!(got, &data[start..start + n], "at {start}");
    }
    drop(tx);
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    assert_eq!(cache.slice(..).unwrap(), &data[..]);
}

/// A stream that fits in `memory_limit` (up to exactly the limit) never needs the spill file:
/// it completes even when `temp_dir` cannot be used.
#[test]
fn a_stream_within_the_memory_limit_needs_no_spill_file() {
    let dir = spill_dir();
    let missing = dir.path().join("does-not-exist");
    for len in [0, 1, LIMIT - 1, LIMIT] {
        let data = pattern(len);
        let cache = StreamCache::builder()
            .memory_limit(LIMIT)
            .temp_dir(&missing)
            .spawn(OddReads::new(data.clone(), &ODD))
            .unwrap();
        let outcome = cache.wait_complete();
        assert_eq!(
            outcome.as_ref().map_err(|e| e.to_string()),
            Ok(&(len as u64)),
            "a {len}-byte stream with memory_limit {LIMIT}"
        );
        assert_eq!(cache.slice(..).unwrap(), &data[..]);
    }
}

/// An empty stream with `memory_limit(0)` has nothing to spill: it completes without the file.
#[test]
fn an_empty_stream_needs_no_spill_file() {
    let dir = spill_dir();
    let missing = dir.path().join("does-not-exist");
    let cache = StreamCache::builder()
        .memory_limit(0)
        .temp_dir(&missing)
        .spawn(io::empty())
        .unwrap();
    assert_eq!(
        cache.wait_complete().map_err(|e| e.to_string()),
        Ok(0),
        "an empty stream with memory_limit 0"
    );
}

/// One byte past the limit with an unusable `temp_dir`: the stream fails at the limit with an
/// error naming the directory as given, and everything in memory stays readable.
#[test]
fn spill_failure_keeps_the_bytes_in_memory() {
    let dir = spill_dir();
    let missing = dir.path().join("does-not-exist");
    let data = pattern(LIMIT + 1);
    let cache = StreamCache::builder()
        .memory_limit(LIMIT)
        .temp_dir(&missing)
        .spawn(OddReads::new(data.clone(), &ODD))
        .unwrap();
    let err = cache.wait_complete().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    let shown = missing.display().to_string();
    assert!(
        err.to_string().contains(&shown),
        "{err} does not name {shown}"
    );
    match cache.status() {
        Status::Failed { available, error } => {
            assert_eq!(available, LIMIT as u64);
            assert_eq!(error, ErrorKind::NotFound);
        }
        other => panic!("expected Failed, got {other:?}"),
    }
    assert_eq!(cache.slice(..LIMIT as u64).unwrap(), &data[..LIMIT]);
    let mut buf = [0u8; 4];
    assert_eq!(cache.read_at(LIMIT as u64 - 2, &mut buf).unwrap(), 2);
    assert_eq!(&buf[..2], &data[LIMIT - 2..LIMIT]);
    assert_eq!(
        cache.read_at(LIMIT as u64, &mut buf).unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

/// `max_len` equal to the memory limit, and either side of it: the cap and the spill point
/// meet without losing or misplacing a byte.
#[test]
fn max_len_around_the_memory_limit() {
    let dir = spill_dir();
    for max in [LIMIT - 1, LIMIT, LIMIT + 1] {
        for len in [max, max + 1] {
            let data = pattern(len);
            let cache = StreamCache::builder()
                .memory_limit(LIMIT)
                .max_len(max as u64)
                .temp_dir(dir.path())
                .spawn(OddReads::new(data.clone(), &ODD))
                .unwrap();
            let outcome = cache.wait_complete().map_err(|e| e.kind());
            if len == max {
                assert_eq!(outcome, Ok(max as u64));
            } else {
                assert_eq!(outcome, Err(ErrorKind::StorageFull), "max {max} len {len}");
            }
            assert_eq!(cache.available(), max as u64);
            assert_eq!(cache.slice(..max as u64).unwrap(), &data[..max]);
        }
    }
}
