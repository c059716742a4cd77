//! An HTTP download that resumes where it broke: the `open(offset)` of
//! `Builder::spawn_resumable`, with ureq. Used by the `http_share` example (`--resume`) and by
//! `tests/http_resume.rs`.

use std::io::{self, ErrorKind, Read};
use streamcache::{Builder, StreamCache};

/// One URL, fetched from any offset: `open(0)` is a plain GET, `open(n)` a GET with
/// `Range: bytes=n-` that must be answered with `206 Partial Content` from byte `n`.
pub struct RangeGet {
    agent: ureq::Agent,
    url: String,
    /// The length of the resource, once an answer said it (Content-Length of a 200, or the
    /// total of a Content-Range).
    len: Option<u64>,
}

impl RangeGet {
    pub fn new(agent: ureq::Agent, url: impl Into<String>) -> Self {
        Self {
            agent,
            url: url.into(),
            len: None,
        }
    }

    /// Starts `builder`'s cache over this download: makes the first request here (its length
    /// becomes the cache's `expected_len`, so that a body that ends early is an `UnexpectedEof`,
    /// resumed, not the end of the stream), then hands the body to
    /// `Builder::spawn_resumable`. Each time the download breaks at `offset`, the filler calls
    /// `on_resume(offset)` and goes on with [`open(offset)`](Self::open).
    ///
    /// # Errors
    ///
    /// The first request's, and `spawn`'s.
    pub fn spawn(
        mut self,
        builder: Builder,
        mut on_resume: impl FnMut(u64) + Send + 'static,
    ) -> io::Result<StreamCache> {
        let mut first = Some(self.open(0)?);
        let builder = match self.len {
            Some(len) => builder.expected_len(len),
            None => builder,
        };
        builder.spawn_resumable(move |offset| match first.take() {
            Some(body) if offset == 0 => Ok(body),
            _ => {
                on_resume(offset);
                self.open(offset)
            }
        })
    }

    /// The body from byte `offset` on.
    ///
    /// Errors are `io::Error`s whose kind tells `spawn_resumable` whether to try again (see
    /// [`io_error`]). An answer that is not the bytes from `offset` on is `InvalidData`, never
    /// handed on: a `200` to a Range request (the whole body again), a Content-Range that does
    /// not start at `offset`, or a total length that changed.
    pub fn open(&mut self, offset: u64) -> io::Result<Body> {
        // Offsets count the bytes as sent: no Content-Encoding.
        let mut request = self
            .agent
            .get(&self.url)
            .header("Accept-Encoding", "identity");
        if offset > 0 {
            request = request.header("Range", format!("bytes={offset}-"));
        }
        let response = request.call().map_err(io_error)?;
        let invalid = |what: String| {
            let message = format!("{}: asked for bytes {offset}-, {what}", self.url);
            io::Error::new(ErrorKind::InvalidData, message)
        };
        let len = if offset == 0 {
            response.body().content_length()
        } else {
            if response.status() != 206 {
                return Err(invalid(format!(
                    "got {} instead of 206 Partial Content: the server ignored Range",
                    response.status()
                )));
            }
            let header = response.headers().get("content-range");
            let value = header.and_then(|v| v.to_str().ok()).unwrap_or("");
            match content_range(value) {
                Some((start, total)) if start == offset => total,
                _ => return Err(invalid(format!("got Content-Range {value:?}"))),
            }
        };
        match (self.len, len) {
            (Some(before), Some(now)) if before != now => {
                return Err(invalid(format!(
                    "the length changed from {before} to {now}"
                )));
            }
            (None, Some(now)) => self.len = Some(now),
            _ => {}
        }
        Ok(Body(response.into_body().into_reader()))
    }
}

/// `bytes START-END/TOTAL` → `(START, Some(TOTAL))`; `bytes START-END/*` → `(START, None)`.
fn content_range(value: &str) -> Option<(u64, Option<u64>)> {
    let (range, total) = value.strip_prefix("bytes ")?.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    let (start, end) = (start.parse::<u64>().ok()?, end.parse::<u64>().ok()?);
    let total = match total {
        "*" => None,
        total => Some(total.parse::<u64>().ok()?),
    };
    (start <= end && total.is_none_or(|t| end < t)).then_some((start, total))
}

/// A response body whose errors are mapped by [`io_error`].
pub struct Body(ureq::BodyReader<'static>);

impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // ureq hands its own errors over wrapped in an `io::Error`: unwrap and map them.
        self.0.read(buf).map_err(|e| io_error(ureq::Error::from(e)))
    }
}

/// ureq's error as an `io::Error` whose kind tells whether trying again may help. A dropped
/// connection keeps its kind (`UnexpectedEof` for a body cut short, `ConnectionReset`, …) and a
/// timeout is `TimedOut`: `spawn_resumable` retries those. So are statuses that mean "later"
/// (408, 429, 502, 503, 504). Other statuses, and answers that break HTTP, are not retried.
pub fn io_error(error: ureq::Error) -> io::Error {
    use ureq::Error;
    let kind = match error {
        Error::Io(e) => return e,
        Error::Timeout(_) | Error::StatusCode(408 | 429 | 502 | 503 | 504) => ErrorKind::TimedOut,
        Error::ConnectionFailed | Error::BodyStalled => ErrorKind::ConnectionAborted,
        Error::StatusCode(404 | 410) | Error::HostNotFound => ErrorKind::NotFound,
        Error::StatusCode(401 | 403) => ErrorKind::PermissionDenied,
        Error::Protocol(_) => ErrorKind::InvalidData,
        _ => ErrorKind::Other,
    };
    io::Error::new(kind, error)
}
