//! A text flow log (AWS space-separated or CSV, Alibaba JSON lines or CSV; plain or gzip)
//! as a table of the plan, read by sgsim's own reader so that the plan reads what the
//! streaming path reads: the same records, skips, warnings and examples.
//!
//! [`TextFile`] is the table. Its scan is DataFusion's file scan (`DataSourceExec`) of one
//! file group of one file, read by [`TextSource`]: from its start (a text or gzip file
//! cannot be cut), on a blocking thread, as batches of:
//!
//! - `srcaddr`, `dstaddr`: the addresses the record is read with (the packet's, when
//!   logged), as text, for the bucket function;
//! - `__sgsim_file`, `__sgsim_row`: the file's ordinal and the record's place in it;
//! - `__sgsim_record`: the record, in the fold's encoding;
//! - `__sgsim_summary`: null, except on one last row that carries the file's summary (its
//!   counts by reason, warnings and first examples), as the streaming reader ends a file.
//!
//! The `--since/--until` window is applied here, as the streaming reader applies it: the
//! records it leaves out are counted as skipped, not decoded.
//!
//! Being a file scan, it runs on a Ballista cluster too: the scheduler gives each task its
//! share of a stage's file groups (a union of one-file scans: each file to one task), and
//! the scan travels to the executors by the file's path, window and place
//! ([`encode_exec`]). An object of S3 is read on this machine only.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use arrow_array::{ArrayRef, BinaryArray, Int64Array, RecordBatch, StringArray, UInt64Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::Result as DfResult;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{
    FileGroup, FileOpenFuture, FileOpener, FileScanConfig, FileScanConfigBuilder, FileSource,
};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::table_schema::TableSchema;
use datafusion::error::DataFusionError;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::{Expr, TableType};
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayFormatType, ExecutionPlan};

use super::numbered::{FILE, ROW};
use crate::packet::input::{Location, Window, OUTSIDE_WINDOW};
use crate::packet::{Item, Summary};
use crate::whatif::traffic::{write_record, WireError, WireReader, WireWriter};

/// The column of a row's record, in the fold's encoding.
pub(super) const RECORD: &str = "__sgsim_record";
/// The column of a file's summary (one row per file).
pub(super) const SUMMARY: &str = "__sgsim_summary";
/// Records per batch.
const BATCH: usize = 8192;

/// The table's columns.
fn text_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("srcaddr", DataType::Utf8, true),
        Field::new("dstaddr", DataType::Utf8, true),
        Field::new(FILE, DataType::Int64, false),
        Field::new(ROW, DataType::UInt64, false),
        Field::new(RECORD, DataType::Binary, true),
        Field::new(SUMMARY, DataType::Binary, true),
    ]))
}

/// A text flow log as read for the plan.
#[derive(Debug, Clone)]
pub(super) struct TextFile {
    location: Location,
    /// The file as the input names it (in messages).
    name: String,
    ordinal: u64,
    window: Window,
    strict: bool,
}

impl TextFile {
    /// The `ordinal`-th file of its input, at `location`, named `name`; records outside
    /// `window` are left out (and counted); `strict`: a malformed line is an error.
    pub(super) fn new(
        location: Location,
        name: &str,
        ordinal: u64,
        window: Window,
        strict: bool,
    ) -> Self {
        TextFile {
            location,
            name: name.to_string(),
            ordinal,
            window,
            strict,
        }
    }

    fn name(&self) -> String {
        crate::term::escape(&self.name).into_owned()
    }
}

/// How many text flow logs are read at once, process-wide: a plan's text scans all start
/// together (one per file), and each holds a file open, a reader and batches in flight.
fn reading_at_once() -> usize {
    std::thread::available_parallelism().map_or(2, |n| 2 * n.get())
}

/// Permits to read a text flow log, at most [`reading_at_once`] held.
static READING: std::sync::Mutex<usize> = std::sync::Mutex::new(0);
static READ_DONE: std::sync::Condvar = std::sync::Condvar::new();

/// A permit to read; given back when dropped.
struct Reading;

