//! An async `Stream` of chunks as a blocking iterator, driven on the filler thread by the
//! smallest executor there is: poll, and park the thread until the stream's waker unparks it.
//! No runtime is needed; dropping every handle unparks the filler so that it stops.

use crate::shared::Shared;
use futures_core::Stream;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};

/// Wakes the filler thread.
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// The items of `stream`, one `poll_next` at a time, on the current thread.
pub(crate) struct BlockingStream<S> {
    stream: Pin<Box<S>>,
    waker: Waker,
    shared: Arc<Shared>,
}

impl<S> BlockingStream<S> {
    /// Must be called on the thread that will iterate (the filler).
    pub(crate) fn new(stream: S, shared: Arc<Shared>) -> Self {
        shared.cancel.unpark_on_cancel(thread::current());
        Self {
            stream: Box::pin(stream),
            waker: Waker::from(Arc::new(Unpark(thread::current()))),
            shared,
        }
    }
}

impl<S, B> Iterator for BlockingStream<S>
where
    S: Stream<Item = io::Result<B>>,
{
    type Item = io::Result<B>;

    fn next(&mut self) -> Option<io::Result<B>> {
        let mut cx = Context::from_waker(&self.waker);
        loop {
            if let Poll::Ready(item) = self.stream.as_mut().poll_next(&mut cx) {
                return item;
            }
            if let Err(cancelled) = self.shared.cancel.check() {
                return Some(Err(cancelled));
            }
            // Woken by the stream's waker, by `cancel`, or spuriously: poll again either way.
            thread::park();
        }
    }
}
