//! Builds the decision tree of [`crate::index::tree`] from filters in rank order
//! (HyperSplit-style: binary cuts on one field at a time, chosen to balance the rules on
//! either side, until a region holds at most `leaf_size` rules). The binary cuts are then
//! grouped into nodes of [`LEVELS`] levels each ([`group`]).
//!
//! A tree of many filters that each lie in one block of an address field (addresses that
//! share their top 11 to 16 bits) starts from a table of those blocks (see
//! `index::tree`): the build then makes one subtree per block, over the block's region,
//! and groups all of them at once.
//!
//! Two prunings keep trees small: a region's list stops at the first filter that covers the
//! whole region (nothing after it can ever win there), and a cut that reduces neither side is
//! never made. The first pruning is only sound while the covering filter lives, so the tree
//! records every filter that pruned something ([`Tree::covers`]); removing one of those
//! needs a tombstone and a patch tree ([`patch`]), removing any other filter only a
//! tombstone.

use std::sync::Arc;

use std::mem::size_of;

use super::{Blocks, Forest, Leaves, Node, Packed, Tree, CUTS, FANOUT, LEVELS};
use crate::index::boxes::{Bounds, Filter, Word, DIMS};

/// How trees are built (from [`crate::compile::Config`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Shape {
    /// A region holding this many filters or fewer becomes a leaf.
    pub leaf_size: usize,
    /// Fewest filters for which a tree may start from blocks (see [`Tree::blocks`]).
    pub blocks_min_filters: usize,
}

/// Marks a child reference as a leaf while the tree is built (the rest is the leaf's index).
const LEAF: u32 = 1 << 31;

/// Splits filters (in rank order) by whether each address field is specific (a prefix of at
/// least half the address width: /16 for IPv4, /64 for IPv6) and builds one tree per
/// non-empty part.
///
/// Small sets also try one tree over everything: a packet then walks one tree instead of up
/// to four. It is kept when the cuts replicate filters little (at most
/// [`SINGLE_TREE_REPLICATION`] leaf entries per filter) and its estimated lookup cost
/// ([`expected_cost`]) is lower than the forest's.
///
/// `exact(rank)` says whether a filter's box is exactly the headers it matches; a filter
/// whose box over-approximates it (a group peer: the box spans the members' addresses, the
/// filter matches only the members) never prunes what follows it.
pub(crate) fn build_forest<W: Word>(
    filters: Vec<Filter<W>>,
    shape: Shape,
    exact: &dyn Fn(u32) -> bool,
) -> Forest<W> {
    let single = (filters.len() <= SINGLE_TREE_MAX)
        .then(|| {
            let budget = SINGLE_TREE_REPLICATION * filters.len().max(1);
            build_within(filters.clone(), shape, exact, budget)
        })
        .flatten();
    let forest = partitioned(filters, shape, exact);
    match single {
        Some(t) if cost(&t) < expected_cost(&forest) => Forest {
            trees: vec![Arc::new(t)],
        },
        _ => forest,
    }
}

/// Estimated steps of one lookup in a tree: the depth of a balanced tree with its leaves
/// (for a tree from blocks: one step for the table, then a subtree with its share of the
/// leaves), plus the average leaf run.
fn cost<W: Word>(t: &Tree<W>) -> f64 {
    let leaves = t.leaf_count().max(1) as f64;
    let depth = match &t.blocks {
        None => leaves.log2(),
        Some(b) => {
            // Every empty block starts at leaf 0, which is empty (reference `inner`).
            let held = b.roots.iter().filter(|&&r| r != t.inner).count().max(1);
            1.0 + (leaves / held as f64).max(1.0).log2()
        }
    };
    depth + t.leaves.entries() as f64 / leaves
}

