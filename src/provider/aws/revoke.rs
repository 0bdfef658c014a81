//! Revoke semantics (SEMANTICS.md §2.2): validation steps 2–8, expansion, exact matching,
//! default versus non-default VPC behaviour.

use std::collections::{BTreeSet, HashMap};

use super::errors::{
    by_name_in_vpc, combination, dry_run, group_id_malformed, group_not_found, invalid, missing,
    not_found, not_in_default_vpc, rule_ids_not_found, unauthorized,
};
use super::request::{Legacy, PairEntry, Permission, Request};
use super::values::{parse_protocol, uses_ports};
use super::Config;
use crate::model::{
    Cidr, Family, GroupId, IcmpSel, Peer, PortRange, Protocol, Provider, Rule, SecurityGroup, State,
};
use crate::provider::ApiError;

/// A group-pair entry echoed in `UnknownIpPermissions`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct EchoPair {
    pub group_id: String,
    pub user_id: Option<String>,
    pub description: Option<String>,
}

/// A request permission (or the part of it that matched nothing), as EC2 echoes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Echo {
    pub protocol: Protocol,
    /// `FromPort` / `ToPort` (ICMP type / code), absent for `-1` and other protocols.
    pub ports: Option<(i64, i64)>,
    pub ipv4: Vec<(Cidr, Option<String>)>,
    pub ipv6: Vec<(Cidr, Option<String>)>,
    pub prefix_lists: Vec<(String, Option<String>)>,
    pub groups: Vec<EchoPair>,
}

impl Echo {
    fn is_empty(&self) -> bool {
        self.ipv4.is_empty()
            && self.ipv6.is_empty()
            && self.prefix_lists.is_empty()
            && self.groups.is_empty()
    }
}

/// The peer an atomic request rule names.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Want {
    Cidr(Cidr),
    PrefixList(String),
    Group { id: String, user_id: Option<String> },
}

/// One atomic rule the request asks to revoke.
#[derive(Clone, Debug)]
struct Wanted {
    /// Index of its permission.
    perm: usize,
    protocol: Protocol,
    src: PortRange,
    dst: PortRange,
    peer: Want,
    description: Option<String>,
}

/// A successful revoke.
#[derive(Debug)]
pub(super) struct Done {
    pub state: State,
    pub revoked: Vec<Rule>,
    pub unknown: Vec<Echo>,
    pub warnings: Vec<String>,
}

/// A failed revoke: the API's error, and what the user should know about it.
#[derive(Debug)]
pub(super) struct Failed {
    pub error: ApiError,
    pub warnings: Vec<String>,
}

impl From<ApiError> for Failed {
    fn from(error: ApiError) -> Failed {
        Failed {
            error,
            warnings: Vec::new(),
        }
    }
}

