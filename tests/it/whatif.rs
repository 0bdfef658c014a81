//! What-if: the header-space diff of a revoke equals brute-force evaluation.

use proptest::prelude::*;
use sgsim::classify::reference::Reference;

use sgsim::classify::{Decision, Engine, Named, Point, Semantics};
use sgsim::model::{Action, Direction, Family, GroupId, Header, RuleId, State};
use sgsim::whatif::space::{realizable, revoke_diff, Decider, Region};

use crate::gen::{addr, arb_member_header, arb_member_state, arb_state};

/// Every header the generators can produce, plus addresses outside their pools.
fn grid() -> Vec<Header> {
    let mut out = Vec::new();
    for v6 in [false, true] {
        let mut addrs: Vec<_> = (0..4u8)
            .flat_map(|x| (0..8u8).map(move |y| addr(v6, x, y)))
            .collect();
        addrs.push(if v6 {
            "2001:db9::1".parse().unwrap()
        } else {
            "11.0.0.1".parse().unwrap()
        });
        for &src in addrs.iter().step_by(3) {
            for &dst in addrs.iter().step_by(2) {
                for proto in [6u8, 17, 1, 47] {
                    for (sp, dp) in [(0u16, 0u16), (1, 2), (3, 7), (7, 3), (5, 5), (8, 9), (2, 6)] {
                        out.push(Header::new(src, dst, proto, sp, dp).unwrap());
                    }
                }
            }
        }
    }
    out
}

fn decider(n: &Named) -> Decider {
    Decider {
        action: n.action,
        rule: n.rule.clone(),
        reason: n.reason,
    }
}

/// The verdict as SEMANTICS 3.3 (revised) says: Alibaba inner access first, in both
/// directions, then the reference engine. (Until the reference engine itself puts inner
/// access first, this wrapper is what makes it the oracle.)
pub fn judge(state: &State, engine: &Reference<'_>, point: Point, h: &Header) -> Named {
    let sem = Semantics::of(state, point.eni as usize).unwrap();
    let remote = h.remote(point.direction);
    let members = state.members();
    for g in &sem.inner_access {
        let gid = &state.groups[*g as usize].id;
        if members.get(gid).is_some_and(|ips| ips.contains(&remote)) {
            return Named {
                action: Decision::Accept,
                rule: None,
                reason: "inner-access",
            };
        }
    }
    engine.name(engine.classify(point, h))
}

fn has_family(eni: &sgsim::model::Eni, h: &Header) -> bool {
    eni.ips
        .iter()
        .chain(&eni.public_ips)
        .any(|ip| Family::of(*ip) == h.family())
}

