//! Throughput of one stream read by several readers, and the cost of a small `read_at`.
//!
//! `cargo bench --bench throughput`. The source is an in-memory buffer, so the source is never
//! the bottleneck; the stream fits in memory (`memory`) or spills past 8 MiB (`spill`).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::io::{self, BufRead, Cursor};
use std::sync::Arc;
use streamcache::StreamCache;

const LEN: usize = 64 << 20;

fn source() -> Cursor<Arc<[u8]>> {
    static DATA: std::sync::OnceLock<Arc<[u8]>> = std::sync::OnceLock::new();
    let data = DATA.get_or_init(|| (0..LEN).map(|i| (i * 31 % 251) as u8).collect());
    Cursor::new(Arc::clone(data))
}

/// Folds every byte the reader hands out, straight from the cache's memory.
fn fold(mut reader: streamcache::Reader) -> io::Result<u64> {
    let mut sum = 0u64;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(sum);
        }
        sum = buf.iter().fold(sum, |s, &b| s.wrapping_add(u64::from(b)));
        let n = buf.len();
        reader.consume(n);
    }
}

fn readers(c: &mut Criterion) {
    let mut group = c.benchmark_group("stream");
    group.throughput(Throughput::Bytes(LEN as u64));
    group.sample_size(10);
    for (storage, memory_limit) in [("memory", LEN), ("spill", 8 << 20)] {
        for n in [1usize, 4] {
            group.bench_with_input(BenchmarkId::new(storage, n), &n, |b, &n| {
                b.iter(|| {
                    let cache = StreamCache::builder()
                        .memory_limit(memory_limit)
                        .spawn(source())
                        .unwrap();
                    let threads: Vec<_> = (0..n)
                        .map(|_| {
                            let r = cache.reader();
                            std::thread::spawn(move || fold(r).unwrap())
                        })
                        .collect();
                    for t in threads {
                        black_box(t.join().unwrap());
                    }
                })
            });
        }
    }
    group.finish();
}

fn read_at_4k(c: &mut Criterion) {
    let cache = StreamCache::builder()
        .memory_limit(LEN)
        .spawn(source())
        .unwrap();
    cache.wait_complete().unwrap();
    let mut buf = [0u8; 4096];
    let mut offset = 0u64;
    c.bench_function("read_at_4k", |b| {
        b.iter(|| {
            offset = (offset + 1_048_583) % (LEN as u64 - 4096);
            black_box(cache.read_at(offset, &mut buf).unwrap())
        })
    });
}

criterion_group!(benches, readers, read_at_4k);
criterion_main!(benches);
