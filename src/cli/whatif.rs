//! `sgsim whatif` and `sgsim lint`.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Context as _;

use super::packets::{check_usable, for_each_chunk, open_in, progress, warnings, WindowArgs};
use super::revoke::StateArgs;
use super::{text_or_file, write_atomic, Exit};
use sgsim::model::State;
use sgsim::packet::{synth, track};
use sgsim::provider::RawRequest;
use sgsim::whatif::report::Tally;
use sgsim::whatif::traffic::{synthetic_items, Judge};
use sgsim::whatif::{self, render};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// The human report.
    Text,
    /// The JSON report on stdout.
    Json,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    state: StateArgs,
    /// The revoke request: a query string, a URL, a JSON object, or @FILE.
    #[arg(long, value_name = "REQ")]
    request: String,
    /// Traffic to judge before and after (repeatable): pcap/pcapng captures, AWS VPC flow
    /// logs (text, `.gz`, Parquet), Alibaba flow logs (JSON lines, CSV), folders of them
    /// (S3 delivery layouts recognised), or s3:// URLs.
    #[arg(long, value_name = "PATH")]
    traffic: Vec<PathBuf>,
    #[command(flatten)]
    window: WindowArgs,
    /// Also judge N seeded synthetic packets aimed at the rules (inside and around each
    /// rule's box, both directions, plus background).
    #[arg(long, value_name = "N")]
    synthetic: Option<usize>,
    /// Seed of the synthetic traffic.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write the JSON report here.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write a self-contained HTML report here.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// What to print on stdout.
    #[arg(long, value_enum, default_value = "text")]
    output: Output,
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    let state = args.state.load()?;
    let text = text_or_file(&args.request)?;
    let request = RawRequest::parse(&text).context("--request")?;
    let mut plan = whatif::plan(&state, &request).context("--request")?;
    if plan.report.error.is_none() && (!args.traffic.is_empty() || args.synthetic.is_some()) {
        let synthetic = args.synthetic.map(|n| (n, args.seed));
        judge_traffic(
            &mut plan,
            &state,
            &args.traffic,
            args.window.window(),
            synthetic,
        )?;
    }
    emit(
        &plan.report,
        args.output,
        args.json.as_ref(),
        args.html.as_ref(),
    )?;
    Ok(if plan.report.error.is_some() {
        Exit::ApiError
    } else {
        Exit::Ok
    })
}

/// Judges every traffic input before and after and adds the traffic sections.
pub fn judge_traffic(
    plan: &mut whatif::Plan,
    state: &State,
    traffic: &[PathBuf],
    window: sgsim::packet::input::Window,
    synthetic: Option<(usize, u64)>,
) -> anyhow::Result<()> {
    let config = track::Config {
        partitions: (rayon::current_num_threads() * 4).max(1),
        ..track::Config::default()
    };
    let judge = Judge::new(state, &plan.outcome.state, config)?;
    let mut tally = Tally::default();
    const CHUNK: usize = 16384;
    for path in traffic {
        let mut session = judge.session()?;
        let (mut source, len) = open_in(path, false, window)?;
        let bar = progress(len);
        for_each_chunk(&mut source, path, CHUNK, &bar, |chunk| {
            for j in session.judge(chunk) {
                tally.add(&j);
            }
            Ok(())
        })?;
        bar.finish_and_clear();
        check_usable(&source, path)?;
        plan.report.warnings.extend(warnings(&source));
        eprintln!(
            "sgsim: {} ({}): {}",
            path.display(),
            source.kind(),
            source.summary()
        );
        if session.unmatched() > 0 {
            plan.report.warnings.push(format!(
                "{}: {} packets or records touched no ENI of the state and were not judged",
                path.display(),
                session.unmatched()
            ));
        }
    }
    if let Some((n, seed)) = synthetic {
        let headers: Vec<_> = synth::aimed(state, n, seed, 0.2)
            .into_iter()
            .map(|(_, h)| h)
            .collect();
        let mut session = judge.session()?;
        // A fixed start (2026-01-01T00:00:00Z): the report stays deterministic.
        for j in session.judge(&synthetic_items(&headers, 1_767_225_600_000_000_000)) {
            tally.add(&j);
        }
    }
    tally.finish(&mut plan.report, state);
    Ok(())
}

