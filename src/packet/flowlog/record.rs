//! One flow-log record made from its fields: numbers, addresses, the header, skips and
//! warnings.

use std::net::IpAddr;

use super::{Field, Fields, Format, Record, Val, ALIYUN_VERSION_MAX, AWS_VERSION_MAX};
use crate::model::{Action, Direction, EniId, Header, IpProtocol};

/// What one record turned into.
pub(crate) enum Outcome {
    Record(Box<Record>),
    Skip(&'static str),
    Malformed(String),
}

fn num<T: std::str::FromStr + TryFrom<i64>, F: Fields + ?Sized>(
    f: &F,
    field: Field,
) -> Result<Option<T>, String> {
    let name = field.name();
    match f.get(field) {
        None => Ok(None),
        Some(Val::Int(i)) => T::try_from(i)
            .map(Some)
            .map_err(|_| format!("{name} {i} is out of range")),
        Some(Val::Str(v)) => v.parse().map(Some).map_err(|_| {
            // Digits that do not fit are out of range, not "not a number".
            if v.trim_start_matches('-').parse::<u128>().is_ok() {
                format!("{name} {v} is out of range")
            } else {
                format!("{name} '{v}' is not a valid number")
            }
        }),
        Some(v @ (Val::Addr(_) | Val::Eni(_))) => {
            Err(format!("{name} '{v}' is not a valid number"))
        }
    }
}

fn addr<F: Fields + ?Sized>(f: &F, field: Field) -> Result<Option<IpAddr>, String> {
    match f.get(field) {
        None => Ok(None),
        Some(Val::Addr(a)) => Ok(Some(a)),
        Some(Val::Str(v)) => v
            .parse()
            .map(Some)
            .map_err(|_| format!("{} '{v}' is not an IP address", field.name())),
        Some(v @ (Val::Int(_) | Val::Eni(_))) => {
            Err(format!("{} '{v}' is not an IP address", field.name()))
        }
    }
}

fn text<F: Fields + ?Sized>(f: &F, field: Field) -> Option<String> {
    f.get(field).map(|v| v.to_string())
}

/// A field compared as text without copying it (numbers are written out).
fn with_text<T, F: Fields + ?Sized>(
    f: &F,
    field: Field,
    then: impl FnOnce(Option<&str>) -> T,
) -> T {
    match f.get(field) {
        None => then(None),
        Some(Val::Str(s)) => then(Some(&s)),
        Some(v) => then(Some(&v.to_string())),
    }
}

/// Why records are skipped (not used, not malformed).
pub(crate) const SKIP_NODATA: &str = "NODATA record (no traffic in the window)";
pub(crate) const SKIP_SKIPDATA: &str = "SKIPDATA record (records lost)";
pub(crate) const SKIP_NO_ADDRESSES: &str = "record without addresses";

/// Warnings a record can raise (counted, the record is still used).
pub(super) const WARN_VERSION: &str = "record version newer than known (fields read by name)";
pub(super) const WARN_START_AFTER_END: &str = "start after end (window kept as logged)";
pub(super) const WARN_NO_PORTS: &str = "TCP/UDP record without ports (judged with port 0)";

/// Builds a record from its fields; `warn` is called with each warning it raises.
pub(crate) fn record<F: Fields + ?Sized>(
    f: &F,
    format: Format,
    line: u64,
    index: u64,
    warn: &mut dyn FnMut(&'static str),
) -> Outcome {
    let skip = with_text(f, Field::LogStatus, |status| match status {
        Some("NODATA") => Some(SKIP_NODATA),
        Some("SKIPDATA") => Some(SKIP_SKIPDATA),
        _ => None,
    });
    if let Some(why) = skip {
        return Outcome::Skip(why);
    }
    let parse = |warn: &mut dyn FnMut(&'static str)| -> Result<Option<Record>, String> {
        let src = match addr(f, Field::PktSrcAddr)? {
            Some(a) => Some(a),
            None => addr(f, Field::SrcAddr)?,
        };
        let dst = match addr(f, Field::PktDstAddr)? {
            Some(a) => Some(a),
            None => addr(f, Field::DstAddr)?,
        };
        let (Some(src), Some(dst)) = (src, dst) else {
            return Ok(None);
        };
        let protocol: u8 = num(f, Field::Protocol)?.ok_or("protocol is missing")?;
        let sport: Option<u16> = num(f, Field::SrcPort)?;
        let dport: Option<u16> = num(f, Field::DstPort)?;
        if IpProtocol(protocol).is_tcp_or_udp() && (sport.is_none() || dport.is_none()) {
            warn(WARN_NO_PORTS);
        }
        let header = Header::new(src, dst, protocol, sport.unwrap_or(0), dport.unwrap_or(0))
            .map_err(|e| e.to_string())?;
        let direction_field = if f.get(Field::FlowDirection).is_some() {
            Field::FlowDirection
        } else {
            Field::Direction
        };
        let direction = with_text(f, direction_field, |d| match d {
            None => Ok(None),
            Some("ingress" | "in") => Ok(Some(Direction::Ingress)),
            Some("egress" | "out") => Ok(Some(Direction::Egress)),
            Some(other) => Err(format!("direction '{other}' is not ingress/egress/in/out")),
        })?;
        let action = with_text(f, Field::Action, |a| match a {
            None => Ok(None),
            Some("ACCEPT" | "accept") => Ok(Some(Action::Accept)),
            Some("REJECT" | "reject") => Ok(Some(Action::Drop)),
            Some(other) => Err(format!("action '{other}' is not ACCEPT or REJECT")),
        })?;
        if let Some(v) = num::<i64, _>(f, Field::Version)? {
            let max = if format == Format::Aliyun {
                ALIYUN_VERSION_MAX
            } else {
                AWS_VERSION_MAX
            };
            if v > max {
                warn(WARN_VERSION);
            }
        }
        // The OR of the flags seen, FIN (1) to CWR (128): AWS logs FIN, SYN, RST and ACK
        // (with SYN) only, so a value that needs more than eight bits is not one of theirs.
        let tcp_flags: Option<u8> = num(f, Field::TcpFlags)?;
        let start = num(f, Field::Start)?.unwrap_or(0);
        let end = num(f, Field::End)?.unwrap_or(0);
        if start > end {
            warn(WARN_START_AFTER_END);
        }
        Ok(Some(Record {
            index,
            line,
            format,
            eni: match f.get(Field::InterfaceId).or_else(|| f.get(Field::EniId)) {
                Some(Val::Eni(e)) => Some(e),
                Some(Val::Str(s)) => Some(EniId::from(&*s)),
                Some(v) => Some(EniId::from(v.to_string())),
                None => None,
            },
            direction,
            header,
            packets: num(f, Field::Packets)?.unwrap_or(0),
            bytes: num(f, Field::Bytes)?.unwrap_or(0),
            start,
            end,
            action,
            tcp_flags,
            reject_reason: text(f, Field::RejectReason),
        }))
    };
    match parse(warn) {
        Ok(Some(r)) => Outcome::Record(crate::packet::boxed(r)),
        Ok(None) => Outcome::Skip(SKIP_NO_ADDRESSES),
        Err(why) => Outcome::Malformed(why),
    }
}
