//! Harnesses for the fuzz targets in `fuzz/` and for replaying their corpora and saved
//! crashes under `cargo test` on stable.
//!
//! Each harness takes raw bytes, must never panic on any input, and asserts an invariant
//! (a differential check against the reference engine, a round trip, or "a rejected revoke
//! changes nothing"); a violated invariant panics, which is what the fuzzer reports.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use arbitrary::{Arbitrary, Unstructured};

use crate::classify::reference::Reference;
use crate::classify::{Engine, Named, Point};
use crate::compile::live::{Change, Live};
use crate::compile::{compile, Config, Table};
use crate::model::{
    Action, Cidr, Direction, Eni, GroupKind, Header, Peer, PortRange, PrefixList, Priority,
    Protocol, Provider, Rule, SecurityGroup, State,
};

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

/// Differential: on an arbitrary rule set and packets, the compiled engine (with an
/// arbitrary leaf size) and the rayon path agree with the reference engine.
pub fn differential(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let (Ok(fs), Ok(headers), Ok(leaf)) = (
        FuzzState::arbitrary(&mut u),
        Vec::<FuzzHeader>::arbitrary(&mut u),
        u8::arbitrary(&mut u),
    ) else {
        return;
    };
    let state = fs.state();
    let q = queries(&state, &headers);
    let Ok(reference) = Reference::new(&state) else {
        // Only a state the model rejects may fail, and then the compiler must reject it too.
        assert!(compile(&state, &Config::default()).is_err());
        return;
    };
    // The high bit picks cross-product tables for every unit, else trees for all; the
    // next one, tables with the split tail; the next, trees that start from address
    // blocks wherever their rules allow.
    let config = Config {
        leaf_size: usize::from(leaf % 16) + 1,
        cross_min_filters: if leaf & 0x80 != 0 { 0 } else { usize::MAX },
        cross_alone_only: false,
        cross_product_tail: leaf & 0x40 == 0,
        blocks_min_filters: if leaf & 0x20 != 0 { 0 } else { usize::MAX },
        ..Config::default()
    };
    // Invariant: the reference accepted the state, so the compiler must too.
    let table = compile(&state, &config).expect("compiles what the reference accepts");
    let expected = named(&reference, &q);
    assert_eq!(named(&table, &q), expected, "compiled != reference");
    let par: Vec<Named> = table
        .classify_par(&q)
        .into_iter()
        .map(|v| table.name(v))
        .collect();
    assert_eq!(par, expected, "rayon path != reference");
}

/// Live table: revokes interleaved with lookups; after each revoke the live snapshot
/// answers exactly as a fresh compile of the remaining rules and as the reference.
pub fn live(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let (Ok(fs), Ok(headers), Ok(ops)) = (
        FuzzState::arbitrary(&mut u),
        Vec::<FuzzHeader>::arbitrary(&mut u),
        Vec::<(u8, bool)>::arbitrary(&mut u),
    ) else {
        return;
    };
    let state = fs.state();
    let q = queries(&state, &headers);
    let Ok(live) = Live::new(
        state.clone(),
        Config {
            leaf_size: 2,
            max_dead_fraction: 0.5,
            // Cross-product tables for every unit (with the full product or the split
            // tail) or for none, as the input's length says.
            cross_min_filters: if headers.len() % 3 != 2 {
                0
            } else {
                usize::MAX
            },
            cross_alone_only: false,
            cross_product_tail: headers.len() % 3 == 0,
            // Trees from address blocks wherever their rules allow, or as by default.
            blocks_min_filters: if ops.len() % 2 == 0 { 0 } else { 2048 },
            ..Config::default()
        },
    ) else {
        return;
    };
    let mut current = state;
    for (pick, unknown) in ops.into_iter().take(16) {
        if unknown || current.rules.is_empty() {
            let before = live.snapshot();
            assert!(live
                .apply(Change::Revoke(vec!["no-such-rule".into()]))
                .is_err());
            assert!(
                std::sync::Arc::ptr_eq(&before, &live.snapshot()),
                "a failed revoke swapped"
            );
            continue;
        }
        let id = current.rules[usize::from(pick) % current.rules.len()]
            .id
            .clone();
        // Invariant: the rule is in the live state, mirrored by `current`.
        live.apply(Change::Revoke(vec![id.clone()]))
            .expect("revoking a present rule");
        current.rules.retain(|r| r.id != id);
        let snapshot = live.snapshot();
        let fresh = compile(&current, &Config::default()).expect("compiles");
        let reference = Reference::new(&current).expect("valid");
        let got = named(&*snapshot, &q);
        assert_eq!(got, named(&fresh, &q), "live != fresh compile");
        assert_eq!(got, named(&reference, &q), "live != reference");
    }
    assert_eq!(live.state(), current);
}

