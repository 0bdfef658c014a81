//! Alibaba ECS exports → [`State`]: `DescribeSecurityGroupAttribute` (rules),
//! `DescribeSecurityGroups` (group type, network, managed flag), `DescribeNetworkInterfaces`
//! (ENIs) and `DescribePrefixLists` / `DescribePrefixListAttributes` (prefix lists).
//!
//! Alibaba returns empty strings for unset fields; they count as absent. A single
//! object where a list is expected (what XML-to-JSON converters make of a one-item list) is
//! read as a list of one.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde_json::{Map, Value};

use super::values::{has_ports, port_pair, port_range, protocol};
use crate::model::{
    Action, Cidr, Direction, Eni, GroupId, GroupKind, Peer, PortRange, PrefixList, Priority,
    Provider, Rule, SecurityGroup, State, Vpc, VpcId,
};
use crate::provider::{ImportError, Imported};

/// Which export a JSON object is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// `DescribeSecurityGroupAttribute`.
    Attribute,
    /// `DescribeSecurityGroups`.
    Groups,
    /// `DescribeNetworkInterfaces`.
    Interfaces,
    /// `DescribePrefixLists`.
    PrefixLists,
    /// `DescribePrefixListAttributes`.
    PrefixListAttributes,
}

/// The export kind of one JSON object, by shape.
pub(super) fn kind(value: &Value) -> Option<Kind> {
    let o = value.as_object()?;
    let wrapped = |key: &str, inner: &str| {
        o.get(key)
            .and_then(Value::as_object)
            .is_some_and(|w| w.contains_key(inner) || w.is_empty())
    };
    if o.contains_key("SecurityGroupId") && (wrapped("Permissions", "Permission")) {
        Some(Kind::Attribute)
    } else if wrapped("SecurityGroups", "SecurityGroup") {
        Some(Kind::Groups)
    } else if wrapped("NetworkInterfaceSets", "NetworkInterfaceSet") {
        Some(Kind::Interfaces)
    } else if wrapped("PrefixLists", "PrefixList") {
        Some(Kind::PrefixLists)
    } else if o.contains_key("PrefixListId") && wrapped("Entries", "Entry") {
        Some(Kind::PrefixListAttributes)
    } else {
        None
    }
}

/// Whether a document is an Alibaba export: one of the shapes above, or a list of them.
pub(super) fn recognises(value: &Value) -> bool {
    match value {
        Value::Array(items) => !items.is_empty() && items.iter().all(|v| kind(v).is_some()),
        v => kind(v).is_some(),
    }
}

/// A group as the exports describe it, before merging.
#[derive(Default)]
struct GroupInfo {
    name: Option<String>,
    description: Option<String>,
    vpc: Option<Option<String>>,
    kind: Option<GroupKind>,
    inner: Option<Action>,
    attrs: BTreeMap<String, String>,
    has_rules_doc: bool,
    order: usize,
}

struct Ctx<'a> {
    path: &'a str,
    warnings: Vec<String>,
}

impl Ctx<'_> {
    fn err(&self, field: impl Into<String>, why: impl Into<String>) -> ImportError {
        ImportError::Field {
            path: self.path.to_string(),
            field: field.into(),
            why: why.into(),
        }
    }

    fn warn(&mut self, what: String) {
        self.warnings.push(format!("{}: {what}", self.path));
    }
}

/// A string field: absent, null and `""` are `None`; numbers and booleans are read as text.
fn text(
    ctx: &Ctx,
    o: &Map<String, Value>,
    at: &str,
    key: &str,
) -> Result<Option<String>, ImportError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(Value::Bool(b)) => Ok(Some(b.to_string())),
        Some(_) => Err(ctx.err(format!("{at}{key}"), "expected a string")),
    }
}

