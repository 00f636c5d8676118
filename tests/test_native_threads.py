"""The extension on threads that come and go.

A crash here kills the interpreter, so each case runs in a child process.
The first case is the one that crashed with mimalloc 3 as the global
allocator: the extension first loaded on a thread that then exits, and the
next thread's first allocation faulted (SIGSEGV in ``mi_thread_init``).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "realistic-bundle"

CASES = {
    "imported on a thread that exits": """
        from concurrent.futures import ThreadPoolExecutor

        def work(_):
            import rollout_trace
            return len(rollout_trace.replay_bundle(BUNDLE).conversation_items)

        for _ in range(3):
            with ThreadPoolExecutor(max_workers=2) as pool:
                assert all(n == 85 for n in pool.map(work, range(4)))
    """,
    "many short-lived threads, each replaying and failing": """
        import threading
        import rollout_trace

        def work():
            rollout_trace.replay_bundle(BUNDLE).to_json()
            try:
                rollout_trace.replay_bundle(BUNDLE + "/payloads")
            except rollout_trace.TraceError:
                pass

        for _ in range(200):
            threads = [threading.Thread(target=work) for _ in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    """,
    "traces freed on another thread than the one that made them": """
        import queue
        import threading
        import rollout_trace

        made = queue.Queue()
        makers = [threading.Thread(target=lambda: made.put(rollout_trace.replay_bundle(BUNDLE))) for _ in range(8)]
        for thread in makers:
            thread.start()
        for thread in makers:
            thread.join()
        traces = [made.get() for _ in range(8)]
        freer = threading.Thread(target=traces.clear)
        freer.start()
        freer.join()
        assert rollout_trace.replay_bundle(BUNDLE).conversation_items
    """,
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_threads_do_not_crash_the_interpreter(case):
    script = f"BUNDLE = {str(EXAMPLE)!r}\n" + textwrap.dedent(CASES[case]) + "\nprint('ok')\n"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", (done.returncode, done.stderr[-2000:])


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_kept_traces_keep_no_directory_open(tmp_path):
    """A replay opens its bundle's payloads directory for its own time only:
    traces kept afterwards keep their bundle (payloads load lazily), and
    thousands of them must not hold a descriptor each."""
    import shutil

    import rollout_trace

    bundle = tmp_path / "bundle"
    shutil.copytree(EXAMPLE, bundle)
    payloads = (bundle / "payloads").resolve()

    def open_on_payloads() -> int:
        return sum(1 for fd in Path("/proc/self/fd").iterdir() if _target(fd) == payloads)

    traces = [rollout_trace.replay_bundle(bundle) for _ in range(50)]
    traces += rollout_trace.reduce_many([bundle] * 50, workers=2)
    assert open_on_payloads() == 0
    assert traces[-1].raw_payloads  # still lazily loadable
    first = next(iter(traces[-1].raw_payloads.values()))
    assert first.load() is not None


def _target(fd: Path) -> Path | None:
    try:
        return fd.resolve()
    except OSError:
        return None
