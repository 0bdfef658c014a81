//! One evaluation against a partition's flows: the rules, connection state, and ICMP
//! flow-log records whose type the log does not carry.

use std::hash::{BuildHasher, Hash};
use std::net::IpAddr;

use hashbrown::hash_table::{Entry, HashTable, VacantEntry};
use rustc_hash::FxBuildHasher;

use super::flows::{
    is_echo_reply, is_echo_request, key, provider_of, timeout, v6_bits, Key, Tracked,
};
use super::untracked::EniInfo;
use super::Outcome;
use crate::classify::{By, Decision, Engine, Point, Verdict};
use crate::model::{Action, Header, IpProtocol, Protocol, State};

/// One evaluation to perform: an item at one point.
#[derive(Clone, Copy, Debug)]
pub(super) struct Task {
    /// Position among the evaluations of its sub-chunk.
    pub(super) slot: u32,
    pub(super) point: Point,
    pub(super) index: u64,
    pub(super) header: Header,
    pub(super) ts_ns: u64,
    /// When the item's traffic was last seen: the packet's time, a flow-log record's
    /// `end` (a record spans its aggregation window, so its flow is active until then).
    pub(super) last_ns: u64,
    /// Hash of the flow key: picks the partition and the flow-table bucket.
    pub(super) hash: u64,
    /// A flow-log record of ICMP, whose type and code the log does not carry: the action
    /// it logged, if any (see [`judge_unlogged_icmp`]).
    pub(super) unlogged_icmp: Option<Option<Action>>,
}

/// A partition: the flows whose key hashes to it, and its outcomes of the current chunk.
#[derive(Default)]
pub(super) struct Part {
    pub(super) flows4: HashTable<Tracked<u32>>,
    pub(super) flows6: HashTable<Tracked<u128>>,
    pub(super) out: Vec<(usize, Outcome)>,
}

/// Judges one task against a partition's flows, with one probe of the flow table of its
/// address family.
pub(super) fn judge<E: Engine + ?Sized>(
    engine: &E,
    enis: &[EniInfo],
    icmp_types: &[(u16, u16)],
    part: &mut Part,
    t: &Task,
) -> Outcome {
    let h = &t.header;
    let icmp = h.ip_protocol().is_icmp();
    let classify = || match t.unlogged_icmp {
        Some(logged) => judge_unlogged_icmp(engine, icmp_types, t.point, h, logged),
        None => engine.classify(t.point, h),
    };
    if icmp && t.unlogged_icmp.is_none() && !is_echo_request(h) && !is_echo_reply(h) {
        // Untracked ICMP (errors, router messages): the rules alone decide.
        return Outcome {
            index: t.index,
            point: t.point,
            verdict: engine.classify(t.point, h),
            established: false,
        };
    }
    let d = t.point.direction;
    match (h.local(d), h.remote(d)) {
        (IpAddr::V4(l), IpAddr::V4(r)) => {
            let k = key(t.point, h, u32::from(l), u32::from(r));
            judge_flow(&classify, enis, &mut part.flows4, t, k)
        }
        (l, r) => {
            let k = key(t.point, h, v6_bits(l), v6_bits(r));
            judge_flow(&classify, enis, &mut part.flows6, t, k)
        }
    }
}

/// Judges an ICMP flow-log record whose type and code the log does not carry (AWS logs
/// ICMP with ports `0 0`): by the verdicts the rules give over every type and code
/// (`types` holds one pair per class of types and codes the rules tell apart). When they
/// agree, that verdict; when they differ and the log says ACCEPT, the record can only be a
/// type some rule accepts (or a reply, which the tracker passes before this is asked), so
/// the first accepting verdict; otherwise unknown ([`By::UnloggedIcmp`]).
pub(super) fn judge_unlogged_icmp<E: Engine + ?Sized>(
    engine: &E,
    types: &[(u16, u16)],
    point: Point,
    h: &Header,
    logged: Option<Action>,
) -> Verdict {
    let mut probe = *h;
    let mut first: Option<Verdict> = None;
    let mut accepting: Option<Verdict> = None;
    let mut differ = false;
    for &(ty, code) in types {
        probe = probe.with_ports(ty, code);
        let v = engine.classify(point, &probe);
        if accepting.is_none() && v.action.accepts() {
            accepting = Some(v);
        }
        match first {
            None => first = Some(v),
            Some(f) if f.action != v.action => differ = true,
            Some(_) => {}
        }
        if differ && accepting.is_some() {
            break;
        }
    }
    match (first, differ, logged, accepting) {
        (Some(f), false, _, _) => f,
        (_, true, Some(Action::Accept), Some(a)) => a,
        (Some(_), true, _, _) => Verdict {
            action: Decision::Unknown,
            by: By::UnloggedIcmp,
        },
        // No probe at all: judged as logged (type 0 code 0).
        (None, ..) => engine.classify(point, h),
    }
}

