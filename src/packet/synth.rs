//! Seeded, deterministic synthetic headers aimed at a rule set.
//!
//! The generator never reads a clock or the OS's randomness: the same state, count and seed
//! give the same headers.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::model::{
    Cidr, Direction, Family, GroupId, Header, IpProtocol, Peer, PortRange, Protocol, Rule, State,
};

/// SplitMix64: a small, fast, well-distributed seeded generator.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator with this seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A value in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        // Lemire's multiply-shift; the tiny bias is irrelevant for traffic generation.
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A value in `lo..=hi`.
    pub fn in_range(&mut self, lo: u128, hi: u128) -> u128 {
        let span = hi - lo;
        if span == u128::MAX {
            return (u128::from(self.next_u64()) << 64) | u128::from(self.next_u64());
        }
        let r = (u128::from(self.next_u64()) << 64) | u128::from(self.next_u64());
        lo + r % (span + 1)
    }

    /// A value of a port range.
    pub fn port(&mut self, r: PortRange) -> u16 {
        self.in_range(r.lo().into(), r.hi().into()) as u16
    }

    /// An address of a block.
    pub fn addr(&mut self, c: Cidr) -> IpAddr {
        let (lo, hi) = c.range();
        let v = self.in_range(lo, hi);
        match c.family() {
            Family::V4 => IpAddr::V4(Ipv4Addr::from(v as u32)),
            Family::V6 => IpAddr::V6(Ipv6Addr::from(v)),
        }
    }
}

/// IPv4 addresses no packet comes from: "this network" (0.0.0.0/8) and the reserved
/// 240.0.0.0/4 (broadcast included).
fn bogus_source(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(a) => a.octets()[0] == 0 || a.octets()[0] >= 240,
        IpAddr::V6(_) => false,
    }
}

/// Whether every address of `c` is one no packet comes from (then a rule covers only
/// those, and a packet aimed at it may use one).
fn all_bogus(c: Cidr) -> bool {
    let (lo, hi) = c.range();
    c.family() == Family::V4 && (hi < 1 << 24 || lo >= 240 << 24)
}

/// A header that can exist on a wire (SEMANTICS-free sanity, issue 16 item 8): ICMP only
/// over IPv4 and ICMPv6 only over IPv6, type and code 0-255, no ports on protocols
/// without them, source different from destination, and no source in 0.0.0.0/8 or
/// 240.0.0.0/4 unless `source_block` (where the source was drawn) holds nothing else.
fn wire_ok(h: &Header, source_block: Option<Cidr>) -> bool {
    let v6 = h.src().is_ipv6();
    let family_ok = match h.protocol() {
        1 => !v6,
        58 => v6,
        _ => true,
    };
    let icmp_ok = !h.ip_protocol().is_icmp() || (h.src_port() <= 255 && h.dst_port() <= 255);
    let ports_ok = h.ip_protocol().has_words() || (h.src_port() == 0 && h.dst_port() == 0);
    let source_ok = !bogus_source(h.src()) || source_block.is_some_and(all_bogus);
    family_ok && icmp_ok && ports_ok && source_ok && h.src() != h.dst()
}

/// `r` limited to ICMP's type and code values (0-255), else `None` when it holds none.
fn icmp_range(r: PortRange) -> Option<PortRange> {
    (r.lo() <= 255).then(|| PortRange::new(r.lo(), r.hi().min(255)).ok())?
}

