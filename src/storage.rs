//! Where the bytes live: an anonymous arena up to `memory_limit`, then one unnamed, memory-mapped
//! temp file holding the whole stream `[0, len)` contiguously.
//!
//! [`Storage`] is the shared, read side: the base address of the newest region, and every region
//! ever installed, kept mapped until the storage itself is dropped (invariant 1). [`Writer`] is the
//! filler's side: it alone decides where the next bytes go, lets the source write them through a
//! raw region of the arena at or above the mark (invariant 2), or past the arena `pwrite`s them
//! to the file, whose space it reserves first (invariant 5). Readers read the file through the
//! mapping, which shares the page cache with `pwrite`.

use crate::settings::Settings;
use crate::sync::Mutex;
use memmap2::{MmapOptions, MmapRaw};
use std::fs::File;
use std::io;
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};

/// The platform's file reservation and mapping rules, in one place.
#[cfg_attr(unix, path = "os/unix.rs")]
#[cfg_attr(windows, path = "os/windows.rs")]
mod os;

/// Address space reserved for the first file mapping (where the platform lets a mapping reach
/// past the end of the file). It costs nothing but address space, and lets the file grow under
/// one mapping. Sized from the address space: 64 GiB of 64-bit's 128 TiB; on 32-bit targets,
/// 256 MiB, a sixteenth of 4 GiB, so that a few caches and the rest of the process still fit.
#[cfg(target_pointer_width = "64")]
const FIRST_MAP_LEN: u64 = 64 << 30;
#[cfg(not(target_pointer_width = "64"))]
const FIRST_MAP_LEN: u64 = 256 << 20;

/// The longest mapping, and so the longest stream: a slice, and a pointer offset into one
/// allocation, may not exceed `isize::MAX` bytes (2 GiB on 32-bit targets).
const MAX_MAP_LEN: u64 = isize::MAX as u64;

/// The largest `expected_len` taken as a hint for the first mapping and reservation.
const MAX_HINT: u64 = {
    let hint = FIRST_MAP_LEN * 16;
    if hint < MAX_MAP_LEN {
        hint
    } else {
        MAX_MAP_LEN
    }
};

/// When the address space has no room for the mapping wanted, lengths between it and the one
/// needed are tried, halving the extra each time, until the extra is below this.
const MIN_MAP_EXTRA: u64 = 1 << 20;

/// The smallest step the file's reservation grows by: small steps cost 3× here (DESIGN.md).
const MIN_RESERVE_STEP: u64 = 256 << 20;
/// The largest step: reserving far more than the stream needs wastes disk.
const MAX_RESERVE_STEP: u64 = 1 << 30;

/// The largest read past the arena, whatever `chunk_size`: the filler's buffer for it is
/// anonymous memory beyond `memory_limit`, and must stay a small constant (invariant 7).
const MAX_SPILL_READ: usize = 1 << 20;

/// Below this, an arena that cannot be mapped is an error rather than a smaller arena.
const MIN_ARENA: usize = 1 << 20;

/// One mapping: the arena, or one mapping of the spill file.
#[derive(Debug)]
struct Region {
    /// Never read: held so the mapping outlives every slice into it.
    _map: MmapRaw,
}

/// The read side, shared by every handle, every `Bytes` and the filler.
#[derive(Debug)]
pub(crate) struct Storage {
    /// Base of the newest region. The region it points to covers every byte below any mark
    /// published after it was stored (the writer installs a region before writing into it).
    base: AtomicPtr<u8>,
    /// Every region ever installed, unmapped only when the storage drops (invariant 1).
    regions: Mutex<Vec<Region>>,
}

impl Storage {
    pub(crate) fn new() -> Self {
        Self {
            base: AtomicPtr::new(ptr::null_mut()),
            regions: Mutex::new(Vec::new()),
        }
    }

