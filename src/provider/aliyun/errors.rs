//! The error catalogue of `RevokeSecurityGroup` / `RevokeSecurityGroupEgress`: every code of
//! both seed tables (SEMANTICS.md §2.1.1, §2.1.2) with its HTTP status and message, as data.
//!
//! Messages are the documented ones; a `%s` in a message is replaced by the parameter the
//! error is about (e.g. `Permissions.1.Policy`).

use crate::model::Direction;
use crate::provider::ApiError;

/// One documented error: code, HTTP status, message template.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Code {
    /// The error code, e.g. `InvalidSecurityGroupId.NotFound`.
    pub code: &'static str,
    /// The HTTP status the API answers with.
    pub status: u16,
    /// The message; `%s` stands for the parameter concerned.
    pub message: &'static str,
}

impl Code {
    /// The error response, with `%s` replaced by `arg`.
    pub fn with(&self, arg: &str) -> ApiError {
        ApiError::new(self.code, self.status, self.message.replace("%s", arg))
    }

    /// The error response with the message as documented (no parameter to fill in).
    pub fn plain(&self) -> ApiError {
        self.with("")
    }
}

macro_rules! codes {
    ($($(#[$doc:meta])* $name:ident = ($code:literal, $status:literal, $msg:literal);)*) => {
        $($(#[$doc])* pub(super) const $name: Code = Code { code: $code, status: $status, message: $msg };)*
        /// Every code of the catalogue, for tests and documentation.
        pub const ALL: &[Code] = &[$($name),*];
    };
}

codes! {
    /// A required parameter (`RegionId`, `SecurityGroupId`) is missing.
    MISSING_PARAMETER = ("MissingParameter", 400, "The input parameter \"%s\" that is mandatory for processing this request is not supplied.");
    /// Legacy flat ingress request without a source (S0).
    MISSING_SOURCE_LEGACY = ("MissingParameter", 400, "The input parameter \"SourceGroupId\" or \"SourceCidrIp\" cannot be both blank.");
    /// Legacy flat egress request without a destination (S1).
    MISSING_DEST_LEGACY = ("MissingParameter", 400, "The input parameter \"DestGroupId\" or \"DestCidrIp\" cannot be both blank.");
    /// Ingress `Permissions.N` entry without a source.
    MISSING_SOURCE = ("MissingParameter.Source", 400, "One of the parameters SourceCidrIp, SourceGroupId or SourcePrefixListId must be specified.");
    /// Egress `Permissions.N` entry without a destination.
    MISSING_DEST = ("MissingParameter.Dest", 400, "One of the parameters DestCidrIp, Ipv6DestCidrIp, DestGroupId or DestPrefixListId in %s must be specified.");
    /// The group does not exist in this account (and region).
    SG_NOT_FOUND = ("InvalidSecurityGroupId.NotFound", 404, "The specified SecurityGroupId does not exist.");
    /// The group ID is not an ID.
    SG_MALFORMED = ("InvalidSecurityGroupId.Malformed", 400, "The specified parameter SecurityGroupId is not valid.");
    /// The caller's account does not own the group.
    SG_NOT_AUTHORIZED = ("InvalidOperation.SecurityGroupNotAuthorized", 401, "The specified security group is not authorized to operate.");
    /// The group is managed by a cloud service.
    SG_MANAGED = ("InvalidOperation.ResourceManagedByCloudProduct", 403, "The security group %s is managed by a cloud product and cannot be modified.");
    /// The service's own data is inconsistent.
    INTERNAL_ERROR = ("InternalError", 500, "The request processing has failed due to some unknown error.");
    /// Same ClientToken, different parameters.
    IDEMPOTENT_MISMATCH = ("IdempotentParameterMismatch", 400, "The request uses the same client token as a previous, but non-identical request.");
    /// A ClientToken longer than 64 characters or not ASCII (not in the seed tables).
    CLIENT_TOKEN_INVALID = ("InvalidClientToken.ValueNotSupported", 400, "The ClientToken provided is invalid.");
    /// Two request forms combined.
    PERMISSIONS_COEXIST = ("InvalidParam.Permissions", 400, "The specified parameter Permissions cannot coexist with other parameters.");
    /// Duplicate `Permissions.N` entries.
    DUPLICATE_PERMISSIONS = ("InvalidParam.DuplicatePermissions", 400, "There are duplicate permissions in the specified parameter Permissions.");
    /// A rule ID that is not an ID (and, for ingress, one that does not exist: SEMANTICS Q1).
    RULE_ID_INVALID = ("InvalidParam.SecurityGroupRuleId", 400, "The specified parameter SecurityGroupRuleId is not valid.");
    /// The same rule ID twice.
    RULE_ID_REPEATED = ("InvalidParam.SecurityGroupRuleIdRepeated", 400, "The specified parameter SecurityGroupRuleId is repeated.");
    /// An egress rule ID that does not exist (since 2024-07-08).
    RULE_NOT_EXIST = ("InvalidSecurityGroupRule.RuleNotExist", 400, "The specified rule does not exist.");
    /// A rule ID of another security group.
    RULE_ID_NOT_FOUND = ("InvalidSecurityGroupRuleId.NotFound", 404, "The specified SecurityGroupRuleId is not exists.");
    /// Unsupported protocol (or none given).
    PROTOCOL = ("InvalidIpProtocol.ValueNotSupported", 400, "The parameter IpProtocol must be specified with case insensitive TCP, UDP, ICMP, GRE or All.");
    /// A port range with impossible values for its protocol.
    IP_PORT_RANGE = ("InvalidIpPortRange.Malformed", 400, "The specified parameter PortRange is not valid.");
    /// A port range that is not two integers `a/b`.
    PARAM_PORT_RANGE = ("InvalidParam.PortRange", 400, "The specified parameter %s is not valid. It should be two integers less than 65535 in ?/? format.");
    /// Neither PortRange nor PortRangeListId.
    PORT_RANGE_MISSING = ("InvalidPortRange.Malformed", 400, "The specified parameter PortRange must set.");
    /// Bad SourcePortRange.
    SOURCE_PORT_RANGE = ("InvalidSourcePortRange.Malformed", 400, "The specified parameter SourcePortRange is not valid.");
    /// A port list with a protocol that has no ports.
    PROTOCOL_NO_PORT_LIST = ("InvalidParam.ProtocolNotSupportPortRangeList", 400, "The specified protocol does not support the port range list.");
    /// Unknown port list.
    PORT_LIST_NOT_FOUND = ("InvalidPortRangeListId.NotFound", 400, "The specified port range list was not found.");
    /// Bad Policy.
    POLICY = ("InvalidPolicy.Malformed", 400, "The specified parameter %s is not valid.");
    /// Priority not an integer.
    PRIORITY_MALFORMED = ("InvalidPriority.Malformed", 400, "The parameter Priority is invalid.");
    /// Priority outside 1..=100.
    PRIORITY_VALUE = ("InvalidPriority.ValueNotSupported", 400, "The specified parameter %s is invalid.");
    /// NicType other than internet/intranet.
    NIC_TYPE_VALUE = ("InvalidNicType.ValueNotSupported", 400, "The specified parameter %s is not valid.");
    /// NicType internet with a group peer.
    NIC_TYPE_MISMATCH = ("InvalidNicType.Mismatch", 403, "Specified nic type conflicts with the authorization record.");
    /// NicType internet on a VPC security group.
    VPC_DISABLED = ("VPCDisabled", 400, "Can't use the SecurityGroup in VPC.");
    /// Ingress: bad SourceCidrIp (the peer).
    SOURCE_CIDR_MALFORMED = ("InvalidSourceCidrIp.Malformed", 400, "The specified parameter \"SourceCidrIp\" is not valid.");
    /// Bad DestCidrIp.
    DEST_CIDR_MALFORMED = ("InvalidDestCidrIp.Malformed", 400, "The specified parameter DestCidrIp is not valid.");
    /// Egress DestCidrIp with a prefix longer than /32 (the documented misspelt code).
    DEST_CIDR_S_MALFORMED = ("InvalidDestCidrIp.sMalformed", 400, "The specified parameter DestCidrIp is not valid.");
    /// SourceCidrIp of the wrong family (or, egress, any bad local SourceCidrIp).
    PARAM_SOURCE_CIDR = ("InvalidParam.SourceCidrIp", 400, "The specified parameter %s is not valid.");
    /// DestCidrIp of the wrong family.
    PARAM_DEST_CIDR = ("InvalidParam.DestCidrIp", 400, "The specified parameter %s is not valid.");
    /// SourceCidrIp and Ipv6SourceCidrIp together.
    SOURCE_IP = ("InvalidParam.SourceIp", 400, "The Parameters SourceCidrIp and Ipv6SourceCidrIp in %s cannot be set at the same time.");
    /// DestCidrIp and Ipv6DestCidrIp together.
    DEST_IP = ("InvalidParam.DestIp", 400, "The Parameters DestCidrIp and Ipv6DestCidrIp in %s cannot be set at the same time.");
    /// Bad Ipv6SourceCidrIp.
    IPV6_SOURCE = ("InvalidParam.Ipv6SourceCidrIp", 400, "The specified parameter %s is not valid.");
    /// Bad Ipv6DestCidrIp.
    IPV6_DEST = ("InvalidParam.Ipv6DestCidrIp", 400, "The specified parameter %s is not valid.");
    /// Ingress: an IPv4 address in an IPv6 field (S0).
    ILLEGAL_IPV6_CIDR = ("ILLEGAL_IPV6_CIDR", 400, "The specified IPv6 CIDR %s is illegal.");
    /// Egress: an IPv4 address in an IPv6 field (S1).
    IPV6_CIDR_IP = ("InvalidParameter.Ipv6CidrIp", 400, "The specified Ipv6CidrIp is not valid.");
    /// ICMP with an IPv6 address.
    V4_PROTO_V6_ADDR = ("InvalidParam.Ipv4ProtocolConflictWithIpv6Address", 400, "IPv6 address cannot be specified for IPv4-specific protocol.");
    /// ICMPv6 with an IPv4 address.
    V6_PROTO_V4_ADDR = ("InvalidParam.Ipv6ProtocolConflictWithIpv4Address", 400, "IPv4 address cannot be specified for IPv6-specific protocol.");
    /// Unknown source group.
    SOURCE_GROUP_NOT_FOUND = ("InvalidSourceGroupId.NotFound", 404, "The SourceGroupId provided does not exist in our records.");
    /// Unknown destination group.
    DEST_GROUP_NOT_FOUND = ("InvalidDestGroupId.NotFound", 404, "The DestGroupId provided does not exist in our records.");
    /// Source group in another VPC.
    SOURCE_GROUP_MISMATCH = ("InvalidSourceGroupId.Mismatch", 400, "Specified security group and source group are not in the same VPC.");
    /// Destination group in another VPC.
    DEST_GROUP_MISMATCH = ("InvalidDestGroupId.Mismatch", 400, "Specified security group and destination group are not in the same VPC.");
    /// Cross-account group reference with no authorization record.
    GROUP_AUTH_ITEM = ("InvalidGroupAuthItem.NotFound", 403, "Specified group authorized item does not exist in our records.");
    /// Ingress self-reference (S0, 400).
    PARAMTER_CONFLICT = ("InvalidParamter.Conflict", 400, "The specified SecurityGroupId should be different from the SourceGroupId.");
    /// Egress self-reference.
    IS_SAME = ("InvalidSecurityGroup.IsSame", 403, "The authorized SecurityGroupId should be different from the DestGroupId.");
    /// A reference to an enterprise (advanced) group.
    GROUP_AUTH_DENIED = ("InvalidGroupAuthParameter.OperationDenied", 400, "The security group can not authorize to enterprise level security group.");
    /// Policy / SourceGroupId / DestGroupId given for an enterprise group.
    GROUP_PARAMETER_DENIED = ("InvalidGroupParameter.OperationDenied", 400, "The attributes Policy, SourceGroupId, DestGroupId of enterprise level security groups are not allowed to be set or modified.");
    /// Bad description.
    DESCRIPTION = ("InvalidSecurityGroupDiscription.Malformed", 400, "The specified security group rule description is not valid.");
    /// Unknown prefix list.
    PREFIX_LIST_NOT_FOUND = ("InvalidPrefixListId.NotFound", 404, "The specified prefix list was not found.");
    /// Prefix lists not enabled for the account.
    GRAY_FUNCTION = ("NotSupported.GrayFunction", 404, "The prefix list is a gray-scale function, not currently supported.");
    /// Prefix list on a classic-network group.
    CLASSIC_PREFIX_LIST = ("NotSupported.ClassicNetworkPrefixList", 400, "The prefix list is not supported when the network type of security group is classic.");
}

/// The code for a rule ID that names no rule of the group in this direction
/// (SEMANTICS Q1: the two documents disagree; kept as data so it can be changed).
pub(super) const RULE_ID_UNKNOWN: [(Direction, Code); 2] = [
    (Direction::Ingress, RULE_ID_INVALID),
    (Direction::Egress, RULE_NOT_EXIST),
];

/// The not-found code for `direction` (see [`RULE_ID_UNKNOWN`]).
pub(super) fn rule_id_unknown(direction: Direction) -> Code {
    RULE_ID_UNKNOWN
        .iter()
        .find(|(d, _)| *d == direction)
        .map_or(RULE_NOT_EXIST, |(_, c)| *c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_seed_code_is_in_the_catalogue() {
        let seed_codes = [
            "InvalidSecurityGroupId.NotFound",
            "InvalidSecurityGroupId.Malformed",
            "InvalidIpProtocol.ValueNotSupported",
            "InvalidIpPortRange.Malformed",
            "InvalidSourceGroupId.NotFound",
            "InvalidNicType.Mismatch",
            "InvalidGroupAuthItem.NotFound",
            "InvalidSourceCidrIp.Malformed",
            "MissingParameter",
            "InvalidPolicy.Malformed",
            "InvalidNicType.ValueNotSupported",
            "InvalidSourceGroupId.Mismatch",
            "VPCDisabled",
            "InternalError",
            "MissingParameter.Source",
            "InvalidPriority.Malformed",
            "InvalidPriority.ValueNotSupported",
            "InvalidParamter.Conflict",
            "InvalidDestCidrIp.Malformed",
            "InvalidParam.SourceIp",
            "InvalidParam.DestIp",
            "InvalidParam.Ipv6DestCidrIp",
            "InvalidParam.Ipv6SourceCidrIp",
            "InvalidParam.Ipv4ProtocolConflictWithIpv6Address",
            "InvalidParam.Ipv6ProtocolConflictWithIpv4Address",
            "ILLEGAL_IPV6_CIDR",
            "InvalidSourcePortRange.Malformed",
            "InvalidSecurityGroupDiscription.Malformed",
            "InvalidOperation.ResourceManagedByCloudProduct",
            "InvalidPrefixListId.NotFound",
            "NotSupported.GrayFunction",
            "NotSupported.ClassicNetworkPrefixList",
            "InvalidDestCidrIp.sMalformed",
            "InvalidDestGroupId.Mismatch",
            "MissingParameter.Dest",
            "InvalidParam.PortRange",
            "InvalidParameter.Ipv6CidrIp",
            "InvalidGroupAuthParameter.OperationDenied",
            "InvalidPortRange.Malformed",
            "InvalidParam.SourceCidrIp",
            "InvalidParam.DestCidrIp",
            "InvalidParam.Permissions",
            "InvalidParam.DuplicatePermissions",
            "InvalidParam.SecurityGroupRuleId",
            "InvalidParam.SecurityGroupRuleIdRepeated",
            "InvalidGroupParameter.OperationDenied",
            "InvalidSecurityGroupRule.RuleNotExist",
            "InvalidParam.ProtocolNotSupportPortRangeList",
            "InvalidPortRangeListId.NotFound",
            "InvalidOperation.SecurityGroupNotAuthorized",
            "InvalidSecurityGroup.IsSame",
            "InvalidDestGroupId.NotFound",
            "InvalidSecurityGroupRuleId.NotFound",
        ];
        for code in seed_codes {
            assert!(ALL.iter().any(|c| c.code == code), "{code} missing");
        }
        assert_eq!(
            rule_id_unknown(Direction::Egress).code,
            "InvalidSecurityGroupRule.RuleNotExist"
        );
        assert_eq!(
            PARAM_PORT_RANGE
                .with("PortRange")
                .message
                .matches("PortRange")
                .count(),
            1
        );
    }
}
