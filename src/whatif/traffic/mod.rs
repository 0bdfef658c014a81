//! Traffic before and after a revoke, by connection: what users lose.
//!
//! # The connection model (SEMANTICS 3.4, decision of 2026-12-06)
//!
//! The revoke takes effect at one instant, [`Config::at_ns`] (default: the time of the first
//! packet or record of each input). A *connection* is a two-way conversation keyed by its
//! 5-tuple with the two endpoints in a canonical order (flow-log records also by their ENI,
//! as each ENI logs its own records): TCP is opened by a SYN and closed by an RST or a FIN
//! from each side; TCP, UDP, ICMP echo and other protocols end when idle past their
//! provider's timeout ([`crate::track`]'s table). ICMP other than echo (errors,
//! router messages) is never tracked: each such exchange is judged by the rules alone.
//!
//! The *opener* of a connection is the sender of its SYN (the receiver of a SYN-ACK), the
//! sender of an echo request, and otherwise the sender of its first packet, unless the rules
//! before the revoke refuse that direction and accept the other (a connection first seen
//! by a reply, as a capture started mid-stream or a flow-log window shows it). The opener
//! was *captured* when the connection's first packet is its SYN (UDP, ICMP and other
//! protocols: its first packet goes the opener's way).
//!
//! A connection crosses one or two points (egress at the ENI of the opener's address,
//! ingress at the ENI of the other; a flow-log record only its logged ENI). In each world
//! (before, after) it is judged once, from its two headers:
//!
//! - the opener's direction passes when every point accepts it by the rules;
//! - the reply direction passes when the opener's did and every point either tracks the
//!   connection (replies pass as `established`) or accepts the reply by the rules (AWS
//!   untracked flows, SEMANTICS 3.2, and untracked ICMP);
//! - a direction refused anywhere is refused; otherwise one whose verdict depends on an
//!   unresolved reference is unknown; a refused opener means the reply does not exist
//!   either: it is lost with it.
//!
//! Every packet of a connection before the revoke instant, and every packet of every
//! connection in the world before, takes its direction's verdict of the world before. From
//! the revoke instant on, a connection whose opener was captured at or after it is *new*
//! and takes the verdicts of the world after. A connection *open* at the revoke instant
//! (opened before it, or whose opening was not captured) follows its provider:
//!
//! - AWS (and the generic provider): at a point that tracks it, it keeps its verdicts and
//!   survives until idle; at a point where it is untracked (judged on the state before) its
//!   packets are judged by the rules after, so it is cut at once if they refuse it;
//! - Alibaba: it keeps its verdicts when the rules give each of its directions the same
//!   action after as before at every point, and is judged as new otherwise (cut when the
//!   verdict turns to drop); [`Config::assume_survive`] keeps its verdicts whatever.
//!
//! A connection is **broken** when a packet accepted before is refused after (every such
//! packet and byte is lost); **restored** when a packet refused before is accepted after;
//! **unknown** when a packet's verdict is unknown in one world and not in the other;
//! **surviving** when it is open at
//! the revoke instant, carries packets after it, and survives although the rules after
//! would refuse it as a new connection. Per-packet transitions, rule hits and the timeline
//! are counted from the same verdicts.
//!
//! # Cost and memory
//!
//! Each connection is judged once per world when it is first seen (two to eight lookups),
//! or, an IPv4 one, takes the fate of an earlier connection of its kind: ENIs with the
//! same groups, and fields in the same intervals of the bounds their rules draw
//! (`classes.rs`);
//! each packet costs one probe of its partition's connection table and a few counters.
//! With millions of live connections that probe is a miss to memory, so a partition asks
//! for the table slot and the connection of the items a few places ahead of the one it
//! judges (`conns.rs`), and its misses overlap instead of following one another.
//! Items are routed to [`Config::partitions`] partitions by a hash of their connection key
//! and the partitions run on the rayon pool, each in input order, so the result does not
//! depend on the number of partitions (the tests check it against a plain per-packet
//! replay). Finished connections are folded into per-service totals and a top-N of changed
//! connections ([`Config::top`]); memory follows the live connections, the services and N,
//! not the number of changed flows.
//!
//! # Files
//!
//! - `mod.rs`: [`Config`] and [`Error`], what the what-if takes and how it fails.
//! - `judge.rs`: the [`Judge`]: both states compiled, the verdicts of a connection at each
//!   point in each world, and its fate across the revoke instant.
//! - `keys.rs`: an item as the loop sees it, connection keys and their hash, the ENIs an
//!   opener crosses, the reverse header.
//! - `classes.rs`: the intervals of header fields that no rule tells apart: a partition
//!   judges each kind of connection once and reuses its fate.
//! - `books.rs`: live connections, interned fates, and how items and finished connections
//!   are counted.
//! - `conns.rs`: a partition's table of live connections of one address family, a dense
//!   vector and an open-addressing index of positions that the loop can prefetch.
//! - `tally.rs`: the totals: packets, connections, rule hits, services, the top-N, merged
//!   across partitions.
//! - `run.rs`: the [`Run`]: routing to partitions, fragments, sweeps, the end of an input
//!   and the report's traffic sections.
//! - `wire.rs`: a [`Tally`] (the totals of some connections) as bytes, for the plan that
//!   folds connections on other tasks and machines ([`crate::whatif::fold`]).
//! - `synthetic.rs`: synthetic packets and sessions as items ([`synthetic_items`],
//!   [`synthetic_sessions`], [`synthetic_items_with_flags`]).

