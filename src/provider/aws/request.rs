//! Revoke requests (EC2 Query parameters or `--cli-input-json`) → [`Request`], with the
//! protocol-level checks of validation step 1.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::errors::{bad_value, missing, not_on_egress, repeated, unknown};
use crate::model::Direction;
use crate::provider::{ApiError, Params, RawRequest, RequestError};

/// One `IpRanges` / `Ipv6Ranges` entry as given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct CidrEntry {
    pub cidr: Option<String>,
    pub description: Option<String>,
}

/// One `PrefixListIds` entry as given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct PrefixEntry {
    pub id: Option<String>,
    pub description: Option<String>,
}

/// One `UserIdGroupPairs` (`Groups`) entry as given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct PairEntry {
    pub group_id: Option<String>,
    pub group_name: Option<String>,
    pub user_id: Option<String>,
    pub description: Option<String>,
    /// `VpcId`, `VpcPeeringConnectionId`, `PeeringStatus`: accepted, not compared.
    pub ignored: Vec<String>,
}

/// One `IpPermissions` item as given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Permission {
    pub protocol: Option<String>,
    pub from_port: Option<i64>,
    pub to_port: Option<i64>,
    pub ipv4: Vec<CidrEntry>,
    pub ipv6: Vec<CidrEntry>,
    pub prefix_lists: Vec<PrefixEntry>,
    pub groups: Vec<PairEntry>,
}

/// The legacy single-rule parameters (ingress).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Legacy {
    pub ip_protocol: Option<String>,
    pub from_port: Option<i64>,
    pub to_port: Option<i64>,
    pub cidr_ip: Option<String>,
    pub source_group_name: Option<String>,
    pub source_group_owner_id: Option<String>,
}

impl Legacy {
    fn is_empty(&self) -> bool {
        *self == Legacy::default()
    }
}

/// A revoke request, parsed but not yet checked against a state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Request {
    pub direction: Direction,
    pub group_id: Option<String>,
    pub group_name: Option<String>,
    pub dry_run: bool,
    pub rule_ids: Vec<String>,
    pub permissions: Vec<Permission>,
    pub legacy: Option<Legacy>,
}

/// Parses a request. The outer error is for text that is no AWS request at all; the inner
/// one is the API's answer to a malformed request.
pub(super) fn parse(
    raw: &RawRequest,
    direction: Direction,
) -> Result<Result<Request, ApiError>, RequestError> {
    Ok(match raw {
        RawRequest::Query(params) => from_query(params, direction),
        RawRequest::Json(Value::Object(o)) => from_json(o, direction),
        RawRequest::Json(_) => return Err(RequestError::NotARequest),
        RawRequest::Repeated { name, .. } => Err(repeated(name)),
    }
    .and_then(|r| finish(r, direction)))
}

/// Checks common to both forms.
fn finish(r: Request, direction: Direction) -> Result<Request, ApiError> {
    if direction == Direction::Egress {
        if let Some(legacy) = &r.legacy {
            let name = [
                (legacy.ip_protocol.is_some(), "IpProtocol"),
                (legacy.from_port.is_some(), "FromPort"),
                (legacy.to_port.is_some(), "ToPort"),
                (legacy.cidr_ip.is_some(), "CidrIp"),
                (
                    legacy.source_group_name.is_some(),
                    "SourceSecurityGroupName",
                ),
                (
                    legacy.source_group_owner_id.is_some(),
                    "SourceSecurityGroupOwnerId",
                ),
            ]
            .into_iter()
            .find_map(|(given, n)| given.then_some(n))
            .unwrap_or("CidrIp");
            return Err(not_on_egress(name));
        }
    }
    if r.group_id.is_none() && r.group_name.is_none() {
        let wanted = match direction {
            Direction::Ingress => "groupName or groupId",
            Direction::Egress => "groupId",
        };
        return Err(missing(wanted));
    }
    Ok(r)
}

/// Parameters every EC2 Query request may carry that do not affect the call.
fn is_common(key: &str) -> bool {
    matches!(
        key,
        "Action"
            | "Version"
            | "AWSAccessKeyId"
            | "Signature"
            | "SignatureMethod"
            | "SignatureVersion"
            | "Timestamp"
            | "Expires"
            | "SecurityToken"
            | "AUTHPARAMS"
    ) || key
        .get(..6)
        .is_some_and(|p| p.eq_ignore_ascii_case("X-Amz-"))
}

