//! Model checks of streamcache's watermark protocol (DESIGN.md invariant 3: no lost wake-up, no
//! busy wait) under [loom](https://docs.rs/loom).
//!
//! This crate holds no copy of the protocol: with `--cfg streamcache_loom` it compiles the very
//! files that ship, `src/sync.rs`, `src/status.rs`, `src/ranges.rs`, `src/watermark.rs`, the async waiter
//! `src/wait_async.rs`, a shared entry's publish-and-wake protocol `src/dir/protocol.rs`
//! and its hand-off between a reader process's waiting threads and mirror thread
//! `src/dir/handoff.rs`, and `sync.rs` then hands `watermark.rs` loom's atomics, mutex, condition variable and `Arc`
//! instead of std's and parking_lot's. The models live in `models.rs` (inside this crate, because the watermark's items
//! are `pub(crate)`), and those of the shared entry in `shared_entry.rs`.
//!
//! Without the cfg this crate is empty, so `cargo test --workspace` and clippy build nothing of
//! it. Run the models with `scripts/loom` from the repository root, which does
//!
//! ```text
//! RUSTFLAGS="--cfg streamcache_loom" cargo test --release -p loom-tests --target-dir target/loom
//! ```
//!
//! Every model has its own preemption bound (see `models.rs`); `LOOM_MAX_PREEMPTIONS` overrides
//! them all, `LOOM_LOG=1` / `LOOM_LOCATION=1` explain a failure.

// The shipped files, whole. Not all of them is used by the models (`notify_all`, the `Debug`
// impls), and the library half of this crate uses none of it: hence `dead_code`.
#[cfg(streamcache_loom)]
#[allow(dead_code)]
#[path = "../../src/sync.rs"]
mod sync;

#[cfg(streamcache_loom)]
#[allow(dead_code)]
#[path = "../../src/status.rs"]
mod status;

#[cfg(streamcache_loom)]
#[allow(dead_code)]
#[path = "../../src/ranges.rs"]
mod ranges;

#[cfg(streamcache_loom)]
#[allow(dead_code)]
#[path = "../../src/watermark.rs"]
mod watermark;

#[cfg(streamcache_loom)]
#[allow(dead_code)]
#[path = "../../src/wait_async.rs"]
mod wait_async;

#[cfg(streamcache_loom)]
#[allow(dead_code)]
#[path = "../../src/dir/protocol.rs"]
mod protocol;

#[cfg(streamcache_loom)]
#[allow(dead_code)]
#[path = "../../src/dir/handoff.rs"]
mod handoff;

#[cfg(all(test, streamcache_loom))]
mod models;

#[cfg(all(test, streamcache_loom))]
mod shared_entry;
