//! Classification throughput by rule count (100 to 1M synthetic rules), on the
//! security-group-shaped workload and per ClassBench set (as compiled by default, and with
//! trees only where the default chose cross-product tables), compile time,
//! revoke-to-visible latency, and batch scaling with threads. Results read as packets/s.
//!
//! ClassBench sets are read from `tests/data/classbench` (1k) and, when present, from
//! `../shared/data/classbench` (10k, 100k; `.xz` is read directly).

use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sgsim::classbench::{self, POINT};
use sgsim::classify::{Engine, Point};
use sgsim::compile::live::{Change, Live};
use sgsim::compile::{compile, Config};
use sgsim::model::{Header, State};
use sgsim::packet::synth;

const PACKETS: usize = 100_000;

fn queries(state: &State, seed: u64) -> Vec<(Point, Header)> {
    synth::headers(state, PACKETS, seed)
        .into_iter()
        .map(|h| (POINT, h))
        .collect()
}

fn classify_by_rule_count(c: &mut Criterion) {
    let mut g = c.benchmark_group("classify/synthetic");
    g.sample_size(10);
    g.throughput(Throughput::Elements(PACKETS as u64));
    for n in [100usize, 1_000, 10_000, 100_000, 1_000_000] {
        let state = classbench::synthetic_filters(n, 7);
        let table = compile(&state, &Config::default()).expect("compiles");
        let q = queries(&state, 11);
        let mut out = Vec::with_capacity(q.len());
        g.bench_with_input(BenchmarkId::from_parameter(n), &q, |b, q| {
            b.iter(|| table.classify_batch(black_box(q), &mut out))
        });
    }
    g.finish();
}

fn classify_sg(c: &mut Criterion) {
    let mut g = c.benchmark_group("classify/sg");
    g.sample_size(10);
    let state = sgsim::internal::bench::sg_state(&sgsim::internal::bench::SgShape::default(), 1);
    let table = compile(&state, &Config::default()).expect("compiles");
    let q = sgsim::internal::bench::sg_queries(&state, PACKETS, 2);
    let mut out = Vec::with_capacity(q.len());
    g.throughput(Throughput::Elements(q.len() as u64));
    g.bench_with_input(
        BenchmarkId::from_parameter(state.rules.len()),
        &q,
        |b, q| b.iter(|| table.classify_batch(black_box(q), &mut out)),
    );
    g.finish();
}

fn classbench_sets() -> Vec<(String, PathBuf, Option<PathBuf>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let local = root.join("tests/data/classbench");
    let shared = root.join("../shared/data/classbench");
    let mut out = Vec::new();
    for seed in ["acl1", "fw1", "ipc1"] {
        for size in ["1k", "10k", "100k"] {
            let name = format!("{seed}_{size}");
            let found = [
                local.join(&name),
                shared.join(&name),
                shared.join(format!("{name}.xz")),
            ]
            .into_iter()
            .find(|p| p.exists());
            let trace = [
                local.join(format!("{name}_trace.xz")),
                shared.join(format!("{name}_trace")),
                shared.join(format!("{name}_trace.xz")),
            ]
            .into_iter()
            .find(|p| p.exists());
            if let Some(f) = found {
                out.push((name, f, trace));
            }
        }
    }
    out
}

fn classify_classbench(c: &mut Criterion) {
    let mut g = c.benchmark_group("classify/classbench");
    g.sample_size(10);
    for (name, filters, trace) in classbench_sets() {
        let state = classbench::read_filters(&filters).expect("readable set");
        let q: Vec<(Point, Header)> = match trace {
            Some(t) => classbench::read_trace(&t)
                .expect("readable trace")
                .into_iter()
                .map(|e| (POINT, e.header))
                .collect(),
            None => queries(&state, 3),
        };
        // The compiler's choice, and trees alone where it chose cross-product tables.
        let mut trees = Config::default();
        trees.cross_min_filters = usize::MAX;
        g.throughput(Throughput::Elements(q.len() as u64));
        let auto = compile(&state, &Config::default()).expect("compiles");
        let mut tables = vec![("auto", auto)];
        if tables[0].1.index_summary().cross_product_tables > 0 {
            tables.push(("trees", compile(&state, &trees).expect("compiles")));
        }
        for (label, table) in tables {
            let mut out = Vec::with_capacity(q.len());
            g.bench_with_input(BenchmarkId::new(label, &name), &q, |b, q| {
                b.iter(|| table.classify_batch(black_box(q), &mut out))
            });
        }
    }
    g.finish();
}

fn compile_time(c: &mut Criterion) {
    let mut g = c.benchmark_group("compile");
    g.sample_size(10);
    for n in [1_000usize, 10_000, 100_000] {
        let state = classbench::synthetic_filters(n, 7);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &state, |b, s| {
            b.iter(|| compile(black_box(s), &Config::default()).expect("compiles"))
        });
    }
    g.finish();
}

fn revoke_to_visible(c: &mut Criterion) {
    let mut g = c.benchmark_group("revoke_to_visible");
    g.sample_size(10);
    for n in [1_000usize, 10_000, 100_000] {
        let state = classbench::synthetic_filters(n, 7);
        g.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter_batched(
                || Live::new(state.clone(), Config::default()).expect("compiles"),
                |live| {
                    let victim = (n / 2).to_string();
                    live.apply(Change::Revoke(vec![victim.into()]))
                        .expect("known rule");
                    live
                },
                criterion::BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

fn batch_scaling(c: &mut Criterion) {
    let mut g = c.benchmark_group("batch_threads");
    g.sample_size(10);
    let state = classbench::synthetic_filters(10_000, 7);
    let table = compile(&state, &Config::default()).expect("compiles");
    let q: Vec<(Point, Header)> = synth::headers(&state, 1_000_000, 5)
        .into_iter()
        .map(|h| (POINT, h))
        .collect();
    g.throughput(Throughput::Elements(q.len() as u64));
    for threads in [1usize, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("thread pool");
        let mut out = Vec::with_capacity(q.len());
        g.bench_with_input(BenchmarkId::from_parameter(threads), &q, |b, q| {
            b.iter(|| pool.install(|| table.classify_par_into(black_box(q), &mut out)))
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    classify_by_rule_count,
    classify_sg,
    classify_classbench,
    compile_time,
    revoke_to_visible,
    batch_scaling
);
criterion_main!(benches);
