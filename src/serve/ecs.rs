//! The ECS RPC API's describes, rendered from the model as Alibaba's JSON (or XML with
//! `Format=XML`), and its error envelope.

use serde_json::{json, Map, Value};

use crate::model::{
    Action, Direction, Family, GroupKind, Peer, Protocol, Provider, Rule, SecurityGroup, State,
};
use crate::provider::aliyun::{response, Nic};
use crate::provider::{xml_escape as esc, ApiError, Params};

/// Whether sgsim serves this ECS action as a describe.
pub fn is_describe(action: &str) -> bool {
    matches!(
        action,
        "DescribeSecurityGroupAttribute" | "DescribeSecurityGroups" | "DescribeNetworkInterfaces"
    )
}

/// `InvalidAction.NotFound` for actions sgsim does not serve.
pub fn invalid_action() -> ApiError {
    ApiError::new(
        "InvalidAction.NotFound",
        404,
        "Specified api is not found, please check your url and method.",
    )
}

/// Whether the request asks for XML.
pub fn wants_xml(params: &Params) -> bool {
    params
        .get("Format")
        .is_some_and(|f| f.eq_ignore_ascii_case("xml"))
}

/// Alibaba's error body in the format asked for.
pub fn error(request_id: &str, e: &ApiError, xml: bool) -> String {
    if xml {
        response::error_xml(request_id, e)
    } else {
        response::error_json(request_id, e).to_string()
    }
}

/// A JSON body as Alibaba writes it in XML: an object's members become elements, a list
/// repeats its element.
pub fn to_xml(action: &str, body: &Value) -> String {
    fn write(out: &mut String, name: &str, v: &Value) {
        match v {
            Value::Array(items) => {
                for item in items {
                    write(out, name, item);
                }
            }
            Value::Object(o) => {
                out.push_str(&format!("<{name}>"));
                for (k, v) in o {
                    write(out, k, v);
                }
                out.push_str(&format!("</{name}>"));
            }
            Value::Null => {}
            Value::String(s) => out.push_str(&format!("<{name}>{}</{name}>", esc(s))),
            other => out.push_str(&format!("<{name}>{other}</{name}>")),
        }
    }
    let mut out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>".to_string();
    write(&mut out, &format!("{action}Response"), body);
    out
}

fn missing(name: &str) -> ApiError {
    ApiError::new(
        "MissingParameter",
        400,
        format!("The input parameter \"{name}\" that is mandatory for processing this request is not supplied."),
    )
}

fn invalid(name: &str, value: &str) -> ApiError {
    ApiError::new(
        "InvalidParameter",
        400,
        format!("The specified parameter \"{name}\" is not valid: '{value}'."),
    )
}

fn group_not_found() -> ApiError {
    ApiError::new(
        "InvalidSecurityGroupId.NotFound",
        404,
        "The specified SecurityGroupId does not exist.",
    )
}

/// Answers an ECS describe from `state` (the JSON body).
pub fn describe(state: &State, action: &str, params: &Params, id: &str) -> Result<Value, ApiError> {
    match action {
        "DescribeSecurityGroupAttribute" => attribute(state, params, id),
        "DescribeSecurityGroups" => groups(state, params, id),
        "DescribeNetworkInterfaces" => enis(state, params, id),
        _ => Err(invalid_action()),
    }
}

fn protocol(p: Protocol) -> String {
    match p {
        Protocol::Any => "ALL".into(),
        Protocol::Number(6) => "TCP".into(),
        Protocol::Number(17) => "UDP".into(),
        Protocol::Number(1) => "ICMP".into(),
        Protocol::Number(58) => "ICMPv6".into(),
        Protocol::Number(47) => "GRE".into(),
        Protocol::Number(n) => n.to_string(),
    }
}

