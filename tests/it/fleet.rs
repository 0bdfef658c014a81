//! Flow logs at fleet scale on DataFusion (feature `fleet`): `--scan datafusion` reads
//! Parquet with DataFusion's parallel scan and gives the built-in reader's records, counts,
//! messages and what-if report, field for field.

use std::path::Path;

use parquet::basic::Compression;

use super::flowlogs::report;
use super::flowlogs::{
    fleet_day, fleet_state, get, parquet, run_whatif, scratch, sgsim, whatif, write_layouts, Rec,
    FIELDS,
};

/// A window of two hours of [`fleet_day`]'s day.
pub const WINDOW: [&str; 4] = [
    "--since",
    "2026-12-06T10:00:00Z",
    "--until",
    "2026-12-06T12:00:00Z",
];

/// One Parquet file of every record of the day, in many row groups: big enough to be cut
/// into one partition per core.
pub fn big_file(dir: &Path, day: &[Vec<Rec>]) -> std::path::PathBuf {
    let all: Vec<Rec> = day.iter().flatten().cloned().collect();
    let path = dir.join("day.parquet");
    std::fs::write(
        &path,
        parquet(&all, &FIELDS, Compression::UNCOMPRESSED, 997),
    )
    .unwrap();
    assert!(
        std::fs::metadata(&path).unwrap().len() > 3 * sgsim::packet::fleet::MIN_SPLIT as u64 / 2,
        "the file must exceed the split size: {} bytes",
        std::fs::metadata(&path).unwrap().len()
    );
    path
}

