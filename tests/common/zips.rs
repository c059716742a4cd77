//! Zips of stored pattern entries, for the object-store tests: built with each entry's digest,
//! then listed and checked through a cache, as a zip reader reads one (the end first).

use crate::common::fill_pattern;
use sha2::{Digest, Sha256};
use std::io::{self, Read, Write};
use streamcache::StreamCache;

/// A zip of `entries` stored entries of `size` pattern bytes each, and each entry's digest.
pub fn zip_of(entries: usize, size: usize) -> (Vec<u8>, Vec<[u8; 32]>) {
    let mut zip = zip::ZipWriter::new(io::Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let mut digests = Vec::new();
    for i in 0..entries {
        let mut data = vec![0; size];
        fill_pattern((i * size) as u64, &mut data);
        zip.start_file(format!("entry-{i:02}.bin"), options)
            .unwrap();
        zip.write_all(&data).unwrap();
        digests.push(Sha256::digest(&data).into());
    }
    (zip.finish().unwrap().into_inner(), digests)
}

/// Lists the zip in `cache` and checks the last entry's digest.
pub fn check_zip(cache: &StreamCache, digests: &[[u8; 32]]) {
    let mut archive = zip::ZipArchive::new(cache.reader()).unwrap();
    assert_eq!(archive.len(), digests.len());
    let mut last = Vec::new();
    let n = digests.len() - 1;
    archive.by_index(n).unwrap().read_to_end(&mut last).unwrap();
    assert_eq!(<[u8; 32]>::from(Sha256::digest(&last)), digests[n]);
}
