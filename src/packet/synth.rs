//! Seeded, deterministic synthetic headers aimed at a rule set.
//!
//! The generator never reads a clock or the OS's randomness: the same state, count and seed
//! give the same headers.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::model::{Cidr, Direction, Family, Header, Peer, PortRange, Protocol, Rule, State};

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

/// A header inside the box of `rule`, as seen from `direction`, with `remote` standing in
/// for the rule's peer. Returns `None` when the rule's local side and the remote are of
/// different families.
pub fn header_in(rng: &mut Rng, rule: &Rule, remote: Cidr) -> Option<Header> {
    let local = match rule.local {
        Some(l) if l.family() != remote.family() => return None,
        Some(l) => l,
        None if remote.family() == Family::V4 => Cidr::ANY_V4,
        None => Cidr::ANY_V6,
    };
    let proto = match rule.protocol {
        Protocol::Number(n) => n,
        Protocol::Any => [6u8, 17, 1, 47][rng.below(4) as usize],
    };
    let (r, l) = (rng.addr(remote), rng.addr(local));
    let (src, dst) = match rule.direction {
        Direction::Ingress => (r, l),
        Direction::Egress => (l, r),
    };
    let mut sport = rng.port(rule.src_ports);
    let mut dport = rng.port(rule.dst_ports);
    if matches!(proto, 1 | 58) {
        sport = sport.min(255);
        dport = dport.min(255);
    }
    Header::new(src, dst, proto, sport, dport).ok()
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
            header_in(
                &mut rng,
                &Rule {
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
                },
                Cidr::ANY_V4,
            )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_headers_and_inside_the_box() {
        let rules = vec![crate::classbench::parse_filter(
            "@10.0.0.0/8\t192.168.1.0/24\t1000 : 2000\t80 : 80\t0x06/0xFF\t0x0000/0x0000",
            0,
        )
        .unwrap()];
        let state = crate::classbench::state_of(rules);
        let a = headers(&state, 50, 7);
        assert_eq!(a, headers(&state, 50, 7));
        assert_ne!(a, headers(&state, 50, 8));
        let rule = &state.rules[0];
        for h in &a {
            assert!(rule.matches_fields(h), "{h}");
            assert!("10.0.0.0/8".parse::<Cidr>().unwrap().contains(h.src));
        }
    }
}
