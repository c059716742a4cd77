//! Workload (b): random 4 KiB reads over the completed stream.

use crate::contenders::mem_limit;
use crate::limits::read_into;
use crate::{
    huge_map, present_buffer, stream_download, streamcache, streamcatcher, thread_cpu_time,
    tokio_runtime, Contender, Generator, Locked, Setup,
};
use std::io::{self, Read, Seek, SeekFrom};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};
use stream_download::storage::temp::TempStorageProvider;
use stream_download::StreamDownload;
use streamcache::StreamCache;

/// The size of one random read in workload (b).
pub const RANDOM_READ: usize = 4096;

/// A completed stream, ready for random reads; or the baseline: a plain buffer to `memcpy` from.
pub enum Prepared {
    Memcpy(Vec<u8>),
    MemcpyHuge(memmap2::MmapMut),
    Streamcache(StreamCache),
    Naive(Arc<Locked<Vec<u8>>>),
    Spooled(Arc<Locked<tempfile::SpooledTempFile>>),
    Streamcatcher(streamcatcher::Catcher<Generator>),
    /// Boxed: the runtime is large. The download drops before its runtime (field order).
    StreamDownload(
        Box<(
            Mutex<StreamDownload<TempStorageProvider>>,
            tokio::runtime::Runtime,
        )>,
    ),
}

impl Prepared {
    /// `None`: the memcpy baseline.
    pub fn new(c: Option<Contender>, setup: &Setup) -> io::Result<Prepared> {
        let len = setup.len;
        Ok(match c {
            None => Prepared::Memcpy(present_buffer(len)?),
            Some(c @ (Contender::StreamcacheMem | Contender::StreamcacheSpill)) => {
                let limit = if c == Contender::StreamcacheMem {
                    mem_limit(setup)
                } else {
                    setup.spill_limit
                };
                let cache = streamcache(setup, limit)?;
                cache.wait_complete()?;
                Prepared::Streamcache(cache)
            }
            Some(Contender::Naive) => {
                let locked = Locked::new(Vec::new());
                locked.spawn_filler(Generator::new(len)).join().unwrap();
                locked.wait_for(len)?;
                Prepared::Naive(locked)
            }
            Some(Contender::Spooled) => {
                let locked = Locked::new(tempfile::SpooledTempFile::new_in(
                    setup.spill_limit,
                    &setup.temp_dir,
                ));
                locked.spawn_filler(Generator::new(len)).join().unwrap();
                locked.wait_for(len)?;
                Prepared::Spooled(locked)
            }
            Some(Contender::Streamcatcher) => {
                let mut catcher = streamcatcher(setup)?;
                catcher.load_all();
                Prepared::Streamcatcher(catcher)
            }
            Some(Contender::StreamDownload) => {
                let rt = tokio_runtime()?;
                let mut download = stream_download(&rt, setup)?;
                // Read it through once: then every byte is downloaded.
                io::copy(&mut download, &mut io::sink())?;
                Prepared::StreamDownload(Box::new((Mutex::new(download), rt)))
            }
        })
    }

    /// The memcpy baseline from a fresh `MADV_HUGEPAGE` mapping holding the stream (fewer TLB
    /// misses than a `Vec` on 4 KiB pages, as streamcache's arena).
    pub fn new_memcpy_hugepage(setup: &Setup) -> io::Result<Prepared> {
        let size = usize::try_from(setup.len).map_err(|_| io::Error::other("too long"))?;
        let mut map = huge_map(size)?;
        read_into(&mut map, setup.len)?;
        Ok(Prepared::MemcpyHuge(map))
    }

    /// The most threads that can read at once.
    pub fn max_threads(&self) -> usize {
        match self {
            Prepared::StreamDownload(..) => 1,
            _ => usize::MAX,
        }
    }

