//! Alibaba's value syntax, read alike in exports and in requests: protocol names and port
//! ranges.

use crate::model::{IpProtocol, PortRange, Protocol};

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
