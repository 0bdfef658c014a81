//! Harnesses for the fuzz targets in `fuzz/` and for replaying their corpora and saved
//! crashes under `cargo test` on stable.
//!
//! Each harness takes raw bytes, must never panic on any input, and asserts an invariant
//! (a differential check against the reference engine, a round trip, or "a rejected revoke
//! changes nothing"); a violated invariant panics, which is what the fuzzer reports.
//!
//! `mod.rs` holds the structured inputs ([`FuzzState`], [`FuzzHeader`]); `engines.rs` the
//! harnesses of the engines and the header-space diff; `providers.rs` those of imports and
//! revoke requests; `traffic.rs` those of decoding, synthetic traffic and tracking.

// A harness's `expect` is one of its assertions: each states the invariant it checks, and
// its panic is the crash the fuzzer reports.
#![allow(clippy::expect_used)]

mod engines;
mod providers;
mod traffic;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use arbitrary::Arbitrary;

use crate::classify::{Engine, Named, Point};
use crate::model::{
    Action, Cidr, Direction, Eni, GroupKind, Header, Peer, PortRange, PrefixList, Priority,
    Protocol, Provider, Rule, SecurityGroup, State,
};

pub use engines::{
    classbench, differential, header_space, header_space_readings, live, model_text,
};
pub use providers::{aliyun_request, aws_request, import};
pub use traffic::{frame, synthetic, traffic};

const GROUPS: [&str; 3] = ["sg-0", "sg-1", "sg-2"];

/// An address from a small pool (so rules and packets overlap), or any address.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum FuzzAddr {
    Pool { v6: bool, x: u8, y: u8 },
    Any4(u32),
    Any6(u128),
}