/// `sg-` and 1–17 hexadecimal digits.
fn well_formed_group_id(id: &str) -> bool {
    id.strip_prefix("sg-")
        .is_some_and(|h| !h.is_empty() && h.len() <= 17 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn aws_groups(state: &State) -> impl Iterator<Item = &SecurityGroup> {
    state.groups.iter().filter(|g| g.provider == Provider::Aws)
}

/// Whether the group's VPC is known to be the account's default VPC.
pub(super) fn in_default_vpc(state: &State, group: &SecurityGroup) -> bool {
    group
        .vpc
        .as_ref()
        .and_then(|v| state.vpc(v))
        .is_some_and(|v| v.is_default)
}

/// The default VPC's ID as EC2's messages name it (`none` when the state knows none).
pub(super) fn default_vpc_id(state: &State) -> String {
    state
        .vpcs
        .iter()
        .find(|v| v.is_default)
        .map_or("none".to_string(), |v| v.id.to_string())
}

/// The description charset EC2 allows (VPC), at most 255 characters.
fn valid_description(d: &str) -> bool {
    d.chars().count() <= 255
        && d.chars()
            .all(|c| c.is_ascii_alphanumeric() || " ._-:/()#,@[]+=&;{}!$*".contains(c))
}

/// Applies a parsed request to the state (validation steps 2–8).
pub(super) fn apply(state: &State, req: &Request, config: &Config) -> Result<Done, Failed> {
    let mut warnings = Vec::new();
    // 2. Permission, then DryRun.
    if !config.authorized {
        return Err(unauthorized().into());
    }
    if req.dry_run {
        return Err(dry_run().into());
    }
    // 3. The group.
    let group = resolve_group(state, req)?;
    let default_vpc = in_default_vpc(state, group);
    // 4. Mutually exclusive forms.
    if req.group_id.is_some() && req.group_name.is_some() {
        return Err(
            combination("The parameters GroupId and GroupName cannot be used together").into(),
        );
    }
    let has_perms = !req.permissions.is_empty() || req.legacy.is_some();
    let mut permissions: Vec<Permission> = req.permissions.clone();
    if !req.rule_ids.is_empty() && has_perms {
        if config.moto_compat {
            warnings.push(
                "moto compatibility: the rule IDs were used and the IP permissions ignored"
                    .to_string(),
            );
            permissions.clear();
        } else {
            return Err(combination(
                "You may specify either security group rule IDs or IP permissions, not both",
            )
            .into());
        }
    } else if let Some(legacy) = &req.legacy {
        if !req.permissions.is_empty() {
            return Err(combination(
                "The parameter IpPermissions cannot be used with CidrIp, IpProtocol, FromPort, ToPort or SourceSecurityGroupName",
            )
            .into());
        }
        permissions = from_legacy(legacy, &mut warnings)?;
    }
    if !req.rule_ids.is_empty() {
        return by_ids(state, group, req, config, warnings);
    }
    if permissions.is_empty() {
        if config.empty_is_error {
            return Err(missing("ipPermissions or securityGroupRuleIds").into());
        }
        warnings.push("the request names no rule; nothing was revoked".to_string());
        return Ok(Done {
            state: state.clone(),
            revoked: Vec::new(),
            unknown: Vec::new(),
            warnings,
        });
    }
    // 5. Each permission, expanded into atomic rules.
    let mut wanted = Vec::new();
    let mut echoes = Vec::new();
    for (i, p) in permissions.iter().enumerate() {
        let (w, echo) = expand(state, group, default_vpc, i, p, config, &mut warnings)?;
        wanted.extend(w);
        echoes.push(echo);
    }
    // 6. Match.
    let candidates: Vec<usize> = (0..state.rules.len())
        .filter(|&i| state.rules[i].group == group.id && state.rules[i].direction == req.direction)
        .collect();
    let mut hit: BTreeSet<usize> = BTreeSet::new();
    let mut unmatched = Vec::new();
    for w in &wanted {
        let matches: Vec<usize> = candidates
            .iter()
            .copied()
            .filter(|&i| rule_matches(state, group, &state.rules[i], w, true))
            .collect();
        if matches.is_empty() {
            if let Some(r) = candidates
                .iter()
                .map(|&i| &state.rules[i])
                .find(|r| rule_matches(state, group, r, w, false))
            {
                warnings.push(format!(
                    "rule {} matches permission {} except for its description ({:?})",
                    r.id,
                    w.perm + 1,
                    r.description.as_deref().unwrap_or("")
                ));
            }
            unmatched.push(w);
        }
        hit.extend(matches);
    }
    // 7. Misses.
    let mut unknown = Vec::new();
    if !unmatched.is_empty() {
        if !default_vpc {
            return Err(Failed {
                error: not_found(),
                warnings,
            });
        }
        warnings.push(format!(
            "{} of {} requested rule(s) matched nothing; {} is in a default VPC, so EC2 returns \
             them in UnknownIpPermissions instead of failing",
            unmatched.len(),
            wanted.len(),
            group.id
        ));
        unknown = echo_unmatched(&echoes, &unmatched);
    }
    // 8. Remove.
    Ok(finish(state, &hit, unknown, warnings))
}

fn finish(state: &State, hit: &BTreeSet<usize>, unknown: Vec<Echo>, warnings: Vec<String>) -> Done {
    let mut next = state.clone();
    let mut revoked = Vec::new();
    next.rules = Vec::with_capacity(state.rules.len() - hit.len());
    for (i, r) in state.rules.iter().enumerate() {
        if hit.contains(&i) {
            revoked.push(r.clone());
        } else {
            next.rules.push(r.clone());
        }
    }
    Done {
        state: next,
        revoked,
        unknown,
        warnings,
    }
}

fn resolve_group<'s>(state: &'s State, req: &Request) -> Result<&'s SecurityGroup, ApiError> {
    if let Some(id) = &req.group_id {
        return match aws_groups(state).find(|g| g.id.as_str() == id) {
            Some(g) => Ok(g),
            None if !well_formed_group_id(id) => Err(group_id_malformed(id)),
            None => Err(group_not_found(id)),
        };
    }
    let name = req.group_name.as_deref().unwrap_or_default();
    let named: Vec<&SecurityGroup> = aws_groups(state)
        .filter(|g| g.name.as_deref() == Some(name))
        .collect();
    if let Some(g) = named.iter().find(|g| in_default_vpc(state, g)) {
        return Ok(g);
    }
    if !named.is_empty() {
        return Err(by_name_in_vpc(name));
    }
    Err(not_in_default_vpc(name, &default_vpc_id(state)))
}

