//! Read one byte stream once; let many threads read any part of it as soon as it has arrived,
//! without copying it.
//!
//! A [`StreamCache`] starts one filler thread that drains a source (any [`Read`](std::io::Read),
//! or an iterator of chunks) into memory, then into a growing memory-mapped temp file, and
//! publishes how far it got. Any number of threads read from it at the same time, through
//! cloneable handles: [`slice`](StreamCache::slice) and [`bytes`](StreamCache::bytes) hand out the
//! stored bytes themselves, [`read_at`](StreamCache::read_at) copies, and a [`Reader`] is a
//! `Read + BufRead + Seek` cursor. A read of bytes that have not arrived yet waits for exactly
//! those bytes, parked (no spinning), and is woken as soon as they are there.
//!
//! ```
//! use std::io::Read;
//! use streamcache::StreamCache;
//!
//! // Any `Read + Send + 'static`: a file, a pipe, an HTTP body.
//! let source = std::io::repeat(b'x').take(10 << 20);
//! let cache = StreamCache::builder().memory_limit(1 << 20).spawn(source)?;
//!
//! // The end of the stream, while the beginning may still be arriving.
//! let tail = cache.clone();
//! let t = std::thread::spawn(move || tail.slice((10 << 20) - 4..).map(|s| s.to_vec()));
//!
//! // A cursor, as for any reader.
//! let mut all = Vec::new();
//! cache.reader().read_to_end(&mut all)?;
//! assert_eq!(all.len(), 10 << 20);
//! assert_eq!(t.join().unwrap()?, b"xxxx");
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Recipes
//!
//! **Several digests in one pass.** Give each thread its own [`Reader`] and let it consume
//! [`BufRead::fill_buf`](std::io::BufRead::fill_buf): every thread reads the cache's memory
//! directly, and the source is read once.
//!
//! **Random access while streaming.** `slice(a..b)` waits only for byte `b`; `SeekFrom::End`
//! waits for the end. A zip's central directory at the end of an archive can be parsed by one
//! thread while others extract entries that have already arrived.
//!
//! **A chunked HTTP body.** [`Builder::spawn_chunks`] takes an iterator of `io::Result` chunks;
//! [`Builder::expected_len`] takes the Content-Length to size the spill file at once.
//!
//! # Storage and limits
//!
//! The first [`Builder::memory_limit`] bytes (8 MiB by default) live in anonymous memory. Past
//! that the whole stream goes to one unnamed temp file in [`Builder::temp_dir`], memory-mapped
//! and reserved on disk in large steps, so that any range of the stream is one contiguous
//! `&[u8]`. Anonymous memory stays within `memory_limit` whatever the stream's length: the file's
//! pages belong to the page cache, which the kernel evicts as it needs.
//!
//! # The safety model
//!
//! * Bytes below the published mark never change and never move: a slice handed out stays valid
//!   for as long as the handle it was borrowed from, and a [`bytes::Bytes`] keeps the storage
//!   alive on its own. Growing the file never unmaps an earlier mapping while the cache lives.
//! * The filler is the only writer, and writes only at or above the mark; readers only read below
//!   it. The mark is published with a Release store and read with an Acquire load.
//! * Space in the spill file is reserved (`posix_fallocate`) before the filler writes there
//!   through the mapping, so a full disk is an `io::Error` (`StorageFull`) for the readers that
//!   need the bytes that did not fit, never a SIGBUS.
//! * When every [`StreamCache`] and [`Reader`] is dropped, the filler stops at its next read and
//!   the file is closed; it was never linked into the file system.
//!
//! # Errors
//!
//! A source error at offset N reaches every reader that needs a byte at or past N, with the
//! source's [`ErrorKind`](std::io::ErrorKind) and message; everything before N stays readable. A
//! panicking source fails the stream the same way. Bad arguments (inverted ranges, offsets that
//! overflow, seeking before 0) are `InvalidInput` errors, never panics.
//!
//! # Platforms
//!
//! Linux is the platform that is tested. Other Unix systems with `posix_fallocate` are expected to
//! work. macOS and Windows are not supported yet.

#![deny(missing_docs, unsafe_op_in_unsafe_fn)]
#![warn(missing_debug_implementations, unreachable_pub, rust_2018_idioms)]

mod builder;
mod cache;
mod filler;
mod range;
mod reader;
mod shared;
mod storage;
mod sync;
mod wait_async;
mod watermark;
mod zero_copy;

pub use builder::Builder;
pub use cache::{Status, StreamCache};
pub use reader::Reader;

/// The README's example, compiled and run as a doc test so that it cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
