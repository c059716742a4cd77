//! (s3): an object in S3, on moto's server (issue 21). A zip of stored entries uploaded in a
//! multipart upload; streamcache's `spawn_object_url` with `defer_fill`: the entry list and
//! the last entry, against s3fs's `zipfile.ZipFile(fs.open(path))`, `namelist()` and the last
//! entry, and the bytes moto sent for streamcache's run; then the whole object with
//! `connections(8)` against s3fs's `fs.cat(path)`. Every client goes through the same counting
//! proxy in front of moto; every run's bytes are checked against the uploaded ones, untimed.

use crate::table::{Report, Row};
use crate::Opts;
use std::io;
use std::time::Duration;
use streamcache_benches::{
    clear_aws_env, last_entry_sha256, moto_server_path, s3fs_cat, s3fs_version, s3fs_zip,
    sha256_hex, stored_zip, streamcache_whole, streamcache_zip, Moto, S3Run, FETCH_SPAN, MIB,
};

/// The object: 256 MiB.
const OBJECT_LEN: u64 = 256 * MIB;
/// 64 stored entries of 4 MiB: the last entry is 1/64 (1.6 %) of the object, as in (r), so that
/// the target (< 2 % of the object's bytes) leaves room for the directory and the fetches' spans.
const ENTRIES: u64 = 64;
/// The multipart upload's parts.
const PART: u64 = 16 * MIB;
/// streamcache's `fetch_ahead` for the zip: a read 1 MiB past the fill is fetched at once.
const GAP: u64 = MIB;
/// The connections of row 2.
const CONNECTIONS: usize = 8;

const SC_ZIP: &str = "streamcache spawn_object_url, defer_fill: entry list + last entry";
const S3FS_ZIP: &str = "s3fs open + zipfile: namelist + last entry";
const SC_BYTES: &str = "streamcache: bytes moto sent, entry list + last entry";
const SC_WHOLE: &str = "streamcache connections(8), fetch_span len/8: whole object";
const SC_WHOLE_DEFAULT: &str = "streamcache connections(8), fetch_span 4 MiB: whole object";
const S3FS_CAT: &str = "s3fs cat: whole object";

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / MIB as f64
}

/// The best (shortest) run of a contender, the most bytes of any, or the last error.
#[derive(Debug, Default)]
struct Tally {
    best: Option<S3Run>,
    most_sent: u64,
    error: Option<String>,
}

impl Tally {
    fn record(&mut self, rep: usize, name: &str, run: io::Result<S3Run>) {
        match run {
            Ok(run) => {
                println!(
                    "  rep {rep} {name}: {:.0} ms, moto sent {:.2} MiB ({:.2} MiB by the end \
                     of the timed part)",
                    ms(run.time),
                    mib(run.sent),
                    mib(run.sent_by_end)
                );
                self.most_sent = self.most_sent.max(run.sent);
                if self.best.is_none_or(|b| run.time < b.time) {
                    self.best = Some(run);
                }
            }
            Err(e) => {
                println!("  rep {rep} {name}: failed: {e}");
                self.error = Some(format!("failed: {e}"));
            }
        }
    }

    fn ms(&self) -> Option<f64> {
        self.best.map(|b| ms(b.time))
    }

    fn note(&self, ok: String) -> String {
        match (&self.best, &self.error) {
            (Some(_), None) => ok,
            (Some(_), Some(e)) => format!("{ok}; a run {e}"),
            (None, Some(e)) => e.clone(),
            (None, None) => "not run".to_owned(),
        }
    }
}

fn skipped(report: &mut Report, reason: String) {
    println!("  skipped: {reason}");
    report
        .rows
        .push(Row::new("s3", "every row", None, "ms").note(reason));
}