/// The items of an XML-style wrapper `{"Inner": [...]}` (or `{"Inner": {...}}` for one item).
fn items<'v>(
    ctx: &Ctx,
    o: &'v Map<String, Value>,
    at: &str,
    outer: &str,
    inner: &str,
) -> Result<Vec<&'v Value>, ImportError> {
    let wrapper = match o.get(outer) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(s)) if s.is_empty() => return Ok(Vec::new()),
        Some(Value::Array(a)) if a.is_empty() => return Ok(Vec::new()),
        Some(Value::Object(w)) => w,
        Some(_) => {
            return Err(ctx.err(
                format!("{at}{outer}"),
                format!("expected an object {{\"{inner}\": [...]}}"),
            ))
        }
    };
    match wrapper.get(inner) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => Ok(a.iter().collect()),
        Some(v @ (Value::Object(_) | Value::String(_))) => Ok(vec![v]),
        Some(_) => Err(ctx.err(format!("{at}{outer}.{inner}"), "expected a list")),
    }
}

fn object<'v>(ctx: &Ctx, v: &'v Value, at: &str) -> Result<&'v Map<String, Value>, ImportError> {
    v.as_object()
        .ok_or_else(|| ctx.err(at.to_string(), "expected an object"))
}

fn boolean(
    ctx: &Ctx,
    o: &Map<String, Value>,
    at: &str,
    key: &str,
) -> Result<Option<bool>, ImportError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(_) => Err(ctx.err(format!("{at}{key}"), "expected true or false")),
    }
}

/// ENIs in the order last described: a later description of an ENI replaces the earlier
/// one and moves to the end (indexed by ID, so a fleet loads in linear time).
#[derive(Default)]
struct Enis {
    slots: Vec<Option<Eni>>,
    index: std::collections::HashMap<crate::model::EniId, usize>,
}

impl Enis {
    fn push(&mut self, eni: Eni) {
        if let Some(old) = self.index.insert(eni.id.clone(), self.slots.len()) {
            self.slots[old] = None;
        }
        self.slots.push(Some(eni));
    }

    fn into_vec(self) -> Vec<Eni> {
        self.slots.into_iter().flatten().collect()
    }
}

