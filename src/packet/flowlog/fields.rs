//! Flow-log field names (AWS versions 2 to 10, Alibaba SLS), a file's field layout, and a
//! line's values read by field, from text or JSON.

use std::borrow::Cow;

use serde_json::Value;

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

    pub(super) fn default_v2() -> Layout {
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
    /// Text of an address field already read as an address (a Parquet dictionary's entry,
    /// parsed once for all the rows that point at it).
    Addr(std::net::IpAddr),
    /// Text of an interface field already made an ID (as [`Val::Addr`]).
    Eni(crate::model::EniId),
}

impl std::fmt::Display for Val<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Val::Str(s) => f.write_str(s),
            Val::Int(i) => write!(f, "{i}"),
            Val::Addr(a) => write!(f, "{a}"),
            Val::Eni(e) => f.write_str(e.as_str()),
        }
    }
}

/// A record's fields by name, whatever the format.
pub(crate) trait Fields {
    fn get(&self, field: Field) -> Option<Val<'_>>;
}

pub(super) struct Text<'a> {
    pub(super) layout: &'a Layout,
    pub(super) values: &'a [&'a str],
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

/// A JSON object's fields, each looked up once (by its `-` or `_` spelling) and checked: a
/// string or a number is a value, `null` means absent, any other type is an error.
pub(super) struct Json<'a> {
    vals: [Option<Val<'a>>; FIELDS],
}

impl<'a> Json<'a> {
    /// The fields of `object`; an error names the first field of another type, or says the
    /// object names no flow-log field at all (then it is not a flow-log record).
    pub(super) fn new(object: &'a serde_json::Map<String, Value>) -> Result<Json<'a>, String> {
        if !object
            .keys()
            .any(|k| KNOWN.contains(&canonical(k).as_str()))
        {
            return Err("a JSON object naming none of a flow log's fields".into());
        }
        let mut vals: [Option<Val<'a>>; FIELDS] = Default::default();
        for field in Field::ALL {
            let name = field.name();
            let v = match object.get(name) {
                Some(v) => Some(v),
                None => object.get(&name.replace('-', "_")),
            };
            vals[field as usize] = match v {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => text_val(s),
                Some(Value::Number(n)) => Some(match n.as_i64() {
                    Some(i) => Val::Int(i),
                    None => Val::Str(Cow::Owned(n.to_string())),
                }),
                Some(other) => {
                    let kind = match other {
                        Value::Bool(_) => "a boolean",
                        Value::Array(_) => "an array",
                        _ => "an object",
                    };
                    return Err(format!("{name} is {kind}, not a string or a number"));
                }
            };
        }
        Ok(Json { vals })
    }
}

impl Fields for Json<'_> {
    fn get(&self, field: Field) -> Option<Val<'_>> {
        self.vals[field as usize].clone()
    }
}