/// The legacy single-rule parameters as permissions.
fn from_legacy(legacy: &Legacy, warnings: &mut Vec<String>) -> Result<Vec<Permission>, ApiError> {
    if legacy.source_group_owner_id.is_some() {
        warnings
            .push("SourceSecurityGroupOwnerId is not supported by EC2 and was ignored".to_string());
    }
    let flat = legacy.ip_protocol.is_some()
        || legacy.from_port.is_some()
        || legacy.to_port.is_some()
        || legacy.cidr_ip.is_some();
    match &legacy.source_group_name {
        Some(_) if flat => Err(combination(
            "SourceSecurityGroupName cannot be used with CidrIp, IpProtocol, FromPort or ToPort; use a set of IP permissions",
        )),
        Some(name) => {
            // The whole-group grant of the classic API: TCP and UDP on every port, all ICMP.
            let pair = PairEntry {
                group_name: Some(name.clone()),
                ..PairEntry::default()
            };
            Ok([("tcp", 0, 65535), ("udp", 0, 65535), ("icmp", -1, -1)]
                .into_iter()
                .map(|(p, from, to)| Permission {
                    protocol: Some(p.to_string()),
                    from_port: Some(from),
                    to_port: Some(to),
                    groups: vec![pair.clone()],
                    ..Permission::default()
                })
                .collect())
        }
        None if flat => Ok(vec![Permission {
            protocol: legacy.ip_protocol.clone(),
            from_port: legacy.from_port,
            to_port: legacy.to_port,
            ipv4: legacy
                .cidr_ip
                .iter()
                .map(|c| super::request::CidrEntry {
                    cidr: Some(c.clone()),
                    description: None,
                })
                .collect(),
            ..Permission::default()
        }]),
        None => Ok(Vec::new()),
    }
}

/// What a permission selects: protocol, ICMP type or source ports, ICMP code or destination
/// ports, and the `FromPort` / `ToPort` to echo.
type Selectors = (Protocol, PortRange, PortRange, Option<(i64, i64)>);

