//! Replaying a bundle into a `RolloutTrace` (spec 02 and 03).
//!
//! One `Reducer` holds the trace being built plus the hidden state of the
//! replay (snapshots, queues, indexes). Each reduced concept has its own
//! module that adds the handlers for its events to `Reducer`:
//!
//! * `thread`: threads and codex turns;
//! * `inference`: inference calls and token usage;
//! * `read_ahead`: reading events and payloads ahead of the reducer;
//! * `request`: reading inference requests, fast;
//! * `conversation`: model items → conversation items, reconciliation;
//! * `items`: what the replay keeps per conversation item, by ordinal;
//! * `compaction`: compaction requests and installed checkpoints;
//! * `tool`: tool-call lifecycle and model-visible links;
//! * `terminal`: terminal operations and sessions;
//! * `code_cell`: code-mode cells;
//! * `agents`: multi-agent interaction edges.

mod agents;
mod code_cell;
mod compaction;
mod conversation;
mod inference;
mod items;
mod lenient;
mod live;
mod read_ahead;
mod request;
mod terminal;
mod thread;
mod tool;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use serde_json::Value;

use crate::bundle::{LocatedEvent, TraceBundle};
use crate::compat::{Profile, Rules};
pub use crate::compat::{Repair, Repairs};
use crate::error::{Error, ErrorKind, Result};
use crate::format::{RawPayloadRef, RawTraceEvent, RawTraceEventPayload as E, EVENT_LOG_FILE};
use crate::limits::Limits;
use crate::model::RolloutTrace;
use items::ItemRef;
pub use lenient::Diagnostic;
use lenient::Skipped;
pub use live::{Follower, Update};

/// The reducer's own indexes. Their keys come from the bundle, so they are
/// seeded randomly per map (foldhash's "minimal DoS resistance": no fixed
/// set of colliding keys exists, and a bundle is a file, not a party that
/// can watch the replay to learn the seeds); they are never iterated into
/// the output. Much faster than SipHash for the short ids hashed for every
/// item of every request.
pub(crate) type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// Replays the bundle at `path` exactly as the newest Codex release's
/// reducer does.
pub fn replay_bundle(path: impl AsRef<Path>) -> Result<RolloutTrace> {
    Ok(replay_bundle_with(path, &ReplayOptions::default())?.trace)
}

/// How to replay: whose reducer to match, admission limits, what to do
/// with events that cannot be reduced, and whether to read on a second
/// thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayOptions {
    /// The reducer matched byte for byte (default: the newest release's).
    pub profile: &'static Profile,
    pub limits: Limits,
    /// For crashed sessions: when an event cannot be read or reduced,
    /// return the trace reduced from every event before it.
    pub partial: bool,
    /// Skip every event that cannot be read or reduced (and those that
    /// fail for want of it) and reduce all the others: the result is the
    /// strict replay of the bundle without the events reported.
    pub lenient: bool,
    /// Read and parse payloads on a second thread while the reducer applies
    /// earlier events (on by default). The result is the same either way;
    /// turn it off where other replays already keep every core busy.
    pub read_ahead: bool,
    /// Opt-in departures from the reference (none: exactly the reference).
    pub repairs: Repairs,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            profile: Profile::newest(),
            limits: Limits::default(),
            partial: false,
            lenient: false,
            read_ahead: true,
            repairs: Repairs::NONE,
        }
    }
}

/// The result of a replay. `diagnostics` is empty unless a partial or
/// lenient replay left events out; then it says which and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replay {
    pub trace: RolloutTrace,
    pub diagnostics: Vec<Diagnostic>,
    /// Non-blank lines of `trace.jsonl` read (applied or left out).
    pub events: u64,
    /// Where opt-in repairs changed the result (none without repairs).
    pub repairs: Vec<RepairNote>,
    /// The bundle replayed, for reading its payloads later.
    pub bundle: TraceBundle,
}

