//! Step 6 of §2.1.3: one request entry (`Permissions.N`, or the flat parameters) read and
//! checked field by field, one function a check, in the order of the list.

use serde_json::Value;

use super::key::{Key, Nic, Ports};
use super::PREFIX_LISTS_ENABLED_KEY;
use crate::model::{
    Action, Cidr, Direction, Family, GroupKind, Peer, PortRange, Priority, Protocol, SecurityGroup,
    State, ValueError,
};
use crate::provider::aliyun::errors;
use crate::provider::aliyun::request::{Field, Spec};
use crate::provider::aliyun::values::{
    has_ports, port_pair, port_range, protocol as parse_protocol,
};
use crate::provider::ApiError;

/// A checked request entry.
#[derive(Clone, Debug)]
pub(super) struct Entry {
    pub(super) key: Key,
    /// Where the entry came from (`Permissions.1`, or `the request` for flat parameters).
    pub(super) place: String,
    pub(super) policy_given: bool,
    pub(super) nic_given: bool,
    pub(super) description: Option<String>,
}

/// What the request concerns.
pub(super) struct Cx<'a> {
    pub(super) state: &'a State,
    pub(super) group: &'a SecurityGroup,
    pub(super) direction: Direction,
    pub(super) legacy: bool,
}

impl Cx<'_> {
    fn classic(&self) -> bool {
        self.group.vpc.is_none()
    }

    fn enterprise(&self) -> bool {
        self.group.kind == GroupKind::Enterprise
    }

    fn ingress(&self) -> bool {
        self.direction == Direction::Ingress
    }
}

fn place(spec: &Spec) -> String {
    if spec.prefix.is_empty() {
        "the request".to_string()
    } else {
        spec.prefix.trim_end_matches('.').to_string()
    }
}

/// Which way a CIDR field failed.
enum CidrFault {
    Syntax,
    TooLong,
    Family,
}

fn cidr_text(text: &str, want: Family) -> Result<(Cidr, bool), CidrFault> {
    match Cidr::parse_lenient(text) {
        Ok((c, host_bits)) if c.family() == want => Ok((c, host_bits)),
        Ok(_) => Err(CidrFault::Family),
        Err(ValueError::PrefixTooLong { .. }) => Err(CidrFault::TooLong),
        Err(_) => Err(CidrFault::Syntax),
    }
}

/// Reads an IPv4 field with the error codes of its direction and role (module docs of
/// [`errors`]).
fn v4_field(
    cx: &Cx,
    spec: &Spec,
    field: Field,
    notes: &mut Vec<String>,
) -> Result<Option<Cidr>, ApiError> {
    let Some(text) = spec.get(field) else {
        return Ok(None);
    };
    let param = spec.param(field);
    let source = field == Field::SourceCidrIp;
    match cidr_text(text, Family::V4) {
        Ok((c, host_bits)) => {
            if host_bits {
                notes.push(format!("{param} {text} has host bits set; matched as {c}"));
            }
            Ok(Some(c))
        }
        Err(fault) => Err(match (cx.direction, source, fault) {
            (Direction::Egress, true, _) => errors::PARAM_SOURCE_CIDR.with(&param),
            (_, true, CidrFault::Family) => errors::PARAM_SOURCE_CIDR.with(&param),
            (_, true, _) => errors::SOURCE_CIDR_MALFORMED.plain(),
            (_, false, CidrFault::Family) => errors::PARAM_DEST_CIDR.with(&param),
            (Direction::Egress, false, CidrFault::TooLong) => errors::DEST_CIDR_S_MALFORMED.plain(),
            (_, false, _) => errors::DEST_CIDR_MALFORMED.plain(),
        }),
    }
}

