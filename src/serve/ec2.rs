//! The EC2 Query API's describes, rendered from the model as EC2's XML, and its error
//! envelope.

use std::collections::BTreeMap;

use crate::model::{Direction, Family, Peer, Provider, Rule, SecurityGroup, State};
use crate::provider::aws::protocol_text as protocol;
use crate::provider::{rule_json, xml_escape as esc, ApiError, Params};

const XMLNS: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";

/// An answer: HTTP status and XML body.
pub type Answer = (u16, String);

/// EC2's error body.
pub fn error(request_id: &str, e: &ApiError) -> Answer {
    (
        e.status,
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{}</Code><Message>{}</Message></Error></Errors><RequestID>{}</RequestID></Response>",
            esc(&e.code),
            esc(&e.message),
            esc(request_id)
        ),
    )
}

/// `InvalidAction` for actions sgsim does not serve.
pub fn invalid_action(action: &str) -> ApiError {
    ApiError::new(
        "InvalidAction",
        400,
        format!("The action {action} is not valid for this web service."),
    )
}

/// Whether sgsim serves this EC2 action as a describe.
pub fn is_describe(action: &str) -> bool {
    matches!(
        action,
        "DescribeSecurityGroups"
            | "DescribeSecurityGroupRules"
            | "DescribeNetworkInterfaces"
            | "DescribeVpcs"
            | "DescribeManagedPrefixLists"
            | "GetManagedPrefixListEntries"
    )
}

/// A tiny XML writer.
struct Xml(String);

impl Xml {
    fn open(&mut self, tag: &str) {
        self.0.push_str(&format!("<{tag}>"));
    }
    fn close(&mut self, tag: &str) {
        self.0.push_str(&format!("</{tag}>"));
    }
    fn leaf(&mut self, tag: &str, text: &str) {
        self.0.push_str(&format!("<{tag}>{}</{tag}>", esc(text)));
    }
    fn opt(&mut self, tag: &str, text: Option<&str>) {
        if let Some(t) = text {
            self.leaf(tag, t);
        }
    }
}

fn bad(name: &str, value: &str, why: &str) -> ApiError {
    ApiError::new(
        "InvalidParameterValue",
        400,
        format!("Value ({value}) for parameter {name} is invalid. {why}"),
    )
}

/// `Filter.N.Name` / `Filter.N.Value.M` and `Prefix.N` lists.
struct Query<'p> {
    params: &'p Params,
    filters: BTreeMap<String, Vec<String>>,
}

