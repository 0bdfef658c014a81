//! Flow logs at fleet scale on DataFusion (feature `fleet`): `--scan datafusion` reads
//! Parquet with DataFusion's parallel scan and gives the built-in reader's records, counts,
//! messages and what-if report, field for field.

use std::path::Path;

use parquet::basic::Compression;

use super::flowlogs::report;
use super::flowlogs::{
    fleet_day, fleet_state, get, parquet, scratch, sgsim, whatif, write_layouts, Rec, FIELDS,
};

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
    let window = [
        "--since",
        "2026-12-06T10:00:00Z",
        "--until",
        "2026-12-06T12:00:00Z",
    ];
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
    let mut damaged = parquet(&recs, &FIELDS, Compression::SNAPPY, 4);
    let n = damaged.len();
    let footer = u32::from_le_bytes(damaged[n - 8..n - 4].try_into().unwrap()) as usize;
    let pages = n - 8 - footer;
    for b in &mut damaged[4..pages / 3] {
        *b = 0xff;
    }
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
    assert!(
        err.contains("line 1: row group 0: DataFusion scan"),
        "{err}"
    );

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
