"""One line per event of a bundle: ``python3 -m tests.codex.summary BUNDLE``."""
from __future__ import annotations

import json
import sys
from pathlib import Path


def summarize(bundle: Path) -> list[str]:
    out = []
    threads: dict[str, str] = {}
    for line in (bundle / "trace.jsonl").read_text().splitlines():
        try:
            e = json.loads(line)
        except ValueError:
            out.append("<unreadable line>")
            continue
        p = e.get("payload", {})
        t = p.get("type")
        tid = e.get("thread_id") or p.get("thread_id")
        if t == "thread_started":
            threads[p["thread_id"]] = p.get("agent_path") or f"t{len(threads)}"
        who = threads.get(tid, "-") if tid else "-"
        bits = [str(e.get("seq")), who, t]
        for k in ("event_type", "status", "tool_call_id", "kind", "reason", "error", "runtime_cell_id"):
            if k in p and p[k] is not None:
                v = p[k]
                bits.append(f"{k}={json.dumps(v) if not isinstance(v, str) else v}"[:100])
        if t == "tool_call_started":
            bits.append(p.get("summary", {}).get("label", ""))
        out.append(" ".join(bits))
    return out


if __name__ == "__main__":
    for b in sys.argv[1:]:
        print("\n".join(summarize(Path(b))))
