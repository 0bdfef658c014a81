//! A text flow log (AWS space-separated or CSV, Alibaba JSON lines or CSV; plain or gzip)
//! as a table of the plan, read by sgsim's own reader so that the plan reads what the
//! streaming path reads: the same records, skips, warnings and examples.
//!
//! [`TextFile`] is the table; its scan is [`TextScan`], one partition that reads the file
//! from its start (a text or gzip file cannot be cut), on a blocking thread, as batches of:
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
//! The scan runs on this machine only: a plan holding one is refused on the way to a
//! Ballista cluster ([`not_remote`]), whose scheduler cannot give each task its share of
//! a scan it does not know.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use arrow_array::{ArrayRef, BinaryArray, Int64Array, RecordBatch, StringArray, UInt64Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::Result as DfResult;
use datafusion::error::DataFusionError;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, TableType};
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};

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
        let scan: Arc<dyn ExecutionPlan> = Arc::new(TextScan::new(self.clone()));
        match projection {
            Some(columns) => super::numbered::projected(scan, columns.iter().copied()),
            None => Ok(scan),
        }
    }
}

/// The scan: the file read from its start, one partition.
#[derive(Debug)]
pub(super) struct TextScan {
    file: TextFile,
    properties: Arc<PlanProperties>,
}

impl TextScan {
    fn new(file: TextFile) -> TextScan {
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(text_schema()),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        TextScan { file, properties }
    }
}

impl DisplayAs for TextScan {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TextFlowLog: file={}", self.file.ordinal)
    }
}

impl ExecutionPlan for TextScan {
    fn name(&self) -> &str {
        "TextFlowLog"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn apply_expressions(
        &self,
        _: &mut dyn FnMut(
            &Arc<dyn datafusion::physical_expr::PhysicalExpr>,
        ) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        if children.is_empty() {
            Ok(self)
        } else {
            Err(DataFusionError::Internal(
                "a text flow log's scan has no inputs".into(),
            ))
        }
    }

    fn execute(
        &self,
        partition: usize,
        _: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        if partition != 0 {
            return Err(DataFusionError::Internal(format!(
                "a text flow log's scan has one partition, not {partition}"
            )));
        }
        let schema = text_schema();
        let file = self.file.clone();
        // Read on a blocking thread (the reader and gzip block), a batch or two ahead.
        let mut builder = datafusion::physical_plan::stream::RecordBatchReceiverStreamBuilder::new(
            schema.clone(),
            2,
        );
        let tx = builder.tx();
        builder.spawn_blocking(move || {
            let _reading = Reading::wait();
            read(&file, |batch| {
                tx.blocking_send(Ok(batch))
                    .map_err(|_| DataFusionError::Execution("the plan stopped reading".into()))
            })
        });
        let stream = builder.build();
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
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

/// Why a plan holding a text flow log cannot go to a cluster, `None` when `table` is not
/// one. A Ballista scheduler gives each task its slice of a union by cutting the union's
/// leaves it knows (file scans) to no partition; it does not know this scan, so every
/// task would read every text file (measured: a day of 24 gzip files counted 22 times;
/// with a known leaf beneath it, files went missing and jobs hung).
pub(super) fn not_remote(table: &dyn TableProvider) -> Option<String> {
    let any: &dyn Any = table;
    any.downcast_ref::<TextFile>().map(TextFile::remote_refusal)
}

/// [`not_remote`] for the scan.
pub(super) fn scan_not_remote(plan: &dyn ExecutionPlan) -> Option<String> {
    let any: &dyn Any = plan;
    any.downcast_ref::<TextScan>()
        .map(|s| s.file.remote_refusal())
}

impl TextFile {
    fn remote_refusal(&self) -> String {
        format!(
            "{}: a text flow log is read by the plan on this machine only, not on a cluster \
             (run --fold plan without --cluster, or convert the logs to Parquet)",
            self.name()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Array;

    /// The table and its scan refuse to travel to a cluster, naming the file; others
    /// are left alone.
    #[test]
    fn text_flow_logs_do_not_travel_to_a_cluster() {
        let file = TextFile::new(
            Location::Path("/logs/a b.log.gz".into()),
            "logs/a b.log.gz",
            7,
            Window::default(),
            false,
        );
        let why = not_remote(&file).unwrap();
        assert!(
            why.contains("logs/a b.log.gz") && !why.contains("/logs") && why.contains("cluster"),
            "{why}"
        );
        let scan = TextScan::new(file);
        assert_eq!(scan_not_remote(&scan), Some(why));
        let empty = datafusion::physical_plan::empty::EmptyExec::new(text_schema());
        assert!(scan_not_remote(&empty).is_none());
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
        let rows = |scan: TextScan| -> (usize, Vec<Summary>) {
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
        let (records, summaries) = rows(TextScan::new(file));
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
