//! Revoke requests as the user gives them (RPC query string, URL, or JSON) read into one
//! [`Request`]: the rule IDs, the `Permissions.N` entries and the legacy flat parameters,
//! each kept as text. Checking the values is the revoke stage's job, because a bad value is
//! an API error, not an unusable request.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::model::Direction;
use crate::provider::{RawRequest, RequestError};

/// The largest `N` of `Permissions.N` and `SecurityGroupRuleId.N`.
pub(super) const MAX_ITEMS: u32 = 100;

/// One field of a rule specification: a `Permissions.N.*` member or a legacy flat parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum Field {
    /// `accept` / `drop`.
    Policy,
    /// 1..=100.
    Priority,
    /// TCP, UDP, ICMP, ICMPv6, GRE, ALL.
    IpProtocol,
    /// Destination ports `a/b`.
    PortRange,
    /// A port list `prl-…`.
    PortRangeListId,
    /// Source ports `a/b` (quintuple rules).
    SourcePortRange,
    /// IPv4 source (ingress peer, egress local side).
    SourceCidrIp,
    /// IPv6 source.
    Ipv6SourceCidrIp,
    /// IPv4 destination (egress peer, ingress local side).
    DestCidrIp,
    /// IPv6 destination.
    Ipv6DestCidrIp,
    /// Ingress group peer.
    SourceGroupId,
    /// Owner account ID of the ingress group peer.
    SourceGroupOwnerId,
    /// Owner account of the ingress group peer.
    SourceGroupOwnerAccount,
    /// Ingress prefix-list peer.
    SourcePrefixListId,
    /// Egress group peer.
    DestGroupId,
    /// Owner account ID of the egress group peer.
    DestGroupOwnerId,
    /// Owner account of the egress group peer.
    DestGroupOwnerAccount,
    /// Egress prefix-list peer.
    DestPrefixListId,
    /// `internet` / `intranet`.
    NicType,
    /// Free text, not part of the match.
    Description,
}

impl Field {
    /// Every field.
    pub(super) const ALL: [Field; 20] = [
        Field::Policy,
        Field::Priority,
        Field::IpProtocol,
        Field::PortRange,
        Field::PortRangeListId,
        Field::SourcePortRange,
        Field::SourceCidrIp,
        Field::Ipv6SourceCidrIp,
        Field::DestCidrIp,
        Field::Ipv6DestCidrIp,
        Field::SourceGroupId,
        Field::SourceGroupOwnerId,
        Field::SourceGroupOwnerAccount,
        Field::SourcePrefixListId,
        Field::DestGroupId,
        Field::DestGroupOwnerId,
        Field::DestGroupOwnerAccount,
        Field::DestPrefixListId,
        Field::NicType,
        Field::Description,
    ];

    /// The parameter name.
    pub(super) fn name(self) -> &'static str {
        match self {
            Field::Policy => "Policy",
            Field::Priority => "Priority",
            Field::IpProtocol => "IpProtocol",
            Field::PortRange => "PortRange",
            Field::PortRangeListId => "PortRangeListId",
            Field::SourcePortRange => "SourcePortRange",
            Field::SourceCidrIp => "SourceCidrIp",
            Field::Ipv6SourceCidrIp => "Ipv6SourceCidrIp",
            Field::DestCidrIp => "DestCidrIp",
            Field::Ipv6DestCidrIp => "Ipv6DestCidrIp",
            Field::SourceGroupId => "SourceGroupId",
            Field::SourceGroupOwnerId => "SourceGroupOwnerId",
            Field::SourceGroupOwnerAccount => "SourceGroupOwnerAccount",
            Field::SourcePrefixListId => "SourcePrefixListId",
            Field::DestGroupId => "DestGroupId",
            Field::DestGroupOwnerId => "DestGroupOwnerId",
            Field::DestGroupOwnerAccount => "DestGroupOwnerAccount",
            Field::DestPrefixListId => "DestPrefixListId",
            Field::NicType => "NicType",
            Field::Description => "Description",
        }
    }

    /// The field of this name (exact, case-sensitive, as Alibaba's parameters are).
    pub(super) fn parse(name: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.name() == name)
    }

    /// Whether the API of `direction` has this field (the group and prefix-list peers exist
    /// only on the side of the remote peer).
    pub(super) fn applies_to(self, direction: Direction) -> bool {
        match self {
            Field::SourceGroupId
            | Field::SourceGroupOwnerId
            | Field::SourceGroupOwnerAccount
            | Field::SourcePrefixListId => direction == Direction::Ingress,
            Field::DestGroupId
            | Field::DestGroupOwnerId
            | Field::DestGroupOwnerAccount
            | Field::DestPrefixListId => direction == Direction::Egress,
            _ => true,
        }
    }
}

