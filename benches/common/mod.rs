//! The contenders and workloads shared by the criterion benches (`benches/*.rs`) and by
//! `examples/bench_report.rs`, so that both measure exactly the same thing.
//!
//! Every contender gets the same source (an in-memory [`Generator`] whose bytes depend only on
//! their offset, so no contender's read sizes change what it sees), the same 64 KiB chunks, the
//! same length hint where it takes one, and every reader folds every byte it reads with [`fold`].
//! Each peer is given its best reasonable settings; the choices are written next to each one.

// Each bench target and the report use a different part of this module.
#![allow(dead_code)]

use bytes::Bytes;
use futures_core::Stream;
use std::convert::Infallible;
use std::fs::File;
use std::io::{self, BufRead, Read, Seek, SeekFrom, Write};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Barrier, Condvar, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::thread;
use std::time::{Duration, Instant};
use stream_download::source::SourceStream;
use stream_download::storage::temp::TempStorageProvider;
use stream_download::{Settings, StreamDownload};
use streamcache::StreamCache;

/// The size of one read from the source, for every contender (streamcache's default).
pub const CHUNK: usize = 64 << 10;
/// The size of one random read in workload (b).
pub const RANDOM_READ: usize = 4096;
/// The size of one publish in the wake-latency workload (c).
pub const WAKE_CHUNK: usize = 4096;

// ---------------------------------------------------------------------------------------------
// The source

const TABLE: usize = 1 << 20;
/// Odd, so that block starts walk the whole table.
const STRIDE: u64 = 4099 * 61;

/// 1 MiB of xorshift output, shared by every generator.
fn table() -> &'static Bytes {
    static TABLE_BYTES: OnceLock<Bytes> = OnceLock::new();
    TABLE_BYTES.get_or_init(|| {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut table = Vec::with_capacity(TABLE);
        while table.len() < TABLE {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            table.extend_from_slice(&state.to_le_bytes());
        }
        Bytes::from(table)
    })
}

/// Where byte `offset` of the stream lies in the table, and how many bytes from there are
/// contiguous in the table (at most to the end of the offset's 64 KiB block).
#[inline]
fn locate(offset: u64) -> (usize, usize) {
    let block = offset / CHUNK as u64;
    let within = (offset % CHUNK as u64) as usize;
    let at = ((block.wrapping_mul(STRIDE) % TABLE as u64) as usize + within) % TABLE;
    (at, (CHUNK - within).min(TABLE - at))
}

/// An in-memory source of `len` pseudo-random bytes at memcpy speed. Byte `i` depends only on
/// `i`, so every contender sees the same stream whatever its read sizes.
#[derive(Debug)]
pub struct Generator {
    pos: u64,
    len: u64,
    table: &'static [u8],
}

impl Generator {
    pub fn new(len: u64) -> Self {
        Self {
            pos: 0,
            len,
            table: table(),
        }
    }
}

impl Read for Generator {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = usize::try_from(self.len - self.pos).unwrap_or(usize::MAX);
        let n = left.min(buf.len());
        let mut done = 0;
        while done < n {
            let (at, run) = locate(self.pos + done as u64);
            let run = run.min(n - done);
            buf[done..done + run].copy_from_slice(&self.table[at..at + run]);
            done += run;
        }
        self.pos += n as u64;
        Ok(n)
    }
}

/// The same bytes as [`Generator`], as the `Stream` of `Bytes` that stream-download consumes.
/// Each item is a zero-copy slice of the table (the cheapest source a peer can have).
#[derive(Debug)]
pub struct GenStream {
    pos: u64,
    len: u64,
}

impl Stream for GenStream {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.pos >= self.len {
            return Poll::Ready(None);
        }
        let (at, run) = locate(self.pos);
        let run = run.min(usize::try_from(self.len - self.pos).unwrap_or(usize::MAX));
        self.pos += run as u64;
        Poll::Ready(Some(Ok(table().slice(at..at + run))))
    }
}

impl SourceStream for GenStream {
    type Params = u64;
    type StreamCreationError = Infallible;

    async fn create(len: u64) -> Result<Self, Infallible> {
        Ok(Self { pos: 0, len })
    }

    fn content_length(&self) -> Option<u64> {
        Some(self.len)
    }