impl Reading {
    /// Waits for a permit (on the scan's blocking thread).
    fn wait() -> Reading {
        let max = reading_at_once();
        let mut held = READING.lock().unwrap_or_else(|e| e.into_inner());
        while *held >= max {
            held = READ_DONE.wait(held).unwrap_or_else(|e| e.into_inner());
        }
        *held += 1;
        Reading
    }
}

impl Drop for Reading {
    fn drop(&mut self) {
        let mut held = READING.lock().unwrap_or_else(|e| e.into_inner());
        *held = held.saturating_sub(1);
        READ_DONE.notify_one();
    }
}

#[async_trait]
impl TableProvider for TextFile {
    fn schema(&self) -> SchemaRef {
        text_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        // Every line is read (the numbering and the summary need them all); the columns
        // asked for are projected from the scan's.
        let scan = self.exec_of(1);
        match projection {
            Some(columns) => super::numbered::projected(scan, columns.iter().copied()),
            None => Ok(scan),
        }
    }
}

impl TextFile {
    /// The file's scan: a file scan of `groups` file groups of the one file, read by
    /// [`TextSource`]: 1, or 0 where a scheduler left a task none of it.
    fn exec_of(&self, groups: u8) -> Arc<dyn ExecutionPlan> {
        let source: Arc<dyn FileSource> = Arc::new(TextSource::new(self.clone()));
        let mut config = FileScanConfigBuilder::new(ObjectStoreUrl::local_filesystem(), source);
        if groups > 0 {
            // The file as a scheduler counts it (its path, its size); the reader opens it by
            // its location.
            let (path, size) = match &self.location {
                Location::Path(p) => (
                    p.to_string_lossy().into_owned(),
                    std::fs::metadata(p).map_or(0, |m| m.len()),
                ),
                #[cfg(feature = "s3")]
                Location::Object(o) => (o.url(), o.size()),
            };
            config = config.with_file_group(FileGroup::new(vec![PartitionedFile::new(path, size)]));
        }
        DataSourceExec::from_data_source(config.build())
    }
}

/// How a text flow log is read as a file scan: DataFusion's (and a Ballista scheduler's)
/// own scan, which gives each task its share of the files, over sgsim's reader.
#[derive(Clone)]
pub(super) struct TextSource {
    file: TextFile,
    table: TableSchema,
    metrics: ExecutionPlanMetricsSet,
}

impl TextSource {
    fn new(file: TextFile) -> TextSource {
        TextSource {
            file,
            table: TableSchema::from(text_schema()),
            metrics: ExecutionPlanMetricsSet::new(),
        }
    }
}

impl FileSource for TextSource {
    fn create_file_opener(
        &self,
        _: Arc<dyn datafusion::object_store::ObjectStore>,
        _: &FileScanConfig,
        _: usize,
    ) -> DfResult<Arc<dyn FileOpener>> {
        Ok(Arc::new(TextOpener(self.file.clone())))
    }

    fn table_schema(&self) -> &TableSchema {
        &self.table
    }

    fn with_batch_size(&self, _: usize) -> Arc<dyn FileSource> {
        Arc::new(self.clone())
    }

    fn metrics(&self) -> &ExecutionPlanMetricsSet {
        &self.metrics
    }

    fn file_type(&self) -> &str {
        "sgsim text flow log"
    }

    fn fmt_extra(&self, _: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, ", file={}", self.file.ordinal)
    }

    /// A text or gzip file cannot be cut.
    fn supports_repartitioning(&self) -> bool {
        false
    }

    fn apply_expressions(
        &self,
        _: &mut dyn FnMut(
            &Arc<dyn datafusion::physical_expr::PhysicalExpr>,
        ) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }
}

/// Opens the file from its start, read on a blocking thread.
struct TextOpener(TextFile);

impl FileOpener for TextOpener {
    fn open(&self, _: PartitionedFile) -> DfResult<FileOpenFuture> {
        let file = self.0.clone();
        Ok(Box::pin(async move {
            let stream: SendableRecordBatchStream = file.stream();
            Ok(futures::StreamExt::boxed(stream))
        }))
    }
}

