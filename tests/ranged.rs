//! `Builder::spawn_ranged`: random access on demand. A read far ahead of the sequential fill
//! fetches its range at once; every byte is the source's; a changed source is caught, never
//! spliced; breaks are resumed; a fetch's error reaches exactly the reads of missing bytes;
//! dropping every handle stops the fill and the fetches.

mod common;

use common::{eventually, no_hang, pattern, threads_named};
use std::io::{self, Cursor, ErrorKind, Read, Seek, SeekFrom};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use streamcache::{Builder, Status, StreamCache};

const KIB: u64 = 1 << 10;

/// A gate readers of the source block on until the test opens it.
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    signal: Condvar,
}

impl Gate {
    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.signal.notify_all();
    }

    fn wait(&self) {
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.signal.wait(open).unwrap();
        }
    }
}

/// A ranged source over `data`, with everything a test needs to see what the cache asked of
/// it: every range opened, the bytes delivered, the opens in flight at most.
#[derive(Clone)]
struct Source {
    data: Arc<Vec<u8>>,
    /// What the sequential fill's `open(0..len)` returns instead, if the source changed.
    fill_data: Option<Arc<Vec<u8>>>,
    opened: Arc<Mutex<Vec<Range<u64>>>>,
    delivered: Arc<AtomicU64>,
    in_flight: Arc<AtomicUsize>,
    most_in_flight: Arc<AtomicUsize>,
    /// The fill delivers this many bytes, then waits for `fill_gate`.
    fill_head: u64,
    fill_gate: Arc<Gate>,
    /// Fetches (opens not at 0) wait for `fetch_gate` before their first byte.
    fetch_gate: Arc<Gate>,
    /// A fetch's first open delivers only half its range (then ends: a break).
    break_fetches: bool,
    /// Fetches fail with this kind.
    fail_fetches: Option<ErrorKind>,
}

impl Source {
    fn new(len: usize) -> Source {
        let fetch_gate = Arc::new(Gate::default());
        fetch_gate.open();
        let fill_gate = Arc::new(Gate::default());
        fill_gate.open();
        Source {
            data: Arc::new(pattern(len)),
            fill_data: None,
            opened: Arc::default(),
            delivered: Arc::default(),
            in_flight: Arc::default(),
            most_in_flight: Arc::default(),
            fill_head: u64::MAX,
            fill_gate,
            fetch_gate,
            break_fetches: false,
            fail_fetches: None,
        }
    }

    /// The fill stops after `head` bytes until [`Gate::open`] on the returned gate.
    fn gate_fill(mut self, head: u64) -> Source {
        self.fill_head = head;
        self.fill_gate = Arc::new(Gate::default());
        self
    }

    fn gate_fetches(mut self) -> Source {
        self.fetch_gate = Arc::new(Gate::default());
        self
    }

    fn len(&self) -> u64 {
        self.data.len() as u64
    }

    fn opened(&self) -> Vec<Range<u64>> {
        self.opened.lock().unwrap().clone()
    }

    fn open(&self, range: Range<u64>) -> io::Result<Part> {
        assert!(
            range.start < range.end && range.end <= self.len(),
            "bad range {range:?}"
        );
        // The sequential fill runs on the filler thread, each fetch on a thread of its own.
        let fill = !std::thread::current().name().unwrap().ends_with(":fetch");
        let first_open_of_range = {
            let mut opened = self.opened.lock().unwrap();
            let first = !opened.iter().any(|r| r.start != 0 && r.end == range.end);
            opened.push(range.clone());
            first
        };
        if !fill {
            if let Some(kind) = self.fail_fetches {
                return Err(io::Error::new(kind, "fetches are refused"));
            }
        }
        let data = match (&self.fill_data, fill) {
            (Some(changed), true) => Arc::clone(changed),
            _ => Arc::clone(&self.data),
        };
        let mut end = range.end;
        if !fill && self.break_fetches && first_open_of_range {
            end = range.start + (range.end - range.start) / 2;
        }
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_in_flight.fetch_max(now, Ordering::SeqCst);
        Ok(Part {
            data,
            at: range.start,
            end,
            head_end: if fill { self.fill_head } else { u64::MAX },
            gate: if fill {
                Arc::clone(&self.fill_gate)
            } else {
                Arc::clone(&self.fetch_gate)
            },
            gated_at_start: !fill,
            source: self.clone(),
        })
    }

