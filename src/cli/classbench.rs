//! `sgsim classbench`: first-match lookups over a ClassBench filter set and trace.

use std::path::PathBuf;
use std::time::Instant;

use rayon::prelude::*;
use serde_json::json;

use super::Exit;
use sgsim::classbench::{self, POINT};
use sgsim::classify::reference::Reference;
use sgsim::classify::{By, Engine, Point, Verdict};
use sgsim::compile::{compile, Config};
use sgsim::model::Header;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// ClassBench filter file (`.xz` is decompressed).
    #[arg(long, value_name = "F")]
    filters: PathBuf,
    /// Header trace (`.xz` is decompressed); without it, a seeded synthetic trace aimed at
    /// the rules is used.
    #[arg(long, value_name = "T")]
    trace: Option<PathBuf>,
    /// Expected first matches, one 0-based rule index per trace line (`.firstmatch`);
    /// without it, the reference engine's answers are the expectation.
    #[arg(long, value_name = "FILE")]
    expect: Option<PathBuf>,
    /// Worker threads for the timed passes (1 = the sequential batch path).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    threads: u32,
    /// Timed passes over the trace.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=1000))]
    repeat: u32,
    /// Synthetic trace length when no --trace is given.
    #[arg(long, default_value_t = 100_000, value_parser = super::count(1, super::MAX_IN_MEMORY))]
    packets: usize,
    /// Seed of the synthetic trace.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// How to index IPv4 rules: as the compiler chooses, decision trees only, or
    /// cross-product tables wherever they fit their memory budget (with the split tail
    /// only: `split`).
    #[arg(long, value_enum, default_value_t = IndexChoice::Auto)]
    index: IndexChoice,
}

/// The `--index` of `classbench` and `bench`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum IndexChoice {
    /// Cross-product tables for groups of 512 rules or more that are searched alone and
    /// whose tables fit the budget, else trees.
    Auto,
    /// Decision trees only.
    Trees,
    /// Cross-product tables for every group whose tables fit the budget, else trees.
    Tables,
    /// As `tables`, with the split tail only (address lists intersected with service
    /// bitsets), never the full product: to compare the two.
    Split,
}

impl IndexChoice {
    /// The compile configuration this choice gives.
    pub fn config(self) -> Config {
        let mut config = Config::default();
        match self {
            IndexChoice::Auto => {}
            IndexChoice::Trees => config.cross_min_filters = usize::MAX,
            IndexChoice::Tables | IndexChoice::Split => config.cross_min_filters = 0,
        }
        config.cross_alone_only = self == IndexChoice::Auto;
        config.cross_product_tail = self != IndexChoice::Split;
        config
    }
}

fn index(v: Verdict) -> Option<u32> {
    match v.by {
        By::Rule(i) => Some(i),
        _ => None,
    }
}

/// The headers of a trace file, or `packets` seeded synthetic headers aimed at the rules.
pub fn trace_or_synthetic(
    state: &sgsim::model::State,
    trace: Option<&std::path::Path>,
    packets: usize,
    seed: u64,
) -> anyhow::Result<Vec<Header>> {
    Ok(match trace {
        Some(t) => classbench::read_trace(t)?
            .into_iter()
            .map(|e| e.header)
            .collect(),
        None => sgsim::packet::synth::headers(state, packets, seed),
    })
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    let state = classbench::read_filters(&args.filters)?;
    let headers = trace_or_synthetic(&state, args.trace.as_deref(), args.packets, args.seed)?;
    let queries: Vec<(Point, Header)> = headers.iter().map(|h| (POINT, *h)).collect();

    let started = Instant::now();
    let table = compile(&state, &args.index.config())?;
    let build_ms = started.elapsed().as_secs_f64() * 1e3;

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads as usize)
        .build()?;
    let mut out = Vec::with_capacity(queries.len());
    let mut times = Vec::new();
    for _ in 0..args.repeat {
        let started = Instant::now();
        if args.threads == 1 {
            table.classify_batch(&queries, &mut out);
        } else {
            pool.install(|| table.classify_par_into(&queries, &mut out));
        }
        times.push(started.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];

    let (expected, against): (Vec<Option<u32>>, &str) = match &args.expect {
        Some(path) => {
            let e = classbench::read_expect(path)?;
            anyhow::ensure!(
                e.len() == queries.len(),
                "{}: {} indexes for {} trace headers",
                path.display(),
                e.len(),
                queries.len()
            );
            (e, "expect")
        }
        None => {
            let reference = Reference::new(&state)?;
            let e = pool.install(|| {
                queries
                    .par_iter()
                    .map(|(p, h)| index(reference.classify(*p, h)))
                    .collect()
            });
            (e, "reference")
        }
    };
    let mismatches: Vec<usize> = (0..queries.len())
        .filter(|&i| index(out[i]) != expected[i])
        .collect();
    for &i in mismatches.iter().take(10) {
        eprintln!(
            "sgsim: mismatch at trace line {}: {} -> compiled {:?}, expected {:?}",
            i + 1,
            headers[i],
            index(out[i]),
            expected[i]
        );
    }
    let summary = json!({
        "rules": state.rules.len(),
        "packets": queries.len(),
        "mismatches": mismatches.len(),
        "checked_against": against,
        "build_ms": round(build_ms),
        "mpps": round(queries.len() as f64 / median / 1e6),
        "threads": args.threads,
        "repeat": args.repeat,
        "memory_bytes": table.memory_usage(),
        "bytes_per_rule": round(table.memory_usage() as f64 / state.rules.len() as f64),
        "index": table.index_summary(),
    });
    println!("{}", sgsim::term::json_safe(&summary.to_string()));
    Ok(Exit::Ok)
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
