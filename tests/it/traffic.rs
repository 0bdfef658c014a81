//! Traffic: captures against an independent decoder (tshark output committed as data),
//! every bundled and shared capture without a panic or hang, flow-log fixtures, and the
//! `packets` / `eval` commands.

// Test helpers outside #[test] functions: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::fs::File;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;
use sgsim::model::normalize_addr;
use sgsim::packet::{synth, Capture, Packet, Source, Summary};

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(rel)
}

fn read_all(path: &Path) -> (Vec<Packet>, Summary, Option<String>) {
    read_iter(File::open(path).unwrap())
}

/// One tshark row: field name → first value.
fn tsv(path: &Path) -> HashMap<u64, HashMap<String, String>> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let names: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let mut rows = HashMap::new();
    for line in lines {
        let vals: Vec<&str> = line.split('\t').collect();
        let row: HashMap<String, String> = names
            .iter()
            .zip(vals.iter().chain(std::iter::repeat(&"")))
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        rows.insert(row["frame.number"].parse().unwrap(), row);
    }
    rows
}

#[test]
fn decoded_headers_match_tshark() {
    let dir = data("pcaps/expected");
    let mut compared = 0;
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(capture) = name.strip_suffix(".tsv") else {
            continue;
        };
        files += 1;
        let rows = tsv(&path);
        let (packets, _, _) = read_all(&data(&format!("pcaps/{capture}")));
        for p in packets {
            let row = &rows[&(p.index + 1)];
            let ctx = format!("{capture} frame {}", p.index + 1);
            let (src, dst) = if p.header.src().is_ipv4() && !row["ip.src"].is_empty() {
                (row["ip.src"].clone(), row["ip.dst"].clone())
            } else {
                (row["ipv6.src"].clone(), row["ipv6.dst"].clone())
            };
            let norm = |s: &str| normalize_addr(s.parse::<IpAddr>().unwrap());
            assert_eq!(p.header.src(), norm(&src), "{ctx}");
            assert_eq!(p.header.dst(), norm(&dst), "{ctx}");
            if p.header.src().is_ipv4() && !row["ip.src"].is_empty() {
                assert_eq!(p.header.protocol().to_string(), row["ip.proto"], "{ctx}");
            }
            let field = |f: &str| row[f].parse::<u16>().ok();
            match p.header.protocol() {
                6 => assert_eq!(
                    p.ports(),
                    field("tcp.srcport").zip(field("tcp.dstport")),
                    "{ctx}"
                ),
                17 => assert_eq!(
                    p.ports(),
                    field("udp.srcport").zip(field("udp.dstport")),
                    "{ctx}"
                ),
                1 => {
                    let tc = field("icmp.type").zip(field("icmp.code"));
                    assert_eq!(
                        p.transport.icmp().map(|(t, c)| (t.into(), c.into())),
                        tc,
                        "{ctx}"
                    );
                }
                58 => {
                    let tc = field("icmpv6.type").zip(field("icmpv6.code"));
                    assert_eq!(
                        p.transport.icmp().map(|(t, c)| (t.into(), c.into())),
                        tc,
                        "{ctx}"
                    );
                }
                _ => {}
            }
            compared += 1;
        }
    }
    assert!(files >= 30, "{files} expected files");
    assert!(compared >= 170, "only {compared} packets compared");
}

/// Expected decode summaries of bundled captures: (file, records, decoded, a skip reason
/// that must be counted, or "").
const SUMMARIES: &[(&str, u64, u64, &str)] = &[
    ("synthetic-sll2.pcap", 9, 9, ""),
    ("synthetic-loop108-be.pcap", 9, 9, ""),
    ("synthetic-dltraw12-ns.pcap", 9, 9, ""),
    ("synthetic-dltraw14-be-ns.pcap", 9, 9, ""),
    ("synthetic-be.pcapng", 9, 9, ""),
    (
        "synthetic-multi-if.pcapng",
        29,
        28,
        "packet on undescribed interface 5",
    ),
    ("empty.pcapng", 0, 0, ""),
    (
        "radiotap-heapoverflow.pcap",
        1,
        0,
        "unsupported link type 127 (IEEE 802.11 radiotap)",
    ),
    (
        "LINKTYPE_PKTAP.pcap",
        1,
        0,
        "unsupported link type 258 (Apple PKTAP)",
    ),
    (
        "ipv6-bad-version.pcap",
        4,
        2,
        "malformed IPv6 version field",
    ),
    (
        "heap-overflow-1.pcap",
        1,
        0,
        "malformed IP version (raw IP link type)",
    ),
    ("tcp-handshake-nano.pcap", 3, 3, ""),
];

