//! Flow logs as clouds deliver them: one day of a 400-ENI fleet as one plain file, as
//! hourly gzip files in AWS's S3 layout and as hourly Hive-partitioned Parquet files gives
//! one what-if; folders, windows, bad records and inputs that are not flow logs.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use arrow_array::{ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, GzipLevel, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde_json::Value;

pub fn sgsim(args: &[&str]) -> (i32, String, String) {
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

pub fn scratch(name: &str) -> PathBuf {
    let dir = crate::scratch_root().join(format!("flowlogs-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

pub const ACCOUNT: &str = "111122223333";
/// 2026-12-06T00:00:00Z.
pub const DAY: u64 = 1_796_515_200;
const TIERS: [(&str, u16); 4] = [("web", 443), ("app", 8080), ("db", 5432), ("cache", 6379)];

/// A fleet of 400 ENIs (100 a tier) in one VPC, as AWS describe calls print it, and the
/// revoke of the db tier's CIDR rule (clients outside the app tier lose access).
pub fn fleet_state(dir: &Path) -> (PathBuf, String) {
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    let group = |t: &str| format!("sg-0{t:0>16}");
    let mut groups = Vec::new();
    for (i, (tier, port)) in TIERS.iter().enumerate() {
        let mut ingress = vec![serde_json::json!({
            "IpProtocol": "tcp", "FromPort": port, "ToPort": port,
            "IpRanges": if i == 0 { vec![serde_json::json!({"CidrIp": "0.0.0.0/0"})] } else { vec![] },
            "Ipv6Ranges": [], "PrefixListIds": [],
            "UserIdGroupPairs": if i == 0 { vec![] } else {
                vec![serde_json::json!({"GroupId": group(TIERS[i - 1].0), "UserId": ACCOUNT})]
            }
        })];
        ingress.push(serde_json::json!({
            "IpProtocol": "tcp", "FromPort": port, "ToPort": port,
            "IpRanges": [{"CidrIp": "10.9.0.0/16", "Description": "ops"}],
            "Ipv6Ranges": [], "PrefixListIds": [], "UserIdGroupPairs": []
        }));
        groups.push(serde_json::json!({
            "GroupId": group(tier), "GroupName": tier, "Description": tier,
            "OwnerId": ACCOUNT, "VpcId": "vpc-0fleet00000000001",
            "IpPermissions": ingress,
            "IpPermissionsEgress": [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
                "Ipv6Ranges": [], "PrefixListIds": [], "UserIdGroupPairs": []}]
        }));
    }
    let mut enis = Vec::new();
    for (t, (tier, _)) in TIERS.iter().enumerate() {
        for n in 0..100 {
            let ip = format!("10.0.{t}.{}", n + 10);
            enis.push(serde_json::json!({
                "NetworkInterfaceId": eni(t, n), "VpcId": "vpc-0fleet00000000001",
                "PrivateIpAddress": ip,
                "PrivateIpAddresses": [{"Primary": true, "PrivateIpAddress": ip}],
                "Ipv6Addresses": [],
                "Groups": [{"GroupName": tier, "GroupId": group(tier)}], "Status": "in-use"
            }));
        }
    }
    let write = |name: &str, v: Value| {
        std::fs::write(state.join(name), serde_json::to_vec_pretty(&v).unwrap()).unwrap()
    };
    write(
        "security-groups.json",
        serde_json::json!({ "SecurityGroups": groups }),
    );
    write(
        "network-interfaces.json",
        serde_json::json!({ "NetworkInterfaces": enis }),
    );
    write(
        "vpcs.json",
        serde_json::json!({"Vpcs": [{"VpcId": "vpc-0fleet00000000001", "CidrBlock": "10.0.0.0/16", "IsDefault": false}]}),
    );
    let revoke = format!(
        "Action=RevokeSecurityGroupIngress&Version=2016-11-15&GroupId={}\
         &IpPermissions.1.IpProtocol=tcp&IpPermissions.1.FromPort=5432&IpPermissions.1.ToPort=5432\
         &IpPermissions.1.IpRanges.1.CidrIp=10.9.0.0/16",
        group("db")
    );
    (state, revoke)
}

fn eni(tier: usize, n: usize) -> String {
    format!("eni-0{tier}{n:0>15}")
}

/// One flow-log record, its fields by name (`None`: absent).
pub type Rec = Vec<(&'static str, Option<String>)>;

/// The fields written, in the plain file's order (v5 plus v8's reject-reason).
pub const FIELDS: [&str; 22] = [
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
    "vpc-id",
    "tcp-flags",
    "type",
    "pkt-srcaddr",
    "pkt-dstaddr",
    "flow-direction",
    "traffic-path",
    "reject-reason",
];

/// `per_hour` records for each hour of the day, in time order: clients reaching each tier,
/// replies, ops access to the db tier (what the revoke breaks), rejects (some by BPA) and
/// NODATA records.
pub fn fleet_day(per_hour: usize, seed: u64) -> Vec<Vec<Rec>> {
    let mut rng = Rng(seed | 1);
    let mut hours = Vec::new();
    for h in 0..24u64 {
        let mut recs = Vec::new();
        for k in 0..per_hour {
            let start = DAY + h * 3600 + (k as u64 * 3600 / per_hour as u64);
            let t = rng.below(4) as usize;
            let n = rng.below(100) as usize;
            let (server, port) = (format!("10.0.{t}.{}", n + 10), TIERS[t].1);
            let kind = rng.below(20);
            let client = match kind {
                0..=3 => format!("10.9.{}.{}", rng.below(4), rng.below(250) + 1),
                _ if t == 0 => format!("198.51.100.{}", rng.below(250) + 1),
                _ => format!("10.0.{}.{}", t - 1, rng.below(100) + 10),
            };
            let sport = (32768 + rng.below(28000)).to_string();
            let packets = 1 + rng.below(50);
            let mut r: Rec = vec![
                ("version", Some("8".into())),
                ("account-id", Some(ACCOUNT.into())),
                ("interface-id", Some(eni(t, n))),
                ("vpc-id", Some("vpc-0fleet00000000001".into())),
                ("type", Some("IPv4".into())),
                ("start", Some(start.to_string())),
                ("end", Some((start + 60).to_string())),
                ("traffic-path", None),
            ];
            if kind == 19 {
                r.extend([
                    ("log-status", Some("NODATA".into())),
                    ("srcaddr", None),
                    ("dstaddr", None),
                    ("srcport", None),
                    ("dstport", None),
                    ("protocol", None),
                    ("packets", None),
                    ("bytes", None),
                    ("action", None),
                    ("tcp-flags", None),
                    ("pkt-srcaddr", None),
                    ("pkt-dstaddr", None),
                    ("flow-direction", None),
                    ("reject-reason", None),
                ]);
            } else {
                let reject = kind == 18;
                let reply = kind == 17;
                let (src, dst, sp, dp, dir) = if reply {
                    (server, client, port.to_string(), sport, "egress")
                } else {
                    (client, server, sport, port.to_string(), "ingress")
                };
                r.extend([
                    ("log-status", Some("OK".into())),
                    ("srcaddr", Some(src.clone())),
                    ("dstaddr", Some(dst.clone())),
                    ("srcport", Some(sp)),
                    ("dstport", Some(dp)),
                    ("protocol", Some("6".into())),
                    ("packets", Some(packets.to_string())),
                    ("bytes", Some((packets * 120).to_string())),
                    (
                        "action",
                        Some(if reject { "REJECT" } else { "ACCEPT" }.into()),
                    ),
                    ("tcp-flags", Some(if reply { "18" } else { "2" }.into())),
                    ("pkt-srcaddr", Some(src)),
                    ("pkt-dstaddr", Some(dst)),
                    ("flow-direction", Some(dir.into())),
                    (
                        "reject-reason",
                        (reject && rng.below(2) == 0).then(|| "BPA".to_string()),
                    ),
                ]);
            }
            recs.push(r);
        }
        hours.push(recs);
    }
    hours
}

pub fn get<'a>(r: &'a Rec, name: &str) -> Option<&'a str> {
    r.iter()
        .find(|(n, _)| *n == name)
        .and_then(|(_, v)| v.as_deref())
}

/// Space-separated lines in `order`, with a header line.
pub fn text(recs: &[Rec], order: &[&str]) -> String {
    let mut s = order.join(" ");
    s.push('\n');
    for r in recs {
        let words: Vec<&str> = order.iter().map(|n| get(r, n).unwrap_or("-")).collect();
        s.push_str(&words.join(" "));
        s.push('\n');
    }
    s
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Athena's types for the columns written (int, bigint or string).
fn athena_int(name: &str) -> Option<bool> {
    match name {
        "version" | "srcport" | "dstport" | "protocol" | "tcp-flags" | "traffic-path" => {
            Some(false)
        }
        "packets" | "bytes" | "start" | "end" => Some(true),
        _ => None,
    }
}

/// A Parquet file with AWS's snake_case columns, row groups of `group` rows.
pub fn parquet(recs: &[Rec], order: &[&str], compression: Compression, group: usize) -> Vec<u8> {
    let mut cols: Vec<(String, ArrayRef)> = Vec::new();
    for name in order {
        let col: ArrayRef = match athena_int(name) {
            Some(false) => Arc::new(Int32Array::from_iter(
                recs.iter()
                    .map(|r| get(r, name).map(|v| v.parse::<i32>().unwrap())),
            )),
            Some(true) => Arc::new(Int64Array::from_iter(
                recs.iter()
                    .map(|r| get(r, name).map(|v| v.parse::<i64>().unwrap())),
            )),
            // AWS writes "-" for absent text fields.
            None => Arc::new(StringArray::from_iter_values(
                recs.iter().map(|r| get(r, name).unwrap_or("-").to_string()),
            )),
        };
        cols.push((name.replace('-', "_"), col));
    }
    let batch = RecordBatch::try_from_iter(cols).unwrap();
    let props = WriterProperties::builder()
        .set_compression(compression)
        .set_max_row_group_row_count(Some(group))
        .build();
    let mut out = Vec::new();
    let mut w = ArrowWriter::try_new(&mut out, batch.schema(), Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    out
}

const COMPRESSIONS: usize = 5;

fn compression(i: usize) -> Compression {
    match i % COMPRESSIONS {
        0 => Compression::SNAPPY,
        1 => Compression::GZIP(GzipLevel::default()),
        2 => Compression::ZSTD(ZstdLevel::default()),
        3 => Compression::LZ4_RAW,
        _ => Compression::UNCOMPRESSED,
    }
}

/// Writes the day three ways under `dir`: `plain.log`, `gz/AWSLogs/…` (hourly gzip, a
/// different field order, one file in two gzip members) and `parquet/AWSLogs/…` (hourly,
/// Hive partitions, several row groups and compressions).
pub fn write_layouts(dir: &Path, day: &[Vec<Rec>]) -> (PathBuf, PathBuf, PathBuf) {
    let all: Vec<Rec> = day.iter().flatten().cloned().collect();
    let plain = dir.join("plain.log");
    std::fs::write(&plain, text(&all, &FIELDS)).unwrap();
    let mut shuffled = FIELDS;
    shuffled.reverse();
    let gz = dir.join("gz");
    let pq = dir.join("parquet");
    for (h, recs) in day.iter().enumerate() {
        let folder = gz.join(format!(
            "AWSLogs/{ACCOUNT}/vpcflowlogs/us-east-1/2026/12/06"
        ));
        std::fs::create_dir_all(&folder).unwrap();
        let name = format!(
            "{ACCOUNT}_vpcflowlogs_us-east-1_fl-0abc_20261206T{h:02}00Z_{:08x}.log.gz",
            h * 7919
        );
        let body = text(recs, &shuffled);
        let bytes = if h == 5 {
            // Two gzip members, as AWS may write: the second starts mid-file.
            let cut = body.len() / 2;
            let cut = body[..cut].rfind('\n').unwrap() + 1;
            let mut b = gzip(&body.as_bytes()[..cut]);
            b.extend(gzip(&body.as_bytes()[cut..]));
            b
        } else {
            gzip(body.as_bytes())
        };
        std::fs::write(folder.join(name), bytes).unwrap();
        let folder = pq.join(format!(
            "AWSLogs/aws-account-id={ACCOUNT}/aws-service=vpcflowlogs/aws-region=us-east-1/year=2026/month=12/day=06/hour={h:02}"
        ));
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(
            folder.join(format!(
                "{ACCOUNT}_vpcflowlogs_us-east-1_fl-0abc_20261206T{h:02}00Z_{:08x}.log.parquet",
                h * 7919
            )),
            parquet(recs, &FIELDS, compression(h), 37 + h),
        )
        .unwrap();
    }
    (plain, gz, pq)
}

/// The JSON report of a what-if, without the clock of the analysis.
pub fn report(state: &Path, revoke: &str, traffic: &Path, extra: &[&str]) -> Value {
    let (code, out, err) = run_whatif(
        state,
        revoke,
        traffic,
        &[&["--output", "json"], extra].concat(),
    );
    assert_eq!(code, 0, "{err}");
    let mut v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    v.as_object_mut().unwrap().remove("analysed_at");
    v
}

/// `sgsim whatif` of `revoke` on `state` and `traffic`, with `extra` flags: (exit code,
/// stdout, stderr).
pub fn run_whatif(
    state: &Path,
    revoke: &str,
    traffic: &Path,
    extra: &[&str],
) -> (i32, String, String) {
    let mut args = vec![
        "whatif",
        "--state",
        state.to_str().unwrap(),
        "--request",
        revoke,
        "--traffic",
        traffic.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    sgsim(&args)
}

/// [`report`] without what differs by nature between layouts: the inputs' names and
/// decode summaries (one file, 24 files, 24 Parquet files).
pub fn whatif(state: &Path, revoke: &str, traffic: &Path, extra: &[&str]) -> Value {
    let mut v = report(state, revoke, traffic, extra);
    v.as_object_mut().unwrap().remove("inputs");
    v
}

#[test]
fn a_fleet_day_as_plain_hourly_gzip_and_hive_parquet_gives_one_whatif() {
    let dir = scratch("fleet");
    let (state, revoke) = fleet_state(&dir);
    let day = fleet_day(120, 7);
    let (plain, gz, pq) = write_layouts(&dir, &day);
    let a = whatif(&state, &revoke, &plain, &[]);
    let b = whatif(&state, &revoke, &gz, &[]);
    let c = whatif(&state, &revoke, &pq, &[]);
    assert!(
        a["changed"]["accept_to_drop"].as_u64().unwrap() > 0,
        "the revoke breaks something: {}",
        a["changed"]
    );
    let agreement = &a["flow_log_agreement"];
    assert!(
        agreement["logged_reject_reasons"]["BPA"].as_u64().unwrap() > 0,
        "{agreement}"
    );
    assert_eq!(a, b, "plain file and hourly gzip differ");
    assert_eq!(a, c, "plain file and hourly Parquet differ");

    // A window: the same on every layout, and smaller than the day.
    let window = [
        "--since",
        "2026-12-06T10:00:00Z",
        "--until",
        "2026-12-06T12:00:00Z",
    ];
    let a2 = whatif(&state, &revoke, &plain, &window);
    let b2 = whatif(&state, &revoke, &gz, &window);
    let c2 = whatif(&state, &revoke, &pq, &window);
    assert_eq!(a2, b2);
    assert_eq!(a2, c2);
    assert!(
        a2["packets"]["judged"].as_u64() < a["packets"]["judged"].as_u64(),
        "{}",
        a2["packets"]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn windows_prune_hive_partitions_and_count_records_outside() {
    let dir = scratch("window");
    let day = fleet_day(20, 3);
    let (_, _, pq) = write_layouts(&dir, &day);
    let (code, out, err) = sgsim(&[
        "packets",
        "--traffic",
        pq.to_str().unwrap(),
        "--since",
        "2026-12-06T10:00:00Z",
        "--until",
        "2026-12-06T12:00:00Z",
    ]);
    assert_eq!(code, 0, "{err}");
    // Hours 10 and 11, and hours 9 and 12 (an hour of slack each side) read.
    assert!(
        err.contains("4 files read, 20 left out by --since/--until"),
        "{err}"
    );
    let n = out.lines().count();
    let since = DAY + 10 * 3600;
    let until = DAY + 12 * 3600;
    let expected = day
        .iter()
        .flatten()
        .filter(|r| get(r, "log-status") == Some("OK"))
        .filter(|r| {
            let start: u64 = get(r, "start").unwrap().parse().unwrap();
            let end: u64 = get(r, "end").unwrap().parse().unwrap();
            end >= since && start < until
        })
        .count();
    assert_eq!(n, expected, "{err}");
    assert!(err.contains("outside --since/--until"), "{err}");
}

#[test]
fn a_folder_skips_files_that_are_not_flow_logs_with_a_warning_and_names_bad_lines() {
    let dir = scratch("folder");
    let logs = dir.join("logs");
    std::fs::create_dir_all(logs.join("sub")).unwrap();
    let day = fleet_day(10, 5);
    std::fs::write(logs.join("a.log"), text(&day[0], &FIELDS)).unwrap();
    let mut bad = text(&day[1], &FIELDS);
    bad.push_str("8 1 eni-x 10.0.0.1 10.0.0.2 1 2\n");
    std::fs::write(logs.join("sub/b.log.gz"), gzip(bad.as_bytes())).unwrap();
    std::fs::write(
        logs.join("README.txt"),
        "These are our flow logs.\n".repeat(100),
    )
    .unwrap();
    std::fs::write(logs.join("zeros.bin"), vec![0u8; 100_000]).unwrap();
    std::fs::write(logs.join(".hidden"), "x").unwrap();
    let (code, out, err) = sgsim(&["packets", "--traffic", logs.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let ok = day[..2]
        .iter()
        .flatten()
        .filter(|r| get(r, "log-status") == Some("OK"))
        .count();
    assert_eq!(out.lines().count(), ok, "{err}");
    assert!(err.contains("README.txt: skipped, not a flow log"), "{err}");
    assert!(
        err.contains("zeros.bin: skipped, neither a capture nor a flow log"),
        "{err}"
    );
    assert!(err.contains("sub/b.log.gz: line 12: 7 fields"), "{err}");
    // Given by name, a file that is not traffic is an error.
    let (code, _, err) = sgsim(&[
        "packets",
        "--traffic",
        logs.join("README.txt").to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("README.txt") && err.contains("not a flow log"),
        "{err}"
    );
}

#[test]
fn alibaba_sls_csv_and_json_lines_read_gzipped() {
    let dir = scratch("aliyun");
    let csv = "__time__,__topic__,version,eni-id,srcaddr,srcport,dstaddr,dstport,protocol,direction,packets,bytes,start,end,log-status,action,tcp-flags\n\
               1718000060,flow_log,1,eni-bp1,203.0.113.5,51514,192.168.1.10,22,6,in,10,840,1718000000,1718000060,OK,ACCEPT,2\n\
               1718000060,flow_log,1,eni-bp1,\"192.168.1.10\",22,203.0.113.5,51514,6,out,10,840,1718000000,1718000060,OK,ACCEPT,18\n";
    std::fs::write(dir.join("sls.csv.gz"), gzip(csv.as_bytes())).unwrap();
    let json = r#"{"eni-id":"eni-bp1","srcaddr":"203.0.113.5","srcport":"51514","dstaddr":"192.168.1.10","dstport":"22","protocol":"6","direction":"in","start":"1718000000","end":"1718000060","log-status":"OK","action":"ACCEPT"}
"#;
    std::fs::write(dir.join("sls.jsonl.gz"), gzip(json.as_bytes())).unwrap();
    let (code, out, err) = sgsim(&["packets", "--traffic", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let recs: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(recs.len(), 3, "{err}");
    assert_eq!(recs[1]["direction"], "egress");
    assert_eq!(recs[2]["eni"], "eni-bp1");
    // Numbered on across files.
    let idx: Vec<u64> = recs.iter().map(|r| r["index"].as_u64().unwrap()).collect();
    assert!(idx.windows(2).all(|w| w[0] < w[1]), "{idx:?}");
}

#[test]
fn parquet_rows_that_cannot_be_used_are_counted_by_row_group_and_row() {
    let dir = scratch("pqbad");
    let mut recs = fleet_day(10, 9).remove(0);
    let bad = (4..8)
        .find(|&i| get(&recs[i], "log-status") == Some("OK"))
        .unwrap();
    recs[bad].retain(|(n, _)| *n != "srcaddr" && *n != "pkt-srcaddr");
    recs[bad].push(("srcaddr", Some("not-an-address".into())));
    recs[bad].push(("pkt-srcaddr", None));
    std::fs::write(
        dir.join("f.parquet"),
        parquet(&recs, &FIELDS, Compression::SNAPPY, 4),
    )
    .unwrap();
    let (code, out, err) = sgsim(&[
        "packets",
        "--traffic",
        dir.join("f.parquet").to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let ok = recs
        .iter()
        .filter(|r| get(r, "log-status") == Some("OK"))
        .count();
    assert_eq!(out.lines().count(), ok - 1, "{err}");
    assert!(
        err.contains(&format!(
            "row {}: row group 1: srcaddr 'not-an-address' is not an IP address",
            bad + 1
        )),
        "{err}"
    );
    // Damaged pages: the row groups they are in are counted, the others read; a damaged
    // footer refuses the file. Never a panic.
    let mut damaged = parquet(&recs, &FIELDS, Compression::SNAPPY, 4);
    // The footer's length is in the 4 bytes before the closing magic; pages come before.
    let n = damaged.len();
    let footer = u32::from_le_bytes(damaged[n - 8..n - 4].try_into().unwrap()) as usize;
    let pages = n - 8 - footer;
    for b in &mut damaged[4..pages / 3] {
        *b = 0xff;
    }
    std::fs::write(dir.join("damaged.parquet"), &damaged).unwrap();
    let (code, out, err) = sgsim(&[
        "packets",
        "--traffic",
        dir.join("damaged.parquet").to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains("unreadable Parquet row group"), "{err}");
    assert!(
        err.contains("damaged.parquet: row 1: row group 0: "),
        "{err}"
    );
    assert!(out.lines().count() < ok - 1, "{err}");
    damaged[n - 8..n - 4].copy_from_slice(&[0xff, 0xff, 0xff, 0x7f]);
    std::fs::write(dir.join("footer.parquet"), &damaged).unwrap();
    let (code, _, err) = sgsim(&[
        "packets",
        "--traffic",
        dir.join("footer.parquet").to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("footer.parquet") && err.contains("Parquet footer"),
        "{err}"
    );
    // Not a flow log: a Parquet file without the columns.
    let other = parquet(&recs, &["version", "account-id"], Compression::SNAPPY, 4);
    std::fs::write(dir.join("other.parquet"), other).unwrap();
    let (code, _, err) = sgsim(&[
        "packets",
        "--traffic",
        dir.join("other.parquet").to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("without a srcaddr column"), "{err}");
}

#[test]
fn regression_zero_filled_200_mb_file_and_dev_zero_refused_in_bounded_memory() {
    let dir = scratch("zeros");
    let zeros = dir.join("zeros.pcap");
    let f = std::fs::File::create(&zeros).unwrap();
    f.set_len(200 << 20).unwrap();
    for input in [zeros.to_str().unwrap(), "/dev/zero"] {
        // 256 MiB of address space at most: a whole-file read would fail with an abort.
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "ulimit -v 262144 && exec \"$0\" packets --traffic '{input}'"
            ))
            .arg(env!("CARGO_BIN_EXE_sgsim"))
            .env("CI", "1")
            .env("RAYON_NUM_THREADS", "2")
            .env("MALLOC_ARENA_MAX", "2")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{input}: {err}");
        assert!(
            err.contains("neither a capture nor a flow log"),
            "{input}: {err}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A build without the DataFusion or Ballista features says which feature a flag needs,
/// before reading anything.
#[cfg(not(feature = "fleet"))]
#[test]
fn scan_flags_name_the_feature_they_need() {
    let dir = scratch("features");
    let recs = fleet_day(2, 1).remove(0);
    let file = dir.join("f.parquet");
    std::fs::write(&file, parquet(&recs, &FIELDS, Compression::SNAPPY, 4)).unwrap();
    let path = file.to_str().unwrap();
    let (code, out, err) = sgsim(&["packets", "--traffic", path, "--scan", "datafusion"]);
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty());
    assert!(err.contains("the `fleet` feature"), "{err}");
    let (code, _, err) = sgsim(&[
        "packets",
        "--traffic",
        path,
        "--cluster",
        "df://127.0.0.1:1",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("the `cluster` feature"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The "N records, D decoded, S skipped" counts of the summary line `sgsim` prints.
fn counts(err: &str) -> (u64, u64, u64) {
    let at = err
        .find(" records, ")
        .unwrap_or_else(|| panic!("no summary: {err}"));
    let head = &err[..at];
    let n = head[head.rfind(' ').unwrap() + 1..].parse().unwrap();
    let rest: Vec<&str> = err[at..].split([' ', ',', '\n']).collect();
    let word = |w: &str| -> u64 {
        let i = rest.iter().position(|x| *x == w).unwrap();
        rest[..i]
            .iter()
            .rev()
            .find(|x| !x.is_empty())
            .unwrap()
            .parse()
            .unwrap()
    };
    (n, word("decoded"), word("skipped"))
}

#[test]
fn regression_short_files_that_are_not_flow_logs_are_named_and_skipped() {
    let dir = scratch("notflow");
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let day = fleet_day(10, 7);
    std::fs::write(logs.join("a.log"), text(&day[0], &FIELDS)).unwrap();
    let others: [(&str, Vec<u8>); 6] = [
        (
            "README.txt",
            b"These are our flow logs.\nAsk ops.\n".to_vec(),
        ),
        ("people.csv", b"name,age\nbob,3\n".to_vec()),
        (
            "state.json",
            b"{\n  \"sgsim_snapshot\": 1,\n  \"groups\": []\n}\n".to_vec(),
        ),
        (
            "app.jsonl",
            "{\"level\":\"info\",\"msg\":\"hello\"}\n"
                .repeat(100)
                .into_bytes(),
        ),
        (
            "short.jsonl",
            "{\"level\":\"info\",\"msg\":\"hello\"}\n"
                .repeat(3)
                .into_bytes(),
        ),
        (
            "other.parquet",
            parquet(&day[0], &["version", "account-id"], Compression::SNAPPY, 4),
        ),
    ];
    for (name, data) in &others {
        std::fs::write(logs.join(name), data).unwrap();
    }
    std::fs::write(logs.join("empty.log"), "").unwrap();
    let (code, out, err) = sgsim(&["packets", "--traffic", logs.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let ok = day[0]
        .iter()
        .filter(|r| get(r, "log-status") == Some("OK"))
        .count();
    assert_eq!(out.lines().count(), ok, "{err}");
    for (name, _) in &others {
        assert!(
            err.contains(&format!("{name}: skipped, not a flow log")),
            "{name}: {err}"
        );
    }
    // Nothing of them counted as records of the log.
    assert!(!err.contains("malformed"), "{err}");
    assert_eq!(counts(&err).0, day[0].len() as u64, "{err}");
    // Given by name, each is an error naming it.
    for (name, _) in &others {
        let (code, out, err) = sgsim(&["packets", "--traffic", logs.join(name).to_str().unwrap()]);
        assert_eq!((code, out.as_str()), (2, ""), "{name}: {err}");
        assert!(
            err.contains(name) && err.contains("not a flow log"),
            "{name}: {err}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn regression_records_outside_the_window_are_skipped_not_also_decoded() {
    let dir = scratch("window-counts");
    let day = fleet_day(10, 11);
    let log = dir.join("day.log");
    std::fs::write(&log, text(&day.concat(), &FIELDS)).unwrap();
    for input in [log.clone(), dir.clone()] {
        let (code, out, err) = sgsim(&[
            "packets",
            "--traffic",
            input.to_str().unwrap(),
            "--since",
            "2026-12-06T10:00:00Z",
            "--until",
            "2026-12-06T12:00:00Z",
        ]);
        assert_eq!(code, 0, "{err}");
        let (records, decoded, skipped) = counts(&err);
        assert_eq!(records, day.concat().len() as u64, "{err}");
        assert_eq!(decoded + skipped, records, "{err}");
        assert_eq!(decoded, out.lines().count() as u64, "{err}");
        assert!(err.contains("outside --since/--until"), "{err}");
    }
    // Every record outside the window, and a malformed line: read, not "unusable".
    let mut bad = text(&day[0], &FIELDS);
    bad.push_str("8 1 eni-x 10.0.0.1 10.0.0.2 1 2\n");
    std::fs::write(&log, bad).unwrap();
    let (code, out, err) = sgsim(&[
        "packets",
        "--traffic",
        log.to_str().unwrap(),
        "--since",
        "2030-01-01",
    ]);
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    let (records, decoded, skipped) = counts(&err);
    assert_eq!((decoded, skipped), (0, records), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn regression_csv_inputs_are_labelled_csv_flow_log() {
    let dir = scratch("csv-kind");
    let csv = "srcaddr,dstaddr,srcport,dstport,protocol,action,log-status\n\
               10.0.0.1,10.0.0.2,40000,443,6,ACCEPT,OK\n";
    std::fs::write(dir.join("sls.csv"), csv).unwrap();
    for input in [dir.join("sls.csv"), dir.clone()] {
        let (code, out, err) = sgsim(&["packets", "--traffic", input.to_str().unwrap()]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(out.lines().count(), 1, "{err}");
        assert!(err.contains("(csv-flow-log)"), "{err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn regression_pqcrash6_71_and_pqcrash7_68_are_counted_without_a_panic_message() {
    for name in [
        "regression-pqcrash6_71.parquet",
        "regression-pqcrash7_68.parquet",
    ] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/flowlogs")
            .join(name);
        let (code, out, err) = sgsim(&["packets", "--traffic", path.to_str().unwrap()]);
        assert_eq!(code, 0, "{name}: {err}");
        assert!(!err.contains("panicked"), "{name}: {err}");
        assert!(
            err.contains("unreadable Parquet row group"),
            "{name}: {err}"
        );
        assert!(err.contains("the Parquet decoder failed"), "{name}: {err}");
        let (records, decoded, skipped) = counts(&err);
        assert_eq!(decoded + skipped, records, "{name}: {err}");
        assert_eq!(out.lines().count() as u64, decoded, "{name}: {err}");
    }
}

/// `--fold plan` in a build without the `fleet` feature, or with synthetic traffic, is a
/// clear error (exit 2), not a silent fall-back to the streaming what-if.
#[test]
fn plan_fold_says_what_it_needs() {
    let dir = scratch("fold-needs");
    let (state, revoke) = fleet_state(&dir);
    let day = fleet_day(20, 3);
    let (_, _, hive) = write_layouts(&dir, &day);
    let base = [
        "whatif",
        "--state",
        state.to_str().unwrap(),
        "--request",
        &revoke,
        "--fold",
        "plan",
    ];
    let (code, _, err) = sgsim(&[&base[..], &["--synthetic", "100"]].concat());
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--synthetic"), "{err}");
    let (code, out, err) = sgsim(&[&base[..], &["--traffic", hive.to_str().unwrap()]].concat());
    if cfg!(feature = "fleet") {
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("connections"), "{out}");
    } else {
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("`fleet` feature"), "{err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A Parquet flow log whose `bytes` column is a float (no row can be used) in four row
/// groups of an hour each from 2026-12-06 00:00 UTC: with a window that leaves three of
/// them unread, it is still refused as no usable flow log (a regression: the rows left
/// unread, counted outside the window, passed for usable ones), by `packets` and by the
/// what-if, streaming or as one plan.
#[test]
fn regression_a_file_of_no_usable_row_is_refused_with_a_window_too() {
    let dir = scratch("unusable-window");
    let day = 1_796_515_200i64;
    let n = 40usize;
    let text = |f: &dyn Fn(usize) -> String| -> ArrayRef {
        Arc::new(StringArray::from_iter_values((0..n).map(f)))
    };
    let int = |f: &dyn Fn(usize) -> i64| -> ArrayRef {
        Arc::new(Int64Array::from_iter_values((0..n).map(f)))
    };
    let batch = RecordBatch::try_from_iter([
        ("interface_id", text(&|_| "eni-0a".to_string())),
        ("srcaddr", text(&|i| format!("10.0.0.{}", i + 1))),
        ("dstaddr", text(&|_| "10.0.1.1".to_string())),
        ("srcport", int(&|i| 40000 + i as i64)),
        ("dstport", int(&|_| 443)),
        ("protocol", int(&|_| 6)),
        (
            "bytes",
            Arc::new(arrow_array::Float64Array::from_iter_values(
                (0..n).map(|i| i as f64),
            )) as ArrayRef,
        ),
        ("start", int(&|i| day + 3600 * (i / 10) as i64)),
        ("end", int(&|i| day + 3600 * (i / 10) as i64 + 60)),
        ("action", text(&|_| "ACCEPT".to_string())),
    ])
    .unwrap();
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(10))
        .build();
    let file = dir.join("flows.parquet");
    let mut w = ArrowWriter::try_new(
        std::fs::File::create(&file).unwrap(),
        batch.schema(),
        Some(props),
    )
    .unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let (state, revoke) = fleet_state(&dir);
    let window = [
        "--since",
        "2026-12-06T01:00:00Z",
        "--until",
        "2026-12-06T02:00:00Z",
    ];
    let f = file.to_str().unwrap();
    let (code, _, err) = sgsim(&[&["packets", "--traffic", f][..], &window[..]].concat());
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not a usable flow log"), "{err}");
    let mut ways: Vec<&[&str]> = vec![&[]];
    if cfg!(feature = "fleet") {
        ways.push(&["--fold", "plan"]);
    }
    for way in ways {
        let (code, _, err) = run_whatif(&state, &revoke, &file, &[&window[..], way].concat());
        assert_eq!(code, 2, "{way:?}: {err}");
        assert!(err.contains("not a usable flow log"), "{way:?}: {err}");
    }
    // A window that leaves every group unread: nothing was looked at, nothing refused.
    let late = ["--since", "2026-12-07T00:00:00Z"];
    let (code, out, err) = sgsim(&[&["packets", "--traffic", f][..], &late[..]].concat());
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