/// ClassBench filter and trace parsing: never panics; what parses compiles and agrees with
/// the reference on the trace.
pub fn classbench(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (filters, trace) = text.split_once("\n\n").unwrap_or((&text, ""));
    let path = std::path::Path::new("<fuzz>");
    let Ok(state) = crate::classbench::filters_from(path, filters.as_bytes()) else {
        return;
    };
    let headers: Vec<Header> = trace
        .lines()
        .filter_map(|l| crate::classbench::parse_trace_line(l).ok())
        .map(|e| e.header)
        .collect();
    let q: Vec<(Point, Header)> = headers
        .iter()
        .map(|h| (crate::classbench::POINT, *h))
        .collect();
    let table = compile(&state, &Config::default()).expect("a parsed set compiles");
    let reference = Reference::new(&state).expect("a parsed set is valid");
    assert_eq!(named(&table, &q), named(&reference, &q));
}

/// Text parsers of the model: headers, CIDRs, port ranges and protocols never panic, and
/// what parses prints back to text that parses to the same value.
pub fn model_text(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(h) = text.parse::<Header>() {
        assert_eq!(
            h.to_string().parse::<Header>().ok(),
            Some(h),
            "header round trip"
        );
    }
    if let Ok(c) = text.parse::<Cidr>() {
        assert_eq!(
            c.to_string().parse::<Cidr>().ok(),
            Some(c),
            "CIDR round trip"
        );
    }
    if let Ok(p) = text.parse::<PortRange>() {
        assert_eq!(p.to_string().parse::<PortRange>().ok(), Some(p));
    }
    if let Ok(p) = text.parse::<Protocol>() {
        assert_eq!(p.to_string().parse::<Protocol>().ok(), Some(p));
    }
    let _ = serde_json::from_slice::<State>(data).map(|s| {
        if s.validate().is_ok() {
            // A valid state compiles and round-trips through its snapshot form.
            compile(&s, &Config::default()).expect("a valid state compiles");
            let back: State = serde_json::from_str(&serde_json::to_string(&s).expect("serializes"))
                .expect("reads back");
            assert_eq!(back, s, "snapshot round trip");
        }
    });
}