/// Protocol and port selectors of a permission (validation step 5, first half).
fn selectors(p: &Permission, config: &Config) -> Result<Selectors, ApiError> {
    let text = p.protocol.as_deref().ok_or_else(|| {
        invalid("Invalid value 'null' for protocol. VPC security group rules must specify protocols explicitly.")
    })?;
    let protocol = parse_protocol(text, config.lenient_all_protocol).ok_or_else(|| {
        invalid(format!(
            "Invalid value '{text}' for IP protocol. Unknown protocol."
        ))
    })?;
    if !uses_ports(protocol) {
        return Ok((protocol, PortRange::ANY, PortRange::ANY, None));
    }
    if protocol.is_icmp() {
        let (ty, code) = match (p.from_port, p.to_port) {
            (Some(t), Some(c)) => (t, c),
            (t, c) if protocol == Protocol::ICMPV6 => (t.unwrap_or(-1), c.unwrap_or(-1)),
            _ => {
                return Err(invalid(
                    "Invalid value for portRange. Must specify both ICMP type (FromPort) and code (ToPort) with ICMP.",
                ))
            }
        };
        let sel = |v: i64, what: &str| -> Result<Option<u8>, ApiError> {
            match v {
                -1 => Ok(None),
                v => u8::try_from(v).map(Some).map_err(|_| {
                    invalid(format!(
                        "Invalid value '{v}' for ICMP {what}. It must be -1 or 0-255."
                    ))
                }),
            }
        };
        let icmp = IcmpSel {
            ty: sel(ty, "type")?,
            code: sel(code, "code")?,
        };
        if icmp.ty.is_none() && icmp.code.is_some() {
            return Err(invalid(format!(
                "Invalid value '{code}' for ICMP code. When the ICMP type is -1 (all types), the code must be -1 too."
            )));
        }
        let (t, c) = icmp.ranges();
        return Ok((protocol, t, c, Some((ty, code))));
    }
    let (Some(from), Some(to)) = (p.from_port, p.to_port) else {
        return Err(invalid(
            "Invalid value for portRange. Must specify both from and to ports with TCP/UDP.",
        ));
    };
    let port = |v: i64| {
        u16::try_from(v).map_err(|_| {
            invalid(format!(
                "Invalid value '{v}' for portRange. Ports must be between 0 and 65535."
            ))
        })
    };
    let range = PortRange::new(port(from)?, port(to)?).map_err(|_| {
        invalid(format!(
            "Invalid value '{from}-{to}' for portRange. The start port must not be greater than the end port."
        ))
    })?;
    Ok((protocol, PortRange::ANY, range, Some((from, to))))
}

/// Whether a group is known: a group of the state, or one a rule of the state references
/// (possibly another account's).
fn group_known(state: &State, id: &str) -> bool {
    aws_groups(state).any(|g| g.id.as_str() == id)
        || state
            .rules
            .iter()
            .any(|r| matches!(&r.remote, Peer::Group { group_id, .. } if group_id.as_str() == id))
}

/// A CIDR of the request: `addr/len` of the right family; host bits cleared with a warning.
fn request_cidr(
    text: &str,
    family: Family,
    field: &str,
    warnings: &mut Vec<String>,
) -> Result<Cidr, ApiError> {
    let bad = || invalid(format!("invalid CIDR subnet specification: {text}"));
    if !text.contains('/') {
        return Err(bad());
    }
    let (cidr, changed) = Cidr::parse_lenient(text).map_err(|_| bad())?;
    if cidr.family() != family {
        return Err(bad());
    }
    if changed {
        warnings.push(format!(
            "{field} {text} has host bits set; EC2 compares it as {cidr}"
        ));
    }
    Ok(cidr)
}

