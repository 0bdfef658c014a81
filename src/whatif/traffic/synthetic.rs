//! Synthetic traffic as items: packets with TCP flags one every millisecond.

use super::{ACK, SYN};
use crate::model::Header;
use crate::packet::{Item, Packet, Transport};

/// Synthetic packets as traffic items, one every millisecond from `start_ns`: TCP packets
/// carry a SYN, or an ACK when their source port is below their destination port (a
/// reply), as `sgsim synth` writes them.
pub fn synthetic_items(headers: &[Header], start_ns: u64) -> Vec<Item> {
    headers
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let flags = if h.src_port() < h.dst_port() {
                ACK
            } else {
                SYN
            };
            Item::Packet(Packet {
                index: i as u64,
                ts_ns: start_ns + i as u64 * 1_000_000,
                header: *h,
                wire_len: 64,
                cap_len: 64,
                transport: Transport::of(h, flags),
                fragment: None,
                interface: 0,
            })
        })
        .collect()
}

/// Synthetic sessions as traffic items, one packet every millisecond from `start_ns`: the
/// conversations [`crate::packet::synth::sessions`] builds from `openers`, `n` packets in
/// all.
pub fn synthetic_sessions(openers: &[Header], n: usize, start_ns: u64, seed: u64) -> Vec<Item> {
    synthetic_items_with_flags(
        &crate::packet::synth::sessions(openers, n, 1000, seed),
        start_ns,
    )
}

/// Packets with their TCP flags as traffic items, one every millisecond from `start_ns`,
/// each as long as the frame `sgsim synth --sessions` writes for it.
pub fn synthetic_items_with_flags(packets: &[(Header, u8)], start_ns: u64) -> Vec<Item> {
    packets
        .iter()
        .enumerate()
        .map(|(i, &(h, flags))| {
            let ip = if h.src().is_ipv6() { 40 } else { 20 };
            let l4 = match h.protocol() {
                6 => 20,
                17 => 12,
                _ => 8,
            };
            let len = 14 + ip + l4;
            Item::Packet(Packet {
                index: i as u64,
                ts_ns: start_ns + i as u64 * 1_000_000,
                header: h,
                wire_len: len,
                cap_len: len,
                transport: Transport::of(&h, flags),
                fragment: None,
                interface: 0,
            })
        })
        .collect()
}
