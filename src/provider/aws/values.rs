//! EC2's value syntax, read alike in exports and in requests, and written in responses:
//! protocol texts, which protocols' ports EC2 compares, and the hash of synthesized IDs.

use crate::model::{IpProtocol, Protocol};

/// Parses an AWS protocol text: `-1`, a name (case-insensitive) or a number 0–255.
/// `all` is accepted only when `allow_all`.
pub(super) fn parse_protocol(text: &str, allow_all: bool) -> Option<Protocol> {
    let t = text.trim().to_ascii_lowercase();
    match t.as_str() {
        "-1" => Some(Protocol::Any),
        "all" if allow_all => Some(Protocol::Any),
        "tcp" => Some(Protocol::TCP),
        "udp" => Some(Protocol::UDP),
        "icmp" => Some(Protocol::ICMP),
        "icmpv6" => Some(Protocol::ICMPV6),
        _ if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) => {
            t.parse::<u8>().ok().map(Protocol::Number)
        }
        _ => None,
    }
}

/// The protocol as EC2 prints it: `-1`, `tcp`, `udp`, `icmp`, `icmpv6`, or the number.
pub(crate) fn protocol_text(p: Protocol) -> String {
    match p {
        Protocol::Any => "-1".into(),
        Protocol::Number(6) => "tcp".into(),
        Protocol::Number(17) => "udp".into(),
        Protocol::Number(1) => "icmp".into(),
        Protocol::Number(58) => "icmpv6".into(),
        Protocol::Number(n) => n.to_string(),
    }
}

/// Whether EC2 compares ports (TCP/UDP) or type and code (ICMP/ICMPv6) for this protocol;
/// for `-1` and every other number they are ignored.
pub(super) fn uses_ports(p: Protocol) -> bool {
    matches!(p, Protocol::Number(n) if IpProtocol(n).is_icmp() || IpProtocol(n).is_tcp_or_udp())
}

/// A 64-bit FNV-1a hash (synthesized rule IDs).
pub(super) fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
