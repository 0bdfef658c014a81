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
//!
//! # Files
//!
//! - `mod.rs`: [`Capture`] and [`CaptureError`], reading record by record (the iterator)
//!   and the blocks `pcap-parser` hands out.
//! - `legacy.rs`: the legacy pcap record layout, records walked in place, and
//!   resynchronisation after a record with an impossible length.
//! - `pcapng.rs`: pcapng interfaces and timestamps, and blocks skipped by their framing.
//! - `chunk.rs`: [`Capture::read_chunk`], frames decoded in parallel on the rayon pool.

mod chunk;
mod legacy;
mod pcapng;

use std::io::Read;

use pcap_parser::pcapng::Block;
use pcap_parser::traits::PcapNGPacketBlock;
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{PcapBlockOwned, PcapError};

use self::chunk::Frames;
use self::legacy::{Legacy, SNAPLEN_CEILING, SNAPLEN_FLOOR};
use self::pcapng::{ns_of, Iface};
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
    #[error("read error at offset {offset}: {why}")]
    Read {
        /// Byte offset reached.
        offset: u64,
        /// The input's error (a truncated or corrupt gzip stream, an I/O error).
        why: String,
    },
}

/// The input of a capture, keeping the message of its last read error: `pcap-parser`
/// reports only that a read failed, not why.
struct Noting<R> {
    inner: R,
    last: std::sync::Arc<std::sync::Mutex<Option<String>>>,
}

impl<R: Read> Read for Noting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf).inspect_err(|e| {
            if let Ok(mut last) = self.last.lock() {
                *last = Some(e.to_string());
            }
        })
    }
}

/// What the input said when a read failed, as [`Noting`] kept it.
fn read_error(last: &std::sync::Mutex<Option<String>>) -> String {
    last.lock()
        .ok()
        .and_then(|l| l.clone())
        .unwrap_or_else(|| "the input could not be read".into())
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
    /// The input's last read error, as [`Noting`] kept it.
    last_error: std::sync::Arc<std::sync::Mutex<Option<String>>>,
}

enum Step {
    /// A record's frame went to the sink.
    Frame,
    /// A record that cannot be decoded (counted).
    Skipped,
    /// A header, interface description or other metadata block.
    Meta,
}

impl<'r> Capture<'r> {
    /// Opens a capture (pcap or pcapng, detected from its header).
    pub fn new<R: Read + Send + 'r>(reader: R) -> Result<Capture<'r>, CaptureError> {
        let last_error = std::sync::Arc::default();
        let reader = Noting {
            inner: reader,
            last: std::sync::Arc::clone(&last_error),
        };
        let inner = match pcap_parser::create_reader(INITIAL_CAPACITY, reader) {
            Ok(r) => r,
            Err(PcapError::Eof) => return Err(CaptureError::Empty),
            Err(PcapError::ReadError) => {
                return Err(CaptureError::Read {
                    offset: 0,
                    why: read_error(&last_error),
                })
            }
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
            last_error,
        })
    }

    /// The error of a read that failed at `offset`.
    fn read_failed(&self, offset: u64) -> CaptureError {
        CaptureError::Read {
            offset,
            why: read_error(&self.last_error),
        }
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
                        return self.fail(self.read_failed(offset));
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
                        return self.fail(self.read_failed(offset));
                    }
                }
                Err(Some(Err(_))) => return self.fail(self.read_failed(offset)),
            }
        }
        None
    }

    /// Fills the reader's buffer as far as its capacity and the input allow.
    fn fill(&mut self) -> Result<(), CaptureError> {
        while !self.inner.reader_exhausted() && self.inner.data().len() < self.capacity {
            let before = (self.inner.data().len(), self.inner.position());
            let offset = self.inner.consumed() as u64;
            if self.inner.refill().is_err() {
                return Err(self.read_failed(offset));
            }
            if (self.inner.data().len(), self.inner.position()) == before {
                break;
            }
        }
        Ok(())
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
    pub(super) fn pcap_of(big: bool, ns: bool, modified: bool, n: u32) -> Vec<u8> {
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
    pub(super) struct Pieces<'a> {
        pub(super) bytes: &'a [u8],
        pub(super) piece: usize,
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

    /// Reads `data` whole with the iterator and in chunks; both must agree.
    pub(super) fn read_both(data: &[u8]) -> (Vec<Packet>, Summary, Option<CaptureError>) {
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
}
