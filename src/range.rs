//! Turning a caller's `RangeBounds<u64>` into checked offsets.

use std::io;
use std::ops::{Bound, RangeBounds};

/// A checked range: `start..end`, where `end == None` means "to the end of the stream".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) start: u64,
    pub(crate) end: Option<u64>,
}

impl Span {
    /// Resolves `range`; an inverted range or a bound that overflows `u64` is `InvalidInput`.
    pub(crate) fn new(range: &impl RangeBounds<u64>) -> io::Result<Self> {
        let start = match range.start_bound() {
            Bound::Included(&s) => s,
            Bound::Excluded(&s) => s.checked_add(1).ok_or_else(|| overflow(range))?,
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&e) => Some(e.checked_add(1).ok_or_else(|| overflow(range))?),
            Bound::Excluded(&e) => Some(e),
            Bound::Unbounded => None,
        };
        if let Some(end) = end {
            if start > end {
                return Err(invalid_input(format!(
                    "inverted range {}: start {start} is past end {end}",
                    Show(range)
                )));
            }
        }
        Ok(Self { start, end })
    }
}

/// `InvalidInput` with a message saying what was asked.
pub(crate) fn invalid_input(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

fn overflow(range: &impl RangeBounds<u64>) -> io::Error {
    invalid_input(format!("range {} overflows u64", Show(range)))
}

/// Displays a range the way it was written.
struct Show<'a, R>(&'a R);

impl<R: RangeBounds<u64>> std::fmt::Display for Show<'_, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.start_bound() {
            Bound::Included(s) => write!(f, "{s}")?,
            Bound::Excluded(s) => write!(f, "(excluded {s})")?,
            Bound::Unbounded => {}
        }
        match self.0.end_bound() {
            Bound::Included(e) => write!(f, "..={e}"),
            Bound::Excluded(e) => write!(f, "..{e}"),
            Bound::Unbounded => write!(f, ".."),
        }
    }
}
