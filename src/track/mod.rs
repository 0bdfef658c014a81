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
//! ports are left out and only echo (request 8/128, reply 0/129) is tracked. A flow-log
//! record of ICMP carries no type or code (AWS logs ports `0 0`): it is judged by what the
//! rules give over every type and code (one probe per class of types the rules tell
//! apart); where they differ, a logged ACCEPT means a type some rule accepts, else the
//! verdict is unknown ([`By::UnloggedIcmp`]). Such a record may be a request or a reply:
//! an accepted one opens an exchange and a record the other way within the timeout is its
//! reply. A packet that
//! a rule (or default) accepts opens or refreshes the flow; a later packet of the flow in
//! the *other* direction passes as `established` without consulting the rules, and a later
//! packet in the opening direction that the rules would now drop also passes as
//! `established` (a revoke does not cut a tracked connection). Idle timeouts, measured
//! between packet timestamps (a flow-log record arrives at its `start` and keeps its flow
//! active until its `end`, since it aggregates a window):
//!
//! | provider | TCP | UDP | ICMP echo | other |
//! |---|---|---|---|---|
//! | AWS (and generic) | 432000 s | 30 s, 180 s once a stream (≥ 3 direction changes) | 30 s | 600 s |
//! | Alibaba | 910 s | 910 s | 910 s | 910 s |
//!
//! For protocols other than TCP, UDP and ICMP only the addresses and the protocol are
//! tracked (AWS: "same-type traffic back within 600 s counts as response"), so their port
//! words are left out of the key.
//!
//! **AWS untracked flows** (SEMANTICS 3.2): a TCP or UDP packet accepted at an AWS ENI
//! opens no flow when an accepting rule of its direction with an any-address peer
//! (`0.0.0.0/0`, `::/0`) matches it, one of the other direction matches its reply, and one
//! of the two covers all ports (AWS: "a rule in the other direction that permits all
//! response traffic … for any port"). The condition is symmetric, so a flow first seen by
//! its reply is untracked too. Such a flow's replies are judged by the rules (reason
//! `rule`), and a revoke of an enabling rule cuts it at once. ICMP is always tracked.
//!
//! TCP FIN/RST do not close a flow (only timeouts do), and a flow seen mid-stream is opened
//! by whichever packet is accepted first. At the end of a chunk, flows idle past their
//! timeout at the chunk's latest timestamp are forgotten once the clock has moved 30 s
//! since the last sweep (and a quarter as many packets as flows held have been judged)
//! or the table has doubled (memory follows the live flows;
//! timestamps are assumed to be roughly in order, as captures and flow logs are). An idle
//! flow found before its sweep is forgotten on the spot.
//!
//! The table is bounded ([`Config::max_flows`]): when a chunk leaves more flows than that,
//! every expired flow is forgotten, then the least recently seen flows of all partitions
//! together until a quarter of the bound is free ([`Stats::evicted`]), as a full
//! connection-tracking table forgets connections. The choice depends on the flows alone, so
//! the result does not depend on the partitioning.
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

use hashbrown::hash_table::{Entry, HashTable, VacantEntry};
use rayon::prelude::*;
use rustc_hash::{FxBuildHasher, FxHasher};

use crate::classify::{By, Decision, Engine, Point, Semantics, SemanticsError, Verdict};
use crate::compile::Table;
use crate::model::{
    Action, Direction, EniId, Family, GroupId, Header, Peer, PortRange, Protocol, Provider, Rule,
    State,
};
use crate::packet::Item;

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
    /// Judge every item by the rules alone: no connection state, so no `established`
    /// outcomes (what a stateless filter, or a check of the rules against each flow-log
    /// record on its own, would say).
    pub stateless: bool,
    /// The most tracked flows kept between chunks (all partitions together): past it, flows
    /// idle past their timeout are forgotten, then the least recently seen until a
    /// quarter of the bound is free ([`Stats::evicted`] counts them). A flow evicted early
    /// treats its next packet as new, as a full connection-tracking table would.
    pub max_flows: usize,
}

/// The default [`Config::max_flows`]: about 69 MiB of IPv4 flow tables (136 MiB of IPv6)
/// at most over 8 partitions, hashbrown tables being sized in powers of two at a 7/8
/// load.
pub const MAX_FLOWS: usize = 1_000_000;