/// A header inside the box of `rule`, as seen from `direction`, with `remote` standing in
/// for the rule's peer, that can exist on a wire (see `wire_ok`). Returns `None` when the
/// rule's local side and the remote are of different families, or no header of its box
/// can exist (ICMP over IPv6, say); a few draws are tried before giving up.
pub fn header_in(rng: &mut Rng, rule: &Rule, remote: Cidr) -> Option<Header> {
    let local = match rule.local {
        Some(l) if l.family() != remote.family() => return None,
        Some(l) => l,
        None if remote.family() == Family::V4 => Cidr::ANY_V4,
        None => Cidr::ANY_V6,
    };
    let v6 = remote.family() == Family::V6;
    let source_block = match rule.direction {
        Direction::Ingress => remote,
        Direction::Egress => local,
    };
    for _ in 0..8 {
        let proto = match rule.protocol {
            Protocol::Number(n) => n,
            Protocol::Any => [6u8, 17, if v6 { 58 } else { 1 }, 47][rng.below(4) as usize],
        };
        let (r, l) = (rng.addr(remote), rng.addr(local));
        let (src, dst) = match rule.direction {
            Direction::Ingress => (r, l),
            Direction::Egress => (l, r),
        };
        let (sport, dport) = if IpProtocol(proto).is_icmp() {
            let (Some(t), Some(c)) = (icmp_range(rule.src_ports), icmp_range(rule.dst_ports))
            else {
                return None;
            };
            (rng.port(t), rng.port(c))
        } else if IpProtocol(proto).has_words() {
            (rng.port(rule.src_ports), rng.port(rule.dst_ports))
        } else {
            (0, 0)
        };
        if let Ok(h) = Header::new(src, dst, proto, sport, dport) {
            if wire_ok(&h, Some(source_block)) {
                return Some(h);
            }
        }
    }
    None
}

/// A rule that selects every IPv4 packet arriving at an ENI: drawing headers "inside" it
/// draws uniform IPv4 traffic.
pub fn any_ipv4() -> Rule {
    Rule {
        id: "".into(),
        group: "".into(),
        direction: Direction::Ingress,
        action: crate::model::Action::Accept,
        priority: Default::default(),
        protocol: Protocol::Any,
        src_ports: PortRange::ANY,
        dst_ports: PortRange::ANY,
        remote: Peer::cidr(Cidr::ANY_V4),
        local: None,
        description: None,
        attrs: Default::default(),
    }
}

/// `n` headers: each picks a rule with a CIDR peer uniformly and lands inside its box.
/// Rules with other peers are skipped; with no usable rule, headers are uniform IPv4.
pub fn headers(state: &State, n: usize, seed: u64) -> Vec<Header> {
    let mut rng = Rng::new(seed);
    let usable: Vec<(&Rule, Cidr)> = state
        .rules
        .iter()
        .filter_map(|r| match r.remote {
            Peer::Cidr { cidr } => Some((r, cidr)),
            _ => None,
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let h = if usable.is_empty() {
            header_in(&mut rng, &any_ipv4(), Cidr::ANY_V4)
        } else {
            let (rule, remote) = usable[rng.below(usable.len() as u64) as usize];
            header_in(&mut rng, rule, remote)
        };
        if let Some(h) = h {
            out.push(h);
        }
    }
    out
}

/// How a synthetic packet relates to the rule it was aimed at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Aim {
    /// Somewhere inside the rule's box.
    Inside,
    /// On a port (or ICMP type/code) edge, just inside.
    PortEdgeIn,
    /// One port past an edge, just outside.
    PortEdgeOut,
    /// The first or last address of the peer prefix, just inside.
    AddrEdgeIn,
    /// The address just before or after the peer prefix, just outside.
    AddrEdgeOut,
    /// The reply to a packet inside the box (addresses and ports swapped).
    Reply,
    /// Uniform background traffic, not aimed at any rule.
    Background,
}

/// The local addresses packets use, indexed once per state: an ENI's IPs by the groups
/// attached to it and by family, in state order (what a scan of every ENI per packet gave,
/// which made synthesis of a large fleet slow).
struct Locals<'s> {
    /// Per group: its ENIs' IPs, IPv4 then IPv6.
    by_group: std::collections::HashMap<&'s GroupId, [Vec<IpAddr>; 2]>,
    /// Every ENI's IPs, IPv4 then IPv6.
    all: [Vec<IpAddr>; 2],
}

fn slot(family: Family) -> usize {
    match family {
        Family::V4 => 0,
        Family::V6 => 1,
    }
}

