//! Random states and headers for property tests: small address, port and priority pools so
//! that rules and packets overlap often.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use sgsim::model::{
    Action, Cidr, Direction, Eni, GroupKind, Header, Peer, PortRange, PrefixList, Priority,
    Protocol, Provider, Rule, SecurityGroup, State,
};

/// Addresses from a small pool so rules and packets overlap often.
pub fn addr(v6: bool, x: u8, y: u8) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::new(
            0x2001,
            0xdb8,
            u16::from(x & 3),
            0,
            0,
            0,
            0,
            u16::from(y & 7),
        ))
    } else {
        IpAddr::V4(Ipv4Addr::new(10, x & 3, 0, y & 7))
    }
}

fn arb_cidr() -> impl Strategy<Value = Cidr> {
    (any::<bool>(), 0u8..4, 0u8..8, 0u8..=4).prop_map(|(v6, x, y, shrink)| {
        let a = addr(v6, x, y);
        let max = if v6 { 128 } else { 32 };
        // Lengths near the host end and a few short ones (/0, /8…).
        let len = match shrink {
            0 => 0,
            1 => max / 4,
            2 => max - 3,
            3 => max - 1,
            _ => max,
        };
        Cidr::new(a, len).unwrap()
    })
}

fn arb_ports() -> impl Strategy<Value = PortRange> {
    prop_oneof![
        Just(PortRange::ANY),
        (0u16..8).prop_map(PortRange::single),
        (0u16..8, 0u16..8).prop_map(|(a, b)| PortRange::new(a.min(b), a.max(b)).unwrap()),
    ]
}

fn arb_protocol() -> impl Strategy<Value = Protocol> {
    prop_oneof![
        Just(Protocol::Any),
        Just(Protocol::TCP),
        Just(Protocol::UDP),
        Just(Protocol::ICMP)
    ]
}

const GROUPS: [&str; 3] = ["sg-0", "sg-1", "sg-2"];

fn arb_rule(i: usize) -> impl Strategy<Value = Rule> {
    (
        0usize..3,
        any::<bool>(),
        any::<bool>(),
        1u32..5,
        arb_protocol(),
        arb_ports(),
        arb_ports(),
        prop_oneof![
            4 => arb_cidr().prop_map(Peer::cidr),
            1 => (0usize..3).prop_map(|g| Peer::Group { group_id: GROUPS[g].into(), owner: None }),
            1 => Just(Peer::PrefixList { prefix_list_id: "pl-0".into() }),
        ],
        proptest::option::of(arb_cidr()),
    )
        .prop_map(
            move |(g, ingress, accept, prio, protocol, sp, dp, remote, local)| {
                let local = match (&remote, local) {
                    (Peer::Cidr { cidr }, Some(l)) if cidr.family() != l.family() => None,
                    (_, l) => l,
                };
                Rule {
                    id: format!("r{i}").into(),
                    group: GROUPS[g].into(),
                    direction: if ingress {
                        Direction::Ingress
                    } else {
                        Direction::Egress
                    },
                    action: if accept { Action::Accept } else { Action::Drop },
                    priority: Priority(prio),
                    protocol,
                    src_ports: sp,
                    dst_ports: dp,
                    remote,
                    local,
                    description: None,
                    attrs: Default::default(),
                }
            },
        )
}

pub fn arb_state() -> impl Strategy<Value = State> {
    let rules = (0usize..25).prop_flat_map(|n| (0..n).map(arb_rule).collect::<Vec<_>>());
    let provider = prop_oneof![
        Just(Provider::Aws),
        Just(Provider::Aliyun),
        Just(Provider::Generic)
    ];
    let kinds = proptest::collection::vec((any::<bool>(), any::<bool>()), 3);
    let enis = proptest::collection::vec(
        (
            proptest::collection::vec((any::<bool>(), 0u8..4, 0u8..8), 1..3),
            proptest::collection::vec(0usize..3, 1..3),
        ),
        1..4,
    );
    (
        rules,
        provider,
        kinds,
        enis,
        proptest::collection::vec(arb_cidr(), 0..3),
    )
        .prop_map(|(rules, provider, kinds, enis, entries)| {
            // One group type per state: clouds never mix types on an ENI.
            let enterprise = kinds[0].0;
            State {
                groups: GROUPS
                    .iter()
                    .zip(&kinds)
                    .map(|(id, (_, inner))| SecurityGroup {
                        id: (*id).into(),
                        provider,
                        name: None,
                        description: None,
                        kind: if enterprise {
                            GroupKind::Enterprise
                        } else {
                            GroupKind::Basic
                        },
                        inner_access: if *inner { Action::Accept } else { Action::Drop },
                        vpc: None,
                        owner: None,
                        attrs: Default::default(),
                    })
                    .collect(),
                rules,
                enis: enis
                    .into_iter()
                    .enumerate()
                    .map(|(i, (ips, groups))| Eni {
                        id: format!("eni-{i}").into(),
                        ips: ips.into_iter().map(|(v6, x, y)| addr(v6, x, y)).collect(),
                        public_ips: Vec::new(),
                        groups: groups.into_iter().map(|g| GROUPS[g].into()).collect(),
                        vpc: None,
                        attrs: Default::default(),
                    })
                    .collect(),
                prefix_lists: vec![PrefixList {
                    id: "pl-0".into(),
                    name: None,
                    entries,
                }],
                ..State::default()
            }
        })
}

