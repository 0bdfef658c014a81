//! The exact header-space difference of a revoke, computed from the rules alone.
//!
//! A revoke only removes rules, so a packet's verdict can change only where a removed rule
//! decided it before. Per distinct set of groups on the ENIs, direction and address family,
//! each rule (and each Alibaba inner-access grant, which comes first) is a set of headers
//! in an interval decision diagram (`whatif::dd`). For a removed rule `r` the headers it
//! decided are `match(r) ∧ ¬(match of everything earlier)`; the rules after it, in order,
//! take those headers over (or the default does), and the parts where the action differs
//! are the changed regions. Every set is exact: nothing is sampled or cut off. Sets are
//! only intersected with the headers that can exist (ICMP type and code 0-255, no ports on
//! protocols without them, ICMP over IPv4 and ICMPv6 over IPv6).
//!
//! Each changed set is read out as products of field sets (protocols, port ranges, address
//! blocks: "any except …" is one product), each with a witness packet that lies in it, is
//! judged as the region says, has source ≠ destination where the region allows it, and a
//! local address of the ENI where the region allows one. A region is listed for the ENIs
//! that have an address of its family.
//!
//! # Cost
//!
//! Member addresses are grouped once per state into atoms (addresses on ENIs of the same
//! groups, between the same block boundaries). Per group set, the remote field counts
//! classes of addresses that the set's rules treat alike (built from the atoms), so a group
//! reference is a few runs of class ids rather than one interval per member, and a rule is
//! a chain of at most five nodes. The earlier rules' union is built pairwise, so a group
//! whose rules each narrow a different field costs a few nodes per rule instead of (rules
//! per field)^fields pieces. ENIs with the same set of groups (in any order of attachment)
//! share everything. [`Config::max_nodes`] and
//! [`Config::max_regions`] bound the work: past them the answer says it is incomplete
//! ([`Diff::complete`]) and how far it got, rather than running unbounded.
//!
//! # Unresolved references
//!
//! A rule whose peer the state cannot resolve (a prefix list absent or without entries, a
//! group no export describes and no ENI carries) may match nothing or everything of its
//! family (SEMANTICS 3.1). Where its group set holds such a rule the diff is computed under
//! the readings "all match nothing", "all match everything" and, with two references or
//! more, "this one matches everything, the others nothing" for each (the engines' reading:
//! a verdict is unknown when one reference on its own could change it). Headers whose
//! change is the same under every reading are reported as usual, the others in regions
//! that name the references in `unresolved`; changes that only a reading other than
//! "nothing" makes have the reason `unresolved`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::rc::Rc;

use serde::Serialize;

use crate::classify::{rule_order, By, Decision, Semantics, SemanticsError, Verdict};
use crate::model::{
    Action, Cidr, Direction, EniId, Family, GroupId, Header, Peer, PortRange, Protocol, RuleId,
    State,
};
use crate::whatif::dd::{self, Cube, Dd, Id, Limit, Set, FALSE, TRUE};

/// Who decided, on one side of the revoke: the action and the deciding rule, or the kind of
/// default.
pub type Decider = crate::classify::Named;

/// Bounds of the exact computation.
#[derive(Clone, Debug)]
pub struct Config {
    /// Diagram nodes per address family before the computation stops (about 100 bytes a
    /// node with its share of the tables).
    pub max_nodes: usize,
    /// Regions reported before the computation stops.
    pub max_regions: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_nodes: 2_000_000,
            max_regions: 200_000,
        }
    }
}

/// Why the header space could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The state's semantics are inconsistent.
    #[error(transparent)]
    Semantics(#[from] SemanticsError),
}

impl From<crate::model::StateError> for Error {
    fn from(e: crate::model::StateError) -> Error {
        Error::Semantics(e.into())
    }
}

/// The header space a revoke changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diff {
    /// The changed regions, disjoint.
    pub regions: Vec<Region>,
    /// Whether `regions` is the whole answer (false only when a bound of [`Config`] was
    /// reached).
    pub complete: bool,
    /// When incomplete: how far the computation got.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
}

/// A product of field sets whose verdict the revoke changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Region {
    /// The ENIs that see this change (they share their groups and have an address of the
    /// region's family).
    pub enis: Vec<EniId>,
    /// Which way the packets cross them.
    pub direction: Direction,
    /// Address family.
    pub family: Family,
    /// Protocol numbers, as inclusive ranges.
    pub protocols: Vec<(u8, u8)>,
    /// Remote addresses, as the fewest CIDR blocks covering exactly the set, less the
    /// members of `remote_except_members`.
    pub remote: Vec<Cidr>,
    /// Groups whose members (private addresses) are not in the region although `remote`
    /// covers them (how "10.0.0.0/8 except the members of sg-1" is written).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub remote_except_members: Vec<GroupId>,
    /// Those members' addresses, as sorted intervals.
    #[serde(skip)]
    excluded: std::sync::Arc<Set>,
    /// Local addresses, likewise.
    pub local: Vec<Cidr>,
    /// Source ports (ICMP: types).
    pub src_ports: Vec<PortRange>,
    /// Destination ports (ICMP: codes).
    pub dst_ports: Vec<PortRange>,
    /// The verdict before the revoke (with unresolved references: as if they matched
    /// nothing).
    pub before: Decider,
    /// The verdict after.
    pub after: Decider,
    /// A packet in the region.
    pub witness: Header,
    /// Unresolved references on which this region's change depends: the change holds if
    /// they match nothing and may not otherwise (or the reverse). Empty when certain.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unresolved: Vec<String>,
}

impl Region {
    /// Whether a header (judged in this region's direction) lies in the region.
    pub fn contains(&self, h: &Header) -> bool {
        let remote = h.remote(self.direction);
        let local = h.local(self.direction);
        Family::of(remote) == self.family
            && self.remote.iter().any(|c| c.contains(remote))
            && !self.excluded.iter().any(|&(lo, hi)| {
                let v = host(remote).1;
                lo <= v && v <= hi
            })
            && self.local.iter().any(|c| c.contains(local))
            && self.src_ports.iter().any(|p| p.contains(h.src_port()))
            && self.dst_ports.iter().any(|p| p.contains(h.dst_port()))
            && self
                .protocols
                .iter()
                .any(|&(lo, hi)| (lo..=hi).contains(&h.protocol()))
    }
}

/// Whether a header can exist as sgsim decodes packets and flow records: ports only on
/// port-bearing protocols (0 otherwise), ICMP type and code 0-255, ICMP over IPv4 and
/// ICMPv6 over IPv6 (each as a protocol without ports over the other family).
pub fn realizable(h: &Header) -> bool {
    let icmp = match h.family() {
        Family::V4 => 1,
        Family::V6 => 58,
    };
    if PORTED.contains(&h.protocol()) {
        true
    } else if h.protocol() == icmp {
        h.src_port() <= 255 && h.dst_port() <= 255
    } else {
        h.src_port() == 0 && h.dst_port() == 0
    }
}

/// Protocols whose packets carry ports (TCP, UDP, DCCP, SCTP, UDP-Lite), as decoded.
const PORTED: [u8; 5] = [6, 17, 33, 132, 136];

