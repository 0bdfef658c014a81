//! Revoke semantics (SEMANTICS.md §2.1): validation in the order of §2.1.3, defaults filled
//! before matching, matching, deletion, ClientToken idempotency, and warnings about traps.
//!
//! A request entry identifies rules by its *match key*: protocol, destination ports (or port
//! list), source ports, peer (after the precedence CIDR > group > prefix list), local side
//! (`None` = any; `0.0.0.0/0` and `::/0` are any), policy (default accept), NIC type
//! (default by network type) and — only when the request gives it — priority (Q7).
//! Description is not part of the key (Q6). Nothing is deleted unless the whole request is
//! valid.
//!
//! # Decisions the seeds leave open
//!
//! - Forms: any two of rule IDs, `Permissions.N`, flat parameters → `InvalidParam.Permissions`;
//!   an `N` outside 1..=100 → `InvalidParam.Permissions` / `InvalidParam.SecurityGroupRuleId`.
//! - Unknown rule ID: per direction ([`errors::RULE_ID_UNKNOWN`], Q1); a rule ID of another
//!   group → `InvalidSecurityGroupRuleId.NotFound` (404).
//! - `RegionId` is required, except that a documentation placeholder (`<公共请求参数>`) in the
//!   text stands for the elided parameters; a `RegionId` other than the group's (from the
//!   export) → `InvalidSecurityGroupId.NotFound`.
//! - Port ranges: not two integers −1..=65535 as `a/b` → `InvalidParam.PortRange`; TCP/UDP
//!   values that are not `1 ≤ a ≤ b` → `InvalidIpPortRange.Malformed`; for ICMP, ICMPv6, GRE
//!   and ALL the value is read as `-1/-1` with a warning (the seed's own example sends
//!   `all` with `80/80` and succeeds). A missing IpProtocol is
//!   `InvalidIpProtocol.ValueNotSupported` ("must be specified").
//! - Address codes: unparsable IPv4 peer/local → `Invalid{Source,Dest}CidrIp.Malformed`
//!   (egress local `SourceCidrIp`: `InvalidParam.SourceCidrIp`); an IPv6 value in an IPv4
//!   field → `InvalidParam.{Source,Dest}CidrIp`; an egress `DestCidrIp` prefix longer than /32
//!   → `InvalidDestCidrIp.sMalformed`; an IPv4 value in an IPv6 field → `ILLEGAL_IPV6_CIDR`
//!   (ingress) / `InvalidParameter.Ipv6CidrIp` (egress); other bad IPv6 values and any IPv6
//!   on a classic group → `InvalidParam.Ipv6{Source,Dest}CidrIp`; local side and peer of
//!   different families → `InvalidParam.DestIp` (ingress) / `InvalidParam.SourceIp` (egress).
//! - A legacy flat request without a peer → `MissingParameter` (S0's older message); a
//!   `Permissions.N` entry without one → `MissingParameter.Source` / `.Dest`.
//! - NicType: `internet` on a VPC group → `VPCDisabled`; `internet` with a group peer →
//!   `InvalidNicType.Mismatch`.
//! - Group peers: known if the state has the group or any rule references it; unknown with an
//!   owner named → `InvalidGroupAuthItem.NotFound`, without → `Invalid{Source,Dest}GroupId.NotFound`.
//!   Self-reference: ingress `InvalidParamter.Conflict` 400 (S0), egress
//!   `InvalidSecurityGroup.IsSame` 403 (S1). A reference to an enterprise group →
//!   `InvalidGroupAuthParameter.OperationDenied`; Policy or a group ID in a request for an
//!   enterprise group → `InvalidGroupParameter.OperationDenied` (Q10).
//! - A port list is known if a rule of the state uses it; on a classic group it is
//!   `InvalidPortRangeListId.NotFound`.
//! - `InvalidOperation.SecurityGroupNotAuthorized`: the request's `OwnerId` differs from the
//!   group's known owner. `InternalError`: the group holds a rule no Alibaba group can hold
//!   (priority outside 1..=100, a protocol other than the six). `NotSupported.GrayFunction`:
//!   [`PREFIX_LISTS_ENABLED_KEY`] is `false` in the state.
//! - Description: more than 512 characters, or starting with `http://` / `https://`.
//! - ClientToken: longer than 64 or not ASCII → `InvalidClientToken.ValueNotSupported`
//!   (not in the seed tables); only successful requests are remembered (a failed one changes
//!   nothing, so its token stays unused); the fingerprint is the sorted identifying
//!   parameters, so the same request as JSON or query string, in any order, is identical.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use super::errors::{self};
use super::request::{Field, Request, Spec};
use super::response;
use super::values::{has_ports, port_pair, port_range, protocol as parse_protocol};
use crate::model::{
    Action, Cidr, Direction, Family, GroupKind, Peer, PortRange, Priority, Protocol, Provider,
    Rule, RuleId, SecurityGroup, State, ValueError,
};
use crate::provider::{request_id, ApiError, Outcome, RawRequest, RequestError};

