//! The compiled table and its lookups.

use rayon::prelude::*;
use std::net::IpAddr;
use std::sync::Arc;

use ip_network::{Ipv4Network, Ipv6Network};
use ip_network_table::IpNetworkTable;

use crate::classify::{size_output, By, Engine, Point, Verdict, DEFAULT_VERDICT};
use crate::index::boxes::Word;
use crate::index::tree::{Key, LANES, NONE};
use crate::model::{Direction, EniId, Header, RuleId, State};

use super::layout::{direction_index, Context, Index, Membership, Ranks, Unit, V4};
use super::{compile, CompileError, Config, IndexSummary};

/// The compiled, immutable rule table. Cheap to clone (shares everything).
#[derive(Clone)]
pub struct Table {
    /// Rule IDs by table index (compile-time order; revoked rules keep their slot).
    pub(super) rules: Arc<Vec<RuleId>>,
    /// Table rule indexes sorted by rule ID (a binary search finds a rule by ID).
    pub(super) by_id: Arc<Vec<u32>>,
    pub(super) enis: Arc<Vec<EniId>>,
    /// Per ENI: context index for ingress and egress.
    pub(super) points: Arc<Vec<[u32; 2]>>,
    pub(super) contexts: Arc<Vec<Context>>,
    /// Per (group, direction) with rules: its trees.
    pub(super) units: Vec<Arc<Unit>>,
    /// Ingress and egress ranks.
    pub(super) ranks: Arc<[Ranks; 2]>,
    pub(super) members: Arc<Membership>,
    /// Tombstones over table rule indexes.
    pub(super) dead: Arc<Vec<u64>>,
    pub(super) dead_count: usize,
    pub(super) by_addr: Arc<IpNetworkTable<u32>>,
    pub(super) warnings: Arc<Vec<String>>,
    pub(super) config: Config,
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("rules", &self.rules.len())
            .field("enis", &self.enis.len())
            .field("contexts", &self.contexts.len())
            .field("units", &self.units.len())
            .field("dead", &self.dead_count)
            .finish()
    }
}

impl Table {
    /// Compiles a state with the default configuration.
    pub fn new(state: &State) -> Result<Table, CompileError> {
        compile(state, &Config::default())
    }

    /// The membership class of an IPv4 address: addresses of one class are members of the
    /// same groups (0: of none), which is all that group peers and inner access look at.
    pub(crate) fn member_class_v4(&self, a: u32) -> u32 {
        self.members.class_v4(a)
    }

    /// The ENI that owns an address (private or public), by index.
    pub fn eni_of(&self, addr: IpAddr) -> Option<u32> {
        match crate::model::normalize_addr(addr) {
            IpAddr::V4(a) => self.by_addr.exact_match(Ipv4Network::from(a)).copied(),
            IpAddr::V6(a) => self.by_addr.exact_match(Ipv6Network::from(a)).copied(),
        }
    }

    /// For a verdict that [`Engine::classify`] finds unknown, every rule (by table index)
    /// whose unresolved peer makes it so, in evaluation order; else nothing.
    pub fn unresolved(&self, point: Point, h: &Header) -> Vec<u32> {
        let d = direction_index(point.direction);
        let context = &self.contexts[self.points[point.eni as usize][d] as usize];
        let ranks = &self.ranks[d];
        if context.doubts.is_empty() {
            return Vec::new();
        }
        let (best, class) = self.best_of(context, ranks, point.direction, h);
        match context
            .verdict(ranks, best, class, &self.members, self.tombstones(), h)
            .by
        {
            By::Unresolved(_) => context
                .in_play(best, self.tombstones(), h)
                .map(|d| d.index)
                .collect(),
            _ => Vec::new(),
        }
    }

    /// ENI IDs, by index.
    pub fn enis(&self) -> &[EniId] {
        &self.enis
    }

    /// Rule IDs, by table index.
    pub fn rules(&self) -> &[RuleId] {
        &self.rules
    }

    /// Things the compiler noticed (unresolvable references, shared addresses).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Number of distinct compiled contexts (group set and direction).
    pub fn context_count(&self) -> usize {
        self.contexts.len()
    }

