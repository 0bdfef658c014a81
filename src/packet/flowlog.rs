//! Flow logs: AWS VPC Flow Logs (text) and Alibaba VPC flow logs (JSON lines, CSV).
//!
//! # AWS
//!
//! Without a header line, lines are the default format, version 2:
//! `version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes
//! start end action log-status`. A first line made of field names (as custom formats are
//! delivered to S3, optionally in `${field}` form or with `_` for `-`) sets the field order
//! for the whole file; a header that names a field twice is rejected
//! ([`FlowError::Header`]: one of the two values would be lost). Every field of versions
//! 2 to 10 is known by name ([`KNOWN`]); unknown names are ignored. `-` means absent.
//! `pkt-srcaddr` / `pkt-dstaddr` (the packet's own addresses) win over `srcaddr` /
//! `dstaddr` when present. `flow-direction` (`ingress`|`egress`) gives the direction;
//! `reject-reason` (v8, e.g. `BPA`, VPC Block Public Access) is kept on the record for the
//! flow-log agreement. A line equal to the header (files concatenated with `cat`) is
//! counted as a repeated header and skipped.
//!
//! # Alibaba
//!
//! One JSON object per line with the SLS field names (SEMANTICS 4.2): `eni-id`,
//! `srcaddr`, `srcport`, `dstaddr`, `dstport`, `protocol`, `direction` (`in`|`out`),
//! `packets`, `bytes`, `start`, `end`, `log-status`, `action`, `tcp-flags`. Values may be
//! strings (as SLS exports them) or numbers. SLS's CSV export (a header line of
//! comma-separated field names, RFC 4180 quoting) is read by the same names.
//!
//! # Skips, warnings and malformed lines
//!
//! `NODATA` and `SKIPDATA` records, and blank lines, are counted in the [`Summary`], not
//! returned. A malformed line (wrong field count, a number that is not one, a bad address,
//! text that is not UTF-8) is, by default, counted under `malformed flow-log line` with its
//! message (naming the line number) kept among the summary's examples; in strict mode it is
//! an error instead. Lines longer than [`MAX_LINE`] bytes are skipped without being held
//! (counted under `over-long line`). Records that are used but look wrong are counted
//! among the summary's warnings: a `version` newer than the known ones, `start` after
//! `end`, a TCP or UDP record without ports (judged with port 0).
//!
//! An input whose first [`GIVE_UP_AFTER`] lines with content are all malformed or over-long
//! is not a flow log: reading stops with [`FlowError::NotFlowLog`] after at most that many
//! lines, in memory bounded by [`MAX_LINE`].
//!
//! ICMP records carry no type/code in either provider's logs: the port fields are used as
//! given (AWS logs 0 and 0), so the header's type/code words are what the log says.

use std::borrow::Cow;
use std::io::BufRead;
use std::net::IpAddr;

use serde_json::Value;

use super::Summary;
use crate::model::{Action, Direction, EniId, Header};

/// The longest line read, in bytes; longer lines are skipped without being held.
pub const MAX_LINE: usize = 1 << 20;

/// Malformed or over-long lines, before any usable one, after which an input is declared
/// not a flow log.
pub const GIVE_UP_AFTER: u64 = 64;

/// The newest AWS flow-log version whose fields are known.
pub const AWS_VERSION_MAX: i64 = 10;

/// The newest Alibaba flow-log version known.
pub const ALIYUN_VERSION_MAX: i64 = 1;

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
    /// The header line cannot be used (a repeated field name).
    #[error("line {line}: header rejected: {why}")]
    Header {
        /// 1-based line number of the header.
        line: u64,
        /// What was wrong.
        why: String,
    },
    /// Nothing read so far is a flow-log record: the input is not a flow log.
    #[error("not a flow log: no usable record in the first {line} lines ({first})")]
    NotFlowLog {
        /// Lines read before giving up.
        line: u64,
        /// The first line's problem.
        first: String,
    },
    /// A columnar file whose schema is not a flow log's.
    #[error("not a flow log: {0}")]
    NotFlowLogSchema(String),
    /// A file-level problem of a columnar file (its footer, its schema).
    #[error("{0}")]
    File(String),
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
#[non_exhaustive]
pub enum Format {
    /// AWS default format (v2), no header line.
    AwsDefault,
    /// AWS with a header line naming the fields.
    AwsCustom,
    /// Alibaba JSON lines.
    Aliyun,
    /// Comma-separated values with a header line (Alibaba SLS CSV export).
    Csv,
    /// AWS's Parquet delivery (Athena's column names).
    Parquet,
}

