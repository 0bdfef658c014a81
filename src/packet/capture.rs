//! Streaming pcap and pcapng reader: one record at a time, constant memory.
//!
//! Built on `pcap-parser`'s circular-buffer readers. Legacy pcap in either byte order with
//! µs or ns timestamps; pcapng with any number of sections and interfaces, each
//! interface with its own link type, `if_tsresol` and `if_tsoffset`. Records are decoded by
//! [`super::decode`]; those that cannot be are counted in the [`Summary`] under their
//! reason. [`Capture::read_chunk`] walks legacy pcap records in place in the reader's
//! buffer and decodes them from there on the rayon pool; `pcap-parser` still reads the
//! file header, pcapng blocks, and each record that straddles a buffer refill or ends the
//! input, so errors and cut records are reported exactly as when iterating.

use std::io::Read;

use pcap_parser::pcapng::Block;
use pcap_parser::traits::{PcapNGPacketBlock, PcapReaderIterator};
use pcap_parser::{PcapBlockOwned, PcapError};
use rayon::prelude::*;

use super::decode::{decode, Meta, Packet, Skip};
use super::Summary;

/// The most a single record or block may take in memory before the file is declared
/// unusable: twice the largest legacy record ([`SNAPLEN_CEILING`]), as the buffer doubles.
const MAX_RECORD: usize = 32 << 20;
const INITIAL_CAPACITY: usize = 1 << 20;

/// Why a capture cannot be read (any further).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CaptureError {
    /// The input starts with neither a pcap nor a pcapng header.
    #[error("not a pcap or pcapng file (header not recognized at offset 0)")]
    NotACapture,
    /// The input is empty.
    #[error("empty capture file")]
    Empty,
    /// A record or block that cannot be parsed.
    #[error("corrupt {format} data at offset {offset}: {what}")]
    Corrupt {
        /// pcap or pcapng.
        format: &'static str,
        /// Byte offset of the record in the file.
        offset: u64,
        /// What the parser said.
        what: String,
    },
    /// A record or block larger than 32 MiB (a pcapng block declaring more is refused
    /// before it is read).
    #[error("record at offset {offset} is larger than {MAX_RECORD} bytes")]
    TooLarge {
        /// Byte offset of the record.
        offset: u64,
    },
    /// A legacy pcap record whose captured length no capture can hold, with no plausible
    /// record after it to resynchronise on: the rest of the input is left unread.
    #[error(
        "corrupt pcap record at offset {offset}: captured length {caplen} is beyond any \
         snapshot length and no plausible record follows it; {unread} bytes left unread"
    )]
    Unsynchronised {
        /// Byte offset of the record.
        offset: u64,
        /// The captured length it claims.
        caplen: u32,
        /// Bytes from the record to the end of the input.
        unread: u64,
    },
    /// Reading failed.
    #[error("read error at offset {offset}")]
    Read {
        /// Byte offset reached.
        offset: u64,
    },
}

/// The record layout of a legacy pcap file, from its header (as `pcap-parser` reads it).
#[derive(Clone, Copy, Debug)]
struct Legacy {
    link_type: i32,
    /// Nanosecond timestamps.
    ns: bool,
    /// Big-endian record headers.
    big: bool,
    /// Record header length: 16, or 24 in the "modified" format.
    header: usize,
    /// The largest captured length a record may claim: the file's snapshot length, at
    /// least 256 KiB (libpcap's largest) and at most 16 MiB. A larger one is corrupt.
    limit: usize,
}

/// The smallest and largest [`Legacy::limit`].
const SNAPLEN_FLOOR: usize = 256 << 10;
const SNAPLEN_CEILING: usize = 16 << 20;

/// How a corrupt record or block is counted in the summary.
const CORRUPT_LEGACY: &str =
    "pcap record with an impossible captured length (skipped to the next plausible record)";
const CORRUPT_NG: &str =
    "pcapng block whose contents contradict its length (skipped by its total length)";

impl Legacy {
    fn word(&self, b: &[u8], at: usize) -> u32 {
        let w = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        if self.big {
            u32::from_be_bytes(w)
        } else {
            u32::from_le_bytes(w)
        }
    }

    /// The length of the record that starts `b`, header included, when `b` holds all of
    /// it and its captured length is plausible.
    fn complete(&self, b: &[u8]) -> Option<usize> {
        let head = b.get(..self.header)?;
        let caplen = self.word(head, 8) as usize;
        let len = self.header.saturating_add(caplen);
        (caplen <= self.limit && len <= b.len()).then_some(len)
    }

    /// The captured length the record starting `b` claims, when `b` holds its header and
    /// the length is beyond [`Legacy::limit`].
    fn impossible(&self, b: &[u8]) -> Option<u32> {
        let head = b.get(..self.header)?;
        let caplen = self.word(head, 8);
        (caplen as usize > self.limit).then_some(caplen)
    }

