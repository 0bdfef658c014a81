//! Cross-product tables (Recursive Flow Classification, Gupta & McKeown 1999) over one
//! group's IPv4 filters: a fixed number of table lookups per packet, whatever the rules.
//! Built by `index::rfc::build` for sets where they fit a memory budget; trees serve the rest.
//!
//! # Layout
//!
//! A packet's five fields are cut into seven chunks: the high and low 16 bits of each
//! address, the two ports, the protocol. Every chunk value falls in an *equivalence class*:
//! values that the same filters' chunk ranges hold share a class. Phase 0 maps each chunk
//! value to its class by a direct table. Each later phase maps a pair of classes to the
//! class of their combination (the filters holding both) by a two-dimensional table:
//!
//! ```text
//! phase 0   rem.hi  rem.lo   loc.hi  loc.lo   sport  dport   proto
//! phase 1     └─ remote ─┘     └─ local ─┘     └─ ports ─┘      │
//! phase 2          └──── addresses ────┘           └── service ─┘
//! phase 3                     └─────── final class ──────┘
//! ```
//!
//! A final class is a list of the ranks of every filter whose box holds the packet, in
//! rank order. The lookup returns the first one accepted by `ok` (a live rule; for a group
//! peer, the remote address is a member), so revokes need no rebuild: a tombstoned rule is
//! skipped where it appears. Nothing is pruned, so no revoke ever needs a patch.
//!
//! # Split tail
//!
//! The final table has a cell for every pair of phase-2 classes, and wildcards make those
//! many: on the ClassBench ipc1 10k set, 72,945 address classes by 3,333 service classes
//! (243 million cells). Where it does not fit, the tables stop after phase 2 ([`Tail::Split`]):
//! the address class lists, in rank order, the filters whose remote and local ranges hold
//! the packet's addresses, and the service class is a bitset of the filters whose ports and
//! protocol hold the packet's. The match is the first listed filter whose service bit is
//! set. Addresses are what rules single out, so the lists are short (on ipc1 10k, 22
//! filters a class on average, and a lookup reads 1.9 of them before its match) while the
//! tables take 3.4 KiB a rule (the final table alone would take at least 53). Revokes
//! work as for the product: tombstones.
//!
//! # Batches
//!
//! [`Rfc::lookup_lanes`] runs each phase over all lanes before the next: the loads of one
//! phase are independent across packets, so the CPU overlaps their cache misses. The split
//! tail's list reads stay one lane at a time: staging them across lanes gained nothing
//! where tables miss the cache and lost where they sit in it.

pub(crate) mod build;

use crate::index::tree::{Key, LANES};

/// The table of a phase: cell `a * width + b` is the class of the pair `(a, b)`.
#[derive(Debug, Clone)]
pub(crate) struct Cross {
    pub cells: Cells,
    pub width: u32,
}

/// A phase's classes, two bytes each where they all fit.
#[derive(Debug, Clone)]
pub(crate) enum Cells {
    Narrow(Vec<u16>),
    Wide(Vec<u32>),
}

impl Cross {
    #[inline]
    fn get(&self, a: u32, b: u32) -> u32 {
        let i = a as usize * self.width as usize + b as usize;
        match &self.cells {
            Cells::Narrow(c) => c[i].into(),
            Cells::Wide(c) => c[i],
        }
    }

    pub(crate) fn memory_usage(&self) -> usize {
        match &self.cells {
            Cells::Narrow(c) => c.capacity() * 2,
            Cells::Wide(c) => c.capacity() * 4,
        }
    }
}

/// The six 16-bit phase-0 chunks of a key (the protocol is the seventh).
#[inline]
fn chunks(key: &Key<u32>) -> [u16; 6] {
    let (r, l) = (key.remote(), key.local());
    let [sport, dport] = key.ports();
    [
        (r >> 16) as u16,
        r as u16,
        (l >> 16) as u16,
        l as u16,
        sport,
        dport,
    ]
}

/// A phase-0 table of a 16-bit chunk: value → class.
pub(crate) type Chunk16 = Box<[u16; 1 << 16]>;

