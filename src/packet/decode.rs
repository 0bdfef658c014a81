//! Bytes of one captured frame → [`Packet`]: link layers, IPv4/IPv6 and the upper layer.
//!
//! Every length is checked here, in our own layer, *before* a `pnet_packet` view is built
//! over the bytes (pnet has panicked on crafted input, and `Ipv4Packet::payload()` trusts
//! `total_length`). A frame that cannot be decoded yields a [`Skip`] naming the reason; this
//! module never panics on any input (the unit tests and the capture suite feed it
//! truncated and malformed frames).
//!
//! # Supported
//!
//! | layer | what |
//! |---|---|
//! | link | Ethernet (any number of 802.1Q / 802.1ad / 0x9100 tags), Linux cooked SLL (113) and SLL2 (276), raw IP (101, 12, 14, 228, 229), BSD null/loopback (0, 108, either byte order) |
//! | network | IPv4 with options, IPv6 with the extension-header chain 0, 43, 44, 60, 51, 135, 139, 140 |
//! | upper | TCP (ports, flags), UDP, UDP-Lite, SCTP, DCCP (ports), ICMP and ICMPv6 (type/code); any other protocol by number (ports 0) |
//!
//! # Fragments
//!
//! A first fragment (offset 0) is decoded as usual and marked with [`Fragment`]. A
//! non-first fragment carries no upper-layer header: its ports (or ICMP type/code) are
//! absent ([`Packet::transport`] is [`Transport::None`], the [`Header`] words are 0)
//! and [`Fragment::offset`] is non-zero. Evaluation ([`crate::track`]) gives such a fragment
//! the ports of its first fragment when that was seen earlier in the same input.
//!
//! Tunnels (GRE, VXLAN, Geneve, IP-in-IP) are not decapsulated: the outer header is what
//! a security group sees.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use pnet_packet::ethernet::EthernetPacket;
use pnet_packet::icmp::IcmpPacket;
use pnet_packet::icmpv6::Icmpv6Packet;
use pnet_packet::ipv4::Ipv4Packet;
use pnet_packet::ipv6::Ipv6Packet;
use pnet_packet::tcp::TcpPacket;
use pnet_packet::udp::UdpPacket;

use crate::model::Header;

/// Fragmentation of an IP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Fragment {
    /// The IP identification (16 bits for IPv4, 32 for IPv6).
    pub id: u32,
    /// The fragment offset in bytes (0 for the first fragment).
    pub offset: u32,
    /// Whether more fragments follow.
    pub more: bool,
}

impl Fragment {
    /// Whether this fragment carries the upper-layer header.
    pub fn is_first(&self) -> bool {
        self.offset == 0
    }
}

/// The transport header of a packet, as far as it was read: one value per protocol family
/// the decoder knows, so that ports, flags and ICMP type/code cannot disagree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// TCP, its header captured.
    Tcp {
        /// Source port.
        src_port: u16,
        /// Destination port.
        dst_port: u16,
        /// Flags (FIN 0x01 … CWR 0x80).
        flags: u8,
    },
    /// A protocol with ports and no flags sgsim reads: UDP, UDP-Lite, SCTP, DCCP.
    Ports {
        /// Source port.
        src_port: u16,
        /// Destination port.
        dst_port: u16,
    },
    /// ICMP or ICMPv6.
    Icmp {
        /// The ICMP type.
        ty: u8,
        /// The ICMP code.
        code: u8,
    },
    /// No transport header read: a protocol without one sgsim knows, or a non-first
    /// fragment.
    None,
}

impl Transport {
    /// What a packet of `header` with TCP flags `tcp_flags` carries, read back from the
    /// header's words: TCP with its flags, the other protocols with ports
    /// ([`IpProtocol::carries_ports`](crate::model::IpProtocol::carries_ports)), ICMP's type
    /// and code, nothing for the rest. For traffic built from headers rather than decoded.
    pub fn of(header: &Header, tcp_flags: u8) -> Transport {
        let (src_port, dst_port) = (header.src_port(), header.dst_port());
        let ip = header.ip_protocol();
        if header.protocol() == 6 {
            Transport::Tcp {
                src_port,
                dst_port,
                flags: tcp_flags,
            }
        } else if ip.carries_ports() {
            Transport::Ports { src_port, dst_port }
        } else if ip.is_icmp() {
            // ICMP words hold a byte each.
            Transport::Icmp {
                ty: src_port as u8,
                code: dst_port as u8,
            }
        } else {
            Transport::None
        }
    }

