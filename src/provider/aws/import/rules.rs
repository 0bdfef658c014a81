//! Groups and their permissions (`describe-security-groups`) and rules by ID
//! (`describe-security-group-rules`), as atomic rules.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::json::{join, File};
use super::{Acc, GroupRec};
use crate::model::{
    Action, Direction, Family, GroupId, GroupKind, IcmpSel, Peer, PortRange, Priority, Protocol,
    Provider, Rule, SecurityGroup,
};
use crate::provider::aws::values::{parse_protocol, uses_ports};
use crate::provider::ImportError;

pub(super) fn read_group(
    file: &File,
    g: &Value,
    path: &str,
    acc: &mut Acc,
) -> Result<(), ImportError> {
    let o = file.object(g, path)?;
    let id: GroupId = file.req_str(o, "GroupId", path)?.into();
    let mut attrs = BTreeMap::new();
    if let Some(arn) = file.opt_str(o, "SecurityGroupArn", path)? {
        attrs.insert("SecurityGroupArn".to_string(), arn.to_string());
    }
    if let Some(tags) = o.get("Tags").filter(|t| !t.is_null()) {
        attrs.insert("Tags".to_string(), tags.to_string());
    }
    let group = SecurityGroup {
        id: id.clone(),
        provider: Provider::Aws,
        name: file.opt_str(o, "GroupName", path)?.map(str::to_string),
        description: file.opt_str(o, "Description", path)?.map(str::to_string),
        kind: GroupKind::Basic,
        inner_access: Action::Accept,
        vpc: file
            .opt_str(o, "VpcId", path)?
            .filter(|v| !v.is_empty())
            .map(Into::into),
        owner: file.opt_str(o, "OwnerId", path)?.map(str::to_string),
        attrs,
    };
    let mut rules = Vec::new();
    for (key, direction) in [
        ("IpPermissions", Direction::Ingress),
        ("IpPermissionsEgress", Direction::Egress),
    ] {
        for (j, p) in file.array(o, key, path)?.iter().enumerate() {
            let ppath = format!("{path}.{key}[{j}]");
            read_permission(
                file,
                p,
                &ppath,
                &id,
                direction,
                &mut rules,
                &mut acc.warnings,
            )?;
        }
    }
    let rec = GroupRec {
        group,
        described: true,
        rules,
    };
    match acc.group_index.get(&id) {
        Some(&i) => acc.groups[i] = rec,
        None => {
            acc.group_index.insert(id, acc.groups.len());
            acc.groups.push(rec);
        }
    }
    Ok(())
}

/// Protocol and port selectors of a rule, from `IpProtocol`, `FromPort`, `ToPort`.
fn selectors(
    file: &File,
    o: &Map<String, Value>,
    path: &str,
) -> Result<(Protocol, PortRange, PortRange), ImportError> {
    let proto_field = join(path, "IpProtocol");
    let protocol = match o.get("IpProtocol") {
        Some(Value::String(s)) => parse_protocol(s, true),
        Some(Value::Number(n)) => n
            .as_i64()
            .and_then(|n| parse_protocol(&n.to_string(), true)),
        None | Some(Value::Null) => return Err(file.err(&proto_field, "missing")),
        Some(_) => None,
    }
    .ok_or_else(|| {
        file.err(
            &proto_field,
            format!(
                "'{}' is not a protocol (expected -1, tcp, udp, icmp, icmpv6 or 0-255)",
                o.get("IpProtocol")
                    .map(Value::to_string)
                    .unwrap_or_default()
            ),
        )
    })?;
    let from = file.opt_int(o, "FromPort", path)?;
    let to = file.opt_int(o, "ToPort", path)?;
    if !uses_ports(protocol) {
        return Ok((protocol, PortRange::ANY, PortRange::ANY));
    }
    if protocol.is_icmp() {
        let sel = |v: Option<i64>, key: &str| -> Result<Option<u8>, ImportError> {
            match v {
                None | Some(-1) => Ok(None),
                Some(n) => u8::try_from(n).map(Some).map_err(|_| {
                    file.err(
                        &join(path, key),
                        format!("{n} is not an ICMP type/code (-1 or 0-255)"),
                    )
                }),
            }
        };
        let icmp = IcmpSel {
            ty: sel(from, "FromPort")?,
            code: sel(to, "ToPort")?,
        };
        let (t, c) = icmp.ranges();
        return Ok((protocol, t, c));
    }
    let port = |v: Option<i64>, key: &str| -> Result<u16, ImportError> {
        let v =
            v.ok_or_else(|| file.err(&join(path, key), "missing (TCP/UDP rules need ports)"))?;
        u16::try_from(v)
            .map_err(|_| file.err(&join(path, key), format!("{v} is not a port (0-65535)")))
    };
    let (lo, hi) = (port(from, "FromPort")?, port(to, "ToPort")?);
    let range =
        PortRange::new(lo, hi).map_err(|e| file.err(&join(path, "ToPort"), e.to_string()))?;
    Ok((protocol, PortRange::ANY, range))
}

