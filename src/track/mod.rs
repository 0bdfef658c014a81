//! Where traffic is judged, connection state, and the (parallel) evaluation of a stream.
//!
//! # Files
//!
//! - `mod.rs`: [`Config`], [`Outcome`] and [`Stats`], what evaluation takes and gives.
//! - `flows.rs`: flow keys, tracked flows, idle timeouts and sweeps, partition hashing.
//! - `untracked.rs`: AWS untracked flows, the rules open to anywhere per ENI and
//!   direction ([`untracked_enis`]), and what evaluation knows of each ENI.
//! - `judge.rs`: one evaluation against a partition's flows, ICMP flow-log records
//!   without a type included.
//! - `places.rs`: [`Places`], what locating items needs of a state (ENI tracking, addresses
//!   and IDs to ENIs, ICMP classes), built once and shareable.
//! - `evaluator.rs`: the [`Evaluator`]: locating points, fragments, routing sub-chunks to
//!   partitions, sweeps and the flow-table bound, counters.
//!
//! # Points
//!
//! A packet is judged where a security group sees it: **egress at the ENI that owns its
//! source address** and **ingress at the ENI that owns its destination address**, both
//! found by [`Table::eni_of`](crate::compile::Table::eni_of) (private and public addresses). A packet between two known
//! ENIs is judged twice (egress first); one that touches no known ENI is counted in
//! [`Stats::unmatched`] and produces no outcome. [`Config::only`] restricts evaluation to
//! one ENI.
//!
//! A flow-log record is judged once, at its logged ENI, in its logged direction (v5
//! `flow-direction`, Alibaba `direction`). Without a logged direction it is inferred from
//! the ENI's addresses (SEMANTICS 4.1): destination owned by the ENI ⇒ ingress, source
//! owned ⇒ egress. When the record names no ENI of the state, or neither address belongs
//! to it, the record is located by address like a packet.
//!
//! # Connection state
//!
//! Security groups of both clouds are stateful. State is kept per ENI and per flow:
//! `(ENI, protocol, local address, local port, remote address, remote port)`; for ICMP the
//! ports are left out and only echo (request 8/128, reply 0/129) is tracked. A flow-log
//! record of ICMP carries no type or code (AWS logs ports `0 0`): it is judged by what the
//! rules give over every type and code (one probe per class of types the rules tell
//! apart); where they differ, a logged ACCEPT means a type some rule accepts, else the
//! verdict is unknown ([`By::UnloggedIcmp`]). Such a record may be a request or a reply:
//! an accepted one opens an exchange and a record the other way within the timeout is its
//! reply. A packet that
//! a rule (or default) accepts opens or refreshes the flow; a later packet of the flow in
//! the *other* direction passes as `established` without consulting the rules, and a later
//! packet in the opening direction that the rules would now drop also passes as
//! `established` (a revoke does not cut a tracked connection). Idle timeouts, measured
//! between packet timestamps (a flow-log record arrives at its `start` and keeps its flow
//! active until its `end`, since it aggregates a window):
//!
//! | provider | TCP | UDP | ICMP echo | other |
//! |---|---|---|---|---|
//! | AWS (and generic) | 432000 s | 30 s, 180 s once a stream (≥ 3 direction changes) | 30 s | 600 s |
//! | Alibaba | 910 s | 910 s | 910 s | 910 s |
//!
//! For protocols other than TCP, UDP and ICMP only the addresses and the protocol are
//! tracked (AWS: "same-type traffic back within 600 s counts as response"), so their port
//! words are left out of the key.
//!
//! **AWS untracked flows** (SEMANTICS 3.2): a TCP or UDP packet accepted at an AWS ENI
//! opens no flow when an accepting rule of its direction with an any-address peer
//! (`0.0.0.0/0`, `::/0`) matches it, one of the other direction matches its reply, and one
//! of the two covers all ports (AWS: "a rule in the other direction that permits all
//! response traffic … for any port"). The condition is symmetric, so a flow first seen by
//! its reply is untracked too. Such a flow's replies are judged by the rules (reason
//! `rule`), and a revoke of an enabling rule cuts it at once. ICMP is always tracked.
//!
//! TCP FIN/RST do not close a flow (only timeouts do), and a flow seen mid-stream is opened
//! by whichever packet is accepted first. At the end of a chunk, flows idle past their
//! timeout at the chunk's latest timestamp are forgotten once the clock has moved 30 s
//! since the last sweep (and a quarter as many packets as flows held have been judged)
//! or the table has doubled (memory follows the live flows;
//! timestamps are assumed to be roughly in order, as captures and flow logs are). An idle
//! flow found before its sweep is forgotten on the spot.
//!
//! The table is bounded ([`Config::max_flows`]): when a chunk leaves more flows than that,
//! every expired flow is forgotten, then the least recently seen flows of all partitions
//! together until a quarter of the bound is free ([`Stats::evicted`]), as a full
//! connection-tracking table forgets connections. The choice depends on the flows alone, so
//! the result does not depend on the partitioning.
//!
//! # Fragments
//!
//! A non-first fragment (no ports) takes the ports of the first fragment with the same
//! `(source, destination, protocol, identification)` seen earlier in the input; without
//! one it is judged with ports 0. At most 65536 fragment keys are remembered.
//!
//! # Parallel evaluation
//!
//! Items are evaluated in chunks. Within a chunk every evaluation is assigned to one of
//! [`Config::partitions`] partitions by a hash of its flow key; each partition owns the
//! state of its flows and processes its evaluations in input order, on the rayon pool;
//! the outcomes are merged back into input order. Because flows never share state, the
//! result equals the sequential one (`partitions = 1`), which the tests check.

mod evaluator;
mod flows;
mod judge;
mod places;
mod untracked;

