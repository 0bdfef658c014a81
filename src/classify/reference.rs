//! The reference engine: a linear scan over the model, so simple it is obviously right.
//!
//! It is the oracle every other engine is tested against. It shares nothing with the
//! compiler but the model's own matching primitives ([`Cidr::contains`],
//! [`PortRange::contains`](crate::model::PortRange::contains)), the ordering and defaults
//! of [`super::Semantics`] and [`State::unresolved_rules`].
//!
//! A packet is judged as SEMANTICS 3.1 and 3.3 say, step by step: Alibaba inner access
//! first (the remote address is a member of a basic group on the ENI whose policy is
//! accept); then the rules in evaluation order, where the first rule that matches decides;
//! then the default. Each unresolved reference is read both ways, the same for every rule
//! that names it: matching nothing (the scan goes on past its rules) and matching every
//! address (its first rule whose other fields match, met before the decision, decides). If
//! any reading gives another action, the verdict is unknown.

use std::collections::HashMap;
use std::net::IpAddr;

use super::{rule_order, Decision, Engine, Point, Semantics, SemanticsError, Verdict};
use crate::model::{Cidr, Direction, GroupId, Header, Peer, RuleId, State};

/// The linear-scan engine over a borrowed state.
pub struct Reference<'a> {
    state: &'a State,
    members: HashMap<&'a GroupId, Vec<IpAddr>>,
    /// Per ENI, per direction (ingress, egress): rule indexes in evaluation order.
    order: Vec<[Vec<u32>; 2]>,
    semantics: Vec<Semantics>,
    /// Per rule: its peer is unresolved.
    unresolved: Vec<bool>,
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
            unresolved: state.unresolved_rules(),
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

impl Reference<'_> {
    /// Whether `remote` is a member of group `g` (by state index).
    fn member(&self, g: u32, remote: IpAddr) -> bool {
        self.members
            .get(&self.state.groups[g as usize].id)
            .is_some_and(|ips| ips.contains(&remote))
    }
}

impl Engine for Reference<'_> {
    fn classify(&self, point: Point, h: &Header) -> Verdict {
        let d = match point.direction {
            Direction::Ingress => 0,
            Direction::Egress => 1,
        };
        let remote = h.remote(point.direction);
        let sem = &self.semantics[point.eni as usize];
        // Alibaba inner access comes before every custom rule (SEMANTICS 3.3, Q8).
        if let Some(&g) = sem.inner_access.iter().find(|&&g| self.member(g, remote)) {
            return Verdict::inner_access(g);
        }
        // Unresolved references (SEMANTICS 3.1) each hold the remote address or not, the
        // same for every rule that names them. Reading them as matching nothing, the first
        // resolved rule that matches decides; for each reference met before that decision,
        // the reading "it matches" lets its first rule decide instead. The verdict is
        // certain only when all those readings agree.
        let mut firsts: Vec<(String, u32)> = Vec::new();
        let mut decided = None;
        for &r in &self.order[point.eni as usize][d] {
            let rule = &self.state.rules[r as usize];
            if !rule.matches_fields(h) {
                continue;
            }
            if self.unresolved[r as usize] {
                let name = State::reference_name(&rule.remote);
                if !firsts.iter().any(|(n, _)| *n == name) {
                    firsts.push((name, r));
                }
            } else if self.peer_contains(&rule.remote, remote) {
                decided = Some(Verdict::rule(rule.action, r));
                break;
            }
        }
        let verdict = decided.unwrap_or_else(|| Verdict::default_of(sem.fallback(point.direction)));
        match firsts
            .iter()
            .find(|(_, r)| Decision::from(self.state.rules[*r as usize].action) != verdict.action)
        {
            Some(&(_, r)) => Verdict::unresolved(r),
            None => verdict,
        }
    }

    fn rule_id(&self, index: u32) -> &RuleId {
        &self.state.rules[index as usize].id
    }
}
