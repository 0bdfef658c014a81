//! The compiled lookup structure: a decision tree over the five header fields whose leaves
//! hold short lists of filters in rank order (built by `compile::tree`).
//!
//! Fields (dimensions): 0 remote address, 1 local address, 2 source port (ICMP type),
//! 3 destination port (ICMP code), 4 protocol. IPv4 trees use `u32` words, IPv6 trees `u128`.
//!
//! # Layout
//!
//! A family's filters are split into a [`Forest`] of up to four trees by the shape of their
//! address fields (see `compile::tree`), plus, after revokes of rules that pruned a region,
//! one *patch* tree (see `compile::Table::revise`). A [`Tree`] is internal [`Node`]s (one
//! field, one threshold, two child references) and [`Leaves`]: runs of [`Packed`] filters
//! (ports as `u16`, protocol as `u8`), each in rank order. A lookup descends to a leaf
//! without data-dependent branches and scans its run, stopping at the first live filter
//! containing the packet, or as soon as a rank cannot beat the best match of an earlier
//! tree.
//!
//! Where the cuts replicate filters little, each leaf holds copies of its filters, so a scan
//! reads contiguous memory ([`Leaves::Inline`]). Where they replicate much, leaves hold
//! positions into one filter array laid out in the order the leaves first reach them
//! ([`Leaves::Indexed`]). The choice is by memory: copies where they take at most a quarter
//! more than positions would (see `compile::tree`). Against positions into a rank-ordered
//! array, copies ran 7–11% faster on the fw1 and ipc1 10k sets and 19–56% on the acl1 and
//! ipc1 100k sets (medians of six runs of each build side by side on the two cores, which
//! cancels most of this shared VM's drift), and took 4 bytes a rule less at 100k.
//!
//! # Batches
//!
//! [`Forest::lookup_lanes`] walks up to [`LANES`] packets through each tree in lockstep:
//! one level of every walk per round. The walks are independent, so the CPU overlaps their
//! cache misses instead of waiting for each in turn; that is where most of a large table's
//! lookup time goes. (Software prefetching would help further, but needs `unsafe` or
//! unstable intrinsics; the crate forbids both.) Branch-free variants of the rounds and of
//! the leaf scan were measured too: they halve the mispredicted branches but add more
//! instructions than that saves on this workload, so the plain loops stay.

/// Number of header fields a filter constrains.
pub(crate) const DIMS: usize = 5;

/// The integer type of one tree's fields.
pub(crate) trait Word:
    Copy + Ord + Default + Send + Sync + std::fmt::Debug + 'static
{
    /// The largest address of the family.
    const ADDR_MAX: Self;
    /// Address width in bits.
    const ADDR_BITS: u32;
    /// Widens to `u128`.
    fn to_u128(self) -> u128;
    /// Widens a port or protocol value.
    fn from_u16(v: u16) -> Self;
    /// Narrows an address range end (the caller knows it fits).
    fn from_u128(v: u128) -> Self;
    /// `self + 1` (never called on the maximum).
    fn succ(self) -> Self;
    /// `self - 1` (never called on zero).
    fn pred(self) -> Self;
}

impl Word for u32 {
    const ADDR_MAX: u32 = u32::MAX;
    const ADDR_BITS: u32 = 32;
    fn to_u128(self) -> u128 {
        u128::from(self)
    }
    fn from_u16(v: u16) -> u32 {
        u32::from(v)
    }
    fn from_u128(v: u128) -> u32 {
        // Invariant: IPv4 ranges come from `Cidr::range` of an IPv4 block, so they fit.
        v as u32
    }
    fn succ(self) -> u32 {
        self + 1
    }
    fn pred(self) -> u32 {
        self - 1
    }
}

impl Word for u128 {
    const ADDR_MAX: u128 = u128::MAX;
    const ADDR_BITS: u32 = 128;
    fn to_u128(self) -> u128 {
        self
    }
    fn from_u16(v: u16) -> u128 {
        u128::from(v)
    }
    fn from_u128(v: u128) -> u128 {
        v
    }
    fn succ(self) -> u128 {
        self + 1
    }
    fn pred(self) -> u128 {
        self - 1
    }
}

/// The largest value of each dimension.
pub(crate) fn domain_hi<W: Word>() -> [W; DIMS] {
    [
        W::ADDR_MAX,
        W::ADDR_MAX,
        W::from_u16(u16::MAX),
        W::from_u16(u16::MAX),
        W::from_u16(255),
    ]
}

/// A box in header space: inclusive bounds per dimension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Bounds<W> {
    pub lo: [W; DIMS],
    pub hi: [W; DIMS],
}

impl<W: Word> Bounds<W> {
    /// The whole header space.
    pub fn full() -> Bounds<W> {
        Bounds {
            lo: [W::default(); DIMS],
            hi: domain_hi(),
        }
    }

