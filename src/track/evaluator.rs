//! The [`Evaluator`]: a stream judged chunk by chunk, routed to flow partitions.

use std::net::IpAddr;

use rayon::prelude::*;

use super::flows::{flow_hash, partition, sweep, SECOND};
use super::judge::{judge, judge_unlogged_icmp, Part, Task};
use super::places::Places;
use super::Map;
use super::{Config, Outcome, Stats};
use crate::classify::{Decision, Engine, Point, SemanticsError, Verdict};
use crate::compile::Table;
use crate::model::{Action, Direction, Header, State};
use crate::packet::Item;

const MAX_FRAGMENTS: usize = 65536;
/// Idle flows are swept once the clock has moved this far since the last sweep (the
/// shortest timeout), or once the table has doubled.
const SWEEP_EVERY: u64 = 30 * SECOND;
/// Below this many items per sub-chunk, routing is not split further.
const MIN_SUB_CHUNK: usize = 1024;

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

/// Evaluates a stream of items chunk by chunk, keeping connection state between chunks.
///
/// Rules are consulted through any [`Engine`] (the compiled [`Table`] by default; the
/// reference engine in differential tests); ENIs are located by the table's addresses.
pub struct Evaluator<'t, E: Engine + ?Sized = Table> {
    engine: &'t E,
    places: std::sync::Arc<Places>,
    config: Config,
    parts: Vec<Part>,
    /// Reused routing buffers, one per sub-chunk.
    routed: Vec<Routed>,
    fragments: Map<(IpAddr, IpAddr, u8, u32), (u16, u16)>,
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
        let places = Places::new(table, state)?;
        Ok(Evaluator::with_places(
            engine,
            std::sync::Arc::new(places),
            config,
        ))
    }

    /// An evaluator that judges with `engine` (compiled from the state `places` were made
    /// of) at `places`.
    pub fn with_places(engine: &'t E, places: std::sync::Arc<Places>, config: Config) -> Self {
        let n = config.partitions.max(1);
        Evaluator {
            engine,
            config: Config {
                partitions: n,
                ..config
            },
            parts: (0..n).map(|_| Part::default()).collect(),
            routed: Vec::new(),
            fragments: Map::default(),
            swept: (0, 0),
            since: 0,
            stats: Stats {
                rule_hits: vec![0; places.rules],
                ..Stats::default()
            },
            places,
        }
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
            IpAddr::V4(a) => self.places.v4.get(&u32::from(a)).copied(),
            IpAddr::V6(a) => self.places.v6.get(&u128::from(a)).copied(),
        }
    }
    /// The points where `item` is judged (egress first), at most two.
    fn points(&self, item: &Item, header: &Header) -> [Option<Point>; 2] {
        let at = |eni: Option<u32>, direction: Direction| eni.map(|eni| Point { eni, direction });
        let by_addr = || {
            [
                at(self.eni_of(header.src()), Direction::Egress),
                at(self.eni_of(header.dst()), Direction::Ingress),
            ]
        };
        let mut points = match item {
            Item::Packet(_) => by_addr(),
            Item::Flow(r) => {
                let eni = r
                    .eni
                    .as_ref()
                    .and_then(|id| self.places.eni_ids.get(id).copied());
                let owns = |e: u32, a: IpAddr| self.eni_of(a) == Some(e);
                match (eni, r.direction) {
                    (Some(e), Some(d)) => [at(Some(e), d), None],
                    (Some(e), None) if owns(e, header.dst()) => {
                        [at(Some(e), Direction::Ingress), None]
                    }
                    (Some(e), None) if owns(e, header.src()) => {
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
                    let fk = (h.src(), h.dst(), h.protocol(), f.id);
                    if f.is_first() {
                        if self.fragments.len() >= MAX_FRAGMENTS {
                            self.fragments.clear();
                        }
                        self.fragments.insert(fk, (h.src_port(), h.dst_port()));
                    } else if let Some(&(s, d)) = self.fragments.get(&fk) {
                        h = h.with_ports(s, d);
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
                Item::Flow(rec) if rec.header.ip_protocol().is_icmp() => Some(rec.action),
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
                            &self.places.icmp_types,
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
        let enis = &self.places.enis;
        let icmp_types = &self.places.icmp_types[..];
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
            sweep(&mut part.flows4, &self.places.enis, latest);
            sweep(&mut part.flows6, &self.places.enis, latest);
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
    use crate::track::tests::{pkt, state};

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
            p.header = p.header.with_ports(0, 0);
            p.transport = crate::packet::Transport::None;
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
                    let eni = ev.eni_of(p.header.src()).or(ev.eni_of(p.header.dst()))?;
                    let direction = if ev.eni_of(p.header.src()).is_some() {
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
