//! `sgsim revoke` and `sgsim rules`.

use std::path::PathBuf;

use anyhow::Context as _;
use serde_json::{json, Value};

use super::{text_or_file, write_atomic, Exit};
use sgsim::model::{IcmpSel, Peer, Provider, Rule, State};
use sgsim::provider::{self, Format, RawRequest};

#[derive(clap::Args, Debug)]
pub struct StateArgs {
    /// Provider exports or an sgsim snapshot: a file or a folder of .json files (repeatable).
    #[arg(long = "state", required = true, value_name = "PATH")]
    pub state: Vec<PathBuf>,
}

impl StateArgs {
    /// Imports the state, printing import warnings on stderr.
    pub fn load(&self) -> anyhow::Result<State> {
        let imported = provider::import_paths(&self.state)?;
        for w in &imported.warnings {
            eprintln!("sgsim: warning: {w}");
        }
        Ok(imported.state)
    }
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum FormatArg {
    Json,
    Xml,
}

#[derive(clap::Args, Debug)]
pub struct RevokeArgs {
    #[command(flatten)]
    state: StateArgs,
    /// The request: a query string, a URL, a JSON object, or @FILE.
    #[arg(long, value_name = "REQ")]
    request: String,
    /// Write the state after the revoke here, as an sgsim snapshot (nothing is written when
    /// the API would answer with an error).
    #[arg(long, value_name = "SNAPSHOT")]
    out: Option<PathBuf>,
    /// Response format (default: the provider's, XML for AWS and JSON for Alibaba).
    #[arg(long, value_enum)]
    format: Option<FormatArg>,
}

/// The snapshot text of a state.
pub fn snapshot_json(state: &State) -> anyhow::Result<String> {
    let mut v = serde_json::to_value(state)?;
    if let Value::Object(o) = &mut v {
        o.insert("sgsim_snapshot".into(), json!(1));
    }
    Ok(serde_json::to_string_pretty(&v)?)
}

pub fn run_revoke(args: RevokeArgs) -> anyhow::Result<Exit> {
    let state = args.state.load()?;
    let text = text_or_file(&args.request)?;
    let request = RawRequest::parse(&text).context("--request")?;
    let outcome = provider::revoke(&state, &request).context("--request")?;
    for w in &outcome.warnings {
        eprintln!("sgsim: warning: {w}");
    }
    let format = args.format.map(|f| match f {
        FormatArg::Json => Format::Json,
        FormatArg::Xml => Format::Xml,
    });
    println!("{}", outcome.body(format));
    if outcome.error.is_some() {
        return Ok(Exit::ApiError);
    }
    if let Some(out) = &args.out {
        write_atomic(out, snapshot_json(&outcome.state)?.as_bytes())?;
    }
    Ok(Exit::Ok)
}

#[derive(clap::Args, Debug)]
pub struct RulesArgs {
    #[command(flatten)]
    state: StateArgs,
}

/// A rule as the `sgsim rules` contract prints it.
pub fn rule_json(state: &State, rule: &Rule) -> Value {
    let provider = state.group(&rule.group).map(|g| g.provider);
    let (from, to) = if rule.protocol.is_icmp() {
        let sel = IcmpSel::from_ranges(rule.src_ports, rule.dst_ports).unwrap_or_default();
        (sel.ty.map_or(-1, i64::from), sel.code.map_or(-1, i64::from))
    } else if rule.dst_ports.is_any() && !rule.protocol.has_ports() {
        (-1, -1)
    } else {
        (
            i64::from(rule.dst_ports.lo()),
            i64::from(rule.dst_ports.hi()),
        )
    };
    let peer = match &rule.remote {
        Peer::Cidr { cidr } => json!({ "cidr": cidr.to_string() }),
        Peer::Group { group_id, owner } => json!({ "group_id": group_id, "owner": owner }),
        Peer::PrefixList { prefix_list_id } => json!({ "prefix_list_id": prefix_list_id }),
    };
    let mut v = json!({
        "group_id": rule.group,
        "direction": rule.direction.as_str(),
        "rule_id": rule.id,
        "protocol": rule.protocol.to_string(),
        "from_port": from,
        "to_port": to,
        "peer": peer,
        "policy": rule.action.as_str(),
        "priority": rule.priority.0,
        "description": rule.description,
        "provider": provider,
    });
    if let Value::Object(o) = &mut v {
        if !rule.src_ports.is_any() && !rule.protocol.is_icmp() {
            o.insert("src_ports".into(), json!(rule.src_ports.to_string()));
        }
        if let Some(local) = &rule.local {
            o.insert("local".into(), json!(local.to_string()));
        }
        if provider == Some(Provider::Aws) {
            o.remove("priority");
            o.insert("priority".into(), Value::Null);
        }
    }
    v
}

pub fn run_rules(args: RulesArgs) -> anyhow::Result<Exit> {
    let state = args.state.load()?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for rule in &state.rules {
        use std::io::Write;
        writeln!(out, "{}", rule_json(&state, rule))?;
    }
    Ok(Exit::Ok)
}
