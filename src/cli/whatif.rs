//! `sgsim whatif` and `sgsim lint`.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Context as _;

use super::packets::{check_usable, for_each_chunk, open_in, progress, warnings, WindowArgs};
use super::revoke::{read_request, StateArgs};
use super::{output, Exit};
use sgsim::model::State;
use sgsim::packet::synth;
use sgsim::track;
use sgsim::whatif::{self, render, traffic};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// The human report.
    Text,
    /// The JSON report on stdout.
    Json,
}

/// `--fold`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Fold {
    /// In this process, as the records are read.
    #[default]
    Stream,
    /// The whole what-if as one DataFusion plan (feature `fleet`).
    Plan,
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
    /// Traffic to judge before and after (repeatable): pcap/pcapng captures, AWS VPC flow
    /// logs (text, `.gz`, Parquet), Alibaba flow logs (JSON lines, CSV), folders of them
    /// (S3 delivery layouts recognised), or s3:// URLs.
    #[arg(long, value_name = "PATH")]
    traffic: Vec<PathBuf>,
    #[command(flatten)]
    window: WindowArgs,
    /// Also judge N seeded synthetic packets: whole sessions (TCP handshake, data, FIN;
    /// UDP and ICMP echo exchanges) opened by packets aimed at the rules (inside and around
    /// each rule's box, both directions, plus background).
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
    /// When the revoke takes effect: RFC 3339 (UTC, `2026-12-06T14:00:00Z`) or Unix
    /// seconds. Default: the first packet or record of each input.
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
    /// Alibaba: sessions open when the revoke lands survive even when the verdict for their
    /// traffic changes (the default cuts them, as Alibaba's documentation reads).
    #[arg(long)]
    assume_survive: bool,
    /// Rows per list in the reports (services, connections, clients).
    #[arg(long, value_name = "N", default_value_t = 20)]
    top: usize,
    /// The most live connections held (about 170 bytes each): past it the least recently
    /// seen are finished early, counted in `connections.evicted` with a warning.
    #[arg(long, value_name = "N", default_value_t = traffic::MAX_CONNECTIONS,
          value_parser = super::count(1, 1 << 30))]
    max_connections: usize,
    /// Where connections are followed through time: `stream` (this process, as records
    /// are read) or `plan`: the whole what-if as one Apache DataFusion plan (the scan,
    /// the judging and the connection fold as the plan's aggregation), on every core or,
    /// with `--cluster`, on the cluster's executors. Flow logs only (Parquet, text,
    /// gzip; not captures); needs the `fleet` feature. Both give the same report.
    #[arg(long, value_enum, default_value = "stream")]
    fold: Fold,
    /// `--fold plan`: the most records, about, one bucket of connections holds while it is
    /// folded (an input of more records is cut into more buckets: fewer records per bucket
    /// hold less memory per fold, and give more totals to merge).
    #[arg(long, value_name = "N", default_value_t = 1 << 20,
          value_parser = super::count(1, 1 << 40))]
    bucket_records: usize,
    /// `--fold plan`: the most records, about, one pass of the plan folds: an input of
    /// more records is folded in several passes over its files, each folding its share of
    /// the buckets, so that the plan's memory does not grow with the input (each pass
    /// reads the files again; at most 256 passes).
    #[arg(long, value_name = "N", default_value_t = 1 << 23,
          value_parser = super::count(1, 1 << 40))]
    pass_records: usize,
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    if let Some(path) = &args.json {
        output::check("--json", path)?;
    }
    if let Some(path) = &args.html {
        output::check("--html", path)?;
    }
    let state = args.state.load()?;
    let (text, request) = read_request(&args.request, args.action.as_deref())?;
    let mut plan = whatif::plan(&state, &request).context("--request")?;
    plan.report.request = Some(text.trim().to_string());
    plan.report.top = args.top;
    if plan.report.error.is_none() && (!args.traffic.is_empty() || args.synthetic.is_some()) {
        let config = traffic::Config::default()
            .with_at(args.at.as_deref().map(parse_at).transpose()?)
            .with_assume_survive(args.assume_survive)
            .with_top(args.top)
            .with_max_connections(args.max_connections)
            .with_partitions((rayon::current_num_threads() * 4).max(1));
        let synthetic = args.synthetic.map(|n| (n, args.seed));
        if args.fold == Fold::Plan {
            anyhow::ensure!(
                synthetic.is_none(),
                "--fold plan reads flow logs, not --synthetic traffic"
            );
            fold_traffic(
                &mut plan,
                &state,
                &args.traffic,
                &args.window,
                config,
                args.bucket_records as u64,
                args.pass_records as u64,
            )?;
        } else {
            judge_traffic(
                &mut plan,
                &state,
                &args.traffic,
                args.window.options(false)?,
                synthetic,
                config,
            )?;
        }
    }
    plan.report.analysed_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| whatif::report::rfc3339(d.as_nanos() as u64));
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

