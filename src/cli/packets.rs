//! `sgsim packets`: decode a capture or flow log, one JSON object per packet or record.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

use super::Exit;
use sgsim::packet::input::{self, Files, Window};
use sgsim::packet::{Item, Packet, Record, Source};

#[derive(clap::Args, Debug)]
pub struct PacketsArgs {
    /// A capture (pcap, pcapng), a flow log (AWS text or Parquet, Alibaba JSON lines or
    /// CSV; `.gz` too), a folder of them (S3 delivery layouts recognised) or an s3:// URL.
    #[arg(long, value_name = "PATH")]
    pub traffic: PathBuf,
    /// Treat a malformed flow-log line as an error (exit 2) instead of a counted skip
    /// (rows of Parquet row groups that --since/--until leave unread are not looked at).
    #[arg(long)]
    pub strict: bool,
    #[command(flatten)]
    pub window: WindowArgs,
}

/// `--since` / `--until`: the time window of the traffic read.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct WindowArgs {
    /// Only traffic at or after TIME (Unix seconds, YYYY-MM-DD, or YYYY-MM-DDTHH:MM[:SS]Z):
    /// records whose window ends before it, and S3 partitions that end before it, are
    /// left out.
    #[arg(long, value_name = "TIME", value_parser = input::parse_time)]
    pub since: Option<u64>,
    /// Only traffic before TIME (same forms): records that start at or after it are left
    /// out, and S3 partitions that start an hour or more after it.
    #[arg(long, value_name = "TIME", value_parser = input::parse_time)]
    pub until: Option<u64>,
    /// What decodes Parquet flow logs on disk: sgsim's own reader, or Apache DataFusion's
    /// parallel scan (every core; needs the `fleet` feature). Both give the same records.
    #[arg(long, value_enum, default_value = "builtin")]
    pub scan: ScanArg,
    /// Scan Parquet flow logs on the Ballista cluster whose scheduler is at this URL
    /// (`df://HOST:PORT`; `sgsim cluster`; needs the `cluster` feature); with `whatif
    /// --fold plan`, run the whole what-if there, on Parquet and text flow logs. Every
    /// machine must read the same paths.
    #[arg(long, value_name = "URL")]
    pub cluster: Option<String>,
}

/// `--scan`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ScanArg {
    /// sgsim's row-group reader.
    #[default]
    Builtin,
    /// DataFusion's parallel Parquet scan (feature `fleet`).
    Datafusion,
}

impl WindowArgs {
    pub fn window(&self) -> Window {
        Window {
            since: self.since,
            until: self.until,
        }
    }

    /// How inputs are read; an error when `--scan` asks for what this build lacks.
    pub fn options(&self, strict: bool) -> anyhow::Result<input::Options> {
        if let Some(url) = &self.cluster {
            anyhow::ensure!(
                cfg!(feature = "cluster"),
                "--cluster needs sgsim built with the `cluster` feature (cargo build --release --features cluster)"
            );
            anyhow::ensure!(
                url.starts_with("df://"),
                "--cluster {url:?}: expected df://HOST:PORT"
            );
            return Ok(self.with(strict, input::Scan::Cluster(url.clone())));
        }
        let scan = match self.scan {
            ScanArg::Builtin => input::Scan::Builtin,
            ScanArg::Datafusion if cfg!(feature = "fleet") => input::Scan::DataFusion,
            ScanArg::Datafusion => anyhow::bail!(
                "--scan datafusion needs sgsim built with the `fleet` feature (cargo build --release --features fleet)"
            ),
        };
        Ok(self.with(strict, scan))
    }

    fn with(&self, strict: bool, scan: input::Scan) -> input::Options {
        let mut options = input::Options::default();
        options.strict = strict;
        options.window = self.window();
        options.scan = scan;
        options
    }
}

/// Opens a traffic input (a file, a folder or an s3:// URL) within a time window,
/// detecting each file's kind.
pub fn open_in(path: &Path, options: input::Options) -> anyhow::Result<(Source<'static>, u64)> {
    let files = Files::open(&path.to_string_lossy(), options)
        .with_context(|| format!("cannot open {}", path.display()))?;
    let len = files.len();
    if files.pruned() > 0 {
        eprintln!(
            "sgsim: {}: {} files read, {} left out by --since/--until",
            path.display(),
            files.files(),
            files.pruned()
        );
    } else if files.is_empty() {
        eprintln!("sgsim: warning: {}: no file to read", path.display());
    }
    Ok((Source::Files(Box::new(files)), len))
}

/// The warnings of a traffic input (files skipped because they are not traffic).
pub fn warnings(source: &Source<'_>) -> Vec<String> {
    match source {
        Source::Files(f) => f.warnings().to_vec(),
        _ => Vec::new(),
    }
}

