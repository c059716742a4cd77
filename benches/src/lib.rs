//! The engine of streamcache's benchmarks: the contenders and workloads shared by the criterion
//! benches (`benches/*.rs`) and by the report (`src/bin/report`), so that both measure exactly the
//! same thing; one module per workload.
//!
//! Every contender gets the same source (an in-memory [`Generator`] whose bytes depend only on
//! their offset, so no contender's read sizes change what it sees), the same 64 KiB chunks, the
//! same length hint where it takes one, and every reader folds every byte it reads with [`fold`].
//! Each peer is given its best reasonable settings; the choices are written next to each one
//! (`contenders.rs`).
//!
//! Linux only: the limits, the memory workload and the machine facts read `/proc` and call
//! `posix_fallocate`, `statfs` and `clock_gettime` through libc.

mod connections;
mod contenders;
mod limits;
mod memory;
mod object_store;
mod random_read;
mod ranged;
#[cfg(unix)]
mod shared_entry;
mod source;
mod sys;
mod throughput;
mod wake_latency;

pub use connections::{
    aria2c, at_second_start, conn_rss_child, conn_rss_measure, find_program, hf_transfer,
    hf_transfer_version, probe, sha256_read, streamcache_fill, streamcache_hashing,
    write_generated, Digest256, Download, Hashed, Nginx, Sent, CONN_RSS_CHILD, SECOND_PHASE,
};
pub use contenders::{
    stream_download, streamcache, streamcatcher, tokio_runtime, Class, Contender, Locked,
    LockedReader, Setup, Store,
};
pub use limits::{
    bare_pipeline, fallocate, fallocated_map, filler_alone, fold_time, huge_map, limit,
    present_buffer, prewarm, Limit,
};
pub use memory::{rss_child, rss_measure, RSS_CHILD};
pub use object_store::{
    clear_aws_env, last_entry_sha256, moto_server_path, s3fs_cat, s3fs_version, s3fs_zip,
    sha256_hex, streamcache_whole, streamcache_zip, Moto, Proxy, S3Run,
};
pub use random_read::{Prepared, RandomRun, RANDOM_READ};
pub use ranged::{
    fill_sequential, ranged_cache, spawn_url, stored_zip, zip_stream_download, zip_streamcache,
    Fill, HttpServer, StoredZip, ZipRun, FETCH_SPAN,
};
#[cfg(unix)]
pub use shared_entry::{
    complete_entry, monotonic_ns, race, read_in_child, read_in_process, shared_child, wake_run,
    ChildRead, RaceRun, Waiters, WakeRun, PIECE, SHARED_CHILD,
};
pub use source::{expected_sum, fold, fold_bufread, fold_read, GenStream, Generator, CHUNK};
pub use sys::{
    cores, file_pmd_mapped_kib, free_space, is_tmpfs, loadavg, mem_available, rss_anon_kb,
    thread_cpu_time, ThreadUsage,
};
pub use throughput::{sequential, stream_group, Run};
pub use wake_latency::{quantile, wake_latencies, WakeTarget, WAKE_CHUNK};

/// A mebibyte.
pub const MIB: u64 = 1 << 20;
