//! Windows: a view may not reach past the end of the file (creating the mapping would extend
//! the file to the view's size), so the file is first extended with `set_len` — which allocates
//! its clusters and fails on a full disk — and then mapped to its new length. Every growth step
//! makes a new view of the whole stream; the earlier views stay mapped while the cache lives.
//! That keeps invariant 1: the file only ever grows, and Windows lets a file with mapped views
//! grow (only shrinking it is refused, `ERROR_USER_MAPPED_FILE`), so every old view keeps its
//! bytes where they were, and readers move to the newest view, which holds them all. Growth
//! steps are large (256 MiB to 1 GiB, or the expected length at once), so views are few. The
//! unnamed file is `FILE_FLAG_DELETE_ON_CLOSE` (tempfile), gone when the last view and handle
//! close.

use std::fs::File;
use std::io;

/// Views end at the end of the file: each reservation is followed by a new view.
pub(super) const MAP_PAST_END_OF_FILE: bool = false;

/// Extends the file to `to`; NTFS allocates the clusters, so a full disk fails here.
pub(super) fn allocate(file: &File, _from: u64, to: u64) -> io::Result<()> {
    file.set_len(to)
}

/// Writes all of `bytes` at `offset`. `seek_write` also moves the file pointer, which nothing
/// here uses; `WriteFile` and the file's views share the system cache, so the bytes are in
/// every view when it returns.
pub(super) fn write_at(file: &File, mut bytes: &[u8], mut offset: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !bytes.is_empty() {
        match file.seek_write(bytes, offset) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                bytes = &bytes[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
