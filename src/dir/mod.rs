//! One cache for every process (`Builder::cache_dir`): a ranged stream that lives in a named
//! entry of a directory, shared by every process (and every cache) that opens the same key.
//!
//! - `layout.rs`: the entry's file: header, span map, data.
//! - `lock.rs`: the kernel-released locks (one writer; entries in use).
//! - `open.rs`: who writes, and the entry found, waited for, created or rebuilt.
//! - `evict.rs`: `cache_limit`, least recently used unused entries removed.
//! - `protocol.rs`: the publish-and-wake protocol, checked under loom.
//! - `wanted.rs`: what a cache asks for, and its role.
//! - `handoff.rs`: who mirrors a reader process: its waiting threads, or its mirror thread.
//! - this file: [`Entry`], what a cache keeps of its entry, and [`run`], its filler thread:
//!   the writer fills the entry as any ranged stream is filled and marks each block in the
//!   span map as it completes; a reader mirrors the span map into its own watermark, woken
//!   by the writer's publishes through the futex in the header (`src/os/wake.rs`), posts its
//!   far reads for the writer to fetch, and takes over when the writer's lock comes free.
//!
//! The watermark stays the one place that decides who waits and who is woken: in a reader,
//! the mirror is the only writer of the watermark, and publishes what the entry has. A thread
//! of a reader process that waits mirrors by itself, asleep on the futex ([`Entry::wait`]),
//! while the mirror thread keeps quiet (`handoff.rs`); any look at the stream's progress
//! catches up first ([`Entry::catch_up`]), so that nothing a reader sees lags the entry.

mod evict;
pub(crate) mod handoff;
mod layout;
mod lock;
mod open;
pub(crate) mod protocol;
#[path = "../os/wake.rs"]
mod wake;
mod wanted;

use crate::ranges::{At, WriterId};
use crate::shared::Shared;
use crate::sync::Mutex;
use crate::watermark::Watermark;
pub(crate) use layout::BLOCK;
use layout::{Layout, Live};
use memmap2::MmapRaw;
use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) use wanted::{Role, Wanted};

/// How often a reader looks at the writer lock (the writer may have died: the kernel frees
/// its lock, but nothing wakes the readers), and how often a waiting thread looks at
/// cancellation. Publishes wake at once; this is only for the silence of a dead writer.
const LIVENESS: Duration = Duration::from_millis(100);

/// The mirror's writer id in a reader's watermark, apart from the fill's, fetches' and lanes'.
const MIRROR: WriterId = (1 << 62) + 1;

/// A typed view of an entry's mapping.
#[derive(Debug)]
pub(crate) struct View {
    base: *mut u8,
    layout: Layout,
}

impl View {
    /// The view of `map`, which the caller keeps mapped as long as the view is used.
    pub(crate) fn new(map: &MmapRaw, layout: &Layout) -> View {
        View {
            base: map.as_mut_ptr(),
            layout: *layout,
        }
    }

    fn live(&self) -> &Live {
        // SAFETY: the mapping is page-aligned, at least a header page long, and stays mapped
        // while the view is used (the `Storage` of the cache holds it, invariant 1); `Live` is
        // atomics only, at a fixed, aligned offset every process agrees on (`layout.rs`).
        unsafe { &*(self.base.add(128) as *const Live) }
    }

    fn span_map(&self) -> &[AtomicU64] {
        // SAFETY: as for `live`: the span map's words lie at 4096, aligned, inside the mapping,
        // and are only ever accessed atomically, by every process.
        unsafe {
            std::slice::from_raw_parts(
                self.base.add(4096) as *const AtomicU64,
                self.layout.map_words,
            )
        }
    }

    /// Whether a writer may trust the span map as it is (see `layout.rs`).
    pub(crate) fn trusted(&self) -> bool {
        let live = self.live();
        if live.sealed.load(Ordering::Acquire) == 1 {
            live.map_sum.load(Ordering::Acquire) == layout::map_sum(self.span_map())
        } else {
            live.writer_boot.load(Ordering::Acquire) == layout::boot_id()
        }
    }
}