/// A 1-based list index: digits, no leading zero, at least 1.
fn index(text: &str) -> Option<u32> {
    if text.is_empty() || text.starts_with('0') || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn query_int(name: &str, value: &str) -> Result<i64, ApiError> {
    value
        .trim()
        .parse::<i32>()
        .map(i64::from)
        .map_err(|_| bad_value(name, value, "an integer"))
}

fn query_bool(name: &str, value: &str) -> Result<bool, ApiError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(bad_value(name, value, "true or false")),
    }
}

fn set<T>(slot: &mut Option<T>, value: T, name: &str) -> Result<(), ApiError> {
    if slot.is_some() {
        return Err(repeated(name));
    }
    *slot = Some(value);
    Ok(())
}

fn from_query(params: &Params, direction: Direction) -> Result<Request, ApiError> {
    let mut group_id = None;
    let mut group_name = None;
    let mut dry_run = None;
    let mut ids: BTreeMap<u32, String> = BTreeMap::new();
    let mut perms: BTreeMap<u32, QueryPermission> = BTreeMap::new();
    let mut legacy = Legacy::default();
    for (key, value) in &params.0 {
        let key = key.trim();
        if is_common(key) {
            continue;
        }
        let value = value.trim();
        if value.is_empty() {
            // An empty value is the same as an absent parameter, but the name must exist.
            check_name(key, direction)?;
            continue;
        }
        let v = value.to_string();
        match key {
            "GroupId" => set(&mut group_id, v, key)?,
            "GroupName" if direction == Direction::Ingress => set(&mut group_name, v, key)?,
            "DryRun" => set(&mut dry_run, query_bool(key, value)?, key)?,
            "IpProtocol" => set(&mut legacy.ip_protocol, v, key)?,
            "FromPort" => set(&mut legacy.from_port, query_int(key, value)?, key)?,
            "ToPort" => set(&mut legacy.to_port, query_int(key, value)?, key)?,
            "CidrIp" => set(&mut legacy.cidr_ip, v, key)?,
            "SourceSecurityGroupName" => set(&mut legacy.source_group_name, v, key)?,
            "SourceSecurityGroupOwnerId" => set(&mut legacy.source_group_owner_id, v, key)?,
            _ => {
                let parts: Vec<&str> = key.split('.').collect();
                match parts.as_slice() {
                    ["SecurityGroupRuleId", n] => {
                        let n = index(n).ok_or_else(|| unknown(key))?;
                        if ids.insert(n, v).is_some() {
                            return Err(repeated(key));
                        }
                    }
                    ["IpPermissions", n, rest @ ..] => {
                        let n = index(n).ok_or_else(|| unknown(key))?;
                        perms.entry(n).or_default().set(rest, key, value)?;
                    }
                    _ => return Err(unknown(key)),
                }
            }
        }
    }
    Ok(Request {
        direction,
        group_id,
        group_name,
        dry_run: dry_run.unwrap_or(false),
        rule_ids: ids.into_values().collect(),
        permissions: perms.into_values().map(QueryPermission::build).collect(),
        legacy: (!legacy.is_empty()).then_some(legacy),
    })
}

/// Whether a parameter name (given with an empty value) is one the call knows.
fn check_name(key: &str, direction: Direction) -> Result<(), ApiError> {
    let mut probe = Params(vec![(key.to_string(), "0".to_string())]);
    // Reuse the full parser with a harmless value: only an unknown name can fail it with
    // UnknownParameter.
    if key.ends_with("DryRun") {
        probe.0[0].1 = "false".into();
    }
    match from_query(&probe, direction) {
        Err(e) if e.code == "UnknownParameter" => Err(e),
        _ => Ok(()),
    }
}

/// An `IpPermissions.N` item being collected from Query parameters.
#[derive(Default)]
struct QueryPermission {
    protocol: Option<String>,
    from_port: Option<i64>,
    to_port: Option<i64>,
    ipv4: BTreeMap<u32, CidrEntry>,
    ipv6: BTreeMap<u32, CidrEntry>,
    prefix_lists: BTreeMap<u32, PrefixEntry>,
    groups: BTreeMap<u32, PairEntry>,
}