fn v6_field(
    cx: &Cx,
    spec: &Spec,
    field: Field,
    notes: &mut Vec<String>,
) -> Result<Option<Cidr>, ApiError> {
    let Some(text) = spec.get(field) else {
        return Ok(None);
    };
    let param = spec.param(field);
    let own = if field == Field::Ipv6SourceCidrIp {
        errors::IPV6_SOURCE
    } else {
        errors::IPV6_DEST
    };
    if cx.classic() {
        notes.push(format!(
            "{param}: IPv6 addresses are supported only for VPC security groups"
        ));
        return Err(own.with(&param));
    }
    match cidr_text(text, Family::V6) {
        Ok((c, host_bits)) => {
            if host_bits {
                notes.push(format!("{param} {text} has host bits set; matched as {c}"));
            }
            Ok(Some(c))
        }
        Err(CidrFault::Family) => Err(if cx.ingress() {
            errors::ILLEGAL_IPV6_CIDR.with(text)
        } else {
            errors::IPV6_CIDR_IP.plain()
        }),
        Err(_) => Err(own.with(&param)),
    }
}

fn port_note(spec: &Spec, field: Field, proto: &str) -> String {
    format!(
        "{}: ports are ignored for protocol {proto}; read as -1/-1",
        spec.param(field)
    )
}

/// Step 6 of §2.1.3 for one entry, one function a check, in the order of the list:
/// protocol → PortRange / PortRangeListId → SourcePortRange → Policy → Priority → NicType →
/// addresses → peer presence → referenced objects → Description.
pub(super) fn entry(cx: &Cx, spec: &Spec, notes: &mut Vec<String>) -> Result<Entry, ApiError> {
    let place = place(spec);
    let (protocol, proto_text) = protocol(spec)?;
    let ports = dst_ports(spec, protocol, proto_text, notes)?;
    let src_ports = src_ports(spec, protocol, proto_text, notes)?;
    let (policy, policy_given) = policy(cx, spec, notes)?;
    let priority = priority(spec)?;
    let nic_given = nic_type(cx, spec, notes)?;
    let addresses = addresses(cx, spec, protocol, &place, notes)?;
    let (peer, owners) = peer(cx, spec, &addresses, &place, notes)?;
    let nic = nic(cx, nic_given, &peer)?;
    referenced(cx, spec, &peer, &owners, &ports)?;
    let description = description(spec)?;
    Ok(Entry {
        key: Key {
            protocol,
            ports,
            src_ports,
            peer,
            owners,
            local: addresses.local,
            policy,
            nic,
            priority,
        },
        place,
        policy_given,
        nic_given: nic_given.is_some(),
        description,
    })
}

/// IpProtocol, and its text as given (for notes).
fn protocol(spec: &Spec) -> Result<(Protocol, &str), ApiError> {
    let proto_text = spec.get(Field::IpProtocol).unwrap_or("");
    let protocol = parse_protocol(proto_text).ok_or_else(|| errors::PROTOCOL.plain())?;
    Ok((protocol, proto_text))
}

/// PortRange / PortRangeListId.
fn dst_ports(
    spec: &Spec,
    protocol: Protocol,
    proto_text: &str,
    notes: &mut Vec<String>,
) -> Result<Ports, ApiError> {
    let ported = has_ports(protocol);
    Ok(
        match (spec.get(Field::PortRange), spec.get(Field::PortRangeListId)) {
            (Some(text), list) => {
                if list.is_some() {
                    notes.push(format!(
                        "{} is ignored because {} is given",
                        spec.param(Field::PortRangeListId),
                        spec.param(Field::PortRange)
                    ));
                }
                let pair = port_pair(text)
                    .ok_or_else(|| errors::PARAM_PORT_RANGE.with(&spec.param(Field::PortRange)))?;
                if ported {
                    if pair == (-1, -1) {
                        return Err(errors::IP_PORT_RANGE.plain());
                    }
                    Ports::Range(port_range(pair).ok_or_else(|| errors::IP_PORT_RANGE.plain())?)
                } else {
                    if pair != (-1, -1) {
                        notes.push(port_note(spec, Field::PortRange, proto_text));
                    }
                    Ports::Range(PortRange::ANY)
                }
            }
            (None, Some(list)) => {
                if !ported {
                    return Err(errors::PROTOCOL_NO_PORT_LIST.plain());
                }
                Ports::List(list.to_string())
            }
            (None, None) => return Err(errors::PORT_RANGE_MISSING.plain()),
        },
    )
}

