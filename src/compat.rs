//! Compatibility profiles: how each released Codex reducer differs.
//!
//! Users compare our `state.json` with the `codex debug trace-reduce` of the
//! Codex release they run, and releases differ from each other and from the
//! seed crate in small ways (spec 05 §5.3; the binaries are the final word).
//! Releases whose reducers agree on every bundle form a family; each family
//! is one [`Profile`]: a name, the releases it covers and a table of
//! [`Rules`]. The reducer reads a rule where the rule applies; nothing else
//! in the code knows about releases.

use crate::error::{Error, ErrorKind, Result};
use crate::model::RolloutTrace;

/// One family of reducers that give the same output on every bundle.
#[derive(Debug, PartialEq, Eq)]
pub struct Profile {
    /// `crate` or `codex-<first release of the family, major.minor>`.
    pub name: &'static str,
    /// The releases the family covers, oldest first (none for `crate`).
    pub releases: &'static [&'static str],
    pub rules: Rules,
}

/// The behaviours that differ between families. Each field is read in one
/// place of the reducer (named in its comment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// Key order of re-serialized JSON summaries (`json::summarize`).
    pub summary_keys: KeyOrder,
    /// The event types the release's event parser knows, in its order (the
    /// order its "unknown variant" message lists them; `bundle` events).
    pub event_types: &'static [&'static str],
    /// Where `inference_calls.*.upstream_request_id` comes from (`inference`).
    pub upstream_request_id: UpstreamRequestId,
    /// Which `state.json` fields exist at all (`model` serialization).
    pub state_fields: StateFields,
    /// What a second end event of an inference call does (`inference`).
    pub inference_reended: Reended,
    /// Whether a codex turn's end also ends its running inference calls
    /// (`thread`); 0.125 leaves them running.
    pub turn_end_closes_inferences: bool,
    /// What a reasoning item sighted again with the same encrypted blob but
    /// other readable content does (`conversation` merge).
    pub reasoning_resighting: ReasoningResighting,
    /// Model item types read beyond those every release reads
    /// (`conversation` normalization).
    pub model_items: ModelItems,
    /// Whether agent-lifecycle runtime payloads need a `call_id` (`agents`).
    pub agent_activity_needs_call_id: bool,
    /// How exec end runtime payloads are read (`terminal`).
    pub exec_end: ExecEnd,
    /// What makes two image parts the same (`conversation` matching).
    pub image_parts: ImageParts,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageParts {
    /// As every release: an image part is a `payload_ref` to the payload it
    /// was read from, so the same image re-sent in a later request is other
    /// content, and its call id "was reused with different content".
    ByPayload,
    /// The `image-mime` repair: image parts with the same decoded bytes are
    /// the same, whatever payload and MIME label carry them; a re-sent one
    /// refers to the first payload that held those bytes.
    ByDecodedBytes,
}

/// Opt-in departures from the reference, for defects that lose a session.
/// Without any, the output is exactly the reference's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repair {
    /// See `ImageParts::ByDecodedBytes`.
    ImageMime,
}

/// Every repair with its name and what it departs from.
pub const REPAIRS: &[(Repair, &str, &str)] = &[(
    Repair::ImageMime,
    "image-mime",
    "image parts match by their decoded bytes; the reference compares the payload they came from, so a session \
     whose agent views an image fails once the image is sent again",
)];

impl Repair {
    pub fn name(self) -> &'static str {
        REPAIRS.iter().find(|(repair, _, _)| *repair == self).map_or("", |(_, name, _)| name)
    }
}

/// A set of repairs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Repairs(u8);

impl Repairs {
    pub const NONE: Repairs = Repairs(0);

    pub fn contains(self, repair: Repair) -> bool {
        self.0 & (1 << repair as u8) != 0
    }

    pub fn with(self, repair: Repair) -> Repairs {
        Repairs(self.0 | 1 << repair as u8)
    }

