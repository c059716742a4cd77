//! An object in an object store as a ranged source (feature `object-store`):
//! [`Builder::spawn_object`], [`Builder::spawn_object_url`] and [`Builder::tokio_handle`], over
//! the `object_store` crate.
//!
//! One `head` gives the object's size, `e_tag` and `version`; the cache is then a ranged source
//! of that size ([`Builder::spawn_ranged`]) whose `open(a..b)` is a `get_opts` of `a..b` with
//! `if_match` set to that `e_tag` (or, for a store that gives none, `if_unmodified_since` its
//! `last_modified`) and `version` when the store gives one. Its answer must be that range of an
//! object of the same size and `e_tag`, else it is `InvalidData` and never spliced.
//!
//! object_store is async: every call is driven to its end on the thread that needs it (the
//! caller's for `head`, the filler's, a lane's or a fetch's for the ranges) with
//! `Handle::block_on`, on a small tokio runtime the cache owns (its threads named after
//! `thread_name`, shut down without waiting when the last handle goes) or on the runtime of
//! [`Builder::tokio_handle`]. A call made from inside a runtime (where `block_on` would panic)
//! runs on a scoped thread of its own.
//!
//! Every error message names the object (a URL without its query string, or the store and the
//! path) and never an option's value ([`error`]).

use crate::builder::Builder;
use crate::cache::StreamCache;
use crate::range::invalid_input;
use bytes::Bytes;
use futures_core::stream::{BoxStream, Stream};
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectMeta, ObjectStore, ObjectStoreExt};
use std::fmt;
use std::future::{poll_fn, Future};
use std::io::{self, ErrorKind, Read};
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use tokio::runtime::{Handle, Runtime, RuntimeFlavor};

/// The most worker threads of a runtime the cache makes for itself: they run the connections'
/// I/O (reqwest spawns each connection's task there), so a few help many connections, and more
/// than the cores never do.
const MAX_RUNTIME_THREADS: usize = 4;

/// What [`Builder::spawn_object`] runs on.
#[derive(Clone, Default)]
pub(crate) struct ObjectSettings {
    /// `None`: a runtime of the cache's own.
    handle: Option<Handle>,
}

impl fmt::Debug for ObjectSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let runtime = match self.handle {
            Some(_) => "tokio_handle",
            None => "own",
        };
        f.debug_struct("ObjectSettings")
            .field("runtime", &runtime)
            .finish()
    }
}