impl<'p> Query<'p> {
    fn new(params: &'p Params, allowed: &[&str]) -> Result<Query<'p>, ApiError> {
        let mut names: BTreeMap<String, String> = BTreeMap::new();
        let mut values: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (k, v) in &params.0 {
            if let Some(rest) = k.strip_prefix("Filter.") {
                match rest.split_once('.') {
                    Some((n, "Name")) => {
                        names.insert(n.to_string(), v.clone());
                    }
                    Some((n, f)) if f.starts_with("Value.") => {
                        values.entry(n.to_string()).or_default().push(v.clone());
                    }
                    _ => {
                        return Err(ApiError::new(
                            "UnknownParameter",
                            400,
                            format!("The parameter {k} is not recognized"),
                        ))
                    }
                }
            }
        }
        let mut filters = BTreeMap::new();
        for (n, name) in names {
            // An entry ending in `:` (`tag:`) allows every name it begins, with a key.
            let known = allowed.iter().any(|a| match a.strip_suffix(':') {
                Some(_) => name.strip_prefix(a).is_some_and(|k| !k.is_empty()),
                None => *a == name,
            });
            if !known {
                return Err(ApiError::new(
                    "InvalidParameterValue",
                    400,
                    format!("The filter '{name}' is invalid"),
                ));
            }
            filters
                .entry(name)
                .or_insert_with(Vec::new)
                .extend(values.remove(&n).unwrap_or_default());
        }
        Ok(Query { params, filters })
    }

    /// `Name.1`, `Name.2`, … (and a bare `Name`).
    fn list(&self, name: &str) -> Vec<String> {
        let prefix = format!("{name}.");
        self.params
            .0
            .iter()
            .filter(|(k, _)| {
                k == name
                    || k.strip_prefix(&prefix)
                        .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
            })
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Whether `value` passes the filter `name` (no such filter: yes).
    fn pass(&self, name: &str, value: Option<&str>) -> bool {
        self.filters
            .get(name)
            .is_none_or(|vs| value.is_some_and(|v| vs.iter().any(|f| wild(f, v))))
    }

    /// Whether `tags` pass the `tag:<key>` and `tag-key` filters.
    fn pass_tags(&self, tags: &[(String, String)]) -> bool {
        self.filters.iter().all(|(name, values)| {
            if let Some(key) = name.strip_prefix("tag:") {
                tags.iter()
                    .any(|(k, v)| k == key && values.iter().any(|f| wild(f, v)))
            } else if name == "tag-key" {
                tags.iter().any(|(k, _)| values.iter().any(|f| wild(f, k)))
            } else {
                true
            }
        })
    }

    /// The page `MaxResults` / `NextToken` select from `n` items: range and next token.
    fn page(
        &self,
        n: usize,
        min: usize,
        max: usize,
    ) -> Result<(usize, usize, Option<String>), ApiError> {
        let start = match self.params.get("NextToken") {
            None | Some("") => 0,
            Some(t) => t
                .strip_prefix("sgsim-")
                .and_then(|n| n.parse::<usize>().ok())
                .filter(|&s| s <= n)
                .ok_or_else(|| {
                    ApiError::new(
                        "InvalidPaginationToken",
                        400,
                        format!("The pagination token '{t}' is invalid."),
                    )
                })?,
        };
        let size = match self.params.get("MaxResults") {
            None => n.saturating_sub(start).max(1),
            Some(t) => t
                .parse::<usize>()
                .ok()
                .filter(|s| (min..=max).contains(s))
                .ok_or_else(|| {
                    bad(
                        "MaxResults",
                        t,
                        &format!("Expected an integer between {min} and {max}."),
                    )
                })?,
        };
        let end = (start + size).min(n);
        Ok((start, end, (end < n).then(|| format!("sgsim-{end}"))))
    }
}

fn ports(state: &State, r: &Rule) -> (i64, i64) {
    let j = rule_json(state, r);
    (
        j["from_port"].as_i64().unwrap_or(-1),
        j["to_port"].as_i64().unwrap_or(-1),
    )
}

/// The `Tags` attribute an export left (`[{"Key": …, "Value": …}]`), as pairs.
fn tags(attrs: &BTreeMap<String, String>) -> Vec<(String, String)> {
    attrs
        .get("Tags")
        .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|t| {
            Some((
                t["Key"].as_str()?.to_string(),
                t["Value"].as_str().unwrap_or("").to_string(),
            ))
        })
        .collect()
}

fn malformed_group(id: &str) -> ApiError {
    ApiError::new(
        "InvalidGroupId.Malformed",
        400,
        format!("The security group ID '{id}' is malformed"),
    )
}

fn aws_groups(state: &State) -> impl Iterator<Item = &SecurityGroup> {
    state.groups.iter().filter(|g| g.provider == Provider::Aws)
}

fn group_ok(id: &str) -> bool {
    id.strip_prefix("sg-")
        .is_some_and(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// Answers an EC2 describe from `state`.
pub fn describe(
    state: &State,
    action: &str,
    params: &Params,
    id: &str,
) -> Result<String, ApiError> {
    let mut x = Xml(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{action}Response xmlns=\"{XMLNS}\">"
    ));
    x.leaf("requestId", id);
    match action {
        "DescribeSecurityGroups" => groups(state, params, &mut x)?,
        "DescribeSecurityGroupRules" => rules(state, params, &mut x)?,
        "DescribeNetworkInterfaces" => enis(state, params, &mut x)?,
        "DescribeVpcs" => vpcs(state, params, &mut x)?,
        "DescribeManagedPrefixLists" => prefix_lists(state, params, &mut x)?,
        "GetManagedPrefixListEntries" => entries(state, params, &mut x)?,
        other => return Err(invalid_action(other)),
    }
    x.close(&format!("{action}Response"));
    Ok(x.0)
}

fn selected_groups<'s>(
    state: &'s State,
    q: &Query<'_>,
) -> Result<Vec<&'s SecurityGroup>, ApiError> {
    let ids = q.list("GroupId");
    let names = q.list("GroupName");
    for id in &ids {
        if !group_ok(id) {
            return Err(malformed_group(id));
        }
        if !aws_groups(state).any(|g| g.id.as_str() == id) {
            return Err(ApiError::new(
                "InvalidGroup.NotFound",
                400,
                format!("The security group '{id}' does not exist"),
            ));
        }
    }
    // `GroupName` names groups of the default VPC only (a group of another VPC is not
    // found by name, as revoke resolves names).
    let mut named = Vec::new();
    for name in &names {
        named.push(
            crate::provider::aws::group_in_default_vpc(state, name)?
                .id
                .clone(),
        );
    }
    Ok(aws_groups(state)
        .filter(|g| ids.is_empty() || ids.iter().any(|i| i == g.id.as_str()))
        .filter(|g| names.is_empty() || named.contains(&g.id))
        .filter(|g| q.pass("group-id", Some(g.id.as_str())))
        .filter(|g| q.pass("group-name", g.name.as_deref()))
        .filter(|g| q.pass("vpc-id", g.vpc.as_ref().map(|v| v.as_str())))
        .filter(|g| q.pass("owner-id", g.owner.as_deref()))
        .filter(|g| q.pass("description", g.description.as_deref()))
        .filter(|g| q.pass_tags(&tags(&g.attrs)))
        .filter(|g| permission_filters(state, g, q))
        .collect())
}

