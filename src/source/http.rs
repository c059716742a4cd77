//! A URL as a source (feature `http`): [`Builder::spawn_url`] and its settings, with ureq.
//!
//! The first request is a GET with `Range: bytes=0-` (with `connections` > 1: `bytes=0-(s-1)`,
//! the first span of `fetch_span` = `s`). Its answer decides the kind of source:
//!
//! * `206` with `Content-Range: bytes 0-(n-1)/n` (or the first span's `bytes 0-(s-1)/n`): a
//!   ranged source of length `n`.
//!   [`RangedUrl::open`] fetches any `a..b` with `Range: bytes=a-(b-1)` and `If-Range` (the
//!   first answer's strong `ETag`, else its `Last-Modified`), and accepts only a `206` with
//!   `Content-Range: bytes a-(b-1)/n` and the same validator: anything else is `InvalidData`,
//!   never spliced. Its body is capped at `b - a` bytes; fewer is a break.
//! * any other `2xx` (a server that ignores `Range`): the body as a plain source, with the
//!   Content-Length as the expected length. Neither ranged nor resumable.
//! * `416` with `Content-Range: bytes */0`: an empty resource, an empty complete stream.
//! * anything else: an error, whose kind follows the status (see [`status_kind`]).
//!
//! Every error message names the URL without its query string, fragment or user info, which
//! may hold credentials ([`Target::shown`]).

use crate::builder::Builder;
use crate::cache::StreamCache;
use crate::sync::Mutex;
use std::fmt;
use std::io::{self, ErrorKind, Read};
use std::ops::Range;
use std::time::Duration;
use ureq::http::header::{ACCEPT_ENCODING, CONTENT_RANGE, ETAG, IF_RANGE, LAST_MODIFIED, RANGE};
use ureq::http::{HeaderName, HeaderValue, Response, StatusCode, Uri};
use ureq::{Agent, Body, BodyReader};

/// The default agent's limit on connecting, and on each read of a response (its head or a
/// piece of its body): a connection that stalls longer is `TimedOut`, and resumed.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// What [`Builder::spawn_url`] sends: the agent and the extra headers.
#[derive(Clone, Default)]
pub(crate) struct HttpSettings {
    /// `None`: an agent with [`DEFAULT_TIMEOUT`]s, made by `spawn_url`.
    agent: Option<Agent>,
    /// Added to every request, in this order; checked by `spawn_url`.
    headers: Vec<(String, String)>,
}

impl fmt::Debug for HttpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Header values may be credentials (Authorization): only their names are shown.
        let names: Vec<&str> = self.headers.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("HttpSettings")
            .field("agent", &self.agent.as_ref().map(|_| "custom"))
            .field("headers", &names)
            .finish()
    }
}

