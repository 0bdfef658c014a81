//! The what-if's partial totals as bytes, for the plan that folds connections on other
//! tasks or machines ([`crate::whatif::fold`]): a [`Tally`] (the totals of some
//! connections) written by one task and merged by another.
//!
//! A small, versioned, explicit format: each field in a fixed order, integers as LEB128
//! varints, text as length and UTF-8. Reading checks every length and tag against what is
//! left, so damaged bytes are an error naming the field, never a panic or a huge
//! allocation.

use std::collections::BinaryHeap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::judge::{Act, Side, Step, Why};
use super::tally::{Agg, Service, ServiceKey, Top};
#[cfg(feature = "fleet")]
use crate::model::{Action, EniId};
use crate::model::{Direction, Header};
#[cfg(feature = "fleet")]
use crate::packet::flowlog::{Format, Record};
use crate::whatif::report::Effect;

/// What the bytes of a [`Tally`] start with.
const MAGIC: &[u8] = b"sgsim-tally/1\n";

/// Bytes that are not a tally, named by the field where reading stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("damaged what-if totals: {0}")]
pub struct WireError(pub String);

/// The totals of some connections of one input, as a task of the fold leaves them:
/// merged in any order, they give the totals of all (see [`super::Run::absorb`]).
#[derive(Default)]
pub struct Tally {
    pub(super) agg: Agg,
    /// Items (packets or records) fed.
    pub(super) items: u64,
}

impl Tally {
    /// Adds `other`'s connections to these (`top`: the changed connections kept).
    pub fn merge(&mut self, other: Tally, top: usize) {
        self.agg.merge(other.agg, top);
        self.items += other.items;
    }

    /// Items (packets or records) fed.
    pub fn items(&self) -> u64 {
        self.items
    }

    /// Connections finished early to keep memory bounded.
    pub fn evicted(&self) -> u64 {
        self.agg.connections.evicted
    }

    /// The tally as bytes.
    pub fn encode(mut self) -> Vec<u8> {
        self.agg.flush_second();
        let mut w = Writer(MAGIC.to_vec());
        w.u(self.items);
        agg(&mut w, &self.agg);
        w.0
    }

    /// Reads what [`Tally::encode`] wrote.
    pub fn decode(bytes: &[u8]) -> Result<Tally, WireError> {
        let rest = bytes
            .strip_prefix(MAGIC)
            .ok_or_else(|| WireError("not what-if totals (no header)".into()))?;
        let mut r = Reader {
            b: rest,
            at: "items",
        };
        let items = r.u()?;
        let agg = read_agg(&mut r)?;
        if !r.b.is_empty() {
            return Err(WireError(format!("{} bytes after the end", r.b.len())));
        }
        Ok(Tally { agg, items })
    }
}

/// A writer of fields.
pub(crate) struct Writer(pub(crate) Vec<u8>);

impl Writer {
    pub(crate) fn u(&mut self, mut v: u64) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.0.push(b);
                return;
            }
            self.0.push(b | 0x80);
        }
    }

    fn b(&mut self, v: bool) {
        self.0.push(u8::from(v));
    }

    pub(crate) fn s(&mut self, v: &str) {
        self.u(v.len() as u64);
        self.0.extend_from_slice(v.as_bytes());
    }

    fn opt(&mut self, v: Option<u64>) {
        match v {
            None => self.0.push(0),
            Some(x) => {
                self.0.push(1);
                self.u(x);
            }
        }
    }

    fn addr(&mut self, a: IpAddr) {
        match a {
            IpAddr::V4(x) => {
                self.0.push(4);
                self.0.extend_from_slice(&x.octets());
            }
            IpAddr::V6(x) => {
                self.0.push(6);
                self.0.extend_from_slice(&x.octets());
            }
        }
    }

    fn header(&mut self, h: &Header) {
        self.addr(h.src());
        self.addr(h.dst());
        self.u(u64::from(h.protocol()));
        self.u(u64::from(h.src_port()));
        self.u(u64::from(h.dst_port()));
    }

    fn direction(&mut self, d: Direction) {
        self.0.push(match d {
            Direction::Ingress => 0,
            Direction::Egress => 1,
        });
    }

    fn step(&mut self, s: Step) {
        self.0.push(match s.act {
            Act::Accept => 0,
            Act::Drop => 1,
            Act::Unknown => 2,
        });
        self.0.push(match s.side {
            Side::Before => 0,
            Side::After => 1,
        });
        match s.why {
            Why::Rule(i) => {
                self.0.push(0);
                self.u(u64::from(i));
            }
            Why::Default => self.0.push(1),
            Why::InnerAccess => self.0.push(2),
            Why::Established => self.0.push(3),
            Why::Lost => self.0.push(4),
            Why::Unresolved(i) => {
                self.0.push(5);
                self.u(u64::from(i));
            }
            Why::UnloggedIcmp => self.0.push(6),
        }
    }
}

