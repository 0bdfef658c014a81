//! The live table: the one place that owns the `ArcSwap` of the current compiled table.
//!
//! Readers call [`Live::snapshot`] once per batch and judge the whole batch against that
//! snapshot, so no batch ever sees a mix of old and new rules. Writers call
//! [`Live::apply`]: the new table is built off to the side (sharing what the change did not
//! touch, see [`crate::compile::Table::revise`]) and swapped in with one atomic store.
//! Writers are serialized by a mutex; the writer, not a reader, drops the old table when it
//! holds the last reference.

use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::ArcSwap;
use rustc_hash::FxHashSet;

use crate::compile::{compile, CompileError, Config, Table};
use crate::model::{Rule, RuleId, State};

/// A change to the live rules.
#[derive(Clone, Debug)]
pub enum Change {
    /// Remove these rules (a revoke). Unknown IDs are an error and change nothing.
    Revoke(Vec<RuleId>),
    /// Replace the whole state.
    Replace(State),
}

/// The current table, swappable while readers run.
pub struct Live {
    current: ArcSwap<Table>,
    writer: Mutex<State>,
    config: Config,
}

impl Live {
    /// Compiles `state` and makes it current.
    pub fn new(state: State, config: Config) -> Result<Live, CompileError> {
        let table = compile(&state, &config)?;
        Ok(Live {
            current: ArcSwap::from_pointee(table),
            writer: Mutex::new(state),
            config,
        })
    }

    /// The current table. Take one per batch, not one per packet.
    pub fn snapshot(&self) -> Arc<Table> {
        self.current.load_full()
    }

    /// A copy of the current state.
    pub fn state(&self) -> State {
        self.lock().clone()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A writer that panicked mid-apply never stored its table, and its state changes
        // are undone while unwinding (see `Taken`) or made only after the new table is
        // built, so the guarded state is consistent.
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies a change: builds the new table, then swaps it in atomically. On error
    /// nothing changes.
    pub fn apply(&self, change: Change) -> Result<(), CompileError> {
        let mut state = self.lock();
        let old = match change {
            Change::Revoke(ids) => {
                // The revoked rules are moved out of the state in place (no copy of the
                // rest); `Taken` puts them back if the revise fails or panics.
                let table = self.current.load();
                let taken = Taken::out(&mut state, &ids)?;
                let next = table.revise(taken.state, &ids)?;
                taken.keep();
                self.current.swap(Arc::new(next))
            }
            Change::Replace(next) => {
                let table = compile(&next, &self.config)?;
                let old = self.current.swap(Arc::new(table));
                *state = next;
                old
            }
        };
        drop(state);
        drop(old);
        Ok(())
    }
}

/// Rules moved out of a state for a revoke, with their positions; put back on drop unless
/// kept, so that a failed (or panicking) revise leaves the state as it was.
struct Taken<'a> {
    state: &'a mut State,
    removed: Vec<(usize, Rule)>,
    keep: bool,
}

impl<'a> Taken<'a> {
    /// Moves the rules `ids` out of `state`; fails, changing nothing, when one is unknown.
    /// Costs one scan of the rules (string comparisons, or a hash set for long lists) and
    /// one shift of the list, instead of a copy of the whole state.
    fn out(state: &'a mut State, ids: &[RuleId]) -> Result<Taken<'a>, CompileError> {
        let mut wanted: Vec<&RuleId> = ids.iter().collect();
        wanted.sort_unstable();
        wanted.dedup();
        let set: FxHashSet<&RuleId> = if wanted.len() > 8 {
            wanted.iter().copied().collect()
        } else {
            FxHashSet::default()
        };
        let is_wanted = |id: &RuleId| {
            if set.is_empty() {
                wanted.contains(&id)
            } else {
                set.contains(id)
            }
        };
        let positions: Vec<usize> = (0..state.rules.len())
            .filter(|&i| is_wanted(&state.rules[i].id))
            .collect();
        if positions.len() < wanted.len() {
            let found: FxHashSet<&RuleId> = positions.iter().map(|&i| &state.rules[i].id).collect();
            if let Some(id) = ids.iter().find(|id| !found.contains(id)) {
                return Err(CompileError::UnknownRule(id.to_string()));
            }
        }
        let mut removed = Vec::with_capacity(positions.len());
        if positions.len() <= 8 {
            for &i in positions.iter().rev() {
                removed.push((i, state.rules.remove(i)));
            }
            removed.reverse();
        } else {
            let mut next = positions.iter().copied().peekable();
            let mut kept = Vec::with_capacity(state.rules.len() - positions.len());
            for (i, rule) in std::mem::take(&mut state.rules).into_iter().enumerate() {
                if next.next_if_eq(&i).is_some() {
                    removed.push((i, rule));
                } else {
                    kept.push(rule);
                }
            }
            state.rules = kept;
        }
        Ok(Taken {
            state,
            removed,
            keep: false,
        })
    }

    /// The removal stands.
    fn keep(mut self) {
        self.keep = true;
    }
}

impl Drop for Taken<'_> {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        // Positions ascend: merge the removed rules back at their places.
        let rest = std::mem::take(&mut self.state.rules);
        let mut removed = std::mem::take(&mut self.removed).into_iter().peekable();
        let mut rules = Vec::with_capacity(rest.len() + removed.len());
        for rule in rest {
            while let Some((_, r)) = removed.next_if(|(i, _)| *i == rules.len()) {
                rules.push(r);
            }
            rules.push(rule);
        }
        rules.extend(removed.map(|(_, r)| r));
        self.state.rules = rules;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taken_rules_come_back_in_place_unless_kept() {
        let state =
            crate::internal::bench::sg_state(&crate::internal::bench::SgShape::default(), 1);
        for k in [1usize, 3, 8, 9, 40] {
            let ids: Vec<RuleId> = (0..k)
                .map(|i| state.rules[(i * 37 + 5) % state.rules.len()].id.clone())
                .collect();
            let mut s = state.clone();
            drop(Taken::out(&mut s, &ids).expect("known rules"));
            assert_eq!(s, state, "{k} rules put back");
            let taken = Taken::out(&mut s, &ids).expect("known rules");
            assert_eq!(
                taken.state.rules.len() + taken.removed.len(),
                state.rules.len()
            );
            taken.keep();
            let mut expected = state.clone();
            expected.rules.retain(|r| !ids.contains(&r.id));
            assert_eq!(s, expected, "{k} rules taken");
        }
        let mut s = state.clone();
        let unknown = vec![state.rules[0].id.clone(), "nope".into()];
        assert!(Taken::out(&mut s, &unknown).is_err());
        assert_eq!(s, state);
    }
}