/// One rule specification as given: a `Permissions.N` entry or the legacy flat parameters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Spec {
    /// How its parameters are named: `""` (flat) or `Permissions.N.`.
    pub prefix: String,
    /// The non-empty values given.
    pub values: BTreeMap<Field, String>,
}

impl Spec {
    /// The value of a field, if given (empty text counts as not given).
    pub(super) fn get(&self, field: Field) -> Option<&str> {
        self.values.get(&field).map(String::as_str)
    }

    /// The full parameter name of a field, for messages (`Permissions.2.PortRange`).
    pub(super) fn param(&self, field: Field) -> String {
        format!("{}{}", self.prefix, field.name())
    }
}

/// A revoke request, read but not checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Request {
    /// `RevokeSecurityGroup` (ingress) or `RevokeSecurityGroupEgress`.
    pub direction: Direction,
    /// The first parameter (or JSON key path) given more than once: the request is
    /// rejected with `InvalidParameter` before anything else is checked.
    pub repeated: Option<String>,
    /// `RegionId`.
    pub region: Option<String>,
    /// `SecurityGroupId`.
    pub group: Option<String>,
    /// `ClientToken`.
    pub client_token: Option<String>,
    /// `OwnerId` (the caller's account), when given.
    pub owner_id: Option<String>,
    /// `SecurityGroupRuleId.N`, in index order.
    pub rule_ids: Vec<String>,
    /// `Permissions.N`, in index order.
    pub permissions: Vec<Spec>,
    /// The legacy flat parameters.
    pub flat: Spec,
    /// The first `Permissions.N…` parameter whose `N` is not 1..=100.
    pub bad_permission_index: Option<String>,
    /// The first `SecurityGroupRuleId.N` parameter whose `N` is not 1..=100.
    pub bad_rule_id_index: Option<String>,
    /// Whether the text held a documentation placeholder such as `<公共请求参数>`.
    pub placeholder: bool,
    /// The identifying parameters, sorted (everything but common parameters and the
    /// ClientToken): the idempotency fingerprint and the request ID's seed.
    pub fingerprint: String,
    /// Things noticed while reading (ignored parameters, …).
    pub notes: Vec<String>,
}

/// Common RPC parameters: signature, format and the like. They never change what a revoke does.
const COMMON: &[&str] = &[
    "Format",
    "Version",
    "AccessKeyId",
    "SignatureMethod",
    "SignatureVersion",
    "SignatureNonce",
    "SignatureType",
    "Signature",
    "Timestamp",
    "SecurityToken",
    "BearerToken",
    "OwnerAccount",
    "ResourceOwnerAccount",
    "ResourceOwnerId",
];

