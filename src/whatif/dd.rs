//! Interval decision diagrams: sets of packet headers as reduced, shared DAGs over the
//! five header fields, for the header-space diff and lint.
//!
//! A node tests one field (in the fixed order protocol, destination port, source port,
//! remote address, local address) and splits its whole domain into intervals, each leading
//! to a child that tests a later field or to a terminal. Nodes are hash-consed and reduced
//! (a node never has one child for all of its domain, and neighbouring intervals lead to
//! different children), so every set has exactly one diagram: equality is a comparison of
//! ids, emptiness a comparison with [`FALSE`]. This is a binary decision diagram whose
//! variables are whole fields and whose edges are intervals: the per-field equivalence
//! classes of the rules, kept only where they matter.
//!
//! A rule is a product of one interval set per field, a chain of at most five nodes. The
//! union of rules that each narrow a different field stays one node per field (the box
//! splitting this replaced cut such unions into (rules per field)^fields pieces). Every
//! operation stops with [`Limit`] once the diagram holds [`Dd::limit`] nodes, so no input
//! runs unbounded.

use std::collections::BTreeMap;
use std::rc::Rc;

use rustc_hash::FxHashMap;

/// Number of fields.
pub(crate) const FIELDS: usize = 5;
/// Field order (indexes into a [`Cube`]).
pub(crate) const PROTO: usize = 0;
/// Destination port (ICMP: code).
pub(crate) const DPORT: usize = 1;
/// Source port (ICMP: type).
pub(crate) const SPORT: usize = 2;
/// Remote address.
pub(crate) const REMOTE: usize = 3;
/// Local address.
pub(crate) const LOCAL: usize = 4;

/// A node, by index.
pub(crate) type Id = u32;
/// The empty set.
pub(crate) const FALSE: Id = 0;
/// Every header.
pub(crate) const TRUE: Id = 1;

/// Inclusive intervals, sorted and disjoint.
pub(crate) type Set = Vec<(u128, u128)>;

/// One interval set per field: a product of field sets.
pub(crate) type Cube = [Set; FIELDS];

/// The diagram reached its node limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limit;

#[derive(Clone, PartialEq, Eq, Hash)]
struct Node {
    field: u8,
    /// `(low end, child)`, sorted; the first low end is 0; neighbours differ in child.
    /// Shared, so that an operation reads a node's edges while the store grows.
    edges: Rc<[(u128, Id)]>,
}