fn port_text(r: &Rule, src: bool) -> String {
    let range = if src { r.src_ports } else { r.dst_ports };
    // Any port is how an export's `-1/-1` (or a port-list rule's) reads: print it back so.
    if !r.protocol.has_ports() || r.protocol.is_icmp() || range.is_any() {
        "-1/-1".into()
    } else {
        format!("{}/{}", range.lo(), range.hi())
    }
}

/// One rule of `g` as a `Permissions.Permission` item.
fn permission(g: &SecurityGroup, r: &Rule) -> Value {
    let (peer, local) = match r.direction {
        Direction::Ingress => ("Source", "Dest"),
        Direction::Egress => ("Dest", "Source"),
    };
    let mut p = Map::new();
    let mut put = |k: String, v: Value| {
        p.insert(k, v);
    };
    put("SecurityGroupRuleId".into(), json!(r.id));
    put("Direction".into(), json!(r.direction.as_str()));
    put("IpProtocol".into(), json!(protocol(r.protocol)));
    put("PortRange".into(), json!(port_text(r, false)));
    put(
        "Policy".into(),
        json!(match r.action {
            Action::Accept => "Accept",
            Action::Drop => "Drop",
        }),
    );
    put("Priority".into(), json!(r.priority.0.to_string()));
    put(
        "Description".into(),
        json!(r.description.clone().unwrap_or_default()),
    );
    for side in [peer, local] {
        for k in ["CidrIp", "GroupId", "GroupOwnerAccount", "PrefixListId"] {
            put(format!("{side}{k}"), json!(""));
        }
        put(format!("Ipv6{side}CidrIp"), json!(""));
    }
    match &r.remote {
        Peer::Cidr { cidr } if cidr.family() == Family::V4 => {
            put(format!("{peer}CidrIp"), json!(cidr.to_string()))
        }
        Peer::Cidr { cidr } => put(format!("Ipv6{peer}CidrIp"), json!(cidr.to_string())),
        Peer::Group { group_id, owner } => {
            put(format!("{peer}GroupId"), json!(group_id));
            put(
                format!("{peer}GroupOwnerAccount"),
                json!(owner.clone().unwrap_or_default()),
            );
        }
        Peer::PrefixList { prefix_list_id } => {
            put(format!("{peer}PrefixListId"), json!(prefix_list_id))
        }
    }
    if let Some(l) = &r.local {
        let key = match l.family() {
            Family::V4 => format!("{local}CidrIp"),
            Family::V6 => format!("Ipv6{local}CidrIp"),
        };
        put(key, json!(l.to_string()));
    }
    if !r.src_ports.is_any() && r.protocol.has_ports() && !r.protocol.is_icmp() {
        put("SourcePortRange".into(), json!(port_text(r, true)));
    }
    for (k, v) in &r.attrs {
        if k == "Priority" || k == "Direction" {
            continue;
        }
        if !v.is_empty() || !p.contains_key(k) {
            p.insert(k.clone(), json!(v));
        }
    }
    p.insert("NicType".into(), json!(Nic::of_rule(g, r).as_str()));
    Value::Object(p)
}

/// The request's `RegionId`: required, as revoke requires it.
fn region(params: &Params) -> Result<&str, ApiError> {
    params
        .get("RegionId")
        .filter(|r| !r.is_empty())
        .ok_or_else(|| missing("RegionId"))
}

/// Whether `g` is in `region` (a group whose export names no region is in every one).
fn in_region(g: &SecurityGroup, region: &str) -> bool {
    g.attrs.get("RegionId").is_none_or(|r| r == region)
}

