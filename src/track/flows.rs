//! Flow keys and tracked flows, idle timeouts and sweeps, and the partition of a flow.

use std::hash::BuildHasher;
use std::net::IpAddr;

use hashbrown::hash_table::HashTable;
use rustc_hash::FxBuildHasher;

use super::untracked::EniInfo;
use crate::classify::Point;
use crate::model::{Direction, Header, Provider};

pub(super) const SECOND: u64 = 1_000_000_000;

/// A flow key of one address family: the ENI, the protocol and both endpoints as the ENI
/// sees them. IPv4 keys are 20 bytes, so a tracked IPv4 flow takes 32: the flow tables of
/// a large capture stay as small as they can (their cache misses dominate stateful
/// evaluation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct Key<A> {
    pub(super) eni: u32,
    pub(super) local: A,
    pub(super) remote: A,
    pub(super) local_port: u16,
    pub(super) remote_port: u16,
    pub(super) protocol: u8,
}

/// A tracked flow in a partition's table.
#[derive(Clone, Copy, Debug)]
pub(super) struct Tracked<A> {
    pub(super) key: Key<A>,
    pub(super) last_ns: u64,
    pub(super) opened: Direction,
    pub(super) last_dir: Direction,
    /// Direction changes, saturating (UDP becomes a stream at 3).
    pub(super) flips: u8,
}

pub(crate) fn is_echo_request(h: &Header) -> bool {
    matches!((h.protocol(), h.src_port()), (1, 8) | (58, 128))
}

pub(crate) fn is_echo_reply(h: &Header) -> bool {
    matches!((h.protocol(), h.src_port()), (1, 0) | (58, 129))
}

/// The flow key of `h` at `point`, with its addresses as `local` and `remote`.
pub(super) fn key<A>(point: Point, h: &Header, local: A, remote: A) -> Key<A> {
    let (local_port, remote_port) = match (h.ip_protocol().is_tcp_or_udp(), point.direction) {
        (false, _) => (0, 0),
        (true, Direction::Ingress) => (h.dst_port(), h.src_port()),
        (true, Direction::Egress) => (h.src_port(), h.dst_port()),
    };
    Key {
        eni: point.eni,
        local,
        remote,
        local_port,
        remote_port,
        protocol: h.protocol(),
    }
}

/// The hash of `h`'s flow key at `point` (the key of its address family).
pub(super) fn flow_hash(point: Point, h: &Header) -> u64 {
    match (h.local(point.direction), h.remote(point.direction)) {
        (IpAddr::V4(l), IpAddr::V4(r)) => {
            FxBuildHasher.hash_one(key(point, h, u32::from(l), u32::from(r)))
        }
        (l, r) => FxBuildHasher.hash_one(key(point, h, v6_bits(l), v6_bits(r))),
    }
}

pub(super) fn v6_bits(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(a) => u128::from(a.to_ipv6_mapped()),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// The partition of a key hash, from its upper half (the flow table indexes buckets by
/// the low bits, which must stay spread within a partition).
pub(super) fn partition(hash: u64, n: usize) -> usize {
    (((hash >> 32) * n as u64) >> 32) as usize
}

pub(crate) fn timeout(provider: Provider, protocol: u8, flips: u8) -> u64 {
    if provider == Provider::Aliyun {
        return 910 * SECOND;
    }
    match protocol {
        6 => 432_000 * SECOND,
        17 if flips >= 3 => 180 * SECOND,
        17 | 1 | 58 => 30 * SECOND,
        _ => 600 * SECOND,
    }
}

pub(super) fn provider_of(enis: &[EniInfo], eni: u32) -> Provider {
    enis.get(eni as usize)
        .map_or(Provider::Generic, |e| e.provider)
}

/// Forgets the flows idle past their timeout at `latest`.
pub(super) fn sweep<A>(flows: &mut HashTable<Tracked<A>>, enis: &[EniInfo], latest: u64) {
    flows.retain(|e| {
        let provider = provider_of(enis, e.key.eni);
        latest.saturating_sub(e.last_ns) <= timeout(provider, e.key.protocol, e.flips)
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::Table;
    use crate::packet::Item;
    use crate::track::tests::{pkt, state};
    use crate::track::{Config, Evaluator};

    #[test]
    fn tracked_ipv4_flows_take_32_bytes_and_items_no_more_than_a_packet() {
        assert_eq!(std::mem::size_of::<Tracked<u32>>(), 32);
        assert_eq!(
            std::mem::size_of::<Item>(),
            std::mem::size_of::<crate::packet::Packet>()
        );
    }

    #[test]
    fn idle_flows_are_forgotten_between_chunks() {
        let s = state();
        let table = Table::new(&s).unwrap();
        let mut ev = Evaluator::new(&table, &s, Config::default()).unwrap();
        ev.eval(&[pkt(0, "tcp 203.0.113.9:40000 -> 10.0.0.1:22", 0)]);
        assert_eq!(ev.flows(), 1);
        ev.eval(&[pkt(1, "tcp 203.0.113.9:40001 -> 10.0.0.1:22", 400_000)]);
        assert_eq!(ev.flows(), 2);
        ev.eval(&[pkt(2, "tcp 198.51.100.1:1 -> 198.51.100.2:2", 500_000)]);
        assert_eq!(ev.flows(), 1);
    }
}
