//! Objects as sources (feature `object-store`), on object_store's own `InMemory` and
//! `LocalFileSystem`, behind a store that logs, holds and breaks its gets: the zip's end
//! fetched while the fill is held, an overwrite mid-read, errors and their kinds, a transient
//! break resumed, threads and runtimes ended by a drop, spawning from inside a runtime.
//! Real servers (moto's S3, Azurite) are tests/object_servers.rs.

mod common;

use common::{fill_pattern, HANG_GUARD};
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use std::io::{self, ErrorKind};
use std::sync::Arc;
use std::time::{Duration, Instant};
use streamcache::StreamCache;

#[path = "common/held_store.rs"]
mod held_store;
#[path = "common/zips.rs"]
mod zips;
use held_store::Held;
use zips::{check_zip, zip_of};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

/// Puts `data` at `location` as a multipart upload of 1 MiB parts.
fn put_multipart(store: &dyn ObjectStore, location: &Path, data: &[u8]) {
    runtime().block_on(async {
        let upload = store.put_multipart(location).await.unwrap();
        let mut write = WriteMultipart::new_with_chunk_size(upload, 1 << 20);
        write.write(data);
        write.finish().await.unwrap();
    });
}

fn put(store: &dyn ObjectStore, location: &Path, data: Vec<u8>) {
    runtime()
        .block_on(store.put(location, PutPayload::from(data)))
        .unwrap();
}

#[test]
fn a_zips_entry_list_and_last_entry_are_fetched_while_the_fill_is_held() {
    let (zip, digests) = zip_of(8, 256 << 10);
    let inner = Arc::new(InMemory::new());
    let location = Path::from("archives/data.zip");
    put_multipart(inner.as_ref(), &location, &zip);
    let store = Held::new(inner);
    store.hold_from_start(true);
    let cache = StreamCache::builder()
        .fetch_ahead(64 << 10)
        .fetch_span(64 << 10)
        .spawn_object(Arc::new(store.clone()), location)
        .unwrap();
    assert_eq!(cache.expected_len(), Some(zip.len() as u64));

    check_zip(&cache, &digests);
    // Nothing came from the start: the fill is still held, every byte read was fetched.
    let present = cache.present();
    assert!(present.iter().all(|r| r.start > 0), "{present:?}");
    let fetched: u64 = present.iter().map(|r| r.end - r.start).sum();
    assert!(
        fetched < zip.len() as u64 / 4,
        "{fetched} of {} bytes",
        zip.len()
    );
    assert!(store.gets().iter().filter(|r| r.start > 0).count() >= 2);

    store.hold_from_start(false);
    assert_eq!(cache.wait_complete().unwrap(), zip.len() as u64);
    assert_eq!(cache.slice(..).unwrap(), &zip[..]);
}

