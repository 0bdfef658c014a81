//! Judging a connection: verdicts per point and world, and its fate across the revoke.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

use rustc_hash::FxHashMap;

use super::classes::{Classes, FateKey};
use super::keys::reverse;
use super::{Config, Error};
use crate::classify::{By, Decision, Engine, Named, Point};
use crate::compile::{compile, Table};
use crate::model::{Direction, EniId, Header, Provider, State};
use crate::track::{self, is_echo_reply, is_echo_request, EniInfo};

/// An action of either world, or unknown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Act {
    Accept,
    Drop,
    Unknown,
}

fn act(d: Decision) -> Act {
    match d {
        Decision::Accept => Act::Accept,
        Decision::Drop => Act::Drop,
        Decision::Unknown => Act::Unknown,
    }
}

/// What decided a verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Why {
    /// A rule, by index in the table of the step's world.
    Rule(u32),
    Default,
    InnerAccess,
    /// A reply of a tracked connection.
    Established,
    /// The reply of a connection whose opener was refused: it never exists.
    Lost,
    /// Unknown because of this rule's unresolved reference.
    Unresolved(u32),
    /// Unknown: an ICMP flow-log record whose type the log does not carry.
    UnloggedIcmp,
}

/// Which table a [`Why::Rule`] indexes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Side {
    Before,
    After,
}

/// One direction's verdict in one world.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct Step {
    pub(super) act: Act,
    pub(super) why: Why,
    pub(super) side: Side,
}

/// The verdicts of one connection, shared by every connection with the same ones
/// (interned per partition).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct Fate {
    /// Opener (0) and reply (1) directions in the world before.
    pub(super) before: [Step; 2],
    /// From the revoke instant on.
    pub(super) post: [Step; 2],
    /// The opener's verdict after, as a new connection.
    pub(super) fresh: Step,
    /// Open at the revoke instant and kept alive although the rules after refuse it.
    pub(super) survive: bool,
    /// Where the opener's (else the reply's) verdict changes: the end (0: the opener's
    /// source side, 1: its destination side; the connection holds its ENIs) and the
    /// direction there. An end, not an ENI, so that connections at other ENIs with the
    /// same groups share the fate.
    pub(super) change: Option<(u8, Direction)>,
    /// Per world (before, from the revoke instant on) and direction: the verdict at the
    /// point the direction's verdict did not come from, when a rule decided there too (a
    /// packet crossing two ENIs is decided at both: both rules count it).
    pub(super) others: [[Option<Step>; 2]; 2],
    pub(super) provider: Provider,
    /// Touches no ENI of the state: counted, not judged.
    pub(super) unmatched: bool,
}

impl Step {
    /// One word: action, side, what decided, and the rule's index.
    fn pack(self) -> u64 {
        let act = match self.act {
            Act::Accept => 0u64,
            Act::Drop => 1,
            Act::Unknown => 2,
        };
        let side = u64::from(self.side == Side::After);
        let (why, index) = match self.why {
            Why::Rule(i) => (0u64, i),
            Why::Default => (1, 0),
            Why::InnerAccess => (2, 0),
            Why::Established => (3, 0),
            Why::Lost => (4, 0),
            Why::Unresolved(i) => (5, i),
            Why::UnloggedIcmp => (6, 0),
        };
        act | side << 2 | why << 3 | u64::from(index) << 8
    }
}

impl Fate {
    /// Eleven words that tell fates apart (equal fates pack equally, and only they).
    pub(super) fn pack(&self) -> [u64; 11] {
        let other = |s: Option<Step>| s.map_or(u64::MAX, Step::pack);
        let change = self.change.map_or(u64::MAX, |(e, d)| {
            u64::from(e) << 1 | u64::from(d == Direction::Egress)
        });
        let provider = match self.provider {
            Provider::Aws => 0u64,
            Provider::Aliyun => 1,
            Provider::Generic => 2,
        };
        [
            self.before[0].pack(),
            self.before[1].pack(),
            self.post[0].pack(),
            self.post[1].pack(),
            self.fresh.pack(),
            change,
            u64::from(self.survive) | u64::from(self.unmatched) << 1 | provider << 2,
            other(self.others[0][0]),
            other(self.others[0][1]),
            other(self.others[1][0]),
            other(self.others[1][1]),
        ]
    }
}