impl Replay {
    pub fn is_partial(&self) -> bool {
        !self.diagnostics.is_empty()
    }
}

/// Replays the bundle at `path` with explicit options. The manifest's
/// schema version is not checked, as in the reference.
pub fn replay_bundle_with(path: impl AsRef<Path>, options: &ReplayOptions) -> Result<Replay> {
    let bundle = TraceBundle::open_unchecked_version(path, options.limits)?;
    replay_with(bundle, options)
}

/// Replays an opened bundle strictly, as the reducer of `profile` does.
pub fn replay(bundle: &TraceBundle, profile: &'static Profile) -> Result<RolloutTrace> {
    let options = ReplayOptions { profile, ..ReplayOptions::default() };
    let shared = Arc::new(bundle.clone());
    crate::error::catch_panics(|| run(&shared, &options, &Plan::ALL).map(|run| run.trace).map_err(|f| f.error))
        .map_err(|err| err.with_bundle(bundle.root()))
}

/// Replays an opened bundle with `options` (its limits are the bundle's
/// own, given when it was opened).
pub fn replay_with(bundle: TraceBundle, options: &ReplayOptions) -> Result<Replay> {
    let root = bundle.root().to_path_buf();
    crate::error::catch_panics(|| replay_checked(bundle, options)).map_err(|err| err.with_bundle(&root))
}

fn replay_checked(bundle: TraceBundle, options: &ReplayOptions) -> Result<Replay> {
    let bundle = Arc::new(bundle);
    if options.lenient {
        return replay_lenient(bundle, options);
    }
    match run(&bundle, options, &Plan::ALL) {
        Ok(run) => Ok(Replay {
            trace: run.trace,
            diagnostics: Vec::new(),
            events: run.events,
            repairs: run.repairs,
            bundle: Arc::unwrap_or_clone(bundle),
        }),
        Err(failure) if options.partial && failure.error.location.line.is_some() => {
            // A failed event may have half-applied; replaying the clean prefix
            // again is simpler and cheaper than undoing it.
            let stop = failure.error.location.line;
            let plan = Plan { stop_before_line: stop, ..Plan::ALL };
            let prefix = run(&bundle, options, &plan).map_err(|f| f.error)?;
            let event_type = failure.event.map(|(_, event)| event.payload.type_name());
            let diagnostics = vec![Diagnostic { error: failure.error, event_type, depends_on_line: None }];
            let events = prefix.events + 1;
            Ok(Replay {
                trace: prefix.trace,
                diagnostics,
                events,
                repairs: prefix.repairs,
                bundle: Arc::unwrap_or_clone(bundle),
            })
        }
        Err(failure) => Err(failure.error),
    }
}

/// See `lenient`: each failing event is skipped and the replay starts over
/// without it, until one runs through.
fn replay_lenient(bundle: Arc<TraceBundle>, options: &ReplayOptions) -> Result<Replay> {
    let mut skipped = Skipped::default();
    loop {
        let plan = Plan { stop_before_line: None, skipped: Some(&skipped), keep_going: true };
        match run(&bundle, options, &plan) {
            Ok(run) => {
                let unreadable = run.unreadable.into_iter().map(|error| Diagnostic {
                    error,
                    event_type: None,
                    depends_on_line: None,
                });
                let mut diagnostics: Vec<Diagnostic> = skipped.diagnostics().cloned().chain(unreadable).collect();
                diagnostics.sort_by_key(Diagnostic::line);
                let events = run.events + skipped.by_line.len() as u64;
                return Ok(Replay {
                    trace: run.trace,
                    diagnostics,
                    events,
                    repairs: run.repairs,
                    bundle: Arc::unwrap_or_clone(bundle),
                });
            }
            Err(Failure { error, event: Some((line, event)) }) => skipped.add(line, error, &event),
            Err(Failure { error, event: None }) => return Err(error),
        }
    }
}

