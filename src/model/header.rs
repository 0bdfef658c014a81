//! [`Header`]: the fields of a packet that security groups look at.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use super::{normalize_addr, Direction, Family, IpProtocol, ValueError};

/// The classification key of one packet: addresses, protocol number and the two transport
/// words.
///
/// For TCP, UDP and other port-bearing protocols the words are the source and destination
/// ports. For ICMP and ICMPv6 they carry the **type** (`src_port`) and **code** (`dst_port`),
/// the convention Open vSwitch uses, so that ICMP selectors and port ranges are one kind of
/// range. For protocols without ports both words are 0.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "Fields")]
pub struct Header {
    src: IpAddr,
    dst: IpAddr,
    protocol: u8,
    src_port: u16,
    dst_port: u16,
}

/// [`Header`]'s fields as serialized: checked by [`Header::new`] on the way in.
#[derive(serde::Deserialize)]
struct Fields {
    src: IpAddr,
    dst: IpAddr,
    protocol: u8,
    src_port: u16,
    dst_port: u16,
}

impl TryFrom<Fields> for Header {
    type Error = ValueError;

    fn try_from(f: Fields) -> Result<Header, ValueError> {
        Header::new(f.src, f.dst, f.protocol, f.src_port, f.dst_port)
    }
}

impl Header {
    /// A header; IPv4-mapped IPv6 addresses are normalized to IPv4. Fails when the two
    /// addresses are of different families.
    pub fn new(
        src: IpAddr,
        dst: IpAddr,
        protocol: u8,
        src_port: u16,
        dst_port: u16,
    ) -> Result<Header, ValueError> {
        let (src, dst) = (normalize_addr(src), normalize_addr(dst));
        if Family::of(src) != Family::of(dst) {
            return Err(ValueError::BadHeader {
                text: format!("{src} -> {dst}"),
                why: "source and destination are of different families".into(),
            });
        }
        Ok(Header::new_unchecked(
            src, dst, protocol, src_port, dst_port,
        ))
    }

    /// A header from parts the caller has already checked: `src` and `dst` of one family
    /// and, where they come from outside the model, normalized (two IPv4 addresses off the
    /// wire, say). Nothing is checked in a release build; the decoder's hot path uses it.
    #[inline]
    pub(crate) fn new_unchecked(
        src: IpAddr,
        dst: IpAddr,
        protocol: u8,
        src_port: u16,
        dst_port: u16,
    ) -> Header {
        debug_assert_eq!(Family::of(src), Family::of(dst), "{src} -> {dst}");
        Header {
            src,
            dst,
            protocol,
            src_port,
            dst_port,
        }
    }

    /// The same header with other transport words (ports, or ICMP type and code).
    #[inline]
    #[must_use]
    pub fn with_ports(self, src_port: u16, dst_port: u16) -> Header {
        Header {
            src_port,
            dst_port,
            ..self
        }
    }

    /// Source address (IPv4-mapped IPv6 is normalized to IPv4 by [`Header::new`]).
    #[inline]
    pub fn src(&self) -> IpAddr {
        self.src
    }

    /// Destination address.
    #[inline]
    pub fn dst(&self) -> IpAddr {
        self.dst
    }

    /// IP protocol number.
    #[inline]
    pub fn protocol(&self) -> u8 {
        self.protocol
    }

    /// Source port, or ICMP type.
    #[inline]
    pub fn src_port(&self) -> u16 {
        self.src_port
    }