/// A reader of fields; `at` names the field being read, for errors.
pub(crate) struct Reader<'a> {
    pub(crate) b: &'a [u8],
    pub(crate) at: &'static str,
}

impl<'a> Reader<'a> {
    fn fail<T>(&self, why: &str) -> Result<T, WireError> {
        Err(WireError(format!("{}: {why}", self.at)))
    }

    fn byte(&mut self) -> Result<u8, WireError> {
        match self.b.split_first() {
            Some((&x, rest)) => {
                self.b = rest;
                Ok(x)
            }
            None => self.fail("ends early"),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.b.len() < n {
            return self.fail("ends early");
        }
        let (x, rest) = self.b.split_at(n);
        self.b = rest;
        Ok(x)
    }

    pub(crate) fn u(&mut self) -> Result<u64, WireError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            let bits = u64::from(b & 0x7f);
            if shift == 63 && bits > 1 {
                return self.fail("a number past 64 bits");
            }
            v |= bits << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        self.fail("a number past 64 bits")
    }

    fn small<T: TryFrom<u64>>(&mut self) -> Result<T, WireError> {
        let v = self.u()?;
        T::try_from(v).or_else(|_| self.fail(&format!("{v} is out of range")))
    }

    /// A count of things each at least `min` bytes long: no more than the bytes left allow.
    pub(crate) fn count(&mut self, min: usize) -> Result<usize, WireError> {
        let n = self.u()?;
        if n > (self.b.len() / min.max(1)) as u64 {
            return self.fail(&format!("a count of {n} with {} bytes left", self.b.len()));
        }
        Ok(n as usize)
    }

    fn b(&mut self) -> Result<bool, WireError> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            x => self.fail(&format!("{x} is not a truth value")),
        }
    }

    pub(crate) fn s(&mut self) -> Result<String, WireError> {
        let n = self.count(1)?;
        let bytes = self.take(n)?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_string()),
            Err(_) => self.fail("text that is not UTF-8"),
        }
    }

    fn opt(&mut self) -> Result<Option<u64>, WireError> {
        Ok(if self.b()? { Some(self.u()?) } else { None })
    }

    fn addr(&mut self) -> Result<IpAddr, WireError> {
        match self.byte()? {
            4 => {
                let mut o = [0u8; 4];
                o.copy_from_slice(self.take(4)?);
                Ok(IpAddr::V4(Ipv4Addr::from(o)))
            }
            6 => {
                let mut o = [0u8; 16];
                o.copy_from_slice(self.take(16)?);
                Ok(IpAddr::V6(Ipv6Addr::from(o)))
            }
            x => self.fail(&format!("address family {x}")),
        }
    }

    fn header(&mut self) -> Result<Header, WireError> {
        let (src, dst) = (self.addr()?, self.addr()?);
        let protocol = self.small()?;
        let (sp, dp) = (self.small()?, self.small()?);
        Header::new(src, dst, protocol, sp, dp).or_else(|e| self.fail(&e.to_string()))
    }

    fn direction(&mut self) -> Result<Direction, WireError> {
        match self.byte()? {
            0 => Ok(Direction::Ingress),
            1 => Ok(Direction::Egress),
            x => self.fail(&format!("direction {x}")),
        }
    }

    fn step(&mut self) -> Result<Step, WireError> {
        let act = match self.byte()? {
            0 => Act::Accept,
            1 => Act::Drop,
            2 => Act::Unknown,
            x => return self.fail(&format!("action {x}")),
        };
        let side = match self.byte()? {
            0 => Side::Before,
            1 => Side::After,
            x => return self.fail(&format!("side {x}")),
        };
        let why = match self.byte()? {
            0 => Why::Rule(self.small()?),
            1 => Why::Default,
            2 => Why::InnerAccess,
            3 => Why::Established,
            4 => Why::Lost,
            5 => Why::Unresolved(self.small()?),
            6 => Why::UnloggedIcmp,
            x => return self.fail(&format!("reason {x}")),
        };
        Ok(Step { act, why, side })
    }
}

fn effect_tag(e: Effect) -> u8 {
    match e {
        Effect::Broken => 0,
        Effect::Surviving => 1,
        Effect::Restored => 2,
        Effect::Unknown => 3,
    }
}

