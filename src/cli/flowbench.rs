//! `sgsim bench --flowlogs DIR`: the flow-log what-if on a folder of flow logs, read by
//! the built-in reader and (with the `fleet` feature) by DataFusion's parallel scan, passes
//! alternating, next to DuckDB's own scan-and-group of the same columns on the same files
//! when a Python with the `duckdb` module is given (`--duckdb PYTHON`). One JSON object:
//! records, medians in seconds, records/s, the ratios to DuckDB, and the reports' check
//! that both scans gave the same answer.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use serde_json::{json, Value};

use sgsim::model::State;
use sgsim::packet::input::{self, Files, Scan};
use sgsim::packet::Source;
use sgsim::provider::RawRequest;
use sgsim::whatif::traffic::{Config, Judge, Run};

/// DuckDB's scan-and-group of the columns the what-if reads (every Parquet file under the
/// folder, Hive partitions read as columns), counted inside DuckDB so that fetching the
/// groups into Python is not timed; best of three after a warm-up. DuckDB's progress bar
/// (drawn on stdout once a query runs past two seconds, as on a loaded machine) is off.
const DUCKDB: &str = r#"
import sys, time, duckdb
path = sys.argv[1]
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
q = f"""SELECT count(*), sum(n) FROM (
  SELECT interface_id, flow_direction, srcaddr, dstaddr, srcport, dstport, protocol, action,
    reject_reason, count(*) AS n, sum(packets), sum(bytes), min(start), max("end")
  FROM read_parquet('{path}/**/*.parquet', hive_partitioning = true)
  WHERE log_status = 'OK' GROUP BY ALL)"""
con.execute(q).fetchall()
best = None
for _ in range(3):
    t = time.perf_counter(); rows = con.execute(q).fetchall(); dt = time.perf_counter() - t
    best = dt if best is None else min(best, dt)
print(f"{best} {rows[0][0]} {rows[0][1]} {duckdb.__version__}")
"#;

/// One pass over the folder: the what-if (seconds, records judged, the report as JSON
/// without the clock), or with `judge` false the scan alone (no report).
fn pass(
    state: &State,
    plan: &sgsim::whatif::Plan,
    judge: Option<&Judge>,
    dir: &Path,
    scan: Scan,
) -> anyhow::Result<(f64, u64, Value)> {
    let t = Instant::now();
    let mut options = input::Options::default();
    options.scan = scan;
    let files = Files::open(&dir.to_string_lossy(), options)?;
    let mut source = Source::Files(Box::new(files));
    let Some(judge) = judge else {
        let mut chunk = Vec::new();
        while source.read_chunk(65536, &mut chunk)? {
            sgsim::packet::recycle(&mut chunk);
        }
        let records = source.summary().decoded;
        return Ok((t.elapsed().as_secs_f64(), records, Value::Null));
    };
    let mut run = Run::new(judge);
    run.source(&mut source, &dir.display().to_string(), 65536, |_| {})?;
    let records = source.summary().decoded;
    let mut report = plan.report.clone();
    run.finish(&mut report, state);
    let secs = t.elapsed().as_secs_f64();
    Ok((secs, records, serde_json::to_value(&report)?))
}

