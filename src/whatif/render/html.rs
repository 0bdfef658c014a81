//! The HTML page: self-contained, no scripts, tables and SVG charts.

use std::fmt::Write as _;

use super::cells::{
    eni_label, family, flow_cells, group_label, groups_label, lead, plural, pretty, region_cells,
    rows, rule_cells, term, who, RULE_COLUMNS,
};
use crate::provider::xml_escape as esc;
use crate::term::escape_lines;
use crate::whatif::report::Report;

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

/// Rules the hits chart draws; the rest are listed in a table under it.
const CHART_RULES: usize = 40;

/// Rules with hits, most changed first (then most hits, then in the report's order).
fn by_impact(report: &Report) -> Vec<&crate::whatif::report::Hits> {
    let mut rules: Vec<_> = report
        .rules
        .iter()
        .filter(|h| h.before + h.after > 0)
        .collect();
    rules.sort_by_key(|h| {
        (
            std::cmp::Reverse(h.before.abs_diff(h.after)),
            std::cmp::Reverse(h.before.max(h.after)),
        )
    });
    rules
}

/// A bar chart of rule hits before (grey) and after (blue), one row per rule, most changed
/// first: the first [`CHART_RULES`], then the rest in an expandable table.
fn hits_chart(report: &Report) -> String {
    let all = by_impact(report);
    if all.is_empty() {
        return String::new();
    }
    let rules = &all[..all.len().min(CHART_RULES)];
    let max = rules
        .iter()
        .map(|h| h.before.max(h.after))
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let (label, bar, row) = (220.0, 420.0, 22.0);
    let height = row * rules.len() as f64 + 30.0;
    let mut s = format!(
        "<p>{} with hits, most changed first{}.</p>\
         <svg viewBox=\"0 0 {w} {height}\" width=\"{w}\" height=\"{height}\" role=\"img\" aria-label=\"hits per rule\">",
        plural(all.len() as u64, "rule", "rules"),
        if all.len() > rules.len() {
            format!(" ({} of {} shown)", rules.len(), all.len())
        } else {
            String::new()
        },
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
            esc(&term(h.rule_id.as_str())),
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
    if all.len() > rules.len() {
        let _ = write!(
            s,
            "<details><summary>{} more ({} of {} shown above)</summary>",
            all.len() - rules.len(),
            rules.len(),
            all.len()
        );
        let rest: Vec<Vec<String>> = all[rules.len()..]
            .iter()
            .map(|h| {
                vec![
                    term(h.rule_id.as_str()),
                    h.before.to_string(),
                    h.after.to_string(),
                ]
            })
            .collect();
        html_table(&["rule", "hits before", "hits after"], &rest, &mut s);
        s.push_str("</details>");
    }
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

/// Clients named in a row of the services table.
const CLIENTS: usize = 5;

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
                let class = if line.breaks { " class=\"bad\"" } else { "" };
                let _ = write!(body, "<p{class}>{}</p>", esc(&line.text));
            }
            if c.evicted > 0 {
                let _ = write!(
                    body,
                    "<p>{} finished early to keep memory bounded (see the warnings).</p>",
                    plural(c.evicted, "connection", "connections")
                );
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
                esc(&escape_lines(report.request.as_deref().unwrap_or("-")))
            ),
        );
        kv("provider", esc(&format!("{:?}", report.provider)));
        let ctx = &report.context;
        kv("accounts", esc(&term(&ctx.accounts.join(", "))));
        kv("regions", esc(&term(&ctx.regions.join(", "))));
        kv("VPCs", esc(&term(&ctx.vpcs.join(", "))));
        let inputs = report
            .inputs
            .iter()
            .map(|i| {
                format!(
                    "<b>{}</b> ({})<br><small>{}</small>",
                    esc(&term(&i.name)),
                    esc(&i.kind),
                    esc(&escape_lines(&i.summary)).replace('\n', "<br>")
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
            let _ = write!(body, "<p class=\"note\">{}</p>", esc(&term(c)));
        }
        for w in &report.warnings {
            let _ = write!(body, "<p class=\"note\">⚠ {}</p>", esc(&term(w)));
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
                        .take(CLIENTS)
                        .map(|c| match &c.name {
                            Some(n) => format!("{} ({})", c.addr, term(n)),
                            None => c.addr.clone(),
                        })
                        .collect::<Vec<_>>()
                        .join(", ");
                    let listed = i.client_sample.len().min(CLIENTS);
                    if i.clients > listed as u64 {
                        let _ = write!(
                            sample,
                            ", … ({listed} of {}{} shown)",
                            i.clients,
                            if i.clients_exact { "" } else { "+" }
                        );
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
                    let mut cells = region_cells(row, &report.labels);
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
                    .map(|r| {
                        let group = report.labels.rule_group(r);
                        vec![
                            term(r.as_str()),
                            group.map_or_else(|| "-".into(), |g| group_label(g, &report.labels)),
                        ]
                    })
                    .collect();
                html_table_more(&["rule", "group"], &rows, top, &mut body);
            }
        }
        body.push_str("<h2>Rules revoked</h2>");
        let rows: Vec<Vec<String>> = report
            .revoked_rules
            .iter()
            .map(|r| rule_cells(r, &report.labels))
            .collect();
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

#[cfg(test)]
mod tests {
    use super::super::fixture::{report, revoke, sessions, state};
    use super::*;

    fn no_scripts(page: &str) {
        let lower = page.to_ascii_lowercase();
        for bad in ["<script", "javascript:", " onerror", " onload", " onclick"] {
            assert!(!lower.contains(bad), "{bad} in the page");
        }
    }

    /// Regression (review of 2026-12-07): the hits chart silently dropped the rules past
    /// the 40th, in the report's order.
    #[test]
    fn regression_hits_chart_says_k_of_n_and_lists_the_rest_most_changed_first() {
        let n = 45;
        let s = state(n, "web", "srv", "cli");
        let ports: Vec<u16> = (0..n as u16).map(|k| 1001 + k).collect();
        // Session K carries K+1 data packets each way: sgr-p44 changes most, sgr-p0 least.
        let data: Vec<usize> = (1..=n).collect();
        let r = report(&s, &revoke(n), &sessions(&ports, &data), -10);
        let page = html(&r);
        no_scripts(&page);
        let hits = page.split("<h2>Hits per rule</h2>").nth(1).unwrap();
        let hits = &hits[..hits.find("<h2>").unwrap_or(hits.len())];
        assert!(
            hits.contains("rules with hits, most changed first (40 of "),
            "{hits}"
        );
        let (chart, rest) = hits.split_once("</svg>").unwrap();
        assert!(rest.contains("<details><summary>"), "{rest}");
        assert!(rest.contains(" of "), "{rest}");
        // The most changed first in the chart; the least changed in the rest.
        let first = chart.find(">sgr-p44<").unwrap();
        let later = chart.find(">sgr-p10<").unwrap();
        assert!(first < later, "{chart}");
        assert!(!chart.contains(">sgr-p0<"), "{chart}");
        assert!(rest.contains("<td>sgr-p0</td>"), "{rest}");
        // Every rule with hits is somewhere.
        for h in r.rules.iter().filter(|h| h.before + h.after > 0) {
            let id = h.rule_id.as_str();
            assert!(
                chart.contains(&format!(">{id}<")) || rest.contains(&format!("<td>{id}</td>")),
                "{id}"
            );
        }
    }

    /// Regression (review of 2026-12-07): the header space's ENIs, the revoked rules'
    /// group and the rules without hits were shown by ID only.
    #[test]
    fn regression_html_names_beside_ids_escaped() {
        let s = state(2, "web<zz>", "srv\u{202e}", "cli");
        let r = report(&s, &revoke(1), &sessions(&[1001], &[2]), -10);
        let page = html(&r);
        no_scripts(&page);
        assert!(!page.contains("<zz>"), "unescaped name");
        let space = page.split("Header space that changes").nth(1).unwrap();
        assert!(
            space.contains("<td>srv\\u{202e} (eni-srv), cli (eni-cli)</td>"),
            "{space}"
        );
        let idle = page.split("<h2>Rules without hits</h2>").nth(1).unwrap();
        assert!(
            idle.contains("<td>sgr-p1</td><td>web&lt;zz&gt; (sg-web)</td>"),
            "{idle}"
        );
        let revoked = page.split("<h2>Rules revoked</h2>").nth(1).unwrap();
        assert!(
            revoked.contains("<td>sgr-p0</td><td>web&lt;zz&gt; (sg-web)</td>"),
            "{revoked}"
        );
    }
}