    /// How the units index their IPv4 rules.
    pub fn index_summary(&self) -> IndexSummary {
        let tables = self
            .units
            .iter()
            .filter(|u| matches!(u.v4, V4::Tables(_)))
            .count();
        let split_tables = self
            .units
            .iter()
            .filter(|u| matches!(&u.v4, V4::Tables(t) if t.split()))
            .count();
        let block_trees = self
            .units
            .iter()
            .map(|u| {
                let v4 = match &u.v4 {
                    V4::Trees(f) => f.block_trees(),
                    V4::Tables(_) => 0,
                };
                v4 + u.v6.block_trees()
            })
            .sum();
        IndexSummary {
            units: self.units.len(),
            cross_product_tables: tables,
            split_tables,
            trees: self.units.len() - tables,
            block_trees,
        }
    }

    /// Number of tombstoned rules.
    pub fn dead_count(&self) -> usize {
        self.dead_count
    }

    /// Bytes held by the compiled structures (trees, ranks, contexts, the membership and
    /// rule-ID indexes), excluding the rule IDs themselves. The address trie is estimated
    /// at 64 bytes per address.
    pub fn memory_usage(&self) -> usize {
        use std::mem::size_of;
        let units: usize = self.units.iter().map(|u| u.memory_usage()).sum();
        let contexts: usize = self.contexts.iter().map(|c| c.memory_usage()).sum();
        let (v4, v6) = self.by_addr.len();
        units
            + self.units.capacity() * size_of::<Arc<Unit>>()
            + contexts
            + self.ranks.iter().map(|r| r.memory_usage()).sum::<usize>()
            + self.members.memory_usage()
            + self.points.capacity() * size_of::<[u32; 2]>()
            + self.dead.capacity() * size_of::<u64>()
            + self.by_id.capacity() * size_of::<u32>()
            + (v4 + v6) * 64
    }

    /// The tombstones, or `None` when no rule is tombstoned (the lookups skip the check).
    #[inline]
    fn tombstones(&self) -> Option<&[u64]> {
        (self.dead_count > 0).then_some(&self.dead[..])
    }

    /// The best rank among the context's units for one key of one family (`pick` chooses
    /// the family's forest of a unit), else `NONE`.
    #[inline]
    fn best<W: Word, I: Index<W>>(
        &self,
        context: &Context,
        ranks: &Ranks,
        pick: impl Fn(&Unit) -> &I,
        key: &Key<W>,
        class: u32,
    ) -> u32 {
        let mut best = NONE;
        let dead = self.tombstones();
        if dead.is_none() && ranks.conds.is_empty() {
            for &u in &context.units {
                best = pick(&self.units[u as usize]).lookup(key, best, &|_| true);
            }
        } else {
            let ok = |rank: u32| ranks.ok(rank, dead, class, &self.members);
            for &u in &context.units {
                best = pick(&self.units[u as usize]).lookup(key, best, &ok);
            }
        }
        best
    }

    /// The best rank among the context's units for `h` (`NONE`: no rule matched), and the
    /// remote address's membership class where the context needs it (else 0).
    #[inline]
    fn best_of(
        &self,
        context: &Context,
        ranks: &Ranks,
        direction: Direction,
        h: &Header,
    ) -> (u32, u32) {
        let needs_class = context.needs_class(ranks);
        match (h.remote(direction), h.local(direction)) {
            (IpAddr::V4(r), IpAddr::V4(l)) => {
                let (r, l) = (u32::from(r), u32::from(l));
                let class = if needs_class {
                    self.members.class_v4(r)
                } else {
                    0
                };
                let key = Key::new(r, l, h.src_port(), h.dst_port(), h.protocol());
                (self.best(context, ranks, |u| &u.v4, &key, class), class)
            }
            (IpAddr::V6(r), IpAddr::V6(l)) => {
                let (r, l) = (u128::from(r), u128::from(l));
                let class = if needs_class {
                    self.members.class_v6(r)
                } else {
                    0
                };
                let key = Key::new(r, l, h.src_port(), h.dst_port(), h.protocol());
                (self.best(context, ranks, |u| &u.v6, &key, class), class)
            }
            // Invariant: `Header::new` never builds a header of mixed families; a hand-made
            // one matches no rule (the defaults decide).
            _ => (NONE, 0),
        }
    }

