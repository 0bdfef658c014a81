//! `sgsim lint`: rules that never decide anything, or whose removal would change nothing.
//!
//! Per group set (ENIs with the same groups are reported together), direction and address
//! family, on the same exact header sets and bounds as the header-space diff
//! ([`super::space`]): every rule is a set of headers in an interval decision diagram, the
//! union of the rules before each rule and the verdict of the rules after it are built once
//! in a pass each way, so a group costs a few diagram operations per rule.
//!
//! Ordered groups (Alibaba, generic), after Batfish's filter-line reachability:
//!
//! - **shadowed**: earlier rules (or Alibaba's inner-access grants, which come first)
//!   decide everything the rule matches, so it never decides a packet.
//! - **redundant**: the rule decides some packets, but wherever it does, the rules after
//!   it (or the default) give the same action: revoking it changes nothing.
//! - **partially shadowed**: the rule decides some packets, but earlier rules with the
//!   opposite action take part of its box (a conflict worth a look).
//!
//! AWS groups are an unordered union, so nothing is shadowed:
//!
//! - **equivalent**: rules that allow exactly the same packets are one finding: keep one.
//! - **redundant**: the other rules still allow everything the rule allows. The findings
//!   are chosen together (in state order, each against the rules not already reported),
//!   so removing all of them at once changes nothing.
//!
//! Both:
//!
//! - **empty**: the rule matches no packet that can exist (its peer resolves to no
//!   address: a group without members).
//! - **unresolved**: the rule's peer cannot be resolved (SEMANTICS 3.1); it may match
//!   anything of its family, so it is never called redundant, and no other rule is called
//!   redundant or shadowed unless it is so under every reading the diff covers (matching
//!   nothing, all matching everything, and each reference on its own).
//!
//! Every finding says in `effect` what removing the rule would do.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::classify::{By, Decision, Semantics};
use crate::model::{Action, Direction, EniId, Family, Provider, RuleId, State};
use crate::whatif::dd::{Dd, Id, Limit, FALSE};
use crate::whatif::space::{eni_sets, fam, Config, Ctx, Error, Item, Reading};

/// What is wrong with a rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Kind {
    /// Never decides a packet: earlier rules cover it (ordered groups).
    Shadowed,
    /// Removing it changes no verdict.
    Redundant,
    /// Allows exactly what the related rules allow (AWS): keep one.
    Equivalent,
    /// Decides packets, but earlier rules of the opposite action take part of its box.
    PartiallyShadowed,
    /// Matches no packet at all.
    Empty,
    /// Its peer cannot be resolved: it may or may not match.
    Unresolved,
}

impl Kind {
    /// What removing a rule of this kind would do, in one line.
    pub fn effect(self, provider: Provider) -> &'static str {
        match (self, provider) {
            (Kind::Shadowed, _) => {
                "removing it changes nothing: earlier rules decide every packet it matches"
            }
            (Kind::Redundant, Provider::Aws) => {
                "removing it changes nothing: the rules named still allow all it allows (safe together with the other redundant findings)"
            }
            (Kind::Redundant, _) => {
                "removing it changes no verdict: the rules named (or the default) decide its packets the same way"
            }
            (Kind::Equivalent, _) => {
                "the rules named allow exactly the same packets: keep one; removing all of them changes verdicts"
            }
            (Kind::PartiallyShadowed, _) => {
                "removing it changes verdicts where it still decides; the rules named (opposite action, earlier) take part of its box"
            }
            (Kind::Empty, _) => "removing it changes nothing: it matches no packet",
            (Kind::Unresolved, _) => {
                "its peer cannot be resolved from the exports: it may match anything of its family, so removing it may change verdicts"
            }
        }
    }
}

/// Rules named per finding before the rest are only counted.
pub const RELATED_MAX: usize = 8;

