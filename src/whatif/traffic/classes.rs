//! Headers that no rule tells apart, so that a connection's fate is worked out once per
//! kind of connection instead of once per connection.
//!
//! A fleet's day of flow logs holds millions of connections, nearly all of them alike to
//! the rules: they differ in the client's port and address, which no rule looks at
//! (beyond the blocks it names). Judging each one (both worlds, opener and reply, the
//! untracked condition, interning its fate) cost some 1,400 instructions, more than all
//! the rest of an item's work. [`Classes`] cuts each field of an IPv4 TCP or UDP header
//! into the elementary intervals of every bound that either state's rules and prefix
//! lists draw on it, and tells addresses of ENIs apart by the groups they are members of
//! (in each state); a partition keeps the fate of each [`FateKey`] it has judged.
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

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

use rustc_hash::FxHashMap;

use super::judge::Ends;
use crate::model::{normalize_addr, Cidr, GroupId, Header, Peer, PortRange, State};

/// The elementary intervals of IPv4 addresses and of ports.
#[derive(Debug, Default)]
pub(super) struct Classes {
    /// Where each interval of addresses starts (after the first, from 0), ascending.
    addrs: Vec<u32>,
    /// Where each interval of ports starts (after the first), ascending.
    ports: Vec<u32>,
    /// Addresses of ENIs (private, IPv4) by the groups they are members of in each state,
    /// numbered from 1 (0: a member of no group).
    members: FxHashMap<u32, u32>,
}

/// A connection as far as its fate goes: the ENIs it crosses, whether it is new, and its
/// opener's fields by interval.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct FateKey {
    ends: [u32; 2],
    src: u32,
    dst: u32,
    src_member: u32,
    dst_member: u32,
    src_port: u16,
    dst_port: u16,
    protocol: u8,
    new: bool,
}

impl Classes {
    /// The intervals that the rules of `states` and their prefix lists draw, and the
    /// memberships of their ENIs' addresses.
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
                    // Members are told apart by `members`; every list's entries are below.
                    Peer::Group { .. } | Peer::PrefixList { .. } => {}
                }
                if let Some(local) = &rule.local {
                    block(&mut addrs, local);
                }
                for range in [rule.src_ports, rule.dst_ports] {
                    ports.extend(bounds(range));
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
        Classes {
            addrs,
            ports,
            members: members(states),
        }
    }

    fn addr(&self, a: u32) -> u32 {
        self.addrs.partition_point(|&b| b <= a) as u32
    }

    fn member(&self, a: u32) -> u32 {
        self.members.get(&a).copied().unwrap_or(0)
    }

    fn port(&self, p: u16) -> u16 {
        self.ports.partition_point(|&b| b <= u32::from(p)) as u16
    }

    /// The key of a connection crossing `ends` whose opener is `h`; `None` where each
    /// connection is judged on its own (not IPv4 TCP or UDP).
    pub(super) fn key(&self, ends: Ends, h: &Header, new: bool) -> Option<FateKey> {
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
            src_member: self.member(u32::from(src)),
            dst_member: self.member(u32::from(dst)),
            src_port: self.port(h.src_port()),
            dst_port: self.port(h.dst_port()),
            protocol: h.protocol(),
            new,
        })
    }

    /// The membership number of `a` (0: none), and every address of that number (for
    /// the tests).
    #[cfg(test)]
    pub(super) fn members_like(&self, a: u32) -> (u32, Vec<u32>) {
        let m = self.member(a);
        let mut like: Vec<u32> = if m == 0 {
            Vec::new()
        } else {
            self.members
                .iter()
                .filter(|e| *e.1 == m)
                .map(|e| *e.0)
                .collect()
        };
        like.sort_unstable();
        (m, like)
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

/// The private IPv4 addresses of the ENIs of `states`, numbered by the groups they are
/// members of in each state (an address of several ENIs: of all their groups).
fn members(states: &[&State]) -> FxHashMap<u32, u32> {
    let mut of: HashMap<u32, Vec<BTreeSet<&GroupId>>> = HashMap::new();
    for (i, state) in states.iter().enumerate() {
        for eni in &state.enis {
            for &ip in &eni.ips {
                if let IpAddr::V4(a) = normalize_addr(ip) {
                    let sets = of
                        .entry(u32::from(a))
                        .or_insert_with(|| vec![BTreeSet::new(); states.len()]);
                    sets[i].extend(&eni.groups);
                }
            }
        }
    }
    let mut numbers: HashMap<Vec<BTreeSet<&GroupId>>, u32> = HashMap::new();
    of.into_iter()
        .map(|(a, sets)| {
            let next = numbers.len() as u32 + 1;
            (a, *numbers.entry(sets).or_insert(next))
        })
        .collect()
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

/// Where a range of ports starts and where the next value after it starts.
fn bounds(range: PortRange) -> impl Iterator<Item = u32> {
    [u32::from(range.lo()), u32::from(range.hi()) + 1].into_iter()
}

#[cfg(test)]
fn interval(starts: &[u32], v: u32, max: u32) -> (u32, u32) {
    let i = starts.partition_point(|&b| b <= v);
    let lo = if i == 0 { 0 } else { starts[i - 1] };
    let hi = starts.get(i).map_or(max, |&next| next - 1);
    (lo, hi)
}