impl Builder {
    /// The [`ureq::Agent`] that [`spawn_url`](Self::spawn_url) sends its requests with: for
    /// proxies, TLS settings, timeouts or a connection pool shared with the rest of the program
    /// (feature `http`).
    ///
    /// Without it, `spawn_url` uses an agent with ureq's defaults, except two timeouts: 30 s to
    /// connect, and 30 s for each read of a response, so that a connection that stalls fails
    /// with `TimedOut` (and a ranged download is resumed) rather than hangs. Whatever the agent
    /// says, `spawn_url` reads every status itself (as with `http_status_as_error(false)`).
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::io::{BufRead, BufReader, Write};
    /// # let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// # let url = format!("http://{}/hello.txt", listener.local_addr()?);
    /// # std::thread::spawn(move || -> std::io::Result<()> {
    /// #     let (conn, _) = listener.accept()?;
    /// #     let mut head = BufReader::new(&conn);
    /// #     let mut line = String::new();
    /// #     while head.read_line(&mut line)? > 2 {
    /// #         line.clear();
    /// #     }
    /// #     (&conn).write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
    /// # });
    /// use std::time::Duration;
    /// use streamcache::StreamCache;
    ///
    /// let agent: ureq::Agent = ureq::Agent::config_builder()
    ///     .timeout_connect(Some(Duration::from_secs(5)))
    ///     .timeout_per_read(Some(Duration::from_secs(10)))
    ///     .build()
    ///     .into();
    /// // `url` is an http(s) URL (here a tiny local server's).
    /// let cache = StreamCache::builder().http_agent(agent).spawn_url(&url)?;
    /// assert_eq!(cache.slice(..)?, b"hello");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn http_agent(mut self, agent: Agent) -> Builder {
        self.http.agent = Some(agent);
        self
    }

    /// A header that [`spawn_url`](Self::spawn_url) adds to every request it sends, such as
    /// `Authorization` (feature `http`). Each call adds one; a name given twice is sent twice.
    ///
    /// The header is checked by `spawn_url`: a name that is not valid in HTTP, a value that is
    /// not visible ASCII, or `Range` and `If-Range` (which `spawn_url` sets itself) make it
    /// fail with `InvalidInput`. Values never appear in error messages nor in the builder's
    /// `Debug`. ureq drops `Authorization` when it follows a redirect (unless the agent is
    /// configured otherwise, with `redirect_auth_headers`).
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::io::{BufRead, BufReader, Write};
    /// # let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// # let url = format!("http://{}/private.txt", listener.local_addr()?);
    /// # std::thread::spawn(move || -> std::io::Result<()> {
    /// #     let (conn, _) = listener.accept()?;
    /// #     let mut head = BufReader::new(&conn);
    /// #     let (mut line, mut allowed) = (String::new(), false);
    /// #     while head.read_line(&mut line)? > 2 {
    /// #         allowed |= line.eq_ignore_ascii_case("authorization: Bearer secret\r\n");
    /// #         line.clear();
    /// #     }
    /// #     let answer: &[u8] = match allowed {
    /// #         true => b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    /// #         false => b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n",
    /// #     };
    /// #     (&conn).write_all(answer)
    /// # });
    /// use streamcache::StreamCache;
    ///
    /// let cache = StreamCache::builder()
    ///     .http_header("Authorization", "Bearer secret")
    ///     .spawn_url(&url)?;
    /// assert_eq!(cache.slice(..)?, b"ok");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn http_header(mut self, name: &str, value: &str) -> Builder {
        self.http.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Starts a cache over the resource at an `http://` or `https://` URL (feature `http`).
    ///
    /// The first request, made here, is a GET with `Range: bytes=0-` (with
    /// [`connections`](Self::connections) above 1, the first span's range) and the
    /// [headers](Self::http_header) given. If the server answers with the range (`206`, and a
    /// `Content-Range` with the total length `n`), the download is resumable: after a transient
    /// error (a dropped connection, a timeout, a body cut short) the filler asks for the rest
    /// with `Range`, within [`retries`](Self::retries), and `If-Range` set to the first
    /// answer's strong `ETag` (or its `Last-Modified`). An answer that is not exactly the range
    /// asked for, of the same resource (a `200`, another `Content-Range`, another length or
    /// `ETag`: the resource changed) fails the stream with `InvalidData` at that offset; its
    /// bytes are never spliced in. [`expected_len`](StreamCache::expected_len) is `n`.
    ///
    /// If the server ignores `Range` (answers `200`), the body is read as it comes, with its
    /// Content-Length (if any) as the expected length; it is not resumed. An empty resource
    /// (`416` with `Content-Range: bytes */0`, or a body of length 0) is an empty, complete
    /// stream. Redirects are followed as the agent says (ureq follows up to 10 by default).
    ///
    /// # Errors
    ///
    /// From the first request, here, with a kind that follows its cause: `InvalidInput` for a
    /// URL that does not parse or is not http(s), or a bad [`http_header`](Self::http_header);
    /// `NotFound` for a `404` or `410`, `PermissionDenied` for a `401` or `403`, `Other` for
    /// any other status that is not a success; `InvalidData` for a `206` whose `Content-Range`
    /// does not start the resource at 0; `TimedOut` for a timeout; the connection's own error
    /// (`ConnectionRefused`, `ConnectionReset`, …) when it fails. Every message names the
    /// status and the URL, without its query string (which may hold a token). Then the errors
    /// of [`spawn`](Self::spawn). Errors of later requests, and of the body, come later, to
    /// the readers, with the same kinds.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::io::{BufRead, BufReader, Write};
    /// # let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// # let url = format!("http://{}/hello.txt?token=secret", listener.local_addr()?);
    /// # std::thread::spawn(move || -> std::io::Result<()> {
    /// #     let (conn, _) = listener.accept()?;
    /// #     let mut head = BufReader::new(&conn);
    /// #     let mut line = String::new();
    /// #     while head.read_line(&mut line)? > 2 {
    /// #         line.clear();
    /// #     }
    /// #     (&conn).write_all(
    /// #         b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-11/12\r\n\
    /// #           Content-Length: 12\r\nETag: \"v1\"\r\n\r\nhello world!",
    /// #     )
    /// # });
    /// use std::io::Read;
    /// use streamcache::StreamCache;
    ///
    /// // `url` is an http(s) URL (here a tiny local server's, which answers with a range).
    /// let cache = StreamCache::builder().memory_limit(1 << 20).spawn_url(&url)?;
    /// assert_eq!(cache.expected_len(), Some(12)); // from the Content-Range
    /// let mut text = String::new();
    /// cache.reader().read_to_string(&mut text)?;
    /// assert_eq!(text, "hello world!");
    ///
    /// // Bad URLs are errors, not panics.
    /// let err = StreamCache::builder().spawn_url("not a url").unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn spawn_url(mut self, url: &str) -> io::Result<StreamCache> {
        let target = Target::new(std::mem::take(&mut self.http), url)?;
        // Over several connections the first answer is the first span alone (else the one
        // connection would be sent more than the lane reads of it).
        let fetch = self.settings.fetch;
        // With `cache_dir`, the first answer may find the entry complete already: it asks for
        // one byte only (a validation that sends no body to speak of).
        let span = match self.settings.cache_dir {
            Some(_) => Some(1),
            None => (fetch.connections > 1).then_some(fetch.fetch_span),
        };
        match target.first(span)? {
            // Not ranged: nothing another process could fetch again by range. The documented
            // fallback is a private cache, as without `cache_dir`.
            First::Empty => self.private().expected_len(0).spawn(io::empty()),
            First::Plain { len, body } => match len {
                Some(len) => self.private().expected_len(len).spawn(body),
                None => self.private().spawn(body),
            },
            First::Ranged(source) => {
                let len = source.len;
                if self.settings.cache_dir.is_some() {
                    match source.validator() {
                        Some(validator) => {
                            if self.settings.cache_key.is_none() {
                                self.settings.cache_key = Some(source.target.shown.clone());
                            }
                            self.settings.validator = Some(validator);
                        }
                        // No validator: a changed resource could not be told from this one.
                        None => self = self.private(),
                    }
                }
                self.spawn_ranged(len, move |range: Range<u64>| source.open(range))
            }
        }
    }
}

