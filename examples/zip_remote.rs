//! A remote zip, read as it downloads: the entry list as soon as the central directory (at the
//! end of the file) has arrived, and the last entry before the bytes in front of it have.
//!
//! ```text
//! cargo run --release --features http --example zip_remote -- URL [--all]
//! ```
//!
//! `Builder::spawn_url` makes a ranged source of a server that honours `Range` (nginx, S3, any
//! static file server): the download runs front to back, and `zip::ZipArchive::new`, which
//! seeks to the end, fetches the directory at once instead of waiting for it. With `--all`, the
//! example then waits for the whole download and prints every entry's SHA-256 in the format of
//! `sha256sum` (`HASH  NAME`), so that a script can check them.

use sha2::{Digest, Sha256};
use std::io::{self, Read};
use std::time::Instant;
use streamcache::StreamCache;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let Some(url) = args.next() else {
        eprintln!("usage: zip_remote URL [--all]");
        std::process::exit(2);
    };
    let all = args.next().as_deref() == Some("--all");

    let start = Instant::now();
    let cache = StreamCache::builder().spawn_url(&url)?;
    let progress = |cache: &StreamCache| match cache.expected_len() {
        Some(len) if len > 0 => format!(
            "the download at {:.1}% ({} of {len} bytes in order)",
            100.0 * cache.available() as f64 / len as f64,
            cache.available()
        ),
        _ => format!("{} bytes downloaded in order", cache.available()),
    };

    let mut archive = zip::ZipArchive::new(cache.reader())?;
    eprintln!(
        "entry list after {:.0} ms, {}: {} entries",
        start.elapsed().as_secs_f64() * 1e3,
        progress(&cache),
        archive.len()
    );
    // The names come from the central directory alone; an entry's data (and its local
    // header, in front of it) is fetched only when the entry is read.
    for name in archive.file_names() {
        eprintln!("  {}", name?);
    }

    if let Some(last) = archive.len().checked_sub(1) {
        let (name, size, digest) = digest_entry(&mut archive, last)?;
        eprintln!(
            "last entry {name} ({size} bytes, sha256 {}) after {:.0} ms, {}",
            hex(&digest),
            start.elapsed().as_secs_f64() * 1e3,
            progress(&cache)
        );
    }

    if all {
        let len = cache.wait_complete()?;
        eprintln!(
            "download complete after {:.0} ms: {len} bytes",
            start.elapsed().as_secs_f64() * 1e3
        );
        for i in 0..archive.len() {
            let (name, _, digest) = digest_entry(&mut archive, i)?;
            println!("{}  {name}", hex(&digest));
        }
    }
    Ok(())
}

/// Reads entry `i` to its end (the zip crate checks its CRC-32 there) and hashes it.
fn digest_entry<R: io::Read + io::Seek>(
    archive: &mut zip::ZipArchive<R>,
    i: usize,
) -> io::Result<(String, u64, Vec<u8>)> {
    let mut entry = archive.by_index(i)?;
    let name = entry.name()?.into_owned();
    let mut hasher = Sha256::new();
    let mut buf = vec![0; 1 << 16];
    let mut size = 0;
    loop {
        let n = entry.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((name, size, hasher.finalize().to_vec()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