    async fn seek_range(&mut self, start: u64, _end: Option<u64>) -> io::Result<()> {
        self.pos = start;
        Ok(())
    }

    async fn reconnect(&mut self, _current_position: u64) -> io::Result<()> {
        Ok(())
    }

    fn supports_seek(&self) -> bool {
        false
    }
}

/// The checksum every reader computes: the sum of all bytes. It does not depend on where reads
/// split the stream, so every contender's readers must agree with [`expected_sum`].
#[inline]
pub fn fold(mut sum: u64, bytes: &[u8]) -> u64 {
    // 65536 * 255 fits a u32 lane: the inner sum vectorises.
    for block in bytes.chunks(1 << 16) {
        let s: u32 = block.iter().map(|&b| u32::from(b)).sum();
        sum = sum.wrapping_add(u64::from(s));
    }
    sum
}

/// The checksum of the generated stream of `len` bytes (computed once per length).
pub fn expected_sum(len: u64) -> u64 {
    static CACHE: Mutex<Vec<(u64, u64)>> = Mutex::new(Vec::new());
    if let Some(&(_, sum)) = CACHE.lock().unwrap().iter().find(|(l, _)| *l == len) {
        return sum;
    }
    let sum = fold_read(Generator::new(len)).expect("the generator does not fail");
    CACHE.lock().unwrap().push((len, sum));
    sum
}

/// Folds everything a `BufRead` hands out, without copying it.
pub fn fold_bufread(mut reader: impl BufRead) -> io::Result<u64> {
    let mut sum = 0u64;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(sum);
        }
        sum = fold(sum, buf);
        let n = buf.len();
        reader.consume(n);
    }
}

/// Folds everything a `Read` copies into a 64 KiB buffer.
pub fn fold_read(mut reader: impl Read) -> io::Result<u64> {
    let mut buf = vec![0u8; CHUNK];
    let mut sum = 0u64;
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return Ok(sum),
            Ok(n) => sum = fold(sum, &buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Settings and contenders

/// What every workload needs to know.
#[derive(Debug, Clone)]
pub struct Setup {
    /// Stream length in bytes.
    pub len: u64,
    /// `memory_limit` of the spilling contenders (streamcache spill, SpooledTempFile).
    pub spill_limit: usize,
    /// Where temp files go (on disk, not tmpfs).
    pub temp_dir: PathBuf,
}

impl Setup {
    pub fn new(len: u64) -> Self {
        Self {
            len,
            spill_limit: 8 << 20,
            temp_dir: std::env::temp_dir(),
        }
    }
}

/// Which limit a contender is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Keeps the stream in anonymous memory: compared with L-mem.
    Memory,
    /// Keeps the stream in a temp file: compared with L-file.
    File,
}

/// What a user would otherwise pick, and streamcache itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contender {
    /// `Arc<(Mutex<Vec<u8>>, Condvar)>`, a filler thread, readers copying out under the lock.
    Naive,
    /// streamcatcher: many handles over one `Read`; readers pull from the source themselves.
    Streamcatcher,
    /// stream-download with temp-file storage, one reader (all it allows), tokio download task.
    StreamDownload,
    /// `SpooledTempFile` behind a `Mutex` (spilling past `spill_limit`), readers seek + read.
    Spooled,
    /// streamcache with `memory_limit` >= the stream: memory only.
    StreamcacheMem,
    /// streamcache with `memory_limit` = `spill_limit`: spills to its mapped temp file.
    StreamcacheSpill,
}

