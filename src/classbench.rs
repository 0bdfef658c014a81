//! ClassBench filter sets and header traces, the field's standard benchmark formats.
//!
//! A filter file has one rule per line, tab-separated; line order is priority (first line
//! wins):
//!
//! ```text
//! @SRC/LEN<TAB>DST/LEN<TAB>SP_LO : SP_HI<TAB>DP_LO : DP_HI<TAB>0xPP/0xMM<TAB>0xFLAGS/0xMASK
//! ```
//!
//! The protocol mask is `0xFF` (exact) or `0x00` (any); the flags field is read but ignored,
//! as by every classifier. A trace line is `SRC DST SPORT DPORT PROTO [FLAGS [FILTER]]` in
//! decimal. Files ending in `.xz` are decompressed on the fly.
//!
//! A filter set becomes a [`State`] with one generic group and one ENI, judged at
//! [`POINT`]: the rule on line *i* (0-based) has ID `i` and priority *i*, the packet's source
//! is the remote side and its destination the local side.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use crate::classify::Point;
use crate::model::{
    Action, Cidr, Direction, Eni, GroupKind, Header, Peer, PortRange, Priority, Protocol, Provider,
    Rule, SecurityGroup, State,
};

/// Where every ClassBench header is judged.
pub const POINT: Point = Point {
    eni: 0,
    direction: Direction::Ingress,
};

/// A ClassBench file that could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A line is malformed.
    #[error("{path}:{line}: {why}")]
    Line {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// What was wrong.
        why: String,
    },
    /// The file holds nothing.
    #[error("{path}: the file holds no {what}")]
    Empty {
        /// The file.
        path: String,
        /// Rules, headers, indexes.
        what: &'static str,
    },
}

/// One header of a trace, with the filter it was generated from (not always its first
/// match).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceEntry {
    /// The header.
    pub header: Header,
    /// The generating filter's 0-based index, when the line has one.
    pub filter: Option<u32>,
}

