//! The run: items routed to partitions by connection, partitions judged on the rayon pool,
//! idle connections swept, and the report's traffic sections written at the end.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

use rayon::prelude::*;
use rustc_hash::FxHashMap;

use super::books::{closed, Books, Conn};
use super::conns::Conns;
use super::judge::Judge;
use super::keys::{key_of, v6_bits, Key, Seen, Word};
use super::tally::{Agg, Service, ServiceKey};
use super::wire::Tally;
use super::{Error, ACK, SECOND, SYN};
use crate::model::{Header, State};
use crate::packet::{Item, Source, TrafficError};
use crate::whatif::report::{self, Flow, Hits, Impact, Report};

/// Below this many items per sub-chunk, routing is not split further.
const MIN_SUB_CHUNK: usize = 2048;
/// At most this many non-first fragment keys are remembered.
const MAX_FRAGMENTS: usize = 65536;
/// Idle connections are swept once the clock has moved this far since the last sweep.
const SWEEP_EVERY: u64 = 30 * SECOND;
/// How far behind the clock (the latest time fed) a flow-log record may start and still
/// continue its connection: a sweep finishes only connections idle past their timeout by
/// this much more. Flow logs are only roughly in time order (windows of up to ten
/// minutes, files per delivery), and a connection a sweep finished early would open anew
/// where its next record continues it: the answer would depend on how the input is cut
/// into chunks (and the folding plan's buckets would disagree with the stream).
const FLOW_SLACK: u64 = 15 * 60 * SECOND;
/// How many items ahead a partition asks for the index slot of an item's connection; the
/// connection itself is asked for half as far ahead.
const PREFETCH: usize = 8;

/// A partition: its live connections, and its books (the fates they share, its totals).
#[derive(Default)]
struct Part {
    conns4: Conns<u32>,
    conns6: Conns<u128>,
    books: Books,
    /// The chunk time of the last sweep and how many connections it left; items since.
    swept: (u64, usize),
    since: usize,
}

/// The partition of a key hash, from its upper half (the tables index buckets by the low
/// bits, which must stay spread within a partition).
fn partition(hash: u64, n: usize) -> usize {
    (((hash >> 32) * n as u64) >> 32) as usize
}

/// The tasks of one sub-chunk per partition: each item as the loop sees it, with its key
/// hash. Partitions read their tasks in order, not the chunk's items scattered over it
/// (which made every item a cache miss).
#[derive(Default)]
struct Routed {
    tasks: Vec<Vec<(Seen, u64)>>,
    latest: u64,
    /// The sub-chunk holds a fragment.
    fragments: bool,
    /// The sub-chunk holds a flow-log record (sweeps then keep [`FLOW_SLACK`]).
    flows: bool,
}

/// The traffic what-if of one or more inputs: feed it items (or whole sources), then
/// write its sections into a report.
pub struct Run<'j> {
    judge: &'j Judge,
    parts: Vec<Part>,
    /// The revoke instant of the current input.
    at: Option<u64>,
    fragments: FxHashMap<(IpAddr, IpAddr, u8, u32), (u16, u16)>,
    orphan_fragments: u64,
    routed: Vec<Routed>,
    /// Totals of finished inputs.
    done: Agg,
    items: u64,
    warnings: Vec<String>,
    /// The revoke instants used, per input.
    instants: Vec<u64>,
    /// Items were fed since the last end of input.
    pending: bool,
    /// Connections finished early to keep within the bound.
    evicted: u64,
    inputs: Vec<report::Input>,
}

/// The default revoke instant of `source` (its first item's time, as [`Run::feed`] takes
/// it; 0 when it has none), read from the source's start: for a plan that judges the
/// input elsewhere ([`crate::whatif::fold`]).
pub fn first_instant(judge: &Judge, source: &mut Source<'_>) -> Result<u64, TrafficError> {
    let mut first = Vec::new();
    while first.is_empty() && source.read_chunk(1, &mut first)? {}
    Ok(first.first().map_or(0, |item| judge.instant_of(item)))
}

/// Progress of a run over one source.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Input bytes read (and decoded).
    pub bytes: u64,
    /// Items judged.
    pub items: u64,
}

