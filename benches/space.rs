//! The exact header-space diff (revoking the catch-all, or `sgr-00-0` on the fleet) and
//! lint, as `sgsim bench --space` measures them: against rules per group for issue #21's
//! one-, two- and four-field shapes (and the AWS shape), and against ENIs on its fleet.
//! Throughput in rules (field shapes) or ENIs (fleet), so growth reads off the curve.
//!
//! The fleet stops at 16,000 ENIs and the largest points take few samples, to keep the
//! run modest; `sgsim bench --space --space-enis …` goes to 100,000.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sgsim::internal::bench::{field_state, fleet_state, FieldShape};
use sgsim::model::RuleId;
use sgsim::whatif::{lint, space};

fn shapes(c: &mut Criterion) {
    let catch_all: Vec<RuleId> = vec!["sgr-catch-all".into()];
    for shape in FieldShape::ALL {
        let name = serde_json::to_value(shape).expect("a shape serializes");
        let name = name.as_str().unwrap_or("shape");
        let mut group = c.benchmark_group(format!("space/{name}"));
        group.sample_size(10);
        for rules in [10, 100, 1000] {
            let state = field_state(shape, shape.k_for(rules));
            group.throughput(Throughput::Elements(state.rules.len() as u64));
            group.bench_with_input(BenchmarkId::new("diff", rules), &state, |b, s| {
                b.iter(|| {
                    let diff = space::revoke_diff(s, &catch_all).expect("valid state");
                    assert!(diff.complete);
                    black_box(diff.regions.len())
                })
            });
            group.bench_with_input(BenchmarkId::new("lint", rules), &state, |b, s| {
                b.iter(|| {
                    let found = lint::lint(s).expect("valid state");
                    assert!(found.complete);
                    black_box(found.findings.len())
                })
            });
        }
        group.finish();
    }
}

fn fleet(c: &mut Criterion) {
    let revoked: Vec<RuleId> = vec!["sgr-00-0".into()];
    let mut group = c.benchmark_group("space/fleet");
    group.sample_size(10);
    for enis in [1_000, 4_000, 16_000] {
        let state = fleet_state(enis, 1);
        group.throughput(Throughput::Elements(enis as u64));
        group.bench_with_input(BenchmarkId::new("diff", enis), &state, |b, s| {
            b.iter(|| {
                let diff = space::revoke_diff(s, &revoked).expect("valid state");
                assert!(diff.complete);
                black_box(diff.regions.len())
            })
        });
        group.bench_with_input(BenchmarkId::new("lint", enis), &state, |b, s| {
            b.iter(|| {
                let found = lint::lint(s).expect("valid state");
                assert!(found.complete);
                black_box(found.findings.len())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, shapes, fleet);
criterion_main!(benches);
