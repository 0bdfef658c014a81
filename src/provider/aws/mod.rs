//! AWS EC2: describe-call exports, `RevokeSecurityGroupIngress` / `RevokeSecurityGroupEgress`
//! requests, their exact semantics, and the responses EC2 returns.
//!
//! Private modules, one a stage, named as Alibaba's are: `import` (exports → state),
//! `request` (Query and JSON requests → a parsed request), `revoke` (validation and
//! matching, SEMANTICS.md §2.2), `response` (XML and JSON bodies), `errors` (one
//! constructor an error code), and `values` (protocol texts and the like, shared by the
//! others).
//!
//! # Import ([`recognises`], [`import()`])
//!
//! Each JSON document is recognised by its shape, as the AWS CLI prints it (PascalCase, with or
//! without `NextToken` / `ResponseMetadata`); any mix of files is merged:
//!
//! | export | top-level key | becomes |
//! |---|---|---|
//! | `describe-security-groups` | `SecurityGroups[]` | groups, and one atomic rule per `IpRanges` / `Ipv6Ranges` / `PrefixListIds` / `UserIdGroupPairs` entry of each `IpPermissions` / `IpPermissionsEgress` item |
//! | `describe-security-group-rules` | `SecurityGroupRules[]` | atomic rules with their `sgr-` IDs (and stub groups for groups no other export describes) |
//! | `describe-network-interfaces` | `NetworkInterfaces[]` | ENIs: private IPv4 and IPv6 addresses, public IPs from `Association.PublicIp`, groups, VPC |
//! | `describe-vpcs` | `Vpcs[]` | VPCs with `IsDefault` |
//! | `describe-managed-prefix-lists` | `PrefixLists[]` | prefix lists (ID, name) |
//! | `get-managed-prefix-list-entries` | `Entries[]` **plus** `PrefixListId` | the entries of that list |
//!
//! `get-managed-prefix-list-entries` prints no list ID, so sgsim accepts the output with a
//! `"PrefixListId": "pl-…"` member added beside `"Entries"`; failing that, the ID is taken from
//! the file name when it contains one (`pl-0123abcd.json`, `entries-pl-0123abcd.json`).
//!
//! Where a group export and a rule export describe the same rule (same group, direction,
//! protocol, ports and peer), the two are merged into one rule with the rule export's `sgr-`
//! ID; a rule is never counted twice, and a group described twice keeps its last description.
//! A rule no rule export names gets a **synthesized ID** `sgr-sim` + 16 hex digits: the 64-bit
//! FNV-1a hash of `group|direction|protocol|type-or-source-ports|code-or-destination-ports|peer|n`,
//! where `n` counts earlier rules of the same group with the same key (normally 0). The `sim`
//! (not hexadecimal) marks it as sgsim's; such rules carry the attribute `IdSynthesized=true`.
//! CIDRs with host bits set are canonicalized (as EC2 does) with a warning naming the file and
//! field. Without a `describe-vpcs` export a group's VPC counts as non-default.
//!
//! Rule attributes kept for faithful output: `OriginalCidr` (CIDR text as exported, when not
//! canonical), `GroupOwnerId`, `SecurityGroupRuleArn`, `Tags` (JSON text), and for group
//! references `GroupName`, `VpcId`, `VpcPeeringConnectionId`, `PeeringStatus` (the pair's
//! `UserId` is the peer's `owner`).
//!
//! # Requests ([`revoke()`], [`revoke_with`])
//!
//! The EC2 Query protocol (query string, URL or form body; lists 1-based, `UserIdGroupPairs`
//! serialized as `Groups`, `SecurityGroupRuleId.N`, `DryRun`, legacy `CidrIp` / `FromPort` /
//! `ToPort` / `IpProtocol` / `SourceSecurityGroupName` / `SourceSecurityGroupOwnerId`,
//! `GroupName`; `Action`, `Version` and signature parameters are ignored) and the AWS CLI's
//! `--cli-input-json` shape plus `"Action"`. Validation follows SEMANTICS.md §2.2.2:
//!
//! 1. parse: an unrecognised parameter (including a list index of 0 or with a leading zero) →
//!    `UnknownParameter`; a value of the wrong type (non-integer port, non-boolean `DryRun`, a
//!    parameter given twice — any parameter, `Action` included — or a key given twice in a
//!    JSON object) → `InvalidParameterValue`; neither `GroupId` nor `GroupName` →
//!    `MissingParameter`; legacy fields on the egress call ("not supported") →
//!    `InvalidParameterValue`;
//! 2. [`Config::authorized`] false → `UnauthorizedOperation` (403); `DryRun` →
//!    `DryRunOperation` (412);
//! 3. the group: malformed ID → `InvalidGroupId.Malformed`, unknown → `InvalidGroup.NotFound`,
//!    `GroupName` of a group outside a default VPC → `InvalidParameterValue`;
//! 4. rule IDs with permissions, or `IpPermissions` with legacy fields, or `GroupId` with
//!    `GroupName` → `InvalidParameterCombination`;
//! 5. per permission: protocol, ports (TCP/UDP 0–65535 both given; ICMP type/code −1–255, type
//!    −1 ⇒ code −1; ignored for `-1` and other numbers), then per entry: referenced groups
//!    (`InvalidGroup.NotFound`; by name only in a default VPC), CIDR syntax and family, a peer
//!    present (`MissingParameter`), descriptions → `InvalidParameterValue`;
//! 6. match (protocol names case-insensitive, `6/17/1/58` ≡ `tcp/udp/icmp/icmpv6`, canonical
//!    CIDRs, description exact when given, `UserId` must equal the referenced group's owner
//!    when given);
//! 7. misses: non-default VPC → `InvalidPermission.NotFound` and nothing revoked; default VPC →
//!    matched rules revoked, misses echoed in `UnknownIpPermissions`; unknown rule IDs →
//!    `InvalidSecurityGroupRuleId.NotFound`, nothing revoked;
//! 8. success: `Return=true`, `RevokedSecurityGroupRules`.
//!
//! Responses are EC2's XML (default) or the JSON boto3 returns (`Return`,
//! `UnknownIpPermissions`, `RevokedSecurityGroupRules`, `ResponseMetadata`; on error `Error`
//! {`Code`, `Message`}, `RequestId`); the two sets appear only when non-empty. Request IDs are
//! deterministic (derived from the request text), lower-case UUIDs.
//!
//! ## Error messages
//!
//! | code (HTTP) | message |
//! |---|---|
//! | `UnknownParameter` (400) | `The parameter X is not recognized` |
//! | `InvalidParameterValue` (400) | `Value (v) for parameter X is invalid. Expected …`; `Invalid value 'null' for protocol. …`; `Invalid value 'p' for IP protocol. Unknown protocol.`; `Invalid value for portRange. Must specify both from and to ports with TCP/UDP.`; `invalid CIDR subnet specification: c`; `Invalid value 'n' for groupName. You may not reference Amazon VPC security groups by name. …`; `Invalid rule description. …` |
//! | `MissingParameter` (400) | `The request must contain the parameter groupName or groupId` (and likewise for other fields) |
//! | `InvalidParameterCombination` (400) | names the two parameters |
//! | `InvalidGroupId.Malformed` (400) | `The security group ID 'x' is malformed` |
//! | `InvalidGroup.NotFound` (400) | `The security group 'x' does not exist` / `… does not exist in default VPC 'vpc-…'` |
//! | `InvalidPermission.NotFound` (400) | `The specified rule does not exist in this security group` |
//! | `InvalidSecurityGroupRuleId.NotFound` (400) | `The security group rule ID 'sgr-…' does not exist` |
//! | `DryRunOperation` (412) | `Request would have succeeded, but DryRun flag is set.` |
//! | `UnauthorizedOperation` (403) | `You are not authorized to perform this operation.` |
//!
//! ## Not supported
//!
//! - Exports as raw Query XML, or their camelCase JSON transliteration (`securityGroupInfo`,
//!   `ipPermissions`, …): only the CLI's PascalCase JSON is read.
//! - `--query`-filtered CLI output (bare arrays) is not recognised.
//! - A snapshot given together with a *partial* export of the same groups: rules whose IDs
//!   differ between the two (synthesized in one, `sgr-` in the other) are counted twice, because
//!   the snapshot is merged by rule ID outside this module.
//! - `InvalidPermission.Duplicate` and `RulesPerSecurityGroupLimitExceeded` belong to authorize
//!   calls and are never produced; IAM is modelled only by [`Config::authorized`].

