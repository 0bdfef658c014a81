//! The state indexed once for the diff and lint: per group set, its rules and grants in
//! evaluation order as header sets over its remote classes.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use crate::classify::{rule_order, Decision, Semantics, Verdict};
use crate::model::{Action, Direction, GroupId, Peer, PortRange, Protocol, State};
use crate::whatif::dd::{self, Cube, Dd, Id, Limit, Set, FALSE, TRUE};

use super::classes::{Classes, Members, Remote};
use super::{fam, family_max, host, Config, Ctx, Item, Reading, Spec, PORTED};

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
}

/// The headers of family `f` that can exist (see [`super::realizable`]).
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