/// One (type, code) pair per class of ICMP types and codes that the rules of `state` tell
/// apart (their type and code ranges cut 0..=255 into classes), echo request first.
pub(super) fn icmp_classes(state: &State) -> Vec<(u16, u16)> {
    let mut types = vec![0u16, 8, 9, 128, 129, 130];
    let mut codes = vec![0u16];
    for r in &state.rules {
        let icmp = match r.protocol {
            Protocol::Any => true,
            Protocol::Number(n) => IpProtocol(n).is_icmp(),
        };
        if !icmp {
            continue;
        }
        for (cuts, range) in [(&mut types, r.src_ports), (&mut codes, r.dst_ports)] {
            for edge in [range.lo(), range.hi().saturating_add(1)] {
                if edge <= 255 {
                    cuts.push(edge);
                }
            }
        }
    }
    for cuts in [&mut types, &mut codes] {
        cuts.sort_unstable();
        cuts.dedup();
    }
    let mut out: Vec<(u16, u16)> = types
        .iter()
        .flat_map(|&t| codes.iter().map(move |&c| (t, c)))
        .collect();
    // Echo request (ICMP 8, ICMPv6 128) first: where every class agrees, its rule names
    // the verdict.
    out.sort_by_key(|&(t, c)| (t != 8 && t != 128, t, c));
    out
}

/// [`judge`] for a trackable packet whose flow key is `k`.
fn judge_flow<A: Copy + Eq + Hash>(
    classify: &dyn Fn() -> Verdict,
    enis: &[EniInfo],
    flows: &mut HashTable<Tracked<A>>,
    t: &Task,
    k: Key<A>,
) -> Outcome {
    let h = &t.header;
    let outcome = |verdict: Verdict, established: bool| Outcome {
        index: t.index,
        point: t.point,
        verdict,
        established,
    };
    // An ICMP record whose type the log does not carry may be a request or a reply.
    let icmp = h.ip_protocol().is_icmp() && t.unlogged_icmp.is_none();
    let provider = provider_of(enis, t.point.eni);
    // A new flow: the rules decide; an accepted packet opens the flow (ICMP: a request),
    // unless the flow is untracked.
    let open = |vacant: VacantEntry<'_, Tracked<A>>| {
        let verdict = classify();
        let untracked = || {
            enis.get(t.point.eni as usize)
                .is_some_and(|e| e.untracked_either_way(t.point.direction, h))
        };
        // An unknown verdict opens nothing: whether the packet passed is what is unknown.
        if verdict.action.accepts() && (!icmp || is_echo_request(h)) && !untracked() {
            vacant.insert(Tracked {
                key: k,
                last_ns: t.last_ns,
                opened: t.point.direction,
                last_dir: t.point.direction,
                flips: 0,
            });
        }
        outcome(verdict, false)
    };
    let rehash = |e: &Tracked<A>| FxBuildHasher.hash_one(e.key);
    let mut entry = match flows.entry(t.hash, |e| e.key == k, rehash) {
        Entry::Vacant(v) => return open(v),
        Entry::Occupied(o) => {
            let f = o.get();
            if t.ts_ns.saturating_sub(f.last_ns) > timeout(provider, h.protocol(), f.flips) {
                // Idle past its timeout: forgotten, and this packet starts afresh.
                return open(o.remove().1);
            }
            o
        }
    };
    let f = entry.get_mut();
    let reply = f.opened != t.point.direction && (!icmp || is_echo_reply(h));
    let verdict = if reply {
        Verdict::default_of(Action::Accept)
    } else {
        classify()
    };
    if f.last_dir != t.point.direction {
        f.flips = f.flips.saturating_add(1);
        f.last_dir = t.point.direction;
    }
    f.last_ns = f.last_ns.max(t.last_ns);
    // A reply, or a packet of the flow the rules would now refuse (or may refuse), passes
    // as established.
    outcome(verdict, reply || !verdict.action.accepts())
}