/// Which events one pass over the log applies.
struct Plan<'a> {
    /// Apply only the events on lines before this one, and skip the
    /// end-of-replay step (a partial replay's clean prefix).
    stop_before_line: Option<u64>,
    /// Lines left out as if they were not in the file (lenient replay).
    skipped: Option<&'a Skipped>,
    /// Report lines that are not events and go on (lenient replay).
    keep_going: bool,
}

impl Plan<'_> {
    const ALL: Plan<'static> = Plan { stop_before_line: None, skipped: None, keep_going: false };
}

/// A pass that applied every event of its plan.
struct Run {
    trace: RolloutTrace,
    /// Lines that could not be read as events (when the plan goes on).
    unreadable: Vec<Error>,
    /// Events read, unreadable lines included, skipped lines not.
    events: u64,
    repairs: Vec<RepairNote>,
}

/// Why a pass stopped: the error, with the event when it was one that
/// failed (rather than the log, a line or the end-of-replay step).
struct Failure {
    error: Error,
    event: Option<(u64, RawTraceEvent)>,
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure { error, event: None }
    }
}

fn run(bundle: &Arc<TraceBundle>, options: &ReplayOptions, plan: &Plan<'_>) -> std::result::Result<Run, Failure> {
    let _payload_dir = bundle.hold_payload_dir();
    let rules = options.profile.rules.with_repairs(options.repairs);
    let mut events = bundle.events()?.with_event_types(rules.event_types);
    if plan.keep_going {
        events = events.keep_going();
    }
    let skipped = plan.skipped;
    let events = events.filter(|event| match (event, skipped) {
        (Ok(event), Some(skipped)) => !skipped.contains(event.line),
        _ => true,
    });
    let reader = read_ahead::PayloadReader::new(bundle, rules);
    let mut reducer = Reducer::new(bundle, rules);
    let (mut unreadable, mut count) = (Vec::new(), 0);
    read_ahead::with_ready_events(events, reader, plan.stop_before_line, options.read_ahead, |events| {
        for ready in events {
            count += 1;
            let read_ahead::ReadyEvent { event: LocatedEvent { line, event }, payloads, .. } = match ready {
                Ok(ready) => ready,
                Err(_) if plan.stop_before_line.is_some() => break,
                Err(error) if plan.keep_going && error.location.line.is_some() => {
                    unreadable.push(error);
                    continue;
                }
                Err(error) => return Err(Failure::from(error)),
            };
            reducer.ready = payloads;
            reducer.at = (line, event.seq);
            if let Err(err) = reducer.apply(&event) {
                let error =
                    err.with_bundle(bundle.root()).with_file(EVENT_LOG_FILE).with_line(line).with_seq(event.seq);
                return Err(Failure { error, event: Some((line, event)) });
            }
        }
        Ok(())
    })?;
    let repairs = std::mem::take(&mut reducer.repairs);
    let trace = if plan.stop_before_line.is_some() {
        reducer.into_trace()
    } else {
        reducer.finish().map_err(|err| err.with_bundle(bundle.root()))?
    };
    Ok(Run { trace, unreadable, events: count, repairs })
}

/// The envelope facts every handler may need.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EventContext<'e> {
    pub seq: u64,
    pub wall_time_unix_ms: i64,
    pub thread_id: Option<&'e str>,
    pub codex_turn_id: Option<&'e str>,
}