fn check(state: &State, removed: &[RuleId], headers: &[Header]) -> Result<(), TestCaseError> {
    let mut after = state.clone();
    after.rules.retain(|r| !removed.contains(&r.id));
    let diff = revoke_diff(state, removed).unwrap();
    prop_assert!(diff.complete);
    let regions = diff.regions;
    // Unresolved references read as nothing, then every other way the diff reads them.
    let readings = sgsim::internal::fuzz::header_space_readings(state, &after);
    let engines: Vec<(Reference<'_>, Reference<'_>)> = readings
        .iter()
        .map(|(b, a)| (Reference::new(b).unwrap(), Reference::new(a).unwrap()))
        .collect();
    let (rb, ra) = &engines[0];
    for (e, eni) in state.enis.iter().enumerate() {
        for direction in Direction::BOTH {
            let point = Point {
                eni: e as u32,
                direction,
            };
            let here: Vec<&Region> = regions
                .iter()
                .filter(|r| r.direction == direction && r.enis.contains(&eni.id))
                .collect();
            for h in headers
                .iter()
                .filter(|h| realizable(h) && has_family(eni, h))
            {
                let b = judge(state, rb, point, h);
                let a = judge(&after, ra, point, h);
                let others: Vec<(Named, Named)> = readings[1..]
                    .iter()
                    .zip(&engines[1..])
                    .map(|((sb, sa), (eb, ea))| (judge(sb, eb, point, h), judge(sa, ea, point, h)))
                    .collect();
                let certain = others
                    .iter()
                    .all(|(x, y)| x.action == b.action && y.action == a.action);
                let changed =
                    b.action != a.action || others.iter().any(|(x, y)| x.action != y.action);
                let inside: Vec<&&Region> = here.iter().filter(|r| r.contains(h)).collect();
                prop_assert!(inside.len() <= 1, "regions overlap at {h}");
                if !changed {
                    prop_assert!(
                        inside.is_empty(),
                        "{} at {} {} is in a region but keeps {}",
                        h,
                        eni.id,
                        direction,
                        b
                    );
                    continue;
                }
                prop_assert_eq!(
                    inside.len(),
                    1,
                    "{} at {} {}: {} -> {} not in any region",
                    h,
                    eni.id,
                    direction,
                    b,
                    a
                );
                let r = inside[0];
                prop_assert_eq!(r.unresolved.is_empty(), certain, "{} at {}", h, eni.id);
                if r.before.reason == "unresolved" {
                    // Named by the first other reading that changes it.
                    let (x, y) = others.iter().find(|(x, y)| x.action != y.action).unwrap();
                    prop_assert_eq!(r.before.action, x.action);
                    prop_assert_eq!(r.after.action, y.action);
                } else {
                    prop_assert_eq!(&r.before, &decider(&b));
                    prop_assert_eq!(&r.after, &decider(&a));
                }
            }
            for r in &here {
                let w = &r.witness;
                prop_assert!(r.contains(w));
                prop_assert!(realizable(w), "witness {} cannot exist", w);
                prop_assert!(has_family(eni, w));
                if r.before.reason == "unresolved" {
                    continue;
                }
                prop_assert_eq!(
                    &r.before,
                    &decider(&judge(state, rb, point, w)),
                    "witness {}",
                    w
                );
                prop_assert_eq!(
                    &r.after,
                    &decider(&judge(&after, ra, point, w)),
                    "witness {}",
                    w
                );
            }
        }
    }
    Ok(())
}