    /// Source and destination ports, when the protocol has them and they were read.
    #[inline]
    pub fn ports(&self) -> Option<(u16, u16)> {
        match *self {
            Transport::Tcp {
                src_port, dst_port, ..
            }
            | Transport::Ports { src_port, dst_port } => Some((src_port, dst_port)),
            Transport::Icmp { .. } | Transport::None => None,
        }
    }

    /// TCP flags, for TCP with a header.
    #[inline]
    pub fn tcp_flags(&self) -> Option<u8> {
        match *self {
            Transport::Tcp { flags, .. } => Some(flags),
            _ => None,
        }
    }

    /// ICMP/ICMPv6 type and code, when present.
    #[inline]
    pub fn icmp(&self) -> Option<(u8, u8)> {
        match *self {
            Transport::Icmp { ty, code } => Some((ty, code)),
            _ => None,
        }
    }

    /// The two words of the [`Header`]: the ports, ICMP type and code, or 0 and 0.
    #[inline]
    pub fn words(&self) -> (u16, u16) {
        match *self {
            Transport::Tcp {
                src_port, dst_port, ..
            }
            | Transport::Ports { src_port, dst_port } => (src_port, dst_port),
            Transport::Icmp { ty, code } => (u16::from(ty), u16::from(code)),
            Transport::None => (0, 0),
        }
    }
}

/// One decoded packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet {
    /// 0-based position of the record in the input (skipped records keep their number).
    pub index: u64,
    /// Capture time in nanoseconds since the Unix epoch (0 when the format has none).
    pub ts_ns: u64,
    /// The classification header (ICMP: type/code in the port words; ports 0 when absent).
    pub header: Header,
    /// Length on the wire.
    pub wire_len: u32,
    /// Length captured.
    pub cap_len: u32,
    /// The transport header as read (ports, TCP flags, ICMP type and code).
    pub transport: Transport,
    /// Fragment information, for fragments only.
    pub fragment: Option<Fragment>,
    /// The capture interface (pcapng interface ID; 0 for pcap).
    pub interface: u32,
}

// A packet is moved by value through the decoder's chunks and the tracker: keep it small.
const _: () = assert!(std::mem::size_of::<Packet>() <= 88);

impl Packet {
    /// The ICMP type, if any.
    #[inline]
    pub fn icmp_type(&self) -> Option<u8> {
        self.transport.icmp().map(|x| x.0)
    }

    /// The ICMP code, if any.
    #[inline]
    pub fn icmp_code(&self) -> Option<u8> {
        self.transport.icmp().map(|x| x.1)
    }

    /// TCP flags (FIN 0x01 … CWR 0x80), for TCP with a header.
    #[inline]
    pub fn tcp_flags(&self) -> Option<u8> {
        self.transport.tcp_flags()
    }

    /// Source and destination ports, when the protocol has them and they were captured.
    #[inline]
    pub fn ports(&self) -> Option<(u16, u16)> {
        self.transport.ports()
    }
}

/// Why a frame was not decoded. The [`Display`](fmt::Display) text is the name the decode
/// summary counts it under.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Skip {
    /// The capture's link type is not one we decode.
    LinkType(i32),
    /// A layer ends before its header does.
    Truncated(&'static str),
    /// The frame carries something else than IP (by ethertype or family).
    NotIp(String),
    /// A header field holds an impossible value.
    Malformed(&'static str),
    /// A pcapng packet names an interface that was never described.
    UnknownInterface(u32),
    /// The last record claims more bytes than the file holds (a capture cut short, or a
    /// corrupt length field), at this byte offset.
    CutShort(u64),
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Skip::LinkType(l) => match link_type_name(*l) {
                Some(n) => write!(f, "unsupported link type {l} ({n})"),
                None => write!(f, "unsupported link type {l}"),
            },
            Skip::Truncated(what) => write!(f, "truncated {what}"),
            Skip::NotIp(what) => write!(f, "not IP ({what})"),
            Skip::Malformed(what) => write!(f, "malformed {what}"),
            Skip::UnknownInterface(i) => write!(f, "packet on undescribed interface {i}"),
            Skip::CutShort(at) => write!(
                f,
                "record at offset {at} runs past the end of the file (capture cut short or corrupt length)"
            ),
        }
    }
}

