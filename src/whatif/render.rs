//! Renders a what-if [`Report`] for people: a terminal report (optionally coloured) and a
//! self-contained HTML page with tables and SVG charts.

use std::fmt::Write as _;

use crate::model::{Action, Cidr, PortRange, Protocol};
use crate::whatif::report::Report;
use crate::whatif::space::{Decider, Region};

/// How many rows of a long table the terminal report shows.
const ROWS: usize = 20;

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

/// How many changed flows the HTML report lists.
const FLOW_ROWS: usize = 200;

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
    fn transition(&self, before: Action, after: Action, t: &str) -> String {
        match (before, after) {
            (Action::Accept, Action::Drop) => self.red(t),
            (Action::Drop, Action::Accept) => self.green(t),
            _ => t.to_string(),
        }
    }
}

fn who(d: &Decider) -> String {
    match &d.rule {
        Some(r) => format!("{} by {}", d.action, r),
        None => format!("{} by {}", d.action, d.reason),
    }
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
        r.enis
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join(","),
        r.direction.to_string(),
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
        f.eni.to_string(),
        f.direction.to_string(),
        Protocol::Number(f.protocol).to_string(),
        format!("{}:{}", f.src, f.src_port),
        format!("{}:{}", f.dst, f.dst_port),
        f.packets.to_string(),
        f.bytes.to_string(),
    ]
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
    let icmp = matches!(r.protocols.as_slice(), [(a, b)] if a == b && matches!(a, 1 | 58));
    let ported = r.protocols.iter().any(|&(lo, hi)| {
        [6u8, 17, 33, 132, 136]
            .iter()
            .any(|p| (lo..=hi).contains(p))
    });
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
        serde_json::Value::String(v) => v.clone(),
        serde_json::Value::Null => "-".to_string(),
        other => other.to_string(),
    };
    let peer = match &r["peer"] {
        serde_json::Value::Object(o) => o
            .values()
            .filter(|v| !v.is_null())
            .map(|v| v.as_str().map_or(v.to_string(), str::to_string))
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

/// The terminal report.
pub fn text(report: &Report, colour: bool) -> String {
    let st = Style { colour };
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
            st.red(code),
            message
        );
        let _ = writeln!(out, "\nResponse:\n{}", pretty(&report.response));
        return out;
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
        let rows: Vec<Vec<String>> = report.revoked_rules.iter().map(rule_cells).collect();
        table(&RULE_COLUMNS, &rows, &mut out);
    }
    let _ = writeln!(
        out,
        "\n{}",
        st.bold("Header space that changes, from the rules alone")
    );
    if let Some(why) = &report.header_space_stopped {
        let _ = writeln!(out, "  {}", st.red(&format!("incomplete: {why}")));
    }
    if report.header_space.is_empty() && report.header_space_complete {
        let _ = writeln!(out, "  none: every packet keeps its verdict");
    } else if !report.header_space.is_empty() {
        let grouped = rows(&report.header_space);
        let rows: Vec<Vec<String>> = grouped
            .iter()
            .take(ROWS)
            .map(|row| {
                let r = row.first;
                let mut change = format!("{} -> {}", who(&r.before), who(&r.after));
                if !r.unresolved.is_empty() {
                    change.push_str(&format!(
                        " (unknown: depends on {})",
                        r.unresolved.join(", ")
                    ));
                }
                let mut cells = region_cells(row);
                cells.push(st.transition(r.before.action, r.after.action, &change));
                cells.push(st.dim(&r.witness.to_string()));
                cells
            })
            .collect();
        table(
            &[
                "ENIs",
                "dir",
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
        if grouped.len() > ROWS {
            let _ = writeln!(out, "  … {} more in the JSON report", grouped.len() - ROWS);
        }
    }
    if report.packets.judged > 0 {
        let p = &report.packets;
        let _ = writeln!(
            out,
            "\n{}\n  {} packets judged; accepted {} before, {} after; {} and {}",
            st.bold("Traffic"),
            p.judged,
            p.accepted_before,
            p.accepted_after,
            st.red(&format!("{} accept->drop", report.changed.accept_to_drop)),
            st.green(&format!("{} drop->accept", report.changed.drop_to_accept)),
        );
        if report.flows.is_empty() {
            let _ = writeln!(out, "  no flow changes verdict");
        } else {
            let _ = writeln!(
                out,
                "\n{}",
                st.bold(&format!("Flows that change: {}", report.flows.len()))
            );
            let rows: Vec<Vec<String>> = report
                .flows
                .iter()
                .take(ROWS)
                .map(|f| {
                    let change = format!("{} -> {}", who(&f.before), who(&f.after));
                    let mut cells = flow_cells(f);
                    cells.push(st.transition(f.before.action, f.after.action, &change));
                    cells
                })
                .collect();
            table(
                &[
                    "ENI",
                    "dir",
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
        if !report.rules_without_hits.is_empty() {
            let _ = writeln!(
                out,
                "\n{} {}",
                st.bold("Rules with no hits in this traffic:"),
                report
                    .rules_without_hits
                    .iter()
                    .map(|r| r.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
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
        let _ = writeln!(out, "\n{} {c}", st.bold("Caveat:"));
    }
    for w in &report.warnings {
        let _ = writeln!(out, "{} {w}", st.bold("Warning:"));
    }
    out
}

fn pretty(v: &serde_json::Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

use crate::provider::xml_escape as esc;

fn html_table(head: &[&str], rows: &[Vec<String>], out: &mut String) {
    out.push_str("<table><thead><tr>");
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
    out.push_str("</tbody></table>");
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

/// A self-contained HTML page: summary, changed flows, header space, revoked rules, charts.
pub fn html(report: &Report) -> String {
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
        let p = &report.packets;
        let _ = write!(
            body,
            "<div class=\"cards\">\
             <div><b>{}</b>rules revoked</div>\
             <div><b>{}</b>header-space regions change</div>\
             <div><b>{}</b>packets judged</div>\
             <div class=\"bad\"><b>{}</b>accept → drop</div>\
             <div class=\"good\"><b>{}</b>drop → accept</div>\
             <div><b>{}</b>flows change</div></div>",
            report.revoked_rules.len(),
            rows(&report.header_space).len(),
            p.judged,
            report.changed.accept_to_drop,
            report.changed.drop_to_accept,
            report.flows.len()
        );
        for c in &report.caveats {
            let _ = write!(body, "<p class=\"note\">{}</p>", esc(c));
        }
        for w in &report.warnings {
            let _ = write!(body, "<p class=\"note\">⚠ {}</p>", esc(w));
        }
        body.push_str("<h2>Header space that changes (from the rules alone)</h2>");
        if report.header_space.is_empty() {
            body.push_str("<p>None: every packet keeps its verdict.</p>");
        } else {
            let rows: Vec<Vec<String>> = rows(&report.header_space)
                .iter()
                .take(500)
                .map(|row| {
                    let r = row.first;
                    let mut cells = region_cells(row);
                    cells.extend([who(&r.before), who(&r.after), r.witness.to_string()]);
                    cells
                })
                .collect();
            html_table(
                &[
                    "ENIs",
                    "dir",
                    "proto",
                    "remote",
                    "local",
                    "ports",
                    "before",
                    "after",
                    "example packet",
                ],
                &rows,
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
        if !report.flows.is_empty() {
            let shown = report.flows.len().min(FLOW_ROWS);
            let _ = write!(
                body,
                "<h2>Flows whose verdict changes</h2><p>{} flows{}; the JSON report has them all.</p>",
                report.flows.len(),
                if shown < report.flows.len() {
                    format!(", the {shown} with the most packets shown")
                } else {
                    String::new()
                }
            );
            let rows: Vec<Vec<String>> = report
                .flows
                .iter()
                .take(FLOW_ROWS)
                .map(|f| {
                    let mut cells = flow_cells(f);
                    cells.extend([who(&f.before), who(&f.after)]);
                    cells
                })
                .collect();
            html_table(
                &[
                    "ENI",
                    "dir",
                    "proto",
                    "source",
                    "destination",
                    "packets",
                    "bytes",
                    "before",
                    "after",
                ],
                &rows,
                &mut body,
            );
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
         <footer>Generated by sgsim {}. Verdicts are simulated from the exported rules.</footer></body></html>",
        report.provider,
        env!("CARGO_PKG_VERSION")
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
footer{margin-top:3em;color:#888;font-size:12px}";