impl StreamCache {
    /// A cache over the resource at an `http://` or `https://` URL, with the default settings:
    /// `StreamCache::builder().spawn_url(url)` (feature `http`). See
    /// [`Builder::spawn_url`] for what is asked of the server, and what is done with its
    /// answers.
    ///
    /// # Errors
    ///
    /// As [`Builder::spawn_url`]: those of the first request (`NotFound` for a `404`, …), made
    /// here.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::io::{BufRead, BufReader, Write};
    /// # let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// # let url = format!("http://{}/hello.txt", listener.local_addr()?);
    /// # std::thread::spawn(move || -> std::io::Result<()> {
    /// #     for answer in [&b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"[..],
    /// #                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"] {
    /// #         let (conn, _) = listener.accept()?;
    /// #         let mut head = BufReader::new(&conn);
    /// #         let mut line = String::new();
    /// #         while head.read_line(&mut line)? > 2 {
    /// #             line.clear();
    /// #         }
    /// #         (&conn).write_all(answer)?;
    /// #     }
    /// #     Ok(())
    /// # });
    /// use streamcache::StreamCache;
    ///
    /// // `url` is an http(s) URL (here a tiny local server's).
    /// let cache = StreamCache::from_url(&url)?;
    /// assert_eq!(cache.slice(..)?, b"hello");
    ///
    /// // The second answer of the server is a 404.
    /// let err = StreamCache::from_url(&format!("{url}?token=secret")).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    /// assert!(err.to_string().contains("404"));
    /// assert!(err.to_string().contains("/hello.txt"));
    /// assert!(!err.to_string().contains("secret"));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn from_url(url: &str) -> io::Result<StreamCache> {
        StreamCache::builder().spawn_url(url)
    }
}

