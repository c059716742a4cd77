//! The file of a shared entry, `NAME.entry`: a header page, the span map, then the stream.
//!
//! ```text
//! 0     magic, version, block size, len, data offset, map words, key and validator lengths,
//!       and a checksum of all of them and of the key and validator: written once, at creation
//! 128   the live words, atomics every process shares through its mapping:
//!       publish (the futex a publish bumps), request (the futex a request bumps),
//!       sealed, the span map's checksum (valid while sealed), the writer's boot, requests
//! 1024  the key, then the validator
//! 4096  the span map: one bit per block of 64 KiB, set once the block is written (the last
//!       block may be short)
//! DATA  the stream, `[0, len)`, page-aligned
//! ```
//!
//! A bit is set (Release) only after every byte of its block is written, so a process that
//! sees it set (Acquire) reads the right bytes, and a writer killed at any instruction leaves
//! only right bytes behind set bits (invariant 1, across processes). The checksum of the span
//! map is written when a writer stops (complete, dropped or failed), and cleared when one
//! starts: a sealed entry whose map does not match it is torn, and rebuilt, never served. An
//! unsealed entry (its writer was killed) is trusted only on the boot that wrote it: after a
//! reboot the disk may hold set bits whose blocks never reached it.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

pub(crate) const MAGIC: [u8; 8] = *b"stcache\x01";
pub(crate) const VERSION: u32 = 1;
pub(crate) const BLOCK_SHIFT: u32 = 16;
pub(crate) const BLOCK: u64 = 1 << BLOCK_SHIFT;
const PAGE: u64 = 4096;
const FIXED_END: usize = 48;
const SUM_AT: usize = 48;
const LIVE_AT: usize = 128;
const KEY_AT: usize = 1024;
/// Room for the key and the validator together.
pub(crate) const MAX_KEY_BYTES: usize = PAGE as usize - KEY_AT;
/// Requests that can wait at once for the writer; more wait in their process (`Entry::post`).
pub(crate) const REQUEST_SLOTS: usize = 32;

/// Where everything lies in an entry of `len` bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layout {
    pub(crate) len: u64,
    pub(crate) map_words: usize,
    pub(crate) data_at: u64,
}

impl Layout {
    pub(crate) fn new(len: u64) -> Layout {
        let blocks = len.div_ceil(BLOCK);
        let map_words = blocks.div_ceil(64) as usize;
        let map_bytes = (map_words as u64 * 8).div_ceil(PAGE).max(1) * PAGE;
        Layout {
            len,
            map_words,
            data_at: PAGE + map_bytes,
        }
    }

    /// The file's length.
    pub(crate) fn file_len(&self) -> u64 {
        self.data_at + self.len
    }

    /// Block `k`'s bytes of the stream.
    pub(crate) fn block(&self, k: u64) -> std::ops::Range<u64> {
        k * BLOCK..((k + 1) * BLOCK).min(self.len)
    }
}

/// The live words of the header, in the shared mapping.
#[repr(C)]
pub(crate) struct Live {
    /// Bumped (and woken) on every publish, and when a writer stops.
    pub(crate) publish: AtomicU32,
    /// Bumped (and woken) when a request is posted.
    pub(crate) request: AtomicU32,
    /// 1 while `map_sum` is the span map's checksum (no writer is writing).
    pub(crate) sealed: AtomicU32,
    pub(crate) map_sum: AtomicU64,
    /// The boot that the last writer ran on (`boot_id`).
    pub(crate) writer_boot: AtomicU64,
    /// Offsets + 1 of bytes that readers in other processes wait for; 0: free.
    pub(crate) requests: [AtomicU64; REQUEST_SLOTS],
}

const _: () = assert!(LIVE_AT + std::mem::size_of::<Live>() <= KEY_AT);

