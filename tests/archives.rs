//! Archives parsed while they arrive, with the crates a user would use: `zip` (stored and deflated
//! entries; the central directory at the end, found by seeking there) and `tar` over `flate2`
//! gzip (read front to back through `BufRead`). Every entry is compared with what was written.
#![cfg(not(miri))]

mod common;

use bytes::Bytes;
use common::noise;
use std::io::{self, Cursor, Read, Write};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;
use streamcache::StreamCache;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

/// `len` bytes of numbered text lines: compressible.
fn text(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 64);
    let mut line = 0u64;
    while out.len() < len {
        writeln!(
            out,
            "line {line}: the quick brown fox jumps over {} dogs",
            line % 97
        )
        .expect("write to a Vec");
        line += 1;
    }
    out.truncate(len);
    out
}

/// A slow source over `data`: pieces of `piece` bytes, a short pause before each. With a gate,
/// the bytes from `hold_at` on wait until the gate is opened (or dropped), so that a test can
/// look at the stream while it is certainly incomplete.
fn slow_cache(
    data: Vec<u8>,
    piece: usize,
    gate: Option<(usize, mpsc::Receiver<()>)>,
) -> StreamCache {
    let data = Bytes::from(data);
    let (hold_at, gate) = match gate {
        Some((at, rx)) => (at, Some(rx)),
        None => (data.len(), None),
    };
    let mut at = 0;
    let chunks = std::iter::from_fn(move || {
        if at == data.len() {
            return None;
        }
        if at == hold_at {
            if let Some(gate) = &gate {
                let _ = gate.recv(); // opened, or the test is gone: go on either way
            }
        }
        thread::sleep(Duration::from_millis(1));
        let limit = if at < hold_at { hold_at } else { data.len() };
        let end = limit.min(at + piece);
        let chunk = data.slice(at..end);
        at = end;
        Some(Ok::<_, io::Error>(chunk))
    });
    StreamCache::builder()
        .memory_limit(256 << 10) // most of each archive goes through the spill file
        .spawn_chunks(chunks)
        .expect("spawn")
}

/// One entry as written: name, content, and for zip the compression method.
struct Written {
    name: String,
    content: Vec<u8>,
    method: CompressionMethod,
}

/// A zip of stored and deflated entries, large and small, and the entries as written.
fn build_zip() -> (Vec<u8>, Vec<Written>) {
    let entries = vec![
        (
            "stored/random.bin",
            noise(1, 3 << 20),
            CompressionMethod::Stored,
        ),
        (
            "deflated/text.txt",
            text(2 << 20),
            CompressionMethod::Deflated,
        ),
        ("stored/empty", Vec::new(), CompressionMethod::Stored),
        (
            "deflated/random.bin",
            noise(2, 1 << 20),
            CompressionMethod::Deflated,
        ),
        (
            "deflated/short.txt",
            b"hello, zip\n".to_vec(),
            CompressionMethod::Deflated,
        ),
        ("stored/text.txt", text(700_001), CompressionMethod::Stored),
    ];
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    let mut written = Vec::new();
    for (name, content, method) in entries {
        let options = SimpleFileOptions::default().compression_method(method);
        zip.start_file(name, options).expect("start_file");
        zip.write_all(&content).expect("write entry");
        written.push(Written {
            name: name.to_owned(),
            content,
            method,
        });
    }
    let bytes = zip.finish().expect("finish").into_inner();
    (bytes, written)
}

/// Checks every entry of `archive` against `written`, in order.
fn check_zip<R: Read + io::Seek>(archive: &mut ZipArchive<R>, written: &[Written]) {
    assert_eq!(archive.len(), written.len(), "number of entries");
    for (i, w) in written.iter().enumerate() {
        let mut entry = archive.by_index(i).expect("by_index");
        assert_eq!(entry.name().expect("name"), w.name, "entry {i}'s name");
        assert_eq!(entry.compression(), w.method, "{}'s method", w.name);
        let mut content = Vec::new();
        entry
            .read_to_end(&mut content)
            .expect("read entry (CRC checked)");
        assert!(content == w.content, "{}'s content", w.name);
    }
}