/// The first answer, sorted.
enum First {
    /// `416` with `bytes */0`: nothing to read.
    Empty,
    /// A success other than `206`: the body as it comes, with its Content-Length.
    Plain { len: Option<u64>, body: UrlBody },
    /// `206` from 0 to the end.
    Ranged(Box<RangedUrl>),
}

/// One URL and how to ask for it.
struct Target {
    agent: Agent,
    url: String,
    /// The URL as error messages show it: no query string, fragment or user info.
    shown: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    /// Whether the caller set its own Accept-Encoding (else: `identity`, so that offsets count
    /// the bytes as stored).
    accept_encoding: bool,
}

impl Target {
    /// Checks the URL and the headers, before anything is sent.
    fn new(settings: HttpSettings, url: &str) -> io::Result<Target> {
        let shown = super::shown::url_shown(url);
        let uri = Uri::try_from(url).map_err(|e| {
            let message = format!("not a URL: {shown:?}: {e}");
            io::Error::new(ErrorKind::InvalidInput, message)
        })?;
        let scheme = uri.scheme_str().unwrap_or("");
        if !["http", "https"].contains(&scheme) || uri.host().is_none_or(str::is_empty) {
            let message = format!("not an http(s) URL with a host: {shown:?}");
            return Err(io::Error::new(ErrorKind::InvalidInput, message));
        }
        let mut headers = Vec::with_capacity(settings.headers.len());
        for (name, value) in settings.headers {
            let bad = |what: &str| {
                let message = format!("http_header({name:?}, …): {what}");
                io::Error::new(ErrorKind::InvalidInput, message)
            };
            let header =
                HeaderName::try_from(name.as_str()).map_err(|_| bad("not a valid header name"))?;
            if header == RANGE || header == IF_RANGE {
                return Err(bad("spawn_url sets this header itself"));
            }
            // Visible ASCII only: ureq refuses other bytes in some headers (Authorization).
            let mut value = HeaderValue::try_from(value)
                .ok()
                .filter(|v| v.to_str().is_ok())
                .ok_or_else(|| bad("not a valid header value (visible ASCII)"))?;
            value.set_sensitive(true);
            headers.push((header, value));
        }
        let agent = settings.agent.unwrap_or_else(|| {
            Agent::config_builder()
                .timeout_connect(Some(DEFAULT_TIMEOUT))
                .timeout_per_read(Some(DEFAULT_TIMEOUT))
                .build()
                .into()
        });
        Ok(Target {
            agent,
            url: url.to_owned(),
            shown,
            accept_encoding: headers.iter().any(|(name, _)| name == ACCEPT_ENCODING),
            headers,
        })
    }

    /// A GET with `Range: range` (and `If-Range: if_range`). Statuses are the caller's to
    /// read; ureq's errors come out as `io::Error`s ([`Target::error`]).
    fn get(&self, range: &str, if_range: Option<&HeaderValue>) -> io::Result<Response<Body>> {
        let mut request = self.agent.get(&self.url);
        for (name, value) in &self.headers {
            request = request.header(name.clone(), value.clone());
        }
        if !self.accept_encoding {
            request = request.header(ACCEPT_ENCODING, "identity");
        }
        request = request.header(RANGE, range);
        if let Some(validator) = if_range {
            request = request.header(IF_RANGE, validator.clone());
        }
        request
            .config()
            .http_status_as_error(false)
            .build()
            .call()
            .map_err(|e| self.error(e, range))
    }