    fn spawn(&self, builder: Builder) -> io::Result<StreamCache> {
        let source = self.clone();
        builder.spawn_ranged(self.len(), move |range| source.open(range))
    }
}

/// One open's reader.
struct Part {
    data: Arc<Vec<u8>>,
    at: u64,
    end: u64,
    head_end: u64,
    gate: Arc<Gate>,
    gated_at_start: bool,
    source: Source,
}

impl Read for Part {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.gated_at_start || self.at >= self.head_end {
            self.gate.wait();
            self.gated_at_start = false;
        }
        let stop = if self.at < self.head_end {
            self.end.min(self.head_end)
        } else {
            self.end
        };
        let n = buf.len().min((stop - self.at) as usize);
        buf[..n].copy_from_slice(&self.data[self.at as usize..self.at as usize + n]);
        self.at += n as u64;
        self.source.delivered.fetch_add(n as u64, Ordering::SeqCst);
        Ok(n)
    }
}

impl Drop for Part {
    fn drop(&mut self) {
        self.source.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

fn builder() -> Builder {
    StreamCache::builder()
        .chunk_size(16 << 10)
        .fetch_ahead(64 * KIB)
        .fetch_span(256 * KIB)
        .retry_backoff(std::time::Duration::from_millis(1))
}

#[test]
#[cfg_attr(
    miri,
    ignore = "megabytes: too slow under miri (tests/ranged_model.rs runs there)"
)]
fn a_read_far_ahead_is_fetched_while_the_fill_waits() {
    let source = Source::new(4 << 20).gate_fill(64 * KIB);
    let len = source.len();
    let cache = source.spawn(builder()).unwrap();
    let c = cache.clone();
    no_hang("the fill's head", move || c.wait_for(64 * KIB)).unwrap();
    let tail = {
        let cache = cache.clone();
        no_hang("a read at the end", move || {
            cache.slice(len - 100..len).map(|s| s.to_vec())
        })
    };
    assert_eq!(tail.unwrap(), source.data[len as usize - 100..]);
    // The fill is still held at 64 KiB: the end came from a fetch.
    assert_eq!(cache.available(), 64 * KIB);
    let present = cache.present();
    assert_eq!(present.len(), 2, "{present:?}");
    assert_eq!(present[1].end, len);
    assert_eq!(
        cache.status(),
        Status::Filling {
            available: cache.available()
        }
    );
    assert_eq!(cache.len(), None);

    source.fill_gate.open();
    assert_eq!(
        no_hang("completion", move || cache.wait_complete()).unwrap(),
        len
    );
    let cache = source.spawn(builder()).unwrap(); // a second cache over the same bytes
    assert_eq!(cache.slice(..).unwrap(), &source.data[..]);
}

