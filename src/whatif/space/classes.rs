//! Remote addresses as classes: member addresses split into atoms once per state, and a
//! group set's classes built from them.

use std::collections::HashMap;
use std::rc::Rc;

use crate::whatif::dd::{self, Set};

/// The member addresses of one family, split once for the whole state: addresses on ENIs
/// of the same groups, between the same boundaries of the blocks that rules and prefix
/// lists name, form one atom. A group set's [`Classes`] are unions of atoms, so building
/// them never visits an address.
pub(super) struct Members {
    /// Per atom: its addresses, sorted (atoms in the order of their lowest address).
    atoms: Vec<Vec<u128>>,
    /// Per atom: its lowest address.
    lows: Vec<u128>,
    /// Every member address with its atom, sorted.
    sorted: Vec<(u128, u32)>,
    /// Per member group (see [`super::Ctx::member_index`]): the atoms of its members.
    by_group: Vec<Vec<u32>>,
    /// Scratch for [`Classes::build`]: per atom, its slot among the atoms a set touches
    /// (`u32::MAX` when untouched).
    slot: Vec<u32>,
}

impl Members {
    /// `hosts` are (address, member group) pairs; `cuts` the sorted starts of the
    /// intervals that the state's blocks split the family into.
    pub(super) fn new(mut hosts: Vec<(u128, u32)>, cuts: &[u128], groups: usize) -> Members {
        hosts.sort_unstable();
        hosts.dedup();
        let mut atoms: Vec<Vec<u128>> = Vec::new();
        let mut by_group: Vec<Vec<u32>> = vec![Vec::new(); groups];
        let mut index: HashMap<(usize, Vec<u32>), u32> = HashMap::new();
        let mut sorted: Vec<(u128, u32)> = Vec::new();
        let mut k = 0;
        while k < hosts.len() {
            let addr = hosts[k].0;
            let mut gs = Vec::new();
            while k < hosts.len() && hosts[k].0 == addr {
                gs.push(hosts[k].1);
                k += 1;
            }
            let cut = cuts.partition_point(|&c| c <= addr);
            let next = atoms.len() as u32;
            let id = *index.entry((cut, gs)).or_insert_with_key(|(_, gs)| {
                for &g in gs {
                    by_group[g as usize].push(next);
                }
                next
            });
            if id == next {
                atoms.push(Vec::new());
            }
            atoms[id as usize].push(addr);
            sorted.push((addr, id));
        }
        let slot = vec![u32::MAX; atoms.len()];
        Members {
            lows: atoms
                .iter()
                .map(|a| a.first().copied().unwrap_or(0))
                .collect(),
            sorted,
            atoms,
            by_group,
            slot,
        }
    }

    /// The addresses of the members of some member groups, as sorted intervals.
    pub(super) fn of_groups(&self, groups: &[u32]) -> Set {
        let mut atoms: Vec<u32> = groups
            .iter()
            .flat_map(|&g| self.by_group[g as usize].iter().copied())
            .collect();
        atoms.sort_unstable();
        atoms.dedup();
        dd::normalize(
            atoms
                .iter()
                .flat_map(|&a| self.atoms[a as usize].iter().map(|&v| (v, v)))
                .collect(),
        )
    }
}

/// One group set's remote addresses as classes: addresses that every rule, grant and
/// block of the set treats alike are one class, and the diagrams' remote field counts
/// classes, not addresses. A group reference is then a few runs of class ids instead of
/// one interval per member, so the set's diagram operations cost in classes (a few
/// hundred on a fleet of 100,000 ENIs) rather than in members. Exact: every remote set
/// of the set's items is a union of classes, and every class holds an address.
pub(crate) struct Classes {
    /// The starts of the intervals the set's blocks split the family into (the first 0).
    starts: Vec<u128>,
    /// Per interval: its first class id; then the number of classes.
    first: Vec<u32>,
    /// Per interval: whether its first class is its rest (the addresses that are members
    /// of no referenced group; the other classes hold members of the same referenced
    /// groups each).
    rest: Vec<bool>,
    /// Per atom: its class (`u32::MAX`: the rest of its interval).
    atom_class: Vec<u32>,
    /// The family's largest address.
    max: u128,
    /// Per referenced member group: its members' classes, as runs of ids.
    pub(super) groups: HashMap<u32, Set>,
}

