//! Following a bundle while its session still writes it.
//!
//! A `Follower` keeps the replay's state between updates: each `update`
//! reads only the complete lines appended since the last one (a line still
//! being written is left for later), reads the payloads they reference and
//! applies them with the same reducer a replay uses. `snapshot` is then the
//! trace a strict replay of exactly the lines consumed so far gives: the
//! state so far, plus what the end of a replay adds.
//!
//! Under `lenient`, an event that fails is added to the skipped lines and
//! the state is rebuilt from the start without it, as a lenient replay
//! does; the update says so (`reset`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::lenient::{Diagnostic, Skipped};
use super::read_ahead::{PayloadReader, ReadyEvent};
use super::{agents, Reducer, ReplayOptions};
use crate::bundle::{LocatedEvent, PayloadDirHold, TraceBundle};
use crate::error::{Error, ErrorKind, Result};
use crate::format::{RawTraceEvent, RawTraceEventPayload as E, EVENT_LOG_FILE};
use crate::model::RolloutTrace;

/// What one `update` consumed and changed. Ids are grouped by the name of
/// their map in `state.json` (`tool_calls`, `conversation_items`, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Update {
    /// Lines of `trace.jsonl` consumed (blank ones included).
    pub lines: u64,
    /// Events applied.
    pub events: u64,
    /// Objects that did not exist before.
    pub added: BTreeMap<&'static str, Vec<String>>,
    /// Objects that existed and that the new events changed or may have
    /// changed (the objects they are about, and those a turn's or thread's
    /// end closes).
    pub updated: BTreeMap<&'static str, Vec<String>>,
    /// The state was rebuilt from the start (a lenient follower skipped a
    /// failing event): read everything again.
    pub reset: bool,
}

impl Update {
    pub fn is_empty(&self) -> bool {
        self.lines == 0 && !self.reset
    }
}

/// The identity of the event log file, to notice it being replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileIdentity {
    #[cfg(unix)]
    device: u64,
    #[cfg(unix)]
    inode: u64,
}

impl FileIdentity {
    fn of(metadata: &std::fs::Metadata) -> Self {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            FileIdentity { device: metadata.dev(), inode: metadata.ino() }
        }
        #[cfg(not(unix))]
        {
            let _ = metadata;
            FileIdentity {}
        }
    }
}

pub struct Follower {
    bundle: Arc<TraceBundle>,
    /// A follower replays for as long as it lives.
    _payload_dir: PayloadDirHold,
    options: ReplayOptions,
    reducer: Reducer,
    reader: PayloadReader,
    /// Bytes of the log consumed (whole lines) and the last line's number.
    offset: u64,
    line: u64,
    /// Events applied (or skipped) so far.
    events: u64,
    /// The log file read, once it has been seen.
    log: Option<FileIdentity>,
    skipped: Skipped,
    unreadable: Vec<Error>,
    /// A strict follower stops at the first failure: its state may hold
    /// half of the failed event.
    failed: Option<Error>,
    /// Whether `rollout_ended` has been applied.
    ended: bool,
    /// Interaction edge ids seen so far, to tell new edges made by hooks.
    edges: BTreeSet<String>,
}

impl Follower {
    /// Follows the bundle at `path` from its first line; nothing is read
    /// until the first `update`.
    pub fn open(path: impl AsRef<std::path::Path>, options: ReplayOptions) -> Result<Self> {
        let bundle = Arc::new(TraceBundle::open_unchecked_version(path, options.limits)?);
        let rules = options.profile.rules.with_repairs(options.repairs);
        let mut reducer = Reducer::new(&bundle, rules);
        reducer.items.note_changes();
        let reader = PayloadReader::new(&bundle, rules);
        Ok(Follower {
            _payload_dir: bundle.hold_payload_dir(),
            bundle,
            options,
            reducer,
            reader,
            offset: 0,
            line: 0,
            events: 0,
            log: None,
            skipped: Skipped::default(),
            unreadable: Vec::new(),
            failed: None,
            ended: false,
            edges: BTreeSet::new(),
        })
    }

    pub fn bundle(&self) -> &TraceBundle {
        &self.bundle
    }

    /// Lines consumed so far.
    pub fn lines(&self) -> u64 {
        self.line
    }

    /// Events read so far (applied or left out).
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Whether the rollout has ended (its `rollout_ended` event applied).
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// Where opt-in repairs changed the result so far.
    pub fn repairs(&self) -> Vec<super::RepairNote> {
        self.reducer.repairs.clone()
    }