impl<'s> Locals<'s> {
    fn new(state: &'s State) -> Locals<'s> {
        let mut by_group: std::collections::HashMap<&GroupId, [Vec<IpAddr>; 2]> =
            std::collections::HashMap::new();
        let mut all: [Vec<IpAddr>; 2] = Default::default();
        for e in &state.enis {
            for &a in &e.ips {
                all[slot(Family::of(a))].push(a);
            }
            for (i, g) in e.groups.iter().enumerate() {
                // An ENI that lists a group twice is one of its ENIs once.
                if e.groups[..i].contains(g) {
                    continue;
                }
                let entry = by_group.entry(g).or_default();
                for &a in &e.ips {
                    entry[slot(Family::of(a))].push(a);
                }
            }
        }
        Locals { by_group, all }
    }

    /// The local addresses a rule's packets use: the IPs of the ENIs its group is attached
    /// to, of `family`; empty when none.
    fn of(&self, rule: &Rule, family: Family) -> &[IpAddr] {
        self.by_group
            .get(&rule.group)
            .map_or(&[], |ips| ips[slot(family)].as_slice())
    }
}

fn addr_of(family: Family, v: u128) -> IpAddr {
    match family {
        Family::V4 => IpAddr::V4(Ipv4Addr::from(v as u32)),
        Family::V6 => IpAddr::V6(Ipv6Addr::from(v)),
    }
}

fn uniform(rng: &mut Rng, locals: &Locals<'_>) -> Option<Header> {
    let proto = [6u8, 17, 1, 47, 58][rng.below(5) as usize];
    let v6 = proto == 58 || (rng.below(8) == 0 && !locals.all[1].is_empty());
    let family = if v6 { Family::V6 } else { Family::V4 };
    let any = if v6 { Cidr::ANY_V6 } else { Cidr::ANY_V4 };
    let proto = match (proto, v6) {
        (1, true) => 58,
        (58, false) => 1,
        (p, _) => p,
    };
    let local = &locals.all[slot(family)];
    let a = if !local.is_empty() && rng.below(2) == 0 {
        local[rng.below(local.len() as u64) as usize]
    } else {
        rng.addr(any)
    };
    let b = rng.addr(any);
    let (src, dst) = if rng.below(2) == 0 { (a, b) } else { (b, a) };
    let (sp, dp) = if IpProtocol(proto).is_icmp() {
        (rng.below(256) as u16, rng.below(4) as u16)
    } else if proto == 47 {
        (0, 0)
    } else {
        (rng.below(65536) as u16, rng.below(65536) as u16)
    };
    Header::new(src, dst, proto, sp, dp)
        .ok()
        .filter(|h| wire_ok(h, None))
}

/// One packet aimed at `rule` (whose peer is `remote`) in the way `aim` says.
fn aimed_at(
    rng: &mut Rng,
    locals: &Locals<'_>,
    rule: &Rule,
    remote: Cidr,
    aim: Aim,
) -> Option<Header> {
    let first = header_in(rng, rule, remote)?;
    // The packet is shaped field by field and checked once at the end (`Header::new`): an
    // edge probe may leave the header's family.
    let (mut src, mut dst) = (first.src(), first.dst());
    let (mut src_port, mut dst_port) = (first.src_port(), first.dst_port());
    let locals = locals.of(rule, remote.family());
    if !locals.is_empty() && rule.local.is_none() {
        let l = locals[rng.below(locals.len() as u64) as usize];
        match rule.direction {
            Direction::Ingress => dst = l,
            Direction::Egress => src = l,
        }
    }
    let icmp = first.ip_protocol().is_icmp();
    let max = if icmp { 255 } else { u16::MAX };
    let edge_out = |lo: u16, hi: u16, up: bool| -> Option<u16> {
        if up {
            (hi < max).then(|| hi + 1)
        } else {
            lo.checked_sub(1)
        }
    };
    let up = rng.below(2) == 0;
    let set_remote = |(src, dst): (&mut IpAddr, &mut IpAddr), a: IpAddr| match rule.direction {
        Direction::Ingress => *src = a,
        Direction::Egress => *dst = a,
    };
    match aim {
        Aim::Inside | Aim::Background => {}
        Aim::PortEdgeIn => {
            let r = rule.dst_ports;
            dst_port = if up { r.hi().min(max) } else { r.lo().min(max) };
        }
        Aim::PortEdgeOut => {
            let r = rule.dst_ports;
            dst_port = edge_out(r.lo(), r.hi().min(max), up)?;
        }
        // A /0 has no edge worth probing: its ends are 0.0.0.0 and the broadcast address.
        Aim::AddrEdgeIn if remote.is_any() => {}
        Aim::AddrEdgeIn => {
            let (lo, hi) = remote.range();
            set_remote(
                (&mut src, &mut dst),
                addr_of(remote.family(), if up { hi } else { lo }),
            );
        }
        Aim::AddrEdgeOut if remote.is_any() => return None,
        Aim::AddrEdgeOut => {
            let (lo, hi) = remote.range();
            let top = match remote.family() {
                Family::V4 => u128::from(u32::MAX),
                Family::V6 => u128::MAX,
            };
            let v = if up {
                (hi < top).then(|| hi + 1)?
            } else {
                lo.checked_sub(1)?
            };
            set_remote((&mut src, &mut dst), addr_of(remote.family(), v));
        }
        // As `Header::reversed`: addresses swapped, ports too (ICMP type and code kept).
        Aim::Reply => {
            std::mem::swap(&mut src, &mut dst);
            if !icmp {
                std::mem::swap(&mut src_port, &mut dst_port);
            }
        }
    }
    // An edge probe may step outside what can exist (a source in 0.0.0.0/8, say): the
    // source block is the rule's peer for ingress (its local side for egress).
    let source_block = match rule.direction {
        Direction::Ingress => remote,
        Direction::Egress => rule.local.unwrap_or(Cidr::ANY_V4),
    };
    Header::new(src, dst, first.protocol(), src_port, dst_port)
        .ok()
        .filter(|h| wire_ok(h, Some(source_block)))
}

/// `n` packets aimed at the rules of `state`: per packet, with probability `background`
/// uniform background (half of it touching an ENI address), otherwise a rule picked
/// uniformly (with one of the blocks its peer stands for: a CIDR, a referenced group's
/// member IPs, a prefix list's entries) and a packet inside its box, on or just past a port or prefix
/// edge, or a reply (to the rule's latest inside packet when there is one), with the ENI IPs of the rule's group as the local side. Deterministic
/// in `seed`. [`Aimed`] yields the same packets one at a time, in constant memory.
pub fn aimed(state: &State, n: usize, seed: u64, background: f64) -> Vec<(Aim, Header)> {
    Aimed::new(state, n as u64, seed, background).collect()
}

/// The packets of [`aimed`], generated one at a time: memory depends on the rules, not on
/// the packet count.
pub struct Aimed<'s> {
    locals: Locals<'s>,
    rng: Rng,
    /// Every rule with each block its peer stands for.
    usable: Vec<(&'s Rule, Cidr)>,
    /// Per usable block: the latest inside packet, which a reply answers.
    last_inside: Vec<Option<Header>>,
    /// Background probability in millionths.
    threshold: u64,
    /// Packets still to yield, and attempts left (an aim can miss: a rule with no room
    /// past its edge).
    left: u64,
    attempts: u64,
}

impl<'s> Aimed<'s> {
    /// Up to `n` packets aimed at the rules of `state` (see [`aimed`]); `background` is
    /// clamped to 0..=1 (NaN counts as 0).
    pub fn new(state: &'s State, n: u64, seed: u64, background: f64) -> Aimed<'s> {
        // Every rule with each block its peer stands for: group references resolve to the
        // members' private IPs, prefix lists to their entries.
        let members = state.members();
        let usable: Vec<(&Rule, Cidr)> = state
            .rules
            .iter()
            .flat_map(|r| -> Vec<(&Rule, Cidr)> {
                match &r.remote {
                    Peer::Cidr { cidr } => vec![(r, *cidr)],
                    Peer::Group { group_id, .. } => members
                        .get(group_id)
                        .into_iter()
                        .flatten()
                        .map(|ip| (r, Cidr::host(*ip)))
                        .collect(),
                    Peer::PrefixList { prefix_list_id } => state
                        .prefix_list(prefix_list_id)
                        .into_iter()
                        .flat_map(|pl| pl.entries.iter().map(|c| (r, *c)))
                        .collect(),
                }
            })
            .collect();
        let background = if background.is_nan() { 0.0 } else { background };
        Aimed {
            locals: Locals::new(state),
            rng: Rng::new(seed),
            last_inside: vec![None; usable.len()],
            usable,
            threshold: (background.clamp(0.0, 1.0) * 1_000_000.0) as u64,
            left: n,
            attempts: n.saturating_mul(20).max(100),
        }
    }
}

impl Iterator for Aimed<'_> {
    type Item = (Aim, Header);

