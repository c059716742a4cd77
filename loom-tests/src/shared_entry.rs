//! Models of a shared entry's publish-and-wake protocol (`src/dir/protocol.rs`, compiled here
//! against loom's atomics), with threads standing in for processes: a writer writes blocks
//! (one loom cell each), marks them in the span map and announces them; readers mirror the map
//! and sleep on the publish word through a futex stand-in (a compare-and-sleep under a mutex,
//! as the kernel's `FUTEX_WAIT` is atomic with respect to `FUTEX_WAKE`).
//!
//! A lost wake-up shows as a loom deadlock (the stand-in has no timeout, where the shipped one
//! gives up after 100 ms to look for a dead writer); a block read before its bytes as a loom
//! causality violation.

use crate::protocol::{self, Wake};
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
    let mut builder = loom::model::Builder::new();
    if std::env::var_os("LOOM_MAX_PREEMPTIONS").is_none() {
        builder.preemption_bound = Some(3);
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
