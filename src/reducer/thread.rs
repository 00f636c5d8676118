//! Threads and codex turns (reducer core §4).

use serde::Deserialize;
use serde_json::Value;

use super::items::ItemRef;
use super::{EventContext, Reducer};
use crate::error::{Error, Result};
use crate::format::{ExecutionStatus, RawPayloadRef, RolloutStatus};
use crate::model::{AgentOrigin, AgentThread, CodeCellRuntimeStatus, CodexTurn, ExecutionWindow};

/// The keys of session metadata the reducer reads (01-format §5.4).
#[derive(Debug, Default, Deserialize)]
struct SessionMetadata {
    agent_path: Option<String>,
    task_name: Option<String>,
    nickname: Option<String>,
    agent_role: Option<String>,
    model: Option<String>,
    session_source: Option<Value>,
}

/// `session_source.subagent.thread_spawn` of a spawned child.
struct SpawnRecord<'a> {
    parent_thread_id: &'a str,
    agent_path: Option<&'a str>,
    task_name: Option<&'a str>,
    agent_role: Option<&'a str>,
}

fn spawn_record(session_source: Option<&Value>) -> Option<SpawnRecord<'_>> {
    let spawn = session_source?.get("subagent")?.get("thread_spawn")?;
    let string = |key: &str| spawn.get(key).and_then(Value::as_str);
    Some(SpawnRecord {
        parent_thread_id: string("parent_thread_id")?,
        agent_path: string("agent_path"),
        task_name: string("task_name"),
        agent_role: string("agent_role"),
    })
}

/// Right-most non-empty `/`-segment, or the whole path when there is none.
pub(crate) fn last_segment(path: &str) -> &str {
    path.rsplit('/').find(|segment| !segment.is_empty()).unwrap_or(path)
}

impl Reducer {
    pub(super) fn thread_started(
        &mut self,
        cx: EventContext<'_>,
        thread_id: &str,
        event_agent_path: &str,
        metadata_payload: Option<&RawPayloadRef>,
    ) -> Result<()> {
        if self.trace.threads.contains_key(thread_id) {
            return Err(Error::reduce(format!("duplicate thread start for {thread_id}")));
        }
        let metadata = match metadata_payload {
            None => SessionMetadata::default(),
            Some(payload) => {
                let value = self.read_payload(payload)?;
                SessionMetadata::deserialize(&value).map_err(|err| {
                    Error::reduce(format!("parse thread metadata {}: {err}", payload.raw_payload_id))
                        .with_payload(&payload.raw_payload_id)
                })?
            }
        };
        let spawn = spawn_record(metadata.session_source.as_ref());
        let agent_path = spawn
            .as_ref()
            .and_then(|s| s.agent_path)
            .or(metadata.agent_path.as_deref())
            .unwrap_or(event_agent_path)
            .to_string();
        let origin = match &spawn {
            None => AgentOrigin::Root,
            Some(spawn) => {
                let spawn_path = spawn.agent_path.or(metadata.agent_path.as_deref());
                let task_name = spawn
                    .task_name
                    .or(metadata.task_name.as_deref())
                    .or(spawn_path.map(last_segment))
                    .unwrap_or_else(|| last_segment(&agent_path));
                let agent_role = spawn.agent_role.or(metadata.agent_role.as_deref()).unwrap_or("");
                AgentOrigin::Spawned {
                    parent_thread_id: spawn.parent_thread_id.to_string(),
                    spawn_edge_id: format!("edge:spawn:{}:{thread_id}", spawn.parent_thread_id),
                    task_name: task_name.to_string(),
                    agent_role: agent_role.to_string(),
                }
            }
        };
        self.trace.threads.insert(
            thread_id.to_string(),
            AgentThread {
                thread_id: thread_id.to_string(),
                agent_path,
                nickname: metadata.nickname,
                origin,
                execution: ExecutionWindow::running(cx.wall_time_unix_ms, cx.seq),
                default_model: metadata.model,
                conversation_item_ids: Vec::new(),
            },
        );
        Ok(())
    }