    /// The bytes `[start, end)`.
    ///
    /// # Safety
    ///
    /// `start <= end`, and `end` is at or below a mark the caller loaded (with Acquire) from the
    /// watermark before this call. Those bytes are written and never change again (invariant 1,
    /// invariant 2), and the newest region, loaded here after that mark, covers them.
    #[inline]
    pub(crate) unsafe fn slice(&self, start: u64, end: u64) -> &[u8] {
        debug_assert!(start <= end);
        if start == end {
            return &[];
        }
        // Acquire: pairs with the Release store in `install`, so the region is fully mapped.
        let base = self.base.load(Ordering::Acquire);
        debug_assert!(!base.is_null());
        // SAFETY: by this function's contract `[start, end)` lies below a published mark, so the
        // newest region covers it (invariant 1), its bytes are initialised and no longer written
        // (invariant 2), and the region stays mapped as long as `self` (regions are only unmapped
        // on drop). The offsets fit in `usize` and stay within `isize::MAX`: the region is that
        // large, and no region is longer than `MAX_MAP_LEN` (`map_file`, `arena`).
        unsafe { std::slice::from_raw_parts(base.add(start as usize), (end - start) as usize) }
    }

    /// Makes `map` the newest region and keeps it mapped until the storage drops.
    fn install(&self, map: MmapRaw) -> *mut u8 {
        self.install_at(map, 0)
    }

    /// As [`install`](Self::install), for a stream that starts `offset` bytes into `map` (a
    /// shared entry's, after its header and span map).
    fn install_at(&self, map: MmapRaw, offset: usize) -> *mut u8 {
        debug_assert!(offset <= map.len());
        // SAFETY: `offset` is within the mapping (the entry's layout puts the stream after
        // its header and span map, inside the file that `map` covers).
        let base = unsafe { map.as_mut_ptr().add(offset) };
        self.regions.lock().push(Region { _map: map });
        self.base.store(base, Ordering::Release);
        base
    }
}

/// The spill file and its one growing mapping.
struct Spill {
    file: File,
    /// Length of the newest mapping (0 before the first).
    map_len: u64,
    /// File bytes `[0, reserved)` are allocated on disk: writing there cannot raise SIGBUS.
    reserved: u64,
}

/// The filler's side of the storage. Only the filler thread has one.
pub(crate) struct Writer {
    /// Bytes `[0, pos)` are written; the next write goes at `pos`.
    pos: u64,
    arena: Option<(*mut u8, u64)>,
    spill: Option<Spill>,
    /// Where bytes past the arena are read before they are written to the file.
    buffer: Vec<u8>,
}

// SAFETY: the raw pointers point into mappings owned by the shared `Storage`, which the filler
// keeps alive with its own `Arc` for as long as the writer exists; a `Writer` is used by one
// thread at a time (it moves into the filler thread once).
unsafe impl Send for Writer {}

impl Writer {
    pub(crate) fn new() -> Self {
        Self {
            pos: 0,
            arena: None,
            spill: None,
            buffer: Vec::new(),
        }
    }

    /// Bytes written so far.
    pub(crate) fn pos(&self) -> u64 {
        self.pos
    }

    /// Reads the next bytes with `read` (given room for at most `want` > 0 bytes) and stores
    /// them at `pos`; returns how many it read, 0 at the end of the source. It may offer less
    /// room than `want` (at the end of the arena, or past it more than `MAX_SPILL_READ`),
    /// never none.
    ///
    /// In the arena, `read` writes straight into the storage, above every published mark, where
    /// no reader can hold a reference (invariant 2). Past it, `read` writes into the writer's
    /// own buffer, which is then written to the file with `pwrite`: a write fault on the file
    /// mapping zeroes each page before the bytes land in it, where `pwrite` copies once, 1.3x
    /// as fast here (DESIGN.md, "What the machine allows"). Readers still read through the
    /// mapping, which shares the page cache. Only a read that brings bytes creates the spill
    /// file: a stream that ends exactly at the memory limit never needs one.
    pub(crate) fn write_next(
        &mut self,
        storage: &Storage,
        settings: &Settings,
        want: usize,
        read: impl FnOnce(&mut [u8]) -> io::Result<usize>,
    ) -> io::Result<usize> {
        debug_assert!(want > 0);
        let n = match self.arena_room(storage, settings)? {
            Some((base, room)) => {
                let len = (want as u64).min(room) as usize;
                // SAFETY: `base` is the start of the arena, a live mapping (kept in `storage`)
                // at least `pos + len` long. Nothing else writes there (invariant 2: one writer)
                // and no reader reads at or above `pos`, the next mark.
                let region =
                    unsafe { std::slice::from_raw_parts_mut(base.add(self.pos as usize), len) };
                read(region)?
            }
            None => {
                // A large `chunk_size` must not make a large buffer (invariant 7).
                let want = want.min(MAX_SPILL_READ);
                if self.buffer.len() < want {
                    self.buffer.resize(want, 0);
                }
                let n = read(&mut self.buffer[..want])?;
                if n > 0 {
                    let end = self.pos.checked_add(n as u64).ok_or_else(too_long)?;
                    self.spill(storage, settings, end)?;
                    let spill = self.spill.as_ref().expect("created by `spill`");
                    os::write_at(&spill.file, &self.buffer[..n], self.pos)
                        .map_err(|e| write_error(e, settings))?;
                }
                n
            }
        };
        self.pos += n as u64;
        Ok(n)
    }

