//! Workload (c): wake latency, from the publisher's stamp to the parked reader's return.

use crate::contenders::stream_download_settings;
use crate::{tokio_runtime, Contender, Locked, Setup};
use bytes::Bytes;
use futures_core::Stream;
use std::convert::Infallible;
use std::io::{self, Read};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::task::{Context, Poll};
use std::thread;
use std::time::{Duration, Instant};
use stream_download::source::SourceStream;
use stream_download::storage::temp::TempStorageProvider;
use stream_download::StreamDownload;
use streamcache::StreamCache;

/// The size of one publish in the wake-latency workload (c).
pub const WAKE_CHUNK: usize = 4096;

/// Who is woken in workload (c).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WakeTarget {
    /// The floor: a bare parking_lot `Mutex` + `Condvar`, one waiter, one notifier.
    ParkingLot,
    /// The same floor in the contenders' shape: the notifier is a thread of its own, woken by the
    /// same gate as their fillers, that stamps and notifies, then waits on the gate again. On a
    /// VM the woken reader's vCPU may be halted in one shape and running in the other, and a
    /// halted one costs tens of µs to wake: this floor pays what the fillers pay.
    ParkingLotFiller,
    /// A contender's reader parked for the next 4 KiB, woken when the filler publishes it.
    Contender(Contender),
}

impl WakeTarget {
    /// Every target: the two floors, then each contender (streamcatcher last: it has no filler
    /// to wake anyone, so it is only listed as n/a).
    pub const ALL: [WakeTarget; 8] = [
        WakeTarget::ParkingLot,
        WakeTarget::ParkingLotFiller,
        WakeTarget::Contender(Contender::StreamcacheMem),
        WakeTarget::Contender(Contender::StreamcacheSpill),
        WakeTarget::Contender(Contender::Naive),
        WakeTarget::Contender(Contender::Spooled),
        WakeTarget::Contender(Contender::StreamDownload),
        WakeTarget::Contender(Contender::Streamcatcher),
    ];

    pub fn name(self) -> &'static str {
        match self {
            WakeTarget::ParkingLot => "parking_lot Condvar (bare)",
            WakeTarget::ParkingLotFiller => "parking_lot Condvar (bare, filler)",
            WakeTarget::Contender(c) => c.name(),
        }
    }

    pub fn id(self) -> &'static str {
        match self {
            WakeTarget::ParkingLot => "parking_lot",
            WakeTarget::ParkingLotFiller => "parking_lot-filler",
            WakeTarget::Contender(c) => c.id(),
        }
    }
}

/// A clock both sides read: the notifier stamps the moment it publishes, the woken reader
/// subtracts the stamp from the moment it returns.
struct Clock {
    base: Instant,
    stamp: AtomicU64,
}

impl Clock {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            base: Instant::now(),
            stamp: AtomicU64::new(0),
        })
    }

    fn now(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }

    fn stamp(&self) {
        self.stamp.store(self.now(), Ordering::SeqCst);
    }

    fn since_stamp(&self) -> Duration {
        Duration::from_nanos(self.now().saturating_sub(self.stamp.load(Ordering::SeqCst)))
    }
}

/// A source that hands out 4 KiB each time it is released, stamping the clock as it returns
/// the bytes (just before the filler stores and publishes them).
struct Gate {
    rx: mpsc::Receiver<()>,
    clock: Arc<Clock>,
}

impl Read for Gate {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.rx.recv().is_err() {
            return Ok(0);
        }
        let n = WAKE_CHUNK.min(buf.len());
        buf[..n].fill(0xA5);
        self.clock.stamp();
        Ok(n)
    }
}

/// [`Gate`] as a `Stream` for stream-download.
struct GateStream {
    rx: tokio::sync::mpsc::UnboundedReceiver<()>,
    clock: Arc<Clock>,
    chunk: Bytes,
}

