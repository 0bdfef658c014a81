//! A batch's records read a column at a time.
//!
//! `flowlog::record` reads a row field by field, each field a call that first works out
//! what kind of column holds it. Over a batch that is some 25 such calls a row, and they
//! were the scan's largest cost. Here each column the record reads is read once, row after
//! row, into a lane of plain values ([`Cell`]); a row's record is then put together from
//! the lanes.
//!
//! The lanes only take the common forms (addresses from a dictionary, numbers from an
//! integer column, the usual words for action, direction and status). A row with any
//! other form, a value out of range, a missing protocol, a warning to raise or a header
//! that cannot be made is handed back (`None`), and the reader reads it with
//! `flowlog::record` as before, so the messages, the warnings and their order stay that
//! function's. For every row it does answer, the answer is the one `flowlog::record`
//! gives; `tests.rs` checks that on every kind of column and value.

use std::net::IpAddr;

use arrow_array::{Array, ArrayAccessor};

use super::dict::Pre;
use super::{text, Col};
use crate::model::{Action, Direction, EniId, Header, IpProtocol};
use crate::packet::flowlog::{
    Field, Format, Outcome, Record, Val, AWS_VERSION_MAX, SKIP_NODATA, SKIP_NO_ADDRESSES,
    SKIP_SKIPDATA,
};

/// A field of one row, as the lanes read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cell<T> {
    /// Null, `-` or empty, or no such column.
    Absent,
    Is(T),
    /// A form the lanes do not take: the row is read by `flowlog::record`.
    Other,
}

/// Calls `each` with every row's value of `col` (`None` where absent, as [`Col::get`]
/// reads it), one loop per kind of column so that the kind is worked out once.
fn values<'a>(col: Option<&Col<'a>>, n: usize, mut each: impl FnMut(Option<Val<'a>>)) {
    /// A column of text of any of Arrow's string types.
    fn strings<'a, A: ArrayAccessor<Item = &'a str>>(
        a: A,
        n: usize,
        each: &mut impl FnMut(Option<Val<'a>>),
    ) {
        (0..n).for_each(|i| each((!a.is_null(i)).then(|| a.value(i)).and_then(text)))
    }
    let Some(col) = col else {
        (0..n).for_each(|_| each(None));
        return;
    };
    match col {
        Col::Utf8(a) => strings(*a, n, &mut each),
        Col::LargeUtf8(a) => strings(*a, n, &mut each),
        Col::View(a) => strings(*a, n, &mut each),
        Col::Int { values, nulls } => match nulls {
            None => values[..n].iter().for_each(|&v| each(Some(Val::Int(v)))),
            Some(nulls) => {
                (0..n).for_each(|i| each((!nulls.is_null(i)).then(|| Val::Int(values[i]))))
            }
        },
        Col::Dict { .. } | Col::Wide(_) => (0..n).for_each(|i| each(col.get(i))),
    }
}

/// A lane of `col` with `read` applied to each present value.
fn lane<'a, T: Copy>(
    col: Option<&Col<'a>>,
    n: usize,
    mut read: impl FnMut(Val<'a>) -> Cell<T>,
) -> Vec<Cell<T>> {
    let mut out = Vec::with_capacity(n);
    values(col, n, |v| out.push(v.map_or(Cell::Absent, &mut read)));
    out
}

/// A lane of a dictionary column: each row's entry as `entry` reads it, absent where the
/// row is null.
fn by_key<T: Copy>(
    keys: &[usize],
    nulls: Option<&arrow_buffer::NullBuffer>,
    entry: impl Fn(usize) -> Cell<T>,
) -> Vec<Cell<T>> {
    match nulls {
        None => keys.iter().map(|&k| entry(k)).collect(),
        Some(nulls) => keys
            .iter()
            .enumerate()
            .map(|(i, &k)| {
                if nulls.is_null(i) {
                    Cell::Absent
                } else {
                    entry(k)
                }
            })
            .collect(),
    }
}

/// A lane of addresses: only a dictionary's entries already read as addresses are taken
/// (what files hold once their text is read as dictionaries).
fn addresses(col: Option<&Col<'_>>, n: usize) -> Vec<Cell<IpAddr>> {
    match col {
        Some(Col::Dict {
            keys,
            nulls,
            values,
            pre,
        }) if keys.len() >= n => {
            let entry = |k: usize| match pre.get(k) {
                Some(Pre::Addr(a)) => Cell::Is(*a),
                Some(Pre::Null) | None => Cell::Absent,
                Some(Pre::Text) if text(values.value(k)).is_none() => Cell::Absent,
                // Text that is no address: the record words the error.
                _ => Cell::Other,
            };
            by_key(&keys[..n], nulls.as_ref(), entry)
        }
        None => vec![Cell::Absent; n],
        Some(col) => lane(Some(col), n, |v| match v {
            Val::Addr(a) => Cell::Is(a),
            _ => Cell::Other,
        }),
    }
}

/// A lane of integers taken as they are (text, even of digits, is left to the record).
fn integers(col: Option<&Col<'_>>, n: usize) -> Vec<Cell<i64>> {
    lane(col, n, |v| match v {
        Val::Int(i) => Cell::Is(i),
        _ => Cell::Other,
    })
}

/// A lane of words read as `read` reads them (numbers are left to the record). A
/// dictionary no longer than the batch (actions, statuses, directions: a few words) has
/// each entry read once, and each row is then an index.
fn words<T: Copy>(col: Option<&Col<'_>>, n: usize, read: impl Fn(&str) -> Cell<T>) -> Vec<Cell<T>> {
    let word = |v: Option<Val<'_>>| match v {
        None => Cell::Absent,
        Some(Val::Str(s)) => read(&s),
        Some(_) => Cell::Other,
    };
    match col {
        Some(Col::Dict {
            keys,
            nulls,
            values,
            pre,
        }) if keys.len() >= n && values.len() <= n.max(64) => {
            // As `Col::get` reads an entry.
            let entry: Vec<Cell<T>> = (0..values.len())
                .map(|k| match pre.get(k) {
                    None | Some(Pre::Null) => Cell::Absent,
                    Some(Pre::Text) => word(text(values.value(k))),
                    Some(Pre::Addr(_) | Pre::Eni(_)) => Cell::Other,
                })
                .collect();
            by_key(&keys[..n], nulls.as_ref(), |k| {
                entry.get(k).copied().unwrap_or(Cell::Absent)
            })
        }
        _ => lane(col, n, |v| word(Some(v))),
    }
}

