//! Traffic as clouds deliver it: files and folders (walked recursively), S3 delivery
//! layouts, `.gz`, Parquet, and a time window, read one after another as one input.
//!
//! # Files and folders
//!
//! A folder is walked recursively (names starting with `.` are left out, symbolic links to
//! folders are not followed). Its files are read in time order of their partition (below),
//! then by path, and their items are numbered on from one file to the next, so a day of
//! logs as one file or as 24 hourly files is one input with one connection state. A file
//! found in a folder that is neither a capture nor a flow log is named in
//! [`Files::warnings`] and skipped; a file given by name that is neither is an error.
//!
//! # Partitions
//!
//! Two S3 delivery layouts are recognised from the path:
//!
//! - `AWSLogs/<account>/vpcflowlogs/<region>/YYYY/MM/DD/` (and `…/DD/HH/` with hourly
//!   partitions);
//! - Hive style: `…/year=YYYY/month=MM/day=DD/hour=HH/` (any of the trailing keys may be
//!   absent).
//!
//! With a [`Window`], a partition is left unread when it ends [`DELIVERY_SLACK`] or more
//! before `since`, or starts `DELIVERY_SLACK` or more after `until`: AWS partitions a
//! record by its delivery, after its window (a partition just after `until` can still
//! hold records that started before it), and tables rewritten by start time hold records
//! that end after their partition. Records are then kept when their window `[start, end]` meets
//! `[since, until)`, packets when their timestamp is in it; the others are counted under
//! `outside --since/--until`. A Parquet row group whose statistics place every row outside
//! the window is not read at all ([`super::parquet`]): its rows are counted there too.

use std::collections::VecDeque;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::{parquet, Item, Source, Summary, TrafficError};

/// The reason records and packets outside the window are counted under.
pub const OUTSIDE_WINDOW: &str = "outside --since/--until";

/// How far a record's window may lie outside its partition's span, in seconds (either
/// way: delivery after the window, or a window that ends after a start-time partition).
pub const DELIVERY_SLACK: u64 = 3600;

/// A time window `[since, until)`, in Unix seconds; either end may be open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Window {
    /// Inclusive start.
    pub since: Option<u64>,
    /// Exclusive end.
    pub until: Option<u64>,
}

impl Window {
    /// Whether the window is open at both ends (everything is in it).
    pub fn is_all(&self) -> bool {
        self.since.is_none() && self.until.is_none()
    }

    /// Whether `[start, end]` (seconds) meets the window.
    pub fn meets(&self, start: u64, end: u64) -> bool {
        self.since.is_none_or(|s| end.max(start) >= s) && self.until.is_none_or(|u| start < u)
    }

    /// Whether a partition spanning `[start, end)` may hold records in the window.
    pub fn keeps_partition(&self, start: u64, end: u64) -> bool {
        self.since
            .is_none_or(|s| end.saturating_add(DELIVERY_SLACK) > s)
            && self
                .until
                .is_none_or(|u| start < u.saturating_add(DELIVERY_SLACK))
    }
}