    /// Whether a record header plausibly starts `b` (a resynchronisation candidate): a
    /// captured length of 1 byte to the limit, an original length no shorter, and a
    /// sub-second field below one second.
    fn plausible(&self, b: &[u8]) -> bool {
        let Some(head) = b.get(..self.header) else {
            return false;
        };
        let (frac, caplen, origlen) = (self.word(head, 4), self.word(head, 8), self.word(head, 12));
        let second = if self.ns { 1_000_000_000 } else { 1_000_000 };
        caplen >= 1
            && caplen as usize <= self.limit
            && origlen >= caplen
            && origlen <= 1 << 24
            && frac < second
    }

    /// Where, after the corrupt record starting `b`, two plausible records follow each
    /// other (the second may end exactly at the end of the input, when `end` says `b`
    /// holds all of it).
    fn resync(&self, b: &[u8], end: bool) -> Option<usize> {
        (1..b.len().saturating_sub(self.header)).find(|&at| {
            if !self.plausible(&b[at..]) {
                return false;
            }
            let next = at + self.header + self.word(b, at + 8) as usize;
            (end && next == b.len()) || self.plausible(b.get(next..).unwrap_or(&[]))
        })
    }

    /// The metadata of record `index` from its header fields.
    fn meta(&self, index: u64, ts_sec: u32, ts_frac: u32, origlen: u32) -> Meta {
        let frac = u64::from(ts_frac) * if self.ns { 1 } else { 1000 };
        Meta {
            index,
            ts_ns: u64::from(ts_sec) * 1_000_000_000 + frac,
            wire_len: origlen,
            interface: 0,
        }
    }

    /// Decodes record `index`, which `b` holds (checked by [`Legacy::complete`]).
    fn decode(&self, index: u64, b: &[u8]) -> Result<Packet, Skip> {
        let caplen = self.word(b, 8) as usize;
        let meta = self.meta(index, self.word(b, 0), self.word(b, 4), self.word(b, 12));
        decode(self.link_type, &b[self.header..self.header + caplen], meta)
    }
}

#[derive(Clone, Copy, Debug)]
struct Iface {
    link_type: i32,
    /// Timestamp units per second.
    resolution: u64,
    /// Seconds added to every timestamp.
    offset: i64,
}

/// A capture being read; iterate it for decoded packets, then read its [`Summary`].
pub struct Capture<'r> {
    inner: Box<dyn PcapReaderIterator + Send + 'r>,
    format: &'static str,
    /// Legacy pcap: the record layout, once the file header has been read.
    legacy: Option<Legacy>,
    /// pcapng: the current section's interfaces.
    ifaces: Vec<Iface>,
    index: u64,
    capacity: usize,
    done: bool,
    summary: Summary,
    /// Reused buffers of [`Capture::read_chunk`].
    frames: Frames,
    starts: Vec<usize>,
}

fn ns_of(ts: u64, resolution: u64, offset: i64) -> u64 {
    let resolution = resolution.max(1);
    let ns = u128::from(ts) * 1_000_000_000 / u128::from(resolution);
    let ns = ns as i128 + i128::from(offset) * 1_000_000_000;
    ns.clamp(0, i128::from(u64::MAX)) as u64
}

enum Step {
    /// A record's frame went to the sink.
    Frame,
    /// A record that cannot be decoded (counted).
    Skipped,
    /// A header, interface description or other metadata block.
    Meta,
}

/// Raw frames read from a capture, decoded later (in parallel) by [`Capture::read_chunk`].
#[derive(Default)]
struct Frames {
    /// The frames' bytes, back to back.
    bytes: Vec<u8>,
    /// Per frame: link type, metadata, and where its bytes start.
    frames: Vec<(i32, Meta, usize)>,
}

impl Frames {
    fn clear(&mut self) {
        self.bytes.clear();
        self.frames.clear();
    }

    fn push(&mut self, link_type: i32, data: &[u8], meta: Meta) {
        self.frames.push((link_type, meta, self.bytes.len()));
        self.bytes.extend_from_slice(data);
    }

    /// Decodes frame `i`.
    fn decode(&self, i: usize) -> Result<Packet, Skip> {
        let (link_type, meta, start) = self.frames[i];
        let end = self
            .frames
            .get(i + 1)
            .map_or(self.bytes.len(), |next| next.2);
        decode(link_type, &self.bytes[start..end], meta)
    }
}

/// What fills a slot of [`Capture::read_chunk`]'s output until its frame is decoded.
fn placeholder() -> Packet {
    let zero = std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);
    Packet {
        index: 0,
        ts_ns: 0,
        header: crate::model::Header {
            src: zero,
            dst: zero,
            protocol: 0,
            src_port: 0,
            dst_port: 0,
        },
        wire_len: 0,
        cap_len: 0,
        tcp_flags: None,
        ports: None,
        icmp: None,
        fragment: None,
        interface: 0,
    }
}

/// Below this many frames a chunk is decoded on the calling thread.
const PARALLEL_DECODE: usize = 2048;