/// The ENI and direction where an item is judged, or where a connection's opener crosses.
pub(super) type Ends = [Option<u32>; 2];

/// How the rules of an ENI's groups differ in the state after.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Touch {
    /// Not at all: every verdict is the same.
    None,
    /// Rules were taken away only (a revoke).
    Lost,
    /// Rules were added or changed.
    Changed,
}

/// Judges traffic against the states before and after a revoke.
pub struct Judge {
    pub(super) before: Table,
    pub(super) after: Table,
    before_info: Vec<EniInfo>,
    after_info: Vec<EniInfo>,
    v4: FxHashMap<u32, u32>,
    v6: FxHashMap<u128, u32>,
    pub(super) eni_ids: FxHashMap<EniId, u32>,
    /// The intervals of header fields that no rule of either state tells apart.
    pub(super) classes: Classes,
    /// Per ENI: how the rules of its groups differ after.
    touched: Vec<Touch>,
    /// Per rule of the table before: its index in the table after, when it is kept
    /// unchanged (see [`Judge::carried`]).
    kept: Vec<Option<u32>>,
    pub(super) config: Config,
}

impl Judge {
    /// The time of `item` as the connection loop reads it (ns since the epoch): a revoke
    /// instant taken from the first item of an input.
    pub fn instant_of(&self, item: &crate::packet::Item) -> u64 {
        self.seen(item, None).ts_ns
    }

    /// Changed connections listed, and clients sampled per service.
    pub fn top(&self) -> usize {
        self.config.top
    }

    /// Compiles both states (the ENIs of `after` are those of `before`: a revoke changes
    /// rules only).
    pub fn new(before: &State, after: &State, config: Config) -> Result<Judge, Error> {
        let cfg = crate::compile::Config::default();
        let (b, a) = rayon::join(|| compile(before, &cfg), || compile(after, &cfg));
        let mut v4 = FxHashMap::default();
        let mut v6 = FxHashMap::default();
        for (i, eni) in before.enis.iter().enumerate() {
            for &addr in eni.ips.iter().chain(&eni.public_ips) {
                match crate::model::normalize_addr(addr) {
                    IpAddr::V4(x) => v4.insert(u32::from(x), i as u32),
                    IpAddr::V6(x) => v6.insert(u128::from(x), i as u32),
                };
            }
        }
        let (before_table, after_table) = (b?, a?);
        // A rule of the table before whose rule is in the state after, unchanged.
        let rules_before: HashMap<&crate::model::RuleId, &crate::model::Rule> =
            before.rules.iter().map(|r| (&r.id, r)).collect();
        let rules_after: HashMap<&crate::model::RuleId, &crate::model::Rule> =
            after.rules.iter().map(|r| (&r.id, r)).collect();
        let after_index: HashMap<&crate::model::RuleId, u32> = after_table
            .rules()
            .iter()
            .enumerate()
            .map(|(j, id)| (id, j as u32))
            .collect();
        let kept_rules = before_table
            .rules()
            .iter()
            .map(|id| match (rules_before.get(id), rules_after.get(id)) {
                (Some(x), Some(y)) if x == y => after_index.get(id).copied(),
                _ => None,
            })
            .collect();
        // How each ENI's rules differ: a revoke only takes rules away, but any two states
        // are judged right (a rule changed or added changes its groups' rules).
        let lost: BTreeSet<&crate::model::GroupId> = before
            .rules
            .iter()
            .filter(|r| !rules_after.contains_key(&r.id))
            .map(|r| &r.group)
            .collect();
        let changed: BTreeSet<&crate::model::GroupId> = before
            .rules
            .iter()
            .filter(|r| rules_after.get(&r.id).is_some_and(|a| a != r))
            .chain(
                after
                    .rules
                    .iter()
                    .filter(|r| rules_before.get(&r.id) != Some(r)),
            )
            .map(|r| &r.group)
            .collect();
        let touched = before
            .enis
            .iter()
            .map(|e| {
                if e.groups.iter().any(|g| changed.contains(g)) {
                    Touch::Changed
                } else if e.groups.iter().any(|g| lost.contains(g)) {
                    Touch::Lost
                } else {
                    Touch::None
                }
            })
            .collect();
        Ok(Judge {
            classes: Classes::new(&[before, after]),
            touched,
            kept: kept_rules,
            before: before_table,
            after: after_table,
            before_info: track::eni_infos(before)?,
            after_info: track::eni_infos(after)?,
            v4,
            v6,
            eni_ids: before
                .enis
                .iter()
                .enumerate()
                .map(|(i, e)| (e.id.clone(), i as u32))
                .collect(),
            config: Config {
                partitions: config.partitions.max(1),
                ..config
            },
        })
    }