/// Unix seconds of a UTC date and time, checked (years 1970 to 9999).
fn unix(y: i64, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> Option<u64> {
    if !(1970..=9999).contains(&y) {
        return None;
    }
    let [mo, d, h, mi, s] = [mo, d, h, mi, s].map(i64::from);
    u64::try_from(crate::model::time::seconds([y, mo, d], [h, mi, s])?).ok()
}

/// Parses a time as `--since`/`--until` take it: Unix seconds, `YYYY-MM-DD` (midnight
/// UTC), or `YYYY-MM-DDTHH:MM[:SS]` with `Z` or `+00:00` (a space may stand for `T`).
pub fn parse_time(text: &str) -> Result<u64, String> {
    let t = text.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) && t.len() != 8 {
        return t.parse().map_err(|_| format!("'{text}' is out of range"));
    }
    let bad = || {
        format!("'{text}' is not a time: give Unix seconds, YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS]Z")
    };
    let t = t
        .strip_suffix('Z')
        .or_else(|| t.strip_suffix("+00:00"))
        .unwrap_or(t);
    let (date, time) = match t.split_once(['T', ' ']) {
        Some((d, tm)) => (d, Some(tm)),
        None => (t, None),
    };
    let mut d = date.split('-');
    let (Some(y), Some(mo), Some(dd), None) = (d.next(), d.next(), d.next(), d.next()) else {
        return Err(bad());
    };
    let num = |s: &str, len: usize| -> Result<u32, String> {
        if s.len() != len || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        s.parse().map_err(|_| bad())
    };
    let (y, mo, dd) = (num(y, 4)?, num(mo, 2)?, num(dd, 2)?);
    let (h, mi, s) = match time {
        None => (0, 0, 0),
        Some(tm) => {
            let mut p = tm.split(':');
            match (p.next(), p.next(), p.next(), p.next()) {
                (Some(h), Some(mi), None, None) => (num(h, 2)?, num(mi, 2)?, 0),
                (Some(h), Some(mi), Some(s), None) => (num(h, 2)?, num(mi, 2)?, num(s, 2)?),
                _ => return Err(bad()),
            }
        }
    };
    unix(i64::from(y), mo, dd, h, mi, s).ok_or_else(bad)
}

/// The time span `[start, end)` of the partition a path lies in, if its folders follow
/// one of the S3 delivery layouts.
pub fn partition_span(path: &str) -> Option<(u64, u64)> {
    let parts: Vec<&str> = path.split(['/', '\\']).filter(|p| !p.is_empty()).collect();
    let two = |s: &str| (s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit())).then_some(());
    let n = |s: &str| s.parse::<u32>().ok();
    // AWSLogs/<account>/vpcflowlogs/<region>/YYYY/MM/DD[/HH]
    if let Some(at) = parts.iter().position(|p| *p == "vpcflowlogs") {
        let rest = parts.get(at + 2..)?;
        let (y, mo, d) = (rest.first()?, rest.get(1)?, rest.get(2)?);
        if y.len() == 4 && two(mo).is_some() && two(d).is_some() {
            let (y, mo, d) = (i64::from(n(y)?), n(mo)?, n(d)?);
            // The hour folder exists only with hourly partitions (a file name follows DD
            // otherwise, which is never two digits).
            if let Some(h) = rest.get(3).filter(|h| two(h).is_some() && rest.len() > 4) {
                let start = unix(y, mo, d, n(h)?, 0, 0)?;
                return Some((start, start + 3600));
            }
            let start = unix(y, mo, d, 0, 0, 0)?;
            return Some((start, start + 86400));
        }
    }
    // Hive: year=…/month=…/day=…/hour=…
    let key = |k: &str| {
        parts
            .iter()
            .find_map(|p| p.strip_prefix(k)?.strip_prefix('=').and_then(n))
    };
    let y = i64::from(key("year")?);
    match (key("month"), key("day"), key("hour")) {
        (Some(mo), Some(d), Some(h)) => {
            let start = unix(y, mo, d, h, 0, 0)?;
            Some((start, start + 3600))
        }
        (Some(mo), Some(d), None) => {
            let start = unix(y, mo, d, 0, 0, 0)?;
            Some((start, start + 86400))
        }
        (Some(mo), None, _) => {
            let start = unix(y, mo, 1, 0, 0, 0)?;
            let days = crate::model::time::days_in_month(y, mo.into()).unsigned_abs();
            Some((start, start + 86400 * days))
        }
        _ => {
            let start = unix(y, 1, 1, 0, 0, 0)?;
            Some((start, unix(y + 1, 1, 1, 0, 0, 0).unwrap_or(u64::MAX)))
        }
    }
}

/// Where a file's bytes are.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Location {
    /// A local file.
    Path(PathBuf),
    /// An object in S3 (or an S3-compatible store).
    #[cfg(feature = "s3")]
    Object(super::s3::Object),
}

