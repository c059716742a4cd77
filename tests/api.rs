//! Every public method of `StreamCache`, `Reader` and `Builder`, and the edge cases that
//! DESIGN.md decides, through the public API only.

mod common;

use common::source::PatternSource;
use common::{channel, chunks_of, finishes, pattern, spill_dir, spilling, HANG_GUARD};
use std::fmt::Debug;
use std::io::{self, BufRead, ErrorKind, Read, Seek, SeekFrom};
use std::ops::Bound;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;
use streamcache::{Builder, Reader, Status, StreamCache};

/// The kind of an error result, for terse assertions.
fn kind<T: Debug>(result: io::Result<T>) -> ErrorKind {
    result.expect_err("expected an error").kind()
}

/// The memory limits of a test run in memory and spilled: the whole stream in memory, every
/// byte in the spill file (0), and spilled past `spill_at`. Miri cannot map files: only the
/// in-memory arena there (the spilled cases run natively).
fn memory_limits(spill_at: usize) -> Vec<usize> {
    if cfg!(miri) {
        vec![8 << 20]
    } else {
        vec![8 << 20, 0, spill_at]
    }
}

/// A completed cache over `data` (default settings), waited to the end.
fn complete(data: &[u8]) -> StreamCache {
    let cache = StreamCache::new(io::Cursor::new(data.to_vec())).unwrap();
    assert_eq!(cache.wait_complete().unwrap(), data.len() as u64);
    cache
}

/// A cache that fails with `ConnectionReset("boom")` after `data`.
fn failing(data: &[u8]) -> StreamCache {
    let chunks = vec![
        Ok(data.to_vec()),
        Err(io::Error::new(ErrorKind::ConnectionReset, "boom")),
        Ok(b"never".to_vec()),
    ];
    let cache = StreamCache::builder().spawn_chunks(chunks).unwrap();
    assert_eq!(kind(cache.wait_complete()), ErrorKind::ConnectionReset);
    cache
}

// ---------------------------------------------------------------------------------------------
// Static properties
// ---------------------------------------------------------------------------------------------

fn assert_handle<T: Clone + Send + Sync + Debug + 'static>() {}
fn assert_cursor<T: Read + BufRead + Seek>() {}
fn assert_status<T: Debug + Clone + Copy + PartialEq + Eq + Send + Sync>() {}

/// The handles can be shared and sent between threads; `Status` is a plain value.
#[test]
fn public_types_have_the_promised_traits() {
    assert_handle::<StreamCache>();
    assert_handle::<Reader>();
    assert_cursor::<Reader>();
    assert_status::<Status>();
    let _: fn() -> Builder = StreamCache::builder;
}

/// Every public type has a useful `Debug`.
#[test]
fn debug_impls_exist() {
    let cache = complete(b"abc");
    let reader = cache.reader_at(1);
    assert!(format!("{cache:?}").contains("StreamCache"));
    assert!(format!("{reader:?}").contains("Reader"));
    assert!(format!("{:?}", StreamCache::builder()).contains("Builder"));
    assert_eq!(
        format!("{:?}", cache.status()),
        format!("{:?}", Status::Complete { len: 3 })
    );
}

// ---------------------------------------------------------------------------------------------
// Construction and tiny sources
// ---------------------------------------------------------------------------------------------

/// An empty source completes at 0 and every read of it is empty or `UnexpectedEof`.
#[test]
fn empty_source() {
    let cache = StreamCache::new(io::empty()).unwrap();
    assert_eq!(cache.wait_complete().unwrap(), 0);
    assert_eq!(cache.len(), Some(0));
    assert!(cache.is_complete());
    assert_eq!(cache.available(), 0);
    assert_eq!(cache.status(), Status::Complete { len: 0 });
    assert_eq!(cache.slice(..).unwrap(), b"");
    assert_eq!(cache.slice(0..0).unwrap(), b"");
    assert_eq!(cache.try_slice(..), Some(&b""[..]));
    assert!(cache.bytes(..).unwrap().is_empty());
    assert_eq!(cache.read_at(0, &mut [0; 8]).unwrap(), 0);
    cache.read_exact_at(0, &mut []).unwrap();
    assert_eq!(
        kind(cache.read_exact_at(0, &mut [0; 1])),
        ErrorKind::UnexpectedEof
    );
    assert_eq!(kind(cache.slice(0..1)), ErrorKind::UnexpectedEof);
    assert_eq!(kind(cache.slice(1..)), ErrorKind::UnexpectedEof);
    assert_eq!(cache.wait_for(10).unwrap(), 0);

    let mut reader = cache.reader();
    assert_eq!(reader.fill_buf().unwrap(), b"");
    let mut all = Vec::new();
    assert_eq!(reader.read_to_end(&mut all).unwrap(), 0);
    assert_eq!(reader.seek(SeekFrom::End(0)).unwrap(), 0);
}

/// The same for an empty chunk iterator and an iterator of empty chunks.
#[test]
fn empty_chunk_sources() {
    let none: Vec<io::Result<Vec<u8>>> = Vec::new();
    let cache = StreamCache::builder().spawn_chunks(none).unwrap();
    assert_eq!(cache.wait_complete().unwrap(), 0);
    let empties = vec![Ok(Vec::new()), Ok(Vec::new())];
    let cache = StreamCache::builder().spawn_chunks(empties).unwrap();
    assert_eq!(cache.wait_complete().unwrap(), 0);
    assert_eq!(cache.slice(..).unwrap(), b"");
}

/// A one-byte source: every way of reading it finds that byte, and nothing after it.
#[test]
fn one_byte_source() {
    let cache = StreamCache::new(&b"z"[..]).unwrap();
    assert_eq!(cache.slice(..).unwrap(), b"z");
    assert_eq!(cache.len(), Some(1));
    assert_eq!(cache.slice(0..1).unwrap(), b"z");
    assert_eq!(cache.slice(1..).unwrap(), b"");
    assert_eq!(kind(cache.slice(1..2)), ErrorKind::UnexpectedEof);
    let mut buf = [0u8; 10];
    assert_eq!(cache.read_at(0, &mut buf).unwrap(), 1);
    assert_eq!(buf[0], b'z');
    assert_eq!(cache.read_at(1, &mut buf).unwrap(), 0);
    assert_eq!(&cache.bytes(0..=0).unwrap()[..], b"z");

    let mut reader = cache.reader();
    assert_eq!(reader.seek(SeekFrom::End(-1)).unwrap(), 0);
    let mut all = Vec::new();
    reader.read_to_end(&mut all).unwrap();
    assert_eq!(all, b"z");
    assert_eq!(reader.position(), 1);
}

