//! Model → immutable compiled [`Table`]: per ENI and direction, the rules in evaluation
//! order, group and prefix-list references resolved to prefixes, lowered to five-field
//! boxes and indexed by decision trees (one per address family).
//!
//! ENIs whose attached groups are the same share one compiled context. Addresses are mapped
//! to ENIs through a prefix trie (`ip_network_table`). A table answers revokes cheaply
//! ([`Table::revise`]): contexts untouched by the revoke are shared with the old table; a
//! removed rule that never pruned a tree region is only tombstoned; a removed rule that did
//! prune is tombstoned too, and its context gets a small *patch tree* holding the live
//! filters it may have pruned (`tree::patch` explains why that is exact). Only when a patch
//! would be large is the context rebuilt, and only when a quarter of the rules are dead is
//! the whole table.
//!
//! # Memory
//!
//! Per rule a context holds a 32-byte packed filter (IPv4), a 4-byte target, its share of
//! tree nodes and leaf runs; the table adds a 4-byte sorted index for finding rules by ID.
//! [`Table::memory_usage`] counts all of it (about 48–56 bytes a rule on the 100k ClassBench
//! sets).
//!
//! # Batches
//!
//! [`Engine::classify_batch`] on a [`Table`] judges runs of up to [`LANES`] packets that
//! share a point together, walking the trees in lockstep (see [`crate::classify`]'s tree
//! module); [`Engine::classify_par`] hands 4096-packet chunks of the batch path to rayon.

pub(crate) mod tree;

use std::collections::{HashMap, HashSet};

use rayon::prelude::*;
use std::net::IpAddr;
use std::sync::Arc;

use ip_network::{Ipv4Network, Ipv6Network};
use ip_network_table::IpNetworkTable;

use crate::classify::tree::{Bounds, Filter, Forest, Key, Word, DIMS, LANES, NONE};
use crate::classify::{rule_order, By, Engine, Point, Semantics, SemanticsError, Verdict};
use crate::model::{
    Action, Cidr, Direction, EniId, Family, GroupId, Header, Peer, PortRange, Protocol, RuleId,
    State,
};

/// How to compile.
#[derive(Clone, Debug)]
pub struct Config {
    /// A tree region holding this many rules or fewer becomes a leaf, scanned linearly.
    pub leaf_size: usize,
    /// When more than this fraction of a table's rules are tombstoned, the next revise
    /// rebuilds everything.
    pub max_dead_fraction: f64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            leaf_size: 8,
            max_dead_fraction: 0.25,
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

/// A [`Verdict`] of a matching filter in four bytes: bit 31 accept, bit 30 inner access
/// (else a rule), the rest the rule's table index or the group's state index.
#[derive(Clone, Copy, Debug)]
struct Target(u32);

impl Target {
    const ACCEPT: u32 = 1 << 31;
    const INNER: u32 = 1 << 30;

    /// Packs a verdict. Indexes are below 2^30: a table or state that large would not fit
    /// in memory in the first place.
    fn new(v: Verdict) -> Target {
        let action = if v.action == Action::Accept {
            Target::ACCEPT
        } else {
            0
        };
        let by = match v.by {
            By::Rule(i) => i & !(Target::ACCEPT | Target::INNER),
            By::InnerAccess(g) => Target::INNER | (g & !(Target::ACCEPT | Target::INNER)),
            // Invariant: a filter's target is a rule or an inner-access grant, never the
            // default; map it to rule 0 defensively (unreachable).
            By::Default => 0,
        };
        Target(action | by)
    }

