//! The writers of a ranged stream (`Builder::spawn_ranged`): the fill, on the filler thread
//! (in order over one connection, or over `connections` lanes taking the lowest free span
//! each), and the on-demand fetches, each on a thread of its own, at most `max_fetches` at
//! once. Every writer claims the bytes it is about to write (`Watermark::claim_at`,
//! `claim_fetch`, `claim_lowest`), writes them through the storage's raw pointer, and
//! publishes them (`publish_range`): no byte is written twice, and none is written once
//! present.

use crate::filler::unwound;
use crate::ranges::{At, WriterId};
use crate::shared::Shared;
use crate::source::{Feed, Resumable};
use crate::storage::Fixed;
use crate::sync::Mutex;
use std::collections::VecDeque;
use std::io::{self, Read};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

/// What the caller's `open(range)` returns.
pub(crate) type PartReader = Box<dyn Read + Send>;

/// The caller's `open(range)`, shared by the fill and every fetch.
pub(crate) type OpenRange = dyn Fn(Range<u64>) -> io::Result<PartReader> + Send + Sync;

/// The part `range` of a ranged source as a resumable one: opened at `range.start + offset`
/// after `offset` bytes, up to `range.end` (more is never read: reads never ask past it).
fn part(
    open: &Arc<OpenRange>,
    range: Range<u64>,
) -> Resumable<impl FnMut(u64) -> io::Result<PartReader>, PartReader> {
    let open = Arc::clone(open);
    Resumable::new(move |offset| open(range.start + offset..range.end))
}

/// The sequential fill's writer id; fetches count up from 1.
const FILL: WriterId = 0;

/// How far ahead of the mark a read must be to be fetched at once, and how much one fetch
/// brings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FetchSettings {
    pub(crate) fetch_ahead: u64,
    pub(crate) fetch_span: u64,
    pub(crate) max_fetches: usize,
    /// Transfers filling the stream ahead of its readers, a span each (`Builder::connections`).
    pub(crate) connections: usize,
    /// The fill waits until a reader needs a byte near the prefix (`Builder::defer_fill`).
    pub(crate) defer_fill: bool,
}

/// What a ranged stream keeps beside the watermark: its storage, its `open`, and the queue of
/// fetches asked for.
pub(crate) struct Ranged {
    fixed: Fixed,
    open: Arc<OpenRange>,
    queue: Mutex<Queue>,
    /// Set once the fill may start: at spawn, or with `defer_fill` when a reader first needs
    /// a byte only the fill would bring ([`want_fill`]). Never cleared.
    fill_wanted: AtomicBool,
}

impl std::fmt::Debug for Ranged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ranged")
            .field("fixed", &self.fixed)
            .finish_non_exhaustive()
    }
}

/// Offsets waiting for a fetch, and how many fetch threads run.
#[derive(Debug, Default)]
struct Queue {
    waiting: VecDeque<u64>,
    running: usize,
    next_id: WriterId,
}

impl Ranged {
    pub(crate) fn new(fixed: Fixed, open: Arc<OpenRange>, defer_fill: bool) -> Self {
        Self {
            fixed,
            open,
            queue: Mutex::new(Queue {
                next_id: FILL + 1,
                ..Queue::default()
            }),
            fill_wanted: AtomicBool::new(!defer_fill),
        }
    }

    fn fill_started(&self) -> bool {
        self.fill_wanted.load(Ordering::Acquire)
    }
}

/// A reader needs a byte that only the fill will bring (near the prefix, or with no fetches
/// allowed): with `defer_fill`, the fill starts now. Without it, it has been running since
/// spawn, and this is one atomic load.
fn want_fill(shared: &Shared, ranged: &Ranged) {
    if let Some(entry) = shared.entry.as_ref().filter(|entry| entry.is_reader()) {
        entry.post(shared.mark.available()); // The writer's fill, in another process.
        return;
    }
    if !ranged.fill_started() && !ranged.fill_wanted.swap(true, Ordering::AcqRel) {
        shared.cancel.wake(); // The filler waits for it there (`fill`).
    }
}