/// One flow-log record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// 0-based position among the input's records (skipped lines keep their number).
    pub index: u64,
    /// 1-based line number (Parquet: 1-based row in the file).
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
    /// AWS `reject-reason` (v8): why a REJECT happened when it was not a security group or
    /// network ACL (`BPA`: VPC Block Public Access).
    pub reject_reason: Option<String>,
}

/// The fields of the default format (version 2), in order.
pub const DEFAULT_V2: [&str; 14] = [
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

/// Every field name known (AWS versions 2 to 10, Alibaba SLS), in the `-` spelling.
pub const KNOWN: [&str; 50] = [
    // AWS v2
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
    // v3
    "vpc-id",
    "subnet-id",
    "instance-id",
    "tcp-flags",
    "type",
    "pkt-srcaddr",
    "pkt-dstaddr",
    // v4
    "region",
    "az-id",
    "sublocation-type",
    "sublocation-id",
    // v5
    "pkt-src-aws-service",
    "pkt-dst-aws-service",
    "flow-direction",
    "traffic-path",
    // v7
    "ecs-cluster-arn",
    "ecs-cluster-name",
    "ecs-container-instance-arn",
    "ecs-container-instance-id",
    "ecs-container-id",
    "ecs-second-container-id",
    "ecs-service-name",
    "ecs-task-definition-arn",
    "ecs-task-arn",
    "ecs-task-id",
    // v8 and later
    "reject-reason",
    "resource-id",
    "encryption-status",
    // Alibaba
    "eni-id",
    "direction",
    "vswitch-id",
    "vm-id",
    "srctype",
    "dsttype",
    "--topic--",
    "--time--",
];

/// The fields sgsim uses, by position in [`Layout::slots`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Field {
    Version,
    InterfaceId,
    EniId,
    SrcAddr,
    DstAddr,
    PktSrcAddr,
    PktDstAddr,
    SrcPort,
    DstPort,
    Protocol,
    Packets,
    Bytes,
    Start,
    End,
    Action,
    LogStatus,
    TcpFlags,
    FlowDirection,
    Direction,
    RejectReason,
}

const FIELDS: usize = 20;

impl Field {
    pub(crate) const ALL: [Field; FIELDS] = [
        Field::Version,
        Field::InterfaceId,
        Field::EniId,
        Field::SrcAddr,
        Field::DstAddr,
        Field::PktSrcAddr,
        Field::PktDstAddr,
        Field::SrcPort,
        Field::DstPort,
        Field::Protocol,
        Field::Packets,
        Field::Bytes,
        Field::Start,
        Field::End,
        Field::Action,
        Field::LogStatus,
        Field::TcpFlags,
        Field::FlowDirection,
        Field::Direction,
        Field::RejectReason,
    ];

    /// The field's name in the `-` spelling.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Field::Version => "version",
            Field::InterfaceId => "interface-id",
            Field::EniId => "eni-id",
            Field::SrcAddr => "srcaddr",
            Field::DstAddr => "dstaddr",
            Field::PktSrcAddr => "pkt-srcaddr",
            Field::PktDstAddr => "pkt-dstaddr",
            Field::SrcPort => "srcport",
            Field::DstPort => "dstport",
            Field::Protocol => "protocol",
            Field::Packets => "packets",
            Field::Bytes => "bytes",
            Field::Start => "start",
            Field::End => "end",
            Field::Action => "action",
            Field::LogStatus => "log-status",
            Field::TcpFlags => "tcp-flags",
            Field::FlowDirection => "flow-direction",
            Field::Direction => "direction",
            Field::RejectReason => "reject-reason",
        }
    }
}

/// A field's name in the `-` spelling: `${field}` braces dropped, `_` (Parquet, Athena,
/// SLS's `traffic_path`) read as `-`.
pub(crate) fn canonical(name: &str) -> String {
    name.trim()
        .trim_start_matches("${")
        .trim_end_matches('}')
        .replace('_', "-")
}

