//! Unit tests of the frame decoder.

use super::*;

fn eth(ethertype: u16, body: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; 12];
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(body);
    f
}

fn ipv4_tcp(sport: u16, dport: u16) -> Vec<u8> {
    let mut ip = vec![
        0x45, 0, 0, 40, 0, 1, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ];
    let mut tcp = vec![0u8; 20];
    tcp[0..2].copy_from_slice(&sport.to_be_bytes());
    tcp[2..4].copy_from_slice(&dport.to_be_bytes());
    tcp[12] = 0x50;
    tcp[13] = 0x12;
    ip.extend_from_slice(&tcp);
    ip
}

#[test]
fn decodes_ethernet_vlan_qinq_and_tcp_flags() {
    let ip = ipv4_tcp(40000, 22);
    let plain = decode(1, &eth(0x0800, &ip), Meta::default()).unwrap();
    assert_eq!(
        plain.header.to_string(),
        "tcp 10.0.0.1:40000 -> 10.0.0.2:22"
    );
    assert_eq!(plain.tcp_flags(), Some(0x12));
    let mut tagged = vec![0, 5, 0x81, 0x00, 0, 6, 0x08, 0x00];
    tagged.extend_from_slice(&ip);
    let qinq = decode(1, &eth(0x88a8, &tagged), Meta::default()).unwrap();
    assert_eq!(qinq.header, plain.header);
}

#[test]
fn every_truncation_is_a_named_skip_never_a_panic() {
    let frame = eth(0x0800, &ipv4_tcp(1, 2));
    for n in 0..frame.len() {
        for lt in [0, 1, 12, 101, 108, 113, 228, 229, 276] {
            let _ = decode(lt, &frame[..n], Meta::default());
        }
    }
    assert_eq!(
        decode(1, &frame[..14 + 19], Meta::default())
            .unwrap_err()
            .to_string(),
        "truncated IPv4 header"
    );
    assert_eq!(
        decode(1, &frame[..14 + 30], Meta::default())
            .unwrap_err()
            .to_string(),
        "truncated TCP header"
    );
    assert_eq!(
        decode(105, &frame, Meta::default())
            .unwrap_err()
            .to_string(),
        "unsupported link type 105 (IEEE 802.11)"
    );
    assert_eq!(
        decode(1, &eth(0x0806, &[0; 28]), Meta::default())
            .unwrap_err()
            .to_string(),
        "not IP (ARP)"
    );
}

#[test]
fn tso_total_length_zero_falls_back_to_captured_bytes() {
    let mut ip = ipv4_tcp(5, 6);
    ip[2] = 0;
    ip[3] = 0;
    let p = decode(228, &ip, Meta::default()).unwrap();
    assert_eq!(p.ports(), Some((5, 6)));
}

#[test]
fn ipv4_non_first_fragment_has_no_ports() {
    let mut ip = ipv4_tcp(5, 6);
    ip[6] = 0x00;
    ip[7] = 0x10; // offset 16 * 8 = 128 bytes
    let p = decode(228, &ip, Meta::default()).unwrap();
    assert_eq!(p.ports(), None);
    assert_eq!((p.header.src_port(), p.header.dst_port()), (0, 0));
    assert_eq!(
        p.fragment,
        Some(Fragment {
            id: 1,
            offset: 128,
            more: false
        })
    );
}

#[test]
fn ipv6_walks_extension_headers_and_normalizes_mapped() {
    let mut ip = vec![0x60, 0, 0, 0, 0, 0, 0, 64];
    let src: Ipv6Addr = "::ffff:10.0.0.1".parse().unwrap();
    let dst: Ipv6Addr = "::ffff:10.0.0.2".parse().unwrap();
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    // hop-by-hop (8 bytes) -> fragment (offset 0, M) -> ICMPv6 echo request
    ip.extend_from_slice(&[44, 0, 1, 4, 0, 0, 0, 0]);
    ip.extend_from_slice(&[58, 0, 0, 1, 0, 0, 0, 9]);
    ip.extend_from_slice(&[128, 0, 0, 0, 0, 0, 0, 0]);
    let plen = (ip.len() - 40) as u16;
    ip[4..6].copy_from_slice(&plen.to_be_bytes());
    ip[6] = 0;
    let p = decode(229, &ip, Meta::default()).unwrap();
    assert_eq!(p.header.protocol(), 58);
    assert_eq!(p.transport.icmp(), Some((128, 0)));
    assert_eq!(p.header.src(), v4(0x0a00_0001));
    assert_eq!(p.fragment.map(|f| (f.id, f.more)), Some((9, true)));
}

