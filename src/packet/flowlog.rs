//! Flow logs: AWS VPC Flow Logs (text) and Alibaba VPC flow logs (JSON lines).
//!
//! # AWS
//!
//! Without a header line, lines are the default format, version 2:
//! `version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes
//! start end action log-status`. A first line made of field names (as custom formats are
//! delivered, optionally in `${field}` form) sets the field order for the whole file; any
//! of the v2–v5 field names is accepted, unknown ones are ignored. `-` means absent.
//! `pkt-srcaddr` / `pkt-dstaddr` (the packet's own addresses) win over `srcaddr` /
//! `dstaddr` when present. `flow-direction` (`ingress`|`egress`) gives the direction.
//!
//! # Alibaba
//!
//! One JSON object per line with the SLS field names (SEMANTICS 4.2): `eni-id`,
//! `srcaddr`, `srcport`, `dstaddr`, `dstport`, `protocol`, `direction` (`in`|`out`),
//! `packets`, `bytes`, `start`, `end`, `log-status`, `action`, `tcp-flags`. Values may be
//! strings (as SLS exports them) or numbers.
//!
//! # Skips and malformed lines
//!
//! `NODATA` and `SKIPDATA` records, and blank lines, are counted in the [`Summary`], not
//! returned. A malformed line (wrong field count, a number that is not one, a bad address)
//! is, by default, counted under `malformed flow-log line` with its message (naming the
//! line number) kept among the summary's examples; in strict mode it is an error instead.
//!
//! ICMP records carry no type/code in either provider's logs: the port fields are used as
//! given (AWS logs 0 and 0), so the header's type/code words are what the log says.

use std::io::BufRead;
use std::net::IpAddr;

use serde_json::Value;

use super::Summary;
use crate::model::{Action, Direction, EniId, Header};

/// A flow-log line that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FlowError {
    /// What was wrong, and on which line (1-based).
    #[error("line {line}: {why}")]
    Line {
        /// 1-based line number.
        line: u64,
        /// What was wrong.
        why: String,
    },
    /// Reading failed.
    #[error("read error after line {line}: {why}")]
    Read {
        /// Last line read.
        line: u64,
        /// The I/O error.
        why: String,
    },
}

/// Which format a record came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// AWS default format (v2), no header line.
    AwsDefault,
    /// AWS with a header line naming the fields.
    AwsCustom,
    /// Alibaba JSON lines.
    Aliyun,
}

/// One flow-log record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// 0-based position among the file's records (skipped lines keep their number).
    pub index: u64,
    /// 1-based line number.
    pub line: u64,
    /// The format it came from.
    pub format: Format,
    /// The interface the record was logged on.
    pub eni: Option<EniId>,
    /// The direction as logged (v5 `flow-direction`, Alibaba `direction`), if any.
    pub direction: Option<Direction>,
    /// The 5-tuple (absent ports are 0).
    pub header: Header,
    /// Packets in the aggregation window.
    pub packets: u64,
    /// Bytes in the aggregation window.
    pub bytes: u64,
    /// Window start, Unix seconds.
    pub start: u64,
    /// Window end, Unix seconds.
    pub end: u64,
    /// The logged action (REJECT → drop); SG *or* network ACL, never proof of an SG deny.
    pub action: Option<Action>,
    /// OR of the TCP flags seen.
    pub tcp_flags: Option<u8>,
}

const DEFAULT_V2: [&str; 14] = [
    "version",
    "account-id",
    "interface-id",
    "srcaddr",
    "dstaddr",
    "srcport",
    "dstport",
    "protocol",
    "packets",
    "bytes",
    "start",
    "end",
    "action",
    "log-status",
];

const KNOWN: [&str; 30] = [
    "version",
    "account-id",
    "interface-id",
    "srcaddr",
    "dstaddr",
    "srcport",
    "dstport",
    "protocol",
    "packets",
    "bytes",
    "start",
    "end",
    "action",
    "log-status",
    "vpc-id",
    "subnet-id",
    "instance-id",
    "tcp-flags",
    "type",
    "pkt-srcaddr",
    "pkt-dstaddr",
    "region",
    "az-id",
    "sublocation-type",
    "sublocation-id",
    "pkt-src-aws-service",
    "pkt-dst-aws-service",
    "flow-direction",
    "traffic-path",
    "ecs-cluster-arn",
];

