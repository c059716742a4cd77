//! The limits workload (a) is compared with (L-mem, L-file), S, F and P, the bare pipeline;
//! and the prewarm that precedes every timed run.

use crate::contenders::mem_limit;
use crate::{fold, streamcache, Class, Generator, Run, Setup, ThreadUsage, CHUNK};
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

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
    fallocated_file_map(dir, len).map(|(_, map)| map)
}

/// As [`fallocated_map`], with the file.
pub fn fallocated_file_map(dir: &Path, len: usize) -> io::Result<(File, memmap2::MmapMut)> {
    let file = tempfile::tempfile_in(dir)?;
    fallocate(&file, len as u64)?;
    // SAFETY: the file is ours alone (unnamed) and reserved on disk up to `len`.
    let map = unsafe { memmap2::MmapOptions::new().len(len).map_mut(&file) }?;
    Ok((file, map))
}

/// Reads the whole generated stream into `dst` in 64 KiB reads.
pub(crate) fn read_into(dst: &mut [u8], len: u64) -> io::Result<()> {
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
/// or, with `pwrite`, into a pre-sized, fallocated temp file (like L-file) that readers read
/// through a mapping, storing an atomic mark after each piece; `readers` threads fold
/// `[pos, mark)` behind it, spinning and then yielding while
/// they are caught up. Nothing parks, nothing is locked, nothing grows: whatever this loses
/// against L-mem or L-file is what the readers' own memory traffic and CPU time cost the writer.
pub fn bare_pipeline(setup: &Setup, readers: usize, class: Class) -> io::Result<Run> {
    use std::sync::atomic::AtomicUsize;
    let len = usize::try_from(setup.len).map_err(|_| io::Error::other("too long"))?;
    let start = Instant::now();
    // The file (File class): written with `pwrite` from a small buffer, read through the
    // mapping, as streamcache's spill is (a write fault on the mapping zeroes each page first).
    let (file, mut map) = match class {
        Class::Memory => (None, huge_map(len)?),
        Class::File => {
            let (file, map) = fallocated_file_map(&setup.temp_dir, len)?;
            (Some(file), map)
        }
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
    let results = thread::scope(|scope| {
        let folders = (0..readers)
            .map(|_| {
                // Named, so that a profile tells P's readers apart (scripts/profile-a).
                thread::Builder::new()
                    .name("p-reader".to_owned())
                    .spawn_scoped(scope, move || {
                        ThreadUsage::of(|| {
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
            })
            .collect::<io::Result<Vec<_>>>()
            .expect("spawn P's readers (only fails when the machine is out of threads)");
        let mut source = Generator::new(setup.len);
        let mut buffer = vec![0u8; CHUNK];
        let mut pos = 0;
        while pos < len {
            let n = CHUNK.min(len - pos);
            let written = match &file {
                None => {
                    // SAFETY: `[pos, pos + n)` is at or above the mark, so no reader reads it
                    // yet, and this thread is the only writer.
                    let piece = unsafe { std::slice::from_raw_parts_mut(base.at(pos), n) };
                    source.read_exact(piece)
                }
                Some(file) => source.read_exact(&mut buffer[..n]).and_then(|()| {
                    std::os::unix::fs::FileExt::write_all_at(file, &buffer[..n], pos as u64)
                }),
            };
            if let Err(e) = written {
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
            .collect::<io::Result<Vec<_>>>()
    })?;
    let elapsed = start.elapsed();
    drop(map);
    let (sums, readers) = results.into_iter().unzip();
    Ok(Run {
        elapsed,
        sums,
        readers,
    })
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
