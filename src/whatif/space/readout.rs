//! Regions read out for people: address blocks (less group members where shorter) and a
//! witness packet per region.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::model::{Cidr, Direction, Family, GroupId, Header};
use crate::whatif::dd::{self, Cube, Set};

use super::classes::Members;
use super::Sources;

fn addr(family: Family, v: u128) -> IpAddr {
    match family {
        // Invariant: IPv4 sets hold values below 2^32.
        Family::V4 => IpAddr::V4(Ipv4Addr::from(v as u32)),
        Family::V6 => IpAddr::V6(Ipv6Addr::from(v)),
    }
}

/// The first of `preferred` in `set`, else its lowest value.
fn pick(set: &Set, preferred: &[u128]) -> u128 {
    preferred
        .iter()
        .copied()
        .find(|v| set.iter().any(|&(lo, hi)| lo <= *v && *v <= hi))
        .unwrap_or(set.first().map_or(0, |s| s.0))
}

/// A value of `set` other than `not`, if there is one.
fn other(set: &Set, not: u128) -> Option<u128> {
    set.iter().find_map(|&(lo, hi)| {
        if lo != not {
            Some(lo)
        } else if hi > lo {
            Some(lo + 1)
        } else {
            None
        }
    })
}

/// A remote set (`ids`, whose addresses are `set`) as blocks less the members of some
/// groups, when that is much shorter: the groups named whose members all lie outside the
/// set are added back to it, and kept when the blocks covering the result are fewer than
/// half as many. Exact either way: `set` = the blocks less those members. Worked out on
/// class ids, where a group's members are a few runs.
pub(super) fn less_members(
    ids: &Set,
    set: &Set,
    src: &Sources<'_, '_>,
    members: &Members,
    of_groups: impl FnOnce(Vec<u32>) -> std::sync::Arc<Set>,
) -> (Set, Vec<GroupId>, std::sync::Arc<Set>) {
    let none = || (set.clone(), Vec::new(), std::sync::Arc::new(Vec::new()));
    if set.len() < 8 {
        return none();
    }
    let classes = src.classes;
    let outside: Vec<&(GroupId, u32)> = src
        .groups
        .iter()
        .filter(|(_, g)| {
            classes
                .groups
                .get(g)
                .is_some_and(|runs| !dd::sets_meet(ids, runs))
        })
        .collect();
    if outside.is_empty() {
        return none();
    }
    let theirs = outside.iter().fold(Vec::new(), |acc, (_, g)| {
        dd::union(&acc, &classes.groups[g])
    });
    let joined = classes.addresses(&dd::union(ids, &theirs), members);
    if joined.len() * 2 > set.len() {
        return none();
    }
    let excluded = of_groups(outside.iter().map(|(_, g)| *g).collect());
    (
        joined,
        outside.into_iter().map(|(g, _)| g.clone()).collect(),
        excluded,
    )
}

/// A packet in the product `cube`: a common protocol, ports a client would use (ICMP:
/// echo request), a documentation address for the remote side, one of the ENI's own
/// addresses for the local side, and source ≠ destination where the region allows it.
pub(super) fn witness(family: Family, direction: Direction, cube: &Cube, own: &[u128]) -> Header {
    let icmp: u128 = if family == Family::V4 { 1 } else { 58 };
    let proto = pick(&cube[dd::PROTO], &[6, 17, icmp]);
    let (sport, dport) = if proto == icmp {
        (
            pick(&cube[dd::SPORT], &[8, 0]),
            pick(&cube[dd::DPORT], &[0]),
        )
    } else {
        (
            pick(&cube[dd::SPORT], &[40000, 1024]),
            pick(&cube[dd::DPORT], &[443, 80, 22]),
        )
    };
    // Documentation addresses read better than 0.0.0.0 when the region allows them.
    let documentation: [u128; 3] = match family {
        Family::V4 => [0xcb00_7107, 0xc633_6407, 0x0800_0808],
        Family::V6 => [0x2001_0db8_0000_0000_0000_0000_0000_0007, 1, 2],
    };
    let mut local = pick(&cube[dd::LOCAL], own);
    let mut remote = pick(&cube[dd::REMOTE], &documentation);
    if remote == local {
        if let Some(r) = other(&cube[dd::REMOTE], local) {
            remote = r;
        } else if let Some(l) = other(&cube[dd::LOCAL], remote) {
            local = l;
        }
    }
    let (remote, local) = (addr(family, remote), addr(family, local));
    let (src, dst) = match direction {
        Direction::Ingress => (remote, local),
        Direction::Egress => (local, remote),
    };
    // One family by construction; addresses as the region holds them.
    Header::new_unchecked(src, dst, proto as u8, sport as u16, dport as u16)
}

/// The fewest CIDR blocks that cover exactly `lo..=hi`.
pub fn cidrs(family: Family, lo: u128, hi: u128) -> Vec<Cidr> {
    let bits = u32::from(family.max_len());
    // The last offset of a block of 2^size addresses.
    let span = |size: u32| {
        if size >= 128 {
            u128::MAX
        } else {
            (1u128 << size) - 1
        }
    };
    let mut out = Vec::new();
    let mut at = lo;
    loop {
        // The largest aligned block starting at `at` that stays within `hi`.
        let mut size = if at == 0 {
            bits
        } else {
            at.trailing_zeros().min(bits)
        };
        while size > 0 && at.checked_add(span(size)).is_none_or(|end| end > hi) {
            size -= 1;
        }
        // Invariant: `bits - size` is within the family and `at` is aligned to it.
        if let Ok(c) = Cidr::new(addr(family, at), (bits - size) as u8) {
            out.push(c);
        }
        let end = at.saturating_add(span(size));
        if end >= hi {
            break;
        }
        at = end + 1;
    }
    out
}