/// Imports Alibaba export documents into one state.
pub(super) fn import(docs: &[(String, Value)]) -> Result<Imported, ImportError> {
    let mut groups: BTreeMap<String, GroupInfo> = BTreeMap::new();
    let mut rules: Vec<Rule> = Vec::new();
    let mut rule_ids: BTreeSet<String> = BTreeSet::new();
    let mut enis = Enis::default();
    let mut lists: BTreeMap<String, (usize, PrefixList, bool)> = BTreeMap::new();
    let mut warnings = Vec::new();
    for (path, doc) in docs {
        let mut ctx = Ctx {
            path,
            warnings: Vec::new(),
        };
        let parts: Vec<(String, &Value)> = match doc {
            Value::Array(a) => a
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("[{i}]."), v))
                .collect(),
            v => vec![(String::new(), v)],
        };
        for (at, v) in parts {
            let Some(o) = v.as_object() else {
                return Err(ImportError::Unrecognised { path: path.clone() });
            };
            match kind(v) {
                Some(Kind::Attribute) => {
                    attribute(&mut ctx, o, &at, &mut groups, &mut rules, &mut rule_ids)?
                }
                Some(Kind::Groups) => describe_groups(&mut ctx, o, &at, &mut groups)?,
                Some(Kind::Interfaces) => interfaces(&mut ctx, o, &at, &mut enis)?,
                Some(Kind::PrefixLists) => {
                    for (i, item) in items(&ctx, o, &at, "PrefixLists", "PrefixList")?
                        .into_iter()
                        .enumerate()
                    {
                        let at = format!("{at}PrefixLists.PrefixList[{i}].");
                        let p = object(&ctx, item, &at)?;
                        let Some(id) = text(&ctx, p, &at, "PrefixListId")? else {
                            return Err(ctx.err(format!("{at}PrefixListId"), "missing"));
                        };
                        let n = lists.len();
                        let entry = lists.entry(id.clone()).or_insert_with(|| {
                            (
                                n,
                                PrefixList {
                                    id: id.as_str().into(),
                                    name: None,
                                    entries: Vec::new(),
                                },
                                false,
                            )
                        });
                        if let Some(name) = text(&ctx, p, &at, "PrefixListName")? {
                            entry.1.name = Some(name);
                        }
                    }
                }
                Some(Kind::PrefixListAttributes) => {
                    let Some(id) = text(&ctx, o, &at, "PrefixListId")? else {
                        return Err(ctx.err(format!("{at}PrefixListId"), "missing"));
                    };
                    let mut entries = Vec::new();
                    for (i, item) in items(&ctx, o, &at, "Entries", "Entry")?
                        .into_iter()
                        .enumerate()
                    {
                        let eat = format!("{at}Entries.Entry[{i}].");
                        let e = object(&ctx, item, &eat)?;
                        let Some(c) = text(&ctx, e, &eat, "Cidr")? else {
                            return Err(ctx.err(format!("{eat}Cidr"), "missing"));
                        };
                        let (cidr, host_bits) = Cidr::parse_lenient(&c)
                            .map_err(|e| ctx.err(format!("{eat}Cidr"), e.to_string()))?;
                        if host_bits {
                            ctx.warn(format!("{eat}Cidr {c} has host bits set; read as {cidr}"));
                        }
                        entries.push(cidr);
                    }
                    let n = lists.len();
                    let entry = lists.entry(id.clone()).or_insert_with(|| {
                        (
                            n,
                            PrefixList {
                                id: id.as_str().into(),
                                name: None,
                                entries: Vec::new(),
                            },
                            false,
                        )
                    });
                    if let Some(name) = text(&ctx, o, &at, "PrefixListName")? {
                        entry.1.name = Some(name);
                    }
                    entry.1.entries = entries;
                    entry.2 = true;
                }
                None => return Err(ImportError::Unrecognised { path: path.clone() }),
            }
        }
        warnings.append(&mut ctx.warnings);
    }

    let mut state = State::default();
    let mut ordered: Vec<(&String, &GroupInfo)> = groups.iter().collect();
    ordered.sort_by_key(|(_, g)| g.order);
    let mut vpcs: BTreeSet<String> = BTreeSet::new();
    for (id, info) in ordered {
        if !info.has_rules_doc {
            warnings.push(format!(
                "group {id}: no DescribeSecurityGroupAttribute export; its rules are unknown and taken as none"
            ));
        }
        let vpc = info.vpc.clone().flatten();
        if let Some(v) = &vpc {
            vpcs.insert(v.clone());
        }
        let kind = info.kind.unwrap_or_default();
        state.groups.push(SecurityGroup {
            id: id.as_str().into(),
            provider: Provider::Aliyun,
            name: info.name.clone(),
            description: info.description.clone(),
            kind,
            inner_access: if kind == GroupKind::Enterprise {
                Action::Drop
            } else {
                info.inner.unwrap_or(Action::Accept)
            },
            vpc: vpc.map(VpcId::from),
            owner: None,
            attrs: info.attrs.clone(),
        });
    }
    let enis = enis.into_vec();
    for eni in &enis {
        if let Some(v) = &eni.vpc {
            vpcs.insert(v.to_string());
        }
        for g in &eni.groups {
            if !groups.contains_key(g.as_str()) {
                warnings.push(format!(
                    "ENI {} is in group {g}, which no export describes",
                    eni.id
                ));
            }
        }
    }
    let known_lists: BTreeSet<&String> = lists.keys().collect();
    for r in &rules {
        if let Peer::PrefixList { prefix_list_id } = &r.remote {
            if !known_lists.contains(&prefix_list_id.to_string()) {
                warnings.push(format!(
                    "rule {} references prefix list {prefix_list_id}, which no export describes; where it would decide, verdicts are unknown",
                    r.id
                ));
            }
        }
    }
    let mut ordered_lists: Vec<(usize, PrefixList, bool)> = lists.into_values().collect();
    ordered_lists.sort_by_key(|(n, _, _)| *n);
    for (_, list, has_entries) in ordered_lists {
        if !has_entries {
            warnings.push(format!(
                "prefix list {}: no DescribePrefixListAttributes export; its entries are unknown and taken as none",
                list.id
            ));
        }
        state.prefix_lists.push(list);
    }
    state.rules = rules;
    state.enis = enis;
    state.vpcs = vpcs
        .into_iter()
        .map(|v| Vpc {
            id: v.into(),
            is_default: false,
        })
        .collect();
    Ok(Imported { state, warnings })
}

