//! Model → immutable compiled [`Table`]: the rules of each group and direction lowered to
//! five-field boxes and indexed by decision trees (one forest per address family) or, for
//! the IPv4 rules of a large group, cross-product tables; ranked in evaluation order, with
//! group references resolved once per packet.
//!
//! # Layout
//!
//! - *Ranks*: per direction, every rule of the state in evaluation order
//!   ([`rule_order`]); a rule's rank is its position. Any group set's rules compare by
//!   rank exactly as that set's evaluation order says, so trees need not be built per set.
//! - *Units*: per (group, direction) with rules, the index of that group's rules (ranks
//!   as above). A unit is shared by every group set holding the group. IPv6 rules are in
//!   a forest. IPv4 rules are in cross-product tables (`index::rfc`) when the unit has
//!   at least [`Config::cross_min_filters`] of them, no ENI searches it with another
//!   unit of the same direction, and the tables fit [`Config::cross_bytes_per_filter`];
//!   else in a forest. Tables answer in a fixed number of loads (plus a short list walk
//!   where their last phase is split) but take more memory (1–10 KiB a rule on the
//!   1k–10k ClassBench sets where they fit) and, where several units are searched per
//!   packet, lose to trees that skip what cannot win.
//! - *Contexts*: per distinct (group set, direction) seen on an ENI, the units to search
//!   (a lookup takes the smallest rank found across them), the Alibaba inner-access grants
//!   and the default. ENIs with the same groups share a context.
//! - *Membership*: a group peer ("the private addresses of the ENIs in group G") is one box
//!   per family spanning G's member addresses, whose rank carries the condition "the remote
//!   address is a member of G". Each packet's remote address is looked up once in a hash
//!   map giving its membership class (its set of groups); a box that holds the packet
//!   matches only when its condition holds. Such boxes over-approximate what they match, so
//!   they never prune a tree region. Inner access is checked the same way when no rule
//!   matches. So neither costs a filter per member address.
//!
//! Addresses are mapped to ENIs through a prefix trie (`ip_network_table`). A table answers
//! revokes cheaply ([`Table::revise`]): removed rules are tombstoned (all a unit with
//! tables ever needs: tables list every filter a packet class holds); a unit where a removed
//! rule pruned a tree region gets a small *patch tree* holding the live filters it may have
//! pruned (`tree::patch` explains why that is exact), or is rebuilt when the patch would be
//! large; everything else is shared with the old table. Only when a quarter of the rules are
//! dead is the whole table rebuilt.
//!
//! The header-space diff and lint ([`crate::whatif::space`]) build their own exact header
//! sets from the model and share nothing with this module.
//!
//! # Memory
//!
//! Per rule a unit holds a 32-byte packed filter (IPv4, copied into each leaf that holds it
//! where cuts replicate little, else once with 4-byte leaf positions) and its share of tree
//! nodes; the ranks add 4 bytes (8 where some rule has a group peer), the rule-ID index 4;
//! a large tree that starts from address blocks adds its table of block roots (at most 16
//! bytes a rule and 256 KiB). Per address: the membership map (about 18 bytes) and the
//! address trie (estimated at 64). [`Table::memory_usage`] counts all of it (46–59 bytes a
//! rule on the 100k ClassBench sets). Cross-product tables instead take 768 KiB of phase-0
//! tables plus their phase tables and class lists (or the split tail's lists and bitsets),
//! at most `cross_bytes_per_filter` a rule (16 KiB by default); past 10k–20k rules their
//! build outgrows its bounds and trees serve.
//!
//! # Batches
//!
//! [`Engine::classify_batch`] on a [`Table`] judges runs of up to 16 packets that
//! share a point together, walking the trees in lockstep (see [`crate::classify`]'s tree
//! module); [`Engine::classify_par_into`] hands 4096-packet chunks of the batch path to rayon,
//! each writing straight into its part of a reused output.

pub mod live;

use std::collections::{BTreeMap, HashMap, HashSet};

use rayon::prelude::*;
use std::net::IpAddr;
use std::sync::Arc;

use ip_network::{Ipv4Network, Ipv6Network};
use ip_network_table::IpNetworkTable;
use rustc_hash::FxHashMap;