impl QueryPermission {
    fn set(&mut self, rest: &[&str], key: &str, value: &str) -> Result<(), ApiError> {
        let v = value.to_string();
        match rest {
            ["IpProtocol"] => set(&mut self.protocol, v, key),
            ["FromPort"] => set(&mut self.from_port, query_int(key, value)?, key),
            ["ToPort"] => set(&mut self.to_port, query_int(key, value)?, key),
            ["IpRanges", m, field] => {
                let e = self
                    .ipv4
                    .entry(index(m).ok_or_else(|| unknown(key))?)
                    .or_default();
                match *field {
                    "CidrIp" => set(&mut e.cidr, v, key),
                    "Description" => set(&mut e.description, v, key),
                    _ => Err(unknown(key)),
                }
            }
            ["Ipv6Ranges", m, field] => {
                let e = self
                    .ipv6
                    .entry(index(m).ok_or_else(|| unknown(key))?)
                    .or_default();
                match *field {
                    "CidrIpv6" => set(&mut e.cidr, v, key),
                    "Description" => set(&mut e.description, v, key),
                    _ => Err(unknown(key)),
                }
            }
            ["PrefixListIds", m, field] => {
                let e = self
                    .prefix_lists
                    .entry(index(m).ok_or_else(|| unknown(key))?)
                    .or_default();
                match *field {
                    "PrefixListId" => set(&mut e.id, v, key),
                    "Description" => set(&mut e.description, v, key),
                    _ => Err(unknown(key)),
                }
            }
            ["Groups", m, field] => {
                let e = self
                    .groups
                    .entry(index(m).ok_or_else(|| unknown(key))?)
                    .or_default();
                match *field {
                    "GroupId" => set(&mut e.group_id, v, key),
                    "GroupName" => set(&mut e.group_name, v, key),
                    "UserId" => set(&mut e.user_id, v, key),
                    "Description" => set(&mut e.description, v, key),
                    "VpcId" | "VpcPeeringConnectionId" | "PeeringStatus" => {
                        e.ignored.push(field.to_string());
                        Ok(())
                    }
                    _ => Err(unknown(key)),
                }
            }
            _ => Err(unknown(key)),
        }
    }

    fn build(self) -> Permission {
        Permission {
            protocol: self.protocol,
            from_port: self.from_port,
            to_port: self.to_port,
            ipv4: self.ipv4.into_values().collect(),
            ipv6: self.ipv6.into_values().collect(),
            prefix_lists: self.prefix_lists.into_values().collect(),
            groups: self.groups.into_values().collect(),
        }
    }
}

/// Reads JSON members with paths for messages.
struct Json<'a> {
    o: &'a Map<String, Value>,
    path: String,
}

impl<'a> Json<'a> {
    fn name(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// Fails on the first member not in `known`.
    fn only(&self, known: &[&str]) -> Result<(), ApiError> {
        match self.o.keys().find(|k| !known.contains(&k.as_str())) {
            Some(k) => Err(unknown(&self.name(k))),
            None => Ok(()),
        }
    }

    fn str(&self, key: &str) -> Result<Option<String>, ApiError> {
        match self.o.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
            Some(v) => Err(bad_value(&self.name(key), &v.to_string(), "a string")),
        }
    }

    fn int(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.o.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_i64()
                .filter(|n| i32::try_from(*n).is_ok())
                .map(Some)
                .ok_or_else(|| bad_value(&self.name(key), &v.to_string(), "an integer")),
        }
    }

    fn bool(&self, key: &str) -> Result<Option<bool>, ApiError> {
        match self.o.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(bad_value(&self.name(key), &v.to_string(), "true or false")),
        }
    }

    /// The objects of an array member.
    fn objects(&self, key: &str) -> Result<Vec<Json<'a>>, ApiError> {
        let items = match self.o.get(key) {
            None | Some(Value::Null) => return Ok(Vec::new()),
            Some(Value::Array(a)) => a,
            Some(v) => return Err(bad_value(&self.name(key), &v.to_string(), "a list")),
        };
        items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let path = format!("{}[{i}]", self.name(key));
                match v {
                    Value::Object(o) => Ok(Json { o, path }),
                    other => Err(bad_value(&path, &other.to_string(), "an object")),
                }
            })
            .collect()
    }
}

