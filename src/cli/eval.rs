//! `sgsim eval`: judge traffic against a state, one JSON object per packet and point.

use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use serde_json::{json, Map, Value};

use super::packets::{check_usable, for_each_chunk, open_in, print_warnings, progress, WindowArgs};
use super::revoke::StateArgs;
use super::Exit;
use sgsim::classify::By;
use sgsim::compile::{compile, Config};
use sgsim::model::{Action, State};
use sgsim::packet::Item;
use sgsim::track::{self, Evaluator, Outcome};

#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    #[command(flatten)]
    pub state: StateArgs,
    /// A capture, a flow log (text, `.gz`, Parquet, CSV, JSON lines), a folder of them or an
    /// s3:// URL.
    #[arg(long, value_name = "PATH")]
    pub traffic: PathBuf,
    #[command(flatten)]
    pub window: WindowArgs,
    /// Judge only at this ENI.
    #[arg(long, value_name = "ID", conflicts_with = "ip")]
    pub eni: Option<String>,
    /// Judge only at the ENI that owns this address.
    #[arg(long, value_name = "ADDR")]
    pub ip: Option<IpAddr>,
    /// Evaluate on one thread (the parallel path gives the same result).
    #[arg(long)]
    pub sequential: bool,
    /// Judge every packet or record by the rules alone, without connection state (no
    /// `established` verdicts).
    #[arg(long)]
    pub stateless: bool,
    /// Items per evaluation chunk (read ahead while the previous one is judged; three
    /// chunks are held at most, so at most 2^18).
    #[arg(long, default_value_t = 16384, value_name = "N",
          value_parser = super::count(1, 1 << 18))]
    pub chunk: usize,
    /// Treat a malformed flow-log line as an error (exit 2) instead of a counted skip
    /// (rows of Parquet row groups that --since/--until leave unread are not looked at).
    #[arg(long)]
    pub strict: bool,
    /// The most tracked connections held (then the least recently seen are evicted and
    /// counted in the summary as `evicted_flows`).
    #[arg(long, default_value_t = track::MAX_FLOWS, value_name = "N",
          value_parser = super::count(1, 1 << 28))]
    pub max_flows: usize,
}

fn outcome_json(
    table: &sgsim::compile::Table,
    state: &State,
    o: &Outcome,
    item: Option<&Item>,
) -> Value {
    let rule = match (o.established, o.verdict.by) {
        (false, By::Rule(r) | By::Unresolved(r)) => table.rules().get(r as usize),
        _ => None,
    };
    let mut v = json!({
        "index": o.index,
        "eni": table.enis().get(o.point.eni as usize).map(|e| e.to_string()),
        "direction": o.point.direction.as_str(),
        "verdict": o.action().as_str(),
        "rule_id": rule.map(|r| r.to_string()),
        "reason": o.reason(),
    });
    if let Value::Object(m) = &mut v {
        if let Some(d) = o.detail() {
            m.insert("detail".into(), json!(d));
        }
        let header = match item {
            Some(Item::Packet(p)) => Some(&p.header),
            Some(Item::Flow(r)) => Some(&r.header),
            None => None,
        };
        if let (By::Unresolved(_), false, Some(h)) = (o.verdict.by, o.established, header) {
            // The table was compiled from `state`: its rule indexes are the state's.
            let mut refs: Vec<String> = table
                .unresolved(o.point, h)
                .into_iter()
                .filter_map(|r| state.rules.get(r as usize))
                .map(|r| State::reference_name(&r.remote))
                .collect();
            refs.dedup();
            m.insert("unresolved".into(), json!(refs));
        }
        if let (By::UnloggedIcmp, false) = (o.verdict.by, o.established) {
            m.insert("unresolved".into(), json!(["icmp-type"]));
        }
        if let Some(Item::Flow(r)) = item {
            if let Some(a) = r.action {
                m.insert(
                    "logged".into(),
                    json!(if a == Action::Accept {
                        "ACCEPT"
                    } else {
                        "REJECT"
                    }),
                );
            }
        }
    }
    v
}

pub fn run(args: EvalArgs) -> anyhow::Result<Exit> {
    let state = args.state.load()?;
    let table = compile(&state, &Config::default()).context("--state")?;
    for w in table.warnings() {
        super::warn(w);
    }
    let only = match (&args.eni, args.ip) {
        (Some(id), _) => Some(
            state
                .enis
                .iter()
                .position(|e| e.id.as_str() == id)
                .ok_or_else(|| anyhow::anyhow!("--eni {id}: no such ENI in the state"))?
                as u32,
        ),
        (None, Some(ip)) => Some(
            table
                .eni_of(ip)
                .ok_or_else(|| anyhow::anyhow!("--ip {ip}: no ENI of the state owns it"))?,
        ),
        (None, None) => None,
    };
    let mut config = track::Config::default();
    config.only = only;
    config.partitions = if args.sequential {
        1
    } else {
        (rayon::current_num_threads() * 4).max(1)
    };
    config.stateless = args.stateless;
    config.max_flows = args.max_flows;
    let mut evaluator = Evaluator::new(&table, &state, config).context("--state")?;
    let (mut source, len) = open_in(&args.traffic, args.window.options(args.strict)?)?;
    let bar = progress(len);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let read = for_each_chunk(&mut source, &args.traffic, args.chunk, &bar, |chunk| {
        for o in evaluator.eval(chunk) {
            let item = chunk
                .binary_search_by_key(&o.index, |i| i.index())
                .ok()
                .map(|i| &chunk[i]);
            let line = outcome_json(&table, &state, &o, item).to_string();
            writeln!(out, "{}", sgsim::term::json_safe(&line))?;
        }
        Ok(())
    });
    out.flush()?;
    bar.finish_and_clear();
    print_warnings(&source);
    let s = evaluator.stats();
    let mut rules = Map::new();
    for (i, hits) in s.rule_hits.iter().enumerate() {
        if *hits > 0 {
            if let Some(id) = table.rules().get(i) {
                rules.insert(id.to_string(), json!(hits));
            }
        }
    }
    let decode = source.summary();
    super::note_read(&args.traffic, &source);
    let summary = json!({
        "summary": {
            "packets": s.items,
            "evaluations": s.evaluations,
            "accepted": s.accepted,
            "dropped": s.dropped,
            "unknown": s.unknown,
            "established": s.established,
            "unmatched_eni": s.unmatched,
            "orphan_fragments": s.orphan_fragments,
            "evicted_flows": s.evicted,
            "rules": rules,
            "decode": {
                "records": decode.records,
                "decoded": decode.decoded,
                "skipped": decode.skipped,
            },
        }
    });
    eprintln!("{}", sgsim::term::json_safe(&summary.to_string()));
    read?;
    check_usable(&source, &args.traffic)?;
    Ok(Exit::Ok)
}
