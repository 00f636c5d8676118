//! Every conformance case under `../shared/conformance` reduced through the
//! library: ok cases byte for byte, error cases containing the reference
//! message. Skips (with a note) where `../shared` is absent.

mod common;

/// Cases we knowingly fail. The test fails when one of them starts passing,
/// so this list can only shrink.
const EXPECTED_FAILURES: &[&str] = &[];

use std::path::Path;

use rollout_trace::{Profile, ReplayOptions};

/// What one reducer gives for a bundle: state.json bytes or an error text.
enum Expected {
    State(Vec<u8>),
    Error(String),
}

/// Reduces `bundle` under `profile` and says how it differs from `expected`.
fn check(bundle: &Path, profile: &'static Profile, expected: &Expected) -> Result<(), String> {
    let options = ReplayOptions { profile, ..ReplayOptions::default() };
    let result = rollout_trace::replay_bundle_with(bundle, &options).map(|replay| replay.trace);
    match (expected, result) {
        (Expected::State(expected), Ok(trace)) if trace.to_json().as_bytes() == expected.as_slice() => Ok(()),
        (Expected::State(expected), Ok(trace)) => {
            let got = trace.to_json();
            let at = got.bytes().zip(expected).position(|(a, b)| a != *b).unwrap_or(got.len().min(expected.len()));
            Err(format!(
                "differs at byte {at}: expected {:?}, got {:?}",
                String::from_utf8_lossy(&expected[at.saturating_sub(80)..(at + 80).min(expected.len())]),
                &got[at.saturating_sub(80).min(got.len())..(at + 80).min(got.len())]
            ))
        }
        (Expected::State(_), Err(err)) => Err(format!("failed: {err}")),
        (Expected::Error(want), Ok(_)) => Err(format!("reduced, but the reference fails with {want:?}")),
        (Expected::Error(want), Err(err)) if err.to_string().contains(want.trim()) => Ok(()),
        (Expected::Error(want), Err(err)) => Err(format!("error {err} lacks {want:?}")),
    }
}

/// `DIR/NAME.json`, else the error in `DIR/NAME.<error_suffix>`.
fn expected_in(dir: &Path, name: &str, error_suffix: &str) -> Expected {
    match std::fs::read(dir.join(format!("{name}.json"))) {
        Ok(state) => Expected::State(state),
        Err(_) => Expected::Error(std::fs::read_to_string(dir.join(format!("{name}{error_suffix}"))).unwrap()),
    }
}

#[test]
fn conformance_cases_reduce_like_the_seed_crate_under_the_crate_profile() {
    let Some(cases) = common::conformance_cases() else { return };
    let mut failures = Vec::new();
    let mut unexpected_passes = Vec::new();
    for case in &cases {
        let name = case.name.clone();
        let outcome = check(&case.bundle(), Profile::crate_tests(), &expected_in(&case.dir, "expected", "_error.txt"));
        let expected_to_fail = EXPECTED_FAILURES.contains(&name.as_str());
        match (outcome, expected_to_fail) {
            (Ok(()), true) => unexpected_passes.push(name),
            (Err(why), false) => failures.push(format!("{name}: {why}")),
            _ => {}
        }
    }
    assert!(failures.is_empty(), "{} of {} cases fail:\n{}", failures.len(), cases.len(), failures.join("\n"));
    assert!(unexpected_passes.is_empty(), "remove from EXPECTED_FAILURES: {unexpected_passes:?}");
    eprintln!("{} conformance cases reduce like the reference", cases.len());
}

/// `tests/data/release-oracle/<release>/` holds what each pinned release's
/// own `codex debug trace-reduce` gives for every conformance bundle
/// (`scripts/release_oracle.py` makes it); each is matched under the
/// profile of that release.
#[test]
fn conformance_cases_reduce_like_each_release_under_its_profile() {
    let Some(cases) = common::conformance_cases() else { return };
    let oracle = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/release-oracle");
    let mut releases: Vec<_> = std::fs::read_dir(&oracle).unwrap().map(|e| e.unwrap().path()).collect();
    releases.sort();
    assert!(releases.len() >= 5, "expected a release oracle per family in {}", oracle.display());
    let mut failures = Vec::new();
    for dir in &releases {
        let release = dir.file_name().unwrap().to_string_lossy().into_owned();
        let profile = Profile::by_name(&release).unwrap();
        for case in &cases {
            if let Err(why) = check(&case.bundle(), profile, &expected_in(dir, &case.name, ".error.txt")) {
                failures.push(format!("{release} ({}) {}: {why}", profile.name, case.name));
            }
        }
    }
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
}
