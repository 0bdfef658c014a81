//! The live connections of a partition, of one address family: a dense vector of
//! connections and an open-addressing index of their positions.
//!
//! A day of a fleet holds millions of live connections, so nearly every item's probe is a
//! miss to memory, and the loop would wait for each in turn. Here the loop asks, a few items
//! ahead, for the index slot where an item's key lands ([`Conns::prefetch_slot`]) and, a
//! few items later, for the connection that slot names ([`Conns::prefetch_conn`]); by the
//! time the item is judged, both are in cache. (hashbrown's tables do not tell where a
//! hash lands, so they could not be prefetched.) Prefetching is a hint: the probe itself
//! ([`Conns::find`]) reads the table as it is then.
//!
//! The index has a power of two of slots, at most half of them used; a slot is 0 (empty)
//! or the upper half of the key's hash above the connection's position plus one. Probing
//! is linear.
//!
//! Removals ([`Conns::extract_if`]) move nothing: a finished connection is marked gone and
//! its place goes to the next connection inserted, and its index entry stays, *stale*,
//! until the next rebuild (a probe passes over it: the place it names holds a gone
//! connection or another key). Used entries (live and stale) are kept to at most half the
//! slots; a rebuild indexes the live connections in three to six times their number of
//! slots, so that the stale entries of a few removals fit before the next one. (Compacting
//! the vector and rebuilding the index at every removal cost a tenth of the what-if of a
//! fleet's day of flow logs, whose connections are removed by the bound on live
//! connections a quarter at a time.)

use prefetch_index::prefetch_index;

use super::books::Conn;
use super::keys::{key_hash, Key, Word};

const EMPTY: u64 = 0;
const TAG: u64 = 0xffff_ffff_0000_0000;
/// The fewest index slots.
const MIN_SLOTS: usize = 16;

/// The live connections of one address family (see the module docs).
pub(super) struct Conns<A> {
    /// Live connections, and gone ones whose places are in `free`.
    conns: Vec<Conn<A>>,
    index: Vec<u64>,
    /// The places of gone connections, taken by the next inserts.
    free: Vec<usize>,
    /// Index entries that name no live connection of their key.
    stale: usize,
}

impl<A> Default for Conns<A> {
    fn default() -> Self {
        Conns {
            conns: Vec::new(),
            index: Vec::new(),
            free: Vec::new(),
            stale: 0,
        }
    }
}

impl<A: Word> Conns<A> {
    /// Connections held.
    pub(super) fn len(&self) -> usize {
        self.conns.len() - self.free.len()
    }

    /// The connections, in no particular order.
    pub(super) fn iter(&self) -> impl Iterator<Item = &Conn<A>> {
        self.conns.iter().filter(|c| !c.gone)
    }

    /// The slot where probing for `hash` starts (any value when the index is empty).
    fn home(&self, hash: u64) -> usize {
        hash as usize & self.index.len().wrapping_sub(1)
    }

    /// The slot after `i`.
    fn next(&self, i: usize) -> usize {
        (i + 1) & (self.index.len() - 1)
    }

    /// The position of the connection with key `k` (whose hash is `hash`).
    pub(super) fn find(&self, hash: u64, k: &Key<A>) -> Option<usize> {
        if self.index.is_empty() {
            return None;
        }
        let mut i = self.home(hash);
        loop {
            let e = self.index[i];
            if e == EMPTY {
                return None;
            }
            if e & TAG == hash & TAG {
                let p = position(e);
                if self.conns.get(p).is_some_and(|c| c.key == *k && !c.gone) {
                    return Some(p);
                }
            }
            i = self.next(i);
        }
    }

    /// The connection at `p` (from [`Conns::find`]).
    pub(super) fn get(&self, p: usize) -> &Conn<A> {
        &self.conns[p]
    }

    /// The connection at `p`, to count an item.
    pub(super) fn get_mut(&mut self, p: usize) -> &mut Conn<A> {
        &mut self.conns[p]
    }

    /// Puts `c`, a connection with the same key, in the place of the one at `p`.
    pub(super) fn replace(&mut self, p: usize, c: Conn<A>) {
        debug_assert!(self.conns[p].key == c.key);
        self.conns[p] = c;
    }

    /// Adds `c`, whose key is not held (its hash: `hash`).
    pub(super) fn insert(&mut self, hash: u64, c: Conn<A>) {
        // A rebuild hashes the keys afresh: the caller's hash must be the key's.
        debug_assert_eq!(
            hash,
            key_hash(&c.key),
            "a key's hash differs from its items'"
        );
        debug_assert!(!c.gone);
        let p = match self.free.pop() {
            Some(p) => {
                self.conns[p] = c;
                p
            }
            None => {
                self.conns.push(c);
                self.conns.len() - 1
            }
        };
        if 2 * (self.len() + self.stale) > self.index.len() {
            self.rebuild();
        } else {
            self.place(hash, p);
        }
    }

    fn place(&mut self, hash: u64, p: usize) {
        let mut i = self.home(hash);
        while self.index[i] != EMPTY {
            i = self.next(i);
        }
        self.index[i] = hash & TAG | (p as u64 + 1);
    }

    /// Indexes every live connection afresh, in three to six times their number of slots,
    /// with no stale entry: at least half as many entries again fit before the next
    /// rebuild, so rebuilds cost a constant per insert or removal (at twice the live
    /// connections, a table just under half full would rebuild again after a few inserts).
    fn rebuild(&mut self) {
        let slots = (3 * self.len()).next_power_of_two().max(MIN_SLOTS);
        self.index.clear();
        self.index.resize(slots, EMPTY);
        self.stale = 0;
        for p in 0..self.conns.len() {
            if !self.conns[p].gone {
                let hash = key_hash(&self.conns[p].key);
                self.place(hash, p);
            }
        }
    }