/// One finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The ENIs where it holds (they share their groups).
    pub enis: Vec<EniId>,
    /// The direction.
    pub direction: Direction,
    /// The rule.
    pub rule: RuleId,
    /// What is wrong.
    pub kind: Kind,
    /// The rules that cover it, take over from it, equal it or conflict with it (`default`
    /// or `inner-access` when an implicit rule does), at most [`RELATED_MAX`].
    pub related: Vec<String>,
    /// Whether more rules than `related` names play that part.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub related_more: bool,
    /// What removing the rule would do, in one line.
    pub effect: &'static str,
}

/// The findings of a state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Lint {
    /// The findings, by group set, direction and rule order.
    pub findings: Vec<Finding>,
    /// Whether every group set was linted (false only when a bound was reached).
    pub complete: bool,
    /// When incomplete: how far it got.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
}

/// Lints every rule of the state as seen at each ENI set and direction.
pub fn lint(state: &State) -> Result<Lint, Error> {
    lint_with(state, &Config::default())
}

/// [`lint`] with explicit bounds.
pub fn lint_with(state: &State, config: &Config) -> Result<Lint, Error> {
    state.validate()?;
    let mut ctx = Ctx::new(state, config);
    let mut out = Lint {
        findings: Vec::new(),
        complete: true,
        stopped: None,
    };
    let sets = eni_sets(state);
    for (n, enis) in sets.iter().enumerate() {
        let semantics = Semantics::of(state, enis[0])?;
        let ids: Vec<EniId> = enis.iter().map(|&e| state.enis[e].id.clone()).collect();
        for direction in Direction::BOTH {
            let families: Vec<usize> = [Family::V4, Family::V6]
                .into_iter()
                .filter(|&f| {
                    enis.iter().any(|&e| {
                        let eni = &state.enis[e];
                        eni.ips
                            .iter()
                            .chain(&eni.public_ips)
                            .any(|&ip| Family::of(crate::model::normalize_addr(ip)) == f)
                    })
                })
                .map(fam)
                .collect();
            let set = Set {
                eni: enis[0],
                semantics: &semantics,
                direction,
                families: &families,
            };
            match lint_set(&mut ctx, &set) {
                Ok(per_rule) => {
                    for (rule, (kind, related, more)) in per_rule {
                        out.findings.push(Finding {
                            enis: ids.clone(),
                            direction,
                            rule: state.rules[rule.1 as usize].id.clone(),
                            kind,
                            related,
                            related_more: more,
                            effect: kind.effect(semantics.provider),
                        });
                    }
                }
                Err(Limit) => {
                    out.complete = false;
                    out.stopped = Some(format!(
                        "node limit of {} reached at ENI set {} of {} ({}), {direction}; the findings listed are right but others may be missing",
                        config.max_nodes,
                        n + 1,
                        sets.len(),
                        state.enis[enis[0]].id
                    ));
                    return Ok(out);
                }
            }
        }
    }
    Ok(out)
}

struct Set<'s> {
    eni: usize,
    semantics: &'s Semantics,
    direction: Direction,
    families: &'s [usize],
}

/// Per rule (state index, in evaluation order): kind, related names, more related.
type PerRule = BTreeMap<(u32, u32), (Kind, Vec<String>, bool)>;

/// What one family says about each rule.
#[derive(Default)]
struct Acc {
    matches: bool,
    decides: bool,
    same_after: bool,
    unresolved: bool,
    covering: Names,
    takers: Names,
    conflicting: Names,
}

#[derive(Default)]
struct Names {
    names: Vec<String>,
    more: bool,
}

impl Names {
    fn add(&mut self, name: String) {
        if self.names.contains(&name) {
            return;
        }
        if self.names.len() < RELATED_MAX {
            self.names.push(name);
        } else {
            self.more = true;
        }
    }

    fn full(&self) -> bool {
        self.names.len() >= RELATED_MAX
    }
}