/// One pass of the what-if as one DataFusion plan (`--fold plan`) over the folder's Parquet
/// files: (seconds, records judged, the report as JSON without the clock, buckets and
/// passes).
#[cfg(feature = "fleet")]
fn plan_pass(
    state: &State,
    plan: &sgsim::whatif::Plan,
    judge: &Judge,
    folding: &sgsim::whatif::fold::Folding,
    dir: &Path,
) -> anyhow::Result<(f64, u64, Value, (u64, u64))> {
    let t = Instant::now();
    let files = Files::open(&dir.to_string_lossy(), input::Options::default())?;
    let locations = files
        .parts()
        .map(|p| {
            let format = sgsim::whatif::fold::Format::of(&p.location)?;
            Ok((p.location.clone(), format))
        })
        .collect::<std::io::Result<Vec<_>>>()?;
    let names: Vec<String> = files.parts().map(|p| p.name.clone()).collect();
    // The instant: the first record, as the streaming what-if takes it.
    let mut source = Source::Files(Box::new(Files::open(
        &dir.to_string_lossy(),
        input::Options::default(),
    )?));
    let at = sgsim::whatif::traffic::first_instant(judge, &mut source)?;
    let folded = folding.input(&locations, &names, at, input::Window::default(), false)?;
    let records = folded.summary.decoded;
    let mut run = Run::new(judge);
    run.absorb(&dir.display().to_string(), folded.tally, at);
    let mut report = plan.report.clone();
    run.finish(&mut report, state);
    Ok((
        t.elapsed().as_secs_f64(),
        records,
        serde_json::to_value(&report)?,
        (folded.buckets, folded.passes),
    ))
}