fn hash(field: u8, edges: &[(u128, Id)]) -> u64 {
    use std::hash::BuildHasher;
    rustc_hash::FxBuildHasher.hash_one((field, edges))
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Op {
    And,
    Or,
    AndNot,
}

/// A store of diagrams over one address family's header fields.
pub(crate) struct Dd {
    /// Largest value of each field.
    pub max: [u128; FIELDS],
    /// Node count at which operations stop with [`Limit`].
    pub limit: usize,
    nodes: Vec<Node>,
    /// Each node's hash.
    hashes: Vec<u64>,
    /// Node ids by their node's hash (each node stored once, in `nodes`).
    unique: hashbrown::HashTable<Id>,
    cache: FxHashMap<(Op, Id, Id), Id>,
}

impl Dd {
    /// A store for headers whose addresses go up to `addr_max`.
    pub(crate) fn new(addr_max: u128, limit: usize) -> Dd {
        let terminal = |field| Node {
            field,
            edges: Rc::from([]),
        };
        Dd {
            max: [255, 65535, 65535, addr_max, addr_max],
            limit,
            // Terminals sit past the last field.
            nodes: vec![terminal(FIELDS as u8), terminal(FIELDS as u8 + 1)],
            hashes: vec![0, 0],
            unique: hashbrown::HashTable::new(),
            cache: FxHashMap::default(),
        }
    }

    /// Nodes held.
    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    fn field(&self, id: Id) -> usize {
        if id <= TRUE {
            FIELDS
        } else {
            usize::from(self.nodes[id as usize].field)
        }
    }

    /// The node testing `field` with these edges (already merged), reduced and shared.
    fn mk(&mut self, field: usize, edges: Vec<(u128, Id)>) -> Result<Id, Limit> {
        if edges.len() == 1 {
            return Ok(edges[0].1);
        }
        let field = field as u8;
        let h = hash(field, &edges);
        let nodes = &self.nodes;
        let same = |&id: &Id| {
            let n = &nodes[id as usize];
            n.field == field && *n.edges == *edges
        };
        if let Some(&id) = self.unique.find(h, same) {
            return Ok(id);
        }
        if self.nodes.len() >= self.limit {
            return Err(Limit);
        }
        let id = self.nodes.len() as Id;
        self.nodes.push(Node {
            field,
            edges: Rc::from(edges),
        });
        self.hashes.push(h);
        let hashes = &self.hashes;
        self.unique.insert_unique(h, id, |&i| hashes[i as usize]);
        Ok(id)
    }

    /// A point to go back to with [`Dd::rollback`].
    pub(crate) fn checkpoint(&self) -> usize {
        self.nodes.len()
    }

    /// Forgets every node made since `checkpoint` (their ids must no longer be used), and
    /// the cached operations that involve them: what one group set computed is garbage
    /// once its answer is read out.
    pub(crate) fn rollback(&mut self, checkpoint: usize) {
        if checkpoint >= self.nodes.len() {
            return;
        }
        for id in (checkpoint..self.nodes.len()).rev() {
            let h = self.hashes[id];
            if let Ok(e) = self.unique.find_entry(h, |&i| i as usize == id) {
                e.remove();
            }
        }
        self.nodes.truncate(checkpoint);
        self.hashes.truncate(checkpoint);
        let keep = checkpoint as Id;
        self.cache
            .retain(|&(_, a, b), r| a < keep && b < keep && *r < keep);
    }

    /// The set of headers whose `field` lies in `set` and whose later fields lead to
    /// `inside`; `outside` elsewhere on the field.
    fn split(
        &mut self,
        field: usize,
        set: &[(u128, u128)],
        inside: Id,
        outside: Id,
    ) -> Result<Id, Limit> {
        let mut edges: Vec<(u128, Id)> = Vec::with_capacity(2 * set.len() + 1);
        let mut push = |lo: u128, child: Id| match edges.last() {
            Some(&(_, c)) if c == child => {}
            _ => edges.push((lo, child)),
        };
        let mut at = Some(0u128);
        for &(lo, hi) in set {
            let Some(from) = at else { break };
            if lo > from {
                push(from, outside);
            }
            push(lo.max(from), inside);
            at = hi.checked_add(1).filter(|&n| n <= self.max[field]);
        }
        if let Some(from) = at {
            push(from, outside);
        }
        if edges.is_empty() {
            edges.push((0, outside));
        }
        self.mk(field, edges)
    }

    /// The product of the field sets (an empty field set gives the empty set).
    pub(crate) fn cube(&mut self, cube: &Cube) -> Result<Id, Limit> {
        if cube.iter().any(|s| s.is_empty()) {
            return Ok(FALSE);
        }
        let mut node = TRUE;
        for f in (0..FIELDS).rev() {
            node = self.split(f, &cube[f], node, FALSE)?;
        }
        Ok(node)
    }

    /// `a ∧ b`.
    pub(crate) fn and(&mut self, a: Id, b: Id) -> Result<Id, Limit> {
        self.apply(Op::And, a, b)
    }

    /// `a ∨ b`.
    pub(crate) fn or(&mut self, a: Id, b: Id) -> Result<Id, Limit> {
        self.apply(Op::Or, a, b)
    }

    /// `a ∧ ¬b`.
    pub(crate) fn and_not(&mut self, a: Id, b: Id) -> Result<Id, Limit> {
        self.apply(Op::AndNot, a, b)
    }

    /// The union of many sets, combined pairwise (balanced, so each node is rebuilt a
    /// logarithmic number of times).
    pub(crate) fn or_all(&mut self, mut sets: Vec<Id>) -> Result<Id, Limit> {
        sets.retain(|&s| s != FALSE);
        while sets.len() > 1 {
            let mut next = Vec::with_capacity(sets.len().div_ceil(2));
            for pair in sets.chunks(2) {
                next.push(match pair {
                    [a, b] => self.or(*a, *b)?,
                    [a] => *a,
                    _ => FALSE,
                });
            }
            sets = next;
        }
        Ok(sets.first().copied().unwrap_or(FALSE))
    }

    fn apply(&mut self, op: Op, a: Id, b: Id) -> Result<Id, Limit> {
        match op {
            Op::And => {
                if a == FALSE || b == FALSE {
                    return Ok(FALSE);
                }
                if a == TRUE || a == b {
                    return Ok(b);
                }
                if b == TRUE {
                    return Ok(a);
                }
            }
            Op::Or => {
                if a == TRUE || b == TRUE {
                    return Ok(TRUE);
                }
                if a == FALSE || a == b {
                    return Ok(b);
                }
                if b == FALSE {
                    return Ok(a);
                }
            }
            Op::AndNot => {
                if a == FALSE || b == TRUE || a == b {
                    return Ok(FALSE);
                }
                if b == FALSE {
                    return Ok(a);
                }
            }
        }
        let (a, b) = match op {
            Op::And | Op::Or if a > b => (b, a),
            _ => (a, b),
        };
        if let Some(&r) = self.cache.get(&(op, a, b)) {
            return Ok(r);
        }
        let (fa, fb) = (self.field(a), self.field(b));
        let f = fa.min(fb);
        // A node of a later field is one edge over this field's whole domain.
        let (lift_a, lift_b) = ([(0u128, a)], [(0u128, b)]);
        let (node_a, node_b) = (
            (fa == f).then(|| self.nodes[a as usize].edges.clone()),
            (fb == f).then(|| self.nodes[b as usize].edges.clone()),
        );
        let ea: &[(u128, Id)] = node_a.as_deref().unwrap_or(&lift_a);
        let eb: &[(u128, Id)] = node_b.as_deref().unwrap_or(&lift_b);
        let mut edges: Vec<(u128, Id)> = Vec::with_capacity(ea.len() + eb.len());
        let (mut i, mut j) = (0, 0);
        let mut lo = 0u128;
        loop {
            let child = self.apply(op, ea[i].1, eb[j].1)?;
            if edges.last().is_none_or(|&(_, c)| c != child) {
                edges.push((lo, child));
            }
            let na = ea.get(i + 1).map(|e| e.0);
            let nb = eb.get(j + 1).map(|e| e.0);
            lo = match (na, nb) {
                (None, None) => break,
                (Some(x), None) => {
                    i += 1;
                    x
                }
                (None, Some(y)) => {
                    j += 1;
                    y
                }
                (Some(x), Some(y)) => {
                    if x <= y {
                        i += 1;
                    }
                    if y <= x {
                        j += 1;
                    }
                    x.min(y)
                }
            };
        }
        let r = self.mk(f, edges)?;
        if self.cache.len() > 4 << 20 {
            self.cache.clear();
        }
        self.cache.insert((op, a, b), r);
        Ok(r)
    }

    /// Whether two cubes share a header (no diagram needed).
    pub(crate) fn cubes_meet(a: &Cube, b: &Cube) -> bool {
        (0..FIELDS).all(|f| sets_meet(&a[f], &b[f]))
    }

    /// The set as products of field sets (disjoint), at most `max` of them; fields a path
    /// does not test are whole. In a stable order (by each field's lowest value).
    pub(crate) fn products(&self, root: Id, max: usize) -> Result<Vec<Cube>, Limit> {
        let mut memo: FxHashMap<Id, Rc<Vec<Cube>>> = FxHashMap::default();
        let out = self.products_of(root, max, &mut memo)?;
        Ok(out.as_ref().clone())
    }

    fn full(&self) -> Cube {
        std::array::from_fn(|f| vec![(0, self.max[f])])
    }

    fn products_of(
        &self,
        id: Id,
        max: usize,
        memo: &mut FxHashMap<Id, Rc<Vec<Cube>>>,
    ) -> Result<Rc<Vec<Cube>>, Limit> {
        if id == FALSE {
            return Ok(Rc::new(Vec::new()));
        }
        if id == TRUE {
            return Ok(Rc::new(vec![self.full()]));
        }
        if let Some(r) = memo.get(&id) {
            return Ok(r.clone());
        }
        let node = &self.nodes[id as usize];
        let f = usize::from(node.field);
        // Intervals of this field by child, in order of first appearance.
        let mut by_child: BTreeMap<Id, Set> = BTreeMap::new();
        let mut order: Vec<Id> = Vec::new();
        for (k, &(lo, child)) in node.edges.iter().enumerate() {
            if child == FALSE {
                continue;
            }
            let hi = node.edges.get(k + 1).map_or(self.max[f], |e| e.0 - 1);
            let e = by_child.entry(child).or_default();
            if e.is_empty() {
                order.push(child);
            }
            e.push((lo, hi));
        }
        let mut out = Vec::new();
        for child in order {
            let sub = self.products_of(child, max, memo)?;
            for c in sub.iter() {
                if out.len() >= max {
                    return Err(Limit);
                }
                let mut c = c.clone();
                c[f] = by_child[&child].clone();
                out.push(c);
            }
        }
        let out = Rc::new(out);
        memo.insert(id, out.clone());
        Ok(out)
    }
}

/// Whether two interval sets share a value.
pub(crate) fn sets_meet(a: &[(u128, u128)], b: &[(u128, u128)]) -> bool {
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i].1 < b[j].0 {
            i += 1;
        } else if b[j].1 < a[i].0 {
            j += 1;
        } else {
            return true;
        }
    }
    false
}