/// Where each used field sits among a header's columns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    pub(crate) slots: [Option<usize>; FIELDS],
    pub(crate) columns: usize,
}

impl Layout {
    /// The layout of `names` (already in canonical spelling); a name given twice is an error.
    pub(crate) fn new<S: AsRef<str>>(names: &[S]) -> Result<Layout, String> {
        let mut slots = [None; FIELDS];
        for (i, n) in names.iter().enumerate() {
            let n = n.as_ref();
            if let Some(j) = names[..i].iter().position(|m| m.as_ref() == n) {
                return Err(format!(
                    "field '{n}' is named twice (columns {} and {})",
                    j + 1,
                    i + 1
                ));
            }
            if let Some(f) = Field::ALL.iter().find(|f| f.name() == n) {
                slots[*f as usize] = Some(i);
            }
        }
        Ok(Layout {
            slots,
            columns: names.len(),
        })
    }

    fn default_v2() -> Layout {
        // The names are distinct.
        Layout::new(&DEFAULT_V2).unwrap_or(Layout {
            slots: [None; FIELDS],
            columns: 0,
        })
    }
}

/// A field's value as a record holds it.
#[derive(Clone, Debug)]
pub(crate) enum Val<'a> {
    /// Text (`-` and empty already mean absent).
    Str(Cow<'a, str>),
    /// A number (Parquet and JSON numbers).
    Int(i64),
}

impl std::fmt::Display for Val<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Val::Str(s) => f.write_str(s),
            Val::Int(i) => write!(f, "{i}"),
        }
    }
}

/// A record's fields by name, whatever the format.
pub(crate) trait Fields {
    fn get(&self, field: Field) -> Option<Val<'_>>;
}

struct Text<'a> {
    layout: &'a Layout,
    values: &'a [&'a str],
}

fn text_val(v: &str) -> Option<Val<'_>> {
    match v {
        "-" | "" => None,
        v => Some(Val::Str(Cow::Borrowed(v))),
    }
}

impl Fields for Text<'_> {
    fn get(&self, field: Field) -> Option<Val<'_>> {
        let i = self.layout.slots[field as usize]?;
        text_val(self.values.get(i)?)
    }
}

struct Json(serde_json::Map<String, Value>);

impl Fields for Json {
    fn get(&self, field: Field) -> Option<Val<'_>> {
        let name = field.name();
        let v = self.0.get(name).or_else(|| {
            let alt = name.replace('-', "_");
            self.0.get(&alt)
        })?;
        match v {
            Value::String(s) => text_val(s),
            Value::Number(n) => match n.as_i64() {
                Some(i) => Some(Val::Int(i)),
                None => Some(Val::Str(Cow::Owned(n.to_string()))),
            },
            _ => None,
        }
    }
}

