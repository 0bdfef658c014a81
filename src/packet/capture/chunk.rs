//! [`Capture::read_chunk`]: records read a chunk at a time (legacy pcap records in place
//! in the reader's buffer) and decoded on the rayon pool.

use std::sync::{Mutex, PoisonError};

use rayon::prelude::*;

use super::{Capture, CaptureError};
use crate::packet::decode::{decode, Meta, Packet, Skip, Transport};
use crate::packet::Summary;

/// Raw frames read from a capture, decoded later (in parallel) by [`Capture::read_chunk`].
#[derive(Default)]
pub(super) struct Frames {
    /// The frames' bytes, back to back.
    pub(super) bytes: Vec<u8>,
    /// Per frame: link type, metadata, and where its bytes start.
    pub(super) frames: Vec<(i32, Meta, usize)>,
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
pub(super) fn placeholder() -> Packet {
    let zero = std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);
    Packet {
        index: 0,
        ts_ns: 0,
        header: crate::model::Header::new_unchecked(zero, zero, 0, 0, 0),
        wire_len: 0,
        cap_len: 0,
        transport: Transport::None,
        fragment: None,
        interface: 0,
    }
}

/// Below this many frames a chunk is decoded on the calling thread.
pub(super) const PARALLEL_DECODE: usize = 2048;

impl Capture<'_> {
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
    let skipped = Mutex::new(Vec::new());
    out.par_extend((0..n).into_par_iter().map(|i| match decode_at(i) {
        Ok(p) => T::from(p),
        Err(skip) => {
            // No holder of the lock panics (it only pushes), so a poisoned lock still
            // holds every skip pushed.
            skipped
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((i, skip));
            T::from(placeholder())
        }
    }));
    let mut skips: Vec<(usize, Skip)> =
        skipped.into_inner().unwrap_or_else(PoisonError::into_inner);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::capture::tests::{pcap_of, Pieces};
    use crate::packet::capture::INITIAL_CAPACITY;

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
                assert_eq!(p.header.src_port(), 53 + last as u16);
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
}