/// The union of two normalized sets, normalized, in one pass.
pub(crate) fn union(a: &[(u128, u128)], b: &[(u128, u128)]) -> Set {
    let mut out: Set = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let next = if j >= b.len() || (i < a.len() && a[i].0 <= b[j].0) {
            i += 1;
            a[i - 1]
        } else {
            j += 1;
            b[j - 1]
        };
        match out.last_mut() {
            Some(last) if last.1.checked_add(1).is_none_or(|n| n >= next.0) => {
                last.1 = last.1.max(next.1)
            }
            _ => out.push(next),
        }
    }
    out
}

/// Sorts, merges overlapping and adjacent intervals.
pub(crate) fn normalize(mut set: Set) -> Set {
    set.sort_unstable();
    let mut out: Set = Vec::with_capacity(set.len());
    for (lo, hi) in set {
        match out.last_mut() {
            Some(last) if last.1.checked_add(1).is_none_or(|n| n >= lo) => last.1 = last.1.max(hi),
            _ => out.push((lo, hi)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute(dd: &Dd, id: Id, point: [u128; FIELDS]) -> bool {
        let mut at = id;
        while at > TRUE {
            let node = &dd.nodes[at as usize];
            let v = point[usize::from(node.field)];
            let k = node.edges.partition_point(|e| e.0 <= v) - 1;
            at = node.edges[k].1;
        }
        at == TRUE
    }

    fn in_cube(c: &Cube, p: [u128; FIELDS]) -> bool {
        (0..FIELDS).all(|f| c[f].iter().any(|&(lo, hi)| lo <= p[f] && p[f] <= hi))
    }

    fn small() -> Dd {
        let mut dd = Dd::new(7, 1 << 20);
        dd.max = [3, 7, 3, 7, 3];
        dd
    }

    /// Every operation agrees with the same operation on explicit point sets, and
    /// products cover exactly the set, disjointly.
    #[test]
    fn operations_equal_point_sets() {
        let mut dd = small();
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut rnd = |n: u128| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            u128::from(seed) % n
        };
        let points: Vec<[u128; FIELDS]> = (0..4u128)
            .flat_map(|a| (0..8u128).map(move |b| [a, b, (a + b) % 4, (b * 3) % 8, b % 4]))
            .chain((0..60).map(|i| [i % 4, (i / 4) % 8, (i / 3) % 4, (i * 7) % 8, (i / 5) % 4]))
            .collect();
        for _ in 0..200 {
            let mut cubes = Vec::new();
            for _ in 0..4 {
                let c: Cube = std::array::from_fn(|f| {
                    let m = dd.max[f] + 1;
                    let a = rnd(m);
                    let b = rnd(m);
                    let mut s = vec![(a.min(b), a.max(b))];
                    if rnd(3) == 0 {
                        let x = rnd(m);
                        s.push((x, x));
                    }
                    normalize(s)
                });
                cubes.push(c);
            }
            let ids: Vec<Id> = cubes.iter().map(|c| dd.cube(c).unwrap()).collect();
            let u = dd.or_all(ids.clone()).unwrap();
            let x = dd.and(ids[0], ids[1]).unwrap();
            let d = dd.and_not(u, ids[2]).unwrap();
            for p in &points {
                let m: Vec<bool> = cubes.iter().map(|c| in_cube(c, *p)).collect();
                assert_eq!(brute(&dd, ids[0], *p), m[0]);
                assert_eq!(brute(&dd, u, *p), m.iter().any(|&b| b));
                assert_eq!(brute(&dd, x, *p), m[0] && m[1]);
                assert_eq!(brute(&dd, d, *p), m.iter().any(|&b| b) && !m[2]);
                let prods = dd.products(d, 1 << 20).unwrap();
                let hits = prods.iter().filter(|c| in_cube(c, *p)).count();
                assert_eq!(hits, usize::from(brute(&dd, d, *p)));
            }
        }
    }

    #[test]
    fn slabs_of_different_fields_stay_small() {
        // k slabs per field (the shape that made box splitting explode): the complement
        // of their union is one product.
        let mut dd = Dd::new(u128::from(u32::MAX), 1 << 20);
        let mut slabs = Vec::new();
        for i in 0..200u128 {
            for f in [DPORT, SPORT, REMOTE, LOCAL] {
                let mut c: Cube = std::array::from_fn(|g| vec![(0, dd.max[g])]);
                c[f] = vec![(100 + 50 * i, 100 + 50 * i)];
                slabs.push(dd.cube(&c).unwrap());
            }
        }
        let n = slabs.len();
        let u = dd.or_all(slabs).unwrap();
        let rest = dd.and_not(TRUE, u).unwrap();
        assert_eq!(dd.products(rest, 10).unwrap().len(), 1);
        // Linear in the slabs (a few nodes each: the fields' chains are shared), where box
        // splitting made 200^4 pieces.
        assert!(dd.len() < 4 * n, "{} nodes for {n} slabs", dd.len());
    }

    #[test]
    fn the_node_limit_stops_an_operation() {
        let mut dd = Dd::new(u128::from(u32::MAX), 40);
        let mut r = Ok(FALSE);
        for i in 0..100u128 {
            let mut c: Cube = std::array::from_fn(|g| vec![(0, dd.max[g])]);
            c[DPORT] = vec![(i, i)];
            c[REMOTE] = vec![(i * 7, i * 7)];
            let Ok(id) = dd.cube(&c) else {
                r = Err(Limit);
                break;
            };
            r = r.and_then(|acc| dd.or(acc, id));
            if r.is_err() {
                break;
            }
        }
        assert_eq!(r, Err(Limit));
    }
}
