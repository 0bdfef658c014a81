//! The terminal report, optionally coloured.

use std::fmt::Write as _;

use super::cells::{
    eni_label, family, flow_cells, groups_label, lead, plural, pretty, region_cells, rows,
    rule_cells, rule_label, term, who, RULE_COLUMNS,
};
use crate::classify::Decision;
use crate::whatif::report::Report;

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
        // `pretty` escapes each line; its line feeds stay line feeds.
        let _ = writeln!(out, "\nResponse:\n{}", pretty(&report.response));
        return out;
    }
    let c = &report.connections;
    if c.total > 0 {
        let _ = writeln!(out);
        for line in lead(report) {
            let painted = if line.breaks {
                st.red(&line.text)
            } else {
                line.text
            };
            let _ = writeln!(out, "{}", st.bold(&painted));
        }
        let _ = writeln!(
            out,
            "  connections: {} judged, {} broken ({} packets, {} bytes lost), {} surviving, {} restored, {} unknown",
            c.total, c.broken, c.packets_broken, c.bytes_broken, c.surviving, c.restored, c.unknown
        );
        if c.evicted > 0 {
            let _ = writeln!(
                out,
                "  {} finished early to keep memory bounded (see the warnings)",
                plural(c.evicted, "connection", "connections")
            );
        }
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
            .map(|r| rule_cells(r, &report.labels))
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
                let mut cells = region_cells(row, &report.labels);
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
            "\n{}\n  {} judged; accepted {} before, {} after; {}, {}{}",
            st.bold("Packets"),
            plural(p.judged, "packet", "packets"),
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
                    .map(|r| rule_label(r, &report.labels))
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

#[cfg(test)]
mod tests {
    use super::super::fixture::{report, revoke, sessions, state};
    use super::*;

    /// No control or format character but line feeds.
    fn clean(text: &str) -> bool {
        !text.chars().any(|c| crate::term::is_unsafe(c) && c != '\n')
    }

    /// Regression (review of 2026-12-07): the error response of a rejected revoke was
    /// printed as one line with literal `\n`s (escaped twice).
    #[test]
    fn regression_rejected_revoke_prints_the_error_response_as_lines() {
        let s = state(1, "web", "srv", "cli");
        let r = report(
            &s,
            "Action=RevokeSecurityGroupEgress&GroupId=sg-web&SecurityGroupRuleId.1=sgr-no\x1bpe",
            &[],
            0,
        );
        assert!(r.error.is_some(), "{:?}", r.response);
        let out = text(&r, false);
        let response = out.split("\nResponse:\n").nth(1).expect(&out);
        assert!(response.lines().count() > 3, "{out}");
        assert!(!response.contains("\\n"), "{out}");
        assert!(response.trim_start().starts_with('{'), "{out}");
        assert!(clean(&out), "{out}");
        let back: serde_json::Value = serde_json::from_str(response).expect(response);
        assert_eq!(back, r.response);
    }

    /// Regression (review of 2026-12-07): the header space's ENIs, the revoked rules'
    /// group and the rules without hits were shown by ID only.
    #[test]
    fn regression_names_beside_ids_in_header_space_revoked_rules_and_rules_without_hits() {
        let s = state(2, "web\x1b[31m", "srv", "cli");
        let r = report(&s, &revoke(1), &sessions(&[1001], &[2]), -10);
        let out = text(&r, false);
        assert!(clean(&out), "{out}");
        let web = "web\\x1b[31m (sg-web)";
        let rules = out.split("Rules revoked").nth(1).expect(&out);
        assert!(
            rules
                .lines()
                .nth(2)
                .is_some_and(|l| l.contains(&format!("sgr-p0  {web}"))),
            "{out}"
        );
        let space = out.split("Header space").nth(1).expect(&out);
        assert!(space.contains("srv (eni-srv), cli (eni-cli)"), "{out}");
        let idle = out
            .lines()
            .find(|l| l.starts_with("Rules with no hits"))
            .expect(&out);
        assert!(idle.contains(&format!("sgr-p1 in {web}")), "{idle}");
        // The client's egress rule decided its packets at its own ENI: it has hits.
        assert!(!idle.contains("sgr-out"), "{idle}");
    }

    /// Regression (review of 2026-12-07): bidirectional overrides and zero-width
    /// characters in names from the exports reached the terminal as they were.
    #[test]
    fn regression_bidi_characters_in_names_are_escaped_in_the_text_report() {
        let s = state(1, "w\u{202e}eb", "s\u{200b}rv\u{2066}", "c\u{feff}li");
        let r = report(&s, &revoke(1), &sessions(&[1001], &[1]), -10);
        let out = text(&r, false);
        assert!(clean(&out), "{out}");
        assert!(out.contains("w\\u{202e}eb (sg-web)"), "{out}");
        assert!(out.contains("s\\u{200b}rv\\u{2066} (eni-srv)"), "{out}");
    }

    /// Regression (review of 2026-12-07): "1 connection … break", "1 connection depend
    /// on …", "1 connection … survive".
    #[test]
    fn regression_the_summary_agrees_with_one_connection() {
        let s = state(1, "web", "srv", "cli");
        let broken = text(
            &report(&s, &revoke(1), &sessions(&[1001], &[1]), -10),
            false,
        );
        assert!(
            broken
                .contains("1 connection from 1 web host (cli) to srv (eni-srv) 1001/tcp breaks ("),
            "{broken}"
        );
        let mut open = report(&s, &revoke(1), &sessions(&[1001], &[1]), 3);
        assert_eq!(open.connections.surviving, 1, "{:?}", open.connections);
        open.connections.unknown = 1;
        let out = text(&open, false);
        assert!(
            out.contains("1 connection to srv (eni-srv) 1001/tcp already open when the revoke lands survives until idle"),
            "{out}"
        );
        assert!(
            out.contains(
                "1 connection depends on references the exports do not resolve: its fate is unknown."
            ),
            "{out}"
        );
        for wrong in [" break (", "depend on", "lands survive "] {
            assert!(
                !out.contains(wrong) && !broken.contains(wrong),
                "{wrong}: {out}"
            );
        }
    }
}
