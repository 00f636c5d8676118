//! Reading ahead: the event log and the payloads each event's handler will
//! read are read and parsed one step ahead of the reducer, on a thread of
//! their own when the replay may use one.
//!
//! Reading is most of a replay's work (requests alone are most of a
//! bundle's bytes), and it needs none of the reducer's state: what a payload
//! parses to depends only on its bytes, and the request memo only on the
//! requests before it (see `request`). So the reducer applies event N while
//! event N+1's payloads are read. The reducer sees exactly what it would
//! have read itself, errors included, and only when its handler asks for the
//! payload: a payload read ahead but never asked for changes nothing.
//!
//! The reader reads payloads other than requests only while it is ahead
//! of the reducer (by `AHEAD_BYTES`); otherwise it leaves them to the
//! reducer, which would only wait for it, and reads them when asked. So
//! the work balances itself between the two threads. (Requests it always
//! reads: its half of the request memo must see each of them.)
//!
//! Memory stays bounded: the reader waits while the events read but not yet
//! applied hold more than `MAX_HELD_BYTES` of payloads.

use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Condvar, Mutex, PoisonError};

use serde_json::Value;

use super::request::{ReadRequest, RequestReader};
use crate::compat::Rules;
use std::sync::Arc;

use crate::bundle::{LocatedEvent, TraceBundle};
use crate::error::Result;
use crate::format::{RawPayloadRef, RawTraceEventPayload as E};

/// Payload bytes that events read ahead may hold before the reader waits.
const MAX_HELD_BYTES: usize = 16 << 20;
/// What an event itself counts for, payloads apart.
const EVENT_BYTES: usize = 256;
/// Events the channel holds at most, whatever their size.
const MAX_QUEUED_EVENTS: usize = 1024;
/// Bytes read ahead from which the reader counts as ahead of the reducer.
const AHEAD_BYTES: usize = 1 << 20;

/// An event with the payloads its handler will read, already read.
pub(crate) struct ReadyEvent {
    pub event: LocatedEvent,
    pub payloads: ReadyPayloads,
    /// Bytes held, against `MAX_HELD_BYTES`.
    held: usize,
}

/// The payloads read ahead for one event, each taken by the handler that
/// asks for it. Anything not there is read on demand.
#[derive(Default)]
pub(crate) struct ReadyPayloads {
    values: Vec<ReadyValue>,
    request: Option<(String, Result<ReadRequest>)>,
}

/// A payload read ahead and parsed as one JSON value, with its size; or
/// the error of reading or parsing it.
struct ReadyValue {
    raw_payload_id: String,
    path: String,
    body: Result<(Value, usize)>,
}

impl ReadyPayloads {
    /// The payload read ahead for `payload`, if any.
    pub fn take_value(&mut self, payload: &RawPayloadRef) -> Option<Result<(Value, usize)>> {
        let index = self
            .values
            .iter()
            .position(|ready| ready.raw_payload_id == payload.raw_payload_id && ready.path == payload.path)?;
        Some(self.values.swap_remove(index).body)
    }

    /// The inference request read ahead for `payload`, if any.
    pub fn take_request(&mut self, payload: &RawPayloadRef) -> Option<Result<ReadRequest>> {
        let (_, request) = self.request.take_if(|(id, _)| *id == payload.raw_payload_id)?;
        Some(request)
    }
}

/// Reads events and their payloads in log order. It owns the reader's half
/// of the request memo, so one `PayloadReader` must see every event.
pub(crate) struct PayloadReader {
    bundle: Arc<TraceBundle>,
    requests: RequestReader,
    buffer: Vec<u8>,
}

impl PayloadReader {
    pub fn new(bundle: &Arc<TraceBundle>, rules: Rules) -> Self {
        PayloadReader { bundle: bundle.clone(), requests: RequestReader::new(bundle, rules), buffer: Vec::new() }
    }

    /// Reads the payloads that `event`'s handler always reads: its request,
    /// and the others if `read_values`. Payloads read only in some cases (a
    /// tool's result) are left to the handler.
    pub(super) fn prepare(&mut self, event: LocatedEvent, read_values: bool) -> ReadyEvent {
        let mut payloads = ReadyPayloads::default();
        let mut held = EVENT_BYTES;
        let value_payload = match &event.event.payload {
            E::InferenceStarted { thread_id, request_payload, .. } => {
                let request = self.requests.read(&self.bundle, request_payload, thread_id);
                held += request.as_ref().map_or(0, |request| request.size);
                payloads.request = Some((request_payload.raw_payload_id.clone(), request));
                None
            }
            E::ThreadEnded { thread_id, .. } => {
                self.requests.forget(thread_id);
                None
            }
            E::ThreadStarted { metadata_payload: Some(payload), .. }
            | E::InferenceCompleted { response_payload: payload, .. }
            | E::InferenceFailed { partial_response_payload: Some(payload), .. }
            | E::InferenceCancelled { partial_response_payload: Some(payload), .. }
            | E::ToolCallStarted { invocation_payload: Some(payload), .. }
            | E::ToolCallRuntimeStarted { runtime_payload: payload, .. }
            | E::ToolCallRuntimeEnded { runtime_payload: payload, .. }
            | E::CompactionInstalled { checkpoint_payload: payload, .. } => Some(payload),
            _ => None,
        };
        if let Some(payload) = value_payload.filter(|_| read_values) {
            let body = self.read_value(payload);
            held += body.as_ref().map_or(0, |(_, size)| *size);
            payloads.values.push(ReadyValue {
                raw_payload_id: payload.raw_payload_id.clone(),
                path: payload.path.clone(),
                body,
            });
        }
        ReadyEvent { event, payloads, held }
    }