/// Validates one permission and expands it into atomic rules (step 5).
#[allow(clippy::too_many_arguments)]
fn expand(
    state: &State,
    group: &SecurityGroup,
    default_vpc: bool,
    perm: usize,
    p: &Permission,
    config: &Config,
    warnings: &mut Vec<String>,
) -> Result<(Vec<Wanted>, Echo), ApiError> {
    let (protocol, src, dst, ports) = selectors(p, config)?;
    if p.ipv4.is_empty() && p.ipv6.is_empty() && p.prefix_lists.is_empty() && p.groups.is_empty() {
        return Err(missing("ipRanges, ipv6Ranges, prefixListIds or groups"));
    }
    let mut echo = Echo {
        protocol,
        ports,
        ipv4: Vec::new(),
        ipv6: Vec::new(),
        prefix_lists: Vec::new(),
        groups: Vec::new(),
    };
    let mut out = Vec::new();
    let want = |peer: Want, description: &Option<String>| Wanted {
        perm,
        protocol,
        src,
        dst,
        peer,
        description: description.clone(),
    };
    for pair in &p.groups {
        let id = match (&pair.group_id, &pair.group_name) {
            (Some(id), name) => {
                if name.is_some() {
                    warnings.push(format!(
                        "permission {}: a group pair gives both GroupId and GroupName; GroupId {id} was used",
                        perm + 1
                    ));
                }
                if !group_known(state, id) {
                    return Err(group_not_found(id));
                }
                id.clone()
            }
            (None, Some(name)) => {
                if !default_vpc {
                    return Err(by_name_in_vpc(name));
                }
                aws_groups(state)
                    .find(|g| g.name.as_deref() == Some(name.as_str()) && g.vpc == group.vpc)
                    .map(|g| g.id.to_string())
                    .ok_or_else(|| {
                        let vpc = group
                            .vpc
                            .as_ref()
                            .map_or("none".to_string(), |v| v.to_string());
                        not_in_default_vpc(name, &vpc)
                    })?
            }
            (None, None) => return Err(missing("groupId or groupName in each group pair")),
        };
        for field in &pair.ignored {
            warnings.push(format!(
                "permission {}: group pair {field} is accepted but not compared",
                perm + 1
            ));
        }
        out.push(want(
            Want::Group {
                id: id.clone(),
                user_id: pair.user_id.clone(),
            },
            &pair.description,
        ));
        echo.groups.push(EchoPair {
            group_id: id,
            user_id: pair.user_id.clone(),
            description: pair.description.clone(),
        });
    }
    for (entries, family, name) in [
        (&p.ipv4, Family::V4, "cidrIp"),
        (&p.ipv6, Family::V6, "cidrIpv6"),
    ] {
        for e in entries {
            let text = e.cidr.as_deref().ok_or_else(|| missing(name))?;
            let cidr = request_cidr(text, family, name, warnings)?;
            out.push(want(Want::Cidr(cidr), &e.description));
            let list = match family {
                Family::V4 => &mut echo.ipv4,
                Family::V6 => &mut echo.ipv6,
            };
            list.push((cidr, e.description.clone()));
        }
    }
    for e in &p.prefix_lists {
        let id = e.id.as_deref().ok_or_else(|| missing("prefixListId"))?;
        out.push(want(Want::PrefixList(id.to_string()), &e.description));
        echo.prefix_lists
            .push((id.to_string(), e.description.clone()));
    }
    let descriptions = p
        .ipv4
        .iter()
        .chain(&p.ipv6)
        .map(|e| &e.description)
        .chain(p.prefix_lists.iter().map(|e| &e.description))
        .chain(p.groups.iter().map(|e| &e.description));
    for d in descriptions.flatten() {
        if !valid_description(d) {
            return Err(invalid(
                "Invalid rule description. Valid descriptions are strings less than 256 characters from the following set:  a-zA-Z0-9. _-:/()#,@[]+=&;{}!$*",
            ));
        }
    }
    Ok((out, echo))
}

/// Whether a stored rule (of the right group and direction) is the one `w` names;
/// `with_description` false ignores the description (for hints).
fn rule_matches(
    state: &State,
    group: &SecurityGroup,
    r: &Rule,
    w: &Wanted,
    with_description: bool,
) -> bool {
    if r.protocol != w.protocol {
        return false;
    }
    if uses_ports(w.protocol) && (r.src_ports != w.src || r.dst_ports != w.dst) {
        return false;
    }
    let peer = match (&r.remote, &w.peer) {
        (Peer::Cidr { cidr }, Want::Cidr(c)) => cidr == c,
        (Peer::PrefixList { prefix_list_id }, Want::PrefixList(id)) => {
            prefix_list_id.as_str() == id
        }
        (Peer::Group { group_id, owner }, Want::Group { id, user_id }) => {
            group_id.as_str() == id
                && user_id.as_ref().is_none_or(|u| {
                    let gid = GroupId::from(id.as_str());
                    let owner = owner
                        .clone()
                        .or_else(|| state.group(&gid).and_then(|g| g.owner.clone()))
                        .or_else(|| group.owner.clone());
                    owner.is_none_or(|o| &o == u)
                })
        }
        _ => false,
    };
    peer && (!with_description
        || w.description
            .as_ref()
            .is_none_or(|d| r.description.as_deref().unwrap_or("") == d))
}

