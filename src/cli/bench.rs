//! `sgsim bench`: the compiled engine and the reference engine measured in the same run,
//! printed as one JSON object.
//!
//! Workloads: a synthetic ClassBench-shaped rule set (`--rules N`), a security-group-shaped
//! account (`--shape sg`), or a ClassBench filter file (`--filters F [--trace T]`).
//! Figures: lookups/s (one thread through `classify_batch`, and with `--threads N` the
//! rayon batch path against one thread on batches of at least 2^20 lookups, passes
//! alternating, the speedup the median of adjacent pairs' ratios), build time,
//! revoke-to-visible latency (`Live::apply` of one revoke, median over `--revokes`
//! different rules), and bytes per rule (`Table::memory_usage`).
//! The reference engine is a linear scan: at large sizes it is timed on a sample of the
//! packets (`reference_sampled_packets`), and the compiled engine's answers are checked
//! against it on that sample.

use std::path::PathBuf;
use std::time::Instant;

use serde_json::{json, Value};

use super::classbench::IndexChoice;
use super::Exit;
use sgsim::classbench::{self, POINT};
use sgsim::classify::reference::Reference;
use sgsim::classify::{Engine, Point, Verdict};
use sgsim::compile::live::{Change, Live};
use sgsim::compile::{compile, Config, Table};
use sgsim::internal::bench::{sg_queries, sg_state, SgShape};
use sgsim::model::{Header, State};