/// The first rank below `bound` accepted by `ok` among the filters at `list` (positions,
/// ascending) whose bit is set in `bits`, else `bound`; `ranks` gives a position's rank.
#[inline]
fn first_split(
    list: &[u32],
    bits: &[u64],
    ranks: &[u32],
    bound: u32,
    ok: &impl Fn(u32) -> bool,
) -> u32 {
    for &p in list {
        if bits[(p / 64) as usize] & (1 << (p % 64)) == 0 {
            continue;
        }
        let rank = ranks[p as usize];
        if rank >= bound {
            break;
        }
        if ok(rank) {
            return rank;
        }
    }
    bound
}

/// Cross-product tables over one set of IPv4 filters (see the module docs).
#[derive(Debug)]
pub(crate) struct Rfc {
    /// Phase 0, per 16-bit chunk: value → class. (Whole tables indexed by the chunk's
    /// value: no bounds check.)
    pub chunk: [Chunk16; 6],
    /// Phase 0 of the protocol: value → class.
    pub proto: Box<[u16; 256]>,
    /// Phase 1: remote (high, low), local (high, low), ports (source, destination).
    pub remote: Cross,
    pub local: Cross,
    pub ports: Cross,
    /// What follows phase 1.
    pub tail: Tail,
    /// The smallest rank listed (`u32::MAX` when there is none).
    pub min: u32,
    /// Number of filters the tables were built from.
    pub filters: usize,
}

/// What follows phase 1: two more phases to one final class, or one more phase to an
/// address class and a service class whose sets are intersected at lookup.
#[derive(Debug)]
pub(crate) enum Tail {
    /// Phases 2 and 3: the final class lists every rank whose box holds the packet.
    Product {
        /// Phase 2: two pairs of the phase-1 classes (remote, local, ports, protocol),
        /// picked at build time as `pairs` says (indexes into those four).
        pairs: [usize; 4],
        left: Cross,
        right: Cross,
        /// Phase 3: final class of (left, right).
        last: Cross,
        /// Final class `c` lists `ranks[starts[c]..starts[c + 1]]`, ascending.
        starts: Vec<u32>,
        ranks: Vec<u32>,
    },
    /// Phase 2 only: the *address class* (of remote and local) lists the filters whose
    /// addresses hold the packet's, by position (rank order); the *service class* (of
    /// ports and protocol) is a bitset over positions of the filters whose ports and
    /// protocol hold the packet's. The match is the first listed position whose bit is
    /// set. Where the final table would not fit (wildcards make the pairs of address and
    /// service classes many), the lists stay short: addresses are what rules single out.
    Split {
        address: Cross,
        service: Cross,
        /// Address class `c` lists `positions[starts[c]..starts[c + 1]]`, ascending.
        starts: Vec<u32>,
        positions: Vec<u32>,
        /// Service class `c` is `bits[c * words..(c + 1) * words]`; bit `i` is position `i`.
        bits: Vec<u64>,
        words: usize,
        /// Per position, the filter's rank.
        ranks: Vec<u32>,
    },
}

impl Rfc {
    /// Phase 0: the classes of a key's seven chunks.
    #[inline(always)]
    fn phase0(&self, key: &Key<u32>) -> [u32; 7] {
        let c = chunks(key);
        let mut out = [0u32; 7];
        for ((o, t), &v) in out.iter_mut().zip(&self.chunk).zip(&c) {
            *o = t[usize::from(v)].into();
        }
        out[6] = self.proto[usize::from(key.proto())].into();
        out
    }

    /// Phase 1, from the chunks' classes: remote, local, ports, protocol.
    #[inline(always)]
    fn phase1(&self, c: &[u32; 7]) -> [u32; 4] {
        [
            self.remote.get(c[0], c[1]),
            self.local.get(c[2], c[3]),
            self.ports.get(c[4], c[5]),
            c[6],
        ]
    }

    /// Phase 2 of the tail, from the phase-1 classes: the product's left and right
    /// classes, or the split tail's address and service classes.
    #[inline(always)]
    fn phase2(&self, c1: &[u32; 4]) -> [u32; 2] {
        match &self.tail {
            Tail::Product {
                pairs: p,
                left,
                right,
                ..
            } => [left.get(c1[p[0]], c1[p[1]]), right.get(c1[p[2]], c1[p[3]])],
            Tail::Split {
                address, service, ..
            } => [address.get(c1[0], c1[1]), service.get(c1[2], c1[3])],
        }
    }

    /// Phase 3 of the tail: the product's final class (then 0), or the split tail's
    /// classes as they are.
    #[inline(always)]
    fn phase3(&self, c2: [u32; 2]) -> [u32; 2] {
        match &self.tail {
            Tail::Product { last, .. } => [last.get(c2[0], c2[1]), 0],
            Tail::Split { .. } => c2,
        }
    }

