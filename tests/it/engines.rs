//! Differential properties: on random rule sets and packets, the compiled engine, the rayon
//! path and the live table after revokes all agree with the reference engine; and a live
//! table under concurrent readers never shows a batch a mix of old and new rules.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use proptest::prelude::*;
use sgsim::classify::live::{Change, Live};
use sgsim::classify::reference::Reference;
use sgsim::classify::{Engine, Named, Point};
use sgsim::compile::{compile, Config};
use sgsim::model::{Direction, Header, State};

use crate::gen::{arb_header, arb_state};

fn queries(state: &State, headers: &[Header]) -> Vec<(Point, Header)> {
    let mut out = Vec::new();
    for eni in 0..state.enis.len() as u32 {
        for direction in Direction::BOTH {
            for h in headers {
                out.push((Point { eni, direction }, *h));
            }
        }
    }
    out
}

fn named(e: &impl Engine, q: &[(Point, Header)]) -> Vec<Named> {
    let mut out = Vec::new();
    e.classify_batch(q, &mut out);
    out.into_iter().map(|v| e.name(v)).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn compiled_and_parallel_equal_reference(
        state in arb_state(),
        headers in proptest::collection::vec(arb_header(), 1..40),
        leaf_size in 1usize..10,
    ) {
        let q = queries(&state, &headers);
        let reference = Reference::new(&state).unwrap();
        let expected = named(&reference, &q);
        let table = compile(&state, &Config { leaf_size, ..Config::default() }).unwrap();
        prop_assert_eq!(&named(&table, &q), &expected);
        let par: Vec<Named> = table.classify_par(&q).into_iter().map(|v| table.name(v)).collect();
        prop_assert_eq!(&par, &expected);
    }

    #[test]
    fn live_table_after_revokes_equals_reference_of_new_state(
        state in arb_state(),
        headers in proptest::collection::vec(arb_header(), 1..30),
        picks in proptest::collection::vec(any::<proptest::sample::Index>(), 0..6),
        leaf_size in 1usize..6,
    ) {
        let q = queries(&state, &headers);
        let live = Live::new(state.clone(), Config { leaf_size, max_dead_fraction: 0.5 }).unwrap();
        let mut current = state.clone();
        for pick in picks {
            if current.rules.is_empty() {
                break;
            }
            let id = current.rules[pick.index(current.rules.len())].id.clone();
            live.apply(Change::Revoke(vec![id.clone()])).unwrap();
            current.rules.retain(|r| r.id != id);
            let reference = Reference::new(&current).unwrap();
            prop_assert_eq!(named(&*live.snapshot(), &q), named(&reference, &q));
        }
        prop_assert_eq!(live.state(), current);
    }
}

#[test]
fn revoking_an_unknown_rule_changes_nothing() {
    let state = sgsim::classbench::state_of(vec![sgsim::classbench::parse_filter(
        "@10.0.0.0/8\t0.0.0.0/0\t0 : 65535\t0 : 65535\t0x00/0x00\t0x0000/0x0000",
        0,
    )
    .unwrap()]);
    let live = Live::new(state.clone(), Config::default()).unwrap();
    let before = live.snapshot();
    assert!(live
        .apply(Change::Revoke(vec!["0".into(), "nope".into()]))
        .is_err());
    assert!(
        Arc::ptr_eq(&before, &live.snapshot()),
        "the table was not swapped"
    );
    assert_eq!(live.state(), state);
}

/// Readers judge batches at full speed while a writer revokes rules one by one. Every rule
/// matches every packet of the batch and rule *k* sits at priority *k*, so after *k* revokes
/// rule *k* decides every packet. A batch judged against one snapshot therefore names one
/// deciding rule for all its packets; a batch that saw a mix of tables would name two.
#[test]
fn concurrent_readers_never_see_a_mix_of_old_and_new_rules() {
    const N: u32 = 200;
    let rules = (0..N)
        .map(|i| {
            sgsim::classbench::parse_filter(
                "@10.0.0.0/8\t0.0.0.0/0\t0 : 65535\t0 : 65535\t0x06/0xFF\t0x0000/0x0000",
                i,
            )
            .unwrap()
        })
        .collect();
    let state = sgsim::classbench::state_of(rules);
    let live = Arc::new(Live::new(state, Config::default()).unwrap());
    let batch: Vec<(Point, Header)> = (0..4096u16)
        .map(|p| {
            (
                sgsim::classbench::POINT,
                Header::new(
                    "10.1.1.1".parse().unwrap(),
                    "192.168.0.1".parse().unwrap(),
                    6,
                    p,
                    p.wrapping_mul(7),
                )
                .unwrap(),
            )
        })
        .collect();
    let done = Arc::new(AtomicBool::new(false));
    let batches = Arc::new(AtomicUsize::new(0));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (live, batch, done, batches) =
                (live.clone(), batch.clone(), done.clone(), batches.clone());
            std::thread::spawn(move || {
                let mut out = Vec::new();
                let mut last = 0;
                while !done.load(Ordering::Acquire) {
                    let table = live.snapshot();
                    table.classify_batch(&batch, &mut out);
                    let first = out[0].by;
                    assert!(
                        out.iter().all(|v| v.by == first),
                        "a batch saw a mix of tables"
                    );
                    let sgsim::classify::By::Rule(k) = first else {
                        panic!("a rule decides")
                    };
                    // Table indexes restart when a revise recompiles; rule IDs do not.
                    let k: u32 = table.rule_id(k).as_str().parse().unwrap();
                    assert!(k >= last, "a reader went back in time");
                    last = k;
                    batches.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    // Revokes stream in while the readers run: before each tenth revoke, wait (up to 10 s)
    // until the readers have finished another batch, so that a busy machine cannot let the
    // writer finish before any reader starts.
    let wait_for_a_batch = || {
        let seen = batches.load(Ordering::Relaxed);
        let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while batches.load(Ordering::Relaxed) == seen && std::time::Instant::now() < until {
            std::thread::yield_now();
        }
    };
    for i in 0..N - 1 {
        if i % 10 == 0 {
            wait_for_a_batch();
        }
        live.apply(Change::Revoke(vec![i.to_string().into()]))
            .unwrap();
    }
    done.store(true, Ordering::Release);
    for r in readers {
        r.join().unwrap();
    }
    assert!(batches.load(Ordering::Relaxed) >= (N as usize - 1) / 10);
    let mut out = Vec::new();
    let table = live.snapshot();
    table.classify_batch(&batch, &mut out);
    let last = (N - 1).to_string();
    assert!(out
        .iter()
        .all(|v| table.name(*v).rule.as_ref().map(|r| r.as_str()) == Some(&*last)));
}
