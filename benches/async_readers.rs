//! Async readers next to threaded ones: 4 readers each read the whole stream sequentially and
//! fold every byte from the cache's own memory (`fill_buf`/`consume`, zero-copy), either as
//! 4 OS threads with `BufRead` (the `sequential/4` row of `throughput`, streamcache in memory)
//! or as 4 tokio tasks with `AsyncBufRead` on a multi-threaded runtime with tokio's default
//! worker count (one per core), made before the clock starts. The throughput is the stream's:
//! its length over the time until the last reader is done.
//!
//! `cargo bench -p streamcache-benches --bench async_readers`.

use criterion::{criterion_group, criterion_main, Criterion};
use std::io;
use std::time::{Duration, Instant};
use streamcache_benches::{expected_sum, stream_group, Contender, Setup};

const LEN: u64 = 256 << 20;
const READERS: usize = 4;

/// streamcache with the whole stream in memory, as the `streamcache-mem` contender.
fn cache(setup: &Setup) -> io::Result<streamcache::StreamCache> {
    let limit = usize::try_from(setup.len).expect("the stream fits the address space");
    streamcache_benches::streamcache(setup, limit)
}

fn check(sums: &[u64]) {
    let expected = expected_sum(LEN);
    assert!(
        sums.iter().all(|&s| s == expected),
        "a reader's checksum differs: {sums:x?} vs {expected:#x}"
    );
}

/// 4 threads, `BufRead::fill_buf`: workload (a)'s streamcache (memory) row.
fn threads(setup: &Setup) -> io::Result<Duration> {
    let run = streamcache_benches::sequential(Contender::StreamcacheMem, setup, READERS)?;
    run.check(setup.len)?;
    Ok(run.elapsed)
}

/// 4 tokio tasks, `AsyncBufRead::fill_buf`.
fn tokio_tasks(rt: &tokio::runtime::Runtime, setup: &Setup) -> io::Result<Duration> {
    use tokio::io::AsyncBufReadExt;
    let start = Instant::now();
    let cache = cache(setup)?;
    let sums = rt.block_on(async {
        let tasks: Vec<_> = (0..READERS)
            .map(|_| {
                let mut reader = cache.reader();
                tokio::spawn(async move {
                    let mut sum = 0u64;
                    loop {
                        let buf = reader.fill_buf().await?;
                        if buf.is_empty() {
                            return io::Result::Ok(sum);
                        }
                        sum = streamcache_benches::fold(sum, buf);
                        let n = buf.len();
                        reader.consume(n);
                    }
                })
            })
            .collect();
        let mut sums = Vec::with_capacity(READERS);
        for task in tasks {
            sums.push(task.await.map_err(io::Error::other)??);
        }
        io::Result::Ok(sums)
    })?;
    let elapsed = start.elapsed();
    check(&sums);
    Ok(elapsed)
}

fn async_readers(c: &mut Criterion) {
    let setup = Setup::new(LEN);
    let mut group = stream_group(c, format!("async_readers/{READERS}"), LEN);
    group.bench_function("threads", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| threads(&setup).expect("threaded run"))
                .sum()
        })
    });
    {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .build()
            .expect("a tokio runtime");
        group.bench_function("tokio_tasks", |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| tokio_tasks(&rt, &setup).expect("async run"))
                    .sum()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, async_readers);
criterion_main!(benches);