/// A long read far ahead (a zip entry, a footer) is fetched by `max_fetches` transfers at
/// once, not one span after another: `read_at` with a long buffer, `slice`, and `prefetch`.
/// Every fetch is held at its first byte until all of them have opened, so a read that asked
/// for its spans one at a time would never see the second one open.
#[test]
#[cfg_attr(
    miri,
    ignore = "megabytes: too slow under miri (tests/ranged_model.rs runs there)"
)]
fn a_long_read_far_ahead_is_fetched_by_parallel_spans() {
    type Read = fn(&StreamCache, u64, u64) -> io::Result<Vec<u8>>;
    let reads: [(&str, Read); 3] = [
        ("read_at", |cache, at, n| {
            let mut buf = vec![0; n as usize];
            let got = cache.read_at(at, &mut buf)?;
            buf.truncate(got);
            Ok(buf)
        }),
        ("slice", |cache, at, n| {
            cache.slice(at..at + n).map(<[u8]>::to_vec)
        }),
        ("prefetch", |cache, at, n| {
            cache.prefetch(at..at + n)?;
            cache.slice(at..at + 1).map(<[u8]>::to_vec)
        }),
    ];
    for (what, read) in reads {
        let source = Source::new(4 << 20).gate_fill(64 * KIB).gate_fetches();
        let cache = source.spawn(builder().max_fetches(3)).unwrap();
        let (at, n) = (1 << 20, 1 << 20); // four spans of 256 KiB
        let reader = {
            let cache = cache.clone();
            std::thread::spawn(move || read(&cache, at, n))
        };
        // The fill and three fetches, all open before any fetch has sent a byte.
        eventually(&format!("{what}: three fetches open at once"), || {
            source.in_flight.load(Ordering::SeqCst) == 4
        });
        let fetched: Vec<_> = source
            .opened()
            .into_iter()
            .filter(|r| r.start != 0)
            .collect();
        assert_eq!(fetched.len(), 3, "{what}: {fetched:?}");
        assert!(
            fetched.iter().all(|r| at <= r.start && r.end <= at + n),
            "{what}: fetched outside the read: {fetched:?}"
        );
        source.fetch_gate.open();
        let got = no_hang("the read", move || reader.join().unwrap()).unwrap();
        assert!(!got.is_empty(), "{what}");
        assert_eq!(
            got,
            source.data[at as usize..at as usize + got.len()],
            "{what}"
        );
        assert!(source.most_in_flight.load(Ordering::SeqCst) <= 4, "{what}");
        source.fill_gate.open();
        let len = source.len();
        assert_eq!(
            no_hang("completion", move || cache.wait_complete()).unwrap(),
            len
        );
    }
}

/// A panic in a fetch's `open` fails the stream (the readers of the fetched range get its
/// message) instead of leaving a claim that nobody will ever write.
#[test]
fn a_panic_in_a_fetch_fails_the_stream() {
    let len = 1u64 << 20;
    let cache = builder()
        .spawn_ranged(len, move |range| {
            if range.start != 0 {
                panic!("fetch refused {range:?}");
            }
            // The fill: a byte every 5 ms, far from the end when the test is over.
            struct Slow;
            impl Read for Slow {
                fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                    buf[0] = 1;
                    Ok(1)
                }
            }
            Ok(Slow.take(range.end))
        })
        .unwrap();
    let tail = cache.clone();
    let err = no_hang("the far read", move || {
        tail.slice(len - 10..).map(<[u8]>::to_vec)
    })
    .unwrap_err();
    assert!(err.to_string().contains("fetch refused"), "{err}");
    assert!(matches!(cache.status(), Status::Failed { .. }));
}

/// A long wait or read that starts at the prefix is the fill's to serve: `wait_complete`,
/// `slice(..)` and `read_at(0, whole)` while the fill is held fetch nothing (with fetches for
/// the parts far ahead, each re-opening the fill past them, a whole download over a server that
/// limits each request would become a burst of fetches racing the fill, sending bytes twice).
#[test]
#[cfg_attr(
    miri,
    ignore = "megabytes: too slow under miri (tests/ranged_model.rs runs there)"
)]
fn a_long_wait_from_the_prefix_fetches_nothing() {
    let source = Source::new(4 << 20).gate_fill(64 * KIB);
    let len = source.len();
    let cache = source.spawn(builder().max_fetches(3)).unwrap();
    let waits: Vec<std::thread::JoinHandle<io::Result<u64>>> = vec![
        {
            let cache = cache.clone();
            std::thread::spawn(move || cache.wait_complete())
        },
        {
            let cache = cache.clone();
            std::thread::spawn(move || cache.slice(..).map(|s| s.len() as u64))
        },
        {
            let cache = cache.clone();
            std::thread::spawn(move || {
                let mut buf = vec![0; len as usize];
                cache.read_at(0, &mut buf).map(|n| n as u64)
            })
        },
    ];
    eventually("the fill held at its head", || {
        cache.available() == 64 * KIB
    });
    // A fetch would be asked for as each wait begins, before it parks: give them the time.
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(
        source.opened(),
        vec![0..len],
        "only the fill opened the source"
    );
    source.fill_gate.open();
    for wait in waits {
        assert!(no_hang("a wait", move || wait.join().unwrap()).unwrap() > 0);
    }
    assert_eq!(source.opened(), vec![0..len]);
    assert_eq!(
        source.delivered.load(Ordering::SeqCst),
        len,
        "every byte once"
    );
}