fn agg(w: &mut Writer, a: &Agg) {
    let t = &a.totals;
    for v in [
        t.judged,
        t.accepted_before,
        t.accepted_after,
        t.dropped_before,
        t.dropped_after,
        t.unknown_before,
        t.unknown_after,
    ] {
        w.u(v);
    }
    let c = &a.changed;
    for v in [
        c.accept_to_drop,
        c.drop_to_accept,
        c.to_unknown,
        c.from_unknown,
    ] {
        w.u(v);
    }
    let c = &a.connections;
    for v in [
        c.total,
        c.broken,
        c.surviving,
        c.restored,
        c.unknown,
        c.packets_broken,
        c.bytes_broken,
        c.evicted,
    ] {
        w.u(v);
    }
    for hits in &a.hits {
        w.u(hits.len() as u64);
        hits.iter().for_each(|&h| w.u(h));
    }
    // Services in key order: the same totals give the same bytes.
    let mut services: Vec<(&ServiceKey, &Service)> = a.services.iter().collect();
    services.sort_by_key(|(k, _)| **k);
    w.u(services.len() as u64);
    for (&(eni, direction, protocol, port, v6), s) in services {
        w.u(u64::from(eni));
        w.direction(direction);
        w.u(u64::from(protocol));
        w.u(u64::from(port));
        w.b(v6);
        for v in [
            s.broken,
            s.surviving,
            s.restored,
            s.unknown,
            s.packets,
            s.bytes,
            s.packets_broken,
            s.bytes_broken,
        ] {
            w.u(v);
        }
        w.opt(s.first_ns);
        w.opt(s.last_ns);
        w.u(s.clients.len() as u64);
        s.clients.iter().for_each(|&c| w.addr(c));
        w.b(s.clients_capped);
        match &s.example {
            None => w.b(false),
            Some((first, header, before, after)) => {
                w.b(true);
                w.u(*first);
                w.header(header);
                w.step(*before);
                w.step(*after);
            }
        }
    }
    let mut top: Vec<&Top> = a.top.iter().collect();
    top.sort();
    w.u(top.len() as u64);
    for t in top {
        w.u(t.packets);
        w.u(t.bytes);
        w.u(t.first_ns);
        w.u(t.last_ns);
        w.header(&t.header);
        w.u(u64::from(t.at.0));
        w.direction(t.at.1);
        w.step(t.before);
        w.step(t.after);
        w.0.push(effect_tag(t.outcome));
    }
    let g = &a.agreement;
    for v in [
        g.records,
        g.agree,
        g.logged_accept_model_drop,
        g.logged_reject_model_accept,
        g.model_unknown,
    ] {
        w.u(v);
    }
    w.u(g.logged_reject_reasons.len() as u64);
    for (why, n) in &g.logged_reject_reasons {
        w.s(why);
        w.u(*n);
    }
    w.u(a.unmatched);
    w.u(a.enis.len() as u64);
    a.enis.iter().for_each(|&e| w.b(e));
    w.u(a.seconds.len() as u64);
    for (&s, &(n, b, af)) in &a.seconds {
        w.u(s);
        w.u(n);
        w.u(b);
        w.u(af);
    }
}

