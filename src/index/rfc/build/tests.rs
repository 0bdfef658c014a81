//! Unit tests of the cross-product table builder.

use super::*;
use crate::index::{
    boxes::Bounds,
    tree::{Key, NONE},
};
use proptest::prelude::*;

/// The products cover `lo..=hi` exactly: disjoint, inside it, and as many addresses.
fn check_split(lo: u32, hi: u32) {
    let parts = split(lo, hi);
    assert!(
        (1..=3).contains(&parts.len()),
        "{lo:#x}..={hi:#x}: {parts:?}"
    );
    let mut total = 0u64;
    let mut prev_high: Option<u32> = None;
    for &((h0, h1), (l0, l1)) in &parts {
        assert!(h0 <= h1 && l0 <= l1 && h1 <= 0xffff && l1 <= 0xffff);
        assert!(prev_high.is_none_or(|p| p < h0), "overlap in {parts:?}");
        prev_high = Some(h1);
        assert!((h0 << 16 | l0) >= lo && (h1 << 16 | l1) <= hi, "{parts:?}");
        total += u64::from(h1 - h0 + 1) * u64::from(l1 - l0 + 1);
    }
    assert_eq!(
        total,
        u64::from(hi - lo) + 1,
        "{lo:#x}..={hi:#x}: {parts:?}"
    );
}

#[test]
fn address_ranges_split_into_exact_products() {
    check_split(0, u32::MAX);
    check_split(0x0a00_0000, 0x0aff_ffff); // a /8: one product
    check_split(0x0a01_0203, 0x0a01_0203); // a host
    check_split(0x0a01_ff00, 0x0a02_00ff); // straddles one high-half boundary
    check_split(0x0a01_0001, 0x0a05_fffe); // both ends partial, whole ones between
    check_split(0x0a01_0000, 0x0a05_fffe); // only the top partial
    check_split(0x0a01_0001, 0x0a05_ffff); // only the bottom partial
    assert_eq!(split(0x0a01_0001, 0x0a05_fffe).len(), 3);
}

fn brute(filters: &[Filter<u32>], key: &[u32; 5], ok: impl Fn(u32) -> bool) -> u32 {
    filters
        .iter()
        .find(|f| f.bounds.contains(key) && ok(f.rank))
        .map_or(NONE, |f| f.rank)
}

/// A range of `0..=max` near a few edges (so that ranges nest, overlap and straddle the
/// 16-bit boundaries of addresses), or anywhere.
fn arb_range(max: u32, edges: &'static [u32]) -> impl Strategy<Value = (u32, u32)> {
    let end = prop_oneof![
        proptest::sample::select(edges).prop_flat_map(move |e| {
            (e.saturating_sub(2)..=e.saturating_add(2).min(max)).boxed()
        }),
        (0..=max).boxed(),
    ];
    (end.clone(), end).prop_map(|(a, b)| (a.min(b), a.max(b)))
}

const ADDR_EDGES: &[u32] = &[
    0,
    0x0a00_0000,
    0x0a00_ffff,
    0x0a01_0000,
    0x0a01_8000,
    0x0a02_ffff,
    0xc0a8_0000,
    u32::MAX,
];
const PORT_EDGES: &[u32] = &[0, 22, 80, 443, 1024, 65_535];
const PROTO_EDGES: &[u32] = &[0, 1, 6, 17, 255];

fn arb_filters() -> impl Strategy<Value = Vec<Filter<u32>>> {
    let bounds = (
        arb_range(u32::MAX, ADDR_EDGES),
        arb_range(u32::MAX, ADDR_EDGES),
        arb_range(65_535, PORT_EDGES),
        arb_range(65_535, PORT_EDGES),
        arb_range(255, PROTO_EDGES),
    );
    proptest::collection::vec(bounds, 0..40).prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (r, l, s, d, p))| Filter {
                bounds: Bounds {
                    lo: [r.0, l.0, s.0, d.0, p.0],
                    hi: [r.1, l.1, s.1, d.1, p.1],
                },
                // Ranks ascend with gaps, as a unit's ranks do.
                rank: 3 * i as u32 + 1,
            })
            .collect()
    })
}

