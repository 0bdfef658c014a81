//! Parquet flow logs scanned by Apache DataFusion (feature `fleet`).
//!
//! A file is read by DataFusion's Parquet source: one plan per file (a projection of the
//! columns sgsim reads), its byte range cut into one partition per core, each partition
//! decoded on its own task of a shared multi-threaded runtime. The partitions cover the
//! file's row groups in order, so handing out partition 0's batches, then partition 1's,
//! and so on gives the file's rows in file order: [`super::parquet::Reader`] names rows,
//! counts skips and feeds the connection what-if exactly as with its own row-group
//! reader, and the report is the same field for field (the tests compare them).
//!
//! Each partition sends its batches through a channel of [`AHEAD`] batches, so the
//! partitions after the one being read decode ahead in parallel and then wait: memory is
//! bounded by partitions × `AHEAD` batches, whatever the file's size. A partition that
//! fails or panics, or a scan that ends before the footer's row count, hands over to the
//! row-group reader at the row group where it stopped: a damaged file gives what the
//! row-group reader gives, and no row is lost silently.
//!
//! This is the scan of the streaming what-if (`--scan datafusion`): the records come back in
//! file order and the connection fold runs in this process, partitioned by connection on
//! the rayon pool. The whole what-if as one DataFusion plan, the fold being the plan's
//! aggregation, is [`crate::whatif::fold`] (`--fold plan`).

use std::path::Path;
use std::sync::{Arc, OnceLock};

use arrow_array::RecordBatch;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::parquet::ParquetAccessPlan;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::execution::options::ParquetReadOptions;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::StreamExt;
use tokio::runtime::Runtime;
use tokio::sync::mpsc::Receiver;
use tokio::task::JoinHandle;

/// The session setting that keeps each scan partition on its planned byte range (off:
/// work stealing would let a partition read a sibling's range).
pub const NO_WORK_STEALING: &str = "datafusion.execution.enable_file_stream_work_stealing";

/// Batches each partition decodes ahead of the one being read.
pub const AHEAD: usize = 2;

/// A file below this size is still cut into partitions (DataFusion's default, 10 MiB,
/// would leave an hourly flow-log file on one core).
pub const MIN_SPLIT: usize = 1 << 20;

/// The runtime every scan runs on (one worker per core).
fn runtime() -> Result<&'static Runtime, String> {
    static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .thread_name("sgsim-scan")
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the scan runtime: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// The session a scan plans in: one partition per core, batches of
/// [`super::parquet::BATCH`] rows, strings as read (views are read like text).
fn context() -> SessionContext {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let config = SessionConfig::new()
        .with_target_partitions(cores)
        .with_batch_size(super::parquet::BATCH)
        .with_repartition_file_scans(true)
        .with_repartition_file_min_size(MIN_SPLIT)
        // Each partition reads only the byte range it was planned with, so the partitions
        // in order are the file in order (work stealing would let a partition read a
        // sibling's range).
        .set_bool(NO_WORK_STEALING, false);
    SessionContext::new_with_config(config)
}

/// `plan` with its scan of one Parquet file reading only the row groups `skip` does not
/// mark (a `ParquetAccessPlan` on the file): `None` where no group is marked, or the plan's
/// leaf is not DataFusion's Parquet scan of one file (the scan then reads every group).
/// The access plan is the file's extension, which a plan's codec does not carry: a plan
/// that travels to a cluster is given it again where it is rebuilt.
pub(crate) fn skip_row_groups(
    plan: &Arc<dyn ExecutionPlan>,
    skip: &[bool],
) -> datafusion::error::Result<Option<Arc<dyn ExecutionPlan>>> {
    if !skip.iter().any(|&s| s) {
        return Ok(None);
    }
    let mut access = ParquetAccessPlan::new_all(skip.len());
    for (g, _) in skip.iter().enumerate().filter(|(_, &s)| s) {
        access.skip(g);
    }
    let mut scans = 0;
    let rewritten = Arc::clone(plan).transform_down(|node| {
        let any: &dyn std::any::Any = node.as_ref();
        let Some((config, _)) = any
            .downcast_ref::<DataSourceExec>()
            .and_then(|exec| exec.downcast_to_file_source::<ParquetSource>())
        else {
            return Ok(Transformed::no(node));
        };
        let files: Vec<&PartitionedFile> =
            config.file_groups.iter().flat_map(|g| g.iter()).collect();
        let one = files.first().is_some_and(|first| {
            files
                .iter()
                .all(|f| f.object_meta.location == first.object_meta.location)
        });
        if !one {
            return Ok(Transformed::no(node));
        }
        scans += 1;
        let groups = config
            .file_groups
            .iter()
            .map(|g| {
                FileGroup::new(
                    g.iter()
                        .map(|f| f.clone().with_extension(access.clone()))
                        .collect(),
                )
            })
            .collect();
        let config = FileScanConfigBuilder::from(config.clone())
            .with_file_groups(groups)
            .build();
        let exec: Arc<dyn ExecutionPlan> = DataSourceExec::from_data_source(config);
        Ok(Transformed::yes(exec))
    })?;
    Ok((scans == 1).then_some(rewritten.data))
}

