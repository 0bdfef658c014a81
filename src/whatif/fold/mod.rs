//! The connection what-if as one DataFusion plan (feature `fleet`): the scan, the judging
//! and the connection fold are the plan's, so they run on every core, or on the executors
//! of a Ballista cluster (feature `cluster`), and the client merges one small total per
//! bucket of connections.
//!
//! # The plan
//!
//! For one input (a `--traffic` argument: its files in the streaming reader's order),
//! with `fN` the N-th file:
//!
//! ```sql
//! SELECT sgsim_fold(a0, …, aK, __sgsim_file, __sgsim_row, …) FROM (
//!     SELECT <the flow-log columns of f0>, __sgsim_file, __sgsim_row, … FROM f0
//!     UNION ALL …
//! ) GROUP BY sgsim_bucket(srcaddr, dstaddr, pkt_srcaddr, pkt_dstaddr)
//! ```
//!
//! - Each file is a table whose rows carry their place (the file's ordinal and the row's
//!   place in it): the order the streaming reader gives records in.
//!   - A Parquet file (`numbered.rs`): DataFusion's scan, numbered by an operator over it;
//!     the fold reads each row's flow-log columns.
//!   - A text flow log, plain or gzip (`text.rs`): DataFusion's file scan over a source
//!     of sgsim's own that reads the file with sgsim's reader, giving each record
//!     (already read, the `--since/--until` window applied) and, last, the file's summary.
//!     Text cannot be cut, so a file is one task. Both are file scans a Ballista
//!     scheduler knows how to share out among a stage's tasks.
//! - `sgsim_bucket` hashes a record's two addresses, in either order (the ones the record
//!   is read with: `pkt-*` when present): every record of a connection falls in one
//!   bucket, whichever way it goes, whatever ENI logged it. An input has 8 buckets per
//!   final partition, or one per [`BUCKET_RECORDS`] of its rows when that is more.
//! - `sgsim_fold`, an aggregate, reads each row as the streaming reader does
//!   ([`crate::packet::parquet::each_row`]: the same records, skips by reason, warnings and
//!   the `--since/--until` window). Its partial state is the bucket's records as bytes
//!   (the plan's partial aggregation runs where the scan ran; the records then travel to
//!   the task that owns the bucket); its final value sorts them by (file, row), folds them
//!   through a [`Run`] exactly as the streaming what-if does, and gives the bucket's
//!   [`Tally`] with its rows' [`Summary`], as bytes.
//! - The client merges the buckets' tallies ([`Run::absorb`]) and writes the report as
//!   the streaming path does: the same report, field for field (the tests compare them).
//!
//! The functions carry their state (both worlds, the what-if settings, the revoke instant
//! and the window) in the plan, through the cluster's codecs ([`encode_udaf`],
//! [`encode_udf`]): executors need nothing but sgsim.
//!
//! # What differs from the streaming path
//!
//! - Memory: a bucket's records are held (about 50 bytes each, as bytes) until its fold,
//!   spread over the tasks that own the buckets, where the streaming path's memory follows
//!   the live connections. Two bounds keep it from growing with the input:
//!   - **Passes.** An input of more than [`PASS_RECORDS`] records (its files' footers
//!     count its rows; a text file is estimated from its size) is folded in several
//!     passes over its files: pass `k` of `P` folds the buckets equal to `k` modulo `P`
//!     (`WHERE sgsim_bucket(…) % P = k`), and the client merges every pass's tallies as
//!     one. Every row falls in one bucket, so in one pass: the counts, the summaries of
//!     text files and the examples are the one-pass plan's, and so is the report unless
//!     connections are evicted (the bound applies per bucket, and passes make more,
//!     smaller buckets). The plan holds one pass's records at once, and reads the files
//!     once a pass; at most [`MAX_PASSES`] are made.
//!   - **Buckets.** Within a pass, an input is cut into more buckets as it grows, so that
//!     a bucket holds about [`BUCKET_RECORDS`] records at most, and a fold holds that
//!     bucket's bytes, a 24-byte index of them and one chunk of judged records (not every
//!     record of the bucket decoded at once). The client merges each bucket's tally as it
//!     arrives.
//!
//!   DataFusion's memory pool cannot bound a pass: a partial state is one value per
//!   bucket and file, and the repartition gathers a partition's into one batch before
//!   the final aggregation sees it (measured: a 256 MiB pool refuses a 162 MB batch of
//!   the 5 M-record day). Passes trade reading the files again for memory; an external
//!   sort by bucket and place, folded as it streams, would bound it in one read, but
//!   DataFusion's planner splits an ordered aggregate in two (see the README).
//! - The live-connection bound ([`super::traffic::Config::max_connections`]) applies per
//!   bucket, and idle connections are swept on each bucket's clock: the answers are the
//!   streaming path's unless the streaming path finished connections early to keep within
//!   its bound (`connections.evicted`), or a log's records are out of time order by more
//!   than the slack both paths sweep flow-log connections with (15 minutes past their idle
//!   timeout).
//! - `--since/--until` prune files by their partition, and Parquet row groups by their
//!   statistics as the streaming reader does ([`crate::packet::parquet`]): the scan
//!   leaves those groups out, the numbering operator numbers around them, and the client
//!   counts their rows.
//!
//! # Files
//!
//! - `mod.rs`: the aggregate (a [`GroupsAccumulator`] over every bucket of a partition, so
//!   a batch's rows are read once), the bucket function, their codecs, and [`Folding`],
//!   the session that runs the plan and merges its totals.
//! - `numbered.rs`: a Parquet file as a table whose rows carry their place, and its codecs.
//! - `text.rs`: a text flow log as a table read by sgsim's reader, and its codecs.

use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use arrow_array::cast::AsArray;
use arrow_array::types::UInt64Type;
use arrow_array::{Array, ArrayRef, BooleanArray, LargeBinaryArray, RecordBatch, UInt64Array};
use arrow_schema::{DataType, Field, Schema};
use datafusion::common::{Result as DfResult, ScalarValue};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::function::AccumulatorArgs;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, ColumnarValue, EmitTo, GroupsAccumulator,
    ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::{SessionConfig, SessionContext};

use super::traffic::{
    read_record, write_record, Config, Judge, Run, Tally, WireReader, WireWriter,
};
use crate::model::State;
use crate::packet::flowlog::{self, Outcome};
use crate::packet::input::{Location, Window, OUTSIDE_WINDOW};
use crate::packet::{parquet, Item, Summary, MAX_EXAMPLES};

mod numbered;
mod text;
use numbered::{NumberedFile, Unread, FILE, ROW};
use text::{TextFile, RECORD, SUMMARY};

/// The aggregate's name.
pub const FOLD: &str = "sgsim_fold";
/// The bucket function's name.
pub const BUCKET: &str = "sgsim_bucket";
/// Buckets of connections per partition of the plan's final aggregation: a few, so that
/// hashing them to partitions evens out, and not many more (each bucket's totals carry a
/// timeline of every second its records cover, merged by the client).
pub const BUCKETS_PER_PARTITION: u64 = 8;
/// Records a bucket holds, about, at most: an input of more records is folded in more
/// buckets. A bucket's records are held together for its fold (about 50 bytes each as
/// bytes, 24 more while they are put in order), so this bounds what one fold holds, however
/// large the input.
pub const BUCKET_RECORDS: u64 = 1 << 20;
/// Buckets of one input, at most, unless its passes and partitions ask for more (a few
/// per partition in each pass): each gives the client a tally with a timeline of the
/// seconds its records cover.
const MAX_BUCKETS: u64 = 4096;
/// Passes over one input's files, at most: past `MAX_PASSES` times `--pass-records`
/// records, a pass holds more (each pass reads every file, so more passes would cost
/// more than the memory they save).
pub const MAX_PASSES: u64 = 256;
/// Records one pass of the plan folds, about, at most: an input of more records is
/// folded in several passes over its files, each folding its share of the buckets, so
/// that what the plan holds at once does not grow with the input (measured on two
/// cores: a peak of about 1.4 GB in passes of about 2^23 records, 450-590 MB in passes
/// of 2 M, whether the input is 5 M or 20 M records).
pub const PASS_RECORDS: u64 = 1 << 23;
/// Partitions of the final aggregation on a cluster, at least.
#[cfg(feature = "cluster")]
const REMOTE_PARTITIONS: usize = 16;
/// Records a bucket's run is fed at a time (the streaming path's chunk).
const CHUNK: usize = 65536;
/// The skip reason of a malformed row, as the streaming reader counts it.
const MALFORMED: &str = "malformed flow-log row";
/// The skip reason of a row the readers cannot read, as the streaming reader counts it.
const UNREADABLE: &str = "unreadable Parquet row group";

/// What went wrong running the plan.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A state does not compile.
    #[error("cannot compile the states: {0}")]
    Compile(String),
    /// DataFusion (or the cluster) refused the files or the plan.
    #[error("{0}")]
    Plan(String),
}

/// The flow-log fields the fold reads, by their `-` names, in argument order.
fn fields() -> impl Iterator<Item = flowlog::Field> {
    flowlog::Field::ALL.into_iter()
}

/// The two worlds and the what-if settings, compiled once per process and shared by every
/// fold of a plan.
struct Shared {
    judge: Judge,
    /// What a plan carries of it (see [`encode_udaf`]).
    wire: Vec<u8>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Shared({} bytes)", self.wire.len())
    }
}