/// A cache's entry: the view, the writer lock (kept until the filler ends), the entry file
/// (held shared until the cache drops: in use), and the requests not posted yet.
pub(crate) struct Entry {
    view: View,
    writer: AtomicBool,
    lock: Mutex<Option<File>>,
    _entry: File,
    lock_path: std::path::PathBuf,
    /// Far reads waiting for a free request slot.
    pending: Mutex<VecDeque<u64>>,
    /// The span map's words as this process's watermark has them (a reader's mirror). Held
    /// until the blocks new in it are published in the watermark: a thread that finds nothing
    /// new may then trust the watermark to have all that the span map had.
    mirrored: Mutex<Vec<u64>>,
    /// The publish word a completed mirror loaded before it looked, plus [`SEEN`]: while the
    /// word still holds it, there is nothing new to mirror ([`Entry::catch_up`]). 0: none yet.
    mirrored_publish: AtomicU64,
    /// Whether this process's waiting threads mirror, or its mirror thread (`handoff.rs`).
    handoff: handoff::Handoff,
}

/// Marks a value in [`Entry::mirrored_publish`] (a publish word of 0 is a value too).
const SEEN: u64 = 1 << 32;

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("writer", &self.writer)
            .finish_non_exhaustive()
    }
}

// SAFETY: the view's pointer is into a mapping the cache's `Storage` keeps until the `Shared`
// holding this entry drops, and every access through it is atomic (the header's live words,
// the span map); the data is written only inside claims (invariant 2, generalized).
unsafe impl Send for Entry {}
// SAFETY: as for `Send`.
unsafe impl Sync for Entry {}

/// An entry opened for `wanted`: the entry, its mapping (for the cache's storage), and where
/// the stream starts in it.
pub(crate) fn open_entry(wanted: &Wanted<'_>) -> io::Result<(Entry, MmapRaw, u64, Role)> {
    let opened = open::open(wanted)?;
    evict::touch(&opened.entry);
    if let Some(limit) = wanted.cache_limit {
        evict::evict(wanted.dir, limit, &opened.path)?;
    }
    let view = View::new(&opened.map, &opened.layout);
    let words = opened.layout.map_words;
    let entry = Entry {
        view,
        // A writer becomes one in `begin_writing`, once its watermark has the entry's blocks.
        writer: AtomicBool::new(false),
        lock: Mutex::new(Some(opened.lock)),
        _entry: opened.entry,
        lock_path: opened.path.with_extension("lock"),
        pending: Mutex::new(VecDeque::new()),
        mirrored: Mutex::new(vec![0; words]),
        mirrored_publish: AtomicU64::new(0),
        handoff: handoff::Handoff::new(),
    };
    Ok((entry, opened.map, opened.layout.data_at, opened.role))
}

impl Entry {
    pub(crate) fn is_reader(&self) -> bool {
        !self.writer.load(Ordering::Acquire)
    }

    /// A reader: asks the writer for the byte at `offset` (its far reads, and the prefix a
    /// deferred fill waits for). Posted in a free slot, or kept until one is free.
    pub(crate) fn post(&self, offset: u64) {
        let mut pending = self.pending.lock();
        if !pending.contains(&offset) {
            pending.push_back(offset);
        }
        self.post_pending(&mut pending);
    }

