//! Unit tests of the decision-tree builder.

use super::*;
use crate::index::tree::{Key, NONE};

fn filter(lo: [u32; 5], hi: [u32; 5], rank: u32) -> Filter<u32> {
    Filter {
        bounds: Bounds { lo, hi },
        rank,
    }
}

/// Leaves of `leaf_size`, never blocks.
fn shape(leaf_size: usize) -> Shape {
    Shape {
        leaf_size,
        blocks_min_filters: usize::MAX,
    }
}

fn brute(filters: &[Filter<u32>], key: &[u32; 5]) -> Option<u32> {
    filters
        .iter()
        .find(|f| f.bounds.contains(key))
        .map(|f| f.rank)
}

#[test]
fn tree_agrees_with_brute_force_on_a_grid() {
    let mut filters = Vec::new();
    let mut rank = 0;
    for a in 0..6u32 {
        for p in 0..4u32 {
            let hi = domain_max();
            let mut lo = [0; 5];
            let mut h = hi;
            lo[0] = a * 1000;
            h[0] = a * 1000 + 1500;
            lo[3] = p * 10;
            h[3] = p * 10 + (a % 3) * 7;
            if a % 2 == 0 {
                lo[4] = 6;
                h[4] = 6;
            }
            filters.push(filter(lo, h, rank));
            rank += 1;
        }
    }
    let tree = build(filters.clone(), shape(2), &|_| true);
    assert!(tree.inner > 0, "a cut was made");
    for a in (0..7000u32).step_by(97) {
        for p in 0..45u32 {
            for proto in [1, 6, 17] {
                let key = [a, 0, 0, p, proto];
                assert_eq!(
                    tree.lookup(&k(key), |_| true),
                    brute(&filters, &key),
                    "{key:?}"
                );
            }
        }
    }
}

fn k(key: [u32; 5]) -> Key<u32> {
    Key::new(key[0], key[1], key[2] as u16, key[3] as u16, key[4] as u8)
}

fn domain_max() -> [u32; 5] {
    crate::index::boxes::domain_hi()
}

#[test]
fn covering_filter_prunes_the_rest() {
    let all = filter([0; 5], domain_max(), 0);
    let later: Vec<_> = (1..50).map(|r| filter([r; 5], [r + 1; 5], r)).collect();
    let mut filters = vec![all];
    filters.extend(later);
    let tree = build(filters, shape(4), &|_| true);
    assert_eq!(tree.inner, 0, "no cut was made");
    assert_eq!(tree.leaves.entries(), 1);
    assert_eq!(
        tree.leaves.filters().len(),
        50,
        "the covered filters are kept"
    );
    assert_eq!(tree.lookup(&k([7; 5]), |_| true), Some(0));
    assert_eq!(tree.covers, vec![0], "the covering filter is recorded");
}

#[test]
fn inexact_filter_never_prunes() {
    // Rank 0 spans everything but matches only some of it (a group peer): it must not
    // hide the later filters.
    let mut filters = vec![filter([0; 5], domain_max(), 0)];
    filters.extend((1..50).map(|r| filter([r; 5], [r + 1; 5], r)));
    let exact = |rank: u32| rank != 0;
    let tree = build(filters.clone(), shape(2), &exact);
    assert!(tree.covers.iter().all(|&rank| rank != 0));
    for r in 0..52u32 {
        let key = [r; 5];
        let later = brute(&filters[1..], &key);
        assert_eq!(tree.lookup(&k(key), |rank| rank != 0), later, "{key:?}");
    }
}

/// Random small boxes over a small grid, so that many filters cover regions.
fn random_filters(rng: &mut crate::packet::synth::Rng, n: u32) -> Vec<Filter<u32>> {
    (0..n)
        .map(|rank| {
            let mut lo = [0u32; 5];
            let mut hi = domain_max();
            for d in 0..5 {
                if rng.below(3) != 0 {
                    let a = rng.below(16) as u32;
                    let b = a + rng.below(8) as u32;
                    lo[d] = a;
                    hi[d] = b;
                }
            }
            filter(lo, hi, rank)
        })
        .collect()
}

