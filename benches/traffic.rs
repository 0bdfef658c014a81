//! Decode + classify throughput on a large synthetic capture held in memory.
//!
//! The state has 40 ENIs in 8 AWS groups with 50 rules each (CIDR peers, port ranges);
//! the capture holds 200k packets aimed at those rules (edges, replies) plus 20%
//! background. Measured: decoding alone, and decoding + evaluation with connection state
//! (parallel partitions), in packets per second.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::json;
use sgsim::compile::Table;
use sgsim::model::State;
use sgsim::packet::track::{Config, Evaluator};
use sgsim::packet::{synth, Capture, Item};

const PACKETS: usize = 200_000;

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

fn bench(c: &mut Criterion) {
    let state = state();
    let table = Table::new(&state).expect("bench state compiles");
    let headers: Vec<_> = synth::aimed(&state, PACKETS, 42, 0.2)
        .into_iter()
        .map(|x| x.1)
        .collect();
    let bytes = synth::pcap_bytes(&headers, 1_700_000_000_000_000_000);
    let mut group = c.benchmark_group("traffic");
    group.throughput(Throughput::Elements(headers.len() as u64));
    group.sample_size(10);
    group.bench_function("decode", |b| {
        b.iter(|| {
            let cap = Capture::new(&bytes[..]).expect("capture");
            black_box(cap.filter_map(Result::ok).count())
        })
    });
    group.bench_function("decode_eval", |b| {
        b.iter(|| {
            let mut ev = Evaluator::new(&table, &state, Config::default()).expect("evaluator");
            let mut cap = Capture::new(&bytes[..]).expect("capture");
            let mut chunk = Vec::with_capacity(65536);
            let mut accepted = 0u64;
            loop {
                chunk.clear();
                chunk.extend(
                    cap.by_ref()
                        .take(65536)
                        .filter_map(Result::ok)
                        .map(Item::Packet),
                );
                if chunk.is_empty() {
                    break;
                }
                accepted += ev
                    .eval(&chunk)
                    .iter()
                    .filter(|o| o.action() == sgsim::model::Action::Accept)
                    .count() as u64;
            }
            black_box(accepted)
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
