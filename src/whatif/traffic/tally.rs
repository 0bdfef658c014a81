//! The books' totals: packets, connections, rule hits, services and the top-N of changed
//! connections, per partition and merged.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::net::IpAddr;

use rustc_hash::FxHashMap;

use super::judge::Step;
use super::{MAX_CLIENTS, SECOND};
use crate::model::{Direction, Header};
use crate::whatif::report::{Agreement, Changed, Connections, Effect, Totals};

/// A service that changes, while it is being counted.
#[derive(Clone, Debug, Default)]
pub(super) struct Service {
    pub(super) broken: u64,
    pub(super) surviving: u64,
    pub(super) restored: u64,
    pub(super) unknown: u64,
    pub(super) packets: u64,
    pub(super) bytes: u64,
    /// Packets and bytes of its broken connections that are lost.
    pub(super) packets_broken: u64,
    pub(super) bytes_broken: u64,
    pub(super) first_ns: Option<u64>,
    pub(super) last_ns: Option<u64>,
    /// Its clients; past [`MAX_CLIENTS`], the smallest addresses ([`Service::add_client`]).
    pub(super) clients: BTreeSet<IpAddr>,
    pub(super) clients_capped: bool,
    /// Its earliest connection (first seen, then header) and the opener's verdicts of it,
    /// before and after ([`Service::offer_example`]).
    pub(super) example: Option<(u64, Header, Step, Step)>,
}

impl Service {
    /// Adds a client. Past [`MAX_CLIENTS`] the smallest addresses are kept, so which ones
    /// are kept does not depend on the order connections finish in (partitions, sweeps).
    pub(super) fn add_client(&mut self, client: IpAddr) {
        self.clients.insert(client);
        if self.clients.len() > MAX_CLIENTS {
            self.clients.pop_last();
            self.clients_capped = true;
        }
    }

    /// Offers a connection as the service's example: the earliest (first seen, then
    /// header) is kept, whatever order connections finish in. Keeping the first finished
    /// made the example, and the verdicts the report prints for the service, depend on the
    /// number of partitions (so on the machine's cores) and on the table's order.
    pub(super) fn offer_example(
        &mut self,
        first_ns: u64,
        header: Header,
        before: Step,
        after: Step,
    ) {
        if self
            .example
            .as_ref()
            .is_none_or(|e| (first_ns, header) < (e.0, e.1))
        {
            self.example = Some((first_ns, header, before, after));
        }
    }
}

/// (ENI, direction, protocol, port, IPv6).
pub(super) type ServiceKey = (u32, Direction, u8, u16, bool);

/// A changed connection in the top-N.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Top {
    pub(super) packets: u64,
    pub(super) bytes: u64,
    pub(super) first_ns: u64,
    pub(super) last_ns: u64,
    pub(super) header: Header,
    pub(super) at: (u32, Direction),
    pub(super) before: Step,
    pub(super) after: Step,
    pub(super) outcome: Effect,
}

impl Ord for Top {
    /// Broken first, then unknown, restored, surviving; most packets first, then earliest,
    /// then by header: a total order, so the top-N does not depend on the partitions.
    fn cmp(&self, o: &Self) -> Ordering {
        let rank = |e: Effect| match e {
            Effect::Broken => 0,
            Effect::Unknown => 1,
            Effect::Restored => 2,
            Effect::Surviving => 3,
        };
        rank(self.outcome)
            .cmp(&rank(o.outcome))
            .then(o.packets.cmp(&self.packets))
            .then(self.first_ns.cmp(&o.first_ns))
            .then(self.header.cmp(&o.header))
            .then(self.at.cmp(&o.at))
            .then(o.bytes.cmp(&self.bytes))
            .then(self.last_ns.cmp(&o.last_ns))
    }
}

impl PartialOrd for Top {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

/// Totals of one partition (or of the whole run once merged).
#[derive(Default)]
pub(super) struct Agg {
    pub(super) totals: Totals,
    pub(super) changed: Changed,
    pub(super) connections: Connections,
    /// Packets per rule: decided before (table before's numbering), after (table after's),
    /// and after by a verdict kept from before (table before's).
    pub(super) hits: [Vec<u64>; 3],
    pub(super) services: FxHashMap<ServiceKey, Service>,
    /// The best `top` changed connections (a max-heap by [`Top`]'s order: worst on top).
    pub(super) top: BinaryHeap<Top>,
    pub(super) agreement: Agreement,
    pub(super) unmatched: u64,
    /// ENIs (by index) that judged some connection.
    pub(super) enis: Vec<bool>,
    /// Per second: (total, accepted before, accepted after), and the second being filled.
    pub(super) seconds: BTreeMap<u64, (u64, u64, u64)>,
    current: Option<(u64, (u64, u64, u64))>,
}

impl Agg {
    pub(super) fn second(&mut self, ts_ns: u64, n: u64, before: bool, after: bool) {
        if ts_ns == 0 {
            return;
        }
        let s = ts_ns / SECOND;
        let add = |c: &mut (u64, u64, u64)| {
            c.0 += n;
            c.1 += if before { n } else { 0 };
            c.2 += if after { n } else { 0 };
        };
        match &mut self.current {
            Some((cs, c)) if *cs == s => add(c),
            slot => {
                if let Some((cs, c)) = slot.take() {
                    let e = self.seconds.entry(cs).or_default();
                    e.0 += c.0;
                    e.1 += c.1;
                    e.2 += c.2;
                }
                let mut c = (0, 0, 0);
                add(&mut c);
                *slot = Some((s, c));
            }
        }
    }

