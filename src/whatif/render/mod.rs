//! Renders a what-if [`Report`] for people: a terminal report (optionally coloured) and a
//! self-contained HTML page with tables and SVG charts.
//!
//! # Files
//!
//! - `mod.rs`: re-exports the two entry points, [`text`] and [`html`].
//! - `cells.rs`: what both say: table cells, labels for ENIs, groups, clients, addresses and
//!   ports, and the sentences a report opens with.
//! - `text.rs`: the terminal report: colours and padded tables.
//! - `html.rs`: the HTML page: tables, SVG charts and its style sheet.
//!
//! [`Report`]: crate::whatif::report::Report

mod cells;
mod html;
mod text;

pub use html::html;
pub use text::text;

/// Reports for the renderers' tests: an AWS server with one service per revoked rule, and
/// TCP sessions to them.
#[cfg(test)]
pub(crate) mod fixture {
    use crate::model::{Header, State};
    use crate::packet::{Item, Packet, Transport};
    use crate::provider::RawRequest;
    use crate::whatif::report::Report;
    use crate::whatif::traffic::{Config, Judge, Run};

    const S: u64 = 1_000_000_000;
    /// 2026-12-06T10:00:00Z.
    const T0: u64 = 1_796_551_200 * S;

    /// AWS: group `sg-web` named `group` on the server `eni-srv` (10.0.0.1, named `eni`)
    /// and on the client `eni-cli` (10.0.0.9, named `client`); rule `sgr-pK` allows TCP
    /// port 1001+K from 10.0.0.0/8 for K < `rules`; `sgr-out` allows everything out.
    pub(crate) fn state(rules: usize, group: &str, eni: &str, client: &str) -> State {
        let mut list: Vec<serde_json::Value> = (0..rules)
            .map(|k| {
                serde_json::json!({"id": format!("sgr-p{k}"), "group": "sg-web",
                    "direction": "ingress", "action": "accept", "protocol": "tcp",
                    "dst_ports": (1001 + k).to_string(), "remote": {"cidr": "10.0.0.0/8"}})
            })
            .collect();
        list.push(serde_json::json!({"id": "sgr-out", "group": "sg-web",
            "direction": "egress", "action": "accept", "protocol": "all",
            "remote": {"cidr": "0.0.0.0/0"}}));
        serde_json::from_value(serde_json::json!({
            "groups": [{"id": "sg-web", "provider": "aws", "name": group}],
            "rules": list,
            "enis": [
                {"id": "eni-srv", "ips": ["10.0.0.1"], "groups": ["sg-web"],
                 "attrs": {"Name": eni}},
                {"id": "eni-cli", "ips": ["10.0.0.9"], "groups": ["sg-web"],
                 "attrs": {"Name": client}}
            ]
        }))
        .unwrap()
    }

    /// The revoke of `sgr-p0` … `sgr-p{n-1}`.
    pub(crate) fn revoke(n: usize) -> String {
        let mut r = "Action=RevokeSecurityGroupIngress&GroupId=sg-web".to_string();
        for k in 0..n {
            r.push_str(&format!("&SecurityGroupRuleId.{}=sgr-p{k}", k + 1));
        }
        r
    }

    fn packet(index: u64, ts_ns: u64, text: &str, flags: u8) -> Item {
        let header: Header = text.parse().unwrap();
        Item::Packet(Packet {
            index,
            ts_ns,
            header,
            wire_len: 60,
            cap_len: 60,
            transport: Transport::of(&header, flags),
            fragment: None,
            interface: 0,
        })
    }

    /// One TCP session from 10.0.0.9 to each port in `ports`, with `data[i]` data
    /// packets each way, from T0 to T0 + 8 s.
    pub(crate) fn sessions(ports: &[u16], data: &[usize]) -> Vec<Item> {
        let mut raw: Vec<(u64, String, u8)> = Vec::new();
        for (i, &port) in ports.iter().enumerate() {
            let c2s = format!("tcp 10.0.0.9:{} -> 10.0.0.1:{port}", 40000 + i);
            let s2c = format!("tcp 10.0.0.1:{port} -> 10.0.0.9:{}", 40000 + i);
            let t = |ms: u64| T0 + ms * 1_000_000 + i as u64 * 1000;
            raw.push((t(0), c2s.clone(), 0x02));
            raw.push((t(100), s2c.clone(), 0x12));
            raw.push((t(200), c2s.clone(), 0x10));
            for d in 0..data.get(i).copied().unwrap_or(1) as u64 {
                raw.push((t(5000 + d * 10), c2s.clone(), 0x18));
                raw.push((t(5005 + d * 10), s2c.clone(), 0x10));
            }
            raw.push((t(7000), c2s.clone(), 0x11));
            raw.push((t(7100), s2c.clone(), 0x11));
            raw.push((t(7200), c2s, 0x10));
        }
        raw.sort_by_key(|r| r.0);
        raw.iter()
            .enumerate()
            .map(|(i, (ts, text, flags))| packet(i as u64, *ts, text, *flags))
            .collect()
    }

    /// The what-if of `request` on `items`, the revoke landing `at` seconds after T0
    /// (sessions open then survive; before T0 every session is new and breaks), labelled
    /// as the binary labels it.
    pub(crate) fn report(state: &State, request: &str, items: &[Item], at: i64) -> Report {
        let mut plan = crate::whatif::plan(state, &RawRequest::parse(request).unwrap()).unwrap();
        if plan.report.error.is_some() {
            return plan.report;
        }
        let config = Config::default().with_at(Some((T0 as i64 + at * S as i64) as u64));
        let judge = Judge::new(state, &plan.outcome.state, config).unwrap();
        let mut run = Run::new(&judge);
        run.feed(items);
        run.finish(&mut plan.report, state);
        plan.report.label(state);
        plan.report
    }
}
