//! Models of a shared entry's publish-and-wake protocol (`src/dir/protocol.rs`, compiled here
//! against loom's atomics), with threads standing in for processes: a writer writes blocks
//! (one loom cell each), marks them in the span map and announces them; readers mirror the map
//! and sleep on the publish word through a futex stand-in (a compare-and-sleep under a mutex,
//! as the kernel's `FUTEX_WAIT` is atomic with respect to `FUTEX_WAKE`).
//!
//! The last model adds a reader process's side (`src/dir/handoff.rs`): its watermark (the
//! shipped one), a thread that waits and mirrors by itself, an async waiter, and the mirror
//! thread that keeps quiet while threads wait.
//!
//! A lost wake-up shows as a loom deadlock (the stand-in has no timeout, where the shipped one
//! gives up after 100 ms to look for a dead writer); a block read before its bytes as a loom
//! causality violation.

use crate::handoff::Handoff;
use crate::protocol::{self, Wake};
use crate::ranges::{At, WriterId};
use crate::wait_async::{MarkHandle, WaitFor};
use crate::watermark::Watermark;
use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;

/// `FUTEX_WAIT`/`FUTEX_WAKE` on one word, for loom.
struct Futex {
    lock: Mutex<()>,
    signal: Condvar,
}

impl Wake for Futex {
    fn wait(&self, word: &AtomicU32, seen: u32) {
        let guard = self.lock.lock().unwrap();
        if word.load(Ordering::SeqCst) == seen {
            drop(self.signal.wait(guard).unwrap());
        }
    }

    fn wake_all(&self, _word: &AtomicU32) {
        let _guard = self.lock.lock().unwrap();
        self.signal.notify_all();
    }
}

/// The entry: the publish word, the span map (one word), the blocks' bytes.
struct Entry {
    publish: AtomicU32,
    map: [AtomicU64; 1],
    blocks: Vec<UnsafeCell<u8>>,
    futex: Futex,
}

// SAFETY: what the models check: block `k` is written only by the writer, before its bit is
// set, and read only after a reader saw the bit; loom's `UnsafeCell` panics otherwise.
unsafe impl Sync for Entry {}

impl Entry {
    fn new(blocks: usize) -> Arc<Entry> {
        Arc::new(Entry {
            publish: AtomicU32::new(0),
            map: [AtomicU64::new(0)],
            blocks: (0..blocks).map(|_| UnsafeCell::new(0)).collect(),
            futex: Futex {
                lock: Mutex::new(()),
                signal: Condvar::new(),
            },
        })
    }

    /// The writer, as `Entry::published` does: bytes, bit, announce.
    fn write(&self, k: usize) {
        self.blocks[k].with_mut(|byte| unsafe { *byte = k as u8 + 1 });
        assert!(protocol::mark_written(&self.map, k as u64));
        protocol::announce(&self.publish, &self.futex);
    }

    /// A reader, as the mirror loop of `dir::run` does, until it has every block: the word,
    /// the new bits (each block read), then a sleep unless something new came.
    fn read_all(&self) {
        let mut mirrored = [0u64];
        let mut have = 0;
        while have < self.blocks.len() {
            protocol::round(&self.publish, &self.futex, || {
                protocol::newly_present(&self.map, &mut mirrored, |k| {
                    let byte = self.blocks[k as usize].with(|byte| unsafe { *byte });
                    assert_eq!(byte, k as u8 + 1, "block {k} read before it was written");
                    have += 1;
                });
                have < self.blocks.len()
            });
        }
    }
}

fn model(f: impl Fn() + Sync + Send + 'static) {
    model_bounded(3, f);
}

/// [`model`] with its own preemption bound (`LOOM_MAX_PREEMPTIONS` overrides it).
fn model_bounded(preemptions: usize, f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if std::env::var_os("LOOM_MAX_PREEMPTIONS").is_none() {
        builder.preemption_bound = Some(preemptions);
    }
    builder.check(f);
}

/// One writer, two readers in "other processes": every reader sees every block, with its
/// bytes, and no sleep outlives the last publish.
#[test]
fn readers_in_other_processes_are_woken_by_each_publish_and_see_written_blocks() {
    model(|| {
        let entry = Entry::new(2);
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let entry = Arc::clone(&entry);
                thread::spawn(move || entry.read_all())
            })
            .collect();
        entry.write(0);
        entry.write(1);
        for reader in readers {
            reader.join().unwrap();
        }
    });
}