/// The name of a link type from the tcpdump registry, for the ones captures commonly use.
pub fn link_type_name(l: i32) -> Option<&'static str> {
    Some(match l {
        0 => "BSD loopback",
        1 => "Ethernet",
        6 => "IEEE 802.5 Token Ring",
        7 => "ARCNET",
        8 => "SLIP",
        9 => "PPP",
        10 => "FDDI",
        12 | 14 | 101 => "raw IP",
        50 => "PPP in HDLC framing",
        51 => "PPPoE",
        104 => "Cisco HDLC",
        105 => "IEEE 802.11",
        107 => "Frame Relay",
        108 => "OpenBSD loopback",
        113 => "Linux cooked SLL",
        114 => "LocalTalk",
        117 => "OpenBSD pflog",
        119 => "Prism",
        122 => "IP over Fibre Channel",
        123 => "SunATM",
        127 => "IEEE 802.11 radiotap",
        129 => "ARCNET Linux",
        138 => "Apple IP over IEEE 1394",
        139 => "MTP2 with pseudo-header",
        140 => "MTP2",
        141 => "MTP3",
        142 => "SCCP",
        143 => "DOCSIS",
        163 => "IEEE 802.11 AVS",
        165 => "BACnet MS/TP",
        166 => "PPP with direction pseudo-header",
        169 => "GPRS LLC",
        177 => "Linux LAPD",
        187 => "Bluetooth HCI H4",
        189 => "USB Linux",
        192 => "PPI",
        195 => "IEEE 802.15.4 with FCS",
        201 => "Bluetooth HCI H4 with pseudo-header",
        202 => "AX.25 KISS",
        215 => "IEEE 802.15.4 non-ASK PHY",
        220 => "USB Linux mmapped",
        224 => "Fibre Channel",
        227 => "CAN SocketCAN",
        228 => "raw IPv4",
        229 => "raw IPv6",
        230 => "IEEE 802.15.4 without FCS",
        231 => "D-Bus",
        235 => "DVB-CI",
        239 => "Netlink",
        240 => "Bluetooth Linux monitor",
        244 => "Bluetooth LE link layer",
        249 => "Netlink",
        250 => "PROFIBUS data link",
        252 => "Wireshark upper PDU",
        253 => "Netanalyzer",
        258 => "Apple PKTAP",
        262 => "Zigbee",
        263 => "Ethernet with preamble and SFD",
        270 => "Linux vsock",
        271 => "Nordic BLE",
        274 => "Marvell DSA",
        275 => "Marvell EDSA",
        276 => "Linux cooked SLL2",
        283 => "IEEE 802.15.4 TAP",
        _ => return None,
    })
}

fn ethertype_name(t: u16) -> String {
    match t {
        0x0806 => "ARP".into(),
        0x8035 => "RARP".into(),
        0x809b => "AppleTalk".into(),
        0x80f3 => "AARP".into(),
        0x8137 | 0x8138 => "IPX".into(),
        0x8808 => "Ethernet flow control".into(),
        0x8809 => "slow protocols (LACP)".into(),
        0x8847 | 0x8848 => "MPLS".into(),
        0x8863 | 0x8864 => "PPPoE".into(),
        0x888e => "EAPOL".into(),
        0x88cc => "LLDP".into(),
        0x88e5 => "MACsec".into(),
        0x88f7 => "PTP".into(),
        0x8902 => "CFM".into(),
        0x9000 => "loopback".into(),
        t if t < 0x0600 => "802.3 length field (LLC)".into(),
        t => format!("ethertype 0x{t:04x}"),
    }
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes([
        *b.get(at)?,
        *b.get(at + 1)?,
        *b.get(at + 2)?,
        *b.get(at + 3)?,
    ]))
}

/// What the network layer found, before it becomes a [`Packet`].
struct Network {
    src: IpAddr,
    dst: IpAddr,
    protocol: u8,
    fragment: Option<Fragment>,
    transport: Transport,
}

/// Frame metadata the capture container supplies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    /// Record position in the input.
    pub index: u64,
    /// Time, ns since the epoch.
    pub ts_ns: u64,
    /// Length on the wire.
    pub wire_len: u32,
    /// Interface.
    pub interface: u32,
}

/// Decodes one frame of link type `link_type`.
pub fn decode(link_type: i32, frame: &[u8], meta: Meta) -> Result<Packet, Skip> {
    if link_type == 1 {
        if let Some(p) = ethernet_ipv4_fast(frame, meta) {
            return Ok(p);
        }
    }
    decode_any(link_type, frame, meta)
}

