//! The exact header-space difference of a revoke, computed from the rules alone.
//!
//! A revoke only removes rules, so a packet's verdict can change only where a removed rule
//! decided it before. For each removed rule (as a box over the five header fields, see
//! [`crate::compile`]) the box is cut recursively along the edges of the other rules until
//! every piece is uniform: either an earlier rule covers it (the removed rule never decided
//! there), or the removed rule decided all of it before and one rule (or the default)
//! decides all of it after. Pieces whose action differs are the changed regions. Pieces of
//! different removed rules never overlap, because each point has one deciding rule before.
//! Adjacent pieces with the same deciders are merged, and each region carries a witness
//! packet that lies in it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::Serialize;

use crate::classify::{By, Verdict};
use crate::compile::{lower, CompileError, Lowered};
use crate::index::boxes::{Bounds, Filter, Word, DIMS};
use crate::model::{Cidr, Direction, EniId, Family, GroupId, Header, PortRange, RuleId, State};

/// Who decided, on one side of the revoke: the action and the deciding rule, or the kind of
/// default.
pub type Decider = crate::classify::Named;

/// A box of header space whose verdict the revoke changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Region {
    /// The ENIs that see this change (all share the same groups).
    pub enis: Vec<EniId>,
    /// Which way the packets cross them.
    pub direction: Direction,
    /// Address family.
    pub family: Family,
    /// Remote addresses, as the fewest CIDR blocks covering exactly the range.
    pub remote: Vec<Cidr>,
    /// Local addresses, likewise.
    pub local: Vec<Cidr>,
    /// Source ports (ICMP: types).
    pub src_ports: PortRange,
    /// Destination ports (ICMP: codes).
    pub dst_ports: PortRange,
    /// Protocol numbers, inclusive.
    pub protocols: (u8, u8),
    /// The verdict before the revoke.
    pub before: Decider,
    /// The verdict after.
    pub after: Decider,
    /// A packet in the region.
    pub witness: Header,
}

impl Region {
    /// Whether a header (judged in this region's direction) lies in the region.
    pub fn contains(&self, h: &Header) -> bool {
        let remote = h.remote(self.direction);
        let local = h.local(self.direction);
        Family::of(remote) == self.family
            && self.remote.iter().any(|c| c.contains(remote))
            && self.local.iter().any(|c| c.contains(local))
            && self.src_ports.contains(h.src_port)
            && self.dst_ports.contains(h.dst_port)
            && (self.protocols.0..=self.protocols.1).contains(&h.protocol)
    }
}

/// The regions whose verdict changes when the rules `removed` are taken out of `before`.
/// Deterministic: regions come ordered by ENI set, direction, family and box.
pub fn revoke_diff(before: &State, removed: &[RuleId]) -> Result<Vec<Region>, CompileError> {
    let gone: HashSet<&RuleId> = removed.iter().collect();
    let mut after = before.clone();
    after.rules.retain(|r| !gone.contains(&r.id));
    let mut out = Vec::new();
    for enis in &eni_sets(before) {
        let first = enis[0];
        let touched = before.enis[first].groups.iter().any(|g| {
            before
                .rules
                .iter()
                .any(|r| &r.group == g && gone.contains(&r.id))
        });
        if !touched {
            continue;
        }
        let ids: Vec<EniId> = enis.iter().map(|&e| before.enis[e].id.clone()).collect();
        let own_ips: Vec<IpAddr> = before.enis[first].ips.clone();
        for direction in Direction::BOTH {
            let lb = lower(before, first, direction)?;
            let la = lower(&after, first, direction)?;
            let side = Sides {
                before,
                after: &after,
                lb: &lb,
                la: &la,
                gone: &gone,
            };
            let mut pieces = Vec::new();
            diff_family(&side, &lb.v4, &la.v4, &mut pieces);
            let mut pieces6 = Vec::new();
            diff_family(&side, &lb.v6, &la.v6, &mut pieces6);
            for (family, boxes) in [(Family::V4, to_u128(pieces)), (Family::V6, pieces6)] {
                for (bounds, b, a) in merge(boxes) {
                    out.push(region(
                        &ids, &own_ips, direction, family, bounds, &side, b, a,
                    ));
                }
            }
        }
    }
    Ok(out)
}

/// ENI indexes grouped by their set of attached groups (which decides the rules they see),
/// in a stable order.
pub(crate) fn eni_sets(state: &State) -> Vec<Vec<usize>> {
    let mut sets: BTreeMap<Vec<GroupId>, Vec<usize>> = BTreeMap::new();
    for (i, eni) in state.enis.iter().enumerate() {
        let mut groups = Vec::new();
        for g in &eni.groups {
            if !groups.contains(g) {
                groups.push(g.clone());
            }
        }
        sets.entry(groups).or_default().push(i);
    }
    sets.into_values().collect()
}

