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
column-oriented tables, ``index(root, out)`` and ``open_catalog(out)`` keep
an incremental Parquet catalog of a root of bundles (``rollout_trace.ray``
reads bundles into a Ray dataset), and ``rollout_trace.testing`` has
assertion helpers for pytest.
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

# The Python modules load when first used, so that `rollout-trace` and
# scripts needing only the native classes start fast; the catalog needs
# pyarrow (duckdb for queries), rollout_trace.ray imports ray when called.
_LAZY = {
    "iter_reduce": "rollout_trace.batch",
    "reduce_many": "rollout_trace.batch",
    "LiveChange": "rollout_trace.live",
    "LiveTrace": "rollout_trace.live",
    "follow": "rollout_trace.live",
    "Table": "rollout_trace.tables",
    "Tables": "rollout_trace.tables",
    "tables_many": "rollout_trace.tables",
    "index": "rollout_trace.catalog",
    "open_catalog": "rollout_trace.catalog",
    "Catalog": "rollout_trace.catalog",
    "IndexReport": "rollout_trace.catalog",
}

# Not `typing.TYPE_CHECKING`: importing typing would cost start-up time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from rollout_trace.batch import iter_reduce, reduce_many
    from rollout_trace.catalog import Catalog, IndexReport, index, open_catalog
    from rollout_trace.live import LiveChange, LiveTrace, follow
    from rollout_trace.tables import Table, Tables, tables_many


def __getattr__(name: str) -> object:
    import importlib

    if name == "ray":  # rollout_trace.ray.read_traces(...); imports ray only when called
        return importlib.import_module("rollout_trace.ray")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rollout_trace' has no attribute {name!r}")
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
    "index",
    "open_catalog",
    "Catalog",
    "IndexReport",
]