mod errors;
mod import;
mod request;
mod response;
mod revoke;
mod values;

#[cfg(feature = "serve")]
pub(crate) use values::protocol_text;

use super::{request_id, ImportError, Imported, Outcome, RawRequest, RequestError};
use crate::model::{Direction, Provider, State};

/// Switches for behaviour the sources leave open (SEMANTICS.md §7).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Behave like the moto mock instead of AWS where they differ: an unknown rule ID answers
    /// `InvalidPermission.NotFound` (Q11), and rule IDs given together with permissions win
    /// instead of failing with `InvalidParameterCombination` (Q12).
    pub moto_compat: bool,
    /// Accept `all` as a protocol meaning `-1` instead of rejecting it (Q16).
    pub lenient_all_protocol: bool,
    /// Answer a request that names no rule at all with `MissingParameter` instead of
    /// succeeding without effect (Q18).
    pub empty_is_error: bool,
    /// Whether the caller holds the IAM permission; when false every call (dry or not) answers
    /// `UnauthorizedOperation`.
    pub authorized: bool,
    /// The request ID the answer carries; `None` derives one from the request's text
    /// (deterministic: what `sgsim revoke` prints). `sgsim serve` gives each answer its own.
    pub request_id: Option<String>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            moto_compat: false,
            lenient_all_protocol: false,
            empty_is_error: false,
            authorized: true,
            request_id: None,
        }
    }
}