use crate::classify::{
    rule_order, size_output, By, Decision, Engine, Point, Semantics, SemanticsError, Verdict,
    DEFAULT_VERDICT,
};
use crate::index::boxes::{Bounds, Filter, Word, DIMS};
use crate::index::rfc::{build as rfc, Rfc};
use crate::index::tree::{build as tree, Forest, Key, LANES, NONE};
use crate::model::{
    Action, Cidr, Direction, EniId, Family, GroupId, Header, Peer, PortRange, Protocol, Rule,
    RuleId, State,
};

/// How to compile.
#[derive(Clone, Debug)]
pub struct Config {
    /// A tree region holding this many rules or fewer becomes a leaf, scanned linearly.
    pub leaf_size: usize,
    /// A tree of at least this many rules whose rules each lie in one or two blocks of an
    /// address field (addresses sharing their top bits) starts from a table of the blocks'
    /// subtrees (16 bytes a rule, 256 KiB at most) when they fall in enough distinct
    /// blocks (see `index::tree`).
    pub blocks_min_filters: usize,
    /// When more than this fraction of a table's rules are tombstoned, the next revise
    /// rebuilds everything.
    pub max_dead_fraction: f64,
    /// A group's IPv4 filters in one direction are indexed by cross-product tables
    /// (`index::rfc`) instead of trees when there are at least this many of them
    /// (`usize::MAX`: never) and the tables fit `cross_bytes_per_filter`.
    pub cross_min_filters: usize,
    /// Tables only for groups searched alone: no ENI has another group with rules in that
    /// direction. Where several groups are searched per packet, a table walk each costs
    /// more than trees that skip what cannot win (measured on the security-group shape).
    pub cross_alone_only: bool,
    /// Memory the cross-product tables of a unit may take, per filter (at least
    /// [`CROSS_MIN_BUDGET`] bytes in all); a unit whose tables would take more uses trees.
    pub cross_bytes_per_filter: usize,
    /// Whether cross-product tables may end in the final phase of the full product
    /// (fastest where it fits); else only the split tail (address lists intersected with
    /// service bitsets, see `index::rfc`) is tried, which is for comparisons.
    pub cross_product_tail: bool,
}

/// How a table's units (one per group and direction with rules) index their IPv4 rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct IndexSummary {
    /// Units.
    pub units: usize,
    /// Units whose IPv4 rules are in cross-product tables.
    pub cross_product_tables: usize,
    /// Of those, the tables whose last phase is split: address classes listing filters,
    /// service classes as bitsets, intersected at lookup (see `index::rfc`).
    pub split_tables: usize,
    /// Units whose IPv4 rules are in decision trees.
    pub trees: usize,
    /// Trees (IPv4 and IPv6, across units) that start from a table of address blocks.
    pub block_trees: usize,
}

/// The smallest budget cross-product tables get, whatever the number of filters: their
/// fixed phase-0 tables alone take 768 KiB.
pub const CROSS_MIN_BUDGET: usize = 1 << 20;

impl Default for Config {
    fn default() -> Config {
        Config {
            leaf_size: 8,
            blocks_min_filters: 1024,
            max_dead_fraction: 0.25,
            cross_min_filters: 512,
            cross_alone_only: true,
            cross_bytes_per_filter: 16 << 10,
            cross_product_tail: true,
        }
    }
}

impl Config {
    /// How trees are built.
    fn shape(&self) -> tree::Shape {
        tree::Shape {
            leaf_size: self.leaf_size,
            blocks_min_filters: self.blocks_min_filters,
        }
    }
}

/// Why a state could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CompileError {
    /// The state's semantics are inconsistent.
    #[error(transparent)]
    Semantics(#[from] SemanticsError),
    /// A revise names a rule the table does not hold.
    #[error("rule '{0}' is not in the compiled table")]
    UnknownRule(String),
}

impl From<crate::model::StateError> for CompileError {
    fn from(e: crate::model::StateError) -> CompileError {
        CompileError::Semantics(e.into())
    }
}

/// A rule's verdict in four bytes: bit 31 accept, the rest the rule's table index.
#[derive(Clone, Copy, Debug)]
struct Target(u32);

impl Target {
    const ACCEPT: u32 = 1 << 31;

