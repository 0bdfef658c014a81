//! Traffic: decoded packets from captures, flow logs and synthetic generators. This stage
//! depends on the model alone; judging traffic is [`crate::track`]'s.
//!
//! - [`decode`]: bytes of one frame → [`Packet`] (bounds-checked; `pnet_packet` views only
//!   over validated lengths).
//! - [`capture`]: streaming pcap / pcapng reader.
//! - [`flowlog`]: AWS VPC Flow Logs (default v2 and custom formats with a header line) and
//!   Alibaba VPC flow logs (JSON lines, CSV).
//! - [`parquet`]: AWS VPC Flow Logs delivered as Parquet.
//! - [`input`]: files and folders as clouds deliver them (S3 layouts, `.gz`, time
//!   windows), read one after another as one input.
//! - [`synth`]: seeded synthetic traffic aimed at a rule set, and a pcap writer.
//!
//! [`Source`] auto-detects the kind of an input (pcap magic, pcapng magic, gzip, JSON
//! lines, text flow log; Parquet from a file) and yields [`Item`]s one at a time, or a
//! chunk at a time ([`Source::read_chunk`], which decodes captures on the rayon pool):
//! memory stays constant whatever the size. gzip (one member or several, as AWS writes
//! them) is decompressed as it is read, and what it holds is detected in turn. Binary
//! data that is none of these (a NUL byte in the first 64 KiB of what looked like text)
//! is refused at once ([`TrafficError::NotTraffic`]).

pub mod capture;
pub mod decode;
#[cfg(feature = "fleet")]
pub mod fleet;
pub mod flowlog;
pub mod input;
pub mod parquet;
#[cfg(feature = "s3")]
pub mod s3;
pub mod synth;

use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufRead, BufReader, Read};

pub use capture::{Capture, CaptureError};
pub use decode::{Fragment, Packet, Skip, Transport};
pub use flowlog::{FlowError, Record};

/// What a decoder read, and what it could not decode, by reason.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Records (frames or flow-log lines with content) seen.
    pub records: u64,
    /// Records turned into packets or flow records.
    pub decoded: u64,
    /// Records not decoded, counted by reason.
    pub skipped: BTreeMap<String, u64>,
    /// Records used despite something odd, counted by warning.
    pub warnings: BTreeMap<String, u64>,
    /// The first few malformed inputs and warnings, each naming its line or record.
    pub examples: Vec<String>,
    /// Records never looked at: the rows of Parquet row groups whose statistics place them
    /// outside the `--since/--until` window (counted among `skipped` under
    /// [`input::OUTSIDE_WINDOW`] too).
    pub unread: u64,
}

/// How many malformed-input messages a [`Summary`] keeps.
pub const MAX_EXAMPLES: usize = 20;

impl Summary {
    /// Whether no record looked at was usable: none decoded, none left out by the time
    /// window once read (rows never read, [`Summary::unread`], say nothing of it).
    pub fn none_usable(&self) -> bool {
        let outside = self
            .skipped
            .get(input::OUTSIDE_WINDOW)
            .copied()
            .unwrap_or(0);
        self.decoded == 0 && outside <= self.unread
    }

    /// Counts one record skipped for `reason`.
    pub fn skip(&mut self, reason: &dyn fmt::Display) {
        *self.skipped.entry(reason.to_string()).or_default() += 1;
    }

    /// Records a message about a malformed input (kept up to [`MAX_EXAMPLES`]).
    pub fn example(&mut self, message: String) {
        if self.examples.len() < MAX_EXAMPLES {
            self.examples.push(message);
        }
    }

    /// Total records skipped.
    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }

    /// Adds `other`'s counts to these; its examples are kept (up to [`MAX_EXAMPLES`])
    /// prefixed with `name`.
    pub fn merge(&mut self, other: &Summary, name: &str) {
        self.records += other.records;
        self.decoded += other.decoded;
        self.unread += other.unread;
        for (k, v) in &other.skipped {
            *self.skipped.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &other.warnings {
            *self.warnings.entry(k.clone()).or_default() += v;
        }
        for e in &other.examples {
            self.example(format!("{name}: {e}"));
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} records, {} decoded, {} skipped",
            self.records,
            self.decoded,
            self.skipped_total()
        )?;
        for (reason, n) in &self.skipped {
            write!(f, "\n  {n:>8}  {reason}")?;
        }
        for (warning, n) in &self.warnings {
            write!(f, "\n  {n:>8}  warning: {warning}")?;
        }
        for e in &self.examples {
            write!(f, "\n  {e}")?;
        }
        Ok(())
    }
}