/// What one record turned into.
pub(crate) enum Outcome {
    Record(Box<Record>),
    Skip(&'static str),
    Malformed(String),
}

fn num<T: std::str::FromStr + TryFrom<i64>>(
    f: &dyn Fields,
    field: Field,
) -> Result<Option<T>, String> {
    let name = field.name();
    match f.get(field) {
        None => Ok(None),
        Some(Val::Int(i)) => T::try_from(i)
            .map(Some)
            .map_err(|_| format!("{name} {i} is out of range")),
        Some(Val::Str(v)) => v
            .parse()
            .map(Some)
            .map_err(|_| format!("{name} '{v}' is not a valid number")),
    }
}

fn addr(f: &dyn Fields, field: Field) -> Result<Option<IpAddr>, String> {
    match f.get(field) {
        None => Ok(None),
        Some(Val::Str(v)) => v
            .parse()
            .map(Some)
            .map_err(|_| format!("{} '{v}' is not an IP address", field.name())),
        Some(v @ Val::Int(_)) => Err(format!("{} '{v}' is not an IP address", field.name())),
    }
}

fn text(f: &dyn Fields, field: Field) -> Option<String> {
    f.get(field).map(|v| v.to_string())
}

/// Warnings a record can raise (counted, the record is still used).
pub(crate) const WARN_VERSION: &str = "record version newer than known (fields read by name)";
pub(crate) const WARN_START_AFTER_END: &str = "start after end (window kept as logged)";
pub(crate) const WARN_NO_PORTS: &str = "TCP/UDP record without ports (judged with port 0)";

/// Builds a record from its fields; `warn` is called with each warning it raises.
pub(crate) fn record(
    f: &dyn Fields,
    format: Format,
    line: u64,
    index: u64,
    warn: &mut dyn FnMut(&'static str),
) -> Outcome {
    let status = f.get(Field::LogStatus);
    match status.as_ref().map(|v| v.to_string()).as_deref() {
        Some("NODATA") => return Outcome::Skip("NODATA record (no traffic in the window)"),
        Some("SKIPDATA") => return Outcome::Skip("SKIPDATA record (records lost)"),
        _ => {}
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
        if matches!(protocol, 6 | 17) && (sport.is_none() || dport.is_none()) {
            warn(WARN_NO_PORTS);
        }
        let header = Header::new(src, dst, protocol, sport.unwrap_or(0), dport.unwrap_or(0))
            .map_err(|e| e.to_string())?;
        let direction = match text(f, Field::FlowDirection)
            .or_else(|| text(f, Field::Direction))
            .as_deref()
        {
            None => None,
            Some("ingress" | "in") => Some(Direction::Ingress),
            Some("egress" | "out") => Some(Direction::Egress),
            Some(other) => return Err(format!("direction '{other}' is not ingress/egress/in/out")),
        };
        let action = match text(f, Field::Action).as_deref() {
            None => None,
            Some("ACCEPT" | "accept") => Some(Action::Accept),
            Some("REJECT" | "reject") => Some(Action::Drop),
            Some(other) => return Err(format!("action '{other}' is not ACCEPT or REJECT")),
        };
        if let Some(v) = num::<i64>(f, Field::Version)? {
            let max = if format == Format::Aliyun {
                ALIYUN_VERSION_MAX
            } else {
                AWS_VERSION_MAX
            };
            if v > max {
                warn(WARN_VERSION);
            }
        }
        let tcp_flags: Option<u16> = num(f, Field::TcpFlags)?;
        let start = num(f, Field::Start)?.unwrap_or(0);
        let end = num(f, Field::End)?.unwrap_or(0);
        if start > end {
            warn(WARN_START_AFTER_END);
        }
        Ok(Some(Record {
            index,
            line,
            format,
            eni: text(f, Field::InterfaceId)
                .or_else(|| text(f, Field::EniId))
                .map(EniId::from),
            direction,
            header,
            packets: num(f, Field::Packets)?.unwrap_or(0),
            bytes: num(f, Field::Bytes)?.unwrap_or(0),
            start,
            end,
            action,
            tcp_flags: tcp_flags.map(|x| x as u8),
            reject_reason: text(f, Field::RejectReason),
        }))
    };
    match parse(warn) {
        Ok(Some(r)) => Outcome::Record(Box::new(r)),
        Ok(None) => Outcome::Skip("record without addresses"),
        Err(why) => Outcome::Malformed(why),
    }
}

/// The line format, once the first line with content has been seen.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Mode {
    /// Not known yet (no line with content so far).
    Unknown,
    Json,
    /// AWS space-separated, by this layout; `header` is the header line's words, if any.
    Text {
        layout: Layout,
        header: Option<Vec<String>>,
    },
    /// Comma-separated with this layout and header.
    Csv {
        layout: Layout,
        header: Vec<String>,
    },
}

/// One line as read: text within [`MAX_LINE`], or a longer line (its first bytes held).
enum Line {
    Eof,
    Text,
    TooLong,
}

/// Splits one CSV line (RFC 4180 quoting, no embedded line breaks).
fn split_csv(line: &str) -> Result<Vec<Cow<'_, str>>, String> {
    let mut out = Vec::new();
    let b = line.as_bytes();
    let mut i = 0;
    loop {
        if b.get(i) == Some(&b'"') {
            let mut s = String::new();
            let mut j = i + 1;
            loop {
                match line[j..].find('"') {
                    None => return Err("unterminated quoted CSV field".into()),
                    Some(k) => {
                        s.push_str(&line[j..j + k]);
                        j += k + 1;
                        if b.get(j) == Some(&b'"') {
                            s.push('"');
                            j += 1;
                        } else {
                            break;
                        }
                    }
                }
            }
            out.push(Cow::Owned(s));
            match b.get(j) {
                None => return Ok(out),
                Some(b',') => i = j + 1,
                Some(_) => return Err("text after a quoted CSV field".into()),
            }
        } else {
            match line[i..].find(',') {
                None => {
                    out.push(Cow::Borrowed(&line[i..]));
                    return Ok(out);
                }
                Some(k) => {
                    out.push(Cow::Borrowed(&line[i..i + k]));
                    i += k + 1;
                }
            }
        }
    }
}

