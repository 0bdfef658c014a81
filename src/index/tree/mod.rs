//! The compiled lookup structure: a decision tree over the five header fields whose leaves
//! hold short lists of filters in rank order (built by `index::tree::build`).
//!
//! Fields (dimensions): 0 remote address, 1 local address, 2 source port (ICMP type),
//! 3 destination port (ICMP code), 4 protocol. IPv4 trees use `u32` words, IPv6 trees `u128`.
//!
//! # Layout
//!
//! A family's filters are split into a [`Forest`] of up to four trees by the shape of their
//! address fields (see `index::tree::build`), plus, after revokes of rules that pruned a region,
//! one *patch* tree (see `compile::Table::revise`). A [`Tree`] is internal [`Node`]s and
//! [`Leaves`]: runs of [`Packed`] filters (each field a low bound and a width; ports as `u16`,
//! protocol as `u8`), each in rank order. A node holds [`LEVELS`] levels of binary cuts (a
//! field and a threshold each) and [`FANOUT`] child references, so a walk takes half as many
//! steps as down the binary tree it was grouped from. A lookup descends to a leaf without
//! data-dependent branches and scans its run, stopping at the first live filter containing
//! the packet, or as soon as a rank cannot beat the best match of an earlier tree.
//!
//! Where the cuts replicate filters little, each leaf holds copies of its filters, so a scan
//! reads contiguous memory ([`Leaves::Inline`]). Where they replicate much, leaves hold
//! positions into one filter array laid out in the order the leaves first reach them
//! ([`Leaves::Indexed`]). The choice is by memory: copies where they take at most a quarter
//! more than positions would (see `index::tree::build`): a contiguous scan beats chasing positions
//! into a rank-ordered array, and where cuts replicate little, copies cost no more memory.
//!
//! # Blocks
//!
//! A large tree whose filters each lie in one (or two) blocks of one address field
//! (addresses that share their top bits; the forest puts filters specific in a field
//! together) starts from a table of the blocks ([`Tree::blocks`]): per block, the root of a
//! subtree built from the filters in that block alone. The first load of a walk then does
//! what the top levels of the tree would do in eight to sixteen binary cuts, and the
//! subtrees are small (on fw1 10k most blocks hold one filter: the walk ends at a leaf).
//! The table has up to four entries a filter (16 bytes; blocks of the top 11 to 16 bits),
//! 256 KiB at most; `index::tree::build` uses it for trees of at least 1,024 filters (by
//! default) spread over at least 256 blocks, where filters spanning blocks add at most a
//! quarter more leaf entries. Such trees also build faster (fewer cuts to choose).
//!
//! # Batches
//!
//! [`Forest::lookup_lanes`] walks up to [`LANES`] packets through each tree in lockstep:
//! one node of every walk per round. The walks are independent, so the CPU overlaps their
//! cache misses instead of waiting for each in turn; that is where most of a large table's
//! lookup time goes. (Software prefetching would help further, but needs `unsafe` or
//! unstable intrinsics; the crate forbids both.) Every lane steps in every round, also once
//! at its leaf (it then stays put), so no branch depends on a lane's state.
//!
//! Grouping two levels a node and stepping every lane every round trade a few wasted steps
//! for no mispredicted branches; three levels a node cost more memory for no fewer
//! instructions. (The measurements are in the commit history.)

pub(crate) mod build;

use super::boxes::{Bounds, Filter, Word};

/// A filter as the tree stores it: each field as its low bound and its width (high minus
/// low), addresses in the family's word, ports as `u16` and the protocol as `u8` (32 bytes
/// for IPv4 instead of 44 for a [`Filter`]). A value `v` lies in the field when
/// `v - low <= width` in wrapping arithmetic: one subtraction and one comparison a field.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Packed<W> {
    /// Remote low, remote width, local low, local width.
    pub addr: [W; 4],
    /// Source port low, width, destination port low, width.
    pub ports: [u16; 4],
    /// Protocol low, width.
    pub proto: [u8; 2],
    /// The rank of the filter's target.
    pub rank: u32,
}