impl Location {
    /// Opens the file as a stream of items, its kind detected from its first bytes (gzip
    /// decompressed as it is read): how a file that is not Parquet is read. A local
    /// Parquet file is refused here (it is read by [`super::parquet`] with random
    /// access); an object is opened whatever it holds.
    pub fn open_stream(&self) -> Result<Source<'static>, TrafficError> {
        match self {
            Location::Path(p) => Source::open(std::fs::File::open(p)?),
            #[cfg(feature = "s3")]
            Location::Object(o) => super::s3::open(o),
        }
    }
}

/// One file of an input.
#[derive(Clone, Debug)]
pub struct Part {
    /// The file as named in messages (its path or `s3://` URL).
    pub name: String,
    /// Where its bytes are.
    pub location: Location,
    /// Its partition's time span, when its path follows a delivery layout.
    pub span: Option<(u64, u64)>,
    /// Its size in bytes.
    pub len: u64,
}

/// How an input is read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Options {
    /// A malformed flow-log line or row is an error, not a counted skip.
    pub strict: bool,
    /// Only records and packets in this window are read.
    pub window: Window,
    /// What decodes Parquet files on disk.
    pub scan: Scan,
}

/// What decodes Parquet flow logs on disk. All hand out the same records in the same
/// order, with the same counts and messages.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Scan {
    /// sgsim's own reader: one row group at a time, on the thread that reads.
    #[default]
    Builtin,
    /// Apache DataFusion's Parquet source: every row group decoded in parallel, handed
    /// out in file order (needs the `fleet` feature).
    DataFusion,
    /// The same scan run by a Ballista cluster (`df://HOST:PORT`; needs the `cluster`
    /// feature): every process reads the same paths.
    Cluster(String),
}

/// Lists the files under `dir` (recursively, in path order).
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), TrafficError> {
    let named = |e: std::io::Error| TrafficError::File {
        file: dir.display().to_string(),
        error: Box::new(TrafficError::Io(e)),
    };
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(named)?
        .collect::<Result<_, _>>()
        .map_err(named)?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        if e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = e.path();
        let kind = e.file_type().map_err(named)?;
        if kind.is_dir() {
            walk(&path, out)?;
        } else if kind.is_file() || (kind.is_symlink() && path.is_file()) {
            out.push(path);
        }
    }
    Ok(())
}

/// Files and folders read one after another as one input.
pub struct Files {
    parts: VecDeque<Part>,
    files: usize,
    pruned: usize,
    /// A single file given by name: problems are errors, not warnings.
    explicit: bool,
    options: Options,
    current: Option<(Part, Source<'static>)>,
    /// Index of the current file's first item.
    base: u64,
    /// Items of finished files, and of the current one as far as it was read.
    next_index: u64,
    summary: Summary,
    warnings: Vec<String>,
    consumed_before: u64,
    kind: Option<&'static str>,
    /// Whether the current file's kind is in `kind` (taken once its first chunk is read:
    /// a flow log's format is known from its first lines, a CSV's from its header).
    kind_noted: bool,
    /// Items of the current file left out by the window (counted decoded by the file's
    /// own summary, skipped in the merged one).
    filtered: u64,
    flow_log: bool,
    /// An error held back while items read before it are handed out.
    held: Option<TrafficError>,
    done: bool,
}

impl Files {
    /// The files of `arg`: a file, a folder (walked), or an `s3://bucket/prefix` URL (with
    /// the `s3` feature), partitions outside the window left out.
    pub fn open(arg: &str, options: Options) -> Result<Files, TrafficError> {
        if let Some(url) = arg.strip_prefix("s3://") {
            #[cfg(feature = "s3")]
            {
                let parts = super::s3::list(url, options.window)?;
                return Ok(Files::new(parts, false, options));
            }
            #[cfg(not(feature = "s3"))]
            {
                let _ = url;
                return Err(TrafficError::File {
                    file: arg.to_string(),
                    error: Box::new(TrafficError::NotTraffic(
                        "s3:// inputs need sgsim built with the `s3` feature".into(),
                    )),
                });
            }
        }
        let path = Path::new(arg);
        let meta = std::fs::metadata(path).map_err(|e| TrafficError::File {
            file: arg.to_string(),
            error: Box::new(TrafficError::Io(e)),
        })?;
        if !meta.is_dir() {
            let part = Part {
                name: arg.to_string(),
                location: Location::Path(path.to_path_buf()),
                span: partition_span(arg),
                len: meta.len(),
            };
            return Ok(Files::new(vec![part], true, options));
        }
        let mut found = Vec::new();
        walk(path, &mut found)?;
        let parts = found
            .into_iter()
            .map(|p| {
                let rel = p
                    .strip_prefix(path)
                    .unwrap_or(&p)
                    .to_string_lossy()
                    .into_owned();
                Part {
                    name: p.display().to_string(),
                    len: std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0),
                    location: Location::Path(p),
                    span: partition_span(&rel),
                }
            })
            .collect();
        Ok(Files::new(parts, false, options))
    }

