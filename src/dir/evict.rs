//! `Builder::cache_limit`: entries that no process has open go, least recently used first
//! (an entry's modification time is set each time a cache opens it), until the directory's
//! entries take at most the limit. An entry is open while any process holds its file's shared
//! lock, so eviction takes that lock exclusive, without waiting, and skips the entry if it
//! cannot; it takes the writer lock the same way. Removal is an unlink: a file some process
//! still maps (its `Bytes` outliving its cache) keeps its bytes, and is never truncated.

use super::lock::{flock, still_at};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// A `.new-*` file older than this is a creation that died before its rename.
const STALE_NEW: Duration = Duration::from_secs(3600);

/// Marks `entry` as just used.
pub(crate) fn touch(entry: &File) {
    let _ = entry.set_modified(SystemTime::now()); // Advice for eviction only.
}

/// Evicts unused entries of `dir` (never `keep`) until they take at most `limit` bytes.
///
/// # Errors
///
/// The directory cannot be read.
pub(crate) fn evict(dir: &Path, limit: u64, keep: &Path) -> io::Result<()> {
    let mut entries: Vec<(SystemTime, u64, PathBuf)> = Vec::new();
    let mut total = 0;
    for item in fs::read_dir(dir)? {
        let Ok(item) = item else { continue };
        let path = item.path();
        let Ok(meta) = item.metadata() else { continue };
        let name = item.file_name();
        let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        if name.to_string_lossy().starts_with(".new-") {
            if modified.elapsed().is_ok_and(|age| age > STALE_NEW) {
                let _ = fs::remove_file(&path);
            }
        } else if path.extension().is_some_and(|x| x == "entry") {
            total += meta.len();
            entries.push((modified, meta.len(), path));
        }
    }
    entries.sort();
    for (_, len, path) in entries {
        if total <= limit {
            break;
        }
        if path != keep && remove_if_unused(&path)? {
            total -= len;
        }
    }
    Ok(())
}

/// Removes the entry at `path` and its lock file if no process has the entry open and none
/// is its writer: both locks taken without waiting, both files still the ones named.
fn remove_if_unused(path: &Path) -> io::Result<bool> {
    let Some(entry) = open_existing(path)? else {
        return Ok(false);
    };
    if !flock(&entry, libc::LOCK_EX, false)? || !still_at(&entry, path)? {
        return Ok(false);
    }
    let lock_path = path.with_extension("lock");
    let lock = open_existing(&lock_path)?;
    if let Some(lock) = &lock {
        if !flock(lock, libc::LOCK_EX, false)? {
            return Ok(false); // A writer (or one about to be).
        }
    }
    fs::remove_file(path)?;
    if lock.is_some() {
        let _ = fs::remove_file(&lock_path);
    }
    Ok(true)
}

fn open_existing(path: &Path) -> io::Result<Option<File>> {
    match OpenOptions::new().read(true).write(true).open(path) {
        Ok(file) => Ok(Some(file)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}