/// `StreamCache::new`, `Builder::spawn` and `Builder::spawn_chunks` store the same bytes.
#[test]
fn all_constructors_store_the_same_bytes() {
    // Shorter under miri, which takes ~250 µs per generated byte.
    let data = pattern(if cfg!(miri) { 2_000 } else { 300_000 });
    let by_new = StreamCache::new(io::Cursor::new(data.clone())).unwrap();
    let by_spawn = StreamCache::builder()
        .spawn(PatternSource::new(data.len() as u64).sizes(&[1, 7, 4093, 65537]))
        .unwrap();
    let by_chunks = StreamCache::builder()
        .spawn_chunks(chunks_of(&data, &[3, 0, 70_000, 1, 0, 0, 12_345]))
        .unwrap();
    for cache in [by_new, by_spawn, by_chunks] {
        assert_eq!(cache.slice(..).unwrap(), &data[..]);
        assert_eq!(cache.len(), Some(data.len() as u64));
    }
}

/// Empty chunks are skipped, not taken for the end of the stream.
#[test]
fn spawn_chunks_skips_empty_chunks() {
    let chunks: Vec<io::Result<&[u8]>> =
        vec![Ok(b""), Ok(b"ab"), Ok(b""), Ok(b""), Ok(b"c"), Ok(b"")];
    let cache = StreamCache::builder().spawn_chunks(chunks).unwrap();
    assert_eq!(cache.slice(..).unwrap(), b"abc");
    assert_eq!(cache.len(), Some(3));
}

/// The iterator's first `None` is the end of the stream: it is not polled again.
#[test]
fn spawn_chunks_iterator_end_is_the_end() {
    // Yields "ab", then None, then (wrongly, if asked) "zz" forever.
    let mut calls = 0;
    let chunks = std::iter::from_fn(move || {
        calls += 1;
        match calls {
            1 => Some(Ok(b"ab".to_vec())),
            2 => None,
            _ => Some(Ok(b"zz".to_vec())),
        }
    });
    let cache = StreamCache::builder().spawn_chunks(chunks).unwrap();
    assert_eq!(cache.wait_complete().unwrap(), 2);
    assert_eq!(cache.slice(..).unwrap(), b"ab");
}

/// An `Err` chunk fails the stream at exactly the offset it came at, with its kind and
/// message; the bytes before it stay readable; later chunks are not taken.
#[test]
fn spawn_chunks_error_fails_at_its_offset() {
    let chunks = vec![
        Ok(b"abc".to_vec()),
        Ok(b"de".to_vec()),
        Err(io::Error::new(ErrorKind::ConnectionReset, "boom")),
        Ok(b"never".to_vec()),
    ];
    let cache = StreamCache::builder().spawn_chunks(chunks).unwrap();
    let err = cache.wait_complete().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset);
    assert!(err.to_string().contains("boom"), "message lost: {err}");
    assert_eq!(
        cache.status(),
        Status::Failed {
            available: 5,
            error: ErrorKind::ConnectionReset
        }
    );
    assert_eq!(cache.available(), 5);
    assert_eq!(cache.len(), None);
    assert!(!cache.is_complete());
}

/// A plain source's length is known only once it has ended: `known_len` is `None` while it
/// fills (a `SeekFrom::End` must wait) and after a failure, and the length once complete.
#[test]
fn known_len_of_a_plain_source_comes_with_its_end() {
    let (tx, rx) = channel();
    let cache = StreamCache::builder()
        .expected_len(6) // a hint, not a known length
        .spawn_chunks(rx)
        .unwrap();
    tx.send(Ok(b"abc".to_vec())).unwrap();
    cache.wait_for(3).unwrap();
    assert_eq!(cache.known_len(), None, "while filling");
    tx.send(Ok(b"def".to_vec())).unwrap();
    drop(tx);
    assert_eq!(cache.wait_complete().unwrap(), 6);
    assert_eq!(cache.known_len(), Some(6));
    assert_eq!(cache.known_len(), cache.len());

    let failed = StreamCache::builder()
        .spawn_chunks(vec![
            Ok(b"abc".to_vec()),
            Err(io::Error::new(ErrorKind::ConnectionReset, "gone")),
        ])
        .unwrap();
    assert!(failed.wait_complete().is_err());
    assert_eq!(
        failed.known_len(),
        None,
        "a failed plain source never knew its length"
    );
}

/// On a failed stream, everything before the failure reads normally and everything that needs
/// a byte at or past it gets the source's error (DESIGN: edge cases, invariant 8).
#[test]
fn failed_stream_reads() {
    let cache = failing(b"abcde");
    // Below the failure offset.
    assert_eq!(cache.slice(..5).unwrap(), b"abcde");
    assert_eq!(cache.slice(1..=4).unwrap(), b"bcde");
    assert_eq!(cache.try_slice(0..5), Some(&b"abcde"[..]));
    assert_eq!(&cache.bytes(3..5).unwrap()[..], b"de");
    let mut buf = [0u8; 10];
    assert_eq!(cache.read_at(4, &mut buf).unwrap(), 1);
    assert_eq!(buf[0], b'e');
    let mut two = [0u8; 2];
    cache.read_exact_at(3, &mut two).unwrap();
    assert_eq!(&two, b"de");
    // wait_for: Ok(available) up to the failure offset, the error above it.
    assert_eq!(cache.wait_for(0).unwrap(), 5);
    assert_eq!(cache.wait_for(5).unwrap(), 5);
    assert_eq!(kind(cache.wait_for(6)), ErrorKind::ConnectionReset);
    assert_eq!(
        kind(cache.wait_for_timeout(6, HANG_GUARD)),
        ErrorKind::ConnectionReset
    );
    // At or past the failure offset.
    assert_eq!(kind(cache.read_at(5, &mut buf)), ErrorKind::ConnectionReset);
    assert_eq!(
        kind(cache.read_at(50, &mut buf)),
        ErrorKind::ConnectionReset
    );
    assert_eq!(
        kind(cache.read_exact_at(3, &mut [0; 3])),
        ErrorKind::ConnectionReset
    );
    assert_eq!(kind(cache.slice(..)), ErrorKind::ConnectionReset);
    assert_eq!(kind(cache.slice(4..6)), ErrorKind::ConnectionReset);
    assert_eq!(kind(cache.bytes(2..)), ErrorKind::ConnectionReset);
    assert_eq!(cache.try_slice(..), None);
    assert_eq!(cache.try_slice(0..6), None);
    // Through a reader: the bytes, then the error; SeekFrom::End needs the end.
    let mut reader = cache.reader();
    let mut got = [0u8; 5];
    reader.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"abcde");
    assert_eq!(kind(reader.read(&mut buf)), ErrorKind::ConnectionReset);
    assert_eq!(kind(reader.fill_buf()), ErrorKind::ConnectionReset);
    assert_eq!(
        kind(reader.seek(SeekFrom::End(0))),
        ErrorKind::ConnectionReset
    );
    let err = cache.reader().read_to_end(&mut Vec::new()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset);
    assert!(err.to_string().contains("boom"), "message lost: {err}");
}

// ---------------------------------------------------------------------------------------------
// read_at, read_exact_at
// ---------------------------------------------------------------------------------------------

