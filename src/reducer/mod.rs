//! Replaying a bundle into a `RolloutTrace` (spec 02 and 03).

use std::path::Path;

use crate::bundle::TraceBundle;
use crate::error::{Error, Result};
use crate::model::RolloutTrace;

/// Replays the bundle at `path` exactly as the reference reducer does.
pub fn replay_bundle(path: impl AsRef<Path>) -> Result<RolloutTrace> {
    let bundle = TraceBundle::open_unchecked_version(path)?;
    replay(&bundle)
}

/// Replays an opened bundle.
pub fn replay(bundle: &TraceBundle) -> Result<RolloutTrace> {
    let _ = bundle;
    Err(Error::reduce("reducer not implemented yet"))
}
