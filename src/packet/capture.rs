//! Streaming pcap and pcapng reader: one record at a time, constant memory.
//!
//! Built on `pcap-parser`'s circular-buffer readers. Legacy pcap in either byte order with
//! µs or ns timestamps; pcapng with any number of sections and interfaces, each
//! interface with its own link type, `if_tsresol` and `if_tsoffset`. Records are decoded by
//! [`super::decode`]; those that cannot be are counted in the [`Summary`] under their
//! reason.

use std::io::Read;

use pcap_parser::pcapng::Block;
use pcap_parser::traits::{PcapNGPacketBlock, PcapReaderIterator};
use pcap_parser::{PcapBlockOwned, PcapError};
use rayon::prelude::*;

use super::decode::{decode, Meta, Packet, Skip};
use super::Summary;

/// The most a single record may take in memory before the file is declared unusable.
const MAX_RECORD: usize = 256 << 20;
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
    /// A record larger than 256 MiB.
    #[error("record at offset {offset} is larger than {MAX_RECORD} bytes")]
    TooLarge {
        /// Byte offset of the record.
        offset: u64,
    },
    /// Reading failed.
    #[error("read error at offset {offset}")]
    Read {
        /// Byte offset reached.
        offset: u64,
    },
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
    /// Legacy pcap: link type and whether timestamps are ns.
    legacy: Option<(i32, bool)>,
    /// pcapng: the current section's interfaces.
    ifaces: Vec<Iface>,
    index: u64,
    capacity: usize,
    done: bool,
    summary: Summary,
    /// Reused buffer of [`Capture::read_chunk`].
    frames: Frames,
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

    /// Frame `i`: link type, bytes, metadata.
    fn get(&self, i: usize) -> (i32, &[u8], Meta) {
        let (link_type, meta, start) = self.frames[i];
        let end = self
            .frames
            .get(i + 1)
            .map_or(self.bytes.len(), |next| next.2);
        (link_type, &self.bytes[start..end], meta)
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
                    if self.inner.data().is_empty() {
                        Err(None)
                    } else {
                        Err(Some(Ok(())))
                    }
                }
                Err(PcapError::Incomplete(_)) => Err(Some(Err(0))),
                Err(PcapError::BufferTooSmall) => Err(Some(Err(1))),
                Err(PcapError::ReadError) => Err(Some(Err(2))),
                Err(e) => {
                    let what = match e {
                        PcapError::NomError(_, kind) | PcapError::OwnedNomError(_, kind) => {
                            format!("block or record does not parse ({kind:?})")
                        }
                        PcapError::HeaderNotRecognized => "header not recognized".to_string(),
                        other => format!("{other:?}").chars().take(80).collect(),
                    };
                    return self.fail(CaptureError::Corrupt {
                        format: self.format,
                        offset,
                        what,
                    });
                }
            };
            match step {
                Ok((len, step)) => {
                    self.inner.consume(len);
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
    /// order; the frames are copied out of the reader first and decoded on the rayon pool
    /// (the summary is the same as when iterating). Returns `Ok(false)` once the input is
    /// exhausted. On `Err`, the packets of the records read before the failure have been
    /// appended.
    pub fn read_chunk<T: From<Packet> + Clone + Send + Sync>(
        &mut self,
        max: usize,
        out: &mut Vec<T>,
    ) -> Result<bool, CaptureError> {
        let mut frames = std::mem::take(&mut self.frames);
        frames.clear();
        let mut failure = None;
        while frames.frames.len() < max {
            match self.advance(&mut |lt, data, meta| frames.push(lt, data, meta)) {
                Some(Ok(())) => {}
                Some(Err(e)) => {
                    failure = Some(e);
                    break;
                }
                None => break,
            }
        }
        let n = frames.frames.len();
        let decode_at = |i: usize| {
            let (lt, data, meta) = frames.get(i);
            decode(lt, data, meta)
        };
        if n < PARALLEL_DECODE {
            out.reserve(n);
            for i in 0..n {
                if let Some(p) = self.count(decode_at(i)) {
                    out.push(T::from(p));
                }
            }
        } else {
            // Decode straight into place on the rayon pool (placeholders first), then
            // close the gaps the few undecodable frames leave.
            let start = out.len();
            out.resize(start + n, T::from(placeholder()));
            let mut skips: Vec<(usize, Skip)> = out[start..]
                .par_iter_mut()
                .enumerate()
                .filter_map(|(i, slot)| match decode_at(i) {
                    Ok(p) => {
                        *slot = T::from(p);
                        None
                    }
                    Err(skip) => Some((i, skip)),
                })
                .collect();
            skips.sort_unstable_by_key(|s| s.0);
            self.summary.decoded += (n - skips.len()) as u64;
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
                self.summary.skip(skip);
            }
        }
        self.frames = frames;
        match failure {
            Some(e) => Err(e),
            None => Ok(!self.done),
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
    legacy: &'a mut Option<(i32, bool)>,
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
                *self.legacy = Some((h.network.0 & 0xffff, h.is_nanosecond_precision()));
                Step::Meta
            }
            PcapBlockOwned::Legacy(b) => {
                let (lt, ns) = self.legacy.unwrap_or((1, false));
                let frac = u64::from(b.ts_usec) * if ns { 1 } else { 1000 };
                let meta = Meta {
                    index: *self.index,
                    ts_ns: u64::from(b.ts_sec) * 1_000_000_000 + frac,
                    wire_len: b.origlen,
                    interface: 0,
                };
                let cut = (b.caplen as usize).min(b.data.len());
                self.frame(lt, &b.data[..cut], meta, sink)
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
        let magic: u32 = if ns { 0xa1b2_3c4d } else { 0xa1b2_c3d4 };
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
        let mut frame = vec![0u8; 12];
        frame.extend_from_slice(&[0x08, 0x00]);
        frame.extend_from_slice(&[
            0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ]);
        frame.extend_from_slice(&[0, 53, 0x30, 0x39, 0, 8, 0, 0]);
        f.extend_from_slice(&w32(100));
        f.extend_from_slice(&w32(7));
        f.extend_from_slice(&w32(frame.len() as u32));
        f.extend_from_slice(&w32(frame.len() as u32));
        f.extend_from_slice(&frame);
        f
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

    #[test]
    fn pcapng_resolution_is_applied() {
        assert_eq!(ns_of(1_500_000, 1_000_000, 0), 1_500_000_000);
        assert_eq!(ns_of(1_500_000_000, 1_000_000_000, 0), 1_500_000_000);
        assert_eq!(ns_of(3, 2, 10), 11_500_000_000);
    }
}