use crate::classify::{By, Decision, Point, Verdict};

pub use evaluator::Evaluator;

pub(crate) use flows::{is_echo_reply, is_echo_request, timeout};
pub use places::Places;
pub use untracked::untracked_enis;
pub(crate) use untracked::{eni_infos, EniInfo};

/// Hash maps on the per-packet path use FxHash: fast, and the keys are not attacker-chosen
/// in a way that matters to an offline simulator.
type Map<K, V> =
    std::collections::HashMap<K, V, std::hash::BuildHasherDefault<rustc_hash::FxHasher>>;

/// Evaluation options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Judge only at this ENI (index in the state).
    pub only: Option<u32>,
    /// Number of flow partitions (1 = sequential).
    pub partitions: usize,
    /// Judge every item by the rules alone: no connection state, so no `established`
    /// outcomes (what a stateless filter, or a check of the rules against each flow-log
    /// record on its own, would say).
    pub stateless: bool,
    /// The most tracked flows kept between chunks (all partitions together): past it, flows
    /// idle past their timeout are forgotten, then the least recently seen until a
    /// quarter of the bound is free ([`Stats::evicted`] counts them). A flow evicted early
    /// treats its next packet as new, as a full connection-tracking table would.
    pub max_flows: usize,
}

/// The default [`Config::max_flows`]: about 69 MiB of IPv4 flow tables (136 MiB of IPv6)
/// at most over 8 partitions, hashbrown tables being sized in powers of two at a 7/8
/// load.
pub const MAX_FLOWS: usize = 1_000_000;

impl Default for Config {
    fn default() -> Self {
        Config {
            only: None,
            partitions: 16,
            stateless: false,
            max_flows: MAX_FLOWS,
        }
    }
}

/// The verdict on one item at one point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The item's index in its input.
    pub index: u64,
    /// Where it was judged.
    pub point: Point,
    /// The rules' verdict (for `established` outcomes: what the rules would say, or the
    /// default when they were not consulted).
    pub verdict: Verdict,
    /// Accepted because it belongs to a tracked connection.
    pub established: bool,
}

impl Outcome {
    /// The final verdict: accept, drop, or unknown where an unresolved reference decides.
    pub fn action(&self) -> Decision {
        if self.established {
            Decision::Accept
        } else {
            self.verdict.action
        }
    }

    /// `rule`, `default` or `established`. Alibaba's implicit accept between members of a
    /// basic group is one of its default rules: it is reported as `default`, with
    /// [`Outcome::detail`] saying `inner-access`.
    pub fn reason(&self) -> &'static str {
        if self.established {
            return "established";
        }
        match self.verdict.by {
            By::Rule(_) => "rule",
            By::InnerAccess(_) | By::Default => "default",
            By::Unresolved(_) | By::UnloggedIcmp => "unresolved",
        }
    }

    /// A finer reason where one exists (`inner-access`; `icmp-type-not-logged` for an
    /// ICMP flow-log record the rules judge differently by type).
    pub fn detail(&self) -> Option<&'static str> {
        match (self.established, self.verdict.by) {
            (false, By::InnerAccess(_)) => Some("inner-access"),
            (false, By::UnloggedIcmp) => Some("icmp-type-not-logged"),
            _ => None,
        }
    }

    /// The deciding rule's table index, when a rule decided.
    pub fn rule(&self) -> Option<u32> {
        match (self.established, self.verdict.by) {
            (false, By::Rule(i)) => Some(i),
            _ => None,
        }
    }
}

/// Counters over everything evaluated so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Items seen.
    pub items: u64,
    /// Outcomes produced (an item between two ENIs yields two).
    pub evaluations: u64,
    /// Outcomes that accept.
    pub accepted: u64,
    /// Outcomes that drop.
    pub dropped: u64,
    /// Outcomes an unresolved reference leaves unknown.
    pub unknown: u64,
    /// Outcomes accepted as established.
    pub established: u64,
    /// Items that touch no known ENI (or not the selected one).
    pub unmatched: u64,
    /// Non-first fragments judged with ports 0 (their first fragment was not seen).
    pub orphan_fragments: u64,
    /// Hits per rule, by table index.
    pub rule_hits: Vec<u64>,
    /// Tracked flows forgotten before their idle timeout because the flow table was full
    /// ([`Config::max_flows`]).
    pub evicted: u64,
}

#[cfg(test)]
pub(super) mod tests {
    //! Helpers the tests of every file here share.

    use crate::model::{Header, State};
    use crate::packet::decode::Packet;
    use crate::packet::Item;

    /// An AWS ENI with SSH and ping open to anywhere.
    pub(crate) fn state() -> State {
        serde_json::from_value(serde_json::json!({
            "groups": [{"id": "sg-web", "provider": "aws"}],
            "rules": [
                {"id": "r-ssh", "group": "sg-web", "direction": "ingress", "action": "accept",
                 "protocol": 6, "dst_ports": "22", "remote": {"cidr": "0.0.0.0/0"}},
                {"id": "r-ping", "group": "sg-web", "direction": "ingress", "action": "accept",
                 "protocol": 1, "remote": {"cidr": "0.0.0.0/0"}}
            ],
            "enis": [{"id": "eni-a", "ips": ["10.0.0.1"], "groups": ["sg-web"]}]
        }))
        .unwrap()
    }

    /// The packet `text` at `ts` seconds.
    pub(crate) fn pkt(index: u64, text: &str, ts: u64) -> Item {
        let header: Header = text.parse().unwrap();
        Item::Packet(Packet {
            index,
            ts_ns: ts * super::flows::SECOND,
            header,
            wire_len: 60,
            cap_len: 60,
            transport: crate::packet::Transport::of(&header, 0),
            fragment: None,
            interface: 0,
        })
    }
}
