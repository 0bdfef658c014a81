//! What both renderings say: the cells of each table, labels for ENIs, groups, clients and
//! ports, the sentences a report opens with, and pretty JSON.

use std::collections::BTreeSet;

use crate::model::{Cidr, Direction, IpProtocol, PortRange, Protocol};
use crate::model::{GroupId, RuleId};
use crate::term::{escape, escape_lines, json_safe};
use crate::whatif::report::{GroupRef, Impact, Labels, Report};
use crate::whatif::space::{Decider, Region};

/// Columns of the revoked-rules tables (cells from `rule_cells`).
pub(super) const RULE_COLUMNS: [&str; 9] = [
    "rule",
    "group",
    "dir",
    "proto",
    "ports",
    "peer",
    "policy",
    "prio",
    "description",
];

pub(super) fn who(d: &Decider) -> String {
    let text = match &d.rule {
        Some(r) => format!("{} by {}", d.action, r),
        None => format!("{} by {}", d.action, d.reason),
    };
    escape(&text).into_owned()
}

fn cidrs(list: &[Cidr]) -> String {
    match list {
        [one] if one.is_any() => "any".to_string(),
        [one] => one.to_string(),
        many if many.len() <= 3 => many
            .iter()
            .map(Cidr::to_string)
            .collect::<Vec<_>>()
            .join(" "),
        many => format!("{} (+{} more)", many[0], many.len() - 1),
    }
}

/// Regions that differ only in their remote addresses, shown as one row.
pub(super) struct Row<'a> {
    pub(super) first: &'a Region,
    remotes: Vec<(u128, u128)>,
}

pub(super) fn rows(regions: &[Region]) -> Vec<Row<'_>> {
    let mut out: Vec<Row<'_>> = Vec::new();
    for r in regions {
        let same = |o: &Region| {
            o.enis == r.enis
                && o.direction == r.direction
                && o.family == r.family
                && o.local == r.local
                && o.src_ports == r.src_ports
                && o.dst_ports == r.dst_ports
                && o.protocols == r.protocols
                && o.before == r.before
                && o.after == r.after
                && o.unresolved == r.unresolved
                && o.remote_except_members == r.remote_except_members
        };
        let ranges = r.remote.iter().map(Cidr::range);
        match out.iter_mut().find(|row| same(row.first)) {
            Some(row) => row.remotes.extend(ranges),
            None => out.push(Row {
                first: r,
                remotes: ranges.collect(),
            }),
        }
    }
    out
}

/// Remote addresses for people: `any`, `any except …` when only a few are missing, or the
/// blocks themselves.
fn remote_text(family: crate::model::Family, ranges: &[(u128, u128)]) -> String {
    use crate::whatif::space::cidrs as cover;
    let max = if family == crate::model::Family::V4 {
        u128::from(u32::MAX)
    } else {
        u128::MAX
    };
    let mut sorted = ranges.to_vec();
    sorted.sort_unstable();
    let mut merged: Vec<(u128, u128)> = Vec::new();
    for (lo, hi) in sorted {
        match merged.last_mut() {
            Some(last) if last.1.checked_add(1).is_some_and(|n| n >= lo) => last.1 = last.1.max(hi),
            _ => merged.push((lo, hi)),
        }
    }
    let blocks: Vec<Cidr> = merged
        .iter()
        .flat_map(|&(lo, hi)| cover(family, lo, hi))
        .collect();
    let mut gaps = Vec::new();
    let mut at = 0u128;
    for &(lo, hi) in &merged {
        if lo > at {
            gaps.extend(cover(family, at, lo - 1));
        }
        at = match hi.checked_add(1) {
            Some(n) => n,
            None => {
                return if gaps.is_empty() {
                    "any".into()
                } else {
                    except(&gaps, &blocks)
                }
            }
        };
    }
    if at <= max {
        gaps.extend(cover(family, at, max));
    }
    if gaps.is_empty() {
        "any".into()
    } else {
        except(&gaps, &blocks)
    }
}

