//! Connection keys: an item as the loop sees it, its canonical key and hash, the ENIs its
//! opener crosses, and the header of the other direction.

use std::hash::{BuildHasher, Hash};
use std::net::IpAddr;

use rustc_hash::FxBuildHasher;

use super::judge::{Ends, Judge};
use super::SECOND;
use crate::model::{Action, Direction, Header};
use crate::packet::Item;
use crate::track::{is_echo_reply, is_echo_request};

/// A connection key of one address family: endpoints in canonical order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct Key<A> {
    pub(super) a: A,
    pub(super) b: A,
    pub(super) a_port: u16,
    pub(super) b_port: u16,
    pub(super) protocol: u8,
    /// The logging ENI of a flow-log record (`u32::MAX` for packets).
    eni: u32,
}

/// An address as the key word of its family.
pub(super) trait Word: Copy + Eq + Ord + Hash + Send + Sync + std::fmt::Debug {
    fn addr(self) -> IpAddr;
}

impl Word for u32 {
    fn addr(self) -> IpAddr {
        IpAddr::V4(self.into())
    }
}

impl Word for u128 {
    fn addr(self) -> IpAddr {
        let v6 = std::net::Ipv6Addr::from(self);
        IpAddr::V6(v6)
    }
}

/// Whether connections of `protocol` are told apart by ports.
fn ported(h: &Header) -> bool {
    !h.ip_protocol().is_icmp() || !(is_echo_request(h) || is_echo_reply(h))
}

/// The canonical key of a header: (key, whether the source is side `a`).
pub(super) fn key_of<A: Word>(h: &Header, src: A, dst: A, eni: u32) -> (Key<A>, bool) {
    let (sp, dp) = if ported(h) {
        (h.src_port(), h.dst_port())
    } else {
        (0, 0)
    };
    if h.ip_protocol().is_icmp() && ported(h) {
        // Untracked ICMP: one "connection" per addresses and type/code, never canonical.
        return (
            Key {
                a: src,
                b: dst,
                a_port: sp,
                b_port: dp | 0x8000,
                protocol: h.protocol(),
                eni,
            },
            true,
        );
    }
    if (src, sp) <= (dst, dp) {
        (
            Key {
                a: src,
                b: dst,
                a_port: sp,
                b_port: dp,
                protocol: h.protocol(),
                eni,
            },
            true,
        )
    } else {
        (
            Key {
                a: dst,
                b: src,
                a_port: dp,
                b_port: sp,
                protocol: h.protocol(),
                eni,
            },
            false,
        )
    }
}

/// The hash of a connection key: items are routed to partitions by it, and each
/// partition's table ([`super::conns::Conns`]) indexes by it.
pub(super) fn key_hash<A: Word>(k: &Key<A>) -> u64 {
    FxBuildHasher.hash_one(k)
}

pub(super) fn v6_bits(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(a) => u128::from(a.to_ipv6_mapped()),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// An item as the loop sees it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Seen {
    pub(super) header: Header,
    pub(super) ts_ns: u64,
    /// Until when it keeps its connection active: a packet's time, a flow-log record's
    /// window end (it aggregates the window).
    pub(super) until_ns: u64,
    pub(super) packets: u64,
    pub(super) bytes: u64,
    pub(super) flags: u8,
    /// The flags were seen: a packet's, a record's `tcp-flags` when the log has them.
    pub(super) flags_logged: bool,
    /// Flow-log records: the logging ENI and direction.
    pub(super) record: Option<(Option<u32>, Option<Direction>)>,
    pub(super) logged: Option<Action>,
    /// The flow log's `reject-reason` (AWS v8), when it gave one: `BPA` (VPC Block Public
    /// Access) is the only documented value; anything else counts as other.
    pub(super) reject: Option<RejectReason>,
}

/// A `reject-reason` a flow log gave (kept small: the loop copies what it sees).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum RejectReason {
    /// VPC Block Public Access.
    Bpa,
    /// A value sgsim does not know.
    Other,
}

