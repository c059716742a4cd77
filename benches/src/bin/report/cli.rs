//! The command line.

use crate::{MIB, READER_COUNTS};
use clap::Parser;
use std::path::{Path, PathBuf};
use streamcache_benches::{mem_available, Contender, RANDOM_READ};

/// streamcache side by side with its peers and with the machine's limits, every ratio taken
/// inside the same run.
#[derive(Debug, Parser)]
#[command(name = "report")]
struct Args {
    /// 128 MiB streams, one pass, a 1 GiB stream in place of 8 GiB in (d)
    #[arg(long)]
    quick: bool,
    /// Also write the table and the verdicts as JSON
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// Best of N for (a), (b), (r)'s zip, (n) and (s3); (r) without seeks: 2N interleaved, at least 4
    /// [default: 3, 1 with --quick]
    #[arg(long, value_name = "N")]
    reps: Option<usize>,
    /// Stream length for (a), (b) and (r) without seeks [default: 1G, 128M with --quick; K, M,
    /// G suffixes]
    #[arg(long, value_name = "SIZE", value_parser = size)]
    len: Option<u64>,
    /// The large stream of (d) [default: 8G, 1G with --quick]
    #[arg(long, value_name = "SIZE", value_parser = size)]
    big: Option<u64>,
    /// memory_limit in (d); the small stream is 4x this [default: 64M, 32M with --quick]
    #[arg(long, value_name = "SIZE", value_parser = size)]
    rss_limit: Option<u64>,
    /// Where temp files go [default: the system temp dir; must not be tmpfs]
    #[arg(long, value_name = "DIR")]
    temp_dir: Option<PathBuf>,
    /// (r) the size of the served zip [default: 1G, 128M with --quick]
    #[arg(long, value_name = "SIZE", value_parser = size)]
    zip_len: Option<u64>,
    /// (r) the server's rate per connection, bytes per second [default: 100M]
    #[arg(long, value_name = "SIZE", value_parser = size, default_value = "100M")]
    http_rate: u64,
    /// (n) the file nginx serves [default: 512M, 128M with --quick]
    #[arg(long, value_name = "SIZE", value_parser = size)]
    conn_len: Option<u64>,
    /// (n) nginx's limit_rate per request, bytes per second [default: 16M, nginx's `16m`]
    #[arg(long, value_name = "SIZE", value_parser = size, default_value = "16M")]
    conn_rate: u64,
    /// (n) streamcache's fetch_span and hf_transfer's chunk_size [default: --conn-len / 8]
    #[arg(long, value_name = "SIZE", value_parser = size)]
    conn_span: Option<u64>,
    /// (n) the Python that imports hf_transfer [default: target/bench-venv/bin/python if it
    /// exists, else python3]
    #[arg(long, value_name = "PATH")]
    hf_python: Option<PathBuf>,
    /// Run only these workloads, e.g. --only ac (p: processes sharing one cache_dir entry;
    /// s3: the object store on moto, not in the default set)
    #[arg(long, value_name = "LETTERS", default_value = "abcdrnp")]
    only: String,
    /// (a) only for these, e.g. streamcache-mem,naive (ids: naive, streamcatcher,
    /// stream-download, spooled, streamcache-mem, streamcache-spill)
    #[arg(long, value_name = "IDS", value_delimiter = ',', value_parser = contender)]
    contenders: Vec<Contender>,
    /// (a) only with these reader counts, e.g. 1,4
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    readers: Vec<usize>,
    /// Memory touched and freed before each timed run of the limits and (a) [default: 2x the
    /// stream + 512M, at most half of MemAvailable; 0: none]
    #[arg(long, value_name = "SIZE", value_parser = size)]
    prewarm: Option<u64>,
}