/// The replay: the trace being built and the hidden reducer state.
pub(crate) struct Reducer {
    bundle: Arc<TraceBundle>,
    /// The profile's rules, read where each applies.
    rules: Rules,
    trace: RolloutTrace,
    /// Every conversation item's replay state; its length gives the next
    /// `conversation_item:<n>` ordinal.
    items: items::Items,
    /// Next `terminal_operation:<n>` ordinal.
    next_terminal_operation_ordinal: u64,
    /// Last model-visible snapshot per thread (02 §2).
    snapshots: HashMap<String, Vec<ItemRef>>,
    /// The payloads read ahead for the event being applied.
    ready: read_ahead::ReadyPayloads,
    /// The candidates of the last inference request per thread, which the
    /// next request's repeated items reuse.
    candidate_memos: request::CandidateMemos,
    /// Replacement history of the latest compaction not yet consumed by a
    /// full request, per thread.
    pending_replacements: HashMap<String, Vec<ItemRef>>,
    /// Tool calls by model-visible call id.
    model_call_tools: tool::ModelCallTools,
    /// Response id → inference calls that have it, in id order: an
    /// incremental request finds its previous call without a scan of all.
    calls_by_response_id: HashMap<String, BTreeSet<String>>,
    code_cells: code_cell::CodeCellState,
    /// Multi-agent deliveries waiting for their recipient item (03 §6.4).
    pending_edges: Vec<agents::PendingEdge>,
    /// Bytes of the bundle read so far, against `Limits::max_bundle_bytes`.
    bytes_read: u64,
    /// The line and seq of the event being applied.
    at: (u64, u64),
    /// Image-mime repair: the first payload that held each image's bytes.
    image_payloads: HashMap<u128, String>,
    /// Where repairs changed the result.
    repairs: Vec<RepairNote>,
}

/// Where an opt-in repair made the result depart from the reference's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepairNote {
    pub repair: Repair,
    pub line: u64,
    pub seq: u64,
    pub raw_payload_id: String,
    pub message: String,
}

impl Reducer {
    fn new(bundle: &Arc<TraceBundle>, rules: Rules) -> Self {
        Reducer {
            bundle: bundle.clone(),
            rules,
            trace: RolloutTrace::new(bundle.manifest()),
            items: items::Items::default(),
            next_terminal_operation_ordinal: 1,
            snapshots: HashMap::default(),
            ready: read_ahead::ReadyPayloads::default(),
            candidate_memos: request::CandidateMemos::default(),
            pending_replacements: HashMap::default(),
            model_call_tools: tool::ModelCallTools::default(),
            calls_by_response_id: HashMap::default(),
            code_cells: code_cell::CodeCellState::default(),
            pending_edges: Vec::new(),
            bytes_read: std::fs::metadata(bundle.event_log_path()).map_or(0, |m| m.len()),
            at: (0, 0),
            image_payloads: HashMap::default(),
            repairs: Vec::new(),
        }
    }

    fn note_repair(&mut self, repair: Repair, raw_payload_id: &str, message: String) {
        let (line, seq) = self.at;
        self.repairs.push(RepairNote { repair, line, seq, raw_payload_id: raw_payload_id.to_string(), message });
    }

