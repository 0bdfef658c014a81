//! Flags, subcommands and exit codes. Exit 0 on success, 1 when a simulated cloud API
//! answers with an error, 2 for unusable input (unreadable file, malformed data, bad flags).

mod bench;
mod classbench;
mod demo;
mod eval;
mod packets;
mod revoke;
#[cfg(feature = "serve")]
mod serve;
mod synth;
mod whatif;

use std::io::Write;
use std::path::{Path, PathBuf};

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
    /// Apply a revoke request as the cloud API would; print the API's response.
    Revoke(revoke::RevokeArgs),
    /// Serve the EC2 Query and ECS RPC APIs on localhost for real clients.
    #[cfg(feature = "serve")]
    Serve(serve::Args),
    /// Print every atomic rule of a state, one JSON object per line.
    Rules(revoke::RulesArgs),
    /// What a revoke changes: the API's answer, the exact header space, traffic before/after.
    Whatif(whatif::Args),
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
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    let result = match cli.command.unwrap_or(Command::Demo) {
        Command::Demo => demo::run(),
        Command::Bench(args) => bench::run(args),
        Command::Classbench(args) => classbench::run(args),
        Command::Revoke(args) => revoke::run_revoke(args),
        Command::Rules(args) => revoke::run_rules(args),
        #[cfg(feature = "serve")]
        Command::Serve(args) => serve::run(args),
        Command::Whatif(args) => whatif::run(args),
        Command::Lint(args) => whatif::run_lint(args),
        Command::Packets(args) => packets::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Synth(args) => synth::run(args),
    };
    match result {
        Ok(Exit::Ok) => 0,
        Ok(Exit::ApiError) => 1,
        Err(e) => {
            eprintln!("sgsim: error: {e:#}");
            2
        }
    }
}

/// Reads `@file` or returns the text itself.
pub fn text_or_file(arg: &str) -> anyhow::Result<String> {
    match arg.strip_prefix('@') {
        Some(path) => {
            std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read {path}: {e}"))
        }
        None => Ok(arg.to_string()),
    }
}

/// Writes `contents` to `path` atomically (a temporary file renamed into place).
pub fn write_atomic(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp: PathBuf = dir.join(format!(
        ".{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ));
    let mut f = std::fs::File::create(&tmp)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", tmp.display()))?;
    f.write_all(contents)
        .and_then(|_| f.sync_all())
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))
}