/// The regions whose verdict changes when the rules `removed` are taken out of `before`.
/// Deterministic: regions come ordered by ENI set, direction, family, removed rule and
/// the order the rules take over.
pub fn revoke_diff(before: &State, removed: &[RuleId]) -> Result<Diff, Error> {
    revoke_diff_with(before, removed, &Config::default())
}

/// [`revoke_diff`] with explicit bounds.
pub fn revoke_diff_with(
    before: &State,
    removed: &[RuleId],
    config: &Config,
) -> Result<Diff, Error> {
    before.validate()?;
    let gone: HashSet<&RuleId> = removed.iter().collect();
    let gone_idx: Vec<bool> = before.rules.iter().map(|r| gone.contains(&r.id)).collect();
    let touched_groups: HashSet<&GroupId> = before
        .rules
        .iter()
        .zip(&gone_idx)
        .filter(|(_, &g)| g)
        .map(|(r, _)| &r.group)
        .collect();
    let mut ctx = Ctx::new(before, config);
    let mut out = Diff {
        regions: Vec::new(),
        complete: true,
        stopped: None,
    };
    let sets = eni_sets(before);
    let touched: Vec<&Vec<usize>> = sets
        .iter()
        .filter(|enis| {
            before.enis[enis[0]]
                .groups
                .iter()
                .any(|g| touched_groups.contains(g))
        })
        .collect();
    for (n, enis) in touched.iter().enumerate() {
        let semantics = Semantics::of(before, enis[0])?;
        for direction in Direction::BOTH {
            for family in [Family::V4, Family::V6] {
                let f = fam(family);
                let listed: Vec<EniId> = enis
                    .iter()
                    .map(|&e| &before.enis[e])
                    .filter(|e| has_family(e, family))
                    .map(|e| e.id.clone())
                    .collect();
                if listed.is_empty() {
                    continue;
                }
                let set = SetDiff {
                    enis: enis.as_slice(),
                    listed: &listed,
                    semantics: &semantics,
                    direction,
                    family,
                    gone: &gone_idx,
                };
                let r = ctx.diff_set(&set, &mut out.regions);
                let stop = match r {
                    Ok(()) => None,
                    Err(Stop::Regions) => {
                        Some(format!("region limit of {} reached", config.max_regions))
                    }
                    Err(Stop::Nodes) => Some(format!(
                        "node limit of {} reached ({} diagram nodes)",
                        config.max_nodes,
                        ctx.dd[f].len()
                    )),
                };
                if let Some(why) = stop {
                    out.complete = false;
                    out.stopped = Some(format!(
                        "{why} at ENI set {} of {} ({}), {direction}, {}; the regions listed are exact but others may be missing",
                        n + 1,
                        touched.len(),
                        before.enis[enis[0]].id,
                        family_name(family),
                    ));
                    return Ok(out);
                }
            }
        }
    }
    Ok(out)
}

fn family_name(f: Family) -> &'static str {
    match f {
        Family::V4 => "IPv4",
        Family::V6 => "IPv6",
    }
}

pub(crate) fn fam(f: Family) -> usize {
    match f {
        Family::V4 => 0,
        Family::V6 => 1,
    }
}

fn has_family(eni: &crate::model::Eni, family: Family) -> bool {
    eni.ips
        .iter()
        .chain(&eni.public_ips)
        .any(|&ip| Family::of(crate::model::normalize_addr(ip)) == family)
}

/// ENI indexes grouped by their set of attached groups (which decides the rules they see;
/// the order of attachment decides nothing the diff or lint reports), in a stable order.
pub(crate) fn eni_sets(state: &State) -> Vec<Vec<usize>> {
    let mut sets: BTreeMap<Vec<&GroupId>, Vec<usize>> = BTreeMap::new();
    for (i, eni) in state.enis.iter().enumerate() {
        let mut groups: Vec<&GroupId> = eni.groups.iter().collect();
        groups.sort_unstable();
        groups.dedup();
        sets.entry(groups).or_default().push(i);
    }
    sets.into_values().collect()
}

/// One rule or inner-access grant in a group set's evaluation order, as a header set.
#[derive(Clone)]
pub(crate) struct Item {
    /// What decides when it matches.
    pub verdict: Verdict,
    /// The headers it matches (that can exist); unresolved rules: nothing.
    pub node: Id,
    /// Its fields (a superset of `node`, for quick disjointness tests).
    pub cube: Rc<Cube>,
    /// The reference it cannot resolve, if any, with the headers it matches when read as
    /// matching everything of the family.
    pub unresolved: Option<(String, Id)>,
}

/// One group set, direction and family to diff.
struct SetDiff<'s> {
    enis: &'s [usize],
    listed: &'s [EniId],
    semantics: &'s Semantics,
    direction: Direction,
    family: Family,
    gone: &'s [bool],
}

/// Per family and list of member groups: their members' addresses.
type Excluded = HashMap<(usize, Vec<u32>), std::sync::Arc<Set>>;

/// What the diff and lint share: the state indexed once, and one diagram store per family.
pub(crate) struct Ctx<'a> {
    pub state: &'a State,
    pub dd: [Dd; 2],
    /// Groups with members, numbered (the member groups of [`Members`]).
    member_index: HashMap<&'a GroupId, u32>,
    /// Per family: the member addresses as atoms.
    addresses: [Members; 2],
    /// Per family and list of member groups: their members' addresses (regions share
    /// them for `Region::contains`).
    excluded: std::cell::RefCell<Excluded>,
    groups: HashSet<&'a GroupId>,
    group_index: HashMap<&'a GroupId, u32>,
    prefix_lists: HashMap<&'a str, &'a crate::model::PrefixList>,
    /// Per (direction, group): rule indexes in evaluation order.
    by_group: HashMap<(Direction, &'a GroupId), Vec<u32>>,
    /// Per family: the headers that can exist.
    universe: [Id; 2],
    /// Per (rule, family): its fields.
    rules: HashMap<(u32, usize), Spec>,
    config: Config,
}

fn host(ip: IpAddr) -> (usize, u128) {
    match crate::model::normalize_addr(ip) {
        IpAddr::V4(a) => (0, u128::from(u32::from(a))),
        IpAddr::V6(a) => (1, u128::from(a)),
    }
}