/// On a complete stream, `read_at` copies as much as fits and is `Ok(0)` at or past the end.
#[test]
fn read_at_on_a_complete_stream() {
    let data = pattern(1000);
    let cache = complete(&data);
    let mut buf = [0u8; 64];
    assert_eq!(cache.read_at(0, &mut buf).unwrap(), 64);
    assert_eq!(&buf[..], &data[..64]);
    assert_eq!(cache.read_at(990, &mut buf).unwrap(), 10);
    assert_eq!(&buf[..10], &data[990..]);
    assert_eq!(cache.read_at(999, &mut buf).unwrap(), 1);
    assert_eq!(buf[0], data[999]);
    assert_eq!(cache.read_at(1000, &mut buf).unwrap(), 0);
    assert_eq!(cache.read_at(1_000_000, &mut buf).unwrap(), 0);
    assert_eq!(cache.read_at(u64::MAX - 64, &mut buf).unwrap(), 0);
    // An empty buffer reads nothing, anywhere.
    for offset in [0, 500, 1000, 5000, u64::MAX] {
        assert_eq!(cache.read_at(offset, &mut []).unwrap(), 0);
    }
}

/// `offset + len` overflowing `u64` is `InvalidInput`, never a panic or `Ok(0)`.
#[test]
fn overflowing_offsets_are_invalid_input() {
    let cache = complete(b"abc");
    assert_eq!(
        kind(cache.read_at(u64::MAX, &mut [0; 10])),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        kind(cache.read_at(u64::MAX - 5, &mut [0; 10])),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        kind(cache.read_exact_at(u64::MAX, &mut [0; 1])),
        ErrorKind::InvalidInput
    );
    assert_eq!(kind(cache.slice(..=u64::MAX)), ErrorKind::InvalidInput);
    assert_eq!(kind(cache.bytes(5..=u64::MAX)), ErrorKind::InvalidInput);
    assert_eq!(
        kind(cache.slice((Bound::Excluded(u64::MAX), Bound::Unbounded))),
        ErrorKind::InvalidInput
    );
    assert_eq!(cache.try_slice(..=u64::MAX), None);
}

/// `InvalidInput` comes at once, even while the stream is blocked and nothing has arrived.
#[test]
fn bad_arguments_never_wait() {
    let (_tx, rx) = channel();
    let cache = StreamCache::builder().spawn_chunks(rx).unwrap();
    let c = cache.clone();
    finishes(move || {
        assert_eq!(
            kind(c.read_at(u64::MAX, &mut [0; 10])),
            ErrorKind::InvalidInput
        );
        let (hi, lo) = (10u64, 5u64);
        assert_eq!(kind(c.slice(hi..lo)), ErrorKind::InvalidInput);
        assert_eq!(kind(c.bytes(hi..=lo)), ErrorKind::InvalidInput);
        assert_eq!(c.try_slice(hi..lo), None);
        let mut reader = c.reader();
        assert_eq!(
            kind(reader.seek(SeekFrom::Current(-1))),
            ErrorKind::InvalidInput
        );
    });
}

/// `read_at` returns what is there (a partial read) without waiting for the whole buffer, and
/// waits when nothing is there yet.
#[test]
fn read_at_partial_and_waiting() {
    let (tx, rx) = channel();
    let cache = StreamCache::builder().spawn_chunks(rx).unwrap();
    tx.send(Ok(b"abc".to_vec())).unwrap();
    assert_eq!(cache.wait_for(3).unwrap(), 3);

    // Partial: three bytes available, ten asked.
    let c = cache.clone();
    let (n, buf) = finishes(move || {
        let mut buf = [0u8; 10];
        let n = c.read_at(1, &mut buf).unwrap();
        (n, buf)
    });
    assert_eq!(n, 2, "all available bytes are returned");
    assert_eq!(&buf[..2], b"bc");

    // Nothing at offset 5 yet: the read waits for it, then returns the right bytes.
    let c = cache.clone();
    let waiting = thread::spawn(move || {
        let mut buf = [0u8; 4];
        let n = c.read_at(5, &mut buf).unwrap();
        buf[..n].to_vec()
    });
    tx.send(Ok(b"de".to_vec())).unwrap();
    tx.send(Ok(b"fgh".to_vec())).unwrap();
    drop(tx);
    let got = waiting.join().unwrap();
    assert!(!got.is_empty() && b"fgh".starts_with(&got), "got {got:?}");
    assert_eq!(cache.wait_complete().unwrap(), 8);
}

/// `read_exact_at` fills the buffer or fails with `UnexpectedEof` past the end.
#[test]
fn read_exact_at_bounds() {
    let data = pattern(100);
    let cache = complete(&data);
    let mut buf = [0u8; 10];
    cache.read_exact_at(90, &mut buf).unwrap();
    assert_eq!(&buf[..], &data[90..]);
    cache.read_exact_at(0, &mut buf).unwrap();
    assert_eq!(&buf[..], &data[..10]);
    cache.read_exact_at(100, &mut []).unwrap();
    assert_eq!(
        kind(cache.read_exact_at(91, &mut buf)),
        ErrorKind::UnexpectedEof
    );
    assert_eq!(
        kind(cache.read_exact_at(100, &mut buf)),
        ErrorKind::UnexpectedEof
    );
    assert_eq!(
        kind(cache.read_exact_at(5000, &mut buf)),
        ErrorKind::UnexpectedEof
    );
}

/// `read_exact_at` waits for the whole buffer, across chunks that arrive later.
#[test]
fn read_exact_at_waits_for_all_of_it() {
    let (tx, rx) = channel();
    let cache = StreamCache::builder().spawn_chunks(rx).unwrap();
    let c = cache.clone();
    let waiting = thread::spawn(move || {
        let mut buf = [0u8; 6];
        c.read_exact_at(1, &mut buf).map(|()| buf)
    });
    for chunk in [&b"ab"[..], b"c", b"defg", b"hij"] {
        tx.send(Ok(chunk.to_vec())).unwrap();
    }
    assert_eq!(&waiting.join().unwrap().unwrap(), b"bcdefg");
}

// ---------------------------------------------------------------------------------------------
// slice, try_slice, bytes
// ---------------------------------------------------------------------------------------------