#[test]
fn zip_archive_over_a_reader_of_a_slow_stream_matches_what_was_written() {
    let (bytes, written) = build_zip();
    let cache = slow_cache(bytes.clone(), 64 << 10, None);

    // The directory is at the end: `ZipArchive::new` seeks there, waiting for the bytes.
    let mut archive = ZipArchive::new(cache.reader()).expect("open the zip");
    check_zip(&mut archive, &written);

    // Several threads, each with its own clone of the archive and so its own cursor.
    let written = std::sync::Arc::new(written);
    let threads: Vec<_> = (0..3)
        .map(|_| {
            let (mut archive, written) = (archive.clone(), std::sync::Arc::clone(&written));
            thread::spawn(move || check_zip(&mut archive, &written))
        })
        .collect();
    for t in threads {
        t.join().expect("a checking thread failed");
    }
    assert_eq!(cache.slice(..).expect("slice"), &bytes[..]);
}

#[test]
fn zip_entries_come_out_by_their_local_headers_before_the_archive_has_arrived() {
    let (bytes, written) = build_zip();
    // Hold back the end-of-central-directory record (22 bytes, no comment).
    let hold_at = bytes.len() - 22;
    let (open, gate) = mpsc::channel();
    let cache = slow_cache(bytes.clone(), 32 << 10, Some((hold_at, gate)));

    let mut reader = cache.reader();
    for w in &written {
        let mut entry = zip::read::read_zipfile_from_stream(&mut reader)
            .expect("a local header")
            .expect("an entry before the central directory");
        assert_eq!(entry.name().expect("name"), w.name);
        let mut content = Vec::new();
        entry
            .read_to_end(&mut content)
            .expect("read entry (CRC checked)");
        assert!(content == w.content, "{}'s content", w.name);
    }
    assert!(
        zip::read::read_zipfile_from_stream(&mut reader)
            .expect("the central directory")
            .is_none(),
        "no entry after the last one"
    );
    assert!(
        !cache.is_complete(),
        "every entry was read before the end arrived"
    );
    assert!(cache.available() <= hold_at as u64);

    open.send(()).expect("the source waits at the gate");
    let mut archive = ZipArchive::new(cache.reader()).expect("open the zip");
    check_zip(&mut archive, &written);
}

/// One tar entry as written (a directory and a link have empty content).
struct TarEntry {
    name: String,
    kind: tar::EntryType,
    content: Vec<u8>,
}

/// A gzip'd tar of files of awkward sizes (around the 512-byte block), a long name, a directory
/// and a symlink; with the entries as written.
fn build_tar_gz() -> (Vec<u8>, Vec<TarEntry>) {
    let long = format!("deep/{}/file.txt", "very-long-directory-name".repeat(6));
    let files: Vec<(String, Vec<u8>)> = vec![
        ("first.txt".to_owned(), text(100_000)),
        ("random.bin".to_owned(), noise(3, 1 << 20)),
        ("empty".to_owned(), Vec::new()),
        ("one".to_owned(), b"1".to_vec()),
        ("block-minus-one".to_owned(), noise(4, 511)),
        ("block".to_owned(), noise(5, 512)),
        ("block-plus-one".to_owned(), noise(6, 513)),
        (long, text(4096)),
        ("big.txt".to_owned(), text(3 << 20)),
    ];
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    let mut written = Vec::new();

    let mut dir = tar::Header::new_gnu();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o755);
    dir.set_size(0);
    tar.append_data(&mut dir, "a-directory/", io::empty())
        .expect("append dir");
    written.push(TarEntry {
        name: "a-directory/".to_owned(),
        kind: tar::EntryType::Directory,
        content: Vec::new(),
    });

    for (name, content) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        tar.append_data(&mut header, &name, &content[..])
            .expect("append file");
        written.push(TarEntry {
            name,
            kind: tar::EntryType::Regular,
            content,
        });
    }

    let mut link = tar::Header::new_gnu();
    link.set_entry_type(tar::EntryType::Symlink);
    link.set_size(0);
    tar.append_link(&mut link, "link-to-first", "first.txt")
        .expect("append link");
    written.push(TarEntry {
        name: "link-to-first".to_owned(),
        kind: tar::EntryType::Symlink,
        content: Vec::new(),
    });

    let gz = tar
        .into_inner()
        .expect("finish tar")
        .finish()
        .expect("finish gzip");
    (gz, written)
}