#[allow(clippy::too_many_arguments)]
fn new_rule(
    id: &str,
    group: &GroupId,
    direction: Direction,
    sel: (Protocol, PortRange, PortRange),
    remote: Peer,
    description: Option<&str>,
    attrs: BTreeMap<String, String>,
) -> Rule {
    Rule {
        id: id.into(),
        group: group.clone(),
        direction,
        action: Action::Accept,
        priority: Priority(0),
        protocol: sel.0,
        src_ports: sel.1,
        dst_ports: sel.2,
        remote,
        local: None,
        description: description.filter(|d| !d.is_empty()).map(str::to_string),
        attrs,
    }
}

/// Expands one grouped `IpPermission` into atomic rules (IDs still empty).
fn read_permission(
    file: &File,
    p: &Value,
    path: &str,
    group: &GroupId,
    direction: Direction,
    out: &mut Vec<Rule>,
    warnings: &mut Vec<String>,
) -> Result<(), ImportError> {
    let o = file.object(p, path)?;
    let sel = selectors(file, o, path)?;
    for (key, cidr_key, family) in [
        ("IpRanges", "CidrIp", Family::V4),
        ("Ipv6Ranges", "CidrIpv6", Family::V6),
    ] {
        for (k, r) in file.array(o, key, path)?.iter().enumerate() {
            let rpath = format!("{path}.{key}[{k}]");
            let ro = file.object(r, &rpath)?;
            let text = file.req_str(ro, cidr_key, &rpath)?;
            let cidr = file.cidr(text, Some(family), &join(&rpath, cidr_key), warnings)?;
            let mut attrs = BTreeMap::new();
            if cidr.to_string() != text {
                attrs.insert("OriginalCidr".to_string(), text.to_string());
            }
            let desc = file.opt_str(ro, "Description", &rpath)?;
            out.push(new_rule(
                "",
                group,
                direction,
                sel,
                Peer::cidr(cidr),
                desc,
                attrs,
            ));
        }
    }
    for (k, r) in file.array(o, "PrefixListIds", path)?.iter().enumerate() {
        let rpath = format!("{path}.PrefixListIds[{k}]");
        let ro = file.object(r, &rpath)?;
        let id = file.req_str(ro, "PrefixListId", &rpath)?;
        let desc = file.opt_str(ro, "Description", &rpath)?;
        let peer = Peer::PrefixList {
            prefix_list_id: id.into(),
        };
        out.push(new_rule(
            "",
            group,
            direction,
            sel,
            peer,
            desc,
            BTreeMap::new(),
        ));
    }
    for (k, r) in file.array(o, "UserIdGroupPairs", path)?.iter().enumerate() {
        let rpath = format!("{path}.UserIdGroupPairs[{k}]");
        let ro = file.object(r, &rpath)?;
        let id = file.req_str(ro, "GroupId", &rpath)?;
        let mut attrs = BTreeMap::new();
        for key in [
            "GroupName",
            "VpcId",
            "VpcPeeringConnectionId",
            "PeeringStatus",
        ] {
            if let Some(v) = file.opt_str(ro, key, &rpath)? {
                attrs.insert(key.to_string(), v.to_string());
            }
        }
        let peer = Peer::Group {
            group_id: id.into(),
            owner: file.opt_str(ro, "UserId", &rpath)?.map(str::to_string),
        };
        let desc = file.opt_str(ro, "Description", &rpath)?;
        out.push(new_rule("", group, direction, sel, peer, desc, attrs));
    }
    Ok(())
}