/// `--at`: RFC 3339 (`2026-12-06T14:00:00Z`, UTC) or Unix seconds (fractions allowed).
fn parse_at(text: &str) -> anyhow::Result<u64> {
    let t = text.trim();
    if let Ok(secs) = t.parse::<f64>() {
        anyhow::ensure!(
            secs.is_finite() && secs >= 0.0,
            "--at {t}: not a time after 1970"
        );
        return Ok((secs * 1e9) as u64);
    }
    let bad =
        || anyhow::anyhow!("--at {t}: expected RFC 3339 (2026-12-06T14:00:00Z) or Unix seconds");
    let t = t.strip_suffix('Z').ok_or_else(bad)?;
    let (date, time) = t.split_once('T').ok_or_else(bad)?;
    let d: Vec<i64> = date
        .split('-')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .map_err(|_| bad())?;
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let h: Vec<i64> = hms
        .split(':')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .map_err(|_| bad())?;
    let (&[y, m, day], &[hh, mm, ss]) = (&d[..], &h[..]) else {
        return Err(bad());
    };
    let secs = sgsim::model::time::seconds([y, m, day], [hh, mm, ss])
        .filter(|&s| s >= 0)
        .ok_or_else(bad)?;
    let frac_ns = if frac.is_empty() {
        0
    } else {
        let digits: String = frac.chars().take(9).collect();
        let n: u64 = digits.parse().map_err(|_| bad())?;
        n * 10u64.pow(9 - digits.len() as u32)
    };
    Ok(secs as u64 * 1_000_000_000 + frac_ns)
}

/// Judges every traffic input before and after and adds the traffic sections: the loop is
/// the library's ([`traffic::Run`]); this adds progress bars and the inputs' summaries.
pub fn judge_traffic(
    plan: &mut whatif::Plan,
    state: &State,
    traffic: &[PathBuf],
    input: sgsim::packet::input::Options,
    synthetic: Option<(usize, u64)>,
    config: traffic::Config,
) -> anyhow::Result<()> {
    let judge = traffic::Judge::new(state, &plan.outcome.state, config)?;
    let mut run = traffic::Run::new(&judge);
    const CHUNK: usize = 65536;
    for path in traffic {
        let (mut source, len) = open_in(path, input.clone())?;
        let bar = progress(len);
        let name = path.display().to_string();
        run.source(&mut source, &name, CHUNK, |p| {
            bar.set_position(p.bytes);
            bar.set_message(format!("{} judged", p.items));
        })?;
        bar.finish_and_clear();
        check_usable(&source, path)?;
        super::note_read(path, &source);
        run.input(whatif::report::Input {
            name,
            kind: source.kind().to_string(),
            summary: source.summary().to_string(),
        });
        plan.report.warnings.extend(warnings(&source));
    }
    if let Some((n, seed)) = synthetic {
        // Generated and judged a block at a time: memory does not grow with `n`. A fixed
        // start (2026-01-01T00:00:00Z): the report stays deterministic.
        let mut done = 0u64;
        synth::sessions_streamed(state, n as u64, seed, 0.2, |block| {
            let start = 1_767_225_600_000_000_000 + done * 1_000_000;
            let mut items = traffic::synthetic_items_with_flags(block, start);
            for item in &mut items {
                if let sgsim::packet::Item::Packet(p) = item {
                    p.index += done;
                }
            }
            run.feed(&items);
            done += block.len() as u64;
            Ok::<(), std::convert::Infallible>(())
        })
        .unwrap_or_else(|never| match never {});
        run.end_input();
        run.input(whatif::report::Input {
            name: "synthetic".into(),
            kind: "synthetic sessions".into(),
            summary: format!(
                "{n} packets of whole sessions opened by packets aimed at the rules (seed {seed})"
            ),
        });
    }
    finish(run, plan, state);
    Ok(())
}

/// Writes the traffic sections of `run` into the plan's report, names beside the IDs, and
/// a warning when no item was judged.
fn finish(run: traffic::Run<'_>, plan: &mut whatif::Plan, state: &State) {
    run.finish(&mut plan.report, state);
    // Names for the rules without hits, which the traffic sections only list by ID.
    plan.report.label(state);
    if plan.report.packets.judged == 0 {
        plan.report.warnings.push(
            "no packet or record of the traffic was judged (none touched an ENI of the state): \
             the traffic sections say nothing about this revoke"
                .to_string(),
        );
    }
}

