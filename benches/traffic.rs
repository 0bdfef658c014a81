//! Decode + classify throughput on a large synthetic capture held in memory.
//!
//! The state has 40 ENIs in 8 AWS groups with 50 rules each (CIDR peers, port ranges);
//! the capture holds 1M packets aimed at those rules (edges, replies) plus 20%
//! background. Measured in packets per second: decoding alone (one thread; then chunks
//! read ahead and decoded on the rayon pool, as `sgsim eval` reads), decoding + rules
//! only (`sgsim eval --stateless`), and decoding + evaluation with connection state
//! (parallel partitions), which is what `sgsim eval` does: on the scan-like capture (most
//! packets open a new flow) and on the same number of packets as 100k ten-packet sessions.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::json;
use sgsim::compile::Table;
use sgsim::model::{Header, State};
use sgsim::packet::{read_ahead, synth, Capture, Source};
use sgsim::track::{Config, Evaluator, Outcome};

const PACKETS: usize = 1_000_000;
/// Items per evaluation chunk, as `sgsim eval` reads them by default.
const CHUNK: usize = 16384;

fn state() -> State {
    let mut groups = Vec::new();
    let mut rules = Vec::new();
    let mut enis = Vec::new();
    for g in 0..8 {
        groups.push(json!({"id": format!("sg-{g}"), "provider": "aws"}));
        for r in 0..50 {
            let lo = 1000 + r * 37;
            rules.push(json!({
                "id": format!("sgr-{g}-{r}"), "group": format!("sg-{g}"),
                "direction": if r % 5 == 0 { "egress" } else { "ingress" },
                "action": "accept", "protocol": if r % 7 == 0 { "udp" } else { "tcp" },
                "dst_ports": format!("{lo}-{}", lo + r % 20),
                "remote": {"cidr": format!("{}.{}.{}.0/{}", 10 + g, r, r * 3 % 256, 16 + r % 9)}
            }));
        }
    }
    for e in 0..40 {
        enis.push(json!({
            "id": format!("eni-{e}"), "ips": [format!("172.16.{}.{}", e / 200, e % 200 + 1)],
            "groups": [format!("sg-{}", e % 8)]
        }));
    }
    serde_json::from_value(json!({"groups": groups, "rules": rules, "enis": enis}))
        .expect("bench state is valid")
}

/// The same number of packets as `PACKETS / 10` sessions: each opener followed by its
/// reply, alternating, ten packets a session, with up to 1,000 sessions open at once and
/// their packets interleaved at random.
fn as_sessions(openers: &[Header]) -> Vec<Header> {
    let mut rng = synth::Rng::new(7);
    let mut open: Vec<(Header, u32)> = Vec::new();
    let mut next = openers.iter();
    let mut out = Vec::with_capacity(PACKETS);
    while out.len() < PACKETS {
        if open.len() < 1000 {
            if let Some(h) = next.next() {
                open.push((*h, 0));
            }
        }
        if open.is_empty() {
            break;
        }
        let i = rng.below(open.len() as u64) as usize;
        let (h, k) = &mut open[i];
        out.push(if *k % 2 == 0 { *h } else { h.reversed() });
        *k += 1;
        if *k == 10 {
            open.swap_remove(i);
        }
    }
    out
}

/// Reads a capture as `sgsim eval` does (16k chunks read ahead) and evaluates it; the
/// number of accepting outcomes.
fn evaluate(
    table: &Table,
    state: &State,
    bytes: &[u8],
    config: Config,
    out: &mut Vec<Outcome>,
) -> usize {
    let mut ev = Evaluator::new(table, state, config).expect("evaluator");
    let mut source = Source::open(bytes).expect("capture");
    let mut accepted = 0;
    read_ahead(&mut source, CHUNK, |chunk, _| {
        ev.eval_into(chunk, out);
        accepted += out.iter().filter(|o| o.action().accepts()).count();
        Ok::<_, ()>(())
    })
    .expect("no consumer error")
    .expect("capture reads");
    accepted
}

fn bench(c: &mut Criterion) {
    let state = state();
    let table = Table::new(&state).expect("bench state compiles");
    let headers: Vec<_> = synth::aimed(&state, PACKETS, 42, 0.2)
        .into_iter()
        .map(|x| x.1)
        .collect();
    let bytes = synth::pcap_bytes(&headers, 1_700_000_000_000_000_000);
    let sessions = synth::pcap_bytes(
        &as_sessions(&headers[..PACKETS / 10]),
        1_700_000_000_000_000_000,
    );
    let mut group = c.benchmark_group("traffic");
    group.throughput(Throughput::Elements(headers.len() as u64));
    group.sample_size(10);
    group.bench_function("decode", |b| {
        b.iter(|| {
            let cap = Capture::new(&bytes[..]).expect("capture");
            black_box(cap.filter_map(Result::ok).count())
        })
    });
    group.bench_function("decode_parallel", |b| {
        b.iter(|| {
            let mut source = Source::open(&bytes[..]).expect("capture");
            let mut n = 0;
            read_ahead(&mut source, CHUNK, |chunk, _| {
                n += chunk.len();
                Ok::<_, ()>(())
            })
            .expect("no consumer error")
            .expect("capture reads");
            black_box(n)
        })
    });
    let config = Config::default();
    let mut stateless = config;
    stateless.stateless = true;
    let mut out = Vec::with_capacity(2 * CHUNK);
    group.bench_function("decode_classify", |b| {
        b.iter(|| black_box(evaluate(&table, &state, &bytes, stateless, &mut out)))
    });
    group.bench_function("decode_eval", |b| {
        b.iter(|| black_box(evaluate(&table, &state, &bytes, config, &mut out)))
    });
    group.bench_function("decode_eval_sessions", |b| {
        b.iter(|| black_box(evaluate(&table, &state, &sessions, config, &mut out)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