fn name(state: &State, it: &Item) -> String {
    match it.verdict.by {
        By::Rule(r) | By::Unresolved(r) => state.rules[r as usize].id.to_string(),
        By::InnerAccess(_) => "inner-access".into(),
        By::Default => "default".into(),
        By::UnloggedIcmp => "unresolved".into(),
    }
}

fn lint_set(ctx: &mut Ctx<'_>, set: &Set<'_>) -> Result<PerRule, Limit> {
    // Everything a set builds (its items included: their remote field counts the set's
    // classes) is garbage once it is linted.
    let checkpoints: Vec<usize> = set
        .families
        .iter()
        .map(|&f| ctx.dd[f].checkpoint())
        .collect();
    let r = lint_items(ctx, set);
    for (&f, &c) in set.families.iter().zip(&checkpoints) {
        ctx.dd[f].rollback(c);
    }
    r
}

fn lint_items(ctx: &mut Ctx<'_>, set: &Set<'_>) -> Result<PerRule, Limit> {
    // Items per family (the same rules in the same order in each).
    let mut items: Vec<Vec<Item>> = Vec::new();
    for &f in set.families {
        items.push(ctx.items(set.eni, set.semantics, set.direction, f)?.0);
    }
    let mut order: Vec<u32> = Vec::new();
    if let Some(first) = items.first() {
        for it in first {
            if let By::Rule(r) = it.verdict.by {
                order.push(r);
            }
        }
    } else {
        // No ENI address of either family: judge the rules as IPv4 anyway.
        return Ok(PerRule::new());
    }
    let position: HashMap<u32, u32> = order
        .iter()
        .enumerate()
        .map(|(i, &r)| (r, i as u32))
        .collect();
    let mut accs: HashMap<u32, Acc> = order
        .iter()
        .map(|&r| {
            (
                r,
                Acc {
                    same_after: true,
                    ..Acc::default()
                },
            )
        })
        .collect();
    let mut out = PerRule::new();
    let key = |r: u32| (position[&r], r);
    // AWS rules are all accepts (an import never makes another kind); a hand-made state
    // that mixes in drops is judged in order like any other.
    let union = set.semantics.provider == Provider::Aws
        && items[0]
            .iter()
            .all(|it| it.verdict.action == Decision::Accept);
    if union {
        union_lint(ctx, set, &items, &mut out, &key)?;
    } else {
        set.families
            .iter()
            .enumerate()
            .try_for_each(|(k, &f)| ordered_family(ctx, set, f, &items[k], &mut accs))?;
    }
    if union {
        return Ok(out);
    }
    for r in order {
        let Some(acc) = accs.remove(&r) else { continue };
        let (kind, names) = if acc.unresolved {
            (Kind::Unresolved, Names::default())
        } else if !acc.matches {
            (Kind::Empty, Names::default())
        } else if !acc.decides {
            (Kind::Shadowed, acc.covering)
        } else if acc.same_after {
            (Kind::Redundant, acc.takers)
        } else if !acc.conflicting.names.is_empty() {
            (Kind::PartiallyShadowed, acc.conflicting)
        } else {
            continue;
        };
        out.insert(key(r), (kind, names.names, names.more));
    }
    Ok(out)
}