    /// The arena's capacity: as mapped once it exists, as configured before.
    fn arena_cap(&self, settings: &Settings) -> u64 {
        match (self.arena, settings.max_len) {
            (Some((_, cap)), _) => cap,
            (None, Some(max)) => (settings.memory_limit as u64).min(max),
            (None, None) => settings.memory_limit as u64,
        }
    }

    /// The arena's base and the room left in it at `pos`, or `None` once the stream has
    /// outgrown it (or there is none: `memory_limit` 0).
    fn arena_room(
        &mut self,
        storage: &Storage,
        settings: &Settings,
    ) -> io::Result<Option<(*mut u8, u64)>> {
        let cap = self.arena_cap(settings);
        if self.pos >= cap {
            return Ok(None);
        }
        let (base, cap) = self.arena(storage, cap)?;
        Ok((self.pos < cap).then(|| (base, cap - self.pos)))
    }

    fn arena(&mut self, storage: &Storage, cap: u64) -> io::Result<(*mut u8, u64)> {
        if let Some(arena) = self.arena {
            return Ok(arena);
        }
        // A limit larger than the address space allows (say `usize::MAX` for "never spill")
        // gets the largest arena that can be mapped; the rest of the stream spills.
        let mut len = usize::try_from(cap)
            .unwrap_or(usize::MAX)
            .min(isize::MAX as usize);
        let map = loop {
            match map_anon(len) {
                Ok(map) => break map,
                Err(e) if len > MIN_ARENA && e.kind() == io::ErrorKind::OutOfMemory => len /= 2,
                Err(e) => return Err(e),
            }
        };
        let arena = (storage.install(map), len as u64);
        self.arena = Some(arena);
        Ok(arena)
    }

    /// Creates the spill file (copying the arena into it) if it does not exist yet, and
    /// reserves and maps it up to `end`.
    fn spill(&mut self, storage: &Storage, settings: &Settings, end: u64) -> io::Result<()> {
        let first = self.spill.is_none();
        if first {
            self.spill = Some(Spill {
                file: create_file(settings)?,
                map_len: 0,
                reserved: 0,
            });
        }
        let hint = hint(settings, end);
        let spill = self.spill.as_mut().expect("created above");
        // The first reservation is sized by the hint, when there is one.
        let goal = if first { hint } else { end };
        reserve(spill, goal, end, settings)?;
        if end > spill.map_len {
            let want = if os::MAP_PAST_END_OF_FILE {
                // Far ahead of the file, so that the file grows under one mapping.
                let len = spill.map_len.saturating_mul(2).max(FIRST_MAP_LEN).max(hint);
                settings.max_len.map_or(len, |max| len.min(max.max(end)))
            } else {
                // Views end at the file: the whole reservation, which covers `end`.
                spill.reserved
            };
            if first {
                if let Some((arena, _)) = self.arena {
                    // SAFETY: the arena's `[0, pos)` is published: written, and never written
                    // again (invariant 1), so it may be read while readers read it too.
                    let written = unsafe { std::slice::from_raw_parts(arena, self.pos as usize) };
                    os::write_at(&spill.file, written, 0).map_err(|e| write_error(e, settings))?;
                }
            }
            let map = map_file(&spill.file, want, end)?;
            let map_len = map.len() as u64;
            // Earlier mappings stay mapped in `storage` (invariant 1); readers move to this
            // one, which holds the whole stream.
            storage.install(map);
            spill.map_len = map_len;
        }
        Ok(())
    }
}