impl RejectReason {
    fn of(text: &str) -> RejectReason {
        if text.eq_ignore_ascii_case("BPA") {
            RejectReason::Bpa
        } else {
            RejectReason::Other
        }
    }

    pub(super) fn as_str(self) -> &'static str {
        match self {
            RejectReason::Bpa => "BPA",
            RejectReason::Other => "other",
        }
    }
}

impl Judge {
    pub(super) fn seen(&self, item: &Item, fixed: Option<Header>) -> Seen {
        match item {
            Item::Packet(p) => Seen {
                header: fixed.unwrap_or(p.header),
                ts_ns: p.ts_ns,
                until_ns: p.ts_ns,
                packets: 1,
                bytes: u64::from(p.wire_len),
                flags: p.tcp_flags().unwrap_or(0),
                flags_logged: true,
                record: None,
                logged: None,
                reject: None,
            },
            Item::Flow(r) => Seen {
                header: r.header,
                ts_ns: r.start.saturating_mul(SECOND),
                until_ns: r.end.max(r.start).saturating_mul(SECOND),
                packets: r.packets.max(1),
                bytes: r.bytes,
                flags: r.tcp_flags.unwrap_or(0),
                flags_logged: r.tcp_flags.is_some(),
                record: Some((
                    r.eni.as_ref().and_then(|id| self.eni_ids.get(id).copied()),
                    r.direction,
                )),
                logged: r.action,
                reject: r.reject_reason.as_deref().map(RejectReason::of),
            },
        }
    }

    /// The key ENI of an item (records: their logging ENI).
    pub(super) fn key_eni(s: &Seen) -> u32 {
        match s.record {
            Some((Some(e), _)) => e,
            _ => u32::MAX,
        }
    }

    pub(super) fn hash(&self, s: &Seen) -> u64 {
        let eni = Judge::key_eni(s);
        let h = &s.header;
        match (h.src(), h.dst()) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                key_hash(&key_of(h, u32::from(a), u32::from(b), eni).0)
            }
            (a, b) => key_hash(&key_of(h, v6_bits(a), v6_bits(b), eni).0),
        }
    }

    /// The ENIs of a connection's opener `h` (source side, destination side), from the
    /// first item seen (`s`, whose header is `h` or its reverse).
    pub(super) fn ends(&self, s: &Seen, h: &Header, reversed: bool) -> Ends {
        match s.record {
            None => [self.eni_of(h.src()), self.eni_of(h.dst())],
            Some((eni, direction)) => {
                let owns = |e: u32, a: IpAddr| self.eni_of(a) == Some(e);
                let rh = &s.header;
                // The record's own direction at its ENI.
                let (e, d) = match (eni, direction) {
                    (Some(e), Some(d)) => (Some(e), Some(d)),
                    (Some(e), None) if owns(e, rh.dst()) => (Some(e), Some(Direction::Ingress)),
                    (Some(e), None) if owns(e, rh.src()) => (Some(e), Some(Direction::Egress)),
                    (None, Some(d)) => (self.eni_of(rh.local(d)), Some(d)),
                    _ => (None, None),
                };
                match (e, d) {
                    (Some(e), Some(d)) => {
                        // The record's source side is the opener's source side unless
                        // reversed.
                        let src_side = (d == Direction::Egress) != reversed;
                        if src_side {
                            [Some(e), None]
                        } else {
                            [None, Some(e)]
                        }
                    }
                    _ => [self.eni_of(h.src()), self.eni_of(h.dst())],
                }
            }
        }
    }
}

/// The header of the other direction: addresses and ports swapped, an echo request
/// answered by an echo reply and the other way round.
pub(super) fn reverse(h: &Header) -> Header {
    let r = h.reversed();
    let src_port = match (h.protocol(), h.src_port()) {
        (1, 8) => 0,
        (1, 0) => 8,
        (58, 128) => 129,
        (58, 129) => 128,
        _ => r.src_port(),
    };
    r.with_ports(src_port, r.dst_port())
}
