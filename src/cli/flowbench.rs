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
/// groups into Python is not timed; best of three after a warm-up.
const DUCKDB: &str = r#"
import sys, time, duckdb
path = sys.argv[1]
con = duckdb.connect()
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

/// One what-if over the folder; returns the seconds taken, the records judged and the
/// report (JSON, without the clock).
fn pass(
    state: &State,
    plan: &sgsim::whatif::Plan,
    judge: &Judge,
    dir: &Path,
    scan: Scan,
) -> anyhow::Result<(f64, u64, Value)> {
    let t = Instant::now();
    let files = Files::open(
        &dir.to_string_lossy(),
        input::Options {
            scan,
            ..Default::default()
        },
    )?;
    let mut source = Source::Files(Box::new(files));
    let mut run = Run::new(judge);
    run.source(&mut source, &dir.display().to_string(), 65536, |_| {})?;
    let records = source.summary().decoded;
    let mut report = plan.report.clone();
    run.finish(&mut report, state);
    let secs = t.elapsed().as_secs_f64();
    Ok((secs, records, serde_json::to_value(&report)?))
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
    let f: Vec<&str> = text.split_whitespace().collect();
    anyhow::ensure!(f.len() == 4, "unexpected output from DuckDB: {text}");
    Ok((
        f[0].parse()?,
        f[1].parse()?,
        f[2].parse()?,
        f[3].to_string(),
    ))
}

/// Runs the benchmark and prints its JSON line.
pub fn run(
    dir: &Path,
    state: &State,
    request: &str,
    repeat: u32,
    python: Option<&PathBuf>,
) -> anyhow::Result<Value> {
    let request = RawRequest::parse(request).context("--request")?;
    let plan = sgsim::whatif::plan(state, &request).context("--request")?;
    anyhow::ensure!(
        plan.report.error.is_none(),
        "the revoke is refused: {:?}",
        plan.report.error
    );
    let config = Config {
        partitions: (rayon::current_num_threads() * 4).max(1),
        ..Default::default()
    };
    let judge = Judge::new(state, &plan.outcome.state, config)?;
    let mut scans = vec![Scan::Builtin];
    if cfg!(feature = "fleet") {
        scans.push(Scan::DataFusion);
    }
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); scans.len()];
    let mut reports: Vec<Value> = vec![Value::Null; scans.len()];
    let mut records = 0;
    for _ in 0..repeat.max(1) {
        for (k, scan) in scans.iter().enumerate() {
            let (secs, n, report) = pass(state, &plan, &judge, dir, scan.clone())?;
            times[k].push(secs);
            reports[k] = report;
            records = n;
        }
    }
    let medians: Vec<f64> = times.into_iter().map(super::bench::median).collect();
    let same = reports.windows(2).all(|w| w[0] == w[1]);
    let per_s = |s: f64| if s > 0.0 { records as f64 / s } else { 0.0 };
    let mut out = json!({
        "workload": {"kind": "flowlogs", "folder": dir.display().to_string(),
                     "records": records, "threads": rayon::current_num_threads()},
        "repeat": repeat,
        "builtin_s": medians[0],
        "builtin_records_per_s": per_s(medians[0]).round(),
        "reports_identical": same,
    });
    if let Some(&df) = medians.get(1) {
        out["datafusion_s"] = json!(df);
        out["datafusion_records_per_s"] = json!(per_s(df).round());
    }
    if let Some(python) = python {
        let (secs, groups, n, version) = duckdb(python, dir)?;
        out["duckdb"] = json!({"version": version, "scan_and_group_s": secs, "groups": groups,
                               "records": n});
        out["builtin_vs_duckdb"] = json!(medians[0] / secs);
        if let Some(&df) = medians.get(1) {
            out["datafusion_vs_duckdb"] = json!(df / secs);
        }
    }
    anyhow::ensure!(same, "the scans gave different reports");
    Ok(out)
}