    #[inline]
    fn verdict(self) -> Verdict {
        let index = self.0 & !(Target::ACCEPT | Target::INNER);
        Verdict {
            action: if self.0 & Target::ACCEPT != 0 {
                Action::Accept
            } else {
                Action::Drop
            },
            by: if self.0 & Target::INNER != 0 {
                By::InnerAccess(index)
            } else {
                By::Rule(index)
            },
        }
    }
}

/// One compiled (group set, direction): the trees and what their ranks mean.
#[derive(Debug)]
struct Context {
    v4: Forest<u32>,
    v6: Forest<u128>,
    /// Per rank: the verdict a match gives.
    targets: Vec<Target>,
    /// When nothing matches.
    fallback: Action,
    /// Table rule indexes (sorted) whose removal needs a rebuild of this context (they
    /// pruned a region).
    covers: Vec<u32>,
}

impl Context {
    /// Whether the filter of rank `rank` is live: inner-access filters always are, a rule's
    /// filter unless the rule is tombstoned in `dead` (`None`: nothing is).
    #[inline]
    fn alive<'a>(&'a self, dead: Option<&'a [u64]>) -> impl Fn(u32) -> bool + 'a {
        let dead = dead.unwrap_or(&[]);
        move |rank: u32| {
            dead.is_empty()
                || match self.targets[rank as usize].verdict().by {
                    By::Rule(i) => dead[(i / 64) as usize] & (1 << (i % 64)) == 0,
                    _ => true,
                }
        }
    }

    #[inline]
    fn verdict(&self, rank: Option<u32>) -> Verdict {
        match rank {
            Some(r) => self.targets[r as usize].verdict(),
            None => Verdict {
                action: self.fallback,
                by: By::Default,
            },
        }
    }

    #[inline]
    fn classify(&self, direction: Direction, h: &Header, dead: Option<&[u64]>) -> Verdict {
        let alive = self.alive(dead);
        let rank = match (h.remote(direction), h.local(direction)) {
            (IpAddr::V4(r), IpAddr::V4(l)) => self.v4.lookup(
                &Key::new(
                    u32::from(r),
                    u32::from(l),
                    h.src_port,
                    h.dst_port,
                    h.protocol,
                ),
                alive,
            ),
            (IpAddr::V6(r), IpAddr::V6(l)) => self.v6.lookup(
                &Key::new(
                    u128::from(r),
                    u128::from(l),
                    h.src_port,
                    h.dst_port,
                    h.protocol,
                ),
                alive,
            ),
            // Invariant: `Header::new` never builds a header of mixed families; a hand-made
            // one matches nothing.
            _ => None,
        };
        self.verdict(rank)
    }

    /// Judges up to [`LANES`] IPv4 packets at once (see [`Forest::lookup_lanes`]); packets
    /// of another family take the one-at-a-time path.
    #[inline]
    fn classify_lanes(
        &self,
        direction: Direction,
        hs: &[&Header],
        dead: Option<&[u64]>,
        out: &mut Vec<Verdict>,
    ) {
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
        if n < hs.len() {
            out.extend(hs.iter().map(|h| self.classify(direction, h, dead)));
            return;
        }
        let mut best = [NONE; LANES];
        self.v4
            .lookup_lanes(&keys[..n], &mut best[..n], self.alive(dead));
        out.extend(
            best[..n]
                .iter()
                .map(|&r| self.verdict((r != NONE).then_some(r))),
        );
    }

    /// This context with a patch tree for its revoked covers (see [`tree::patch`]), or
    /// `None` when a rebuild is cheaper.
    fn patched(&self, dead: &[u64], config: &Config) -> Option<Context> {
        let alive = self.alive(Some(dead));
        let dead_rank = |rank: u32| !alive(rank);
        let max = self.targets.len() / 4;
        let v4 = tree::patch(&self.v4, dead_rank, config.leaf_size, max)?;
        let v6 = tree::patch(&self.v6, dead_rank, config.leaf_size, max)?;
        let covers = cover_rules(&v4, &v6, &self.targets);
        Some(Context {
            v4,
            v6,
            targets: self.targets.clone(),
            fallback: self.fallback,
            covers,
        })
    }