    /// What a lenient follower left out so far, in line order.
    pub fn diagnostics(&self) -> Vec<Diagnostic> {
        let unreadable =
            self.unreadable.iter().cloned().map(|error| Diagnostic { error, event_type: None, depends_on_line: None });
        let mut all: Vec<Diagnostic> = self.skipped.diagnostics().cloned().chain(unreadable).collect();
        all.sort_by_key(Diagnostic::line);
        all
    }

    /// Reads and applies the complete lines appended since the last update.
    pub fn update(&mut self) -> Result<Update> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        let result = crate::error::catch_panics(|| self.update_checked());
        if let Err(error) = &result {
            self.failed = Some(error.clone());
        }
        result.map_err(|error| error.with_bundle(self.bundle.root()))
    }

    fn update_checked(&mut self) -> Result<Update> {
        self.check_log()?;
        let mut update = Update::default();
        let mut seen = ChangeSet::default();
        loop {
            match self.advance(&mut update, &mut seen)? {
                Advanced::ToTheEnd => break,
                Advanced::Restart => {
                    self.restart();
                    update.reset = true;
                    seen = ChangeSet::default();
                }
            }
        }
        if !update.reset {
            update.added = seen.added;
            update.updated = seen.updated;
        }
        Ok(update)
    }

    /// A log that shrank or is another file is not the one followed.
    fn check_log(&mut self) -> Result<()> {
        let path = self.bundle.event_log_path();
        let metadata = std::fs::metadata(&path).map_err(|err| {
            Error::new(ErrorKind::Bundle, format!("open trace event log {}: {err}", path.display()))
                .with_file(EVENT_LOG_FILE)
        })?;
        let identity = FileIdentity::of(&metadata);
        let replaced = self.log.is_some_and(|seen| seen != identity);
        if replaced || metadata.len() < self.offset {
            let what = if replaced { "was replaced by another file" } else { "was truncated" };
            return Err(Error::new(
                ErrorKind::Event,
                format!("trace event log {what} while it was followed (after line {})", self.line),
            )
            .with_file(EVENT_LOG_FILE));
        }
        self.log = Some(identity);
        Ok(())
    }

    /// Starts over from the first line, keeping the skipped lines.
    fn restart(&mut self) {
        let rules = self.options.profile.rules.with_repairs(self.options.repairs);
        self.reducer = Reducer::new(&self.bundle, rules);
        self.reducer.items.note_changes();
        self.reader = PayloadReader::new(&self.bundle, rules);
        (self.offset, self.line, self.events, self.ended) = (0, 0, 0, false);
        self.unreadable.clear();
        self.edges.clear();
    }

    fn advance(&mut self, update: &mut Update, seen: &mut ChangeSet) -> Result<Advanced> {
        let rules = self.reducer.rules;
        let mut events =
            self.bundle.events_from(self.offset, self.line)?.with_event_types(rules.event_types).complete_lines_only();
        if self.options.lenient {
            events = events.keep_going();
        }
        while let Some(next) = events.next() {
            let (offset, line) = events.position();
            update.lines += line - self.line;
            (self.offset, self.line) = (offset, line);
            let LocatedEvent { line, event } = match next {
                Ok(event) if self.skipped.contains(event.line) => continue,
                Ok(event) => event,
                Err(error) if self.options.lenient && error.location.line.is_some() => {
                    self.events += 1;
                    self.unreadable.push(error);
                    continue;
                }
                Err(error) => return Err(error),
            };
            self.events += 1;
            let ReadyEvent { event: LocatedEvent { line, event }, payloads, .. } =
                self.reader.prepare(LocatedEvent { line, event }, true);
            self.reducer.ready = payloads;
            self.reducer.at = (line, event.seq);
            let before = Before::of(&self.reducer, &event);
            if let Err(err) = self.reducer.apply(&event) {
                let error =
                    err.with_bundle(self.bundle.root()).with_file(EVENT_LOG_FILE).with_line(line).with_seq(event.seq);
                if !self.options.lenient {
                    return Err(error);
                }
                self.skipped.add(line, error, &event);
                return Ok(Advanced::Restart);
            }
            update.events += 1;
            self.ended |= matches!(event.payload, E::RolloutEnded { .. });
            seen.note(&mut self.reducer, &event, before, &mut self.edges);
        }
        let (offset, line) = events.position();
        update.lines += line - self.line;
        (self.offset, self.line) = (offset, line);
        Ok(Advanced::ToTheEnd)
    }

    /// Updates as soon as the log grows, or gives `None` once `timeout`
    /// has passed without a change (`None`: wait as long as it takes).
    pub fn wait(&mut self, timeout: Option<std::time::Duration>) -> Result<Option<Update>> {
        let deadline = timeout.map(|timeout| std::time::Instant::now() + timeout);
        let mut watch = crate::watch::FileWatch::new(&self.bundle.event_log_path());
        loop {
            let update = self.update()?;
            if !update.is_empty() {
                return Ok(Some(update));
            }
            let left = match deadline {
                Some(deadline) => match deadline.checked_duration_since(std::time::Instant::now()) {
                    Some(left) if !left.is_zero() => left,
                    _ => return Ok(None),
                },
                None => crate::watch::POLL_INTERVAL,
            };
            watch.wait(left);
        }
    }

    /// The trace a strict (or lenient) replay of the lines consumed so far
    /// gives.
    pub fn snapshot(&self) -> Result<RolloutTrace> {
        let reducer = &self.reducer;
        let mut trace = reducer.trace.clone();
        trace.conversation_items = reducer.items.conversation_items_cloned().collect();
        for edge in reducer.spawn_edge_fallbacks()? {
            agents::upsert_edge(&mut trace.interaction_edges, edge)?;
        }
        reducer.rules.state_fields.leave_out_unwritten(&mut trace);
        Ok(trace)
    }
}

