//! AWS CLI describe-call exports → [`State`].
//!
//! `mod.rs` recognises the exports, reads them in order and merges what they say
//! ([`import`]); `json.rs` reads a file's fields with their JSON paths in errors;
//! `rules.rs` reads groups and their permissions and `describe-security-group-rules`;
//! `enis.rs` reads network interfaces and `describe-instances` reservations.

mod enis;
mod json;
mod rules;

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};

use self::enis::{read_eni, read_reservation};
use self::json::{join, File};
use self::rules::{read_group, read_rule};
use super::values::fnv1a;
use crate::model::{
    Cidr, Eni, GroupId, Peer, PrefixList, PrefixListId, Rule, SecurityGroup, State, Vpc,
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
    use crate::model::{IcmpSel, Protocol};
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
