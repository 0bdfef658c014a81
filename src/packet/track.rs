//! Where traffic is judged, connection state, and the (parallel) evaluation of a stream.
//!
//! # Points
//!
//! A packet is judged where a security group sees it: **egress at the ENI that owns its
//! source address** and **ingress at the ENI that owns its destination address**, both
//! found by [`Table::eni_of`] (private and public addresses). A packet between two known
//! ENIs is judged twice (egress first); one that touches no known ENI is counted in
//! [`Stats::unmatched`] and produces no outcome. [`Config::only`] restricts evaluation to
//! one ENI.
//!
//! A flow-log record is judged once, at its logged ENI, in its logged direction (v5
//! `flow-direction`, Alibaba `direction`). Without a logged direction it is inferred from
//! the ENI's addresses (SEMANTICS 4.1): destination owned by the ENI ⇒ ingress, source
//! owned ⇒ egress. When the record names no ENI of the state, or neither address belongs
//! to it, the record is located by address like a packet.
//!
//! # Connection state
//!
//! Security groups of both clouds are stateful. State is kept per ENI and per flow:
//! `(ENI, protocol, local address, local port, remote address, remote port)`; for ICMP the
//! ports are left out and only echo (request 8/128, reply 0/129) is tracked. A packet that
//! a rule (or default) accepts opens or refreshes the flow; a later packet of the flow in
//! the *other* direction passes as `established` without consulting the rules, and a later
//! packet in the opening direction that the rules would now drop also passes as
//! `established` (a revoke does not cut a tracked connection). Idle timeouts, measured
//! between packet timestamps (flow-log records: their `start`):
//!
//! | provider | TCP | UDP | ICMP echo | other |
//! |---|---|---|---|---|
//! | AWS (and generic) | 432000 s | 30 s, 180 s once a stream (≥ 3 direction changes) | 30 s | 600 s |
//! | Alibaba | 910 s | 910 s | 910 s | 910 s |
//!
//! TCP FIN/RST do not close a flow (only timeouts do), AWS "untracked" flows (open
//! 0.0.0.0/0 both ways) are treated as tracked, and a flow seen mid-stream is opened by
//! whichever packet is accepted first. At the end of each chunk, flows idle past their
//! timeout at the chunk's latest timestamp are forgotten (memory follows the live flows;
//! timestamps are assumed to be roughly in order, as captures and flow logs are).
//!
//! # Fragments
//!
//! A non-first fragment (no ports) takes the ports of the first fragment with the same
//! `(source, destination, protocol, identification)` seen earlier in the input; without
//! one it is judged with ports 0. At most 65536 fragment keys are remembered.
//!
//! # Parallel evaluation
//!
//! Items are evaluated in chunks. Within a chunk every evaluation is assigned to one of
//! [`Config::partitions`] partitions by a hash of its flow key; each partition owns the
//! state of its flows and processes its evaluations in input order, on the rayon pool;
//! the outcomes are merged back into input order. Because flows never share state, the
//! result equals the sequential one (`partitions = 1`), which the tests check.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hash};
use std::net::IpAddr;

use rustc_hash::FxHasher;

use rayon::prelude::*;

use super::Item;
use crate::classify::{By, Engine, Point, Semantics, SemanticsError, Verdict};
use crate::compile::Table;
use crate::model::{Action, Direction, Header, Provider, State};

/// Hash maps on the per-packet path use FxHash: fast, and the keys are not attacker-chosen
/// in a way that matters to an offline simulator.
type Map<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// Evaluation options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Judge only at this ENI (index in the state).
    pub only: Option<u32>,
    /// Number of flow partitions (1 = sequential).
    pub partitions: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            only: None,
            partitions: 16,
        }
    }
}

/// The verdict on one item at one point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The item's index in its input.
    pub index: u64,
    /// Where it was judged.
    pub point: Point,
    /// The rules' verdict (for `established` outcomes: what the rules would say, or the
    /// default when they were not consulted).
    pub verdict: Verdict,
    /// Accepted because it belongs to a tracked connection.
    pub established: bool,
}

impl Outcome {
    /// The final action.
    pub fn action(&self) -> Action {
        if self.established {
            Action::Accept
        } else {
            self.verdict.action
        }
    }