/// Which rule set to measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Shape {
    /// Security-group shaped: groups, ENIs sharing group sets, group references.
    Sg,
    /// ClassBench-shaped synthetic filters (`--rules N`).
    Classbench,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Synthetic ClassBench-shaped rule count (default workload: 10000 rules).
    #[arg(long, value_name = "N", conflicts_with = "filters",
          value_parser = super::count(1, super::MAX_IN_MEMORY))]
    rules: Option<usize>,
    /// Workload shape for generated rules.
    #[arg(long, value_enum, conflicts_with = "filters")]
    shape: Option<Shape>,
    /// ClassBench filter file (`.xz` is decompressed).
    #[arg(long, value_name = "F")]
    filters: Option<PathBuf>,
    /// ClassBench trace for `--filters`; without it, a seeded synthetic trace.
    #[arg(long, value_name = "T", requires = "filters")]
    trace: Option<PathBuf>,
    /// Packets per pass for generated traffic.
    #[arg(long, default_value_t = 100_000, value_parser = super::count(1, super::MAX_IN_MEMORY))]
    packets: usize,
    /// Threads for the parallel batch figure (1 = single-thread only).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    threads: u32,
    /// Timed passes (the median is reported).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    repeat: u32,
    /// Revokes timed (each of a different rule, on a fresh live table; median reported).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    revokes: u32,
    /// Upper bound on rules x packets for the reference's timed pass (it scans linearly).
    #[arg(long, default_value_t = 200_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    reference_budget: u64,
    /// Seed of generated rules and traffic.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// How to index IPv4 rules (as `sgsim classbench --index`).
    #[arg(long, value_enum, default_value_t = IndexChoice::Auto)]
    index: IndexChoice,
    /// Lookups a pass of the parallel figure judges at least (the workload's packets,
    /// repeated): at tens of millions of lookups a second, a pass over 100,000 packets
    /// takes a few milliseconds, of which rayon's hand-off and the VM's scheduling take a
    /// visible share.
    #[arg(long, default_value_t = 1 << 20, value_name = "N",
          value_parser = super::count(1, 1 << 24))]
    parallel_batch: usize,
    /// The what-if workload instead: a capture of whole sessions (`sgsim synth --sessions`
    /// on the security-group-shaped account) of this many packets, judged before and after
    /// a revoke end to end (decode included), next to decoding it alone, in the same run.
    #[arg(long, value_name = "PACKETS", num_args = 0..=1, default_missing_value = "3000000")]
    whatif: Option<usize>,
    /// Instead of lookups: the header-space diff (of revoking the catch-all) and lint
    /// against rules per group for each of issue #21's field shapes, and against ENIs on
    /// its fleet; one JSON object per line (a curve point), medians of `--repeat` runs.
    #[arg(long)]
    space: bool,
    /// Rule counts of the `--space` curves.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "10,20,50,100,200,400,1000,1601"
    )]
    space_rules: Vec<usize>,
    /// ENI counts of the `--space` fleet curve.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1000,2000,4000,8000,16000,32000,64000,100000"
    )]
    space_enis: Vec<usize>,
    /// The flow-log what-if on this folder (or file) of flow logs instead: read by the
    /// built-in reader and, built with `fleet`, by DataFusion's parallel scan, passes
    /// alternating (medians of `--repeat`); needs `--state` and `--request`.
    #[arg(long, value_name = "DIR", requires_all = ["state", "request"])]
    flowlogs: Option<PathBuf>,
    /// The state for `--flowlogs` (provider exports or a snapshot).
    #[arg(long, value_name = "PATH")]
    state: Vec<PathBuf>,
    /// The revoke for `--flowlogs` (a query string, JSON, or @FILE).
    #[arg(long, value_name = "REQ")]
    request: Option<String>,
    /// A Python with the `duckdb` module: `--flowlogs` also times DuckDB's scan-and-group
    /// of the same columns on the same Parquet files, and prints the ratios.
    #[arg(long, value_name = "PYTHON", requires = "flowlogs")]
    duckdb: Option<PathBuf>,
    /// `--flowlogs` also scans on the Ballista cluster at this URL (`df://HOST:PORT`,
    /// feature `cluster`).
    #[arg(long, value_name = "URL", requires = "flowlogs")]
    cluster: Option<String>,
    /// `--flowlogs`: the most live connections the what-if holds (as `whatif
    /// --max-connections`).
    #[arg(long, value_name = "N", default_value_t = sgsim::whatif::traffic::MAX_CONNECTIONS,
          value_parser = super::count(1, 1 << 30), requires = "flowlogs")]
    max_connections: usize,
    /// `--flowlogs`: the most records, about, one pass of `--fold plan` folds (as `whatif
    /// --pass-records`): the plan's figures are then those of several passes.
    #[arg(long, value_name = "N", default_value_t = 1 << 23,
          value_parser = super::count(1, 1 << 40), requires = "flowlogs")]
    pass_records: usize,
    /// Largest ENI count of the `--space` fleet curve at which lint is timed too (above
    /// it, the diff only).
    #[arg(long, default_value_t = 100_000, value_name = "N")]
    space_lint_enis: usize,
    /// Write the `--space` workloads the targets name (as snapshots, with their
    /// revoke requests) into this folder instead of timing them.
    #[arg(long, value_name = "DIR", requires = "space")]
    emit: Option<PathBuf>,
}

/// The `--space` workloads the targets of issue #21 name: snapshot and revoke request.
fn emit(dir: &std::path::Path) -> anyhow::Result<()> {
    use sgsim::internal::bench::{field_state, fleet_state, FieldShape};
    std::fs::create_dir_all(dir)?;
    let write = |name: &str, state: &State, request: &str| -> anyhow::Result<()> {
        std::fs::write(dir.join(format!("{name}.json")), serde_json::to_vec(state)?)?;
        std::fs::write(dir.join(format!("{name}.req")), request)?;
        Ok(())
    };
    let ali = |group: &str, rule: &str| {
        format!("Action=RevokeSecurityGroup&RegionId=cn-hangzhou&SecurityGroupId={group}&SecurityGroupRuleId.1={rule}")
    };
    for (shape, rules) in [
        (FieldShape::Four, 201),
        (FieldShape::PortsRemote, 1601),
        (FieldShape::Ports, 1001),
    ] {
        let state = field_state(shape, shape.k_for(rules));
        let name = format!(
            "{}-{rules}",
            serde_json::to_value(shape)?.as_str().unwrap_or("shape")
        );
        write(&name, &state, &ali("sg-fields", "sgr-catch-all"))?;
    }
    let aws = field_state(FieldShape::Aws, FieldShape::Aws.k_for(1601));
    write(
        "aws-1601",
        &aws,
        "Action=RevokeSecurityGroupIngress&Version=2016-11-15&GroupId=sg-fields&SecurityGroupRuleId.1=sgr-catch-all",
    )?;
    for enis in [16_000, 64_000, 100_000] {
        write(
            &format!("fleet-{enis}"),
            &fleet_state(enis, 1),
            &ali("sg-00", "sgr-00-0"),
        )?;
    }
    Ok(())
}

