//! Terminal operations and sessions (reducer tools §4).

use serde::Deserialize;
use serde_json::Value;

use super::{push_unique, EventContext, Reducer};
use crate::compat::{ExecEnd as ExecEndRule, KeyOrder};
use crate::error::{Error, Result};
use crate::format::{ExecutionStatus, RawPayloadRef};
use crate::json;
use crate::model::{
    ExecutionWindow, ModelObservationSource, TerminalModelObservation, TerminalOperation, TerminalOperationKind,
    TerminalRequest, TerminalResult, TerminalSession, ToolCallSummary,
};

/// A dispatch-boundary tool invocation (§4.2).
#[derive(Deserialize)]
struct DispatchInvocation {
    tool_name: String,
    payload: DispatchFunction,
}

#[derive(Deserialize)]
struct DispatchFunction {
    #[serde(rename = "type")]
    payload_type: String,
    arguments: Option<String>,
}

#[derive(Deserialize)]
struct WriteStdinArguments {
    session_id: Option<Value>,
    #[serde(default)]
    chars: String,
    yield_time_ms: Option<u64>,
    max_output_tokens: Option<u64>,
}

/// The runtime's exec-begin event (§4.3).
#[derive(Deserialize)]
struct RuntimeBegin {
    process_id: Option<String>,
    command: Vec<String>,
    cwd: String,
    interaction_input: Option<String>,
}

/// The runtime's exec-end event (§4.4), as releases before 0.162 read it.
#[derive(Deserialize)]
struct ExecEnd {
    process_id: Option<String>,
    stdout: String,
    stderr: String,
    exit_code: i32,
    #[serde(deserialize_with = "required_string")]
    formatted_output: Option<String>,
}

/// A string field that must be present (an `Option` only for the 0.162+
/// reading, which has none).
fn required_string<'de, D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Option<String>, D::Error> {
    String::deserialize(deserializer).map(Some)
}

/// The exec-end event as 0.162+ reads it: only the aggregated output.
#[derive(Deserialize)]
struct AggregatedExecEnd {
    process_id: Option<String>,
    #[serde(default)]
    aggregated_output: String,
    exit_code: i32,
}

impl From<AggregatedExecEnd> for ExecEnd {
    fn from(end: AggregatedExecEnd) -> Self {
        ExecEnd {
            process_id: end.process_id,
            stdout: end.aggregated_output,
            stderr: String::new(),
            exit_code: end.exit_code,
            formatted_output: None,
        }
    }
}

/// An exec-end payload read under the profile's rule.
fn parse_exec_end(body: &Value, rule: ExecEndRule) -> std::result::Result<ExecEnd, serde_json::Error> {
    match rule {
        ExecEndRule::Streams => ExecEnd::deserialize(body),
        ExecEndRule::Aggregated => AggregatedExecEnd::deserialize(body).map(ExecEnd::from),
    }
}

/// What a dispatch returned to the model (§4.4).
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum DispatchResponse {
    DirectResponse { response_item: Value },
    CodeModeResponse { value: Value },
    Error { error: String },
}

#[derive(Deserialize)]
struct CodeModeValue {
    output: String,
    exit_code: Option<i32>,
    original_token_count: Option<u64>,
    chunk_id: Option<String>,
}

/// *text-of(v)*: strings as they are, arrays by their `text` members,
/// anything else as compact JSON; `None` for "nothing".
fn text_of(value: Option<&Value>, order: KeyOrder) -> Option<String> {
    match value? {
        Value::Null => None,
        Value::String(text) => Some(text.clone()),
        Value::Array(entries) => {
            let texts: Vec<&str> =
                entries.iter().filter_map(|entry| entry.get("text").and_then(Value::as_str)).collect();
            let joined = texts.join("\n");
            (!joined.is_empty()).then_some(joined)
        }
        other => Some(json::to_compact_string_in(other, order)),
    }
}