impl Request {
    /// The API action name.
    pub(super) fn action(&self) -> &'static str {
        action_name(self.direction)
    }

    /// Reads a request. Fails only for text that is not an Alibaba revoke at all.
    pub(super) fn parse(raw: &RawRequest) -> Result<Request, RequestError> {
        let (params, repeated) = flatten_noting_repeats(raw)?;
        let action = params
            .iter()
            .find(|(k, _)| k == "Action")
            .map(|(_, v)| v.as_str())
            .unwrap_or("");
        let direction = match action {
            "RevokeSecurityGroup" => Direction::Ingress,
            "RevokeSecurityGroupEgress" => Direction::Egress,
            other => return Err(RequestError::UnknownAction(other.to_string())),
        };
        let mut req = Request {
            direction,
            region: None,
            group: None,
            client_token: None,
            owner_id: None,
            rule_ids: Vec::new(),
            permissions: Vec::new(),
            flat: Spec::default(),
            bad_permission_index: None,
            bad_rule_id_index: None,
            placeholder: false,
            fingerprint: String::new(),
            notes: Vec::new(),
            repeated,
        };
        let mut seen: BTreeMap<&str, ()> = BTreeMap::new();
        let mut ids: BTreeMap<u32, String> = BTreeMap::new();
        let mut perms: BTreeMap<u32, Spec> = BTreeMap::new();
        let mut identifying: Vec<(String, String)> = Vec::new();
        for (key, value) in &params {
            if seen.insert(key.as_str(), ()).is_some() {
                // A JSON list flattened onto a parameter also given flat.
                req.repeated.get_or_insert_with(|| key.clone());
                continue;
            }
            if key == "Action" {
                identifying.push((key.clone(), value.clone()));
                continue;
            }
            if key == "Format" && value.eq_ignore_ascii_case("xml") {
                req.notes.push(
                    "Format=XML: the API answers in XML (sgsim prints JSON unless --format xml is given)"
                        .into(),
                );
            }
            if COMMON.contains(&key.as_str()) {
                continue;
            }
            if key.starts_with('<') && key.ends_with('>') && value.is_empty() {
                req.placeholder = true;
                req.notes.push(format!(
                    "'{key}' is a documentation placeholder, not a parameter; ignored"
                ));
                continue;
            }
            if key == "ClientToken" {
                req.client_token = non_empty(value);
                continue;
            }
            identifying.push((key.clone(), value.clone()));
            match key.as_str() {
                "RegionId" => req.region = non_empty(value),
                "SecurityGroupId" => req.group = non_empty(value),
                "OwnerId" => req.owner_id = non_empty(value),
                _ => {
                    if let Some(rest) = key.strip_prefix("SecurityGroupRuleId.") {
                        match index(rest) {
                            Some(n) => {
                                if !value.is_empty() {
                                    ids.insert(n, value.clone());
                                }
                            }
                            None => {
                                req.bad_rule_id_index.get_or_insert_with(|| key.clone());
                            }
                        }
                    } else if let Some(rest) = key.strip_prefix("Permissions.") {
                        let Some((n, name)) = rest.split_once('.') else {
                            req.bad_permission_index.get_or_insert_with(|| key.clone());
                            continue;
                        };
                        let Some(n) = index(n) else {
                            req.bad_permission_index.get_or_insert_with(|| key.clone());
                            continue;
                        };
                        let spec = perms.entry(n).or_insert_with(|| Spec {
                            prefix: format!("Permissions.{n}."),
                            values: BTreeMap::new(),
                        });
                        match Field::parse(name).filter(|f| f.applies_to(direction)) {
                            Some(f) => {
                                if !value.is_empty() {
                                    spec.values.insert(f, value.clone());
                                }
                            }
                            None => req.notes.push(format!(
                                "{key} is not a parameter of {}; ignored",
                                action_name(direction)
                            )),
                        }
                    } else {
                        match Field::parse(key).filter(|f| f.applies_to(direction)) {
                            Some(f) => {
                                if !value.is_empty() {
                                    req.flat.values.insert(f, value.clone());
                                }
                            }
                            None => req.notes.push(format!(
                                "{key} is not a parameter of {}; ignored",
                                action_name(direction)
                            )),
                        }
                    }
                }
            }
        }
        let mut last = 0;
        for (n, id) in ids {
            if n != last + 1 {
                req.notes.push(format!(
                    "SecurityGroupRuleId.{n} follows SecurityGroupRuleId.{last}: the list has a gap"
                ));
            }
            last = n;
            req.rule_ids.push(id);
        }
        last = 0;
        for (n, spec) in perms {
            if n != last + 1 {
                req.notes.push(format!(
                    "Permissions.{n} follows Permissions.{last}: the list has a gap"
                ));
            }
            last = n;
            req.permissions.push(spec);
        }
        identifying.sort();
        req.fingerprint = identifying
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        Ok(req)
    }
}

