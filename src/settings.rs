//! [`Settings`]: what a [`Builder`](crate::Builder) collects, kept once per cache.

use crate::source::RetryPolicy;
use std::path::PathBuf;
use std::time::Duration;

/// A cache's settings, fixed at spawn and shared by the filler, the storage and the handles.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// Bytes kept in anonymous memory before spilling.
    pub(crate) memory_limit: usize,
    /// Where the spill file goes; `None`: [`std::env::temp_dir`].
    pub(crate) temp_dir: Option<PathBuf>,
    /// The length hint (the true length for resumable sources, which treat an earlier end as
    /// a break).
    pub(crate) expected_len: Option<u64>,
    /// The cap; past it the stream fails with `StorageFull`.
    pub(crate) max_len: Option<u64>,
    /// The largest single read from the source.
    pub(crate) chunk_size: usize,
    /// For resumable sources.
    pub(crate) retry: RetryPolicy,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            memory_limit: 8 << 20,
            temp_dir: None,
            expected_len: None,
            max_len: None,
            chunk_size: 64 << 10,
            retry: RetryPolicy {
                retries: 3,
                first_backoff: Duration::from_millis(100),
            },
        }
    }
}

impl Settings {
    /// The spill file's directory.
    pub(crate) fn temp_dir(&self) -> PathBuf {
        self.temp_dir.clone().unwrap_or_else(std::env::temp_dir)
    }
}
