//! Workload (a), side by side: 1, 2, 4 and 8 readers each read the whole stream sequentially and
//! fold every byte, for every contender and for the physical limits (one copy of the stream, no
//! reader). The throughput is the stream's: its length over the time until the last reader is
//! done.
//!
//! `cargo bench -p streamcache-benches --bench throughput` (256 MiB streams; the report,
//! `--bin report`, runs 1 GiB and prints the ratios). Filter with criterion's usual argument, e.g. `-- 'sequential/4'`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use streamcache_benches::{stream_group, Contender, Limit, Setup};

const LEN: u64 = 256 << 20;

fn limits(c: &mut Criterion) {
    let setup = Setup::new(LEN);
    let mut group = stream_group(c, "limit", LEN);
    for limit in Limit::ALL {
        group.bench_function(limit.id(), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| streamcache_benches::limit(limit, &setup).expect("limit run"))
                    .sum()
            })
        });
    }
    group.finish();
}

fn sequential(c: &mut Criterion) {
    let setup = Setup::new(LEN);
    for readers in [1usize, 2, 4, 8] {
        let mut group = stream_group(c, format!("sequential/{readers}"), LEN);
        for contender in Contender::ALL {
            if contender.max_readers().is_some_and(|max| readers > max) {
                continue; // stream-download: one reader per download
            }
            group.bench_with_input(
                BenchmarkId::from_parameter(contender.id()),
                &readers,
                |b, &readers| {
                    b.iter_custom(|iters| {
                        (0..iters)
                            .map(|_| {
                                let run =
                                    streamcache_benches::sequential(contender, &setup, readers)
                                        .expect("sequential run");
                                run.check(LEN).expect("every byte read");
                                run.elapsed
                            })
                            .sum()
                    })
                },
            );
        }
        group.finish();
    }
}

criterion_group!(benches, limits, sequential);
criterion_main!(benches);