/// The header's fixed part and key for an entry, checksummed.
pub(crate) fn header(layout: &Layout, key: &[u8], validator: &[u8]) -> Vec<u8> {
    let mut page = vec![0u8; PAGE as usize];
    page[0..8].copy_from_slice(&MAGIC);
    page[8..12].copy_from_slice(&VERSION.to_le_bytes());
    page[12..16].copy_from_slice(&BLOCK_SHIFT.to_le_bytes());
    page[16..24].copy_from_slice(&layout.len.to_le_bytes());
    page[24..32].copy_from_slice(&layout.data_at.to_le_bytes());
    page[32..40].copy_from_slice(&(layout.map_words as u64).to_le_bytes());
    page[40..44].copy_from_slice(&(key.len() as u32).to_le_bytes());
    page[44..48].copy_from_slice(&(validator.len() as u32).to_le_bytes());
    page[KEY_AT..KEY_AT + key.len()].copy_from_slice(key);
    page[KEY_AT + key.len()..KEY_AT + key.len() + validator.len()].copy_from_slice(validator);
    let sum = header_sum(&page, key.len() + validator.len());
    page[SUM_AT..SUM_AT + 8].copy_from_slice(&sum.to_le_bytes());
    page
}

fn header_sum(page: &[u8], key_bytes: usize) -> u64 {
    let mut sum = Fnv::new();
    sum.write(&page[..FIXED_END]);
    sum.write(&page[KEY_AT..KEY_AT + key_bytes]);
    sum.finish()
}

/// Whether a file's header is the one [`header`] writes for this entry: `fixed`, its first
/// [`FIXED_BYTES`] bytes (fields and checksum), and `keys`, the [`key_bytes`] after
/// [`KEY_AT`], match, and the checksum holds. A torn or corrupt header, a different version,
/// or another key with the same name are all "no". The live words between them, which other
/// processes change, are not looked at.
pub(crate) fn header_matches(
    fixed: &[u8],
    keys: &[u8],
    layout: &Layout,
    key: &[u8],
    validator: &[u8],
) -> bool {
    let expected = header(layout, key, validator);
    let mut page = vec![0u8; PAGE as usize];
    page[..FIXED_BYTES].copy_from_slice(fixed);
    page[KEY_AT..KEY_AT + keys.len()].copy_from_slice(keys);
    fixed == &expected[..FIXED_BYTES]
        && keys == &expected[KEY_AT..KEY_AT + key.len() + validator.len()]
        && u64::from_le_bytes(page[SUM_AT..SUM_AT + 8].try_into().unwrap())
            == header_sum(&page, keys.len())
}

/// The header's fields and checksum: what [`header_matches`] reads first.
pub(crate) const FIXED_BYTES: usize = SUM_AT + 8;

/// Where the key and validator start in the header.
pub(crate) const KEYS_AT: usize = KEY_AT;

/// How many bytes the key and validator of this entry take.
pub(crate) fn key_bytes(key: &[u8], validator: &[u8]) -> usize {
    key.len() + validator.len()
}

/// The checksum of a span map (sealed into the header when a writer stops).
pub(crate) fn map_sum(map: &[AtomicU64]) -> u64 {
    let mut sum = Fnv::new();
    for word in map {
        sum.write(&word.load(Ordering::Acquire).to_le_bytes());
    }
    sum.finish()
}

/// The entry's file name (without extension): 128 bits of two FNV-1a hashes of the key, the
/// length and the validator, so that a new validator is a new entry.
pub(crate) fn entry_name(key: &[u8], len: u64, validator: &[u8]) -> String {
    let mut a = Fnv::new();
    let mut b = Fnv::with_basis(0x6c62_272e_07bb_0142);
    for part in [key, &len.to_le_bytes(), validator] {
        for sum in [&mut a, &mut b] {
            sum.write(&(part.len() as u64).to_le_bytes());
            sum.write(part);
        }
    }
    format!("{:016x}{:016x}", a.finish(), b.finish())
}

/// This boot's identity (Linux: a hash of `boot_id`; elsewhere 0, so that an unsealed entry
/// is trusted as it is, as documented).
pub(crate) fn boot_id() -> u64 {
    #[cfg(target_os = "linux")]
    if let Ok(id) = std::fs::read("/proc/sys/kernel/random/boot_id") {
        let mut sum = Fnv::new();
        sum.write(&id);
        return sum.finish() | 1;
    }
    0
}

/// FNV-1a, 64 bits: stable across Rust versions and platforms (the std hasher is neither),
/// and enough to catch a torn page.
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv::with_basis(0xcbf2_9ce4_8422_2325)
    }

    fn with_basis(basis: u64) -> Fnv {
        Fnv(basis)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}