/// Prints an input's warnings on stderr.
pub fn print_warnings(source: &Source<'_>) {
    for w in warnings(source) {
        eprintln!("sgsim: warning: {}", sgsim::term::escape_lines(&w));
    }
}

/// A progress bar over `len` bytes, drawn only on a terminal and never under CI.
pub fn progress(len: u64) -> ProgressBar {
    let ci = std::env::var_os("CI").is_some();
    if ci || !std::io::stderr().is_terminal() || len < (8 << 20) {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} {bytes}/{total_bytes} {wide_bar} {bytes_per_sec} eta {eta} {msg}",
    ) {
        bar.set_style(style);
    }
    bar
}

/// Fails when a flow log gave no usable record at all and some lines were malformed:
/// the input is most likely not a flow log. (Records the time window left out once read
/// were usable: they are counted skipped, not decoded. Rows of Parquet row groups the
/// window left unread were not looked at: they show nothing either way.)
pub fn check_usable(source: &Source<'_>, path: &Path) -> anyhow::Result<()> {
    let s = source.summary();
    if source.is_flow_log() && s.none_usable() {
        if let Some(first) = s.examples.first() {
            anyhow::bail!(
                "{}: not a usable flow log or capture (no record could be read; {first})",
                path.display()
            );
        }
    }
    Ok(())
}

/// A decoded packet as `sgsim packets` prints it.
pub fn packet_json(p: &Packet) -> Value {
    json!({
        "index": p.index,
        "src": p.header.src().to_string(),
        "dst": p.header.dst().to_string(),
        "protocol": p.header.protocol(),
        "src_port": p.ports().map(|x| x.0),
        "dst_port": p.ports().map(|x| x.1),
        "icmp_type": p.icmp_type(),
        "icmp_code": p.icmp_code(),
        "ts_ns": p.ts_ns,
        "wire_len": p.wire_len,
        "cap_len": p.cap_len,
        "tcp_flags": p.tcp_flags(),
        "interface": p.interface,
        "fragment": p.fragment.map(|f| json!({"id": f.id, "offset": f.offset, "more": f.more})),
    })
}

/// A flow-log record as `sgsim packets` prints it.
pub fn record_json(r: &Record) -> Value {
    let h = &r.header;
    json!({
        "index": r.index,
        "line": r.line,
        "src": h.src().to_string(),
        "dst": h.dst().to_string(),
        "protocol": h.protocol(),
        "src_port": h.src_port(),
        "dst_port": h.dst_port(),
        "icmp_type": Value::Null,
        "icmp_code": Value::Null,
        "eni": r.eni.as_ref().map(|e| e.to_string()),
        "direction": r.direction.map(|d| d.as_str()),
        "packets": r.packets,
        "bytes": r.bytes,
        "start": r.start,
        "end": r.end,
        "action": r.action.map(|a| if a == sgsim::model::Action::Accept { "ACCEPT" } else { "REJECT" }),
        "tcp_flags": r.tcp_flags,
        "reject_reason": r.reject_reason,
    })
}

pub fn run(args: PacketsArgs) -> anyhow::Result<Exit> {
    let (mut source, len) = open_in(&args.traffic, args.window.options(args.strict)?)?;
    let bar = progress(len);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut n = 0u64;
    let result = loop {
        let Some(item) = source.next() else {
            break Ok(());
        };
        match item {
            Ok(Item::Packet(p)) => writeln!(out, "{}", packet_json(&p))?,
            // Flow-log records carry the log's own text (ENI IDs): no raw DEL or C1.
            Ok(Item::Flow(r)) => writeln!(
                out,
                "{}",
                sgsim::term::json_safe(&record_json(&r).to_string())
            )?,
            Err(e) => break Err(e),
        }
        n += 1;
        if n.is_multiple_of(4096) {
            bar.set_position(source.consumed());
        }
    };
    out.flush()?;
    bar.finish_and_clear();
    print_warnings(&source);
    super::note_read(&args.traffic, &source);
    result.with_context(|| format!("{}", args.traffic.display()))?;
    check_usable(&source, &args.traffic)?;
    Ok(Exit::Ok)
}

/// Reads `source` in chunks of up to `len` items (the next chunk is read while `f` works
/// on the current one), hands each chunk to `f` in input order, and advances the progress
/// bar. Items read before a corrupt record are still handed over; the error (naming
/// `path`) comes after them.
pub fn for_each_chunk(
    source: &mut Source<'_>,
    path: &Path,
    len: usize,
    bar: &ProgressBar,
    mut f: impl FnMut(&[Item]) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let read = sgsim::packet::read_ahead(source, len, |chunk, consumed| {
        f(chunk)?;
        bar.set_position(consumed);
        Ok::<(), anyhow::Error>(())
    })?;
    read.map_err(|e| anyhow::Error::new(e).context(path.display().to_string()))
}
