//! Finding the shared conformance cases for integration tests.

#![allow(dead_code)] // Each test binary uses a different part of this module.
#![allow(clippy::result_large_err)] // The crate's one error type carries its location.

use std::path::{Path, PathBuf};

/// One `conformance/<case>/` directory.
pub struct Case {
    pub name: String,
    pub dir: PathBuf,
}

impl Case {
    pub fn bundle(&self) -> PathBuf {
        self.dir.join("bundle")
    }

    /// `expected.json`, for cases the reference reduces successfully.
    pub fn expected_state(&self) -> Option<String> {
        std::fs::read_to_string(self.dir.join("expected.json")).ok()
    }
}

/// The shared directory: `$ROLLOUT_TRACE_SHARED`, else `../shared` beside
/// the repository. `None` (after a note on stderr) when there is none.
pub fn shared_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("ROLLOUT_TRACE_SHARED") {
        let dir = PathBuf::from(dir);
        // Asked for explicitly, so a wrong path is an error, not a skip.
        assert!(
            dir.join("conformance").is_dir(),
            "ROLLOUT_TRACE_SHARED={} has no conformance/ directory",
            dir.display()
        );
        return Some(dir);
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared");
    if dir.join("conformance").is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "note: skipping conformance checks: no {} (set ROLLOUT_TRACE_SHARED to the shared directory)",
            dir.join("conformance").display()
        );
        None
    }
}

/// Every case, sorted by name.
pub fn conformance_cases() -> Option<Vec<Case>> {
    let root = shared_dir()?.join("conformance");
    let mut cases: Vec<Case> = std::fs::read_dir(&root)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|dir| dir.join("bundle").is_dir())
        .map(|dir| Case { name: dir.file_name().unwrap().to_string_lossy().into_owned(), dir })
        .collect();
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(!cases.is_empty(), "no cases in {}", root.display());
    Some(cases)
}

/// Replays `bundle` under the seed crate's profile, the one the
/// conformance cases were made with.
pub fn replay_crate(bundle: &Path) -> rollout_trace::Result<rollout_trace::RolloutTrace> {
    let options = rollout_trace::ReplayOptions { profile: rollout_trace::Profile::crate_tests(), ..Default::default() };
    rollout_trace::replay_bundle_with(bundle, &options).map(|replay| replay.trace)
}

/// The recorded real-Codex sessions committed under `tests/data/codex`
/// (`<release>/<scenario>/bundle`), sorted; none where there are none.
pub fn recorded_codex_bundles() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/codex");
    let mut bundles: Vec<PathBuf> = std::fs::read_dir(&root)
        .into_iter()
        .flatten()
        .flatten()
        .flat_map(|release| std::fs::read_dir(release.path()).into_iter().flatten().flatten())
        .map(|scenario| scenario.path().join("bundle"))
        .filter(|bundle| bundle.join("manifest.json").is_file())
        .collect();
    bundles.sort();
    bundles
}

/// Copies a directory tree (files overwritten).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Every bundle the tests have: the realistic example, the shared cases and
/// the recorded real-Codex sessions, each with the profile it is meant for.
pub fn every_test_bundle() -> Vec<(PathBuf, &'static rollout_trace::Profile)> {
    use rollout_trace::Profile;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut bundles = vec![(root.join("examples/realistic-bundle"), Profile::newest())];
    for case in conformance_cases().unwrap_or_default() {
        bundles.push((case.bundle(), Profile::crate_tests()));
    }
    bundles.extend(recorded_codex_bundles().into_iter().map(|bundle| (bundle, Profile::newest())));
    bundles
}