fn attribute(state: &State, params: &Params, id: &str) -> Result<Value, ApiError> {
    let region = region(params)?;
    let Some(gid) = params.get("SecurityGroupId").filter(|g| !g.is_empty()) else {
        return Err(missing("SecurityGroupId"));
    };
    let Some(g) = state
        .groups
        .iter()
        .find(|g| g.id.as_str() == gid && g.provider == Provider::Aliyun)
        .filter(|g| in_region(g, region))
    else {
        return Err(group_not_found());
    };
    let direction = match params
        .get("Direction")
        .unwrap_or("all")
        .to_ascii_lowercase()
        .as_str()
    {
        "all" | "" => None,
        "ingress" => Some(Direction::Ingress),
        "egress" => Some(Direction::Egress),
        other => return Err(invalid("Direction", other)),
    };
    // SEMANTICS.md §1.2: a classic group answers one NIC type a call (internet unless told
    // otherwise); a VPC group's rules are all intranet, whatever is asked.
    let given = match params.get("NicType").filter(|n| !n.is_empty()) {
        None => None,
        Some(t) => match Nic::parse(t) {
            Some(n) => Some(n),
            None if g.vpc.is_some() => None,
            None => return Err(invalid("NicType", t)),
        },
    };
    let nic = Nic::meant(g, given, false);
    let perms: Vec<Value> = state
        .rules
        .iter()
        .filter(|r| r.group == g.id)
        .filter(|r| direction.is_none_or(|d| d == r.direction))
        .filter(|r| Nic::of_rule(g, r) == nic)
        .map(|r| permission(g, r))
        .collect();
    Ok(json!({
        "RequestId": id,
        "RegionId": region,
        "SecurityGroupId": g.id,
        "SecurityGroupName": g.name.clone().unwrap_or_default(),
        "Description": g.description.clone().unwrap_or_default(),
        "VpcId": g.vpc.as_ref().map(|v| v.to_string()).unwrap_or_default(),
        "InnerAccessPolicy": match g.inner_access { Action::Accept => "Accept", Action::Drop => "Drop" },
        "Permissions": {"Permission": perms},
    }))
}

/// `PageNumber` / `PageSize` (default 1 and 10, at most `max_page`), or `MaxResults` /
/// `NextToken`.
fn page(params: &Params, n: usize, max_page: usize) -> Result<(usize, usize, Value), ApiError> {
    let num = |name: &str, default: usize, max: usize| -> Result<usize, ApiError> {
        match params.get(name) {
            None | Some("") => Ok(default),
            Some(t) => t
                .parse::<usize>()
                .ok()
                .filter(|v| (1..=max).contains(v))
                .ok_or_else(|| invalid(name, t)),
        }
    };
    if params.get("MaxResults").is_some() || params.get("NextToken").is_some() {
        let size = num("MaxResults", 10, 100)?;
        let start = match params.get("NextToken") {
            None | Some("") => 0,
            Some(t) => t
                .parse::<usize>()
                .ok()
                .filter(|&s| s <= n)
                .ok_or_else(|| invalid("NextToken", t))?,
        };
        let end = (start + size).min(n);
        let next = if end < n {
            end.to_string()
        } else {
            String::new()
        };
        return Ok((start, end, json!({"NextToken": next, "MaxResults": size})));
    }
    let number = num("PageNumber", 1, usize::MAX)?;
    let size = num("PageSize", 10, max_page)?;
    let start = (number - 1).saturating_mul(size).min(n);
    let end = (start + size).min(n);
    Ok((start, end, json!({"PageNumber": number, "PageSize": size})))
}

fn id_list(params: &Params, name: &str) -> Result<Option<Vec<String>>, ApiError> {
    match params.get(name) {
        None | Some("") => Ok(None),
        Some(t) if t.trim_start().starts_with('[') => serde_json::from_str(t)
            .map(Some)
            .map_err(|_| invalid(name, t)),
        Some(t) => Ok(Some(t.split(',').map(|s| s.trim().to_string()).collect())),
    }
}