impl Contender {
    pub const ALL: [Contender; 6] = [
        Contender::Naive,
        Contender::Streamcatcher,
        Contender::StreamDownload,
        Contender::Spooled,
        Contender::StreamcacheMem,
        Contender::StreamcacheSpill,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Contender::Naive => "naive Mutex<Vec>+Condvar",
            Contender::Streamcatcher => "streamcatcher",
            Contender::StreamDownload => "stream-download (temp file)",
            Contender::Spooled => "SpooledTempFile+Mutex",
            Contender::StreamcacheMem => "streamcache (memory)",
            Contender::StreamcacheSpill => "streamcache (spill)",
        }
    }

    /// A short name for criterion ids and the command line.
    pub fn id(self) -> &'static str {
        match self {
            Contender::Naive => "naive",
            Contender::Streamcatcher => "streamcatcher",
            Contender::StreamDownload => "stream-download",
            Contender::Spooled => "spooled",
            Contender::StreamcacheMem => "streamcache-mem",
            Contender::StreamcacheSpill => "streamcache-spill",
        }
    }

    pub fn from_id(id: &str) -> Option<Contender> {
        Contender::ALL.into_iter().find(|c| c.id() == id)
    }

    pub fn class(self) -> Class {
        match self {
            Contender::Naive | Contender::Streamcatcher | Contender::StreamcacheMem => {
                Class::Memory
            }
            Contender::StreamDownload | Contender::Spooled | Contender::StreamcacheSpill => {
                Class::File
            }
        }
    }

    /// The most concurrent readers the contender can express, if limited.
    pub fn max_readers(self) -> Option<usize> {
        match self {
            // One `StreamDownload` is one cursor; it is not `Clone` and has no second handle.
            Contender::StreamDownload => Some(1),
            _ => None,
        }
    }

    pub fn is_streamcache(self) -> bool {
        matches!(
            self,
            Contender::StreamcacheMem | Contender::StreamcacheSpill
        )
    }
}

/// The result of one run of workload (a).
#[derive(Debug)]
pub struct Run {
    /// From construction to the moment the last reader has folded the last byte.
    pub elapsed: Duration,
    /// Every reader's checksum.
    pub sums: Vec<u64>,
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

fn join_all(handles: Vec<thread::JoinHandle<io::Result<u64>>>) -> io::Result<Vec<u64>> {
    handles
        .into_iter()
        .map(|h| {
            h.join()
                .map_err(|_| io::Error::other("a reader panicked"))?
        })
        .collect()
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

/// streamcache's memory-only setting: the whole stream fits the arena.
fn mem_limit(setup: &Setup) -> usize {
    usize::try_from(setup.len).expect("a memory-only stream fits the address space")
}

/// streamcache, as its README shows it: readers consume `fill_buf` (zero-copy).
pub fn streamcache(setup: &Setup, memory_limit: usize) -> io::Result<StreamCache> {
    StreamCache::builder()
        .memory_limit(memory_limit)
        .expected_len(setup.len)
        .temp_dir(&setup.temp_dir)
        .spawn(Generator::new(setup.len))
}

fn streamcache_sequential(setup: &Setup, readers: usize, memory_limit: usize) -> io::Result<Run> {
    let start = Instant::now();
    let cache = streamcache(setup, memory_limit)?;
    let handles = (0..readers)
        .map(|_| {
            let reader = cache.reader();
            thread::spawn(move || fold_bufread(reader))
        })
        .collect();
    let sums = join_all(handles)?;
    let elapsed = start.elapsed();
    Ok(Run { elapsed, sums })
}

// --- the hand-written contenders: one lock around a store, a filler thread, a condvar ---------

/// What the hand-written contenders keep the stream in.
pub trait Store: Send + 'static {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()>;
    fn read_at(&mut self, pos: u64, buf: &mut [u8]) -> io::Result<usize>;
}

impl Store for Vec<u8> {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.extend_from_slice(bytes);
        Ok(())
    }

    fn read_at(&mut self, pos: u64, buf: &mut [u8]) -> io::Result<usize> {
        let pos = pos as usize;
        let n = buf.len().min(self.len().saturating_sub(pos));
        buf[..n].copy_from_slice(&self[pos..pos + n]);
        Ok(n)
    }
}

impl Store for tempfile::SpooledTempFile {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.seek(SeekFrom::End(0))?;
        self.write_all(bytes)
    }

    fn read_at(&mut self, pos: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.seek(SeekFrom::Start(pos))?;
        self.read(buf)
    }
}

struct LockedState<S> {
    store: S,
    len: u64,
    done: bool,
    error: Option<io::ErrorKind>,
}

/// `Arc<(Mutex<store>, Condvar)>`, as a user writes it by hand.
pub struct Locked<S> {
    state: Mutex<LockedState<S>>,
    cond: Condvar,
}