    pub(super) fn flush_second(&mut self) {
        if let Some((cs, c)) = self.current.take() {
            let e = self.seconds.entry(cs).or_default();
            e.0 += c.0;
            e.1 += c.1;
            e.2 += c.2;
        }
    }

    pub(super) fn merge(&mut self, mut o: Agg, top: usize) {
        o.flush_second();
        self.flush_second();
        let t = &mut self.totals;
        t.judged += o.totals.judged;
        t.accepted_before += o.totals.accepted_before;
        t.accepted_after += o.totals.accepted_after;
        t.dropped_before += o.totals.dropped_before;
        t.dropped_after += o.totals.dropped_after;
        t.unknown_before += o.totals.unknown_before;
        t.unknown_after += o.totals.unknown_after;
        self.changed.accept_to_drop += o.changed.accept_to_drop;
        self.changed.drop_to_accept += o.changed.drop_to_accept;
        self.changed.to_unknown += o.changed.to_unknown;
        self.changed.from_unknown += o.changed.from_unknown;
        let c = &mut self.connections;
        c.total += o.connections.total;
        c.broken += o.connections.broken;
        c.surviving += o.connections.surviving;
        c.restored += o.connections.restored;
        c.unknown += o.connections.unknown;
        c.packets_broken += o.connections.packets_broken;
        c.bytes_broken += o.connections.bytes_broken;
        c.evicted += o.connections.evicted;
        for (mine, theirs) in self.hits.iter_mut().zip(&o.hits) {
            add_into(mine, theirs);
        }
        for (k, s) in o.services {
            let mine = self.services.entry(k).or_default();
            mine.broken += s.broken;
            mine.surviving += s.surviving;
            mine.restored += s.restored;
            mine.unknown += s.unknown;
            mine.packets += s.packets;
            mine.bytes += s.bytes;
            mine.packets_broken += s.packets_broken;
            mine.bytes_broken += s.bytes_broken;
            mine.first_ns = min_opt(mine.first_ns, s.first_ns);
            mine.last_ns = mine.last_ns.max(s.last_ns);
            mine.clients_capped |= s.clients_capped;
            for c in s.clients {
                mine.add_client(c);
            }
            if let Some((first_ns, header, before, after)) = s.example {
                mine.offer_example(first_ns, header, before, after);
            }
        }
        for t in o.top {
            push_top(&mut self.top, t, top);
        }
        let a = &mut self.agreement;
        a.records += o.agreement.records;
        a.agree += o.agreement.agree;
        a.logged_accept_model_drop += o.agreement.logged_accept_model_drop;
        a.logged_reject_model_accept += o.agreement.logged_reject_model_accept;
        for (why, n) in o.agreement.logged_reject_reasons {
            *a.logged_reject_reasons.entry(why).or_default() += n;
        }
        a.model_unknown += o.agreement.model_unknown;
        self.unmatched += o.unmatched;
        if self.enis.len() < o.enis.len() {
            self.enis.resize(o.enis.len(), false);
        }
        for (m, t) in self.enis.iter_mut().zip(&o.enis) {
            *m |= t;
        }
        if self.seconds.is_empty() {
            self.seconds = o.seconds;
        } else if o.seconds.len() >= self.seconds.len() / 16 {
            // Two timelines of similar spans: merged in one pass, in order.
            let mine = std::mem::take(&mut self.seconds).into_iter().peekable();
            self.seconds = merge_seconds(mine, o.seconds.into_iter().peekable());
        } else {
            for (s, (n, b, a)) in o.seconds {
                let e = self.seconds.entry(s).or_default();
                e.0 += n;
                e.1 += b;
                e.2 += a;
            }
        }
    }
}

type Second = (u64, (u64, u64, u64));

/// Two timelines in order, merged: each second's counts added.
fn merge_seconds(
    mut a: std::iter::Peekable<impl Iterator<Item = Second>>,
    mut b: std::iter::Peekable<impl Iterator<Item = Second>>,
) -> BTreeMap<u64, (u64, u64, u64)> {
    let mut out = Vec::new();
    loop {
        let next = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if x.0 == y.0 => {
                let (s, (n, p, q)) = a.next().unwrap_or_default();
                let (_, (m, r, t)) = b.next().unwrap_or_default();
                (s, (n + m, p + r, q + t))
            }
            (Some(x), Some(y)) if x.0 < y.0 => a.next().unwrap_or_default(),
            (Some(_), Some(_)) | (None, Some(_)) => b.next().unwrap_or_default(),
            (Some(_), None) => a.next().unwrap_or_default(),
            (None, None) => break,
        };
        out.push(next);
    }
    // In order: built in one pass.
    out.into_iter().collect()
}