    fn post_pending(&self, pending: &mut VecDeque<u64>) {
        let live = self.view.live();
        let mut posted = false;
        while let Some(&offset) = pending.front() {
            let free = live.requests.iter().find(|slot| {
                slot.compare_exchange(0, offset + 1, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
            });
            if free.is_none() {
                break;
            }
            pending.pop_front();
            posted = true;
        }
        if posted {
            protocol::announce(&live.request, &Futex);
        }
    }

    /// The writer: every request posted, emptied from its slot.
    fn take_requests(&self) -> Vec<u64> {
        let live = self.view.live();
        live.requests
            .iter()
            .filter_map(|slot| match slot.swap(0, Ordering::AcqRel) {
                0 => None,
                plus_one => Some(plus_one - 1),
            })
            .collect()
    }

    /// The writer published `[start, end)` in its watermark: every block it completes goes
    /// into the span map (after its bytes: Release), and every process waiting is woken.
    pub(crate) fn published(&self, mark: &Watermark, start: u64, end: u64) {
        if self.is_reader() || start >= end {
            return;
        }
        let layout = &self.view.layout;
        let map = self.view.span_map();
        let mut changed = false;
        for k in start / BLOCK..end.div_ceil(BLOCK) {
            if protocol::is_marked(map, k) {
                continue;
            }
            let block = layout.block(k);
            if mark.first_missing(block.start, block.end).is_none() {
                changed |= protocol::mark_written(map, k);
            }
        }
        if changed {
            protocol::announce(&self.view.live().publish, &Futex);
        }
    }

    /// Publishes in `mark` every block the span map has that this process's watermark does
    /// not yet: a reader's view of the writer's progress, and a new writer's of its
    /// predecessors'. Only mirrors write a reader's watermark.
    pub(crate) fn mirror(&self, mark: &Watermark) {
        let seen = self.view.live().publish.load(Ordering::Acquire);
        let layout = &self.view.layout;
        let mut mirrored = self.mirrored.lock();
        let mut runs: Vec<(u64, u64)> = Vec::new();
        protocol::newly_present(self.view.span_map(), &mut mirrored, |k| {
            let block = layout.block(k);
            match runs.last_mut() {
                Some(run) if run.1 == block.start => run.1 = block.end,
                _ => runs.push((block.start, block.end)),
            }
        });
        for (start, end) in runs {
            // Claimed for the mirror, then published; any part present already (written by
            // a writer of this process) stays as it is.
            let mut at = start;
            while at < end {
                match mark.claim_at(MIRROR, at, end) {
                    At::Free { end: claimed } => {
                        mark.publish_range(MIRROR, at, claimed);
                        at = claimed;
                    }
                    At::Present { end: next } | At::Claimed { end: next } => {
                        at = next.min(end).max(at + 1);
                    }
                }
            }
        }
        // Release, after the watermark's publishes: a thread that skips the mirror on it
        // (Acquire) sees them.
        self.mirrored_publish
            .store(u64::from(seen) | SEEN, Ordering::Release);
    }

    /// A reader: [`mirror`](Self::mirror) and the requests waiting for a slot posted, unless
    /// no publish came since the last mirror (then one load: this runs on every look at the
    /// progress). A writer's watermark is its own.
    pub(crate) fn catch_up(&self, mark: &Watermark) {
        if !self.is_reader() {
            return;
        }
        let seen = self.view.live().publish.load(Ordering::Acquire);
        // A writer bumps the word after every bit it sets (`protocol.rs`): the same word
        // means no bit set since the mirror that loaded it, whose blocks are in `mark`.
        if self.mirrored_publish.load(Ordering::Acquire) == u64::from(seen) | SEEN {
            return;
        }
        self.mirror(mark);
        // A publish may come with request slots freed; the mirror thread also looks at each
        // liveness step.
        let mut pending = self.pending.lock();
        if !pending.is_empty() {
            self.post_pending(&mut pending);
        }
    }

    /// A reader's thread waits for `[start, target)` (as [`Watermark::wait_range`]) by itself:
    /// asleep on the publish futex, it mirrors when a publish wakes it, while the mirror
    /// thread keeps quiet (`handoff.rs`). `None` once this process is the writer (it took
    /// over): the caller waits on the watermark, which this process's writer publishes to.
    pub(crate) fn wait(
        &self,
        mark: &Watermark,
        start: u64,
        target: u64,
        deadline: Option<Instant>,
    ) -> Option<io::Result<Option<u64>>> {
        let live = self.view.live();
        self.handoff.enter();
        let result = loop {
            if !self.is_reader() {
                break None;
            }
            // Loaded before the look, as in `protocol::round`: a publish after it changes the
            // word, and the sleep below returns at once.
            let seen = live.publish.load(Ordering::Acquire);
            self.catch_up(mark);
            if let Some(ready) = mark.try_ready(start, target) {
                break Some(ready.map(Some));
            }
            if live.sealed.load(Ordering::Acquire) == 1 {
                // The writer stopped with bytes missing: the mirror thread takes over now.
                self.handoff.kick();
            }
            let step = match deadline {
                None => liveness(),
                Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => left.min(liveness()),
                    _ => break Some(Ok(None)),
                },
            };
            wake::wait(&live.publish, seen, step);
        };
        self.handoff
            .leave(|| !mark.is_filling() || mark.waiter_count() > 0);
        result
    }