/// Whether a JSON document is one of AWS's exports (see the module docs for the shapes).
pub fn recognises(value: &serde_json::Value) -> bool {
    import::recognises(value)
}

/// Imports AWS export documents (`(file name, JSON)`), merging them into one state.
pub fn import(docs: &[(String, serde_json::Value)]) -> Result<Imported, ImportError> {
    import::import(docs)
}

/// Applies a `RevokeSecurityGroupIngress` / `RevokeSecurityGroupEgress` request with the
/// default [`Config`].
pub fn revoke(state: &State, request: &RawRequest) -> Result<Outcome, RequestError> {
    revoke_with(state, request, &Config::default())
}

/// Applies a revoke request with explicit switches. API errors are [`Outcome`]s with `error`
/// set (state unchanged, nothing revoked); only text that is not an AWS revoke request at all
/// is a [`RequestError`].
pub fn revoke_with(
    state: &State,
    request: &RawRequest,
    config: &Config,
) -> Result<Outcome, RequestError> {
    let action = request.action().unwrap_or("").to_string();
    let direction = match action.as_str() {
        "RevokeSecurityGroupIngress" => Direction::Ingress,
        "RevokeSecurityGroupEgress" => Direction::Egress,
        _ => return Err(RequestError::UnknownAction(action)),
    };
    if !state.groups.iter().any(|g| g.provider == Provider::Aws) {
        return Err(RequestError::ProviderMismatch {
            request: Provider::Aws,
        });
    }
    let id = match &config.request_id {
        Some(id) => id.clone(),
        None => request_id(&seed(request)).to_ascii_lowercase(),
    };
    let result = request::parse(request, direction)?
        .map_err(revoke::Failed::from)
        .and_then(|parsed| revoke::apply(state, &parsed, config));
    Ok(match result {
        Ok(done) => response::success(&action, &id, done),
        Err(error) => response::failure(&id, state, error),
    })
}

/// The group a `GroupName` names, as EC2 resolves names: in the default VPC only; any
/// other name answers `InvalidGroup.NotFound` "… does not exist in default VPC 'vpc-…'"
/// (SEMANTICS.md §2.2.1).
#[cfg(feature = "serve")]
pub(crate) fn group_in_default_vpc<'s>(
    state: &'s State,
    name: &str,
) -> Result<&'s crate::model::SecurityGroup, super::ApiError> {
    state
        .groups
        .iter()
        .filter(|g| g.provider == Provider::Aws && g.name.as_deref() == Some(name))
        .find(|g| revoke::in_default_vpc(state, g))
        .ok_or_else(|| errors::not_in_default_vpc(name, &revoke::default_vpc_id(state)))
}

/// The text a request ID is derived from.
fn seed(request: &RawRequest) -> String {
    match request {
        RawRequest::Query(p) => {
            p.0.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("&")
        }
        RawRequest::Json(v) => v.to_string(),
        RawRequest::Repeated { request, .. } => seed(request),
    }
}

#[cfg(test)]
mod tests {
    use super::values::{parse_protocol, protocol_text, uses_ports};
    use super::*;
    use crate::model::Protocol;
    use serde_json::json;