#[derive(Debug)]
pub(crate) struct Opts {
    pub(crate) quick: bool,
    pub(crate) json: Option<PathBuf>,
    pub(crate) reps: usize,
    pub(crate) len: u64,
    pub(crate) big: u64,
    pub(crate) rss_limit: u64,
    pub(crate) temp_dir: PathBuf,
    only: String,
    /// (r): the served zip's size and the server's rate per connection (bytes/s).
    pub(crate) zip_len: u64,
    pub(crate) http_rate: u64,
    /// (n): the served file's size, nginx's rate per request (bytes/s), the span of
    /// streamcache's lanes and hf_transfer's chunks, the Python with hf_transfer.
    pub(crate) conn_len: u64,
    pub(crate) conn_rate: u64,
    pub(crate) conn_span: u64,
    pub(crate) hf_python: PathBuf,
    pub(crate) contenders: Vec<Contender>,
    pub(crate) readers: Vec<usize>,
    /// Bytes touched and freed before each timed run of the limits and (a): see
    /// `streamcache_benches::prewarm`.
    pub(crate) prewarm: u64,
    pub(crate) random_ops: u64,
    pub(crate) wake_iters: usize,
}

impl Opts {
    /// The options of this process's command line; prints the usage and exits on an error.
    pub(crate) fn parse() -> Opts {
        let args = Args::parse();
        let quick = args.quick;
        let len = args
            .len
            .unwrap_or(if quick { 128 * MIB } else { 1024 * MIB });
        let conn_len = args
            .conn_len
            .unwrap_or(if quick { 128 * MIB } else { 512 * MIB });
        let opts = Opts {
            quick,
            json: args.json,
            reps: args.reps.unwrap_or(if quick { 1 } else { 3 }),
            len,
            big: args
                .big
                .unwrap_or(if quick { 1024 * MIB } else { 8192 * MIB }),
            rss_limit: args
                .rss_limit
                .unwrap_or(if quick { 32 * MIB } else { 64 * MIB }),
            temp_dir: args.temp_dir.unwrap_or_else(std::env::temp_dir),
            only: args.only,
            zip_len: args
                .zip_len
                .unwrap_or(if quick { 128 * MIB } else { 1024 * MIB }),
            http_rate: args.http_rate,
            conn_len,
            conn_rate: args.conn_rate,
            // One span per lane at n = 8, as aria2c -s 8 cuts the file.
            conn_span: args.conn_span.unwrap_or((conn_len / 8).max(1)),
            hf_python: args.hf_python.unwrap_or_else(bench_python),
            contenders: if args.contenders.is_empty() {
                Contender::ALL.to_vec()
            } else {
                args.contenders
            },
            readers: if args.readers.is_empty() {
                READER_COUNTS.to_vec()
            } else {
                args.readers
            },
            prewarm: args.prewarm.unwrap_or_else(|| {
                let half_available = mem_available().map_or(u64::MAX, |a| a / 2);
                (2 * len + 512 * MIB).min(half_available)
            }),
            random_ops: if quick { 100_000 } else { 500_000 },
            wake_iters: if quick { 300 } else { 2000 },
        };
        if opts.reps == 0
            || opts.len < 2 * RANDOM_READ as u64
            || opts.http_rate == 0
            || opts.conn_rate == 0
            || opts.conn_span == 0
        {
            use clap::CommandFactory;
            Args::command()
                .error(
                    clap::error::ErrorKind::ValueValidation,
                    "--reps, --http-rate, --conn-rate and --conn-span must be at least 1 and --len at \
                     least 8K",
                )
                .exit();
        }
        opts
    }

    /// Whether workload `workload` (a letter of `--only`) runs.
    pub(crate) fn runs(&self, workload: char) -> bool {
        self.only.contains(workload)
    }
}

/// The bench's own venv (where `pip install hf-transfer` goes), else `python3` on `PATH`.
fn bench_python() -> PathBuf {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-venv/bin/python");
    if venv.exists() {
        venv
    } else {
        PathBuf::from("python3")
    }
}

/// Parses `123`, `64K`, `8M`, `1G`.
fn size(arg: &str) -> Result<u64, String> {
    let (digits, shift) = match arg.chars().last() {
        Some('K' | 'k') => (&arg[..arg.len() - 1], 10),
        Some('M' | 'm') => (&arg[..arg.len() - 1], 20),
        Some('G' | 'g') => (&arg[..arg.len() - 1], 30),
        _ => (arg, 0),
    };
    digits
        .parse::<u64>()
        .map(|n| n << shift)
        .map_err(|e| format!("{arg:?} is not a size: {e}"))
}

fn contender(id: &str) -> Result<Contender, String> {
    Contender::from_id(id).ok_or(format!("no contender {id:?}"))
}
