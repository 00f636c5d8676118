//! Inference calls: start, terminal events, token usage (reducer core §5).

use std::collections::HashMap;
use std::ops::Range;

use serde::de::{Deserializer, Error as _, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::conversation::{normalize_listed_item, Candidate, Mode};
use super::{EventContext, Reducer};
use crate::bundle::PARSER_MAX_DEPTH;
use crate::error::{Error, Result};
use crate::limits::json_depth_exceeds;
use crate::format::{ExecutionStatus, RawPayloadRef};
use crate::model::{ExecutionWindow, InferenceCall, ProducerRef, TokenUsage};

pub(crate) struct InferenceStart<'e> {
    pub inference_call_id: &'e str,
    pub thread_id: &'e str,
    pub codex_turn_id: &'e str,
    pub model: &'e str,
    pub provider_name: &'e str,
    pub request_payload: &'e RawPayloadRef,
}

/// `inference_completed`, `inference_failed` and `inference_cancelled`.
pub(crate) struct InferenceEnd<'e> {
    pub inference_call_id: &'e str,
    pub status: ExecutionStatus,
    pub response_id: Option<&'e str>,
    pub upstream_request_id: Option<&'e str>,
    pub response_payload: Option<&'e RawPayloadRef>,
}

impl Reducer<'_> {
    pub(super) fn inference_started(&mut self, cx: EventContext<'_>, start: InferenceStart<'_>) -> Result<()> {
        let id = start.inference_call_id;
        if self.trace.inference_calls.contains_key(id) {
            return Err(Error::reduce(format!("duplicate inference start for {id}")));
        }
        let turn = self.trace.codex_turns.get(start.codex_turn_id).ok_or_else(|| {
            Error::reduce(format!("inference start {id} referenced unknown codex turn {}", start.codex_turn_id))
        })?;
        if turn.thread_id != start.thread_id {
            return Err(Error::reduce(format!(
                "inference start {id} used thread {}, but codex turn {} belongs to {}",
                start.thread_id, start.codex_turn_id, turn.thread_id
            )));
        }
        // Reduced before the call exists, so hooks cannot see it (§5.1).
        let request_item_ids = self.reduce_request(cx, &start)?;
        self.trace.inference_calls.insert(
            id.to_string(),
            InferenceCall {
                inference_call_id: id.to_string(),
                thread_id: start.thread_id.to_string(),
                codex_turn_id: start.codex_turn_id.to_string(),
                execution: ExecutionWindow::running(cx.wall_time_unix_ms, cx.seq),
                model: start.model.to_string(),
                provider_name: start.provider_name.to_string(),
                response_id: None,
                upstream_request_id: None,
                request_item_ids,
                response_item_ids: Vec::new(),
                tool_call_ids_started_by_response: Vec::new(),
                usage: None,
                raw_request_payload_id: start.request_payload.raw_payload_id.clone(),
                raw_response_payload_id: None,
            },
        );
        Ok(())
    }

    /// Request reduction (§7.2): the full input snapshot of the call.
    fn reduce_request(&mut self, cx: EventContext<'_>, start: &InferenceStart<'_>) -> Result<Vec<String>> {
        let thread = start.thread_id;
        let turn = start.codex_turn_id;
        let RequestInput { candidates, previous_response_id, memo_items } =
            self.read_request(start.request_payload, thread)?;
        let ids = match previous_response_id {
            Some(previous_response_id) => {
                let previous = self
                    .trace
                    .inference_calls
                    .values()
                    .find(|call| call.thread_id == thread && call.response_id.as_deref() == Some(&previous_response_id))
                    .ok_or_else(|| {
                        Error::reduce(format!(
                            "incremental inference request {} referenced unknown previous_response_id {previous_response_id}",
                            start.inference_call_id
                        ))
                    })?;
                let mut ids: Vec<String> =
                    previous.request_item_ids.iter().chain(&previous.response_item_ids).cloned().collect();
                // Taken out rather than cloned: the new snapshot replaces it below.
                let baseline = self.snapshots.remove(thread).unwrap_or_default();
                let delta = self.reconcile(
                    &candidates,
                    Mode::Append,
                    ids.len(),
                    &baseline,
                    &[],
                    thread,
                    turn,
                    cx.wall_time_unix_ms,
                )?;
                ids.extend(delta);
                ids
            }
            None => {
                let baseline = match self.pending_replacements.remove(thread) {
                    Some(replacement) => replacement,
                    None => self.snapshots.remove(thread).unwrap_or_default(),
                };
                self.reconcile(&candidates, Mode::Full, 0, &baseline, &[], thread, turn, cx.wall_time_unix_ms)?
            }
        };
        self.list_in_thread(thread, &ids);
        self.snapshots.insert(thread.to_string(), ids.clone());
        if let Some((text, items)) = memo_items {
            let candidates = candidates.into_iter().map(Some).collect();
            self.request_memos.by_thread.insert(thread.to_string(), RequestMemo { text, items, candidates });
        }
        Ok(ids)
    }

    /// Reads a request payload: its normalized input items and its
    /// `previous_response_id`, with the reference's errors.
    ///
    /// Each request repeats the thread's whole conversation, so most of its
    /// items are byte for byte the items of the thread's previous request.
    /// The fast path splits the input into item texts without parsing them
    /// and reuses the previous request's candidate for every unchanged item;
    /// only new items are parsed and normalized. Whenever the fast path
    /// cannot be sure to read the payload exactly as the `Value` path does,
    /// it steps aside and the `Value` path reads the payload (and reports
    /// any error).
    fn read_request(&mut self, payload: &RawPayloadRef, thread: &str) -> Result<RequestInput> {
        let pid = payload.raw_payload_id.as_str();
        let mut bytes = std::mem::take(&mut self.request_memos.spare);
        self.bundle.read_payload_into(payload, &mut bytes)?;
        // The fast path leaves the depth limit to serde_json (see
        // `read_request_fast`), which is only right for a limit at least as
        // high as serde_json's own.
        if self.bundle.limits().max_json_depth >= PARSER_MAX_DEPTH {
            let mut memo = self.request_memos.by_thread.remove(thread).unwrap_or_default();
            let fast = match String::from_utf8(bytes) {
                Ok(text) => match self.read_request_fast(payload, &text, &mut memo) {
                    Ok(Some((candidates, previous_response_id, items))) => Ok(RequestInput {
                        candidates,
                        previous_response_id,
                        memo_items: Some((text, items)),
                    }),
                    Ok(None) => Err(Ok(text.into_bytes())),
                    Err(error) => Err(Err(error)),
                },
                // Not UTF-8, so not JSON: the `Value` path names the error.
                Err(err) => Err(Ok(err.into_bytes())),
            };
            // The replaced memo's memory serves the next read.
            self.request_memos.spare = memo.text.into_bytes();
            match fast {
                Ok(input) => return Ok(input),
                Err(Ok(unread)) => bytes = unread,
                Err(Err(error)) => return Err(error),
            }
        }
        let body = self.bundle.parse_payload(payload, &bytes)?;
        self.count_payload_bytes(payload, bytes.len())?;
        self.request_memos.spare = bytes;
        let input = body
            .get("input")
            .ok_or_else(|| Error::reduce(format!("inference request payload {pid} did not contain input")))?
            .as_array()
            .ok_or_else(|| Error::reduce(format!("inference request payload {pid} had non-array input")))?;
        Ok(RequestInput {
            candidates: self.normalize_items(input, pid)?,
            previous_response_id: body.get("previous_response_id").and_then(Value::as_str).map(str::to_string),
            memo_items: None,
        })
    }

    /// The fast path of `read_request`; `Ok(None)` means "use the `Value`
    /// path". It accepts exactly the payloads the `Value` path parses:
    ///
    /// * `RequestParts` parses every field but `input` as a `Value`, and
    ///   takes the text of each input item after a syntax-only scan;
    /// * an item equal to `memo`'s item at its index was parsed with that
    ///   request, at the same depth; any other item is parsed now;
    /// * serde_json limits the nesting of what it parses as a `Value`, the
    ///   scanned items are checked to stay within that limit, and the
    ///   caller ensures that the bundle's limit is not lower.
    ///
    /// Errors come in the `Value` path's order: the bytes are counted once
    /// the payload is known to parse, and only then are items normalized.
    /// Reused candidates are moved out of `memo`.
    fn read_request_fast(
        &mut self,
        payload: &RawPayloadRef,
        text: &str,
        memo: &mut RequestMemo,
    ) -> Result<Option<(Vec<Candidate>, Option<String>, Vec<MemoItem>)>> {
        let Ok(RequestParts { items, previous_response_id }) = serde_json::from_str::<RequestParts>(text) else {
            return Ok(None);
        };
        let mut slots = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            let item = item.get();
            let Some(range) = range_within(text, item) else {
                return Ok(None);
            };
            let known = memo.items.get(index).filter(|known| memo.text.get(known.range.clone()) == Some(item));
            let slot = match known.map(|known| known.candidate) {
                Some(None) => Slot::Known(None),
                Some(Some(at)) => match memo.candidates.get_mut(at).and_then(Option::take) {
                    Some(candidate) => Slot::Known(Some(candidate)),
                    None => return Ok(None),
                },
                None => {
                    // The item sits two levels deep: in the request object,
                    // in the `input` array.
                    if json_depth_exceeds(item.as_bytes(), PARSER_MAX_DEPTH - 2) {
                        return Ok(None);
                    }
                    match serde_json::from_str::<Value>(item) {
                        Ok(value) => Slot::New(value),
                        Err(_) => return Ok(None),
                    }
                }
            };
            slots.push((range, slot));
        }
        self.count_payload_bytes(payload, text.len())?;
        let pid = payload.raw_payload_id.as_str();
        let mut candidates = Vec::with_capacity(slots.len());
        let mut memo_items = Vec::with_capacity(slots.len());
        for (range, slot) in slots {
            let candidate = match slot {
                Slot::Known(Some(mut candidate)) => {
                    candidate.move_to_payload(pid);
                    Some(candidate)
                }
                Slot::Known(None) => None,
                Slot::New(value) => normalize_listed_item(&value, pid)?,
            };
            let at = candidate.map(|candidate| {
                candidates.push(candidate);
                candidates.len() - 1
            });
            memo_items.push(MemoItem { range, candidate: at });
        }
        Ok(Some((candidates, previous_response_id, memo_items)))
    }

    pub(super) fn inference_ended(&mut self, cx: EventContext<'_>, end: InferenceEnd<'_>) -> Result<()> {
        let id = end.inference_call_id;
        let call = self
            .trace
            .inference_calls
            .get(id)
            .ok_or_else(|| Error::reduce(format!("inference completion referenced unknown call {id}")))?;
        let (thread, turn) = (call.thread_id.clone(), call.codex_turn_id.clone());
        let response = match end.response_payload {
            Some(payload) => Some((payload, self.reduce_response(cx, id, &thread, &turn, payload)?)),
            None => None,
        };
        let call = self.trace.inference_calls.get_mut(id).expect("checked above");
        call.response_id = end.response_id.map(str::to_string);
        if call.execution.is_running() {
            call.execution.end(cx.wall_time_unix_ms, cx.seq, end.status);
        }
        if let Some(upstream) = end.upstream_request_id {
            call.upstream_request_id = Some(upstream.to_string());
        }
        if let Some((payload, (ids, usage))) = response {
            call.raw_response_payload_id = Some(payload.raw_payload_id.clone());
            if usage.is_some() {
                call.usage = usage;
            }
            let previous = std::mem::replace(&mut call.response_item_ids, ids.clone());
            self.index_response_items(id, &previous, &ids);
        }
        Ok(())
    }

    /// Response reduction (§7.3): every output becomes a new item produced
    /// by this call. Returns the ids and the extracted token usage.
    fn reduce_response(
        &mut self,
        cx: EventContext<'_>,
        inference_call_id: &str,
        thread: &str,
        turn: &str,
        payload: &RawPayloadRef,
    ) -> Result<(Vec<String>, Option<TokenUsage>)> {
        let pid = payload.raw_payload_id.as_str();
        let body = self.read_payload(payload)?;
        let outputs = body
            .get("output_items")
            .and_then(Value::as_array)
            .ok_or_else(|| Error::reduce(format!("inference response payload {pid} did not contain output_items")))?;
        let candidates = self.normalize_items(outputs, pid)?;
        // Taken out rather than cloned: the response's items extend it below.
        let mut snapshot = self.snapshots.remove(thread).unwrap_or_default();
        let producer = [ProducerRef::Inference { inference_call_id: inference_call_id.to_string() }];
        let ids = self.reconcile(
            &candidates,
            Mode::Append,
            snapshot.len(),
            &snapshot,
            &producer,
            thread,
            turn,
            cx.wall_time_unix_ms,
        )?;
        self.list_in_thread(thread, &ids);
        snapshot.extend(ids.iter().cloned());
        self.snapshots.insert(thread.to_string(), snapshot);
        Ok((ids, body.get("token_usage").and_then(token_usage)))
    }

    /// Keeps `inferences_by_response_item` in step with a call's current
    /// `response_item_ids`.
    fn index_response_items(&mut self, inference_call_id: &str, previous: &[String], current: &[String]) {
        for item in previous {
            if let Some(calls) = self.inferences_by_response_item.get_mut(item) {
                calls.retain(|call| call != inference_call_id);
            }
        }
        for item in current {
            super::push_unique(
                self.inferences_by_response_item.entry(item.clone()).or_default(),
                inference_call_id.to_string(),
            );
        }
    }
}