struct Sides<'a> {
    before: &'a State,
    after: &'a State,
    lb: &'a Lowered,
    la: &'a Lowered,
    gone: &'a HashSet<&'a RuleId>,
}

/// A uniform piece: its box and the ranks deciding it before and after (`u32::MAX` for the
/// fallback).
type Piece<W> = (Bounds<W>, u32, u32);

fn diff_family<W: Word>(
    side: &Sides<'_>,
    before: &[Filter<W>],
    after: &[Filter<W>],
    out: &mut Vec<Piece<W>>,
) {
    for (i, f) in before.iter().enumerate() {
        let removed = match side.lb.targets[f.rank as usize].by {
            By::Rule(r) => side.gone.contains(&side.before.rules[r as usize].id),
            _ => false,
        };
        if !removed {
            continue;
        }
        let action = side.lb.targets[f.rank as usize].action;
        for (bounds, after_rank) in decided(before, i, after) {
            let after_action = match after_rank {
                u32::MAX => side.la.fallback,
                r => side.la.targets[r as usize].action,
            };
            if after_action != action {
                out.push((bounds, f.rank, after_rank));
            }
        }
    }
}

/// The uniform pieces of filter `before[i]`'s box where it is the first match among
/// `before`, each with the rank deciding it among `after` (`u32::MAX` for the fallback).
pub(crate) fn decided<W: Word>(
    before: &[Filter<W>],
    i: usize,
    after: &[Filter<W>],
) -> Vec<(Bounds<W>, u32)> {
    let f = &before[i];
    let earlier: Vec<&Filter<W>> = before[..i]
        .iter()
        .filter(|e| intersects(&e.bounds, &f.bounds))
        .collect();
    let later: Vec<&Filter<W>> = after
        .iter()
        .filter(|a| intersects(&a.bounds, &f.bounds))
        .collect();
    let mut out = Vec::new();
    split(f.bounds, &earlier, &later, &mut out);
    out
}

pub(crate) fn intersects<W: Word>(a: &Bounds<W>, b: &Bounds<W>) -> bool {
    (0..DIMS).all(|d| a.lo[d] <= b.hi[d] && b.lo[d] <= a.hi[d])
}

/// A cut of `region` along an edge of `f` that lies strictly inside the region.
fn cut_of<W: Word>(region: &Bounds<W>, f: &Bounds<W>) -> Option<(usize, W)> {
    (0..DIMS).find_map(|d| {
        if f.lo[d] > region.lo[d] {
            Some((d, f.lo[d]))
        } else if f.hi[d] < region.hi[d] {
            Some((d, f.hi[d].succ()))
        } else {
            None
        }
    })
}

fn split<W: Word>(
    region: Bounds<W>,
    earlier: &[&Filter<W>],
    later: &[&Filter<W>],
    out: &mut Vec<(Bounds<W>, u32)>,
) {
    let earlier: Vec<&Filter<W>> = earlier
        .iter()
        .copied()
        .filter(|e| intersects(&e.bounds, &region))
        .collect();
    if earlier.iter().any(|e| e.bounds.covers(&region)) {
        return;
    }
    let later: Vec<&Filter<W>> = later
        .iter()
        .copied()
        .filter(|a| intersects(&a.bounds, &region))
        .collect();
    let blocker = earlier
        .first()
        .or_else(|| later.first().filter(|a| !a.bounds.covers(&region)));
    match blocker.and_then(|b| cut_of(&region, &b.bounds)) {
        Some((d, t)) => {
            let mut left = region;
            left.hi[d] = t.pred();
            let mut right = region;
            right.lo[d] = t;
            split(left, &earlier, &later, out);
            split(right, &earlier, &later, out);
        }
        // Uniform: the filter decides all of it among `before`; `later[0]` (covering) or
        // the fallback decides all of it among `after`.
        None => out.push((region, later.first().map_or(u32::MAX, |a| a.rank))),
    }
}

fn to_u128(pieces: Vec<Piece<u32>>) -> Vec<Piece<u128>> {
    pieces
        .into_iter()
        .map(|(b, x, y)| {
            (
                Bounds {
                    lo: b.lo.map(u128::from),
                    hi: b.hi.map(u128::from),
                },
                x,
                y,
            )
        })
        .collect()
}

