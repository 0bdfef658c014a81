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

use crate::compile::{compile, CompileError, Config, Table};
use crate::model::{RuleId, State};

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
        // A writer that panicked mid-apply never stored its table, and the state is only
        // replaced after the new table is built, so the guarded state is consistent.
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies a change: builds the new table, then swaps it in atomically. On error
    /// nothing changes.
    pub fn apply(&self, change: Change) -> Result<(), CompileError> {
        let mut state = self.lock();
        let (next_state, table) = match change {
            Change::Revoke(ids) => {
                let mut next = state.clone();
                for id in &ids {
                    if !next.rules.iter().any(|r| &r.id == id) {
                        return Err(CompileError::UnknownRule(id.to_string()));
                    }
                }
                next.rules.retain(|r| !ids.contains(&r.id));
                let table = self.current.load().revise(&next, &ids)?;
                (next, table)
            }
            Change::Replace(next) => {
                let table = compile(&next, &self.config)?;
                (next, table)
            }
        };
        let old = self.current.swap(Arc::new(table));
        *state = next_state;
        drop(state);
        drop(old);
        Ok(())
    }
}
