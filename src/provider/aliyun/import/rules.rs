//! `DescribeSecurityGroupAttribute`: a group's rules, one permission at a time.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::json::{items, object, text, Ctx};
use super::{group_entry, GroupInfo};
use crate::model::{Action, Cidr, Direction, Peer, PortRange, Priority, Rule};
use crate::provider::aliyun::values::{has_ports, port_pair, port_range, protocol};
use crate::provider::ImportError;

pub(super) fn attribute(
    ctx: &mut Ctx,
    o: &Map<String, Value>,
    at: &str,
    groups: &mut BTreeMap<String, GroupInfo>,
    rules: &mut Vec<Rule>,
    rule_ids: &mut BTreeSet<String>,
) -> Result<(), ImportError> {
    let Some(gid) = text(ctx, o, at, "SecurityGroupId")? else {
        return Err(ctx.err(format!("{at}SecurityGroupId"), "missing"));
    };
    let inner = match text(ctx, o, at, "InnerAccessPolicy")?.map(|t| t.to_ascii_lowercase()) {
        None => None,
        Some(t) if t == "accept" => Some(Action::Accept),
        Some(t) if t == "drop" => Some(Action::Drop),
        Some(t) => {
            return Err(ctx.err(
                format!("{at}InnerAccessPolicy"),
                format!("'{t}' is neither Accept nor Drop"),
            ))
        }
    };
    let vpc = text(ctx, o, at, "VpcId")?;
    let name = text(ctx, o, at, "SecurityGroupName")?;
    let description = text(ctx, o, at, "Description")?;
    let region = text(ctx, o, at, "RegionId")?;
    let classic = vpc.is_none();
    {
        let info = group_entry(groups, &gid);
        info.has_rules_doc = true;
        if info.vpc.is_none() {
            info.vpc = Some(vpc);
        }
        if inner.is_some() {
            info.inner = inner;
        }
        if info.name.is_none() {
            info.name = name;
        }
        if info.description.is_none() {
            info.description = description;
        }
        if let Some(r) = region {
            info.attrs.entry("RegionId".into()).or_insert(r);
        }
    }
    for (i, item) in items(ctx, o, at, "Permissions", "Permission")?
        .into_iter()
        .enumerate()
    {
        let pat = format!("{at}Permissions.Permission[{i}].");
        let p = object(ctx, item, &pat)?;
        let rule = permission(ctx, p, &pat, &gid, classic)?;
        if rule_ids.insert(rule.id.to_string()) {
            rules.push(rule);
        }
    }
    Ok(())
}

/// Attributes carried through unchanged on each rule.
const RULE_ATTRS: &[&str] = &[
    "NicType",
    "PortRangeListId",
    "PortRangeListName",
    "CreateTime",
    "SourceGroupName",
    "SourceGroupOwnerAccount",
    "SourcePrefixListName",
    "DestGroupName",
    "DestGroupOwnerAccount",
    "DestPrefixListName",
];

fn cidr_field(
    ctx: &mut Ctx,
    p: &Map<String, Value>,
    at: &str,
    key: &str,
) -> Result<Option<Cidr>, ImportError> {
    let Some(t) = text(ctx, p, at, key)? else {
        return Ok(None);
    };
    let (c, host_bits) =
        Cidr::parse_lenient(&t).map_err(|e| ctx.err(format!("{at}{key}"), e.to_string()))?;
    if host_bits {
        ctx.warn(format!("{at}{key} {t} has host bits set; read as {c}"));
    }
    Ok(Some(c))
}