/// Echoes the unmatched atomic rules, grouped back by their permission.
fn echo_unmatched(echoes: &[Echo], unmatched: &[&Wanted]) -> Vec<Echo> {
    let mut out = Vec::new();
    for (i, e) in echoes.iter().enumerate() {
        let mut part = Echo {
            ipv4: Vec::new(),
            ipv6: Vec::new(),
            prefix_lists: Vec::new(),
            groups: Vec::new(),
            ..e.clone()
        };
        for w in unmatched.iter().filter(|w| w.perm == i) {
            match &w.peer {
                Want::Cidr(c) => {
                    let list = match c.family() {
                        Family::V4 => &mut part.ipv4,
                        Family::V6 => &mut part.ipv6,
                    };
                    list.push((*c, w.description.clone()));
                }
                Want::PrefixList(id) => part.prefix_lists.push((id.clone(), w.description.clone())),
                Want::Group { id, user_id } => part.groups.push(EchoPair {
                    group_id: id.clone(),
                    user_id: user_id.clone(),
                    description: w.description.clone(),
                }),
            }
        }
        if !part.is_empty() {
            out.push(part);
        }
    }
    out
}

/// The rule-ID form: every ID must name a rule of this group and direction.
fn by_ids(
    state: &State,
    group: &SecurityGroup,
    req: &Request,
    config: &Config,
    warnings: Vec<String>,
) -> Result<Done, Failed> {
    let index: HashMap<&str, usize> = state
        .rules
        .iter()
        .enumerate()
        .filter(|(_, r)| r.group == group.id && r.direction == req.direction)
        .map(|(i, r)| (r.id.as_str(), i))
        .collect();
    let mut hit = BTreeSet::new();
    let mut missing_ids: Vec<&str> = Vec::new();
    let mut missing_seen = std::collections::HashSet::new();
    for id in &req.rule_ids {
        let found = index.get(id.as_str()).copied();
        match found {
            Some(i) => {
                hit.insert(i);
            }
            None if missing_seen.insert(id.as_str()) => missing_ids.push(id),
            None => {}
        }
    }
    if !missing_ids.is_empty() {
        let error = if config.moto_compat {
            not_found()
        } else {
            rule_ids_not_found(&missing_ids)
        };
        let mut warnings = warnings;
        for id in &missing_ids {
            if let Some(r) = state.rules.iter().find(|r| r.id.as_str() == *id) {
                warnings.push(format!(
                    "rule {id} exists but belongs to {} ({}), not {} ({})",
                    r.group, r.direction, group.id, req.direction
                ));
            }
        }
        return Err(Failed { error, warnings });
    }
    Ok(finish(state, &hit, Vec::new(), warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_ids_and_descriptions() {
        assert!(well_formed_group_id("sg-112233"));
        assert!(well_formed_group_id("sg-0123456789abcdef0"));
        assert!(!well_formed_group_id("foobar"));
        assert!(!well_formed_group_id("sg-"));
        assert!(!well_formed_group_id("sg-xyz"));
        assert!(valid_description("Access from workstation 1a2b"));
        assert!(!valid_description("it's"));
        assert!(!valid_description(&"a".repeat(256)));
    }

    #[test]
    fn selectors_follow_the_port_rules() {
        let cfg = Config::default();
        let perm = |p: &str, f: Option<i64>, t: Option<i64>| Permission {
            protocol: Some(p.to_string()),
            from_port: f,
            to_port: t,
            ..Permission::default()
        };
        let code = |p: Permission| selectors(&p, &cfg).unwrap_err().code;
        assert_eq!(code(perm("tcp", Some(22), None)), "InvalidParameterValue");
        assert_eq!(
            code(perm("tcp", Some(70000), Some(70000))),
            "InvalidParameterValue"
        );
        assert_eq!(
            code(perm("udp", Some(80), Some(22))),
            "InvalidParameterValue"
        );
        assert_eq!(
            code(perm("icmp", Some(-1), Some(0))),
            "InvalidParameterValue"
        );
        assert_eq!(code(perm("icmp", Some(8), None)), "InvalidParameterValue");
        assert_eq!(code(perm("all", None, None)), "InvalidParameterValue");
        let (p, s, d, _) = selectors(&perm("-1", Some(5501), Some(5504)), &cfg).unwrap();
        assert_eq!((p, s, d), (Protocol::Any, PortRange::ANY, PortRange::ANY));
        let (_, s, d, _) = selectors(&perm("58", None, None), &cfg).unwrap();
        assert_eq!((s, d), (PortRange::ANY, PortRange::ANY));
        let (p, _, d, _) = selectors(&perm("6", Some(22), Some(22)), &cfg).unwrap();
        assert_eq!((p, d), (Protocol::TCP, PortRange::single(22)));
    }
}
