//! Replays every committed fuzz corpus file and saved crash through the library's harnesses
//! (the same functions the cargo-fuzz targets call), on stable.

use std::path::Path;

fn replay(target: &str, harness: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut n = 0;
    for dir in [
        root.join("corpus").join(target),
        root.join("regressions").join(target),
    ] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
        files.sort();
        for f in files {
            let data = std::fs::read(&f).unwrap();
            let result = std::panic::catch_unwind(|| harness(&data));
            assert!(result.is_ok(), "{target}: {} fails", f.display());
            n += 1;
        }
    }
    assert!(n > 0, "{target}: no corpus");
}

#[test]
fn replay_differential() {
    replay("differential", sgsim::internal::fuzz::differential);
}

#[test]
fn replay_live() {
    replay("live", sgsim::internal::fuzz::live);
}

#[test]
fn replay_classbench() {
    replay("classbench", sgsim::internal::fuzz::classbench);
}

#[test]
fn replay_model_text() {
    replay("model_text", sgsim::internal::fuzz::model_text);
}

#[test]
fn replay_header_space() {
    replay("header_space", sgsim::internal::fuzz::header_space);
}

#[test]
fn replay_aws_request() {
    replay("aws_request", sgsim::internal::fuzz::aws_request);
}

#[test]
fn replay_aliyun_request() {
    replay("aliyun_request", sgsim::internal::fuzz::aliyun_request);
}

#[test]
fn replay_import() {
    replay("import", sgsim::internal::fuzz::import);
}

#[test]
fn replay_traffic() {
    replay("traffic", sgsim::internal::fuzz::traffic);
}

#[test]
fn replay_frame() {
    replay("frame", sgsim::internal::fuzz::frame);
}

#[test]
fn replay_synthetic() {
    replay("synthetic", sgsim::internal::fuzz::synthetic);
}
