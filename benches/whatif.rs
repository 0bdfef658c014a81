//! The traffic what-if end to end: a capture of whole sessions (`sgsim synth --sessions` on
//! the security-group-shaped account, 1M packets, in memory) decoded and judged before and
//! after a revoke by connection (`whatif::traffic::Run`), next to decoding it alone, as
//! `sgsim bench --whatif` measures it. Throughput in packets.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sgsim::internal::bench::{session_capture, sg_state, SgShape};
use sgsim::packet::{read_ahead, Item, Source};
use sgsim::provider::RawRequest;
use sgsim::whatif::traffic::{Config, Judge, Run};

const PACKETS: usize = 1_000_000;
/// Items per chunk, as `sgsim whatif` reads them.
const CHUNK: usize = 65536;

fn read(bytes: &[u8], mut f: impl FnMut(&[Item])) {
    let mut source = Source::open(bytes).expect("capture");
    read_ahead(&mut source, CHUNK, |chunk, _| {
        f(chunk);
        Ok::<_, ()>(())
    })
    .expect("no consumer error")
    .expect("capture reads");
}

fn bench(c: &mut Criterion) {
    let state = sg_state(&SgShape::default(), 1);
    // The first ingress accept rule whose revoke changes some header space.
    let plan = state
        .rules
        .iter()
        .filter(|r| {
            r.direction == sgsim::model::Direction::Ingress
                && r.action == sgsim::model::Action::Accept
        })
        .find_map(|r| {
            let request = format!(
                "Action=RevokeSecurityGroup&RegionId=cn-hangzhou&SecurityGroupId={}&SecurityGroupRuleId.1={}",
                r.group, r.id
            );
            let plan = sgsim::whatif::plan(&state, &RawRequest::parse(&request).ok()?).ok()?;
            (!plan.report.header_space.is_empty()).then_some(plan)
        })
        .expect("some revoke changes something");
    let bytes = session_capture(&state, PACKETS, 1);
    let config = Config::default().with_partitions((rayon::current_num_threads() * 4).max(1));
    let judge = Judge::new(&state, &plan.outcome.state, config).expect("judge");
    let mut group = c.benchmark_group("whatif");
    group.throughput(Throughput::Elements(PACKETS as u64));
    group.sample_size(10);
    group.bench_function("decode", |b| {
        b.iter(|| {
            let mut n = 0;
            read(&bytes, |chunk| n += chunk.len());
            black_box(n)
        })
    });
    group.bench_function("decode_whatif", |b| {
        b.iter(|| {
            let mut run = Run::new(&judge);
            read(&bytes, |chunk| run.feed(chunk));
            let mut report = plan.report.clone();
            run.finish(&mut report, &state);
            black_box(report.connections.total)
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