fn add_into(a: &mut Vec<u64>, b: &[u64]) {
    if a.len() < b.len() {
        a.resize(b.len(), 0);
    }
    for (x, y) in a.iter_mut().zip(b) {
        *x += y;
    }
}

pub(super) fn push_top(heap: &mut BinaryHeap<Top>, t: Top, n: usize) {
    if n == 0 {
        return;
    }
    if heap.len() < n {
        heap.push(t);
    } else if heap.peek().is_some_and(|worst| t < *worst) {
        heap.pop();
        heap.push(t);
    }
}

pub(super) fn min_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

#[cfg(test)]
mod tests {
    /// Timelines merge the same one pass at a time or entry by entry.
    #[test]
    fn timelines_merge_in_one_pass_as_entry_by_entry() {
        let a: BTreeMap<u64, (u64, u64, u64)> =
            [(1, (1, 1, 0)), (3, (2, 0, 2)), (9, (1, 1, 1))].into();
        let b: BTreeMap<u64, (u64, u64, u64)> =
            [(0, (5, 5, 5)), (3, (1, 1, 1)), (10, (2, 2, 0))].into();
        let merged = merge_seconds(
            a.clone().into_iter().peekable(),
            b.clone().into_iter().peekable(),
        );
        let mut want = a.clone();
        for (s, (n, p, q)) in b {
            let e = want.entry(s).or_default();
            e.0 += n;
            e.1 += p;
            e.2 += q;
        }
        assert_eq!(merged, want);
        assert_eq!(merged[&3], (3, 1, 3));
    }

    use super::*;
    use crate::whatif::traffic::judge::{Act, Side, Why};

    fn step(rule: u32) -> Step {
        Step {
            act: Act::Accept,
            why: Why::Rule(rule),
            side: Side::Before,
        }
    }

    fn header(client: u32, port: u16) -> Header {
        let client = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + client));
        Header::new(client, "10.9.0.1".parse().unwrap(), 6, port, 5432).unwrap()
    }

    /// A service counted from its connections finished in any order, in one partition or
    /// spread over several and merged in any order, reads the same: its example is the
    /// earliest connection and, past the cap, its clients are the smallest addresses.
    #[test]
    fn a_service_reads_the_same_whatever_order_its_connections_finish_in() {
        // (first seen, client, client port, rule): two connections start at 5, and the
        // clients number more than the cap.
        let n = MAX_CLIENTS as u32 + 100;
        let conns: Vec<(u64, u32, u16, u32)> = (0..n)
            .map(|i| (u64::from(9 + i % 7), n - i, 40000 + (i % 3) as u16, i % 5))
            .chain([(5, 7, 41000, 98), (5, 7, 40999, 99)])
            .collect();
        let fill = |order: &mut dyn Iterator<Item = &(u64, u32, u16, u32)>| {
            let mut s = Service::default();
            for &(t, client, port, rule) in order {
                let h = header(client, port);
                s.add_client(h.src());
                s.offer_example(t, h, step(rule), step(rule + 1));
            }
            s
        };
        let read = |s: &Service| (s.example, s.clients.clone(), s.clients_capped);
        let forward = fill(&mut conns.iter());
        let backward = fill(&mut conns.iter().rev());
        assert_eq!(read(&forward), read(&backward));
        let (t, h, b, a) = forward.example.unwrap();
        assert_eq!((t, h, b, a), (5, header(7, 40999), step(99), step(100)));
        assert_eq!(forward.clients.len(), MAX_CLIENTS);
        assert!(forward.clients_capped);
        assert_eq!(
            forward.clients.last(),
            Some(&header(MAX_CLIENTS as u32, 0).src())
        );
        // Spread over three partitions, merged one way and the other.
        let parts: Vec<Service> = (0..3)
            .map(|p| fill(&mut conns.iter().skip(p).step_by(3)))
            .collect();
        let merge = |order: &[usize]| {
            let mut all = Agg::default();
            for &p in order {
                let mut one = Agg::default();
                one.services
                    .insert((0, Direction::Ingress, 6, 5432, false), parts[p].clone());
                all.merge(one, 0);
            }
            read(&all.services[&(0, Direction::Ingress, 6, 5432, false)])
        };
        assert_eq!(merge(&[0, 1, 2]), read(&forward));
        assert_eq!(merge(&[2, 1, 0]), read(&forward));
    }
}