/// Estimated steps of one lookup in a forest, assuming packets hit the filters uniformly
/// (as ClassBench traces do): a tree is visited by the packets whose best match ranks after
/// the tree's smallest rank.
fn expected_cost<W: Word>(f: &Forest<W>) -> f64 {
    let n = f.len().max(1) as f64;
    let filters: Vec<Vec<Packed<W>>> = f.trees.iter().map(|t| t.leaves.filters()).collect();
    f.trees
        .iter()
        .map(|t| {
            let later = filters
                .iter()
                .map(|u| u.iter().filter(|x| x.rank >= t.min_rank()).count())
                .sum::<usize>();
            later as f64 / n * cost(t)
        })
        .sum()
}

/// One tree per address-field shape (see [`build_forest`]).
fn partitioned<W: Word>(
    filters: Vec<Filter<W>>,
    shape: Shape,
    exact: &dyn Fn(u32) -> bool,
) -> Forest<W> {
    let small = |d: usize, f: &Filter<W>| {
        f.bounds.hi[d].to_u128() - f.bounds.lo[d].to_u128() < 1u128 << (W::ADDR_BITS / 2)
    };
    let mut parts: [Vec<Filter<W>>; 4] = Default::default();
    for f in filters {
        let key = usize::from(small(0, &f)) | usize::from(small(1, &f)) << 1;
        parts[key].push(f);
    }
    let mut trees: Vec<Arc<Tree<W>>> = parts
        .into_iter()
        .filter(|p| !p.is_empty())
        .map(|p| Arc::new(build(p, shape, exact)))
        .collect();
    trees.sort_by_key(|t| t.min_rank());
    Forest { trees }
}

/// Dead covers a patch handles; beyond this the filter scan costs more than a rebuild.
const MAX_DEAD_COVERS: usize = 64;

/// The forest after revokes of filters that pruned regions (`dead(rank)` says which ranks
/// are revoked): the original trees, shared, plus one patch tree holding every live filter
/// that a dead cover may have pruned — those ranked after it whose box meets its box.
/// Returns `None` when the patch would exceed `max` filters (a rebuild is then cheaper).
///
/// Why this is exact: if the best live filter `g` for a packet is missing from the packet's
/// leaf in an original tree, some filter `c` ranked before `g` covered a region holding the
/// packet and pruned `g` there. Were `c` alive, it would contain the packet and beat `g`;
/// so `c` is dead, `g` meets `c`'s box (both hold the packet) and is ranked after it, and
/// the patch holds `g`. The patch tree is built from live filters only, so its own
/// prunings are sound until one of its covers is revoked, which rebuilds the patch again.
pub(crate) fn patch<W: Word>(
    forest: &Forest<W>,
    dead: impl Fn(u32) -> bool,
    exact: &dyn Fn(u32) -> bool,
    shape: Shape,
    max: usize,
) -> Option<Forest<W>> {
    let mut trees: Vec<Arc<Tree<W>>> = forest.trees.iter().filter(|t| !t.patch).cloned().collect();
    let dead_covers: Vec<(&Tree<W>, u32)> = trees
        .iter()
        .flat_map(|t| t.covers.iter().map(move |&rank| (&**t, rank)))
        .filter(|&(_, rank)| dead(rank))
        .collect();
    if dead_covers.len() > MAX_DEAD_COVERS {
        return None;
    }
    // A cover always sits in the leaves of the regions it covers.
    let dead_covers: Vec<(Bounds<W>, u32)> = dead_covers
        .into_iter()
        .filter_map(|(t, rank)| t.leaves.find(rank))
        .map(|f| (f.bounds(), f.rank))
        .collect();
    if !dead_covers.is_empty() {
        let mut picked: Vec<Filter<W>> = Vec::new();
        // Copies of one filter in several leaves are picked once each, then deduplicated.
        for f in trees.iter().flat_map(|t| t.leaves.copies()) {
            if dead(f.rank) {
                continue;
            }
            let bounds = f.bounds();
            if dead_covers
                .iter()
                .any(|(c, r)| f.rank > *r && c.intersects(&bounds))
            {
                picked.push(Filter {
                    bounds,
                    rank: f.rank,
                });
            }
        }
        picked.sort_unstable_by_key(|f| f.rank);
        picked.dedup_by_key(|f| f.rank);
        if picked.len() > max {
            return None;
        }
        if !picked.is_empty() {
            let mut tree = build(picked, shape, exact);
            tree.patch = true;
            trees.push(Arc::new(tree));
            trees.sort_by_key(|t| t.min_rank());
        }
    }
    Some(Forest { trees })
}

