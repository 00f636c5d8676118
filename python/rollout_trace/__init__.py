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
)

# The Python modules load when first used, so that `rollout-trace` and
# scripts needing only the native classes start fast.
_LAZY = {
    "iter_reduce": "rollout_trace.batch",
    "reduce_many": "rollout_trace.batch",
    "Table": "rollout_trace.tables",
    "Tables": "rollout_trace.tables",
    "tables_many": "rollout_trace.tables",
}

# Not `typing.TYPE_CHECKING`: importing typing would cost start-up time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from rollout_trace.batch import iter_reduce, reduce_many
    from rollout_trace.tables import Table, Tables, tables_many


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rollout_trace' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))

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
    "iter_reduce",
    "reduce_many",
    "Table",
    "Tables",
    "tables_many",
]
