//! Revoke semantics (SEMANTICS.md §2.1): validation in the order of §2.1.3, defaults filled
//! before matching, matching, deletion, ClientToken idempotency, and warnings about traps.
//!
//! A request entry identifies rules by its *match key*: protocol, destination ports (or port
//! list), source ports, peer (after the precedence CIDR > group > prefix list), local side
//! (`None` = any; `0.0.0.0/0` and `::/0` are any), policy (default accept), NIC type
//! (default by network type) and — only when the request gives it — priority (Q7).
//! Description is not part of the key (Q6). Nothing is deleted unless the whole request is
//! valid.
//!
//! # Decisions the seeds leave open
//!
//! - Forms: any two of rule IDs, `Permissions.N`, flat parameters → `InvalidParam.Permissions`;
//!   an `N` outside 1..=100 → `InvalidParam.Permissions` / `InvalidParam.SecurityGroupRuleId`.
//! - Unknown rule ID: per direction ([`errors::RULE_ID_UNKNOWN`], Q1); a rule ID of another
//!   group → `InvalidSecurityGroupRuleId.NotFound` (404).
//! - `RegionId` is required, except that a documentation placeholder (`<公共请求参数>`) in the
//!   text stands for the elided parameters; a `RegionId` other than the group's (from the
//!   export) → `InvalidSecurityGroupId.NotFound`.
//! - Port ranges: not two integers −1..=65535 as `a/b` → `InvalidParam.PortRange`; TCP/UDP
//!   values that are not `1 ≤ a ≤ b` → `InvalidIpPortRange.Malformed`; for ICMP, ICMPv6, GRE
//!   and ALL the value is read as `-1/-1` with a warning (the seed's own example sends
//!   `all` with `80/80` and succeeds). A missing IpProtocol is
//!   `InvalidIpProtocol.ValueNotSupported` ("must be specified").
//! - Address codes: unparsable IPv4 peer/local → `Invalid{Source,Dest}CidrIp.Malformed`
//!   (egress local `SourceCidrIp`: `InvalidParam.SourceCidrIp`); an IPv6 value in an IPv4
//!   field → `InvalidParam.{Source,Dest}CidrIp`; an egress `DestCidrIp` prefix longer than /32
//!   → `InvalidDestCidrIp.sMalformed`; an IPv4 value in an IPv6 field → `ILLEGAL_IPV6_CIDR`
//!   (ingress) / `InvalidParameter.Ipv6CidrIp` (egress); other bad IPv6 values and any IPv6
//!   on a classic group → `InvalidParam.Ipv6{Source,Dest}CidrIp`; local side and peer of
//!   different families → `InvalidParam.DestIp` (ingress) / `InvalidParam.SourceIp` (egress).
//! - A legacy flat request without a peer → `MissingParameter` (S0's older message); a
//!   `Permissions.N` entry without one → `MissingParameter.Source` / `.Dest`.
//! - NicType: `internet` on a VPC group → `VPCDisabled`; `internet` with a group peer →
//!   `InvalidNicType.Mismatch`.
//! - Group peers: known if the state has the group or any rule references it; unknown with an
//!   owner named → `InvalidGroupAuthItem.NotFound`, without → `Invalid{Source,Dest}GroupId.NotFound`.
//!   Self-reference: ingress `InvalidParamter.Conflict` 400 (S0), egress
//!   `InvalidSecurityGroup.IsSame` 403 (S1). A reference to an enterprise group →
//!   `InvalidGroupAuthParameter.OperationDenied`; Policy or a group ID in a request for an
//!   enterprise group → `InvalidGroupParameter.OperationDenied` (Q10).
//! - A port list is known if a rule of the state uses it; on a classic group it is
//!   `InvalidPortRangeListId.NotFound`.
//! - `InvalidOperation.SecurityGroupNotAuthorized`: the request's `OwnerId` differs from the
//!   group's known owner. `InternalError`: the group holds a rule no Alibaba group can hold
//!   (priority outside 1..=100, a protocol other than the six). `NotSupported.GrayFunction`:
//!   [`PREFIX_LISTS_ENABLED_KEY`] is `false` in the state.
//! - Description: more than 512 characters, or starting with `http://` / `https://`.
//! - ClientToken: longer than 64 or not ASCII → `InvalidClientToken.ValueNotSupported`
//!   (not in the seed tables); only successful requests are remembered (a failed one changes
//!   nothing, so its token stays unused); the fingerprint is the sorted identifying
//!   parameters, so the same request as JSON or query string, in any order, is identical.
//!
//! # Files
//!
//! - `mod.rs`: [`revoke`], the steps of §2.1.3 composed in its order ([`run`]), ClientToken
//!   records, and the notes on near misses.
//! - `key.rs`: the match key of a rule or a request entry, and where two keys differ.
//! - `entry.rs`: step 6, one request entry checked field by field in the order of the list.