/// Where an item's remote addresses come from.
#[derive(Clone)]
pub(super) enum Remote {
    /// Address blocks (CIDRs, prefix-list entries).
    Blocks(Rc<Set>),
    /// The private addresses of a group's members (by member-group index).
    Members(u32),
    /// A reference the state cannot resolve: read as nothing, or as the whole family.
    Unresolved(String),
}

impl Classes {
    /// The classes of the items whose remotes are `remotes`.
    pub(super) fn build(members: &mut Members, remotes: &[&Remote], max: u128) -> Classes {
        let mut starts = vec![0u128];
        let mut refs: Vec<u32> = Vec::new();
        for r in remotes {
            match r {
                Remote::Blocks(set) => {
                    for &(lo, hi) in set.iter() {
                        starts.push(lo);
                        if hi < max {
                            starts.push(hi + 1);
                        }
                    }
                }
                Remote::Members(g) => refs.push(*g),
                Remote::Unresolved(_) => {}
            }
        }
        starts.sort_unstable();
        starts.dedup();
        refs.sort_unstable();
        refs.dedup();
        // The atoms of referenced members, each with the referenced groups it is in (a
        // bit mask of `words` words over `refs`).
        let words = refs.len().div_ceil(64).max(1);
        let mut touched: Vec<u32> = Vec::new();
        let mut masks: Vec<u64> = Vec::new();
        for (p, &g) in refs.iter().enumerate() {
            for &a in &members.by_group[g as usize] {
                let slot = &mut members.slot[a as usize];
                if *slot == u32::MAX {
                    *slot = touched.len() as u32;
                    touched.push(a);
                    masks.extend(std::iter::repeat_n(0, words));
                }
                masks[*slot as usize * words + p / 64] |= 1 << (p % 64);
            }
        }
        // Member classes: atoms of one interval with the same mask.
        let mask = |t: u32| &masks[t as usize * words..(t as usize + 1) * words];
        let mut table: hashbrown::HashTable<u32> = hashbrown::HashTable::new();
        // Per member class: its interval, the slot whose mask it has, its atoms.
        let mut found: Vec<(usize, u32, Vec<u32>)> = Vec::new();
        let hash = |iv: usize, m: &[u64]| {
            use std::hash::BuildHasher;
            rustc_hash::FxBuildHasher.hash_one((iv, m))
        };
        // The touched atoms by lowest address (atoms are numbered in that order), and the
        // interval each lies in.
        let mut iv = 0;
        for (a, &t) in members.slot.iter().enumerate() {
            if t == u32::MAX {
                continue;
            }
            let a = a as u32;
            let low = members.lows[a as usize];
            while starts.get(iv + 1).is_some_and(|&s| s <= low) {
                iv += 1;
            }
            let h = hash(iv, mask(t));
            let hit = table.find(h, |&c| {
                let (civ, ct, _) = &found[c as usize];
                *civ == iv && mask(*ct) == mask(t)
            });
            match hit {
                Some(&c) => found[c as usize].2.push(a),
                None => {
                    let c = found.len() as u32;
                    found.push((iv, t, vec![a]));
                    table.insert_unique(h, c, |&c| {
                        let (civ, ct, _) = &found[c as usize];
                        hash(*civ, mask(*ct))
                    });
                }
            }
        }
        // Number the classes interval by interval: the rest first (when it holds an
        // address), then the member classes by lowest address.
        let mut per_interval: Vec<Vec<u32>> = vec![Vec::new(); starts.len()];
        for (c, (iv, _, _)) in found.iter().enumerate() {
            per_interval[*iv].push(c as u32);
        }
        let mut count: u32 = 0;
        let mut first: Vec<u32> = Vec::with_capacity(starts.len() + 1);
        let mut rest: Vec<bool> = Vec::with_capacity(starts.len());
        let mut groups: HashMap<u32, Set> = HashMap::new();
        let mut atom_class = vec![u32::MAX; members.atoms.len()];
        for (iv, cs) in per_interval.iter().enumerate() {
            first.push(count);
            let lo = starts[iv];
            let hi = starts.get(iv + 1).map_or(max, |&n| n - 1);
            let taken: u128 = cs
                .iter()
                .flat_map(|&c| &found[c as usize].2)
                .map(|&a| members.atoms[a as usize].len() as u128)
                .sum();
            // The rest holds an address when the members do not fill the interval.
            rest.push(hi - lo >= taken);
            if hi - lo >= taken {
                count += 1;
            }
            for &c in cs {
                for &a in &found[c as usize].2 {
                    atom_class[a as usize] = count;
                }
                let id = u128::from(count);
                let m = mask(found[c as usize].1);
                for (p, &g) in refs.iter().enumerate() {
                    if m[p / 64] & (1 << (p % 64)) != 0 {
                        let runs = groups.entry(g).or_default();
                        match runs.last_mut() {
                            Some(last) if last.1 + 1 == id => last.1 = id,
                            _ => runs.push((id, id)),
                        }
                    }
                }
                count += 1;
            }
        }
        first.push(count);
        for &a in &touched {
            members.slot[a as usize] = u32::MAX;
        }
        Classes {
            starts,
            first,
            rest,
            atom_class,
            max,
            groups,
        }
    }