    /// Reads `parts` (sorted here by partition start, then name), leaving out partitions
    /// outside the window.
    pub fn new(mut parts: Vec<Part>, explicit: bool, options: Options) -> Files {
        let before = parts.len();
        let w = options.window;
        parts.retain(|p| p.span.is_none_or(|(s, e)| w.keeps_partition(s, e)));
        parts.sort_by(|a, b| (a.span.map(|s| s.0), &a.name).cmp(&(b.span.map(|s| s.0), &b.name)));
        Files {
            files: parts.len(),
            pruned: before - parts.len(),
            parts: parts.into(),
            explicit,
            options,
            current: None,
            base: 0,
            next_index: 0,
            summary: Summary::default(),
            warnings: Vec::new(),
            consumed_before: 0,
            kind: None,
            kind_noted: false,
            filtered: 0,
            flow_log: true,
            held: None,
            done: false,
        }
    }

    /// Files to read (after pruning).
    pub fn files(&self) -> usize {
        self.files
    }

    /// The files not read yet, in the order they will be read (all of them before the
    /// first read).
    pub fn parts(&self) -> impl Iterator<Item = &Part> {
        self.parts.iter()
    }

    /// Whether the input named one file (its errors are the input's), not a folder or
    /// prefix (a file in it that is not traffic is left out with a warning).
    pub fn explicit(&self) -> bool {
        self.explicit
    }

    /// Files left unread because their partition lies outside the window.
    pub fn pruned(&self) -> usize {
        self.pruned
    }

    /// Total size of the files to read, in bytes.
    pub fn len(&self) -> u64 {
        self.parts.iter().map(|p| p.len).sum::<u64>() + self.consumed_before
    }

    /// Whether there is no file to read.
    pub fn is_empty(&self) -> bool {
        self.files == 0
    }