/// Reads flow-log records from lines.
pub struct Reader<R> {
    input: R,
    json: bool,
    strict: bool,
    fields: Option<Vec<String>>,
    first: bool,
    line: u64,
    index: u64,
    consumed: u64,
    buf: String,
    summary: Summary,
    done: bool,
}

/// A record's fields by name, whatever the format.
trait Fields {
    fn get(&self, name: &str) -> Option<String>;
}

struct Text<'a> {
    names: &'a [String],
    values: Vec<&'a str>,
}

impl Fields for Text<'_> {
    fn get(&self, name: &str) -> Option<String> {
        let i = self.names.iter().position(|n| n == name)?;
        match self.values.get(i) {
            Some(&"-") | None => None,
            Some(v) => Some((*v).to_string()),
        }
    }
}

struct Json(serde_json::Map<String, Value>);

impl Fields for Json {
    fn get(&self, name: &str) -> Option<String> {
        match self.0.get(name)? {
            Value::String(s) if s == "-" || s.is_empty() => None,
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
}

enum Outcome {
    Record(Box<Record>),
    Skip(&'static str),
    Malformed(String),
}

fn num<T: std::str::FromStr>(f: &dyn Fields, name: &str) -> Result<Option<T>, String> {
    match f.get(name) {
        None => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| format!("{name} '{v}' is not a valid number")),
    }
}

fn addr(f: &dyn Fields, name: &str) -> Result<Option<IpAddr>, String> {
    match f.get(name) {
        None => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| format!("{name} '{v}' is not an IP address")),
    }
}

fn record(f: &dyn Fields, format: Format, line: u64, index: u64) -> Outcome {
    match f.get("log-status").as_deref() {
        Some("NODATA") => return Outcome::Skip("NODATA record (no traffic in the window)"),
        Some("SKIPDATA") => return Outcome::Skip("SKIPDATA record (records lost)"),
        _ => {}
    }
    let parse = || -> Result<Option<Record>, String> {
        let src = match addr(f, "pkt-srcaddr")? {
            Some(a) => Some(a),
            None => addr(f, "srcaddr")?,
        };
        let dst = match addr(f, "pkt-dstaddr")? {
            Some(a) => Some(a),
            None => addr(f, "dstaddr")?,
        };
        let (Some(src), Some(dst)) = (src, dst) else {
            return Ok(None);
        };
        let protocol: u8 = num(f, "protocol")?.ok_or("protocol is missing")?;
        let sport: u16 = num(f, "srcport")?.unwrap_or(0);
        let dport: u16 = num(f, "dstport")?.unwrap_or(0);
        let header = Header::new(src, dst, protocol, sport, dport).map_err(|e| e.to_string())?;
        let direction = match f
            .get("flow-direction")
            .or_else(|| f.get("direction"))
            .as_deref()
        {
            None => None,
            Some("ingress" | "in") => Some(Direction::Ingress),
            Some("egress" | "out") => Some(Direction::Egress),
            Some(other) => return Err(format!("direction '{other}' is not ingress/egress/in/out")),
        };
        let action = match f.get("action").as_deref() {
            None => None,
            Some("ACCEPT" | "accept") => Some(Action::Accept),
            Some("REJECT" | "reject") => Some(Action::Drop),
            Some(other) => return Err(format!("action '{other}' is not ACCEPT or REJECT")),
        };
        let tcp_flags: Option<u16> = num(f, "tcp-flags")?;
        Ok(Some(Record {
            index,
            line,
            format,
            eni: f
                .get("interface-id")
                .or_else(|| f.get("eni-id"))
                .map(EniId::from),
            direction,
            header,
            packets: num(f, "packets")?.unwrap_or(0),
            bytes: num(f, "bytes")?.unwrap_or(0),
            start: num(f, "start")?.unwrap_or(0),
            end: num(f, "end")?.unwrap_or(0),
            action,
            tcp_flags: tcp_flags.map(|x| x as u8),
        }))
    };
    match parse() {
        Ok(Some(r)) => Outcome::Record(Box::new(r)),
        Ok(None) => Outcome::Skip("record without addresses"),
        Err(why) => Outcome::Malformed(why),
    }
}

impl<R: BufRead> Reader<R> {
    /// A reader of JSON lines (`json`) or AWS text lines.
    pub fn new(input: R, json: bool) -> Reader<R> {
        Reader {
            input,
            json,
            strict: false,
            fields: None,
            first: true,
            line: 0,
            index: 0,
            consumed: 0,
            buf: String::new(),
            summary: Summary::default(),
            done: false,
        }
    }