/// DuckDB's figure: (seconds, groups, records, version).
fn duckdb(python: &Path, dir: &Path) -> anyhow::Result<(f64, u64, u64, String)> {
    let out = std::process::Command::new(python)
        .args(["-c", DUCKDB])
        .arg(dir)
        .output()
        .with_context(|| format!("cannot run {}", python.display()))?;
    anyhow::ensure!(
        out.status.success(),
        "{} -c <duckdb query>: {}",
        python.display(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let text = String::from_utf8_lossy(&out.stdout);
    // The figures are the last line (anything DuckDB drew before it is not ours to read).
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    let f: Vec<&str> = last.split_whitespace().collect();
    anyhow::ensure!(
        f.len() == 4,
        "unexpected output from DuckDB: {}",
        sgsim::term::escape(last)
    );
    Ok((
        f[0].parse()?,
        f[1].parse()?,
        f[2].parse()?,
        f[3].to_string(),
    ))
}

/// What the what-if holds at most: live connections (as `whatif --max-connections`), and
/// records in one pass of the plan (as `whatif --pass-records`).
pub struct Bounds {
    pub max_connections: usize,
    pub pass_records: u64,
}

/// Runs the benchmark and returns its JSON line: per scan (built-in, DataFusion with
/// `fleet`, the cluster at `cluster` when given), the median seconds of the scan alone and
/// of the what-if, passes alternating.
pub fn run(
    dir: &Path,
    state: &State,
    request: &str,
    repeat: u32,
    python: Option<&PathBuf>,
    cluster: Option<&str>,
    bounds: Bounds,
) -> anyhow::Result<Value> {
    let Bounds {
        max_connections,
        pass_records,
    } = bounds;
    let request = RawRequest::parse(request).context("--request")?;
    let plan = sgsim::whatif::plan(state, &request).context("--request")?;
    anyhow::ensure!(
        plan.report.error.is_none(),
        "the revoke is refused: {:?}",
        plan.report.error
    );
    let config = Config::default()
        .with_partitions((rayon::current_num_threads() * 4).max(1))
        .with_max_connections(max_connections);
    let judge = Judge::new(state, &plan.outcome.state, config)?;
    let mut scans = vec![("builtin", Scan::Builtin)];
    if cfg!(feature = "fleet") {
        scans.push(("datafusion", Scan::DataFusion));
    }
    if let Some(url) = cluster {
        scans.push(("cluster", Scan::Cluster(url.to_string())));
    }
    // The what-if as one DataFusion plan (`--fold plan`): here, and on the cluster.
    #[cfg(feature = "fleet")]
    #[cfg_attr(not(feature = "cluster"), allow(unused_mut))]
    let mut folds = vec![(
        "plan",
        sgsim::whatif::fold::Folding::new(state, &plan.outcome.state, &config)?
            .with_pass_records(pass_records),
    )];
    #[cfg(feature = "cluster")]
    if let Some(url) = cluster {
        folds.push((
            "cluster_plan",
            sgsim::whatif::fold::Folding::remote(url, state, &plan.outcome.state, &config)?
                .with_pass_records(pass_records),
        ));
    }
    #[cfg(not(feature = "fleet"))]
    let folds: Vec<(&str, ())> = {
        let _ = pass_records;
        Vec::new()
    };
    let n = scans.len();
    let all = n + folds.len();
    let (mut scan_s, mut whatif_s) = (vec![Vec::new(); all], vec![Vec::new(); all]);
    let mut reports: Vec<Value> = vec![Value::Null; all];
    let mut records = 0;
    // Per plan: the buckets it folded in, and its passes over the files.
    #[allow(unused_mut)]
    let mut plan_buckets: Vec<(u64, u64)> = vec![(0, 0); folds.len()];
    for _ in 0..repeat.max(1) {
        for (k, (_, scan)) in scans.iter().enumerate() {
            let (secs, _, _) = pass(state, &plan, None, dir, scan.clone())?;
            scan_s[k].push(secs);
            let (secs, r, report) = pass(state, &plan, Some(&judge), dir, scan.clone())?;
            whatif_s[k].push(secs);
            reports[k] = report;
            records = r;
        }
        #[cfg(feature = "fleet")]
        for (k, (_, folding)) in folds.iter().enumerate() {
            let (secs, _, report, buckets) = plan_pass(state, &plan, &judge, folding, dir)?;
            whatif_s[n + k].push(secs);
            reports[n + k] = report;
            plan_buckets[k] = buckets;
        }
    }

    // The scans feed the same streaming what-if: their reports must be identical. The plan
    // folds each bucket of connections on its own, so the live-connection bound applies
    // per bucket: its report is the streaming one unless the stream evicted connections.
    let same = reports[..n].windows(2).all(|w| w[0] == w[1]);
    let evicted = reports[0]["connections"]["evicted"].as_u64().unwrap_or(0);
    let per_s = |s: f64| {
        if s > 0.0 {
            (records as f64 / s).round()
        } else {
            0.0
        }
    };
    let duck = match python {
        Some(python) => Some(duckdb(python, dir)?),
        None => None,
    };
    let mut figures = serde_json::Map::new();
    let names = scans
        .iter()
        .map(|(name, _)| *name)
        .chain(folds.iter().map(|(name, _)| *name));
    for (k, name) in names.enumerate() {
        let whatif = super::bench::median(whatif_s[k].clone());
        let mut f = json!({"whatif_s": whatif, "whatif_records_per_s": per_s(whatif)});
        if k < n {
            let scan = super::bench::median(scan_s[k].clone());
            f["scan_s"] = json!(scan);
            f["scan_records_per_s"] = json!(per_s(scan));
        }
        if let Some((secs, ..)) = &duck {
            f["whatif_vs_duckdb"] = json!(whatif / secs);
        }
        if k >= n {
            f["report_identical_to_stream"] = json!(reports[k] == reports[0]);
            f["buckets"] = json!(plan_buckets[k - n].0);
            f["passes"] = json!(plan_buckets[k - n].1);
        }
        figures.insert(name.to_string(), f);
    }
    let mut out = json!({
        "workload": {"kind": "flowlogs", "folder": dir.display().to_string(),
                     "records": records, "threads": rayon::current_num_threads()},
        "repeat": repeat,
        "scans": figures,
        "reports_identical": same,
        "stream_evicted": evicted,
    });
    if let Some((secs, groups, n, version)) = duck {
        out["duckdb"] = json!({"version": version, "scan_and_group_s": secs, "groups": groups,
                               "records": n});
    }
    anyhow::ensure!(same, "the scans gave different reports");
    for k in n..all {
        anyhow::ensure!(
            evicted > 0 || reports[k] == reports[0],
            "the plan gave another report than the stream, which evicted no connection"
        );
    }
    Ok(out)
}