impl<W: Word> Packed<W> {
    /// Packs a filter (ports and protocol always fit: they were lowered from `u16`/`u8`).
    pub(crate) fn new(f: &Filter<W>) -> Packed<W> {
        let (lo, hi) = (&f.bounds.lo, &f.bounds.hi);
        let narrow = |w: W| w.to_u128() as u16;
        let width = |d: usize| narrow(hi[d]) - narrow(lo[d]);
        Packed {
            addr: [
                lo[0],
                hi[0].wrapping_sub(lo[0]),
                lo[1],
                hi[1].wrapping_sub(lo[1]),
            ],
            ports: [narrow(lo[2]), width(2), narrow(lo[3]), width(3)],
            proto: [narrow(lo[4]) as u8, width(4) as u8],
            rank: f.rank,
        }
    }

    /// The filter's box.
    pub(crate) fn bounds(&self) -> Bounds<W> {
        let w = W::from_u16;
        let hi = |lo: u16, width: u16| w(lo + width);
        Bounds {
            lo: [
                self.addr[0],
                self.addr[2],
                w(self.ports[0]),
                w(self.ports[2]),
                w(self.proto[0].into()),
            ],
            hi: [
                W::from_u128(self.addr[0].to_u128() + self.addr[1].to_u128()),
                W::from_u128(self.addr[2].to_u128() + self.addr[3].to_u128()),
                hi(self.ports[0], self.ports[1]),
                hi(self.ports[2], self.ports[3]),
                hi(self.proto[0].into(), self.proto[1].into()),
            ],
        }
    }

    /// Whether the filter's box contains the key.
    #[inline]
    pub(crate) fn contains(&self, key: &Key<W>) -> bool {
        let k = &key.wide;
        (k[0].wrapping_sub(self.addr[0]) <= self.addr[1])
            & (k[1].wrapping_sub(self.addr[2]) <= self.addr[3])
            & (k[2].low16().wrapping_sub(self.ports[0]) <= self.ports[1])
            & (k[3].low16().wrapping_sub(self.ports[2]) <= self.ports[3])
            & ((k[4].low16() as u8).wrapping_sub(self.proto[0]) <= self.proto[1])
    }
}

/// Length of [`Key::wide`].
const WIDE: usize = 8;

/// A packet's five fields as the tree's words, indexed by dimension, then zeros (a power
/// of two in all, so that a node's dimension needs no bounds check and a lane's key is a
/// shift away from the first).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Key<W> {
    pub wide: [W; WIDE],
}

impl<W: Word> Key<W> {
    /// The key of a packet.
    #[inline]
    pub(crate) fn new(remote: W, local: W, sport: u16, dport: u16, proto: u8) -> Key<W> {
        Key {
            wide: [
                remote,
                local,
                W::from_u16(sport),
                W::from_u16(dport),
                W::from_u16(proto.into()),
                W::default(),
                W::default(),
                W::default(),
            ],
        }
    }

    /// The remote address.
    #[inline]
    pub(crate) fn remote(&self) -> W {
        self.wide[0]
    }

    /// The local address.
    #[inline]
    pub(crate) fn local(&self) -> W {
        self.wide[1]
    }

    /// The source and destination port (ICMP type and code).
    #[inline]
    pub(crate) fn ports(&self) -> [u16; 2] {
        [self.wide[2].low16(), self.wide[3].low16()]
    }

    /// The protocol.
    #[inline]
    pub(crate) fn proto(&self) -> u8 {
        self.wide[4].low16() as u8
    }
}

/// Binary levels one [`Node`] decides.
pub(crate) const LEVELS: usize = 2;

/// Cuts in a node: a complete binary tree of [`LEVELS`] levels, in heap order.
pub(crate) const CUTS: usize = (1 << LEVELS) - 1;

/// Children of a node.
pub(crate) const FANOUT: usize = 1 << LEVELS;

/// An internal node: [`LEVELS`] levels of binary cuts. Cut `j` sends `key[dims[j]] <
/// thresholds[j]` to cut `2j + 1` and the rest to cut `2j + 2`; past the last level, the
/// path picks a child. A node reference below [`Tree::inner`] is a node, the rest a leaf.
/// A path that reaches a leaf early is padded with cuts every key passes (threshold 0).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Node<W> {
    pub thresholds: [W; CUTS],
    pub children: [u32; FANOUT],
    pub dims: [u8; CUTS],
}

impl<W: Word> Node<W> {
    /// The child `key` goes to. No branch depends on the key.
    #[inline]
    fn child(&self, key: &Key<W>) -> u32 {
        let mut j = 0;
        for _ in 0..LEVELS {
            let right = key.wide[usize::from(self.dims[j]) & (WIDE - 1)] >= self.thresholds[j];
            j = 2 * j + 1 + usize::from(right);
        }
        self.children[j - CUTS]
    }
}

