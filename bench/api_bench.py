"""Python API laziness benchmark on a large reduced bundle.

Reports, each phase in a fresh child process so peak memory is its own:
time to ``replay_bundle``; time to read one tool call's attribute after it;
time to walk every object of every map (``to_dict()`` of each); peak RSS of
each; and that ``RawPayloadRef`` reads nothing until ``load()``.

Usage: python bench/api_bench.py [--target-mb 100]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from rollout_trace import synth

OUT = Path(__file__).resolve().parent / "out"

PHASE = r"""
import json, resource, sys, time
import rollout_trace
bundle, phase = sys.argv[1], sys.argv[2]
start = time.perf_counter()
trace = rollout_trace.replay_bundle(bundle)
replayed = time.perf_counter()
result = {"replay_s": replayed - start}
if phase == "first":
    call_id = next(iter(trace.tool_calls.keys()))
    t0 = time.perf_counter()
    kind = trace.tool_calls[call_id].kind.type
    result["first_attribute_s"] = time.perf_counter() - t0
    result["kind"] = kind
elif phase == "walk":
    t0 = time.perf_counter()
    objects = 0
    for name in ("threads", "codex_turns", "conversation_items", "inference_calls", "code_cells", "tool_calls",
                 "terminal_sessions", "terminal_operations", "compactions", "compaction_requests",
                 "interaction_edges", "raw_payloads"):
        for value in getattr(trace, name).values():
            value.to_dict()
            objects += 1
    result["walk_s"] = time.perf_counter() - t0
    result["objects"] = objects
elif phase == "payload":
    ref = next(iter(trace.raw_payloads.values()))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_inblock
    t0 = time.perf_counter()
    ref.path, ref.kind, ref.raw_payload_id
    result["ref_attributes_s"] = time.perf_counter() - t0
    result["loaded_before_load"] = ref.is_loaded
    ref.load()
    result["loaded_after_load"] = ref.is_loaded
result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(result))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--target-mb", type=float, default=100)
    args = parser.parse_args()
    bundle = OUT / f"api-{args.target_mb:g}mb"
    if not (bundle / "manifest.json").exists():
        synth.generate(bundle, seed=1, target_mb=args.target_mb)
    size = sum(f.stat().st_size for f in bundle.rglob("*") if f.is_file()) / 1e6
    print(f"bundle {bundle.name}: {size:.1f} MB")
    for phase in ("replay", "first", "walk", "payload"):
        out = subprocess.run([sys.executable, "-c", PHASE, str(bundle), phase], capture_output=True, text=True,
                             check=True)
        print(phase, json.loads(out.stdout))


if __name__ == "__main__":
    main()