/// SourcePortRange.
fn src_ports(
    spec: &Spec,
    protocol: Protocol,
    proto_text: &str,
    notes: &mut Vec<String>,
) -> Result<PortRange, ApiError> {
    Ok(match spec.get(Field::SourcePortRange) {
        None => PortRange::ANY,
        Some(text) => {
            let pair = port_pair(text).ok_or_else(|| errors::SOURCE_PORT_RANGE.plain())?;
            if pair == (-1, -1) {
                PortRange::ANY
            } else if !has_ports(protocol) {
                notes.push(port_note(spec, Field::SourcePortRange, proto_text));
                PortRange::ANY
            } else {
                port_range(pair).ok_or_else(|| errors::SOURCE_PORT_RANGE.plain())?
            }
        }
    })
}

/// Policy (default accept), and whether it was given.
fn policy(cx: &Cx, spec: &Spec, notes: &mut Vec<String>) -> Result<(Action, bool), ApiError> {
    let (policy, policy_given) = match spec.get(Field::Policy) {
        None => (Action::Accept, false),
        Some(t) => match t.to_ascii_lowercase().as_str() {
            "accept" => (Action::Accept, true),
            "drop" => (Action::Drop, true),
            _ => return Err(errors::POLICY.with(&spec.param(Field::Policy))),
        },
    };
    if policy_given && cx.enterprise() {
        notes.push(format!(
            "{}: enterprise (advanced) groups do not accept Policy in requests; revoke their rules by SecurityGroupRuleId.N",
            cx.group.id
        ));
        return Err(errors::GROUP_PARAMETER_DENIED.plain());
    }
    Ok((policy, policy_given))
}

/// Priority, when given.
fn priority(spec: &Spec) -> Result<Option<Priority>, ApiError> {
    Ok(match spec.get(Field::Priority) {
        None => None,
        Some(t) => {
            let n: i64 = t.parse().map_err(|_| errors::PRIORITY_MALFORMED.plain())?;
            let n = u32::try_from(n)
                .ok()
                .filter(|n| (1..=100).contains(n))
                .ok_or_else(|| errors::PRIORITY_VALUE.with(&spec.param(Field::Priority)))?;
            Some(Priority(n))
        }
    })
}

/// NicType, when given.
fn nic_type(cx: &Cx, spec: &Spec, notes: &mut Vec<String>) -> Result<Option<Nic>, ApiError> {
    let nic_given = match spec.get(Field::NicType) {
        None => None,
        Some(t) => match Nic::parse(t) {
            Some(n) => Some(n),
            None => return Err(errors::NIC_TYPE_VALUE.with(&spec.param(Field::NicType))),
        },
    };
    if nic_given == Some(Nic::Internet) && !cx.classic() {
        notes.push(format!(
            "{}: NicType internet exists only in the classic network; VPC rules are intranet",
            spec.param(Field::NicType)
        ));
        return Err(errors::VPC_DISABLED.plain());
    }
    Ok(nic_given)
}

/// An entry's address fields, read.
struct Addresses {
    /// Whether the peer is an IPv4 CIDR, and the peer's IPv4 and IPv6 fields.
    peer4: bool,
    p4: Field,
    p6: Field,
    /// The peer's CIDR, IPv4 first.
    peer_cidr: Option<Cidr>,
    /// The local side (`None`: any).
    local: Option<Cidr>,
}

