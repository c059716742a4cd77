//! Workload (r), no seek: one reader reads a whole 64 MiB stream through `spawn_ranged` and
//! through `spawn_resumable` over the same in-process source, in memory and spilling. The
//! throughput is the stream's: its length over the time from spawn to the last byte folded.
//!
//! `cargo bench -p streamcache-benches --bench ranged` (the report, `--bin report -- --only r`,
//! also runs the zip over HTTP and prints the ratios).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use streamcache_benches::{fill_sequential, stream_group, Fill, Setup};

const LEN: u64 = 64 << 20;

fn no_seek(c: &mut Criterion) {
    let setup = Setup::new(LEN);
    for memory in [true, false] {
        let class = if memory { "memory" } else { "spill" };
        let mut group = stream_group(c, format!("ranged/no-seek/{class}"), LEN);
        for fill in Fill::ALL {
            group.bench_with_input(
                BenchmarkId::from_parameter(fill.name()),
                &fill,
                |b, &fill| {
                    b.iter_custom(|iters| {
                        (0..iters)
                            .map(|_| fill_sequential(fill, &setup, memory).expect("sequential run"))
                            .sum()
                    })
                },
            );
        }
        group.finish();
    }
}

criterion_group!(benches, no_seek);
criterion_main!(benches);
