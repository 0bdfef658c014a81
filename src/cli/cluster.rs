//! `sgsim cluster scheduler|executor`: a Ballista cluster that scans flow logs for
//! `sgsim whatif … --cluster df://HOST:PORT` (feature `cluster`; see `sgsim::cluster`).

use std::net::SocketAddr;
use std::path::PathBuf;

use super::Exit;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    role: Role,
}

#[derive(clap::Subcommand, Debug)]
enum Role {
    /// Plan scans and hand their tasks to executors (until ctrl-c).
    Scheduler {
        /// Address to listen on; clients and executors connect here.
        #[arg(long, default_value = "127.0.0.1:50050")]
        bind: SocketAddr,
    },
    /// Run scan tasks for a scheduler and serve their results (until ctrl-c).
    Executor {
        /// The scheduler's address.
        #[arg(long, default_value = "127.0.0.1:50050")]
        scheduler: SocketAddr,
        /// Address to serve results on (Arrow Flight), as clients reach it.
        #[arg(long, default_value = "127.0.0.1:50051")]
        bind: SocketAddr,
        /// Tasks at once (default: one per core).
        #[arg(long, default_value_t = 0)]
        tasks: usize,
        /// Where results wait for the client (default: a new folder of a random name
        /// under the system's temporary directory, removed when the executor returns;
        /// a killed executor leaves it).
        #[arg(long, value_name = "DIR")]
        work_dir: Option<PathBuf>,
    },
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match args.role {
        Role::Scheduler { bind } => {
            eprintln!("sgsim: cluster scheduler on {bind}");
            rt.block_on(sgsim::cluster::scheduler(bind, async {
                let _ = tokio::signal::ctrl_c().await;
            }))?;
        }
        Role::Executor {
            scheduler,
            bind,
            tasks,
            work_dir,
        } => {
            // Without --work-dir: a new folder of a random name (never a fixed, guessable
            // path under the shared temporary directory), removed when the executor returns.
            let scratch;
            let dir = match work_dir {
                Some(dir) => dir,
                None => {
                    scratch = tempfile::Builder::new()
                        .prefix("sgsim-executor-")
                        .tempdir()?;
                    scratch.path().to_path_buf()
                }
            };
            let mut config = sgsim::cluster::ExecutorConfig::new(scheduler, bind, dir);
            config.tasks = tasks;
            eprintln!("sgsim: cluster executor on {bind} for the scheduler at {scheduler}");
            rt.block_on(sgsim::cluster::executor(config))?;
        }
    }
    Ok(Exit::Ok)
}
