//! Legacy pcap: the record layout from the file header, records walked in place, and
//! resynchronisation after a record whose captured length no record can have.

use super::{Capture, CaptureError};
use crate::packet::decode::{decode, Meta, Packet, Skip};

/// The record layout of a legacy pcap file, from its header (as `pcap-parser` reads it).
#[derive(Clone, Copy, Debug)]
pub(super) struct Legacy {
    pub(super) link_type: i32,
    /// Nanosecond timestamps.
    pub(super) ns: bool,
    /// Big-endian record headers.
    pub(super) big: bool,
    /// Record header length: 16, or 24 in the "modified" format.
    pub(super) header: usize,
    /// The largest captured length a record may claim: the file's snapshot length, at
    /// least 256 KiB (libpcap's largest) and at most 16 MiB. A larger one is corrupt.
    pub(super) limit: usize,
}

/// The smallest and largest [`Legacy::limit`].
pub(super) const SNAPLEN_FLOOR: usize = 256 << 10;
pub(super) const SNAPLEN_CEILING: usize = 16 << 20;

/// How a corrupt record or block is counted in the summary.
pub(super) const CORRUPT_LEGACY: &str =
    "pcap record with an impossible captured length (skipped to the next plausible record)";

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
    pub(super) fn complete(&self, b: &[u8]) -> Option<usize> {
        let head = b.get(..self.header)?;
        let caplen = self.word(head, 8) as usize;
        let len = self.header.saturating_add(caplen);
        (caplen <= self.limit && len <= b.len()).then_some(len)
    }

    /// The captured length the record starting `b` claims, when `b` holds its header and
    /// the length is beyond [`Legacy::limit`].
    pub(super) fn impossible(&self, b: &[u8]) -> Option<u32> {
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
    pub(super) fn meta(&self, index: u64, ts_sec: u32, ts_frac: u32, origlen: u32) -> Meta {
        let frac = u64::from(ts_frac) * if self.ns { 1 } else { 1000 };
        Meta {
            index,
            ts_ns: u64::from(ts_sec) * 1_000_000_000 + frac,
            wire_len: origlen,
            interface: 0,
        }
    }

    /// Decodes record `index`, which `b` holds (checked by [`Legacy::complete`]).
    pub(super) fn decode(&self, index: u64, b: &[u8]) -> Result<Packet, Skip> {
        let caplen = self.word(b, 8) as usize;
        let meta = self.meta(index, self.word(b, 0), self.word(b, 4), self.word(b, 12));
        decode(self.link_type, &b[self.header..self.header + caplen], meta)
    }
}

impl Capture<'_> {
    /// A legacy record at `offset` claims `caplen` captured bytes, more than any record
    /// can hold: skips to the next two plausible records in the buffer and counts the
    /// skipped bytes as one corrupt record, or, when none follow, reads the rest of the
    /// input to count it and fails with [`CaptureError::Unsynchronised`].
    pub(super) fn resync_legacy(&mut self, offset: u64, caplen: u32) -> Result<(), CaptureError> {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::capture::tests::{pcap_of, read_both};

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
        assert_eq!(packets[1].header.src_port(), 53 + 2);
        assert_eq!(packets.last().unwrap().header.src_port(), 53 + 999);
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
}
