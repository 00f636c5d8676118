//! What a person asks first about a rollout: how it ended, who ran, what
//! the models and tools did. `Summary` is plain data (JSON for scripts);
//! `render` fits it into a terminal of the given width.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use crate::model::{AgentOrigin, ExecutionStatus, ExecutionWindow, RolloutTrace, TerminalRequest, TokenUsage};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub total: usize,
    /// Count per status (or kind), sorted by name.
    pub by_status: BTreeMap<String, usize>,
}

impl Counts {
    fn add(&mut self, status: &str) {
        self.total += 1;
        *self.by_status.entry(status.to_string()).or_default() += 1;
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ThreadSummary {
    pub thread_id: String,
    pub agent_path: String,
    pub nickname: Option<String>,
    pub parent_thread_id: Option<String>,
    pub status: String,
    pub duration_ms: Option<i64>,
    pub turns: usize,
    pub conversation_items: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ModelSummary {
    pub calls: usize,
    pub failed: usize,
    pub usage: TokenTotals,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TokenTotals {
    pub input_tokens: i64,
    pub cached_input_tokens: i64,
    pub cache_write_input_tokens: i64,
    pub output_tokens: i64,
    pub reasoning_output_tokens: i64,
}

impl TokenTotals {
    fn add(&mut self, usage: &TokenUsage) {
        self.input_tokens = self.input_tokens.saturating_add(usage.input_tokens);
        self.cached_input_tokens = self.cached_input_tokens.saturating_add(usage.cached_input_tokens);
        self.cache_write_input_tokens =
            self.cache_write_input_tokens.saturating_add(usage.cache_write_input_tokens.unwrap_or(0));
        self.output_tokens = self.output_tokens.saturating_add(usage.output_tokens);
        self.reasoning_output_tokens = self.reasoning_output_tokens.saturating_add(usage.reasoning_output_tokens);
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ToolKindSummary {
    pub calls: usize,
    /// Calls that ended failed, cancelled or aborted.
    pub failed: usize,
    pub running: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TerminalCommand {
    pub operation_id: String,
    pub thread_id: Option<String>,
    pub kind: String,
    /// The command line (exec) or the text sent (write_stdin).
    pub command: String,
    pub exit_code: Option<i32>,
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub trace_id: String,
    pub rollout_id: String,
    pub root_thread_id: String,
    pub status: String,
    pub started_at_unix_ms: i64,
    pub ended_at_unix_ms: Option<i64>,
    /// Until the rollout ended, or until the last recorded activity.
    pub duration_ms: i64,
    pub threads: Vec<ThreadSummary>,
    pub turns: Counts,
    pub inference_calls: Counts,
    pub models: BTreeMap<String, ModelSummary>,
    pub usage: TokenTotals,
    pub tool_calls: BTreeMap<String, ToolKindSummary>,
    pub terminal_sessions: usize,
    pub terminal_commands: Vec<TerminalCommand>,
    pub code_cells: Counts,
    pub compactions: usize,
    pub compaction_requests: Counts,
    pub interaction_edges: Counts,
    pub conversation_items: usize,
    pub raw_payloads: usize,
}

fn status_name(status: ExecutionStatus) -> String {
    crate::json::to_compact_string(&status).trim_matches('"').to_string()
}

fn window_duration(window: &ExecutionWindow) -> Option<i64> {
    window.ended_at_unix_ms.map(|end| end.saturating_sub(window.started_at_unix_ms))
}

fn is_failure(status: ExecutionStatus) -> bool {
    matches!(status, ExecutionStatus::Failed | ExecutionStatus::Cancelled | ExecutionStatus::Aborted)
}

impl Summary {
    pub fn of(trace: &RolloutTrace) -> Summary {
        let mut last_activity = trace.started_at_unix_ms;
        let mut see = |window: &ExecutionWindow| {
            last_activity = last_activity.max(window.ended_at_unix_ms.unwrap_or(window.started_at_unix_ms));
        };
        trace.threads.values().for_each(|t| see(&t.execution));
        trace.codex_turns.values().for_each(|t| see(&t.execution));
        trace.inference_calls.values().for_each(|c| see(&c.execution));
        trace.tool_calls.values().for_each(|c| see(&c.execution));

        let mut turns_per_thread: BTreeMap<&str, usize> = BTreeMap::new();
        let mut turns = Counts::default();
        for turn in trace.codex_turns.values() {
            *turns_per_thread.entry(&turn.thread_id).or_default() += 1;
            turns.add(&status_name(turn.execution.status));
        }
        let mut threads: Vec<ThreadSummary> = trace
            .threads
            .values()
            .map(|thread| ThreadSummary {
                thread_id: thread.thread_id.clone(),
                agent_path: thread.agent_path.clone(),
                nickname: thread.nickname.clone(),
                parent_thread_id: match &thread.origin {
                    AgentOrigin::Root => None,
                    AgentOrigin::Spawned { parent_thread_id, .. } => Some(parent_thread_id.clone()),
                },
                status: status_name(thread.execution.status),
                duration_ms: window_duration(&thread.execution),
                turns: turns_per_thread.get(thread.thread_id.as_str()).copied().unwrap_or(0),
                conversation_items: thread.conversation_item_ids.len(),
            })
            .collect();
        threads.sort_by(|a, b| a.agent_path.cmp(&b.agent_path).then(a.thread_id.cmp(&b.thread_id)));

        let mut inference_calls = Counts::default();
        let mut models: BTreeMap<String, ModelSummary> = BTreeMap::new();
        let mut usage = TokenTotals::default();
        for call in trace.inference_calls.values() {
            inference_calls.add(&status_name(call.execution.status));
            let model = models.entry(call.model.clone()).or_default();
            model.calls += 1;
            model.failed += usize::from(is_failure(call.execution.status));
            if let Some(call_usage) = &call.usage {
                model.usage.add(call_usage);
                usage.add(call_usage);
            }
        }

        let mut tool_calls: BTreeMap<String, ToolKindSummary> = BTreeMap::new();
        for tool in trace.tool_calls.values() {
            let name = match &tool.kind {
                crate::model::ToolCallKind::Mcp { server, tool } => format!("mcp:{server}.{tool}"),
                crate::model::ToolCallKind::Other { name } => name.clone(),
                kind => kind.type_name().to_string(),
            };
            let entry = tool_calls.entry(name).or_default();
            entry.calls += 1;
            entry.failed += usize::from(is_failure(tool.execution.status));
            entry.running += usize::from(tool.execution.is_running());
        }

        let mut terminal_commands: Vec<TerminalCommand> = trace
            .terminal_operations
            .values()
            .map(|op| TerminalCommand {
                operation_id: op.operation_id.clone(),
                thread_id: trace.tool_calls.get(&op.tool_call_id).map(|t| t.thread_id.clone()),
                kind: crate::json::to_compact_string(&op.kind).trim_matches('"').to_string(),
                command: match &op.request {
                    TerminalRequest::ExecCommand { display_command, .. } => display_command.clone(),
                    TerminalRequest::WriteStdin { stdin, .. } => stdin.clone(),
                },
                exit_code: op.result.as_ref().and_then(|r| r.exit_code),
                status: status_name(op.execution.status),
            })
            .collect();
        // Chronological, not by id (ids sort as strings).
        terminal_commands.sort_by_key(|c| trace.terminal_operations[&c.operation_id].execution.started_seq);

        let mut code_cells = Counts::default();
        for cell in trace.code_cells.values() {
            code_cells.add(crate::json::to_compact_string(&cell.runtime_status).trim_matches('"'));
        }
        let mut compaction_requests = Counts::default();
        for request in trace.compaction_requests.values() {
            compaction_requests.add(&status_name(request.execution.status));
        }
        let mut interaction_edges = Counts::default();
        for edge in trace.interaction_edges.values() {
            interaction_edges.add(crate::json::to_compact_string(&edge.kind).trim_matches('"'));
        }

        Summary {
            trace_id: trace.trace_id.clone(),
            rollout_id: trace.rollout_id.clone(),
            root_thread_id: trace.root_thread_id.clone(),
            status: crate::json::to_compact_string(&trace.status).trim_matches('"').to_string(),
            started_at_unix_ms: trace.started_at_unix_ms,
            ended_at_unix_ms: trace.ended_at_unix_ms,
            duration_ms: trace.ended_at_unix_ms.unwrap_or(last_activity).saturating_sub(trace.started_at_unix_ms),
            threads,
            turns,
            inference_calls,
            models,
            usage,
            tool_calls,
            terminal_sessions: trace.terminal_sessions.len(),
            terminal_commands,
            code_cells,
            compactions: trace.compactions.len(),
            compaction_requests,
            interaction_edges,
            conversation_items: trace.conversation_items.len(),
            raw_payloads: trace.raw_payloads.len(),
        }
    }

    pub fn to_json(&self) -> String {
        crate::json::to_pretty_string(self)
    }

    /// Human-readable text, each line at most `width` characters.
    pub fn render(&self, width: usize) -> String {
        let width = width.max(40);
        let mut out = String::new();
        let mut line = |text: String| {
            let _ = writeln!(out, "{}", fit(&text, width));
        };
        line(format!("rollout {}  trace {}", self.rollout_id, self.trace_id));
        line(format!(
            "status {}  duration {}{}",
            self.status,
            human_duration(self.duration_ms),
            if self.ended_at_unix_ms.is_none() { " (not ended; until last activity)" } else { "" }
        ));
        line(String::new());
        line(format!("threads ({})", self.threads.len()));
        for thread in &self.threads {
            let parent = match &thread.parent_thread_id {
                Some(parent) => format!(" <- {}", short_id(parent)),
                None => String::new(),
            };
            let nickname = thread.nickname.as_ref().map(|n| format!(" \"{n}\"")).unwrap_or_default();
            line(format!(
                "  {}{} [{}] {} turns, {} items, {}{}",
                thread.agent_path,
                nickname,
                thread.status,
                thread.turns,
                thread.conversation_items,
                thread.duration_ms.map_or("running".to_string(), human_duration),
                parent
            ));
        }
        line(format!("turns {}", counts_text(&self.turns)));
        line(format!("inference calls {}", counts_text(&self.inference_calls)));
        for (model, summary) in &self.models {
            line(format!(
                "  {model}: {} calls{}, {} in ({} cached) / {} out ({} reasoning) tokens",
                summary.calls,
                if summary.failed > 0 { format!(" ({} failed)", summary.failed) } else { String::new() },
                summary.usage.input_tokens,
                summary.usage.cached_input_tokens,
                summary.usage.output_tokens,
                summary.usage.reasoning_output_tokens
            ));
        }
        let tool_total: usize = self.tool_calls.values().map(|t| t.calls).sum();
        line(format!("tool calls {tool_total}"));
        for (kind, summary) in &self.tool_calls {
            let mut notes = Vec::new();
            if summary.failed > 0 {
                notes.push(format!("{} failed", summary.failed));
            }
            if summary.running > 0 {
                notes.push(format!("{} unfinished", summary.running));
            }
            let notes = if notes.is_empty() { String::new() } else { format!(" ({})", notes.join(", ")) };
            line(format!("  {kind}: {}{notes}", summary.calls));
        }
        line(format!("terminal: {} sessions, {} operations", self.terminal_sessions, self.terminal_commands.len()));
        const SHOWN: usize = 10;
        for command in self.terminal_commands.iter().take(SHOWN) {
            let exit = command.exit_code.map_or(command.status.clone(), |code| format!("exit {code}"));
            let text = command.command.replace('\n', "\\n");
            line(format!("  [{exit}] {}{text}", if command.kind == "write_stdin" { "stdin: " } else { "$ " }));
        }
        if self.terminal_commands.len() > SHOWN {
            line(format!("  ... {} more", self.terminal_commands.len() - SHOWN));
        }
        line(format!("code cells {}", counts_text(&self.code_cells)));
        line(format!("compactions {} (requests {})", self.compactions, counts_text(&self.compaction_requests)));
        line(format!("interaction edges {}", counts_text(&self.interaction_edges)));
        line(format!("conversation items {}, raw payloads {}", self.conversation_items, self.raw_payloads));
        out
    }
}

fn counts_text(counts: &Counts) -> String {
    if counts.by_status.is_empty() {
        return counts.total.to_string();
    }
    let parts: Vec<String> = counts.by_status.iter().map(|(name, n)| format!("{n} {name}")).collect();
    format!("{} ({})", counts.total, parts.join(", "))
}

fn human_duration(ms: i64) -> String {
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let seconds = ms / 1000;
    match seconds {
        0..=59 => format!("{}.{}s", seconds, (ms % 1000) / 100),
        60..=3599 => format!("{}m{:02}s", seconds / 60, seconds % 60),
        _ => format!("{}h{:02}m", seconds / 3600, (seconds % 3600) / 60),
    }
}

fn short_id(id: &str) -> &str {
    match id.char_indices().nth(13) {
        Some((cut, _)) => &id[..cut],
        None => id,
    }
}

/// Cuts a line to `width` characters, marking the cut.
fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let kept: String = text.chars().take(width - 3).collect();
    format!("{kept}...")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_fitting() {
        assert_eq!(human_duration(950), "950ms");
        assert_eq!(human_duration(12_345), "12.3s");
        assert_eq!(human_duration(125_000), "2m05s");
        assert_eq!(human_duration(7_500_000), "2h05m");
        assert_eq!(fit("abcdef", 5), "ab...");
        assert_eq!(fit("abc", 5), "abc");
    }
}
