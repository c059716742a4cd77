//! The filler thread: reads the source into storage (`Writer::write_next`), publishes the mark
//! after every read, and stops on end, error, panic, the `max_len` cap, or cancellation.

use crate::shared::Shared;
use crate::source::{Feed, Source};
use crate::storage::Writer;
use std::any::Any;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Instant;

/// Runs on the filler thread until the stream is over, then records how it ended. The source
/// is made here (by `open`) so that it is only ever touched by this thread.
pub(crate) fn run<S: Source>(shared: Arc<Shared>, open: impl FnOnce(&Arc<Shared>) -> S) {
    finish(&shared, || {
        let settings = &shared.settings;
        let source = open(&shared);
        let feed = Feed::new(
            source,
            &shared.cancel,
            settings.retry,
            settings.expected_len,
        );
        Filler {
            shared: &shared,
            writer: Writer::new(),
            feed,
        }
        .fill()
        // The source drops here, on this thread, before the outcome is published: once a
        // reader sees the end, the source is gone.
    });
}

/// The filler thread of a ranged source: its sequential fill (`ranged.rs`).
pub(crate) fn run_ranged(shared: Arc<Shared>) {
    if let Some(entry) = &shared.entry {
        // A shared entry: its writer fills it, its readers mirror it (`src/dir/`).
        finish(&shared, || crate::dir::run(&shared));
        entry.wake_waiters(); // Threads asleep on the entry's futex find it decided.
    } else {
        finish(&shared, || crate::ranged::fill(&shared));
    }
}

/// Runs `fill` and records how it ended: complete, failed, or panicked (a failure too).
fn finish(shared: &Shared, fill: impl FnOnce() -> io::Result<()>) {
    match unwound(fill) {
        Ok(()) => shared.mark.complete(),
        Err(error) => shared.mark.fail(error),
    }
}

/// `write()`, with a panic in it (the caller's source or `open`) turned into an error: every
/// writer of a stream (the filler, a lane, a fetch) runs under this, so that a panic fails the
/// stream at once instead of leaving a claim nobody will ever write.
pub(crate) fn unwound(write: impl FnOnce() -> io::Result<()>) -> io::Result<()> {
    panic::catch_unwind(AssertUnwindSafe(write)).unwrap_or_else(|payload| {
        Err(io::Error::other(format!(
            "the source panicked: {}",
            panic_message(&*payload)
        )))
    })
}

/// Everything the filler thread owns.
struct Filler<'a, S> {
    shared: &'a Shared,
    writer: Writer,
    feed: Feed<'a, S>,
}

impl<S: Source> Filler<'_, S> {
    fn fill(&mut self) -> io::Result<()> {
        let settings = &self.shared.settings;
        let mut published = Instant::now();
        loop {
            let pos = self.writer.pos();
            let room = match settings.max_len {
                Some(max) => (max - pos).min(settings.chunk_size as u64) as usize,
                None => settings.chunk_size,
            };
            if room == 0 {
                return self.check_ends_at_cap();
            }
            let feed = &mut self.feed;
            let n = self
                .writer
                .write_next(&self.shared.storage, settings, room, |region| {
                    feed.read(region)
                })?;
            if n == 0 {
                return Ok(());
            }
            self.shared.mark.publish(self.writer.pos());
            let now = Instant::now();
            self.shared.pace.record(now - published);
            published = now;
        }
    }

    /// At `max_len`: a stream of exactly `max_len` bytes completes; one byte more is too long.
    fn check_ends_at_cap(&mut self) -> io::Result<()> {
        match self.feed.read(&mut [0u8; 1])? {
            0 => Ok(()),
            _ => Err(io::Error::new(
                io::ErrorKind::StorageFull,
                format!(
                    "the stream is longer than max_len ({} bytes)",
                    self.writer.pos()
                ),
            )),
        }
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "(no message)"
    }
}