/// One `describe-security-group-rules` entry.
pub(super) fn read_rule(
    file: &File,
    r: &Value,
    path: &str,
    acc: &mut Acc,
) -> Result<(), ImportError> {
    let o = file.object(r, path)?;
    let id = file.req_str(o, "SecurityGroupRuleId", path)?;
    let group: GroupId = file.req_str(o, "GroupId", path)?.into();
    let owner = file.opt_str(o, "GroupOwnerId", path)?;
    let direction = match file.opt_bool(o, "IsEgress", path)? {
        Some(true) => Direction::Egress,
        Some(false) => Direction::Ingress,
        None => return Err(file.err(&join(path, "IsEgress"), "missing")),
    };
    let sel = selectors(file, o, path)?;
    let mut attrs = BTreeMap::new();
    if let Some(owner) = owner {
        attrs.insert("GroupOwnerId".to_string(), owner.to_string());
    }
    if let Some(arn) = file.opt_str(o, "SecurityGroupRuleArn", path)? {
        attrs.insert("SecurityGroupRuleArn".to_string(), arn.to_string());
    }
    if let Some(tags) = o
        .get("Tags")
        .filter(|t| t.as_array().is_some_and(|a| !a.is_empty()))
    {
        attrs.insert("Tags".to_string(), tags.to_string());
    }
    let mut peers = Vec::new();
    for (key, family) in [("CidrIpv4", Family::V4), ("CidrIpv6", Family::V6)] {
        if let Some(text) = file.opt_str(o, key, path)? {
            let cidr = file.cidr(text, Some(family), &join(path, key), &mut acc.warnings)?;
            if cidr.to_string() != text {
                attrs.insert("OriginalCidr".to_string(), text.to_string());
            }
            peers.push(Peer::cidr(cidr));
        }
    }
    if let Some(pl) = file.opt_str(o, "PrefixListId", path)? {
        peers.push(Peer::PrefixList {
            prefix_list_id: pl.into(),
        });
    }
    if let Some(v) = o.get("ReferencedGroupInfo").filter(|v| !v.is_null()) {
        let gpath = join(path, "ReferencedGroupInfo");
        let go = file.object(v, &gpath)?;
        for key in ["VpcId", "VpcPeeringConnectionId", "PeeringStatus"] {
            if let Some(v) = file.opt_str(go, key, &gpath)? {
                attrs.insert(key.to_string(), v.to_string());
            }
        }
        peers.push(Peer::Group {
            group_id: file.req_str(go, "GroupId", &gpath)?.into(),
            owner: file.opt_str(go, "UserId", &gpath)?.map(str::to_string),
        });
    }
    if peers.len() != 1 {
        return Err(file.err(
            path,
            format!(
                "expected exactly one of CidrIpv4, CidrIpv6, PrefixListId, ReferencedGroupInfo; found {}",
                peers.len()
            ),
        ));
    }
    let peer = peers.remove(0);
    let desc = file.opt_str(o, "Description", path)?;
    let rule = new_rule(id, &group, direction, sel, peer, desc, attrs);
    match acc.id_index.get(id) {
        Some(&i) if acc.id_rules[i] == rule => {}
        Some(_) => {
            return Err(file.err(
                &join(path, "SecurityGroupRuleId"),
                format!("rule ID '{id}' appears twice with different contents"),
            ))
        }
        None => {
            acc.id_index.insert(id.to_string(), acc.id_rules.len());
            acc.id_rules.push(rule);
        }
    }
    if !acc.group_index.contains_key(&group) {
        acc.group_index.insert(group.clone(), acc.groups.len());
        acc.groups.push(GroupRec {
            group: SecurityGroup {
                id: group,
                provider: Provider::Aws,
                name: None,
                description: None,
                kind: GroupKind::Basic,
                inner_access: Action::Accept,
                vpc: None,
                owner: owner.map(str::to_string),
                attrs: BTreeMap::new(),
            },
            described: false,
            rules: Vec::new(),
        });
    }
    Ok(())
}