    /// `rule`, `default` or `established`. Alibaba's implicit accept between members of a
    /// basic group is one of its default rules: it is reported as `default`, with
    /// [`Outcome::detail`] saying `inner-access`.
    pub fn reason(&self) -> &'static str {
        if self.established {
            return "established";
        }
        match self.verdict.by {
            By::Rule(_) => "rule",
            By::InnerAccess(_) | By::Default => "default",
        }
    }

    /// A finer reason where one exists (`inner-access`).
    pub fn detail(&self) -> Option<&'static str> {
        match (self.established, self.verdict.by) {
            (false, By::InnerAccess(_)) => Some("inner-access"),
            _ => None,
        }
    }

    /// The deciding rule's table index, when a rule decided.
    pub fn rule(&self) -> Option<u32> {
        match (self.established, self.verdict.by) {
            (false, By::Rule(i)) => Some(i),
            _ => None,
        }
    }
}

/// Counters over everything evaluated so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Items seen.
    pub items: u64,
    /// Outcomes produced (an item between two ENIs yields two).
    pub evaluations: u64,
    /// Outcomes that accept.
    pub accepted: u64,
    /// Outcomes that drop.
    pub dropped: u64,
    /// Outcomes accepted as established.
    pub established: u64,
    /// Items that touch no known ENI (or not the selected one).
    pub unmatched: u64,
    /// Non-first fragments judged with ports 0 (their first fragment was not seen).
    pub orphan_fragments: u64,
    /// Hits per rule, by table index.
    pub rule_hits: Vec<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Key {
    eni: u32,
    protocol: u8,
    local: IpAddr,
    local_port: u16,
    remote: IpAddr,
    remote_port: u16,
}

#[derive(Clone, Copy, Debug)]
struct Flow {
    opened: Direction,
    last_dir: Direction,
    last_ns: u64,
    flips: u32,
}

#[derive(Clone, Copy, Debug)]
struct Task {
    slot: usize,
    index: u64,
    point: Point,
    header: Header,
    ts_ns: u64,
}

#[derive(Default)]
struct Part {
    flows: Map<Key, Flow>,
    tasks: Vec<Task>,
    out: Vec<(usize, Outcome)>,
}

const SECOND: u64 = 1_000_000_000;
const MAX_FRAGMENTS: usize = 65536;

fn is_echo_request(h: &Header) -> bool {
    matches!((h.protocol, h.src_port), (1, 8) | (58, 128))
}

fn is_echo_reply(h: &Header) -> bool {
    matches!((h.protocol, h.src_port), (1, 0) | (58, 129))
}

fn key(point: Point, h: &Header) -> Key {
    let icmp = matches!(h.protocol, 1 | 58);
    let (local_port, remote_port) = match (icmp, point.direction) {
        (true, _) => (0, 0),
        (false, Direction::Ingress) => (h.dst_port, h.src_port),
        (false, Direction::Egress) => (h.src_port, h.dst_port),
    };
    Key {
        eni: point.eni,
        protocol: h.protocol,
        local: h.local(point.direction),
        local_port,
        remote: h.remote(point.direction),
        remote_port,
    }
}

fn timeout(provider: Provider, protocol: u8, flow: &Flow) -> u64 {
    if provider == Provider::Aliyun {
        return 910 * SECOND;
    }
    match protocol {
        6 => 432_000 * SECOND,
        17 if flow.flips >= 3 => 180 * SECOND,
        17 | 1 | 58 => 30 * SECOND,
        _ => 600 * SECOND,
    }
}

/// Judges one task against a partition's flows.
fn judge<E: Engine + ?Sized>(
    engine: &E,
    providers: &[Provider],
    flows: &mut Map<Key, Flow>,
    t: &Task,
) -> Outcome {
    let h = &t.header;
    let icmp = matches!(h.protocol, 1 | 58);
    let trackable = !icmp || is_echo_request(h) || is_echo_reply(h);
    let k = key(t.point, h);
    let provider = providers
        .get(t.point.eni as usize)
        .copied()
        .unwrap_or(Provider::Generic);
    let live = trackable
        && match flows.get(&k) {
            Some(f) if t.ts_ns.saturating_sub(f.last_ns) <= timeout(provider, h.protocol, f) => {
                true
            }
            Some(_) => {
                flows.remove(&k);
                false
            }
            None => false,
        };
    let touch = |flows: &mut Map<Key, Flow>| {
        if let Some(f) = flows.get_mut(&k) {
            if f.last_dir != t.point.direction {
                f.flips = f.flips.saturating_add(1);
                f.last_dir = t.point.direction;
            }
            f.last_ns = f.last_ns.max(t.ts_ns);
        }
    };
    let outcome = |verdict: Verdict, established: bool| Outcome {
        index: t.index,
        point: t.point,
        verdict,
        established,
    };
    let reply_allowed = |f: &Flow| f.opened != t.point.direction && (!icmp || is_echo_reply(h));
    if live && flows.get(&k).is_some_and(reply_allowed) {
        touch(flows);
        return outcome(
            Verdict {
                action: Action::Accept,
                by: By::Default,
            },
            true,
        );
    }
    let verdict = engine.classify(t.point, h);
    if verdict.action == Action::Accept {
        if live {
            touch(flows);
        } else if trackable && (!icmp || is_echo_request(h)) {
            flows.insert(
                k,
                Flow {
                    opened: t.point.direction,
                    last_dir: t.point.direction,
                    last_ns: t.ts_ns,
                    flips: 0,
                },
            );
        }
        return outcome(verdict, false);
    }
    if live {
        touch(flows);
        return outcome(verdict, true);
    }
    outcome(verdict, false)
}