/// `config`'s fields a fold uses, then both states, as a plan carries them.
fn shared_wire(before: &State, after: &State, config: &Config) -> Result<Vec<u8>, String> {
    let mut w = WireWriter(Vec::new());
    w.u(config.top as u64);
    w.u(u64::from(config.assume_survive));
    w.u(config.max_connections as u64);
    for state in [before, after] {
        let json = serde_json::to_string(state).map_err(|e| e.to_string())?;
        w.s(&json);
    }
    Ok(w.0)
}

/// Rebuilds [`Shared`] from its bytes; a state seen before is not compiled again.
fn shared_from(wire: &[u8]) -> Result<Arc<Shared>, String> {
    static KNOWN: Mutex<Vec<Arc<Shared>>> = Mutex::new(Vec::new());
    const KEEP: usize = 4;
    {
        let known = KNOWN.lock().map_err(|_| "the state cache is poisoned")?;
        if let Some(s) = known.iter().find(|s| s.wire == wire) {
            return Ok(s.clone());
        }
    }
    let mut r = WireReader {
        b: wire,
        at: "what-if settings",
    };
    let bad = |e: super::traffic::WireError| e.to_string();
    let top = r.u().map_err(bad)? as usize;
    let assume_survive = r.u().map_err(bad)? != 0;
    let max_connections = r.u().map_err(bad)? as usize;
    r.at = "states";
    let mut states = Vec::with_capacity(2);
    for _ in 0..2 {
        let json = r.s().map_err(bad)?;
        let state: State = serde_json::from_str(&json)
            .map_err(|e| format!("the plan's state does not read: {e}"))?;
        states.push(state);
    }
    if !r.b.is_empty() {
        return Err("the plan's what-if settings have bytes past their end".into());
    }
    let config = Config::default()
        .with_top(top)
        .with_assume_survive(assume_survive)
        .with_max_connections(max_connections)
        .with_partitions(1);
    let judge = Judge::new(&states[0], &states[1], config).map_err(|e| e.to_string())?;
    let shared = Arc::new(Shared {
        judge,
        wire: wire.to_vec(),
    });
    let mut known = KNOWN.lock().map_err(|_| "the state cache is poisoned")?;
    if known.len() >= KEEP {
        known.remove(0);
    }
    known.push(shared.clone());
    Ok(shared)
}

/// The aggregate: one input's records of a bucket, folded into its tally.
#[derive(Debug, Clone)]
struct Fold {
    shared: Arc<Shared>,
    /// The revoke instant, ns since the epoch.
    at: u64,
    window: Window,
    /// A malformed row stops the plan (`--strict`).
    strict: bool,
    signature: Signature,
}

impl PartialEq for Fold {
    fn eq(&self, o: &Self) -> bool {
        Arc::ptr_eq(&self.shared, &o.shared)
            && (self.at, self.window.since, self.window.until, self.strict)
                == (o.at, o.window.since, o.window.until, o.strict)
    }
}

impl Eq for Fold {}

impl Hash for Fold {
    fn hash<H: Hasher>(&self, h: &mut H) {
        Arc::as_ptr(&self.shared).hash(h);
        (self.at, self.window.since, self.window.until, self.strict).hash(h);
    }
}

/// The fold's arguments: every flow-log field, the place (file, row), why a Parquet file's
/// rows cannot be read, and a text flow log's record and summary.
fn fold_signature() -> Signature {
    Signature::any(fields().count() + 5, Volatility::Immutable)
}

/// The column of a file's rows that cannot be read, and why (null: they can).
const BAD: &str = "__sgsim_unreadable";

/// Whether the row readers read a column of type `t` (text or an integer).
fn readable(t: &DataType) -> bool {
    match t {
        DataType::Dictionary(_, v) => readable(v),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null => true,
        t => t.is_integer(),
    }
}

impl AggregateUDFImpl for Fold {
    fn name(&self) -> &str {
        FOLD
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        // Large: a partial state holds a whole file's records of a bucket, past 2 GiB for
        // a file of some 30 M rows.
        Ok(DataType::LargeBinary)
    }

    fn accumulator(&self, _: AccumulatorArgs) -> DfResult<Box<dyn Accumulator>> {
        Ok(Box::new(Bucket::new(self)))
    }

    fn groups_accumulator_supported(&self, _: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(
        &self,
        _: AccumulatorArgs,
    ) -> DfResult<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(Buckets {
            fold: self.clone(),
            groups: Vec::new(),
        }))
    }
}

/// One bucket's records while they are gathered: each as (file, row, record) bytes.
#[derive(Debug)]
struct Bucket {
    shared: Arc<Shared>,
    at: u64,
    window: Window,
    strict: bool,
    rows: Vec<u8>,
    /// Its rows' counts; examples are kept apart, with their place, to be ordered.
    summary: Summary,
    examples: Vec<(u64, u64, String)>,
}

/// A summary's counts (records, decoded, skips and warnings by reason), as bytes.
fn write_counts(w: &mut WireWriter, s: &Summary) {
    w.u(s.records);
    w.u(s.decoded);
    for map in [&s.skipped, &s.warnings] {
        w.u(map.len() as u64);
        for (k, n) in map {
            w.s(k);
            w.u(*n);
        }
    }
}

/// Adds the counts [`write_counts`] wrote to `s` (saturating).
fn read_counts(r: &mut WireReader<'_>, s: &mut Summary) -> Result<(), super::traffic::WireError> {
    s.records = s.records.saturating_add(r.u()?);
    s.decoded = s.decoded.saturating_add(r.u()?);
    for i in 0..2 {
        let n = r.count(2)?;
        for _ in 0..n {
            let k = r.s()?;
            let v = r.u()?;
            let map = if i == 0 {
                &mut s.skipped
            } else {
                &mut s.warnings
            };
            let e = map.entry(k).or_default();
            *e = e.saturating_add(v);
        }
    }
    Ok(())
}

/// An example's kind, the first character of its text until the client names the row
/// group (the place of a Parquet row in the streaming reader's words): a warning, a
/// malformed row (in the order the streaming reader raises them on one row), a text flow
/// log's example (its own words). Any other text is shown as `row N: text`.
const WARNING: char = '\u{1}';
const MALFORMED_ROW: char = '\u{2}';
const AS_IS: char = '\u{3}';

/// An example of the plan's in the streaming reader's words: `groups`, the rows of each
/// row group of the example's file (empty when not known).
fn example_text(row: u64, message: &str, groups: &[u64]) -> String {
    // The row group (0-based) of a 1-based row.
    let mut start = 0u64;
    let group = groups.iter().position(|&n| {
        start += n;
        row <= start
    });
    let mut chars = message.chars();
    match (chars.next(), group) {
        (Some(WARNING), Some(g)) => format!("row group {g}, row {row}: {}", chars.as_str()),
        (Some(MALFORMED_ROW), Some(g)) => format!("row {row}: row group {g}: {}", chars.as_str()),
        (Some(WARNING | MALFORMED_ROW), None) => format!("row {row}: {}", chars.as_str()),
        (Some(AS_IS), _) => chars.as_str().to_string(),
        _ => format!("row {row}: {message}"),
    }
}

/// What the final value and the partial state start with.
const MAGIC: &[u8] = b"sgsim-fold/2\n";

/// How many buckets an input of `rows` records is folded in, over `partitions` final
/// partitions: a few per partition, and more once a bucket would hold more than `per`
/// records ([`BUCKET_RECORDS`] unless set), up to [`MAX_BUCKETS`].
pub(crate) fn buckets_for(rows: u64, partitions: u64, per: u64) -> u64 {
    let floor = partitions.max(1).saturating_mul(BUCKETS_PER_PARTITION);
    rows.div_ceil(per.max(1))
        .clamp(floor, MAX_BUCKETS.max(floor))
}

/// A text flow log's records, roughly, from its size: lines of about 12 bytes gzip'd,
/// 100 plain (AWS's default format runs 100 to 120 bytes a line); an estimate on the
/// side of more buckets and passes.
fn text_rows(location: &Location) -> u64 {
    let (len, gzip) = match location {
        Location::Path(p) => {
            let mut head = [0u8; 2];
            let gzip = std::fs::File::open(p)
                .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
                .is_ok_and(|()| head == [0x1f, 0x8b]);
            (std::fs::metadata(p).map_or(0, |m| m.len()), gzip)
        }
        #[cfg(feature = "s3")]
        Location::Object(o) => (o.size(), o.url().ends_with(".gz")),
    };
    len / if gzip { 12 } else { 100 }
}

/// How many passes an input of `rows` records is folded in, each of about `per` records
/// at most ([`PASS_RECORDS`] unless set): at least one, at most [`MAX_PASSES`].
pub(crate) fn passes_for(rows: u64, per: u64) -> u64 {
    rows.div_ceil(per.max(1)).clamp(1, MAX_PASSES)
}

fn plan_error(why: impl std::fmt::Display) -> DataFusionError {
    DataFusionError::Execution(format!("{FOLD}: {why}"))
}

impl Bucket {
    fn example(&mut self, file: u64, row: u64, message: String) {
        // The first few by place: at most MAX_EXAMPLES are ever needed.
        self.examples.push((file, row, message));
        if self.examples.len() > 2 * MAX_EXAMPLES {
            self.examples.sort();
            self.examples.truncate(MAX_EXAMPLES);
        }
    }

    /// The summary and examples, as bytes.
    fn write_summary(&mut self, w: &mut WireWriter) {
        write_counts(w, &self.summary);
        self.examples.sort();
        self.examples.truncate(MAX_EXAMPLES);
        w.u(self.examples.len() as u64);
        for (file, row, message) in &self.examples {
            w.u(*file);
            w.u(*row);
            w.s(message);
        }
    }

