//! Many threads against one filling stream: every byte each of them sees is the right one
//! (invariants 1 and 2), every parked reader is woken and none busy-waits (invariant 3), and
//! slices handed out before the spill stay valid and unchanged after it (invariant 1).

mod common;

use common::offsets::{assert_pattern, fill_pattern, pattern, pieces, temp_dir, KIB, MIB};
use common::{no_hang, HANG_GUARD};
use std::io::{self, BufRead, Read, Seek, SeekFrom};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;
use streamcache::StreamCache;

/// xorshift64: a deterministic generator per thread, no dependency needed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform enough in `[0, n)`; `n > 0`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// `len` pattern bytes in small reads of random size, yielding and now and then sleeping
/// briefly, so that the readers work while the stream fills and spills.
struct TrickleSource {
    pos: u64,
    len: u64,
    rng: Rng,
}

impl Read for TrickleSource {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        thread::yield_now();
        if self.rng.below(8) == 0 {
            thread::sleep(Duration::from_micros(500));
        }
        let want = 1 + self.rng.below(16 * KIB) as usize;
        let n = buf.len().min(want).min((self.len - self.pos) as usize);
        fill_pattern(self.pos, &mut buf[..n]);
        self.pos += n as u64;
        Ok(n)
    }
}

// ---------------------------------------------------------------------------------------------
// Random reads from 8 threads while the stream fills and spills
// ---------------------------------------------------------------------------------------------

