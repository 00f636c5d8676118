//! Writing output files so that a reader never sees a half-written one.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind, Result};

/// Writes `bytes` to a temporary file beside `path`, syncs it, then renames
/// it over `path`: the old content stays until the new one is complete.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let write_error =
        |what: &str, err: std::io::Error| Error::new(ErrorKind::Write, format!("{what} {}: {err}", path.display()));
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| Error::new(ErrorKind::Usage, format!("output path {} does not name a file", path.display())))?;
    let temp = dir.join(format!(".{}.tmp-{}", name.to_string_lossy(), std::process::id()));
    let result = (|| {
        let mut file = File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if let Err(err) = result {
        let _ = std::fs::remove_file(&temp);
        return Err(write_error("write", err));
    }
    Ok(())
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