impl TextFile {
    /// The file's batches, read on a blocking thread (the reader and gzip block), a batch
    /// or two ahead, once a process-wide permit to read is free.
    fn stream(self) -> SendableRecordBatchStream {
        let schema = text_schema();
        let mut builder = datafusion::physical_plan::stream::RecordBatchReceiverStreamBuilder::new(
            schema.clone(),
            2,
        );
        let tx = builder.tx();
        builder.spawn_blocking(move || {
            let _reading = Reading::wait();
            read(&self, |batch| {
                tx.blocking_send(Ok(batch))
                    .map_err(|_| DataFusionError::Execution("the plan stopped reading".into()))
            })
        });
        let stream = builder.build();
        Box::pin(RecordBatchStreamAdapter::new(schema, stream))
    }
}

/// Reads `file`, handing `send` its batches, then its summary's row.
fn read(file: &TextFile, mut send: impl FnMut(RecordBatch) -> DfResult<()>) -> DfResult<()> {
    let name = file.name();
    let fail = |why: String| DataFusionError::Execution(format!("{name}: {why}"));
    let source = file
        .location
        .open_stream()
        .map_err(|e| fail(e.to_string()))?;
    if !source.is_flow_log() {
        return Err(fail(format!(
            "a {}, not a flow log: --fold plan reads flow logs",
            source.kind()
        )));
    }
    let mut source = source.strict(file.strict);
    let schema = text_schema();
    let ordinal = file.ordinal as i64;
    let (mut row, mut filtered) = (0u64, 0u64);
    let mut items: Vec<Item> = Vec::with_capacity(BATCH);
    loop {
        items.clear();
        let more = source
            .read_chunk(BATCH, &mut items)
            .map_err(|e| fail(e.to_string()))?;
        let (mut src, mut dst, mut rows, mut records) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for item in &items {
            let Item::Flow(r) = item else {
                return Err(fail("a packet in a flow log".into()));
            };
            row += 1;
            if !file.window.is_all() && !file.window.meets(r.start, r.end) {
                filtered += 1;
                continue;
            }
            src.push(r.header.src().to_string());
            dst.push(r.header.dst().to_string());
            rows.push(row);
            let mut w = WireWriter(Vec::new());
            write_record(&mut w, r);
            records.push(w.0);
        }
        if !rows.is_empty() {
            let n = rows.len();
            let columns: Vec<ArrayRef> = vec![
                Arc::new(StringArray::from(src)),
                Arc::new(StringArray::from(dst)),
                Arc::new(Int64Array::from_value(ordinal, n)),
                Arc::new(UInt64Array::from(rows)),
                Arc::new(BinaryArray::from_iter_values(records)),
                Arc::new(BinaryArray::new_null(n)),
            ];
            send(RecordBatch::try_new(schema.clone(), columns)?)?;
        }
        if !more {
            break;
        }
    }
    // The file's summary, the window's records counted as the streaming reader counts them.
    let mut summary = source.summary().clone();
    if filtered > 0 {
        summary.decoded = summary.decoded.saturating_sub(filtered);
        *summary
            .skipped
            .entry(OUTSIDE_WINDOW.to_string())
            .or_default() += filtered;
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::new_null(1)),
        Arc::new(StringArray::new_null(1)),
        Arc::new(Int64Array::from_value(ordinal, 1)),
        Arc::new(UInt64Array::from_value(0, 1)),
        Arc::new(BinaryArray::new_null(1)),
        Arc::new(BinaryArray::from_iter_values([summary_bytes(&summary)])),
    ];
    send(RecordBatch::try_new(schema, columns)?)
}

/// What a file's summary row carries: its counts and its examples.
pub(super) fn summary_bytes(s: &Summary) -> Vec<u8> {
    let mut w = WireWriter(Vec::new());
    super::write_counts(&mut w, s);
    w.u(s.examples.len() as u64);
    for e in &s.examples {
        w.s(e);
    }
    w.0
}

/// Reads a file's summary row back.
pub(super) fn summary_from(bytes: &[u8]) -> Result<Summary, String> {
    let mut r = WireReader {
        b: bytes,
        at: "a text flow log's summary",
    };
    let bad = |e: WireError| e.to_string();
    let mut s = Summary::default();
    super::read_counts(&mut r, &mut s).map_err(bad)?;
    let n = r.count(1).map_err(bad)?;
    for _ in 0..n {
        s.examples.push(r.s().map_err(bad)?);
    }
    if !r.b.is_empty() {
        return Err("a text flow log's summary has bytes past its end".into());
    }
    Ok(s)
}