fn arb_key() -> impl Strategy<Value = [u32; 5]> {
    let near = |max: u32, edges: &'static [u32]| {
        prop_oneof![
            proptest::sample::select(edges).prop_flat_map(move |e| {
                (e.saturating_sub(2)..=e.saturating_add(2).min(max)).boxed()
            }),
            (0..=max).boxed(),
        ]
    };
    (
        near(u32::MAX, ADDR_EDGES),
        near(u32::MAX, ADDR_EDGES),
        near(65_535, PORT_EDGES),
        near(65_535, PORT_EDGES),
        near(255, PROTO_EDGES),
    )
        .prop_map(|(r, l, s, d, p)| [r, l, s, d, p])
}

fn key_of(k: &[u32; 5]) -> Key<u32> {
    Key::new(k[0], k[1], k[2] as u16, k[3] as u16, k[4] as u8)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// One at a time and in lanes, with every filter or only some accepted (as
    /// tombstones and membership conditions do), with two- and four-byte cells, with
    /// the product tail and with the split tail.
    #[test]
    fn tables_agree_with_brute_force(
        filters in arb_filters(),
        keys in proptest::collection::vec(arb_key(), 1..40),
        wide in any::<bool>(),
        product in any::<bool>(),
    ) {
        let narrow = if wide { 0 } else { 1 << 16 };
        let rfc = build_with(&filters, usize::MAX, narrow, product)
            .expect("fits an unlimited budget");
        prop_assert_eq!(rfc.split(), !product);
        let some = |r: u32| r.is_multiple_of(2);
        let mut lanes = [NONE; 16];
        let mut picky = [NONE; 16];
        for chunk in keys.chunks(16) {
            let ks: Vec<Key<u32>> = chunk.iter().map(key_of).collect();
            let n = ks.len();
            lanes[..n].fill(NONE);
            picky[..n].fill(NONE);
            rfc.lookup_lanes(&ks, &mut lanes[..n], &|_, _| true);
            rfc.lookup_lanes(&ks, &mut picky[..n], &|_, r| some(r));
            for (i, k) in chunk.iter().enumerate() {
                let all = brute(&filters, k, |_| true);
                prop_assert_eq!(rfc.lookup(&ks[i], NONE, &|_| true), all, "key {:?}", k);
                prop_assert_eq!(lanes[i], all, "lanes, key {:?}", k);
                let only = brute(&filters, k, some);
                prop_assert_eq!(rfc.lookup(&ks[i], NONE, &some), only, "key {:?}", k);
                prop_assert_eq!(picky[i], only, "lanes, key {:?}", k);
                // A bound stops the search: nothing at or after it is returned.
                let bound = all.min(NONE - 1);
                prop_assert_eq!(rfc.lookup(&ks[i], bound, &|_| true), bound);
            }
        }
    }
}

#[test]
fn a_budget_too_small_gives_no_tables() {
    let filters: Vec<Filter<u32>> = (0..64u32)
        .map(|i| Filter {
            bounds: Bounds {
                lo: [i << 24, 0, 0, i * 100, 6],
                hi: [(i << 24) | 0xffff, u32::MAX, 65_535, i * 100 + 50, 6],
            },
            rank: i,
        })
        .collect();
    let fits = build(&filters, usize::MAX, true).expect("fits");
    let needed = fits.memory_usage();
    let phase0 = 6 * 65_536 * 2 + 256 * 2;
    assert!(needed > phase0 + 4096, "later phases take room: {needed}");
    assert!(!fits.split(), "the product tail fits");
    // Phase 0 fits; the product tail does not, the smaller split tail does.
    let split = build(&filters, phase0 + (needed - phase0) / 2, true).expect("split fits");
    assert!(split.split());
    let smaller = split.memory_usage();
    assert!(smaller < needed, "{smaller} < {needed}");
    // Neither tail fits.
    assert!(build(&filters, phase0 + (smaller - phase0) / 2, true).is_none());
    // Phase 0 alone takes 768 KiB.
    assert!(build(&filters, 700 << 10, true).is_none());
    let again = build(&filters, needed + (64 << 10), true).expect("fits what it took");
    assert_eq!(again.memory_usage(), needed);
}
