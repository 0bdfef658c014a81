//! The data-driven behaviour suite (`tests/data/suite/*.json`, format in its README), run
//! against every engine path: reference, compiled, rayon batch, and a live table after a swap.

use std::path::PathBuf;

use serde::Deserialize;
use sgsim::classify::reference::Reference;
use sgsim::classify::{By, Decision, Engine, Point};
use sgsim::compile::live::{Change, Live};
use sgsim::compile::{compile, Config};
use sgsim::model::{
    Action, Cidr, Direction, Family, Header, Peer, PortRange, Priority, Protocol, Rule, State,
};

#[derive(Deserialize)]
struct Case {
    at: String,
    packet: String,
    expect: String,
    #[serde(default)]
    why: Option<String>,
}

#[derive(Deserialize)]
struct Scenario {
    #[allow(dead_code)]
    description: String,
    state: State,
    cases: Vec<Case>,
}

struct Loaded {
    file: String,
    state: State,
    queries: Vec<(Point, Header)>,
    cases: Vec<Case>,
}

fn load() -> Vec<Loaded> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/suite");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let file = path.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            let mut s: Scenario =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
            // As `--state` reads a snapshot (provider::import_values).
            s.state.normalize();
            let queries = s
                .cases
                .iter()
                .map(|c| {
                    let (eni, dir) = c.at.split_once(' ').expect("at: 'ENI direction'");
                    let eni = s
                        .state
                        .enis
                        .iter()
                        .position(|e| e.id.as_str() == eni)
                        .unwrap_or_else(|| panic!("{file}: unknown ENI {eni}"));
                    let direction = match dir {
                        "ingress" => Direction::Ingress,
                        "egress" => Direction::Egress,
                        other => panic!("{file}: bad direction {other}"),
                    };
                    let header: Header = c.packet.parse().unwrap_or_else(|e| panic!("{file}: {e}"));
                    (
                        Point {
                            eni: eni as u32,
                            direction,
                        },
                        header,
                    )
                })
                .collect();
            Loaded {
                file,
                state: s.state,
                queries,
                cases: s.cases,
            }
        })
        .collect()
}