/// The `ip-permission.*` / `egress.ip-permission.*` filters: as EC2 documents them, each
/// filter is met by some rule of its direction, not necessarily the same rule for all.
fn permission_filters(state: &State, g: &SecurityGroup, q: &Query<'_>) -> bool {
    q.filters.iter().all(|(name, values)| {
        let (egress, field) = match name.strip_prefix("egress.ip-permission.") {
            Some(f) => (true, f),
            None => match name.strip_prefix("ip-permission.") {
                Some(f) => (false, f),
                None => return true,
            },
        };
        state
            .rules
            .iter()
            .filter(|r| r.group == g.id && (r.direction == Direction::Egress) == egress)
            .any(|r| {
                rule_field(state, r, field).is_some_and(|v| {
                    values
                        .iter()
                        .any(|f| wild(f, &v) || same_protocol(field, f, &v))
                })
            })
    })
}

/// A rule's value for an `ip-permission.<field>` filter, as DescribeSecurityGroups prints it.
fn rule_field(state: &State, r: &Rule, field: &str) -> Option<String> {
    match (field, &r.remote) {
        ("cidr", Peer::Cidr { cidr }) if cidr.family() == Family::V4 => Some(cidr.to_string()),
        ("ipv6-cidr", Peer::Cidr { cidr }) if cidr.family() == Family::V6 => Some(cidr.to_string()),
        ("prefix-list-id", Peer::PrefixList { prefix_list_id }) => Some(prefix_list_id.to_string()),
        ("group-id", Peer::Group { group_id, .. }) => Some(group_id.to_string()),
        ("group-name", Peer::Group { group_id, .. }) => r
            .attrs
            .get("GroupName")
            .cloned()
            .or_else(|| state.group(group_id).and_then(|g| g.name.clone())),
        ("user-id", Peer::Group { owner, .. }) => owner.clone(),
        ("protocol", _) => Some(protocol(r.protocol)),
        ("from-port", _) => Some(ports(state, r).0.to_string()),
        ("to-port", _) => Some(ports(state, r).1.to_string()),
        _ => None,
    }
}

/// Whether `value` matches the filter value `pattern`, as EC2 reads filter values: `*`
/// matches any run of characters, `?` exactly one, and a backslash makes the next
/// character literal (`\*`, `\?`, `\\`).
fn wild(pattern: &str, value: &str) -> bool {
    #[derive(Clone, Copy, PartialEq)]
    enum Tok {
        Any,
        One,
        Lit(char),
    }
    let mut toks = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        toks.push(match c {
            '*' => Tok::Any,
            '?' => Tok::One,
            '\\' => Tok::Lit(chars.next().unwrap_or('\\')),
            c => Tok::Lit(c),
        });
    }
    if !toks.iter().any(|t| matches!(t, Tok::Any | Tok::One)) {
        // No wildcard: plain equality (the common case).
        return toks.len() == value.chars().count()
            && toks
                .iter()
                .zip(value.chars())
                .all(|(t, c)| *t == Tok::Lit(c));
    }
    let v: Vec<char> = value.chars().collect();
    // Greedy match with backtracking to the last `*`.
    let (mut t, mut i) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while i < v.len() {
        match toks.get(t) {
            Some(Tok::Lit(c)) if *c == v[i] => {
                t += 1;
                i += 1;
            }
            Some(Tok::One) => {
                t += 1;
                i += 1;
            }
            Some(Tok::Any) => {
                star = Some((t, i));
                t += 1;
            }
            _ => match star {
                Some((st, si)) => {
                    t = st + 1;
                    i = si + 1;
                    star = Some((st, si + 1));
                }
                None => return false,
            },
        }
    }
    toks[t..].iter().all(|t| *t == Tok::Any)
}

/// `ip-permission.protocol` takes a protocol's number for its name (`6` for `tcp`).
fn same_protocol(field: &str, filter: &str, value: &str) -> bool {
    field == "protocol"
        && matches!(
            (filter.to_ascii_lowercase().as_str(), value),
            ("6" | "tcp", "tcp")
                | ("17" | "udp", "udp")
                | ("1" | "icmp", "icmp")
                | ("58" | "icmpv6", "icmpv6")
                | ("all", "-1")
        )
}

/// The filters DescribeSecurityGroups documents.
const GROUP_FILTERS: &[&str] = &[
    "description",
    "group-id",
    "group-name",
    "owner-id",
    "vpc-id",
    "tag:",
    "tag-key",
    "ip-permission.cidr",
    "ip-permission.from-port",
    "ip-permission.group-id",
    "ip-permission.group-name",
    "ip-permission.ipv6-cidr",
    "ip-permission.prefix-list-id",
    "ip-permission.protocol",
    "ip-permission.to-port",
    "ip-permission.user-id",
    "egress.ip-permission.cidr",
    "egress.ip-permission.from-port",
    "egress.ip-permission.group-id",
    "egress.ip-permission.group-name",
    "egress.ip-permission.ipv6-cidr",
    "egress.ip-permission.prefix-list-id",
    "egress.ip-permission.protocol",
    "egress.ip-permission.to-port",
    "egress.ip-permission.user-id",
];

