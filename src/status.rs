//! [`Status`]: where a stream stands. Its own file so that `loom-tests` compiles it with
//! `watermark.rs`, which reports it.

use std::io;

/// Where a stream stands, as seen by [`StreamCache::status`](crate::StreamCache::status).
///
/// # Examples
///
/// ```
/// use streamcache::{Status, StreamCache};
///
/// let cache = StreamCache::new(&b"hello"[..])?;
/// cache.wait_complete()?;
/// assert_eq!(cache.status(), Status::Complete { len: 5 });
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The source is still being read; `available` bytes can be read now.
    Filling {
        /// Bytes published so far.
        available: u64,
    },
    /// The source ended; the stream is `len` bytes long.
    Complete {
        /// The stream's final length.
        len: u64,
    },
    /// The source failed after `available` bytes, which stay readable.
    Failed {
        /// Bytes published before the failure.
        available: u64,
        /// The kind of the source's error.
        error: io::ErrorKind,
    },
}