    fn next(&mut self) -> Option<(Aim, Header)> {
        const AIMS: [Aim; 6] = [
            Aim::Inside,
            Aim::PortEdgeIn,
            Aim::PortEdgeOut,
            Aim::AddrEdgeIn,
            Aim::AddrEdgeOut,
            Aim::Reply,
        ];
        while self.left > 0 && self.attempts > 0 {
            self.attempts -= 1;
            let rng = &mut self.rng;
            let found = if self.usable.is_empty() || rng.below(1_000_000) < self.threshold {
                uniform(rng, &self.locals).map(|h| (Aim::Background, h))
            } else {
                let pick = rng.below(self.usable.len() as u64) as usize;
                let (rule, remote) = self.usable[pick];
                let aim = AIMS[rng.below(AIMS.len() as u64) as usize];
                // A reply answers the rule's latest inside packet when there is one, so
                // that connections appear in both directions.
                if let (Aim::Reply, Some(h)) = (aim, self.last_inside[pick]) {
                    let reply = h.reversed();
                    wire_ok(&reply, None).then_some((aim, reply))
                } else {
                    let h = aimed_at(rng, &self.locals, rule, remote, aim);
                    if let (Aim::Inside, Some(h)) = (aim, h) {
                        self.last_inside[pick] = Some(h);
                    }
                    h.map(|h| (aim, h))
                }
            };
            if found.is_some() {
                self.left -= 1;
                return found;
            }
        }
        None
    }
}

fn checksum(data: &[u8], mut sum: u32) -> u16 {
    for chunk in data.chunks(2) {
        let word = if chunk.len() == 2 {
            u16::from_be_bytes([chunk[0], chunk[1]])
        } else {
            u16::from_be_bytes([chunk[0], 0])
        };
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn pseudo_sum(h: &Header, len: usize) -> u32 {
    let mut sum = 0u32;
    let mut add = |b: &[u8]| {
        for c in b.chunks(2) {
            sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
        }
    };
    match (h.src(), h.dst()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            add(&s.octets());
            add(&d.octets());
        }
        (s, d) => {
            add(&v6(s).octets());
            add(&v6(d).octets());
        }
    }
    add(&[0, h.protocol()]);
    add(&(len as u32).to_be_bytes());
    sum
}

fn v6(a: IpAddr) -> Ipv6Addr {
    match a {
        IpAddr::V4(a) => a.to_ipv6_mapped(),
        IpAddr::V6(a) => a,
    }
}

/// One Ethernet frame carrying `h`: IPv4 or IPv6, then TCP (20 bytes, `tcp_flags`), UDP
/// (8 bytes + 4 of payload), ICMP/ICMPv6 echo-shaped (8 bytes) or 8 zero bytes for other
/// protocols; lengths and checksums valid.
pub fn frame(h: &Header, tcp_flags: u8, ip_id: u16) -> Vec<u8> {
    let mut l4 = match h.protocol() {
        6 => {
            let mut t = vec![0u8; 20];
            t[0..2].copy_from_slice(&h.src_port().to_be_bytes());
            t[2..4].copy_from_slice(&h.dst_port().to_be_bytes());
            t[4..8].copy_from_slice(&1u32.to_be_bytes());
            t[12] = 0x50;
            t[13] = tcp_flags;
            t[14..16].copy_from_slice(&65535u16.to_be_bytes());
            t
        }
        17 => {
            let mut u = vec![0u8; 12];
            u[0..2].copy_from_slice(&h.src_port().to_be_bytes());
            u[2..4].copy_from_slice(&h.dst_port().to_be_bytes());
            u[4..6].copy_from_slice(&12u16.to_be_bytes());
            u[8..12].copy_from_slice(b"sgsm");
            u
        }
        1 | 58 => {
            let mut i = vec![0u8; 8];
            i[0] = h.src_port() as u8;
            i[1] = h.dst_port() as u8;
            i[4..6].copy_from_slice(&ip_id.to_be_bytes());
            i
        }
        _ => vec![0u8; 8],
    };
    let sum_at = match h.protocol() {
        6 => Some(16),
        17 => Some(6),
        1 | 58 => Some(2),
        _ => None,
    };
    if let Some(at) = sum_at {
        let base = if h.protocol() == 1 {
            0
        } else {
            pseudo_sum(h, l4.len())
        };
        let mut c = checksum(&l4, base);
        if h.protocol() == 17 && c == 0 {
            c = 0xffff;
        }
        l4[at..at + 2].copy_from_slice(&c.to_be_bytes());
    }
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
    match (h.src(), h.dst()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            f.extend_from_slice(&[0x08, 0x00]);
            let mut ip = vec![0u8; 20];
            ip[0] = 0x45;
            ip[2..4].copy_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
            ip[4..6].copy_from_slice(&ip_id.to_be_bytes());
            ip[8] = 64;
            ip[9] = h.protocol();
            ip[12..16].copy_from_slice(&s.octets());
            ip[16..20].copy_from_slice(&d.octets());
            let c = checksum(&ip, 0);
            ip[10..12].copy_from_slice(&c.to_be_bytes());
            f.extend_from_slice(&ip);
        }
        (s, d) => {
            f.extend_from_slice(&[0x86, 0xdd]);
            let mut ip = vec![0u8; 40];
            ip[0] = 0x60;
            ip[4..6].copy_from_slice(&(l4.len() as u16).to_be_bytes());
            ip[6] = h.protocol();
            ip[7] = 64;
            ip[8..24].copy_from_slice(&v6(s).octets());
            ip[24..40].copy_from_slice(&v6(d).octets());
            f.extend_from_slice(&ip);
        }
    }
    f.extend_from_slice(&l4);
    f
}

/// Writes a legacy pcap (little-endian, nanosecond timestamps, Ethernet) of synthetic
/// packets.
pub struct PcapWriter<W: std::io::Write> {
    out: W,
    count: u32,
}

impl<W: std::io::Write> PcapWriter<W> {
    /// Writes the file header.
    pub fn new(mut out: W) -> std::io::Result<Self> {
        let mut hdr = Vec::with_capacity(24);
        hdr.extend_from_slice(&0xa1b2_3c4du32.to_le_bytes());
        hdr.extend_from_slice(&2u16.to_le_bytes());
        hdr.extend_from_slice(&4u16.to_le_bytes());
        hdr.extend_from_slice(&0u32.to_le_bytes());
        hdr.extend_from_slice(&0u32.to_le_bytes());
        hdr.extend_from_slice(&262_144u32.to_le_bytes());
        hdr.extend_from_slice(&1u32.to_le_bytes());
        out.write_all(&hdr)?;
        Ok(PcapWriter { out, count: 0 })
    }

