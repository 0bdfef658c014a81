//! Validated address and port values: [`Cidr`], [`PortRange`], [`Protocol`].

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{IpProtocol, ValueError};

/// An IP address family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl Family {
    /// The longest prefix length of the family (32 or 128).
    pub fn max_len(self) -> u8 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }

    /// The family of an address.
    pub fn of(addr: IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }
}

/// Turns an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) into the IPv4 address it carries.
pub fn normalize_addr(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => addr,
        },
        v4 => v4,
    }
}

/// A canonical CIDR block: an address with its host bits zeroed and a prefix length that fits
/// its family. `0.0.0.0/0` and `::/0` are distinct: a prefix never matches the other family.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cidr {
    addr: IpAddr,
    len: u8,
}

impl Cidr {
    /// All IPv4 addresses.
    pub const ANY_V4: Cidr = Cidr {
        addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        len: 0,
    };
    /// All IPv6 addresses.
    pub const ANY_V6: Cidr = Cidr {
        addr: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        len: 0,
    };

    /// A block from an address and a prefix length; host bits are zeroed.
    /// Fails when the length exceeds the family's.
    pub fn new(addr: IpAddr, len: u8) -> Result<Cidr, ValueError> {
        let family = Family::of(addr);
        if len > family.max_len() {
            return Err(ValueError::PrefixTooLong {
                len,
                max: family.max_len(),
            });
        }
        let addr = match addr {
            IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask32(len))),
            IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask128(len))),
        };
        Ok(Cidr { addr, len })
    }

    /// The block holding exactly one address.
    pub fn host(addr: IpAddr) -> Cidr {
        Cidr {
            addr,
            len: Family::of(addr).max_len(),
        }
    }

    /// Parses `addr/len` or a bare address (a host block), and says whether the text had
    /// host bits set that canonicalization cleared (`10.0.0.5/8` → `10.0.0.0/8`, `true`).
    pub fn parse_lenient(text: &str) -> Result<(Cidr, bool), ValueError> {
        let bad = || ValueError::BadCidr(text.to_string());
        let (addr_text, len) = match text.split_once('/') {
            Some((a, l)) => {
                if l.is_empty() || l.len() > 3 || !l.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad());
                }
                (a, Some(l.parse::<u8>().map_err(|_| bad())?))
            }
            None => (text, None),
        };
        let addr: IpAddr = addr_text.parse().map_err(|_| bad())?;
        let len = len.unwrap_or(Family::of(addr).max_len());
        let cidr = Cidr::new(addr, len)?;
        Ok((cidr, cidr.addr != addr))
    }

    /// The network address (host bits zero).
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    // A prefix length, not a container size: there is no `is_empty` to pair it with.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u8 {
        self.len
    }

    /// Whether this is a `/0` block (every address of its family).
    pub fn is_any(&self) -> bool {
        self.len == 0
    }

    /// The address family.
    pub fn family(&self) -> Family {
        Family::of(self.addr)
    }

    /// Whether the block holds `addr` (always false across families).
    pub fn contains(&self, addr: IpAddr) -> bool {
        match (self.addr, addr) {
            (IpAddr::V4(net), IpAddr::V4(a)) => u32::from(a) & mask32(self.len) == u32::from(net),
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                u128::from(a) & mask128(self.len) == u128::from(net)
            }
            _ => false,
        }
    }

    /// Whether every address of `other` is in this block.
    pub fn covers(&self, other: &Cidr) -> bool {
        self.len <= other.len && self.contains(other.addr)
    }

    /// The block as an inclusive range of integers (IPv4 widened to `u128`).
    pub fn range(&self) -> (u128, u128) {
        match self.addr {
            IpAddr::V4(a) => {
                let lo = u32::from(a);
                (u128::from(lo), u128::from(lo | !mask32(self.len)))
            }
            IpAddr::V6(a) => {
                let lo = u128::from(a);
                (lo, lo | !mask128(self.len))
            }
        }
    }
}

/// The netmask of a /len IPv4 prefix.
pub fn mask32(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len))
    }
}

/// The netmask of a /len IPv6 prefix.
pub fn mask128(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len))
    }
}

impl FromStr for Cidr {
    type Err = ValueError;