/// The header-space diff of a revoke equals brute-force evaluation at every fuzzed packet
/// and at every region's witness.
pub fn header_space(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let (Ok(fs), Ok(headers), Ok(picks)) = (
        FuzzState::arbitrary(&mut u),
        Vec::<FuzzHeader>::arbitrary(&mut u),
        Vec::<u8>::arbitrary(&mut u),
    ) else {
        return;
    };
    let state = fs.state();
    if state.rules.is_empty() || Reference::new(&state).is_err() {
        return;
    }
    let removed: Vec<crate::model::RuleId> = picks
        .iter()
        .take(4)
        .map(|p| state.rules[usize::from(*p) % state.rules.len()].id.clone())
        .collect();
    let mut after = state.clone();
    after.rules.retain(|r| !removed.contains(&r.id));
    let diff = crate::whatif::space::revoke_diff(&state, &removed).expect("valid state");
    assert!(diff.complete, "{:?}", diff.stopped);
    let regions = diff.regions;
    // Unresolved references are read every way the diff reads them (SEMANTICS 3.1): a
    // header is in a region when some reading changes its verdict.
    let readings = header_space_readings(&state, &after);
    let engines: Vec<(Reference<'_>, Reference<'_>)> = readings
        .iter()
        .map(|(b, a)| {
            (
                Reference::new(b).expect("valid"),
                Reference::new(a).expect("valid"),
            )
        })
        .collect();
    // The diff covers the headers that can exist (see `space::realizable`) at ENIs with an
    // address of their family.
    let exists = |point: &Point, h: &Header| {
        let eni = &state.enis[point.eni as usize];
        crate::whatif::space::realizable(h)
            && eni
                .ips
                .iter()
                .chain(&eni.public_ips)
                .any(|a| crate::model::Family::of(*a) == h.family())
    };
    for (point, h) in queries(&state, &headers)
        .into_iter()
        .filter(|(p, h)| exists(p, h))
    {
        let eni = &state.enis[point.eni as usize].id;
        let changed = engines
            .iter()
            .any(|(rb, ra)| rb.classify(point, &h).action != ra.classify(point, &h).action);
        let inside = regions
            .iter()
            .filter(|r| r.direction == point.direction && r.enis.contains(eni) && r.contains(&h))
            .count();
        assert_eq!(
            inside,
            usize::from(changed),
            "{h} at {eni} {}",
            point.direction
        );
    }
    let (rb, ra) = &engines[0];
    for r in regions.iter().filter(|r| r.before.reason != "unresolved") {
        for eni in &r.enis {
            let e = state
                .enis
                .iter()
                .position(|x| &x.id == eni)
                .expect("known ENI");
            let point = Point {
                eni: e as u32,
                direction: r.direction,
            };
            assert_eq!(rb.classify(point, &r.witness).action, r.before.action);
            assert_eq!(ra.classify(point, &r.witness).action, r.after.action);
        }
    }
}

/// The readings of `before`'s unresolved references (SEMANTICS 3.1) that the header-space
/// diff covers, each applied to `before` and to `after` (a state with some of its rules
/// removed): all match nothing, all match every address of their family, and with two
/// references or more each on its own (matching everything, the others nothing), names in
/// sorted order. As states without unresolved references, for the reference engine.
pub fn header_space_readings(before: &State, after: &State) -> Vec<(State, State)> {
    let unresolved = before.unresolved_rules();
    let mut names: Vec<String> = before
        .rules
        .iter()
        .zip(&unresolved)
        .filter(|(_, &u)| u)
        .map(|(r, _)| State::reference_name(&r.remote))
        .collect();
    names.sort_unstable();
    names.dedup();
    let mut out: Vec<(State, State)> = [false, true]
        .into_iter()
        .map(|all| (before.resolved_as(all), after.resolved_as(all)))
        .collect();
    if names.len() > 1 {
        let only = |state: &State, name: &str| {
            let mut out = state.clone();
            out.rules.clear();
            for (r, &u) in state.rules.iter().zip(&state.unresolved_rules()) {
                if !u {
                    out.rules.push(r.clone());
                    continue;
                }
                if State::reference_name(&r.remote) != name {
                    continue;
                }
                for any in [Cidr::ANY_V4, Cidr::ANY_V6] {
                    if r.local.is_some_and(|l| l.family() != any.family()) {
                        continue;
                    }
                    let mut c = r.clone();
                    c.remote = Peer::cidr(any);
                    if any.family() == crate::model::Family::V6 {
                        c.id = format!("{}#v6", r.id).into();
                    }
                    out.rules.push(c);
                }
            }
            out
        };
        for name in &names {
            out.push((only(before, name), only(after, name)));
        }
    }
    out
}

