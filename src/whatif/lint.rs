//! `sgsim lint`: rules that never decide anything, or whose removal would change nothing.
//!
//! Definitions follow Batfish's filter-line reachability and the usual firewall-manager
//! terms, per ENI and direction (ENIs with the same groups are reported together):
//!
//! - **shadowed**: earlier rules (in evaluation order) cover the rule's whole box, so it
//!   never decides a packet. The covering rules are named.
//! - **redundant**: the rule decides some packets, but wherever it does, the rule or default
//!   that would decide without it gives the same action: revoking it changes nothing. The
//!   rules that would take over are named.
//! - **partially shadowed**: the rule decides some packets, but earlier rules with the
//!   opposite action take part of its box (a conflict worth a look). Those rules are named.
//! - **empty**: the rule's peer resolves to no address (a group with no members, an empty
//!   or unknown prefix list), so it can match nothing.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::classify::By;
use crate::compile::{lower, CompileError, Lowered};
use crate::index::boxes::{Filter, Word};
use crate::model::{Direction, EniId, RuleId, State};
use crate::whatif::space::{decided, decider, eni_sets, intersects};

/// What is wrong with a rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Never decides a packet: earlier rules cover it.
    Shadowed,
    /// Decides packets, but removing it changes no verdict.
    Redundant,
    /// Decides packets, but earlier rules of the opposite action take part of its box.
    PartiallyShadowed,
    /// Matches no address at all.
    Empty,
}

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
    /// The rules that cover it, take over from it, or conflict with it (`default` or
    /// `inner-access` when an implicit rule does).
    pub related: Vec<String>,
}

/// Lints every rule of the state as seen at each ENI set and direction.
pub fn lint(state: &State) -> Result<Vec<Finding>, CompileError> {
    let mut out = Vec::new();
    for enis in eni_sets(state) {
        let ids: Vec<EniId> = enis.iter().map(|&e| state.enis[e].id.clone()).collect();
        for direction in Direction::BOTH {
            let lowered = lower(state, enis[0], direction)?;
            let mut per_rule: std::collections::BTreeMap<u32, Acc> = Default::default();
            // Every rule of the context, even those lowered to no filter at all.
            for (i, r) in state.rules.iter().enumerate() {
                if r.direction == direction && state.enis[enis[0]].groups.contains(&r.group) {
                    per_rule.entry(i as u32).or_default();
                }
            }
            scan(state, &lowered, &lowered.v4, &mut per_rule);
            scan(state, &lowered, &lowered.v6, &mut per_rule);
            for (rule, acc) in per_rule {
                let (kind, related) = if !acc.has_filters {
                    (Kind::Empty, BTreeSet::new())
                } else if !acc.decides {
                    (Kind::Shadowed, acc.covering)
                } else if acc.same_after {
                    (Kind::Redundant, acc.takers)
                } else if !acc.conflicting.is_empty() {
                    (Kind::PartiallyShadowed, acc.conflicting)
                } else {
                    continue;
                };
                out.push(Finding {
                    enis: ids.clone(),
                    direction,
                    rule: state.rules[rule as usize].id.clone(),
                    kind,
                    related: related.into_iter().collect(),
                });
            }
        }
    }
    Ok(out)
}

struct Acc {
    has_filters: bool,
    decides: bool,
    same_after: bool,
    covering: BTreeSet<String>,
    takers: BTreeSet<String>,
    conflicting: BTreeSet<String>,
}

impl Default for Acc {
    fn default() -> Acc {
        Acc {
            has_filters: false,
            decides: false,
            same_after: true,
            covering: BTreeSet::new(),
            takers: BTreeSet::new(),
            conflicting: BTreeSet::new(),
        }
    }
}

fn name(state: &State, lowered: &Lowered, rank: u32) -> String {
    let d = decider(state, lowered, rank);
    d.rule.map_or(d.reason.to_string(), |r| r.to_string())
}

fn scan<W: Word>(
    state: &State,
    lowered: &Lowered,
    filters: &[Filter<W>],
    per_rule: &mut std::collections::BTreeMap<u32, Acc>,
) {
    for (i, f) in filters.iter().enumerate() {
        let target = lowered.targets[f.rank as usize];
        let By::Rule(rule) = target.by else { continue };
        let owner = |g: &Filter<W>| lowered.targets[g.rank as usize].by == By::Rule(rule);
        let without: Vec<Filter<W>> = filters.iter().filter(|g| !owner(g)).copied().collect();
        let pieces = decided(filters, i, &without);
        let acc = per_rule.entry(rule).or_default();
        acc.has_filters = true;
        for e in filters[..i]
            .iter()
            .filter(|e| !owner(e) && intersects(&e.bounds, &f.bounds))
        {
            let n = name(state, lowered, e.rank);
            if lowered.targets[e.rank as usize].action != target.action {
                acc.conflicting.insert(n.clone());
            }
            acc.covering.insert(n);
        }
        for (_, after) in &pieces {
            acc.decides = true;
            let action = match *after {
                u32::MAX => lowered.fallback,
                r => lowered.targets[r as usize].action,
            };
            if action == target.action {
                acc.takers.insert(name(state, lowered, *after));
            } else {
                acc.same_after = false;
            }
        }
    }
}