/// No match (a rank larger than any real one).
pub(crate) const NONE: u32 = u32::MAX;

/// Packets walked in lockstep by the batch lookups: enough independent walks for the CPU to
/// overlap their cache misses, few enough to keep the state in registers and L1.
pub(crate) const LANES: usize = 16;

/// The filters of a tree's leaves: leaf `i` is entries `starts[i]..starts[i + 1]`.
///
/// Filters that no leaf holds (covered by an earlier filter wherever they reach) are kept
/// too, for a patch after that filter's revoke.
#[derive(Debug)]
pub(crate) enum Leaves<W> {
    /// Copies of each leaf's filters, in place.
    Inline {
        slots: Vec<Packed<W>>,
        /// The filters no leaf holds.
        hidden: Vec<Packed<W>>,
    },
    /// Positions into `filters`.
    Indexed {
        items: Vec<u32>,
        /// Every filter once, in the order the leaves first reach them (so that a leaf's
        /// filters are mostly adjacent), then those no leaf holds.
        filters: Vec<Packed<W>>,
    },
}

impl<W: Word> Leaves<W> {
    /// Number of leaf entries.
    pub(crate) fn entries(&self) -> usize {
        match self {
            Leaves::Inline { slots, .. } => slots.len(),
            Leaves::Indexed { items, .. } => items.len(),
        }
    }

    /// Every filter held, in no particular order; a filter copied into several leaves comes
    /// up once per copy.
    pub(crate) fn copies(&self) -> impl Iterator<Item = &Packed<W>> {
        let (held, rest): (&[Packed<W>], &[Packed<W>]) = match self {
            Leaves::Inline { slots, hidden } => (slots, hidden),
            Leaves::Indexed { filters, .. } => (filters, &[]),
        };
        held.iter().chain(rest)
    }

    /// Every filter held, once each, in rank order.
    pub(crate) fn filters(&self) -> Vec<Packed<W>> {
        let mut all: Vec<Packed<W>> = self.copies().copied().collect();
        all.sort_unstable_by_key(|f| f.rank);
        all.dedup_by_key(|f| f.rank);
        all
    }

    /// The filter of `rank`, if held.
    pub(crate) fn find(&self, rank: u32) -> Option<&Packed<W>> {
        self.copies().find(|f| f.rank == rank)
    }

    /// Bytes held.
    fn memory_usage(&self) -> usize {
        use std::mem::size_of;
        match self {
            Leaves::Inline { slots, hidden } => {
                (slots.capacity() + hidden.capacity()) * size_of::<Packed<W>>()
            }
            Leaves::Indexed { items, filters } => {
                items.capacity() * size_of::<u32>() + filters.capacity() * size_of::<Packed<W>>()
            }
        }
    }
}

/// The smallest rank below `bound` of a run's filters containing `key` and accepted by
/// `alive`, else `bound` (the run is in rank order).
#[inline]
fn scan_run<'a, W: Word>(
    run: impl Iterator<Item = &'a Packed<W>>,
    key: &Key<W>,
    bound: u32,
    alive: &impl Fn(u32) -> bool,
) -> u32 {
    for f in run {
        if f.rank >= bound {
            break;
        }
        if f.contains(key) && alive(f.rank) {
            return f.rank;
        }
    }
    bound
}

/// One decision tree over a subset of a family's filters.
#[derive(Debug)]
pub(crate) struct Tree<W> {
    /// The internal nodes, then one whose children are all leaf 0 (see [`Tree::lookup_lanes`]).
    pub nodes: Vec<Node<W>>,
    /// Number of internal nodes: a reference `r` is node `r` below it, else leaf `r - inner`.
    pub inner: u32,
    /// Per leaf: where its run starts in `leaves`; one more entry closes the last run.
    pub starts: Vec<u32>,
    pub leaves: Leaves<W>,
    /// The root's reference (an empty leaf, unused, when the tree starts from blocks).
    pub root: u32,
    /// For a large tree whose filters each lie in one or two blocks of one address field
    /// (addresses sharing their top bits): per block, the reference of the root of the
    /// subtree of that block's filters. The walk then starts there: one load instead of
    /// the levels that would narrow the field down to the block.
    pub blocks: Option<Blocks>,
    /// Ranks (ascending) of the filters that cut later filters out of some region because
    /// they cover it: only they may not be tombstoned without a rebuild.
    pub covers: Vec<u32>,
    /// The smallest rank held (`u32::MAX` when empty).
    pub min_rank: u32,
    /// Number of distinct filters held.
    pub len: usize,
    /// Whether this is a patch tree (built after a revoke, see `index::tree::build::patch`).
    pub patch: bool,
}

