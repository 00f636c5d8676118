"""Write, replay and analyse Codex rollout trace bundles."""

from rollout_trace._native import __version__

__all__ = ["__version__"]