/// Every `RangeBounds` form selects the same bytes as on a `Vec`.
#[test]
fn slice_accepts_every_range_form() {
    let data = pattern(1000);
    let cache = complete(&data);
    let (a, b) = (123u64, 456u64);
    let (ua, ub) = (a as usize, b as usize);
    assert_eq!(cache.slice(a..b).unwrap(), &data[ua..ub]);
    assert_eq!(cache.slice(a..=b).unwrap(), &data[ua..=ub]);
    assert_eq!(cache.slice(a..).unwrap(), &data[ua..]);
    assert_eq!(cache.slice(..b).unwrap(), &data[..ub]);
    assert_eq!(cache.slice(..=b).unwrap(), &data[..=ub]);
    assert_eq!(cache.slice(..).unwrap(), &data[..]);
    assert_eq!(
        cache
            .slice((Bound::Excluded(a), Bound::Included(b)))
            .unwrap(),
        &data[ua + 1..=ub]
    );
    assert_eq!(
        cache
            .slice((Bound::Excluded(a), Bound::Excluded(b)))
            .unwrap(),
        &data[ua + 1..ub]
    );
    assert_eq!(
        cache.slice((Bound::Excluded(a), Bound::Unbounded)).unwrap(),
        &data[ua + 1..]
    );
    // Empty ranges, inside and at the end.
    assert_eq!(cache.slice(a..a).unwrap(), b"");
    assert_eq!(cache.slice(1000..1000).unwrap(), b"");
    assert_eq!(cache.slice(1000..).unwrap(), b"");
    assert_eq!(cache.slice(999..=999).unwrap(), &data[999..]);
}

/// `bytes` and `try_slice` accept the same forms and agree with `slice`.
#[test]
fn bytes_and_try_slice_agree_with_slice() {
    let data = pattern(1000);
    let cache = complete(&data);
    let ranges: [(Bound<u64>, Bound<u64>); 7] = [
        (Bound::Included(10), Bound::Excluded(20)),
        (Bound::Included(10), Bound::Included(20)),
        (Bound::Included(10), Bound::Unbounded),
        (Bound::Unbounded, Bound::Excluded(20)),
        (Bound::Unbounded, Bound::Included(999)),
        (Bound::Unbounded, Bound::Unbounded),
        (Bound::Excluded(10), Bound::Included(20)),
    ];
    for range in ranges {
        let slice = cache.slice(range).unwrap();
        assert_eq!(&cache.bytes(range).unwrap()[..], slice, "{range:?}");
        assert_eq!(cache.try_slice(range), Some(slice), "{range:?}");
    }
}

/// Inverted ranges are `InvalidInput` (`None` from `try_slice`), on any stream.
#[test]
fn inverted_ranges_are_invalid_input() {
    let cache = complete(&pattern(100));
    let inverted: [(Bound<u64>, Bound<u64>); 4] = [
        (Bound::Included(5), Bound::Excluded(3)),
        (Bound::Included(5), Bound::Included(3)),
        (Bound::Excluded(3), Bound::Excluded(3)),
        (Bound::Excluded(5), Bound::Included(4)),
    ];
    for range in inverted {
        assert_eq!(
            kind(cache.slice(range)),
            ErrorKind::InvalidInput,
            "{range:?}"
        );
        assert_eq!(
            kind(cache.bytes(range)),
            ErrorKind::InvalidInput,
            "{range:?}"
        );
        assert_eq!(cache.try_slice(range), None, "{range:?}");
    }
    // The same written as `a..b` and `a..=b`.
    let (a, b) = (5u64, 3u64);
    assert_eq!(kind(cache.slice(a..b)), ErrorKind::InvalidInput);
    assert_eq!(kind(cache.slice(a..=b)), ErrorKind::InvalidInput);
    assert_eq!(kind(cache.bytes(a..b)), ErrorKind::InvalidInput);
    assert_eq!(cache.try_slice(a..=b), None);
    // Inverted beyond the end is still InvalidInput, not UnexpectedEof.
    assert_eq!(
        kind(cache.slice((Bound::Included(500), Bound::Excluded(400)))),
        ErrorKind::InvalidInput
    );
}

/// A well-formed range that ends past the final length is `UnexpectedEof`.
#[test]
fn ranges_past_the_end_are_unexpected_eof() {
    let cache = complete(&pattern(100));
    assert_eq!(kind(cache.slice(90..101)), ErrorKind::UnexpectedEof);
    assert_eq!(kind(cache.slice(..=100)), ErrorKind::UnexpectedEof);
    assert_eq!(kind(cache.slice(101..)), ErrorKind::UnexpectedEof);
    assert_eq!(kind(cache.slice(200..300)), ErrorKind::UnexpectedEof);
    assert_eq!(kind(cache.bytes(99..=100)), ErrorKind::UnexpectedEof);
    assert_eq!(kind(cache.bytes(101..)), ErrorKind::UnexpectedEof);
    assert_eq!(cache.try_slice(90..101), None);
    assert_eq!(cache.try_slice(101..), None);
}

/// `slice` waits for the whole range; `..` waits for the end of the stream.
#[test]
fn slice_waits_for_its_range() {
    let (tx, rx) = channel();
    let cache = StreamCache::builder().spawn_chunks(rx).unwrap();
    let c = cache.clone();
    let mid = thread::spawn(move || c.slice(2..6).map(<[u8]>::to_vec));
    let c = cache.clone();
    let all = thread::spawn(move || c.slice(..).map(<[u8]>::to_vec));
    let c = cache.clone();
    let tail = thread::spawn(move || c.bytes(5..).map(|b| b.to_vec()));
    for chunk in [&b"a"[..], b"bcd", b"ef", b"gh"] {
        tx.send(Ok(chunk.to_vec())).unwrap();
    }
    assert_eq!(mid.join().unwrap().unwrap(), b"cdef");
    drop(tx);
    assert_eq!(all.join().unwrap().unwrap(), b"abcdefgh");
    assert_eq!(tail.join().unwrap().unwrap(), b"fgh");
}

/// `try_slice` never waits: `None` until the whole range is there, and `None` for an open
/// range until the stream is complete.
#[test]
fn try_slice_never_waits() {
    let (tx, rx) = channel();
    let cache = StreamCache::builder().spawn_chunks(rx).unwrap();
    // Nothing has arrived (the source is blocked on the channel).
    assert_eq!(cache.try_slice(0..1), None);
    assert_eq!(cache.try_slice(..), None);
    assert_eq!(cache.try_slice(0..), None);

    tx.send(Ok(b"abcd".to_vec())).unwrap();
    assert_eq!(cache.wait_for(4).unwrap(), 4);
    assert_eq!(cache.try_slice(0..4), Some(&b"abcd"[..]));
    assert_eq!(cache.try_slice(..4), Some(&b"abcd"[..]));
    assert_eq!(cache.try_slice(1..=2), Some(&b"bc"[..]));
    assert_eq!(cache.try_slice(0..5), None);
    assert_eq!(cache.try_slice(..), None, "open range before completion");
    assert_eq!(cache.try_slice(2..), None, "open range before completion");

    drop(tx);
    assert_eq!(cache.wait_complete().unwrap(), 4);
    assert_eq!(cache.try_slice(..), Some(&b"abcd"[..]));
    assert_eq!(cache.try_slice(2..), Some(&b"cd"[..]));
    assert_eq!(cache.try_slice(4..), Some(&b""[..]));
    assert_eq!(cache.try_slice(5..), None);
    assert_eq!(cache.try_slice(0..5), None);
}

