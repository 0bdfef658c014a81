//! [`IpProtocol`]: an IP protocol number and what sgsim knows of it, asked in one place.

/// An IP protocol number (the IPv4 protocol field, the IPv6 next header), with the
/// questions the stages ask of it answered once: whether its packets carry ports, whether
/// a header's two words are an ICMP type and code, whether connection tracking and the
/// clouds' rules look at its ports.
///
/// A [`Header`](super::Header) keeps the bare number (`Header::protocol`);
/// [`Header::ip_protocol`](super::Header::ip_protocol) gives it as this type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpProtocol(pub u8);

impl IpProtocol {
    /// ICMP (1).
    pub const ICMP: IpProtocol = IpProtocol(1);
    /// TCP (6).
    pub const TCP: IpProtocol = IpProtocol(6);
    /// UDP (17).
    pub const UDP: IpProtocol = IpProtocol(17);
    /// DCCP (33).
    pub const DCCP: IpProtocol = IpProtocol(33);
    /// ICMPv6 (58).
    pub const ICMPV6: IpProtocol = IpProtocol(58);
    /// SCTP (132).
    pub const SCTP: IpProtocol = IpProtocol(132);
    /// UDP-Lite (136).
    pub const UDP_LITE: IpProtocol = IpProtocol(136);

    /// The protocol number.
    pub const fn number(self) -> u8 {
        self.0
    }

    /// ICMP or ICMPv6: a header's two words are the type and the code, not ports.
    pub const fn is_icmp(self) -> bool {
        matches!(self.0, 1 | 58)
    }

    /// TCP or UDP: the protocols whose ports connection tracking keys flows by, that AWS
    /// compares in rules (with ICMP's type and code), and that flow logs must give ports
    /// for.
    pub const fn is_tcp_or_udp(self) -> bool {
        matches!(self.0, 6 | 17)
    }

    /// Whether its packets carry a source and a destination port, which the decoder reads
    /// and a header shows: TCP, UDP, DCCP, SCTP and UDP-Lite.
    pub const fn carries_ports(self) -> bool {
        matches!(self.0, 6 | 17 | 33 | 132 | 136)
    }

    /// Whether a rule of this protocol has port ranges of its own (as the providers render
    /// and read them): TCP, UDP, DCCP and SCTP. UDP-Lite's ports are decoded from packets
    /// ([`IpProtocol::carries_ports`]) but a rule for it is shown without ports.
    pub const fn rule_has_ports(self) -> bool {
        matches!(self.0, 6 | 17 | 33 | 132)
    }

    /// Whether a header's two words mean something a rule can select: ports
    /// ([`IpProtocol::carries_ports`]) or an ICMP type and code. For any other protocol
    /// both words are 0.
    pub const fn has_words(self) -> bool {
        self.is_icmp() || self.carries_ports()
    }
}

impl From<u8> for IpProtocol {
    fn from(n: u8) -> IpProtocol {
        IpProtocol(n)
    }
}

impl From<IpProtocol> for u8 {
    fn from(p: IpProtocol) -> u8 {
        p.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every protocol number's answers, against the lists the stages relied on.
    #[test]
    fn answers_match_the_protocol_lists() {
        for n in 0..=255u8 {
            let p = IpProtocol(n);
            assert_eq!(p.is_icmp(), n == 1 || n == 58, "{n}");
            assert_eq!(p.is_tcp_or_udp(), n == 6 || n == 17, "{n}");
            assert_eq!(p.carries_ports(), [6, 17, 33, 132, 136].contains(&n), "{n}");
            assert_eq!(p.rule_has_ports(), [6, 17, 33, 132].contains(&n), "{n}");
            assert_eq!(
                p.has_words(),
                [1, 6, 17, 33, 58, 132, 136].contains(&n),
                "{n}"
            );
        }
    }
}
