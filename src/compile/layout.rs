//! Layout: units, contexts, membership and the address trie builder.

use std::collections::{BTreeMap, HashMap};

use std::net::IpAddr;
use std::sync::Arc;

use ip_network::{Ipv4Network, Ipv6Network};
use ip_network_table::IpNetworkTable;
use rustc_hash::FxHashMap;

use crate::classify::{Decision, Verdict};
use crate::index::boxes::{Filter, Word};
use crate::index::rfc::{build as rfc, Rfc};
use crate::index::tree::{build as tree, Forest, Key, NONE};
use crate::model::{Action, Direction, GroupId, Header, Rule, State};

use super::{Config, CROSS_MIN_BUDGET};

/// A rule's verdict in four bytes: bit 31 accept, the rest the rule's table index.
#[derive(Clone, Copy, Debug)]
pub(super) struct Target(u32);

impl Target {
    const ACCEPT: u32 = 1 << 31;

    /// Packs a rule's action and table index. Indexes are below 2^31: a table that large
    /// would not fit in memory in the first place.
    pub(super) fn new(action: Action, index: u32) -> Target {
        let accept = if action == Action::Accept {
            Target::ACCEPT
        } else {
            0
        };
        Target(accept | (index & !Target::ACCEPT))
    }

    /// The rule's table index.
    #[inline]
    pub(super) fn index(self) -> u32 {
        self.0 & !Target::ACCEPT
    }

    #[inline]
    fn action(self) -> Action {
        if self.0 & Target::ACCEPT != 0 {
            Action::Accept
        } else {
            Action::Drop
        }
    }

    #[inline]
    pub(super) fn verdict(self) -> Verdict {
        Verdict::rule(self.action(), self.index())
    }
}

/// No membership condition (in [`Ranks::conds`]).
pub(super) const ANY: u32 = u32::MAX;

/// What the ranks of one direction mean. A rank is a rule's position among all the table's
/// rules of that direction in evaluation order ([`rule_order`]), so the ranks of any group
/// set's rules compare as that set's evaluation order does, and one group's trees serve
/// every set that holds the group.
#[derive(Debug)]
pub(super) struct Ranks {
    /// Per rank: the rule's action and table index.
    pub(super) targets: Vec<Target>,
    /// Per rank: the group slot (see [`Membership`]) the remote address must belong to
    /// (the rule's peer is a group), else [`ANY`]. Empty when no rank has a condition.
    pub(super) conds: Vec<u32>,
}

impl Ranks {
    /// Whether the filters of `rank` match exactly their box: a group peer's box spans
    /// its members' addresses but matches only the members.
    #[inline]
    fn exact(&self, rank: u32) -> bool {
        self.conds.get(rank as usize).is_none_or(|&c| c == ANY)
    }

    /// Whether the rule of `rank` is tombstoned in `dead`.
    #[inline]
    fn dead(&self, rank: u32, dead: &[u64]) -> bool {
        let i = self.targets[rank as usize].index();
        dead[(i / 64) as usize] & (1 << (i % 64)) != 0
    }

    /// Whether a filter of `rank` whose box holds a packet matches it: its rule is live
    /// and, for a group peer, the packet's remote address (of membership class `class`) is
    /// a member.
    #[inline]
    pub(super) fn ok(
        &self,
        rank: u32,
        dead: Option<&[u64]>,
        class: u32,
        members: &Membership,
    ) -> bool {
        if dead.is_some_and(|d| self.dead(rank, d)) {
            return false;
        }
        match self.conds.get(rank as usize) {
            Some(&slot) if slot != ANY => members.has(class, slot),
            _ => true,
        }
    }

    pub(super) fn memory_usage(&self) -> usize {
        use std::mem::size_of;
        self.targets.capacity() * size_of::<Target>() + self.conds.capacity() * size_of::<u32>()
    }
}

/// The rules of one group in one direction, indexed by decision trees (ranks from the
/// direction's [`Ranks`]). Shared by every context whose group set holds the group.
#[derive(Debug)]
pub(super) struct Unit {
    /// The group, by state index.
    pub(super) group: u32,
    pub(super) direction: Direction,
    pub(super) v4: V4,
    pub(super) v6: Forest<u128>,
    /// Table rule indexes (sorted) whose removal needs a patch or rebuild of this unit
    /// (they pruned a region).
    pub(super) covers: Vec<u32>,
}

/// Whether a unit's IPv4 rules may go in cross-product tables.
pub(super) enum Tables {
    /// When there are enough of them and the tables fit (the unit is searched alone).
    Try,
    /// Never: trees (the unit is searched together with others, where a table walk per
    /// unit costs more than trees that skip what cannot win).
    Never,
    /// These tables, already built for the unit's filters (a rebuild after a revoke).
    Keep(Arc<Rfc>),
}

