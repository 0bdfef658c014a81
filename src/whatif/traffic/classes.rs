//! Headers that no rule tells apart, so that a connection's fate is worked out once per
//! kind of connection instead of once per connection.
//!
//! A fleet's day of flow logs holds millions of connections, nearly all of them alike to
//! the rules: they differ in the client's port and address, which no rule looks at
//! (beyond the blocks it names), and in which of many ENIs with the same groups they
//! reach. Judging each one (both worlds, opener and reply, the untracked condition,
//! interning its fate) costs some 1,400 instructions or more, more than all the rest of an
//! item's work.
//!
//! A connection's verdicts are decided at the ENIs it crosses, by the rules of their groups
//! alone: the compiled tables judge every ENI with the same list of groups alike (one
//! context per list and direction), and the untracked condition and what the revoke
//! touches are functions of the groups too. So [`Classes`] keeps, per list of groups that
//! some ENI carries, the elementary intervals that those groups' rules (in either state)
//! and the prefix lists they name draw on each field, by the field's side of the ENI: an
//! ingress rule's remote block and source ports bound the packet's source address and
//! port, its local block and destination ports the destination's, an egress rule the
//! other way round; the reply crosses the same ENI the other way with its fields swapped,
//! so each field of the opener keeps its side. A [`FateKey`] is the lists of groups at the
//! two ends, each of the opener's fields by its interval at each end, the membership
//! classes of both addresses (the compiled tables', in each world: group peers and
//! Alibaba's inner access), the protocol, other protocols' ports as they are (ICMP type
//! and code, from which the reply's are worked out), and whether the connection is new;
//! a partition keeps the fate of each key it has judged. Fates name where a verdict changes
//! by end (the connection holds its ENIs), so ENIs with the same groups share them.
//!
//! Why two headers with one key have one fate: every verdict depends on a header only
//! through a rule of the ENI's groups matching it (its remote and local blocks,
//! prefix-list entries, port ranges, protocol, and a group peer's members), Alibaba's
//! inner access (members again), the AWS untracked condition (ports and protocol of the
//! rules open to anywhere) and the reply header (the same fields swapped). None of these
//! can tell apart two values in one interval that are members of the same groups. IPv6 is
//! judged connection by connection. The tests check the claim on fuzzed states of both
//! providers, at the ENIs a header crosses and at others with the same groups, and in
//! debug builds every reuse is checked against a fresh judgement.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use super::judge::Ends;
use crate::model::{Cidr, Direction, GroupId, Header, Peer, PrefixList, PrefixListId, Rule, State};

/// The elementary intervals that the rules of one set of groups draw on each field, by
/// the side of the ENI the field is on: an ingress rule's remote block and source ports
/// bound the packet's source address and port (remote), its local block and destination
/// ports the destination's (local); an egress rule the other way round.
#[derive(Debug, Default)]
struct Bounds {
    /// Where each interval starts (after the first, from 0), ascending: local addresses,
    /// remote addresses, local ports, remote ports.
    starts: [Vec<u32>; 4],
}

const LOCAL_ADDR: usize = 0;
const REMOTE_ADDR: usize = 1;
const LOCAL_PORT: usize = 2;
const REMOTE_PORT: usize = 3;

/// Per end of a connection (the opener leaves its source side's ENI, enters its
/// destination side's): which bounds each of the opener's fields (source address,
/// destination address, source port, destination port) meets there. The reply crosses the
/// same ENI the other way with the fields swapped, so its fields keep their sides.
const ROLES: [[usize; 4]; 2] = [
    [LOCAL_ADDR, REMOTE_ADDR, LOCAL_PORT, REMOTE_PORT],
    [REMOTE_ADDR, LOCAL_ADDR, REMOTE_PORT, LOCAL_PORT],
];

impl Bounds {
    fn class(&self, role: usize, v: u32) -> u32 {
        self.starts[role].partition_point(|&b| b <= v) as u32
    }
}

/// The intervals of each ENI's rules: per set of groups that some ENI carries.
#[derive(Debug, Default)]
pub(super) struct Classes {
    /// Per ENI (the state's numbering): the index of its set of groups in `sets`.
    eni_set: Vec<u32>,
    sets: Vec<Bounds>,
}

/// A connection as far as its fate goes: the sets of groups of the ENIs it crosses,
/// whether it is new, and its opener's fields by interval at each of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct FateKey {
    /// Per end (source side, destination side): its ENI's set of groups ([`Classes`]),
    /// `u32::MAX` where the connection crosses no ENI.
    sets: [u32; 2],
    /// At each end: the intervals of the opener's source and destination addresses and
    /// ports among the bounds of that ENI's rules on their side ([`ROLES`]); zeros where
    /// the connection crosses no ENI.
    at: [[u32; 4]; 2],
    /// The opener's ports where the protocol is not TCP or UDP (ICMP: type and code),
    /// zeros for TCP and UDP.
    ports: [u16; 2],
    /// Membership classes before and after.
    src_member: [u32; 2],
    dst_member: [u32; 2],
    protocol: u8,
    new: bool,
}