#[test]
fn patch_after_revoking_covers_equals_brute_force() {
    let mut rng = crate::packet::synth::Rng::new(9);
    let mut patched_some = false;
    for round in 0..40 {
        let filters = random_filters(&mut rng, 60);
        let forest = build_forest(filters.clone(), shape(1 + round % 4), &|_| true);
        let covers: Vec<u32> = forest.cover_ranks().collect();
        // Kill about half of the covers and a few other filters.
        let dead: Vec<bool> = (0..filters.len() as u32)
            .map(|r| (covers.contains(&r) && rng.below(2) == 0) || rng.below(10) == 0)
            .collect();
        let is_dead = |r: u32| dead[r as usize];
        let Some(patched) = patch(
            &forest,
            is_dead,
            &|_| true,
            shape(1 + round % 4),
            usize::MAX,
        ) else {
            continue;
        };
        patched_some |= patched.trees.iter().any(|t| t.patch);
        let live: Vec<Filter<u32>> = filters
            .iter()
            .filter(|f| !is_dead(f.rank))
            .copied()
            .collect();
        for _ in 0..400 {
            let key: [u32; 5] = std::array::from_fn(|_| rng.below(26) as u32);
            let found = patched.lookup(&k(key), NONE, &|r| !is_dead(r));
            assert_eq!(
                (found != NONE).then_some(found),
                brute(&live, &key),
                "round {round}, {key:?}"
            );
        }
    }
    assert!(patched_some, "some round built a patch tree");
}

#[test]
fn both_leaf_layouts_agree_with_brute_force() {
    let mut rng = crate::packet::synth::Rng::new(3);
    // Disjoint boxes: no cut replicates anything, leaves hold copies.
    let disjoint: Vec<_> = (0..200u32)
        .map(|r| {
            filter(
                [r * 10, 0, 0, 0, 0],
                [r * 10 + 9, u32::MAX, 65535, 65535, 255],
                r,
            )
        })
        .collect();
    // Boxes spanning most of one field or another: cuts replicate them into many leaves.
    let crossing = random_filters(&mut rng, 200);
    let mut seen = [false; 2];
    for filters in [disjoint, crossing] {
        let tree = build(filters.clone(), shape(2), &|_| true);
        seen[usize::from(matches!(tree.leaves, Leaves::Indexed { .. }))] = true;
        assert_eq!(tree.leaves.filters().len(), filters.len());
        for _ in 0..3000 {
            let key: [u32; 5] = std::array::from_fn(|d| match d {
                0 => rng.below(2100) as u32,
                _ => rng.below(26) as u32,
            });
            assert_eq!(
                tree.lookup(&k(key), |_| true),
                brute(&filters, &key),
                "{key:?}"
            );
        }
    }
    assert_eq!(seen, [true, true], "both layouts were built");
}

/// Filters whose remote ranges lie near `blocks` addresses 2^24 apart, so that they
/// fall in distinct blocks whatever the tree's block size (a few spanning two blocks,
/// a few covering a /16 and every other field, the rest prefixes of up to 2^12
/// addresses), with local, port and protocol ranges as [`random_filters`].
fn block_filters(rng: &mut crate::packet::synth::Rng, n: u32, blocks: u64) -> Vec<Filter<u32>> {
    (0..n)
        .map(|rank| {
            let base = (1 + rng.below(blocks) as u32) << 24;
            let (lo0, hi0) = match rng.below(12) {
                0 => (
                    base - 1 - rng.below(256) as u32,
                    base + rng.below(256) as u32,
                ),
                1 => {
                    let lo = base | (rng.below(4) as u32) << 16;
                    (lo, lo | 0xffff)
                }
                _ => {
                    let bits = rng.below(13) as u32;
                    let lo = base | (rng.below(1 << 8) as u32) << 12;
                    (lo, lo | ((1 << bits) - 1))
                }
            };
            let mut f = random_filters(rng, 1).remove(0);
            if hi0 - lo0 == 0xffff {
                // A whole /16, all of the other fields too: it covers regions.
                f.bounds = Bounds::full();
            }
            f.bounds.lo[0] = lo0;
            f.bounds.hi[0] = hi0;
            f.rank = rank;
            f
        })
        .collect()
}

/// A key near the filters of [`block_filters`], or anywhere.
fn block_key(rng: &mut crate::packet::synth::Rng, blocks: u64) -> [u32; 5] {
    let mut key: [u32; 5] = std::array::from_fn(|_| rng.below(26) as u32);
    key[0] = match rng.below(4) {
        0 => rng.below(1 << 32) as u32,
        1 => ((1 + rng.below(blocks) as u32) << 24).wrapping_sub(1 + rng.below(300) as u32),
        _ => (1 + rng.below(blocks) as u32) << 24 | rng.below(1 << 20) as u32,
    };
    key
}