/// Prints the report and writes the files asked for.
pub fn emit(
    report: &whatif::report::Report,
    output: Output,
    json: Option<&PathBuf>,
    html: Option<&PathBuf>,
) -> anyhow::Result<()> {
    let json_text = serde_json::to_string_pretty(report)?;
    match output {
        Output::Json => println!("{json_text}"),
        Output::Text => print!("{}", render::text(report, std::io::stdout().is_terminal())),
    }
    if let Some(path) = json {
        write_atomic(path, json_text.as_bytes())?;
    }
    if let Some(path) = html {
        write_atomic(path, render::html(report).as_bytes())?;
    }
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct LintArgs {
    #[command(flatten)]
    state: StateArgs,
    /// Print the findings as JSON lines instead of a table.
    #[arg(long)]
    json: bool,
    /// Traffic to count rule hits in (captures or flow logs, repeatable): rules that decide
    /// none of it are reported as `no_hits`.
    #[arg(long, value_name = "PATH")]
    traffic: Vec<PathBuf>,
    #[command(flatten)]
    window: WindowArgs,
}

/// Rules that decided none of the traffic, in state order.
fn rules_without_hits(
    state: &State,
    traffic: &[PathBuf],
    window: sgsim::packet::input::Window,
) -> anyhow::Result<Vec<String>> {
    let table = sgsim::compile::compile(state, &sgsim::compile::Config::default())?;
    let config = track::Config {
        partitions: (rayon::current_num_threads() * 4).max(1),
        ..track::Config::default()
    };
    let mut hits = vec![0u64; table.rules().len()];
    for path in traffic {
        let mut evaluator = track::Evaluator::new(&table, state, config)?;
        let (mut source, len) = open_in(path, false, window)?;
        let bar = progress(len);
        for_each_chunk(&mut source, path, 16384, &bar, |chunk| {
            evaluator.eval(chunk);
            Ok(())
        })?;
        bar.finish_and_clear();
        check_usable(&source, path)?;
        for (h, n) in hits.iter_mut().zip(&evaluator.stats().rule_hits) {
            *h += n;
        }
    }
    Ok(table
        .rules()
        .iter()
        .zip(&hits)
        .filter(|(_, &n)| n == 0)
        .map(|(r, _)| r.to_string())
        .collect())
}

pub fn run_lint(args: LintArgs) -> anyhow::Result<Exit> {
    let state = args.state.load()?;
    let findings = whatif::lint::lint(&state)?;
    let unhit = if args.traffic.is_empty() {
        Vec::new()
    } else {
        rules_without_hits(&state, &args.traffic, args.window.window())?
    };
    if args.json {
        for f in &findings {
            println!("{}", serde_json::to_string(f)?);
        }
        for r in &unhit {
            println!("{}", serde_json::json!({"rule": r, "kind": "no_hits"}));
        }
        return Ok(Exit::Ok);
    }
    if !unhit.is_empty() {
        println!(
            "no_hits            rules that decided none of the traffic: {}",
            unhit.join(", ")
        );
    }
    if findings.is_empty() {
        println!("no shadowed, redundant or conflicting rules");
    } else {
        for f in &findings {
            let enis = f
                .enis
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join(",");
            let kind = serde_json::to_value(f.kind)?;
            let related = if f.related.is_empty() {
                String::new()
            } else {
                format!(" ({})", f.related.join(", "))
            };
            println!(
                "{:<18} {:<7} {:<28} {}{}",
                kind.as_str().unwrap_or("?"),
                f.direction,
                f.rule,
                enis,
                related
            );
        }
    }
    Ok(Exit::Ok)
}