/// Merges boxes with the same deciders that are adjacent along one field and equal along
/// the others, until none can be merged; sorted for a stable order.
fn merge(mut pieces: Vec<Piece<u128>>) -> Vec<Piece<u128>> {
    const LIMIT: usize = 20_000;
    let key = |p: &Piece<u128>| (p.1, p.2, p.0.lo, p.0.hi);
    pieces.sort_by_key(key);
    if pieces.len() > LIMIT {
        return pieces;
    }
    loop {
        let mut merged = false;
        for d in 0..DIMS {
            // Group by everything but dimension d; within a group, merge runs.
            let mut groups: HashMap<(u32, u32, Vec<u128>), Vec<usize>> = HashMap::new();
            for (i, p) in pieces.iter().enumerate() {
                let mut rest = Vec::with_capacity(2 * DIMS);
                for e in 0..DIMS {
                    if e != d {
                        rest.push(p.0.lo[e]);
                        rest.push(p.0.hi[e]);
                    }
                }
                groups.entry((p.1, p.2, rest)).or_default().push(i);
            }
            let mut keep = vec![true; pieces.len()];
            for idx in groups.values() {
                let mut sorted = idx.clone();
                sorted.sort_by_key(|&i| pieces[i].0.lo[d]);
                let mut cur = sorted[0];
                for &i in &sorted[1..] {
                    if pieces[cur].0.hi[d].checked_add(1) == Some(pieces[i].0.lo[d]) {
                        pieces[cur].0.hi[d] = pieces[i].0.hi[d];
                        keep[i] = false;
                        merged = true;
                    } else {
                        cur = i;
                    }
                }
            }
            let mut k = keep.iter();
            pieces.retain(|_| *k.next().unwrap_or(&true));
        }
        if !merged {
            break;
        }
    }
    pieces.sort_by_key(key);
    pieces
}

pub(crate) fn decider(state: &State, lowered: &Lowered, rank: u32) -> Decider {
    let v = if rank == u32::MAX {
        Verdict {
            action: lowered.fallback,
            by: By::Default,
        }
    } else {
        lowered.targets[rank as usize]
    };
    Decider::of(v, |i| state.rules[i as usize].id.clone())
}

fn addr(family: Family, v: u128) -> IpAddr {
    match family {
        // Invariant: IPv4 boxes hold values below 2^32.
        Family::V4 => IpAddr::V4(Ipv4Addr::from(v as u32)),
        Family::V6 => IpAddr::V6(Ipv6Addr::from(v)),
    }
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

#[allow(clippy::too_many_arguments)]
fn region(
    enis: &[EniId],
    own_ips: &[IpAddr],
    direction: Direction,
    family: Family,
    b: Bounds<u128>,
    side: &Sides<'_>,
    before_rank: u32,
    after_rank: u32,
) -> Region {
    let port = |d: usize| {
        // Invariant: port and protocol fields hold values within their domains.
        PortRange::new(b.lo[d] as u16, b.hi[d] as u16).unwrap_or(PortRange::ANY)
    };
    let pick = |d: usize, preferred: &[u128]| {
        preferred
            .iter()
            .copied()
            .find(|v| (b.lo[d]..=b.hi[d]).contains(v))
            .unwrap_or(b.lo[d])
    };
    let own: Vec<u128> = own_ips
        .iter()
        .filter(|ip| Family::of(**ip) == family)
        .map(|ip| match ip {
            IpAddr::V4(a) => u128::from(u32::from(*a)),
            IpAddr::V6(a) => u128::from(*a),
        })
        .collect();
    // Documentation addresses read better than 0.0.0.0 when the region allows them.
    let documentation: [u128; 3] = match family {
        Family::V4 => [0xcb00_7107, 0xc633_6407, 0x0800_0808],
        Family::V6 => [0x2001_0db8_0000_0000_0000_0000_0000_0007, 1, 2],
    };
    let remote = addr(family, pick(0, &documentation));
    let local = addr(family, pick(1, &own));
    let proto = pick(4, &[6, 17, 1, 58]) as u8;
    let (src, dst) = match direction {
        Direction::Ingress => (remote, local),
        Direction::Egress => (local, remote),
    };
    let witness = Header {
        src,
        dst,
        protocol: proto,
        src_port: pick(2, &[40000, 1024]) as u16,
        dst_port: b.lo[3] as u16,
    };
    Region {
        enis: enis.to_vec(),
        direction,
        family,
        remote: cidrs(family, b.lo[0], b.hi[0]),
        local: cidrs(family, b.lo[1], b.hi[1]),
        src_ports: port(2),
        dst_ports: port(3),
        protocols: (b.lo[4] as u8, b.hi[4] as u8),
        before: decider(side.before, side.lb, before_rank),
        after: decider(side.after, side.la, after_rank),
        witness,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_cover_is_minimal_and_exact() {
        let c = |s: &[&str]| {
            s.iter()
                .map(|x| x.parse::<Cidr>().unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            cidrs(Family::V4, 0, u128::from(u32::MAX)),
            c(&["0.0.0.0/0"])
        );
        assert_eq!(
            cidrs(Family::V4, 0x0a00_0001, 0x0a00_0006),
            c(&["10.0.0.1/32", "10.0.0.2/31", "10.0.0.4/31", "10.0.0.6/32"])
        );
        assert_eq!(cidrs(Family::V6, 0, u128::MAX), c(&["::/0"]));
        assert_eq!(cidrs(Family::V4, 5, 5), c(&["0.0.0.5/32"]));
    }
}