impl<S: Store> Locked<S> {
    pub fn new(store: S) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(LockedState {
                store,
                len: 0,
                done: false,
                error: None,
            }),
            cond: Condvar::new(),
        })
    }

    /// A filler thread: reads 64 KiB from `source`, appends under the lock, wakes everyone.
    pub fn spawn_filler(
        self: &Arc<Self>,
        mut source: impl Read + Send + 'static,
    ) -> thread::JoinHandle<()> {
        let this = Arc::clone(self);
        thread::spawn(move || {
            let mut buf = vec![0u8; CHUNK];
            loop {
                let n = match source.read(&mut buf) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return this.finish(Some(e.kind())),
                };
                if n == 0 {
                    return this.finish(None);
                }
                let mut g = this.state.lock().unwrap();
                if let Err(e) = g.store.append(&buf[..n]) {
                    drop(g);
                    return this.finish(Some(e.kind()));
                }
                g.len += n as u64;
                drop(g);
                this.cond.notify_all();
            }
        })
    }

    fn finish(&self, error: Option<io::ErrorKind>) {
        let mut g = self.state.lock().unwrap();
        g.done = true;
        g.error = error;
        drop(g);
        self.cond.notify_all();
    }

    /// Waits until `target` bytes are stored or the stream ended; the stored length.
    pub fn wait_for(&self, target: u64) -> io::Result<u64> {
        let mut g = self.state.lock().unwrap();
        while g.len < target && !g.done {
            g = self.cond.wait(g).unwrap();
        }
        match g.error {
            Some(kind) if g.len < target => Err(kind.into()),
            _ => Ok(g.len),
        }
    }

    /// Copies bytes at `pos` out under the lock, waiting for at least one.
    pub fn read_at(&self, pos: u64, buf: &mut [u8]) -> io::Result<usize> {
        let mut g = self.state.lock().unwrap();
        while g.len <= pos && !g.done {
            g = self.cond.wait(g).unwrap();
        }
        if g.len <= pos {
            return match g.error {
                Some(kind) => Err(kind.into()),
                None => Ok(0),
            };
        }
        let n = buf
            .len()
            .min(usize::try_from(g.len - pos).unwrap_or(usize::MAX));
        g.store.read_at(pos, &mut buf[..n])
    }
}

/// A cursor over a [`Locked`] store.
pub struct LockedReader<S> {
    locked: Arc<Locked<S>>,
    pos: u64,
}

impl<S: Store> Read for LockedReader<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.locked.read_at(self.pos, buf)?;
        self.pos += n as u64;
        Ok(n)
    }
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
            let reader = LockedReader {
                locked: Arc::clone(&locked),
                pos: 0,
            };
            thread::spawn(move || fold_read(reader))
        })
        .collect();
    let sums = join_all(handles)?;
    let elapsed = start.elapsed();
    filler
        .join()
        .map_err(|_| io::Error::other("filler panicked"))?;
    Ok(Run { elapsed, sums })
}

// --- streamcatcher -----------------------------------------------------------------------------

/// streamcatcher at its best for this workload: one contiguous chunk sized by the length hint (as
/// streamcache's arena), 64 KiB source reads, and no finaliser copy into a second buffer.
pub fn streamcatcher(setup: &Setup) -> io::Result<streamcatcher::Catcher<Generator>> {
    streamcatcher::Config::new()
        .chunk_size(streamcatcher::GrowthStrategy::Geometric {
            start: CHUNK,
            max: 64 << 20,
        })
        .length_hint(Some(mem_limit(setup)))
        .read_burst_len(CHUNK)
        .use_backing(false)
        .build(Generator::new(setup.len))
        .map_err(|e| io::Error::other(format!("streamcatcher: {e}")))
}

fn streamcatcher_sequential(setup: &Setup, readers: usize) -> io::Result<Run> {
    let start = Instant::now();
    let catcher = streamcatcher(setup)?;
    let handles = (0..readers)
        .map(|_| {
            let handle = catcher.new_handle();
            thread::spawn(move || fold_read(handle))
        })
        .collect();
    let sums = join_all(handles)?;
    let elapsed = start.elapsed();
    Ok(Run { elapsed, sums })
}

// --- stream-download ---------------------------------------------------------------------------

