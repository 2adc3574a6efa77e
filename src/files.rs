//! Files on disk: atomic writes, whole or streamed, and content digests.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Write through a temporary file in the same folder, fsync it, then rename over `path`: a
/// crash of the process or of the machine at any moment leaves either the old file or the new
/// one, never a torn one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = AtomicFile::create(path)?;
    file.write_all(bytes).map_err(|e| Error::io(path, e))?;
    file.commit()
}

/// Write through a temporary file and rename over `path`, without waiting for the disk: a
/// killed process leaves the old file or the new one, never a torn one (the page cache
/// outlives the process); only a machine crash before the next `sync` could lose it. For files
/// rewritten often (run.json each epoch, the best model), made durable at checkpoints.
pub fn replace(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = AtomicFile::create(path)?;
    file.durable = false;
    file.write_all(bytes).map_err(|e| Error::io(path, e))?;
    file.commit()
}

/// Wait until `path`'s data is on disk (nothing when it does not exist).
pub fn sync(path: &Path) -> Result<()> {
    match File::open(path) {
        Ok(f) => f.sync_all().map_err(|e| Error::io(path, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// A file written in pieces that appears at its path only when `commit` succeeds: until then
/// the data goes to a hidden temporary file beside it, removed if the writer is dropped. A
/// symbolic link is written through (its target is replaced); a path that is not a regular
/// file (a device such as /dev/stdout, a pipe) is written directly, as it cannot be replaced.
pub struct AtomicFile {
    path: PathBuf,
    /// `None` when writing directly to a device or pipe.
    tmp: Option<PathBuf>,
    file: Option<File>,
    /// fsync the data and the rename (default); see `replace`.
    durable: bool,
}

impl AtomicFile {
    pub fn create(path: &Path) -> Result<AtomicFile> {
        // Through a link to what it names (the link stays a link).
        let path = match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_symlink() => std::fs::canonicalize(path)
                .or_else(|_| std::fs::read_link(path).map(|t| path.with_file_name(t)))
                .map_err(|e| Error::io(path, e))?,
            _ => path.to_path_buf(),
        };
        let special = std::fs::metadata(&path).is_ok_and(|m| !m.is_file());
        if special {
            if std::fs::metadata(&path).is_ok_and(|m| m.is_dir()) {
                return Err(Error::data(
                    path.display().to_string(),
                    "a folder, not a file",
                ));
            }
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|e| Error::io(&path, e))?;
            return Ok(AtomicFile {
                path,
                tmp: None,
                file: Some(file),
                durable: false,
            });
        }
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
        // A name of this writer's own: two processes writing one file (two commands, or ranks
        // under mpirun) never write through the same temporary file.
        let tmp = path.with_file_name(format!(".{name}.{}.tmp", unique_suffix()));
        let file = File::create(&tmp).map_err(|e| Error::io(&path, e))?;
        Ok(AtomicFile {
            path,
            tmp: Some(tmp),
            file: Some(file),
            durable: true,
        })
    }

    /// Flush to disk and rename into place. An existing file's permissions are kept.
    pub fn commit(mut self) -> Result<()> {
        let io = |e| Error::io(&self.path, e);
        let file = self.file.take().expect("an open file until commit");
        let Some(tmp) = self.tmp.clone() else {
            return Ok(()); // a device or pipe: written as it went
        };
        if let Ok(old) = std::fs::metadata(&self.path) {
            file.set_permissions(old.permissions()).map_err(io)?;
        }
        if self.durable {
            file.sync_all().map_err(io)?;
        }
        drop(file);
        if let Err(e) = std::fs::rename(&tmp, &self.path) {
            let _ = std::fs::remove_file(&tmp);
            return Err(io(e));
        }
        if self.durable {
            if let Some(dir) = self.path.parent().and_then(|d| File::open(d).ok()) {
                let _ = dir.sync_all(); // makes the rename durable where the platform allows it
            }
        }
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.as_mut().expect("open until commit").write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.as_mut().expect("open until commit").flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if let (Some(_), Some(tmp)) = (self.file.take(), &self.tmp) {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

/// The size and SHA-256 (hex) of a file, read in pieces.
pub fn sha256_file(path: &Path) -> Result<(u64, String)> {
    use sha2::{Digest, Sha256};
    let mut file = File::open(path).map_err(|e| Error::input(path, e))?;
    let mut hasher = Sha256::new();
    let bytes = std::io::copy(&mut file, &mut hasher).map_err(|e| Error::io(path, e))?;
    let hex = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok((bytes, hex))
}

/// SHA-256 of `bytes` in lowercase hex, as `sha256sum` prints it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `<pid>-<n>`: unique among this machine's live processes and this process's writes.
pub fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two writers of one file (two commands, two ranks) each write through a temporary file
    /// of their own: both commit, and the file is one of the two, whole.
    #[test]
    fn two_writers_of_one_file_do_not_share_a_temporary_file() {
        let dir = std::env::temp_dir().join(format!("kiln-files-{}", unique_suffix()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("out.csv");
        let mut a = AtomicFile::create(&path).unwrap();
        let mut b = AtomicFile::create(&path).unwrap();
        a.write_all(b"from a\n").unwrap();
        b.write_all(b"from b, longer\n").unwrap();
        a.commit().unwrap();
        b.commit().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "from b, longer\n");
        let left = std::fs::read_dir(&dir).unwrap().count();
        assert_eq!(left, 1, "temporary files left behind");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