/// Partitions of a file scanned on a cluster (one task each).
#[cfg(feature = "cluster")]
pub const REMOTE_PARTITIONS: usize = 8;

/// `path` as the absolute, UTF-8 location DataFusion reads.
fn absolute(path: &Path) -> Result<String, String> {
    Ok(path
        .canonicalize()
        .map_err(|e| e.to_string())?
        .to_str()
        .ok_or("the path is not UTF-8")?
        .to_string())
}

/// Parquet options that take any file name (the caller has checked the magic bytes), with
/// the file's schema as sgsim reads it when given (text columns as dictionaries: see
/// `parquet::dict`); DataFusion then hands over dictionary arrays, cast on its own tasks.
fn options(schema: Option<&arrow_schema::Schema>) -> ParquetReadOptions<'_> {
    ParquetReadOptions {
        file_extension: "",
        schema,
        ..Default::default()
    }
}

fn names(columns: &[String]) -> Vec<&str> {
    columns.iter().map(String::as_str).collect()
}

/// One partition: its batches, and its task until it is known to have ended well.
type Part = (
    Receiver<Result<RecordBatch, String>>,
    Option<JoinHandle<()>>,
);

/// The batches of one file, in row order.
pub struct Batches {
    parts: Vec<Part>,
    current: usize,
    remote: bool,
    /// The scan leaves out the row groups it was asked to skip.
    skipped: bool,
}

impl Batches {
    /// Plans the scan of `path` (the columns `columns`, by name), the row groups `skip`
    /// marks left out, and starts every partition.
    pub fn open(
        path: &Path,
        columns: &[String],
        schema: Option<&arrow_schema::Schema>,
        skip: &[bool],
    ) -> Result<Batches, String> {
        let rt = runtime()?;
        let location = absolute(path)?;
        let (streams, skipped) = rt
            .block_on(async {
                let frame = context().read_parquet(location, options(schema)).await?;
                let frame = frame.select_columns(&names(columns))?;
                let task = Arc::new(frame.task_ctx());
                let plan = frame.create_physical_plan().await?;
                let (plan, skipped) = match skip_row_groups(&plan, skip)? {
                    Some(skips) => (skips, true),
                    None => (plan, false),
                };
                let streams = datafusion::physical_plan::execute_stream_partitioned(plan, task)?;
                Ok::<_, datafusion::error::DataFusionError>((streams, skipped))
            })
            .map_err(|e| e.to_string())?;
        let mut batches = Batches::start(rt, streams, false);
        batches.skipped = skipped;
        Ok(batches)
    }

    /// Submits the scan of `path` to the Ballista cluster at `url` (`df://HOST:PORT`):
    /// one job whose partitions come back one after another in partition order.
    #[cfg(feature = "cluster")]
    pub fn open_remote(
        url: &str,
        path: &Path,
        columns: &[String],
        schema: Option<&arrow_schema::Schema>,
    ) -> Result<Batches, String> {
        use ballista::prelude::{SessionConfigExt, SessionContextExt};
        use datafusion::execution::SessionStateBuilder;
        let rt = runtime()?;
        let location = absolute(path)?;
        let stream = rt
            .block_on(async {
                // Ballista ships these settings with every task.
                let config = SessionConfig::new_with_ballista()
                    .with_target_partitions(REMOTE_PARTITIONS)
                    .with_batch_size(super::parquet::BATCH)
                    .with_repartition_file_scans(true)
                    .with_repartition_file_min_size(MIN_SPLIT)
                    .set_bool(NO_WORK_STEALING, false);
                let state = SessionStateBuilder::new()
                    .with_config(config)
                    .with_default_features()
                    .build();
                let ctx = SessionContext::remote_with_state(url, state).await?;
                let frame = ctx.read_parquet(location, options(schema)).await?;
                frame
                    .select_columns(&names(columns))?
                    .execute_stream()
                    .await
            })
            .map_err(|e| e.to_string())?;
        Ok(Batches::start(rt, vec![stream], true))
    }

    /// Starts a task per stream, each sending its batches through its own channel.
    fn start(rt: &Runtime, streams: Vec<SendableRecordBatchStream>, remote: bool) -> Batches {
        let parts = streams
            .into_iter()
            .map(|mut stream| {
                let (tx, rx) = tokio::sync::mpsc::channel(AHEAD);
                let task = rt.spawn(async move {
                    while let Some(batch) = stream.next().await {
                        let failed = batch.is_err();
                        if tx.send(batch.map_err(|e| e.to_string())).await.is_err() || failed {
                            break;
                        }
                    }
                });
                (rx, Some(task))
            })
            .collect();
        Batches {
            parts,
            current: 0,
            remote,
            skipped: false,
        }
    }

