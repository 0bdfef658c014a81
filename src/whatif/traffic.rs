//! Traffic before and after: every item judged against the table before the revoke and the
//! table after it, each with its own connection state, in one parallel pass.
//!
//! The "after" side starts with no tracked connections: it shows how each flow fares as a
//! new connection under the new rules. What happens to connections already established
//! when the revoke lands is provider-specific and stated in the report's caveats.

use crate::classify::{Named, SemanticsError};
use crate::compile::{compile, CompileError, Config, Table};
use crate::model::{Header, State};
use crate::packet::track::{self, Evaluator, Outcome};
use crate::packet::{Item, Packet};
use crate::whatif::report::Judged;

/// Judges traffic against the state before and after a revoke.
pub struct Judge {
    before: Table,
    after: Table,
    before_state: State,
    after_state: State,
    config: track::Config,
}

impl Judge {
    /// Compiles both states.
    pub fn new(
        before: &State,
        after: &State,
        config: track::Config,
    ) -> Result<Judge, CompileError> {
        Ok(Judge {
            before: compile(before, &Config::default())?,
            after: compile(after, &Config::default())?,
            before_state: before.clone(),
            after_state: after.clone(),
            config,
        })
    }

    /// A session over one traffic input (connection state starts empty).
    pub fn session(&self) -> Result<Session<'_>, SemanticsError> {
        Ok(Session {
            judge: self,
            before: Evaluator::new(&self.before, &self.before_state, self.config)?,
            after: Evaluator::new(&self.after, &self.after_state, self.config)?,
        })
    }
}

/// Connection state of one traffic input, before and after.
pub struct Session<'j> {
    judge: &'j Judge,
    before: Evaluator<'j>,
    after: Evaluator<'j>,
}

fn named(table: &Table, o: &Outcome) -> Named {
    Named {
        action: o.action(),
        rule: o
            .rule()
            .and_then(|r| table.rules().get(r as usize))
            .cloned(),
        reason: match (o.reason(), o.detail()) {
            (_, Some(detail)) => detail,
            (reason, None) => reason,
        },
    }
}

impl Session<'_> {
    /// Judges a chunk of items (in input order) before and after, in parallel.
    pub fn judge(&mut self, items: &[Item]) -> Vec<Judged> {
        let (before, after) = rayon::join(|| self.before.eval(items), || self.after.eval(items));
        let j = self.judge;
        before
            .iter()
            .zip(&after)
            .filter_map(|(b, a)| {
                // Both tables locate ENIs from the same addresses, so the outcomes pair up.
                debug_assert_eq!((b.index, b.point), (a.index, a.point));
                let item = items
                    .binary_search_by_key(&b.index, Item::index)
                    .ok()
                    .map(|i| &items[i])?;
                let (time_ns, header, packets, bytes, logged, reject_reason) = match item {
                    Item::Packet(p) => (
                        (p.ts_ns > 0).then_some(p.ts_ns),
                        p.header,
                        1,
                        u64::from(p.wire_len),
                        None,
                        None,
                    ),
                    Item::Flow(r) => (
                        Some(r.start.saturating_mul(1_000_000_000)),
                        r.header,
                        r.packets.max(1),
                        r.bytes,
                        r.action,
                        r.reject_reason.clone(),
                    ),
                };
                Some(Judged {
                    index: b.index,
                    time_ns,
                    eni: j.before.enis().get(b.point.eni as usize)?.clone(),
                    direction: b.point.direction,
                    header,
                    packets,
                    bytes,
                    before: named(&j.before, b),
                    after: named(&j.after, a),
                    logged,
                    reject_reason,
                })
            })
            .collect()
    }

    /// Items that touched no ENI of the state, so far.
    pub fn unmatched(&self) -> u64 {
        self.before.stats().unmatched
    }
}

/// Synthetic packets as traffic items: one every millisecond from `start_ns`.
pub fn synthetic_items(headers: &[Header], start_ns: u64) -> Vec<Item> {
    headers
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let ports =
                matches!(h.protocol, 6 | 17 | 33 | 132 | 136).then_some((h.src_port, h.dst_port));
            let icmp = matches!(h.protocol, 1 | 58).then(|| (h.src_port as u8, h.dst_port as u8));
            Item::Packet(Packet {
                index: i as u64,
                ts_ns: start_ns + i as u64 * 1_000_000,
                header: *h,
                wire_len: 64,
                cap_len: 64,
                tcp_flags: (h.protocol == 6).then_some(0x02),
                ports,
                icmp,
                fragment: None,
                interface: 0,
            })
        })
        .collect()
}
