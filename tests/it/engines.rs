//! Differential properties: on random rule sets and packets, the compiled engine, the rayon
//! path and the live table after revokes all agree with the reference engine; and a live
//! table under concurrent readers never shows a batch a mix of old and new rules.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use proptest::prelude::*;
use sgsim::classify::reference::Reference;
use sgsim::classify::{Engine, Named, Point};
use sgsim::compile::live::{Change, Live};
use sgsim::compile::{compile, Config};
use sgsim::model::{Direction, Header, State};

use crate::gen::{arb_header, arb_member_header, arb_member_state, arb_state};

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

/// Revokes the picked rules one at a time on a live table over `state`: after each, the
/// live table agrees with the reference engine of the state without them.
fn revokes_agree_with_reference(
    state: &State,
    config: Config,
    picks: &[proptest::sample::Index],
    q: &[(Point, Header)],
) -> Result<(), TestCaseError> {
    let live = Live::new(state.clone(), config).unwrap();
    let mut current = state.clone();
    for pick in picks {
        if current.rules.is_empty() {
            break;
        }
        let id = current.rules[pick.index(current.rules.len())].id.clone();
        live.apply(Change::Revoke(vec![id.clone()])).unwrap();
        current.rules.retain(|r| r.id != id);
        let reference = Reference::new(&current).unwrap();
        prop_assert_eq!(named(&*live.snapshot(), q), named(&reference, q));
    }
    prop_assert_eq!(live.state(), current);
    Ok(())
}