impl Classes {
    /// The intervals that the rules of `states` (and the prefix lists they name) draw, per
    /// set of groups of the ENIs of `states[0]` (a revoke changes rules, not ENIs).
    pub(super) fn new(states: &[&State]) -> Classes {
        let Some(first) = states.first() else {
            return Classes::default();
        };
        let mut by_group: HashMap<&GroupId, Vec<&Rule>> = HashMap::new();
        let mut lists: HashMap<&PrefixListId, Vec<&PrefixList>> = HashMap::new();
        for state in states {
            for rule in &state.rules {
                by_group.entry(&rule.group).or_default().push(rule);
            }
            for list in &state.prefix_lists {
                lists.entry(&list.id).or_default().push(list);
            }
        }
        // An ENI's groups in order, once each: the compiled tables judge every ENI with the
        // same list alike (one context per list and direction).
        let mut set_of: HashMap<Vec<&GroupId>, u32> = HashMap::new();
        let mut sets = Vec::new();
        let eni_set = first
            .enis
            .iter()
            .map(|eni| {
                let mut seen = HashSet::new();
                let groups: Vec<&GroupId> = eni.groups.iter().filter(|g| seen.insert(*g)).collect();
                *set_of.entry(groups).or_insert_with_key(|groups| {
                    let rules = groups.iter().flat_map(|g| by_group.get(g)).flatten();
                    sets.push(bounds(rules, &lists));
                    (sets.len() - 1) as u32
                })
            })
            .collect();
        Classes { eni_set, sets }
    }

    fn at(&self, eni: Option<u32>) -> Option<&Bounds> {
        let set = *self.eni_set.get(eni? as usize)?;
        self.sets.get(set as usize)
    }

    /// The key of a connection crossing `ends` whose opener is `h`, an address's
    /// membership classes before and after given by `member`; `None` where each
    /// connection is judged on its own (IPv6).
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
        let (src, dst) = (u32::from(src), u32::from(dst));
        let fields = [src, dst, h.src_port().into(), h.dst_port().into()];
        // TCP and UDP ports by interval; other protocols' (ICMP type and code, zeros)
        // as they are, since the reply's are worked out from them.
        let intervals = matches!(h.protocol(), 6 | 17);
        let mut at = [[0; 4]; 2];
        for (i, e) in ends.into_iter().enumerate() {
            if let Some(b) = self.at(e) {
                let n = if intervals { 4 } else { 2 };
                for f in 0..n {
                    at[i][f] = b.class(ROLES[i][f], fields[f]);
                }
            }
        }
        let ports = if intervals {
            [0; 2]
        } else {
            [h.src_port(), h.dst_port()]
        };
        Some(FateKey {
            sets: ends.map(|e| {
                e.and_then(|e| self.eni_set.get(e as usize).copied())
                    .unwrap_or(u32::MAX)
            }),
            at,
            ports,
            src_member: member(src),
            dst_member: member(dst),
            protocol: h.protocol(),
            new,
        })
    }

    /// The interval that holds `v`, the opener's field `field` (0: source address, 1:
    /// destination address, 2: source port, 3: destination port), at every ENI of `ends`,
    /// as `(first, last)` (for the tests).
    #[cfg(test)]
    pub(super) fn interval(&self, ends: Ends, field: usize, v: u32) -> (u32, u32) {
        let max = if field < 2 {
            u32::MAX
        } else {
            u32::from(u16::MAX)
        };
        let mut out = (0, max);
        for (i, e) in ends.into_iter().enumerate() {
            if let Some(b) = self.at(e) {
                let (lo, hi) = interval(&b.starts[ROLES[i][field]], v, max);
                out = (out.0.max(lo), out.1.min(hi));
            }
        }
        out
    }
}

/// The bounds that `rules` (of both states) and the prefix lists they name draw, by side.
fn bounds<'s>(
    rules: impl Iterator<Item = &'s &'s Rule>,
    lists: &HashMap<&PrefixListId, Vec<&PrefixList>>,
) -> Bounds {
    let mut starts: [Vec<u32>; 4] = Default::default();
    let block = |starts: &mut Vec<u32>, c: &Cidr| {
        if let Some((lo, hi)) = v4_range(c) {
            span(starts, lo, hi);
        }
    };
    for rule in rules {
        match &rule.remote {
            Peer::Cidr { cidr } => block(&mut starts[REMOTE_ADDR], cidr),
            // Members are told apart by their membership classes (`key`).
            Peer::Group { .. } => {}
            Peer::PrefixList { prefix_list_id } => {
                let named = lists.get(prefix_list_id).into_iter().flatten();
                for entry in named.flat_map(|l| &l.entries) {
                    block(&mut starts[REMOTE_ADDR], entry);
                }
            }
        }
        if let Some(local) = &rule.local {
            block(&mut starts[LOCAL_ADDR], local);
        }
        let (src, dst) = match rule.direction {
            Direction::Ingress => (REMOTE_PORT, LOCAL_PORT),
            Direction::Egress => (LOCAL_PORT, REMOTE_PORT),
        };
        for (role, range) in [(src, rule.src_ports), (dst, rule.dst_ports)] {
            span(&mut starts[role], range.lo().into(), range.hi().into());
        }
    }
    for s in &mut starts {
        s.retain(|&v| v != 0);
        s.sort_unstable();
        s.dedup();
    }
    Bounds { starts }
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
