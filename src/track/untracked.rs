//! AWS untracked flows (SEMANTICS 3.2): the accepting rules open to anywhere, per ENI and
//! direction, and what evaluation knows of each ENI.

use std::collections::HashMap;

use crate::classify::{Semantics, SemanticsError};
use crate::model::{
    Action, Direction, EniId, Family, GroupId, Header, Peer, PortRange, Protocol, Provider, Rule,
    State,
};

/// The accepting rules of one AWS ENI and direction with an any-address peer (`0.0.0.0/0`,
/// `::/0`): the rules that can make TCP/UDP flows untracked.
#[derive(Clone, Debug, Default)]
pub(crate) struct Open {
    /// (IPv6, protocol, source ports, destination ports).
    rules: Vec<(bool, Protocol, PortRange, PortRange)>,
}

/// Per (group, direction): its accepting rules with an any-address peer, as [`Open`] holds
/// them. One pass over the state's rules.
pub(super) type OpenByGroup<'s> =
    HashMap<(&'s GroupId, Direction), Vec<(bool, Protocol, PortRange, PortRange)>>;

fn open_by_group(state: &State) -> OpenByGroup<'_> {
    let mut by_group: OpenByGroup<'_> = HashMap::new();
    for r in &state.rules {
        if let Peer::Cidr { cidr } = &r.remote {
            if r.action == Action::Accept && cidr.is_any() {
                by_group.entry((&r.group, r.direction)).or_default().push((
                    cidr.family() == Family::V6,
                    r.protocol,
                    r.src_ports,
                    r.dst_ports,
                ));
            }
        }
    }
    by_group
}

impl Open {
    pub(crate) fn of(by_group: &OpenByGroup<'_>, groups: &[GroupId], direction: Direction) -> Open {
        let rules = groups
            .iter()
            .filter_map(|g| by_group.get(&(g, direction)))
            .flatten()
            .copied()
            .collect();
        Open { rules }
    }

    /// Whether some rule matches a packet with these ports: `Some(true)` when one that
    /// does covers all ports.
    fn matches(&self, v6: bool, protocol: u8, src: u16, dst: u16) -> Option<bool> {
        self.rules
            .iter()
            .filter(|&&(rule_v6, proto, sports, dports)| {
                rule_v6 == v6
                    && proto.matches(protocol)
                    && sports.contains(src)
                    && dports.contains(dst)
            })
            .map(|(_, _, sports, dports)| sports.is_any() && dports.is_any())
            .reduce(|a, b| a || b)
    }
}

impl Open {
    /// Whether some TCP/UDP packet that an open rule `(v6, protocol, sports, dports)` of
    /// this direction accepts has a reply that a rule of `other` (the other direction)
    /// accepts, one of the two covering all ports: the flows that rule lets through are
    /// untracked (the condition [`EniInfo::untracked`] checks packet by packet).
    fn untracks(rule: (bool, Protocol, PortRange, PortRange), other: &Open) -> bool {
        let (v6, protocol, sports, dports) = rule;
        other.rules.iter().any(|&(o6, oproto, osports, odports)| {
            o6 == v6
                && [6u8, 17]
                    .iter()
                    .any(|&p| protocol.matches(p) && oproto.matches(p))
                // The reply's source ports are the packet's destination ports.
                && osports.intersects(dports)
                && odports.intersects(sports)
                && ((sports.is_any() && dports.is_any()) || (osports.is_any() && odports.is_any()))
        })
    }
}

/// The ENIs where an accepting rule of `state` lets through untracked flows (SEMANTICS
/// 3.2): an AWS ENI carrying the rule's group, where the rule's peer is open to anywhere and
/// the other direction's rules of *all* the ENI's groups (AWS aggregates them) accept the
/// replies, one of the two on all ports. Revoking such a rule cuts those flows at once.
/// The same definition the evaluator applies to each packet.
pub fn untracked_enis<'s>(state: &'s State, rule: &Rule) -> Vec<&'s EniId> {
    let Peer::Cidr { cidr } = &rule.remote else {
        return Vec::new();
    };
    if rule.action != Action::Accept || !cidr.is_any() {
        return Vec::new();
    }
    let by_group = open_by_group(state);
    let entry = (
        cidr.family() == Family::V6,
        rule.protocol,
        rule.src_ports,
        rule.dst_ports,
    );
    let other = match rule.direction {
        Direction::Ingress => Direction::Egress,
        Direction::Egress => Direction::Ingress,
    };
    state
        .enis
        .iter()
        .enumerate()
        .filter(|(e, eni)| {
            eni.groups.contains(&rule.group)
                && Semantics::of(state, *e).is_ok_and(|s| s.provider == Provider::Aws)
                && Open::untracks(entry, &Open::of(&by_group, &eni.groups, other))
        })
        .map(|(_, eni)| &eni.id)
        .collect()
}