fn groups(state: &State, params: &Params, x: &mut Xml) -> Result<(), ApiError> {
    let q = Query::new(params, GROUP_FILTERS)?;
    let selected = selected_groups(state, &q)?;
    let (start, end, next) = q.page(selected.len(), 5, 1000)?;
    x.open("securityGroupInfo");
    for g in &selected[start..end] {
        x.open("item");
        x.opt("ownerId", g.owner.as_deref());
        x.leaf("groupId", g.id.as_str());
        x.opt("groupName", g.name.as_deref());
        x.leaf("groupDescription", g.description.as_deref().unwrap_or(""));
        x.opt("vpcId", g.vpc.as_ref().map(|v| v.as_str()));
        for (tag, egress) in [("ipPermissions", false), ("ipPermissionsEgress", true)] {
            x.open(tag);
            permissions(state, g, egress, x);
            x.close(tag);
        }
        // The group's tags, as the export gave them (boto3: `Tags`).
        let tags = tags(&g.attrs);
        if !tags.is_empty() {
            x.open("tagSet");
            for (key, value) in &tags {
                x.open("item");
                x.leaf("key", key);
                x.leaf("value", value);
                x.close("item");
            }
            x.close("tagSet");
        }
        x.close("item");
    }
    x.close("securityGroupInfo");
    x.opt("nextToken", next.as_deref());
    Ok(())
}

/// A group's rules of one direction folded into EC2 permissions: one per protocol and
/// port range, its peers listed under the peer kind, in state order.
fn permissions(state: &State, g: &SecurityGroup, egress: bool, x: &mut Xml) {
    let mut order: Vec<(String, i64, i64)> = Vec::new();
    let mut by: BTreeMap<(String, i64, i64), Vec<&Rule>> = BTreeMap::new();
    for r in state
        .rules
        .iter()
        .filter(|r| r.group == g.id && (r.direction == crate::model::Direction::Egress) == egress)
    {
        let (from, to) = ports(state, r);
        let key = (protocol(r.protocol), from, to);
        if !by.contains_key(&key) {
            order.push(key.clone());
        }
        by.entry(key).or_default().push(r);
    }
    for key in order {
        let rules = &by[&key];
        x.open("item");
        x.leaf("ipProtocol", &key.0);
        if key.0 != "-1" {
            x.leaf("fromPort", &key.1.to_string());
            x.leaf("toPort", &key.2.to_string());
        }
        x.open("groups");
        for r in rules {
            if let Peer::Group { group_id, owner } = &r.remote {
                x.open("item");
                x.opt("userId", owner.as_deref());
                x.leaf("groupId", group_id.as_str());
                for (attr, tag) in [
                    ("GroupName", "groupName"),
                    ("VpcId", "vpcId"),
                    ("VpcPeeringConnectionId", "vpcPeeringConnectionId"),
                    ("PeeringStatus", "peeringStatus"),
                ] {
                    x.opt(tag, r.attrs.get(attr).map(String::as_str));
                }
                x.opt("description", r.description.as_deref());
                x.close("item");
            }
        }
        x.close("groups");
        for (tag, family, leaf) in [
            ("ipRanges", Family::V4, "cidrIp"),
            ("ipv6Ranges", Family::V6, "cidrIpv6"),
        ] {
            x.open(tag);
            for r in rules {
                if let Peer::Cidr { cidr } = &r.remote {
                    if cidr.family() == family {
                        x.open("item");
                        x.leaf(leaf, &cidr.to_string());
                        x.opt("description", r.description.as_deref());
                        x.close("item");
                    }
                }
            }
            x.close(tag);
        }
        x.open("prefixListIds");
        for r in rules {
            if let Peer::PrefixList { prefix_list_id } = &r.remote {
                x.open("item");
                x.leaf("prefixListId", prefix_list_id.as_str());
                x.opt("description", r.description.as_deref());
                x.close("item");
            }
        }
        x.close("prefixListIds");
        x.close("item");
    }
}