    /// The first request, `Range: bytes=0-` (or, for a fill over several connections,
    /// `bytes=0-(span - 1)`: the first span alone, so that no connection is sent more than its
    /// span), and what its answer makes of the source.
    fn first(self, span: Option<u64>) -> io::Result<First> {
        let asked = match span {
            Some(span) => format!("bytes=0-{}", span.max(1) - 1),
            None => "bytes=0-".to_owned(),
        };
        let asked = asked.as_str();
        let response = self.get(asked, None)?;
        let status = response.status();
        let content_range = header(&response, &CONTENT_RANGE);
        if status == StatusCode::RANGE_NOT_SATISFIABLE && content_range == Some("bytes */0") {
            return Ok(First::Empty);
        }
        if !status.is_success() {
            return Err(self.status_error(status, asked));
        }
        if status != StatusCode::PARTIAL_CONTENT {
            let len = response.body().content_length();
            let body = UrlBody::new(&self, response, 0, u64::MAX);
            return Ok(First::Plain { len, body });
        }
        let (len, first_end) = match content_range.and_then(parse_content_range) {
            Some((0, end, total)) if end + 1 == total => (total, total),
            Some((0, end, total)) if span.is_some_and(|span| end + 1 == span.min(total)) => {
                (total, end + 1)
            }
            _ => {
                let what = format!(
                    "206 Partial Content with Content-Range {:?}, not the whole resource",
                    content_range.unwrap_or("")
                );
                return Err(self.invalid(asked, what));
            }
        };
        // A weak ETag (`W/"…"`) cannot validate a range: the Last-Modified date can.
        let etag = response
            .headers()
            .get(ETAG)
            .filter(|tag| !tag.as_bytes().starts_with(b"W/"))
            .cloned();
        let last_modified = response.headers().get(LAST_MODIFIED).cloned();
        let body = UrlBody::new(&self, response, 0, first_end);
        Ok(First::Ranged(Box::new(RangedUrl {
            target: self,
            len,
            etag,
            last_modified,
            first: Mutex::new(Some(body)),
            first_end,
        })))
    }

    /// An error about the answer to `asked`: the request and the URL, then `what`.
    fn message(&self, asked: &str, what: impl fmt::Display) -> String {
        format!("GET {} (Range: {asked}): {what}", self.shown)
    }

    fn invalid(&self, asked: &str, what: impl fmt::Display) -> io::Error {
        io::Error::new(ErrorKind::InvalidData, self.message(asked, what))
    }

    /// A status that is not a success, as the error kind it stands for.
    fn status_error(&self, status: StatusCode, asked: &str) -> io::Error {
        io::Error::new(status_kind(status.as_u16()), self.message(asked, status))
    }

    /// ureq's error as an `io::Error` whose kind tells whether trying again may help: a
    /// timeout is `TimedOut`, a dropped connection keeps its own kind (`ConnectionReset`,
    /// `UnexpectedEof` for a body cut short, …); both are retried by a resumable source.
    fn error(&self, error: ureq::Error, asked: &str) -> io::Error {
        use ureq::Error as E;
        let kind = match &error {
            E::Io(e) => e.kind(),
            E::Timeout(_) => ErrorKind::TimedOut,
            E::StatusCode(status) => status_kind(*status),
            E::HostNotFound => ErrorKind::NotFound,
            E::ConnectionFailed => ErrorKind::ConnectionRefused,
            E::BodyStalled => ErrorKind::ConnectionAborted,
            E::Protocol(_) | E::LargeResponseHeader(..) => ErrorKind::InvalidData,
            E::BadUri(_) | E::Http(_) | E::RequireHttpsOnly(_) => ErrorKind::InvalidInput,
            _ => ErrorKind::Other,
        };
        let what = match error {
            // These two quote a URL, which may hold a query string (a redirect's).
            E::BadUri(_) => "a URL that does not parse (a redirect's Location?)".to_owned(),
            E::RequireHttpsOnly(_) => "the agent is configured for https only".to_owned(),
            E::Io(e) => e.to_string(),
            error => error.to_string(),
        };
        io::Error::new(kind, self.message(asked, what))
    }
}