    /// Destination port, or ICMP code.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        self.dst_port
    }

    /// The IP protocol, with what is known of it.
    #[inline]
    pub fn ip_protocol(&self) -> IpProtocol {
        IpProtocol(self.protocol)
    }

    /// The address family.
    #[inline]
    pub fn family(&self) -> Family {
        Family::of(self.src)
    }

    /// The remote address as seen from an ENI looking in `direction`.
    pub fn remote(&self, direction: Direction) -> IpAddr {
        match direction {
            Direction::Ingress => self.src,
            Direction::Egress => self.dst,
        }
    }

    /// The local address as seen from an ENI looking in `direction`.
    pub fn local(&self, direction: Direction) -> IpAddr {
        match direction {
            Direction::Ingress => self.dst,
            Direction::Egress => self.src,
        }
    }

    /// The header of a reply: addresses and ports swapped (ICMP type/code kept).
    pub fn reversed(&self) -> Header {
        let is_icmp = self.ip_protocol().is_icmp();
        Header {
            src: self.dst,
            dst: self.src,
            protocol: self.protocol,
            src_port: if is_icmp {
                self.src_port
            } else {
                self.dst_port
            },
            dst_port: if is_icmp {
                self.dst_port
            } else {
                self.src_port
            },
        }
    }
}

fn split_endpoint(text: &str) -> Option<(IpAddr, Option<u16>)> {
    if let Some(rest) = text.strip_prefix('[') {
        let (addr, tail) = rest.split_once(']')?;
        let port = match tail.strip_prefix(':') {
            Some(p) => Some(p.parse().ok()?),
            None if tail.is_empty() => None,
            None => return None,
        };
        return Some((addr.parse().ok()?, port));
    }
    if let Ok(addr) = text.parse::<IpAddr>() {
        return Some((addr, None));
    }
    let (addr, port) = text.rsplit_once(':')?;
    Some((addr.parse().ok()?, Some(port.parse().ok()?)))
}

impl FromStr for Header {
    type Err = ValueError;

    /// `PROTO SRC[:PORT] -> DST[:PORT] [type T] [code C]`, e.g. `tcp 10.0.0.1:40000 ->
    /// 10.0.0.2:22`, `udp [2001:db8::1]:53 -> [2001:db8::2]:53`,
    /// `icmp 10.0.0.1 -> 10.0.0.2 type 8 code 0`, `47 1.1.1.1 -> 2.2.2.2`.
    fn from_str(text: &str) -> Result<Header, ValueError> {
        let bad = |why: &str| ValueError::BadHeader {
            text: text.to_string(),
            why: why.to_string(),
        };
        let words: Vec<&str> = text.split_whitespace().collect();
        if words.len() < 4 || !(words[2] == "->" || words[2] == ">") {
            return Err(bad("expected 'PROTO SRC -> DST'"));
        }
        let protocol = match words[0].parse::<super::Protocol>() {
            Ok(super::Protocol::Number(n)) => n,
            _ => return Err(bad("protocol must be a name or a number 0-255")),
        };
        let (src, sport) = split_endpoint(words[1]).ok_or_else(|| bad("bad source"))?;
        let (dst, dport) = split_endpoint(words[3]).ok_or_else(|| bad("bad destination"))?;
        let mut ty = None;
        let mut code = None;
        let mut rest = words[4..].iter();
        while let Some(key) = rest.next() {
            let value = rest
                .next()
                .and_then(|v| v.parse::<u8>().ok())
                .ok_or_else(|| bad("type/code need a value 0-255"))?;
            match *key {
                "type" => ty = Some(value),
                "code" => code = Some(value),
                _ => return Err(bad("unexpected trailing words")),
            }
        }
        let is_icmp = IpProtocol(protocol).is_icmp();
        if is_icmp && (sport.is_some() || dport.is_some()) {
            return Err(bad("ICMP has no ports: use 'type T code C'"));
        }
        if !is_icmp && (ty.is_some() || code.is_some()) {
            return Err(bad("type/code only apply to ICMP"));
        }
        let (w1, w2) = if is_icmp {
            (u16::from(ty.unwrap_or(0)), u16::from(code.unwrap_or(0)))
        } else {
            (sport.unwrap_or(0), dport.unwrap_or(0))
        };
        Header::new(src, dst, protocol, w1, w2).map_err(|_| bad("mixed address families"))
    }
}