const WIRE_TABLE: &[u8] = b"sgsim-text-flow-log/1\n";
const WIRE_SCAN: &[u8] = b"sgsim-text-flow-log-scan/1\n";

impl TextFile {
    /// Writes the file's definition. A file is sent to a cluster by its path (every
    /// executor reads the same paths); an object of S3 is read on this machine only.
    fn write(&self, w: &mut WireWriter) -> DfResult<()> {
        let path = match &self.location {
            Location::Path(p) => p,
            #[cfg(feature = "s3")]
            Location::Object(_) => {
                return Err(DataFusionError::Plan(format!(
                    "{}: an s3:// object is read by the plan on this machine only, not on a \
                     cluster",
                    self.name()
                )))
            }
        };
        let bytes = path.as_os_str().as_encoded_bytes();
        w.u(bytes.len() as u64);
        w.0.extend_from_slice(bytes);
        w.s(&self.name);
        w.u(self.ordinal);
        for end in [self.window.since, self.window.until] {
            match end {
                None => w.u(0),
                Some(t) => {
                    w.u(1);
                    w.u(t);
                }
            }
        }
        w.u(u64::from(self.strict));
        Ok(())
    }

    /// Reads what [`TextFile::write`] wrote.
    fn read_from(r: &mut WireReader<'_>) -> Result<TextFile, WireError> {
        let n = r.count(1)?;
        let path =
            r.b.get(..n)
                .ok_or_else(|| WireError("a path past the end".into()))?;
        // On Unix any bytes are a path (a name need not be UTF-8).
        #[cfg(unix)]
        let path = std::path::PathBuf::from(
            <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(path),
        );
        #[cfg(not(unix))]
        let path = std::path::PathBuf::from(
            std::str::from_utf8(path).map_err(|_| WireError("a path that is not UTF-8".into()))?,
        );
        r.b = &r.b[n..];
        let name = r.s()?;
        let ordinal = r.u()?;
        let mut ends = [None, None];
        for end in &mut ends {
            *end = match r.u()? {
                0 => None,
                1 => Some(r.u()?),
                x => return Err(WireError(format!("{x} is not a window's end"))),
            };
        }
        let strict = match r.u()? {
            0 => false,
            1 => true,
            x => return Err(WireError(format!("{x} is not a truth value"))),
        };
        Ok(TextFile {
            location: Location::Path(path),
            name,
            ordinal,
            window: Window {
                since: ends[0],
                until: ends[1],
            },
            strict,
        })
    }
}

/// Writes what a logical plan carries of a [`TextFile`]; `Ok(false)`: not one.
pub(super) fn encode_table(table: &dyn TableProvider, buf: &mut Vec<u8>) -> DfResult<bool> {
    let any: &dyn Any = table;
    let Some(t) = any.downcast_ref::<TextFile>() else {
        return Ok(false);
    };
    let mut w = WireWriter(WIRE_TABLE.to_vec());
    t.write(&mut w)?;
    buf.extend_from_slice(&w.0);
    Ok(true)
}

/// Rebuilds a [`TextFile`] from [`encode_table`]'s bytes; `Ok(None)`: not ours.
pub(super) fn decode_table(buf: &[u8]) -> DfResult<Option<Arc<dyn TableProvider>>> {
    let Some(rest) = buf.strip_prefix(WIRE_TABLE) else {
        return Ok(None);
    };
    let file = whole(rest, "a text flow log's definition")?;
    Ok(Some(Arc::new(file)))
}

/// Reads a whole [`TextFile`] from `bytes`, named `what` in errors.
fn whole(bytes: &[u8], what: &'static str) -> DfResult<TextFile> {
    let mut r = WireReader { b: bytes, at: what };
    let bad = |e: WireError| DataFusionError::Execution(format!("{what} is damaged: {e}"));
    let file = TextFile::read_from(&mut r).map_err(bad)?;
    if !r.b.is_empty() {
        return Err(bad(WireError(format!("{} bytes past its end", r.b.len()))));
    }
    Ok(file)
}