    fn read_value(&mut self, payload: &RawPayloadRef) -> Result<(Value, usize)> {
        self.bundle.read_payload_into(payload, &mut self.buffer)?;
        Ok((self.bundle.parse_payload(payload, &self.buffer)?, self.buffer.len()))
    }
}

/// Runs `replay` over the bundle's events, each with its payloads read
/// ahead; events on or after `stop_before_line` are not read. With
/// `threaded`, reading runs on a second thread.
pub(crate) fn with_ready_events<R>(
    events: impl Iterator<Item = Result<LocatedEvent>> + Send,
    mut reader: PayloadReader,
    stop_before_line: Option<u64>,
    threaded: bool,
    replay: impl FnOnce(&mut dyn Iterator<Item = Result<ReadyEvent>>) -> R,
) -> R {
    let events = events.take_while(move |event| match (event, stop_before_line) {
        (Ok(event), Some(stop)) => event.line < stop,
        _ => true,
    });
    if !threaded {
        return replay(&mut events.map(|event| event.map(|event| reader.prepare(event, true))));
    }
    let budget = Budget::default();
    let (sender, receiver) = sync_channel(MAX_QUEUED_EVENTS);
    std::thread::scope(|scope| {
        let budget = &budget;
        // A thread that cannot be started is an error like a panic (the
        // replay turns both into a `Reduce` error).
        let reading = std::thread::Builder::new()
            .name("rollout-trace-read-ahead".into())
            .spawn_scoped(scope, move || {
                for event in events {
                    let ready = event.map(|event| reader.prepare(event, budget.held() >= AHEAD_BYTES));
                    let held = ready.as_ref().map_or(0, |ready| ready.held);
                    if !budget.acquire(held) || sender.send(ready).is_err() {
                        break;
                    }
                }
            })
            .expect("start the read-ahead thread");
        let result = replay(&mut ReadyEvents { receiver, budget, held: 0 });
        budget.close();
        if let Err(panic) = reading.join() {
            std::panic::resume_unwind(panic);
        }
        result
    })
}

/// Events as the reading thread sends them. The bytes an event holds are
/// released when the next one is asked for, the event having been applied.
struct ReadyEvents<'a> {
    receiver: Receiver<Result<ReadyEvent>>,
    budget: &'a Budget,
    held: usize,
}

impl Iterator for ReadyEvents<'_> {
    type Item = Result<ReadyEvent>;

    fn next(&mut self) -> Option<Self::Item> {
        self.budget.release(std::mem::take(&mut self.held));
        let ready = self.receiver.recv().ok()?;
        self.held = ready.as_ref().map_or(0, |ready| ready.held);
        Some(ready)
    }
}

impl Drop for ReadyEvents<'_> {
    /// The replay stopped (done, failed or panicking): the reader must not
    /// wait for room that will never come.
    fn drop(&mut self) {
        self.budget.close();
    }
}

/// Bytes held by events read but not yet applied.
#[derive(Default)]
struct Budget {
    state: Mutex<BudgetState>,
    changed: Condvar,
}

#[derive(Default)]
struct BudgetState {
    held: usize,
    closed: bool,
    /// The reader waits for room: only then is waking it worth a system call.
    waiting: bool,
}

impl Budget {
    /// Waits until `bytes` more fit (an event always fits when nothing else
    /// is held). False once the replay has stopped listening.
    fn acquire(&self, bytes: usize) -> bool {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        while !state.closed && state.held > 0 && state.held + bytes > MAX_HELD_BYTES {
            state.waiting = true;
            state = self.changed.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
        state.waiting = false;
        state.held += bytes;
        !state.closed
    }

    fn held(&self) -> usize {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).held
    }

    fn release(&self, bytes: usize) {
        if bytes > 0 {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            state.held -= bytes;
            if state.waiting {
                self.changed.notify_one();
            }
        }
    }

    fn close(&self) {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).closed = true;
        self.changed.notify_one();
    }
}