/// `--fold plan`: each input's what-if as one DataFusion plan ([`whatif::fold`]), here or
/// on `--cluster`; the report as [`judge_traffic`] writes it.
#[cfg(feature = "fleet")]
fn fold_traffic(
    plan: &mut whatif::Plan,
    state: &State,
    traffic: &[PathBuf],
    window: &super::packets::WindowArgs,
    config: traffic::Config,
    bucket_records: u64,
    pass_records: u64,
) -> anyhow::Result<()> {
    use sgsim::packet::input::Files;
    #[cfg(feature = "s3")]
    use sgsim::packet::input::Location;
    use sgsim::whatif::fold::{Folding, Format};
    let after = &plan.outcome.state;
    let folding = match &window.cluster {
        #[cfg(feature = "cluster")]
        Some(url) => {
            window.options(false)?;
            Folding::remote(url, state, after, &config)?
        }
        #[cfg(not(feature = "cluster"))]
        Some(_) => anyhow::bail!("--cluster needs sgsim built with the `cluster` feature"),
        None => Folding::new(state, after, &config)?,
    }
    .with_bucket_records(bucket_records)
    .with_pass_records(pass_records);
    // Buckets folded, on a terminal: a long plan says how far it is.
    let bar = fold_bar();
    let folding = {
        let bar = bar.clone();
        folding.with_progress(move |p| {
            bar.set_length(p.buckets);
            bar.set_position(p.buckets_done);
            bar.set_message(format!("pass {} of {}", p.pass, p.passes));
        })
    };
    // Read locally: the first record (the default instant) and the files' kinds.
    let mut options = window.options(false)?;
    options.scan = sgsim::packet::input::Scan::Builtin;
    let judge = traffic::Judge::new(state, after, config)?;
    let mut run = traffic::Run::new(&judge);
    for path in traffic {
        let name = path.display().to_string();
        let files = Files::open(&path.to_string_lossy(), options.clone())
            .with_context(|| format!("cannot open {name}"))?;
        let mut locations = Vec::new();
        let mut names = Vec::new();
        // Each file's kind, as the streaming reader names the input's.
        let mut kinds: Vec<&'static str> = Vec::new();
        // Each file's place among the input's, and the warnings of files left out with
        // theirs: the report lists them in file order, as the streaming reader meets them.
        let mut places: Vec<usize> = Vec::new();
        let mut left: Vec<(usize, String)> = Vec::new();
        for (place, part) in files.parts().enumerate() {
            // The executors would read an object with credentials of their own.
            #[cfg(feature = "s3")]
            anyhow::ensure!(
                window.cluster.is_none() || !matches!(part.location, Location::Object(_)),
                "{}: --fold plan on a cluster reads the paths every executor reads, not s3:// \
                 objects (copy them there, or run the plan here without --cluster)",
                sgsim::term::escape(&part.name)
            );
            let parquet = Format::of(&part.location)
                .with_context(|| format!("cannot open {}", sgsim::term::escape(&part.name)))?
                == Format::Parquet;
            let format = if parquet {
                kinds.push("parquet-flow-log");
                Format::Parquet
            } else {
                // Read by the plan as the streaming reader reads it. What it is, from its
                // start (to its first record): a capture is refused (the plan folds flow
                // logs); in a folder, a file that is no traffic is left out with a warning,
                // as the streaming reader leaves it out.
                let first = part.location.open_stream().and_then(|mut source| {
                    let mut one = Vec::with_capacity(1);
                    source.read_chunk(1, &mut one).map(|_| source)
                });
                match first {
                    Ok(source) if !source.is_flow_log() => anyhow::bail!(
                        "--fold plan reads flow logs: {} is a {} (use --fold stream)",
                        sgsim::term::escape(&part.name),
                        source.kind()
                    ),
                    Ok(source) => kinds.push(source.kind()),
                    Err(e) if e.is_not_traffic() && !files.explicit() => {
                        left.push((place, format!("{}: skipped, {e}", part.name)));
                        continue;
                    }
                    Err(e) => {
                        return Err(anyhow::Error::new(e)
                            .context(format!("cannot read {}", sgsim::term::escape(&part.name))))
                    }
                }
                Format::Text
            };
            locations.push((part.location.clone(), format));
            names.push(part.name.clone());
            places.push(place);
        }
        // The instant: given, or the first record in the streaming reader's order.
        let at = match config.at_ns {
            Some(at) => at,
            None => {
                let (mut source, _) = open_in(path, options.clone())?;
                traffic::first_instant(&judge, &mut source)
                    .with_context(|| sgsim::term::escape(&name).into_owned())?
            }
        };
        let folded = folding
            .input(&locations, &names, at, window.window(), false)
            .with_context(|| {
                let parquet = locations.iter().any(|(_, f)| *f == Format::Parquet);
                format!(
                    "--traffic {}: the plan failed{}",
                    sgsim::term::escape(&name),
                    if parquet {
                        " (--fold stream reads past Parquet row groups it cannot read)"
                    } else {
                        ""
                    }
                )
            })?;
        anyhow::ensure!(
            folded.warnings.is_empty() || !files.explicit(),
            "{}",
            folded.warnings.join("; ")
        );
        // The plan's warnings are of files it left out (by their place in `locations`).
        left.extend(
            folded
                .left_out
                .iter()
                .map(|&i| places.get(i).copied().unwrap_or(usize::MAX))
                .zip(folded.warnings),
        );
        left.sort_by_key(|(place, _)| *place);
        plan.report
            .warnings
            .extend(left.into_iter().map(|(_, w)| w));
        let summary = folded.summary;
        // As the streaming path refuses it: no record could be read, some rows were
        // malformed, none read was left out by the window.
        if summary.none_usable() {
            if let Some(first) = summary.examples.first() {
                anyhow::bail!(
                    "{}: not a usable flow log or capture (no record could be read; {first})",
                    path.display()
                );
            }
        }
        // The input's kind from the files the plan read.
        let read: Vec<&str> = kinds
            .iter()
            .enumerate()
            .filter(|(i, _)| !folded.left_out.contains(i))
            .map(|(_, k)| *k)
            .collect();
        let kind = match read.first() {
            None => "none",
            Some(k) if read.iter().all(|o| o == k) => k,
            Some(_) => "mixed",
        };
        run.absorb(&name, folded.tally, at);
        run.input(whatif::report::Input {
            name,
            kind: kind.to_string(),
            summary: summary.to_string(),
        });
    }
    bar.finish_and_clear();
    finish(run, plan, state);
    Ok(())
}