/// A small AWS account (two groups in a default and a non-default VPC, an ENI, a prefix
/// list) for the request harnesses.
const AWS_STATE: &str = r#"[
 {"SecurityGroups": [
  {"GroupId": "sg-0a1b2c3d4e5f60789", "GroupName": "web", "OwnerId": "123456789012", "VpcId": "vpc-1",
   "IpPermissions": [
    {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "203.0.113.0/24", "Description": "office"}],
     "Ipv6Ranges": [{"CidrIpv6": "2001:db8::/32"}], "PrefixListIds": [{"PrefixListId": "pl-0123abcd"}],
     "UserIdGroupPairs": [{"GroupId": "sg-0fedcba9876543210", "UserId": "123456789012"}]},
    {"IpProtocol": "icmp", "FromPort": 8, "ToPort": -1, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]},
    {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": "sg-0a1b2c3d4e5f60789", "UserId": "123456789012"}]}],
   "IpPermissionsEgress": [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]},
  {"GroupId": "sg-0fedcba9876543210", "GroupName": "default", "OwnerId": "123456789012", "VpcId": "vpc-d",
   "IpPermissions": [{"IpProtocol": "udp", "FromPort": 53, "ToPort": 53, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
   "IpPermissionsEgress": []}]},
 {"Vpcs": [{"VpcId": "vpc-1", "IsDefault": false}, {"VpcId": "vpc-d", "IsDefault": true}]},
 {"NetworkInterfaces": [{"NetworkInterfaceId": "eni-1", "VpcId": "vpc-1", "PrivateIpAddress": "10.0.0.5",
   "PrivateIpAddresses": [{"PrivateIpAddress": "10.0.0.5"}], "Groups": [{"GroupId": "sg-0a1b2c3d4e5f60789"}]}]},
 {"PrefixListId": "pl-0123abcd", "Entries": [{"Cidr": "198.51.100.0/24"}]}
]"#;

/// A small Alibaba account (a basic, an enterprise and a classic group, an ENI).
const ALIYUN_STATE: &str = r#"[
 {"SecurityGroups": {"SecurityGroup": [
  {"SecurityGroupId": "sg-bp1web", "SecurityGroupType": "normal", "VpcId": "vpc-bp1"},
  {"SecurityGroupId": "sg-bp1ent", "SecurityGroupType": "enterprise", "VpcId": "vpc-bp1"},
  {"SecurityGroupId": "sg-classic", "SecurityGroupType": "normal", "VpcId": ""}]}},
 {"RegionId": "cn-hangzhou", "SecurityGroupId": "sg-bp1web", "VpcId": "vpc-bp1", "InnerAccessPolicy": "Accept",
  "Permissions": {"Permission": [
   {"SecurityGroupRuleId": "sgr-1", "Direction": "ingress", "Policy": "Accept", "Priority": "1", "IpProtocol": "TCP",
    "PortRange": "22/22", "SourceCidrIp": "203.0.113.0/24", "NicType": "intranet"},
   {"SecurityGroupRuleId": "sgr-2", "Direction": "ingress", "Policy": "Drop", "Priority": "1", "IpProtocol": "TCP",
    "PortRange": "22/22", "SourceCidrIp": "203.0.113.66/32", "NicType": "intranet"},
   {"SecurityGroupRuleId": "sgr-3", "Direction": "egress", "Policy": "Accept", "Priority": "5", "IpProtocol": "UDP",
    "PortRange": "53/53", "DestCidrIp": "0.0.0.0/0", "NicType": "intranet"},
   {"SecurityGroupRuleId": "sgr-4", "Direction": "ingress", "Policy": "Accept", "Priority": "10", "IpProtocol": "ALL",
    "PortRange": "-1/-1", "SourceGroupId": "sg-bp1web", "NicType": "intranet"}]}},
 {"RegionId": "cn-hangzhou", "SecurityGroupId": "sg-bp1ent", "VpcId": "vpc-bp1", "InnerAccessPolicy": "Drop",
  "Permissions": {"Permission": [
   {"SecurityGroupRuleId": "sgr-5", "Direction": "ingress", "Policy": "Accept", "Priority": "1", "IpProtocol": "TCP",
    "PortRange": "443/443", "SourceCidrIp": "0.0.0.0/0", "NicType": "intranet"}]}},
 {"NetworkInterfaceSets": {"NetworkInterfaceSet": [{"NetworkInterfaceId": "eni-bp1", "VpcId": "vpc-bp1",
   "PrivateIpAddress": "192.168.1.10", "SecurityGroupIds": {"SecurityGroupId": ["sg-bp1web"]}}]}}
]"#;