impl<'j> Run<'j> {
    /// A run with no traffic yet.
    pub fn new(judge: &'j Judge) -> Run<'j> {
        let n = judge.config.partitions.max(1);
        Run {
            judge,
            parts: (0..n).map(|_| Part::default()).collect(),
            at: judge.config.at_ns,
            fragments: FxHashMap::default(),
            orphan_fragments: 0,
            routed: Vec::new(),
            done: Agg::default(),
            items: 0,
            warnings: Vec::new(),
            instants: Vec::new(),
            pending: false,
            evicted: 0,
            inputs: Vec::new(),
        }
    }

    /// A run whose revoke lands at `at` (ns since the epoch) whatever the configured
    /// instant: a task of the folding plan, given its input's instant.
    pub fn with_instant(judge: &'j Judge, at: u64) -> Run<'j> {
        let mut run = Run::new(judge);
        run.at = Some(at);
        run
    }

    /// Items judged so far.
    pub fn items(&self) -> u64 {
        self.items
    }

    /// Live connections held.
    pub fn connections(&self) -> usize {
        self.parts
            .iter()
            .map(|p| p.conns4.len() + p.conns6.len())
            .sum()
    }

    /// Judges every item of `source` (read ahead and decoded on the rayon pool, in chunks of
    /// `chunk` items), then ends the input. `progress` is called after each chunk.
    pub fn source(
        &mut self,
        source: &mut Source<'_>,
        name: &str,
        chunk: usize,
        mut progress: impl FnMut(Progress),
    ) -> Result<(), Error> {
        let read = crate::packet::read_ahead(source, chunk, |items, bytes| {
            self.feed(items);
            progress(Progress {
                bytes,
                items: self.items,
            });
            Ok::<(), std::convert::Infallible>(())
        });
        let read = match read {
            Ok(r) => r,
            Err(never) => match never {},
        };
        let unmatched = self.end_input();
        if unmatched > 0 {
            self.warnings.push(format!(
                "{name}: {unmatched} packets or records touched no ENI of the state and were not judged"
            ));
        }
        read.map_err(|source| Error::Traffic {
            input: name.to_string(),
            source,
        })
    }

    /// Judges a chunk of items of the current input, in input order.
    pub fn feed(&mut self, items: &[Item]) {
        if items.is_empty() {
            return;
        }
        let judge = self.judge;
        let at = *self.at.get_or_insert_with(|| judge.instant_of(&items[0]));
        self.items += items.len() as u64;
        self.pending = true;
        let n = self.parts.len();
        let size = if n == 1 {
            items.len()
        } else {
            items
                .len()
                .div_ceil(rayon::current_num_threads() * 2)
                .max(MIN_SUB_CHUNK)
        };
        let subs = items.len().div_ceil(size);
        let mut routed = std::mem::take(&mut self.routed);
        routed.resize_with(subs.max(routed.len()), Routed::default);
        // Routed in parallel as if no item were a fragment; the sub-chunks that hold one
        // are routed again once non-first fragments have their first fragment's ports
        // (rare: it takes a pass in input order over the chunk).
        let route = |s: usize, r: &mut Routed, chunk: &[Item], fixed: &[(usize, Header)]| {
            r.tasks.resize_with(n, Vec::new);
            r.tasks.iter_mut().for_each(Vec::clear);
            r.latest = 0;
            r.fragments = false;
            r.flows = false;
            for (j, item) in chunk.iter().enumerate() {
                let fix = match item {
                    Item::Packet(p) if p.fragment.is_some() => {
                        r.fragments = true;
                        fixed
                            .binary_search_by_key(&(s * size + j), |x| x.0)
                            .ok()
                            .map(|at| fixed[at].1)
                    }
                    _ => None,
                };
                let seen = judge.seen(item, fix);
                r.latest = r.latest.max(seen.ts_ns);
                r.flows |= seen.record.is_some();
                let hash = judge.hash(&seen);
                r.tasks[partition(hash, n)].push((seen, hash));
            }
        };
        let route_all = |routed: &mut [Routed], fixed: &[(usize, Header)], again: bool| {
            if n == 1 {
                route(0, &mut routed[0], items, fixed);
            } else {
                routed[..subs]
                    .par_iter_mut()
                    .zip(items.par_chunks(size))
                    .enumerate()
                    .filter(|(_, (r, _))| !again || r.fragments)
                    .for_each(|(s, (r, chunk))| route(s, r, chunk, fixed));
            }
        };
        route_all(&mut routed, &[], false);
        if routed[..subs].iter().any(|r| r.fragments) {
            let mut fixed: Vec<(usize, Header)> = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let Item::Packet(p) = item else { continue };
                let Some(f) = p.fragment else { continue };
                let h = p.header;
                let fk = (h.src(), h.dst(), h.protocol(), f.id);
                if f.is_first() {
                    if self.fragments.len() >= MAX_FRAGMENTS {
                        self.fragments.clear();
                    }
                    self.fragments.insert(fk, (h.src_port(), h.dst_port()));
                } else if let Some(&(sp, dp)) = self.fragments.get(&fk) {
                    fixed.push((i, h.with_ports(sp, dp)));
                } else {
                    self.orphan_fragments += 1;
                }
            }
            route_all(&mut routed, &fixed, true);
        }
        let routed_now = &routed[..subs];
        let latest = routed_now.iter().map(|r| r.latest).max().unwrap_or(0);
        let slack = if routed_now.iter().any(|r| r.flows) {
            FLOW_SLACK
        } else {
            0
        };
        let top = judge.config.top;
        let run = |(p, part): (usize, &mut Part)| {
            for r in routed_now {
                let tasks = &r.tasks[p];
                for (i, (seen, hash)) in tasks.iter().enumerate() {
                    if let Some((s, h)) = tasks.get(i + PREFETCH) {
                        part.prefetch(s, *h, false);
                    }
                    if let Some((s, h)) = tasks.get(i + PREFETCH / 2) {
                        part.prefetch(s, *h, true);
                    }
                    part.judge(judge, seen, *hash, at, top);
                }
            }
            part.since += routed_now.iter().map(|r| r.tasks[p].len()).sum::<usize>();
            part.sweep(latest, slack, top);
        };
        if n == 1 {
            self.parts.iter_mut().enumerate().for_each(run);
        } else {
            self.parts.par_iter_mut().enumerate().for_each(run);
        }
        self.routed = routed;
        self.bound();
    }

    /// Keeps the live connections within [`Config::max_connections`](super::Config): past
    /// it, the least recently seen of all partitions together are finished until a
    /// quarter of the bound is free. Which ones depends on the connections alone (their
    /// last time, ties evicted together), not on the partitioning.
    fn bound(&mut self) {
        let max = self.judge.config.max_connections.max(1);
        if self.connections() <= max {
            return;
        }
        let keep = max - max / 4;
        let mut last: Vec<u64> = self
            .parts
            .par_iter()
            .flat_map_iter(|p| {
                p.conns4
                    .iter()
                    .map(|c| c.last_ns)
                    .chain(p.conns6.iter().map(|c| c.last_ns))
            })
            .collect();
        let evict = last.len() - keep;
        let (_, &mut cutoff, _) = last.select_nth_unstable(evict - 1);
        let top = self.judge.config.top;
        let evicted: u64 = self
            .parts
            .par_iter_mut()
            .map(|part| {
                let Part {
                    conns4,
                    conns6,
                    books,
                    ..
                } = part;
                let n = conns4.extract_if(|c| c.last_ns <= cutoff, |c| books.finish(c, top))
                    + conns6.extract_if(|c| c.last_ns <= cutoff, |c| books.finish(c, top));
                books.agg.connections.evicted += n;
                n
            })
            .sum();
        self.evicted += evicted;
    }

    /// The revoke instant of the current input (ns since the epoch): the one configured,
    /// else the first item's once an item was fed; 0 before that.
    pub fn instant(&self) -> u64 {
        self.at.unwrap_or(0)
    }

    /// Ends the current input and gives the totals of everything fed, to be merged by
    /// another run ([`Run::absorb`]): how a task of the folding plan hands over the
    /// connections it judged.
    pub fn into_tally(mut self) -> Tally {
        if self.pending {
            self.end_input();
        }
        let mut agg = std::mem::take(&mut self.done);
        agg.flush_second();
        Tally {
            agg,
            items: self.items,
        }
    }

    /// Adds the totals another run judged of the input `name`, whose revoke instant was
    /// `at`, as if this run had judged them: the report is the same. Ends the current
    /// input first.
    pub fn absorb(&mut self, name: &str, tally: Tally, at: u64) {
        if self.pending {
            self.end_input();
        }
        let before = self.done.unmatched;
        self.evicted += tally.evicted();
        self.items += tally.items;
        self.done.merge(tally.agg, self.judge.config.top);
        let unmatched = self.done.unmatched - before;
        self.instants.push(at);
        if unmatched > 0 {
            self.warnings.push(format!(
                "{name}: {unmatched} packets or records touched no ENI of the state and were not judged"
            ));
        }
    }

    /// Ends the current input: every live connection is finished and counted, and the next
    /// input starts with no connections (and its own revoke instant unless one was given).
    /// Returns the items of the input that touched no ENI.
    pub fn end_input(&mut self) -> u64 {
        let top = self.judge.config.top;
        let before = self.done.unmatched;
        let parts = std::mem::take(&mut self.parts);
        let n = parts.len();
        let finished: Vec<Agg> = parts
            .into_par_iter()
            .map(|mut part| {
                let Part {
                    conns4,
                    conns6,
                    books,
                    ..
                } = &mut part;
                for c in conns4.drain() {
                    books.finish(&c, top);
                }
                for c in conns6.drain() {
                    books.finish(&c, top);
                }
                std::mem::take(&mut books.agg)
            })
            .collect();
        for agg in finished {
            self.done.merge(agg, top);
        }
        self.parts = (0..n).map(|_| Part::default()).collect();
        if let Some(at) = self.at {
            self.instants.push(at);
        }
        self.at = self.judge.config.at_ns;
        self.pending = false;
        self.fragments.clear();
        self.done.unmatched - before
    }
}

impl Part {
    /// Asks the memory for what judging `s` will read: the index slot of its connection
    /// (`conn` false), or the connection itself (`conn` true).
    fn prefetch(&self, s: &Seen, hash: u64, conn: bool) {
        let v4 = s.header.src().is_ipv4() && s.header.dst().is_ipv4();
        match (v4, conn) {
            (true, false) => self.conns4.prefetch_slot(hash),
            (true, true) => self.conns4.prefetch_conn(hash),
            (false, false) => self.conns6.prefetch_slot(hash),
            (false, true) => self.conns6.prefetch_conn(hash),
        }
    }