/// `bytes` is zero-copy: the same memory as `slice` on a completed stream, in memory and
/// spilled to a file.
#[test]
fn bytes_is_the_same_memory_as_slice() {
    // Under miri (~250 µs per generated byte): a shorter stream, the same kinds of ranges.
    let (len, ranges) = if cfg!(miri) {
        (2_000, [(0, 2_000), (10, 100), (990, 1_010), (1_999, 2_000)])
    } else {
        (
            200_000,
            [
                (0, 200_000),
                (10, 100),
                (49_990, 50_010),
                (199_999, 200_000),
            ],
        )
    };
    let data = pattern(len);
    let dir = spill_dir();
    for memory_limit in memory_limits(50_000) {
        let cache = spilling(memory_limit, dir.path())
            .spawn(io::Cursor::new(data.clone()))
            .unwrap();
        cache.wait_complete().unwrap();
        for (a, b) in ranges {
            let bytes = cache.bytes(a..b).unwrap();
            let slice = cache.slice(a..b).unwrap();
            assert_eq!(
                bytes.as_ptr(),
                slice.as_ptr(),
                "limit {memory_limit} {a}..{b}"
            );
            assert_eq!(&bytes[..], &data[a as usize..b as usize]);
        }
    }
}

/// A `Bytes` outlives every handle (even on another thread) and keeps its content.
#[test]
fn bytes_outlive_every_handle() {
    // Shorter under miri, which takes ~250 µs per generated byte.
    let len = if cfg!(miri) { 2_000 } else { 300_000 };
    let data = pattern(len as usize);
    let dir = spill_dir();
    for memory_limit in memory_limits(100_000) {
        let cache = spilling(memory_limit, dir.path())
            .spawn(io::Cursor::new(data.clone()))
            .unwrap();
        let reader = cache.reader();
        let head = cache.bytes(..1000).unwrap();
        let all = cache.bytes(..).unwrap();
        let tail = reader.cache().bytes(len - 1000..).unwrap();
        drop(reader);
        drop(cache);
        let expected = data.clone();
        let check = thread::spawn(move || {
            assert_eq!(&all[..], &expected[..]);
            assert_eq!(&tail[..], &expected[(len - 1000) as usize..]);
        });
        assert_eq!(&head[..], &data[..1000]);
        check.join().unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// wait_for, wait_for_timeout, wait_complete, available, len, status
// ---------------------------------------------------------------------------------------------

/// The state accessors while filling, after completion, and the waits between.
#[test]
fn waits_and_status_through_a_stream_life() {
    let (tx, rx) = channel();
    let cache = StreamCache::builder().spawn_chunks(rx).unwrap();
    // Blocked source: nothing arrives, so a timed wait times out.
    assert_eq!(cache.available(), 0);
    assert_eq!(cache.status(), Status::Filling { available: 0 });
    assert_eq!(cache.len(), None);
    assert!(!cache.is_complete());
    assert_eq!(cache.wait_for(0).unwrap(), 0, "offset 0 is always there");
    assert_eq!(
        cache
            .wait_for_timeout(1, Duration::from_millis(20))
            .unwrap(),
        None
    );
    assert_eq!(cache.wait_for_timeout(0, Duration::ZERO).unwrap(), Some(0));

    // Two bytes arrive: waits up to 2 return, beyond 2 still time out.
    tx.send(Ok(b"xy".to_vec())).unwrap();
    assert_eq!(cache.wait_for_timeout(2, HANG_GUARD).unwrap(), Some(2));
    assert_eq!(cache.wait_for(1).unwrap(), 2);
    assert_eq!(cache.available(), 2);
    assert_eq!(cache.status(), Status::Filling { available: 2 });
    assert_eq!(cache.len(), None);
    assert_eq!(
        cache
            .wait_for_timeout(3, Duration::from_millis(20))
            .unwrap(),
        None
    );

    // A waiter for the end is woken by completion.
    let c = cache.clone();
    let ender = thread::spawn(move || c.wait_complete());
    tx.send(Ok(b"z".to_vec())).unwrap();
    drop(tx);
    assert_eq!(ender.join().unwrap().unwrap(), 3);
    assert_eq!(cache.status(), Status::Complete { len: 3 });
    assert_eq!(cache.len(), Some(3));
    assert!(cache.is_complete());
    assert_eq!(cache.available(), 3);
    // After completion every wait returns at once with the final length.
    assert_eq!(cache.wait_for(100).unwrap(), 3);
    assert_eq!(cache.wait_for(u64::MAX).unwrap(), 3);
    assert_eq!(
        cache.wait_for_timeout(100, Duration::ZERO).unwrap(),
        Some(3)
    );
    assert_eq!(
        cache.wait_for_timeout(u64::MAX, Duration::MAX).unwrap(),
        Some(3)
    );
    assert_eq!(cache.wait_complete().unwrap(), 3);
}

/// `wait_for` returns the available count, which is at least the target while filling.
#[test]
fn wait_for_is_woken_by_the_data() {
    let (tx, rx) = channel();
    let cache = StreamCache::builder().spawn_chunks(rx).unwrap();
    let c = cache.clone();
    let waiter = thread::spawn(move || c.wait_for(5));
    let c = cache.clone();
    let timed = thread::spawn(move || c.wait_for_timeout(5, HANG_GUARD));
    tx.send(Ok(b"abc".to_vec())).unwrap();
    tx.send(Ok(b"defg".to_vec())).unwrap();
    let available = waiter.join().unwrap().unwrap();
    assert!((5..=7).contains(&available), "{available}");
    let available = timed.join().unwrap().unwrap().expect("not a timeout");
    assert!((5..=7).contains(&available), "{available}");
    drop(tx);
}

/// `expected_len` reports the hint, which does not change the outcome.
#[test]
fn expected_len_is_reported() {
    let cache = StreamCache::builder()
        .expected_len(10)
        .spawn(&b"abc"[..])
        .unwrap();
    assert_eq!(cache.expected_len(), Some(10));
    assert_eq!(cache.wait_complete().unwrap(), 3);
    assert_eq!(cache.expected_len(), Some(10));
    assert_eq!(complete(b"abc").expected_len(), None);
}

/// A hint longer or shorter than the stream: the stream completes with its true length and
/// bytes, in memory and spilled.
#[test]
fn expected_len_is_only_a_hint() {
    // Shorter under miri, which takes ~250 µs per generated byte.
    let len = if cfg!(miri) { 600 } else { 150_000 };
    let data = pattern(len as usize);
    let dir = spill_dir();
    for memory_limit in memory_limits(64 << 10) {
        for hint in [0, 1, len * 2 / 3, len - 1, len, len + 1, len * 10, 64 << 20] {
            let cache = spilling(memory_limit, dir.path())
                .expected_len(hint)
                .spawn(PatternSource::new(data.len() as u64).sizes(&[4093, 65537]))
                .unwrap();
            assert_eq!(
                cache.wait_complete().unwrap(),
                data.len() as u64,
                "limit {memory_limit} hint {hint}"
            );
            assert_eq!(cache.slice(..).unwrap(), &data[..]);
            assert_eq!(cache.expected_len(), Some(hint));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Builder settings
// ---------------------------------------------------------------------------------------------

/// `chunk_size(n)`: every read asks for at most `n` bytes and never for 0, in memory, at the
/// edge of the memory limit, and spilled.
#[test]
fn chunk_size_bounds_every_read() {
    // Under miri: a short stream (chunk_size 1 means a read per byte) in memory only (miri
    // cannot map files, and a limit at 10 001 only matters for a longer stream).
    let data = pattern(if cfg!(miri) { 200 } else { 70_000 });
    let dir = spill_dir();
    let limits = memory_limits(10_001);
    for chunk_size in [1, 7, 4093, 65536, 65537, 1 << 20] {
        for &memory_limit in &limits {
            let source = PatternSource::new(data.len() as u64).sizes(&[usize::MAX]);
            let log = source.log();
            let cache = spilling(memory_limit, dir.path())
                .chunk_size(chunk_size)
                .spawn(source)
                .unwrap();
            assert_eq!(cache.slice(..).unwrap(), &data[..]);
            let log = log.lock().unwrap();
            assert!(
                log.asked.iter().all(|&n| (1..=chunk_size).contains(&n)),
                "chunk_size {chunk_size}, limit {memory_limit}: asked {:?}",
                &log.asked[..log.asked.len().min(20)]
            );
        }
    }
}

/// `chunk_size` also bounds the reads with `max_len` set (the probe past the cap included).
#[test]
fn chunk_size_bounds_reads_with_max_len() {
    // Shorter under miri, where every 3-byte read costs milliseconds.
    let (len, max) = if cfg!(miri) {
        (300, 150)
    } else {
        (10_000, 5_000)
    };
    let data = pattern(len);
    let source = PatternSource::new(data.len() as u64).sizes(&[usize::MAX]);
    let log = source.log();
    let cache = StreamCache::builder()
        .chunk_size(3)
        .max_len(max as u64)
        .spawn(source)
        .unwrap();
    assert_eq!(kind(cache.wait_complete()), ErrorKind::StorageFull);
    assert_eq!(cache.slice(..max as u64).unwrap(), &data[..max]);
    let log = log.lock().unwrap();
    assert!(log.asked.iter().all(|&n| (1..=3).contains(&n)));
}

/// `chunk_size(0)` is refused at spawn, for both kinds of source.
#[test]
fn chunk_size_zero_is_invalid_input() {
    let err = StreamCache::builder()
        .chunk_size(0)
        .spawn(&b"abc"[..])
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let chunks = vec![Ok(b"abc".to_vec())];
    let err = StreamCache::builder()
        .chunk_size(0)
        .spawn_chunks(chunks)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

/// The source is read only on the filler thread, which carries the `thread_name`.
#[test]
fn source_is_read_on_the_named_filler_thread() {
    // Shorter under miri, which takes ~250 µs per generated byte.
    let source = PatternSource::new(if cfg!(miri) { 2_000 } else { 100_000 }).sizes(&[1000, 7]);
    let log = source.log();
    let cache = StreamCache::builder()
        .thread_name("fetch-42")
        .spawn(source)
        .unwrap();
    cache.wait_complete().unwrap();
    let log = log.lock().unwrap();
    assert!(!log.names.is_empty());
    let stray = log.names.iter().find(|n| n.as_deref() != Some("fetch-42"));
    assert_eq!(stray, None, "a read ran on another thread");
    let filler = log.threads[0];
    assert_ne!(filler, thread::current().id());
    assert!(log.threads.iter().all(|&t| t == filler), "one thread only");
}

/// Without `thread_name` the source still runs on one filler thread, not the caller's.
#[test]
fn source_is_read_on_a_filler_thread_by_default() {
    // Shorter under miri, which takes ~250 µs per generated byte.
    let source = PatternSource::new(if cfg!(miri) { 1_000 } else { 10_000 }).piece(100);
    let log = source.log();
    let cache = StreamCache::new(source).unwrap();
    cache.wait_complete().unwrap();
    let log = log.lock().unwrap();
    let filler = log.threads[0];
    assert_ne!(filler, thread::current().id());
    assert!(log.threads.iter().all(|&t| t == filler));
}

/// The chunk iterator is driven on the named filler thread too.
#[test]
fn chunks_are_made_on_the_named_filler_thread() {
    let names = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&names);
    let chunks = (0..10u8).map(move |i| {
        seen.lock()
            .unwrap()
            .push(thread::current().name().map(str::to_owned));
        Ok::<_, io::Error>(vec![i; 3])
    });
    let cache = StreamCache::builder()
        .thread_name("chunky")
        .spawn_chunks(chunks)
        .unwrap();
    assert_eq!(cache.wait_complete().unwrap(), 30);
    let names = names.lock().unwrap();
    assert_eq!(names.len(), 10);
    assert!(names.iter().all(|n| n.as_deref() == Some("chunky")));
}

/// `B` needs no `Send`: `Rc<[u8]>` chunks, made by a `Send` iterator on the filler thread.
#[test]
fn chunks_need_not_be_send() {
    // Shorter chunks under miri, which takes ~250 µs per generated byte.
    let piece = if cfg!(miri) { 100 } else { 1000 };
    let data = Arc::new(pattern(10 * piece));
    let source = Arc::clone(&data);
    let chunks = (0..10)
        .map(move |i| Ok::<Rc<[u8]>, io::Error>(Rc::from(&source[i * piece..(i + 1) * piece])));
    let cache = StreamCache::builder().spawn_chunks(chunks).unwrap();
    assert_eq!(cache.slice(..).unwrap(), &data[..]);
}

/// `Interrupted` from a `Read` source is retried, wherever it comes, and loses no byte.
#[test]
fn interrupted_reads_are_retried() {
    struct Flaky {
        inner: PatternSource,
        calls: usize,
    }
    impl Read for Flaky {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.calls += 1;
            // The first call, then every other one (including the one before the end).
            if self.calls % 2 == 1 {
                return Err(io::Error::new(ErrorKind::Interrupted, "signal"));
            }
            self.inner.read(buf)
        }
    }
    // Shorter under miri, which takes ~250 µs per generated byte.
    let len = if cfg!(miri) { 5_000 } else { 50_000 };
    let data = pattern(len);
    let cache = StreamCache::builder()
        .spawn(Flaky {
            inner: PatternSource::new(data.len() as u64).sizes(&[1, 4093, 777]),
            calls: 0,
        })
        .unwrap();
    assert_eq!(cache.slice(..).unwrap(), &data[..]);
    assert_eq!(cache.status(), Status::Complete { len: len as u64 });
}

/// A `Read` source error fails the stream at the offset it came at, kind and message kept.
#[test]
fn read_source_error_fails_at_its_offset() {
    // Shorter under miri, which takes ~250 µs per generated byte.
    let len = if cfg!(miri) { 1_000 } else { 10_000 };
    let data = pattern(len);
    let source = PatternSource::new(data.len() as u64)
        .sizes(&[999])
        .failing(ErrorKind::TimedOut, "too slow");
    let cache = StreamCache::builder().spawn(source).unwrap();
    let err = cache.wait_complete().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    assert!(err.to_string().contains("too slow"), "{err}");
    assert_eq!(
        cache.status(),
        Status::Failed {
            available: len as u64,
            error: ErrorKind::TimedOut
        }
    );
    assert_eq!(cache.slice(..len as u64).unwrap(), &data[..]);
}

/// `max_len`: a stream of exactly the cap completes; one byte more fails with `StorageFull` at
/// the cap with every byte before it readable; in memory and spilled.
#[test]
fn max_len_exact_and_one_over() {
    let dir = spill_dir();
    let limits = memory_limits(4096);
    // Shorter streams under miri, which takes ~250 µs per generated byte.
    let maxes: &[usize] = if cfg!(miri) {
        &[0, 1, 100, 1_001]
    } else {
        &[0, 1, 1000, 65_536, 100_003]
    };
    for &max in maxes {
        for &memory_limit in &limits {
            let exact = pattern(max);
            let cache = spilling(memory_limit, dir.path())
                .max_len(max as u64)
                .spawn(PatternSource::new(exact.len() as u64).sizes(&[4093, 1]))
                .unwrap();
            assert_eq!(cache.wait_complete().unwrap(), max as u64, "max {max}");
            assert_eq!(cache.slice(..).unwrap(), &exact[..]);

            let over = pattern(max + 1);
            let cache = spilling(memory_limit, dir.path())
                .max_len(max as u64)
                .spawn(io::Cursor::new(over.clone()))
                .unwrap();
            assert_eq!(kind(cache.wait_complete()), ErrorKind::StorageFull);
            assert_eq!(
                cache.status(),
                Status::Failed {
                    available: max as u64,
                    error: ErrorKind::StorageFull
                },
                "max {max} limit {memory_limit}"
            );
            assert_eq!(cache.slice(..max as u64).unwrap(), &over[..max]);
            assert_eq!(cache.wait_for(max as u64).unwrap(), max as u64);
            assert_eq!(
                kind(cache.read_at(max as u64, &mut [0; 1])),
                ErrorKind::StorageFull
            );
        }
    }
}

/// `max_len` stops an endless source.
#[test]
// Spills to the temp file (memory_limit below max_len), which miri cannot map.
#[cfg_attr(miri, ignore = "spills to a file mapping")]
fn max_len_stops_an_endless_source() {
    let cache = StreamCache::builder()
        .max_len(100_000)
        .memory_limit(10_000)
        .spawn(io::repeat(7))
        .unwrap();
    assert_eq!(kind(cache.wait_complete()), ErrorKind::StorageFull);
    assert_eq!(cache.available(), 100_000);
    assert!(cache.slice(..100_000).unwrap().iter().all(|&b| b == 7));
}

/// `max_len` on a chunk source: the chunk that crosses the cap is cut there.
#[test]
fn max_len_cuts_a_chunk() {
    let chunks = vec![Ok(b"abc".to_vec()), Ok(b"defgh".to_vec())];
    let cache = StreamCache::builder()
        .max_len(5)
        .spawn_chunks(chunks)
        .unwrap();
    assert_eq!(kind(cache.wait_complete()), ErrorKind::StorageFull);
    assert_eq!(
        cache.slice(..).map_err(|e| e.kind()),
        Err(ErrorKind::StorageFull)
    );
    assert_eq!(cache.slice(..5).unwrap(), b"abcde");
}

// ---------------------------------------------------------------------------------------------
// Reader: Read, BufRead, Seek
// ---------------------------------------------------------------------------------------------

/// `reader`, `reader_at`, `position` and `cache`; clones have their own cursor.
#[test]
fn reader_cursor_basics() {
    let data = pattern(1000);
    let cache = complete(&data);
    let mut reader = cache.reader();
    assert_eq!(reader.position(), 0);
    let mut buf = [0u8; 100];
    reader.read_exact(&mut buf).unwrap();
    assert_eq!(&buf[..], &data[..100]);
    assert_eq!(reader.position(), 100);
    assert_eq!(reader.stream_position().unwrap(), 100);

    let mut clone = reader.clone();
    clone.read_exact(&mut buf).unwrap();
    assert_eq!(&buf[..], &data[100..200]);
    assert_eq!(clone.position(), 200);
    assert_eq!(reader.position(), 100, "a clone has its own cursor");

    assert_eq!(reader.cache().len(), Some(1000));
    assert_eq!(reader.cache().slice(..).unwrap(), &data[..]);

    let mut at = cache.reader_at(990);
    assert_eq!(at.position(), 990);
    let mut rest = Vec::new();
    at.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, &data[990..]);
    assert_eq!(at.read(&mut buf).unwrap(), 0);

    let mut past = cache.reader_at(5000);
    assert_eq!(past.read(&mut buf).unwrap(), 0);
    assert_eq!(past.fill_buf().unwrap(), b"");
}

/// `Read` follows a stream that arrives in pieces and returns partial reads.
#[test]
fn reader_reads_a_growing_stream() {
    let (tx, rx) = channel();
    let cache = StreamCache::builder().spawn_chunks(rx).unwrap();
    let mut reader = cache.reader();
    let collector = thread::spawn(move || {
        let mut all = Vec::new();
        reader.read_to_end(&mut all).map(|_| all)
    });
    // Shorter under miri, which takes ~250 µs per generated byte.
    let data = pattern(if cfg!(miri) { 2_000 } else { 100_000 });
    for chunk in chunks_of(&data, &[1, 4093, 7, 65537]) {
        tx.send(chunk).unwrap();
    }
    drop(tx);
    assert_eq!(collector.join().unwrap().unwrap(), data);
}

/// Seeking from the start, the current position and the end; past the end reads 0.
#[test]
fn reader_seek_forms() {
    let data = pattern(1000);
    let cache = complete(&data);
    let mut reader = cache.reader();
    let mut byte = [0u8; 1];

    assert_eq!(reader.seek(SeekFrom::Start(10)).unwrap(), 10);
    reader.read_exact(&mut byte).unwrap();
    assert_eq!(byte[0], data[10]);
    assert_eq!(reader.seek(SeekFrom::Current(5)).unwrap(), 16);
    reader.read_exact(&mut byte).unwrap();
    assert_eq!(byte[0], data[16]);
    assert_eq!(reader.seek(SeekFrom::Current(-17)).unwrap(), 0);
    assert_eq!(reader.seek(SeekFrom::End(-1)).unwrap(), 999);
    reader.read_exact(&mut byte).unwrap();
    assert_eq!(byte[0], data[999]);
    assert_eq!(reader.seek(SeekFrom::End(0)).unwrap(), 1000);
    assert_eq!(reader.read(&mut byte).unwrap(), 0);

    // Past the end is allowed; reads then return 0 and fill_buf is empty.
    assert_eq!(reader.seek(SeekFrom::End(10)).unwrap(), 1010);
    assert_eq!(reader.read(&mut byte).unwrap(), 0);
    assert_eq!(reader.fill_buf().unwrap(), b"");
    assert_eq!(reader.seek(SeekFrom::Start(5000)).unwrap(), 5000);
    assert_eq!(reader.read(&mut byte).unwrap(), 0);
    assert_eq!(reader.seek(SeekFrom::Start(u64::MAX)).unwrap(), u64::MAX);
    assert_eq!(reader.read(&mut byte).unwrap(), 0);
    assert_eq!(reader.fill_buf().unwrap(), b"");
    assert_eq!(reader.seek(SeekFrom::Current(-1)).unwrap(), u64::MAX - 1);
    assert_eq!(reader.read(&mut byte).unwrap(), 0);
}

/// Seeking before 0 or past `u64::MAX` is `InvalidInput`, and the cursor does not move.
#[test]
fn reader_bad_seeks_are_invalid_input() {
    let cache = complete(&pattern(100));
    let mut reader = cache.reader_at(10);
    let bad = [
        SeekFrom::Current(-11),
        SeekFrom::Current(i64::MIN),
        SeekFrom::End(-101),
        SeekFrom::End(i64::MIN),
    ];
    for pos in bad {
        assert_eq!(kind(reader.seek(pos)), ErrorKind::InvalidInput, "{pos:?}");
        assert_eq!(reader.position(), 10, "{pos:?} moved the cursor");
    }
    reader.seek(SeekFrom::Start(u64::MAX - 1)).unwrap();
    assert_eq!(
        kind(reader.seek(SeekFrom::Current(2))),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        kind(reader.seek(SeekFrom::Current(i64::MAX))),
        ErrorKind::InvalidInput
    );
    assert_eq!(reader.position(), u64::MAX - 1);
}

/// `SeekFrom::End` waits for the end of the stream.
#[test]
fn seek_from_end_waits_for_the_end() {
    let (tx, rx) = channel();
    let cache = StreamCache::builder().spawn_chunks(rx).unwrap();
    let mut reader = cache.reader();
    let seeker = thread::spawn(move || {
        let pos = reader.seek(SeekFrom::End(-2))?;
        let mut tail = Vec::new();
        reader.read_to_end(&mut tail)?;
        Ok::<_, io::Error>((pos, tail))
    });
    tx.send(Ok(b"abc".to_vec())).unwrap();
    tx.send(Ok(b"defg".to_vec())).unwrap();
    drop(tx);
    let (pos, tail) = seeker.join().unwrap().unwrap();
    assert_eq!(pos, 5, "the end is the final length, not what had arrived");
    assert_eq!(tail, b"fg");
}

/// `fill_buf` returns the cache's memory (same address as `slice` on a completed stream),
/// everything from the cursor on; `consume` moves the cursor.
#[test]
fn fill_buf_is_the_cache_memory() {
    // Under miri (~250 µs per generated byte): a shorter stream, the same kinds of offsets.
    let (len, starts) = if cfg!(miri) {
        (2_000, [0u64, 10, 999, 1000, 1999])
    } else {
        (200_000, [0u64, 10, 65_535, 65_536, 199_999])
    };
    let data = pattern(len);
    let dir = spill_dir();
    for memory_limit in memory_limits(65_536) {
        let cache = spilling(memory_limit, dir.path())
            .spawn(io::Cursor::new(data.clone()))
            .unwrap();
        cache.wait_complete().unwrap();
        let mut reader = cache.reader();
        for start in starts {
            reader.seek(SeekFrom::Start(start)).unwrap();
            let buf = reader.fill_buf().unwrap();
            let slice = cache.slice(start..).unwrap();
            assert_eq!(
                buf.as_ptr(),
                slice.as_ptr(),
                "limit {memory_limit} at {start}"
            );
            assert_eq!(buf, &data[start as usize..]);
            assert_eq!(
                cache.bytes(start..).unwrap().as_ptr(),
                slice.as_ptr(),
                "bytes, limit {memory_limit} at {start}"
            );
        }
        reader.seek(SeekFrom::Start(0)).unwrap();
        reader.consume(1234);
        assert_eq!(reader.position(), 1234);
        assert_eq!(reader.fill_buf().unwrap(), &data[1234..]);
    }
}

/// `fill_buf` waits only when nothing is available at the cursor, and then returns what came.
#[test]
fn fill_buf_waits_only_for_nothing() {
    let (tx, rx) = channel();
    let cache = StreamCache::builder().spawn_chunks(rx).unwrap();
    tx.send(Ok(b"abc".to_vec())).unwrap();
    cache.wait_for(3).unwrap();
    // Three bytes are there: fill_buf returns them without waiting for more.
    let reader = cache.reader();
    let (mut reader, got) = finishes(move || {
        let mut reader = reader;
        let got = reader.fill_buf().map(<[u8]>::to_vec);
        (reader, got)
    });
    assert_eq!(got.unwrap(), b"abc");
    reader.consume(2);
    assert_eq!(reader.fill_buf().unwrap(), b"c");
    reader.consume(1);

    // Nothing at the cursor: it waits for the next chunk.
    let waiter = thread::spawn(move || {
        let got = reader.fill_buf().map(<[u8]>::to_vec);
        (reader, got)
    });
    tx.send(Ok(b"de".to_vec())).unwrap();
    let (mut reader, got) = waiter.join().unwrap();
    let got = got.unwrap();
    assert!(!got.is_empty() && b"de".starts_with(&got), "{got:?}");
    reader.consume(got.len());

    // At the end: empty.
    drop(tx);
    let rest = reader.fill_buf().unwrap().to_vec();
    reader.consume(rest.len());
    assert_eq!(reader.position(), 5);
    assert_eq!(reader.fill_buf().unwrap(), b"");
}

/// `BufRead`'s line helpers work across chunk boundaries.
#[test]
fn bufread_lines_across_chunks() {
    let chunks = vec![
        Ok(b"fir".to_vec()),
        Ok(b"st\nsec".to_vec()),
        Ok(b"ond\n".to_vec()),
        Ok(b"\nlast".to_vec()),
    ];
    let cache = StreamCache::builder().spawn_chunks(chunks).unwrap();
    let lines: Vec<String> = cache.reader().lines().collect::<io::Result<_>>().unwrap();
    assert_eq!(lines, ["first", "second", "", "last"]);
}

/// Handles are independent: any clone or reader keeps the stream going; every one sees it.
#[test]
fn clones_share_one_stream() {
    let (tx, rx) = channel();
    let cache = StreamCache::builder().spawn_chunks(rx).unwrap();
    let reader = cache.reader();
    let clone = cache.clone();
    drop(cache);
    tx.send(Ok(b"hello".to_vec())).unwrap();
    drop(tx);
    assert_eq!(clone.slice(..).unwrap(), b"hello");
    drop(clone);
    assert_eq!(reader.cache().slice(..).unwrap(), b"hello");
}