fn group_entry<'g>(groups: &'g mut BTreeMap<String, GroupInfo>, id: &str) -> &'g mut GroupInfo {
    let n = groups.len();
    groups.entry(id.to_string()).or_insert_with(|| GroupInfo {
        order: n,
        ..GroupInfo::default()
    })
}

fn describe_groups(
    ctx: &mut Ctx,
    o: &Map<String, Value>,
    at: &str,
    groups: &mut BTreeMap<String, GroupInfo>,
) -> Result<(), ImportError> {
    let region = text(ctx, o, at, "RegionId")?;
    for (i, item) in items(ctx, o, at, "SecurityGroups", "SecurityGroup")?
        .into_iter()
        .enumerate()
    {
        let gat = format!("{at}SecurityGroups.SecurityGroup[{i}].");
        let g = object(ctx, item, &gat)?;
        let Some(id) = text(ctx, g, &gat, "SecurityGroupId")? else {
            return Err(ctx.err(format!("{gat}SecurityGroupId"), "missing"));
        };
        let kind = match text(ctx, g, &gat, "SecurityGroupType")?.map(|t| t.to_ascii_lowercase()) {
            None => GroupKind::Basic,
            Some(t) if t == "normal" => GroupKind::Basic,
            Some(t) if t == "enterprise" => GroupKind::Enterprise,
            Some(t) => {
                return Err(ctx.err(
                    format!("{gat}SecurityGroupType"),
                    format!("'{t}' is neither normal nor enterprise"),
                ))
            }
        };
        let vpc = text(ctx, g, &gat, "VpcId")?;
        let managed = boolean(ctx, g, &gat, "ServiceManaged")?;
        let name = text(ctx, g, &gat, "SecurityGroupName")?;
        let description = text(ctx, g, &gat, "Description")?;
        let mut attrs = Vec::new();
        for key in ["CreationTime", "ResourceGroupId"] {
            if let Some(v) = text(ctx, g, &gat, key)? {
                attrs.push((key.to_string(), v));
            }
        }
        let info = group_entry(groups, &id);
        if let (Some(Some(old)), new) = (&info.vpc, &vpc) {
            if Some(old) != new.as_ref() {
                ctx.warn(format!(
                    "{gat}VpcId: group {id} is in {} here but in {old} in another export; using this one",
                    new.as_deref().unwrap_or("the classic network")
                ));
            }
        }
        info.vpc = Some(vpc);
        info.kind = Some(kind);
        if name.is_some() {
            info.name = name;
        }
        if description.is_some() {
            info.description = description;
        }
        if let Some(m) = managed {
            info.attrs.insert("ServiceManaged".into(), m.to_string());
        }
        if let Some(r) = &region {
            info.attrs.insert("RegionId".into(), r.clone());
        }
        info.attrs.extend(attrs);
    }
    Ok(())
}

