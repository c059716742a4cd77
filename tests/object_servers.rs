//! Objects on real servers that no one here wrote, started by the tests on 127.0.0.1: moto's
//! S3 server and Azurite's blob server (both installed by `scripts/object-servers`; found there
//! or at `$STREAMCACHE_MOTO_SERVER` and `$STREAMCACHE_AZURITE_BLOB`). Between the cache and the
//! server, where a test needs it, a TCP proxy that counts the bytes sent, throttles them, or
//! stalls a connection.
//!
//! Every store has an explicit endpoint, `allow_http` and static credentials, and the
//! `AWS_*`/`AZURE_*`/`GOOGLE_*` environment is cleared first: nothing looks for a cloud's
//! metadata service, no traffic leaves loopback.
//!
//! Ignored by the plain `cargo test` (a fresh machine has no servers, and a test that skips
//! must not pass); `.ci/run` installs the servers and runs them with `--ignored`.

mod common;

use common::{fill_pattern, HANG_GUARD};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use std::io::ErrorKind;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Once};
use std::thread;
use std::time::{Duration, Instant};
use streamcache::StreamCache;

#[path = "common/proxy.rs"]
#[allow(dead_code)] // `settled` is for the benches
mod proxy;
#[path = "common/zips.rs"]
mod zips;
use proxy::{Proxy, Shape};
use zips::{check_zip, zip_of};

const IGNORED: &str = "needs moto and Azurite (scripts/object-servers); .ci/run runs it";
const BUCKET: &str = "streamcache-test";
const AZURITE_ACCOUNT: &str = "devstoreaccount1";
/// Azurite's well-known development key.
const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
/// moto takes any credentials: these only have to be there (and never shown).
const S3_SECRET: &str = "s3-secret-never-shown";

/// Clears every variable a cloud store's `from_env` reads, once per test binary.
fn clean_environment() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The stores these tests build themselves (for uploads) need a TLS provider, as any
        // program's own does (see `Builder::spawn_object`).
        let _ = rustls::crypto::ring::default_provider().install_default();
        for (key, _) in std::env::vars() {
            if ["AWS_", "AZURE_", "AZURITE_", "GOOGLE_"]
                .iter()
                .any(|p| key.starts_with(p))
            {
                // SAFETY: (std's contract) once, before any thread of this binary reads the
                // environment: the first thing each test does.
                unsafe { std::env::remove_var(key) };
            }
        }
    });
}

