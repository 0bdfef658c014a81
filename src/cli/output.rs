//! Files sgsim writes (`revoke --out`, `whatif --json` / `--html`, `synth --out`): one
//! path for all of them.
//!
//! A file is written to a temporary file created exclusively under a random name in the
//! target's directory (`tempfile`: `O_EXCL`, so a symlink planted at a predictable name is
//! never followed, and concurrent runs never share a temporary file), synced, then renamed
//! over the target (a symlink at the target itself is replaced, not written through). On
//! any error the temporary file is removed and the target is left as it was. Messages name
//! the user's path, never the temporary one.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::Context as _;

/// The directory a target is written in.
fn dir_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Fails when `path` cannot be an output file: a directory, or in a directory that does
/// not exist. Called before any work, so that a bad `--out` costs nothing.
pub fn check(flag: &str, path: &Path) -> anyhow::Result<()> {
    if path.is_dir() {
        anyhow::bail!("{flag} {}: is a directory, not a file", path.display());
    }
    let dir = dir_of(path);
    if !dir.is_dir() {
        anyhow::bail!(
            "{flag} {}: directory {} does not exist",
            path.display(),
            dir.display()
        );
    }
    Ok(())
}

/// Writes `path` with `f`, atomically (see the module docs).
pub fn write_with<T>(
    path: &Path,
    f: impl FnOnce(&mut BufWriter<&mut File>) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let fail = || format!("cannot write {}", path.display());
    if path.is_dir() {
        anyhow::bail!("cannot write {}: is a directory", path.display());
    }
    let mut builder = tempfile::Builder::new();
    builder.prefix(".sgsim-").suffix(".tmp");
    #[cfg(unix)]
    {
        // As `File::create` would: read-write for everyone the umask allows.
        use std::os::unix::fs::PermissionsExt as _;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut tmp = builder.tempfile_in(dir_of(path)).with_context(fail)?;
    let value = {
        let mut w = BufWriter::new(tmp.as_file_mut());
        let value = f(&mut w).with_context(fail)?;
        w.flush().with_context(fail)?;
        value
    };
    tmp.as_file().sync_all().with_context(fail)?;
    tmp.persist(path).map_err(|e| e.error).with_context(fail)?;
    Ok(value)
}

/// Writes `contents` to `path`, atomically (see the module docs).
pub fn write(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    write_with(path, |w| Ok(w.write_all(contents)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_through_planted_symlink_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let out = dir.path().join("out.json");
        // The names the old fixed-name writer used, and the target itself, as symlinks.
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&victim, dir.path().join(".out.json.tmp")).unwrap();
            std::os::unix::fs::symlink(&victim, &out).unwrap();
        }
        write(&out, b"new").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert_eq!(std::fs::read(&out).unwrap(), b"new");
        assert!(!std::fs::symlink_metadata(&out).unwrap().is_symlink());
        // Nothing is left behind but the files above.
        let names = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(names, 3);
    }

    #[test]
    fn output_error_removes_the_temporary_file_and_names_the_target() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("report.html");
        let e = write_with(&out, |w| -> anyhow::Result<()> {
            w.write_all(b"half")?;
            anyhow::bail!("boom")
        })
        .unwrap_err();
        assert!(
            format!("{e:#}").contains(&out.display().to_string()),
            "{e:#}"
        );
        assert!(!format!("{e:#}").contains(".sgsim-"), "{e:#}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn output_written_by_concurrent_runs_never_shares_a_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("snapshot.json");
        let contents: Vec<Vec<u8>> = (0..8u8).map(|i| vec![b'a' + i; 100_000]).collect();
        std::thread::scope(|s| {
            for c in &contents {
                let out = &out;
                s.spawn(move || write(out, c).unwrap());
            }
        });
        assert!(contents.contains(&std::fs::read(&out).unwrap()));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn output_directory_is_refused_before_work() {
        let dir = tempfile::tempdir().unwrap();
        let e = check("--out", dir.path()).unwrap_err();
        assert!(e.to_string().contains("is a directory"), "{e}");
        let e = check("--json", &dir.path().join("missing/x.json")).unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
        check("--html", &dir.path().join("x.html")).unwrap();
        assert!(write(dir.path(), b"x").is_err());
    }
}