fn family_max(f: usize) -> u128 {
    if f == 0 {
        u128::from(u32::MAX)
    } else {
        u128::MAX
    }
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(state: &'a State, config: &Config) -> Ctx<'a> {
        let mut raw: HashMap<&GroupId, [Set; 2]> = HashMap::new();
        for eni in &state.enis {
            let mut seen = HashSet::new();
            for g in eni.groups.iter().filter(|g| seen.insert(*g)) {
                let m = raw.entry(g).or_default();
                for &ip in &eni.ips {
                    let (f, v) = host(ip);
                    m[f].push((v, v));
                }
            }
        }
        let mut member_groups: Vec<&GroupId> = raw.keys().copied().collect();
        member_groups.sort_unstable();
        let member_index: HashMap<&GroupId, u32> = member_groups
            .iter()
            .enumerate()
            .map(|(i, &g)| (g, i as u32))
            .collect();
        let mut hosts: [Vec<(u128, u32)>; 2] = Default::default();
        for (g, sets) in &raw {
            for (f, set) in sets.iter().enumerate() {
                hosts[f].extend(set.iter().map(|&(v, _)| (v, member_index[g])));
            }
        }
        // The boundaries of every block a rule or prefix list names, per family.
        let mut cuts: [Vec<u128>; 2] = Default::default();
        let blocks = state
            .rules
            .iter()
            .filter_map(|r| match &r.remote {
                Peer::Cidr { cidr } => Some(cidr),
                _ => None,
            })
            .chain(state.prefix_lists.iter().flat_map(|p| &p.entries));
        for c in blocks {
            let f = fam(c.family());
            let (lo, hi) = c.range();
            cuts[f].push(lo);
            if hi < family_max(f) {
                cuts[f].push(hi + 1);
            }
        }
        for c in &mut cuts {
            c.sort_unstable();
            c.dedup();
        }
        let [h4, h6] = hosts;
        let addresses = [
            Members::new(h4, &cuts[0], member_groups.len()),
            Members::new(h6, &cuts[1], member_groups.len()),
        ];

        let mut by_group: HashMap<(Direction, &GroupId), Vec<u32>> = HashMap::new();
        for (i, r) in state.rules.iter().enumerate() {
            by_group
                .entry((r.direction, &r.group))
                .or_default()
                .push(i as u32);
        }
        for v in by_group.values_mut() {
            v.sort_by_key(|&r| rule_order(state, r as usize));
        }
        let mut dd = [
            Dd::new(family_max(0), config.max_nodes),
            Dd::new(family_max(1), config.max_nodes),
        ];
        let universe = [universe(&mut dd[0], 0), universe(&mut dd[1], 1)];
        Ctx {
            state,
            dd,
            member_index,
            addresses,
            excluded: Default::default(),
            groups: state.groups.iter().map(|g| &g.id).collect(),
            group_index: state
                .groups
                .iter()
                .enumerate()
                .map(|(i, g)| (&g.id, i as u32))
                .collect(),
            prefix_lists: state
                .prefix_lists
                .iter()
                .map(|p| (p.id.as_str(), p))
                .collect(),
            by_group,
            universe,
            rules: HashMap::new(),
            config: config.clone(),
        }
    }

    /// The remote addresses of a peer in family `f`.
    fn remote(&self, peer: &Peer, f: usize) -> Remote {
        let none = || Remote::Blocks(Rc::new(Vec::new()));
        match peer {
            Peer::Cidr { cidr } => {
                if fam(cidr.family()) == f {
                    Remote::Blocks(Rc::new(vec![cidr.range()]))
                } else {
                    none()
                }
            }
            Peer::Group { group_id, .. } => match self.member_index.get(group_id) {
                Some(&g) => Remote::Members(g),
                None if self.groups.contains(group_id) => none(),
                None => Remote::Unresolved(group_id.to_string()),
            },
            Peer::PrefixList { prefix_list_id } => {
                match self.prefix_lists.get(prefix_list_id.as_str()) {
                    Some(pl) if !pl.entries.is_empty() => Remote::Blocks(Rc::new(dd::normalize(
                        pl.entries
                            .iter()
                            .filter(|c| fam(c.family()) == f)
                            .map(|c| c.range())
                            .collect(),
                    ))),
                    _ => Remote::Unresolved(prefix_list_id.to_string()),
                }
            }
        }
    }

    /// Rule `r`'s fields in family `f` (worked out once).
    fn rule_spec(&mut self, r: u32, f: usize) -> Spec {
        if let Some(s) = self.rules.get(&(r, f)) {
            return s.clone();
        }
        let rule = &self.state.rules[r as usize];
        let full = family_max(f);
        let local = match rule.local {
            Some(l) if fam(l.family()) == f => vec![l.range()],
            Some(_) => Vec::new(),
            None => vec![(0, full)],
        };
        let proto = match rule.protocol {
            Protocol::Any => vec![(0, 255)],
            Protocol::Number(n) => vec![(u128::from(n), u128::from(n))],
        };
        let ports = |p: PortRange| vec![(u128::from(p.lo()), u128::from(p.hi()))];
        let spec = Spec {
            verdict: Verdict::rule(rule.action, r),
            fields: Rc::new([
                proto,
                ports(rule.dst_ports),
                ports(rule.src_ports),
                Vec::new(),
                local,
            ]),
            remote: self.remote(&rule.remote, f),
        };
        self.rules.insert((r, f), spec.clone());
        spec
    }

    /// Group `g`'s inner-access grant in family `f`: every header whose remote address is
    /// a member.
    fn inner_spec(&self, g: u32, f: usize) -> Spec {
        let gid = &self.state.groups[g as usize].id;
        let fields: Cube = std::array::from_fn(|k| vec![(0, self.dd[f].max[k])]);
        Spec {
            verdict: Verdict::inner_access(g),
            fields: Rc::new(fields),
            remote: match self.member_index.get(gid) {
                Some(&m) => Remote::Members(m),
                None => Remote::Blocks(Rc::new(Vec::new())),
            },
        }
    }

    /// The evaluation order at ENI `eni` in `direction`, family `f`: inner-access grants
    /// first (Alibaba basic groups whose policy is accept, SEMANTICS 3.3), then every rule
    /// of its groups by priority, drop before accept, position; with the classes their
    /// remote field counts.
    ///
    /// The remote field's domain is this set's classes, so the store must hold no node
    /// that tests the remote field when this is called (take the checkpoint to roll back
    /// to before it), and the items are valid until that rollback.
    pub(crate) fn items(
        &mut self,
        eni: usize,
        semantics: &Semantics,
        direction: Direction,
        f: usize,
    ) -> Result<(Vec<Item>, Classes), Limit> {
        let state = self.state;
        let mut specs = Vec::new();
        for &g in &semantics.inner_access {
            specs.push(self.inner_spec(g, f));
        }
        let mut seen = HashSet::new();
        let mut order: Vec<u32> = state.enis[eni]
            .groups
            .iter()
            .filter(|g| seen.insert(*g))
            .filter(|g| self.group_index.contains_key(g))
            .flat_map(|g| self.by_group.get(&(direction, g)).into_iter().flatten())
            .copied()
            .collect();
        order.sort_by_key(|&r| rule_order(state, r as usize));
        for r in order {
            specs.push(self.rule_spec(r, f));
        }
        let remotes: Vec<&Remote> = specs.iter().map(|s| &s.remote).collect();
        let classes = Classes::build(&mut self.addresses[f], &remotes, family_max(f));
        let universe = self.universe[f];
        let d = &mut self.dd[f];
        d.max[dd::REMOTE] = classes.last();
        let mut out = Vec::with_capacity(specs.len());
        for s in specs {
            let mut cube = (*s.fields).clone();
            cube[dd::REMOTE] = classes.ids(&s.remote);
            let raw = d.cube(&cube)?;
            let node = d.and(raw, universe)?;
            let (node, unresolved) = match s.remote {
                Remote::Unresolved(name) => (FALSE, Some((name, node))),
                _ => (node, None),
            };
            out.push(Item {
                verdict: s.verdict,
                node,
                cube: Rc::new(cube),
                unresolved,
            });
        }
        Ok((out, classes))
    }

    /// The headers of family `f` that can exist.
    pub(crate) fn universe(&self, f: usize) -> Id {
        self.universe[f]
    }

    /// The headers accepted by the first matching item (or the fallback), with the
    /// unresolved references read as `reading` says.
    pub(crate) fn accepted(
        &mut self,
        items: &[&Item],
        fallback: Action,
        reading: Reading<'_>,
        f: usize,
    ) -> Result<Id, Limit> {
        let d = &mut self.dd[f];
        let mut acc = if fallback == Action::Accept {
            self.universe[f]
        } else {
            FALSE
        };
        for it in items.iter().rev() {
            let m = match (&it.unresolved, reading) {
                (Some((_, n)), Reading::All) => *n,
                (Some((name, n)), Reading::Only(x)) if name == x => *n,
                _ => it.node,
            };
            if m == FALSE {
                continue;
            }
            acc = if it.verdict.action == Decision::Accept {
                d.or(acc, m)?
            } else {
                d.and_not(acc, m)?
            };
        }
        Ok(acc)
    }

    fn diff_set(&mut self, set: &SetDiff<'_>, out: &mut Vec<Region>) -> Result<(), Stop> {
        let f = fam(set.family);
        // Everything this set builds is garbage once its regions are read out.
        let checkpoint = self.dd[f].checkpoint();
        let r = self
            .items(set.enis[0], set.semantics, set.direction, f)
            .map_err(Stop::from)
            .and_then(|(items, classes)| self.diff_items(set, &items, &classes, out));
        self.dd[f].rollback(checkpoint);
        r
    }

    fn diff_items(
        &mut self,
        set: &SetDiff<'_>,
        items: &[Item],
        classes: &Classes,
        out: &mut Vec<Region>,
    ) -> Result<(), Stop> {
        let f = fam(set.family);
        let fallback = set.semantics.fallback(set.direction);
        let gone = |it: &Item| matches!(it.verdict.by, By::Rule(r) if set.gone[r as usize]);
        let unresolved: Vec<String> = items
            .iter()
            .filter_map(|it| it.unresolved.as_ref().map(|u| u.0.clone()))
            .collect();
        // Where the change is not the same under every reading of the unresolved
        // references: the verdict before or after differs between "they match nothing"
        // and another reading. The readings are all of them matching everything of the
        // family, and (with two references or more) each on its own, as the engines read
        // them (SEMANTICS 3.1).
        let mut doubt = FALSE;
        let mut extra = [FALSE; 2];
        if !unresolved.is_empty() {
            let mut names: Vec<&str> = unresolved.iter().map(String::as_str).collect();
            names.sort_unstable();
            names.dedup();
            let mut readings = vec![Reading::All];
            if names.len() > 1 {
                readings.extend(names.iter().map(|&n| Reading::Only(n)));
            }
            let all: Vec<&Item> = items.iter().collect();
            let kept: Vec<&Item> = items.iter().filter(|it| !gone(it)).collect();
            let bn = self.accepted(&all, fallback, Reading::Nothing, f)?;
            let an = self.accepted(&kept, fallback, Reading::Nothing, f)?;
            let cn = xor(&mut self.dd[f], bn, an)?;
            for reading in readings {
                let b = self.accepted(&all, fallback, reading, f)?;
                let a = self.accepted(&kept, fallback, reading, f)?;
                let d = &mut self.dd[f];
                let xb = xor(d, bn, b)?;
                let xa = xor(d, an, a)?;
                let x = d.or(xb, xa)?;
                doubt = d.or(doubt, x)?;
                // Changes that only other readings make, by their action before under
                // the first reading (in this order) that makes them.
                let c = xor(d, b, a)?;
                let seen = d.or(extra[0], extra[1])?;
                let seen = d.or(seen, cn)?;
                let only = d.and_not(c, seen)?;
                let (accepted, dropped) = (d.and(only, b)?, d.and_not(only, b)?);
                extra = [d.or(extra[0], accepted)?, d.or(extra[1], dropped)?];
            }
        }
        let mut named: Vec<GroupId> = Vec::new();
        for it in items {
            let gid = match it.verdict.by {
                By::InnerAccess(g) => Some(&self.state.groups[g as usize].id),
                By::Rule(r) => match &self.state.rules[r as usize].remote {
                    Peer::Group { group_id, .. } => Some(group_id),
                    _ => None,
                },
                By::Default | By::Unresolved(_) | By::UnloggedIcmp => None,
            };
            if let Some(g) = gid {
                if !named.contains(g) {
                    named.push(g.clone());
                }
            }
        }
        named.sort();
        let groups = named
            .into_iter()
            .filter_map(|g| {
                let &m = self.member_index.get(&g)?;
                classes.groups.contains_key(&m).then_some((g, m))
            })
            .collect();
        let sources = Sources {
            set,
            unresolved: &unresolved,
            groups,
            classes,
            own: set
                .enis
                .iter()
                .flat_map(|&e| {
                    let eni = &self.state.enis[e];
                    eni.ips.iter().chain(&eni.public_ips).copied()
                })
                .map(host)
                .filter(|&(g, _)| g == f)
                .map(|(_, v)| v)
                .collect(),
            read: Default::default(),
        };
        // Reading "nothing": the regions with their deciders.
        for (p, r) in items.iter().enumerate() {
            if !gone(r) || r.node == FALSE {
                continue;
            }
            let earlier: Vec<Id> = items[..p]
                .iter()
                .filter(|e| Dd::cubes_meet(&e.cube, &r.cube))
                .map(|e| e.node)
                .collect();
            let d = &mut self.dd[f];
            let union = d.or_all(earlier)?;
            let mut rest = d.and_not(r.node, union)?;
            for q in items[p + 1..].iter().filter(|q| !gone(q)) {
                if rest == FALSE {
                    break;
                }
                if q.node == FALSE || !Dd::cubes_meet(&q.cube, &r.cube) {
                    continue;
                }
                let d = &mut self.dd[f];
                let part = d.and(rest, q.node)?;
                if part == FALSE {
                    continue;
                }
                rest = d.and_not(rest, q.node)?;
                if q.verdict.action != r.verdict.action {
                    self.emit(&sources, part, doubt, r.verdict, q.verdict, out)?;
                }
            }
            if rest != FALSE && Decision::from(fallback) != r.verdict.action {
                let v = Verdict::default_of(fallback);
                self.emit(&sources, rest, doubt, r.verdict, v, out)?;
            }
        }
        // Changes that only the reading "everything" makes: their verdicts depend on the
        // unresolved references alone.
        for (node, action) in extra.into_iter().zip([Action::Accept, Action::Drop]) {
            if node == FALSE {
                continue;
            }
            let flip = match action {
                Action::Accept => Action::Drop,
                Action::Drop => Action::Accept,
            };
            let named = |action: Action| Decider {
                action: action.into(),
                rule: None,
                reason: "unresolved",
            };
            self.emit_named(&sources, node, TRUE, named(action), named(flip), out)?;
        }
        Ok(())
    }

    /// Reads `part` out as regions, split into the part outside `doubt` (certain) and
    /// inside it (depends on unresolved references).
    fn emit(
        &mut self,
        src: &Sources<'_, '_>,
        part: Id,
        doubt: Id,
        before: Verdict,
        after: Verdict,
        out: &mut Vec<Region>,
    ) -> Result<(), Stop> {
        let name = |v: Verdict| Decider::of(v, |i| self.state.rules[i as usize].id.clone());
        let (before, after) = (name(before), name(after));
        self.emit_named(src, part, doubt, before, after, out)
    }

    fn emit_named(
        &mut self,
        src: &Sources<'_, '_>,
        part: Id,
        doubt: Id,
        before: Decider,
        after: Decider,
        out: &mut Vec<Region>,
    ) -> Result<(), Stop> {
        let f = fam(src.set.family);
        let d = &mut self.dd[f];
        let sure = d.and_not(part, doubt)?;
        let unsure = d.and(part, doubt)?;
        for (node, unresolved) in [(sure, Vec::new()), (unsure, src.unresolved.to_vec())] {
            if node == FALSE {
                continue;
            }
            let room = self.config.max_regions.saturating_sub(out.len());
            let products = self.dd[f].products(node, room).map_err(|_| Stop::Regions)?;
            for cube in products {
                out.push(self.region(
                    src,
                    &cube,
                    before.clone(),
                    after.clone(),
                    unresolved.clone(),
                ));
            }
        }
        Ok(())
    }

    fn region(
        &self,
        src: &Sources<'_, '_>,
        cube: &Cube,
        before: Decider,
        after: Decider,
        unresolved: Vec<String>,
    ) -> Region {
        let set = src.set;
        let family = set.family;
        let blocks = |s: &Set| -> Vec<Cidr> {
            s.iter()
                .flat_map(|&(lo, hi)| cidrs(family, lo, hi))
                .collect()
        };
        let known = src.read.borrow().get(&cube[dd::REMOTE]).cloned();
        let read = known.unwrap_or_else(|| {
            let ids = &cube[dd::REMOTE];
            let members = &self.addresses[fam(family)];
            let addresses = src.classes.addresses(ids, members);
            let of_groups = |groups: Vec<u32>| {
                let key = (fam(family), groups);
                let known = self.excluded.borrow().get(&key).cloned();
                known.unwrap_or_else(|| {
                    let set = std::sync::Arc::new(members.of_groups(&key.1));
                    self.excluded.borrow_mut().insert(key, set.clone());
                    set
                })
            };
            let (remote, except, excluded) = less_members(ids, &addresses, src, members, of_groups);
            let read = Rc::new(Readout {
                remote: blocks(&remote),
                except,
                excluded,
                addresses,
            });
            src.read.borrow_mut().insert(ids.clone(), read.clone());
            read
        });
        let mut cube = cube.clone();
        cube[dd::REMOTE] = read.addresses.clone();
        let cube = &cube;
        let witness = witness(family, set.direction, cube, &src.own);
        let ports = |s: &Set| -> Vec<PortRange> {
            s.iter()
                .filter_map(|&(lo, hi)| PortRange::new(lo as u16, hi as u16).ok())
                .collect()
        };
        Region {
            enis: set.listed.to_vec(),
            direction: set.direction,
            family,
            protocols: cube[dd::PROTO]
                .iter()
                .map(|&(lo, hi)| (lo as u8, hi as u8))
                .collect(),
            remote: read.remote.clone(),
            remote_except_members: read.except.clone(),
            excluded: read.excluded.clone(),
            local: blocks(&cube[dd::LOCAL]),
            src_ports: ports(&cube[dd::SPORT]),
            dst_ports: ports(&cube[dd::DPORT]),
            before,
            after,
            witness,
            unresolved,
        }
    }
}

/// How unresolved references (SEMANTICS 3.1) are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reading<'r> {
    /// They match nothing.
    Nothing,
    /// They all match every address of the family.
    All,
    /// This one matches every address of the family, the others nothing.
    Only(&'r str),
}

/// Why a diff stopped early.
enum Stop {
    /// A diagram store reached its node limit.
    Nodes,
    /// The regions reached their limit.
    Regions,
}

impl From<Limit> for Stop {
    fn from(_: Limit) -> Stop {
        Stop::Nodes
    }
}

struct Sources<'s, 't> {
    set: &'s SetDiff<'t>,
    unresolved: &'s [String],
    /// Groups whose members the set's items name (inner access, group peers), with their
    /// members in the set's family (by member-group index): remote sets are written as
    /// blocks less some of them.
    groups: Vec<(GroupId, u32)>,
    /// What the remote field's values stand for.
    classes: &'s Classes,
    /// The addresses of the set's ENIs in its family (for witnesses).
    own: Vec<u128>,
    /// Remote id sets read out so far (a set's regions share a few).
    read: std::cell::RefCell<HashMap<Set, Rc<Readout>>>,
}

/// A remote field read out for people.
struct Readout {
    /// The addresses.
    addresses: Set,
    /// As blocks less the members of `except` (see [`less_members`]).
    remote: Vec<Cidr>,
    except: Vec<GroupId>,
    excluded: std::sync::Arc<Set>,
}

/// An item's fields before its group set's classes are known.
#[derive(Clone)]
struct Spec {
    verdict: Verdict,
    /// Every field but the remote one (left empty).
    fields: Rc<Cube>,
    remote: Remote,
}

fn xor(d: &mut Dd, a: Id, b: Id) -> Result<Id, Limit> {
    let x = d.and_not(a, b)?;
    let y = d.and_not(b, a)?;
    d.or(x, y)
}

/// The headers of family `f` that can exist (see [`realizable`]).
fn universe(d: &mut Dd, f: usize) -> Id {
    let full = |d: &Dd| -> Cube { std::array::from_fn(|k| vec![(0, d.max[k])]) };
    let icmp: u128 = if f == 0 { 1 } else { 58 };
    let mut ported = full(d);
    ported[dd::PROTO] = PORTED
        .iter()
        .map(|&p| (u128::from(p), u128::from(p)))
        .collect();
    let mut icmps = full(d);
    icmps[dd::PROTO] = vec![(icmp, icmp)];
    icmps[dd::DPORT] = vec![(0, 255)];
    icmps[dd::SPORT] = vec![(0, 255)];
    let mut bare = full(d);
    bare[dd::PROTO] = dd::normalize(
        (0..=255u128)
            .filter(|p| *p != icmp && !PORTED.contains(&(*p as u8)))
            .map(|p| (p, p))
            .collect(),
    );
    bare[dd::DPORT] = vec![(0, 0)];
    bare[dd::SPORT] = vec![(0, 0)];
    // Invariant: a fresh store holds far fewer nodes than any limit worth setting.
    let ids: Vec<Id> = [ported, icmps, bare]
        .iter()
        .filter_map(|c| d.cube(c).ok())
        .collect();
    d.or_all(ids).unwrap_or(TRUE)
}

fn addr(family: Family, v: u128) -> IpAddr {
    match family {
        // Invariant: IPv4 sets hold values below 2^32.
        Family::V4 => IpAddr::V4(Ipv4Addr::from(v as u32)),
        Family::V6 => IpAddr::V6(Ipv6Addr::from(v)),
    }
}

/// The first of `preferred` in `set`, else its lowest value.
fn pick(set: &Set, preferred: &[u128]) -> u128 {
    preferred
        .iter()
        .copied()
        .find(|v| set.iter().any(|&(lo, hi)| lo <= *v && *v <= hi))
        .unwrap_or(set.first().map_or(0, |s| s.0))
}

/// A value of `set` other than `not`, if there is one.
fn other(set: &Set, not: u128) -> Option<u128> {
    set.iter().find_map(|&(lo, hi)| {
        if lo != not {
            Some(lo)
        } else if hi > lo {
            Some(lo + 1)
        } else {
            None
        }
    })
}

/// A remote set (`ids`, whose addresses are `set`) as blocks less the members of some
/// groups, when that is much shorter: the groups named whose members all lie outside the
/// set are added back to it, and kept when the blocks covering the result are fewer than
/// half as many. Exact either way: `set` = the blocks less those members. Worked out on
/// class ids, where a group's members are a few runs.
fn less_members(
    ids: &Set,
    set: &Set,
    src: &Sources<'_, '_>,
    members: &Members,
    of_groups: impl FnOnce(Vec<u32>) -> std::sync::Arc<Set>,
) -> (Set, Vec<GroupId>, std::sync::Arc<Set>) {
    let none = || (set.clone(), Vec::new(), std::sync::Arc::new(Vec::new()));
    if set.len() < 8 {
        return none();
    }
    let classes = src.classes;
    let outside: Vec<&(GroupId, u32)> = src
        .groups
        .iter()
        .filter(|(_, g)| {
            classes
                .groups
                .get(g)
                .is_some_and(|runs| !dd::sets_meet(ids, runs))
        })
        .collect();
    if outside.is_empty() {
        return none();
    }
    let theirs = outside.iter().fold(Vec::new(), |acc, (_, g)| {
        dd::union(&acc, &classes.groups[g])
    });
    let joined = classes.addresses(&dd::union(ids, &theirs), members);
    if joined.len() * 2 > set.len() {
        return none();
    }
    let excluded = of_groups(outside.iter().map(|(_, g)| *g).collect());
    (
        joined,
        outside.into_iter().map(|(g, _)| g.clone()).collect(),
        excluded,
    )
}

/// A packet in the product `cube`: a common protocol, ports a client would use (ICMP:
/// echo request), a documentation address for the remote side, one of the ENI's own
/// addresses for the local side, and source ≠ destination where the region allows it.
fn witness(family: Family, direction: Direction, cube: &Cube, own: &[u128]) -> Header {
    let icmp: u128 = if family == Family::V4 { 1 } else { 58 };
    let proto = pick(&cube[dd::PROTO], &[6, 17, icmp]);
    let (sport, dport) = if proto == icmp {
        (
            pick(&cube[dd::SPORT], &[8, 0]),
            pick(&cube[dd::DPORT], &[0]),
        )
    } else {
        (
            pick(&cube[dd::SPORT], &[40000, 1024]),
            pick(&cube[dd::DPORT], &[443, 80, 22]),
        )
    };
    // Documentation addresses read better than 0.0.0.0 when the region allows them.
    let documentation: [u128; 3] = match family {
        Family::V4 => [0xcb00_7107, 0xc633_6407, 0x0800_0808],
        Family::V6 => [0x2001_0db8_0000_0000_0000_0000_0000_0007, 1, 2],
    };
    let mut local = pick(&cube[dd::LOCAL], own);
    let mut remote = pick(&cube[dd::REMOTE], &documentation);
    if remote == local {
        if let Some(r) = other(&cube[dd::REMOTE], local) {
            remote = r;
        } else if let Some(l) = other(&cube[dd::LOCAL], remote) {
            local = l;
        }
    }
    let (remote, local) = (addr(family, remote), addr(family, local));
    let (src, dst) = match direction {
        Direction::Ingress => (remote, local),
        Direction::Egress => (local, remote),
    };
    // One family by construction; addresses as the region holds them.
    Header::new_unchecked(src, dst, proto as u8, sport as u16, dport as u16)
}

/// The fewest CIDR blocks that cover exactly `lo..=hi`.
pub fn cidrs(family: Family, lo: u128, hi: u128) -> Vec<Cidr> {
    let bits = u32::from(family.max_len());
    // The last offset of a block of 2^size addresses.
    let span = |size: u32| {
        if size >= 128 {
            u128::MAX
        } else {
            (1u128 << size) - 1
        }
    };
    let mut out = Vec::new();
    let mut at = lo;
    loop {
        // The largest aligned block starting at `at` that stays within `hi`.
        let mut size = if at == 0 {
            bits
        } else {
            at.trailing_zeros().min(bits)
        };
        while size > 0 && at.checked_add(span(size)).is_none_or(|end| end > hi) {
            size -= 1;
        }
        // Invariant: `bits - size` is within the family and `at` is aligned to it.
        if let Ok(c) = Cidr::new(addr(family, at), (bits - size) as u8) {
            out.push(c);
        }
        let end = at.saturating_add(span(size));
        if end >= hi {
            break;
        }
        at = end + 1;
    }
    out
}

/// The member addresses of one family, split once for the whole state: addresses on ENIs
/// of the same groups, between the same boundaries of the blocks that rules and prefix
/// lists name, form one atom. A group set's [`Classes`] are unions of atoms, so building
/// them never visits an address.
struct Members {
    /// Per atom: its addresses, sorted (atoms in the order of their lowest address).
    atoms: Vec<Vec<u128>>,
    /// Per atom: its lowest address.
    lows: Vec<u128>,
    /// Every member address with its atom, sorted.
    sorted: Vec<(u128, u32)>,
    /// Per member group (see [`Ctx::member_index`]): the atoms of its members.
    by_group: Vec<Vec<u32>>,
    /// Scratch for [`Classes::build`]: per atom, its slot among the atoms a set touches
    /// (`u32::MAX` when untouched).
    slot: Vec<u32>,
}

impl Members {
    /// `hosts` are (address, member group) pairs; `cuts` the sorted starts of the
    /// intervals that the state's blocks split the family into.
    fn new(mut hosts: Vec<(u128, u32)>, cuts: &[u128], groups: usize) -> Members {
        hosts.sort_unstable();
        hosts.dedup();
        let mut atoms: Vec<Vec<u128>> = Vec::new();
        let mut by_group: Vec<Vec<u32>> = vec![Vec::new(); groups];
        let mut index: HashMap<(usize, Vec<u32>), u32> = HashMap::new();
        let mut sorted: Vec<(u128, u32)> = Vec::new();
        let mut k = 0;
        while k < hosts.len() {
            let addr = hosts[k].0;
            let mut gs = Vec::new();
            while k < hosts.len() && hosts[k].0 == addr {
                gs.push(hosts[k].1);
                k += 1;
            }
            let cut = cuts.partition_point(|&c| c <= addr);
            let next = atoms.len() as u32;
            let id = *index.entry((cut, gs)).or_insert_with_key(|(_, gs)| {
                for &g in gs {
                    by_group[g as usize].push(next);
                }
                next
            });
            if id == next {
                atoms.push(Vec::new());
            }
            atoms[id as usize].push(addr);
            sorted.push((addr, id));
        }
        let slot = vec![u32::MAX; atoms.len()];
        Members {
            lows: atoms
                .iter()
                .map(|a| a.first().copied().unwrap_or(0))
                .collect(),
            sorted,
            atoms,
            by_group,
            slot,
        }
    }

    /// The addresses of the members of some member groups, as sorted intervals.
    fn of_groups(&self, groups: &[u32]) -> Set {
        let mut atoms: Vec<u32> = groups
            .iter()
            .flat_map(|&g| self.by_group[g as usize].iter().copied())
            .collect();
        atoms.sort_unstable();
        atoms.dedup();
        dd::normalize(
            atoms
                .iter()
                .flat_map(|&a| self.atoms[a as usize].iter().map(|&v| (v, v)))
                .collect(),
        )
    }
}

/// One group set's remote addresses as classes: addresses that every rule, grant and
/// block of the set treats alike are one class, and the diagrams' remote field counts
/// classes, not addresses. A group reference is then a few runs of class ids instead of
/// one interval per member, so the set's diagram operations cost in classes (a few
/// hundred on a fleet of 100,000 ENIs) rather than in members. Exact: every remote set
/// of the set's items is a union of classes, and every class holds an address.
pub(crate) struct Classes {
    /// The starts of the intervals the set's blocks split the family into (the first 0).
    starts: Vec<u128>,
    /// Per interval: its first class id; then the number of classes.
    first: Vec<u32>,
    /// Per interval: whether its first class is its rest (the addresses that are members
    /// of no referenced group; the other classes hold members of the same referenced
    /// groups each).
    rest: Vec<bool>,
    /// Per atom: its class (`u32::MAX`: the rest of its interval).
    atom_class: Vec<u32>,
    /// The family's largest address.
    max: u128,
    /// Per referenced member group: its members' classes, as runs of ids.
    groups: HashMap<u32, Set>,
}

/// Where an item's remote addresses come from.
#[derive(Clone)]
enum Remote {
    /// Address blocks (CIDRs, prefix-list entries).
    Blocks(Rc<Set>),
    /// The private addresses of a group's members (by member-group index).
    Members(u32),
    /// A reference the state cannot resolve: read as nothing, or as the whole family.
    Unresolved(String),
}

impl Classes {
    /// The classes of the items whose remotes are `remotes`.
    fn build(members: &mut Members, remotes: &[&Remote], max: u128) -> Classes {
        let mut starts = vec![0u128];
        let mut refs: Vec<u32> = Vec::new();
        for r in remotes {
            match r {
                Remote::Blocks(set) => {
                    for &(lo, hi) in set.iter() {
                        starts.push(lo);
                        if hi < max {
                            starts.push(hi + 1);
                        }
                    }
                }
                Remote::Members(g) => refs.push(*g),
                Remote::Unresolved(_) => {}
            }
        }
        starts.sort_unstable();
        starts.dedup();
        refs.sort_unstable();
        refs.dedup();
        // The atoms of referenced members, each with the referenced groups it is in (a
        // bit mask of `words` words over `refs`).
        let words = refs.len().div_ceil(64).max(1);
        let mut touched: Vec<u32> = Vec::new();
        let mut masks: Vec<u64> = Vec::new();
        for (p, &g) in refs.iter().enumerate() {
            for &a in &members.by_group[g as usize] {
                let slot = &mut members.slot[a as usize];
                if *slot == u32::MAX {
                    *slot = touched.len() as u32;
                    touched.push(a);
                    masks.extend(std::iter::repeat_n(0, words));
                }
                masks[*slot as usize * words + p / 64] |= 1 << (p % 64);
            }
        }
        // Member classes: atoms of one interval with the same mask.
        let mask = |t: u32| &masks[t as usize * words..(t as usize + 1) * words];
        let mut table: hashbrown::HashTable<u32> = hashbrown::HashTable::new();
        // Per member class: its interval, the slot whose mask it has, its atoms.
        let mut found: Vec<(usize, u32, Vec<u32>)> = Vec::new();
        let hash = |iv: usize, m: &[u64]| {
            use std::hash::BuildHasher;
            rustc_hash::FxBuildHasher.hash_one((iv, m))
        };
        // The touched atoms by lowest address (atoms are numbered in that order), and the
        // interval each lies in.
        let mut iv = 0;
        for (a, &t) in members.slot.iter().enumerate() {
            if t == u32::MAX {
                continue;
            }
            let a = a as u32;
            let low = members.lows[a as usize];
            while starts.get(iv + 1).is_some_and(|&s| s <= low) {
                iv += 1;
            }
            let h = hash(iv, mask(t));
            let hit = table.find(h, |&c| {
                let (civ, ct, _) = &found[c as usize];
                *civ == iv && mask(*ct) == mask(t)
            });
            match hit {
                Some(&c) => found[c as usize].2.push(a),
                None => {
                    let c = found.len() as u32;
                    found.push((iv, t, vec![a]));
                    table.insert_unique(h, c, |&c| {
                        let (civ, ct, _) = &found[c as usize];
                        hash(*civ, mask(*ct))
                    });
                }
            }
        }
        // Number the classes interval by interval: the rest first (when it holds an
        // address), then the member classes by lowest address.
        let mut per_interval: Vec<Vec<u32>> = vec![Vec::new(); starts.len()];
        for (c, (iv, _, _)) in found.iter().enumerate() {
            per_interval[*iv].push(c as u32);
        }
        let mut count: u32 = 0;
        let mut first: Vec<u32> = Vec::with_capacity(starts.len() + 1);
        let mut rest: Vec<bool> = Vec::with_capacity(starts.len());
        let mut groups: HashMap<u32, Set> = HashMap::new();
        let mut atom_class = vec![u32::MAX; members.atoms.len()];
        for (iv, cs) in per_interval.iter().enumerate() {
            first.push(count);
            let lo = starts[iv];
            let hi = starts.get(iv + 1).map_or(max, |&n| n - 1);
            let taken: u128 = cs
                .iter()
                .flat_map(|&c| &found[c as usize].2)
                .map(|&a| members.atoms[a as usize].len() as u128)
                .sum();
            // The rest holds an address when the members do not fill the interval.
            rest.push(hi - lo >= taken);
            if hi - lo >= taken {
                count += 1;
            }
            for &c in cs {
                for &a in &found[c as usize].2 {
                    atom_class[a as usize] = count;
                }
                let id = u128::from(count);
                let m = mask(found[c as usize].1);
                for (p, &g) in refs.iter().enumerate() {
                    if m[p / 64] & (1 << (p % 64)) != 0 {
                        let runs = groups.entry(g).or_default();
                        match runs.last_mut() {
                            Some(last) if last.1 + 1 == id => last.1 = id,
                            _ => runs.push((id, id)),
                        }
                    }
                }
                count += 1;
            }
        }
        first.push(count);
        for &a in &touched {
            members.slot[a as usize] = u32::MAX;
        }
        Classes {
            starts,
            first,
            rest,
            atom_class,
            max,
            groups,
        }
    }

    /// The largest class id.
    fn last(&self) -> u128 {
        u128::from(self.first[self.first.len() - 1]) - 1
    }

    /// A remote set as class ids (unresolved references: every class).
    fn ids(&self, remote: &Remote) -> Set {
        match remote {
            Remote::Blocks(set) => {
                let mut out: Set = Vec::new();
                for &(lo, hi) in set.iter() {
                    let a = self.starts.partition_point(|&s| s <= lo) - 1;
                    let b = self.starts.partition_point(|&s| s <= hi) - 1;
                    let (from, to) = (self.first[a], self.first[b + 1]);
                    if to > from {
                        let run = (u128::from(from), u128::from(to) - 1);
                        match out.last_mut() {
                            Some(last) if last.1 + 1 >= run.0 => last.1 = last.1.max(run.1),
                            _ => out.push(run),
                        }
                    }
                }
                out
            }
            Remote::Members(g) => self.groups.get(g).cloned().unwrap_or_default(),
            Remote::Unresolved(_) => vec![(0, self.last())],
        }
    }

    /// The addresses of a set of class ids, as sorted intervals: whole intervals where
    /// every class of one is in, else a walk over the interval's member addresses.
    fn addresses(&self, ids: &Set, members: &Members) -> Set {
        let mut inside = vec![false; self.first[self.first.len() - 1] as usize];
        for &(lo, hi) in ids {
            inside[lo as usize..=hi as usize].fill(true);
        }
        let mut out: Set = Vec::new();
        let push = |out: &mut Set, lo: u128, hi: u128| match out.last_mut() {
            Some(last) if last.1.checked_add(1) == Some(lo) => last.1 = hi,
            _ => out.push((lo, hi)),
        };
        for iv in 0..self.starts.len() {
            let these = &inside[self.first[iv] as usize..self.first[iv + 1] as usize];
            if !these.contains(&true) {
                continue;
            }
            let lo = self.starts[iv];
            let hi = self.starts.get(iv + 1).map_or(self.max, |&n| n - 1);
            if !these.contains(&false) {
                push(&mut out, lo, hi);
                continue;
            }
            // The rest is what lies between the members of referenced groups.
            let rest_in = self.rest[iv] && these[0];
            let from = members.sorted.partition_point(|&(a, _)| a < lo);
            // The first address not yet passed (none past the family's last).
            let mut at = Some(lo);
            for &(a, atom) in members.sorted[from..].iter().take_while(|e| e.0 <= hi) {
                let class = self.atom_class[atom as usize];
                let is_in = if class == u32::MAX {
                    rest_in
                } else {
                    inside[class as usize]
                };
                if let Some(next) = at.filter(|&n| rest_in && a > n) {
                    push(&mut out, next, a - 1);
                }
                if is_in {
                    push(&mut out, a, a);
                }
                at = a.checked_add(1);
            }
            if let Some(next) = at.filter(|&n| rest_in && n <= hi) {
                push(&mut out, next, hi);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The addresses a set of values holds, one by one.
    fn points(set: &Set, max: u128) -> Vec<bool> {
        (0..=max)
            .map(|v| set.iter().any(|&(lo, hi)| lo <= v && v <= hi))
            .collect()
    }

    /// Class ids stand for exactly the addresses of the remote sets they were built from,
    /// and set operations on ids are the same operations on addresses.
    #[test]
    fn classes_stand_for_exactly_their_addresses() {
        let max = 63u128;
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for _ in 0..300 {
            let groups = 4usize;
            let hosts: Vec<(u128, u32)> = (0..rnd(40))
                .map(|_| (u128::from(rnd(64)), rnd(groups as u64) as u32))
                .collect();
            let blocks: Vec<Set> = (0..rnd(4))
                .map(|_| {
                    let a = u128::from(rnd(64));
                    let b = u128::from(rnd(64));
                    dd::normalize(vec![(a.min(b), a.max(b))])
                })
                .collect();
            let mut cuts: Vec<u128> = blocks
                .iter()
                .flatten()
                .flat_map(|&(lo, hi)| [lo, hi + 1])
                .filter(|&c| c <= max)
                .collect();
            // Boundaries the set's items do not use split atoms, never classes.
            cuts.push(u128::from(rnd(64)));
            cuts.sort_unstable();
            cuts.dedup();
            let mut members = Members::new(hosts.clone(), &cuts, groups);
            let mut remotes: Vec<Remote> = blocks
                .iter()
                .map(|b| Remote::Blocks(Rc::new(b.clone())))
                .collect();
            for g in 0..groups as u32 {
                if rnd(3) > 0 {
                    remotes.push(Remote::Members(g));
                }
            }
            let refs: Vec<&Remote> = remotes.iter().collect();
            let classes = Classes::build(&mut members, &refs, max);
            let real = |r: &Remote| -> Vec<bool> {
                match r {
                    Remote::Blocks(b) => points(b, max),
                    Remote::Members(g) => (0..=max).map(|v| hosts.contains(&(v, *g))).collect(),
                    Remote::Unresolved(_) => vec![true; max as usize + 1],
                }
            };
            let all = vec![(0, classes.last())];
            for a in &remotes {
                let ids = classes.ids(a);
                assert_eq!(points(&classes.addresses(&ids, &members), max), real(a));
                let not_a: Set = {
                    let mut d = Dd::new(max, 1 << 16);
                    d.max[dd::REMOTE] = classes.last();
                    let full: Cube = std::array::from_fn(|k| vec![(0, d.max[k])]);
                    let mut c = full.clone();
                    c[dd::REMOTE] = ids.clone();
                    let x = d.cube(&c).unwrap();
                    let y = d.and_not(TRUE, x).unwrap();
                    d.products(y, 100)
                        .unwrap()
                        .into_iter()
                        .flat_map(|c| c[dd::REMOTE].clone())
                        .collect()
                };
                let expect: Vec<bool> = real(a).iter().map(|b| !b).collect();
                assert_eq!(points(&classes.addresses(&not_a, &members), max), expect);
                for b in &remotes {
                    let u = dd::union(&ids, &classes.ids(b));
                    let expect: Vec<bool> =
                        real(a).iter().zip(real(b)).map(|(x, y)| *x || y).collect();
                    assert_eq!(points(&classes.addresses(&u, &members), max), expect);
                }
            }
            assert_eq!(
                points(&classes.addresses(&all, &members), max),
                vec![true; max as usize + 1]
            );
        }
    }

    #[test]
    fn cidr_cover_is_minimal_and_exact() {
        let c = |s: &[&str]| {
            s.iter()
                .map(|x| x.parse::<Cidr>().unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            cidrs(Family::V4, 0, u128::from(u32::MAX)),
            c(&["0.0.0.0/0"])
        );
        assert_eq!(
            cidrs(Family::V4, 0x0a00_0001, 0x0a00_0006),
            c(&["10.0.0.1/32", "10.0.0.2/31", "10.0.0.4/31", "10.0.0.6/32"])
        );
        assert_eq!(cidrs(Family::V6, 0, u128::MAX), c(&["::/0"]));
        assert_eq!(cidrs(Family::V4, 5, 5), c(&["0.0.0.5/32"]));
    }
}