fn installed(var: &str, default: &str) -> String {
    let path = std::env::var(var).unwrap_or_else(|_| {
        format!(
            "{}/target/object-servers/{default}",
            env!("CARGO_MANIFEST_DIR")
        )
    });
    assert!(
        std::path::Path::new(&path).exists(),
        "{path} is missing: run scripts/object-servers"
    );
    path
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A server process, killed when dropped.
struct Server {
    child: Child,
    port: u16,
    _dir: Option<tempfile::TempDir>,
}

impl Server {
    fn moto() -> Server {
        clean_environment();
        let port = free_port();
        let child = Command::new(installed("STREAMCACHE_MOTO_SERVER", "venv/bin/moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = Server::up(child, port, None);
        let url = format!("http://127.0.0.1:{port}/{BUCKET}");
        ureq::put(&url).send_empty().unwrap();
        server
    }

    fn azurite() -> Server {
        clean_environment();
        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        let bin = installed("STREAMCACHE_AZURITE_BLOB", "node_modules/.bin/azurite-blob");
        let child = Command::new(bin)
            .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
            .args(["--skipApiVersionCheck", "--silent", "--location"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = Server::up(child, port, Some(dir));
        // object_store makes no containers: the SDK beside moto does.
        let python = installed("STREAMCACHE_OBJECT_PYTHON", "venv/bin/python");
        let script = format!(
            "from azure.storage.blob import BlobServiceClient as C\n\
             C.from_connection_string('DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};\
             AccountKey={AZURITE_KEY};BlobEndpoint=http://127.0.0.1:{port}/{AZURITE_ACCOUNT};')\
             .create_container('{BUCKET}')"
        );
        let status = Command::new(python).args(["-c", &script]).status().unwrap();
        assert!(status.success(), "creating the container failed");
        server
    }

    /// Waits until the port takes connections.
    fn up(child: Child, port: u16, dir: Option<tempfile::TempDir>) -> Server {
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(start.elapsed() < HANG_GUARD, "the server did not start");
            thread::sleep(Duration::from_millis(50));
        }
        Server {
            child,
            port,
            _dir: dir,
        }
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The options for moto on `port`.
fn s3_options(port: u16) -> Vec<(String, String)> {
    [
        ("aws_endpoint", format!("http://127.0.0.1:{port}")),
        ("aws_allow_http", "true".into()),
        ("aws_access_key_id", "test-key".into()),
        ("aws_secret_access_key", S3_SECRET.into()),
        ("aws_region", "us-east-1".into()),
        ("aws_virtual_hosted_style_request", "false".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn azure_options(port: u16, key: &str) -> Vec<(String, String)> {
    [
        ("azure_storage_account_name", AZURITE_ACCOUNT.to_owned()),
        ("azure_storage_account_key", key.to_owned()),
        (
            "azure_storage_endpoint",
            format!("http://127.0.0.1:{port}/{AZURITE_ACCOUNT}"),
        ),
        ("azure_allow_http", "true".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn borrowed(options: &[(String, String)]) -> Vec<(&str, &str)> {
    options
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// The store `url` names with `options`, for uploads.
fn store(url: &str, options: &[(String, String)]) -> Arc<dyn ObjectStore> {
    let url = url::Url::parse(url).unwrap();
    let (store, _) = object_store::parse_url_opts(&url, options.iter().cloned()).unwrap();
    Arc::from(store)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

/// Uploads `data` in parts of 5 MiB (S3's least), returns the object's e_tag.
fn upload_multipart(store: &dyn ObjectStore, key: &str, data: &[u8]) -> String {
    runtime().block_on(async {
        let location = Path::from(key);
        let upload = store.put_multipart(&location).await.unwrap();
        let mut write = WriteMultipart::new_with_chunk_size(upload, 5 << 20);
        write.write(data);
        write.finish().await.unwrap();
        store
            .head(&location)
            .await
            .unwrap()
            .e_tag
            .unwrap_or_default()
    })
}

fn upload(store: &dyn ObjectStore, key: &str, data: Vec<u8>) {
    runtime()
        .block_on(store.put(&Path::from(key), PutPayload::from(data)))
        .unwrap();
}

/// How an object goes up to moto.
#[derive(Clone, Copy, PartialEq)]
enum Put {
    /// One `put`.
    Whole,
    /// A multipart upload (its e_tag is not an MD5).
    Parts,
}

/// An object on moto, and a proxy in front of moto for the cache to read it through.
struct S3Object {
    url: String,
    /// The upload's e_tag.
    e_tag: String,
    proxy: Proxy,
    /// The options that send requests through the proxy.
    options: Vec<(String, String)>,
}

impl S3Object {
    /// Uploads `data` at `key` (directly to moto), then starts a proxy shaped `shape`.
    fn put(moto: &Server, key: &str, data: &[u8], put: Put, shape: Shape) -> S3Object {
        let url = format!("s3://{BUCKET}/{key}");
        let direct = store(&url, &s3_options(moto.port));
        let e_tag = match put {
            Put::Parts => upload_multipart(direct.as_ref(), key, data),
            Put::Whole => {
                upload(direct.as_ref(), key, data.to_vec());
                String::new()
            }
        };
        let proxy = Proxy::start(moto.port, shape).unwrap();
        let options = s3_options(proxy.port());
        S3Object {
            url,
            e_tag,
            proxy,
            options,
        }
    }

    fn spawn(&self, builder: streamcache::Builder) -> StreamCache {
        builder
            .spawn_object_url(&self.url, &borrowed(&self.options))
            .unwrap()
    }
}

/// `rate` bytes a second on each connection.
fn throttled(rate: u64) -> Shape {
    Shape {
        rate,
        ..Shape::default()
    }
}

/// `len` pattern bytes from `seed`.
fn pattern_of(seed: u64, len: usize) -> Vec<u8> {
    let mut data = vec![0; len];
    fill_pattern(seed, &mut data);
    data
}

#[test]
#[ignore = "needs moto and Azurite (scripts/object-servers); .ci/run runs it"]
fn s3_a_multipart_zips_end_is_fetched_on_demand_and_every_byte_is_right() {
    let _ = IGNORED;
    let moto = Server::moto();
    let (zip, digests) = zip_of(16, 1 << 20);
    // 2 MiB/s per connection: the in-order fill takes 8 s at least.
    let object = S3Object::put(&moto, "a.zip", &zip, Put::Parts, throttled(2 << 20));
    assert!(
        object.e_tag.contains('-'),
        "a multipart e_tag: {}",
        object.e_tag
    );
    let cache = object.spawn(
        StreamCache::builder()
            .fetch_ahead(256 << 10)
            .fetch_span(256 << 10),
    );
    assert_eq!(cache.expected_len(), Some(zip.len() as u64));
    check_zip(&cache, &digests);
    assert_eq!(
        cache.len(),
        None,
        "the entry list and last entry came before the whole"
    );
    assert_eq!(cache.wait_complete().unwrap(), zip.len() as u64);
    assert_eq!(cache.slice(..).unwrap(), &zip[..]);
    // Each byte about once (plus the heads of the responses).
    let sent = object.proxy.sent();
    assert!(
        sent < zip.len() as u64 + (2 << 20),
        "{sent} bytes sent for {}",
        zip.len()
    );
}

/// `defer_fill`: on an unthrottled link the whole object would arrive while a zip reader
/// looks for its entry; deferred, moto sends the entry list and the last entry, and little
/// more, until a read at the front starts the fill.
#[test]
#[ignore = "needs moto and Azurite (scripts/object-servers); .ci/run runs it"]
fn s3_a_deferred_fill_sends_little_more_than_what_a_zip_reader_reads() {
    let moto = Server::moto();
    let entry = 1 << 20;
    let (zip, digests) = zip_of(32, entry);
    let object = S3Object::put(&moto, "deferred.zip", &zip, Put::Parts, Shape::default());
    let span = 256 << 10;
    let cache = object.spawn(StreamCache::builder().fetch_span(span).defer_fill(true));
    check_zip(&cache, &digests);
    assert_eq!(cache.available(), 0, "the fill has not started");
    // The last entry, a span either side of it (the fetch before the last is cut short by
    // what is present), the directory's fetch, the heads of the responses.
    let sent = object.proxy.sent();
    let most = entry as u64 + 2 * span + (128 << 10);
    assert!(sent < most, "{sent} bytes sent, more than {most}");
    assert_eq!(cache.wait_complete().unwrap(), zip.len() as u64);
    assert_eq!(cache.slice(..).unwrap(), &zip[..]);
}

#[test]
#[ignore = "needs moto and Azurite (scripts/object-servers); .ci/run runs it"]
fn s3_many_connections_read_a_whole_object() {
    let moto = Server::moto();
    let data = pattern_of(5, (12 << 20) + 777);
    let object = S3Object::put(&moto, "w", &data, Put::Parts, Shape::default());
    let cache = object.spawn(StreamCache::builder().connections(4).fetch_span(1 << 20));
    assert_eq!(cache.wait_complete().unwrap(), data.len() as u64);
    assert_eq!(cache.slice(..).unwrap(), &data[..]);
    let connections = object.proxy.connections();
    assert!(connections >= 4, "{connections} connections");
}

#[test]
#[ignore = "needs moto and Azurite (scripts/object-servers); .ci/run runs it"]
fn s3_an_overwrite_mid_read_fails_the_missing_bytes_and_is_never_spliced() {
    let moto = Server::moto();
    let len = 8 << 20;
    let first = pattern_of(0, len);
    let object = S3Object::put(&moto, "v", &first, Put::Whole, throttled(1 << 20));
    let cache = object.spawn(
        StreamCache::builder()
            .fetch_ahead(64 << 10)
            .fetch_span(64 << 10)
            .retries(0),
    );
    let tail = len - 1000..len;
    assert_eq!(
        cache.slice(tail.start as u64..).unwrap(),
        &first[tail.clone()]
    );

    let writer = store(&object.url, &s3_options(moto.port));
    upload(writer.as_ref(), "v", vec![0xEE; len]);
    let far = (len - (1 << 20)) as u64;
    let err = cache.slice(far..far + 10).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");
    assert!(err.to_string().contains("s3://streamcache-test/v"), "{err}");
    assert!(!err.to_string().contains(S3_SECRET), "{err}");
    assert_eq!(cache.slice(tail.start as u64..).unwrap(), &first[tail]);
    // Whatever the fill got before it failed is the first version's.
    let _ = cache.wait_complete();
    for range in cache.present() {
        let (a, b) = (range.start as usize, range.end as usize);
        assert_eq!(cache.slice(range).unwrap(), &first[a..b]);
    }
}

#[test]
#[ignore = "needs moto and Azurite (scripts/object-servers); .ci/run runs it"]
fn s3_missing_buckets_and_keys_are_not_found() {
    let moto = Server::moto();
    let options = s3_options(moto.port);
    for url in [
        format!("s3://{BUCKET}/no/such/key"),
        "s3://no-such-bucket/key".to_owned(),
    ] {
        let err = StreamCache::from_object_url(&url, &borrowed(&options)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{url}: {err}");
        assert!(err.to_string().contains(&url), "{err}");
        assert!(!err.to_string().contains(S3_SECRET), "{err}");
    }
}

#[test]
#[ignore = "needs moto and Azurite (scripts/object-servers); .ci/run runs it"]
fn s3_a_timeout_is_retried() {
    let moto = Server::moto();
    let data = pattern_of(9, 3 << 20);
    // The first two connections (the head's and the fill's, or one retried) answer nothing
    // for 4 s; the client gives up on a request after 1 s.
    let shape = Shape {
        stalled: 2,
        stall: Duration::from_secs(4),
        ..Shape::default()
    };
    let mut object = S3Object::put(&moto, "t", &data, Put::Whole, shape);
    object.options.push(("timeout".into(), "1s".into()));
    let cache = object.spawn(StreamCache::builder().retry_backoff(Duration::from_millis(10)));
    assert_eq!(cache.wait_complete().unwrap(), data.len() as u64);
    assert_eq!(cache.slice(..).unwrap(), &data[..]);
    let connections = object.proxy.connections();
    assert!(
        connections >= 3,
        "{connections} connections: the stalled ones were not retried"
    );
}

#[test]
#[ignore = "needs moto and Azurite (scripts/object-servers); .ci/run runs it"]
fn s3_a_stopped_server_fails_reads_with_a_clear_error_and_no_hang() {
    let mut moto = Server::moto();
    let data = pattern_of(1, 8 << 20);
    let object = S3Object::put(&moto, "s", &data, Put::Whole, throttled(1 << 20));
    let cache = object.spawn(
        StreamCache::builder()
            .retries(2)
            .retry_backoff(Duration::from_millis(10)),
    );
    assert_eq!(cache.slice(..1000).unwrap(), &data[..1000]);
    moto.stop();
    let (done, result) = mpsc::channel();
    let reader = cache.clone();
    thread::spawn(move || done.send(reader.wait_complete()));
    let err = result.recv_timeout(HANG_GUARD).expect("hung").unwrap_err();
    eprintln!("a stopped server: {err}");
    assert!(err.to_string().contains("s3://streamcache-test/s"), "{err}");
    assert!(!err.to_string().contains(S3_SECRET), "{err}");
    assert_ne!(err.kind(), ErrorKind::InvalidData, "{err}");
    for range in cache.present() {
        let (a, b) = (range.start as usize, range.end as usize);
        assert_eq!(cache.slice(range).unwrap(), &data[a..b]);
    }
}

#[test]
#[ignore = "needs moto and Azurite (scripts/object-servers); .ci/run runs it"]
fn azure_a_block_blob_zip_is_read_and_bad_keys_and_missing_containers_are_refused() {
    let azurite = Server::azurite();
    let (zip, digests) = zip_of(6, 1 << 20);
    let options = azure_options(azurite.port, AZURITE_KEY);
    let url = format!("az://{BUCKET}/dir/b.zip");
    upload_multipart(store(&url, &options).as_ref(), "dir/b.zip", &zip);
    let cache = StreamCache::builder()
        .fetch_ahead(64 << 10)
        .connections(2)
        .fetch_span(1 << 20)
        .spawn_object_url(&url, &borrowed(&options))
        .unwrap();
    check_zip(&cache, &digests);
    assert_eq!(cache.wait_complete().unwrap(), zip.len() as u64);
    assert_eq!(cache.slice(..).unwrap(), &zip[..]);

    // Another key, of the right form: Azurite checks the signature.
    let wrong = "d3Jvbmcta2V5LW5ldmVyLXNob3duLXdyb25nLWtleS1uZXZlci1zaG93bg==";
    let err = StreamCache::from_object_url(&url, &borrowed(&azure_options(azurite.port, wrong)))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    assert!(!err.to_string().contains(wrong), "{err}");
    assert!(!err.to_string().contains(AZURITE_KEY), "{err}");

    let err =
        StreamCache::from_object_url("az://no-such-container/x", &borrowed(&options)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}
