//! Headers that no rule tells apart, so that a connection's fate is worked out once per
//! kind of connection instead of once per connection.
//!
//! A fleet's day of flow logs holds millions of connections, nearly all of them alike to
//! the rules: they differ in the client's port and address, which no rule looks at
//! (beyond the blocks it names). Judging each one (both worlds, opener and reply, the
//! untracked condition, interning its fate) cost some 1,400 instructions, more than all
//! the rest of an item's work. [`Classes`] cuts each field of an IPv4 TCP or UDP header
//! into the elementary intervals of every bound that either state's rules and prefix
//! lists draw on it, and tells addresses apart by the groups they are members of (the
//! compiled tables' membership classes, in each world); a partition keeps the fate of each
//! [`FateKey`] it has judged.
//!
//! Why two headers with one key have one fate: every verdict depends on a header only
//! through a rule matching it (its remote and local blocks, prefix-list entries, port
//! ranges, protocol, and a group peer's members), Alibaba's inner access (members again),
//! the AWS untracked condition (ports and protocol) and the reply header (the same fields
//! swapped). None of these can tell apart two values in one interval that are members of
//! the same groups. The ENIs the connection crosses and whether it is new are part of the
//! key. (Each ENI address an interval of its own would be exact too, but a fleet's day
//! then has tens of thousands of kinds per partition, and the table of them no longer
//! stays in cache.) ICMP (whose reply has other ports), other protocols and IPv6 are
//! judged connection by connection. The tests check the claim on fuzzed states of both
//! providers, and in debug builds every reuse is checked against a fresh judgement.

use std::net::IpAddr;

use super::judge::Ends;
use crate::model::{Cidr, Header, Peer, State};

/// The elementary intervals of IPv4 addresses and of ports.
#[derive(Debug, Default)]
pub(super) struct Classes {
    /// Where each interval of addresses starts (after the first, from 0), ascending.
    addrs: Vec<u32>,
    /// Where each interval of ports starts (after the first), ascending.
    ports: Vec<u32>,
}

/// A connection as far as its fate goes: the ENIs it crosses, whether it is new, and its
/// opener's fields by interval.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct FateKey {
    ends: [u32; 2],
    src: u32,
    dst: u32,
    /// Membership classes before and after.
    src_member: [u32; 2],
    dst_member: [u32; 2],
    src_port: u16,
    dst_port: u16,
    protocol: u8,
    new: bool,
}

impl Classes {
    /// The intervals that the rules of `states` and their prefix lists draw.
    pub(super) fn new(states: &[&State]) -> Classes {
        let mut addrs: Vec<u32> = Vec::new();
        let mut ports: Vec<u32> = Vec::new();
        let block = |addrs: &mut Vec<u32>, c: &Cidr| {
            if let Some((lo, hi)) = v4_range(c) {
                span(addrs, lo, hi);
            }
        };
        for state in states {
            for rule in &state.rules {
                match &rule.remote {
                    Peer::Cidr { cidr } => block(&mut addrs, cidr),
                    // Members are told apart by their membership classes (`key`); every
                    // list's entries are below.
                    Peer::Group { .. } | Peer::PrefixList { .. } => {}
                }
                if let Some(local) = &rule.local {
                    block(&mut addrs, local);
                }
                for range in [rule.src_ports, rule.dst_ports] {
                    span(&mut ports, range.lo().into(), range.hi().into());
                }
            }
            for list in &state.prefix_lists {
                for entry in &list.entries {
                    block(&mut addrs, entry);
                }
            }
        }
        addrs.retain(|&a| a != 0);
        addrs.sort_unstable();
        addrs.dedup();
        ports.retain(|&p| p != 0);
        ports.sort_unstable();
        ports.dedup();
        Classes { addrs, ports }
    }

    fn addr(&self, a: u32) -> u32 {
        self.addrs.partition_point(|&b| b <= a) as u32
    }

    fn port(&self, p: u16) -> u16 {
        self.ports.partition_point(|&b| b <= u32::from(p)) as u16
    }

    /// The key of a connection crossing `ends` whose opener is `h`, an address's
    /// membership classes before and after given by `member`; `None` where each
    /// connection is judged on its own (not IPv4 TCP or UDP).
    pub(super) fn key(
        &self,
        ends: Ends,
        h: &Header,
        new: bool,
        member: impl Fn(u32) -> [u32; 2],
    ) -> Option<FateKey> {
        let (IpAddr::V4(src), IpAddr::V4(dst)) = (h.src(), h.dst()) else {
            return None;
        };
        if !matches!(h.protocol(), 6 | 17) {
            return None;
        }
        Some(FateKey {
            ends: ends.map(|e| e.unwrap_or(u32::MAX)),
            src: self.addr(u32::from(src)),
            dst: self.addr(u32::from(dst)),
            src_member: member(u32::from(src)),
            dst_member: member(u32::from(dst)),
            src_port: self.port(h.src_port()),
            dst_port: self.port(h.dst_port()),
            protocol: h.protocol(),
            new,
        })
    }

    /// The interval of addresses that holds `a`, as `(first, last)` (for the tests).
    #[cfg(test)]
    pub(super) fn addr_interval(&self, a: u32) -> (u32, u32) {
        interval(&self.addrs, a, u32::MAX)
    }

    /// The interval of ports that holds `p`, as `(first, last)` (for the tests).
    #[cfg(test)]
    pub(super) fn port_interval(&self, p: u16) -> (u16, u16) {
        let (lo, hi) = interval(&self.ports, u32::from(p), u32::from(u16::MAX));
        (lo as u16, hi as u16)
    }
}

/// A block's IPv4 addresses as an inclusive range: an IPv4 block, or the IPv4-mapped
/// part of an IPv6 one.
fn v4_range(c: &Cidr) -> Option<(u32, u32)> {
    let (lo, hi) = c.range();
    match c.family() {
        crate::model::Family::V4 => Some((lo as u32, hi as u32)),
        crate::model::Family::V6 => {
            const MAPPED: u128 = 0xffff_0000_0000;
            let (mlo, mhi) = (MAPPED, MAPPED | 0xffff_ffff);
            (hi >= mlo && lo <= mhi).then(|| (lo.max(mlo) as u32, hi.min(mhi) as u32))
        }
    }
}

/// Where the interval `lo..=hi` starts and where the one after it starts.
fn span(starts: &mut Vec<u32>, lo: u32, hi: u32) {
    starts.push(lo);
    if let Some(next) = hi.checked_add(1) {
        starts.push(next);
    }
}

#[cfg(test)]
fn interval(starts: &[u32], v: u32, max: u32) -> (u32, u32) {
    let i = starts.partition_point(|&b| b <= v);
    let lo = if i == 0 { 0 } else { starts[i - 1] };
    let hi = starts.get(i).map_or(max, |&next| next - 1);
    (lo, hi)
}