/// The tokio runtime that runs stream-download's download task: one worker thread, as the
/// filler of the other contenders. Made before the clock starts (an async program has one).
pub fn tokio_runtime() -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_time()
        .build()
}

/// stream-download's settings at their best here: no prefetch delay, writes of 64 KiB (the
/// default is 4 KiB with a yield after each).
fn stream_download_settings<S>() -> Settings<S> {
    Settings::default()
        .prefetch_bytes(0)
        .batch_write_size(NonZeroUsize::new(CHUNK).expect("non-zero"))
}

/// A `StreamDownload` over the generated stream, with temp-file storage in `setup.temp_dir`.
pub fn stream_download(
    rt: &tokio::runtime::Runtime,
    setup: &Setup,
) -> io::Result<StreamDownload<TempStorageProvider>> {
    rt.block_on(StreamDownload::new::<GenStream>(
        setup.len,
        TempStorageProvider::new_in(&setup.temp_dir),
        stream_download_settings(),
    ))
    .map_err(|e| io::Error::other(format!("stream-download: {e}")))
}

fn stream_download_sequential(setup: &Setup) -> io::Result<Run> {
    let rt = tokio_runtime()?;
    let start = Instant::now();
    let reader = stream_download(&rt, setup)?;
    let sum = fold_read(reader)?;
    let elapsed = start.elapsed();
    Ok(Run {
        elapsed,
        sums: vec![sum],
    })
}

// ---------------------------------------------------------------------------------------------
// Limits, S and F

/// The physical limits workload (a) is compared with: one copy of the stream, no readers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// `io::copy` of the stream into a pre-sized `Vec<u8>` (fresh anonymous memory).
    MemVec,
    /// The stream read into a fresh anonymous mapping with `MADV_HUGEPAGE`.
    MemHuge,
    /// The stream read into a pre-sized, fallocated, mapped temp file.
    FileMap,
    /// The stream `pwrite`n in 64 KiB pieces into a pre-sized, fallocated temp file.
    FilePwrite,
}

impl Limit {
    pub const ALL: [Limit; 4] = [
        Limit::MemVec,
        Limit::MemHuge,
        Limit::FileMap,
        Limit::FilePwrite,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Limit::MemVec => "io::copy into Vec",
            Limit::MemHuge => "read into MADV_HUGEPAGE mmap",
            Limit::FileMap => "read into fallocated mapped file",
            Limit::FilePwrite => "pwrite into fallocated file",
        }
    }

    pub fn id(self) -> &'static str {
        match self {
            Limit::MemVec => "mem-vec",
            Limit::MemHuge => "mem-hugepage",
            Limit::FileMap => "file-mmap",
            Limit::FilePwrite => "file-pwrite",
        }
    }

    pub fn class(self) -> Class {
        match self {
            Limit::MemVec | Limit::MemHuge => Class::Memory,
            Limit::FileMap | Limit::FilePwrite => Class::File,
        }
    }
}

/// Reserves `[0, len)` of `file` on disk.
pub fn fallocate(file: &File, len: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let len = libc::off_t::try_from(len).map_err(|_| io::Error::other("too long"))?;
    // SAFETY: a plain system call on a file descriptor we own; no memory is passed.
    match unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len) } {
        0 => Ok(()),
        code => Err(io::Error::from_raw_os_error(code)),
    }
}

/// `len` bytes of fresh anonymous memory with `MADV_HUGEPAGE`, as streamcache's arena asks
/// for. Advice only: where the kernel refuses, this is plain anonymous memory.
pub fn huge_map(len: usize) -> io::Result<memmap2::MmapMut> {
    let map = memmap2::MmapOptions::new().len(len).map_anon()?;
    let _ = map.advise(memmap2::Advice::HugePage);
    Ok(map)
}

/// An unnamed temp file in `dir`, reserved on disk up to `len` and mapped writable.
pub fn fallocated_map(dir: &Path, len: usize) -> io::Result<memmap2::MmapMut> {
    let file = tempfile::tempfile_in(dir)?;
    fallocate(&file, len as u64)?;
    // SAFETY: the file is ours alone (unnamed) and reserved on disk up to `len`.
    unsafe { memmap2::MmapOptions::new().len(len).map_mut(&file) }
}