impl<'r> Capture<'r> {
    /// Opens a capture (pcap or pcapng, detected from its header).
    pub fn new<R: Read + Send + 'r>(reader: R) -> Result<Capture<'r>, CaptureError> {
        let inner = match pcap_parser::create_reader(INITIAL_CAPACITY, reader) {
            Ok(r) => r,
            Err(PcapError::Eof) => return Err(CaptureError::Empty),
            Err(PcapError::ReadError) => return Err(CaptureError::Read { offset: 0 }),
            Err(_) => return Err(CaptureError::NotACapture),
        };
        let format = if inner.data().starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]) {
            "pcapng"
        } else {
            "pcap"
        };
        Ok(Capture {
            inner,
            format,
            legacy: None,
            ifaces: Vec::new(),
            index: 0,
            capacity: INITIAL_CAPACITY,
            done: false,
            summary: Summary::default(),
            frames: Frames::default(),
            starts: Vec::new(),
        })
    }

    /// `pcap` or `pcapng`.
    pub fn format(&self) -> &'static str {
        self.format
    }

    /// Bytes consumed so far (for progress reporting).
    pub fn consumed(&self) -> u64 {
        self.inner.consumed() as u64
    }

    /// What has been read so far; complete once iteration has ended.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// Consumes the capture, returning its summary.
    pub fn into_summary(self) -> Summary {
        self.summary
    }

    fn fail(&mut self, e: CaptureError) -> Option<Result<(), CaptureError>> {
        self.done = true;
        Some(Err(e))
    }

    /// Reads records until one frame has been handed to `sink`: `Some(Ok(()))` then,
    /// `None` at the end of the input, `Some(Err(_))` when the input cannot be read any
    /// further. Records that cannot be decoded before their frame reaches the sink (an
    /// undescribed interface, a record cut short) are counted in the summary.
    fn advance(
        &mut self,
        sink: &mut impl FnMut(i32, &[u8], Meta),
    ) -> Option<Result<(), CaptureError>> {
        while !self.done {
            let offset = self.inner.consumed() as u64;
            if let Some(caplen) = self.legacy.and_then(|l| l.impossible(self.inner.data())) {
                if let Err(e) = self.resync_legacy(offset, caplen) {
                    return self.fail(e);
                }
                continue;
            }
            // The block borrows the reader's buffer: the sink copies or decodes the frame
            // before the block is consumed.
            let step = match self.inner.next() {
                Ok((len, block)) => {
                    let step = {
                        let mut this = Stepper {
                            legacy: &mut self.legacy,
                            ifaces: &mut self.ifaces,
                            index: &mut self.index,
                            summary: &mut self.summary,
                        };
                        this.block(block, sink)
                    };
                    Ok((len, step))
                }
                Err(PcapError::Eof) => Err(None),
                Err(PcapError::UnexpectedEof) => {
                    if self.skip_ng_block(offset) {
                        continue;
                    }
                    if self.inner.data().is_empty() {
                        Err(None)
                    } else {
                        Err(Some(Ok(())))
                    }
                }
                Err(PcapError::Incomplete(_)) => {
                    if self.skip_ng_block(offset) {
                        continue;
                    }
                    Err(Some(Err(0)))
                }
                Err(PcapError::BufferTooSmall) => {
                    if self.skip_ng_block(offset) {
                        continue;
                    }
                    Err(Some(Err(1)))
                }
                Err(PcapError::ReadError) => Err(Some(Err(2))),
                Err(e) => {
                    let what = match e {
                        PcapError::NomError(_, kind) | PcapError::OwnedNomError(_, kind) => {
                            format!("block or record does not parse ({kind:?})")
                        }
                        PcapError::HeaderNotRecognized => "header not recognized".to_string(),
                        other => format!("{other:?}").chars().take(80).collect(),
                    };
                    if self.skip_ng_block(offset) {
                        continue;
                    }
                    return self.fail(CaptureError::Corrupt {
                        format: self.format,
                        offset,
                        what,
                    });
                }
            };
            match step {
                Ok((len, step)) => {
                    // Without shifting the rest of the buffer down (`refill` does that).
                    self.inner.consume_noshift(len);
                    match step {
                        Step::Frame => return Some(Ok(())),
                        Step::Skipped | Step::Meta => continue,
                    }
                }
                Err(None) => {
                    self.done = true;
                    return None;
                }
                Err(Some(Ok(()))) => {
                    // A last record cut short by the end of the file: count it and stop.
                    self.done = true;
                    self.summary.records += 1;
                    self.summary.skip(&Skip::CutShort(offset));
                    return None;
                }
                Err(Some(Err(0))) => {
                    if self.inner.refill().is_err() {
                        return self.fail(CaptureError::Read { offset });
                    }
                }
                Err(Some(Err(1))) => {
                    if self
                        .declared_ng_length()
                        .is_some_and(|len| len > MAX_RECORD)
                    {
                        return self.fail(CaptureError::TooLarge { offset });
                    }
                    self.capacity *= 2;
                    if self.capacity > MAX_RECORD || !self.inner.grow(self.capacity) {
                        return self.fail(CaptureError::TooLarge { offset });
                    }
                    if self.inner.refill().is_err() {
                        return self.fail(CaptureError::Read { offset });
                    }
                }
                Err(Some(Err(_))) => return self.fail(CaptureError::Read { offset }),
            }
        }
        None
    }

    /// Fills the reader's buffer as far as its capacity and the input allow.
    fn fill(&mut self) -> Result<(), CaptureError> {
        while !self.inner.reader_exhausted() && self.inner.data().len() < self.capacity {
            let before = (self.inner.data().len(), self.inner.position());
            let offset = self.inner.consumed() as u64;
            self.inner
                .refill()
                .map_err(|_| CaptureError::Read { offset })?;
            if (self.inner.data().len(), self.inner.position()) == before {
                break;
            }
        }
        Ok(())
    }

    /// A legacy record at `offset` claims `caplen` captured bytes, more than any record
    /// can hold: skips to the next two plausible records in the buffer and counts the
    /// skipped bytes as one corrupt record, or, when none follow, reads the rest of the
    /// input to count it and fails with [`CaptureError::Unsynchronised`].
    fn resync_legacy(&mut self, offset: u64, caplen: u32) -> Result<(), CaptureError> {
        let Some(legacy) = self.legacy else {
            return Ok(());
        };
        self.fill()?;
        let end = self.inner.reader_exhausted();
        if let Some(at) = legacy.resync(self.inner.data(), end) {
            self.inner.consume_noshift(at);
            self.index += 1;
            self.summary.records += 1;
            self.summary.skip(&CORRUPT_LEGACY);
            self.summary.example(format!(
                "pcap record at offset {offset}: captured length {caplen} is beyond the \
                 snapshot length; {at} bytes skipped to the next plausible record at offset {}",
                offset + at as u64
            ));
            return Ok(());
        }
        // Read the rest, a buffer at a time, only to count it.
        let mut unread = 0u64;
        loop {
            let n = self.inner.data().len();
            unread += n as u64;
            self.inner.consume_noshift(n);
            if self.inner.reader_exhausted() || self.inner.refill().is_err() {
                break;
            }
        }
        Err(CaptureError::Unsynchronised {
            offset,
            caplen,
            unread,
        })
    }

    /// pcapng: the total length the block at the start of the buffer declares (the smaller
    /// of its two byte orders: the section's is not kept).
    fn declared_ng_length(&self) -> Option<usize> {
        if self.format != "pcapng" {
            return None;
        }
        let w: [u8; 4] = self.inner.data().get(4..8)?.try_into().ok()?;
        Some(u32::from_le_bytes(w).min(u32::from_be_bytes(w)) as usize)
    }

    /// pcapng: when the block at `offset` is complete by its own framing (total length at
    /// both ends, in the buffer) yet does not parse or claims more than it holds, skips it
    /// by its total length and counts it. Returns whether it did.
    fn skip_ng_block(&mut self, offset: u64) -> bool {
        if self.format != "pcapng" {
            return false;
        }
        let data = self.inner.data();
        let framed = |big: bool| {
            let word = |at: usize| {
                let w: [u8; 4] = data.get(at..at + 4)?.try_into().ok()?;
                Some(if big {
                    u32::from_be_bytes(w)
                } else {
                    u32::from_le_bytes(w)
                })
            };
            let len = word(4)? as usize;
            (len >= 12
                && len.is_multiple_of(4)
                && len <= data.len()
                && word(len - 4)? as usize == len)
                .then_some(len)
        };
        let Some(len) = framed(false).or_else(|| framed(true)) else {
            return false;
        };
        let kind = data
            .get(..4)
            .map_or(0, |k| u32::from_le_bytes([k[0], k[1], k[2], k[3]]));
        if kind == 0x0a0d_0d0a {
            // A section header that does not parse: its byte order is unknown, so is the
            // rest of the section.
            return false;
        }
        if matches!(kind, 2 | 3 | 6) {
            // A packet block: it keeps its place in the numbering.
            self.index += 1;
        }
        self.inner.consume_noshift(len);
        self.summary.records += 1;
        self.summary.skip(&CORRUPT_NG);
        self.summary.example(format!(
            "pcapng block at offset {offset} ({len} bytes): its contents contradict its length"
        ));
        true
    }

    /// Counts one decode result in the summary, returning the packet.
    fn count(&mut self, result: Result<Packet, Skip>) -> Option<Packet> {
        match result {
            Ok(p) => {
                self.summary.decoded += 1;
                Some(p)
            }
            Err(skip) => {
                self.summary.skip(&skip);
                None
            }
        }
    }

    /// Reads up to `max` records and appends their decoded packets to `out`, in input
    /// order, decoded on the rayon pool (the summary is the same as when iterating).
    /// Legacy pcap records are walked and decoded in place, straight from the reader's
    /// buffer, a buffer-full at a time; the records `pcap-parser` reads (pcapng blocks, a
    /// record across a buffer refill, the end of the input) are copied out first. Returns
    /// `Ok(false)` once the input is exhausted. On `Err`, the packets of the records read
    /// before the failure have been appended.
    pub fn read_chunk<T: From<Packet> + Clone + Send + Sync>(
        &mut self,
        max: usize,
        out: &mut Vec<T>,
    ) -> Result<bool, CaptureError> {
        let mut frames = std::mem::take(&mut self.frames);
        let mut starts = std::mem::take(&mut self.starts);
        frames.clear();
        let mut failure = None;
        let mut read = 0;
        while read < max && !self.done {
            if let Some(legacy) = self.legacy {
                let data = self.inner.data();
                starts.clear();
                let mut at = 0;
                while starts.len() < max - read {
                    let Some(len) = legacy.complete(&data[at..]) else {
                        break;
                    };
                    starts.push(at);
                    at += len;
                }
                if !starts.is_empty() {
                    // The frames copied so far come first.
                    decode_all(
                        frames.frames.len(),
                        |i| frames.decode(i),
                        out,
                        &mut self.summary,
                    );
                    frames.clear();
                    let (first, n) = (self.index, starts.len());
                    decode_all(
                        n,
                        |i| legacy.decode(first + i as u64, &data[starts[i]..]),
                        out,
                        &mut self.summary,
                    );
                    self.index += n as u64;
                    self.summary.records += n as u64;
                    read += n;
                    self.inner.consume_noshift(at);
                    continue;
                }
            }
            match self.advance(&mut |lt, data, meta| frames.push(lt, data, meta)) {
                Some(Ok(())) => read += 1,
                Some(Err(e)) => {
                    failure = Some(e);
                    break;
                }
                None => break,
            }
        }
        decode_all(
            frames.frames.len(),
            |i| frames.decode(i),
            out,
            &mut self.summary,
        );
        self.frames = frames;
        self.starts = starts;
        match failure {
            Some(e) => Err(e),
            None => Ok(!self.done),
        }
    }
}