    fn state() -> State {
        let docs = vec![(
            "t.json".to_string(),
            json!({
                "SecurityGroups": [
                    {"GroupId": "sg-0aaa", "GroupName": "a", "VpcId": "vpc-0def", "OwnerId": "1",
                     "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
                        "IpRanges": [{"CidrIp": "10.0.0.0/8"}, {"CidrIp": "192.168.0.0/16"}]}]},
                    {"GroupId": "sg-0bbb", "GroupName": "b", "VpcId": "vpc-0abc", "OwnerId": "1",
                     "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
                        "IpRanges": [{"CidrIp": "10.0.0.0/8"}, {"CidrIp": "192.168.0.0/16"}]}]}
                ],
                "Vpcs": [{"VpcId": "vpc-0def", "IsDefault": true}, {"VpcId": "vpc-0abc", "IsDefault": false}]
            }),
        )];
        import(&docs).unwrap().state
    }

    fn run(q: &str) -> Outcome {
        revoke(&state(), &RawRequest::parse(q).unwrap()).unwrap()
    }

    #[test]
    fn non_default_vpc_is_all_or_nothing() {
        let out = run("Action=RevokeSecurityGroupIngress&GroupId=sg-0bbb&IpPermissions.1.IpProtocol=tcp\
            &IpPermissions.1.FromPort=22&IpPermissions.1.ToPort=22\
            &IpPermissions.1.IpRanges.1.CidrIp=10.0.0.0/8&IpPermissions.1.IpRanges.2.CidrIp=172.16.0.0/12");
        let e = out.error.as_ref().unwrap();
        assert_eq!(
            (e.code.as_str(), out.status),
            ("InvalidPermission.NotFound", 400)
        );
        assert!(out.revoked.is_empty());
        assert_eq!(out.state, state());
        assert!(out.xml.contains("<Code>InvalidPermission.NotFound</Code>"));
        assert_eq!(out.json["Error"]["Code"], "InvalidPermission.NotFound");
    }

    #[test]
    fn default_vpc_revokes_matches_and_reports_misses() {
        let out = run("Action=RevokeSecurityGroupIngress&GroupName=a&IpPermissions.1.IpProtocol=TCP\
            &IpPermissions.1.FromPort=22&IpPermissions.1.ToPort=22\
            &IpPermissions.1.IpRanges.1.CidrIp=10.1.2.3/8&IpPermissions.1.IpRanges.2.CidrIp=172.16.0.0/12");
        assert!(out.error.is_none());
        assert_eq!(out.revoked.len(), 1);
        assert_eq!(out.state.rules.len(), 3);
        assert_eq!(
            out.json["UnknownIpPermissions"][0]["IpRanges"][0]["CidrIp"],
            "172.16.0.0/12"
        );
        assert_eq!(
            out.json["RevokedSecurityGroupRules"][0]["CidrIpv4"],
            "10.0.0.0/8"
        );
        assert!(out.xml.starts_with("<?xml"));
        assert!(out.xml.contains("<return>true</return>"));
        let id = out.json["ResponseMetadata"]["RequestId"].as_str().unwrap();
        assert_eq!(id, id.to_ascii_lowercase());
    }

    #[test]
    fn not_a_request() {
        let s = state();
        let other = RawRequest::parse("Action=DescribeSecurityGroups").unwrap();
        assert!(matches!(
            revoke(&s, &other),
            Err(RequestError::UnknownAction(_))
        ));
    }

    #[test]
    fn protocols_parse_case_insensitively_and_numbers_fold_to_names() {
        assert_eq!(parse_protocol("TCP", false), Some(Protocol::TCP));
        assert_eq!(parse_protocol("6", false), Some(Protocol::TCP));
        assert_eq!(parse_protocol("ICMPv6", false), Some(Protocol::ICMPV6));
        assert_eq!(parse_protocol("-1", false), Some(Protocol::Any));
        assert_eq!(parse_protocol("all", false), None);
        assert_eq!(parse_protocol("all", true), Some(Protocol::Any));
        assert_eq!(parse_protocol("256", false), None);
        assert_eq!(parse_protocol("-2", false), None);
        assert_eq!(protocol_text(Protocol::Number(58)), "icmpv6");
        assert_eq!(protocol_text(Protocol::GRE), "47");
        assert!(uses_ports(Protocol::ICMP) && !uses_ports(Protocol::Number(132)));
    }
}