pub fn arb_header() -> impl Strategy<Value = Header> {
    (
        any::<bool>(),
        0u8..4,
        0u8..8,
        0u8..4,
        0u8..8,
        prop_oneof![Just(6u8), Just(17), Just(1), Just(47)],
        0u16..9,
        0u16..9,
    )
        .prop_map(|(v6, a, b, c, d, proto, sp, dp)| {
            Header::new(addr(v6, a, b), addr(v6, c, d), proto, sp, dp).unwrap()
        })
}

/// A member address: 64 IPv4 and 16 IPv6 addresses, so that a group's members have gaps
/// (non-members) between them.
pub fn member_addr(v6: bool, i: u8) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::new(
            0x2001,
            0xdb8,
            0,
            0,
            0,
            0,
            0,
            u16::from(i & 15),
        ))
    } else {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, i & 63))
    }
}

const MEMBER_GROUPS: [&str; 5] = ["sg-a", "sg-b", "sg-c", "sg-d", "sg-e"];

/// A state where group references dominate: five groups (Alibaba basic, some with inner
/// access; or AWS), many ENIs drawn from a few group sets, with one or two addresses each
/// from [`member_addr`]'s pool, and rules in both directions of which half name a group
/// as their peer.
pub fn arb_member_state() -> impl Strategy<Value = State> {
    let rule = (
        0usize..5,
        any::<bool>(),
        0u8..8,
        1u32..6,
        arb_protocol(),
        arb_ports(),
        prop_oneof![
            1 => arb_cidr().prop_map(Peer::cidr),
            // Blocks inside the member pool, so that trees cut between members.
            1 => (any::<bool>(), 0u8..64, 26u8..=32).prop_map(|(v6, a, len)| {
                let len = if v6 { len + 96 } else { len };
                Peer::cidr(Cidr::new(member_addr(v6, a), len).unwrap())
            }),
            2 => (0usize..5).prop_map(|g| Peer::Group {
                group_id: MEMBER_GROUPS[g].into(),
                owner: None,
            }),
            // A group no ENI is attached to, and one not in the state.
            1 => (0usize..2).prop_map(|g| Peer::Group {
                group_id: ["sg-e", "sg-gone"][g].into(),
                owner: None,
            }),
        ],
        proptest::option::of(arb_cidr()),
    );
    let rules = proptest::collection::vec(rule, 0..40);
    let sets = proptest::collection::vec(proptest::collection::vec(0usize..4, 1..4), 1..5);
    let enis = proptest::collection::vec(
        (
            proptest::collection::vec((0u8..8, 0u8..64), 1..3),
            any::<proptest::sample::Index>(),
        ),
        5..40,
    );
    (
        rules,
        sets,
        enis,
        any::<bool>(),
        proptest::collection::vec(any::<bool>(), 5),
    )
        .prop_map(|(rules, sets, enis, aws, inner)| {
            let provider = if aws { Provider::Aws } else { Provider::Aliyun };
            State {
                groups: MEMBER_GROUPS
                    .iter()
                    .zip(&inner)
                    .map(|(id, inner)| SecurityGroup {
                        id: (*id).into(),
                        provider,
                        name: None,
                        description: None,
                        kind: GroupKind::Basic,
                        inner_access: if *inner { Action::Accept } else { Action::Drop },
                        vpc: None,
                        owner: None,
                        attrs: Default::default(),
                    })
                    .collect(),
                rules: rules
                    .into_iter()
                    .enumerate()
                    .map(
                        |(i, (g, ingress, accept, prio, protocol, dp, remote, local))| {
                            let local = match (&remote, local) {
                                (Peer::Cidr { cidr }, Some(l)) if cidr.family() != l.family() => {
                                    None
                                }
                                (_, l) => l,
                            };
                            Rule {
                                id: format!("r{i}").into(),
                                group: MEMBER_GROUPS[g].into(),
                                direction: if ingress {
                                    Direction::Ingress
                                } else {
                                    Direction::Egress
                                },
                                action: if accept < 6 {
                                    Action::Accept
                                } else {
                                    Action::Drop
                                },
                                priority: Priority(prio),
                                protocol,
                                src_ports: PortRange::ANY,
                                dst_ports: dp,
                                remote,
                                local,
                                description: None,
                                attrs: Default::default(),
                            }
                        },
                    )
                    .collect(),
                enis: enis
                    .into_iter()
                    .enumerate()
                    .map(|(i, (ips, set))| Eni {
                        id: format!("eni-{i}").into(),
                        ips: ips
                            .into_iter()
                            .map(|(v6, a)| member_addr(v6 == 0, a))
                            .collect(),
                        public_ips: Vec::new(),
                        groups: set
                            .get(&sets)
                            .iter()
                            .map(|&g| MEMBER_GROUPS[g].into())
                            .collect(),
                        vpc: None,
                        attrs: Default::default(),
                    })
                    .collect(),
                ..State::default()
            }
        })
}

/// A header whose remote and local addresses come from [`member_addr`]'s pool.
pub fn arb_member_header() -> impl Strategy<Value = Header> {
    (
        0u8..6,
        0u8..64,
        0u8..64,
        prop_oneof![Just(6u8), Just(17), Just(1)],
        0u16..9,
        0u16..9,
    )
        .prop_map(|(v6, a, b, proto, sp, dp)| {
            let v6 = v6 == 0;
            Header::new(member_addr(v6, a), member_addr(v6, b), proto, sp, dp).unwrap()
        })
}