/// The common case, decoded in one pass: an untagged Ethernet frame with an unfragmented
/// IPv4 packet whose TCP or UDP header was captured whole. `None` for anything else,
/// which [`decode_any`] then decodes (to the same packet, when this one returns one: the
/// unit tests check it on every cut and mutation of such frames).
fn ethernet_ipv4_fast(frame: &[u8], meta: Meta) -> Option<Packet> {
    let eth = EthernetPacket::new(frame)?;
    if eth.get_ethertype().0 != 0x0800 {
        return None;
    }
    let b = &frame[14..];
    let ihl = usize::from(*b.first()? & 0x0f) * 4;
    if b[0] >> 4 != 4 || ihl < 20 || b.len() < ihl {
        return None;
    }
    // Lengths checked above: the view covers a full header with its options.
    let ip = Ipv4Packet::new(b)?;
    if ip.get_fragment_offset() != 0 || ip.get_flags() & 0b001 != 0 {
        return None;
    }
    let total = usize::from(ip.get_total_length());
    let end = if total >= ihl && total <= b.len() {
        total
    } else {
        b.len()
    };
    let rest = &b[ihl..end];
    let protocol = ip.get_next_level_protocol().0;
    let transport = match protocol {
        6 if rest.len() >= 20 => {
            let tcp = TcpPacket::new(rest)?;
            Transport::Tcp {
                src_port: tcp.get_source(),
                dst_port: tcp.get_destination(),
                flags: tcp.get_flags(),
            }
        }
        17 if rest.len() >= 8 => {
            let udp = UdpPacket::new(rest)?;
            Transport::Ports {
                src_port: udp.get_source(),
                dst_port: udp.get_destination(),
            }
        }
        _ => return None,
    };
    let (src_port, dst_port) = transport.words();
    Some(Packet {
        index: meta.index,
        ts_ns: meta.ts_ns,
        // Two IPv4 addresses: of one family, and nothing to normalize (`Header::new`).
        header: Header::new_unchecked(
            IpAddr::V4(ip.get_source()),
            IpAddr::V4(ip.get_destination()),
            protocol,
            src_port,
            dst_port,
        ),
        wire_len: meta.wire_len.max(frame.len() as u32),
        cap_len: frame.len() as u32,
        transport,
        fragment: None,
        interface: meta.interface,
    })
}

/// [`decode`] for any frame, layer by layer.
fn decode_any(link_type: i32, frame: &[u8], meta: Meta) -> Result<Packet, Skip> {
    let net = match link_type {
        1 => ethernet(frame)?,
        113 => sll(frame)?,
        276 => sll2(frame)?,
        12 | 14 | 101 => raw(frame)?,
        228 => ipv4(frame)?,
        229 => ipv6(frame)?,
        0 | 108 => null(frame)?,
        other => return Err(Skip::LinkType(other)),
    };
    let (w1, w2) = net.transport.words();
    let header = Header::new(net.src, net.dst, net.protocol, w1, w2)
        .map_err(|_| Skip::Malformed("addresses (IPv4-mapped and native IPv6 mixed)"))?;
    Ok(Packet {
        index: meta.index,
        ts_ns: meta.ts_ns,
        header,
        wire_len: meta.wire_len.max(frame.len() as u32),
        cap_len: frame.len() as u32,
        transport: net.transport,
        fragment: net.fragment,
        interface: meta.interface,
    })
}

fn by_ethertype(t: u16, rest: &[u8]) -> Result<Network, Skip> {
    match t {
        0x0800 => ipv4(rest),
        0x86dd => ipv6(rest),
        t => Err(Skip::NotIp(ethertype_name(t))),
    }
}

fn ethernet(frame: &[u8]) -> Result<Network, Skip> {
    if frame.len() < 14 {
        return Err(Skip::Truncated("Ethernet header"));
    }
    let eth = EthernetPacket::new(frame).ok_or(Skip::Truncated("Ethernet header"))?;
    let mut t = eth.get_ethertype().0;
    let mut at = 14;
    // 802.1Q, 802.1ad (QinQ) and the pre-standard 0x9100 outer tag, nested any depth.
    let mut tags = 0;
    while matches!(t, 0x8100 | 0x88a8 | 0x9100 | 0x9200) {
        tags += 1;
        if tags > 8 {
            return Err(Skip::Malformed("VLAN tag stack (more than 8 tags)"));
        }
        t = be16(frame, at + 2).ok_or(Skip::Truncated("802.1Q tag"))?;
        at += 4;
    }
    by_ethertype(t, &frame[at..])
}