/// The roots of a tree's subtrees by the top bits of one address field (see
/// [`Tree::blocks`]).
#[derive(Debug)]
pub(crate) struct Blocks {
    /// The field: 0 remote, 1 local.
    pub dim: usize,
    /// How many top bits of the field number a block (1 to 16).
    pub bits: u32,
    /// Per block, the reference of its subtree's root (a node or a leaf): `1 << bits` of
    /// them.
    pub roots: Box<[u32]>,
}

impl Blocks {
    /// The reference a key's walk starts from.
    #[inline]
    fn root<W: Word>(&self, key: &Key<W>) -> u32 {
        self.roots[key.wide[self.dim & 1].top(self.bits)]
    }
}

impl<W: Word> Tree<W> {
    /// The reference a key's walk starts from.
    #[inline]
    fn start(&self, key: &Key<W>) -> u32 {
        match &self.blocks {
            None => self.root,
            Some(b) => b.root(key),
        }
    }

    /// The leaf a key falls in.
    #[inline]
    fn leaf(&self, key: &Key<W>) -> u32 {
        let mut at = self.start(key);
        while at < self.inner {
            at = self.nodes[at as usize].child(key);
        }
        at - self.inner
    }

    /// The smallest rank below `bound` among filters of leaf `leaf` containing `key` and
    /// accepted by `alive` (live, and for group peers: the remote is a member), else
    /// `bound`.
    #[inline]
    fn scan(&self, leaf: u32, key: &Key<W>, bound: u32, alive: &impl Fn(u32) -> bool) -> u32 {
        let (s, e) = (
            self.starts[leaf as usize] as usize,
            self.starts[leaf as usize + 1] as usize,
        );
        match &self.leaves {
            Leaves::Inline { slots, .. } => scan_run(slots[s..e].iter(), key, bound, alive),
            Leaves::Indexed { items, filters } => scan_run(
                items[s..e].iter().map(|&i| &filters[i as usize]),
                key,
                bound,
                alive,
            ),
        }
    }

    /// The smallest rank among live filters containing `key`.
    #[cfg(test)]
    pub(crate) fn lookup(&self, key: &Key<W>, alive: impl Fn(u32) -> bool) -> Option<u32> {
        let r = self.scan(self.leaf(key), key, NONE, &alive);
        (r != NONE).then_some(r)
    }

    /// For each key, lowers `best[i]` to the smallest rank among filters containing
    /// `keys[i]` and accepted by `ok(i, rank)`, if smaller. The walks of all keys advance
    /// together, one level per round, so their memory accesses are independent and overlap.
    /// `keys` may be longer than `best` (the lanes are `best`'s).
    #[inline]
    pub(crate) fn lookup_lanes(
        &self,
        keys: &[Key<W>],
        best: &mut [u32],
        ok: &impl Fn(usize, u32) -> bool,
    ) {
        let n = keys.len().min(LANES).min(best.len());
        let best = &mut best[..n];
        match keys.get(..LANES).map(<&[Key<W>; LANES]>::try_from) {
            Some(Ok(all)) => self.walk(all, best, ok),
            _ => {
                let mut all = [Key::new(W::default(), W::default(), 0, 0, 0); LANES];
                all[..n].copy_from_slice(&keys[..n]);
                self.walk(&all, best, ok)
            }
        }
    }

