//! Flags, subcommands and exit codes. Exit 0 on success, 1 when a simulated cloud API
//! answers with an error, 2 for unusable input (unreadable file, malformed data, bad flags).

mod bench;
mod classbench;
#[cfg(feature = "cluster")]
mod cluster;
mod demo;
mod eval;
mod flowbench;
mod output;
mod packets;
#[cfg(feature = "fleet")]
mod query;
mod revoke;
#[cfg(feature = "serve")]
mod serve;
mod synth;
mod whatif;

use clap::{Parser, Subcommand};

/// sgsim: what a security-group revoke will break, before you press the button.
#[derive(Parser, Debug)]
#[command(name = "sgsim", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the bundled example (the default with no arguments).
    Demo,
    /// Measure the compiled and reference engines in one run; print JSON figures.
    Bench(bench::Args),
    /// Classify a ClassBench trace against a ClassBench filter set; print a JSON summary.
    Classbench(classbench::Args),
    /// Run a Ballista scheduler or executor that scans flow logs for `--cluster`.
    #[cfg(feature = "cluster")]
    Cluster(cluster::Args),
    /// Apply a revoke request as the cloud API would; print the API's response.
    Revoke(revoke::RevokeArgs),
    /// Serve the EC2 Query and ECS RPC APIs on localhost for real clients.
    #[cfg(feature = "serve")]
    Serve(serve::Args),
    /// Print every atomic rule of a state, one JSON object per line.
    Rules(revoke::RulesArgs),
    /// What a revoke changes: the API's answer, the exact header space, traffic before/after.
    Whatif(whatif::Args),
    /// SQL over Parquet flow logs, with each record's verdict before and after a revoke as
    /// functions and columns (Apache DataFusion; feature `fleet`).
    #[cfg(feature = "fleet")]
    Query(query::Args),
    /// Shadowed, redundant and conflicting rules per ENI and direction.
    Lint(whatif::LintArgs),
    /// Decode a capture or flow log: one JSON object per packet or record.
    Packets(packets::PacketsArgs),
    /// Judge traffic against a state: one JSON object per packet and ENI.
    Eval(eval::EvalArgs),
    /// Write seeded synthetic traffic aimed at a state's rules as a pcap.
    Synth(synth::SynthArgs),
}

/// Exit code for a finished command.
pub enum Exit {
    /// Success.
    Ok,
    /// The simulated API answered with an error.
    ApiError,
}

/// A reader that closes the pipe early (`sgsim rules | head`) is not an error: stop quietly
/// instead of panicking in `println!`.
fn quiet_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}

pub fn run() -> i32 {
    quiet_on_broken_pipe();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            // clap quotes the offending argument: no raw control characters.
            let text = e.render().to_string();
            eprint!("{}", sgsim::term::escape_lines(&text));
            return 2;
        }
        Err(e) => {
            let _ = e.print();
            return 0;
        }
    };
    let result = match cli.command.unwrap_or(Command::Demo) {
        Command::Demo => demo::run(),
        Command::Bench(args) => bench::run(args),
        Command::Classbench(args) => classbench::run(args),
        #[cfg(feature = "cluster")]
        Command::Cluster(args) => cluster::run(args),
        Command::Revoke(args) => revoke::run_revoke(args),
        Command::Rules(args) => revoke::run_rules(args),
        #[cfg(feature = "serve")]
        Command::Serve(args) => serve::run(args),
        Command::Whatif(args) => whatif::run(args),
        #[cfg(feature = "fleet")]
        Command::Query(args) => query::run(args),
        Command::Lint(args) => whatif::run_lint(args),
        Command::Packets(args) => packets::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Synth(args) => synth::run(args),
    };
    match result {
        Ok(Exit::Ok) => 0,
        Ok(Exit::ApiError) => 1,
        Err(e) => {
            // Account data and request values reach error messages: no raw control
            // characters on the terminal.
            eprintln!("sgsim: error: {}", sgsim::term::escape(&format!("{e:#}")));
            2
        }
    }
}

/// Reads `@file` or returns the text itself.
pub fn text_or_file(arg: &str) -> anyhow::Result<String> {
    match arg.strip_prefix('@') {
        Some(path) => {
            let bytes =
                std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read {path}: {e}"))?;
            // As exports: a UTF-8 byte-order mark is dropped, UTF-16 and bad bytes named.
            let text = sgsim::provider::json::text(&bytes)
                .map_err(|e| anyhow::anyhow!("cannot read {path}: {e}"))?;
            Ok(text.to_string())
        }
        None => Ok(arg.to_string()),
    }
}

/// Prints a warning on stderr, its control characters escaped ([`sgsim::term`]).
pub fn warn(w: &dyn std::fmt::Display) {
    eprintln!("sgsim: warning: {}", sgsim::term::escape(&w.to_string()));
}

/// Prints what was read from a traffic input on stderr, control characters escaped (its
/// examples quote the input).
pub fn note_read(path: &std::path::Path, source: &sgsim::packet::Source<'_>) {
    let text = format!(
        "{} ({}): {}",
        path.display(),
        source.kind(),
        source.summary()
    );
    eprintln!("sgsim: {}", sgsim::term::escape_lines(&text));
}

/// The most packets a streamed synthetic flag (`synth --packets`, `whatif --synthetic`)
/// takes: about three minutes of generation.
pub const MAX_STREAMED: u64 = 1_000_000_000;
/// The most rules or packets a flag that builds them in memory takes (`bench --rules`,
/// `--packets`): 10 million, a few hundred MB at most.
pub const MAX_IN_MEMORY: u64 = 10_000_000;

/// A count flag: an integer in `min..=max`, else clap's range error (exit 2), never a
/// capacity overflow or an out-of-memory abort later.
pub fn count(min: u64, max: u64) -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::<usize>::new().range(min..=max)
}

/// A fraction flag: a number in 0..=1 (NaN and infinities refused).
pub fn fraction(text: &str) -> Result<f64, String> {
    let x: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    if (0.0..=1.0).contains(&x) {
        Ok(x)
    } else {
        Err(format!("{text} is not in 0..=1"))
    }
}