/// Per ENI of `state`, what evaluation needs to know: its provider and, on AWS, the rules
/// open to anywhere each way (the untracked condition). The tracker and the connection
/// what-if share it.
pub(crate) fn eni_infos(state: &State) -> Result<Vec<EniInfo>, SemanticsError> {
    let by_group = open_by_group(state);
    (0..state.enis.len())
        .map(|e| {
            let provider = Semantics::of(state, e)?.provider;
            let groups = &state.enis[e].groups;
            let open = (provider == Provider::Aws).then(|| {
                [
                    Open::of(&by_group, groups, Direction::Ingress),
                    Open::of(&by_group, groups, Direction::Egress),
                ]
            });
            Ok(EniInfo { provider, open })
        })
        .collect()
}

/// What the evaluation needs to know of each ENI.
#[derive(Clone, Debug)]
pub(crate) struct EniInfo {
    pub(crate) provider: Provider,
    /// AWS only: per direction (ingress, egress), the rules open to anywhere.
    pub(crate) open: Option<[Open; 2]>,
}

impl EniInfo {
    /// Whether a TCP/UDP flow opened by `h` at `direction` is untracked (SEMANTICS 3.2): a
    /// rule open to anywhere accepts it, and a rule of the other direction open to
    /// anywhere on all ports accepts its reply. `h` is the opener: an open rule on all
    /// ports for the opener, with only some ports open for the reply, leaves the flow
    /// tracked. The connection what-if, which knows each connection's opener, asks this.
    pub(crate) fn untracked(&self, direction: Direction, h: &Header) -> bool {
        self.open_both_ways(direction, h)
            .is_some_and(|(_, reply_all_ports)| reply_all_ports)
    }

    /// Whether `h` at `direction` may belong to an untracked flow, whichever of it and its
    /// reply opened the flow: both are accepted by rules open to anywhere, one of them on
    /// all ports. The packet evaluator asks this of the first packet it sees of a flow,
    /// which may be a reply (a capture that starts mid-stream).
    pub(crate) fn untracked_either_way(&self, direction: Direction, h: &Header) -> bool {
        self.open_both_ways(direction, h)
            .is_some_and(|(this_all_ports, reply_all_ports)| this_all_ports || reply_all_ports)
    }

