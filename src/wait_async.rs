//! Waiting without blocking a thread: a future that registers its `Waker` with the watermark.
//!
//! Like `watermark.rs`, this file is compiled unchanged by `loom-tests`, whose models poll this
//! very future; so it knows the watermark only through [`MarkHandle`], not the cache's `Shared`.

use crate::watermark::{WaitPoll, Watermark};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A shared owner of a watermark that a future can hold on to: the cache's `Arc<Shared>`, or a
/// loom model's stream.
pub(crate) trait MarkHandle {
    /// The watermark to wait on.
    fn mark(&self) -> &Watermark;

    /// The future registered its waker and is about to return `Pending`: whoever must publish
    /// for it to be woken is told (a reader of a shared entry: its mirror thread).
    fn parked(&self) {}
}

/// Resolves when `[start, target)` is present (for a wait from 0: `target` bytes are
/// available) or the stream has ended, as the blocking waits. Dropping it deregisters its waker.
#[derive(Debug)]
pub(crate) struct WaitFor<H: MarkHandle> {
    handle: H,
    start: u64,
    target: u64,
    /// The watermark's id for our registered waker, while one is registered.
    registration: Option<u64>,
}

impl<H: MarkHandle> WaitFor<H> {
    /// Waits for the first `target` bytes (as `wait_for`).
    pub(crate) fn new(handle: H, target: u64) -> Self {
        Self::range(handle, 0, target)
    }

    /// Waits for `[start, target)`.
    pub(crate) fn range(handle: H, start: u64, target: u64) -> Self {
        Self {
            handle,
            start,
            target,
            registration: None,
        }
    }

    /// The range this future waits for (an async `Reader` reuses a wait for the same one).
    #[cfg(any(feature = "tokio", feature = "futures-io"))]
    pub(crate) fn range_waited(&self) -> (u64, u64) {
        (self.start, self.target)
    }
}

// Nothing is pinned: the future holds a handle, a target and an id.
impl<H: MarkHandle> Unpin for WaitFor<H> {}

impl<H: MarkHandle> Future for WaitFor<H> {
    type Output = io::Result<u64>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        match this.handle.mark().poll_wait(
            this.start,
            this.target,
            this.registration.take(),
            cx.waker(),
        ) {
            WaitPoll::Ready(result) => Poll::Ready(result),
            WaitPoll::Pending(id) => {
                this.registration = Some(id);
                this.handle.parked();
                Poll::Pending
            }
        }
    }
}

impl<H: MarkHandle> Drop for WaitFor<H> {
    fn drop(&mut self) {
        if let Some(id) = self.registration.take() {
            self.handle.mark().forget(id);
        }
    }
}