impl Default for Config {
    fn default() -> Self {
        Config {
            only: None,
            partitions: 16,
            stateless: false,
            max_flows: MAX_FLOWS,
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
    /// The final verdict: accept, drop, or unknown where an unresolved reference decides.
    pub fn action(&self) -> Decision {
        if self.established {
            Decision::Accept
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
            By::Unresolved(_) | By::UnloggedIcmp => "unresolved",
        }
    }

    /// A finer reason where one exists (`inner-access`; `icmp-type-not-logged` for an
    /// ICMP flow-log record the rules judge differently by type).
    pub fn detail(&self) -> Option<&'static str> {
        match (self.established, self.verdict.by) {
            (false, By::InnerAccess(_)) => Some("inner-access"),
            (false, By::UnloggedIcmp) => Some("icmp-type-not-logged"),
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
    /// Outcomes an unresolved reference leaves unknown.
    pub unknown: u64,
    /// Outcomes accepted as established.
    pub established: u64,
    /// Items that touch no known ENI (or not the selected one).
    pub unmatched: u64,
    /// Non-first fragments judged with ports 0 (their first fragment was not seen).
    pub orphan_fragments: u64,
    /// Hits per rule, by table index.
    pub rule_hits: Vec<u64>,
    /// Tracked flows forgotten before their idle timeout because the flow table was full
    /// ([`Config::max_flows`]).
    pub evicted: u64,
}

/// A flow key of one address family: the ENI, the protocol and both endpoints as the ENI
/// sees them. IPv4 keys are 20 bytes, so a tracked IPv4 flow takes 32: the flow tables of
/// a large capture stay as small as they can (their cache misses dominate stateful
/// evaluation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Key<A> {
    eni: u32,
    local: A,
    remote: A,
    local_port: u16,
    remote_port: u16,
    protocol: u8,
}

/// A tracked flow in a partition's table.
#[derive(Clone, Copy, Debug)]
struct Tracked<A> {
    key: Key<A>,
    last_ns: u64,
    opened: Direction,
    last_dir: Direction,
    /// Direction changes, saturating (UDP becomes a stream at 3).
    flips: u8,
}

/// One evaluation to perform: an item at one point.
#[derive(Clone, Copy, Debug)]
struct Task {
    /// Position among the evaluations of its sub-chunk.
    slot: u32,
    point: Point,
    index: u64,
    header: Header,
    ts_ns: u64,
    /// When the item's traffic was last seen: the packet's time, a flow-log record's
    /// `end` (a record spans its aggregation window, so its flow is active until then).
    last_ns: u64,
    /// Hash of the flow key: picks the partition and the flow-table bucket.
    hash: u64,
    /// A flow-log record of ICMP, whose type and code the log does not carry: the action
    /// it logged, if any (see [`judge_unlogged_icmp`]).
    unlogged_icmp: Option<Option<Action>>,
}

/// The routing of one sub-chunk of items: its tasks per partition, in input order.
#[derive(Default)]
struct Routed {
    tasks: Vec<Vec<Task>>,
    /// Stateless evaluation: the outcomes themselves, in input order.
    outcomes: Vec<Outcome>,
    evaluations: usize,
    unmatched: u64,
    latest: u64,
    /// Whether the sub-chunk holds a fragment (then it is routed again once the chunk's
    /// fragments have their ports).
    fragments: bool,
}

/// A partition: the flows whose key hashes to it, and its outcomes of the current chunk.
#[derive(Default)]
struct Part {
    flows4: HashTable<Tracked<u32>>,
    flows6: HashTable<Tracked<u128>>,
    out: Vec<(usize, Outcome)>,
}

/// The accepting rules of one AWS ENI and direction with an any-address peer (`0.0.0.0/0`,
/// `::/0`): the rules that can make TCP/UDP flows untracked.
#[derive(Clone, Debug, Default)]
pub(crate) struct Open {
    /// (IPv6, protocol, source ports, destination ports).
    rules: Vec<(bool, Protocol, PortRange, PortRange)>,
}

/// Per (group, direction): its accepting rules with an any-address peer, as [`Open`] holds
/// them. One pass over the state's rules.
pub(crate) type OpenByGroup<'s> =
    HashMap<(&'s GroupId, Direction), Vec<(bool, Protocol, PortRange, PortRange)>>;

pub(crate) fn open_by_group(state: &State) -> OpenByGroup<'_> {
    let mut by_group: OpenByGroup<'_> = HashMap::new();
    for r in &state.rules {
        if let Peer::Cidr { cidr } = &r.remote {
            if r.action == Action::Accept && cidr.is_any() {
                by_group.entry((&r.group, r.direction)).or_default().push((
                    cidr.family() == Family::V6,
                    r.protocol,
                    r.src_ports,
                    r.dst_ports,
                ));
            }
        }
    }
    by_group
}

impl Open {
    pub(crate) fn of(by_group: &OpenByGroup<'_>, groups: &[GroupId], direction: Direction) -> Open {
        let rules = groups
            .iter()
            .filter_map(|g| by_group.get(&(g, direction)))
            .flatten()
            .copied()
            .collect();
        Open { rules }
    }

    /// Whether some rule matches a packet with these ports: `Some(true)` when one that
    /// does covers all ports.
    fn matches(&self, v6: bool, protocol: u8, src: u16, dst: u16) -> Option<bool> {
        self.rules
            .iter()
            .filter(|&&(rule_v6, proto, sports, dports)| {
                rule_v6 == v6
                    && proto.matches(protocol)
                    && sports.contains(src)
                    && dports.contains(dst)
            })
            .map(|(_, _, sports, dports)| sports.is_any() && dports.is_any())
            .reduce(|a, b| a || b)
    }
}

impl Open {
    /// Whether some TCP/UDP packet that an open rule `(v6, protocol, sports, dports)` of
    /// this direction accepts has a reply that a rule of `other` (the other direction)
    /// accepts, one of the two covering all ports: the flows that rule lets through are
    /// untracked (the condition [`EniInfo::untracked`] checks packet by packet).
    fn untracks(rule: (bool, Protocol, PortRange, PortRange), other: &Open) -> bool {
        let (v6, protocol, sports, dports) = rule;
        other.rules.iter().any(|&(o6, oproto, osports, odports)| {
            o6 == v6
                && [6u8, 17]
                    .iter()
                    .any(|&p| protocol.matches(p) && oproto.matches(p))
                // The reply's source ports are the packet's destination ports.
                && osports.intersects(dports)
                && odports.intersects(sports)
                && ((sports.is_any() && dports.is_any()) || (osports.is_any() && odports.is_any()))
        })
    }
}

/// The ENIs where an accepting rule of `state` lets through untracked flows (SEMANTICS
/// 3.2): an AWS ENI carrying the rule's group, where the rule's peer is open to anywhere and
/// the other direction's rules of *all* the ENI's groups (AWS aggregates them) accept the
/// replies, one of the two on all ports. Revoking such a rule cuts those flows at once.
/// The same definition the evaluator applies to each packet.
pub fn untracked_enis<'s>(state: &'s State, rule: &Rule) -> Vec<&'s EniId> {
    let Peer::Cidr { cidr } = &rule.remote else {
        return Vec::new();
    };
    if rule.action != Action::Accept || !cidr.is_any() {
        return Vec::new();
    }
    let by_group = open_by_group(state);
    let entry = (
        cidr.family() == Family::V6,
        rule.protocol,
        rule.src_ports,
        rule.dst_ports,
    );
    let other = match rule.direction {
        Direction::Ingress => Direction::Egress,
        Direction::Egress => Direction::Ingress,
    };
    state
        .enis
        .iter()
        .enumerate()
        .filter(|(e, eni)| {
            eni.groups.contains(&rule.group)
                && Semantics::of(state, *e).is_ok_and(|s| s.provider == Provider::Aws)
                && Open::untracks(entry, &Open::of(&by_group, &eni.groups, other))
        })
        .map(|(_, eni)| &eni.id)
        .collect()
}

