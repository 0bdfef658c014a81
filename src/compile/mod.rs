//! Model → immutable compiled [`Table`]: the rules of each group and direction lowered to
//! five-field boxes and indexed by decision trees (one forest per address family) or, for
//! the IPv4 rules of a large group, cross-product tables; ranked in evaluation order, with
//! group references resolved once per packet.
//!
//! # Files
//!
//! - `mod.rs`: [`Config`], [`CompileError`], [`IndexSummary`] and [`compile`], which runs
//!   the steps below in order.
//! - `lower.rs`: lowering, the model's rules resolved (group references, hulls of member
//!   addresses) into five-field boxes, and the distinct group sets of the ENIs.
//! - `layout.rs`: the pieces the table is made of: ranks and targets, units and their
//!   indexes, contexts and their doubts, membership, and the address trie of the ENIs.
//! - `table.rs`: the [`Table`], its accessors and memory use, and its lookups.
//! - `revise.rs`: [`Table::revise`], a table after a revoke without a full compile.
//! - `live.rs`: [`live::Live`], the one place that swaps a whole table.
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
//! [`Engine::classify_batch`](crate::classify::Engine::classify_batch) on a [`Table`] judges runs of up to 16 packets that
//! share a point together, walking the trees in lockstep (see [`crate::classify`]'s tree
//! module); [`Engine::classify_par_into`](crate::classify::Engine::classify_par_into) hands 4096-packet chunks of the batch path to rayon,
//! each writing straight into its part of a reused output.

mod layout;
pub mod live;
mod lower;
mod revise;
mod table;

pub use table::Table;

use std::collections::HashMap;

use rayon::prelude::*;
use std::sync::Arc;

use crate::classify::{rule_order, Semantics, SemanticsError};
use crate::index::boxes::Filter;
use crate::index::tree::build as tree;
use crate::model::{Direction, RuleId, State};

use layout::{
    address_table, direction_index, Context, Doubt, Membership, Ranks, Tables, Target, Unit, ANY,
};
use lower::{group_sets, Resolver};

/// How to compile: [`Config::default`], then the fields to change.
#[derive(Clone, Debug)]
#[non_exhaustive]
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