/// `State::provider_state` key of the ClientToken records.
pub const TOKENS_KEY: &str = "aliyun.client_tokens";
/// `State::provider_state` key that, set to `false`, makes prefix lists a disabled
/// ("gray") feature of the account: `NotSupported.GrayFunction`.
pub const PREFIX_LISTS_ENABLED_KEY: &str = "aliyun.prefix_lists_enabled";

/// `State::provider_state` key that, set to `true`, makes a `Permissions.N` or flat entry
/// that matches no rule an error (`InvalidSecurityGroupRule.RuleNotExist`) instead of a
/// success that deletes nothing (SEMANTICS Q2; off by default).
pub const STRICT_NOT_FOUND_KEY: &str = "aliyun.strict_not_found";

/// A rule's NIC type (classic network; VPC rules are always intranet).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Nic {
    /// Public NIC.
    Internet,
    /// Private NIC.
    Intranet,
}

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
    let group_peer = matches!(peer, Peer::Group { .. });
    let nic = match rule.attrs.get("NicType").map(|n| n.to_ascii_lowercase()) {
        _ if group.vpc.is_some() => Nic::Intranet,
        Some(n) if n == "internet" => Nic::Internet,
        Some(n) if n == "intranet" => Nic::Intranet,
        _ if group_peer => Nic::Intranet,
        _ => Nic::Internet,
    };
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

/// A checked request entry.
#[derive(Clone, Debug)]
struct Entry {
    key: Key,
    /// Where the entry came from (`Permissions.1`, or `the request` for flat parameters).
    place: String,
    policy_given: bool,
    nic_given: bool,
    description: Option<String>,
}

/// What the request concerns.
struct Cx<'a> {
    state: &'a State,
    group: &'a SecurityGroup,
    direction: Direction,
    legacy: bool,
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