fn except(gaps: &[Cidr], blocks: &[Cidr]) -> String {
    if gaps.len() <= 3 && gaps.len() < blocks.len() {
        format!(
            "any except {}",
            gaps.iter()
                .map(Cidr::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )
    } else {
        cidrs(blocks)
    }
}

/// The cells every header-space table starts with (names from `labels` beside the IDs).
pub(super) fn region_cells(row: &Row<'_>, labels: &Labels) -> Vec<String> {
    let r = row.first;
    vec![
        r.enis
            .iter()
            .map(|e| eni_label(e.as_str(), labels.eni(e)))
            .collect::<Vec<_>>()
            .join(", "),
        r.direction.to_string(),
        family(r.family).to_string(),
        protocols(&r.protocols),
        if r.remote_except_members.is_empty() {
            remote_text(r.family, &row.remotes)
        } else {
            format!(
                "{} except members of {}",
                remote_text(r.family, &row.remotes),
                r.remote_except_members
                    .iter()
                    .map(|g| group_label(g, labels))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
        cidrs(&r.local),
        ports(r),
    ]
}

/// The cells every changed-flow table starts with.
pub(super) fn flow_cells(f: &crate::whatif::report::Flow) -> Vec<String> {
    vec![
        eni_label(f.eni.as_str(), f.eni_name.as_deref()),
        f.direction.to_string(),
        family_of(&f.src).to_string(),
        Protocol::Number(f.protocol).to_string(),
        if IpProtocol(f.protocol).is_icmp() {
            format!("{} type {}", bracket(&f.src), f.src_port)
        } else {
            socket(&f.src, f.src_port)
        },
        if IpProtocol(f.protocol).is_icmp() {
            bracket(&f.dst)
        } else {
            socket(&f.dst, f.dst_port)
        },
        f.packets.to_string(),
        f.bytes.to_string(),
    ]
}

fn bracket(addr: &str) -> String {
    if addr.contains(':') {
        format!("[{addr}]")
    } else {
        addr.to_string()
    }
}

fn protocols(list: &[(u8, u8)]) -> String {
    let one = |&(lo, hi): &(u8, u8)| match (lo, hi) {
        (a, b) if a == b => Protocol::Number(a).to_string(),
        (a, b) => format!("{a}-{b}"),
    };
    match list {
        [(0, 255)] => "any".to_string(),
        many => listed(&many.iter().map(one).collect::<Vec<_>>()),
    }
}

/// Up to four items joined, then a count of the rest.
fn listed(items: &[String]) -> String {
    if items.len() <= 4 {
        items.join(",")
    } else {
        format!("{} (+{} more)", items[..3].join(","), items.len() - 3)
    }
}

/// Port ranges for people: `any`, the ranges, or `any except …` when the gaps are fewer.
fn port_text(list: &[PortRange], max: u16) -> String {
    let mut gaps = Vec::new();
    let mut at = 0u32;
    for p in list {
        if u32::from(p.lo()) > at {
            gaps.push((at as u16, p.lo() - 1));
        }
        at = u32::from(p.hi()) + 1;
    }
    if at <= u32::from(max) {
        gaps.push((at as u16, max));
    }
    let range = |(lo, hi): (u16, u16)| {
        if lo == hi {
            lo.to_string()
        } else {
            format!("{lo}-{hi}")
        }
    };
    match list {
        [one] if one.lo() == 0 && one.hi() >= max => "any".to_string(),
        _ if gaps.len() < list.len() => format!(
            "any except {}",
            listed(&gaps.into_iter().map(range).collect::<Vec<_>>())
        ),
        _ => listed(
            &list
                .iter()
                .map(|p| range((p.lo(), p.hi())))
                .collect::<Vec<_>>(),
        ),
    }
}

fn ports(r: &Region) -> String {
    let icmp = matches!(r.protocols.as_slice(), [(a, b)] if a == b && IpProtocol(*a).is_icmp());
    let ported = r
        .protocols
        .iter()
        .any(|&(lo, hi)| (lo..=hi).any(|p| IpProtocol(p).carries_ports()));
    if icmp {
        format!(
            "type {} code {}",
            port_text(&r.src_ports, 255),
            port_text(&r.dst_ports, 255)
        )
    } else if !ported {
        "-".to_string()
    } else if port_text(&r.src_ports, 65535) == "any" {
        port_text(&r.dst_ports, 65535)
    } else {
        format!(
            "{} from {}",
            port_text(&r.dst_ports, 65535),
            port_text(&r.src_ports, 65535)
        )
    }
}

/// The cells of a revoked rule (`sgsim rules` shape), its group's name from `labels`.
pub(super) fn rule_cells(r: &serde_json::Value, labels: &Labels) -> Vec<String> {
    let s = |k: &str| match &r[k] {
        serde_json::Value::String(v) => escape(v).into_owned(),
        serde_json::Value::Null => "-".to_string(),
        other => escape(&other.to_string()).into_owned(),
    };
    let peer = match &r["peer"] {
        serde_json::Value::Object(o) => o
            .values()
            .filter(|v| !v.is_null())
            .map(|v| escape(&v.as_str().map_or(v.to_string(), str::to_string)).into_owned())
            .collect::<Vec<_>>()
            .join(" "),
        _ => "-".to_string(),
    };
    let group = match r["group_id"].as_str() {
        Some(g) => group_label(&GroupId::from(g), labels),
        None => s("group_id"),
    };
    vec![
        s("rule_id"),
        group,
        s("direction"),
        s("protocol"),
        format!("{}/{}", s("from_port"), s("to_port")),
        peer,
        s("policy"),
        s("priority"),
        s("description"),
    ]
}

/// Text from exports made safe for a terminal ([`crate::term::escape`]).
pub(super) fn term(s: &str) -> String {
    escape(s).into_owned()
}

/// `addr:port`, IPv6 in brackets.
fn socket(addr: &str, port: u16) -> String {
    if addr.contains(':') {
        format!("[{addr}]:{port}")
    } else {
        format!("{addr}:{port}")
    }
}

pub(super) fn family(f: crate::model::Family) -> &'static str {
    match f {
        crate::model::Family::V4 => "IPv4",
        crate::model::Family::V6 => "IPv6",
    }
}

fn family_of(addr: &str) -> &'static str {
    if addr.contains(':') {
        "IPv6"
    } else {
        "IPv4"
    }
}

/// An ENI for people: `name (eni-…)`, or the ID.
pub(super) fn eni_label(id: &str, name: Option<&str>) -> String {
    named(id, name)
}

/// A group for people: `name (sg-…)`, or the ID.
fn named(id: &str, name: Option<&str>) -> String {
    match name {
        Some(n) => format!("{} ({})", term(n), term(id)),
        None => term(id),
    }
}

/// `name (sg-…)` for each group.
pub(super) fn groups_label(groups: &[GroupRef]) -> String {
    groups
        .iter()
        .map(|g| named(g.id.as_str(), g.name.as_deref()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A group by ID with its name from `labels`: `name (sg-…)`, or the ID.
pub(super) fn group_label(id: &GroupId, labels: &Labels) -> String {
    named(id.as_str(), labels.group(id))
}

/// A rule by ID with its group: `sgr-… in name (sg-…)`, or the ID when the group is not
/// known.
pub(super) fn rule_label(id: &RuleId, labels: &Labels) -> String {
    match labels.rule_group(id) {
        Some(g) => format!("{} in {}", term(id.as_str()), group_label(g, labels)),
        None => term(id.as_str()),
    }
}

/// `1 connection`, `2 connections`.
pub(super) fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", agree(n, one, many))
}

/// The word that agrees with `n`: `one` for 1, else `many` (`breaks`/`break`).
pub(super) fn agree<'w>(n: u64, one: &'w str, many: &'w str) -> &'w str {
    if n == 1 {
        one
    } else {
        many
    }
}

/// `… and 3 more`, or nothing when all `total` are among the `shown`.
pub(super) fn and_more(shown: usize, total: usize) -> String {
    if total > shown {
        format!(" and {} more", total - shown)
    } else {
        String::new()
    }
}

/// Who the clients of a service are: "2 app hosts" when every sampled client is an ENI of
/// one group, else "2 clients" (egress: "2 destinations").
fn clients_label(i: &Impact) -> String {
    let noun = match i.direction {
        Direction::Ingress => ("client", "clients"),
        Direction::Egress => ("destination", "destinations"),
    };
    let at_least = if i.clients_exact { "" } else { "at least " };
    let groups: BTreeSet<Option<&str>> =
        i.client_sample.iter().map(|c| c.group.as_deref()).collect();
    match (groups.len(), groups.iter().next()) {
        (1, Some(Some(g))) if i.clients as usize == i.client_sample.len() => {
            let names: Vec<String> = i
                .client_sample
                .iter()
                .map(|c| term(c.name.as_deref().unwrap_or(&c.addr)))
                .take(3)
                .collect();
            let more = and_more(names.len(), i.client_sample.len());
            format!(
                "{at_least}{} {} ({}{more})",
                i.clients,
                if i.clients == 1 {
                    format!("{} host", term(g))
                } else {
                    format!("{} hosts", term(g))
                },
                names.join(", ")
            )
        }
        _ => format!("{at_least}{}", plural(i.clients, noun.0, noun.1)),
    }
}

/// One sentence of the lead, and whether it says that something breaks.
pub(super) struct Line {
    pub(super) text: String,
    pub(super) breaks: bool,
}

/// How many services of each kind the lead names before "… and N more".
const LEAD_SERVICES: usize = 3;

/// "… and connections to 2 more services break.", or nothing when the lead named all
/// `services`.
fn more_services(services: usize, what: &str) -> Option<String> {
    (services > LEAD_SERVICES).then(|| {
        let more = (services - LEAD_SERVICES) as u64;
        format!(
            "… and connections to {} {what}.",
            plural(more, "more service", "more services"),
        )
    })
}

/// The sentences a report opens with: what breaks, what opens, what survives. Each kind
/// names its first services and counts the rest.
pub(super) fn lead(report: &Report) -> Vec<Line> {
    let mut out = Vec::new();
    let mut say = |text: String, breaks: bool| out.push(Line { text, breaks });
    let c = &report.connections;
    let eni = |i: &Impact| eni_label(i.eni.as_str(), i.eni_name.as_deref());
    let broken: Vec<&Impact> = report.impact.iter().filter(|i| i.broken > 0).collect();
    for i in broken.iter().take(LEAD_SERVICES) {
        let (from, to) = match i.direction {
            Direction::Ingress => (clients_label(i), eni(i)),
            Direction::Egress => (eni(i), clients_label(i)),
        };
        say(
            format!(
                "{} from {from} to {to} {} {} ({} and {} lost).",
                plural(i.broken, "connection", "connections"),
                i.service,
                agree(i.broken, "breaks", "break"),
                plural(i.packets_broken, "packet", "packets"),
                plural(i.bytes_broken, "byte", "bytes"),
            ),
            true,
        );
    }
    if let Some(more) = more_services(broken.len(), "break (services below)") {
        say(more, true);
    }
    let surviving: Vec<&Impact> = report.impact.iter().filter(|i| i.surviving > 0).collect();
    for i in surviving.iter().take(LEAD_SERVICES) {
        say(
            format!(
                "{} to {} {} already open when the revoke lands {} until idle; new ones are refused.",
                plural(i.surviving, "connection", "connections"),
                eni(i),
                i.service,
                agree(i.surviving, "survives", "survive"),
            ),
            false,
        );
    }
    if let Some(more) = more_services(surviving.len(), "survive until idle") {
        say(more, false);
    }
    let restored: Vec<&Impact> = report.impact.iter().filter(|i| i.restored > 0).collect();
    for i in restored.iter().take(LEAD_SERVICES) {
        say(
            format!(
                "{} from {} to {} {} refused today would be accepted.",
                plural(i.restored, "connection", "connections"),
                clients_label(i),
                eni(i),
                i.service,
            ),
            false,
        );
    }
    if let Some(more) = more_services(restored.len(), "refused today would be accepted") {
        say(more, false);
    }
    if c.unknown > 0 {
        say(
            format!(
                "{} on references the exports do not resolve: {} unknown.",
                plural(c.unknown, "connection depends", "connections depend"),
                agree(c.unknown, "its fate is", "their fate is"),
            ),
            false,
        );
    }
    if out.is_empty() && c.total > 0 {
        out.push(Line {
            text: if c.total == 1 {
                "No connection changes: the 1 connection keeps its verdict.".to_string()
            } else {
                format!(
                    "No connection changes: all {} connections keep their verdicts.",
                    c.total
                )
            },
            breaks: false,
        });
    }
    out
}

/// Pretty JSON for the terminal: its strings escape C0 controls; DEL and C1 are escaped
/// here, as JSON escapes.
pub(super) fn pretty(v: &serde_json::Value) -> String {
    let text = serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string());
    escape_lines(&json_safe(&text)).into_owned()
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{report, revoke, sessions, state};
    use super::*;

    fn lines(report: &Report) -> Vec<String> {
        lead(report).into_iter().map(|l| l.text).collect()
    }

    /// Regression (review of 2026-12-07): a service with broken and surviving connections
    /// said all its changed packets were lost, the surviving connections' too.
    #[test]
    fn regression_lead_counts_only_the_broken_connections_packets_as_lost() {
        let s = state(1, "web", "srv", "cli");
        let mut r = report(&s, &revoke(1), &sessions(&[1001], &[1]), 3);
        let i = &mut r.impact[0];
        (i.broken, i.surviving, i.connections) = (1, 1, 2);
        (i.packets, i.bytes, i.packets_broken, i.bytes_broken) = (24, 1956, 12, 978);
        let text = lines(&r);
        assert!(
            text.iter()
                .any(|l| l.contains("breaks (12 packets and 978 bytes lost)")),
            "{text:#?}"
        );
    }

    /// Regression (review of 2026-12-07): the lead named at most three surviving and three
    /// restored services and said nothing of the rest; broken ones got "… and N more".
    #[test]
    fn regression_lead_says_how_many_more_services_survive_or_are_restored() {
        let s = state(5, "web", "srv", "cli");
        let ports = [1001, 1002, 1003, 1004, 1005];
        let mut r = report(&s, &revoke(5), &sessions(&ports, &[1; 5]), 3);
        assert_eq!(r.connections.surviving, 5, "{:?}", r.connections);
        let text = lines(&r);
        assert_eq!(
            text.iter().filter(|l| l.contains("already open")).count(),
            3,
            "{text:#?}"
        );
        assert!(
            text.contains(&"… and connections to 2 more services survive until idle.".into()),
            "{text:#?}"
        );
        // The same services, restored instead.
        for i in &mut r.impact {
            (i.restored, i.surviving) = (i.surviving, 0);
        }
        let text = lines(&r);
        assert_eq!(
            text.iter()
                .filter(|l| l.contains("would be accepted"))
                .count(),
            4,
            "{text:#?}"
        );
        assert!(
            text.contains(
                &"… and connections to 2 more services refused today would be accepted.".into()
            ),
            "{text:#?}"
        );
        // One more than named: "1 more service".
        let r = report(&s, &revoke(4), &sessions(&ports[..4], &[1; 4]), -10);
        let text = lines(&r);
        assert!(
            text.contains(&"… and connections to 1 more service break (services below).".into()),
            "{text:#?}"
        );
        assert!(lead(&r).iter().all(|l| l.breaks), "{text:#?}");
    }

    /// Every kind of service past the first three is counted, and none is named twice.
    #[test]
    fn lead_names_three_services_of_each_kind_then_counts_the_rest() {
        let s = state(3, "web", "srv", "cli");
        let r = report(&s, &revoke(3), &sessions(&[1001, 1002, 1003], &[1; 3]), -10);
        let text = lines(&r);
        assert_eq!(text.len(), 3, "{text:#?}");
        assert!(
            !text.iter().any(|l| l.contains("more service")),
            "{text:#?}"
        );
    }
}