    /// Appends one packet at `ts_ns`. TCP packets get SYN, or ACK for replies (source
    /// port below destination port).
    pub fn write(&mut self, ts_ns: u64, h: &Header) -> std::io::Result<()> {
        let flags = if h.src_port() < h.dst_port() {
            0x10
        } else {
            0x02
        };
        let f = frame(h, flags, self.count as u16);
        self.count = self.count.wrapping_add(1);
        let mut rec = Vec::with_capacity(16 + f.len());
        // Past 2106 the 32-bit seconds saturate.
        let secs = u32::try_from(ts_ns / 1_000_000_000).unwrap_or(u32::MAX);
        rec.extend_from_slice(&secs.to_le_bytes());
        rec.extend_from_slice(&((ts_ns % 1_000_000_000) as u32).to_le_bytes());
        rec.extend_from_slice(&(f.len() as u32).to_le_bytes());
        rec.extend_from_slice(&(f.len() as u32).to_le_bytes());
        rec.extend_from_slice(&f);
        self.out.write_all(&rec)
    }

    /// Appends one packet at `ts_ns` with these TCP flags (ignored for other protocols).
    pub fn write_flags(&mut self, ts_ns: u64, h: &Header, tcp_flags: u8) -> std::io::Result<()> {
        let f = frame(h, tcp_flags, self.count as u16);
        self.count = self.count.wrapping_add(1);
        let mut rec = Vec::with_capacity(16 + f.len());
        rec.extend_from_slice(&((ts_ns / 1_000_000_000) as u32).to_le_bytes());
        rec.extend_from_slice(&((ts_ns % 1_000_000_000) as u32).to_le_bytes());
        rec.extend_from_slice(&(f.len() as u32).to_le_bytes());
        rec.extend_from_slice(&(f.len() as u32).to_le_bytes());
        rec.extend_from_slice(&f);
        self.out.write_all(&rec)
    }

