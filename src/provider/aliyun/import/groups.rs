//! `DescribeSecurityGroups`: group type, network, managed flag.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::json::{boolean, items, object, text, Ctx};
use super::{group_entry, GroupInfo};
use crate::model::GroupKind;
use crate::provider::ImportError;

pub(super) fn describe_groups(
    ctx: &mut Ctx,
    o: &Map<String, Value>,
    at: &str,
    groups: &mut BTreeMap<String, GroupInfo>,
) -> Result<(), ImportError> {
    let region = text(ctx, o, at, "RegionId")?;
    for (i, item) in items(ctx, o, at, "SecurityGroups", "SecurityGroup")?
        .into_iter()
        .enumerate()
    {
        let gat = format!("{at}SecurityGroups.SecurityGroup[{i}].");
        let g = object(ctx, item, &gat)?;
        let Some(id) = text(ctx, g, &gat, "SecurityGroupId")? else {
            return Err(ctx.err(format!("{gat}SecurityGroupId"), "missing"));
        };
        let kind = match text(ctx, g, &gat, "SecurityGroupType")?.map(|t| t.to_ascii_lowercase()) {
            None => GroupKind::Basic,
            Some(t) if t == "normal" => GroupKind::Basic,
            Some(t) if t == "enterprise" => GroupKind::Enterprise,
            Some(t) => {
                return Err(ctx.err(
                    format!("{gat}SecurityGroupType"),
                    format!("'{t}' is neither normal nor enterprise"),
                ))
            }
        };
        let vpc = text(ctx, g, &gat, "VpcId")?;
        let managed = boolean(ctx, g, &gat, "ServiceManaged")?;
        let name = text(ctx, g, &gat, "SecurityGroupName")?;
        let description = text(ctx, g, &gat, "Description")?;
        let mut attrs = Vec::new();
        for key in ["CreationTime", "ResourceGroupId"] {
            if let Some(v) = text(ctx, g, &gat, key)? {
                attrs.push((key.to_string(), v));
            }
        }
        let info = group_entry(groups, &id);
        if let (Some(Some(old)), new) = (&info.vpc, &vpc) {
            if Some(old) != new.as_ref() {
                ctx.warn(format!(
                    "{gat}VpcId: group {id} is in {} here but in {old} in another export; using this one",
                    new.as_deref().unwrap_or("the classic network")
                ));
            }
        }
        info.vpc = Some(vpc);
        info.kind = Some(kind);
        if name.is_some() {
            info.name = name;
        }
        if description.is_some() {
            info.description = description;
        }
        if let Some(m) = managed {
            info.attrs.insert("ServiceManaged".into(), m.to_string());
        }
        if let Some(r) = &region {
            info.attrs.insert("RegionId".into(), r.clone());
        }
        info.attrs.extend(attrs);
    }
    Ok(())
}