#[test]
#[cfg_attr(
    miri,
    ignore = "megabytes: too slow under miri (tests/ranged_model.rs runs there)"
)]
fn every_byte_is_the_sources_and_few_are_fetched_twice() {
    let source = Source::new(3 << 20).gate_fill(128 * KIB);
    let len = source.len();
    let cache = source.spawn(builder()).unwrap();
    let reads: Vec<_> = [len - 10, len / 2, len / 2 + 300 * KIB]
        .into_iter()
        .map(|at| {
            let cache = cache.clone();
            std::thread::spawn(move || {
                let mut buf = vec![0; 40_000];
                let n = cache.read_at(at, &mut buf).unwrap();
                (at, buf[..n].to_vec())
            })
        })
        .collect();
    for read in reads {
        let (at, bytes) = read.join().unwrap();
        assert!(!bytes.is_empty());
        assert_eq!(
            bytes,
            &source.data[at as usize..at as usize + bytes.len()],
            "at {at}"
        );
    }
    source.fill_gate.open();
    let all = no_hang("the whole stream", move || {
        cache.slice(..).map(|s| s.to_vec())
    });
    assert_eq!(all.unwrap(), *source.data);
    let delivered = source.delivered.load(Ordering::SeqCst);
    assert!(
        delivered <= len + 2 * 256 * KIB * 3,
        "{delivered} bytes for {len}"
    );
}

#[test]
#[cfg_attr(
    miri,
    ignore = "megabytes: too slow under miri (tests/ranged_model.rs runs there)"
)]
fn the_fill_reads_through_a_short_fetched_range_and_compares_it() {
    // Spans shorter than fetch_ahead: the fill reads through them.
    let source = Source::new(1 << 20).gate_fill(64 * KIB);
    let len = source.len();
    let cache = source.spawn(builder().fetch_span(32 * KIB)).unwrap();
    let at = len - 100 * KIB;
    let mut buf = [0u8; 1000];
    let c = cache.clone();
    let n = no_hang("a fetched read", move || {
        c.read_at(at, &mut buf).map(|n| (n, buf))
    });
    let (n, buf) = n.unwrap();
    assert_eq!(buf[..n], source.data[at as usize..at as usize + n]);
    source.fill_gate.open();
    let c = cache.clone();
    assert_eq!(
        no_hang("completion", move || c.wait_complete()).unwrap(),
        len
    );
    assert_eq!(cache.slice(..).unwrap(), &source.data[..]);
    // The fill opened the stream once: it read through the fetched range.
    assert_eq!(
        source
            .opened()
            .iter()
            .filter(|r| r.end == len && r.start < at)
            .count(),
        1
    );
    assert!(source.delivered.load(Ordering::SeqCst) >= len + 32 * KIB - 16 * KIB);
}

#[test]
#[cfg_attr(
    miri,
    ignore = "megabytes: too slow under miri (tests/ranged_model.rs runs there)"
)]
fn the_fill_reopens_past_a_long_fetched_range() {
    let source = Source::new(2 << 20).gate_fill(64 * KIB);
    let len = source.len();
    let cache = source.spawn(builder().fetch_span(512 * KIB)).unwrap();
    let at = 1 << 20;
    let c = cache.clone();
    no_hang("a fetched read", move || c.slice(at..at + 10).map(drop)).unwrap();
    let fetched = source
        .opened()
        .into_iter()
        .find(|r| r.start != 0)
        .expect("a fetch");
    assert!(fetched.end - fetched.start >= 64 * KIB, "{fetched:?}");
    // The whole fetch first: while it is still writing, the fill, finding only its first part
    // present, re-opens at the end of that part and reads the rest through (which is right,
    // and another test's case).
    let (c, range) = (cache.clone(), fetched.clone());
    no_hang("the whole fetch", move || c.slice(range).map(drop)).unwrap();
    source.fill_gate.open();
    let c = cache.clone();
    no_hang("completion", move || c.wait_complete()).unwrap();
    assert_eq!(cache.slice(..).unwrap(), &source.data[..]);
    assert!(
        source.opened().contains(&(fetched.end..len)),
        "the fill re-opened at the fetched range's end: {:?}",
        source.opened()
    );
    assert!(source.delivered.load(Ordering::SeqCst) <= len + 16 * KIB);
}

