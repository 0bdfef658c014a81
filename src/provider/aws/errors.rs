//! The errors EC2 answers a revoke with (SEMANTICS.md §2.2.1), one constructor a code and
//! message; the module docs of [`super`] list them. Errors are data: code, HTTP status,
//! message.

use crate::provider::ApiError;

pub(super) fn unknown(name: &str) -> ApiError {
    ApiError::new(
        "UnknownParameter",
        400,
        format!("The parameter {name} is not recognized"),
    )
}

pub(super) fn bad_value(name: &str, value: &str, expected: &str) -> ApiError {
    ApiError::new(
        "InvalidParameterValue",
        400,
        format!("Value ({value}) for parameter {name} is invalid. Expected {expected}."),
    )
}

pub(super) fn repeated(name: &str) -> ApiError {
    ApiError::new(
        "InvalidParameterValue",
        400,
        format!("The parameter {name} is given more than once"),
    )
}

pub(super) fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new("InvalidParameterValue", 400, message)
}

pub(super) fn missing(what: &str) -> ApiError {
    ApiError::new(
        "MissingParameter",
        400,
        format!("The request must contain the parameter {what}"),
    )
}

pub(super) fn combination(message: &str) -> ApiError {
    ApiError::new("InvalidParameterCombination", 400, message)
}

pub(super) fn group_not_found(what: &str) -> ApiError {
    ApiError::new(
        "InvalidGroup.NotFound",
        400,
        format!("The security group '{what}' does not exist"),
    )
}

pub(super) fn by_name_in_vpc(name: &str) -> ApiError {
    invalid(format!(
        "Invalid value '{name}' for groupName. You may not reference Amazon VPC security groups by name. Please use the corresponding id for this operation."
    ))
}

pub(super) fn not_found() -> ApiError {
    ApiError::new(
        "InvalidPermission.NotFound",
        400,
        "The specified rule does not exist in this security group",
    )
}

/// A legacy single-rule field on the egress call, which does not take them.
pub(super) fn not_on_egress(name: &str) -> ApiError {
    ApiError::new(
        "InvalidParameterValue",
        400,
        format!(
            "The parameter {name} is not supported for RevokeSecurityGroupEgress. Use a set of IP permissions."
        ),
    )
}

/// The caller lacks the IAM permission ([`Config::authorized`](super::Config::authorized)).
pub(super) fn unauthorized() -> ApiError {
    ApiError::new(
        "UnauthorizedOperation",
        403,
        "You are not authorized to perform this operation.",
    )
}

/// `DryRun` on a request that would have succeeded.
pub(super) fn dry_run() -> ApiError {
    ApiError::new(
        "DryRunOperation",
        412,
        "Request would have succeeded, but DryRun flag is set.",
    )
}

/// A `GroupId` that is not `sg-` and 1–17 hexadecimal digits.
pub(super) fn group_id_malformed(id: &str) -> ApiError {
    ApiError::new(
        "InvalidGroupId.Malformed",
        400,
        format!("The security group ID '{id}' is malformed"),
    )
}

/// A group named by `GroupName` that the default VPC `vpc` does not hold.
pub(super) fn not_in_default_vpc(name: &str, vpc: &str) -> ApiError {
    ApiError::new(
        "InvalidGroup.NotFound",
        400,
        format!("The security group '{name}' does not exist in default VPC '{vpc}'"),
    )
}

/// Rule IDs (one or more) that name no rule.
pub(super) fn rule_ids_not_found(ids: &[&str]) -> ApiError {
    let message = match ids {
        [id] => format!("The security group rule ID '{id}' does not exist"),
        _ => format!(
            "The security group rule IDs '{}' do not exist",
            ids.join(", ")
        ),
    };
    ApiError::new("InvalidSecurityGroupRuleId.NotFound", 400, message)
}
