//! Lowering: the model's rules resolved into five-field boxes.

use std::collections::{HashMap, HashSet};

use std::net::IpAddr;

use crate::index::boxes::{Bounds, Filter, Word, DIMS};
use crate::model::{
    Cidr, Direction, Family, GroupId, Peer, PortRange, Protocol, Rule, RuleId, State,
};

use super::layout::ANY;

/// Everything compile needs to resolve references, computed once per state.
pub(super) struct Resolver<'a> {
    pub(super) state: &'a State,
    pub(super) members: HashMap<&'a GroupId, Vec<IpAddr>>,
    pub(super) group_index: HashMap<&'a GroupId, u32>,
    /// Per (direction, group): state rule indexes.
    pub(super) by_group: HashMap<(Direction, &'a GroupId), Vec<u32>>,
    /// Membership slot of every group attached to some ENI (see [`Membership`]).
    pub(super) slots: HashMap<&'a GroupId, u32>,
    pub(super) warnings: Vec<String>,
}

/// The smallest and largest address of each family in a list.
pub(super) fn hull(ips: &[IpAddr]) -> [Option<(u128, u128)>; 2] {
    let mut out = [None; 2];
    for ip in ips {
        let (f, v) = match ip {
            IpAddr::V4(a) => (0, u128::from(u32::from(*a))),
            IpAddr::V6(a) => (1, u128::from(*a)),
        };
        let h: &mut Option<(u128, u128)> = &mut out[f];
        *h = Some(h.map_or((v, v), |(lo, hi)| (lo.min(v), hi.max(v))));
    }
    out
}