/// Per ENI of `state`, what evaluation needs to know: its provider and, on AWS, the rules
/// open to anywhere each way (the untracked condition). The tracker and the connection
/// what-if share it.
pub(crate) fn eni_infos(state: &State) -> Result<Vec<EniInfo>, SemanticsError> {
    let by_group = open_by_group(state);
    (0..state.enis.len())
        .map(|e| {
            let provider = Semantics::of(state, e)?.provider;
            let groups = &state.enis[e].groups;
            let open = (provider == Provider::Aws).then(|| {
                [
                    Open::of(&by_group, groups, Direction::Ingress),
                    Open::of(&by_group, groups, Direction::Egress),
                ]
            });
            Ok(EniInfo { provider, open })
        })
        .collect()
}

/// What the evaluation needs to know of each ENI.
#[derive(Clone, Debug)]
pub(crate) struct EniInfo {
    pub(crate) provider: Provider,
    /// AWS only: per direction (ingress, egress), the rules open to anywhere.
    pub(crate) open: Option<[Open; 2]>,
}

impl EniInfo {
    /// Whether an accepted TCP/UDP packet at `direction` belongs to an untracked flow:
    /// both it and its reply are allowed by rules open to anywhere, one of them on all
    /// ports. (Symmetric, so a flow first seen by its reply is untracked too.)
    pub(crate) fn untracked(&self, direction: Direction, h: &Header) -> bool {
        let Some(open) = &self.open else {
            return false;
        };
        if !ported(h.protocol) {
            return false;
        }
        let v6 = h.src.is_ipv6();
        let (this, other) = match direction {
            Direction::Ingress => (&open[0], &open[1]),
            Direction::Egress => (&open[1], &open[0]),
        };
        match (
            this.matches(v6, h.protocol, h.src_port, h.dst_port),
            other.matches(v6, h.protocol, h.dst_port, h.src_port),
        ) {
            (Some(a), Some(b)) => a || b,
            _ => false,
        }
    }
}

const SECOND: u64 = 1_000_000_000;
const MAX_FRAGMENTS: usize = 65536;
/// Idle flows are swept once the clock has moved this far since the last sweep (the
/// shortest timeout), or once the table has doubled.
const SWEEP_EVERY: u64 = 30 * SECOND;
/// Below this many items per sub-chunk, routing is not split further.
const MIN_SUB_CHUNK: usize = 1024;

pub(crate) fn is_echo_request(h: &Header) -> bool {
    matches!((h.protocol, h.src_port), (1, 8) | (58, 128))
}

pub(crate) fn is_echo_reply(h: &Header) -> bool {
    matches!((h.protocol, h.src_port), (1, 0) | (58, 129))
}

/// Whether flows of `protocol` are told apart by ports (TCP, UDP); ICMP echo is tracked by
/// addresses, other protocols by addresses and protocol only.
fn ported(protocol: u8) -> bool {
    matches!(protocol, 6 | 17)
}

/// The flow key of `h` at `point`, with its addresses as `local` and `remote`.
fn key<A>(point: Point, h: &Header, local: A, remote: A) -> Key<A> {
    let (local_port, remote_port) = match (ported(h.protocol), point.direction) {
        (false, _) => (0, 0),
        (true, Direction::Ingress) => (h.dst_port, h.src_port),
        (true, Direction::Egress) => (h.src_port, h.dst_port),
    };
    Key {
        eni: point.eni,
        local,
        remote,
        local_port,
        remote_port,
        protocol: h.protocol,
    }
}

/// The hash of `h`'s flow key at `point` (the key of its address family).
fn flow_hash(point: Point, h: &Header) -> u64 {
    match (h.local(point.direction), h.remote(point.direction)) {
        (IpAddr::V4(l), IpAddr::V4(r)) => {
            FxBuildHasher.hash_one(key(point, h, u32::from(l), u32::from(r)))
        }
        (l, r) => FxBuildHasher.hash_one(key(point, h, v6_bits(l), v6_bits(r))),
    }
}

