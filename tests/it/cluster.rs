//! A Ballista cluster on 127.0.0.1 (feature `cluster`): a scheduler and two executors run
//! as `sgsim cluster` processes, and `sgsim whatif … --cluster` gives the local report,
//! field for field.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::fleet::{
    big_file, damage_early_groups, judged_rows, query, run_query, EVERY_RECORD, WINDOW,
};
use super::flowlogs::report;
use super::flowlogs::{fleet_day, fleet_state, scratch, write_layouts};

/// A child process killed when dropped (a failed test leaves no cluster behind).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(args: &[&str]) -> Running {
    Running(
        Command::new(env!("CARGO_BIN_EXE_sgsim"))
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// Waits until something listens on `port` (at most a minute).
fn listening(port: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn files_under(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            if e.path().is_dir() {
                files_under(&e.path())
            } else {
                1
            }
        })
        .sum()
}

#[test]
fn a_cluster_of_two_executors_gives_the_local_report() {
    let dir = scratch("cluster");
    let (state, revoke) = fleet_state(&dir);
    let day = fleet_day(1000, 5);
    let (_, gz, hive) = write_layouts(&dir, &day);
    let big = big_file(&dir, &day);

    let sp = free_port();
    let scheduler = format!("127.0.0.1:{sp}");
    let _s = start(&["cluster", "scheduler", "--bind", &scheduler]);
    assert!(listening(sp), "the scheduler did not start");
    let mut executors = Vec::new();
    let mut work = Vec::new();
    for k in 0..2 {
        let port = free_port();
        let w = dir.join(format!("executor-{k}"));
        executors.push(start(&[
            "cluster",
            "executor",
            "--scheduler",
            &scheduler,
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--tasks",
            "2",
            "--work-dir",
            w.to_str().unwrap(),
        ]));
        assert!(listening(port), "executor {k} did not start");
        work.push(w);
    }
    let url = format!("df://{scheduler}");
    // The whole what-if as one plan on the cluster (`extra` flags added): scan, judging
    // and the connection fold on the executors, the client merging one total per bucket.
    // The local report, and the plan's shuffle (records to the task that owns their
    // bucket) lands in the executors' work folders.
    let plan_on_cluster = |input: &Path, extra: &[&str]| {
        let local = report(&state, &revoke, input, &[]);
        let before: usize = work.iter().map(|w| files_under(w)).sum();
        let on = ["--cluster", url.as_str(), "--fold", "plan"];
        let planned = report(&state, &revoke, input, &[&on[..], extra].concat());
        assert_eq!(
            local,
            planned,
            "--fold plan {extra:?} on the cluster: {}",
            input.display()
        );
        let after: usize = work.iter().map(|w| files_under(w)).sum();
        assert!(after > before, "the executors ran no task of the plan");
    };
    for input in [&hive, &big] {
        let local = report(&state, &revoke, input, &[]);
        let remote = report(&state, &revoke, input, &["--cluster", &url]);
        assert_eq!(local, remote, "{}", input.display());
        assert!(local["changed"]["accept_to_drop"].as_u64().unwrap() > 0);
        plan_on_cluster(input, &[]);
    }
    // Hourly gzip text files, and a marker file beside the Parquet files (read as the
    // streaming reader reads it: a file of no record): each text file is a file scan the
    // scheduler gives to one task, read by sgsim's reader on the executor, so the day is
    // counted once (a regression: every task read every file, 22 times over), and the
    // report is the local one; in several passes over the files too.
    std::fs::write(hive.join("_SUCCESS"), b"").unwrap();
    plan_on_cluster(&gz, &[]);
    plan_on_cluster(&hive, &[]);
    plan_on_cluster(&gz, &["--pass-records", "5000"]);
    // A window that leaves most row groups of the one-file day unread: the executors'
    // scans leave them out too (the numbering operator carries them and puts the access
    // plan back on its scan), and the report is the local one.
    let window = WINDOW;
    let local = report(&state, &revoke, &big, &window);
    let on = ["--cluster", url.as_str(), "--fold", "plan"];
    assert_eq!(
        local,
        report(&state, &revoke, &big, &[&window[..], &on[..]].concat()),
        "--fold plan with a window on the cluster"
    );
    assert!(
        local["inputs"][0]["summary"]
            .as_str()
            .unwrap()
            .contains("outside --since/--until"),
        "{}",
        local["inputs"][0]["summary"]
    );
    // The groups left unread are not decoded on the executors: damaged, they still give
    // the local report.
    let broken = damage_early_groups(&big, &dir.join("damaged"));
    assert_eq!(
        report(&state, &revoke, &broken, &window),
        report(&state, &revoke, &broken, &[&window[..], &on[..]].concat()),
        "--fold plan with a window on the cluster, damaged groups outside it"
    );
    // SQL with the verdict functions runs on the cluster too: the functions travel in the
    // plan with their states (the executors were given none) and give the local answer,
    // record for record and in the default summary.
    for input in [&hive, &big] {
        let every =
            |extra: &[&str]| judged_rows(&query(&state, &revoke, input, EVERY_RECORD, extra));
        let local = every(&[]);
        assert!(
            local.iter().any(|r| r.7[0] != r.7[2]),
            "the revoke changes some verdict"
        );
        assert_eq!(local, every(&["--cluster", &url]), "{}", input.display());
        let json = ["--output", "json"];
        let (code, local, err) = run_query(&state, Some(&revoke), input, &json);
        assert_eq!(code, 0, "{err}");
        let remote = ["--output", "json", "--cluster", &url];
        let (code, remote, err) = run_query(&state, Some(&revoke), input, &remote);
        assert_eq!(code, 0, "{err}");
        assert_eq!(local, remote);
    }
    // The cluster ran the scans: their results wait in the executors' work folders (how
    // the tasks spread over the two is the scheduler's choice).
    let results: Vec<usize> = work.iter().map(|w| files_under(w)).collect();
    eprintln!("result files per executor: {results:?}");
    assert!(results.iter().sum::<usize>() > 0, "no executor ran a task");
    drop(executors);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_unreachable_cluster_is_an_error_naming_the_file() {
    let dir = scratch("cluster-down");
    let day = fleet_day(10, 2);
    let big = dir.join("day.parquet");
    let all: Vec<_> = day.iter().flatten().cloned().collect();
    std::fs::write(
        &big,
        super::flowlogs::parquet(
            &all,
            &super::flowlogs::FIELDS,
            parquet::basic::Compression::SNAPPY,
            50,
        ),
    )
    .unwrap();
    let url = format!("df://127.0.0.1:{}", free_port());
    let (code, _, err) = super::flowlogs::sgsim(&[
        "packets",
        "--traffic",
        big.to_str().unwrap(),
        "--cluster",
        &url,
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("day.parquet") && err.contains("the cluster's scan failed"),
        "{err}"
    );
    // A query sent to it fails too, naming the cluster (it does not quietly run here).
    let (state, revoke) = fleet_state(&dir);
    let (code, _, err) = run_query(&state, Some(&revoke), &big, &["--cluster", &url]);
    assert_ne!(code, 0);
    assert!(err.contains(&url), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