    /// Whether the scan leaves out the row groups [`Batches::open`] was asked to skip
    /// (else it reads every row group).
    pub fn skips(&self) -> bool {
        self.skipped
    }

    /// Whether a cluster runs the scan (a failure there is the cluster's, not the
    /// file's: it is an error, not a damaged row group).
    pub fn is_remote(&self) -> bool {
        self.remote
    }

    /// The next batch in row order; `None` at the end of the file.
    pub fn next_batch(&mut self) -> Option<Result<RecordBatch, String>> {
        while let Some((rx, task)) = self.parts.get_mut(self.current) {
            if let Some(batch) = rx.blocking_recv() {
                return Some(batch);
            }
            // The partition is done: it ended, or its task failed (a panic drops the
            // sender too).
            if let Some(task) = task.take() {
                if let Err(e) = runtime().ok()?.block_on(task) {
                    return Some(Err(format!(
                        "partition {} of the scan failed: {e}",
                        self.current
                    )));
                }
            }
            self.current += 1;
        }
        None
    }
}

impl Drop for Batches {
    fn drop(&mut self) {
        // Dropping the receivers stops the tasks at their next send; abort them now.
        for (_, task) in &mut self.parts {
            if let Some(task) = task.take() {
                task.abort();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::cast::AsArray;
    use arrow_array::types::Int64Type;
    use arrow_array::Int64Array;
    use parquet::arrow::ArrowWriter;
    use parquet::file::properties::WriterProperties;

    use super::*;

    /// A file several times [`MIN_SPLIT`] with many row groups is cut into one partition
    /// per core, and the partitions hand its rows out in file order.
    #[test]
    fn partitions_hand_out_rows_in_file_order() {
        let rows: i64 = 600_000;
        let schema = Arc::new(arrow_schema::Schema::new(vec![
            arrow_schema::Field::new("n", arrow_schema::DataType::Int64, false),
            arrow_schema::Field::new("pad", arrow_schema::DataType::Int64, false),
        ]));
        let dir = std::env::temp_dir().join(format!("sgsim-fleet-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("rows.bin");
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(7_001))
            .set_dictionary_enabled(false)
            .build();
        let mut w = ArrowWriter::try_new(
            std::fs::File::create(&path).unwrap(),
            schema.clone(),
            Some(props),
        )
        .unwrap();
        for lo in (0..rows).step_by(50_000) {
            let n = Int64Array::from_iter_values(lo..(lo + 50_000).min(rows));
            let pad = Int64Array::from_iter_values((lo..(lo + 50_000).min(rows)).map(|x| x * 7919));
            w.write(
                &RecordBatch::try_new(schema.clone(), vec![Arc::new(n), Arc::new(pad)]).unwrap(),
            )
            .unwrap();
        }
        w.close().unwrap();
        assert!(std::fs::metadata(&path).unwrap().len() > 4 * MIN_SPLIT as u64);

        let mut batches = Batches::open(&path, &["n".to_string()], None, &[]).unwrap();
        assert!(!batches.skips());
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert!(
            batches.parts.len() > 1 || cores == 1,
            "{} partitions",
            batches.parts.len()
        );
        let mut next = 0i64;
        while let Some(b) = batches.next_batch() {
            let b = b.unwrap();
            assert_eq!(b.num_columns(), 1);
            for v in b.column(0).as_primitive::<Int64Type>().values() {
                assert_eq!(*v, next);
                next += 1;
            }
        }
        assert_eq!(next, rows);
        // Row groups skipped (every third, and the last): the others' rows, in order.
        let groups = (rows as usize).div_ceil(7_001);
        let skip: Vec<bool> = (0..groups).map(|g| g % 3 == 1 || g == groups - 1).collect();
        let mut batches = Batches::open(&path, &["n".to_string()], None, &skip).unwrap();
        assert!(batches.skips());
        let mut expected = (0..rows).filter(|n| !skip[(n / 7_001) as usize]);
        let mut got = 0;
        while let Some(b) = batches.next_batch() {
            for v in b.unwrap().column(0).as_primitive::<Int64Type>().values() {
                assert_eq!(Some(*v), expected.next());
                got += 1;
            }
        }
        assert_eq!(expected.next(), None, "after {got} rows");
        // A skip of the wrong length is the scan's error, never rows of the wrong groups.
        let mut batches = Batches::open(&path, &["n".to_string()], None, &[true]);
        if let Ok(b) = &mut batches {
            assert!(b.next_batch().is_some_and(|r| r.is_err()));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
