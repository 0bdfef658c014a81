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

use std::net::SocketAddr;
use std::sync::Arc;

use ballista_core::config::TaskSchedulingPolicy;
use ballista_core::extension::SessionConfigExt;
use ballista_executor::executor_process::{start_executor_process, ExecutorProcessConfig};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::{create_scheduler, start_grpc_service_with_listener};
use datafusion::prelude::SessionConfig;
use datafusion_proto::protobuf::{LogicalPlanNode, PhysicalPlanNode};

/// The session setting that keeps each scan partition on its planned byte range.
pub const NO_WORK_STEALING: &str = "datafusion.execution.enable_file_stream_work_stealing";

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
    let config = Arc::new(config);
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
        ..Default::default()
    };
    start_executor_process(Arc::new(process))
        .await
        .map_err(|e| Error::Ballista(e.to_string()))
}