fn interfaces(
    ctx: &mut Ctx,
    o: &Map<String, Value>,
    at: &str,
    enis: &mut Enis,
) -> Result<(), ImportError> {
    for (i, item) in items(ctx, o, at, "NetworkInterfaceSets", "NetworkInterfaceSet")?
        .into_iter()
        .enumerate()
    {
        let eat = format!("{at}NetworkInterfaceSets.NetworkInterfaceSet[{i}].");
        let e = object(ctx, item, &eat)?;
        let Some(id) = text(ctx, e, &eat, "NetworkInterfaceId")? else {
            return Err(ctx.err(format!("{eat}NetworkInterfaceId"), "missing"));
        };
        let addr = |ctx: &Ctx, field: String, t: &str| -> Result<IpAddr, ImportError> {
            t.parse::<IpAddr>()
                .map_err(|_| ctx.err(field, format!("'{t}' is not an IP address")))
        };
        let mut ips: Vec<IpAddr> = Vec::new();
        let mut public: Vec<IpAddr> = Vec::new();
        let push = |list: &mut Vec<IpAddr>, a: IpAddr| {
            if !list.contains(&a) {
                list.push(a);
            }
        };
        if let Some(p) = text(ctx, e, &eat, "PrivateIpAddress")? {
            push(&mut ips, addr(ctx, format!("{eat}PrivateIpAddress"), &p)?);
        }
        for (j, s) in items(ctx, e, &eat, "PrivateIpSets", "PrivateIpSet")?
            .into_iter()
            .enumerate()
        {
            let sat = format!("{eat}PrivateIpSets.PrivateIpSet[{j}].");
            let s = object(ctx, s, &sat)?;
            if let Some(p) = text(ctx, s, &sat, "PrivateIpAddress")? {
                push(&mut ips, addr(ctx, format!("{sat}PrivateIpAddress"), &p)?);
            }
            if let Some(Value::Object(eip)) = s.get("AssociatedPublicIp") {
                let pat = format!("{sat}AssociatedPublicIp.");
                if let Some(p) = text(ctx, eip, &pat, "PublicIpAddress")? {
                    push(&mut public, addr(ctx, format!("{pat}PublicIpAddress"), &p)?);
                }
            }
        }
        for (j, s) in items(ctx, e, &eat, "Ipv6Sets", "Ipv6Set")?
            .into_iter()
            .enumerate()
        {
            let sat = format!("{eat}Ipv6Sets.Ipv6Set[{j}].");
            let s = object(ctx, s, &sat)?;
            if let Some(p) = text(ctx, s, &sat, "Ipv6Address")? {
                push(&mut ips, addr(ctx, format!("{sat}Ipv6Address"), &p)?);
            }
        }
        if let Some(Value::Object(eip)) = e.get("AssociatedPublicIp") {
            let pat = format!("{eat}AssociatedPublicIp.");
            if let Some(p) = text(ctx, eip, &pat, "PublicIpAddress")? {
                push(&mut public, addr(ctx, format!("{pat}PublicIpAddress"), &p)?);
            }
        }
        let mut groups: Vec<GroupId> = Vec::new();
        for (j, g) in items(ctx, e, &eat, "SecurityGroupIds", "SecurityGroupId")?
            .into_iter()
            .enumerate()
        {
            let g = g.as_str().filter(|s| !s.is_empty()).ok_or_else(|| {
                ctx.err(
                    format!("{eat}SecurityGroupIds.SecurityGroupId[{j}]"),
                    "expected a group ID",
                )
            })?;
            if !groups.iter().any(|x| x.as_str() == g) {
                groups.push(g.into());
            }
        }
        let mut attrs = BTreeMap::new();
        for key in [
            "InstanceId",
            "Type",
            "Status",
            "NetworkInterfaceName",
            "VSwitchId",
            "ZoneId",
            "MacAddress",
            "OwnerId",
        ] {
            if let Some(v) = text(ctx, e, &eat, key)? {
                attrs.insert(key.to_string(), v);
            }
        }
        if ips.is_empty() {
            ctx.warn(format!("{eat}: ENI {id} has no private IP address"));
        }
        let vpc = text(ctx, e, &eat, "VpcId")?;
        enis.push(Eni {
            id: id.as_str().into(),
            ips,
            public_ips: public,
            groups,
            vpc: vpc.map(VpcId::from),
            attrs,
        });
    }
    Ok(())
}

