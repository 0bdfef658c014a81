//! Revising a table after a revoke.

use std::sync::Arc;

use crate::model::{RuleId, State};

use super::layout::{direction_index, Tables, Unit, V4};
use super::lower::Resolver;
use super::{compile, CompileError, Table};

impl Table {
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
}