mod entry;
mod key;

use std::collections::BTreeSet;

use serde_json::{json, Value};

use self::entry::{entry, Cx, Entry};
use self::key::{differences, rule_key, Key, Part};
use super::errors;
use super::request::{Request, Spec};
use super::response;
use crate::model::{Direction, Peer, Provider, Rule, RuleId, SecurityGroup, State};
use crate::provider::{request_id, ApiError, Outcome, RawRequest, RequestError};

/// `State::provider_state` key of the ClientToken records.
pub const TOKENS_KEY: &str = "aliyun.client_tokens";
/// `State::provider_state` key that, set to `false`, makes prefix lists a disabled
/// ("gray") feature of the account: `NotSupported.GrayFunction`.
pub const PREFIX_LISTS_ENABLED_KEY: &str = "aliyun.prefix_lists_enabled";

/// `State::provider_state` key that, set to `true`, makes a `Permissions.N` or flat entry
/// that matches no rule an error (`InvalidSecurityGroupRule.RuleNotExist`) instead of a
/// success that deletes nothing (SEMANTICS Q2; off by default).
pub const STRICT_NOT_FOUND_KEY: &str = "aliyun.strict_not_found";

/// Whether text is an ID with this prefix (`sg-`, `sgr-`): letters, digits, `-`, `_`, and
/// the `*` documentation uses to mask IDs.
fn valid_id(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix).is_some_and(|rest| {
        !rest.is_empty()
            && id.len() <= 64
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'*'))
    })
}

/// A remembered ClientToken.
struct TokenRecord {
    fingerprint: String,
    request_id: String,
}

fn token_key(action: &str, token: &str) -> String {
    format!("{action}:{token}")
}

fn token_record(state: &State, key: &str, notes: &mut Vec<String>) -> Option<TokenRecord> {
    let rec = state.provider_state.get(TOKENS_KEY)?.get(key)?;
    let fingerprint = rec.get("fingerprint").and_then(Value::as_str);
    let request_id = rec.get("request_id").and_then(Value::as_str);
    match (fingerprint, request_id) {
        (Some(f), Some(r)) => Some(TokenRecord {
            fingerprint: f.to_string(),
            request_id: r.to_string(),
        }),
        _ => {
            notes.push(format!(
                "the snapshot's record of ClientToken '{key}' is unreadable; treated as unused"
            ));
            None
        }
    }
}

/// What a valid request does.
struct Done {
    /// The rules to delete (none for a replay).
    doomed: BTreeSet<RuleId>,
    /// Set for a ClientToken replay: the first request's ID; nothing changes.
    replay_of: Option<String>,
}

fn near_miss_note(entry: &Entry, rule: &Rule, part: Part) -> Option<String> {
    let p = &entry.place;
    let id = &rule.id;
    Some(match part {
        Part::Policy if !entry.policy_given => format!(
            "{p} matched no rule: Policy defaulted to accept, but rule {id} is a {} rule with the same other fields; pass Policy={} to revoke it (the API still answers success and deletes nothing)",
            rule.action, rule.action
        ),
        Part::Policy => format!(
            "{p} matched no rule: rule {id} differs only in Policy ({})",
            rule.action
        ),
        Part::Priority => format!(
            "{p} matched no rule: rule {id} differs only in Priority ({}); omit Priority to match any priority",
            rule.priority.0
        ),
        Part::Local => format!(
            "{p} matched no rule: rule {id} differs only in its local side ({}); give {} to revoke it",
            rule.local.map_or("any".to_string(), |c| c.to_string()),
            if rule.direction == Direction::Ingress { "DestCidrIp" } else { "SourceCidrIp" }
        ),
        Part::SourcePorts => format!(
            "{p} matched no rule: rule {id} differs only in SourcePortRange ({})",
            rule.src_ports
        ),
        Part::Nic if !entry.nic_given => format!(
            "{p} matched no rule: NicType defaulted to internet (classic network), but rule {id} is an intranet rule with the same other fields; pass NicType=intranet"
        ),
        Part::Nic => format!("{p} matched no rule: rule {id} differs only in NicType"),
        Part::Owner => format!(
            "{p} matched no rule: rule {id} references the same group with owner {}",
            match &rule.remote {
                Peer::Group { owner: Some(o), .. } => o.as_str(),
                _ => "?",
            }
        ),
        Part::Ports => format!(
            "{p} matched no rule: rule {id} differs only in its destination ports ({})",
            rule.attrs
                .get("PortRangeListId")
                .cloned()
                .unwrap_or_else(|| rule.dst_ports.to_string())
        ),
        Part::Protocol | Part::Peer => return None,
    })
}