/// A compile configuration: trees with leaves of `leaf_size` (`index` 0; 3: trees that
/// start from address blocks wherever their rules allow, however few), or cross-product
/// tables for every unit's IPv4 rules, ending in the full product (1) or split (2); half
/// the rules may die before a full rebuild.
fn config(leaf_size: usize, index: u8) -> Config {
    let mut config = Config::default();
    config.leaf_size = leaf_size;
    config.max_dead_fraction = 0.5;
    config.cross_min_filters = if matches!(index, 1 | 2) {
        0
    } else {
        usize::MAX
    };
    config.cross_alone_only = false;
    config.cross_product_tail = index != 2;
    config.blocks_min_filters = if index == 3 { 0 } else { usize::MAX };
    config
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn compiled_and_parallel_equal_reference(
        state in arb_state(),
        headers in proptest::collection::vec(arb_header(), 1..40),
        leaf_size in 1usize..10,
        index in 0u8..4,
    ) {
        let q = queries(&state, &headers);
        let reference = Reference::new(&state).unwrap();
        let expected = named(&reference, &q);
        let table = compile(&state, &config(leaf_size, index)).unwrap();
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
        index in 0u8..4,
    ) {
        let q = queries(&state, &headers);
        let config = config(leaf_size, index);
        revokes_agree_with_reference(&state, config, &picks, &q)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Group peers and inner access are membership conditions in the compiled table, not
    /// one box per member: many members with non-members between them, across several
    /// group sets, both directions, before and after revokes.
    #[test]
    fn group_peers_and_inner_access_equal_reference(
        state in arb_member_state(),
        headers in proptest::collection::vec(arb_member_header(), 1..40),
        picks in proptest::collection::vec(any::<proptest::sample::Index>(), 0..5),
        leaf_size in 1usize..6,
        index in 0u8..4,
    ) {
        let q = queries(&state, &headers);
        let reference = Reference::new(&state).unwrap();
        let expected = named(&reference, &q);
        let config = config(leaf_size, index);
        let table = compile(&state, &config).unwrap();
        prop_assert_eq!(&named(&table, &q), &expected);
        let one: Vec<Named> = q.iter().map(|(p, h)| table.name(table.classify(*p, h))).collect();
        prop_assert_eq!(&one, &expected);
        let par: Vec<Named> = table.classify_par(&q).into_iter().map(|v| table.name(v)).collect();
        prop_assert_eq!(&par, &expected);

        revokes_agree_with_reference(&state, config, &picks, &q)?;
    }
}

/// A group peer's box spans its members and the non-members between them; tree regions
/// inside that span must still reach the later rules for non-members (the box never prunes
/// them), and inner access must reach only members.
#[test]
fn group_peer_box_does_not_hide_later_rules_from_non_members() {
    use crate::gen::member_addr;
    use sgsim::model::{
        Action, Cidr, Eni, GroupKind, Peer, PortRange, Priority, Protocol, Provider, Rule,
        SecurityGroup,
    };
    let group = |id: &str, inner: Action| SecurityGroup {
        id: id.into(),
        provider: Provider::Aliyun,
        name: None,
        description: None,
        kind: GroupKind::Basic,
        inner_access: inner,
        vpc: None,
        owner: None,
        attrs: Default::default(),
    };
    let rule = |i: usize, group: &str, direction, action, priority, remote, dst: PortRange| Rule {
        id: format!("r{i}").into(),
        group: group.into(),
        direction,
        action,
        priority: Priority(priority),
        protocol: Protocol::TCP,
        src_ports: PortRange::ANY,
        dst_ports: dst,
        remote,
        local: None,
        description: None,
        attrs: Default::default(),
    };
    let peer = |id: &str| Peer::Group {
        group_id: id.into(),
        owner: None,
    };
    let mut rules = Vec::new();
    for direction in Direction::BOTH {
        // First: accept anything from members of sg-odd (odd addresses).
        rules.push(Rule {
            protocol: Protocol::Any,
            ..rule(
                rules.len(),
                "sg-web",
                direction,
                Action::Accept,
                1,
                peer("sg-odd"),
                PortRange::ANY,
            )
        });
        // Then small blocks inside the members' span, which the trees cut around.
        for a in (0u8..64).step_by(2) {
            let action = if a % 4 == 0 {
                Action::Drop
            } else {
                Action::Accept
            };
            let block = Cidr::new(member_addr(false, a), 31).unwrap();
            rules.push(rule(
                rules.len(),
                "sg-web",
                direction,
                action,
                2,
                Peer::cidr(block),
                PortRange::single(u16::from(a % 5)),
            ));
        }
    }
    let eni = |i: usize, ip, groups: &[&str]| Eni {
        id: format!("eni-{i}").into(),
        ips: vec![ip],
        public_ips: Vec::new(),
        groups: groups.iter().map(|g| (*g).into()).collect(),
        vpc: None,
        attrs: Default::default(),
    };
    let mut enis = vec![eni(0, member_addr(false, 200), &["sg-web", "sg-odd"])];
    for a in (1u8..64).step_by(2) {
        enis.push(eni(enis.len(), member_addr(false, a), &["sg-odd"]));
    }
    let state = State {
        groups: vec![
            group("sg-web", Action::Drop),
            group("sg-odd", Action::Accept),
        ],
        rules,
        enis,
        ..State::default()
    };
    let headers: Vec<Header> = (0u8..64)
        .flat_map(|a| {
            (0u16..6).map(move |port| {
                Header::new(
                    member_addr(false, a),
                    member_addr(false, 200),
                    6,
                    4000,
                    port,
                )
                .unwrap()
            })
        })
        .collect();
    let q = queries(&state, &headers);
    let expected = named(&Reference::new(&state).unwrap(), &q);
    for leaf_size in 1..10 {
        let mut config = Config::default();
        config.leaf_size = leaf_size;
        let table = compile(&state, &config).unwrap();
        assert_eq!(named(&table, &q), expected, "leaf size {leaf_size}");
    }
}

/// The security-group-shaped workload costs about what a ClassBench set does per rule:
/// group references and inner access are resolved per packet, not replicated per member
/// and group set. (Memory is deterministic; the 1,836 bytes a rule this replaced were
/// mostly host filters.) Cross-product tables trade memory for speed within their budget.
#[test]
fn sg_shaped_table_memory_per_rule_is_bounded() {
    use sgsim::internal::bench::{sg_state, SgShape};
    let mut trees = Config::default();
    trees.cross_min_filters = usize::MAX;
    for (rules, bound) in [(400, 200.0), (4_000, 64.0), (20_000, 56.0)] {
        let shape = SgShape {
            rules,
            ..SgShape::default()
        };
        let state = sg_state(&shape, 1);
        let reference = Reference::new(&state).unwrap();
        let q = sgsim::internal::bench::sg_queries(&state, 2_000, 2);
        let table = compile(&state, &trees).unwrap();
        let per_rule = table.memory_usage() as f64 / rules as f64;
        assert!(
            per_rule <= bound,
            "{rules} rules: {per_rule:.1} bytes a rule, more than {bound}"
        );
        assert_eq!(named(&table, &q), named(&reference, &q), "{rules} rules");

        let config = Config::default();
        let table = compile(&state, &config).unwrap();
        let per_rule = table.memory_usage() as f64 / rules as f64;
        let budget = (config.cross_bytes_per_filter + bound as usize) as f64;
        assert!(
            per_rule <= budget,
            "{rules} rules with tables: {per_rule:.1} bytes a rule, more than {budget}"
        );
        assert_eq!(named(&table, &q), named(&reference, &q), "{rules} rules");
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