    /// Whether rules open to anywhere accept `h` at `direction` and its reply, and for each
    /// whether one that does covers all ports.
    fn open_both_ways(&self, direction: Direction, h: &Header) -> Option<(bool, bool)> {
        let open = self.open.as_ref()?;
        if !h.ip_protocol().is_tcp_or_udp() {
            return None;
        }
        let v6 = h.src().is_ipv6();
        let (this, other) = match direction {
            Direction::Ingress => (&open[0], &open[1]),
            Direction::Egress => (&open[1], &open[0]),
        };
        Some((
            this.matches(v6, h.protocol(), h.src_port(), h.dst_port())?,
            other.matches(v6, h.protocol(), h.dst_port(), h.src_port())?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::Table;
    use crate::track::tests::pkt;
    use crate::track::{Config, Evaluator};

    /// The untracked condition aggregates every group on the ENI, and never holds for a
    /// group-reference rule (whatever its protocol) or a rule open to part of the space.
    #[test]
    fn untracked_enis_aggregate_groups_and_ignore_references() {
        let state: State = serde_json::from_value(serde_json::json!({
            "groups": [{"id": "sg-a", "provider": "aws"}, {"id": "sg-b", "provider": "aws"}],
            "rules": [
                {"id": "a-ssh", "group": "sg-a", "direction": "ingress", "action": "accept",
                 "protocol": 6, "dst_ports": "22", "remote": {"cidr": "0.0.0.0/0"}},
                {"id": "a-all-from-b", "group": "sg-a", "direction": "ingress", "action": "accept",
                 "protocol": -1, "remote": {"group_id": "sg-b"}},
                {"id": "a-web-office", "group": "sg-a", "direction": "ingress", "action": "accept",
                 "protocol": 6, "dst_ports": "443", "remote": {"cidr": "198.51.100.0/24"}},
                {"id": "b-out", "group": "sg-b", "direction": "egress", "action": "accept",
                 "protocol": -1, "remote": {"cidr": "0.0.0.0/0"}}
            ],
            "enis": [
                {"id": "eni-ab", "ips": ["10.0.0.1"], "groups": ["sg-a", "sg-b"]},
                {"id": "eni-a", "ips": ["10.0.0.2"], "groups": ["sg-a"]}
            ]
        }))
        .unwrap();
        let ids = |rule: &str| -> Vec<String> {
            let r = state.rules.iter().find(|r| r.id.as_str() == rule).unwrap();
            untracked_enis(&state, r)
                .into_iter()
                .map(|e| e.to_string())
                .collect()
        };
        // eni-ab's egress (from sg-b) answers SSH from anywhere on all ports; eni-a has no
        // egress rule at all.
        assert_eq!(ids("a-ssh"), vec!["eni-ab"]);
        assert!(ids("a-all-from-b").is_empty());
        assert!(ids("a-web-office").is_empty());
        // The egress rule is the other half of the same condition.
        assert_eq!(ids("b-out"), vec!["eni-ab"]);
    }

    /// An ENI with SSH and DNS open to anywhere, ping from anywhere, SSH from a /8 on a
    /// second address family, and all egress to 0.0.0.0/0 (AWS's default).
    fn open_state(provider: &str) -> State {
        serde_json::from_value(serde_json::json!({
            "groups": [{"id": "sg-web", "provider": provider}],
            "rules": [
                {"id": "r-ssh", "group": "sg-web", "direction": "ingress", "action": "accept",
                 "protocol": 6, "dst_ports": "22", "remote": {"cidr": "0.0.0.0/0"}},
                {"id": "r-dns", "group": "sg-web", "direction": "ingress", "action": "accept",
                 "protocol": 17, "dst_ports": "53", "remote": {"cidr": "0.0.0.0/0"}},
                {"id": "r-web", "group": "sg-web", "direction": "ingress", "action": "accept",
                 "protocol": 6, "dst_ports": "443", "remote": {"cidr": "10.0.0.0/8"}},
                {"id": "r-ping", "group": "sg-web", "direction": "ingress", "action": "accept",
                 "protocol": 1, "remote": {"cidr": "0.0.0.0/0"}},
                {"id": "r-ssh6", "group": "sg-web", "direction": "ingress", "action": "accept",
                 "protocol": 6, "dst_ports": "22", "remote": {"cidr": "::/0"}},
                {"id": "r-out", "group": "sg-web", "direction": "egress", "action": "accept",
                 "protocol": "all", "remote": {"cidr": "0.0.0.0/0"}},
                {"id": "r-out6", "group": "sg-web", "direction": "egress", "action": "accept",
                 "protocol": 6, "dst_ports": "443", "remote": {"cidr": "::/0"}}
            ],
            "enis": [{"id": "eni-a", "ips": ["10.0.0.1", "2001:db8::1"], "groups": ["sg-web"]}]
        }))
        .unwrap()
    }

    #[test]
    fn aws_flows_open_to_anywhere_both_ways_are_untracked() {
        let s = open_state("aws");
        let table = Table::new(&s).unwrap();
        let mut ev = Evaluator::new(&table, &s, Config::default()).unwrap();
        let out = ev.eval(&[
            // SSH and DNS from anywhere while all egress is open: untracked, the replies
            // are judged by the egress rule.
            pkt(0, "tcp 203.0.113.9:40000 -> 10.0.0.1:22", 0),
            pkt(1, "tcp 10.0.0.1:22 -> 203.0.113.9:40000", 1),
            pkt(2, "udp 203.0.113.9:5353 -> 10.0.0.1:53", 2),
            pkt(3, "udp 10.0.0.1:53 -> 203.0.113.9:5353", 3),
            // 443 from a /8 only: tracked.
            pkt(4, "tcp 10.9.9.9:40000 -> 10.0.0.1:443", 4),
            pkt(5, "tcp 10.0.0.1:443 -> 10.9.9.9:40000", 5),
            // Outbound: the ingress side is not open on all ports, so tracked.
            pkt(6, "tcp 10.0.0.1:50000 -> 198.51.100.1:443", 6),
            pkt(7, "tcp 198.51.100.1:443 -> 10.0.0.1:50000", 7),
            // ICMP is always tracked.
            pkt(8, "icmp 203.0.113.9 -> 10.0.0.1 type 8 code 0", 8),
            pkt(9, "icmp 10.0.0.1 -> 203.0.113.9 type 0 code 0", 9),
            // IPv6 SSH: egress to ::/0 covers 443 only, so tracked.
            pkt(10, "tcp [2001:db8::9]:40000 -> [2001:db8::1]:22", 10),
            pkt(11, "tcp [2001:db8::1]:22 -> [2001:db8::9]:40000", 11),
            // An untracked flow seen mid-stream, reply first: still untracked.
            pkt(12, "tcp 10.0.0.1:22 -> 203.0.113.10:41000", 12),
            pkt(13, "tcp 203.0.113.10:41000 -> 10.0.0.1:22", 13),
        ]);
        let r: Vec<(u64, &str)> = out.iter().map(|o| (o.index, o.reason())).collect();
        assert_eq!(
            r,
            vec![
                (0, "rule"),
                (1, "rule"),
                (2, "rule"),
                (3, "rule"),
                (4, "rule"),
                (5, "established"),
                (6, "rule"),
                (7, "established"),
                (8, "rule"),
                (9, "established"),
                (10, "rule"),
                (11, "established"),
                (12, "rule"),
                (13, "rule"),
            ]
        );
        assert_eq!(ev.flows(), 4);
        // Alibaba tracks every session.
        let s = open_state("aliyun");
        let table = Table::new(&s).unwrap();
        let mut ev = Evaluator::new(&table, &s, Config::default()).unwrap();
        let out = ev.eval(&[
            pkt(0, "tcp 203.0.113.9:40000 -> 10.0.0.1:22", 0),
            pkt(1, "tcp 10.0.0.1:22 -> 203.0.113.9:40000", 1),
        ]);
        assert_eq!(out[1].reason(), "established");
    }
}
