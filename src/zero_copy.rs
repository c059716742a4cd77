//! `Bytes` that share the cache's storage instead of copying it.

use crate::shared::Shared;
use bytes::Bytes;
use std::sync::Arc;

/// Owns a reference to the storage and points at published bytes inside it.
struct Owner {
    /// Never read: keeps the storage that `ptr` points into mapped.
    _storage: Arc<Shared>,
    ptr: *const u8,
    len: usize,
}

// SAFETY: `ptr..ptr + len` lies below a published mark: those bytes never change again
// (invariant 1) and are only read, so sharing them between threads is as safe as sharing a
// `&[u8]`. The storage they live in is kept alive by `_storage`, which is `Send + Sync`.
unsafe impl Send for Owner {}

impl AsRef<[u8]> for Owner {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: see the `Send` impl: the bytes are published, immutable and kept mapped by
        // `self._storage` (the storage unmaps regions only when it drops).
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

/// A `Bytes` over `slice`, which must be a published slice of `shared`'s storage.
pub(crate) fn share(shared: &Arc<Shared>, slice: &[u8]) -> Bytes {
    if slice.is_empty() {
        return Bytes::new();
    }
    Bytes::from_owner(Owner {
        _storage: Arc::clone(shared),
        ptr: slice.as_ptr(),
        len: slice.len(),
    })
}