fn rules(state: &State, params: &Params, x: &mut Xml) -> Result<(), ApiError> {
    let q = Query::new(
        params,
        &["group-id", "security-group-rule-id", "tag:", "tag-key"],
    )?;
    if let Some(bad) = q
        .filters
        .get("group-id")
        .and_then(|vs| vs.iter().find(|v| !group_ok(v)))
    {
        return Err(malformed_group(bad));
    }
    let ids = q.list("SecurityGroupRuleId");
    let selected: Vec<&Rule> = state
        .rules
        .iter()
        .filter(|r| {
            state
                .group(&r.group)
                .is_some_and(|g| g.provider == Provider::Aws)
        })
        .filter(|r| ids.is_empty() || ids.iter().any(|i| i == r.id.as_str()))
        .filter(|r| q.pass("group-id", Some(r.group.as_str())))
        .filter(|r| q.pass("security-group-rule-id", Some(r.id.as_str())))
        .filter(|r| q.pass_tags(&tags(&r.attrs)))
        .collect();
    for id in &ids {
        if !selected.iter().any(|r| r.id.as_str() == id) {
            return Err(ApiError::new(
                "InvalidSecurityGroupRuleId.NotFound",
                400,
                format!("The security group rule ID '{id}' does not exist"),
            ));
        }
    }
    let (start, end, next) = q.page(selected.len(), 5, 1000)?;
    x.open("securityGroupRuleSet");
    for r in &selected[start..end] {
        let g = state.group(&r.group);
        let (from, to) = ports(state, r);
        x.open("item");
        x.leaf("securityGroupRuleId", r.id.as_str());
        x.leaf("groupId", r.group.as_str());
        x.opt(
            "groupOwnerId",
            r.attrs
                .get("GroupOwnerId")
                .map(String::as_str)
                .or(g.and_then(|g| g.owner.as_deref())),
        );
        x.leaf(
            "isEgress",
            if r.direction == crate::model::Direction::Egress {
                "true"
            } else {
                "false"
            },
        );
        x.leaf("ipProtocol", &protocol(r.protocol));
        x.leaf("fromPort", &from.to_string());
        x.leaf("toPort", &to.to_string());
        match &r.remote {
            Peer::Cidr { cidr } if cidr.family() == Family::V4 => {
                x.leaf("cidrIpv4", &cidr.to_string())
            }
            Peer::Cidr { cidr } => x.leaf("cidrIpv6", &cidr.to_string()),
            Peer::PrefixList { prefix_list_id } => x.leaf("prefixListId", prefix_list_id.as_str()),
            Peer::Group { group_id, owner } => {
                x.open("referencedGroupInfo");
                x.leaf("groupId", group_id.as_str());
                x.opt("userId", owner.as_deref());
                x.opt("vpcId", r.attrs.get("VpcId").map(String::as_str));
                x.close("referencedGroupInfo");
            }
        }
        x.opt("description", r.description.as_deref());
        x.opt(
            "securityGroupRuleArn",
            r.attrs.get("SecurityGroupRuleArn").map(String::as_str),
        );
        x.open("tagSet");
        if let Some(tags) = r
            .attrs
            .get("Tags")
            .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
        {
            for t in tags.as_array().into_iter().flatten() {
                x.open("item");
                x.opt("key", t["Key"].as_str());
                x.opt("value", t["Value"].as_str());
                x.close("item");
            }
        }
        x.close("tagSet");
        x.close("item");
    }
    x.close("securityGroupRuleSet");
    x.opt("nextToken", next.as_deref());
    Ok(())
}

fn enis(state: &State, params: &Params, x: &mut Xml) -> Result<(), ApiError> {
    let q = Query::new(
        params,
        &[
            "network-interface-id",
            "vpc-id",
            "group-id",
            "addresses.private-ip-address",
        ],
    )?;
    let ids = q.list("NetworkInterfaceId");
    let aws = |e: &&crate::model::Eni| {
        e.groups
            .iter()
            .any(|g| state.group(g).is_some_and(|g| g.provider == Provider::Aws))
    };
    let selected: Vec<_> = state
        .enis
        .iter()
        .filter(aws)
        .filter(|e| ids.is_empty() || ids.iter().any(|i| i == e.id.as_str()))
        .filter(|e| q.pass("network-interface-id", Some(e.id.as_str())))
        .filter(|e| q.pass("vpc-id", e.vpc.as_ref().map(|v| v.as_str())))
        .filter(|e| {
            q.filters.get("group-id").is_none_or(|vs| {
                e.groups
                    .iter()
                    .any(|g| vs.iter().any(|v| wild(v, g.as_str())))
            })
        })
        .filter(|e| {
            q.filters
                .get("addresses.private-ip-address")
                .is_none_or(|vs| {
                    e.ips
                        .iter()
                        .any(|ip| vs.iter().any(|v| *v == ip.to_string()))
                })
        })
        .collect();
    for id in &ids {
        if !selected.iter().any(|e| e.id.as_str() == id) {
            return Err(ApiError::new(
                "InvalidNetworkInterfaceID.NotFound",
                400,
                format!("The networkInterface ID '{id}' does not exist"),
            ));
        }
    }
    let (start, end, next) = q.page(selected.len(), 5, 1000)?;
    x.open("networkInterfaceSet");
    for e in &selected[start..end] {
        let v4: Vec<String> = e
            .ips
            .iter()
            .filter(|i| i.is_ipv4())
            .map(|i| i.to_string())
            .collect();
        x.open("item");
        x.leaf("networkInterfaceId", e.id.as_str());
        x.opt("vpcId", e.vpc.as_ref().map(|v| v.as_str()));
        x.opt("privateIpAddress", v4.first().map(String::as_str));
        x.open("groupSet");
        for g in &e.groups {
            x.open("item");
            x.leaf("groupId", g.as_str());
            x.opt("groupName", state.group(g).and_then(|g| g.name.as_deref()));
            x.close("item");
        }
        x.close("groupSet");
        x.open("privateIpAddressesSet");
        for (i, ip) in v4.iter().enumerate() {
            x.open("item");
            x.leaf("privateIpAddress", ip);
            x.leaf("primary", if i == 0 { "true" } else { "false" });
            x.close("item");
        }
        x.close("privateIpAddressesSet");
        x.open("ipv6AddressesSet");
        for ip in e.ips.iter().filter(|i| i.is_ipv6()) {
            x.open("item");
            x.leaf("ipv6Address", &ip.to_string());
            x.close("item");
        }
        x.close("ipv6AddressesSet");
        if let Some(p) = e.public_ips.first() {
            x.open("association");
            x.leaf("publicIp", &p.to_string());
            x.close("association");
        }
        x.close("item");
    }
    x.close("networkInterfaceSet");
    x.opt("nextToken", next.as_deref());
    Ok(())
}

