//! The reference engine: a linear scan over the model, so simple it is obviously right.
//!
//! It is the oracle every other engine is tested against. It shares nothing with the
//! compiler but the model's own matching primitives ([`Cidr::contains`],
//! [`PortRange::contains`](crate::model::PortRange::contains)) and the ordering and defaults
//! of [`super::Semantics`].

use std::collections::HashMap;
use std::net::IpAddr;

use super::{rule_order, By, Engine, Point, Semantics, SemanticsError, Verdict};
use crate::model::{Cidr, Direction, GroupId, Header, Peer, RuleId, State};

/// The linear-scan engine over a borrowed state.
pub struct Reference<'a> {
    state: &'a State,
    members: HashMap<&'a GroupId, Vec<IpAddr>>,
    /// Per ENI, per direction (ingress, egress): rule indexes in evaluation order.
    order: Vec<[Vec<u32>; 2]>,
    semantics: Vec<Semantics>,
}

impl<'a> Reference<'a> {
    /// Prepares the scan: per ENI and direction, the rules of its groups in evaluation order.
    pub fn new(state: &'a State) -> Result<Reference<'a>, SemanticsError> {
        state.validate()?;
        let mut order = Vec::with_capacity(state.enis.len());
        let mut semantics = Vec::with_capacity(state.enis.len());
        for (i, eni) in state.enis.iter().enumerate() {
            semantics.push(Semantics::of(state, i)?);
            let mut per_dir: [Vec<u32>; 2] = [Vec::new(), Vec::new()];
            for (d, dir) in Direction::BOTH.iter().enumerate() {
                let mut idx: Vec<u32> = (0..state.rules.len())
                    .filter(|&r| {
                        let rule = &state.rules[r];
                        rule.direction == *dir && eni.groups.contains(&rule.group)
                    })
                    .map(|r| r as u32)
                    .collect();
                idx.sort_by_key(|&r| rule_order(state, r as usize));
                per_dir[d] = idx;
            }
            order.push(per_dir);
        }
        Ok(Reference {
            state,
            members: state.members(),
            order,
            semantics,
        })
    }

    fn peer_contains(&self, peer: &Peer, addr: IpAddr) -> bool {
        match peer {
            Peer::Cidr { cidr } => cidr.contains(addr),
            Peer::Group { group_id, .. } => self
                .members
                .get(group_id)
                .is_some_and(|ips| ips.contains(&addr)),
            Peer::PrefixList { prefix_list_id } => self
                .state
                .prefix_list(prefix_list_id)
                .is_some_and(|pl| pl.entries.iter().any(|c: &Cidr| c.contains(addr))),
        }
    }
}

impl Engine for Reference<'_> {
    fn classify(&self, point: Point, h: &Header) -> Verdict {
        let d = match point.direction {
            Direction::Ingress => 0,
            Direction::Egress => 1,
        };
        let remote = h.remote(point.direction);
        for &r in &self.order[point.eni as usize][d] {
            let rule = &self.state.rules[r as usize];
            if rule.matches_fields(h) && self.peer_contains(&rule.remote, remote) {
                return Verdict {
                    action: rule.action,
                    by: By::Rule(r),
                };
            }
        }
        let sem = &self.semantics[point.eni as usize];
        if point.direction == Direction::Ingress {
            for &g in &sem.inner_access {
                let group = &self.state.groups[g as usize];
                if self
                    .members
                    .get(&group.id)
                    .is_some_and(|ips| ips.contains(&remote))
                {
                    return Verdict {
                        action: crate::model::Action::Accept,
                        by: By::InnerAccess(g),
                    };
                }
            }
        }
        Verdict {
            action: sem.fallback(point.direction),
            by: By::Default,
        }
    }

    fn rule_id(&self, index: u32) -> &RuleId {
        &self.state.rules[index as usize].id
    }
}