    /// Packs a rule's action and table index. Indexes are below 2^31: a table that large
    /// would not fit in memory in the first place.
    fn new(action: Action, index: u32) -> Target {
        let accept = if action == Action::Accept {
            Target::ACCEPT
        } else {
            0
        };
        Target(accept | (index & !Target::ACCEPT))
    }

    /// The rule's table index.
    #[inline]
    fn index(self) -> u32 {
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
    fn verdict(self) -> Verdict {
        Verdict::rule(self.action(), self.index())
    }
}

/// No membership condition (in [`Ranks::conds`]).
const ANY: u32 = u32::MAX;

/// What the ranks of one direction mean. A rank is a rule's position among all the table's
/// rules of that direction in evaluation order ([`rule_order`]), so the ranks of any group
/// set's rules compare as that set's evaluation order does, and one group's trees serve
/// every set that holds the group.
#[derive(Debug)]
struct Ranks {
    /// Per rank: the rule's action and table index.
    targets: Vec<Target>,
    /// Per rank: the group slot (see [`Membership`]) the remote address must belong to
    /// (the rule's peer is a group), else [`ANY`]. Empty when no rank has a condition.
    conds: Vec<u32>,
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
    fn ok(&self, rank: u32, dead: Option<&[u64]>, class: u32, members: &Membership) -> bool {
        if dead.is_some_and(|d| self.dead(rank, d)) {
            return false;
        }
        match self.conds.get(rank as usize) {
            Some(&slot) if slot != ANY => members.has(class, slot),
            _ => true,
        }
    }

