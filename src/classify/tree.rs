//! The compiled lookup structure: a decision tree over the five header fields whose leaves
//! hold short lists of filters in rank order (built by `compile::tree`).
//!
//! Fields (dimensions): 0 remote address, 1 local address, 2 source port (ICMP type),
//! 3 destination port (ICMP code), 4 protocol. IPv4 trees use `u32` words, IPv6 trees `u128`.

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
    #[inline]
    pub fn contains(&self, key: &[W; DIMS]) -> bool {
        (0..DIMS).all(|d| self.lo[d] <= key[d] && key[d] <= self.hi[d])
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

/// The decision tree of one address family.
#[derive(Debug)]
pub(crate) struct Tree<W> {
    pub nodes: Vec<Node<W>>,
    /// Per leaf: start and length in `items`.
    pub leaves: Vec<[u32; 2]>,
    /// Filter indexes of all leaves, each leaf's run in rank order.
    pub items: Vec<u32>,
    /// Filters, indexed by position; position order is rank order.
    pub filters: Vec<Filter<W>>,
    /// The root: a node index, or `LEAF | leaf index`.
    pub root: u32,
    /// Filters (by index, ascending) that cut later filters out of some region because they
    /// cover it: only they may not be tombstoned without a rebuild.
    pub covers: Vec<u32>,
}

impl<W: Word> Tree<W> {
    /// The smallest rank among live filters containing `key`.
    #[inline]
    pub fn lookup(&self, key: &[W; DIMS], alive: impl Fn(u32) -> bool) -> Option<u32> {
        let mut at = self.root;
        while at & LEAF == 0 {
            let n = &self.nodes[at as usize];
            at = n.children[usize::from(key[usize::from(n.dim)] >= n.threshold)];
        }
        let [start, len] = self.leaves[(at & !LEAF) as usize];
        self.items[start as usize..(start + len) as usize]
            .iter()
            .map(|&i| &self.filters[i as usize])
            .find(|f| f.bounds.contains(key) && alive(f.rank))
            .map(|f| f.rank)
    }

    /// The smallest rank the tree holds (`u32::MAX` when empty).
    pub fn min_rank(&self) -> u32 {
        self.filters.first().map_or(u32::MAX, |f| f.rank)
    }

    /// Bytes held by the tree.
    pub fn memory_usage(&self) -> usize {
        use std::mem::size_of;
        self.nodes.capacity() * size_of::<Node<W>>()
            + self.leaves.capacity() * size_of::<[u32; 2]>()
            + self.items.capacity() * size_of::<u32>()
            + self.filters.capacity() * size_of::<Filter<W>>()
            + self.covers.capacity() * size_of::<u32>()
    }
}

/// Several trees over disjoint subsets of one family's filters, in order of their smallest
/// rank. Partitioning filters by the shape of their address fields keeps wildcard-heavy rules
/// from being replicated across the cuts made for specific ones.
#[derive(Debug)]
pub(crate) struct Forest<W> {
    pub trees: Vec<Tree<W>>,
}

impl<W: Word> Forest<W> {
    /// The smallest rank among live filters containing `key`, across all trees.
    #[inline]
    pub fn lookup(&self, key: &[W; DIMS], alive: impl Fn(u32) -> bool) -> Option<u32> {
        let mut best: Option<u32> = None;
        for tree in &self.trees {
            if best.is_some_and(|b| tree.min_rank() >= b) {
                break;
            }
            if let Some(r) = tree.lookup(key, &alive) {
                best = Some(best.map_or(r, |b| b.min(r)));
            }
        }
        best
    }

    /// Ranks of the filters that pruned a region of some tree (see [`Tree::covers`]).
    pub fn cover_ranks(&self) -> impl Iterator<Item = u32> + '_ {
        self.trees
            .iter()
            .flat_map(|t| t.covers.iter().map(move |&i| t.filters[i as usize].rank))
    }

    /// Bytes held by the forest.
    pub fn memory_usage(&self) -> usize {
        self.trees.iter().map(Tree::memory_usage).sum::<usize>()
            + self.trees.capacity() * std::mem::size_of::<Tree<W>>()
    }
}
