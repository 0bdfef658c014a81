//! Flags, subcommands and exit codes. Exit 0 on success, 1 when a simulated cloud API
//! answers with an error, 2 for unusable input (unreadable file, malformed data, bad flags).

mod bench;
mod classbench;
mod demo;
mod revoke;

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
    /// Print every atomic rule of a state, one JSON object per line.
    Rules(revoke::RulesArgs),
}

/// Exit code for a finished command.
pub enum Exit {
    /// Success.
    Ok,
    /// The simulated API answered with an error.
    ApiError,
}

pub fn run() -> i32 {
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
