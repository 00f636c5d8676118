//! Writing output files so that a reader never sees a half-written one.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, ErrorKind, Result};

/// What an atomic write guarantees once it returns. Either way a reader
/// sees the old file or the whole new one, never a part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Durability {
    /// The new content and its name are on disk: a crash or power loss
    /// after the write returns keeps the new file (the file is synced
    /// before the rename, its directory after).
    #[default]
    Durable,
    /// Nothing is synced: the write returns as soon as the operating system
    /// has the data. A crash soon after may leave the old file, or on some
    /// filesystems an empty one; for outputs that can be made again.
    NoSync,
}

/// Writes `bytes` to a temporary file beside `path`, syncs it, then renames
/// it over `path`: the old content stays until the new one is complete.
/// Temporary names are unique per process and call, so concurrent writers
/// never share one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |file| file.write_all(bytes))
}

/// `write_atomic` of what `write` writes: large outputs (`state.json`) are
/// written as they are produced, never held whole in memory.
pub fn write_atomic_with(path: &Path, write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Result<()> {
    write_atomic_as(path, Durability::Durable, write)
}

/// `write_atomic_with`, synced to disk or not.
pub fn write_atomic_as(
    path: &Path,
    durability: Durability,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let write_error = |message: String| Error::new(ErrorKind::Write, message).with_file(path);
    let file_name =
        path.file_name().ok_or_else(|| write_error(format!("cannot write {}: not a file path", path.display())))?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let temp = dir.join(format!(
        ".{}.{}-{}.tmp",
        file_name.to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| -> std::io::Result<()> {
        let file = OpenOptions::new().write(true).create_new(true).open(&temp)?;
        let durable = durability == Durability::Durable;
        let mut file = BufWriter::new(EarlyWriteback::new(file, durable));
        write(&mut file)?;
        let file = file.into_inner().map_err(|err| err.into_error())?.file;
        if durable {
            file.sync_all()?;
        }
        drop(file);
        std::fs::rename(&temp, path)?;
        if durable {
            sync_dir(dir)?;
        }
        Ok(())
    })();
    result.map_err(|err| {
        let _ = std::fs::remove_file(&temp);
        write_error(format!("write {}: {err}", path.display()))
    })
}

/// Makes a rename in `dir` durable. Where directories cannot be opened or
/// synced (not Unix), the rename is as durable as the platform makes it.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}

/// A file that starts writing its data to disk every megabyte as it is
/// written, so that the final sync waits only for the last of it (a
/// 17 MB state.json: about 1 ms instead of 5 to 10). Linux only; elsewhere
/// the final sync does it all.
struct EarlyWriteback {
    file: File,
    /// Bytes written, and bytes whose write-back has been started.
    written: u64,
    started: u64,
    /// Start write-back at all (not for outputs that are never synced).
    early: bool,
}

/// How much is written between two starts of write-back.
const WRITEBACK_STEP: u64 = 1 << 20;

impl EarlyWriteback {
    fn new(file: File, early: bool) -> Self {
        EarlyWriteback { file, written: 0, started: 0, early }
    }

    #[cfg(target_os = "linux")]
    fn start_writeback(&mut self) {
        use std::os::fd::AsRawFd;
        let (Ok(offset), Ok(len)) = (i64::try_from(self.started), i64::try_from(self.written - self.started)) else {
            return;
        };
        // SAFETY: a system call on a descriptor we own, with plain integer
        // arguments; it touches no memory of ours. It only starts the
        // write-back (no waiting), and its failure costs nothing: the final
        // `sync_all` writes and reports everything anyway.
        unsafe { libc::sync_file_range(self.file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE) };
        self.started = self.written;
    }

    #[cfg(not(target_os = "linux"))]
    fn start_writeback(&mut self) {}
}

impl Write for EarlyWriteback {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let written = self.file.write(bytes)?;
        self.written += written as u64;
        if self.early && self.written - self.started >= WRITEBACK_STEP {
            self.start_writeback();
        }
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_content_and_leaves_no_temporary_file() {
        let dir = std::env::temp_dir().join(format!("rollout-trace-output-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.json");
        write_atomic(&path, b"old").unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        let missing = dir.join("no/such/dir/state.json");
        assert_eq!(write_atomic(&missing, b"x").unwrap_err().kind, ErrorKind::Write);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unsynced_writes_are_still_whole_and_atomic() {
        let dir = std::env::temp_dir().join(format!("rollout-trace-output-nosync-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.json");
        write_atomic(&path, b"old").unwrap();
        let text: Vec<u8> = (0..2 * WRITEBACK_STEP as usize + 7).map(|i| (i % 251) as u8).collect();
        write_atomic_as(&path, Durability::NoSync, |out| out.write_all(&text)).unwrap();
        assert!(std::fs::read(&path).unwrap() == text);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        let missing = dir.join("no/such/dir/state.json");
        assert_eq!(write_atomic_as(&missing, Durability::NoSync, |_| Ok(())).unwrap_err().kind, ErrorKind::Write);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn large_outputs_written_in_uneven_pieces_arrive_whole() {
        let dir = std::env::temp_dir().join(format!("rollout-trace-output-large-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.json");
        // Several write-back steps, in pieces that straddle their bounds.
        let text: Vec<u8> = (0..3 * WRITEBACK_STEP as usize + 12_345).map(|i| (i % 251) as u8).collect();
        write_atomic_with(&path, |out| text.chunks(70_001).try_for_each(|piece| out.write_all(piece))).unwrap();
        assert!(std::fs::read(&path).unwrap() == text);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
