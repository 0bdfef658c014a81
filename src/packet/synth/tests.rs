//! Unit tests of the synthetic traffic generators.

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
        assert!("10.0.0.0/8".parse::<Cidr>().unwrap().contains(h.src()));
    }
}

/// Issue 16 item 8: every synthetic header can exist on a wire, checked here without
/// the generator's own helper.
#[test]
fn synthetic_headers_can_exist_on_a_wire() {
    let s: State = serde_json::from_value(serde_json::json!({
        "groups": [{"id": "sg-a", "provider": "aws"}],
        "rules": [
            {"id": "all-v4", "group": "sg-a", "direction": "ingress", "action": "accept",
             "protocol": -1, "remote": {"cidr": "0.0.0.0/0"}},
            {"id": "all-v6", "group": "sg-a", "direction": "ingress", "action": "accept",
             "protocol": -1, "remote": {"cidr": "::/0"}},
            {"id": "icmp-any-v6", "group": "sg-a", "direction": "ingress", "action": "accept",
             "protocol": 1, "remote": {"cidr": "::/0"}},
            {"id": "gre", "group": "sg-a", "direction": "egress", "action": "accept",
             "protocol": 47, "remote": {"cidr": "0.0.0.0/0"}},
            {"id": "ping", "group": "sg-a", "direction": "ingress", "action": "accept",
             "protocol": 1, "src_ports": "8", "remote": {"cidr": "1.0.0.0/8"}}
        ],
        "enis": [{"id": "eni-a", "ips": ["10.0.0.1", "2001:db8::1"], "groups": ["sg-a"]}]
    }))
    .unwrap();
    let all = aimed(&s, 20_000, 3, 0.3);
    assert!(all.len() > 15_000, "{}", all.len());
    let mut families = [false; 2];
    for (aim, h) in &all {
        let v6 = h.src().is_ipv6();
        families[usize::from(v6)] = true;
        assert_ne!(h.src(), h.dst(), "{aim:?} {h}");
        match h.protocol() {
            1 => assert!(
                !v6 && h.src_port() <= 255 && h.dst_port() <= 255,
                "{aim:?} {h}"
            ),
            58 => assert!(
                v6 && h.src_port() <= 255 && h.dst_port() <= 255,
                "{aim:?} {h}"
            ),
            6 | 17 => {}
            _ => assert_eq!((h.src_port(), h.dst_port()), (0, 0), "{aim:?} {h}"),
        }
        if let IpAddr::V4(a) = h.src() {
            let first = a.octets()[0];
            assert!(first != 0 && first < 240, "{aim:?} {h}");
        }
    }
    assert_eq!(families, [true, true]);
}

fn aws_state() -> State {
    serde_json::from_value(serde_json::json!({
        "groups": [{"id": "sg-web", "provider": "aws"}],
        "rules": [
            {"id": "r-web", "group": "sg-web", "direction": "ingress", "action": "accept",
             "protocol": 6, "dst_ports": "80-443", "remote": {"cidr": "198.51.100.0/24"}},
            {"id": "r-v6", "group": "sg-web", "direction": "egress", "action": "accept",
             "protocol": 17, "dst_ports": "53", "remote": {"cidr": "2001:db8::/64"}}
        ],
        "enis": [{"id": "eni-a", "ips": ["10.0.0.1", "2001:db8:1::1"], "groups": ["sg-web"]}]
    }))
    .unwrap()
}

#[test]
fn aimed_traffic_hits_edges_and_uses_eni_ips() {
    let s = aws_state();
    let a = aimed(&s, 400, 1, 0.1);
    assert_eq!(a, aimed(&s, 400, 1, 0.1));
    assert_eq!(a.len(), 400);
    let rule = &s.rules[0];
    let mut seen = std::collections::HashSet::new();
    for (aim, h) in &a {
        seen.insert(*aim);
        if *aim == Aim::PortEdgeOut && h.protocol() == 6 && h.family() == Family::V4 {
            assert!(h.dst_port() == 79 || h.dst_port() == 444, "{h}");
            assert!(!rule.matches_fields(h));
        }
        if *aim == Aim::AddrEdgeOut && h.protocol() == 6 {
            let s = h.src().to_string();
            assert!(s == "198.51.101.0" || s == "198.51.99.255", "{h}");
        }
        if *aim == Aim::Inside && h.protocol() == 6 {
            assert_eq!(h.dst().to_string(), "10.0.0.1");
        }
    }
    assert_eq!(seen.len(), 7, "{seen:?}");
    let answered = a.iter().enumerate().filter(|(i, (aim, h))| {
        *aim == Aim::Reply
            && a[..*i]
                .iter()
                .any(|(x, e)| *x == Aim::Inside && e.reversed() == *h)
    });
    assert!(answered.count() > 10, "replies answer earlier packets");
}

#[test]
fn written_pcap_decodes_back() {
    let s = aws_state();
    let headers: Vec<Header> = aimed(&s, 200, 3, 0.3).into_iter().map(|x| x.1).collect();
    let bytes = pcap_bytes(&headers, 1_700_000_000_000_000_000);
    let cap = crate::packet::Capture::new(&bytes[..]).unwrap();
    let back: Vec<Header> = cap.map(|p| p.unwrap().header).collect();
    assert_eq!(back, headers);
}

#[test]
fn local_addresses_indexed_once_are_those_a_scan_of_every_eni_finds() {
    let state: State = serde_json::from_value(serde_json::json!({
        "groups": [{"id": "sg-a", "provider": "aws"}, {"id": "sg-b", "provider": "aws"}],
        "rules": [
            {"id": "r-a", "group": "sg-a", "direction": "ingress", "action": "accept",
             "protocol": 6, "dst_ports": "22", "remote": {"cidr": "0.0.0.0/0"}},
            {"id": "r-b", "group": "sg-b", "direction": "ingress", "action": "accept",
             "protocol": 6, "dst_ports": "22", "remote": {"cidr": "::/0"}},
            {"id": "r-c", "group": "sg-c", "direction": "ingress", "action": "accept",
             "protocol": 6, "dst_ports": "22", "remote": {"cidr": "0.0.0.0/0"}}
        ],
        "enis": [
            {"id": "eni-1", "ips": ["10.0.0.1", "2001:db8::1"], "groups": ["sg-a", "sg-a"]},
            {"id": "eni-2", "ips": ["10.0.0.2"], "groups": ["sg-b", "sg-a"]},
            {"id": "eni-3", "ips": ["2001:db8::3", "10.0.0.3"], "groups": ["sg-b"]}
        ]
    }))
    .unwrap();
    let locals = Locals::new(&state);
    for rule in &state.rules {
        for family in [Family::V4, Family::V6] {
            let scan: Vec<IpAddr> = state
                .enis
                .iter()
                .filter(|e| e.groups.contains(&rule.group))
                .flat_map(|e| e.ips.iter().copied())
                .filter(|a| Family::of(*a) == family)
                .collect();
            assert_eq!(
                locals.of(rule, family),
                scan.as_slice(),
                "{} {family:?}",
                rule.id
            );
        }
    }
    // An ENI listing its group twice is one of the group's ENIs once.
    assert_eq!(locals.of(&state.rules[0], Family::V4).len(), 2);
    // A group no ENI carries has no local addresses.
    assert!(locals.of(&state.rules[2], Family::V4).is_empty());
    assert_eq!(locals.all[0].len(), 3);
    assert_eq!(locals.all[1].len(), 2);
}
