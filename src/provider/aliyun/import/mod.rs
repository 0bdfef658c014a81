//! Alibaba ECS exports → [`State`]: `DescribeSecurityGroupAttribute` (rules),
//! `DescribeSecurityGroups` (group type, network, managed flag), `DescribeNetworkInterfaces`
//! (ENIs) and `DescribePrefixLists` / `DescribePrefixListAttributes` (prefix lists).
//!
//! Alibaba returns empty strings for unset fields; they count as absent. A single
//! object where a list is expected (what XML-to-JSON converters make of a one-item list) is
//! read as a list of one.
//!
//! `mod.rs` recognises the exports, reads them in order and merges the groups
//! ([`import`]); `json.rs` reads fields with their JSON paths in errors; `groups.rs` reads
//! `DescribeSecurityGroups`; `enis.rs` reads `DescribeNetworkInterfaces`; `rules.rs` reads
//! `DescribeSecurityGroupAttribute`, one permission at a time.

mod enis;
mod groups;
mod json;
mod rules;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use self::enis::interfaces;
use self::groups::describe_groups;
use self::json::{items, object, text, Ctx};
use self::rules::attribute;
use crate::model::{
    Action, Cidr, Eni, GroupKind, Peer, PrefixList, Provider, Rule, SecurityGroup, State, Vpc,
    VpcId,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Priority, Protocol};
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
