//! Builds the cross-product tables of [`crate::index::rfc`] from IPv4 filters in rank
//! order, within a memory budget.
//!
//! Sets of filters are sparse bitsets (the non-zero 64-bit words with their positions),
//! interned so that each distinct set is one class. Phase 0 sweeps each chunk's range ends
//! in order, giving every run of values between two ends the class of the filters holding
//! it. A later phase intersects every pair of its inputs' classes.
//!
//! Of the three ways to pair the four phase-1 results in phase 2, the one whose final table
//! is smallest is kept. Each table's size is checked against the budget before it is
//! filled, and a phase-2 table stops as soon as its classes are too many for the final
//! table to fit. Then the split tail is tried (phase 2 pairs remote with local and ports
//! with protocol, no phase 3; see `index::rfc`), with its own work bound, and only when
//! its address lists are short on average; a set whose tables would not fit either way
//! gives `None` and trees serve it.
//!
//! The rows of a later phase's table are combined on the rayon pool, a run of rows a task
//! with classes of its own, numbered afterwards in row order: the tables are the same as
//! one pass would make.
//!
//! An address range need not be one product of a high-half and a low-half range (a group
//! peer's box spans arbitrary members), so each address range is split into up to three
//! products ("parts"): phase 0 of the address chunks works on parts, and phase 1 folds
//! the parts back into their filters.

use hashbrown::HashTable;
use rayon::prelude::*;

use super::{Cells, Cross, Rfc, Tail};
use crate::index::boxes::Filter;

/// A set as its non-zero words: `(word index, word)`, ascending by index.
type Set = Vec<(u32, u64)>;

/// Distinct sets, numbered in order of first sight.
#[derive(Default)]
struct Classes {
    sets: Vec<Set>,
    /// Class numbers, by the hash of their set ([`hash`]).
    index: HashTable<u32>,
}

