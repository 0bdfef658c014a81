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
//!
//! # Layout
//!
//! This file holds the answer's types, the entry points and the shared state; `ctx`
//! indexes the state and turns a group set's rules into header sets, `classes` splits
//! member addresses into the remote field's classes, `diff` diffs one group set, and
//! `readout` reads regions out for people (address blocks, witness packets).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::rc::Rc;

use serde::Serialize;

use crate::classify::{Semantics, SemanticsError, Verdict};
use crate::model::{Cidr, Direction, EniId, Family, GroupId, Header, PortRange, RuleId, State};
use crate::whatif::dd::{Cube, Dd, Id, Limit, Set};

mod classes;
mod ctx;
mod diff;
mod readout;
#[cfg(test)]
mod tests;

use classes::{Classes, Members, Remote};
pub use readout::cidrs;

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
    /// As blocks less the members of `except` (see [`readout::less_members`]).
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
