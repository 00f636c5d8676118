//! Paths as the command line has always shown them: Python's `pathlib`
//! spelling (`a//b/./` is `a/b`), `Path.resolve()`, `os.path.commonpath`,
//! `Path.mkdir(parents=True, exist_ok=True)`, and `OSError` messages.

use std::path::{Path, PathBuf};

/// `str(pathlib.PurePosixPath(text))`.
pub fn normalize(text: &str) -> String {
    let root = if text.starts_with("//") && !text.starts_with("///") {
        "//"
    } else if text.starts_with('/') {
        "/"
    } else {
        ""
    };
    let parts: Vec<&str> = text.split('/').filter(|part| !part.is_empty() && *part != ".").collect();
    let joined = format!("{root}{}", parts.join("/"));
    if joined.is_empty() {
        ".".to_string()
    } else {
        joined
    }
}

/// `str(PurePosixPath(base) / name)`.
pub fn join(base: &str, name: &str) -> String {
    if name.starts_with('/') {
        normalize(name)
    } else {
        normalize(&format!("{base}/{name}"))
    }
}

fn split_last(path: &str) -> (String, String) {
    match path.rfind('/') {
        Some(0) => ("/".to_string(), path[1..].to_string()),
        Some(at) => (path[..at].to_string(), path[at + 1..].to_string()),
        None => (String::new(), path.to_string()),
    }
}

fn join_raw(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else if path.ends_with('/') {
        format!("{path}{name}")
    } else {
        format!("{path}/{name}")
    }
}

/// `posixpath._joinrealpath` of Python 3.11, not strict.
fn join_real(mut path: String, rest: &str, seen: &mut Vec<(String, Option<String>)>) -> (String, bool) {
    let mut rest = rest.to_string();
    if rest.starts_with('/') {
        rest.remove(0);
        path = "/".to_string();
    }
    while !rest.is_empty() {
        let (name, tail) = match rest.split_once('/') {
            Some((name, tail)) => (name.to_string(), tail.to_string()),
            None => (rest.clone(), String::new()),
        };
        rest = tail;
        if name.is_empty() || name == "." {
            continue;
        }
        if name == ".." {
            if path.is_empty() {
                path = "..".to_string();
            } else {
                let (head, last) = split_last(&path);
                path = if last == ".." { join_raw(&join_raw(&head, ".."), "..") } else { head };
            }
            continue;
        }
        let new_path = join_raw(&path, &name);
        let is_link = std::fs::symlink_metadata(&new_path).map(|m| m.file_type().is_symlink()).unwrap_or(false);
        if !is_link {
            path = new_path;
            continue;
        }
        if let Some((_, resolved)) = seen.iter().find(|(link, _)| *link == new_path) {
            match resolved {
                Some(resolved) => {
                    path = resolved.clone();
                    continue;
                }
                None => return (join_raw(&new_path, &rest), false),
            }
        }
        seen.push((new_path.clone(), None));
        let Ok(target) = std::fs::read_link(&new_path) else {
            path = new_path;
            continue;
        };
        let (resolved, ok) = join_real(path, &target.to_string_lossy(), seen);
        if !ok {
            return (join_raw(&resolved, &rest), false);
        }
        if let Some(entry) = seen.iter_mut().find(|(link, _)| *link == new_path) {
            entry.1 = Some(resolved.clone());
        }
        path = resolved;
    }
    (path, true)
}

/// `os.path.normpath` of an absolute path.
fn normpath_absolute(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    format!("/{}", parts.join("/"))
}

/// `str(Path(text).resolve())`: absolute, symlinks resolved as far as
/// the path exists.
pub fn resolve(text: &str) -> String {
    let (real, _) = join_real(String::new(), text, &mut Vec::new());
    let absolute = if real.starts_with('/') {
        real
    } else {
        let cwd = std::env::current_dir().map(|p| p.to_string_lossy().into_owned()).unwrap_or_else(|_| "/".into());
        join_raw(&cwd, &real)
    };
    normpath_absolute(&absolute)
}

fn components(path: &str) -> Vec<&str> {
    path.split('/').filter(|part| !part.is_empty() && *part != ".").collect()
}