/// `cell` as a `T`, `None` when absent; `Err` when it is another form or out of `T`'s range.
fn fit<T: TryFrom<i64>>(cell: Cell<i64>) -> Result<Option<T>, ()> {
    match cell {
        Cell::Absent => Ok(None),
        Cell::Is(i) => T::try_from(i).map(Some).map_err(|_| ()),
        Cell::Other => Err(()),
    }
}

fn known<T>(cell: Cell<T>) -> Result<Option<T>, ()> {
    match cell {
        Cell::Absent => Ok(None),
        Cell::Is(v) => Ok(Some(v)),
        Cell::Other => Err(()),
    }
}

/// The columns of one batch that a record reads, each as a lane.
pub(super) struct Lanes {
    status: Vec<Cell<Option<&'static str>>>,
    pkt_src: Vec<Cell<IpAddr>>,
    src: Vec<Cell<IpAddr>>,
    pkt_dst: Vec<Cell<IpAddr>>,
    dst: Vec<Cell<IpAddr>>,
    protocol: Vec<Cell<i64>>,
    sport: Vec<Cell<i64>>,
    dport: Vec<Cell<i64>>,
    flow_direction: Vec<Cell<Direction>>,
    direction: Vec<Cell<Direction>>,
    action: Vec<Cell<Action>>,
    version: Vec<Cell<i64>>,
    tcp_flags: Vec<Cell<i64>>,
    start: Vec<Cell<i64>>,
    end: Vec<Cell<i64>>,
    packets: Vec<Cell<i64>>,
    bytes: Vec<Cell<i64>>,
}