    /// The options.
    pub fn config(&self) -> &Config {
        &self.config
    }

    pub(super) fn eni_of(&self, addr: IpAddr) -> Option<u32> {
        match addr {
            IpAddr::V4(a) => self.v4.get(&u32::from(a)).copied(),
            IpAddr::V6(a) => self.v6.get(&u128::from(a)).copied(),
        }
    }

    /// The kind of a connection crossing `ends` whose opener is `h` ([`super::classes`]):
    /// `None` where it is judged on its own.
    pub(super) fn kind(&self, ends: Ends, h: &Header, new: bool) -> Option<FateKey> {
        self.classes.key(ends, h, new, |a| self.members(a))
    }

    /// The membership classes of an IPv4 address before and after.
    fn members(&self, a: u32) -> [u32; 2] {
        [
            self.before.member_class_v4(a),
            self.after.member_class_v4(a),
        ]
    }

    fn table(&self, side: Side) -> &Table {
        match side {
            Side::Before => &self.before,
            Side::After => &self.after,
        }
    }

    fn info(&self, side: Side) -> &[EniInfo] {
        match side {
            Side::Before => &self.before_info,
            Side::After => &self.after_info,
        }
    }

    /// A verdict of the world before as the world after gives it, without a lookup, when
    /// it is sure to be the same: at an ENI whose rules did not change, any verdict; at one
    /// whose groups only lost rules (a revoke), one that a rule kept unchanged decided (the
    /// best-ranked matching rule stays the best when others go) or no rule did (the
    /// default, Alibaba's inner access: they come from the groups). A verdict there that
    /// depends on an unresolved reference is looked up again (the revoke may have taken
    /// that rule away), and so is every verdict at an ENI whose rules were added or
    /// changed. The step is the world after's, as a lookup gives it.
    fn carried(&self, s: Step, touch: Touch) -> Option<Step> {
        let untouched = touch == Touch::None;
        if s.side != Side::Before
            || touch == Touch::Changed
            || (s.act == Act::Unknown && !untouched)
        {
            return None;
        }
        let after = |i: u32| self.kept.get(i as usize).copied().flatten();
        let why = match s.why {
            Why::Rule(i) => Why::Rule(after(i)?),
            Why::Unresolved(i) if untouched => Why::Unresolved(after(i)?),
            Why::Default => Why::Default,
            Why::InnerAccess => Why::InnerAccess,
            Why::UnloggedIcmp => Why::UnloggedIcmp,
            Why::Unresolved(_) | Why::Established | Why::Lost => return None,
        };
        Some(Step {
            act: s.act,
            why,
            side: Side::After,
        })
    }

    fn step(&self, side: Side, eni: u32, direction: Direction, h: &Header) -> Step {
        let v = self.table(side).classify(Point { eni, direction }, h);
        Step {
            act: act(v.action),
            why: match v.by {
                By::Rule(i) => Why::Rule(i),
                By::InnerAccess(_) => Why::InnerAccess,
                By::Default => Why::Default,
                By::Unresolved(i) => Why::Unresolved(i),
                By::UnloggedIcmp => Why::UnloggedIcmp,
            },
            side,
        }
    }