    /// Asks the memory for the index slot where `hash` lands.
    pub(super) fn prefetch_slot(&self, hash: u64) {
        if !self.index.is_empty() {
            prefetch_index(&self.index, self.home(hash));
        }
    }

    /// Asks the memory for the connection that `hash`'s home slot names, when its tag is
    /// `hash`'s (best after [`Conns::prefetch_slot`] has had time to arrive).
    pub(super) fn prefetch_conn(&self, hash: u64) {
        if let Some(&e) = self.index.get(self.home(hash)) {
            if e != EMPTY && e & TAG == hash & TAG && position(e) < self.conns.len() {
                prefetch_index(&self.conns, position(e));
            }
        }
    }

    /// Removes the connections `idle` picks, handing each to `done`; returns how many.
    pub(super) fn extract_if(
        &mut self,
        mut idle: impl FnMut(&Conn<A>) -> bool,
        mut done: impl FnMut(&Conn<A>),
    ) -> u64 {
        let held = self.free.len();
        for (p, c) in self.conns.iter_mut().enumerate() {
            if !c.gone && idle(c) {
                done(c);
                c.gone = true;
                self.free.push(p);
            }
        }
        let removed = self.free.len() - held;
        self.stale += removed;
        removed as u64
    }

    /// Removes every connection.
    pub(super) fn drain(&mut self) -> impl Iterator<Item = Conn<A>> + '_ {
        self.index = Vec::new();
        self.free.clear();
        self.stale = 0;
        self.conns.drain(..).filter(|c| !c.gone)
    }
}

fn position(e: u64) -> usize {
    ((e & !TAG) - 1) as usize
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;
    use crate::model::Header;
    use crate::whatif::traffic::keys::{key_hash, key_of};

    fn key(a: u8, port: u16) -> Key<u32> {
        let h = Header::new(
            format!("10.0.0.{a}").parse().expect("address"),
            "10.9.9.9".parse().expect("address"),
            6,
            port,
            443,
        )
        .expect("header");
        key_of(&h, 0x0a00_0000 | u32::from(a), 0x0a09_0909, u32::MAX).0
    }

    #[derive(Debug, Clone)]
    enum Op {
        /// Count an item of this connection (adding it when absent).
        Item(u8, u16),
        /// Replace this connection with a fresh one, when held.
        Reopen(u8, u16),
        /// Remove every connection last seen at or before this time.
        Sweep(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        // Few addresses and ports: keys repeat, and many share a hash's home slot.
        prop_oneof![
            8 => (0u8..40, 0u16..8).prop_map(|(a, p)| Op::Item(a, p)),
            1 => (0u8..40, 0u16..8).prop_map(|(a, p)| Op::Reopen(a, p)),
            1 => (0u64..400).prop_map(Op::Sweep),
        ]
    }

    proptest! {
        /// The table answers as a map from keys to connections through inserts, finds,
        /// replacements, removals by predicate (whose places and stale entries the next
        /// inserts and rebuilds take over) and growth, and prefetching changes nothing.
        #[test]
        fn the_table_answers_as_a_map(ops in proptest::collection::vec(op(), 1..600)) {
            let mut table: Conns<u32> = Conns::default();
            let mut model: HashMap<Key<u32>, (u64, u64)> = HashMap::new();
            for (t, op) in ops.into_iter().enumerate() {
                let t = t as u64;
                match op {
                    Op::Item(a, p) => {
                        let k = key(a, p);
                        let h = key_hash(&k);
                        table.prefetch_slot(h);
                        table.prefetch_conn(h);
                        match table.find(h, &k) {
                            Some(i) => {
                                let c = table.get_mut(i);
                                prop_assert_eq!(c.key, k);
                                c.last_ns = t;
                                c.first_ns += 1;
                            }
                            None => {
                                prop_assert!(!model.contains_key(&k), "{:?} held but not found", k);
                                table.insert(h, Conn::for_test(k, t));
                            }
                        }
                        let m = model.entry(k).or_insert((0, t));
                        m.0 += 1;
                        m.1 = t;
                    }
                    Op::Reopen(a, p) => {
                        let k = key(a, p);
                        if let Some(i) = table.find(key_hash(&k), &k) {
                            table.replace(i, Conn::for_test(k, t));
                            model.insert(k, (1, t));
                        }
                    }
                    Op::Sweep(cut) => {
                        let mut gone = Vec::new();
                        let n = table.extract_if(|c| c.last_ns <= cut, |c| gone.push(c.key));
                        prop_assert_eq!(n as usize, gone.len());
                        for k in gone {
                            prop_assert!(model.remove(&k).is_some_and(|m| m.1 <= cut));
                        }
                        prop_assert!(model.values().all(|m| m.1 > cut));
                    }
                }
                prop_assert_eq!(table.len(), model.len());
                prop_assert!(2 * (table.len() + table.stale) <= table.index.len().max(MIN_SLOTS));
                prop_assert_eq!(table.iter().count(), table.len());
            }
            for (k, (items, last)) in &model {
                let i = table.find(key_hash(k), k);
                prop_assert!(i.is_some(), "{:?} lost", k);
                let c = table.get(i.unwrap_or(0));
                prop_assert_eq!((c.first_ns, c.last_ns), (*items - 1, *last));
            }
            let drained: Vec<Key<u32>> = table.drain().map(|c| c.key).collect();
            prop_assert_eq!(drained.len(), model.len());
            prop_assert_eq!(table.len(), 0);
            prop_assert!(table.find(key_hash(&key(1, 1)), &key(1, 1)).is_none());
        }
    }
}