fn fixture(text: &str) -> State {
    // Invariant: the fixtures above are valid exports (checked by this module's tests).
    let docs: Vec<serde_json::Value> = serde_json::from_str(text).expect("fixture JSON");
    let named: Vec<(String, serde_json::Value)> = docs
        .into_iter()
        .enumerate()
        .map(|(i, v)| (format!("fixture-{i}.json"), v))
        .collect();
    crate::provider::import_values(&named)
        .expect("fixture imports")
        .state
}

fn aws_fixture() -> &'static State {
    static STATE: std::sync::OnceLock<State> = std::sync::OnceLock::new();
    STATE.get_or_init(|| fixture(AWS_STATE))
}

fn aliyun_fixture() -> &'static State {
    static STATE: std::sync::OnceLock<State> = std::sync::OnceLock::new();
    STATE.get_or_init(|| fixture(ALIYUN_STATE))
}

/// Applies arbitrary request text to `state` and checks the revoke invariants: no panic; a
/// rejected request (API error) changes nothing and revokes nothing; a successful one
/// removes exactly the revoked rules; both response bodies render.
fn revoke_invariant(state: &State, data: &[u8]) {
    let _ = revoke_checked(state, data);
}

/// [`revoke_invariant`]'s checks, returning the outcome (`None`: not a request).
fn revoke_checked(state: &State, data: &[u8]) -> Option<crate::provider::Outcome> {
    let text = String::from_utf8_lossy(data);
    let request = crate::provider::RawRequest::parse(&text).ok()?;
    let outcome = crate::provider::revoke(state, &request).ok()?;
    let _ = outcome.body(Some(crate::provider::Format::Json));
    let _ = outcome.body(Some(crate::provider::Format::Xml));
    if outcome.error.is_some() {
        assert!(outcome.revoked.is_empty(), "an error revoked rules");
        assert_eq!(
            outcome.state.rules, state.rules,
            "an error changed the rules"
        );
        assert!(
            (400..600).contains(&outcome.status),
            "error status {}",
            outcome.status
        );
    } else {
        let gone: std::collections::HashSet<_> = outcome.revoked.iter().map(|r| &r.id).collect();
        let kept: Vec<_> = state
            .rules
            .iter()
            .filter(|r| !gone.contains(&r.id))
            .collect();
        assert_eq!(
            kept.len() + gone.len(),
            state.rules.len(),
            "revoked an unknown rule"
        );
        assert!(
            kept.into_iter().eq(outcome.state.rules.iter()),
            "kept rules changed"
        );
        outcome.state.validate().expect("the new state is valid");
    }
    Some(outcome)
}

/// AWS revoke requests (query strings, URLs, JSON) against a small account.
pub fn aws_request(data: &[u8]) {
    revoke_invariant(aws_fixture(), data);
}

/// Alibaba revoke requests against a small account.
pub fn aliyun_request(data: &[u8]) {
    revoke_invariant(aliyun_fixture(), data);
}

/// Synthetic traffic with the numbers a command line can give (issue 22): any count, seed
/// and background fraction (NaN, infinities, out of range) yields at most the count asked
/// for, lazily (a count of 2^64-1 allocates nothing up front), deterministically.
pub fn synthetic(data: &[u8]) {
    let word = |i: usize| {
        let mut w = [0u8; 8];
        for (j, b) in data.iter().skip(i * 8).take(8).enumerate() {
            w[j] = *b;
        }
        u64::from_le_bytes(w)
    };
    let (n, seed, background) = (word(0), word(1), f64::from_bits(word(2)));
    let state = aws_fixture();
    let take = 64;
    let first: Vec<_> = crate::packet::synth::Aimed::new(state, n, seed, background)
        .take(take)
        .collect();
    assert!(first.len() as u64 <= n.min(take as u64));
    let again: Vec<_> = crate::packet::synth::Aimed::new(state, n, seed, background)
        .take(take)
        .collect();
    assert_eq!(first, again, "synthetic traffic is deterministic");
}