/// Reads flow-log records from lines.
pub struct Reader<R> {
    input: R,
    mode: Mode,
    strict: bool,
    line: u64,
    index: u64,
    consumed: u64,
    buf: Vec<u8>,
    summary: Summary,
    /// Malformed or over-long lines while nothing usable has been read.
    bad_start: u64,
    /// Something (a record, a header, a NODATA line) showed this is a flow log.
    recognised: bool,
    /// The rest of an over-long line is still to be skipped.
    skipping: bool,
    done: bool,
}

impl<R: BufRead> Reader<R> {
    /// A reader of JSON lines (`json`) or text lines (AWS space-separated, or CSV with a
    /// header line).
    pub fn new(input: R, json: bool) -> Reader<R> {
        Reader {
            input,
            mode: if json { Mode::Json } else { Mode::Unknown },
            strict: false,
            line: 0,
            index: 0,
            consumed: 0,
            buf: Vec::new(),
            summary: Summary::default(),
            bad_start: 0,
            recognised: false,
            skipping: false,
            done: false,
        }
    }

    /// In strict mode a malformed line is an error, not a counted skip.
    pub fn strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }

    /// `aws-flow-log`, `aliyun-flow-log` or `csv-flow-log`.
    pub fn format(&self) -> &'static str {
        match self.mode {
            Mode::Json => "aliyun-flow-log",
            Mode::Csv { .. } => "csv-flow-log",
            _ => "aws-flow-log",
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

    /// Reads one line into `buf` (without its end), holding at most [`MAX_LINE`] bytes: a
    /// longer line is reported as soon as it passes the limit, and its rest is skipped by
    /// the next call.
    fn read_line(&mut self) -> std::io::Result<Line> {
        self.buf.clear();
        while self.skipping {
            let chunk = self.input.fill_buf()?;
            if chunk.is_empty() {
                self.skipping = false;
                break;
            }
            let take = match chunk.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    self.skipping = false;
                    i + 1
                }
                None => chunk.len(),
            };
            self.input.consume(take);
            self.consumed += take as u64;
        }
        loop {
            let chunk = self.input.fill_buf()?;
            if chunk.is_empty() {
                return Ok(if self.buf.is_empty() {
                    Line::Eof
                } else {
                    Line::Text
                });
            }
            let newline = chunk.iter().position(|&b| b == b'\n');
            let len = newline.unwrap_or(chunk.len());
            if self.buf.len() + len > MAX_LINE {
                let room = MAX_LINE - self.buf.len();
                self.buf.extend_from_slice(&chunk[..room]);
                let take = newline.map_or(chunk.len(), |i| i + 1);
                self.skipping = newline.is_none();
                self.input.consume(take);
                self.consumed += take as u64;
                return Ok(Line::TooLong);
            }
            self.buf.extend_from_slice(&chunk[..len]);
            let take = newline.map_or(len, |i| i + 1);
            self.input.consume(take);
            self.consumed += take as u64;
            if newline.is_some() {
                return Ok(Line::Text);
            }
        }
    }

    fn header_layout(names: &[String]) -> bool {
        let known = names.iter().filter(|n| KNOWN.contains(&n.as_str())).count();
        known >= 3 && names.iter().any(|n| n == "srcaddr" || n == "pkt-srcaddr")
    }

    /// The outcome of one line with content; `Ok(None)` for a line that holds no record.
    fn line(&mut self, text: &str) -> Result<Option<Outcome>, FlowError> {
        let text = text.trim_start_matches('\u{feff}').trim();
        if text.is_empty() || text.starts_with('#') {
            return Ok(None);
        }
        let (line, index) = (self.line, self.index);
        let summary = &mut self.summary;
        let mut warn = |w: &'static str| {
            *summary.warnings.entry(w.to_string()).or_default() += 1;
            summary.example(format!("line {line}: {w}"));
        };
        if self.mode == Mode::Unknown {
            if text.starts_with('{') {
                self.mode = Mode::Json;
            } else if text.contains(',') {
                let names: Vec<String> = match split_csv(text) {
                    Ok(v) => v.iter().map(|s| canonical(s)).collect(),
                    Err(_) => Vec::new(),
                };
                if !Self::header_layout(&names) {
                    return Ok(Some(Outcome::Malformed(
                        "comma-separated line that is not a header naming flow-log fields".into(),
                    )));
                }
                let layout = Layout::new(&names).map_err(|why| FlowError::Header { line, why })?;
                self.mode = Mode::Csv {
                    layout,
                    header: names,
                };
                self.recognised = true;
                return Ok(None);
            } else {
                let names: Vec<String> = text.split_whitespace().map(canonical).collect();
                if Self::header_layout(&names) {
                    let layout =
                        Layout::new(&names).map_err(|why| FlowError::Header { line, why })?;
                    self.mode = Mode::Text {
                        layout,
                        header: Some(names),
                    };
                    self.recognised = true;
                    return Ok(None);
                }
                self.mode = Mode::Text {
                    layout: Layout::default_v2(),
                    header: None,
                };
            }
        }
        Ok(Some(match &self.mode {
            Mode::Unknown => return Ok(None),
            Mode::Json => match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(o)) => record(&Json(o), Format::Aliyun, line, index, &mut warn),
                Ok(_) => Outcome::Malformed("not a JSON object".into()),
                Err(e) => Outcome::Malformed(format!("not JSON: {e}")),
            },
            Mode::Csv { layout, header } => {
                let values = match split_csv(text) {
                    Ok(v) => v,
                    Err(why) => return Ok(Some(Outcome::Malformed(why))),
                };
                if values.len() == header.len()
                    && values.iter().zip(header).all(|(v, h)| canonical(v) == *h)
                {
                    return Ok(Some(Outcome::Skip("repeated header line")));
                }
                if values.len() != layout.columns {
                    Outcome::Malformed(format!(
                        "{} fields, the header has {}",
                        values.len(),
                        layout.columns
                    ))
                } else {
                    let values: Vec<&str> = values.iter().map(|v| v.as_ref()).collect();
                    record(
                        &Text {
                            layout,
                            values: &values,
                        },
                        Format::Csv,
                        line,
                        index,
                        &mut warn,
                    )
                }
            }
            Mode::Text { layout, header } => {
                let words: Vec<&str> = text.split_whitespace().collect();
                if let Some(h) = header {
                    if words.len() == h.len()
                        && words.iter().zip(h).all(|(w, n)| canonical(w) == *n)
                    {
                        return Ok(Some(Outcome::Skip("repeated header line")));
                    }
                }
                if words.len() != layout.columns {
                    Outcome::Malformed(format!(
                        "{} fields, the {} format has {}",
                        words.len(),
                        if header.is_none() {
                            "default (v2)"
                        } else {
                            "header's"
                        },
                        layout.columns
                    ))
                } else {
                    record(
                        &Text {
                            layout,
                            values: &words,
                        },
                        if header.is_none() {
                            Format::AwsDefault
                        } else {
                            Format::AwsCustom
                        },
                        line,
                        index,
                        &mut warn,
                    )
                }
            }
        }))
    }

    /// Counts a malformed (or over-long) line; gives up when nothing usable came first.
    fn bad(&mut self, reason: &'static str, why: String) -> Option<FlowError> {
        let err = FlowError::Line {
            line: self.line,
            why,
        };
        if !self.recognised {
            self.bad_start += 1;
            if self.bad_start >= GIVE_UP_AFTER || self.buf.contains(&0) {
                return Some(FlowError::NotFlowLog {
                    line: self.line,
                    first: self
                        .summary
                        .examples
                        .first()
                        .cloned()
                        .unwrap_or_else(|| err.to_string()),
                });
            }
        }
        if self.strict {
            return Some(err);
        }
        self.summary.skip(&reason);
        self.summary.example(err.to_string());
        None
    }
}

