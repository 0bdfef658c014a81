//! Network interfaces (`describe-network-interfaces`) and the instances behind them
//! (`describe-instances`).

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::{Map, Value};

use super::json::{family_name, join, File};
use super::Acc;
use crate::model::{Eni, Family, GroupId};
use crate::provider::ImportError;

pub(super) fn read_eni(file: &File, e: &Value, path: &str) -> Result<Eni, ImportError> {
    let o = file.object(e, path)?;
    let id = file.req_str(o, "NetworkInterfaceId", path)?;
    let mut ips: Vec<IpAddr> = Vec::new();
    let mut public_ips: Vec<IpAddr> = Vec::new();
    let addr = |text: &str, field: &str, family: Family| -> Result<IpAddr, ImportError> {
        let a: IpAddr = text
            .trim()
            .parse()
            .map_err(|_| file.err(field, format!("'{text}' is not an IP address")))?;
        if Family::of(a) != family {
            return Err(file.err(
                field,
                format!("'{text}' is not an {} address", family_name(family)),
            ));
        }
        Ok(a)
    };
    let push = |list: &mut Vec<IpAddr>, a: IpAddr| {
        if !list.contains(&a) {
            list.push(a);
        }
    };
    if let Some(t) = file.opt_str(o, "PrivateIpAddress", path)? {
        push(
            &mut ips,
            addr(t, &join(path, "PrivateIpAddress"), Family::V4)?,
        );
    }
    let public = |o: &Map<String, Value>, path: &str| -> Result<Option<IpAddr>, ImportError> {
        match o.get("Association").filter(|v| !v.is_null()) {
            None => Ok(None),
            Some(a) => {
                let apath = join(path, "Association");
                let ao = file.object(a, &apath)?;
                match file.opt_str(ao, "PublicIp", &apath)? {
                    Some(t) => Ok(Some(addr(t, &join(&apath, "PublicIp"), Family::V4)?)),
                    None => Ok(None),
                }
            }
        }
    };
    if let Some(p) = public(o, path)? {
        push(&mut public_ips, p);
    }
    for (i, p) in file
        .array(o, "PrivateIpAddresses", path)?
        .iter()
        .enumerate()
    {
        let ppath = format!("{path}.PrivateIpAddresses[{i}]");
        let po = file.object(p, &ppath)?;
        if let Some(t) = file.opt_str(po, "PrivateIpAddress", &ppath)? {
            push(
                &mut ips,
                addr(t, &join(&ppath, "PrivateIpAddress"), Family::V4)?,
            );
        }
        if let Some(p) = public(po, &ppath)? {
            push(&mut public_ips, p);
        }
    }
    for (i, p) in file.array(o, "Ipv6Addresses", path)?.iter().enumerate() {
        let ppath = format!("{path}.Ipv6Addresses[{i}]");
        let po = file.object(p, &ppath)?;
        if let Some(t) = file.opt_str(po, "Ipv6Address", &ppath)? {
            push(&mut ips, addr(t, &join(&ppath, "Ipv6Address"), Family::V6)?);
        }
    }
    let mut groups = Vec::new();
    for (i, g) in file.array(o, "Groups", path)?.iter().enumerate() {
        let gpath = format!("{path}.Groups[{i}]");
        let go = file.object(g, &gpath)?;
        let gid: GroupId = file.req_str(go, "GroupId", &gpath)?.into();
        if !groups.contains(&gid) {
            groups.push(gid);
        }
    }
    let mut attrs = BTreeMap::new();
    for key in [
        "SubnetId",
        "InterfaceType",
        "Description",
        "OwnerId",
        "AvailabilityZone",
    ] {
        if let Some(v) = file.opt_str(o, key, path)?.filter(|v| !v.is_empty()) {
            attrs.insert(key.to_string(), v.to_string());
        }
    }
    if let Some(name) = name_tag(file, o, "TagSet", path)? {
        attrs.insert("Name".to_string(), name);
    }
    if let Some(a) = o.get("Attachment").filter(|v| !v.is_null()) {
        let apath = join(path, "Attachment");
        let ao = file.object(a, &apath)?;
        if let Some(id) = file
            .opt_str(ao, "InstanceId", &apath)?
            .filter(|v| !v.is_empty())
        {
            attrs.insert("InstanceId".to_string(), id.to_string());
        }
    }
    Ok(Eni {
        id: id.into(),
        ips,
        public_ips,
        groups,
        vpc: file
            .opt_str(o, "VpcId", path)?
            .filter(|v| !v.is_empty())
            .map(Into::into),
        attrs,
    })
}

/// The `Name` tag of a `Tags` / `TagSet` list, if any.
fn name_tag(
    file: &File<'_>,
    o: &Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<String>, ImportError> {
    for (i, t) in file.array(o, key, path)?.iter().enumerate() {
        let tpath = format!("{path}.{key}[{i}]");
        let to = file.object(t, &tpath)?;
        if file.opt_str(to, "Key", &tpath)? == Some("Name") {
            return Ok(file
                .opt_str(to, "Value", &tpath)?
                .filter(|v| !v.is_empty())
                .map(str::to_string));
        }
    }
    Ok(None)
}

/// One reservation of `describe-instances`: its instances' IDs and Name tags, by ENI.
pub(super) fn read_reservation(
    file: &File<'_>,
    r: &Value,
    path: &str,
    acc: &mut Acc,
) -> Result<(), ImportError> {
    let ro = file.object(r, path)?;
    for (i, inst) in file.array(ro, "Instances", path)?.iter().enumerate() {
        let ipath = format!("{path}.Instances[{i}]");
        let io = file.object(inst, &ipath)?;
        let id = file.req_str(io, "InstanceId", &ipath)?.to_string();
        let name = name_tag(file, io, "Tags", &ipath)?;
        for (j, n) in file
            .array(io, "NetworkInterfaces", &ipath)?
            .iter()
            .enumerate()
        {
            let npath = format!("{ipath}.NetworkInterfaces[{j}]");
            let no = file.object(n, &npath)?;
            let eni = file.req_str(no, "NetworkInterfaceId", &npath)?.to_string();
            acc.instances.insert(eni, (id.clone(), name.clone()));
        }
    }
    Ok(())
}