fn vpcs(state: &State, params: &Params, x: &mut Xml) -> Result<(), ApiError> {
    let q = Query::new(params, &["vpc-id", "is-default"])?;
    let ids = q.list("VpcId");
    let selected: Vec<_> = state
        .vpcs
        .iter()
        .filter(|v| ids.is_empty() || ids.iter().any(|i| i == v.id.as_str()))
        .filter(|v| q.pass("vpc-id", Some(v.id.as_str())))
        .filter(|v| {
            q.pass(
                "is-default",
                Some(if v.is_default { "true" } else { "false" }),
            )
        })
        .collect();
    let (start, end, next) = q.page(selected.len(), 5, 1000)?;
    x.open("vpcSet");
    for v in &selected[start..end] {
        x.open("item");
        x.leaf("vpcId", v.id.as_str());
        x.leaf("state", "available");
        x.leaf("isDefault", if v.is_default { "true" } else { "false" });
        x.close("item");
    }
    x.close("vpcSet");
    x.opt("nextToken", next.as_deref());
    Ok(())
}

fn family(entries: &[crate::model::Cidr]) -> &'static str {
    if entries.iter().any(|c| c.family() == Family::V6) {
        "IPv6"
    } else {
        "IPv4"
    }
}

fn prefix_lists(state: &State, params: &Params, x: &mut Xml) -> Result<(), ApiError> {
    let q = Query::new(params, &["prefix-list-id", "prefix-list-name"])?;
    let ids = q.list("PrefixListId");
    let selected: Vec<_> = state
        .prefix_lists
        .iter()
        .filter(|p| p.id.as_str().starts_with("pl-"))
        .filter(|p| ids.is_empty() || ids.iter().any(|i| i == p.id.as_str()))
        .filter(|p| q.pass("prefix-list-id", Some(p.id.as_str())))
        .filter(|p| q.pass("prefix-list-name", p.name.as_deref()))
        .collect();
    let (start, end, next) = q.page(selected.len(), 1, 100)?;
    x.open("prefixListSet");
    for p in &selected[start..end] {
        x.open("item");
        x.leaf("prefixListId", p.id.as_str());
        x.opt("prefixListName", p.name.as_deref());
        x.leaf("addressFamily", family(&p.entries));
        x.leaf("state", "create-complete");
        x.close("item");
    }
    x.close("prefixListSet");
    x.opt("nextToken", next.as_deref());
    Ok(())
}