    /// Applies one event: register its payload refs, then handle it.
    fn apply(&mut self, event: &RawTraceEvent) -> Result<()> {
        for payload in event.payload.payload_refs() {
            self.trace.raw_payloads.insert(payload.raw_payload_id.clone(), payload.clone());
        }
        let max_payloads = self.bundle.limits().max_payloads;
        if self.trace.raw_payloads.len() as u64 > max_payloads {
            return Err(Error::new(ErrorKind::Limit, format!("bundle references more than {max_payloads} payloads")));
        }
        let cx = EventContext {
            seq: event.seq,
            wall_time_unix_ms: event.wall_time_unix_ms,
            thread_id: event.thread_id.as_deref(),
            codex_turn_id: event.codex_turn_id.as_deref(),
        };
        match &event.payload {
            E::RolloutStarted { trace_id, root_thread_id } => {
                self.trace.trace_id = trace_id.clone();
                self.trace.root_thread_id = root_thread_id.clone();
                Ok(())
            }
            E::RolloutEnded { status } => {
                self.trace.status = *status;
                self.trace.ended_at_unix_ms = Some(cx.wall_time_unix_ms);
                Ok(())
            }
            E::ThreadStarted { thread_id, agent_path, metadata_payload } => {
                self.thread_started(cx, thread_id, agent_path, metadata_payload.as_ref())
            }
            E::ThreadEnded { thread_id, status } => self.thread_ended(cx, thread_id, *status),
            E::CodexTurnStarted { codex_turn_id, thread_id } => self.codex_turn_started(cx, codex_turn_id, thread_id),
            E::CodexTurnEnded { codex_turn_id, status } => self.codex_turn_ended(cx, codex_turn_id, *status),
            E::InferenceStarted {
                inference_call_id,
                thread_id,
                codex_turn_id,
                model,
                provider_name,
                request_payload,
            } => self.inference_started(
                cx,
                inference::InferenceStart {
                    inference_call_id,
                    thread_id,
                    codex_turn_id,
                    model,
                    provider_name,
                    request_payload,
                },
            ),
            E::InferenceCompleted { inference_call_id, response_id, upstream_request_id, response_payload } => self
                .inference_ended(
                    cx,
                    inference::InferenceEnd {
                        inference_call_id,
                        status: crate::model::ExecutionStatus::Completed,
                        response_id: response_id.as_deref(),
                        upstream_request_id: upstream_request_id.as_deref(),
                        response_payload: Some(response_payload),
                    },
                ),
            E::InferenceFailed { inference_call_id, upstream_request_id, partial_response_payload, .. } => self
                .inference_ended(
                    cx,
                    inference::InferenceEnd {
                        inference_call_id,
                        status: crate::model::ExecutionStatus::Failed,
                        response_id: None,
                        upstream_request_id: upstream_request_id.as_deref(),
                        response_payload: partial_response_payload.as_ref(),
                    },
                ),
            E::InferenceCancelled { inference_call_id, upstream_request_id, partial_response_payload, .. } => self
                .inference_ended(
                    cx,
                    inference::InferenceEnd {
                        inference_call_id,
                        status: crate::model::ExecutionStatus::Cancelled,
                        response_id: None,
                        upstream_request_id: upstream_request_id.as_deref(),
                        response_payload: partial_response_payload.as_ref(),
                    },
                ),
            E::ToolCallStarted {
                tool_call_id,
                model_visible_call_id,
                code_mode_runtime_tool_id,
                requester,
                kind,
                summary,
                invocation_payload,
            } => self.tool_call_started(
                cx,
                tool::ToolStart {
                    tool_call_id,
                    model_visible_call_id: model_visible_call_id.as_deref(),
                    code_mode_runtime_tool_id: code_mode_runtime_tool_id.as_deref(),
                    requester,
                    kind,
                    summary,
                    invocation_payload: invocation_payload.as_ref(),
                },
            ),
            E::McpToolCallCorrelationAssigned { tool_call_id, mcp_call_id } => {
                self.mcp_correlation_assigned(tool_call_id, mcp_call_id)
            }
            E::ToolCallRuntimeStarted { tool_call_id, runtime_payload } => {
                self.tool_runtime_started(cx, tool_call_id, runtime_payload)
            }
            E::ToolCallRuntimeEnded { tool_call_id, status, runtime_payload } => {
                self.tool_runtime_ended(cx, tool_call_id, *status, runtime_payload)
            }
            E::ToolCallEnded { tool_call_id, status, result_payload } => {
                self.tool_call_ended(cx, tool_call_id, *status, result_payload.as_ref())
            }
            E::CodeCellStarted { runtime_cell_id, model_visible_call_id, source_js } => {
                self.code_cell_started(cx, runtime_cell_id, model_visible_call_id, source_js)
            }
            E::CodeCellInitialResponse { runtime_cell_id, status, .. } => {
                self.code_cell_lifecycle(cx, runtime_cell_id, code_cell::Lifecycle::InitialResponse(*status))
            }
            E::CodeCellEnded { runtime_cell_id, status, .. } => {
                self.code_cell_lifecycle(cx, runtime_cell_id, code_cell::Lifecycle::Ended(*status))
            }
            E::CompactionRequestStarted {
                compaction_id,
                compaction_request_id,
                thread_id,
                codex_turn_id,
                model,
                provider_name,
                request_payload,
            } => self.compaction_request_started(
                cx,
                compaction::CompactionRequestStart {
                    compaction_id,
                    compaction_request_id,
                    thread_id,
                    codex_turn_id,
                    model,
                    provider_name,
                    request_payload,
                },
            ),
            E::CompactionRequestCompleted { compaction_id, compaction_request_id, response_payload } => {
                self.compaction_request_ended(cx, compaction_id, compaction_request_id, Some(response_payload))
            }
            E::CompactionRequestFailed { compaction_id, compaction_request_id, .. } => {
                self.compaction_request_ended(cx, compaction_id, compaction_request_id, None)
            }
            E::CompactionInstalled { compaction_id, checkpoint_payload } => {
                self.compaction_installed(cx, compaction_id, checkpoint_payload)
            }
            E::AgentResultObserved {
                edge_id,
                child_thread_id,
                child_codex_turn_id,
                parent_thread_id,
                message,
                carried_payload,
            } => self.agent_result_observed(
                cx,
                agents::AgentResult {
                    edge_id,
                    child_thread_id,
                    child_codex_turn_id,
                    parent_thread_id,
                    message,
                    carried_payload: carried_payload.as_ref(),
                },
            ),
            E::ProtocolEventObserved { .. } => Ok(()),
            E::Other { .. } => Err(Error::reduce("raw trace event has no reducer implementation")),
        }
    }