    fn judge(&mut self, judge: &Judge, s: &Seen, hash: u64, at: u64, top: usize) {
        let eni = Judge::key_eni(s);
        let h = &s.header;
        match (h.src(), h.dst()) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                let (k, src_is_a) = key_of(h, u32::from(a), u32::from(b), eni);
                step(
                    &mut self.conns4,
                    &mut self.books,
                    judge,
                    s,
                    k,
                    src_is_a,
                    hash,
                    at,
                    top,
                );
            }
            (a, b) => {
                let (k, src_is_a) = key_of(h, v6_bits(a), v6_bits(b), eni);
                step(
                    &mut self.conns6,
                    &mut self.books,
                    judge,
                    s,
                    k,
                    src_is_a,
                    hash,
                    at,
                    top,
                );
            }
        }
    }

    /// Finishes connections idle past their timeout, so that memory follows the live
    /// connections: once the clock has moved [`SWEEP_EVERY`] and twice as many items as
    /// connections held have been judged (a sweep costs at most half a visit per item), or
    /// once the table has doubled.
    fn sweep(&mut self, latest: u64, slack: u64, top: usize) {
        let (at, left) = self.swept;
        let held = self.conns4.len() + self.conns6.len();
        let due = latest >= at.saturating_add(SWEEP_EVERY) && self.since >= 2 * held;
        if !(due || held > 2 * left + 4096) {
            return;
        }
        let Part {
            conns4,
            conns6,
            books,
            ..
        } = self;
        fn sweep<A: Word>(
            conns: &mut Conns<A>,
            books: &mut Books,
            latest: u64,
            slack: u64,
            top: usize,
        ) {
            // In the table's order; the report does not depend on it (a service's example
            // is its earliest connection, its clients past the cap the smallest).
            let idle = |c: &Conn<A>| {
                latest.saturating_sub(c.last_ns) > u64::from(c.idle_s) * SECOND + slack
            };
            conns.extract_if(idle, |c| books.finish(c, top));
        }
        sweep(conns4, books, latest, slack, top);
        sweep(conns6, books, latest, slack, top);
        self.swept = (latest, self.conns4.len() + self.conns6.len());
        self.since = 0;
    }
}