/// Export importers: arbitrary JSON never panics; what imports is valid and compiles.
pub fn import(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let docs = match value {
        serde_json::Value::Array(items) if items.iter().all(|v| v.is_object()) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| (format!("doc-{i}.json"), v))
            .collect(),
        other => vec![("doc.json".to_string(), other)],
    };
    if let Ok(imported) = crate::provider::import_values(&docs) {
        imported.state.validate().expect("imports are valid");
        if let Ok(reference) = Reference::new(&imported.state) {
            drop(reference);
            compile(&imported.state, &Config::default()).expect("a valid import compiles");
        }
    }
}

/// Any traffic input (pcap, pcapng, flow logs; detected by content): reading never panics,
/// ends (the reader consumes input on every step), and every decoded header is consistent;
/// reading in chunks (captures: decoded on the rayon pool) gives the same items and
/// summary; and evaluation over a state whose ENIs own the first addresses seen gives the
/// same outcomes sequentially, in flow partitions and with the reference engine (with and
/// without connection state).
pub fn traffic(data: &[u8]) {
    use crate::packet::{Item, Source};
    use crate::track::{self, Evaluator};
    let Ok(mut source) = Source::open(data) else {
        return;
    };
    let mut items = Vec::new();
    let mut steps = 0usize;
    let mut failed = false;
    for item in source.by_ref() {
        steps += 1;
        assert!(steps <= data.len() + 2, "the reader does not advance");
        let Ok(item) = item else {
            failed = true;
            break;
        };
        assert!(
            items.last().is_none_or(|l: &Item| item.index() > l.index()),
            "indexes go forward"
        );
        items.push(item);
    }
    let header = |item: &Item| match item {
        Item::Packet(p) => p.header,
        Item::Flow(r) => r.header,
    };
    for h in items.iter().map(header) {
        assert_eq!(
            crate::model::Family::of(h.src),
            crate::model::Family::of(h.dst),
            "a header mixes families"
        );
    }
    // Mid-file corruption (issue 22): a capture that ends without an error was read to its
    // end, but for a last record cut short, which is counted.
    if let (Source::Capture(c), false) = (&source, failed) {
        let cut = c
            .summary()
            .skipped
            .keys()
            .any(|k| k.contains("runs past the end"));
        assert!(
            c.consumed() == data.len() as u64 || cut,
            "a capture ended early without an error: {} of {} bytes",
            c.consumed(),
            data.len()
        );
    }
    let mut chunked = Source::open(data).expect("it opened once");
    let mut again = Vec::new();
    let max = 1 + data.len() % 5;
    while let Ok(true) = chunked.read_chunk(max, &mut again) {}
    assert_eq!(again, items, "chunked reading differs");
    assert_eq!(
        chunked.summary(),
        source.summary(),
        "chunked summary differs"
    );

    let mut ips: Vec<IpAddr> = Vec::new();
    for h in items.iter().map(header) {
        for a in [h.src, h.dst] {
            if ips.len() < 4 && !ips.contains(&a) {
                ips.push(a);
            }
        }
    }
    if ips.is_empty() {
        return;
    }
    let provider = if data.len().is_multiple_of(2) {
        "aws"
    } else {
        "aliyun"
    };
    let state: State = serde_json::from_value(serde_json::json!({
        "groups": [{"id": "sg-a", "provider": provider}],
        "rules": [
            {"id": "r-low", "group": "sg-a", "direction": "ingress", "action": "accept",
             "protocol": 6, "dst_ports": "0-1023", "remote": {"cidr": "0.0.0.0/0"}},
            {"id": "r-udp", "group": "sg-a", "direction": "ingress", "action": "accept",
             "protocol": 17, "remote": {"cidr": "::/0"}},
            {"id": "r-ping", "group": "sg-a", "direction": "ingress", "action": "accept",
             "protocol": 1, "remote": {"cidr": "0.0.0.0/0"}},
            {"id": "r-out", "group": "sg-a", "direction": "egress", "action": "accept",
             "protocol": "all", "remote": {"cidr": "0.0.0.0/0"}}
        ],
        "enis": ips.iter().enumerate().map(|(i, ip)| serde_json::json!(
            {"id": format!("eni-{i}"), "ips": [ip.to_string()], "groups": ["sg-a"]}
        )).collect::<Vec<_>>()
    }))
    .expect("the fuzz state is valid");
    let table = Table::new(&state).expect("the fuzz state compiles");
    let reference = Reference::new(&state).expect("the fuzz state is consistent");
    let chunk = 1 + data.len() % 7;
    for stateless in [false, true] {
        // A small flow bound: evictions (issue 22) must not depend on the partitioning.
        let max_flows = 2 + data.len() % 8;
        let config = |partitions| track::Config {
            partitions,
            stateless,
            max_flows,
            ..track::Config::default()
        };
        let mut sequential = Evaluator::new(&table, &state, config(1)).expect("evaluator");
        let mut partitioned = Evaluator::new(&table, &state, config(4)).expect("evaluator");
        let mut oracle =
            Evaluator::with_engine(&reference, &table, &state, config(3)).expect("evaluator");
        for c in items.chunks(chunk) {
            let expected = sequential.eval(c);
            assert_eq!(
                partitioned.eval(c),
                expected,
                "flow partitions change outcomes"
            );
            assert_eq!(oracle.eval(c), expected, "the reference engine disagrees");
        }
        assert_eq!(sequential.stats(), partitioned.stats());
    }
}

