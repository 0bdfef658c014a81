//! A Ballista cluster for flow-log scans (feature `cluster`): `sgsim cluster scheduler`
//! and `sgsim cluster executor` run Apache Ballista's scheduler and executor in process,
//! and [`crate::packet::fleet`] submits a file's scan to them (`--cluster URL`).
//!
//! # What runs where
//!
//! The client (`sgsim whatif … --cluster df://HOST:PORT`) plans one job per Parquet file:
//! a projection of the columns sgsim reads. The scheduler lists the file and cuts it into
//! byte ranges, one task per range; each executor decodes its ranges and keeps the result
//! for the client, which fetches the job's partitions one after another in partition
//! order (Ballista's adaptive planner, its default) and judges the records as a local
//! scan hands them out. So the report is the local one, field for field (the tests run a
//! scheduler and two executors on 127.0.0.1 and compare).
//!
//! Every process must read the same absolute paths (a shared filesystem, or the same
//! copy on every machine): the client reads the footer, the scheduler lists the file and
//! the executors read their ranges. File-stream work stealing is switched off in the
//! client's session (Ballista ships the client's settings with each task), so a task's
//! partitions read exactly the ranges they were planned with, in order.
//!
//! Tasks are pulled by executors (Ballista's pull-staged policy): an executor needs only
//! the scheduler's address, and the scheduler none of the executors'.
//!
//! # The what-if as a plan
//!
//! `sgsim whatif … --cluster URL --fold plan` ([`crate::whatif::fold`]) submits the whole
//! what-if: the executors scan the files, judge the records and fold each bucket of
//! connections (the aggregate `sgsim_fold`, grouped by `sgsim_bucket`), and the client
//! merges one total per bucket. The aggregate carries both states and the what-if's
//! settings in the plan, through the same codecs as the SQL functions below.
//!
//! # SQL with the verdict functions
//!
//! `sgsim query … --cluster URL` ([`crate::whatif::sql`]) submits whole queries. Its
//! functions judge records in a state, which the executors were never given: the
//! [`LogicalCodec`] and [`PhysicalCodec`] (Ballista's, plus sgsim's functions), installed
//! in the client ([`client`]), the scheduler and every executor, write each function into
//! the plan with its state and rebuild it from those bytes on the other side.

use std::net::SocketAddr;
use std::sync::Arc;

use ballista_core::config::TaskSchedulingPolicy;
use ballista_core::extension::SessionConfigExt;
use ballista_core::serde::{BallistaLogicalExtensionCodec, BallistaPhysicalExtensionCodec};
use ballista_executor::executor_process::{start_executor_process, ExecutorProcessConfig};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::{create_scheduler, start_grpc_service_with_listener};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::common::{Result as DfResult, TableReference};
use datafusion::datasource::file_format::FileFormatFactory;
use datafusion::error::DataFusionError;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{AggregateUDF, Extension, LogicalPlan, ScalarUDF, WindowUDF};
use datafusion::physical_expr_common::physical_expr::proto_decode::PhysicalExprDecodeCtx;
use datafusion::physical_expr_common::physical_expr::proto_encode::PhysicalExprEncodeCtx;
use datafusion::physical_plan::{ExecutionPlan, PhysicalExpr};
use datafusion::prelude::SessionConfig;
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use datafusion_proto::protobuf::{LogicalPlanNode, PhysicalPlanNode};

pub use crate::packet::fleet::NO_WORK_STEALING;

/// Why a cluster process stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The address cannot be bound.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// Ballista reported an error.
    #[error("ballista: {0}")]
    Ballista(String),
}

/// An executor's settings.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ExecutorConfig {
    /// The scheduler's address.
    pub scheduler: SocketAddr,
    /// Where the executor serves results (Arrow Flight); the address it is reached at.
    pub bind: SocketAddr,
    /// Tasks run at once (0: one per core).
    pub tasks: usize,
    /// Where results wait for the client.
    pub work_dir: std::path::PathBuf,
}

impl ExecutorConfig {
    /// An executor of `scheduler` serving on `bind`, one task per core, results in
    /// `work_dir`.
    pub fn new(scheduler: SocketAddr, bind: SocketAddr, work_dir: std::path::PathBuf) -> Self {
        ExecutorConfig {
            scheduler,
            bind,
            tasks: 0,
            work_dir,
        }
    }
}

/// Ballista's logical codec, plus sgsim's SQL functions ([`crate::whatif::sql`]) carried
/// in the plan with their states.
#[derive(Debug)]
pub struct LogicalCodec(Arc<dyn LogicalExtensionCodec>);

/// Ballista's physical codec, plus sgsim's SQL functions.
#[derive(Debug)]
pub struct PhysicalCodec(Arc<dyn PhysicalExtensionCodec>);

impl Default for LogicalCodec {
    fn default() -> Self {
        LogicalCodec(Arc::new(BallistaLogicalExtensionCodec::default()))
    }
}

impl Default for PhysicalCodec {
    fn default() -> Self {
        PhysicalCodec(Arc::new(BallistaPhysicalExtensionCodec::default()))
    }
}