    pub(super) fn thread_ended(&mut self, cx: EventContext<'_>, thread_id: &str, status: RolloutStatus) -> Result<()> {
        let thread = self.thread_mut(thread_id)?;
        let status = match status {
            RolloutStatus::Running => ExecutionStatus::Running,
            RolloutStatus::Completed => ExecutionStatus::Completed,
            RolloutStatus::Failed => ExecutionStatus::Failed,
            RolloutStatus::Aborted => ExecutionStatus::Aborted,
        };
        thread.execution.end(cx.wall_time_unix_ms, cx.seq, status);
        self.forget_requests(thread_id);
        Ok(())
    }

    pub(super) fn codex_turn_started(&mut self, cx: EventContext<'_>, turn_id: &str, thread_id: &str) -> Result<()> {
        if self.trace.codex_turns.contains_key(turn_id) {
            return Err(Error::reduce(format!("duplicate codex turn start for {turn_id}")));
        }
        self.thread_mut(thread_id)?;
        self.trace.codex_turns.insert(
            turn_id.to_string(),
            CodexTurn {
                codex_turn_id: turn_id.to_string(),
                thread_id: thread_id.to_string(),
                execution: ExecutionWindow::running(cx.wall_time_unix_ms, cx.seq),
                input_item_ids: Vec::new(),
            },
        );
        Ok(())
    }

    pub(super) fn codex_turn_ended(
        &mut self,
        cx: EventContext<'_>,
        turn_id: &str,
        status: ExecutionStatus,
    ) -> Result<()> {
        if let (Some(envelope_thread), Some(turn)) = (cx.thread_id, self.trace.codex_turns.get(turn_id)) {
            if turn.thread_id != envelope_thread {
                return Err(Error::reduce(format!(
                    "codex turn end for {turn_id} used thread {envelope_thread}, but the turn belongs to {}",
                    turn.thread_id
                )));
            }
        }
        let turn = self
            .trace
            .codex_turns
            .get_mut(turn_id)
            .ok_or_else(|| Error::reduce(format!("codex turn end referenced unknown turn {turn_id}")))?;
        turn.execution.end(cx.wall_time_unix_ms, cx.seq, status);

        // Interrupted turns take their running code cells down with them;
        // yielded cells may outlive a completed turn.
        let cell_status = match status {
            ExecutionStatus::Failed => Some(CodeCellRuntimeStatus::Failed),
            ExecutionStatus::Cancelled | ExecutionStatus::Aborted => Some(CodeCellRuntimeStatus::Terminated),
            ExecutionStatus::Running | ExecutionStatus::Completed => None,
        };
        if let Some(cell_status) = cell_status {
            self.terminate_running_code_cells(cx, turn_id, cell_status);
        }

        let inference_status = match status {
            ExecutionStatus::Running => None,
            ExecutionStatus::Completed | ExecutionStatus::Cancelled => Some(ExecutionStatus::Cancelled),
            ExecutionStatus::Failed => Some(ExecutionStatus::Failed),
            ExecutionStatus::Aborted => Some(ExecutionStatus::Aborted),
        };
        if let Some(inference_status) = inference_status.filter(|_| self.rules.turn_end_closes_inferences) {
            for call in self.trace.inference_calls.values_mut() {
                if call.codex_turn_id == turn_id && call.execution.is_running() {
                    call.execution.end(cx.wall_time_unix_ms, cx.seq, inference_status);
                }
            }
        }
        Ok(())
    }

    /// The thread, or `trace event referenced unknown thread`.
    pub(super) fn thread_mut(&mut self, thread_id: &str) -> Result<&mut AgentThread> {
        self.trace
            .threads
            .get_mut(thread_id)
            .ok_or_else(|| Error::reduce(format!("trace event referenced unknown thread {thread_id}")))
    }

    /// Appends items to the thread's conversation list, each at most once (§7.6).
    pub(super) fn list_in_thread(&mut self, thread_id: &str, items: &[ItemRef]) {
        let Some(thread) = self.trace.threads.get_mut(thread_id) else {
            return;
        };
        for &item in items {
            let state = self.items.get_mut(item);
            if !state.listed {
                state.listed = true;
                thread.conversation_item_ids.push(state.item.item_id.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::last_segment;

    #[test]
    fn last_segment_skips_empty_pieces() {
        assert_eq!(last_segment("/root/file_counter"), "file_counter");
        assert_eq!(last_segment("/root/a/"), "a");
        assert_eq!(last_segment("/root"), "root");
        assert_eq!(last_segment("/"), "/");
        assert_eq!(last_segment(""), "");
    }
}