/// Opens a file, decompressing `.xz` transparently.
fn open(path: &Path) -> Result<Box<dyn BufRead>, Error> {
    let io = |source| Error::Io {
        path: path.display().to_string(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    if path.extension().is_some_and(|e| e == "xz") {
        let mut raw = Vec::new();
        lzma_rs::xz_decompress(&mut BufReader::new(file), &mut raw).map_err(|e| {
            io(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("xz: {e}"),
            ))
        })?;
        Ok(Box::new(std::io::Cursor::new(raw)))
    } else {
        Ok(Box::new(BufReader::new(file)))
    }
}

/// Calls `f` with each non-blank line and its 1-based number.
fn each_line(
    path: &Path,
    reader: impl BufRead,
    mut f: impl FnMut(usize, &str) -> Result<(), String>,
) -> Result<(), Error> {
    for (n, line) in reader.lines().enumerate() {
        let line = line.map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        f(n + 1, &line).map_err(|why| Error::Line {
            path: path.display().to_string(),
            line: n + 1,
            why,
        })?;
    }
    Ok(())
}

fn parse_prefix(text: &str, what: &str) -> Result<Cidr, String> {
    let (addr, len) = text
        .split_once('/')
        .ok_or_else(|| format!("{what} '{text}' is not ADDR/LEN"))?;
    let addr: Ipv4Addr = addr
        .parse()
        .map_err(|_| format!("{what} '{text}': bad IPv4 address"))?;
    let len: u8 = len
        .parse()
        .map_err(|_| format!("{what} '{text}': bad prefix length"))?;
    Cidr::new(IpAddr::V4(addr), len).map_err(|e| format!("{what} '{text}': {e}"))
}

fn parse_range(text: &str, what: &str) -> Result<PortRange, String> {
    let (lo, hi) = text
        .split_once(':')
        .ok_or_else(|| format!("{what} '{text}' is not 'LO : HI'"))?;
    let num = |t: &str| {
        t.trim()
            .parse::<u16>()
            .map_err(|_| format!("{what} '{text}': '{}' is not a port 0-65535", t.trim()))
    };
    PortRange::new(num(lo)?, num(hi)?).map_err(|e| format!("{what} '{text}': {e}"))
}

fn parse_hex_pair(text: &str, what: &str) -> Result<(u32, u32), String> {
    let (v, m) = text
        .split_once('/')
        .ok_or_else(|| format!("{what} '{text}' is not 0xVALUE/0xMASK"))?;
    let hex = |t: &str| {
        t.strip_prefix("0x")
            .or_else(|| t.strip_prefix("0X"))
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .ok_or_else(|| format!("{what} '{text}': '{t}' is not a hex number"))
    };
    Ok((hex(v)?, hex(m)?))
}

/// Parses one filter line into a rule with index `index`.
pub fn parse_filter(line: &str, index: u32) -> Result<Rule, String> {
    let body = line
        .trim_end()
        .strip_prefix('@')
        .ok_or("a filter line starts with '@'")?;
    let fields: Vec<&str> = body.split('\t').map(str::trim).collect();
    if fields.len() != 6 {
        return Err(format!(
            "expected 6 tab-separated fields (src, dst, sport, dport, proto, flags), found {}",
            fields.len()
        ));
    }
    let src = parse_prefix(fields[0], "source prefix")?;
    let dst = parse_prefix(fields[1], "destination prefix")?;
    let sport = parse_range(fields[2], "source port range")?;
    let dport = parse_range(fields[3], "destination port range")?;
    let (proto, mask) = parse_hex_pair(fields[4], "protocol")?;
    let protocol = match (proto, mask) {
        (_, 0) => Protocol::Any,
        (p, 0xff) if p <= 0xff => Protocol::Number(p as u8),
        _ => {
            return Err(format!(
                "protocol '{}': only masks 0xFF (exact) and 0x00 (any) are supported",
                fields[4]
            ))
        }
    };
    parse_hex_pair(fields[5], "flags")?;
    Ok(Rule {
        id: index.to_string().into(),
        group: GROUP.into(),
        direction: Direction::Ingress,
        action: Action::Accept,
        priority: Priority(index),
        protocol,
        src_ports: sport,
        dst_ports: dport,
        remote: Peer::cidr(src),
        local: Some(dst),
        description: None,
        attrs: Default::default(),
    })
}

const GROUP: &str = "classbench";

/// Wraps rules (already in priority order) into the generic one-group, one-ENI state.
pub fn state_of(rules: Vec<Rule>) -> State {
    State {
        groups: vec![SecurityGroup {
            id: GROUP.into(),
            provider: Provider::Generic,
            name: None,
            description: None,
            kind: GroupKind::Basic,
            inner_access: Action::Drop,
            vpc: None,
            owner: None,
            attrs: Default::default(),
        }],
        rules,
        enis: vec![Eni {
            id: GROUP.into(),
            ips: Vec::new(),
            public_ips: Vec::new(),
            groups: vec![GROUP.into()],
            vpc: None,
            attrs: Default::default(),
        }],
        ..State::default()
    }
}

/// Reads a filter file into a state (see the module docs).
pub fn read_filters(path: &Path) -> Result<State, Error> {
    filters_from(path, open(path)?)
}

/// Reads filters from any reader; `path` names it in errors.
pub fn filters_from(path: &Path, reader: impl BufRead) -> Result<State, Error> {
    let mut rules = Vec::new();
    each_line(path, reader, |_, line| {
        let index = u32::try_from(rules.len()).map_err(|_| "too many rules".to_string())?;
        rules.push(parse_filter(line, index)?);
        Ok(())
    })?;
    if rules.is_empty() {
        return Err(Error::Empty {
            path: path.display().to_string(),
            what: "filters",
        });
    }
    Ok(state_of(rules))
}

/// A seeded synthetic filter set shaped like ClassBench's ACL seeds: mostly specific
/// prefixes (/16–/32) on one side and wider ones (/0–/24) on the other, exact or wildcard
/// protocols, service ports exact or in small ranges, source ports mostly any. The same `n`
/// and `seed` give the same rules.
pub fn synthetic_filters(n: usize, seed: u64) -> State {
    use crate::packet::synth::Rng;
    let mut rng = Rng::new(seed);
    let prefix = |rng: &mut Rng, specific: bool| {
        let len = if specific {
            16 + rng.below(17) as u8
        } else {
            [0u8, 8, 16, 24][rng.below(4) as usize]
        };
        let addr = Ipv4Addr::from(rng.next_u64() as u32);
        // Invariant: len <= 32.
        Cidr::new(IpAddr::V4(addr), len).unwrap_or(Cidr::ANY_V4)
    };
    let rules = (0..n)
        .map(|i| {
            let src_specific = rng.below(4) != 0;
            let src = prefix(&mut rng, src_specific);
            let dst_specific = !src_specific || rng.below(2) == 0;
            let dst = prefix(&mut rng, dst_specific);
            let protocol = match rng.below(10) {
                0 => Protocol::Any,
                1 => Protocol::UDP,
                2 => Protocol::ICMP,
                _ => Protocol::TCP,
            };
            let dport = match rng.below(5) {
                0 => PortRange::ANY,
                1 => {
                    let lo = rng.below(60000) as u16;
                    PortRange::new(lo, lo + rng.below(1000) as u16).unwrap_or(PortRange::ANY)
                }
                _ => PortRange::single(rng.below(65536) as u16),
            };
            let sport = if rng.below(10) == 0 {
                PortRange::new(1024, 65535).unwrap_or(PortRange::ANY)
            } else {
                PortRange::ANY
            };
            Rule {
                id: i.to_string().into(),
                group: GROUP.into(),
                direction: Direction::Ingress,
                action: Action::Accept,
                priority: Priority(i as u32),
                protocol,
                src_ports: sport,
                dst_ports: dport,
                remote: Peer::cidr(src),
                local: Some(dst),
                description: None,
                attrs: Default::default(),
            }
        })
        .collect();
    state_of(rules)
}

/// Parses one trace line.
pub fn parse_trace_line(line: &str) -> Result<TraceEntry, String> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    if !(5..=7).contains(&fields.len()) {
        return Err(format!(
            "expected 5 to 7 fields (src dst sport dport proto [flags [filter]]), found {}",
            fields.len()
        ));
    }
    let num = |i: usize, what: &str, max: u64| -> Result<u64, String> {
        fields[i]
            .parse::<u64>()
            .ok()
            .filter(|&v| v <= max)
            .ok_or_else(|| format!("{what} '{}' is not a number 0-{max}", fields[i]))
    };
    let src = Ipv4Addr::from(num(0, "source address", u32::MAX.into())? as u32);
    let dst = Ipv4Addr::from(num(1, "destination address", u32::MAX.into())? as u32);
    let sport = num(2, "source port", 65535)? as u16;
    let dport = num(3, "destination port", 65535)? as u16;
    let proto = num(4, "protocol", 255)? as u8;
    if fields.len() >= 6 {
        num(5, "flags", u32::MAX.into())?;
    }
    let filter = if fields.len() == 7 {
        Some(num(6, "filter index", u32::MAX.into())? as u32)
    } else {
        None
    };
    let header = Header::new(IpAddr::V4(src), IpAddr::V4(dst), proto, sport, dport)
        .map_err(|e| e.to_string())?;
    Ok(TraceEntry { header, filter })
}