/// Largest set for which one tree over everything is tried.
const SINGLE_TREE_MAX: usize = 4096;

/// Leaf entries per filter a single tree may hold before the partitioned forest wins.
const SINGLE_TREE_REPLICATION: usize = 6;

/// Where a finished subtree's reference is written.
#[derive(Clone, Copy)]
enum Slot {
    Root,
    /// The root of the subtree of a block (see [`Tree::blocks`]).
    Block(u32),
    Left(u32),
    Right(u32),
}

struct Task<W> {
    slot: Slot,
    items: Vec<u32>,
    region: Bounds<W>,
    depth: u32,
}

/// Deepest path allowed; a region this deep becomes a leaf whatever its size.
const MAX_DEPTH: u32 = 96;

/// Fewest distinct blocks the filters must fall in for a tree to start from blocks (or an
/// eighth of the filters, if fewer): fewer would save too few levels for the cache
/// footprint of the table of block roots.
const BLOCKS_MIN_DISTINCT: usize = 256;

/// Entries the table of block roots may have per filter (at most 65,536 in all): 16 bytes
/// a filter.
const BLOCKS_PER_FILTER: usize = 4;

/// The address field by whose blocks a tree of `filters` starts (see [`Tree::blocks`]),
/// with the number of top bits that make a block, if any (never below `min_filters`
/// filters): the field whose filters fall in the most distinct blocks, among those where
/// filters spanning several blocks add at most a quarter more entries.
fn block_dim<W: Word>(filters: &[Filter<W>], min_filters: usize) -> Option<(usize, u32)> {
    let n = filters.len();
    if n < min_filters.max(1) {
        return None;
    }
    let entries = (n * BLOCKS_PER_FILTER).min(1 << 16);
    let bits = usize::BITS - 1 - entries.leading_zeros();
    let min_distinct = BLOCKS_MIN_DISTINCT.min(n / 8).max(2);
    (0..2)
        .filter_map(|d| {
            let mut entries = 0usize;
            let mut blocks: Vec<usize> = Vec::with_capacity(n);
            for f in filters {
                let (a, b) = (f.bounds.lo[d].top(bits), f.bounds.hi[d].top(bits));
                entries += b - a + 1;
                blocks.push(a);
            }
            blocks.sort_unstable();
            blocks.dedup();
            (entries <= n + n / 4 && blocks.len() >= min_distinct).then_some((blocks.len(), d))
        })
        .max()
        .map(|(_, d)| (d, bits))
}

/// The tasks of a tree starting from blocks of field `dim` (its top `bits` bits): per block
/// holding filters, its filters (rank order) and its region.
fn block_tasks<W: Word>(filters: &[Filter<W>], dim: usize, bits: u32) -> Vec<Task<W>> {
    let mut pairs: Vec<(u32, u32)> = Vec::with_capacity(filters.len());
    for (i, f) in filters.iter().enumerate() {
        for b in f.bounds.lo[dim].top(bits)..=f.bounds.hi[dim].top(bits) {
            pairs.push((b as u32, i as u32));
        }
    }
    pairs.sort_unstable();
    let shift = W::ADDR_BITS - bits;
    pairs
        .chunk_by(|x, y| x.0 == y.0)
        .map(|run| {
            let block = run[0].0;
            let mut region = Bounds::full();
            region.lo[dim] = W::from_u128(u128::from(block) << shift);
            region.hi[dim] = W::from_u128(u128::from(block) << shift | ((1u128 << shift) - 1));
            Task {
                slot: Slot::Block(block),
                items: run.iter().map(|p| p.1).collect(),
                region,
                depth: 0,
            }
        })
        .collect()
}

