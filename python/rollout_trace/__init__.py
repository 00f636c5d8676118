"""Write, replay and analyse Codex rollout trace bundles."""

from rollout_trace._native import TraceWriter, __version__

__all__ = ["TraceWriter", "__version__"]
