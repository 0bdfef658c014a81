//! `s3://` inputs against a local S3-compatible server (moto's `moto_server`, started on
//! 127.0.0.1 by the test). Without the `s3` feature or without `moto_server` on `PATH`
//! (or in `SGSIM_MOTO_SERVER`) the test says SKIPPED and passes, unless
//! `SGSIM_REQUIRE_MOTO=1` (as `.ci/run` sets it), when a skip is a failure.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn skip(why: &str) {
    if std::env::var_os("SGSIM_REQUIRE_MOTO").is_some_and(|v| v == "1") {
        panic!("SGSIM_REQUIRE_MOTO=1 but the S3 test cannot run: {why}");
    }
    eprintln!("SKIPPED: {why}");
}

/// moto's server on a free port of 127.0.0.1, stopped on drop.
struct Moto {
    child: Child,
    port: u16,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto_program() -> Option<String> {
    if let Some(p) = std::env::var_os("SGSIM_MOTO_SERVER") {
        return Some(p.to_string_lossy().into_owned());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("moto_server"))
        .find(|p| p.is_file())
        .map(|p| p.to_string_lossy().into_owned())
}

fn start_moto(program: &str) -> Moto {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(program)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    let moto = Moto { child, port };
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "moto_server did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    moto
}

/// One unsigned HTTP/1.1 request (moto does not check signatures by default).
fn http(port: u16, method: &str, path: &str, body: &[u8]) -> u16 {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let head = String::from_utf8_lossy(&out[..out.len().min(64)]).into_owned();
    head.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// Uploads every file under `dir` to `bucket` under `prefix`.
fn upload(port: u16, bucket: &str, prefix: &str, dir: &Path) {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let rel = p
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            let key = format!("/{bucket}/{prefix}{rel}").replace('=', "%3D");
            let code = http(port, "PUT", &key, &std::fs::read(&p).unwrap());
            assert_eq!(code, 200, "PUT {key}");
        }
    }
}

