//! Harnesses of the export importers and of revoke requests ("a rejected revoke changes
//! nothing").

use crate::classify::reference::Reference;
use crate::compile::{compile, Config};
use crate::model::State;

/// A small AWS account (two groups in a default and a non-default VPC, an ENI, a prefix
/// list) for the request harnesses.
const AWS_STATE: &str = r#"[
 {"SecurityGroups": [
  {"GroupId": "sg-0a1b2c3d4e5f60789", "GroupName": "web", "OwnerId": "123456789012", "VpcId": "vpc-1",
   "IpPermissions": [
    {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "203.0.113.0/24", "Description": "office"}],
     "Ipv6Ranges": [{"CidrIpv6": "2001:db8::/32"}], "PrefixListIds": [{"PrefixListId": "pl-0123abcd"}],
     "UserIdGroupPairs": [{"GroupId": "sg-0fedcba9876543210", "UserId": "123456789012"}]},
    {"IpProtocol": "icmp", "FromPort": 8, "ToPort": -1, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]},
    {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": "sg-0a1b2c3d4e5f60789", "UserId": "123456789012"}]}],
   "IpPermissionsEgress": [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]},
  {"GroupId": "sg-0fedcba9876543210", "GroupName": "default", "OwnerId": "123456789012", "VpcId": "vpc-d",
   "IpPermissions": [{"IpProtocol": "udp", "FromPort": 53, "ToPort": 53, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
   "IpPermissionsEgress": []}]},
 {"Vpcs": [{"VpcId": "vpc-1", "IsDefault": false}, {"VpcId": "vpc-d", "IsDefault": true}]},
 {"NetworkInterfaces": [{"NetworkInterfaceId": "eni-1", "VpcId": "vpc-1", "PrivateIpAddress": "10.0.0.5",
   "PrivateIpAddresses": [{"PrivateIpAddress": "10.0.0.5"}], "Groups": [{"GroupId": "sg-0a1b2c3d4e5f60789"}]}]},
 {"PrefixListId": "pl-0123abcd", "Entries": [{"Cidr": "198.51.100.0/24"}]}
]"#;

/// A small Alibaba account (a basic, an enterprise and a classic group, an ENI).
const ALIYUN_STATE: &str = r#"[
 {"SecurityGroups": {"SecurityGroup": [
  {"SecurityGroupId": "sg-bp1web", "SecurityGroupType": "normal", "VpcId": "vpc-bp1"},
  {"SecurityGroupId": "sg-bp1ent", "SecurityGroupType": "enterprise", "VpcId": "vpc-bp1"},
  {"SecurityGroupId": "sg-classic", "SecurityGroupType": "normal", "VpcId": ""}]}},
 {"RegionId": "cn-hangzhou", "SecurityGroupId": "sg-bp1web", "VpcId": "vpc-bp1", "InnerAccessPolicy": "Accept",
  "Permissions": {"Permission": [
   {"SecurityGroupRuleId": "sgr-1", "Direction": "ingress", "Policy": "Accept", "Priority": "1", "IpProtocol": "TCP",
    "PortRange": "22/22", "SourceCidrIp": "203.0.113.0/24", "NicType": "intranet"},
   {"SecurityGroupRuleId": "sgr-2", "Direction": "ingress", "Policy": "Drop", "Priority": "1", "IpProtocol": "TCP",
    "PortRange": "22/22", "SourceCidrIp": "203.0.113.66/32", "NicType": "intranet"},
   {"SecurityGroupRuleId": "sgr-3", "Direction": "egress", "Policy": "Accept", "Priority": "5", "IpProtocol": "UDP",
    "PortRange": "53/53", "DestCidrIp": "0.0.0.0/0", "NicType": "intranet"},
   {"SecurityGroupRuleId": "sgr-4", "Direction": "ingress", "Policy": "Accept", "Priority": "10", "IpProtocol": "ALL",
    "PortRange": "-1/-1", "SourceGroupId": "sg-bp1web", "NicType": "intranet"}]}},
 {"RegionId": "cn-hangzhou", "SecurityGroupId": "sg-bp1ent", "VpcId": "vpc-bp1", "InnerAccessPolicy": "Drop",
  "Permissions": {"Permission": [
   {"SecurityGroupRuleId": "sgr-5", "Direction": "ingress", "Policy": "Accept", "Priority": "1", "IpProtocol": "TCP",
    "PortRange": "443/443", "SourceCidrIp": "0.0.0.0/0", "NicType": "intranet"}]}},
 {"NetworkInterfaceSets": {"NetworkInterfaceSet": [{"NetworkInterfaceId": "eni-bp1", "VpcId": "vpc-bp1",
   "PrivateIpAddress": "192.168.1.10", "SecurityGroupIds": {"SecurityGroupId": ["sg-bp1web"]}}]}}
]"#;

fn fixture(text: &str) -> State {
    // Invariant: the fixtures above are valid exports (checked by this module's tests).
    let docs: Vec<serde_json::Value> = serde_json::from_str(text).expect("fixture JSON");
    let named: Vec<(String, serde_json::Value)> = docs
        .into_iter()
        .enumerate()
        .map(|(i, v)| (format!("fixture-{i}.json"), v))
        .collect();
    crate::provider::import_values(&named)
        .expect("fixture imports")
        .state
}

