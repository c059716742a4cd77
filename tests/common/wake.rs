//! For the async suites: a waker that counts its wakes and copies, and a cache fed by a
//! channel.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::task::{Wake, Waker};
use streamcache::StreamCache;

/// A waker that counts its wakes (by value or by reference, neither making a copy);
/// `Arc::strong_count` shows how many copies are still held (by the watermark, if a
/// registration leaked).
#[derive(Default)]
pub struct CountingWaker(pub AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A counting waker: the count, and the waker.
pub fn counting_waker() -> (Arc<CountingWaker>, Waker) {
    let count = Arc::new(CountingWaker::default());
    (Arc::clone(&count), Waker::from(count))
}

/// How many copies of the waker exist besides the test's own two (`count` and `waker`).
pub fn held(count: &Arc<CountingWaker>) -> usize {
    Arc::strong_count(count) - 2
}

/// A cache whose source yields only what is sent on the returned channel; the stream ends when
/// the sender drops.
pub fn channel_cache() -> (mpsc::Sender<io::Result<Vec<u8>>>, StreamCache) {
    let (tx, rx) = mpsc::channel::<io::Result<Vec<u8>>>();
    let cache = StreamCache::builder()
        .spawn_chunks(rx)
        .expect("spawn the filler");
    (tx, cache)
}

pub fn assert_send<T: Send>(_: &T) {}

pub fn assert_send_static<T: Send + 'static>(_: &T) {}