fn groups(state: &State, params: &Params, id: &str) -> Result<Value, ApiError> {
    let region = region(params)?;
    let ids = id_list(params, "SecurityGroupIds")?;
    let one = params.get("SecurityGroupId").filter(|s| !s.is_empty());
    let selected: Vec<_> = state
        .groups
        .iter()
        .filter(|g| g.provider == Provider::Aliyun && in_region(g, region))
        .filter(|g| one.is_none_or(|o| o == g.id.as_str()))
        .filter(|g| {
            ids.as_ref()
                .is_none_or(|l| l.iter().any(|i| i == g.id.as_str()))
        })
        .filter(|g| {
            params
                .get("VpcId")
                .filter(|v| !v.is_empty())
                .is_none_or(|v| g.vpc.as_ref().is_some_and(|x| x.as_str() == v))
        })
        .filter(|g| {
            params
                .get("SecurityGroupName")
                .filter(|v| !v.is_empty())
                .is_none_or(|v| g.name.as_deref() == Some(v))
        })
        .collect();
    let (start, end, paging) = page(params, selected.len(), 50)?;
    let items: Vec<Value> = selected[start..end]
        .iter()
        .map(|g| {
            let mut o = Map::new();
            o.insert("SecurityGroupId".into(), json!(g.id));
            o.insert(
                "SecurityGroupName".into(),
                json!(g.name.clone().unwrap_or_default()),
            );
            o.insert(
                "Description".into(),
                json!(g.description.clone().unwrap_or_default()),
            );
            o.insert(
                "VpcId".into(),
                json!(g.vpc.as_ref().map(|v| v.to_string()).unwrap_or_default()),
            );
            o.insert(
                "SecurityGroupType".into(),
                json!(if g.kind == GroupKind::Enterprise {
                    "enterprise"
                } else {
                    "normal"
                }),
            );
            o.insert(
                "RuleCount".into(),
                json!(state.rules.iter().filter(|r| r.group == g.id).count()),
            );
            for (k, v) in &g.attrs {
                if k == "ServiceManaged" {
                    o.insert(k.clone(), json!(v == "true"));
                } else if k != "RegionId" {
                    o.insert(k.clone(), json!(v));
                }
            }
            Value::Object(o)
        })
        .collect();
    let mut body = json!({
        "RequestId": id,
        "RegionId": region,
        "TotalCount": selected.len(),
        "SecurityGroups": {"SecurityGroup": items},
    });
    merge(&mut body, paging);
    Ok(body)
}

fn merge(body: &mut Value, extra: Value) {
    if let (Value::Object(b), Value::Object(e)) = (body, extra) {
        b.extend(e);
    }
}