    /// Files skipped (not a capture nor a flow log), each named with the reason.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The kind of the files read so far (`mixed` when they differ).
    pub fn kind(&self) -> &'static str {
        self.kind.unwrap_or("none")
    }

    /// Whether every file read so far is a flow log.
    pub fn is_flow_log(&self) -> bool {
        self.flow_log
    }

    /// Bytes of input consumed so far.
    pub fn consumed(&self) -> u64 {
        self.consumed_before + self.current.as_ref().map_or(0, |(_, s)| s.consumed())
    }

    /// The decode summary of the files finished so far (every file once the input is
    /// exhausted); messages are prefixed with their file's name.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    fn open_part(&self, part: &Part) -> Result<Source<'static>, TrafficError> {
        let source = match &part.location {
            Location::Path(p) => {
                let mut file = std::fs::File::open(p)?;
                let mut magic = [0u8; 4];
                let n = read_up_to(&mut file, &mut magic)?;
                if n == 4 && &magic == parquet::MAGIC {
                    match &self.options.scan {
                        Scan::Builtin => Source::Parquet(parquet::open_file(file)?),
                        #[cfg(feature = "fleet")]
                        Scan::DataFusion => Source::Parquet(parquet::Reader::scan(p, self.options.window)?),
                        #[cfg(not(feature = "fleet"))]
                        Scan::DataFusion => {
                            return Err(TrafficError::Flow(super::flowlog::FlowError::File(
                                "scanning Parquet with DataFusion needs sgsim built with the `fleet` feature".into(),
                            )))
                        }
                        #[cfg(feature = "cluster")]
                        Scan::Cluster(url) => Source::Parquet(parquet::Reader::scan_remote(url, p, self.options.window)?),
                        #[cfg(not(feature = "cluster"))]
                        Scan::Cluster(_) => {
                            return Err(TrafficError::Flow(super::flowlog::FlowError::File(
                                "scanning Parquet on a cluster needs sgsim built with the `cluster` feature".into(),
                            )))
                        }
                    }
                } else {
                    let file = std::fs::File::open(p)?;
                    Source::open(file)?
                }
            }
            #[cfg(feature = "s3")]
            Location::Object(o) => super::s3::open(o)?,
        };
        Ok(source
            .strict(self.options.strict)
            .window(self.options.window))
    }

    /// Adds the current file's kind to the input's (`mixed` when they differ), once.
    fn note_kind(&mut self) {
        let Some((_, source)) = &self.current else {
            return;
        };
        if self.kind_noted {
            return;
        }
        let kind = source.kind();
        self.kind_noted = true;
        self.kind = Some(match self.kind {
            None => kind,
            Some(k) if k == kind => k,
            Some(_) => "mixed",
        });
    }

    /// Ends the current file: its summary is merged (the items the window left out
    /// counted as skipped, not decoded) and numbering goes on after it.
    fn finish(&mut self) {
        self.note_kind();
        let filtered = std::mem::take(&mut self.filtered);
        if let Some((part, source)) = self.current.take() {
            self.summary.merge(source.summary(), &part.name);
            if filtered > 0 {
                self.summary.decoded = self.summary.decoded.saturating_sub(filtered);
                *self
                    .summary
                    .skipped
                    .entry(OUTSIDE_WINDOW.to_string())
                    .or_default() += filtered;
            }
            self.consumed_before += part.len;
            self.base = self.next_index.max(self.base + source.summary().records);
            self.next_index = self.base;
        }
    }

    /// The error of one file, naming it unless it was the one file given by name.
    fn named(&self, part: &Part, e: TrafficError) -> TrafficError {
        if self.explicit {
            return e;
        }
        TrafficError::File {
            file: part.name.clone(),
            error: Box::new(e),
        }
    }

    /// A file that turned out not to be traffic: a warning, or (given by name) the error.
    fn not_traffic(&mut self, part: &Part, e: TrafficError) -> Result<(), TrafficError> {
        if self.explicit || !e.is_not_traffic() {
            return Err(self.named(part, e));
        }
        self.warnings.push(format!("{}: skipped, {e}", part.name));
        Ok(())
    }

    /// Reads up to `max` items into `out`, as [`Source::read_chunk`].
    pub fn read_chunk(&mut self, max: usize, out: &mut Vec<Item>) -> Result<bool, TrafficError> {
        let start = out.len();
        while out.len() - start < max {
            if let Some(e) = self.held.take() {
                self.done = true;
                return Err(e);
            }
            if self.done {
                return Ok(false);
            }
            if self.current.is_none() {
                let Some(part) = self.parts.pop_front() else {
                    self.done = true;
                    return Ok(false);
                };
                match self.open_part(&part) {
                    Ok(source) => {
                        self.flow_log &= source.is_flow_log();
                        self.kind_noted = false;
                        self.filtered = 0;
                        self.current = Some((part, source));
                    }
                    Err(e) => {
                        self.consumed_before += part.len;
                        self.not_traffic(&part, e)?;
                        continue;
                    }
                }
            }
            let Some((part, source)) = self.current.as_mut() else {
                continue;
            };
            let want = max - (out.len() - start);
            // Read straight into `out`, then numbered (and kept or not) where they lie.
            let from = out.len();
            let read = source.read_chunk(want, out);
            let window = self.options.window;
            let mut kept = from;
            for i in from..out.len() {
                let item = &mut out[i];
                let index = self.base + item.index();
                self.next_index = index + 1;
                let keep = window.is_all()
                    || match &*item {
                        Item::Flow(r) => window.meets(r.start, r.end),
                        Item::Packet(p) => {
                            let s = p.ts_ns / 1_000_000_000;
                            window.meets(s, s)
                        }
                    };
                if !keep {
                    // Counted when the file is finished, with its summary.
                    self.filtered += 1;
                    continue;
                }
                match item {
                    Item::Flow(r) => r.index = index,
                    Item::Packet(p) => p.index = index,
                }
                out.swap(kept, i);
                kept += 1;
            }
            out.truncate(kept);
            match read {
                Ok(true) => self.note_kind(),
                Ok(false) => self.finish(),
                Err(e) => {
                    let part = part.clone();
                    if e.is_not_traffic() && !self.explicit {
                        // Not traffic (given up before any record): nothing of it counts.
                        self.current = None;
                        self.filtered = 0;
                        self.consumed_before += part.len;
                        self.not_traffic(&part, e)?;
                        continue;
                    }
                    self.finish();
                    let e = self.named(&part, e);
                    if out.len() > start {
                        self.held = Some(e);
                        return Ok(true);
                    }
                    self.done = true;
                    return Err(e);
                }
            }
        }
        Ok(true)
    }
}