/// The API action of a direction.
pub(super) fn action_name(direction: Direction) -> &'static str {
    match direction {
        Direction::Ingress => "RevokeSecurityGroup",
        Direction::Egress => "RevokeSecurityGroupEgress",
    }
}

fn non_empty(v: &str) -> Option<String> {
    (!v.is_empty()).then(|| v.to_string())
}

/// A list index `1..=100` written as plain decimal digits.
fn index(text: &str) -> Option<u32> {
    if text.is_empty() || text.len() > 3 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse()
        .ok()
        .filter(|n| (1..=MAX_ITEMS).contains(n) && !text.starts_with('0'))
}

/// Flattened parameters, and the first parameter given twice (see [`flatten_noting_repeats`]).
type Flat = (Vec<(String, String)>, Option<String>);

/// The request's parameters as `(name, text)` pairs, in the order given: query parameters
/// as they are; JSON objects with lists (`Permissions` as objects, `SecurityGroupRuleId` as
/// strings) flattened the way Alibaba's SDKs put them on the wire (`Permissions.1.IpProtocol`).
/// In JSON a single `Permissions` object or `SecurityGroupRuleId` string is a list of one.
/// With them, the first key a query parameter's JSON list gives twice in one object (as
/// `Permissions[0].PortRange`).
fn flatten_noting_repeats(raw: &RawRequest) -> Result<Flat, RequestError> {
    let mut out = Vec::new();
    let mut repeated = None;
    match raw {
        RawRequest::Query(params) => {
            for (k, v) in &params.0 {
                let list = matches!(k.as_str(), "Permissions" | "SecurityGroupRuleId");
                if list && v.trim_start().starts_with('[') {
                    let parsed = crate::provider::json::parse(v)
                        .map_err(|e| RequestError::Json(format!("{k}: {e}")))?;
                    if let Some(d) = parsed.duplicates.first() {
                        repeated.get_or_insert_with(|| format!("{k}{d}"));
                    }
                    flatten_value(k, &parsed.value, &mut out)?;
                } else {
                    out.push((k.clone(), v.clone()));
                }
            }
        }
        RawRequest::Repeated { request, name } => {
            let (pairs, _) = flatten_noting_repeats(request)?;
            return Ok((pairs, Some(name.clone())));
        }
        RawRequest::Json(value) => {
            let Some(obj) = value.as_object() else {
                return Err(RequestError::NotARequest);
            };
            for (k, v) in obj {
                flatten_value(k, v, &mut out)?;
            }
        }
    }
    Ok((out, repeated))
}

fn scalar(path: &str, v: &Value) -> Result<Option<String>, RequestError> {
    Ok(match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Array(_) | Value::Object(_) => {
            return Err(RequestError::Json(format!(
                "{path}: expected a string, number or boolean"
            )))
        }
    })
}