/// [`arb_state`] with some prefix-list rules pointing at two lists the state lacks, so that
/// a group set can hold several unresolved references, which are read one at a time.
fn arb_state_with_references() -> impl Strategy<Value = State> {
    arb_state().prop_map(|mut state| {
        for (i, r) in state.rules.iter_mut().enumerate() {
            if let sgsim::model::Peer::PrefixList { prefix_list_id } = &mut r.remote {
                match i % 3 {
                    1 => *prefix_list_id = "pl-absent-1".into(),
                    2 => *prefix_list_id = "pl-absent-2".into(),
                    _ => {}
                }
            }
        }
        state
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn header_space_diff_equals_brute_force(
        state in arb_state_with_references(),
        picks in proptest::collection::vec(any::<proptest::sample::Index>(), 1..4),
    ) {
        let removed: Vec<RuleId> = if state.rules.is_empty() {
            Vec::new()
        } else {
            picks.iter().map(|p| state.rules[p.index(state.rules.len())].id.clone()).collect()
        };
        check(&state, &removed, &grid())?;
    }

    #[test]
    fn header_space_diff_with_group_peers_and_inner_access_equals_brute_force(
        state in arb_member_state(),
        picks in proptest::collection::vec(any::<proptest::sample::Index>(), 1..4),
        headers in proptest::collection::vec(arb_member_header(), 50..150),
    ) {
        let removed: Vec<RuleId> = if state.rules.is_empty() {
            Vec::new()
        } else {
            picks.iter().map(|p| state.rules[p.index(state.rules.len())].id.clone()).collect()
        };
        check(&state, &removed, &headers)?;
    }
}

fn suite_state(name: &str) -> State {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/suite")
        .join(name);
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    serde_json::from_value(v["state"].clone()).unwrap()
}

#[test]
fn revoking_a_drop_that_shadows_an_accept_flips_exactly_its_box() {
    let state = suite_state("aliyun_priority.json");
    let regions = revoke_diff(&state, &["a-drop22".into()]).unwrap().regions;
    // eni-1 only: a-drop22 belongs to sg-a. Every tcp/22 packet from anywhere except the
    // office /24 (where priority 1 already accepted) flips from drop to accept.
    assert!(!regions.is_empty());
    for r in &regions {
        assert_eq!(r.enis, vec!["eni-1".into()]);
        assert_eq!(r.direction, Direction::Ingress);
        assert_eq!(r.before.rule.as_ref().map(|r| r.as_str()), Some("a-drop22"));
        assert_eq!(r.after.rule.as_ref().map(|r| r.as_str()), Some("a-acc22"));
        assert_eq!(r.dst_ports, vec![sgsim::model::PortRange::single(22)]);
        assert_eq!(r.protocols, vec![(6, 6)]);
        assert!(!r.remote.iter().any(|c| c.to_string() == "203.0.113.0/24"));
    }
    let covered: u64 = regions
        .iter()
        .flat_map(|r| &r.remote)
        .map(|c| 1u64 << (32 - c.len()))
        .sum();
    assert_eq!(
        covered,
        (1u64 << 32) - 256,
        "all of IPv4 but the office /24"
    );
}

/// Two unresolved references, read one at a time as the engines read them (SEMANTICS
/// 3.1): revoking the drop makes tcp/80 accepted when both match nothing (`z-any`) and when
/// both match everything (`x-pl`, first), but `y-pl` on its own would drop it, so the
/// change is not certain. Reading the references only all together called it certain.
#[test]
fn a_change_one_unresolved_reference_alone_could_undo_is_not_certain() {
    let state: State = serde_json::from_value(serde_json::json!({
        "groups": [{"id": "sg-a", "provider": "aliyun", "inner_access": "drop"}],
        "enis": [{"id": "eni-1", "ips": ["10.0.1.5"], "groups": ["sg-a"]}],
        "rules": [
            {"id": "r-drop", "group": "sg-a", "direction": "ingress", "action": "drop", "priority": 1,
             "protocol": "tcp", "dst_ports": "80", "remote": {"cidr": "0.0.0.0/0"}},
            {"id": "x-pl", "group": "sg-a", "direction": "ingress", "action": "accept", "priority": 2,
             "protocol": "tcp", "dst_ports": "80", "remote": {"prefix_list_id": "pl-x"}},
            {"id": "y-pl", "group": "sg-a", "direction": "ingress", "action": "drop", "priority": 3,
             "protocol": "tcp", "dst_ports": "80", "remote": {"prefix_list_id": "pl-y"}},
            {"id": "z-any", "group": "sg-a", "direction": "ingress", "action": "accept", "priority": 4,
             "protocol": "tcp", "dst_ports": "80", "remote": {"cidr": "0.0.0.0/0"}}
        ]
    }))
    .unwrap();
    let h = Header::new(
        "198.51.100.7".parse().unwrap(),
        "10.0.1.5".parse().unwrap(),
        6,
        40000,
        80,
    )
    .unwrap();
    let regions = revoke_diff(&state, &["r-drop".into()]).unwrap().regions;
    let inside: Vec<&Region> = regions
        .iter()
        .filter(|r| r.direction == Direction::Ingress && r.contains(&h))
        .collect();
    assert_eq!(inside.len(), 1, "{regions:?}");
    assert_eq!(inside[0].before.action, Decision::Drop);
    assert_eq!(inside[0].after.action, Decision::Accept);
    assert!(!inside[0].unresolved.is_empty(), "{:?}", inside[0]);
}

#[test]
fn revoking_an_allow_that_others_still_cover_changes_nothing() {
    let state = suite_state("aws_union.json");
    // admin-https-office is shadowed by web-https (0.0.0.0/0, same port) on eni-web.
    assert!(revoke_diff(&state, &["admin-https-office".into()])
        .unwrap()
        .regions
        .is_empty());
    // web-https is not: revoking it closes 443 to everyone but the office /24.
    let regions = revoke_diff(&state, &["web-https".into()]).unwrap().regions;
    assert!(!regions.is_empty());
    assert!(regions.iter().all(|r| r.after.reason == "default"
        && r.dst_ports == vec![sgsim::model::PortRange::single(443)]));
}

fn findings(state: &State) -> Vec<(String, String, String, Vec<String>)> {
    sgsim::whatif::lint::lint(state)
        .unwrap()
        .findings
        .into_iter()
        .map(|f| {
            (
                f.enis
                    .iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
                f.rule.to_string(),
                serde_json::to_value(f.kind)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_string(),
                f.related,
            )
        })
        .collect()
}

#[test]
fn lint_names_shadowed_redundant_and_conflicting_rules() {
    let f = findings(&suite_state("aliyun_priority.json"));
    let has = |eni: &str, rule: &str, kind: &str, related: &[&str]| {
        assert!(
            f.iter()
                .any(|(e, r, k, rel)| e == eni && r == rule && k == kind && rel == related),
            "missing {eni} {rule} {kind} {related:?} in {f:#?}"
        );
    };
    // Related rules come in evaluation order.
    has(
        "eni-1",
        "a-acc22",
        "shadowed",
        &["b-acc22-office", "a-drop22"],
    );
    has("eni-1", "a-acc-80", "shadowed", &["b-drop-80"]);
    has(
        "eni-1",
        "a-drop22",
        "partially_shadowed",
        &["b-acc22-office"],
    );
    has("eni-2", "b-drop-80", "redundant", &["default"]);
    assert!(
        !f.iter().any(|(_, r, _, _)| r == "a-acc-range"),
        "a-acc-range is fine"
    );

    // AWS is a union: nothing is shadowed, a covered rule is redundant.
    let f = findings(&suite_state("aws_union.json"));
    assert!(f.iter().any(|(e, r, k, rel)| e == "eni-web"
        && r == "admin-https-office"
        && k == "redundant"
        && rel == &vec!["web-https".to_string()]));
    assert!(!f.iter().any(|(_, _, k, _)| k == "shadowed"));
}

#[test]
fn lint_agrees_with_the_revoke_diff_on_redundancy() {
    // A rule reported redundant or shadowed at every ENI set that sees it changes nothing
    // when revoked; one that is not changes something somewhere.
    for file in [
        "aliyun_priority.json",
        "aliyun_defaults.json",
        "aws_union.json",
        "quintuple.json",
    ] {
        let state = suite_state(file);
        let lint = sgsim::whatif::lint::lint(&state).unwrap().findings;
        for rule in &state.rules {
            let harmless = lint
                .iter()
                .filter(|f| {
                    f.rule == rule.id
                        && matches!(
                            f.kind,
                            sgsim::whatif::lint::Kind::Redundant
                                | sgsim::whatif::lint::Kind::Shadowed
                                | sgsim::whatif::lint::Kind::Empty
                        )
                })
                .count();
            let seen = state
                .enis
                .iter()
                .filter(|e| e.groups.contains(&rule.group))
                .map(|e| &e.groups)
                .collect::<std::collections::BTreeSet<_>>()
                .len();
            let changes = !revoke_diff(&state, std::slice::from_ref(&rule.id))
                .unwrap()
                .regions
                .is_empty();
            if file.starts_with("aws") {
                // A union: findings are chosen greedily, so a rule left unreported may
                // still be covered by rules reported redundant.
                assert!(harmless < seen || !changes, "{file}: {}", rule.id);
            } else {
                assert_eq!(harmless == seen, !changes, "{file}: {}", rule.id);
            }
        }
    }
}

/// Per ENI set: whether the regions of a diff touch it.
fn touches(state: &State, removed: &[RuleId], enis: &[sgsim::model::EniId]) -> bool {
    revoke_diff(state, removed)
        .unwrap()
        .regions
        .iter()
        .any(|r| r.enis.iter().any(|e| enis.contains(e)))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 120, ..ProptestConfig::default() })]

    /// Lint is safe to act on: a rule called shadowed, redundant, empty or equivalent
    /// changes nothing at its ENIs when revoked; where AWS rules are a union (a group set's
    /// rules in a direction all accept) all redundant findings and all but one of each
    /// equivalent class go together without a change; where rules are judged in order a
    /// rule without such a finding changes something when revoked.
    #[test]
    fn lint_findings_agree_with_the_header_space_diff(state in arb_state_with_references()) {
        use sgsim::whatif::lint::Kind;
        let lint = sgsim::whatif::lint::lint(&state).unwrap();
        prop_assert!(lint.complete);
        // The group sets and their ENIs.
        let sets = {
            let mut m: std::collections::BTreeMap<Vec<GroupId>, Vec<sgsim::model::EniId>> = Default::default();
            // ENIs are grouped by the set of their groups, whatever the order of attachment.
            for e in &state.enis {
                let mut g: Vec<GroupId> = e.groups.clone();
                g.sort();
                g.dedup();
                m.entry(g).or_default().push(e.id.clone());
            }
            m
        };
        let groups_of = |enis: &[sgsim::model::EniId]| -> Vec<GroupId> {
            sets.iter().find(|(_, e)| e.as_slice() == enis).map(|(g, _)| g.clone()).unwrap_or_default()
        };
        // AWS as imported is a union of accepts; lint judges a set's direction as one when
        // all of its rules there accept (a generated AWS state with drops is judged in order).
        let union = |groups: &[GroupId], direction: Direction| {
            state.groups.first().is_some_and(|g| g.provider == sgsim::model::Provider::Aws)
                && state
                    .rules
                    .iter()
                    .filter(|r| r.direction == direction && groups.contains(&r.group))
                    .all(|r| r.action == Action::Accept)
        };
        let mut by_set: std::collections::BTreeMap<Vec<String>, Vec<&sgsim::whatif::lint::Finding>> =
            Default::default();
        for f in &lint.findings {
            by_set.entry(f.enis.iter().map(|e| e.to_string()).collect()).or_default().push(f);
            if matches!(f.kind, Kind::Shadowed | Kind::Redundant | Kind::Empty | Kind::Equivalent) {
                prop_assert!(!touches(&state, std::slice::from_ref(&f.rule), &f.enis),
                    "{:?} {} changes something", f.kind, f.rule);
            }
            if union(&groups_of(&f.enis), f.direction) {
                prop_assert!(!matches!(f.kind, Kind::Shadowed | Kind::PartiallyShadowed));
            }
            if f.kind == Kind::Equivalent {
                for other in &f.related {
                    prop_assert!(!touches(&state, &[RuleId::from(other.as_str())], &f.enis));
                }
            }
        }
        for findings in by_set.values() {
            let enis = &findings[0].enis;
            let groups = groups_of(enis);
            for direction in Direction::BOTH {
                if !union(&groups, direction) {
                    continue;
                }
                let mut all: Vec<RuleId> = Vec::new();
                for f in findings.iter().filter(|f| f.direction == direction) {
                    match f.kind {
                        Kind::Redundant | Kind::Empty => all.push(f.rule.clone()),
                        Kind::Equivalent => {
                            all.extend(f.related.iter().map(|r| RuleId::from(r.as_str())))
                        }
                        _ => {}
                    }
                }
                prop_assert!(!touches(&state, &all, enis), "removing {:?} together changes something", all);
            }
        }
        // Judged in order: every rule seen at a set without a harmless finding there
        // changes something. (In a union, findings are chosen greedily, so a rule left
        // unreported may still be covered by rules reported redundant.)
        for (groups, enis) in &sets {
            for rule in state.rules.iter().filter(|r| groups.contains(&r.group)) {
                if union(groups, rule.direction) {
                    continue;
                }
                let finding = lint.findings.iter().find(|f| &f.enis == enis && f.rule == rule.id);
                let harmless = finding.is_some_and(|f| {
                    matches!(f.kind, Kind::Shadowed | Kind::Redundant | Kind::Empty | Kind::Unresolved)
                });
                let has_family = state.enis.iter().filter(|e| enis.contains(&e.id)).any(|e| !e.ips.is_empty());
                if !harmless && has_family {
                    prop_assert!(touches(&state, std::slice::from_ref(&rule.id), enis),
                        "{} at {:?} has no finding but changes nothing", rule.id, enis);
                }
            }
        }
    }
}