/// Writes what a physical plan carries of a text flow log's scan: the file, and whether
/// this task reads it (a scheduler gives each task its share of a stage's file groups);
/// `Ok(false)`: not one.
pub(super) fn encode_exec(plan: &dyn ExecutionPlan, buf: &mut Vec<u8>) -> DfResult<bool> {
    let any: &dyn Any = plan;
    let Some(config) = any
        .downcast_ref::<DataSourceExec>()
        .and_then(|e| e.data_source().downcast_ref::<FileScanConfig>())
    else {
        return Ok(false);
    };
    let Some(source) = config.file_source().downcast_ref::<TextSource>() else {
        return Ok(false);
    };
    let groups = match config.file_groups.as_slice() {
        [] => 0u8,
        [one] if one.len() == 1 => 1,
        [one] => {
            return Err(DataFusionError::Internal(format!(
                "a text flow log's scan reads one file, not {}",
                one.len()
            )))
        }
        more => {
            return Err(DataFusionError::Internal(format!(
                "a text flow log's scan has one file group, not {}",
                more.len()
            )))
        }
    };
    buf.extend_from_slice(WIRE_SCAN);
    buf.push(groups);
    let mut w = WireWriter(Vec::new());
    source.file.write(&mut w)?;
    buf.extend_from_slice(&w.0);
    Ok(true)
}