    fn memory_usage(&self) -> usize {
        use std::mem::size_of;
        self.targets.capacity() * size_of::<Target>() + self.conds.capacity() * size_of::<u32>()
    }
}

/// The rules of one group in one direction, indexed by decision trees (ranks from the
/// direction's [`Ranks`]). Shared by every context whose group set holds the group.
#[derive(Debug)]
struct Unit {
    /// The group, by state index.
    group: u32,
    direction: Direction,
    v4: V4,
    v6: Forest<u128>,
    /// Table rule indexes (sorted) whose removal needs a patch or rebuild of this unit
    /// (they pruned a region).
    covers: Vec<u32>,
}

/// Whether a unit's IPv4 rules may go in cross-product tables.
enum Tables {
    /// When there are enough of them and the tables fit (the unit is searched alone).
    Try,
    /// Never: trees (the unit is searched together with others, where a table walk per
    /// unit costs more than trees that skip what cannot win).
    Never,
    /// These tables, already built for the unit's filters (a rebuild after a revoke).
    Keep(Arc<Rfc>),
}

impl Unit {
    fn new(
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
    fn patched(&self, dead: &[u64], ranks: &Ranks, config: &Config) -> Option<Unit> {
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

    fn memory_usage(&self) -> usize {
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
enum V4 {
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

    fn memory_usage(&self) -> usize {
        match self {
            V4::Trees(f) => f.memory_usage(),
            V4::Tables(t) => t.memory_usage(),
        }
    }

    #[inline]
    fn lookup_lanes(&self, keys: &[Key<u32>], best: &mut [u32], ok: &impl Fn(usize, u32) -> bool) {
        match self {
            V4::Trees(f) => f.lookup_lanes(keys, best, ok),
            V4::Tables(t) => t.lookup_lanes(keys, best, ok),
        }
    }
}

/// A family's index of a unit, as a lookup sees it.
trait Index<W> {
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
struct Context {
    /// Indexes into the table's units, one per group of the set with rules this way.
    units: Vec<u32>,
    /// Alibaba inner access, both directions: a remote address that is a member of one of
    /// these groups is accepted before any rule is looked at; `(slot, state group index)`
    /// in attachment order.
    inner: Vec<(u32, u32)>,
    /// Rules of the set in this direction whose peer is unresolved, in rank order. The
    /// units hold none of them (they match nothing there); a lookup reads each one that
    /// ranks before the verdict it found as matching too (see [`Doubt`]).
    doubts: Vec<Doubt>,
    /// When nothing matches.
    fallback: Action,
}

/// A rule whose peer the state cannot resolve: it may match any remote address, so where
/// its other fields hold a packet and it ranks before the verdict found, a different action
/// makes the verdict unknown.
#[derive(Debug)]
struct Doubt {
    rank: u32,
    /// The rule (its fields, action and table index).
    rule: Rule,
    index: u32,
    /// Its unresolved reference, numbered (rules naming one reference share it).
    reference: u32,
}

impl Context {
    /// Whether judging needs the remote address's membership class.
    #[inline]
    fn needs_class(&self, ranks: &Ranks) -> bool {
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
    fn verdict(
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
    fn in_play<'c>(
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

    fn memory_usage(&self) -> usize {
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
struct Membership {
    v4: FxHashMap<u32, u32>,
    v6: FxHashMap<u128, u32>,
    /// Per class: where its slots start in `slots`; one more entry closes the last class.
    /// Class 0 (an address in no group) is empty.
    starts: Vec<u32>,
    /// Each class's slots, ascending.
    slots: Vec<u32>,
}

impl Membership {
    fn new(state: &State, slots: &HashMap<&GroupId, u32>) -> Membership {
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
    fn class_v4(&self, a: u32) -> u32 {
        self.v4.get(&a).copied().unwrap_or(0)
    }

    #[inline]
    fn class_v6(&self, a: u128) -> u32 {
        self.v6.get(&a).copied().unwrap_or(0)
    }

    /// Whether class `class` holds group slot `slot`.
    #[inline]
    fn has(&self, class: u32, slot: u32) -> bool {
        let c = class as usize;
        self.slots[self.starts[c] as usize..self.starts[c + 1] as usize].contains(&slot)
    }

    fn memory_usage(&self) -> usize {
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

/// The compiled, immutable rule table. Cheap to clone (shares everything).
#[derive(Clone)]
pub struct Table {
    /// Rule IDs by table index (compile-time order; revoked rules keep their slot).
    rules: Arc<Vec<RuleId>>,
    /// Table rule indexes sorted by rule ID (a binary search finds a rule by ID).
    by_id: Arc<Vec<u32>>,
    enis: Arc<Vec<EniId>>,
    /// Per ENI: context index for ingress and egress.
    points: Arc<Vec<[u32; 2]>>,
    contexts: Arc<Vec<Context>>,
    /// Per (group, direction) with rules: its trees.
    units: Vec<Arc<Unit>>,
    /// Ingress and egress ranks.
    ranks: Arc<[Ranks; 2]>,
    members: Arc<Membership>,
    /// Tombstones over table rule indexes.
    dead: Arc<Vec<u64>>,
    dead_count: usize,
    by_addr: Arc<IpNetworkTable<u32>>,
    warnings: Arc<Vec<String>>,
    config: Config,
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

/// Everything compile needs to resolve references, computed once per state.
struct Resolver<'a> {
    state: &'a State,
    members: HashMap<&'a GroupId, Vec<IpAddr>>,
    group_index: HashMap<&'a GroupId, u32>,
    /// Per (direction, group): state rule indexes.
    by_group: HashMap<(Direction, &'a GroupId), Vec<u32>>,
    /// Membership slot of every group attached to some ENI (see [`Membership`]).
    slots: HashMap<&'a GroupId, u32>,
    warnings: Vec<String>,
}

/// The smallest and largest address of each family in a list.
fn hull(ips: &[IpAddr]) -> [Option<(u128, u128)>; 2] {
    let mut out = [None; 2];
    for ip in ips {
        let (f, v) = match ip {
            IpAddr::V4(a) => (0, u128::from(u32::from(*a))),
            IpAddr::V6(a) => (1, u128::from(*a)),
        };
        let h: &mut Option<(u128, u128)> = &mut out[f];
        *h = Some(h.map_or((v, v), |(lo, hi)| (lo.min(v), hi.max(v))));
    }
    out
}

impl<'a> Resolver<'a> {
    fn new(state: &'a State) -> Resolver<'a> {
        let mut by_group: HashMap<(Direction, &GroupId), Vec<u32>> = HashMap::new();
        for (i, r) in state.rules.iter().enumerate() {
            by_group
                .entry((r.direction, &r.group))
                .or_default()
                .push(i as u32);
        }
        let members = state.members();
        let mut attached: Vec<&GroupId> = members.keys().copied().collect();
        attached.sort_unstable();
        Resolver {
            state,
            slots: attached
                .into_iter()
                .enumerate()
                .map(|(i, g)| (g, i as u32))
                .collect(),
            members,
            group_index: state
                .groups
                .iter()
                .enumerate()
                .map(|(i, g)| (&g.id, i as u32))
                .collect(),
            by_group,
            warnings: Vec::new(),
        }
    }

    fn warn_missing_group(&mut self, rule: &RuleId, group_id: &GroupId) {
        let described = self.group_index.contains_key(group_id);
        let members = self.members.get(group_id).map_or(0, |m| m.len());
        if !described && members == 0 {
            self.warnings.push(format!(
                "rule {rule}: group {group_id} is unresolved (no export describes it and no ENI \
                 carries it); where the rule would decide, verdicts are unknown"
            ));
        } else if members == 0 {
            self.warnings.push(format!(
                "rule {rule}: group {group_id} has no member (no ENI of the state carries it); \
                 the rule matches nothing"
            ));
        }
    }

    /// The prefixes a peer stands for (a group: one host block per member address).
    fn resolve(&mut self, rule: &RuleId, peer: &Peer) -> Vec<Cidr> {
        match peer {
            Peer::Cidr { cidr } => vec![*cidr],
            Peer::Group { group_id, .. } => {
                self.warn_missing_group(rule, group_id);
                self.members
                    .get(group_id)
                    .map(|ips| ips.iter().map(|&ip| Cidr::host(ip)).collect())
                    .unwrap_or_default()
            }
            Peer::PrefixList { prefix_list_id } => match self.state.prefix_list(prefix_list_id) {
                Some(pl) if pl.entries.is_empty() => {
                    self.warnings.push(format!(
                        "rule {rule}: prefix list {prefix_list_id} has no entries in the state \
                         (export get-managed-prefix-list-entries / DescribePrefixListAttributes); \
                         where the rule would decide, verdicts are unknown"
                    ));
                    Vec::new()
                }
                Some(pl) => pl.entries.clone(),
                None => {
                    self.warnings.push(format!(
                        "rule {rule}: prefix list {prefix_list_id} is unresolved (not in the \
                         state); where the rule would decide, verdicts are unknown"
                    ));
                    Vec::new()
                }
            },
        }
    }

    /// The membership condition of a rule (see [`Ranks::conds`]).
    fn cond(&self, rule: &Rule) -> u32 {
        match &rule.remote {
            Peer::Group { group_id, .. } => self.slots.get(group_id).copied().unwrap_or(ANY),
            _ => ANY,
        }
    }

    /// The filters of the rules of group `group` in `direction`, as the trees index them:
    /// `rank(r)` gives state rule `r`'s rank. A group peer becomes one filter per family
    /// its members have, whose remote range spans the members and whose rank carries the
    /// membership condition (see [`Ranks::conds`]).
    fn unit_filters(
        &mut self,
        group: u32,
        direction: Direction,
        rank: &dyn Fn(u32) -> u32,
    ) -> (Vec<Filter<u32>>, Vec<Filter<u128>>) {
        let state = self.state;
        let mut rules: Vec<(u32, u32)> = self
            .by_group
            .get(&(direction, &state.groups[group as usize].id))
            .into_iter()
            .flatten()
            .map(|&r| (rank(r), r))
            .collect();
        rules.sort_unstable();
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for (rank, r) in rules {
            let rule = &state.rules[r as usize];
            let remotes: Vec<(Family, (u128, u128))> = match &rule.remote {
                Peer::Group { group_id, .. } => {
                    self.warn_missing_group(&rule.id, group_id);
                    let [h4, h6] = hull(self.members.get(group_id).map_or(&[], |m| &m[..]));
                    let h4 = h4.map(|h| (Family::V4, h));
                    let h6 = h6.map(|h| (Family::V6, h));
                    h4.into_iter().chain(h6).collect()
                }
                peer => self
                    .resolve(&rule.id, peer)
                    .into_iter()
                    .map(|c| (c.family(), c.range()))
                    .collect(),
            };
            for (family, remote) in remotes {
                push_rule(&mut v4, &mut v6, rank, family, remote, rule);
            }
        }
        (v4, v6)
    }
}

/// Table rule indexes (sorted) of the filters that pruned a region of some tree.
fn cover_rules(ranks: impl Iterator<Item = u32>, targets: &[Target]) -> Vec<u32> {
    let mut covers: Vec<u32> = ranks.map(|rank| targets[rank as usize].index()).collect();
    covers.sort_unstable();
    covers.dedup();
    covers.shrink_to_fit();
    covers
}

/// Pushes the filter of `rule` with remote range `remote` of `family` (nothing when the
/// rule's local prefix is of the other family); says whether it pushed.
fn push_rule(
    v4: &mut Vec<Filter<u32>>,
    v6: &mut Vec<Filter<u128>>,
    rank: u32,
    family: Family,
    remote: (u128, u128),
    rule: &Rule,
) -> bool {
    let local = match rule.local {
        Some(l) if l.family() == family => l,
        Some(_) => return false,
        None if family == Family::V4 => Cidr::ANY_V4,
        None => Cidr::ANY_V6,
    };
    let proto = match rule.protocol {
        Protocol::Any => (0, 255),
        Protocol::Number(n) => (n, n),
    };
    push_filter(
        v4,
        v6,
        rank,
        family,
        remote,
        local,
        rule.src_ports,
        rule.dst_ports,
        proto,
    );
    true
}

#[allow(clippy::too_many_arguments)]
fn push_filter(
    v4: &mut Vec<Filter<u32>>,
    v6: &mut Vec<Filter<u128>>,
    rank: u32,
    family: Family,
    remote: (u128, u128),
    local: Cidr,
    sport: PortRange,
    dport: PortRange,
    proto: (u8, u8),
) {
    fn bounds<W: Word>(
        remote: (u128, u128),
        local: Cidr,
        sport: PortRange,
        dport: PortRange,
        proto: (u8, u8),
    ) -> Bounds<W> {
        let (rl, rh) = remote;
        let (ll, lh) = local.range();
        let lo: [W; DIMS] = [
            W::from_u128(rl),
            W::from_u128(ll),
            W::from_u16(sport.lo()),
            W::from_u16(dport.lo()),
            W::from_u16(proto.0.into()),
        ];
        let hi: [W; DIMS] = [
            W::from_u128(rh),
            W::from_u128(lh),
            W::from_u16(sport.hi()),
            W::from_u16(dport.hi()),
            W::from_u16(proto.1.into()),
        ];
        Bounds { lo, hi }
    }
    match family {
        Family::V4 => v4.push(Filter {
            bounds: bounds(remote, local, sport, dport, proto),
            rank,
        }),
        Family::V6 => v6.push(Filter {
            bounds: bounds(remote, local, sport, dport, proto),
            rank,
        }),
    }
}

/// Distinct (group set) per ENI, as state group indexes in attachment order.
fn group_sets(state: &State, group_index: &HashMap<&GroupId, u32>) -> Vec<Vec<u32>> {
    state
        .enis
        .iter()
        .map(|eni| {
            let mut seen = HashSet::new();
            eni.groups
                .iter()
                .filter_map(|g| group_index.get(g).copied())
                .filter(|g| seen.insert(*g))
                .collect()
        })
        .collect()
}

fn address_table(state: &State, warnings: &mut Vec<String>) -> IpNetworkTable<u32> {
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

fn direction_index(direction: Direction) -> usize {
    match direction {
        Direction::Ingress => 0,
        Direction::Egress => 1,
    }
}

/// Compiles a state.
pub fn compile(state: &State, config: &Config) -> Result<Table, CompileError> {
    state.validate()?;
    let mut resolver = Resolver::new(state);
    let sets = group_sets(state, &resolver.group_index);
    let unresolved = state.unresolved_rules();
    let mut references: HashMap<String, u32> = HashMap::new();

    // Ranks: per direction, every rule of that direction in evaluation order.
    let mut rank_of = vec![0u32; state.rules.len()];
    let ranks: [Ranks; 2] = Direction::BOTH.map(|direction| {
        let mut order: Vec<u32> = (0..state.rules.len() as u32)
            .filter(|&r| state.rules[r as usize].direction == direction)
            .collect();
        order.sort_by_key(|&r| rule_order(state, r as usize));
        for (k, &r) in order.iter().enumerate() {
            rank_of[r as usize] = k as u32;
        }
        let targets = order
            .iter()
            .map(|&r| Target::new(state.rules[r as usize].action, r))
            .collect();
        let mut conds: Vec<u32> = order
            .iter()
            .map(|&r| resolver.cond(&state.rules[r as usize]))
            .collect();
        if conds.iter().all(|&c| c == ANY) {
            conds = Vec::new();
        }
        Ranks { targets, conds }
    });

    // Units are built once every context is known: whether a unit is searched alone
    // decides whether it may use cross-product tables.
    type Pending = (u32, Direction, (Vec<Filter<u32>>, Vec<Filter<u128>>));
    let mut pending: Vec<Pending> = Vec::new();
    let mut unit_of: HashMap<(u32, Direction), Option<u32>> = HashMap::new();
    let mut memo: HashMap<(Direction, &[u32]), u32> = HashMap::new();
    let mut contexts = Vec::new();
    let mut points = Vec::with_capacity(state.enis.len());
    for (e, set) in sets.iter().enumerate() {
        let semantics = Semantics::of(state, e)?;
        let mut point = [0u32; 2];
        for (d, direction) in Direction::BOTH.into_iter().enumerate() {
            if let Some(&c) = memo.get(&(direction, &set[..])) {
                point[d] = c;
                continue;
            }
            let mut context_units = Vec::new();
            for &g in set {
                let unit = *unit_of.entry((g, direction)).or_insert_with(|| {
                    let has_rules = resolver
                        .by_group
                        .contains_key(&(direction, &state.groups[g as usize].id));
                    has_rules.then(|| {
                        let filters = resolver.unit_filters(g, direction, &|r| rank_of[r as usize]);
                        pending.push((g, direction, filters));
                        (pending.len() - 1) as u32
                    })
                });
                context_units.extend(unit);
            }
            let inner = semantics
                .inner_access
                .iter()
                .filter_map(|&g| {
                    let slot = resolver.slots.get(&state.groups[g as usize].id)?;
                    Some((*slot, g))
                })
                .collect();
            let mut doubts: Vec<Doubt> = set
                .iter()
                .flat_map(|&g| {
                    resolver
                        .by_group
                        .get(&(direction, &state.groups[g as usize].id))
                        .into_iter()
                        .flatten()
                })
                .filter(|&&r| unresolved[r as usize])
                .map(|&r| {
                    let name = State::reference_name(&state.rules[r as usize].remote);
                    let next = references.len() as u32;
                    Doubt {
                        rank: rank_of[r as usize],
                        rule: state.rules[r as usize].clone(),
                        index: r,
                        reference: *references.entry(name).or_insert(next),
                    }
                })
                .collect();
            doubts.sort_by_key(|d| d.rank);
            contexts.push(Context {
                units: context_units,
                inner,
                doubts,
                fallback: semantics.fallback(direction),
            });
            point[d] = (contexts.len() - 1) as u32;
            memo.insert((direction, set), point[d]);
        }
        points.push(point);
    }
    let mut alone = vec![true; pending.len()];
    for c in contexts.iter().filter(|c| c.units.len() > 1) {
        for &u in &c.units {
            alone[u as usize] = false;
        }
    }
    let units: Vec<Arc<Unit>> = pending
        .into_par_iter()
        .zip(alone)
        .map(|((g, direction, filters), alone)| {
            let tables = if alone || !config.cross_alone_only {
                Tables::Try
            } else {
                Tables::Never
            };
            let ranks = &ranks[direction_index(direction)];
            Arc::new(Unit::new(g, direction, filters, ranks, config, tables))
        })
        .collect();
    let members = Membership::new(state, &resolver.slots);
    let mut warnings = std::mem::take(&mut resolver.warnings);
    warnings.sort();
    warnings.dedup();
    let by_addr = address_table(state, &mut warnings);
    let rules: Vec<RuleId> = state.rules.iter().map(|r| r.id.clone()).collect();
    let mut by_id: Vec<u32> = (0..rules.len() as u32).collect();
    by_id.sort_unstable_by(|&a, &b| rules[a as usize].cmp(&rules[b as usize]));
    Ok(Table {
        dead: Arc::new(vec![0; rules.len().div_ceil(64).max(1)]),
        rules: Arc::new(rules),
        by_id: Arc::new(by_id),
        enis: Arc::new(state.enis.iter().map(|e| e.id.clone()).collect()),
        points: Arc::new(points),
        contexts: Arc::new(contexts),
        units,
        ranks: Arc::new(ranks),
        members: Arc::new(members),
        dead_count: 0,
        by_addr: Arc::new(by_addr),
        warnings: Arc::new(warnings),
        config: config.clone(),
    })
}

impl Table {
    /// Compiles a state with the default configuration.
    pub fn new(state: &State) -> Result<Table, CompileError> {
        compile(state, &Config::default())
    }

    /// The table for `state`, which must be this table's state with the rules `removed`
    /// taken out (a revoke). The removed rules are tombstoned; a group's trees where a
    /// removed rule pruned a region get a patch tree, or are rebuilt when the patch would
    /// be large; everything else is shared. Falls back to a full compile when too much is
    /// dead.
    pub fn revise(&self, state: &State, removed: &[RuleId]) -> Result<Table, CompileError> {
        let mut gone = Vec::with_capacity(removed.len());
        for id in removed {
            let i = self
                .index_of(id)
                .ok_or_else(|| CompileError::UnknownRule(id.to_string()))?;
            gone.push(i);
        }
        let dead_count = self.dead_count + gone.len();
        if dead_count as f64 > self.config.max_dead_fraction * self.rules.len() as f64 {
            return compile(state, &self.config);
        }
        let mut dead = (*self.dead).clone();
        for &i in &gone {
            dead[(i / 64) as usize] |= 1 << (i % 64);
        }
        let mut units = self.units.clone();
        // A unit whose removed rules pruned tree regions first tries a patch tree over what
        // they may have pruned (cheap: one scan of its filters and a small build).
        let mut needs_rebuild = Vec::new();
        for (u, unit) in self.units.iter().enumerate() {
            if !gone.iter().any(|i| unit.covers.binary_search(i).is_ok()) {
                continue;
            }
            let ranks = &self.ranks[direction_index(unit.direction)];
            match unit.patched(&dead, ranks, &self.config) {
                Some(p) => units[u] = Arc::new(p),
                None => needs_rebuild.push(u),
            }
        }
        if !needs_rebuild.is_empty() {
            let mut resolver = Resolver::new(state);
            // Ranks stay those of this table: per table rule index, its rank.
            let mut rank_of = vec![u32::MAX; self.rules.len()];
            for ranks in self.ranks.iter() {
                for (k, t) in ranks.targets.iter().enumerate() {
                    rank_of[t.index() as usize] = k as u32;
                }
            }
            // Invariant: `state` is this table's state minus some rules, so every rule it
            // holds has a table index (and its groups keep their state indexes).
            let rank = |r: u32| {
                self.index_of(&state.rules[r as usize].id)
                    .map_or(u32::MAX, |i| rank_of[i as usize])
            };
            for u in needs_rebuild {
                let (group, direction) = (self.units[u].group, self.units[u].direction);
                let filters = resolver.unit_filters(group, direction, &rank);
                let ranks = &self.ranks[direction_index(direction)];
                // Tables never need a rebuild (they prune nothing): keep them.
                let tables = match &self.units[u].v4 {
                    V4::Tables(t) => Tables::Keep(t.clone()),
                    V4::Trees(_) => Tables::Never,
                };
                let unit = Unit::new(group, direction, filters, ranks, &self.config, tables);
                units[u] = Arc::new(unit);
            }
        }
        Ok(Table {
            dead: Arc::new(dead),
            dead_count,
            units,
            ..self.clone()
        })
    }

    /// The table index of a rule, by ID.
    fn index_of(&self, id: &RuleId) -> Option<u32> {
        self.by_id
            .binary_search_by(|&i| self.rules[i as usize].cmp(id))
            .ok()
            .map(|p| self.by_id[p])
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
                let key = Key::new(r, l, h.src_port, h.dst_port, h.protocol);
                (self.best(context, ranks, |u| &u.v4, &key, class), class)
            }
            (IpAddr::V6(r), IpAddr::V6(l)) => {
                let (r, l) = (u128::from(r), u128::from(l));
                let class = if needs_class {
                    self.members.class_v6(r)
                } else {
                    0
                };
                let key = Key::new(r, l, h.src_port, h.dst_port, h.protocol);
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
                    h.src_port,
                    h.dst_port,
                    h.protocol,
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