impl RangedUrl {
    /// What tells this version of the resource from any other: its strong ETag, else its
    /// Last-Modified (the key of a shared entry is the URL and this).
    fn validator(&self) -> Option<String> {
        let (kind, value) = match (&self.etag, &self.last_modified) {
            (Some(etag), _) => ("etag", etag),
            (None, Some(date)) => ("last-modified", date),
            (None, None) => return None,
        };
        Some(format!(
            "{kind}:{}",
            String::from_utf8_lossy(value.as_bytes())
        ))
    }
}

/// A URL whose server answers ranges: the `open(range)` of a ranged source.
struct RangedUrl {
    target: Target,
    /// The resource's length, from the first answer.
    len: u64,
    /// The first answer's strong ETag: `If-Range` of every later request, and what their
    /// answers must carry if they carry one.
    etag: Option<HeaderValue>,
    /// The first answer's Last-Modified: `If-Range` when there is no strong ETag.
    last_modified: Option<HeaderValue>,
    /// The first answer's body, from byte 0: handed out by the first `open(0..b)` with
    /// `b <= first_end`.
    first: Mutex<Option<UrlBody>>,
    /// Where the first answer ends: the length, or the first span's end.
    first_end: u64,
}

impl RangedUrl {
    /// The bytes `range` of the resource, exactly: a reader capped at `range.end - range.start`
    /// bytes, which ends early if the body does (a break, to resume).
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a range that is inverted or ends past the length; those of the
    /// request ([`Target::error`], [`Target::status_error`]); `InvalidData` for an answer that
    /// is not that range of the same resource.
    fn open(&self, range: Range<u64>) -> io::Result<UrlBody> {
        let Range { start, end } = range;
        if start > end || end > self.len {
            let message = format!(
                "{}: the range {start}..{end} is not within its {} bytes",
                self.target.shown, self.len
            );
            return Err(io::Error::new(ErrorKind::InvalidInput, message));
        }
        if start == 0 && end <= self.first_end {
            if let Some(mut body) = self.first.lock().take() {
                body.left = end;
                return Ok(body);
            }
        }
        if start == end {
            return Ok(UrlBody::empty(&self.target, start));
        }
        let last = end - 1;
        let asked = format!("bytes={start}-{last}");
        let if_range = self.etag.as_ref().or(self.last_modified.as_ref());
        let response = self.target.get(&asked, if_range)?;
        let status = response.status();
        if !status.is_success() {
            return Err(self.target.status_error(status, &asked));
        }
        if status != StatusCode::PARTIAL_CONTENT {
            let what = format!(
                "got {status} instead of 206 Partial Content: the resource changed, or the \
                 server ignored Range"
            );
            return Err(self.target.invalid(&asked, what));
        }
        let got = header(&response, &CONTENT_RANGE).unwrap_or("");
        let want = format!("bytes {start}-{last}/{}", self.len);
        if got != want {
            let what = match parse_content_range(got) {
                Some((_, _, total)) if total != self.len => {
                    format!("the length changed from {} to {total}", self.len)
                }
                _ => format!("got Content-Range {got:?} instead of {want:?}"),
            };
            return Err(self.target.invalid(&asked, what));
        }
        let changed = |name: &HeaderName, before: &Option<HeaderValue>| {
            let now = response.headers().get(name)?;
            let before = before.as_ref()?;
            (now != before).then(|| format!("the {name} changed from {before:?} to {now:?}"))
        };
        let change = if self.etag.is_some() {
            changed(&ETAG, &self.etag)
        } else {
            changed(&LAST_MODIFIED, &self.last_modified)
        };
        if let Some(what) = change {
            return Err(self.target.invalid(&asked, what));
        }
        Ok(UrlBody::new(&self.target, response, start, end - start))
    }
}