    /// Whether a connection with opener header `h` is tracked at `eni` (where the opener
    /// crosses in `direction`), in the world `side`.
    fn tracked(&self, side: Side, eni: u32, direction: Direction, h: &Header) -> bool {
        if h.ip_protocol().is_icmp() && !is_echo_request(h) && !is_echo_reply(h) {
            return false;
        }
        !self
            .info(side)
            .get(eni as usize)
            .is_some_and(|i| i.untracked(direction, h))
    }

    /// The per-point verdicts of a connection in one world: the opener at its source's
    /// ENI (egress) and its destination's (ingress), the reply at the same two ENIs.
    ///
    /// `same`: the verdicts of the world before, carried into this world where it is sure
    /// to give them ([`Judge::carried`]); the others are looked up. A reply is judged only
    /// where the opener passes (elsewhere it is lost anyway).
    fn points(
        &self,
        side: Side,
        ends: Ends,
        h: &Header,
        same: Option<&[[Option<Step>; 2]; 2]>,
    ) -> [[Option<Step>; 2]; 2] {
        let r = reverse(h);
        let dirs = [Direction::Egress, Direction::Ingress];
        let mut o = [None; 2];
        let mut rep = [None; 2];
        for i in 0..2 {
            let Some(e) = ends[i] else { continue };
            // Verdicts before that the world after is sure to give, taken without a lookup
            // ([`Judge::carried`]).
            let touch = self
                .touched
                .get(e as usize)
                .copied()
                .unwrap_or(Touch::Changed);
            let carry = |s: Option<Step>| self.carried(s?, touch);
            // The verdicts before at this point (none in the world before), the reply's
            // where the opener passed.
            let prior = same.and_then(|b| b[0][i]);
            let prior_reply = same
                .and_then(|b| b[1][i])
                .filter(|_| prior.is_some_and(|o| o.act == Act::Accept));
            let s = carry(prior).unwrap_or_else(|| self.step(side, e, dirs[i], h));
            o[i] = Some(s);
            let established = Step {
                act: Act::Accept,
                why: Why::Established,
                side,
            };
            // Where nothing changed, tracking is the world before's too.
            let unchanged =
                prior_reply
                    .filter(|_| touch == Touch::None)
                    .and_then(|r| match r.why {
                        Why::Established => Some(established),
                        _ => carry(Some(r)),
                    });
            rep[i] = Some(if s.act != Act::Accept {
                s
            } else if let Some(r) = unchanged {
                r
            } else if self.tracked(side, e, dirs[i], h) {
                established
            } else {
                // The reply before was judged by the rules too unless it was established.
                carry(prior_reply.filter(|r| r.why != Why::Established))
                    .unwrap_or_else(|| self.step(side, e, dirs[1 - i], &r))
            });
        }
        [o, rep]
    }
}

/// The points of a direction in the order its packets cross them: the opener leaves its
/// source side's ENI (end 0) and enters its destination side's (end 1), the reply the
/// other way.
fn travel(d: usize) -> [usize; 2] {
    if d == 0 {
        [0, 1]
    } else {
        [1, 0]
    }
}

/// One direction's verdict over its points: refused anywhere, else unknown anywhere, else
/// accepted. The decider: the first refusing point on the way (the packet stops there),
/// else the first unknown one, else the last deciding one.
fn combine(points: [Option<Step>; 2], d: usize) -> Option<Step> {
    let rank = |s: &Step| match (s.act, s.why) {
        (Act::Drop, _) => 3,
        (Act::Unknown, _) => 2,
        (Act::Accept, Why::Rule(_)) => 1,
        _ => 0,
    };
    let mut best: Option<Step> = None;
    for s in travel(d).into_iter().filter_map(|i| points[i]) {
        let better = best.is_none_or(|b| {
            let (new, old) = (rank(&s), rank(&b));
            if old >= 2 {
                new > old
            } else {
                new >= old
            }
        });
        if better {
            best = Some(s);
        }
    }
    best
}

