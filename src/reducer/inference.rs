//! Inference calls: start, terminal events, token usage (reducer core §5).

use serde_json::Value;

use super::conversation::{normalize_items, Mode};
use super::items::ItemRef;
use super::{EventContext, Reducer};
use crate::compat::{Reended, UpstreamRequestId};
use crate::error::{Error, Result};
use crate::format::{ExecutionStatus, RawPayloadRef};
use crate::model::{ExecutionWindow, InferenceCall, ProducerRef, SharedItemId, TokenUsage};

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

impl Reducer {
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
                response_id: Some(None),
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
    fn reduce_request(&mut self, cx: EventContext<'_>, start: &InferenceStart<'_>) -> Result<Vec<SharedItemId>> {
        let thread = start.thread_id;
        let turn = start.codex_turn_id;
        let request = self.read_request(start.request_payload, thread)?;
        let items = match request.previous_response_id.as_deref() {
            Some(previous_response_id) => {
                // The first call in id order with that response id and thread.
                let previous = self
                    .calls_by_response_id
                    .get(previous_response_id)
                    .into_iter()
                    .flatten()
                    .map(|call_id| &self.trace.inference_calls[call_id])
                    .find(|call| call.thread_id == thread)
                    .ok_or_else(|| {
                        Error::reduce(format!(
                            "incremental inference request {} referenced unknown previous_response_id {previous_response_id}",
                            start.inference_call_id
                        ))
                    })?;
                let previous_ids = previous.request_item_ids.iter().map(|id| &**id);
                let mut items: Vec<ItemRef> = previous_ids
                    .chain(previous.response_item_ids.iter().map(String::as_str))
                    .map(ItemRef::of)
                    .collect();
                let baseline = self.take_snapshot(thread);
                let delta = self.reconcile(
                    &request.candidates,
                    Mode::Append,
                    items.len(),
                    &baseline,
                    &[],
                    thread,
                    turn,
                    cx.wall_time_unix_ms,
                )?;
                items.extend(delta);
                items
            }
            None => {
                let baseline = match self.pending_replacements.remove(thread) {
                    Some(replacement) => replacement,
                    None => self.take_snapshot(thread),
                };
                self.reconcile(&request.candidates, Mode::Full, 0, &baseline, &[], thread, turn, cx.wall_time_unix_ms)?
            }
        };
        let ids = self.items.shared_ids(&items);
        self.list_in_thread(thread, &items);
        self.set_snapshot(thread, items);
        self.remember_request(thread, request);
        Ok(ids)
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
        let upstream = match self.rules.upstream_request_id {
            UpstreamRequestId::ResponseId => end.response_id,
            UpstreamRequestId::Upstream => end.upstream_request_id,
        };
        let call = self.trace.inference_calls.get_mut(id).expect("checked above");
        let old = call.response_id.take().flatten();
        if old.as_deref() != end.response_id {
            if let Some(calls) = old.as_ref().and_then(|old| self.calls_by_response_id.get_mut(old)) {
                calls.remove(id);
            }
            if let Some(new) = end.response_id {
                self.calls_by_response_id.entry(new.to_string()).or_default().insert(id.to_string());
            }
        }
        call.response_id = Some(end.response_id.map(str::to_string));
        let last_end_replaces = self.rules.inference_reended == Reended::LastEndReplaces;
        if call.execution.is_running() || last_end_replaces {
            call.execution.end(cx.wall_time_unix_ms, cx.seq, end.status);
        }
        if last_end_replaces {
            call.upstream_request_id = upstream.map(str::to_string);
            call.raw_response_payload_id = response.as_ref().map(|(payload, _)| payload.raw_payload_id.clone());
        } else if let Some(upstream) = upstream {
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
        let candidates = normalize_items(outputs, pid, &self.rules)?;
        let baseline = self.take_snapshot(thread);
        let producer = [ProducerRef::Inference { inference_call_id: inference_call_id.to_string() }];
        let items = self.reconcile(
            &candidates,
            Mode::Append,
            baseline.len(),
            &baseline,
            &producer,
            thread,
            turn,
            cx.wall_time_unix_ms,
        )?;
        self.list_in_thread(thread, &items);
        let ids = self.items.ids(&items);
        let mut snapshot = baseline;
        snapshot.extend(items);
        self.set_snapshot(thread, snapshot);
        Ok((ids, body.get("token_usage").and_then(token_usage)))
    }

    /// The thread's snapshot, taken out rather than copied: the caller sets
    /// the next one (a failed reduction ends the replay anyway).
    fn take_snapshot(&mut self, thread: &str) -> Vec<ItemRef> {
        self.snapshots.get_mut(thread).map(std::mem::take).unwrap_or_default()
    }

    /// `snapshot[thread]` = `items`.
    fn set_snapshot(&mut self, thread: &str, items: Vec<ItemRef>) {
        match self.snapshots.get_mut(thread) {
            Some(snapshot) => *snapshot = items,
            None => {
                self.snapshots.insert(thread.to_string(), items);
            }
        }
    }

    /// Keeps each item's `responding_inferences` in step with a call's
    /// current `response_item_ids`.
    fn index_response_items(&mut self, inference_call_id: &str, previous: &[String], current: &[String]) {
        for id in previous {
            self.items.get_mut(ItemRef::of(id)).responding_inferences.retain(|call| call != inference_call_id);
        }
        for id in current {
            let responding = &mut self.items.get_mut(ItemRef::of(id)).responding_inferences;
            if super::push_unique_str(responding, inference_call_id) {
                if let Some(call_id) = self.stored(ItemRef::of(id)).call_id.clone() {
                    self.item_joined_response(&call_id);
                }
            }
        }
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
        cache_write_input_tokens: Some(count("cache_write_input_tokens").unwrap_or(0)),
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
                u.cache_write_input_tokens.unwrap(),
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