/// The `--space` curves: one JSON line per point.
fn space(args: &Args) -> anyhow::Result<Exit> {
    use sgsim::internal::bench::{field_state, fleet_state, FieldShape};
    use sgsim::whatif::{lint, space};
    if let Some(dir) = &args.emit {
        emit(dir)?;
        return Ok(Exit::Ok);
    }
    let point = |state: &State,
                 removed: &[sgsim::model::RuleId],
                 with_lint: bool|
     -> anyhow::Result<Value> {
        let mut diff = None;
        let diff_s = timed(args.repeat, || {
            diff = Some(space::revoke_diff(state, removed))
        });
        let diff = diff.ok_or_else(|| anyhow::anyhow!("no run"))??;
        let mut p = json!({
            "diff_ms": round(diff_s * 1e3),
            "regions": diff.regions.len(),
            "complete": diff.complete,
        });
        if with_lint {
            let mut found = None;
            let lint_s = timed(args.repeat, || found = Some(lint::lint(state)));
            let found = found.ok_or_else(|| anyhow::anyhow!("no run"))??;
            p["lint_ms"] = json!(round(lint_s * 1e3));
            p["findings"] = json!(found.findings.len());
            p["lint_complete"] = json!(found.complete);
        }
        Ok(p)
    };
    for shape in FieldShape::ALL {
        for &rules in &args.space_rules {
            let k = shape.k_for(rules);
            let state = field_state(shape, k);
            let mut p = point(&state, &["sgr-catch-all".into()], true)?;
            p["shape"] = serde_json::to_value(shape)?;
            p["rules"] = json!(state.rules.len());
            println!("{p}");
        }
    }
    for &enis in &args.space_enis {
        let state = fleet_state(enis, args.seed);
        let mut p = point(&state, &["sgr-00-0".into()], enis <= args.space_lint_enis)?;
        p["shape"] = json!("fleet");
        p["enis"] = json!(enis);
        p["group_sets"] = json!(sgsim_sets(&state));
        println!("{p}");
    }
    Ok(Exit::Ok)
}

/// Distinct group sets of a state's ENIs (as the diff and lint group them: whatever the
/// order of attachment).
fn sgsim_sets(state: &State) -> usize {
    state
        .enis
        .iter()
        .map(|e| {
            let mut g: Vec<_> = e.groups.iter().collect();
            g.sort_unstable();
            g.dedup();
            g
        })
        .collect::<std::collections::HashSet<_>>()
        .len()
}