#[test]
fn trees_from_blocks_agree_with_brute_force() {
    let mut rng = crate::packet::synth::Rng::new(11);
    for round in 0..6usize {
        let filters = block_filters(&mut rng, 700, 150);
        let leaf_size = 1 + round % 5;
        let with_blocks = Shape {
            leaf_size,
            blocks_min_filters: 0,
        };
        let tree = build(filters.clone(), with_blocks, &|_| true);
        let plain = build(filters.clone(), shape(leaf_size), &|_| true);
        assert!(
            cost(&tree) < cost(&plain),
            "the table's load saves levels: {} < {}",
            cost(&tree),
            cost(&plain)
        );
        let blocks = tree.blocks.as_ref().expect("the tree starts from blocks");
        assert_eq!(blocks.dim, 0, "the remote field falls in the most blocks");
        assert_eq!(blocks.bits, 11, "four entries a filter: 2,048 blocks");
        assert!(
            !tree.covers.is_empty(),
            "whole-block filters pruned something"
        );
        let forest = Forest {
            trees: vec![Arc::new(tree)],
        };
        for _ in 0..60 {
            let raw: Vec<[u32; 5]> = (0..LANES_IN_TEST)
                .map(|_| block_key(&mut rng, 150))
                .collect();
            let keys: Vec<Key<u32>> = raw.iter().map(|r| k(*r)).collect();
            let mut best = [NONE; LANES_IN_TEST];
            forest.lookup_lanes(&keys, &mut best, &|_, _| true);
            for (i, key) in raw.iter().enumerate() {
                let want = brute(&filters, key);
                assert_eq!(forest.trees[0].lookup(&k(*key), |_| true), want, "{key:?}");
                assert_eq!((best[i] != NONE).then_some(best[i]), want, "lanes, {key:?}");
            }
        }
    }
}

#[test]
fn patch_of_a_tree_from_blocks_equals_brute_force() {
    let mut rng = crate::packet::synth::Rng::new(12);
    let filters = block_filters(&mut rng, 700, 150);
    let shape = Shape {
        leaf_size: 3,
        blocks_min_filters: 0,
    };
    let forest = build_forest(filters.clone(), shape, &|_| true);
    assert!(forest.trees.iter().any(|t| t.blocks.is_some()));
    let covers: Vec<u32> = forest.cover_ranks().collect();
    assert!(!covers.is_empty());
    let dead: Vec<bool> = (0..filters.len() as u32)
        .map(|r| covers.contains(&r) && rng.below(2) == 0)
        .collect();
    let is_dead = |r: u32| dead[r as usize];
    let patched = patch(&forest, is_dead, &|_| true, shape, usize::MAX).expect("patches");
    let live: Vec<Filter<u32>> = filters
        .iter()
        .filter(|f| !is_dead(f.rank))
        .copied()
        .collect();
    for _ in 0..3000 {
        let key = block_key(&mut rng, 150);
        let found = patched.lookup(&k(key), NONE, &|r| !is_dead(r));
        assert_eq!(
            (found != NONE).then_some(found),
            brute(&live, &key),
            "{key:?}"
        );
    }
}

#[test]
fn lockstep_lanes_agree_with_brute_force() {
    let mut rng = crate::packet::synth::Rng::new(5);
    let mut depths = std::collections::BTreeSet::new();
    for round in 0..30usize {
        let filters = random_filters(&mut rng, 20 + 15 * round as u32);
        let forest = build_forest(filters.clone(), shape(1 + round % 5), &|_| true);
        for t in &forest.trees {
            depths.insert(t.inner);
        }
        for _ in 0..40 {
            let n = 1 + rng.below(LANES_IN_TEST as u64) as usize;
            let raw: Vec<[u32; 5]> = (0..n)
                .map(|_| std::array::from_fn(|_| rng.below(26) as u32))
                .collect();
            let keys: Vec<Key<u32>> = raw.iter().map(|r| k(*r)).collect();
            // Some lanes start with a match already, so they sit some trees out.
            let start: Vec<u32> = (0..n)
                .map(|_| match rng.below(3) {
                    0 => rng.below(filters.len() as u64) as u32,
                    _ => NONE,
                })
                .collect();
            let mut best = start.clone();
            forest.lookup_lanes(&keys, &mut best, &|_, _| true);
            for i in 0..n {
                let want = brute(&filters, &raw[i]).map_or(start[i], |r| r.min(start[i]));
                assert_eq!(best[i], want, "round {round}, {:?}", raw[i]);
            }
        }
    }
    assert!(
        depths.len() > 5,
        "trees of many sizes were walked: {depths:?}"
    );
}

const LANES_IN_TEST: usize = crate::index::tree::LANES;

#[test]
fn empty_tree_matches_nothing() {
    let tree: Tree<u128> = build(Vec::new(), shape(8), &|_| true);
    assert_eq!(tree.lookup(&Key::new(0u128, 0, 0, 0, 0), |_| true), None);
}