#[cfg(test)]
mod tests {
    use crate::classify::Decision;
    use crate::compile::Table;
    use crate::model::State;
    use crate::track::tests::{pkt, state};
    use crate::track::{Config, Evaluator};

    #[test]
    fn replies_pass_as_established_until_idle_timeout() {
        let s = state();
        let table = Table::new(&s).unwrap();
        let mut ev = Evaluator::new(&table, &s, Config::default()).unwrap();
        let items = vec![
            pkt(0, "tcp 203.0.113.9:40000 -> 10.0.0.1:22", 0),
            pkt(1, "tcp 10.0.0.1:22 -> 203.0.113.9:40000", 1),
            pkt(2, "tcp 10.0.0.1:22 -> 203.0.113.9:40001", 1),
            pkt(3, "udp 10.0.0.1:53 -> 203.0.113.9:53", 2),
            pkt(4, "tcp 10.0.0.1:22 -> 203.0.113.9:40000", 432_002),
            pkt(5, "tcp 198.51.100.1:1 -> 198.51.100.2:2", 5),
        ];
        let out = ev.eval(&items);
        let r: Vec<(u64, Decision, &str)> = out
            .iter()
            .map(|o| (o.index, o.action(), o.reason()))
            .collect();
        assert_eq!(
            r,
            vec![
                (0, Decision::Accept, "rule"),
                (1, Decision::Accept, "established"),
                (2, Decision::Drop, "default"),
                (3, Decision::Drop, "default"),
                (4, Decision::Drop, "default"),
            ]
        );
        assert_eq!(ev.stats().unmatched, 1);
        assert_eq!(ev.stats().rule_hits, vec![1, 0]);
    }

    #[test]
    fn icmp_echo_reply_is_established_only_after_a_request() {
        let s = state();
        let table = Table::new(&s).unwrap();
        let mut ev = Evaluator::new(&table, &s, Config::default()).unwrap();
        let out = ev.eval(&[
            pkt(0, "icmp 10.0.0.1 -> 203.0.113.9 type 0 code 0", 0),
            pkt(1, "icmp 203.0.113.9 -> 10.0.0.1 type 8 code 0", 1),
            pkt(2, "icmp 10.0.0.1 -> 203.0.113.9 type 0 code 0", 2),
        ]);
        let r: Vec<&str> = out.iter().map(|o| o.reason()).collect();
        assert_eq!(r, vec!["default", "rule", "established"]);
    }

    #[test]
    fn other_protocols_are_tracked_by_addresses_and_protocol() {
        let s: State = serde_json::from_value(serde_json::json!({
            "groups": [{"id": "sg-a", "provider": "aws"}],
            "rules": [{"id": "r-sctp", "group": "sg-a", "direction": "ingress",
                       "action": "accept", "protocol": 132, "remote": {"cidr": "192.0.2.0/24"}}],
            "enis": [{"id": "eni-a", "ips": ["10.0.0.1"], "groups": ["sg-a"]}]
        }))
        .unwrap();
        let table = Table::new(&s).unwrap();
        let mut ev = Evaluator::new(&table, &s, Config::default()).unwrap();
        let out = ev.eval(&[
            pkt(0, "132 192.0.2.7:1000 -> 10.0.0.1:2000", 0),
            pkt(1, "132 10.0.0.1:3000 -> 192.0.2.7:4000", 1),
            pkt(2, "132 10.0.0.1:3000 -> 192.0.2.8:4000", 2),
        ]);
        let r: Vec<&str> = out.iter().map(|o| o.reason()).collect();
        assert_eq!(r, vec!["rule", "established", "default"]);
    }
}