fn read_agg(r: &mut Reader<'_>) -> Result<Agg, WireError> {
    let mut a = Agg::default();
    r.at = "totals";
    let t = &mut a.totals;
    for v in [
        &mut t.judged,
        &mut t.accepted_before,
        &mut t.accepted_after,
        &mut t.dropped_before,
        &mut t.dropped_after,
        &mut t.unknown_before,
        &mut t.unknown_after,
    ] {
        *v = r.u()?;
    }
    r.at = "changed";
    let c = &mut a.changed;
    for v in [
        &mut c.accept_to_drop,
        &mut c.drop_to_accept,
        &mut c.to_unknown,
        &mut c.from_unknown,
    ] {
        *v = r.u()?;
    }
    r.at = "connections";
    let c = &mut a.connections;
    for v in [
        &mut c.total,
        &mut c.broken,
        &mut c.surviving,
        &mut c.restored,
        &mut c.unknown,
        &mut c.packets_broken,
        &mut c.bytes_broken,
        &mut c.evicted,
    ] {
        *v = r.u()?;
    }
    r.at = "rule hits";
    for hits in &mut a.hits {
        let n = r.count(1)?;
        *hits = (0..n).map(|_| r.u()).collect::<Result<_, _>>()?;
    }
    r.at = "services";
    let n = r.count(16)?;
    for _ in 0..n {
        let key: ServiceKey = (r.small()?, r.direction()?, r.small()?, r.small()?, r.b()?);
        let mut s = Service::default();
        for v in [
            &mut s.broken,
            &mut s.surviving,
            &mut s.restored,
            &mut s.unknown,
            &mut s.packets,
            &mut s.bytes,
            &mut s.packets_broken,
            &mut s.bytes_broken,
        ] {
            *v = r.u()?;
        }
        s.first_ns = r.opt()?;
        s.last_ns = r.opt()?;
        let clients = r.count(5)?;
        for _ in 0..clients {
            s.clients.insert(r.addr()?);
        }
        s.clients_capped = r.b()?;
        if r.b()? {
            s.example = Some((r.u()?, r.header()?, r.step()?, r.step()?));
        }
        if a.services.insert(key, s).is_some() {
            return r.fail("a service twice");
        }
    }
    r.at = "changed connections";
    let n = r.count(20)?;
    let mut top = BinaryHeap::with_capacity(n);
    for _ in 0..n {
        let (packets, bytes, first_ns, last_ns) = (r.u()?, r.u()?, r.u()?, r.u()?);
        let header = r.header()?;
        let at = (r.small()?, r.direction()?);
        let (before, after) = (r.step()?, r.step()?);
        let outcome = match r.byte()? {
            0 => Effect::Broken,
            1 => Effect::Surviving,
            2 => Effect::Restored,
            3 => Effect::Unknown,
            x => return r.fail(&format!("outcome {x}")),
        };
        top.push(Top {
            packets,
            bytes,
            first_ns,
            last_ns,
            header,
            at,
            before,
            after,
            outcome,
        });
    }
    a.top = top;
    r.at = "flow-log agreement";
    let g = &mut a.agreement;
    for v in [
        &mut g.records,
        &mut g.agree,
        &mut g.logged_accept_model_drop,
        &mut g.logged_reject_model_accept,
        &mut g.model_unknown,
    ] {
        *v = r.u()?;
    }
    let n = r.count(2)?;
    for _ in 0..n {
        let why = r.s()?;
        *g.logged_reject_reasons.entry(why).or_default() += r.u()?;
    }
    r.at = "unmatched";
    a.unmatched = r.u()?;
    r.at = "ENIs";
    let n = r.count(1)?;
    a.enis = (0..n).map(|_| r.b()).collect::<Result<_, _>>()?;
    r.at = "timeline";
    let n = r.count(4)?;
    for _ in 0..n {
        let s = r.u()?;
        let v = (r.u()?, r.u()?, r.u()?);
        a.seconds.insert(s, v);
    }
    Ok(a)
}

#[cfg(feature = "fleet")]
/// Writes a flow-log record (for the fold's tasks, which pass records between them).
pub(crate) fn write_record(w: &mut Writer, rec: &Record) {
    w.u(rec.index);
    w.u(rec.line);
    w.0.push(match rec.format {
        Format::AwsDefault => 0,
        Format::AwsCustom => 1,
        Format::Aliyun => 2,
        Format::Csv => 3,
        Format::Parquet => 4,
    });
    match &rec.eni {
        None => w.b(false),
        Some(e) => {
            w.b(true);
            w.s(e.as_str());
        }
    }
    match rec.direction {
        None => w.0.push(2),
        Some(d) => w.direction(d),
    }
    w.header(&rec.header);
    w.u(rec.packets);
    w.u(rec.bytes);
    w.u(rec.start);
    w.u(rec.end);
    w.0.push(match rec.action {
        None => 0,
        Some(Action::Accept) => 1,
        Some(Action::Drop) => 2,
    });
    w.opt(rec.tcp_flags.map(u64::from));
    match &rec.reject_reason {
        None => w.b(false),
        Some(why) => {
            w.b(true);
            w.s(why);
        }
    }
}

