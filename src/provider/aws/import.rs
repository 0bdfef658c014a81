//! AWS CLI describe-call exports → [`State`].

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use serde_json::{Map, Value};

use super::values::{fnv1a, parse_protocol, uses_ports};
use crate::model::{
    Action, Cidr, Direction, Eni, Family, GroupId, GroupKind, IcmpSel, Peer, PortRange, PrefixList,
    PrefixListId, Priority, Protocol, Provider, Rule, SecurityGroup, State, Vpc,
};
use crate::provider::{ImportError, Imported};

/// Top-level keys (each an array) that mark an AWS export.
const KEYS: [&str; 7] = [
    "Reservations",
    "SecurityGroups",
    "SecurityGroupRules",
    "NetworkInterfaces",
    "Vpcs",
    "PrefixLists",
    "Entries",
];

/// Whether a document is an AWS export: an object with one of [`KEYS`] holding an array
/// (Alibaba's exports wrap their lists in objects, `{"SecurityGroup": […]}`).
pub(super) fn recognises(value: &Value) -> bool {
    value
        .as_object()
        .is_some_and(|o| KEYS.iter().any(|k| o.get(*k).is_some_and(Value::is_array)))
}

/// One file being read: its name, for errors and warnings.
struct File<'a> {
    path: &'a str,
}

impl File<'_> {
    fn err(&self, field: &str, why: impl Into<String>) -> ImportError {
        ImportError::Field {
            path: self.path.to_string(),
            field: field.to_string(),
            why: why.into(),
        }
    }

    fn object<'v>(&self, v: &'v Value, path: &str) -> Result<&'v Map<String, Value>, ImportError> {
        v.as_object()
            .ok_or_else(|| self.err(path, format!("expected an object, found {}", kind(v))))
    }

    fn array<'v>(
        &self,
        o: &'v Map<String, Value>,
        key: &str,
        path: &str,
    ) -> Result<&'v [Value], ImportError> {
        match o.get(key) {
            None | Some(Value::Null) => Ok(&[]),
            Some(Value::Array(a)) => Ok(a),
            Some(v) => Err(self.err(
                &join(path, key),
                format!("expected an array, found {}", kind(v)),
            )),
        }
    }

    fn opt_str<'v>(
        &self,
        o: &'v Map<String, Value>,
        key: &str,
        path: &str,
    ) -> Result<Option<&'v str>, ImportError> {
        match o.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(v) => Err(self.err(
                &join(path, key),
                format!("expected a string, found {}", kind(v)),
            )),
        }
    }

    fn req_str<'v>(
        &self,
        o: &'v Map<String, Value>,
        key: &str,
        path: &str,
    ) -> Result<&'v str, ImportError> {
        match self.opt_str(o, key, path)? {
            Some(s) if !s.trim().is_empty() => Ok(s),
            _ => Err(self.err(&join(path, key), "missing")),
        }
    }

    fn opt_int(
        &self,
        o: &Map<String, Value>,
        key: &str,
        path: &str,
    ) -> Result<Option<i64>, ImportError> {
        match o.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v.as_i64().map(Some).ok_or_else(|| {
                self.err(&join(path, key), format!("expected an integer, found {v}"))
            }),
        }
    }

    fn opt_bool(
        &self,
        o: &Map<String, Value>,
        key: &str,
        path: &str,
    ) -> Result<Option<bool>, ImportError> {
        match o.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(self.err(&join(path, key), format!("expected a boolean, found {v}"))),
        }
    }

    /// A CIDR of the given family; host bits are cleared with a warning.
    fn cidr(
        &self,
        text: &str,
        family: Option<Family>,
        field: &str,
        warnings: &mut Vec<String>,
    ) -> Result<Cidr, ImportError> {
        let (cidr, changed) =
            Cidr::parse_lenient(text.trim()).map_err(|e| self.err(field, e.to_string()))?;
        if let Some(f) = family {
            if cidr.family() != f {
                return Err(self.err(
                    field,
                    format!(
                        "'{text}' is an {} block where an {} block is expected",
                        family_name(cidr.family()),
                        family_name(f)
                    ),
                ));
            }
        }
        if changed {
            warnings.push(format!(
                "{}: {field}: CIDR '{text}' has host bits set; canonicalized to {cidr} (as EC2 does)",
                self.path
            ));
        } else if !text.contains('/') {
            warnings.push(format!(
                "{}: {field}: '{text}' has no prefix length; read as {cidr}",
                self.path
            ));
        }
        Ok(cidr)
    }
}