/// Runs every scenario through `judge` (which returns the named verdicts of the queries in
/// order) and fails with every disagreement listed.
fn run(engine: &str, judge: impl Fn(&Loaded) -> Vec<String>) {
    let scenarios = load();
    let total: usize = scenarios.iter().map(|s| s.cases.len()).sum();
    assert!(
        scenarios.len() >= 5 && total >= 60,
        "the suite shrank: {total} cases"
    );
    let mut failures = Vec::new();
    for s in &scenarios {
        let got = judge(s);
        assert_eq!(got.len(), s.cases.len());
        for (case, got) in s.cases.iter().zip(got) {
            if got != case.expect {
                failures.push(format!(
                    "{} [{}] {} at {}: expected '{}', got '{}'{}",
                    s.file,
                    engine,
                    case.packet,
                    case.at,
                    case.expect,
                    got,
                    case.why
                        .as_ref()
                        .map(|w| format!(" ({w})"))
                        .unwrap_or_default()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// The table's verdicts on the scenario's queries, judged as a batch, after checking that
/// one at a time they are the same.
fn batch_and_one_by_one(s: &Loaded, t: &sgsim::compile::Table) -> Vec<String> {
    let mut out = Vec::new();
    t.classify_batch(&s.queries, &mut out);
    let one: Vec<_> = s.queries.iter().map(|(p, h)| t.classify(*p, h)).collect();
    assert_eq!(one, out, "{}: one at a time != batch", s.file);
    names(t, out)
}

fn names(engine: &impl Engine, verdicts: Vec<sgsim::classify::Verdict>) -> Vec<String> {
    verdicts
        .into_iter()
        .map(|v| engine.name(v).to_string())
        .collect()
}

#[test]
fn suite_reference() {
    run("reference", |s| {
        let r = Reference::new(&s.state).unwrap();
        let mut out = Vec::new();
        r.classify_batch(&s.queries, &mut out);
        names(&r, out)
    });
}

#[test]
fn suite_compiled() {
    run("compiled", |s| {
        let t = compile(&s.state, &Config::default()).unwrap();
        let mut out = Vec::new();
        t.classify_batch(&s.queries, &mut out);
        names(&t, out)
    });
}

#[test]
fn suite_compiled_tiny_leaves() {
    // Leaves of one rule force the deepest trees: every cut must be right.
    run("compiled leaf_size=1", |s| {
        let mut config = Config::default();
        config.leaf_size = 1;
        let t = compile(&s.state, &config).unwrap();
        let mut out = Vec::new();
        t.classify_batch(&s.queries, &mut out);
        names(&t, out)
    });
}

#[test]
fn suite_compiled_trees_from_blocks() {
    // Every tree whose rules allow it starts from a table of address blocks, however few
    // rules it has.
    let used = std::sync::atomic::AtomicUsize::new(0);
    run("compiled trees from blocks", |s| {
        let mut config = Config::default();
        config.blocks_min_filters = 0;
        let t = compile(&s.state, &config).unwrap();
        used.fetch_add(
            t.index_summary().block_trees,
            std::sync::atomic::Ordering::Relaxed,
        );
        batch_and_one_by_one(s, &t)
    });
    // The forced index was used (a tree qualifies when its rules fall in distinct blocks).
    assert!(used.into_inner() > 0, "no tree started from blocks");
}

/// Units of a scenario whose IPv4 rules are surely in a unit's tables when tables are
/// forced: a group and direction with a rule whose peer is an IPv4 block.
fn units_with_ipv4_blocks(s: &Loaded) -> usize {
    let mut units = std::collections::HashSet::new();
    for r in &s.state.rules {
        if let Peer::Cidr { cidr } = &r.remote {
            let v4 = |c: &Cidr| c.family() == Family::V4;
            if v4(cidr) && r.local.as_ref().is_none_or(v4) {
                units.insert((r.group.clone(), r.direction));
            }
        }
    }
    units.len()
}

#[test]
fn suite_compiled_cross_product_tables() {
    // Every unit's IPv4 rules in cross-product tables, however few they are.
    run("compiled cross-product tables", |s| {
        let mut config = Config::default();
        config.cross_min_filters = 0;
        config.cross_alone_only = false;
        let t = compile(&s.state, &config).unwrap();
        // The forced index was used: every unit with IPv4 filters has tables.
        assert!(
            t.index_summary().cross_product_tables >= units_with_ipv4_blocks(s),
            "{}: {:?}",
            s.file,
            t.index_summary()
        );
        batch_and_one_by_one(s, &t)
    });
}

#[test]
fn suite_compiled_split_tables() {
    // Every unit's IPv4 rules in cross-product tables whose last phase is split: address
    // lists intersected with service bitsets.
    run("compiled split tables", |s| {
        let mut config = Config::default();
        config.cross_min_filters = 0;
        config.cross_alone_only = false;
        config.cross_product_tail = false;
        let t = compile(&s.state, &config).unwrap();
        let summary = t.index_summary();
        assert_eq!(
            summary.split_tables, summary.cross_product_tables,
            "{}",
            s.file
        );
        // The forced index was used (regression: this passed with both counts 0).
        assert!(
            summary.split_tables >= units_with_ipv4_blocks(s),
            "{}: {summary:?}",
            s.file
        );
        batch_and_one_by_one(s, &t)
    });
}

#[test]
fn suite_parallel() {
    run("rayon", |s| {
        let t = compile(&s.state, &Config::default()).unwrap();
        // Repeat the queries so the batch spans several rayon chunks.
        let many: Vec<_> = s
            .queries
            .iter()
            .cycle()
            .take(s.queries.len() * 1000)
            .copied()
            .collect();
        let out = t.classify_par(&many);
        let n = s.queries.len();
        for (i, chunk) in out.chunks(n).enumerate() {
            assert_eq!(chunk, &out[..n], "{}: repetition {i} differs", s.file);
        }
        // A reused output holding a longer batch, then a shorter one, is overwritten.
        let mut reused = out.clone();
        t.classify_par_into(&s.queries, &mut reused);
        assert_eq!(reused, out[..n], "{}: shrunk output", s.file);
        t.classify_par_into(&many, &mut reused);
        assert_eq!(reused, out, "{}: regrown output", s.file);
        names(&t, out[..n].to_vec())
    });
}

/// A drop-everything rule per group and direction, at a priority above every real rule.
fn decoys(state: &State) -> Vec<Rule> {
    let mut out = Vec::new();
    for g in &state.groups {
        for direction in Direction::BOTH {
            for (family, any) in [("4", Cidr::ANY_V4), ("6", Cidr::ANY_V6)] {
                out.push(Rule {
                    id: format!("decoy-{}-{}-{family}", g.id, direction).into(),
                    group: g.id.clone(),
                    direction,
                    action: Action::Drop,
                    priority: Priority(0),
                    protocol: Protocol::Any,
                    src_ports: PortRange::ANY,
                    dst_ports: PortRange::ANY,
                    remote: Peer::cidr(any),
                    local: None,
                    description: None,
                    attrs: Default::default(),
                });
            }
        }
    }
    out
}

#[test]
fn suite_live_after_swap() {
    run("live swap", |s| {
        let mut with_decoys = s.state.clone();
        let decoys = decoys(&s.state);
        let ids: Vec<_> = decoys.iter().map(|r| r.id.clone()).collect();
        // Decoys go first in state order: they must win everything before the swap but
        // Alibaba's inner access, which comes before every rule.
        with_decoys.rules.splice(0..0, decoys);
        let live = Live::new(with_decoys, Config::default()).unwrap();
        let before = live.snapshot();
        let mut out = Vec::new();
        before.classify_batch(&s.queries, &mut out);
        assert!(
            out.iter()
                .all(|v| v.action == Decision::Drop || matches!(v.by, By::InnerAccess(_))),
            "{}: decoys must drop everything before the swap",
            s.file
        );
        live.apply(Change::Revoke(ids)).unwrap();
        let after = live.snapshot();
        assert_eq!(
            live.state(),
            s.state,
            "revoking the decoys restores the state"
        );
        after.classify_batch(&s.queries, &mut out);
        names(&*after, out)
    });
}
