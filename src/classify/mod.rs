//! Packet → verdict: the evaluation semantics, the compiled lookup, the reference oracle and
//! the live (atomically swapped) table.
//!
//! # Semantics
//!
//! A packet is judged at a [`Point`]: one ENI, one direction (SEMANTICS 3.1: the ENI that
//! owns the packet's destination address for ingress, its source for egress, private or
//! public). In order:
//!
//! 1. *Alibaba inner access* ([`By::InnerAccess`]): when the remote address is a member (a
//!    private IP of an attached ENI) of a basic group on the ENI whose inner-access policy
//!    is accept, the packet is accepted before any rule is looked at, both ways (SEMANTICS
//!    3.3 and Q8, revised 2026-12-06: a custom drop cannot isolate members). The ENI
//!    itself is a member of its groups.
//! 2. *Rules*: those of every group attached to the ENI for that direction, ordered by
//!    `(priority ascending, drop before accept, position in the state)`; the first rule
//!    that matches decides.
//! 3. *Defaults* ([`By::Default`]):
//!
//! | groups on the ENI | ingress default | egress default |
//! |---|---|---|
//! | AWS | drop | drop (AWS groups carry their allow-all egress as an explicit rule) |
//! | Alibaba basic | drop | accept |
//! | Alibaba enterprise | drop | drop |
//! | generic (ClassBench, tests) | drop | drop |
//!
//! AWS rules are all accepts at one priority, so "first match in state order" is the union
//! AWS documents, with a deterministic deciding rule. A rule matches when the protocol
//! matches, the ports (or ICMP type/code, see [`crate::model::Header`]) fall in its ranges,
//! the local address falls in its local prefix (if any), and the remote address falls in its
//! peer: a CIDR block, the private IPs of the ENIs in a referenced group, or the entries of a
//! prefix list.
//!
//! A peer the state cannot resolve ([`State::unresolved_rules`]: a prefix list it lacks or
//! holds without entries, a group no export describes and no ENI carries) may or may not
//! match. Each unresolved reference is read both ways, the same for every rule that names
//! it (a missing list holds an address or not): as matching nothing, and as matching every
//! address, when its first rule met before the resolved decision decides. Where some reading
//! gives another action the verdict is [`Decision::Unknown`] ([`By::Unresolved`] names that
//! rule); otherwise the resolved verdict stands. The compiler warns about each such peer.
//!
//! # Engines
//!
//! - [`reference::Reference`]: a linear scan over the model. Obviously right; the oracle.
//! - [`Table`](crate::compile::Table): the compiled engine (decision trees or
//!   cross-product tables over the five header fields, built by [`crate::compile`]).
//! - [`crate::compile::live::Live`]: the one owner of the `ArcSwap` holding the current [`Table`](crate::compile::Table).
//!
//! The reference and the table implement [`Engine`], which is what the behaviour suite and
//! the property tests drive; [`crate::compile::live::Live`] hands out snapshots of its table, which do.

pub mod reference;

use std::collections::HashSet;
use std::fmt;

use rayon::prelude::*;

use crate::model::{Action, Direction, GroupKind, Header, Provider, RuleId, State};

/// Where a packet is judged: an ENI (by its index in the state) and a direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Point {
    /// Index of the ENI in [`State::enis`].
    pub eni: u32,
    /// Which way the packet crosses it.
    pub direction: Direction,
}

/// What decided a verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum By {
    /// A rule, by its index in the engine's rule list (see [`Engine::rule_id`]).
    Rule(u32),
    /// Alibaba's implicit accept between members of a basic group, by the group's index in
    /// [`State::groups`].
    InnerAccess(u32),
    /// The ENI's default for the direction.
    Default,
    /// No answer: a rule whose peer the state cannot resolve (see [`State::unresolved_rules`]) would
    /// change the verdict if it matched; the first such rule, by its index in the engine's
    /// rule list.
    Unresolved(u32),
    /// No answer: an ICMP flow-log record whose type and code the log does not carry, on
    /// which the rules give different verdicts for different types (see
    /// [`crate::track`]).
    UnloggedIcmp,
}