#[cfg(feature = "fleet")]
/// Reads what [`write_record`] wrote.
pub(crate) fn read_record(r: &mut Reader<'_>) -> Result<Record, WireError> {
    r.at = "record";
    let (index, line) = (r.u()?, r.u()?);
    let format = match r.byte()? {
        0 => Format::AwsDefault,
        1 => Format::AwsCustom,
        2 => Format::Aliyun,
        3 => Format::Csv,
        4 => Format::Parquet,
        x => return r.fail(&format!("format {x}")),
    };
    let eni = if r.b()? {
        Some(EniId::from(r.s()?))
    } else {
        None
    };
    let direction = match r.b.first() {
        Some(2) => {
            r.byte()?;
            None
        }
        _ => Some(r.direction()?),
    };
    let header = r.header()?;
    let (packets, bytes, start, end) = (r.u()?, r.u()?, r.u()?, r.u()?);
    let action = match r.byte()? {
        0 => None,
        1 => Some(Action::Accept),
        2 => Some(Action::Drop),
        x => return r.fail(&format!("action {x}")),
    };
    let tcp_flags = match r.opt()? {
        None => None,
        Some(f) => Some(u8::try_from(f).or_else(|_| r.fail("TCP flags past 255"))?),
    };
    let reject_reason = if r.b()? { Some(r.s()?) } else { None };
    Ok(Record {
        index,
        line,
        format,
        eni,
        direction,
        header,
        packets,
        bytes,
        start,
        end,
        action,
        tcp_flags,
        reject_reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::Item;
    use crate::whatif::traffic::{Config, Judge, Run};

    /// A tally read back is the tally written: the report written from it is the one
    /// written from the run itself; damaged bytes are an error, never a panic.
    #[test]
    fn a_tally_read_back_writes_the_same_report() {
        use crate::provider::RawRequest;
        use crate::whatif::render::fixture;
        let state = fixture::state(3, "web", "server", "client");
        let plan =
            crate::whatif::plan(&state, &RawRequest::parse(&fixture::revoke(2)).unwrap()).unwrap();
        let items = fixture::sessions(&[1001, 1002, 1003, 22], &[2, 3, 1, 1]);
        let judge = Judge::new(&state, &plan.outcome.state, Config::default()).unwrap();
        let report = |run: Run<'_>| {
            let mut r = plan.report.clone();
            run.finish(&mut r, &state);
            serde_json::to_value(&r).unwrap()
        };
        let mut direct = Run::new(&judge);
        direct.feed(&items);
        let want = report(direct);
        assert!(
            want["connections"]["broken"].as_u64().unwrap() > 0,
            "{want}"
        );

        // Split in two halves by connection, each folded on its own, merged back.
        let (mut one, mut two) = (Run::new(&judge), Run::new(&judge));
        let at = |i: &Item| match i {
            Item::Packet(p) => p.header.dst_port() == 1001 || p.header.src_port() == 1001,
            _ => false,
        };
        let (a, b): (Vec<Item>, Vec<Item>) = items.iter().cloned().partition(at);
        assert!(!a.is_empty() && !b.is_empty());
        one.feed(&a);
        two.feed(&b);
        let instant = one.instant().min(two.instant());
        assert_eq!(instant, {
            let mut r = Run::new(&judge);
            r.feed(&items);
            r.instant()
        });
        let mut merged = Run::new(&judge);
        let mut total = 0;
        for part in [one, two] {
            let bytes = part.into_tally().encode();
            let back = Tally::decode(&bytes).unwrap();
            total += back.items();
            merged.absorb("sessions", back, 0);
            for cut in [0, 1, MAGIC.len() + 3, bytes.len() / 2, bytes.len() - 1] {
                assert!(Tally::decode(&bytes[..cut]).is_err(), "cut at {cut}");
            }
            let mut long = bytes.clone();
            long.push(0);
            assert!(Tally::decode(&long).is_err());
        }
        assert_eq!(total, items.len() as u64);
        let mut got = report(merged);
        // The instants are the runs' own (each half's first item): not compared.
        got["revoke_at"] = want["revoke_at"].clone();
        assert_eq!(got, want);
    }

    /// Records travel between tasks unchanged.
    #[cfg(feature = "fleet")]
    #[test]
    fn records_read_back_as_written() {
        let rec = Record {
            index: 7,
            line: 9,
            format: Format::Parquet,
            eni: Some(EniId::from("eni-1")),
            direction: Some(Direction::Egress),
            header: Header::new(
                "10.0.0.1".parse().unwrap(),
                "10.0.0.2".parse().unwrap(),
                6,
                443,
                50000,
            )
            .unwrap(),
            packets: 3,
            bytes: 300,
            start: 1_700_000_000,
            end: 1_700_000_060,
            action: Some(Action::Drop),
            tcp_flags: Some(2),
            reject_reason: Some("BPA".into()),
        };
        for rec in [
            rec.clone(),
            Record {
                eni: None,
                direction: None,
                action: None,
                tcp_flags: None,
                reject_reason: None,
                ..rec
            },
        ] {
            let mut w = Writer(Vec::new());
            write_record(&mut w, &rec);
            let mut r = Reader {
                b: &w.0,
                at: "record",
            };
            assert_eq!(read_record(&mut r).unwrap(), rec);
            assert!(r.b.is_empty());
            let mut cut = Reader {
                b: &w.0[..w.0.len() - 1],
                at: "record",
            };
            assert!(read_record(&mut cut).is_err());
        }
    }
}
