//! `Builder::cache_dir` where there is no `flock` (Windows): the documented fallback, a private
//! cache, as without it. (Unix: tests/cache_dir.rs.)
#![cfg(not(unix))]

use std::io::Cursor;
use streamcache::StreamCache;

#[test]
fn cache_dir_is_a_private_cache_here() {
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..=255).cycle().take(100_000).collect();
    let open = |data: Vec<u8>| {
        move |r: std::ops::Range<u64>| {
            Ok(Cursor::new(data[r.start as usize..r.end as usize].to_vec()))
        }
    };
    for _ in 0..2 {
        let cache = StreamCache::builder()
            .cache_dir(dir.path())
            .cache_key("k")
            .spawn_ranged(data.len() as u64, open(data.clone()))
            .unwrap();
        assert_eq!(cache.slice(..).unwrap(), &data[..]);
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing in the directory"
    );
}