enum Advanced {
    ToTheEnd,
    Restart,
}

/// Object counts before an event, to tell added objects from updated ones.
struct Before {
    items: usize,
    edges: usize,
    sessions: usize,
    operations: usize,
    existing: Vec<(&'static str, String, bool)>,
}

impl Before {
    fn of(reducer: &Reducer, event: &RawTraceEvent) -> Self {
        let trace = &reducer.trace;
        let existing = subjects(reducer, event)
            .into_iter()
            .map(|(map, id)| {
                let exists = contains(trace, map, &id);
                (map, id, exists)
            })
            .collect();
        Before {
            items: reducer.items.len(),
            edges: trace.interaction_edges.len(),
            sessions: trace.terminal_sessions.len(),
            operations: trace.terminal_operations.len(),
            existing,
        }
    }
}

/// Added and updated ids, each once, in the order first seen.
#[derive(Default)]
struct ChangeSet {
    added: BTreeMap<&'static str, Vec<String>>,
    updated: BTreeMap<&'static str, Vec<String>>,
    known: BTreeSet<(&'static str, String)>,
}

impl ChangeSet {
    fn add(&mut self, map: &'static str, id: String, existed: bool) {
        // Added earlier in this update and changed again: still added.
        if self.known.insert((map, id.clone())) {
            let into = if existed { &mut self.updated } else { &mut self.added };
            into.entry(map).or_default().push(id);
        }
    }