    /// [`Tree::lookup_lanes`] for the first `best.len()` (at most [`LANES`]) of `keys`.
    #[inline]
    fn walk(&self, keys: &[Key<W>; LANES], best: &mut [u32], ok: &impl Fn(usize, u32) -> bool) {
        const MASK: usize = LANES - 1;
        // Lanes whose match so far beats every filter here sit the tree out: the walk takes
        // only the others (`lane[..m]`).
        let mut lane = [0u8; LANES];
        let mut m = 0;
        for (i, &b) in best.iter().enumerate().take(LANES) {
            lane[m & MASK] = i as u8;
            m += usize::from(b > self.min_rank);
        }
        let m = m.min(LANES);
        let inner = self.inner;
        let mut at = [self.root; LANES];
        for (a, &i) in at[..m].iter_mut().zip(&lane[..m]) {
            *a = self.start(&keys[usize::from(i) & MASK]);
        }
        // Every walk steps each round, whether or not it has reached its leaf: a walk at a
        // leaf reads the last node and keeps its place. No branch depends on a walk's state
        // and, as the index is at most `inner`, no bounds check is needed.
        let nodes = &self.nodes[..=inner as usize];
        let mut pending = at[..m].iter().any(|&a| a < inner);
        while pending {
            pending = false;
            for (a, &i) in at[..m].iter_mut().zip(&lane[..m]) {
                let next = nodes[(*a).min(inner) as usize].child(&keys[usize::from(i) & MASK]);
                let step = *a < inner;
                *a = if step { next } else { *a };
                pending |= step & (next < inner);
            }
        }
        for (&a, &i) in at[..m].iter().zip(&lane[..m]) {
            let i = usize::from(i) & MASK;
            if let Some(b) = best.get_mut(i) {
                *b = self.scan(a - inner, &keys[i], *b, &|r| ok(i, r));
            }
        }
    }

    /// Number of leaves.
    pub(crate) fn leaf_count(&self) -> usize {
        self.starts.len() - 1
    }

    /// The smallest rank the tree holds (`u32::MAX` when empty).
    pub(crate) fn min_rank(&self) -> u32 {
        self.min_rank
    }

    /// Bytes held by the tree.
    pub(crate) fn memory_usage(&self) -> usize {
        use std::mem::size_of;
        self.nodes.capacity() * size_of::<Node<W>>()
            + self
                .blocks
                .as_ref()
                .map_or(0, |b| b.roots.len() * size_of::<u32>())
            + self.starts.capacity() * size_of::<u32>()
            + self.leaves.memory_usage()
            + self.covers.capacity() * size_of::<u32>()
    }
}

/// Several trees over disjoint subsets of one family's filters, in order of their smallest
/// rank. Partitioning filters by the shape of their address fields keeps wildcard-heavy rules
/// from being replicated across the cuts made for specific ones.
///
/// Trees are shared (`Arc`) so that a revised table can reuse them and add a patch tree.
#[derive(Debug)]
pub(crate) struct Forest<W> {
    pub trees: Vec<std::sync::Arc<Tree<W>>>,
}

impl<W: Word> Forest<W> {
    /// The smallest rank below `best` among filters containing `key` and accepted by `ok`,
    /// across all trees; else `best` (start with [`NONE`]). Several forests are searched by
    /// passing one's result to the next.
    #[inline]
    pub(crate) fn lookup(&self, key: &Key<W>, mut best: u32, ok: &impl Fn(u32) -> bool) -> u32 {
        for tree in &self.trees {
            if tree.min_rank() >= best {
                break;
            }
            best = tree.scan(tree.leaf(key), key, best, ok);
        }
        best
    }

    /// [`Forest::lookup`] of up to [`LANES`] keys at once, lowering `best` (fill it with
    /// [`NONE`] first); `ok(i, rank)` accepts a filter for key `i`. A tree is skipped once
    /// every key already has a match it cannot beat.
    #[inline]
    pub(crate) fn lookup_lanes(
        &self,
        keys: &[Key<W>],
        best: &mut [u32],
        ok: &impl Fn(usize, u32) -> bool,
    ) {
        for tree in &self.trees {
            let min = tree.min_rank();
            if best.iter().all(|&b| b <= min) {
                break;
            }
            tree.lookup_lanes(keys, best, ok);
        }
    }

    /// Number of filters held (across trees).
    pub(crate) fn len(&self) -> usize {
        self.trees.iter().map(|t| t.len).sum()
    }

    /// Number of trees that start from a table of address blocks.
    pub(crate) fn block_trees(&self) -> usize {
        self.trees.iter().filter(|t| t.blocks.is_some()).count()
    }

    /// Ranks of the filters that pruned a region of some tree (see [`Tree::covers`]).
    pub(crate) fn cover_ranks(&self) -> impl Iterator<Item = u32> + '_ {
        self.trees.iter().flat_map(|t| t.covers.iter().copied())
    }

    /// Bytes held by the forest.
    pub(crate) fn memory_usage(&self) -> usize {
        self.trees.iter().map(|t| t.memory_usage()).sum::<usize>()
            + self.trees.capacity() * std::mem::size_of::<std::sync::Arc<Tree<W>>>()
            + self.trees.len() * std::mem::size_of::<Tree<W>>()
    }
}