/// One random operation of a reader thread, every byte it gets checked.
fn random_op(cache: &StreamCache, reader: &mut streamcache::Reader, rng: &mut Rng, total: u64) {
    // Half the offsets in what has arrived (read while the filler writes and spills), a quarter
    // just past it (the op waits), a quarter anywhere (a few past the end).
    let offset = match rng.below(4) {
        0 | 1 => rng.below(cache.available() + 1),
        2 => (cache.available() + rng.below(16 * KIB)).min(total + 10),
        _ => rng.below(total + 1000),
    };
    let len = 1 + rng.below(64 * KIB);
    let mut buf = vec![0u8; len as usize];
    match rng.below(7) {
        0 => {
            let n = cache.read_at(offset, &mut buf).unwrap() as u64;
            if offset >= total {
                assert_eq!(n, 0, "read_at({offset}) past the end");
            } else {
                assert!(n >= 1 && n <= len.min(total - offset), "read_at gave {n}");
            }
            assert_pattern(offset, &buf[..n as usize], "read_at");
        }
        1 => {
            let end = (offset + len).min(total);
            let start = offset.min(end);
            let got = cache.slice(start..end).unwrap();
            assert_eq!(got.len() as u64, end - start);
            assert_pattern(start, got, "slice");
        }
        2 => {
            let end = (offset + len).min(total);
            let start = offset.min(end);
            let got = cache.bytes(start..end).unwrap();
            assert_eq!(got.len() as u64, end - start);
            assert_pattern(start, &got, "bytes");
        }
        3 => {
            let result = cache.read_exact_at(offset, &mut buf);
            if offset + len <= total {
                result.unwrap();
                assert_pattern(offset, &buf, "read_exact_at");
            } else {
                assert_eq!(result.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
            }
        }
        4 => {
            assert_eq!(reader.seek(SeekFrom::Start(offset)).unwrap(), offset);
            let n = reader.read(&mut buf).unwrap() as u64;
            assert_eq!(n == 0, offset >= total, "Reader::read at {offset} gave {n}");
            assert_pattern(offset, &buf[..n as usize], "Reader::read");
            assert_eq!(reader.position(), offset + n);
        }
        5 => {
            // A relative seek around the cursor, then a zero-copy read.
            let back = rng.below(reader.position().min(64 * KIB) + 1);
            let at = reader.seek(SeekFrom::Current(-(back as i64))).unwrap();
            let got = reader.fill_buf().unwrap();
            assert_eq!(got.is_empty(), at >= total, "fill_buf at {at}");
            assert!(at + got.len() as u64 <= total);
            assert_pattern(at, got, "fill_buf");
            let take = rng.below(got.len() as u64 + 1) as usize;
            reader.consume(take);
            assert_eq!(reader.position(), at + take as u64);
        }
        _ => {
            reader.seek(SeekFrom::Start(offset)).unwrap();
            let got = reader.fill_buf().unwrap();
            assert_eq!(got.is_empty(), offset >= total, "fill_buf at {offset}");
            assert_pattern(offset, got, "fill_buf");
        }
    }
}

/// 8 threads: two stream through everything (zero-copy and copying), six do random reads, all
/// against a stream that trickles in, 6 MiB through a 1 MiB arena into the spill file.
#[test]
// 6 MiB through the spill file: miri cannot map files (and it would take hours).
#[cfg_attr(miri, ignore = "6 MiB through a file mapping")]
fn eight_threads_read_correct_bytes_while_filling_and_spilling() {
    const TOTAL: u64 = 6 * MIB;
    let dir = temp_dir("random");
    let cache = StreamCache::builder()
        .memory_limit(1 << 20)
        .temp_dir(dir.path())
        .chunk_size(32 << 10)
        .spawn(TrickleSource {
            pos: 0,
            len: TOTAL,
            rng: Rng::new(99),
        })
        .unwrap();

    let start = Arc::new(Barrier::new(8));
    let (done_tx, done_rx) = mpsc::channel();
    for t in 0..8u64 {
        let (cache, start, done_tx) = (cache.clone(), start.clone(), done_tx.clone());
        thread::spawn(move || {
            start.wait();
            let mut reader = cache.reader();
            let mut ops_while_filling = 0u32;
            match t {
                // Every byte, zero-copy, in whatever pieces have arrived.
                0 => loop {
                    let at = reader.position();
                    let got = reader.fill_buf().unwrap();
                    if got.is_empty() {
                        assert_eq!(at, TOTAL, "fill_buf ended early");
                        break;
                    }
                    assert_pattern(at, got, "streaming fill_buf");
                    let n = got.len();
                    reader.consume(n);
                    ops_while_filling += u32::from(!cache.is_complete());
                },
                // Every byte, copied through an odd-sized buffer.
                1 => {
                    let mut buf = vec![0u8; 10_007];
                    loop {
                        let at = reader.position();
                        let n = reader.read(&mut buf).unwrap();
                        if n == 0 {
                            assert_eq!(at, TOTAL, "read ended early");
                            break;
                        }
                        assert_pattern(at, &buf[..n], "streaming read");
                        ops_while_filling += u32::from(!cache.is_complete());
                    }
                }
                // Random operations until the stream is complete, and at least 300.
                _ => {
                    let mut rng = Rng::new(t);
                    let mut ops = 0;
                    while ops < 300 || !cache.is_complete() {
                        let filling = !cache.is_complete();
                        random_op(&cache, &mut reader, &mut rng, TOTAL);
                        ops += 1;
                        ops_while_filling += u32::from(filling);
                    }
                }
            }
            let _ = done_tx.send((t, ops_while_filling));
        });
    }
    drop(done_tx);
    for _ in 0..8 {
        let (t, while_filling) = done_rx
            .recv_timeout(HANG_GUARD)
            .expect("a reader thread hung or panicked (see its panic above)");
        println!("thread {t}: {while_filling} operations while the stream was filling");
    }
    assert_eq!(cache.wait_complete().unwrap(), TOTAL);
    assert_pattern(0, cache.slice(..).unwrap(), "the whole stream");
}

// ---------------------------------------------------------------------------------------------
// No lost wake-ups
// ---------------------------------------------------------------------------------------------

/// Many readers parked at the same and at different targets; the stream advances one step at a
/// time, and after each step every reader whose target was crossed must return (before the next
/// step, so they are woken by the mark, not by the end of the stream). Half the rounds let the
/// readers park first; the other half race their registration against the steps.
#[test]
fn parked_readers_are_all_woken_step_by_step() {
    // Smaller steps and fewer rounds under miri (every thread and target is kept).
    const STEP: u64 = if cfg!(miri) { 256 } else { 10_000 };
    const STEPS: u64 = 16;
    const ROUNDS: u32 = if cfg!(miri) { 2 } else { 10 };
    const TOTAL: u64 = STEP * STEPS;
    // One reader per step, 8 more on the middle step, 4 more on the last byte, 2 at 0 and 3
    // past the end (these are woken by the end of the stream).
    let mut targets: Vec<u64> = (1..=STEPS).map(|k| k * STEP).collect();
    targets.extend([8 * STEP; 8]);
    targets.extend([TOTAL; 4]);
    targets.extend([0, 0, STEP - 1, STEP + 1, 1]);
    let past_end = [TOTAL + 1, TOTAL + STEP, u64::MAX];
    targets.extend(past_end);

    for round in 0..ROUNDS {
        let (tx, rx) = mpsc::channel::<io::Result<Vec<u8>>>();
        let cache = StreamCache::builder().spawn_chunks(rx).unwrap();
        let start = Arc::new(Barrier::new(targets.len() + 1));
        let (done_tx, done_rx) = mpsc::channel();
        for &target in &targets {
            let (cache, start, done_tx) = (cache.clone(), start.clone(), done_tx.clone());
            thread::spawn(move || {
                start.wait();
                let result = cache.wait_for_timeout(target, HANG_GUARD);
                let _ = done_tx.send((target, result));
            });
        }
        start.wait();
        if round % 2 == 0 {
            // Not needed for correctness; makes it likely that everyone is parked first.
            thread::sleep(Duration::from_millis(20));
        }

        let mut returned = 0;
        let mut receive_until = |mark: u64, complete: bool| {
            let due = targets.iter().filter(|&&t| t <= mark || complete).count();
            while returned < due {
                let (target, result) = done_rx.recv_timeout(HANG_GUARD).unwrap_or_else(|_| {
                    panic!("round {round}: a reader parked below {mark} was never woken")
                });
                let got = result.unwrap().unwrap_or_else(|| {
                    panic!("round {round}: wait_for({target}) timed out: lost wake-up")
                });
                if complete && target > TOTAL {
                    assert_eq!(got, TOTAL, "wait_for({target}) past the end");
                } else {
                    assert!(got >= target, "wait_for({target}) returned {got}");
                    assert!(
                        target <= mark,
                        "wait_for({target}) returned before the mark got there"
                    );
                }
                returned += 1;
            }
        };
        receive_until(0, false);
        for k in 1..=STEPS {
            tx.send(Ok(pattern((k - 1) * STEP, k * STEP))).unwrap();
            receive_until(k * STEP, false);
        }
        drop(tx);
        receive_until(TOTAL, true);
        assert_eq!(cache.len(), Some(TOTAL));
    }
}

// ---------------------------------------------------------------------------------------------
// Slices taken early stay valid through the spill (invariant 1)
// ---------------------------------------------------------------------------------------------

/// Sends the pattern `[start, end)` in chunks of `piece` bytes.
fn feed(tx: &Sender<io::Result<Vec<u8>>>, start: u64, end: u64, piece: u64) {
    for chunk in pieces(start, end, piece) {
        tx.send(Ok(chunk)).expect("the filler is alive");
    }
}

/// Slices, `Bytes` and `fill_buf` buffers taken from the arena, and from the spill file, while
/// the stream is still filling, read the same after the stream has spilled and completed: the
/// storage they point into was neither unmapped nor overwritten. A second thread keeps every
/// slice it takes along the way and checks them all again at the end.
#[test]
// Spills 4 MiB to the spill file, which miri cannot map.
#[cfg_attr(miri, ignore = "spills to a file mapping")]
fn slices_taken_while_filling_stay_valid_after_the_spill() {
    const ARENA: u64 = 256 * KIB;
    const TOTAL: u64 = 4 * MIB;
    let dir = temp_dir("stable");
    let (tx, rx) = mpsc::channel::<io::Result<Vec<u8>>>();
    let cache = StreamCache::builder()
        .memory_limit(ARENA as usize)
        .temp_dir(dir.path())
        .spawn_chunks(rx)
        .unwrap();

    // Another thread collects slices of its own clone as the bytes arrive, keeps them all.
    let collector = {
        let cache = cache.clone();
        thread::spawn(move || {
            let mut kept: Vec<(u64, &[u8])> = Vec::new();
            let mut at = 0;
            while at < TOTAL {
                let available = cache.wait_for(at + 1).unwrap();
                let got = cache.slice(at..available).unwrap();
                assert_pattern(at, got, "a slice as it arrived");
                kept.push((at, got));
                at = available;
            }
            // After the stream completed (through the spill), every kept slice is unchanged.
            assert_eq!(cache.wait_complete().unwrap(), TOTAL);
            for &(offset, slice) in &kept {
                assert_pattern(offset, slice, "a slice kept through the spill");
            }
            kept.len()
        })
    };

    // Early: in the arena, before the spill file exists.
    feed(&tx, 0, 100 * KIB, 7_000);
    assert!(cache
        .wait_for_timeout(100 * KIB, HANG_GUARD)
        .unwrap()
        .is_some());
    let in_arena = cache.slice(0..100 * KIB).unwrap();
    let in_arena_copy = in_arena.to_vec();
    assert_pattern(0, &in_arena_copy, "arena slice when taken");
    let arena_bytes = cache.bytes(10..90 * KIB).unwrap();
    assert_pattern(10, &arena_bytes, "arena Bytes when taken");
    let mut reader = cache.reader_at(5);
    let arena_buf = reader.fill_buf().unwrap();
    let arena_buf_copy = arena_buf.to_vec();
    assert_pattern(5, &arena_buf_copy, "arena fill_buf when taken");

    // Middle: past the arena, so the stream now lives in the spill file.
    feed(&tx, 100 * KIB, MIB, 50_000);
    assert!(cache.wait_for_timeout(MIB, HANG_GUARD).unwrap().is_some());
    let in_spill = cache.slice(200 * KIB..900 * KIB).unwrap();
    let in_spill_copy = in_spill.to_vec();
    assert_pattern(200 * KIB, &in_spill_copy, "spill slice when taken");

    // The rest, then the end.
    feed(&tx, MIB, TOTAL, 64 * KIB);
    drop(tx);
    assert_eq!(
        cache.wait_for_timeout(u64::MAX, HANG_GUARD).unwrap(),
        Some(TOTAL)
    );

    // Every early view reads as it did, and as the pattern says.
    assert_eq!(in_arena, &in_arena_copy[..]);
    assert_pattern(0, in_arena, "arena slice after the spill");
    assert_pattern(10, &arena_bytes, "arena Bytes after the spill");
    assert_eq!(arena_buf, &arena_buf_copy[..]);
    assert_pattern(5, arena_buf, "arena fill_buf after the spill");
    assert_eq!(in_spill, &in_spill_copy[..]);
    assert_pattern(200 * KIB, in_spill, "spill slice after completion");

    let kept = no_hang("the collector", move || collector.join().unwrap());
    assert!(kept >= 1);
}

// ---------------------------------------------------------------------------------------------
// No busy wait (invariant 3)
// ---------------------------------------------------------------------------------------------

/// This thread's CPU time (user and system).
#[cfg(target_os = "linux")]
fn thread_cpu() -> Duration {
    // SAFETY: `getrusage` only writes into the zeroed struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid `who` and out-pointer.
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) }, 0);
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(ru.ru_utime) + time(ru.ru_stime)
}