/// Builds the tree. `filters` must be in rank order (ranks ascending); only filters whose
/// rank is `exact` prune (see [`build_forest`]).
pub(crate) fn build<W: Word>(
    filters: Vec<Filter<W>>,
    shape: Shape,
    exact: &dyn Fn(u32) -> bool,
) -> Tree<W> {
    match build_within(filters, shape, exact, usize::MAX) {
        Some(tree) => tree,
        // Invariant: with no budget the build never gives up.
        None => unreachable!("an unbounded build finished"),
    }
}

/// Builds the tree, giving up (`None`) as soon as its leaves hold more than `budget`
/// entries.
fn build_within<W: Word>(
    filters: Vec<Filter<W>>,
    shape: Shape,
    exact: &dyn Fn(u32) -> bool,
    budget: usize,
) -> Option<Tree<W>> {
    let mut nodes: Vec<Cut<W>> = Vec::new();
    let mut starts: Vec<u32> = Vec::new();
    let mut items: Vec<u32> = Vec::new();
    let mut root = LEAF;
    let mut covers = Vec::new();
    let dim = block_dim(&filters, shape.blocks_min_filters);
    let mut stack = match dim {
        // Blocks without filters start at an empty leaf; so does the unused root.
        Some((d, bits)) => {
            starts.push(0);
            let mut tasks = block_tasks(&filters, d, bits);
            tasks.reverse();
            tasks
        }
        None => vec![Task {
            slot: Slot::Root,
            items: (0..filters.len() as u32).collect(),
            region: Bounds::full(),
            depth: 0,
        }],
    };
    let mut block_roots = dim.map(|(_, bits)| vec![LEAF; 1 << bits]);
    while let Some(mut task) = stack.pop() {
        if let Some(cover) = prune(&filters, &mut task.items, &task.region, exact) {
            covers.push(cover);
        }
        let reference = match choose_cut(&filters, &task, shape.leaf_size) {
            None => {
                let leaf = starts.len() as u32;
                starts.push(items.len() as u32);
                items.extend_from_slice(&task.items);
                if items.len() > budget {
                    return None;
                }
                LEAF | leaf
            }
            Some((dim, threshold)) => {
                let node = nodes.len() as u32;
                nodes.push(Cut {
                    dim: dim as u8,
                    threshold,
                    children: [LEAF, LEAF],
                });
                let (left, right) = split(&filters, &task, dim, threshold);
                stack.push(right);
                stack.push(left);
                node
            }
        };
        match task.slot {
            Slot::Root => root = reference,
            Slot::Block(b) => {
                if let Some(roots) = &mut block_roots {
                    roots[b as usize] = reference;
                }
            }
            Slot::Left(n) => nodes[n as usize].children[0] = reference,
            Slot::Right(n) => nodes[n as usize].children[1] = reference,
        }
        // Fix up the slots of the children just pushed: they were created before the node's
        // index was known to them.
        if reference & LEAF == 0 {
            let len = stack.len();
            stack[len - 1].slot = Slot::Left(reference);
            stack[len - 2].slot = Slot::Right(reference);
        }
    }
    starts.push(items.len() as u32);
    let mut roots = vec![root];
    roots.extend(block_roots.iter().flatten());
    let (nodes, inner, references) = group(&nodes, &roots);
    let blocks = dim.map(|(dim, bits)| Blocks {
        dim,
        bits,
        roots: references[1..].into(),
    });
    let mut covers: Vec<u32> = covers.iter().map(|&i| filters[i as usize].rank).collect();
    covers.sort_unstable();
    covers.dedup();
    starts.shrink_to_fit();
    covers.shrink_to_fit();
    Some(Tree {
        nodes,
        inner,
        starts,
        leaves: leaves(&filters, items),
        root: references[0],
        blocks,
        covers,
        min_rank: filters.first().map_or(u32::MAX, |f| f.rank),
        len: filters.len(),
        patch: false,
    })
}

/// A binary cut as the build makes it: `key[dim] < threshold` goes to `children[0]`, else
/// `children[1]`; a child is a cut's index or `LEAF | leaf index`.
#[derive(Clone, Copy)]
struct Cut<W> {
    threshold: W,
    children: [u32; 2],
    dim: u8,
}