/// Ordered semantics in one family: prefix unions forwards, accept sets backwards, under
/// every reading of unresolved references when there are any.
fn ordered_family(
    ctx: &mut Ctx<'_>,
    set: &Set<'_>,
    f: usize,
    items: &[Item],
    accs: &mut HashMap<u32, Acc>,
) -> Result<(), Limit> {
    let state = ctx.state;
    let fallback = set.semantics.fallback(set.direction);
    // The readings of unresolved references the diff covers (see `space`): nothing, all
    // of them everything, and with two or more each on its own.
    let mut names: Vec<&str> = items
        .iter()
        .filter_map(|it| it.unresolved.as_ref().map(|u| u.0.as_str()))
        .collect();
    names.sort_unstable();
    names.dedup();
    let mut readings = vec![Reading::Nothing];
    if !names.is_empty() {
        readings.push(Reading::All);
    }
    if names.len() > 1 {
        readings.extend(names.iter().map(|&n| Reading::Only(n)));
    }
    let n = items.len();
    // Per reading: whether each item decides some header, and whether the items after it
    // decide any of those differently; under "nothing", what it decides.
    let mut decides = vec![false; n];
    let mut differs = vec![false; n];
    let mut decided_n = vec![FALSE; n];
    for &reading in &readings {
        let node = |it: &Item| match (&it.unresolved, reading) {
            (Some((_, m)), Reading::All) => *m,
            (Some((name, m)), Reading::Only(x)) if name == x => *m,
            _ => it.node,
        };
        // accepted[i]: headers the items from i on (and the fallback) accept.
        let mut accepted = vec![FALSE; n + 1];
        accepted[n] = if fallback == Action::Accept {
            ctx.universe(f)
        } else {
            FALSE
        };
        let d: &mut Dd = &mut ctx.dd[f];
        for i in (0..n).rev() {
            let m = node(&items[i]);
            accepted[i] = if m == FALSE {
                accepted[i + 1]
            } else if items[i].verdict.action == Decision::Accept {
                d.or(accepted[i + 1], m)?
            } else {
                d.and_not(accepted[i + 1], m)?
            };
        }
        let mut earlier = FALSE;
        for (i, it) in items.iter().enumerate() {
            let m = node(it);
            let decided = d.and_not(m, earlier)?;
            if reading == Reading::Nothing {
                decided_n[i] = decided;
            }
            if decided != FALSE {
                decides[i] = true;
                let wrong = if it.verdict.action == Decision::Accept {
                    d.and_not(decided, accepted[i + 1])?
                } else {
                    d.and(decided, accepted[i + 1])?
                };
                if wrong != FALSE {
                    differs[i] = true;
                }
            }
            earlier = d.or(earlier, m)?;
        }
    }
    for (i, it) in items.iter().enumerate() {
        let By::Rule(r) = it.verdict.by else { continue };
        let Some(acc) = accs.get_mut(&r) else {
            continue;
        };
        if it.unresolved.is_some() {
            acc.unresolved = true;
            continue;
        }
        if it.node == FALSE {
            continue;
        }
        acc.matches = true;
        let d: &mut Dd = &mut ctx.dd[f];
        if !decides[i] || differs[i] {
            // Shadowed: the earlier items that meet it cover it. Deciding differently
            // after it: the earlier items of the opposite action that meet it conflict.
            let names = if decides[i] {
                &mut acc.conflicting
            } else {
                &mut acc.covering
            };
            for e in &items[..i] {
                if e.node == FALSE
                    || (decides[i] && e.verdict.action == it.verdict.action)
                    || !Dd::cubes_meet(&e.cube, &it.cube)
                    || d.and(e.node, it.node)? == FALSE
                {
                    continue;
                }
                if names.full() {
                    names.more = true;
                    break;
                }
                names.add(name(state, e));
            }
        }
        if !decides[i] {
            continue;
        }
        acc.decides = true;
        if differs[i] {
            acc.same_after = false;
            continue;
        }
        // Who takes over: the later items in order, then the default.
        let mut rest = decided_n[i];
        for q in &items[i + 1..] {
            if rest == FALSE {
                break;
            }
            if q.node == FALSE || !Dd::cubes_meet(&q.cube, &it.cube) {
                continue;
            }
            let part = d.and(rest, q.node)?;
            if part != FALSE {
                if acc.takers.full() {
                    acc.takers.more = true;
                    rest = FALSE;
                    break;
                }
                acc.takers.add(name(state, q));
                rest = d.and_not(rest, q.node)?;
            }
        }
        if rest != FALSE {
            if acc.takers.full() {
                acc.takers.more = true;
            } else {
                acc.takers.add("default".into());
            }
        }
    }
    Ok(())
}