impl fmt::Display for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let proto = super::Protocol::Number(self.protocol);
        let ep = |a: IpAddr, p: u16| match a {
            IpAddr::V4(a) => format!("{a}:{p}"),
            IpAddr::V6(a) => format!("[{a}]:{p}"),
        };
        let ip = self.ip_protocol();
        if ip.is_icmp() {
            write!(
                f,
                "{proto} {} -> {} type {} code {}",
                self.src, self.dst, self.src_port, self.dst_port
            )
        } else if ip.carries_ports() || self.src_port != 0 || self.dst_port != 0 {
            // Protocols with ports (TCP, UDP, DCCP, SCTP, UDP-Lite) always show them; any
            // other shows them when it carries any, so that printing loses nothing.
            write!(
                f,
                "{proto} {} -> {}",
                ep(self.src, self.src_port),
                ep(self.dst, self.dst_port)
            )
        } else {
            write!(f, "{proto} {} -> {}", self.src, self.dst)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_every_form() {
        for text in [
            "tcp 10.0.0.1:40000 -> 10.0.0.2:22",
            "udp [2001:db8::1]:53 -> [2001:db8::2]:53",
            "icmp 10.0.0.1 -> 10.0.0.2 type 8 code 0",
            "icmpv6 2001:db8::1 -> 2001:db8::2 type 128 code 0",
            "gre 1.1.1.1 -> 2.2.2.2",
        ] {
            let h: Header = text.parse().unwrap();
            assert_eq!(h.to_string(), text);
        }
        let h: Header = "6 10.0.0.1:1 > 10.0.0.2:2".parse().unwrap();
        assert_eq!((h.protocol, h.src_port, h.dst_port), (6, 1, 2));
    }

    /// Fuzz regression `model_text/gre-header-with-a-port-round-trips`: a port given to a
    /// protocol without ports (GRE) parsed, but printing dropped it.
    #[test]
    fn a_port_on_a_portless_protocol_survives_printing() {
        for text in [
            "gre 1.1.1.1:0 -> 10.0.0.1:4002",
            "136 10.0.0.1:7 -> 10.0.0.2:9",
        ] {
            let h: Header = text.parse().unwrap();
            assert_eq!(h.to_string(), text);
            assert_eq!(h.to_string().parse::<Header>().unwrap(), h);
        }
    }

    #[test]
    fn rejects_bad_headers() {
        for text in [
            "",
            "tcp 10.0.0.1",
            "tcp 10.0.0.1:1 -> ::1",
            "tcp 10.0.0.1:99999 -> 10.0.0.2:1",
            "icmp 10.0.0.1:1 -> 10.0.0.2",
            "tcp 10.0.0.1 -> 10.0.0.2 type 3",
            "any 10.0.0.1 -> 10.0.0.2",
            "icmp 10.0.0.1 -> 10.0.0.2 type",
        ] {
            assert!(text.parse::<Header>().is_err(), "{text}");
        }
    }

    #[test]
    fn deserializing_checks_like_new() {
        let h: Header = serde_json::from_value(serde_json::json!({
            "src": "::ffff:10.0.0.1", "dst": "10.0.0.2", "protocol": 6, "src_port": 1, "dst_port": 2
        }))
        .unwrap();
        assert_eq!(h, "tcp 10.0.0.1:1 -> 10.0.0.2:2".parse().unwrap());
        assert_eq!(serde_json::to_value(h).unwrap()["src"], "10.0.0.1");
        let mixed = serde_json::json!({
            "src": "2001:db8::1", "dst": "10.0.0.2", "protocol": 6, "src_port": 1, "dst_port": 2
        });
        assert!(serde_json::from_value::<Header>(mixed).is_err());
    }

    #[test]
    fn mapped_addresses_are_normalized_and_reverse_swaps() {
        let h: Header = "tcp [::ffff:10.0.0.1]:5 -> 10.0.0.2:6".parse().unwrap();
        assert_eq!(h.src, "10.0.0.1".parse::<IpAddr>().unwrap());
        let r = h.reversed();
        assert_eq!((r.src, r.src_port, r.dst_port), (h.dst, 6, 5));
        assert_eq!(h.remote(Direction::Ingress), h.src);
        assert_eq!(h.local(Direction::Ingress), h.dst);
    }
}