    /// An async waiter registered with `mark` in a reader: the mirror thread serves it
    /// unless threads wait (`handoff.rs`).
    pub(crate) fn parked(&self) {
        if self.is_reader() {
            self.handoff.parked();
        }
    }

    /// The mirror thread looks now: the last handle dropped, or the stream ended.
    pub(crate) fn kick(&self) {
        self.handoff.kick();
    }

    /// The filler thread ended (the stream complete, failed, or cancelled): every thread
    /// asleep on the publish futex looks again, and finds the watermark decided. The word is
    /// bumped, as by a publish, so that a thread about to sleep does not sleep through it.
    pub(crate) fn wake_waiters(&self) {
        protocol::announce(&self.view.live().publish, &Futex);
    }

    /// A reader whose writer is gone (its lock free): may become the writer.
    fn take_over(&self) -> io::Result<bool> {
        let lock = self.lock.lock();
        let Some(file) = lock.as_ref() else {
            return Ok(false);
        };
        if !lock::flock(file, libc::LOCK_EX, false)? {
            return Ok(false);
        }
        if !lock::still_at(file, &self.lock_path)? {
            return Ok(false); // Evicted: nobody will read this entry any more.
        }
        Ok(true)
    }

    /// A new writer (at open, or taking over): what earlier writers left is published in
    /// `mark` before this process writes anything, so that no byte is written twice.
    pub(crate) fn begin_writing(&self, mark: &Watermark) {
        self.start_writing();
        self.mirror(mark);
        self.writer.store(true, Ordering::Release);
    }

    /// A writer starts writing: the seal goes (the map will change), the boot is noted.
    fn start_writing(&self) {
        let live = self.view.live();
        live.sealed.store(0, Ordering::Release);
        live.writer_boot.store(layout::boot_id(), Ordering::Release);
    }

    /// A writer stops (complete, dropped or failed): the span map is sealed with its
    /// checksum, the writer lock is let go, and every process waiting is woken, so that a
    /// reader takes over at once if bytes are missing.
    fn stop_writing(&self) {
        let live = self.view.live();
        live.map_sum
            .store(layout::map_sum(self.view.span_map()), Ordering::Release);
        live.sealed.store(1, Ordering::Release);
        self.lock.lock().take();
        protocol::announce(&live.publish, &Futex);
    }
}