/// The kind of a traffic input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Legacy pcap.
    Pcap,
    /// pcapng.
    PcapNg,
    /// JSON lines (Alibaba flow logs as exported from SLS).
    JsonLines,
    /// A space-separated text flow log (AWS), or CSV with a header line.
    FlowLog,
    /// gzip-compressed data (one member or several).
    Gzip,
    /// A Parquet file.
    Parquet,
    /// Binary data that is none of the above.
    Binary,
}

impl Kind {
    /// Detects the kind from the first bytes of an input.
    pub fn detect(head: &[u8]) -> Kind {
        const PCAP: [[u8; 4]; 6] = [
            [0xd4, 0xc3, 0xb2, 0xa1],
            [0xa1, 0xb2, 0xc3, 0xd4],
            [0x4d, 0x3c, 0xb2, 0xa1],
            [0xa1, 0xb2, 0x3c, 0x4d],
            [0x34, 0xcd, 0xb2, 0xa1],
            [0xa1, 0xb2, 0xcd, 0x34],
        ];
        if head.len() >= 4 && PCAP.iter().any(|m| head.starts_with(m)) {
            return Kind::Pcap;
        }
        if head.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]) {
            return Kind::PcapNg;
        }
        if head.starts_with(&[0x1f, 0x8b]) {
            return Kind::Gzip;
        }
        if head.starts_with(parquet::MAGIC) {
            return Kind::Parquet;
        }
        if head.contains(&0) {
            return Kind::Binary;
        }
        let text = head
            .iter()
            .skip_while(|b| b.is_ascii_whitespace() || **b == 0xef || **b == 0xbb || **b == 0xbf);
        match text.clone().next() {
            Some(b'{') => Kind::JsonLines,
            _ => Kind::FlowLog,
        }
    }
}

/// One unit of traffic: a decoded packet or a flow-log record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    /// A captured (or synthetic) packet.
    Packet(Packet),
    /// A flow-log record (boxed: an item is as small as a packet, and captures move many).
    Flow(Box<Record>),
}

impl From<Packet> for Item {
    fn from(p: Packet) -> Item {
        Item::Packet(p)
    }
}

/// At most this many record boxes are kept for reuse (per thread).
const POOLED: usize = 1 << 17;