    /// Judges up to [`LANES`] IPv4 packets of one point at once (see
    /// [`Forest::lookup_lanes`]); packets of another family take the one-at-a-time path.
    /// The first `hs.len()` verdicts returned are theirs, in order.
    #[inline]
    fn classify_lanes(&self, point: Point, hs: &[&Header]) -> [Verdict; LANES] {
        let direction = point.direction;
        let d = direction_index(direction);
        let context = &self.contexts[self.points[point.eni as usize][d] as usize];
        let ranks = &self.ranks[d];
        let mut keys = [Key::new(0u32, 0, 0, 0, 0); LANES];
        let mut n = 0;
        for h in hs {
            if let (IpAddr::V4(r), IpAddr::V4(l)) = (h.remote(direction), h.local(direction)) {
                keys[n] = Key::new(
                    u32::from(r),
                    u32::from(l),
                    h.src_port(),
                    h.dst_port(),
                    h.protocol(),
                );
                n += 1;
            }
        }
        let mut out = [DEFAULT_VERDICT; LANES];
        if n < hs.len() {
            for (o, h) in out.iter_mut().zip(hs) {
                *o = self.classify(point, h);
            }
            return out;
        }
        let mut classes = [0u32; LANES];
        if context.needs_class(ranks) {
            for (c, k) in classes.iter_mut().zip(&keys[..n]) {
                *c = self.members.class_v4(k.remote());
            }
        }
        let mut best = [NONE; LANES];
        let dead = self.tombstones();
        if dead.is_none() && ranks.conds.is_empty() {
            for &u in &context.units {
                self.units[u as usize]
                    .v4
                    .lookup_lanes(&keys, &mut best[..n], &|_, _| true);
            }
        } else {
            let ok = |i: usize, rank: u32| ranks.ok(rank, dead, classes[i], &self.members);
            for &u in &context.units {
                self.units[u as usize]
                    .v4
                    .lookup_lanes(&keys, &mut best[..n], &ok);
            }
        }
        for (((o, &b), &class), h) in out.iter_mut().zip(&best[..n]).zip(&classes).zip(hs) {
            *o = context.verdict(ranks, b, class, &self.members, dead, h);
        }
        out
    }

    /// Judges `queries` in order, handing the verdicts to `emit` a run at a time:
    /// [`LANES`] packets at once where consecutive packets share their point (see
    /// [`Forest::lookup_lanes`]), else one by one. The result equals one-at-a-time
    /// classification.
    fn judge(&self, queries: &[(Point, Header)], mut emit: impl FnMut(&[Verdict])) {
        let mut rest = queries;
        while let Some(&(point, _)) = rest.first() {
            let run = rest
                .iter()
                .take(LANES)
                .take_while(|(p, _)| *p == point)
                .count();
            let (lanes, tail) = rest.split_at(run);
            rest = tail;
            if run == 1 {
                emit(&[self.classify(point, &lanes[0].1)]);
                continue;
            }
            let mut hs = [&lanes[0].1; LANES];
            for (slot, (_, h)) in hs.iter_mut().zip(lanes) {
                *slot = h;
            }
            emit(&self.classify_lanes(point, &hs[..run])[..run]);
        }
    }
}

impl Engine for Table {
    #[inline]
    fn classify(&self, point: Point, h: &Header) -> Verdict {
        let d = direction_index(point.direction);
        let context = &self.contexts[self.points[point.eni as usize][d] as usize];
        let ranks = &self.ranks[d];
        let (best, class) = self.best_of(context, ranks, point.direction, h);
        context.verdict(ranks, best, class, &self.members, self.tombstones(), h)
    }

    /// Judges the batch in runs of up to 16 packets that share a point, walking the trees
    /// in lockstep.
    fn classify_batch(&self, queries: &[(Point, Header)], out: &mut Vec<Verdict>) {
        out.clear();
        out.reserve(queries.len());
        self.judge(queries, |v| out.extend_from_slice(v));
    }

    /// Judges a batch on the rayon pool in chunks, each judged as by `classify_batch` straight
    /// into its part of `out`.
    fn classify_par_into(&self, queries: &[(Point, Header)], out: &mut Vec<Verdict>) {
        const CHUNK: usize = 4096;
        size_output(out, queries.len());
        out.par_chunks_mut(CHUNK)
            .zip(queries.par_chunks(CHUNK))
            .for_each(|(out, qs)| {
                let mut at = 0;
                self.judge(qs, |v| {
                    out[at..at + v.len()].copy_from_slice(v);
                    at += v.len();
                });
            });
    }

    fn rule_id(&self, index: u32) -> &RuleId {
        &self.rules[index as usize]
    }
}