/// AWS: an unordered union of accepts. Equivalent rules are one finding; the redundant
/// ones are chosen greedily in state order against the rules not already reported, so
/// all of them can go together.
fn union_lint(
    ctx: &mut Ctx<'_>,
    set: &Set<'_>,
    items: &[Vec<Item>],
    out: &mut PerRule,
    key: &dyn Fn(u32) -> (u32, u32),
) -> Result<(), Limit> {
    let state = ctx.state;
    let n = items[0].len();
    let rule_of = |i: usize| match items[0][i].verdict.by {
        By::Rule(r) => Some(r),
        _ => None,
    };
    // Equivalence classes by their sets in every family.
    let mut classes: BTreeMap<Vec<Id>, Vec<usize>> = BTreeMap::new();
    let mut empty = vec![true; n];
    let mut unresolved = vec![false; n];
    for i in 0..n {
        let nodes: Vec<Id> = items.iter().map(|fam| fam[i].node).collect();
        unresolved[i] = items[0][i].unresolved.is_some();
        empty[i] = nodes.iter().all(|&x| x == FALSE);
        if !empty[i] && !unresolved[i] {
            classes.entry(nodes).or_default().push(i);
        }
    }
    let mut duplicate = vec![false; n];
    for members in classes.values().filter(|m| m.len() > 1) {
        for &i in &members[1..] {
            duplicate[i] = true;
        }
        if let Some(first) = rule_of(members[0]) {
            let mut names = Names::default();
            for &j in &members[1..] {
                names.add(name(state, &items[0][j]));
            }
            out.insert(key(first), (Kind::Equivalent, names.names, names.more));
        }
    }
    // Suffix unions of the candidates, per family.
    let mut suffix: Vec<Vec<Id>> = Vec::new();
    for (k, &f) in set.families.iter().enumerate() {
        let d = &mut ctx.dd[f];
        let mut s = vec![FALSE; n + 1];
        for i in (0..n).rev() {
            s[i] = if duplicate[i] {
                s[i + 1]
            } else {
                d.or(s[i + 1], items[k][i].node)?
            };
        }
        suffix.push(s);
    }
    let mut kept = vec![FALSE; set.families.len()];
    let mut removed = vec![false; n];
    for i in 0..n {
        let Some(r) = rule_of(i) else { continue };
        if duplicate[i] {
            continue;
        }
        if unresolved[i] {
            out.insert(key(r), (Kind::Unresolved, Vec::new(), false));
            continue;
        }
        if empty[i] {
            out.insert(key(r), (Kind::Empty, Vec::new(), false));
            removed[i] = true;
            continue;
        }
        let mut covered = true;
        for (k, &f) in set.families.iter().enumerate() {
            let d = &mut ctx.dd[f];
            let others = d.or(kept[k], suffix[k][i + 1])?;
            if d.and_not(items[k][i].node, others)? != FALSE {
                covered = false;
                break;
            }
        }
        if covered {
            removed[i] = true;
            let mut names = Names::default();
            'find: for (k, &f) in set.families.iter().enumerate() {
                for j in (0..n).filter(|&j| j != i && !removed[j] && !duplicate[j]) {
                    let (a, b) = (&items[k][i], &items[k][j]);
                    if a.node == FALSE || !Dd::cubes_meet(&a.cube, &b.cube) {
                        continue;
                    }
                    if ctx.dd[f].and(a.node, b.node)? != FALSE {
                        if names.full() && !names.names.contains(&name(state, b)) {
                            names.more = true;
                            break 'find;
                        }
                        names.add(name(state, b));
                    }
                }
            }
            out.insert(key(r), (Kind::Redundant, names.names, names.more));
        } else {
            for (k, &f) in set.families.iter().enumerate() {
                kept[k] = ctx.dd[f].or(kept[k], items[k][i].node)?;
            }
        }
    }
    Ok(())
}