impl<R: BufRead> Iterator for Reader<R> {
    type Item = Result<Record, FlowError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let read = match self.read_line() {
                Ok(r) => r,
                Err(e) => {
                    self.done = true;
                    return Some(Err(FlowError::Read {
                        line: self.line,
                        why: e.to_string(),
                    }));
                }
            };
            self.line += 1;
            let outcome = match read {
                Line::Eof => {
                    self.done = true;
                    return None;
                }
                Line::TooLong => {
                    self.summary.records += 1;
                    self.index += 1;
                    let why = format!("line longer than {MAX_LINE} bytes");
                    if let Some(e) = self.bad("over-long line", why) {
                        self.done = true;
                        return Some(Err(e));
                    }
                    continue;
                }
                Line::Text => {
                    let buf = std::mem::take(&mut self.buf);
                    let outcome = match std::str::from_utf8(&buf) {
                        Ok(text) => self.line(text),
                        Err(e) => Ok(Some(Outcome::Malformed(format!(
                            "not UTF-8 text (byte {} of the line)",
                            e.valid_up_to()
                        )))),
                    };
                    self.buf = buf;
                    match outcome {
                        Ok(Some(o)) => o,
                        Ok(None) => continue,
                        Err(e) => {
                            self.done = true;
                            return Some(Err(e));
                        }
                    }
                }
            };
            self.summary.records += 1;
            self.index += 1;
            match outcome {
                Outcome::Record(r) => {
                    self.recognised = true;
                    self.summary.decoded += 1;
                    return Some(Ok(*r));
                }
                Outcome::Skip(why) => {
                    self.recognised = true;
                    self.summary.skip(&why);
                }
                Outcome::Malformed(why) => {
                    if let Some(e) = self.bad("malformed flow-log line", why) {
                        self.done = true;
                        return Some(Err(e));
                    }
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
    fn every_current_aws_field_is_read_by_name() {
        let names = KNOWN[..42].join(" ");
        let mut values: Vec<String> = KNOWN[..42].iter().map(|_| "-".to_string()).collect();
        let set = |values: &mut Vec<String>, name: &str, v: &str| {
            let i = KNOWN.iter().position(|n| *n == name).unwrap();
            values[i] = v.into();
        };
        for (n, v) in [
            ("version", "8"),
            ("interface-id", "eni-a"),
            ("srcaddr", "10.0.0.5"),
            ("dstaddr", "10.0.0.9"),
            ("srcport", "443"),
            ("dstport", "51000"),
            ("protocol", "6"),
            ("action", "REJECT"),
            ("log-status", "OK"),
            ("flow-direction", "egress"),
            ("traffic-path", "8"),
            ("pkt-dst-aws-service", "S3"),
            ("ecs-task-id", "abc"),
            ("reject-reason", "BPA"),
            ("start", "100"),
            ("end", "160"),
        ] {
            set(&mut values, n, v);
        }
        let text = format!("{names}\n{}\n", values.join(" "));
        let (recs, s) = read(&text, false);
        assert_eq!(recs.len(), 1, "{s}");
        assert_eq!(recs[0].reject_reason.as_deref(), Some("BPA"));
        assert_eq!(recs[0].direction, Some(Direction::Egress));
        assert!(s.warnings.is_empty(), "{s}");
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

    #[test]
    fn aliyun_csv_with_quotes_and_repeated_header() {
        let text = "__topic__,version,eni-id,srcaddr,srcport,dstaddr,dstport,protocol,direction,packets,bytes,start,end,log-status,action,traffic_path\n\
                    flow_log,1,eni-bp1,203.0.113.5,51514,192.168.1.10,22,6,in,10,840,1718000000,1718000060,OK,ACCEPT,\"0\"\n\
                    __topic__,version,eni-id,srcaddr,srcport,dstaddr,dstport,protocol,direction,packets,bytes,start,end,log-status,action,traffic_path\n\
                    flow_log,1,eni-bp1,\"192.168.1.10\",22,203.0.113.5,51514,6,out,1,1,1718000000,1718000060,OK,REJECT,0\n\
                    flow_log,1,eni-bp1,192.168.1.10\n";
        let (recs, s) = read(text, false);
        assert_eq!(recs.len(), 2, "{s}");
        assert_eq!(recs[0].format, Format::Csv);
        assert_eq!(recs[1].header.src.to_string(), "192.168.1.10");
        assert_eq!(s.skipped["repeated header line"], 1);
        assert!(s.examples[0].starts_with("line 5: 4 fields"), "{s}");
    }

    #[test]
    fn regression_header_with_a_repeated_field_is_rejected() {
        let text = "version srcaddr dstaddr srcaddr srcport dstport protocol\n5 10.0.0.1 10.0.0.2 10.0.0.3 1 2 6\n";
        let err = Reader::new(text.as_bytes(), false)
            .next()
            .unwrap()
            .unwrap_err();
        assert_eq!(
            err,
            FlowError::Header {
                line: 1,
                why: "field 'srcaddr' is named twice (columns 2 and 4)".into()
            }
        );
        let csv = "srcaddr,dstaddr,protocol,src_addr,srcaddr\n";
        let err = Reader::new(csv.as_bytes(), false)
            .next()
            .unwrap()
            .unwrap_err();
        assert!(matches!(err, FlowError::Header { line: 1, .. }), "{err}");
    }

    #[test]
    fn regression_new_version_start_after_end_and_null_ports_warn_and_count() {
        let text = r#"{"version":"2","eni-id":"eni-1","srcaddr":"10.0.0.1","dstaddr":"10.0.0.2","srcport":null,"dstport":"22","protocol":"6","direction":"in","start":"200","end":"100","log-status":"OK","action":"ACCEPT"}
"#;
        let (recs, s) = read(text, true);
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].header.src_port, 0);
        assert_eq!(s.warnings[WARN_VERSION], 1);
        assert_eq!(s.warnings[WARN_START_AFTER_END], 1);
        assert_eq!(s.warnings[WARN_NO_PORTS], 1);
        assert!(s.examples.iter().all(|e| e.starts_with("line 1: ")), "{s}");
        let aws = "11 1 eni-a 10.0.0.1 10.0.0.2 1 2 6 1 1 0 1 ACCEPT OK\n";
        let (_, s) = read(aws, false);
        assert_eq!(s.warnings[WARN_VERSION], 1);
    }

    #[test]
    fn regression_over_long_lines_are_counted_and_skipped_unheld() {
        let good = "2 1 eni-a 10.0.0.1 10.0.0.2 1 2 6 1 1 0 1 ACCEPT OK\n";
        let long = format!("{good}{}\n{good}", "x".repeat(MAX_LINE + 10));
        let mut r = Reader::new(
            std::io::BufReader::with_capacity(4096, long.as_bytes()),
            false,
        );
        let recs: Vec<Record> = r.by_ref().map(|x| x.unwrap()).collect();
        assert_eq!(recs.len(), 2);
        assert!(
            r.buf.capacity() <= 2 * (MAX_LINE + 4096),
            "{}",
            r.buf.capacity()
        );
        assert_eq!(r.summary().skipped["over-long line"], 1);
        assert_eq!(recs[1].line, 3);
    }

    #[test]
    fn regression_text_that_is_not_a_flow_log_gives_up_early() {
        let text = "hello world\n".repeat(10_000);
        let mut r = Reader::new(text.as_bytes(), false);
        let err = r.next().unwrap().unwrap_err();
        assert!(
            matches!(err, FlowError::NotFlowLog { line, .. } if line == GIVE_UP_AFTER),
            "{err}"
        );
        assert!(r.next().is_none());
        // An over-long line of zeros first: given up at once.
        let zeros = vec![0u8; MAX_LINE * 3];
        let mut r = Reader::new(std::io::BufReader::new(&zeros[..]), false);
        assert!(matches!(
            r.next().unwrap().unwrap_err(),
            FlowError::NotFlowLog { line: 1, .. }
        ));
    }
}