/// What `read_request` gives request reduction.
struct RequestInput {
    candidates: Vec<Candidate>,
    previous_response_id: Option<String>,
    /// From the fast path: the payload text and its items, kept with the
    /// candidates as the thread's memo for its next request.
    memo_items: Option<(String, Vec<MemoItem>)>,
}

/// Per thread, the last request read by the fast path; and a buffer for
/// reading the next request into.
#[derive(Default)]
pub(crate) struct RequestMemos {
    by_thread: HashMap<String, RequestMemo>,
    spare: Vec<u8>,
}

#[derive(Default)]
struct RequestMemo {
    text: String,
    items: Vec<MemoItem>,
    /// `None` once moved to the next request.
    candidates: Vec<Option<Candidate>>,
}

/// One input item of a memorized request.
struct MemoItem {
    /// The item's bytes in the memo's `text`.
    range: Range<usize>,
    /// Its index in the memo's `candidates`; `None` when it yields none.
    candidate: Option<usize>,
}

/// An input item during the fast path: known from the memo, or parsed now.
enum Slot {
    Known(Option<Candidate>),
    New(Value),
}

/// Where `part`, a slice of `text`, lies in it.
fn range_within(text: &str, part: &str) -> Option<Range<usize>> {
    let start = (part.as_ptr() as usize).checked_sub(text.as_ptr() as usize)?;
    let end = start + part.len();
    (end <= text.len()).then_some(start..end)
}