impl Builder {
    /// The tokio runtime that [`spawn_object`](Self::spawn_object) drives its store's requests
    /// on (feature `object-store`), instead of a small runtime of the cache's own. The runtime
    /// must be multi-threaded (its own threads run the I/O while the cache's threads wait on
    /// it); a current-thread runtime's handle makes `spawn_object` fail with `InvalidInput`.
    ///
    /// # Examples
    ///
    /// ```
    /// use object_store::{memory::InMemory, path::Path, ObjectStoreExt, PutPayload};
    /// use std::sync::Arc;
    /// use streamcache::StreamCache;
    ///
    /// let runtime = tokio::runtime::Runtime::new()?;
    /// let store = Arc::new(InMemory::new());
    /// let location = Path::from("logs/today.txt");
    /// runtime.block_on(store.put(&location, PutPayload::from_static(b"all quiet")))?;
    ///
    /// let cache = StreamCache::builder()
    ///     .tokio_handle(runtime.handle().clone())
    ///     .spawn_object(store, location)?;
    /// assert_eq!(cache.slice(4..)?, b"quiet");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn tokio_handle(mut self, handle: Handle) -> Builder {
        self.object.handle = Some(handle);
        self
    }

    /// Starts a cache over the object at `location` in `store` (feature `object-store`): any
    /// [`ObjectStore`], such as S3, GCS, Azure Blob Storage, a local directory or memory.
    ///
    /// A `head`, made here, gives the object's size, `e_tag` and `version`. The object is then
    /// a ranged source of that size, as [`spawn_ranged`](Self::spawn_ranged) describes: one
    /// in-order fill (over [`connections`](Self::connections) requests at once, if more than
    /// one), and far reads fetched at once. Every range is a `get_opts` with that range,
    /// `if_match` set to the `e_tag` (for a store that gives none, `if_unmodified_since` set to
    /// its `last_modified`), and `version` when there is one: if the object is overwritten
    /// while it is read, the bytes already present stay the first version's, and every read
    /// that needs a missing byte fails with `InvalidData`; the new bytes are never spliced in.
    ///
    /// Errors map to kinds as follows: the object changed (`Precondition`, or an answer of
    /// another size or `e_tag`) is `InvalidData`; not found is `NotFound`; unauthenticated or
    /// forbidden is `PermissionDenied`; a timeout is `TimedOut` and a dropped connection
    /// `ConnectionReset`, both transient (retried within [`retries`](Self::retries), after the
    /// store's own retries); a connection that cannot be made is `ConnectionRefused` (after
    /// the store's retries); the rest is `Other`. Every message names the store and the path.
    ///
    /// A cloud store (S3, GCS, Azure) built by the program itself needs a rustls crypto
    /// provider installed before it is built (reqwest is built here without one of its own):
    /// `rustls::crypto::ring::default_provider().install_default()`.
    /// [`spawn_object_url`](Self::spawn_object_url) does that itself.
    ///
    /// # Errors
    ///
    /// Those of the `head`, made here, with the kinds above; `InvalidInput` for a
    /// [`tokio_handle`](Self::tokio_handle) of a current-thread runtime; then those of
    /// [`spawn_ranged`](Self::spawn_ranged). Errors of the ranges come later, to the readers.
    ///
    /// # Examples
    ///
    /// ```
    /// use object_store::{memory::InMemory, path::Path, ObjectStoreExt, PutPayload};
    /// use std::sync::Arc;
    /// use streamcache::StreamCache;
    ///
    /// let store = Arc::new(InMemory::new());
    /// let location = Path::from("data/numbers.bin");
    /// let numbers: Vec<u8> = (0..=255).collect();
    /// tokio::runtime::Runtime::new()?.block_on(store.put(&location, numbers.into()))?;
    ///
    /// let cache = StreamCache::builder()
    ///     .fetch_ahead(16) // a read further than 16 bytes ahead is fetched at once
    ///     .spawn_object(store.clone(), location)?;
    /// assert_eq!(cache.expected_len(), Some(256)); // from the head
    /// assert_eq!(cache.slice(250..)?, [250, 251, 252, 253, 254, 255]);
    ///
    /// let err = StreamCache::builder().spawn_object(store, Path::from("nope")).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spawn_object(
        self,
        store: Arc<dyn ObjectStore>,
        location: Path,
    ) -> io::Result<StreamCache> {
        let shown = format!("{store}/{location}");
        self.spawn_object_shown(store, location, shown)
    }

    /// Starts a cache over the object at `url` (feature `object-store`): `s3://bucket/key`
    /// (or `s3a://`), `gs://bucket/key`, `az://container/blob` (or `abfs://`, `abfss://`,
    /// `azure://`, `adl://`, and the `https://` URLs of `blob.core.windows.net`,
    /// `amazonaws.com` and `r2.cloudflarestorage.com`), `file:///absolute/path` or
    /// `memory:///key` (a new, empty store: only useful to see `NotFound`). Then as
    /// [`spawn_object`](Self::spawn_object).
    ///
    /// `options` are object_store's configuration keys for that store, such as `aws_endpoint`,
    /// `aws_access_key_id`, `aws_secret_access_key`, `aws_region`, `aws_allow_http`,
    /// `google_service_account`, `azure_storage_account_name`, `azure_storage_access_key`,
    /// `azure_storage_use_emulator`, and the client's (`timeout`, `connect_timeout`,
    /// `allow_http`, …). They are applied over the store's environment variables
    /// (`AWS_*`, `GOOGLE_*`, `AZURE_*`, as object_store's `from_env` reads them). A key that the
    /// store does not know is `InvalidInput` (a typo in `aws_endpoint` must not send the
    /// requests elsewhere); so is any option for `file://` and `memory://`. Without
    /// credentials, the cloud stores look for them as their SDKs do (for S3: the instance
    /// metadata service, among others): give them explicitly, or `aws_skip_signature`, for
    /// a store that must not. The store retries each request as object_store does, up to
    /// [`retries`](Self::retries) times, first after [`retry_backoff`](Self::retry_backoff).
    ///
    /// An `http(s)://` URL of any other host is not an object store: that is
    /// `Builder::spawn_url` (feature `http`).
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a URL that does not parse or has no store, an unknown option key, or
    /// a store whose options do not make a client (its message names the key, never a
    /// value); then those of [`spawn_object`](Self::spawn_object). Messages name the URL
    /// without its query string.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Read;
    /// use streamcache::StreamCache;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("hello.txt");
    /// std::fs::write(&path, "hello, object")?;
    /// let url = format!("file://{}", path.display());
    ///
    /// let cache = StreamCache::builder().spawn_object_url(&url, &[])?;
    /// let mut text = String::new();
    /// cache.reader().read_to_string(&mut text)?;
    /// assert_eq!(text, "hello, object");
    ///
    /// // For S3 (a sketch: no server here), explicit credentials and endpoint:
    /// let options = [
    ///     ("aws_endpoint", "http://127.0.0.1:1"),
    ///     ("aws_allow_http", "true"),
    ///     ("aws_access_key_id", "KEY"),
    ///     ("aws_secret_access_key", "SECRET"),
    ///     ("aws_region", "us-east-1"),
    ///     ("aws_endpont", "typo"),
    /// ];
    /// let err = StreamCache::builder().spawn_object_url("s3://bucket/key", &options).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    /// assert!(err.to_string().contains("aws_endpont"));
    /// assert!(!err.to_string().contains("SECRET"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spawn_object_url(self, url: &str, options: &[(&str, &str)]) -> io::Result<StreamCache> {
        let shown = super::shown::url_shown(url);
        let (store, location) =
            super::object_url::store_from_url(url, &shown, options, self.settings.retry)?;
        self.spawn_object_shown(store, location, shown)
    }

    /// [`spawn_object`](Self::spawn_object), with messages naming the object as `shown`.
    fn spawn_object_shown(
        mut self,
        store: Arc<dyn ObjectStore>,
        location: Path,
        shown: String,
    ) -> io::Result<StreamCache> {
        let driver = match self.object.handle.take() {
            Some(handle) if handle.runtime_flavor() == RuntimeFlavor::CurrentThread => {
                return Err(invalid_input(
                    "tokio_handle: a current-thread runtime cannot run the store's I/O while \
                     the cache's threads wait on it; give a multi-thread runtime's handle"
                        .to_owned(),
                ));
            }
            Some(handle) => Driver::Given(handle),
            None => Driver::own(self.settings.thread_name(), self.settings.fetch.connections)?,
        };
        let object = Object {
            store,
            location,
            shown,
            driver,
        };
        let meta = object
            .driver
            .run(object.store.head(&object.location))
            .map_err(|e| error(e, "HEAD", &object.shown, None))?;
        let len = meta.size;
        if self.settings.cache_dir.is_some() {
            // The entry's key is the object's name; its validator, what every range asks for.
            let validator = match (&meta.e_tag, &meta.version) {
                (Some(e_tag), version) => Some(format!("e_tag:{e_tag} version:{version:?}")),
                (None, Some(version)) => Some(format!("version:{version}")),
                (None, None) => Some(format!("last_modified:{}", meta.last_modified)),
            };
            if self.settings.cache_key.is_none() {
                self.settings.cache_key = Some(object.shown.clone());
            }
            self.settings.validator = validator;
        }
        let source = Arc::new(RangedObject { object, meta });
        self.spawn_ranged(len, move |range| source.open(range))
    }
}

