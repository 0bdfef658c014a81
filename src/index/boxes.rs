//! The five-field box every lookup structure and the header-space diff share: fields,
//! their integer words, bounds and ranked filters.
//!
//! Fields (dimensions): 0 remote address, 1 local address, 2 source port (ICMP type),
//! 3 destination port (ICMP code), 4 protocol. IPv4 boxes use `u32` words, IPv6 boxes
//! `u128`.

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
    /// `self - other`, wrapping around.
    fn wrapping_sub(self, other: Self) -> Self;
    /// The low 16 bits (a port or protocol widened by [`Word::from_u16`]).
    fn low16(self) -> u16;
    /// The top `bits` bits of an address (1 to 16).
    fn top(self, bits: u32) -> usize;
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
    fn wrapping_sub(self, other: u32) -> u32 {
        u32::wrapping_sub(self, other)
    }
    fn low16(self) -> u16 {
        self as u16
    }
    fn top(self, bits: u32) -> usize {
        (self >> (32 - bits)) as usize
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
    fn wrapping_sub(self, other: u128) -> u128 {
        u128::wrapping_sub(self, other)
    }
    fn low16(self) -> u16 {
        self as u16
    }
    fn top(self, bits: u32) -> usize {
        (self >> (128 - bits)) as usize
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
    pub(crate) fn full() -> Bounds<W> {
        Bounds {
            lo: [W::default(); DIMS],
            hi: domain_hi(),
        }
    }

    /// Whether the point lies inside.
    #[cfg(test)]
    pub(crate) fn contains(&self, key: &[W; DIMS]) -> bool {
        (0..DIMS).all(|d| self.lo[d] <= key[d] && key[d] <= self.hi[d])
    }

    /// Whether the two boxes share a point.
    pub(crate) fn intersects(&self, other: &Bounds<W>) -> bool {
        (0..DIMS).all(|d| self.lo[d] <= other.hi[d] && other.lo[d] <= self.hi[d])
    }

    /// Whether every point of `other` lies inside.
    pub(crate) fn covers(&self, other: &Bounds<W>) -> bool {
        (0..DIMS).all(|d| self.lo[d] <= other.lo[d] && other.hi[d] <= self.hi[d])
    }
}

/// A filter: a box and the rank of its target (smaller rank wins).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Filter<W> {
    pub bounds: Bounds<W>,
    pub rank: u32,
}
