//! The match key of a stored rule or a request entry (after defaults and normalization),
//! and the parts in which two keys differ.

use super::super::values::has_ports;
use crate::model::{Action, Cidr, Peer, PortRange, Priority, Protocol, Rule, SecurityGroup};

pub(super) use super::super::values::Nic;

/// Destination ports: a range, or a port list by ID.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) enum Ports {
    /// A range (any for protocols without ports).
    Range(PortRange),
    /// A port list.
    List(String),
}

/// What identifies a rule, after defaults and normalization.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Key {
    /// The protocol.
    pub protocol: Protocol,
    /// Destination ports.
    pub ports: Ports,
    /// Source ports (any unless a quintuple rule).
    pub src_ports: PortRange,
    /// The remote peer (a group's owner is kept in `owners`).
    pub peer: Peer,
    /// Owner accounts named for a group peer (request: any of them must agree).
    pub owners: Vec<String>,
    /// The local side; `None` is any.
    pub local: Option<Cidr>,
    /// accept / drop.
    pub policy: Action,
    /// NIC type.
    pub nic: Nic,
    /// The priority (requests: only when given).
    pub priority: Option<Priority>,
}

/// A part of the key in which a rule differs from a request entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Part {
    /// IpProtocol.
    Protocol,
    /// PortRange / PortRangeListId.
    Ports,
    /// SourcePortRange.
    SourcePorts,
    /// The peer.
    Peer,
    /// The group peer's owner.
    Owner,
    /// The local (quintuple) side.
    Local,
    /// Policy.
    Policy,
    /// NicType.
    Nic,
    /// Priority.
    Priority,
}

/// Where `rule` differs from the request entry `req` (empty: it matches).
pub(super) fn differences(req: &Key, rule: &Key) -> Vec<Part> {
    let mut out = Vec::new();
    if req.protocol != rule.protocol {
        out.push(Part::Protocol);
    }
    if req.ports != rule.ports {
        out.push(Part::Ports);
    }
    if req.src_ports != rule.src_ports {
        out.push(Part::SourcePorts);
    }
    if req.peer != rule.peer {
        out.push(Part::Peer);
    } else if !req.owners.is_empty()
        && !rule.owners.is_empty()
        && !req.owners.iter().any(|o| rule.owners.contains(o))
    {
        out.push(Part::Owner);
    }
    if req.local != rule.local {
        out.push(Part::Local);
    }
    if req.policy != rule.policy {
        out.push(Part::Policy);
    }
    if req.nic != rule.nic {
        out.push(Part::Nic);
    }
    if let (Some(a), Some(b)) = (req.priority, rule.priority) {
        if a != b {
            out.push(Part::Priority);
        }
    }
    out
}

/// The key of a stored rule, or why the rule is not one Alibaba could hold.
pub(super) fn rule_key(rule: &Rule, group: &SecurityGroup) -> Result<Key, String> {
    let known = [
        Protocol::TCP,
        Protocol::UDP,
        Protocol::ICMP,
        Protocol::ICMPV6,
        Protocol::GRE,
        Protocol::Any,
    ];
    if !known.contains(&rule.protocol) {
        return Err(format!(
            "rule {} has protocol {}, which Alibaba rules cannot have",
            rule.id, rule.protocol
        ));
    }
    if !(1..=100).contains(&rule.priority.0) {
        return Err(format!(
            "rule {} has priority {}, outside Alibaba's 1..100",
            rule.id, rule.priority.0
        ));
    }
    let ported = has_ports(rule.protocol);
    let list = rule.attrs.get("PortRangeListId").filter(|l| !l.is_empty());
    let ports = match list {
        Some(l) if rule.dst_ports.is_any() || !ported => Ports::List(l.clone()),
        _ => Ports::Range(if ported {
            rule.dst_ports
        } else {
            PortRange::ANY
        }),
    };
    let (peer, owners) = match &rule.remote {
        Peer::Group { group_id, owner } => (
            Peer::Group {
                group_id: group_id.clone(),
                owner: None,
            },
            owner.iter().cloned().collect(),
        ),
        p => (p.clone(), Vec::new()),
    };
    let nic = Nic::of_rule(group, rule);
    Ok(Key {
        protocol: rule.protocol,
        ports,
        src_ports: if ported {
            rule.src_ports
        } else {
            PortRange::ANY
        },
        peer,
        owners,
        local: rule.local.filter(|c| !c.is_any()),
        policy: rule.action,
        nic,
        priority: Some(rule.priority),
    })
}