    fn read_summary(&mut self, r: &mut WireReader<'_>) -> Result<(), String> {
        let bad = |e: super::traffic::WireError| e.to_string();
        r.at = "summary";
        read_counts(r, &mut self.summary).map_err(bad)?;
        let n = r.count(3).map_err(bad)?;
        for _ in 0..n {
            let (file, row) = (r.u().map_err(bad)?, r.u().map_err(bad)?);
            let message = r.s().map_err(bad)?;
            self.example(file, row, message);
        }
        Ok(())
    }
}

/// The rows of a batch of the fold's arguments, read as the streaming reader reads them:
/// each row's (file, row) and outcome, and the warnings by row.
struct Rows {
    places: Vec<(u64, u64)>,
    outcomes: Vec<Outcome>,
    warnings: Vec<(usize, &'static str)>,
    /// The batch could not be read at all, and why: every row is counted unreadable.
    unreadable: Option<String>,
    /// The batch is a text flow log's, read by its scan: each row a record (in the fold's
    /// encoding) or the file's summary.
    text: Option<(arrow_array::BinaryArray, arrow_array::BinaryArray)>,
}

/// What one row of a batch gives its bucket.
enum Given<'a> {
    /// A text flow log's row: its record (in the fold's encoding) or its file's summary.
    Text(Option<&'a [u8]>, Option<&'a [u8]>),
    /// A row of a file whose columns cannot be read, and why.
    Unreadable(&'a str),
    /// A warning raised reading the row (before its outcome).
    Warning(&'static str),
    /// What reading the row gave.
    Outcome(Outcome),
}

impl Rows {
    /// Hands `give` what each row gives, row by row: (row in the batch, place, given).
    fn each(
        self,
        mut give: impl FnMut(usize, (u64, u64), Given<'_>) -> DfResult<()>,
    ) -> DfResult<()> {
        let Rows {
            places,
            outcomes,
            warnings,
            unreadable,
            text,
        } = self;
        if let Some((records, summaries)) = &text {
            fn value(a: &arrow_array::BinaryArray, i: usize) -> Option<&[u8]> {
                (!a.is_null(i)).then(|| a.value(i))
            }
            for (i, &place) in places.iter().enumerate() {
                give(
                    i,
                    place,
                    Given::Text(value(records, i), value(summaries, i)),
                )?;
            }
            return Ok(());
        }
        if let Some(why) = &unreadable {
            for (i, &place) in places.iter().enumerate() {
                give(i, place, Given::Unreadable(why))?;
            }
            return Ok(());
        }
        let mut warnings = warnings.into_iter().peekable();
        for (i, (place, outcome)) in places.into_iter().zip(outcomes).enumerate() {
            while let Some((_, w)) = warnings.next_if(|(j, _)| *j <= i) {
                give(i, place, Given::Warning(w))?;
            }
            give(i, place, Given::Outcome(outcome))?;
        }
        Ok(())
    }
}

fn read_rows(values: &[ArrayRef]) -> DfResult<Rows> {
    let n = fields().count();
    if values.len() != n + 5 {
        return Err(plan_error(format!(
            "{} arguments, {} expected",
            values.len(),
            n + 5
        )));
    }
    let numbers = |a: &ArrayRef| -> DfResult<UInt64Array> {
        let c = datafusion::arrow::compute::cast(a, &DataType::UInt64)?;
        Ok(c.as_primitive::<UInt64Type>().clone())
    };
    let (files, rows) = (numbers(&values[n])?, numbers(&values[n + 1])?);
    let schema = Schema::new(
        fields()
            .zip(values)
            .map(|(f, a)| Field::new(f.name(), a.data_type().clone(), true))
            .collect::<Vec<_>>(),
    );
    let batch = RecordBatch::try_new(Arc::new(schema), values[..n].to_vec())?;
    let mut out = Rows {
        places: (0..batch.num_rows())
            .map(|i| (files.value(i), rows.value(i)))
            .collect(),
        outcomes: Vec::with_capacity(batch.num_rows()),
        warnings: Vec::new(),
        unreadable: None,
        text: None,
    };
    // A text flow log's rows (a batch holds one file's rows): read by its scan.
    let binary = |a: &ArrayRef| -> DfResult<arrow_array::BinaryArray> {
        let c = datafusion::arrow::compute::cast(a, &DataType::Binary)?;
        Ok(c.as_binary::<i32>().clone())
    };
    let (records, summaries) = (binary(&values[n + 3])?, binary(&values[n + 4])?);
    if records.null_count() < records.len() || summaries.null_count() < summaries.len() {
        if (0..records.len()).any(|i| records.is_null(i) && summaries.is_null(i)) {
            return Err(plan_error(
                "a batch mixing a text flow log's rows with others",
            ));
        }
        out.text = Some((records, summaries));
        return Ok(out);
    }
    // The rows of a file whose columns cannot be read (a batch holds one file's rows).
    let bad = datafusion::arrow::compute::cast(&values[n + 2], &DataType::Utf8)?;
    let bad = bad.as_string::<i32>();
    if let Some(i) = (0..bad.len()).find(|&i| !bad.is_null(i)) {
        out.unreadable = Some(bad.value(i).to_string());
        return Ok(out);
    }
    if let Err(why) = parquet::each_row(
        &batch,
        |i| rows.value(i),
        |_, o| out.outcomes.push(o),
        |i, w| out.warnings.push((i, w)),
    ) {
        // A column of a type the readers cannot read (a float, a decimal): its rows are
        // unreadable, counted as the streaming reader counts a row group it cannot read.
        out.outcomes.clear();
        out.warnings.clear();
        out.unreadable = Some(why);
    }
    Ok(out)
}

impl Bucket {
    fn new(fold: &Fold) -> Bucket {
        Bucket {
            shared: fold.shared.clone(),
            at: fold.at,
            window: fold.window,
            strict: fold.strict,
            rows: Vec::new(),
            summary: Summary::default(),
            examples: Vec::new(),
        }
    }

    /// Keeps a record a text flow log's scan read (counted in its file's summary).
    fn add_read(&mut self, (file, row): (u64, u64), record: &[u8]) {
        let mut w = WireWriter(std::mem::take(&mut self.rows));
        w.u(file);
        w.u(row);
        w.u(record.len() as u64);
        w.0.extend_from_slice(record);
        self.rows = w.0;
    }

    /// Adds a text flow log's summary (its examples kept in its order, by place).
    fn add_summary(&mut self, file: u64, bytes: &[u8]) -> DfResult<()> {
        let s = text::summary_from(bytes).map_err(plan_error)?;
        let add = |a: &mut u64, b: u64| *a = a.saturating_add(b);
        add(&mut self.summary.records, s.records);
        add(&mut self.summary.decoded, s.decoded);
        for (k, v) in s.skipped {
            add(self.summary.skipped.entry(k).or_default(), v);
        }
        for (k, v) in s.warnings {
            add(self.summary.warnings.entry(k).or_default(), v);
        }
        for (k, e) in s.examples.into_iter().enumerate() {
            self.example(file, k as u64, format!("{AS_IS}{e}"));
        }
        Ok(())
    }

    /// Takes what a row gives (see [`Rows::each`]).
    fn take(&mut self, place: (u64, u64), given: Given<'_>) -> DfResult<()> {
        match given {
            Given::Text(record, summary) => {
                if let Some(record) = record {
                    self.add_read(place, record);
                }
                match summary {
                    Some(summary) => self.add_summary(place.0, summary),
                    None => Ok(()),
                }
            }
            Given::Unreadable(why) => self.unreadable(place, why),
            Given::Warning(w) => {
                self.warn(place, w);
                Ok(())
            }
            Given::Outcome(outcome) => self.add(place, outcome),
        }
    }

    fn warn(&mut self, (file, row): (u64, u64), w: &'static str) {
        *self.summary.warnings.entry(w.to_string()).or_default() += 1;
        self.example(file, row, format!("{WARNING}{w}"));
    }

    /// Counts a row that could not be read at all (`why`).
    fn unreadable(&mut self, (_, row): (u64, u64), why: &str) -> DfResult<()> {
        self.summary.records += 1;
        self.summary.skip(&UNREADABLE);
        // Its example is the client's: one per row group, as the streaming reader names
        // them (see [`Folding::input`]).
        if self.strict {
            return Err(plan_error(format!("row {row}: {why}")));
        }
        Ok(())
    }

    /// Counts one row and keeps its record; `Err`: a malformed row under `--strict`.
    fn add(&mut self, (file, row): (u64, u64), outcome: Outcome) -> DfResult<()> {
        self.summary.records += 1;
        match outcome {
            Outcome::Record(r) => {
                if !self.window.is_all() && !self.window.meets(r.start, r.end) {
                    self.summary.skip(&OUTSIDE_WINDOW);
                    return Ok(());
                }
                self.summary.decoded += 1;
                // (file, row, the record's length, the record): the fold orders places
                // and reads each record where it lies.
                let mut record = WireWriter(Vec::new());
                write_record(&mut record, &r);
                let mut w = WireWriter(std::mem::take(&mut self.rows));
                w.u(file);
                w.u(row);
                w.u(record.0.len() as u64);
                w.0.extend_from_slice(&record.0);
                self.rows = w.0;
            }
            Outcome::Skip(why) => self.summary.skip(&why),
            Outcome::Malformed(why) => {
                self.summary.skip(&MALFORMED);
                self.example(file, row, format!("{MALFORMED_ROW}{why}"));
                if self.strict {
                    return Err(plan_error(format!("row {row}: {why}")));
                }
            }
        }
        Ok(())
    }

    /// The partial state: the summary and the records, as bytes.
    fn state_bytes(&mut self) -> Vec<u8> {
        let mut w = WireWriter(MAGIC.to_vec());
        self.write_summary(&mut w);
        w.u(self.rows.len() as u64);
        w.0.extend_from_slice(&self.rows);
        self.rows = Vec::new();
        w.0
    }

    /// Adds a partial state's summary and records.
    fn merge_bytes(&mut self, bytes: &[u8]) -> DfResult<()> {
        let bytes = bytes
            .strip_prefix(MAGIC)
            .ok_or_else(|| plan_error("a partial state that is not a fold's"))?;
        let mut r = WireReader {
            b: bytes,
            at: "summary",
        };
        self.read_summary(&mut r).map_err(plan_error)?;
        r.at = "records";
        let n = r.count(1).map_err(plan_error)?;
        if r.b.len() != n {
            return Err(plan_error("a partial state's records are damaged"));
        }
        self.rows.extend_from_slice(r.b);
        Ok(())
    }

    /// The final value: the records folded in the streaming reader's order, as the
    /// summary and the bucket's [`Tally`], in bytes.
    /// Each record's place (file, row) and where its bytes lie (start, length), in the
    /// streaming reader's order: files in order, rows in order.
    fn places(&self) -> DfResult<Vec<(u64, u64, usize, usize)>> {
        let mut places: Vec<(u64, u64, usize, usize)> = Vec::new();
        let mut r = WireReader {
            b: &self.rows,
            at: "records",
        };
        while !r.b.is_empty() {
            let file = r.u().map_err(plan_error)?;
            let row = r.u().map_err(plan_error)?;
            let len = r.count(1).map_err(plan_error)?;
            let start = self.rows.len() - r.b.len();
            places.push((file, row, start, len));
            r.b = &r.b[len..];
        }
        places.sort_unstable_by_key(|&(file, row, _, _)| (file, row));
        Ok(places)
    }

    fn finish(&mut self) -> DfResult<Vec<u8>> {
        // The records read and fed a chunk at a time, in place order: the fold holds the
        // bucket's bytes, 24 bytes a record and one chunk.
        let places = self.places()?;
        let mut run = Run::with_instant(&self.shared.judge, self.at);
        let mut items: Vec<Item> = Vec::with_capacity(CHUNK.min(places.len()));
        for chunk in places.chunks(CHUNK) {
            items.clear();
            for &(_, _, start, len) in chunk {
                let mut r = WireReader {
                    b: &self.rows[start..start + len],
                    at: "records",
                };
                let record = read_record(&mut r).map_err(plan_error)?;
                if !r.b.is_empty() {
                    return Err(plan_error("a record of a partial state is damaged"));
                }
                items.push(Item::Flow(Box::new(record)));
            }
            run.feed(&items);
        }
        drop(items);
        let tally = run.into_tally().encode();
        let mut w = WireWriter(MAGIC.to_vec());
        self.write_summary(&mut w);
        w.0.extend_from_slice(&tally);
        self.rows = Vec::new();
        Ok(w.0)
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
            + self.rows.capacity()
            + self
                .examples
                .iter()
                .map(|e| e.2.capacity() + 32)
                .sum::<usize>()
    }
}

fn binary_values(a: &ArrayRef) -> DfResult<&LargeBinaryArray> {
    a.as_any()
        .downcast_ref::<LargeBinaryArray>()
        .ok_or_else(|| plan_error("a partial state that is not bytes"))
}

impl Accumulator for Bucket {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DfResult<()> {
        read_rows(values)?.each(|_, place, given| self.take(place, given))
    }

    fn state(&mut self) -> DfResult<Vec<ScalarValue>> {
        Ok(vec![ScalarValue::LargeBinary(Some(self.state_bytes()))])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> DfResult<()> {
        let Some(states) = states.first() else {
            return Ok(());
        };
        let states = binary_values(states)?;
        for i in 0..states.len() {
            if !states.is_null(i) {
                self.merge_bytes(states.value(i))?;
            }
        }
        Ok(())
    }

    fn evaluate(&mut self) -> DfResult<ScalarValue> {
        Ok(ScalarValue::LargeBinary(Some(self.finish()?)))
    }

    fn size(&self) -> usize {
        Bucket::size(self)
    }
}

/// Every bucket of a partition at once: a batch's rows are read once and each handed to
/// its bucket (DataFusion's adapter would cut the batch into one slice per bucket).
struct Buckets {
    fold: Fold,
    groups: Vec<Bucket>,
}

impl Buckets {
    fn grow(&mut self, n: usize) {
        while self.groups.len() < n {
            self.groups.push(Bucket::new(&self.fold));
        }
    }
}

impl GroupsAccumulator for Buckets {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> DfResult<()> {
        self.grow(total_num_groups);
        let kept = |i: usize| opt_filter.is_none_or(|f| f.is_valid(i) && f.value(i));
        let groups = &mut self.groups;
        read_rows(values)?.each(|i, place, given| {
            if !kept(i) {
                return Ok(());
            }
            group_indices
                .get(i)
                .and_then(|&g| groups.get_mut(g))
                .ok_or_else(|| plan_error("a row without a group"))?
                .take(place, given)
        })
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> DfResult<ArrayRef> {
        let mut out = Vec::new();
        for mut b in emit_to.take_needed(&mut self.groups) {
            out.push(b.finish()?);
        }
        Ok(Arc::new(LargeBinaryArray::from_iter_values(out)))
    }

    fn state(&mut self, emit_to: EmitTo) -> DfResult<Vec<ArrayRef>> {
        let states: Vec<Vec<u8>> = emit_to
            .take_needed(&mut self.groups)
            .iter_mut()
            .map(Bucket::state_bytes)
            .collect();
        Ok(vec![Arc::new(LargeBinaryArray::from_iter_values(states))])
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> DfResult<()> {
        self.grow(total_num_groups);
        let states = binary_values(
            values
                .first()
                .ok_or_else(|| plan_error("a partial state without bytes"))?,
        )?;
        for (i, &g) in group_indices.iter().enumerate() {
            if states.is_null(i) {
                continue;
            }
            let b = self
                .groups
                .get_mut(g)
                .ok_or_else(|| plan_error("a group past the groups"))?;
            b.merge_bytes(states.value(i))?;
        }
        Ok(())
    }

    fn convert_to_state(
        &self,
        _: &[ArrayRef],
        _: Option<&BooleanArray>,
    ) -> DfResult<Vec<ArrayRef>> {
        // Never asked: `supports_convert_to_state` is false, so partial aggregation is
        // never skipped row by row (a state per row would carry a summary each).
        Err(plan_error("rows are not made states one by one"))
    }

    fn size(&self) -> usize {
        self.groups.iter().map(Bucket::size).sum::<usize>() + std::mem::size_of::<Self>()
    }
}

/// The bucket function: a hash of a record's two addresses in either order, modulo the
/// number of buckets.
#[derive(Debug, PartialEq, Eq, Hash)]
struct BucketOf {
    buckets: u64,
    signature: Signature,
}

impl BucketOf {
    fn new(buckets: u64) -> BucketOf {
        BucketOf {
            buckets: buckets.max(1),
            signature: Signature::any(4, Volatility::Immutable),
        }
    }
}

/// An address as the readers take it (text; IPv4-mapped IPv6 as IPv4).
fn address(text: Option<&str>) -> Option<IpAddr> {
    let t = text?.trim();
    t.parse::<IpAddr>().ok().map(crate::model::normalize_addr)
}

impl ScalarUDFImpl for BucketOf {
    fn name(&self) -> &str {
        BUCKET
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::UInt64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let rows = args.number_rows;
        let text = |a: &ColumnarValue| -> DfResult<ArrayRef> {
            Ok(datafusion::arrow::compute::cast(
                &a.to_array(rows)?,
                &DataType::Utf8,
            )?)
        };
        let cols = args
            .args
            .iter()
            .map(text)
            .collect::<DfResult<Vec<ArrayRef>>>()?;
        let cols: Vec<_> = cols.iter().map(|c| c.as_string::<i32>()).collect();
        let [src, dst, psrc, pdst] = cols[..] else {
            return Err(plan_error(format!("{BUCKET} takes four arguments")));
        };
        fn get(c: &arrow_array::StringArray, i: usize) -> Option<&str> {
            (!c.is_null(i)).then(|| c.value(i))
        }
        let out: UInt64Array = (0..rows)
            .map(|i| {
                // As the readers take it: the packet's addresses when logged.
                let s = address(get(psrc, i)).or_else(|| address(get(src, i)));
                let d = address(get(pdst, i)).or_else(|| address(get(dst, i)));
                let (a, b) = if s <= d { (s, d) } else { (d, s) };
                let mut h = rustc_hash::FxHasher::default();
                (a, b).hash(&mut h);
                Some(h.finish() % self.buckets)
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

const WIRE_FOLD: &[u8] = b"sgsim-fold-function/1\n";
const WIRE_BUCKET: &[u8] = b"sgsim-bucket-function/1\n";

/// Writes what a logical plan carries of the plan's tables (a Parquet file whose rows
/// carry their place, a text flow log); `Ok(false)`: not ours.
pub fn encode_table(
    table: &dyn datafusion::catalog::TableProvider,
    buf: &mut Vec<u8>,
) -> DfResult<bool> {
    if text::encode_table(table, buf)? {
        return Ok(true);
    }
    Ok(numbered::encode_table(table, buf))
}

/// Rebuilds one of the plan's tables of `schema`; `Ok(None)`: the bytes are not ours.
pub fn decode_table(
    buf: &[u8],
    schema: &Schema,
) -> DfResult<Option<Arc<dyn datafusion::catalog::TableProvider>>> {
    if let Some(t) = text::decode_table(buf)? {
        return Ok(Some(t));
    }
    numbered::decode_table(buf, schema)
}

/// Writes what a physical plan carries of the plan's operators (the numbering of a
/// Parquet file's rows, a text flow log's scan); `Ok(false)`: not ours.
pub fn encode_exec(
    plan: &dyn datafusion::physical_plan::ExecutionPlan,
    buf: &mut Vec<u8>,
) -> DfResult<bool> {
    if text::encode_exec(plan, buf)? {
        return Ok(true);
    }
    Ok(numbered::encode_exec(plan, buf))
}

/// Rebuilds one of the plan's operators over `inputs`; `Ok(None)`: not ours.
pub fn decode_exec(
    buf: &[u8],
    inputs: &[Arc<dyn datafusion::physical_plan::ExecutionPlan>],
) -> DfResult<Option<Arc<dyn datafusion::physical_plan::ExecutionPlan>>> {
    if let Some(scan) = text::decode_exec(buf, inputs)? {
        return Ok(Some(scan));
    }
    numbered::decode_exec(buf, inputs)
}

/// Writes what a plan carries for `udaf` when it is the fold: its settings, instant,
/// window and states, so a scheduler or executor can rebuild it ([`decode_udaf`]).
/// `Ok(false)`: not ours.
pub fn encode_udaf(udaf: &AggregateUDF, buf: &mut Vec<u8>) -> Result<bool, String> {
    let inner: &dyn std::any::Any = udaf.inner().as_ref();
    let Some(f) = inner.downcast_ref::<Fold>() else {
        return Ok(false);
    };
    let mut w = WireWriter(WIRE_FOLD.to_vec());
    w.u(f.at);
    for end in [f.window.since, f.window.until] {
        w.u(end.map_or(0, |t| t.saturating_add(1)));
    }
    w.u(u64::from(f.strict));
    w.0.extend_from_slice(&f.shared.wire);
    buf.extend_from_slice(&w.0);
    Ok(true)
}

/// Rebuilds the fold from what [`encode_udaf`] wrote; `Ok(None)`: the bytes are not ours.
pub fn decode_udaf(buf: &[u8]) -> Result<Option<Arc<AggregateUDF>>, String> {
    let Some(rest) = buf.strip_prefix(WIRE_FOLD) else {
        return Ok(None);
    };
    let mut r = WireReader {
        b: rest,
        at: "the fold's settings",
    };
    let bad = |e: super::traffic::WireError| format!("{FOLD}: {e}");
    let at = r.u().map_err(bad)?;
    let mut ends = [None, None];
    for end in &mut ends {
        *end = r.u().map_err(bad)?.checked_sub(1);
    }
    let strict = r.u().map_err(bad)? != 0;
    let shared = shared_from(r.b).map_err(|e| format!("{FOLD}: {e}"))?;
    Ok(Some(Arc::new(AggregateUDF::from(Fold {
        shared,
        at,
        window: Window {
            since: ends[0],
            until: ends[1],
        },
        strict,
        signature: fold_signature(),
    }))))
}

/// Writes what a plan carries for the bucket function (its number of buckets); `false`:
/// not ours.
pub fn encode_udf(udf: &ScalarUDF, buf: &mut Vec<u8>) -> bool {
    let inner: &dyn std::any::Any = udf.inner().as_ref();
    let Some(b) = inner.downcast_ref::<BucketOf>() else {
        return false;
    };
    buf.extend_from_slice(WIRE_BUCKET);
    buf.extend_from_slice(&b.buckets.to_le_bytes());
    true
}

/// Rebuilds the bucket function; `None`: the bytes are not ours (or damaged).
pub fn decode_udf(buf: &[u8]) -> Option<Arc<ScalarUDF>> {
    let n = <[u8; 8]>::try_from(buf.strip_prefix(WIRE_BUCKET)?).ok()?;
    Some(Arc::new(ScalarUDF::from(BucketOf::new(
        u64::from_le_bytes(n),
    ))))
}

/// The rows of each row group of a Parquet file, from its footer (empty for a text file,
/// or when the footer cannot be read: the example then names the row alone).
fn row_groups(file: Option<&(Location, Format)>) -> Vec<u64> {
    groups_of(file, Window::default()).0
}

/// A Parquet file's rows per row group, and which groups `window` leaves unread (as the
/// streaming reader does: [`parquet::Reader::window`]); nothing for other files.
fn groups_of(file: Option<&(Location, Format)>, window: Window) -> (Vec<u64>, Vec<bool>) {
    let reader = match file {
        Some((Location::Path(p), Format::Parquet)) => std::fs::File::open(p)
            .ok()
            .and_then(|f| parquet::open_file(f).ok()),
        #[cfg(feature = "s3")]
        Some((Location::Object(o), Format::Parquet)) => match crate::packet::s3::open(o) {
            Ok(crate::packet::Source::Parquet(r)) => Some(r),
            _ => None,
        },
        _ => None,
    };
    reader
        .map(|r| {
            let r = r.window(window);
            (r.group_rows().to_vec(), r.outside_groups().to_vec())
        })
        .unwrap_or_default()
}

/// A table's columns: names and types.
type Columns = Vec<(String, DataType)>;

/// How the plan reads a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A Parquet flow log: DataFusion's scan, each row read by the fold.
    Parquet,
    /// A text flow log (plain or gzip; AWS text or CSV, Alibaba JSON lines or CSV): read
    /// by sgsim's reader in the plan's scan.
    Text,
}

impl Format {
    /// How the plan reads the file at `location`: Parquet by its magic, else text.
    pub fn of(location: &Location) -> std::io::Result<Format> {
        let parquet = match location {
            Location::Path(p) => {
                use std::io::Read;
                let mut magic = Vec::with_capacity(4);
                std::fs::File::open(p)?.take(4).read_to_end(&mut magic)?;
                magic == parquet::MAGIC
            }
            #[cfg(feature = "s3")]
            Location::Object(o) => o.is_parquet()?,
        };
        Ok(if parquet {
            Format::Parquet
        } else {
            Format::Text
        })
    }
}

/// One input's answer from the plan: its buckets' tallies merged, and what its rows read.
pub struct Folded {
    /// Every bucket's connections.
    pub tally: Tally,
    /// The rows' counts and first examples (named by file).
    pub summary: Summary,
    /// Files left out, and why (a Parquet file that is no flow log).
    pub warnings: Vec<String>,
    /// The files left out, by their place in `files`.
    pub left_out: Vec<usize>,
    /// The buckets the input's connections were folded in.
    pub buckets: u64,
    /// The passes the plan made over the input's files (each folding a share of the
    /// buckets).
    pub passes: u64,
}

/// A DataFusion session that runs the what-if plan, on this machine or on a cluster.
pub struct Folding {
    ctx: SessionContext,
    runtime: tokio::runtime::Runtime,
    shared: Arc<Shared>,
    cluster: Option<String>,
    /// Partitions of the final aggregation.
    partitions: u64,
    /// Records a bucket holds, about, at most.
    bucket_records: u64,
    /// Records one pass folds, about, at most.
    pass_records: u64,
    /// Told of each bucket folded.
    progress: Option<Box<dyn Fn(Progress) + Send + Sync>>,
}

/// How far a plan is: told after each bucket's totals are merged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// The pass running (from 1).
    pub pass: u64,
    /// Passes in all.
    pub passes: u64,
    /// Buckets merged so far, over every pass.
    pub buckets_done: u64,
    /// Buckets in all.
    pub buckets: u64,
}

/// The session settings the plan needs: each file one partition in file order.
fn settings(config: SessionConfig) -> SessionConfig {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    config
        .with_target_partitions(cores)
        .with_batch_size(parquet::BATCH)
        .with_repartition_file_scans(false)
        .with_round_robin_repartition(false)
}

fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .thread_name("sgsim-fold")
        .enable_all()
        .build()
        .map_err(|e| Error::Plan(format!("cannot start the plan's runtime: {e}")))
}

impl Folding {
    /// A session on this machine judging `before` and `after` with `config` (its instant
    /// is each input's, given to [`Folding::input`]).
    pub fn new(before: &State, after: &State, config: &Config) -> Result<Folding, Error> {
        let ctx = SessionContext::new_with_config(settings(SessionConfig::new()));
        Folding::with(ctx, runtime()?, before, after, config)
    }

    /// A session whose plans run on the Ballista cluster at `url` (`df://HOST:PORT`).
    #[cfg(feature = "cluster")]
    pub fn remote(
        url: &str,
        before: &State,
        after: &State,
        config: &Config,
    ) -> Result<Folding, Error> {
        let runtime = runtime()?;
        let ctx = runtime
            .block_on(crate::cluster::client(url))
            .map_err(|e| Error::Plan(format!("cluster {url}: {e}")))?;
        let state = ctx.state();
        // The final aggregation's partitions are the cluster's parallelism, not the
        // client's cores.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let cfg =
            settings(state.config().clone()).with_target_partitions(cores.max(REMOTE_PARTITIONS));
        let ctx = SessionContext::new_with_state(
            datafusion::execution::SessionStateBuilder::new_from_existing(state)
                .with_config(cfg)
                .build(),
        );
        let mut f = Folding::with(ctx, runtime, before, after, config)?;
        f.cluster = Some(url.to_string());
        Ok(f)
    }

    fn with(
        ctx: SessionContext,
        runtime: tokio::runtime::Runtime,
        before: &State,
        after: &State,
        config: &Config,
    ) -> Result<Folding, Error> {
        let wire = shared_wire(before, after, config).map_err(Error::Compile)?;
        let shared = shared_from(&wire).map_err(Error::Compile)?;
        let partitions = ctx.state().config().target_partitions() as u64;
        Ok(Folding {
            ctx,
            runtime,
            shared,
            cluster: None,
            partitions,
            bucket_records: BUCKET_RECORDS,
            pass_records: PASS_RECORDS,
            progress: None,
        })
    }

    /// Folds inputs in buckets of about `n` records at most (default [`BUCKET_RECORDS`]):
    /// fewer make each fold hold less, and give the client more tallies to merge.
    pub fn with_bucket_records(mut self, n: u64) -> Folding {
        self.bucket_records = n.max(1);
        self
    }

    /// Folds inputs of more than about `n` records (default [`PASS_RECORDS`]) in several
    /// passes over their files, each folding a share of the buckets: the plan holds about
    /// `n` records' partial states at once, whatever the input's size, and reads the
    /// files once a pass.
    pub fn with_pass_records(mut self, n: u64) -> Folding {
        self.pass_records = n.max(1);
        self
    }

    /// Tells `f` how far each input's plan is, after each bucket's totals are merged (a
    /// progress bar's feed).
    pub fn with_progress(mut self, f: impl Fn(Progress) + Send + Sync + 'static) -> Folding {
        self.progress = Some(Box::new(f));
        self
    }

    fn error(&self, e: DataFusionError) -> Error {
        match &self.cluster {
            Some(url) => Error::Plan(format!("cluster {url}: {e}")),
            None => Error::Plan(e.to_string()),
        }
    }

    /// Runs the plan over one input's files `files` (each with how it is read, named
    /// `names`, in the streaming reader's order), the revoke at `at` (ns), rows outside
    /// `window` counted and left out; `strict`: a malformed row is an error.
    pub fn input(
        &self,
        files: &[(Location, Format)],
        names: &[String],
        at: u64,
        window: Window,
        strict: bool,
    ) -> Result<Folded, Error> {
        // Each file as DataFusion names it (Parquet: a path or URL it can list), and a local
        // text file's absolute path (read by sgsim, so any name will do).
        let mut paths = Vec::with_capacity(files.len());
        let mut texts_at: Vec<Option<std::path::PathBuf>> = Vec::with_capacity(files.len());
        for (file, format) in files {
            match file {
                Location::Path(p) => {
                    let abs = p
                        .canonicalize()
                        .map_err(|e| Error::Plan(format!("{}: {e}", p.display())))?;
                    if *format == Format::Text {
                        paths.push(abs.display().to_string());
                        texts_at.push(Some(abs));
                        continue;
                    }
                    paths.push(abs.to_str().map(str::to_string).ok_or_else(|| {
                        Error::Plan(format!("{}: the path is not UTF-8", p.display()))
                    })?);
                    texts_at.push(None);
                }
                #[cfg(feature = "s3")]
                Location::Object(o) => {
                    let url =
                        datafusion::execution::object_store::ObjectStoreUrl::parse(o.bucket_url())
                            .map_err(|e| Error::Plan(format!("{}: {e}", o.url())))?;
                    self.ctx.register_object_store(url.as_ref(), o.store());
                    paths.push(o.url());
                    texts_at.push(None);
                }
            }
        }
        let mut folded = Folded {
            tally: Tally::default(),
            summary: Summary::default(),
            warnings: Vec::new(),
            left_out: Vec::new(),
            buckets: 0,
            passes: 0,
        };
        if paths.is_empty() {
            return Ok(folded);
        }
        let fold = Fold {
            shared: self.shared.clone(),
            at,
            window,
            strict,
            signature: fold_signature(),
        };
        self.ctx.register_udaf(AggregateUDF::from(fold.clone()));
        let mut examples: Vec<(u64, u64, String)> = Vec::new();
        // Per file, the Parquet row groups the window leaves unread (their footers read
        // here, before the plan runs: an object's reader blocks on its own runtime).
        let unread_groups: Vec<Unread> = files
            .iter()
            .map(|file| match file {
                (_, Format::Parquet) if !window.is_all() => {
                    let (groups, outside) = groups_of(Some(file), window);
                    Unread::new(&groups, &outside)
                }
                _ => Unread::default(),
            })
            .collect();
        let run = async {
            let mut branches = Vec::with_capacity(paths.len());
            // Each Parquet table: its name, its columns' names and types, its file's ordinal.
            let mut tables: Vec<(String, Columns, u64)> = Vec::new();
            let mut texts: Vec<String> = Vec::new();
            let mut rows = 0u64;
            let mut unreadable: Vec<(u64, String)> = Vec::new();
            // Per file: rows in row groups the window leaves unread.
            let mut left_unread: Vec<(u64, u64)> = Vec::new();
            for (i, path) in paths.iter().enumerate() {
                let table = format!("sgsim_fold_{i}");
                let _ = self.ctx.deregister_table(table.as_str())?;
                if let Some((location, Format::Text)) = files.get(i) {
                    // Read from its absolute path, as the Parquet files are.
                    let location = match texts_at.get(i) {
                        Some(Some(abs)) => Location::Path(abs.clone()),
                        _ => location.clone(),
                    };
                    rows = rows.saturating_add(text_rows(&location));
                    let name = names.get(i).map_or(path.as_str(), String::as_str);
                    let file = TextFile::new(location, name, i as u64, window, strict);
                    self.ctx.register_table(table.as_str(), Arc::new(file))?;
                    texts.push(table);
                    continue;
                }
                // Text columns as dictionaries, as the readers scan them (local files; an
                // object's schema is its own).
                let hint = match files.get(i) {
                    Some((Location::Path(p), _)) => match parquet::scan_schema(p) {
                        Ok(schema) => Some(schema),
                        // No srcaddr: left out below, with a warning.
                        Err(flowlog::FlowError::NotFlowLogSchema(_)) => None,
                        // A footer or schema the readers refuse (a field named twice): the
                        // input's error, as the streaming reader makes it.
                        Err(e) => {
                            let name = names.get(i).map_or(path.as_str(), String::as_str);
                            return Err(DataFusionError::Plan(format!("{name}: {e}")));
                        }
                    },
                    _ => None,
                };
                // Row groups the window leaves unread: left out of the scan, counted here.
                let left = unread_groups.get(i).cloned().unwrap_or_default();
                let unread = left.rows();
                let file =
                    NumberedFile::open(&self.ctx.state(), path, i as u64, hint, left).await?;
                let columns: Vec<String> = datafusion::catalog::TableProvider::schema(&file)
                    .fields()
                    .iter()
                    .map(|f| f.name().clone())
                    .collect();
                let flow_log = columns.iter().any(|c| {
                    let c = flowlog::canonical(c);
                    c == flowlog::Field::SrcAddr.name() || c == flowlog::Field::PktSrcAddr.name()
                });
                if !flow_log {
                    let name = names.get(i).map_or(path.as_str(), String::as_str);
                    let own: Vec<String> = columns
                        .iter()
                        .filter(|c| *c != FILE && *c != ROW)
                        .map(|c| flowlog::canonical(c))
                        .collect();
                    folded.warnings.push(format!(
                        "{name}: skipped, not a flow log: a Parquet file without a srcaddr \
                         column (columns: {})",
                        own.join(", ")
                    ));
                    folded.left_out.push(i);
                    continue;
                }
                let types: Vec<(String, DataType)> =
                    datafusion::catalog::TableProvider::schema(&file)
                        .fields()
                        .iter()
                        .map(|f| (f.name().clone(), f.data_type().clone()))
                        .collect();
                // A file whose footer does not say: counted as a bucket's worth.
                let own = file.rows(&self.ctx.state()).await?;
                rows =
                    rows.saturating_add(own.map_or(BUCKET_RECORDS, |n| n.saturating_sub(unread)));
                if unread > 0 {
                    left_unread.push((i as u64, unread));
                }
                self.ctx.register_table(table.as_str(), Arc::new(file))?;
                tables.push((table, types, i as u64));
            }
            // Per field, each file's column (by either spelling) and its type. A type the
            // readers cannot read makes the file's rows unreadable, as the streaming reader
            // counts them; where the files' readable types differ, the field is read as
            // text in every file (UNION ALL would make Int64 and UInt64 a decimal).
            let column = |types: &[(String, DataType)], f: flowlog::Field| {
                types
                    .iter()
                    .find(|(c, _)| flowlog::canonical(c) == f.name())
                    .cloned()
            };
            let mut text = vec![false; fields().count()];
            for (k, f) in fields().enumerate() {
                let mut seen: Option<&DataType> = None;
                for (_, types, _) in &tables {
                    if let Some((_, t)) = types
                        .iter()
                        .find(|(c, _)| flowlog::canonical(c) == f.name())
                    {
                        if readable(t) {
                            if seen.is_some_and(|s| s != t) {
                                text[k] = true;
                            }
                            seen = Some(t);
                        }
                    }
                }
            }
            for (table, types, ordinal) in &tables {
                let bad = fields().find_map(|f| {
                    column(types, f)
                        .filter(|(_, t)| !readable(t))
                        .map(|(_, t)| {
                            format!("column {} has type {t}, not text or an integer", f.name())
                        })
                });
                let args: Vec<String> = fields()
                    .enumerate()
                    .map(|(k, f)| {
                        let col = match (&bad, column(types, f)) {
                            (None, Some((c, _))) => {
                                let c = format!("\"{}\"", c.replace('"', "\"\""));
                                if text[k] {
                                    format!("CAST({c} AS VARCHAR)")
                                } else {
                                    c
                                }
                            }
                            _ => "NULL".to_string(),
                        };
                        format!("{col} AS a{k}")
                    })
                    .collect();
                // The streaming reader names each row group of such a file once: the
                // client does too (the fold counts its rows).
                if let Some(why) = &bad {
                    unreadable.push((*ordinal, why.clone()));
                }
                let bad = bad.map_or_else(
                    || "CAST(NULL AS VARCHAR)".to_string(),
                    |b| format!("'{}'", b.replace('\'', "''")),
                );
                branches.push(format!(
                    "SELECT {}, {FILE}, {ROW}, {bad} AS {BAD}, CAST(NULL AS BYTEA) AS {RECORD}, \
                     CAST(NULL AS BYTEA) AS {SUMMARY} FROM {table}",
                    args.join(", ")
                ));
            }
            // A text flow log's rows: the addresses for the bucket, the record as its scan
            // read it.
            for table in &texts {
                let args: Vec<String> = fields()
                    .enumerate()
                    .map(|(k, f)| match f {
                        flowlog::Field::SrcAddr => format!("srcaddr AS a{k}"),
                        flowlog::Field::DstAddr => format!("dstaddr AS a{k}"),
                        _ => format!("NULL AS a{k}"),
                    })
                    .collect();
                branches.push(format!(
                    "SELECT {}, {FILE}, {ROW}, CAST(NULL AS VARCHAR) AS {BAD}, {RECORD}, \
                     {SUMMARY} FROM {table}",
                    args.join(", ")
                ));
            }
            if branches.is_empty() {
                return Ok((unreadable, left_unread));
            }
            let arg = |f: flowlog::Field| {
                let k = fields().position(|g| g == f).unwrap_or(0);
                format!("a{k}")
            };
            let all: Vec<String> = (0..fields().count()).map(|k| format!("a{k}")).collect();
            let bucket = format!(
                "{BUCKET}({}, {}, {}, {})",
                arg(flowlog::Field::SrcAddr),
                arg(flowlog::Field::DstAddr),
                arg(flowlog::Field::PktSrcAddr),
                arg(flowlog::Field::PktDstAddr),
            );
            // Passes over the files, each folding the buckets equal to its number modulo
            // the passes; a few buckets per final partition in each (so never fewer
            // buckets than passes).
            folded.passes = passes_for(rows, self.pass_records);
            folded.buckets = buckets_for(
                rows,
                self.partitions.saturating_mul(folded.passes),
                self.bucket_records,
            );
            self.ctx
                .register_udf(ScalarUDF::from(BucketOf::new(folded.buckets)));
            let mut done = 0u64;
            for pass in 0..folded.passes {
                let only = if folded.passes > 1 {
                    let n = |v: u64| format!("arrow_cast({v}, 'UInt64')");
                    format!(" WHERE {bucket} % {} = {}", n(folded.passes), n(pass))
                } else {
                    String::new()
                };
                let sql = format!(
                    "SELECT {FOLD}({}, {FILE}, {ROW}, {BAD}, {RECORD}, {SUMMARY}) AS tally \
                     FROM ({}){only} GROUP BY {bucket}",
                    all.join(", "),
                    branches.join(" UNION ALL "),
                );
                // Each bucket's tally merged as it comes, not all of them held.
                let mut stream = self.ctx.sql(&sql).await?.execute_stream().await?;
                while let Some(batch) = futures::StreamExt::next(&mut stream).await {
                    let batch = batch?;
                    let col = batch
                        .column(0)
                        .as_any()
                        .downcast_ref::<LargeBinaryArray>()
                        .ok_or_else(|| plan_error("its result is not bytes"))?;
                    for i in 0..col.len() {
                        if col.is_null(i) {
                            continue;
                        }
                        let bytes = col
                            .value(i)
                            .strip_prefix(MAGIC)
                            .ok_or_else(|| plan_error("a result that is not a fold's"))?;
                        let mut r = WireReader {
                            b: bytes,
                            at: "summary",
                        };
                        let mut part = Bucket::new(&fold);
                        part.read_summary(&mut r).map_err(plan_error)?;
                        let tally = Tally::decode(r.b).map_err(plan_error)?;
                        folded.tally.merge(tally, self.shared.judge.top());
                        // Counts here; the examples are ordered by place below.
                        folded.summary.merge(&part.summary, "");
                        examples.extend(part.examples);
                        done += 1;
                        if let Some(tell) = &self.progress {
                            tell(Progress {
                                pass: pass + 1,
                                passes: folded.passes,
                                buckets_done: done,
                                buckets: folded.buckets,
                            });
                        }
                    }
                }
            }
            Ok::<_, DataFusionError>((unreadable, left_unread))
        };
        let (unreadable, left_unread) = self.runtime.block_on(run).map_err(|e| self.error(e))?;
        // Rows of row groups left unread: outside the window, as the streaming reader
        // counts them.
        for (_, n) in left_unread {
            folded.summary.records += n;
            folded.summary.unread += n;
            *folded
                .summary
                .skipped
                .entry(OUTSIDE_WINDOW.to_string())
                .or_default() += n;
        }
        // A file whose rows cannot be read: one example per row group read, at its first
        // row.
        for (file, why) in unreadable {
            let mut start = 0u64;
            let (groups, outside) = groups_of(files.get(file as usize), window);
            for (g, n) in groups.into_iter().enumerate() {
                if n > 0 && !outside.get(g).copied().unwrap_or(false) {
                    examples.push((file, start + 1, format!("{MALFORMED_ROW}{why}")));
                }
                start += n;
                if examples.len() > 4 * MAX_EXAMPLES {
                    break;
                }
            }
        }
        examples.sort();
        let mut groups_of: std::collections::HashMap<u64, Vec<u64>> = Default::default();
        for (file, row, message) in examples.into_iter().take(MAX_EXAMPLES) {
            let name = names.get(file as usize).map_or("?", String::as_str);
            let groups = groups_of
                .entry(file)
                .or_insert_with(|| row_groups(files.get(file as usize)));
            folded
                .summary
                .example(format!("{name}: {}", example_text(row, &message, groups)));
        }
        Ok(folded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fold and the bucket function travel in plans and come back the same; damaged
    /// bytes are an error naming the fold, never a panic; others' bytes are left alone.
    #[test]
    fn the_functions_travel_in_plans() {
        let state = crate::track::tests::state();
        let mut after = state.clone();
        after.rules.retain(|r| r.id.as_str() != "r-ssh");
        let config = Config::default().with_top(7);
        let wire = shared_wire(&state, &after, &config).unwrap();
        let fold = AggregateUDF::from(Fold {
            shared: shared_from(&wire).unwrap(),
            at: 42,
            window: Window {
                since: Some(0),
                until: None,
            },
            strict: true,
            signature: fold_signature(),
        });
        let mut buf = Vec::new();
        assert!(encode_udaf(&fold, &mut buf).unwrap());
        let back = decode_udaf(&buf).unwrap().unwrap();
        let inner: &dyn std::any::Any = back.inner().as_ref();
        let f = inner.downcast_ref::<Fold>().unwrap();
        assert_eq!(
            (f.at, f.window.since, f.window.until, f.strict),
            (42, Some(0), None, true)
        );
        assert_eq!(f.shared.judge.top(), 7);
        for cut in [WIRE_FOLD.len() + 1, buf.len() / 2, buf.len() - 1] {
            let err = decode_udaf(&buf[..cut]).unwrap_err();
            assert!(err.contains(FOLD), "{err}");
        }
        assert!(decode_udaf(b"other").unwrap().is_none());
        let bucket = ScalarUDF::from(BucketOf::new(24));
        let mut buf = Vec::new();
        assert!(encode_udf(&bucket, &mut buf));
        let back = decode_udf(&buf).unwrap();
        let inner: &dyn std::any::Any = back.inner().as_ref();
        assert_eq!(inner.downcast_ref::<BucketOf>().unwrap().buckets, 24);
        assert!(decode_udf(&buf[..buf.len() - 1]).is_none());
        assert!(decode_udf(b"other").is_none());
        let upper = datafusion::functions::string::upper();
        assert!(!encode_udf(&upper, &mut Vec::new()));
    }

    /// An input is cut into more buckets as it grows, never fewer than a few per
    /// partition, never more than the most the client merges.
    #[test]
    fn buckets_grow_with_the_input() {
        let per = BUCKET_RECORDS;
        assert_eq!(buckets_for(0, 2, per), 2 * BUCKETS_PER_PARTITION);
        assert_eq!(buckets_for(5_000_000, 2, per), 2 * BUCKETS_PER_PARTITION);
        assert_eq!(buckets_for(100 * per, 2, per), 100);
        assert_eq!(buckets_for(100 * per + 1, 2, per), 101);
        assert_eq!(buckets_for(u64::MAX, 2, per), MAX_BUCKETS);
        assert_eq!(
            buckets_for(u64::MAX, 1000, per),
            1000 * BUCKETS_PER_PARTITION
        );
        assert_eq!(buckets_for(24_000, 2, 500), 48);
        // No partitions or records per bucket: taken as one.
        assert_eq!(buckets_for(3, 0, 0), BUCKETS_PER_PARTITION);
        assert_eq!(buckets_for(10, 0, 0), 10);
    }

    /// An input is folded in more passes as it grows, at least one.
    #[test]
    fn passes_grow_with_the_input() {
        assert_eq!(passes_for(0, PASS_RECORDS), 1);
        assert_eq!(passes_for(PASS_RECORDS, PASS_RECORDS), 1);
        assert_eq!(passes_for(PASS_RECORDS + 1, PASS_RECORDS), 2);
        assert_eq!(passes_for(1_000_000_000, PASS_RECORDS), 120);
        // At most MAX_PASSES: past it, each pass holds more.
        assert_eq!(passes_for(u64::MAX, 1), MAX_PASSES);
        assert_eq!(passes_for(MAX_PASSES * 1000 + 1, 1000), MAX_PASSES);
        // No records per pass: taken as one.
        assert_eq!(passes_for(10, 0), 10);
    }

    /// Folded in many passes over its file, each folding its share of the buckets, an
    /// input gives the report and the counts of one pass: every record, the malformed
    /// line and the summary are folded once.
    #[test]
    fn passes_fold_every_record_once() {
        let state = crate::track::tests::state();
        let request = crate::provider::RawRequest::parse(
            "Action=RevokeSecurityGroupIngress&GroupId=sg-web&IpPermissions.1.IpProtocol=tcp\
             &IpPermissions.1.FromPort=22&IpPermissions.1.ToPort=22\
             &IpPermissions.1.IpRanges.1.CidrIp=0.0.0.0%2F0",
        )
        .unwrap();
        let plan = crate::whatif::plan(&state, &request).unwrap();
        assert!(plan.report.error.is_none(), "{:?}", plan.report.error);
        let dir = std::env::temp_dir().join(format!("sgsim-passes-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("day.log");
        let mut text = String::from(
            "version account-id interface-id srcaddr dstaddr srcport dstport protocol \
             packets bytes start end action log-status\n",
        );
        for i in 0..300u64 {
            let (src, start) = (
                format!("198.51.{}.{}", i % 7, i % 250 + 1),
                1_700_000_000 + i,
            );
            text += &format!(
                "2 123456789012 eni-a {src} 10.0.0.1 {} 22 6 3 180 {start} {} ACCEPT OK\n",
                40000 + i,
                start + 5
            );
            if i == 150 {
                text += "bad line\n";
            }
        }
        std::fs::write(&log, &text).unwrap();
        let config = Config::default();
        let judge = Judge::new(&state, &plan.outcome.state, config).unwrap();
        let files = [(Location::Path(log.clone()), Format::Text)];
        let names = ["day.log".to_string()];
        let told: Arc<Mutex<Vec<Progress>>> = Arc::default();
        let fold = |pass_records: u64| {
            told.lock().unwrap().clear();
            let tell = told.clone();
            let folded = Folding::new(&state, &plan.outcome.state, &config)
                .unwrap()
                .with_pass_records(pass_records)
                .with_progress(move |p| tell.lock().unwrap().push(p))
                .input(
                    &files,
                    &names,
                    1_700_000_000 * 1_000_000_000,
                    Window::default(),
                    false,
                )
                .unwrap();
            let mut run = Run::new(&judge);
            run.absorb("day.log", folded.tally, 1_700_000_000 * 1_000_000_000);
            let mut report = plan.report.clone();
            run.finish(&mut report, &state);
            let report = serde_json::to_value(&report).unwrap();
            (folded.passes, folded.summary, report)
        };
        let (one, summary, report) = fold(1 << 30);
        assert_eq!(one, 1);
        assert_eq!((summary.records, summary.decoded), (301, 300));
        assert_eq!(report["connections"]["broken"], 300, "{report}");
        // Its records as the plan estimates them: plain text, 100 bytes a line; gzip'd,
        // 12 bytes.
        let rows = text_rows(&Location::Path(log.clone()));
        assert_eq!(rows, text.len() as u64 / 100);
        let gz = dir.join("day.log.gz");
        let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut z, text.as_bytes()).unwrap();
        let z = z.finish().unwrap();
        std::fs::write(&gz, &z).unwrap();
        assert_eq!(text_rows(&Location::Path(gz)), z.len() as u64 / 12);
        let (many, summary_many, report_many) = fold(10);
        assert_eq!(many, passes_for(rows, 10));
        // Told of each bucket merged: every pass in order, the count of buckets rising.
        let told = told.lock().unwrap().clone();
        assert!(told
            .windows(2)
            .all(|w| w[0].pass <= w[1].pass && w[1].buckets_done == w[0].buckets_done + 1));
        let last = told.last().unwrap();
        assert_eq!((last.pass, last.passes), (many, many));
        assert!(last.buckets_done <= last.buckets && last.buckets_done >= many);
        assert!(many > 10, "{many} passes");
        assert_eq!(summary_many, summary);
        assert_eq!(report_many, report);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A bucket's records are folded in the streaming reader's order whatever order its
    /// partial states came in; a damaged record length is an error, never a panic.
    #[test]
    fn a_bucket_folds_its_records_in_place_order() {
        let state = crate::track::tests::state();
        let wire = shared_wire(&state, &state, &Config::default()).unwrap();
        let fold = Fold {
            shared: shared_from(&wire).unwrap(),
            at: 0,
            window: Window::default(),
            strict: false,
            signature: fold_signature(),
        };
        let record = |index: u64| crate::packet::Record {
            index,
            line: index + 1,
            format: flowlog::Format::Parquet,
            eni: Some(crate::model::EniId::from("eni-web")),
            direction: None,
            header: crate::model::Header::new(
                "198.51.100.7".parse().unwrap(),
                "10.0.1.10".parse().unwrap(),
                6,
                40000 + index as u16,
                22,
            )
            .unwrap(),
            packets: 1,
            bytes: 60 + index,
            start: 1_000 + index,
            end: 1_000 + index,
            action: None,
            tcp_flags: None,
            reject_reason: None,
        };
        // Rows 3 and 1 of file 1 in one partial state; row 2 of file 1 and row 9 of file
        // 0 in another, merged in that order.
        let (mut a, mut b) = (Bucket::new(&fold), Bucket::new(&fold));
        for row in [3, 1] {
            a.add((1, row), Outcome::Record(Box::new(record(row))))
                .unwrap();
        }
        b.add((1, 2), Outcome::Record(Box::new(record(2)))).unwrap();
        b.add((0, 9), Outcome::Record(Box::new(record(9)))).unwrap();
        let mut merged = Bucket::new(&fold);
        merged.merge_bytes(&b.state_bytes()).unwrap();
        merged.merge_bytes(&a.state_bytes()).unwrap();
        let places = merged.places().unwrap();
        let order: Vec<(u64, u64)> = places.iter().map(|p| (p.0, p.1)).collect();
        assert_eq!(order, [(0, 9), (1, 1), (1, 2), (1, 3)]);
        // Each place points at its own record.
        for &(_, row, start, len) in &places {
            let mut r = WireReader {
                b: &merged.rows[start..start + len],
                at: "records",
            };
            assert_eq!(read_record(&mut r).unwrap(), record(row));
        }
        // Folded in that order: the tally of the same records added in order.
        let mut ordered = Bucket::new(&fold);
        for (file, row) in order {
            ordered
                .add((file, row), Outcome::Record(Box::new(record(row))))
                .unwrap();
        }
        assert_eq!(merged.finish().unwrap(), ordered.finish().unwrap());
        // A record length past the bytes is refused.
        let mut bad = Bucket::new(&fold);
        bad.rows = vec![0, 1, 200, 1, 2];
        let err = bad.finish().unwrap_err().to_string();
        assert!(err.contains(FOLD), "{err}");
    }

    /// Both ends of a connection fall in one bucket, the packet's addresses when logged.
    #[test]
    fn a_connection_falls_in_one_bucket_both_ways() {
        let f = BucketOf::new(16);
        let arr = |v: Vec<Option<&str>>| {
            ColumnarValue::Array(Arc::new(arrow_array::StringArray::from(v)) as ArrayRef)
        };
        let rows = [
            ("10.0.0.1", "10.0.0.2", None, None),
            ("10.0.0.2", "10.0.0.1", None, None),
            ("192.0.2.1", "192.0.2.2", Some("10.0.0.2"), Some("10.0.0.1")),
            ("10.0.0.3", "10.0.0.1", None, None),
        ];
        let args = vec![
            arr(rows.iter().map(|r| Some(r.0)).collect()),
            arr(rows.iter().map(|r| Some(r.1)).collect()),
            arr(rows.iter().map(|r| r.2).collect()),
            arr(rows.iter().map(|r| r.3).collect()),
        ];
        let fields: Vec<arrow_schema::FieldRef> = (0..4)
            .map(|i| Arc::new(Field::new(format!("c{i}"), DataType::Utf8, true)))
            .collect();
        let out = f
            .invoke_with_args(ScalarFunctionArgs {
                args,
                arg_fields: fields,
                number_rows: rows.len(),
                return_field: Arc::new(Field::new("b", DataType::UInt64, true)),
                config_options: Arc::new(Default::default()),
            })
            .unwrap();
        let ColumnarValue::Array(out) = out else {
            panic!("an array")
        };
        let out = out.as_primitive::<UInt64Type>();
        assert_eq!(out.value(0), out.value(1));
        assert_eq!(out.value(0), out.value(2));
        assert!((0..4).all(|i| out.value(i) < 16));
    }
}