    /// The first rank below `bound` of the classes `last` (see [`Rfc::phase3`]) accepted
    /// by `ok`, else `bound`.
    #[inline]
    fn scan(&self, last: [u32; 2], bound: u32, ok: &impl Fn(u32) -> bool) -> u32 {
        match &self.tail {
            Tail::Product { starts, ranks, .. } => {
                let c = last[0] as usize;
                for &rank in &ranks[starts[c] as usize..starts[c + 1] as usize] {
                    if rank >= bound {
                        break;
                    }
                    if ok(rank) {
                        return rank;
                    }
                }
            }
            Tail::Split {
                starts,
                positions,
                bits,
                words,
                ranks,
                ..
            } => {
                let c = last[0] as usize;
                let service = last[1] as usize * words;
                let list = &positions[starts[c] as usize..starts[c + 1] as usize];
                return first_split(list, &bits[service..service + words], ranks, bound, ok);
            }
        }
        bound
    }

    /// The smallest rank below `best` among filters containing `key` and accepted by `ok`,
    /// else `best`.
    #[inline]
    pub(crate) fn lookup(&self, key: &Key<u32>, best: u32, ok: &impl Fn(u32) -> bool) -> u32 {
        if self.min_rank() >= best {
            return best;
        }
        let c1 = self.phase1(&self.phase0(key));
        self.scan(self.phase3(self.phase2(&c1)), best, ok)
    }

    /// [`Rfc::lookup`] of up to [`LANES`] keys at once, lowering `best`; `ok(i, rank)`
    /// accepts a filter for key `i`. Each phase runs over every lane before the next.
    #[inline]
    pub(crate) fn lookup_lanes(
        &self,
        keys: &[Key<u32>],
        best: &mut [u32],
        ok: &impl Fn(usize, u32) -> bool,
    ) {
        let n = keys.len().min(LANES).min(best.len());
        let min = self.min_rank();
        if best[..n].iter().all(|&b| b <= min) {
            return;
        }
        let mut c0 = [[0u32; 7]; LANES];
        for (c0, key) in c0.iter_mut().zip(&keys[..n]) {
            *c0 = self.phase0(key);
        }
        let mut c1 = [[0u32; 4]; LANES];
        for (c1, c0) in c1.iter_mut().zip(&c0[..n]) {
            *c1 = self.phase1(c0);
        }
        let mut c2 = [[0u32; 2]; LANES];
        for (c2, c1) in c2.iter_mut().zip(&c1[..n]) {
            *c2 = self.phase2(c1);
        }
        for c in &mut c2[..n] {
            *c = self.phase3(*c);
        }
        for i in 0..n {
            best[i] = self.scan(c2[i], best[i], &|r| ok(i, r));
        }
    }

    /// The smallest rank listed (`u32::MAX` when there is none).
    #[inline]
    pub(crate) fn min_rank(&self) -> u32 {
        self.min
    }

    /// Number of filters the tables were built from.
    pub(crate) fn filters(&self) -> usize {
        self.filters
    }

    /// Bytes held by the tables.
    pub(crate) fn memory_usage(&self) -> usize {
        use std::mem::size_of;
        let front = self.chunk.len() * size_of::<[u16; 1 << 16]>()
            + size_of::<[u16; 256]>()
            + [&self.remote, &self.local, &self.ports]
                .iter()
                .map(|x| x.memory_usage())
                .sum::<usize>();
        let tail = match &self.tail {
            Tail::Product {
                left,
                right,
                last,
                starts,
                ranks,
                ..
            } => {
                left.memory_usage()
                    + right.memory_usage()
                    + last.memory_usage()
                    + (starts.capacity() + ranks.capacity()) * size_of::<u32>()
            }
            Tail::Split {
                address,
                service,
                starts,
                positions,
                bits,
                ranks,
                ..
            } => {
                address.memory_usage()
                    + service.memory_usage()
                    + (starts.capacity() + positions.capacity() + ranks.capacity())
                        * size_of::<u32>()
                    + bits.capacity() * size_of::<u64>()
            }
        };
        front + tail
    }

    /// Whether the tail is split (address lists and service bitsets).
    pub(crate) fn split(&self) -> bool {
        matches!(self.tail, Tail::Split { .. })
    }
}