/// Evaluates a stream of items chunk by chunk, keeping connection state between chunks.
///
/// Rules are consulted through any [`Engine`] (the compiled [`Table`] by default; the
/// reference engine in differential tests); ENIs are located by the table's addresses.
pub struct Evaluator<'t, E: Engine + ?Sized = Table> {
    engine: &'t E,
    table: &'t Table,
    providers: Vec<Provider>,
    config: Config,
    parts: Vec<Part>,
    fragments: Map<(IpAddr, IpAddr, u8, u32), (u16, u16)>,
    /// Address → ENI index: the same mapping as [`Table::eni_of`], as a hash map.
    addresses: Map<IpAddr, u32>,
    stats: Stats,
}

impl<'t> Evaluator<'t, Table> {
    /// An evaluator over `table`, compiled from `state`.
    pub fn new(table: &'t Table, state: &State, config: Config) -> Result<Self, SemanticsError> {
        Evaluator::with_engine(table, table, state, config)
    }
}

impl<'t, E: Engine + ?Sized> Evaluator<'t, E> {
    /// An evaluator that judges with `engine` and locates ENIs with `table`; both built
    /// from `state`.
    pub fn with_engine(
        engine: &'t E,
        table: &'t Table,
        state: &State,
        config: Config,
    ) -> Result<Self, SemanticsError> {
        let providers = (0..state.enis.len())
            .map(|e| Semantics::of(state, e).map(|s| s.provider))
            .collect::<Result<Vec<_>, _>>()?;
        let n = config.partitions.max(1);
        Ok(Evaluator {
            engine,
            table,
            providers,
            config,
            parts: (0..n).map(|_| Part::default()).collect(),
            fragments: Map::default(),
            addresses: table
                .enis()
                .iter()
                .zip(&state.enis)
                .enumerate()
                .flat_map(|(i, (_, eni))| {
                    eni.ips
                        .iter()
                        .chain(&eni.public_ips)
                        .map(move |&a| (crate::model::normalize_addr(a), i as u32))
                })
                .collect(),
            stats: Stats {
                rule_hits: vec![0; table.rules().len()],
                ..Stats::default()
            },
        })
    }

    /// The counters so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Tracked flows currently held.
    pub fn flows(&self) -> usize {
        self.parts.iter().map(|p| p.flows.len()).sum()
    }

    /// The ENI that owns an address (the table's mapping, as a hash map).
    fn eni_of(&self, addr: IpAddr) -> Option<u32> {
        self.addresses.get(&addr).copied()
    }

    /// The points where `item` is judged (egress first), at most two.
    fn points(&self, item: &Item, header: &Header) -> [Option<Point>; 2] {
        let at = |eni: Option<u32>, direction: Direction| eni.map(|eni| Point { eni, direction });
        let by_addr = || {
            [
                at(self.eni_of(header.src), Direction::Egress),
                at(self.eni_of(header.dst), Direction::Ingress),
            ]
        };
        let mut points = match item {
            Item::Packet(_) => by_addr(),
            Item::Flow(r) => {
                let eni = r
                    .eni
                    .as_ref()
                    .and_then(|id| self.table.enis().iter().position(|e| e == id))
                    .map(|e| e as u32);
                let owns = |e: u32, a: IpAddr| self.eni_of(a) == Some(e);
                match (eni, r.direction) {
                    (Some(e), Some(d)) => [at(Some(e), d), None],
                    (Some(e), None) if owns(e, header.dst) => {
                        [at(Some(e), Direction::Ingress), None]
                    }
                    (Some(e), None) if owns(e, header.src) => {
                        [at(Some(e), Direction::Egress), None]
                    }
                    (None, Some(d)) => [at(self.eni_of(header.local(d)), d), None],
                    _ => by_addr(),
                }
            }
        };
        if let Some(only) = self.config.only {
            for p in &mut points {
                *p = p.filter(|p| p.eni == only);
            }
        }
        points
    }

