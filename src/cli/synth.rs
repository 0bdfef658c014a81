//! `sgsim synth`: write seeded synthetic traffic aimed at a state's rules as a pcap.

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;

use anyhow::Context as _;

use super::revoke::StateArgs;
use super::Exit;
use sgsim::packet::synth;

#[derive(clap::Args, Debug)]
pub struct SynthArgs {
    #[command(flatten)]
    pub state: StateArgs,
    /// Where to write the capture (pcap, Ethernet, nanosecond timestamps).
    #[arg(long, value_name = "PATH")]
    pub out: PathBuf,
    /// Number of packets.
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    pub packets: usize,
    /// Seed: the same state, count and seed give the same capture.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Fraction of uniform background traffic (0 to 1).
    #[arg(long, default_value_t = 0.2, value_name = "F")]
    pub background: f64,
    /// Timestamp of the first packet, Unix seconds (packets are 1 ms apart).
    #[arg(long, default_value_t = 1_700_000_000, value_name = "SECS")]
    pub start: u64,
    /// Whole sessions (TCP handshake, data and FIN; UDP and ICMP echo exchanges) opened by
    /// the aimed packets, up to 1,000 at once, interleaved, instead of single packets.
    #[arg(long)]
    pub sessions: bool,
}

pub fn run(args: SynthArgs) -> anyhow::Result<Exit> {
    let state = args.state.load()?;
    let packets = synth::aimed(&state, args.packets, args.seed, args.background);
    let file =
        File::create(&args.out).with_context(|| format!("cannot write {}", args.out.display()))?;
    let mut w = synth::PcapWriter::new(BufWriter::new(file))
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    let start = args.start.saturating_mul(1_000_000_000);
    if args.sessions {
        let openers: Vec<_> = packets.iter().map(|(_, h)| *h).collect();
        for (i, (h, flags)) in synth::sessions(&openers, args.packets, 1000, args.seed)
            .iter()
            .enumerate()
        {
            w.write_flags(start + i as u64 * 1_000_000, h, *flags)
                .with_context(|| format!("cannot write {}", args.out.display()))?;
        }
    } else {
        for (i, (_, h)) in packets.iter().enumerate() {
            w.write(start + i as u64 * 1_000_000, h)
                .with_context(|| format!("cannot write {}", args.out.display()))?;
        }
    }
    w.finish()
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    eprintln!(
        "sgsim: wrote {} packets to {}",
        packets.len(),
        args.out.display()
    );
    Ok(Exit::Ok)
}
