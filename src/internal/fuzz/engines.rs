//! Harnesses of the engines (differential, live swaps, ClassBench, model text) and of the
//! header-space diff.

use arbitrary::{Arbitrary, Unstructured};

use super::{named, queries, FuzzHeader, FuzzState};
use crate::classify::reference::Reference;
use crate::classify::{Engine, Named, Point};
use crate::compile::live::{Change, Live};
use crate::compile::{compile, Config};
use crate::model::{Cidr, Header, Peer, PortRange, Protocol, State};

/// Differential: on an arbitrary rule set and packets, the compiled engine (with an
/// arbitrary leaf size) and the rayon path agree with the reference engine.
pub fn differential(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let (Ok(fs), Ok(headers), Ok(leaf)) = (
        FuzzState::arbitrary(&mut u),
        Vec::<FuzzHeader>::arbitrary(&mut u),
        u8::arbitrary(&mut u),
    ) else {
        return;
    };
    let state = fs.state();
    let q = queries(&state, &headers);
    let Ok(reference) = Reference::new(&state) else {
        // Only a state the model rejects may fail, and then the compiler must reject it too.
        assert!(compile(&state, &Config::default()).is_err());
        return;
    };
    // The high bit picks cross-product tables for every unit, else trees for all; the
    // next one, tables with the split tail; the next, trees that start from address
    // blocks wherever their rules allow.
    let config = Config {
        leaf_size: usize::from(leaf % 16) + 1,
        cross_min_filters: if leaf & 0x80 != 0 { 0 } else { usize::MAX },
        cross_alone_only: false,
        cross_product_tail: leaf & 0x40 == 0,
        blocks_min_filters: if leaf & 0x20 != 0 { 0 } else { usize::MAX },
        ..Config::default()
    };
    // Invariant: the reference accepted the state, so the compiler must too.
    let table = compile(&state, &config).expect("compiles what the reference accepts");
    let expected = named(&reference, &q);
    assert_eq!(named(&table, &q), expected, "compiled != reference");
    let par: Vec<Named> = table
        .classify_par(&q)
        .into_iter()
        .map(|v| table.name(v))
        .collect();
    assert_eq!(par, expected, "rayon path != reference");
}

/// Live table: revokes interleaved with lookups; after each revoke the live snapshot
/// answers exactly as a fresh compile of the remaining rules and as the reference.
pub fn live(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let (Ok(fs), Ok(headers), Ok(ops)) = (
        FuzzState::arbitrary(&mut u),
        Vec::<FuzzHeader>::arbitrary(&mut u),
        Vec::<(u8, bool)>::arbitrary(&mut u),
    ) else {
        return;
    };
    let state = fs.state();
    let q = queries(&state, &headers);
    let Ok(live) = Live::new(
        state.clone(),
        Config {
            leaf_size: 2,
            max_dead_fraction: 0.5,
            // Cross-product tables for every unit (with the full product or the split
            // tail) or for none, as the input's length says.
            cross_min_filters: if headers.len() % 3 != 2 {
                0
            } else {
                usize::MAX
            },
            cross_alone_only: false,
            cross_product_tail: headers.len() % 3 == 0,
            // Trees from address blocks wherever their rules allow, or as by default.
            blocks_min_filters: if ops.len() % 2 == 0 { 0 } else { 2048 },
            ..Config::default()
        },
    ) else {
        return;
    };
    let mut current = state;
    for (pick, unknown) in ops.into_iter().take(16) {
        if unknown || current.rules.is_empty() {
            let before = live.snapshot();
            assert!(live
                .apply(Change::Revoke(vec!["no-such-rule".into()]))
                .is_err());
            assert!(
                std::sync::Arc::ptr_eq(&before, &live.snapshot()),
                "a failed revoke swapped"
            );
            continue;
        }
        let id = current.rules[usize::from(pick) % current.rules.len()]
            .id
            .clone();
        // Invariant: the rule is in the live state, mirrored by `current`.
        live.apply(Change::Revoke(vec![id.clone()]))
            .expect("revoking a present rule");
        current.rules.retain(|r| r.id != id);
        let snapshot = live.snapshot();
        let fresh = compile(&current, &Config::default()).expect("compiles");
        let reference = Reference::new(&current).expect("valid");
        let got = named(&*snapshot, &q);
        assert_eq!(got, named(&fresh, &q), "live != fresh compile");
        assert_eq!(got, named(&reference, &q), "live != reference");
    }
    assert_eq!(live.state(), current);
}

/// ClassBench filter and trace parsing: never panics; what parses compiles and agrees with
/// the reference on the trace.
pub fn classbench(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (filters, trace) = text.split_once("\n\n").unwrap_or((&text, ""));
    let path = std::path::Path::new("<fuzz>");
    let Ok(state) = crate::classbench::filters_from(path, filters.as_bytes()) else {
        return;
    };
    let headers: Vec<Header> = trace
        .lines()
        .filter_map(|l| crate::classbench::parse_trace_line(l).ok())
        .map(|e| e.header)
        .collect();
    let q: Vec<(Point, Header)> = headers
        .iter()
        .map(|h| (crate::classbench::POINT, *h))
        .collect();
    let table = compile(&state, &Config::default()).expect("a parsed set compiles");
    let reference = Reference::new(&state).expect("a parsed set is valid");
    assert_eq!(named(&table, &q), named(&reference, &q));
}