/// A ranged stream's storage, laid out once at spawn for its known length: in the arena when
/// the whole stream fits `memory_limit`, else all of it in the spill file, reserved for the
/// whole length at once (invariant 5) and mapped once. Several writers write into it, each
/// inside its own claim (invariant 2, generalized).
#[derive(Debug)]
pub(crate) struct Fixed {
    base: *mut u8,
    len: u64,
}

// SAFETY: `base` points into a mapping that `Storage` keeps until it drops, and the `Fixed`
// lives in the same `Shared` as that `Storage`. Writers on several threads write through it
// only inside their own, disjoint claims (invariant 2, generalized), readers read only
// published bytes through `Storage::slice`.
unsafe impl Send for Fixed {}
// SAFETY: as for `Send`: `&Fixed` hands out regions only through the `unsafe fn region`,
// whose callers hold the claim on the bytes.
unsafe impl Sync for Fixed {}

impl Fixed {
    /// Lays out `len` bytes and installs them in `storage`.
    ///
    /// # Errors
    ///
    /// `StorageFull` (or the OS's error) when the spill file cannot be reserved for `len`;
    /// `OutOfMemory` when `len` cannot be mapped.
    pub(crate) fn new(storage: &Storage, settings: &Settings, len: u64) -> io::Result<Fixed> {
        if len == 0 {
            return Ok(Fixed {
                base: ptr::null_mut(),
                len,
            });
        }
        let map = if len <= settings.memory_limit as u64 && len <= isize::MAX as u64 {
            map_anon(len as usize)?
        } else {
            // All of it at once: a disk that cannot hold the stream fails here, at spawn.
            let file = create_file(settings)?;
            os::allocate(&file, 0, len).map_err(|e| reserve_error(e, len, settings))?;
            map_file(&file, len, len)?
        };
        Ok(Fixed {
            base: storage.install(map),
            len,
        })
    }

    /// A ranged stream of `len` bytes that lives in a shared entry's mapping, from `offset`
    /// (`src/dir/`): the entry's file is reserved on disk for all of it (invariant 5).
    pub(crate) fn in_entry(storage: &Storage, map: MmapRaw, offset: u64, len: u64) -> Fixed {
        let offset = usize::try_from(offset).expect("the entry is mapped: its offsets fit");
        Fixed {
            base: storage.install_at(map, offset),
            len,
        }
    }

    /// The stream's length.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// The bytes `[start, end)`, to be written.
    ///
    /// # Safety
    ///
    /// `start < end <= len`, and the caller holds the claim on `[start, end)` (invariant 2,
    /// generalized): no other writer writes there, and no reader reads there until the caller
    /// publishes it. The slice must be dropped before that publish.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn region(&self, start: u64, end: u64) -> &mut [u8] {
        debug_assert!(start < end && end <= self.len);
        // SAFETY: the mapping covers `[0, len)` and stays mapped as long as the storage; by this
        // function's contract the caller alone accesses `[start, end)` until it publishes.
        unsafe {
            std::slice::from_raw_parts_mut(self.base.add(start as usize), (end - start) as usize)
        }
    }
}

/// Reserves `[from, to)` of `file` on disk (invariant 5): for a shared entry's file.
#[cfg(unix)]
pub(crate) fn allocate(file: &File, from: u64, to: u64) -> io::Result<()> {
    os::allocate(file, from, to)
}

/// The unnamed spill file (invariant 4); an error names the directory as it was given.
fn create_file(settings: &Settings) -> io::Result<File> {
    let dir = settings.temp_dir();
    tempfile::tempfile_in(&dir).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot create the spill file in {}: {e}", dir.display()),
        )
    })
}