/// A bar of the buckets `--fold plan` has folded: on a terminal only (not in CI).
#[cfg(feature = "fleet")]
fn fold_bar() -> indicatif::ProgressBar {
    if std::env::var_os("CI").is_some() || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(0);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} {msg}: {pos}/{len} buckets folded {wide_bar} eta {eta}",
    ) {
        bar.set_style(style);
    }
    bar
}

#[cfg(not(feature = "fleet"))]
fn fold_traffic(
    _: &mut whatif::Plan,
    _: &State,
    _: &[PathBuf],
    _: &super::packets::WindowArgs,
    _: traffic::Config,
    _: u64,
    _: u64,
) -> anyhow::Result<()> {
    anyhow::bail!(
        "--fold plan needs sgsim built with the `fleet` feature (cargo build --release --features fleet)"
    )
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
    #[command(flatten)]
    window: WindowArgs,
}

/// Rules that decided none of the traffic, in state order.
fn rules_without_hits(
    state: &State,
    traffic: &[PathBuf],
    input: sgsim::packet::input::Options,
) -> anyhow::Result<Vec<String>> {
    let table = sgsim::compile::compile(state, &sgsim::compile::Config::default())?;
    let mut config = track::Config::default();
    config.partitions = (rayon::current_num_threads() * 4).max(1);
    let mut hits = vec![0u64; table.rules().len()];
    for path in traffic {
        let mut evaluator = track::Evaluator::new(&table, state, config)?;
        let (mut source, len) = open_in(path, input.clone())?;
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
        rules_without_hits(&state, &args.traffic, args.window.options(false)?)?
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
            // Two lines: the finding, then what removing the rule would do; each escaped
            // on its own (account text never starts a line).
            let line = format!(
                "{:<18} {:<7} {:<28} {}{}",
                kind.as_str().unwrap_or("?"),
                f.direction,
                f.rule,
                enis,
                related,
            );
            println!("{}", sgsim::term::escape(&line));
            println!("{:<18} {}", "", sgsim::term::escape(f.effect));
        }
    }
    Ok(Exit::Ok)
}

#[cfg(test)]
mod tests {
    use super::parse_at;

    /// `--at` reads RFC 3339 and Unix seconds, and names what is not a time: a day its
    /// month does not have, a negative hour, a time before 1970.
    #[test]
    fn at_reads_times_and_refuses_what_is_none() {
        let ns = 1_796_551_200_000_000_000;
        assert_eq!(parse_at("2026-12-06T10:00:00Z").unwrap(), ns);
        assert_eq!(
            parse_at("2026-12-06T10:00:00.25Z").unwrap(),
            ns + 250_000_000
        );
        assert_eq!(parse_at("1796551200").unwrap(), ns);
        for bad in [
            "2026-02-30T00:00:00Z",
            "2026-12-06T-1:00:00Z",
            "2026-13-01T00:00:00Z",
            "1969-12-31T23:59:59Z",
            "2026-12-06 10:00:00",
            "-5",
        ] {
            let e = parse_at(bad).unwrap_err().to_string();
            assert!(e.contains("--at"), "{bad}: {e}");
        }
    }
}