/// Writes `node` when it is one of sgsim's functions, else lets `next` (Ballista's codec).
fn encode_udf(
    node: &ScalarUDF,
    buf: &mut Vec<u8>,
    next: impl FnOnce(&ScalarUDF, &mut Vec<u8>) -> DfResult<()>,
) -> DfResult<()> {
    if crate::whatif::sql::encode_udf(node, buf).map_err(DataFusionError::Execution)?
        || crate::whatif::fold::encode_udf(node, buf)
    {
        return Ok(());
    }
    next(node, buf)
}

/// Rebuilds function `name` when `buf` is one of sgsim's, else asks `next`.
fn decode_udf(
    name: &str,
    buf: &[u8],
    next: impl FnOnce(&str, &[u8]) -> DfResult<Arc<ScalarUDF>>,
) -> DfResult<Arc<ScalarUDF>> {
    if let Some(f) = crate::whatif::fold::decode_udf(buf) {
        return Ok(f);
    }
    match crate::whatif::sql::decode_udf(name, buf).map_err(DataFusionError::Execution)? {
        Some(f) => Ok(f),
        None => next(name, buf),
    }
}

/// Writes the what-if fold when `node` is it, else asks `next`.
fn encode_udaf(
    node: &AggregateUDF,
    buf: &mut Vec<u8>,
    next: impl FnOnce(&AggregateUDF, &mut Vec<u8>) -> DfResult<()>,
) -> DfResult<()> {
    if crate::whatif::fold::encode_udaf(node, buf).map_err(DataFusionError::Execution)? {
        return Ok(());
    }
    next(node, buf)
}

/// Rebuilds the what-if fold when `buf` is it, else asks `next`.
fn decode_udaf(
    name: &str,
    buf: &[u8],
    next: impl FnOnce(&str, &[u8]) -> DfResult<Arc<AggregateUDF>>,
) -> DfResult<Arc<AggregateUDF>> {
    match crate::whatif::fold::decode_udaf(buf).map_err(DataFusionError::Execution)? {
        Some(f) => Ok(f),
        None => next(name, buf),
    }
}

impl LogicalExtensionCodec for LogicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[LogicalPlan],
        ctx: &TaskContext,
    ) -> DfResult<Extension> {
        self.0.try_decode(buf, inputs, ctx)
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> DfResult<()> {
        self.0.try_encode(node, buf)
    }

    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        table_ref: &TableReference,
        schema: SchemaRef,
        ctx: &TaskContext,
    ) -> DfResult<Arc<dyn TableProvider>> {
        if let Some(t) = crate::whatif::fold::decode_table(buf, &schema)? {
            return Ok(t);
        }
        self.0
            .try_decode_table_provider(buf, table_ref, schema, ctx)
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> DfResult<()> {
        if crate::whatif::fold::encode_table(node.as_ref(), buf)? {
            return Ok(());
        }
        self.0.try_encode_table_provider(table_ref, node, buf)
    }

    fn try_decode_file_format(
        &self,
        buf: &[u8],
        ctx: &TaskContext,
    ) -> DfResult<Arc<dyn FileFormatFactory>> {
        self.0.try_decode_file_format(buf, ctx)
    }

    fn try_encode_file_format(
        &self,
        buf: &mut Vec<u8>,
        node: Arc<dyn FileFormatFactory>,
    ) -> DfResult<()> {
        self.0.try_encode_file_format(buf, node)
    }

    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> DfResult<Arc<ScalarUDF>> {
        decode_udf(name, buf, |n, b| self.0.try_decode_udf(n, b))
    }

    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> DfResult<()> {
        encode_udf(node, buf, |n, b| self.0.try_encode_udf(n, b))
    }

    fn try_decode_udaf(&self, name: &str, buf: &[u8]) -> DfResult<Arc<AggregateUDF>> {
        decode_udaf(name, buf, |n, b| self.0.try_decode_udaf(n, b))
    }

    fn try_encode_udaf(&self, node: &AggregateUDF, buf: &mut Vec<u8>) -> DfResult<()> {
        encode_udaf(node, buf, |n, b| self.0.try_encode_udaf(n, b))
    }

    fn try_decode_udwf(&self, name: &str, buf: &[u8]) -> DfResult<Arc<WindowUDF>> {
        self.0.try_decode_udwf(name, buf)
    }

    fn try_encode_udwf(&self, node: &WindowUDF, buf: &mut Vec<u8>) -> DfResult<()> {
        self.0.try_encode_udwf(node, buf)
    }
}

