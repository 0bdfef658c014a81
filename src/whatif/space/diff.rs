//! The diff of one group set: the headers each removed rule decided, who takes them over,
//! and the changed regions read out.

use std::rc::Rc;

use crate::classify::{By, Decision, Verdict};
use crate::model::{Action, Cidr, GroupId, Peer, PortRange};
use crate::whatif::dd::{self, Cube, Dd, Id, Limit, Set, FALSE, TRUE};

use super::classes::Classes;
use super::readout::{cidrs, less_members, witness};
use super::{fam, host, Ctx, Decider, Item, Reading, Readout, Region, SetDiff, Sources, Stop};

impl Ctx<'_> {
    pub(super) fn diff_set(
        &mut self,
        set: &SetDiff<'_>,
        out: &mut Vec<Region>,
    ) -> Result<(), Stop> {
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

fn xor(d: &mut Dd, a: Id, b: Id) -> Result<Id, Limit> {
    let x = d.and_not(a, b)?;
    let y = d.and_not(b, a)?;
    d.or(x, y)
}