#[test]
#[cfg_attr(
    miri,
    ignore = "megabytes: too slow under miri (tests/ranged_model.rs runs there)"
)]
fn a_source_that_changed_fails_with_invalid_data_never_a_splice() {
    let mut source = Source::new(1 << 20).gate_fill(64 * KIB);
    let len = source.len();
    let mut changed = (*source.data).clone();
    changed[(len - 50 * KIB) as usize] ^= 0xFF;
    source.fill_data = Some(Arc::new(changed));
    let cache = source.spawn(builder().fetch_span(32 * KIB)).unwrap();
    let at = len - 60 * KIB;
    let c = cache.clone();
    let fetched = no_hang("a fetched read", move || {
        c.slice(at..at + 20 * KIB).map(|s| s.to_vec())
    });
    assert_eq!(
        fetched.unwrap(),
        &source.data[at as usize..(at + 20 * KIB) as usize]
    );
    source.fill_gate.open();
    let c = cache.clone();
    let error = no_hang("the end", move || c.wait_complete()).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidData, "{error}");
    assert!(
        error.to_string().contains(&(len - 50 * KIB).to_string()),
        "{error}"
    );
    // Every present byte is still readable, and is the first version.
    for range in cache.present() {
        let got = cache.slice(range.clone()).unwrap();
        assert_eq!(got, &source.data[range.start as usize..range.end as usize]);
    }
    assert!(matches!(
        cache.status(),
        Status::Failed {
            error: ErrorKind::InvalidData,
            ..
        }
    ));
    // The length stays known: past it is the end, whatever failed before it.
    let past = cache.slice(len - 10..len + 1).unwrap_err();
    assert_eq!(past.kind(), ErrorKind::UnexpectedEof, "{past}");
    let past = cache.read_exact_at(len, &mut [0]).unwrap_err();
    assert_eq!(past.kind(), ErrorKind::UnexpectedEof, "{past}");
    assert_eq!(cache.read_at(len, &mut [0; 4]).unwrap(), 0);
    let mut reader = cache.reader();
    reader.seek(SeekFrom::End(0)).unwrap();
    assert_eq!(reader.read(&mut [0; 4]).unwrap(), 0);
}

#[test]
#[cfg_attr(
    miri,
    ignore = "megabytes: too slow under miri (tests/ranged_model.rs runs there)"
)]
fn a_fetch_that_breaks_is_resumed() {
    let mut source = Source::new(2 << 20).gate_fill(64 * KIB);
    source.break_fetches = true;
    let len = source.len();
    let cache = source.spawn(builder()).unwrap();
    let c = cache.clone();
    let tail = no_hang("a fetched read", move || {
        c.slice(len - 200 * KIB..len).map(|s| s.to_vec())
    });
    assert_eq!(tail.unwrap(), &source.data[(len - 200 * KIB) as usize..]);
    let fetches: Vec<_> = source
        .opened()
        .into_iter()
        .filter(|r| r.start != 0)
        .collect();
    assert!(fetches.len() >= 2, "the break was resumed: {fetches:?}");
    assert_eq!(
        fetches[1].start,
        (fetches[0].start + fetches[0].end) / 2,
        "{fetches:?}"
    );
    source.fill_gate.open();
    no_hang("completion", move || cache.wait_complete()).unwrap();
}