impl Lanes {
    /// The lanes of the first `n` rows of a batch whose columns by field are `cols`.
    pub(super) fn new(cols: &[Option<Col<'_>>], n: usize) -> Lanes {
        let col = |f: Field| cols.get(f as usize).and_then(Option::as_ref);
        let direction = |d: &str| match d {
            "ingress" | "in" => Cell::Is(Direction::Ingress),
            "egress" | "out" => Cell::Is(Direction::Egress),
            _ => Cell::Other,
        };
        Lanes {
            status: words(col(Field::LogStatus), n, |s| {
                Cell::Is(match s {
                    "NODATA" => Some(SKIP_NODATA),
                    "SKIPDATA" => Some(SKIP_SKIPDATA),
                    _ => None,
                })
            }),
            pkt_src: addresses(col(Field::PktSrcAddr), n),
            src: addresses(col(Field::SrcAddr), n),
            pkt_dst: addresses(col(Field::PktDstAddr), n),
            dst: addresses(col(Field::DstAddr), n),
            protocol: integers(col(Field::Protocol), n),
            sport: integers(col(Field::SrcPort), n),
            dport: integers(col(Field::DstPort), n),
            flow_direction: words(col(Field::FlowDirection), n, direction),
            direction: words(col(Field::Direction), n, direction),
            action: words(col(Field::Action), n, |a| match a {
                "ACCEPT" | "accept" => Cell::Is(Action::Accept),
                "REJECT" | "reject" => Cell::Is(Action::Drop),
                _ => Cell::Other,
            }),
            version: integers(col(Field::Version), n),
            tcp_flags: integers(col(Field::TcpFlags), n),
            start: integers(col(Field::Start), n),
            end: integers(col(Field::End), n),
            packets: integers(col(Field::Packets), n),
            bytes: integers(col(Field::Bytes), n),
        }
    }

    /// Row `i`'s outcome as `flowlog::record` would give it (a Parquet record, numbered
    /// `line` and `index`), or `None` where the record must read the row itself.
    pub(super) fn record(
        &self,
        cols: &[Option<Col<'_>>],
        i: usize,
        line: u64,
        index: u64,
    ) -> Option<Outcome> {
        // A status the lanes cannot read may still be a skip: the record reads it.
        if let Some(why) = known(self.status[i]).ok()?.flatten() {
            return Some(Outcome::Skip(why));
        }
        let either = |a: Cell<IpAddr>, b: Cell<IpAddr>| match known(a)? {
            Some(a) => Ok(Some(a)),
            None => known(b),
        };
        let src = either(self.pkt_src[i], self.src[i]).ok()?;
        let dst = either(self.pkt_dst[i], self.dst[i]).ok()?;
        let (Some(src), Some(dst)) = (src, dst) else {
            return Some(Outcome::Skip(SKIP_NO_ADDRESSES));
        };
        self.build(cols, i, src, dst, line, index)
            .ok()
            .map(|r| Outcome::Record(crate::packet::boxed(r)))
    }

    fn build(
        &self,
        cols: &[Option<Col<'_>>],
        i: usize,
        src: IpAddr,
        dst: IpAddr,
        line: u64,
        index: u64,
    ) -> Result<Record, ()> {
        let protocol: u8 = fit(self.protocol[i])?.ok_or(())?;
        let sport: Option<u16> = fit(self.sport[i])?;
        let dport: Option<u16> = fit(self.dport[i])?;
        // The warning is the record's to raise.
        if IpProtocol(protocol).is_tcp_or_udp() && (sport.is_none() || dport.is_none()) {
            return Err(());
        }
        let header = Header::new(src, dst, protocol, sport.unwrap_or(0), dport.unwrap_or(0))
            .map_err(|_| ())?;
        let direction = match self.flow_direction[i] {
            Cell::Absent => known(self.direction[i])?,
            other => known(other)?,
        };
        let action = known(self.action[i])?;
        if fit::<i64>(self.version[i])?.is_some_and(|v| v > AWS_VERSION_MAX) {
            return Err(());
        }
        let tcp_flags: Option<u8> = fit(self.tcp_flags[i])?;
        let start: u64 = fit(self.start[i])?.unwrap_or(0);
        let end: u64 = fit(self.end[i])?.unwrap_or(0);
        if start > end {
            return Err(());
        }
        let packets: u64 = fit(self.packets[i])?.unwrap_or(0);
        let bytes: u64 = fit(self.bytes[i])?.unwrap_or(0);
        let col = |f: Field| cols.get(f as usize).and_then(Option::as_ref);
        let get = |f: Field| col(f).and_then(|c| c.get(i));
        let eni = match get(Field::InterfaceId).or_else(|| get(Field::EniId)) {
            Some(Val::Eni(e)) => Some(e),
            Some(Val::Str(s)) => Some(EniId::from(&*s)),
            Some(_) => return Err(()),
            None => None,
        };
        let reject_reason = match get(Field::RejectReason) {
            None => None,
            Some(Val::Str(s)) => Some(s.into_owned()),
            Some(_) => return Err(()),
        };
        Ok(Record {
            index,
            line,
            format: Format::Parquet,
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
}

/// The general reading, for comparison in tests.
#[cfg(test)]
pub(super) fn general(
    cols: &[Option<Col<'_>>],
    i: usize,
    line: u64,
    index: u64,
) -> (Outcome, Vec<&'static str>) {
    let mut warned = Vec::new();
    let o = crate::packet::flowlog::record(
        &super::Row { cols, i },
        Format::Parquet,
        line,
        index,
        &mut |w| warned.push(w),
    );
    (o, warned)
}