/// A response body: at most `left` more bytes, its errors mapped by [`Target::error`].
struct UrlBody {
    /// `None` for an empty range.
    reader: Option<BodyReader<'static>>,
    /// Bytes still to hand out (`u64::MAX`: no cap).
    left: u64,
    /// The resource's offset of the next byte, for the messages.
    at: u64,
    /// The URL as messages show it.
    shown: String,
}

impl UrlBody {
    fn new(target: &Target, response: Response<Body>, at: u64, left: u64) -> UrlBody {
        UrlBody {
            reader: Some(response.into_body().into_reader()),
            left,
            at,
            shown: target.shown.clone(),
        }
    }

    fn empty(target: &Target, at: u64) -> UrlBody {
        UrlBody {
            reader: None,
            left: 0,
            at,
            shown: target.shown.clone(),
        }
    }
}

impl Read for UrlBody {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(reader) = self.reader.as_mut().filter(|_| self.left > 0) else {
            return Ok(0);
        };
        let max = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        match reader.read(&mut buf[..max]) {
            Ok(n) => {
                // Never more than asked, whatever the reader claims.
                let n = n.min(max);
                self.left -= n as u64;
                self.at += n as u64;
                Ok(n)
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => Err(e),
            Err(e) => {
                // ureq hands its own errors over wrapped in an `io::Error`: unwrap them.
                let (kind, what) = match ureq::Error::from(e) {
                    ureq::Error::Io(e) => (e.kind(), e.to_string()),
                    ureq::Error::Timeout(t) => (ErrorKind::TimedOut, format!("timeout: {t}")),
                    ureq::Error::Protocol(p) => (ErrorKind::InvalidData, format!("protocol: {p}")),
                    other => (ErrorKind::Other, other.to_string()),
                };
                let message = format!("GET {}: at byte {}: {what}", self.shown, self.at);
                Err(io::Error::new(kind, message))
            }
        }
    }
}

/// The error kind a status stands for: `NotFound` for `404` and `410`, `PermissionDenied` for
/// `401` and `403`, `Other` for the rest.
fn status_kind(status: u16) -> ErrorKind {
    match status {
        404 | 410 => ErrorKind::NotFound,
        401 | 403 => ErrorKind::PermissionDenied,
        _ => ErrorKind::Other,
    }
}

/// A header's value, if it is there and text.
fn header<'r>(response: &'r Response<Body>, name: &HeaderName) -> Option<&'r str> {
    response.headers().get(name)?.to_str().ok()
}

/// `bytes FIRST-LAST/TOTAL` → `(FIRST, LAST, TOTAL)`, with `FIRST <= LAST < TOTAL`.
fn parse_content_range(value: &str) -> Option<(u64, u64, u64)> {
    let (range, total) = value.strip_prefix("bytes ")?.split_once('/')?;
    let (first, last) = range.split_once('-')?;
    let number = |s: &str| {
        s.parse::<u64>()
            .ok()
            .filter(|_| s.bytes().all(|b| b.is_ascii_digit()))
    };
    let (first, last, total) = (number(first)?, number(last)?, number(total)?);
    (first <= last && last < total).then_some((first, last, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges_parse_strictly() {
        assert_eq!(parse_content_range("bytes 0-9/10"), Some((0, 9, 10)));
        assert_eq!(parse_content_range("bytes 5-5/6"), Some((5, 5, 6)));
        for bad in [
            "bytes 0-9/*",
            "bytes */10",
            "bytes 0-10/10",
            "bytes 9-0/10",
            "bytes +0-9/10",
            "bits 0-9/10",
            "bytes 0-9/10 ",
            "",
        ] {
            assert_eq!(parse_content_range(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn statuses_map_to_kinds() {
        assert_eq!(status_kind(404), ErrorKind::NotFound);
        assert_eq!(status_kind(410), ErrorKind::NotFound);
        assert_eq!(status_kind(401), ErrorKind::PermissionDenied);
        assert_eq!(status_kind(403), ErrorKind::PermissionDenied);
        assert_eq!(status_kind(500), ErrorKind::Other);
        assert_eq!(status_kind(416), ErrorKind::Other);
    }
}