/// `os.path.commonpath` of absolute paths.
pub fn common_path(paths: &[String]) -> String {
    let mut common: Vec<&str> = components(&paths[0]);
    for path in &paths[1..] {
        let parts = components(path);
        let shared = common.iter().zip(&parts).take_while(|(a, b)| a == b).count();
        common.truncate(shared);
    }
    format!("/{}", common.join("/"))
}

/// `str(Path(path).relative_to(base))` where `base` is a prefix of `path`.
pub fn relative_to(path: &str, base: &str) -> String {
    let parts = components(path);
    let skip = components(base).len();
    normalize(&parts[skip.min(parts.len())..].join("/"))
}

/// An `OSError` as Python prints it: `[Errno 13] Permission denied: 'out'`.
pub fn os_error(error: &std::io::Error, filename: &str) -> String {
    match error.raw_os_error() {
        Some(code) => {
            let text = std::io::Error::from_raw_os_error(code).to_string();
            let text = text.strip_suffix(&format!(" (os error {code})")).unwrap_or(&text);
            format!("[Errno {code}] {text}: {}", py_repr(filename))
        }
        None => format!("{error}: {}", py_repr(filename)),
    }
}

/// Python's `repr` of a string.
pub fn py_repr(text: &str) -> String {
    let quote = if text.contains('\'') && !text.contains('"') { '"' } else { '\'' };
    let mut out = String::with_capacity(text.len() + 2);
    out.push(quote);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// `Path(text).mkdir(parents=True, exist_ok=True)`; the error is Python's
/// message for it.
pub fn make_dirs(text: &str) -> Result<(), String> {
    match std::fs::create_dir(text) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let parent = parent(text);
            if parent == text {
                return Err(os_error(&error, text));
            }
            make_dirs(&parent)?;
            match std::fs::create_dir(text) {
                Ok(()) => Ok(()),
                Err(_) if Path::new(text).is_dir() => Ok(()),
                Err(error) => Err(os_error(&error, text)),
            }
        }
        Err(_) if Path::new(text).is_dir() => Ok(()),
        Err(error) => Err(os_error(&error, text)),
    }
}

/// `str(PurePosixPath(text).parent)`.
pub fn parent(text: &str) -> String {
    let path = normalize(text);
    match path.rfind('/') {
        Some(0) => "/".to_string(),
        Some(1) if path.starts_with("//") => "//".to_string(),
        Some(at) => path[..at].to_string(),
        None => ".".to_string(),
    }
}

pub fn path_buf(text: &str) -> PathBuf {
    PathBuf::from(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spelled_as_pathlib_does() {
        for (given, shown) in [
            ("", "."),
            (".", "."),
            ("./a", "a"),
            ("a//b/./", "a/b"),
            ("/a/", "/a"),
            ("//a", "//a"),
            ("///a", "/a"),
            ("a/../b", "a/../b"),
        ] {
            assert_eq!(normalize(given), shown, "{given:?}");
        }
        assert_eq!(join(".", "state.json"), "state.json");
        assert_eq!(join("b/", "state.json"), "b/state.json");
        assert_eq!(parent("a/b"), "a");
        assert_eq!(parent("a"), ".");
        assert_eq!(parent("/a"), "/");
        assert_eq!(common_path(&["/x/a/b".into(), "/x/a/c".into(), "/x/ab".into()]), "/x");
        assert_eq!(relative_to("/x/a/b", "/x"), "a/b");
        assert_eq!(relative_to("/x", "/x"), ".");
        assert_eq!(py_repr("it's"), "\"it's\"");
        assert_eq!(py_repr("a\\b"), "'a\\\\b'");
    }

    #[test]
    fn resolves_like_python() {
        let dir = std::env::temp_dir().join(format!("rollout-trace-paths-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("real/inner")).unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(dir.join("real"), dir.join("link")).unwrap();
        let base = std::fs::canonicalize(&dir).unwrap().to_string_lossy().into_owned();
        #[cfg(unix)]
        assert_eq!(resolve(&format!("{base}/link/inner/../inner")), format!("{base}/real/inner"));
        assert_eq!(resolve(&format!("{base}/missing/x/..")), format!("{base}/missing"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
