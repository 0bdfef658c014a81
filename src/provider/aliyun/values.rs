//! Alibaba's value syntax, read alike in exports and in requests: protocol names, port
//! ranges and NIC types.

use crate::model::{IpProtocol, Peer, PortRange, Protocol, Rule, SecurityGroup};

/// A NIC type (SEMANTICS.md §1.2, §2.1): the classic network has two, a VPC only the
/// private one. Revoke's match key and `DescribeSecurityGroupAttribute` read it alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Nic {
    /// Public NIC.
    Internet,
    /// Private NIC.
    Intranet,
}

impl Nic {
    /// `internet` / `intranet`, any case.
    pub(crate) fn parse(text: &str) -> Option<Nic> {
        match text.to_ascii_lowercase().as_str() {
            "internet" => Some(Nic::Internet),
            "intranet" => Some(Nic::Intranet),
            _ => None,
        }
    }

    /// As Alibaba writes it (the emulated API's answers, feature `serve`).
    #[cfg_attr(not(feature = "serve"), allow(dead_code))]
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Nic::Internet => "internet",
            Nic::Intranet => "intranet",
        }
    }

    /// The NIC type meant for `group` when `given` (or nothing) is said: in a VPC always
    /// intranet, whatever is given; in the classic network the given one, else intranet
    /// for a group peer and internet otherwise (the documented defaults).
    pub(crate) fn meant(group: &SecurityGroup, given: Option<Nic>, group_peer: bool) -> Nic {
        match given {
            _ if group.vpc.is_some() => Nic::Intranet,
            Some(n) => n,
            None if group_peer => Nic::Intranet,
            None => Nic::Internet,
        }
    }

    /// The NIC type a stored rule of `group` applies to: its `NicType` attribute read by
    /// [`Nic::meant`] (an unreadable or empty one counts as not given).
    pub(crate) fn of_rule(group: &SecurityGroup, rule: &Rule) -> Nic {
        let given = rule.attrs.get("NicType").and_then(|n| Nic::parse(n));
        Nic::meant(group, given, matches!(rule.remote, Peer::Group { .. }))
    }
}

/// Reads Alibaba's protocol names (case-insensitive).
pub(super) fn protocol(text: &str) -> Option<Protocol> {
    Some(match text.to_ascii_lowercase().as_str() {
        "tcp" => Protocol::TCP,
        "udp" => Protocol::UDP,
        "icmp" => Protocol::ICMP,
        "icmpv6" => Protocol::ICMPV6,
        "gre" => Protocol::GRE,
        "all" => Protocol::Any,
        _ => return None,
    })
}

/// Whether Alibaba rules of this protocol carry port ranges.
pub(super) fn has_ports(p: Protocol) -> bool {
    matches!(p, Protocol::Number(n) if IpProtocol(n).is_tcp_or_udp())
}

/// An `a/b` port range as written: two integers, each -1..=65535.
pub(super) fn port_pair(text: &str) -> Option<(i32, i32)> {
    let (a, b) = text.split_once('/')?;
    let num = |t: &str| -> Option<i32> {
        let digits = t.strip_prefix('-').unwrap_or(t);
        if digits.is_empty() || digits.len() > 5 || !digits.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        t.parse::<i32>().ok().filter(|n| (-1..=65535).contains(n))
    };
    Some((num(a)?, num(b)?))
}

/// The range of a valid TCP/UDP pair (`1 ≤ a ≤ b`); `-1/-1` is any.
pub(super) fn port_range(pair: (i32, i32)) -> Option<PortRange> {
    match pair {
        (-1, -1) => Some(PortRange::ANY),
        (a, b) if a >= 1 && b >= 1 => {
            PortRange::new(u16::try_from(a).ok()?, u16::try_from(b).ok()?).ok()
        }
        _ => None,
    }
}