/// Addresses: syntax, v4/v6 coexistence, family vs protocol.
fn addresses(
    cx: &Cx,
    spec: &Spec,
    protocol: Protocol,
    place: &str,
    notes: &mut Vec<String>,
) -> Result<Addresses, ApiError> {
    let ingress = cx.ingress();
    let (p4, p6, l4, l6) = if ingress {
        (
            Field::SourceCidrIp,
            Field::Ipv6SourceCidrIp,
            Field::DestCidrIp,
            Field::Ipv6DestCidrIp,
        )
    } else {
        (
            Field::DestCidrIp,
            Field::Ipv6DestCidrIp,
            Field::SourceCidrIp,
            Field::Ipv6SourceCidrIp,
        )
    };
    let peer4 = v4_field(cx, spec, p4, notes)?;
    let peer6 = v6_field(cx, spec, p6, notes)?;
    let local4 = v4_field(cx, spec, l4, notes)?;
    let local6 = v6_field(cx, spec, l6, notes)?;
    let (src4, src6, dst4, dst6) = if ingress {
        (&peer4, &peer6, &local4, &local6)
    } else {
        (&local4, &local6, &peer4, &peer6)
    };
    if src4.is_some() && src6.is_some() {
        return Err(errors::SOURCE_IP.with(place));
    }
    if dst4.is_some() && dst6.is_some() {
        return Err(errors::DEST_IP.with(place));
    }
    let any_v4 = peer4.is_some() || local4.is_some();
    let any_v6 = peer6.is_some() || local6.is_some();
    if protocol == Protocol::ICMP && any_v6 {
        return Err(errors::V4_PROTO_V6_ADDR.plain());
    }
    if protocol == Protocol::ICMPV6 && any_v4 {
        return Err(errors::V6_PROTO_V4_ADDR.plain());
    }
    let peer_cidr = peer4.or(peer6);
    let local = local4.or(local6).filter(|c| !c.is_any());
    if let (Some(p), Some(l)) = (peer_cidr, local) {
        if p.family() != l.family() {
            notes.push(format!(
                "{place}: the local side {l} and the peer {p} are of different address families"
            ));
            return Err(if ingress {
                errors::DEST_IP.with(place)
            } else {
                errors::SOURCE_IP.with(place)
            });
        }
    }
    Ok(Addresses {
        peer4: peer4.is_some(),
        p4,
        p6,
        peer_cidr,
        local,
    })
}

/// The peer fields of the entry's direction: group, its owner's ID and account, prefix list.
fn peer_fields(cx: &Cx) -> (Field, Field, Field, Field) {
    if cx.ingress() {
        (
            Field::SourceGroupId,
            Field::SourceGroupOwnerId,
            Field::SourceGroupOwnerAccount,
            Field::SourcePrefixListId,
        )
    } else {
        (
            Field::DestGroupId,
            Field::DestGroupOwnerId,
            Field::DestGroupOwnerAccount,
            Field::DestPrefixListId,
        )
    }
}

/// Peer presence and precedence (CIDR > group > prefix list): the peer, and the owners
/// named for a group peer.
fn peer(
    cx: &Cx,
    spec: &Spec,
    addresses: &Addresses,
    place: &str,
    notes: &mut Vec<String>,
) -> Result<(Peer, Vec<String>), ApiError> {
    let (group_f, owner_id_f, owner_acct_f, list_f) = peer_fields(cx);
    let group_given = spec.get(group_f);
    let list_given = spec.get(list_f);
    let owners: Vec<String> = [owner_acct_f, owner_id_f]
        .into_iter()
        .filter_map(|f| spec.get(f).map(str::to_string))
        .collect();
    let ignored = |f: Field, why: &str| format!("{} is ignored because {why}", spec.param(f));
    let peer = if let Some(c) = addresses.peer_cidr {
        let winner = spec.param(if addresses.peer4 {
            addresses.p4
        } else {
            addresses.p6
        });
        for f in [group_f, owner_id_f, owner_acct_f, list_f] {
            if spec.get(f).is_some() {
                notes.push(ignored(f, &format!("{winner} is given")));
            }
        }
        Peer::cidr(c)
    } else if let Some(g) = group_given {
        if list_given.is_some() {
            notes.push(ignored(
                list_f,
                &format!("{} is given", spec.param(group_f)),
            ));
        }
        Peer::Group {
            group_id: g.into(),
            owner: None,
        }
    } else if let Some(l) = list_given {
        for f in [owner_id_f, owner_acct_f] {
            if spec.get(f).is_some() {
                notes.push(ignored(f, "no group is given"));
            }
        }
        Peer::PrefixList {
            prefix_list_id: l.into(),
        }
    } else {
        return Err(match (cx.legacy, cx.ingress()) {
            (true, true) => errors::MISSING_SOURCE_LEGACY.plain(),
            (true, false) => errors::MISSING_DEST_LEGACY.plain(),
            (false, true) => errors::MISSING_SOURCE.plain(),
            (false, false) => errors::MISSING_DEST.with(place),
        });
    };
    let owners = if matches!(peer, Peer::Group { .. }) {
        owners
    } else {
        Vec::new()
    };
    Ok((peer, owners))
}