    /// Parses a CIDR, accepting host bits (they are cleared).
    fn from_str(s: &str) -> Result<Cidr, ValueError> {
        Cidr::parse_lenient(s).map(|(c, _)| c)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl fmt::Debug for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Cidr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Cidr, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// An inclusive range of ports (or, for ICMP rules, of types or codes), never reversed.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortRange {
    lo: u16,
    hi: u16,
}

impl PortRange {
    /// Every value.
    pub const ANY: PortRange = PortRange {
        lo: 0,
        hi: u16::MAX,
    };

    /// `lo..=hi`; fails when reversed.
    pub fn new(lo: u16, hi: u16) -> Result<PortRange, ValueError> {
        if lo > hi {
            return Err(ValueError::ReversedRange { lo, hi });
        }
        Ok(PortRange { lo, hi })
    }

    /// A single value.
    pub fn single(value: u16) -> PortRange {
        PortRange {
            lo: value,
            hi: value,
        }
    }

    /// The low end.
    pub fn lo(&self) -> u16 {
        self.lo
    }

    /// The high end (inclusive).
    pub fn hi(&self) -> u16 {
        self.hi
    }

    /// Whether the range holds every value.
    pub fn is_any(&self) -> bool {
        *self == PortRange::ANY
    }

    /// Whether `value` lies in the range.
    pub fn contains(&self, value: u16) -> bool {
        self.lo <= value && value <= self.hi
    }

    /// Whether every value of `other` lies in this range.
    pub fn covers(&self, other: &PortRange) -> bool {
        self.lo <= other.lo && other.hi <= self.hi
    }

    /// Whether some value lies in both ranges.
    pub fn intersects(&self, other: PortRange) -> bool {
        self.lo <= other.hi && other.lo <= self.hi
    }
}

impl FromStr for PortRange {
    type Err = ValueError;

    /// `any`, `N`, or `LO-HI`.
    fn from_str(s: &str) -> Result<PortRange, ValueError> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("any") {
            return Ok(PortRange::ANY);
        }
        let num = |t: &str| {
            t.trim()
                .parse::<u16>()
                .map_err(|_| ValueError::BadPortRange(s.to_string()))
        };
        match s.split_once('-') {
            Some((a, b)) => PortRange::new(num(a)?, num(b)?),
            None => num(s).map(PortRange::single),
        }
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_any() {
            f.write_str("any")
        } else if self.lo == self.hi {
            write!(f, "{}", self.lo)
        } else {
            write!(f, "{}-{}", self.lo, self.hi)
        }
    }
}

impl fmt::Debug for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for PortRange {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PortRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<PortRange, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Num(u16),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Num(n) => Ok(PortRange::single(n)),
            Raw::Text(t) => t.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// The IP protocol a rule selects: any, or one protocol number.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// Every protocol (AWS `-1`, Alibaba `ALL`, ClassBench mask `0x00`).
    Any,
    /// One IANA protocol number.
    Number(u8),
}

impl Protocol {
    /// ICMP (1).
    pub const ICMP: Protocol = Protocol::Number(1);
    /// TCP (6).
    pub const TCP: Protocol = Protocol::Number(6);
    /// UDP (17).
    pub const UDP: Protocol = Protocol::Number(17);
    /// GRE (47).
    pub const GRE: Protocol = Protocol::Number(47);
    /// ICMPv6 (58).
    pub const ICMPV6: Protocol = Protocol::Number(58);

    /// Whether a packet of protocol number `proto` is selected.
    pub fn matches(&self, proto: u8) -> bool {
        match self {
            Protocol::Any => true,
            Protocol::Number(n) => *n == proto,
        }
    }

    /// Whether this protocol carries ports (TCP, UDP, and the other port-bearing transports
    /// DCCP and SCTP).
    pub fn has_ports(&self) -> bool {
        matches!(self, Protocol::Number(n) if IpProtocol(*n).rule_has_ports())
    }

    /// Whether this is ICMP or ICMPv6 (whose rules select type and code).
    pub fn is_icmp(&self) -> bool {
        matches!(self, Protocol::Number(n) if IpProtocol(*n).is_icmp())
    }

    /// The lowercase name for the protocols that have one.
    pub fn name(&self) -> Option<&'static str> {
        Some(match self {
            Protocol::Any => "any",
            Protocol::Number(1) => "icmp",
            Protocol::Number(6) => "tcp",
            Protocol::Number(17) => "udp",
            Protocol::Number(47) => "gre",
            Protocol::Number(58) => "icmpv6",
            Protocol::Number(_) => return None,
        })
    }
}

impl FromStr for Protocol {
    type Err = ValueError;

