//! The contenders and their settings: streamcache, the hand-written `Mutex` + `Condvar`
//! stores, streamcatcher and stream-download, each at its best reasonable settings.

use crate::{GenStream, Generator, CHUNK};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use stream_download::storage::temp::TempStorageProvider;
use stream_download::{Settings, StreamDownload};
use streamcache::StreamCache;

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

/// streamcache's memory-only setting: the whole stream fits the arena.
pub(crate) fn mem_limit(setup: &Setup) -> usize {
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

impl<S> LockedReader<S> {
    /// A cursor at the start of the stream.
    pub fn new(locked: Arc<Locked<S>>) -> Self {
        Self { locked, pos: 0 }
    }
}

impl<S: Store> Read for LockedReader<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.locked.read_at(self.pos, buf)?;
        self.pos += n as u64;
        Ok(n)
    }
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
pub(crate) fn stream_download_settings<S>() -> Settings<S> {
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
