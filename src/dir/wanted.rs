//! What a cache asks of a shared entry, and who it is for it: on every platform (the
//! fallback of `fallback.rs` takes them too, and gives a private cache).

use std::path::Path;

/// Who a process is for an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Writer,
    Reader,
}

/// What a cache asks for: its directory, key, validator and length.
#[derive(Debug, Clone)]
pub(crate) struct Wanted<'a> {
    pub(crate) dir: &'a Path,
    pub(crate) key: &'a [u8],
    pub(crate) validator: &'a [u8],
    pub(crate) len: u64,
    /// Evict unused entries beyond this many bytes after opening (`Builder::cache_limit`).
    pub(crate) cache_limit: Option<u64>,
}