/// The filler thread of a cache with an entry: a reader mirrors until the stream is complete
/// (or the cache is dropped), or until it takes over; a writer fills what is missing and
/// serves the requests of the other processes meanwhile.
pub(crate) fn run(shared: &Arc<Shared>) -> io::Result<()> {
    let entry = shared.entry.as_ref().expect("a cache with an entry");
    let live = entry.view.live();
    if entry.is_reader() {
        loop {
            let mut step = Step::Wait;
            if entry.handoff.quiet() {
                // Threads here wait and mirror by themselves: off the futex (`handoff.rs`).
                step = reader_step(shared, entry);
                if matches!(step, Step::Wait) {
                    entry.handoff.sleep(Instant::now() + liveness());
                }
            } else {
                protocol::round(&live.publish, &Futex, || {
                    step = reader_step(shared, entry);
                    matches!(step, Step::Wait)
                });
            }
            match step {
                Step::Wait => {}
                Step::Over(outcome) => return outcome,
                Step::TakeOver => break,
            }
        }
    }
    if entry.is_reader() {
        entry.begin_writing(&shared.mark); // Taken over.
    }
    // Requests posted for the writer before this one took over are this one's now.
    let result = if shared.mark.is_filling() {
        let done = AtomicBool::new(false);
        std::thread::scope(|scope| {
            scope.spawn(|| serve_requests(shared, entry, &done));
            // A panic in the source is an error here, so that the requests' thread is told
            // to stop and the scope ends.
            let result = crate::filler::unwound(|| crate::ranged::fill(shared));
            done.store(true, Ordering::Release);
            protocol::announce(&live.request, &Futex);
            result
        })
    } else {
        Ok(())
    };
    entry.stop_writing();
    result
}

/// What a reader does after a look at the entry.
enum Step {
    /// Sleep until the next publish (or [`LIVENESS`]).
    Wait,
    /// The stream is complete in this process's watermark, or the cache is dropped.
    Over(io::Result<()>),
    /// The writer lock is this process's now.
    TakeOver,
}

/// A reader's look: the new blocks mirrored, then whether it is over, and whether the writer
/// is gone (its lock free: this reader takes over).
fn reader_step(shared: &Shared, entry: &Entry) -> Step {
    entry.mirror(&shared.mark);
    if !shared.mark.is_filling() {
        return Step::Over(Ok(())); // Complete (the mirror's last publish completed it).
    }
    if let Err(error) = shared.cancel.check() {
        return Step::Over(Err(error));
    }
    entry.post_pending(&mut entry.pending.lock());
    match entry.take_over() {
        Ok(true) => Step::TakeOver,
        Ok(false) => Step::Wait,
        Err(error) => Step::Over(Err(error)),
    }
}

/// The writer's thread for the other processes' requests: each is asked of the ranged
/// stream as a read of this process would ask (`ranged::request`).
fn serve_requests(shared: &Arc<Shared>, entry: &Entry, done: &AtomicBool) {
    let live = entry.view.live();
    while !done.load(Ordering::Acquire) && shared.mark.is_filling() && shared.cancel.check().is_ok()
    {
        protocol::round(&live.request, &Futex, || {
            for offset in entry.take_requests() {
                crate::ranged::request(shared, offset);
            }
            true
        });
    }
}

/// [`LIVENESS`], or for the tests `STREAMCACHE_TEST_LIVENESS_MS`: with it far longer than a
/// test's guard, a wait that is not woken by the writer's publish shows as a hang (the test
/// of the cross-process wake in tests/cache_dir.rs).
fn liveness() -> Duration {
    static LIVENESS_NOW: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();
    *LIVENESS_NOW.get_or_init(|| {
        std::env::var("STREAMCACHE_TEST_LIVENESS_MS")
            .ok()
            .and_then(|ms| ms.parse().ok())
            .map_or(LIVENESS, Duration::from_millis)
    })
}

/// The wake between processes: the futex of `src/os/wake.rs`, its sleeps cut at [`liveness`]
/// (a dead writer wakes nobody; the sleeper then looks at the writer lock).
struct Futex;

impl protocol::Wake for Futex {
    fn wait(&self, word: &std::sync::atomic::AtomicU32, seen: u32) {
        wake::wait(word, seen, liveness());
    }

    fn wake_all(&self, word: &std::sync::atomic::AtomicU32) {
        wake::wake_all(word);
    }
}

/// Whether `dir` can hold shared entries (unix: `flock`; `fallback.rs` elsewhere): not on NFS
/// or SMB, whose locks cannot be trusted.
pub(crate) fn usable(dir: &std::path::Path) -> bool {
    lock::locks_trusted(dir)
}