    /// The largest class id.
    pub(super) fn last(&self) -> u128 {
        u128::from(self.first[self.first.len() - 1]) - 1
    }

    /// A remote set as class ids (unresolved references: every class).
    pub(super) fn ids(&self, remote: &Remote) -> Set {
        match remote {
            Remote::Blocks(set) => {
                let mut out: Set = Vec::new();
                for &(lo, hi) in set.iter() {
                    let a = self.starts.partition_point(|&s| s <= lo) - 1;
                    let b = self.starts.partition_point(|&s| s <= hi) - 1;
                    let (from, to) = (self.first[a], self.first[b + 1]);
                    if to > from {
                        let run = (u128::from(from), u128::from(to) - 1);
                        match out.last_mut() {
                            Some(last) if last.1 + 1 >= run.0 => last.1 = last.1.max(run.1),
                            _ => out.push(run),
                        }
                    }
                }
                out
            }
            Remote::Members(g) => self.groups.get(g).cloned().unwrap_or_default(),
            Remote::Unresolved(_) => vec![(0, self.last())],
        }
    }

    /// The addresses of a set of class ids, as sorted intervals: whole intervals where
    /// every class of one is in, else a walk over the interval's member addresses.
    pub(super) fn addresses(&self, ids: &Set, members: &Members) -> Set {
        let mut inside = vec![false; self.first[self.first.len() - 1] as usize];
        for &(lo, hi) in ids {
            inside[lo as usize..=hi as usize].fill(true);
        }
        let mut out: Set = Vec::new();
        let push = |out: &mut Set, lo: u128, hi: u128| match out.last_mut() {
            Some(last) if last.1.checked_add(1) == Some(lo) => last.1 = hi,
            _ => out.push((lo, hi)),
        };
        for iv in 0..self.starts.len() {
            let these = &inside[self.first[iv] as usize..self.first[iv + 1] as usize];
            if !these.contains(&true) {
                continue;
            }
            let lo = self.starts[iv];
            let hi = self.starts.get(iv + 1).map_or(self.max, |&n| n - 1);
            if !these.contains(&false) {
                push(&mut out, lo, hi);
                continue;
            }
            // The rest is what lies between the members of referenced groups.
            let rest_in = self.rest[iv] && these[0];
            let from = members.sorted.partition_point(|&(a, _)| a < lo);
            // The first address not yet passed (none past the family's last).
            let mut at = Some(lo);
            for &(a, atom) in members.sorted[from..].iter().take_while(|e| e.0 <= hi) {
                let class = self.atom_class[atom as usize];
                let is_in = if class == u32::MAX {
                    rest_in
                } else {
                    inside[class as usize]
                };
                if let Some(next) = at.filter(|&n| rest_in && a > n) {
                    push(&mut out, next, a - 1);
                }
                if is_in {
                    push(&mut out, a, a);
                }
                at = a.checked_add(1);
            }
            if let Some(next) = at.filter(|&n| rest_in && n <= hi) {
                push(&mut out, next, hi);
            }
        }
        out
    }
}