#[test]
fn bundled_capture_summaries() {
    let mut got = Vec::new();
    for &(file, records, decoded, reason) in SUMMARIES {
        let (_, s, err) = read_all(&data(&format!("pcaps/{file}")));
        got.push(format!("{file}: {s} {err:?}"));
        assert_eq!((s.records, s.decoded), (records, decoded), "{file}: {s}");
        if !reason.is_empty() {
            assert!(s.skipped.contains_key(reason), "{file}: {s}");
        }
        assert_eq!(s.records, s.decoded + s.skipped_total(), "{file}");
    }
    println!("{}", got.join("\n"));
}

#[test]
fn synthetic_captures_carry_timestamps_interfaces_and_fragments() {
    let (ps, _, _) = read_all(&data("pcaps/synthetic-multi-if.pcapng"));
    // interface 0: µs resolution; 1: ns (if_tsresol 9); 2: µs.
    assert_eq!(ps[0].interface, 0);
    assert_eq!(ps[0].ts_ns, 1_700_000_000_000_000_000);
    assert_eq!(ps[1].interface, 1);
    assert_eq!(ps[1].ts_ns, 1_700_000_000_000_000_000);
    assert_eq!(ps[4].ts_ns, 1_700_000_000_000_000_001);
    assert_eq!(ps[3].ts_ns, 1_700_000_000_000_001_000);
    // The simple packet block after them: interface 0, no timestamp.
    let spb = ps.last().unwrap();
    assert_eq!(
        (spb.index, spb.interface, spb.ts_ns, spb.transport.icmp()),
        (28, 0, 0, Some((8, 0)))
    );
    // Two sections: big-endian with ns resolution, then little-endian with µs.
    let (ps, _, _) = read_all(&data("pcaps/synthetic-be.pcapng"));
    assert_eq!(ps[5].ts_ns, 1_700_000_000_000_000_005);
    assert_eq!(ps[6].ts_ns, 1_700_000_000_000_000_000);
    assert_eq!(ps[8].ts_ns, 1_700_000_000_000_002_000);
    assert_eq!(ps[8].transport.icmp(), Some((128, 0)));
    // A real nanosecond capture (tshark: 1418145369.924505488).
    let (ps, _, _) = read_all(&data("pcaps/tcp-handshake-nano.pcap"));
    assert_eq!(ps[0].ts_ns, 1_418_145_369_924_505_488);
    assert_eq!(ps[1].tcp_flags(), Some(0x12));
    let (ps, _, _) = read_all(&data("pcaps/synthetic-dltraw14-be-ns.pcap"));
    assert_eq!(ps[1].ts_ns, 1_700_000_001_123_456_790);
    let frag: Vec<_> = ps
        .iter()
        .filter_map(|p| p.fragment.map(|f| (p.index, f.offset, f.more)))
        .collect();
    assert_eq!(
        frag,
        vec![(3, 0, true), (4, 24, false), (6, 0, true), (7, 64, false)]
    );
    assert_eq!(ps[4].ports(), None);
    assert_eq!(
        ps[6].ports(),
        Some((4000, 443)),
        "IPv6 chain hop-by-hop, dest-opts, fragment"
    );
    assert_eq!(ps[5].header.protocol(), 47);
}

fn with_timeout<T: Send + 'static>(what: String, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(v) => v,
        Err(_) => panic!("{what}: no answer within 60 s (hang or panic)"),
    }
}