/// The two fields of a request payload that reduction reads, with the
/// input items as unparsed text (scanned for syntax only). Every other
/// field is parsed as a `Value`, and dropped, so that everything outside
/// the items is accepted exactly as the `Value` path accepts it. Anything
/// whose `Value` reading would be less plain fails here instead: a
/// payload that is not an object, an `input` that is not an array or
/// appears twice, a key serde_json reserves for itself.
struct RequestParts<'t> {
    items: Vec<&'t RawValue>,
    previous_response_id: Option<String>,
}

impl<'de> Deserialize<'de> for RequestParts<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        deserializer.deserialize_map(RequestPartsVisitor)
    }
}

struct RequestPartsVisitor;

impl<'de> Visitor<'de> for RequestPartsVisitor {
    type Value = RequestParts<'de>;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("an inference request object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Self::Value, A::Error> {
        let mut items = None;
        let mut previous_response_id = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "input" if items.is_none() => items = Some(map.next_value::<Vec<&'de RawValue>>()?),
                "input" => return Err(A::Error::custom("duplicate input")),
                // The last one counts, as in a `Value`.
                "previous_response_id" => {
                    previous_response_id = match map.next_value::<Value>()? {
                        Value::String(id) => Some(id),
                        _ => None,
                    }
                }
                // serde_json gives these keys a meaning of its own.
                reserved if reserved.starts_with("$serde_json::private::") => {
                    return Err(A::Error::custom("reserved key"));
                }
                _ => {
                    map.next_value::<Value>()?;
                }
            }
        }
        let items = items.ok_or_else(|| A::Error::custom("no input"))?;
        Ok(RequestParts { items, previous_response_id })
    }
}