fn enis(state: &State, params: &Params, id: &str) -> Result<Value, ApiError> {
    let region = region(params)?;
    let mut ids: Vec<String> = params
        .0
        .iter()
        .filter(|(k, _)| k.starts_with("NetworkInterfaceId."))
        .map(|(_, v)| v.clone())
        .collect();
    if let Some(l) = id_list(params, "NetworkInterfaceIds")? {
        ids.extend(l);
    }
    let group = params.get("SecurityGroupId").filter(|s| !s.is_empty());
    let vpc = params.get("VpcId").filter(|s| !s.is_empty());
    let selected: Vec<_> = state
        .enis
        .iter()
        .filter(|e| {
            e.groups.iter().any(|g| {
                state
                    .group(g)
                    .is_some_and(|g| g.provider == Provider::Aliyun)
            })
        })
        // In the region: its own RegionId when its export names one, else its groups'.
        .filter(|e| match e.attrs.get("RegionId") {
            Some(r) => r == region,
            None => e
                .groups
                .iter()
                .filter_map(|g| state.group(g))
                .any(|g| in_region(g, region)),
        })
        .filter(|e| ids.is_empty() || ids.iter().any(|i| i == e.id.as_str()))
        .filter(|e| group.is_none_or(|g| e.groups.iter().any(|x| x.as_str() == g)))
        .filter(|e| vpc.is_none_or(|v| e.vpc.as_ref().is_some_and(|x| x.as_str() == v)))
        .collect();
    let (start, end, paging) = page(params, selected.len(), 1000)?;
    let items: Vec<Value> = selected[start..end]
        .iter()
        .map(|e| {
            let v4: Vec<String> = e.ips.iter().filter(|i| i.is_ipv4()).map(|i| i.to_string()).collect();
            let mut o = Map::new();
            o.insert("NetworkInterfaceId".into(), json!(e.id));
            o.insert("VpcId".into(), json!(e.vpc.as_ref().map(|v| v.to_string()).unwrap_or_default()));
            o.insert("PrivateIpAddress".into(), json!(v4.first().cloned().unwrap_or_default()));
            o.insert(
                "PrivateIpSets".into(),
                json!({"PrivateIpSet": v4.iter().enumerate().map(|(i, ip)| json!({"PrivateIpAddress": ip, "Primary": i == 0})).collect::<Vec<_>>()}),
            );
            o.insert(
                "Ipv6Sets".into(),
                json!({"Ipv6Set": e.ips.iter().filter(|i| i.is_ipv6()).map(|ip| json!({"Ipv6Address": ip.to_string()})).collect::<Vec<_>>()}),
            );
            if let Some(p) = e.public_ips.first() {
                o.insert("AssociatedPublicIp".into(), json!({"PublicIpAddress": p.to_string()}));
            }
            o.insert("SecurityGroupIds".into(), json!({"SecurityGroupId": e.groups}));
            for (k, v) in &e.attrs {
                o.insert(k.clone(), json!(v));
            }
            Value::Object(o)
        })
        .collect();
    let mut body = json!({
        "RequestId": id,
        "RegionId": region,
        "TotalCount": selected.len(),
        "NetworkInterfaceSets": {"NetworkInterfaceSet": items},
    });
    merge(&mut body, paging);
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A classic group with an internet and an intranet rule, a VPC group whose export
    /// calls one rule internet, both in cn-hangzhou.
    fn state() -> State {
        let perm = |id: &str, cidr: &str, nic: &str| {
            json!({"SecurityGroupRuleId": id, "Direction": "ingress", "Policy": "Accept",
                   "Priority": "1", "IpProtocol": "TCP", "PortRange": "22/22",
                   "SourceCidrIp": cidr, "NicType": nic})
        };
        let docs = vec![
            (
                "classic.json".to_string(),
                json!({"RegionId": "cn-hangzhou", "SecurityGroupId": "sg-classic", "VpcId": "",
                       "InnerAccessPolicy": "Accept", "Permissions": {"Permission": [
                           perm("sgr-pub", "0.0.0.0/0", "internet"),
                           perm("sgr-priv", "10.0.0.0/8", "intranet")]}}),
            ),
            (
                "vpc.json".to_string(),
                json!({"RegionId": "cn-hangzhou", "SecurityGroupId": "sg-vpc", "VpcId": "vpc-1",
                       "InnerAccessPolicy": "Accept", "Permissions": {"Permission": [
                           perm("sgr-v1", "10.0.0.0/8", "internet"),
                           perm("sgr-v2", "10.1.0.0/16", "")]}}),
            ),
            (
                "enis.json".to_string(),
                json!({"NetworkInterfaceSets": {"NetworkInterfaceSet": [
                    {"NetworkInterfaceId": "eni-vpc", "VpcId": "vpc-1",
                     "PrivateIpAddress": "10.0.0.5",
                     "SecurityGroupIds": {"SecurityGroupId": ["sg-vpc"]}}]}}),
            ),
        ];
        crate::provider::aliyun::import(&docs).unwrap().state
    }

    fn ask(action: &str, query: &str) -> Result<Value, ApiError> {
        describe(&state(), action, &Params::from_query(query), "R")
    }

    fn listed(v: &Value) -> Vec<(&str, &str)> {
        v["Permissions"]["Permission"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["SecurityGroupRuleId"].as_str().unwrap(),
                    p["NicType"].as_str().unwrap(),
                )
            })
            .collect()
    }

    /// Bug: NicType defaulted to intranet everywhere. SEMANTICS.md §1.2: a classic group
    /// answers internet unless told otherwise; a VPC group coerces any NicType to intranet,
    /// as revoke's match key does.
    #[test]
    fn dsga_nic_type_defaults_by_network_type() {
        let dsga = |q: &str| {
            ask(
                "DescribeSecurityGroupAttribute",
                &format!("RegionId=cn-hangzhou&{q}"),
            )
            .unwrap()
        };
        let v = dsga("SecurityGroupId=sg-classic");
        assert_eq!(listed(&v), [("sgr-pub", "internet")]);
        let v = dsga("SecurityGroupId=sg-classic&NicType=intranet");
        assert_eq!(listed(&v), [("sgr-priv", "intranet")]);
        for nic in [
            "",
            "&NicType=internet",
            "&NicType=intranet",
            "&NicType=bogus",
        ] {
            let v = dsga(&format!("SecurityGroupId=sg-vpc{nic}"));
            assert_eq!(
                listed(&v),
                [("sgr-v1", "intranet"), ("sgr-v2", "intranet")],
                "{nic}"
            );
        }
        let e = ask(
            "DescribeSecurityGroupAttribute",
            "RegionId=cn-hangzhou&SecurityGroupId=sg-classic&NicType=bogus",
        )
        .unwrap_err();
        assert_eq!((e.code.as_str(), e.status), ("InvalidParameter", 400));
    }

    /// Bug: the describes ignored RegionId (revoke honours it).
    #[test]
    fn describes_honour_region_id() {
        let e = ask(
            "DescribeSecurityGroupAttribute",
            "RegionId=cn-beijing&SecurityGroupId=sg-vpc",
        )
        .unwrap_err();
        assert_eq!(
            (e.code.as_str(), e.status),
            ("InvalidSecurityGroupId.NotFound", 404)
        );
        for action in ["DescribeSecurityGroupAttribute", "DescribeSecurityGroups"] {
            let e = ask(action, "SecurityGroupId=sg-vpc").unwrap_err();
            assert_eq!((e.code.as_str(), e.status), ("MissingParameter", 400));
            assert!(e.message.contains("\"RegionId\""), "{}", e.message);
        }
        let v = ask("DescribeSecurityGroups", "RegionId=cn-beijing").unwrap();
        assert_eq!(v["TotalCount"], 0);
        assert_eq!(v["SecurityGroups"]["SecurityGroup"], json!([]));
        let v = ask("DescribeSecurityGroups", "RegionId=cn-hangzhou").unwrap();
        assert_eq!(v["TotalCount"], 2);
    }

    /// Bug: DescribeNetworkInterfaces ignored RegionId (it listed every ENI whatever the
    /// region asked, and answered without RegionId).
    #[test]
    fn regression_network_interfaces_honour_region_id() {
        let e = ask("DescribeNetworkInterfaces", "").unwrap_err();
        assert_eq!((e.code.as_str(), e.status), ("MissingParameter", 400));
        let v = ask("DescribeNetworkInterfaces", "RegionId=cn-hangzhou").unwrap();
        assert_eq!(v["TotalCount"], 1, "{v}");
        assert_eq!(v["RegionId"], "cn-hangzhou");
        let id = &v["NetworkInterfaceSets"]["NetworkInterfaceSet"][0]["NetworkInterfaceId"];
        assert_eq!(id, "eni-vpc");
        let v = ask("DescribeNetworkInterfaces", "RegionId=cn-beijing").unwrap();
        assert_eq!(v["TotalCount"], 0, "{v}");
    }

    #[test]
    fn xml_repeats_list_elements() {
        let x = to_xml(
            "DescribeSecurityGroupAttribute",
            &json!({"RequestId": "R", "Permissions": {"Permission": [{"A": "1"}, {"A": "<2>"}]}}),
        );
        assert!(x.ends_with("<DescribeSecurityGroupAttributeResponse><Permissions><Permission><A>1</A></Permission><Permission><A>&lt;2&gt;</A></Permission></Permissions><RequestId>R</RequestId></DescribeSecurityGroupAttributeResponse>"));
    }
}
