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

/// Which fields the rules of a [`field_state`] workload narrow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FieldShape {
    /// Alibaba: `k` rules on destination ports only.
    Ports,
    /// Alibaba: `k` rules each on destination ports and on remote /24s.
    PortsRemote,
    /// Alibaba: `k` rules each on destination ports, remote /24s, source ports and local
    /// /32s (the shape that made box splitting explode).
    Four,
    /// AWS: `k` single-port rules from anywhere and one all-ports rule with `k` /24s.
    Aws,
}

impl FieldShape {
    /// Every shape.
    pub const ALL: [FieldShape; 4] = [
        FieldShape::Ports,
        FieldShape::PortsRemote,
        FieldShape::Four,
        FieldShape::Aws,
    ];

    /// Rules of a workload with `k` rules per field (the revoked catch-all included).
    pub fn rules(self, k: usize) -> usize {
        match self {
            FieldShape::Ports => k + 1,
            FieldShape::PortsRemote | FieldShape::Aws => 2 * k + 1,
            FieldShape::Four => 4 * k + 1,
        }
    }

    /// The `k` giving about `rules` rules.
    pub fn k_for(self, rules: usize) -> usize {
        let per = self.rules(1) - 1;
        (rules.saturating_sub(1) / per).max(1)
    }
}

/// The single-group workloads of issue #21's review, with `k` rules per field: one group
/// with one ENI (172.16.0.10), and the catch-all that the what-if revokes, by its ID
/// (`sgr-catch-all`).
///
/// Alibaba (basic group, inner access accept): `k` accept rules at priority 1 per field —
/// `PortRange p/p` for p = 100+50i; `SourceCidrIp 10.(i%256).(i/256).0/24`;
/// `SourcePortRange s/s` for s = 1000+50i; `DestCidrIp 192.168.(i%256).(i/256)/32` (TCP,
/// the fields not named are any) — plus `TCP 1/65535 from 0.0.0.0/0` at priority 100. AWS:
/// `k` single-port TCP rules from 0.0.0.0/0, one TCP rule on all ports with `k` /24
/// ranges, and TCP 0-65535 from 0.0.0.0/0.
pub fn field_state(shape: FieldShape, k: usize) -> State {
    let aws = shape == FieldShape::Aws;
    let provider = if aws { Provider::Aws } else { Provider::Aliyun };
    let group = "sg-fields";
    let all_ports = if aws {
        PortRange::ANY
    } else {
        PortRange::new(1, 65535).unwrap_or(PortRange::ANY)
    };
    let any = Cidr::ANY_V4;
    let rule =
        |id: String, dst: PortRange, src: PortRange, remote: Cidr, local: Option<Cidr>| Rule {
            id: id.into(),
            group: group.into(),
            direction: Direction::Ingress,
            action: Action::Accept,
            priority: Priority(if aws { 0 } else { 1 }),
            protocol: Protocol::TCP,
            src_ports: src,
            dst_ports: dst,
            remote: Peer::cidr(remote),
            local,
            description: None,
            attrs: Default::default(),
        };
    let net24 = |i: usize| {
        let a = Ipv4Addr::new(10, (i % 256) as u8, ((i / 256) % 256) as u8, 0);
        Cidr::new(IpAddr::V4(a), 24).unwrap_or(Cidr::ANY_V4)
    };
    let host = |i: usize| {
        Cidr::host(IpAddr::V4(Ipv4Addr::new(
            192,
            168,
            (i % 256) as u8,
            ((i / 256) % 256) as u8,
        )))
    };
    let port = |base: usize, i: usize| PortRange::single(((base + 50 * i) % 65535 + 1) as u16);
    let mut rules = Vec::new();
    let fields: &[u8] = match shape {
        FieldShape::Ports => &[0],
        FieldShape::PortsRemote | FieldShape::Aws => &[0, 1],
        FieldShape::Four => &[0, 1, 2, 3],
    };
    for &f in fields {
        for i in 0..k {
            rules.push(match f {
                0 => rule(
                    format!("sgr-port-{i}"),
                    port(99, i),
                    PortRange::ANY,
                    any,
                    None,
                ),
                1 => rule(
                    format!("sgr-remote-{i}"),
                    all_ports,
                    PortRange::ANY,
                    net24(i),
                    None,
                ),
                2 => rule(format!("sgr-sport-{i}"), all_ports, port(999, i), any, None),
                _ => rule(
                    format!("sgr-local-{i}"),
                    all_ports,
                    PortRange::ANY,
                    any,
                    Some(host(i)),
                ),
            });
        }
    }
    let mut catch_all = rule("sgr-catch-all".into(), all_ports, PortRange::ANY, any, None);
    if !aws {
        catch_all.priority = Priority(100);
    }
    rules.push(catch_all);
    State {
        groups: vec![SecurityGroup {
            id: group.into(),
            provider,
            name: Some("fields".into()),
            description: None,
            kind: GroupKind::Basic,
            inner_access: Action::Accept,
            vpc: Some("vpc-1".into()),
            owner: None,
            attrs: Default::default(),
        }],
        rules,
        enis: vec![Eni {
            id: "eni-fields".into(),
            ips: vec![IpAddr::V4(Ipv4Addr::new(172, 16, 0, 10))],
            public_ips: Vec::new(),
            groups: vec![group.into()],
            vpc: Some("vpc-1".into()),
            attrs: Default::default(),
        }],
        vpcs: vec![crate::model::Vpc {
            id: "vpc-1".into(),
            is_default: false,
        }],
        ..State::default()
    }
}

