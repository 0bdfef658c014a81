//! sgsim's integration tests: one binary, one module per area.
#![allow(clippy::unwrap_used)]

mod aliyun;
mod aws;
mod classbench;
#[cfg(feature = "cluster")]
mod cluster;
mod engines;
#[cfg(feature = "fleet")]
mod fleet;
mod flowlogs;
mod fuzz;
mod gen;
mod hardening;
mod impact;
mod s3;
#[cfg(feature = "serve")]
mod serve;
mod suite;
mod traffic;
mod whatif;

/// The folder this test process writes its scratch files under:
/// `$TMPDIR/sgsim-it/<pid>`. The first call removes the folders of earlier runs whose
/// process has ended, so repeated `cargo test` runs leave at most one run's files behind
/// (and those of runs still going, which are left alone).
pub fn scratch_root() -> &'static std::path::Path {
    static ROOT: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    ROOT.get_or_init(|| {
        let base = std::env::temp_dir().join("sgsim-it");
        remove_ended(&base);
        let root = base.join(std::process::id().to_string());
        std::fs::create_dir_all(&root).unwrap();
        root
    })
}

/// Removes the folders under `base` named by the pid of a process that has ended.
fn remove_ended(base: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for e in entries.flatten() {
        let ended = e
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|pid| !process_alive(pid));
        if ended {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Whether a process runs (Linux: its `/proc` entry; elsewhere every process is taken to
/// run, so nothing is removed).
fn process_alive(pid: u32) -> bool {
    let proc = std::path::Path::new("/proc");
    !proc.join("self").exists() || proc.join(pid.to_string()).exists()
}

#[test]
fn scratch_folders_of_ended_runs_are_removed_and_running_ones_kept() {
    let base = scratch_root().join("cleanup");
    // A pid above the kernel's largest (2^22) never runs.
    let (ended, running, other) = (
        base.join("4194305"),
        base.join(std::process::id().to_string()),
        base.join("notes"),
    );
    for d in [&ended, &running, &other] {
        std::fs::create_dir_all(d.join("x")).unwrap();
    }
    remove_ended(&base);
    assert!(running.is_dir() && other.is_dir());
    assert_eq!(ended.exists(), !std::path::Path::new("/proc/self").exists());
}