    /// In strict mode a malformed line is an error, not a counted skip.
    pub fn strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }

    /// `aws-flow-log` or `aliyun-flow-log`.
    pub fn format(&self) -> &'static str {
        if self.json {
            "aliyun-flow-log"
        } else {
            "aws-flow-log"
        }
    }

    /// Bytes consumed so far.
    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    /// The summary so far.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// Consumes the reader, returning its summary.
    pub fn into_summary(self) -> Summary {
        self.summary
    }

    fn header_line(words: &[&str]) -> Option<Vec<String>> {
        let names: Vec<String> = words
            .iter()
            .map(|w| {
                w.trim_start_matches("${")
                    .trim_end_matches('}')
                    .replace('_', "-")
            })
            .collect();
        let known = names.iter().filter(|n| KNOWN.contains(&n.as_str())).count();
        (known >= 3 && names.iter().any(|n| n == "srcaddr" || n == "pkt-srcaddr")).then_some(names)
    }

    fn line(&mut self, text: &str) -> Option<Outcome> {
        let text = text.trim();
        if text.is_empty() || text.starts_with('#') {
            return None;
        }
        if self.json {
            return Some(match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(o)) => record(&Json(o), Format::Aliyun, self.line, self.index),
                Ok(_) => Outcome::Malformed("not a JSON object".into()),
                Err(e) => Outcome::Malformed(format!("not JSON: {e}")),
            });
        }
        let words: Vec<&str> = text.split_whitespace().collect();
        if self.first {
            self.first = false;
            if let Some(names) = Self::header_line(&words) {
                self.fields = Some(names);
                return None;
            }
        }
        let (names, format) = match &self.fields {
            Some(n) => (n.clone(), Format::AwsCustom),
            None => (
                DEFAULT_V2.iter().map(|s| s.to_string()).collect(),
                Format::AwsDefault,
            ),
        };
        if words.len() != names.len() {
            return Some(Outcome::Malformed(format!(
                "{} fields, the {} format has {}",
                words.len(),
                if format == Format::AwsDefault {
                    "default (v2)"
                } else {
                    "header's"
                },
                names.len()
            )));
        }
        Some(record(
            &Text {
                names: &names,
                values: words,
            },
            format,
            self.line,
            self.index,
        ))
    }
}