fn text_result(text: String) -> TerminalResult {
    TerminalResult {
        exit_code: None,
        stdout: text.clone(),
        stderr: String::new(),
        formatted_output: Some(text),
        original_token_count: None,
        chunk_id: None,
    }
}

fn dispatch_result(response: DispatchResponse, order: KeyOrder) -> TerminalResult {
    let compact = |value: &Value| json::to_compact_string_in(value, order);
    match response {
        DispatchResponse::DirectResponse { response_item } => {
            text_result(text_of(response_item.get("output"), order).unwrap_or_else(|| compact(&response_item)))
        }
        DispatchResponse::CodeModeResponse { value } => match CodeModeValue::deserialize(&value) {
            Ok(v) => TerminalResult {
                exit_code: v.exit_code,
                stdout: v.output.clone(),
                stderr: String::new(),
                formatted_output: Some(v.output),
                original_token_count: v.original_token_count,
                chunk_id: v.chunk_id,
            },
            Err(_) => text_result(text_of(Some(&value), order).unwrap_or_else(|| compact(&value))),
        },
        DispatchResponse::Error { error } => TerminalResult {
            exit_code: None,
            stdout: String::new(),
            stderr: error.clone(),
            formatted_output: Some(error),
            original_token_count: None,
            chunk_id: None,
        },
    }
}

fn exec_result(end: ExecEnd) -> (TerminalResult, Option<String>) {
    let result = TerminalResult {
        exit_code: Some(end.exit_code),
        stdout: end.stdout,
        stderr: end.stderr,
        formatted_output: end.formatted_output,
        original_token_count: None,
        chunk_id: None,
    };
    (result, end.process_id)
}

/// The write_stdin request and terminal id from a dispatch invocation.
fn parse_write_stdin_invocation(body: &Value) -> std::result::Result<(String, TerminalRequest), String> {
    let invocation = DispatchInvocation::deserialize(body).map_err(|err| err.to_string())?;
    if invocation.tool_name != "write_stdin" {
        return Err(format!("dispatch terminal request is for {}, not write_stdin", invocation.tool_name));
    }
    if invocation.payload.payload_type != "function" {
        return Err(format!(
            "write_stdin dispatch payload used unsupported {} payload",
            invocation.payload.payload_type
        ));
    }
    let arguments = invocation
        .payload
        .arguments
        .ok_or_else(|| "write_stdin dispatch payload omitted function arguments".to_string())?;
    let arguments: WriteStdinArguments = serde_json::from_str(&arguments)
        .map_err(|err| format!("parse write_stdin dispatch function arguments: {err}"))?;
    let terminal_id = match arguments.session_id {
        Some(Value::String(id)) if !id.is_empty() => id,
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err("write_stdin dispatch payload omitted session_id".to_string()),
    };
    let request = TerminalRequest::WriteStdin {
        stdin: arguments.chars,
        yield_time_ms: arguments.yield_time_ms,
        max_output_tokens: arguments.max_output_tokens,
    };
    Ok((terminal_id, request))
}

impl Reducer {
    /// §4.2: a write_stdin dispatch creates its operation at tool start.
    pub(super) fn terminal_operation_from_invocation(
        &mut self,
        cx: EventContext<'_>,
        thread: &str,
        tool_call_id: &str,
        payload: &RawPayloadRef,
        body: &Value,
    ) -> Result<String> {
        let (terminal_id, request) = parse_write_stdin_invocation(body).map_err(|cause| {
            Error::reduce(format!(
                "parse terminal invocation payload {} as dispatch payload: {cause}",
                payload.raw_payload_id
            ))
            .with_payload(&payload.raw_payload_id)
        })?;
        self.insert_terminal_operation(
            cx,
            thread,
            tool_call_id,
            TerminalOperationKind::WriteStdin,
            &payload.raw_payload_id,
            Some(terminal_id),
            request,
        )
    }

