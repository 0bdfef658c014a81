//! The EC2 Query API's describes, rendered from the model as EC2's XML, and its error
//! envelope.

use std::collections::BTreeMap;

use crate::model::{Family, Peer, Provider, Rule, SecurityGroup, State};
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
            if !allowed.contains(&name.as_str()) {
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
            .is_none_or(|vs| value.is_some_and(|v| vs.iter().any(|f| f == v)))
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
            return Err(ApiError::new(
                "InvalidGroupId.Malformed",
                400,
                format!("The security group ID '{id}' is malformed"),
            ));
        }
        if !aws_groups(state).any(|g| g.id.as_str() == id) {
            return Err(ApiError::new(
                "InvalidGroup.NotFound",
                400,
                format!("The security group '{id}' does not exist"),
            ));
        }
    }
    for name in &names {
        if !aws_groups(state).any(|g| g.name.as_deref() == Some(name)) {
            return Err(ApiError::new(
                "InvalidGroup.NotFound",
                400,
                format!("The security group '{name}' does not exist"),
            ));
        }
    }
    Ok(aws_groups(state)
        .filter(|g| ids.is_empty() || ids.iter().any(|i| i == g.id.as_str()))
        .filter(|g| names.is_empty() || names.iter().any(|n| Some(n.as_str()) == g.name.as_deref()))
        .filter(|g| q.pass("group-id", Some(g.id.as_str())))
        .filter(|g| q.pass("group-name", g.name.as_deref()))
        .filter(|g| q.pass("vpc-id", g.vpc.as_ref().map(|v| v.as_str())))
        .filter(|g| q.pass("owner-id", g.owner.as_deref()))
        .collect())
}

fn groups(state: &State, params: &Params, x: &mut Xml) -> Result<(), ApiError> {
    let q = Query::new(params, &["group-id", "group-name", "vpc-id", "owner-id"])?;
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
    let q = Query::new(params, &["group-id", "security-group-rule-id"])?;
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
            q.filters
                .get("group-id")
                .is_none_or(|vs| e.groups.iter().any(|g| vs.iter().any(|v| v == g.as_str())))
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