impl Stream for GateStream {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(())) => {
                self.clock.stamp();
                Poll::Ready(Some(Ok(self.chunk.clone())))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl SourceStream for GateStream {
    type Params = Self;
    type StreamCreationError = Infallible;

    async fn create(this: Self) -> Result<Self, Infallible> {
        Ok(this)
    }

    fn content_length(&self) -> Option<u64> {
        None
    }

    async fn seek_range(&mut self, _start: u64, _end: Option<u64>) -> io::Result<()> {
        Ok(())
    }

    async fn reconnect(&mut self, _current_position: u64) -> io::Result<()> {
        Ok(())
    }

    fn supports_seek(&self) -> bool {
        false
    }
}

/// Workload (c): `iters` times, the reader parks waiting for the next 4 KiB; after `park` the
/// source is released; the latency is from the publisher's stamp to the reader's return.
/// The first few wake-ups (warm-up) are not returned.
pub fn wake_latencies(
    target: WakeTarget,
    setup: &Setup,
    iters: usize,
    park: Duration,
) -> io::Result<Vec<Duration>> {
    const WARM_UP: usize = 5;
    let total = iters + WARM_UP;
    let clock = Clock::new();
    let (lat_tx, lat_rx) = mpsc::channel::<io::Result<Duration>>();

    // `wait(k)` runs on the reader thread and returns once byte `k * WAKE_CHUNK` is readable;
    // `release()` runs on this thread and makes the next 4 KiB arrive.
    let spawn_reader = |mut wait: Box<dyn FnMut(u64) -> io::Result<()> + Send>| {
        let (clock, lat_tx) = (Arc::clone(&clock), lat_tx.clone());
        thread::spawn(move || {
            for k in 1..=total as u64 {
                let result = wait(k * WAKE_CHUNK as u64).map(|()| clock.since_stamp());
                let failed = result.is_err();
                if lat_tx.send(result).is_err() || failed {
                    return;
                }
            }
        })
    };
    let mut keep_alive: Vec<Box<dyn std::any::Any>> = Vec::new();
    let mut release: Box<dyn FnMut()>;
    let reader;
    match target {
        WakeTarget::ParkingLot | WakeTarget::ParkingLotFiller => {
            let pair = Arc::new((parking_lot::Mutex::new(0u64), parking_lot::Condvar::new()));
            let waiter = Arc::clone(&pair);
            reader = spawn_reader(Box::new(move |target| {
                let (lock, cond) = &*waiter;
                let mut g = lock.lock();
                while *g < target {
                    cond.wait(&mut g);
                }
                Ok(())
            }));
            let clock = Arc::clone(&clock);
            let notify = move || {
                let (lock, cond) = &*pair;
                clock.stamp();
                *lock.lock() += WAKE_CHUNK as u64;
                cond.notify_one();
            };
            if target == WakeTarget::ParkingLot {
                release = Box::new(notify);
            } else {
                let (tx, rx) = mpsc::channel::<()>();
                keep_alive.push(Box::new(thread::spawn(move || {
                    while rx.recv().is_ok() {
                        notify();
                    }
                })));
                release = Box::new(move || {
                    let _ = tx.send(());
                });
            }
        }
        WakeTarget::Contender(c) => {
            let (tx, rx) = mpsc::channel();
            let gate = Gate {
                rx,
                clock: Arc::clone(&clock),
            };
            match c {
                Contender::StreamcacheMem | Contender::StreamcacheSpill => {
                    let limit = if c == Contender::StreamcacheMem {
                        total * WAKE_CHUNK
                    } else {
                        0
                    };
                    let cache = StreamCache::builder()
                        .memory_limit(limit)
                        .temp_dir(&setup.temp_dir)
                        .spawn(gate)?;
                    reader = spawn_reader(Box::new(move |target| cache.wait_for(target).map(drop)));
                    release = Box::new(move || {
                        let _ = tx.send(());
                    });
                }
                Contender::Naive | Contender::Spooled => {
                    let waiter: Box<dyn FnMut(u64) -> io::Result<()> + Send> =
                        if c == Contender::Naive {
                            let locked = Locked::new(Vec::new());
                            locked.spawn_filler(gate);
                            Box::new(move |target| locked.wait_for(target).map(drop))
                        } else {
                            let locked = Locked::new(tempfile::SpooledTempFile::new_in(
                                setup.spill_limit,
                                &setup.temp_dir,
                            ));
                            locked.spawn_filler(gate);
                            Box::new(move |target| locked.wait_for(target).map(drop))
                        };
                    reader = spawn_reader(waiter);
                    release = Box::new(move || {
                        let _ = tx.send(());
                    });
                }
                Contender::StreamDownload => {
                    drop((tx, gate));
                    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
                    let stream = GateStream {
                        rx,
                        clock: Arc::clone(&clock),
                        chunk: Bytes::from(vec![0xA5u8; WAKE_CHUNK]),
                    };
                    let rt = tokio_runtime()?;
                    let mut download = rt
                        .block_on(StreamDownload::new::<GateStream>(
                            stream,
                            TempStorageProvider::new_in(&setup.temp_dir),
                            stream_download_settings(),
                        ))
                        .map_err(|e| io::Error::other(format!("stream-download: {e}")))?;
                    keep_alive.push(Box::new(rt));
                    let mut buf = vec![0u8; WAKE_CHUNK];
                    reader = spawn_reader(Box::new(move |_target| download.read_exact(&mut buf)));
                    release = Box::new(move || {
                        let _ = tx.send(());
                    });
                }
                Contender::Streamcatcher => {
                    return Err(io::Error::new(
                        io::ErrorKind::Unsupported,
                        "no filler: a reader at the frontier reads the source itself",
                    ))
                }
            }
        }
    }
    drop(lat_tx);
    let mut latencies = Vec::with_capacity(iters);
    for k in 0..total {
        thread::sleep(park);
        release();
        let latency = lat_rx
            .recv()
            .map_err(|_| io::Error::other("the reader stopped"))??;
        if k >= WARM_UP {
            latencies.push(latency);
        }
    }
    drop(release); // ends the source: the filler completes
    reader
        .join()
        .map_err(|_| io::Error::other("the reader panicked"))?;
    drop(keep_alive);
    Ok(latencies)
}

/// The `q`-quantile (0..=1) of `samples`, sorting them.
pub fn quantile(samples: &mut [Duration], q: f64) -> Duration {
    samples.sort_unstable();
    if samples.is_empty() {
        return Duration::ZERO;
    }
    let i = ((samples.len() - 1) as f64 * q).round() as usize;
    samples[i]
}