/// A wait for the prefix to reach `offset` (`wait_for`, `wait_complete`): the fill's to serve,
/// so a deferred fill starts now if the prefix is short of it.
pub(crate) fn wait_on_prefix(shared: &Shared, offset: u64) {
    if let Some(ranged) = &shared.ranged {
        if offset > shared.mark.available() {
            want_fill(shared, ranged);
        }
    }
}

/// A reader needs the byte at `offset`, which is not present: if it is far enough ahead of the
/// mark, and no fetch will bring it, a fetch starts now (or as soon as one of the
/// `max_fetches` is free).
pub(crate) fn request(shared: &Arc<Shared>, offset: u64) {
    let Some(ranged) = &shared.ranged else { return };
    if let Some(entry) = shared.entry.as_ref().filter(|entry| entry.is_reader()) {
        // The one writer of the entry, in another process, fetches it.
        if shared.mark.run_end(offset).is_none() {
            entry.post(offset);
        }
        return;
    }
    let fetch = shared.settings.fetch;
    if fetch.max_fetches == 0 || offset < shared.mark.available().saturating_add(fetch.fetch_ahead)
    {
        want_fill(shared, ranged); // The fill's to bring.
        return;
    }
    if shared.mark.run_end(offset).is_some()
        || shared.mark.claimed_until(offset).is_some()
        || shared.cancel.check().is_err()
    {
        return;
    }
    let mut queue = ranged.queue.lock();
    if queue
        .waiting
        .iter()
        .any(|&w| w <= offset && offset < w.saturating_add(fetch.fetch_span))
    {
        return; // Asked for already: that fetch will bring it.
    }
    if queue.running >= fetch.max_fetches {
        queue.waiting.push_back(offset);
        return;
    }
    queue.running += 1;
    drop(queue);
    let worker = Arc::clone(shared);
    // Named after the filler thread, so that a user who names one finds all of a cache's.
    let spawned = thread::Builder::new()
        .name(format!("{}:fetch", shared.settings.thread_name()))
        .spawn(move || fetch_loop(&worker, offset));
    if spawned.is_err() {
        // No thread: the sequential fill will bring the byte in time.
        ranged.queue.lock().running -= 1;
        want_fill(shared, ranged);
    }
}

/// A read or wait of `[start, end)`: if its first missing byte is far ahead of the mark (at
/// least `fetch_ahead`), its missing parts are fetched now, as [`prefetch`] does; if not, the
/// fill is bringing it, and nothing is fetched: a long wait from the prefix (`wait_complete`,
/// `slice(..)`) is the fill's to serve (over `connections`, when a user wants it faster),
/// never a burst of fetches racing it, re-sending what the fill was about to read.
///
/// With `defer_fill`, a missing byte near the prefix starts the fill.
pub(crate) fn prefetch_far(shared: &Arc<Shared>, start: u64, end: u64) {
    let Some(ranged) = &shared.ranged else { return };
    let far = shared
        .mark
        .available()
        .saturating_add(shared.settings.fetch.fetch_ahead);
    if end.min(ranged.fixed.len()) <= far && ranged.fill_started() {
        return; // Near the prefix (no lock: a read keeping pace).
    }
    // From the first missing byte: `prefetch` need not look for it again.
    match shared.mark.first_missing(start, end) {
        Some(first) if first >= far && shared.settings.fetch.max_fetches > 0 => {
            prefetch(shared, first, end);
        }
        Some(_) => want_fill(shared, ranged),
        None => {}
    }
}

/// A reader will need all of `[start, end)`: asks for fetches of its missing parts now, as
/// [`request`] would for each, so that a long read far ahead is brought by up to
/// `max_fetches` transfers at once instead of one span after another. Asks for at most
/// `max_fetches` spans per call: a reader going on asks again for the next ones.
pub(crate) fn prefetch(shared: &Arc<Shared>, start: u64, end: u64) {
    let Some(ranged) = &shared.ranged else { return };
    let fetch = shared.settings.fetch;
    let end = end.min(ranged.fixed.len());
    if end <= shared.mark.available() {
        return; // In the prefix: no lock (a read keeping pace).
    }
    if fetch.max_fetches == 0 {
        want_fill(shared, ranged); // Nothing is fetched: the fill brings it all.
        return;
    }
    let mut at = start;
    for _ in 0..fetch.max_fetches {
        let Some(missing) = shared.mark.first_missing(at, end) else {
            return;
        };
        if let Some(claim_end) = shared.mark.claimed_until(missing) {
            at = claim_end; // Being fetched (or filled): not one of this call's asks.
            continue;
        }
        request(shared, missing);
        at = missing.saturating_add(fetch.fetch_span);
    }
}

