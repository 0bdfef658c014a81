//! `sgsim serve`: the clouds' own APIs on localhost.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;

use super::revoke::StateArgs;
use super::Exit;
use sgsim::serve::{self, sign::Credentials, store::Store};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    state: StateArgs,
    /// Address to listen on (loopback only; port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8787")]
    bind: SocketAddr,
    /// Traffic judged before and after in /sgsim/report.json|html (repeatable).
    #[arg(long, value_name = "PATH")]
    traffic: Vec<PathBuf>,
    /// Keep the session here: the state after each change (written atomically) and the
    /// log of changes; a restart resumes it.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Verify signatures with these credentials ('ACCESS_KEY_ID SECRET' lines or a JSON
    /// object); without it signatures are accepted as sent.
    #[arg(long, value_name = "FILE")]
    credentials: Option<PathBuf>,
    /// Largest request body, bytes.
    #[arg(long, default_value_t = 1 << 20)]
    max_body: usize,
    /// Do not print one line per request.
    #[arg(long)]
    quiet: bool,
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    let state = args.state.load()?;
    let credentials = match &args.credentials {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read {}", p.display()))?;
            Some(Credentials::parse(&text).with_context(|| p.display().to_string())?)
        }
        None => None,
    };
    let (store, resumed) = Store::open(state, args.data.as_deref())?;
    if let (Some(n), Some(dir)) = (resumed, &args.data) {
        eprintln!(
            "sgsim serve: resumed the session in {} ({n} changes); its saved baseline is used, not --state",
            dir.display()
        );
    }
    let traffic: Option<serve::TrafficHook> = if args.traffic.is_empty() {
        None
    } else {
        let paths = args.traffic.clone();
        Some(Arc::new(
            move |plan: &mut sgsim::whatif::Plan, before: &sgsim::model::State| {
                let config = sgsim::whatif::traffic::Config::default()
                    .with_partitions((rayon::current_num_threads() * 4).max(1));
                super::whatif::judge_traffic(plan, before, &paths, Default::default(), None, config)
                    .map_err(|e| format!("{e:#}"))
            },
        ))
    };
    let mut config = serve::Config::new(store);
    config.credentials = credentials;
    config.traffic = traffic;
    config.limits.body = args.max_body;
    config.log = !args.quiet;
    serve::run(config, args.bind, |addr| {
        eprintln!("sgsim serve: listening on http://{addr}/ (EC2 Query and ECS RPC at /, session at /sgsim/)");
    })?;
    eprintln!("sgsim serve: stopped");
    Ok(Exit::Ok)
}