/// What a packet meets: accept, drop, or unknown where a rule with an unresolved reference
/// makes the answer depend on what the state does not say.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// The packet passes.
    Accept,
    /// The packet is dropped.
    Drop,
    /// Either, depending on an unresolved reference.
    Unknown,
}

impl Decision {
    /// `accept`, `drop` or `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Accept => "accept",
            Decision::Drop => "drop",
            Decision::Unknown => "unknown",
        }
    }

    /// Whether the packet surely passes.
    pub fn accepts(self) -> bool {
        self == Decision::Accept
    }

    /// Whether the packet is surely dropped.
    pub fn drops(self) -> bool {
        self == Decision::Drop
    }
}

impl From<Action> for Decision {
    fn from(a: Action) -> Decision {
        match a {
            Action::Accept => Decision::Accept,
            Action::Drop => Decision::Drop,
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of judging one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Verdict {
    /// Accept, drop or unknown.
    pub action: Decision,
    /// What decided it.
    pub by: By,
}

impl Verdict {
    /// The verdict of a rule of this action, by its index.
    pub fn rule(action: Action, index: u32) -> Verdict {
        Verdict {
            action: action.into(),
            by: By::Rule(index),
        }
    }

    /// Alibaba's inner-access accept, by the group's index.
    pub fn inner_access(group: u32) -> Verdict {
        Verdict {
            action: Decision::Accept,
            by: By::InnerAccess(group),
        }
    }

    /// The ENI's default.
    pub fn default_of(action: Action) -> Verdict {
        Verdict {
            action: action.into(),
            by: By::Default,
        }
    }

    /// Unknown because of the rule of this index (its peer is unresolved).
    pub fn unresolved(index: u32) -> Verdict {
        Verdict {
            action: Decision::Unknown,
            by: By::Unresolved(index),
        }
    }
}

/// A verdict with its deciding rule named, comparable across engines whose rule indexes
/// differ (a table after a live revoke keeps its compile-time indexes).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct Named {
    /// Accept, drop or unknown.
    pub action: Decision,
    /// The deciding rule, if a rule decided (for an unknown verdict: the rule whose
    /// unresolved reference makes it unknown).
    pub rule: Option<RuleId>,
    /// What decided: `rule`, `inner-access`, `default` or `unresolved`.
    pub reason: &'static str,
}

impl Named {
    /// Names a verdict, looking up the deciding rule's ID with `rule_id`.
    pub fn of(v: Verdict, rule_id: impl FnOnce(u32) -> RuleId) -> Named {
        let (rule, reason) = match v.by {
            By::Rule(i) => (Some(rule_id(i)), "rule"),
            By::InnerAccess(_) => (None, "inner-access"),
            By::Default => (None, "default"),
            By::Unresolved(i) => (Some(rule_id(i)), "unresolved"),
            By::UnloggedIcmp => (None, "unresolved"),
        };
        Named {
            action: v.action,
            rule,
            reason,
        }
    }
}

impl fmt::Display for Named {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.rule {
            Some(r) => write!(f, "{} by {}", self.action, r),
            None => write!(f, "{} by {}", self.action, self.reason),
        }
    }
}

/// Why a state cannot be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SemanticsError {
    /// An ENI mixes groups whose evaluation rules differ.
    #[error("ENI '{eni}' mixes groups of different providers or types ({why}); a cloud never allows that")]
    MixedGroups {
        /// The ENI.
        eni: String,
        /// Which groups disagree.
        why: String,
    },
    /// The state is inconsistent.
    #[error(transparent)]
    State(#[from] crate::model::StateError),
}

/// How an ENI's defaults behave, derived from the groups attached to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Semantics {
    /// The provider of the groups.
    pub provider: Provider,
    /// The group type (Alibaba).
    pub kind: GroupKind,
    /// Indexes (in [`State::groups`]) of attached groups whose members accept each other by
    /// default, in attachment order.
    pub inner_access: Vec<u32>,
}

impl Semantics {
    /// The ENI's default for a direction.
    pub fn fallback(&self, direction: Direction) -> Action {
        match (self.provider, self.kind, direction) {
            (Provider::Aliyun, GroupKind::Basic, Direction::Egress) => Action::Accept,
            _ => Action::Drop,
        }
    }