/// Groups binary cuts into the tree's nodes of [`LEVELS`] levels each, from `roots` (cut
/// references). Returns the nodes (the internal ones, then the one lanes at a leaf read),
/// their count and the roots' references; leaf `k` becomes reference `inner + k`.
fn group<W: Word>(cuts: &[Cut<W>], roots: &[u32]) -> (Vec<Node<W>>, u32, Vec<u32>) {
    // Number the cuts that start a node, in the order a depth-first walk from the roots,
    // in turn, reaches them.
    let mut heads: Vec<u32> = Vec::new();
    let mut number = vec![u32::MAX; cuts.len()];
    let mut todo: Vec<u32> = roots.iter().rev().copied().collect();
    while let Some(r) = todo.pop() {
        if r & LEAF != 0 || number[r as usize] != u32::MAX {
            continue;
        }
        number[r as usize] = heads.len() as u32;
        heads.push(r);
        // The references LEVELS levels below start the next nodes.
        let mut level = vec![r];
        for _ in 0..LEVELS {
            level = level
                .iter()
                .flat_map(|&c| match c & LEAF {
                    0 => cuts[c as usize].children,
                    _ => [c, c],
                })
                .collect();
        }
        level.dedup();
        todo.extend(level.iter().rev());
    }
    let inner = heads.len() as u32;
    let reference = |r: u32| match r & LEAF {
        0 => number[r as usize],
        _ => inner + (r & !LEAF),
    };
    let mut nodes: Vec<Node<W>> = Vec::with_capacity(heads.len() + 1);
    for &head in &heads {
        let mut node = Node {
            thresholds: [W::default(); CUTS],
            children: [0; FANOUT],
            dims: [0; CUTS],
        };
        // Slot j of the node holds reference at[j]; a leaf fills its slot with a cut every
        // key passes (threshold 0: to the right), and both children below it.
        let mut at = vec![head];
        for j in 0..CUTS {
            let r = at[j];
            let children = match r & LEAF {
                0 => {
                    let c = &cuts[r as usize];
                    node.dims[j] = c.dim;
                    node.thresholds[j] = c.threshold;
                    c.children
                }
                _ => [r, r],
            };
            at.extend(children);
        }
        for (child, &r) in node.children.iter_mut().zip(&at[CUTS..]) {
            *child = reference(r);
        }
        nodes.push(node);
    }
    nodes.push(Node {
        thresholds: [W::default(); CUTS],
        children: [inner; FANOUT],
        dims: [0; CUTS],
    });
    (nodes, inner, roots.iter().map(|&r| reference(r)).collect())
}

/// How much more memory leaf copies may take than positions (a ratio): a quarter more,
/// the price of contiguous leaf scans where cuts replicate filters (a third of them on
/// ipc1 10k); where they replicate almost nothing (the 100k sets), copies save memory.
const INLINE_MEMORY: (usize, usize) = (5, 4);

/// The leaves for leaf entries `items` (positions into `filters`): copies where they take
/// at most [`INLINE_MEMORY`] of what positions would, else positions into the filters laid
/// out in the order the leaves first reach them.
fn leaves<W: Word>(filters: &[Filter<W>], mut items: Vec<u32>) -> Leaves<W> {
    // Number the filters in the order the leaves first reach them, then those no leaf holds.
    let mut position = vec![u32::MAX; filters.len()];
    let mut order: Vec<u32> = Vec::with_capacity(filters.len());
    let mut place = |order: &mut Vec<u32>, i: u32| {
        let p = &mut position[i as usize];
        if *p == u32::MAX {
            *p = order.len() as u32;
            order.push(i);
        }
    };
    for &i in &items {
        place(&mut order, i);
    }
    let held = order.len();
    for i in 0..filters.len() as u32 {
        place(&mut order, i);
    }
    let packed = |i: &u32| Packed::new(&filters[*i as usize]);
    let (copy, index) = (size_of::<Packed<W>>(), size_of::<u32>());
    let (inline, indexed) = (
        (items.len() + filters.len() - held) * copy,
        items.len() * index + filters.len() * copy,
    );
    if inline * INLINE_MEMORY.1 <= indexed * INLINE_MEMORY.0 {
        Leaves::Inline {
            slots: items.iter().map(packed).collect(),
            hidden: order[held..].iter().map(packed).collect(),
        }
    } else {
        for i in &mut items {
            *i = position[*i as usize];
        }
        items.shrink_to_fit();
        Leaves::Indexed {
            items,
            filters: order.iter().map(packed).collect(),
        }
    }
}