/// A reader that kept pace with a fast filler may yield for a few microseconds before it
/// parks; when the source then stalls, it parks all the same, and burns no CPU while it waits.
#[test]
#[cfg(target_os = "linux")]
#[cfg_attr(miri, ignore = "getrusage is not supported under miri")]
fn a_reader_waiting_on_a_stalled_source_burns_no_cpu() {
    const PIECE: u64 = 4 * KIB;
    const FAST: u64 = 256 * PIECE;
    let stall = Duration::from_millis(300);
    let (tx, rx) = mpsc::channel::<io::Result<Vec<u8>>>();
    // Published as fast as the filler goes: the filler's pace earns a reader a short spin.
    feed(&tx, 0, FAST, PIECE);
    let cache = StreamCache::builder().spawn_chunks(rx).unwrap();
    let c = cache.clone();
    let waiter = thread::spawn(move || {
        let mut reader = c.reader();
        let mut fast = vec![0u8; FAST as usize];
        reader.read_exact(&mut fast).unwrap();
        assert_pattern(0, &fast, "the fast part");
        // The source stalls here: this read waits for the stall's whole length.
        let before = thread_cpu();
        let mut next = [0u8; 1];
        reader.read_exact(&mut next).unwrap();
        (thread_cpu() - before, next[0])
    });
    thread::sleep(stall);
    feed(&tx, FAST, FAST + PIECE, PIECE);
    drop(tx);
    let (cpu, byte) = no_hang("the waiter", move || waiter.join().unwrap());
    assert_eq!(byte, pattern(FAST, FAST + 1)[0]);
    assert!(
        cpu < stall / 4,
        "the reader used {cpu:?} of CPU while the source stalled for {stall:?}: it spun"
    );
}
