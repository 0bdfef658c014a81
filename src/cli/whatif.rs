//! `sgsim whatif` and `sgsim lint`.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Context as _;

use super::revoke::StateArgs;
use super::{text_or_file, write_atomic, Exit};
use sgsim::provider::RawRequest;
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
    let plan = whatif::plan(&state, &request).context("--request")?;
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
}

pub fn run_lint(args: LintArgs) -> anyhow::Result<Exit> {
    let state = args.state.load()?;
    let findings = whatif::lint::lint(&state)?;
    if args.json {
        for f in &findings {
            println!("{}", serde_json::to_string(f)?);
        }
    } else if findings.is_empty() {
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
