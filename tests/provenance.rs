//! Provenance lookups (`rollout_trace::provenance`) on the realistic example
//! bundle: which inference issued a tool call, where items came from, which
//! edges touch a thread.

use std::path::Path;

use rollout_trace::model::RolloutTrace;
use rollout_trace::provenance::{self, OriginKind};
use rollout_trace::replay_bundle;

fn trace() -> RolloutTrace {
    let bundle = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/realistic-bundle");
    replay_bundle(bundle).unwrap_or_else(|err| panic!("the realistic bundle does not reduce: {err:#}"))
}

fn origin(trace: &RolloutTrace, item_id: &str) -> provenance::ItemOrigin {
    provenance::item_origin(trace, &trace.conversation_items[item_id])
}

#[test]
fn tool_calls_resolve_to_their_inference() {
    let trace = trace();
    let direct = &trace.tool_calls["call_C1F5s71irZ1thRhzP2N5rl08"];
    let issuer = provenance::tool_call_inference(&trace, direct).expect("an inference issued it");
    assert_eq!(issuer.inference_call_id, "0febd845-d0df-4e43-ad16-ee18552116dd");

    let nested = &trace.tool_calls["call_JjsAdvFVvCiRIPw9eWnSrWl8"];
    let cell = &trace.code_cells["code_cell:call_hQHm6cqLAera5k3g6TpWY1qQ"];
    let cell_issuer = provenance::code_cell_inference(&trace, cell).expect("an inference wrote the cell");
    assert!(cell_issuer.response_item_ids.contains(&cell.source_item_id));
    assert_eq!(provenance::tool_call_inference(&trace, nested), Some(cell_issuer));
}

#[test]
fn item_origins_follow_the_documented_rules() {
    let trace = trace();
    let kinds = [
        ("conversation_item:3", OriginKind::Transcript),
        ("conversation_item:4", OriginKind::Inference),
        ("conversation_item:8", OriginKind::TerminalOperation),
        ("conversation_item:18", OriginKind::CodeCell),
        ("conversation_item:34", OriginKind::Tool),
        ("conversation_item:24", OriginKind::Compaction),
        ("conversation_item:66", OriginKind::AgentMessage),
    ];
    for (item, kind) in kinds {
        assert_eq!(origin(&trace, item).kind, kind, "{item}");
    }
    let terminal = origin(&trace, "conversation_item:8");
    assert_eq!(terminal.tool_call_id.as_deref(), Some("call_6NgISIwGnzQ6itzm5JTGuE52"));
    assert_eq!(terminal.terminal_operation_id.as_deref(), Some("terminal_operation:1"));
    assert_eq!(terminal.inference_call_id, None);
    let json = serde_json::to_value(&terminal).expect("serializable");
    assert_eq!(json["type"], "terminal_operation");
}

#[test]
fn thread_edges_cover_both_ends() {
    let trace = trace();
    let auditor = "019b8db4-ad4b-7dd0-ade6-6ba39a1a7d6f";
    let kinds: Vec<String> = provenance::thread_edges(&trace, auditor)
        .iter()
        .map(|edge| serde_json::to_value(edge.kind).expect("kind").as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(kinds, ["spawn_agent", "agent_result", "close_agent"]);
    for edge in provenance::thread_edges(&trace, auditor) {
        let ends =
            [provenance::anchor_thread_id(&trace, &edge.source), provenance::anchor_thread_id(&trace, &edge.target)];
        assert!(ends.contains(&Some(auditor)), "{}", edge.edge_id);
        let tool = provenance::edge_tool_call(&trace, edge);
        assert_eq!(tool.is_some(), edge.edge_id.starts_with("edge:tool:") || edge.edge_id.starts_with("edge:spawn:"));
    }
    assert_eq!(provenance::thread_edges(&trace, &trace.root_thread_id).len(), trace.interaction_edges.len());
}