/// Reads a trace file.
pub fn read_trace(path: &Path) -> Result<Vec<TraceEntry>, Error> {
    let mut out = Vec::new();
    each_line(path, open(path)?, |_, line| {
        out.push(parse_trace_line(line)?);
        Ok(())
    })?;
    if out.is_empty() {
        return Err(Error::Empty {
            path: path.display().to_string(),
            what: "headers",
        });
    }
    Ok(out)
}

/// Reads a first-match file: one 0-based rule index per line (`-1` or `none` for no match).
pub fn read_expect(path: &Path) -> Result<Vec<Option<u32>>, Error> {
    let mut out = Vec::new();
    each_line(path, open(path)?, |_, line| {
        let t = line.trim();
        out.push(match t {
            "-1" | "none" => None,
            _ => Some(
                t.parse::<u32>()
                    .map_err(|_| format!("'{t}' is not a rule index"))?,
            ),
        });
        Ok(())
    })?;
    if out.is_empty() {
        return Err(Error::Empty {
            path: path.display().to_string(),
            what: "indexes",
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_real_filter_line() {
        let r = parse_filter(
            "@195.120.234.169/32\t16.254.228.217/32\t0 : 65535\t19856 : 19856\t0x06/0xFF\t0x1000/0x1000\t",
            3,
        )
        .unwrap();
        assert_eq!(r.protocol, Protocol::TCP);
        assert_eq!(r.dst_ports, PortRange::single(19856));
        assert_eq!(r.priority, Priority(3));
        assert_eq!(r.local.unwrap().to_string(), "16.254.228.217/32");
        let any = parse_filter(
            "@0.0.0.0/0\t0.0.0.0/0\t0 : 65535\t0 : 65535\t0x00/0x00\t0x0000/0x0000\t",
            0,
        )
        .unwrap();
        assert_eq!(any.protocol, Protocol::Any);
    }

    #[test]
    fn rejects_malformed_filter_lines_with_reasons() {
        let cases = [
            (
                "1.2.3.4/32\t1.2.3.4/32\t0 : 1\t0 : 1\t0x06/0xFF\t0x0/0x0",
                "starts with '@'",
            ),
            (
                "@1.2.3.4/33\t1.2.3.4/32\t0 : 1\t0 : 1\t0x06/0xFF\t0x0/0x0",
                "exceeds",
            ),
            (
                "@1.2.3.4/32\t1.2.3.4/32\t5 : 1\t0 : 1\t0x06/0xFF\t0x0/0x0",
                "reversed",
            ),
            (
                "@1.2.3.4/32\t1.2.3.4/32\t0 : 70000\t0 : 1\t0x06/0xFF\t0x0/0x0",
                "not a port",
            ),
            (
                "@1.2.3.4/32\t1.2.3.4/32\t0 : 1\t0 : 1\t0x06/0x0F\t0x0/0x0",
                "masks",
            ),
            (
                "@1.2.3.4/32\t1.2.3.4/32\t0 : 1\t0 : 1\t0x06/0xFF",
                "6 tab-separated",
            ),
            (
                "@1.2.3/32\t1.2.3.4/32\t0 : 1\t0 : 1\t0x06/0xFF\t0x0/0x0",
                "bad IPv4",
            ),
        ];
        for (line, why) in cases {
            let err = parse_filter(line, 0).unwrap_err();
            assert!(err.contains(why), "{line}: {err}");
        }
    }

    #[test]
    fn parses_trace_lines() {
        let e =
            parse_trace_line("1044126168\t1559590493\t65535\t65535\t6\t4294967295\t743\t").unwrap();
        assert_eq!(e.filter, Some(743));
        assert_eq!(e.header.protocol(), 6);
        assert!(parse_trace_line("1 2 3 4 256").is_err());
        assert!(parse_trace_line("1 2 3").is_err());
        assert!(parse_trace_line("4294967296 2 3 4 6").is_err());
    }
}