#[test]
#[cfg_attr(
    miri,
    ignore = "megabytes: too slow under miri (tests/ranged_model.rs runs there)"
)]
fn a_fetch_error_reaches_exactly_the_reads_of_missing_bytes() {
    let mut source = Source::new(1 << 20).gate_fill(64 * KIB);
    source.fail_fetches = Some(ErrorKind::PermissionDenied);
    let len = source.len();
    let cache = source.spawn(builder()).unwrap();
    let c = cache.clone();
    let c2 = cache.clone();
    no_hang("the fill's head", move || c2.wait_for(64 * KIB)).unwrap();
    let error = no_hang("a fetched read", move || c.slice(len - 10..len).map(drop)).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::PermissionDenied, "{error}");
    assert_eq!(
        cache.slice(..64 * KIB).unwrap(),
        &source.data[..64 * KIB as usize]
    );
    assert_eq!(cache.present(), vec![0..64 * KIB]);
    let mut buf = [0u8; 10];
    assert_eq!(
        cache.read_at(100 * KIB, &mut buf).unwrap_err().kind(),
        ErrorKind::PermissionDenied
    );
    assert_eq!(cache.read_at(10, &mut buf).unwrap(), 10);
    assert_eq!(
        cache.status(),
        Status::Failed {
            available: 64 * KIB,
            error: ErrorKind::PermissionDenied
        }
    );
    source.fill_gate.open();
}

#[test]
#[cfg_attr(
    miri,
    ignore = "megabytes: too slow under miri (tests/ranged_model.rs runs there)"
)]
fn at_most_max_fetches_run_at_once() {
    let source = Source::new(8 << 20).gate_fill(64 * KIB).gate_fetches();
    let len = source.len();
    let cache = source.spawn(builder().max_fetches(2)).unwrap();
    let reads: Vec<_> = (1..=4)
        .map(|k| {
            let cache = cache.clone();
            std::thread::spawn(move || cache.slice(k * (1 << 20)..k * (1 << 20) + 10).map(drop))
        })
        .collect();
    eventually("two fetches open", || source.opened().len() >= 3);
    source.fetch_gate.open();
    for read in reads {
        no_hang("a fetched read", move || read.join().unwrap()).unwrap();
    }
    // The fill and two fetches at the most.
    assert!(source.most_in_flight.load(Ordering::SeqCst) <= 3);
    assert!(
        source.opened().len() >= 5,
        "four fetches in all: {:?}",
        source.opened()
    );
    source.fill_gate.open();
    assert_eq!(
        no_hang("completion", move || cache.wait_complete()).unwrap(),
        len
    );
}

#[test]
#[cfg_attr(
    miri,
    ignore = "megabytes: too slow under miri (tests/ranged_model.rs runs there)"
)]
fn seek_from_the_end_does_not_wait_for_the_end() {
    let source = Source::new(1 << 20).gate_fill(64 * KIB);
    let len = source.len();
    let cache = source.spawn(builder()).unwrap();
    let mut reader = cache.reader();
    let (pos, tail) = no_hang("seek and read at the end", move || {
        let pos = reader.seek(SeekFrom::End(-10)).unwrap();
        let mut tail = Vec::new();
        reader.read_to_end(&mut tail).unwrap();
        (pos, tail)
    });
    assert_eq!(pos, len - 10);
    assert_eq!(tail, &source.data[(len - 10) as usize..]);
    assert_eq!(cache.len(), None, "len() waits for every byte");
    assert_eq!(cache.known_len(), Some(len), "known_len() does not");
    source.fill_gate.open();
}

#[test]
#[cfg_attr(miri, ignore = "maps a file and reads /proc")]
fn dropping_every_handle_stops_the_fill_and_every_fetch() {
    // This cache's threads by name, and its spill file by directory: other tests run at once.
    let threads = || threads_named("sc-drop");
    let dir = tempfile::tempdir().unwrap();
    // The spill file is held by its mapping alone (its descriptor is closed once mapped).
    let spill_files = {
        let dir = dir.path().to_str().unwrap().to_owned();
        move || {
            let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
            maps.lines().filter(|line| line.contains(&dir)).count()
        }
    };
    let source = Source::new(4 << 20).gate_fill(64 * KIB).gate_fetches();
    let builder = builder()
        .memory_limit(0)
        .temp_dir(dir.path())
        .thread_name("sc-drop");
    let cache = source.spawn(builder).unwrap();
    assert_eq!(spill_files(), 1);
    let reader = {
        let cache = cache.clone();
        std::thread::spawn(move || cache.slice(3 << 20..(3 << 20) + 10).map(drop))
    };
    eventually("a fetch open", || source.opened().len() >= 2);
    assert_eq!(threads(), 2, "the fill and a fetch run");
    // The reader keeps the cache alive until its read returns: let it succeed.
    source.fetch_gate.open();
    no_hang("the fetched read", move || reader.join().unwrap()).unwrap();
    drop(cache);
    source.fill_gate.open();
    eventually("the fill and the fetches ended", || threads() == 0);
    eventually("the spill file unmapped", || spill_files() == 0);
    assert!(source.delivered.load(Ordering::SeqCst) < source.len());
}