/// Judges one item against its partition's connections of one address family.
#[allow(clippy::too_many_arguments)]
fn step<A: Word>(
    conns: &mut Conns<A>,
    books: &mut Books,
    judge: &Judge,
    s: &Seen,
    k: Key<A>,
    src_is_a: bool,
    hash: u64,
    at: u64,
    top: usize,
) {
    match conns.find(hash, &k) {
        Some(p) => {
            let c = conns.get(p);
            let idle = s.ts_ns.saturating_sub(c.last_ns) > u64::from(c.idle_s) * SECOND;
            let syn = s.record.is_none() && s.flags & (SYN | ACK) == SYN;
            if idle || (closed(c.flags) && syn) {
                books.finish(c, top);
                let mut c = books.open(judge, s, k, src_is_a, at);
                let d = usize::from(src_is_a != c.o_is_a);
                books.count(&mut c, d, s, at);
                conns.replace(p, c);
            } else {
                let c = conns.get_mut(p);
                let d = usize::from(src_is_a != c.o_is_a);
                books.count(c, d, s, at);
            }
        }
        None => {
            let mut c = books.open(judge, s, k, src_is_a, at);
            let d = usize::from(src_is_a != c.o_is_a);
            books.count(&mut c, d, s, at);
            conns.insert(hash, c);
        }
    }
}

