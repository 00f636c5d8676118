//! Items re-sighted by later requests: the reducer skips hook steps that
//! cannot change anything, so these cases check that it still does every
//! step that can (02 §10, 03 §3.6, §3.7, §4.6, §6.6).

use std::path::PathBuf;

use rollout_trace::model::RolloutTrace;
use rollout_trace::replay_bundle;
use serde_json::{json, Value};

/// A bundle written event by event: one root thread `th` and turn `u1`.
struct Bundle {
    root: PathBuf,
    events: Vec<Value>,
    payloads: usize,
}

impl Bundle {
    fn new(name: &str) -> Self {
        let root = std::env::temp_dir().join(format!("rollout-trace-resighting-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("payloads")).unwrap();
        let manifest = json!({"schema_version": 1, "trace_id": "t1", "rollout_id": "r1", "root_thread_id": "th",
            "started_at_unix_ms": 1000, "raw_event_log": "trace.jsonl", "payloads_dir": "payloads"});
        std::fs::write(root.join("manifest.json"), manifest.to_string()).unwrap();
        let mut bundle = Bundle { root, events: Vec::new(), payloads: 0 };
        bundle.event(
            json!({"type": "thread_started", "thread_id": "th", "agent_path": "/root", "metadata_payload": null}),
        );
        bundle.event(json!({"type": "codex_turn_started", "codex_turn_id": "u1", "thread_id": "th"}));
        bundle
    }

    fn event(&mut self, payload: Value) {
        let seq = self.events.len() + 1;
        self.events.push(json!({"schema_version": 1, "seq": seq, "wall_time_unix_ms": 1000 + seq,
            "rollout_id": "r1", "thread_id": "th", "codex_turn_id": "u1", "payload": payload}));
    }

    fn payload(&mut self, kind: &str, body: Value) -> Value {
        self.payloads += 1;
        let path = format!("payloads/{}.json", self.payloads);
        std::fs::write(self.root.join(&path), body.to_string()).unwrap();
        json!({"raw_payload_id": format!("raw_payload:{}", self.payloads), "kind": {"type": kind}, "path": path})
    }

    fn request(&mut self, call: &str, input: Value) {
        let payload = self.payload("inference_request", json!({"input": input}));
        self.event(json!({"type": "inference_started", "inference_call_id": call, "thread_id": "th",
            "codex_turn_id": "u1", "model": "m", "provider_name": "p", "request_payload": payload}));
    }

    fn response(&mut self, call: &str, output: Value) {
        let payload = self.payload("inference_response", json!({"output_items": output}));
        self.event(json!({"type": "inference_completed", "inference_call_id": call,
            "response_id": format!("resp-{call}"), "upstream_request_id": null, "response_payload": payload}));
    }

    fn tool_started(&mut self, tool: &str, call_id: &str) {
        self.event(json!({"type": "tool_call_started", "tool_call_id": tool, "model_visible_call_id": call_id,
            "code_mode_runtime_tool_id": null, "requester": {"type": "model"}, "kind": {"type": "exec_command"},
            "summary": {"type": "generic", "label": "exec_command", "input_preview": null, "output_preview": null},
            "invocation_payload": null}));
    }

    fn exec_started(&mut self, tool: &str) {
        let payload =
            self.payload("tool_runtime_event", json!({"process_id": "proc-1", "command": ["ls"], "cwd": "/"}));
        self.event(json!({"type": "tool_call_runtime_started", "tool_call_id": tool, "runtime_payload": payload}));
    }

    fn replay(&self) -> RolloutTrace {
        let lines: String = self.events.iter().map(|event| format!("{event}\n")).collect();
        std::fs::write(self.root.join("trace.jsonl"), lines).unwrap();
        replay_bundle(&self.root).unwrap()
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn user(text: &str) -> Value {
    json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]})
}

fn function_call(call_id: &str) -> Value {
    json!({"type": "function_call", "name": "exec_command", "arguments": "ls", "call_id": call_id})
}

fn function_output(call_id: &str) -> Value {
    json!({"type": "function_call_output", "call_id": call_id, "output": "done"})
}

fn started_by_response(trace: &RolloutTrace, call: &str) -> Vec<String> {
    trace.inference_calls[call].tool_call_ids_started_by_response.clone()
}

/// 03 §3.7, second row: the tool starts before its inference completes, so
/// the response's hook cannot link them; the next full request that
/// repeats the call item does, once.
#[test]
fn a_tool_started_before_its_response_is_linked_by_the_next_full_request() {
    let mut bundle = Bundle::new("streamed");
    bundle.request("i1", json!([user("go")]));
    bundle.tool_started("tool-1", "c1");
    bundle.response("i1", json!([function_call("c1")]));
    let trace = bundle.replay();
    assert_eq!(started_by_response(&trace, "i1"), Vec::<String>::new());
    assert_eq!(trace.tool_calls["tool-1"].model_visible_call_item_ids, ["conversation_item:2"]);

    bundle.request("i2", json!([user("go"), function_call("c1"), function_output("c1")]));
    bundle.response("i2", json!([]));
    bundle.request("i3", json!([user("go"), function_call("c1"), function_output("c1"), user("again")]));
    let trace = bundle.replay();
    assert_eq!(started_by_response(&trace, "i1"), ["tool-1"]);
    assert_eq!(started_by_response(&trace, "i2"), Vec::<String>::new());
    let tool = &trace.tool_calls["tool-1"];
    assert_eq!(tool.model_visible_call_item_ids, ["conversation_item:2"]);
    assert_eq!(tool.model_visible_output_item_ids, ["conversation_item:3"]);
    assert_eq!(
        serde_json::to_value(&trace.conversation_items["conversation_item:3"].produced_by).unwrap(),
        json!([{"type": "tool", "tool_call_id": "tool-1"}])
    );
}

/// 03 §4.6: the observation follows the tool's items whenever they grow,
/// also after its operation was created, and each item is listed once.
#[test]
fn a_terminal_observation_follows_items_sighted_before_and_after_its_operation() {
    let mut bundle = Bundle::new("terminal");
    bundle.request("i1", json!([user("go")]));
    bundle.response("i1", json!([function_call("c1")]));
    bundle.tool_started("tool-1", "c1");
    bundle.request("i2", json!([user("go"), function_call("c1")]));
    bundle.exec_started("tool-1");
    bundle.request("i3", json!([user("go"), function_call("c1"), function_output("c1")]));
    bundle.request("i4", json!([user("go"), function_call("c1"), function_output("c1")]));
    let trace = bundle.replay();
    assert_eq!(started_by_response(&trace, "i1"), ["tool-1"]);
    let operation = &trace.terminal_operations["terminal_operation:1"];
    assert_eq!(
        serde_json::to_value(&operation.model_observations).unwrap(),
        json!([{"call_item_ids": ["conversation_item:2"], "output_item_ids": ["conversation_item:3"],
            "source": "direct_tool_call"}])
    );
    assert_eq!(
        trace.threads["th"].conversation_item_ids,
        ["conversation_item:1", "conversation_item:2", "conversation_item:3"]
    );
}