#[test]
fn an_empty_source_is_a_complete_empty_stream() {
    let cache = StreamCache::builder()
        .spawn_ranged(0, |_| -> io::Result<Cursor<Vec<u8>>> {
            panic!("never opened")
        })
        .unwrap();
    assert_eq!(cache.wait_complete().unwrap(), 0);
    assert_eq!(cache.slice(..).unwrap(), b"");
    assert_eq!(cache.present(), vec![]);
    assert_eq!(cache.status(), Status::Complete { len: 0 });
}

#[test]
fn bad_arguments_are_refused_by_spawn() {
    let open = |_: Range<u64>| Ok(io::empty());
    let error = StreamCache::builder()
        .fetch_span(0)
        .spawn_ranged(10, open)
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
    let error = StreamCache::builder()
        .chunk_size(0)
        .spawn_ranged(10, open)
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
    let error = StreamCache::builder()
        .max_len(9)
        .spawn_ranged(10, open)
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::StorageFull);
    let cache = StreamCache::builder()
        .max_len(10)
        .spawn_ranged(10, |r: Range<u64>| Ok(io::repeat(3).take(r.end - r.start)));
    assert_eq!(cache.unwrap().slice(..).unwrap(), [3; 10]);
}

#[test]
#[cfg_attr(
    miri,
    ignore = "megabytes: too slow under miri (tests/ranged_model.rs runs there)"
)]
fn a_source_that_ends_early_is_a_break_and_more_is_never_read() {
    // Every open delivers at most 100 KiB, then ends: the fill resumes where it broke.
    let data = Arc::new(pattern(1 << 20));
    let opens = Arc::new(AtomicUsize::new(0));
    let (d, o) = (Arc::clone(&data), Arc::clone(&opens));
    let cache = StreamCache::builder()
        .retries(100)
        .retry_backoff(std::time::Duration::from_millis(1))
        .spawn_ranged(data.len() as u64, move |r: Range<u64>| {
            o.fetch_add(1, Ordering::SeqCst);
            let end = r.end.min(r.start + 100 * KIB);
            // More than asked, after the range: never read.
            let mut bytes = d[r.start as usize..end as usize].to_vec();
            if end == r.end {
                bytes.extend_from_slice(b"TRAILING GARBAGE");
            }
            Ok(Cursor::new(bytes))
        })
        .unwrap();
    assert_eq!(
        no_hang("all", move || cache.slice(..).map(|s| s.to_vec())).unwrap(),
        *data
    );
    assert!(opens.load(Ordering::SeqCst) >= 10);
}

#[test]
#[cfg_attr(
    miri,
    ignore = "megabytes: too slow under miri (tests/ranged_model.rs runs there)"
)]
fn async_reads_fetch_far_ahead_too() {
    let source = Source::new(2 << 20).gate_fill(64 * KIB);
    let len = source.len();
    let cache = source.spawn(builder()).unwrap();
    let c = cache.clone();
    let tail = no_hang("bytes_async at the end", move || {
        futures::executor::block_on(c.bytes_async(len - 300 * KIB..))
    });
    assert_eq!(tail.unwrap(), &source.data[(len - 300 * KIB) as usize..]);
    #[cfg(feature = "futures-io")]
    {
        use futures::{AsyncReadExt, AsyncSeekExt};
        let mut reader = cache.reader();
        let got = no_hang("an async seek and read in the middle", move || {
            futures::executor::block_on(async move {
                AsyncSeekExt::seek(&mut reader, SeekFrom::Start(len / 2)).await?;
                let mut buf = vec![0; 1000];
                AsyncReadExt::read_exact(&mut reader, &mut buf)
                    .await
                    .map(|()| buf)
            })
        });
        let at = (len / 2) as usize;
        assert_eq!(got.unwrap(), &source.data[at..at + 1000]);
    }
    assert!(cache.available() <= 64 * KIB, "the fill is still held");
    source.fill_gate.open();
}

