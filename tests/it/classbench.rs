//! ClassBench: the bundled 1k sets against their independent first-match files, and bad input.

use std::path::{Path, PathBuf};
use std::process::Command;

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/classbench")
        .join(name)
}

fn sgsim(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sgsim"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn summary(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[test]
fn first_match_equals_the_independent_scan_on_every_bundled_set() {
    // Every index: the compiler's choice (cross-product tables: the sets are searched
    // alone and fit their budget) on one and two threads, trees, tables, and tables with
    // the split tail.
    let runs = [
        ("auto", "1", 1),
        ("auto", "2", 1),
        ("trees", "1", 0),
        ("tables", "1", 1),
        ("split", "1", 1),
    ];
    for set in ["acl1_1k", "fw1_1k", "ipc1_1k"] {
        for (index, threads, tables) in runs {
            let (code, out, err) = sgsim(&[
                "classbench",
                "--filters",
                data(set).to_str().unwrap(),
                "--trace",
                data(&format!("{set}_trace.xz")).to_str().unwrap(),
                "--expect",
                data(&format!("{set}_trace.firstmatch.xz"))
                    .to_str()
                    .unwrap(),
                "--threads",
                threads,
                "--repeat",
                "1",
                "--index",
                index,
            ]);
            assert_eq!(code, 0, "{set}: {err}");
            let s = summary(&out);
            assert_eq!(s["mismatches"], 0, "{set} {index} threads={threads}: {out}");
            assert_eq!(
                s["index"]["cross_product_tables"], tables,
                "{set} {index}: {out}"
            );
            assert_eq!(
                s["index"]["split_tables"],
                u64::from(index == "split"),
                "{set} {index}: {out}"
            );
            assert_eq!(s["packets"], 100_000, "{set}");
            assert!(s["rules"].as_u64().unwrap() > 700, "{set}");
            for key in ["build_ms", "mpps"] {
                assert!(s[key].as_f64().unwrap() > 0.0, "{set}: {key}");
            }
        }
    }
}

#[test]
fn without_expect_the_reference_engine_is_the_judge() {
    let (code, out, err) = sgsim(&[
        "classbench",
        "--filters",
        data("fw1_1k").to_str().unwrap(),
        "--packets",
        "20000",
        "--repeat",
        "1",
    ]);
    assert_eq!(code, 0, "{err}");
    let s = summary(&out);
    assert_eq!(s["checked_against"], "reference");
    assert_eq!(s["mismatches"], 0);
    assert_eq!(s["packets"], 20000);
}

#[test]
fn wrong_expectations_are_counted() {
    let dir = tempdir("wrong-expect");
    let expect = dir.join("bad.firstmatch");
    std::fs::write(&expect, "0\n1\n2\n").unwrap();
    let trace = dir.join("trace");
    std::fs::write(
        &trace,
        "0\t0\t0\t0\t6\t0\t0\n0\t0\t0\t0\t6\t0\t0\n0\t0\t0\t0\t6\t0\t0\n",
    )
    .unwrap();
    let filters = dir.join("filters");
    std::fs::write(
        &filters,
        "@0.0.0.0/0\t0.0.0.0/0\t0 : 65535\t0 : 65535\t0x00/0x00\t0x0000/0x0000\t\n",
    )
    .unwrap();
    let (code, out, err) = sgsim(&[
        "classbench",
        "--filters",
        filters.to_str().unwrap(),
        "--trace",
        trace.to_str().unwrap(),
        "--expect",
        expect.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        summary(&out)["mismatches"],
        2,
        "lines 2 and 3 expect rules that do not match"
    );
    assert!(err.contains("mismatch at trace line 2"), "{err}");
}

fn tempdir(name: &str) -> PathBuf {
    let dir = crate::scratch_root().join(format!("test-{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn expect_usage_error(args: &[&str], needles: &[&str]) {
    let (code, out, err) = sgsim(args);
    assert_eq!(code, 2, "exit code for {args:?}: stdout {out} stderr {err}");
    assert!(!err.contains("panicked"), "{err}");
    for n in needles {
        assert!(err.contains(n), "stderr of {args:?} lacks '{n}': {err}");
    }
}

#[test]
fn bad_input_names_the_file_and_line_and_exits_2() {
    let dir = tempdir("bad-input");
    let good = "@1.2.3.4/32\t5.6.7.8/32\t0 : 65535\t80 : 80\t0x06/0xFF\t0x0000/0x0000\t\n";
    let bad = dir.join("bad_filters");
    std::fs::write(
        &bad,
        format!(
            "{good}{good}@1.2.3.4/33\t5.6.7.8/32\t0 : 65535\t80 : 80\t0x06/0xFF\t0x0000/0x0000\n"
        ),
    )
    .unwrap();
    let f = bad.to_str().unwrap();
    expect_usage_error(&["classbench", "--filters", f], &[f, ":3:", "/33"]);

    let empty = dir.join("empty");
    std::fs::write(&empty, "\n\n").unwrap();
    let e = empty.to_str().unwrap();
    expect_usage_error(&["classbench", "--filters", e], &[e, "no filters"]);

    let missing = dir.join("missing");
    let m = missing.to_str().unwrap();
    expect_usage_error(&["classbench", "--filters", m], &[m]);

    let good_file = dir.join("good");
    std::fs::write(&good_file, good).unwrap();
    let trace = dir.join("bad_trace");
    std::fs::write(&trace, "1 2 3 4 6 0 0\n1 2 3 99999 6 0 0\n").unwrap();
    let t = trace.to_str().unwrap();
    expect_usage_error(
        &[
            "classbench",
            "--filters",
            good_file.to_str().unwrap(),
            "--trace",
            t,
        ],
        &[t, ":2:", "destination port"],
    );

    let expect = dir.join("short_expect");
    std::fs::write(&expect, "0\n").unwrap();
    let trace_ok = dir.join("trace_ok");
    std::fs::write(&trace_ok, "1 2 3 4 6\n1 2 3 4 6\n").unwrap();
    expect_usage_error(
        &[
            "classbench",
            "--filters",
            good_file.to_str().unwrap(),
            "--trace",
            trace_ok.to_str().unwrap(),
            "--expect",
            expect.to_str().unwrap(),
        ],
        &["1 indexes for 2 trace headers"],
    );

    let not_xz = dir.join("fake.xz");
    std::fs::write(&not_xz, good).unwrap();
    expect_usage_error(
        &["classbench", "--filters", not_xz.to_str().unwrap()],
        &["fake.xz", "xz"],
    );
    expect_usage_error(
        &["classbench", "--filters", f, "--threads", "0"],
        &["threads"],
    );
    expect_usage_error(&["classbench"], &["--filters"]);
    expect_usage_error(&["no-such-command"], &["no-such-command"]);
}

#[test]
fn bundled_data_is_present() {
    assert!(Path::new(&data("acl1_1k")).exists());
}

#[test]
fn bench_prints_the_compiled_and_reference_figures_of_one_run() {
    // A bundled ClassBench file with its trace, and the security-group shape: each prints
    // its figures for both engines, the revokes it timed, and the parallel figure.
    let acl = data("acl1_1k");
    let trace = data("acl1_1k_trace.xz");
    let workloads: [&[&str]; 2] = [
        &[
            "--filters",
            acl.to_str().unwrap(),
            "--trace",
            trace.to_str().unwrap(),
        ],
        &["--shape", "sg", "--packets", "5000"],
    ];
    for workload in workloads {
        let mut args = vec!["bench"];
        args.extend_from_slice(workload);
        args.extend([
            "--repeat",
            "1",
            "--revokes",
            "3",
            "--threads",
            "2",
            "--parallel-batch",
            "20000",
        ]);
        let (code, out, err) = sgsim(&args);
        assert_eq!(code, 0, "{workload:?}: {err}");
        let s = summary(&out);
        assert_eq!(s["mismatches_on_sample"], 0, "{out}");
        let c = &s["compiled"];
        for key in [
            "lookups_per_s",
            "build_ms",
            "bytes_per_rule",
            "revoke_to_visible_ms",
        ] {
            assert!(c[key].as_f64().unwrap() > 0.0, "compiled {key}: {out}");
        }
        assert_eq!(c["revokes_timed"], 3, "{out}");
        assert!(
            c["revoke_to_visible_max_ms"].as_f64() >= c["revoke_to_visible_ms"].as_f64(),
            "{out}"
        );
        let p = &c["parallel"];
        assert_eq!(p["threads"], 2, "{out}");
        assert!(p["batch"].as_u64().unwrap() >= 20_000, "{out}");
        assert!(
            p["speedup_over_one_thread"].as_f64().unwrap() > 0.0,
            "{out}"
        );
        for key in ["lookups_per_s", "build_ms", "revoke_to_visible_ms"] {
            assert!(
                s["reference"][key].as_f64().unwrap() > 0.0,
                "reference {key}: {out}"
            );
        }
        assert!(s["rules"].as_u64().unwrap() > 100, "{out}");
    }
}

#[test]
fn bench_rejects_an_unreadable_filter_file() {
    let missing = data("no-such-set");
    let (code, out, err) = sgsim(&["bench", "--filters", missing.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}");
    assert!(err.contains("no-such-set"), "{err}");
}
