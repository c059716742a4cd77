//! Workload (a): readers each read the whole stream sequentially and fold every byte.

use crate::contenders::mem_limit;
use crate::{
    expected_sum, fold_bufread, fold_read, stream_download, streamcache, streamcatcher,
    tokio_runtime, Contender, Generator, Locked, LockedReader, Setup, Store, ThreadUsage,
};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, SamplingMode, Throughput};
use std::io;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// A criterion group for workload (a) and its like over a stream of `len` bytes: throughput in
/// bytes, 10 samples of one run each (a run reads the whole stream), 1 s warm-up, 3 s measured.
pub fn stream_group<'a>(
    c: &'a mut Criterion,
    name: impl Into<String>,
    len: u64,
) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .throughput(Throughput::Bytes(len))
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    group
}

/// The result of one run of workload (a).
#[derive(Debug)]
pub struct Run {
    /// From construction to the moment the last reader has folded the last byte.
    pub elapsed: Duration,
    /// Every reader's checksum.
    pub sums: Vec<u64>,
    /// What each reader thread used while it read.
    pub readers: Vec<ThreadUsage>,
}

impl Run {
    /// Every reader read the whole stream.
    pub fn check(&self, len: u64) -> io::Result<()> {
        let expected = expected_sum(len);
        match self.sums.iter().find(|&&s| s != expected) {
            None => Ok(()),
            Some(s) => Err(io::Error::other(format!(
                "a reader's checksum {s:#x} differs from the stream's {expected:#x}"
            ))),
        }
    }

    /// The stream's rate: its length over `elapsed`, in bytes per second.
    pub fn rate(&self, len: u64) -> f64 {
        len as f64 / self.elapsed.as_secs_f64()
    }
}

/// A reader thread running `fold`, which returns its checksum, measured. Named `reader`, so
/// that a profile tells it apart (scripts/profile-a).
pub(crate) fn spawn_reader(
    fold: impl FnOnce() -> io::Result<u64> + Send + 'static,
) -> thread::JoinHandle<io::Result<(u64, ThreadUsage)>> {
    thread::Builder::new()
        .name("reader".to_owned())
        .spawn(move || {
            let (sum, used) = ThreadUsage::of(fold);
            Ok((sum?, used))
        })
        .expect("spawn a reader thread")
}

/// The readers' checksums and usage, in a `Run` that took `elapsed`.
fn join_all(
    handles: Vec<thread::JoinHandle<io::Result<(u64, ThreadUsage)>>>,
    start: Instant,
) -> io::Result<Run> {
    let results = handles
        .into_iter()
        .map(|h| {
            h.join()
                .map_err(|_| io::Error::other("a reader panicked"))?
        })
        .collect::<io::Result<Vec<_>>>()?;
    let elapsed = start.elapsed();
    let (sums, readers) = results.into_iter().unzip();
    Ok(Run {
        elapsed,
        sums,
        readers,
    })
}

fn too_many(c: Contender, readers: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!("{} cannot have {readers} readers", c.name()),
    )
}

/// Workload (a): `readers` threads each read the whole stream sequentially and fold every byte.
pub fn sequential(c: Contender, setup: &Setup, readers: usize) -> io::Result<Run> {
    if c.max_readers().is_some_and(|max| readers > max) {
        return Err(too_many(c, readers));
    }
    match c {
        Contender::Naive => locked_sequential(setup, readers, |_| Vec::new()),
        Contender::Spooled => locked_sequential(setup, readers, |s| {
            tempfile::SpooledTempFile::new_in(s.spill_limit, &s.temp_dir)
        }),
        Contender::Streamcatcher => streamcatcher_sequential(setup, readers),
        Contender::StreamDownload => stream_download_sequential(setup),
        Contender::StreamcacheMem => streamcache_sequential(setup, readers, mem_limit(setup)),
        Contender::StreamcacheSpill => streamcache_sequential(setup, readers, setup.spill_limit),
    }
}

fn streamcache_sequential(setup: &Setup, readers: usize, memory_limit: usize) -> io::Result<Run> {
    let start = Instant::now();
    let cache = streamcache(setup, memory_limit)?;
    let handles = (0..readers)
        .map(|_| {
            let reader = cache.reader();
            spawn_reader(move || fold_bufread(reader))
        })
        .collect();
    join_all(handles, start)
}

fn locked_sequential<S: Store>(
    setup: &Setup,
    readers: usize,
    store: impl FnOnce(&Setup) -> S,
) -> io::Result<Run> {
    let start = Instant::now();
    let locked = Locked::new(store(setup));
    let filler = locked.spawn_filler(Generator::new(setup.len));
    let handles = (0..readers)
        .map(|_| {
            let reader = LockedReader::new(Arc::clone(&locked));
            spawn_reader(move || fold_read(reader))
        })
        .collect();
    let run = join_all(handles, start)?;
    filler
        .join()
        .map_err(|_| io::Error::other("filler panicked"))?;
    Ok(run)
}

fn streamcatcher_sequential(setup: &Setup, readers: usize) -> io::Result<Run> {
    let start = Instant::now();
    let catcher = streamcatcher(setup)?;
    let handles = (0..readers)
        .map(|_| {
            let handle = catcher.new_handle();
            spawn_reader(move || fold_read(handle))
        })
        .collect();
    join_all(handles, start)
}

fn stream_download_sequential(setup: &Setup) -> io::Result<Run> {
    let rt = tokio_runtime()?;
    let start = Instant::now();
    let reader = stream_download(&rt, setup)?;
    let (sum, used) = ThreadUsage::of(|| fold_read(reader));
    let elapsed = start.elapsed();
    Ok(Run {
        elapsed,
        sums: vec![sum?],
        readers: vec![used],
    })
}
