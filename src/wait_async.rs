//! Waiting without blocking a thread: a future that registers its `Waker` with the watermark.

use crate::shared::Shared;
use crate::watermark::Poll as MarkPoll;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// Resolves when `target` bytes are available or the stream has ended (as `wait_for`).
/// Dropping it deregisters its waker.
#[derive(Debug)]
pub(crate) struct WaitFor {
    shared: Arc<Shared>,
    target: u64,
    /// The watermark's id for our registered waker, while one is registered.
    registration: Option<u64>,
}

impl WaitFor {
    pub(crate) fn new(shared: Arc<Shared>, target: u64) -> Self {
        Self {
            shared,
            target,
            registration: None,
        }
    }
}

impl WaitFor {
    /// The offset this future waits for.
    pub(crate) fn target(&self) -> u64 {
        self.target
    }
}

impl Future for WaitFor {
    type Output = io::Result<u64>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        match this
            .shared
            .mark
            .poll_wait(this.target, this.registration.take(), cx.waker())
        {
            MarkPoll::Ready(result) => Poll::Ready(result),
            MarkPoll::Pending(id) => {
                this.registration = Some(id);
                Poll::Pending
            }
        }
    }
}

impl Drop for WaitFor {
    fn drop(&mut self) {
        if let Some(id) = self.registration.take() {
            self.shared.mark.cancel(id);
        }
    }
}