    /// §4.3: the runtime's begin event creates the operation.
    pub(super) fn terminal_operation_from_runtime_start(
        &mut self,
        cx: EventContext<'_>,
        tool_call_id: &str,
        payload: &RawPayloadRef,
    ) -> Result<()> {
        let body = self.read_payload(payload)?;
        let begin = RuntimeBegin::deserialize(&body).map_err(|err| {
            Error::reduce(format!("parse terminal runtime start payload {}: {err}", payload.raw_payload_id))
                .with_payload(&payload.raw_payload_id)
        })?;
        let tool = &self.trace.tool_calls[tool_call_id];
        let thread = tool.thread_id.clone();
        let (kind, request) = if tool.kind == crate::format::ToolCallKind::ExecCommand {
            let display_command = begin.command.join(" ");
            let request = TerminalRequest::ExecCommand {
                command: begin.command,
                display_command,
                cwd: begin.cwd,
                yield_time_ms: None,
                max_output_tokens: None,
            };
            (TerminalOperationKind::ExecCommand, request)
        } else {
            let request = TerminalRequest::WriteStdin {
                stdin: begin.interaction_input.unwrap_or_default(),
                yield_time_ms: None,
                max_output_tokens: None,
            };
            (TerminalOperationKind::WriteStdin, request)
        };
        let operation_id = self.insert_terminal_operation(
            cx,
            &thread,
            tool_call_id,
            kind,
            &payload.raw_payload_id,
            begin.process_id,
            request,
        )?;
        let tool = self.trace.tool_calls.get_mut(tool_call_id).expect("tool exists");
        tool.summary = ToolCallSummary::Terminal { operation_id: operation_id.clone() };
        tool.terminal_operation_id = Some(operation_id);
        self.tool_terminal_changed(tool_call_id);
        Ok(())
    }

    /// *insert-operation* (§4.1).
    #[allow(clippy::too_many_arguments)]
    fn insert_terminal_operation(
        &mut self,
        cx: EventContext<'_>,
        thread: &str,
        tool_call_id: &str,
        kind: TerminalOperationKind,
        creating_payload_id: &str,
        terminal_id: Option<String>,
        request: TerminalRequest,
    ) -> Result<String> {
        let operation_id = format!("terminal_operation:{}", self.next_terminal_operation_ordinal);
        self.next_terminal_operation_ordinal += 1;
        self.trace.terminal_operations.insert(
            operation_id.clone(),
            TerminalOperation {
                operation_id: operation_id.clone(),
                terminal_id: terminal_id.clone(),
                tool_call_id: tool_call_id.to_string(),
                kind,
                execution: ExecutionWindow::running(cx.wall_time_unix_ms, cx.seq),
                request,
                result: None,
                model_observations: Vec::new(),
                raw_payload_ids: vec![creating_payload_id.to_string()],
            },
        );
        if let Some(terminal_id) = terminal_id {
            self.ensure_terminal_session(thread, &terminal_id, &operation_id, cx.wall_time_unix_ms, cx.seq)?;
        }
        Ok(operation_id)
    }