/// Decodes frames `0..n` with `decode_at` and appends the packets to `out` in order,
/// counting each result in `summary`; on the rayon pool from [`PARALLEL_DECODE`] frames.
fn decode_all<T: From<Packet> + Clone + Send + Sync>(
    n: usize,
    decode_at: impl Fn(usize) -> Result<Packet, Skip> + Sync,
    out: &mut Vec<T>,
    summary: &mut Summary,
) {
    if n < PARALLEL_DECODE {
        out.reserve(n);
        for i in 0..n {
            match decode_at(i) {
                Ok(p) => {
                    summary.decoded += 1;
                    out.push(T::from(p));
                }
                Err(skip) => summary.skip(&skip),
            }
        }
        return;
    }
    // Decode straight into the spare capacity on the rayon pool (an undecodable frame
    // leaves a placeholder, and its reason aside), then close the gaps the few
    // undecodable frames leave.
    let start = out.len();
    let skipped = std::sync::Mutex::new(Vec::new());
    out.par_extend((0..n).into_par_iter().map(|i| match decode_at(i) {
        Ok(p) => T::from(p),
        Err(skip) => {
            // Invariant: no holder of the lock panics.
            skipped.lock().expect("not poisoned").push((i, skip));
            T::from(placeholder())
        }
    }));
    let mut skips: Vec<(usize, Skip)> = skipped.into_inner().expect("not poisoned");
    skips.sort_unstable_by_key(|s| s.0);
    summary.decoded += (n - skips.len()) as u64;
    if !skips.is_empty() {
        let mut kept = start;
        let mut next_skip = skips.iter().map(|s| s.0).peekable();
        for i in 0..n {
            if next_skip.peek() == Some(&i) {
                next_skip.next();
                continue;
            }
            out.swap(kept, start + i);
            kept += 1;
        }
        out.truncate(kept);
    }
    for (_, skip) in &skips {
        summary.skip(skip);
    }
}