/// Per direction of a world: the verdict at the point `world` did not take its own from,
/// when a rule decided there and the packets got there (an accepted packet crosses both
/// points; a refused one only those up to the refusing point).
fn others(points: &[[Option<Step>; 2]; 2], world: &[Step; 2]) -> [Option<Step>; 2] {
    std::array::from_fn(|d| {
        if world[d].why == Why::Lost {
            return None;
        }
        let [Some(first), Some(second)] = travel(d).map(|i| points[d][i]) else {
            return None;
        };
        let other = if world[d].act == Act::Accept {
            if first == world[d] {
                second
            } else {
                first
            }
        } else if second == world[d] && first != world[d] {
            // Through the first point, refused (or unknown) at the second.
            first
        } else {
            // Refused at the first point: it never got to the second.
            return None;
        };
        matches!(other.why, Why::Rule(_)).then_some(other)
    })
}

/// Both directions of one world: the reply is lost when the opener is not accepted.
fn world(points: [[Option<Step>; 2]; 2]) -> Option<[Step; 2]> {
    let o = combine(points[0], 0)?;
    let r = if o.act == Act::Accept {
        combine(points[1], 1)?
    } else {
        Step {
            act: o.act,
            why: Why::Lost,
            side: o.side,
        }
    };
    Some([o, r])
}

/// The first point where two worlds' per-point actions differ.
fn change(
    a: &[[Option<Step>; 2]; 2],
    b: &[[Option<Step>; 2]; 2],
    ends: Ends,
) -> Option<(u8, Direction)> {
    let dirs = [
        [Direction::Egress, Direction::Ingress],
        [Direction::Ingress, Direction::Egress],
    ];
    for d in 0..2 {
        for i in 0..2 {
            if let (Some(x), Some(y), Some(_)) = (a[d][i], b[d][i], ends[i]) {
                if x.act != y.act {
                    return Some((i as u8, dirs[d][i]));
                }
            }
        }
    }
    None
}

impl Judge {
    /// The fate of a connection whose opener header is `h`, crossing `ends`; `new`: its
    /// opener was captured at or after the revoke instant.
    pub(super) fn fate(&self, ends: Ends, h: &Header, new: bool) -> Fate {
        self.fate_with(ends, h, new, true)
    }

    /// [`Judge::fate`]; `reuse`: the world after takes the verdicts before where they
    /// cannot differ (untouched ENIs, [`Judge::carried`]) instead of looking them up (the
    /// tests compare both).
    fn fate_with(&self, ends: Ends, h: &Header, new: bool, reuse: bool) -> Fate {
        let provider = ends
            .iter()
            .flatten()
            .next()
            .and_then(|&e| self.before_info.get(e as usize))
            .map_or(Provider::Generic, |i| i.provider);
        let pb = self.points(Side::Before, ends, h, None);
        let pa = self.points(Side::After, ends, h, reuse.then_some(&pb));
        let (Some(before), Some(after)) = (world(pb), world(pa)) else {
            let none = Step {
                act: Act::Drop,
                why: Why::Default,
                side: Side::Before,
            };
            return Fate {
                before: [none; 2],
                post: [none; 2],
                fresh: none,
                survive: false,
                change: None,
                others: [[None; 2]; 2],
                provider,
                unmatched: true,
            };
        };
        let fate = Fate {
            before,
            post: after,
            fresh: after[0],
            survive: false,
            change: change(&pb, &pa, ends),
            others: [others(&pb, &before), others(&pa, &after)],
            provider,
            unmatched: false,
        };
        if new || before[0].act != Act::Accept {
            return fate;
        }
        let mut fate = self.open_fate(fate, &pb, &pa, ends, h);
        fate.post = fate.post.map(Judge::kept);
        // A verdict kept as established is no rule's hit.
        fate.others[1] =
            fate.others[1].map(|s| s.map(Judge::kept).filter(|s| matches!(s.why, Why::Rule(_))));
        fate
    }