/// A well-mixed hash of a set: sets differing in one bit of one word must spread over the
/// whole table (they are most of what a phase meets).
fn hash(set: &Set) -> u64 {
    let mut h = set.len() as u64;
    for &(w, bits) in set {
        h = (h ^ bits ^ u64::from(w).rotate_left(32)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        h ^= h >> 29;
    }
    h = (h ^ (h >> 32)).wrapping_mul(0xd6e8_feb8_6659_fd93);
    h ^ (h >> 32)
}

impl Classes {
    /// The class of `set`, numbered anew when first seen.
    fn intern(&mut self, set: &Set) -> u32 {
        let h = hash(set);
        let sets = &self.sets;
        if let Some(&c) = self.index.find(h, |&c| sets[c as usize] == *set) {
            return c;
        }
        let c = self.sets.len() as u32;
        self.sets.push(set.clone());
        let sets = &self.sets;
        self.index.insert_unique(h, c, |&c| hash(&sets[c as usize]));
        c
    }

    fn len(&self) -> usize {
        self.sets.len()
    }
}

/// `out = a ∩ b`, with `a` given dense (all its words, by index).
fn intersect(a: &[u64], b: &Set, out: &mut Set) {
    out.clear();
    for &(w, bits) in b {
        let both = a[w as usize] & bits;
        if both != 0 {
            out.push((w, both));
        }
    }
}

/// A member (filter or part, by bit) holding the chunk values `lo..=hi`.
#[derive(Clone, Copy)]
struct Span {
    member: u32,
    lo: u32,
    hi: u32,
}

/// Phase 0 of one chunk of `size` values: each value's class among the sets of members
/// whose span holds it; `None` once there are more than `limit` classes.
fn chunk(spans: &[Span], size: u32, members: usize, limit: usize) -> Option<(Vec<u16>, Classes)> {
    // Events: (value, member, whether it enters); a member leaves after its high end.
    let mut events: Vec<(u32, u32, bool)> = Vec::with_capacity(spans.len() * 2);
    for s in spans {
        events.push((s.lo, s.member, true));
        if s.hi + 1 < size {
            events.push((s.hi + 1, s.member, false));
        }
    }
    events.sort_unstable();
    let mut classes = Classes::default();
    let mut current = vec![0u64; members.div_ceil(64)];
    let mut sparse = Set::new();
    let mut table = vec![0u16; size as usize];
    let (mut at, mut next) = (0u32, 0usize);
    while at < size {
        while next < events.len() && events[next].0 == at {
            let (_, m, enters) = events[next];
            let bit = 1u64 << (m % 64);
            if enters {
                current[(m / 64) as usize] |= bit;
            } else {
                current[(m / 64) as usize] &= !bit;
            }
            next += 1;
        }
        let end = events.get(next).map_or(size, |e| e.0);
        sparse.clear();
        sparse.extend(
            current
                .iter()
                .enumerate()
                .filter(|(_, &w)| w != 0)
                .map(|(i, &w)| (i as u32, w)),
        );
        // Classes are at most the runs of values, so at most `size` (65,536): they fit.
        let class = classes.intern(&sparse) as u16;
        if classes.len() > limit {
            return None;
        }
        table[at as usize..end as usize].fill(class);
        at = end;
    }
    Some((table, classes))
}

/// The work of combining `a` and `b` (see [`MAX_WORK`]): a cell merges one set of each.
fn cost(a: &Classes, b: &Classes) -> Option<usize> {
    let words = |c: &Classes| c.sets.iter().map(Vec::len).sum::<usize>();
    a.len()
        .checked_mul(b.len())?
        .checked_add(b.len().checked_mul(words(a))?)?
        .checked_add(a.len().checked_mul(words(b))?)
}

/// Limits of one [`combine`].
#[derive(Clone, Copy)]
struct Limits {
    /// Bytes the table may take.
    bytes: usize,
    /// Classes the result may have.
    classes: usize,
    /// Classes a table of two-byte cells may have (65,536; tests lower it).
    narrow: usize,
}

/// Work one build may do in its later phases, tried pairings included, counted in set
/// words merged (a cell's intersection merges the words of both sets): bounds its time
/// whatever the memory budget.
const MAX_WORK: usize = 1 << 28;

/// Bitset words one build's phase-0 sweeps may scan (runs of values × words per set).
const MAX_SWEEP: usize = 1 << 26;

/// The classes of every pair `(x, y)` of `a`'s and `b`'s classes: the intersection of
/// their sets, passed through `fold` (which maps `a`'s members to the output's). `None`
/// when the table or its classes exceed `limits`.
fn combine(
    a: &Classes,
    b: &Classes,
    fold: Option<&Parts>,
    limits: Limits,
    work: &mut usize,
) -> Option<(Cross, Classes)> {
    let cells = a.len().checked_mul(b.len())?;
    // Two bytes a cell at least; four when the classes do not fit in two.
    if cells.checked_mul(2)? > limits.bytes {
        return None;
    }
    *work = work.checked_sub(cost(a, b)?)?;
    // Each row's set of `a`, spread out: a cell then costs one pass over `b`'s words.
    let words = b
        .sets
        .iter()
        .filter_map(|s| s.last())
        .map(|&(w, _)| w as usize + 1)
        .max()
        .unwrap_or(0);
    // Runs of rows are combined on the rayon pool, a wave of them at a time, each with
    // classes of its own; their classes are then numbered in row order, as one pass over
    // the rows would number them.
    let mut out = Classes::default();
    let mut table = Vec::with_capacity(cells);
    let runs: Vec<&[Set]> = a.sets.chunks(ROWS).collect();
    for (k, wave) in runs.chunks(WAVE).enumerate() {
        // Give up early when the classes seen so far, extrapolated over the rows left,
        // would pass twice the limit (only a choice of structure depends on it).
        let done = k * WAVE * ROWS;
        if limits.classes != usize::MAX
            && done >= a.len() / 8
            && out.len().saturating_mul(a.len()) > limits.classes.saturating_mul(2 * done)
        {
            return None;
        }
        let parts: Vec<Option<(Vec<u32>, Classes)>> = wave
            .par_iter()
            .map(|rows| combine_rows(rows, b, fold, words, limits.classes))
            .collect();
        for part in parts {
            let (cells, classes) = part?;
            let number: Vec<u32> = classes.sets.iter().map(|s| out.intern(s)).collect();
            if out.len() > limits.classes {
                return None;
            }
            table.extend(cells.iter().map(|&c| number[c as usize]));
        }
    }
    let cells = if out.len() <= limits.narrow {
        Cells::Narrow(table.into_iter().map(|c| c as u16).collect())
    } else if table.len() * 4 <= limits.bytes {
        Cells::Wide(table)
    } else {
        return None;
    };
    Some((
        Cross {
            cells,
            width: b.len() as u32,
        },
        out,
    ))
}

/// Rows of `a` a rayon task combines with `b` (see [`combine`]).
const ROWS: usize = 16;

/// Runs of rows combined between two checks of the classes found.
const WAVE: usize = 16;

/// The cells of `rows` (sets of `a`) against every set of `b`, numbered by classes of
/// their own; `None` past `max` classes.
fn combine_rows(
    rows: &[Set],
    b: &Classes,
    fold: Option<&Parts>,
    words: usize,
    max: usize,
) -> Option<(Vec<u32>, Classes)> {
    let mut out = Classes::default();
    let (mut both, mut folded) = (Set::new(), Set::new());
    let mut table = Vec::with_capacity(rows.len() * b.len());
    let mut row = vec![0u64; words];
    for x in rows {
        if x.is_empty() {
            let empty = out.intern(&Set::new());
            table.extend(std::iter::repeat_n(empty, b.len()));
            continue;
        }
        for &(w, bits) in x.iter().filter(|e| (e.0 as usize) < words) {
            row[w as usize] = bits;
        }
        for y in &b.sets {
            intersect(&row, y, &mut both);
            let class = match fold {
                Some(parts) => {
                    parts.fold(&both, &mut folded);
                    out.intern(&folded)
                }
                None => out.intern(&both),
            };
            if out.len() > max {
                return None;
            }
            table.push(class);
        }
        for &(w, _) in x.iter().filter(|e| (e.0 as usize) < words) {
            row[w as usize] = 0;
        }
    }
    Some((table, out))
}

/// An address field split into parts (see the module docs): per chunk half, the spans of
/// every part; part `i < n` belongs to filter `i`, later parts to `owner[i - n]`.
struct Parts {
    n: usize,
    high: Vec<Span>,
    low: Vec<Span>,
    owner: Vec<u32>,
}

impl Parts {
    /// The parts of dimension `dim` (0 remote, 1 local) of each filter.
    fn of(filters: &[Filter<u32>], dim: usize) -> Parts {
        let n = filters.len();
        let mut parts = Parts {
            n,
            high: Vec::new(),
            low: Vec::new(),
            owner: Vec::new(),
        };
        for (i, f) in filters.iter().enumerate() {
            let (lo, hi) = (f.bounds.lo[dim], f.bounds.hi[dim]);
            for (k, (h, l)) in split(lo, hi).into_iter().enumerate() {
                let member = if k == 0 {
                    i as u32
                } else {
                    parts.owner.push(i as u32);
                    (n + parts.owner.len() - 1) as u32
                };
                parts.high.push(Span {
                    member,
                    lo: h.0,
                    hi: h.1,
                });
                parts.low.push(Span {
                    member,
                    lo: l.0,
                    hi: l.1,
                });
            }
        }
        parts
    }

    fn members(&self) -> usize {
        self.n + self.owner.len()
    }

    /// Folds a set of parts into the set of their filters.
    fn fold(&self, set: &Set, out: &mut Set) {
        let n = self.n;
        out.clear();
        let mut extra: Vec<u32> = Vec::new();
        for &(w, bits) in set {
            let base = w as usize * 64;
            let keep = if base + 64 <= n {
                bits
            } else if base < n {
                bits & ((1u64 << (n - base)) - 1)
            } else {
                0
            };
            if keep != 0 {
                out.push((w, keep));
            }
            let mut rest = bits & !keep;
            while rest != 0 {
                let p = base + rest.trailing_zeros() as usize;
                extra.push(self.owner[p - n]);
                rest &= rest - 1;
            }
        }
        for f in extra {
            let (w, bit) = (f / 64, 1u64 << (f % 64));
            match out.binary_search_by_key(&w, |e| e.0) {
                Ok(i) => out[i].1 |= bit,
                Err(i) => out.insert(i, (w, bit)),
            }
        }
    }
}

/// An address range `lo..=hi` as products of a high-half range and a low-half range
/// (one, two or three).
fn split(lo: u32, hi: u32) -> Vec<((u32, u32), (u32, u32))> {
    let (lh, ll, hh, hl) = (lo >> 16, lo & 0xffff, hi >> 16, hi & 0xffff);
    if lh == hh {
        return vec![((lh, lh), (ll, hl))];
    }
    let mut out = Vec::with_capacity(3);
    // Whole high-half values lie between the partial ends.
    let mut first_whole = lh;
    if ll != 0 {
        out.push(((lh, lh), (ll, 0xffff)));
        first_whole = lh + 1;
    }
    let mut last_whole = hh;
    let partial_top = hl != 0xffff;
    if partial_top {
        last_whole = hh - 1;
    }
    if first_whole <= last_whole {
        out.push(((first_whole, last_whole), (0, 0xffff)));
    }
    if partial_top {
        out.push(((hh, hh), (0, hl)));
    }
    out
}

/// Phase 2 and 3 for the phase-1 classes `ones` (remote, local, ports, protocol): the
/// pairing (indexes into `ones`), its two tables and the final table with its classes,
/// for the pairing whose final table is smallest; `None` when none fits `bytes`.
type Rest = ([usize; 4], Cross, Cross, Cross, Classes);

fn phases_2_and_3(
    ones: [&Classes; 4],
    bytes: usize,
    narrow: usize,
    work: &mut usize,
) -> Option<Rest> {
    const WAYS: [[usize; 4]; 3] = [[0, 1, 2, 3], [0, 2, 1, 3], [0, 3, 1, 2]];
    let mut best: Option<([usize; 4], Cross, Classes, Cross, Classes)> = None;
    let mut best_cells = usize::MAX;
    for way in WAYS {
        // The pair with the smaller table first: its class count bounds the other's.
        let (p, q) =
            if ones[way[0]].len() * ones[way[1]].len() <= ones[way[2]].len() * ones[way[3]].len() {
                ((way[0], way[1]), (way[2], way[3]))
            } else {
                ((way[2], way[3]), (way[0], way[1]))
            };
        let unbounded = Limits {
            bytes,
            classes: usize::MAX,
            narrow,
        };
        let Some((px, pc)) = combine(ones[p.0], ones[p.1], None, unbounded, work) else {
            continue;
        };
        let spent = px.memory_usage();
        // The final table needs |pc| × |qc| cells of two bytes, and must beat the best.
        let cells = (bytes.saturating_sub(spent) / 2).min(best_cells.saturating_sub(1));
        let limits = Limits {
            bytes: bytes.saturating_sub(spent),
            classes: cells / pc.len().max(1),
            narrow,
        };
        let Some((qx, qc)) = combine(ones[q.0], ones[q.1], None, limits, work) else {
            continue;
        };
        let total = pc.len() * qc.len();
        if spent + qx.memory_usage() + total * 2 > bytes || total >= best_cells {
            continue;
        }
        best_cells = total;
        best = Some(([p.0, p.1, q.0, q.1], px, pc, qx, qc));
    }
    let (pairs, left, lc, right, rc) = best?;
    let spent = left.memory_usage() + right.memory_usage();
    let limits = Limits {
        bytes: bytes - spent,
        classes: usize::MAX,
        narrow,
    };
    let (last, classes) = combine(&lc, &rc, None, limits, work)?;
    Some((pairs, left, right, last, classes))
}

/// Builds the tables for `filters` (rank order), or `None` when they would take more
/// than `budget` bytes: with the product tail where it fits (when `product`), else with
/// the split tail.
pub(crate) fn build(filters: &[Filter<u32>], budget: usize, product: bool) -> Option<Rfc> {
    build_with(filters, budget, 1 << 16, product)
}

/// [`build`], with two-byte cells only for tables of at most `narrow` classes, trying the
/// product tail first only if `product` (else the split tail alone).
fn build_with(filters: &[Filter<u32>], budget: usize, narrow: usize, product: bool) -> Option<Rfc> {
    let n = filters.len();
    // Phase 0 tables: six of 65,536 two-byte entries and one of 256.
    let mut budget = budget.checked_sub(6 * 65_536 * 2 + 256 * 2)?;
    let remote = Parts::of(filters, 0);
    let local = Parts::of(filters, 1);
    // Seven sweeps, each over at most two runs of values per span, each run scanning a
    // bitset over the members.
    let sweep = |spans: usize, members: usize| (2 * spans + 1) * members.div_ceil(64);
    let sweeps = 2 * sweep(remote.high.len(), remote.members())
        + 2 * sweep(local.high.len(), local.members())
        + 3 * sweep(n, n);
    if sweeps > MAX_SWEEP {
        return None;
    }
    let mut work = MAX_WORK;
    let spans = |dim: usize| -> Vec<Span> {
        filters
            .iter()
            .enumerate()
            .map(|(i, f)| Span {
                member: i as u32,
                lo: f.bounds.lo[dim],
                hi: f.bounds.hi[dim],
            })
            .collect()
    };
    // Each pair of chunks makes a phase-1 table of two-byte cells: the second chunk of a
    // pair gives up as soon as its classes would make the tables so far pass the budget.
    // Phase 1 may take a quarter of the work: a set whose addresses alone cost more than
    // that has no room left for phases 2 and 3.
    let mut cells = budget / 2;
    let mut phase1_work = MAX_WORK / 4;
    let mut pair = |a: &[Span], b: &[Span], members: usize| {
        let (ta, ca) = chunk(a, 65_536, members, cells)?;
        let (tb, cb) = chunk(b, 65_536, members, cells / ca.len().max(1))?;
        cells -= ca.len() * cb.len();
        phase1_work = phase1_work.checked_sub(cost(&ca, &cb)?)?;
        Some(((ta, ca), (tb, cb)))
    };
    let ((t0, c0), (t1, c1)) = pair(&remote.high, &remote.low, remote.members())?;
    let ((t2, c2), (t3, c3)) = pair(&local.high, &local.low, local.members())?;
    let ((t4, c4), (t5, c5)) = pair(&spans(2), &spans(3), n)?;
    let (t6, c6) = chunk(&spans(4), 256, n, usize::MAX)?;

    let mut phase1 = |a: &Classes, b: &Classes, fold: Option<&Parts>| {
        let limits = Limits {
            bytes: budget,
            classes: usize::MAX,
            narrow,
        };
        let (x, c) = combine(a, b, fold, limits, &mut work)?;
        budget -= x.memory_usage();
        Some((x, c))
    };
    let (remote_x, r) = phase1(&c0, &c1, Some(&remote))?;
    let (local_x, l) = phase1(&c2, &c3, Some(&local))?;
    let (ports_x, p) = phase1(&c4, &c5, None)?;
    let ones = [&r, &l, &p, &c6];
    let product = product
        .then(|| phases_2_and_3(ones, budget, narrow, &mut work))
        .flatten();
    let tail = match product {
        Some((pairs, left, right, last, classes)) => {
            budget -= left.memory_usage() + right.memory_usage() + last.memory_usage();
            let (starts, ranks) = lists(&classes, |i| filters[i].rank);
            budget.checked_sub((starts.len() + ranks.len()) * std::mem::size_of::<u32>())?;
            Tail::Product {
                pairs,
                left,
                right,
                last,
                starts,
                ranks,
            }
        }
        None => split_tail(filters, ones, budget, narrow)?,
    };
    Some(Rfc {
        chunk: [t0, t1, t2, t3, t4, t5].map(whole),
        proto: whole(t6),
        remote: remote_x,
        local: local_x,
        ports: ports_x,
        tail,
        min: filters.iter().map(|f| f.rank).min().unwrap_or(u32::MAX),
        filters: n,
    })
}

/// A phase-0 table of `N` entries as a whole array. Invariant: [`chunk`] fills exactly
/// the size it is given, 65,536 or 256 entries, as its caller asks for `N`.
fn whole<const N: usize>(table: Vec<u16>) -> Box<[u16; N]> {
    match table.into_boxed_slice().try_into() {
        Ok(t) => t,
        Err(t) => unreachable!("a phase-0 table of {} entries, not {N}", t.len()),
    }
}

/// Each class's members as `f(member)`, ascending by member: the lists of the classes
/// one after another, and where each starts (one more entry closes the last).
fn lists(classes: &Classes, f: impl Fn(usize) -> u32) -> (Vec<u32>, Vec<u32>) {
    let mut starts = Vec::with_capacity(classes.len() + 1);
    let mut items = Vec::new();
    starts.push(0);
    for set in &classes.sets {
        for &(w, word) in set {
            let mut bits = word;
            while bits != 0 {
                items.push(f(w as usize * 64 + bits.trailing_zeros() as usize));
                bits &= bits - 1;
            }
        }
        starts.push(items.len() as u32);
    }
    (starts, items)
}

/// Work the phase 2 of a split tail may do (see [`MAX_WORK`]): one pairing only, and no
/// phase 3.
const SPLIT_WORK: usize = 1 << 30;

/// Longest mean address list a split tail may have: a lookup scans its packet's list up
/// to the first filter whose service bit is set.
const SPLIT_MAX_MEAN_LIST: usize = 64;

/// The split tail (see [`Tail::Split`]) for the phase-1 classes `ones` (remote, local,
/// ports, protocol), or `None` when it would not fit `bytes` or its lists are long.
fn split_tail(
    filters: &[Filter<u32>],
    ones: [&Classes; 4],
    bytes: usize,
    narrow: usize,
) -> Option<Tail> {
    use std::mem::size_of;
    let n = filters.len();
    let words = n.div_ceil(64);
    let mut work = SPLIT_WORK;
    let mut pair = |a: &Classes, b: &Classes, bytes: usize| {
        let limits = Limits {
            bytes,
            classes: usize::MAX,
            narrow,
        };
        combine(a, b, None, limits, &mut work)
    };
    let (service, sc) = pair(ones[2], ones[3], bytes)?;
    let mut bytes = bytes.checked_sub(service.memory_usage())?;
    bytes = bytes.checked_sub(sc.len().checked_mul(words * size_of::<u64>())?)?;
    bytes = bytes.checked_sub(n * size_of::<u32>())?;
    let (address, ac) = pair(ones[0], ones[1], bytes)?;
    bytes = bytes.checked_sub(address.memory_usage())?;
    let entries: usize = ac
        .sets
        .iter()
        .flatten()
        .map(|&(_, w)| w.count_ones() as usize)
        .sum();
    if entries > SPLIT_MAX_MEAN_LIST * ac.len() {
        return None;
    }
    bytes.checked_sub((entries + ac.len() + 1) * size_of::<u32>())?;
    let (starts, positions) = lists(&ac, |i| i as u32);
    let mut bits = vec![0u64; sc.len() * words];
    for (c, set) in sc.sets.iter().enumerate() {
        for &(w, word) in set {
            bits[c * words + w as usize] = word;
        }
    }
    Some(Tail::Split {
        address,
        service,
        starts,
        positions,
        bits,
        words,
        ranks: filters.iter().map(|f| f.rank).collect(),
    })
}

#[cfg(test)]
mod tests;