pub(super) fn aws_fixture() -> &'static State {
    static STATE: std::sync::OnceLock<State> = std::sync::OnceLock::new();
    STATE.get_or_init(|| fixture(AWS_STATE))
}

fn aliyun_fixture() -> &'static State {
    static STATE: std::sync::OnceLock<State> = std::sync::OnceLock::new();
    STATE.get_or_init(|| fixture(ALIYUN_STATE))
}

/// Applies arbitrary request text to `state` and checks the revoke invariants: no panic; a
/// rejected request (API error) changes nothing and revokes nothing; a successful one
/// removes exactly the revoked rules; both response bodies render.
fn revoke_invariant(state: &State, data: &[u8]) {
    let _ = revoke_checked(state, data);
}

/// [`revoke_invariant`]'s checks, returning the outcome (`None`: not a request).
fn revoke_checked(state: &State, data: &[u8]) -> Option<crate::provider::Outcome> {
    let text = String::from_utf8_lossy(data);
    let request = crate::provider::RawRequest::parse(&text).ok()?;
    let outcome = crate::provider::revoke(state, &request).ok()?;
    let _ = outcome.body(Some(crate::provider::Format::Json));
    let _ = outcome.body(Some(crate::provider::Format::Xml));
    if outcome.error.is_some() {
        assert!(outcome.revoked.is_empty(), "an error revoked rules");
        assert_eq!(
            outcome.state.rules, state.rules,
            "an error changed the rules"
        );
        assert!(
            (400..600).contains(&outcome.status),
            "error status {}",
            outcome.status
        );
    } else {
        let gone: std::collections::HashSet<_> = outcome.revoked.iter().map(|r| &r.id).collect();
        let kept: Vec<_> = state
            .rules
            .iter()
            .filter(|r| !gone.contains(&r.id))
            .collect();
        assert_eq!(
            kept.len() + gone.len(),
            state.rules.len(),
            "revoked an unknown rule"
        );
        assert!(
            kept.into_iter().eq(outcome.state.rules.iter()),
            "kept rules changed"
        );
        outcome.state.validate().expect("the new state is valid");
    }
    Some(outcome)
}

/// AWS revoke requests (query strings, URLs, JSON) against a small account.
pub fn aws_request(data: &[u8]) {
    revoke_invariant(aws_fixture(), data);
}

/// Alibaba revoke requests against a small account.
pub fn aliyun_request(data: &[u8]) {
    revoke_invariant(aliyun_fixture(), data);
}

/// Export importers: arbitrary JSON never panics; what imports is valid and compiles.
pub fn import(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let docs = match value {
        serde_json::Value::Array(items) if items.iter().all(|v| v.is_object()) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| (format!("doc-{i}.json"), v))
            .collect(),
        other => vec![("doc.json".to_string(), other)],
    };
    if let Ok(imported) = crate::provider::import_values(&docs) {
        imported.state.validate().expect("imports are valid");
        if let Ok(reference) = Reference::new(&imported.state) {
            drop(reference);
            compile(&imported.state, &Config::default()).expect("a valid import compiles");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixtures_import() {
        assert!(aws_fixture().rules.len() >= 6);
        assert!(aliyun_fixture().rules.len() >= 5);
        assert_eq!(aliyun_fixture().enis.len(), 1);
    }

    #[test]
    fn revoke_invariant_holds_on_known_requests() {
        // Each request does what it should, so the invariant is checked on a real revoke,
        // a real rule-ID revoke and a real error, not on requests that change nothing.
        let revoked = |o: &crate::provider::Outcome| -> Vec<String> {
            o.revoked.iter().map(|r| r.id.to_string()).collect()
        };
        let o = revoke_checked(aws_fixture(), b"Action=RevokeSecurityGroupIngress&GroupId=sg-0a1b2c3d4e5f60789&IpPermissions.1.IpProtocol=tcp&IpPermissions.1.FromPort=22&IpPermissions.1.ToPort=22&IpPermissions.1.IpRanges.1.CidrIp=203.0.113.0/24")
            .expect("a request");
        assert_eq!(
            (o.error.is_none(), revoked(&o).len()),
            (true, 1),
            "{}",
            o.json
        );
        let o = revoke_checked(aliyun_fixture(), b"Action=RevokeSecurityGroup&RegionId=cn-hangzhou&SecurityGroupId=sg-bp1web&SecurityGroupRuleId.1=sgr-2")
            .expect("a request");
        assert_eq!(revoked(&o), vec!["sgr-2"], "{}", o.json);
        let o = revoke_checked(aliyun_fixture(), b"Action=RevokeSecurityGroup&RegionId=cn-hangzhou&SecurityGroupId=sg-bp1web&SecurityGroupRuleId.1=nope")
            .expect("a request");
        assert!(o.error.is_some() && o.revoked.is_empty(), "{}", o.json);
    }
}