fn sll(frame: &[u8]) -> Result<Network, Skip> {
    let t = be16(frame, 14).ok_or(Skip::Truncated("Linux cooked (SLL) header"))?;
    if frame.len() < 16 {
        return Err(Skip::Truncated("Linux cooked (SLL) header"));
    }
    by_ethertype(t, &frame[16..])
}

fn sll2(frame: &[u8]) -> Result<Network, Skip> {
    if frame.len() < 20 {
        return Err(Skip::Truncated("Linux cooked (SLL2) header"));
    }
    let t = be16(frame, 0).ok_or(Skip::Truncated("Linux cooked (SLL2) header"))?;
    by_ethertype(t, &frame[20..])
}

fn raw(frame: &[u8]) -> Result<Network, Skip> {
    match frame.first().map(|b| b >> 4) {
        Some(4) => ipv4(frame),
        Some(6) => ipv6(frame),
        Some(_) => Err(Skip::Malformed("IP version (raw IP link type)")),
        None => Err(Skip::Truncated("raw IP packet (empty)")),
    }
}

fn null(frame: &[u8]) -> Result<Network, Skip> {
    if frame.len() < 4 {
        return Err(Skip::Truncated("loopback header"));
    }
    let le = u32::from_le_bytes([frame[0], frame[1], frame[2], frame[3]]);
    let be = u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
    // AF_INET is 2 everywhere; AF_INET6 is 24 (NetBSD, OpenBSD), 28 (FreeBSD), 30 (macOS),
    // 10 (Linux); the header is in the writer's byte order (DLT_NULL) or big-endian (LOOP).
    let fam = if le <= 0xffff { le } else { be };
    match fam {
        2 => ipv4(&frame[4..]),
        10 | 24 | 28 | 30 => ipv6(&frame[4..]),
        f => Err(Skip::NotIp(format!("loopback family {f}"))),
    }
}

fn ipv4(b: &[u8]) -> Result<Network, Skip> {
    if b.len() < 20 {
        return Err(Skip::Truncated("IPv4 header"));
    }
    if b[0] >> 4 != 4 {
        return Err(Skip::Malformed("IPv4 version field"));
    }
    let ihl = usize::from(b[0] & 0x0f) * 4;
    if ihl < 20 {
        return Err(Skip::Malformed("IPv4 header length (below 20)"));
    }
    if b.len() < ihl {
        return Err(Skip::Truncated("IPv4 header (options)"));
    }
    // Lengths checked above: the view covers at least a full header with its options.
    let ip = Ipv4Packet::new(b).ok_or(Skip::Truncated("IPv4 header"))?;
    let total = usize::from(ip.get_total_length());
    // TSO/GRO captures carry 0 or a length beyond what was captured: use the captured bytes.
    let end = if total >= ihl && total <= b.len() {
        total
    } else {
        b.len()
    };
    let flags = ip.get_flags();
    let offset = u32::from(ip.get_fragment_offset()) * 8;
    let more = flags & 0b001 != 0;
    let fragment = (offset != 0 || more).then_some(Fragment {
        id: u32::from(ip.get_identification()),
        offset,
        more,
    });
    let src = IpAddr::V4(ip.get_source());
    let dst = IpAddr::V4(ip.get_destination());
    let protocol = ip.get_next_level_protocol().0;
    upper(src, dst, protocol, fragment, &b[ihl..end])
}