impl Iterator for Capture<'_> {
    type Item = Result<Packet, CaptureError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let mut decoded = None;
            let step = self.advance(&mut |lt, data, meta| decoded = Some(decode(lt, data, meta)));
            match step? {
                Err(e) => return Some(Err(e)),
                Ok(()) => {
                    if let Some(p) = decoded.and_then(|r| self.count(r)) {
                        return Some(Ok(p));
                    }
                }
            }
        }
    }
}

/// The mutable parts of a [`Capture`] a block updates, borrowed apart from the reader.
struct Stepper<'a> {
    legacy: &'a mut Option<Legacy>,
    ifaces: &'a mut Vec<Iface>,
    index: &'a mut u64,
    summary: &'a mut Summary,
}

impl Stepper<'_> {
    fn frame(
        &mut self,
        link_type: i32,
        data: &[u8],
        meta: Meta,
        sink: &mut impl FnMut(i32, &[u8], Meta),
    ) -> Step {
        *self.index += 1;
        self.summary.records += 1;
        sink(link_type, data, meta);
        Step::Frame
    }

    fn unknown(&mut self, id: u32) -> Step {
        *self.index += 1;
        self.summary.records += 1;
        self.summary.skip(&Skip::UnknownInterface(id));
        Step::Skipped
    }

    fn block(
        &mut self,
        block: PcapBlockOwned<'_>,
        sink: &mut impl FnMut(i32, &[u8], Meta),
    ) -> Step {
        match block {
            PcapBlockOwned::LegacyHeader(h) => {
                // The upper bits of the link-type field carry FCS information (pcap spec).
                let modified = h.is_modified_format();
                *self.legacy = Some(Legacy {
                    link_type: h.network.0 & 0xffff,
                    ns: h.is_nanosecond_precision(),
                    // pcap-parser reads "modified" records little-endian.
                    big: h.is_bigendian() && !modified,
                    header: if modified { 24 } else { 16 },
                    limit: (h.snaplen as usize).clamp(SNAPLEN_FLOOR, SNAPLEN_CEILING),
                });
                Step::Meta
            }
            PcapBlockOwned::Legacy(b) => {
                let legacy = self.legacy.unwrap_or(Legacy {
                    link_type: 1,
                    ns: false,
                    big: false,
                    header: 16,
                    limit: SNAPLEN_CEILING,
                });
                let meta = legacy.meta(*self.index, b.ts_sec, b.ts_usec, b.origlen);
                let cut = (b.caplen as usize).min(b.data.len());
                self.frame(legacy.link_type, &b.data[..cut], meta, sink)
            }
            PcapBlockOwned::NG(Block::SectionHeader(_)) => {
                self.ifaces.clear();
                Step::Meta
            }
            PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                self.ifaces.push(Iface {
                    link_type: idb.linktype.0,
                    resolution: idb.ts_resolution().unwrap_or(1_000_000),
                    offset: idb.ts_offset(),
                });
                Step::Meta
            }
            PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                let Some(iface) = self.ifaces.get(epb.if_id as usize).copied() else {
                    return self.unknown(epb.if_id);
                };
                let ts = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                let meta = Meta {
                    index: *self.index,
                    ts_ns: ns_of(ts, iface.resolution, iface.offset),
                    wire_len: epb.origlen,
                    interface: epb.if_id,
                };
                // packet_data() cuts the block padding to the captured length.
                self.frame(iface.link_type, epb.packet_data(), meta, sink)
            }
            PcapBlockOwned::NG(Block::SimplePacket(spb)) => {
                let Some(iface) = self.ifaces.first().copied() else {
                    return self.unknown(0);
                };
                let meta = Meta {
                    index: *self.index,
                    ts_ns: 0,
                    wire_len: spb.origlen,
                    interface: 0,
                };
                self.frame(iface.link_type, spb.packet_data(), meta, sink)
            }
            PcapBlockOwned::NG(_) => Step::Meta,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A legacy pcap with one Ethernet/IPv4/UDP frame, in the given byte order and
    /// precision.
    fn pcap(big: bool, ns: bool) -> Vec<u8> {
        pcap_of(big, ns, false, 1)
    }

    /// A legacy pcap with `n` Ethernet/IPv4/UDP frames (record `i`: source port `53 + i`,
    /// timestamp 100 s + 7 + `i` units, a growing tail; every 13th is not IP), in the
    /// given byte order, precision and record format ("modified": 24-byte headers).
    fn pcap_of(big: bool, ns: bool, modified: bool, n: u32) -> Vec<u8> {
        let magic: u32 = match (modified, ns) {
            (true, _) => 0xa1b2_cd34,
            (false, true) => 0xa1b2_3c4d,
            (false, false) => 0xa1b2_c3d4,
        };
        let w32 = |v: u32| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let w16 = |v: u16| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut f = Vec::new();
        f.extend_from_slice(&w32(magic));
        f.extend_from_slice(&w16(2));
        f.extend_from_slice(&w16(4));
        f.extend_from_slice(&w32(0));
        f.extend_from_slice(&w32(0));
        f.extend_from_slice(&w32(65535));
        f.extend_from_slice(&w32(1));
        for i in 0..n {
            let mut frame = vec![0u8; 12];
            frame.extend_from_slice(if i % 13 == 12 {
                &[0x08, 0x06]
            } else {
                &[0x08, 0x00]
            });
            frame.extend_from_slice(&[
                0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
            ]);
            frame.extend_from_slice(&(53 + i as u16).to_be_bytes());
            frame.extend_from_slice(&[0x30, 0x39, 0, 8, 0, 0]);
            frame.resize(frame.len() + (i % 31) as usize, 0xee);
            f.extend_from_slice(&w32(100));
            f.extend_from_slice(&w32(7 + i));
            f.extend_from_slice(&w32(frame.len() as u32));
            f.extend_from_slice(&w32(frame.len() as u32 + 4));
            if modified {
                f.extend_from_slice(&[0; 8]);
            }
            f.extend_from_slice(&frame);
        }
        f
    }

    /// A reader that hands out at most `piece` bytes at a time.
    struct Pieces<'a> {
        bytes: &'a [u8],
        piece: usize,
    }

    impl Read for Pieces<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.piece).min(self.bytes.len());
            buf[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            Ok(n)
        }
    }

    #[test]
    fn legacy_records_read_in_place_equal_the_iterator() {
        // Enough records to fill the reader's buffer several times (records cross every
        // refill) and to decode on the pool; read whole, in odd pieces, and cut short.
        for (big, ns, modified) in [
            (false, false, false),
            (true, true, false),
            (false, true, false),
            (false, false, true),
        ] {
            let data = pcap_of(big, ns, modified, 40_000);
            assert!(data.len() > 2 * INITIAL_CAPACITY);
            for (piece, cut) in [(usize::MAX, 0), (4093, 0), (usize::MAX, 9), (777, 30)] {
                let bytes = &data[..data.len() - cut];
                let open = || Capture::new(Pieces { bytes, piece }).unwrap();
                let mut one = open();
                let expected: Vec<Packet> = one.by_ref().map(Result::unwrap).collect();
                let summary = one.into_summary();
                assert_eq!(
                    summary.records, 40_000,
                    "{big} {ns} {modified} {piece} {cut}"
                );
                let not_ip = 40_000 / 13 + usize::from(cut > 0);
                assert_eq!(expected.len(), 40_000 - not_ip);
                let last = 40_000 - 1 - if cut > 0 { 1 } else { 0 };
                let p = expected.last().unwrap();
                assert_eq!(p.header.src_port, 53 + last as u16);
                assert_eq!(p.index, last as u64);
                assert_eq!(p.wire_len, p.cap_len + 4);
                let frac = 7 + last as u64;
                let scale = if ns && !modified { 1 } else { 1000 };
                assert_eq!(p.ts_ns, 100_000_000_000 + frac * scale);
                for max in [1, 4096, 16384, 100_000] {
                    let mut chunked = open();
                    let mut packets: Vec<Packet> = Vec::new();
                    while chunked.read_chunk(max, &mut packets).unwrap() {}
                    assert_eq!(packets, expected, "chunks of {max}");
                    assert_eq!(chunked.summary(), &summary, "chunks of {max}");
                }
            }
        }
    }

    #[test]
    fn reads_both_byte_orders_and_precisions() {
        for (big, ns, ts) in [
            (false, false, 100_000_007_000),
            (true, false, 100_000_007_000),
            (false, true, 100_000_000_007),
            (true, true, 100_000_000_007),
        ] {
            let data = pcap(big, ns);
            let mut cap = Capture::new(&data[..]).unwrap();
            let p = cap.next().unwrap().unwrap();
            assert_eq!(p.header.to_string(), "udp 10.0.0.1:53 -> 10.0.0.2:12345");
            assert_eq!(p.ts_ns, ts, "big {big} ns {ns}");
            assert!(cap.next().is_none());
            assert_eq!(cap.summary().decoded, 1);
        }
    }

    #[test]
    fn a_cut_last_record_is_counted_not_fatal() {
        let data = pcap(false, false);
        let cut = &data[..data.len() - 5];
        let mut cap = Capture::new(cut).unwrap();
        assert!(cap.next().is_none());
        assert_eq!(cap.summary().decoded, 0);
        assert_eq!(cap.summary().records, 1);
        assert!(cap.summary().skipped.contains_key(
            "record at offset 24 runs past the end of the file (capture cut short or corrupt length)"
        ));
        assert!(Capture::new(&b"hello world, not a capture"[..]).is_err());
        assert!(matches!(Capture::new(&b""[..]), Err(CaptureError::Empty)));
    }

    /// The Ethernet/IPv4/UDP frame of record `i` of [`pcap_of`] (without its tail).
    fn udp_frame(i: u32) -> Vec<u8> {
        let mut frame = vec![0u8; 12];
        frame.extend_from_slice(&[0x08, 0x00]);
        frame.extend_from_slice(&[
            0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ]);
        frame.extend_from_slice(&(53 + i as u16).to_be_bytes());
        frame.extend_from_slice(&[0x30, 0x39, 0, 8, 0, 0]);
        frame
    }

    /// A little-endian pcapng block of `kind` with `body`, padded to 32 bits.
    fn ng_block(kind: u32, body: &[u8]) -> Vec<u8> {
        let mut body = body.to_vec();
        body.resize(body.len().div_ceil(4) * 4, 0);
        let len = (body.len() + 12) as u32;
        let mut b = Vec::new();
        b.extend_from_slice(&kind.to_le_bytes());
        b.extend_from_slice(&len.to_le_bytes());
        b.extend_from_slice(&body);
        b.extend_from_slice(&len.to_le_bytes());
        b
    }

    /// An enhanced packet block on interface 0 whose captured length field says `caplen`.
    fn epb(frame: &[u8], caplen: u32) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&0u32.to_le_bytes());
        body.extend_from_slice(&0u32.to_le_bytes());
        body.extend_from_slice(&1000u32.to_le_bytes());
        body.extend_from_slice(&caplen.to_le_bytes());
        body.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        body.extend_from_slice(frame);
        ng_block(6, &body)
    }

    /// A pcapng file (one Ethernet interface) of the blocks.
    fn pcapng_of(blocks: &[Vec<u8>]) -> Vec<u8> {
        let mut shb = Vec::new();
        shb.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
        shb.extend_from_slice(&1u16.to_le_bytes());
        shb.extend_from_slice(&0u16.to_le_bytes());
        shb.extend_from_slice(&(-1i64).to_le_bytes());
        let mut idb = Vec::new();
        idb.extend_from_slice(&1u16.to_le_bytes());
        idb.extend_from_slice(&0u16.to_le_bytes());
        idb.extend_from_slice(&65535u32.to_le_bytes());
        let mut f = ng_block(0x0a0d_0d0a, &shb);
        f.extend(ng_block(1, &idb));
        for b in blocks {
            f.extend_from_slice(b);
        }
        f
    }

    /// Reads `data` whole with the iterator and in chunks; both must agree.
    fn read_both(data: &[u8]) -> (Vec<Packet>, Summary, Option<CaptureError>) {
        let mut one = Capture::new(data).unwrap();
        let mut packets = Vec::new();
        let mut error = None;
        for p in one.by_ref() {
            match p {
                Ok(p) => packets.push(p),
                Err(e) => error = Some(e),
            }
        }
        let summary = one.into_summary();
        let mut chunked = Capture::new(data).unwrap();
        let mut again: Vec<Packet> = Vec::new();
        let chunk_error = loop {
            match chunked.read_chunk(100, &mut again) {
                Ok(true) => {}
                Ok(false) => break None,
                Err(e) => break Some(e),
            }
        };
        assert_eq!(again, packets);
        assert_eq!(chunked.summary(), &summary);
        assert_eq!(chunk_error, error);
        (packets, summary, error)
    }

    #[test]
    fn pcapng_block_with_caplen_past_its_block_is_skipped_and_counted() {
        let mut blocks = vec![epb(&udp_frame(0), 42)];
        // Captured length 70,000 in a block of 96 bytes: the block is skipped by its
        // total length, and the 1,000 good blocks after it are read.
        blocks.push(epb(&udp_frame(1), 70_000));
        blocks.push(epb(&udp_frame(2), u32::MAX - 2));
        blocks.extend((3..1003).map(|i| epb(&udp_frame(i), 42)));
        let (packets, summary, error) = read_both(&pcapng_of(&blocks));
        assert_eq!(error, None);
        assert_eq!(packets.len(), 1001);
        assert_eq!(packets.last().unwrap().header.src_port, 53 + 1002);
        assert_eq!(packets.last().unwrap().index, 1002);
        assert_eq!((summary.records, summary.decoded), (1003, 1001));
        assert_eq!(summary.skipped[CORRUPT_NG], 2, "{summary}");
        assert!(summary.examples[0].contains("offset"), "{summary}");
    }

    /// Sets the captured length of record `i` of a [`pcap_of`] file (little-endian, µs).
    fn corrupt_caplen(data: &mut [u8], i: usize, caplen: u32) -> usize {
        let mut at = 24;
        for _ in 0..i {
            let len = u32::from_le_bytes(data[at + 8..at + 12].try_into().unwrap());
            at += 16 + len as usize;
        }
        data[at + 8..at + 12].copy_from_slice(&caplen.to_le_bytes());
        at
    }

    #[test]
    fn pcap_record_with_absurd_caplen_resynchronises() {
        let mut data = pcap_of(false, false, false, 1_001);
        let at = corrupt_caplen(&mut data, 1, 0x7fff_ffff);
        let (packets, summary, error) = read_both(&data);
        assert_eq!(error, None);
        assert_eq!(summary.records, 1_001, "{summary}");
        assert_eq!(summary.skipped[CORRUPT_LEGACY], 1, "{summary}");
        assert!(
            summary.examples[0].contains(&format!("offset {at}")),
            "{summary}"
        );
        // Every record after the corrupt one is read (1,000 is not IP: 999 is the last
        // packet), starting with the next one, no garbage between.
        let after: Vec<u64> = packets
            .iter()
            .map(|p| p.index)
            .filter(|&i| i > 0)
            .take(2)
            .collect();
        assert_eq!(after, [2, 3]);
        assert_eq!(packets[1].header.src_port, 53 + 2);
        assert_eq!(packets.last().unwrap().header.src_port, 53 + 999);
        assert_eq!(packets.last().unwrap().index, 999);
    }

    #[test]
    fn pcap_record_with_absurd_caplen_and_nothing_after_says_bytes_unread() {
        // The corrupt record is followed by bytes no record header fits.
        let mut data = pcap_of(false, false, false, 3);
        let at = corrupt_caplen(&mut data, 2, 0x7fff_ffff);
        data.extend(std::iter::repeat_n(0xffu8, 70_000));
        let (packets, _, error) = read_both(&data);
        assert_eq!(packets.len(), 2);
        let unread = (data.len() - at) as u64;
        assert_eq!(
            error,
            Some(CaptureError::Unsynchronised {
                offset: at as u64,
                caplen: 0x7fff_ffff,
                unread
            })
        );
        let message = error.unwrap().to_string();
        assert!(
            message.contains(&format!("{unread} bytes left unread")),
            "{message}"
        );
    }

    #[test]
    fn pcapng_block_declaring_gigabytes_is_refused_before_it_is_read() {
        let mut data = pcapng_of(&[epb(&udp_frame(0), 42)]);
        data.extend_from_slice(&6u32.to_le_bytes());
        data.extend_from_slice(&0x7fff_fff0u32.to_le_bytes());
        data.resize(data.len() + (3 << 20), 0);
        let (packets, _, error) = read_both(&data);
        assert_eq!(packets.len(), 1);
        assert!(
            matches!(error, Some(CaptureError::TooLarge { .. })),
            "{error:?}"
        );
    }

    #[test]
    fn pcapng_resolution_is_applied() {
        assert_eq!(ns_of(1_500_000, 1_000_000, 0), 1_500_000_000);
        assert_eq!(ns_of(1_500_000_000, 1_000_000_000, 0), 1_500_000_000);
        assert_eq!(ns_of(3, 2, 10), 11_500_000_000);
    }
}