/// The checks of SEMANTICS §2.1.3, one function a step, in its order; the first that fails
/// gives the API's error, and a ClientToken replay gives the first request's answer.
fn run(state: &State, req: &Request, notes: &mut Vec<String>) -> Result<Done, ApiError> {
    no_repeated_parameter(req)?;
    let gid = required_parameters(req, notes)?;
    let group = target_group(state, req, gid, notes)?;
    let stored = stored_keys(state, req, group, notes)?;
    if let Some(replay) = client_token(state, req, notes)? {
        return Ok(replay);
    }
    let form = form(req, notes)?;
    if form == Form::RuleIds {
        return by_rule_id(state, req, group, notes);
    }
    let entries = entries(state, req, group, form, notes)?;
    no_duplicates(&entries, notes)?;
    matches(state, &entries, &stored, gid, notes)
}

/// Before §2.1.3 (step 0): a repeated parameter or JSON key (sgsim's decision: the
/// documents do not say; one error for every parameter, as AWS has).
fn no_repeated_parameter(req: &Request) -> Result<(), ApiError> {
    if let Some(name) = &req.repeated {
        return Err(ApiError::new(
            "InvalidParameter",
            400,
            format!("The specified parameter {name} is given more than once."),
        ));
    }
    Ok(())
}

/// Step 1 of §2.1.3: required parameters: `RegionId` (a documentation placeholder stands
/// for it), then `SecurityGroupId`, which is returned.
fn required_parameters<'r>(req: &'r Request, notes: &mut Vec<String>) -> Result<&'r str, ApiError> {
    if req.region.is_none() {
        if req.placeholder {
            notes.push("RegionId is not given; the example's placeholder for common parameters is taken to supply it".into());
        } else {
            return Err(errors::MISSING_PARAMETER.with("RegionId"));
        }
    }
    req.group
        .as_deref()
        .ok_or_else(|| errors::MISSING_PARAMETER.with("SecurityGroupId"))
}

/// Step 2 of §2.1.3: the group: its ID's syntax, its existence (in the request's region),
/// the caller's ownership, and that no cloud product manages it.
fn target_group<'s>(
    state: &'s State,
    req: &Request,
    gid: &str,
    notes: &mut Vec<String>,
) -> Result<&'s SecurityGroup, ApiError> {
    if !valid_id(gid, "sg-") {
        return Err(errors::SG_MALFORMED.plain());
    }
    let Some(group) = state
        .groups
        .iter()
        .find(|g| g.id.as_str() == gid && g.provider == Provider::Aliyun)
    else {
        return Err(errors::SG_NOT_FOUND.plain());
    };
    if let (Some(r), Some(gr)) = (&req.region, group.attrs.get("RegionId")) {
        if r != gr {
            notes.push(format!("group {gid} is in region {gr}, not {r}"));
            return Err(errors::SG_NOT_FOUND.plain());
        }
    }
    if let (Some(o), Some(go)) = (&req.owner_id, &group.owner) {
        if o != go {
            return Err(errors::SG_NOT_AUTHORIZED.plain());
        }
    }
    if group
        .attrs
        .get("ServiceManaged")
        .is_some_and(|m| m.eq_ignore_ascii_case("true"))
    {
        return Err(errors::SG_MANAGED.with(gid));
    }
    Ok(group)
}