    /// *end-operation* (§4.4), with the already-read ending payload if any.
    pub(super) fn end_terminal_operation(
        &mut self,
        cx: EventContext<'_>,
        operation_id: &str,
        status: ExecutionStatus,
        payload: Option<(&RawPayloadRef, &Value)>,
    ) -> Result<()> {
        let kind = self.trace.terminal_operations[operation_id].kind;
        let parsed = match payload {
            None => None,
            Some((payload, body)) => {
                let pid = &payload.raw_payload_id;
                let rules = self.rules;
                let parsed = match kind {
                    TerminalOperationKind::ExecCommand => {
                        parse_exec_end(body, rules.exec_end).map(exec_result).map_err(|err| {
                            Error::reduce(format!("parse exec terminal response {pid}: {err}")).with_payload(pid)
                        })?
                    }
                    TerminalOperationKind::WriteStdin => match parse_exec_end(body, rules.exec_end) {
                        Ok(end) => exec_result(end),
                        Err(protocol_error) => match DispatchResponse::deserialize(body) {
                            Ok(response) => (dispatch_result(response, rules.summary_keys), None),
                            Err(_) => {
                                return Err(Error::reduce(format!(
                                    "parse write_stdin terminal response {pid} as protocol payload ({protocol_error}) or dispatch payload"
                                ))
                                .with_payload(pid));
                            }
                        },
                    },
                };
                Some((pid.clone(), parsed))
            }
        };
        let operation = self.trace.terminal_operations.get_mut(operation_id).expect("operation exists");
        operation.execution.end(cx.wall_time_unix_ms, cx.seq, status);
        if let Some((pid, (result, reported_terminal_id))) = parsed {
            push_unique(&mut operation.raw_payload_ids, pid);
            match (&operation.terminal_id, reported_terminal_id) {
                (Some(current), Some(reported)) if *current != reported => {
                    return Err(Error::reduce(format!(
                        "terminal operation {operation_id} changed process id from {current} to {reported}"
                    )));
                }
                (None, Some(reported)) => operation.terminal_id = Some(reported),
                _ => {}
            }
            operation.result = Some(result);
        }
        if let Some(terminal_id) = operation.terminal_id.clone() {
            // Sessions start with their creating operation, even when the
            // terminal id is only learned at its end.
            let (started_at, started_seq) = (operation.execution.started_at_unix_ms, operation.execution.started_seq);
            let thread = self.trace.tool_calls[&operation.tool_call_id.clone()].thread_id.clone();
            self.ensure_terminal_session(&thread, &terminal_id, operation_id, started_at, started_seq)?;
        }
        Ok(())
    }

    /// *ensure-session* (§4.5): sessions are global by terminal id.
    fn ensure_terminal_session(
        &mut self,
        thread: &str,
        terminal_id: &str,
        operation_id: &str,
        started_at_unix_ms: i64,
        started_seq: u64,
    ) -> Result<()> {
        let session = self.trace.terminal_sessions.entry(terminal_id.to_string()).or_insert_with(|| TerminalSession {
            terminal_id: terminal_id.to_string(),
            thread_id: thread.to_string(),
            created_by_operation_id: operation_id.to_string(),
            operation_ids: Vec::new(),
            execution: ExecutionWindow::running(started_at_unix_ms, started_seq),
        });
        if session.thread_id != thread {
            return Err(Error::reduce(format!(
                "terminal session {terminal_id} belongs to thread {}, not {thread}",
                session.thread_id
            )));
        }
        push_unique(&mut session.operation_ids, operation_id.to_string());
        Ok(())
    }

