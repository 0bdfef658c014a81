//! The `sgsim` command line: a thin layer over the library (clap, anyhow, progress bars).

mod cli;

fn main() {
    std::process::exit(cli::run());
}