    /// `threads` threads each do `ops` 4 KiB reads at random offsets.
    pub fn random_reads(&self, len: u64, threads: usize, ops: u64) -> io::Result<RandomRun> {
        if threads > self.max_threads() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("at most {} reader(s)", self.max_threads()),
            ));
        }
        match self {
            Prepared::Memcpy(data) => memcpy(data, len, threads, ops),
            Prepared::MemcpyHuge(map) => memcpy(map, len, threads, ops),
            Prepared::Streamcache(cache) => parallel(len, threads, ops, || {
                move |off: u64, buf: &mut [u8]| match cache.read_at(off, buf)? {
                    RANDOM_READ => Ok(()),
                    n => Err(io::Error::other(format!("short read: {n}"))),
                }
            }),
            Prepared::Naive(locked) => parallel(len, threads, ops, || {
                move |off: u64, buf: &mut [u8]| locked.read_at(off, buf).map(drop)
            }),
            Prepared::Spooled(locked) => parallel(len, threads, ops, || {
                move |off: u64, buf: &mut [u8]| locked.read_at(off, buf).map(drop)
            }),
            Prepared::Streamcatcher(catcher) => parallel(len, threads, ops, || {
                let mut handle = catcher.new_handle();
                move |off: u64, buf: &mut [u8]| {
                    handle.seek(SeekFrom::Start(off))?;
                    handle.read_exact(buf)
                }
            }),
            Prepared::StreamDownload(boxed) => parallel(len, threads, ops, || {
                let mut download = boxed.0.lock().unwrap();
                move |off: u64, buf: &mut [u8]| {
                    download.seek(SeekFrom::Start(off))?;
                    download.read_exact(buf)
                }
            }),
        }
    }
}

fn memcpy(data: &[u8], len: u64, threads: usize, ops: u64) -> io::Result<RandomRun> {
    parallel(len, threads, ops, || {
        move |off: u64, buf: &mut [u8]| {
            let off = off as usize;
            buf.copy_from_slice(&data[off..off + buf.len()]);
            Ok(())
        }
    })
}

/// The time `threads` threads took for `ops` random reads each.
#[derive(Debug, Clone, Copy)]
pub struct RandomRun {
    /// From the moment all threads are ready to the last one done.
    pub wall: Duration,
    /// The CPU time of all reading threads together: the cost of the reads, whatever else runs
    /// on the machine (waiting for a lock asleep is not counted; spinning is).
    pub cpu: Duration,
}

/// Runs `ops` random reads on each of `threads` threads, each with its own reader from `make`
/// (made on that thread); returns the wall time once all threads are ready.
fn parallel<M, R>(len: u64, threads: usize, ops: u64, make: M) -> io::Result<RandomRun>
where
    M: Fn() -> R + Sync,
    R: FnMut(u64, &mut [u8]) -> io::Result<()>,
{
    let span = len - RANDOM_READ as u64;
    let barrier = Barrier::new(threads + 1);
    thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (barrier, make) = (&barrier, &make);
                scope.spawn(move || {
                    let mut read = make();
                    let mut buf = [0u8; RANDOM_READ];
                    let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ (t as u64 + 1).wrapping_mul(0xD1B5);
                    let mut sum = 0u64;
                    barrier.wait();
                    let cpu = thread_cpu_time();
                    for _ in 0..ops {
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        read(rng % span, &mut buf)?;
                        // Every byte must be copied: without this, a `memcpy` of which one
                        // byte is used shrinks to a one-byte load.
                        std::hint::black_box(&mut buf);
                        sum = sum.wrapping_add(u64::from(buf[0]));
                    }
                    std::hint::black_box(sum);
                    Ok::<_, io::Error>(thread_cpu_time() - cpu)
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let mut cpu = Duration::ZERO;
        for h in handles {
            cpu += h
                .join()
                .map_err(|_| io::Error::other("a reader panicked"))??;
        }
        Ok(RandomRun {
            wall: start.elapsed(),
            cpu,
        })
    })
}