/// The keys of the group's rules of the request's direction; a rule no Alibaba group can
/// hold is an `InternalError`.
fn stored_keys<'s>(
    state: &'s State,
    req: &Request,
    group: &SecurityGroup,
    notes: &mut Vec<String>,
) -> Result<Vec<(&'s Rule, Key)>, ApiError> {
    let mut stored: Vec<(&Rule, Key)> = Vec::new();
    for rule in state.rules.iter().filter(|r| r.group == group.id) {
        match rule_key(rule, group) {
            Ok(k) => {
                if rule.direction == req.direction {
                    stored.push((rule, k));
                }
            }
            Err(why) => {
                notes.push(format!("the state is inconsistent: {why}"));
                return Err(errors::INTERNAL_ERROR.plain());
            }
        }
    }
    Ok(stored)
}

/// Step 3 of §2.1.3: ClientToken: its syntax, then a replay (`Some`: the first request's
/// answer) or a mismatch.
fn client_token(
    state: &State,
    req: &Request,
    notes: &mut Vec<String>,
) -> Result<Option<Done>, ApiError> {
    let Some(token) = &req.client_token else {
        return Ok(None);
    };
    if token.len() > 64 || !token.is_ascii() {
        return Err(errors::CLIENT_TOKEN_INVALID.plain());
    }
    let Some(rec) = token_record(state, &token_key(req.action(), token), notes) else {
        return Ok(None);
    };
    if rec.fingerprint == req.fingerprint {
        notes.push(format!(
            "ClientToken '{token}' was used before by an identical request (RequestId {}); the API returns the same result and changes nothing",
            rec.request_id
        ));
        return Ok(Some(Done {
            doomed: BTreeSet::new(),
            replay_of: Some(rec.request_id),
        }));
    }
    Err(errors::IDEMPOTENT_MISMATCH.plain())
}

/// The form a request takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Form {
    /// `SecurityGroupRuleId.N`.
    RuleIds,
    /// `Permissions.N`.
    Permissions,
    /// The legacy flat parameters.
    Flat,
}

/// Step 4 of §2.1.3: form exclusivity, and list indexes within 1..=100.
fn form(req: &Request, notes: &mut Vec<String>) -> Result<Form, ApiError> {
    let has_ids = !req.rule_ids.is_empty() || req.bad_rule_id_index.is_some();
    let has_perms = !req.permissions.is_empty() || req.bad_permission_index.is_some();
    let has_flat = !req.flat.values.is_empty();
    if [has_ids, has_perms, has_flat]
        .iter()
        .filter(|b| **b)
        .count()
        > 1
    {
        return Err(errors::PERMISSIONS_COEXIST.plain());
    }
    if let Some(p) = &req.bad_permission_index {
        notes.push(format!("{p}: N must be 1 to 100"));
        return Err(errors::PERMISSIONS_COEXIST.plain());
    }
    if let Some(p) = &req.bad_rule_id_index {
        notes.push(format!("{p}: N must be 1 to 100"));
        return Err(errors::RULE_ID_INVALID.plain());
    }
    Ok(if has_ids {
        Form::RuleIds
    } else if has_perms {
        Form::Permissions
    } else {
        Form::Flat
    })
}

/// Step 5 of §2.1.3, by rule ID: syntax, duplicates, then every ID a rule of this group and
/// direction (validate before mutate: one unknown ID deletes nothing).
fn by_rule_id(
    state: &State,
    req: &Request,
    group: &SecurityGroup,
    notes: &mut Vec<String>,
) -> Result<Done, ApiError> {
    let gid = group.id.as_str();
    if let Some(bad) = req.rule_ids.iter().find(|id| !valid_id(id, "sgr-")) {
        notes.push(format!("'{bad}' is not a security group rule ID"));
        return Err(errors::RULE_ID_INVALID.plain());
    }
    let mut seen = BTreeSet::new();
    for id in &req.rule_ids {
        if !seen.insert(id.as_str()) {
            return Err(errors::RULE_ID_REPEATED.plain());
        }
    }
    // One pass over the rules, then a hash lookup per ID (at most 100 by the API).
    let by_id: std::collections::HashMap<&str, &Rule> =
        state.rules.iter().map(|r| (r.id.as_str(), r)).collect();
    let mut doomed = BTreeSet::new();
    for id in &req.rule_ids {
        match by_id.get(id.as_str()).copied() {
            None => {
                notes.push(format!("rule {id} does not exist; nothing is deleted"));
                return Err(errors::rule_id_unknown(req.direction).plain());
            }
            Some(r) if r.group != group.id => {
                notes.push(format!(
                    "rule {id} belongs to group {}, not {gid}; nothing is deleted",
                    r.group
                ));
                return Err(errors::RULE_ID_NOT_FOUND.plain());
            }
            Some(r) if r.direction != req.direction => {
                notes.push(format!(
                    "rule {id} is an {} rule; {} revokes {} rules only; nothing is deleted",
                    r.direction,
                    req.action(),
                    req.direction
                ));
                return Err(errors::rule_id_unknown(req.direction).plain());
            }
            Some(r) => {
                doomed.insert(r.id.clone());
            }
        }
    }
    Ok(Done {
        doomed,
        replay_of: None,
    })
}