impl StreamCache {
    /// A cache over the object at `url`, with the default settings:
    /// `StreamCache::builder().spawn_object_url(url, options)` (feature `object-store`). See
    /// [`Builder::spawn_object_url`] for the URLs and options, and
    /// [`Builder::spawn_object`] for what is asked of the store.
    ///
    /// # Errors
    ///
    /// As [`Builder::spawn_object_url`]: `InvalidInput` for a bad URL or option, then those
    /// of the `head`, made here (`NotFound`, `PermissionDenied`, …).
    ///
    /// # Examples
    ///
    /// ```
    /// use streamcache::StreamCache;
    ///
    /// let file = tempfile::NamedTempFile::new()?;
    /// std::fs::write(file.path(), [7u8; 1000])?;
    /// let url = format!("file://{}", file.path().display());
    /// let cache = StreamCache::from_object_url(&url, &[])?;
    /// assert_eq!(cache.slice(990..)?, [7u8; 10]);
    ///
    /// let err = StreamCache::from_object_url("memory:///nothing/here", &[]).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_object_url(url: &str, options: &[(&str, &str)]) -> io::Result<StreamCache> {
        StreamCache::builder().spawn_object_url(url, options)
    }
}

/// The runtime that drives a cache's store.
enum Driver {
    /// The cache's own, shut down when the cache goes.
    Own(OwnRuntime),
    /// [`Builder::tokio_handle`]'s.
    Given(Handle),
}

