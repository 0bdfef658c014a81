//! pcapng: interfaces and their timestamps, and blocks that contradict their own length,
//! skipped by their framing.

use super::Capture;

/// How a corrupt block is counted in the summary.
pub(super) const CORRUPT_NG: &str =
    "pcapng block whose contents contradict its length (skipped by its total length)";

#[derive(Clone, Copy, Debug)]
pub(super) struct Iface {
    pub(super) link_type: i32,
    /// Timestamp units per second.
    pub(super) resolution: u64,
    /// Seconds added to every timestamp.
    pub(super) offset: i64,
}

pub(super) fn ns_of(ts: u64, resolution: u64, offset: i64) -> u64 {
    let resolution = resolution.max(1);
    let ns = u128::from(ts) * 1_000_000_000 / u128::from(resolution);
    let ns = ns as i128 + i128::from(offset) * 1_000_000_000;
    ns.clamp(0, i128::from(u64::MAX)) as u64
}

impl Capture<'_> {
    /// pcapng: the total length the block at the start of the buffer declares (the smaller
    /// of its two byte orders: the section's is not kept).
    pub(super) fn declared_ng_length(&self) -> Option<usize> {
        if self.format != "pcapng" {
            return None;
        }
        let w: [u8; 4] = self.inner.data().get(4..8)?.try_into().ok()?;
        Some(u32::from_le_bytes(w).min(u32::from_be_bytes(w)) as usize)
    }

    /// pcapng: when the block at `offset` is complete by its own framing (total length at
    /// both ends, in the buffer) yet does not parse or claims more than it holds, skips it
    /// by its total length and counts it. Returns whether it did.
    pub(super) fn skip_ng_block(&mut self, offset: u64) -> bool {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::capture::tests::read_both;
    use crate::packet::capture::CaptureError;

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
        assert_eq!(packets.last().unwrap().header.src_port(), 53 + 1002);
        assert_eq!(packets.last().unwrap().index, 1002);
        assert_eq!((summary.records, summary.decoded), (1003, 1001));
        assert_eq!(summary.skipped[CORRUPT_NG], 2, "{summary}");
        assert!(summary.examples[0].contains("offset"), "{summary}");
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
