"""Which recordings the committed offline corpus (tests/data/codex) holds."""
from .scenarios import ON_DEMAND, SCENARIOS

#: the committed offline corpus (tests/data/codex): every scenario of the
#: newest release, a few of each other family (bundles are 0.2-1 MB each,
#: mostly the repeated instructions and tool lists of inference requests)
OFFLINE_SUBSET: dict[str, list[str]] = {
    "0.125.0": ["chat", "exec_ok", "code_mode", "interrupted", "mcp"],
    "0.139.0": ["multi_agent", "compaction"],
    "0.144.4": ["multi_agent", "mcp"],
    "0.147.0": ["exec_fail", "compaction"],
    "0.161.0": ["multi_agent_interrupt"],
    "0.163.0": [s for s in SCENARIOS if s not in ON_DEMAND],
}