    /// *terminal-sync* (§4.6): the operation's one `direct_tool_call`
    /// observation mirrors the tool's model-visible items.
    pub(super) fn sync_terminal_observation(&mut self, tool_call_id: &str) {
        let tool = &self.trace.tool_calls[tool_call_id];
        let Some(operation_id) = &tool.terminal_operation_id else {
            return;
        };
        if tool.model_visible_call_item_ids.is_empty() && tool.model_visible_output_item_ids.is_empty() {
            return;
        }
        // Every request that repeats the tool's items syncs again: mostly
        // there is nothing new.
        let synced = self.trace.terminal_operations.get(operation_id).is_some_and(|operation| {
            operation
                .model_observations
                .iter()
                .find(|o| o.source == ModelObservationSource::DirectToolCall)
                .is_some_and(|existing| {
                    existing.call_item_ids == tool.model_visible_call_item_ids
                        && existing.output_item_ids == tool.model_visible_output_item_ids
                })
        });
        if synced {
            return;
        }
        let observation = TerminalModelObservation {
            call_item_ids: tool.model_visible_call_item_ids.clone(),
            output_item_ids: tool.model_visible_output_item_ids.clone(),
            source: ModelObservationSource::DirectToolCall,
        };
        let Some(operation) = self.trace.terminal_operations.get_mut(operation_id) else {
            return;
        };
        match operation.model_observations.iter_mut().find(|o| o.source == ModelObservationSource::DirectToolCall) {
            Some(existing) => *existing = observation,
            None => operation.model_observations.push(observation),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn write_stdin_invocation_parses_session_ids() {
        let invocation = |args: &str| {
            let mut body = value(
                r#"{"tool_name":"write_stdin","tool_namespace":null,"payload":{"type":"function","arguments":null}}"#,
            );
            body["payload"]["arguments"] = Value::String(args.to_string());
            parse_write_stdin_invocation(&body)
        };
        let (id, request) = invocation(r#"{"session_id":"s-7","chars":"q\n","max_output_tokens":500}"#).unwrap();
        assert_eq!(id, "s-7");
        assert_eq!(
            request,
            TerminalRequest::WriteStdin { stdin: "q\n".into(), yield_time_ms: None, max_output_tokens: Some(500) }
        );
        assert_eq!(invocation(r#"{"session_id":77}"#).unwrap().0, "77");
        assert_eq!(invocation(r#"{"session_id":2.5}"#).unwrap().0, "2.5");
        for bad in [
            r#"{"session_id":""}"#,
            r#"{"session_id":null}"#,
            r#"{"session_id":true}"#,
            r#"{"chars":"x"}"#,
            r#"{"session_id":"s","chars":null}"#,
            "nope",
        ] {
            assert!(invocation(bad).is_err(), "{bad}");
        }
        let other = value(r#"{"tool_name":"exec_command","payload":{"type":"function","arguments":"{}"}}"#);
        assert_eq!(
            parse_write_stdin_invocation(&other).unwrap_err(),
            "dispatch terminal request is for exec_command, not write_stdin"
        );
    }

    #[test]
    fn dispatch_responses_project_to_terminal_results() {
        let result =
            |text: &str| dispatch_result(DispatchResponse::deserialize(&value(text)).unwrap(), KeyOrder::Sorted);
        let r = result(
            r#"{"type":"direct_response","response_item":{"type":"function_call_output","call_id":"w1","output":[{"type":"input_text","text":"bye"},{"type":"input_text","text":"done"}]}}"#,
        );
        assert_eq!((r.stdout.as_str(), r.formatted_output.as_deref()), ("bye\ndone", Some("bye\ndone")));
        let r = result(r#"{"type":"direct_response","response_item":{"output":[],"b":1}}"#);
        assert_eq!(r.stdout, r#"{"b":1,"output":[]}"#);
        let direct =
            DispatchResponse::deserialize(&value(r#"{"type":"direct_response","response_item":{"output":[],"b":1}}"#));
        assert_eq!(dispatch_result(direct.unwrap(), KeyOrder::Source).stdout, r#"{"output":[],"b":1}"#);
        let r = result(
            r#"{"type":"code_mode_response","value":{"chunk_id":"k9","exit_code":2,"original_token_count":12,"output":"err\n","wall_time_seconds":0.3}}"#,
        );
        assert_eq!((r.exit_code, r.original_token_count, r.chunk_id.as_deref()), (Some(2), Some(12), Some("k9")));
        let r = result(r#"{"type":"code_mode_response","value":"plain"}"#);
        assert_eq!((r.stdout.as_str(), r.exit_code), ("plain", None));
        let r = result(r#"{"type":"code_mode_response","value":{"x":1}}"#);
        assert_eq!(r.stdout, r#"{"x":1}"#);
        let r = result(r#"{"type":"error","error":"boom"}"#);
        assert_eq!((r.stdout.as_str(), r.stderr.as_str(), r.formatted_output.as_deref()), ("", "boom", Some("boom")));
    }
}
