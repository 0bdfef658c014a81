//! `sgsim demo` (and `sgsim` with no arguments): what-ifs on bundled, realistic exports of
//! both clouds, printed as the human report.
//!
//! - AWS: the database group allows PostgreSQL both from the application subnets (by CIDR)
//!   and from the application group. The group rule looks redundant, but one application
//!   server lives in a newer subnet outside the CIDR.
//! - Alibaba: a drop rule on SSH looks redundant because basic groups deny inbound by
//!   default, but an accept-everything rule at priority 100 (added by an agent installer)
//!   sits behind it.

use std::io::IsTerminal;

use super::Exit;
use sgsim::provider::{self, RawRequest};
use sgsim::whatif::{self, render};

/// Synthetic packets judged per scenario.
const SYNTHETIC: usize = 20_000;

struct Scenario {
    title: &'static str,
    story: &'static str,
    exports: &'static [(&'static str, &'static str)],
    request: &'static str,
}

const SCENARIOS: [Scenario; 2] = [
    Scenario {
        title: "AWS: drop the 'redundant' group rule on the database",
        story:
            "shop-db allows 5432 from the app subnets 10.20.0.0/16 and from the shop-app group. \
                The group rule looks redundant, so it is revoked by ID.",
        exports: &[
            (
                "aws/security-groups.json",
                include_str!("demo/aws/security-groups.json"),
            ),
            (
                "aws/security-group-rules.json",
                include_str!("demo/aws/security-group-rules.json"),
            ),
            (
                "aws/network-interfaces.json",
                include_str!("demo/aws/network-interfaces.json"),
            ),
            ("aws/vpcs.json", include_str!("demo/aws/vpcs.json")),
            (
                "aws/instances.json",
                include_str!("demo/aws/instances.json"),
            ),
            (
                "aws/prefix-list-vpn.json",
                include_str!("demo/aws/prefix-list-vpn.json"),
            ),
        ],
        request: include_str!("demo/aws/revoke.txt"),
    },
    Scenario {
        title: "Alibaba: remove the 'redundant' SSH deny on the web servers",
        story: "shop-web drops SSH from 0.0.0.0/0 at priority 2. Basic groups deny inbound by \
                default, so the drop looks redundant and is revoked with its exact parameters.",
        exports: &[
            (
                "aliyun/describe-security-groups.json",
                include_str!("demo/aliyun/describe-security-groups.json"),
            ),
            (
                "aliyun/sg-web.json",
                include_str!("demo/aliyun/sg-web.json"),
            ),
            (
                "aliyun/sg-ops.json",
                include_str!("demo/aliyun/sg-ops.json"),
            ),
            (
                "aliyun/describe-network-interfaces.json",
                include_str!("demo/aliyun/describe-network-interfaces.json"),
            ),
        ],
        request: include_str!("demo/aliyun/revoke.txt"),
    },
];

pub fn run() -> anyhow::Result<Exit> {
    let colour = std::io::stdout().is_terminal();
    for (i, s) in SCENARIOS.iter().enumerate() {
        let docs = s
            .exports
            .iter()
            .map(|(name, text)| Ok((name.to_string(), serde_json::from_str(text)?)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let state = provider::import_values(&docs)?.state;
        let request = RawRequest::parse(s.request)?;
        let mut plan = whatif::plan(&state, &request)?;
        plan.report.request = Some(s.request.trim().to_string());
        let config = sgsim::whatif::traffic::Config::default()
            .with_partitions((rayon::current_num_threads() * 4).max(1));
        super::whatif::judge_traffic(
            &mut plan,
            &state,
            &[],
            Default::default(),
            Some((SYNTHETIC, 7)),
            config,
        )?;
        if i > 0 {
            println!("\n{}\n", "=".repeat(78));
        }
        println!("Scenario {}: {}\n{}\n", i + 1, s.title, s.story);
        println!("Request: {}", s.request.trim());
        println!("Traffic: {SYNTHETIC} synthetic packets: sessions opened by packets aimed at the rules (seed 7)\n");
        print!("{}", render::text(&plan.report, colour));
    }
    println!(
        "\nTry it on your own exports: sgsim whatif --state DIR --request @revoke.txt [--html report.html]"
    );
    Ok(Exit::Ok)
}