/// Two writer threads of one process (the fill and a fetch) setting bits of one word at once:
/// neither bit is lost (`fetch_or`), and the reader sees both.
#[test]
fn two_writers_set_bits_of_one_word_and_the_reader_sees_both() {
    model(|| {
        let entry = Entry::new(2);
        let reader = {
            let entry = Arc::clone(&entry);
            thread::spawn(move || entry.read_all())
        };
        let other = {
            let entry = Arc::clone(&entry);
            thread::spawn(move || entry.write(1))
        };
        entry.write(0);
        other.join().unwrap();
        reader.join().unwrap();
    });
}

/// A reader process (`src/dir/mod.rs`, in small): its watermark, the mirror's copy of the span
/// map, and the hand-off between its waiting threads and its mirror thread.
struct ReaderProcess {
    entry: Arc<Entry>,
    mark: Watermark,
    mirrored: Mutex<[u64; 1]>,
    handoff: Handoff,
}

impl ReaderProcess {
    /// `Entry::mirror`: the new blocks (one byte each here) published in the watermark, the
    /// copy's lock held until they are.
    fn mirror(&self) {
        let mut mirrored = self.mirrored.lock().unwrap();
        let mut new = Vec::new();
        protocol::newly_present(&self.entry.map, &mut *mirrored, |k| new.push(k));
        for k in new {
            // SAFETY: what the model checks: block `k`'s bit was seen set (Acquire), so its
            // write happened before; loom's `UnsafeCell` panics otherwise.
            let byte = self.entry.blocks[k as usize].with(|byte| unsafe { *byte });
            assert_eq!(
                byte,
                k as u8 + 1,
                "block {k} mirrored before it was written"
            );
            if let At::Free { .. } = self.mark.claim_at(MIRROR, k, k + 1) {
                self.mark.publish_range(MIRROR, k, k + 1);
            }
        }
    }

    /// `Entry::wait`: asleep on the publish word, mirroring when woken, until `[0, target)`.
    fn wait(&self, target: u64) {
        self.handoff.enter();
        loop {
            let seen = self.entry.publish.load(Ordering::Acquire);
            self.mirror();
            if self.mark.try_ready(0, target).is_some() {
                break;
            }
            self.entry.futex.wait(&self.entry.publish, seen);
        }
        self.handoff
            .leave(|| !self.mark.is_filling() || self.mark.waiter_count() > 0);
    }

    /// The mirror thread of `dir::run`: quiet while threads wait, else on the futex; it ends
    /// once the stream is complete here.
    fn mirror_thread(&self) {
        loop {
            if self.handoff.quiet() {
                self.mirror();
                if !self.mark.is_filling() {
                    return;
                }
                // loom has no clock: a later deadline is an untimed wait, as if the liveness
                // step never came.
                self.handoff
                    .sleep(std::time::Instant::now() + std::time::Duration::from_secs(3600));
            } else {
                let mut over = false;
                protocol::round(&self.entry.publish, &self.entry.futex, || {
                    self.mirror();
                    over = !self.mark.is_filling();
                    !over
                });
                if over {
                    return;
                }
            }
        }
    }
}

const MIRROR: WriterId = (1 << 62) + 1;

/// An async waiter's handle, as `Shared`'s: parking tells the hand-off.
impl MarkHandle for Arc<ReaderProcess> {
    fn mark(&self) -> &Watermark {
        &self.mark
    }

    fn parked(&self) {
        self.handoff.parked();
    }
}

/// A reader process with a thread that waits for block 0 and an async waiter for both blocks,
/// beside its mirror thread, while the writer (another "process") writes the two blocks: the
/// async waiter is served whether it parks before, during or after the thread's wait (a kick
/// lost when the thread leaves, or when the waiter parks, is a deadlock: the quiet mirror
/// thread sleeps with no timeout here), and the mirror thread ends.
#[test]
fn a_reader_process_serves_its_async_waiter_as_its_waiting_thread_comes_and_goes() {
    // Five threads: a bound of 2 checks every interleaving with two preemptions in well under
    // a minute; 3 runs for longer than CI has.
    model_bounded(2, || {
        let entry = Entry::new(2);
        let process = Arc::new(ReaderProcess {
            entry: Arc::clone(&entry),
            mark: Watermark::ranged(2),
            mirrored: Mutex::new([0]),
            handoff: Handoff::new(),
        });
        let mirror = {
            let process = Arc::clone(&process);
            thread::spawn(move || process.mirror_thread())
        };
        let waiting = {
            let process = Arc::clone(&process);
            thread::spawn(move || process.wait(1))
        };
        let parked = {
            let process = Arc::clone(&process);
            thread::spawn(move || {
                let end = loom::future::block_on(WaitFor::new(Arc::clone(&process), 2)).unwrap();
                assert_eq!(end, 2);
            })
        };
        entry.write(0);
        entry.write(1);
        for thread in [waiting, parked, mirror] {
            thread.join().unwrap();
        }
    });
}