/// Reads the whole generated stream into `dst` in 64 KiB reads.
fn read_into(dst: &mut [u8], len: u64) -> io::Result<()> {
    let mut source = Generator::new(len);
    for piece in dst.chunks_mut(CHUNK) {
        source.read_exact(piece)?;
    }
    Ok(())
}

/// The time of one copy of the stream the way `limit` does it, setup (allocation, file creation,
/// reservation, mapping) included, teardown not.
pub fn limit(limit: Limit, setup: &Setup) -> io::Result<Duration> {
    let len = setup.len;
    let size = usize::try_from(len).map_err(|_| io::Error::other("too long"))?;
    let start = Instant::now();
    match limit {
        Limit::MemVec => {
            let mut v = Vec::with_capacity(size);
            io::copy(&mut Generator::new(len), &mut v)?;
            let elapsed = start.elapsed();
            std::hint::black_box(&v);
            Ok(elapsed)
        }
        Limit::MemHuge => {
            let mut map = huge_map(size)?;
            read_into(&mut map, len)?;
            let elapsed = start.elapsed();
            std::hint::black_box(&map[..]);
            Ok(elapsed)
        }
        Limit::FileMap => {
            let mut map = fallocated_map(&setup.temp_dir, size)?;
            read_into(&mut map, len)?;
            let elapsed = start.elapsed();
            std::hint::black_box(&map[..]);
            Ok(elapsed)
        }
        Limit::FilePwrite => {
            use std::os::unix::fs::FileExt;
            let file = tempfile::tempfile_in(&setup.temp_dir)?;
            fallocate(&file, len)?;
            let mut source = Generator::new(len);
            let mut buf = vec![0u8; CHUNK];
            let mut pos = 0u64;
            loop {
                let n = source.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                file.write_all_at(&buf[..n], pos)?;
                pos += n as u64;
            }
            Ok(start.elapsed())
        }
    }
}

/// Touches `bytes` of fresh anonymous memory (huge-page advised, as the arena and L-mem are),
/// then frees it, so that the timed run right after allocates memory the host has backed.
///
/// Why: on a VM whose balloon reports free pages to the host (virtio free page reporting, as on
/// the machines these numbers come from), memory freed a few seconds ago is handed back, and
/// the next first touch of it costs a host fault. Which contender meets such memory is luck (a
/// 1 GiB copy measured 0.3 GiB/s cold and 6 GiB/s warm), so every timed run of the report is
/// preceded by the same warm-up, limits included.
pub fn prewarm(bytes: u64) -> io::Result<()> {
    let len = usize::try_from(bytes).map_err(|_| io::Error::other("too long"))?;
    if len == 0 {
        return Ok(());
    }
    let mut map = huge_map(len)?;
    for page in map.chunks_mut(4096) {
        page[0] = 1;
    }
    std::hint::black_box(&map[..]);
    Ok(())
}