/// The NIC type against the peer, then its default.
fn nic(cx: &Cx, nic_given: Option<Nic>, peer: &Peer) -> Result<Nic, ApiError> {
    let group_peer = matches!(peer, Peer::Group { .. });
    if nic_given == Some(Nic::Internet) && group_peer {
        return Err(errors::NIC_TYPE_MISMATCH.plain());
    }
    Ok(Nic::meant(cx.group, nic_given, group_peer))
}

/// Referenced objects: the peer group (exists, same VPC, not the group itself, not
/// enterprise), the prefix list, the port list.
fn referenced(
    cx: &Cx,
    spec: &Spec,
    peer: &Peer,
    owners: &[String],
    ports: &Ports,
) -> Result<(), ApiError> {
    let ingress = cx.ingress();
    let (group_f, ..) = peer_fields(cx);
    if spec.get(group_f).is_some() && cx.enterprise() {
        return Err(errors::GROUP_PARAMETER_DENIED.plain());
    }
    match peer {
        Peer::Group { group_id, .. } => {
            let known = cx.state.group(group_id);
            let referenced = cx
                .state
                .rules
                .iter()
                .any(|r| matches!(&r.remote, Peer::Group { group_id: g, .. } if g == group_id));
            if known.is_none() && !referenced {
                return Err(match (owners.is_empty(), ingress) {
                    (false, _) => errors::GROUP_AUTH_ITEM.plain(),
                    (true, true) => errors::SOURCE_GROUP_NOT_FOUND.plain(),
                    (true, false) => errors::DEST_GROUP_NOT_FOUND.plain(),
                });
            }
            if let Some(other) = known {
                if other.vpc != cx.group.vpc {
                    return Err(if ingress {
                        errors::SOURCE_GROUP_MISMATCH.plain()
                    } else {
                        errors::DEST_GROUP_MISMATCH.plain()
                    });
                }
            }
            if group_id == &cx.group.id {
                return Err(if ingress {
                    errors::PARAMTER_CONFLICT.plain()
                } else {
                    errors::IS_SAME.plain()
                });
            }
            if known.is_some_and(|g| g.kind == GroupKind::Enterprise) {
                return Err(errors::GROUP_AUTH_DENIED.plain());
            }
        }
        Peer::PrefixList { prefix_list_id } => {
            if cx.classic() {
                return Err(errors::CLASSIC_PREFIX_LIST.plain());
            }
            if cx.state.provider_state.get(PREFIX_LISTS_ENABLED_KEY) == Some(&Value::Bool(false)) {
                return Err(errors::GRAY_FUNCTION.plain());
            }
            let referenced = cx.state.rules.iter().any(|r| {
                matches!(&r.remote, Peer::PrefixList { prefix_list_id: p } if p == prefix_list_id)
            });
            if cx.state.prefix_list(prefix_list_id).is_none() && !referenced {
                return Err(errors::PREFIX_LIST_NOT_FOUND.plain());
            }
        }
        Peer::Cidr { .. } => {}
    }
    if let Ports::List(list) = ports {
        let referenced = cx
            .state
            .rules
            .iter()
            .any(|r| r.attrs.get("PortRangeListId") == Some(list));
        if cx.classic() || !referenced {
            return Err(errors::PORT_LIST_NOT_FOUND.plain());
        }
    }
    Ok(())
}

/// Description: at most 512 characters, not a URL.
fn description(spec: &Spec) -> Result<Option<String>, ApiError> {
    let description = spec.get(Field::Description).map(str::to_string);
    if let Some(d) = &description {
        let lower = d.to_ascii_lowercase();
        if d.chars().count() > 512 || lower.starts_with("http://") || lower.starts_with("https://")
        {
            return Err(errors::DESCRIPTION.plain());
        }
    }
    Ok(description)
}