/// Drops every filter after the first exact one that covers the whole region, and returns
/// that filter's index when something was dropped.
fn prune<W: Word>(
    filters: &[Filter<W>],
    items: &mut Vec<u32>,
    region: &Bounds<W>,
    exact: &dyn Fn(u32) -> bool,
) -> Option<u32> {
    let pos = items.iter().position(|&i| {
        let f = &filters[i as usize];
        f.bounds.covers(region) && exact(f.rank)
    })?;
    let cover = items[pos];
    (pos + 1 < items.len()).then(|| {
        items.truncate(pos + 1);
        cover
    })
}

/// The best cut `(dimension, threshold)`, or `None` when the region should be a leaf.
fn choose_cut<W: Word>(
    filters: &[Filter<W>],
    task: &Task<W>,
    leaf_size: usize,
) -> Option<(usize, W)> {
    let n = task.items.len();
    if n <= leaf_size || task.depth >= MAX_DEPTH {
        return None;
    }
    let region = &task.region;
    let mut best: Option<((usize, usize), usize, W)> = None;
    let mut los: Vec<W> = Vec::with_capacity(n);
    let mut his: Vec<W> = Vec::with_capacity(n);
    let mut cuts: Vec<W> = Vec::with_capacity(2 * n);
    for dim in 0..DIMS {
        if region.lo[dim] == region.hi[dim] {
            continue;
        }
        los.clear();
        his.clear();
        cuts.clear();
        for &i in &task.items {
            let b = &filters[i as usize].bounds;
            let lo = b.lo[dim].max(region.lo[dim]);
            let hi = b.hi[dim].min(region.hi[dim]);
            los.push(lo);
            his.push(hi);
            if lo > region.lo[dim] {
                cuts.push(lo);
            }
            if hi < region.hi[dim] {
                cuts.push(hi.succ());
            }
        }
        if cuts.is_empty() {
            continue;
        }
        los.sort_unstable();
        his.sort_unstable();
        cuts.sort_unstable();
        cuts.dedup();
        for &t in &cuts {
            // Left gets filters starting below t; right gets filters ending at or above t.
            let left = los.partition_point(|&lo| lo < t);
            let right = n - his.partition_point(|&hi| hi < t);
            let score = (left.max(right), left + right);
            if best.is_none_or(|(s, _, _)| score < s) {
                best = Some((score, dim, t));
            }
        }
    }
    match best {
        Some(((worst, _), dim, t)) if worst < n => Some((dim, t)),
        _ => None,
    }
}

/// The two child tasks of a cut.
fn split<W: Word>(filters: &[Filter<W>], task: &Task<W>, dim: usize, t: W) -> (Task<W>, Task<W>) {
    let mut left_region = task.region;
    left_region.hi[dim] = t.pred();
    let mut right_region = task.region;
    right_region.lo[dim] = t;
    let left = task
        .items
        .iter()
        .copied()
        .filter(|&i| filters[i as usize].bounds.lo[dim] < t)
        .collect();
    let right = task
        .items
        .iter()
        .copied()
        .filter(|&i| filters[i as usize].bounds.hi[dim] >= t)
        .collect();
    (
        Task {
            slot: Slot::Root,
            items: left,
            region: left_region,
            depth: task.depth + 1,
        },
        Task {
            slot: Slot::Root,
            items: right,
            region: right_region,
            depth: task.depth + 1,
        },
    )
}

#[cfg(test)]
mod tests;