    /// The fate of a connection open at the revoke instant (see the module docs).
    fn open_fate(
        &self,
        mut fate: Fate,
        pb: &[[Option<Step>; 2]; 2],
        pa: &[[Option<Step>; 2]; 2],
        ends: Ends,
        h: &Header,
    ) -> Fate {
        let (before, after, provider) = (fate.before, fate.post, fate.provider);
        // Open at the revoke instant.
        match provider {
            Provider::Aliyun => {
                let same = change(pb, pa, ends).is_none() && before[1].act == after[1].act;
                if same || self.config.assume_survive {
                    fate.post = before;
                    fate.others[1] = fate.others[0];
                    fate.survive = after[0].act != Act::Accept;
                }
            }
            Provider::Aws | Provider::Generic => {
                // Tracked points keep the verdicts before; untracked ones take the rules'
                // after, the reply's too: an untracked connection has no state to pass
                // its reply, even where the world after would track a new one (the rule
                // that made it untracked may be the one revoked).
                let dirs = [Direction::Egress, Direction::Ingress];
                let r = reverse(h);
                let mut mixed = *pb;
                for i in 0..2 {
                    if let Some(e) = ends[i] {
                        if !self.tracked(Side::Before, e, dirs[i], h) {
                            mixed[0][i] = pa[0][i];
                            mixed[1][i] = match pa[0][i] {
                                Some(o) if o.act == Act::Accept => {
                                    Some(self.step(Side::After, e, dirs[1 - i], &r))
                                }
                                other => other,
                            };
                        }
                    }
                }
                if let Some(post) = world(mixed) {
                    fate.post = post;
                    fate.others[1] = others(&mixed, &post);
                }
                // Where an untracked point changes its verdict, else where a new
                // connection's would (a surviving connection's service).
                fate.change = change(pb, &mixed, ends).or(fate.change);
                fate.survive = fate.post[0].act == Act::Accept && after[0].act != Act::Accept;
            }
        }
        fate
    }

    /// A verdict kept from before after the revoke instant: an accepted connection passes
    /// as established, not by a rule (which may be gone).
    fn kept(s: Step) -> Step {
        if s.side == Side::Before && s.act == Act::Accept {
            Step {
                act: Act::Accept,
                why: Why::Established,
                side: Side::After,
            }
        } else {
            s
        }
    }