impl Iterator for Files {
    type Item = Result<Item, TrafficError>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut one = Vec::with_capacity(1);
        match self.read_chunk(1, &mut one) {
            Ok(_) => one.pop().map(Ok),
            Err(e) => Some(Err(e)),
        }
    }
}

/// Reads into `buf` until it is full or the input ends; returns the bytes read.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_in_every_accepted_form() {
        assert_eq!(parse_time("1718000000"), Ok(1718000000));
        assert_eq!(parse_time("1970-01-01"), Ok(0));
        assert_eq!(parse_time("2024-06-10T06:13:20Z"), Ok(1718000000));
        assert_eq!(parse_time("2024-06-10 06:13:20+00:00"), Ok(1718000000));
        assert_eq!(parse_time("2024-06-10T06:13Z"), Ok(1717999980));
        assert_eq!(parse_time("2024-02-29"), Ok(1709164800));
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "yesterday",
            "2024-06-10T25:00Z",
            "",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn s3_layouts_give_partition_spans() {
        let day = parse_time("2026-12-06").unwrap();
        assert_eq!(
            partition_span("AWSLogs/123456789012/vpcflowlogs/us-east-1/2026/12/06/123456789012_vpcflowlogs_us-east-1_fl-1_20261206T0005Z_ab.log.gz"),
            Some((day, day + 86400))
        );
        assert_eq!(
            partition_span("x/AWSLogs/1/vpcflowlogs/eu-west-1/2026/12/06/05/f.log.gz"),
            Some((day + 5 * 3600, day + 6 * 3600))
        );
        assert_eq!(
            partition_span("AWSLogs/aws-account-id=1/aws-service=vpcflowlogs/aws-region=us-east-1/year=2026/month=12/day=06/hour=23/f.parquet"),
            Some((day + 23 * 3600, day + 86400))
        );
        assert_eq!(
            partition_span("year=2026/month=12/day=06/f.parquet"),
            Some((day, day + 86400))
        );
        assert_eq!(partition_span("logs/flows.log"), None);
        assert_eq!(partition_span("year=2026/month=13/f"), None);
    }

    #[test]
    fn windows_prune_partitions_with_delivery_slack() {
        let w = Window {
            since: Some(10_000),
            until: Some(20_000),
        };
        assert!(!w.keeps_partition(0, 10_000 - DELIVERY_SLACK));
        assert!(w.keeps_partition(0, 10_001 - DELIVERY_SLACK));
        assert!(w.keeps_partition(20_000, 23_600));
        assert!(!w.keeps_partition(20_000 + DELIVERY_SLACK, 30_000));
        assert!(w.meets(9_000, 10_000));
        assert!(!w.meets(9_000, 9_999));
        assert!(!w.meets(20_000, 20_060));
    }
}