fn ipv6(b: &[u8]) -> Result<Network, Skip> {
    if b.len() < 40 {
        return Err(Skip::Truncated("IPv6 header"));
    }
    if b[0] >> 4 != 6 {
        return Err(Skip::Malformed("IPv6 version field"));
    }
    let ip = Ipv6Packet::new(b).ok_or(Skip::Truncated("IPv6 header"))?;
    let src: Ipv6Addr = ip.get_source();
    let dst: Ipv6Addr = ip.get_destination();
    let plen = usize::from(ip.get_payload_length());
    // Jumbograms (0) and TSO captures: fall back to the captured bytes.
    let end = if plen != 0 && 40 + plen <= b.len() {
        40 + plen
    } else {
        b.len()
    };
    let mut next = ip.get_next_header().0;
    let mut rest = &b[40..end];
    let mut fragment = None;
    for _ in 0..16 {
        match next {
            0 | 43 | 60 | 135 | 139 | 140 => {
                if rest.len() < 8 {
                    return Err(Skip::Truncated("IPv6 extension header"));
                }
                let len = (usize::from(rest[1]) + 1) * 8;
                if rest.len() < len {
                    return Err(Skip::Truncated("IPv6 extension header"));
                }
                next = rest[0];
                rest = &rest[len..];
            }
            44 => {
                if rest.len() < 8 {
                    return Err(Skip::Truncated("IPv6 fragment header"));
                }
                let word = be16(rest, 2).ok_or(Skip::Truncated("IPv6 fragment header"))?;
                let id = be32(rest, 4).ok_or(Skip::Truncated("IPv6 fragment header"))?;
                fragment = Some(Fragment {
                    id,
                    offset: u32::from(word >> 3) * 8,
                    more: word & 1 != 0,
                });
                next = rest[0];
                rest = &rest[8..];
            }
            51 => {
                if rest.len() < 8 {
                    return Err(Skip::Truncated("IPv6 authentication header"));
                }
                let len = (usize::from(rest[1]) + 2) * 4;
                if rest.len() < len {
                    return Err(Skip::Truncated("IPv6 authentication header"));
                }
                next = rest[0];
                rest = &rest[len..];
            }
            _ => return upper(IpAddr::V6(src), IpAddr::V6(dst), next, fragment, rest),
        }
        if fragment.is_some_and(|f| !f.is_first()) {
            // The rest of the chain lives in the first fragment.
            return upper(IpAddr::V6(src), IpAddr::V6(dst), next, fragment, &[]);
        }
    }
    Err(Skip::Malformed(
        "IPv6 extension-header chain (more than 16 headers)",
    ))
}

/// Reads the upper layer. `b` is the IP payload as captured (possibly truncated).
fn upper(
    src: IpAddr,
    dst: IpAddr,
    protocol: u8,
    fragment: Option<Fragment>,
    b: &[u8],
) -> Result<Network, Skip> {
    let mut net = Network {
        src,
        dst,
        protocol,
        fragment,
        transport: Transport::None,
    };
    if fragment.is_some_and(|f| !f.is_first()) {
        return Ok(net);
    }
    match protocol {
        6 => {
            if b.len() < 20 {
                return Err(Skip::Truncated("TCP header"));
            }
            let tcp = TcpPacket::new(b).ok_or(Skip::Truncated("TCP header"))?;
            net.transport = Transport::Tcp {
                src_port: tcp.get_source(),
                dst_port: tcp.get_destination(),
                flags: tcp.get_flags(),
            };
        }
        17 => {
            if b.len() < 8 {
                return Err(Skip::Truncated("UDP header"));
            }
            let udp = UdpPacket::new(b).ok_or(Skip::Truncated("UDP header"))?;
            net.transport = Transport::Ports {
                src_port: udp.get_source(),
                dst_port: udp.get_destination(),
            };
        }
        33 | 132 | 136 => {
            let (Some(s), Some(d)) = (be16(b, 0), be16(b, 2)) else {
                return Err(Skip::Truncated(match protocol {
                    33 => "DCCP header",
                    132 => "SCTP header",
                    _ => "UDP-Lite header",
                }));
            };
            net.transport = Transport::Ports {
                src_port: s,
                dst_port: d,
            };
        }
        1 => {
            if b.len() < 4 {
                return Err(Skip::Truncated("ICMP header"));
            }
            let icmp = IcmpPacket::new(b).ok_or(Skip::Truncated("ICMP header"))?;
            net.transport = Transport::Icmp {
                ty: icmp.get_icmp_type().0,
                code: icmp.get_icmp_code().0,
            };
        }
        58 => {
            if b.len() < 4 {
                return Err(Skip::Truncated("ICMPv6 header"));
            }
            let icmp = Icmpv6Packet::new(b).ok_or(Skip::Truncated("ICMPv6 header"))?;
            net.transport = Transport::Icmp {
                ty: icmp.get_icmpv6_type().0,
                code: icmp.get_icmpv6_code().0,
            };
        }
        _ => {}
    }
    Ok(net)
}

/// Builds an IPv4 address from a `u32` (test and generator helper).
pub fn v4(x: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(x))
}

#[cfg(test)]
mod tests;