pub(super) fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len() / 2).copied().unwrap_or(f64::NAN)
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Median seconds of `repeat` runs of `f`.
fn timed(repeat: u32, mut f: impl FnMut()) -> f64 {
    median(
        (0..repeat)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

/// Median seconds of `repeat` runs of `a` and of `b`, run alternately on the same output,
/// and the median of the ratios of each run of `a` to the run of `b` that follows it (the
/// pairs see the same machine, which on a shared VM the medians of two series need not).
/// Each timed run of `b` (the parallel pass) follows an untimed one, so that its workers are
/// awake: on a VM, waking an idle vCPU can take a good part of a millisecond, which a
/// steady stream of batches never pays.
fn timed_pair(
    repeat: u32,
    out: &mut Vec<Verdict>,
    mut a: impl FnMut(&mut Vec<Verdict>),
    mut b: impl FnMut(&mut Vec<Verdict>),
) -> (f64, f64, f64) {
    let mut times = (Vec::new(), Vec::new());
    for _ in 0..repeat {
        let t = Instant::now();
        a(out);
        times.0.push(t.elapsed().as_secs_f64());
        b(out);
        let t = Instant::now();
        b(out);
        times.1.push(t.elapsed().as_secs_f64());
    }
    let ratios = times.0.iter().zip(&times.1).map(|(a, b)| a / b).collect();
    (median(times.0), median(times.1), median(ratios))
}

/// Items per second.
fn per_s(items: usize, secs: f64) -> f64 {
    items as f64 / secs
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    if let (Some(dir), Some(request)) = (&args.flowlogs, &args.request) {
        let state = super::revoke::StateArgs {
            state: args.state.clone(),
        }
        .load()?;
        let request = super::text_or_file(request)?;
        let out = super::flowbench::run(
            dir,
            &state,
            &request,
            args.repeat,
            args.duckdb.as_ref(),
            args.cluster.as_deref(),
            super::flowbench::Bounds {
                max_connections: args.max_connections,
                pass_records: args.pass_records as u64,
            },
        )?;
        println!("{out}");
        return Ok(Exit::Ok);
    }
    if args.space {
        return space(&args);
    }
    if let Some(packets) = args.whatif {
        return whatif(&args, packets);
    }
    let (workload, state, queries): (Value, State, Vec<(Point, Header)>) =
        match (&args.filters, args.shape) {
            (Some(f), _) => {
                let state = classbench::read_filters(f)?;
                let headers = super::classbench::trace_or_synthetic(
                    &state,
                    args.trace.as_deref(),
                    args.packets,
                    args.seed,
                )?;
                let q = headers.into_iter().map(|h| (POINT, h)).collect();
                (
                    json!({"kind": "classbench-file", "filters": f.display().to_string(),
                           "trace": args.trace.as_ref().map(|t| t.display().to_string())}),
                    state,
                    q,
                )
            }
            (None, Some(Shape::Sg)) => {
                let mut shape = SgShape::default();
                if let Some(n) = args.rules {
                    shape.rules = n;
                }
                let state = sg_state(&shape, args.seed);
                let q = sg_queries(&state, args.packets, args.seed + 1);
                (
                    json!({"kind": "sg", "groups": shape.groups, "enis": shape.enis,
                           "group_sets": shape.group_sets, "seed": args.seed}),
                    state,
                    q,
                )
            }
            (None, _) => {
                let n = args.rules.unwrap_or(10_000);
                let state = classbench::synthetic_filters(n, args.seed);
                let q = sgsim::packet::synth::headers(&state, args.packets, args.seed + 1)
                    .into_iter()
                    .map(|h| (POINT, h))
                    .collect();
                (
                    json!({"kind": "synthetic-classbench", "seed": args.seed}),
                    state,
                    q,
                )
            }
        };
    anyhow::ensure!(!queries.is_empty(), "the workload has no packets");
    let rules = state.rules.len();

    // Compiled engine.
    let config = args.index.config();
    let t = Instant::now();
    let table = compile(&state, &config)?;
    let build_ms = t.elapsed().as_secs_f64() * 1e3;
    let mut out = Vec::with_capacity(queries.len());
    let one = |out: &mut Vec<Verdict>| table.classify_batch(&queries, out);
    let (compiled_lps, parallel) = if args.threads > 1 {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(args.threads as usize)
            .build()?;
        // Alternate the passes so that both see the same machine: on a shared VM, timing
        // all of one and then all of the other mostly measures the neighbours.
        let batch: Vec<(Point, Header)> = queries
            .iter()
            .cycle()
            .take(args.parallel_batch.max(queries.len()))
            .copied()
            .collect();
        let (one_secs, par_secs, ratio) = timed_pair(
            args.repeat,
            &mut out,
            |out| table.classify_batch(&batch, out),
            |out| pool.install(|| table.classify_par_into(&batch, out)),
        );
        let (one_lps, par_lps) = (per_s(batch.len(), one_secs), per_s(batch.len(), par_secs));
        let parallel = json!({"threads": args.threads, "lookups_per_s": round(par_lps),
                              "batch": batch.len(),
                              "one_thread_lookups_per_s": round(one_lps),
                              "speedup_over_one_thread": round(ratio)});
        let secs = timed(args.repeat, || one(&mut out));
        (per_s(queries.len(), secs), Some(parallel))
    } else {
        let secs = timed(args.repeat, || one(&mut out));
        (per_s(queries.len(), secs), None)
    };
    let (revoke_ms, revoke_max_ms) = revoke_latency(&state, &config, args.revokes)?;
    let memory = table.memory_usage();

    // Reference engine, on a bounded sample.
    let sample = (args.reference_budget / rules.max(1) as u64)
        .max(1000)
        .min(queries.len() as u64) as usize;
    let sampled = &queries[..sample.min(queries.len())];
    let t = Instant::now();
    let reference = Reference::new(&state)?;
    let ref_build_ms = t.elapsed().as_secs_f64() * 1e3;
    let mut ref_out = Vec::with_capacity(sampled.len());
    let ref_secs = timed(args.repeat.min(3), || {
        reference.classify_batch(sampled, &mut ref_out)
    });
    let ref_lps = sampled.len() as f64 / ref_secs;
    let mismatches = sampled
        .iter()
        .zip(&ref_out)
        .zip(&out)
        .filter(|((_, r), c)| reference.name(**r) != table.name(**c))
        .count();
    let ref_revoke_ms = reference_revoke_latency(&state, args.revokes)?;

    let summary = json!({
        "workload": workload,
        "rules": rules,
        "packets": queries.len(),
        "repeat": args.repeat,
        "compiled": {
            "lookups_per_s": round(compiled_lps),
            "mlookups_per_s": round(compiled_lps / 1e6),
            "build_ms": round(build_ms),
            "revoke_to_visible_ms": round(revoke_ms),
            "revoke_to_visible_max_ms": round(revoke_max_ms),
            "revokes_timed": args.revokes,
            "memory_bytes": memory,
            "bytes_per_rule": round(memory as f64 / rules.max(1) as f64),
            "contexts": table.context_count(),
            "index": table.index_summary(),
            "parallel": parallel,
        },
        "reference": {
            "lookups_per_s": round(ref_lps),
            "mlookups_per_s": round(ref_lps / 1e6),
            "build_ms": round(ref_build_ms),
            "revoke_to_visible_ms": round(ref_revoke_ms),
        },
        "reference_sampled_packets": sampled.len(),
        "mismatches_on_sample": mismatches,
        "speedup_over_reference": round(compiled_lps / ref_lps),
    });
    println!("{}", sgsim::term::json_safe(&summary.to_string()));
    anyhow::ensure!(
        mismatches == 0,
        "{mismatches} packets judged differently by the compiled and reference engines"
    );
    Ok(Exit::Ok)
}

/// Rules to revoke: `count` indexes spread evenly over the rule list.
fn victims(state: &State, count: u32) -> Vec<usize> {
    let n = state.rules.len();
    let k = (count as usize).min(n);
    (0..k).map(|i| (2 * i + 1) * n / (2 * k)).collect()
}

/// Median and largest milliseconds of `Live::apply` of one revoke, each on a fresh live
/// table.
fn revoke_latency(state: &State, config: &Config, count: u32) -> anyhow::Result<(f64, f64)> {
    let mut times = Vec::new();
    for v in victims(state, count) {
        let live = Live::new(state.clone(), config.clone())?;
        let id = state.rules[v].id.clone();
        let t = Instant::now();
        live.apply(Change::Revoke(vec![id]))?;
        let _visible: std::sync::Arc<Table> = live.snapshot();
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let max = times.iter().copied().fold(0.0, f64::max);
    Ok((median(times), max))
}

/// Median milliseconds for the reference to see a revoke: the new state and a new scan.
fn reference_revoke_latency(state: &State, count: u32) -> anyhow::Result<f64> {
    let mut times = Vec::new();
    for v in victims(state, count) {
        let id = state.rules[v].id.clone();
        let t = Instant::now();
        let mut next = state.clone();
        next.rules.retain(|r| r.id != id);
        let r = Reference::new(&next)?;
        std::hint::black_box(&r);
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(median(times))
}

/// Items read from an in-memory capture as `sgsim whatif` reads a file: 64k-item chunks
/// read ahead on their own thread and decoded on the rayon pool; `f` sees each chunk.
fn read_capture(bytes: &[u8], mut f: impl FnMut(&[sgsim::packet::Item])) -> anyhow::Result<()> {
    let mut source = sgsim::packet::Source::open(bytes)?;
    sgsim::packet::read_ahead(&mut source, 65536, |chunk, _| {
        f(chunk);
        Ok::<(), std::convert::Infallible>(())
    })
    .unwrap_or_else(|never| match never {})?;
    Ok(())
}

/// The what-if workload: decode-only and end-to-end what-if packets per second, passes
/// alternating (each figure the median of `--repeat`), on one capture.
fn whatif(args: &Args, packets: usize) -> anyhow::Result<Exit> {
    let shape = SgShape::default();
    let state = sg_state(&shape, args.seed);
    // The first ingress accept rule whose revoke changes some header space.
    let mut chosen = None;
    for r in state.rules.iter().filter(|r| {
        r.direction == sgsim::model::Direction::Ingress
            && r.action == sgsim::model::Action::Accept
            && matches!(r.remote, sgsim::model::Peer::Cidr { .. })
    }) {
        let request = format!(
            "Action=RevokeSecurityGroup&RegionId=cn-hangzhou&SecurityGroupId={}&SecurityGroupRuleId.1={}",
            r.group, r.id
        );
        let plan = sgsim::whatif::plan(&state, &sgsim::provider::RawRequest::parse(&request)?)?;
        if !plan.report.header_space.is_empty() {
            chosen = Some((r, plan));
            break;
        }
    }
    let (victim, plan) =
        chosen.ok_or_else(|| anyhow::anyhow!("no revoke of the workload changes anything"))?;
    let t = Instant::now();
    let bytes = sgsim::internal::bench::session_capture(&state, packets, args.seed);
    let synth_ms = t.elapsed().as_secs_f64() * 1e3;
    let config = sgsim::whatif::traffic::Config::default()
        .with_partitions((rayon::current_num_threads() * 4).max(1));
    let t = Instant::now();
    let judge = sgsim::whatif::traffic::Judge::new(&state, &plan.outcome.state, config)?;
    let build_ms = t.elapsed().as_secs_f64() * 1e3;
    let (mut decode, mut full) = (Vec::new(), Vec::new());
    let mut report = plan.report.clone();
    let mut items = 0usize;
    for _ in 0..args.repeat {
        let t = Instant::now();
        let mut n = 0usize;
        read_capture(&bytes, |chunk| n += chunk.len())?;
        decode.push(t.elapsed().as_secs_f64());
        items = n;
        let t = Instant::now();
        let mut run = sgsim::whatif::traffic::Run::new(&judge);
        read_capture(&bytes, |chunk| run.feed(chunk))?;
        let mut r = plan.report.clone();
        run.finish(&mut r, &state);
        full.push(t.elapsed().as_secs_f64());
        report = r;
    }
    let ratios: Vec<f64> = decode.iter().zip(&full).map(|(d, f)| d / f).collect();
    let (decode_s, full_s) = (median(decode), median(full));
    let c = &report.connections;
    let summary = json!({
        "workload": {"kind": "whatif", "packets": items, "capture_bytes": bytes.len(),
                     "rules": state.rules.len(), "enis": state.enis.len(),
                     "revoked": victim.id.as_str(), "seed": args.seed,
                     "threads": rayon::current_num_threads()},
        "repeat": args.repeat,
        "synth_ms": round(synth_ms),
        "build_ms": round(build_ms),
        "decode_packets_per_s": round(per_s(items, decode_s)),
        "whatif_packets_per_s": round(per_s(items, full_s)),
        "whatif_over_decode": round(median(ratios)),
        "connections": {"total": c.total, "broken": c.broken, "surviving": c.surviving,
                        "restored": c.restored, "unknown": c.unknown,
                        "packets_broken": c.packets_broken},
        "services_changed": report.impact.len(),
    });
    println!("{summary}");
    Ok(Exit::Ok)
}