impl Unit {
    pub(super) fn new(
        group: u32,
        direction: Direction,
        filters: (Vec<Filter<u32>>, Vec<Filter<u128>>),
        ranks: &Ranks,
        config: &Config,
        tables: Tables,
    ) -> Unit {
        let exact = |rank: u32| ranks.exact(rank);
        let n = filters.0.len();
        let built = match tables {
            Tables::Keep(t) => Some(t),
            // No tables for no filters: their phase-0 tables alone take 768 KiB.
            Tables::Try if n > 0 && n >= config.cross_min_filters => {
                let budget = n
                    .saturating_mul(config.cross_bytes_per_filter)
                    .max(CROSS_MIN_BUDGET);
                rfc::build(&filters.0, budget, config.cross_product_tail).map(Arc::new)
            }
            _ => None,
        };
        let v4 = match built {
            Some(tables) => V4::Tables(tables),
            None => V4::Trees(tree::build_forest(filters.0, config.shape(), &exact)),
        };
        let v6 = tree::build_forest(filters.1, config.shape(), &exact);
        let covers = cover_rules(v4.cover_ranks().chain(v6.cover_ranks()), &ranks.targets);
        Unit {
            group,
            direction,
            v4,
            v6,
            covers,
        }
    }

    /// This unit with a patch tree for its revoked covers (see [`tree::patch`]), or `None`
    /// when a rebuild is cheaper.
    pub(super) fn patched(&self, dead: &[u64], ranks: &Ranks, config: &Config) -> Option<Unit> {
        let dead_rank = |rank: u32| ranks.dead(rank, dead);
        let exact = |rank: u32| ranks.exact(rank);
        let max = (self.v4.len() + self.v6.len()) / 4;
        let v4 = match &self.v4 {
            V4::Trees(f) => V4::Trees(tree::patch(f, dead_rank, &exact, config.shape(), max)?),
            V4::Tables(t) => V4::Tables(t.clone()),
        };
        let v6 = tree::patch(&self.v6, dead_rank, &exact, config.shape(), max)?;
        let covers = cover_rules(v4.cover_ranks().chain(v6.cover_ranks()), &ranks.targets);
        Some(Unit {
            group: self.group,
            direction: self.direction,
            v4,
            v6,
            covers,
        })
    }

    pub(super) fn memory_usage(&self) -> usize {
        use std::mem::size_of;
        size_of::<Unit>()
            + self.v4.memory_usage()
            + self.v6.memory_usage()
            + self.covers.capacity() * size_of::<u32>()
    }
}

/// A unit's IPv4 index: decision trees, or cross-product tables for large sets whose
/// tables fit the budget (see [`Config::cross_min_filters`]). Tables never prune, so
/// revoking any of their rules needs only its tombstone.
#[derive(Debug)]
pub(super) enum V4 {
    Trees(Forest<u32>),
    Tables(Arc<Rfc>),
}

impl V4 {
    fn len(&self) -> usize {
        match self {
            V4::Trees(f) => f.len(),
            V4::Tables(t) => t.filters(),
        }
    }

    /// Ranks of the filters that pruned a tree region (tables prune nothing).
    fn cover_ranks(&self) -> impl Iterator<Item = u32> + '_ {
        match self {
            V4::Trees(f) => Some(f.cover_ranks()),
            V4::Tables(_) => None,
        }
        .into_iter()
        .flatten()
    }

    pub(super) fn memory_usage(&self) -> usize {
        match self {
            V4::Trees(f) => f.memory_usage(),
            V4::Tables(t) => t.memory_usage(),
        }
    }

    #[inline]
    pub(super) fn lookup_lanes(
        &self,
        keys: &[Key<u32>],
        best: &mut [u32],
        ok: &impl Fn(usize, u32) -> bool,
    ) {
        match self {
            V4::Trees(f) => f.lookup_lanes(keys, best, ok),
            V4::Tables(t) => t.lookup_lanes(keys, best, ok),
        }
    }
}

/// A family's index of a unit, as a lookup sees it.
pub(super) trait Index<W> {
    /// The smallest rank below `best` among filters containing `key` and accepted by
    /// `ok`, else `best`.
    fn lookup(&self, key: &Key<W>, best: u32, ok: &impl Fn(u32) -> bool) -> u32;
}

impl<W: Word> Index<W> for Forest<W> {
    #[inline]
    fn lookup(&self, key: &Key<W>, best: u32, ok: &impl Fn(u32) -> bool) -> u32 {
        Forest::lookup(self, key, best, ok)
    }
}