impl Driver {
    /// A multi-thread runtime with threads named `{thread_name}:io`.
    fn own(thread_name: &str, connections: usize) -> io::Result<Driver> {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cores.min(connections.max(2)).min(MAX_RUNTIME_THREADS))
            .thread_name(format!("{thread_name}:io"))
            .enable_all()
            .build()?;
        Ok(Driver::Own(OwnRuntime(Some(runtime))))
    }

    fn handle(&self) -> &Handle {
        match self {
            Driver::Own(OwnRuntime(runtime)) => runtime.as_ref().expect("dropped only").handle(),
            Driver::Given(handle) => handle,
        }
    }

    /// Drives `future` to its end on this thread. From inside a runtime, where `block_on`
    /// panics, on a scoped thread of its own.
    fn run<F: Future + Send>(&self, future: F) -> F::Output
    where
        F::Output: Send,
    {
        let handle = self.handle();
        if Handle::try_current().is_err() {
            return handle.block_on(future);
        }
        std::thread::scope(|scope| {
            let thread = scope.spawn(|| handle.block_on(future));
            thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }
}

/// A runtime shut down without waiting for its tasks when dropped: dropping a runtime the
/// usual way waits for them, and panics inside another runtime (where the last handle of a
/// cache may well be dropped).
struct OwnRuntime(Option<Runtime>);

impl Drop for OwnRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// A store, a path in it, and what drives them.
struct Object {
    // Declared before `driver`, so dropped first: the store's client (and its pooled
    // connections) goes while its runtime still runs.
    store: Arc<dyn ObjectStore>,
    location: Path,
    /// The object as messages name it.
    shown: String,
    driver: Driver,
}

/// An object whose `head` has been read: the `open(range)` of a ranged source.
struct RangedObject {
    object: Object,
    /// The `head`'s answer: the size, `e_tag`, `version` and `last_modified` every range must
    /// match.
    meta: ObjectMeta,
}

impl RangedObject {
    /// The bytes `range` of the object, exactly: a reader that ends early only if the store's
    /// answer does (a break, to resume).
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a range not within the length; the request's, mapped by [`error`];
    /// `InvalidData` for an answer that is not that range of the same object.
    fn open(self: &Arc<Self>, range: Range<u64>) -> io::Result<ObjectBody> {
        let Range { start, end } = range;
        let (shown, len) = (&self.object.shown, self.meta.size);
        if start > end || end > len {
            let message =
                format!("{shown}: the range {start}..{end} is not within its {len} bytes");
            return Err(io::Error::new(ErrorKind::InvalidInput, message));
        }
        if start == end {
            return Ok(ObjectBody::new(self, None, range));
        }
        let e_tag = &self.meta.e_tag;
        let options = GetOptions {
            range: Some(GetRange::Bounded(range.clone())),
            if_match: e_tag.clone(),
            if_unmodified_since: e_tag.is_none().then_some(self.meta.last_modified),
            version: self.meta.version.clone(),
            ..GetOptions::default()
        };
        let object = &self.object;
        let result = object
            .driver
            .run(object.store.get_opts(&object.location, options))
            .map_err(|e| error(e, "GET", shown, Some(&range)))?;
        let got = &result.meta;
        let changed = if got.size != len {
            Some(format!("its size changed from {len} to {}", got.size))
        } else if got.e_tag.is_some() && got.e_tag != *e_tag {
            Some(format!(
                "its e_tag changed from {e_tag:?} to {:?}",
                got.e_tag
            ))
        } else if result.range != range {
            Some(format!("the store answered the range {:?}", result.range))
        } else {
            None
        };
        if let Some(what) = changed {
            let message = format!("GET {shown} ({start}..{end}): {what}");
            return Err(io::Error::new(ErrorKind::InvalidData, message));
        }
        Ok(ObjectBody::new(self, Some(result.into_stream()), range))
    }
}

/// A range's answer as a `Read`: its stream polled on the reading thread, at most `left`
/// more bytes.
struct ObjectBody {
    object: Arc<RangedObject>,
    /// `None`: an empty range.
    stream: Option<BoxStream<'static, object_store::Result<Bytes>>>,
    /// Of the last piece the stream gave, what has not been read yet.
    piece: Bytes,
    /// The offset of the next byte, for messages.
    at: u64,
    left: u64,
}

impl ObjectBody {
    fn new(
        object: &Arc<RangedObject>,
        stream: Option<BoxStream<'static, object_store::Result<Bytes>>>,
        range: Range<u64>,
    ) -> ObjectBody {
        ObjectBody {
            object: Arc::clone(object),
            stream,
            piece: Bytes::new(),
            at: range.start,
            left: range.end - range.start,
        }
    }

    /// Moves up to `buf.len()` bytes of `piece` into `buf`.
    fn take(piece: &mut Bytes, buf: &mut [u8]) -> usize {
        let n = piece.len().min(buf.len());
        buf[..n].copy_from_slice(&piece[..n]);
        bytes::Buf::advance(piece, n);
        n
    }
}

impl Read for ObjectBody {
    /// What is left of the last piece, else as many pieces as are ready without waiting (at
    /// least one): one `block_on` per read, not per piece.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let cap = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let buf = &mut buf[..cap];
        let (Some(stream), false) = (self.stream.as_mut(), buf.is_empty()) else {
            return Ok(0);
        };
        let mut n = Self::take(&mut self.piece, buf);
        if n == 0 {
            let piece = &mut self.piece;
            let pieces = poll_fn(|cx| loop {
                if n == buf.len() {
                    return Poll::Ready(Ok(()));
                }
                match Pin::new(&mut *stream).poll_next(cx) {
                    Poll::Ready(Some(Ok(next))) => {
                        *piece = next;
                        n += Self::take(piece, &mut buf[n..]);
                    }
                    Poll::Ready(Some(Err(e))) if n == 0 => return Poll::Ready(Err(e)),
                    // The error comes again with the next read, if the caller makes one.
                    Poll::Ready(Some(Err(_))) | Poll::Ready(None) => return Poll::Ready(Ok(())),
                    Poll::Pending if n > 0 => return Poll::Ready(Ok(())),
                    Poll::Pending => return Poll::Pending,
                }
            });
            let object = &self.object;
            let range = self.at..self.at + self.left;
            let result = object.object.driver.run(pieces);
            result.map_err(|e| error(e, "GET", &object.object.shown, Some(&range)))?;
        }
        self.at += n as u64;
        self.left -= n as u64;
        Ok(n)
    }
}

