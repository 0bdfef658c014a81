//! Cross-product tables (Recursive Flow Classification, Gupta & McKeown 1999) over one
//! group's IPv4 filters: a fixed number of table lookups per packet, whatever the rules.
//! Built by `compile::rfc` for sets where they fit a memory budget; trees serve the rest.
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
//! # Batches
//!
//! [`Rfc::lookup_lanes`] runs each phase over all lanes before the next: the loads of one
//! phase are independent across packets, so the CPU overlaps their cache misses.

use crate::classify::tree::{Key, LANES};

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

    pub fn memory_usage(&self) -> usize {
        match &self.cells {
            Cells::Narrow(c) => c.capacity() * 2,
            Cells::Wide(c) => c.capacity() * 4,
        }
    }
}

/// The seven phase-0 chunks of a key.
#[inline]
fn chunks(key: &Key<u32>) -> [usize; 7] {
    let [r, l] = key.addr;
    [
        (r >> 16) as usize,
        (r & 0xffff) as usize,
        (l >> 16) as usize,
        (l & 0xffff) as usize,
        usize::from(key.ports[0]),
        usize::from(key.ports[1]),
        usize::from(key.proto),
    ]
}

/// Cross-product tables over one set of IPv4 filters (see the module docs).
#[derive(Debug)]
pub(crate) struct Rfc {
    /// Phase 0, per chunk: value → class (65,536 entries; 256 for the protocol).
    pub chunk: [Vec<u16>; 7],
    /// Phase 1: remote (high, low), local (high, low), ports (source, destination).
    pub remote: Cross,
    pub local: Cross,
    pub ports: Cross,
    /// Phase 2: two pairs of the phase-1 classes (remote, local, ports, protocol), picked
    /// at build time as `pairs` says (indexes into those four).
    pub pairs: [usize; 4],
    pub left: Cross,
    pub right: Cross,
    /// Phase 3: final class of (left, right).
    pub last: Cross,
    /// Final class `c` lists `ranks[starts[c]..starts[c + 1]]`, ascending.
    pub starts: Vec<u32>,
    pub ranks: Vec<u32>,
    /// The smallest rank listed (`u32::MAX` when there is none).
    pub min: u32,
    /// Number of filters the tables were built from.
    pub filters: usize,
}

impl Rfc {
    /// The final class of a key.
    #[inline]
    fn class(&self, key: &Key<u32>) -> u32 {
        let c = chunks(key);
        let remote = self
            .remote
            .get(self.chunk[0][c[0]].into(), self.chunk[1][c[1]].into());
        let local = self
            .local
            .get(self.chunk[2][c[2]].into(), self.chunk[3][c[3]].into());
        let ports = self
            .ports
            .get(self.chunk[4][c[4]].into(), self.chunk[5][c[5]].into());
        let c1 = [remote, local, ports, self.chunk[6][c[6]].into()];
        let p = &self.pairs;
        let left = self.left.get(c1[p[0]], c1[p[1]]);
        let right = self.right.get(c1[p[2]], c1[p[3]]);
        self.last.get(left, right)
    }

    /// The first rank below `bound` in final class `class` accepted by `ok`, else `bound`.
    #[inline]
    fn scan(&self, class: u32, bound: u32, ok: &impl Fn(u32) -> bool) -> u32 {
        let (s, e) = (
            self.starts[class as usize] as usize,
            self.starts[class as usize + 1] as usize,
        );
        for &rank in &self.ranks[s..e] {
            if rank >= bound {
                break;
            }
            if ok(rank) {
                return rank;
            }
        }
        bound
    }

    /// The smallest rank below `best` among filters containing `key` and accepted by `ok`,
    /// else `best`.
    #[inline]
    pub fn lookup(&self, key: &Key<u32>, best: u32, ok: &impl Fn(u32) -> bool) -> u32 {
        if self.min_rank() >= best {
            return best;
        }
        self.scan(self.class(key), best, ok)
    }

    /// [`Rfc::lookup`] of up to [`LANES`] keys at once, lowering `best`; `ok(i, rank)`
    /// accepts a filter for key `i`. Each phase runs over every lane before the next.
    #[inline]
    pub fn lookup_lanes(
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
        for i in 0..n {
            let c = chunks(&keys[i]);
            for k in 0..7 {
                c0[i][k] = self.chunk[k][c[k]].into();
            }
        }
        let mut c1 = [[0u32; 4]; LANES];
        for i in 0..n {
            let c = &c0[i];
            c1[i] = [
                self.remote.get(c[0], c[1]),
                self.local.get(c[2], c[3]),
                self.ports.get(c[4], c[5]),
                c[6],
            ];
        }
        let mut c2 = [[0u32; 2]; LANES];
        let p = &self.pairs;
        for i in 0..n {
            let c = &c1[i];
            c2[i] = [
                self.left.get(c[p[0]], c[p[1]]),
                self.right.get(c[p[2]], c[p[3]]),
            ];
        }
        let mut last = [0u32; LANES];
        for i in 0..n {
            last[i] = self.last.get(c2[i][0], c2[i][1]);
        }
        for i in 0..n {
            best[i] = self.scan(last[i], best[i], &|r| ok(i, r));
        }
    }

    /// The smallest rank listed (`u32::MAX` when there is none).
    #[inline]
    pub fn min_rank(&self) -> u32 {
        self.min
    }

    /// Number of filters the tables were built from.
    pub fn filters(&self) -> usize {
        self.filters
    }

    /// Bytes held by the tables.
    pub fn memory_usage(&self) -> usize {
        use std::mem::size_of;
        self.chunk
            .iter()
            .map(|c| c.capacity() * size_of::<u16>())
            .sum::<usize>()
            + [
                &self.remote,
                &self.local,
                &self.ports,
                &self.left,
                &self.right,
                &self.last,
            ]
            .iter()
            .map(|x| x.memory_usage())
            .sum::<usize>()
            + (self.starts.capacity() + self.ranks.capacity()) * size_of::<u32>()
    }
}