    /// Names (`tcp`, `udp`, `icmp`, `icmpv6`, `gre`, `any`/`all`, case-insensitive), `-1`, or
    /// a number 0..=255.
    fn from_str(s: &str) -> Result<Protocol, ValueError> {
        let lower = s.trim().to_ascii_lowercase();
        Ok(match lower.as_str() {
            "any" | "all" | "-1" => Protocol::Any,
            "icmp" => Protocol::ICMP,
            "tcp" => Protocol::TCP,
            "udp" => Protocol::UDP,
            "gre" => Protocol::GRE,
            "icmpv6" => Protocol::ICMPV6,
            other => Protocol::Number(
                other
                    .parse::<u8>()
                    .map_err(|_| ValueError::BadProtocol(s.to_string()))?,
            ),
        })
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.name(), self) {
            (Some(name), _) => f.write_str(name),
            (None, Protocol::Number(n)) => write!(f, "{n}"),
            (None, Protocol::Any) => f.write_str("any"),
        }
    }
}

impl fmt::Debug for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Protocol {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Protocol {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Protocol, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Num(i64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Num(-1) => Ok(Protocol::Any),
            Raw::Num(n) => u8::try_from(n)
                .map(Protocol::Number)
                .map_err(|_| serde::de::Error::custom(format!("protocol {n} out of range"))),
            Raw::Text(t) => t.parse().map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_canonicalizes_and_reports_host_bits() {
        let (c, changed) = Cidr::parse_lenient("100.68.0.18/18").unwrap();
        assert_eq!(c.to_string(), "100.68.0.0/18");
        assert!(changed);
        let (c, changed) = Cidr::parse_lenient("2001:db8::1/32").unwrap();
        assert_eq!(c.to_string(), "2001:db8::/32");
        assert!(changed);
        assert_eq!(
            "10.1.2.3".parse::<Cidr>().unwrap().to_string(),
            "10.1.2.3/32"
        );
        assert!(!Cidr::parse_lenient("10.0.0.0/8").unwrap().1);
    }

    #[test]
    fn cidr_rejects_too_long_and_garbage() {
        assert!(matches!(
            "10.0.0.0/33".parse::<Cidr>(),
            Err(ValueError::PrefixTooLong { len: 33, max: 32 })
        ));
        assert!("::/129".parse::<Cidr>().is_err());
        for bad in [
            "",
            "/8",
            "10.0.0.0/",
            "10.0.0/8",
            "10.0.0.0/-1",
            "10.0.0.0/8/8",
            "x/1",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn cidr_contains_never_crosses_family() {
        let any4: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(any4.contains("1.2.3.4".parse().unwrap()));
        assert!(!any4.contains("::1".parse().unwrap()));
        let net: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(net.contains("10.1.255.255".parse().unwrap()));
        assert!(!net.contains("10.2.0.0".parse().unwrap()));
        assert_eq!(net.range(), (0x0a01_0000, 0x0a01_ffff));
        assert!(any4.covers(&net) && !net.covers(&any4));
    }

    #[test]
    fn port_range_never_reversed() {
        assert!(PortRange::new(10, 9).is_err());
        assert_eq!("80".parse::<PortRange>().unwrap(), PortRange::single(80));
        assert_eq!("1-2".parse::<PortRange>().unwrap().hi(), 2);
        assert!("2-1".parse::<PortRange>().is_err());
        assert!("70000".parse::<PortRange>().is_err());
        assert_eq!("any".parse::<PortRange>().unwrap(), PortRange::ANY);
    }

    #[test]
    fn protocol_names_and_numbers() {
        assert_eq!("TCP".parse::<Protocol>().unwrap(), Protocol::TCP);
        assert_eq!("6".parse::<Protocol>().unwrap(), Protocol::TCP);
        assert_eq!("-1".parse::<Protocol>().unwrap(), Protocol::Any);
        assert_eq!("ALL".parse::<Protocol>().unwrap(), Protocol::Any);
        assert_eq!("ICMPv6".parse::<Protocol>().unwrap(), Protocol::ICMPV6);
        assert_eq!(Protocol::Number(50).to_string(), "50");
        assert!("256".parse::<Protocol>().is_err());
        assert!("tcpp".parse::<Protocol>().is_err());
    }

    #[test]
    fn mapped_ipv6_normalizes_to_ipv4() {
        let a: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(normalize_addr(a), "10.0.0.1".parse::<IpAddr>().unwrap());
        let b: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(normalize_addr(b), b);
    }
}