impl PhysicalExtensionCodec for PhysicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        converter: &dyn PhysicalProtoConverterExtension,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        if let Some(plan) = crate::whatif::fold::decode_exec(buf, inputs)? {
            return Ok(plan);
        }
        self.0.try_decode(buf, inputs, ctx, converter)
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        converter: &dyn PhysicalProtoConverterExtension,
    ) -> DfResult<()> {
        if crate::whatif::fold::encode_exec(node.as_ref(), buf)? {
            return Ok(());
        }
        self.0.try_encode(node, buf, converter)
    }

    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> DfResult<Arc<ScalarUDF>> {
        decode_udf(name, buf, |n, b| self.0.try_decode_udf(n, b))
    }

    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> DfResult<()> {
        encode_udf(node, buf, |n, b| self.0.try_encode_udf(n, b))
    }

    fn try_decode_expr(
        &self,
        node: &[u8],
        inputs: &[Arc<dyn PhysicalExpr>],
        ctx: &PhysicalExprDecodeCtx<'_>,
    ) -> DfResult<Arc<dyn PhysicalExpr>> {
        self.0.try_decode_expr(node, inputs, ctx)
    }

    fn try_encode_expr(
        &self,
        node: &Arc<dyn PhysicalExpr>,
        buf: &mut Vec<u8>,
        ctx: &PhysicalExprEncodeCtx<'_>,
    ) -> DfResult<()> {
        self.0.try_encode_expr(node, buf, ctx)
    }

    fn try_decode_udaf(&self, name: &str, buf: &[u8]) -> DfResult<Arc<AggregateUDF>> {
        decode_udaf(name, buf, |n, b| self.0.try_decode_udaf(n, b))
    }

    fn try_encode_udaf(&self, node: &AggregateUDF, buf: &mut Vec<u8>) -> DfResult<()> {
        encode_udaf(node, buf, |n, b| self.0.try_encode_udaf(n, b))
    }

    fn try_decode_udwf(&self, name: &str, buf: &[u8]) -> DfResult<Arc<WindowUDF>> {
        self.0.try_decode_udwf(name, buf)
    }

    fn try_encode_udwf(&self, node: &WindowUDF, buf: &mut Vec<u8>) -> DfResult<()> {
        self.0.try_encode_udwf(node, buf)
    }
}

/// A client session on the cluster whose scheduler is at `url` (`df://HOST:PORT`), with
/// sgsim's codecs, so the SQL functions travel in the plans it submits.
pub async fn client(url: &str) -> Result<datafusion::prelude::SessionContext, Error> {
    use ballista::prelude::SessionContextExt;
    use datafusion::execution::SessionStateBuilder;
    let config = SessionConfig::new_with_ballista()
        .with_ballista_logical_extension_codec(Arc::new(LogicalCodec::default()))
        .with_ballista_physical_extension_codec(Arc::new(PhysicalCodec::default()))
        .set_bool(NO_WORK_STEALING, false);
    let state = SessionStateBuilder::new()
        .with_config(config)
        .with_default_features()
        .build();
    datafusion::prelude::SessionContext::remote_with_state(url, state)
        .await
        .map_err(|e| Error::Ballista(e.to_string()))
}

/// Runs a scheduler on `bind` until `shutdown` completes.
pub async fn scheduler(
    bind: SocketAddr,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), Error> {
    let ballista = |e: ballista_core::error::BallistaError| Error::Ballista(e.to_string());
    let config = SchedulerConfig::default()
        .with_hostname(bind.ip().to_string())
        .with_port(bind.port())
        .with_scheduler_policy(TaskSchedulingPolicy::PullStaged);
    let config = Arc::new(SchedulerConfig {
        override_logical_codec: Some(Arc::new(LogicalCodec::default())),
        override_physical_codec: Some(Arc::new(PhysicalCodec::default())),
        ..config
    });
    let cluster = BallistaCluster::new_from_config(&config)
        .await
        .map_err(ballista)?;
    let server = create_scheduler::<LogicalPlanNode, PhysicalPlanNode>(cluster, config)
        .await
        .map_err(ballista)?;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|source| Error::Bind { addr: bind, source })?;
    tokio::select! {
        r = start_grpc_service_with_listener(listener, server) => r.map_err(ballista),
        () = shutdown => Ok(()),
    }
}

/// Runs an executor until it is stopped (Ballista handles ctrl-c and SIGTERM itself).
pub async fn executor(config: ExecutorConfig) -> Result<(), Error> {
    std::fs::create_dir_all(&config.work_dir)
        .map_err(|e| Error::Ballista(format!("work dir {}: {e}", config.work_dir.display())))?;
    let process = ExecutorProcessConfig {
        bind_host: config.bind.ip().to_string(),
        external_host: Some(config.bind.ip().to_string()),
        port: config.bind.port(),
        scheduler_host: config.scheduler.ip().to_string(),
        scheduler_port: config.scheduler.port(),
        // Retried every 500 ms until the scheduler answers.
        scheduler_connect_timeout_seconds: 30,
        vcores: config.tasks,
        task_scheduling_policy: TaskSchedulingPolicy::PullStaged,
        work_dir: Some(config.work_dir.display().to_string()),
        override_config_producer: Some(Arc::new(|| {
            SessionConfig::new_with_ballista().set_bool(NO_WORK_STEALING, false)
        })),
        override_logical_codec: Some(Arc::new(LogicalCodec::default())),
        override_physical_codec: Some(Arc::new(PhysicalCodec::default())),
        ..Default::default()
    };
    start_executor_process(Arc::new(process))
        .await
        .map_err(|e| Error::Ballista(e.to_string()))
}