    pub(super) fn named(&self, s: Step) -> Named {
        let t = self.table(s.side);
        let (rule, reason) = match s.why {
            Why::Rule(i) => (t.rules().get(i as usize).cloned(), "rule"),
            Why::Default => (None, "default"),
            Why::InnerAccess => (None, "inner-access"),
            Why::Established => (None, "established"),
            Why::Lost => (None, "lost"),
            Why::Unresolved(i) => (t.rules().get(i as usize).cloned(), "unresolved"),
            Why::UnloggedIcmp => (None, "unresolved"),
        };
        Named {
            action: match s.act {
                Act::Accept => Decision::Accept,
                Act::Drop => Decision::Drop,
                Act::Unknown => Decision::Unknown,
            },
            rule,
            reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use arbitrary::{Arbitrary, Unstructured};
    use proptest::prelude::*;

    use super::*;
    use crate::internal::fuzz::FuzzState;

    /// A fuzzed state of any provider (priorities, drops, equal ranks, group and
    /// prefix-list peers, port ranges, inner access, rules open to anywhere that make AWS
    /// flows untracked) and a state after it with one to three rules revoked; some group
    /// references point outside the state (unknown verdicts), and some states after
    /// change a rule or gain one. With the judge of the two and headers aimed at both.
    fn fuzzed(bytes: &[u8], revoked: &[usize], seed: u64) -> Option<(State, Judge, Vec<Header>)> {
        let mut u = Unstructured::new(bytes);
        let fs = FuzzState::arbitrary(&mut u).ok()?;
        let mut before = fs.state();
        // Some group references point outside the state: verdicts that depend on them
        // are unknown.
        for (i, r) in before.rules.iter_mut().enumerate() {
            if let crate::model::Peer::Group { group_id, .. } = &mut r.remote {
                if seed >> (i % 64) & 1 == 1 {
                    *group_id = "sg-elsewhere".into();
                }
            }
        }
        let mut after = before.clone();
        for &r in revoked {
            if !after.rules.is_empty() {
                let i = r % after.rules.len();
                after.rules.remove(i);
            }
        }
        // Judge::new takes any two states: sometimes a rule kept by ID changes its
        // action, and sometimes the state after gains a rule.
        if seed >> 62 & 1 == 1 {
            if let Some(r) = after.rules.first_mut() {
                r.action = match r.action {
                    crate::model::Action::Accept => crate::model::Action::Drop,
                    crate::model::Action::Drop => crate::model::Action::Accept,
                };
            }
        }
        if seed >> 61 & 1 == 1 && !before.rules.is_empty() {
            // A rule that matches what another does, first and the other way.
            let mut r = before.rules[(seed % before.rules.len() as u64) as usize].clone();
            r.id = "r-added".into();
            r.priority = crate::model::Priority(0);
            r.action = match r.action {
                crate::model::Action::Accept => crate::model::Action::Drop,
                crate::model::Action::Drop => crate::model::Action::Accept,
            };
            after.rules.push(r);
        }
        // Half the time, the revoke takes the unresolved references away too.
        if seed >> 63 == 1 {
            after.rules.retain(|r| {
                !matches!(&r.remote, crate::model::Peer::Group { group_id, .. }
                if group_id.as_str() == "sg-elsewhere")
            });
        }
        let judge = Judge::new(&before, &after, Config::default()).ok()?;
        // Headers aimed at the rules of both states (inside, on and past their edges,
        // replies), and some anywhere.
        let mut aimed = crate::packet::synth::aimed(&before, 48, seed, 0.1);
        aimed.extend(crate::packet::synth::aimed(&after, 32, seed ^ 1, 0.0));
        Some((before, judge, aimed.into_iter().map(|(_, h)| h).collect()))
    }

    /// The ends a header is judged at in the tests: its own ENIs, and ENIs of the state
    /// (any, when it has some) at one end or both, both ways.
    fn ends_to_try(judge: &Judge, h: &Header, enis: u32) -> [Ends; 5] {
        let some = |i: u32| (enis > 0).then_some(i % enis.max(1));
        [
            [judge.eni_of(h.src()), judge.eni_of(h.dst())],
            [some(0), None],
            [None, some(1)],
            [some(0), some(1)],
            [some(1), some(0)],
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// The world after reuses verdicts before (at ENIs the revoke does not touch, and
        /// where no revoked rule decided) exactly where looking them up gives the same
        /// fate: on fuzzed states ([`fuzzed`]), at every pair of ends, new or open at the
        /// revoke.
        #[test]
        fn reused_verdicts_give_the_fate_lookups_give(
            bytes in proptest::collection::vec(any::<u8>(), 256..4096),
            revoked in proptest::collection::vec(any::<usize>(), 1..4),
            seed in any::<u64>(),
        ) {
            let Some((before, judge, aimed)) = fuzzed(&bytes, &revoked, seed) else {
                return Ok(());
            };
            let enis = before.enis.len() as u32;
            for h in aimed {
                for ends in ends_to_try(&judge, &h, enis) {
                    for new in [false, true] {
                        prop_assert_eq!(
                            judge.fate_with(ends, &h, new, true),
                            judge.fate_with(ends, &h, new, false),
                            "{:?} at {:?}, new {}", h, ends, new
                        );
                    }
                }
            }
        }

        /// Connections of one kind (`classes.rs`: ENIs with the same groups, fields in
        /// the same intervals of their rules' bounds, addresses members of the same
        /// groups, new or not) have one fate: on fuzzed states ([`fuzzed`]), each aimed
        /// IPv4 header against headers moved to the ends of its intervals or inside them
        /// (a member address: to another member of the same groups there, or anywhere in
        /// its interval; ports other than TCP's and UDP's stay), at the ENIs it crosses
        /// and at others with the same groups.
        #[test]
        fn connections_of_one_kind_have_one_fate(
            bytes in proptest::collection::vec(any::<u8>(), 256..4096),
            revoked in proptest::collection::vec(any::<usize>(), 1..4),
            seed in any::<u64>(),
        ) {
            let Some((before, judge, aimed)) = fuzzed(&bytes, &revoked, seed) else {
                return Ok(());
            };
            let c = &judge.classes;
            let enis = before.enis.len() as u32;
            // The private IPv4 addresses of the ENIs: the members of groups.
            let member_addrs: Vec<u32> = before
                .enis
                .iter()
                .flat_map(|e| &e.ips)
                .filter_map(|ip| match ip {
                    IpAddr::V4(a) => Some(u32::from(*a)),
                    IpAddr::V6(_) => None,
                })
                .collect();
            let mut rng = crate::packet::synth::Rng::new(seed);
            let (mut compared, mut pairs) = (0, 0);
            for h in aimed {
                let (IpAddr::V4(src), IpAddr::V4(dst)) = (h.src(), h.dst()) else {
                    continue;
                };
                // Other protocols' ports (ICMP type and code) are part of the kind as they are.
                let port_intervals = matches!(h.protocol(), 6 | 17);
                for ends in ends_to_try(&judge, &h, enis) {
                    for variant in 0..4 {
                        let mut pick = |lo: u32, hi: u32| match variant {
                            0 => lo,
                            1 => hi,
                            _ => rng.in_range(lo.into(), hi.into()) as u32,
                        };
                        // A member moves to a member of the same groups in its interval at
                        // the connection's ENIs (one of them: itself), or (the last
                        // variant) to anywhere in that interval, which is another kind
                        // unless it lands on a member of those groups; any other address
                        // anywhere in its interval.
                        let mut addr = |field: usize, a: u32| {
                            let interval = c.interval(ends, field, a);
                            let classes = judge.members(a);
                            if classes == [0, 0] || variant == 3 {
                                return pick(interval.0, interval.1);
                            }
                            let like: Vec<u32> = member_addrs
                                .iter()
                                .copied()
                                .filter(|&x| judge.members(x) == classes)
                                .filter(|&x| c.interval(ends, field, x) == interval)
                                .collect();
                            like.get(pick(0, like.len() as u32 - 1) as usize)
                                .copied()
                                .unwrap_or(a)
                        };
                        let (s2, d2) = (addr(0, u32::from(src)), addr(1, u32::from(dst)));
                        let mut port = |field: usize, p: u16| {
                            if !port_intervals {
                                return p;
                            }
                            let (lo, hi) = c.interval(ends, field, p.into());
                            pick(lo, hi) as u16
                        };
                        let (sp, dp) = (port(2, h.src_port()), port(3, h.dst_port()));
                        let Ok(moved) = Header::new(
                            IpAddr::V4(s2.into()),
                            IpAddr::V4(d2.into()),
                            h.protocol(),
                            sp,
                            dp,
                        ) else {
                            continue;
                        };
                        // The moved header at these ENIs, and at others with the same groups.
                        let alike = ends.map(|e| {
                            e.map(|e| {
                                let groups = &before.enis[e as usize].groups;
                                (0..enis)
                                    .find(|&o| o != e && &before.enis[o as usize].groups == groups)
                                    .unwrap_or(e)
                            })
                        });
                        for new in [false, true] {
                            for there in [ends, alike] {
                                pairs += 1;
                                if judge.kind(ends, &h, new) != judge.kind(there, &moved, new) {
                                    continue;
                                }
                                compared += 1;
                                prop_assert_eq!(
                                    judge.fate(ends, &h, new),
                                    judge.fate(there, &moved, new),
                                    "{:?} at {:?} and {:?} at {:?}, new {}",
                                    h, ends, moved, there, new
                                );
                            }
                        }
                    }
                }
            }
            // Moving keeps the kind in three variants of four unless an address lands on a
            // member: many pairs are compared.
            prop_assert!(3 * compared >= pairs, "{} of {} pairs compared", compared, pairs);
        }
    }
}
