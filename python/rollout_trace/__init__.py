"""Write, replay and analyse Codex rollout trace bundles.

Reduce a bundle and walk its graph::

    import rollout_trace

    trace = rollout_trace.replay_bundle("path/to/bundle")
    for call in trace.tool_calls.values():
        print(call.kind.type, call.execution.status, call.thread.agent_path)

or read a reduced state back with ``RolloutTrace.load("state.json",
bundle="path/to/bundle")``. The graph stays in Rust; objects are made only
when read.

Provenance is navigation (``tool_call.inference_call``, ``item.origin``,
``thread.edges``); ``thread.transcript()`` and ``trace.print_tree()`` read a
rollout as text, ``trace.tables()`` and ``tables_many(paths)`` give
column-oriented tables, and ``rollout_trace.testing`` has assertion
helpers for pytest.
"""

from rollout_trace._native import (
    AgentMessageMetadata,
    AgentOrigin,
    AgentThread,
    BundleError,
    CodeCell,
    CodexTurn,
    Compaction,
    CompactionRequest,
    ConversationBody,
    ConversationItem,
    ConversationPart,
    EventError,
    ExecutionWindow,
    InferenceCall,
    InteractionEdge,
    ItemOrigin,
    LimitError,
    PayloadError,
    ProducerRef,
    RawEvent,
    RawEventIterator,
    RawPayloadRef,
    ReduceError,
    RolloutTrace,
    StateError,
    TerminalModelObservation,
    TerminalOperation,
    TerminalRequest,
    TerminalResult,
    TerminalSession,
    TokenUsage,
    ToolCall,
    ToolCallKind,
    ToolCallRequester,
    ToolCallSummary,
    TraceAnchor,
    TraceBundle,
    TraceError,
    TraceMapping,
    TraceMappingKeys,
    TraceWriter,
    UnsafePathError,
    WriteError,
    __version__,
    replay_bundle,
    Limits,
    Problem,
    ValidationReport,
    validate,
    compat_profiles,
    resolve_compat,
)
from rollout_trace.batch import iter_reduce, reduce_many
from rollout_trace.live import LiveChange, LiveTrace, follow
from rollout_trace.tables import Table, Tables, tables_many

__all__ = [
    "AgentMessageMetadata",
    "AgentOrigin",
    "AgentThread",
    "BundleError",
    "CodeCell",
    "CodexTurn",
    "Compaction",
    "CompactionRequest",
    "ConversationBody",
    "ConversationItem",
    "ConversationPart",
    "EventError",
    "ExecutionWindow",
    "InferenceCall",
    "InteractionEdge",
    "ItemOrigin",
    "LimitError",
    "PayloadError",
    "ProducerRef",
    "RawEvent",
    "RawEventIterator",
    "RawPayloadRef",
    "ReduceError",
    "RolloutTrace",
    "StateError",
    "TerminalModelObservation",
    "TerminalOperation",
    "TerminalRequest",
    "TerminalResult",
    "TerminalSession",
    "TokenUsage",
    "ToolCall",
    "ToolCallKind",
    "ToolCallRequester",
    "ToolCallSummary",
    "TraceAnchor",
    "TraceBundle",
    "TraceError",
    "TraceMapping",
    "TraceMappingKeys",
    "TraceWriter",
    "UnsafePathError",
    "WriteError",
    "__version__",
    "replay_bundle",
    "Limits",
    "Problem",
    "ValidationReport",
    "validate",
    "compat_profiles",
    "resolve_compat",
    "iter_reduce",
    "follow",
    "LiveTrace",
    "LiveChange",
    "reduce_many",
    "Table",
    "Tables",
    "tables_many",
]