thread_local! {
    /// Record boxes whose items were judged, for this thread's decoders to fill again (the
    /// boxes themselves are what is kept, hence a vector of boxes).
    #[allow(clippy::vec_box)]
    static POOL: std::cell::RefCell<Vec<Box<Record>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `record` in a box: one handed back by [`recycle`] on this thread if there is one, a new
/// one otherwise. A flow-log what-if boxes a record per row; allocating each box and
/// freeing it once judged cost about 450 instructions a record (glibc; 7% of the what-if's,
/// cachegrind), where a reused box costs a move.
pub(crate) fn boxed(record: Record) -> Box<Record> {
    match POOL.with(|p| p.borrow_mut().pop()) {
        Some(mut b) => {
            *b = record;
            b
        }
        None => Box::new(record),
    }
}

/// Empties `items`, keeping the boxes of their records for [`boxed`] on this thread.
pub fn recycle(items: &mut Vec<Item>) {
    POOL.with(|p| {
        let mut pool = p.borrow_mut();
        for item in items.drain(..) {
            if let Item::Flow(b) = item {
                if pool.len() < POOLED {
                    pool.push(b);
                }
            }
        }
    });
}

impl Item {
    /// The item's 0-based position in its input.
    pub fn index(&self) -> u64 {
        match self {
            Item::Packet(p) => p.index,
            Item::Flow(r) => r.index,
        }
    }
}

/// Why a traffic input cannot be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrafficError {
    /// A capture problem.
    #[error(transparent)]
    Capture(#[from] CaptureError),
    /// A flow-log problem.
    #[error(transparent)]
    Flow(#[from] FlowError),
    /// Reading the first bytes failed.
    #[error("cannot read the input: {0}")]
    Io(#[from] std::io::Error),
    /// The input is neither a capture nor a flow log.
    #[error("neither a capture nor a flow log: {0}")]
    NotTraffic(String),
    /// One file of several: what went wrong, naming the file.
    #[error("{file}: {error}")]
    File {
        /// The file (or object) as given or found.
        file: String,
        /// What went wrong.
        error: Box<TrafficError>,
    },
}

impl TrafficError {
    /// Whether this says the input is not traffic at all (a file to skip with a warning
    /// when it was found in a folder).
    pub fn is_not_traffic(&self) -> bool {
        match self {
            TrafficError::NotTraffic(_)
            | TrafficError::Flow(FlowError::NotFlowLog { .. })
            | TrafficError::Flow(FlowError::NotFlowLogSchema(_)) => true,
            TrafficError::File { error, .. } => error.is_not_traffic(),
            _ => false,
        }
    }
}

/// A traffic input of any supported kind, read one item at a time.
pub enum Source<'r> {
    /// pcap or pcapng.
    Capture(Capture<'r>),
    /// A flow log.
    Flows(Box<flowlog::Reader<Box<dyn BufRead + Send + 'r>>>),
    /// A Parquet flow log.
    Parquet(parquet::Reader),
    /// Files and folders, read one after another as one input.
    Files(Box<input::Files>),
}

impl<'r> Source<'r> {
    /// Detects the kind of `reader` from its first bytes and opens it (gzip is
    /// decompressed as it is read). Parquet needs random access: see
    /// [`parquet::open_file`] and [`input::Files`].
    pub fn open<R: Read + Send + 'r>(reader: R) -> Result<Source<'r>, TrafficError> {
        Source::open_at(Box::new(reader), 0)
    }

    fn open_at(reader: Box<dyn Read + Send + 'r>, depth: u32) -> Result<Source<'r>, TrafficError> {
        let mut buf = BufReader::with_capacity(1 << 16, reader);
        let kind = Kind::detect(fill_head(&mut buf)?);
        Ok(match kind {
            Kind::Pcap | Kind::PcapNg => Source::Capture(Capture::new(buf)?),
            Kind::JsonLines => Source::Flows(Box::new(flowlog::Reader::new(Box::new(buf), true))),
            Kind::FlowLog => Source::Flows(Box::new(flowlog::Reader::new(Box::new(buf), false))),
            Kind::Gzip if depth == 0 => {
                Source::open_at(Box::new(flate2::bufread::MultiGzDecoder::new(buf)), depth + 1)?
            }
            Kind::Gzip => {
                return Err(TrafficError::NotTraffic(
                    "gzip inside gzip is not read".into(),
                ))
            }
            Kind::Parquet => {
                return Err(TrafficError::NotTraffic(
                    "a Parquet file is read from a file or an s3:// object, not from a stream (or inside gzip)".into(),
                ))
            }
            Kind::Binary => {
                return Err(TrafficError::NotTraffic(
                    "binary data (a NUL byte in the first 64 KiB) that is not a pcap, pcapng, gzip or Parquet file".into(),
                ))
            }
        })
    }

    /// The kind of input.
    pub fn kind(&self) -> &'static str {
        match self {
            Source::Capture(c) => c.format(),
            Source::Flows(f) => f.format(),
            Source::Parquet(_) => "parquet-flow-log",
            Source::Files(f) => f.kind(),
        }
    }

    /// In strict mode a malformed flow-log line or row is an error, not a counted skip.
    pub fn strict(self, strict: bool) -> Self {
        match self {
            Source::Flows(f) => Source::Flows(Box::new(f.strict(strict))),
            Source::Parquet(p) => Source::Parquet(p.strict(strict)),
            other => other,
        }
    }

    /// Reads only what lies in `window` where a file says so: Parquet row groups whose
    /// statistics place every row outside it are left unread (their rows counted under
    /// `outside --since/--until`); other sources hand out everything.
    pub fn window(self, window: input::Window) -> Self {
        match self {
            Source::Parquet(p) if !window.is_all() => Source::Parquet(p.window(window)),
            other => other,
        }
    }

    /// Bytes consumed so far, for progress reporting.
    pub fn consumed(&self) -> u64 {
        match self {
            Source::Capture(c) => c.consumed(),
            Source::Flows(f) => f.consumed(),
            Source::Parquet(p) => p.consumed(),
            Source::Files(f) => f.consumed(),
        }
    }

    /// Whether this is a flow log (not a capture); files: whether every file read so far
    /// was one.
    pub fn is_flow_log(&self) -> bool {
        match self {
            Source::Capture(_) => false,
            Source::Flows(_) | Source::Parquet(_) => true,
            Source::Files(f) => f.is_flow_log(),
        }
    }

    /// Reads up to `max` items and appends them to `out`, in input order (captures are
    /// decoded in parallel). Returns `Ok(false)` once the input is exhausted; on `Err`, the
    /// items read before the failure have been appended.
    pub fn read_chunk(&mut self, max: usize, out: &mut Vec<Item>) -> Result<bool, TrafficError> {
        match self {
            Source::Capture(c) => Ok(c.read_chunk(max, out)?),
            Source::Flows(f) => {
                for _ in 0..max {
                    match f.next_boxed() {
                        Some(r) => out.push(Item::Flow(r?)),
                        None => return Ok(false),
                    }
                }
                Ok(true)
            }
            Source::Parquet(p) => {
                for _ in 0..max {
                    match p.next_boxed() {
                        Some(r) => out.push(Item::Flow(r?)),
                        None => return Ok(false),
                    }
                }
                Ok(true)
            }
            Source::Files(f) => f.read_chunk(max, out),
        }
    }

    /// The decode summary so far.
    pub fn summary(&self) -> &Summary {
        match self {
            Source::Capture(c) => c.summary(),
            Source::Flows(f) => f.summary(),
            Source::Parquet(p) => p.summary(),
            Source::Files(f) => f.summary(),
        }
    }
}

/// The first bytes of `buf`, for detection.
fn fill_head<R: Read>(buf: &mut BufReader<R>) -> std::io::Result<&[u8]> {
    buf.fill_buf()
}

/// A chunk handed from the reader thread of [`read_ahead`] to its consumer: the items,
/// the bytes consumed so far, and how the read ended.
type Ahead = (Vec<Item>, u64, Result<bool, TrafficError>);

/// Reads `source` in chunks of up to `max` items on a reader thread, one chunk ahead of
/// `f`, which gets each chunk in input order with the number of input bytes consumed so
/// far (for progress). Reading (and decoding, on the rayon pool) the next chunk overlaps
/// with `f`'s work on the current one; at most three chunks are held, so memory stays
/// constant.
///
/// The outer result is `f`'s first error (reading then stops); the inner one is the read
/// error that ended the input, after the items read before it were handed to `f`.
pub fn read_ahead<E>(
    source: &mut Source<'_>,
    max: usize,
    mut f: impl FnMut(&[Item], u64) -> Result<(), E>,
) -> Result<Result<(), TrafficError>, E> {
    let max = max.max(1);
    let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<Ahead>(1);
    let (empty_tx, empty_rx) = std::sync::mpsc::channel::<Vec<Item>>();
    std::thread::scope(|scope| {
        scope.spawn(move || loop {
            let mut buf = empty_rx
                .try_recv()
                .unwrap_or_else(|_| Vec::with_capacity(max.min(1 << 20)));
            recycle(&mut buf);
            let read = source.read_chunk(max, &mut buf);
            let last = !matches!(read, Ok(true));
            // The consumer hung up (its `f` failed): stop reading.
            if full_tx.send((buf, source.consumed(), read)).is_err() || last {
                break;
            }
        });
        let mut consume = || {
            for (buf, consumed, read) in full_rx.iter() {
                if !buf.is_empty() {
                    f(&buf, consumed)?;
                }
                match read {
                    Ok(true) => {}
                    Ok(false) => return Ok(Ok(())),
                    Err(e) => return Ok(Err(e)),
                }
                // The reader may have finished already: then the buffer is simply dropped.
                let _ = empty_tx.send(buf);
            }
            Ok(Ok(()))
        };
        let result = consume();
        // Hang up before the scope joins the reader, so that a reader blocked on a full
        // channel (after `f` failed) gets an error and stops.
        drop(full_rx);
        result
    })
}

impl Iterator for Source<'_> {
    type Item = Result<Item, TrafficError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Source::Capture(c) => c.next().map(|r| r.map(Item::Packet).map_err(Into::into)),
            Source::Flows(f) => f
                .next_boxed()
                .map(|r| r.map(Item::Flow).map_err(Into::into)),
            Source::Parquet(p) => p
                .next_boxed()
                .map(|r| r.map(Item::Flow).map_err(Into::into)),
            Source::Files(f) => f.next(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(index: u64) -> Record {
        Record {
            index,
            line: index + 1,
            format: flowlog::Format::Parquet,
            eni: Some(crate::model::EniId::from("eni-a")),
            direction: None,
            header: crate::model::Header::new(
                "10.0.0.1".parse().unwrap(),
                "10.0.0.2".parse().unwrap(),
                6,
                40000,
                443,
            )
            .unwrap(),
            packets: 1,
            bytes: 60,
            start: 1,
            end: 2,
            action: None,
            tcp_flags: None,
            reject_reason: Some(format!("reason {index}")),
        }
    }

    #[test]
    fn recycled_boxes_hold_the_records_put_in_them() {
        // A fresh thread: its pool starts empty.
        std::thread::spawn(|| {
            let first = boxed(record(1));
            let at: *const Record = &*first;
            let mut items = vec![Item::Flow(first)];
            recycle(&mut items);
            assert!(items.is_empty());
            let again = boxed(record(2));
            // The box handed back is filled again, with the new record only.
            assert_eq!(&*again as *const Record, at);
            assert_eq!(*again, record(2));
            // Once the pool is empty, boxes are new.
            let other = boxed(record(3));
            assert_ne!(&*other as *const Record, at);
            assert_eq!(*other, record(3));
        })
        .join()
        .unwrap();
    }

    #[test]
    fn detects_every_kind() {
        assert_eq!(Kind::detect(&[0xd4, 0xc3, 0xb2, 0xa1, 2, 0]), Kind::Pcap);
        assert_eq!(Kind::detect(&[0xa1, 0xb2, 0x3c, 0x4d]), Kind::Pcap);
        assert_eq!(Kind::detect(&[0x0a, 0x0d, 0x0d, 0x0a, 0, 0]), Kind::PcapNg);
        assert_eq!(Kind::detect(b"  {\"srcaddr\":1}"), Kind::JsonLines);
        assert_eq!(Kind::detect(b"2 123 eni-1 - - "), Kind::FlowLog);
        assert_eq!(Kind::detect(b""), Kind::FlowLog);
        assert_eq!(Kind::detect(&[0x1f, 0x8b, 8, 0]), Kind::Gzip);
        assert_eq!(Kind::detect(b"PAR1\x15\x04"), Kind::Parquet);
        assert_eq!(Kind::detect(&[0u8; 64]), Kind::Binary);
    }

    #[test]
    fn summary_counts_and_prints_reasons() {
        let mut s = Summary {
            records: 3,
            decoded: 1,
            ..Summary::default()
        };
        s.skip(&Skip::Truncated("IPv4 header"));
        s.skip(&Skip::Truncated("IPv4 header"));
        assert_eq!(s.skipped_total(), 2);
        assert!(s.to_string().contains("2  truncated IPv4 header"), "{s}");
    }

    #[test]
    fn regression_a_parquet_schema_that_is_not_a_flow_log_is_not_traffic() {
        let schema = TrafficError::Flow(FlowError::NotFlowLogSchema(
            "a Parquet file without a srcaddr column".into(),
        ));
        assert!(schema.is_not_traffic());
        let named = TrafficError::File {
            file: "logs/other.parquet".into(),
            error: Box::new(schema),
        };
        assert!(named.is_not_traffic());
        // A damaged file is an error, not "not traffic".
        assert!(
            !TrafficError::Flow(FlowError::File("Parquet footer: eof".into())).is_not_traffic()
        );
    }
}