/// object_store's error as an `io::Error` about `op` on `shown` (and `range`): its kind tells
/// what went wrong and whether trying again may help (see [`Builder::spawn_object`]).
fn error(
    error: object_store::Error,
    op: &str,
    shown: &str,
    range: Option<&Range<u64>>,
) -> io::Error {
    use object_store::Error as E;
    let kind = match &error {
        E::NotFound { .. } => ErrorKind::NotFound,
        E::Precondition { .. } | E::NotModified { .. } => ErrorKind::InvalidData,
        E::PermissionDenied { .. } | E::Unauthenticated { .. } => ErrorKind::PermissionDenied,
        E::InvalidPath { .. } | E::UnknownConfigurationKey { .. } => ErrorKind::InvalidInput,
        E::NotSupported { .. } | E::NotImplemented { .. } => ErrorKind::Unsupported,
        error => cause_kind(error).unwrap_or(ErrorKind::Other),
    };
    let what = match kind {
        ErrorKind::InvalidData => format!("the object changed since it was opened: {error}"),
        _ => error.to_string(),
    };
    let message = match range {
        Some(range) => format!("{op} {shown} ({}..{}): {what}", range.start, range.end),
        None => format!("{op} {shown}: {what}"),
    };
    io::Error::new(kind, message)
}

/// The kind of the first cause in `error`'s chain that has one: an HTTP client's error (a
/// timeout, a connection) or an I/O error (a local file's).
fn cause_kind(error: &(dyn std::error::Error + 'static)) -> Option<ErrorKind> {
    use object_store::client::{HttpError, HttpErrorKind as H};
    let mut cause = Some(error);
    while let Some(error) = cause {
        if let Some(http) = error.downcast_ref::<HttpError>() {
            return match http.kind() {
                H::Timeout => Some(ErrorKind::TimedOut),
                H::Connect => Some(ErrorKind::ConnectionRefused),
                H::Request | H::Interrupted => Some(ErrorKind::ConnectionReset),
                H::Decode => Some(ErrorKind::InvalidData),
                _ => None,
            };
        }
        if let Some(io) = error.downcast_ref::<io::Error>() {
            return Some(io.kind());
        }
        cause = error.source();
    }
    None
}