fn service_label(protocol: u8, port: u16) -> String {
    let name = crate::model::Protocol::Number(protocol).to_string();
    match protocol {
        6 | 17 => format!("{port}/{name}"),
        1 | 58 => format!("{name} type {port}"),
        _ => name,
    }
}

impl Run<'_> {
    /// Adds an input to the report's list of inputs.
    pub fn input(&mut self, input: report::Input) {
        self.inputs.push(input);
    }

    /// Ends the current input if items were fed since the last end, and writes the traffic
    /// sections into `report`; names come from `before`.
    pub fn finish(mut self, report: &mut Report, before: &State) {
        if self.pending {
            let unmatched = self.end_input();
            if unmatched > 0 {
                self.warnings.push(format!(
                    "{unmatched} packets or records touched no ENI of the state and were not judged"
                ));
            }
        }
        let judge = self.judge;
        let top = judge.config.top;
        let mut agg = self.done;
        agg.flush_second();
        let names = report::Names::new(before);
        let eni_id = |i: u32| before.enis.get(i as usize).map(|e| e.id.clone());
        // Flows: the top-N changed connections.
        let flows: Vec<Flow> = agg
            .top
            .into_sorted_vec()
            .into_iter()
            .filter_map(|t| {
                let eni = eni_id(t.at.0)?;
                Some(Flow {
                    eni_name: names.eni(&eni),
                    eni,
                    direction: t.at.1,
                    src: t.header.src().to_string(),
                    dst: t.header.dst().to_string(),
                    protocol: t.header.protocol(),
                    src_port: t.header.src_port(),
                    dst_port: t.header.dst_port(),
                    packets: t.packets,
                    bytes: t.bytes,
                    first_seen_ns: (t.first_ns > 0).then_some(t.first_ns),
                    last_seen_ns: (t.last_ns > 0).then_some(t.last_ns),
                    before: judge.named(t.before),
                    after: judge.named(t.after),
                    outcome: t.outcome,
                })
            })
            .collect();
        // Services.
        let mut services: Vec<(ServiceKey, Service)> = agg.services.into_iter().collect();
        services.sort_by(|(ka, a), (kb, b)| {
            (b.broken, b.surviving, b.restored, b.unknown, b.packets)
                .cmp(&(a.broken, a.surviving, a.restored, a.unknown, a.packets))
                .then(ka.0.cmp(&kb.0))
                .then(ka.1.cmp(&kb.1))
                .then(ka.2.cmp(&kb.2))
                .then(ka.3.cmp(&kb.3))
                .then(ka.4.cmp(&kb.4))
        });
        let impact: Vec<Impact> = services
            .into_iter()
            .filter_map(|((eni, direction, protocol, port, v6), s)| {
                let id = eni_id(eni)?;
                let (_, _, b, a) = s.example?;
                Some(Impact {
                    eni_name: names.eni(&id),
                    instance: names.instance(&id),
                    groups: names.groups(&id),
                    eni: id,
                    direction,
                    family: if v6 {
                        crate::model::Family::V6
                    } else {
                        crate::model::Family::V4
                    },
                    protocol,
                    port,
                    service: service_label(protocol, port),
                    clients: s.clients.len() as u64,
                    clients_exact: !s.clients_capped,
                    client_sample: s
                        .clients
                        .iter()
                        .take(top.max(1))
                        .map(|&c| names.client(c))
                        .collect(),
                    connections: s.broken + s.surviving + s.restored + s.unknown,
                    broken: s.broken,
                    surviving: s.surviving,
                    restored: s.restored,
                    unknown: s.unknown,
                    packets: s.packets,
                    packets_broken: s.packets_broken,
                    bytes_broken: s.bytes_broken,
                    bytes: s.bytes,
                    first_seen: s.first_ns.filter(|&t| t > 0).map(report::rfc3339),
                    last_seen: s.last_ns.filter(|&t| t > 0).map(report::rfc3339),
                    before: judge.named(b),
                    after: judge.named(a),
                })
            })
            .collect();
        // Rule hits, for the rules of the groups on ENIs that judged traffic.
        let mut by_rule: HashMap<crate::model::RuleId, (u64, u64)> = HashMap::new();
        for (i, n) in agg.hits[0].iter().enumerate() {
            if let Some(r) = judge.before.rules().get(i) {
                by_rule.entry(r.clone()).or_default().0 += n;
            }
        }
        for (i, n) in agg.hits[1].iter().enumerate() {
            if let Some(r) = judge.after.rules().get(i) {
                by_rule.entry(r.clone()).or_default().1 += n;
            }
        }
        for (i, n) in agg.hits[2].iter().enumerate() {
            if let Some(r) = judge.before.rules().get(i) {
                by_rule.entry(r.clone()).or_default().1 += n;
            }
        }
        let groups: BTreeSet<_> = before
            .enis
            .iter()
            .enumerate()
            .filter(|(i, _)| agg.enis.get(*i).copied().unwrap_or(false))
            .flat_map(|(_, e)| e.groups.iter().cloned())
            .collect();
        let mut rules = Vec::new();
        let mut without = Vec::new();
        for r in before.rules.iter().filter(|r| groups.contains(&r.group)) {
            let (b, a) = by_rule.get(&r.id).copied().unwrap_or((0, 0));
            if b == 0 {
                without.push(r.id.clone());
            }
            rules.push(Hits {
                rule_id: r.id.clone(),
                before: b,
                after: a,
            });
        }
        let mut agreement = agg.agreement;
        if agreement.records > 0 {
            agreement.ratio = agreement.agree as f64 / agreement.records as f64;
            report.flow_log_agreement = Some(agreement);
        }
        let c = &agg.connections;
        report.flows_total = c.broken + c.surviving + c.restored + c.unknown;
        report.timeline = report::timeline(&agg.seconds, 60);
        report.packets = agg.totals;
        report.changed = agg.changed;
        report.connections = agg.connections;
        report.impact = impact;
        report.flows = flows;
        report.rules = rules;
        report.rules_without_hits = without;
        report.top = top;
        report.inputs.extend(self.inputs);
        report.revoke_at = self
            .instants
            .iter()
            .filter(|&&t| t > 0)
            .map(|&t| report::rfc3339(t))
            .collect();
        if self.orphan_fragments > 0 {
            self.warnings.push(format!(
                "{} non-first fragments came without their first fragment and were judged with ports 0",
                self.orphan_fragments
            ));
        }
        if self.evicted > 0 {
            self.warnings.push(format!(
                "{} connections were finished early to keep memory bounded (more than {} live at \
                 once; --max-connections raises the bound): a later packet or record of one \
                 counted as a new connection",
                self.evicted, judge.config.max_connections
            ));
        }
        report.warnings.extend(self.warnings);
    }
}
