//! Seeded workloads for benchmarks: a security-group-shaped account (a few hundred rules
//! across several groups, many ENIs sharing group sets, group references) and traffic aimed
//! at it.
//!
//! Like [`crate::packet::synth`], everything here is deterministic: the same parameters and
//! seed give the same state and the same packets.

use std::net::{IpAddr, Ipv4Addr};

use crate::classify::Point;
use crate::model::{
    Action, Cidr, Direction, Eni, GroupKind, Header, Peer, PortRange, Priority, Protocol, Provider,
    Rule, SecurityGroup, State,
};
use crate::packet::synth::{header_in, Rng};

/// The shape of a security-group workload.
#[derive(Clone, Debug)]
pub struct SgShape {
    /// Security groups.
    pub groups: usize,
    /// Atomic rules, spread over the groups and both directions.
    pub rules: usize,
    /// Network interfaces.
    pub enis: usize,
    /// Distinct group sets the ENIs are drawn from (ENIs with one set share a context).
    pub group_sets: usize,
}

impl Default for SgShape {
    fn default() -> SgShape {
        SgShape {
            groups: 12,
            rules: 400,
            enis: 500,
            group_sets: 10,
        }
    }
}

/// Service ports a real account opens.
const SERVICES: [u16; 12] = [
    22, 80, 443, 3306, 5432, 6379, 8080, 8443, 9092, 9200, 27017, 53,
];

/// An Alibaba-style account (basic groups, priorities 1–100, about one rule in eight a drop,
/// inner access accept in half of the groups) of the given shape: a quarter of the rules
/// reference another group, the rest name CIDR blocks (office /24s, VPC /16s, the
/// internet). Each ENI has one private IPv4 address in 10.0.0.0/8 and one of
/// `shape.group_sets` group sets of one to three groups.
pub fn sg_state(shape: &SgShape, seed: u64) -> State {
    let mut rng = Rng::new(seed);
    let groups = shape.groups.max(1);
    let group_id = |g: usize| format!("sg-{g:04}");
    let group_list: Vec<SecurityGroup> = (0..groups)
        .map(|g| SecurityGroup {
            id: group_id(g).into(),
            provider: Provider::Aliyun,
            name: Some(format!("tier-{g}")),
            description: None,
            kind: GroupKind::Basic,
            inner_access: if g % 2 == 0 {
                Action::Accept
            } else {
                Action::Drop
            },
            vpc: None,
            owner: None,
            attrs: Default::default(),
        })
        .collect();
    let rules = (0..shape.rules)
        .map(|i| {
            let g = rng.below(groups as u64) as usize;
            let direction = if rng.below(4) == 0 {
                Direction::Egress
            } else {
                Direction::Ingress
            };
            let remote = match rng.below(8) {
                0 | 1 => Peer::Group {
                    group_id: group_id(rng.below(groups as u64) as usize).into(),
                    owner: None,
                },
                2 => Peer::cidr(Cidr::ANY_V4),
                3 | 4 => cidr(0x0a00_0000 | (rng.next_u64() as u32 & 0x00ff_0000), 16),
                _ => cidr(rng.next_u64() as u32 & 0xffff_ff00, 24),
            };
            let protocol = match rng.below(10) {
                0 => Protocol::Any,
                1 => Protocol::UDP,
                2 => Protocol::ICMP,
                _ => Protocol::TCP,
            };
            let dst_ports = match (protocol, rng.below(6)) {
                (Protocol::Number(6 | 17), 0) => {
                    let lo = 1024 + rng.below(30000) as u16;
                    PortRange::new(lo, lo + rng.below(2000) as u16).unwrap_or(PortRange::ANY)
                }
                (Protocol::Number(6 | 17), _) => {
                    PortRange::single(SERVICES[rng.below(SERVICES.len() as u64) as usize])
                }
                _ => PortRange::ANY,
            };
            Rule {
                id: format!("sgr-{i:06}").into(),
                group: group_id(g).into(),
                direction,
                action: if rng.below(8) == 0 {
                    Action::Drop
                } else {
                    Action::Accept
                },
                priority: Priority(1 + rng.below(100) as u32),
                protocol,
                src_ports: PortRange::ANY,
                dst_ports,
                remote,
                local: None,
                description: None,
                attrs: Default::default(),
            }
        })
        .collect();
    let sets: Vec<Vec<usize>> = (0..shape.group_sets.max(1))
        .map(|_| {
            let k = 1 + rng.below(3) as usize;
            let mut set: Vec<usize> = (0..k).map(|_| rng.below(groups as u64) as usize).collect();
            set.dedup();
            set
        })
        .collect();
    let enis = (0..shape.enis)
        .map(|e| {
            let set = &sets[rng.below(sets.len() as u64) as usize];
            Eni {
                id: format!("eni-{e:06}").into(),
                ips: vec![IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | (e as u32 + 1)))],
                public_ips: Vec::new(),
                groups: set.iter().map(|&g| group_id(g).into()).collect(),
                vpc: None,
                attrs: Default::default(),
            }
        })
        .collect();
    State {
        groups: group_list,
        rules,
        enis,
        ..State::default()
    }
}

fn cidr(addr: u32, len: u8) -> Peer {
    // Invariant: len <= 32, and host bits are masked by the callers.
    Peer::cidr(Cidr::new(IpAddr::V4(Ipv4Addr::from(addr)), len).unwrap_or(Cidr::ANY_V4))
}

/// `n` packets at random ENIs and directions of `state`: three in four land inside a rule
/// of one of the ENI's groups (a group reference is stood in for by a member's address),
/// the rest are uniform IPv4 and mostly fall to the defaults.
pub fn sg_queries(state: &State, n: usize, seed: u64) -> Vec<(Point, Header)> {
    let mut rng = Rng::new(seed);
    let members = state.members();
    let mut out = Vec::with_capacity(n);
    let any = crate::packet::synth::any_ipv4();
    let mut attempts = 0usize;
    while out.len() < n && !state.enis.is_empty() {
        attempts += 1;
        let e = rng.below(state.enis.len() as u64) as usize;
        let eni = &state.enis[e];
        let direction = Direction::BOTH[rng.below(2) as usize];
        let point = Point {
            eni: e as u32,
            direction,
        };
        let candidates: Vec<&Rule> = state
            .rules
            .iter()
            .filter(|r| r.direction == direction && eni.groups.contains(&r.group))
            .collect();
        let header = if rng.below(4) != 0 && !candidates.is_empty() {
            let rule = candidates[rng.below(candidates.len() as u64) as usize];
            let remote = match &rule.remote {
                Peer::Cidr { cidr } => Some(*cidr),
                Peer::Group { group_id, .. } => members.get(group_id).and_then(|ips| {
                    (!ips.is_empty()).then(|| Cidr::host(ips[rng.below(ips.len() as u64) as usize]))
                }),
                Peer::PrefixList { .. } => None,
            };
            remote.and_then(|r| header_in(&mut rng, rule, r))
        } else {
            header_in(
                &mut rng,
                &Rule {
                    direction,
                    ..any.clone()
                },
                Cidr::ANY_V4,
            )
        };
        if let Some(h) = header {
            out.push((point, h));
        } else if attempts > 100 * n.max(1) {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sg_state_is_valid_and_deterministic() {
        let shape = SgShape::default();
        let a = sg_state(&shape, 3);
        a.validate().expect("valid state");
        assert_eq!(a, sg_state(&shape, 3));
        assert_eq!(a.rules.len(), shape.rules);
        let q = sg_queries(&a, 200, 5);
        assert_eq!(q.len(), 200);
        assert_eq!(q, sg_queries(&a, 200, 5));
    }
}