/// P: the dataflow of workload (a) with no library at all, the machine's own bound for it. One
/// writer copies the stream 64 KiB at a time into fresh memory (huge-page advised, like L-mem)
/// or into a pre-sized, fallocated, mapped temp file (like L-file), storing an atomic mark after
/// each piece; `readers` threads fold `[pos, mark)` behind it, spinning and then yielding while
/// they are caught up. Nothing parks, nothing is locked, nothing grows: whatever this loses
/// against L-mem or L-file is what the readers' own memory traffic and CPU time cost the writer.
pub fn bare_pipeline(setup: &Setup, readers: usize, class: Class) -> io::Result<Run> {
    use std::sync::atomic::AtomicUsize;
    let len = usize::try_from(setup.len).map_err(|_| io::Error::other("too long"))?;
    let start = Instant::now();
    let mut map = match class {
        Class::Memory => huge_map(len)?,
        Class::File => fallocated_map(&setup.temp_dir, len)?,
    };
    /// The mapping's base, shared by the writer (below the mark: never) and the readers.
    #[derive(Clone, Copy)]
    struct Base(*mut u8);
    // SAFETY: the writer writes only `[mark, len)` and readers read only `[0, mark)`, the mark
    // published with Release after each write and loaded with Acquire before each read.
    unsafe impl Send for Base {}
    unsafe impl Sync for Base {}
    impl Base {
        // A method, so that closures capture the whole `Base` (Send), not its pointer field.
        fn at(self, pos: usize) -> *mut u8 {
            // SAFETY: callers pass `pos <= len`, inside (or one past) the mapping.
            unsafe { self.0.add(pos) }
        }
    }
    let base = Base(map.as_mut_ptr());
    let mark = AtomicUsize::new(0);
    let mark = &mark;
    let sums = thread::scope(|scope| {
        let folders: Vec<_> = (0..readers)
            .map(|_| {
                scope.spawn(move || {
                    let (mut pos, mut sum, mut idle) = (0usize, 0u64, 0u32);
                    while pos < len {
                        let end = mark.load(Ordering::Acquire);
                        if end == pos {
                            idle += 1;
                            if idle < 64 {
                                std::hint::spin_loop();
                            } else {
                                thread::yield_now();
                            }
                            continue;
                        }
                        idle = 0;
                        // SAFETY: `[pos, end)` is below the published mark: written, never
                        // written again, and the mapping outlives this scope.
                        let bytes = unsafe {
                            std::slice::from_raw_parts(base.at(pos).cast_const(), end - pos)
                        };
                        sum = fold(sum, bytes);
                        pos = end;
                    }
                    sum
                })
            })
            .collect();
        let mut source = Generator::new(setup.len);
        let mut pos = 0;
        while pos < len {
            let n = CHUNK.min(len - pos);
            // SAFETY: `[pos, pos + n)` is at or above the mark, so no reader reads it yet, and
            // this thread is the only writer.
            let piece = unsafe { std::slice::from_raw_parts_mut(base.at(pos), n) };
            if let Err(e) = source.read_exact(piece) {
                // Let the folders finish (over bytes never written: their sums will not match).
                mark.store(len, Ordering::Release);
                return Err(e);
            }
            pos += n;
            mark.store(pos, Ordering::Release);
        }
        folders
            .into_iter()
            .map(|f| f.join().map_err(|_| io::Error::other("a folder panicked")))
            .collect::<io::Result<Vec<u64>>>()
    })?;
    let elapsed = start.elapsed();
    drop(map);
    Ok(Run { elapsed, sums })
}

/// A buffer holding the whole stream, every page touched.
pub fn present_buffer(len: u64) -> io::Result<Vec<u8>> {
    let mut v = vec![0u8; usize::try_from(len).map_err(|_| io::Error::other("too long"))?];
    read_into(&mut v, len)?;
    Ok(v)
}

/// S: the time one core takes to fold an already-present buffer.
pub fn fold_time(buf: &[u8]) -> Duration {
    let start = Instant::now();
    let sum = fold(0, std::hint::black_box(buf));
    let elapsed = start.elapsed();
    std::hint::black_box(sum);
    elapsed
}

/// F: the time streamcache's filler takes to store the stream with no reader.
pub fn filler_alone(setup: &Setup, spill: bool) -> io::Result<Duration> {
    let memory_limit = if spill {
        setup.spill_limit
    } else {
        mem_limit(setup)
    };
    let start = Instant::now();
    let cache = streamcache(setup, memory_limit)?;
    cache.wait_complete()?;
    Ok(start.elapsed())
}

// ---------------------------------------------------------------------------------------------
// Workload (b): random 4 KiB reads over the completed stream

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

/// This thread's CPU time.
pub fn thread_cpu_time() -> Duration {
    // SAFETY: `clock_gettime` only writes into the zeroed struct we pass.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: a valid clock id and out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
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

// ---------------------------------------------------------------------------------------------
// Workload (c): wake latency

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

/// Whether a path is on a tmpfs (where a "file" would really be memory).
// `f_type` and `TMPFS_MAGIC` have different integer types on different targets.
#[allow(clippy::unnecessary_cast)]
pub fn is_tmpfs(path: &Path) -> bool {
    // SAFETY: `statfs` only writes into the zeroed struct we pass.
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: `c` is a valid NUL-terminated path and `stat` a valid out-pointer.
    let rc = unsafe { libc::statfs(c.as_ptr(), &mut stat) };
    rc == 0 && stat.f_type as i64 == libc::TMPFS_MAGIC as i64
}