/// Step 6 of §2.1.3 for one entry.
fn entry(cx: &Cx, spec: &Spec, notes: &mut Vec<String>) -> Result<Entry, ApiError> {
    let ingress = cx.ingress();
    let place = place(spec);
    // Protocol.
    let proto_text = spec.get(Field::IpProtocol).unwrap_or("");
    let protocol = parse_protocol(proto_text).ok_or_else(|| errors::PROTOCOL.plain())?;
    let ported = has_ports(protocol);
    // PortRange / PortRangeListId.
    let ports = match (spec.get(Field::PortRange), spec.get(Field::PortRangeListId)) {
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
    };
    // SourcePortRange.
    let src_ports = match spec.get(Field::SourcePortRange) {
        None => PortRange::ANY,
        Some(text) => {
            let pair = port_pair(text).ok_or_else(|| errors::SOURCE_PORT_RANGE.plain())?;
            if pair == (-1, -1) {
                PortRange::ANY
            } else if !ported {
                notes.push(port_note(spec, Field::SourcePortRange, proto_text));
                PortRange::ANY
            } else {
                port_range(pair).ok_or_else(|| errors::SOURCE_PORT_RANGE.plain())?
            }
        }
    };
    // Policy.
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
    // Priority.
    let priority = match spec.get(Field::Priority) {
        None => None,
        Some(t) => {
            let n: i64 = t.parse().map_err(|_| errors::PRIORITY_MALFORMED.plain())?;
            let n = u32::try_from(n)
                .ok()
                .filter(|n| (1..=100).contains(n))
                .ok_or_else(|| errors::PRIORITY_VALUE.with(&spec.param(Field::Priority)))?;
            Some(Priority(n))
        }
    };
    // NicType.
    let nic_given = match spec.get(Field::NicType) {
        None => None,
        Some(t) => match t.to_ascii_lowercase().as_str() {
            "internet" => Some(Nic::Internet),
            "intranet" => Some(Nic::Intranet),
            _ => return Err(errors::NIC_TYPE_VALUE.with(&spec.param(Field::NicType))),
        },
    };
    if nic_given == Some(Nic::Internet) && !cx.classic() {
        notes.push(format!(
            "{}: NicType internet exists only in the classic network; VPC rules are intranet",
            spec.param(Field::NicType)
        ));
        return Err(errors::VPC_DISABLED.plain());
    }
    // Addresses: syntax, v4/v6 coexistence, family vs protocol.
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
        return Err(errors::SOURCE_IP.with(&place));
    }
    if dst4.is_some() && dst6.is_some() {
        return Err(errors::DEST_IP.with(&place));
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
                errors::DEST_IP.with(&place)
            } else {
                errors::SOURCE_IP.with(&place)
            });
        }
    }
    // Peer presence and precedence: CIDR > group > prefix list.
    let (group_f, owner_id_f, owner_acct_f, list_f) = if ingress {
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
    };
    let group_given = spec.get(group_f);
    let list_given = spec.get(list_f);
    let owners: Vec<String> = [owner_acct_f, owner_id_f]
        .into_iter()
        .filter_map(|f| spec.get(f).map(str::to_string))
        .collect();
    let ignored = |f: Field, why: &str| format!("{} is ignored because {why}", spec.param(f));
    let peer = if let Some(c) = peer_cidr {
        let winner = spec.param(if peer4.is_some() { p4 } else { p6 });
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
        return Err(match (cx.legacy, ingress) {
            (true, true) => errors::MISSING_SOURCE_LEGACY.plain(),
            (true, false) => errors::MISSING_DEST_LEGACY.plain(),
            (false, true) => errors::MISSING_SOURCE.plain(),
            (false, false) => errors::MISSING_DEST.with(&place),
        });
    };
    let group_peer = matches!(peer, Peer::Group { .. });
    let owners = if group_peer { owners } else { Vec::new() };
    // NIC type against the peer, then its default.
    if nic_given == Some(Nic::Internet) && group_peer {
        return Err(errors::NIC_TYPE_MISMATCH.plain());
    }
    let nic = match nic_given {
        _ if !cx.classic() => Nic::Intranet,
        Some(n) => n,
        None if group_peer => Nic::Intranet,
        None => Nic::Internet,
    };
    // Referenced objects.
    if group_given.is_some() && cx.enterprise() {
        return Err(errors::GROUP_PARAMETER_DENIED.plain());
    }
    match &peer {
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
    if let Ports::List(list) = &ports {
        let referenced = cx
            .state
            .rules
            .iter()
            .any(|r| r.attrs.get("PortRangeListId") == Some(list));
        if cx.classic() || !referenced {
            return Err(errors::PORT_LIST_NOT_FOUND.plain());
        }
    }
    // Description.
    let description = spec.get(Field::Description).map(str::to_string);
    if let Some(d) = &description {
        let lower = d.to_ascii_lowercase();
        if d.chars().count() > 512 || lower.starts_with("http://") || lower.starts_with("https://")
        {
            return Err(errors::DESCRIPTION.plain());
        }
    }
    Ok(Entry {
        key: Key {
            protocol,
            ports,
            src_ports,
            peer,
            owners,
            local,
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

/// Whether text is an ID with this prefix (`sg-`, `sgr-`): letters, digits, `-`, `_`, and
/// the `*` documentation uses to mask IDs.
fn valid_id(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix).is_some_and(|rest| {
        !rest.is_empty()
            && id.len() <= 64
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'*'))
    })
}

/// A remembered ClientToken.
struct TokenRecord {
    fingerprint: String,
    request_id: String,
}

fn token_key(action: &str, token: &str) -> String {
    format!("{action}:{token}")
}

fn token_record(state: &State, key: &str, notes: &mut Vec<String>) -> Option<TokenRecord> {
    let rec = state.provider_state.get(TOKENS_KEY)?.get(key)?;
    let fingerprint = rec.get("fingerprint").and_then(Value::as_str);
    let request_id = rec.get("request_id").and_then(Value::as_str);
    match (fingerprint, request_id) {
        (Some(f), Some(r)) => Some(TokenRecord {
            fingerprint: f.to_string(),
            request_id: r.to_string(),
        }),
        _ => {
            notes.push(format!(
                "the snapshot's record of ClientToken '{key}' is unreadable; treated as unused"
            ));
            None
        }
    }
}

/// What a valid request does.
struct Done {
    /// The rules to delete (none for a replay).
    doomed: BTreeSet<RuleId>,
    /// Set for a ClientToken replay: the first request's ID; nothing changes.
    replay_of: Option<String>,
}

fn near_miss_note(entry: &Entry, rule: &Rule, part: Part) -> Option<String> {
    let p = &entry.place;
    let id = &rule.id;
    Some(match part {
        Part::Policy if !entry.policy_given => format!(
            "{p} matched no rule: Policy defaulted to accept, but rule {id} is a {} rule with the same other fields; pass Policy={} to revoke it (the API still answers success and deletes nothing)",
            rule.action, rule.action
        ),
        Part::Policy => format!(
            "{p} matched no rule: rule {id} differs only in Policy ({})",
            rule.action
        ),
        Part::Priority => format!(
            "{p} matched no rule: rule {id} differs only in Priority ({}); omit Priority to match any priority",
            rule.priority.0
        ),
        Part::Local => format!(
            "{p} matched no rule: rule {id} differs only in its local side ({}); give {} to revoke it",
            rule.local.map_or("any".to_string(), |c| c.to_string()),
            if rule.direction == Direction::Ingress { "DestCidrIp" } else { "SourceCidrIp" }
        ),
        Part::SourcePorts => format!(
            "{p} matched no rule: rule {id} differs only in SourcePortRange ({})",
            rule.src_ports
        ),
        Part::Nic if !entry.nic_given => format!(
            "{p} matched no rule: NicType defaulted to internet (classic network), but rule {id} is an intranet rule with the same other fields; pass NicType=intranet"
        ),
        Part::Nic => format!("{p} matched no rule: rule {id} differs only in NicType"),
        Part::Owner => format!(
            "{p} matched no rule: rule {id} references the same group with owner {}",
            match &rule.remote {
                Peer::Group { owner: Some(o), .. } => o.as_str(),
                _ => "?",
            }
        ),
        Part::Ports => format!(
            "{p} matched no rule: rule {id} differs only in its destination ports ({})",
            rule.attrs
                .get("PortRangeListId")
                .cloned()
                .unwrap_or_else(|| rule.dst_ports.to_string())
        ),
        Part::Protocol | Part::Peer => return None,
    })
}

fn run(state: &State, req: &Request, notes: &mut Vec<String>) -> Result<Done, ApiError> {
    // 0. A repeated parameter or JSON key (sgsim's decision: the documents do not say; one
    //    error for every parameter, as AWS has).
    if let Some(name) = &req.repeated {
        return Err(ApiError::new(
            "InvalidParameter",
            400,
            format!("The specified parameter {name} is given more than once."),
        ));
    }
    // 1. Required parameters.
    if req.region.is_none() {
        if req.placeholder {
            notes.push("RegionId is not given; the example's placeholder for common parameters is taken to supply it".into());
        } else {
            return Err(errors::MISSING_PARAMETER.with("RegionId"));
        }
    }
    let Some(gid) = req.group.as_deref() else {
        return Err(errors::MISSING_PARAMETER.with("SecurityGroupId"));
    };
    // 2. The group.
    if !valid_id(gid, "sg-") {
        return Err(errors::SG_MALFORMED.plain());
    }
    let Some(group) = state
        .groups
        .iter()
        .find(|g| g.id.as_str() == gid && g.provider == Provider::Aliyun)
    else {
        return Err(errors::SG_NOT_FOUND.plain());
    };
    if let (Some(r), Some(gr)) = (&req.region, group.attrs.get("RegionId")) {
        if r != gr {
            notes.push(format!("group {gid} is in region {gr}, not {r}"));
            return Err(errors::SG_NOT_FOUND.plain());
        }
    }
    if let (Some(o), Some(go)) = (&req.owner_id, &group.owner) {
        if o != go {
            return Err(errors::SG_NOT_AUTHORIZED.plain());
        }
    }
    if group
        .attrs
        .get("ServiceManaged")
        .is_some_and(|m| m.eq_ignore_ascii_case("true"))
    {
        return Err(errors::SG_MANAGED.with(gid));
    }
    let mut stored: Vec<(&Rule, Key)> = Vec::new();
    for rule in state.rules.iter().filter(|r| r.group == group.id) {
        match rule_key(rule, group) {
            Ok(k) => {
                if rule.direction == req.direction {
                    stored.push((rule, k));
                }
            }
            Err(why) => {
                notes.push(format!("the state is inconsistent: {why}"));
                return Err(errors::INTERNAL_ERROR.plain());
            }
        }
    }
    // 3. ClientToken.
    if let Some(token) = &req.client_token {
        if token.len() > 64 || !token.is_ascii() {
            return Err(errors::CLIENT_TOKEN_INVALID.plain());
        }
        if let Some(rec) = token_record(state, &token_key(req.action(), token), notes) {
            if rec.fingerprint == req.fingerprint {
                notes.push(format!(
                    "ClientToken '{token}' was used before by an identical request (RequestId {}); the API returns the same result and changes nothing",
                    rec.request_id
                ));
                return Ok(Done {
                    doomed: BTreeSet::new(),
                    replay_of: Some(rec.request_id),
                });
            }
            return Err(errors::IDEMPOTENT_MISMATCH.plain());
        }
    }
    // 4. Forms.
    let has_ids = !req.rule_ids.is_empty() || req.bad_rule_id_index.is_some();
    let has_perms = !req.permissions.is_empty() || req.bad_permission_index.is_some();
    let has_flat = !req.flat.values.is_empty();
    if [has_ids, has_perms, has_flat]
        .iter()
        .filter(|b| **b)
        .count()
        > 1
    {
        return Err(errors::PERMISSIONS_COEXIST.plain());
    }
    if let Some(p) = &req.bad_permission_index {
        notes.push(format!("{p}: N must be 1 to 100"));
        return Err(errors::PERMISSIONS_COEXIST.plain());
    }
    if let Some(p) = &req.bad_rule_id_index {
        notes.push(format!("{p}: N must be 1 to 100"));
        return Err(errors::RULE_ID_INVALID.plain());
    }
    let mut doomed = BTreeSet::new();
    if has_ids {
        // 5. By rule ID.
        if let Some(bad) = req.rule_ids.iter().find(|id| !valid_id(id, "sgr-")) {
            notes.push(format!("'{bad}' is not a security group rule ID"));
            return Err(errors::RULE_ID_INVALID.plain());
        }
        let mut seen = BTreeSet::new();
        for id in &req.rule_ids {
            if !seen.insert(id.as_str()) {
                return Err(errors::RULE_ID_REPEATED.plain());
            }
        }
        // One pass over the rules, then a hash lookup per ID (at most 100 by the API).
        let by_id: std::collections::HashMap<&str, &Rule> =
            state.rules.iter().map(|r| (r.id.as_str(), r)).collect();
        for id in &req.rule_ids {
            match by_id.get(id.as_str()).copied() {
                None => {
                    notes.push(format!("rule {id} does not exist; nothing is deleted"));
                    return Err(errors::rule_id_unknown(req.direction).plain());
                }
                Some(r) if r.group != group.id => {
                    notes.push(format!(
                        "rule {id} belongs to group {}, not {gid}; nothing is deleted",
                        r.group
                    ));
                    return Err(errors::RULE_ID_NOT_FOUND.plain());
                }
                Some(r) if r.direction != req.direction => {
                    notes.push(format!(
                        "rule {id} is an {} rule; {} revokes {} rules only; nothing is deleted",
                        r.direction,
                        req.action(),
                        req.direction
                    ));
                    return Err(errors::rule_id_unknown(req.direction).plain());
                }
                Some(r) => {
                    doomed.insert(r.id.clone());
                }
            }
        }
        return Ok(Done {
            doomed,
            replay_of: None,
        });
    }
    // 6. Permissions (or the legacy flat parameters), entry by entry.
    let cx = Cx {
        state,
        group,
        direction: req.direction,
        legacy: !has_perms,
    };
    let specs: Vec<&Spec> = if has_perms {
        req.permissions.iter().collect()
    } else {
        vec![&req.flat]
    };
    let mut entries = Vec::new();
    for spec in specs {
        entries.push(entry(&cx, spec, notes)?);
    }
    // 7. Duplicates.
    for (i, a) in entries.iter().enumerate() {
        if let Some(b) = entries[i + 1..].iter().find(|b| b.key == a.key) {
            notes.push(format!("{} and {} are the same rule", a.place, b.place));
            return Err(errors::DUPLICATE_PERMISSIONS.plain());
        }
    }
    // 8. Match.
    for e in &entries {
        let hits: Vec<&Rule> = stored
            .iter()
            .filter(|(_, k)| differences(&e.key, k).is_empty())
            .map(|(r, _)| *r)
            .collect();
        if hits.is_empty() {
            let mut explained = false;
            for (rule, k) in &stored {
                if let [part] = differences(&e.key, k)[..] {
                    if let Some(n) = near_miss_note(e, rule, part) {
                        notes.push(n);
                        explained = true;
                    }
                }
            }
            if state.provider_state.get(STRICT_NOT_FOUND_KEY) == Some(&Value::Bool(true)) {
                notes.push(format!(
                    "{} matched no rule of {gid} ({STRICT_NOT_FOUND_KEY} is set); nothing is deleted",
                    e.place
                ));
                return Err(errors::RULE_NOT_EXIST.plain());
            }
            if !explained {
                notes.push(format!(
                    "{} matched no rule of {gid}; the API answers success and deletes nothing",
                    e.place
                ));
            }
        }
        if hits.len() > 1 {
            notes.push(format!(
                "{} matched {} rules ({}); all are revoked",
                e.place,
                hits.len(),
                hits.iter()
                    .map(|r| format!("{} priority {}", r.id, r.priority.0))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        for r in hits {
            if let Some(d) = &e.description {
                if r.description.as_deref() != Some(d.as_str()) {
                    notes.push(format!(
                        "{}: Description is not part of the match; rule {} is revoked although its description is {:?}",
                        e.place, r.id, r.description.as_deref().unwrap_or("")
                    ));
                }
            }
            doomed.insert(r.id.clone());
        }
    }
    Ok(Done {
        doomed,
        replay_of: None,
    })
}

/// Applies a revoke request (see the module docs).
pub(super) fn revoke(state: &State, raw: &RawRequest) -> Result<Outcome, RequestError> {
    let req = Request::parse(raw)?;
    let mut warnings = req.notes.clone();
    let seed = format!(
        "aliyun|{}|{}",
        req.fingerprint,
        req.client_token.as_deref().unwrap_or("")
    );
    let fresh_id = request_id(&seed);
    let action = req.action();
    Ok(match run(state, &req, &mut warnings) {
        Err(error) => Outcome {
            provider: Provider::Aliyun,
            status: error.status,
            json: response::error_json(&fresh_id, &error),
            xml: response::error_xml(&fresh_id, &error),
            error: Some(error),
            state: state.clone(),
            revoked: Vec::new(),
            warnings,
        },
        Ok(done) => {
            let rid = done.replay_of.clone().unwrap_or(fresh_id);
            let mut next = state.clone();
            let revoked: Vec<Rule> = state
                .rules
                .iter()
                .filter(|r| done.doomed.contains(&r.id))
                .cloned()
                .collect();
            next.rules.retain(|r| !done.doomed.contains(&r.id));
            if let (Some(token), None) = (&req.client_token, &done.replay_of) {
                let tokens = next
                    .provider_state
                    .entry(TOKENS_KEY.to_string())
                    .or_insert_with(|| json!({}));
                if !tokens.is_object() {
                    *tokens = json!({});
                }
                if let Some(map) = tokens.as_object_mut() {
                    map.insert(
                        token_key(action, token),
                        json!({
                            "fingerprint": req.fingerprint,
                            "request_id": rid,
                            "revoked": revoked.iter().map(|r| r.id.to_string()).collect::<Vec<_>>(),
                        }),
                    );
                }
            }
            Outcome {
                provider: Provider::Aliyun,
                error: None,
                status: 200,
                json: response::success_json(&rid),
                xml: response::success_xml(action, &rid),
                state: next,
                revoked,
                warnings,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::VpcId;
    use std::collections::BTreeMap;

    fn group(id: &str, vpc: Option<&str>, kind: GroupKind) -> SecurityGroup {
        SecurityGroup {
            id: id.into(),
            provider: Provider::Aliyun,
            name: None,
            description: None,
            kind,
            inner_access: Action::Accept,
            vpc: vpc.map(VpcId::from),
            owner: None,
            attrs: BTreeMap::new(),
        }
    }

    fn rule(id: &str, group: &str, action: Action, priority: u32, nic: Option<&str>) -> Rule {
        let mut attrs = BTreeMap::new();
        if let Some(n) = nic {
            attrs.insert("NicType".to_string(), n.to_string());
        }
        Rule {
            id: id.into(),
            group: group.into(),
            direction: Direction::Ingress,
            action,
            priority: Priority(priority),
            protocol: Protocol::TCP,
            src_ports: PortRange::ANY,
            dst_ports: PortRange::single(22),
            remote: Peer::cidr("10.0.0.0/8".parse().unwrap()),
            local: None,
            description: Some("ssh".into()),
            attrs,
        }
    }

    fn state() -> State {
        State {
            groups: vec![
                group("sg-v", Some("vpc-1"), GroupKind::Basic),
                group("sg-c", None, GroupKind::Basic),
            ],
            rules: vec![
                rule("sgr-1", "sg-v", Action::Accept, 1, None),
                rule("sgr-2", "sg-v", Action::Drop, 5, None),
                rule("sgr-3", "sg-c", Action::Accept, 1, Some("intranet")),
            ],
            ..State::default()
        }
    }

    fn go(s: &State, q: &str) -> Outcome {
        let raw = RawRequest::parse(&format!("RegionId=r&{q}")).unwrap();
        revoke(s, &raw).unwrap()
    }

    fn revoked(o: &Outcome) -> Vec<&str> {
        o.revoked.iter().map(|r| r.id.as_str()).collect()
    }

    #[test]
    fn keys_default_nic_type_by_network() {
        let s = state();
        let v = rule_key(&s.rules[0], &s.groups[0]).unwrap();
        assert_eq!(v.nic, Nic::Intranet);
        let mut r = s.rules[2].clone();
        r.attrs.clear();
        assert_eq!(rule_key(&r, &s.groups[1]).unwrap().nic, Nic::Internet);
        r.priority = Priority(0);
        assert!(rule_key(&r, &s.groups[1]).is_err());
    }

    #[test]
    fn differences_ignore_priority_unless_given() {
        let s = state();
        let a = rule_key(&s.rules[0], &s.groups[0]).unwrap();
        let mut req = a.clone();
        req.priority = None;
        let mut other = a.clone();
        other.priority = Some(Priority(9));
        assert!(differences(&req, &other).is_empty());
        req.priority = Some(Priority(1));
        assert_eq!(differences(&req, &other), vec![Part::Priority]);
        req.policy = Action::Drop;
        assert_eq!(
            differences(&req, &other),
            vec![Part::Policy, Part::Priority]
        );
    }

    #[test]
    fn defaults_and_case_are_applied_before_matching() {
        let s = state();
        let bare = "Action=RevokeSecurityGroup&SecurityGroupId=sg-v&IpProtocol=TCP&PortRange=22/22&SourceCidrIp=10.0.0.0/8";
        assert_eq!(revoked(&go(&s, bare)), vec!["sgr-1"]);
        let drop = format!("{bare}&Policy=Drop");
        assert_eq!(revoked(&go(&s, &drop)), vec!["sgr-2"]);
        let classic = "Action=RevokeSecurityGroup&SecurityGroupId=sg-c&IpProtocol=tcp&PortRange=22/22&SourceCidrIp=10.0.0.0/8";
        let o = go(&s, classic);
        assert!(o.revoked.is_empty());
        assert!(o
            .warnings
            .iter()
            .any(|w| w.contains("NicType defaulted to internet")));
        assert_eq!(
            revoked(&go(&s, &format!("{classic}&NicType=Intranet"))),
            vec!["sgr-3"]
        );
    }

    #[test]
    fn ids_must_look_like_ids() {
        assert!(valid_id("sg-bp67acfmxazb4p****", "sg-"));
        assert!(valid_id("sgr-sgsim-0123abcd", "sgr-"));
        assert!(!valid_id("sg-", "sg-"));
        assert!(!valid_id("sg-a b", "sg-"));
        assert!(!valid_id("sgr-1", "sg-"));
    }

    #[test]
    fn validation_follows_the_documented_order() {
        let s = state();
        // Protocol is checked before the port range, the port range before the policy.
        let o = go(
            &s,
            "Action=RevokeSecurityGroup&SecurityGroupId=sg-v&IpProtocol=x&PortRange=y&Policy=z",
        );
        assert_eq!(o.error.unwrap().code, "InvalidIpProtocol.ValueNotSupported");
        let o = go(
            &s,
            "Action=RevokeSecurityGroup&SecurityGroupId=sg-v&IpProtocol=tcp&PortRange=y&Policy=z",
        );
        assert_eq!(o.error.unwrap().code, "InvalidParam.PortRange");
        // Form exclusivity is checked before any entry.
        let o = go(&s, "Action=RevokeSecurityGroup&SecurityGroupId=sg-v&IpProtocol=x&Permissions.1.IpProtocol=y");
        assert_eq!(o.error.unwrap().code, "InvalidParam.Permissions");
        // The group is checked before everything about rules.
        let o = go(
            &s,
            "Action=RevokeSecurityGroup&SecurityGroupId=sg-none&IpProtocol=x",
        );
        assert_eq!(o.error.unwrap().code, "InvalidSecurityGroupId.NotFound");
    }

    #[test]
    fn tokens_are_recorded_only_on_success() {
        let s = state();
        let ok = go(&s, "Action=RevokeSecurityGroup&SecurityGroupId=sg-v&ClientToken=abc&SecurityGroupRuleId.1=sgr-1");
        let rec = &ok.state.provider_state[TOKENS_KEY]["RevokeSecurityGroup:abc"];
        assert_eq!(rec["revoked"][0], "sgr-1");
        let failed = go(&s, "Action=RevokeSecurityGroup&SecurityGroupId=sg-v&ClientToken=abc&SecurityGroupRuleId.1=sgr-9");
        assert!(failed.error.is_some());
        assert!(!failed.state.provider_state.contains_key(TOKENS_KEY));
    }
}