impl Index<u32> for V4 {
    #[inline]
    fn lookup(&self, key: &Key<u32>, best: u32, ok: &impl Fn(u32) -> bool) -> u32 {
        match self {
            V4::Trees(f) => f.lookup(key, best, ok),
            V4::Tables(t) => t.lookup(key, best, ok),
        }
    }
}

/// One (group set, direction): the units to search, the inner-access grants, the rules
/// with unresolved peers and the default.
#[derive(Debug)]
pub(super) struct Context {
    /// Indexes into the table's units, one per group of the set with rules this way.
    pub(super) units: Vec<u32>,
    /// Alibaba inner access, both directions: a remote address that is a member of one of
    /// these groups is accepted before any rule is looked at; `(slot, state group index)`
    /// in attachment order.
    pub(super) inner: Vec<(u32, u32)>,
    /// Rules of the set in this direction whose peer is unresolved, in rank order. The
    /// units hold none of them (they match nothing there); a lookup reads each one that
    /// ranks before the verdict it found as matching too (see [`Doubt`]).
    pub(super) doubts: Vec<Doubt>,
    /// When nothing matches.
    pub(super) fallback: Action,
}

/// A rule whose peer the state cannot resolve: it may match any remote address, so where
/// its other fields hold a packet and it ranks before the verdict found, a different action
/// makes the verdict unknown.
#[derive(Debug)]
pub(super) struct Doubt {
    pub(super) rank: u32,
    /// The rule (its fields, action and table index).
    pub(super) rule: Rule,
    pub(super) index: u32,
    /// Its unresolved reference, numbered (rules naming one reference share it).
    pub(super) reference: u32,
}

impl Context {
    /// Whether judging needs the remote address's membership class.
    #[inline]
    pub(super) fn needs_class(&self, ranks: &Ranks) -> bool {
        !ranks.conds.is_empty() || !self.inner.is_empty()
    }

    /// Alibaba inner access: the verdict when the remote address (of membership class
    /// `class`) is a member of an inner-access group of the set.
    #[inline]
    fn inner_access(&self, class: u32, members: &Membership) -> Option<Verdict> {
        self.inner
            .iter()
            .find(|&&(slot, _)| members.has(class, slot))
            .map(|&(_, group)| Verdict::inner_access(group))
    }

    /// The verdict given the best rank found (`NONE`: no rule matched) for header `h`.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    pub(super) fn verdict(
        &self,
        ranks: &Ranks,
        best: u32,
        class: u32,
        members: &Membership,
        dead: Option<&[u64]>,
        h: &Header,
    ) -> Verdict {
        if let Some(v) = self.inner_access(class, members) {
            return v;
        }
        let verdict = self.resolved(ranks, best);
        if self.doubts.is_empty() {
            return verdict;
        }
        // Each unresolved reference read as matching: its first rule whose other fields
        // hold the packet, ranked before the resolved decision, decides (later rules naming
        // it are then never reached). Any such rule of another action makes it unknown.
        let mut seen: Vec<u32> = Vec::new();
        for d in self.in_play(best, dead, h) {
            if seen.contains(&d.reference) {
                continue;
            }
            if Decision::from(d.rule.action) != verdict.action {
                return Verdict::unresolved(d.index);
            }
            seen.push(d.reference);
        }
        verdict
    }

    /// The verdict when every unresolved rule matches nothing.
    #[inline]
    fn resolved(&self, ranks: &Ranks, best: u32) -> Verdict {
        if best != NONE {
            ranks.targets[best as usize].verdict()
        } else {
            Verdict::default_of(self.fallback)
        }
    }

    /// The live unresolved rules ranked before `best` that hold `h` but for their peer, in
    /// rank order: the rules the reading "unresolved references match everything" meets
    /// before the resolved decision.
    pub(super) fn in_play<'c>(
        &'c self,
        best: u32,
        dead: Option<&'c [u64]>,
        h: &'c Header,
    ) -> impl Iterator<Item = &'c Doubt> + 'c {
        self.doubts
            .iter()
            .take_while(move |d| d.rank < best)
            .filter(move |d| {
                dead.is_none_or(|dead| dead[(d.index / 64) as usize] & (1 << (d.index % 64)) == 0)
                    && d.rule.matches_fields(h)
            })
    }

    pub(super) fn memory_usage(&self) -> usize {
        use std::mem::size_of;
        size_of::<Context>()
            + self.units.capacity() * size_of::<u32>()
            + self.inner.capacity() * size_of::<(u32, u32)>()
            + self.doubts.capacity() * size_of::<Doubt>()
    }
}

