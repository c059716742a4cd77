//! Workload (c), side by side: a reader parked for the next 4 KiB, and the time from the
//! publisher's "it is there" to the reader's return; against a bare parking_lot `Condvar` wake-up
//! measured the same way, notified from the timing thread and from a gate-woken thread (the
//! contenders' shape).
//!
//! `cargo bench -p streamcache-benches --bench wake_latency`. Each iteration parks the reader for
//! 200 µs first (not counted), so criterion's short measurement time still means a few thousand
//! wake-ups.
//! streamcatcher is absent: it has no filler to wake anyone (readers read the source themselves).

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use std::time::Duration;
use streamcache_benches::{Contender, Setup, WakeTarget};

const PARK: Duration = Duration::from_micros(200);

fn wake_latency(c: &mut Criterion) {
    let setup = Setup::new(0);
    let mut group = c.benchmark_group("wake_latency");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(10))
        .measurement_time(Duration::from_millis(200));
    // streamcatcher has no filler: nothing to wake.
    let targets = WakeTarget::ALL
        .into_iter()
        .filter(|&t| t != WakeTarget::Contender(Contender::Streamcatcher));
    for target in targets {
        group.bench_function(target.id(), |b| {
            b.iter_custom(|iters| {
                let iters = usize::try_from(iters).expect("fits");
                streamcache_benches::wake_latencies(target, &setup, iters, PARK)
                    .expect("wake latencies")
                    .into_iter()
                    .sum()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, wake_latency);
criterion_main!(benches);
