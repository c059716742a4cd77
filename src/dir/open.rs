//! Opening a shared entry: who writes it, decided by the kernel-released writer lock; the
//! entry file found valid, waited for, or (by the writer alone) created or rebuilt.
//!
//! Creation is atomic: the writer builds the whole file under a temporary name (header
//! written, every byte of it reserved on disk, invariant 5) and renames it into place, so no
//! process ever maps a half-made entry. A reader that finds no valid entry yet waits for the
//! writer to make one, or for the writer lock, if the would-be writer dies first.

use super::layout::{self, Layout};
use super::lock::{flock, still_at};
use super::wanted::{Role, Wanted};
use memmap2::{MmapOptions, MmapRaw};
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// An entry, open: its files (holding their locks while they are open) and its mapping.
pub(crate) struct Opened {
    pub(crate) role: Role,
    /// `NAME.lock`: held exclusive by the writer; a reader keeps it to take over.
    pub(crate) lock: File,
    /// `NAME.entry`: held shared while open, so that eviction leaves it alone.
    pub(crate) entry: File,
    pub(crate) map: MmapRaw,
    pub(crate) layout: Layout,
    pub(crate) path: PathBuf,
}

/// How long a reader waits between looks for an entry its writer is still making.
const CREATION_STEP: Duration = Duration::from_millis(2);

/// Opens (or creates) the entry `wanted` names.
///
/// # Errors
///
/// `InvalidInput` for a key and validator too long for the header; `StorageFull` (or the
/// OS's error) when the directory cannot hold a new entry; the OS's error for a directory
/// that cannot be made or locked.
pub(crate) fn open(wanted: &Wanted<'_>) -> io::Result<Opened> {
    if wanted.key.len() + wanted.validator.len() > layout::MAX_KEY_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "cache_key and validator are {} bytes; at most {} fit an entry's header",
                wanted.key.len() + wanted.validator.len(),
                layout::MAX_KEY_BYTES
            ),
        ));
    }
    std::fs::create_dir_all(wanted.dir).map_err(|e| named(e, "create", wanted.dir))?;
    let name = layout::entry_name(wanted.key, wanted.len, wanted.validator);
    let lock_path = wanted.dir.join(format!("{name}.lock"));
    let entry_path = wanted.dir.join(format!("{name}.entry"));
    let layout = Layout::new(wanted.len);
    loop {
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|e| named(e, "open", &lock_path))?;
        let writer = flock(&lock, libc::LOCK_EX, false)?;
        if writer && !still_at(&lock, &lock_path)? {
            continue; // Evicted between our open and our lock: take the new one's.
        }
        let attached = attach(&entry_path, &layout, wanted, writer)?;
        if writer && !still_at(&lock, &lock_path)? {
            continue; // Evicted while we attached: start again on the new files.
        }
        match attached {
            Some((entry, map)) => {
                let role = if writer { Role::Writer } else { Role::Reader };
                return Ok(Opened {
                    role,
                    lock,
                    entry,
                    map,
                    layout,
                    path: entry_path,
                });
            }
            None if writer => {
                let (entry, map) = create(&entry_path, &layout, wanted)?;
                // Eviction needs this writer lock to remove the lock file: held, it is ours.
                return Ok(Opened {
                    role: Role::Writer,
                    lock,
                    entry,
                    map,
                    layout,
                    path: entry_path,
                });
            }
            // The writer is making it (or died making it: then its lock is ours next time).
            None => std::thread::sleep(CREATION_STEP),
        }
    }
}

/// The entry at `path`, mapped and locked shared, if it is there and valid for `wanted`.
/// A writer (`writer`) also checks what only a writer may trust: a sealed span map against
/// its checksum, an unsealed one against the boot that wrote it. Invalid is `None`.
fn attach(
    path: &Path,
    layout: &Layout,
    wanted: &Wanted<'_>,
    writer: bool,
) -> io::Result<Option<(File, MmapRaw)>> {
    let entry = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(entry) => entry,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(named(e, "open", path)),
    };
    flock(&entry, libc::LOCK_SH, true)?;
    if !still_at(&entry, path)? || entry.metadata()?.len() != layout.file_len() {
        return Ok(None);
    }
    let map = map(&entry, layout, false)?;
    let keys = layout::key_bytes(wanted.key, wanted.validator);
    // SAFETY: the mapping is at least one page long (`file_len` > the header page) and lives
    // until `map` drops, after these borrows. Both ranges are the header's fixed part and its
    // key, written once before the file is renamed into place and never again (invariant 1,
    // for the header); the live words between them, which other processes write, are not
    // borrowed.
    let (fixed, keys) = unsafe {
        (
            std::slice::from_raw_parts(map.as_ptr(), layout::FIXED_BYTES),
            std::slice::from_raw_parts(map.as_ptr().add(layout::KEYS_AT), keys),
        )
    };
    if !layout::header_matches(fixed, keys, layout, wanted.key, wanted.validator) {
        return Ok(None);
    }
    if writer {
        let view = super::View::new(&map, layout);
        if !view.trusted() {
            return Ok(None);
        }
    }
    Ok(Some((entry, map)))
}

/// A new entry for `wanted`, renamed into place at `path` (over an invalid one).
fn create(path: &Path, layout: &Layout, wanted: &Wanted<'_>) -> io::Result<(File, MmapRaw)> {
    let dir = wanted.dir;
    let temp = tempfile::Builder::new()
        .prefix(".new-")
        .tempfile_in(dir)
        .map_err(|e| named(e, "create an entry in", dir))?;
    let file = temp.as_file();
    crate::storage::allocate(file, 0, layout.file_len()).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "cannot reserve {} bytes for a cache entry in {}: {e}",
                layout.file_len(),
                dir.display()
            ),
        )
    })?;
    let header = layout::header(layout, wanted.key, wanted.validator);
    std::os::unix::fs::FileExt::write_all_at(file, &header, 0)?;
    flock(file, libc::LOCK_SH, true)?;
    let entry = temp
        .persist(path)
        .map_err(|e| named(e.error, "rename into", dir))?;
    let map = map(&entry, layout, true)?;
    Ok((entry, map))
}

/// Maps the entry `file`. A `new` entry, whose every byte this process is about to write
/// through the mapping, is advised huge pages (Linux): its write faults then fill the page
/// cache with 2 MiB folios, which every other process's read faults map whole. A new process
/// reading a complete 256 MiB entry took 532 faults and read at 0.85-0.92x the writer's
/// process's rate; with the advice, 190 faults and 0.95-0.98x, and the fill itself no slower
/// (the report's (p)). Readers are not advised: in them the advice would make each fault on a
/// cold page cache read two 2 MiB folios, where a reader of a zip's directory wants 64 KiB.
fn map(file: &File, layout: &Layout, new: bool) -> io::Result<MmapRaw> {
    let len = usize::try_from(layout.file_len()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::OutOfMemory,
            "the entry is too long to map into this address space",
        )
    })?;
    let map = MmapOptions::new().len(len).map_raw(file)?;
    #[cfg(target_os = "linux")]
    if new {
        // Advice only: a kernel or filesystem without huge folios maps the same bytes.
        let _ = map.advise(memmap2::Advice::HugePage);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = new;
    Ok(map)
}

fn named(e: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("cannot {what} {}: {e}", path.display()))
}