    /// Works out the semantics of ENI `eni` of `state`. Groups the state does not hold are
    /// ignored (they contribute no rules).
    pub fn of(state: &State, eni: usize) -> Result<Semantics, SemanticsError> {
        let eni = &state.enis[eni];
        let mut found: Option<(Provider, GroupKind, &str)> = None;
        let mut inner_access = Vec::new();
        let mut seen = HashSet::new();
        for gid in &eni.groups {
            let Some(gi) = state.groups.iter().position(|g| &g.id == gid) else {
                continue;
            };
            if !seen.insert(gi) {
                continue;
            }
            let g = &state.groups[gi];
            let kind = if g.provider == Provider::Aliyun {
                g.kind
            } else {
                GroupKind::Basic
            };
            match found {
                None => found = Some((g.provider, kind, g.id.as_str())),
                Some((p, k, first)) if p != g.provider || k != kind => {
                    return Err(SemanticsError::MixedGroups {
                        eni: eni.id.to_string(),
                        why: format!(
                            "{first} is {p:?}/{k:?}, {} is {:?}/{kind:?}",
                            g.id, g.provider
                        ),
                    })
                }
                Some(_) => {}
            }
            if g.provider == Provider::Aliyun
                && kind == GroupKind::Basic
                && g.inner_access == Action::Accept
            {
                inner_access.push(gi as u32);
            }
        }
        let (provider, kind) = found.map_or((Provider::Generic, GroupKind::Basic), |f| (f.0, f.1));
        Ok(Semantics {
            provider,
            kind,
            inner_access,
        })
    }
}

/// The evaluation order of rules: priority ascending, drop before accept, then position.
pub fn rule_order(state: &State, index: usize) -> (u32, bool, usize) {
    let r = &state.rules[index];
    (r.priority.0, r.action == Action::Accept, index)
}

/// A placeholder verdict for output slots about to be overwritten.
pub(crate) const DEFAULT_VERDICT: Verdict = Verdict {
    action: Decision::Drop,
    by: By::Default,
};

/// Makes `out` exactly `len` verdicts long for a parallel pass to overwrite, filling only
/// slots it did not have (a batch of the same size as the last one costs nothing).
pub(crate) fn size_output(out: &mut Vec<Verdict>, len: usize) {
    out.truncate(len);
    out.resize(len, DEFAULT_VERDICT);
}

/// Anything that judges packets: the reference scan, the compiled table, the live table.
pub trait Engine: Sync {
    /// Judges one packet at one point.
    fn classify(&self, point: Point, header: &Header) -> Verdict;

    /// The ID of rule `index` (as found in [`By::Rule`]).
    fn rule_id(&self, index: u32) -> &RuleId;

    /// Judges a batch, in order, into `out` (cleared first).
    fn classify_batch(&self, queries: &[(Point, Header)], out: &mut Vec<Verdict>) {
        out.clear();
        out.extend(queries.iter().map(|(p, h)| self.classify(*p, h)));
    }

    /// Judges a batch on the rayon pool, in chunks, into `out` (its old contents are
    /// replaced; its memory is reused, so repeated batches allocate nothing); the result
    /// equals [`Engine::classify_batch`]'s.
    fn classify_par_into(&self, queries: &[(Point, Header)], out: &mut Vec<Verdict>) {
        const CHUNK: usize = 4096;
        size_output(out, queries.len());
        out.par_chunks_mut(CHUNK)
            .zip(queries.par_chunks(CHUNK))
            .for_each(|(out, qs)| {
                for (o, (p, h)) in out.iter_mut().zip(qs) {
                    *o = self.classify(*p, h);
                }
            });
    }

    /// [`Engine::classify_par_into`] into a new vector.
    fn classify_par(&self, queries: &[(Point, Header)]) -> Vec<Verdict> {
        let mut out = Vec::new();
        self.classify_par_into(queries, &mut out);
        out
    }

    /// A verdict with its deciding rule named.
    fn name(&self, v: Verdict) -> Named {
        Named::of(v, |i| self.rule_id(i).clone())
    }
}