impl FuzzAddr {
    fn get(self) -> IpAddr {
        match self {
            FuzzAddr::Pool { v6: false, x, y } => IpAddr::V4(Ipv4Addr::new(10, x & 3, 0, y & 7)),
            FuzzAddr::Pool { v6: true, x, y } => IpAddr::V6(Ipv6Addr::new(
                0x2001,
                0xdb8,
                u16::from(x & 3),
                0,
                0,
                0,
                0,
                u16::from(y & 7),
            )),
            FuzzAddr::Any4(a) => IpAddr::V4(Ipv4Addr::from(a)),
            FuzzAddr::Any6(a) => IpAddr::V6(Ipv6Addr::from(a)),
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
struct FuzzCidr {
    addr: FuzzAddr,
    len: u8,
}

impl FuzzCidr {
    fn get(self) -> Cidr {
        let a = self.addr.get();
        let max = if a.is_ipv4() { 33 } else { 129 };
        // Invariant: the length is reduced below the family's maximum + 1.
        Cidr::new(a, self.len % max).unwrap_or(Cidr::host(a))
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum FuzzPeer {
    Cidr(FuzzCidr),
    Group(u8),
    PrefixList,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
struct FuzzRule {
    group: u8,
    ingress: bool,
    accept: bool,
    priority: u8,
    protocol: Option<u8>,
    sport: (u16, u16),
    dport: (u16, u16),
    remote: FuzzPeer,
    local: Option<FuzzCidr>,
}

fn range((a, b): (u16, u16)) -> PortRange {
    // Small values most of the time so ranges overlap with packets.
    let (a, b) = if a & 0x8000 == 0 {
        (a % 10, b % 10)
    } else {
        (a, b)
    };
    // Invariant: min <= max.
    PortRange::new(a.min(b), a.max(b)).unwrap_or(PortRange::ANY)
}

/// A rule set with groups, ENIs and a prefix list, built from fuzzer bytes.
#[derive(Arbitrary, Debug, Clone)]
pub struct FuzzState {
    provider: u8,
    enterprise: bool,
    inner: [bool; 3],
    rules: Vec<FuzzRule>,
    enis: Vec<(Vec<FuzzAddr>, Vec<u8>)>,
    entries: Vec<FuzzCidr>,
}

impl FuzzState {
    /// The model state (capped at 64 rules and 4 ENIs).
    pub fn state(&self) -> State {
        let provider = match self.provider % 3 {
            0 => Provider::Aws,
            1 => Provider::Aliyun,
            _ => Provider::Generic,
        };
        let rules = self
            .rules
            .iter()
            .take(64)
            .enumerate()
            .map(|(i, r)| {
                let remote = match r.remote {
                    FuzzPeer::Cidr(c) => Peer::cidr(c.get()),
                    FuzzPeer::Group(g) => Peer::Group {
                        group_id: GROUPS[usize::from(g) % 3].into(),
                        owner: None,
                    },
                    FuzzPeer::PrefixList => Peer::PrefixList {
                        prefix_list_id: "pl-0".into(),
                    },
                };
                let local = r.local.map(FuzzCidr::get).filter(|l| match &remote {
                    Peer::Cidr { cidr } => cidr.family() == l.family(),
                    _ => true,
                });
                Rule {
                    id: format!("r{i}").into(),
                    group: GROUPS[usize::from(r.group) % 3].into(),
                    direction: if r.ingress {
                        Direction::Ingress
                    } else {
                        Direction::Egress
                    },
                    action: if r.accept {
                        Action::Accept
                    } else {
                        Action::Drop
                    },
                    priority: Priority(u32::from(r.priority % 8)),
                    protocol: r.protocol.map_or(Protocol::Any, |p| {
                        Protocol::Number([6, 17, 1, 58, p][usize::from(p) % 5])
                    }),
                    src_ports: range(r.sport),
                    dst_ports: range(r.dport),
                    remote,
                    local,
                    description: None,
                    attrs: Default::default(),
                }
            })
            .collect();
        let enis = self
            .enis
            .iter()
            .take(4)
            .enumerate()
            .map(|(i, (ips, groups))| Eni {
                id: format!("eni-{i}").into(),
                ips: ips.iter().take(4).map(|a| a.get()).collect(),
                public_ips: Vec::new(),
                groups: groups
                    .iter()
                    .take(3)
                    .map(|g| GROUPS[usize::from(*g) % 3].into())
                    .collect(),
                vpc: None,
                attrs: Default::default(),
            })
            .collect();
        State {
            groups: GROUPS
                .iter()
                .zip(self.inner)
                .map(|(id, inner)| SecurityGroup {
                    id: (*id).into(),
                    provider,
                    name: None,
                    description: None,
                    kind: if self.enterprise {
                        GroupKind::Enterprise
                    } else {
                        GroupKind::Basic
                    },
                    inner_access: if inner { Action::Accept } else { Action::Drop },
                    vpc: None,
                    owner: None,
                    attrs: Default::default(),
                })
                .collect(),
            rules,
            enis,
            prefix_lists: vec![PrefixList {
                id: "pl-0".into(),
                name: None,
                entries: self.entries.iter().take(8).map(|c| c.get()).collect(),
            }],
            ..State::default()
        }
    }
}

/// A packet header built from fuzzer bytes.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct FuzzHeader {
    src: FuzzAddr,
    dst: FuzzAddr,
    protocol: u8,
    sport: u16,
    dport: u16,
}

impl FuzzHeader {
    /// The header, or `None` when the addresses are of different families.
    pub fn header(&self) -> Option<Header> {
        let proto = [6, 17, 1, 58, 47, self.protocol][usize::from(self.protocol) % 6];
        let small = |p: u16| if p & 0x8000 == 0 { p % 10 } else { p };
        Header::new(
            self.src.get(),
            self.dst.get(),
            proto,
            small(self.sport),
            small(self.dport),
        )
        .ok()
    }
}

fn queries(state: &State, headers: &[FuzzHeader]) -> Vec<(Point, Header)> {
    let mut out = Vec::new();
    for eni in 0..state.enis.len() as u32 {
        for direction in Direction::BOTH {
            out.extend(
                headers
                    .iter()
                    .filter_map(FuzzHeader::header)
                    .map(|h| (Point { eni, direction }, h)),
            );
        }
    }
    out
}

fn named(e: &impl Engine, q: &[(Point, Header)]) -> Vec<Named> {
    let mut out = Vec::new();
    e.classify_batch(q, &mut out);
    out.into_iter().map(|v| e.name(v)).collect()
}