fn entries(state: &State, params: &Params, x: &mut Xml) -> Result<(), ApiError> {
    let q = Query::new(params, &[])?;
    let Some(id) = params.get("PrefixListId") else {
        return Err(ApiError::new(
            "MissingParameter",
            400,
            "The request must contain the parameter PrefixListId",
        ));
    };
    let Some(list) = state.prefix_lists.iter().find(|p| p.id.as_str() == id) else {
        return Err(ApiError::new(
            "InvalidPrefixListID.NotFound",
            400,
            format!("The prefix list ID '{id}' does not exist"),
        ));
    };
    let (start, end, next) = q.page(list.entries.len(), 1, 100)?;
    x.open("entrySet");
    for c in &list.entries[start..end] {
        x.open("item");
        x.leaf("cidr", &c.to_string());
        x.close("item");
    }
    x.close("entrySet");
    x.opt("nextToken", next.as_deref());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// `web` in the default VPC (tagged, SSH from 10/8, egress to `app`), `app` of the same
    /// name as a group in another VPC, and a tagged rule export.
    fn state() -> State {
        let docs = vec![
            (
                "t.json".to_string(),
                json!({
                    "SecurityGroups": [
                        {"GroupId": "sg-0web", "GroupName": "web", "Description": "web tier",
                         "VpcId": "vpc-0def", "OwnerId": "111",
                         "Tags": [{"Key": "env", "Value": "prod"}],
                         "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
                            "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}],
                         "IpPermissionsEgress": [{"IpProtocol": "-1",
                            "UserIdGroupPairs": [{"GroupId": "sg-0app", "UserId": "111"}]}]},
                        {"GroupId": "sg-0app", "GroupName": "app", "Description": "app tier",
                         "VpcId": "vpc-0def", "OwnerId": "111",
                         "IpPermissions": [{"IpProtocol": "udp", "FromPort": 53, "ToPort": 53,
                            "Ipv6Ranges": [{"CidrIpv6": "2001:db8::/32"}]}]},
                        {"GroupId": "sg-0other", "GroupName": "app", "Description": "elsewhere",
                         "VpcId": "vpc-0abc", "OwnerId": "111"}
                    ],
                    "Vpcs": [{"VpcId": "vpc-0def", "IsDefault": true},
                             {"VpcId": "vpc-0abc", "IsDefault": false}]
                }),
            ),
            (
                "r.json".to_string(),
                json!({"SecurityGroupRules": [
                    {"SecurityGroupRuleId": "sgr-0tagged", "GroupId": "sg-0web", "IsEgress": false,
                     "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "CidrIpv4": "10.0.0.0/8",
                     "Tags": [{"Key": "owner", "Value": "ops"}]}
                ]}),
            ),
        ];
        crate::provider::aws::import(&docs).unwrap().state
    }

    fn ask(action: &str, query: &str) -> Result<String, ApiError> {
        describe(&state(), action, &Params::from_query(query), "r")
    }

    fn group_ids(query: &str) -> Vec<String> {
        let xml = ask("DescribeSecurityGroups", query).unwrap();
        xml.split("<item><ownerId>111</ownerId><groupId>")
            .skip(1)
            .map(|p| p.split('<').next().unwrap().to_string())
            .collect()
    }

    fn rule_ids(query: &str) -> Vec<String> {
        let xml = ask("DescribeSecurityGroupRules", query).unwrap();
        xml.split("<securityGroupRuleId>")
            .skip(1)
            .map(|p| p.split('<').next().unwrap().to_string())
            .collect()
    }

    fn filter(name: &str, value: &str) -> String {
        format!("Filter.1.Name={name}&Filter.1.Value.1={}", encoded(value))
    }

    /// Percent-encodes what a query value cannot hold as is.
    fn encoded(v: &str) -> String {
        form_urlencoded::byte_serialize(v.as_bytes()).collect()
    }

    /// Bug: DescribeSecurityGroups left out the groups' tags (`tagSet`), which the filters
    /// `tag:<key>` already read.
    #[test]
    fn regression_groups_carry_their_tags() {
        let xml = ask("DescribeSecurityGroups", "GroupId.1=sg-0web").unwrap();
        assert!(
            xml.contains("<tagSet><item><key>env</key><value>prod</value></item></tagSet>"),
            "{xml}"
        );
        let xml = ask("DescribeSecurityGroups", "GroupId.1=sg-0app").unwrap();
        assert!(!xml.contains("<tagSet>"), "{xml}");
    }

    /// Bug: filter values were compared literally; EC2 reads `*` and `?` in them as
    /// wildcards, and a backslash as an escape.
    #[test]
    fn regression_filter_values_take_wildcards() {
        assert!(wild("sg-*", "sg-0abc"));
        assert!(wild("*", ""));
        assert!(wild("w?b", "web"));
        assert!(!wild("w?b", "wb"));
        assert!(wild("*-db-*", "prod-db-1"));
        assert!(!wild("*-db-*", "prod-web-1"));
        assert!(wild("a*b*c", "aXXbYYc"));
        assert!(!wild("a*b*c", "aXXbYY"));
        assert!(wild("\\*lit\\?", "*lit?"));
        assert!(!wild("\\*lit", "xlit"));
        assert!(wild("10.0.0.0/8", "10.0.0.0/8"));
        assert!(!wild("10.0.0.0/8", "10.0.0.0/16"));
        // Through the API: tags and ip-permission fields.
        assert_eq!(rule_ids(&filter("tag:owner", "o*")), ["sgr-0tagged"]);
        assert!(rule_ids(&filter("tag:owner", "d*")).is_empty());
        assert_eq!(rule_ids(&filter("tag-key", "ow?er")), ["sgr-0tagged"]);
    }

    /// Bug: `tag:<key>` and `tag-key` on DescribeSecurityGroupRules were refused
    /// (SEMANTICS.md §1.3 lists `tag:<k>`).
    #[test]
    fn dsgr_accepts_tag_filters() {
        assert_eq!(rule_ids(&filter("tag:owner", "ops")), ["sgr-0tagged"]);
        assert!(rule_ids(&filter("tag:owner", "dev")).is_empty());
        assert_eq!(rule_ids(&filter("tag-key", "owner")), ["sgr-0tagged"]);
        assert!(rule_ids(&filter("tag-key", "env")).is_empty());
        let e = ask("DescribeSecurityGroupRules", &filter("tag:", "x")).unwrap_err();
        assert_eq!(e.code, "InvalidParameterValue");
        let e = ask("DescribeSecurityGroupRules", &filter("vpc-id", "x")).unwrap_err();
        assert_eq!(
            (e.code.as_str(), e.message.as_str()),
            ("InvalidParameterValue", "The filter 'vpc-id' is invalid")
        );
    }

    /// Bug: DescribeSecurityGroups refused the filters EC2 documents beyond four.
    #[test]
    fn dsg_accepts_documented_filters() {
        let cases = [
            ("description", "app tier", vec!["sg-0app"]),
            ("tag:env", "prod", vec!["sg-0web"]),
            ("tag-key", "env", vec!["sg-0web"]),
            ("ip-permission.cidr", "10.0.0.0/8", vec!["sg-0web"]),
            ("ip-permission.ipv6-cidr", "2001:db8::/32", vec!["sg-0app"]),
            ("ip-permission.protocol", "udp", vec!["sg-0app"]),
            ("ip-permission.protocol", "6", vec!["sg-0web"]),
            ("ip-permission.from-port", "22", vec!["sg-0web"]),
            ("ip-permission.to-port", "53", vec!["sg-0app"]),
            ("egress.ip-permission.group-id", "sg-0app", vec!["sg-0web"]),
            ("egress.ip-permission.group-name", "app", vec!["sg-0web"]),
            ("egress.ip-permission.user-id", "111", vec!["sg-0web"]),
            ("egress.ip-permission.protocol", "-1", vec!["sg-0web"]),
            ("egress.ip-permission.cidr", "10.0.0.0/8", vec![]),
            ("ip-permission.prefix-list-id", "pl-1", vec![]),
            ("owner-id", "111", vec!["sg-0web", "sg-0app", "sg-0other"]),
            ("vpc-id", "vpc-0abc", vec!["sg-0other"]),
        ];
        for (name, value, want) in cases {
            assert_eq!(group_ids(&filter(name, value)), want, "{name}={value}");
        }
        // Two rule filters: met by different rules of the group, as EC2 documents.
        assert_eq!(
            group_ids("Filter.1.Name=ip-permission.cidr&Filter.1.Value.1=10.0.0.0/8&Filter.2.Name=egress.ip-permission.group-id&Filter.2.Value.1=sg-0app"),
            ["sg-0web"]
        );
        let e = ask("DescribeSecurityGroups", &filter("ip-permission.nope", "1")).unwrap_err();
        assert_eq!(
            (e.code.as_str(), e.message.as_str()),
            (
                "InvalidParameterValue",
                "The filter 'ip-permission.nope' is invalid"
            )
        );
    }

    /// Bug: a malformed `group-id` filter value answered an empty list (SEMANTICS.md
    /// §2.2.1).
    #[test]
    fn dsgr_malformed_group_id_filter_is_an_error() {
        let e = ask("DescribeSecurityGroupRules", &filter("group-id", "foobar")).unwrap_err();
        assert_eq!(
            (e.code.as_str(), e.status, e.message.as_str()),
            (
                "InvalidGroupId.Malformed",
                400,
                "The security group ID 'foobar' is malformed"
            )
        );
        assert_eq!(
            rule_ids(&filter("group-id", "sg-0nope")),
            Vec::<String>::new()
        );
    }

    /// Bug: GroupNames matched groups of every VPC; names resolve in the default VPC only.
    #[test]
    fn dsg_group_names_resolve_in_the_default_vpc_only() {
        assert_eq!(group_ids("GroupName.1=app"), ["sg-0app"]);
        let mut s = state();
        s.groups.retain(|g| g.id.as_str() != "sg-0app");
        let e = describe(
            &s,
            "DescribeSecurityGroups",
            &Params::from_query("GroupName.1=app"),
            "r",
        )
        .unwrap_err();
        assert_eq!(
            (e.code.as_str(), e.message.as_str()),
            (
                "InvalidGroup.NotFound",
                "The security group 'app' does not exist in default VPC 'vpc-0def'"
            )
        );
        let e = ask("DescribeSecurityGroups", "GroupName.1=nope").unwrap_err();
        assert_eq!(
            e.message,
            "The security group 'nope' does not exist in default VPC 'vpc-0def'"
        );
    }
}
