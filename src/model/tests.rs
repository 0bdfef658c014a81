//! Unit tests of the model's values.

use super::*;

fn rule(id: &str) -> Rule {
    Rule {
        id: id.into(),
        group: "sg-a".into(),
        direction: Direction::Ingress,
        action: Action::Accept,
        priority: Priority(1),
        protocol: Protocol::TCP,
        src_ports: PortRange::ANY,
        dst_ports: PortRange::single(22),
        remote: Peer::cidr("10.0.0.0/8".parse().unwrap()),
        local: None,
        description: None,
        attrs: BTreeMap::new(),
    }
}

fn group(id: &str) -> SecurityGroup {
    SecurityGroup {
        id: id.into(),
        provider: Provider::Aliyun,
        name: None,
        description: None,
        kind: GroupKind::Basic,
        inner_access: Action::Accept,
        vpc: None,
        owner: None,
        attrs: BTreeMap::new(),
    }
}

#[test]
fn rule_json_round_trips_and_reads_compact_forms() {
    let r = rule("r1");
    let text = serde_json::to_string(&r).unwrap();
    assert!(text.contains(r#""remote":{"cidr":"10.0.0.0/8"}"#), "{text}");
    assert_eq!(serde_json::from_str::<Rule>(&text).unwrap(), r);
    let compact: Rule = serde_json::from_str(
        r#"{"id":"x","group":"g","direction":"egress","action":"drop","protocol":-1,
                "remote":{"group_id":"sg-b"}}"#,
    )
    .unwrap();
    assert_eq!(compact.protocol, Protocol::Any);
    assert_eq!(compact.dst_ports, PortRange::ANY);
    assert!(matches!(compact.remote, Peer::Group { owner: None, .. }));
}

#[test]
fn rule_validation_catches_contradictions() {
    let mut r = rule("r2");
    r.local = Some("2001:db8::/32".parse().unwrap());
    assert!(r.validate().is_err());
    r.local = Some("192.168.0.0/16".parse().unwrap());
    assert!(r.validate().is_ok());
}

#[test]
fn icmp_selectors_round_trip_through_port_ranges() {
    let sel = IcmpSel {
        ty: Some(8),
        code: None,
    };
    let (t, c) = sel.ranges();
    assert_eq!((t, c), (PortRange::single(8), PortRange::ANY));
    assert_eq!(IcmpSel::from_ranges(t, c), Some(sel));
    assert_eq!(IcmpSel::from_ranges(PortRange::new(1, 2).unwrap(), c), None);
}

#[test]
fn state_validation_finds_duplicates_and_orphans() {
    let mut s = State {
        groups: vec![group("sg-a")],
        rules: vec![rule("r1"), rule("r2")],
        ..State::default()
    };
    assert!(s.validate().is_ok());
    s.rules.push(rule("r1"));
    assert!(matches!(
        s.validate(),
        Err(StateError::DuplicateId { kind: "rule", .. })
    ));
    s.rules.pop();
    s.rules[1].group = "sg-zz".into();
    assert!(matches!(s.validate(), Err(StateError::UnknownGroup { .. })));
}

#[test]
fn merge_never_counts_a_rule_twice() {
    let mut a = State {
        groups: vec![group("sg-a")],
        rules: vec![rule("r1")],
        ..State::default()
    };
    let b = State {
        groups: vec![group("sg-a")],
        rules: vec![rule("r1"), rule("r2")],
        ..State::default()
    };
    a.merge(b);
    assert_eq!(a.groups.len(), 1);
    assert_eq!(a.rules.len(), 2);
}