/// Which groups each address belongs to (a group's members are the private addresses of
/// the ENIs attached to it), resolved once per packet: an address maps to a *class* (a
/// distinct set of groups), and a class lists its groups' *slots*. Slots number the groups
/// attached to some ENI, in group ID order; a revoke changes neither.
#[derive(Debug, Default)]
pub(super) struct Membership {
    pub(super) v4: FxHashMap<u32, u32>,
    pub(super) v6: FxHashMap<u128, u32>,
    /// Per class: where its slots start in `slots`; one more entry closes the last class.
    /// Class 0 (an address in no group) is empty.
    pub(super) starts: Vec<u32>,
    /// Each class's slots, ascending.
    pub(super) slots: Vec<u32>,
}

impl Membership {
    pub(super) fn new(state: &State, slots: &HashMap<&GroupId, u32>) -> Membership {
        let mut of: BTreeMap<IpAddr, Vec<u32>> = BTreeMap::new();
        for eni in &state.enis {
            for &ip in &eni.ips {
                let set = of.entry(ip).or_default();
                set.extend(eni.groups.iter().filter_map(|g| slots.get(g).copied()));
            }
        }
        let mut m = Membership {
            starts: vec![0, 0],
            ..Membership::default()
        };
        let mut classes: HashMap<Vec<u32>, u32> = HashMap::new();
        for (ip, mut set) in of {
            set.sort_unstable();
            set.dedup();
            if set.is_empty() {
                continue;
            }
            let next = classes.len() as u32 + 1;
            let class = *classes.entry(set).or_insert_with_key(|set| {
                m.slots.extend_from_slice(set);
                m.starts.push(m.slots.len() as u32);
                next
            });
            match ip {
                IpAddr::V4(a) => m.v4.insert(u32::from(a), class),
                IpAddr::V6(a) => m.v6.insert(u128::from(a), class),
            };
        }
        m.v4.shrink_to_fit();
        m.v6.shrink_to_fit();
        m.starts.shrink_to_fit();
        m.slots.shrink_to_fit();
        m
    }

    #[inline]
    pub(super) fn class_v4(&self, a: u32) -> u32 {
        self.v4.get(&a).copied().unwrap_or(0)
    }

    #[inline]
    pub(super) fn class_v6(&self, a: u128) -> u32 {
        self.v6.get(&a).copied().unwrap_or(0)
    }

    /// Whether class `class` holds group slot `slot`.
    #[inline]
    fn has(&self, class: u32, slot: u32) -> bool {
        let c = class as usize;
        self.slots[self.starts[c] as usize..self.starts[c + 1] as usize].contains(&slot)
    }

    pub(super) fn memory_usage(&self) -> usize {
        use std::mem::size_of;
        /// A hash map's table: its buckets (capacity is 7/8 of them, a power of two), one
        /// control byte each, and one group of trailing control bytes.
        fn table<K, V>(m: &FxHashMap<K, V>) -> usize {
            if m.capacity() == 0 {
                return 0;
            }
            let buckets = (m.capacity() * 8 / 7).next_power_of_two();
            buckets * (size_of::<(K, V)>() + 1) + 16
        }
        table(&self.v4)
            + table(&self.v6)
            + (self.starts.capacity() + self.slots.capacity()) * size_of::<u32>()
    }
}

pub(super) fn address_table(state: &State, warnings: &mut Vec<String>) -> IpNetworkTable<u32> {
    let mut table = IpNetworkTable::new();
    for (i, eni) in state.enis.iter().enumerate() {
        for &ip in eni.ips.iter().chain(&eni.public_ips) {
            let previous = match crate::model::normalize_addr(ip) {
                IpAddr::V4(a) => table.insert(Ipv4Network::from(a), i as u32),
                IpAddr::V6(a) => table.insert(Ipv6Network::from(a), i as u32),
            };
            if let Some(p) = previous.filter(|&p| p != i as u32) {
                warnings.push(format!(
                    "address {ip} belongs to both {} and {}; traffic to it is judged at {}",
                    state.enis[p as usize].id, eni.id, eni.id
                ));
            }
        }
    }
    table
}

pub(super) fn direction_index(direction: Direction) -> usize {
    match direction {
        Direction::Ingress => 0,
        Direction::Egress => 1,
    }
}

/// Table rule indexes (sorted) of the filters that pruned a region of some tree.
pub(super) fn cover_rules(ranks: impl Iterator<Item = u32>, targets: &[Target]) -> Vec<u32> {
    let mut covers: Vec<u32> = ranks.map(|rank| targets[rank as usize].index()).collect();
    covers.sort_unstable();
    covers.dedup();
    covers.shrink_to_fit();
    covers
}