pub(crate) fn object_store(opts: &Opts, report: &mut Report) -> io::Result<()> {
    println!("(s3) an object in S3, on moto's server ...");
    let cleared = clear_aws_env();
    let binary = moto_server_path();
    if !binary.exists() {
        skipped(
            report,
            format!(
                "{} is missing (scripts/object-servers installs it)",
                binary.display()
            ),
        );
        return Ok(());
    }
    let moto = match Moto::start(&binary) {
        Ok(moto) => moto,
        Err(e) => {
            skipped(report, format!("moto_server does not start: {e}"));
            return Ok(());
        }
    };
    let versions = match s3fs_version(&moto.python) {
        Ok(v) => v,
        Err(e) => {
            skipped(report, e);
            return Ok(());
        }
    };
    let zip = stored_zip(OBJECT_LEN, OBJECT_LEN / ENTRIES)?;
    let len = zip.bytes.len() as u64;
    let whole_sha = sha256_hex(&zip.bytes);
    let last_sha = last_entry_sha256(&zip)?;
    let (etag, parts) = moto.upload(&zip, &opts.temp_dir, PART)?;
    drop(zip);
    report.info(
        "(s3) moto",
        format!(
            "{} -H 127.0.0.1 (s3fs, botocore: {versions}), behind a counting TCP proxy on \
             127.0.0.1 that every client uses; AWS_* cleared ({cleared} were set); explicit \
             endpoint, static credentials, us-east-1, plain HTTP",
            binary.display()
        ),
    );
    report.info(
        "(s3) object",
        format!(
            "a zip of {ENTRIES} stored entries of {} MiB, {len} bytes ({:.1} MiB), uploaded \
             with boto3 in {parts} parts of {} MiB (ETag {etag})",
            OBJECT_LEN / ENTRIES / MIB,
            mib(len),
            PART / MIB
        ),
    );
    report.info(
        "(s3) timing",
        "streamcache: from spawn_object_url (the store built, the HEAD) to the last byte, \
         spilling into --temp-dir; s3fs: from S3FileSystem(...) to the last byte, timed in \
         Python (interpreter and imports not counted), s3fs's defaults (readahead cache, 50 MiB \
         blocks); bytes: what moto sent through the proxy (headers included) until it is quiet \
         after the run; every read's SHA-256 checked, untimed",
    );

    let entries = ENTRIES as usize;
    let mut sc_zip = Tally::default();
    let mut fs_zip = Tally::default();
    let mut sc_whole = Tally::default();
    let mut sc_whole_default = Tally::default();
    let mut fs_cat = Tally::default();
    // One span per lane, as (n) and aria2c -s 8 cut the object; and streamcache's default.
    let span = len.div_ceil(CONNECTIONS as u64);
    for rep in 0..opts.reps {
        let dir = &opts.temp_dir;
        sc_zip.record(
            rep,
            "streamcache zip",
            streamcache_zip(&moto, GAP, dir, entries, &last_sha),
        );
        fs_zip.record(rep, "s3fs zip", s3fs_zip(&moto, entries, &last_sha));
        sc_whole.record(
            rep,
            "streamcache connections(8), fetch_span len/8",
            streamcache_whole(&moto, CONNECTIONS, span, dir, &whole_sha),
        );
        sc_whole_default.record(
            rep,
            "streamcache connections(8), fetch_span 4 MiB",
            streamcache_whole(&moto, CONNECTIONS, FETCH_SPAN, dir, &whole_sha),
        );
        fs_cat.record(rep, "s3fs cat", s3fs_cat(&moto, len, &whole_sha));
    }
    drop(moto);

    let reps = opts.reps;
    let sc_zip_ms = sc_zip.ms();
    let mut row = Row::new("s3", SC_ZIP, None, "ms").note(sc_zip.note(format!("best of {reps}")));
    if let Some(v) = sc_zip_ms {
        row = row.value(v);
        row.vs_streamcache = Some(1.0);
    }
    report.rows.push(row);
    let fs_zip_ms = fs_zip.ms();
    let mut row = Row::new("s3", S3FS_ZIP, None, "ms").note(fs_zip.note(format!(
        "best of {reps}; moto sent {:.1} MiB (the most of any run)",
        mib(fs_zip.most_sent)
    )));
    if let Some(v) = fs_zip_ms {
        row = row.value(v);
        row.vs_streamcache = sc_zip_ms.map(|sc| v / sc);
    }
    report.rows.push(row);
    let budget = 0.02 * len as f64;
    let mut row = Row::new("s3", SC_BYTES, None, "MiB");
    if sc_zip.best.is_some() {
        row = row
            .value(sc_zip.most_sent as f64)
            .limit("2% of object", budget)
            .note(format!(
                "the most of {reps} run(s), {:.2} % of the object's {len} bytes",
                100.0 * sc_zip.most_sent as f64 / len as f64
            ));
    } else {
        row = row.note(sc_zip.note(String::new()));
    }
    report.rows.push(row);
    let sc_whole_ms = sc_whole.ms();
    let mut row = Row::new("s3", SC_WHOLE, None, "ms").note(sc_whole.note(format!(
        "best of {reps}; fetch_span {span} (one span per lane); moto sent {:.1} MiB",
        mib(sc_whole.most_sent)
    )));
    if let Some(v) = sc_whole_ms {
        row = row.value(v);
        row.vs_streamcache = Some(1.0);
    }
    report.rows.push(row);
    let mut row =
        Row::new("s3", SC_WHOLE_DEFAULT, None, "ms").note(sc_whole_default.note(format!(
            "best of {reps}; the default span: {} requests, and moto reads the whole object \
             for each; moto sent {:.1} MiB",
            len.div_ceil(FETCH_SPAN),
            mib(sc_whole_default.most_sent)
        )));
    if let Some(v) = sc_whole_default.ms() {
        row = row.value(v);
        row.vs_streamcache = sc_whole_ms.map(|sc| v / sc);
    }
    report.rows.push(row);
    let fs_cat_ms = fs_cat.ms();
    let mut row = Row::new("s3", S3FS_CAT, None, "ms").note(fs_cat.note(format!(
        "best of {reps}; moto sent {:.1} MiB",
        mib(fs_cat.most_sent)
    )));
    if let Some(v) = fs_cat_ms {
        row = row.value(v);
        row.vs_streamcache = sc_whole_ms.map(|sc| v / sc);
    }
    report.rows.push(row);

    let versus = |sc: Option<f64>, peer: Option<f64>| match (sc, peer) {
        (Some(s), Some(p)) => format!("{s:.0} ms vs {p:.0} ms ({:.2} × s3fs)", s / p),
        _ => "not measured".to_owned(),
    };
    report.verdict(
        "(s3) zip: entry list + last entry <= s3fs's time".to_owned(),
        versus(sc_zip_ms, fs_zip_ms),
        sc_zip_ms.zip(fs_zip_ms).map(|(s, p)| s <= p),
    );
    report.verdict(
        "(s3) zip: bytes moto sent < 2% of the object".to_owned(),
        match sc_zip.best {
            Some(_) => format!(
                "{} of {len} bytes ({:.2} %)",
                sc_zip.most_sent,
                100.0 * sc_zip.most_sent as f64 / len as f64
            ),
            None => "not measured".to_owned(),
        },
        sc_zip.best.map(|_| (sc_zip.most_sent as f64) < budget),
    );
    report.verdict(
        "(s3) whole object: connections(8), fetch_span len/8 <= s3fs cat's time".to_owned(),
        versus(sc_whole_ms, fs_cat_ms),
        sc_whole_ms.zip(fs_cat_ms).map(|(s, p)| s <= p),
    );
    Ok(())
}