fn sgsim(args: &[&str]) -> (i32, serde_json::Value, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sgsim"))
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let json = serde_json::from_str(&stdout).unwrap_or(serde_json::Value::Null);
    (
        out.status.code().unwrap_or(-1),
        json,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn root(p: &str) -> String {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(p)
        .to_string_lossy()
        .into_owned()
}

fn whatif(state: &str, request: &str, extra: &[&str]) -> (i32, serde_json::Value) {
    let mut args = vec![
        "whatif",
        "--state",
        state,
        "--request",
        request,
        "--output",
        "json",
    ];
    args.extend_from_slice(extra);
    let (code, json, err) = sgsim(&args);
    assert!(!err.contains("panicked"), "{err}");
    (code, json)
}

#[test]
fn whatif_aws_group_reference_revoke_cuts_the_server_outside_the_cidr() {
    let (code, r) = whatif(
        &root("src/cli/demo/aws"),
        &format!("@{}", root("src/cli/demo/aws/revoke.txt")),
        &["--synthetic", "5000"],
    );
    assert_eq!(code, 0);
    assert_eq!(r["revoked_rules"][0]["rule_id"], "sgr-0db5432fromappsg");
    let regions = r["header_space"].as_array().unwrap();
    assert_eq!(regions.len(), 1);
    assert_eq!(regions[0]["remote"][0], "10.30.1.15/32");
    assert!(r["changed"]["accept_to_drop"].as_u64().unwrap() > 0);
    assert_eq!(r["changed"]["drop_to_accept"], 0);
    let flows = r["flows"].as_array().unwrap();
    assert!(!flows.is_empty());
    for f in flows {
        assert!(f["src"] == "10.30.1.15" || f["dst"] == "10.30.1.15", "{f}");
        assert_eq!(f["before"]["action"], "accept");
        assert_eq!(f["after"]["action"], "drop");
    }
    let hits: Vec<_> = r["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["rule_id"] == "sgr-0db5432fromappsg")
        .collect();
    assert!(hits[0]["before"].as_u64().unwrap() > 0 && hits[0]["after"] == 0);
    // A group-reference rule never makes flows untracked (regression: a `-1` reference
    // was once called untracked).
    let caveats = r["caveats"].to_string();
    assert!(caveats.contains("keep flowing until"), "{caveats}");
    assert!(!caveats.contains("untracked"), "{caveats}");
}

#[test]
fn whatif_aliyun_revoking_a_drop_opens_what_it_shadowed() {
    let (code, r) = whatif(
        &root("src/cli/demo/aliyun"),
        &format!("@{}", root("src/cli/demo/aliyun/revoke.txt")),
        &["--synthetic", "5000"],
    );
    assert_eq!(code, 0);
    assert!(r["changed"]["drop_to_accept"].as_u64().unwrap() > 0);
    assert_eq!(r["changed"]["accept_to_drop"], 0);
    for region in r["header_space"].as_array().unwrap() {
        assert_eq!(region["dst_ports"], serde_json::json!(["22"]));
        assert_eq!(region["before"]["rule"], "sgr-bp1web-ssh-deny");
        assert_eq!(region["after"]["rule"], "sgr-bp1web-agent");
    }
    assert!(r["caveats"][0].as_str().unwrap().contains("910"));
}

/// Writes a suite scenario's state as a snapshot file.
fn snapshot(name: &str) -> String {
    let state = suite_state(name);
    let dir = crate::scratch_root().join("whatif");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string(&state).unwrap()).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn whatif_revoking_a_covered_allow_changes_nothing() {
    let (code, r) = whatif(
        &snapshot("aliyun_priority.json"),
        "Action=RevokeSecurityGroup&RegionId=cn-hangzhou&SecurityGroupId=sg-a&Permissions.1.IpProtocol=TCP&Permissions.1.PortRange=80/80&Permissions.1.SourceCidrIp=0.0.0.0/0&Permissions.1.Policy=accept",
        &["--synthetic", "3000"],
    );
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["revoked_rules"][0]["rule_id"], "a-acc-80");
    assert_eq!(r["header_space"].as_array().unwrap().len(), 0);
    assert_eq!(
        r["changed"],
        serde_json::json!({"accept_to_drop": 0, "drop_to_accept": 0, "to_unknown": 0, "from_unknown": 0})
    );
    assert!(r["packets"]["judged"].as_u64().unwrap() > 1000);
}

#[test]
fn whatif_ipv6_revoke_changes_only_ipv6() {
    let (code, r) = whatif(
        &root("tests/data/aws/state"),
        "Action=RevokeSecurityGroupIngress&GroupId=sg-0a1b2c3d4e5f60789&IpPermissions.1.IpProtocol=tcp&IpPermissions.1.FromPort=443&IpPermissions.1.ToPort=443&IpPermissions.1.Ipv6Ranges.1.CidrIpv6=::/0",
        &["--synthetic", "20000"],
    );
    assert_eq!(code, 0, "{r}");
    let regions = r["header_space"].as_array().unwrap();
    assert!(!regions.is_empty());
    assert!(regions
        .iter()
        .all(|x| x["family"] == "v6" && x["dst_ports"] == serde_json::json!(["443"])));
    assert!(r["changed"]["accept_to_drop"].as_u64().unwrap() > 0);
    for f in r["flows"].as_array().unwrap() {
        assert!(f["src"].as_str().unwrap().contains(':'), "{f}");
    }
}

#[test]
fn whatif_of_a_rejected_request_is_the_error_and_nothing_else() {
    let (code, r) = whatif(
        &root("tests/data/aws/state"),
        "Action=RevokeSecurityGroupIngress&GroupId=sg-0a1b2c3d4e5f60789&IpPermissions.1.IpProtocol=tcp&IpPermissions.1.FromPort=9999&IpPermissions.1.ToPort=9999&IpPermissions.1.IpRanges.1.CidrIp=10.9.9.9/32",
        &["--synthetic", "1000"],
    );
    assert_eq!(code, 1);
    assert_eq!(r["error"], "InvalidPermission.NotFound");
    assert_eq!(r["status"], 400);
    assert_eq!(r["response"]["Error"]["Code"], "InvalidPermission.NotFound");
    assert!(r["revoked_rules"].as_array().unwrap().is_empty());
    assert!(r["header_space"].as_array().unwrap().is_empty());
    assert_eq!(
        r["packets"]["judged"], 0,
        "no traffic is judged for a rejected request"
    );
}

#[test]
fn whatif_writes_html_and_json_files() {
    let dir = crate::scratch_root().join("html");
    std::fs::create_dir_all(&dir).unwrap();
    let (html, json) = (dir.join("r.html"), dir.join("r.json"));
    let (code, _) = whatif(
        &root("src/cli/demo/aliyun"),
        &format!("@{}", root("src/cli/demo/aliyun/revoke.txt")),
        &[
            "--synthetic",
            "20000",
            "--top",
            "1",
            "--html",
            html.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0);
    let page = std::fs::read_to_string(&html).unwrap();
    for needle in [
        "<svg",
        "Services that change",
        "Connections that change",
        "web-1 (eni-bp1shopweb1)",
        "analysed at",
        "RevokeSecurityGroup",
        "<details>",
        "sgr-bp1web-ssh-deny",
        "drop → accept",
        "</html>",
    ] {
        assert!(page.contains(needle), "{needle}");
    }
    assert!(!page.contains("<script"), "self-contained, no scripts");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    for key in [
        "response",
        "revoked_rules",
        "packets",
        "changed",
        "connections",
        "impact",
        "flows",
        "rules",
        "header_space",
    ] {
        assert!(report.get(key).is_some(), "{key}");
    }
    // The page shows the JSON's counts, and names.
    let c = &report["connections"];
    assert!(c["restored"].as_u64().unwrap() > 0, "{c}");
    for (n, label) in [
        (&c["total"], "connections judged"),
        (&c["restored"], "restored"),
    ] {
        assert!(page.contains(&format!("<b>{n}</b>{label}")), "{n} {label}");
    }
    let name = report["impact"][0]["eni_name"].as_str().unwrap();
    assert!(name == "web-1" || name == "web-2", "{name}");
    assert_eq!(report["impact"][0]["groups"][0]["name"], "shop-web");
}

#[test]
fn lint_with_traffic_reports_rules_without_hits() {
    let state = root("tests/data/flowlogs/aws-state.json");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sgsim"))
        .args([
            "lint",
            "--state",
            &state,
            "--traffic",
            &root("tests/data/flowlogs/aws-v2.log"),
            "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let unhit: Vec<_> = lines
        .iter()
        .filter(|l| l["kind"] == "no_hits")
        .map(|l| l["rule"].as_str().unwrap())
        .collect();
    // SSH is hit, and so is the egress rule (the SSH flow is untracked: its reply is judged
    // by the rules); the RDP rule (from 10.0.0.0/8) never is.
    assert_eq!(unhit, vec!["sgr-rdp"]);
}

#[test]
fn whatif_on_flow_logs_reports_agreement_and_weights_records_by_packets() {
    let (code, r) = whatif(
        &root("tests/data/flowlogs/aws-state.json"),
        "Action=RevokeSecurityGroupIngress&GroupId=sg-web&SecurityGroupRuleId.1=sgr-ssh",
        &["--traffic", &root("tests/data/flowlogs/aws-v2.log")],
    );
    assert_eq!(code, 0, "{r}");
    // Three usable records: SSH accepted (20 packets), RDP rejected, the SSH reply.
    let a = &r["flow_log_agreement"];
    assert_eq!(
        (a["records"].as_u64(), a["agree"].as_u64()),
        (Some(3), Some(3))
    );
    // The SSH record (20 packets) and its reply (18) are one connection, untracked (SSH
    // open to anywhere, all egress open): cut at once, every packet lost.
    assert_eq!(r["changed"]["accept_to_drop"], 38);
    assert_eq!(r["connections"]["broken"], 1);
    assert_eq!(r["connections"]["packets_broken"], 38);
    assert_eq!(r["flows"][0]["dst_port"], 22);
    assert_eq!(r["flows"][0]["before"]["rule"], "sgr-ssh");
}

/// Revoking the only rule that lets ping in changes AWS's documented ping records: the
/// request is now refused, and its reply no longer follows an accepted request.
#[test]
fn whatif_revoking_allow_ping_changes_the_documented_icmp_records() {
    let (code, r) = whatif(
        &root("tests/data/flowlogs/aws-ping-state.json"),
        "Action=RevokeSecurityGroupIngress&Version=2016-11-15&GroupId=sg-web&IpPermissions.1.IpProtocol=icmp&IpPermissions.1.FromPort=8&IpPermissions.1.ToPort=-1&IpPermissions.1.IpRanges.1.CidrIp=0.0.0.0/0",
        &["--traffic", &root("tests/data/flowlogs/aws-ping.log")],
    );
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["revoked_rules"][0]["rule_id"], "sgr-ping");
    assert_eq!(r["changed"]["accept_to_drop"], 8, "{}", r["changed"]);
    assert_eq!(r["packets"]["accepted_before"], 8);
    assert_eq!(r["packets"]["dropped_after"], 8);
}

/// A state without network interfaces judges nothing: the report says so loudly (text,
/// JSON) and never claims that every packet keeps its verdict.
#[test]
fn whatif_without_enis_warns_instead_of_saying_nothing_changes() {
    let dir = crate::scratch_root().join("no-enis");
    std::fs::create_dir_all(&dir).unwrap();
    for f in [
        "security-groups.json",
        "security-group-rules.json",
        "vpcs.json",
    ] {
        std::fs::copy(root(&format!("src/cli/demo/aws/{f}")), dir.join(f)).unwrap();
    }
    let request = format!("@{}", root("src/cli/demo/aws/revoke.txt"));
    let (code, r) = whatif(dir.to_str().unwrap(), &request, &[]);
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["enis_in_scope"], 0);
    let warnings = r["warnings"].to_string();
    assert!(warnings.contains("no network interface"), "{warnings}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sgsim"))
        .args([
            "whatif",
            "--state",
            dir.to_str().unwrap(),
            "--request",
            &request,
        ])
        .args(["--output", "text"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("nothing judged"), "{text}");
    assert!(!text.contains("every packet keeps its verdict"), "{text}");
    assert!(text.contains("no network interface"), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Regression (found merging the terminal escaping with lint's two-line findings): the
/// text lint prints each finding and what removing the rule would do on lines of their
/// own, never a literal `\n`; AWS duplicates are one "equivalent" finding.
#[test]
fn lint_text_keeps_its_two_lines_and_aws_duplicates_are_one_finding() {
    let dir = crate::scratch_root().join("lint-text");
    std::fs::create_dir_all(&dir).unwrap();
    let state = dir.join("s.json");
    std::fs::write(
        &state,
        r#"{"sgsim_snapshot": 1, "groups": [{"id": "sg-a", "provider": "aws"}],
 "rules": [
  {"id": "r1", "group": "sg-a", "direction": "egress", "action": "accept", "protocol": "-1", "remote": {"cidr": "::/0"}},
  {"id": "r2", "group": "sg-a", "direction": "egress", "action": "accept", "protocol": "-1", "remote": {"cidr": "::/0"}}],
 "enis": [{"id": "eni-a", "ips": ["10.0.0.5", "2001:db8::5"], "groups": ["sg-a"]}]}"#,
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sgsim"))
        .args(["lint", "--state", state.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("\\n"), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with("equivalent"), "{text}");
    assert!(lines[1].contains("keep one"), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}