fn attribute(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Protocol;
    use serde_json::json;

    fn one(v: Value) -> Result<Imported, ImportError> {
        import(&[("x.json".to_string(), v)])
    }

    #[test]
    fn reads_an_attribute_export_with_empty_strings_and_string_priorities() {
        let got = one(json!({
            "SecurityGroupId": "sg-a", "VpcId": "vpc-1", "InnerAccessPolicy": "Drop", "RegionId": "cn-hangzhou",
            "Permissions": {"Permission": [
                {"SecurityGroupRuleId": "sgr-1", "Direction": "ingress", "Policy": "Drop", "Priority": "7",
                 "IpProtocol": "TCP", "PortRange": "22/22", "SourceCidrIp": "10.0.0.0/8", "DestCidrIp": "0.0.0.0/0",
                 "SourceGroupId": "", "Ipv6SourceCidrIp": "", "NicType": "intranet", "Description": ""},
                {"SecurityGroupRuleId": "sgr-2", "Direction": "egress", "Policy": "Accept", "Priority": 3,
                 "IpProtocol": "all", "PortRange": "-1/-1", "DestGroupId": "sg-b", "DestGroupOwnerAccount": "123",
                 "SourceCidrIp": "192.168.0.5"}
            ]}
        }))
        .unwrap();
        let s = got.state;
        assert_eq!(s.groups[0].inner_access, Action::Drop);
        assert_eq!(s.groups[0].kind, GroupKind::Basic);
        assert_eq!(
            s.groups[0].attrs.get("RegionId").map(String::as_str),
            Some("cn-hangzhou")
        );
        let r = &s.rules[0];
        assert_eq!(
            (r.action, r.priority, r.protocol),
            (Action::Drop, Priority(7), Protocol::TCP)
        );
        assert_eq!(r.local, None, "0.0.0.0/0 on the local side is any");
        assert_eq!(r.description, None);
        let e = &s.rules[1];
        assert_eq!(e.priority, Priority(3));
        assert_eq!(
            e.remote,
            Peer::Group {
                group_id: "sg-b".into(),
                owner: Some("123".into())
            }
        );
        assert_eq!(
            e.local.map(|c| c.to_string()).as_deref(),
            Some("192.168.0.5/32")
        );
    }

    #[test]
    fn bad_fields_name_their_json_path() {
        let err = one(json!({"SecurityGroupId": "sg-a", "Permissions": {"Permission": [
            {"Direction": "ingress", "IpProtocol": "TCP", "PortRange": "22/22", "SourceCidrIp": "10.0.0.0/33"}]}}))
        .unwrap_err();
        let ImportError::Field { field, .. } = err else {
            panic!("{err}")
        };
        assert_eq!(field, "Permissions.Permission[0].SourceCidrIp");
        let err = one(json!({"SecurityGroups": {"SecurityGroup": [{"SecurityGroupId": "sg-a", "SecurityGroupType": "fancy"}]}})).unwrap_err();
        assert!(
            matches!(err, ImportError::Field { ref field, .. } if field == "SecurityGroups.SecurityGroup[0].SecurityGroupType")
        );
    }

    #[test]
    fn rules_without_an_id_get_a_stable_one() {
        let doc = json!({"SecurityGroupId": "sg-a", "VpcId": "", "Permissions": {"Permission": [
            {"Direction": "ingress", "IpProtocol": "TCP", "PortRange": "22/22", "SourceCidrIp": "10.0.0.0/8"}]}});
        let a = one(doc.clone()).unwrap();
        let b = one(doc).unwrap();
        let id = a.state.rules[0].id.to_string();
        assert!(id.starts_with("sgr-sgsim-") && id.len() == 26, "{id}");
        assert_eq!(id, b.state.rules[0].id.to_string());
        assert!(a.warnings.iter().any(|w| w.contains("assigned")));
        assert_eq!(
            a.state.rules[0].attrs.get("NicType").map(String::as_str),
            Some("internet")
        );
        assert_eq!(a.state.groups[0].vpc, None);
    }

    #[test]
    fn never_panics_on_odd_json() {
        for v in [
            json!({"SecurityGroupId": "sg-a", "Permissions": {"Permission": 5}}),
            json!({"SecurityGroupId": "sg-a", "Permissions": {"Permission": [1, "x", null]}}),
            json!({"SecurityGroupId": ["x"], "Permissions": {"Permission": []}}),
            json!({"NetworkInterfaceSets": {"NetworkInterfaceSet": [{"NetworkInterfaceId": "eni-1", "PrivateIpAddress": "nope"}]}}),
            json!({"NetworkInterfaceSets": {"NetworkInterfaceSet": {"NetworkInterfaceId": "eni-1", "SecurityGroupIds": {"SecurityGroupId": [3]}}}}),
            json!({"PrefixListId": "pl-1", "Entries": {"Entry": [{"Cidr": 7}]}}),
            json!([{"SecurityGroups": {"SecurityGroup": []}}, 3]),
        ] {
            // Each is refused with a message naming where, or imported as a valid state;
            // never a panic.
            match one(v.clone()) {
                Err(e) => {
                    let msg = e.to_string();
                    assert!(msg.contains("x.json"), "{v}: {msg}");
                }
                Ok(imported) => imported
                    .state
                    .validate()
                    .unwrap_or_else(|e| panic!("{v}: {e}")),
            }
        }
    }
}