/// Reads every entry of a tar.gz from `reader` and checks it against `written`, in order.
fn check_tar_gz(reader: streamcache::Reader, written: &[TarEntry]) {
    let mut archive = tar::Archive::new(flate2::bufread::GzDecoder::new(reader));
    let mut count = 0;
    for (i, entry) in archive.entries().expect("entries").enumerate() {
        let mut entry = entry.expect("an entry");
        let TarEntry {
            name,
            kind,
            content,
        } = written.get(i).expect("no more entries than written");
        let path = entry.path().expect("path").to_string_lossy().into_owned();
        assert_eq!(path.trim_end_matches('/'), name.trim_end_matches('/'));
        assert_eq!(entry.header().entry_type(), *kind, "{name}'s type");
        if *kind == tar::EntryType::Symlink {
            let target = entry.link_name().expect("link name").expect("a target");
            assert_eq!(target.to_str(), Some("first.txt"));
        }
        let mut got = Vec::new();
        entry.read_to_end(&mut got).expect("read entry");
        assert!(got == *content, "{name}'s content");
        count += 1;
    }
    assert_eq!(count, written.len(), "number of entries");
}

#[test]
fn tar_gz_through_readers_of_a_slow_stream_matches_entry_by_entry() {
    let (gz, written) = build_tar_gz();
    let cache = slow_cache(gz.clone(), 32 << 10, None);
    let written = std::sync::Arc::new(written);
    // Three threads decompress and unpack the one stream at the same time.
    let threads: Vec<_> = (0..3)
        .map(|_| {
            let (reader, written) = (cache.reader(), std::sync::Arc::clone(&written));
            thread::spawn(move || check_tar_gz(reader, &written))
        })
        .collect();
    for t in threads {
        t.join().expect("a checking thread failed");
    }
    assert_eq!(cache.slice(..).expect("slice"), &gz[..]);
}

#[test]
fn tar_gz_entries_come_out_before_the_archive_has_arrived() {
    let (gz, written) = build_tar_gz();
    // Hold back the last quarter: the first entries are readable without it.
    let hold_at = gz.len() * 3 / 4;
    let (open, gate) = mpsc::channel();
    let cache = slow_cache(gz, 16 << 10, Some((hold_at, gate)));

    let mut archive = tar::Archive::new(flate2::bufread::GzDecoder::new(cache.reader()));
    let mut entries = archive.entries().expect("entries");
    for TarEntry { name, content, .. } in &written[..2] {
        let mut entry = entries.next().expect("an entry").expect("a header");
        assert_eq!(
            entry
                .path()
                .expect("path")
                .to_string_lossy()
                .trim_end_matches('/'),
            name.trim_end_matches('/')
        );
        let mut got = Vec::new();
        entry.read_to_end(&mut got).expect("read entry");
        assert!(got == *content, "{name}'s content");
    }
    assert!(!cache.is_complete(), "read before the end arrived");
    assert!(cache.available() <= hold_at as u64);

    open.send(()).expect("the source waits at the gate");
    let rest = entries.count();
    assert_eq!(2 + rest, written.len());
    check_tar_gz(cache.reader(), &written);
}