fn all_captures_in(dir: &Path) -> (usize, u64, u64) {
    let mut files = 0;
    let (mut records, mut decoded) = (0, 0);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
        .collect();
    paths.sort();
    for path in paths {
        let name = path.display().to_string();
        let (_, s, _) = with_timeout(name.clone(), move || read_all(&path));
        assert_eq!(s.records, s.decoded + s.skipped_total(), "{name}: {s}");
        files += 1;
        records += s.records;
        decoded += s.decoded;
    }
    (files, records, decoded)
}

#[test]
fn every_bundled_capture_without_panic_or_hang() {
    let (files, records, decoded) = all_captures_in(&data("pcaps"));
    assert!(files >= 39, "{files}");
    assert!(decoded > 200 && records > decoded, "{records} {decoded}");
}

#[test]
fn every_shared_capture_without_panic_or_hang() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/pcaps");
    if !dir.is_dir() {
        eprintln!("skipped: {} not present", dir.display());
        return;
    }
    let (files, records, decoded) = all_captures_in(&dir);
    assert!(files >= 200, "{files}");
    assert!(
        decoded * 2 > records,
        "{records} records, {decoded} decoded"
    );
}

#[test]
fn synthetic_pcap_round_trips_through_source() {
    let state: sgsim::model::State =
        serde_json::from_str(&std::fs::read_to_string(data("flowlogs/aws-state.json")).unwrap())
            .unwrap();
    let headers: Vec<_> = synth::aimed(&state, 500, 9, 0.2)
        .into_iter()
        .map(|x| x.1)
        .collect();
    let bytes = synth::pcap_bytes(&headers, 0);
    let source = Source::open(std::io::Cursor::new(bytes)).unwrap();
    assert_eq!(source.kind(), "pcap");
    let back: Vec<_> = source
        .map(|i| match i.unwrap() {
            sgsim::packet::Item::Packet(p) => p.header,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(back, headers);
}

/// Reads a capture one packet at a time: its packets, summary and error (a capture that
/// does not open has no packets and that error).
fn read_iter(reader: impl std::io::Read + Send) -> (Vec<Packet>, Summary, Option<String>) {
    let mut cap = match Capture::new(reader) {
        Ok(c) => c,
        Err(e) => return (Vec::new(), Summary::default(), Some(e.to_string())),
    };
    let mut packets = Vec::new();
    let mut error = None;
    for p in cap.by_ref() {
        match p {
            Ok(p) => packets.push(p),
            Err(e) => error = Some(e.to_string()),
        }
    }
    (packets, cap.into_summary(), error)
}

/// Reads a capture with [`Capture::read_chunk`] (`max` records at a time).
fn read_chunked(
    reader: impl std::io::Read + Send,
    max: usize,
) -> (Vec<Packet>, Summary, Option<String>) {
    let mut cap = match Capture::new(reader) {
        Ok(c) => c,
        Err(e) => return (Vec::new(), Summary::default(), Some(e.to_string())),
    };
    let mut packets = Vec::new();
    let error = loop {
        match cap.read_chunk(max, &mut packets) {
            Ok(true) => {}
            Ok(false) => break None,
            Err(e) => break Some(e.to_string()),
        }
    };
    (packets, cap.into_summary(), error)
}

/// A 30k-packet capture (about 2.4 MB) in which every 97th frame is not IP and the last
/// record is cut short.
fn big_capture() -> Vec<u8> {
    let state: sgsim::model::State =
        serde_json::from_str(&std::fs::read_to_string(data("flowlogs/aws-state.json")).unwrap())
            .unwrap();
    let headers: Vec<_> = synth::aimed(&state, 30_000, 5, 0.2)
        .into_iter()
        .map(|x| x.1)
        .collect();
    let mut bytes = synth::pcap_bytes(&headers, 1_700_000_000_000_000_000);
    let mut at = 24;
    let mut record = 0;
    while at + 16 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        if record % 97 == 3 {
            bytes[at + 16 + 12] = 0x12; // ethertype 0x12xx: not IP
        }
        at += 16 + len;
        record += 1;
    }
    bytes.truncate(bytes.len() - 7);
    bytes
}

/// A reader that hands out 64 KiB at a time and fails once `fail_at` bytes are read.
struct Flaky<'a> {
    bytes: &'a [u8],
    at: usize,
    fail_at: usize,
}