/// A fetch thread: fetches `first`, then whatever waits in the queue, then ends.
fn fetch_loop(shared: &Shared, first: u64) {
    let ranged = shared.ranged.as_ref().expect("a ranged stream");
    let mut next = Some(first);
    while let Some(offset) = next {
        let id = {
            let mut queue = ranged.queue.lock();
            queue.next_id += 1;
            queue.next_id - 1
        };
        if let Err(error) = unwound(|| fetch_one(shared, ranged, id, offset)) {
            shared.mark.fail(error);
        }
        shared.mark.release(id);
        let mut queue = ranged.queue.lock();
        next = queue.waiting.pop_front();
        if next.is_none() || !shared.mark.is_filling() || shared.cancel.check().is_err() {
            queue.waiting.clear();
            queue.running -= 1;
            return;
        }
    }
}

/// One on-demand fetch: claims the free bytes around `offset`, then writes them.
fn fetch_one(shared: &Shared, ranged: &Ranged, id: WriterId, offset: u64) -> io::Result<()> {
    let mut align = shared.settings.chunk_size as u64;
    let mut span = shared.settings.fetch.fetch_span;
    if shared.entry.is_some() {
        // A shared entry marks whole blocks only: a fetch of whole blocks is readable in the
        // other processes at once, not when the fill completes its first and last block.
        align = crate::dir::BLOCK;
        span = (offset + span).next_multiple_of(align) - offset;
    }
    let Some(range) = shared.mark.claim_fetch(id, offset, span, align) else {
        return Ok(()); // Present or claimed by now.
    };
    write_claim(shared, ranged, id, range)
}

/// Writer `id` holds the claim `range` (just taken): opens it, writes and publishes it chunk
/// by chunk; a break is re-opened at the break (`Feed`, with the retry policy).
fn write_claim(
    shared: &Shared,
    ranged: &Ranged,
    id: WriterId,
    range: Range<u64>,
) -> io::Result<()> {
    let chunk = shared.settings.chunk_size as u64;
    let part = part(&ranged.open, range.clone());
    let mut feed = Feed::new(
        part,
        &shared.cancel,
        shared.settings.retry,
        Some(range.end - range.start),
    );
    let mut pos = range.start;
    while pos < range.end {
        if !shared.mark.is_filling() {
            return Ok(()); // Failed elsewhere: stop writing.
        }
        let end = range.end.min(pos + chunk);
        // SAFETY: `[pos, end)` is inside this writer's claim (taken by the caller; the claim
        // shrinks only as this writer publishes): no other writer writes there and no reader
        // reads there until it is published (invariant 2, generalized).
        let region = unsafe { ranged.fixed.region(pos, end) };
        let n = feed.read(region)?;
        shared.publish_range(id, pos, pos + n as u64);
        pos += n as u64;
    }
    Ok(())
}

/// The first lane's writer id; lane `k` is `LANE + k`. Far above the fetches' (which count up
/// from 1), so that no two writers ever share one.
const LANE: WriterId = 1 << 63;

/// The fill of a ranged stream with `connections` = `n` > 1: `n` lanes (this thread and
/// `n - 1` scoped threads), each taking the lowest span that is neither present nor claimed
/// (`Watermark::claim_lowest`), writing it over a connection of its own, then taking the
/// next. So the prefix grows in order at up to `n` times one connection's rate, and never a
/// byte is asked for twice but after a break. A lane's failure (or panic) fails the stream at
/// once, and the others stop at their next chunk: the scope would otherwise wait for them to
/// finish every span before it reported it. Dropping every handle cancels them all.
fn fill_lanes(shared: &Shared, n: usize) -> io::Result<()> {
    let run = move |id: WriterId| {
        if let Err(error) = unwound(|| lane(shared, id)) {
            shared.mark.fail(error);
        }
    };
    thread::scope(|scope| {
        for k in 1..n {
            let spawned = thread::Builder::new()
                .name(format!("{}:span", shared.settings.thread_name()))
                .spawn_scoped(scope, move || run(LANE + k as u64));
            if spawned.is_err() {
                break; // No more threads: fewer lanes, the same bytes.
            }
        }
        run(LANE);
    });
    Ok(()) // Complete once every byte is present (the last publish completes it).
}