    /// Flushes and returns the output.
    pub fn finish(mut self) -> std::io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// A whole pcap in memory: `headers` one millisecond apart from `start_ns`.
pub fn pcap_bytes(headers: &[Header], start_ns: u64) -> Vec<u8> {
    let mut w = match PcapWriter::new(Vec::with_capacity(headers.len() * 100 + 24)) {
        Ok(w) => w,
        Err(_) => return Vec::new(), // writing to a Vec cannot fail
    };
    for (i, h) in headers.iter().enumerate() {
        if w.write(start_ns + i as u64 * 1_000_000, h).is_err() {
            break;
        }
    }
    w.finish().unwrap_or_default()
}

/// TCP flags of a synthetic session's packets.
const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const FIN: u8 = 0x01;
const PSH: u8 = 0x08;

/// Whole conversations opened by `openers` (each used in turn, again from the start when
/// all have been): TCP as handshake, two to eight data packets alternating, and FIN both
/// ways; UDP and ICMP echo as one to four request/reply pairs (ICMP other than echo: one
/// packet); other protocols as two to five packets each way. Up to `concurrent` sessions
/// are open at once and their packets interleave at random: `n` packets in all, each with
/// its TCP flags (0 for other protocols). Deterministic in `seed`.
pub fn sessions(openers: &[Header], n: usize, concurrent: usize, seed: u64) -> Vec<(Header, u8)> {
    let mut out = Vec::with_capacity(n);
    if openers.is_empty() {
        return out;
    }
    let mut rng = Rng::new(seed);
    let mut next = openers.iter().cycle();
    let mut open: Vec<(Vec<(Header, u8)>, usize)> = Vec::new();
    let reply = |h: &Header| {
        let r = h.reversed();
        let src_port = match (h.protocol(), h.src_port()) {
            (1, 8) => 0,
            (58, 128) => 129,
            (_, p) if h.ip_protocol().is_icmp() => p,
            _ => r.src_port(),
        };
        r.with_ports(src_port, r.dst_port())
    };
    while out.len() < n {
        while open.len() < concurrent.max(1) {
            let Some(h) = next.next() else { break };
            let r = reply(h);
            let mut steps = Vec::new();
            match h.protocol() {
                6 => {
                    steps.extend([(*h, SYN), (r, SYN | ACK), (*h, ACK)]);
                    for i in 0..2 + rng.below(7) {
                        steps.push((if i % 2 == 0 { *h } else { r }, PSH | ACK));
                    }
                    steps.extend([(*h, FIN | ACK), (r, FIN | ACK), (*h, ACK)]);
                }
                1 | 58 if !matches!(h.src_port(), 8 | 128) => steps.push((*h, 0)),
                17 | 1 | 58 => {
                    for _ in 0..1 + rng.below(4) {
                        steps.extend([(*h, 0), (r, 0)]);
                    }
                }
                _ => {
                    for _ in 0..2 + rng.below(4) {
                        steps.extend([(*h, 0), (r, 0)]);
                    }
                }
            }
            open.push((steps, 0));
        }
        let i = rng.below(open.len() as u64) as usize;
        let (steps, at) = &mut open[i];
        out.push(steps[*at]);
        *at += 1;
        if *at == steps.len() {
            open.swap_remove(i);
        }
    }
    out
}

/// Packets of whole sessions opened by [`Aimed`] packets, `n` in all, handed to `f` a
/// block at a time (memory does not grow with `n`): each block is [`sessions`] of up to
/// 8,192 openers cut at 32,768 packets, so a few sessions at the end of each block stop
/// short. Stops at `f`'s first error.
pub fn sessions_streamed<E>(
    state: &State,
    n: u64,
    seed: u64,
    background: f64,
    mut f: impl FnMut(&[(Header, u8)]) -> Result<(), E>,
) -> Result<(), E> {
    const BLOCK: u64 = 32_768;
    let mut openers = Aimed::new(state, n, seed, background).map(|(_, h)| h);
    let mut done = 0u64;
    let mut block = 0u64;
    while done < n {
        let heads: Vec<Header> = openers.by_ref().take((BLOCK / 4) as usize).collect();
        if heads.is_empty() {
            break;
        }
        let want = (n - done).min(BLOCK) as usize;
        let packets = sessions(&heads, want, 1000, seed.wrapping_add(block));
        f(&packets)?;
        done += packets.len() as u64;
        block += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