    pub fn iter(self) -> impl Iterator<Item = Repair> {
        REPAIRS.iter().map(|(repair, _, _)| *repair).filter(move |repair| self.contains(*repair))
    }

    /// The repairs a list of names asks for; `all` is every one.
    pub fn by_names<S: AsRef<str>>(names: &[S]) -> Result<Repairs> {
        let mut repairs = Repairs::NONE;
        for name in names {
            let name = name.as_ref().trim();
            for (repair, known, _) in REPAIRS {
                if name == "all" || name == *known {
                    repairs = repairs.with(*repair);
                }
            }
            if name != "all" && !REPAIRS.iter().any(|(_, known, _)| *known == name) {
                let known: Vec<&str> = REPAIRS.iter().map(|(_, name, _)| *name).collect();
                let message = format!("unknown repair {name:?}; choose from: {}, all", known.join(", "));
                return Err(Error::new(ErrorKind::Usage, message));
            }
        }
        Ok(repairs)
    }
}

impl Rules {
    /// These rules with `repairs` applied.
    pub fn with_repairs(mut self, repairs: Repairs) -> Rules {
        for repair in repairs.iter() {
            match repair {
                Repair::ImageMime => self.image_parts = ImageParts::ByDecodedBytes,
            }
        }
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOrder {
    /// Keys sorted byte-wise at every level (serde_json without
    /// `preserve_order`, as in the crate's own tests).
    Sorted,
    /// Source order; a duplicate key keeps its first position and its last
    /// value; removing a key moves the last key into its slot (serde_json
    /// with `preserve_order`, as every released binary is built).
    Source,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamRequestId {
    /// The completion event's `response_id`.
    ResponseId,
    /// The event's own `upstream_request_id` (the HTTP x-request-id).
    Upstream,
}

/// Fields of `state.json` that some families do not write at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateFields {
    pub inference_response_id: bool,
    pub tool_mcp_call_id: bool,
    pub usage_cache_write_input_tokens: bool,
}

impl StateFields {
    /// The replay fills every field; this leaves out those the profile's
    /// releases do not write.
    pub fn leave_out_unwritten(&self, trace: &mut RolloutTrace) {
        if !self.inference_response_id {
            trace.inference_calls.values_mut().for_each(|call| call.response_id = None);
        }
        if !self.tool_mcp_call_id {
            trace.tool_calls.values_mut().for_each(|call| call.mcp_call_id = None);
        }
        if !self.usage_cache_write_input_tokens {
            for usage in trace.inference_calls.values_mut().filter_map(|call| call.usage.as_mut()) {
                usage.cache_write_input_tokens = None;
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reended {
    /// The first end stands; a later one adds its response only.
    FirstEndStands,
    /// The last end replaces the window, status, upstream request id and
    /// response payload id (null when the later event has none).
    LastEndReplaces,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReasoningResighting {
    /// Keep the stored readable parts, add the kind the stored item lacks.
    Merge,
    /// Readable parts are taken only by an item that has none; other
    /// readable parts than the stored ones are an error ("reasoning
    /// encrypted_content was reused with different readable content").
    SetOnce,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelItems {
    /// `additional_tools` items are skipped (else: unsupported item type).
    pub additional_tools: bool,
    /// `context_compaction` items are compaction summaries.
    pub context_compaction: bool,
    /// `agent_message` items are delivered inter-agent messages.
    pub agent_message: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecEnd {
    /// `stdout`, `stderr` and `formatted_output` are required and kept.
    Streams,
    /// Only `aggregated_output` is read (absent: ""); it becomes `stdout`,
    /// `stderr` is "" and `formatted_output` null.
    Aggregated,
}

const EVENTS_0_125: &[&str] = &[
    "rollout_started",
    "rollout_ended",
    "thread_started",
    "thread_ended",
    "codex_turn_started",
    "codex_turn_ended",
    "inference_started",
    "inference_completed",
    "inference_failed",
    "tool_call_started",
    "tool_call_runtime_started",
    "tool_call_runtime_ended",
    "tool_call_ended",
    "code_cell_started",
    "code_cell_initial_response",
    "code_cell_ended",
    "compaction_request_started",
    "compaction_request_completed",
    "compaction_request_failed",
    "compaction_installed",
    "agent_result_observed",
    "protocol_event_observed",
    "other",
];

/// Every event type of the format (01 §3), in the parser's order.
pub const EVENTS_ALL: &[&str] = &[
    "rollout_started",
    "rollout_ended",
    "thread_started",
    "thread_ended",
    "codex_turn_started",
    "codex_turn_ended",
    "inference_started",
    "inference_completed",
    "inference_failed",
    "inference_cancelled",
    "tool_call_started",
    "mcp_tool_call_correlation_assigned",
    "tool_call_runtime_started",
    "tool_call_runtime_ended",
    "tool_call_ended",
    "code_cell_started",
    "code_cell_initial_response",
    "code_cell_ended",
    "compaction_request_started",
    "compaction_request_completed",
    "compaction_request_failed",
    "compaction_installed",
    "agent_result_observed",
    "protocol_event_observed",
    "other",
];

/// Family D's rules with sorted summaries: the seed crate under its own
/// tests (`../shared/conformance`).
const CRATE_RULES: Rules = Rules {
    summary_keys: KeyOrder::Sorted,
    event_types: EVENTS_ALL,
    upstream_request_id: UpstreamRequestId::Upstream,
    state_fields: StateFields {
        inference_response_id: true,
        tool_mcp_call_id: true,
        usage_cache_write_input_tokens: true,
    },
    inference_reended: Reended::FirstEndStands,
    turn_end_closes_inferences: true,
    reasoning_resighting: ReasoningResighting::Merge,
    model_items: ModelItems { additional_tools: true, context_compaction: true, agent_message: true },
    agent_activity_needs_call_id: false,
    exec_end: ExecEnd::Streams,
    image_parts: ImageParts::ByPayload,
};

const D: Rules = Rules { summary_keys: KeyOrder::Source, ..CRATE_RULES };
const C: Rules = Rules { state_fields: StateFields { usage_cache_write_input_tokens: false, ..D.state_fields }, ..D };
const B: Rules = Rules {
    model_items: ModelItems { additional_tools: false, agent_message: false, ..C.model_items },
    agent_activity_needs_call_id: true,
    ..C
};
const A: Rules = Rules {
    event_types: EVENTS_0_125,
    upstream_request_id: UpstreamRequestId::ResponseId,
    state_fields: StateFields { inference_response_id: false, tool_mcp_call_id: false, ..B.state_fields },
    inference_reended: Reended::LastEndReplaces,
    turn_end_closes_inferences: false,
    reasoning_resighting: ReasoningResighting::SetOnce,
    model_items: ModelItems { context_compaction: false, ..B.model_items },
    ..B
};
const E: Rules = Rules { exec_end: ExecEnd::Aggregated, ..D };

/// Every profile, oldest family first, `crate` last.
pub static PROFILES: &[Profile] = &[
    Profile { name: "codex-0.125", releases: &["0.125.0"], rules: A },
    Profile {
        name: "codex-0.133",
        releases: &["0.133.0", "0.134.0", "0.135.0", "0.136.0", "0.137.0", "0.139.0"],
        rules: B,
    },
    Profile { name: "codex-0.142", releases: &["0.142.5", "0.144.4"], rules: C },
    Profile {
        name: "codex-0.147",
        releases: &[
            "0.147.0", "0.149.0", "0.153.4", "0.154.0", "0.155.1", "0.156.0", "0.156.1", "0.157.0", "0.157.1",
            "0.158.0", "0.159.0", "0.159.1", "0.159.2", "0.159.3", "0.160.0", "0.160.1", "0.161.0",
        ],
        rules: D,
    },
    Profile { name: "codex-0.162", releases: &["0.162.0", "0.162.1", "0.163.0"], rules: E },
    Profile { name: "crate", releases: &[], rules: CRATE_RULES },
];

impl Profile {
    /// The newest release's family: what a user of current Codex compares with.
    pub fn newest() -> &'static Profile {
        &PROFILES[PROFILES.len() - 2]
    }

    /// The seed crate's behaviour (`../shared/conformance`).
    pub fn crate_tests() -> &'static Profile {
        &PROFILES[PROFILES.len() - 1]
    }

    /// The profile a name stands for: a family (`codex-0.147`), a release
    /// (`codex-0.158.0` or `0.158.0`), `crate`, or `latest`.
    pub fn by_name(name: &str) -> Result<&'static Profile> {
        let wanted = name.trim();
        if wanted == "latest" || wanted == "newest" {
            return Ok(Self::newest());
        }
        let release = wanted.strip_prefix("codex-").unwrap_or(wanted);
        PROFILES
            .iter()
            .find(|p| p.name == wanted || p.releases.contains(&release))
            .ok_or_else(|| Error::new(ErrorKind::Usage, unknown_profile_message(name)))
    }

    /// The profile for an optional name: the newest release's when `None`.
    pub fn by_optional_name(name: Option<&str>) -> Result<&'static Profile> {
        name.map_or(Ok(Self::newest()), Self::by_name)
    }

    /// The oldest release of the family (none for `crate`).
    pub fn first_release(&self) -> Option<&'static str> {
        self.releases.first().copied()
    }

    pub fn newest_release(&self) -> Option<&'static str> {
        self.releases.last().copied()
    }
}

fn unknown_profile_message(name: &str) -> String {
    let families: Vec<String> = PROFILES
        .iter()
        .map(|p| match (p.first_release(), p.newest_release()) {
            (Some(first), Some(last)) if first != last => format!("{} (Codex {first} to {last})", p.name),
            (Some(only), _) => format!("{} (Codex {only})", p.name),
            _ => format!("{} (the seed crate's own tests)", p.name),
        })
        .collect();
    format!(
        "unknown compatibility profile {name:?}; choose one of: {}, or a covered release such as codex-{} (default: {})",
        families.join(", "),
        Profile::newest().newest_release().unwrap_or_default(),
        Profile::newest().name,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_families_and_releases_resolve() {
        assert_eq!(Profile::by_name("codex-0.147").unwrap().name, "codex-0.147");
        assert_eq!(Profile::by_name("codex-0.158.0").unwrap().name, "codex-0.147");
        assert_eq!(Profile::by_name("0.163.0").unwrap().name, "codex-0.162");
        assert_eq!(Profile::by_name("crate").unwrap().name, "crate");
        assert_eq!(Profile::by_name("latest").unwrap(), Profile::newest());
        assert_eq!(Profile::by_optional_name(None).unwrap().name, "codex-0.162");
        let err = Profile::by_name("codex-0.120.0").unwrap_err();
        assert_eq!(err.kind, ErrorKind::Usage);
        assert!(err.message.contains("codex-0.125 (Codex 0.125.0)"), "{}", err.message);
        assert!(err.message.contains("codex-0.147 (Codex 0.147.0 to 0.161.0)"), "{}", err.message);
    }

    #[test]
    fn every_release_from_0_125_to_the_newest_is_covered_once() {
        let releases: Vec<&str> = PROFILES.iter().flat_map(|p| p.releases.iter().copied()).collect();
        assert_eq!(releases.len(), 29);
        let mut unique = releases.clone();
        unique.dedup();
        assert_eq!(unique, releases);
        assert_eq!(releases.first(), Some(&"0.125.0"));
        assert_eq!(releases.last(), Some(&"0.163.0"));
    }
}
