//! Renders a what-if [`Report`] for people: a terminal report (optionally coloured) and a
//! self-contained HTML page with tables and SVG charts.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::classify::Decision;
use crate::model::{Cidr, Direction, IpProtocol, PortRange, Protocol};
use crate::whatif::report::{GroupRef, Impact, Report};
use crate::whatif::space::{Decider, Region};

/// Columns of the revoked-rules tables (cells from `rule_cells`).
const RULE_COLUMNS: [&str; 9] = [
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

struct Style {
    colour: bool,
}

impl Style {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
    fn bold(&self, t: &str) -> String {
        self.paint("1", t)
    }
    fn red(&self, t: &str) -> String {
        self.paint("31", t)
    }
    fn green(&self, t: &str) -> String {
        self.paint("32", t)
    }
    fn dim(&self, t: &str) -> String {
        self.paint("2", t)
    }
    fn transition(&self, before: Decision, after: Decision, t: &str) -> String {
        match (before, after) {
            (Decision::Accept, Decision::Drop) => self.red(t),
            (Decision::Drop, Decision::Accept) => self.green(t),
            _ => t.to_string(),
        }
    }
}

fn who(d: &Decider) -> String {
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
struct Row<'a> {
    first: &'a Region,
    remotes: Vec<(u128, u128)>,
}

fn rows(regions: &[Region]) -> Vec<Row<'_>> {
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

/// The cells every header-space table starts with.
fn region_cells(row: &Row<'_>) -> Vec<String> {
    let r = row.first;
    vec![
        escape(
            &r.enis
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join(","),
        )
        .into_owned(),
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
                    .map(|g| g.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
        cidrs(&r.local),
        ports(r),
    ]
}

/// The cells every changed-flow table starts with.
fn flow_cells(f: &crate::whatif::report::Flow) -> Vec<String> {
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

/// A plain table: columns padded to their widest cell.
fn table(head: &[&str], rows: &[Vec<String>], out: &mut String) {
    let width = |i: usize| {
        rows.iter()
            .map(|r| visible_len(&r[i]))
            .chain([head[i].len()])
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..head.len()).map(width).collect();
    let line = |cells: Vec<String>, out: &mut String| {
        let mut s = String::from("  ");
        for (i, c) in cells.iter().enumerate() {
            s.push_str(c);
            if i + 1 < cells.len() {
                s.push_str(&" ".repeat(widths[i] - visible_len(c) + 2));
            }
        }
        out.push_str(s.trim_end());
        out.push('\n');
    };
    line(head.iter().map(|h| h.to_string()).collect(), out);
    for r in rows {
        line(r.clone(), out);
    }
}

/// Length without ANSI colour codes.
fn visible_len(s: &str) -> usize {
    let mut n = 0;
    let mut in_escape = false;
    for c in s.chars() {
        match (in_escape, c) {
            (false, '\x1b') => in_escape = true,
            (true, 'm') => in_escape = false,
            (true, _) => {}
            (false, _) => n += 1,
        }
    }
    n
}

fn rule_cells(r: &serde_json::Value) -> Vec<String> {
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
    vec![
        s("rule_id"),
        s("group_id"),
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
fn term(s: &str) -> String {
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

fn family(f: crate::model::Family) -> &'static str {
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
fn eni_label(id: &str, name: Option<&str>) -> String {
    match name {
        Some(n) => format!("{} ({})", term(n), term(id)),
        None => term(id),
    }
}

/// `sg-… (name)` for each group.
fn groups_label(groups: &[GroupRef]) -> String {
    groups
        .iter()
        .map(|g| match &g.name {
            Some(n) => format!("{} ({})", term(n), term(g.id.as_str())),
            None => term(g.id.as_str()),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
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
            let more = if i.client_sample.len() > 3 {
                ", …"
            } else {
                ""
            };
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

/// The sentences a report opens with: what breaks, what opens, what survives.
fn lead(report: &Report) -> Vec<String> {
    let mut out = Vec::new();
    let c = &report.connections;
    let shown = 3;
    for i in report.impact.iter().filter(|i| i.broken > 0).take(shown) {
        let (from, to) = match i.direction {
            Direction::Ingress => (
                clients_label(i),
                eni_label(i.eni.as_str(), i.eni_name.as_deref()),
            ),
            Direction::Egress => (
                eni_label(i.eni.as_str(), i.eni_name.as_deref()),
                clients_label(i),
            ),
        };
        out.push(format!(
            "{} from {from} to {to} {} break ({} and {} lost).",
            plural(i.broken, "connection", "connections"),
            i.service,
            plural(i.packets, "packet", "packets"),
            plural(i.bytes, "byte", "bytes"),
        ));
    }
    let broken_services = report.impact.iter().filter(|i| i.broken > 0).count();
    if broken_services > shown {
        out.push(format!(
            "… and connections to {} more services break (services below).",
            broken_services - shown
        ));
    }
    for i in report.impact.iter().filter(|i| i.surviving > 0).take(shown) {
        out.push(format!(
            "{} to {} {} already open when the revoke lands survive until idle; new ones are refused.",
            plural(i.surviving, "connection", "connections"),
            eni_label(i.eni.as_str(), i.eni_name.as_deref()),
            i.service,
        ));
    }
    for i in report.impact.iter().filter(|i| i.restored > 0).take(shown) {
        out.push(format!(
            "{} from {} to {} {} refused today would be accepted.",
            plural(i.restored, "connection", "connections"),
            clients_label(i),
            eni_label(i.eni.as_str(), i.eni_name.as_deref()),
            i.service,
        ));
    }
    if c.unknown > 0 {
        out.push(format!(
            "{} depend on references the exports do not resolve: their fate is unknown.",
            plural(c.unknown, "connection", "connections")
        ));
    }
    if out.is_empty() && c.total > 0 {
        out.push(format!(
            "No connection changes: all {} keep their verdicts.",
            plural(c.total, "connection", "connections")
        ));
    }
    out
}

/// "20 of 57 shown", or nothing when all are.
fn shown(n: usize, total: usize) -> String {
    if n < total {
        format!(" ({n} of {total} shown)")
    } else {
        String::new()
    }
}

/// The terminal report.
pub fn text(report: &Report, colour: bool) -> String {
    let st = Style { colour };
    let top = report.top.max(1);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}",
        st.bold(&format!("sgsim what-if ({:?})", report.provider))
    );
    if let Some(code) = &report.error {
        let message = report.response["Message"]
            .as_str()
            .or(report.response["Error"]["Message"].as_str())
            .unwrap_or("");
        let _ = writeln!(
            out,
            "\nThe API would reject this request: HTTP {} {}: {}\nNothing is revoked and no traffic changes.",
            report.status,
            st.red(&term(code)),
            term(message)
        );
        let _ = writeln!(out, "\nResponse:\n{}", term(&pretty(&report.response)));
        return out;
    }
    let c = &report.connections;
    if c.total > 0 {
        let _ = writeln!(out);
        for line in lead(report) {
            let painted = if line.contains(" break ") {
                st.red(&line)
            } else {
                line
            };
            let _ = writeln!(out, "{}", st.bold(&painted));
        }
        let _ = writeln!(
            out,
            "  connections: {} judged, {} broken ({} packets, {} bytes lost), {} surviving, {} restored, {} unknown",
            c.total, c.broken, c.packets_broken, c.bytes_broken, c.surviving, c.restored, c.unknown
        );
    }
    let _ = writeln!(out, "\nResponse: HTTP {} (success)", report.status);
    let _ = writeln!(
        out,
        "\n{}",
        st.bold(&format!("Rules revoked: {}", report.revoked_rules.len()))
    );
    if report.revoked_rules.is_empty() {
        let _ = writeln!(
            out,
            "  none: the request matched no rule, so nothing changes"
        );
    } else {
        let rows: Vec<Vec<String>> = report
            .revoked_rules
            .iter()
            .map(|r| rule_cells(r).iter().map(|c| term(c)).collect())
            .collect();
        table(&RULE_COLUMNS, &rows, &mut out);
    }
    if !report.impact.is_empty() {
        let _ = writeln!(
            out,
            "\n{}",
            st.bold(&format!(
                "Services that change, most broken connections first{}",
                shown(report.impact.len().min(top), report.impact.len())
            ))
        );
        let rows: Vec<Vec<String>> = report
            .impact
            .iter()
            .take(top)
            .map(|i| {
                let change = format!("{} -> {}", who(&i.before), who(&i.after));
                vec![
                    i.service.clone(),
                    eni_label(i.eni.as_str(), i.eni_name.as_deref()),
                    groups_label(&i.groups),
                    i.direction.to_string(),
                    family(i.family).to_string(),
                    format!("{}{}", i.clients, if i.clients_exact { "" } else { "+" }),
                    i.broken.to_string(),
                    i.surviving.to_string(),
                    i.restored.to_string(),
                    i.unknown.to_string(),
                    i.packets.to_string(),
                    st.transition(i.before.action, i.after.action, &term(&change)),
                ]
            })
            .collect();
        table(
            &[
                "service",
                "ENI",
                "groups",
                "dir",
                "family",
                "clients",
                "broken",
                "surviving",
                "restored",
                "unknown",
                "packets",
                "before -> after (new connections)",
            ],
            &rows,
            &mut out,
        );
    }
    if !report.flows.is_empty() {
        let _ = writeln!(
            out,
            "\n{}",
            st.bold(&format!(
                "Connections that change, broken first, most packets first{}",
                shown(report.flows.len().min(top), report.flows_total as usize)
            ))
        );
        let rows: Vec<Vec<String>> = report
            .flows
            .iter()
            .take(top)
            .map(|f| {
                let change = format!("{} -> {}", who(&f.before), who(&f.after));
                let mut cells = vec![f.outcome.as_str().to_string()];
                cells.extend(flow_cells(f));
                cells.push(st.transition(f.before.action, f.after.action, &term(&change)));
                cells
            })
            .collect();
        table(
            &[
                "outcome",
                "ENI",
                "dir",
                "family",
                "proto",
                "source",
                "destination",
                "packets",
                "bytes",
                "before -> after",
            ],
            &rows,
            &mut out,
        );
    }
    let _ = writeln!(
        out,
        "\n{}",
        st.bold("Header space that changes, from the rules alone")
    );
    if let Some(why) = &report.header_space_stopped {
        let _ = writeln!(out, "  {}", st.red(&format!("incomplete: {why}")));
    }
    if report.header_space.is_empty()
        && !report.revoked_rules.is_empty()
        && report.enis_in_scope == 0
    {
        let _ = writeln!(
            out,
            "  nothing judged: no network interface of the state carries the revoked rules' \
             groups (see the warnings)"
        );
    } else if report.header_space.is_empty() && report.header_space_complete {
        let _ = writeln!(out, "  none: every packet keeps its verdict");
    } else if !report.header_space.is_empty() {
        let grouped = rows(&report.header_space);
        if grouped.len() > top {
            let _ = writeln!(out, "  {top} of {} shown", grouped.len());
        }
        let rows: Vec<Vec<String>> = grouped
            .iter()
            .take(top)
            .map(|row| {
                let r = row.first;
                let mut change = format!("{} -> {}", who(&r.before), who(&r.after));
                if !r.unresolved.is_empty() {
                    change.push_str(&format!(
                        " (unknown: depends on {})",
                        r.unresolved.join(", ")
                    ));
                }
                let mut cells: Vec<String> = region_cells(row).iter().map(|c| term(c)).collect();
                cells.push(st.transition(r.before.action, r.after.action, &term(&change)));
                cells.push(st.dim(&r.witness.to_string()));
                cells
            })
            .collect();
        table(
            &[
                "ENIs",
                "dir",
                "family",
                "proto",
                "remote",
                "local",
                "ports",
                "before -> after",
                "e.g.",
            ],
            &rows,
            &mut out,
        );
    }
    if report.packets.judged > 0 {
        let p = &report.packets;
        let _ = writeln!(
            out,
            "\n{}\n  {} packets judged; accepted {} before, {} after; {}, {}{}",
            st.bold("Packets"),
            p.judged,
            p.accepted_before,
            p.accepted_after,
            st.red(&format!("{} accept->drop", report.changed.accept_to_drop)),
            st.green(&format!("{} drop->accept", report.changed.drop_to_accept)),
            if report.changed.to_unknown + report.changed.from_unknown > 0 {
                format!(
                    ", {} to unknown, {} from unknown",
                    report.changed.to_unknown, report.changed.from_unknown
                )
            } else {
                String::new()
            }
        );
        if !report.rules_without_hits.is_empty() {
            let n = report.rules_without_hits.len();
            let _ = writeln!(
                out,
                "\n{} {}{}",
                st.bold(&format!("Rules with no hits in this traffic ({n}):")),
                report
                    .rules_without_hits
                    .iter()
                    .take(top)
                    .map(|r| term(r.as_str()))
                    .collect::<Vec<_>>()
                    .join(", "),
                if n > top {
                    format!(" … ({top} of {n} shown)")
                } else {
                    String::new()
                }
            );
        }
        if let Some(a) = &report.flow_log_agreement {
            let _ = writeln!(
                out,
                "\n{} the model's before-verdict matches the logged action for {} of {} records ({:.1}%); \
                 {} logged ACCEPT the model drops, {} logged REJECT the model accepts (a network ACL can explain these)",
                st.bold("Flow-log agreement:"),
                a.agree,
                a.records,
                a.ratio * 100.0,
                a.logged_accept_model_drop,
                a.logged_reject_model_accept
            );
        }
    }
    for c in &report.caveats {
        let _ = writeln!(out, "\n{} {}", st.bold("Caveat:"), term(c));
    }
    for w in &report.warnings {
        let _ = writeln!(out, "{} {}", st.bold("Warning:"), term(w));
    }
    out
}

/// Pretty JSON for the terminal: its strings escape C0 controls; DEL and C1 are escaped
/// here, as JSON escapes.
fn pretty(v: &serde_json::Value) -> String {
    let text = serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string());
    escape_lines(&json_safe(&text)).into_owned()
}

use crate::provider::xml_escape as esc;
use crate::term::{escape, escape_lines, json_safe};

fn html_table(head: &[&str], rows: &[Vec<String>], out: &mut String) {
    out.push_str("<div class=\"scroll\"><table><thead><tr>");
    for h in head {
        let _ = write!(out, "<th>{}</th>", esc(h));
    }
    out.push_str("</tr></thead><tbody>");
    for r in rows {
        out.push_str("<tr>");
        for c in r {
            let _ = write!(out, "<td>{}</td>", esc(c));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></div>");
}

/// A bar chart of rule hits before (grey) and after (blue), one row per rule.
fn hits_chart(report: &Report) -> String {
    let rules: Vec<_> = report
        .rules
        .iter()
        .filter(|h| h.before + h.after > 0)
        .take(40)
        .collect();
    if rules.is_empty() {
        return String::new();
    }
    let max = rules
        .iter()
        .map(|h| h.before.max(h.after))
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let (label, bar, row) = (220.0, 420.0, 22.0);
    let height = row * rules.len() as f64 + 30.0;
    let mut s = format!(
        "<svg viewBox=\"0 0 {w} {height}\" width=\"{w}\" height=\"{height}\" role=\"img\" aria-label=\"hits per rule\">",
        w = label + bar + 80.0
    );
    for (i, h) in rules.iter().enumerate() {
        let y = 20.0 + i as f64 * row;
        let wb = bar * h.before as f64 / max;
        let wa = bar * h.after as f64 / max;
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" class=\"l\">{}</text>\
             <rect x=\"{label}\" y=\"{}\" width=\"{wb:.1}\" height=\"8\" class=\"before\"><title>before: {}</title></rect>\
             <rect x=\"{label}\" y=\"{}\" width=\"{wa:.1}\" height=\"8\" class=\"after\"><title>after: {}</title></rect>\
             <text x=\"{}\" y=\"{}\" class=\"l\">{} → {}</text>",
            label - 6.0,
            y + 8.0,
            esc(h.rule_id.as_str()),
            y,
            h.before,
            y + 9.0,
            h.after,
            label + wb.max(wa) + 6.0,
            y + 8.0,
            h.before,
            h.after
        );
    }
    s.push_str("</svg>");
    s
}

/// Accepted packets over time, before (grey) and after (blue).
fn timeline_chart(report: &Report) -> String {
    let b = &report.timeline;
    if b.len() < 2 {
        return String::new();
    }
    let (w, h, pad) = (700.0, 220.0, 36.0);
    let max = b.iter().map(|x| x.total).max().unwrap_or(1).max(1) as f64;
    let x = |i: usize| pad + (w - 2.0 * pad) * i as f64 / (b.len() - 1) as f64;
    let y = |v: u64| h - pad - (h - 2.0 * pad) * v as f64 / max;
    let line = |f: &dyn Fn(&crate::whatif::report::Bucket) -> u64| {
        b.iter()
            .enumerate()
            .map(|(i, k)| format!("{:.1},{:.1}", x(i), y(f(k))))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let span_s = (b[b.len() - 1].start_ns - b[0].start_ns) as f64 / 1e9;
    format!(
        "<svg viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\" aria-label=\"traffic over time\">\
         <line x1=\"{pad}\" y1=\"{base}\" x2=\"{xe}\" y2=\"{base}\" class=\"axis\"/>\
         <line x1=\"{pad}\" y1=\"{pad}\" x2=\"{pad}\" y2=\"{base}\" class=\"axis\"/>\
         <polyline points=\"{total}\" class=\"total\"/>\
         <polyline points=\"{before}\" class=\"before\"/>\
         <polyline points=\"{after}\" class=\"after\"/>\
         <text x=\"{pad}\" y=\"{ty}\" class=\"l\">0 s</text>\
         <text x=\"{xe}\" y=\"{ty}\" text-anchor=\"end\" class=\"l\">{span_s:.1} s</text>\
         <text x=\"4\" y=\"{pad}\" class=\"l\">{max}</text></svg>",
        base = h - pad,
        xe = w - pad,
        ty = h - pad + 16.0,
        total = line(&|k| k.total),
        before = line(&|k| k.accepted_before),
        after = line(&|k| k.accepted_after),
    )
}

/// A table whose first `visible` rows show; the rest sit in an expandable `<details>`.
fn html_table_more(head: &[&str], rows: &[Vec<String>], visible: usize, out: &mut String) {
    html_table(head, &rows[..rows.len().min(visible)], out);
    if rows.len() > visible {
        let _ = write!(
            out,
            "<details><summary>{} more ({} of {} shown above)</summary>",
            rows.len() - visible,
            visible,
            rows.len()
        );
        html_table(head, &rows[visible..], out);
        out.push_str("</details>");
    }
}

fn or_dash(v: &Option<String>) -> String {
    v.clone().unwrap_or_else(|| "-".into())
}

/// A self-contained HTML page (no scripts): the answer, the analysis's inputs, services,
/// connections, header space, charts, rules, the API response.
pub fn html(report: &Report) -> String {
    let top = report.top.max(1);
    let mut body = String::new();
    if let Some(code) = &report.error {
        let _ = write!(
            body,
            "<p class=\"bad\">The API would reject this request: HTTP {} <b>{}</b>. Nothing is revoked and no traffic changes.</p><pre>{}</pre>",
            report.status,
            esc(code),
            esc(&pretty(&report.response))
        );
    } else {
        let c = &report.connections;
        let p = &report.packets;
        if c.total > 0 {
            body.push_str("<div class=\"answer\">");
            for line in lead(report) {
                let class = if line.contains(" break ") {
                    " class=\"bad\""
                } else {
                    ""
                };
                let _ = write!(body, "<p{class}>{}</p>", esc(&line));
            }
            body.push_str("</div>");
        }
        let _ = write!(
            body,
            "<div class=\"cards\">\
             <div><b>{}</b>connections judged</div>\
             <div class=\"bad\"><b>{}</b>broken ({} packets, {} bytes lost)</div>\
             <div><b>{}</b>surviving until idle</div>\
             <div class=\"good\"><b>{}</b>restored</div>\
             <div><b>{}</b>unknown</div>\
             <div><b>{}</b>rules revoked</div>\
             <div><b>{}</b>header-space regions change</div>\
             <div><b>{}</b>packets judged</div>\
             <div class=\"bad\"><b>{}</b>packets accept → drop</div>\
             <div class=\"good\"><b>{}</b>packets drop → accept</div></div>",
            c.total,
            c.broken,
            c.packets_broken,
            c.bytes_broken,
            c.surviving,
            c.restored,
            c.unknown,
            report.revoked_rules.len(),
            rows(&report.header_space).len(),
            p.judged,
            report.changed.accept_to_drop,
            report.changed.drop_to_accept,
        );
        // The analysis: what was asked, on what, when.
        body.push_str("<h2>Analysis</h2><table class=\"kv\"><tbody>");
        let mut kv = |k: &str, v: String| {
            let _ = write!(body, "<tr><th>{}</th><td>{v}</td></tr>", esc(k));
        };
        kv(
            "request",
            format!(
                "<pre>{}</pre>",
                esc(report.request.as_deref().unwrap_or("-"))
            ),
        );
        kv("provider", esc(&format!("{:?}", report.provider)));
        let ctx = &report.context;
        kv("accounts", esc(&ctx.accounts.join(", ")));
        kv("regions", esc(&ctx.regions.join(", ")));
        kv("VPCs", esc(&ctx.vpcs.join(", ")));
        let inputs = report
            .inputs
            .iter()
            .map(|i| {
                format!(
                    "<b>{}</b> ({})<br><small>{}</small>",
                    esc(&i.name),
                    esc(&i.kind),
                    esc(&i.summary).replace('\n', "<br>")
                )
            })
            .collect::<Vec<_>>()
            .join("<br>");
        kv(
            "traffic",
            if inputs.is_empty() {
                "none".into()
            } else {
                inputs
            },
        );
        kv("revoke takes effect", esc(&report.revoke_at.join(", ")));
        kv("analysed at", esc(&or_dash(&report.analysed_at)));
        body.push_str("</tbody></table>");
        for c in &report.caveats {
            let _ = write!(body, "<p class=\"note\">{}</p>", esc(c));
        }
        for w in &report.warnings {
            let _ = write!(body, "<p class=\"note\">⚠ {}</p>", esc(w));
        }
        if !report.impact.is_empty() {
            let _ = write!(
                body,
                "<h2>Services that change</h2><p>{} services, most broken connections first.</p>",
                report.impact.len()
            );
            let rows: Vec<Vec<String>> = report
                .impact
                .iter()
                .map(|i| {
                    let mut sample = i
                        .client_sample
                        .iter()
                        .take(5)
                        .map(|c| match &c.name {
                            Some(n) => format!("{} ({n})", c.addr),
                            None => c.addr.clone(),
                        })
                        .collect::<Vec<_>>()
                        .join(", ");
                    if i.clients > 5 {
                        sample.push_str(", …");
                    }
                    let eni = match &i.instance {
                        Some(inst) => format!(
                            "{} {inst}",
                            eni_label(i.eni.as_str(), i.eni_name.as_deref())
                        ),
                        None => eni_label(i.eni.as_str(), i.eni_name.as_deref()),
                    };
                    vec![
                        i.service.clone(),
                        eni,
                        groups_label(&i.groups),
                        format!("{} {}", i.direction, family(i.family)),
                        format!(
                            "{}{}: {sample}",
                            i.clients,
                            if i.clients_exact { "" } else { "+" }
                        ),
                        i.broken.to_string(),
                        i.surviving.to_string(),
                        i.restored.to_string(),
                        i.unknown.to_string(),
                        format!("{} / {}", i.packets, i.bytes),
                        format!("{} – {}", or_dash(&i.first_seen), or_dash(&i.last_seen)),
                        format!("{} → {}", who(&i.before), who(&i.after)),
                    ]
                })
                .collect();
            html_table_more(
                &[
                    "service",
                    "ENI",
                    "groups",
                    "direction",
                    "clients",
                    "broken",
                    "surviving",
                    "restored",
                    "unknown",
                    "packets / bytes",
                    "seen",
                    "before → after (new connections)",
                ],
                &rows,
                top,
                &mut body,
            );
        }
        if !report.flows.is_empty() {
            let _ = write!(
                body,
                "<h2>Connections that change</h2><p>{} connections change; the {} with the most impact are listed (broken first, most packets first; <code>--top</code> sets how many).</p>",
                report.flows_total,
                report.flows.len()
            );
            let rows: Vec<Vec<String>> = report
                .flows
                .iter()
                .map(|f| {
                    let mut cells = vec![f.outcome.as_str().to_string()];
                    cells.extend(flow_cells(f));
                    cells.extend([who(&f.before), who(&f.after)]);
                    cells
                })
                .collect();
            html_table_more(
                &[
                    "outcome",
                    "ENI",
                    "dir",
                    "family",
                    "proto",
                    "source",
                    "destination",
                    "packets",
                    "bytes",
                    "before",
                    "after",
                ],
                &rows,
                top,
                &mut body,
            );
        }
        body.push_str("<h2>Header space that changes (from the rules alone)</h2>");
        if report.header_space.is_empty()
            && !report.revoked_rules.is_empty()
            && report.enis_in_scope == 0
        {
            body.push_str(
                "<p class=\"note\">⚠ Nothing judged: no network interface of the state \
                 carries the revoked rules' groups (see the warnings).</p>",
            );
        } else if report.header_space.is_empty() {
            body.push_str("<p>None: every packet keeps its verdict.</p>");
        } else {
            let rows: Vec<Vec<String>> = rows(&report.header_space)
                .iter()
                .map(|row| {
                    let r = row.first;
                    let mut cells = region_cells(row);
                    cells.extend([who(&r.before), who(&r.after), r.witness.to_string()]);
                    cells
                })
                .collect();
            html_table_more(
                &[
                    "ENIs",
                    "dir",
                    "family",
                    "proto",
                    "remote",
                    "local",
                    "ports",
                    "before",
                    "after",
                    "example packet",
                ],
                &rows,
                top,
                &mut body,
            );
        }
        let timeline = timeline_chart(report);
        if !timeline.is_empty() {
            body.push_str("<h2>Accepted packets over time</h2><p class=\"legend\"><span class=\"k total\"></span>all packets <span class=\"k before\"></span>accepted before <span class=\"k after\"></span>accepted after</p>");
            body.push_str(&timeline);
        }
        let hits = hits_chart(report);
        if !hits.is_empty() {
            body.push_str("<h2>Hits per rule</h2><p class=\"legend\"><span class=\"k before\"></span>before <span class=\"k after\"></span>after</p>");
            body.push_str(&hits);
        }
        if let Some(a) = &report.flow_log_agreement {
            let _ = write!(
                body,
                "<h2>Agreement with flow logs</h2><p>The model's verdict before the revoke matches the logged action for <b>{}</b> of {} records ({:.1}%); {} logged ACCEPT the model drops, {} logged REJECT the model accepts (a network ACL can explain these), {} the model cannot judge.</p>",
                a.agree,
                a.records,
                a.ratio * 100.0,
                a.logged_accept_model_drop,
                a.logged_reject_model_accept,
                a.model_unknown
            );
        }
        if p.judged > 0 {
            let n = report.rules_without_hits.len();
            let _ = write!(body, "<h2>Rules without hits</h2><p>{n} rules of the groups on ENIs that saw traffic decided none of it.</p>");
            if n > 0 {
                let rows: Vec<Vec<String>> = report
                    .rules_without_hits
                    .iter()
                    .map(|r| vec![r.to_string()])
                    .collect();
                html_table_more(&["rule"], &rows, top, &mut body);
            }
        }
        body.push_str("<h2>Rules revoked</h2>");
        let rows: Vec<Vec<String>> = report.revoked_rules.iter().map(rule_cells).collect();
        html_table(&RULE_COLUMNS, &rows, &mut body);
        body.push_str("<h2>API response</h2>");
        let _ = write!(
            body,
            "<pre>HTTP {}\n{}</pre>",
            report.status,
            esc(&pretty(&report.response))
        );
    }
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>sgsim what-if report</title><style>{CSS}</style></head>\
         <body><h1>sgsim what-if report <small>{:?}</small></h1>{body}\
         <footer>Generated by sgsim {}{}. Verdicts are simulated from the exported rules.</footer></body></html>",
        report.provider,
        env!("CARGO_PKG_VERSION"),
        report
            .analysed_at
            .as_deref()
            .map(|t| format!(" at {}", esc(t)))
            .unwrap_or_default()
    )
}

const CSS: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;color:#222}\
h1 small{color:#888;font-weight:normal}h2{margin-top:1.8em;border-bottom:1px solid #ddd}\
table{border-collapse:collapse;width:100%;font-size:13px}th,td{border-bottom:1px solid #eee;padding:4px 6px;text-align:left;vertical-align:top}\
th{background:#f6f6f6}.cards{display:flex;flex-wrap:wrap;gap:12px;margin:1em 0}\
.cards div{border:1px solid #ddd;border-radius:6px;padding:10px 14px;min-width:120px}.cards b{display:block;font-size:24px}\
.bad{color:#b00020}.good{color:#08722b}.note{background:#fff8e1;padding:6px 10px;border-radius:4px}\
pre{background:#f6f6f6;padding:10px;overflow:auto}svg .l{font-size:11px;fill:#444}\
svg rect.before{fill:#aaa}svg rect.after{fill:#1f6feb}svg .axis{stroke:#999}\
svg polyline{fill:none;stroke-width:2}svg polyline.total{stroke:#ddd}svg polyline.before{stroke:#999}svg polyline.after{stroke:#1f6feb}\
.legend .k{display:inline-block;width:14px;height:8px;margin:0 4px 0 10px}.k.total{background:#ddd}.k.before{background:#999}.k.after{background:#1f6feb}\
footer{margin-top:3em;color:#888;font-size:12px}\
.answer{border-left:4px solid #b00020;padding:4px 12px;margin:1em 0;font-size:16px}.answer p{margin:4px 0}\
table.kv{width:auto}table.kv th{width:12em}table.kv pre{margin:0;padding:4px;white-space:pre-wrap;word-break:break-all}\
details{margin:6px 0}summary{cursor:pointer;color:#1f6feb}.scroll{overflow-x:auto}td{overflow-wrap:break-word}";
