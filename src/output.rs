//! Writing output files so that a reader never sees a half-written one.

use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, ErrorKind, Result};

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
    let result = (|| {
        let mut file = BufWriter::new(OpenOptions::new().write(true).create_new(true).open(&temp)?);
        write(&mut file)?;
        let file = file.into_inner().map_err(|err| err.into_error())?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    result.map_err(|err| {
        let _ = std::fs::remove_file(&temp);
        write_error(format!("write {}: {err}", path.display()))
    })
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
}