impl<'a> Resolver<'a> {
    pub(super) fn new(state: &'a State) -> Resolver<'a> {
        let mut by_group: HashMap<(Direction, &GroupId), Vec<u32>> = HashMap::new();
        for (i, r) in state.rules.iter().enumerate() {
            by_group
                .entry((r.direction, &r.group))
                .or_default()
                .push(i as u32);
        }
        let members = state.members();
        let mut attached: Vec<&GroupId> = members.keys().copied().collect();
        attached.sort_unstable();
        Resolver {
            state,
            slots: attached
                .into_iter()
                .enumerate()
                .map(|(i, g)| (g, i as u32))
                .collect(),
            members,
            group_index: state
                .groups
                .iter()
                .enumerate()
                .map(|(i, g)| (&g.id, i as u32))
                .collect(),
            by_group,
            warnings: Vec::new(),
        }
    }

    fn warn_missing_group(&mut self, rule: &RuleId, group_id: &GroupId) {
        let described = self.group_index.contains_key(group_id);
        let members = self.members.get(group_id).map_or(0, |m| m.len());
        if !described && members == 0 {
            self.warnings.push(format!(
                "rule {rule}: group {group_id} is unresolved (no export describes it and no ENI \
                 carries it); where the rule would decide, verdicts are unknown"
            ));
        } else if members == 0 {
            self.warnings.push(format!(
                "rule {rule}: group {group_id} has no member (no ENI of the state carries it); \
                 the rule matches nothing"
            ));
        }
    }

    /// The prefixes a peer stands for (a group: one host block per member address).
    fn resolve(&mut self, rule: &RuleId, peer: &Peer) -> Vec<Cidr> {
        match peer {
            Peer::Cidr { cidr } => vec![*cidr],
            Peer::Group { group_id, .. } => {
                self.warn_missing_group(rule, group_id);
                self.members
                    .get(group_id)
                    .map(|ips| ips.iter().map(|&ip| Cidr::host(ip)).collect())
                    .unwrap_or_default()
            }
            Peer::PrefixList { prefix_list_id } => match self.state.prefix_list(prefix_list_id) {
                Some(pl) if pl.entries.is_empty() => {
                    self.warnings.push(format!(
                        "rule {rule}: prefix list {prefix_list_id} has no entries in the state \
                         (export get-managed-prefix-list-entries / DescribePrefixListAttributes); \
                         where the rule would decide, verdicts are unknown"
                    ));
                    Vec::new()
                }
                Some(pl) => pl.entries.clone(),
                None => {
                    self.warnings.push(format!(
                        "rule {rule}: prefix list {prefix_list_id} is unresolved (not in the \
                         state); where the rule would decide, verdicts are unknown"
                    ));
                    Vec::new()
                }
            },
        }
    }

    /// The membership condition of a rule (see [`Ranks::conds`]).
    pub(super) fn cond(&self, rule: &Rule) -> u32 {
        match &rule.remote {
            Peer::Group { group_id, .. } => self.slots.get(group_id).copied().unwrap_or(ANY),
            _ => ANY,
        }
    }

    /// The filters of the rules of group `group` in `direction`, as the trees index them:
    /// `rank(r)` gives state rule `r`'s rank. A group peer becomes one filter per family
    /// its members have, whose remote range spans the members and whose rank carries the
    /// membership condition (see [`Ranks::conds`]).
    pub(super) fn unit_filters(
        &mut self,
        group: u32,
        direction: Direction,
        rank: &dyn Fn(u32) -> u32,
    ) -> (Vec<Filter<u32>>, Vec<Filter<u128>>) {
        let state = self.state;
        let mut rules: Vec<(u32, u32)> = self
            .by_group
            .get(&(direction, &state.groups[group as usize].id))
            .into_iter()
            .flatten()
            .map(|&r| (rank(r), r))
            .collect();
        rules.sort_unstable();
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for (rank, r) in rules {
            let rule = &state.rules[r as usize];
            let remotes: Vec<(Family, (u128, u128))> = match &rule.remote {
                Peer::Group { group_id, .. } => {
                    self.warn_missing_group(&rule.id, group_id);
                    let [h4, h6] = hull(self.members.get(group_id).map_or(&[], |m| &m[..]));
                    let h4 = h4.map(|h| (Family::V4, h));
                    let h6 = h6.map(|h| (Family::V6, h));
                    h4.into_iter().chain(h6).collect()
                }
                peer => self
                    .resolve(&rule.id, peer)
                    .into_iter()
                    .map(|c| (c.family(), c.range()))
                    .collect(),
            };
            for (family, remote) in remotes {
                push_rule(&mut v4, &mut v6, rank, family, remote, rule);
            }
        }
        (v4, v6)
    }
}
/// Pushes the filter of `rule` with remote range `remote` of `family` (nothing when the
/// rule's local prefix is of the other family); says whether it pushed.
pub(super) fn push_rule(
    v4: &mut Vec<Filter<u32>>,
    v6: &mut Vec<Filter<u128>>,
    rank: u32,
    family: Family,
    remote: (u128, u128),
    rule: &Rule,
) -> bool {
    let local = match rule.local {
        Some(l) if l.family() == family => l,
        Some(_) => return false,
        None if family == Family::V4 => Cidr::ANY_V4,
        None => Cidr::ANY_V6,
    };
    let proto = match rule.protocol {
        Protocol::Any => (0, 255),
        Protocol::Number(n) => (n, n),
    };
    push_filter(
        v4,
        v6,
        rank,
        family,
        remote,
        local,
        rule.src_ports,
        rule.dst_ports,
        proto,
    );
    true
}

#[allow(clippy::too_many_arguments)]
pub(super) fn push_filter(
    v4: &mut Vec<Filter<u32>>,
    v6: &mut Vec<Filter<u128>>,
    rank: u32,
    family: Family,
    remote: (u128, u128),
    local: Cidr,
    sport: PortRange,
    dport: PortRange,
    proto: (u8, u8),
) {
    fn bounds<W: Word>(
        remote: (u128, u128),
        local: Cidr,
        sport: PortRange,
        dport: PortRange,
        proto: (u8, u8),
    ) -> Bounds<W> {
        let (rl, rh) = remote;
        let (ll, lh) = local.range();
        let lo: [W; DIMS] = [
            W::from_u128(rl),
            W::from_u128(ll),
            W::from_u16(sport.lo()),
            W::from_u16(dport.lo()),
            W::from_u16(proto.0.into()),
        ];
        let hi: [W; DIMS] = [
            W::from_u128(rh),
            W::from_u128(lh),
            W::from_u16(sport.hi()),
            W::from_u16(dport.hi()),
            W::from_u16(proto.1.into()),
        ];
        Bounds { lo, hi }
    }
    match family {
        Family::V4 => v4.push(Filter {
            bounds: bounds(remote, local, sport, dport, proto),
            rank,
        }),
        Family::V6 => v6.push(Filter {
            bounds: bounds(remote, local, sport, dport, proto),
            rank,
        }),
    }
}

/// Distinct (group set) per ENI, as state group indexes in attachment order.
pub(super) fn group_sets(state: &State, group_index: &HashMap<&GroupId, u32>) -> Vec<Vec<u32>> {
    state
        .enis
        .iter()
        .map(|eni| {
            let mut seen = HashSet::new();
            eni.groups
                .iter()
                .filter_map(|g| group_index.get(g).copied())
                .filter(|g| seen.insert(*g))
                .collect()
        })
        .collect()
}
