//! [`Settings`]: what a [`Builder`](crate::Builder) collects, kept once per cache.

use crate::ranged::FetchSettings;
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
    /// For resumable and ranged sources.
    pub(crate) retry: RetryPolicy,
    /// For ranged sources: on-demand fetches.
    pub(crate) fetch: FetchSettings,
    /// The filler thread's name; `None`: `streamcache-filler`.
    pub(crate) thread_name: Option<String>,
    /// One cache for every process (`Builder::cache_dir`): the directory of shared entries.
    pub(crate) cache_dir: Option<PathBuf>,
    /// The entry's key (`Builder::cache_key`; a URL or an object sets its own).
    pub(crate) cache_key: Option<String>,
    /// The entry's validator (a URL's ETag, an object's e_tag): a new one is a new entry.
    pub(crate) validator: Option<String>,
    /// Unused entries beyond this many bytes are evicted (`Builder::cache_limit`).
    pub(crate) cache_limit: Option<u64>,
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
            fetch: FetchSettings {
                fetch_ahead: 4 << 20,
                fetch_span: 4 << 20,
                max_fetches: 2,
                connections: 1,
                defer_fill: false,
            },
            thread_name: None,
            cache_dir: None,
            cache_key: None,
            validator: None,
            cache_limit: None,
        }
    }
}

impl Settings {
    /// The filler thread's name (a ranged source's fetch threads add `:fetch`).
    pub(crate) fn thread_name(&self) -> &str {
        self.thread_name.as_deref().unwrap_or("streamcache-filler")
    }

    /// The spill file's directory.
    pub(crate) fn temp_dir(&self) -> PathBuf {
        self.temp_dir.clone().unwrap_or_else(std::env::temp_dir)
    }
}
