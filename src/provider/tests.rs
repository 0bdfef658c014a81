//! Unit tests of what the providers share: raw requests, errors, outcomes, dispatch.

use super::*;

#[test]
fn reads_every_request_form() {
    let q = RawRequest::parse("Action=RevokeSecurityGroupIngress&GroupId=sg-1&IpPermissions.1.IpRanges.1.CidrIp=10.0.0.0%2F8").unwrap();
    assert_eq!(q.action(), Some("RevokeSecurityGroupIngress"));
    let RawRequest::Query(p) = &q else { panic!() };
    assert_eq!(
        p.get("IpPermissions.1.IpRanges.1.CidrIp"),
        Some("10.0.0.0/8")
    );
    let u = RawRequest::parse(
        "https://ecs.aliyuncs.com/?Action=RevokeSecurityGroup&RegionId=cn-hangzhou",
    )
    .unwrap();
    assert_eq!(u.action(), Some("RevokeSecurityGroup"));
    let multi = RawRequest::parse("?Action=RevokeSecurityGroup\n  &RegionId=cn-hangzhou").unwrap();
    assert_eq!(multi.action(), Some("RevokeSecurityGroup"));
    let j =
        RawRequest::parse(r#"{"Action":"RevokeSecurityGroupEgress","GroupId":"sg-1"}"#).unwrap();
    assert_eq!(j.action(), Some("RevokeSecurityGroupEgress"));
}

#[test]
fn reads_requests_as_clients_write_them() {
    let cli = RawRequest::parse(r#"{"GroupId":"sg-1","IpPermissions":[]}"#)
        .unwrap()
        .with_action("RevokeSecurityGroupIngress")
        .unwrap();
    assert_eq!(cli.action(), Some("RevokeSecurityGroupIngress"));
    let q = RawRequest::parse("GroupId=sg-1")
        .unwrap()
        .with_action("RevokeSecurityGroupEgress")
        .unwrap();
    assert_eq!(q.action(), Some("RevokeSecurityGroupEgress"));
    assert!(matches!(
        RawRequest::parse("Action=RevokeSecurityGroup&SecurityGroupId=sg-1")
            .unwrap()
            .with_action("RevokeSecurityGroupEgress"),
        Err(RequestError::ActionMismatch { .. })
    ));
    // Alibaba's current SDK: the action in a header, parameters in the query or body.
    let acs = RawRequest::parse(
            "x-acs-action: RevokeSecurityGroup\nx-acs-version: 2014-05-26\n\nRegionId=cn-hangzhou&SecurityGroupId=sg-1",
        )
        .unwrap();
    assert_eq!(acs.action(), Some("RevokeSecurityGroup"));
    let RawRequest::Query(p) = &acs else { panic!() };
    assert_eq!(p.get("Version"), Some("2014-05-26"));
    let line = RawRequest::parse(
            "POST /?SecurityGroupId=sg-1&RegionId=cn-hangzhou HTTP/1.1\nhost: ecs.aliyuncs.com\nx-acs-action: RevokeSecurityGroupEgress\n\nPermissions.1.IpProtocol=TCP",
        )
        .unwrap();
    let RawRequest::Query(p) = &line else {
        panic!()
    };
    assert_eq!(p.get("Action"), Some("RevokeSecurityGroupEgress"));
    assert_eq!(p.get("SecurityGroupId"), Some("sg-1"));
    assert_eq!(p.get("Permissions.1.IpProtocol"), Some("TCP"));
    let json =
        RawRequest::parse("x-acs-action: RevokeSecurityGroup\n{\"SecurityGroupId\": \"sg-1\"}")
            .unwrap();
    assert_eq!(json.action(), Some("RevokeSecurityGroup"));
    // A URL is not a header line.
    let url = RawRequest::parse("https://ecs.aliyuncs.com/?Action=RevokeSecurityGroup").unwrap();
    assert_eq!(url.action(), Some("RevokeSecurityGroup"));
}

#[test]
fn rejects_what_is_not_a_request() {
    assert_eq!(RawRequest::parse("  "), Err(RequestError::Empty));
    assert!(matches!(
        RawRequest::parse("{\"Action\": "),
        Err(RequestError::Json(_))
    ));
    assert_eq!(
        RawRequest::parse("https://ecs.aliyuncs.com/"),
        Err(RequestError::NoQuery)
    );
    assert_eq!(
        RawRequest::parse("hello world"),
        Err(RequestError::NotARequest)
    );
}

#[test]
fn request_ids_are_deterministic_uuids() {
    let a = request_id("x");
    assert_eq!(a, request_id("x"));
    assert_ne!(a, request_id("y"));
    assert_eq!(a.len(), 36);
    assert_eq!(a.matches('-').count(), 4);
}