    /// End of replay: spawn edges that never met their child's message fall
    /// back to the child thread; every other pending delivery is dropped.
    fn finish(mut self) -> Result<RolloutTrace> {
        self.resolve_spawn_edge_fallbacks()?;
        Ok(self.into_trace())
    }

    /// The trace reduced so far, with the conversation items the replay
    /// kept aside (see `items`).
    fn into_trace(self) -> RolloutTrace {
        let mut trace = self.trace;
        debug_assert!(trace.conversation_items.is_empty());
        trace.conversation_items = self.items.into_conversation_items().collect();
        self.rules.state_fields.leave_out_unwritten(&mut trace);
        trace
    }

    /// Reads and parses a payload file (reducer §1.2), unless it was read
    /// ahead for this event.
    fn read_payload(&mut self, payload: &RawPayloadRef) -> Result<Value> {
        let (value, size) = match self.ready.take_value(payload) {
            Some(read) => read?,
            None => {
                let bytes = self.bundle.read_payload_bytes(payload)?;
                (self.bundle.parse_payload(payload, &bytes)?, bytes.len())
            }
        };
        self.count_payload_bytes(payload, size)?;
        Ok(value)
    }

    /// Counts a parsed payload's bytes against the bundle limit.
    fn count_payload_bytes(&mut self, payload: &RawPayloadRef, size: usize) -> Result<()> {
        self.bytes_read += size as u64;
        let limit = self.bundle.limits().max_bundle_bytes;
        if self.bytes_read > limit {
            return Err(Error::new(ErrorKind::Limit, format!("bundle is larger than the limit of {limit} bytes"))
                .with_payload(&payload.raw_payload_id));
        }
        Ok(())
    }
}

/// Appends `value` unless the list already holds it (03 §0.2).
pub(crate) fn push_unique<T: PartialEq>(list: &mut Vec<T>, value: T) {
    if !list.contains(&value) {
        list.push(value);
    }
}

/// `push_unique` of a string, copied only when added: hooks link the same
/// items again on every request that repeats them. Whether it was added.
pub(crate) fn push_unique_str(list: &mut Vec<String>, value: &str) -> bool {
    let absent = !list.iter().any(|present| present == value);
    if absent {
        list.push(value.to_string());
    }
    absent
}

/// Sorted copy of a set of ids, for "ascending id" scans over an index.
pub(crate) fn sorted_ids<'a>(ids: impl IntoIterator<Item = &'a String>) -> Vec<String> {
    let set: std::collections::BTreeSet<&String> = ids.into_iter().collect();
    set.into_iter().cloned().collect()
}