/// The fleet of issue #21's review: 20 Alibaba basic groups of 20 rules (service ports
/// from office /24s and VPC /16s, a drop, and references to two other groups), and `enis`
/// ENIs, each in one of two target groups plus one to four others (seeded), one private
/// IPv4 address each. The what-if revokes `target-0` (rule `sgr-00-0`, tcp/22 from
/// 10.0.0.0/8).
pub fn fleet_state(enis: usize, seed: u64) -> State {
    let mut rng = Rng::new(seed);
    let groups = 20usize;
    let gid = |g: usize| format!("sg-{g:02}");
    let mut rules = Vec::new();
    for g in 0..groups {
        for r in 0..20usize {
            let (remote, action, priority) = match r {
                0 => (cidr(0x0a00_0000, 8), Action::Accept, 10),
                1 | 2 => (
                    Peer::Group {
                        group_id: gid((g + r) % groups).into(),
                        owner: None,
                    },
                    Action::Accept,
                    20,
                ),
                3 => (cidr(0xcb00_7100, 24), Action::Drop, 5),
                _ => (
                    cidr(
                        0xc0a8_0000 | ((g as u32) << 8) | r as u32,
                        24 + (r % 9) as u8,
                    ),
                    Action::Accept,
                    1 + (r as u32 % 50),
                ),
            };
            rules.push(Rule {
                id: format!("sgr-{g:02}-{r}").into(),
                group: gid(g).into(),
                direction: if r % 5 == 4 {
                    Direction::Egress
                } else {
                    Direction::Ingress
                },
                action,
                priority: Priority(priority),
                protocol: Protocol::TCP,
                src_ports: PortRange::ANY,
                dst_ports: PortRange::single(SERVICES[(g + r) % SERVICES.len()]),
                remote,
                local: None,
                description: None,
                attrs: Default::default(),
            });
        }
    }
    let mut list = Vec::with_capacity(enis);
    for i in 0..enis {
        let mut gs = vec![gid(rng.below(2) as usize)];
        let extra = 1 + rng.below(4) as usize;
        while gs.len() < extra + 1 {
            let g = gid(2 + rng.below(groups as u64 - 2) as usize);
            if !gs.contains(&g) {
                gs.push(g);
            }
        }
        let ip = 0x0a00_0000u32 + 1 + i as u32;
        list.push(Eni {
            id: format!("eni-{i:06}").into(),
            ips: vec![IpAddr::V4(Ipv4Addr::from(ip))],
            public_ips: Vec::new(),
            groups: gs.into_iter().map(Into::into).collect(),
            vpc: Some("vpc-1".into()),
            attrs: Default::default(),
        });
    }
    State {
        groups: (0..groups)
            .map(|g| SecurityGroup {
                id: gid(g).into(),
                provider: Provider::Aliyun,
                name: None,
                description: None,
                kind: GroupKind::Basic,
                inner_access: if g % 2 == 0 {
                    Action::Accept
                } else {
                    Action::Drop
                },
                vpc: Some("vpc-1".into()),
                owner: None,
                attrs: Default::default(),
            })
            .collect(),
        rules,
        enis: list,
        ..State::default()
    }
}

/// A capture of whole sessions aimed at `state`'s rules, as `sgsim synth --sessions`
/// writes it (legacy pcap in memory, one packet a millisecond from 2026-01-01): `packets`
/// packets of [`crate::packet::synth::sessions_streamed`] (20% background).
/// Deterministic in `seed`.
pub fn session_capture(state: &State, packets: usize, seed: u64) -> Vec<u8> {
    let mut w = match crate::packet::synth::PcapWriter::new(Vec::with_capacity(packets * 80)) {
        Ok(w) => w,
        Err(_) => return Vec::new(), // writing to a Vec cannot fail
    };
    let start = 1_767_225_600_000_000_000u64;
    let mut i = 0u64;
    let _ = crate::packet::synth::sessions_streamed(state, packets as u64, seed, 0.2, |block| {
        for (h, flags) in block {
            w.write_flags(start + i * 1_000_000, h, *flags)?;
            i += 1;
        }
        Ok::<(), std::io::Error>(())
    });
    w.finish().unwrap_or_default()
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