/// Rebuilds a text flow log's scan (a leaf: no `inputs`) from [`encode_exec`]'s bytes;
/// `Ok(None)`: not ours.
pub(super) fn decode_exec(
    buf: &[u8],
    inputs: &[Arc<dyn ExecutionPlan>],
) -> DfResult<Option<Arc<dyn ExecutionPlan>>> {
    let Some(rest) = buf.strip_prefix(WIRE_SCAN) else {
        return Ok(None);
    };
    let what = "a text flow log's scan";
    let damaged = |why: String| DataFusionError::Execution(format!("{what} is damaged: {why}"));
    if !inputs.is_empty() {
        return Err(damaged(format!("{} inputs to a scan", inputs.len())));
    }
    let (groups, rest) = match rest.split_first() {
        Some((&g, rest)) if g <= 1 => (g, rest),
        Some((&g, _)) => return Err(damaged(format!("{g} file groups, not 0 or 1"))),
        None => return Err(damaged("no count of file groups".into())),
    };
    Ok(Some(whole(rest, what)?.exec_of(groups)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Array;
    use datafusion::execution::TaskContext;

    /// The table and its scan travel to a cluster by the file's path (a name that is not
    /// UTF-8 too), place and window, with or without their file group; damaged bytes are
    /// an error, never a panic; others' bytes and plans are left alone.
    #[test]
    fn text_flow_logs_travel_to_a_cluster() {
        #[cfg(unix)]
        let path = std::path::PathBuf::from(
            <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(b"/logs/a\xff b.log.gz"),
        );
        #[cfg(not(unix))]
        let path = std::path::PathBuf::from("/logs/a b.log.gz");
        let window = Window {
            since: Some(7),
            until: None,
        };
        let file = TextFile::new(
            Location::Path(path.clone()),
            "logs/a b.log.gz",
            7,
            window,
            true,
        );
        let mut buf = Vec::new();
        assert!(encode_table(&file, &mut buf).unwrap());
        let back = decode_table(&buf).unwrap().unwrap();
        let any: &dyn Any = back.as_ref();
        let back = any.downcast_ref::<TextFile>().unwrap();
        assert!(matches!(&back.location, Location::Path(p) if *p == path));
        assert_eq!(
            (
                back.name.as_str(),
                back.ordinal,
                back.window.since,
                back.window.until,
                back.strict
            ),
            ("logs/a b.log.gz", 7, Some(7), None, true)
        );
        for cut in [WIRE_TABLE.len() + 1, buf.len() / 2, buf.len() - 1] {
            let err = decode_table(&buf[..cut]).err().unwrap().to_string();
            assert!(err.contains("text flow log"), "{err}");
        }
        assert!(decode_table(&[&buf[..], &[0]].concat()).is_err());
        assert!(decode_table(b"other").unwrap().is_none());
        // The scan: one group, or none where a scheduler gave this task none of it.
        for groups in [1u8, 0] {
            let scan = file.exec_of(groups);
            assert_eq!(
                scan.properties().output_partitioning().partition_count(),
                usize::from(groups)
            );
            let mut buf = Vec::new();
            assert!(encode_exec(scan.as_ref(), &mut buf).unwrap());
            let back = decode_exec(&buf, &[]).unwrap().unwrap();
            assert_eq!(
                back.properties().output_partitioning().partition_count(),
                usize::from(groups)
            );
            let mut again = Vec::new();
            assert!(encode_exec(back.as_ref(), &mut again).unwrap());
            assert_eq!(again, buf);
            assert!(decode_exec(&buf[..buf.len() - 1], &[]).is_err());
            // A scan has no inputs.
            assert!(decode_exec(&buf, std::slice::from_ref(&scan)).is_err());
        }
        let mut two = WIRE_SCAN.to_vec();
        two.push(2);
        let err = decode_exec(&two, &[]).err().unwrap().to_string();
        assert!(err.contains("2 file groups"), "{err}");
        assert!(decode_exec(WIRE_SCAN, &[]).is_err());
        assert!(decode_exec(b"other", &[]).unwrap().is_none());
        let empty = datafusion::physical_plan::empty::EmptyExec::new(text_schema());
        assert!(!encode_exec(&empty, &mut Vec::new()).unwrap());
    }

    /// The scan reads the file with the streaming reader: its records, then one row with
    /// the file's summary (a malformed line counted and named by its line).
    #[test]
    fn the_scan_reads_records_then_the_summary() {
        let dir = std::env::temp_dir().join(format!("sgsim-text-scan-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("a.log");
        std::fs::write(
            &log,
            "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n\
             2 123456789012 eni-1 10.0.0.1 10.0.0.2 40000 443 6 3 180 1700000000 1700000060 ACCEPT OK\n\
             bad line\n",
        )
        .unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let rows = |scan: Arc<dyn ExecutionPlan>| -> (usize, Vec<Summary>) {
            rt.block_on(async {
                let ctx = Arc::new(TaskContext::default());
                let batches: Vec<RecordBatch> =
                    futures::TryStreamExt::try_collect(scan.execute(0, ctx).unwrap())
                        .await
                        .unwrap();
                let mut records = 0;
                let mut summaries = Vec::new();
                for b in &batches {
                    let rec = b.column(4).as_any().downcast_ref::<BinaryArray>().unwrap();
                    let sum = b.column(5).as_any().downcast_ref::<BinaryArray>().unwrap();
                    records += rec.len() - rec.null_count();
                    for i in 0..sum.len() {
                        if !sum.is_null(i) {
                            summaries.push(summary_from(sum.value(i)).unwrap());
                        }
                    }
                }
                (records, summaries)
            })
        };
        let file = TextFile::new(
            Location::Path(log.clone()),
            "a.log",
            3,
            Window::default(),
            false,
        );
        let (records, summaries) = rows(file.exec_of(1));
        assert_eq!(records, 1);
        assert_eq!(summaries.len(), 1);
        assert_eq!((summaries[0].records, summaries[0].decoded), (2, 1));
        assert!(
            summaries[0].examples[0].contains("line 3"),
            "{:?}",
            summaries[0]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A file's summary comes back as it went.
    #[test]
    fn summaries_round_trip() {
        let mut s = Summary {
            records: 9,
            decoded: 5,
            ..Summary::default()
        };
        s.skip(&"malformed flow-log line");
        s.skip(&OUTSIDE_WINDOW);
        s.warnings.insert("odd".into(), 2);
        s.example("line 3: 4 fields, the default (v2) format has 14".into());
        let bytes = summary_bytes(&s);
        assert_eq!(summary_from(&bytes).unwrap(), s);
        assert!(summary_from(&bytes[..bytes.len() - 1]).is_err());
        assert!(summary_from(&[&bytes[..], &[0]].concat()).is_err());
    }
}
