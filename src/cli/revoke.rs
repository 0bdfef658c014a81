//! `sgsim revoke` and `sgsim rules`.

use std::path::PathBuf;

use anyhow::Context as _;
use serde_json::{json, Value};

use super::{output, text_or_file, Exit};
use sgsim::model::State;
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
            super::warn(w);
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
    /// The action, for request files that do not name one (the AWS CLI's
    /// `--cli-input-json` files), e.g. RevokeSecurityGroupIngress.
    #[arg(long, value_name = "NAME")]
    action: Option<String>,
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

/// `--request` (a query string, a URL, a JSON object, or @FILE) as given and parsed, with
/// `--action` applied when given.
pub fn read_request(arg: &str, action: Option<&str>) -> anyhow::Result<(String, RawRequest)> {
    let text = text_or_file(arg)?;
    let mut request = RawRequest::parse(&text).context("--request")?;
    if let Some(action) = action {
        request = request.with_action(action).context("--action")?;
    }
    Ok((text, request))
}

pub fn run_revoke(args: RevokeArgs) -> anyhow::Result<Exit> {
    if let Some(out) = &args.out {
        output::check("--out", out)?;
    }
    let state = args.state.load()?;
    let (_, request) = read_request(&args.request, args.action.as_deref())?;
    let outcome = provider::revoke(&state, &request).context("--request")?;
    for w in &outcome.warnings {
        super::warn(w);
    }
    let format = args.format.map(|f| match f {
        FormatArg::Json => Format::Json,
        FormatArg::Xml => Format::Xml,
    });
    // The body echoes request values: its lines are printed with controls escaped.
    let body = outcome.body(format);
    println!(
        "{}",
        sgsim::term::escape_lines(&sgsim::term::json_safe(&body))
    );
    if outcome.error.is_some() {
        return Ok(Exit::ApiError);
    }
    if let Some(out) = &args.out {
        output::write(out, snapshot_json(&outcome.state)?.as_bytes())?;
    }
    Ok(Exit::Ok)
}

#[derive(clap::Args, Debug)]
pub struct RulesArgs {
    #[command(flatten)]
    state: StateArgs,
}

pub fn run_rules(args: RulesArgs) -> anyhow::Result<Exit> {
    let state = args.state.load()?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for rule in &state.rules {
        use std::io::Write;
        let line = provider::rule_json(&state, rule).to_string();
        writeln!(out, "{}", sgsim::term::json_safe(&line))?;
    }
    Ok(Exit::Ok)
}