/// SEMANTICS 3.1: both ends IPv4-mapped are judged as IPv4 (above); a mapped address
/// with a native IPv6 one is malformed, not judged.
#[test]
fn ipv6_mixing_mapped_and_native_addresses_is_malformed() {
    let mut ip = vec![0x60, 0, 0, 0, 0, 8, 17, 64];
    let src: Ipv6Addr = "::ffff:10.0.0.1".parse().unwrap();
    let dst: Ipv6Addr = "2001:db8::2".parse().unwrap();
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    ip.extend_from_slice(&[0, 53, 0, 53, 0, 8, 0, 0]);
    assert_eq!(
        decode(229, &ip, Meta::default()),
        Err(Skip::Malformed(
            "addresses (IPv4-mapped and native IPv6 mixed)"
        ))
    );
}

#[test]
fn null_loopback_in_both_byte_orders() {
    let ip = ipv4_tcp(1, 2);
    for hdr in [[2u8, 0, 0, 0], [0, 0, 0, 2]] {
        let mut f = hdr.to_vec();
        f.extend_from_slice(&ip);
        assert!(decode(0, &f, Meta::default()).is_ok());
        assert!(decode(108, &f, Meta::default()).is_ok());
    }
}

/// `decode`'s result, checking that the one-pass path agrees with the layered one
/// wherever it decodes.
fn both_paths(frame: &[u8]) -> Result<Packet, Skip> {
    let meta = Meta {
        index: 7,
        ts_ns: 11,
        wire_len: 40,
        interface: 3,
    };
    let any = decode_any(1, frame, meta);
    if let Some(fast) = ethernet_ipv4_fast(frame, meta) {
        assert_eq!(Ok(&fast), any.as_ref(), "{frame:?}");
    }
    assert_eq!(decode(1, frame, meta), any);
    any
}

/// A synthetic frame decodes to the transport [`Transport::of`] reads off its header.
#[test]
fn synthetic_frames_decode_to_the_transport_of_their_header() {
    for (text, flags) in [
        ("tcp 10.0.0.1:40000 -> 10.0.0.2:22", 0x02),
        ("udp [2001:db8::1]:53 -> [2001:db8::2]:5353", 0),
        ("icmp 10.0.0.1 -> 10.0.0.2 type 8 code 0", 0),
        ("icmpv6 2001:db8::1 -> 2001:db8::2 type 128 code 0", 0),
        ("gre 10.0.0.1 -> 10.0.0.2", 0),
    ] {
        let h: Header = text.parse().unwrap();
        let p = decode(
            1,
            &crate::packet::synth::frame(&h, flags, 7),
            Meta::default(),
        )
        .unwrap();
        assert_eq!(p.header, h, "{text}");
        assert_eq!(p.transport, Transport::of(&h, flags), "{text}");
        assert_eq!(p.transport.words(), (h.src_port(), h.dst_port()), "{text}");
    }
}

#[test]
fn the_one_pass_path_equals_the_layered_one() {
    let mut udp = ipv4_tcp(53, 9999);
    udp[9] = 17;
    let mut options = ipv4_tcp(1, 2);
    options[0] = 0x46;
    options.splice(20..20, [1, 1, 1, 0]);
    options[3] = 44;
    let mut fast = 0;
    for ip in [ipv4_tcp(40000, 22), udp, options] {
        let frame = eth(0x0800, &ip);
        for n in 0..=frame.len() {
            fast += usize::from(ethernet_ipv4_fast(&frame[..n], Meta::default()).is_some());
            let _ = both_paths(&frame[..n]);
            for at in 0..n {
                for value in [0, 1, 0x20, 0x45, 0xff] {
                    let mut f = frame[..n].to_vec();
                    f[at] = value;
                    let _ = both_paths(&f);
                }
            }
        }
    }
    // At least each frame whole.
    assert!(fast >= 3, "the one-pass path decoded {fast} frames");
    assert_eq!(
        both_paths(&eth(0x0800, &ipv4_tcp(40000, 22)))
            .unwrap()
            .header
            .to_string(),
        "tcp 10.0.0.1:40000 -> 10.0.0.2:22"
    );
}

proptest::proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
        lt in proptest::sample::select(vec![0, 1, 12, 14, 101, 108, 113, 228, 229, 276, 105]),
    ) {
        let _ = decode(lt, &bytes, Meta::default());
    }

    #[test]
    fn mutated_valid_frames_never_panic(
        at in 0usize..54,
        value in proptest::num::u8::ANY,
        cut in 0usize..60,
    ) {
        let mut f = eth(0x0800, &ipv4_tcp(1000, 22));
        if at < f.len() {
            f[at] = value;
        }
        f.truncate(cut.max(1));
        let _ = both_paths(&f);
        let mut v6 = vec![0x60, 0, 0, 0, 0, 8, 0, 64];
        v6.extend_from_slice(&[0u8; 32]);
        v6.extend_from_slice(&[6, 0, 1, 4, 0, 0, 0, 0, 0, 0, 0, 0]);
        if at < v6.len() {
            v6[at] = value;
        }
        let _ = decode(229, &v6, Meta::default());
    }
}