impl<R: BufRead> Iterator for Reader<R> {
    type Item = Result<Record, FlowError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            self.buf.clear();
            let n = match self.input.read_line(&mut self.buf) {
                Ok(n) => n,
                Err(e) => {
                    self.done = true;
                    return Some(Err(FlowError::Read {
                        line: self.line,
                        why: e.to_string(),
                    }));
                }
            };
            if n == 0 {
                self.done = true;
                return None;
            }
            self.consumed += n as u64;
            self.line += 1;
            let text = std::mem::take(&mut self.buf);
            let outcome = self.line(&text);
            self.buf = text;
            let Some(outcome) = outcome else { continue };
            self.summary.records += 1;
            self.index += 1;
            match outcome {
                Outcome::Record(r) => {
                    self.summary.decoded += 1;
                    return Some(Ok(*r));
                }
                Outcome::Skip(why) => self.summary.skip(&why),
                Outcome::Malformed(why) => {
                    let err = FlowError::Line {
                        line: self.line,
                        why,
                    };
                    if self.strict {
                        self.done = true;
                        return Some(Err(err));
                    }
                    self.summary.skip(&"malformed flow-log line");
                    self.summary.example(err.to_string());
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str, json: bool) -> (Vec<Record>, Summary) {
        let mut r = Reader::new(text.as_bytes(), json);
        let recs: Vec<Record> = r.by_ref().map(|x| x.unwrap()).collect();
        (recs, r.into_summary())
    }

    #[test]
    fn aws_default_v2_with_nodata_and_dashes() {
        let text = "2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK\n\
                    2 123456789010 eni-1235b8ca123456789 - - - - - - - 1431280876 1431280934 - NODATA\n\
                    2 123456789010 eni-1235b8ca123456789 172.31.9.69 172.31.9.12 49761 3389 6 20 4249 1418530010 1418530070 REJECT OK\n";
        let (recs, s) = read(text, false);
        assert_eq!(recs.len(), 2);
        assert_eq!(
            recs[0].header.to_string(),
            "tcp 172.31.16.139:20641 -> 172.31.16.21:22"
        );
        assert_eq!(
            recs[0].eni.as_ref().unwrap().as_str(),
            "eni-1235b8ca123456789"
        );
        assert_eq!((recs[0].packets, recs[0].bytes), (20, 4249));
        assert_eq!(recs[1].action, Some(Action::Drop));
        assert_eq!(recs[1].index, 2);
        assert_eq!(s.skipped.len(), 1);
        assert_eq!(s.records, 3);
    }

    #[test]
    fn custom_header_with_direction_and_pkt_addresses() {
        let text = "version interface-id srcaddr dstaddr pkt-srcaddr pkt-dstaddr srcport dstport protocol flow-direction action log-status\n\
                    5 eni-a 10.0.0.5 10.0.0.9 203.0.113.1 10.0.0.9 443 51000 6 ingress ACCEPT OK\n";
        let (recs, _) = read(text, false);
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].format, Format::AwsCustom);
        assert_eq!(recs[0].direction, Some(Direction::Ingress));
        assert_eq!(recs[0].header.src.to_string(), "203.0.113.1");
    }

    #[test]
    fn malformed_lines_name_their_line_number() {
        let text = "2 1 eni-a 10.0.0.1 10.0.0.2 1 2 6 1 1 0 1 ACCEPT OK\n\n2 1 eni-a 10.0.0.1\n2 1 eni-a 10.0.0.1 10.0.0.2 x 2 6 1 1 0 1 ACCEPT OK\n";
        let (recs, s) = read(text, false);
        assert_eq!(recs.len(), 1);
        assert_eq!(s.skipped["malformed flow-log line"], 2);
        assert!(s.examples[0].starts_with("line 3:"), "{:?}", s.examples);
        assert!(
            s.examples[1].starts_with("line 4: srcport 'x'"),
            "{:?}",
            s.examples
        );
        let mut strict = Reader::new(text.as_bytes(), false).strict(true);
        assert!(strict.next().unwrap().is_ok());
        assert_eq!(
            strict.next().unwrap().unwrap_err(),
            FlowError::Line {
                line: 3,
                why: "4 fields, the default (v2) format has 14".into()
            }
        );
    }

    #[test]
    fn aliyun_json_lines() {
        let text = r#"{"__topic__":"flow_log","version":"1","eni-id":"eni-bp1","srcaddr":"203.0.113.5","srcport":"51514","dstaddr":"192.168.1.10","dstport":"22","protocol":"6","direction":"in","packets":"10","bytes":"840","start":"1718000000","end":"1718000060","log-status":"OK","action":"ACCEPT","tcp-flags":"18"}
{"eni-id":"eni-bp1","srcaddr":"192.168.1.10","srcport":22,"dstaddr":"203.0.113.5","dstport":51514,"protocol":6,"direction":"out","log-status":"OK","action":"REJECT"}
not json
"#;
        let (recs, s) = read(text, true);
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].direction, Some(Direction::Ingress));
        assert_eq!(recs[0].tcp_flags, Some(18));
        assert_eq!(recs[1].direction, Some(Direction::Egress));
        assert_eq!(recs[1].action, Some(Action::Drop));
        assert!(
            s.examples[0].starts_with("line 3: not JSON"),
            "{:?}",
            s.examples
        );
    }
}
