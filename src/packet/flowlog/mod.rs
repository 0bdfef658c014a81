//! Flow logs: AWS VPC Flow Logs (text) and Alibaba VPC flow logs (JSON lines, CSV).
//!
//! # Files
//!
//! - `mod.rs`: [`Record`], [`Format`] and [`FlowError`], what reading gives.
//! - `fields.rs`: the field names of both clouds' formats ([`DEFAULT_V2`], [`KNOWN`]), a
//!   file's field layout, and a line's values read by field (text or JSON).
//! - `record.rs`: one record made from its fields: numbers, addresses, skips, warnings.
//! - `reader.rs`: the [`Reader`]: lines, the format detected from the first, CSV quoting,
//!   headers, malformed and over-long lines.
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
//! strings (as SLS exports them) or numbers; `null` means absent, and a field holding an
//! array, a boolean or an object makes the line malformed. An object naming none of a flow
//! log's fields ([`KNOWN`], either spelling) is not a record: malformed too. SLS's CSV
//! export (a header line of comma-separated field names, RFC 4180 quoting) is read by the
//! same names.
//!
//! `tcp-flags` is the OR of the TCP flags seen in the window, FIN (1) to CWR (128); a
//! value above 255 is malformed (out of range), never cut to its low bits.
//!
//! # Skips, warnings and malformed lines
//!
//! `NODATA` and `SKIPDATA` records, lines starting with `#` (`comment line (#)`) and
//! records without addresses are counted in the [`Summary`](crate::packet::Summary) as
//! skipped records, not returned. Blank lines hold nothing: they keep their line number
//! but are not records and are not counted. A malformed line (wrong field count, a number that is not one, a bad address,
//! text that is not UTF-8) is, by default, counted under `malformed flow-log line` with its
//! message (naming the line number) kept among the summary's examples; in strict mode it is
//! an error instead. Lines longer than [`MAX_LINE`] bytes are skipped without being held
//! (counted under `over-long line`). Records that are used but look wrong are counted
//! among the summary's warnings: a `version` newer than the known ones, `start` after
//! `end`, a TCP or UDP record without ports (judged with port 0).
//!
//! An input is a flow log once a line shows it: a record, a header line, a `NODATA` or
//! `SKIPDATA` record. One whose first [`GIVE_UP_AFTER`] lines with content are all
//! malformed or over-long is not a flow log: reading stops with [`FlowError::NotFlowLog`]
//! after at most that many lines, in memory bounded by [`MAX_LINE`]. An input that ends
//! with lines with content of which none showed it (a short README, a CSV of other
//! columns, JSON of other fields, only comments) is not one either: the end gives
//! [`FlowError::NotFlowLog`]. An input without any line with content is an empty flow
//! log. In strict mode, a malformed line before anything showed a flow log is held: it
//! is the error once something does, and the input is not a flow log if nothing does.
//!
//! ICMP records carry no type/code in either provider's logs: the port fields are used as
//! given (AWS logs 0 and 0), so the header's type/code words are what the log says.

mod fields;
mod reader;
mod record;

use crate::model::{Action, Direction, EniId, Header};

pub(crate) use fields::{canonical, Field, Fields, Layout, Val};
pub use fields::{DEFAULT_V2, KNOWN};
pub use reader::Reader;
pub(crate) use record::{record, Outcome, SKIP_NODATA, SKIP_NO_ADDRESSES, SKIP_SKIPDATA};

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
        /// Lines read before giving up (all of them, when the input ended).
        line: u64,
        /// The first malformed line's problem (or what the lines were).
        first: String,
    },
    /// A Parquet row that cannot be used (strict mode), or the row a row group could not
    /// be decoded from.
    #[error("row {row}: row group {group}: {why}")]
    Row {
        /// 1-based row in the file.
        row: u64,
        /// 0-based row group.
        group: usize,
        /// What was wrong.
        why: String,
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
