//! Workload (b), side by side: 4 threads each do random 4 KiB reads over the completed stream
//! (streamcache's `read_at`, each peer's equivalent), against the floor: a plain 4 KiB `memcpy`
//! from a buffer already in memory, at the same offsets.
//!
//! `cargo bench -p streamcache-benches --bench random_read`. One iteration is one 4 KiB read on
//! each of the 4 threads at once (stream-download allows one reader: one read on one thread).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::time::Duration;
use streamcache_benches::{Contender, Prepared, Setup, RANDOM_READ};

const LEN: u64 = 256 << 20;
const THREADS: usize = 4;

fn random_read(c: &mut Criterion) {
    let setup = Setup::new(LEN);
    let mut group = c.benchmark_group("random_read_4k");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    let targets = std::iter::once(None).chain(Contender::ALL.into_iter().map(Some));
    for target in targets {
        let prepared = Prepared::new(target, &setup).expect("prepare the completed stream");
        let threads = THREADS.min(prepared.max_threads());
        group.throughput(Throughput::Bytes((threads * RANDOM_READ) as u64));
        let id = match target {
            None => "memcpy".to_owned(),
            Some(c) if threads < THREADS => format!("{}-{threads}-reader", c.id()),
            Some(c) => c.id().to_owned(),
        };
        group.bench_function(id, |b| {
            b.iter_custom(|iters| {
                prepared
                    .random_reads(LEN, threads, iters)
                    .expect("random reads")
                    .wall
            })
        });
    }
    group.finish();
}

criterion_group!(benches, random_read);
criterion_main!(benches);
