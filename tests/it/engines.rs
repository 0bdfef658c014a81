//! Differential properties: on random rule sets and packets, the compiled engine, the rayon
//! path and the live table after revokes all agree with the reference engine; and a live
//! table under concurrent readers never shows a batch a mix of old and new rules.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use proptest::prelude::*;
use sgsim::classify::live::{Change, Live};
use sgsim::classify::reference::Reference;
use sgsim::classify::{Engine, Named, Point};
use sgsim::compile::{compile, Config};
use sgsim::model::{
    Action, Cidr, Direction, Eni, GroupKind, Header, Peer, PortRange, PrefixList, Priority,
    Protocol, Provider, Rule, SecurityGroup, State,
};

/// Addresses from a small pool so rules and packets overlap often.
fn addr(v6: bool, x: u8, y: u8) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::new(
            0x2001,
            0xdb8,
            u16::from(x & 3),
            0,
            0,
            0,
            0,
            u16::from(y & 7),
        ))
    } else {
        IpAddr::V4(Ipv4Addr::new(10, x & 3, 0, y & 7))
    }
}

fn arb_cidr() -> impl Strategy<Value = Cidr> {
    (any::<bool>(), 0u8..4, 0u8..8, 0u8..=4).prop_map(|(v6, x, y, shrink)| {
        let a = addr(v6, x, y);
        let max = if v6 { 128 } else { 32 };
        // Lengths near the host end and a few short ones (/0, /8…).
        let len = match shrink {
            0 => 0,
            1 => max / 4,
            2 => max - 3,
            3 => max - 1,
            _ => max,
        };
        Cidr::new(a, len).unwrap()
    })
}

fn arb_ports() -> impl Strategy<Value = PortRange> {
    prop_oneof![
        Just(PortRange::ANY),
        (0u16..8).prop_map(PortRange::single),
        (0u16..8, 0u16..8).prop_map(|(a, b)| PortRange::new(a.min(b), a.max(b)).unwrap()),
    ]
}

fn arb_protocol() -> impl Strategy<Value = Protocol> {
    prop_oneof![
        Just(Protocol::Any),
        Just(Protocol::TCP),
        Just(Protocol::UDP),
        Just(Protocol::ICMP)
    ]
}

const GROUPS: [&str; 3] = ["sg-0", "sg-1", "sg-2"];

fn arb_rule(i: usize) -> impl Strategy<Value = Rule> {
    (
        0usize..3,
        any::<bool>(),
        any::<bool>(),
        1u32..5,
        arb_protocol(),
        arb_ports(),
        arb_ports(),
        prop_oneof![
            4 => arb_cidr().prop_map(Peer::cidr),
            1 => (0usize..3).prop_map(|g| Peer::Group { group_id: GROUPS[g].into(), owner: None }),
            1 => Just(Peer::PrefixList { prefix_list_id: "pl-0".into() }),
        ],
        proptest::option::of(arb_cidr()),
    )
        .prop_map(
            move |(g, ingress, accept, prio, protocol, sp, dp, remote, local)| {
                let local = match (&remote, local) {
                    (Peer::Cidr { cidr }, Some(l)) if cidr.family() != l.family() => None,
                    (_, l) => l,
                };
                Rule {
                    id: format!("r{i}").into(),
                    group: GROUPS[g].into(),
                    direction: if ingress {
                        Direction::Ingress
                    } else {
                        Direction::Egress
                    },
                    action: if accept { Action::Accept } else { Action::Drop },
                    priority: Priority(prio),
                    protocol,
                    src_ports: sp,
                    dst_ports: dp,
                    remote,
                    local,
                    description: None,
                    attrs: Default::default(),
                }
            },
        )
}

fn arb_state() -> impl Strategy<Value = State> {
    let rules = (0usize..25).prop_flat_map(|n| (0..n).map(arb_rule).collect::<Vec<_>>());
    let provider = prop_oneof![
        Just(Provider::Aws),
        Just(Provider::Aliyun),
        Just(Provider::Generic)
    ];
    let kinds = proptest::collection::vec((any::<bool>(), any::<bool>()), 3);
    let enis = proptest::collection::vec(
        (
            proptest::collection::vec((any::<bool>(), 0u8..4, 0u8..8), 1..3),
            proptest::collection::vec(0usize..3, 1..3),
        ),
        1..4,
    );
    (
        rules,
        provider,
        kinds,
        enis,
        proptest::collection::vec(arb_cidr(), 0..3),
    )
        .prop_map(|(rules, provider, kinds, enis, entries)| {
            // One group type per state: clouds never mix types on an ENI.
            let enterprise = kinds[0].0;
            State {
                groups: GROUPS
                    .iter()
                    .zip(&kinds)
                    .map(|(id, (_, inner))| SecurityGroup {
                        id: (*id).into(),
                        provider,
                        name: None,
                        description: None,
                        kind: if enterprise {
                            GroupKind::Enterprise
                        } else {
                            GroupKind::Basic
                        },
                        inner_access: if *inner { Action::Accept } else { Action::Drop },
                        vpc: None,
                        owner: None,
                        attrs: Default::default(),
                    })
                    .collect(),
                rules,
                enis: enis
                    .into_iter()
                    .enumerate()
                    .map(|(i, (ips, groups))| Eni {
                        id: format!("eni-{i}").into(),
                        ips: ips.into_iter().map(|(v6, x, y)| addr(v6, x, y)).collect(),
                        public_ips: Vec::new(),
                        groups: groups.into_iter().map(|g| GROUPS[g].into()).collect(),
                        vpc: None,
                        attrs: Default::default(),
                    })
                    .collect(),
                prefix_lists: vec![PrefixList {
                    id: "pl-0".into(),
                    name: None,
                    entries,
                }],
                ..State::default()
            }
        })
}

fn arb_header() -> impl Strategy<Value = Header> {
    (
        any::<bool>(),
        0u8..4,
        0u8..8,
        0u8..4,
        0u8..8,
        prop_oneof![Just(6u8), Just(17), Just(1), Just(47)],
        0u16..9,
        0u16..9,
    )
        .prop_map(|(v6, a, b, c, d, proto, sp, dp)| {
            Header::new(addr(v6, a, b), addr(v6, c, d), proto, sp, dp).unwrap()
        })
}

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
    for i in 0..N - 1 {
        live.apply(Change::Revoke(vec![i.to_string().into()]))
            .unwrap();
    }
    done.store(true, Ordering::Release);
    for r in readers {
        r.join().unwrap();
    }
    assert!(batches.load(Ordering::Relaxed) > 0);
    let mut out = Vec::new();
    let table = live.snapshot();
    table.classify_batch(&batch, &mut out);
    let last = (N - 1).to_string();
    assert!(out
        .iter()
        .all(|v| table.name(*v).rule.as_ref().map(|r| r.as_str()) == Some(&*last)));
}
