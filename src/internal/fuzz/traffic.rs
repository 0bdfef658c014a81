//! Harnesses of traffic: frame decoding, synthetic traffic, evaluation with connection
//! state.

use std::net::IpAddr;

use super::providers::aws_fixture;
use crate::classify::reference::Reference;
use crate::compile::Table;
use crate::model::State;

/// Synthetic traffic with the numbers a command line can give (issue 22): any count, seed
/// and background fraction (NaN, infinities, out of range) yields at most the count asked
/// for, lazily (a count of 2^64-1 allocates nothing up front), deterministically.
pub fn synthetic(data: &[u8]) {
    let word = |i: usize| {
        let mut w = [0u8; 8];
        for (j, b) in data.iter().skip(i * 8).take(8).enumerate() {
            w[j] = *b;
        }
        u64::from_le_bytes(w)
    };
    let (n, seed, background) = (word(0), word(1), f64::from_bits(word(2)));
    let state = aws_fixture();
    let take = 64;
    let first: Vec<_> = crate::packet::synth::Aimed::new(state, n, seed, background)
        .take(take)
        .collect();
    assert!(first.len() as u64 <= n.min(take as u64));
    let again: Vec<_> = crate::packet::synth::Aimed::new(state, n, seed, background)
        .take(take)
        .collect();
    assert_eq!(first, again, "synthetic traffic is deterministic");
}

/// Any traffic input (pcap, pcapng, flow logs; detected by content): reading never panics,
/// ends (the reader consumes input on every step), and every decoded header is consistent;
/// reading in chunks (captures: decoded on the rayon pool) gives the same items and
/// summary; and evaluation over a state whose ENIs own the first addresses seen gives the
/// same outcomes sequentially, in flow partitions and with the reference engine (with and
/// without connection state).
pub fn traffic(data: &[u8]) {
    use crate::packet::{Item, Source};
    use crate::track::{self, Evaluator};
    let Ok(mut source) = Source::open(data) else {
        return;
    };
    let mut items = Vec::new();
    let mut steps = 0usize;
    let mut failed = false;
    for item in source.by_ref() {
        steps += 1;
        assert!(steps <= data.len() + 2, "the reader does not advance");
        let Ok(item) = item else {
            failed = true;
            break;
        };
        assert!(
            items.last().is_none_or(|l: &Item| item.index() > l.index()),
            "indexes go forward"
        );
        items.push(item);
    }
    let header = |item: &Item| match item {
        Item::Packet(p) => p.header,
        Item::Flow(r) => r.header,
    };
    for h in items.iter().map(header) {
        assert_eq!(
            crate::model::Family::of(h.src()),
            crate::model::Family::of(h.dst()),
            "a header mixes families"
        );
    }
    // Mid-file corruption (issue 22): a capture that ends without an error was read to its
    // end, but for a last record cut short, which is counted.
    if let (Source::Capture(c), false) = (&source, failed) {
        let cut = c
            .summary()
            .skipped
            .keys()
            .any(|k| k.contains("runs past the end"));
        assert!(
            c.consumed() == data.len() as u64 || cut,
            "a capture ended early without an error: {} of {} bytes",
            c.consumed(),
            data.len()
        );
    }
    let mut chunked = Source::open(data).expect("it opened once");
    let mut again = Vec::new();
    let max = 1 + data.len() % 5;
    while let Ok(true) = chunked.read_chunk(max, &mut again) {}
    assert_eq!(again, items, "chunked reading differs");
    assert_eq!(
        chunked.summary(),
        source.summary(),
        "chunked summary differs"
    );

    let mut ips: Vec<IpAddr> = Vec::new();
    for h in items.iter().map(header) {
        for a in [h.src(), h.dst()] {
            if ips.len() < 4 && !ips.contains(&a) {
                ips.push(a);
            }
        }
    }
    if ips.is_empty() {
        return;
    }
    let provider = if data.len().is_multiple_of(2) {
        "aws"
    } else {
        "aliyun"
    };
    let state: State = serde_json::from_value(serde_json::json!({
        "groups": [{"id": "sg-a", "provider": provider}],
        "rules": [
            {"id": "r-low", "group": "sg-a", "direction": "ingress", "action": "accept",
             "protocol": 6, "dst_ports": "0-1023", "remote": {"cidr": "0.0.0.0/0"}},
            {"id": "r-udp", "group": "sg-a", "direction": "ingress", "action": "accept",
             "protocol": 17, "remote": {"cidr": "::/0"}},
            {"id": "r-ping", "group": "sg-a", "direction": "ingress", "action": "accept",
             "protocol": 1, "remote": {"cidr": "0.0.0.0/0"}},
            {"id": "r-out", "group": "sg-a", "direction": "egress", "action": "accept",
             "protocol": "all", "remote": {"cidr": "0.0.0.0/0"}}
        ],
        "enis": ips.iter().enumerate().map(|(i, ip)| serde_json::json!(
            {"id": format!("eni-{i}"), "ips": [ip.to_string()], "groups": ["sg-a"]}
        )).collect::<Vec<_>>()
    }))
    .expect("the fuzz state is valid");
    let table = Table::new(&state).expect("the fuzz state compiles");
    let reference = Reference::new(&state).expect("the fuzz state is consistent");
    let chunk = 1 + data.len() % 7;
    for stateless in [false, true] {
        // A small flow bound: evictions (issue 22) must not depend on the partitioning.
        let max_flows = 2 + data.len() % 8;
        let config = |partitions| track::Config {
            partitions,
            stateless,
            max_flows,
            ..track::Config::default()
        };
        let mut sequential = Evaluator::new(&table, &state, config(1)).expect("evaluator");
        let mut partitioned = Evaluator::new(&table, &state, config(4)).expect("evaluator");
        let mut oracle =
            Evaluator::with_engine(&reference, &table, &state, config(3)).expect("evaluator");
        for c in items.chunks(chunk) {
            let expected = sequential.eval(c);
            assert_eq!(
                partitioned.eval(c),
                expected,
                "flow partitions change outcomes"
            );
            assert_eq!(oracle.eval(c), expected, "the reference engine disagrees");
        }
        assert_eq!(sequential.stats(), partitioned.stats());
    }
}

/// One raw frame of every supported link type (the first byte picks it): decoding never
/// panics, and what decodes agrees with the frame's own length.
pub fn frame(data: &[u8]) {
    const LINK_TYPES: [i32; 10] = [1, 113, 276, 12, 14, 101, 228, 229, 0, 108];
    let Some((&pick, frame)) = data.split_first() else {
        return;
    };
    let link = LINK_TYPES[usize::from(pick) % LINK_TYPES.len()];
    let meta = crate::packet::decode::Meta {
        index: 0,
        ts_ns: 0,
        wire_len: frame.len() as u32,
        interface: 0,
    };
    if let Ok(p) = crate::packet::decode::decode(link, frame, meta) {
        assert!(
            p.cap_len as usize <= frame.len(),
            "captured length beyond the frame"
        );
        // The header's words are what the transport header holds (0 and 0 when none).
        assert_eq!(
            p.transport.words(),
            (p.header.src_port(), p.header.dst_port())
        );
    }
}