fn sgsim_s3(port: u16, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sgsim"))
        .args(args)
        .env("CI", "1")
        .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}"))
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("HOME", "/nonexistent")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn s3_prefixes_in_both_layouts_give_the_local_whatif() {
    if !cfg!(feature = "s3") {
        return skip("sgsim built without the `s3` feature (cargo test --features s3)");
    }
    let Some(program) = moto_program() else {
        return skip(
            "moto_server not found (pip install 'moto[server]', or set SGSIM_MOTO_SERVER)",
        );
    };
    let dir = crate::scratch_root().join("s3");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (state, revoke) = super::flowlogs::fleet_state(&dir);
    let day = super::flowlogs::fleet_day(40, 11);
    let (plain, gz, pq) = super::flowlogs::write_layouts(&dir, &day);
    let moto = start_moto(&program);
    assert_eq!(http(moto.port, "PUT", "/fleet", b""), 200, "create bucket");
    upload(moto.port, "fleet", "gz/", &gz);
    upload(moto.port, "fleet", "pq/", &pq);

    let whatif = |traffic: &str, extra: &[&str]| {
        let mut args = vec![
            "whatif",
            "--state",
            state.to_str().unwrap(),
            "--request",
            &revoke,
            "--traffic",
            traffic,
            "--output",
            "json",
        ];
        args.extend_from_slice(extra);
        let (code, out, err) = sgsim_s3(moto.port, &args);
        assert_eq!(code, 0, "{traffic}: {err}");
        let mut v = serde_json::from_str::<serde_json::Value>(&out).unwrap();
        // The clock of the analysis and the inputs' names differ by nature.
        if let Some(o) = v.as_object_mut() {
            o.remove("analysed_at");
            o.remove("inputs");
        }
        v
    };
    let local = whatif(plain.to_str().unwrap(), &[]);
    assert_eq!(local, whatif("s3://fleet/gz/", &[]), "gzip layout on S3");
    assert_eq!(local, whatif("s3://fleet/pq", &[]), "Parquet layout on S3");
    let window = [
        "--since",
        "2026-12-06T03:00:00Z",
        "--until",
        "2026-12-06T04:00:00Z",
    ];
    assert_eq!(
        whatif(plain.to_str().unwrap(), &window),
        whatif("s3://fleet/pq/", &window),
        "a window on S3"
    );
    // One object by its key, and a bucket that does not exist.
    let key = format!(
        "s3://fleet/pq/AWSLogs/aws-account-id=111122223333/aws-service=vpcflowlogs/aws-region=us-east-1/year=2026/month=12/day=06/hour=07/111122223333_vpcflowlogs_us-east-1_fl-0abc_20261206T0700Z_{:08x}.log.parquet",
        7 * 7919
    );
    let (code, out, err) = sgsim_s3(moto.port, &["packets", "--traffic", &key]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.is_empty(), "{err}");
    let (code, _, err) = sgsim_s3(moto.port, &["packets", "--traffic", "s3://nobucket/x/"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("s3://nobucket/x/"), "{err}");
    #[cfg(feature = "fleet")]
    query_reads_objects_in_place(moto.port, &state, &revoke, &pq);
    // The what-if as one DataFusion plan reads the objects in place too.
    #[cfg(feature = "fleet")]
    {
        assert_eq!(
            local,
            whatif("s3://fleet/pq/", &["--fold", "plan"]),
            "--fold plan on S3"
        );
        assert_eq!(
            whatif(plain.to_str().unwrap(), &window),
            whatif(
                "s3://fleet/pq/",
                &[&window[..], &["--fold", "plan"]].concat()
            ),
            "--fold plan with a window on S3"
        );
        // gzip text objects, read by sgsim's reader in the plan's scans.
        assert_eq!(
            local,
            whatif("s3://fleet/gz/", &["--fold", "plan"]),
            "--fold plan on gzip text in S3"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `sgsim query` over the Parquet layout in S3 (DataFusion reading the objects through
/// sgsim's S3 settings) answers as over the same files on disk, record for record; a
/// query over local files and objects together is refused, naming both.
#[cfg(feature = "fleet")]
fn query_reads_objects_in_place(port: u16, state: &Path, revoke: &str, pq: &Path) {
    let query = |traffic: &[&str], sql: &str| {
        let mut args = vec![
            "query",
            "--state",
            state.to_str().unwrap(),
            "--request",
            revoke,
        ];
        for t in traffic {
            args.extend(["--traffic", t]);
        }
        args.extend(["--sql", sql, "--output", "json"]);
        sgsim_s3(port, &args)
    };
    let rows = |traffic: &[&str]| {
        let (code, out, err) = query(traffic, super::fleet::EVERY_RECORD);
        assert_eq!(code, 0, "{traffic:?}: {err}");
        super::fleet::judged_rows(&serde_json::from_str(&out).unwrap())
    };
    let local = rows(&[pq.to_str().unwrap()]);
    assert!(!local.is_empty());
    assert_eq!(local, rows(&["s3://fleet/pq/"]), "the Parquet layout on S3");
    // An aggregation too.
    let (code, on_disk, err) = query(&[pq.to_str().unwrap()], "SELECT count(*) AS n FROM judged");
    assert_eq!(code, 0, "{err}");
    let (code, in_s3, err) = query(&["s3://fleet/pq"], "SELECT count(*) AS n FROM judged");
    assert_eq!(code, 0, "{err}");
    assert_eq!(on_disk, in_s3);
    let (code, _, err) = query(
        &[pq.to_str().unwrap(), "s3://fleet/pq/"],
        "SELECT count(*) FROM judged",
    );
    assert_ne!(code, 0, "{err}");
    assert!(
        err.contains("s3://fleet") && err.contains("local files"),
        "{err}"
    );
}