impl std::io::Read for Flaky<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.at >= self.fail_at {
            return Err(std::io::Error::other("disk on fire"));
        }
        let n = buf
            .len()
            .min(65536)
            .min(self.fail_at - self.at)
            .min(self.bytes.len() - self.at);
        buf[..n].copy_from_slice(&self.bytes[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[test]
fn chunked_parallel_decoding_equals_the_iterator() {
    // Every bundled capture, in chunks of 1, 7 and 5000 records.
    let mut paths: Vec<PathBuf> = std::fs::read_dir(data("pcaps"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
        .collect();
    paths.sort();
    for path in &paths {
        let bytes = std::fs::read(path).unwrap();
        let expected = read_all(path);
        for max in [1, 7, 5000] {
            assert_eq!(
                read_chunked(&bytes[..], max),
                expected,
                "{}",
                path.display()
            );
        }
    }
    // Large chunks (decoded on the rayon pool) with skips and a cut tail, then the same
    // input failing mid-way: the same packets, summary and error as one at a time.
    let bytes = big_capture();
    let expected = read_iter(&bytes[..]);
    assert_eq!(expected.0.len(), 30_000 - 310 - 1, "{}", expected.1);
    assert_eq!(expected.2, None);
    for max in [4096, 65536] {
        assert_eq!(read_chunked(&bytes[..], max), expected, "chunks of {max}");
    }
    let flaky = || Flaky {
        bytes: &bytes,
        at: 0,
        fail_at: 1_500_000,
    };
    let expected = read_iter(flaky());
    assert!(expected
        .2
        .as_deref()
        .unwrap()
        .starts_with("read error at offset"));
    assert!(expected.0.len() > 10_000);
    for max in [4096, 65536] {
        assert_eq!(read_chunked(flaky(), max), expected, "chunks of {max}");
    }
}

#[test]
fn read_ahead_hands_over_every_chunk_in_order_then_the_error() {
    let bytes = big_capture();
    let flaky = || Flaky {
        bytes: &bytes,
        at: 0,
        fail_at: 1_500_000,
    };
    let expected: Vec<u64> = Source::open(flaky())
        .unwrap()
        .filter_map(|i| i.ok())
        .map(|i| i.index())
        .collect();
    assert!(expected.len() > 10_000);
    let mut source = Source::open(flaky()).unwrap();
    let mut seen = Vec::new();
    let mut last = 0;
    let read = sgsim::packet::read_ahead(&mut source, 1000, |chunk, consumed| {
        assert!(chunk.len() <= 1000 && consumed >= last);
        last = consumed;
        seen.extend(chunk.iter().map(|i| i.index()));
        Ok::<_, ()>(())
    })
    .unwrap();
    assert_eq!(seen, expected);
    let error = read.unwrap_err().to_string();
    assert!(error.starts_with("read error at offset"), "{error}");
    // A consumer that fails stops the reading: its error comes back, nothing hangs.
    let mut source = Source::open(&bytes[..]).unwrap();
    let mut calls = 0;
    let stopped = sgsim::packet::read_ahead(&mut source, 100, |_, _| {
        calls += 1;
        if calls == 3 {
            Err("enough")
        } else {
            Ok(())
        }
    });
    assert_eq!(stopped.unwrap_err(), "enough");
    assert_eq!(calls, 3);
}

// ---- the command line ----

fn sgsim(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sgsim"))
        .args(args)
        .env("CI", "1")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn summary(stderr: &str) -> Value {
    let last = stderr.lines().last().unwrap();
    serde_json::from_str::<Value>(last).unwrap()["summary"].clone()
}

fn path(rel: &str) -> String {
    data(rel).display().to_string()
}

#[test]
fn packets_prints_the_contract_fields() {
    let (code, out, err) = sgsim(&["packets", "--traffic", &path("pcaps/synthetic-sll2.pcap")]);
    assert_eq!(code, 0, "{err}");
    let v = lines(&out);
    assert_eq!(v.len(), 9);
    assert_eq!(v[0]["index"], 0);
    assert_eq!(v[0]["src"], "10.0.0.1");
    assert_eq!(v[0]["protocol"], 6);
    assert_eq!(v[0]["dst_port"], 22);
    assert_eq!(v[0]["icmp_type"], Value::Null);
    assert_eq!(v[2]["icmp_type"], 8);
    assert_eq!(v[2]["src_port"], Value::Null);
    assert_eq!(v[4]["fragment"]["offset"], 24);
    assert!(err.contains("9 records, 9 decoded, 0 skipped"), "{err}");

    let (code, _, err) = sgsim(&[
        "packets",
        "--traffic",
        &path("pcaps/radiotap-heapoverflow.pcap"),
    ]);
    assert_eq!(code, 0);
    assert!(
        err.contains("unsupported link type 127 (IEEE 802.11 radiotap)"),
        "{err}"
    );
}

#[test]
fn unusable_input_exits_2_naming_the_file() {
    let (code, _, err) = sgsim(&["packets", "--traffic", "/nonexistent/x.pcap"]);
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/x.pcap"), "{err}");
    let dir = crate::scratch_root().join("traffic");
    std::fs::create_dir_all(&dir).unwrap();
    // A pcap header followed by a record claiming an absurd length.
    let mut bad = vec![
        0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0,
    ];
    bad.extend_from_slice(&[
        0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff, 0x7f,
    ]);
    bad.extend_from_slice(&[0u8; 64]);
    let f = dir.join("bad.pcap");
    std::fs::write(&f, &bad).unwrap();
    let (code, _, err) = sgsim(&["packets", "--traffic", f.to_str().unwrap()]);
    // Issue 22: a captured length no capture can hold, with nothing plausible after it,
    // is not a cut-short last record: exit 2, saying how many bytes were left unread.
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("bad.pcap")
            && err.contains("record at offset 24")
            && err.contains("80 bytes left unread"),
        "{err}"
    );
    // A pcapng block with an impossible length in the middle of the file.
    let mut garbled = std::fs::read(data("pcaps/synthetic-multi-if.pcapng")).unwrap();
    garbled[600..604].copy_from_slice(&[5, 0, 0, 0]);
    let g = dir.join("garbled.pcapng");
    std::fs::write(&g, &garbled).unwrap();
    let (code, out, err) = sgsim(&["packets", "--traffic", g.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(
        lines(&out).len(),
        6,
        "packets before the damage are printed"
    );
    assert!(
        err.contains("garbled.pcapng: corrupt pcapng data at offset 596"),
        "{err}"
    );
    // Neither a capture nor a flow log.
    let junk = dir.join("junk.bin");
    std::fs::write(&junk, b"\x00\x01\x02 hello\nworld 1 2 3\n").unwrap();
    let (code, out, err) = sgsim(&["packets", "--traffic", junk.to_str().unwrap()]);
    assert_eq!((code, out.as_str()), (2, ""), "{err}");
    assert!(
        err.contains("junk.bin") && err.contains("neither a capture nor a flow log"),
        "{err}"
    );
    let (code, _, err) = sgsim(&[
        "packets",
        "--strict",
        "--traffic",
        &path("flowlogs/aws-malformed.log"),
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("aws-malformed.log") && err.contains("line 2"),
        "{err}"
    );
}

#[test]
fn flow_logs_are_read_and_malformed_lines_reported_by_line() {
    let (code, out, err) = sgsim(&["packets", "--traffic", &path("flowlogs/aws-malformed.log")]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(lines(&out).len(), 2);
    for needle in [
        "line 2:",
        "line 5: srcaddr",
        "line 6: action",
        "3  malformed flow-log line",
    ] {
        assert!(err.contains(needle), "{needle}: {err}");
    }
    let (_, out, err) = sgsim(&["packets", "--traffic", &path("flowlogs/aliyun.jsonl")]);
    let v = lines(&out);
    assert_eq!(v.len(), 3);
    assert_eq!(v[1]["direction"], "egress");
    assert!(err.contains("line 5:"), "{err}");
    let (_, out, _) = sgsim(&["packets", "--traffic", &path("flowlogs/aws-v5-custom.log")]);
    let v = lines(&out);
    assert_eq!(v[2]["src"], "203.0.113.50", "pkt-srcaddr wins");
}

/// One eval output line: ENI, direction, verdict, reason, rule ID.
type Row = (String, String, String, String, Value);

fn eval_rows(state: &str, traffic: &str, extra: &[&str]) -> (Vec<Row>, Value) {
    let mut args = vec!["eval", "--state", state, "--traffic", traffic];
    args.extend_from_slice(extra);
    let (code, out, err) = sgsim(&args);
    assert_eq!(code, 0, "{err}");
    let rows = lines(&out)
        .into_iter()
        .map(|v| {
            (
                v["eni"].as_str().unwrap().to_string(),
                v["direction"].as_str().unwrap().to_string(),
                v["verdict"].as_str().unwrap().to_string(),
                v["reason"].as_str().unwrap().to_string(),
                v["rule_id"].clone(),
            )
        })
        .collect();
    (rows, summary(&err))
}

#[test]
fn eval_flow_logs_with_logged_and_inferred_directions() {
    let state = path("flowlogs/aws-state.json");
    let (rows, s) = eval_rows(&state, &path("flowlogs/aws-v2.log"), &[]);
    let short: Vec<_> = rows
        .iter()
        .map(|r| (r.0.as_str(), r.1.as_str(), r.2.as_str(), r.3.as_str()))
        .collect();
    assert_eq!(
        short,
        vec![
            ("eni-1235b8ca123456789", "ingress", "accept", "rule"),
            ("eni-0db", "ingress", "drop", "default"),
            ("eni-1235b8ca123456789", "egress", "accept", "rule"),
        ]
    );
    assert_eq!(rows[0].4, "sgr-ssh");
    // SSH from 0.0.0.0/0 with all egress open: an untracked flow (SEMANTICS 3.2), so the
    // reply is judged by the egress rule, not passed as established.
    assert_eq!(rows[2].4, "sgr-out");
    assert_eq!(s["rules"]["sgr-ssh"], 1);
    assert_eq!(s["established"], 0);

    let (rows, _) = eval_rows(&state, &path("flowlogs/aws-v5-custom.log"), &[]);
    let dirs: Vec<_> = rows.iter().map(|r| (r.1.as_str(), r.3.as_str())).collect();
    assert_eq!(
        dirs,
        vec![
            ("egress", "rule"),
            ("ingress", "established"),
            ("ingress", "default")
        ]
    );
    // Without connection state the reply is judged by the rules: no inbound rule takes it.
    let (rows, s) = eval_rows(
        &state,
        &path("flowlogs/aws-v5-custom.log"),
        &["--stateless"],
    );
    let dirs: Vec<_> = rows.iter().map(|r| (r.1.as_str(), r.3.as_str())).collect();
    assert_eq!(
        dirs,
        vec![
            ("egress", "rule"),
            ("ingress", "default"),
            ("ingress", "default")
        ]
    );
    assert_eq!(s["established"], 0);

    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/flowlogs/aliyun-state.json");
    let (rows, s) = eval_rows(demo.to_str().unwrap(), &path("flowlogs/aliyun.jsonl"), &[]);
    let got: Vec<_> = rows
        .iter()
        .map(|r| (r.2.as_str(), r.3.as_str(), r.4.clone()))
        .collect();
    assert_eq!(got[0], ("accept", "rule", Value::from("sgr-web-https")));
    assert_eq!(got[1], ("accept", "established", Value::Null));
    assert_eq!(got[2], ("drop", "rule", Value::from("sgr-web-ssh-block")));
    assert_eq!(s["decode"]["skipped"]["malformed flow-log line"], 1);
}

#[test]
fn eval_synthetic_capture_parallel_equals_sequential_and_filters_by_eni() {
    let state_path = path("flowlogs/aws-state.json");
    let state: sgsim::model::State =
        serde_json::from_str(&std::fs::read_to_string(&state_path).unwrap()).unwrap();
    let mut headers: Vec<_> = synth::aimed(&state, 3000, 5, 0.3)
        .into_iter()
        .map(|x| x.1)
        .collect();
    // Replies to everything, so that established connections appear.
    let replies: Vec<_> = headers.iter().map(|h| h.reversed()).collect();
    headers.extend(replies);
    let dir = crate::scratch_root().join("eval");
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("synthetic.pcap");
    std::fs::write(
        &pcap,
        synth::pcap_bytes(&headers, 1_700_000_000_000_000_000),
    )
    .unwrap();
    let pcap = pcap.to_str().unwrap();
    let args = |extra: &[&str]| -> (i32, String, String) {
        let mut a = vec!["eval", "--state", &state_path, "--traffic", pcap];
        a.extend_from_slice(extra);
        sgsim(&a)
    };
    let (c1, par, e1) = args(&["--chunk", "1000"]);
    let (c2, seq, e2) = args(&["--sequential"]);
    assert_eq!((c1, c2), (0, 0), "{e1}{e2}");
    assert_eq!(par, seq);
    assert_eq!(summary(&e1), summary(&e2));
    let s = summary(&e1);
    assert_eq!(s["packets"], 6000);
    assert!(s["established"].as_u64().unwrap() > 0, "{s}");
    assert!(s["unmatched_eni"].as_u64().unwrap() > 0, "{s}");
    assert_eq!(
        s["accepted"].as_u64().unwrap() + s["dropped"].as_u64().unwrap(),
        s["evaluations"].as_u64().unwrap()
    );
    let (_, only, _) = args(&["--eni", "eni-0db"]);
    let only = lines(&only);
    assert!(!only.is_empty());
    assert!(only.iter().all(|v| v["eni"] == "eni-0db"));
    let (_, by_ip, _) = args(&["--ip", "172.31.9.12"]);
    assert_eq!(lines(&by_ip), only);
    let (code, _, err) = args(&["--eni", "eni-nope"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn synth_writes_a_capture_that_packets_reads_back() {
    let dir = crate::scratch_root().join("synth");
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("s.pcap");
    let args = [
        "synth",
        "--state",
        &path("flowlogs/aws-state.json"),
        "--out",
        out.to_str().unwrap(),
        "--packets",
        "300",
        "--seed",
        "4",
    ];
    let (code, _, err) = sgsim(&args);
    assert_eq!(code, 0, "{err}");
    let first = std::fs::read(&out).unwrap();
    sgsim(&args);
    assert_eq!(std::fs::read(&out).unwrap(), first, "same seed, same bytes");
    let (code, stdout, err) = sgsim(&["packets", "--traffic", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(lines(&stdout).len(), 300);
    assert!(err.contains("300 records, 300 decoded, 0 skipped"), "{err}");
}

#[test]
fn eval_names_unresolved_references_of_unknown_verdicts() {
    let dir = crate::scratch_root().join("unresolved");
    std::fs::create_dir_all(&dir).unwrap();
    let state = dir.join("state.json");
    std::fs::write(
        &state,
        r#"{"sgsim_snapshot": 1,
  "groups": [{"id": "sg-web", "provider": "aws"}],
  "prefix_lists": [{"id": "pl-empty", "entries": []}],
  "rules": [
    {"id": "sgr-pl", "group": "sg-web", "direction": "ingress", "action": "accept",
     "protocol": "tcp", "dst_ports": "443", "remote": {"prefix_list_id": "pl-missing"}},
    {"id": "sgr-pl2", "group": "sg-web", "direction": "ingress", "action": "accept",
     "protocol": "tcp", "dst_ports": "443-444", "remote": {"prefix_list_id": "pl-empty"}},
    {"id": "sgr-ssh", "group": "sg-web", "direction": "ingress", "action": "accept",
     "protocol": "tcp", "dst_ports": "22", "remote": {"cidr": "10.0.0.0/8"}}
  ],
  "enis": [{"id": "eni-web", "ips": ["10.0.0.5"], "groups": ["sg-web"]}]}"#,
    )
    .unwrap();
    let log = dir.join("flows.log");
    std::fs::write(
        &log,
        "2 1 eni-web 203.0.113.5 10.0.0.5 40000 443 6 3 180 1 2 ACCEPT OK\n\
         2 1 eni-web 203.0.113.5 10.0.0.5 40000 22 6 3 180 1 2 REJECT OK\n",
    )
    .unwrap();
    let (code, out, err) = sgsim(&[
        "eval",
        "--stateless",
        "--state",
        state.to_str().unwrap(),
        "--traffic",
        log.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let v = lines(&out);
    assert_eq!(v[0]["verdict"], "unknown");
    assert_eq!(v[0]["reason"], "unresolved");
    assert_eq!(v[0]["rule_id"], "sgr-pl");
    assert_eq!(
        v[0]["unresolved"],
        serde_json::json!(["pl-missing", "pl-empty"])
    );
    assert_eq!(v[1]["verdict"], "drop");
    assert!(v[1].get("unresolved").is_none());
    assert_eq!(summary(&err)["unknown"], 1);
    assert!(
        err.contains("pl-missing is unresolved") && err.contains("pl-empty has no entries"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// AWS logs ICMP with ports `0 0` and no type or code (its documented ping example): the
/// request is judged by what the ICMP rules allow for some type (a logged ACCEPT settles
/// it), the reply as part of the same tracked exchange; where the log does not settle it,
/// the verdict is unknown, never a drop of type 0.
#[test]
fn eval_aws_icmp_records_without_type_as_aws_logged_them() {
    let state = path("flowlogs/aws-ping-state.json");
    let log = path("flowlogs/aws-ping.log");
    let (rows, s) = eval_rows(&state, &log, &[]);
    let got: Vec<_> = rows
        .iter()
        .map(|r| (r.1.as_str(), r.2.as_str(), r.3.as_str(), r.4.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("ingress", "accept", "rule", Value::from("sgr-ping")),
            ("egress", "accept", "established", Value::Null),
        ]
    );
    assert_eq!(s["dropped"], 0);
    // Without state, the reply is judged by the egress rules: none takes ICMP.
    let (rows, _) = eval_rows(&state, &log, &["--stateless"]);
    assert_eq!(
        (rows[1].2.as_str(), rows[1].3.as_str()),
        ("drop", "default")
    );
    // A REJECT (or no action) does not settle which type it was: unknown, and it says why.
    let dir = crate::scratch_root().join("ping");
    std::fs::create_dir_all(&dir).unwrap();
    let rejected = dir.join("rejected.log");
    std::fs::write(
        &rejected,
        "2 123456789010 eni-1235b8ca123456789 203.0.113.12 172.31.16.139 0 0 1 4 336 1432917027 1432917142 REJECT OK\n",
    )
    .unwrap();
    let (code, out, err) = sgsim(&[
        "eval",
        "--state",
        &state,
        "--traffic",
        rejected.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let v = lines(&out);
    assert_eq!(v[0]["verdict"], "unknown");
    assert_eq!(v[0]["reason"], "unresolved");
    assert_eq!(v[0]["detail"], "icmp-type-not-logged");
    assert_eq!(v[0]["unresolved"], serde_json::json!(["icmp-type"]));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn regression_a_truncated_pcap_gz_names_the_cause_of_its_read_error() {
    let pcap = std::fs::read(data("pcaps/OSPFv3_with_AH.pcap")).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &pcap).unwrap();
    let gz = gz.finish().unwrap();
    let cut = &gz[..gz.len() / 2];
    let err = match Source::open(cut) {
        Err(e) => e,
        Ok(source) => source
            .filter_map(Result::err)
            .next()
            .expect("a cut gzip stream is a read error"),
    };
    let text = err.to_string();
    let (at, why) = text
        .split_once(": ")
        .unwrap_or_else(|| panic!("no cause: {text}"));
    assert!(at.starts_with("read error at offset "), "{text}");
    assert!(why.contains("deflate stream"), "{text}");
}
