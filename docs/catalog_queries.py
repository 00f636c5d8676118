"""The queries of docs/catalog.md, on a generated root.

Writes 48 synth bundles over three days and three models (plus a bundle
with a broken manifest and one still being written) into ROOT, indexes
them into CATALOG with ``rollout-trace index``, and prints each query and
its DuckDB output. Needs pyarrow and duckdb (``rollout-trace[catalog]``).

Usage: python docs/catalog_queries.py [ROOT] [CATALOG]
       python docs/catalog_queries.py --update   (rewrites the output in docs/catalog.md and README.md)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import rollout_trace
from rollout_trace import synth

DAY_MS = 86_400_000
MODELS = ["gpt-5.1-codex", "gpt-5.1-codex-mini", "gpt-5.2-codex"]

QUERIES = {
    "Tokens per model per day": """
select cast(to_timestamp(started_at_unix_ms / 1000) as date) as day, model,
       count(*) as calls, sum(input_tokens) as input, sum(cached_input_tokens) as cached,
       sum(output_tokens) as output
from inference_calls group by all order by day, model""",
    "Failing tools by name": """
select name, count(*) filter (where status = 'failed') as failed, count(*) as calls,
       round(100 * failed / calls, 1) as failed_pct
from tool_calls group by name having failed > 0 order by failed desc""",
    "Slowest terminal commands": """
select bundle, command, exit_code, duration_ms
from terminal_operations where kind = 'exec_command'
order by duration_ms desc nulls last limit 5""",
    "Sessions with sub-agents": """
select b.bundle, b.status, count(*) as sub_agents,
       string_agg(t.task_name || ' (' || t.agent_role || ')', ', ' order by t.started_at_unix_ms) as helpers,
       b.output_tokens
from bundles b join threads t using (bundle)
where t.origin = 'spawned'
group by all order by sub_agents desc, b.bundle limit 5""",
    "Bundles that failed or are still being written": """
select bundle, status, partial, error_type, regexp_replace(error, '^.*?: ', '') as error
from bundles where error is not null order by bundle""",
}


def make_root(root: Path) -> None:
    base = synth.START_UNIX_MS
    try:
        for i in range(48):
            synth.START_UNIX_MS = base + (i % 3) * DAY_MS  # type: ignore[misc]
            synth.MODEL = MODELS[(i // 3) % 3] if i % 4 else MODELS[0]  # type: ignore[misc]
            synth.generate(root / f"2026/01/{5 + i % 3:02d}/rollout-{i:03d}", seed=i, children=i % 3)
        synth.START_UNIX_MS, synth.MODEL = base + 3 * DAY_MS, MODELS[2]  # type: ignore[misc]
        live = synth.generate(root / "2026/01/08/rollout-live", seed=99, children=1)
        log = (live / "trace.jsonl").read_bytes()
        (live / "trace.jsonl").write_bytes(log[: len(log) * 2 // 3])  # mid-line, as while Codex writes it
    finally:
        synth.START_UNIX_MS, synth.MODEL = base, MODELS[0]  # type: ignore[misc]
    broken = root / "2026/01/07/rollout-broken"
    broken.mkdir(parents=True)
    (broken / "manifest.json").write_text('{"schema_version": 1, "trace_id": ', encoding="utf-8")


BEGIN, END = "<!-- catalog_queries output: begin -->", "<!-- catalog_queries output: end -->"


def main() -> int:
    if sys.argv[1:] == ["--update"]:
        import contextlib
        import io

        sys.argv[1:] = []
        text = io.StringIO()
        with contextlib.redirect_stdout(text):
            main()
        # The same output stands in docs/catalog.md and in README.md.
        for doc in (Path(__file__).with_name("catalog.md"), Path(__file__).parents[1] / "README.md"):
            before, rest = doc.read_text(encoding="utf-8").split(BEGIN)
            _, after = rest.split(END)
            doc.write_text(f"{before}{BEGIN}\n{text.getvalue().rstrip()}\n{END}{after}", encoding="utf-8")
        return 0
    work = Path(tempfile.mkdtemp(prefix="catalog-docs-"))
    root = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else work / "traces"
    out = Path(sys.argv[2]).resolve() if len(sys.argv) > 2 else work / "catalog"
    if not root.exists():
        make_root(root)
    # the child imports this same rollout_trace, whatever the working directory
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(rollout_trace.__file__).parents[1]), os.environ.get("PYTHONPATH", "")])}
    command = ["index", str(root.relative_to(root.parent)), "-o", str(out), "-q"]

    def index(comment: str) -> None:
        run = subprocess.run([sys.executable, "-m", "rollout_trace.cli", *command], capture_output=True, text=True, cwd=root.parent, env=env)
        print(f"$ rollout-trace {' '.join(command).replace(str(out.parent) + '/', '')}   # {comment}")
        print((run.stdout + run.stderr).replace(str(out.parent) + "/", "").rstrip())

    def query(title: str) -> None:
        print(f"\n### {title}\n\n```sql{QUERIES[title]}\n```\n\n```text")
        print(str(rollout_trace.open_catalog(out).sql(QUERIES[title])).rstrip())
        print("```")

    print("```text")
    index("first run")
    index("nothing changed")
    print("```")
    for title in QUERIES:
        query(title)
    # The live session ends and a new one starts: the next run reduces just those two.
    shutil.rmtree(root / "2026/01/08/rollout-live")
    synth.generate(root / "2026/01/08/rollout-live", seed=99, children=1)
    synth.generate(root / "2026/01/08/rollout-new", seed=100, children=0)
    print("\nThe live session ends and a new one starts:\n\n```text")
    index("two bundles changed")
    print("```")
    query("Bundles that failed or are still being written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