/// How much of the file to reserve and map at first: the `expected_len` hint, unless it is
/// beyond anything plausible (`u64::MAX` for "unknown", say), and at least `end`.
fn hint(settings: &Settings, end: u64) -> u64 {
    settings
        .expected_len
        .filter(|&len| len <= MAX_HINT)
        .unwrap_or(0)
        .max(end)
}

/// Reserves file space up to at least `end`, aiming for `goal` or one large step, whichever is
/// more (invariant 5). On a nearly full disk a large reservation may fail where the exact
/// amount still fits: then only the exact amount is taken.
fn reserve(spill: &mut Spill, goal: u64, end: u64, settings: &Settings) -> io::Result<()> {
    if end <= spill.reserved {
        return Ok(());
    }
    let step = spill.reserved.clamp(MIN_RESERVE_STEP, MAX_RESERVE_STEP);
    let mut goal = goal.max(spill.reserved.saturating_add(step));
    // Never more than can be mapped, or than the stream may hold.
    goal = goal
        .min(settings.max_len.unwrap_or(MAX_MAP_LEN).min(MAX_MAP_LEN))
        .max(end);
    let result = os::allocate(&spill.file, spill.reserved, goal)
        .or_else(|_| os::allocate(&spill.file, spill.reserved, end).map(|()| goal = end));
    result.map_err(|e| reserve_error(e, end, settings))?;
    spill.reserved = goal;
    Ok(())
}

/// A failed write to the spill file, naming the directory as it was given.
fn write_error(e: io::Error, settings: &Settings) -> io::Error {
    io::Error::new(
        e.kind(),
        format!(
            "cannot write the spill file in {}: {e}",
            settings.temp_dir().display()
        ),
    )
}

/// A failed reservation, naming the directory as it was given.
fn reserve_error(e: io::Error, end: u64, settings: &Settings) -> io::Error {
    io::Error::new(
        e.kind(),
        format!(
            "cannot reserve {end} bytes of spill file in {}: {e}",
            settings.temp_dir().display()
        ),
    )
}

/// Maps the file's first `want` bytes or, where the address space has no room for that many,
/// as many as it has room for, but at least `need`. A stream that no longer fits one contiguous
/// mapping (`need` bytes) fails cleanly with `OutOfMemory`; earlier mappings stay as they are.
fn map_file(file: &File, want: u64, need: u64) -> io::Result<MmapRaw> {
    if need > MAX_MAP_LEN {
        return Err(too_long());
    }
    let mut len = want.clamp(need, MAX_MAP_LEN);
    loop {
        // The cast is lossless: `len <= MAX_MAP_LEN`, which is `isize::MAX`.
        match MmapOptions::new().len(len as usize).map_raw(file) {
            Ok(map) => return Ok(map),
            Err(e) if e.kind() == io::ErrorKind::OutOfMemory && len > need => {
                let extra = (len - need) / 2;
                len = need + if extra < MIN_MAP_EXTRA { 0 } else { extra };
            }
            Err(e) if e.kind() == io::ErrorKind::OutOfMemory => {
                return Err(io::Error::new(
                    io::ErrorKind::OutOfMemory,
                    format!(
                        "the stream no longer fits one contiguous mapping: no room for {need} \
                         bytes in this address space ({e})"
                    ),
                ))
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(not(miri))]
fn map_anon(len: usize) -> io::Result<MmapRaw> {
    let map = MmapOptions::new().len(len).no_reserve_swap().map_anon()?;
    #[cfg(target_os = "linux")]
    {
        // Fresh anonymous memory is page-fault bound; huge pages cut the faults 512-fold.
        // Advice only: where it is refused the arena works the same.
        let _ = map.advise(memmap2::Advice::HugePage);
    }
    Ok(MmapRaw::from(map))
}

/// Miri cannot run `mmap` with these flags; a plain anonymous mapping of the same shape will do.
#[cfg(miri)]
fn map_anon(len: usize) -> io::Result<MmapRaw> {
    Ok(MmapRaw::from(MmapOptions::new().len(len).map_anon()?))
}

fn too_long() -> io::Error {
    io::Error::new(
        io::ErrorKind::OutOfMemory,
        "the stream is too long to map into this address space",
    )
}