mod books;
mod classes;
mod conns;
mod judge;
mod keys;
mod run;
mod synthetic;
mod tally;
mod wire;

pub use judge::Judge;
pub use run::{first_instant, Progress, Run};
pub use synthetic::{synthetic_items, synthetic_items_with_flags, synthetic_sessions};
#[cfg(feature = "fleet")]
pub(crate) use wire::{read_record, write_record, Reader as WireReader, Writer as WireWriter};
pub use wire::{Tally, WireError};

use crate::classify::SemanticsError;
use crate::compile::CompileError;
use crate::packet::TrafficError;

const SECOND: u64 = 1_000_000_000;
/// Distinct clients remembered per service; beyond, the count is a lower bound.
pub const MAX_CLIENTS: usize = 65536;

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const FIN: u8 = 0x01;
const RST: u8 = 0x04;

/// What-if options: the default, then the `with_` methods (fields may be added).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// The revoke instant, ns since the Unix epoch; `None`: the first packet or record of
    /// each input.
    pub at_ns: Option<u64>,
    /// Alibaba: sessions open at the revoke instant survive even when the verdict for their
    /// traffic changes (the default cuts them, SEMANTICS Q9).
    pub assume_survive: bool,
    /// Changed connections listed in `flows`, and clients sampled per service.
    pub top: usize,
    /// Connection partitions (1 = sequential).
    pub partitions: usize,
    /// The most live connections held: past it, after a chunk, the least recently seen
    /// are finished early until a quarter of the bound is free (counted in
    /// `connections.evicted`, with a warning), so that memory stays bounded whatever the
    /// input (about 170 bytes a connection).
    pub max_connections: usize,
}

/// The default [`Config::max_connections`]: about 340 MB of connection tables.
pub const MAX_CONNECTIONS: usize = 2_000_000;

impl Default for Config {
    fn default() -> Self {
        Config {
            at_ns: None,
            assume_survive: false,
            top: 20,
            partitions: 16,
            max_connections: MAX_CONNECTIONS,
        }
    }
}

impl Config {
    /// With the revoke at `at_ns` (ns since the epoch; `None`: each input's first item).
    pub fn with_at(mut self, at_ns: Option<u64>) -> Self {
        self.at_ns = at_ns;
        self
    }

    /// With Alibaba sessions open at the revoke instant surviving (or not).
    pub fn with_assume_survive(mut self, survive: bool) -> Self {
        self.assume_survive = survive;
        self
    }

    /// With `top` changed connections listed and clients sampled per service.
    pub fn with_top(mut self, top: usize) -> Self {
        self.top = top;
        self
    }

    /// With `partitions` connection partitions (1 = sequential).
    pub fn with_partitions(mut self, partitions: usize) -> Self {
        self.partitions = partitions;
        self
    }

    /// With at most `max` live connections held (at least 1).
    pub fn with_max_connections(mut self, max: usize) -> Self {
        self.max_connections = max.max(1);
        self
    }
}

/// Why traffic cannot be judged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A state cannot be compiled.
    #[error(transparent)]
    Compile(#[from] CompileError),
    /// A state cannot be evaluated (an ENI mixes providers or group kinds).
    #[error(transparent)]
    Semantics(#[from] SemanticsError),
    /// A traffic input cannot be read.
    #[error("{input}: {source}")]
    Traffic {
        /// The input's name.
        input: String,
        /// What went wrong.
        source: TrafficError,
    },
}