#[test]
fn datafusion_scan_gives_the_builtin_report_field_for_field() {
    let dir = scratch("fleet-df");
    let (state, revoke) = fleet_state(&dir);
    let day = fleet_day(1000, 5);
    let (plain, _, hive) = write_layouts(&dir, &day);
    let big = big_file(&dir, &day);
    let window = WINDOW;
    for input in [&hive, &big] {
        for extra in [&[][..], &window[..]] {
            let builtin = report(&state, &revoke, input, extra);
            let mut with = extra.to_vec();
            with.extend(["--scan", "datafusion"]);
            let df = report(&state, &revoke, input, &with);
            assert_eq!(builtin, df, "{} {extra:?}", input.display());
            assert!(
                builtin["changed"]["accept_to_drop"].as_u64().unwrap() > 0,
                "the revoke breaks something: {}",
                builtin["changed"]
            );
        }
    }
    // And the same answer as the plain text file of the day (inputs' names aside).
    assert_eq!(
        whatif(&state, &revoke, &plain, &[]),
        whatif(&state, &revoke, &big, &["--scan", "datafusion"])
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--since/--until` leave the row groups of a Parquet file that lie wholly outside the
/// window unread, alike in the streaming reader, DataFusion's scan and the plan: a
/// malformed row in such a group is counted outside the window by all three (the text file
/// of the day, read whole, counts it malformed), the what-if is the text file's, and a
/// group whose pages are damaged is never decoded.
#[test]
fn row_groups_outside_the_window_are_left_unread_by_every_path() {
    let dir = scratch("fleet-unread");
    let (state, revoke) = fleet_state(&dir);
    // A malformed record in hour 5, far from the window, and one in it (hour 10): its
    // example names its row, numbered as if every group were read.
    let mut day = day_with_a_bad_address(1000, 9, 5);
    spoil_an_address(&mut day[10]);
    let (plain, _, _) = write_layouts(&dir, &day);
    let big = big_file(&dir, &day);
    let window = WINDOW;
    let summary = |v: &serde_json::Value| v["inputs"][0]["summary"].as_str().unwrap().to_string();
    let check = |input: &Path| {
        let stream = report(&state, &revoke, input, &window);
        let df = report(
            &state,
            &revoke,
            input,
            &[&window[..], &["--scan", "datafusion"]].concat(),
        );
        let plan = report(
            &state,
            &revoke,
            input,
            &[&window[..], &["--fold", "plan"]].concat(),
        );
        assert_eq!(stream, df, "--scan datafusion");
        assert_eq!(stream, plan, "--fold plan");
        stream
    };
    let stream = check(&big);
    let s = summary(&stream);
    assert!(s.contains("1  malformed flow-log row"), "{s}");
    assert!(s.contains("outside --since/--until"), "{s}");
    // Read whole, both rows are malformed, the one in the window named as with it.
    let whole = summary(&report(&state, &revoke, &big, &[]));
    assert!(whole.contains("2  malformed flow-log row"), "{whole}");
    let named = |s: &str| -> Vec<String> {
        s.lines()
            .filter(|l| l.contains("not-an-address"))
            .map(|l| l.trim().to_string())
            .collect()
    };
    let (inside, all) = (named(&s), named(&whole));
    assert_eq!((inside.len(), all.len()), (1, 2), "{s}\n{whole}");
    assert_eq!(inside[0], all[1]);
    let text = summary(&report(&state, &revoke, &plain, &window));
    assert!(text.contains("2  malformed flow-log line"), "{text}");
    // The same records are judged: the text file's what-if.
    let judged = |mut v: serde_json::Value| {
        v.as_object_mut().unwrap().remove("inputs");
        v
    };
    assert_eq!(
        judged(stream.clone()),
        whatif(&state, &revoke, &plain, &window)
    );
    // The pages of the row groups before 04:00 overwritten: never decoded with the window.
    let broken = damage_early_groups(&big, &dir.join("damaged"));
    let again = check(&broken);
    assert_eq!(judged(again.clone()), judged(stream));
    let s = summary(&again);
    assert!(!s.contains("unreadable"), "{s}");
    // Read whole, the damaged groups are counted unreadable.
    let whole = summary(&report(&state, &revoke, &broken, &[]));
    assert!(whole.contains("unreadable Parquet row group"), "{whole}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A copy of the Parquet file `file` (of [`big_file`]) in `dir`, the pages of its row
/// groups before 04:00 (its first 4,000 records) overwritten.
pub fn damage_early_groups(file: &Path, dir: &Path) -> std::path::PathBuf {
    let bytes = bytes::Bytes::from(std::fs::read(file).unwrap());
    let reader =
        parquet::file::serialized_reader::SerializedFileReader::new(bytes.clone()).unwrap();
    let meta = parquet::file::reader::FileReader::metadata(&reader).clone();
    let mut damaged = bytes.to_vec();
    let early = (0..meta.num_row_groups())
        .take_while(|&g| {
            let rows: i64 = meta.row_groups()[..=g].iter().map(|r| r.num_rows()).sum();
            rows < 4 * 1000
        })
        .collect::<Vec<_>>();
    assert!(early.len() >= 3, "{early:?}");
    for &g in &early {
        for c in meta.row_group(g).columns() {
            let (at, len) = c.byte_range();
            damaged[at as usize..(at + len) as usize].fill(0xff);
        }
    }
    std::fs::create_dir_all(dir).unwrap();
    let broken = dir.join("day.parquet");
    std::fs::write(&broken, &damaged).unwrap();
    broken
}

/// A Parquet file of `recs` in row groups of 4, its first third of pages overwritten.
fn damaged_parquet(recs: &[Rec]) -> Vec<u8> {
    let mut damaged = parquet(recs, &FIELDS, Compression::SNAPPY, 4);
    let n = damaged.len();
    let footer = u32::from_le_bytes(damaged[n - 8..n - 4].try_into().unwrap()) as usize;
    let pages = n - 8 - footer;
    for b in &mut damaged[4..pages / 3] {
        *b = 0xff;
    }
    damaged
}

/// `--fold plan`: the what-if as one DataFusion plan (the connection fold as the plan's
/// aggregation, over buckets of connections) gives the streaming report field for field,
/// with and without a window and a revoke instant inside the day, on hourly Hive-style
/// files and on one file of many row groups.
#[test]
fn plan_fold_gives_the_streaming_report_field_for_field() {
    let dir = scratch("fleet-fold");
    let (state, revoke) = fleet_state(&dir);
    let day = fleet_day(1000, 5);
    let (plain, _, hive) = write_layouts(&dir, &day);
    let big = big_file(&dir, &day);
    let window = WINDOW;
    let at = ["--at", "2026-12-06T11:00:00Z"];
    for input in [&hive, &big] {
        for extra in [&[][..], &window[..], &at[..]] {
            let stream = report(&state, &revoke, input, extra);
            let mut with = extra.to_vec();
            with.extend(["--fold", "plan"]);
            let plan = report(&state, &revoke, input, &with);
            assert_eq!(stream, plan, "{} {extra:?}", input.display());
            let c = &stream["connections"];
            assert!(c["broken"].as_u64().unwrap() > 0, "{c}");
        }
    }
    // Two inputs, each with its own instant (its first record): the same as streaming.
    let both = ["--traffic", big.to_str().unwrap()];
    assert_eq!(
        report(&state, &revoke, &hive, &both),
        report(
            &state,
            &revoke,
            &hive,
            &[&both[..], &["--fold", "plan"]].concat()
        )
    );
    // A revoke instant inside the day: the plan took it (connections before it are
    // judged by the rules before, so fewer break).
    let inside = report(
        &state,
        &revoke,
        &hive,
        &[&at[..], &["--fold", "plan"]].concat(),
    );
    assert_eq!(
        inside["revoke_at"],
        serde_json::json!(["2026-12-06T11:00:00Z"])
    );
    let whole = report(&state, &revoke, &hive, &["--fold", "plan"]);
    let broken = |v: &serde_json::Value| v["connections"]["broken"].as_u64().unwrap();
    assert!(
        broken(&inside) < broken(&whole),
        "{} {}",
        broken(&inside),
        broken(&whole)
    );
    // And the same answer as the plain text file of the day (inputs' names aside).
    assert_eq!(
        whatif(&state, &revoke, &plain, &[]),
        whatif(&state, &revoke, &hive, &["--fold", "plan"])
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--fold plan` reads text flow logs too (one plain file, hourly gzip files, mixed with
/// Parquet), each file by sgsim's reader in the plan's scan: the streaming report field
/// for field, inputs' kinds and decode summaries included, with and without a window; a
/// malformed line is counted and named as the stream names it; a capture is refused.
#[test]
fn plan_fold_reads_text_flow_logs_as_the_stream_does() {
    let dir = scratch("fleet-fold-text");
    let (state, revoke) = fleet_state(&dir);
    // A malformed record in hour 5 (an address that is none).
    let day = day_with_a_bad_address(400, 9, 5);
    let (plain, gz, hive) = write_layouts(&dir, &day);
    let window = WINDOW;
    let at = ["--at", "2026-12-06T11:00:00Z"];
    for input in [&plain, &gz] {
        for extra in [&[][..], &window[..], &at[..]] {
            let stream = report(&state, &revoke, input, extra);
            let plan = report(
                &state,
                &revoke,
                input,
                &[extra, &["--fold", "plan"][..]].concat(),
            );
            assert_eq!(stream, plan, "{} {extra:?}", input.display());
            assert!(
                stream["connections"]["broken"].as_u64().unwrap() > 0,
                "{}",
                stream["connections"]
            );
        }
    }
    let p = report(&state, &revoke, &gz, &["--fold", "plan"]);
    let summary = p["inputs"][0]["summary"].as_str().unwrap();
    assert!(
        summary.contains("1  malformed flow-log line") && summary.contains("not-an-address"),
        "{summary}"
    );
    assert_eq!(p["inputs"][0]["kind"], "aws-flow-log");
    // Text and Parquet in one folder: one input, read in the stream's order.
    let mixed = dir.join("mixed");
    std::fs::create_dir_all(&mixed).unwrap();
    // Even hours as gzip text, odd hours as Parquet, named in time order.
    let (texts, parquets) = (walk(&gz), walk(&hive));
    assert_eq!((texts.len(), parquets.len()), (24, 24));
    for h in 0..24 {
        let (from, to) = if h % 2 == 0 {
            (&texts[h], format!("h{h:02}.log.gz"))
        } else {
            (&parquets[h], format!("h{h:02}.parquet"))
        };
        std::fs::copy(from, mixed.join(to)).unwrap();
    }
    let stream = report(&state, &revoke, &mixed, &[]);
    assert_eq!(stream, report(&state, &revoke, &mixed, &["--fold", "plan"]));
    assert_eq!(stream["inputs"][0]["kind"], "mixed");
    // Regressions from a review: files left out are warned about in file order (a
    // Parquet file that is no flow log before a text file that is no traffic), and a text
    // file whose name is not UTF-8 is read.
    let odd = dir.join("odd");
    std::fs::create_dir_all(&odd).unwrap();
    let other = parquet(&day[0], &["version", "account-id"], Compression::SNAPPY, 4);
    std::fs::write(odd.join("a_other.parquet"), other).unwrap();
    std::fs::write(odd.join("b.txt"), "hello there, not a log\n").unwrap();
    std::fs::copy(&texts[3], odd.join("c.log.gz")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let name = std::ffi::OsStr::from_bytes(b"d\xff.log.gz");
        std::fs::copy(&texts[4], odd.join(name)).unwrap();
    }
    let stream = report(&state, &revoke, &odd, &[]);
    assert_eq!(stream, report(&state, &revoke, &odd, &["--fold", "plan"]));
    let warnings = stream["warnings"].to_string();
    assert!(
        warnings.contains("a_other.parquet")
            && warnings.find("a_other.parquet") < warnings.find("b.txt")
            && warnings.contains("b.txt"),
        "{warnings}"
    );
    // A capture is refused by name.
    let pcap = dir.join("trace.pcap");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/pcaps/802.1ad_QinQ.pcap"),
        &pcap,
    )
    .unwrap();
    let (code, _, err) = run_whatif(&state, &revoke, &pcap, &["--fold", "plan"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("trace.pcap") && err.contains("--fold stream"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A day of `per_hour` records an hour (`seed`) whose hour `hour` holds one record with
/// an address that is none (`not-an-address`, no packet address).
fn day_with_a_bad_address(per_hour: usize, seed: u64, hour: usize) -> Vec<Vec<Rec>> {
    let mut day = fleet_day(per_hour, seed);
    spoil_an_address(&mut day[hour]);
    day
}

/// Makes the first `OK` record among the 10th to 40th of `recs` malformed (a source
/// address that is none).
fn spoil_an_address(recs: &mut [Rec]) {
    let bad = (10..40)
        .find(|&i| get(&recs[i], "log-status") == Some("OK"))
        .unwrap();
    recs[bad].retain(|(n, _)| *n != "srcaddr" && *n != "pkt-srcaddr");
    recs[bad].push(("srcaddr", Some("not-an-address".into())));
    recs[bad].push(("pkt-srcaddr", None));
}

/// Every file under `dir`, in path order.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// `--fold plan` cut into many small buckets (`--bucket-records`), or folded in several
/// passes over the files (`--pass-records`): the streaming report field for field,
/// whatever the number of buckets or passes; a count it cannot take is refused by flag.
#[test]
fn plan_fold_in_many_buckets_gives_the_streaming_report() {
    let dir = scratch("fleet-buckets");
    let (state, revoke) = fleet_state(&dir);
    let day = fleet_day(1000, 7);
    let (_, gz, hive) = write_layouts(&dir, &day);
    for input in [&hive, &gz] {
        let stream = report(&state, &revoke, input, &[]);
        for (flag, per) in [
            ("--bucket-records", "500"),
            ("--bucket-records", "7000"),
            ("--pass-records", "3000"),
            ("--pass-records", "9000"),
        ] {
            let plan = report(&state, &revoke, input, &["--fold", "plan", flag, per]);
            assert_eq!(stream, plan, "{} {flag} {per}", input.display());
        }
    }
    for flag in ["--bucket-records", "--pass-records"] {
        for bad in ["0", "lots", "1.5"] {
            let (code, _, err) = run_whatif(&state, &revoke, &hive, &["--fold", "plan", flag, bad]);
            assert_eq!(code, 2, "{bad}: {err}");
            assert!(err.contains(flag), "{err}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `sgsim bench --flowlogs … --pass-records N` times the plan in several passes, says how
/// many, and checks its report against the streaming one.
#[test]
fn bench_times_the_plan_in_passes() {
    let dir = scratch("fleet-bench-passes");
    let (state, revoke) = fleet_state(&dir);
    let day = fleet_day(500, 3);
    let (_, _, hive) = write_layouts(&dir, &day);
    let (code, out, err) = sgsim(&[
        "bench",
        "--flowlogs",
        hive.to_str().unwrap(),
        "--state",
        state.to_str().unwrap(),
        "--request",
        &revoke,
        "--repeat",
        "1",
        "--pass-records",
        "4000",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let plan = &v["scans"]["plan"];
    // 12,000 rows (the footers' count) in passes of about 4,000.
    assert_eq!(plan["passes"], 3, "{v}");
    assert_eq!(plan["report_identical_to_stream"], true, "{v}");
    assert!(v["workload"]["records"].as_u64().unwrap() > 10_000, "{v}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--fold plan` on bad input: a malformed row is counted as the streaming reader counts
/// it (its example names the file and row), a Parquet file that is no flow log is left out
/// of a folder with a warning and refused by name, and a damaged file is an error naming
/// the input, never a panic.
#[test]
fn plan_fold_counts_bad_rows_and_refuses_what_it_cannot_read() {
    let dir = scratch("fleet-fold-bad");
    let (state, revoke) = fleet_state(&dir);
    let day = day_with_a_bad_address(200, 11, 3);
    let (_, _, hive) = write_layouts(&dir, &day);
    let stream = report(&state, &revoke, &hive, &[]);
    let plan = report(&state, &revoke, &hive, &["--fold", "plan"]);
    let summary = |v: &serde_json::Value| v["inputs"][0]["summary"].as_str().unwrap().to_string();
    let (s, p) = (summary(&stream), summary(&plan));
    // The same counts by reason; the example names the file and the row.
    let counts = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| !l.trim_start().contains(".parquet:"))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(counts(&s), counts(&p), "{s}\n---\n{p}");
    assert!(p.contains("malformed flow-log row"), "{p}");
    assert!(
        p.contains("T0300Z") && p.contains("is not an IP address"),
        "{p}"
    );
    // The example names the row group too, as the streaming reader does: the whole
    // report is the same.
    assert!(p.contains(": row group 0: srcaddr"), "{p}");
    assert_eq!(stream, plan);

    // A Parquet file of another schema in the folder: left out with a warning.
    let other = parquet(&day[0], &["version", "account-id"], Compression::SNAPPY, 4);
    let stray = hive.join("notes.parquet");
    std::fs::write(&stray, other).unwrap();
    let plan = report(&state, &revoke, &hive, &["--fold", "plan"]);
    let warnings = plan["warnings"].to_string();
    assert!(
        warnings.contains("notes.parquet") && warnings.contains("srcaddr"),
        "{warnings}"
    );
    // Given by name, it is refused.
    let args = |t: &Path| {
        vec![
            "whatif".to_string(),
            "--state".into(),
            state.to_str().unwrap().into(),
            "--request".into(),
            revoke.clone(),
            "--traffic".into(),
            t.to_str().unwrap().into(),
            "--fold".into(),
            "plan".into(),
        ]
    };
    let run = |t: &Path| {
        let a = args(t);
        sgsim(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let (code, _, err) = run(&stray);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("notes.parquet") && err.contains("srcaddr"),
        "{err}"
    );
    std::fs::remove_file(&stray).unwrap();

    // A damaged file: an error naming the input, no panic.
    let recs = &day[1];
    let damaged = damaged_parquet(recs);
    let file = dir.join("damaged.parquet");
    std::fs::write(&file, &damaged).unwrap();
    let (code, _, err) = run(&file);
    assert_eq!(code, 2, "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.contains("damaged.parquet") && err.contains("plan"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `rec` with `fields` set to the values given.
fn with(rec: &Rec, fields: &[(&'static str, &str)]) -> Rec {
    let mut r = rec.clone();
    for (name, value) in fields {
        r.retain(|(n, _)| n != name);
        r.push((name, Some(value.to_string())));
    }
    r
}

/// Bugs a review of `--fold plan` found, each compared with the streaming path:
/// - a file name with glob characters (`a[1].parquet`) was read as empty;
/// - files whose integer columns differ in type (Int64, UInt64) failed the whole input,
///   and a float column failed it where the stream counts the rows unreadable;
/// - a marker file (`_SUCCESS`) in a folder failed the plan;
/// - a flow-log record up to a few minutes behind the latest one opened a new connection
///   in the stream (swept on the chunk's clock) and continued it in the plan.
#[test]
fn regression_plan_fold_reads_what_the_stream_reads() {
    use datafusion::arrow::array::RecordBatch;
    use datafusion::arrow::datatypes::DataType;
    let dir = scratch("fleet-fold-review");
    let (state, revoke) = fleet_state(&dir);
    let day = fleet_day(100, 21);
    let same = |input: &Path, ignore: &[&str]| {
        let mut s = report(&state, &revoke, input, &[]);
        let mut p = report(&state, &revoke, input, &["--fold", "plan"]);
        for k in ignore {
            s.as_object_mut().unwrap().remove(*k);
            p.as_object_mut().unwrap().remove(*k);
        }
        assert_eq!(s, p, "{}", input.display());
        s
    };
    // Glob characters in a file's name.
    let g = dir.join("g");
    std::fs::create_dir_all(&g).unwrap();
    std::fs::write(
        g.join("a[1].parquet"),
        parquet(&day[0], &FIELDS, Compression::SNAPPY, 50),
    )
    .unwrap();
    let s = same(&g.join("a[1].parquet"), &[]);
    assert!(
        s["packets"]["judged"].as_u64().unwrap() > 0,
        "{}",
        s["inputs"]
    );
    same(&g, &[]);

    // One file with `bytes` as UInt64, one as Int64, one as Float64; a marker file.
    let m = dir.join("mixed");
    std::fs::create_dir_all(&m).unwrap();
    let retyped = |recs: &[Rec], to: &DataType| {
        let bytes = parquet(recs, &FIELDS, Compression::SNAPPY, 50);
        let reader = ::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            bytes::Bytes::from(bytes),
        )
        .unwrap()
        .build()
        .unwrap();
        let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
        let batch =
            datafusion::arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
        let i = batch.schema().index_of("bytes").unwrap();
        let mut cols = batch.columns().to_vec();
        cols[i] = datafusion::arrow::compute::cast(&cols[i], to).unwrap();
        let mut fields: Vec<_> = batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields[i] = fields[i].clone().with_data_type(to.clone());
        let schema = std::sync::Arc::new(datafusion::arrow::datatypes::Schema::new(fields));
        let batch = RecordBatch::try_new(schema.clone(), cols).unwrap();
        let mut out = Vec::new();
        let mut w = ::parquet::arrow::ArrowWriter::try_new(&mut out, schema, None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        out
    };
    std::fs::write(
        m.join("h00.parquet"),
        parquet(&day[1], &FIELDS, Compression::SNAPPY, 50),
    )
    .unwrap();
    std::fs::write(m.join("h01.parquet"), retyped(&day[2], &DataType::UInt64)).unwrap();
    std::fs::write(m.join("_SUCCESS"), b"").unwrap();
    // The marker is read as the stream reads it (an empty flow log): the same report,
    // inputs and warnings included.
    let s = same(&m, &[]);
    assert!(s["packets"]["judged"].as_u64().unwrap() > 0);
    let f = dir.join("float");
    std::fs::create_dir_all(&f).unwrap();
    std::fs::write(
        f.join("h00.parquet"),
        parquet(&day[3], &FIELDS, Compression::SNAPPY, 50),
    )
    .unwrap();
    std::fs::write(f.join("h01.parquet"), retyped(&day[4], &DataType::Float64)).unwrap();
    // The same counts; the example names the row, not the row group.
    // The same report: one example per unreadable row group, named as the stream names it.
    let s = same(&f, &[]);
    let summary = s["inputs"][0]["summary"].as_str().unwrap();
    assert!(
        summary.contains("100  unreadable Parquet row group")
            && summary.contains("h01.parquet: row 1: row group 0: column bytes has type Float64"),
        "{summary}"
    );

    // A UDP flow at 100-160 s, 70,000 later records starting at 195 s, then the flow again
    // at 170 s: 10 s after it was last seen (UDP times out after 30 s), 25 s behind the
    // latest record. One connection, in both paths.
    let t0: u64 = 1_796_515_200;
    let base = day[0]
        .iter()
        .find(|r| get(r, "log-status") == Some("OK"))
        .unwrap();
    let udp = |start: u64| {
        with(
            base,
            &[
                ("protocol", "17"),
                ("srcport", "5353"),
                ("dstport", "5354"),
                ("tcp-flags", "0"),
                ("start", &(t0 + start).to_string()),
            ],
        )
    };
    let mut recs = vec![with(&udp(100), &[("end", &(t0 + 160).to_string())])];
    for k in 0..70_000u32 {
        recs.push(with(
            base,
            &[
                ("srcport", &(1024 + k % 60000).to_string()),
                ("start", &(t0 + 195).to_string()),
                ("end", &(t0 + 200).to_string()),
            ],
        ));
    }
    recs.push(with(&udp(170), &[("end", &(t0 + 175).to_string())]));
    let o = dir.join("order.parquet");
    std::fs::write(&o, parquet(&recs, &FIELDS, Compression::SNAPPY, 8192)).unwrap();
    same(&o, &[]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn datafusion_scan_lists_the_same_records_and_messages() {
    let dir = scratch("fleet-df-records");
    let mut day = fleet_day(1000, 8);
    // A row that cannot be used, in the middle of the file.
    let hour = &mut day[12];
    let bad = (40..80)
        .find(|&i| get(&hour[i], "log-status") == Some("OK"))
        .unwrap();
    hour[bad].retain(|(n, _)| *n != "srcaddr" && *n != "pkt-srcaddr");
    hour[bad].push(("srcaddr", Some("not-an-address".into())));
    hour[bad].push(("pkt-srcaddr", None));
    let big = big_file(&dir, &day);
    let path = big.to_str().unwrap();
    let builtin = sgsim(&["packets", "--traffic", path]);
    let df = sgsim(&["packets", "--traffic", path, "--scan", "datafusion"]);
    assert_eq!(builtin.0, 0, "{}", builtin.2);
    assert!(builtin.2.contains("is not an IP address"), "{}", builtin.2);
    assert_eq!(builtin, df);
    let ok = day
        .iter()
        .flatten()
        .filter(|r| get(r, "log-status") == Some("OK"))
        .count();
    assert_eq!(df.1.lines().count(), ok - 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn datafusion_scan_counts_damaged_row_groups_and_refuses_what_is_not_a_flow_log() {
    let dir = scratch("fleet-df-bad");
    let recs = fleet_day(10, 9).remove(0);
    let ok = recs
        .iter()
        .filter(|r| get(r, "log-status") == Some("OK"))
        .count();
    let mut damaged = damaged_parquet(&recs);
    let n = damaged.len();
    let file = dir.join("damaged.parquet");
    std::fs::write(&file, &damaged).unwrap();
    let scan = ["--scan", "datafusion"];
    let (code, out, err) =
        sgsim(&[&["packets", "--traffic", file.to_str().unwrap()][..], &scan].concat());
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains("unreadable Parquet row group"), "{err}");
    assert!(err.contains("DataFusion scan"), "{err}");
    assert!(out.lines().count() < ok, "{err}");
    // The row-group reader took over after the damaged row group: the same records.
    let (_, builtin, _) = sgsim(&["packets", "--traffic", file.to_str().unwrap()]);
    assert_eq!(out, builtin);
    // Strict: the damage is an error naming the file and row.
    let (code, _, err) = sgsim(
        &[
            &["packets", "--strict", "--traffic", file.to_str().unwrap()][..],
            &scan,
        ]
        .concat(),
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("row 1: row group 0: DataFusion scan"), "{err}");

    damaged[n - 8..n - 4].copy_from_slice(&[0xff, 0xff, 0xff, 0x7f]);
    let file = dir.join("footer.parquet");
    std::fs::write(&file, &damaged).unwrap();
    let (code, _, err) =
        sgsim(&[&["packets", "--traffic", file.to_str().unwrap()][..], &scan].concat());
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("Parquet footer"), "{err}");

    let other = parquet(&recs, &["version", "account-id"], Compression::SNAPPY, 4);
    let file = dir.join("other.parquet");
    std::fs::write(&file, other).unwrap();
    let (code, _, err) =
        sgsim(&[&["packets", "--traffic", file.to_str().unwrap()][..], &scan].concat());
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("without a srcaddr column"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// One record's fields and its verdicts, as `sgsim query` prints them from `judged`.
pub type Judged = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    [Option<String>; 4],
);

/// The query that lists every record of `judged` with its verdicts.
/// (The rows the readers skip, NODATA and SKIPDATA, are left out; the packet addresses
/// stand for the interface's where they are logged, as the readers take them.)
pub const EVERY_RECORD: &str = "SELECT interface_id, \
     COALESCE(NULLIF(pkt_srcaddr, '-'), srcaddr) AS srcaddr, \
     COALESCE(NULLIF(pkt_dstaddr, '-'), dstaddr) AS dstaddr, \
     CAST(srcport AS VARCHAR) AS sp, CAST(dstport AS VARCHAR) AS dp, \
     CAST(protocol AS VARCHAR) AS proto, CAST(start AS VARCHAR) AS st, \
     verdict_before, rule_before, verdict_after, rule_after FROM judged \
     WHERE (log_status IS DISTINCT FROM 'NODATA') AND (log_status IS DISTINCT FROM 'SKIPDATA')";

/// Runs `sgsim query --state STATE [--request REVOKE] --traffic TRAFFIC EXTRA…`.
pub fn run_query(
    state: &Path,
    revoke: Option<&str>,
    traffic: &Path,
    extra: &[&str],
) -> (i32, String, String) {
    let mut args = vec!["query", "--state", state.to_str().unwrap()];
    if let Some(r) = revoke {
        args.extend(["--request", r]);
    }
    args.extend(["--traffic", traffic.to_str().unwrap()]);
    args.extend(extra);
    sgsim(&args)
}

/// The JSON answer of `sql` (which must succeed).
pub fn query(
    state: &Path,
    revoke: &str,
    traffic: &Path,
    sql: &str,
    extra: &[&str],
) -> serde_json::Value {
    let mut args = vec!["--sql", sql, "--output", "json"];
    args.extend(extra);
    let (code, out, err) = run_query(state, Some(revoke), traffic, &args);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap()
}

pub fn judged_rows(v: &serde_json::Value) -> Vec<Judged> {
    let s = |r: &serde_json::Value, k: &str| r[k].as_str().map(str::to_string);
    let mut rows: Vec<Judged> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                s(r, "interface_id").unwrap_or_default(),
                s(r, "srcaddr").unwrap(),
                s(r, "dstaddr").unwrap(),
                s(r, "sp").unwrap_or_else(|| "0".into()),
                s(r, "dp").unwrap_or_else(|| "0".into()),
                s(r, "proto").unwrap(),
                s(r, "st").unwrap(),
                [
                    s(r, "verdict_before"),
                    s(r, "rule_before"),
                    s(r, "verdict_after"),
                    s(r, "rule_after"),
                ],
            )
        })
        .collect();
    rows.sort();
    rows
}

/// The oracle: every record of `file` judged by the reference engine (the linear scan)
/// on its own, before and after the revoke, as `sgsim eval --stateless` judges it.
fn reference_rows(
    state: &Path,
    revoke: &str,
    file: &Path,
    window: sgsim::packet::input::Window,
) -> Vec<Judged> {
    use sgsim::classify::reference::Reference;
    use sgsim::compile::Table;
    use sgsim::packet::Item;
    use sgsim::track::{Config, Evaluator};
    let before = sgsim::provider::import_paths(&[state]).unwrap().state;
    let request = sgsim::provider::RawRequest::parse(revoke).unwrap();
    let outcome = sgsim::provider::revoke(&before, &request).unwrap();
    assert!(outcome.error.is_none() && !outcome.revoked.is_empty());
    let after = outcome.state;
    let records: Vec<sgsim::packet::Record> =
        sgsim::packet::parquet::open_file(std::fs::File::open(file).unwrap())
            .unwrap()
            .map(Result::unwrap)
            .filter(|r| window.meets(r.start, r.end))
            .collect();
    let items: Vec<Item> = records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut r = r.clone();
            r.index = i as u64;
            Item::Flow(Box::new(r))
        })
        .collect();
    let mut verdicts = vec![[None, None, None, None]; items.len()];
    for (w, state) in [&before, &after].into_iter().enumerate() {
        let table = Table::new(state).unwrap();
        let oracle = Reference::new(state).unwrap();
        let mut config = Config::default();
        config.partitions = 1;
        config.stateless = true;
        let mut eval = Evaluator::with_engine(&oracle, &table, state, config).unwrap();
        for o in eval.eval(&items) {
            let rule = o
                .rule()
                .map(|r| sgsim::classify::Engine::rule_id(&oracle, r).to_string());
            verdicts[o.index as usize][2 * w] = Some(o.action().as_str().to_string());
            verdicts[o.index as usize][2 * w + 1] = rule;
        }
    }
    let mut rows: Vec<Judged> = records
        .iter()
        .zip(verdicts)
        .map(|(r, v)| {
            let h = r.header;
            (
                r.eni.as_ref().map(|e| e.to_string()).unwrap_or_default(),
                h.src().to_string(),
                h.dst().to_string(),
                h.src_port().to_string(),
                h.dst_port().to_string(),
                h.protocol().to_string(),
                r.start.to_string(),
                v,
            )
        })
        .collect();
    rows.sort();
    rows
}

#[test]
fn query_verdict_functions_agree_with_the_reference_engine_on_every_record() {
    let dir = scratch("fleet-sql");
    let (state, revoke) = fleet_state(&dir);
    let day = fleet_day(1000, 11);
    let big = big_file(&dir, &day);
    let window = sgsim::packet::input::Window {
        since: Some(sgsim::packet::input::parse_time("2026-12-06T10:00:00Z").unwrap()),
        until: Some(sgsim::packet::input::parse_time("2026-12-06T12:00:00Z").unwrap()),
    };
    for (extra, w) in [
        (&[][..], sgsim::packet::input::Window::default()),
        (
            &[
                "--since",
                "2026-12-06T10:00:00Z",
                "--until",
                "2026-12-06T12:00:00Z",
            ][..],
            window,
        ),
    ] {
        let got = judged_rows(&query(&state, &revoke, &big, EVERY_RECORD, extra));
        let want = reference_rows(&state, &revoke, &big, w);
        assert_eq!(got.len(), want.len(), "{extra:?}");
        let changed = want.iter().filter(|r| r.7[0] != r.7[2]).count();
        assert!(changed > 0, "the revoke changes some record's verdict");
        assert!(
            want.iter().any(|r| r.7[1].is_some()),
            "rules decide some records"
        );
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g, w, "{extra:?}");
        }
    }
}

#[test]
fn query_default_lists_the_changes_by_service_and_counts_them_right() {
    let dir = scratch("fleet-sql-changes");
    let (state, revoke) = fleet_state(&dir);
    let day = fleet_day(300, 12);
    let (_, _, hive) = write_layouts(&dir, &day);
    let (code, out, err) = run_query(&state, Some(&revoke), &hive, &["--output", "json"]);
    assert_eq!(code, 0, "{err}");
    // Keys in the query's column order.
    assert!(out.starts_with("[\n  {\"interface_id\": "), "{out}");
    let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
    let rows = rows.as_array().unwrap();
    assert!(!rows.is_empty());
    let listed: u64 = rows.iter().map(|r| r["records"].as_u64().unwrap()).sum();
    // Every record whose verdict changes, counted once: the same total as the per-record
    // query's.
    let every = query(&state, &revoke, &hive, EVERY_RECORD, &[]);
    let changed = judged_rows(&every)
        .iter()
        .filter(|r| r.7[0] != r.7[2])
        .count() as u64;
    assert_eq!(listed, changed);
    assert!(rows
        .windows(2)
        .all(|w| w[0]["records"].as_u64() >= w[1]["records"].as_u64()));
    for r in rows {
        assert_ne!(r["verdict_before"], r["verdict_after"]);
    }
    // Text output names the columns and counts the rows.
    let (code, text, err) = run_query(&state, Some(&revoke), &hive, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(text.starts_with("interface_id"), "{text}");
    assert!(
        text.ends_with(&format!("({} rows)\n", rows.len())),
        "{text}"
    );
}

#[test]
fn query_refuses_what_it_cannot_run_with_a_clear_error() {
    let dir = scratch("fleet-sql-bad");
    let (state, revoke) = fleet_state(&dir);
    let day = fleet_day(20, 13);
    let big = dir.join("small.parquet");
    let all: Vec<Rec> = day.iter().flatten().cloned().collect();
    std::fs::write(&big, parquet(&all, &FIELDS, Compression::SNAPPY, 100)).unwrap();
    // A query naming a column the logs lack.
    let (code, _, err) = run_query(
        &state,
        Some(&revoke),
        &big,
        &["--sql", "SELECT nope FROM judged"],
    );
    assert_ne!(code, 0);
    assert!(err.contains("nope"), "{err}");
    // No --request: only the `_before` functions, and a query is needed.
    let (code, _, err) = run_query(&state, None, &big, &[]);
    assert_ne!(code, 0);
    assert!(err.contains("--sql"), "{err}");
    let count = "SELECT count(*) AS n FROM judged WHERE verdict_before IS NOT NULL";
    let (code, out, err) = run_query(&state, None, &big, &["--sql", count, "--output", "json"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"n\""), "{out}");
    let after = ["--sql", "SELECT verdict_after FROM judged"];
    let (code, _, err) = run_query(&state, None, &big, &after);
    assert_ne!(code, 0);
    assert!(err.contains("verdict_after"), "{err}");
    // A revoke the API refuses changes nothing and says so.
    let refused =
        "Action=RevokeSecurityGroupIngress&GroupId=sg-0nope&SecurityGroupRuleId.1=sgr-0nope";
    let (code, _, err) = run_query(&state, Some(refused), &big, &[]);
    assert_ne!(code, 0);
    assert!(err.contains("refuses"), "{err}");
    // Not a Parquet file: named and left out, and then nothing to query.
    let text = dir.join("plain.log");
    std::fs::write(&text, "version srcaddr\n2 10.0.0.1\n").unwrap();
    let (code, _, err) = run_query(&state, Some(&revoke), &text, &[]);
    assert_ne!(code, 0);
    assert!(
        err.contains("plain.log") && err.contains("not a Parquet"),
        "{err}"
    );
}

#[test]
fn query_output_escapes_control_characters_from_the_logs() {
    let dir = scratch("fleet-sql-escape");
    let (state, revoke) = fleet_state(&dir);
    let mut recs: Vec<Rec> = fleet_day(5, 14).into_iter().flatten().collect();
    // A CSI (C1), an ESC (C0) and a DEL in a logged value: none may reach a terminal raw.
    for (name, value) in &mut recs[0] {
        if *name == "interface-id" {
            *value = Some("eni-\u{9b}2J\u{1b}[31m\u{7f}x".into());
        }
    }
    let file = dir.join("odd.parquet");
    std::fs::write(&file, parquet(&recs, &FIELDS, Compression::SNAPPY, 100)).unwrap();
    let raw = |text: &str| text.chars().any(|c| matches!(c as u32, 0x1b | 0x7f | 0x9b));
    let sql = "SELECT interface_id FROM flows WHERE interface_id LIKE 'eni-%x'";
    for output in ["json", "text"] {
        let extra = ["--sql", sql, "--output", output];
        let (code, out, err) = run_query(&state, Some(&revoke), &file, &extra);
        assert_eq!(code, 0, "{err}");
        assert!(!raw(&out), "{output}: {out:?}");
        assert!(out.contains("eni-"), "{output}: {out:?}");
    }
    // The JSON still means the same value.
    let v = query(&state, &revoke, &file, sql, &[]);
    assert_eq!(v[0]["interface_id"], "eni-\u{9b}2J\u{1b}[31m\u{7f}x");
}

/// Integer columns of a dictionary type (a writer's Arrow schema may keep `start` so) are
/// read alike by the streaming reader, DataFusion's scan and the plan (a regression: the
/// streaming reader refused the file as no usable flow log, the plan judged it).
#[test]
fn regression_dictionary_integer_columns_are_read_alike_by_every_path() {
    use arrow_array::{Array, DictionaryArray, Int32Array, RecordBatch};
    let dir = scratch("fleet-dict-int");
    let (state, revoke) = fleet_state(&dir);
    let day = fleet_day(60, 3);
    let all: Vec<Rec> = day.iter().flatten().cloned().collect();
    let plain = dir.join("plain.parquet");
    std::fs::write(&plain, parquet(&all, &FIELDS, Compression::SNAPPY, 500)).unwrap();
    // The same rows, `start` a dictionary of its values.
    let file = std::fs::File::open(&plain).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
    let dict = dir.join("dict.parquet");
    let mut writer = None;
    for b in &batches {
        let c = b.schema().index_of("start").unwrap();
        let values = b.column(c).clone();
        let keys = Int32Array::from_iter_values(0..values.len() as i32);
        let start =
            DictionaryArray::<arrow_array::types::Int32Type>::try_new(keys, values).unwrap();
        let mut columns = b.columns().to_vec();
        columns[c] = std::sync::Arc::new(start);
        let mut fields: Vec<_> = b
            .schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields[c] = fields[c]
            .clone()
            .with_data_type(columns[c].data_type().clone());
        let schema = std::sync::Arc::new(arrow_schema::Schema::new(fields));
        let b = RecordBatch::try_new(schema.clone(), columns).unwrap();
        let w = writer.get_or_insert_with(|| {
            parquet::arrow::ArrowWriter::try_new(
                std::fs::File::create(&dict).unwrap(),
                schema,
                None,
            )
            .unwrap()
        });
        w.write(&b).unwrap();
    }
    writer.unwrap().close().unwrap();
    let expected = whatif(&state, &revoke, &plain, &[]);
    for way in [&[][..], &["--scan", "datafusion"], &["--fold", "plan"]] {
        assert_eq!(whatif(&state, &revoke, &dict, way), expected, "{way:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