/// One raw frame of every supported link type (the first byte picks it): decoding never
/// panics, and what decodes agrees with the frame's own length.
pub fn frame(data: &[u8]) {
    const LINK_TYPES: [i32; 10] = [1, 113, 276, 12, 14, 101, 228, 229, 0, 108];
    let Some((&pick, frame)) = data.split_first() else {
        return;
    };
    let link = LINK_TYPES[usize::from(pick) % LINK_TYPES.len()];
    let meta = crate::packet::decode::Meta {
        index: 0,
        ts_ns: 0,
        wire_len: frame.len() as u32,
        interface: 0,
    };
    if let Ok(p) = crate::packet::decode::decode(link, frame, meta) {
        assert!(
            p.cap_len as usize <= frame.len(),
            "captured length beyond the frame"
        );
        if let Some((s, d)) = p.ports {
            assert_eq!((s, d), (p.header.src_port, p.header.dst_port));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixtures_import() {
        assert!(aws_fixture().rules.len() >= 6);
        assert!(aliyun_fixture().rules.len() >= 5);
        assert_eq!(aliyun_fixture().enis.len(), 1);
    }

    #[test]
    fn revoke_invariant_holds_on_known_requests() {
        // Each request does what it should, so the invariant is checked on a real revoke,
        // a real rule-ID revoke and a real error, not on requests that change nothing.
        let revoked = |o: &crate::provider::Outcome| -> Vec<String> {
            o.revoked.iter().map(|r| r.id.to_string()).collect()
        };
        let o = revoke_checked(aws_fixture(), b"Action=RevokeSecurityGroupIngress&GroupId=sg-0a1b2c3d4e5f60789&IpPermissions.1.IpProtocol=tcp&IpPermissions.1.FromPort=22&IpPermissions.1.ToPort=22&IpPermissions.1.IpRanges.1.CidrIp=203.0.113.0/24")
            .expect("a request");
        assert_eq!(
            (o.error.is_none(), revoked(&o).len()),
            (true, 1),
            "{}",
            o.json
        );
        let o = revoke_checked(aliyun_fixture(), b"Action=RevokeSecurityGroup&RegionId=cn-hangzhou&SecurityGroupId=sg-bp1web&SecurityGroupRuleId.1=sgr-2")
            .expect("a request");
        assert_eq!(revoked(&o), vec!["sgr-2"], "{}", o.json);
        let o = revoke_checked(aliyun_fixture(), b"Action=RevokeSecurityGroup&RegionId=cn-hangzhou&SecurityGroupId=sg-bp1web&SecurityGroupRuleId.1=nope")
            .expect("a request");
        assert!(o.error.is_some() && o.revoked.is_empty(), "{}", o.json);
    }
}
