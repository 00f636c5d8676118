//! Every conformance case under `../shared/conformance` reduced through the
//! library: ok cases byte for byte, error cases containing the reference
//! message. Skips (with a note) where `../shared` is absent.

mod common;

/// Cases we knowingly fail. The test fails when one of them starts passing,
/// so this list can only shrink.
const EXPECTED_FAILURES: &[&str] = &[];

#[test]
fn conformance_cases_reduce_like_the_reference() {
    let Some(cases) = common::conformance_cases() else { return };
    let mut failures = Vec::new();
    let mut unexpected_passes = Vec::new();
    for case in &cases {
        let name = case.name.clone();
        let case = &case.dir;
        let result = rollout_trace::replay_bundle(case.join("bundle"));
        let outcome: Result<(), String> = match std::fs::read(case.join("expected.json")) {
            Ok(expected) => match result {
                Ok(trace) if trace.to_json().as_bytes() == expected.as_slice() => Ok(()),
                Ok(trace) => {
                    let got = trace.to_json();
                    let at =
                        got.bytes().zip(&expected).position(|(a, b)| a != *b).unwrap_or(got.len().min(expected.len()));
                    Err(format!(
                        "differs at byte {at}: expected {:?}, got {:?}",
                        String::from_utf8_lossy(&expected[at.saturating_sub(80)..(at + 80).min(expected.len())]),
                        &got[at.saturating_sub(80).min(got.len())..(at + 80).min(got.len())]
                    ))
                }
                Err(err) => Err(format!("failed: {err}")),
            },
            Err(_) => {
                let want = std::fs::read_to_string(case.join("expected_error.txt")).unwrap();
                match result {
                    Ok(_) => Err(format!("reduced, but the reference fails with {want:?}")),
                    Err(err) if err.to_string().contains(want.trim()) => Ok(()),
                    Err(err) => Err(format!("error {err} lacks {want:?}")),
                }
            }
        };
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