/// Step 6 of §2.1.3: permissions (or the legacy flat parameters), entry by entry
/// ([`entry()`]).
fn entries(
    state: &State,
    req: &Request,
    group: &SecurityGroup,
    form: Form,
    notes: &mut Vec<String>,
) -> Result<Vec<Entry>, ApiError> {
    let has_perms = form == Form::Permissions;
    let cx = Cx {
        state,
        group,
        direction: req.direction,
        legacy: !has_perms,
    };
    let specs: Vec<&Spec> = if has_perms {
        req.permissions.iter().collect()
    } else {
        vec![&req.flat]
    };
    let mut entries = Vec::new();
    for spec in specs {
        entries.push(entry(&cx, spec, notes)?);
    }
    Ok(entries)
}

/// Step 7 of §2.1.3: duplicate entries.
fn no_duplicates(entries: &[Entry], notes: &mut Vec<String>) -> Result<(), ApiError> {
    for (i, a) in entries.iter().enumerate() {
        if let Some(b) = entries[i + 1..].iter().find(|b| b.key == a.key) {
            notes.push(format!("{} and {} are the same rule", a.place, b.place));
            return Err(errors::DUPLICATE_PERMISSIONS.plain());
        }
    }
    Ok(())
}

/// Step 8 of §2.1.3: match: every rule an entry matches is deleted; an entry that matches
/// none is noted (an error only with [`STRICT_NOT_FOUND_KEY`]).
fn matches(
    state: &State,
    entries: &[Entry],
    stored: &[(&Rule, Key)],
    gid: &str,
    notes: &mut Vec<String>,
) -> Result<Done, ApiError> {
    let mut doomed = BTreeSet::new();
    for e in entries {
        let hits: Vec<&Rule> = stored
            .iter()
            .filter(|(_, k)| differences(&e.key, k).is_empty())
            .map(|(r, _)| *r)
            .collect();
        if hits.is_empty() {
            let mut explained = false;
            for (rule, k) in stored {
                if let [part] = differences(&e.key, k)[..] {
                    if let Some(n) = near_miss_note(e, rule, part) {
                        notes.push(n);
                        explained = true;
                    }
                }
            }
            if state.provider_state.get(STRICT_NOT_FOUND_KEY) == Some(&Value::Bool(true)) {
                notes.push(format!(
                    "{} matched no rule of {gid} ({STRICT_NOT_FOUND_KEY} is set); nothing is deleted",
                    e.place
                ));
                return Err(errors::RULE_NOT_EXIST.plain());
            }
            if !explained {
                notes.push(format!(
                    "{} matched no rule of {gid}; the API answers success and deletes nothing",
                    e.place
                ));
            }
        }
        if hits.len() > 1 {
            notes.push(format!(
                "{} matched {} rules ({}); all are revoked",
                e.place,
                hits.len(),
                hits.iter()
                    .map(|r| format!("{} priority {}", r.id, r.priority.0))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        for r in hits {
            if let Some(d) = &e.description {
                if r.description.as_deref() != Some(d.as_str()) {
                    notes.push(format!(
                        "{}: Description is not part of the match; rule {} is revoked although its description is {:?}",
                        e.place, r.id, r.description.as_deref().unwrap_or("")
                    ));
                }
            }
            doomed.insert(r.id.clone());
        }
    }
    Ok(Done {
        doomed,
        replay_of: None,
    })
}

/// Applies a revoke request (see the module docs); `id`, when given, is the request ID of
/// the answer, replays included.
pub(super) fn revoke(
    state: &State,
    raw: &RawRequest,
    id: Option<&str>,
) -> Result<Outcome, RequestError> {
    let req = Request::parse(raw)?;
    let mut warnings = req.notes.clone();
    let seed = format!(
        "aliyun|{}|{}",
        req.fingerprint,
        req.client_token.as_deref().unwrap_or("")
    );
    let fresh_id = id.map_or_else(|| request_id(&seed), str::to_string);
    let action = req.action();
    Ok(match run(state, &req, &mut warnings) {
        Err(error) => Outcome {
            provider: Provider::Aliyun,
            status: error.status,
            json: response::error_json(&fresh_id, &error),
            xml: response::error_xml(&fresh_id, &error),
            error: Some(error),
            state: state.clone(),
            revoked: Vec::new(),
            warnings,
        },
        Ok(done) => {
            let rid = match (id, done.replay_of.clone()) {
                (None, Some(first)) => first,
                _ => fresh_id,
            };
            let mut next = state.clone();
            let revoked: Vec<Rule> = state
                .rules
                .iter()
                .filter(|r| done.doomed.contains(&r.id))
                .cloned()
                .collect();
            next.rules.retain(|r| !done.doomed.contains(&r.id));
            if let (Some(token), None) = (&req.client_token, &done.replay_of) {
                let tokens = next
                    .provider_state
                    .entry(TOKENS_KEY.to_string())
                    .or_insert_with(|| json!({}));
                if !tokens.is_object() {
                    *tokens = json!({});
                }
                if let Some(map) = tokens.as_object_mut() {
                    map.insert(
                        token_key(action, token),
                        json!({
                            "fingerprint": req.fingerprint,
                            "request_id": rid,
                            "revoked": revoked.iter().map(|r| r.id.to_string()).collect::<Vec<_>>(),
                        }),
                    );
                }
            }
            Outcome {
                provider: Provider::Aliyun,
                error: None,
                status: 200,
                json: response::success_json(&rid),
                xml: response::success_xml(action, &rid),
                state: next,
                revoked,
                warnings,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::key::Nic;
    use super::*;
    use crate::model::VpcId;
    use crate::model::{Action, GroupKind, PortRange, Priority, Protocol};
    use std::collections::BTreeMap;

    fn group(id: &str, vpc: Option<&str>, kind: GroupKind) -> SecurityGroup {
        SecurityGroup {
            id: id.into(),
            provider: Provider::Aliyun,
            name: None,
            description: None,
            kind,
            inner_access: Action::Accept,
            vpc: vpc.map(VpcId::from),
            owner: None,
            attrs: BTreeMap::new(),
        }
    }

    fn rule(id: &str, group: &str, action: Action, priority: u32, nic: Option<&str>) -> Rule {
        let mut attrs = BTreeMap::new();
        if let Some(n) = nic {
            attrs.insert("NicType".to_string(), n.to_string());
        }
        Rule {
            id: id.into(),
            group: group.into(),
            direction: Direction::Ingress,
            action,
            priority: Priority(priority),
            protocol: Protocol::TCP,
            src_ports: PortRange::ANY,
            dst_ports: PortRange::single(22),
            remote: Peer::cidr("10.0.0.0/8".parse().unwrap()),
            local: None,
            description: Some("ssh".into()),
            attrs,
        }
    }

    fn state() -> State {
        State {
            groups: vec![
                group("sg-v", Some("vpc-1"), GroupKind::Basic),
                group("sg-c", None, GroupKind::Basic),
            ],
            rules: vec![
                rule("sgr-1", "sg-v", Action::Accept, 1, None),
                rule("sgr-2", "sg-v", Action::Drop, 5, None),
                rule("sgr-3", "sg-c", Action::Accept, 1, Some("intranet")),
            ],
            ..State::default()
        }
    }

    fn go(s: &State, q: &str) -> Outcome {
        let raw = RawRequest::parse(&format!("RegionId=r&{q}")).unwrap();
        revoke(s, &raw, None).unwrap()
    }

    fn revoked(o: &Outcome) -> Vec<&str> {
        o.revoked.iter().map(|r| r.id.as_str()).collect()
    }

    #[test]
    fn keys_default_nic_type_by_network() {
        let s = state();
        let v = rule_key(&s.rules[0], &s.groups[0]).unwrap();
        assert_eq!(v.nic, Nic::Intranet);
        let mut r = s.rules[2].clone();
        r.attrs.clear();
        assert_eq!(rule_key(&r, &s.groups[1]).unwrap().nic, Nic::Internet);
        r.priority = Priority(0);
        assert!(rule_key(&r, &s.groups[1]).is_err());
    }

    #[test]
    fn differences_ignore_priority_unless_given() {
        let s = state();
        let a = rule_key(&s.rules[0], &s.groups[0]).unwrap();
        let mut req = a.clone();
        req.priority = None;
        let mut other = a.clone();
        other.priority = Some(Priority(9));
        assert!(differences(&req, &other).is_empty());
        req.priority = Some(Priority(1));
        assert_eq!(differences(&req, &other), vec![Part::Priority]);
        req.policy = Action::Drop;
        assert_eq!(
            differences(&req, &other),
            vec![Part::Policy, Part::Priority]
        );
    }

    #[test]
    fn defaults_and_case_are_applied_before_matching() {
        let s = state();
        let bare = "Action=RevokeSecurityGroup&SecurityGroupId=sg-v&IpProtocol=TCP&PortRange=22/22&SourceCidrIp=10.0.0.0/8";
        assert_eq!(revoked(&go(&s, bare)), vec!["sgr-1"]);
        let drop = format!("{bare}&Policy=Drop");
        assert_eq!(revoked(&go(&s, &drop)), vec!["sgr-2"]);
        let classic = "Action=RevokeSecurityGroup&SecurityGroupId=sg-c&IpProtocol=tcp&PortRange=22/22&SourceCidrIp=10.0.0.0/8";
        let o = go(&s, classic);
        assert!(o.revoked.is_empty());
        assert!(o
            .warnings
            .iter()
            .any(|w| w.contains("NicType defaulted to internet")));
        assert_eq!(
            revoked(&go(&s, &format!("{classic}&NicType=Intranet"))),
            vec!["sgr-3"]
        );
    }

    #[test]
    fn ids_must_look_like_ids() {
        assert!(valid_id("sg-bp67acfmxazb4p****", "sg-"));
        assert!(valid_id("sgr-sgsim-0123abcd", "sgr-"));
        assert!(!valid_id("sg-", "sg-"));
        assert!(!valid_id("sg-a b", "sg-"));
        assert!(!valid_id("sgr-1", "sg-"));
    }

    #[test]
    fn validation_follows_the_documented_order() {
        let s = state();
        // Protocol is checked before the port range, the port range before the policy.
        let o = go(
            &s,
            "Action=RevokeSecurityGroup&SecurityGroupId=sg-v&IpProtocol=x&PortRange=y&Policy=z",
        );
        assert_eq!(o.error.unwrap().code, "InvalidIpProtocol.ValueNotSupported");
        let o = go(
            &s,
            "Action=RevokeSecurityGroup&SecurityGroupId=sg-v&IpProtocol=tcp&PortRange=y&Policy=z",
        );
        assert_eq!(o.error.unwrap().code, "InvalidParam.PortRange");
        // Form exclusivity is checked before any entry.
        let o = go(&s, "Action=RevokeSecurityGroup&SecurityGroupId=sg-v&IpProtocol=x&Permissions.1.IpProtocol=y");
        assert_eq!(o.error.unwrap().code, "InvalidParam.Permissions");
        // The group is checked before everything about rules.
        let o = go(
            &s,
            "Action=RevokeSecurityGroup&SecurityGroupId=sg-none&IpProtocol=x",
        );
        assert_eq!(o.error.unwrap().code, "InvalidSecurityGroupId.NotFound");
    }

    #[test]
    fn tokens_are_recorded_only_on_success() {
        let s = state();
        let ok = go(&s, "Action=RevokeSecurityGroup&SecurityGroupId=sg-v&ClientToken=abc&SecurityGroupRuleId.1=sgr-1");
        let rec = &ok.state.provider_state[TOKENS_KEY]["RevokeSecurityGroup:abc"];
        assert_eq!(rec["revoked"][0], "sgr-1");
        let failed = go(&s, "Action=RevokeSecurityGroup&SecurityGroupId=sg-v&ClientToken=abc&SecurityGroupRuleId.1=sgr-9");
        assert!(failed.error.is_some());
        assert!(!failed.state.provider_state.contains_key(TOKENS_KEY));
    }
}
