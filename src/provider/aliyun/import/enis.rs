//! `DescribeNetworkInterfaces`: ENIs, their addresses and groups.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::{Map, Value};

use super::json::{items, object, text, Ctx};
use super::Enis;
use crate::model::{Eni, GroupId, VpcId};
use crate::provider::ImportError;

pub(super) fn interfaces(
    ctx: &mut Ctx,
    o: &Map<String, Value>,
    at: &str,
    enis: &mut Enis,
) -> Result<(), ImportError> {
    for (i, item) in items(ctx, o, at, "NetworkInterfaceSets", "NetworkInterfaceSet")?
        .into_iter()
        .enumerate()
    {
        let eat = format!("{at}NetworkInterfaceSets.NetworkInterfaceSet[{i}].");
        let e = object(ctx, item, &eat)?;
        let Some(id) = text(ctx, e, &eat, "NetworkInterfaceId")? else {
            return Err(ctx.err(format!("{eat}NetworkInterfaceId"), "missing"));
        };
        let addr = |ctx: &Ctx, field: String, t: &str| -> Result<IpAddr, ImportError> {
            t.parse::<IpAddr>()
                .map_err(|_| ctx.err(field, format!("'{t}' is not an IP address")))
        };
        let mut ips: Vec<IpAddr> = Vec::new();
        let mut public: Vec<IpAddr> = Vec::new();
        let push = |list: &mut Vec<IpAddr>, a: IpAddr| {
            if !list.contains(&a) {
                list.push(a);
            }
        };
        if let Some(p) = text(ctx, e, &eat, "PrivateIpAddress")? {
            push(&mut ips, addr(ctx, format!("{eat}PrivateIpAddress"), &p)?);
        }
        for (j, s) in items(ctx, e, &eat, "PrivateIpSets", "PrivateIpSet")?
            .into_iter()
            .enumerate()
        {
            let sat = format!("{eat}PrivateIpSets.PrivateIpSet[{j}].");
            let s = object(ctx, s, &sat)?;
            if let Some(p) = text(ctx, s, &sat, "PrivateIpAddress")? {
                push(&mut ips, addr(ctx, format!("{sat}PrivateIpAddress"), &p)?);
            }
            if let Some(Value::Object(eip)) = s.get("AssociatedPublicIp") {
                let pat = format!("{sat}AssociatedPublicIp.");
                if let Some(p) = text(ctx, eip, &pat, "PublicIpAddress")? {
                    push(&mut public, addr(ctx, format!("{pat}PublicIpAddress"), &p)?);
                }
            }
        }
        for (j, s) in items(ctx, e, &eat, "Ipv6Sets", "Ipv6Set")?
            .into_iter()
            .enumerate()
        {
            let sat = format!("{eat}Ipv6Sets.Ipv6Set[{j}].");
            let s = object(ctx, s, &sat)?;
            if let Some(p) = text(ctx, s, &sat, "Ipv6Address")? {
                push(&mut ips, addr(ctx, format!("{sat}Ipv6Address"), &p)?);
            }
        }
        if let Some(Value::Object(eip)) = e.get("AssociatedPublicIp") {
            let pat = format!("{eat}AssociatedPublicIp.");
            if let Some(p) = text(ctx, eip, &pat, "PublicIpAddress")? {
                push(&mut public, addr(ctx, format!("{pat}PublicIpAddress"), &p)?);
            }
        }
        let mut groups: Vec<GroupId> = Vec::new();
        for (j, g) in items(ctx, e, &eat, "SecurityGroupIds", "SecurityGroupId")?
            .into_iter()
            .enumerate()
        {
            let g = g.as_str().filter(|s| !s.is_empty()).ok_or_else(|| {
                ctx.err(
                    format!("{eat}SecurityGroupIds.SecurityGroupId[{j}]"),
                    "expected a group ID",
                )
            })?;
            if !groups.iter().any(|x| x.as_str() == g) {
                groups.push(g.into());
            }
        }
        let mut attrs = BTreeMap::new();
        for key in [
            "InstanceId",
            "Type",
            "Status",
            "NetworkInterfaceName",
            "VSwitchId",
            "ZoneId",
            "MacAddress",
            "OwnerId",
        ] {
            if let Some(v) = text(ctx, e, &eat, key)? {
                attrs.insert(key.to_string(), v);
            }
        }
        if ips.is_empty() {
            ctx.warn(format!("{eat}: ENI {id} has no private IP address"));
        }
        let vpc = text(ctx, e, &eat, "VpcId")?;
        enis.push(Eni {
            id: id.as_str().into(),
            ips,
            public_ips: public,
            groups,
            vpc: vpc.map(VpcId::from),
            attrs,
        });
    }
    Ok(())
}