    fn memory_usage(&self) -> usize {
        use std::mem::size_of;
        self.v4.memory_usage()
            + self.v6.memory_usage()
            + self.targets.capacity() * size_of::<Target>()
            + self.covers.capacity() * size_of::<u32>()
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
    contexts: Vec<Arc<Context>>,
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
    warnings: Vec<String>,
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
        Resolver {
            state,
            members: state.members(),
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

    /// The prefixes a peer stands for.
    fn resolve(&mut self, rule: &RuleId, peer: &Peer) -> Vec<Cidr> {
        match peer {
            Peer::Cidr { cidr } => vec![*cidr],
            Peer::Group { group_id, .. } => {
                if !self.group_index.contains_key(group_id) {
                    self.warnings.push(format!(
                        "rule {rule}: referenced group {group_id} is not in the state; the rule matches nothing"
                    ));
                }
                self.members
                    .get(group_id)
                    .map(|ips| ips.iter().map(|&ip| Cidr::host(ip)).collect())
                    .unwrap_or_default()
            }
            Peer::PrefixList { prefix_list_id } => match self.state.prefix_list(prefix_list_id) {
                Some(pl) => pl.entries.clone(),
                None => {
                    self.warnings.push(format!(
                        "rule {rule}: prefix list {prefix_list_id} is not in the state; the rule matches nothing"
                    ));
                    Vec::new()
                }
            },
        }
    }

    /// Compiles the context of `groups` (state group indexes, deduplicated, in order) in
    /// `direction`. `table_index` maps a state rule index to the table's.
    fn context(
        &mut self,
        groups: &[u32],
        direction: Direction,
        semantics: &Semantics,
        table_index: &dyn Fn(u32) -> u32,
        config: &Config,
    ) -> Context {
        let lowered = self.lower(groups, direction, semantics, table_index);
        let Lowered {
            v4,
            v6,
            targets,
            fallback,
        } = lowered;
        let v4 = tree::build_forest(v4, config.leaf_size);
        let v6 = tree::build_forest(v6, config.leaf_size);
        let mut targets: Vec<Target> = targets.into_iter().map(Target::new).collect();
        targets.shrink_to_fit();
        let covers = cover_rules(&v4, &v6, &targets);
        Context {
            v4,
            v6,
            targets,
            fallback,
            covers,
        }
    }

    /// The rules of `groups` in `direction`, in evaluation order, as boxes with ranks, plus
    /// the implicit inner-access boxes and the fallback.
    fn lower(
        &mut self,
        groups: &[u32],
        direction: Direction,
        semantics: &Semantics,
        table_index: &dyn Fn(u32) -> u32,
    ) -> Lowered {
        let state = self.state;
        let mut order: Vec<u32> = groups
            .iter()
            .flat_map(|&g| {
                self.by_group
                    .get(&(direction, &state.groups[g as usize].id))
                    .into_iter()
                    .flatten()
                    .copied()
            })
            .collect();
        order.sort_by_key(|&r| rule_order(state, r as usize));
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        let mut targets = Vec::new();
        for &r in &order {
            let rule = &state.rules[r as usize];
            let (sport, dport) = (rule.src_ports, rule.dst_ports);
            let proto = match rule.protocol {
                Protocol::Any => (0, 255),
                Protocol::Number(n) => (n, n),
            };
            let ti = table_index(r);
            for remote in self.resolve(&rule.id, &rule.remote) {
                let local = match rule.local {
                    Some(l) if l.family() == remote.family() => l,
                    Some(_) => continue,
                    None if remote.family() == Family::V4 => Cidr::ANY_V4,
                    None => Cidr::ANY_V6,
                };
                let rank = targets.len() as u32;
                targets.push(Verdict {
                    action: rule.action,
                    by: By::Rule(ti),
                });
                push_filter(&mut v4, &mut v6, rank, remote, local, sport, dport, proto);
            }
        }
        if direction == Direction::Ingress {
            for &g in &semantics.inner_access {
                let gid = &state.groups[g as usize].id;
                for &ip in self.members.get(gid).into_iter().flatten() {
                    let rank = targets.len() as u32;
                    targets.push(Verdict {
                        action: Action::Accept,
                        by: By::InnerAccess(g),
                    });
                    let remote = Cidr::host(ip);
                    let local = if remote.family() == Family::V4 {
                        Cidr::ANY_V4
                    } else {
                        Cidr::ANY_V6
                    };
                    push_filter(
                        &mut v4,
                        &mut v6,
                        rank,
                        remote,
                        local,
                        PortRange::ANY,
                        PortRange::ANY,
                        (0, 255),
                    );
                }
            }
        }
        Lowered {
            v4,
            v6,
            targets,
            fallback: semantics.fallback(direction),
        }
    }
}

/// Table rule indexes (sorted) of the filters that pruned a region of some tree.
fn cover_rules(v4: &Forest<u32>, v6: &Forest<u128>, targets: &[Target]) -> Vec<u32> {
    let mut covers: Vec<u32> = v4
        .cover_ranks()
        .chain(v6.cover_ranks())
        .filter_map(|rank| match targets[rank as usize].verdict().by {
            By::Rule(i) => Some(i),
            _ => None,
        })
        .collect();
    covers.sort_unstable();
    covers.dedup();
    covers.shrink_to_fit();
    covers
}

/// One (group set, direction) lowered to boxes: the input of a tree build and of the
/// header-space diff. Ranks index `targets`; filters are in rank order.
#[derive(Debug)]
pub(crate) struct Lowered {
    pub v4: Vec<Filter<u32>>,
    pub v6: Vec<Filter<u128>>,
    pub targets: Vec<Verdict>,
    pub fallback: Action,
}

/// Lowers the rules seen at ENI `eni` of `state` in `direction` (rule indexes are the
/// state's).
pub(crate) fn lower(
    state: &State,
    eni: usize,
    direction: Direction,
) -> Result<Lowered, CompileError> {
    let mut resolver = Resolver::new(state);
    let sets = group_sets(state, &resolver.group_index);
    let semantics = Semantics::of(state, eni)?;
    Ok(resolver.lower(&sets[eni], direction, &semantics, &|r| r))
}

#[allow(clippy::too_many_arguments)]
fn push_filter(
    v4: &mut Vec<Filter<u32>>,
    v6: &mut Vec<Filter<u128>>,
    rank: u32,
    remote: Cidr,
    local: Cidr,
    sport: PortRange,
    dport: PortRange,
    proto: (u8, u8),
) {
    fn bounds<W: Word>(
        remote: Cidr,
        local: Cidr,
        sport: PortRange,
        dport: PortRange,
        proto: (u8, u8),
    ) -> Bounds<W> {
        let (rl, rh) = remote.range();
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
    match remote.family() {
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

/// Compiles a state.
pub fn compile(state: &State, config: &Config) -> Result<Table, CompileError> {
    state.validate()?;
    let mut resolver = Resolver::new(state);
    let sets = group_sets(state, &resolver.group_index);
    let mut memo: HashMap<(Direction, &[u32]), u32> = HashMap::new();
    let mut contexts = Vec::new();
    let mut points = Vec::with_capacity(state.enis.len());
    for (e, set) in sets.iter().enumerate() {
        let semantics = Semantics::of(state, e)?;
        let mut point = [0u32; 2];
        for (d, direction) in Direction::BOTH.into_iter().enumerate() {
            point[d] = *memo.entry((direction, set)).or_insert_with(|| {
                contexts.push(Arc::new(resolver.context(
                    set,
                    direction,
                    &semantics,
                    &|r| r,
                    config,
                )));
                (contexts.len() - 1) as u32
            });
        }
        points.push(point);
    }
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
        contexts,
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
    /// taken out (a revoke). Contexts that hold none of them are shared; where no removed
    /// rule pruned a tree region they are tombstoned; otherwise rebuilt. Falls back to a
    /// full compile when too much is dead.
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
        let mut contexts = self.contexts.clone();
        let needs_rebuild: Vec<usize> = contexts
            .iter()
            .enumerate()
            .filter(|(_, c)| gone.iter().any(|i| c.covers.binary_search(i).is_ok()))
            .map(|(i, _)| i)
            .collect();
        // A context whose removed rules pruned tree regions first tries a patch tree over
        // what they may have pruned (cheap: one scan of its filters and a small build).
        let needs_rebuild: Vec<usize> = needs_rebuild
            .into_iter()
            .filter(|&c| match contexts[c].patched(&dead, &self.config) {
                Some(p) => {
                    contexts[c] = Arc::new(p);
                    false
                }
                None => true,
            })
            .collect();
        if !needs_rebuild.is_empty() {
            let mut resolver = Resolver::new(state);
            let sets = group_sets(state, &resolver.group_index);
            // Invariant: `state` is this table's state minus some rules, so every rule it
            // holds has a table index.
            let map = |r: u32| {
                self.index_of(&state.rules[r as usize].id)
                    .unwrap_or(u32::MAX)
            };
            for c in needs_rebuild {
                let (e, d) = self
                    .points
                    .iter()
                    .enumerate()
                    .find_map(|(e, p)| p.iter().position(|&x| x as usize == c).map(|d| (e, d)))
                    .ok_or_else(|| CompileError::UnknownRule(format!("context {c} unused")))?;
                let semantics = Semantics::of(state, e)?;
                contexts[c] = Arc::new(resolver.context(
                    &sets[e],
                    Direction::BOTH[d],
                    &semantics,
                    &map,
                    &self.config,
                ));
            }
        }
        Ok(Table {
            dead: Arc::new(dead),
            dead_count,
            contexts,
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

    /// Number of distinct compiled contexts.
    pub fn context_count(&self) -> usize {
        self.contexts.len()
    }

    /// Number of tombstoned rules.
    pub fn dead_count(&self) -> usize {
        self.dead_count
    }

    /// Bytes held by the compiled structures (trees, targets, indexes), excluding the rule
    /// IDs themselves. The address trie is estimated at 64 bytes per address.
    pub fn memory_usage(&self) -> usize {
        use std::mem::size_of;
        let contexts: usize = self.contexts.iter().map(|c| c.memory_usage()).sum();
        let (v4, v6) = self.by_addr.len();
        contexts
            + self.points.capacity() * size_of::<[u32; 2]>()
            + self.dead.capacity() * size_of::<u64>()
            + self.by_id.capacity() * size_of::<u32>()
            + (v4 + v6) * 64
    }
}

impl Table {
    /// The tombstones, or `None` when no rule is tombstoned (the lookups skip the check).
    #[inline]
    fn tombstones(&self) -> Option<&[u64]> {
        (self.dead_count > 0).then_some(&self.dead[..])
    }
}

impl Engine for Table {
    #[inline]
    fn classify(&self, point: Point, h: &Header) -> Verdict {
        let d = match point.direction {
            Direction::Ingress => 0,
            Direction::Egress => 1,
        };
        let c = self.points[point.eni as usize][d];
        self.contexts[c as usize].classify(point.direction, h, self.tombstones())
    }

    /// Judges the batch [`LANES`] packets at a time where consecutive packets share their
    /// point (see [`Forest::lookup_lanes`]); the result equals one-at-a-time classification.
    fn classify_batch(&self, queries: &[(Point, Header)], out: &mut Vec<Verdict>) {
        out.clear();
        out.reserve(queries.len());
        let dead = self.tombstones();
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
                out.push(self.classify(point, &lanes[0].1));
                continue;
            }
            let d = match point.direction {
                Direction::Ingress => 0,
                Direction::Egress => 1,
            };
            let c = &self.contexts[self.points[point.eni as usize][d] as usize];
            let mut hs = [&lanes[0].1; LANES];
            for (slot, (_, h)) in hs.iter_mut().zip(lanes) {
                *slot = h;
            }
            c.classify_lanes(point.direction, &hs[..run], dead, out);
        }
    }

    /// Judges a batch on the rayon pool in chunks, each through [`Engine::classify_batch`].
    fn classify_par(&self, queries: &[(Point, Header)]) -> Vec<Verdict> {
        const CHUNK: usize = 4096;
        let mut out = vec![
            Verdict {
                action: Action::Drop,
                by: By::Default,
            };
            queries.len()
        ];
        out.par_chunks_mut(CHUNK)
            .zip(queries.par_chunks(CHUNK))
            .for_each_init(
                || Vec::with_capacity(CHUNK),
                |scratch, (out, qs)| {
                    self.classify_batch(qs, scratch);
                    out.copy_from_slice(scratch);
                },
            );
        out
    }

    fn rule_id(&self, index: u32) -> &RuleId {
        &self.rules[index as usize]
    }
}