/// One lane of [`fill_lanes`]: spans, lowest first, until none is free.
fn lane(shared: &Shared, id: WriterId) -> io::Result<()> {
    let ranged = shared.ranged.as_ref().expect("a ranged stream");
    let span = shared.settings.fetch.fetch_span;
    let result = (|| {
        loop {
            shared.cancel.check()?;
            let Some(range) = shared.mark.claim_lowest(id, span) else {
                return Ok(()); // Every byte present or claimed (or the stream is over).
            };
            write_claim(shared, ranged, id, range)?;
        }
    })();
    shared.mark.release(id);
    result
}

/// The fill of a ranged stream, on the filler thread: over one connection (the default), or
/// over `connections` spans at once ([`fill_lanes`]). With `defer_fill`, it first waits until
/// a reader needs a byte only the fill brings ([`want_fill`]), or every handle is gone.
pub(crate) fn fill(shared: &Shared) -> io::Result<()> {
    let ranged = shared.ranged.as_ref().expect("a ranged stream");
    shared.cancel.wait_until(|| ranged.fill_started())?;
    match shared.settings.fetch.connections {
        n @ 2.. => fill_lanes(shared, n),
        _ => fill_in_order(shared),
    }
}

/// [`fill`] over one connection: `open(0..len)`, writing every free byte in order.
/// Arriving at bytes already present (or claimed by a fetch), it re-opens past them when they
/// are at least `fetch_ahead` long, and otherwise reads through them and compares: a source
/// whose bytes changed fails the stream with `InvalidData`, never splices.
fn fill_in_order(shared: &Shared) -> io::Result<()> {
    let ranged = shared.ranged.as_ref().expect("a ranged stream");
    let len = ranged.fixed.len();
    let chunk = shared.settings.chunk_size as u64;
    let part = part(&ranged.open, 0..len);
    let mut feed = Feed::new(part, &shared.cancel, shared.settings.retry, Some(len));
    let mut scratch = Vec::new();
    let mut pos = 0;
    let result = (|| {
        while pos < len {
            if !shared.mark.is_filling() {
                return Ok(()); // Failed elsewhere (or complete): nothing more to write.
            }
            shared.cancel.check()?;
            match shared.mark.claim_at(FILL, pos, len.min(pos + chunk)) {
                At::Free { end } => {
                    // SAFETY: `[pos, end)` is the fill's claim, just taken (invariant 2,
                    // generalized): no other writer, no reader until published.
                    let region = unsafe { ranged.fixed.region(pos, end) };
                    let n = feed.read(region)? as u64;
                    shared.publish_range(FILL, pos, pos + n);
                    pos += n;
                }
                At::Present { end } | At::Claimed { end }
                    if end - pos >= shared.settings.fetch.fetch_ahead =>
                {
                    feed.skip_to(end);
                    pos = end;
                }
                At::Present { end } | At::Claimed { end } => {
                    let n = (end - pos).min(chunk) as usize;
                    scratch.resize(n, 0);
                    let n = feed.read(&mut scratch)?;
                    compare(shared, pos, &scratch[..n])?;
                    pos += n as u64;
                }
            }
        }
        Ok(())
    })();
    shared.mark.release(FILL);
    result
}

/// The fill read `bytes` at `pos` over bytes a fetch wrote (or is writing): they must be the
/// same.
fn compare(shared: &Shared, pos: u64, bytes: &[u8]) -> io::Result<()> {
    let end = pos + bytes.len() as u64;
    // A fetch may still be writing them: wait (its failure fails the stream, and this wait).
    shared.mark.wait_range(pos, end, None)?;
    let present = shared.published(pos, end).expect("waited for these bytes");
    match present.iter().zip(bytes).position(|(a, b)| a != b) {
        None => Ok(()),
        Some(i) => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "the source changed: byte {} differs from the one an earlier request returned",
                pos + i as u64
            ),
        )),
    }
}