fn family_name(f: Family) -> &'static str {
    match f {
        Family::V4 => "IPv4",
        Family::V6 => "IPv6",
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// A group as exported, with its rules (which have IDs only when a rule export names them).
struct GroupRec {
    group: SecurityGroup,
    /// Whether a `describe-security-groups` export described it (else it is a stub made
    /// from a rule export).
    described: bool,
    rules: Vec<Rule>,
}

/// Everything read so far, merged.
#[derive(Default)]
struct Acc {
    groups: Vec<GroupRec>,
    group_index: HashMap<GroupId, usize>,
    /// Rules from `describe-security-group-rules`, by ID, in first-seen order.
    id_rules: Vec<Rule>,
    id_index: HashMap<String, usize>,
    enis: Vec<Eni>,
    vpcs: Vec<Vpc>,
    prefix_lists: Vec<PrefixList>,
    /// Positions in `enis`, `vpcs` and `prefix_lists` by ID, and each list's entries (so
    /// that fleets and long lists load in linear time).
    eni_index: HashMap<String, usize>,
    vpc_index: HashMap<String, usize>,
    list_index: HashMap<String, usize>,
    list_entries: HashMap<String, std::collections::HashSet<Cidr>>,
    warnings: Vec<String>,
    /// From `describe-instances`: ENI ID → (instance ID, its Name tag).
    instances: HashMap<String, (String, Option<String>)>,
}

impl Acc {
    /// Replaces the item with the same ID, or appends it.
    fn upsert<T>(into: &mut Vec<T>, index: &mut HashMap<String, usize>, id: &str, item: T) {
        match index.get(id) {
            Some(&i) => into[i] = item,
            None => {
                index.insert(id.to_string(), into.len());
                into.push(item);
            }
        }
    }

    fn prefix_list(&mut self, id: &str) -> &mut PrefixList {
        let pos = match self.list_index.get(id) {
            Some(&i) => i,
            None => {
                self.list_index
                    .insert(id.to_string(), self.prefix_lists.len());
                self.prefix_lists.push(PrefixList {
                    id: PrefixListId::from(id),
                    name: None,
                    entries: Vec::new(),
                });
                self.prefix_lists.len() - 1
            }
        };
        &mut self.prefix_lists[pos]
    }
}

/// Imports AWS exports; see the module docs of [`super`].
pub(super) fn import(docs: &[(String, Value)]) -> Result<Imported, ImportError> {
    let mut acc = Acc::default();
    for (path, value) in docs {
        let file = File { path };
        let o = file.object(value, "(document)")?;
        let mut known = false;
        for (i, g) in file.array(o, "SecurityGroups", "")?.iter().enumerate() {
            known = true;
            read_group(&file, g, &format!("SecurityGroups[{i}]"), &mut acc)?;
        }
        for (i, r) in file.array(o, "SecurityGroupRules", "")?.iter().enumerate() {
            known = true;
            read_rule(&file, r, &format!("SecurityGroupRules[{i}]"), &mut acc)?;
        }
        for (i, e) in file.array(o, "NetworkInterfaces", "")?.iter().enumerate() {
            known = true;
            let eni = read_eni(&file, e, &format!("NetworkInterfaces[{i}]"))?;
            let id = eni.id.to_string();
            Acc::upsert(&mut acc.enis, &mut acc.eni_index, &id, eni);
        }
        for (i, r) in file.array(o, "Reservations", "")?.iter().enumerate() {
            known = true;
            read_reservation(&file, r, &format!("Reservations[{i}]"), &mut acc)?;
        }
        for (i, v) in file.array(o, "Vpcs", "")?.iter().enumerate() {
            known = true;
            let path = format!("Vpcs[{i}]");
            let vo = file.object(v, &path)?;
            let vpc = Vpc {
                id: file.req_str(vo, "VpcId", &path)?.into(),
                is_default: file.opt_bool(vo, "IsDefault", &path)?.unwrap_or(false),
            };
            let id = vpc.id.to_string();
            Acc::upsert(&mut acc.vpcs, &mut acc.vpc_index, &id, vpc);
        }
        for (i, p) in file.array(o, "PrefixLists", "")?.iter().enumerate() {
            known = true;
            let path = format!("PrefixLists[{i}]");
            let po = file.object(p, &path)?;
            let id = file.req_str(po, "PrefixListId", &path)?;
            let name = file
                .opt_str(po, "PrefixListName", &path)?
                .map(str::to_string);
            let list = acc.prefix_list(id);
            if name.is_some() {
                list.name = name;
            }
        }
        if o.get("Entries").is_some_and(Value::is_array) {
            known = true;
            read_entries(&file, o, &mut acc)?;
        }
        if !known && !recognises(value) {
            return Err(ImportError::Unrecognised {
                path: path.to_string(),
            });
        }
    }
    Ok(finish(acc))
}

/// The ID of `get-managed-prefix-list-entries` output: a `PrefixListId` member, else a
/// `pl-…` in the file name.
fn read_entries(file: &File, o: &Map<String, Value>, acc: &mut Acc) -> Result<(), ImportError> {
    let id = match file.opt_str(o, "PrefixListId", "")? {
        Some(id) => id.to_string(),
        None => pl_in_name(file.path).ok_or_else(|| {
            file.err(
                "PrefixListId",
                "get-managed-prefix-list-entries output names no prefix list: add \
                 \"PrefixListId\": \"pl-…\" beside \"Entries\", or put the ID in the file name",
            )
        })?,
    };
    let mut entries = Vec::new();
    for (i, e) in file.array(o, "Entries", "")?.iter().enumerate() {
        let path = format!("Entries[{i}]");
        let eo = file.object(e, &path)?;
        let text = file.req_str(eo, "Cidr", &path)?;
        entries.push(file.cidr(text, None, &join(&path, "Cidr"), &mut acc.warnings)?);
    }
    // Several files for one list (pages, or the same file twice) add up, without repeats.
    let mut seen = acc.list_entries.remove(&id).unwrap_or_default();
    let list = acc.prefix_list(&id);
    for cidr in entries {
        if seen.insert(cidr) {
            list.entries.push(cidr);
        }
    }
    acc.list_entries.insert(id, seen);
    Ok(())
}

/// `pl-` followed by hex digits, found in a file name.
fn pl_in_name(path: &str) -> Option<String> {
    let name = path.rsplit(['/', '\\']).next().unwrap_or(path);
    let start = name.find("pl-")?;
    let hex: String = name[start + 3..]
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect();
    (!hex.is_empty()).then(|| format!("pl-{hex}"))
}

fn read_group(file: &File, g: &Value, path: &str, acc: &mut Acc) -> Result<(), ImportError> {
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
fn read_rule(file: &File, r: &Value, path: &str, acc: &mut Acc) -> Result<(), ImportError> {
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

fn read_eni(file: &File, e: &Value, path: &str) -> Result<Eni, ImportError> {
    let o = file.object(e, path)?;
    let id = file.req_str(o, "NetworkInterfaceId", path)?;
    let mut ips: Vec<IpAddr> = Vec::new();
    let mut public_ips: Vec<IpAddr> = Vec::new();
    let addr = |text: &str, field: &str, family: Family| -> Result<IpAddr, ImportError> {
        let a: IpAddr = text
            .trim()
            .parse()
            .map_err(|_| file.err(field, format!("'{text}' is not an IP address")))?;
        if Family::of(a) != family {
            return Err(file.err(
                field,
                format!("'{text}' is not an {} address", family_name(family)),
            ));
        }
        Ok(a)
    };
    let push = |list: &mut Vec<IpAddr>, a: IpAddr| {
        if !list.contains(&a) {
            list.push(a);
        }
    };
    if let Some(t) = file.opt_str(o, "PrivateIpAddress", path)? {
        push(
            &mut ips,
            addr(t, &join(path, "PrivateIpAddress"), Family::V4)?,
        );
    }
    let public = |o: &Map<String, Value>, path: &str| -> Result<Option<IpAddr>, ImportError> {
        match o.get("Association").filter(|v| !v.is_null()) {
            None => Ok(None),
            Some(a) => {
                let apath = join(path, "Association");
                let ao = file.object(a, &apath)?;
                match file.opt_str(ao, "PublicIp", &apath)? {
                    Some(t) => Ok(Some(addr(t, &join(&apath, "PublicIp"), Family::V4)?)),
                    None => Ok(None),
                }
            }
        }
    };
    if let Some(p) = public(o, path)? {
        push(&mut public_ips, p);
    }
    for (i, p) in file
        .array(o, "PrivateIpAddresses", path)?
        .iter()
        .enumerate()
    {
        let ppath = format!("{path}.PrivateIpAddresses[{i}]");
        let po = file.object(p, &ppath)?;
        if let Some(t) = file.opt_str(po, "PrivateIpAddress", &ppath)? {
            push(
                &mut ips,
                addr(t, &join(&ppath, "PrivateIpAddress"), Family::V4)?,
            );
        }
        if let Some(p) = public(po, &ppath)? {
            push(&mut public_ips, p);
        }
    }
    for (i, p) in file.array(o, "Ipv6Addresses", path)?.iter().enumerate() {
        let ppath = format!("{path}.Ipv6Addresses[{i}]");
        let po = file.object(p, &ppath)?;
        if let Some(t) = file.opt_str(po, "Ipv6Address", &ppath)? {
            push(&mut ips, addr(t, &join(&ppath, "Ipv6Address"), Family::V6)?);
        }
    }
    let mut groups = Vec::new();
    for (i, g) in file.array(o, "Groups", path)?.iter().enumerate() {
        let gpath = format!("{path}.Groups[{i}]");
        let go = file.object(g, &gpath)?;
        let gid: GroupId = file.req_str(go, "GroupId", &gpath)?.into();
        if !groups.contains(&gid) {
            groups.push(gid);
        }
    }
    let mut attrs = BTreeMap::new();
    for key in [
        "SubnetId",
        "InterfaceType",
        "Description",
        "OwnerId",
        "AvailabilityZone",
    ] {
        if let Some(v) = file.opt_str(o, key, path)?.filter(|v| !v.is_empty()) {
            attrs.insert(key.to_string(), v.to_string());
        }
    }
    if let Some(name) = name_tag(file, o, "TagSet", path)? {
        attrs.insert("Name".to_string(), name);
    }
    if let Some(a) = o.get("Attachment").filter(|v| !v.is_null()) {
        let apath = join(path, "Attachment");
        let ao = file.object(a, &apath)?;
        if let Some(id) = file
            .opt_str(ao, "InstanceId", &apath)?
            .filter(|v| !v.is_empty())
        {
            attrs.insert("InstanceId".to_string(), id.to_string());
        }
    }
    Ok(Eni {
        id: id.into(),
        ips,
        public_ips,
        groups,
        vpc: file
            .opt_str(o, "VpcId", path)?
            .filter(|v| !v.is_empty())
            .map(Into::into),
        attrs,
    })
}

/// The `Name` tag of a `Tags` / `TagSet` list, if any.
fn name_tag(
    file: &File<'_>,
    o: &Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<String>, ImportError> {
    for (i, t) in file.array(o, key, path)?.iter().enumerate() {
        let tpath = format!("{path}.{key}[{i}]");
        let to = file.object(t, &tpath)?;
        if file.opt_str(to, "Key", &tpath)? == Some("Name") {
            return Ok(file
                .opt_str(to, "Value", &tpath)?
                .filter(|v| !v.is_empty())
                .map(str::to_string));
        }
    }
    Ok(None)
}

/// One reservation of `describe-instances`: its instances' IDs and Name tags, by ENI.
fn read_reservation(
    file: &File<'_>,
    r: &Value,
    path: &str,
    acc: &mut Acc,
) -> Result<(), ImportError> {
    let ro = file.object(r, path)?;
    for (i, inst) in file.array(ro, "Instances", path)?.iter().enumerate() {
        let ipath = format!("{path}.Instances[{i}]");
        let io = file.object(inst, &ipath)?;
        let id = file.req_str(io, "InstanceId", &ipath)?.to_string();
        let name = name_tag(file, io, "Tags", &ipath)?;
        for (j, n) in file
            .array(io, "NetworkInterfaces", &ipath)?
            .iter()
            .enumerate()
        {
            let npath = format!("{ipath}.NetworkInterfaces[{j}]");
            let no = file.object(n, &npath)?;
            let eni = file.req_str(no, "NetworkInterfaceId", &npath)?.to_string();
            acc.instances.insert(eni, (id.clone(), name.clone()));
        }
    }
    Ok(())
}

/// The key two exports share for one atomic rule: group, direction, protocol, ports, peer
/// (a group peer by ID only).
fn merge_key(r: &Rule) -> String {
    let peer = match &r.remote {
        Peer::Cidr { cidr } => format!("cidr:{cidr}"),
        Peer::Group { group_id, .. } => format!("group:{group_id}"),
        Peer::PrefixList { prefix_list_id } => format!("pl:{prefix_list_id}"),
    };
    format!(
        "{}|{}|{}|{}|{}|{peer}",
        r.group, r.direction, r.protocol, r.src_ports, r.dst_ports
    )
}

/// Merges group-export rules with rule-export rules, synthesizes missing IDs, builds the
/// state.
fn finish(mut acc: Acc) -> Imported {
    for eni in &mut acc.enis {
        if let Some((id, name)) = acc.instances.get(eni.id.as_str()) {
            eni.attrs.insert("InstanceId".to_string(), id.clone());
            if let Some(n) = name {
                eni.attrs.insert("InstanceName".to_string(), n.clone());
            }
        }
    }
    let mut claimed = vec![false; acc.id_rules.len()];
    let mut by_key: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, r) in acc.id_rules.iter().enumerate() {
        by_key.entry(merge_key(r)).or_default().push(i);
    }
    let mut rules = Vec::new();
    let mut synthesized = 0usize;
    for rec in &mut acc.groups {
        let mut seen: HashMap<String, usize> = HashMap::new();
        for mut rule in std::mem::take(&mut rec.rules) {
            let key = merge_key(&rule);
            let hit = by_key
                .get(&key)
                .and_then(|c| c.iter().copied().find(|&i| !claimed[i]));
            match hit {
                Some(i) => {
                    claimed[i] = true;
                    let from_rules = &acc.id_rules[i];
                    rule.id = from_rules.id.clone();
                    if from_rules.description.is_some() {
                        rule.description = from_rules.description.clone();
                    }
                    if let (
                        Peer::Group { owner, .. },
                        Peer::Group {
                            owner: Some(theirs),
                            ..
                        },
                    ) = (&mut rule.remote, &from_rules.remote)
                    {
                        owner.get_or_insert_with(|| theirs.clone());
                    }
                    rule.attrs.extend(from_rules.attrs.clone());
                }
                None => {
                    let n = seen.entry(key.clone()).or_insert(0);
                    rule.id = format!("sgr-sim{:016x}", fnv1a(&format!("{key}|{n}"))).into();
                    *n += 1;
                    rule.attrs
                        .insert("IdSynthesized".to_string(), "true".to_string());
                    synthesized += 1;
                }
            }
            rules.push(rule);
        }
    }
    for (i, r) in acc.id_rules.iter().enumerate() {
        if !claimed[i] {
            rules.push(r.clone());
        }
    }
    if synthesized > 0 {
        acc.warnings.push(format!(
            "{synthesized} AWS rule(s) have no sgr- ID because no describe-security-group-rules \
             export names them; sgsim gave them synthesized IDs (sgr-sim…)"
        ));
    }
    let vpcs_known: Vec<&str> = acc.vpcs.iter().map(|v| v.id.as_str()).collect();
    let mut undescribed: Vec<String> = acc
        .groups
        .iter()
        .filter_map(|g| g.group.vpc.as_ref())
        .filter(|v| !vpcs_known.contains(&v.as_str()))
        .map(|v| v.to_string())
        .collect();
    undescribed.sort();
    undescribed.dedup();
    if !undescribed.is_empty() {
        acc.warnings.push(format!(
            "no describe-vpcs export describes {}; their security groups count as in a \
             non-default VPC (a revoke that misses fails with InvalidPermission.NotFound)",
            undescribed.join(", ")
        ));
    }
    let stubs: Vec<String> = acc
        .groups
        .iter()
        .filter(|g| !g.described)
        .map(|g| g.group.id.to_string())
        .collect();
    if !stubs.is_empty() {
        acc.warnings.push(format!(
            "no describe-security-groups export describes {}; their VPC is unknown and counts \
             as non-default",
            stubs.join(", ")
        ));
    }
    Imported {
        state: State {
            groups: acc.groups.into_iter().map(|g| g.group).collect(),
            rules,
            enis: acc.enis,
            prefix_lists: acc.prefix_lists,
            vpcs: acc.vpcs,
            provider_state: BTreeMap::new(),
        },
        warnings: acc.warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(v: Value) -> Vec<(String, Value)> {
        vec![("x.json".to_string(), v)]
    }

    fn sg_export() -> Value {
        json!({"SecurityGroups": [{
            "GroupId": "sg-0a1b2c3d4e5f60789", "GroupName": "web", "Description": "web tier",
            "OwnerId": "123456789012", "VpcId": "vpc-0abc",
            "IpPermissions": [
                {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
                 "IpRanges": [{"CidrIp": "203.0.113.0/24", "Description": "office"},
                              {"CidrIp": "198.51.100.7/32"}],
                 "Ipv6Ranges": [], "PrefixListIds": [{"PrefixListId": "pl-0123"}],
                 "UserIdGroupPairs": [{"GroupId": "sg-0fed", "UserId": "123456789012"}]},
                {"IpProtocol": "icmp", "FromPort": 8, "ToPort": -1,
                 "IpRanges": [{"CidrIp": "10.0.0.5/8"}]},
                {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": "sg-0a1b2c3d4e5f60789"}]}
            ],
            "IpPermissionsEgress": [
                {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
                 "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}
            ]}], "ResponseMetadata": {"RequestId": "x"}})
    }

    #[test]
    fn recognises_aws_shapes_but_not_alibaba_wrappers() {
        assert!(recognises(&sg_export()));
        assert!(recognises(&json!({"Entries": [], "PrefixListId": "pl-1"})));
        assert!(!recognises(
            &json!({"SecurityGroups": {"SecurityGroup": []}})
        ));
        assert!(!recognises(&json!({"Permissions": {"Permission": []}})));
        assert!(!recognises(&json!([1, 2])));
    }

    #[test]
    fn group_export_expands_into_atomic_rules_with_synthesized_ids() {
        let got = import(&doc(sg_export())).unwrap();
        assert_eq!(got.state.rules.len(), 8);
        let icmp = &got.state.rules[4];
        assert_eq!(icmp.protocol, Protocol::ICMP);
        assert_eq!(
            IcmpSel::from_ranges(icmp.src_ports, icmp.dst_ports),
            Some(IcmpSel {
                ty: Some(8),
                code: None
            })
        );
        assert_eq!(icmp.remote, Peer::cidr("10.0.0.0/8".parse().unwrap()));
        assert_eq!(
            icmp.attrs.get("OriginalCidr").map(String::as_str),
            Some("10.0.0.5/8")
        );
        assert!(got.warnings.iter().any(|w| w.contains("x.json")
            && w.contains("SecurityGroups[0].IpPermissions[1].IpRanges[0].CidrIp")));
        assert!(got
            .state
            .rules
            .iter()
            .all(|r| r.id.as_str().starts_with("sgr-sim")));
        let again = import(&doc(sg_export())).unwrap();
        assert_eq!(again.state, got.state, "IDs are deterministic");
        got.state.validate().unwrap();
    }

    #[test]
    fn rule_export_ids_merge_into_group_rules_without_double_counting() {
        let rules = json!({"SecurityGroupRules": [
            {"SecurityGroupRuleId": "sgr-0b1c", "GroupId": "sg-0a1b2c3d4e5f60789",
             "GroupOwnerId": "123456789012", "IsEgress": false, "IpProtocol": "tcp",
             "FromPort": 22, "ToPort": 22, "CidrIpv4": "203.0.113.0/24", "Description": "office"},
            {"SecurityGroupRuleId": "sgr-0e1f", "GroupId": "sg-0a1b2c3d4e5f60789",
             "IsEgress": true, "IpProtocol": "-1", "FromPort": -1, "ToPort": -1,
             "CidrIpv4": "0.0.0.0/0"},
            {"SecurityGroupRuleId": "sgr-0999", "GroupId": "sg-0other",
             "IsEgress": false, "IpProtocol": "udp", "FromPort": 53, "ToPort": 53,
             "ReferencedGroupInfo": {"GroupId": "sg-0fed", "UserId": "1"}}
        ]});
        let docs = vec![
            ("rules.json".to_string(), rules.clone()),
            ("sgs.json".to_string(), sg_export()),
            ("rules-again.json".to_string(), rules),
        ];
        let got = import(&docs).unwrap();
        assert_eq!(got.state.rules.len(), 9);
        let ids: Vec<&str> = got.state.rules.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids[0], "sgr-0b1c");
        assert!(ids.contains(&"sgr-0e1f") && ids.contains(&"sgr-0999"));
        assert_eq!(got.state.groups.len(), 2, "stub group for sg-0other");
        got.state.validate().unwrap();
    }

    #[test]
    fn bad_fields_name_their_json_path() {
        let bad = json!({"SecurityGroups": [{"GroupId": "sg-1", "IpPermissions": [
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22},
            {"IpProtocol": "tcp", "FromPort": "x", "ToPort": 22}]}]});
        match import(&doc(bad)) {
            Err(ImportError::Field { field, .. }) => {
                assert_eq!(field, "SecurityGroups[0].IpPermissions[1].FromPort")
            }
            other => panic!("{other:?}"),
        }
        let v6_in_v4 = json!({"SecurityGroups": [{"GroupId": "sg-1", "IpPermissions": [
            {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "::/0"}]}]}]});
        assert!(matches!(
            import(&doc(v6_in_v4)),
            Err(ImportError::Field { .. })
        ));
        let too_long = json!({"SecurityGroupRules": [{"SecurityGroupRuleId": "sgr-1",
            "GroupId": "sg-1", "IsEgress": false, "IpProtocol": "tcp", "FromPort": 1,
            "ToPort": 70000, "CidrIpv4": "10.0.0.0/8"}]});
        assert!(matches!(
            import(&doc(too_long)),
            Err(ImportError::Field { .. })
        ));
        let two_peers = json!({"SecurityGroupRules": [{"SecurityGroupRuleId": "sgr-1",
            "GroupId": "sg-1", "IsEgress": false, "IpProtocol": "-1",
            "CidrIpv4": "10.0.0.0/8", "PrefixListId": "pl-1"}]});
        assert!(matches!(
            import(&doc(two_peers)),
            Err(ImportError::Field { .. })
        ));
    }

    #[test]
    fn enis_vpcs_and_prefix_lists() {
        let docs = vec![
            (
                "eni.json".to_string(),
                json!({"NetworkInterfaces": [{"NetworkInterfaceId": "eni-1", "VpcId": "vpc-1",
                "PrivateIpAddress": "10.0.0.5",
                "Association": {"PublicIp": "54.1.2.3"},
                "PrivateIpAddresses": [{"PrivateIpAddress": "10.0.0.5", "Primary": true},
                                       {"PrivateIpAddress": "10.0.0.6",
                                        "Association": {"PublicIp": "54.1.2.4"}}],
                "Ipv6Addresses": [{"Ipv6Address": "2001:db8::5"}],
                "Groups": [{"GroupId": "sg-1", "GroupName": "a"}]}]}),
            ),
            (
                "vpcs.json".to_string(),
                json!({"Vpcs": [{"VpcId": "vpc-1", "IsDefault": true}]}),
            ),
            (
                "pls.json".to_string(),
                json!({"PrefixLists": [{"PrefixListId": "pl-0abc", "PrefixListName": "n"}]}),
            ),
            (
                "dir/entries-pl-0abc.json".to_string(),
                json!({"Entries": [{"Cidr": "192.0.2.0/24"}, {"Cidr": "192.0.2.0/24"}]}),
            ),
        ];
        let s = import(&docs).unwrap().state;
        assert_eq!(s.enis[0].ips.len(), 3);
        assert_eq!(s.enis[0].public_ips.len(), 2);
        assert!(s.vpcs[0].is_default);
        assert_eq!(s.prefix_lists.len(), 1);
        assert_eq!(s.prefix_lists[0].name.as_deref(), Some("n"));
        assert_eq!(s.prefix_lists[0].entries.len(), 1);
        let nameless = doc(json!({"Entries": [{"Cidr": "192.0.2.0/24"}]}));
        assert!(
            matches!(import(&nameless), Err(ImportError::Field { field, .. }) if field == "PrefixListId")
        );
    }

    #[test]
    fn names_come_from_tags_attachments_and_describe_instances() {
        let enis = json!({"NetworkInterfaces": [
            {"NetworkInterfaceId": "eni-1", "PrivateIpAddress": "10.0.0.1",
             "Description": "primary network interface",
             "TagSet": [{"Key": "team", "Value": "db"}, {"Key": "Name", "Value": "primary-database"}],
             "Attachment": {"InstanceId": "i-0db"}},
            {"NetworkInterfaceId": "eni-2", "PrivateIpAddress": "10.0.0.2"}
        ]});
        let instances = json!({"Reservations": [{"Instances": [
            {"InstanceId": "i-0app", "Tags": [{"Key": "Name", "Value": "app-1"}],
             "NetworkInterfaces": [{"NetworkInterfaceId": "eni-2"}]}
        ]}]});
        assert!(recognises(&instances));
        let docs = vec![
            ("enis.json".to_string(), enis),
            ("instances.json".to_string(), instances),
        ];
        let got = import(&docs).unwrap().state;
        let a = &got.enis[0].attrs;
        assert_eq!(a["Name"], "primary-database");
        assert_eq!(a["InstanceId"], "i-0db");
        let b = &got.enis[1].attrs;
        assert_eq!(
            (b["InstanceId"].as_str(), b["InstanceName"].as_str()),
            ("i-0app", "app-1")
        );
    }

    #[test]
    fn never_panics_on_odd_json() {
        for v in [
            json!({"SecurityGroups": [1, null]}),
            json!({"SecurityGroups": [{"GroupId": 5}]}),
            json!({"SecurityGroups": [{"GroupId": "sg-1", "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 1e30, "ToPort": -5}]}]}),
            json!({"SecurityGroups": [{"GroupId": "sg-1", "IpPermissions": [{"IpProtocol": "icmp", "FromPort": 999}]}]}),
            json!({"NetworkInterfaces": [{"NetworkInterfaceId": "eni-1", "PrivateIpAddress": "::1"}]}),
            json!({"Vpcs": [{"IsDefault": "yes"}]}),
            json!({"SecurityGroupRules": [{"SecurityGroupRuleId": "sgr-1", "GroupId": "sg-1", "IsEgress": false, "IpProtocol": "tcp", "FromPort": 9, "ToPort": 1, "CidrIpv4": "1.2.3.4/40"}]}),
        ] {
            assert!(import(&doc(v)).is_err());
        }
    }
}
