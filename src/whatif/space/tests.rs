//! Unit tests of the exact header-space difference.

use super::*;
use crate::whatif::dd::{self, TRUE};

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
                let expect: Vec<bool> = real(a).iter().zip(real(b)).map(|(x, y)| *x || y).collect();
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