    fn note(
        &mut self,
        reducer: &mut Reducer,
        event: &RawTraceEvent,
        before: Before,
        known_edges: &mut BTreeSet<String>,
    ) {
        let trace = &reducer.trace;
        for (map, id, existed) in before.existing {
            if contains(trace, map, &id) {
                self.add(map, id, existed);
            }
        }
        // A tool call's terminal operation and session.
        if let Some(tool_call_id) = tool_call_of(event) {
            if let Some(operation) = trace.tool_calls.get(tool_call_id).and_then(|t| t.terminal_operation_id.clone()) {
                let existed = before.operations == trace.terminal_operations.len();
                if let Some(terminal) = trace.terminal_operations.get(&operation).and_then(|o| o.terminal_id.clone()) {
                    let session_existed = before.sessions == trace.terminal_sessions.len();
                    self.add("terminal_sessions", terminal, session_existed);
                }
                self.add("terminal_operations", operation, existed);
            }
        }
        // Edges made by hooks (agent tools, deliveries): the new ones.
        if trace.interaction_edges.len() > before.edges {
            let new: Vec<String> =
                trace.interaction_edges.keys().filter(|id| !known_edges.contains(*id)).cloned().collect();
            for id in new {
                known_edges.insert(id.clone());
                self.add("interaction_edges", id, false);
            }
        }
        // A turn's end closes its calls and cells.
        if let E::CodexTurnEnded { codex_turn_id, .. } = &event.payload {
            let calls: Vec<String> = trace
                .inference_calls
                .values()
                .filter(|call| call.codex_turn_id == *codex_turn_id)
                .map(|call| call.inference_call_id.clone())
                .collect();
            let cells: Vec<String> = trace
                .code_cells
                .values()
                .filter(|cell| cell.codex_turn_id == *codex_turn_id)
                .map(|cell| cell.code_cell_id.clone())
                .collect();
            calls.into_iter().for_each(|id| self.add("inference_calls", id, true));
            cells.into_iter().for_each(|id| self.add("code_cells", id, true));
        }
        for payload in event.payload.payload_refs() {
            self.add("raw_payloads", payload.raw_payload_id.clone(), true);
        }
        let added_items = before.items..reducer.items.len();
        for ordinal in added_items.clone() {
            self.add("conversation_items", format!("conversation_item:{}", ordinal + 1), false);
        }
        for item in reducer.items.take_changed() {
            let id = reducer.items.id(item).clone();
            self.add("conversation_items", id, true);
        }
    }
}

/// The objects an event is about, by map.
fn subjects(reducer: &Reducer, event: &RawTraceEvent) -> Vec<(&'static str, String)> {
    let one = |map, id: &String| vec![(map, id.clone())];
    match &event.payload {
        E::ThreadStarted { thread_id, .. } | E::ThreadEnded { thread_id, .. } => one("threads", thread_id),
        E::CodexTurnStarted { codex_turn_id, .. } | E::CodexTurnEnded { codex_turn_id, .. } => {
            one("codex_turns", codex_turn_id)
        }
        E::InferenceStarted { inference_call_id, .. }
        | E::InferenceCompleted { inference_call_id, .. }
        | E::InferenceFailed { inference_call_id, .. }
        | E::InferenceCancelled { inference_call_id, .. } => one("inference_calls", inference_call_id),
        E::ToolCallStarted { tool_call_id, .. }
        | E::McpToolCallCorrelationAssigned { tool_call_id, .. }
        | E::ToolCallRuntimeStarted { tool_call_id, .. }
        | E::ToolCallRuntimeEnded { tool_call_id, .. }
        | E::ToolCallEnded { tool_call_id, .. } => one("tool_calls", tool_call_id),
        E::CodeCellStarted { model_visible_call_id, .. } => {
            vec![("code_cells", format!("code_cell:{model_visible_call_id}"))]
        }
        E::CodeCellInitialResponse { runtime_cell_id, .. } | E::CodeCellEnded { runtime_cell_id, .. } => reducer
            .trace
            .code_cells
            .values()
            .filter(|cell| cell.runtime_cell_id.as_deref() == Some(runtime_cell_id.as_str()))
            .map(|cell| ("code_cells", cell.code_cell_id.clone()))
            .collect(),
        E::CompactionRequestStarted { compaction_id, compaction_request_id, .. }
        | E::CompactionRequestCompleted { compaction_id, compaction_request_id, .. }
        | E::CompactionRequestFailed { compaction_id, compaction_request_id, .. } => {
            vec![("compactions", compaction_id.clone()), ("compaction_requests", compaction_request_id.clone())]
        }
        E::CompactionInstalled { compaction_id, .. } => one("compactions", compaction_id),
        E::AgentResultObserved { edge_id, .. } => one("interaction_edges", edge_id),
        E::RolloutStarted { .. } | E::RolloutEnded { .. } | E::ProtocolEventObserved { .. } | E::Other { .. } => {
            Vec::new()
        }
    }
}

fn tool_call_of(event: &RawTraceEvent) -> Option<&str> {
    match &event.payload {
        E::ToolCallStarted { tool_call_id, .. }
        | E::ToolCallRuntimeStarted { tool_call_id, .. }
        | E::ToolCallRuntimeEnded { tool_call_id, .. }
        | E::ToolCallEnded { tool_call_id, .. } => Some(tool_call_id),
        _ => None,
    }
}

fn contains(trace: &RolloutTrace, map: &str, id: &str) -> bool {
    match map {
        "threads" => trace.threads.contains_key(id),
        "codex_turns" => trace.codex_turns.contains_key(id),
        "inference_calls" => trace.inference_calls.contains_key(id),
        "tool_calls" => trace.tool_calls.contains_key(id),
        "code_cells" => trace.code_cells.contains_key(id),
        "compactions" => trace.compactions.contains_key(id),
        "compaction_requests" => trace.compaction_requests.contains_key(id),
        "interaction_edges" => trace.interaction_edges.contains_key(id),
        _ => false,
    }
}
