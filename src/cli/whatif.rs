//! `sgsim whatif` and `sgsim lint`.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Context as _;

use super::packets::{check_usable, for_each_chunk, open, progress};
use super::revoke::StateArgs;
use super::{output, text_or_file, Exit};
use sgsim::model::State;
use sgsim::packet::synth;
use sgsim::provider::RawRequest;
use sgsim::track;
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
    /// The action, for request files that do not name one (the AWS CLI's
    /// `--cli-input-json` files), e.g. RevokeSecurityGroupIngress.
    #[arg(long, value_name = "NAME")]
    action: Option<String>,
    /// Traffic to judge before and after: pcap/pcapng captures, AWS VPC flow logs or Alibaba
    /// flow-log JSON lines (repeatable).
    #[arg(long, value_name = "PATH")]
    traffic: Vec<PathBuf>,
    /// Also judge N seeded synthetic packets aimed at the rules (inside and around each
    /// rule's box, both directions, plus background).
    #[arg(long, value_name = "N", value_parser = super::count(0, super::MAX_STREAMED))]
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
    if let Some(path) = &args.json {
        output::check("--json", path)?;
    }
    if let Some(path) = &args.html {
        output::check("--html", path)?;
    }
    let state = args.state.load()?;
    let text = text_or_file(&args.request)?;
    let mut request = RawRequest::parse(&text).context("--request")?;
    if let Some(action) = &args.action {
        request = request.with_action(action).context("--action")?;
    }
    let mut plan = whatif::plan(&state, &request).context("--request")?;
    if plan.report.error.is_none() && (!args.traffic.is_empty() || args.synthetic.is_some()) {
        let synthetic = args.synthetic.map(|n| (n, args.seed));
        judge_traffic(&mut plan, &state, &args.traffic, synthetic)?;
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
        let (mut source, len) = open(path, false)?;
        let bar = progress(len);
        for_each_chunk(&mut source, path, CHUNK, &bar, |chunk| {
            for j in session.judge(chunk) {
                tally.add(&j);
            }
            Ok(())
        })?;
        bar.finish_and_clear();
        check_usable(&source, path)?;
        super::note_read(path, &source);
        if session.unmatched() > 0 {
            plan.report.warnings.push(format!(
                "{}: {} packets or records touched no ENI of the state and were not judged",
                path.display(),
                session.unmatched()
            ));
        }
    }
    if let Some((n, seed)) = synthetic {
        let mut session = judge.session()?;
        // Generated and judged a chunk at a time: memory does not grow with `n`.
        let mut packets = synth::Aimed::new(state, n as u64, seed, 0.2).map(|(_, h)| h);
        let mut done = 0u64;
        loop {
            let headers: Vec<_> = packets.by_ref().take(CHUNK).collect();
            if headers.is_empty() {
                break;
            }
            // A fixed start (2026-01-01T00:00:00Z): the report stays deterministic.
            let start = 1_767_225_600_000_000_000 + done * 1_000_000;
            let mut items = synthetic_items(&headers, start);
            for item in &mut items {
                if let sgsim::packet::Item::Packet(p) = item {
                    p.index += done;
                }
            }
            for j in session.judge(&items) {
                tally.add(&j);
            }
            done += headers.len() as u64;
        }
    }
    tally.finish(&mut plan.report, state);
    if plan.report.packets.judged == 0 {
        plan.report.warnings.push(
            "no packet or record of the traffic was judged (none touched an ENI of the state): \
             the traffic sections say nothing about this revoke"
                .to_string(),
        );
    }
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
        Output::Json => println!("{}", sgsim::term::json_safe(&json_text)),
        Output::Text => print!("{}", render::text(report, std::io::stdout().is_terminal())),
    }
    if let Some(path) = json {
        output::write(path, json_text.as_bytes())?;
    }
    if let Some(path) = html {
        output::write(path, render::html(report).as_bytes())?;
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
}

/// Rules that decided none of the traffic, in state order.
fn rules_without_hits(state: &State, traffic: &[PathBuf]) -> anyhow::Result<Vec<String>> {
    let table = sgsim::compile::compile(state, &sgsim::compile::Config::default())?;
    let config = track::Config {
        partitions: (rayon::current_num_threads() * 4).max(1),
        ..track::Config::default()
    };
    let mut hits = vec![0u64; table.rules().len()];
    for path in traffic {
        let mut evaluator = track::Evaluator::new(&table, state, config)?;
        let (mut source, len) = open(path, false)?;
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
    let lint = whatif::lint::lint(&state)?;
    if let Some(why) = &lint.stopped {
        eprintln!("warning: lint is incomplete: {why}");
    }
    let findings = lint.findings;
    let unhit = if args.traffic.is_empty() {
        Vec::new()
    } else {
        rules_without_hits(&state, &args.traffic)?
    };
    if args.json {
        for f in &findings {
            println!("{}", sgsim::term::json_safe(&serde_json::to_string(f)?));
        }
        for r in &unhit {
            let line = serde_json::json!({"rule": r, "kind": "no_hits"}).to_string();
            println!("{}", sgsim::term::json_safe(&line));
        }
        return Ok(Exit::Ok);
    }
    if !unhit.is_empty() {
        let line = format!(
            "no_hits            rules that decided none of the traffic: {}",
            unhit.join(", ")
        );
        println!("{}", sgsim::term::escape(&line));
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
            let more = if f.related_more { ", …" } else { "" };
            let related = if f.related.is_empty() {
                String::new()
            } else {
                format!(" ({}{more})", f.related.join(", "))
            };
            let line = format!(
                "{:<18} {:<7} {:<28} {}{}\n{:<18} {}",
                kind.as_str().unwrap_or("?"),
                f.direction,
                f.rule,
                enis,
                related,
                "",
                f.effect
            );
            println!("{}", sgsim::term::escape(&line));
        }
    }
    Ok(Exit::Ok)
}