/// `defer_fill`: until a reader needs a byte near the prefix, nothing is sent but what far
/// reads fetch; dropping every handle then ends the filler, which never opened the source.
#[test]
#[cfg_attr(miri, ignore = "megabytes and /proc: too slow under miri")]
fn a_deferred_fill_sends_only_what_far_reads_need() {
    let threads = || threads_named("sc-defer");
    let source = Source::new(4 << 20);
    let len = source.len();
    let builder = builder().defer_fill(true).thread_name("sc-defer");
    let cache = source.spawn(builder).unwrap();
    // A zip reader's way: the end first, then one entry far from the front.
    let tail = len - 1000;
    assert_eq!(cache.slice(tail..).unwrap(), &source.data[tail as usize..]);
    let entry = 2 << 20..(2 << 20) + 100 * KIB;
    assert_eq!(
        cache.slice(entry.clone()).unwrap(),
        &source.data[entry.start as usize..entry.end as usize]
    );
    assert_eq!(cache.available(), 0, "the fill has not started");
    drop(cache);
    eventually("the waiting filler and the fetches ended", || {
        threads() == 0
    });
    let opened = source.opened();
    assert!(
        opened.iter().all(|range| range.start != 0),
        "the fill never opened the source: {opened:?}"
    );
    // Each read brought at most one span (256 KiB) of its own.
    let delivered = source.delivered.load(Ordering::SeqCst);
    assert!(delivered <= 2 * 256 * KIB, "{delivered} bytes sent");
}

/// Every way of needing a byte only the fill brings starts a deferred fill: no such wait
/// hangs, and the fill then checks or skips what was fetched.
#[test]
#[cfg_attr(miri, ignore = "megabytes: too slow under miri")]
fn every_wait_on_the_prefix_starts_a_deferred_fill() {
    type Need = fn(&StreamCache) -> io::Result<()>;
    let needs: [(&str, Need, Builder); 8] = [
        ("wait_complete", |c| c.wait_complete().map(drop), builder()),
        ("slice at 0", |c| c.slice(..10).map(drop), builder()),
        (
            "read_at at 1000",
            |c| c.read_at(1000, &mut [0; 10]).map(drop),
            builder(),
        ),
        (
            "a Reader from 0",
            |c| c.reader().read_exact(&mut [0; 10]),
            builder(),
        ),
        (
            "bytes_async at 0",
            |c| futures::executor::block_on(c.bytes_async(..10)).map(drop),
            builder(),
        ),
        (
            "prefetch from 0",
            |c| {
                c.prefetch(..)?;
                eventually("the prefetch's fill", || c.available() > 0);
                Ok(())
            },
            builder(),
        ),
        (
            "a far read with max_fetches(0)",
            |c| c.slice(900 * KIB..900 * KIB + 10).map(drop),
            builder().max_fetches(0),
        ),
        (
            "wait_complete over connections(4)",
            |c| c.wait_complete().map(drop),
            builder().connections(4),
        ),
    ];
    for (what, need, builder) in needs {
        let source = Source::new(1 << 20);
        let len = source.len();
        let cache = source.spawn(builder.defer_fill(true)).unwrap();
        let fetches_allowed = what != "a far read with max_fetches(0)";
        if fetches_allowed {
            // Something fetched first, which the fill must leave as it is.
            let tail = len - 300 * KIB;
            let got = cache.slice(tail..).unwrap();
            assert_eq!(got, &source.data[tail as usize..], "{what}");
            assert_eq!(cache.available(), 0, "{what}: the fill waits");
        }
        let c = cache.clone();
        no_hang(what, move || need(&c)).unwrap();
        let c = cache.clone();
        no_hang(what, move || c.wait_complete()).unwrap();
        assert_eq!(cache.slice(..).unwrap(), &source.data[..], "{what}");
        let fill_opens = source.opened().iter().filter(|r| r.start == 0).count();
        assert_eq!(fill_opens, 1, "{what}: the fill started once");
    }
}