/// Token usage (§5.4): four required integer counts, an optional
/// cache-write count, negatives clamped to 0; anything else yields none.
fn token_usage(usage: &Value) -> Option<TokenUsage> {
    let usage = usage.as_object()?;
    let count = |key: &str| usage.get(key).and_then(Value::as_i64).map(|n| n.max(0));
    Some(TokenUsage {
        input_tokens: count("input_tokens")?,
        cached_input_tokens: count("cached_input_tokens")?,
        cache_write_input_tokens: count("cache_write_input_tokens").unwrap_or(0),
        output_tokens: count("output_tokens")?,
        reasoning_output_tokens: count("reasoning_output_tokens")?,
    })
}

#[cfg(test)]
mod tests {
    use super::token_usage;

    fn usage(text: &str) -> Option<[i64; 5]> {
        token_usage(&serde_json::from_str(text).unwrap()).map(|u| {
            [
                u.input_tokens,
                u.cached_input_tokens,
                u.cache_write_input_tokens,
                u.output_tokens,
                u.reasoning_output_tokens,
            ]
        })
    }

    #[test]
    fn usage_requires_integer_counts() {
        let full = r#"{"input_tokens":10,"cached_input_tokens":1,"cache_write_input_tokens":3,"output_tokens":5,"reasoning_output_tokens":2,"total_tokens":15}"#;
        assert_eq!(usage(full), Some([10, 1, 3, 5, 2]));
        assert_eq!(
            usage(
                r#"{"input_tokens":-0,"cached_input_tokens":-4,"output_tokens":5,"reasoning_output_tokens":2,"cache_write_input_tokens":1.0}"#
            ),
            Some([0, 0, 0, 5, 2])
        );
        assert_eq!(
            usage(r#"{"input_tokens":1.0,"cached_input_tokens":1,"output_tokens":5,"reasoning_output_tokens":2}"#),
            None
        );
        assert_eq!(
            usage(r#"{"input_tokens":5e0,"cached_input_tokens":1,"output_tokens":5,"reasoning_output_tokens":2}"#),
            None
        );
        assert_eq!(
            usage(
                r#"{"input_tokens":9223372036854775808,"cached_input_tokens":1,"output_tokens":5,"reasoning_output_tokens":2}"#
            ),
            None
        );
        assert_eq!(usage(r#"{"cached_input_tokens":1,"output_tokens":5,"reasoning_output_tokens":2}"#), None);
        assert_eq!(usage("null"), None);
        assert_eq!(usage("[]"), None);
    }
}