fn flatten_value(
    key: &str,
    v: &Value,
    out: &mut Vec<(String, String)>,
) -> Result<(), RequestError> {
    match (key, v) {
        ("Permissions", Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let Some(obj) = item.as_object() else {
                    return Err(RequestError::Json(format!(
                        "Permissions[{i}]: expected an object"
                    )));
                };
                for (fk, fv) in obj {
                    let name = format!("Permissions.{}.{fk}", i + 1);
                    if let Some(s) = scalar(&name, fv)? {
                        out.push((name, s));
                    }
                }
            }
        }
        ("Permissions", Value::Object(_)) | ("SecurityGroupRuleId", Value::String(_)) => {
            flatten_value(key, &Value::Array(vec![v.clone()]), out)?;
        }
        ("SecurityGroupRuleId", Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let name = format!("SecurityGroupRuleId.{}", i + 1);
                if let Some(s) = scalar(&name, item)? {
                    out.push((name, s));
                }
            }
        }
        _ => {
            if let Some(s) = scalar(key, v)? {
                out.push((key.to_string(), s));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Request {
        Request::parse(&RawRequest::parse(text).unwrap()).unwrap()
    }

    #[test]
    fn reads_the_seed_url_with_its_placeholder() {
        let r = parse(
            "https://ecs.aliyuncs.com/?Action=RevokeSecurityGroup\n&SecurityGroupId=sg-bp67acfmxazb4p****\n&SourceCidrIp=10.0.0.0/8\n&IpProtocol=tcp\n&PortRange=80/80\n&NicType=intranet\n&Policy=accept\n&<公共请求参数>",
        );
        assert_eq!(r.direction, Direction::Ingress);
        assert_eq!(r.group.as_deref(), Some("sg-bp67acfmxazb4p****"));
        assert!(r.placeholder);
        assert_eq!(r.flat.get(Field::PortRange), Some("80/80"));
        assert!(r.permissions.is_empty() && r.rule_ids.is_empty());
    }

    #[test]
    fn json_and_query_forms_give_the_same_fingerprint() {
        let q = parse("Action=RevokeSecurityGroupEgress&RegionId=cn-hangzhou&SecurityGroupId=sg-a&Permissions.1.IpProtocol=TCP&Permissions.1.PortRange=22/22&Permissions.1.DestCidrIp=10.0.0.0/8&ClientToken=t1&Signature=x");
        let j = parse(
            r#"{"Action":"RevokeSecurityGroupEgress","RegionId":"cn-hangzhou","SecurityGroupId":"sg-a","ClientToken":"t2","Permissions":[{"IpProtocol":"TCP","PortRange":"22/22","DestCidrIp":"10.0.0.0/8"}]}"#,
        );
        assert_eq!(q.fingerprint, j.fingerprint);
        assert_eq!(q.permissions, j.permissions);
        assert_eq!(j.client_token.as_deref(), Some("t2"));
        let ids = parse(
            r#"{"Action":"RevokeSecurityGroupEgress","SecurityGroupId":"sg-a","SecurityGroupRuleId":["sgr-1","sgr-2"]}"#,
        );
        assert_eq!(ids.rule_ids, vec!["sgr-1", "sgr-2"]);
        let one = parse(
            r#"{"Action":"RevokeSecurityGroupEgress","SecurityGroupRuleId":"sgr-1","Permissions":{"IpProtocol":"TCP"}}"#,
        );
        assert_eq!(one.rule_ids, vec!["sgr-1"]);
        assert_eq!(one.permissions[0].get(Field::IpProtocol), Some("TCP"));
    }

    #[test]
    fn notes_what_it_ignores_and_flags_bad_indexes() {
        let r = parse("Action=RevokeSecurityGroup&SecurityGroupId=sg-a&Permissions.101.IpProtocol=tcp&SecurityGroupRuleId.0=sgr-x&DestGroupId=sg-b&Bogus=1");
        assert_eq!(
            r.bad_permission_index.as_deref(),
            Some("Permissions.101.IpProtocol")
        );
        assert_eq!(
            r.bad_rule_id_index.as_deref(),
            Some("SecurityGroupRuleId.0")
        );
        assert!(r.notes.iter().any(|n| n.contains("DestGroupId")));
        assert!(r.notes.iter().any(|n| n.contains("Bogus")));
    }

    #[test]
    fn bad_json_shapes_are_unusable_requests() {
        let raw =
            RawRequest::parse(r#"{"Action":"RevokeSecurityGroup","Permissions":[1]}"#).unwrap();
        assert!(matches!(Request::parse(&raw), Err(RequestError::Json(_))));
        let raw =
            RawRequest::parse(r#"{"Action":"RevokeSecurityGroup","IpProtocol":{"a":1}}"#).unwrap();
        assert!(matches!(Request::parse(&raw), Err(RequestError::Json(_))));
        let raw = RawRequest::parse(r#"{"Action":"DeleteSecurityGroup"}"#).unwrap();
        assert!(matches!(
            Request::parse(&raw),
            Err(RequestError::UnknownAction(_))
        ));
    }
}
