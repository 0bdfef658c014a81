//! `sgsim synth`: write seeded synthetic traffic aimed at a state's rules as a pcap.

use std::path::PathBuf;

use super::revoke::StateArgs;
use super::{output, Exit};
use sgsim::packet::synth;

#[derive(clap::Args, Debug)]
pub struct SynthArgs {
    #[command(flatten)]
    pub state: StateArgs,
    /// Where to write the capture (pcap, Ethernet, nanosecond timestamps).
    #[arg(long, value_name = "PATH")]
    pub out: PathBuf,
    /// Number of packets (streamed to the file: memory does not grow with it).
    #[arg(long, default_value_t = 10_000, value_name = "N",
          value_parser = super::count(0, super::MAX_STREAMED))]
    pub packets: usize,
    /// Seed: the same state, count and seed give the same capture.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Fraction of uniform background traffic (0 to 1).
    #[arg(long, default_value_t = 0.2, value_name = "F", value_parser = super::fraction)]
    pub background: f64,
    /// Timestamp of the first packet, Unix seconds (packets are 1 ms apart; pcap holds
    /// 32-bit seconds).
    #[arg(long, default_value_t = 1_700_000_000, value_name = "SECS",
          value_parser = clap::value_parser!(u64).range(0..=u64::from(u32::MAX)))]
    pub start: u64,
    /// Whole sessions (TCP handshake, data and FIN; UDP and ICMP echo exchanges) opened by
    /// the aimed packets, up to 1,000 at once, interleaved, instead of single packets.
    #[arg(long)]
    pub sessions: bool,
}

pub fn run(args: SynthArgs) -> anyhow::Result<Exit> {
    output::check("--out", &args.out)?;
    let state = args.state.load()?;
    let start = args.start.saturating_mul(1_000_000_000);
    let written = output::write_with(&args.out, |out| {
        let mut w = synth::PcapWriter::new(out)?;
        let mut n = 0u64;
        if args.sessions {
            synth::sessions_streamed(
                &state,
                args.packets as u64,
                args.seed,
                args.background,
                |block| {
                    for (h, flags) in block {
                        w.write_flags(
                            start.saturating_add(n.saturating_mul(1_000_000)),
                            h,
                            *flags,
                        )?;
                        n += 1;
                    }
                    Ok::<(), std::io::Error>(())
                },
            )?;
        } else {
            for (_, h) in synth::Aimed::new(&state, args.packets as u64, args.seed, args.background)
            {
                w.write(start.saturating_add(n.saturating_mul(1_000_000)), &h)?;
                n += 1;
            }
        }
        w.finish()?;
        Ok(n)
    })?;
    eprintln!(
        "sgsim: wrote {written} packets to {}",
        sgsim::term::escape(&args.out.display().to_string())
    );
    Ok(Exit::Ok)
}