/// Text parsers of the model: headers, CIDRs, port ranges and protocols never panic, and
/// what parses prints back to text that parses to the same value.
pub fn model_text(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(h) = text.parse::<Header>() {
        assert_eq!(
            h.to_string().parse::<Header>().ok(),
            Some(h),
            "header round trip"
        );
    }
    if let Ok(c) = text.parse::<Cidr>() {
        assert_eq!(
            c.to_string().parse::<Cidr>().ok(),
            Some(c),
            "CIDR round trip"
        );
    }
    if let Ok(p) = text.parse::<PortRange>() {
        assert_eq!(p.to_string().parse::<PortRange>().ok(), Some(p));
    }
    if let Ok(p) = text.parse::<Protocol>() {
        assert_eq!(p.to_string().parse::<Protocol>().ok(), Some(p));
    }
    let _ = serde_json::from_slice::<State>(data).map(|s| {
        if s.validate().is_ok() {
            // A valid state compiles and round-trips through its snapshot form.
            compile(&s, &Config::default()).expect("a valid state compiles");
            let back: State = serde_json::from_str(&serde_json::to_string(&s).expect("serializes"))
                .expect("reads back");
            assert_eq!(back, s, "snapshot round trip");
        }
    });
}

/// The header-space diff of a revoke equals brute-force evaluation at every fuzzed packet
/// and at every region's witness.
pub fn header_space(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let (Ok(fs), Ok(headers), Ok(picks)) = (
        FuzzState::arbitrary(&mut u),
        Vec::<FuzzHeader>::arbitrary(&mut u),
        Vec::<u8>::arbitrary(&mut u),
    ) else {
        return;
    };
    let state = fs.state();
    if state.rules.is_empty() || Reference::new(&state).is_err() {
        return;
    }
    let removed: Vec<crate::model::RuleId> = picks
        .iter()
        .take(4)
        .map(|p| state.rules[usize::from(*p) % state.rules.len()].id.clone())
        .collect();
    let mut after = state.clone();
    after.rules.retain(|r| !removed.contains(&r.id));
    let diff = crate::whatif::space::revoke_diff(&state, &removed).expect("valid state");
    assert!(diff.complete, "{:?}", diff.stopped);
    let regions = diff.regions;
    // Unresolved references are read every way the diff reads them (SEMANTICS 3.1): a
    // header is in a region when some reading changes its verdict.
    let readings = header_space_readings(&state, &after);
    let engines: Vec<(Reference<'_>, Reference<'_>)> = readings
        .iter()
        .map(|(b, a)| {
            (
                Reference::new(b).expect("valid"),
                Reference::new(a).expect("valid"),
            )
        })
        .collect();
    // The diff covers the headers that can exist (see `space::realizable`) at ENIs with an
    // address of their family.
    let exists = |point: &Point, h: &Header| {
        let eni = &state.enis[point.eni as usize];
        crate::whatif::space::realizable(h)
            && eni
                .ips
                .iter()
                .chain(&eni.public_ips)
                .any(|a| crate::model::Family::of(*a) == h.family())
    };
    for (point, h) in queries(&state, &headers)
        .into_iter()
        .filter(|(p, h)| exists(p, h))
    {
        let eni = &state.enis[point.eni as usize].id;
        let changed = engines
            .iter()
            .any(|(rb, ra)| rb.classify(point, &h).action != ra.classify(point, &h).action);
        let inside = regions
            .iter()
            .filter(|r| r.direction == point.direction && r.enis.contains(eni) && r.contains(&h))
            .count();
        assert_eq!(
            inside,
            usize::from(changed),
            "{h} at {eni} {}",
            point.direction
        );
    }
    let (rb, ra) = &engines[0];
    for r in regions.iter().filter(|r| r.before.reason != "unresolved") {
        for eni in &r.enis {
            let e = state
                .enis
                .iter()
                .position(|x| &x.id == eni)
                .expect("known ENI");
            let point = Point {
                eni: e as u32,
                direction: r.direction,
            };
            assert_eq!(rb.classify(point, &r.witness).action, r.before.action);
            assert_eq!(ra.classify(point, &r.witness).action, r.after.action);
        }
    }
}

/// The readings of `before`'s unresolved references (SEMANTICS 3.1) that the header-space
/// diff covers, each applied to `before` and to `after` (a state with some of its rules
/// removed): all match nothing, all match every address of their family, and with two
/// references or more each on its own (matching everything, the others nothing), names in
/// sorted order. As states without unresolved references, for the reference engine.
pub fn header_space_readings(before: &State, after: &State) -> Vec<(State, State)> {
    let unresolved = before.unresolved_rules();
    let mut names: Vec<String> = before
        .rules
        .iter()
        .zip(&unresolved)
        .filter(|(_, &u)| u)
        .map(|(r, _)| State::reference_name(&r.remote))
        .collect();
    names.sort_unstable();
    names.dedup();
    let mut out: Vec<(State, State)> = [false, true]
        .into_iter()
        .map(|all| (before.resolved_as(all), after.resolved_as(all)))
        .collect();
    if names.len() > 1 {
        let only = |state: &State, name: &str| {
            let mut out = state.clone();
            out.rules.clear();
            for (r, &u) in state.rules.iter().zip(&state.unresolved_rules()) {
                if !u {
                    out.rules.push(r.clone());
                    continue;
                }
                if State::reference_name(&r.remote) != name {
                    continue;
                }
                for any in [Cidr::ANY_V4, Cidr::ANY_V6] {
                    if r.local.is_some_and(|l| l.family() != any.family()) {
                        continue;
                    }
                    let mut c = r.clone();
                    c.remote = Peer::cidr(any);
                    if any.family() == crate::model::Family::V6 {
                        c.id = format!("{}#v6", r.id).into();
                    }
                    out.rules.push(c);
                }
            }
            out
        };
        for name in &names {
            out.push((only(before, name), only(after, name)));
        }
    }
    out
}