#[test]
fn an_overwrite_mid_read_fails_the_missing_bytes_and_is_never_spliced() {
    let len: usize = 1 << 20;
    let first: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    let inner = Arc::new(InMemory::new());
    let location = Path::from("v.bin");
    put(inner.as_ref(), &location, first.clone());
    let store = Held::new(Arc::<InMemory>::clone(&inner));
    store.hold_from_start(true);
    let cache = StreamCache::builder()
        .fetch_ahead(4096)
        .fetch_span(64 << 10)
        .retries(0)
        .spawn_object(Arc::new(store.clone()), location.clone())
        .unwrap();
    // The tail, fetched: the first version.
    let tail = len - 1000..len;
    let at = |r: &std::ops::Range<usize>| r.start as u64..r.end as u64;
    assert_eq!(cache.slice(at(&tail)).unwrap(), &first[tail.clone()]);

    // The same length, other bytes.
    put(inner.as_ref(), &location, vec![0xEE; len]);
    store.hold_from_start(false);
    let err = cache.slice(0..10).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");
    assert!(err.to_string().contains("v.bin"), "{err}");
    let err = cache.slice(at(&(len / 2..len / 2 + 10))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");
    // What is present stays the first version's, and nothing else is.
    assert_eq!(cache.slice(at(&tail)).unwrap(), &first[tail]);
    for range in cache.present() {
        let (a, b) = (range.start as usize, range.end as usize);
        assert_eq!(cache.slice(range).unwrap(), &first[a..b]);
    }
}

#[test]
fn missing_objects_are_not_found_and_bad_urls_and_options_invalid_input() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let err = StreamCache::builder()
        .spawn_object(store, Path::from("no/such/key"))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("no/such/key"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let missing = format!("file://{}/missing.bin", dir.path().display());
    let err = StreamCache::from_object_url(&missing, &[]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");

    let secret = "SECRET-VALUE-never-shown";
    for (url, options) in [
        ("not a url", &[][..]),
        ("ftp://host/file", &[]),
        ("http://example.com/file", &[]),
        ("file:///tmp/x", &[("aws_region", secret)]),
        (
            "s3://bucket/key",
            &[("aws_secret_access_key", secret), ("aws_endpont", "x")],
        ),
        (
            "az://container/blob",
            &[("azure_storage_account_key", secret), ("nope", secret)],
        ),
        ("gs://bucket/key", &[("google_service_accout", secret)]),
    ] {
        let err = StreamCache::from_object_url(url, options).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{url}: {err}");
        assert!(!err.to_string().contains(secret), "{url}: {err}");
        assert!(!format!("{err:?}").contains(secret), "{url}: {err:?}");
    }
    let builder = StreamCache::builder().tokio_handle(runtime().handle().clone());
    assert!(!format!("{builder:?}").contains("Handle {"), "{builder:?}");
}

#[test]
fn a_file_url_reads_a_local_file_with_many_connections() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = vec![0; (3 << 20) + 12345];
    fill_pattern(0, &mut data);
    let path = dir.path().join("data with space.bin");
    std::fs::write(&path, &data).unwrap();
    let url = url_of(&path);
    let cache = StreamCache::builder()
        .connections(4)
        .fetch_span(256 << 10)
        .spawn_object_url(&url, &[])
        .unwrap();
    assert_eq!(cache.wait_complete().unwrap(), data.len() as u64);
    assert_eq!(cache.slice(..).unwrap(), &data[..]);
}

/// A `file://` URL of `path`, its bytes percent-encoded where a URL needs it.
fn url_of(path: &std::path::Path) -> String {
    format!("file://{}", path.display()).replace(' ', "%20")
}

#[test]
fn a_transient_break_in_a_body_is_resumed_where_it_broke() {
    let mut data = vec![0; 2 << 20];
    fill_pattern(7, &mut data);
    let inner = Arc::new(InMemory::new());
    let location = Path::from("flaky.bin");
    put(inner.as_ref(), &location, data.clone());
    let store = Held::new(inner);
    // The first two bodies break after 100 KiB with a timeout.
    store.break_bodies(2, 100 << 10);
    let cache = StreamCache::builder()
        .retry_backoff(Duration::from_millis(1))
        .spawn_object(Arc::new(store.clone()), location)
        .unwrap();
    assert_eq!(cache.wait_complete().unwrap(), data.len() as u64);
    assert_eq!(cache.slice(..).unwrap(), &data[..]);
    let gets = store.gets();
    assert_eq!(gets.len(), 3, "{gets:?}");
    assert_eq!(gets[1].start, 100 << 10, "{gets:?}");
    assert_eq!(gets[2].start, 200 << 10, "{gets:?}");

    // Not transient: the stream fails with it.
    let store = Held::new(Arc::new(InMemory::new()));
    put(store.inner().as_ref(), &Path::from("x"), data.clone());
    store.break_bodies_with(1, 100 << 10, ErrorKind::PermissionDenied);
    let cache = StreamCache::builder()
        .spawn_object(Arc::new(store), Path::from("x"))
        .unwrap();
    let err = cache.wait_complete().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
}

#[cfg(target_os = "linux")]
#[test]
fn dropping_every_handle_ends_the_filler_the_lanes_and_the_runtime() {
    let threads = |prefix: &str| -> usize {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
            .filter(|name| name.starts_with(prefix))
            .count()
    };
    let inner = Arc::new(InMemory::new());
    put(inner.as_ref(), &Path::from("big"), vec![1; 4 << 20]);
    let store = Held::new(inner);
    store.hold_from_start(true);
    let cache = StreamCache::builder()
        .thread_name("objdrop")
        .connections(2)
        .fetch_span(1 << 20)
        .spawn_object(Arc::new(store.clone()), Path::from("big"))
        .unwrap();
    assert_eq!(cache.slice((4 << 20) - 1..).unwrap(), [1]);
    assert!(
        threads("objdrop:io") >= 1,
        "the runtime's threads are named"
    );
    drop(cache);
    store.hold_from_start(false);
    let start = Instant::now();
    while threads("objdrop") > 0 {
        assert!(
            start.elapsed() < HANG_GUARD,
            "threads left: {}",
            threads("objdrop")
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawning_from_inside_a_runtime_works_with_its_handle_or_without() {
    let inner = Arc::new(InMemory::new());
    let mut data = vec![0; 300_000];
    fill_pattern(3, &mut data);
    inner
        .put(&Path::from("a"), PutPayload::from(data.clone()))
        .await
        .unwrap();
    let store: Arc<dyn ObjectStore> = inner;
    for handle in [None, Some(tokio::runtime::Handle::current())] {
        let mut builder = StreamCache::builder().fetch_ahead(1000);
        if let Some(handle) = handle {
            builder = builder.tokio_handle(handle);
        }
        let cache = builder
            .spawn_object(Arc::clone(&store), Path::from("a"))
            .unwrap();
        let read = cache.clone();
        let tail = tokio::task::spawn_blocking(move || read.slice(299_990..).map(|s| s.to_vec()));
        assert_eq!(tail.await.unwrap().unwrap(), &data[299_990..]);
        let all = tokio::task::spawn_blocking(move || cache.slice(..).map(|s| s.to_vec()));
        assert_eq!(all.await.unwrap().unwrap(), data);
    }
}

#[test]
fn a_current_thread_runtimes_handle_is_invalid_input() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let err = StreamCache::builder()
        .tokio_handle(runtime.handle().clone())
        .spawn_object(Arc::new(InMemory::new()), Path::from("a"))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
}

#[test]
fn eight_threads_each_with_a_cache_of_their_own_read_one_object() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = vec![0; 1 << 20];
    fill_pattern(11, &mut data);
    std::fs::write(dir.path().join("shared.bin"), &data).unwrap();
    let url = url_of(&dir.path().join("shared.bin"));
    let data = Arc::new(data);
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let (url, data) = (url.clone(), Arc::clone(&data));
            std::thread::spawn(move || -> io::Result<()> {
                let cache = StreamCache::builder()
                    .fetch_ahead(1 << 10)
                    .connections(1 + i % 3)
                    .fetch_span(128 << 10)
                    .spawn_object_url(&url, &[])?;
                let at = (i * 100_003) % data.len();
                assert_eq!(cache.slice(at as u64..)?, &data[at..]);
                assert_eq!(cache.slice(..)?, &data[..]);
                Ok(())
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap().unwrap();
    }
}

/// `cache_dir` with an object: a second cache of it reads the entry, with no get of a range;
/// the object overwritten (a new e_tag) is a new entry, read again.
#[cfg(unix)]
#[test]
fn an_object_in_cache_dir_is_read_once_and_a_new_version_is_a_new_entry() {
    let dir = tempfile::tempdir().unwrap();
    let inner = Arc::new(InMemory::new());
    let location = Path::from("models/weights.bin");
    let mut data = vec![0; 1 << 20];
    fill_pattern(11, &mut data);
    put(inner.as_ref(), &location, data.clone());
    let store = Held::new(inner.clone());
    let read = |name: &str| {
        let cache = StreamCache::builder()
            .cache_dir(dir.path())
            .thread_name(name)
            .spawn_object(Arc::new(store.clone()), location.clone())
            .unwrap();
        let len = cache.wait_complete().unwrap();
        let bytes = cache.slice(..).unwrap().to_vec();
        drop(cache);
        let deadline = Instant::now() + HANG_GUARD;
        while common::threads_named(name) > 0 {
            assert!(Instant::now() < deadline, "the cache's threads did not end");
            std::thread::sleep(Duration::from_millis(5));
        }
        (len, bytes, store.gets().len())
    };
    let (len, bytes, gets) = read("sc-obj-1");
    assert_eq!((len, &bytes[..]), (data.len() as u64, &data[..]));
    assert!(gets >= 1);
    let (_, again, gets_again) = read("sc-obj-2");
    assert_eq!(again, data);
    assert_eq!(
        gets_again, gets,
        "the entry was complete: no range asked for"
    );
    let mut new = vec![0; 1 << 20];
    fill_pattern(12, &mut new);
    put(inner.as_ref(), &location, new.clone());
    let (_, changed, gets_changed) = read("sc-obj-3");
    assert_eq!(
        changed, new,
        "a new e_tag: a new entry, never the old bytes"
    );
    assert!(gets_changed > gets);
}
