//! [`Held`]: a store around another that logs the range of every get, holds the gets from
//! byte 0 (the fill's) while told to, and breaks the next bodies after some bytes.

use futures::StreamExt;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetRange, GetResult, GetResultPayload, ListResult, MultipartUpload,
    ObjectMeta, ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use std::fmt;
use std::io;
use std::ops::Range;
use std::sync::{Arc, Condvar, Mutex};

#[derive(Default)]
struct State {
    gets: Vec<Range<u64>>,
    hold: bool,
    /// Bodies still to break, after how many bytes, with what kind.
    breaks: usize,
    break_after: u64,
    break_kind: Option<io::ErrorKind>,
}

/// See the module.
#[derive(Clone)]
pub struct Held {
    inner: Arc<dyn ObjectStore>,
    state: Arc<(Mutex<State>, Condvar)>,
}

impl Held {
    pub fn new<S: ObjectStore + ?Sized>(inner: Arc<S>) -> Held
    where
        Arc<S>: Into<Arc<dyn ObjectStore>>,
    {
        let inner: Arc<dyn ObjectStore> = inner.into();
        Held {
            inner,
            state: Arc::default(),
        }
    }

    pub fn inner(&self) -> &Arc<dyn ObjectStore> {
        &self.inner
    }

    /// While true, a get from byte 0 waits (blocking its thread) before it is made.
    pub fn hold_from_start(&self, hold: bool) {
        self.state.0.lock().unwrap().hold = hold;
        self.state.1.notify_all();
    }

    /// The ranges asked for, in order.
    pub fn gets(&self) -> Vec<Range<u64>> {
        self.state.0.lock().unwrap().gets.clone()
    }

    /// The next `n` bodies end with a timeout after `after` bytes.
    pub fn break_bodies(&self, n: usize, after: u64) {
        self.break_bodies_with(n, after, io::ErrorKind::TimedOut);
    }

    pub fn break_bodies_with(&self, n: usize, after: u64, kind: io::ErrorKind) {
        let mut state = self.state.0.lock().unwrap();
        (state.breaks, state.break_after, state.break_kind) = (n, after, Some(kind));
    }
}

impl fmt::Display for Held {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Held({})", self.inner)
    }
}

impl fmt::Debug for Held {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Held({:?})", self.inner)
    }
}

#[async_trait::async_trait]
impl ObjectStore for Held {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        let range = match &options.range {
            Some(GetRange::Bounded(range)) => range.clone(),
            _ => 0..u64::MAX,
        };
        let broken = {
            let (lock, wake) = &*self.state;
            let mut state = lock.lock().unwrap();
            if !options.head {
                state.gets.push(range.clone());
            }
            while state.hold && range.start == 0 && !options.head {
                state = wake.wait(state).unwrap();
            }
            (state.breaks > 0 && !options.head).then(|| {
                state.breaks -= 1;
                (state.break_after, state.break_kind.unwrap())
            })
        };
        let mut result = self.inner.get_opts(location, options).await?;
        if let Some((after, kind)) = broken {
            let stream = match result.payload {
                GetResultPayload::Stream(stream) => stream,
                #[allow(unreachable_patterns)]
                _ => panic!("Held breaks only streamed bodies"),
            };
            let mut left = after;
            let cut = stream
                .map(move |piece| {
                    let piece = piece?;
                    let keep = piece.len().min(left as usize);
                    left -= keep as u64;
                    Ok(piece.slice(..keep))
                })
                .take_while(|piece: &object_store::Result<bytes::Bytes>| {
                    std::future::ready(piece.as_ref().map_or(true, |p| !p.is_empty()))
                })
                .chain(futures::stream::once(async move {
                    Err(object_store::Error::Generic {
                        store: "Held",
                        source: Box::new(io::Error::new(kind, "the body broke (on purpose)")),
                    })
                }));
            result.payload = GetResultPayload::Stream(cut.boxed());
        }
        Ok(result)
    }

    fn delete_stream(
        &self,
        locations: futures::stream::BoxStream<'static, object_store::Result<Path>>,
    ) -> futures::stream::BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(
        &self,
        prefix: Option<&Path>,
    ) -> futures::stream::BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}