    /// Whether the point lies inside.
    #[cfg(test)]
    pub fn contains(&self, key: &[W; DIMS]) -> bool {
        (0..DIMS).all(|d| self.lo[d] <= key[d] && key[d] <= self.hi[d])
    }

    /// Whether the two boxes share a point.
    pub fn intersects(&self, other: &Bounds<W>) -> bool {
        (0..DIMS).all(|d| self.lo[d] <= other.hi[d] && other.lo[d] <= self.hi[d])
    }

    /// Whether every point of `other` lies inside.
    pub fn covers(&self, other: &Bounds<W>) -> bool {
        (0..DIMS).all(|d| self.lo[d] <= other.lo[d] && other.hi[d] <= self.hi[d])
    }
}

/// A filter: a box and the rank of its target (smaller rank wins).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Filter<W> {
    pub bounds: Bounds<W>,
    pub rank: u32,
}

/// A filter as the tree stores it: address bounds in the family's word, ports as `u16`
/// and the protocol as `u8` (32 bytes for IPv4 instead of 44 for a [`Filter`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Packed<W> {
    /// Remote low, remote high, local low, local high.
    pub addr: [W; 4],
    /// Source port low, high, destination port low, high.
    pub ports: [u16; 4],
    /// Protocol low, high.
    pub proto: [u8; 2],
    /// The rank of the filter's target.
    pub rank: u32,
}

impl<W: Word> Packed<W> {
    /// Packs a filter (ports and protocol always fit: they were lowered from `u16`/`u8`).
    pub fn new(f: &Filter<W>) -> Packed<W> {
        let (lo, hi) = (&f.bounds.lo, &f.bounds.hi);
        let narrow = |w: W| w.to_u128() as u16;
        Packed {
            addr: [lo[0], hi[0], lo[1], hi[1]],
            ports: [narrow(lo[2]), narrow(hi[2]), narrow(lo[3]), narrow(hi[3])],
            proto: [narrow(lo[4]) as u8, narrow(hi[4]) as u8],
            rank: f.rank,
        }
    }

    /// The filter's box.
    pub fn bounds(&self) -> Bounds<W> {
        let w = W::from_u16;
        Bounds {
            lo: [
                self.addr[0],
                self.addr[2],
                w(self.ports[0]),
                w(self.ports[2]),
                w(self.proto[0].into()),
            ],
            hi: [
                self.addr[1],
                self.addr[3],
                w(self.ports[1]),
                w(self.ports[3]),
                w(self.proto[1].into()),
            ],
        }
    }

    /// Whether the filter's box contains the key.
    #[inline]
    pub fn contains(&self, key: &Key<W>) -> bool {
        (self.addr[0] <= key.addr[0])
            & (key.addr[0] <= self.addr[1])
            & (self.addr[2] <= key.addr[1])
            & (key.addr[1] <= self.addr[3])
            & (self.ports[0] <= key.ports[0])
            & (key.ports[0] <= self.ports[1])
            & (self.ports[2] <= key.ports[1])
            & (key.ports[1] <= self.ports[3])
            & (self.proto[0] <= key.proto)
            & (key.proto <= self.proto[1])
    }
}

/// A packet's five fields, both as the tree's words (for the descent) and narrow (for the
/// leaf scan).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Key<W> {
    /// All five fields widened, indexed by dimension.
    pub wide: [W; DIMS],
    /// Remote and local address.
    pub addr: [W; 2],
    /// Source and destination port.
    pub ports: [u16; 2],
    /// Protocol.
    pub proto: u8,
}

impl<W: Word> Key<W> {
    /// The key of a packet.
    #[inline]
    pub fn new(remote: W, local: W, sport: u16, dport: u16, proto: u8) -> Key<W> {
        Key {
            wide: [
                remote,
                local,
                W::from_u16(sport),
                W::from_u16(dport),
                W::from_u16(proto.into()),
            ],
            addr: [remote, local],
            ports: [sport, dport],
            proto,
        }
    }
}

/// An internal node: `key[dim] < threshold` goes to `children[0]`, else `children[1]`
/// (indexed by the comparison, so the descent has no data-dependent branch).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Node<W> {
    pub threshold: W,
    pub children: [u32; 2],
    pub dim: u8,
}

/// Marks a child reference as a leaf (the rest is the leaf's index).
pub(crate) const LEAF: u32 = 1 << 31;

