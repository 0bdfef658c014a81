//! `sgsim demo` (and `sgsim` with no arguments): a built-in what-if on an embedded example.
//!
//! It compiles a small Alibaba-style state, revokes a rule through the live table, and
//! shows which packets change verdict and which rule decided before and after.

use super::Exit;
use sgsim::classify::live::{Change, Live};
use sgsim::classify::{Engine, Point};
use sgsim::compile::Config;
use sgsim::model::{Direction, Header, State};

const STATE: &str = include_str!("demo/state.json");
const REVOKE: &str = "sgr-web-ssh-block";

const PACKETS: [(&str, &str, Direction); 6] = [
    (
        "eni-web1",
        "tcp 203.0.113.66:50000 -> 192.168.1.10:22",
        Direction::Ingress,
    ),
    (
        "eni-web1",
        "tcp 203.0.113.7:50001 -> 192.168.1.10:22",
        Direction::Ingress,
    ),
    (
        "eni-web1",
        "tcp 198.51.100.9:50002 -> 192.168.1.10:443",
        Direction::Ingress,
    ),
    (
        "eni-db1",
        "tcp 192.168.1.11:50003 -> 192.168.2.20:3306",
        Direction::Ingress,
    ),
    (
        "eni-db1",
        "tcp 198.51.100.9:50004 -> 192.168.2.20:3306",
        Direction::Ingress,
    ),
    (
        "eni-web2",
        "tcp 192.168.1.10:50005 -> 192.168.1.11:8080",
        Direction::Ingress,
    ),
];

pub fn run() -> anyhow::Result<Exit> {
    let state: State = serde_json::from_str(STATE)?;
    let live = Live::new(state.clone(), Config::default())?;
    let mut queries = Vec::new();
    for (eni, text, direction) in PACKETS {
        let index = state
            .enis
            .iter()
            .position(|e| e.id.as_str() == eni)
            .ok_or_else(|| anyhow::anyhow!("demo ENI {eni} missing"))?;
        let header: Header = text.parse()?;
        queries.push((
            Point {
                eni: index as u32,
                direction,
            },
            header,
        ));
    }
    let before = live.snapshot();
    let mut verdicts_before = Vec::new();
    before.classify_batch(&queries, &mut verdicts_before);
    live.apply(Change::Revoke(vec![REVOKE.into()]))?;
    let after = live.snapshot();
    let mut verdicts_after = Vec::new();
    after.classify_batch(&queries, &mut verdicts_after);

    println!(
        "sgsim demo: what changes if rule {REVOKE} (drop ssh from 203.0.113.66) is revoked?\n"
    );
    println!(
        "{:<9} {:<46} {:<28} {:<28}",
        "ENI", "packet", "before", "after"
    );
    let mut changed = 0;
    for (i, (p, h)) in queries.iter().enumerate() {
        let b = before.name(verdicts_before[i]);
        let a = after.name(verdicts_after[i]);
        let mark = if b.action != a.action {
            changed += 1;
            "  <- changes"
        } else {
            ""
        };
        println!(
            "{:<9} {:<46} {:<28} {:<28}{mark}",
            state.enis[p.eni as usize].id,
            h.to_string(),
            b.to_string(),
            a.to_string()
        );
    }
    println!(
        "\n{changed} of {} packets change verdict. Revoking the drop lets the blocked host reach \
         ssh through the office /24 accept that it used to shadow at equal priority.",
        queries.len()
    );
    Ok(Exit::Ok)
}
