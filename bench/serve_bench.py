"""Viewer benchmark, measured in headless Chromium.

* **list**: a root of N bundles (default 1,000 hard-linked copies of
  ``examples/realistic-bundle``, so each is a real multi-agent bundle that is
  reduced on its own). Times, from the page's navigation start
  (``performance.now()``): the rows shown (``listMs``) and every row
  summarized (``listCompleteMs``), for a server that has just started (cold:
  nothing cached) and for a reload (warm: summaries cached).
* **big bundle**: a ``rollout_trace.synth --target-mb 200`` bundle; time to
  its first screen (header, thread tree and the root thread's timeline
  rendered, ``readyMs``), cold (first open: the bundle is reduced) and warm.

Bundles are cached under bench/out/serve. Needs the [serve] extra, selenium
and chromium + chromium-driver.

Usage: python bench/serve_bench.py [--bundles N] [--big-mb MB] [--repeat R]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
OUT = HERE / "out" / "serve"
sys.path.insert(0, str(REPO / "tests"))

from test_serve_browser import Server, start_browser  # noqa: E402


def make_root(count: int) -> Path:
    root = OUT / f"root-{count}"
    if root.is_dir() and len(list(root.iterdir())) == count:
        return root
    shutil.rmtree(root, ignore_errors=True)
    example = REPO / "examples" / "realistic-bundle"
    for index in range(count):
        shutil.copytree(example, root / f"{2026 + index // 500}" / f"session-{index:04d}", copy_function=os.link)
    return root


def make_big(megabytes: int) -> Path:
    big = OUT / f"big-{megabytes}mb"
    if not (big / "trace.jsonl").is_file():
        shutil.rmtree(big, ignore_errors=True)
        from rollout_trace import synth

        synth.main([str(big), "--target-mb", str(megabytes)])
    return big


def wait_for(driver, script: str, timeout: float = 60.0) -> float:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(script)
        if value:
            return float(value)
        time.sleep(0.02)
    raise TimeoutError(script)


def measure_list(driver, url: str) -> tuple[float, float, float]:  # type: ignore[no-untyped-def]
    driver.get("about:blank")
    driver.get(url + "/#/")
    shown = wait_for(driver, "return document.body.dataset.listMs")
    complete = wait_for(driver, "return document.body.dataset.listCompleteMs", timeout=120)
    every = wait_for(driver, "return document.body.dataset.listAllRowsMs", timeout=120)
    rows = driver.execute_script("return document.querySelectorAll('#bundles tbody tr:not(.pending)').length")
    assert rows == driver.execute_script("return document.querySelectorAll('#bundles tbody tr').length"), rows
    return shown, complete, every


def measure_bundle(driver, url: str, bundle_id: str) -> float:  # type: ignore[no-untyped-def]
    from urllib.parse import quote

    driver.get("about:blank")
    driver.get(f"{url}/#/bundle?b={quote(bundle_id)}")
    return wait_for(driver, "return document.body.dataset.readyMs")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundles", type=int, default=1000)
    parser.add_argument("--big-mb", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    started = time.monotonic()
    root = make_root(args.bundles)
    big = make_big(args.big_mb)
    size = sum(f.stat().st_size for f in big.rglob("*") if f.is_file()) / 1e6
    print(f"data ready in {time.monotonic() - started:.1f}s: {args.bundles} bundles in {root}, {size:.0f} MB bundle {big}")

    driver = start_browser()
    try:
        cache = Path(tempfile.mkdtemp(prefix="serve-bench-cache-"))
        os.environ["XDG_CACHE_HOME"] = str(cache)  # the servers' summary cache, empty at first
        runs: dict[str, list[tuple[float, float, float]]] = {"first run": [], "reload": [], "restart": []}
        for _ in range(args.repeat):
            shutil.rmtree(cache / "rollout-trace", ignore_errors=True)
            server = Server(root, "--poll", "0.2")
            try:
                runs["first run"].append(measure_list(driver, server.url))
                runs["reload"].append(measure_list(driver, server.url))
            finally:
                server.close()
            server = Server(root, "--poll", "0.2")  # a restart: the summaries come from the cache file
            try:
                runs["restart"].append(measure_list(driver, server.url))
            finally:
                server.close()
        shutil.rmtree(cache, ignore_errors=True)
        labels = {"first run": "first run, nothing cached", "reload": "page reloaded",
                  "restart": "server restarted, summaries from its cache file"}
        for name, measured in runs.items():
            shown, complete, every = (statistics.median(m[i] for m in measured) for i in range(3))
            print(f"list of {args.bundles} bundles, {labels[name]}: rows on screen {shown:.0f} ms, "
                  f"first screen summarized {complete:.0f} ms, all {args.bundles} rows summarized in the page {every:.0f} ms")
        cold, warm = [], []
        for _ in range(args.repeat):
            server = Server(big, "--poll", "0.2", "--no-cache")
            try:
                cold.append(measure_bundle(driver, server.url, big.name))
                warm.append(measure_bundle(driver, server.url, big.name))
            finally:
                server.close()
        print(f"{size:.0f} MB bundle, first screen: cold {statistics.median(cold):.0f} ms (reduced on open), "
              f"warm {statistics.median(warm):.0f} ms (median of {args.repeat})")
    finally:
        driver.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