/// A lane that skips a tree in [`Tree::lookup_lanes`] (no tree has this many leaves).
const SKIP: u32 = u32::MAX;

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
    pub fn entries(&self) -> usize {
        match self {
            Leaves::Inline { slots, .. } => slots.len(),
            Leaves::Indexed { items, .. } => items.len(),
        }
    }

    /// Every filter held, in no particular order; a filter copied into several leaves comes
    /// up once per copy.
    pub fn copies(&self) -> impl Iterator<Item = &Packed<W>> {
        let (held, rest): (&[Packed<W>], &[Packed<W>]) = match self {
            Leaves::Inline { slots, hidden } => (slots, hidden),
            Leaves::Indexed { filters, .. } => (filters, &[]),
        };
        held.iter().chain(rest)
    }

    /// Every filter held, once each, in rank order.
    pub fn filters(&self) -> Vec<Packed<W>> {
        let mut all: Vec<Packed<W>> = self.copies().copied().collect();
        all.sort_unstable_by_key(|f| f.rank);
        all.dedup_by_key(|f| f.rank);
        all
    }

    /// The filter of `rank`, if held.
    pub fn find(&self, rank: u32) -> Option<&Packed<W>> {
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
    pub nodes: Vec<Node<W>>,
    /// Per leaf: where its run starts in `leaves`; one more entry closes the last run.
    pub starts: Vec<u32>,
    pub leaves: Leaves<W>,
    /// The root: a node index, or `LEAF | leaf index`.
    pub root: u32,
    /// Ranks (ascending) of the filters that cut later filters out of some region because
    /// they cover it: only they may not be tombstoned without a rebuild.
    pub covers: Vec<u32>,
    /// The smallest rank held (`u32::MAX` when empty).
    pub min_rank: u32,
    /// Number of distinct filters held.
    pub len: usize,
    /// Whether this is a patch tree (built after a revoke, see `compile::tree::patch`).
    pub patch: bool,
}

impl<W: Word> Tree<W> {
    /// The leaf a key falls in.
    #[inline]
    fn leaf(&self, key: &Key<W>) -> u32 {
        let mut at = self.root;
        while at & LEAF == 0 {
            let n = &self.nodes[at as usize];
            at = n.children[usize::from(key.wide[usize::from(n.dim)] >= n.threshold)];
        }
        at & !LEAF
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
    pub fn lookup(&self, key: &Key<W>, alive: impl Fn(u32) -> bool) -> Option<u32> {
        let r = self.scan(self.leaf(key), key, NONE, &alive);
        (r != NONE).then_some(r)
    }

    /// For each key, lowers `best[i]` to the smallest rank among filters containing
    /// `keys[i]` and accepted by `ok(i, rank)`, if smaller. The walks of all keys advance
    /// together, one level per round, so their memory accesses are independent and overlap.
    #[inline]
    pub fn lookup_lanes(
        &self,
        keys: &[Key<W>],
        best: &mut [u32],
        ok: &impl Fn(usize, u32) -> bool,
    ) {
        let n = keys.len().min(LANES).min(best.len());
        // Lanes whose match so far beats every filter here sit the tree out.
        let mut at = [SKIP; LANES];
        for (a, &b) in at.iter_mut().zip(&best[..n]) {
            if b > self.min_rank {
                *a = self.root;
            }
        }
        loop {
            let mut inner = false;
            for i in 0..n {
                let a = at[i];
                if a & LEAF == 0 {
                    let node = &self.nodes[a as usize];
                    at[i] = node.children
                        [usize::from(keys[i].wide[usize::from(node.dim)] >= node.threshold)];
                    inner = true;
                }
            }
            if !inner {
                break;
            }
        }
        for i in 0..n {
            if at[i] != SKIP {
                best[i] = self.scan(at[i] & !LEAF, &keys[i], best[i], &|r| ok(i, r));
            }
        }
    }

    /// The smallest rank the tree holds (`u32::MAX` when empty).
    pub fn min_rank(&self) -> u32 {
        self.min_rank
    }

    /// Bytes held by the tree.
    pub fn memory_usage(&self) -> usize {
        use std::mem::size_of;
        self.nodes.capacity() * size_of::<Node<W>>()
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
    pub fn lookup(&self, key: &Key<W>, mut best: u32, ok: &impl Fn(u32) -> bool) -> u32 {
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
    pub fn lookup_lanes(
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
    pub fn len(&self) -> usize {
        self.trees.iter().map(|t| t.len).sum()
    }

    /// Ranks of the filters that pruned a region of some tree (see [`Tree::covers`]).
    pub fn cover_ranks(&self) -> impl Iterator<Item = u32> + '_ {
        self.trees.iter().flat_map(|t| t.covers.iter().copied())
    }

    /// Bytes held by the forest.
    pub fn memory_usage(&self) -> usize {
        self.trees.iter().map(|t| t.memory_usage()).sum::<usize>()
            + self.trees.capacity() * std::mem::size_of::<std::sync::Arc<Tree<W>>>()
            + self.trees.len() * std::mem::size_of::<Tree<W>>()
    }
}