fn permission(
    ctx: &mut Ctx,
    p: &Map<String, Value>,
    at: &str,
    group: &str,
    classic: bool,
) -> Result<Rule, ImportError> {
    let direction = match text(ctx, p, at, "Direction")?.map(|t| t.to_ascii_lowercase()) {
        Some(t) if t == "ingress" => Direction::Ingress,
        Some(t) if t == "egress" => Direction::Egress,
        Some(t) => {
            return Err(ctx.err(
                format!("{at}Direction"),
                format!("'{t}' is neither ingress nor egress"),
            ))
        }
        None => return Err(ctx.err(format!("{at}Direction"), "missing")),
    };
    let action = match text(ctx, p, at, "Policy")?.map(|t| t.to_ascii_lowercase()) {
        None => Action::Accept,
        Some(t) if t == "accept" => Action::Accept,
        Some(t) if t == "drop" => Action::Drop,
        Some(t) => {
            return Err(ctx.err(
                format!("{at}Policy"),
                format!("'{t}' is neither Accept nor Drop"),
            ))
        }
    };
    let priority = match text(ctx, p, at, "Priority")? {
        None => 1,
        Some(t) => t
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| {
                ctx.err(
                    format!("{at}Priority"),
                    format!("'{t}' is not a priority 1..100"),
                )
            })?,
    };
    let Some(proto_text) = text(ctx, p, at, "IpProtocol")? else {
        return Err(ctx.err(format!("{at}IpProtocol"), "missing"));
    };
    let protocol = protocol(&proto_text).ok_or_else(|| {
        ctx.err(
            format!("{at}IpProtocol"),
            format!("'{proto_text}' is not one of TCP, UDP, ICMP, ICMPv6, GRE, ALL"),
        )
    })?;
    let range = |ctx: &Ctx, key: &str| -> Result<PortRange, ImportError> {
        match text(ctx, p, at, key)? {
            None => Ok(PortRange::ANY),
            Some(t) => {
                let pair = port_pair(&t).ok_or_else(|| {
                    ctx.err(
                        format!("{at}{key}"),
                        format!("'{t}' is not a port range a/b"),
                    )
                })?;
                if !has_ports(protocol) {
                    return Ok(PortRange::ANY);
                }
                port_range(pair).ok_or_else(|| {
                    ctx.err(
                        format!("{at}{key}"),
                        format!("'{t}' is not a port range for {proto_text}"),
                    )
                })
            }
        }
    };
    let dst_ports = range(ctx, "PortRange")?;
    let src_ports = range(ctx, "SourcePortRange")?;
    let port_list = text(ctx, p, at, "PortRangeListId")?;
    let (peer_side, local_side) = match direction {
        Direction::Ingress => ("Source", "Dest"),
        Direction::Egress => ("Dest", "Source"),
    };
    let peer_v4 = cidr_field(ctx, p, at, &format!("{peer_side}CidrIp"))?;
    let peer_v6 = cidr_field(ctx, p, at, &format!("Ipv6{peer_side}CidrIp"))?;
    let peer_group = text(ctx, p, at, &format!("{peer_side}GroupId"))?;
    let owner = text(ctx, p, at, &format!("{peer_side}GroupOwnerAccount"))?;
    let peer_list = text(ctx, p, at, &format!("{peer_side}PrefixListId"))?;
    let remote = if let Some(c) = peer_v4.or(peer_v6) {
        Peer::cidr(c)
    } else if let Some(g) = peer_group {
        Peer::Group {
            group_id: g.into(),
            owner,
        }
    } else if let Some(l) = peer_list {
        Peer::PrefixList {
            prefix_list_id: l.into(),
        }
    } else {
        return Err(ctx.err(
            at.trim_end_matches('.').to_string(),
            format!("no {} (none of {peer_side}CidrIp, Ipv6{peer_side}CidrIp, {peer_side}GroupId, {peer_side}PrefixListId)", if direction == Direction::Ingress { "source" } else { "destination" }),
        ));
    };
    let local = cidr_field(ctx, p, at, &format!("{local_side}CidrIp"))?
        .or(cidr_field(ctx, p, at, &format!("Ipv6{local_side}CidrIp"))?)
        .filter(|c| !c.is_any());
    let mut attrs = BTreeMap::new();
    for key in RULE_ATTRS {
        if let Some(v) = text(ctx, p, at, key)? {
            attrs.insert((*key).to_string(), v);
        }
    }
    if let Some(l) = &port_list {
        if p.get("PortRange")
            .and_then(Value::as_str)
            .is_none_or(|s| s.is_empty() || s == "-1/-1")
        {
            ctx.warn(format!("{at}PortRangeListId: rule uses port list {l}; its ports are unknown to sgsim and taken as any"));
        }
    }
    if classic && !attrs.contains_key("NicType") {
        attrs.insert("NicType".into(), "internet".into());
    }
    let id = match text(ctx, p, at, "SecurityGroupRuleId")? {
        Some(id) => id,
        None => {
            let seed = format!("{group}|{direction}|{action}|{priority}|{protocol}|{dst_ports}|{src_ports}|{remote}|{local:?}|{attrs:?}");
            let hex: String = crate::provider::request_id(&seed)
                .chars()
                .filter(char::is_ascii_hexdigit)
                .take(16)
                .collect();
            let id = format!("sgr-sgsim-{}", hex.to_ascii_lowercase());
            ctx.warn(format!("{at}: no SecurityGroupRuleId; assigned {id}"));
            id
        }
    };
    let rule = Rule {
        id: id.into(),
        group: group.into(),
        direction,
        action,
        priority: Priority(priority),
        protocol,
        src_ports,
        dst_ports,
        remote,
        local,
        description: text(ctx, p, at, "Description")?,
        attrs,
    };
    rule.validate()
        .map_err(|e| ctx.err(at.trim_end_matches('.').to_string(), e.to_string()))?;
    Ok(rule)
}
