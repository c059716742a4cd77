//! A source that re-opens itself where it broke: `Builder::spawn_resumable`.

use crate::filler::checked_read;
use crate::shared::Shared;
use std::io::{self, ErrorKind, Read};
use std::sync::Arc;
use std::time::Duration;

/// The longest wait between two re-opens.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Errors after which opening the source again at the same offset may succeed.
fn is_transient(kind: ErrorKind) -> bool {
    crate::TRANSIENT_ERROR_KINDS.contains(&kind)
}

/// When and how often to re-open.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryPolicy {
    /// Re-opens allowed at one offset, since the last byte of progress.
    pub(crate) retries: u32,
    /// The wait before the first re-open; doubles per failure without progress.
    pub(crate) first_backoff: Duration,
}

/// `open(offset)` behind `Read`: a transient error (or, with an expected length, an early end)
/// closes the current reader and opens a new one at the offset reached, after a backoff.
pub(crate) struct Resumable<F, R> {
    open: F,
    current: Option<R>,
    /// Bytes delivered so far: where the next `open` starts.
    offset: u64,
    expected_len: Option<u64>,
    policy: RetryPolicy,
    /// Re-opens since the last byte of progress.
    failures: u32,
    backoff: Duration,
    /// For waking up from a backoff when every handle is dropped.
    shared: Arc<Shared>,
}

impl<F, R> Resumable<F, R>
where
    F: FnMut(u64) -> io::Result<R>,
    R: Read,
{
    pub(crate) fn new(open: F, policy: RetryPolicy, shared: Arc<Shared>) -> Self {
        Self {
            open,
            current: None,
            offset: 0,
            expected_len: shared.expected_len,
            policy,
            failures: 0,
            backoff: policy.first_backoff,
            shared,
        }
    }

    /// A transient `error` happened at `offset`: wait and allow a re-open, or give up with it.
    fn after_failure(&mut self, error: io::Error) -> io::Result<()> {
        self.current = None;
        if !is_transient(error.kind()) || self.failures >= self.policy.retries {
            // An `Interrupted` handed on would be retried at once by the filler: give up for real.
            if error.kind() == ErrorKind::Interrupted {
                return Err(io::Error::other(format!("retries exhausted: {error}")));
            }
            return Err(error);
        }
        self.failures += 1;
        if !self.shared.sleep_unless_cancelled(self.backoff) {
            return Err(io::Error::other("every handle was dropped"));
        }
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        Ok(())
    }
}

impl<F, R> Read for Resumable<F, R>
where
    F: FnMut(u64) -> io::Result<R>,
    R: Read,
{
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let reader = match &mut self.current {
                Some(reader) => reader,
                None => match (self.open)(self.offset) {
                    Ok(reader) => self.current.insert(reader),
                    Err(e) => {
                        self.after_failure(e)?;
                        continue;
                    }
                },
            };
            // As for every source: `Interrupted` is retried at once on the same reader, and a
            // read claiming more than `buf` is `InvalidData` (not transient, so never resumed).
            match checked_read(reader, buf) {
                Ok(0) if !buf.is_empty() && self.expected_len.is_some_and(|e| self.offset < e) => {
                    let error = io::Error::new(
                        ErrorKind::UnexpectedEof,
                        format!(
                            "the source ended at byte {} of the {} expected",
                            self.offset,
                            self.expected_len.unwrap_or_default()
                        ),
                    );
                    self.after_failure(error)?;
                }
                Ok(n) => {
                    if n > 0 {
                        self.offset += n as u64;
                        self.failures = 0;
                        self.backoff = self.policy.first_backoff;
                    }
                    return Ok(n);
                }
                Err(e) => self.after_failure(e)?,
            }
        }
    }
}