    /// The header of a packet, with a non-first fragment given its first fragment's ports.
    fn header(&mut self, item: &Item) -> Header {
        match item {
            Item::Flow(r) => r.header,
            Item::Packet(p) => {
                let mut h = p.header;
                if let Some(f) = p.fragment {
                    let fk = (h.src, h.dst, h.protocol, f.id);
                    if f.is_first() {
                        if self.fragments.len() >= MAX_FRAGMENTS {
                            self.fragments.clear();
                        }
                        self.fragments.insert(fk, (h.src_port, h.dst_port));
                    } else if let Some(&(s, d)) = self.fragments.get(&fk) {
                        h.src_port = s;
                        h.dst_port = d;
                    } else {
                        self.stats.orphan_fragments += 1;
                    }
                }
                h
            }
        }
    }

    /// Evaluates a chunk of items (in input order); returns the outcomes in input order
    /// (per item: egress before ingress).
    pub fn eval(&mut self, items: &[Item]) -> Vec<Outcome> {
        let n = self.parts.len();
        // Headers: a non-first fragment needs the (sequential) fragment map; every other
        // item's header is its own.
        let headers: Vec<Header> = items.iter().map(|item| self.header(item)).collect();
        // Where each item is judged and which partition owns each of its flows: independent
        // per item, so computed in parallel.
        let this = &*self;
        let route = |(item, header): (&Item, &Header)| {
            this.points(item, header).map(|p| {
                p.map(|point| {
                    let part = if n == 1 {
                        0
                    } else {
                        (BuildHasherDefault::<FxHasher>::default().hash_one(key(point, header))
                            % n as u64) as usize
                    };
                    (point, part)
                })
            })
        };
        let routes: Vec<[Option<(Point, usize)>; 2]> = if n == 1 {
            items.iter().zip(&headers).map(route).collect()
        } else {
            items.par_iter().zip(&headers).map(route).collect()
        };
        let mut slots = 0usize;
        let mut latest = 0u64;
        for ((item, header), route) in items.iter().zip(&headers).zip(&routes) {
            self.stats.items += 1;
            let ts_ns = match item {
                Item::Packet(p) => p.ts_ns,
                Item::Flow(r) => r.start.saturating_mul(SECOND),
            };
            latest = latest.max(ts_ns);
            if route.iter().all(Option::is_none) {
                self.stats.unmatched += 1;
                continue;
            }
            for &(point, part) in route.iter().flatten() {
                self.parts[part].tasks.push(Task {
                    slot: slots,
                    index: item.index(),
                    point,
                    header: *header,
                    ts_ns,
                });
                slots += 1;
            }
        }
        let engine = self.engine;
        let providers = &self.providers;
        let run = |part: &mut Part| {
            part.out.clear();
            for t in &part.tasks {
                let o = judge(engine, providers, &mut part.flows, t);
                part.out.push((t.slot, o));
            }
            part.tasks.clear();
            // Forget flows idle past their timeout at the chunk's latest time, so that
            // memory follows the live flows, not the whole input.
            part.flows.retain(|k, f| {
                let provider = providers
                    .get(k.eni as usize)
                    .copied()
                    .unwrap_or(Provider::Generic);
                latest.saturating_sub(f.last_ns) <= timeout(provider, k.protocol, f)
            });
        };
        if n == 1 {
            self.parts.iter_mut().for_each(run);
        } else {
            self.parts.par_iter_mut().for_each(run);
        }
        let blank = Outcome {
            index: 0,
            point: Point {
                eni: 0,
                direction: Direction::Ingress,
            },
            verdict: Verdict {
                action: Action::Drop,
                by: By::Default,
            },
            established: false,
        };
        // Every slot is filled: each task of a partition yields exactly one outcome.
        let mut out = vec![blank; slots];
        for part in &mut self.parts {
            for (slot, o) in part.out.drain(..) {
                out[slot] = o;
            }
        }
        for o in &out {
            self.stats.evaluations += 1;
            match o.action() {
                Action::Accept => self.stats.accepted += 1,
                Action::Drop => self.stats.dropped += 1,
            }
            if o.established {
                self.stats.established += 1;
            }
            if let Some(r) = o.rule() {
                if let Some(h) = self.stats.rule_hits.get_mut(r as usize) {
                    *h += 1;
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::decode::Packet;

    fn state() -> State {
        serde_json::from_value(serde_json::json!({
            "groups": [{"id": "sg-web", "provider": "aws"}],
            "rules": [
                {"id": "r-ssh", "group": "sg-web", "direction": "ingress", "action": "accept",
                 "protocol": 6, "dst_ports": "22", "remote": {"cidr": "0.0.0.0/0"}},
                {"id": "r-ping", "group": "sg-web", "direction": "ingress", "action": "accept",
                 "protocol": 1, "remote": {"cidr": "0.0.0.0/0"}}
            ],
            "enis": [{"id": "eni-a", "ips": ["10.0.0.1"], "groups": ["sg-web"]}]
        }))
        .unwrap()
    }

    fn pkt(index: u64, text: &str, ts: u64) -> Item {
        let header: Header = text.parse().unwrap();
        Item::Packet(Packet {
            index,
            ts_ns: ts * SECOND,
            header,
            wire_len: 60,
            cap_len: 60,
            tcp_flags: None,
            ports: Some((header.src_port, header.dst_port)),
            icmp: None,
            fragment: None,
            interface: 0,
        })
    }

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
        let r: Vec<(u64, Action, &str)> = out
            .iter()
            .map(|o| (o.index, o.action(), o.reason()))
            .collect();
        assert_eq!(
            r,
            vec![
                (0, Action::Accept, "rule"),
                (1, Action::Accept, "established"),
                (2, Action::Drop, "default"),
                (3, Action::Drop, "default"),
                (4, Action::Drop, "default"),
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
    fn parallel_partitions_equal_sequential() {
        let s = state();
        let table = Table::new(&s).unwrap();
        let mut items = Vec::new();
        for i in 0..3000u64 {
            let port = 40000 + (i % 97) as u16;
            let text = if i % 3 == 0 {
                format!("tcp 203.0.113.{}:{port} -> 10.0.0.1:22", i % 7)
            } else {
                format!("tcp 10.0.0.1:22 -> 203.0.113.{}:{port}", i % 7)
            };
            items.push(pkt(i, &text, i));
        }
        let mut seq = Evaluator::new(
            &table,
            &s,
            Config {
                partitions: 1,
                ..Config::default()
            },
        )
        .unwrap();
        let mut par = Evaluator::new(&table, &s, Config::default()).unwrap();
        let mut a = Vec::new();
        let mut b = Vec::new();
        for chunk in items.chunks(700) {
            a.extend(seq.eval(chunk));
            b.extend(par.eval(chunk));
        }
        assert_eq!(a, b);
        assert_eq!(seq.stats(), par.stats());
        assert!(seq.stats().established > 0);
    }

    #[test]
    fn idle_flows_are_forgotten_between_chunks() {
        let s = state();
        let table = Table::new(&s).unwrap();
        let mut ev = Evaluator::new(&table, &s, Config::default()).unwrap();
        ev.eval(&[pkt(0, "tcp 203.0.113.9:40000 -> 10.0.0.1:22", 0)]);
        assert_eq!(ev.flows(), 1);
        ev.eval(&[pkt(1, "tcp 203.0.113.9:40001 -> 10.0.0.1:22", 400_000)]);
        assert_eq!(ev.flows(), 2);
        ev.eval(&[pkt(2, "tcp 198.51.100.1:1 -> 198.51.100.2:2", 500_000)]);
        assert_eq!(ev.flows(), 1);
    }

    #[test]
    fn reference_engine_gives_the_same_outcomes() {
        let s = state();
        let table = Table::new(&s).unwrap();
        let reference = crate::classify::reference::Reference::new(&s).unwrap();
        let headers = crate::packet::synth::aimed(&s, 2000, 11, 0.3);
        let items: Vec<Item> = headers
            .iter()
            .enumerate()
            .flat_map(|(i, (_, h))| {
                let text_a = h.to_string();
                let text_b = h.reversed().to_string();
                [
                    pkt(2 * i as u64, &text_a, i as u64),
                    pkt(2 * i as u64 + 1, &text_b, i as u64),
                ]
            })
            .collect();
        let mut a = Evaluator::new(&table, &s, Config::default()).unwrap();
        let mut b = Evaluator::with_engine(&reference, &table, &s, Config::default()).unwrap();
        assert_eq!(a.eval(&items), b.eval(&items));
        assert!(a.stats().established > 0 && a.stats().accepted > 0 && a.stats().dropped > 0);
    }
}