fn from_json(o: &Map<String, Value>, direction: Direction) -> Result<Request, ApiError> {
    let top = Json {
        o,
        path: String::new(),
    };
    let mut known = vec![
        "Action",
        "Version",
        "GroupId",
        "DryRun",
        "IpPermissions",
        "SecurityGroupRuleIds",
        "IpProtocol",
        "FromPort",
        "ToPort",
        "CidrIp",
        "SourceSecurityGroupName",
        "SourceSecurityGroupOwnerId",
    ];
    if direction == Direction::Ingress {
        known.push("GroupName");
    }
    top.only(&known)?;
    let rule_ids = match o.get("SecurityGroupRuleIds") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) => Ok(s.trim().to_string()),
                other => Err(bad_value(
                    &format!("SecurityGroupRuleIds[{i}]"),
                    &other.to_string(),
                    "a string",
                )),
            })
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect(),
        Some(v) => return Err(bad_value("SecurityGroupRuleIds", &v.to_string(), "a list")),
    };
    let mut permissions = Vec::new();
    for p in top.objects("IpPermissions")? {
        p.only(&[
            "IpProtocol",
            "FromPort",
            "ToPort",
            "IpRanges",
            "Ipv6Ranges",
            "PrefixListIds",
            "UserIdGroupPairs",
        ])?;
        let mut perm = Permission {
            protocol: match p.o.get("IpProtocol") {
                Some(Value::Number(n)) => Some(n.to_string()),
                _ => p.str("IpProtocol")?,
            },
            from_port: p.int("FromPort")?,
            to_port: p.int("ToPort")?,
            ..Permission::default()
        };
        for r in p.objects("IpRanges")? {
            r.only(&["CidrIp", "Description"])?;
            perm.ipv4.push(CidrEntry {
                cidr: r.str("CidrIp")?,
                description: r.str("Description")?,
            });
        }
        for r in p.objects("Ipv6Ranges")? {
            r.only(&["CidrIpv6", "Description"])?;
            perm.ipv6.push(CidrEntry {
                cidr: r.str("CidrIpv6")?,
                description: r.str("Description")?,
            });
        }
        for r in p.objects("PrefixListIds")? {
            r.only(&["PrefixListId", "Description"])?;
            perm.prefix_lists.push(PrefixEntry {
                id: r.str("PrefixListId")?,
                description: r.str("Description")?,
            });
        }
        for r in p.objects("UserIdGroupPairs")? {
            let extra = ["VpcId", "VpcPeeringConnectionId", "PeeringStatus"];
            r.only(&[
                "GroupId",
                "GroupName",
                "UserId",
                "Description",
                extra[0],
                extra[1],
                extra[2],
            ])?;
            let mut ignored = Vec::new();
            for k in extra {
                if r.str(k)?.is_some() {
                    ignored.push(k.to_string());
                }
            }
            perm.groups.push(PairEntry {
                group_id: r.str("GroupId")?,
                group_name: r.str("GroupName")?,
                user_id: r.str("UserId")?,
                description: r.str("Description")?,
                ignored,
            });
        }
        permissions.push(perm);
    }
    let legacy = Legacy {
        ip_protocol: match o.get("IpProtocol") {
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => top.str("IpProtocol")?,
        },
        from_port: top.int("FromPort")?,
        to_port: top.int("ToPort")?,
        cidr_ip: top.str("CidrIp")?,
        source_group_name: top.str("SourceSecurityGroupName")?,
        source_group_owner_id: top.str("SourceSecurityGroupOwnerId")?,
    };
    Ok(Request {
        direction,
        group_id: top.str("GroupId")?,
        group_name: top.str("GroupName")?,
        dry_run: top.bool("DryRun")?.unwrap_or(false),
        rule_ids,
        permissions,
        legacy: (!legacy.is_empty()).then_some(legacy),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(text: &str) -> Result<Request, ApiError> {
        let raw = RawRequest::parse(text).unwrap();
        parse(&raw, Direction::Ingress).unwrap()
    }

    #[test]
    fn botocore_query_with_nested_lists() {
        let r = q("Action=RevokeSecurityGroupIngress&Version=2016-11-15&GroupId=sg-1\
            &IpPermissions.1.IpProtocol=tcp&IpPermissions.1.FromPort=22&IpPermissions.1.ToPort=22\
            &IpPermissions.1.IpRanges.2.CidrIp=198.51.100.7%2F32\
            &IpPermissions.1.IpRanges.1.CidrIp=203.0.113.0%2F24&IpPermissions.1.IpRanges.1.Description=office\
            &IpPermissions.1.Groups.1.GroupId=sg-2&IpPermissions.1.Groups.1.UserId=123\
            &IpPermissions.2.IpProtocol=icmp&IpPermissions.2.FromPort=8&IpPermissions.2.ToPort=-1\
            &X-Amz-Date=20260101T000000Z")
        .unwrap();
        assert_eq!(r.permissions.len(), 2);
        let p = &r.permissions[0];
        assert_eq!(p.ipv4[0].cidr.as_deref(), Some("203.0.113.0/24"));
        assert_eq!(p.ipv4[0].description.as_deref(), Some("office"));
        assert_eq!(p.ipv4[1].cidr.as_deref(), Some("198.51.100.7/32"));
        assert_eq!(p.groups[0].user_id.as_deref(), Some("123"));
        assert_eq!(r.permissions[1].to_port, Some(-1));
    }

    #[test]
    fn protocol_level_errors() {
        let code = |t: &str| q(t).unwrap_err().code;
        assert_eq!(
            code("Action=RevokeSecurityGroupIngress&GroupId=sg-1&Bogus=1"),
            "UnknownParameter"
        );
        assert_eq!(
            code("Action=RevokeSecurityGroupIngress&GroupId=sg-1&IpPermissions.0.IpProtocol=tcp"),
            "UnknownParameter"
        );
        assert_eq!(
            code("Action=RevokeSecurityGroupIngress&GroupId=sg-1&IpPermissions.01.IpProtocol=tcp"),
            "UnknownParameter"
        );
        assert_eq!(
            code("Action=RevokeSecurityGroupIngress&GroupId=sg-1&IpPermissions.1.FromPort=ssh"),
            "InvalidParameterValue"
        );
        assert_eq!(
            code("Action=RevokeSecurityGroupIngress&GroupId=sg-1&DryRun=maybe"),
            "InvalidParameterValue"
        );
        assert_eq!(
            code("Action=RevokeSecurityGroupIngress&IpPermissions.1.IpProtocol=tcp"),
            "MissingParameter"
        );
        assert_eq!(
            code("Action=RevokeSecurityGroupIngress&GroupId=sg-1&GroupId=sg-2"),
            "InvalidParameterValue"
        );
        assert_eq!(
            code("Action=RevokeSecurityGroupIngress&GroupId=sg-1&Bogus="),
            "UnknownParameter"
        );
        let egress = RawRequest::parse(
            "Action=RevokeSecurityGroupEgress&GroupName=x&IpPermissions.1.IpProtocol=-1",
        )
        .unwrap();
        assert_eq!(
            parse(&egress, Direction::Egress).unwrap().unwrap_err().code,
            "UnknownParameter"
        );
        let legacy =
            RawRequest::parse("Action=RevokeSecurityGroupEgress&GroupId=sg-1&CidrIp=1.2.3.4%2F32")
                .unwrap();
        assert_eq!(
            parse(&legacy, Direction::Egress).unwrap().unwrap_err().code,
            "InvalidParameterValue"
        );
    }

    #[test]
    fn cli_input_json() {
        let raw = RawRequest::parse(
            r#"{"Action":"RevokeSecurityGroupIngress","GroupId":"sg-1","DryRun":true,
                "IpPermissions":[{"IpProtocol":"tcp","FromPort":22,"ToPort":22,
                  "IpRanges":[{"CidrIp":"10.0.0.0/8","Description":"x"}],
                  "UserIdGroupPairs":[{"GroupId":"sg-2","UserId":"1"}]}],
                "SecurityGroupRuleIds":["sgr-1"]}"#,
        )
        .unwrap();
        let r = parse(&raw, Direction::Ingress).unwrap().unwrap();
        assert!(r.dry_run);
        assert_eq!(r.rule_ids, ["sgr-1"]);
        assert_eq!(r.permissions[0].groups[0].group_id.as_deref(), Some("sg-2"));
        for bad in [
            r#"{"Action":"RevokeSecurityGroupIngress","GroupId":"sg-1","Foo":1}"#,
            r#"{"Action":"RevokeSecurityGroupIngress","GroupId":"sg-1","IpPermissions":[{"IpProtocol":"tcp","FromPort":"22"}]}"#,
            r#"{"Action":"RevokeSecurityGroupIngress","GroupId":"sg-1","IpPermissions":[{"IpProtocol":"tcp","FromPort":1e99}]}"#,
            r#"{"Action":"RevokeSecurityGroupIngress","GroupId":"sg-1","IpPermissions":{}}"#,
            r#"{"Action":"RevokeSecurityGroupIngress","GroupId":"sg-1","IpPermissions":[{"Groups":[]}]}"#,
        ] {
            let raw = RawRequest::parse(bad).unwrap();
            assert!(parse(&raw, Direction::Ingress).unwrap().is_err(), "{bad}");
        }
        let arr = RawRequest::Json(serde_json::json!([1]));
        assert!(parse(&arr, Direction::Ingress).is_err());
    }
}