fn v6_bits(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(a) => u128::from(a.to_ipv6_mapped()),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// The partition of a key hash, from its upper half (the flow table indexes buckets by
/// the low bits, which must stay spread within a partition).
fn partition(hash: u64, n: usize) -> usize {
    (((hash >> 32) * n as u64) >> 32) as usize
}

pub(crate) fn timeout(provider: Provider, protocol: u8, flips: u8) -> u64 {
    if provider == Provider::Aliyun {
        return 910 * SECOND;
    }
    match protocol {
        6 => 432_000 * SECOND,
        17 if flips >= 3 => 180 * SECOND,
        17 | 1 | 58 => 30 * SECOND,
        _ => 600 * SECOND,
    }
}

fn provider_of(enis: &[EniInfo], eni: u32) -> Provider {
    enis.get(eni as usize)
        .map_or(Provider::Generic, |e| e.provider)
}

/// Forgets the flows idle past their timeout at `latest`.
fn sweep<A>(flows: &mut HashTable<Tracked<A>>, enis: &[EniInfo], latest: u64) {
    flows.retain(|e| {
        let provider = provider_of(enis, e.key.eni);
        latest.saturating_sub(e.last_ns) <= timeout(provider, e.key.protocol, e.flips)
    });
}

/// Judges one task against a partition's flows, with one probe of the flow table of its
/// address family.
fn judge<E: Engine + ?Sized>(
    engine: &E,
    enis: &[EniInfo],
    icmp_types: &[(u16, u16)],
    part: &mut Part,
    t: &Task,
) -> Outcome {
    let h = &t.header;
    let icmp = matches!(h.protocol, 1 | 58);
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
fn judge_unlogged_icmp<E: Engine + ?Sized>(
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
        probe.src_port = ty;
        probe.dst_port = code;
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
fn icmp_classes(state: &State) -> Vec<(u16, u16)> {
    let mut types = vec![0u16, 8, 9, 128, 129, 130];
    let mut codes = vec![0u16];
    for r in &state.rules {
        let icmp = match r.protocol {
            Protocol::Any => true,
            Protocol::Number(n) => n == 1 || n == 58,
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
    let icmp = matches!(h.protocol, 1 | 58) && t.unlogged_icmp.is_none();
    let provider = provider_of(enis, t.point.eni);
    // A new flow: the rules decide; an accepted packet opens the flow (ICMP: a request),
    // unless the flow is untracked.
    let open = |vacant: VacantEntry<'_, Tracked<A>>| {
        let verdict = classify();
        let untracked = || {
            enis.get(t.point.eni as usize)
                .is_some_and(|e| e.untracked(t.point.direction, h))
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
            if t.ts_ns.saturating_sub(f.last_ns) > timeout(provider, h.protocol, f.flips) {
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

/// Evaluates a stream of items chunk by chunk, keeping connection state between chunks.
///
/// Rules are consulted through any [`Engine`] (the compiled [`Table`] by default; the
/// reference engine in differential tests); ENIs are located by the table's addresses.
pub struct Evaluator<'t, E: Engine + ?Sized = Table> {
    engine: &'t E,
    enis: Vec<EniInfo>,
    config: Config,
    parts: Vec<Part>,
    /// Reused routing buffers, one per sub-chunk.
    routed: Vec<Routed>,
    fragments: Map<(IpAddr, IpAddr, u8, u32), (u16, u16)>,
    /// Address → ENI index: the same mapping as [`Table::eni_of`], as hash maps.
    v4: Map<u32, u32>,
    v6: Map<u128, u32>,
    /// ENI ID → ENI index, for flow-log records that name their interface.
    eni_ids: Map<&'t EniId, u32>,
    /// One (type, code) per class of ICMP types and codes the rules tell apart.
    icmp_types: Vec<(u16, u16)>,
    stats: Stats,
    /// The chunk time of the last sweep of idle flows, and how many flows it left. Sweeps
    /// are decided for all partitions at once, from totals, so that when a flow is
    /// forgotten never depends on the partitioning (timestamps a little out of order would
    /// otherwise find a flow in one partitioning that another had swept).
    swept: (u64, usize),
    /// Tasks judged since the last sweep.
    since: usize,
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
        let enis = eni_infos(state)?;
        let n = config.partitions.max(1);
        let mut v4 = Map::default();
        let mut v6 = Map::default();
        for (i, eni) in state.enis.iter().enumerate().take(table.enis().len()) {
            for &a in eni.ips.iter().chain(&eni.public_ips) {
                match crate::model::normalize_addr(a) {
                    IpAddr::V4(a) => v4.insert(u32::from(a), i as u32),
                    IpAddr::V6(a) => v6.insert(u128::from(a), i as u32),
                };
            }
        }
        Ok(Evaluator {
            engine,
            enis,
            config: Config {
                partitions: n,
                ..config
            },
            parts: (0..n).map(|_| Part::default()).collect(),
            routed: Vec::new(),
            fragments: Map::default(),
            v4,
            v6,
            eni_ids: table
                .enis()
                .iter()
                .enumerate()
                .map(|(i, id)| (id, i as u32))
                .collect(),
            icmp_types: icmp_classes(state),
            swept: (0, 0),
            since: 0,
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
        self.parts
            .iter()
            .map(|p| p.flows4.len() + p.flows6.len())
            .sum()
    }

    /// The ENI that owns an address (the table's mapping, as a hash map).
    fn eni_of(&self, addr: IpAddr) -> Option<u32> {
        match addr {
            IpAddr::V4(a) => self.v4.get(&u32::from(a)).copied(),
            IpAddr::V6(a) => self.v6.get(&u128::from(a)).copied(),
        }
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
                let eni = r.eni.as_ref().and_then(|id| self.eni_ids.get(id).copied());
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

    /// Routes a sub-chunk of items (the first at position `first` of the chunk): where each
    /// is judged, and the partition of each evaluation.
    fn route(&self, r: &mut Routed, items: &[Item], first: usize, fixed: &[(usize, Header)]) {
        let n = self.parts.len();
        r.tasks.resize_with(n, Vec::new);
        r.tasks.iter_mut().for_each(Vec::clear);
        r.outcomes.clear();
        r.evaluations = 0;
        r.unmatched = 0;
        r.latest = 0;
        r.fragments = false;
        for (j, item) in items.iter().enumerate() {
            let unlogged_icmp = match item {
                Item::Flow(rec) if matches!(rec.header.protocol, 1 | 58) => Some(rec.action),
                _ => None,
            };
            let last_ns = match item {
                Item::Flow(rec) => rec.end.max(rec.start).saturating_mul(SECOND),
                Item::Packet(p) => p.ts_ns,
            };
            let (header, ts_ns) = match item {
                Item::Flow(rec) => (rec.header, rec.start.saturating_mul(SECOND)),
                Item::Packet(p) if p.fragment.is_some() => {
                    r.fragments = true;
                    let h = fixed
                        .binary_search_by_key(&(first + j), |x| x.0)
                        .map_or(p.header, |at| fixed[at].1);
                    (h, p.ts_ns)
                }
                Item::Packet(p) => (p.header, p.ts_ns),
            };
            r.latest = r.latest.max(ts_ns);
            let points = self.points(item, &header);
            if points.iter().all(Option::is_none) {
                r.unmatched += 1;
                continue;
            }
            for point in points.into_iter().flatten() {
                if self.config.stateless {
                    let verdict = match unlogged_icmp {
                        Some(logged) => judge_unlogged_icmp(
                            self.engine,
                            &self.icmp_types,
                            point,
                            &header,
                            logged,
                        ),
                        None => self.engine.classify(point, &header),
                    };
                    r.outcomes.push(Outcome {
                        index: item.index(),
                        point,
                        verdict,
                        established: false,
                    });
                    r.evaluations += 1;
                    continue;
                }
                let hash = flow_hash(point, &header);
                r.tasks[partition(hash, n)].push(Task {
                    slot: r.evaluations as u32,
                    point,
                    index: item.index(),
                    header,
                    ts_ns,
                    last_ns,
                    hash,
                    unlogged_icmp,
                });
                r.evaluations += 1;
            }
        }
    }

    /// Routes the sub-chunks of `size` items that `which` picks (in parallel with more than
    /// one partition).
    fn route_all(
        &self,
        routed: &mut [Routed],
        items: &[Item],
        size: usize,
        fixed: &[(usize, Header)],
        which: impl Fn(&Routed) -> bool + Sync,
    ) {
        let one = |s: usize, r: &mut Routed, chunk: &[Item]| {
            if which(r) {
                self.route(r, chunk, s * size, fixed);
            }
        };
        if self.parts.len() == 1 {
            for (s, (r, chunk)) in routed.iter_mut().zip(items.chunks(size)).enumerate() {
                one(s, r, chunk);
            }
        } else {
            routed
                .par_iter_mut()
                .zip(items.par_chunks(size))
                .enumerate()
                .for_each(|(s, (r, chunk))| one(s, r, chunk));
        }
    }

    /// The stateful step of [`Evaluator::eval_into`]: partitions judge their tasks in
    /// parallel, sub-chunk after sub-chunk; the outcomes go back into input order.
    fn judge_partitions(
        &mut self,
        routed_now: &[Routed],
        base: &[usize],
        latest: u64,
        total: usize,
        out: &mut Vec<Outcome>,
    ) {
        let n = self.parts.len();
        let engine = self.engine;
        let enis = &self.enis;
        let icmp_types = &self.icmp_types[..];
        let run = |(p, part): (usize, &mut Part)| {
            part.out.clear();
            for (r, &b) in routed_now.iter().zip(base) {
                for t in &r.tasks[p] {
                    let o = judge(engine, enis, icmp_types, part, t);
                    part.out.push((b + t.slot as usize, o));
                }
            }
        };
        if n == 1 {
            self.parts.iter_mut().enumerate().for_each(run);
        } else {
            self.parts.par_iter_mut().enumerate().for_each(run);
        }
        // Forget flows idle past their timeout, so that memory follows the live flows, not
        // the whole input (an idle flow is never used: it is checked when found). A sweep
        // visits every flow: on the clock only once a quarter as many packets have been
        // judged, so that it costs at most four visits per packet.
        let (at, left) = self.swept;
        let held = self.flows();
        self.since += total;
        let due = latest >= at.saturating_add(SWEEP_EVERY) && self.since >= held / 4;
        if due || held > 2 * left + 1024 {
            let sweep_part = |part: &mut Part| {
                sweep(&mut part.flows4, enis, latest);
                sweep(&mut part.flows6, enis, latest);
            };
            if n == 1 {
                self.parts.iter_mut().for_each(sweep_part);
            } else {
                self.parts.par_iter_mut().for_each(sweep_part);
            }
            self.swept = (latest, self.flows());
            self.since = 0;
        }
        let blank = Outcome {
            index: 0,
            point: Point {
                eni: 0,
                direction: Direction::Ingress,
            },
            verdict: Verdict::default_of(Action::Drop),
            established: false,
        };
        // Every slot is filled: each task of a partition yields exactly one outcome.
        out.clear();
        out.resize(total, blank);
        for part in &mut self.parts {
            for &(slot, o) in &part.out {
                out[slot] = o;
            }
        }
        self.bound(latest);
    }

    /// Holds the flow tables to [`Config::max_flows`]: past it, every partition forgets
    /// its flows idle past their timeout, then the least recently seen flows of all
    /// partitions together are evicted until a quarter of the bound is free. The choice
    /// depends on the flows alone, never on the partitioning.
    fn bound(&mut self, latest: u64) {
        let max = self.config.max_flows.max(1);
        if self.flows() <= max {
            return;
        }
        for part in &mut self.parts {
            sweep(&mut part.flows4, &self.enis, latest);
            sweep(&mut part.flows6, &self.enis, latest);
        }
        self.swept = (latest, self.flows());
        self.since = 0;
        let held = self.flows();
        if held <= max {
            return;
        }
        let evict = held - (max - max / 4);
        let mut seen: Vec<u64> = Vec::with_capacity(held);
        for part in &self.parts {
            seen.extend(part.flows4.iter().map(|f| f.last_ns));
            seen.extend(part.flows6.iter().map(|f| f.last_ns));
        }
        let (_, &mut cut, _) = seen.select_nth_unstable(evict - 1);
        drop(seen);
        for part in &mut self.parts {
            part.flows4.retain(|f| f.last_ns > cut);
            part.flows6.retain(|f| f.last_ns > cut);
        }
        self.swept.1 = self.flows();
        self.stats.evicted += (held - self.flows()) as u64;
    }

    /// Evaluates a chunk of items (in input order); returns the outcomes in input order
    /// (per item: egress before ingress).
    pub fn eval(&mut self, items: &[Item]) -> Vec<Outcome> {
        let mut out = Vec::new();
        self.eval_into(items, &mut out);
        out
    }

    /// [`Evaluator::eval`] into a caller's buffer (cleared first), which can be reused from
    /// chunk to chunk.
    ///
    /// Four steps: sub-chunks of items are routed in parallel (points, flow-key hash,
    /// partition), and when the chunk holds fragments, non-first fragments get their first
    /// fragment's ports (sequential, over fragments only) and the sub-chunks that hold
    /// fragments are routed again; partitions judge their tasks in parallel, sub-chunk
    /// after sub-chunk, so in input order; the outcomes are put back in input order and
    /// counted. Stateless evaluation judges in the routing step and needs no partitions.
    pub fn eval_into(&mut self, items: &[Item], out: &mut Vec<Outcome>) {
        let n = self.parts.len();
        let size = if n == 1 {
            items.len().max(1)
        } else {
            items
                .len()
                .div_ceil(rayon::current_num_threads() * 4)
                .max(MIN_SUB_CHUNK)
        };
        let subs = items.len().div_ceil(size);
        let mut routed = std::mem::take(&mut self.routed);
        routed.resize_with(subs.max(routed.len()), Routed::default);
        let routed_now = &mut routed[..subs];
        // Routed in parallel as if no item were a fragment; the sub-chunks that hold one
        // are routed again once the fragments have their ports (rare: it takes a pass in
        // input order over the chunk).
        self.route_all(routed_now, items, size, &[], |_| true);
        if routed_now.iter().any(|r| r.fragments) {
            let mut fixed = Vec::new();
            for (i, item) in items.iter().enumerate() {
                if matches!(item, Item::Packet(p) if p.fragment.is_some()) {
                    let h = self.header(item);
                    fixed.push((i, h));
                }
            }
            self.route_all(routed_now, items, size, &fixed, |r| r.fragments);
        }
        let mut base = Vec::with_capacity(subs);
        let mut total = 0usize;
        let mut latest = 0u64;
        for r in routed_now.iter() {
            base.push(total);
            total += r.evaluations;
            latest = latest.max(r.latest);
            self.stats.unmatched += r.unmatched;
        }
        self.stats.items += items.len() as u64;
        if self.config.stateless {
            out.clear();
            out.reserve(total);
            for r in routed_now.iter() {
                out.extend_from_slice(&r.outcomes);
            }
            self.routed = routed;
        } else {
            self.judge_partitions(&routed[..subs], &base, latest, total, out);
            self.routed = routed;
        }
        let stats = &mut self.stats;
        for o in out.iter() {
            stats.evaluations += 1;
            match o.action() {
                Decision::Accept => stats.accepted += 1,
                Decision::Drop => stats.dropped += 1,
                Decision::Unknown => stats.unknown += 1,
            }
            if o.established {
                stats.established += 1;
            }
            if let Some(r) = o.rule() {
                if let Some(h) = stats.rule_hits.get_mut(r as usize) {
                    *h += 1;
                }
            }
        }
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

    /// The untracked condition aggregates every group on the ENI, and never holds for a
    /// group-reference rule (whatever its protocol) or a rule open to part of the space.
    #[test]
    fn untracked_enis_aggregate_groups_and_ignore_references() {
        let state: State = serde_json::from_value(serde_json::json!({
            "groups": [{"id": "sg-a", "provider": "aws"}, {"id": "sg-b", "provider": "aws"}],
            "rules": [
                {"id": "a-ssh", "group": "sg-a", "direction": "ingress", "action": "accept",
                 "protocol": 6, "dst_ports": "22", "remote": {"cidr": "0.0.0.0/0"}},
                {"id": "a-all-from-b", "group": "sg-a", "direction": "ingress", "action": "accept",
                 "protocol": -1, "remote": {"group_id": "sg-b"}},
                {"id": "a-web-office", "group": "sg-a", "direction": "ingress", "action": "accept",
                 "protocol": 6, "dst_ports": "443", "remote": {"cidr": "198.51.100.0/24"}},
                {"id": "b-out", "group": "sg-b", "direction": "egress", "action": "accept",
                 "protocol": -1, "remote": {"cidr": "0.0.0.0/0"}}
            ],
            "enis": [
                {"id": "eni-ab", "ips": ["10.0.0.1"], "groups": ["sg-a", "sg-b"]},
                {"id": "eni-a", "ips": ["10.0.0.2"], "groups": ["sg-a"]}
            ]
        }))
        .unwrap();
        let ids = |rule: &str| -> Vec<String> {
            let r = state.rules.iter().find(|r| r.id.as_str() == rule).unwrap();
            untracked_enis(&state, r)
                .into_iter()
                .map(|e| e.to_string())
                .collect()
        };
        // eni-ab's egress (from sg-b) answers SSH from anywhere on all ports; eni-a has no
        // egress rule at all.
        assert_eq!(ids("a-ssh"), vec!["eni-ab"]);
        assert!(ids("a-all-from-b").is_empty());
        assert!(ids("a-web-office").is_empty());
        // The egress rule is the other half of the same condition.
        assert_eq!(ids("b-out"), vec!["eni-ab"]);
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

    /// SEMANTICS 3.1: a packet to a public (elastic) address is judged at the ENI behind
    /// it; the public address does not make the ENI a member of anything.
    #[test]
    fn packets_to_a_public_address_are_judged_at_its_eni() {
        let mut s = state();
        s.enis[0].public_ips = vec!["54.1.2.3".parse().unwrap()];
        let table = Table::new(&s).unwrap();
        let mut ev = Evaluator::new(&table, &s, Config::default()).unwrap();
        let out = ev.eval(&[
            pkt(0, "tcp 203.0.113.9:40000 -> 54.1.2.3:22", 0),
            pkt(1, "tcp 203.0.113.9:40000 -> 54.1.2.3:80", 1),
        ]);
        let r: Vec<_> = out
            .iter()
            .map(|o| (o.point.eni, o.point.direction, o.action(), o.reason()))
            .collect();
        assert_eq!(
            r,
            vec![
                (0, Direction::Ingress, Decision::Accept, "rule"),
                (0, Direction::Ingress, Decision::Drop, "default"),
            ]
        );
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

    /// A fragment of `text`'s packet: the first carries the ports, a later one does not.
    fn fragment(index: u64, text: &str, id: u32, first: bool) -> Item {
        let Item::Packet(mut p) = pkt(index, text, index) else {
            unreachable!("pkt makes packets")
        };
        p.fragment = Some(crate::packet::Fragment {
            id,
            offset: if first { 0 } else { 1480 },
            more: first,
        });
        if !first {
            p.header.src_port = 0;
            p.header.dst_port = 0;
            p.ports = None;
        }
        Item::Packet(p)
    }

    #[test]
    fn sub_chunks_and_fragments_route_like_one_sequential_pass() {
        let s = state();
        let table = Table::new(&s).unwrap();
        let reference = crate::classify::reference::Reference::new(&s).unwrap();
        // 20k items: SSH requests and replies, other ports, ICMP, and fragmented SSH
        // packets whose later fragments come thousands of items after the first (in other
        // sub-chunks and other chunks), plus orphans.
        let mut items = Vec::new();
        for i in 0..20_000u64 {
            let peer = format!("203.0.113.{}", i % 5);
            let port = 40000 + (i % 300) as u16;
            let item = match i % 10 {
                0 => fragment(
                    i,
                    &format!("tcp {peer}:{port} -> 10.0.0.1:22"),
                    i as u32,
                    true,
                ),
                1 if i > 3000 => {
                    let j = i - 2991; // the first fragment of item j (j % 10 == 0)
                    let port = 40000 + (j % 300) as u16;
                    let peer = format!("203.0.113.{}", j % 5);
                    fragment(
                        i,
                        &format!("tcp {peer}:{port} -> 10.0.0.1:22"),
                        j as u32,
                        false,
                    )
                }
                1 => fragment(i, &format!("tcp {peer}:1 -> 10.0.0.1:22"), 1 << 30, false),
                2 | 3 => {
                    // Replies to item i - i % 10 (a first fragment, accepted).
                    let j = i - i % 10;
                    let port = 40000 + (j % 300) as u16;
                    let peer = format!("203.0.113.{}", j % 5);
                    pkt(i, &format!("tcp 10.0.0.1:22 -> {peer}:{port}"), i)
                }
                4 => pkt(i, &format!("icmp {peer} -> 10.0.0.1 type 8 code 0"), i),
                5 => pkt(i, &format!("icmp 10.0.0.1 -> {peer} type 0 code 0"), i),
                6 => pkt(i, &format!("tcp {peer}:{port} -> 10.0.0.1:23"), i),
                _ => pkt(i, &format!("tcp {peer}:{port} -> 10.0.0.1:22"), i),
            };
            items.push(item);
        }
        let sequential = Config {
            partitions: 1,
            ..Config::default()
        };
        let mut seq = Evaluator::new(&table, &s, sequential).unwrap();
        let mut par = Evaluator::new(&table, &s, Config::default()).unwrap();
        let mut refr = Evaluator::with_engine(&reference, &table, &s, Config::default()).unwrap();
        let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
        for chunk in items.chunks(7000) {
            a.extend(seq.eval(chunk));
            b.extend(par.eval(chunk));
            c.extend(refr.eval(chunk));
        }
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(seq.stats(), par.stats());
        // Every later fragment of an SSH packet got its first fragment's port 22 (a rule
        // hit), and the one orphan per ten items before 3000 was judged with port 0.
        let later: Vec<&Outcome> = a
            .iter()
            .filter(|o| o.index % 10 == 1 && o.index > 3000)
            .collect();
        assert_eq!(later.len(), 1700);
        assert!(
            later.iter().all(|o| o.action() == Decision::Accept),
            "{later:?}"
        );
        assert_eq!(seq.stats().orphan_fragments, 300);
        let st = seq.stats();
        assert!(st.established > 0 && st.dropped > 0, "{st:?}");
    }

    /// An ENI with SSH and DNS open to anywhere, ping from anywhere, SSH from a /8 on a
    /// second address family, and all egress to 0.0.0.0/0 (AWS's default).
    fn open_state(provider: &str) -> State {
        serde_json::from_value(serde_json::json!({
            "groups": [{"id": "sg-web", "provider": provider}],
            "rules": [
                {"id": "r-ssh", "group": "sg-web", "direction": "ingress", "action": "accept",
                 "protocol": 6, "dst_ports": "22", "remote": {"cidr": "0.0.0.0/0"}},
                {"id": "r-dns", "group": "sg-web", "direction": "ingress", "action": "accept",
                 "protocol": 17, "dst_ports": "53", "remote": {"cidr": "0.0.0.0/0"}},
                {"id": "r-web", "group": "sg-web", "direction": "ingress", "action": "accept",
                 "protocol": 6, "dst_ports": "443", "remote": {"cidr": "10.0.0.0/8"}},
                {"id": "r-ping", "group": "sg-web", "direction": "ingress", "action": "accept",
                 "protocol": 1, "remote": {"cidr": "0.0.0.0/0"}},
                {"id": "r-ssh6", "group": "sg-web", "direction": "ingress", "action": "accept",
                 "protocol": 6, "dst_ports": "22", "remote": {"cidr": "::/0"}},
                {"id": "r-out", "group": "sg-web", "direction": "egress", "action": "accept",
                 "protocol": "all", "remote": {"cidr": "0.0.0.0/0"}},
                {"id": "r-out6", "group": "sg-web", "direction": "egress", "action": "accept",
                 "protocol": 6, "dst_ports": "443", "remote": {"cidr": "::/0"}}
            ],
            "enis": [{"id": "eni-a", "ips": ["10.0.0.1", "2001:db8::1"], "groups": ["sg-web"]}]
        }))
        .unwrap()
    }

    #[test]
    fn aws_flows_open_to_anywhere_both_ways_are_untracked() {
        let s = open_state("aws");
        let table = Table::new(&s).unwrap();
        let mut ev = Evaluator::new(&table, &s, Config::default()).unwrap();
        let out = ev.eval(&[
            // SSH and DNS from anywhere while all egress is open: untracked, the replies
            // are judged by the egress rule.
            pkt(0, "tcp 203.0.113.9:40000 -> 10.0.0.1:22", 0),
            pkt(1, "tcp 10.0.0.1:22 -> 203.0.113.9:40000", 1),
            pkt(2, "udp 203.0.113.9:5353 -> 10.0.0.1:53", 2),
            pkt(3, "udp 10.0.0.1:53 -> 203.0.113.9:5353", 3),
            // 443 from a /8 only: tracked.
            pkt(4, "tcp 10.9.9.9:40000 -> 10.0.0.1:443", 4),
            pkt(5, "tcp 10.0.0.1:443 -> 10.9.9.9:40000", 5),
            // Outbound: the ingress side is not open on all ports, so tracked.
            pkt(6, "tcp 10.0.0.1:50000 -> 198.51.100.1:443", 6),
            pkt(7, "tcp 198.51.100.1:443 -> 10.0.0.1:50000", 7),
            // ICMP is always tracked.
            pkt(8, "icmp 203.0.113.9 -> 10.0.0.1 type 8 code 0", 8),
            pkt(9, "icmp 10.0.0.1 -> 203.0.113.9 type 0 code 0", 9),
            // IPv6 SSH: egress to ::/0 covers 443 only, so tracked.
            pkt(10, "tcp [2001:db8::9]:40000 -> [2001:db8::1]:22", 10),
            pkt(11, "tcp [2001:db8::1]:22 -> [2001:db8::9]:40000", 11),
            // An untracked flow seen mid-stream, reply first: still untracked.
            pkt(12, "tcp 10.0.0.1:22 -> 203.0.113.10:41000", 12),
            pkt(13, "tcp 203.0.113.10:41000 -> 10.0.0.1:22", 13),
        ]);
        let r: Vec<(u64, &str)> = out.iter().map(|o| (o.index, o.reason())).collect();
        assert_eq!(
            r,
            vec![
                (0, "rule"),
                (1, "rule"),
                (2, "rule"),
                (3, "rule"),
                (4, "rule"),
                (5, "established"),
                (6, "rule"),
                (7, "established"),
                (8, "rule"),
                (9, "established"),
                (10, "rule"),
                (11, "established"),
                (12, "rule"),
                (13, "rule"),
            ]
        );
        assert_eq!(ev.flows(), 4);
        // Alibaba tracks every session.
        let s = open_state("aliyun");
        let table = Table::new(&s).unwrap();
        let mut ev = Evaluator::new(&table, &s, Config::default()).unwrap();
        let out = ev.eval(&[
            pkt(0, "tcp 203.0.113.9:40000 -> 10.0.0.1:22", 0),
            pkt(1, "tcp 10.0.0.1:22 -> 203.0.113.9:40000", 1),
        ]);
        assert_eq!(out[1].reason(), "established");
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

    #[test]
    fn stateless_evaluation_is_the_rules_alone_at_every_point() {
        let s = state();
        let table = Table::new(&s).unwrap();
        let reference = crate::classify::reference::Reference::new(&s).unwrap();
        let items: Vec<Item> = (0..5000u64)
            .map(|i| {
                let port = 40000 + (i % 300) as u16;
                let text = match i % 4 {
                    0 => format!("tcp 203.0.113.9:{port} -> 10.0.0.1:22"),
                    1 => format!("tcp 10.0.0.1:22 -> 203.0.113.9:{port}"),
                    2 => "icmp 10.0.0.1 -> 203.0.113.9 type 0 code 0".to_string(),
                    _ => format!("udp 198.51.100.1:{port} -> 198.51.100.2:53"),
                };
                pkt(i, &text, i)
            })
            .collect();
        for partitions in [1, 16] {
            let config = Config {
                partitions,
                stateless: true,
                ..Config::default()
            };
            let mut ev = Evaluator::new(&table, &s, config).unwrap();
            let out: Vec<Outcome> = items.chunks(1500).flat_map(|c| ev.eval(c)).collect();
            let expected: Vec<Outcome> = items
                .iter()
                .filter_map(|item| {
                    let Item::Packet(p) = item else { return None };
                    let eni = ev.eni_of(p.header.src).or(ev.eni_of(p.header.dst))?;
                    let direction = if ev.eni_of(p.header.src).is_some() {
                        Direction::Egress
                    } else {
                        Direction::Ingress
                    };
                    let point = Point { eni, direction };
                    Some(Outcome {
                        index: p.index,
                        point,
                        verdict: reference.classify(point, &p.header),
                        established: false,
                    })
                })
                .collect();
            assert_eq!(out, expected);
            let st = ev.stats();
            assert_eq!((st.established, st.unmatched, ev.flows()), (0, 1250, 0));
            assert_eq!(st.accepted, 1250);
            assert_eq!(st.dropped, 2500, "replies are dropped without state");
        }
    }

    #[test]
    fn tracked_ipv4_flows_take_32_bytes_and_items_no_more_than_a_packet() {
        assert_eq!(std::mem::size_of::<Tracked<u32>>(), 32);
        assert_eq!(
            std::mem::size_of::<Item>(),
            std::mem::size_of::<crate::packet::Packet>()
        );
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
    fn flow_table_is_bounded_evicting_the_oldest_and_counting() {
        let s = state();
        let table = Table::new(&s).unwrap();
        let run = |partitions| {
            let config = Config {
                partitions,
                max_flows: 1000,
                ..Config::default()
            };
            let mut ev = Evaluator::new(&table, &s, config).unwrap();
            // 5,000 scan-like flows a second apart, well within TCP's 5-day idle timeout.
            let mut outcomes = Vec::new();
            for chunk in 0..10u64 {
                let items: Vec<Item> = (0..500u64)
                    .map(|i| {
                        let n = chunk * 500 + i;
                        let text = format!("tcp 203.0.113.9:{} -> 10.0.0.1:22", 10_000 + n);
                        pkt(n, &text, n)
                    })
                    .collect();
                outcomes.extend(ev.eval(&items));
                assert!(ev.flows() <= 1000, "{}", ev.flows());
            }
            let held = ev.flows() as u64;
            assert_eq!(ev.stats().evicted, 5000 - held);
            // The reply to the first flow (evicted) is judged by the rules; the reply to
            // the last one passes as established.
            let replies = [
                pkt(5000, "tcp 10.0.0.1:22 -> 203.0.113.9:10000", 5000),
                pkt(5001, "tcp 10.0.0.1:22 -> 203.0.113.9:14999", 5000),
            ];
            let r = ev.eval(&replies);
            assert_eq!((r[0].established, r[1].established), (false, true));
            outcomes.extend(r);
            (outcomes, ev.stats().evicted)
        };
        assert_eq!(
            run(1),
            run(4),
            "eviction does not depend on the partitioning"
        );
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
